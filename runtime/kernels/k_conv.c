/* The forward conv as GEMM over blocks of output rows (k_conv.h): from an
 * im2col of each block, or straight from the padded input rows
 * (k_conv_rows) where k_rows_ok measured that faster; the data gradient
 * (k_conv_bwdx.c) runs its stride-1 convs of dy through the same
 * k_conv_gemm. */
#include "k_conv.h"

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

/* k_gemm_out for more than K_KC_MIN taps (k_conv.h): per K_MC output
 * channels, the sums over each chunk of K_KC taps for every column tile,
 * kept in cbuf (row m at m * ld) between chunks, then copied into y. Each
 * output's sum runs over the taps in k_op's order, from the bias: the same
 * bits as k_gemm_out. The next block's input is asked for in pieces, one
 * per chunk. */
static void k_gemm_out_kc(int simd, int K, int Ky, int Kd, int kc, const float *restrict apack,
                          const float *restrict col, long ld, long t0, int nrows, int qb, float *restrict y,
                          const float *restrict bias, float *restrict cbuf, int OH, int OW, const KPrefetch *pf)
{
    int mr = k_op_mr(simd), nr = k_op_nr(simd), chunks = (Kd + kc - 1) / kc, piece = 0;
    int pieces = (K + K_MC - 1) / K_MC * chunks;
    float bpad[16];
    for (int mb = 0; mb < K; mb += K_MC) {
        int me = k_min(K, mb + K_MC);
        for (int k0 = 0; k0 < Kd; k0 += kc) {
            int kn = k_min(kc, Kd - k0);
            k_prefetch_part(pf, piece++, pieces);
            for (int q0 = 0; q0 < qb; q0 += nr)
                for (int m0 = mb; m0 < me; m0 += mr) {
                    const float *a = apack + (long)m0 * Kd + (long)k0 * mr, *b = col + (long)k0 * ld + q0;
                    float *c = cbuf + (long)m0 * ld + q0;
                    if (k0 == 0)
                        k_op(simd, kn, a, b, ld, k_tile_bias(bias, m0, mr, K, bpad), c, ld);
                    else
                        k_op_acc(simd, kn, a, b, ld, c, ld);
                }
        }
        /* by runs of rows inside one image */
        for (long u = t0, n; u < t0 + nrows;) {
            int oh, rows = k_blk_run(u, t0 + nrows, OH, &n, &oh);
            for (int k = mb; k < me; k++) {
                const float *cr = cbuf + k * ld + (u - t0) * OW;
                float *yr = y + ((n * Ky + k) * OH + oh) * (long)OW;
                for (int j = 0; j < rows * OW; j++)
                    yr[j] = cr[j];
            }
            u += rows;
        }
    }
}

int k_conv_rows_ok(int C, int R, int S, int stride, int OW, int simd)
{
    return k_rows_ok(stride, OW, (long)C * R * S, simd);
}

/* The next block from flattened output row t, before row end: whole
 * images while a block holds several, else up to T rows of one image. */
static int k_blk_next_rows(long t, long end, int OH, int T)
{
    if (T >= OH && t % OH == 0 && end - t >= OH)
        return (int)(k_min(T / OH, (int)((end - t) / OH)) * OH);
    return (int)(k_min(k_min(T, OH - (int)(t % OH)), (int)(end - t)));
}

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

/* k_conv.h */
void k_conv_gemm(const float *restrict x, const float *restrict apack, const float *restrict bias,
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
        if (g.kc)
            k_gemm_out_kc(simd, K, Ky, Kd, g.kc, apack, ws + g.col, g.ld, t, nrows, qb, y, bias, ws + g.cc, OH, OW,
                          &pf);
        else
            k_gemm_out(simd, K, Ky, Kd, apack, ws + g.col, g.ld, t, nrows, qb, y, bias, ws + g.cb, OH, OW, &pf);
        if (relu)
            k_blk_relu(y, t, nrows, K, Ky, OH, OW);
        t += nrows;
    }
}

long k_conv2d_ws(int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd)
{
    long mr = k_op_mr(simd), Kd = (long)C * R * S;
    long fwd = k_al(k_rup(K, mr) * Kd) + 2 * k_al(K) + k_gemm_ws(C, H, W, K, R, S, stride, pad, OH, OW, simd).end;
    long bx = k_conv_bwdx_ws(N, C, H, W, K, R, S, stride, pad, OH, OW, simd);
    long bw = k_conv_bwdw_ws(C, H, W, K, R, S, stride, pad, OH, OW, simd);
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
    if (k_small_ok(C, H, W, K, R, S, stride, pad, OH, OW) || k_small_strided_ok(C, H, W, K, R, S, stride, pad, OH, OW) ||
        k_small_strided_dx_ok(C, H, W, K, R, S, stride, pad, OH, OW)) {   /* training's small planes */
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
                             int W, int K, int R, int S, int stride, int pad, int OH, int OW, float eps, int relu,
                             int kt, int simd, int lo, int hi)
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
