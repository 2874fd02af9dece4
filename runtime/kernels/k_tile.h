/* Register-tiled micro-kernels shared by the conv and linear kernels.
 *
 * Written with GCC/clang vector extensions: under the JIT a 16-float vector
 * is one zmm register (AVX-512) and an 8-float one a ymm register (AVX2);
 * the generic native build splits them into SSE registers, which is slow but
 * computes the same. Only pointers cross function boundaries, because a
 * vector passed by value changes the calling convention with the vector
 * width (and GCC warns about it). The loops over a tile's rows and columns
 * are unrolled by pragma, so the accumulators live in registers even in the
 * bitcode compiled with -fno-unroll-loops.
 *
 * Two shapes of tile:
 *  - "op" (outer product): C[MR][NR] = A B over an inner dimension kin, A
 *    packed as [kin][MR] (one broadcast per row), B rows of NR floats with a
 *    row stride. Vectors run along C's columns, so no horizontal sums.
 *  - "dot": MR x NR dot products of rows that are contiguous in memory;
 *    vectors run along the inner dimension and a shuffle network reduces the
 *    MR*NR = V accumulators into one vector of sums at the end.
 * Each tile always sums in the same order, whatever surrounds it, which is
 * what keeps a result independent of how the work was split. */
#ifndef K_TILE_H
#define K_TILE_H
#include <stddef.h>

typedef float k_v16 __attribute__((vector_size(64)));
typedef float k_v8 __attribute__((vector_size(32)));
typedef int k_i8 __attribute__((vector_size(32))); /* a k_v8 comparison */
typedef int k_i16 __attribute__((vector_size(64))); /* a k_v16 comparison: all ones where true */

/* The k_v16 v where mask (a comparison) holds, else 0: a relu's gradient, a
 * window's winner. */
#define K_WHERE16(mask, v) ((k_v16)((k_i16)(mask) & (k_i16)(v)))
/* The even and the odd lanes of the 32 floats of a then b (2x2 windows and
 * Winograd tiles deal a row this way), and back: a and b interleaved, the
 * first and the second 16 of the 32. */
#define K_EVEN16(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#define K_ODD16(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)
#define K_ZIP_LO16(a, b) __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
#define K_ZIP_HI16(a, b) __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)

#define K_PRAGMA(x) _Pragma(#x)
#define K_UNROLL K_PRAGMA(GCC unroll 64)

static inline long k_rup(long a, long b) { return (a + b - 1) / b * b; }
static inline int k_min(int a, int b) { return a < b ? a : b; }
static inline int k_max(int a, int b) { return a > b ? a : b; }

/* A block's run of rows inside one image, from flattened row u (image *
 * rows + row) to before end: image *n, rows [*oh, *oh + return value). The
 * conv kernels' output rows, Winograd's tile rows. */
static inline int k_blk_run(long u, long end, int OH, long *n, int *oh)
{
    *n = u / OH;
    *oh = (int)(u - *n * OH);
    return (int)(end - u < OH - *oh ? end - u : OH - *oh);
}

/* C[MR][NV*V] = bias[i] + sum over k < kin of a[k][i] * b[k][j] (no bias
 * when bias is NULL); c has row stride ldc; row k of B at ROW (an
 * expression of k), its vectors BVS floats apart, and C's CVS apart
 * (stored in order: where they overlap, the later one's lanes stay). */
#define K_OP_BODY(VT, V, MR, NV, ROW) K_OP_BODY_VS(VT, V, MR, NV, ROW, V, V)
#define K_OP_BODY_VS(VT, V, MR, NV, ROW, BVS, CVS)                                                                 \
    K_OP_BODY_FROM(VT, MR, NV, ROW, BVS, CVS, acc[i][j] = (bias ? bias[i] : 0.0f) - (VT){ 0 })
/* The sums start from INIT, a statement that sets acc[i][j]. */
#define K_OP_BODY_FROM(VT, MR, NV, ROW, BVS, CVS, INIT)                                                            \
    {                                                                                                              \
        VT acc[MR][NV];                                                                                            \
        K_UNROLL for (int i = 0; i < MR; i++) K_UNROLL for (int j = 0; j < NV; j++) INIT;                         \
        for (int k = 0; k < kin; k++) {                                                                            \
            VT bv[NV];                                                                                             \
            const float *br = ROW;                                                                                 \
            K_UNROLL for (int j = 0; j < NV; j++) __builtin_memcpy(&bv[j], br + j * (BVS), sizeof(VT));            \
            K_UNROLL for (int i = 0; i < MR; i++)                                                                  \
            {                                                                                                      \
                VT av = a[(long)k * MR + i] - (VT){ 0 }; /* a broadcast: x - 0 is x, even for -0 */               \
                K_UNROLL for (int j = 0; j < NV; j++) acc[i][j] += av * bv[j];                                     \
            }                                                                                                      \
        }                                                                                                          \
        K_UNROLL for (int i = 0; i < MR; i++) K_UNROLL for (int j = 0; j < NV; j++)                                \
            __builtin_memcpy(c + (long)i * ldc + j * (CVS), &acc[i][j], sizeof(VT));                               \
    }

/* B's rows ldb floats apart. */
#define K_OP_KERNEL(NAME, VT, V, MR, NV)                                                                           \
    static inline void NAME(int kin, const float *restrict a, const float *restrict b, long ldb,                  \
                            const float *restrict bias, float *restrict c, long ldc)                               \
        K_OP_BODY(VT, V, MR, NV, b + (long)k * ldb)

/* AVX-512: 8x32, 16 zmm accumulators, 2 loads and 8 broadcasts (folded
 * into the FMAs) per 16 FMAs. 16x16 (1 load, 16 broadcasts) had measured a
 * little faster on Zen 4 and pads columns less; on an AVX-512 Xeon (model
 * 167) 8x32 made SimCNN's training 3% faster, VGG16's 6%, and inference
 * 6-17% (Winograd's GEMMs, the direct conv's, the linear layers'). A tile
 * sums in the same order whatever its shape, but the Winograd weight
 * gradients add up blocks of tiles whose size counts rows of register
 * tiles: where K is not a multiple of 16 their blocks end elsewhere than
 * with 16x16 and round differently (SimCNN's bits are the same; its
 * reused module's 17 and 56 channels are not). AVX2 (16 ymm registers):
 * 4x24, 12 accumulators + 3 B vectors + 1 broadcast. */
K_OP_KERNEL(k_op_8x32, k_v16, 16, 8, 2)
K_OP_KERNEL(k_op_4x24, k_v8, 8, 4, 3)
K_OP_KERNEL(k_op_4x8, k_v8, 8, 4, 1)

/* k_op that goes on from the sums already in C: acc = C's tile, then the
 * same += over k < kin. A sum taken over the taps in chunks, each chunk's
 * sums stored and loaded back (floats, unchanged), is k_op's over all the
 * taps to the bit: the same chain of multiply-adds in the same order. */
#define K_OP_ACC_KERNEL(NAME, VT, V, MR, NV)                                                                       \
    static inline void NAME(int kin, const float *restrict a, const float *restrict b, long ldb, float *restrict c, \
                            long ldc)                                                                              \
        K_OP_BODY_FROM(VT, MR, NV, b + (long)k * ldb, V, V,                                                        \
                       __builtin_memcpy(&acc[i][j], c + (long)i * ldc + j * V, sizeof(VT)))

K_OP_ACC_KERNEL(k_op_acc_8x32, k_v16, 16, 8, 2)
K_OP_ACC_KERNEL(k_op_acc_4x24, k_v8, 8, 4, 3)

static inline int k_op_mr(int simd) { return simd >= 16 ? 8 : 4; }
static inline int k_op_nr(int simd) { return simd >= 16 ? 32 : 24; }

static inline void k_op(int simd, int kin, const float *restrict a, const float *restrict b, long ldb,
                        const float *restrict bias, float *restrict c, long ldc)
{
    if (simd >= 16)
        k_op_8x32(kin, a, b, ldb, bias, c, ldc);
    else
        k_op_4x24(kin, a, b, ldb, bias, c, ldc);
}

static inline void k_op_acc(int simd, int kin, const float *restrict a, const float *restrict b, long ldb,
                            float *restrict c, long ldc)
{
    if (simd >= 16)
        k_op_acc_8x32(kin, a, b, ldb, c, ldc);
    else
        k_op_acc_4x24(kin, a, b, ldb, c, ldc);
}

/* k_op with row k of B at b + boff[k]: B's rows anywhere (k_conv_rows: a
 * conv's taps as shifts of its padded input rows, no im2col), summed in
 * k_op's order, so that C is k_op's to the bit over the same rows. */
#define K_OP_ROWS_KERNEL(NAME, VT, V, MR, NV)                                                                      \
    static inline void NAME(int kin, const float *restrict a, const float *restrict b, const int *restrict boff,  \
                            const float *restrict bias, float *restrict c, long ldc)                               \
        K_OP_BODY(VT, V, MR, NV, b + boff[k])

/* 16-float vectors only (k_rows_ok in k_conv.h says why) */
K_OP_ROWS_KERNEL(k_op_rows_8x32, k_v16, 16, 8, 2)
K_OP_ROWS_KERNEL(k_op_rows_8x16, k_v16, 16, 8, 1)

/* k_op_rows over two output rows of 16 floats or fewer, a vector each:
 * B's second vector of row k one input row (rs floats) after its first,
 * C's cs floats after its first (the row's width: the first vector's lanes
 * past its row are the second's, stored after them). The 8x32 tile of
 * k_op_8x32 where one row a tile left half its accumulators idle (8x16: 8
 * broadcasts per 8 FMAs), the same sums to the bit. */
static inline void k_op_rows2_8x32(int kin, const float *restrict a, const float *restrict b,
                                   const int *restrict boff, long rs, const float *restrict bias, float *c, long ldc,
                                   long cs)
    K_OP_BODY_VS(k_v16, 16, 8, 2, b + boff[k], rs, cs)

/* k_op_rows over nv (1 or 2) vectors of columns. */
static inline void k_op_rows(int nv, int kin, const float *restrict a, const float *restrict b,
                             const int *restrict boff, const float *restrict bias, float *restrict c, long ldc)
{
    if (nv >= 2)
        k_op_rows_8x32(kin, a, b, boff, bias, c, ldc);
    else
        k_op_rows_8x16(kin, a, b, boff, bias, c, ldc);
}

/* k_op over the inner indices list[0..n) only, in their order: where the
 * rows of B left out are all zeros, C is k_op's to the bit (a term a * 0
 * adds 0, and a sum that starts at +0 never turns -0). No bias. */
#define K_OP_LIST_KERNEL(NAME, VT, V, MR, NV)                                                                      \
    static inline void NAME(int n, const int *restrict list, const float *restrict a, const float *restrict b,     \
                            long ldb, float *restrict c, long ldc)                                                 \
    {                                                                                                              \
        VT acc[MR][NV];                                                                                            \
        K_UNROLL for (int i = 0; i < MR; i++) K_UNROLL for (int j = 0; j < NV; j++) acc[i][j] = 0.0f - (VT){ 0 }; \
        for (int t = 0; t < n; t++) {                                                                              \
            long k = list[t];                                                                                      \
            VT bv[NV];                                                                                             \
            K_UNROLL for (int j = 0; j < NV; j++) __builtin_memcpy(&bv[j], b + k * ldb + j * V, sizeof(VT));        \
            K_UNROLL for (int i = 0; i < MR; i++)                                                                  \
            {                                                                                                      \
                VT av = a[k * MR + i] - (VT){ 0 };                                                                 \
                K_UNROLL for (int j = 0; j < NV; j++) acc[i][j] += av * bv[j];                                     \
            }                                                                                                      \
        }                                                                                                          \
        K_UNROLL for (int i = 0; i < MR; i++) K_UNROLL for (int j = 0; j < NV; j++)                                \
            __builtin_memcpy(c + (long)i * ldc + j * V, &acc[i][j], sizeof(VT));                                   \
    }

K_OP_LIST_KERNEL(k_op_list_8x32, k_v16, 16, 8, 2)
K_OP_LIST_KERNEL(k_op_list_4x24, k_v8, 8, 4, 3)
K_OP_LIST_KERNEL(k_op_list_4x8, k_v8, 8, 4, 1)

/* A 4x24 tile of which only the first 8 columns are wanted, with 8-float
 * vectors: a 4x8 tile, the same sums (n < 0: k_op_4x8's over kin, else
 * k_op_list_4x8's over list[0..n)); the other 16 columns +0, what k_op_4x24
 * makes of the zero columns of B there. SimCNN's 14x14 image has 49 tiles
 * of F(2x2): a third 4x24 tile for one of them, a 4x8 one now, 16-20%
 * faster GEMMs (Zen 1, 64 and 30 channels in). Two 4x8 tiles for 16 columns
 * were slower than the 4x24 one: each broadcasts A again. */
static inline void k_op_4x8_of_24(int n, const int *restrict list, int kin, const float *restrict a,
                                  const float *restrict b, long ldb, float *restrict c, long ldc)
{
    if (n < 0)
        k_op_4x8(kin, a, b, ldb, NULL, c, ldc);
    else
        k_op_list_4x8(n, list, a, b, ldb, c, ldc);
    for (int i = 0; i < 4; i++)
        for (int q = 8; q < 24; q++)
            c[(long)i * ldc + q] = 0.0f;
}

/* Packs A[m][k] = src[m*sm + k*sk] (m < M, k < kin) for k_op: tiles of MR
 * rows, each [kin][MR], rows past M zero; each row times scale[m] when
 * scale is not NULL (a batchnorm folded into the weights). */
static inline void k_op_pack_scaled(int simd, const float *restrict src, long sm, long sk, int M, int kin,
                                    const float *restrict scale, float *restrict dst)
{
    int mr = k_op_mr(simd);
    for (int m0 = 0; m0 < M; m0 += mr)
        for (int k = 0; k < kin; k++)
            for (int i = 0; i < mr; i++)
                *dst++ = m0 + i >= M ? 0.0f
                         : scale     ? src[(long)(m0 + i) * sm + (long)k * sk] * scale[m0 + i]
                                     : src[(long)(m0 + i) * sm + (long)k * sk];
}

static inline void k_op_pack(int simd, const float *restrict src, long sm, long sk, int M, int kin,
                             float *restrict dst)
{
    k_op_pack_scaled(simd, src, sm, sk, M, kin, NULL, dst);
}

/* C[m][q] for m < k_rup(M, MR), q < qb (a multiple of NR): the packed A
 * times B[kin][..] (row stride ldb), whose columns from cols on are zeros.
 * Column tiles outside, so a strip of B stays in cache while every row tile
 * of A passes over it. */
static inline void k_op_gemm(int simd, int M, int kin, const float *restrict apack, const float *restrict b, long ldb,
                             int qb, int cols, float *restrict c, long ldc)
{
    int mr = k_op_mr(simd), nr = k_op_nr(simd);
    for (int q0 = 0; q0 < qb; q0 += nr)
        for (int m0 = 0; m0 < M; m0 += mr)
            if (simd < 16 && q0 + nr - cols >= 16) /* 16 zero columns or more: the last tile narrower */
                k_op_4x8_of_24(-1, NULL, kin, apack + (long)m0 * kin, b + q0, ldb, c + (long)m0 * ldc + q0, ldc);
            else
                k_op(simd, kin, apack + (long)m0 * kin, b + q0, ldb, NULL, c + (long)m0 * ldc + q0, ldc);
}

/* k_op_gemm where column tile q (of NR columns) sums over the inner indices
 * lists + q * ldl, lens[q] of them, only: the rows of B it leaves out are
 * zeros in that tile's columns. */
static inline void k_op_gemm_lists(int simd, int M, int kin, const float *restrict apack, const float *restrict b,
                                   long ldb, int qb, int cols, float *restrict c, long ldc, const int *restrict lists,
                                   long ldl, const int *restrict lens)
{
    int mr = k_op_mr(simd), nr = k_op_nr(simd);
    for (int q0 = 0, q = 0; q0 < qb; q0 += nr, q++)
        for (int m0 = 0; m0 < M; m0 += mr)
            if (simd >= 16)
                k_op_list_8x32(lens[q], lists + q * ldl, apack + (long)m0 * kin, b + q0, ldb, c + (long)m0 * ldc + q0,
                               ldc);
            else if (q0 + nr - cols >= 16)
                k_op_4x8_of_24(lens[q], lists + q * ldl, kin, apack + (long)m0 * kin, b + q0, ldb,
                               c + (long)m0 * ldc + q0, ldc);
            else
                k_op_list_4x24(lens[q], lists + q * ldl, apack + (long)m0 * kin, b + q0, ldb, c + (long)m0 * ldc + q0,
                               ldc);
}

/* Lane j of the result is the sum of the lanes of a[j], in a fixed tree. */
static inline void k_hsum16(const k_v16 *a, float *out)
{
    k_v16 b[8], c[4], d[2], e;
    K_UNROLL for (int i = 0; i < 8; i++) b[i] =
        __builtin_shufflevector(a[2 * i], a[2 * i + 1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
        __builtin_shufflevector(a[2 * i], a[2 * i + 1], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30,
                                31);
    K_UNROLL for (int i = 0; i < 4; i++) c[i] =
        __builtin_shufflevector(b[2 * i], b[2 * i + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
        __builtin_shufflevector(b[2 * i], b[2 * i + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    K_UNROLL for (int i = 0; i < 2; i++) d[i] =
        __builtin_shufflevector(c[2 * i], c[2 * i + 1], 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29) +
        __builtin_shufflevector(c[2 * i], c[2 * i + 1], 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
    e = __builtin_shufflevector(d[0], d[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) +
        __builtin_shufflevector(d[0], d[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __builtin_memcpy(out, &e, sizeof e);
}

static inline void k_hsum8(const k_v8 *a, float *out)
{
    k_v8 b[4], c[2], e;
    K_UNROLL for (int i = 0; i < 4; i++) b[i] =
        __builtin_shufflevector(a[2 * i], a[2 * i + 1], 0, 1, 2, 3, 8, 9, 10, 11) +
        __builtin_shufflevector(a[2 * i], a[2 * i + 1], 4, 5, 6, 7, 12, 13, 14, 15);
    K_UNROLL for (int i = 0; i < 2; i++) c[i] =
        __builtin_shufflevector(b[2 * i], b[2 * i + 1], 0, 1, 4, 5, 8, 9, 12, 13) +
        __builtin_shufflevector(b[2 * i], b[2 * i + 1], 2, 3, 6, 7, 10, 11, 14, 15);
    e = __builtin_shufflevector(c[0], c[1], 0, 2, 4, 6, 8, 10, 12, 14) +
        __builtin_shufflevector(c[0], c[1], 1, 3, 5, 7, 9, 11, 13, 15);
    __builtin_memcpy(out, &e, sizeof e);
}

/* out[i*NR + j] = sum over nt rows t of the first nv vectors of rows a[i]
 * and b[j], row t of each at AROW(i, t) and BROW(j, t); the lanes summed
 * across all rows before the one reduction. */
#define K_DOT_BODY(VT, V, MR, NR, HSUM, NT, AROW, BROW)                                                            \
    {                                                                                                              \
        VT acc[MR * NR];                                                                                           \
        K_UNROLL for (int i = 0; i < MR * NR; i++) acc[i] = (VT){ 0 };                                             \
        for (int t = 0; t < NT; t++)                                                                               \
            for (long q = 0; q < (long)nv * V; q += V) {                                                           \
                VT av[MR];                                                                                         \
                K_UNROLL for (int i = 0; i < MR; i++) __builtin_memcpy(&av[i], AROW(i, t) + q, sizeof(VT));        \
                K_UNROLL for (int j = 0; j < NR; j++)                                                              \
                {                                                                                                  \
                    VT bv;                                                                                         \
                    __builtin_memcpy(&bv, BROW(j, t) + q, sizeof(VT));                                             \
                    K_UNROLL for (int i = 0; i < MR; i++) acc[i * NR + j] += av[i] * bv;                           \
                }                                                                                                  \
            }                                                                                                      \
        HSUM(acc, out);                                                                                            \
    }

/* One row each: rows a[i] and b[j]. */
#define K_DOT_A1(i, t) (a[i])
#define K_DOT_B1(j, t) (b[j])
#define K_DOT_KERNEL(NAME, VT, V, MR, NR, HSUM)                                                                    \
    static inline void NAME(int nv, const float *const *a, const float *const *b, float *restrict out)            \
        K_DOT_BODY(VT, V, MR, NR, HSUM, 1, K_DOT_A1, K_DOT_B1)

/* AVX-512: 4x4 = 16 accumulators, 8 loads per 16 FMAs. AVX2: 2x4 = 8. */
K_DOT_KERNEL(k_dot_4x4, k_v16, 16, 4, 4, k_hsum16)
K_DOT_KERNEL(k_dot_2x4, k_v8, 8, 2, 4, k_hsum8)

/* k_dot over nt rows of nv vectors each: row t of a[i] at a[i] + t * as, of
 * b[j] at b[j] + btab[t] (a conv's padded input rows: k_conv2d_bwd_w's
 * rows). */
#define K_DOT_AT(i, t) (a[i] + t * as)
#define K_DOT_BT(j, t) (b[j] + btab[t])
#define K_DOT_ROWS_KERNEL(NAME, VT, V, MR, NR, HSUM)                                                               \
    static inline void NAME(int nt, int nv, const float *const *a, long as, const float *const *b,                \
                            const int *restrict btab, float *restrict out)                                         \
        K_DOT_BODY(VT, V, MR, NR, HSUM, nt, K_DOT_AT, K_DOT_BT)

K_DOT_ROWS_KERNEL(k_dot_rows_4x4, k_v16, 16, 4, 4, k_hsum16)   /* 16-float vectors only, as k_op_rows */

/* A batchnorm on running statistics folded into a conv w x + b, for the
 * output channels o0 + i, i < n: scale[i] = gamma / sqrt(var + eps), which
 * the weights take, and bias[i] = (b - mean) scale + beta; without gamma,
 * scale 1 and bias b (0 without b). Past n, up to npad (a tile's rows past
 * K), scale 1 and bias 0. */
static inline void k_fold_bn(const float *restrict b, const float *restrict gamma, const float *restrict beta,
                             const float *restrict mean, const float *restrict var, float eps, int o0, int n,
                             int npad, float *restrict scale, float *restrict bias)
{
    for (int i = 0; i < npad; i++) {
        scale[i] = gamma && i < n ? gamma[o0 + i] / __builtin_sqrtf(var[o0 + i] + eps) : 1.0f;
        bias[i] = b && i < n ? b[o0 + i] : 0.0f;
        if (gamma && i < n)
            bias[i] = (bias[i] - mean[o0 + i]) * scale[i] + beta[o0 + i];
    }
}

static inline int k_dot_mr(int simd) { return simd >= 16 ? 4 : 2; }
enum { K_DOT_NR = 4 };

/* A weight gradient's unit u of G chunks of N images cut into CS parts
 * each (k_bwdw_splits): its chunk *ch, the chunk's images [*n0, *n1), and
 * its input channels [*c0, *c1) of C, a run of whole dot tiles (K_DOT_NR
 * channels), so that no tile straddles two units. Each sum is one dot
 * tile's whatever the cut: the same bits. */
static inline void k_bwdw_unit(int u, int N, int G, int C, int CS, int *ch, int *n0, int *n1, int *c0, int *c1)
{
    int tiles = (C + K_DOT_NR - 1) / K_DOT_NR, s = u % CS;
    *ch = u / CS;
    *n0 = (int)((long)*ch * N / G), *n1 = (int)((long)(*ch + 1) * N / G);
    *c0 = k_min(C, (int)((long)s * tiles / CS) * K_DOT_NR);
    *c1 = k_min(C, (int)((long)(s + 1) * tiles / CS) * K_DOT_NR);
}

static inline void k_dot(int simd, int nv, const float *const *a, const float *const *b, float *restrict out)
{
    if (simd >= 16)
        k_dot_4x4(nv, a, b, out);
    else
        k_dot_2x4(nv, a, b, out);
}

/* Sums in a fixed order, vectorized without reassociation: 16 lanes over the
 * whole vectors, then the lanes in order, then the rest. */
#define K_SUM16(NAME, ARGS, TERM)                                                                                  \
    static inline float NAME ARGS                                                                                  \
    {                                                                                                              \
        k_v16 acc = { 0 };                                                                                         \
        long i = 0;                                                                                                \
        for (; i + 16 <= n; i += 16) {                                                                             \
            k_v16 a, b;                                                                                            \
            __builtin_memcpy(&a, p + i, sizeof a);                                                                 \
            __builtin_memcpy(&b, p2 + i, sizeof b);                                                                \
            (void)b;                                                                                               \
            acc += TERM;                                                                                           \
        }                                                                                                          \
        float s = 0.0f;                                                                                            \
        if (n >= 16) /* else the lanes are all 0 */                                                                \
            for (int l = 0; l < 16; l++)                                                                           \
                s += acc[l];                                                                                       \
        for (; i < n; i++) {                                                                                       \
            float a = p[i], b = p2[i];                                                                             \
            (void)b;                                                                                               \
            s += TERM;                                                                                             \
        }                                                                                                          \
        return s;                                                                                                  \
    }
/* sum of p[i] (p2 = p: only read, never used) */
K_SUM16(k_sum_, (const float *restrict p, const float *restrict p2, long n), a)
/* sum of (p[i] - m)^2 */
K_SUM16(k_sumsq_dev_, (const float *restrict p, const float *restrict p2, long n, float m), (a - m) * (a - m))
/* sum of p[i] * (p2[i] - m) */
K_SUM16(k_sumdot_dev, (const float *restrict p, const float *restrict p2, long n, float m), a * (b - m))
static inline float k_sum(const float *restrict p, long n) { return k_sum_(p, p, n); }
static inline float k_sumsq_dev(const float *restrict p, long n, float m) { return k_sumsq_dev_(p, p, n, m); }

#endif
