/* Inference convs of small planes (k_small_ok: VGG16's 4x4 and 2x2 stages,
 * ResNet18's last) at a few images, up to a tile of k_small.c's GEMMs.
 * Those run 32 images (24 with AVX2) as the vectors of their tiles, so
 * that at 8 images three quarters of the lanes would be zeros. Here the
 * tile is turned around: its rows are images (MR of them, one broadcast
 * each), its vectors output channels (NR of them), so that 8 images fill
 * it:
 *   y[n][o][p] = bias[o] + sum over the taps t valid at p, and c, of x[n][c][q(p, t)] w'[o][c][t]
 * with w' the weights scaled by the batchnorm and bias[o] the bias folded
 * with it, both prepared once before the graph's first run
 * (k_conv2d_small_prep, [tile of NR channels][t][c][NR], as the forward
 * reads them) rather than packed by every call.
 *
 * The same sums in the same order as k_conv2d_small_bn's (the bias, then
 * the valid taps in order, each over the channels in order; each product
 * the same two factors), so the same bits at any batch, and a model's
 * 2x2 convs give the same whichever of the two a batch gets (at 4x4,
 * Winograd takes over from a tile of images). The dot products of
 * k_conv2d_small_dot, which it replaces from 6 images (3 with AVX2), sum
 * every tap, the padding's zeros too, and broadcast a weight of each of 16
 * rows per vector of pixels: VGG16's 512-channel 4x4 conv at 8 images took
 * 5.7 ms on one thread of an AVX-512 Xeon, here 3.5 (at 2x2: 2.0 and 0.9
 * ms). */
#include "k_kernels.h"
#include "k_small.h"
#include "k_tile.h"

/* A tile: MR images by NR output channels. */
static inline int k_pix_mr(int simd) { return simd >= 16 ? 8 : 4; }
static inline int k_pix_nr(int simd) { return simd >= 16 ? 32 : 24; }

/* From three quarters of a tile of images: below, k_conv2d_small_dot's
 * dot products, whose cost goes by the image, beat a whole tile's (VGG16's
 * 512-channel 4x4 conv, one thread: 2.8 ms against 3.4 at 4 images, 4.3
 * against 3.5 at 6; VGG16 on 2 threads: 397 images/s against 383 at 5
 * images a call, 449 against 486 at 6; with AVX2's tile of 4 images, the
 * same conv even at 3, 4.1 against 3.3 ms at 4). */
int k_small_pix_ok(int N, int simd) { return 4 * N >= 3 * k_pix_mr(simd); }

int k_small_pre_units(int K, int simd) { return (K + k_pix_nr(simd) - 1) / k_pix_nr(simd); }

long k_small_pre_floats(int C, int K, int R, int S, int simd)
{
    long Kp = k_rup(K, k_pix_nr(simd));
    return Kp * C * R * S + Kp;
}

long k_small_pix_ws(int N, int C, int H, int W) { return (long)H * W * C * k_rup(N, 8) + 8 * 32; }

void k_conv2d_small_prep(const float *restrict w, const float *restrict b, const float *restrict gamma,
                         const float *restrict beta, const float *restrict mean, const float *restrict var,
                         float *restrict pre, int C, int K, int R, int S, float eps, int simd, int lo, int hi)
{
    int nr = k_pix_nr(simd), T = R * S;
    long Kp = k_rup(K, nr);
    float *bias = pre + Kp * C * T;
    for (int u = lo; u < hi; u++) {
        int o0 = u * nr, cols = k_min(nr, K - o0);
        float *d = pre + (long)u * T * C * nr;
        /* k_small_run's scale and bias, to the bit */
        float scale[32];
        k_fold_bn(b, gamma, beta, mean, var, eps, o0, cols, nr, scale, bias + o0);
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++)
                for (int j = 0; j < nr; j++) {
                    float v = j < cols ? w[((long)(o0 + j) * C + c) * T + t] : 0.0f;
                    d[((long)t * C + c) * nr + j] = gamma ? v * scale[j] : v;
                }
    }
}

/* k_small.h's segment tile, its rows images, its bias per column (output
 * channel). AVX-512: 16 zmm accumulators, 2 loads and 8 broadcasts per 16
 * FMAs, as k_op_8x32; AVX2: 4 x 24, as k_op_4x24. */
K_SEG_KERNEL(k_pix_8x32, k_v16, 16, 8, 2, 8, 1, 1)
K_SEG_KERNEL(k_pix_4x24, k_v8, 8, 4, 3, 4, 1, 1)

void k_conv2d_small_pix(const float *restrict x, const float *restrict pre, float *restrict y, float *restrict ws,
                        int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int relu,
                        int simd, int lo, int hi)
{
    if (lo >= hi)
        return;
    int mr = k_pix_mr(simd), nr = k_pix_nr(simd), T = R * S, Pi = H * W, Po = OH * OW, Np = (int)k_rup(N, mr);
    long Kp = k_rup(K, nr), ts = (long)Pi * C * mr; /* from one tile of images to the next in xt */
    /* xt[tile of images][q][c][MR images], past N zeros: each thread lays
     * out the whole input (a few images), read from L2 by its tiles */
    float *xt = ws, *tile = xt + (long)Pi * C * Np;
    k_small_layout(x, xt, N, Np, C, Pi, mr, ts, (long)C * mr, mr, (long)C * Pi);
    const float *bias = pre + Kp * C * T;
    int taps[25], pix[25];
    const float *as[25], *bs[25];
    /* a unit's weights (T C NR floats: 590 KB at 512 channels in) stay in
     * L2 while its tiles of images and pixels pass over them */
    for (int u = lo; u < hi; u++) {
        int o0 = u * nr, cols = k_min(nr, K - o0);
        const float *wt = pre + (long)u * T * C * nr;
        for (int n0 = 0; n0 < N; n0 += mr)
            for (int p = 0; p < Po; p++) {
                int nt = k_small_pairs(0, p, H, W, R, S, stride, pad, OH, OW, taps, pix);
                for (int k = 0; k < nt; k++)
                    as[k] = xt + (n0 / mr) * ts + (long)pix[k] * C * mr, bs[k] = wt + (long)taps[k] * C * nr;
                if (simd >= 16)
                    k_pix_8x32(nt, as, bs, C, nr, 0, bias + o0, tile, nr);
                else
                    k_pix_4x24(nt, as, bs, C, nr, 0, bias + o0, tile, nr);
                for (int i = 0; i < mr && n0 + i < N; i++)
                    for (int j = 0; j < cols; j++) {
                        float v = tile[i * nr + j];
                        y[((long)(n0 + i) * K + o0 + j) * Po + p] = relu && !(v > 0.0f) ? 0.0f : v;
                    }
            }
    }
}
