/* rt_data_batch: from the bytes of a data set to a float batch, with torchvision's semantics:
 * ToTensor (byte / 255), RandomCrop(padding = P) (zero padding of the [0, 1] image), then
 * RandomHorizontalFlip(0.5), then Normalize ((v - mean) / std). Also the data set's destructor and
 * the epoch shuffle. */
#include <assert.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stdio.h>

#include "rt_data.h"

int rt_data_fail(char *err, size_t errlen, const char *path, const char *fmt, ...) {
  if (err && errlen) {
    int k = snprintf(err, errlen, "%s: ", path);
    if (k >= 0 && (size_t)k < errlen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
      va_end(ap);
    }
  }
  return -1;
}

size_t rt_data_image_size(const RtDataset *ds) {
  return (size_t)ds->channels * (size_t)ds->height * (size_t)ds->width;
}

void rt_data_free(RtDataset *ds) {
  free(ds->train_x);
  free(ds->train_y);
  free(ds->test_x);
  free(ds->test_y);
  memset(ds, 0, sizeof *ds);
}

void rt_data_shuffle(uint32_t *idx, size_t n, RtRng *rng) {
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)rt_rng_below(rng, i);
    uint32_t t = idx[i - 1];
    idx[i - 1] = idx[j];
    idx[j] = t;
  }
}

/* A channel's pixel values: a byte v becomes (v / 255 - mean) / std. */
typedef struct Pixel {
  float lut[256]; /* by byte, for the augmented rows */
  float zero;     /* the padding pixel, normalized */
  float mean, std;
} Pixel;

static void pixel_set(Pixel *p, float mean, float std) {
  /* a byte's value, by the very expression it had pixel by pixel: the same bits, a table
   * lookup, and whole rows without a branch a pixel: 0.4 ns a pixel, where it was 1.5 (4.9
   * ms of a 38 ms training step on 32 x 28 x 28 inputs, as the step ran on one thread) */
  for (int v = 0; v < 256; v++) p->lut[v] = ((float)v / 255.0f - mean) / std;
  p->zero = (0.0f - mean) / std;
  p->mean = mean, p->std = std;
}

/* One channel of an image into d: rows shifted by top, columns by left, mirrored when flip, the
 * pixels outside the image the padding pixel. */
static void batch_plane(const uint8_t *s, float *d, int H, int W, int top, int left, int flip,
                        const Pixel *px) {
  if (!top && !left && !flip) {
    /* No augmentation (evaluation, or none declared): one run of H x W pixels, by the table's
     * expression, which vectorizes (IEEE division: the table's bits). Planes of 8 x 8 took 1.5
     * ns a pixel by rows through the table, 1.0 this way (1 thread of a Zen 4). */
    const float mean = px->mean, std = px->std;
    for (int k = 0; k < H * W; k++) d[k] = ((float)s[k] / 255.0f - mean) / std;
    return;
  }
  const float *lut = px->lut, zero = px->zero;
  /* the columns that read the image: sx = x + left, or W - 1 - x + left flipped, in [0, W) */
  int x0 = flip ? (left > 0 ? left : 0) : (left < 0 ? -left : 0);
  int x1 = flip ? (left < 0 ? W + left : W) : (left > 0 ? W - left : W);
  for (int y = 0; y < H; y++) {
    int sy = y + top;
    float *row = d + (size_t)y * W;
    if (sy < 0 || sy >= H || x0 >= x1) {
      for (int x = 0; x < W; x++) row[x] = zero;
      continue;
    }
    const uint8_t *srow = s + (size_t)sy * W;
    for (int x = 0; x < x0; x++) row[x] = zero;
    if (flip)
      for (int x = x0; x < x1; x++) row[x] = lut[srow[W - 1 - x + left]];
    else
      for (int x = x0; x < x1; x++) row[x] = lut[srow[x + left]];
    for (int x = x1; x < W; x++) row[x] = zero;
  }
}

/* Images a chunk: their draws are made first, in order, on the caller's thread; then their planes
 * are converted, on the pool's threads when there is one. */
enum { BATCH_CHUNK = 256 };

/* A chunk's conversion, as a pool step: unit u is channel u / n of the chunk's image u % n, so a
 * thread's share runs through few channels and makes few tables. */
typedef struct BatchJob {
  const uint8_t *xs;        /* the split's images */
  const uint32_t *indices;  /* the chunk's */
  float *x_out;             /* the chunk's first image */
  int n, C, H, W;
  const RtNormalize *norm;
  const int *top, *left, *flip;
} BatchJob;

static void batch_units(char *base, float *ws, int lo, int hi) {
  (void)ws;
  const BatchJob *j = (const BatchJob *)base;
  const size_t plane = (size_t)j->H * (size_t)j->W, img = (size_t)j->C * plane;
  const RtNormalize *norm = j->norm;
  Pixel px;
  int at = -1; /* the channel px holds */
  for (int u = lo; u < hi; u++) {
    int c = u / j->n, i = u % j->n;
    if (at < 0 || (c != at && norm && norm->n > 1)) {
      float mean = 0.0f, std = 1.0f;
      if (norm && norm->n > 0) {
        int k = norm->n == 1 ? 0 : c;
        mean = norm->mean[k];
        std = norm->std[k];
      }
      pixel_set(&px, mean, std);
      at = c;
    }
    batch_plane(j->xs + (size_t)j->indices[i] * img + (size_t)c * plane,
                j->x_out + (size_t)i * img + (size_t)c * plane, j->H, j->W, j->top[i], j->left[i],
                j->flip[i], &px);
  }
}

void rt_data_batch(const RtDataset *ds, int split, const uint32_t *indices, int n,
                   const RtNormalize *norm, const RtAugment *aug, RtRng *rng, float *x_out,
                   int32_t *y_out) {
  rt_data_batch_on(NULL, ds, split, indices, n, norm, aug, rng, x_out, y_out);
}

void rt_data_batch_on(RtPool *pool, const RtDataset *ds, int split, const uint32_t *indices, int n,
                      const RtNormalize *norm, const RtAugment *aug, RtRng *rng, float *x_out,
                      int32_t *y_out) {
  const int C = ds->channels;
  const size_t img = rt_data_image_size(ds);
  const uint8_t *xs = split ? ds->test_x : ds->train_x;
  const uint8_t *ys = split ? ds->test_y : ds->train_y;
  const int pad = aug && aug->crop_pad > 0 ? aug->crop_pad : 0;
  const int hflip = aug && aug->hflip;
  assert(!norm || norm->n == 0 || norm->n == 1 || (norm->n == C && C <= RT_NORM_MAX));
  assert(!(pad || hflip) || rng);

  int top[BATCH_CHUNK], left[BATCH_CHUNK], flip[BATCH_CHUNK];
  const int chunk = C > INT_MAX / BATCH_CHUNK ? INT_MAX / C : BATCH_CHUNK; /* units in an int */
  for (int i0 = 0; i0 < n; i0 += chunk) {
    int i1 = n - i0 < chunk ? n : i0 + chunk;
    /* The draws, in this order for each image: crop top, crop left, flip. Output (y, x) reads
     * padded (y + top, x' + left) where x' = W-1-x when flipped, i.e. source (y + top - pad, ...). */
    for (int i = i0; i < i1; i++) {
      assert(indices[i] < (split ? ds->n_test : ds->n_train));
      y_out[i] = ys[indices[i]];
      int t = 0, l = 0, f = 0;
      if (pad) {
        t = (int)rt_rng_below(rng, (uint64_t)(2 * pad + 1)) - pad;
        l = (int)rt_rng_below(rng, (uint64_t)(2 * pad + 1)) - pad;
      }
      if (hflip) f = rt_rng_uniform(rng) < 0.5f;
      top[i - i0] = t, left[i - i0] = l, flip[i - i0] = f;
    }
    /* A plane's floats depend on its byte and its draws only, so the threads' shares give the
     * serial bytes. On one thread a batch of 128 x 64 x 8 x 8 inputs held the other core idle
     * for a fifth of a training step. */
    BatchJob job = {.xs = xs, .indices = indices + i0, .x_out = x_out + (size_t)i0 * img,
                    .n = i1 - i0, .C = C, .H = ds->height, .W = ds->width, .norm = norm,
                    .top = top, .left = left, .flip = flip};
    RtStep step = {batch_units, C * (i1 - i0)};
    if (pool)
      rt_pool_run(pool, &step, 1, (char *)&job, NULL);
    else
      rt_pool_run_serial(&step, 1, (char *)&job, NULL);
  }
}
