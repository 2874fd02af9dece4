/* Unit tests of runtime/rt_data_batch.c: normalization math, crop and flip (one case worked out
 * by hand), determinism, the threads' shares, and the shuffle. */
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

/* Three images of [1, 3, 3] holding 1..9, 10..18, 19..27 (train); one test image of 200s. */
static uint8_t train_x[27], train_y[3] = {4, 5, 6}, test_x[9], test_y[1] = {2};
static RtDataset tiny(void) {
  for (int i = 0; i < 27; i++) train_x[i] = (uint8_t)(i + 1);
  memset(test_x, 200, sizeof test_x);
  return (RtDataset){.classes = 10, .channels = 1, .height = 3, .width = 3, .n_train = 3,
                     .n_test = 1, .train_x = train_x, .train_y = train_y, .test_x = test_x,
                     .test_y = test_y};
}

static void test_no_normalization(void **state) {
  (void)state;
  RtDataset ds = tiny();
  uint32_t idx[2] = {2, 0};
  float x[18];
  int32_t y[2];
  rt_data_batch(&ds, 0, idx, 2, NULL, NULL, NULL, x, y);
  assert_int_equal(y[0], 6), assert_int_equal(y[1], 4);
  for (int k = 0; k < 9; k++) {
    assert_true(x[k] == (float)(19 + k) / 255.0f);
    assert_true(x[9 + k] == (float)(1 + k) / 255.0f);
  }
  RtNormalize none = {.n = 0};
  uint32_t t = 0;
  rt_data_batch(&ds, 1, &t, 1, &none, NULL, NULL, x, y);
  assert_int_equal(y[0], 2);
  assert_true(x[4] == 200.0f / 255.0f);
}

static void test_normalization_math(void **state) {
  (void)state;
  RtDataset ds = tiny();
  RtNormalize one = {.n = 1, .mean = {0.2860f}, .std = {0.3530f}};
  uint32_t idx = 1;
  float x[9];
  int32_t y;
  rt_data_batch(&ds, 0, &idx, 1, &one, NULL, NULL, x, &y);
  for (int k = 0; k < 9; k++) {
    double want = ((10.0 + k) / 255.0 - 0.2860) / 0.3530;
    assert_true(fabs(x[k] - want) < 1e-6);
  }

  /* Per channel: a [3, 1, 2] image, channel c with its own (mean, std). */
  uint8_t px[6] = {0, 255, 51, 102, 255, 0}, lab = 1;
  RtDataset rgb = {.classes = 2, .channels = 3, .height = 1, .width = 2, .n_train = 1,
                   .train_x = px, .train_y = &lab};
  RtNormalize per = {.n = 3, .mean = {0.5f, 0.2f, 0.0f}, .std = {0.5f, 0.1f, 2.0f}};
  float out[6];
  rt_data_batch(&rgb, 0, &(uint32_t){0}, 1, &per, NULL, NULL, out, &y);
  float want[6] = {-1.0f, 1.0f, 0.0f, 2.0f, 0.5f, 0.0f};
  for (int k = 0; k < 6; k++) assert_true(fabsf(out[k] - want[k]) < 1e-6f);

  /* More channels than the first version held (16): each still reads its own pair. */
  enum { CH = 40 };
  uint8_t many[CH];
  RtNormalize wide = {.n = CH};
  for (int c = 0; c < CH; c++) {
    many[c] = (uint8_t)(5 * c);
    wide.mean[c] = 0.01f * (float)c;
    wide.std[c] = 1.0f + (float)c;
  }
  RtDataset deep = {.classes = 2, .channels = CH, .height = 1, .width = 1, .n_train = 1,
                    .train_x = many, .train_y = &lab};
  float got[CH];
  rt_data_batch(&deep, 0, &(uint32_t){0}, 1, &wide, NULL, NULL, got, &y);
  for (int c = 0; c < CH; c++)
    assert_true(fabsf(got[c] - ((float)many[c] / 255.0f - wide.mean[c]) / wide.std[c]) < 1e-6f);
}

/* Finds a seed whose first draws give crop (top, left) in padded coordinates and flip. */
static uint64_t seed_for(int pad, int top, int left, int flip) {
  for (uint64_t s = 1;; s++) {
    RtRng r;
    rt_rng_seed(&r, s);
    int t = (int)rt_rng_below(&r, (uint64_t)(2 * pad + 1));
    int l = (int)rt_rng_below(&r, (uint64_t)(2 * pad + 1));
    int f = rt_rng_uniform(&r) < 0.5f;
    if (t == top && l == left && f == flip) return s;
  }
}

/* Image 1..9, pad 1: the padded 5x5 image is
 *   0 0 0 0 0
 *   0 1 2 3 0
 *   0 4 5 6 0
 *   0 7 8 9 0
 *   0 0 0 0 0                                                                               */
static void test_crop_flip_by_hand(void **state) {
  (void)state;
  RtDataset ds = tiny();
  RtAugment aug = {.crop_pad = 1, .hflip = 1};
  uint32_t idx = 0;
  float x[9];
  int32_t y;
  RtRng r;

  /* Window at row 0, column 2: {0 0 0 / 2 3 0 / 5 6 0}; flipped: {0 0 0 / 0 3 2 / 0 6 5}. */
  rt_rng_seed(&r, seed_for(1, 0, 2, 1));
  rt_data_batch(&ds, 0, &idx, 1, NULL, &aug, &r, x, &y);
  const float a[9] = {0, 0, 0, 0, 3, 2, 0, 6, 5};
  for (int k = 0; k < 9; k++) assert_true(x[k] == a[k] / 255.0f);
  assert_int_equal(y, 4);

  /* Window at row 2, column 0, not flipped: {0 4 5 / 0 7 8 / 0 0 0}; normalized, the padding
   * is (0 - mean) / std like any black pixel. */
  RtNormalize norm = {.n = 1, .mean = {0.5f}, .std = {0.25f}};
  rt_rng_seed(&r, seed_for(1, 2, 0, 0));
  rt_data_batch(&ds, 0, &idx, 1, &norm, &aug, &r, x, &y);
  const float b[9] = {0, 4, 5, 0, 7, 8, 0, 0, 0};
  for (int k = 0; k < 9; k++) assert_true(x[k] == (b[k] / 255.0f - 0.5f) / 0.25f);

  /* Centre window, flipped: a plain mirror. */
  rt_rng_seed(&r, seed_for(1, 1, 1, 1));
  rt_data_batch(&ds, 0, &idx, 1, NULL, &aug, &r, x, &y);
  const float c[9] = {3, 2, 1, 6, 5, 4, 9, 8, 7};
  for (int k = 0; k < 9; k++) assert_true(x[k] == c[k] / 255.0f);
}

static void test_augment_deterministic_and_covering(void **state) {
  (void)state;
  RtDataset ds = tiny();
  enum { N = 600 };
  uint32_t idx[N];
  for (int i = 0; i < N; i++) idx[i] = (uint32_t)(i % 3);
  static float a[N * 9], b[N * 9], c[N * 9];
  int32_t y[N];
  RtAugment aug = {.crop_pad = 2, .hflip = 1};
  RtRng r1, r2, r3;
  rt_rng_seed(&r1, 11), rt_rng_seed(&r2, 11), rt_rng_seed(&r3, 12);
  rt_data_batch(&ds, 0, idx, N, NULL, &aug, &r1, a, y);
  rt_data_batch(&ds, 0, idx, N, NULL, &aug, &r2, b, y);
  rt_data_batch(&ds, 0, idx, N, NULL, &aug, &r3, c, y);
  assert_memory_equal(a, b, sizeof a);
  assert_memory_not_equal(a, c, sizeof a);
  assert_memory_equal(&r1, &r2, sizeof r1); /* same number of draws */

  /* With pad 2 on a 3x3 image, offsets -2..2: corner windows keep a single image pixel, and
   * the centre pixel of image 0 (value 5) lands on every one of the 9 output positions. */
  int corner = 0, seen5[9] = {0}, flipped = 0;
  for (int i = 0; i < N; i++) {
    int nonzero = 0;
    for (int k = 0; k < 9; k++) nonzero += a[i * 9 + k] != 0.0f;
    corner += nonzero == 1;
    if (idx[i] == 0)
      for (int k = 0; k < 9; k++) seen5[k] |= a[i * 9 + k] == 5.0f / 255.0f;
  }
  for (int k = 0; k < 9; k++) assert_true(seen5[k]);
  assert_true(corner > N / 25 / 2); /* 4 of 25 windows */

  /* Flip alone: about half the images mirrored. */
  RtAugment flip = {.crop_pad = 0, .hflip = 1};
  rt_data_batch(&ds, 0, idx, N, NULL, &flip, &r1, a, y);
  for (int i = 0; i < N; i++) flipped += a[i * 9] == (float)(3 + 9 * idx[i]) / 255.0f;
  assert_true(flipped > N / 2 - 60 && flipped < N / 2 + 60);
}

/* Pixel by pixel, as the semantics say (torchvision's): source (y + top, x' + left), x' = W-1-x
 * when flipped, 0 outside, then byte / 255 and (v - mean) / std. */
static float reference_pixel(const uint8_t *img, int c, int y, int x, int H, int W, int top, int left,
                             int flip, float mean, float std) {
  int sy = y + top, sx = (flip ? W - 1 - x : x) + left;
  float v = sy < 0 || sy >= H || sx < 0 || sx >= W ? 0.0f : (float)img[((size_t)c * H + sy) * W + sx];
  return (v / 255.0f - mean) / std;
}

/* A batch of 600 images of 2 x 4 x 5 (past the 256 a chunk converts at once), per-channel
 * normalization, crop and flip: each image is its pixels by the reference, from the draws a batch
 * of one image at a time makes, in the same order: the same bits, the same RNG state after. */
static void test_batch_is_its_images(void **state) {
  (void)state;
  enum { N = 600, C = 2, H = 4, W = 5, IMG = C * H * W };
  static uint8_t xs[7 * IMG], ys[7];
  for (int i = 0; i < 7 * IMG; i++) xs[i] = (uint8_t)(i * 37 + 11);
  for (int i = 0; i < 7; i++) ys[i] = (uint8_t)i;
  RtDataset ds = {.classes = 10, .channels = C, .height = H, .width = W, .n_train = 7, .n_test = 7,
                  .train_x = xs, .train_y = ys, .test_x = xs, .test_y = ys};
  RtNormalize norm = {.n = 2, .mean = {0.25f, 0.5f}, .std = {0.5f, 0.125f}};
  RtAugment aug = {.crop_pad = 2, .hflip = 1};
  static uint32_t idx[N];
  static float batch[N * IMG], one[IMG];
  static int32_t y[N];
  for (int i = 0; i < N; i++) idx[i] = (uint32_t)((i * 5) % 7);
  RtRng r1, r2;
  rt_rng_seed(&r1, 21), rt_rng_seed(&r2, 21);
  rt_data_batch(&ds, 0, idx, N, &norm, &aug, &r1, batch, y);
  for (int i = 0; i < N; i++) {
    RtRng before = r2; /* the draws of image i: top, left, flip */
    int top = (int)rt_rng_below(&before, 5) - 2, left = (int)rt_rng_below(&before, 5) - 2;
    int flip = rt_rng_uniform(&before) < 0.5f;
    int32_t label;
    rt_data_batch(&ds, 0, &idx[i], 1, &norm, &aug, &r2, one, &label);
    assert_memory_equal(&before, &r2, sizeof r2);
    assert_memory_equal(batch + (size_t)i * IMG, one, sizeof one);
    assert_int_equal(y[i], label);
    assert_int_equal(label, (int)idx[i]);
    for (int c = 0; c < C; c++)
      for (int yy = 0; yy < H; yy++)
        for (int x = 0; x < W; x++)
          assert_true(one[(c * H + yy) * W + x] == reference_pixel(xs + (size_t)idx[i] * IMG, c, yy, x, H, W,
                                                                    top, left, flip, norm.mean[c],
                                                                    norm.std[c]));
  }
  assert_memory_equal(&r1, &r2, sizeof r1);
}

/* Every byte value, unaugmented (a plane in one run) and mirrored (row by row through the table):
 * the same bits as the expression, both ways. */
static void test_every_byte_both_paths(void **state) {
  (void)state;
  enum { H = 16, W = 16 };
  static uint8_t xs[H * W], ys[1];
  for (int i = 0; i < H * W; i++) xs[i] = (uint8_t)i;
  RtDataset ds = {.classes = 2, .channels = 1, .height = H, .width = W, .n_train = 1, .n_test = 1,
                  .train_x = xs, .train_y = ys, .test_x = xs, .test_y = ys};
  RtNormalize norm = {.n = 1, .mean = {0.2860f}, .std = {0.3530f}};
  float plain[H * W], want[H * W];
  int32_t y;
  for (int v = 0; v < 256; v++) want[v] = ((float)v / 255.0f - 0.2860f) / 0.3530f;
  rt_data_batch(&ds, 0, &(uint32_t){0}, 1, &norm, NULL, NULL, plain, &y);
  assert_memory_equal(plain, want, sizeof want);
  RtAugment flip = {.crop_pad = 0, .hflip = 1};
  RtRng r;
  rt_rng_seed(&r, 5);
  int flipped = 0;
  for (int t = 0; t < 64 && !flipped; t++) {
    float out[H * W];
    RtRng before = r;
    flipped = rt_rng_uniform(&before) < 0.5f;
    rt_data_batch(&ds, 0, &(uint32_t){0}, 1, &norm, &flip, &r, out, &y);
    for (int yy = 0; yy < H; yy++)
      for (int x = 0; x < W; x++)
        assert_memory_equal(&out[yy * W + x], &want[yy * W + (flipped ? W - 1 - x : x)], sizeof(float));
  }
  assert_true(flipped);
}

/* rt_data_batch_on: the planes on a pool of 1, 2 or 3 threads, for 600 images (three chunks) of
 * 3 x 5 x 6 with per-channel normalization, crop and flip, and of 1 x 7 x 7 with one pair: the
 * caller's thread's bytes, labels and RNG state. */
static void test_batch_on_pool(void **state) {
  (void)state;
  enum { N = 600, MAX = 3 * 5 * 6 };
  static uint8_t xs[11 * MAX], ys[11];
  static float serial[N * MAX], pooled[N * MAX];
  static int32_t y1[N], y2[N];
  static uint32_t idx[N];
  for (int i = 0; i < 11 * MAX; i++) xs[i] = (uint8_t)(i * 91 + 7);
  for (int i = 0; i < 11; i++) ys[i] = (uint8_t)(i % 4);
  for (int i = 0; i < N; i++) idx[i] = (uint32_t)((i * 7) % 11);
  const int shapes[2][3] = {{3, 5, 6}, {1, 7, 7}};
  RtNormalize norms[2] = {{.n = 3, .mean = {0.25f, 0.5f, 0.1f}, .std = {0.5f, 0.125f, 0.3f}},
                          {.n = 1, .mean = {0.3f}, .std = {0.7f}}};
  RtAugment aug = {.crop_pad = 2, .hflip = 1};
  for (int s = 0; s < 2; s++)
    for (int threads = 1; threads <= 3; threads++) {
      RtDataset ds = {.classes = 4, .channels = shapes[s][0], .height = shapes[s][1], .width = shapes[s][2],
                      .n_train = 11, .n_test = 11, .train_x = xs, .train_y = ys, .test_x = xs, .test_y = ys};
      size_t bytes = sizeof(float) * (size_t)N * rt_data_image_size(&ds);
      char err[128];
      RtPool *pool = rt_pool_create(threads, err, sizeof err);
      assert_non_null(pool);
      RtRng r1, r2;
      rt_rng_seed(&r1, 9), rt_rng_seed(&r2, 9);
      memset(pooled, 0xff, bytes);
      rt_data_batch(&ds, 0, idx, N, &norms[s], &aug, &r1, serial, y1);
      rt_data_batch_on(pool, &ds, 0, idx, N, &norms[s], &aug, &r2, pooled, y2);
      assert_memory_equal(serial, pooled, bytes);
      assert_memory_equal(y1, y2, sizeof y1);
      assert_memory_equal(&r1, &r2, sizeof r1);
      rt_data_batch_on(pool, &ds, 1, idx, N, &norms[s], NULL, NULL, pooled, y2); /* evaluation's */
      rt_data_batch(&ds, 1, idx, N, &norms[s], NULL, NULL, serial, y1);
      assert_memory_equal(serial, pooled, bytes);
      rt_pool_destroy(pool);
    }
}

static void test_shuffle(void **state) {
  (void)state;
  enum { N = 1000 };
  static uint32_t a[N], b[N], c[N];
  for (uint32_t i = 0; i < N; i++) a[i] = b[i] = c[i] = i;
  RtRng r1, r2, r3;
  rt_rng_seed(&r1, 3), rt_rng_seed(&r2, 3), rt_rng_seed(&r3, 4);
  rt_data_shuffle(a, N, &r1);
  rt_data_shuffle(b, N, &r2);
  rt_data_shuffle(c, N, &r3);
  assert_memory_equal(a, b, sizeof a);
  assert_memory_not_equal(a, c, sizeof a);
  static uint8_t seen[N];
  int fixed = 0;
  for (uint32_t i = 0; i < N; i++) {
    assert_true(a[i] < N);
    assert_false(seen[a[i]]);
    seen[a[i]] = 1;
    fixed += a[i] == i;
  }
  assert_true(fixed < 10); /* a random permutation has about 1 fixed point */
  rt_data_shuffle(a, 0, &r1);
  rt_data_shuffle(a, 1, &r1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_no_normalization),
      cmocka_unit_test(test_normalization_math),
      cmocka_unit_test(test_crop_flip_by_hand),
      cmocka_unit_test(test_augment_deterministic_and_covering),
      cmocka_unit_test(test_batch_is_its_images),
      cmocka_unit_test(test_every_byte_both_paths),
      cmocka_unit_test(test_batch_on_pool),
      cmocka_unit_test(test_shuffle),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
