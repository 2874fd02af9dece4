/* Batch normalization over [N, C, HW], one channel per unit. A channel's
 * sums run plane by plane: each plane in float with 16 lanes (k_sum), the
 * planes added in double, so a sum over N*HW values loses little and its
 * order is fixed. Statistics use two passes (mean, then squared deviations),
 * which stays accurate when the mean is large against the spread. */
#include <math.h>

#include "k_kernels.h"
#include "k_tile.h"

/* The normalized value, one expression wherever it is computed: the fused
 * backward recomputes it to know where the relu let the gradient through,
 * and must see exactly the forward's sign. */
static inline float bn_norm(float x, float mean, float scale, float shift) { return (x - mean) * scale + shift; }

/* Channel c's batch statistics: mean, and q = the sum of squared deviations. */
static float bn_stats(const float *restrict x, int N, int C, int HW, int c, double *q)
{
    long M = (long)N * HW;
    double s = 0.0;
    for (int n = 0; n < N; n++)
        s += k_sum(x + ((long)n * C + c) * HW, HW);
    float mean = (float)(s / (double)M);
    *q = 0.0;
    for (int n = 0; n < N; n++)
        *q += k_sumsq_dev(x + ((long)n * C + c) * HW, HW, mean);
    return mean;
}

/* Channel c's statistics into stats[c], stats[C + c] and the running
 * statistics, and the scale and shift that normalize it. */
static void bn_channel(const float *restrict x, const float *restrict gamma, const float *restrict beta, int N, int C,
                       int HW, int c, float momentum, float eps, float *restrict stats, float *restrict run_mean,
                       float *restrict run_var, float *mean, float *scale, float *shift)
{
    double q;
    long M = (long)N * HW;
    *mean = bn_stats(x, N, C, HW, c, &q);
    float var = (float)(q / (double)M), inv = 1.0f / sqrtf(var + eps);
    stats[c] = *mean;
    stats[C + c] = inv;
    /* PyTorch: run = (1 - m) run + m batch, the variance unbiased. */
    if (run_mean)
        run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * *mean;
    if (run_var)
        run_var[c] = (1.0f - momentum) * run_var[c] + momentum * (float)(q / (double)(M > 1 ? M - 1 : 1));
    *scale = (gamma ? gamma[c] : 1.0f) * inv, *shift = beta ? beta[c] : 0.0f;
}

/* Plane (n, c) of bn_mask's output from x's: t rounded to float, then t * s
 * (then the relu). A plain batchnorm's plane with s = 1 (t * 1 is t). */
static void bn_mask_plane(const float *restrict xp, float mean, float scale, float shift, float s, int relu,
                          float *restrict yp, long HW)
{
    if (relu)
        for (long i = 0; i < HW; i++) {
            float t = bn_norm(xp[i], mean, scale, shift);
            yp[i] = t * s > 0.0f ? t * s : 0.0f;
        }
    else
        for (long i = 0; i < HW; i++) {
            float t = bn_norm(xp[i], mean, scale, shift);
            yp[i] = t * s;
        }
}

void k_bn_fwd_train(const float *restrict x, const float *restrict gamma, const float *restrict beta,
                    float *restrict y, float *restrict stats, float *restrict run_mean, float *restrict run_var,
                    int N, int C, int HW, float momentum, float eps, int relu, int lo, int hi)
{
    for (int c = lo; c < hi; c++) {
        float mean, scale, shift;
        bn_channel(x, gamma, beta, N, C, HW, c, momentum, eps, stats, run_mean, run_var, &mean, &scale, &shift);
        for (int n = 0; n < N; n++)
            bn_mask_plane(x + ((long)n * C + c) * HW, mean, scale, shift, 1.0f, relu, y + ((long)n * C + c) * HW, HW);
    }
}

/* The factor k_mask_apply_keep multiplies plane (n, c) by; 1 without a
 * mask (m NULL: a batchnorm and a pooling fused alone; t * 1 is t). */
static inline float bn_mask_factor(const float *restrict m, const float *restrict keep,
                                   const int *restrict generators, int C, int n, int c)
{
    return m ? (*generators ? m[(long)n * C + c] : 1.0f) * keep[c] : 1.0f;
}

/* A training batchnorm and the mask_apply (and relu) after it, fused: the
 * normalized value is multiplied by the mask while in a register, so the
 * batchnorm's output is never written nor read back. The same products as
 * the two kernels, to the bit: t rounded to float, then t * s. */
void k_bn_mask_fwd_train(const float *restrict x, const float *restrict gamma, const float *restrict beta,
                         const float *restrict m, const float *restrict keep, const int *restrict generators,
                         float *restrict y, float *restrict stats, float *restrict run_mean, float *restrict run_var,
                         int N, int C, int HW, float momentum, float eps, int relu, int lo, int hi)
{
    for (int c = lo; c < hi; c++) {
        float mean, scale, shift;
        bn_channel(x, gamma, beta, N, C, HW, c, momentum, eps, stats, run_mean, run_var, &mean, &scale, &shift);
        for (int n = 0; n < N; n++)
            bn_mask_plane(x + ((long)n * C + c) * HW, mean, scale, shift,
                          bn_mask_factor(m, keep, generators, C, n, c), relu, y + ((long)n * C + c) * HW, HW);
    }
}

/* bn_mask with the max pooling after it: each plane of bn_mask's output
 * made in ws (one plane, in cache) and pooled from there, as k_maxpool_fwd
 * pools it; only the pooled planes are written. units: channels. */
void k_bn_mask_pool_fwd_train(const float *restrict x, const float *restrict gamma, const float *restrict beta,
                              const float *restrict m, const float *restrict keep, const int *restrict generators,
                              float *restrict y, float *restrict stats, float *restrict run_mean,
                              float *restrict run_var, float *restrict ws, int N, int C, int H, int W, int k, int st,
                              int OH, int OW, float momentum, float eps, int relu, int lo, int hi)
{
    long HW = (long)H * W, OHW = (long)OH * OW;
    for (int c = lo; c < hi; c++) {
        float mean, scale, shift;
        bn_channel(x, gamma, beta, N, C, (int)HW, c, momentum, eps, stats, run_mean, run_var, &mean, &scale, &shift);
        for (int n = 0; n < N; n++) {
            long p = (long)n * C + c;
            bn_mask_plane(x + p * HW, mean, scale, shift, bn_mask_factor(m, keep, generators, C, n, c), relu, ws, HW);
            k_maxpool_fwd(ws, y + p * OHW, H, W, k, st, OH, OW, 0, 1);
        }
    }
}

void k_bn_fwd_eval(const float *restrict x, const float *restrict gamma, const float *restrict beta,
                   const float *restrict run_mean, const float *restrict run_var, float *restrict y, int N, int C,
                   int HW, float eps, int lo, int hi)
{
    for (int c = lo; c < hi; c++) {
        float mean = run_mean[c], scale = (gamma ? gamma[c] : 1.0f) / sqrtf(run_var[c] + eps),
              shift = beta ? beta[c] : 0.0f;
        for (int n = 0; n < N; n++) {
            const float *xp = x + ((long)n * C + c) * HW;
            float *yp = y + ((long)n * C + c) * HW;
            for (int i = 0; i < HW; i++)
                yp[i] = (xp[i] - mean) * scale + shift;
        }
    }
}

/* One plane of k_bn_mask_bwd's first pass: what k_mask_apply_keep_bwd and
 * then k_bn_bwd sum over it, each in its own 16 lanes, then its lanes in
 * order and the tail, as they do. dz = g s (g: dy, with relu only where
 * t s > 0) is the batchnorm output's gradient, which the two kernels wrote
 * and read back; t, the batchnorm's output, is recomputed from x. Returns
 * the mask's sum (of g t); *sdz and *sdzx get the sums of dz and of
 * dz (x - mean). */
static float bn_mask_plane_sums(const float *restrict x, const float *restrict dy, long n, float mean, float scale,
                                float shift, float s, int relu, float *sdz, float *sdzx)
{
    k_v16 am = { 0 }, a1 = { 0 }, a2 = { 0 };
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        k_v16 a, g;
        __builtin_memcpy(&a, x + i, sizeof a);
        __builtin_memcpy(&g, dy + i, sizeof g);
        k_v16 t = (a - mean) * scale + shift;
        if (relu)
            g = K_WHERE16(t * s > 0.0f, g);
        k_v16 o = g * s;
        am += g * t;
        a1 += o;
        a2 += o * (a - mean);
    }
    float d = 0.0f, s1 = 0.0f, s2 = 0.0f;
    if (n >= 16)
        for (int l = 0; l < 16; l++)
            d += am[l], s1 += a1[l], s2 += a2[l];
    for (; i < n; i++) {
        float t = bn_norm(x[i], mean, scale, shift);
        float g = relu && !(t * s > 0.0f) ? 0.0f : dy[i];
        float o = g * s;
        d += g * t;
        s1 += o;
        s2 += o * (x[i] - mean);
    }
    *sdz = s1;
    *sdzx = s2;
    return d;
}

/* The gradient of k_bn_mask_fwd_train (pool NULL) or of
 * k_bn_mask_pool_fwd_train: k_mask_apply_keep_bwd's dm, then k_bn_bwd's
 * dgamma, dbeta and dx, to the bit, without the batchnorm output's
 * gradient as a tensor: the first pass sums over what it would hold, the
 * second computes it again where dx needs it. With the pool, dy is the
 * pooled output's gradient, and each plane of bn_mask's output (in ws) and
 * its gradient (in ws past it) are made again as k_maxpool_bwd makes it. */
typedef struct {
    int H, W, k, st, OH, OW, keeps;
    float *v, *g;
} BnPool;

/* Plane (n, c)'s pooling gradient: made (first pass, or every pass when
 * the scratch does not keep them), or kept from the first pass. */
static const float *bn_pool_grad(const BnPool *pl, const float *restrict xp, const float *restrict dy, long p, int n,
                                 int again, float mean, float scale, float shift, float s, int relu)
{
    float *g = pl->g + (pl->keeps ? n * k_bn_pool_plane(pl->H, pl->W) : 0);
    if (again && pl->keeps)
        return g;
    bn_mask_plane(xp, mean, scale, shift, s, relu, pl->v, (long)pl->H * pl->W);
    k_maxpool_bwd(pl->v, dy + p * pl->OH * pl->OW, g, pl->H, pl->W, pl->k, pl->st, pl->OH, pl->OW, 0, 1);
    return g;
}

static void bn_mask_bwd(const float *restrict x, const float *restrict dy, const float *restrict gamma,
                        const float *restrict stats, const float *restrict beta, const float *restrict m,
                        const float *restrict keep, const int *restrict generators, float *restrict dx,
                        float *restrict dgamma, float *restrict dbeta, float *restrict dm, const BnPool *pool, int N,
                        int C, int HW, int relu, int lo, int hi)
{
    long M = (long)N * HW;
    for (int c = lo; c < hi; c++) {
        float mean = stats[c], inv = stats[C + c];
        float scale = (gamma ? gamma[c] : 1.0f) * inv, shift = beta ? beta[c] : 0.0f;
        double sdy = 0.0, sdyx = 0.0;
        for (int n = 0; n < N; n++) {
            long p = (long)n * C + c;
            float s = bn_mask_factor(m, keep, generators, C, n, c), s1, s2;
            const float *dp =
                pool ? bn_pool_grad(pool, x + p * HW, dy, p, n, 0, mean, scale, shift, s, relu) : dy + p * HW;
            float d = bn_mask_plane_sums(x + p * HW, dp, HW, mean, scale, shift, s, relu, &s1, &s2);
            if (dm)
                dm[p] = *generators ? d * keep[c] : 0; /* dropped generators learn nothing */
            sdy += s1;
            sdyx += s2;
        }
        if (dgamma)
            dgamma[c] = (float)(sdyx * inv);
        if (dbeta)
            dbeta[c] = (float)sdy;
        float a = scale, mdy = (float)(sdy / (double)M), k = (float)(sdyx * inv * inv / (double)M);
        for (int n = 0; n < N; n++) {
            long p = (long)n * C + c;
            const float *xp = x + p * HW;
            float *dxp = dx + p * HW, s = bn_mask_factor(m, keep, generators, C, n, c);
            const float *dp = pool ? bn_pool_grad(pool, xp, dy, p, n, 1, mean, scale, shift, s, relu) : dy + p * HW;
            for (int i = 0; i < HW; i++) {
                float t = bn_norm(xp[i], mean, scale, shift);
                float g = relu && !(t * s > 0.0f) ? 0.0f : dp[i];
                float dz = g * s;
                dxp[i] = a * (dz - mdy - (xp[i] - mean) * k);
            }
        }
    }
}

/* With xh = (x - mean) inv and M = N*HW: dbeta = sum dy, dgamma = sum dy xh,
 * dx = gamma inv (dy - dbeta/M - xh dgamma/M). With the relu fused (relu = 1)
 * dy counts only where the forward's output was > 0, recomputed from x, so
 * neither the relu's output nor its gradient is read or written. bn_mask's
 * gradient without a mask: the same sums in the same order. */
void k_bn_bwd(const float *restrict x, const float *restrict dy, const float *restrict gamma,
              const float *restrict stats, const float *restrict beta, float *restrict dx, float *restrict dgamma,
              float *restrict dbeta, int N, int C, int HW, int relu, int lo, int hi)
{
    bn_mask_bwd(x, dy, gamma, stats, beta, NULL, NULL, NULL, dx, dgamma, dbeta, NULL, NULL, N, C, HW, relu, lo, hi);
}

void k_bn_mask_bwd(const float *restrict x, const float *restrict dy, const float *restrict gamma,
                   const float *restrict stats, const float *restrict beta, const float *restrict m,
                   const float *restrict keep, const int *restrict generators, float *restrict dx,
                   float *restrict dgamma, float *restrict dbeta, float *restrict dm, int N, int C, int HW, int relu,
                   int lo, int hi)
{
    bn_mask_bwd(x, dy, gamma, stats, beta, m, keep, generators, dx, dgamma, dbeta, dm, NULL, N, C, HW, relu, lo, hi);
}

void k_bn_mask_pool_bwd(const float *restrict x, const float *restrict dy, const float *restrict gamma,
                        const float *restrict stats, const float *restrict beta, const float *restrict m,
                        const float *restrict keep, const int *restrict generators, float *restrict dx,
                        float *restrict dgamma, float *restrict dbeta, float *restrict dm, float *restrict ws, int N,
                        int C, int H, int W, int k, int st, int OH, int OW, int relu, int lo, int hi)
{
    BnPool pl = { H, W, k, st, OH, OW, k_bn_pool_keeps(N, H, W), ws, ws + k_bn_pool_plane(H, W) };
    bn_mask_bwd(x, dy, gamma, stats, beta, m, keep, generators, dx, dgamma, dbeta, dm, &pl, N, C, H * W, relu, lo, hi);
}
