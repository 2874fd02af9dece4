/* Which shapes the F(4x4, 3x3) and F(2x2, 5x5) kernels (k_wino4.c) take,
 * as measured against the direct kernels and F(2x2), and their scratch. */
#include "k_wino4.h"

long k_wino4_ws(int C, int H, int W, int K, int pad, int simd) { return k_w4_ws(C, H, W, K, simd, 4, 3, pad); }

long k_wino25_ws(int C, int H, int W, int K, int pad, int simd) { return k_w4_ws(C, H, W, K, simd, 2, 5, pad); }

int k_wino4_pays(int W)
{
    /* With 2 tiles a row F(4x4) loses: SimCNN's 7x7 layers ran 11-17%
     * slower than with F(2x2) (4 tiles a row) when the row transform worked
     * on 16 tiles of one row; its 14x14 and 28x28 layers 3-8% faster (Zen
     * 4, training, MWTC_PROFILE=1, 4 runs each). Since the transforms take
     * 16 tiles across tile rows, VGG16's 8x8 stage (2 tiles a row, none
     * hanging over) still trained 8% slower with F(4x4) (Xeon, 10 steps). */
    return k_w4_tiles(W, 4) >= 4;
}

/* The shapes the transforms are written for: any padding up to 4 (a
 * valid conv's data gradient is the conv the other way with padding 4). */
static int k_w25_shape(int H, int W, int R, int S, int stride, int pad, int OH, int OW)
{
    return R == 5 && S == 5 && stride == 1 && pad >= 0 && pad <= 4 && OH == k_w4_out_size(H, 5, pad) &&
           OW == k_w4_out_size(W, 5, pad) && H >= 4 && W >= 4 && OH >= 4 && OW >= 4;
}

int k_wino25_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW)
{
    /* Training's forward and data gradient (bench_kernels BENCH_R=5, one
     * thread, Sapphire Rapids): with 32 channels a side and more 1.6-2.4x
     * as fast as the direct kernel; with 16 on a side 1.0-1.35x (16->16 at
     * 28x28 234 GFLOP/s against 198), but 32->16's forward at 14x14 (148
     * against 165). The same rule both ways, as the data gradient is the
     * conv the other way. */
    return k_w25_shape(H, W, R, S, stride, pad, OH, OW) && C >= 16 && K >= 16;
}

int k_wino25_infer_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW)
{
    /* The forward alone at the eval batch (BENCH_R=5 bench_wino_small,
     * batch 64, one thread, Sapphire Rapids), against the direct kernel:
     * from 8 inputs faster at 7x7 (its im2col pads the rows) whatever the
     * outputs (8->2 0.077 ms against 0.128), and at 14x14 and 28x28 from
     * 32 outputs (8->32 at 14x14 0.86 against 0.91, 32->64 at 28x28 13.9
     * against 24.9); with 16 outputs from 32 inputs, or from 12 at 28x28
     * (12->16 2.23 against 2.72), not 16->16 at 14x14 (0.96 against 0.92)
     * nor 8->16 at 28x28 (1.78 against 1.61); below 8 inputs slower. */
    if (!k_w25_shape(H, W, R, S, stride, pad, OH, OW) || pad != 2 || C < 8) /* the part kernels: padding 2 */
        return 0;
    return K >= 32 || H * W <= 64 || (K >= 16 && (C >= 32 || (C >= 12 && H * W >= 784)));
}

int k_wino25_bwd_w_ok(int C, int H, int W, int K, int pad)
{
    /* bench_kernels (BENCH_R=5, one thread, Sapphire Rapids) against the
     * direct kernel: from 32 channels a side 1.1-1.4x as fast at 8x8 to
     * 32x32 (64->64 at 32x32 260 GFLOP/s against 187), but at 14x14 (170
     * against 182: the direct kernel's rows of 14 fit its 16-float tiles),
     * and with 16 on a side 1.3-2.3x slower. As k_wino_bwd_w_ok, tiles
     * hanging over the edge cost it more than the forward: 7x7 (64 outputs
     * computed for 49) 158 against 155, not taken. */
    int OH = k_w4_out_size(H, 5, pad), OW = k_w4_out_size(W, 5, pad);
    long computed = 4L * k_w4_tiles(OH, 2) * k_w4_tiles(OW, 2);
    return k_wino25_ok(C, H, W, K, 5, 5, 1, pad, OH, OW) && C >= 32 && K >= 32 && computed * 100 <= 115L * OH * OW;
}

/* The shapes the transforms take at paddings 0 and 2 (3x3, stride 1): a
 * valid conv, and its data gradient, the conv the other way with padding
 * 2, whose output is larger than its input. */
static int k_w4_shape(int H, int W, int R, int S, int stride, int pad, int OH, int OW)
{
    return R == 3 && S == 3 && stride == 1 && (pad == 0 || pad == 2) && OH == k_w4_out_size(H, 3, pad) &&
           OW == k_w4_out_size(W, 3, pad) && H >= 4 && W >= 4 && OH >= 4 && OW >= 4;
}

int k_wino4_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW)
{
    /* Valid convs against the direct kernels (bench_kernels BENCH_PAD=0,
     * one thread, Sapphire Rapids, GFLOP/s of the direct FLOPs, forward and
     * data gradient): 32->32 at 28x28 175 and 166, by F(4x4) 270 and 264;
     * 64->64 at 14x14 144 and 124, by F(4x4) 342 and 321; 16->16 at 28x28
     * 162 and 156, by F(4x4) 169 and 170. Even where the tiles hang over,
     * the two together were faster: 128->128 at 8x8 (6x6 out, 8x8
     * computed) 181 and 116, by F(4x4) 159 and 158; 64->128 at 9x9 194 and
     * 95, by F(4x4) 223 and 115. The same rule both ways, as the data
     * gradient is the conv the other way. */
    return k_w4_shape(H, W, R, S, stride, pad, OH, OW) && C >= 16 && K >= 16;
}

int k_wino4_infer_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW)
{
    /* The forward alone at the eval batch against the direct kernel
     * (bench_wino_small BENCH_PAD=0, batch 64, one thread, Sapphire
     * Rapids): never at 7x7 (5x5 out), whatever the channels; at 14x14
     * and 28x28 (12x12 and 26x26 out) as k_wino4_pad_pays says per vector
     * width and channels. Outputs from 8x8 on: two whole tiles a side,
     * between the two measured. */
    (void)K;
    return k_w4_shape(H, W, R, S, stride, pad, OH, OW) && OH >= 8 && OW >= 8 && C >= 2;
}

int k_wino4_pad_pays(int C, int H, int W, int K, int simd)
{
    /* With 16-float vectors the direct kernel stays ahead with few
     * channels (its rows straight from the input's: 4->4 at 14x14 0.043 ms,
     * F(4x4) 0.059) and with few outputs (32->8 at 28x28 1.42 ms, F(4x4)
     * 1.55), and is even at 16->16 (1.22 against 1.17); F(4x4) wins from
     * 12->32 (14x14: 0.43 against 0.32), 32->16 (28x28: 2.45 against 2.00)
     * and 8->64 (14x14: 0.59 against 0.46). With AVX2's code
     * (MWTC_JIT_CPU=x86-64-v3 on the same machine, 9 repetitions) it wins
     * from 8 input channels at any output count (8->8 at 28x28 and 14x14),
     * and at 14x14 from 2 inputs up to 4 outputs an input, where the direct
     * kernel's im2col costs more than its sums (4->4 0.137 ms, F(4x4)
     * 0.065; 4->16 0.205 against 0.152; 4->32 even; 2->16 0.103 against
     * 0.129); at 28x28 not below 8 inputs (4->4 0.270 against 0.302). */
    if (simd >= 16)
        return C >= 8 && K >= 16 && C * K >= 384;
    return C >= 8 || (H * W <= 196 && K <= 4 * C);
}

int k_wino4_bwd_w_ok(int C, int H, int W, int K, int pad)
{
    /* Its sums run over every computed output, so tiles hanging over cost
     * it (the same bench): faster at 28x28 (26x26 out, 28x28 computed) and
     * 14x14 (12x12 out), 32->32 145 GFLOP/s by the direct kernel, by
     * F(4x4) 191, 64->64 at 14x14 141 and 195, 16->16 at 28x28 110 and
     * 132; slower with 12x12 computed for 10x10 (144 against 133), 8x8 for
     * 7x7 (155 against 121) or 6x6 (143 against 86), and at 2 tiles a row
     * even without overhang (256->256 at 10x10: 164 against 157). */
    int OH = k_w4_out_size(H, 3, pad), OW = k_w4_out_size(W, 3, pad), TH = k_w4_tiles(OH, 4), TW = k_w4_tiles(OW, 4);
    long computed = 16L * TH * TW;
    return k_wino4_ok(C, H, W, K, 3, 3, 1, pad, OH, OW) && TW >= 3 && TH >= 3 && computed * 100 <= 120L * OH * OW;
}

int k_wino4_bwd_w_phases_ok(int C, int H, int W, int K, int pad)
{
    /* Against the direct 5x5 kernel at stride 2 (25 taps where the phases
     * have 36, at a quarter of the multiplies), overhang and all: from 3
     * tiles a side it gained 1.09-1.55x (Zen 4, 2 threads, 64 -> 64 and 128
     * -> 128 channels, 9x9 to 17x17 outputs computed as 12x12 to 20x20,
     * AVX-512's code and AVX2's alike). */
    int OH = k_w4_out_size(H, 3, pad), OW = k_w4_out_size(W, 3, pad);
    return k_wino4_ok(C, H, W, K, 3, 3, 1, pad, OH, OW) && k_w4_tiles(OW, 4) >= 3 && k_w4_tiles(OH, 4) >= 3;
}

int k_wino4_infer_pays(int N, int C, int H, int W, int simd)
{
    /* F(4x4)'s U, 36 values a kernel against F(2x2)'s 16, is read whole by
     * every call: fewer than 784 pixels (one 28x28 image) do not repay it.
     * SimCNN at batch 1 on Zen 1, one thread, U computed beforehand
     * (k_conv2d_wino4_prep): 1.11-1.23 ms with F(4x4) at 14x14, 0.92-1.02
     * with F(2x2) there (two threads, when each call still computed U:
     * 0.78 and 0.61). */
    if ((long)N * H * W < 784)
        return 0;
    /* The inference forward at the eval batch with 8-float vectors
     * (bench/bench_wino_small, Zen 1): at 14x14 and 28x28 F(4x4) was 5-20%
     * faster than F(2x2) from 8 input channels on (at 14x14 F(2x2) had been
     * 17-30% faster, while the transforms ran one tile row, 4 tiles, at a
     * time), even below; at 7x7 slower. With 16-float vectors the rule
     * measured on Zen 4. */
    if (simd >= 16)
        return k_wino4_pays(W);
    return k_wino4_pays(W) && C >= 8;
}
