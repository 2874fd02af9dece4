/* Elementwise kernels: plain loops over [lo, hi) that the JIT vectorizes. */
#include "k_kernels.h"

void k_relu_fwd(const float *restrict x, float *restrict y, int lo, int hi)
{
    for (int i = lo; i < hi; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void k_relu_bwd(const float *restrict y, const float *restrict dy, float *restrict dx, int lo, int hi)
{
    for (int i = lo; i < hi; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void k_add(const float *restrict a, const float *restrict b, float *restrict y, int lo, int hi)
{
    for (int i = lo; i < hi; i++)
        y[i] = a[i] + b[i];
}

/* Murmur3's finalizer: a bijection of 32-bit words with good avalanche. */
static inline unsigned k_mix32(unsigned h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/* One key per (seed, salt); element i is kept when mix(key ^ i*phi) >= thr,
 * thr = p * 2^32: probability 1 - p, the same decision forward and back,
 * and 32-bit arithmetic, so the loop vectorizes. *drop_all when p >= 1. */
static void k_drop_setup(const unsigned long long *seed, int salt, float p, unsigned *key, unsigned *thr,
                         int *drop_all, float *scale)
{
    *key = k_mix32((unsigned)*seed ^ k_mix32((unsigned)(*seed >> 32) ^ (unsigned)salt * 0x9e3779b9u));
    *drop_all = p >= 1.0f;
    *thr = p > 0.0f && p < 1.0f ? (unsigned)((double)p * 4294967296.0) : 0u;
    *scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
}

static void k_dropout(const float *restrict x, float *restrict y, const unsigned long long *restrict seed, int salt,
                      float p, int lo, int hi)
{
    unsigned key, thr;
    int drop_all;
    float scale;
    k_drop_setup(seed, salt, p, &key, &thr, &drop_all, &scale);
    if (drop_all) {
        for (int i = lo; i < hi; i++)
            y[i] = 0.0f;
        return;
    }
    for (int i = lo; i < hi; i++)
        y[i] = k_mix32(key ^ (unsigned)i * 0x9e3779b9u) >= thr ? x[i] * scale : 0.0f;
}

void k_dropout_fwd(const float *restrict x, float *restrict y, const unsigned long long *restrict seed, int salt,
                   float p, int lo, int hi)
{
    k_dropout(x, y, seed, salt, p, lo, hi);
}

void k_dropout_bwd(const float *restrict dy, float *restrict dx, const unsigned long long *restrict seed, int salt,
                   float p, int lo, int hi)
{
    k_dropout(dy, dx, seed, salt, p, lo, hi);
}

/* PyTorch's SGD with dampening 0 (its first step sets v = g', which is
 * momentum * 0 + g' here, v starting at 0). v is not touched without momentum. */
void k_sgd(float *restrict p, const float *restrict g, float *restrict v, const float *restrict lr, float momentum,
           float wd, int nesterov, int lo, int hi)
{
    float rate = *lr;
    if (momentum == 0.0f) {
        for (int i = lo; i < hi; i++) {
            float d = wd != 0.0f ? g[i] + wd * p[i] : g[i];
            p[i] -= rate * d;
        }
        return;
    }
    for (int i = lo; i < hi; i++) {
        float d = wd != 0.0f ? g[i] + wd * p[i] : g[i];
        float b = momentum * v[i] + d;
        v[i] = b;
        p[i] -= rate * (nesterov ? d + momentum * b : b);
    }
}

void k_sum_parts(const float *restrict part, float *restrict out, int G, int len, int lo, int hi)
{
    for (int i = lo; i < hi; i++)
        out[i] = G > 0 ? part[i] : 0.0f;
    for (int g = 1; g < G; g++) {
        const float *pg = part + (long)g * len;
        for (int i = lo; i < hi; i++)
            out[i] += pg[i];
    }
}
