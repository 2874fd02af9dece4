/* Pooling over planes [H, W] -> [OH, OW], no padding; one plane per unit. */
#include "k_kernels.h"
#include "k_tile.h"

void k_maxpool_fwd(const float *restrict x, float *restrict y, int H, int W, int k, int s, int OH, int OW, int lo,
                   int hi)
{
    for (long p = lo; p < hi; p++) {
        const float *xp = x + p * H * W;
        float *yp = y + p * OH * OW;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const float *win = xp + (long)oh * s * W + (long)ow * s;
                float m = win[0];
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++)
                        m = win[i * W + j] > m ? win[i * W + j] : m;
                yp[oh * OW + ow] = m;
            }
    }
}

/* Windows that tile the plane (k == s): every input element gets one value,
 * dy where it is its window's first maximum, else 0, with selects only, so
 * the loop over ow vectorizes; no zeroing pass, no scatter. */
static void k_maxpool_bwd_tiled(const float *restrict x, const float *restrict dy, float *restrict dx, int H, int W,
                                int k, int OH, int OW, int lo, int hi)
{
    for (long p = lo; p < hi; p++) {
        const float *xp = x + p * H * W, *dyp = dy + p * OH * OW;
        float *dxp = dx + p * H * W;
        for (int oh = 0; oh < OH; oh++) {
            for (int ow = 0; ow < OW; ow++) {
                const float *win = xp + (long)oh * k * W + ow * k;
                float m = win[0];
                int at = 0;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) {
                        int better = win[i * W + j] > m;
                        m = better ? win[i * W + j] : m;
                        at = better ? i * k + j : at;
                    }
                float g = dyp[oh * OW + ow];
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++)
                        dxp[(long)(oh * k + i) * W + ow * k + j] = at == i * k + j ? g : 0.0f;
            }
            /* columns no window covers */
            for (int i = 0; i < k; i++)
                for (int j = OW * k; j < W; j++)
                    dxp[(long)(oh * k + i) * W + j] = 0.0f;
        }
        for (long i = (long)OH * k * W; i < (long)H * W; i++) /* rows no window covers */
            dxp[i] = 0.0f;
    }
}

/* The first maximum of the window in row-major order: only a strictly
 * greater value moves it, as in the forward pass. */
void k_maxpool_bwd(const float *restrict x, const float *restrict dy, float *restrict dx, int H, int W, int k, int s,
                   int OH, int OW, int lo, int hi)
{
    if (k == s && k <= 8) {
        k_maxpool_bwd_tiled(x, dy, dx, H, W, k, OH, OW, lo, hi);
        return;
    }
    for (long p = lo; p < hi; p++) {
        const float *xp = x + p * H * W, *dyp = dy + p * OH * OW;
        float *dxp = dx + p * H * W;
        for (int i = 0; i < H * W; i++)
            dxp[i] = 0.0f;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int at = oh * s * W + ow * s;
                float m = xp[at];
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) {
                        int a = (oh * s + i) * W + ow * s + j;
                        if (xp[a] > m)
                            m = xp[a], at = a;
                    }
                dxp[at] += dyp[oh * OW + ow];
            }
    }
}

void k_avgpool_fwd(const float *restrict x, float *restrict y, int H, int W, int k, int s, int OH, int OW, int lo,
                   int hi)
{
    float n = (float)(k * k);
    for (long p = lo; p < hi; p++) {
        const float *xp = x + p * H * W;
        float *yp = y + p * OH * OW;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const float *win = xp + (long)oh * s * W + (long)ow * s;
                float sum = 0.0f;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++)
                        sum += win[i * W + j];
                yp[oh * OW + ow] = sum / n;
            }
    }
}

void k_avgpool_bwd(const float *restrict dy, float *restrict dx, int H, int W, int k, int s, int OH, int OW, int lo,
                   int hi)
{
    float n = (float)(k * k);
    for (long p = lo; p < hi; p++) {
        const float *dyp = dy + p * OH * OW;
        float *dxp = dx + p * H * W;
        for (int i = 0; i < H * W; i++)
            dxp[i] = 0.0f;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float g = dyp[oh * OW + ow] / n;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++)
                        dxp[(oh * s + i) * W + ow * s + j] += g;
            }
    }
}

void k_gap_fwd(const float *restrict x, float *restrict y, int HW, int lo, int hi)
{
    for (long p = lo; p < hi; p++)
        y[p] = k_sum(x + p * HW, HW) / (float)HW;
}

void k_gap_bwd(const float *restrict dy, float *restrict dx, int HW, int lo, int hi)
{
    for (long p = lo; p < hi; p++) {
        float g = dy[p] / (float)HW;
        for (int i = 0; i < HW; i++)
            dx[p * HW + i] = g;
    }
}
