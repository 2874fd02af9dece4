/* Unit tests of runtime/rt_ckpt.c: round trips, every single-byte corruption and every
 * truncation of a small file, hand-made files with a valid checksum but a bad field, and the
 * atomic replacement on save. Files go under $MWTC_TEST_TMP. */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "rt_ckpt.h"
#include "rt_test.h"

static char dir[4096];
static char err[512];

static int setup(void **state) {
  (void)state;
  return rt_test_mkdir(dir, sizeof dir, "rt_ckpt");
}

static int teardown(void **state) {
  (void)state;
  rt_test_rmdir(dir);
  return 0;
}

static const char *path_of(const char *name) {
  static char p[8192];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return p;
}

static size_t read_file(const char *path, unsigned char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  size_t n = fread(buf, 1, cap, f);
  assert_true(n < cap);
  fclose(f);
  return n;
}

static void write_file(const char *path, const unsigned char *buf, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(buf, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

/* Loading fails with exactly "PATH: want" (or containing want when exact is 0) and c is empty. */
static void expect_load_error(const char *path, const char *want, int exact) {
  RtCkpt c = {0};
  err[0] = 0;
  int rc = rt_ckpt_load(&c, path, err, sizeof err);
  char full[8192 + 512];
  snprintf(full, sizeof full, "%s: %s", path, want);
  if (rc == 0 || (exact ? strcmp(err, full) != 0 : !strstr(err, want)))
    print_error("rc = %d, message \"%s\", expected \"%s\"\n", rc, err, full);
  assert_int_equal(rc, -1);
  assert_true(exact ? strcmp(err, full) == 0 : strstr(err, want) && strstr(err, path) == err);
  assert_null(c.e);
  assert_int_equal(c.n, 0);
}

static uint32_t bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static float from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* A checkpoint with a tensor of every rank, an empty tensor, special floats and blobs. */
static void build(RtCkpt *c, float scale) {
  float v[120];
  for (int i = 0; i < 120; i++) v[i] = (float)(i - 60) * scale / 7.0f;
  v[0] = from_bits(0x7fc12345u); /* a NaN with a payload */
  v[1] = -0.0f, v[2] = INFINITY, v[3] = from_bits(1); /* the smallest denormal */
  long long d0[1] = {0}, d1[1] = {5}, d2[2] = {3, 4}, d3[3] = {2, 3, 4}, d4[4] = {2, 3, 4, 5};
  long long de[2] = {3, 0};
  assert_int_equal(rt_ckpt_add_f32(c, "scalar", 0, d0, v + 9), 0);
  assert_int_equal(rt_ckpt_add_f32(c, "fc.bias", 1, d1, v), 0);
  assert_int_equal(rt_ckpt_add_f32(c, "fc.weight", 2, d2, v), 0);
  assert_int_equal(rt_ckpt_add_f32(c, "t3", 3, d3, v), 0);
  assert_int_equal(rt_ckpt_add_f32(c, "conv1.weight", 4, d4, v), 0);
  assert_int_equal(rt_ckpt_add_f32(c, "empty", 2, de, NULL), 0);
  static const unsigned char blob[] = {0, 1, 2, 0xff, 0, 'x'};
  assert_int_equal(rt_ckpt_add_bytes(c, "rng", blob, sizeof blob), 0);
  assert_int_equal(rt_ckpt_add_bytes(c, "source", "model m { }\n", 12), 0);
  assert_int_equal(rt_ckpt_add_bytes(c, "nothing", NULL, 0), 0);
}

static void check_same(const RtCkpt *a, const RtCkpt *b) {
  assert_int_equal(a->n, b->n);
  for (int i = 0; i < a->n; i++) {
    const RtCkptEntry *x = &a->e[i], *y = &b->e[i];
    assert_string_equal(x->name, y->name);
    assert_int_equal(x->kind, y->kind);
    assert_int_equal(x->rank, y->rank);
    for (int d = 0; d < 4; d++) assert_true(x->dims[d] == y->dims[d]);
    assert_int_equal(x->bytes, y->bytes);
    assert_non_null(y->data);
    if (x->bytes) assert_memory_equal(x->data, y->data, x->bytes);
  }
}

static void test_round_trip(void **state) {
  (void)state;
  RtCkpt c = {0}, back = {0};
  build(&c, 1.0f);
  assert_int_equal(c.n, 9);
  const char *p = path_of("round.ckpt");
  assert_int_equal(rt_ckpt_save(&c, p, err, sizeof err), 0);
  assert_int_equal(rt_ckpt_load(&back, p, err, sizeof err), 0);
  check_same(&c, &back);
  const RtCkptEntry *e = rt_ckpt_find(&back, "fc.bias");
  assert_non_null(e);
  assert_int_equal(e->kind, RT_CKPT_F32);
  assert_int_equal(bits(((float *)e->data)[0]), 0x7fc12345u);
  assert_int_equal(bits(((float *)e->data)[1]), 0x80000000u);
  assert_int_equal(bits(((float *)e->data)[3]), 1);
  e = rt_ckpt_find(&back, "scalar");
  assert_int_equal(e->rank, 0);
  assert_int_equal(e->bytes, 4);
  e = rt_ckpt_find(&back, "rng");
  assert_int_equal(e->kind, RT_CKPT_BYTES);
  assert_int_equal(e->rank, 1);
  assert_true(e->dims[0] == 6);
  assert_null(rt_ckpt_find(&back, "missing"));
  /* Loading into a checkpoint that holds something replaces it. */
  assert_int_equal(rt_ckpt_load(&back, p, err, sizeof err), 0);
  check_same(&c, &back);
  rt_ckpt_free(&c);
  rt_ckpt_free(&back);
  rt_ckpt_free(&back);
  /* The empty checkpoint. */
  assert_int_equal(rt_ckpt_save(&c, p, err, sizeof err), 0);
  assert_int_equal(rt_ckpt_load(&back, p, err, sizeof err), 0);
  assert_int_equal(back.n, 0);
  rt_ckpt_free(&back);
}

/* The byte layout is the documented one, so that other tools can read it. */
static void test_layout(void **state) {
  (void)state;
  RtCkpt c = {0};
  long long d[1] = {2};
  float v[2] = {1.0f, -2.0f};
  assert_int_equal(rt_ckpt_add_f32(&c, "w", 1, d, v), 0);
  const char *p = path_of("layout.ckpt");
  assert_int_equal(rt_ckpt_save(&c, p, err, sizeof err), 0);
  rt_ckpt_free(&c);
  unsigned char b[256];
  size_t n = read_file(p, b, sizeof b);
  static const unsigned char want[] = {
      'M', 'W', 'T', 'C', 'K', 'P', 'T', 0, 1, 0, 0, 0, 1, 0, 0, 0, /* magic, version, count */
      1, 0, 0, 0, 'w', 1, 0, 0, 0, 1, 0, 0, 0,                      /* name, kind, rank */
      2, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0,               /* dims, bytes */
      0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0};                             /* 1.0f, -2.0f */
  assert_int_equal(n, sizeof want + 4);
  assert_memory_equal(b, want, sizeof want);
  uint32_t crc = (uint32_t)crc32(0, want, sizeof want);
  assert_int_equal(b[sizeof want] | b[sizeof want + 1] << 8 | b[sizeof want + 2] << 16 |
                       (uint32_t)b[sizeof want + 3] << 24,
                   crc);
}

static void test_add_replaces_and_rejects(void **state) {
  (void)state;
  RtCkpt c = {0};
  long long d[2] = {2, 2};
  float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
  assert_int_equal(rt_ckpt_add_f32(&c, "w", 2, d, a), 0);
  assert_int_equal(rt_ckpt_add_bytes(&c, "meta", "x", 1), 0);
  assert_int_equal(rt_ckpt_add_f32(&c, "w", 1, d, b), 0);
  assert_int_equal(c.n, 2);
  assert_string_equal(c.e[0].name, "w"); /* in place */
  assert_int_equal(c.e[0].rank, 1);
  assert_int_equal(c.e[0].bytes, 8);
  assert_true(c.e[0].dims[1] == 0);
  assert_true(((float *)c.e[0].data)[1] == 6.0f);
  long long bad[2] = {2, -1}, huge[4] = {1LL << 40, 1LL << 40, 1LL << 40, 1LL << 40};
  assert_int_equal(rt_ckpt_add_f32(&c, "bad", 2, bad, a), -1);
  assert_int_equal(rt_ckpt_add_f32(&c, "bad", 5, d, a), -1);
  assert_int_equal(rt_ckpt_add_f32(&c, "bad", 4, huge, a), -1);
  assert_int_equal(c.n, 2);
  /* Many entries: the array grows. */
  char name[32];
  for (int i = 0; i < 100; i++) {
    snprintf(name, sizeof name, "p%d", i);
    assert_int_equal(rt_ckpt_add_bytes(&c, name, name, strlen(name)), 0);
  }
  assert_int_equal(c.n, 102);
  assert_memory_equal(rt_ckpt_find(&c, "p57")->data, "p57", 3);
  rt_ckpt_free(&c);
}

static unsigned char good[4096], bad[4096];

/* A small valid file; returns its size. */
static size_t small_file(const char *p) {
  RtCkpt c = {0};
  long long d[2] = {2, 3};
  float v[6] = {1, 2, 3, 4, 5, 6};
  assert_int_equal(rt_ckpt_add_f32(&c, "a", 2, d, v), 0);
  assert_int_equal(rt_ckpt_add_bytes(&c, "bb", "xyz", 3), 0);
  assert_int_equal(rt_ckpt_add_f32(&c, "s", 0, NULL, v), 0);
  assert_int_equal(rt_ckpt_save(&c, p, err, sizeof err), 0);
  rt_ckpt_free(&c);
  return read_file(p, good, sizeof good);
}

static void test_every_corruption_rejected(void **state) {
  (void)state;
  const char *p = path_of("small.ckpt");
  size_t n = small_file(p);
  static const unsigned char flips[] = {0x01, 0x80, 0xff, 0x10};
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < sizeof flips; k++) {
      memcpy(bad, good, n);
      bad[i] ^= flips[k];
      write_file(p, bad, n);
      RtCkpt c = {0};
      err[0] = 0;
      int rc = rt_ckpt_load(&c, p, err, sizeof err);
      if (rc == 0) print_error("byte %zu ^ 0x%02x was accepted\n", i, flips[k]);
      assert_int_equal(rc, -1);
      assert_true(strncmp(err, p, strlen(p)) == 0 && strlen(err) > strlen(p) + 2);
      assert_null(c.e);
      /* Past the magic and the version, a changed byte is reported as what it is. */
      if (i >= 12) assert_true(strstr(err, "checksum mismatch") || strstr(err, "truncated"));
    }
  memcpy(bad, good, n);
  bad[n - 1] ^= 1;
  write_file(p, bad, n);
  expect_load_error(p, "checksum mismatch (the file is corrupt)", 1);
  memcpy(bad, good, n);
  bad[0] = 'X';
  write_file(p, bad, n);
  expect_load_error(p, "not an mwtc checkpoint", 1);
}

static void test_every_truncation_rejected(void **state) {
  (void)state;
  const char *p = path_of("trunc.ckpt");
  size_t n = small_file(p);
  for (size_t len = 0; len < n; len++) {
    write_file(p, good, len);
    RtCkpt c = {0};
    err[0] = 0;
    if (rt_ckpt_load(&c, p, err, sizeof err) == 0) print_error("length %zu was accepted\n", len);
    assert_null(c.e);
    assert_non_null(strstr(err, len == 0 ? ": empty file" : ": truncated"));
  }
  write_file(p, good, 30);
  expect_load_error(p, "truncated", 1);
  /* One byte too many. */
  memcpy(bad, good, n);
  bad[n] = 0;
  write_file(p, bad, n + 1);
  expect_load_error(p, "checksum mismatch (the file is corrupt)", 1);
}

/* Hand-made files whose checksum is right but a field is not. */
static size_t put(unsigned char *b, size_t at, uint64_t v, int n) {
  for (int i = 0; i < n; i++) b[at + i] = (unsigned char)(v >> (8 * i));
  return at + (size_t)n;
}

static size_t header(unsigned char *b, uint32_t version, uint32_t count) {
  memcpy(b, "MWTCKPT", 8);
  put(b, 8, version, 4);
  return put(b, 12, count, 4);
}

static size_t entry(unsigned char *b, size_t at, const char *name, size_t nl, uint32_t kind,
                    uint32_t rank, const int64_t *dims, uint64_t bytes, size_t data) {
  at = put(b, at, nl, 4);
  if (nl > 16) nl = 0; /* a lying length: the name is not there */
  memcpy(b + at, name, nl);
  at = put(b, at + nl, kind, 4);
  at = put(b, at, rank, 4);
  for (uint32_t d = 0; d < rank && d < 8; d++) at = put(b, at, (uint64_t)dims[d], 8);
  at = put(b, at, bytes, 8);
  memset(b + at, 0x3f, data);
  return at + data;
}

static void finish(const char *p, unsigned char *b, size_t n) {
  n = put(b, n, crc32(0, b, (unsigned)n), 4);
  write_file(p, b, n);
}

static void test_invalid_fields(void **state) {
  (void)state;
  const char *p = path_of("made.ckpt");
  unsigned char b[1024];
  int64_t d2[2] = {2, 3}, neg[2] = {2, -3}, big[4] = {1LL << 62, 1LL << 62, 4, 4};
  int64_t d5[5] = {1, 1, 1, 1, 1}, d4[1] = {4};
  size_t n;

  n = header(b, 1, 1);
  finish(p, b, entry(b, n, "w", 1, RT_CKPT_F32, 2, d2, 24, 24));
  RtCkpt ok = {0};
  assert_int_equal(rt_ckpt_load(&ok, p, err, sizeof err), 0); /* the maker itself is right */
  rt_ckpt_free(&ok);

  n = header(b, 7, 0);
  finish(p, b, n);
  expect_load_error(p, "checkpoint format version 7, this mwtc reads version 1", 1);
  n = header(b, 1, 1);
  finish(p, b, entry(b, n, "w", 1, 9, 2, d2, 24, 24));
  expect_load_error(p, "entry 'w': unknown kind 9", 1);
  finish(p, b, entry(b, n, "w", 1, RT_CKPT_F32, 5, d5, 4, 4));
  expect_load_error(p, "entry 'w': rank 5 (at most 4)", 1);
  finish(p, b, entry(b, n, "w", 1, RT_CKPT_F32, 2, neg, 24, 24));
  expect_load_error(p, "entry 'w': negative dimension -3", 1);
  finish(p, b, entry(b, n, "w", 1, RT_CKPT_F32, 2, d2, 20, 20));
  expect_load_error(p, "entry 'w': 20 bytes do not match its shape", 1);
  finish(p, b, entry(b, n, "w", 1, RT_CKPT_F32, 4, big, 0, 0));
  expect_load_error(p, "entry 'w': 0 bytes do not match its shape", 1);
  finish(p, b, entry(b, n, "a\0b", 3, RT_CKPT_F32, 2, d2, 24, 24));
  expect_load_error(p, "entry 1: its name contains a NUL byte", 1);
  finish(p, b, entry(b, n, "w", 1, RT_CKPT_BYTES, 0, d2, 0, 0));
  expect_load_error(p, "entry 'w': a byte blob of rank 0 (not 1)", 1);
  finish(p, b, entry(b, n, "w", 1, RT_CKPT_BYTES, 1, d4, 3, 3));
  expect_load_error(p, "entry 'w': 3 bytes do not match its shape", 1);
  finish(p, b, entry(b, n, "w\n", 2, RT_CKPT_BYTES, 1, d4, 3, 3));
  expect_load_error(p, "entry 'w?': 3 bytes do not match its shape", 1);
  /* Sizes far beyond the file: rejected before anything is allocated. */
  finish(p, b, entry(b, n, "w", 1, RT_CKPT_BYTES, 1, (int64_t[]){INT64_MAX}, INT64_MAX, 0));
  expect_load_error(p, "truncated", 1);
  finish(p, b, entry(b, n, "w", 0xffffffff, RT_CKPT_BYTES, 0, d2, 0, 0));
  expect_load_error(p, "truncated", 1);
  n = header(b, 1, 0xffffffff);
  finish(p, b, entry(b, n, "w", 1, RT_CKPT_F32, 2, d2, 24, 24));
  expect_load_error(p, "truncated", 1);
  /* Duplicates, and bytes after the last entry. */
  n = header(b, 1, 3);
  n = entry(b, n, "x", 1, RT_CKPT_F32, 2, d2, 24, 24);
  n = entry(b, n, "y", 1, RT_CKPT_F32, 2, d2, 24, 24);
  finish(p, b, entry(b, n, "x", 1, RT_CKPT_BYTES, 1, d4, 4, 4));
  expect_load_error(p, "two entries named 'x'", 1);
  n = header(b, 1, 1);
  n = entry(b, n, "x", 1, RT_CKPT_F32, 2, d2, 24, 24);
  finish(p, b, put(b, n, 0, 3));
  expect_load_error(p, "3 bytes after the last entry", 1);
  /* Not checkpoints at all. */
  write_file(p, (const unsigned char *)"MWT", 3);
  expect_load_error(p, "truncated", 1);
  write_file(p, (const unsigned char *)"hello, world, this is text\n", 27);
  expect_load_error(p, "not an mwtc checkpoint", 1);
  write_file(p, (const unsigned char *)"", 0);
  expect_load_error(p, "empty file (not an mwtc checkpoint)", 1);
}

static void test_missing_and_unwritable(void **state) {
  (void)state;
  expect_load_error(path_of("nonexistent.ckpt"), "cannot open: No such file or directory", 1);
  expect_load_error(dir, "not a regular file", 1);
  RtCkpt c = {0};
  build(&c, 1.0f);
  char p[8192];
  snprintf(p, sizeof p, "%s/no/such/dir/x.ckpt", dir);
  err[0] = 0;
  assert_int_equal(rt_ckpt_save(&c, p, err, sizeof err), -1);
  assert_true(strncmp(err, p, strlen(p)) == 0);
  assert_non_null(strstr(err, "cannot create it: No such file or directory"));
  assert_null(strstr(err, ".tmp."));
  /* A directory in the way: the rename fails, and the temporary file is removed. */
  assert_int_equal(rt_ckpt_save(&c, dir, err, sizeof err), -1);
  assert_non_null(strstr(err, "cannot replace it: "));
  assert_null(strstr(err, ".tmp."));   /* the message names the checkpoint, not the temporary file */
  rt_ckpt_free(&c);
  /* rt_ckpt_writable says the same before anything is trained, and leaves nothing behind */
  assert_int_equal(rt_ckpt_writable(p, err, sizeof err), -1);
  assert_non_null(strstr(err, "cannot create"));
  assert_int_equal(rt_ckpt_writable(dir, err, sizeof err), -1);
  assert_non_null(strstr(err, "is a directory"));
  const char *ok = path_of("writable.ckpt");
  assert_int_equal(rt_ckpt_writable(ok, err, sizeof err), 0);
  assert_int_equal(access(ok, F_OK), -1);
}

static int tmp_files_left(void) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) n += strstr(e->d_name, ".tmp") != NULL;
  closedir(d);
  return n;
}

static void test_save_replaces(void **state) {
  (void)state;
  const char *p = path_of("replace.ckpt");
  RtCkpt a = {0}, b = {0}, back = {0};
  build(&a, 1.0f);
  build(&b, 3.0f);
  assert_int_equal(rt_ckpt_add_bytes(&b, "extra", "e", 1), 0);
  assert_int_equal(rt_ckpt_save(&a, p, err, sizeof err), 0);
  assert_int_equal(rt_ckpt_save(&b, p, err, sizeof err), 0);
  assert_int_equal(rt_ckpt_load(&back, p, err, sizeof err), 0);
  check_same(&b, &back);
  assert_int_equal(tmp_files_left(), 0);
  rt_ckpt_free(&a);
  rt_ckpt_free(&b);
  rt_ckpt_free(&back);
}

/* What a FIFO's reader got: all of it, up to EOF. */
typedef struct {
  const char *path;
  unsigned char buf[1 << 16];
  size_t n;
} FifoRead;

static void *read_fifo(void *arg) {
  FifoRead *r = arg;
  FILE *f = fopen(r->path, "rb");
  if (f) {
    size_t k;
    while ((k = fread(r->buf + r->n, 1, sizeof r->buf - r->n, f)) > 0) r->n += k;
    fclose(f);
  }
  return NULL;
}

/* `-o /dev/null` and a FIFO: written in place, the same bytes as a file gets; /dev/null stays the
 * device (a temporary file renamed over it had replaced it with a regular file, as root), and no
 * temporary file is left. */
static void test_special_files(void **state) {
  (void)state;
  RtCkpt c = {0};
  build(&c, 2.0f);
  assert_int_equal(rt_ckpt_writable("/dev/null", err, sizeof err), 0);
  assert_int_equal(rt_ckpt_save(&c, "/dev/null", err, sizeof err), 0);
  struct stat st;
  assert_int_equal(stat("/dev/null", &st), 0);
  assert_true(S_ISCHR(st.st_mode));
  const char *file = path_of("plain.ckpt");
  assert_int_equal(rt_ckpt_save(&c, file, err, sizeof err), 0);
  FILE *f = fopen(file, "rb");
  assert_non_null(f);
  static unsigned char want[1 << 16];
  size_t nwant = fread(want, 1, sizeof want, f);
  fclose(f);
  char fifo[8192];
  snprintf(fifo, sizeof fifo, "%s", path_of("pipe.ckpt"));
  assert_int_equal(mkfifo(fifo, 0600), 0);
  static FifoRead r;
  r.path = fifo, r.n = 0;
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, read_fifo, &r), 0);
  assert_int_equal(rt_ckpt_writable(fifo, err, sizeof err), 0);   /* does not wait for the reader */
  assert_int_equal(rt_ckpt_save(&c, fifo, err, sizeof err), 0);
  pthread_join(t, NULL);
  assert_int_equal(r.n, nwant);
  assert_memory_equal(r.buf, want, nwant);
  assert_int_equal(stat(fifo, &st), 0);
  assert_true(S_ISFIFO(st.st_mode));
  assert_int_equal(tmp_files_left(), 0);
  remove(fifo);
  rt_ckpt_free(&c);
}

/* A bigger tensor (4 MB) goes through the streaming paths in more than one piece. */
static void test_large_tensor(void **state) {
  (void)state;
  enum { K = 1 << 20 };
  float *v = malloc(K * sizeof *v);
  assert_non_null(v);
  for (int i = 0; i < K; i++) v[i] = (float)i * 0.5f - 7.0f;
  RtCkpt c = {0}, back = {0};
  long long d[2] = {1024, 1024};
  assert_int_equal(rt_ckpt_add_f32(&c, "big", 2, d, v), 0);
  const char *p = path_of("big.ckpt");
  assert_int_equal(rt_ckpt_save(&c, p, err, sizeof err), 0);
  assert_int_equal(rt_ckpt_load(&back, p, err, sizeof err), 0);
  assert_memory_equal(back.e[0].data, v, K * sizeof *v);
  free(v);
  rt_ckpt_free(&c);
  rt_ckpt_free(&back);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_layout),
      cmocka_unit_test(test_add_replaces_and_rejects),
      cmocka_unit_test(test_every_corruption_rejected),
      cmocka_unit_test(test_every_truncation_rejected),
      cmocka_unit_test(test_invalid_fields),
      cmocka_unit_test(test_missing_and_unwritable),
      cmocka_unit_test(test_save_replaces),
      cmocka_unit_test(test_special_files),
      cmocka_unit_test(test_large_tensor),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
