/* The weight gradient of a conv (k_conv.h): dW = dy col^T, in dot tiles
 * summed block by block over a chunk of the batch, from an im2col of each
 * block or from the padded input rows (k_bwdw_rows). */
#include "k_conv.h"

/* The scratch of the weight gradient: col, dy's block, the padded input
 * rows, the sums of the chunk (padded to whole dot tiles), the bias sums. */
typedef struct {
    int T, Kp, Kdp, kg; /* kg: dy's rows a group (the im2col path) */
    int rows, HP, WP, OWv, nrun; /* k_bwdw_rows: padded rows HP x WP per channel and run, dy's rows OWv */
    long ld, col, dyc, xp, acc, dbacc, boff, btab, end;
} KBwdWWs;

/* The im2col path runs every strip of col rows over all of dy's block;
 * where that block is more than K_BWW_DY_MAX floats, over groups of dy's
 * rows of K_BWW_DY_FLOATS, each staying in L2 while all the strips pass (a
 * dot tile's sums do not depend on when it runs: the same bits). At 2048
 * channels of dy two threads' blocks of 8 MB each and their col had filled
 * the 32 MB L3 (MWTC_PROFILE=1, the layer networks of
 * bench/layers_vs_torch, 2 threads of the Zen 4: 1x1 512 -> 2048 at 7x7
 * 0.71-0.80 s -> 0.66-0.69, 2048 -> 2048 3.3-3.8 -> 2.8-2.9); with 512
 * channels of dy (2 MB a block), whose re-reads L3 holds, the groups were
 * level or up to 5% slower (3x3 stride 2 256 -> 512 at 7x7, 1x1 2048 ->
 * 512, 512 -> 512 at 4x4), as were groups of 1 << 16 and 1 << 18 floats.
 * Blocks of more than 1 << 18 floats in groups, measured again: one thread
 * 8-9% faster at 4x4 x 512, two threads within +-5% either way: not taken. */
enum { K_BWW_DY_MAX = 1 << 20, K_BWW_DY_FLOATS = 1 << 17 };

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
        g.kg = g.Kp;
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
    g.kg = g.Kp * g.ld <= K_BWW_DY_MAX ? g.Kp : (int)k_rup(k_max(1, (int)(K_BWW_DY_FLOATS / g.ld)), k_dot_mr(simd));
    g.col = 0;
    g.dyc = k_al((long)g.Kdp * g.ld);
    g.xp = g.dyc + k_al((long)g.Kp * g.ld);
    g.acc = g.xp + k_al((long)C * k_pad_h(g.T, OH, R, stride, 1) * k_pad_w(W, S, stride, pad, OW, 1));
    g.dbacc = g.acc + k_al((long)g.Kp * g.Kdp);
    g.boff = g.btab = g.end = g.dbacc + K;
    (void)H;
    return g;
}

long k_conv_bwdw_ws(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd)
{
    return k_bwdw_ws(C, H, W, K, R, S, stride, pad, OH, OW, simd).end;
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

/* A unit's first block stores 0 + its tile's sum: the value the sums had
 * when they were zeroed first and added to (the same bits, one pass less). */
static inline void k_bwdw_add(float *restrict sum, float v, int first)
{
    *sum = (first ? 0.0f : *sum) + v;
}

/* A unit's sums: its chunk's own rows of dwpart where the dot tiles cover
 * K x Kd exactly (no padding rows or taps), so that nothing is copied out
 * (at 1x1 2048 -> 2048 a chunk's sums are 16 MB, written, read and written
 * again for each unit of 256 columns); else the scratch's. (One thread,
 * bench_kernels: 1x1 2048 -> 2048 at 4x4 194-200 ms against 203-214, the
 * other layers level.) */
static float *k_bwdw_acc(const KBwdWWs *g, float *restrict ws, float *restrict dwpart, int ch, int K, int Kd)
{
    return g->Kp == K && g->Kdp == Kd ? dwpart + (long)ch * K * Kd : ws + g->acc;
}

/* A unit's sums out: chunk ch's weights of taps [kda, kde) (the rest of
 * the tile rows are padding) unless they are already there (k_bwdw_acc),
 * zeros where the unit had no block, and, when db, its bias. */
static void k_bwdw_out(float *restrict acc, const float *restrict dbacc, const KBwdWWs *g, float *restrict dwpart,
                       float *restrict dbpart, int db, int ch, int K, int Kd, int kda, int kde, int blocks)
{
    float *dw = dwpart + (long)ch * K * Kd;
    if (!blocks)
        for (int k = 0; k < g->Kp; k++)
            for (int kd = kda; kd < kde; kd++)
                acc[(long)k * g->Kdp + kd] = 0.0f;
    if (acc != dw)
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
    float *dyc = ws + g->dyc, *xp = ws + g->xp, *dbacc = ws + g->dbacc;
    int *boff = (int *)(ws + g->boff), *btab = (int *)(ws + g->btab);
    for (int c = 0; c < C; c++)
        for (int r = 0; r < R; r++)
            for (int s = 0; s < S; s++)
                boff[(c * R + r) * S + s] = (c * g->HP + r) * g->WP + s;
    for (int u = lo; u < hi; u++) {
        int ch, n0, n1, c0, c1;
        k_bwdw_unit(u, N, G, C, CS, &ch, &n0, &n1, &c0, &c1);
        int db = dbpart && u % CS == 0, kda = c0 * R * S, kdb = c1 == C ? g->Kdp : c1 * R * S, first = 1;
        float *acc = k_bwdw_acc(g, ws, dwpart, ch, K, Kd);
        for (int k = 0; k < K; k++)
            dbacc[k] = 0.0f;
        for (long t = (long)n0 * OH; t < (long)n1 * OH; first = 0) {
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
                            k_bwdw_add(&acc[(long)(k0 + i) * g->Kdp + kd0 + j], out[i * K_DOT_NR + j], first);
                }
            }
            if (db)
                for (int k = 0; k < K; k++)
                    dbacc[k] += k_sum(dyc + (long)k * nrows * OWv, (long)nrows * OWv);
            t += nrows;
        }
        k_bwdw_out(acc, dbacc, g, dwpart, dbpart, db, ch, K, Kd, kda, c1 * R * S, !first);
    }
}

void k_conv2d_bwd_w(const float *restrict x, const float *restrict dy, float *restrict dwpart, float *restrict dbpart,
                    float *restrict ws, int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int OH,
                    int OW, int G, int CS, int simd, int lo, int hi)
{
    KBwdWWs g = k_bwdw_ws(C, H, W, K, R, S, stride, pad, OH, OW, simd);
    int Kd = C * R * S, v = simd >= 16 ? 16 : 8, mrd = k_dot_mr(simd);
    long ld = g.ld;
    float *col = ws + g.col, *dyc = ws + g.dyc, *dbacc = ws + g.dbacc;
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
        int db = dbpart && u % CS == 0, kda = c0 * R * S, kdb = c1 == C ? g.Kdp : c1 * R * S, first = 1;
        float *acc = k_bwdw_acc(&g, ws, dwpart, ch, K, Kd);
        for (int k = 0; k < K; k++)
            dbacc[k] = 0.0f;
        for (long t = (long)n0 * OH; t < (long)n1 * OH; first = 0) {
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
            /* A strip of 4 col rows stays in L1 while a group of dy's
             * rows passes, which stays in L2 (K_BWW_DY_FLOATS). */
            for (int kg = 0; kg < g.Kp; kg += g.kg) {
                for (int kd0 = kda; kd0 < kdb; kd0 += K_DOT_NR) {
                    const float *bp[K_DOT_NR];
                    K_UNROLL for (int j = 0; j < K_DOT_NR; j++)
                        bp[j] = col + (long)(kd0 + j) * ld;
                    for (int k0 = kg; k0 < k_min(g.Kp, kg + g.kg); k0 += mrd) {
                        const float *ap[4] = { NULL };
                        float out[16];
                        K_UNROLL for (int i = 0; i < mrd; i++)
                            ap[i] = k0 + i < K ? dyr + (long)(k0 + i) * ldy : dyc + (long)(k0 + i) * ld;
                        k_dot(simd, qb / v, ap, bp, out);
                        K_UNROLL for (int i = 0; i < mrd; i++)
                            K_UNROLL for (int j = 0; j < K_DOT_NR; j++)
                                k_bwdw_add(&acc[(long)(k0 + i) * g.Kdp + kd0 + j], out[i * K_DOT_NR + j], first);
                    }
                }
            }
            if (db)
                for (int k = 0; k < K; k++)
                    dbacc[k] += k_sum(dyr + (long)k * ldy, qb);
            t += nrows;
        }
        k_bwdw_out(acc, dbacc, &g, dwpart, dbpart, db, ch, K, Kd, kda, c1 * R * S, !first);
    }
}
