/* rt_ckpt: writing and reading checkpoint files (the layout is in rt_ckpt.h).
 *
 * Loading streams the file: every length is checked against the bytes the file still holds before
 * anything is allocated, so a corrupt header cannot ask for gigabytes. When something is wrong we
 * say what: running out of bytes is "truncated"; any other inconsistency is first checked against
 * the checksum, because in a file whose checksum does not match a bad field is corruption, not a
 * writer's bug, and "checksum mismatch" is then the accurate message. */
#include "rt_ckpt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include "rt_data.h" /* rt_data_fail */

static const unsigned char MAGIC[8] = {'M', 'W', 'T', 'C', 'K', 'P', 'T', 0};

int rt_ckpt_looks_like(const char *path) {
  FILE *f = fopen(path, "rb");
  unsigned char head[sizeof MAGIC];
  size_t got = f ? fread(head, 1, sizeof head, f) : 0;
  if (f) fclose(f);
  return got == sizeof MAGIC && memcmp(head, MAGIC, sizeof MAGIC) == 0;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define RT_BIG_ENDIAN 1
#else
#define RT_BIG_ENDIAN 0
#endif

static unsigned long crc_update(unsigned long crc, const void *buf, size_t n) {
  const unsigned char *b = buf;
  while (n > 0) { /* zlib's crc32 takes an unsigned length */
    unsigned k = n > (1u << 30) ? 1u << 30 : (unsigned)n;
    crc = crc32(crc, b, k);
    b += k, n -= k;
  }
  return crc;
}

unsigned long rt_crc32(unsigned long crc, const void *buf, size_t n) { return crc_update(crc, buf, n); }

static void put_le(unsigned char *b, uint64_t v, int n) {
  for (int i = 0; i < n; i++) b[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *b, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v |= (uint64_t)b[i] << (8 * i);
  return v;
}

/* ---- building a checkpoint in memory ---- */

/* Element count of a shape, or -1 when it is invalid or its byte count would overflow. */
static long long shape_elems(int rank, const long long *dims) {
  const uint64_t max =
      ((uint64_t)SIZE_MAX < (uint64_t)INT64_MAX ? (uint64_t)SIZE_MAX : (uint64_t)INT64_MAX) / 4;
  if (rank < 0 || rank > 4) return -1;
  uint64_t n = 1;
  for (int i = 0; i < rank; i++) {
    if (dims[i] < 0) return -1;
    if (dims[i] > 0 && n > max / (uint64_t)dims[i]) return -1;
    n *= (uint64_t)dims[i];
  }
  return (long long)n;
}

static int add_entry(RtCkpt *c, const char *name, RtCkptKind kind, int rank, const long long *dims,
                     const void *data, size_t bytes) {
  char *nm = malloc(strlen(name) + 1);
  void *copy = malloc(bytes ? bytes : 1);
  if (!nm || !copy) {
    free(nm), free(copy);
    return -1;
  }
  strcpy(nm, name);
  if (bytes) memcpy(copy, data, bytes);
  RtCkptEntry *e = NULL;
  for (int i = 0; i < c->n; i++)
    if (strcmp(c->e[i].name, name) == 0) e = &c->e[i];
  if (e) { /* replace in place: the order of the entries stays as it was */
    free(e->name), free(e->data);
  } else {
    if (c->n == c->cap) {
      int cap = c->cap ? 2 * c->cap : 16;
      RtCkptEntry *grown = realloc(c->e, (size_t)cap * sizeof *grown);
      if (!grown) {
        free(nm), free(copy);
        return -1;
      }
      c->e = grown, c->cap = cap;
    }
    e = &c->e[c->n++];
  }
  memset(e, 0, sizeof *e);
  e->name = nm, e->kind = kind, e->rank = rank, e->data = copy, e->bytes = bytes;
  for (int i = 0; i < rank; i++) e->dims[i] = dims[i];
  return 0;
}

int rt_ckpt_add_f32(RtCkpt *c, const char *name, int rank, const long long *dims,
                    const float *data) {
  long long n = shape_elems(rank, dims);
  if (n < 0 || (n > 0 && !data)) return -1;
  return add_entry(c, name, RT_CKPT_F32, rank, dims, data, (size_t)n * 4);
}

int rt_ckpt_add_bytes(RtCkpt *c, const char *name, const void *data, size_t bytes) {
  if ((uint64_t)bytes > (uint64_t)INT64_MAX || (bytes > 0 && !data)) return -1;
  long long dim = (long long)bytes;
  return add_entry(c, name, RT_CKPT_BYTES, 1, &dim, data, bytes);
}

const RtCkptEntry *rt_ckpt_find(const RtCkpt *c, const char *name) {
  for (int i = 0; i < c->n; i++)
    if (strcmp(c->e[i].name, name) == 0) return &c->e[i];
  return NULL;
}

void rt_ckpt_free(RtCkpt *c) {
  for (int i = 0; i < c->n; i++) free(c->e[i].name), free(c->e[i].data);
  free(c->e);
  memset(c, 0, sizeof *c);
}

/* ---- saving ---- */

typedef struct Writer {
  FILE *f;
  unsigned long crc;
  int err; /* errno of the first failed write, else 0 */
} Writer;

static void w_bytes(Writer *w, const void *b, size_t n) {
  if (w->err || n == 0) return;
  w->crc = crc_update(w->crc, b, n);
  if (fwrite(b, 1, n, w->f) != n) w->err = errno ? errno : EIO;
}

static void w_int(Writer *w, uint64_t v, int n) {
  unsigned char b[8];
  put_le(b, v, n);
  w_bytes(w, b, (size_t)n);
}

static void w_f32(Writer *w, const void *data, size_t bytes) {
#if RT_BIG_ENDIAN
  unsigned char buf[4096];
  const unsigned char *s = data;
  for (size_t i = 0; i < bytes; i += sizeof buf) {
    size_t k = bytes - i < sizeof buf ? bytes - i : sizeof buf;
    for (size_t j = 0; j < k; j += 4) {
      uint32_t v;
      memcpy(&v, s + i + j, 4);
      put_le(buf + j, v, 4);
    }
    w_bytes(w, buf, k);
  }
#else
  w_bytes(w, data, bytes);
#endif
}

/* Checks what the loader will check, so that a save never writes a file that will not load. */
static int check_entries(const RtCkpt *c, const char *path, char *err, size_t errlen) {
  for (int i = 0; i < c->n; i++) {
    const RtCkptEntry *e = &c->e[i];
    if (strlen(e->name) > UINT32_MAX)
      return rt_data_fail(err, errlen, path, "entry %d: name too long", i + 1);
    if (e->kind == RT_CKPT_F32) {
      long long n = shape_elems(e->rank, e->dims);
      if (n < 0 || (uint64_t)n * 4 != (uint64_t)e->bytes)
        return rt_data_fail(err, errlen, path, "entry '%s': shape does not match its %zu bytes",
                            e->name, e->bytes);
    } else if (e->kind == RT_CKPT_BYTES) {
      if (e->rank != 1 || (uint64_t)e->dims[0] != (uint64_t)e->bytes)
        return rt_data_fail(err, errlen, path, "entry '%s': a blob has rank 1 and dims[0] = bytes",
                            e->name);
    } else {
      return rt_data_fail(err, errlen, path, "entry '%s': unknown kind %d", e->name, (int)e->kind);
    }
    for (int j = 0; j < i; j++)
      if (strcmp(c->e[j].name, e->name) == 0)
        return rt_data_fail(err, errlen, path, "two entries named '%s'", e->name);
  }
  return 0;
}

/* Makes the rename itself durable; failing to is not an error (the data is already safe). */
static void sync_dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : 0;
  char dir[4096];
  if (n >= sizeof dir) return;
  if (!slash) strcpy(dir, ".");
  else if (n == 0) strcpy(dir, "/");
  else memcpy(dir, path, n), dir[n] = 0;
  int fd = open(dir, O_RDONLY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

/* A path that is there and is neither a regular file nor a directory: rt_ckpt_save writes it in
 * place, as a shell's `>` does. A temporary file renamed over /dev/null replaced the device with a
 * regular file (as root), and is not allowed beside it for anyone else (/dev is not theirs). */
bool rt_ckpt_in_place(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

/* Creates PATH.tmp.<pid>, the file rt_ckpt_save writes before renaming it over PATH; *tmp gets its
 * name (the caller frees it). For a path written in place (rt_ckpt_in_place), opens PATH itself and sets
 * *tmp to NULL. NULL with "PATH: problem" in err. */
static FILE *create_tmp(const char *path, char **tmp, char *err, size_t errlen) {
  if (rt_ckpt_in_place(path)) {
    *tmp = NULL;
    FILE *f = fopen(path, "wb");
    if (!f) rt_data_fail(err, errlen, path, "cannot open it: %s", strerror(errno));
    return f;
  }
  size_t len = strlen(path) + 32;
  *tmp = malloc(len);
  if (!*tmp) {
    rt_data_fail(err, errlen, path, "out of memory");
    return NULL;
  }
  snprintf(*tmp, len, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(*tmp, "wb");
  if (!f) {
    rt_data_fail(err, errlen, path, "cannot create it: %s", strerror(errno));
    free(*tmp);
    *tmp = NULL;
  }
  return f;
}

int rt_ckpt_writable(const char *path, char *err, size_t errlen) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return rt_data_fail(err, errlen, path, "is a directory, not a file");
  if (rt_ckpt_in_place(path)) /* not opened: a FIFO's open would wait for a reader */
    return access(path, W_OK) == 0 ? 0 : rt_data_fail(err, errlen, path, "cannot write it: %s", strerror(errno));
  char *tmp;
  FILE *f = create_tmp(path, &tmp, err, errlen);
  if (!f) return -1;
  fclose(f);
  unlink(tmp);
  free(tmp);
  return 0;
}

int rt_ckpt_save(const RtCkpt *c, const char *path, char *err, size_t errlen) {
  if (check_entries(c, path, err, errlen)) return -1;
  char *tmp;
  FILE *f = create_tmp(path, &tmp, err, errlen);
  if (!f) return -1;
  Writer w = {f, crc32(0, NULL, 0), 0};
  w_bytes(&w, MAGIC, sizeof MAGIC);
  w_int(&w, RT_CKPT_VERSION, 4);
  w_int(&w, (uint64_t)c->n, 4);
  for (int i = 0; i < c->n; i++) {
    const RtCkptEntry *e = &c->e[i];
    size_t nl = strlen(e->name);
    w_int(&w, nl, 4);
    w_bytes(&w, e->name, nl);
    w_int(&w, (uint64_t)e->kind, 4);
    w_int(&w, (uint64_t)e->rank, 4);
    for (int d = 0; d < e->rank; d++) w_int(&w, (uint64_t)e->dims[d], 8);
    w_int(&w, e->bytes, 8);
    if (e->kind == RT_CKPT_F32) w_f32(&w, e->data, e->bytes);
    else w_bytes(&w, e->data, e->bytes);
  }
  unsigned char crc[4];
  put_le(crc, w.crc, 4);
  if (!w.err && fwrite(crc, 1, 4, f) != 4) w.err = errno ? errno : EIO;
  if (!w.err && fflush(f) != 0) w.err = errno;
  if (!w.err && tmp && fsync(fileno(f)) != 0) w.err = errno;   /* /dev/null cannot sync */
  if (fclose(f) != 0 && !w.err) w.err = errno;
  if (w.err && !tmp) {
    rt_data_fail(err, errlen, path, "cannot write it: %s", strerror(w.err));
  } else if (w.err) {
    /* the temporary file goes; a checkpoint already at path is as it was */
    rt_data_fail(err, errlen, path, "cannot write it: %s (a checkpoint already there is unchanged)", strerror(w.err));
  } else if (tmp && rename(tmp, path) != 0) {
    w.err = errno;
    rt_data_fail(err, errlen, path, "cannot replace it: %s (a checkpoint already there is unchanged)", strerror(w.err));
  }
  if (tmp && w.err) unlink(tmp);
  else if (tmp) sync_dir_of(path);
  free(tmp);
  return w.err ? -1 : 0;
}

/* ---- loading ---- */

/* TRUNCATED: a length runs past the end. INVALID: some field is wrong (r->msg says which). */
enum { OK = 0, TRUNCATED, INVALID, NO_MEMORY };

typedef struct Reader {
  FILE *f;
  uint64_t left; /* bytes before the checksum not read yet */
  unsigned long crc;
  char msg[300];
} Reader;

static int invalid(Reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int invalid(Reader *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->msg, sizeof r->msg, fmt, ap);
  va_end(ap);
  return INVALID;
}

static int r_bytes(Reader *r, void *b, uint64_t n) {
  if (n > r->left) return TRUNCATED;
  if (n && fread(b, 1, (size_t)n, r->f) != n) return TRUNCATED; /* the file shrank under us */
  r->left -= n;
  r->crc = crc_update(r->crc, b, (size_t)n);
  return OK;
}

static int r_int(Reader *r, uint64_t *v, int n) {
  unsigned char b[8];
  int rc = r_bytes(r, b, (uint64_t)n);
  if (rc == OK) *v = get_le(b, n);
  return rc;
}

/* A name fit for a message: at most 40 characters, unprintable ones as '?'. */
static void printable(char *out, const char *name) {
  int i = 0;
  for (; name[i] && i < 40; i++) out[i] = name[i] >= 32 && name[i] < 127 ? name[i] : '?';
  strcpy(out + i, name[i] ? "..." : "");
}

static int r_entry(Reader *r, RtCkptEntry *e, uint64_t index) {
  uint64_t nl, kind, rank, dim, bytes;
  char shown[48];
  int rc;
  if ((rc = r_int(r, &nl, 4))) return rc;
  if (nl > r->left) return TRUNCATED; /* before allocating */
  if (!(e->name = malloc((size_t)nl + 1))) return NO_MEMORY;
  if ((rc = r_bytes(r, e->name, nl))) return rc;
  e->name[nl] = 0;
  if (memchr(e->name, 0, (size_t)nl))
    return invalid(r, "entry %llu: its name contains a NUL byte", (unsigned long long)index);
  printable(shown, e->name);
  if ((rc = r_int(r, &kind, 4)) || (rc = r_int(r, &rank, 4))) return rc;
  if (kind != RT_CKPT_F32 && kind != RT_CKPT_BYTES)
    return invalid(r, "entry '%s': unknown kind %llu", shown, (unsigned long long)kind);
  e->kind = (RtCkptKind)kind;
  if (kind == RT_CKPT_F32 && rank > 4)
    return invalid(r, "entry '%s': rank %llu (at most 4)", shown, (unsigned long long)rank);
  if (kind == RT_CKPT_BYTES && rank != 1)
    return invalid(r, "entry '%s': a byte blob of rank %llu (not 1)", shown,
                   (unsigned long long)rank);
  e->rank = (int)rank;
  for (int d = 0; d < e->rank; d++) {
    if ((rc = r_int(r, &dim, 8))) return rc;
    if (dim > (uint64_t)INT64_MAX)
      return invalid(r, "entry '%s': negative dimension %lld", shown, (long long)dim);
    e->dims[d] = (long long)dim;
  }
  if ((rc = r_int(r, &bytes, 8))) return rc;
  long long elems = kind == RT_CKPT_F32 ? shape_elems(e->rank, e->dims) : e->dims[0];
  if (elems < 0 || (kind == RT_CKPT_F32 ? (uint64_t)elems * 4 : (uint64_t)elems) != bytes)
    return invalid(r, "entry '%s': %llu bytes do not match its shape", shown,
                   (unsigned long long)bytes);
  if (bytes > r->left) return TRUNCATED; /* before allocating: the file must hold them */
  if (!(e->data = malloc(bytes ? (size_t)bytes : 1))) return NO_MEMORY;
  if ((rc = r_bytes(r, e->data, bytes))) return rc;
  e->bytes = (size_t)bytes;
#if RT_BIG_ENDIAN
  if (kind == RT_CKPT_F32)
    for (size_t i = 0; i < e->bytes; i += 4) {
      uint32_t v = (uint32_t)get_le((unsigned char *)e->data + i, 4);
      memcpy((char *)e->data + i, &v, 4);
    }
#endif
  return OK;
}

static int by_name(const void *a, const void *b) {
  return strcmp((*(const RtCkptEntry *const *)a)->name, (*(const RtCkptEntry *const *)b)->name);
}

/* Sorts pointers to the entries and compares neighbours: a hostile file may hold very many
 * entries, so no quadratic scan. */
static int check_unique(Reader *r, const RtCkpt *c) {
  if (c->n < 2) return OK;
  const RtCkptEntry **v = malloc((size_t)c->n * sizeof *v);
  if (!v) return NO_MEMORY;
  for (int i = 0; i < c->n; i++) v[i] = &c->e[i];
  qsort(v, (size_t)c->n, sizeof *v, by_name);
  int rc = OK;
  for (int i = 1; i < c->n && rc == OK; i++)
    if (strcmp(v[i - 1]->name, v[i]->name) == 0) {
      char shown[48];
      printable(shown, v[i]->name);
      rc = invalid(r, "two entries named '%s'", shown);
    }
  free(v);
  return rc;
}

static int load_body(RtCkpt *c, Reader *r, uint64_t count) {
  int rc;
  for (uint64_t i = 0; i < count; i++) {
    if (r->left < 20) return TRUNCATED; /* the smallest entry; this also bounds a lying count */
    if (c->n == INT32_MAX) return invalid(r, "more than %d entries", INT32_MAX);
    if (c->n == c->cap) {
      int cap = c->cap == 0 ? 16 : c->cap > INT32_MAX / 2 ? INT32_MAX : 2 * c->cap;
      RtCkptEntry *grown = realloc(c->e, (size_t)cap * sizeof *grown);
      if (!grown) return NO_MEMORY;
      c->e = grown, c->cap = cap;
    }
    RtCkptEntry *e = &c->e[c->n++];
    memset(e, 0, sizeof *e);
    if ((rc = r_entry(r, e, i + 1))) return rc;
  }
  if (r->left > 0)
    return invalid(r, "%llu bytes after the last entry", (unsigned long long)r->left);
  return check_unique(r, c);
}

/* Whether the checksum matches the file, reading it again from the start. */
static int checksum_ok(FILE *f, uint64_t size) {
  unsigned char buf[65536], stored[4];
  unsigned long crc = crc32(0, NULL, 0);
  if (size < 4 || fseek(f, 0, SEEK_SET) != 0) return 0;
  for (uint64_t left = size - 4; left > 0;) {
    size_t k = left < sizeof buf ? (size_t)left : sizeof buf;
    if (fread(buf, 1, k, f) != k) return 0;
    crc = crc_update(crc, buf, k);
    left -= k;
  }
  return fread(stored, 1, 4, f) == 4 && get_le(stored, 4) == (crc & 0xffffffffu);
}

#define CORRUPT "checksum mismatch (the file is corrupt)"

int rt_ckpt_load(RtCkpt *c, const char *path, char *err, size_t errlen) {
  rt_ckpt_free(c);
  FILE *f = fopen(path, "rb");
  if (!f) return rt_data_fail(err, errlen, path, "cannot open: %s", strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return rt_data_fail(err, errlen, path, "not a regular file");
  }
  uint64_t size = (uint64_t)st.st_size;
  unsigned char head[16];
  size_t got = fread(head, 1, sizeof head, f);
  int rc = -1;
  if (got == 0) {
    rt_data_fail(err, errlen, path, "empty file (not an mwtc checkpoint)");
  } else if (memcmp(head, MAGIC, got < 8 ? got : 8) != 0) {
    rt_data_fail(err, errlen, path, "not an mwtc checkpoint");
  } else if (got < 12) {
    rt_data_fail(err, errlen, path, "truncated");
  } else if (get_le(head + 8, 4) != RT_CKPT_VERSION) {
    rt_data_fail(err, errlen, path, "checkpoint format version %llu, this mwtc reads version %u",
                 (unsigned long long)get_le(head + 8, 4), RT_CKPT_VERSION);
  } else if (got < 16 || size < 20) {
    rt_data_fail(err, errlen, path, "truncated");
  } else {
    Reader r = {f, size - 20, crc_update(crc32(0, NULL, 0), head, 16), ""};
    int status = load_body(c, &r, get_le(head + 12, 4));
    unsigned char stored[4];
    if (status == OK && (fread(stored, 1, 4, f) != 4 || get_le(stored, 4) != (r.crc & 0xffffffffu)))
      status = invalid(&r, CORRUPT);
    else if (status == INVALID && !checksum_ok(f, size))
      status = invalid(&r, CORRUPT); /* a bad field in a corrupt file: corruption, not a bug */
    if (status == OK) rc = 0;
    else if (status == TRUNCATED) rt_data_fail(err, errlen, path, "truncated");
    else if (status == NO_MEMORY) rt_data_fail(err, errlen, path, "out of memory");
    else rt_data_fail(err, errlen, path, "%s", r.msg);
  }
  fclose(f);
  if (rc != 0) rt_ckpt_free(c);
  return rc;
}
