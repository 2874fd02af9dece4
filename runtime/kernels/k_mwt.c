/* The MwT kernels (DESIGN.md "MwT, precisely"): the mask generator
 * m = relu(tanh(w2 relu(w1 gap(x)) + b2)), the per-channel mask
 * application, and the cosine-similarity losses over the batch's masks
 * (cohesion: 1 - mean similarity of same-label pairs; coupling: mean
 * similarity of different-label pairs), each with its backward pass.
 * Batch rows are the units; sums over rows happen in a single unit, in
 * row order, so nothing depends on the thread count. */
#include <math.h>

#include "k_kernels.h"
#include "k_tile.h"

/* One dot of k_mask_gen_fwd's layers for 8 images at once (a lane each):
 * row w (n long) against vt[i] (the 8 images' i-th inputs), term by term
 * as k_sumdot_dev sums one image's (16 lanes over the whole vectors, then
 * the lanes in order, then the rest), so each lane's bits are that
 * image's alone. Into *out (only pointers cross functions: k_tile.h). */
static inline void k_gen_dot8(const float *restrict w, const k_v8 *restrict vt, int n, k_v8 *restrict out)
{
    int n16 = n / 16 * 16;
    k_v8 s = { 0 };
    if (n >= 16) {
        k_v8 acc[16];
        for (int l = 0; l < 16; l++) {
            k_v8 a = { 0 };
            for (int i = l; i < n16; i += 16)
                a += w[i] * vt[i];
            acc[l] = a;
        }
        for (int l = 0; l < 16; l++)
            s += acc[l];
    }
    for (int i = n16; i < n; i++)
        s += w[i] * vt[i];
    *out = s;
}

/* The generator's width that k_gen_dot8's inputs have room for. */
enum { K_GEN_MAX = 256 };

void k_mask_gen_fwd(const float *restrict x, const float *restrict w1, const float *restrict w2,
                    const float *restrict b2, float *restrict m, float *restrict save, int C, int HW, int Hd, int K,
                    int lo, int hi)
{
    /* Whole groups of 8 images: the layers' dots a lane an image, 8 at
     * once (a dot of one image alone summed 16 lanes, then each of them
     * in turn: its adds waited on each other). The sweep and modularize
     * on SimCNN (Zen 1) 2-3% faster; tanhf, a call per value, is left. */
    k_v8 gt[K_GEN_MAX], ht[K_GEN_MAX];
    int b = lo;
    for (; C <= K_GEN_MAX && Hd <= K_GEN_MAX && b + 8 <= hi; b += 8) {
        for (int q = 0; q < 8; q++) {
            float *g = save + (long)(b + q) * (C + Hd + K);
            const float *xb = x + (long)(b + q) * C * HW;
            for (int c = 0; c < C; c++) /* sums in 16 lanes (k_sum): vectorized, in a fixed order */
                g[c] = k_sum(xb + (long)c * HW, HW) / (float)HW, gt[c][q] = g[c];
        }
        for (int j = 0; j < Hd; j++) {
            k_v8 s;
            k_gen_dot8(w1 + (long)j * C, gt, C, &s);
            ht[j] = (k_v8)((k_i8)(s > 0.0f) & (k_i8)s);
        }
        for (int q = 0; q < 8; q++) {
            float *h = save + (long)(b + q) * (C + Hd + K) + C;
            for (int j = 0; j < Hd; j++)
                h[j] = ht[j][q];
        }
        for (int k = 0; k < K; k++) {
            k_v8 s;
            k_gen_dot8(w2 + (long)k * Hd, ht, Hd, &s);
            s = b2[k] + s;
            for (int q = 0; q < 8; q++) {
                float *t = save + (long)(b + q) * (C + Hd + K) + C + Hd;
                t[k] = tanhf(s[q]);
                m[(long)(b + q) * K + k] = t[k] > 0 ? t[k] : 0;
            }
        }
    }
    for (; b < hi; b++) { /* the rest one at a time: the same bits */
        float *g = save + (long)b * (C + Hd + K), *h = g + C, *t = h + Hd;
        const float *xb = x + (long)b * C * HW;
        for (int c = 0; c < C; c++)
            g[c] = k_sum(xb + (long)c * HW, HW) / (float)HW;
        for (int j = 0; j < Hd; j++) {
            float s = k_sumdot_dev(w1 + (long)j * C, g, C, 0.0f);
            h[j] = s > 0 ? s : 0;
        }
        for (int k = 0; k < K; k++) {
            float s = b2[k] + k_sumdot_dev(w2 + (long)k * Hd, h, Hd, 0.0f);
            t[k] = tanhf(s);
            m[(long)b * K + k] = t[k] > 0 ? t[k] : 0;
        }
    }
}

void k_mask_gen_bwd_x(const float *restrict save, const float *restrict dm, const float *restrict w1,
                      const float *restrict w2, const float *acc, float *dx, float *restrict rows, int C, int HW,
                      int Hd, int K, int lo, int hi)
{
    /* Each sum runs over k (then j) in order from 0, one term at a time,
     * as a dot per output would; but the loops go along rows of w2 and w1,
     * so that the outputs' sums advance together, a vector of them at once
     * (the dots walked down columns, one dependent add after another:
     * VGG16's 512-channel generators spent 18 ms a step here). */
    enum { CB = 256 };
    float ds[CB];
    for (int b = lo; b < hi; b++) {
        const float *g = save + (long)b * (C + Hd + K), *h = g + C, *t = h + Hd;
        float *dz = rows + (long)b * (K + Hd), *dp = dz + K;
        (void)g;
        for (int k = 0; k < K; k++)
            dz[k] = t[k] > 0 ? dm[(long)b * K + k] * (1 - t[k] * t[k]) : 0;
        for (int j = 0; j < Hd; j++)
            dp[j] = 0;
        for (int k = 0; k < K; k++) {
            const float *w2k = w2 + (long)k * Hd;
            float d = dz[k];
            for (int j = 0; j < Hd; j++)
                dp[j] += w2k[j] * d;
        }
        for (int j = 0; j < Hd; j++)
            dp[j] = h[j] > 0 ? dp[j] : 0;
        float *dxb = dx + (long)b * C * HW;
        for (int c = 0; c < C; c++) {
            if (c % CB == 0) {   /* the next block of channels' sums */
                int n = C - c < CB ? C - c : CB;
                for (int i = 0; i < n; i++)
                    ds[i] = 0;
                for (int j = 0; j < Hd; j++) {
                    const float *w1j = w1 + (long)j * C + c;
                    float d = dp[j];
                    for (int i = 0; i < n; i++)
                        ds[i] += w1j[i] * d;
                }
            }
            float s = ds[c % CB];
            s /= (float)HW;
            if (acc) /* an add fused: the other contribution to x's gradient, plus this one */
                for (int i = 0; i < HW; i++)
                    dxb[(long)c * HW + i] = acc[(long)b * C * HW + (long)c * HW + i] + s;
            else
                for (int i = 0; i < HW; i++)
                    dxb[(long)c * HW + i] = s;
        }
    }
}

void k_mask_gen_bwd_w(const float *restrict save, const float *restrict rows, float *restrict dw1,
                      float *restrict dw2, float *restrict db2, int B, int C, int Hd, int K, int lo, int hi)
{
    for (int u = lo; u < hi; u++) {
        if (u < K) {   /* a row of w2 and its bias */
            int k = u;
            float sb = 0;
            for (int j = 0; j < Hd; j++)
                dw2[(long)k * Hd + j] = 0;
            for (int b = 0; b < B; b++) {
                const float *h = save + (long)b * (C + Hd + K) + C;
                float dz = rows[(long)b * (K + Hd) + k];
                sb += dz;
                for (int j = 0; j < Hd; j++)
                    dw2[(long)k * Hd + j] += dz * h[j];
            }
            db2[k] = sb;
        } else {       /* a row of w1 */
            int j = u - K;
            for (int c = 0; c < C; c++)
                dw1[(long)j * C + c] = 0;
            for (int b = 0; b < B; b++) {
                const float *g = save + (long)b * (C + Hd + K);
                float dp = rows[(long)b * (K + Hd) + K + j];
                for (int c = 0; c < C; c++)
                    dw1[(long)j * C + c] += dp * g[c];
            }
        }
    }
}

void k_mask_apply_fwd(const float *restrict x, const float *restrict m, float *restrict y, int HW, int lo, int hi)
{
    for (int p = lo; p < hi; p++) {
        float s = m[p];
        for (int i = 0; i < HW; i++)
            y[(long)p * HW + i] = x[(long)p * HW + i] * s;
    }
}

void k_mask_apply_keep(const float *x, const float *restrict m, const float *restrict keep,
                       const int *restrict generators, float *y, int HW, int K, int relu, int lo, int hi)
{
    for (int p = lo; p < hi; p++) {
        float s = (*generators ? m[p] : 1.0f) * keep[p % K];
        const float *xp = x + (long)p * HW;
        float *yp = y + (long)p * HW;
        if (relu)
            for (int i = 0; i < HW; i++)
                yp[i] = xp[i] * s > 0.0f ? xp[i] * s : 0.0f;
        else
            for (int i = 0; i < HW; i++)
                yp[i] = xp[i] * s;
    }
}

/* One plane of the gradient: dx = g s, and the sum of g x, where g = dy
 * (relu = 1: only where x s > 0, the product the forward computed, so the
 * relu's output need not be read). The sum runs in 16 lanes, then the lanes
 * in order and the tail, as k_sum: vectorized, and its order fixed. */
static float mask_plane_bwd(const float *restrict x, const float *restrict dy, float *restrict dx, long n, float s,
                            int relu)
{
    k_v16 acc = { 0 };
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        k_v16 a, g;
        __builtin_memcpy(&a, x + i, sizeof a);
        __builtin_memcpy(&g, dy + i, sizeof g);
        if (relu)
            g = K_WHERE16(a * s > 0.0f, g);
        k_v16 o = g * s;
        __builtin_memcpy(dx + i, &o, sizeof o);
        acc += g * a;
    }
    float d = 0.0f;
    if (n >= 16)
        for (int l = 0; l < 16; l++)
            d += acc[l];
    for (; i < n; i++) {
        float g = relu && !(x[i] * s > 0.0f) ? 0.0f : dy[i];
        dx[i] = g * s;
        d += g * x[i];
    }
    return d;
}

void k_mask_apply_keep_bwd(const float *restrict x, const float *restrict m, const float *restrict keep,
                           const int *restrict generators, const float *restrict dy, float *restrict dx,
                           float *restrict dm, int HW, int K, int relu, int lo, int hi)
{
    for (int p = lo; p < hi; p++) {
        float k = keep[p % K], s = (*generators ? m[p] : 1.0f) * k;
        float d = mask_plane_bwd(x + (long)p * HW, dy + (long)p * HW, dx + (long)p * HW, HW, s, relu);
        dm[p] = *generators ? d * k : 0;   /* dropped generators learn nothing */
    }
}

void k_mask_apply_bwd(const float *restrict x, const float *restrict m, const float *restrict dy, float *restrict dx,
                      float *restrict dm, int HW, int lo, int hi)
{
    for (int p = lo; p < hi; p++)
        dm[p] = mask_plane_bwd(x + (long)p * HW, dy + (long)p * HW, dx + (long)p * HW, HW, m[p], 0);
}

/* F.normalize's denominator for every row of m: its length, at least 1e-12.
 * Each thread computes all B (B*K flops) into its scratch. */
static void row_norms(const float *restrict m, float *restrict nrm, int B, int K)
{
    for (int i = 0; i < B; i++) {
        float s = sqrtf(k_sumdot_dev(m + (long)i * K, m + (long)i * K, K, 0.0f));
        nrm[i] = s > 1e-12f ? s : 1e-12f;
    }
}

/* rowstat of row i: the cosines with the rows after it, by label kind. */
static void sim_row(const int *restrict labels, const float *restrict m, const float *restrict nrm,
                    float *restrict rowstat, int B, int K, int i)
{
    const float *mi = m + (long)i * K;
    float same = 0, diff = 0, ns = 0, nd = 0;
    for (int j = i + 1; j < B; j++) {
        float d = k_sumdot_dev(mi, m + (long)j * K, K, 0.0f) / (nrm[i] * nrm[j]);
        if (labels[i] == labels[j])
            same += d, ns += 1;
        else
            diff += d, nd += 1;
    }
    rowstat[4 * i] = same, rowstat[4 * i + 1] = ns, rowstat[4 * i + 2] = diff, rowstat[4 * i + 3] = nd;
}

void k_mask_sim_rows(const int *restrict labels, const float *restrict m, float *restrict rowstat,
                     float *restrict ws, int B, int K, int lo, int hi)
{
    if (lo >= hi)
        return;
    row_norms(m, ws, B, K);
    /* unit u: rows u and B-1-u, B-1 pairs together, so the units weigh the same */
    for (int u = lo; u < hi; u++) {
        sim_row(labels, m, ws, rowstat, B, K, u);
        if (B - 1 - u != u)
            sim_row(labels, m, ws, rowstat, B, K, B - 1 - u);
    }
}

void k_mask_sim_loss(const float *restrict rowstat, float *restrict out, int B, int mode, float w, int lo, int hi)
{
    if (lo >= hi)
        return;
    double s = 0, n = 0;
    for (int i = 0; i < B; i++) {
        s += rowstat[4 * i + 2 * mode];
        n += rowstat[4 * i + 2 * mode + 1];
    }
    /* a batch without a pair of the kind contributes nothing */
    if (n > 0)
        out[0] += w * (float)(mode == 0 ? 1 - s / n : s / n);
}

void k_mask_sim_bwd(const int *restrict labels, const float *restrict m, const float *restrict dloss,
                    float *restrict dm, float *restrict ws, int B, int K, int mode, float scale, int lo, int hi)
{
    if (lo >= hi)
        return;
    float *nrm = ws;
    row_norms(m, nrm, B, K);
    /* the number of pairs of the kind, from the labels */
    long pairs = 0;
    for (int i = 0; i < B; i++)
        for (int j = i + 1; j < B; j++)
            pairs += (labels[i] == labels[j]) == (mode == 0);
    for (int i = lo; i < hi; i++) {
        float *d = dm + (long)i * K;
        for (int k = 0; k < K; k++)
            d[k] = 0;
        if (pairs == 0)
            continue;
        /* dL/du_i = coef * sum of u_j over the pairs (i, j) of the kind */
        float coef = dloss[0] * scale / (float)pairs * (mode == 0 ? -1.0f : 1.0f);
        for (int j = 0; j < B; j++) {
            if (j == i || (labels[i] == labels[j]) != (mode == 0))
                continue;
            const float *mj = m + (long)j * K;
            float inv = 1 / nrm[j];
            for (int k = 0; k < K; k++)
                d[k] += mj[k] * inv;
        }
        const float *mi = m + (long)i * K;
        float ni = nrm[i];
        for (int k = 0; k < K; k++)
            d[k] *= coef;
        float dot = k_sumdot_dev(mi, d, K, 0.0f) / ni;
        /* through u = m / max(|m|, eps): (du - u (u . du)) / |m|, or du / eps below eps */
        int clamped = ni <= 1e-12f;
        for (int k = 0; k < K; k++)
            d[k] = clamped ? d[k] / ni : (d[k] - mi[k] / ni * dot) / ni;
    }
}
