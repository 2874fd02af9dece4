/* The weight gradient of F(4x4, 3x3) and F(2x2, 5x5) (k_wino4.c): the
 * transpose of the forward algorithm, per position xi a GEMM of the
 * transformed dy and input over the tiles, then G^T dU G. */
#include "k_wino4.h"

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
