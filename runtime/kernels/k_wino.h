/* What the two Winograd kernels (k_wino.c F(2x2,3x3), k_wino4.c F(4x4,3x3))
 * do alike: fold a batchnorm into the weights and bias, zero the columns
 * past a block's tiles, the weight gradient's dot-product GEMMs and its
 * bias gradient. V and Z rows are addressed by two strides, so that each
 * kernel keeps its own layout: row (c, xi) of V at v + xi*vxs + c*vcs. */
#ifndef K_WINO_H
#define K_WINO_H
#include <math.h>

#include "k_kernels.h"
#include "k_tile.h"

/* The bias the output transform adds, and the scale U takes (a batchnorm on
 * running statistics folded in), or NULL for none: into bias[K], scale[K]. */
static inline float *k_wino_fold(const float *restrict b, const float *restrict gamma, const float *restrict beta,
                                 const float *restrict mean, const float *restrict var, float eps, int K,
                                 float *restrict bias, float *restrict scale)
{
    if (gamma) {
        for (int k = 0; k < K; k++)
            scale[k] = gamma[k] / sqrtf(var[k] + eps);
        for (int k = 0; k < K; k++)
            bias[k] = ((b ? b[k] : 0.0f) - mean[k]) * scale[k] + beta[k];
        return scale;
    }
    if (b)
        for (int k = 0; k < K; k++)
            bias[k] = b[k];
    return NULL;
}

/* d[0..n) = the W floats of src from column `shift` on, zeros around them
 * (everywhere when src is NULL: a row past the image's edge): the
 * zero-padded rows the transforms read. */
static inline void k_wino_pad_row(float *restrict d, const float *restrict src, int shift, int W, int n)
{
    int j = 0, e = shift + W < n ? shift + W : n;
    if (src) {
        for (; j < shift; j++)
            d[j] = 0.0f;
        for (; j < e; j++)
            d[j] = src[j - shift];
    }
    for (; j < n; j++)
        d[j] = 0.0f;
}

/* From one xi's packed U (rows x cols floats) to the next: a cache line
 * more than their size, as V's and M's planes. Planes a whole number of
 * pages apart share one L1 set, and the weight transform stores to all of
 * them in turn: on Zen 1 that made it ~600 cycles a (k, c) pair, as long as
 * the whole conv of one image at 14x14 with F(4x4). */
static inline long k_wino_ustride(long n) { return k_rup(n, 16) + 16; }

/* Output channels [*k0, return value) of group gi of `groups`
 * (k_wino_groups): whole register tiles of the K channels, split as evenly
 * as they go; none when there are more groups than tiles. */
static inline int k_wino_group(int K, int simd, int groups, int gi, int *k0)
{
    int mr = k_op_mr(simd), tiles = (K + mr - 1) / mr;
    int t0 = (int)((long)tiles * gi / groups), t1 = (int)((long)tiles * (gi + 1) / groups);
    *k0 = t0 * mr;
    return t1 * mr < K ? t1 * mr : K;
}

/* Zeros into columns [cols, qb) of the rows rows x nx of v (the GEMMs run
 * over whole tiles of columns). */
static inline void k_wino_zero_cols(float *restrict v, int nx, long xs, int rows, long rs, long cols, long qb)
{
    K_PRAGMA(GCC unroll 1)
    for (int xi = 0; xi < nx; xi++)
        for (int r = 0; r < rows; r++)
            for (long j = cols; j < qb; j++)
                v[xi * xs + (long)r * rs + j] = 0.0f;
}

/* acc[xi][k][c] (Kp x Cp per xi) += sum over the qb columns of Z row (k, xi)
 * times V row (c, xi): per xi a K x C GEMM whose inner dimension is the
 * tiles, in the dot tiles of k_tile.h; rows past C or K read `zero`. */
static inline void k_wino_dots(int simd, int nx, int C, int K, int Kp, const float *restrict v, long vxs, long vcs,
                               const float *restrict z, long zxs, long zks, const float *restrict zero, int qb,
                               float *restrict acc)
{
    int vl = simd >= 16 ? 16 : 8, mrd = k_dot_mr(simd), Cp = (int)k_rup(C, K_DOT_NR);
    K_PRAGMA(GCC unroll 1)
    for (int xi = 0; xi < nx; xi++)
        for (int c0 = 0; c0 < Cp; c0 += K_DOT_NR) {
            const float *bp[K_DOT_NR];
            K_UNROLL for (int j = 0; j < K_DOT_NR; j++)
                bp[j] = c0 + j < C ? v + xi * vxs + (long)(c0 + j) * vcs : zero;
            for (int k0 = 0; k0 < K; k0 += mrd) {
                const float *ap[4] = { NULL };
                float out[16];
                K_UNROLL for (int i = 0; i < mrd; i++)
                    ap[i] = k0 + i < K ? z + xi * zxs + (long)(k0 + i) * zks : zero;
                k_dot(simd, qb / vl, ap, bp, out);
                float *a = acc + ((long)xi * Kp + k0) * Cp + c0;
                K_UNROLL for (int i = 0; i < mrd; i++)
                    K_UNROLL for (int j = 0; j < K_DOT_NR; j++)
                        a[(long)i * Cp + j] += out[i * K_DOT_NR + j];
            }
        }
}

/* dbpart[ch][k] = the sum of dy over images [n0, n1) (K channels of HW). */
static inline void k_wino_db(const float *restrict dy, float *restrict dbacc, float *restrict dbpart, int ch, int n0,
                             int n1, int K, long HW)
{
    for (int k = 0; k < K; k++)
        dbacc[k] = 0.0f;
    for (int n = n0; n < n1; n++)
        for (int k = 0; k < K; k++)
            dbacc[k] += k_sum(dy + ((long)n * K + k) * HW, HW);
    for (int k = 0; k < K; k++)
        dbpart[(long)ch * K + k] = dbacc[k];
}

#endif
