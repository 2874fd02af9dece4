/* Linear layers on the micro-kernels of k_tile.h.
 *  forward  y = x w^T: rows of x and of w are both contiguous along F, so
 *           dot tiles read them in place (no packing, no transpose);
 *  backward dx = dy w and dw = dy^T x: op tiles along F, with the small dy
 *           packed and w or x read in place, except the last partial column
 *           tile, which is copied into zero-padded scratch.
 * Every output is one sum over the inner dimension in a fixed order. */
#include "k_kernels.h"
#include "k_tile.h"

long k_linear_ws(int B, int F, int O, int simd)
{
    (void)F;
    long mr = k_op_mr(simd), nr = k_op_nr(simd), a = k_rup(B, mr) * O, b = k_rup(O, mr) * B;
    return k_rup(a > b ? a : b, 16) + k_rup((O > B ? O : B) * nr, 16) + mr * nr + 16;
}

void k_linear_fwd(const float *restrict x, const float *restrict w, const float *restrict b, float *restrict y,
                  float *restrict ws, int B, int F, int O, int og, int simd, int lo, int hi)
{
    (void)ws;
    int mr = k_dot_mr(simd), v = simd >= 16 ? 16 : 8, nv = F / v;
    int gsz = og > 1 ? (int)k_rup((O + og - 1) / og, K_DOT_NR) : O;
    for (long u = lo; u < hi;) {
        /* unit u: rows, or with og > 1 group u / B of outputs times row u % B */
        int g = og > 1 ? (int)(u / B) : 0, r0 = og > 1 ? (int)(u % B) : (int)u;
        int r1 = k_min(B, r0 + (int)(hi - u)), o1 = k_min(O, (g + 1) * gsz);
        /* w's rows outside, so 4 of them stay in L1 while the rows of x pass.
         * Rows past the end repeat the last one: computed, never stored. */
        for (int o0 = g * gsz; o0 < o1; o0 += K_DOT_NR) {
            const float *bp[K_DOT_NR];
            for (int j = 0; j < K_DOT_NR; j++)
                bp[j] = w + (long)k_min(o0 + j, O - 1) * F;
            for (int b0 = r0; b0 < r1; b0 += mr) {
                const float *ap[4];
                float out[16];
                for (int i = 0; i < mr; i++)
                    ap[i] = x + (long)k_min(b0 + i, r1 - 1) * F;
                k_dot(simd, nv, ap, bp, out);
                for (int i = 0; i < mr && b0 + i < r1; i++)
                    for (int j = 0; j < K_DOT_NR && o0 + j < o1; j++) {
                        float s = out[i * K_DOT_NR + j];
                        for (int f = nv * v; f < F; f++)
                            s += ap[i][f] * bp[j][f];
                        y[(long)(b0 + i) * O + o0 + j] = s + (b ? b[o0 + j] : 0.0f);
                    }
            }
        }
        u += r1 - r0;
    }
}

/* c[m][f] = sum over k < kin of A[m][k] src[k][f], m < M, f < F, with A
 * packed; c has row stride F. Column tiles outside: a strip of src stays in
 * L1 while the row tiles pass. */
static void k_lin_op(int simd, int M, int kin, int F, const float *restrict apack, const float *restrict src,
                     float *restrict c, float *restrict ws)
{
    int mr = k_op_mr(simd), nr = k_op_nr(simd), fb = F / nr * nr;
    float *tail = ws, *tmp = ws + k_rup((long)kin * nr, 16);
    if (fb < F)
        for (int k = 0; k < kin; k++)
            for (int j = 0; j < nr; j++)
                tail[(long)k * nr + j] = fb + j < F ? src[(long)k * F + fb + j] : 0.0f;
    for (int f0 = 0; f0 < F; f0 += nr) {
        const float *bs = f0 < fb ? src + f0 : tail;
        long ldb = f0 < fb ? F : nr;
        for (int m0 = 0; m0 < M; m0 += mr) {
            int full = m0 + mr <= M && f0 < fb;
            float *ct = full ? c + (long)m0 * F + f0 : tmp;
            k_op(simd, kin, apack + (long)m0 * kin, bs, ldb, NULL, ct, full ? F : nr);
            if (!full)
                for (int i = 0; i < mr && m0 + i < M; i++)
                    for (int j = 0; j < nr && f0 + j < F; j++)
                        c[(long)(m0 + i) * F + f0 + j] = tmp[i * nr + j];
        }
    }
}

static long k_lin_apack_size(int B, int O, int simd)
{
    long mr = k_op_mr(simd), a = k_rup(B, mr) * O, b = k_rup(O, mr) * B;
    return k_rup(a > b ? a : b, 16);
}

void k_linear_bwd_x(const float *restrict dy, const float *restrict w, float *restrict dx, float *restrict ws, int B,
                    int F, int O, int simd, int lo, int hi)
{
    if (lo >= hi)
        return;
    /* A[m][o] = dy[lo + m][o] */
    k_op_pack(simd, dy + (long)lo * O, O, 1, hi - lo, O, ws);
    k_lin_op(simd, hi - lo, O, F, ws, w, dx + (long)lo * F, ws + k_lin_apack_size(B, O, simd));
}

void k_linear_bwd_w(const float *restrict x, const float *restrict dy, float *restrict dw, float *restrict db,
                    float *restrict ws, int B, int F, int O, int simd, int lo, int hi)
{
    if (lo >= hi)
        return;
    /* A[m][b] = dy[b][lo + m]: the sum over b runs in order inside the tile. */
    k_op_pack(simd, dy + lo, 1, O, hi - lo, B, ws);
    k_lin_op(simd, hi - lo, B, F, ws, x, dw + (long)lo * F, ws + k_lin_apack_size(B, O, simd));
    if (db)
        for (int o = lo; o < hi; o++) {
            float s = 0.0f;
            for (int b = 0; b < B; b++)
                s += dy[(long)b * O + o];
            db[o] = s;
        }
}
