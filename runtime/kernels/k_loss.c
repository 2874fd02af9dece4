/* Softmax cross-entropy: the maximum is subtracted before expf, so large
 * logits neither overflow nor lose the small ones. */
#include <math.h>

#include "k_kernels.h"

/* The row's maximum and sum of exp(l - max). */
static void k_softmax_sums(const float *restrict l, int classes, float *mx, float *sum)
{
    float m = l[0];
    for (int j = 1; j < classes; j++)
        m = l[j] > m ? l[j] : m;
    float s = 0.0f;
    for (int j = 0; j < classes; j++)
        s += expf(l[j] - m);
    *mx = m, *sum = s;
}

/* A label outside [0, classes) gives NaN: a bad data set shows at once. */
void k_ce_fwd(const float *restrict logits, const int *restrict labels, float *restrict rowloss, int N, int classes,
              int lo, int hi)
{
    (void)N;
    for (int b = lo; b < hi; b++) {
        const float *l = logits + (long)b * classes;
        float m, s;
        k_softmax_sums(l, classes, &m, &s);
        int y = labels[b];
        rowloss[b] = y >= 0 && y < classes ? logf(s) + m - l[y] : __builtin_nanf("");
    }
}

void k_mean(const float *restrict rowloss, float *restrict out, int N, int lo, int hi)
{
    if (lo >= hi)
        return;
    double s = 0.0;
    for (int i = 0; i < N; i++)
        s += rowloss[i];
    *out = N > 0 ? (float)(s / N) : 0.0f;
}

void k_ce_bwd(const float *restrict logits, const int *restrict labels, const float *restrict dloss,
              float *restrict dlogits, int N, int classes, int lo, int hi)
{
    float scale = *dloss / (float)N;
    for (int b = lo; b < hi; b++) {
        const float *l = logits + (long)b * classes;
        float *d = dlogits + (long)b * classes;
        float m, s;
        k_softmax_sums(l, classes, &m, &s);
        float inv = 1.0f / s;
        for (int j = 0; j < classes; j++)
            d[j] = (expf(l[j] - m) * inv - (j == labels[b] ? 1.0f : 0.0f)) * scale;
    }
}
