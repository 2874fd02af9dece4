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

/* The first maximum of the window in row-major order: only a strictly
 * greater value moves it, as in the forward pass. */
void k_maxpool_bwd(const float *restrict x, const float *restrict dy, float *restrict dx, int H, int W, int k, int s,
                   int OH, int OW, int lo, int hi)
{
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
