/* 3x3 convolutions with stride 1 and padding 1 by Winograd's F(2x2, 3x3)
 * (Lavin and Gray 2015): each 2x2 block of outputs (a tile) is
 *   Y = A^T [ (G g G^T) . (B^T d B) ] A
 * with d the tile's 4x4 input patch and g the 3x3 kernel. Summed over the
 * input channels, the middle product is 16 GEMMs (one per position xi of
 * the 4x4 transformed tile), K x C times C x tiles: 16 multiplies per tile and
 * channel pair instead of 36, 2.25x fewer FLOPs. The transforms are adds.
 *
 * Work goes in blocks of tile rows of the flattened sequence u = image * TH
 * + tile row, sized so that the transformed inputs V and the GEMM outputs M
 * of a block stay in L2. Per block: transform the input (V[xi][c][tile]),
 * 16 GEMMs with the register-tiled micro-kernel of k_tile.h (M[xi][k][tile]
 * = U[xi] V[xi]), transform back, add the bias, relu. Every output is its
 * own tile's sums in an order fixed by the shape, so neither the block a
 * tile lands in nor the thread split changes a bit.
 *
 * The same kernel computes the data gradient of such a conv (flip = 1): dx is
 * the conv of dy with w[k][c] rotated by 180 degrees and its channels
 * swapped, padding 1 again. The weight gradient (k_conv2d_wino_bwd_w) runs
 * the algorithm transposed, over chunks of the batch.
 *
 * Measured on Zen 4 (one core, SimCNN's 32 -> 32 channels at 28x28): 1.8x
 * the direct kernel's speed, the transforms and the memory traffic of x and
 * y taking ~40% of the time; 7x7 images gain little (a third of the last
 * tiles' outputs fall past the edge). */
#include <math.h>

#include "k_kernels.h"
#include "k_tile.h"
#include "k_wino.h"

/* The passes over xi other than the GEMMs stay loops: unrolled (the file's
 * bitcode is compiled with unrolling on) they multiplied the code the JIT
 * compiles for each call, for nothing. */
#define K_ROLLED K_PRAGMA(GCC unroll 1)

/* Tiles per row and column of the output (the last one may hang over). */
static int k_wino_tiles(int n) { return (n + 1) / 2; }

/* Columns (tiles) per block: V and M, 16 * (C + K) floats per column, in
 * ~512 KB for the forward; the weight gradient's (wgrad: C and K a block
 * of its channels) as k_wino_wcols. */
static int k_wino_ld(int C, int K, int TW, int simd, int wgrad)
{
    int nr = k_op_nr(simd), mr = k_op_mr(simd);
    long cols = wgrad ? k_wino_wcols(16, C, K) : 8192L / (C + k_rup(K, mr));
    int rows = (int)(cols / TW) > 1 ? (int)(cols / TW) : 1;
    return (int)k_rup((long)rows * TW, nr);
}

/* The shapes the transforms are written for. */
static int k_wino_shape(int H, int W, int R, int S, int stride, int pad, int OH, int OW)
{
    return R == 3 && S == 3 && stride == 1 && pad == 1 && OH == H && OW == W && H >= 4 && W >= 4;
}

int k_wino_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW)
{
    /* below ~16 channels a side the GEMMs are too thin to gain on the transforms */
    return k_wino_shape(H, W, R, S, stride, pad, OH, OW) && C >= 16 && K >= 16;
}

int k_wino_infer_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW)
{
    /* The forward alone, at the eval batch, against the direct kernel
     * (bench/bench_wino_small, Zen 1, the best of three runs, with the
     * transforms taking 16 tiles across tile rows): from 8 input channels
     * on Winograd was faster at every size and output count, 2-4x at 14x14
     * (a sliced module's layers); with 4-7 inputs too, but for more than 32
     * outputs at 28x28; with 2-3 inputs up to 16 outputs below 28x28 (at
     * 28x28 about even). The backward kernels were not measured there, so
     * training keeps k_wino_ok. */
    if (!k_wino_shape(H, W, R, S, stride, pad, OH, OW) || C < 2)
        return 0;
    if (C < 4)
        return K <= 16 && H * W <= 256;
    return C >= 8 || K <= 32 || H * W <= 256;
}

int k_wino_bwd_w_ok(int C, int H, int W, int K)
{
    /* tiles hanging over the edge cost the weight gradient more than the
     * forward (its sums run over them): 7x7 (64 outputs computed for 49)
     * measured slower than the direct kernel, 14x14 and 28x28 faster */
    long computed = 4L * k_wino_tiles(H) * k_wino_tiles(W);
    return k_wino_ok(C, H, W, K, 3, 3, 1, 1, H, W) && computed * 100 <= 115L * H * W;
}

int k_wino_bwd_w_pick(int C, int H, int W, int K, int simd, int four)
{
    /* The weight gradient of a 3x3 conv at padding 1 (MWTC_PROFILE=1, the
     * layer networks of bench/layers_vs_torch with 64 channels a side at
     * each plane size, batch 128 on 2 threads of a Sapphire Rapids, three
     * runs; 32 and 128 channels at 7, 9, 11 and 13 agreed). F(4x4) from
     * 11x11 on, whatever its tiles hang over: 11x11 0.128 s against the
     * direct kernel's 0.155 and F(2x2)'s 0.150, 13x13 0.129 against 0.214
     * and 0.201 (1.4-1.7x at 32 and 128 channels; with AVX2's code 1.8-2x
     * the direct kernel, 1.15-1.25x F(2x2)); at 9x9 and 10x10 no faster
     * than the others, at 7x7 slower (0.079 against 0.063). The rule before
     * left 11x11 and 13x13 on the direct kernel (F(2x2)'s tiles hung over
     * by more than 15%). */
    if (!k_wino_ok(C, H, W, K, 3, 3, 1, 1, H, W))
        return 0;
    if (four && H >= 11 && W >= 11)
        return 4;
    /* Else F(2x2), whose transforms take 16 tiles at a time across tile
     * rows: its time went by those chunks of 16 (7x7's 16 tiles 0.055 s,
     * as 8x8's; 9x9's 25 0.118, as 10x10's), the direct kernel's by the
     * output pixels (7x7 0.063, 9x9 0.105). With AVX2's 8-float vectors
     * (MWTC_JIT_CPU=x86-64-v3) a chunk cost about as much as 28 pixels of
     * the direct kernel: F(2x2) 24-37% faster at 6x6, 7x7, 9x9 and 13x13.
     * With 16-float vectors ~44 (9x9, 81 pixels for 2 chunks: F(2x2) 7-12%
     * slower at 32 and 64 channels), and 7x7 would take it (49 pixels, one
     * chunk: 13-17% faster at 64 and 128 channels), but it keeps the rule
     * it had, F(2x2) where its tiles hang over by at most 15%: SimCNN's
     * last conv is 7x7, and its kernel's rounding decides which of two
     * mask clusters the main job lands in (issue 8). With F(2x2) there a
     * 10-epoch `mwtc examples/fashion.mwt` gave a modular model of 92.23%
     * (92.56% before), coupling 0.20 (0.40), for ~1% of its step. */
    if (simd >= 16)
        return k_wino_bwd_w_ok(C, H, W, K) ? 2 : 0;
    long chunks = ((long)k_wino_tiles(H) * k_wino_tiles(W) + 15) / 16;
    return chunks * 28 <= (long)H * W ? 2 : 0;
}

int k_wino_groups(int N, int K, int simd, int threads)
{
    /* A thread per group of channels, each transforming the image's input
     * again (cheap against its GEMMs at 16 channels a side and more), and
     * no more groups than register tiles. */
    int tiles = (K + k_op_mr(simd) - 1) / k_op_mr(simd);
    if (threads <= 1 || N >= threads)
        return 1;
    int g = (threads + N - 1) / N;
    return g < tiles ? g : tiles;
}

/* Scratch: packed U; V and M (rows of ldv floats: the transforms store
 * whole vectors, up to 16 columns past a block's last); the zero-padded input
 * rows of one channel (PWp floats each); the strips of their vertical
 * transforms and the overhang columns (k_wino_strip); two output rows of a
 * run of tile rows (k_wino_out); the bias and scale. The 16 planes of V and of M are a cache line
 * more than their size apart: 16 streams a whole number of pages apart would
 * share one L1 set. */
typedef struct {
    int TH, TW, ld, ldv, Kp, PWp;
    long vxs, mxs; /* from one xi to the next in V and in M */
    long sl; /* from one row to the next in the strips and in the output rows */
    long u, v, m, plane, strip, over, rows, bias, scale, maps, zch, runs, lists, end;
    long acc, zero, dbacc, wend; /* the weight gradient's, after end */
    int Kf;                       /* the weight gradient's: all of K rounded up to register tiles */
} KWinoWs;

static KWinoWs k_wino_layout(int C, int H, int W, int K, int simd, int wgrad)
{
    KWinoWs g;
    g.TH = k_wino_tiles(H), g.TW = k_wino_tiles(W);
    g.ld = k_wino_ld(C, K, g.TW, simd, wgrad);
    g.ldv = g.ld + 16;
    g.Kp = (int)k_rup(K, k_op_mr(simd));
    g.PWp = (int)k_rup(2L * g.TW + 2, 32) + 16;
    g.vxs = (long)C * g.ldv + 16;
    g.mxs = (long)g.Kp * g.ldv + 16;
    g.u = 0;
    g.v = g.u + 16 * k_wino_ustride((long)g.Kp * C);
    g.m = g.v + 16 * g.vxs;
    g.plane = g.m + 16 * g.mxs;
    /* a run of tile rows has at most ld tiles; a strip row holds 2 floats a
     * tile, the last tile row's overhang (up to 15 + 16 floats past its 2 TW
     * + 2) and the 48 floats k_wino_deal reads from a chunk's start; an
     * output row, 2 floats a tile and the 32 a chunk writes */
    g.sl = k_rup(2L * g.ld + 64, 16) + 16;
    g.strip = g.plane + (2L * g.TH + 2) * g.PWp;
    g.over = g.strip + 4 * g.sl;
    g.rows = g.over + 8 * k_rup(g.ld + 16, 16);
    g.bias = g.rows + 2 * g.sl;
    g.scale = g.bias + k_rup(K, 16);
    g.maps = g.scale + k_rup(K, 16); /* k_conv2d_wino_part's channels, as ints */
    /* the forward's input channels that are zeros, a byte per (run of a
     * block, channel): a run has a tile row at least, so ld + 1 runs at most
     * (whatever fewer tiles a row k_conv2d_wino_part leaves); then per column
     * tile of the GEMMs the channels it sums over, and how many */
    g.zch = g.maps + k_rup(C + 2L * K, 16);
    g.runs = g.zch + k_rup(((long)g.ld + 2) * C, 64) / 4;
    g.lists = g.runs + k_rup((long)g.ld + 2, 16);
    g.end = g.lists + k_rup(((long)g.ld / k_op_nr(simd) + 1) * (C + 1), 16);
    g.acc = g.zero = g.dbacc = g.wend = g.end, g.Kf = g.Kp;
    return g;
}

/* The weight gradient's: V, M and the transforms' room for a block of
 * channels (k_wino_dots), then the sums of all K x C channel pairs. */
static KWinoWs k_wino_wlayout(int C, int H, int W, int K, int simd)
{
    KWinoWs g = k_wino_layout(k_min(C, K_WINO_WBLOCK), H, W, k_min(K, K_WINO_WBLOCK), simd, 1);
    g.Kf = (int)k_rup(K, k_op_mr(simd));
    g.acc = g.end;
    g.zero = g.acc + 16L * g.Kf * k_rup(C, K_DOT_NR);
    g.dbacc = g.zero + g.ldv;
    g.wend = g.dbacc + k_rup(K, 16);
    return g;
}

long k_wino_ws(int C, int H, int W, int K, int simd)
{
    long a = k_wino_layout(C, H, W, K, simd, 0).end, b = k_wino_wlayout(C, H, W, K, simd).wend;
    return (a > b ? a : b) + 16;
}

/* U[xi] = G g G^T for every (k, c), scaled by scale[k] (a folded batchnorm),
 * packed per xi as k_op_pack packs a K x C matrix; with maps, only output
 * channels kmap[0..Ka) and input channels cmap[0..Ca), packed Ka x Ca. Only
 * the packed rows [k0, k1) (k0 and k1 whole register tiles, k1 <= Ka
 * rounded up to one). A register tile's mr kernels of one input channel
 * at a time, a lane each: U[xi] of them is mr floats in a row of the
 * packing, one store (a kernel at a time stored 16 floats 16 rows apart:
 * 5% of F(2x2)'s 4x4 x 512 forward on one thread). Each lane does what
 * the scalar transform did, in its order: the same U to the bit. */
static void k_wino_weights(const float *restrict w, const float *restrict scale, float *restrict u, int C, int K,
                           int flip, int simd, const int *restrict cmap, int Ca, const int *restrict kmap, int Ka,
                           int k0, int k1)
{
    int mr = k_op_mr(simd), Kp = (int)k_rup(Ka, mr);
    long us = k_wino_ustride((long)Kp * Ca);
    static const float zeros[9];
    for (int m0 = k0; m0 < k1; m0 += mr) {
        /* lane l's kernel of input channel c: the 9 floats at p[l] + c cs[l] */
        const float *p[8];
        long cs[8];
        k_v8 s;
        int kn = Ka - m0 < mr ? Ka - m0 : mr; /* its real kernels; the others' lanes are zeros */
        for (int l = 0; l < 8; l++) {
            int kr = l >= kn ? -1 : kmap ? kmap[m0 + l] : m0 + l;
            p[l] = kr < 0 ? zeros : flip ? w + (long)kr * 9 : w + (long)kr * C * 9;
            cs[l] = kr < 0 ? 0 : flip ? 9L * K : 9;
            s[l] = scale && kr >= 0 ? scale[kr] : 1.0f;
        }
        for (int ci = 0; ci < Ca; ci++) {
            int c = cmap ? cmap[ci] : ci;
            k_v8 g[9], t[4][3];
            for (int l = 0; l < 8; l++) /* flip: the data gradient's kernel, w[c][k] rotated */
                for (int j = 0; j < 9; j++)
                    g[j][l] = p[l][(long)c * cs[l] + (flip ? 8 - j : j)];
            for (int j = 0; j < 3; j++) {
                t[0][j] = g[j];
                t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
                t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
                t[3][j] = g[6 + j];
            }
            float *o = u + (long)m0 * Ca + (long)ci * mr;
            for (int i = 0; i < 4; i++) {
                k_v8 U[4] = { t[i][0] * s, 0.5f * (t[i][0] + t[i][1] + t[i][2]) * s,
                              0.5f * (t[i][0] - t[i][1] + t[i][2]) * s, t[i][2] * s };
                for (int q = 0; q < 4; q++) {
                    if (mr == 8)
                        __builtin_memcpy(o + (4 * i + q) * us, &U[q], 8 * sizeof(float));
                    else
                        __builtin_memcpy(o + (4 * i + q) * us, &U[q], 4 * sizeof(float));
                }
            }
        }
    }
}

/* Elements 2j + o of the 48 floats at p, for the 16 lanes j. */
static inline void k_wino_deal(const float *restrict p, k_v16 *e, k_v16 *od, k_v16 *e2, k_v16 *o2)
{
    k_v16 a, b, c;
    __builtin_memcpy(&a, p, sizeof a);
    __builtin_memcpy(&b, p + 16, sizeof b);
    __builtin_memcpy(&c, p + 32, sizeof c);
    *e = K_EVEN16(a, b);
    *od = K_ODD16(a, b);
    /* p[16], p[18], .. p[32] and p[17], p[19], .. p[33] (then don't-cares) */
    k_v16 bc = __builtin_shufflevector(b, c, 0, 2, 4, 6, 8, 10, 12, 14, 16, 0, 0, 0, 0, 0, 0, 0);
    *e2 = __builtin_shufflevector(a, bc, 2, 4, 6, 8, 10, 12, 14, 16, 17, 18, 19, 20, 21, 22, 23, 24);
    k_v16 bo = __builtin_shufflevector(b, c, 1, 3, 5, 7, 9, 11, 13, 15, 17, 1, 1, 1, 1, 1, 1, 1);
    *o2 = __builtin_shufflevector(a, bo, 3, 5, 7, 9, 11, 13, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24);
}

/* B^T's rows on four vectors, and A's (the transform of an output tile's
 * gradient; 2 rows in). */
static inline void k_wino_bt(const k_v16 *a, k_v16 *z)
{
    z[0] = a[0] - a[2], z[1] = a[1] + a[2], z[2] = a[2] - a[1], z[3] = a[1] - a[3];
}

static inline void k_wino_a(const k_v16 *a, k_v16 *z)
{
    z[0] = a[0], z[1] = a[0] + a[1], z[2] = a[0] - a[1], z[3] = -a[1];
}

/* k_wino_deal as k_wino_strips deals: into q[0..4). */
static inline void k_wino_deal4(const float *restrict p, k_v16 *q)
{
    k_wino_deal(p, &q[0], &q[1], &q[2], &q[3]);
}

/* k_wino_strips for F(2x2): 2 columns from one tile to the next, 4 outputs. */
static inline void k_wino_strip(const float *restrict plane, int rows, void (*tf)(const k_v16 *, k_v16 *),
                                float *restrict s, float *restrict over, const KWinoWs *g, int nrows,
                                float *restrict dst, long xs)
{
    k_wino_strips(plane, g->PWp, rows, 4, 2, g->TW, nrows, (int)k_rup(2L * g->TW + 2, 16), tf, k_wino_deal4, s,
                  g->sl, over, k_rup(g->ld + 16, 16), dst, xs);
}

/* V[xi][c][col0 + (tr - tr0) * TW + tc] = (B^T d B)[xi] for the tile rows
 * [tr0, tr1) of image x (C channels of H x W), 16 tiles at a time
 * (k_wino_strip); a chunk's lanes past the run's last tile land on the next
 * run's first columns (rewritten when that run comes) or past the block's
 * last. */
static void k_wino_in(const float *restrict x, float *restrict v, const KWinoWs *g, float *restrict ws, long col0,
                      int tr0, int tr1, int H, int W, const int *restrict cmap, int Ca,
                      const unsigned char *restrict zero)
{
    int TW = g->TW, PWp = g->PWp, pr = 2 * (tr1 - tr0) + 2;
    float *plane = ws + g->plane;
    k_wino_plane_zero(plane, PWp, pr, PWp);
    for (int ci = 0; ci < Ca; ci++) { /* V row ci: input channel cmap[ci] */
        int c = cmap ? cmap[ci] : ci;
        if (zero && zero[ci]) { /* a channel of zeros (zero[ci]) transforms to zeros: no need to */
            K_ROLLED
            for (int xi = 0; xi < 16; xi++)
                for (long j = 0; j < (long)(tr1 - tr0) * TW; j++)
                    v[xi * g->vxs + (long)ci * g->ldv + col0 + j] = 0.0f;
            continue;
        }
        /* the rows the tiles read, zero-padded: plane row i is input row 2 tr0 - 1 + i, column j input column j - 1 */
        for (int i = 0; i < pr; i++) {
            int ih = 2 * tr0 - 1 + i;
            if (ih >= 0 && ih < H)
                k_wino_plane_row(plane + (long)i * PWp, x + ((long)c * H + ih) * W, 1, W, PWp);
        }
        k_wino_strip(plane, 4, k_wino_bt, ws + g->strip, ws + g->over, g, tr1 - tr0,
                     v + (long)ci * g->ldv + col0, g->vxs);
    }
}

/* k_wino_in of 4x4 images, whole, nimg of them from image x on (their
 * tiles at columns 4 n + 2 tr + tc of a block), four images a chunk of 16
 * tiles: k_wino_strip takes one image's 4 tiles a chunk, 12 of its 16
 * lanes idle, and pads a plane for each (8% of F(2x2)'s 4x4 x 512 forward
 * on one thread). Here the four planes, a vector each, are dealt into their
 * rows (lane 4 m + s: image m's column s), the columns' transform taken on
 * them, then each tile's four columns dealt into its lane (zero past the
 * edges) for the rows' transform: the same operations on the same values
 * as k_wino_strip's, the same V to the bit. zero: a byte per (image,
 * channel), as k_wino_in's. */
static void k_wino_in44(const float *restrict x, float *restrict v, const KWinoWs *g, int nimg, int C,
                        const int *restrict cmap, int Ca, const unsigned char *restrict zero)
{
    const k_v16 o = { 0 };
    for (int m0 = 0; m0 < nimg; m0 += 4) {
        int nm = nimg - m0 < 4 ? nimg - m0 : 4;
        float *d = v + 4L * m0;
        for (int ci = 0; ci < Ca; ci++) {
            int c = cmap ? cmap[ci] : ci, all = 1;
            for (int m = 0; m < nm; m++)
                all &= zero && zero[(long)(m0 + m) * Ca + ci];
            if (all) { /* zeros transform to zeros */
                K_ROLLED
                for (int xi = 0; xi < 16; xi++)
                    for (int j = 0; j < 4 * nm; j++)
                        d[xi * g->vxs + (long)ci * g->ldv + j] = 0.0f;
                continue;
            }
            k_v16 p[4];
            for (int m = 0; m < 4; m++)
                p[m] = o;
            for (int m = 0; m < nm; m++)
                __builtin_memcpy(&p[m], x + ((long)(m0 + m) * C + c) * 16, sizeof p[m]);
            /* rows r of the four images: lane 4 m + s, image m's (r, s) */
            k_v16 t01 = __builtin_shufflevector(p[0], p[1], 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23),
                  t01b = __builtin_shufflevector(p[0], p[1], 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29,
                                                 30, 31),
                  t23 = __builtin_shufflevector(p[2], p[3], 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23),
                  t23b = __builtin_shufflevector(p[2], p[3], 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29,
                                                 30, 31);
            k_v16 a0[4] = { o, __builtin_shufflevector(t01, t23, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
                            __builtin_shufflevector(t01, t23, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29,
                                                    30, 31),
                            __builtin_shufflevector(t01b, t23b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22,
                                                    23) };
            k_v16 a1[4] = { a0[2], a0[3],
                            __builtin_shufflevector(t01b, t23b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29,
                                                    30, 31),
                            o };
            k_v16 z0[4], z1[4]; /* the columns' transform, tile rows 0 and 1: padded rows -1..2 and 1..4 */
            k_wino_bt(a0, z0);
            k_wino_bt(a1, z1);
            for (int i = 0; i < 4; i++) {
                /* lane 4 m + 2 tr + tc: columns 2 tc - 1 + j of image m's tile row tr */
                k_v16 q[4], z[4];
                q[0] = __builtin_shufflevector(
                    __builtin_shufflevector(z0[i], z1[i], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29), o,
                    16, 1, 16, 3, 16, 5, 16, 7, 16, 9, 16, 11, 16, 13, 16, 15);
                q[1] = __builtin_shufflevector(z0[i], z1[i], 0, 2, 16, 18, 4, 6, 20, 22, 8, 10, 24, 26, 12, 14, 28, 30);
                q[2] = __builtin_shufflevector(z0[i], z1[i], 1, 3, 17, 19, 5, 7, 21, 23, 9, 11, 25, 27, 13, 15, 29, 31);
                q[3] = __builtin_shufflevector(
                    __builtin_shufflevector(z0[i], z1[i], 2, 0, 18, 16, 6, 4, 22, 20, 10, 8, 26, 24, 14, 12, 30, 28), o,
                    0, 16, 2, 16, 4, 16, 6, 16, 8, 16, 10, 16, 12, 16, 14, 16);
                k_wino_bt(q, z);
                for (int j = 0; j < 4; j++)
                    __builtin_memcpy(d + (4 * i + j) * g->vxs + (long)ci * g->ldv, &z[j], sizeof z[j]);
            }
        }
    }
}

/* In place (only pointers cross function boundaries: k_tile.h). */
static inline void k_wino_relu(k_v16 *v)
{
    *v = K_WHERE16(*v > 0.0f, *v);
}

/* A chunk of 16 tiles' outputs y[2 a + b] = pixel (a, b) of each tile,
 * (A^T M A) + b, times sc where apply, relu'd where relu, from the M row
 * mk (its 16 positions xs apart). */
static inline void k_wino_otile(const float *restrict mk, long xs, float b, const k_v16 *sc, int apply, int relu,
                                k_v16 *y)
{
    k_v16 s0[4], s1[4], a[4];
    for (int j = 0; j < 4; j++) {
        for (int i = 0; i < 4; i++)
            __builtin_memcpy(&a[i], mk + (4 * i + j) * xs, sizeof a[i]);
        s0[j] = a[0] + a[1] + a[2];
        s1[j] = a[1] - a[2] - a[3];
    }
    y[0] = s0[0] + s0[1] + s0[2] + b, y[1] = s0[1] - s0[2] - s0[3] + b;
    y[2] = s1[0] + s1[1] + s1[2] + b, y[3] = s1[1] - s1[2] - s1[3] + b;
    for (int i = 0; i < 4; i++) {
        if (apply)
            y[i] *= *sc;
        if (relu)
            k_wino_relu(&y[i]);
    }
}

/* y[k][2 tr + a][2 tc + b] = (A^T M A)[a][b] + bias[k], relu'd, for the tile
 * rows [tr0, tr1) of one image (K channels of H x W), 16 tiles at a time, a
 * chunk taking tiles of several tile rows as k_wino_strip's do: output row a
 * of tile L at rows[a][2 L], then copied out tile row by tile row. M rows
 * [ka0, ka1) (channels kmap[ka0..ka1)), and zeros into channels
 * zmap[kz0..kz1). Rows and columns past the TH x TW tiles (a part of y: k_conv2d_wino_part)
 * get zeros. With apply, each channel k is scaled by (mrow ? mrow[k] : 1)
 * keep[k] before the relu: what k_mask_apply_keep computes of the output,
 * in the same operations. */
static void k_wino_out(const float *restrict m, const KWinoWs *g, float *restrict rows, const float *restrict bias,
                       float *restrict y, long col0, int tr0, int tr1, int H, int W, int relu, const int *restrict kmap,
                       int ka0, int ka1, const int *restrict zmap, int kz0, int kz1, int apply,
                       const float *restrict mrow, const float *restrict keep)
{
    int TW = g->TW, cw = 2 * TW < W ? 2 * TW : W, nt = (tr1 - tr0) * TW;
    long xs = g->mxs, rl = g->sl;
    for (int z = kz0; z < kz1; z++) { /* channels switched off: zeros (a mask times 0 after them) */
        long r1 = tr1 == g->TH ? H : 2L * tr1 < H ? 2L * tr1 : H;
        for (long r = 2L * tr0; r < r1; r++)
            for (int j = 0; j < W; j++)
                y[((long)zmap[z] * H + r) * W + j] = 0.0f;
    }
    for (int ki = ka0; ki < ka1; ki++) { /* M row ki: output channel kmap[ki] */
        int k = kmap ? kmap[ki] : ki;
        float b = bias ? bias[k] : 0.0f;
        float sc = (mrow ? mrow[k] : 1.0f) * (keep ? keep[k] : 1.0f);
        k_v16 scv;
        for (int l = 0; l < 16; l++)
            scv[l] = sc;
        const float *mk = m + (long)ki * g->ldv + col0;
        for (int L0 = 0; L0 < nt; L0 += 16) {
            k_v16 yt[4], r[4];
            k_wino_otile(mk + L0, xs, b, &scv, apply, relu, yt);
            r[0] = K_ZIP_LO16(yt[0], yt[1]), r[1] = K_ZIP_HI16(yt[0], yt[1]);
            r[2] = K_ZIP_LO16(yt[2], yt[3]), r[3] = K_ZIP_HI16(yt[2], yt[3]);
            /* output row 2 tr + a of tile L at rows[a rl + 2 L]: whole chunks */
            __builtin_memcpy(rows + 2L * L0, &r[0], sizeof r[0]);
            __builtin_memcpy(rows + 2L * L0 + 16, &r[1], sizeof r[1]);
            __builtin_memcpy(rows + rl + 2L * L0, &r[2], sizeof r[2]);
            __builtin_memcpy(rows + rl + 2L * L0 + 16, &r[3], sizeof r[3]);
        }
        for (int tr = tr0; tr < tr1; tr++) {
            for (int a = 0; a < 2 && 2 * tr + a < H; a++) {
                float *dst = y + ((long)k * H + 2 * tr + a) * W;
                const float *src = rows + a * rl + 2L * (tr - tr0) * TW;
                for (int j = 0; j < cw; j++)
                    dst[j] = src[j];
                for (int j = cw; j < W; j++)
                    dst[j] = 0.0f;
            }
            if (tr == g->TH - 1)
                for (long r = 2L * g->TH; r < H; r++)
                    for (int j = 0; j < W; j++)
                        y[((long)k * H + r) * W + j] = 0.0f;
        }
    }
}

/* k_wino_out of 4x4 images, whole, nimg of them (their tiles at M's
 * columns 4 n + 2 tr + tc) into y (image n at y + n K 16), four
 * images a chunk of 16 tiles, each image's plane put together in a vector
 * and stored whole: k_wino_out's chunks took one image's 4 tiles and
 * copied its rows out a float at a time. The same operations on the same
 * values; masks (mask: image n's at mask + n K) a lane per image. */
static void k_wino_out44(const float *restrict m, const KWinoWs *g, const float *restrict bias, float *restrict y,
                         int nimg, int K, int relu, const int *restrict kmap, int ka0, int ka1,
                         const int *restrict zmap, int kz0, int kz1, int apply, const float *restrict mask,
                         const float *restrict keep)
{
    long xs = g->mxs;
    for (int n = 0; n < nimg; n++) /* channels switched off: zeros (a mask times 0 after them) */
        for (int z = kz0; z < kz1; z++)
            for (int j = 0; j < 16; j++)
                y[((long)n * K + zmap[z]) * 16 + j] = 0.0f;
    for (int m0 = 0; m0 < nimg; m0 += 4) {
        int nm = nimg - m0 < 4 ? nimg - m0 : 4;
        for (int ki = ka0; ki < ka1; ki++) { /* M row ki: output channel kmap[ki] */
            int k = kmap ? kmap[ki] : ki;
            float b = bias ? bias[k] : 0.0f;
            k_v16 sc;
            for (int l = 0; l < 16; l++)
                sc[l] = (mask && l / 4 < nm ? mask[(long)(m0 + l / 4) * K + k] : 1.0f) * (keep ? keep[k] : 1.0f);
            const float *mk = m + (long)ki * g->ldv + 4L * m0;
            k_v16 yt[4];
            k_wino_otile(mk, xs, b, &sc, apply, relu, yt);
            /* lane 4 m + 2 tr + tc of yt[2 a + b] is pixel (2 tr + a, 2 tc + b) of image m: its rows
             * 2 tr + a, two images a vector, then each image's four rows in order */
            k_v16 e[2] = { K_ZIP_LO16(yt[0], yt[1]), K_ZIP_HI16(yt[0], yt[1]) },
                  o[2] = { K_ZIP_LO16(yt[2], yt[3]), K_ZIP_HI16(yt[2], yt[3]) }, p[4];
            p[0] = __builtin_shufflevector(e[0], o[0], 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
            p[1] = __builtin_shufflevector(e[0], o[0], 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
            p[2] = __builtin_shufflevector(e[1], o[1], 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
            p[3] = __builtin_shufflevector(e[1], o[1], 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
            for (int i = 0; i < nm; i++)
                __builtin_memcpy(y + ((long)(m0 + i) * K + k) * 16, &p[i], sizeof p[i]);
        }
    }
}

/* Images [a, e) of a k_wino_fwd call: its blocks, each up to TRb tile rows
 * of several whole images or a slice of one. */
typedef struct {
    const float *x, *bias, *mask, *outkeep, *u;
    float *y, *ws;
    const int *cmap, *kmap, *zmap;
    int C, H, W, K, Ca, Ka, Kz, relu, apply, simd;
    int ka0, ka1, kz0, kz1; /* the M rows (kept channels) and the zeroed channels this call computes */
} KWinoRun;

static void k_wino_images(const KWinoRun *r, const KWinoWs *g, long a, long e)
{
    int H = r->H, W = r->W, C = r->C, K = r->K, simd = r->simd;
    float *v = r->ws + g->v, *m = r->ws + g->m;
    unsigned char *zero = (unsigned char *)(r->ws + g->zch);
    int *c0 = (int *)(r->ws + g->runs), *lists = (int *)(r->ws + g->lists);
    int *lens = lists + (long)(g->ld / k_op_nr(simd) + 1) * C;
    int nr = k_op_nr(simd), TRb = g->ld / g->TW, Kpa = (int)k_rup(r->Ka, k_op_mr(simd));
    int quad = H == 4 && W == 4 && g->TH == 2 && g->TW == 2; /* whole images: k_wino_in44, k_wino_out44 */
    long end = e * g->TH;
    for (long t = a * g->TH; t < end;) {
        long t1 = t + TRb < end ? t + TRb : end;
        long cols = (t1 - t) * g->TW;
        int qb = (int)k_rup(cols, nr), nruns = 0;
        long n0 = t / g->TH; /* the block's first image */
        for (long u0 = t, n; u0 < t1; nruns++) {
            int tr0, rows = k_blk_run(u0, t1, g->TH, &n, &tr0);
            c0[nruns] = (int)((u0 - t) * g->TW);
            k_wino_zeros(r->x + n * C * H * W, r->cmap, r->Ca, (long)H * W, zero + (long)nruns * r->Ca);
            u0 += rows;
        }
        int whole = quad && t % 2 == 0 && (t1 - t) % 2 == 0; /* whole 4x4 images */
        if (whole)
            k_wino_in44(r->x + n0 * C * 16, v, g, nruns, C, r->cmap, r->Ca, zero);
        else
            for (long u0 = t, n, j = 0; u0 < t1; j++) {
                int tr0, rows = k_blk_run(u0, t1, g->TH, &n, &tr0);
                k_wino_in(r->x + n * C * H * W, v, g, r->ws, c0[j], tr0, tr0 + rows, H, W, r->cmap, r->Ca,
                          zero + j * r->Ca);
                u0 += rows;
            }
        k_wino_zero_cols(v, 16, g->vxs, r->Ca, g->ldv, cols, qb); /* zeros into the GEMM past the block's tiles */
        /* A column tile sums only over the channels not zero in its images:
         * the same sums to the bit (k_op_gemm_lists), fewer terms. */
        int Mk = r->ka1 - r->ka0;
        const float *ua = r->u + (long)r->ka0 * r->Ca; /* the rows' register tiles, in each xi's packing */
        long us = k_wino_ustride((long)Kpa * r->Ca);
        float *ma = m + (long)r->ka0 * g->ldv;
        if (Mk > 0 && k_wino_lists(zero, c0, nruns, cols, r->Ca, nr, qb, lists, lens)) {
            K_ROLLED
            for (int xi = 0; xi < 16; xi++)
                k_op_gemm_lists(simd, Mk, r->Ca, ua + xi * us, v + xi * g->vxs, g->ldv, qb, (int)cols,
                                ma + xi * g->mxs, g->ldv, lists, r->Ca, lens);
        } else {
            for (int xi = 0; xi < 16 && Mk > 0; xi++) /* left to the unroller: ~10% faster than rolled */
                k_op_gemm(simd, Mk, r->Ca, ua + xi * us, v + xi * g->vxs, g->ldv, qb, (int)cols,
                          ma + xi * g->mxs, g->ldv);
        }
        if (whole)
            k_wino_out44(m, g, r->bias, r->y + n0 * K * 16, nruns, K, r->relu, r->kmap, r->ka0, r->ka1, r->zmap,
                         r->kz0, r->kz1, r->apply, r->mask ? r->mask + n0 * K : NULL, r->outkeep);
        else
            for (long u0 = t, n; u0 < t1;) {
                int tr0, rows = k_blk_run(u0, t1, g->TH, &n, &tr0);
                k_wino_out(m, g, r->ws + g->rows, r->bias, r->y + n * K * H * W, (u0 - t) * g->TW, tr0, tr0 + rows,
                           H, W, r->relu, r->kmap, r->ka0, r->ka1, r->zmap, r->kz0, r->kz1, r->apply,
                           r->mask ? r->mask + n * K : NULL, r->outkeep);
                u0 += rows;
            }
        t = t1;
    }
}

/* k_wino_live's runs: k_wino_images of a run and its layout. */
typedef struct {
    const KWinoRun *r;
    const KWinoWs *g;
} KWinoLive;

static void k_wino_live_run(void *ctx, long a, long e)
{
    const KWinoLive *lv = ctx;
    k_wino_images(lv->r, lv->g, a, e);
}

static void k_wino_fwd(const float *restrict x, const float *restrict w, const float *restrict b,
                       const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                       const float *restrict var, const float *restrict pre, const float *restrict inkeep,
                       const float *restrict outkeep, const float *restrict mask, const int *restrict gen,
                       float *restrict y, float *restrict ws, int N, int C, int H, int W, int K, float eps, int relu,
                       int flip, int OH, int OW, int apply, int simd, int groups, int lo, int hi)
{
    if (lo >= hi)
        return;
    /* the tiles up to output row OH and column OW: the layout of the whole
     * image (so the scratch k_wino_ws sized is enough), fewer tiles */
    KWinoWs g = k_wino_layout(C, H, W, K, simd, 0);
    g.TH = OH < H ? k_wino_tiles(OH) : g.TH, g.TW = OW < W ? k_wino_tiles(OW) : g.TW;
    float *u = ws + g.u, *bias = ws + g.bias;
    int *cmap, *kmap, *zmap, Ca, Ka, Kz;
    k_wino_maps(inkeep, outkeep, C, K, (int *)(ws + g.maps), &cmap, &Ca, &kmap, &Ka, &zmap, &Kz);
    /* a batchnorm on running statistics folds in: scale into U, shift into the bias */
    float *scale = k_wino_fold(b, gamma, beta, mean, var, eps, K, bias, ws + g.scale);
    k_wino_part_reads(C, K, Ca, Ka, gen, &mask, &pre);
    KWinoRun r = { x, gamma || b ? bias : NULL, mask, outkeep, pre ? pre : u, y, ws, cmap, kmap, zmap,
                   C, H, W, K, Ca, Ka, Kz, relu, apply, simd, 0, Ka, 0, Kz };
    if (groups > 1) {
        /* unit gi N + n: image n, the kept channels of k_wino_group's gi-th
         * range and the gi-th part of the zeroed ones */
        for (int un = lo, done = -1; un < hi; un++) {
            int gi = un / N, n = un % N;
            r.ka1 = k_wino_group(Ka, simd, groups, gi, &r.ka0);
            r.kz0 = (int)((long)Kz * gi / groups), r.kz1 = (int)((long)Kz * (gi + 1) / groups);
            if (mask && k_wino_dead(mask + (long)n * K, kmap, Ka)) { /* zeros, as below: this group's share */
                long e0 = (long)K * H * W * gi / groups, e1 = (long)K * H * W * (gi + 1) / groups;
                for (long i = e0; i < e1; i++)
                    y[(long)n * K * H * W + i] = 0.0f;
                continue;
            }
            if (r.ka0 >= r.ka1 && r.kz0 >= r.kz1)
                continue;
            if (gi != done && r.ka0 < r.ka1 && !pre) /* consecutive units share a group: its weights once */
                k_wino_weights(w, scale, u, C, K, flip, simd, cmap, Ca, kmap, Ka, r.ka0,
                               (int)k_rup(r.ka1, k_op_mr(simd))), done = gi;
            k_wino_images(&r, &g, n, n + 1);
        }
        return;
    }
    if (!pre)
        k_wino_weights(w, scale, u, C, K, flip, simd, cmap, Ca, kmap, Ka, 0, (int)k_rup(Ka, k_op_mr(simd)));
    if (!mask) {
        k_wino_images(&r, &g, lo, hi);
        return;
    }
    /* an image its mask turns off altogether is zeros (the mask multiplies all of it by 0) */
    KWinoLive lv = { &r, &g };
    k_wino_live(mask, kmap, Ka, K, N, lo, hi, y, (long)K * H * W, k_wino_live_run, &lv);
}

long k_wino_pre_floats(int C, int K, int simd) { return 16 * k_wino_ustride(k_rup(K, k_op_mr(simd)) * C); }

int k_wino_pre_units(int K, int simd) { return (K + k_op_mr(simd) - 1) / k_op_mr(simd); }

int k_wino_pre_pays(int N, int H, int W, int four)
{
    /* The transform of the weights costs a call about what 21 tiles of
     * images cost it (either size; Zen 1, one thread: 26-33% of a call at 49
     * tiles, F(2x2) at 14x14 and F(4x4) at 28x28). Past 512 tiles it would
     * save under 4% of a call, for room as large as the weights' 1.8x (2x2)
     * or 4x (4x4): VGG16's at batch 64 would have taken 105 MB more. */
    long tiles = four ? (long)((H + 3) / 4) * ((W + 3) / 4) : (long)k_wino_tiles(H) * k_wino_tiles(W);
    return (long)N * tiles <= 512;
}

void k_conv2d_wino_prep(const float *restrict w, const float *restrict b, const float *restrict gamma,
                        const float *restrict beta, const float *restrict mean, const float *restrict var,
                        float *restrict pre, float *restrict ws, int C, int K, int flip, float eps, int simd, int lo,
                        int hi)
{
    int mr = k_op_mr(simd), K16 = (int)k_rup(K, 16);
    float *scale = k_wino_fold(b, gamma, beta, mean, var, eps, K, ws, ws + K16);
    k_wino_weights(w, scale, pre, C, K, flip, simd, NULL, C, NULL, K, lo * mr, hi * mr);
}

void k_conv2d_wino(const float *restrict x, const float *restrict w, const float *restrict b,
                   const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                   const float *restrict var, const float *restrict pre, float *restrict y, float *restrict ws, int N,
                   int C, int H, int W, int K, float eps, int relu, int flip, int simd, int groups, int lo, int hi)
{
    k_wino_fwd(x, w, b, gamma, beta, mean, var, pre, NULL, NULL, NULL, NULL, y, ws, N, C, H, W, K, eps, relu, flip, H,
               W, 0, simd, groups, lo, hi);
}

void k_conv2d_wino_part(const float *restrict x, const float *restrict w, const float *restrict b,
                        const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                        const float *restrict var, const float *restrict pre, const float *restrict inkeep,
                        const float *restrict outkeep, const float *restrict mask, const int *restrict gen,
                        float *restrict y, float *restrict ws, int N, int C, int H, int W, int K, float eps, int relu,
                        int OH, int OW, int apply, int simd, int groups, int lo, int hi)
{
    k_wino_fwd(x, w, b, gamma, beta, mean, var, pre, inkeep, outkeep, mask, gen, y, ws, N, C, H, W, K, eps, relu, 0, OH,
               OW, apply, simd, groups, lo, hi);
}

/* Z[xi][k][col0 + (tr - tr0) * TW + tc] = (A dY A^T)[xi] for the tile rows
 * [tr0, tr1) of dy (K channels of H x W): the 2x2 output tiles' gradients,
 * zero past the edges, moved to the 4x4 transformed space. */
static void k_wino_dy(const float *restrict dy, float *restrict z, const KWinoWs *g, float *restrict ws, long col0,
                      int tr0, int tr1, int K, int H, int W)
{
    int PWp = g->PWp;
    float *r = ws + g->plane;
    k_wino_plane_zero(r, PWp, 2 * (tr1 - tr0), PWp);
    for (int k = 0; k < K; k++) {
        for (int a = 0; a < 2 * (tr1 - tr0) && 2 * tr0 + a < H; a++) /* the tile rows' rows of dy, zero-padded */
            k_wino_plane_row(r + (long)a * PWp, dy + ((long)k * H + 2 * tr0 + a) * W, 0, W, PWp);
        k_wino_strip(r, 2, k_wino_a, ws + g->strip, NULL, g, tr1 - tr0, z + (long)k * g->ldv + col0, g->mxs);
    }
}

/* dW = G^T dU G: dU 4x4 -> the 3x3 kernel's gradient, for one (k, c) in
 * floats, or for 16 input channels in vectors (k_wino_dw16) in the same
 * operations, lane by lane: the same bits. */
#define K_WINO_GTG(NAME, T)                                                                                        \
    static inline void NAME(const T *du, T *dw)                                                                    \
    {                                                                                                              \
        T t[3][4];                                                                                                 \
        for (int j = 0; j < 4; j++) {                                                                              \
            t[0][j] = du[j] + 0.5f * (du[4 + j] + du[8 + j]);                                                      \
            t[1][j] = 0.5f * (du[4 + j] - du[8 + j]);                                                              \
            t[2][j] = 0.5f * (du[4 + j] + du[8 + j]) + du[12 + j];                                                 \
        }                                                                                                          \
        for (int i = 0; i < 3; i++) {                                                                              \
            dw[3 * i + 0] = t[i][0] + 0.5f * (t[i][1] + t[i][2]);                                                  \
            dw[3 * i + 1] = 0.5f * (t[i][1] - t[i][2]);                                                            \
            dw[3 * i + 2] = 0.5f * (t[i][1] + t[i][2]) + t[i][3];                                                  \
        }                                                                                                          \
    }
K_WINO_GTG(k_wino_dw, float)
K_WINO_GTG(k_wino_dw_v16, k_v16)

/* k_wino_dw for 16 input channels at once, lane l the channel c + l: du's
 * 16 positions are rows of acc, a[xi * xs], read 16 channels a vector. One
 * (k, c) at a time gathered its 16 floats 16 * Kf * Cp floats apart (4 MB
 * of acc at 256 channels a side, a page each): a fifth of the weight
 * gradient's samples (perf, 256 -> 256 at 8x8). dw: the 16 channels' 3x3
 * gradients, 144 floats in a row. */
static void k_wino_dw16(const float *restrict a, long xs, float *restrict dw)
{
    k_v16 du[16], o[9];
    for (int xi = 0; xi < 16; xi++)
        __builtin_memcpy(&du[xi], a + xi * xs, sizeof du[xi]);
    k_wino_dw_v16(du, o);
    for (int l = 0; l < 16; l++)
        for (int i = 0; i < 9; i++)
            dw[9 * l + i] = o[i][l];
}

/* M rows of the output channels [ka, kb) of dy (K channels) for the tiles
 * [t, t1) of a weight gradient's block (qb columns with the zeros past its
 * tiles). */
static void k_wino_mblock(const float *restrict dy, float *restrict z, const KWinoWs *g, float *restrict ws, long t,
                          long t1, int K, int ka, int kb, int H, int W, int qb)
{
    for (long u0 = t, n; u0 < t1;) {
        int tr0, rows = k_blk_run(u0, t1, g->TH, &n, &tr0);
        k_wino_dy(dy + (n * K + ka) * H * W, z, g, ws, (u0 - t) * g->TW, tr0, tr0 + rows, kb - ka, H, W);
        u0 += rows;
    }
    k_wino_zero_cols(z, 16, g->mxs, kb - ka, g->ldv, (t1 - t) * g->TW, qb);
}

/* The weight gradient by the transpose of the forward algorithm: with U = G
 * g G^T and V = B^T d B per tile, the forward's M = U . V gives dL/dU =
 * sum over tiles of (A dY A^T) . V, and dg = G^T (dL/dU) G: per xi a K x C
 * GEMM whose inner dimension is the tiles (the dot tiles of k_tile.h, as the
 * direct kernel), then a 4x4 -> 3x3 transform per (k, c). Chunks of the
 * batch as k_conv2d_bwd_w, the blocks inside a chunk fixed by its images:
 * the same sums in the same order however the chunks split over threads. */
void k_conv2d_wino_bwd_w(const float *restrict x, const float *restrict dy, float *restrict dwpart,
                         float *restrict dbpart, float *restrict ws, int N, int C, int H, int W, int K, int G, int CS,
                         int simd, int lo, int hi)
{
    if (lo >= hi)
        return;
    /* the layout of a block of channels (k_wino_wlayout), whichever
     * channels a unit takes: its blocks of tiles (ld) depend on the shape
     * only, and each block's sums are added to acc */
    KWinoWs g = k_wino_wlayout(C, H, W, K, simd);
    float *v = ws + g.v, *z = ws + g.m, *acc = ws + g.acc, *zero = ws + g.zero, *dbacc = ws + g.dbacc;
    int Cp = (int)k_rup(C, K_DOT_NR), TRb = g.ld / g.TW, one = K <= K_WINO_WBLOCK;
    for (int j = 0; j < g.ldv; j++)
        zero[j] = 0.0f;
    for (int u = lo; u < hi; u++) {
        int ch, n0, n1, c0, c1;
        k_wino_bwdw_unit(u, N, G, C, CS, 16L * g.Kf, acc, &ch, &n0, &n1, &c0, &c1);
        for (long t = (long)n0 * g.TH, end = (long)n1 * g.TH; t < end;) {
            long t1 = t + TRb < end ? t + TRb : end, cols = (t1 - t) * g.TW;
            int qb = (int)k_rup(cols, k_op_nr(simd));
            if (one)
                k_wino_mblock(dy, z, &g, ws, t, t1, K, 0, K, H, W, qb);
            for (int ca = c0; ca < c1; ca += K_WINO_WBLOCK) {
                int cb = k_min(c1, ca + K_WINO_WBLOCK);
                for (long u0 = t, n; u0 < t1;) {
                    int tr0, rows = k_blk_run(u0, t1, g.TH, &n, &tr0);
                    k_wino_in(x + (n * C + ca) * H * W, v, &g, ws, (u0 - t) * g.TW, tr0, tr0 + rows, H, W, NULL,
                              cb - ca, NULL);
                    u0 += rows;
                }
                /* past the block's tiles: zeros into the sums */
                k_wino_zero_cols(v, 16, g.vxs, cb - ca, g.ldv, cols, qb);
                for (int ka = 0; ka < K; ka += K_WINO_WBLOCK) {
                    int kb = k_min(K, ka + K_WINO_WBLOCK);
                    if (!one)
                        k_wino_mblock(dy, z, &g, ws, t, t1, K, ka, kb, H, W, qb);
                    k_wino_dots(simd, 16, C, ca, cb, ka, kb, g.Kf, v, g.vxs, g.ldv, z, g.mxs, g.ldv, zero, qb, acc);
                }
            }
            t = t1;
        }
        float *dw = dwpart + (long)ch * K * C * 9;
        for (int k = 0; k < K; k++) {
            int c = c0;
            for (; c + 16 <= c1; c += 16)
                k_wino_dw16(acc + (long)k * Cp + c, (long)g.Kf * Cp, dw + ((long)k * C + c) * 9);
            for (; c < c1; c++) {
                float du[16];
                K_ROLLED
                for (int xi = 0; xi < 16; xi++)
                    du[xi] = acc[((long)xi * g.Kf + k) * Cp + c];
                k_wino_dw(du, dw + ((long)k * C + c) * 9);
            }
        }
        if (dbpart && u % CS == 0)
            k_wino_db(dy, dbacc, dbpart, ch, n0, n1, K, (long)H * W);
    }
}
