/* Batch normalization over [N, C, HW], one channel per unit. A channel's
 * sums run plane by plane: each plane in float with 16 lanes (k_sum), the
 * planes added in double, so a sum over N*HW values loses little and its
 * order is fixed. Statistics use two passes (mean, then squared deviations),
 * which stays accurate when the mean is large against the spread. */
#include <math.h>

#include "k_kernels.h"
#include "k_tile.h"

void k_bn_fwd_train(const float *restrict x, const float *restrict gamma, const float *restrict beta,
                    float *restrict y, float *restrict stats, float *restrict run_mean, float *restrict run_var,
                    int N, int C, int HW, float momentum, float eps, int lo, int hi)
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
            for (int i = 0; i < HW; i++)
                yp[i] = (xp[i] - mean) * scale + shift;
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
 * dx = gamma inv (dy - dbeta/M - xh dgamma/M). */
void k_bn_bwd(const float *restrict x, const float *restrict dy, const float *restrict gamma,
              const float *restrict stats, float *restrict dx, float *restrict dgamma, float *restrict dbeta, int N,
              int C, int HW, int lo, int hi)
{
    long M = (long)N * HW;
    for (int c = lo; c < hi; c++) {
        float mean = stats[c], inv = stats[C + c];
        double sdy = 0.0, sdyx = 0.0;
        for (int n = 0; n < N; n++) {
            const float *xp = x + ((long)n * C + c) * HW, *dp = dy + ((long)n * C + c) * HW;
            sdy += k_sum(dp, HW);
            sdyx += k_sumdot_dev(dp, xp, HW, mean);
        }
        if (dgamma)
            dgamma[c] = (float)(sdyx * inv);
        if (dbeta)
            dbeta[c] = (float)sdy;
        float a = (gamma ? gamma[c] : 1.0f) * inv, mdy = (float)(sdy / (double)M),
              k = (float)(sdyx * inv * inv / (double)M);
        for (int n = 0; n < N; n++) {
            const float *xp = x + ((long)n * C + c) * HW, *dp = dy + ((long)n * C + c) * HW;
            float *dxp = dx + ((long)n * C + c) * HW;
            for (int i = 0; i < HW; i++)
                dxp[i] = a * (dp[i] - mdy - (xp[i] - mean) * k);
        }
    }
}
