/* rt_data_idx: the IDX loader (MNIST, Fashion-MNIST), plain or gzipped files.
 *
 * Every file goes through zlib's gz* functions, which read plain files transparently. A header is
 * trusted only after it is checked: its shape must equal the declared one, its byte count must fit
 * in size_t, a plain file must hold exactly that many bytes, and a gzipped one is read into a
 * buffer that grows with the data actually decoded, so a lying header cannot make us allocate more
 * than twice what the file really holds. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "rt_data.h"

enum { IDX_IMAGES_MAGIC = 0x00000803, IDX_LABELS_MAGIC = 0x00000801 };

typedef struct IdxFile {
  char path[4096];
  gzFile gz;
  int plain;        /* not gzip-compressed: size is the byte count */
  size_t size;      /* on-disk size */
  uint32_t count;   /* images or labels the header declares */
} IdxFile;


static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Reads up to n bytes; returns how many (fewer at end of data or on a gzip error). */
static size_t read_some(gzFile gz, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    size_t want = n - got;
    if (want > (1u << 30)) want = 1u << 30; /* gzread takes an unsigned, returns an int */
    int k = gzread(gz, (char *)buf + got, (unsigned)want);
    if (k <= 0) break;
    got += (size_t)k;
  }
  return got;
}

/* zlib's message without the path it starts with (gzerror gives "PATH: what"),
 * which rt_data_fail puts in front already. */
static const char *zlib_why(IdxFile *f, int *code) {
  const char *msg = gzerror(f->gz, code);
  size_t n = strlen(f->path);
  return strncmp(msg, f->path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ' ? msg + n + 2 : msg;
}

/* Describes a short read: a corrupt gzip stream, or data that simply ran out. */
static int short_read(IdxFile *f, char *err, size_t errlen, const char *what) {
  int code = Z_OK;
  const char *msg = zlib_why(f, &code);
  if (code != Z_OK && code != Z_BUF_ERROR)
    return rt_data_fail(err, errlen, f->path, "corrupt gzip stream (%s)", msg);
  if (code == Z_BUF_ERROR) return rt_data_fail(err, errlen, f->path, "truncated gzip stream: %s", what);
  return rt_data_fail(err, errlen, f->path, "truncated: %s", what);
}

static void close_idx(IdxFile *f) {
  if (f->gz) gzclose(f->gz);
  f->gz = NULL;
}

/* Opens dir/name, else dir/name.gz, and reads and checks the header's magic and count. */
static int open_idx(const char *dir, const char *name, uint32_t magic, size_t hdr_len, IdxFile *f,
                    unsigned char *hdr, char *err, size_t errlen) {
  struct stat st;
  memset(f, 0, sizeof *f);
  if ((size_t)snprintf(f->path, sizeof f->path, "%s/%s.gz", dir, name) >= sizeof f->path)
    return rt_data_fail(err, errlen, dir, "path too long");
  char plain[sizeof f->path];
  snprintf(plain, sizeof plain, "%s/%s", dir, name);
  if (stat(plain, &st) == 0) { /* the plain file wins over the .gz */
    memcpy(f->path, plain, sizeof plain);
  } else if (stat(f->path, &st) != 0) {
    memcpy(f->path, plain, sizeof plain);
    return rt_data_fail(err, errlen, f->path, "no such file (nor %s.gz)", name);
  }
  if (!S_ISREG(st.st_mode)) return rt_data_fail(err, errlen, f->path, "not a regular file");
  f->size = (size_t)st.st_size;
  errno = 0;
  f->gz = gzopen(f->path, "rb");
  if (!f->gz)
    return rt_data_fail(err, errlen, f->path, "cannot open: %s", errno ? strerror(errno) : "out of memory");
  f->plain = gzdirect(f->gz);

  size_t got = read_some(f->gz, hdr, hdr_len);
  if (got < hdr_len) {
    char what[96];
    snprintf(what, sizeof what, "file holds %zu bytes, an IDX header here needs %zu", got,
             hdr_len);
    return short_read(f, err, errlen, what);
  }
  uint32_t m = be32(hdr);
  if (m != magic)
    return rt_data_fail(err, errlen, f->path,
                "bad magic 0x%08x (expected 0x%08x, IDX unsigned bytes of %u dimensions)", m,
                magic, magic & 0xff);
  f->count = be32(hdr + 4);
  if (f->count == 0)
    return rt_data_fail(err, errlen, f->path, "header says 0 %s", hdr_len == 16 ? "images" : "labels");
  return 0;
}

/* Reads exactly the `total` bytes the header declares, and checks that nothing follows them.
 * hdr is the header's length; for the messages, `what` says what the header declares ("header
 * says 10 images of 28x28") and `unit` names the bytes ("pixels", "labels"). */
static int read_payload(IdxFile *f, size_t hdr, size_t total, const char *what, const char *unit,
                        uint8_t **out, char *err, size_t errlen) {
  char msg[160];
  *out = NULL;
  if (f->plain) { /* the size on disk is the truth: check it before allocating */
    size_t avail = f->size - hdr;
    if (avail < total) {
      snprintf(msg, sizeof msg, "%s, file holds %zu bytes of %s", what, avail, unit);
      return short_read(f, err, errlen, msg);
    }
    if (avail > total)
      return rt_data_fail(err, errlen, f->path,
                  "trailing data: %zu bytes after what the header declares (%s)", avail - total,
                  what);
  }
  size_t cap = total < ((size_t)1 << 20) ? total : ((size_t)1 << 20), got = 0;
  uint8_t *buf = malloc(cap);
  if (!buf) return rt_data_fail(err, errlen, f->path, "out of memory (%zu bytes)", cap);
  for (;;) {
    size_t k = read_some(f->gz, buf + got, cap - got);
    got += k;
    if (got < cap) { /* data ran out before the header's count */
      free(buf);
      snprintf(msg, sizeof msg, "%s, file holds %zu bytes of %s", what, got, unit);
      return short_read(f, err, errlen, msg);
    }
    if (cap == total) break;
    cap = (cap > total / 2) ? total : cap * 2;
    uint8_t *nb = realloc(buf, cap);
    if (!nb) {
      free(buf);
      return rt_data_fail(err, errlen, f->path, "out of memory (%zu bytes)", cap);
    }
    buf = nb;
  }
  /* One more byte: finds trailing data, and makes zlib check the gzip trailer (CRC, length). */
  unsigned char extra;
  int k = gzread(f->gz, &extra, 1);
  int code = Z_OK;
  const char *zmsg = zlib_why(f, &code);
  if (k < 0 || (code != Z_OK && code != Z_BUF_ERROR)) {
    free(buf);
    return rt_data_fail(err, errlen, f->path, "corrupt gzip stream (%s)", zmsg);
  }
  if (k > 0) {
    free(buf);
    return rt_data_fail(err, errlen, f->path, "trailing data after what the header declares (%s)", what);
  }
  if (code == Z_BUF_ERROR) { /* all data there, but the gzip trailer is cut off */
    free(buf);
    return rt_data_fail(err, errlen, f->path, "truncated gzip stream (%s)", zmsg);
  }
  *out = buf;
  return 0;
}

/* Loads one split: an images file and its labels file. */
static int load_split(const char *dir, const char *img_name, const char *lbl_name, int classes,
                      int c, int h, int w, size_t *n, uint8_t **x, uint8_t **y, char *err,
                      size_t errlen) {
  IdxFile f = {.gz = NULL};
  unsigned char hdr[16];
  char what[128];
  *x = *y = NULL;

  if (open_idx(dir, img_name, IDX_IMAGES_MAGIC, 16, &f, hdr, err, errlen)) goto fail;
  uint32_t rows = be32(hdr + 8), cols = be32(hdr + 12);
  if (c != 1 || rows != (uint32_t)h || cols != (uint32_t)w) {
    rt_data_fail(err, errlen, f.path, "shape %ux%u does not match the declared shape [%d, %d, %d]%s",
         rows, cols, c, h, w, c != 1 ? " (IDX images have 1 channel)" : "");
    goto fail;
  }
  size_t per = (size_t)h * (size_t)w; /* h, w are positive ints: no overflow in size_t */
  if (per != 0 && f.count > SIZE_MAX / per) {
    rt_data_fail(err, errlen, f.path, "header says %u images of %ux%u: too large for memory", f.count,
         rows, cols);
    goto fail;
  }
  uint32_t count = f.count;
  snprintf(what, sizeof what, "header says %u images of %ux%u", count, rows, cols);
  if (read_payload(&f, 16, (size_t)count * per, what, "pixels", x, err, errlen)) goto fail;
  close_idx(&f);

  char img_path[4096];
  snprintf(img_path, sizeof img_path, "%s", f.path);
  if (open_idx(dir, lbl_name, IDX_LABELS_MAGIC, 8, &f, hdr, err, errlen)) goto fail;
  if (f.count != count) {
    rt_data_fail(err, errlen, f.path, "header says %u labels but %s holds %u images", f.count, img_path,
         count);
    goto fail;
  }
  snprintf(what, sizeof what, "header says %u labels", count);
  if (read_payload(&f, 8, count, what, "labels", y, err, errlen)) goto fail;
  for (size_t i = 0; i < count; i++)
    if ((*y)[i] >= classes) {
      rt_data_fail(err, errlen, f.path, "label %u of image %zu is not below classes = %d",
           (unsigned)(*y)[i], i, classes);
      goto fail;
    }
  close_idx(&f);
  *n = count;
  return 0;

fail:
  close_idx(&f);
  free(*x);
  free(*y);
  *x = *y = NULL;
  return -1;
}

int rt_data_load_idx(const char *dir, int classes, int c, int h, int w, RtDataset *out, char *err,
                     size_t errlen) {
  memset(out, 0, sizeof *out);
  if (strcmp(dir, "fashion-mnist") == 0) dir = RT_FASHION_MNIST_DIR;
  if (classes < 1 || classes > 256)
    return rt_data_fail(err, errlen, dir, "classes = %d is not in 1..256 (labels are bytes)", classes);
  if (c < 1 || h < 1 || w < 1)
    return rt_data_fail(err, errlen, dir, "the declared shape [%d, %d, %d] is not positive", c, h, w);
  RtDataset d = {.classes = classes, .channels = c, .height = h, .width = w};
  if (load_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", classes, c, h, w,
                 &d.n_train, &d.train_x, &d.train_y, err, errlen))
    return -1;
  if (load_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", classes, c, h, w,
                 &d.n_test, &d.test_x, &d.test_y, err, errlen)) {
    rt_data_free(&d);
    return -1;
  }
  *out = d;
  return 0;
}
