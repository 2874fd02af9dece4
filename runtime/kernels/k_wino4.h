/* What the F(4x4, 3x3) and F(2x2, 5x5) Winograd kernels share (k_wino4.c
 * says what they do): the scratch layout, the input transform, which the
 * forward (k_wino4.c) and the weight gradient (k_wino4_bwd.c) both run,
 * and K_W4_SPEC; the shape rules are in k_wino4_rules.c. */
#ifndef K_WINO4_H
#define K_WINO4_H
#include "k_kernels.h"
#include "k_tile.h"
#include "k_wino.h"

#define K_ROLLED K_PRAGMA(GCC unroll 1)

/* The functions that take the tile and kernel sizes (m and r, in the layout
 * as tm and tr) are inlined into each public kernel, which passes them as
 * literals: clang unrolls the k_wino files' loops when it makes the
 * bitcode (the JIT's O3 runs without the unroller for these kernels), and
 * only loops of constant trip counts, so each kernel's copy must see its m
 * and r there.
 * As called functions, the loops over m stayed rolled and their vectors in
 * memory: F(4x4)'s kernels ran 10-15% slower. */
#define K_W4_SPEC static inline __attribute__((always_inline))

enum { K_W4_NX = 36 }; /* positions of a transformed tile */

/* Tiles of m outputs per row and column of the output (the last one may
 * hang over). */
static inline int k_w4_tiles(int n, int m) { return (n + m - 1) / m; }

/* Columns (tiles) per block: V and M, 36 * (C + K) floats per column, in
 * ~512 KB, as k_wino.c's forward; the weight gradient's (wgrad: C and K a
 * block of its channels) as k_wino_wcols. */
static inline int k_w4_ld(int C, int K, int TW, int simd, int wgrad)
{
    int nr = k_op_nr(simd), mr = k_op_mr(simd);
    long cols = wgrad ? k_wino_wcols(K_W4_NX, C, K) : 8192L * 16 / K_W4_NX / (C + k_rup(K, mr));
    int rows = (int)(cols / TW) > 1 ? (int)(cols / TW) : 1;
    return (int)k_rup((long)rows * TW, nr);
}

/* Scratch, as k_wino.c's: packed U; V and M (rows of ldv floats, 16 more
 * than a block's columns: the transforms store whole vectors), their 36
 * planes a cache line more than their size apart; the zero-padded input
 * rows of one channel (PWp floats each); the strips of their vertical
 * transforms and the overhang columns (k_w4_strip); four output rows of a
 * run of tile rows (k_w4_out); the bias and scale; the part kernel's
 * channel maps and zero channels. */
typedef struct {
    int tm, tr, pad; /* the output tile and kernel sizes: 4 and 3, or 2 and 5; the padding */
    int TH, TW, ld, ldv, Kp, PWp;
    long vxs, mxs; /* from one xi to the next in V and in M */
    long vcs, mks; /* from one channel to the next in V, in M */
    long sl;       /* from one row to the next in the strips and in the output rows */
    long u, v, m, plane, strip, over, rows, bias, scale, maps, zch, runs, lists, end;
    long acc, zero, dbacc, wend; /* the weight gradient's, after end */
    int Kf;                       /* the weight gradient's: all of K rounded up to register tiles */
} KW4Ws;

K_W4_SPEC KW4Ws k_w4_layout(int C, int OH, int OW, int K, int simd, int wgrad, int m, int r, int pad)
{
    KW4Ws g;
    g.tm = m, g.tr = r, g.pad = pad;
    g.TH = k_w4_tiles(OH, m), g.TW = k_w4_tiles(OW, m);
    g.ld = k_w4_ld(C, K, g.TW, simd, wgrad);
    g.ldv = g.ld + 16;
    g.Kp = (int)k_rup(K, k_op_mr(simd));
    g.PWp = (int)k_rup((long)m * g.TW + r - 1, 64) + 16;
    g.vxs = g.mxs = g.ldv;
    g.vcs = g.mks = K_W4_NX * g.ldv + 16;
    g.u = 0;
    g.v = g.u + K_W4_NX * k_wino_ustride((long)g.Kp * C);
    g.m = g.v + C * g.vcs;
    g.plane = g.m + g.Kp * g.mks;
    /* a run of tile rows has at most ld tiles; a strip row holds m floats a
     * tile, the last tile row's overhang (QW <= m TW + r + 14) and the 80
     * floats k_w4_deal reads from a chunk's start (k_w25_deal 48); an
     * output row, m floats a tile and the 16 m a chunk writes */
    g.sl = k_rup((long)m * g.ld + 80, 16) + 16;
    g.strip = g.plane + ((long)m * g.TH + r - 1) * g.PWp;
    g.over = g.strip + 6 * g.sl;
    g.rows = g.over + 6L * (6 - m) * k_rup(g.ld + 16, 16); /* the overhang's 6 - m columns of 6 strip rows */
    g.bias = g.rows + m * g.sl;
    g.scale = g.bias + k_rup(K, 16);
    g.maps = g.scale + k_rup(K, 16); /* k_conv2d_wino4_part's channels, as ints */
    /* its input channels that are zeros, a byte per (run of a block,
     * channel), and per column tile of the GEMMs the channels it sums over
     * (as k_wino.c's) */
    g.zch = g.maps + k_rup(C + 2L * K, 16);
    g.runs = g.zch + k_rup(((long)g.ld + 2) * C, 64) / 4;
    g.lists = g.runs + k_rup((long)g.ld + 2, 16);
    g.end = g.lists + k_rup(((long)g.ld / k_op_nr(simd) + 1) * (C + 1), 16);
    g.acc = g.zero = g.dbacc = g.wend = g.end, g.Kf = g.Kp;
    return g;
}

/* The weight gradient's: V, M and the transforms' room for a block of
 * channels (k_wino_dots), then the sums of all K x C channel pairs. */
K_W4_SPEC KW4Ws k_w4_wlayout(int C, int OH, int OW, int K, int simd, int m, int r, int pad)
{
    KW4Ws g = k_w4_layout(k_min(C, K_WINO_WBLOCK), OH, OW, k_min(K, K_WINO_WBLOCK), simd, 1, m, r, pad);
    g.Kf = (int)k_rup(K, k_op_mr(simd));
    g.acc = g.end;
    g.zero = g.acc + (long)K_W4_NX * g.Kf * k_rup(C, K_DOT_NR);
    g.dbacc = g.zero + g.ldv;
    g.wend = g.dbacc + k_rup(K, 16);
    return g;
}

/* a conv's output size along an input of n with padding pad (stride 1) */
static inline int k_w4_out_size(int n, int r, int pad) { return n + 2 * pad - r + 1; }

K_W4_SPEC long k_w4_ws(int C, int H, int W, int K, int simd, int m, int r, int pad)
{
    int OH = k_w4_out_size(H, r, pad), OW = k_w4_out_size(W, r, pad);
    long a = k_w4_layout(C, OH, OW, K, simd, 0, m, r, pad).end, b = k_w4_wlayout(C, OH, OW, K, simd, m, r, pad).wend;
    return (a > b ? a : b) + 16;
}

/* q[j] = elements 4 l + j of the 80 floats at p, for the 16 lanes l. */
static inline void k_w4_deal(const float *restrict p, k_v16 *q)
{
    k_v16 a0, a1, a2, a3, a4;
    __builtin_memcpy(&a0, p, sizeof a0);
    __builtin_memcpy(&a1, p + 16, sizeof a1);
    __builtin_memcpy(&a2, p + 32, sizeof a2);
    __builtin_memcpy(&a3, p + 48, sizeof a3);
    __builtin_memcpy(&a4, p + 64, sizeof a4);
    k_v16 e01 = K_EVEN16(a0, a1), o01 = K_ODD16(a0, a1), e23 = K_EVEN16(a2, a3), o23 = K_ODD16(a2, a3);
    q[0] = K_EVEN16(e01, e23);
    q[1] = K_EVEN16(o01, o23);
    q[2] = K_ODD16(e01, e23);
    q[3] = K_ODD16(o01, o23);
    q[4] = __builtin_shufflevector(q[0], a4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    q[5] = __builtin_shufflevector(q[1], a4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17);
}

/* q[j] = elements 2 l + j of the 48 floats at p, for the 16 lanes l: the
 * tiles of F(2x2, 5x5), 2 columns apart. */
static inline void k_w25_deal(const float *restrict p, k_v16 *q)
{
    k_v16 a0, a1, a2;
    __builtin_memcpy(&a0, p, sizeof a0);
    __builtin_memcpy(&a1, p + 16, sizeof a1);
    __builtin_memcpy(&a2, p + 32, sizeof a2);
    k_v16 e2 = K_EVEN16(a2, a2), o2 = K_ODD16(a2, a2);
    q[0] = K_EVEN16(a0, a1);
    q[1] = K_ODD16(a0, a1);
    q[2] = __builtin_shufflevector(q[0], e2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    q[3] = __builtin_shufflevector(q[1], o2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    q[4] = __builtin_shufflevector(q[0], e2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17);
    q[5] = __builtin_shufflevector(q[1], o2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17);
}

/* B^T's rows on six vectors (in place, only pointers cross functions). */
static inline void k_w4_bt(const k_v16 *a, k_v16 *z)
{
    z[0] = 4.0f * a[0] - 5.0f * a[2] + a[4];
    z[1] = a[3] + a[4] - 4.0f * (a[1] + a[2]);
    z[2] = a[4] - a[3] + 4.0f * (a[1] - a[2]);
    z[3] = a[4] - a[2] + 2.0f * (a[3] - a[1]);
    z[4] = a[4] - a[2] - 2.0f * (a[3] - a[1]);
    z[5] = 4.0f * a[1] - 5.0f * a[3] + a[5];
}

/* k_wino_strips for F(4x4) and F(2x2, 5x5): m columns from one tile to the
 * next, 6 outputs. The transforms go in as constants of each branch, not
 * picked by a value: the inliner runs before m is folded, and a transform
 * picked by m stayed an indirect call in the loops (F(4x4)'s weight
 * gradient ran at half its speed). */
K_W4_SPEC void k_w4_strip(const float *restrict plane, int rows, void (*tf)(const k_v16 *, k_v16 *),
                           float *restrict s, float *restrict over, const KW4Ws *g, int nrows, int QW,
                           float *restrict dst, long xs)
{
    if (g->tm == 4)
        k_wino_strips(plane, g->PWp, rows, 6, 4, g->TW, nrows, QW, tf, k_w4_deal, s, g->sl, over,
                      k_rup(g->ld + 16, 16), dst, xs);
    else
        k_wino_strips(plane, g->PWp, rows, 6, 2, g->TW, nrows, QW, tf, k_w25_deal, s, g->sl, over,
                      k_rup(g->ld + 16, 16), dst, xs);
}

/* V[xi][c][col0 + (tr - tr0) * TW + tc] = (B^T d B)[xi] for the tile rows
 * [tr0, tr1) of image x (channels of H x W: V row ci is channel cmap[ci],
 * or ci without a map, for ci < Ca), 16 tiles at a time (k_w4_strip); a
 * chunk's lanes past the run's last tile land on the next run's first
 * columns (rewritten when that run comes) or past the block's last. */
K_W4_SPEC void k_w4_in(const float *restrict x, float *restrict v, const KW4Ws *g, float *restrict ws, long col0,
                    int tr0, int tr1, const int *restrict cmap, int Ca, int H, int W,
                    const unsigned char *restrict zero)
{
    /* Only the columns the row's tiles read (QW) are filled and transformed:
     * the chunk's lanes past the run's last tile read stale columns, and
     * their results are rewritten or never read (above). */
    int m = g->tm, PWp = g->PWp, pr = m * (tr1 - tr0) + g->tr - 1, QW = (int)k_rup((long)m * g->TW + g->tr - 1, 16);
    float *plane = ws + g->plane;
    k_wino_plane_zero(plane, PWp, pr, QW);
    for (int ci = 0; ci < Ca; ci++) {
        int c = cmap ? cmap[ci] : ci;
        if (zero && zero[ci]) { /* a channel of zeros (zero[ci]) transforms to zeros: no need to */
            K_ROLLED
            for (int xi = 0; xi < K_W4_NX; xi++)
                for (long j = 0; j < (long)(tr1 - tr0) * g->TW; j++)
                    v[(long)ci * g->vcs + xi * g->vxs + col0 + j] = 0.0f;
            continue;
        }
        /* plane row i is input row m tr0 - pad + i, column j input column j - pad */
        for (int i = 0; i < pr; i++) {
            int ih = m * tr0 - g->pad + i;
            if (ih >= 0 && ih < H)
                k_wino_plane_row(plane + (long)i * PWp, x + ((long)c * H + ih) * W, g->pad, W, QW);
        }
        k_w4_strip(plane, 6, k_w4_bt, ws + g->strip, ws + g->over, g, tr1 - tr0, QW, v + (long)ci * g->vcs + col0,
                   g->vxs);
    }
}

#endif
