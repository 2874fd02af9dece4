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
static inline float bn_relu(float v) { return v > 0.0f ? v : 0.0f; }

/* With the relu fused: the sums of g and of g (x - mean) over a plane, where
 * g = dy where the forward's output was > 0, else 0. 16 lanes in float, then
 * the lanes in order and the tail, as k_sum. */
static void bn_relu_sums(const float *restrict x, const float *restrict dy, long n, float mean, float scale,
                         float shift, double *sdy, double *sdyx)
{
    k_v16 ag = { 0 }, agx = { 0 };
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        k_v16 a, d;
        __builtin_memcpy(&a, x + i, sizeof a);
        __builtin_memcpy(&d, dy + i, sizeof d);
        k_v16 v = (a - mean) * scale + shift;
        k_v16 g = K_WHERE16(v > 0.0f, d);
        ag += g;
        agx += g * (a - mean);
    }
    float s = 0.0f, sx = 0.0f;
    if (n >= 16)
        for (int l = 0; l < 16; l++)
            s += ag[l], sx += agx[l];
    for (; i < n; i++) {
        float g = bn_norm(x[i], mean, scale, shift) > 0.0f ? dy[i] : 0.0f;
        s += g;
        sx += g * (x[i] - mean);
    }
    *sdy += s;
    *sdyx += sx;
}

void k_bn_fwd_train(const float *restrict x, const float *restrict gamma, const float *restrict beta,
                    float *restrict y, float *restrict stats, float *restrict run_mean, float *restrict run_var,
                    int N, int C, int HW, float momentum, float eps, int relu, int lo, int hi)
{
    long M = (long)N * HW;
    for (int c = lo; c < hi; c++) {
        double s = 0.0, q = 0.0;
        for (int n = 0; n < N; n++)
            s += k_sum(x + ((long)n * C + c) * HW, HW);
        float mean = (float)(s / (double)M);
        for (int n = 0; n < N; n++)
            q += k_sumsq_dev(x + ((long)n * C + c) * HW, HW, mean);
        float var = (float)(q / (double)M), inv = 1.0f / sqrtf(var + eps);
        stats[c] = mean;
        stats[C + c] = inv;
        float scale = (gamma ? gamma[c] : 1.0f) * inv, shift = beta ? beta[c] : 0.0f;
        for (int n = 0; n < N; n++) {
            const float *xp = x + ((long)n * C + c) * HW;
            float *yp = y + ((long)n * C + c) * HW;
            if (relu)
                for (int i = 0; i < HW; i++)
                    yp[i] = bn_relu(bn_norm(xp[i], mean, scale, shift));
            else
                for (int i = 0; i < HW; i++)
                    yp[i] = bn_norm(xp[i], mean, scale, shift);
        }
        /* PyTorch: run = (1 - m) run + m batch, the variance unbiased. */
        if (run_mean)
            run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * mean;
        if (run_var)
            run_var[c] = (1.0f - momentum) * run_var[c] + momentum * (float)(q / (double)(M > 1 ? M - 1 : 1));
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

/* With xh = (x - mean) inv and M = N*HW: dbeta = sum dy, dgamma = sum dy xh,
 * dx = gamma inv (dy - dbeta/M - xh dgamma/M). With the relu fused (relu = 1)
 * dy counts only where the forward's output was > 0, recomputed from x, so
 * neither the relu's output nor its gradient is read or written. */
void k_bn_bwd(const float *restrict x, const float *restrict dy, const float *restrict gamma,
              const float *restrict stats, const float *restrict beta, float *restrict dx, float *restrict dgamma,
              float *restrict dbeta, int N, int C, int HW, int relu, int lo, int hi)
{
    long M = (long)N * HW;
    for (int c = lo; c < hi; c++) {
        float mean = stats[c], inv = stats[C + c];
        float scale = (gamma ? gamma[c] : 1.0f) * inv, shift = beta ? beta[c] : 0.0f;
        double sdy = 0.0, sdyx = 0.0;
        for (int n = 0; n < N; n++) {
            const float *xp = x + ((long)n * C + c) * HW, *dp = dy + ((long)n * C + c) * HW;
            if (relu) {
                bn_relu_sums(xp, dp, HW, mean, scale, shift, &sdy, &sdyx);
            } else {
                sdy += k_sum(dp, HW);
                sdyx += k_sumdot_dev(dp, xp, HW, mean);
            }
        }
        if (dgamma)
            dgamma[c] = (float)(sdyx * inv);
        if (dbeta)
            dbeta[c] = (float)sdy;
        float a = scale, mdy = (float)(sdy / (double)M), k = (float)(sdyx * inv * inv / (double)M);
        for (int n = 0; n < N; n++) {
            const float *xp = x + ((long)n * C + c) * HW, *dp = dy + ((long)n * C + c) * HW;
            float *dxp = dx + ((long)n * C + c) * HW;
            if (relu)
                for (int i = 0; i < HW; i++) {
                    float g = bn_norm(xp[i], mean, scale, shift) > 0.0f ? dp[i] : 0.0f;
                    dxp[i] = a * (g - mdy - (xp[i] - mean) * k);
                }
            else
                for (int i = 0; i < HW; i++)
                    dxp[i] = a * (dp[i] - mdy - (xp[i] - mean) * k);
        }
    }
}
