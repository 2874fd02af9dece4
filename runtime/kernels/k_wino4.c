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
 * order fixed by the shape: the thread split changes no bit.
 *
 * This file holds the forward and the part kernel; k_wino4_bwd.c the
 * weight gradient (the data gradient is the forward the other way),
 * k_wino4_rules.c which shapes take them, k_wino4.h what they share. */
#include <math.h>

#include "k_wino4.h"

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
                      float *restrict pre, float *restrict ws, int C, int K, int flip, float eps, int simd, int lo,
                      int hi, int tr)
{
    int mr = k_op_mr(simd), K16 = (int)k_rup(K, 16);
    float *scale = k_wino_fold(b, gamma, beta, mean, var, eps, K, ws, ws + K16);
    k_w4_weights(w, scale, pre, C, K, flip, simd, NULL, C, NULL, K, lo * mr, hi * mr, tr);
}

void k_conv2d_wino4_prep(const float *restrict w, const float *restrict b, const float *restrict gamma,
                         const float *restrict beta, const float *restrict mean, const float *restrict var,
                         float *restrict pre, float *restrict ws, int C, int K, int flip, float eps, int simd, int lo,
                         int hi)
{
    k_w4_prep(w, b, gamma, beta, mean, var, pre, ws, C, K, flip, eps, simd, lo, hi, 3);
}

void k_conv2d_wino25_prep(const float *restrict w, const float *restrict b, const float *restrict gamma,
                          const float *restrict beta, const float *restrict mean, const float *restrict var,
                          float *restrict pre, float *restrict ws, int C, int K, int flip, float eps, int simd, int lo,
                          int hi)
{
    k_w4_prep(w, b, gamma, beta, mean, var, pre, ws, C, K, flip, eps, simd, lo, hi, 5);
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
