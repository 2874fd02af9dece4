/* Convolution as GEMM over blocks of output rows.
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
#include <stddef.h>

#include "k_kernels.h"
#include "k_tile.h"

/* Blocks have at most K_MAX_COLS columns (output pixels). Of the block
 * sizes that pad the least to whole column tiles, the forward GEMM takes the
 * one closest to K_FWD_COLS (its im2col block then stays in L2 while the
 * row tiles of W pass over it; measured on Zen 4), the weight gradient the
 * largest (each block ends in one horizontal reduction per weight). */
enum { K_MAX_COLS = 1024, K_FWD_COLS = 256, K_BWW_COLS = K_MAX_COLS, K_FWD_FLOATS = 1 << 18 };

/* Output rows per block for columns padded to a multiple of align, at most
 * maxcols of them: whole images (a multiple of OH) when two or more fit,
 * else a slice of one image. */
static int k_blk_rows(int OH, int OW, int prefer, int align, int maxcols)
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
static int k_blk_next(long t, int n1, int OH, int T)
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
static int k_pad_h(int T, int OH, int R, int stride, int ph)
{
    return (k_min(T, OH) - 1) * (stride / ph) + (R - 1) / ph + 1;
}
static int k_pad_w(int W, int S, int stride, int pad, int OW, int ph)
{
    return k_max((W + 2 * pad + ph - 1) / ph, (OW - 1) * (stride / ph) + (S - 1) / ph + 1);
}

/* Where tap (c, r, s) starts in the padded planes of k_pad_rows. */
static int k_pad_tap(int c, int r, int s, int ph, int HP, int WP)
{
    return (((c * ph + r % ph) * ph + s % ph) * HP + r / ph) * WP + s / ph;
}

/* xp[c][i][j] = x[n][c][oh*stride - padh + i][j - padw], 0 outside x: the
 * padded rows themselves (ph = 1). */
static void k_pad_rows(const float *restrict x, float *restrict xp, long n, int oh, int HP, int WP, int C, int ca,
                       int cb, int H, int W, int stride, int padh, int padw)
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

/* xp[c][a][b][i][j] = x[n][c][(oh + i)*stride + a - padh][j*stride + b - padw],
 * 0 outside x (ph = stride), for the phases an R x S kernel reads (a < R,
 * b < S: a 1x1 kernel at stride 2 reads one of the four); k_pad_rows at
 * stride 1. A function of its own: the weight gradient's im2col slowed by
 * 18% (stride-2 3x3, 32 -> 64 channels) when one function did both. */
static void k_pad_phases(const float *restrict x, float *restrict xp, long n, int oh, int HP, int WP, int C, int ca,
                         int cb, int H, int W, int R, int S, int stride, int padh, int padw)
{
    long plane = (long)HP * WP;
    int na = k_min(R, stride), nb = k_min(S, stride);
    if (stride == 1) {
        k_pad_rows(x, xp, n, oh, HP, WP, C, ca, cb, H, W, 1, padh, padw);
        return;
    }
    for (int c = ca; c < cb; c++)
        for (int a = 0; a < na; a++)
            for (int i = 0; i < HP; i++) {
                float *d0 = xp + (long)(c * stride + a) * stride * plane + (long)i * WP;
                int ih = (oh + i) * stride + a - padh;
                if (ih < 0 || ih >= H) {
                    for (int b = 0; b < nb; b++)
                        for (int j = 0; j < WP; j++)
                            d0[b * plane + j] = 0.0f;
                    continue;
                }
                const float *src = x + ((n * C + c) * H + ih) * (long)W;
                for (int b = 0; b < nb; b++) {
                    /* the columns j whose input column j*stride + b - padw lies in [0, W) */
                    float *d = d0 + b * plane;
                    int ja = k_min(WP, (k_max(0, padw - b) + stride - 1) / stride);
                    int jb = k_min(WP, k_max(ja, (W + padw - b + stride - 1) / stride));
                    const float *sb = src + b - padw;
                    for (int j = 0; j < ja; j++)
                        d[j] = 0.0f;
                    for (int j = ja; j < jb; j++)
                        d[j] = sb[(long)j * stride];
                    for (int j = jb; j < WP; j++)
                        d[j] = 0.0f;
                }
            }
}

/* The input rows the block at flattened row t reads, per channel: a
 * contiguous range of bytes. The kernels ask for them in pieces while the
 * block before computes: rows of a few hundred bytes in many channels are a
 * pattern the hardware prefetcher picks up too late. */
typedef struct {
    const char *p;
    long cstride, bytes;
    int C;
} KPrefetch;

static KPrefetch k_prefetch_at(const float *x, long t, long end, int T, int C, int H, int W, int R, int stride,
                               int padh, int OH)
{
    KPrefetch pf = { 0, 0, 0, 0 };
    if (t >= end)
        return pf;
    long n = t / OH;
    int oh = (int)(t - n * OH), rows = k_min(T, OH - oh);
    int ih0 = k_max(0, oh * stride - padh), ih1 = k_min(H, (oh + rows - 1) * stride - padh + R);
    pf.p = (const char *)(x + ((n * C) * H + ih0) * (long)W);
    pf.cstride = (long)H * W * 4;
    pf.bytes = (long)k_max(0, ih1 - ih0) * W * 4;
    pf.C = C;
    return pf;
}

/* Piece i of n. */
static void k_prefetch_part(const KPrefetch *pf, int i, int n)
{
    for (long c = (long)pf->C * i / n; c < (long)pf->C * (i + 1) / n; c++)
        for (long b = 0; b < pf->bytes; b += 64)
            __builtin_prefetch(pf->p + c * pf->cstride + b);
}

/* col[(c*R + r)*S + s][j] for the nrows output rows from flattened row t0,
 * j = (t - t0)*OW + ow: the input pixel that weight meets (0 in the
 * padding), then zeros up to column qb. Each run goes through a padded copy
 * in xp first, so that every row of col is an unconditional copy of
 * constant length, which vectorizes. (From the phases instead, the copies
 * at unit stride, the weight gradient of stride-2 3x3 convs took 5-10%
 * longer, its copy into the phases reading every other float.) */
static void k_im2col(const float *restrict x, float *restrict col, long ld, float *restrict xp, long t0, int nrows,
                     int qb, int T, int C, int ca, int cb, int H, int W, int R, int S, int stride, int padh, int padw,
                     int OH, int OW)
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

/* The output columns [owa, owb) whose input column ow*stride + s - pad lies inside [0, W). */
static void k_valid_cols(int W, int OW, int s, int stride, int pad, int *owa, int *owb)
{
    int a = pad > s ? (pad - s + stride - 1) / stride : 0;
    int b = W + pad - s > 0 ? (W + pad - s + stride - 1) / stride : 0;
    *owa = k_min(a, OW);
    *owb = k_max(*owa, k_min(b, OW));
}

/* dx[pixel] += dcol[(c*R + r)*S + s][j], the transpose of k_im2col. */
static void k_col2im(const float *restrict dcol, long ld, long t0, int nrows, float *restrict dx, int C, int H, int W,
                     int R, int S, int stride, int pad, int OH, int OW)
{
    for (int c = 0; c < C; c++)
        for (int r = 0; r < R; r++)
            for (int s = 0; s < S; s++) {
                const float *d = dcol + ((long)(c * R + r) * S + s) * ld;
                int owa, owb;
                k_valid_cols(W, OW, s, stride, pad, &owa, &owb);
                for (int t = 0; t < nrows; t++, d += OW) {
                    long img = (t0 + t) / OH;
                    int ih = (int)(t0 + t - img * OH) * stride + r - pad;
                    if (ih < 0 || ih >= H)
                        continue;
                    float *xr = dx + ((img * C + c) * H + ih) * (long)W;
                    for (int ow = owa; ow < owb; ow++)
                        xr[ow * stride + s - pad] += d[ow];
                }
            }
}

/* buf[k][j] = the block's rows of the [N][K][OH*OW] tensor y, zeros up to column qb. */
static void k_blk_in(const float *restrict y, float *restrict buf, long ld, long t0, int nrows, int qb, int K, int OH,
                     int OW)
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

/* The bias of the tile of output channels from m0 (mr of them): bias + m0,
 * or those past K zeros in bpad; NULL without a bias. */
static const float *k_tile_bias(const float *restrict bias, int m0, int mr, int K, float *restrict bpad)
{
    if (!bias || m0 + mr <= K)
        return bias ? bias + m0 : NULL;
    for (int i = 0; i < mr; i++)
        bpad[i] = m0 + i < K ? bias[m0 + i] : 0.0f;
    return bpad;
}

/* y = the packed A times the block's col, plus bias. A column tile whose
 * pixels are consecutive in one image (the common case) is stored straight
 * into y; the others, and the last rows when K is not a multiple of the
 * tile's, go through tmp, with the same arithmetic. */
static void k_gemm_out(int simd, int K, int Ky, int Kd, const float *restrict apack, const float *restrict col,
                       long ld, long t0, int nrows, int qb, float *restrict y, const float *restrict bias,
                       float *restrict tmp, int OH, int OW, const KPrefetch *pf)
{
    int mr = k_op_mr(simd), nr = k_op_nr(simd), q = nrows * OW;
    long P = (long)OH * OW;
    float bpad[16];
    for (int q0 = 0; q0 < qb; q0 += nr) {
        k_prefetch_part(pf, q0 / nr, qb / nr);
        long u = t0 + q0 / OW, n = u / OH, p = (u - n * OH) * OW + q0 % OW;
        int direct = q0 + nr <= q && p + nr <= P;
        for (int m0 = 0; m0 < K; m0 += mr) {
            const float *bm = k_tile_bias(bias, m0, mr, K, bpad);
            if (direct && m0 + mr <= K) {
                k_op(simd, Kd, apack + (long)m0 * Kd, col + q0, ld, bm, y + (n * Ky + m0) * P + p, P);
                continue;
            }
            k_op(simd, Kd, apack + (long)m0 * Kd, col + q0, ld, bm, tmp, nr);
            /* by runs of columns inside one image */
            for (int j = 0, len; j < nr && q0 + j < q; j += len) {
                long uj = t0 + (q0 + j) / OW, nj = uj / OH, pj = (uj - nj * OH) * OW + (q0 + j) % OW;
                len = (int)(P - pj < nr - j ? P - pj : nr - j);
                len = k_min(len, q - q0 - j);
                for (int i = 0; i < mr && m0 + i < K; i++)
                    for (int l = 0; l < len; l++)
                        y[(nj * Ky + m0 + i) * P + pj + l] = tmp[i * nr + j + l];
            }
        }
    }
}

/* Scratch regions start on whole cache lines. */
static long k_al(long n) { return k_rup(n, 16); }

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
static int k_rows_ok(int stride, int OW, long taps, int simd)
{
    if (simd < 16 || 4L * OW < 3 * k_rup(OW, 16))
        return 0;
    return stride == 1 || (OW == 16 && taps <= 320);
}

int k_conv_rows_ok(int C, int R, int S, int stride, int OW, int simd)
{
    return k_rows_ok(stride, OW, (long)C * R * S, simd);
}

/* The scratch of k_conv_gemm, after the packed A: col (none from the rows),
 * the padded input rows (WP floats each, HP per channel), the rows' offsets
 * (k_conv_rows: an int per tap), a tile. */
typedef struct {
    int T, rows, ph, HP, WP;
    long ld, col, xp, boff, cb, end;
} KGemmWs;

static KGemmWs k_gemm_ws(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd)
{
    KGemmWs g;
    long Kd = (long)C * R * S;
    /* an im2col block of at most K_FWD_FLOATS, which stays in L2 while the
     * row tiles of A pass: whole 7x7 images for 5x5 over 128 channels made
     * 8 MB */
    g.T = k_blk_rows(OH, OW, K_FWD_COLS, k_op_nr(simd), (int)k_min(K_MAX_COLS, k_max(64, K_FWD_FLOATS / Kd)));
    g.ld = k_rup((long)g.T * OW, k_op_nr(simd));
    g.rows = k_rows_ok(stride, OW, Kd, simd);
    g.ph = g.rows ? stride : 1;
    g.HP = k_pad_h(g.T, OH, R, stride, g.ph);
    g.WP = k_pad_w(W, S, stride, pad, OW, g.ph);
    if (g.rows)   /* the last tile's lanes past the row read zeros */
        g.WP = k_max(g.WP, (int)k_rup(OW, 16) + (S - 1) / stride);
    g.col = 0;
    g.xp = g.rows ? 0 : k_al(Kd * g.ld);
    g.boff = g.xp + k_al((long)C * g.ph * g.ph * g.HP * g.WP);
    g.cb = g.boff + (g.rows ? k_al(Kd) : 0);
    g.end = g.cb + k_op_mr(simd) * k_op_nr(simd);
    (void)H, (void)K;
    return g;
}

/* The next block from flattened output row t, before row end: whole
 * images while a block holds several, else up to T rows of one image. */
static int k_blk_next_rows(long t, long end, int OH, int T)
{
    if (T >= OH && t % OH == 0 && end - t >= OH)
        return (int)(k_min(T / OH, (int)((end - t) / OH)) * OH);
    return (int)(k_min(k_min(T, OH - (int)(t % OH)), (int)(end - t)));
}

/* y = A col(x) + bias for the flattened output rows [r0, r1) (row t is
 * image t / OH, row t % OH), A packed by k_op_pack with M = K rows and C*R*S
 * columns; y has Ky channels (K of them computed, from where y points). Every output is the same tile's sum over C*R*S in the same
 * order wherever its block starts, so how the rows are split never changes
 * a bit. pad applies to both sides of both axes; padw differs from padh only
 * for the transposed convolution. */
/* relu over a block's outputs, while they are still in cache. */
static void k_blk_relu(float *restrict y, long t0, int nrows, int K, int Ky, int OH, int OW)
{
    for (long u = t0, n; u < t0 + nrows;) {
        int oh, rows = k_blk_run(u, t0 + nrows, OH, &n, &oh);
        for (int k = 0; k < K; k++) {
            float *yr = y + ((n * Ky + k) * OH + oh) * (long)OW;
            for (int j = 0; j < rows * OW; j++)
                yr[j] = yr[j] > 0.0f ? yr[j] : 0.0f;
        }
        u += rows;
    }
}

/* k_conv_gemm from the padded input rows (k_rows_ok): runs of at most T
 * rows of one image, each padded once; per output row, tiles of whole
 * vectors along it, every tile of output channels over each before the
 * next. Each output is k_op's sum over the same C*R*S terms in the same
 * order as from an im2col: the same bits. */
static void k_conv_rows(const float *restrict x, const float *restrict apack, const float *restrict bias,
                        float *restrict y, float *restrict ws, const KGemmWs *g, int C, int H, int W, int K, int Ky,
                        int R, int S, int stride, int padh, int padw, int OH, int OW, int simd, long r0, long r1,
                        int relu)
{
    int Kd = C * R * S, mr = k_op_mr(simd), nr = k_op_nr(simd), v = 16, nvmax = nr / v;   /* simd 16: k_rows_ok */
    long P = (long)OH * OW;
    int *boff = (int *)(ws + g->boff);
    float *xp = ws + g->xp, *tmp = ws + g->cb, bpad[16];
    for (int c = 0; c < C; c++)
        for (int r = 0; r < R; r++)
            for (int s = 0; s < S; s++)
                boff[(c * R + r) * S + s] = k_pad_tap(c, r, s, stride, g->HP, g->WP);
    for (long u = r0, n; u < r1;) {
        int oh, rows = k_min(k_blk_run(u, r1, OH, &n, &oh), k_min(g->T, OH));
        k_pad_phases(x, xp, n, oh, g->HP, g->WP, C, 0, C, H, W, R, S, stride, padh, padw);
        int t = 0;
        /* rows of 16 or fewer: two a tile (k_op_rows2_8x32); the second
         * row's lanes past its end land in the row after it, where this
         * call writes that row next, else they go through tmp */
        for (; OW <= 16 && t + 1 < rows; t += 2) {
            int spill = OW == 16 || (u + t + 2 < r1 && oh + t + 2 < OH);
            for (int m0 = 0; m0 < K; m0 += mr) {
                const float *bm = k_tile_bias(bias, m0, mr, K, bpad);
                const float *a = apack + (long)m0 * Kd, *b = xp + (long)t * g->WP;
                float *yt = y + n * Ky * P + (long)(oh + t) * OW;
                if (m0 + mr <= K && spill) {
                    k_op_rows2_8x32(Kd, a, b, boff, g->WP, bm, yt + m0 * P, P, OW);
                    continue;
                }
                k_op_rows2_8x32(Kd, a, b, boff, g->WP, bm, tmp, nr, 16);
                for (int i = 0; i < mr && m0 + i < K; i++)
                    for (int j = 0; j < 2 * OW; j++)
                        yt[(m0 + i) * P + j] = tmp[i * nr + j / OW * 16 + j % OW];
            }
        }
        for (; t < rows; t++) {
            float *yt = y + n * Ky * P + (long)(oh + t) * OW;
            /* A row's last tile may store its lanes past the row into the
             * next row's first columns when that row is this call's and
             * comes next (its tiles then write them); else through tmp. */
            int spill = u + t + 1 < r1 && oh + t + 1 < OH;
            for (int ow0 = 0; ow0 < OW;) {
                int rem = OW - ow0, nv = k_min(nvmax, (rem + v - 1) / v), lanes = nv * v;
                for (int m0 = 0; m0 < K; m0 += mr) {
                    const float *bm = k_tile_bias(bias, m0, mr, K, bpad);
                    const float *a = apack + (long)m0 * Kd, *b = xp + (long)t * g->WP + ow0;
                    if (m0 + mr <= K && (lanes <= rem || spill)) {
                        k_op_rows(nv, Kd, a, b, boff, bm, yt + m0 * P + ow0, P);
                        continue;
                    }
                    k_op_rows(nv, Kd, a, b, boff, bm, tmp, nr);
                    for (int i = 0; i < mr && m0 + i < K; i++)
                        for (int j = 0; j < k_min(lanes, rem); j++)
                            yt[(m0 + i) * P + ow0 + j] = tmp[i * nr + j];
                }
                ow0 += lanes;
            }
        }
        if (relu)
            k_blk_relu(y, u, rows, K, Ky, OH, OW);
        u += rows;
    }
}

static void k_conv_gemm(const float *restrict x, const float *restrict apack, const float *restrict bias,
                        float *restrict y, float *restrict ws, int C, int H, int W, int K, int Ky, int R, int S,
                        int stride, int padh, int padw, int OH, int OW, int simd, long r0, long r1, int relu)
{
    KGemmWs g = k_gemm_ws(C, H, W, K, R, S, stride, padw, OH, OW, simd);
    int Kd = C * R * S, nr = k_op_nr(simd);
    if (g.rows) {
        k_conv_rows(x, apack, bias, y, ws, &g, C, H, W, K, Ky, R, S, stride, padh, padw, OH, OW, simd, r0, r1, relu);
        return;
    }
    for (long t = r0; t < r1;) {
        int nrows = k_blk_next_rows(t, r1, OH, g.T), qb = (int)k_rup((long)nrows * OW, nr);
        k_im2col(x, ws + g.col, g.ld, ws + g.xp, t, nrows, qb, g.T, C, 0, C, H, W, R, S, stride, padh, padw, OH, OW);
        KPrefetch pf = k_prefetch_at(x, t + nrows, r1, g.T, C, H, W, R, stride, padh, OH);
        k_gemm_out(simd, K, Ky, Kd, apack, ws + g.col, g.ld, t, nrows, qb, y, bias, ws + g.cb, OH, OW, &pf);
        if (relu)
            k_blk_relu(y, t, nrows, K, Ky, OH, OW);
        t += nrows;
    }
}

/* With stride 1 and pad < R, S, dx is the forward conv of dy (K channels,
 * OH x OW) with w[k][c] rotated by 180 degrees and padding R-1-pad, S-1-pad:
 * an im2col of dy instead of a scatter-add into dx. Chosen unless C is so
 * small that rounding it up to the tile's rows wastes more than the
 * scatter-add costs (the first layer: C = 1 or 3). */
static int k_bwdx_as_conv(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd)
{
    if (!(stride == 1 && pad < R && pad < S && OH == H + 2 * pad - R + 1 && OW == W + 2 * pad - S + 1))
        return 0;
    long mr = k_op_mr(simd), RS = (long)R * S;
    long as_conv = k_rup(C, mr) * K * RS + 2 * K * RS, scatter = k_rup(C * RS, mr) * K + 4 * C * RS;
    return as_conv <= scatter;
}

/* With stride s >= 2, dx splits into s x s phases (rows s i + a, columns
 * s j + b), and each is a stride-1 conv of dy: row a meets the taps r = r0
 * + s t, r0 = (a + pad) mod s, from dy's row i + (a + pad) / s - t. So
 * phase (a, b) is the forward conv of dy with those taps flipped (Ra x Sb
 * of them) at padding Ra - 1 - (a + pad) / s, into ceil((H - a) / s) rows:
 * the same multiplies as the scatter-add's GEMM, without its col2im, which
 * wrote dx R*S times through strided stores (64 -> 128 channels, 3x3
 * stride 2, 16x16 outputs: the data gradient 1.3x the forward's time; 5x5
 * at 7x7 outputs 1.65x). One axis of a phase: */
typedef struct {
    int r0, R, pad, O; /* first tap, taps, padding of dy, outputs */
} KPhx;

static KPhx k_phx(int a, int R, int s, int pad, int H)
{
    KPhx p;
    p.r0 = (a + pad) % s;
    p.R = p.r0 < R ? (R - p.r0 + s - 1) / s : 0;
    p.pad = p.R - 1 - (a + pad) / s;
    p.O = H > a ? (H - a + s - 1) / s : 0;
    return p;
}

/* Taken with stride 2 or more where no phase reads dy from past its first
 * row or column, where the phases' multiplies (their planes cover dx, so
 * some meet dy's zero border: 1.31x the conv's for 3x3 at padding 0 on
 * even planes, where they were 7-18% slower) are at most 1.15x the conv's,
 * and for up to 256 channels of dy: the scatter-add's GEMM sums over them,
 * and with 512 (256 -> 512 at 14x14) its own sums made the col2im cheap
 * enough that the phases were 13-25% slower (and 6-30% faster from 256
 * down). With the as-conv path's measure of C's rounding to whole tiles
 * (the first layer's 3 channels). */
int k_bwdx_phases_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd)
{
    if (stride < 2 || K > 256)
        return 0;
    long mr = k_op_mr(simd), RS = (long)R * S, rows = 0, cols = 0;
    for (int a = 0; a < stride; a++) {
        KPhx pr = k_phx(a, R, stride, pad, H), ps = k_phx(a, S, stride, pad, W);
        if ((pr.R && pr.pad < 0) || (ps.R && ps.pad < 0))
            return 0;
        rows += (long)pr.O * pr.R, cols += (long)ps.O * ps.R;
    }
    if (100 * rows * cols > 115L * OH * R * OW * S)
        return 0;
    return k_rup(C, mr) * K * RS + 2 * K * RS <= k_rup(C * RS, mr) * K + 4 * C * RS;
}

enum { K_PHX_FLOATS = 1 << 17 }; /* a group's phases of dx: ~512 KB */

/* Images per group: whole images' phases in K_PHX_FLOATS, fixed by the
 * shape. */
static int k_phx_group(int N, int C, int H, int W)
{
    long g = K_PHX_FLOATS / ((long)C * H * W);
    return (int)k_max(1, k_min(N, g));
}

/* The phases' scratch: each phase's packed taps, then a group's phases
 * (phase p's g x C x Oa x Ob floats after phase p - 1's), then
 * k_conv_gemm's. */
static long k_phx_ws(int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd,
                     long *bufs, long *gws)
{
    long mr = k_op_mr(simd), pack = 0, g = 0;
    for (int a = 0; a < stride; a++)
        for (int b = 0; b < stride; b++) {
            KPhx pr = k_phx(a, R, stride, pad, H), ps = k_phx(b, S, stride, pad, W);
            pack += k_al(k_rup(C, mr) * K * pr.R * ps.R);
            if (pr.R && ps.R && pr.O && ps.O) {
                long e = k_gemm_ws(K, OH, OW, C, pr.R, ps.R, 1, ps.pad, pr.O, ps.O, simd).end;
                g = g > e ? g : e;
            }
        }
    *bufs = pack;
    *gws = pack + k_al((long)k_phx_group(N, C, H, W) * C * H * W);
    return *gws + g;
}

/* dx for images [lo, hi) by phases (k_bwdx_phases_ok). */
static void k_bwdx_phases(const float *restrict dy, const float *restrict w, float *restrict dx, float *restrict ws,
                          int N, int C, int H, int W, int K, int R, int S, int s, int pad, int OH, int OW, int simd,
                          int lo, int hi)
{
    int mr = k_op_mr(simd), RS = R * S, G = k_phx_group(N, C, H, W);
    long bufs, gws;
    k_phx_ws(N, C, H, W, K, R, S, s, pad, OH, OW, simd, &bufs, &gws);
    /* A_ab[c][(k*Ra + t)*Sb + u] = w[k][c][r0 + s (Ra-1-t)][q0 + s (Sb-1-u)], packed as k_op_pack does */
    float *d = ws;
    for (int a = 0; a < s; a++)
        for (int b = 0; b < s; b++) {
            KPhx pr = k_phx(a, R, s, pad, H), ps = k_phx(b, S, s, pad, W);
            float *d0 = d;
            for (int c0 = 0; c0 < C; c0 += mr)
                for (int k = 0; k < K; k++)
                    for (int t = 0; t < pr.R; t++)
                        for (int u = 0; u < ps.R; u++) {
                            long tap = (long)(pr.r0 + s * (pr.R - 1 - t)) * S + ps.r0 + s * (ps.R - 1 - u);
                            for (int i = 0; i < mr; i++)
                                *d++ = c0 + i < C ? w[((long)k * C + c0 + i) * RS + tap] : 0.0f;
                        }
            d = d0 + k_al(k_rup(C, mr) * K * pr.R * ps.R);
        }
    for (int n0 = lo; n0 < hi; n0 += G) {
        int g = k_min(G, hi - n0);
        const float *apack = ws;
        float *buf = ws + bufs;
        for (int a = 0; a < s; a++)
            for (int b = 0; b < s; b++) {
                KPhx pr = k_phx(a, R, s, pad, H), ps = k_phx(b, S, s, pad, W);
                long P = (long)pr.O * ps.O;
                if (pr.R && ps.R && P)
                    k_conv_gemm(dy + (long)n0 * K * OH * OW, apack, NULL, buf, ws + gws, K, OH, OW, C, C, pr.R, ps.R,
                                1, pr.pad, ps.pad, pr.O, ps.O, simd, 0, (long)g * pr.O, 0);
                else
                    for (long i = 0; i < g * C * P; i++)
                        buf[i] = 0.0f;
                apack += k_al(k_rup(C, mr) * K * pr.R * ps.R);
                buf += g * C * P;
            }
        /* dx's rows from the phases' */
        for (int n = 0; n < g; n++)
            for (int c = 0; c < C; c++)
                for (int ih = 0; ih < H; ih++) {
                    int a = ih % s, i = ih / s;
                    float *xr = dx + (((long)(n0 + n) * C + c) * H + ih) * W;
                    const float *src = ws + bufs;
                    for (int a2 = 0; a2 < a; a2++)
                        src += (long)g * C * k_phx(a2, R, s, pad, H).O * W;
                    KPhx pr = k_phx(a, R, s, pad, H);
                    for (int b = 0; b < s; b++) {
                        int Ob = k_phx(b, S, s, pad, W).O;
                        const float *sr = src + (((long)n * C + c) * pr.O + i) * Ob;
                        if (s == 2 && b == 0 && W % 2 == 0) {   /* two rows of W / 2 interleaved */
                            const float *s1 = src + (long)g * C * pr.O * Ob + (((long)n * C + c) * pr.O + i) * Ob;
                            for (int j = 0; j < W / 2; j++)
                                xr[2 * j] = sr[j], xr[2 * j + 1] = s1[j];
                            break;
                        }
                        for (int j = 0; j < Ob; j++)
                            xr[j * s + b] = sr[j];
                        src += (long)g * C * pr.O * Ob;
                    }
                }
    }
}

/* The scratch of the scatter-add backward: packed W^T, dy's block, dcol. */
typedef struct {
    int T;
    long ld, apack, dyc, dcol, end;
} KScatterWs;

static KScatterWs k_scatter_ws(int C, int K, int R, int S, int OH, int OW, int simd)
{
    KScatterWs g;
    long Mp = k_rup((long)C * R * S, k_op_mr(simd));
    g.T = k_blk_rows(OH, OW, K_FWD_COLS, k_op_nr(simd), K_MAX_COLS);
    g.ld = k_rup((long)g.T * OW, k_op_nr(simd));
    g.apack = 0;
    g.dyc = k_al(Mp * K);
    g.dcol = g.dyc + k_al((long)K * g.ld);
    g.end = g.dcol + Mp * g.ld;
    return g;
}

/* The scratch of the weight gradient: col, dy's block, the padded input
 * rows, the sums of the chunk (padded to whole dot tiles), the bias sums. */
typedef struct {
    int T, Kp, Kdp;
    int rows, HP, WP, OWv, nrun; /* k_bwdw_rows: padded rows HP x WP per channel and run, dy's rows OWv */
    long ld, col, dyc, xp, acc, dbacc, boff, btab, end;
} KBwdWWs;

/* The weight gradient from the padded input rows too (k_bwdw_rows), where
 * k_conv_gemm takes them, the taps are 64 or more, and either no lane of a
 * row's vectors is wasted or the kernel is 5x5 or larger. With fewer taps
 * (a first layer's) the im2col costs little and the copy of dy into rows
 * of whole vectors more (the im2col path reads whole images of dy in
 * place); with 3x3 on rows of 14 or 28 the lanes past the row cost more
 * than the im2col saves (bench_kernels: 6-13% slower), with 5x5 less
 * (12-20% faster). At stride 1 only: from the input's phases the stride-2
 * 3x3 weight gradient took 10-20% longer than from the im2col (64 -> 128
 * channels into 16x16, 0.232 s against 0.27-0.29). */
static int k_bwdw_rows_ok(int C, int R, int S, int stride, int OW, int simd)
{
    return stride == 1 && k_rows_ok(1, OW, (long)C * R * S, simd) && (long)C * R * S >= 64 &&
           (OW % 16 == 0 || R * S >= 25);
}

static KBwdWWs k_bwdw_ws(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd)
{
    KBwdWWs g;
    int v = simd >= 16 ? 16 : 8;
    g.Kp = (int)k_rup(K, k_dot_mr(simd));
    g.Kdp = (int)k_rup((long)C * R * S, K_DOT_NR);
    g.T = k_blk_rows(OH, OW, K_BWW_COLS, v, K_MAX_COLS);
    g.rows = k_bwdw_rows_ok(C, R, S, stride, OW, simd);
    if (g.rows) {   /* dy's block, the block's runs of padded rows, the sums, the taps' and rows' offsets */
        g.OWv = (int)k_rup(OW, 16);
        g.HP = k_pad_h(g.T, OH, R, 1, 1);
        g.WP = k_max(k_pad_w(W, S, 1, pad, OW, 1), g.OWv + S - 1);
        g.nrun = g.T >= OH ? g.T / OH : 1;
        g.ld = g.col = g.dyc = 0;
        g.xp = k_al((long)K * g.T * g.OWv);
        g.acc = g.xp + k_al((long)g.nrun * C * g.HP * g.WP);
        g.dbacc = g.acc + k_al((long)g.Kp * g.Kdp);
        g.boff = g.dbacc + k_al(K);
        g.btab = g.boff + k_al((long)C * R * S);
        g.end = g.btab + k_al(g.T);
        (void)H;
        return g;
    }
    g.HP = g.WP = g.OWv = g.nrun = 0;
    g.ld = k_rup((long)g.T * OW, v);
    g.col = 0;
    g.dyc = k_al((long)g.Kdp * g.ld);
    g.xp = g.dyc + k_al((long)g.Kp * g.ld);
    g.acc = g.xp + k_al((long)C * k_pad_h(g.T, OH, R, stride, 1) * k_pad_w(W, S, stride, pad, OW, 1));
    g.dbacc = g.acc + k_al((long)g.Kp * g.Kdp);
    g.boff = g.btab = g.end = g.dbacc + K;
    (void)H;
    return g;
}

long k_conv2d_ws(int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd)
{
    long mr = k_op_mr(simd), Kd = (long)C * R * S;
    long fwd = k_al(k_rup(K, mr) * Kd) + 2 * k_al(K) + k_gemm_ws(C, H, W, K, R, S, stride, pad, OH, OW, simd).end, bx;
    long bufs, gws;
    if (k_bwdx_as_conv(C, H, W, K, R, S, stride, pad, OH, OW, simd))
        bx = k_al(k_rup(C, mr) * K * R * S) + k_gemm_ws(K, OH, OW, C, R, S, 1, S - 1 - pad, H, W, simd).end;
    else if (k_bwdx_phases_ok(C, H, W, K, R, S, stride, pad, OH, OW, simd))
        bx = k_phx_ws(N, C, H, W, K, R, S, stride, pad, OH, OW, simd, &bufs, &gws);
    else
        bx = k_scatter_ws(C, K, R, S, OH, OW, simd).end;
    long bw = k_bwdw_ws(C, H, W, K, R, S, stride, pad, OH, OW, simd).end;
    if (k_wino_ok(C, H, W, K, R, S, stride, pad, OH, OW) ||
        k_wino_infer_ok(C, H, W, K, R, S, stride, pad, OH, OW)) {   /* forward and data gradient */
        long wf = k_wino_ws(C, H, W, K, simd), wb = k_wino_ws(K, OH, OW, C, simd);
        long wf4 = k_wino4_ws(C, H, W, K, 1, simd), wb4 = k_wino4_ws(K, OH, OW, C, 1, simd);
        wf = wf > wf4 ? wf : wf4;
        wb = wb > wb4 ? wb : wb4;
        fwd = fwd > wf ? fwd : wf;
        bx = bx > wb ? bx : wb;
    }
    if (k_wino4_ok(C, H, W, K, R, S, stride, pad, OH, OW) ||
        k_wino4_infer_ok(C, H, W, K, R, S, stride, pad, OH, OW)) {   /* F(4x4) at paddings 0 and 2 */
        long wf = k_wino4_ws(C, H, W, K, pad, simd), wb = k_wino4_ws(K, OH, OW, C, 2 - pad, simd);
        fwd = fwd > wf ? fwd : wf;
        bx = bx > wb ? bx : wb;
    }
    if (k_wino25_ok(C, H, W, K, R, S, stride, pad, OH, OW) ||
        k_wino25_infer_ok(C, H, W, K, R, S, stride, pad, OH, OW)) {
        long wf = k_wino25_ws(C, H, W, K, pad, simd), wb = k_wino25_ws(K, OH, OW, C, 4 - pad, simd);
        fwd = fwd > wf ? fwd : wf;
        bx = bx > wb ? bx : wb;
    }
    if (k_small_ok(C, H, W, K, R, S, stride, pad, OH, OW)) {   /* training's small planes */
        long sm = k_small_ws(N, C, H, W, K, R, S, OH, OW, simd);
        bw = bw > sm ? bw : sm;
    }
    long m = fwd > bx ? fwd : bx;
    return (m > bw ? m : bw) + 16;
}

/* Units: output rows; with kt > 1, kt groups of output channels times the
 * rows (unit u: group u / (N*OH), row u % (N*OH)), so that a few rows (one
 * small image) still split over threads, each packing only its channels. */
static void k_conv_fwd_units(const float *restrict x, const float *restrict w, const float *restrict b,
                             const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                             const float *restrict var, float *restrict y, float *restrict ws, int N, int C, int H,
                             int W, int K, int R, int S, int stride, int pad, int OH, int OW, float eps, int relu, int kt,
                             int simd, int lo, int hi)
{
    int mr = k_op_mr(simd);
    long Kd = (long)C * R * S, rows = (long)N * OH, P = (long)OH * OW;
    int gsz = kt > 1 ? (int)k_rup((K + kt - 1) / kt, mr) : K;
    float *apack = ws, *bias = ws + k_al(k_rup(K, mr) * Kd), *scale = bias + k_al(K), *gws = scale + k_al(K);
    for (long u = lo; u < hi;) {
        int g = kt > 1 ? (int)(u / rows) : 0;
        long r0 = kt > 1 ? u % rows : u, r1 = k_min((int)rows, (int)(r0 + (hi - u)));
        int k0 = g * gsz, kc = k_min(gsz, K - k0);
        if (kc > 0) {
            /* batchnorm folded: s = gamma / sqrt(var + eps) into the rows as they are packed,
             * the shift into the bias: (w x + b - mean) s + beta = (w s) x + ((b - mean) s + beta) */
            k_fold_bn(b, gamma, beta, mean, var, eps, k0, kc, kc, scale, bias);
            k_op_pack_scaled(simd, w + (long)k0 * Kd, Kd, 1, kc, (int)Kd, gamma ? scale : NULL, apack);
            k_conv_gemm(x, apack, gamma || b ? bias : NULL, y + k0 * P, gws, C, H, W, kc, K, R, S, stride, pad, pad,
                        OH, OW, simd, r0, r1, relu);
        }
        u += r1 - r0;
    }
}

int k_conv2d_groups(long rows, int K, int simd, int threads)
{
    /* With few rows (one small image) the rows alone leave threads idle:
     * whole register tiles of output channels split as well, but no more
     * groups than threads, as each group unfolds the whole input again (a
     * group per tile made SimCNN's batch-1 inference 5x slower on Zen 1:
     * 16 im2cols of the 64-channel 14x14 layer where one thread needs one). */
    int tiles = (K + k_op_mr(simd) - 1) / k_op_mr(simd);
    if (rows > 16 || tiles < 2)
        return 1;
    return threads > 0 && threads < tiles ? threads : tiles;
}

void k_conv2d_fwd(const float *restrict x, const float *restrict w, const float *restrict b, float *restrict y,
                  float *restrict ws, int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int OH,
                  int OW, int kt, int simd, int lo, int hi)
{
    k_conv_fwd_units(x, w, b, NULL, NULL, NULL, NULL, y, ws, N, C, H, W, K, R, S, stride, pad, OH, OW, 0.0f, 0, kt,
                     simd, lo, hi);
}

void k_conv2d_bn_fwd(const float *restrict x, const float *restrict w, const float *restrict b,
                     const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                     const float *restrict var, float *restrict y, float *restrict ws, int N, int C, int H, int W,
                     int K, int R, int S, int stride, int pad, int OH, int OW, float eps, int relu, int kt, int simd,
                     int lo, int hi)
{
    k_conv_fwd_units(x, w, b, gamma, beta, mean, var, y, ws, N, C, H, W, K, R, S, stride, pad, OH, OW, eps, relu, kt,
                     simd, lo, hi);
}

void k_conv2d_bwd_x(const float *restrict dy, const float *restrict w, float *restrict dx, float *restrict ws, int N,
                    int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd, int lo,
                    int hi)
{
    (void)N;
    int RS = R * S, mr = k_op_mr(simd), nr = k_op_nr(simd);
    long Kd = (long)C * RS;
    if (lo >= hi)
        return;
    if (k_bwdx_as_conv(C, H, W, K, R, S, stride, pad, OH, OW, simd)) {
        /* A[c][(k*R + r)*S + s] = w[k][c][R-1-r][S-1-s], packed as k_op_pack does. */
        float *d = ws;
        for (int c0 = 0; c0 < C; c0 += mr)
            for (int k = 0; k < K; k++)
                for (int j = 0; j < RS; j++)
                    for (int i = 0; i < mr; i++)
                        *d++ = c0 + i < C ? w[((long)k * C + c0 + i) * RS + RS - 1 - j] : 0.0f;
        k_conv_gemm(dy, ws, NULL, dx, ws + k_al(k_rup(C, mr) * (long)K * RS), K, OH, OW, C, C, R, S, 1, R - 1 - pad,
                    S - 1 - pad, H, W, simd, (long)lo * H, (long)hi * H, 0);
        return;
    }
    if (k_bwdx_phases_ok(C, H, W, K, R, S, stride, pad, OH, OW, simd)) {
        k_bwdx_phases(dy, w, dx, ws, N, C, H, W, K, R, S, stride, pad, OH, OW, simd, lo, hi);
        return;
    }
    /* dcol = W^T dy block by block, scattered into dx, which starts at 0. */
    KScatterWs g = k_scatter_ws(C, K, R, S, OH, OW, simd);
    k_op_pack(simd, w, 1, Kd, (int)Kd, K, ws + g.apack);
    for (long i = (long)lo * C * H * W; i < (long)hi * C * H * W; i++)
        dx[i] = 0.0f;
    for (long t = (long)lo * OH; t < (long)hi * OH;) {
        int nrows = k_blk_next(t, hi, OH, g.T), qb = (int)k_rup((long)nrows * OW, nr);
        k_blk_in(dy, ws + g.dyc, g.ld, t, nrows, qb, K, OH, OW);
        k_op_gemm(simd, (int)Kd, K, ws + g.apack, ws + g.dyc, g.ld, qb, qb, ws + g.dcol, g.ld);
        k_col2im(ws + g.dcol, g.ld, t, nrows, dx, C, H, W, R, S, stride, pad, OH, OW);
        t += nrows;
    }
}

int k_bwdw_splits(int C, int G, int threads)
{
    /* No more units than threads (the pool deals each thread a run of
     * units: with more, some threads run two while others wait), and parts
     * of 16 channels or more: each part transforms (Winograd) or copies dy
     * again, which made the work of 4 parts of SimCNN's 32 channels 1.5-2x
     * that of the chunk alone, of 2 parts 1.1-1.3x (one thread, Sapphire
     * Rapids: bench_kernels with BENCH_CS) */
    int cs = G > 0 ? threads / G : 1;
    return k_max(1, k_min(cs, C / 16));
}

/* A weight gradient unit's sums (taps [kda, kdb) of every tile row, and
 * the bias's) to zero before its blocks add to them. */
static void k_bwdw_zero(float *restrict acc, float *restrict dbacc, const KBwdWWs *g, int K, int kda, int kdb)
{
    for (int k = 0; k < g->Kp; k++)
        for (int kd = kda; kd < kdb; kd++)
            acc[(long)k * g->Kdp + kd] = 0.0f;
    for (int k = 0; k < K; k++)
        dbacc[k] = 0.0f;
}

/* A unit's sums out: chunk ch's weights of taps [kda, kde) (the rest of
 * the tile rows are padding) and, when db, its bias. */
static void k_bwdw_out(const float *restrict acc, const float *restrict dbacc, const KBwdWWs *g, float *restrict dwpart,
                       float *restrict dbpart, int db, int ch, int K, int Kd, int kda, int kde)
{
    float *dw = dwpart + (long)ch * K * Kd;
    for (int k = 0; k < K; k++)
        for (int kd = kda; kd < kde; kd++)
            dw[(long)k * Kd + kd] = acc[(long)k * g->Kdp + kd];
    if (db)
        for (int k = 0; k < K; k++)
            dbpart[(long)ch * K + k] = dbacc[k];
}

/* k_conv2d_bwd_w from the padded input rows (k_bwdw_rows_ok): a block's
 * runs of rows (whole images, or a slice of one) padded once each, dy's
 * rows copied into rows of whole vectors (zeros past OW), and each dot tile
 * over all the block's rows before its one reduction, as the im2col path
 * sums over a block's columns. No col: for 5x5 over 32 channels at 28x28
 * it was 2.5 MB a block, more than L2. */
static void k_bwdw_rows(const float *restrict x, const float *restrict dy, float *restrict dwpart,
                        float *restrict dbpart, float *restrict ws, const KBwdWWs *g, int N, int C, int H, int W,
                        int K, int R, int S, int pad, int OH, int OW, int G, int CS, int simd, int lo, int hi)
{
    int Kd = C * R * S, mrd = k_dot_mr(simd), OWv = g->OWv, nv = OWv / 16;   /* simd 16: k_bwdw_rows_ok */
    long plane = (long)C * g->HP * g->WP;
    float *dyc = ws + g->dyc, *xp = ws + g->xp, *acc = ws + g->acc, *dbacc = ws + g->dbacc;
    int *boff = (int *)(ws + g->boff), *btab = (int *)(ws + g->btab);
    for (int c = 0; c < C; c++)
        for (int r = 0; r < R; r++)
            for (int s = 0; s < S; s++)
                boff[(c * R + r) * S + s] = (c * g->HP + r) * g->WP + s;
    for (int u = lo; u < hi; u++) {
        int ch, n0, n1, c0, c1;
        k_bwdw_unit(u, N, G, C, CS, &ch, &n0, &n1, &c0, &c1);
        int db = dbpart && u % CS == 0, kda = c0 * R * S, kdb = c1 == C ? g->Kdp : c1 * R * S;
        k_bwdw_zero(acc, dbacc, g, K, kda, kdb);
        for (long t = (long)n0 * OH; t < (long)n1 * OH;) {
            int nrows = k_blk_next(t, n1, OH, g->T);
            for (long q = t, n, run = 0; q < t + nrows; run++) {
                int oh, rows = k_blk_run(q, t + nrows, OH, &n, &oh);
                k_pad_rows(x, xp + run * plane, n, oh, g->HP, g->WP, C, c0, c1, H, W, 1, pad, pad);
                for (int i = 0; i < rows; i++)
                    btab[q - t + i] = (int)(run * plane) + i * g->WP;
                for (int k = 0; k < K; k++)
                    for (int i = 0; i < rows; i++) {
                        const float *src = dy + ((n * K + k) * OH + oh + i) * (long)OW;
                        float *d = dyc + ((long)k * nrows + (q - t) + i) * OWv;
                        for (int j = 0; j < OW; j++)
                            d[j] = src[j];
                        for (int j = OW; j < OWv; j++)
                            d[j] = 0.0f;
                    }
                q += rows;
            }
            /* A strip of 4 channels of dy stays in L1 while the taps pass:
             * a strip of 4 taps is mostly one padded row shifted, whose
             * lines the strip loads once (the other way round, all of dy
             * came from L2 for every strip of taps); the strip's taps past
             * Kd and the tile's channels past K read rows that are there,
             * into sums nothing writes out. */
            for (int k0 = 0; k0 < g->Kp; k0 += mrd) {
                const float *ap[4] = { NULL };
                K_UNROLL for (int i = 0; i < mrd; i++)
                    ap[i] = dyc + (long)(k0 + i < K ? k0 + i : 0) * nrows * OWv;
                for (int kd0 = kda; kd0 < kdb; kd0 += K_DOT_NR) {
                    const float *bp[K_DOT_NR];
                    float out[16];
                    K_UNROLL for (int j = 0; j < K_DOT_NR; j++)
                        bp[j] = xp + boff[kd0 + j < Kd ? kd0 + j : kd0];
                    k_dot_rows_4x4(nrows, nv, ap, OWv, bp, btab, out);
                    K_UNROLL for (int i = 0; i < mrd; i++)
                        K_UNROLL for (int j = 0; j < K_DOT_NR; j++)
                            acc[(long)(k0 + i) * g->Kdp + kd0 + j] += out[i * K_DOT_NR + j];
                }
            }
            if (db)
                for (int k = 0; k < K; k++)
                    dbacc[k] += k_sum(dyc + (long)k * nrows * OWv, (long)nrows * OWv);
            t += nrows;
        }
        k_bwdw_out(acc, dbacc, g, dwpart, dbpart, db, ch, K, Kd, kda, c1 * R * S);
    }
}

void k_conv2d_bwd_w(const float *restrict x, const float *restrict dy, float *restrict dwpart, float *restrict dbpart,
                    float *restrict ws, int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int OH,
                    int OW, int G, int CS, int simd, int lo, int hi)
{
    KBwdWWs g = k_bwdw_ws(C, H, W, K, R, S, stride, pad, OH, OW, simd);
    int Kd = C * R * S, v = simd >= 16 ? 16 : 8, mrd = k_dot_mr(simd);
    long ld = g.ld;
    float *col = ws + g.col, *dyc = ws + g.dyc, *acc = ws + g.acc, *dbacc = ws + g.dbacc;
    if (lo >= hi)
        return;
    if (g.rows) {
        k_bwdw_rows(x, dy, dwpart, dbpart, ws, &g, N, C, H, W, K, R, S, pad, OH, OW, G, CS, simd, lo, hi);
        return;
    }
    /* The padding rows of the tiles are never written below. */
    for (long i = (long)Kd * ld; i < (long)g.Kdp * ld; i++)
        col[i] = 0.0f;
    for (long i = (long)K * ld; i < (long)g.Kp * ld; i++)
        dyc[i] = 0.0f;
    for (int u = lo; u < hi; u++) {
        /* the col rows of input channels [c0, c1): whole strips of K_DOT_NR
         * rows, as c0 is a multiple of K_DOT_NR (the last part's run into
         * the padding rows) */
        int ch, n0, n1, c0, c1;
        k_bwdw_unit(u, N, G, C, CS, &ch, &n0, &n1, &c0, &c1);
        int db = dbpart && u % CS == 0, kda = c0 * R * S, kdb = c1 == C ? g.Kdp : c1 * R * S;
        k_bwdw_zero(acc, dbacc, &g, K, kda, kdb);
        for (long t = (long)n0 * OH; t < (long)n1 * OH;) {
            int nrows = k_blk_next(t, n1, OH, g.T), qb = (int)k_rup((long)nrows * OW, v);
            k_im2col(x, col, ld, ws + g.xp, t, nrows, qb, g.T, C, c0, c1, H, W, R, S, stride, pad, pad, OH, OW);
            /* dy's rows in place when the block is one whole image of whole
             * vectors (its padding rows, k >= K, stay those of dyc, zeros). */
            long P = (long)OH * OW;
            int inplace = nrows == OH && P % v == 0;
            const float *dyr = inplace ? dy + t / OH * K * P : dyc;
            long ldy = inplace ? P : ld;
            if (!inplace)
                k_blk_in(dy, dyc, ld, t, nrows, qb, K, OH, OW);
            /* A strip of 4 col rows stays in L1 while all of dy passes. */
            for (int kd0 = kda; kd0 < kdb; kd0 += K_DOT_NR) {
                const float *bp[K_DOT_NR];
                K_UNROLL for (int j = 0; j < K_DOT_NR; j++)
                    bp[j] = col + (long)(kd0 + j) * ld;
                for (int k0 = 0; k0 < g.Kp; k0 += mrd) {
                    const float *ap[4] = { NULL };
                    float out[16];
                    K_UNROLL for (int i = 0; i < mrd; i++)
                        ap[i] = k0 + i < K ? dyr + (long)(k0 + i) * ldy : dyc + (long)(k0 + i) * ld;
                    k_dot(simd, qb / v, ap, bp, out);
                    K_UNROLL for (int i = 0; i < mrd; i++)
                        K_UNROLL for (int j = 0; j < K_DOT_NR; j++)
                            acc[(long)(k0 + i) * g.Kdp + kd0 + j] += out[i * K_DOT_NR + j];
                }
            }
            if (db)
                for (int k = 0; k < K; k++)
                    dbacc[k] += k_sum(dyr + (long)k * ldy, qb);
            t += nrows;
        }
        k_bwdw_out(acc, dbacc, &g, dwpart, dbpart, db, ch, K, Kd, kda, c1 * R * S);
    }
}
