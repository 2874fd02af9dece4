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

/* An 8x8 block of floats transposed in registers: r[j][q] becomes r[q][j]
 * (pairs, then quads, then halves exchanged: 24 shuffles). */
static inline void k_tr8x8(k_v8 r[8])
{
    k_v8 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int i = 0; i < 8; i += 4)
        for (int k = 0; k < 2; k++) {
            u[i + k] = __builtin_shufflevector(t[i + k], t[i + k + 2], 0, 1, 8, 9, 4, 5, 12, 13);
            u[i + k + 2] = __builtin_shufflevector(t[i + k], t[i + k + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        }
    /* u[0..3] hold rows 0-3's columns (0 4, 2 6, 1 5, 3 7 in that order of
     * pairs), u[4..7] rows 4-7's: halves joined give the columns in order */
    static const int col[4] = { 0, 2, 1, 3 };
    for (int q = 0; q < 4; q++) {
        r[q] = __builtin_shufflevector(u[col[q]], u[col[q] + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        r[q + 4] = __builtin_shufflevector(u[col[q]], u[col[q] + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
}

/* Lays out rows of Pi floats as columns: for r < Rp (rows past R are
 * zeros) and each of nc channels c, the row src + r * rs + c * Pi goes to
 * dst + (r / nr) * ts + c * cs + (r % nr) + q * qs, q < Pi. Where nr is a
 * multiple of 8, blocks of 8 rows by 8 pixels go through registers
 * (k_tr8x8; a block's missing rows and pixels as zeros, only its pixels
 * stored). In a harness (Zen 4) that ran 1.4x the scalar copy at 512
 * channels of 4x4, 2x and more with tiles of 24 (AVX2) or part empty, and
 * level where the input comes from L3 (256 channels of 8x8, whose ops ran
 * 3% faster). Else a tile's rows of one channel are copied whole into a
 * buffer, then written a pixel at a time, nr floats in order. Gathering a
 * column at a time read every line of the input once per pixel, from L2
 * (VGG16's 4x4 input: 1.2 ms of a 50 ms call, which each thread repeats),
 * and the rows nr images apart are 32 KB apart there, one L1 set. Only
 * floats move: the bits are the input's. */
static inline void k_small_layout(const float *restrict src, float *restrict dst, int R, int Rp, int nc, int Pi,
                                  int nr, long ts, long qs, long cs, long rs)
{
    if (nr % 8 == 0) {
        /* a tile's 8-row blocks innermost: each pixel's run of nr floats
         * (lines of the output) is written whole before the next; with the
         * blocks outermost each line was written in parts, a tile (2 MB at
         * 256 channels of 8x8) apart in time, and no faster than scalar */
        for (int r0 = 0; r0 < Rp; r0 += nr)
            for (int c = 0; c < nc; c++) {
                float *d = dst + (r0 / nr) * ts + c * cs;
                const float *s = src + (long)r0 * rs + (long)c * Pi;
                for (int q0 = 0; q0 < Pi; q0 += 8) {
                    int nq = k_min(8, Pi - q0);
                    for (int j0 = 0; j0 < nr; j0 += 8) {
                        int vr = k_min(8, k_max(0, R - r0 - j0));   /* rows of the block that exist */
                        k_v8 v[8];
                        for (int j = 0; j < 8; j++) {
                            const float *row = s + (long)(j0 + j) * rs + q0;
                            v[j] = (k_v8){ 0 };
                            if (j < vr && nq == 8)
                                __builtin_memcpy(&v[j], row, sizeof(k_v8));
                            else if (j < vr)
                                for (int q = 0; q < nq; q++)
                                    v[j][q] = row[q];
                        }
                        k_tr8x8(v);
                        for (int q = 0; q < nq; q++)
                            __builtin_memcpy(d + (long)(q0 + q) * qs + j0, &v[q], sizeof(k_v8));
                    }
                }
            }
        return;
    }
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
