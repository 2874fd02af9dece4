/* Unit tests of runtime/rt_data_cifar.c: tiny CIFAR-10 and CIFAR-100 binary fixtures in $MWTC_TEST_TMP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rt_data.h"
#include "rt_test.h"

enum { PIX = 3072, REC = 3073, PER_TRAIN_FILE = 2, NTE = 3 };

static char root[4096], dir[4200];
static char err[512];

static int setup(void **state) {
  (void)state;
  if (rt_test_mkdir(root, sizeof root, "rt_cifar") != 0) return -1;
  snprintf(dir, sizeof dir, "%s", root);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rt_test_rmdir(root);
  return 0;
}

static uint8_t pixel(int file, int rec, int k) { return (uint8_t)(file * 50 + rec * 17 + k * 3); }
static uint8_t label(int file, int rec) { return (uint8_t)((file * 3 + rec) % 10); }

/* Writes `records` records into dir/name; file numbers 0..4 are train, 5 is test. */
static void write_file(const char *name, int file, int records, size_t extra_bytes) {
  char p[8400];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  static uint8_t rec[REC];
  for (int r = 0; r < records; r++) {
    rec[0] = label(file, r);
    for (int k = 0; k < PIX; k++) rec[1 + k] = pixel(file, r, k);
    assert_int_equal(fwrite(rec, 1, REC, f), REC);
  }
  for (size_t i = 0; i < extra_bytes; i++) fputc(0, f);
  fclose(f);
}

static const char *names[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                               "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};

static void write_set(void) {
  for (int f = 0; f < 5; f++) write_file(names[f], f, PER_TRAIN_FILE, 0);
  write_file(names[5], 5, NTE, 0);
}

static void check_loaded(const char *from) {
  RtDataset ds;
  int rc = rt_data_load_cifar10(from, 10, 3, 32, 32, &ds, err, sizeof err);
  if (rc) print_error("%s\n", err);
  assert_int_equal(rc, 0);
  assert_int_equal(ds.channels, 3), assert_int_equal(ds.height, 32), assert_int_equal(ds.width, 32);
  assert_int_equal(ds.n_train, 5 * PER_TRAIN_FILE), assert_int_equal(ds.n_test, NTE);
  for (int f = 0; f < 5; f++)
    for (int r = 0; r < PER_TRAIN_FILE; r++) {
      size_t i = (size_t)f * PER_TRAIN_FILE + r;
      assert_int_equal(ds.train_y[i], label(f, r));
      for (int k = 0; k < PIX; k += 97) assert_int_equal(ds.train_x[i * PIX + k], pixel(f, r, k));
      assert_int_equal(ds.train_x[i * PIX + PIX - 1], pixel(f, r, PIX - 1));
    }
  for (int r = 0; r < NTE; r++) {
    assert_int_equal(ds.test_y[r], label(5, r));
    assert_int_equal(ds.test_x[r * PIX + 1024], pixel(5, r, 1024)); /* first G pixel */
  }
  rt_data_free(&ds);
}

static void expect_error(int classes, int c, int h, int w, const char *want) {
  RtDataset ds;
  err[0] = '\0';
  int rc = rt_data_load_cifar10(root, classes, c, h, w, &ds, err, sizeof err);
  if (rc == 0 || !strstr(err, want)) print_error("rc %d, \"%s\", expected \"%s\"\n", rc, err, want);
  assert_int_not_equal(rc, 0);
  assert_non_null(strstr(err, want));
  assert_null(ds.train_x), assert_null(ds.test_x), assert_null(ds.train_y), assert_null(ds.test_y);
}

static void test_valid(void **state) {
  (void)state;
  write_set();
  check_loaded(root);
}

static void test_unpacked_subdirectory(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "%s/cifar-10-batches-bin", root);
  assert_int_equal(mkdir(dir, 0700), 0);
  write_set();
  check_loaded(root); /* the directory above the archive's */
  check_loaded(dir);
}

static void test_wrong_shape(void **state) {
  (void)state;
  write_set();
  expect_error(10, 1, 32, 32,
               "the declared shape [1, 32, 32] does not match CIFAR-10's [3, 32, 32]");
  expect_error(10, 3, 28, 28, "does not match CIFAR-10's");
  expect_error(0, 3, 32, 32, "classes = 0");
}

static void test_size_not_multiple(void **state) {
  (void)state;
  write_set();
  write_file(names[2], 2, 1, 5);
  expect_error(10, 3, 32, 32, "data_batch_3.bin: size 3078 is not a multiple of 3073");
  write_set();
  write_file(names[5], 5, 0, 100);
  expect_error(10, 3, 32, 32, "test_batch.bin: size 100 is not a multiple of 3073");
  write_file(names[5], 5, 0, 0);
  expect_error(10, 3, 32, 32, "test_batch.bin: empty file");
}

static void test_missing_file(void **state) {
  (void)state;
  write_set();
  char p[8400];
  snprintf(p, sizeof p, "%s/%s", dir, names[4]);
  assert_int_equal(unlink(p), 0);
  expect_error(10, 3, 32, 32, "data_batch_5.bin: No such file");
}

static void test_label_out_of_range(void **state) {
  (void)state;
  write_set();
  /* Labels are (3 * file + record) % 10: data_batch_2.bin holds 3, 4; data_batch_3.bin 6, 7. */
  expect_error(4, 3, 32, 32, "data_batch_2.bin: label 4 of record 1 is not below classes = 4");
  expect_error(7, 3, 32, 32, "data_batch_3.bin: label 7 of record 1 is not below classes = 7");
}

/* CIFAR-100: records of a coarse and a fine label, then the pixels. Record r of file f (0 train,
 * 1 test) has coarse label (f + r) % 20 and fine label (7 * r + f) % 100 (or `fine` for record 1). */
static void write_100(const char *in, int f, int records, int fine, size_t extra_bytes) {
  char p[8400];
  snprintf(p, sizeof p, "%s/%s", in, f ? "test.bin" : "train.bin");
  FILE *fp = fopen(p, "wb");
  assert_non_null(fp);
  static uint8_t rec[2 + PIX];
  for (int r = 0; r < records; r++) {
    rec[0] = (uint8_t)((f + r) % 20);
    rec[1] = (uint8_t)(r == 1 && fine >= 0 ? fine : (7 * r + f) % 100);
    for (int k = 0; k < PIX; k++) rec[2 + k] = pixel(f, r, k);
    assert_int_equal(fwrite(rec, 1, sizeof rec, fp), sizeof rec);
  }
  for (size_t i = 0; i < extra_bytes; i++) fputc(0, fp);
  fclose(fp);
}

static void check_100(const char *from, int classes) {
  RtDataset ds;
  int rc = rt_data_load_cifar100(from, classes, 3, 32, 32, &ds, err, sizeof err);
  if (rc) print_error("%s\n", err);
  assert_int_equal(rc, 0);
  assert_int_equal(ds.n_train, 17), assert_int_equal(ds.n_test, 4), assert_int_equal(ds.classes, classes);
  for (int f = 0; f < 2; f++)
    for (int r = 0; r < (f ? 4 : 17); r++) {
      const uint8_t *x = (f ? ds.test_x : ds.train_x) + (size_t)r * PIX;
      assert_int_equal((f ? ds.test_y : ds.train_y)[r], classes == 100 ? (7 * r + f) % 100 : (f + r) % 20);
      for (int k = 0; k < PIX; k += 101) assert_int_equal(x[k], pixel(f, r, k));
      assert_int_equal(x[PIX - 1], pixel(f, r, PIX - 1));
    }
  rt_data_free(&ds);
}

static void expect_100_error(int classes, const char *want) {
  RtDataset ds;
  err[0] = '\0';
  int rc = rt_data_load_cifar100(root, classes, 3, 32, 32, &ds, err, sizeof err);
  if (rc == 0 || !strstr(err, want)) print_error("rc %d, \"%s\", expected \"%s\"\n", rc, err, want);
  assert_int_not_equal(rc, 0);
  assert_non_null(strstr(err, want));
  assert_null(ds.train_x), assert_null(ds.test_x);
}

static void test_cifar100(void **state) {
  (void)state;
  write_100(root, 0, 17, -1, 0);
  write_100(root, 1, 4, -1, 0);
  check_100(root, 100);   /* fine labels */
  check_100(root, 20);    /* coarse labels, the superclasses */
  char sub[4200];         /* as the archive unpacks */
  snprintf(sub, sizeof sub, "%s/cifar-100-binary", root);
  assert_int_equal(mkdir(sub, 0700), 0);
  write_100(sub, 0, 17, -1, 0);
  write_100(sub, 1, 4, -1, 0);
  snprintf(sub, sizeof sub, "%s/train.bin", root);
  assert_int_equal(unlink(sub), 0);
  check_100(root, 100);
  snprintf(sub, sizeof sub, "%s/cifar-100-binary", root);
  check_100(sub, 20);
}

static void test_cifar100_errors(void **state) {
  (void)state;
  write_100(root, 0, 3, 150, 0);
  write_100(root, 1, 2, -1, 0);
  expect_100_error(100, "train.bin: fine label 150 of record 1 is not below classes = 100");
  expect_100_error(10, "classes = 10: CIFAR-100 has 100 classes");
  RtDataset ds;
  assert_int_not_equal(rt_data_load_cifar100(root, 100, 1, 32, 32, &ds, err, sizeof err), 0);
  assert_non_null(strstr(err, "does not match CIFAR-100's [3, 32, 32]"));
  write_100(root, 0, 3, -1, 0);
  write_100(root, 1, 2, -1, 7);
  expect_100_error(20, "test.bin: size 6155 is not a multiple of 3074 (2 label bytes + 3072 pixel bytes per record)");
  snprintf(dir, sizeof dir, "%s/test.bin", root);
  assert_int_equal(unlink(dir), 0);
  expect_100_error(20, "test.bin: No such file");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_valid),        T(test_unpacked_subdirectory), T(test_wrong_shape),
      T(test_size_not_multiple), T(test_missing_file),     T(test_label_out_of_range),
      T(test_cifar100),          T(test_cifar100_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
