/* What k_small.c and k_small_pix.c share: the GEMM tile over segments,
 * the input laid out again with images innermost, and the taps of a pixel. */
#ifndef K_SMALL_H
#define K_SMALL_H
#include "k_tile.h"

/* C[MR][NV*V] = bias + the sum over segments s < nseg, in order, of
 * a_s times the rows of b_s (row stride ldb), a_s[k][i] at a_s + k * AK + i
 * * AI: AK = MR, AI = 1 where a is packed [kin][MR] (k_seg, k_small_pix.c's
 * tiles), AK = 1, AI = lda where it is MR rows of a matrix read in place
 * (k_rows). The bias (NULL: none) is one per row, or with BCOL 1 one per
 * column (NV vectors of it, k_small_pix.c's output channels). With BCOL 2
 * the sums go on from what C holds (the bias is not read): a tile summed
 * over segments in calls of its own adds the same products in the same
 * order as one call over them all, to the bit. */
#define K_SEG_KERNEL(NAME, VT, V, MR, NV, AK, AI, BCOL)                                                            \
    static inline void NAME(int nseg, const float *const *as, const float *const *bs, int kin, long ldb, long lda, \
                            const float *restrict bias, float *restrict c, long ldc)                               \
    {                                                                                                              \
        (void)lda;                                                                                                 \
        VT acc[MR][NV];                                                                                            \
        K_UNROLL for (int j = 0; j < NV; j++)                                                                      \
        {                                                                                                          \
            VT bc = (VT){ 0 };                                                                                     \
            if ((BCOL) == 1 && bias)                                                                               \
                __builtin_memcpy(&bc, bias + j * V, sizeof(VT));                                                   \
            K_UNROLL for (int i = 0; i < MR; i++)                                                                  \
            {                                                                                                      \
                if ((BCOL) == 2)                                                                                   \
                    __builtin_memcpy(&acc[i][j], c + (long)i * ldc + j * V, sizeof(VT));                           \
                else                                                                                               \
                    acc[i][j] = (BCOL) == 1 && bias ? bc - (VT){ 0 } : (bias ? bias[i] : 0.0f) - (VT){ 0 };       \
            }                                                                                                      \
        }                                                                                                          \
        for (int s = 0; s < nseg; s++) {                                                                           \
            const float *restrict a = as[s], *restrict b = bs[s];                                                  \
            for (int k = 0; k < kin; k++) {                                                                        \
                VT bv[NV];                                                                                         \
                K_UNROLL for (int j = 0; j < NV; j++) __builtin_memcpy(&bv[j], b + (long)k * ldb + j * V,         \
                                                                       sizeof(VT));                                \
                K_UNROLL for (int i = 0; i < MR; i++)                                                              \
                {                                                                                                  \
                    VT av = a[(long)k * (AK) + (long)i * (AI)] - (VT){ 0 };                                        \
                    K_UNROLL for (int j = 0; j < NV; j++) acc[i][j] += av * bv[j];                                 \
                }                                                                                                  \
            }                                                                                                      \
        }                                                                                                          \
        K_UNROLL for (int i = 0; i < MR; i++) K_UNROLL for (int j = 0; j < NV; j++)                                \
            __builtin_memcpy(c + (long)i * ldc + j * V, &acc[i][j], sizeof(VT));                                   \
    }

/* The forward's output tiles kept at once: a plane's pixels (16 at most
 * for k_small_ok's planes, 64 for k_small_strided_ok's, and flipped their
 * input's, up to 324) in chunks of this many. */
enum { K_SMALL_PIX = 64 };

/* Lays out rows of Pi floats as columns: for r < Rp (rows past R are
 * zeros) and each of nc channels c, the row src + r * rs + c * Pi goes to
 * dst + (r / nr) * ts + c * cs + (r % nr) + q * qs, q < Pi. A tile's rows
 * of one channel are copied whole (each a line or more) into a buffer,
 * then written a pixel at a time, nr floats in order. Gathering a column at
 * a time read every line of the input once per pixel, from L2 (VGG16's 4x4
 * input: 1.2 ms of a 50 ms call, which each thread repeats), and the rows
 * nr images apart are 32 KB apart there, one L1 set. */
static inline void k_small_layout(const float *restrict src, float *restrict dst, int R, int Rp, int nc, int Pi,
                                  int nr, long ts, long qs, long cs, long rs)
{
    float buf[32 * 64];   /* nr <= 32 rows of 64 pixels at a time */
    for (int r0 = 0; r0 < Rp; r0 += nr)
        for (int c = 0; c < nc; c++)
            for (int q0 = 0; q0 < Pi; q0 += 64) {
                int nq = k_min(64, Pi - q0);
                for (int j = 0; j < nr; j++)
                    for (int q = 0; q < nq; q++)
                        buf[j * 64 + q] = r0 + j < R ? src[(long)(r0 + j) * rs + (long)c * Pi + q0 + q] : 0.0f;
                float *d = dst + (r0 / nr) * ts + c * cs + q0 * qs;
                for (int q = 0; q < nq; q++)
                    for (int j = 0; j < nr; j++)
                        d[q * qs + j] = buf[j * 64 + q];
            }
}

/* The conv's pairs for one pixel, in the order its sums take them: the
 * taps t = r * S + s in order, each with the other plane's pixel. Forward:
 * output pixel p's taps, each reading input pixel q = ih * W + iw, ih =
 * oh * stride + r - pad. Flipped (the data gradient): input pixel q's
 * taps, each with the output pixel p that reads q through it. Their count. */
static inline int k_small_pairs(int flip, int pix, int H, int W, int R, int S, int stride, int pad, int OH, int OW,
                                int *t, int *other)
{
    int n = 0;
    for (int r = 0; r < R; r++)
        for (int s = 0; s < S; s++) {
            if (!flip) {
                int ih = pix / OW * stride + r - pad, iw = pix % OW * stride + s - pad;
                if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                    t[n] = r * S + s, other[n] = ih * W + iw, n++;
            } else {
                int oh = pix / W + pad - r, ow = pix % W + pad - s;   /* oh * stride = ih + pad - r */
                if (oh >= 0 && ow >= 0 && oh % stride == 0 && ow % stride == 0 && oh / stride < OH &&
                    ow / stride < OW)
                    t[n] = r * S + s, other[n] = oh / stride * OW + ow / stride, n++;
            }
        }
    return n;
}

#endif
