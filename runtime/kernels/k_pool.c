/* Pooling over planes [H, W] -> [OH, OW], no padding; one plane per unit. */
#include "k_kernels.h"
#include "k_tile.h"

/* Of the 2*len floats at r0 and at r1 (len <= 16): the even and the odd
 * elements of each row, a, b (row 0) and c, d (row 1), through a local copy,
 * so nothing past the rows is read. */
static inline void k_pool2_load(const float *restrict r0, const float *restrict r1, int len, k_v16 *a, k_v16 *b,
                                k_v16 *c, k_v16 *d)
{
    float t0[32] = { 0 }, t1[32] = { 0 };
    for (int j = 0; j < 2 * len; j++)
        t0[j] = r0[j], t1[j] = r1[j];
    k_v16 u0, u1, v0, v1;
    __builtin_memcpy(&u0, t0, sizeof u0);
    __builtin_memcpy(&u1, t0 + 16, sizeof u1);
    __builtin_memcpy(&v0, t1, sizeof v0);
    __builtin_memcpy(&v1, t1 + 16, sizeof v1);
    *a = K_EVEN16(u0, u1), *b = K_ODD16(u0, u1);
    *c = K_EVEN16(v0, v1), *d = K_ODD16(v0, v1);
}

/* where (mask) a, else b, bitwise */
static inline void k_pool2_sel(const k_i16 *mask, const k_v16 *a, const k_v16 *b, k_v16 *out)
{
    *out = (k_v16)((*mask & (k_i16)*a) | (~*mask & (k_i16)*b));
}

/* The windows' first maximum m in row-major order (a, b, c, d: only a
 * strictly greater value moves it, as in the general loops), and where each
 * of b, c, d moved it. */
static inline void k_pool2_max(const k_v16 *a, const k_v16 *b, const k_v16 *c, const k_v16 *d, k_v16 *m, k_i16 *sb,
                               k_i16 *sc, k_i16 *sd)
{
    *sb = *b > *a;
    k_pool2_sel(sb, b, a, m);
    *sc = *c > *m;
    k_pool2_sel(sc, c, m, m);
    *sd = *d > *m;
    k_pool2_sel(sd, d, m, m);
}

/* 2x2 windows, stride 2 (SimCNN's every pool): 16 windows of a row at a
 * time in vectors; the scalar loops left LLVM nothing it would vectorize
 * (10 GB/s, a fifth of a relu's). The same maximum, first maximum, as the
 * general loops. */
static void k_maxpool2_fwd(const float *restrict x, float *restrict y, int H, int W, int OH, int OW, int lo, int hi)
{
    for (long p = lo; p < hi; p++)
        for (int oh = 0; oh < OH; oh++) {
            const float *r0 = x + (p * H + 2 * oh) * (long)W, *r1 = r0 + W;
            float *yr = y + (p * OH + oh) * (long)OW;
            for (int ow = 0; ow < OW; ow += 16) {
                int len = OW - ow < 16 ? OW - ow : 16;
                k_v16 a, b, c, d, m;
                k_i16 sb, sc, sd;
                k_pool2_load(r0 + 2 * ow, r1 + 2 * ow, len, &a, &b, &c, &d);
                k_pool2_max(&a, &b, &c, &d, &m, &sb, &sc, &sd);
                float out[16];
                __builtin_memcpy(out, &m, sizeof out);
                for (int j = 0; j < len; j++)
                    yr[ow + j] = out[j];
            }
        }
}

void k_maxpool_fwd(const float *restrict x, float *restrict y, int H, int W, int k, int s, int OH, int OW, int lo,
                   int hi)
{
    if (k == 2 && s == 2) {
        k_maxpool2_fwd(x, y, H, W, OH, OW, lo, hi);
        return;
    }
    for (long p = lo; p < hi; p++) {
        const float *xp = x + p * H * W;
        float *yp = y + p * OH * OW;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const float *win = xp + (long)oh * s * W + (long)ow * s;
                float m = win[0];
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++)
                        m = win[i * W + j] > m ? win[i * W + j] : m;
                yp[oh * OW + ow] = m;
            }
    }
}

/* Windows that tile the plane (k == s): every input element gets one value,
 * dy where it is its window's first maximum, else 0, with selects only, so
 * the loop over ow vectorizes; no zeroing pass, no scatter. */
static void k_maxpool_bwd_tiled(const float *restrict x, const float *restrict dy, float *restrict dx, int H, int W,
                                int k, int OH, int OW, int lo, int hi)
{
    for (long p = lo; p < hi; p++) {
        const float *xp = x + p * H * W, *dyp = dy + p * OH * OW;
        float *dxp = dx + p * H * W;
        for (int oh = 0; oh < OH; oh++) {
            for (int ow = 0; ow < OW; ow++) {
                const float *win = xp + (long)oh * k * W + ow * k;
                float m = win[0];
                int at = 0;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) {
                        int better = win[i * W + j] > m;
                        m = better ? win[i * W + j] : m;
                        at = better ? i * k + j : at;
                    }
                float g = dyp[oh * OW + ow];
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++)
                        dxp[(long)(oh * k + i) * W + ow * k + j] = at == i * k + j ? g : 0.0f;
            }
            /* columns no window covers */
            for (int i = 0; i < k; i++)
                for (int j = OW * k; j < W; j++)
                    dxp[(long)(oh * k + i) * W + j] = 0.0f;
        }
        for (long i = (long)OH * k * W; i < (long)H * W; i++) /* rows no window covers */
            dxp[i] = 0.0f;
    }
}

/* The first maximum of the window in row-major order: only a strictly
 * greater value moves it, as in the forward pass. */
/* Its gradient: each input element dy where it is its window's first
 * maximum (a, then b, c, d), else 0; rows and columns no window covers 0. */
static void k_maxpool2_bwd(const float *restrict x, const float *restrict dy, float *restrict dx, int H, int W, int OH,
                           int OW, int lo, int hi)
{
    for (long p = lo; p < hi; p++) {
        float *dxp = dx + p * H * W;
        for (int oh = 0; oh < OH; oh++) {
            const float *r0 = x + (p * H + 2 * oh) * (long)W, *r1 = r0 + W;
            const float *g = dy + (p * OH + oh) * (long)OW;
            float *d0 = dxp + 2L * oh * W, *d1 = d0 + W;
            for (int ow = 0; ow < OW; ow += 16) {
                int len = OW - ow < 16 ? OW - ow : 16;
                k_v16 a, b, c, d, m, gv;
                float gt[16] = { 0 };
                for (int j = 0; j < len; j++)
                    gt[j] = g[ow + j];
                __builtin_memcpy(&gv, gt, sizeof gv);
                k_i16 sb, sc, sd;
                k_pool2_load(r0 + 2 * ow, r1 + 2 * ow, len, &a, &b, &c, &d);
                k_pool2_max(&a, &b, &c, &d, &m, &sb, &sc, &sd);
                /* the winner: d if it beat the rest, else c if it did, else b, else a */
                k_i16 wd = sd, wc = ~sd & sc, wb = ~sd & ~sc & sb, wa = ~sd & ~sc & ~sb;
                k_v16 oa = K_WHERE16(wa, gv), ob = K_WHERE16(wb, gv), oc = K_WHERE16(wc, gv), od = K_WHERE16(wd, gv);
                /* back to the rows' order: a b a b ... and c d c d ... */
                k_v16 w[4] = { K_ZIP_LO16(oa, ob), K_ZIP_HI16(oa, ob), K_ZIP_LO16(oc, od), K_ZIP_HI16(oc, od) };
                float o[2][32];
                __builtin_memcpy(o, w, sizeof o);
                for (int j = 0; j < 2 * len; j++)
                    d0[2 * ow + j] = o[0][j], d1[2 * ow + j] = o[1][j];
            }
            for (int j = 2 * OW; j < W; j++) /* a column no window covers */
                d0[j] = 0.0f, d1[j] = 0.0f;
        }
        for (long i = 2L * OH * W; i < (long)H * W; i++) /* a row no window covers */
            dxp[i] = 0.0f;
    }
}

void k_maxpool_bwd(const float *restrict x, const float *restrict dy, float *restrict dx, int H, int W, int k, int s,
                   int OH, int OW, int lo, int hi)
{
    if (k == 2 && s == 2) {
        k_maxpool2_bwd(x, dy, dx, H, W, OH, OW, lo, hi);
        return;
    }
    if (k == s && k <= 8) {
        k_maxpool_bwd_tiled(x, dy, dx, H, W, k, OH, OW, lo, hi);
        return;
    }
    for (long p = lo; p < hi; p++) {
        const float *xp = x + p * H * W, *dyp = dy + p * OH * OW;
        float *dxp = dx + p * H * W;
        for (int i = 0; i < H * W; i++)
            dxp[i] = 0.0f;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int at = oh * s * W + ow * s;
                float m = xp[at];
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) {
                        int a = (oh * s + i) * W + ow * s + j;
                        if (xp[a] > m)
                            m = xp[a], at = a;
                    }
                dxp[at] += dyp[oh * OW + ow];
            }
    }
}

void k_avgpool_fwd(const float *restrict x, float *restrict y, int H, int W, int k, int s, int OH, int OW, int lo,
                   int hi)
{
    float n = (float)(k * k);
    for (long p = lo; p < hi; p++) {
        const float *xp = x + p * H * W;
        float *yp = y + p * OH * OW;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const float *win = xp + (long)oh * s * W + (long)ow * s;
                float sum = 0.0f;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++)
                        sum += win[i * W + j];
                yp[oh * OW + ow] = sum / n;
            }
    }
}

void k_avgpool_bwd(const float *restrict dy, float *restrict dx, int H, int W, int k, int s, int OH, int OW, int lo,
                   int hi)
{
    float n = (float)(k * k);
    for (long p = lo; p < hi; p++) {
        const float *dyp = dy + p * OH * OW;
        float *dxp = dx + p * H * W;
        for (int i = 0; i < H * W; i++)
            dxp[i] = 0.0f;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float g = dyp[oh * OW + ow] / n;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++)
                        dxp[(oh * s + i) * W + ow * s + j] += g;
            }
    }
}

void k_gap_fwd(const float *restrict x, float *restrict y, int HW, int lo, int hi)
{
    for (long p = lo; p < hi; p++)
        y[p] = k_sum(x + p * HW, HW) / (float)HW;
}

void k_gap_bwd(const float *restrict dy, float *restrict dx, int HW, int lo, int hi)
{
    for (long p = lo; p < hi; p++) {
        float g = dy[p] / (float)HW;
        for (int i = 0; i < HW; i++)
            dx[p * HW + i] = g;
    }
}
