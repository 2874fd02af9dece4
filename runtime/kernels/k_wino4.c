/* 3x3 convolutions with stride 1 and padding 1 by Winograd's F(4x4, 3x3)
 * (Lavin and Gray 2015), and 5x5 ones by F(2x2, 5x5) (padding 2), and in
 * training 3x3 ones at padding 0 or 2 and 5x5 ones at any padding up to 4
 * (the tiles cover the output, the input is read from m tr - pad; a valid
 * conv, LeNet's, had run the direct kernels, a valid 5x5 at 0.88x PyPI
 * PyTorch's speed), the forward, the data gradient and the weight
 * gradient: as k_wino.c's
 * F(2x2, 3x3), with 4x4 (2x2) output tiles from 6x6 input patches,
 *   Y = A^T [ (G g G^T) . (B^T d B) ] A,
 * 36 GEMMs (one per position xi of the 6x6 transformed tile), K x C times C
 * x tiles: 36 multiplies per tile of 16 outputs and channel pair, 4x fewer
 * than the direct conv's 144 (F(2x2) 2.25x). On SimCNN's layers the GEMMs
 * were ~65% of F(2x2)'s time, at ~90% of the core's peak: fewer multiplies
 * was what was left to gain. The transforms have larger constants (up to 8
 * in A, 1/24 in G), so the results round more than F(2x2)'s (measured
 * 1.3e-5 relative to the terms' size, F(2x2) 8e-7; the weight gradient
 * 1.8e-6 against 1.4e-7, relative to its sum's).
 *
 * F(2x2, 5x5) interpolates at the same six points (0, 1, -1, 2, -2 and
 * infinity): the same B^T, A^T's first two rows (plus infinity's term), G
 * of five columns. 36 multiplies per tile of 4 outputs against the direct
 * conv's 100: a 5x5 conv had no Winograd and ran the direct kernels at
 * ~75% of the core's peak. Its tiles are 2 columns apart and read 6, so a
 * tile row's last two tiles read past its row (k_wino_strips' ov). The
 * functions below take the output tile m and kernel r (4 and 3, or 2 and
 * 5) from each public kernel (K_W4_SPEC).
 *
 * k_conv2d_wino4_part is the inference forward with keep vectors and
 * masks of k_wino.c's part kernel (a sweep's convs): the channels that take
 * part mapped, the images a mask turns off zeros, the input channels that
 * are zeros in a column tile's images left out of its sums.
 *
 * Same structure as k_wino.c: blocks of tile rows of the flattened sequence
 * image * TH + tile row, sized so that V and M of a block stay in L2; per
 * block the input transform, the 36 GEMMs with the micro-kernel of
 * k_tile.h, the output transform with the bias (or a batchnorm on running
 * statistics folded in) and relu. Every output is its own tile's sums in an
 * order fixed by the shape: the thread split changes no bit. */
#include <math.h>

#include "k_kernels.h"
#include "k_tile.h"
#include "k_wino.h"

#define K_ROLLED K_PRAGMA(GCC unroll 1)

/* The functions that take the tile and kernel sizes (m and r, in the layout
 * as tm and tr) are inlined into each public kernel, which passes them as
 * literals: clang unrolls this file's loops when it makes the bitcode (the
 * JIT's O3 runs without the unroller for these kernels), and only loops of
 * constant trip counts, so each kernel's copy must see its m and r there.
 * As called functions, the loops over m stayed rolled and their vectors in
 * memory: F(4x4)'s kernels ran 10-15% slower. */
#define K_W4_SPEC static inline __attribute__((always_inline))

enum { K_W4_NX = 36 }; /* positions of a transformed tile */

/* Tiles of m outputs per row and column of the output (the last one may
 * hang over). */
static int k_w4_tiles(int n, int m) { return (n + m - 1) / m; }

/* Columns (tiles) per block: V and M, 36 * (C + K) floats per column, in
 * ~512 KB, as k_wino.c's forward; the weight gradient's (wgrad: C and K a
 * block of its channels) as k_wino_wcols. */
static int k_w4_ld(int C, int K, int TW, int simd, int wgrad)
{
    int nr = k_op_nr(simd), mr = k_op_mr(simd);
    long cols = wgrad ? k_wino_wcols(K_W4_NX, C, K) : 8192L * 16 / K_W4_NX / (C + k_rup(K, mr));
    int rows = (int)(cols / TW) > 1 ? (int)(cols / TW) : 1;
    return (int)k_rup((long)rows * TW, nr);
}

/* Scratch, as k_wino.c's: packed U; V and M (rows of ldv floats, 16 more
 * than a block's columns: the transforms store whole vectors), their 36
 * planes a cache line more than their size apart; the zero-padded input
 * rows of one channel (PWp floats each); the strips of their vertical
 * transforms and the overhang columns (k_w4_strip); four output rows of a
 * run of tile rows (k_w4_out); the bias and scale; the part kernel's
 * channel maps and zero channels. */
typedef struct {
    int tm, tr, pad; /* the output tile and kernel sizes: 4 and 3, or 2 and 5; the padding */
    int TH, TW, ld, ldv, Kp, PWp;
    long vxs, mxs; /* from one xi to the next in V and in M */
    long vcs, mks; /* from one channel to the next in V, in M */
    long sl;       /* from one row to the next in the strips and in the output rows */
    long u, v, m, plane, strip, over, rows, bias, scale, maps, zch, runs, lists, end;
    long acc, zero, dbacc, wend; /* the weight gradient's, after end */
    int Kf;                       /* the weight gradient's: all of K rounded up to register tiles */
} KW4Ws;

K_W4_SPEC KW4Ws k_w4_layout(int C, int OH, int OW, int K, int simd, int wgrad, int m, int r, int pad)
{
    KW4Ws g;
    g.tm = m, g.tr = r, g.pad = pad;
    g.TH = k_w4_tiles(OH, m), g.TW = k_w4_tiles(OW, m);
    g.ld = k_w4_ld(C, K, g.TW, simd, wgrad);
    g.ldv = g.ld + 16;
    g.Kp = (int)k_rup(K, k_op_mr(simd));
    g.PWp = (int)k_rup((long)m * g.TW + r - 1, 64) + 16;
    g.vxs = g.mxs = g.ldv;
    g.vcs = g.mks = K_W4_NX * g.ldv + 16;
    g.u = 0;
    g.v = g.u + K_W4_NX * k_wino_ustride((long)g.Kp * C);
    g.m = g.v + C * g.vcs;
    g.plane = g.m + g.Kp * g.mks;
    /* a run of tile rows has at most ld tiles; a strip row holds m floats a
     * tile, the last tile row's overhang (QW <= m TW + r + 14) and the 80
     * floats k_w4_deal reads from a chunk's start (k_w25_deal 48); an
     * output row, m floats a tile and the 16 m a chunk writes */
    g.sl = k_rup((long)m * g.ld + 80, 16) + 16;
    g.strip = g.plane + ((long)m * g.TH + r - 1) * g.PWp;
    g.over = g.strip + 6 * g.sl;
    g.rows = g.over + 6L * (6 - m) * k_rup(g.ld + 16, 16); /* the overhang's 6 - m columns of 6 strip rows */
    g.bias = g.rows + m * g.sl;
    g.scale = g.bias + k_rup(K, 16);
    g.maps = g.scale + k_rup(K, 16); /* k_conv2d_wino4_part's channels, as ints */
    /* its input channels that are zeros, a byte per (run of a block,
     * channel), and per column tile of the GEMMs the channels it sums over
     * (as k_wino.c's) */
    g.zch = g.maps + k_rup(C + 2L * K, 16);
    g.runs = g.zch + k_rup(((long)g.ld + 2) * C, 64) / 4;
    g.lists = g.runs + k_rup((long)g.ld + 2, 16);
    g.end = g.lists + k_rup(((long)g.ld / k_op_nr(simd) + 1) * (C + 1), 16);
    g.acc = g.zero = g.dbacc = g.wend = g.end, g.Kf = g.Kp;
    return g;
}

/* The weight gradient's: V, M and the transforms' room for a block of
 * channels (k_wino_dots), then the sums of all K x C channel pairs. */
K_W4_SPEC KW4Ws k_w4_wlayout(int C, int OH, int OW, int K, int simd, int m, int r, int pad)
{
    KW4Ws g = k_w4_layout(k_min(C, K_WINO_WBLOCK), OH, OW, k_min(K, K_WINO_WBLOCK), simd, 1, m, r, pad);
    g.Kf = (int)k_rup(K, k_op_mr(simd));
    g.acc = g.end;
    g.zero = g.acc + (long)K_W4_NX * g.Kf * k_rup(C, K_DOT_NR);
    g.dbacc = g.zero + g.ldv;
    g.wend = g.dbacc + k_rup(K, 16);
    return g;
}

/* a conv's output size along an input of n with padding pad (stride 1) */
static int k_w4_out_size(int n, int r, int pad) { return n + 2 * pad - r + 1; }

K_W4_SPEC long k_w4_ws(int C, int H, int W, int K, int simd, int m, int r, int pad)
{
    int OH = k_w4_out_size(H, r, pad), OW = k_w4_out_size(W, r, pad);
    long a = k_w4_layout(C, OH, OW, K, simd, 0, m, r, pad).end, b = k_w4_wlayout(C, OH, OW, K, simd, m, r, pad).wend;
    return (a > b ? a : b) + 16;
}

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

/* G's rows applied to three values: out[i] = (G (a0, a1, a2))[i]. */
static inline void k_w4_g(float a0, float a1, float a2, float *out)
{
    out[0] = a0 * 0.25f;
    out[1] = -(a0 + a1 + a2) * (1.0f / 6);
    out[2] = -(a0 - a1 + a2) * (1.0f / 6);
    out[3] = a0 * (1.0f / 24) + a1 * (1.0f / 12) + a2 * (1.0f / 6);
    out[4] = a0 * (1.0f / 24) - a1 * (1.0f / 12) + a2 * (1.0f / 6);
    out[5] = a2;
}

/* F(2x2, 5x5)'s G on five values: the same points, so rows 0-2 are
 * F(4x4)'s and rows 3-4 the powers of +-2 over 24. */
static inline void k_w25_g(const float *a, float *out)
{
    out[0] = a[0] * 0.25f;
    out[1] = -(a[0] + a[1] + a[2] + a[3] + a[4]) * (1.0f / 6);
    out[2] = -(a[0] - a[1] + a[2] - a[3] + a[4]) * (1.0f / 6);
    out[3] = a[0] * (1.0f / 24) + a[1] * (1.0f / 12) + a[2] * (1.0f / 6) + a[3] * (1.0f / 3) + a[4] * (2.0f / 3);
    out[4] = a[0] * (1.0f / 24) - a[1] * (1.0f / 12) + a[2] * (1.0f / 6) - a[3] * (1.0f / 3) + a[4] * (2.0f / 3);
    out[5] = a[4];
}

/* G on the r values a[0], a[st], ..: F(4x4)'s or F(2x2, 5x5)'s. */
static inline void k_w4_gr(const float *a, long st, int r, float *out)
{
    if (r == 3) {
        k_w4_g(a[0], a[st], a[2 * st], out);
        return;
    }
    float b[5] = { a[0], a[st], a[2 * st], a[3 * st], a[4 * st] };
    k_w25_g(b, out);
}

/* U[xi] = G g G^T for every (k, c) with k0 <= k < k1 (k1 <= K rounded up to
 * a register tile), scaled by scale[k], packed per xi as k_op_pack packs a
 * K x C matrix; with maps, only output channels kmap[0..Ka) and input
 * channels cmap[0..Ca), packed Ka x Ca (k0, k1 then rows of that). g is
 * r x r. */
K_W4_SPEC void k_w4_weights(const float *restrict w, const float *restrict scale, float *restrict u, int C, int K,
                         int flip, int simd, const int *restrict cmap, int Ca, const int *restrict kmap, int Ka,
                         int k0, int k1, int r)
{
    int mr = k_op_mr(simd), Kp = (int)k_rup(Ka, mr), rr = r * r;
    long us = k_wino_ustride((long)Kp * Ca);
    for (int k = k0; k < k1; k++)
        for (int ci = 0; ci < Ca; ci++) {
            float g[25], t[5][6], U[36];
            int kr = k >= Ka ? -1 : kmap ? kmap[k] : k, c = cmap ? cmap[ci] : ci;
            for (int j = 0; j < rr; j++) /* flip: the data gradient's kernel, w[c][k] rotated */
                g[j] = kr < 0 ? 0.0f
                       : flip ? w[((long)c * K + kr) * rr + rr - 1 - j]
                              : w[((long)kr * C + c) * rr + j];
            for (int j = 0; j < r; j++) /* G down each column j of g */
                k_w4_gr(g + j, r, r, t[j]);
            float s = scale && kr >= 0 ? scale[kr] : 1.0f;
            for (int i = 0; i < 6; i++) { /* then along each row i */
                float o[6];
                k_w4_gr(&t[0][i], 6, r, o);
                for (int j = 0; j < 6; j++)
                    U[6 * i + j] = o[j] * s;
            }
            int m0 = k / mr * mr;
            for (int xi = 0; xi < K_W4_NX; xi++)
                u[xi * us + (long)m0 * Ca + (long)ci * mr + (k - m0)] = U[xi];
        }
}

/* q[j] = elements 4 l + j of the 80 floats at p, for the 16 lanes l. */
static inline void k_w4_deal(const float *restrict p, k_v16 *q)
{
    k_v16 a0, a1, a2, a3, a4;
    __builtin_memcpy(&a0, p, sizeof a0);
    __builtin_memcpy(&a1, p + 16, sizeof a1);
    __builtin_memcpy(&a2, p + 32, sizeof a2);
    __builtin_memcpy(&a3, p + 48, sizeof a3);
    __builtin_memcpy(&a4, p + 64, sizeof a4);
    k_v16 e01 = K_EVEN16(a0, a1), o01 = K_ODD16(a0, a1), e23 = K_EVEN16(a2, a3), o23 = K_ODD16(a2, a3);
    q[0] = K_EVEN16(e01, e23);
    q[1] = K_EVEN16(o01, o23);
    q[2] = K_ODD16(e01, e23);
    q[3] = K_ODD16(o01, o23);
    q[4] = __builtin_shufflevector(q[0], a4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    q[5] = __builtin_shufflevector(q[1], a4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17);
}

/* q[j] = elements 2 l + j of the 48 floats at p, for the 16 lanes l: the
 * tiles of F(2x2, 5x5), 2 columns apart. */
static inline void k_w25_deal(const float *restrict p, k_v16 *q)
{
    k_v16 a0, a1, a2;
    __builtin_memcpy(&a0, p, sizeof a0);
    __builtin_memcpy(&a1, p + 16, sizeof a1);
    __builtin_memcpy(&a2, p + 32, sizeof a2);
    k_v16 e2 = K_EVEN16(a2, a2), o2 = K_ODD16(a2, a2);
    q[0] = K_EVEN16(a0, a1);
    q[1] = K_ODD16(a0, a1);
    q[2] = __builtin_shufflevector(q[0], e2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    q[3] = __builtin_shufflevector(q[1], o2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    q[4] = __builtin_shufflevector(q[0], e2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17);
    q[5] = __builtin_shufflevector(q[1], o2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17);
}

/* B^T's rows on six vectors (in place, only pointers cross functions). */
static inline void k_w4_bt(const k_v16 *a, k_v16 *z)
{
    z[0] = 4.0f * a[0] - 5.0f * a[2] + a[4];
    z[1] = a[3] + a[4] - 4.0f * (a[1] + a[2]);
    z[2] = a[4] - a[3] + 4.0f * (a[1] - a[2]);
    z[3] = a[4] - a[2] + 2.0f * (a[3] - a[1]);
    z[4] = a[4] - a[2] - 2.0f * (a[3] - a[1]);
    z[5] = 4.0f * a[1] - 5.0f * a[3] + a[5];
}

/* k_wino_strips for F(4x4) and F(2x2, 5x5): m columns from one tile to the
 * next, 6 outputs. The transforms go in as constants of each branch, not
 * picked by a value: the inliner runs before m is folded, and a transform
 * picked by m stayed an indirect call in the loops (F(4x4)'s weight
 * gradient ran at half its speed). */
K_W4_SPEC void k_w4_strip(const float *restrict plane, int rows, void (*tf)(const k_v16 *, k_v16 *),
                           float *restrict s, float *restrict over, const KW4Ws *g, int nrows, int QW,
                           float *restrict dst, long xs)
{
    if (g->tm == 4)
        k_wino_strips(plane, g->PWp, rows, 6, 4, g->TW, nrows, QW, tf, k_w4_deal, s, g->sl, over,
                      k_rup(g->ld + 16, 16), dst, xs);
    else
        k_wino_strips(plane, g->PWp, rows, 6, 2, g->TW, nrows, QW, tf, k_w25_deal, s, g->sl, over,
                      k_rup(g->ld + 16, 16), dst, xs);
}

/* V[xi][c][col0 + (tr - tr0) * TW + tc] = (B^T d B)[xi] for the tile rows
 * [tr0, tr1) of image x (channels of H x W: V row ci is channel cmap[ci],
 * or ci without a map, for ci < Ca), 16 tiles at a time (k_w4_strip); a
 * chunk's lanes past the run's last tile land on the next run's first
 * columns (rewritten when that run comes) or past the block's last. */
K_W4_SPEC void k_w4_in(const float *restrict x, float *restrict v, const KW4Ws *g, float *restrict ws, long col0,
                    int tr0, int tr1, const int *restrict cmap, int Ca, int H, int W,
                    const unsigned char *restrict zero)
{
    /* Only the columns the row's tiles read (QW) are filled and transformed:
     * the chunk's lanes past the run's last tile read stale columns, and
     * their results are rewritten or never read (above). */
    int m = g->tm, PWp = g->PWp, pr = m * (tr1 - tr0) + g->tr - 1, QW = (int)k_rup((long)m * g->TW + g->tr - 1, 16);
    float *plane = ws + g->plane;
    k_wino_plane_zero(plane, PWp, pr, QW);
    for (int ci = 0; ci < Ca; ci++) {
        int c = cmap ? cmap[ci] : ci;
        if (zero && zero[ci]) { /* a channel of zeros (zero[ci]) transforms to zeros: no need to */
            K_ROLLED
            for (int xi = 0; xi < K_W4_NX; xi++)
                for (long j = 0; j < (long)(tr1 - tr0) * g->TW; j++)
                    v[(long)ci * g->vcs + xi * g->vxs + col0 + j] = 0.0f;
            continue;
        }
        /* plane row i is input row m tr0 - pad + i, column j input column j - pad */
        for (int i = 0; i < pr; i++) {
            int ih = m * tr0 - g->pad + i;
            if (ih >= 0 && ih < H)
                k_wino_plane_row(plane + (long)i * PWp, x + ((long)c * H + ih) * W, g->pad, W, QW);
        }
        k_w4_strip(plane, 6, k_w4_bt, ws + g->strip, ws + g->over, g, tr1 - tr0, QW, v + (long)ci * g->vcs + col0,
                   g->vxs);
    }
}

/* A^T's rows on six vectors. */
static inline void k_w4_at(const k_v16 *a, k_v16 *s)
{
    k_v16 p = a[1] + a[2], m = a[1] - a[2], p34 = a[3] + a[4], m34 = a[3] - a[4];
    s[0] = a[0] + p + p34;
    s[1] = m + 2.0f * m34;
    s[2] = p + 4.0f * p34;
    s[3] = m + 8.0f * m34 + a[5];
}

/* F(2x2, 5x5)'s A^T: F(4x4)'s first two rows, and infinity's term. */
static inline void k_w25_at(const k_v16 *a, k_v16 *s)
{
    s[0] = a[0] + (a[1] + a[2]) + (a[3] + a[4]);
    s[1] = (a[1] - a[2]) + 2.0f * (a[3] - a[4]) + a[5];
}

/* A's rows (A = (A^T)^T, 6 x 4) on four vectors: the transform of an output
 * tile's gradient. */
static inline void k_w4_a(const k_v16 *d, k_v16 *o)
{
    k_v16 p = d[0] + d[2], m = d[1] + d[3], p4 = d[0] + 4.0f * d[2], m8 = 2.0f * d[1] + 8.0f * d[3];
    o[0] = d[0];
    o[1] = p + m;
    o[2] = p - m;
    o[3] = p4 + m8;
    o[4] = p4 - m8;
    o[5] = d[3];
}

/* F(2x2, 5x5)'s A (6 x 2) on two vectors. */
static inline void k_w25_a(const k_v16 *d, k_v16 *o)
{
    k_v16 d2 = 2.0f * d[1];
    o[0] = d[0];
    o[1] = d[0] + d[1];
    o[2] = d[0] - d[1];
    o[3] = d[0] + d2;
    o[4] = d[0] - d2;
    o[5] = d[1];
}

/* Images [a, e) of a conv: its output channels (M rows [ka0, ka1), channel
 * kmap[ki] of M row ki, or ki without a map) and those it writes zeros
 * into (zmap[kz0..kz1)); with apply, channel k scaled by (mask ? mask's
 * row of the image [k] : 1) keep[k] before the relu, as k_mask_apply_keep
 * computes it. */
typedef struct {
    const float *x, *u, *bias, *mask, *keep;
    float *y, *ws;
    const int *cmap, *kmap, *zmap;
    int C, H, W, K, Ca, Ka, relu, apply, simd, ka0, ka1, kz0, kz1;
    int lists; /* leave the channels that are zeros in a column tile's images out of its sums */
    int OH, OW; /* the output's size (H x W but for k_conv2d_wino25's other paddings) */
} KW4Run;

/* y[k][m tr + a][m tc + b] = (A^T M A)[a][b] + bias[k], relu'd, for the
 * tile rows [tr0, tr1) of one image (the run's channels of H x W, mrow its
 * mask's row), 16 tiles at a time, a chunk taking tiles of several tile
 * rows as k_w4_strip's do: output row a of tile L at rows[a][m L], then
 * copied out tile row by tile row. */
K_W4_SPEC void k_w4_out(const float *restrict m, const KW4Ws *g, const KW4Run *r, float *restrict y,
                     const float *restrict mrow, long col0, int tr0, int tr1)
{
    int TW = g->TW, nt = (tr1 - tr0) * TW, H = r->OH, W = r->OW, tm = g->tm;
    long xs = g->mxs, rl = g->sl, e = (long)tm * tr1 < H ? (long)tm * tr1 : H;
    float *rows = r->ws + g->rows;
    for (int z = r->kz0; z < r->kz1; z++) /* channels switched off: zeros (a mask times 0 after them) */
        for (long i = (long)tm * tr0 * W; i < e * W; i++)
            y[(long)r->zmap[z] * H * W + i] = 0.0f;
    for (int ki = r->ka0; ki < r->ka1; ki++) {
        int k = r->kmap ? r->kmap[ki] : ki, relu = r->relu;
        float b = r->bias ? r->bias[k] : 0.0f;
        float sc = (mrow ? mrow[k] : 1.0f) * (r->keep ? r->keep[k] : 1.0f);
        const float *mk = m + (long)ki * g->mks + col0;
        for (int L0 = 0; L0 < nt; L0 += 16) {
            k_v16 s[6][4], a[6];
            for (int j = 0; j < 6; j++) { /* A^T down each column j */
                for (int i = 0; i < 6; i++)
                    __builtin_memcpy(&a[i], mk + (6 * i + j) * xs + L0, sizeof a[i]);
                if (tm == 4) /* each transform a constant (k_w4_strip) */
                    k_w4_at(a, s[j]);
                else
                    k_w25_at(a, s[j]);
            }
            for (int ro = 0; ro < tm; ro++) { /* then along output row ro */
                k_v16 c[6], o[4];
                for (int j = 0; j < 6; j++)
                    c[j] = s[j][ro];
                if (tm == 4)
                    k_w4_at(c, o);
                else
                    k_w25_at(c, o);
                for (int q = 0; q < tm; q++) {
                    o[q] += b;
                    if (r->apply)
                        o[q] *= sc;
                    if (relu)
                        o[q] = K_WHERE16(o[q] > 0.0f, o[q]);
                }
                /* tile l's m outputs side by side: interleave by m */
                k_v16 z[4];
                if (tm == 4) {
                    k_v16 l02 = K_ZIP_LO16(o[0], o[2]), h02 = K_ZIP_HI16(o[0], o[2]);
                    k_v16 l13 = K_ZIP_LO16(o[1], o[3]), h13 = K_ZIP_HI16(o[1], o[3]);
                    z[0] = K_ZIP_LO16(l02, l13), z[1] = K_ZIP_HI16(l02, l13);
                    z[2] = K_ZIP_LO16(h02, h13), z[3] = K_ZIP_HI16(h02, h13);
                } else
                    z[0] = K_ZIP_LO16(o[0], o[1]), z[1] = K_ZIP_HI16(o[0], o[1]);
                for (int q = 0; q < tm; q++)
                    __builtin_memcpy(rows + ro * rl + (long)tm * L0 + 16 * q, &z[q], sizeof z[q]);
            }
        }
        for (int tr = tr0; tr < tr1; tr++)
            for (int a4 = 0; a4 < tm && tm * tr + a4 < H; a4++) {
                float *dst = y + ((long)k * H + tm * tr + a4) * W;
                const float *src = rows + a4 * rl + (long)tm * (tr - tr0) * TW;
                for (int j = 0; j < W; j++)
                    dst[j] = src[j];
            }
    }
}

/* Images [lo, hi) of the run (U packed for its Ka x Ca channels): blocks of
 * up to TRb tile rows, of several whole images or a slice of one. */
K_W4_SPEC void k_w4_images(const KW4Run *r, const KW4Ws *g, long lo, long hi)
{
    int C = r->C, H = r->H, W = r->W, K = r->K, simd = r->simd, Mk = r->ka1 - r->ka0;
    float *v = r->ws + g->v, *m = r->ws + g->m;
    unsigned char *zero = (unsigned char *)(r->ws + g->zch);
    int *c0 = (int *)(r->ws + g->runs), *lists = (int *)(r->ws + g->lists);
    int *lens = lists + (long)(g->ld / k_op_nr(simd) + 1) * C;
    int nr = k_op_nr(simd), TRb = g->ld / g->TW;
    long end = hi * g->TH, us = k_wino_ustride(k_rup(r->Ka, k_op_mr(simd)) * r->Ca);
    const float *ua = r->u + (long)r->ka0 * r->Ca; /* the rows' register tiles, in each xi's packing */
    float *ma = m + (long)r->ka0 * g->mks;
    for (long t = lo * g->TH; t < end;) {
        long t1 = t + TRb < end ? t + TRb : end;
        long cols = (t1 - t) * g->TW;
        int qb = (int)k_rup(cols, nr), nruns = 0;
        for (long u0 = t, n; u0 < t1 && Mk > 0; nruns++) {
            int tr0, rows = k_blk_run(u0, t1, g->TH, &n, &tr0);
            unsigned char *z = r->lists ? zero + (long)nruns * r->Ca : NULL;
            c0[nruns] = (int)((u0 - t) * g->TW);
            if (z)
                k_wino_zeros(r->x + n * C * H * W, r->cmap, r->Ca, (long)H * W, z);
            k_w4_in(r->x + n * C * H * W, v, g, r->ws, c0[nruns], tr0, tr0 + rows, r->cmap, r->Ca, H, W, z);
            u0 += rows;
        }
        if (Mk > 0)
            k_wino_zero_cols(v, K_W4_NX, g->vxs, r->Ca, g->vcs, cols, qb); /* zeros into the GEMM past the tiles */
        /* A column tile sums only over the channels not zero in its images:
         * the same sums to the bit (k_op_gemm_lists), fewer terms. The part
         * kernel always sums by its lists, even where they hold every
         * channel: on the sweep (Zen 1) that was 3-6% faster than taking
         * k_op_gemm then, and one GEMM body less to compile. */
        if (Mk > 0 && r->lists) {
            k_wino_lists(zero, c0, nruns, cols, r->Ca, nr, qb, lists, lens);
            K_ROLLED
            for (int xi = 0; xi < K_W4_NX; xi++)
                k_op_gemm_lists(simd, Mk, r->Ca, ua + xi * us, v + xi * g->vxs, g->vcs, qb, (int)cols,
                                ma + xi * g->mxs, g->mks, lists, r->Ca, lens);
        } else if (Mk > 0) {
            K_ROLLED
            for (int xi = 0; xi < K_W4_NX; xi++)
                k_op_gemm(simd, Mk, r->Ca, ua + xi * us, v + xi * g->vxs, g->vcs, qb, (int)cols, ma + xi * g->mxs,
                          g->mks);
        }
        for (long u0 = t, n; u0 < t1;) {
            int tr0, rows = k_blk_run(u0, t1, g->TH, &n, &tr0);
            k_w4_out(m, g, r, r->y + n * K * r->OH * r->OW, r->mask ? r->mask + n * K : NULL, (u0 - t) * g->TW, tr0,
                     tr0 + rows);
            u0 += rows;
        }
        t = t1;
    }
}

long k_wino4_pre_floats(int C, int K, int simd)
{
    return K_W4_NX * k_wino_ustride(k_rup(K, k_op_mr(simd)) * C);
}

K_W4_SPEC void k_w4_prep(const float *restrict w, const float *restrict b, const float *restrict gamma,
                      const float *restrict beta, const float *restrict mean, const float *restrict var,
                      float *restrict pre, float *restrict ws, int C, int K, float eps, int simd, int lo, int hi, int tr)
{
    int mr = k_op_mr(simd), K16 = (int)k_rup(K, 16);
    float *scale = k_wino_fold(b, gamma, beta, mean, var, eps, K, ws, ws + K16);
    k_w4_weights(w, scale, pre, C, K, 0, simd, NULL, C, NULL, K, lo * mr, hi * mr, tr);
}

void k_conv2d_wino4_prep(const float *restrict w, const float *restrict b, const float *restrict gamma,
                         const float *restrict beta, const float *restrict mean, const float *restrict var,
                         float *restrict pre, float *restrict ws, int C, int K, float eps, int simd, int lo, int hi)
{
    k_w4_prep(w, b, gamma, beta, mean, var, pre, ws, C, K, eps, simd, lo, hi, 3);
}

void k_conv2d_wino25_prep(const float *restrict w, const float *restrict b, const float *restrict gamma,
                          const float *restrict beta, const float *restrict mean, const float *restrict var,
                          float *restrict pre, float *restrict ws, int C, int K, float eps, int simd, int lo, int hi)
{
    k_w4_prep(w, b, gamma, beta, mean, var, pre, ws, C, K, eps, simd, lo, hi, 5);
}

/* k_conv2d_wino4's body, of output tiles m and kernels r (pre: U of r) */
K_W4_SPEC void k_w4_conv(const float *restrict x, const float *restrict w, const float *restrict b,
                      const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                      const float *restrict var, const float *restrict pre, float *restrict y, float *restrict ws,
                      int N, int C, int H, int W, int K, float eps, int relu, int flip, int simd, int groups, int lo,
                      int hi, int tm, int tr, int pad)
{
    if (lo >= hi)
        return;
    int OH = k_w4_out_size(H, tr, pad), OW = k_w4_out_size(W, tr, pad);
    KW4Ws g = k_w4_layout(C, OH, OW, K, simd, 0, tm, tr, pad);
    float *u = ws + g.u, *bias = ws + g.bias;
    /* a batchnorm on running statistics folds in: scale into U, shift into the bias */
    float *scale = k_wino_fold(b, gamma, beta, mean, var, eps, K, bias, ws + g.scale);
    bias = gamma || b ? bias : NULL;
    KW4Run r = { x, pre ? pre : u, bias, NULL, NULL, y, ws, NULL, NULL, NULL, C, H, W, K, C, K, relu, 0, simd,
                 0, K, 0, 0, 0, OH, OW };
    if (groups <= 1) {
        if (!pre)
            k_w4_weights(w, scale, u, C, K, flip, simd, NULL, C, NULL, K, 0, g.Kp, tr);
        k_w4_images(&r, &g, lo, hi);
        return;
    }
    /* unit gi N + n: image n, output channels k_wino_group's gi-th range */
    for (int un = lo, done = -1; un < hi; un++) {
        int gi = un / N, n = un % N;
        r.ka1 = k_wino_group(K, simd, groups, gi, &r.ka0);
        if (r.ka0 >= r.ka1)
            continue;
        if (gi != done && !pre) /* consecutive units share a group: its weights once */
            k_w4_weights(w, scale, u, C, K, flip, simd, NULL, C, NULL, K, r.ka0, (int)k_rup(r.ka1, k_op_mr(simd)),
                         tr),
                done = gi;
        k_w4_images(&r, &g, n, n + 1);
    }
}

void k_conv2d_wino4(const float *restrict x, const float *restrict w, const float *restrict b,
                    const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                    const float *restrict var, const float *restrict pre, float *restrict y, float *restrict ws, int N,
                    int C, int H, int W, int K, int pad, float eps, int relu, int flip, int simd, int groups, int lo,
                    int hi)
{
    k_w4_conv(x, w, b, gamma, beta, mean, var, pre, y, ws, N, C, H, W, K, eps, relu, flip, simd, groups, lo, hi, 4, 3,
              pad);
}

void k_conv2d_wino25(const float *restrict x, const float *restrict w, const float *restrict b,
                     const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                     const float *restrict var, const float *restrict pre, float *restrict y, float *restrict ws,
                     int N, int C, int H, int W, int K, int pad, float eps, int relu, int flip, int simd, int groups,
                     int lo, int hi)
{
    k_w4_conv(x, w, b, gamma, beta, mean, var, pre, y, ws, N, C, H, W, K, eps, relu, flip, simd, groups, lo, hi, 2, 5,
              pad);
}

/* k_wino_live's runs: k_w4_images of a run and its layout. */
typedef struct {
    const KW4Run *r;
    const KW4Ws *g;
} KW4Live;

/* one for each size: a layout of its own whose tm and tr are literals
 * (K_W4_SPEC); the padding the layout's */
static void k_w4_live_run43(void *ctx, long a, long e)
{
    const KW4Live *lv = ctx;
    KW4Ws g = *lv->g;
    g.tm = 4, g.tr = 3;
    k_w4_images(lv->r, &g, a, e);
}

static void k_w4_live_run25(void *ctx, long a, long e)
{
    const KW4Live *lv = ctx;
    KW4Ws g = *lv->g;
    g.tm = 2, g.tr = 5;
    k_w4_images(lv->r, &g, a, e);
}

K_W4_SPEC void k_w4_part(const float *restrict x, const float *restrict w, const float *restrict b,
                      const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                      const float *restrict var, const float *restrict pre, const float *restrict inkeep,
                      const float *restrict outkeep, const float *restrict mask, const int *restrict gen,
                      float *restrict y, float *restrict ws, int N, int C, int H, int W, int K, float eps, int relu,
                      int OH, int OW, int apply, int simd, int groups, int lo, int hi, int tm, int tr)
{
    if (groups > 1) /* the codegen never splits this kernel's channels: group 0 takes every one */
        hi = hi < N ? hi : N;
    if (lo >= hi)
        return;
    int pad = (OH - H + tr - 1) / 2; /* the conv's, from its output's size */
    KW4Ws g = k_w4_layout(C, OH, OW, K, simd, 0, tm, tr, pad);
    float *u = ws + g.u, *bias = ws + g.bias;
    int *cmap, *kmap, *zmap, Ca, Ka, Kz;
    k_wino_maps(inkeep, outkeep, C, K, (int *)(ws + g.maps), &cmap, &Ca, &kmap, &Ka, &zmap, &Kz);
    /* a batchnorm on running statistics folds in: scale into U, shift into the bias */
    float *scale = k_wino_fold(b, gamma, beta, mean, var, eps, K, bias, ws + g.scale);
    k_wino_part_reads(C, K, Ca, Ka, gen, &mask, &pre);
    KW4Run r = { x, pre ? pre : u, gamma || b ? bias : NULL, mask, outkeep, y, ws, cmap, kmap, zmap, C, H, W, K, Ca,
                 Ka, relu, apply, simd, 0, Ka, 0, Kz, 1, OH, OW };
    if (!pre)
        k_w4_weights(w, scale, u, C, K, 0, simd, cmap, Ca, kmap, Ka, 0, (int)k_rup(Ka, k_op_mr(simd)), tr);
    if (!mask) {
        k_w4_images(&r, &g, lo, hi);
        return;
    }
    /* an image its mask turns off altogether is zeros (the mask multiplies all of it by 0) */
    KW4Live lv = { &r, &g };
    k_wino_live(mask, kmap, Ka, K, N, lo, hi, y, (long)K * OH * OW, tm == 4 ? k_w4_live_run43 : k_w4_live_run25, &lv);
}

void k_conv2d_wino4_part(const float *restrict x, const float *restrict w, const float *restrict b,
                         const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                         const float *restrict var, const float *restrict pre, const float *restrict inkeep,
                         const float *restrict outkeep, const float *restrict mask, const int *restrict gen,
                         float *restrict y, float *restrict ws, int N, int C, int H, int W, int K, float eps,
                         int relu, int OH, int OW, int apply, int simd, int groups, int lo, int hi)
{
    k_w4_part(x, w, b, gamma, beta, mean, var, pre, inkeep, outkeep, mask, gen, y, ws, N, C, H, W, K, eps, relu, OH,
              OW, apply, simd, groups, lo, hi, 4, 3);
}

void k_conv2d_wino25_part(const float *restrict x, const float *restrict w, const float *restrict b,
                          const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                          const float *restrict var, const float *restrict pre, const float *restrict inkeep,
                          const float *restrict outkeep, const float *restrict mask, const int *restrict gen,
                          float *restrict y, float *restrict ws, int N, int C, int H, int W, int K, float eps,
                          int relu, int OH, int OW, int apply, int simd, int groups, int lo, int hi)
{
    k_w4_part(x, w, b, gamma, beta, mean, var, pre, inkeep, outkeep, mask, gen, y, ws, N, C, H, W, K, eps, relu, OH,
              OW, apply, simd, groups, lo, hi, 2, 5);
}

/* Z[xi][k][col0 + (tr - tr0) * TW + tc] = (A dY A^T)[xi] for the tile rows
 * [tr0, tr1) of dy (K channels of H x W): the m x m output tiles'
 * gradients, zero past the edges, moved to the 6x6 transformed space. */
K_W4_SPEC void k_w4_dy(const float *restrict dy, float *restrict z, const KW4Ws *g, float *restrict ws, long col0,
                    int tr0, int tr1, int K, int H, int W)
{
    int m = g->tm, PWp = g->PWp, QW = (int)k_rup((long)m * g->TW, 16);
    float *r = ws + g->plane;
    k_wino_plane_zero(r, PWp, m * (tr1 - tr0), QW);
    for (int k = 0; k < K; k++) {
        for (int a = 0; a < m * (tr1 - tr0) && m * tr0 + a < H; a++) /* the tile rows' rows of dy, zero-padded */
            k_wino_plane_row(r + (long)a * PWp, dy + ((long)k * H + m * tr0 + a) * W, 0, W, QW);
        if (m == 4) /* the transform a constant of each branch (k_w4_strip) */
            k_w4_strip(r, 4, k_w4_a, ws + g->strip, NULL, g, tr1 - tr0, QW, z + (long)k * g->mks + col0, g->mxs);
        else
            k_w4_strip(r, 2, k_w25_a, ws + g->strip, NULL, g, tr1 - tr0, QW, z + (long)k * g->mks + col0, g->mxs);
    }
}

/* G^T's rows on six values: out[r] = (G^T (u0..u5))[r]. */
static inline void k_w4_gt(const float *u, long stride, float *out)
{
    float u0 = u[0], u1 = u[stride], u2 = u[2 * stride], u3 = u[3 * stride], u4 = u[4 * stride],
          u5 = u[5 * stride];
    out[0] = u0 * 0.25f - (u1 + u2) * (1.0f / 6) + (u3 + u4) * (1.0f / 24);
    out[1] = (u2 - u1) * (1.0f / 6) + (u3 - u4) * (1.0f / 12);
    out[2] = (u3 + u4 - u1 - u2) * (1.0f / 6) + u5;
}

/* F(2x2, 5x5)'s G^T on six values: five out. */
static inline void k_w25_gt(const float *u, long stride, float *out)
{
    float u0 = u[0], u1 = u[stride], u2 = u[2 * stride], u3 = u[3 * stride], u4 = u[4 * stride],
          u5 = u[5 * stride], p = u1 + u2, q = u2 - u1, p34 = u3 + u4, m34 = u3 - u4;
    out[0] = u0 * 0.25f - p * (1.0f / 6) + p34 * (1.0f / 24);
    out[1] = q * (1.0f / 6) + m34 * (1.0f / 12);
    out[2] = (p34 - p) * (1.0f / 6);
    out[3] = q * (1.0f / 6) + m34 * (1.0f / 3);
    out[4] = p34 * (2.0f / 3) - p * (1.0f / 6) + u5;
}

/* M rows of the output channels [ka, kb) of dy (K channels) for the tiles
 * [t, t1) of a weight gradient's block (qb columns with the zeros past its
 * tiles). */
K_W4_SPEC void k_w4_mblock(const float *restrict dy, float *restrict z, const KW4Ws *g, float *restrict ws, long t,
                           long t1, int K, int ka, int kb, int OH, int OW, int qb)
{
    for (long u0 = t, n; u0 < t1;) {
        int tr0, rows = k_blk_run(u0, t1, g->TH, &n, &tr0);
        k_w4_dy(dy + (n * K + ka) * OH * OW, z, g, ws, (u0 - t) * g->TW, tr0, tr0 + rows, kb - ka, OH, OW);
        u0 += rows;
    }
    k_wino_zero_cols(z, K_W4_NX, g->mxs, kb - ka, g->mks, (t1 - t) * g->TW, qb);
}

/* The weight gradient by the transpose of the forward algorithm, as
 * k_conv2d_wino_bwd_w does for F(2x2): per xi a K x C GEMM over the tiles
 * with the dot micro-kernel (dU = sum over tiles of Z . V), then dg =
 * G^T dU G per (k, c). Chunks of the batch as k_conv2d_bwd_w: the same sums
 * in the same order however the chunks split over threads. */
K_W4_SPEC void k_w4_bwd_w(const float *restrict x, const float *restrict dy, float *restrict dwpart,
                       float *restrict dbpart, float *restrict ws, int N, int C, int H, int W, int K, int G, int CS,
                       int simd, int lo, int hi, int tm, int tr, int pad)
{
    if (lo >= hi)
        return;
    /* a block of channels' layout, whichever channels a unit takes (k_conv2d_wino_bwd_w); dy is OH x OW */
    int OH = k_w4_out_size(H, tr, pad), OW = k_w4_out_size(W, tr, pad);
    KW4Ws g = k_w4_wlayout(C, OH, OW, K, simd, tm, tr, pad);
    int rr = tr * tr;
    float *v = ws + g.v, *z = ws + g.m, *acc = ws + g.acc, *zero = ws + g.zero, *dbacc = ws + g.dbacc;
    int Cp = (int)k_rup(C, K_DOT_NR), TRb = g.ld / g.TW, one = K <= K_WINO_WBLOCK;
    for (int j = 0; j < g.ldv; j++)
        zero[j] = 0.0f;
    for (int u = lo; u < hi; u++) {
        int ch, n0, n1, c0, c1;
        k_wino_bwdw_unit(u, N, G, C, CS, (long)K_W4_NX * g.Kf, acc, &ch, &n0, &n1, &c0, &c1);
        for (long t = (long)n0 * g.TH, end = (long)n1 * g.TH; t < end;) {
            long t1 = t + TRb < end ? t + TRb : end, cols = (t1 - t) * g.TW;
            int qb = (int)k_rup(cols, k_op_nr(simd));
            if (one)
                k_w4_mblock(dy, z, &g, ws, t, t1, K, 0, K, OH, OW, qb);
            for (int ca = c0; ca < c1; ca += K_WINO_WBLOCK) {
                int cb = k_min(c1, ca + K_WINO_WBLOCK);
                for (long u0 = t, n; u0 < t1;) {
                    int tr0, rows = k_blk_run(u0, t1, g.TH, &n, &tr0);
                    k_w4_in(x + (n * C + ca) * H * W, v, &g, ws, (u0 - t) * g.TW, tr0, tr0 + rows, NULL, cb - ca, H,
                            W, NULL);
                    u0 += rows;
                }
                /* past the block's tiles: zeros into the sums */
                k_wino_zero_cols(v, K_W4_NX, g.vxs, cb - ca, g.vcs, cols, qb);
                for (int ka = 0; ka < K; ka += K_WINO_WBLOCK) {
                    int kb = k_min(K, ka + K_WINO_WBLOCK);
                    if (!one)
                        k_w4_mblock(dy, z, &g, ws, t, t1, K, ka, kb, OH, OW, qb);
                    k_wino_dots(simd, K_W4_NX, C, ca, cb, ka, kb, g.Kf, v, g.vxs, g.vcs, z, g.mxs, g.mks, zero, qb,
                                acc);
                }
            }
            t = t1;
        }
        float *dw = dwpart + (long)ch * K * C * rr;
        long xs = (long)g.Kf * Cp; /* from one xi to the next in acc */
        for (int k = 0; k < K; k++)
            for (int c = c0; c < c1; c++) {
                const float *du = acc + (long)k * Cp + c; /* du[(6 i + j) xs] */
                float tt[6][5];
                for (int j = 0; j < 6; j++) { /* G^T down each column j of dU */
                    if (tr == 3)
                        k_w4_gt(du + j * xs, 6 * xs, tt[j]);
                    else
                        k_w25_gt(du + j * xs, 6 * xs, tt[j]);
                }
                for (int r = 0; r < tr; r++) { /* then along each row r */
                    float col[6], o[5];
                    for (int j = 0; j < 6; j++)
                        col[j] = tt[j][r];
                    if (tr == 3)
                        k_w4_gt(col, 1, o);
                    else
                        k_w25_gt(col, 1, o);
                    for (int s2 = 0; s2 < tr; s2++)
                        dw[((long)k * C + c) * rr + tr * r + s2] = o[s2];
                }
            }
        if (dbpart && u % CS == 0)
            k_wino_db(dy, dbacc, dbpart, ch, n0, n1, K, (long)OH * OW);
    }
}

void k_conv2d_wino4_bwd_w(const float *restrict x, const float *restrict dy, float *restrict dwpart,
                          float *restrict dbpart, float *restrict ws, int N, int C, int H, int W, int K, int pad,
                          int G, int CS, int simd, int lo, int hi)
{
    k_w4_bwd_w(x, dy, dwpart, dbpart, ws, N, C, H, W, K, G, CS, simd, lo, hi, 4, 3, pad);
}

void k_conv2d_wino25_bwd_w(const float *restrict x, const float *restrict dy, float *restrict dwpart,
                           float *restrict dbpart, float *restrict ws, int N, int C, int H, int W, int K, int pad,
                           int G, int CS, int simd, int lo, int hi)
{
    k_w4_bwd_w(x, dy, dwpart, dbpart, ws, N, C, H, W, K, G, CS, simd, lo, hi, 2, 5, pad);
}
