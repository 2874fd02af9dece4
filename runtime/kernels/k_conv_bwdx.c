/* The data gradient of a conv (k_conv.h): dx = the forward conv of dy with
 * the weights flipped and transposed at stride 1, the stride x stride
 * phases of dx each such a conv when strided, else a scatter-add of W^T dy
 * into dx (col2im). */
#include "k_conv.h"

/* The output columns [owa, owb) whose input column ow*stride + s - pad lies inside [0, W). */
static void k_valid_cols(int W, int OW, int s, int stride, int pad, int *owa, int *owb)
{
    int a = pad > s ? (pad - s + stride - 1) / stride : 0;
    int b = W + pad - s > 0 ? (W + pad - s + stride - 1) / stride : 0;
    *owa = k_min(a, OW);
    *owb = k_max(*owa, k_min(b, OW));
}

/* dx[pixel] += dcol[(c*R + r)*S + s][j], the transpose of k_im2col. */
static void k_col2im(const float *restrict dcol, long ld, long t0, int nrows, float *restrict dx, int C, int H, int W,
                     int R, int S, int stride, int pad, int OH, int OW)
{
    for (int c = 0; c < C; c++)
        for (int r = 0; r < R; r++)
            for (int s = 0; s < S; s++) {
                const float *d = dcol + ((long)(c * R + r) * S + s) * ld;
                int owa, owb;
                k_valid_cols(W, OW, s, stride, pad, &owa, &owb);
                for (int t = 0; t < nrows; t++, d += OW) {
                    long img = (t0 + t) / OH;
                    int ih = (int)(t0 + t - img * OH) * stride + r - pad;
                    if (ih < 0 || ih >= H)
                        continue;
                    float *xr = dx + ((img * C + c) * H + ih) * (long)W;
                    for (int ow = owa; ow < owb; ow++)
                        xr[ow * stride + s - pad] += d[ow];
                }
            }
}

/* With stride 1 and pad < R, S, dx is the forward conv of dy (K channels,
 * OH x OW) with w[k][c] rotated by 180 degrees and padding R-1-pad, S-1-pad:
 * an im2col of dy instead of a scatter-add into dx. Chosen unless C is so
 * small that rounding it up to the tile's rows wastes more than the
 * scatter-add costs (the first layer: C = 1 or 3). */
static int k_bwdx_as_conv(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd)
{
    if (!(stride == 1 && pad < R && pad < S && OH == H + 2 * pad - R + 1 && OW == W + 2 * pad - S + 1))
        return 0;
    long mr = k_op_mr(simd), RS = (long)R * S;
    long as_conv = k_rup(C, mr) * K * RS + 2 * K * RS, scatter = k_rup(C * RS, mr) * K + 4 * C * RS;
    return as_conv <= scatter;
}

/* With stride s >= 2, dx splits into s x s phases (rows s i + a, columns
 * s j + b), and each is a stride-1 conv of dy: row a meets the taps r = r0
 * + s t, r0 = (a + pad) mod s, from dy's row i + (a + pad) / s - t. So
 * phase (a, b) is the forward conv of dy with those taps flipped (Ra x Sb
 * of them) at padding Ra - 1 - (a + pad) / s, into ceil((H - a) / s) rows:
 * the same multiplies as the scatter-add's GEMM, without its col2im, which
 * wrote dx R*S times through strided stores (64 -> 128 channels, 3x3
 * stride 2, 16x16 outputs: the data gradient 1.3x the forward's time; 5x5
 * at 7x7 outputs 1.65x). One axis of a phase: */
typedef struct {
    int r0, R, pad, O; /* first tap, taps, padding of dy, outputs */
} KPhx;

static KPhx k_phx(int a, int R, int s, int pad, int H)
{
    KPhx p;
    p.r0 = (a + pad) % s;
    p.R = p.r0 < R ? (R - p.r0 + s - 1) / s : 0;
    p.pad = p.R - 1 - (a + pad) / s;
    p.O = H > a ? (H - a + s - 1) / s : 0;
    return p;
}

/* Taken with stride 2 or more where no phase reads dy from past its first
 * row or column, where the phases' multiplies (their planes cover dx, so
 * some meet dy's zero border: 1.31x the conv's for 3x3 at padding 0 on
 * even planes, where they were 7-18% slower) are at most 1.15x the conv's,
 * and for up to 256 channels of dy: the scatter-add's GEMM sums over them,
 * and with 512 (256 -> 512 at 14x14) its own sums made the col2im cheap
 * enough that the phases were 13-25% slower (and 6-30% faster from 256
 * down). With the as-conv path's measure of C's rounding to whole tiles
 * (the first layer's 3 channels). */
int k_bwdx_phases_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd)
{
    if (stride < 2 || K > 256)
        return 0;
    long mr = k_op_mr(simd), RS = (long)R * S, rows = 0, cols = 0;
    for (int a = 0; a < stride; a++) {
        KPhx pr = k_phx(a, R, stride, pad, H), ps = k_phx(a, S, stride, pad, W);
        if ((pr.R && pr.pad < 0) || (ps.R && ps.pad < 0))
            return 0;
        rows += (long)pr.O * pr.R, cols += (long)ps.O * ps.R;
    }
    if (100 * rows * cols > 115L * OH * R * OW * S)
        return 0;
    return k_rup(C, mr) * K * RS + 2 * K * RS <= k_rup(C * RS, mr) * K + 4 * C * RS;
}

enum { K_PHX_FLOATS = 1 << 17 }; /* a group's phases of dx: ~512 KB */

/* Images per group: whole images' phases in K_PHX_FLOATS, fixed by the
 * shape. */
static int k_phx_group(int N, int C, int H, int W)
{
    long g = K_PHX_FLOATS / ((long)C * H * W);
    return (int)k_max(1, k_min(N, g));
}

/* The phases' scratch: each phase's packed taps, then a group's phases
 * (phase p's g x C x Oa x Ob floats after phase p - 1's), then
 * k_conv_gemm's. */
static long k_phx_ws(int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd,
                     long *bufs, long *gws)
{
    long mr = k_op_mr(simd), pack = 0, g = 0;
    for (int a = 0; a < stride; a++)
        for (int b = 0; b < stride; b++) {
            KPhx pr = k_phx(a, R, stride, pad, H), ps = k_phx(b, S, stride, pad, W);
            pack += k_al(k_rup(C, mr) * K * pr.R * ps.R);
            if (pr.R && ps.R && pr.O && ps.O) {
                long e = k_gemm_ws(K, OH, OW, C, pr.R, ps.R, 1, ps.pad, pr.O, ps.O, simd).end;
                g = g > e ? g : e;
            }
        }
    *bufs = pack;
    *gws = pack + k_al((long)k_phx_group(N, C, H, W) * C * H * W);
    return *gws + g;
}

/* dx for images [lo, hi) by phases (k_bwdx_phases_ok). */
static void k_bwdx_phases(const float *restrict dy, const float *restrict w, float *restrict dx, float *restrict ws,
                          int N, int C, int H, int W, int K, int R, int S, int s, int pad, int OH, int OW, int simd,
                          int lo, int hi)
{
    int mr = k_op_mr(simd), RS = R * S, G = k_phx_group(N, C, H, W);
    long bufs, gws;
    k_phx_ws(N, C, H, W, K, R, S, s, pad, OH, OW, simd, &bufs, &gws);
    /* A_ab[c][(k*Ra + t)*Sb + u] = w[k][c][r0 + s (Ra-1-t)][q0 + s (Sb-1-u)], packed as k_op_pack does */
    float *d = ws;
    for (int a = 0; a < s; a++)
        for (int b = 0; b < s; b++) {
            KPhx pr = k_phx(a, R, s, pad, H), ps = k_phx(b, S, s, pad, W);
            float *d0 = d;
            for (int c0 = 0; c0 < C; c0 += mr)
                for (int k = 0; k < K; k++)
                    for (int t = 0; t < pr.R; t++)
                        for (int u = 0; u < ps.R; u++) {
                            long tap = (long)(pr.r0 + s * (pr.R - 1 - t)) * S + ps.r0 + s * (ps.R - 1 - u);
                            for (int i = 0; i < mr; i++)
                                *d++ = c0 + i < C ? w[((long)k * C + c0 + i) * RS + tap] : 0.0f;
                        }
            d = d0 + k_al(k_rup(C, mr) * K * pr.R * ps.R);
        }
    for (int n0 = lo; n0 < hi; n0 += G) {
        int g = k_min(G, hi - n0);
        const float *apack = ws;
        float *buf = ws + bufs;
        for (int a = 0; a < s; a++)
            for (int b = 0; b < s; b++) {
                KPhx pr = k_phx(a, R, s, pad, H), ps = k_phx(b, S, s, pad, W);
                long P = (long)pr.O * ps.O;
                if (pr.R && ps.R && P)
                    k_conv_gemm(dy + (long)n0 * K * OH * OW, apack, NULL, buf, ws + gws, K, OH, OW, C, C, pr.R, ps.R,
                                1, pr.pad, ps.pad, pr.O, ps.O, simd, 0, (long)g * pr.O, 0);
                else
                    for (long i = 0; i < g * C * P; i++)
                        buf[i] = 0.0f;
                apack += k_al(k_rup(C, mr) * K * pr.R * ps.R);
                buf += g * C * P;
            }
        /* dx's rows from the phases' */
        for (int n = 0; n < g; n++)
            for (int c = 0; c < C; c++)
                for (int ih = 0; ih < H; ih++) {
                    int a = ih % s, i = ih / s;
                    float *xr = dx + (((long)(n0 + n) * C + c) * H + ih) * W;
                    const float *src = ws + bufs;
                    for (int a2 = 0; a2 < a; a2++)
                        src += (long)g * C * k_phx(a2, R, s, pad, H).O * W;
                    KPhx pr = k_phx(a, R, s, pad, H);
                    for (int b = 0; b < s; b++) {
                        int Ob = k_phx(b, S, s, pad, W).O;
                        const float *sr = src + (((long)n * C + c) * pr.O + i) * Ob;
                        if (s == 2 && b == 0 && W % 2 == 0) {   /* two rows of W / 2 interleaved */
                            const float *s1 = src + (long)g * C * pr.O * Ob + (((long)n * C + c) * pr.O + i) * Ob;
                            for (int j = 0; j < W / 2; j++)
                                xr[2 * j] = sr[j], xr[2 * j + 1] = s1[j];
                            break;
                        }
                        for (int j = 0; j < Ob; j++)
                            xr[j * s + b] = sr[j];
                        src += (long)g * C * pr.O * Ob;
                    }
                }
    }
}

/* The scratch of the scatter-add backward: packed W^T, dy's block, dcol. */
typedef struct {
    int T;
    long ld, apack, dyc, dcol, end;
} KScatterWs;

static KScatterWs k_scatter_ws(int C, int K, int R, int S, int OH, int OW, int simd)
{
    KScatterWs g;
    long Mp = k_rup((long)C * R * S, k_op_mr(simd));
    g.T = k_blk_rows(OH, OW, K_FWD_COLS, k_op_nr(simd), K_MAX_COLS);
    g.ld = k_rup((long)g.T * OW, k_op_nr(simd));
    g.apack = 0;
    g.dyc = k_al(Mp * K);
    g.dcol = g.dyc + k_al((long)K * g.ld);
    g.end = g.dcol + Mp * g.ld;
    return g;
}


long k_conv_bwdx_ws(int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd)
{
    long bufs, gws;
    if (k_bwdx_as_conv(C, H, W, K, R, S, stride, pad, OH, OW, simd))
        return k_al(k_rup(C, k_op_mr(simd)) * K * R * S) +
               k_gemm_ws(K, OH, OW, C, R, S, 1, S - 1 - pad, H, W, simd).end;
    if (k_bwdx_phases_ok(C, H, W, K, R, S, stride, pad, OH, OW, simd))
        return k_phx_ws(N, C, H, W, K, R, S, stride, pad, OH, OW, simd, &bufs, &gws);
    return k_scatter_ws(C, K, R, S, OH, OW, simd).end;
}

void k_conv2d_bwd_x(const float *restrict dy, const float *restrict w, float *restrict dx, float *restrict ws, int N,
                    int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd, int lo,
                    int hi)
{
    (void)N;
    int RS = R * S, mr = k_op_mr(simd), nr = k_op_nr(simd);
    long Kd = (long)C * RS;
    if (lo >= hi)
        return;
    if (k_bwdx_as_conv(C, H, W, K, R, S, stride, pad, OH, OW, simd)) {
        /* A[c][(k*R + r)*S + s] = w[k][c][R-1-r][S-1-s], packed as k_op_pack does. */
        float *d = ws;
        for (int c0 = 0; c0 < C; c0 += mr)
            for (int k = 0; k < K; k++)
                for (int j = 0; j < RS; j++)
                    for (int i = 0; i < mr; i++)
                        *d++ = c0 + i < C ? w[((long)k * C + c0 + i) * RS + RS - 1 - j] : 0.0f;
        k_conv_gemm(dy, ws, NULL, dx, ws + k_al(k_rup(C, mr) * (long)K * RS), K, OH, OW, C, C, R, S, 1, R - 1 - pad,
                    S - 1 - pad, H, W, simd, (long)lo * H, (long)hi * H, 0);
        return;
    }
    if (k_bwdx_phases_ok(C, H, W, K, R, S, stride, pad, OH, OW, simd)) {
        k_bwdx_phases(dy, w, dx, ws, N, C, H, W, K, R, S, stride, pad, OH, OW, simd, lo, hi);
        return;
    }
    /* dcol = W^T dy block by block, scattered into dx, which starts at 0. */
    KScatterWs g = k_scatter_ws(C, K, R, S, OH, OW, simd);
    k_op_pack(simd, w, 1, Kd, (int)Kd, K, ws + g.apack);
    for (long i = (long)lo * C * H * W; i < (long)hi * C * H * W; i++)
        dx[i] = 0.0f;
    for (long t = (long)lo * OH; t < (long)hi * OH;) {
        int nrows = k_blk_next(t, hi, OH, g.T), qb = (int)k_rup((long)nrows * OW, nr);
        k_blk_in(dy, ws + g.dyc, g.ld, t, nrows, qb, K, OH, OW);
        k_op_gemm(simd, (int)Kd, K, ws + g.apack, ws + g.dyc, g.ld, qb, qb, ws + g.dcol, g.ld);
        k_col2im(ws + g.dcol, g.ld, t, nrows, dx, C, H, W, R, S, stride, pad, OH, OW);
        t += nrows;
    }
}

