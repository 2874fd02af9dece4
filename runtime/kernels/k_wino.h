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

/* The zero-padded rows a transform reads, in a plane filled channel after
 * channel. What is padding (the columns left of `shift` and past the
 * input's W, the rows outside the input) is the same for every channel, and
 * a channel's rows never write it: so a call zeroes the plane's `rows` x `n`
 * once (k_wino_plane_zero) and each channel copies in only its input's rows
 * (k_wino_plane_row). Zeroing each row's padding per channel cost ~2.5% of a
 * SimCNN training step, in calls of memset of 8 to 192 bytes. */
static inline void k_wino_plane_zero(float *restrict d, long PWp, int rows, int n)
{
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < n; j++)
            d[(long)i * PWp + j] = 0.0f;
}

/* d[shift + j] = src[j], for the j < W that fit in the row's n columns. */
static inline void k_wino_plane_row(float *restrict d, const float *restrict src, int shift, int W, int n)
{
    int e = shift + W < n ? W : n - shift;
    for (int j = 0; j < e; j++)
        d[shift + j] = src[j];
}

/* From one xi's packed U (rows x cols floats) to the next: a cache line
 * more than their size, as V's and M's planes. Planes a whole number of
 * pages apart share one L1 set, and the weight transform stores to all of
 * them in turn: on Zen 1 that made it ~600 cycles a (k, c) pair, as long as
 * the whole conv of one image at 14x14 with F(4x4). */
static inline long k_wino_ustride(long n) { return k_rup(n, 16) + 16; }

/* The strips of the transforms (k_wino_strip in k_wino.c, F(2x2); k_w4_strip
 * in k_wino4.c, F(4x4)): the tiles of `nrows` tile rows of TW tiles, each
 * tile `step` columns from the last (its output size) and reading
 * step + 2, through a separable transform `tf` of `nout` outputs, into the
 * nout x nout planes of dst (plane stride xs; tile tc of tile row rr at
 * column rr TW + tc). Down the columns first: tile row rr's `rows` padded
 * rows, from plane row step rr (row stride PWp, the QW columns its tiles
 * read), into the strips s (nout rows, stride sl) at step rr TW, so that
 * tile L's columns start at step L whatever its tile row. Then along the
 * strips 16 tiles at once (`deal` spreads a tile's nout columns over
 * lanes), a chunk taking tiles of several tile rows: with 4 tiles a row,
 * one chunk a tile row would leave 12 of its 16 lanes idle. tf and deal
 * are constants at every call, so they inline; and it is inlined itself
 * (always_inline), so that clang, which unrolls these kernels' loops when
 * it makes the bitcode, sees rows, nout and step as constants (taken as a
 * call, its loops stayed rolled: F(4x4)'s kernels ran 10-15% slower).
 *
 * A tile row's last tile reads ov = nout - step columns past step TW (2 for
 * 3x3 kernels, 4 for F(2x2, 5x5), whose last two tiles read past it), where
 * the strip holds the next tile row's first ov: the column pass writes
 * whole vectors and the next tile row overwrites them. With `over` (the
 * input transforms, whose tiles overlap), they are kept first: a tile's
 * element j >= step (deal's output j) that lies past step TW at the tile's
 * index in over's row ov i + j - step (stride ol), and the lanes of such
 * tiles take it from there. Each tile's values are those of one tile row at
 * a time, to the bit. */
__attribute__((always_inline)) static inline void
k_wino_strips(const float *restrict plane, long PWp, int rows, int nout, int step, int TW, int nrows, int QW,
              void (*tf)(const k_v16 *, k_v16 *), void (*deal)(const float *, k_v16 *), float *restrict s, long sl,
              float *restrict over, long ol, float *restrict dst, long xs)
{
    int nt = nrows * TW, ov = nout - step;
    for (int rr = 0; rr < nrows; rr++) {
        const float *r = plane + (long)step * rr * PWp;
        float *t = s + (long)step * rr * TW;
        for (int q = 0; q < QW; q += 16) { /* down the columns */
            k_v16 a[6], z[6];
            for (int i = 0; i < rows; i++)
                __builtin_memcpy(&a[i], r + (long)i * PWp + q, sizeof a[i]);
            tf(a, z);
            for (int i = 0; i < nout; i++)
                __builtin_memcpy(t + (long)i * sl + q, &z[i], sizeof z[i]);
        }
        if (over)
            for (int i = 0; i < nout; i++)
                for (int j = step; j < nout; j++) /* the tiles tc >= TW - j / step read element j past */
                    for (int tc = TW - j / step > 0 ? TW - j / step : 0; tc < TW; tc++)
                        over[(ov * i + j - step) * ol + rr * TW + tc] = t[i * sl + step * tc + j];
    }
    int tc0[16]; /* each lane's tile column */
    for (int l = 0; l < 16; l++)
        tc0[l] = l % TW;
    k_i16 tc, lstep = (k_i16){ 0 } + 16 % TW, tw = (k_i16){ 0 } + TW;
    __builtin_memcpy(&tc, tc0, sizeof tc);
    for (int L0 = 0; L0 < nt; L0 += 16) { /* then along the strips */
        for (int i = 0; i < nout; i++) {
            k_v16 q[6], z[6];
            deal(s + (long)i * sl + (long)step * L0, q);
            if (over)
                for (int j = step; j < nout; j++) {
                    k_i16 past = tc >= TW - j / step;
                    k_v16 o;
                    __builtin_memcpy(&o, over + (ov * i + j - step) * ol + L0, sizeof o);
                    q[j] = (k_v16)((past & (k_i16)o) | (~past & (k_i16)q[j]));
                }
            tf(q, z);
            for (int j = 0; j < nout; j++)
                __builtin_memcpy(dst + (nout * i + j) * xs + L0, &z[j], sizeof z[j]);
        }
        tc += lstep;
        tc -= (tc >= tw) & tw;
    }
}

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

/* A part kernel's channels that take part (k_conv2d_wino_part,
 * k_conv2d_wino4_part): the input channels inkeep keeps, cmap[0..*Ca)
 * (input channels it switches off are zeros: a mask did that); the output
 * channels outkeep keeps, kmap[0..*Ka), and those it switches off,
 * zmap[0..*Kz) (multiplied by 0 after the conv). maps: room for C + 2 K
 * ints; without a keep vector, no map (NULL) and every channel. */
static inline void k_wino_maps(const float *restrict inkeep, const float *restrict outkeep, int C, int K,
                               int *restrict maps, int **cmap, int *Ca, int **kmap, int *Ka, int **zmap, int *Kz)
{
    *cmap = NULL, *kmap = NULL, *zmap = maps + C + K, *Ca = C, *Ka = K, *Kz = 0;
    if (inkeep) {
        *cmap = maps, *Ca = 0;
        for (int c = 0; c < C; c++)
            if (inkeep[c] != 0.0f)
                maps[(*Ca)++] = c;
    }
    if (outkeep) {
        *kmap = maps + C, *Ka = 0;
        for (int k = 0; k < K; k++)
            if (outkeep[k] != 0.0f)
                maps[C + (*Ka)++] = k;
            else
                (*zmap)[(*Kz)++] = k;
    }
}

/* What a part kernel reads besides its operands: its mask only while the
 * generators are on (*gen), and U made beforehand (k_conv2d_wino_prep,
 * k_conv2d_wino4_prep) only where every channel takes part: it holds them
 * all, packed as the kernel packs them then. */
static inline void k_wino_part_reads(int C, int K, int Ca, int Ka, const int *gen, const float *restrict *mask,
                                     const float *restrict *pre)
{
    if (!(*mask && *gen))
        *mask = NULL;
    if (Ca < C || Ka < K)
        *pre = NULL;
}

/* Whether mask row mk (K channels) turns off every channel that takes part. */
static inline int k_wino_dead(const float *restrict mk, const int *restrict kmap, int Ka)
{
    for (int ki = 0; ki < Ka; ki++)
        if (mk[kmap ? kmap[ki] : ki] != 0.0f)
            return 0;
    return 1;
}

/* Units [lo, hi) of a conv over N images whose masks turn some images off
 * altogether: those are zeros (per floats each in y), written by the
 * thread whose units hold them. The others are dealt by their rank among
 * the batch's: ranks [L lo / N, L hi / N) of its L to this thread, so that
 * each thread gets as many, in runs of consecutive images (a tile's sums do
 * not depend on the split): run(ctx, a, e) per run [a, e). run is a
 * constant at every call, so it inlines. */
static inline void k_wino_live(const float *restrict mask, const int *restrict kmap, int Ka, int K, int N, int lo,
                               int hi, float *restrict y, long per, void (*run)(void *, long, long), void *ctx)
{
    long live = 0, rank = 0;
    for (int n = 0; n < N; n++)
        live += !k_wino_dead(mask + (long)n * K, kmap, Ka);
    long r0 = live * lo / N, r1 = live * hi / N;
    for (int n = lo; n < hi; n++)
        if (k_wino_dead(mask + (long)n * K, kmap, Ka))
            for (long i = 0; i < per; i++)
                y[(long)n * per + i] = 0.0f;
    for (int a = 0, e; a < N && rank < r1; a = e) {
        e = a + 1;
        if (k_wino_dead(mask + (long)a * K, kmap, Ka))
            continue;
        while (e < N && !k_wino_dead(mask + (long)e * K, kmap, Ka))
            e++;
        long s0 = rank > r0 ? rank : r0, s1 = rank + (e - a) < r1 ? rank + (e - a) : r1;
        if (s0 < s1)
            run(ctx, a + (s0 - rank), a + (s1 - rank));
        rank += e - a;
    }
}

/* Per input channel ci < Ca (channel cmap[ci]) of image x: 1 where it is
 * all zeros (a mask or relu before the conv switched it off). */
static inline void k_wino_zeros(const float *restrict x, const int *restrict cmap, int Ca, long HW,
                                unsigned char *restrict z)
{
    for (int ci = 0; ci < Ca; ci++) {
        const float *p = x + (cmap ? cmap[ci] : ci) * HW;
        long i = 0; /* a channel that is not all zeros mostly shows it at once */
        while (i < HW && p[i] == 0.0f)
            i++;
        z[ci] = i == HW;
    }
}

/* Per column tile q of a block (NR columns of its first `cols`, whose runs
 * of one image start at columns c0[0..nr)) the input channels that are not
 * zeros in all of its images: lists + q * Ca, lens[q] of them. Whether
 * any tile leaves a channel out. */
static inline int k_wino_lists(const unsigned char *restrict zero, const int *restrict c0, int nruns, long cols,
                               int Ca, int nr, int qb, int *restrict lists, int *restrict lens)
{
    int fewer = 0;
    for (int q = 0, r0 = 0; q * nr < qb; q++) {
        long q0 = (long)q * nr, q1 = q0 + nr < cols ? q0 + nr : cols;
        while (r0 + 1 < nruns && c0[r0 + 1] <= q0)
            r0++;
        int n = 0;
        for (int ci = 0; ci < Ca; ci++) {
            int live = 0;
            for (int r = r0; r < nruns && c0[r] < q1 && !live; r++)
                live = !zero[(long)r * Ca + ci];
            if (live)
                lists[(long)q * Ca + n++] = ci;
        }
        lens[q] = n;
        fewer |= n < Ca;
    }
    return fewer;
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

/* acc[xi][k][c] (Kp x Cp per xi, Cp = C rounded up to dot tiles) += sum
 * over the qb columns of Z row (k, xi) times V row (c, xi), for the input
 * channels c in [ca, cb) (ca a multiple of K_DOT_NR: k_bwdw_unit) and the
 * output channels k in [ka, kb) (ka a multiple of the dot tile's rows):
 * per xi a GEMM whose inner dimension is the tiles, in the dot tiles of
 * k_tile.h. v holds channel ca's rows, z channel ka's (a block of channels:
 * K_WINO_WBLOCK); rows past cb or kb read `zero`. */
static inline void k_wino_dots(int simd, int nx, int C, int ca, int cb, int ka, int kb, int Kp,
                               const float *restrict v, long vxs, long vcs, const float *restrict z, long zxs,
                               long zks, const float *restrict zero, int qb, float *restrict acc)
{
    int vl = simd >= 16 ? 16 : 8, mrd = k_dot_mr(simd), Cp = (int)k_rup(C, K_DOT_NR);
    K_PRAGMA(GCC unroll 1)
    for (int xi = 0; xi < nx; xi++)
        for (int c0 = ca; c0 < cb; c0 += K_DOT_NR) {
            const float *bp[K_DOT_NR];
            K_UNROLL for (int j = 0; j < K_DOT_NR; j++)
                bp[j] = c0 + j < cb ? v + xi * vxs + (long)(c0 - ca + j) * vcs : zero;
            for (int k0 = ka; k0 < kb; k0 += mrd) {
                const float *ap[4] = { NULL };
                float out[16];
                K_UNROLL for (int i = 0; i < mrd; i++)
                    ap[i] = k0 + i < kb ? z + xi * zxs + (long)(k0 - ka + i) * zks : zero;
                k_dot(simd, qb / vl, ap, bp, out);
                float *a = acc + ((long)xi * Kp + k0) * Cp + c0;
                K_UNROLL for (int i = 0; i < mrd; i++)
                    K_UNROLL for (int j = 0; j < K_DOT_NR; j++)
                        a[(long)i * Cp + j] += out[i * K_DOT_NR + j];
            }
        }
}

/* The weight gradients transform and multiply the channels in blocks of
 * at most K_WINO_WBLOCK input and as many output channels, over blocks of
 * columns (tiles) chosen for them (k_wino_wcols), so that a block's V and
 * M stay in L2 and one xi's rows of them in L1 while the dot tiles read
 * them. With all of C and K in a block (VGG16's 8x8 stage: 512 channels,
 * 512 columns, 17 MB) the dots read V and M from L3, and on two threads
 * that weight gradient ran hardly faster than on one (37-45 ms a call
 * against 26 now, 2 threads of a Sapphire Rapids); with SimCNN's 32 and
 * 64 channels, blocks of 227 columns (1 MB) ran the transforms at half
 * their speed in L2 (32->32 at 28x28: 190 GFLOP/s, now 205-220). A block
 * of input channels transforms its output channels' dy again (a few
 * percent of the GEMMs from 64 channels a side). The blocks depend on the
 * shape only, so the sums do not on the threads. */
enum { K_WINO_WBLOCK = 32 };

/* Columns of a weight gradient's block for nx positions and blocks of cb
 * input and kb output channels: V and M in ~1.2 MB, at least 128 (the dot
 * tiles end each block in a horizontal sum). */
static inline long k_wino_wcols(int nx, int cb, int kb)
{
    long cols = 294912L / ((long)nx * (cb + kb));
    return cols < 128 ? 128 : cols;
}

/* A Winograd weight gradient's unit u (k_bwdw_unit), its columns of acc
 * (rows rows of Cp = C rounded up to dot tiles, the last part's padding
 * columns too) set to zeros. */
static inline void k_wino_bwdw_unit(int u, int N, int G, int C, int CS, long rows, float *restrict acc, int *ch,
                                    int *n0, int *n1, int *c0, int *c1)
{
    int Cp = (int)k_rup(C, K_DOT_NR);
    k_bwdw_unit(u, N, G, C, CS, ch, n0, n1, c0, c1);
    for (long r = 0; r < rows; r++)
        for (int c = *c0; c < (*c1 == C ? Cp : *c1); c++)
            acc[r * Cp + c] = 0.0f;
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
