/* What the direct conv kernels share: k_conv.c (the forward, and the GEMM
 * from blocks of output rows that the data gradient reuses), k_conv_bwdx.c
 * (the data gradient) and k_conv_bwdw.c (the weight gradient). Blocks of
 * output rows, the zero-padded input rows and the im2col, and the
 * forward's scratch layout. Static inline, as in k_wino.h: each file gets
 * its own copy, and the JIT inlines every kernel into its calls anyway.
 *
 * A block is a run of whole output rows of the flattened sequence
 * t = image * OH + oh: either several whole images or a fixed slice of one
 * image, so its bounds depend on the shape and the image, never on where a
 * thread's range starts. Per block the input is unfolded (im2col) into
 * col[C*R*S][columns] in the scratch, and the register-tiled micro-kernels
 * of k_tile.h do the arithmetic:
 *   forward  y   = W col            (op tiles, vectors along the pixels)
 *   backward dx  = the forward conv of dy with W flipped and transposed
 *                  when the stride is 1, else col2im(W^T dy)
 *   backward dW  = dy col^T         (dot tiles, summed block by block)
 * Every output is summed in an order fixed by the shape alone. */
#ifndef K_CONV_H
#define K_CONV_H
#include <stddef.h>

#include "k_kernels.h"
#include "k_tile.h"

/* k_pad_rows, k_im2col and k_blk_in stay out of line in the bitcode, as
 * they were when one file held all their callers; the JIT inlines them all
 * the same (jit_kernels.c drops noinline). Inlined by clang into each
 * file's one caller, they changed the vector code the JIT made of 31
 * functions, and a stride-2 3x3 weight gradient ran 3-4% slower (64 -> 128
 * channels at 32x32, four runs). */
#define K_CONV_OUTLINE static __attribute__((noinline, unused))

/* Blocks have at most K_MAX_COLS columns (output pixels). Of the block
 * sizes that pad the least to whole column tiles, the forward GEMM takes the
 * one closest to K_FWD_COLS (its im2col block then stays in L2 while the
 * row tiles of W pass over it; measured on Zen 4), the weight gradient the
 * largest (each block ends in one horizontal reduction per weight). */
enum { K_MAX_COLS = 1024, K_FWD_COLS = 256, K_BWW_COLS = K_MAX_COLS, K_FWD_FLOATS = 1 << 18 };

/* Past K_KC_MIN taps (C*R*S), the forward GEMM from an im2col sums them in
 * chunks of K_KC (k_gemm_out_kc in k_conv.c), for K_MC output channels at
 * a time, its sums kept in a buffer of the block's outputs between chunks:
 * a chunk's strip of the block, K_KC x a tile's columns, then stays in L1
 * while the weights' rows pass over it from L2, and a block may hold
 * K_KC_COLS columns (at most K_KC_FLOATS of im2col) where K_FWD_FLOATS /
 * taps had cut it short: at 2048 channels to 128, two 7x7 images padded to
 * 128 columns, 30% of the GEMM on padding. MWTC_PROFILE=1, the layer networks
 * of bench/layers_vs_torch, 1280 images, 2 threads of the Zen 4, forward
 * per op: 1x1 2048 -> 2048 at 7x7 3.3-3.6 s -> 2.7, 2048 -> 512 0.80 ->
 * 0.69, 3x3 stride 2 256 -> 512 (2304 taps) 0.91-0.95 -> 0.77-0.79, 128
 * -> 256 (1152 taps) level; the larger blocks alone 5% slower at 2048 ->
 * 2048, K_MC = 128 or K_KC = 256 2-4%. */
enum { K_KC_MIN = 1024, K_KC = 128, K_MC = 512, K_KC_COLS = 512, K_KC_FLOATS = 1 << 20 };

/* Output rows per block for columns padded to a multiple of align, at most
 * maxcols of them: whole images (a multiple of OH) when two or more fit,
 * else a slice of one image. */
static inline int k_blk_rows(int OH, int OW, int prefer, int align, int maxcols)
{
    long P = (long)OH * OW;
    int best = 1;
    double bestw = 1e30, bestd = 1e30;
    int whole = 2 * P <= maxcols;
    for (int n = 1; whole ? n * P <= maxcols : n <= OH && (long)n * OW <= maxcols; n++) {
        long cols = 0, size = whole ? n * P : (long)n * OW;
        if (whole)
            cols = k_rup(size, align);
        else
            for (int r = 0; r < OH; r += n)
                cols += k_rup((long)k_min(n, OH - r) * OW, align);
        double w = (double)cols / (double)(whole ? size : P), d = size > prefer ? size - prefer : prefer - size;
        /* padding within half a percent counts as a tie */
        if (w < bestw - 0.005 || (w <= bestw + 0.005 && d < bestd))
            bestw = w < bestw ? w : bestw, bestd = d, best = whole ? n * OH : n;
    }
    return best;
}

/* Rows in the block that starts at flattened row t, for images before n1. */
static inline int k_blk_next(long t, int n1, int OH, int T)
{
    if (T >= OH)
        return k_min(T / OH, n1 - (int)(t / OH)) * OH;
    return k_min(T, OH - (int)(t % OH));
}

/* The zero-padded copy of the input rows one run of at most T output rows
 * reads: with ph = 1 (the im2col's, k_pad_rows) the padded rows themselves,
 * with ph = stride (k_conv_rows', k_pad_phases) split into the stride x
 * stride phases, plane (a, b) of channel c holding the padded input's rows
 * a, a + stride, ... and in them the columns b, b + stride, ... Tap (r, s)
 * of output row t, column ow reads plane (r % ph, s % ph) at row t q +
 * r / ph, column ow q + s / ph (q = stride / ph): in phases a strided conv
 * reads its rows as a stride-1 conv does, whole vectors at unit stride. HP
 * rows of WP floats a plane, ph * ph planes a channel. */
static inline int k_pad_h(int T, int OH, int R, int stride, int ph)
{
    return (k_min(T, OH) - 1) * (stride / ph) + (R - 1) / ph + 1;
}
static inline int k_pad_w(int W, int S, int stride, int pad, int OW, int ph)
{
    return k_max((W + 2 * pad + ph - 1) / ph, (OW - 1) * (stride / ph) + (S - 1) / ph + 1);
}

/* Where tap (c, r, s) starts in the padded planes of k_pad_rows. */
static inline int k_pad_tap(int c, int r, int s, int ph, int HP, int WP)
{
    return (((c * ph + r % ph) * ph + s % ph) * HP + r / ph) * WP + s / ph;
}

/* xp[c][i][j] = x[n][c][oh*stride - padh + i][j - padw], 0 outside x: the
 * padded rows themselves (ph = 1). */
K_CONV_OUTLINE void k_pad_rows(const float *restrict x, float *restrict xp, long n, int oh, int HP, int WP, int C,
                               int ca, int cb, int H, int W, int stride, int padh, int padw)
{
    for (int c = ca; c < cb; c++)
        for (int i = 0; i < HP; i++) {
            float *d = xp + ((long)c * HP + i) * WP;
            int ih = oh * stride - padh + i;
            if (ih < 0 || ih >= H) {
                for (int j = 0; j < WP; j++)
                    d[j] = 0.0f;
                continue;
            }
            const float *src = x + ((n * C + c) * H + ih) * (long)W;
            for (int j = 0; j < padw; j++)
                d[j] = 0.0f;
            for (int j = 0; j < W; j++) /* a copy of constant length */
                d[padw + j] = src[j];
            for (int j = padw + W; j < WP; j++)
                d[j] = 0.0f;
        }
}

/* col[(c*R + r)*S + s][j] for the nrows output rows from flattened row t0,
 * j = (t - t0)*OW + ow: the input pixel that weight meets (0 in the
 * padding), then zeros up to column qb. Each run goes through a padded copy
 * in xp first, so that every row of col is an unconditional copy of
 * constant length, which vectorizes. (From the phases instead, the copies
 * at unit stride, the weight gradient of stride-2 3x3 convs took 5-10%
 * longer, its copy into the phases reading every other float.) */
K_CONV_OUTLINE void k_im2col(const float *restrict x, float *restrict col, long ld, float *restrict xp, long t0,
                             int nrows, int qb, int T, int C, int ca, int cb, int H, int W, int R, int S, int stride,
                             int padh, int padw, int OH, int OW)
{
    int HP = k_pad_h(T, OH, R, stride, 1), WP = k_pad_w(W, S, stride, padw, OW, 1);
    for (long u = t0, n; u < t0 + nrows;) {
        int oh, rows = k_blk_run(u, t0 + nrows, OH, &n, &oh);
        k_pad_rows(x, xp, n, oh, HP, WP, C, ca, cb, H, W, stride, padh, padw);
        for (int c = ca; c < cb; c++)
            for (int r = 0; r < R; r++)
                for (int s = 0; s < S; s++) {
                    float *d = col + ((long)(c * R + r) * S + s) * ld + (u - t0) * OW;
                    for (int t = 0; t < rows; t++) {
                        const float *src = xp + k_pad_tap(c, r, s, 1, HP, WP) + (long)t * stride * WP;
                        for (int ow = 0; ow < OW; ow++)
                            d[(long)t * OW + ow] = src[ow * stride];
                    }
                }
        u += rows;
    }
    for (long kd = (long)ca * R * S; kd < (long)cb * R * S; kd++)
        for (int j = nrows * OW; j < qb; j++)
            col[kd * ld + j] = 0.0f;
}

/* buf[k][j] = the block's rows of the [N][K][OH*OW] tensor y, zeros up to column qb. */
K_CONV_OUTLINE void k_blk_in(const float *restrict y, float *restrict buf, long ld, long t0, int nrows, int qb, int K,
                             int OH, int OW)
{
    for (long u = t0, n; u < t0 + nrows;) {
        int oh, rows = k_blk_run(u, t0 + nrows, OH, &n, &oh);
        for (int k = 0; k < K; k++) {
            const float *yr = y + ((n * K + k) * OH + oh) * (long)OW;
            float *br = buf + k * ld + (u - t0) * OW;
            for (int j = 0; j < rows * OW; j++)
                br[j] = yr[j];
        }
        u += rows;
    }
    for (int k = 0; k < K; k++)
        for (int j = nrows * OW; j < qb; j++)
            buf[k * ld + j] = 0.0f;
}

/* Scratch regions start on whole cache lines. */
static inline long k_al(long n) { return k_rup(n, 16); }

/* Whether k_conv_gemm runs its GEMM straight from the padded input rows
 * (k_conv_rows) rather than from an im2col of them. With stride 1, tap
 * (c, r, s) of output row oh, columns [ow0, ow0 + lanes), is padded row
 * oh + r of channel c from column ow0 + s on: a row of B in place. The
 * im2col it saves cost ~30% of a 5x5 conv's forward and data gradient at
 * 14x14 and 28x28 (bench_kernels, BENCH_R=5). Its tiles run along one
 * output row, the last one of a row as many whole vectors as cover what
 * is left (their lanes past the row computed, not stored): taken where
 * that wastes at most a quarter of the lanes (rows of 12 floats or more).
 * With 16-float vectors only: AVX2's 4x24 tile leaves a row of 28 a last
 * tile of one vector (4x8: 5 loads per 4 FMAs), and with 8-float tiles
 * (bench_kernels 8 on the Sapphire Rapids) the rows were 10-40% slower
 * than the im2col at 28x28 and 7x7, no faster at 14x14. Rows of 12 to 16
 * run two a tile (k_op_rows2_8x32), where one a tile had left half the
 * 8x32 tile's accumulators idle: 1x1 convs 1.2-1.7x as fast on 16x16
 * planes (1.1x on 14x14 in one sitting, even in another), forward and data
 * gradient. With a stride, the rows are read from the input's phases
 * (k_pad_phases), on rows of 16 only (one a tile, the stride-2 3x3 forward
 * was 30-60% slower than the im2col; two a tile on rows of 14, 15%
 * slower), and only where B's strip of two rows a tap, C*R*S x 128 bytes,
 * stays in L1 (up to 320 taps, 40 KB; MWTC_PROFILE=1, the layer networks
 * of bench/layers_vs_torch, batch 128 on 2 threads of the Sapphire Rapids,
 * forward per op: 7x7 stem 3 -> 64 0.019 -> 0.015 s, 1x1 64 -> 128 0.025
 * -> 0.021, 3x3 16 -> 64 0.021 -> 0.019, 32 -> 64 0.093 -> 0.079, 32 ->
 * 128 0.075 -> 0.068; past it slower: 3x3 48 -> 128, 432 taps, 0.106 ->
 * 0.111, 64 -> 128, 576 taps, 0.281 -> 0.321, 1x1 512 -> 256 0.47 ->
 * 0.52-0.61). */
static inline int k_rows_ok(int stride, int OW, long taps, int simd)
{
    if (simd < 16 || 4L * OW < 3 * k_rup(OW, 16))
        return 0;
    return stride == 1 || (OW == 16 && taps <= 320);
}

/* The scratch of k_conv_gemm, after the packed A: col (none from the rows),
 * the padded input rows (WP floats each, HP per channel), the rows' offsets
 * (k_conv_rows: an int per tap), the block's sums between chunks of taps
 * (k_gemm_out_kc), a tile. */
typedef struct {
    int T, rows, ph, HP, WP, kc;
    long ld, col, xp, boff, cc, cb, end;
} KGemmWs;

static inline KGemmWs k_gemm_ws(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd)
{
    KGemmWs g;
    long Kd = (long)C * R * S;
    /* an im2col block of at most K_FWD_FLOATS, which stays in L2 while the
     * row tiles of A pass: whole 7x7 images for 5x5 over 128 channels made
     * 8 MB (summed by chunks, K_KC_FLOATS) */
    g.rows = k_rows_ok(stride, OW, Kd, simd);
    g.kc = !g.rows && Kd > K_KC_MIN ? K_KC : 0;
    g.T = k_blk_rows(OH, OW, K_FWD_COLS, k_op_nr(simd),
                     (int)(g.kc ? k_min(K_KC_COLS, k_max(64, K_KC_FLOATS / Kd))
                                : k_min(K_MAX_COLS, k_max(64, K_FWD_FLOATS / Kd))));
    g.ld = k_rup((long)g.T * OW, k_op_nr(simd));
    g.ph = g.rows ? stride : 1;
    g.HP = k_pad_h(g.T, OH, R, stride, g.ph);
    g.WP = k_pad_w(W, S, stride, pad, OW, g.ph);
    if (g.rows)   /* the last tile's lanes past the row read zeros */
        g.WP = k_max(g.WP, (int)k_rup(OW, 16) + (S - 1) / stride);
    g.col = 0;
    g.xp = g.rows ? 0 : k_al(Kd * g.ld);
    g.boff = g.xp + k_al((long)C * g.ph * g.ph * g.HP * g.WP);
    g.cc = g.boff + (g.rows ? k_al(Kd) : 0);
    g.cb = g.cc + (g.kc ? k_al(k_rup(K, k_op_mr(simd)) * g.ld) : 0);
    g.end = g.cb + k_op_mr(simd) * k_op_nr(simd);
    (void)H;
    return g;
}

/* y = A col(x) + bias for the flattened output rows [r0, r1) (row t is
 * image t / OH, row t % OH), A packed by k_op_pack with M = K rows and C*R*S
 * columns; y has Ky channels (K of them computed, from where y points).
 * Every output is the same tile's sum over C*R*S in the same order wherever
 * its block starts, so how the rows are split never changes a bit. pad
 * applies to both sides of both axes; padw differs from padh only for the
 * transposed convolution. In k_conv.c. */
void k_conv_gemm(const float *restrict x, const float *restrict apack, const float *restrict bias, float *restrict y,
                 float *restrict ws, int C, int H, int W, int K, int Ky, int R, int S, int stride, int padh, int padw,
                 int OH, int OW, int simd, long r0, long r1, int relu);

/* The scratch k_conv2d_bwd_x (k_conv_bwdx.c) and k_conv2d_bwd_w
 * (k_conv_bwdw.c) need, for k_conv2d_ws. */
long k_conv_bwdx_ws(int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd);
long k_conv_bwdw_ws(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd);
#endif
