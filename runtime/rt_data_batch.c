/* rt_data_batch: from the bytes of a data set to a float batch, with torchvision's semantics:
 * ToTensor (byte / 255), RandomCrop(padding = P) (zero padding of the [0, 1] image), then
 * RandomHorizontalFlip(0.5), then Normalize ((v - mean) / std). Also the data set's destructor and
 * the epoch shuffle. */
#include <assert.h>
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

void rt_data_batch(const RtDataset *ds, int split, const uint32_t *indices, int n,
                   const RtNormalize *norm, const RtAugment *aug, RtRng *rng, float *x_out,
                   int32_t *y_out) {
  const int C = ds->channels, H = ds->height, W = ds->width;
  const size_t img = rt_data_image_size(ds);
  const uint8_t *xs = split ? ds->test_x : ds->train_x;
  const uint8_t *ys = split ? ds->test_y : ds->train_y;
  const int pad = aug && aug->crop_pad > 0 ? aug->crop_pad : 0;
  const int hflip = aug && aug->hflip;
  assert(!norm || norm->n == 0 || norm->n == 1 || (norm->n == C && C <= RT_NORM_MAX));
  assert(!(pad || hflip) || rng);

  for (int i = 0; i < n; i++) {
    assert(indices[i] < (split ? ds->n_test : ds->n_train));
    const uint8_t *src = xs + (size_t)indices[i] * img;
    float *dst = x_out + (size_t)i * img;
    y_out[i] = ys[indices[i]];

    /* The draws, in this order: crop top, crop left, flip. Output (y, x) reads padded
     * (y + top, x' + left) where x' = W-1-x when flipped, i.e. source (y + top - pad, ...). */
    int top = 0, left = 0, flip = 0;
    if (pad) {
      top = (int)rt_rng_below(rng, (uint64_t)(2 * pad + 1)) - pad;
      left = (int)rt_rng_below(rng, (uint64_t)(2 * pad + 1)) - pad;
    }
    if (hflip) flip = rt_rng_uniform(rng) < 0.5f;

    for (int c = 0; c < C; c++) {
      float mean = 0.0f, std = 1.0f;
      if (norm && norm->n > 0) {
        int k = norm->n == 1 ? 0 : c;
        mean = norm->mean[k];
        std = norm->std[k];
      }
      const uint8_t *s = src + (size_t)c * H * W;
      float *d = dst + (size_t)c * H * W;
      const float zero = (0.0f - mean) / std; /* the padding pixel, normalized */
      for (int y = 0; y < H; y++) {
        int sy = y + top;
        float *row = d + (size_t)y * W;
        if (sy < 0 || sy >= H) {
          for (int x = 0; x < W; x++) row[x] = zero;
          continue;
        }
        const uint8_t *srow = s + (size_t)sy * W;
        for (int x = 0; x < W; x++) {
          int sx = (flip ? W - 1 - x : x) + left;
          row[x] = (sx < 0 || sx >= W) ? zero : ((float)srow[sx] / 255.0f - mean) / std;
        }
      }
    }
  }
}
