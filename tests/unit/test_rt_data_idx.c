/* Unit tests of runtime/rt_data_idx.c: tiny IDX fixtures (plain and gzipped) written into
 * $MWTC_TEST_TMP, every validation error, and the real Fashion-MNIST when it is installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "rt_data.h"
#include "rt_test.h"

enum { H = 4, W = 3, NTR = 6, NTE = 4, CLASSES = 10 };

static char dir[4096];
static char err[512];

static int setup(void **state) {
  (void)state;
  return rt_test_mkdir(dir, sizeof dir, "rt_idx");
}

static int teardown(void **state) {
  (void)state;
  rt_test_rmdir(dir);
  return 0;
}

static void path_of(char *p, size_t n, const char *name, int gz) {
  snprintf(p, n, "%s/%s%s", dir, name, gz ? ".gz" : "");
}

/* Writes dir/name (gz: name.gz, compressed) and removes the other variant, which would win or
 * lose against it. */
static void write_bytes(const char *name, int gz, const uint8_t *b, size_t n) {
  char p[8192];
  path_of(p, sizeof p, name, !gz);
  unlink(p);
  path_of(p, sizeof p, name, gz);
  if (gz) {
    gzFile f = gzopen(p, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(gzwrite(f, b, (unsigned)n), (int)n);
    assert_int_equal(gzclose(f), Z_OK);
  } else {
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
  }
}

static void remove_file(const char *name, int gz) {
  char p[8192];
  path_of(p, sizeof p, name, gz);
  assert_int_equal(unlink(p), 0);
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static uint8_t pixel(int test, uint32_t i, uint32_t k) {
  return (uint8_t)(i * 13 + k * 7 + 1 + test * 100);
}
static uint8_t label(int test, uint32_t i) {
  return (uint8_t)(test ? (i * 7 + 1) % 10 : (i * 3) % 10);
}

/* Header (magic, n, rows, cols) + n*rows*cols pattern pixels; returns the byte count. */
static size_t images(uint8_t *b, int test, uint32_t magic, uint32_t n, uint32_t rows,
                     uint32_t cols) {
  put32(b, magic), put32(b + 4, n), put32(b + 8, rows), put32(b + 12, cols);
  for (uint32_t i = 0; i < n; i++)
    for (uint32_t k = 0; k < rows * cols; k++) b[16 + i * rows * cols + k] = pixel(test, i, k);
  return 16 + (size_t)n * rows * cols;
}

static size_t labels(uint8_t *b, int test, uint32_t magic, uint32_t n) {
  put32(b, magic), put32(b + 4, n);
  for (uint32_t i = 0; i < n; i++) b[8 + i] = label(test, i);
  return 8 + n;
}

static uint8_t buf[4096];

static void write_set(int gz) {
  write_bytes("train-images-idx3-ubyte", gz, buf, images(buf, 0, 0x803, NTR, H, W));
  write_bytes("train-labels-idx1-ubyte", gz, buf, labels(buf, 0, 0x801, NTR));
  write_bytes("t10k-images-idx3-ubyte", gz, buf, images(buf, 1, 0x803, NTE, H, W));
  write_bytes("t10k-labels-idx1-ubyte", gz, buf, labels(buf, 1, 0x801, NTE));
}

static int load(int classes, int c, int h, int w, RtDataset *ds) {
  err[0] = '\0';
  return rt_data_load_idx(dir, classes, c, h, w, ds, err, sizeof err);
}

/* Loading fails, leaves *ds empty, and the message names the file and contains `want`. */
static void expect_error(int classes, int c, int h, int w, const char *file, const char *want) {
  RtDataset ds;
  int rc = load(classes, c, h, w, &ds);
  if (rc == 0 || !strstr(err, want) || (file && !strstr(err, file)))
    print_error("rc = %d, message: \"%s\", expected \"%s\" about %s\n", rc, err, want,
                file ? file : "-");
  assert_int_not_equal(rc, 0);
  assert_non_null(strstr(err, want));
  if (file) {
    assert_non_null(strstr(err, file));
    assert_null(strstr(strstr(err, file) + strlen(file), file));   /* the path once (zlib's message has it too) */
  }
  assert_null(strchr(err, '\n'));
  assert_null(ds.train_x), assert_null(ds.train_y), assert_null(ds.test_x), assert_null(ds.test_y);
}

static void check_valid(int gz) {
  write_set(gz);
  RtDataset ds;
  assert_int_equal(load(CLASSES, 1, H, W, &ds), 0);
  assert_int_equal(ds.classes, CLASSES);
  assert_int_equal(ds.channels, 1), assert_int_equal(ds.height, H), assert_int_equal(ds.width, W);
  assert_int_equal(ds.n_train, NTR), assert_int_equal(ds.n_test, NTE);
  assert_int_equal(rt_data_image_size(&ds), H * W);
  for (uint32_t i = 0; i < NTR; i++) {
    assert_int_equal(ds.train_y[i], label(0, i));
    for (uint32_t k = 0; k < H * W; k++)
      assert_int_equal(ds.train_x[i * H * W + k], pixel(0, i, k));
  }
  for (uint32_t i = 0; i < NTE; i++) {
    assert_int_equal(ds.test_y[i], label(1, i));
    for (uint32_t k = 0; k < H * W; k++)
      assert_int_equal(ds.test_x[i * H * W + k], pixel(1, i, k));
  }
  rt_data_free(&ds);
  assert_null(ds.train_x);
  rt_data_free(&ds); /* twice is harmless */
}

static void test_valid_plain(void **state) { (void)state; check_valid(0); }
static void test_valid_gz(void **state) { (void)state; check_valid(1); }

static void test_plain_and_gz_mixed(void **state) {
  (void)state;
  write_set(1);
  remove_file("train-labels-idx1-ubyte", 1);
  write_bytes("train-labels-idx1-ubyte", 0, buf, labels(buf, 0, 0x801, NTR));
  RtDataset ds;
  assert_int_equal(load(CLASSES, 1, H, W, &ds), 0);
  assert_int_equal(ds.train_y[1], label(0, 1));
  rt_data_free(&ds);
}

static void test_missing_file(void **state) {
  (void)state;
  write_set(1);
  remove_file("t10k-labels-idx1-ubyte", 1);
  expect_error(CLASSES, 1, H, W, "/t10k-labels-idx1-ubyte: ", "no such file");
  RtDataset ds;
  assert_int_not_equal(rt_data_load_idx("/nonexistent/dir", 10, 1, H, W, &ds, err, sizeof err), 0);
  assert_string_equal(err, "/nonexistent/dir/train-images-idx3-ubyte: no such file "
                           "(nor train-images-idx3-ubyte.gz)");
}

static void test_bad_magic(void **state) {
  (void)state;
  write_set(0);
  write_bytes("train-images-idx3-ubyte", 0, buf, images(buf, 0, 0x801, NTR, H, W));
  expect_error(CLASSES, 1, H, W, "train-images-idx3-ubyte: ", "bad magic 0x00000801");
  write_set(0);
  write_bytes("t10k-labels-idx1-ubyte", 0, buf, labels(buf, 1, 0x08010000, NTE));
  expect_error(CLASSES, 1, H, W, "t10k-labels-idx1-ubyte: ", "bad magic 0x08010000");
}

static void test_count_mismatch(void **state) {
  (void)state;
  write_set(1);
  write_bytes("train-labels-idx1-ubyte", 1, buf, labels(buf, 0, 0x801, NTR - 1));
  expect_error(CLASSES, 1, H, W, "train-labels-idx1-ubyte.gz: ", "header says 5 labels but");
}

static void test_shape_mismatch(void **state) {
  (void)state;
  write_set(0);
  expect_error(CLASSES, 1, 5, 5, "train-images-idx3-ubyte: ",
               "shape 4x3 does not match the declared shape [1, 5, 5]");
  expect_error(CLASSES, 1, W, H, NULL, "shape 4x3 does not match the declared shape [1, 3, 4]");
  expect_error(CLASSES, 3, H, W, NULL, "does not match the declared shape [3, 4, 3]");
  write_bytes("t10k-images-idx3-ubyte", 0, buf, images(buf, 1, 0x803, NTE, H, W + 1));
  expect_error(CLASSES, 1, H, W, "t10k-images-idx3-ubyte: ", "shape 4x4 does not match");
}

static void test_truncated(void **state) {
  (void)state;
  for (int gz = 0; gz <= 1; gz++) {
    write_set(gz);
    size_t n = images(buf, 0, 0x803, NTR, H, W);
    write_bytes("train-images-idx3-ubyte", gz, buf, n - 5);
    expect_error(CLASSES, 1, H, W, "train-images-idx3-ubyte",
                 "truncated: header says 6 images of 4x3, file holds 67 bytes of pixels");
    write_bytes("train-images-idx3-ubyte", gz, buf, 10); /* not even a header */
    expect_error(CLASSES, 1, H, W, "train-images-idx3-ubyte", "truncated: file holds 10 bytes");
    write_bytes("train-images-idx3-ubyte", gz, buf, 0);
    expect_error(CLASSES, 1, H, W, "train-images-idx3-ubyte", "truncated: file holds 0 bytes");
    write_set(gz);
    write_bytes("t10k-labels-idx1-ubyte", gz, buf, labels(buf, 1, 0x801, NTE) - 1);
    expect_error(CLASSES, 1, H, W, "t10k-labels-idx1-ubyte",
                 "truncated: header says 4 labels, file holds 3 bytes of labels");
  }
}

/* A header claiming 4 billion images must fail on the data, not on a 48 GB allocation. */
static void test_lying_header(void **state) {
  (void)state;
  for (int gz = 0; gz <= 1; gz++) {
    write_set(gz);
    size_t n = images(buf, 0, 0x803, NTR, H, W);
    put32(buf + 4, 0xffffffffu);
    write_bytes("train-images-idx3-ubyte", gz, buf, n);
    expect_error(CLASSES, 1, H, W, "train-images-idx3-ubyte",
                 "truncated: header says 4294967295 images of 4x3, file holds 72 bytes");
    put32(buf + 4, 0);
    write_bytes("train-images-idx3-ubyte", gz, buf, 16);
    expect_error(CLASSES, 1, H, W, "train-images-idx3-ubyte", "header says 0 images");
  }
}

static void test_trailing_data(void **state) {
  (void)state;
  for (int gz = 0; gz <= 1; gz++) {
    write_set(gz);
    size_t n = labels(buf, 0, 0x801, NTR);
    buf[n] = 0;
    write_bytes("train-labels-idx1-ubyte", gz, buf, n + 1);
    expect_error(CLASSES, 1, H, W, "train-labels-idx1-ubyte", "trailing data");
  }
}

static void test_label_out_of_range(void **state) {
  (void)state;
  write_set(1);
  size_t n = labels(buf, 0, 0x801, NTR);
  buf[8 + 3] = 12;
  write_bytes("train-labels-idx1-ubyte", 1, buf, n);
  expect_error(CLASSES, 1, H, W, NULL, "");
  char want[8300];
  snprintf(want, sizeof want,
           "%s/train-labels-idx1-ubyte.gz: label 12 of image 3 is not below classes = 10", dir);
  assert_string_equal(err, want);
  /* Fewer classes than the labels use: train image 3 has label 9. */
  write_set(0);
  expect_error(9, 1, H, W, "train-labels-idx1-ubyte: ",
               "label 9 of image 3 is not below classes = 9");
}

/* Reads a whole file into buf; returns its size. */
static size_t slurp(const char *name, int gz) {
  char p[8192];
  path_of(p, sizeof p, name, gz);
  FILE *f = fopen(p, "rb");
  assert_non_null(f);
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  return n;
}

static void write_raw(const char *name, const uint8_t *b, size_t n) {
  char p[8192];
  path_of(p, sizeof p, name, 1);
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(b, 1, n, f), n);
  fclose(f);
}

static void test_corrupt_gzip(void **state) {
  (void)state;
  write_set(1);
  size_t n = slurp("train-images-idx3-ubyte", 1);
  /* gzopen's header is 10 bytes; 0xff makes the first deflate block's type invalid (11). */
  assert_int_equal(buf[0], 0x1f), assert_int_equal(buf[1], 0x8b);
  buf[10] = 0xff;
  write_raw("train-images-idx3-ubyte", buf, n);
  expect_error(CLASSES, 1, H, W, "train-images-idx3-ubyte.gz: ", "corrupt gzip stream");

  /* A wrong CRC in the trailer: the data decodes, the check at the end fails. */
  write_set(1);
  n = slurp("t10k-labels-idx1-ubyte", 1);
  buf[n - 8] ^= 1;
  write_raw("t10k-labels-idx1-ubyte", buf, n);
  expect_error(CLASSES, 1, H, W, "t10k-labels-idx1-ubyte.gz: ", "corrupt gzip stream");

  /* The compressed stream cut short. */
  write_set(1);
  n = slurp("train-images-idx3-ubyte", 1);
  write_raw("train-images-idx3-ubyte", buf, n / 2);
  expect_error(CLASSES, 1, H, W, "train-images-idx3-ubyte.gz: ", "truncated gzip stream");
  /* Only the 8-byte trailer missing: all data there, still an error. */
  write_set(1);
  n = slurp("train-labels-idx1-ubyte", 1);
  write_raw("train-labels-idx1-ubyte", buf, n - 8);
  expect_error(CLASSES, 1, H, W, "train-labels-idx1-ubyte.gz: ", "truncated gzip stream");
}

static void test_bad_arguments(void **state) {
  (void)state;
  write_set(0);
  expect_error(0, 1, H, W, NULL, "classes = 0 is not in 1..256");
  expect_error(CLASSES, 1, 0, W, NULL, "not positive");
  /* No room for the message, or none at all: still a clean failure. */
  RtDataset ds;
  char small[6] = "xxxxx";
  assert_int_not_equal(rt_data_load_idx(dir, 0, 1, H, W, &ds, small, sizeof small), 0);
  assert_int_equal(strlen(small), 5);
  assert_int_not_equal(rt_data_load_idx(dir, CLASSES, 1, 5, 5, &ds, NULL, 0), 0);
}

static void test_fashion_mnist(void **state) {
  (void)state;
  if (access(RT_FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0 &&
      access(RT_FASHION_MNIST_DIR "/train-images-idx3-ubyte", R_OK) != 0) {
    printf("skipped: %s not installed (Debian package dataset-fashion-mnist)\n",
           RT_FASHION_MNIST_DIR);
    skip();
  }
  RtDataset ds;
  int rc = rt_data_load_idx("fashion-mnist", 10, 1, 28, 28, &ds, err, sizeof err);
  if (rc) print_error("%s\n", err);
  assert_int_equal(rc, 0);
  assert_int_equal(ds.n_train, 60000), assert_int_equal(ds.n_test, 10000);
  assert_int_equal(ds.train_y[0], 9), assert_int_equal(ds.test_y[0], 9);
  size_t per_class[10] = {0}, sum = 0;
  for (size_t i = 0; i < ds.n_train; i++) per_class[ds.train_y[i]]++;
  for (int k = 0; k < 10; k++) assert_int_equal(per_class[k], 6000);
  for (int k = 0; k < 784; k++) sum += ds.train_x[k];
  assert_int_equal(sum, 76247); /* the first image's pixel sum, as Python's gzip reads it */
  rt_data_free(&ds);
  /* The real files against a wrong declared shape. */
  rc = rt_data_load_idx("fashion-mnist", 10, 1, 32, 32, &ds, err, sizeof err);
  assert_int_not_equal(rc, 0);
  assert_string_equal(err, RT_FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz: shape 28x28 does "
                           "not match the declared shape [1, 32, 32]");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_valid_plain),      T(test_valid_gz),         T(test_plain_and_gz_mixed),
      T(test_missing_file),     T(test_bad_magic),        T(test_count_mismatch),
      T(test_shape_mismatch),   T(test_truncated),        T(test_lying_header),
      T(test_trailing_data),    T(test_label_out_of_range), T(test_corrupt_gzip),
      T(test_bad_arguments),    T(test_fashion_mnist),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
