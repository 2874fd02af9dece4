/* rt_data_synth: a learnable, seeded, class-dependent data set made in memory.
 *
 * Each class gets a smooth prototype per channel: 0.5 plus a few random Gaussian blobs of either
 * sign. A sample is its class's prototype shifted by up to 2 pixels (edges replicated), with a
 * random contrast and brightness, plus per-pixel Gaussian noise, clamped to [0, 1] and quantized
 * to a byte. Prototypes differ everywhere, so a small CNN separates the classes easily; the shift,
 * contrast and noise make every single pixel ambiguous.
 *
 * One RtRng draws, in a fixed order, the prototypes, the train labels, the test labels and a base
 * seed for each set; each sample then draws from its own RtRng, seeded from its set's base and its
 * index. So the samples are made on several threads and the bytes do not depend on how many: the
 * same arguments give the same bytes. (Drawn from one stream in turn, a CIFAR-sized set of 60000
 * images of 3 x 32 x 32 took 5.5 s on one core of a Zen 4, 30 ns a pixel, most of it Box-Muller's
 * log and cos in double; its pairs now give two normals, in float.) */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_data.h"
#include "rt_pool.h"

enum { BLOBS = 4 };
#define NOISE_STD 0.08f


static float uniform_in(RtRng *r, float lo, float hi) { return lo + (hi - lo) * rt_rng_uniform(r); }

/* proto: classes x C x H x W floats. */
static void make_prototypes(float *proto, int classes, int c, int h, int w, RtRng *r) {
  float size = (float)(h > w ? h : w);
  for (int k = 0; k < classes; k++)
    for (int ch = 0; ch < c; ch++) {
      float *p = proto + ((size_t)k * c + ch) * h * w;
      for (int i = 0; i < h * w; i++) p[i] = 0.5f;
      for (int b = 0; b < BLOBS; b++) {
        float amp = uniform_in(r, -0.45f, 0.45f);
        float cy = uniform_in(r, 0.0f, (float)h), cx = uniform_in(r, 0.0f, (float)w);
        float s = fmaxf(uniform_in(r, 0.12f, 0.3f) * size, 0.5f); /* at least half a pixel */
        float inv = 1.0f / (2.0f * s * s);
        for (int y = 0; y < h; y++)
          for (int x = 0; x < w; x++) {
            float dy = (float)y + 0.5f - cy, dx = (float)x + 0.5f - cx;
            p[y * w + x] += amp * expf(-(dy * dy + dx * dx) * inv);
          }
      }
    }
}

/* Balanced labels (i % classes), shuffled (Fisher-Yates). */
static void make_labels(uint8_t *y, size_t n, int classes, RtRng *r) {
  for (size_t i = 0; i < n; i++) y[i] = (uint8_t)(i % (size_t)classes);
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)rt_rng_below(r, i);
    uint8_t t = y[i - 1];
    y[i - 1] = y[j];
    y[j] = t;
  }
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Two independent standard normals (Box-Muller, both of its outputs), u1 in (0, 1] keeping the
 * log finite. Floats are enough for noise that ends as a byte. */
static void normal_pair(RtRng *r, float *z0, float *z1) {
  float u1 = (float)((rt_rng_next_u64(r) >> 40) + 1) * 0x1.0p-24f;
  float u2 = (float)(rt_rng_next_u64(r) >> 40) * 0x1.0p-24f;
  float rad = sqrtf(-2.0f * logf(u1)), a = 6.2831853f * u2;
  *z0 = rad * cosf(a), *z1 = rad * sinf(a);
}

typedef struct SynSet {
  uint8_t *x;
  const uint8_t *y;
  size_t n;
  uint64_t base; /* the set's seed; sample i's stream is seeded with base + i */
} SynSet;

typedef struct SynJob {
  const SynSet *sets; /* train, test */
  const float *proto;
  int c, h, w;
  size_t lo, hi; /* this thread's samples: train's 0..n, then test's after them */
} SynJob;

/* Sample i of a set into o, from its own stream. */
static void make_sample(uint8_t *o, int label, const float *proto, int c, int h, int w, uint64_t seed) {
  RtRng r;
  rt_rng_seed(&r, seed);
  int sy = h / 8 < 2 ? h / 8 : 2, sx = w / 8 < 2 ? w / 8 : 2; /* no shift on tiny images */
  int dy = (int)rt_rng_below(&r, (uint64_t)(2 * sy + 1)) - sy;
  int dx = (int)rt_rng_below(&r, (uint64_t)(2 * sx + 1)) - sx;
  float contrast = uniform_in(&r, 0.7f, 1.3f), bright = uniform_in(&r, -0.1f, 0.1f);
  const float *p = proto + (size_t)label * c * h * w;
  float z[2];
  size_t k = 0;
  for (int ch = 0; ch < c; ch++)
    for (int yy = 0; yy < h; yy++) {
      const float *row = p + ((size_t)ch * h + clampi(yy - dy, 0, h - 1)) * w;
      for (int xx = 0; xx < w; xx++, k++) {
        if (!(k & 1)) normal_pair(&r, &z[0], &z[1]);
        float v = row[clampi(xx - dx, 0, w - 1)];
        v = 0.5f + contrast * (v - 0.5f) + bright + NOISE_STD * z[k & 1];
        v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        o[k] = (uint8_t)lrintf(v * 255.0f);
      }
    }
}

static void *make_samples(void *arg) {
  const SynJob *j = arg;
  size_t img = (size_t)j->c * j->h * j->w;
  for (size_t i = j->lo; i < j->hi; i++) {
    const SynSet *s = &j->sets[i >= j->sets[0].n];
    size_t at = i - (i >= j->sets[0].n ? j->sets[0].n : 0);
    make_sample(s->x + at * img, s->y[at], j->proto, j->c, j->h, j->w, s->base + at);
  }
  return NULL;
}

/* Both sets' samples on up to `threads` threads (fewer where there are few pixels to make: a thread
 * is worth it from about a million). */
static void make_all(const SynSet sets[2], const float *proto, int c, int h, int w, int threads) {
  size_t total = sets[0].n + sets[1].n, pixels = total * (size_t)c * h * w;
  size_t most = pixels / (1u << 20) + 1;
  int t = threads < 1 ? 1 : threads > RT_SHARES_MAX ? RT_SHARES_MAX : threads;
  if ((size_t)t > most) t = (int)most;
  if ((size_t)t > total) t = (int)total;
  SynJob jobs[RT_SHARES_MAX];
  for (int k = 0; k < t; k++)
    jobs[k] = (SynJob){.sets = sets, .proto = proto, .c = c, .h = h, .w = w,
                       .lo = total * (size_t)k / (size_t)t, .hi = total * (size_t)(k + 1) / (size_t)t};
  rt_run_shares(make_samples, jobs, sizeof jobs[0], t);
}

int rt_data_synthetic(int classes, int c, int h, int w, size_t n_train, size_t n_test,
                      uint64_t seed, int threads, RtDataset *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (classes < 1 || classes > 256)
    return rt_data_fail(err, errlen, "synthetic", "classes = %d is not in 1..256 (labels are bytes)", classes);
  if (c < 1 || h < 1 || w < 1)
    return rt_data_fail(err, errlen, "synthetic", "the declared shape [%d, %d, %d] is not positive", c, h, w);
  if (n_train == 0) return rt_data_fail(err, errlen, "synthetic", "n = 0: no training images");
  size_t img = (size_t)c * (size_t)h; /* ints: their product fits in size_t on 64-bit */
  if (img > SIZE_MAX / (size_t)w ||
      (img *= (size_t)w) > SIZE_MAX / (size_t)classes / sizeof(float) ||
      n_train > SIZE_MAX / img || n_test > SIZE_MAX / img)
    return rt_data_fail(err, errlen, "synthetic", "%zu + %zu images of [%d, %d, %d] are too large for memory", n_train,
                n_test, c, h, w);

  RtDataset d = {.classes = classes, .channels = c, .height = h, .width = w,
                 .n_train = n_train, .n_test = n_test};
  float *proto = malloc((size_t)classes * img * sizeof(float));
  d.train_x = malloc(n_train * img);
  d.train_y = malloc(n_train);
  d.test_x = malloc(n_test ? n_test * img : 1); /* malloc(0) may return NULL */
  d.test_y = malloc(n_test ? n_test : 1);
  if (!proto || !d.train_x || !d.train_y || !d.test_x || !d.test_y) {
    free(proto);
    rt_data_free(&d);
    return rt_data_fail(err, errlen, "synthetic", "out of memory (%zu + %zu images)", n_train, n_test);
  }
  RtRng r;
  rt_rng_seed(&r, seed);
  make_prototypes(proto, classes, c, h, w, &r);
  make_labels(d.train_y, n_train, classes, &r);
  make_labels(d.test_y, n_test, classes, &r);
  SynSet sets[2] = {{d.train_x, d.train_y, n_train, rt_rng_next_u64(&r)},
                    {d.test_x, d.test_y, n_test, rt_rng_next_u64(&r)}};
  make_all(sets, proto, c, h, w, threads);
  free(proto);
  *out = d;
  return 0;
}
