/* Unit tests of runtime/rt_data_synth.c: determinism, balance, learnability. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rt_data.h"

static char err[256];

static RtDataset make_on(int classes, int c, int h, int w, size_t n, size_t t, uint64_t seed, int threads) {
  RtDataset ds;
  int rc = rt_data_synthetic(classes, c, h, w, n, t, seed, threads, &ds, err, sizeof err);
  if (rc) print_error("%s\n", err);
  assert_int_equal(rc, 0);
  return ds;
}

static RtDataset make(int classes, int c, int h, int w, size_t n, size_t t, uint64_t seed) {
  return make_on(classes, c, h, w, n, t, seed, 1);
}

static void test_same_seed_same_bytes(void **state) {
  (void)state;
  RtDataset a = make(10, 1, 28, 28, 200, 50, 1), b = make(10, 1, 28, 28, 200, 50, 1);
  RtDataset c = make(10, 1, 28, 28, 200, 50, 2);
  size_t img = rt_data_image_size(&a);
  assert_int_equal(img, 784);
  assert_memory_equal(a.train_x, b.train_x, 200 * img);
  assert_memory_equal(a.train_y, b.train_y, 200);
  assert_memory_equal(a.test_x, b.test_x, 50 * img);
  assert_memory_equal(a.test_y, b.test_y, 50);
  assert_memory_not_equal(a.train_x, c.train_x, 200 * img);
  assert_memory_not_equal(a.test_x, c.test_x, 50 * img);
  rt_data_free(&a), rt_data_free(&b), rt_data_free(&c);
}

static void test_balanced_shuffled_labels(void **state) {
  (void)state;
  RtDataset ds = make(7, 2, 8, 8, 1003, 70, 5);
  size_t count[7] = {0};
  int in_order = 1;
  for (size_t i = 0; i < ds.n_train; i++) {
    assert_true(ds.train_y[i] < 7);
    count[ds.train_y[i]]++;
    in_order &= ds.train_y[i] == i % 7;
  }
  assert_false(in_order);
  for (int k = 0; k < 7; k++) assert_int_equal(count[k], 1003 / 7 + (k < 1003 % 7)); /* 144/143 */
  memset(count, 0, sizeof count);
  for (size_t i = 0; i < ds.n_test; i++) count[ds.test_y[i]]++;
  for (int k = 0; k < 7; k++) assert_int_equal(count[k], 10);
  rt_data_free(&ds);
}

/* Class means of the train split: classes x image doubles (caller frees). */
static double *class_means(const RtDataset *ds) {
  size_t img = rt_data_image_size(ds);
  double *mean = calloc((size_t)ds->classes * img, sizeof *mean);
  size_t *count = calloc((size_t)ds->classes, sizeof *count);
  assert_non_null(mean), assert_non_null(count);
  for (size_t i = 0; i < ds->n_train; i++) {
    count[ds->train_y[i]]++;
    for (size_t k = 0; k < img; k++) mean[ds->train_y[i] * img + k] += ds->train_x[i * img + k];
  }
  for (int c = 0; c < ds->classes; c++)
    for (size_t k = 0; k < img; k++) mean[c * img + k] /= (double)count[c];
  free(count);
  return mean;
}

/* Accuracy on the test split of the nearest class mean over pixels [from, to). */
static double nearest_mean_accuracy(const RtDataset *ds, const double *mean, size_t from,
                                    size_t to) {
  size_t img = rt_data_image_size(ds), right = 0;
  for (size_t i = 0; i < ds->n_test; i++) {
    int best = -1;
    double best_d = INFINITY;
    for (int c = 0; c < ds->classes; c++) {
      double d = 0;
      for (size_t k = from; k < to; k++) {
        double e = ds->test_x[i * img + k] - mean[c * img + k];
        d += e * e;
      }
      if (d < best_d) best_d = d, best = c;
    }
    right += best == ds->test_y[i];
  }
  return (double)right / (double)ds->n_test;
}

static void test_learnable_but_not_by_one_pixel(void **state) {
  (void)state;
  RtDataset ds = make(10, 1, 28, 28, 2000, 500, 1);
  double *mean = class_means(&ds);
  double all = nearest_mean_accuracy(&ds, mean, 0, 784), best_pixel = 0;
  for (size_t p = 0; p < 784; p++) {
    double a = nearest_mean_accuracy(&ds, mean, p, p + 1);
    if (a > best_pixel) best_pixel = a;
  }
  printf("synthetic [1, 28, 28] x 10: nearest mean %.3f, best single pixel %.3f\n", all,
         best_pixel);
  assert_true(all > 0.95);
  assert_true(best_pixel < 0.6);
  free(mean);
  rt_data_free(&ds);
}

static void test_color_and_range(void **state) {
  (void)state;
  RtDataset ds = make(3, 3, 32, 32, 30, 0, 9);
  assert_int_equal(ds.n_test, 0);
  size_t img = rt_data_image_size(&ds);
  int lo = 255, hi = 0;
  for (size_t k = 0; k < 30 * img; k++) {
    if (ds.train_x[k] < lo) lo = ds.train_x[k];
    if (ds.train_x[k] > hi) hi = ds.train_x[k];
  }
  assert_true(hi - lo > 128); /* uses the byte range, not a constant image */
  /* Channels differ: the prototype of each channel is drawn on its own. */
  assert_memory_not_equal(ds.train_x, ds.train_x + 1024, 1024);
  /* Learnable in colour too: the first 20 images as train, the last 10 as test. */
  RtDataset split = {.classes = 3, .channels = 3, .height = 32, .width = 32, .n_train = 20,
                     .n_test = 10, .train_x = ds.train_x, .train_y = ds.train_y,
                     .test_x = ds.train_x + 20 * img, .test_y = ds.train_y + 20};
  double *mean = class_means(&split);
  assert_true(nearest_mean_accuracy(&split, mean, 0, img) >= 0.9);
  free(mean);
  rt_data_free(&ds);
  ds = make(2, 1, 1, 1, 4, 4, 3); /* degenerate shapes still work */
  rt_data_free(&ds);
}

/* The samples are made on several threads, each from its own stream: any thread count gives the
 * bytes of one, on sets big enough to use them (4 MB of pixels: 4 threads) and on small ones. */
static void test_threads_same_bytes(void **state) {
  (void)state;
  static const int shapes[][5] = {{3, 32, 32, 1200, 300}, {1, 8, 8, 7, 3}, {2, 5, 9, 1, 0}};
  for (int s = 0; s < 3; s++) {
    const int *q = shapes[s];
    RtDataset one = make_on(10, q[0], q[1], q[2], (size_t)q[3], (size_t)q[4], 7, 1);
    size_t img = rt_data_image_size(&one);
    for (int t = 2; t <= 5; t += 3) {
      RtDataset more = make_on(10, q[0], q[1], q[2], (size_t)q[3], (size_t)q[4], 7, t);
      assert_memory_equal(one.train_x, more.train_x, (size_t)q[3] * img);
      assert_memory_equal(one.train_y, more.train_y, (size_t)q[3]);
      if (q[4]) {
        assert_memory_equal(one.test_x, more.test_x, (size_t)q[4] * img);
        assert_memory_equal(one.test_y, more.test_y, (size_t)q[4]);
      }
      rt_data_free(&more);
    }
    /* no two samples alike: each has a stream of its own, train's apart from test's */
    if (q[3] > 1) assert_memory_not_equal(one.train_x, one.train_x + img, img);
    if (q[4]) assert_memory_not_equal(one.train_x, one.test_x, img);
    rt_data_free(&one);
  }
}

/* The prototypes and the train labels come first from the seed's stream, as they did before the
 * samples had streams of their own: these are that generator's labels for seed 1 (FNV-1a), so a
 * model trained on an older mwtc's set sees the same classes and labels here. */
static void test_labels_kept(void **state) {
  (void)state;
  RtDataset ds = make(10, 1, 28, 28, 200, 50, 1);
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < 200; i++) h = (h ^ ds.train_y[i]) * 1099511628211ull;
  assert_int_equal(h, 0x5d16ef8f074c57b5ull);
  rt_data_free(&ds);
}

/* The pixel noise: sd 0.08, drawn for each pixel on its own. On [1, 1, 2] images of one class (no
 * shift), two pixels differ by contrast (p0 - p1) + n0 - n1: the difference's mean is p0 - p1, and
 * its variance that times the contrast's (0.6^2 / 12), plus 2 * 0.08^2 from the noise. */
static void test_noise_spread(void **state) {
  (void)state;
  enum { N = 40000 };
  RtDataset ds = make(1, 1, 1, 2, N, 0, 20);   /* a prototype of mid-range levels */
  double s = 0, ss = 0, lo = 1, hi = 0;
  for (size_t i = 0; i < N; i++) {
    double a = ds.train_x[2 * i] / 255.0, b = ds.train_x[2 * i + 1] / 255.0, d = a - b;
    s += d, ss += d * d;
    lo = fmin(lo, fmin(a, b)), hi = fmax(hi, fmax(a, b));
  }
  double mean = s / N, var = ss / N - mean * mean, noise = var - mean * mean * 0.36 / 12;
  printf("synthetic [1, 1, 2]: pixels in [%.3f, %.3f], difference mean %.3f sd %.4f, noise variance %.5f "
         "(0.0128)\n", lo, hi, mean, sqrt(var), noise);
  assert_true(lo > 0.0 && hi < 1.0);   /* nothing clamped: the spread is all the draws' */
  assert_true(noise > 0.0128 * 0.9 && noise < 0.0128 * 1.1);
  rt_data_free(&ds);
}

static void test_errors(void **state) {
  (void)state;
  RtDataset ds;
  assert_int_not_equal(rt_data_synthetic(0, 1, 8, 8, 10, 10, 1, 1, &ds, err, sizeof err), 0);
  assert_non_null(strstr(err, "synthetic: classes = 0"));
  assert_int_not_equal(rt_data_synthetic(2, 1, 0, 8, 10, 10, 1, 1, &ds, err, sizeof err), 0);
  assert_non_null(strstr(err, "not positive"));
  assert_int_not_equal(rt_data_synthetic(2, 1, 8, 8, 0, 10, 1, 1, &ds, err, sizeof err), 0);
  assert_non_null(strstr(err, "no training images"));
  assert_int_not_equal(rt_data_synthetic(2, 1, 8, 8, SIZE_MAX / 2, 10, 1, 4, &ds, err, sizeof err), 0);
  assert_non_null(strstr(err, "too large"));
  assert_null(ds.train_x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_seed_same_bytes),
      cmocka_unit_test(test_balanced_shuffled_labels),
      cmocka_unit_test(test_learnable_but_not_by_one_pixel),
      cmocka_unit_test(test_color_and_range),
      cmocka_unit_test(test_threads_same_bytes),
      cmocka_unit_test(test_labels_kept),
      cmocka_unit_test(test_noise_spread),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
