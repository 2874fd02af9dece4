/* rt_data_svhn: SVHN's cropped digits, train_32x32.mat and test_32x32.mat, the files torchvision's
 * SVHN downloads. They are MATLAB level-5 MAT-files holding X (uint8, 32 x 32 x 3 x N, column-major)
 * and y (N labels, 1..10, where 10 is the digit 0). The reader follows the MAT-file format: a
 * 128-byte header, then data elements (tag: type and byte count, or the small form that packs up to
 * 4 bytes into the tag), each variable an miMATRIX (array flags, dimensions, name, real part),
 * plain or inside an miCOMPRESSED element (zlib). It streams: X's pixels are inflated a plane at a
 * time straight into the data set, each 32x32 plane transposed from MATLAB's column order to our
 * rows, so a 225 MB training set needs no second copy. Labels become torchvision's (10 -> 0).
 * Files in either byte order are read; MATLAB 7.3 files (HDF5) are not, and say so. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "rt_data.h"

enum {
  MI_INT8 = 1, MI_UINT8, MI_INT16, MI_UINT16, MI_INT32, MI_UINT32, MI_SINGLE, MI_DOUBLE = 9,
  MI_INT64 = 12, MI_UINT64, MI_MATRIX, MI_COMPRESSED,
  MX_UINT8_CLASS = 9, SVHN_PLANE = 32 * 32, SVHN_PIXELS = 3 * SVHN_PLANE
};

/* A file being read: its plain bytes, or while inside an miCOMPRESSED element, that element's
 * inflated bytes. */
typedef struct MatIn {
  FILE *fp;
  const char *path;
  bool swap;          /* the file's byte order is not ours */
  bool inflating;
  z_stream z;
  size_t comp_left;   /* compressed bytes of the element not yet fed to zlib */
  unsigned char in[1 << 16];
  char *err;
  size_t errlen;
} MatIn;

static int fail(MatIn *m, const char *fmt, const char *what) {
  return rt_data_fail(m->err, m->errlen, m->path, fmt, what);
}

/* n bytes into dst (NULL: skipped). */
static int mat_read(MatIn *m, void *dst, size_t n) {
  unsigned char *d = dst;
  if (!m->inflating) {
    if (!d) return fseek(m->fp, (long)n, SEEK_CUR) == 0 ? 0 : fail(m, "%s", "truncated");
    return fread(d, 1, n, m->fp) == n ? 0 : fail(m, "%s", "truncated: a data element ends past the file's end");
  }
  unsigned char scratch[4096];
  while (n > 0) {
    size_t step = d ? n : (n < sizeof scratch ? n : sizeof scratch);
    m->z.next_out = d ? d : scratch;
    m->z.avail_out = (uInt)(step > (1u << 30) ? (1u << 30) : step);
    size_t want = m->z.avail_out;
    while (m->z.avail_out > 0) {
      if (m->z.avail_in == 0 && m->comp_left > 0) {
        size_t k = m->comp_left < sizeof m->in ? m->comp_left : sizeof m->in;
        if (fread(m->in, 1, k, m->fp) != k) return fail(m, "%s", "truncated: a compressed element ends past the file's end");
        m->comp_left -= k;
        m->z.next_in = m->in;
        m->z.avail_in = (uInt)k;
      }
      int rc = inflate(&m->z, Z_NO_FLUSH);
      if (rc == Z_STREAM_END && m->z.avail_out > 0)
        return fail(m, "%s", "a compressed element holds less than its variable says");
      if (rc == Z_BUF_ERROR && m->z.avail_in == 0 && m->comp_left == 0)   /* no input left, output wanted */
        return fail(m, "%s", "a compressed element ends before its variable does");
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
        return fail(m, "corrupt compressed data (zlib: %s)", m->z.msg ? m->z.msg : "error");
    }
    if (d) d += want;
    n -= want;
  }
  return 0;
}

static uint32_t u32(const MatIn *m, const unsigned char *b) {
  uint32_t v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
  return m->swap ? __builtin_bswap32(v) : v;
}

/* A data element's tag: its type and byte count; *small when the data sits in the tag's second
 * half (4 bytes at most), copied to small_data. */
static int read_tag(MatIn *m, uint32_t *type, uint32_t *bytes, bool *small, unsigned char small_data[4]) {
  unsigned char t[8];
  if (mat_read(m, t, 8)) return -1;
  uint32_t a = u32(m, t);
  *small = (a >> 16) != 0;
  if (*small) {
    *type = a & 0xffff;
    *bytes = a >> 16;
    if (*bytes > 4) return fail(m, "%s", "corrupt: a small data element of more than 4 bytes");
    memcpy(small_data, t + 4, 4);
  } else {
    *type = a;
    *bytes = u32(m, t + 4);
  }
  return 0;
}

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

/* One subelement's data, up to cap bytes kept in buf (the rest and the padding skipped); its
 * type and byte count. */
static int read_sub(MatIn *m, uint32_t *type, uint32_t *bytes, unsigned char *buf, size_t cap) {
  bool small;
  unsigned char sd[4];
  if (read_tag(m, type, bytes, &small, sd)) return -1;
  if (small) {
    memcpy(buf, sd, cap < *bytes ? cap : *bytes);
    return 0;
  }
  size_t keep = *bytes < cap ? *bytes : cap;
  if (mat_read(m, buf, keep) || mat_read(m, NULL, pad8(*bytes) - keep)) return -1;
  return 0;
}

/* What a file gave: its X's pixels (N images, C x H x W) and its labels, after the base images
 * of an earlier file in the same arrays (train_32x32.mat's, where extra_32x32.mat joins them). */
typedef struct SvhnPart {
  uint8_t *x, *y;
  size_t base, n_x, n_y;
  bool has_x, has_y;
} SvhnPart;

static size_t mi_size(uint32_t type) {
  switch (type) {
  case MI_INT8: case MI_UINT8: return 1;
  case MI_INT16: case MI_UINT16: return 2;
  case MI_INT32: case MI_UINT32: case MI_SINGLE: return 4;
  case MI_DOUBLE: case MI_INT64: case MI_UINT64: return 8;
  default: return 0;
  }
}

/* One stored number of type `type` (bytes in the file's order) as a double. */
static double mi_value(const MatIn *m, uint32_t type, const unsigned char *b) {
  unsigned char v[8];
  size_t k = mi_size(type);
  for (size_t i = 0; i < k; i++) v[i] = m->swap ? b[k - 1 - i] : b[i];
  switch (type) {
  case MI_INT8: return (int8_t)v[0];
  case MI_UINT8: return v[0];
  case MI_INT16: { int16_t t; memcpy(&t, v, 2); return t; }
  case MI_UINT16: { uint16_t t; memcpy(&t, v, 2); return t; }
  case MI_INT32: { int32_t t; memcpy(&t, v, 4); return t; }
  case MI_UINT32: { uint32_t t; memcpy(&t, v, 4); return t; }
  case MI_SINGLE: { float t; memcpy(&t, v, 4); return t; }
  case MI_DOUBLE: { double t; memcpy(&t, v, 8); return t; }
  case MI_INT64: { int64_t t; memcpy(&t, v, 8); return (double)t; }
  default: { uint64_t t; memcpy(&t, v, 8); return (double)t; }
  }
}

/* X's real part: `bytes` of uint8 pixels, 32 x 32 x 3 x n in MATLAB's column order, inflated a
 * plane at a time into part->x as n x 3 x 32 x 32 rows. */
static int read_x(MatIn *m, SvhnPart *part, size_t n, uint32_t type, uint32_t bytes, bool small) {
  if (type != MI_UINT8) return fail(m, "%s", "X is stored as a numeric type other than uint8 (svhn() reads 8-bit pixels)");
  if (small || (size_t)bytes != n * SVHN_PIXELS) return fail(m, "%s", "X holds fewer or more pixels than its dimensions say");
  uint8_t *x = realloc(part->x, (part->base + n) * SVHN_PIXELS);   /* glibc moves large blocks by mremap */
  if (!x) return fail(m, "%s", "out of memory for X");
  part->x = x;
  unsigned char plane[SVHN_PLANE];
  for (size_t p = 0; p < 3 * n; p++) {
    if (mat_read(m, plane, SVHN_PLANE)) return -1;
    uint8_t *dst = x + part->base * SVHN_PIXELS + p * SVHN_PLANE;   /* image p / 3, channel p % 3 */
    for (int r = 0; r < 32; r++)
      for (int c = 0; c < 32; c++) dst[r * 32 + c] = plane[c * 32 + r];
  }
  part->n_x = n;
  part->has_x = true;
  return mat_read(m, NULL, pad8(bytes) - bytes);
}

/* y's real part: n labels of any numeric type, each a whole number 0..10; 10 is the digit 0. */
static int read_y(MatIn *m, SvhnPart *part, size_t n, uint32_t type, uint32_t bytes, bool small,
                  const unsigned char *small_data, int classes) {
  size_t k = mi_size(type);
  if (!k) return fail(m, "%s", "y is not stored as numbers");
  if (n > bytes || (size_t)bytes != n * k) return fail(m, "%s", "y holds fewer or more labels than its dimensions say");
  uint8_t *y = realloc(part->y, part->base + n + 1);
  if (!y) return fail(m, "%s", "out of memory for y");
  part->y = y;
  unsigned char b[8];
  for (size_t i = 0; i < n; i++) {
    if (small) memcpy(b, small_data + i * k, k);
    else if (mat_read(m, b, k)) return -1;
    double v = mi_value(m, type, b);
    if (!(v >= 0 && v <= 10 && v == (double)(int)v)) {
      char what[96];
      snprintf(what, sizeof what, "label %g of image %zu is not a digit 1..10 (10 is the digit 0)", v, i + 1);
      return fail(m, "%s", what);
    }
    int label = (int)v % 10;
    if (label >= classes) {
      char what[96];
      snprintf(what, sizeof what, "label %d of image %zu is not below classes = %d", label, i + 1, classes);
      return fail(m, "%s", what);
    }
    y[part->base + i] = (uint8_t)label;
  }
  part->n_y = n;
  part->has_y = true;
  return small ? 0 : mat_read(m, NULL, pad8(bytes) - bytes);
}

/* One miMATRIX (its tag read): X and y are read, any other variable is left to the caller's
 * seek past the element. */
static int read_matrix(MatIn *m, SvhnPart *part, int classes) {
  unsigned char flags[8], dimb[64], name[64] = {0};
  uint32_t type, bytes;
  if (read_sub(m, &type, &bytes, flags, sizeof flags)) return -1;
  if (type != MI_UINT32 || bytes != 8) return fail(m, "%s", "corrupt: a variable without its array flags");
  uint32_t fl = u32(m, flags), cls = fl & 0xff;
  if (read_sub(m, &type, &bytes, dimb, sizeof dimb)) return -1;
  if (type != MI_INT32 || bytes % 4 || bytes < 8 || bytes > sizeof dimb)
    return fail(m, "%s", "corrupt: a variable's dimensions");
  int nd = (int)(bytes / 4);
  size_t dims[16], numel = 1;
  for (int i = 0; i < nd; i++) {
    int32_t d = (int32_t)u32(m, dimb + 4 * i);
    if (d < 0) return fail(m, "%s", "corrupt: a negative dimension");
    dims[i] = (size_t)d;
    numel = numel && dims[i] > SIZE_MAX / numel ? SIZE_MAX : numel * dims[i];
  }
  if (read_sub(m, &type, &bytes, name, sizeof name - 1)) return -1;
  bool is_x = !strcmp((char *)name, "X"), is_y = !strcmp((char *)name, "y");
  if (!is_x && !is_y) return 0;
  if ((is_x && part->has_x) || (is_y && part->has_y)) return fail(m, "%s", is_x ? "X twice" : "y twice");
  if (fl & 0x800) return fail(m, "%s", is_x ? "X is complex" : "y is complex");
  bool small;
  unsigned char sd[4];
  if (read_tag(m, &type, &bytes, &small, sd)) return -1;
  if (is_x) {
    if (cls != MX_UINT8_CLASS) return fail(m, "%s", "X is not a uint8 array (svhn() reads 8-bit pixels)");
    /* 32 x 32 x 3 x N; MATLAB drops the last dimension of a single image */
    if (!(dims[0] == 32 && dims[1] == 32 && (nd == 3 || nd == 4) && dims[2] == 3)) {
      char what[200];
      int k = snprintf(what, sizeof what, "X is ");
      for (int i = 0; i < nd && k < 120; i++) k += snprintf(what + k, sizeof what - (size_t)k, "%s%zu", i ? "x" : "", dims[i]);
      snprintf(what + k, sizeof what - (size_t)k, ", not 32x32x3xN (SVHN's cropped digits)");
      return fail(m, "%s", what);
    }
    return read_x(m, part, nd == 4 ? dims[3] : 1, type, bytes, small);
  }
  if (nd != 2 || (dims[0] != 1 && dims[1] != 1)) return fail(m, "%s", "y is not a vector of labels");
  return read_y(m, part, numel, type, bytes, small, sd, classes);
}

/* Reads X and y of one file into part, after its base images; on an error frees all of part. */
static int read_mat(const char *path, int classes, SvhnPart *part, char *err, size_t errlen) {
  MatIn *m = calloc(1, sizeof *m);
  if (!m) return rt_data_fail(err, errlen, path, "out of memory");
  m->path = path, m->err = err, m->errlen = errlen;
  int rc = -1;
  struct stat st;
  unsigned char head[128];
  if (stat(path, &st) != 0) {
    int e = errno;
    rc = rt_data_fail(err, errlen, path, "%s%s", strerror(e),
                      e != ENOENT ? ""
                      : part->base ? " (svhn(DIR, extra = true) reads DIR/extra_32x32.mat as well, the file "
                                     "torchvision's SVHN downloads for split=\"extra\")"
                                   : " (svhn(DIR) reads DIR/train_32x32.mat and DIR/test_32x32.mat, the files "
                                     "torchvision's SVHN downloads)");
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = rt_data_fail(err, errlen, path, "not a regular file");
    goto out;
  }
  if (!(m->fp = fopen(path, "rb"))) {
    rc = rt_data_fail(err, errlen, path, "cannot open: %s", strerror(errno));
    goto out;
  }
  if (fread(head, 1, 128, m->fp) != 128 || memcmp(head, "MATLAB", 6) != 0) {
    rc = rt_data_fail(err, errlen, path, "not a MAT-file (no \"MATLAB\" header)");
    goto out;
  }
  if (!memcmp(head, "MATLAB 7.3", 10)) {
    rc = rt_data_fail(err, errlen, path, "a MATLAB 7.3 (HDF5) MAT-file: svhn() reads level-5 MAT-files "
                      "(MATLAB's save -v7 or -v6, scipy.io.savemat), as SVHN's own files are");
    goto out;
  }
  if (!((head[126] == 'I' && head[127] == 'M') || (head[126] == 'M' && head[127] == 'I'))) {
    rc = rt_data_fail(err, errlen, path, "not a level-5 MAT-file (no byte-order mark at byte 126)");
    goto out;
  }
  m->swap = head[126] == 'M';
  long end = (long)st.st_size;
  for (long at = 128; at + 8 <= end && !(part->has_x && part->has_y); ) {
    if (fseek(m->fp, at, SEEK_SET)) goto out;
    uint32_t type, bytes;
    bool small;
    unsigned char sd[4];
    if (read_tag(m, &type, &bytes, &small, sd)) goto out;
    long next = at + 8 + (small ? 0 : (long)(type == MI_COMPRESSED ? bytes : pad8(bytes)));
    if (small || next > end) {
      if (!small) {
        rc = rt_data_fail(err, errlen, path, "truncated: a data element of %u bytes at byte %ld ends past the file's end",
                          bytes, at);
        goto out;
      }
      at = next;
      continue;
    }
    if (type == MI_COMPRESSED) {
      memset(&m->z, 0, sizeof m->z);
      if (inflateInit(&m->z) != Z_OK) {
        rc = rt_data_fail(err, errlen, path, "zlib cannot start");
        goto out;
      }
      m->inflating = true;
      m->comp_left = bytes;
      bool s2;
      int r = read_tag(m, &type, &bytes, &s2, sd);
      if (!r && type == MI_MATRIX && bytes > 0) r = read_matrix(m, part, classes);
      inflateEnd(&m->z);
      m->inflating = false;
      if (r) goto out;
    } else if (type == MI_MATRIX && bytes > 0) {
      if (read_matrix(m, part, classes)) goto out;
    }
    at = next;
  }
  if (!part->has_x || !part->has_y) {
    rc = rt_data_fail(err, errlen, path, "no variable %s (SVHN's files hold X, the images, and y, the labels)",
                      part->has_x ? "y" : part->has_y ? "X" : "X or y");
    goto out;
  }
  if (part->n_x != part->n_y) {
    char what[96];
    snprintf(what, sizeof what, "X holds %zu images but y %zu labels", part->n_x, part->n_y);
    rc = rt_data_fail(err, errlen, path, "%s", what);
    goto out;
  }
  if (part->n_x == 0) {
    rc = rt_data_fail(err, errlen, path, "no images");
    goto out;
  }
  rc = 0;
out:
  if (m->fp) fclose(m->fp);
  free(m);
  if (rc) {
    free(part->x), free(part->y);
    memset(part, 0, sizeof *part);
  }
  return rc ? -1 : 0;
}

int rt_data_load_svhn(const char *dir, int classes, int extra, int c, int h, int w, RtDataset *out, char *err,
                      size_t errlen) {
  memset(out, 0, sizeof *out);
  if (classes < 1 || classes > 256)
    return rt_data_fail(err, errlen, dir, "classes = %d is not in 1..256 (labels are bytes)", classes);
  if (c != 3 || h != 32 || w != 32)
    return rt_data_fail(err, errlen, dir, "the declared shape [%d, %d, %d] does not match SVHN's [3, 32, 32]", c, h, w);
  SvhnPart train = {0}, test = {0};
  /* train, then extra after it in the same arrays, then test */
  static const char *const names[3] = {"train_32x32.mat", "extra_32x32.mat", "test_32x32.mat"};
  for (int f = 0; f < 3; f++) {
    char path[4096];
    SvhnPart *part = f < 2 ? &train : &test;
    if (f == 1 && !extra) continue;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[f]) >= sizeof path) {
      free(train.x), free(train.y);
      return rt_data_fail(err, errlen, dir, "path too long");
    }
    if (f == 1) train.base = train.n_x, train.n_x = train.n_y = 0, train.has_x = train.has_y = false;
    if (read_mat(path, classes, part, err, errlen)) {
      if (f == 2) free(train.x), free(train.y);
      return -1;
    }
  }
  *out = (RtDataset){.classes = classes, .channels = 3, .height = 32, .width = 32,
                     .n_train = train.base + train.n_x, .n_test = test.n_x,
                     .train_x = train.x, .train_y = train.y, .test_x = test.x, .test_y = test.y};
  return 0;
}
