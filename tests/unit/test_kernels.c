/* The kernels of runtime/kernels, compiled natively, against naive
 * references summed in double: every kernel, odd shapes, both tile widths
 * (simd 8 and 16), and the promise that a result does not depend on how
 * [0, units) was split between threads (bit for bit). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "k_kernels.h"

static const int simds[] = { 8, 16 };

static float *fmalloc(long n)
{
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    assert_non_null(p);
    return p;
}

/* Values in [-1, 1) from a fixed LCG. */
static void fill(float *v, long n, unsigned seed)
{
    for (long i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

/* NaN everywhere: an output the kernel forgets to write, or scratch it
 * trusts to be zero, shows. */
static float *garbage(long n)
{
    float *p = fmalloc(n);
    for (long i = 0; i < n; i++)
        p[i] = NAN;
    return p;
}

static void assert_close_d(const float *got, const double *want, long n, double tol, const char *what)
{
    for (long i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= tol * (1.0 + fabs(want[i]))))
            fail_msg("%s: element %ld: got %.9g, want %.9g", what, i, got[i], want[i]);
}

static void assert_same(const float *a, const float *b, long n, const char *what)
{
    if (memcmp(a, b, sizeof(float) * (size_t)n) != 0)
        fail_msg("%s: results differ with the split of the units", what);
}

/* a and b, from two kernels that sum alike, the same to the bit */
static void assert_bits(const float *a, const float *b, long n, const char *what)
{
    for (long i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0)
            fail_msg("%s: element %ld: %.9g, not %.9g to the bit", what, i, a[i], b[i]);
}

/* The splits each kernel is run with: all at once, in two, in three. */
static int split_count(int s) { return s + 1; }
static int split_at(int units, int s, int i) { return (int)((long)units * i / split_count(s)); }

/* ---------------- convolution ---------------- */

typedef struct {
    int N, C, H, W, K, R, S, stride, pad;
} ConvShape;

static void conv_ref(const ConvShape *s, int OH, int OW, const float *x, const float *w, const float *b,
                     const float *dy, int G, double *y, double *dx, double *dw, double *db)
{
    int N = s->N, C = s->C, H = s->H, W = s->W, K = s->K, R = s->R, S = s->S;
    memset(y, 0, sizeof(double) * (size_t)N * K * OH * OW);
    memset(dx, 0, sizeof(double) * (size_t)N * C * H * W);
    memset(dw, 0, sizeof(double) * (size_t)G * K * C * R * S);
    memset(db, 0, sizeof(double) * (size_t)G * K);
    for (int n = 0; n < N; n++) {
        int g = 0;
        while (!((long)g * N / G <= n && n < (long)(g + 1) * N / G))
            g++;
        for (int k = 0; k < K; k++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    long yi = (((long)n * K + k) * OH + oh) * OW + ow;
                    double acc = b[k];
                    db[(long)g * K + k] += dy[yi];
                    for (int c = 0; c < C; c++)
                        for (int r = 0; r < R; r++)
                            for (int q = 0; q < S; q++) {
                                int ih = oh * s->stride + r - s->pad, iw = ow * s->stride + q - s->pad;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                                    continue;
                                long xi = (((long)n * C + c) * H + ih) * W + iw, wi = (((long)k * C + c) * R + r) * S + q;
                                acc += (double)w[wi] * x[xi];
                                dx[xi] += (double)w[wi] * dy[yi];
                                dw[(long)g * K * C * R * S + wi] += (double)dy[yi] * x[xi];
                            }
                    y[yi] = acc;
                }
    }
}

static void conv_case(const ConvShape *s, int G)
{
    int N = s->N, C = s->C, H = s->H, W = s->W, K = s->K, R = s->R, S = s->S;
    int OH = (H + 2 * s->pad - R) / s->stride + 1, OW = (W + 2 * s->pad - S) / s->stride + 1;
    long nx = (long)N * C * H * W, nw = (long)K * C * R * S, ny = (long)N * K * OH * OW;
    float *x = fmalloc(nx), *w = fmalloc(nw), *b = fmalloc(K), *dy = fmalloc(ny);
    fill(x, nx, 1), fill(w, nw, 2), fill(b, K, 3), fill(dy, ny, 4);
    double *ry = malloc(sizeof(double) * (size_t)ny), *rdx = malloc(sizeof(double) * (size_t)nx),
           *rdw = malloc(sizeof(double) * (size_t)(G * nw)), *rdb = malloc(sizeof(double) * (size_t)G * K);
    conv_ref(s, OH, OW, x, w, b, dy, G, ry, rdx, rdw, rdb);
    char what[160];
    for (int si = 0; si < 2; si++) {
        int simd = simds[si];
        long nws = k_conv2d_ws(N, C, H, W, K, R, S, s->stride, s->pad, OH, OW, simd);
        float *ws = garbage(nws);
        float *y[3], *dx[3], *dw[3], *db[3];
        for (int sp = 0; sp < 3; sp++) {
            y[sp] = garbage(ny), dx[sp] = garbage(nx), dw[sp] = garbage(G * nw), db[sp] = garbage((long)G * K);
            /* split 2 runs its parts last first: a part that wrote past its
             * units would spoil one done before it */
            for (int q = 0; q < split_count(sp); q++) {
                int i = sp == 2 ? split_count(sp) - 1 - q : q;
                /* forward: output rows; in split 2, channel groups times rows */
                int kt = sp == 2 ? k_conv2d_groups(1, K, simd, 3) : 1;   /* a group of tiles per thread */
                int a = split_at(kt * N * OH, sp, i), e = split_at(kt * N * OH, sp, i + 1);
                k_conv2d_fwd(x, w, b, y[sp], ws, N, C, H, W, K, R, S, s->stride, s->pad, OH, OW, kt, simd, a, e);
                a = split_at(N, sp, i), e = split_at(N, sp, i + 1);
                k_conv2d_bwd_x(dy, w, dx[sp], ws, N, C, H, W, K, R, S, s->stride, s->pad, OH, OW, simd, a, e);
                /* weight gradient: chunks, in split 1 cut into 2 parts of
                 * the input channels, in split 2 into 4 (some empty where C
                 * has fewer dot tiles) */
                int cs = sp ? 2 * sp : 1;
                a = split_at(G * cs, sp, i), e = split_at(G * cs, sp, i + 1);
                k_conv2d_bwd_w(x, dy, dw[sp], db[sp], ws, N, C, H, W, K, R, S, s->stride, s->pad, OH, OW, G, cs, simd,
                               a, e);
            }
        }
        snprintf(what, sizeof what, "conv N%d C%d %dx%d K%d %dx%d stride %d pad %d G%d simd %d", N, C, H, W, K, R, S,
                 s->stride, s->pad, G, simd);
        assert_close_d(y[0], ry, ny, 1e-4, what);
        assert_close_d(dx[0], rdx, nx, 1e-4, what);
        assert_close_d(dw[0], rdw, G * nw, 1e-4, what);
        assert_close_d(db[0], rdb, (long)G * K, 1e-4, what);
        for (int sp = 1; sp < 3; sp++) {
            assert_same(y[0], y[sp], ny, what);
            assert_same(dx[0], dx[sp], nx, what);
            assert_same(dw[0], dw[sp], G * nw, what);
            assert_same(db[0], db[sp], (long)G * K, what);
        }
        /* One group per tile of channels (threads not known), in two calls:
         * the same outputs to the bit. */
        int kt = k_conv2d_groups(1, K, simd, 0);
        for (int i = 0; i < 2; i++)
            k_conv2d_fwd(x, w, b, y[1], ws, N, C, H, W, K, R, S, s->stride, s->pad, OH, OW, kt, simd,
                         split_at(kt * N * OH, 1, i), split_at(kt * N * OH, 1, i + 1));
        assert_same(y[0], y[1], ny, what);
        /* Without bias: the same weights gradient, no bias gradient. */
        k_conv2d_fwd(x, w, NULL, y[1], ws, N, C, H, W, K, R, S, s->stride, s->pad, OH, OW, 1, simd, 0, N * OH);
        for (long i = 0; i < ny; i++)
            ry[i] -= b[(i / ((long)OH * OW)) % K];
        assert_close_d(y[1], ry, ny, 1e-4, what);
        for (long i = 0; i < ny; i++)
            ry[i] += b[(i / ((long)OH * OW)) % K];
        k_conv2d_bwd_w(x, dy, dw[1], NULL, ws, N, C, H, W, K, R, S, s->stride, s->pad, OH, OW, G, 1, simd, 0, G);
        assert_same(dw[0], dw[1], G * nw, what);
        for (int sp = 0; sp < 3; sp++)
            free(y[sp]), free(dx[sp]), free(dw[sp]), free(db[sp]);
        free(ws);
    }
    free(x), free(w), free(b), free(dy), free(ry), free(rdx), free(rdw), free(rdb);
}

/* k_small.c: the forward, the data gradient (flip) and the weight and
 * bias gradients of small planes against the reference, and inference's
 * forward with batchnorm folded in and relu (k_conv2d_small_bn, with and
 * without bias), as dot products (k_conv2d_small_dot, whose rows of
 * C * R * S floats end off whole vectors where C is odd) and from prepared
 * weights (k_conv2d_small_pix: k_conv2d_small_bn's bits), and the same
 * bits however the units split, by output channels alone or (but for
 * the weight gradient) by images as well; with 16- and 8-float tiles,
 * channel and image counts off the tile sizes (40 input channels: two
 * tiles of them), dot products over groups of images (512 channels), taps
 * that fall off every side, stride 2 (odd planes too: input pixels no
 * output reads). */
static void test_conv_small(void **state)
{
    (void)state;
    const ConvShape shapes[] = {
        { 5, 17, 2, 2, 18, 3, 3, 1, 1 }, { 33, 16, 4, 4, 20, 3, 3, 1, 1 }, { 3, 20, 3, 3, 16, 3, 3, 1, 1 },
        { 2, 16, 1, 1, 17, 3, 3, 1, 1 }, { 4, 18, 4, 2, 16, 1, 1, 1, 0 }, { 3, 16, 4, 4, 16, 5, 5, 1, 2 },
        { 2, 16, 4, 4, 16, 3, 3, 1, 0 }, { 3, 17, 8, 8, 16, 3, 3, 2, 1 }, { 2, 16, 7, 5, 18, 3, 3, 2, 1 },
        { 2, 16, 8, 8, 17, 1, 1, 2, 0 }, { 3, 40, 2, 3, 18, 3, 3, 1, 1 },
        { 5, 512, 4, 4, 18, 3, 3, 1, 1 }, /* dot products in groups of images: each image's columns 295 KB */
    };
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int simd = 8; simd <= 16; simd += 8) {
            const ConvShape *sh = &shapes[si];
            int N = sh->N, C = sh->C, H = sh->H, W = sh->W, K = sh->K, R = sh->R, S = sh->S;
            int OH = (H + 2 * sh->pad - R) / sh->stride + 1, OW = (W + 2 * sh->pad - S) / sh->stride + 1;
            /* 1x1 convs stay on the direct kernel, but the small one computes them too */
            assert_true(k_small_ok(C, H, W, K, R, S, sh->stride, sh->pad, OH, OW) == (R * S > 1));
            long nx = (long)N * C * H * W, nw = (long)K * C * R * S, ny = (long)N * K * OH * OW;
            float *x = fmalloc(nx), *w = fmalloc(nw), *b = fmalloc(K), *dy = fmalloc(ny);
            fill(x, nx, 11), fill(w, nw, 12), fill(b, K, 13), fill(dy, ny, 14);
            double *ry = malloc(sizeof(double) * (size_t)ny), *rdx = malloc(sizeof(double) * (size_t)nx),
                   *rdw = malloc(sizeof(double) * (size_t)nw), *rdb = malloc(sizeof(double) * (size_t)K);
            conv_ref(sh, OH, OW, x, w, b, dy, 1, ry, rdx, rdw, rdb);
            /* inference's batchnorm: the bias kept on even shapes, relu on odd ones */
            int bias = si % 2 == 0, relu = si % 2 == 1;
            float *gamma = fmalloc(K), *beta = fmalloc(K), *mean = fmalloc(K), *var = fmalloc(K);
            fill(gamma, K, 15), fill(beta, K, 16), fill(mean, K, 17), fill(var, K, 18);
            for (int k = 0; k < K; k++)
                var[k] = fabsf(var[k]) + 0.25f;
            double *rbn = malloc(sizeof(double) * (size_t)ny);
            for (long i = 0; i < ny; i++) {
                int k = (int)((i / ((long)OH * OW)) % K);
                double v = ry[i] - (bias ? 0.0 : b[k]);
                v = (v - mean[k]) * gamma[k] / sqrt((double)var[k] + 1e-5) + beta[k];
                rbn[i] = relu && v < 0 ? 0.0 : v;
            }
            long wsn = k_small_ws(N, C, H, W, K, R, S, OH, OW, simd);
            int group = k_small_dot_group(N, C, R, S, OH, OW);
            assert_true(C < 512 ? group == N : group > 1 && group < N - 1); /* and a last group of 2 or more */
            /* 1, 2 and 3 threads' shares of the units, then 2 and 3 with
             * the units split by their columns (k_small_split) */
            float *y[5], *dx[5], *dw[5], *db[5], *ybn[5], *ydot[5], *ypix[5];
            /* the prepared weights, by one thread and by 3 threads' shares */
            long npre = k_small_pre_floats(C, K, R, S, simd);
            int up = k_small_pre_units(K, simd);
            float *pre[2] = { garbage(npre), garbage(npre) };
            for (int i = 0; i < split_count(2); i++)
                k_conv2d_small_prep(w, bias ? b : NULL, gamma, beta, mean, var, pre[1], C, K, R, S, 1e-5f, simd,
                                    split_at(up, 2, i), split_at(up, 2, i + 1));
            k_conv2d_small_prep(w, bias ? b : NULL, gamma, beta, mean, var, pre[0], C, K, R, S, 1e-5f, simd, 0, up);
            assert_same(pre[0], pre[1], npre, "k_conv2d_small_prep");
            for (int sp = 0; sp < 5; sp++) {
                y[sp] = garbage(ny), dx[sp] = garbage(nx), dw[sp] = garbage(nw), db[sp] = garbage(K);
                ybn[sp] = garbage(ny), ydot[sp] = garbage(ny), ypix[sp] = garbage(ny);
                int split = sp >= 3, th = split ? sp - 2 : sp;
                for (int i = 0; i < split_count(th); i++) {
                    float *ws = garbage(wsn);
                    int ni = split ? k_small_cols(N, simd) : 1;
                    int uk = k_small_units(K, simd) * ni, uc = k_small_units(C, simd) * ni;
                    int uw = k_small_units(K, simd);
                    k_conv2d_small(x, w, b, y[sp], ws, N, C, H, W, K, R, S, sh->stride, sh->pad, OH, OW, 0, split,
                                   simd, split_at(uk, th, i), split_at(uk, th, i + 1));
                    k_conv2d_small(dy, w, NULL, dx[sp], ws, N, C, H, W, K, R, S, sh->stride, sh->pad, OH, OW, 1,
                                   split, simd, split_at(uc, th, i), split_at(uc, th, i + 1));
                    k_conv2d_small_bwd_w(x, dy, dw[sp], db[sp], ws, N, C, H, W, K, R, S, sh->stride, sh->pad, OH,
                                         OW, simd, split_at(uw, th, i), split_at(uw, th, i + 1));
                    k_conv2d_small_bn(x, w, bias ? b : NULL, gamma, beta, mean, var, ybn[sp], ws, N, C, H, W, K, R, S,
                                      sh->stride, sh->pad, OH, OW, 1e-5f, relu, split, simd, split_at(uk, th, i),
                                      split_at(uk, th, i + 1));
                    int ud = k_small_dot_units(K, OH * OW, simd);
                    k_conv2d_small_dot(x, w, bias ? b : NULL, gamma, beta, mean, var, ydot[sp], ws, N, C, H, W, K, R,
                                       S, sh->stride, sh->pad, OH, OW, 1e-5f, relu, simd, split_at(ud, th, i),
                                       split_at(ud, th, i + 1));
                    k_conv2d_small_pix(x, pre[sp % 2], ypix[sp], ws, N, C, H, W, K, R, S, sh->stride, sh->pad, OH, OW,
                                       relu, simd, split_at(up, th, i), split_at(up, th, i + 1));
                    free(ws);
                }
                if (sp == 0) {
                    /* float sums of C R S terms drift from the double ones as its square
                     * root: 1e-5 up to 360 terms (40 channels), more for 512 channels */
                    double tol = 1e-5 * sqrt(fmax(1.0, C * R * S / 360.0));
                    assert_close_d(y[0], ry, ny, tol, "k_conv2d_small");
                    assert_close_d(dx[0], rdx, nx, 1e-5, "k_conv2d_small flip");
                    assert_close_d(dw[0], rdw, nw, 1e-5, "k_conv2d_small_bwd_w");
                    assert_close_d(db[0], rdb, K, 1e-5, "k_conv2d_small_bwd_w bias");
                    assert_close_d(ybn[0], rbn, ny, tol, "k_conv2d_small_bn");
                    assert_close_d(ydot[0], rbn, ny, tol, "k_conv2d_small_dot");
                    assert_bits(ypix[0], ybn[0], ny, "k_conv2d_small_pix against k_conv2d_small_bn");
                } else {
                    assert_same(y[0], y[sp], ny, "k_conv2d_small");
                    assert_same(dx[0], dx[sp], nx, "k_conv2d_small flip");
                    assert_same(dw[0], dw[sp], nw, "k_conv2d_small_bwd_w");
                    assert_same(db[0], db[sp], K, "k_conv2d_small_bwd_w bias");
                    assert_same(ybn[0], ybn[sp], ny, "k_conv2d_small_bn");
                    assert_same(ydot[0], ydot[sp], ny, "k_conv2d_small_dot");
                    assert_same(ypix[0], ypix[sp], ny, "k_conv2d_small_pix");
                }
            }
            for (int sp = 0; sp < 5; sp++)
                free(y[sp]), free(dx[sp]), free(dw[sp]), free(db[sp]), free(ybn[sp]), free(ydot[sp]), free(ypix[sp]);
            free(pre[0]), free(pre[1]);
            free(x), free(w), free(b), free(dy), free(ry), free(rdx), free(rdw), free(rdb);
            free(gamma), free(beta), free(mean), free(var), free(rbn);
        }
}

/* How a small batch's forward conv splits its channels: no more groups
 * than threads (each group unfolds the input again), none for many rows. */
static void test_conv_groups(void **state)
{
    (void)state;
    assert_int_equal(k_conv2d_groups(14, 64, 8, 1), 1);      /* one thread: the rows alone */
    assert_int_equal(k_conv2d_groups(14, 64, 8, 2), 2);
    assert_int_equal(k_conv2d_groups(7, 128, 16, 32), 16);   /* 16 tiles of 8 channels: a group each */
    assert_int_equal(k_conv2d_groups(14, 64, 8, 0), 16);     /* threads not known: a group per tile */
    assert_int_equal(k_conv2d_groups(28, 64, 8, 2), 1);      /* enough rows */
    assert_int_equal(k_conv2d_groups(14, 4, 8, 2), 1);       /* one tile */
    /* Winograd's units are images: fewer images than threads split channels */
    assert_int_equal(k_wino_groups(1, 64, 8, 2), 2);
    assert_int_equal(k_wino_groups(2, 64, 8, 2), 1);         /* an image a thread */
    assert_int_equal(k_wino_groups(3, 64, 8, 16), 6);        /* 18 units on 16 threads */
    assert_int_equal(k_wino_groups(1, 16, 16, 16), 2);       /* 2 tiles of 8 channels */
    assert_int_equal(k_wino_groups(1, 64, 8, 1), 1);         /* one thread */
    assert_int_equal(k_wino_groups(1, 64, 8, 0), 1);         /* threads not known */
    /* a weight gradient's 8 chunks cut into parts of input channels: no
     * more units than threads, parts of 16 channels or more */
    assert_int_equal(k_bwdw_splits(32, 8, 2), 1);
    assert_int_equal(k_bwdw_splits(32, 8, 15), 1);           /* 16 units on 15 threads: one would run two */
    assert_int_equal(k_bwdw_splits(32, 8, 16), 2);
    assert_int_equal(k_bwdw_splits(32, 8, 40), 2);           /* not 5 parts of 6 channels */
    assert_int_equal(k_bwdw_splits(64, 8, 40), 4);
    assert_int_equal(k_bwdw_splits(512, 8, 24), 3);
    assert_int_equal(k_bwdw_splits(3, 8, 64), 1);            /* an RGB input */
    assert_int_equal(k_bwdw_splits(64, 8, 0), 1);            /* threads not known */
}

static void test_conv(void **state)
{
    (void)state;
    static const ConvShape shapes[] = {
        { 3, 1, 28, 28, 32, 3, 3, 1, 1 },  /* SimCNN's first layer, small batch */
        { 2, 3, 9, 9, 8, 3, 3, 1, 1 },     /* "same" 3x3 */
        { 4, 7, 14, 14, 20, 3, 3, 1, 1 },  /* K not a multiple of any tile */
        { 5, 4, 7, 7, 9, 3, 3, 1, 1 },     /* several images per block */
        { 1, 16, 32, 32, 17, 3, 3, 1, 1 }, /* CIFAR size */
        { 1, 2, 40, 40, 3, 3, 3, 1, 1 },   /* blocks that slice an image */
        { 3, 5, 13, 11, 10, 3, 3, 2, 1 },  /* stride 2 */
        { 2, 6, 8, 8, 12, 1, 1, 2, 0 },    /* 1x1 stride 2: a residual projection */
        { 2, 8, 5, 5, 6, 1, 1, 1, 0 },     /* 1x1 stride 1: im2col is a copy */
        { 2, 4, 7, 7, 3, 5, 5, 1, 2 },     /* 5x5 */
        { 2, 3, 10, 10, 5, 3, 3, 1, 0 },   /* no padding */
        { 3, 20, 6, 6, 9, 3, 3, 1, 1 },    /* 5 dot tiles of input channels: 2 and 4 parts of them */
        { 2, 3, 8, 6, 4, 3, 2, 1, 1 },     /* R != S */
        { 2, 2, 6, 6, 3, 3, 3, 1, 3 },     /* pad >= R: the scatter-add backward */
        { 2, 3, 9, 9, 4, 3, 3, 3, 0 },     /* stride 3 */
        { 1, 1, 1, 1, 1, 1, 1, 1, 0 },     /* tiny */
        /* stride 1 on rows of 12 floats and more, 16-float tiles: the GEMMs
         * read the padded input rows (k_conv_rows, k_bwdw_rows) */
        { 2, 6, 28, 28, 20, 5, 5, 1, 2 }, /* 5x5 on rows of 28: a row's last tile past its end */
        { 3, 5, 13, 13, 9, 3, 3, 1, 1 },  /* rows of 13: one tile, 3 lanes past the row */
        { 2, 9, 12, 12, 16, 1, 1, 1, 0 }, /* 1x1 on rows of 12 */
        { 2, 3, 17, 17, 8, 5, 5, 1, 1 },  /* 5x5, pad 1: rows of 15 */
        { 7, 8, 16, 16, 12, 3, 3, 1, 1 }, /* weight gradient's blocks of whole images from the rows */
        /* C*R*S large: im2col blocks of fewer columns (at most 1 MB) */
        { 7, 40, 7, 7, 24, 5, 5, 1, 2 },  /* 1000 taps: blocks of 5 whole images, not 13 */
        { 2, 96, 12, 12, 8, 5, 5, 1, 2 }, /* 2400 taps: slices of 9 rows of one image */
        /* stride 2 and 3: dx by phases (k_bwdx_phases_ok), each a stride-1 conv of dy */
        { 3, 16, 16, 16, 24, 3, 3, 2, 1 }, /* ResNet's stride 2: 1x1, 1x2, 2x1 and 2x2 taps */
        { 2, 16, 15, 13, 10, 5, 5, 2, 1 }, /* 5x5, odd planes: phases of 8 and 7 rows and columns */
        { 2, 16, 14, 14, 8, 5, 5, 2, 2 },  /* 5x5, pad 2 */
        { 2, 16, 11, 11, 8, 5, 5, 2, 3 },  /* 5x5, pad 3 */
        { 3, 16, 28, 24, 12, 3, 3, 2, 1 }, /* phases of rows 14 and 12 wide: from the padded rows */
        { 2, 16, 9, 9, 12, 3, 3, 3, 0 },   /* stride 3: nine 1x1 phases */
        { 3, 64, 64, 64, 16, 3, 3, 2, 1 }, /* 2 images a group of phases: 2 groups, cut anywhere */
        /* rows of 16 or fewer: two a tile (k_op_rows2_8x32); strided, from the input's phases */
        { 2, 4, 15, 16, 20, 1, 1, 1, 0 },  /* stride 1, 15 rows: a last row alone; K past a tile */
        { 2, 5, 14, 14, 12, 1, 1, 1, 0 },  /* rows of 14: the second row's lanes into the next pair's */
        { 2, 16, 32, 32, 20, 3, 3, 2, 1 }, /* ResNet's stride 2 into 16x16; dx's phases rows of 16 too */
        { 2, 3, 33, 32, 16, 7, 7, 2, 3 },  /* a 7x7 stem at stride 2: 17 rows of 16 */
        { 2, 24, 32, 32, 12, 1, 1, 2, 0 }, /* 1x1 stride 2: one phase of four read */
        { 2, 8, 48, 48, 8, 3, 3, 3, 0 },   /* stride 3: nine phases */
        { 1, 48, 32, 32, 8, 3, 3, 2, 1 },  /* 432 taps: the im2col */
    };
    /* the last NROWS shapes the rows of 16 or fewer, the NPHASES before them the strided data gradients */
    enum { NROWS = 7, NPHASES = 7 };
    size_t nshapes = sizeof shapes / sizeof *shapes;
    for (size_t i = 0; i < nshapes; i++)
        conv_case(&shapes[i], 3);
    /* the phases are what those shapes test: taken with both tile widths
     * (and for a 1x1 stride-2 projection, 3 of its phases zeros), not with 3
     * input channels, 512 of dy or at padding 0 on even planes */
    for (int simd = 8; simd <= 16; simd += 8) {
        for (size_t i = nshapes - NROWS - NPHASES; i < nshapes - NROWS; i++) {
            const ConvShape *h = &shapes[i];
            int OH = (h->H + 2 * h->pad - h->R) / h->stride + 1, OW = (h->W + 2 * h->pad - h->S) / h->stride + 1;
            assert_true(k_bwdx_phases_ok(h->C, h->H, h->W, h->K, h->R, h->S, h->stride, h->pad, OH, OW, simd));
        }
        assert_true(k_bwdx_phases_ok(6, 8, 8, 12, 1, 1, 2, 0, 4, 4, simd));
        assert_false(k_bwdx_phases_ok(3, 13, 11, 10, 3, 3, 2, 1, 7, 6, simd));
        assert_false(k_bwdx_phases_ok(256, 14, 14, 512, 3, 3, 2, 1, 7, 7, simd));
        assert_false(k_bwdx_phases_ok(64, 16, 16, 128, 3, 3, 2, 0, 7, 7, simd));
        /* the last shapes' forward from the rows (16-float tiles only), but
         * the one of 432 taps; none of the strided ones from the rows
         * before, nor at 14 or 32 a row */
        for (size_t i = nshapes - NROWS; i < nshapes; i++) {
            const ConvShape *h = &shapes[i];
            int OW = (h->W + 2 * h->pad - h->S) / h->stride + 1;
            assert_int_equal(k_conv_rows_ok(h->C, h->R, h->S, h->stride, OW, simd), simd == 16 && i + 1 < nshapes);
        }
        assert_false(k_conv_rows_ok(16, 3, 3, 2, 14, simd));
        assert_false(k_conv_rows_ok(16, 3, 3, 2, 32, simd));
        assert_int_equal(k_conv_rows_ok(16, 3, 3, 1, 14, simd), simd == 16);
    }
    /* one chunk; more chunks than images (empty chunks give zeros) */
    conv_case(&shapes[1], 1);
    conv_case(&shapes[3], 8);
}

/* Inference's conv with a batchnorm folded in and relu (k_conv2d_bn_fwd),
 * from an im2col and from the padded rows (stride 1, rows of 28 and 13),
 * with and without bias, against the double sums; the same bits however
 * the rows split, and with the channels in groups. */
static void test_conv_bn(void **state)
{
    (void)state;
    static const ConvShape shapes[] = {
        { 2, 6, 28, 28, 20, 5, 5, 1, 2 },
        { 3, 5, 13, 13, 9, 3, 3, 1, 1 },
        { 3, 5, 13, 11, 10, 3, 3, 2, 1 },
        { 5, 4, 7, 7, 9, 3, 3, 1, 1 },
    };
    for (size_t c = 0; c < sizeof shapes / sizeof *shapes; c++) {
        const ConvShape *s = &shapes[c];
        int N = s->N, C = s->C, H = s->H, W = s->W, K = s->K, R = s->R, S = s->S;
        int OH = (H + 2 * s->pad - R) / s->stride + 1, OW = (W + 2 * s->pad - S) / s->stride + 1;
        long nx = (long)N * C * H * W, nw = (long)K * C * R * S, ny = (long)N * K * OH * OW;
        float *x = fmalloc(nx), *w = fmalloc(nw), *b = fmalloc(K), *gm = fmalloc(K), *bt = fmalloc(K),
              *mean = fmalloc(K), *var = fmalloc(K), *dy = fmalloc(ny);
        fill(x, nx, 11), fill(w, nw, 12), fill(b, K, 13), fill(gm, K, 14), fill(bt, K, 15), fill(mean, K, 16);
        fill(var, K, 17), fill(dy, ny, 18);
        for (int k = 0; k < K; k++)
            var[k] = var[k] * var[k] + 0.1f;
        double *ry = malloc(sizeof(double) * (size_t)ny), *rdx = malloc(sizeof(double) * (size_t)nx),
               *rdw = malloc(sizeof(double) * (size_t)nw), *rdb = malloc(sizeof(double) * (size_t)K);
        for (int bias = 0; bias < 2; bias++) {
            float *zero = fmalloc(K);
            for (int k = 0; k < K; k++)
                zero[k] = 0.0f;
            conv_ref(s, OH, OW, x, w, bias ? b : zero, dy, 1, ry, rdx, rdw, rdb);
            free(zero);
            for (long i = 0; i < ny; i++) {
                int k = (int)((i / ((long)OH * OW)) % K);
                double v = (ry[i] - mean[k]) * gm[k] / sqrt((double)var[k] + 1e-5) + bt[k];
                ry[i] = v > 0 ? v : 0;
            }
            for (int si = 0; si < 2; si++) {
                int simd = simds[si];
                float *ws = garbage(k_conv2d_ws(N, C, H, W, K, R, S, s->stride, s->pad, OH, OW, simd));
                float *y[3];
                char what[160];
                snprintf(what, sizeof what, "conv_bn N%d C%d %dx%d K%d %dx%d stride %d bias %d simd %d", N, C, H, W, K,
                         R, S, s->stride, bias, simd);
                for (int sp = 0; sp < 3; sp++) {
                    y[sp] = garbage(ny);
                    int kt = sp == 2 ? k_conv2d_groups(1, K, simd, 3) : 1;
                    for (int i = 0; i < split_count(sp); i++)
                        k_conv2d_bn_fwd(x, w, bias ? b : NULL, gm, bt, mean, var, y[sp], ws, N, C, H, W, K, R, S,
                                        s->stride, s->pad, OH, OW, 1e-5f, 1, kt, simd, split_at(kt * N * OH, sp, i),
                                        split_at(kt * N * OH, sp, i + 1));
                }
                assert_close_d(y[0], ry, ny, 1e-4, what);
                assert_same(y[0], y[1], ny, what);
                assert_same(y[0], y[2], ny, what);
                for (int sp = 0; sp < 3; sp++)
                    free(y[sp]);
                free(ws);
            }
        }
        free(x), free(w), free(b), free(gm), free(bt), free(mean), free(var), free(dy);
        free(ry), free(rdx), free(rdw), free(rdb);
    }
}

/* The largest error of got against want, relative to 1 + |want|. */
static double worst_d(const float *got, const double *want, long n)
{
    double e = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]) / (1.0 + fabs(want[i]));
        e = d > e ? d : e;
    }
    return e;
}

/* Winograd F(2x2, 3x3) (alg 0), F(4x4, 3x3) (alg 1) or F(2x2, 5x5) (alg
 * 2): the forward conv, with a batchnorm folded in and a relu, the data
 * gradient (flip) and the weight gradient, against the direct sums; the
 * same bits however the images split. Transforms round differently: 1e-4
 * relative to the sizes of the terms (measured at most: F(2x2) 8e-7,
 * F(4x4) 1.3e-5, F(2x2, 5x5) 1.8e-5 times sqrt(C); MWTC_TEST_VERBOSE=1
 * prints them). */
typedef void Whole(const float *restrict, const float *restrict, const float *restrict, const float *restrict,
                   const float *restrict, const float *restrict, const float *restrict, const float *restrict,
                   float *restrict, float *restrict, int, int, int, int, int, float, int, int, int, int, int, int);
/* wino_case's kernels by one signature: F(2x2, 5x5) and F(4x4) take the
 * padding (wc_pad; their data gradient, flip, 4 - wc_pad and 2 - wc_pad),
 * F(2x2) 1. */
static int wc_alg, wc_pad;
static void wc_conv(const float *restrict x, const float *restrict w, const float *restrict b,
                    const float *restrict ga, const float *restrict be, const float *restrict mu,
                    const float *restrict va, const float *restrict pre, float *restrict y, float *restrict ws, int N,
                    int C, int H, int W, int K, float eps, int relu, int flip, int simd, int groups, int lo, int hi)
{
    if (wc_alg == 2)
        k_conv2d_wino25(x, w, b, ga, be, mu, va, pre, y, ws, N, C, H, W, K, flip ? 4 - wc_pad : wc_pad, eps, relu,
                        flip, simd, groups, lo, hi);
    else if (wc_alg == 1)
        k_conv2d_wino4(x, w, b, ga, be, mu, va, pre, y, ws, N, C, H, W, K, flip ? 2 - wc_pad : wc_pad, eps, relu, flip,
                       simd, groups, lo, hi);
    else
        k_conv2d_wino(x, w, b, ga, be, mu, va, pre, y, ws, N, C, H, W, K, eps, relu, flip, simd, groups, lo, hi);
}

static void wc_bwd_w(const float *restrict x, const float *restrict dy, float *restrict dw, float *restrict db,
                     float *restrict ws, int N, int C, int H, int W, int K, int G, int CS, int simd, int lo, int hi)
{
    if (wc_alg == 2)
        k_conv2d_wino25_bwd_w(x, dy, dw, db, ws, N, C, H, W, K, wc_pad, G, CS, simd, lo, hi);
    else if (wc_alg == 1)
        k_conv2d_wino4_bwd_w(x, dy, dw, db, ws, N, C, H, W, K, wc_pad, G, CS, simd, lo, hi);
    else
        k_conv2d_wino_bwd_w(x, dy, dw, db, ws, N, C, H, W, K, G, CS, simd, lo, hi);
}

static void wino_pad_case(int N, int C, int H, int W, int K, int alg, int pad)
{
    Whole *conv = wc_conv;
    wc_alg = alg, wc_pad = pad;
    double tol = 1e-4;
    int R = alg == 2 ? 5 : 3, OH = H + 2 * pad - R + 1, OW = W + 2 * pad - R + 1;
    ConvShape s = { N, C, H, W, K, R, R, 1, pad };
    long nx = (long)N * C * H * W, nw = (long)K * C * R * R, ny = (long)N * K * OH * OW;
    float *x = fmalloc(nx), *w = fmalloc(nw), *b = fmalloc(K), *dy = fmalloc(ny), *ga = fmalloc(K), *be = fmalloc(K),
          *mu = fmalloc(K), *va = fmalloc(K);
    fill(x, nx, 41), fill(w, nw, 42), fill(b, K, 43), fill(dy, ny, 44), fill(ga, K, 45), fill(be, K, 46), fill(mu, K, 47),
        fill(va, K, 48);
    for (int k = 0; k < K; k++)
        va[k] = 0.5f + va[k] * va[k];
    enum { G = 2 }; /* chunks of the weight gradient */
    double *ry = malloc(sizeof(double) * (size_t)ny), *rdx = malloc(sizeof(double) * (size_t)nx),
           *rdw = malloc(sizeof(double) * (size_t)(G * nw)), *rdb = malloc(sizeof(double) * (size_t)(G * K)),
           *rbn = malloc(sizeof(double) * (size_t)ny);
    conv_ref(&s, OH, OW, x, w, b, dy, G, ry, rdx, rdw, rdb);
    for (long i = 0; i < ny; i++) {
        int k = (int)(i / ((long)OH * OW) % K);
        double v = (ry[i] - mu[k]) / sqrt((double)va[k] + 1e-5) * ga[k] + be[k];
        rbn[i] = v > 0 ? v : 0;
    }
    char what[96];
    snprintf(what, sizeof what, "winograd %s N%d C%d %dx%d K%d pad %d", alg == 2 ? "F(2x2,5x5)" : alg ? "F(4x4)" : "F(2x2)",
             N, C, H, W, K, pad);
    /* F(2x2, 5x5) below the channels codegen gives it too: the kernel takes any */
    assert_true(alg == 2 || (pad == 1 ? k_wino_ok(C, H, W, K, 3, 3, 1, 1, H, W)
                                      : alg == 1 && k_wino4_ok(C, H, W, K, 3, 3, 1, pad, OH, OW)));
    for (int si = 0; si < 2; si++) {
        int simd = simds[si];
        long nws = k_wino_ws(C, H, W, K, simd), nwb = k_wino_ws(K, OH, OW, C, simd);
        if (alg) {
            long a = alg == 2 ? k_wino25_ws(C, H, W, K, pad, simd) : k_wino4_ws(C, H, W, K, pad, simd),
                 b4 = alg == 2 ? k_wino25_ws(K, OH, OW, C, 4 - pad, simd) : k_wino4_ws(K, OH, OW, C, 2 - pad, simd);
            nws = nws > a ? nws : a, nwb = nwb > b4 ? nwb : b4;
        }
        float *ws = garbage(nws > nwb ? nws : nwb), *y[3], *yb[3], *dx[3], *dw[3], *db[3];
        for (int sp = 0; sp < 3; sp++) {
            y[sp] = garbage(ny), yb[sp] = garbage(ny), dx[sp] = garbage(nx), dw[sp] = garbage(G * nw),
            db[sp] = garbage(G * K);
            for (int i = 0; i < split_count(sp); i++) {
                int a = split_at(N, sp, i), e = split_at(N, sp, i + 1);
                conv(x, w, b, NULL, NULL, NULL, NULL, NULL, y[sp], ws, N, C, H, W, K, 0.0f, 0, 0, simd, 1, a, e);
                conv(x, w, b, ga, be, mu, va, NULL, yb[sp], ws, N, C, H, W, K, 1e-5f, 1, 0, simd, 1, a, e);
                conv(dy, w, NULL, NULL, NULL, NULL, NULL, NULL, dx[sp], ws, N, K, OH, OW, C, 0.0f, 0, 1, simd, 1, a, e);
                int cs = sp ? 2 * sp + 1 : 1; /* 1, 3 and 5 parts of the input channels (k_bwdw_unit) */
                a = split_at(G * cs, sp, i), e = split_at(G * cs, sp, i + 1);
                wc_bwd_w(x, dy, dw[sp], db[sp], ws, N, C, H, W, K, G, cs, simd, a, e);
            }
        }
        /* the weight gradient sums over every tile of a chunk: 1e-4 of its size */
        assert_close_d(dw[0], rdw, G * nw, 1e-4 * sqrt((double)N * H * W), what);
        assert_close_d(db[0], rdb, G * K, 1e-4 * sqrt((double)N * H * W), what);
        if (getenv("MWTC_TEST_VERBOSE"))
            print_message("%s simd %d: worst y %.3g dx %.3g dw %.3g (relative, per sqrt of the terms)\n", what, simd,
                          worst_d(y[0], ry, ny) / sqrt(C), worst_d(dx[0], rdx, nx) / sqrt(K),
                          worst_d(dw[0], rdw, G * nw) / sqrt((double)N * H * W));
        assert_close_d(y[0], ry, ny, tol * sqrt(C), what);
        assert_close_d(yb[0], rbn, ny, tol * sqrt(C), what);
        assert_close_d(dx[0], rdx, nx, tol * sqrt(K), what);
        for (int sp = 1; sp < 3; sp++) {
            assert_same(y[0], y[sp], ny, what);
            assert_same(yb[0], yb[sp], ny, what);
            assert_same(dx[0], dx[sp], nx, what);
            assert_same(dw[0], dw[sp], G * nw, what);
            assert_same(db[0], db[sp], G * K, what);
        }
        wc_bwd_w(x, dy, dw[1], NULL, ws, N, C, H, W, K, G, 3, simd, 0, 3 * G); /* without the bias */
        assert_same(dw[0], dw[1], G * nw, what);
        /* each image alone, as at batch 1: its tiles in GEMM column tiles of
         * their own (the last one narrower, k_op_4x8_of_24), the same bits */
        for (int n = 0; n < N; n++) {
            conv(x + (long)n * C * H * W, w, b, ga, be, mu, va, NULL, yb[1], ws, 1, C, H, W, K, 1e-5f, 1, 0, simd, 1, 0,
                 1);
            assert_same(yb[0] + (long)n * K * OH * OW, yb[1], (long)K * OH * OW, what);
        }
        for (int gr = 2; gr <= 3; gr++) { /* output channels split in groups (a small batch): the same bits */
            for (int i = 0; i < split_count(2); i++) {
                int a = split_at(gr * N, 2, i), e = split_at(gr * N, 2, i + 1);
                conv(x, w, b, NULL, NULL, NULL, NULL, NULL, y[1], ws, N, C, H, W, K, 0.0f, 0, 0, simd, gr, a, e);
                conv(x, w, b, ga, be, mu, va, NULL, yb[1], ws, N, C, H, W, K, 1e-5f, 1, 0, simd, gr, a, e);
                conv(dy, w, NULL, NULL, NULL, NULL, NULL, NULL, dx[1], ws, N, K, OH, OW, C, 0.0f, 0, 1, simd, gr, a, e);
            }
            assert_same(y[0], y[1], ny, what);
            assert_same(yb[0], yb[1], ny, what);
            assert_same(dx[0], dx[1], nx, what);
        }
        /* U computed beforehand (an inference conv's, the preparation split
         * over its units): the same bits in one group or several */
        typedef void Prep(const float *restrict, const float *restrict, const float *restrict, const float *restrict,
                          const float *restrict, const float *restrict, float *restrict, float *restrict, int, int,
                          float, int, int, int);
        Prep *prep = alg == 2 ? k_conv2d_wino25_prep : alg ? k_conv2d_wino4_prep : k_conv2d_wino_prep;
        long np = alg ? k_wino4_pre_floats(C, K, simd) : k_wino_pre_floats(C, K, simd);
        float *pre = garbage(np), *preb = garbage(np);
        int pu = k_wino_pre_units(K, simd);
        for (int i = 0; i < split_count(2); i++) {
            prep(w, b, NULL, NULL, NULL, NULL, pre, ws, C, K, 0.0f, simd, split_at(pu, 2, i), split_at(pu, 2, i + 1));
            prep(w, b, ga, be, mu, va, preb, ws, C, K, 1e-5f, simd, split_at(pu, 2, i), split_at(pu, 2, i + 1));
        }
        for (int gr = 1; gr <= 3; gr++) {
            for (int i = 0; i < split_count(2); i++) {
                int a = split_at(gr * N, 2, i), e = split_at(gr * N, 2, i + 1);
                conv(x, w, b, NULL, NULL, NULL, NULL, pre, y[1], ws, N, C, H, W, K, 0.0f, 0, 0, simd, gr, a, e);
                conv(x, w, b, ga, be, mu, va, preb, yb[1], ws, N, C, H, W, K, 1e-5f, 1, 0, simd, gr, a, e);
            }
            assert_same(y[0], y[1], ny, what);
            assert_same(yb[0], yb[1], ny, what);
        }
        free(pre), free(preb);
        for (int sp = 0; sp < 3; sp++)
            free(y[sp]), free(yb[sp]), free(dx[sp]), free(dw[sp]), free(db[sp]);
        free(ws);
    }
    free(x), free(w), free(b), free(dy), free(ga), free(be), free(mu), free(va);
    free(ry), free(rdx), free(rdw), free(rdb), free(rbn);
}


static void wino_case(int N, int C, int H, int W, int K, int alg) { wino_pad_case(N, C, H, W, K, alg, alg == 2 ? 2 : 1); }

/* k_conv2d_wino_part: output rows < OH and columns < OW are k_conv2d_wino's
 * to the bit (with a folded batchnorm and a relu), every other element
 * k_conv2d_wino's or 0, however the images split. */
static void wino_part_case(int N, int C, int H, int W, int K, int OH, int OW)
{
    long nx = (long)N * C * H * W, nw = (long)K * C * 9, ny = (long)N * K * H * W;
    float *x = fmalloc(nx), *w = fmalloc(nw), *b = fmalloc(K), *ga = fmalloc(K), *be = fmalloc(K), *mu = fmalloc(K),
          *va = fmalloc(K);
    fill(x, nx, 51), fill(w, nw, 52), fill(b, K, 53), fill(ga, K, 55), fill(be, K, 56), fill(mu, K, 57), fill(va, K, 58);
    for (int k = 0; k < K; k++)
        va[k] = 0.5f + va[k] * va[k];
    char what[96];
    snprintf(what, sizeof what, "winograd part N%d C%d %dx%d K%d, %dx%d of it", N, C, H, W, K, OH, OW);
    for (int si = 0; si < 2; si++) {
        int simd = simds[si];
        float *ws = garbage(k_wino_ws(C, H, W, K, simd)), *full = garbage(ny), *part[3];
        k_conv2d_wino(x, w, b, ga, be, mu, va, NULL, full, ws, N, C, H, W, K, 1e-5f, 1, 0, simd, 1, 0, N);
        for (int sp = 0; sp < 3; sp++) {
            part[sp] = garbage(ny);
            for (int i = 0; i < split_count(sp); i++)
                k_conv2d_wino_part(x, w, b, ga, be, mu, va, NULL, NULL, NULL, NULL, NULL, part[sp], ws, N, C, H, W, K,
                                   1e-5f, 1, OH, OW, 0, simd, 1, split_at(N, sp, i), split_at(N, sp, i + 1));
        }
        for (long i = 0; i < ny; i++) {
            long r = i / W % H, c = i % W;
            if (r < OH && c < OW && memcmp(&part[0][i], &full[i], sizeof(float)) != 0)
                fail_msg("%s simd %d: element %ld differs in the part read", what, simd, i);
            if (part[0][i] != 0.0f && memcmp(&part[0][i], &full[i], sizeof(float)) != 0)
                fail_msg("%s simd %d: element %ld neither the conv's nor 0", what, simd, i);
        }
        for (int sp = 1; sp < 3; sp++)
            assert_same(part[0], part[sp], ny, what);
        /* with U computed beforehand: the same bits */
        float *pre = garbage(k_wino_pre_floats(C, K, simd));
        k_conv2d_wino_prep(w, b, ga, be, mu, va, pre, ws, C, K, 1e-5f, simd, 0, k_wino_pre_units(K, simd));
        k_conv2d_wino_part(x, w, b, ga, be, mu, va, pre, NULL, NULL, NULL, NULL, part[1], ws, N, C, H, W, K, 1e-5f, 1,
                           OH, OW, 0, simd, 1, 0, N);
        assert_same(part[0], part[1], ny, what);
        free(pre);
        for (int sp = 0; sp < 3; sp++)
            free(part[sp]);
        free(ws), free(full);
    }
    free(x), free(w), free(b), free(ga), free(be), free(mu), free(va);
}

/* The part kernels of F(2x2) and F(4x4) (k_conv2d_wino_part,
 * k_conv2d_wino4_part: the sweep's convs with keep vectors), alike. */
typedef void Part(const float *restrict, const float *restrict, const float *restrict, const float *restrict,
                  const float *restrict, const float *restrict, const float *restrict, const float *restrict,
                  const float *restrict, const float *restrict, const float *restrict, const int *restrict,
                  float *restrict, float *restrict, int, int, int, int, int, float, int, int, int, int, int, int, int,
                  int);

/* A part kernel with keep vectors: input channels switched off (and zero,
 * as a mask leaves them) left out of the sums, output channels switched
 * off written as zeros; the others equal the whole conv's (k_conv2d_wino,
 * k_conv2d_wino4) on the same input (a left-out zero term changes no sum
 * but a zero's sign). */
static void wino_keep_pad_case(int N, int C, int H, int W, int K, int alg, int pad)
{
    Part *kpart = alg == 2 ? k_conv2d_wino25_part : alg ? k_conv2d_wino4_part : k_conv2d_wino_part;
    Whole *whole = wc_conv; /* the part kernel's padding: its output's size says it */
    wc_alg = alg, wc_pad = pad;
    int four = alg != 0; /* 6x6 tiles: k_wino4.c's scratch and U */
    int OH = H + 2 * pad - (alg == 2 ? 4 : 2), OW = W + 2 * pad - (alg == 2 ? 4 : 2);
    long nx = (long)N * C * H * W, nw = (long)K * C * (alg == 2 ? 25 : 9), ny = (long)N * K * OH * OW;
    float *x = fmalloc(nx), *w = fmalloc(nw), *b = fmalloc(K), *ga = fmalloc(K), *be = fmalloc(K), *mu = fmalloc(K),
          *va = fmalloc(K), *ik = fmalloc(C), *ok = fmalloc(K);
    fill(x, nx, 61), fill(w, nw, 62), fill(b, K, 63), fill(ga, K, 65), fill(be, K, 66), fill(mu, K, 67), fill(va, K, 68);
    for (int k = 0; k < K; k++)
        va[k] = 0.5f + va[k] * va[k], ok[k] = (float)(k % 3 != 1);
    for (int c = 0; c < C; c++)
        ik[c] = (float)(c % 4 != 2);
    float *mask = fmalloc((long)N * K);
    for (long i = 0; i < (long)N * K; i++)   /* image 1: on only where the channel is switched off */
        mask[i] = i / K == 1 ? (float)(ok[i % K] == 0.0f) : 0.5f;
    for (long i = 0; i < nx; i++)   /* the switched-off inputs are zeros */
        if (ik[i / ((long)H * W) % C] == 0.0f)
            x[i] = 0.0f;
    char what[96];
    snprintf(what, sizeof what, "winograd %s keep N%d C%d %dx%d K%d pad %d",
             alg == 2 ? "F(2x2,5x5)" : four ? "F(4x4)" : "F(2x2)", N, C, H, W, K, pad);
    for (int si = 0; si < 2; si++) {
        int simd = simds[si];
        long nws = alg == 2 ? k_wino25_ws(C, H, W, K, pad, simd) : four ? k_wino4_ws(C, H, W, K, pad, simd)
                                                                : k_wino_ws(C, H, W, K, simd);
        float *ws = garbage(nws), *full = garbage(ny), *part = garbage(ny);
        whole(x, w, b, ga, be, mu, va, NULL, full, ws, N, C, H, W, K, 1e-5f, 1, 0, simd, 1, 0, N);
        /* and a mask that turns image 1 off on every kept channel (not on the
         * others): with the generators on, that image is zeros */
        for (int on = 0; on < 2; on++) {
            int gen = on;
            for (int i = 0; i < split_count(2); i++)
                kpart(x, w, b, ga, be, mu, va, NULL, ik, ok, mask, &gen, part, ws, N, C, H, W, K, 1e-5f, 1,
                                   OH, OW, 0, simd, 1, split_at(N, 2, i), split_at(N, 2, i + 1));
            for (long i = 0; i < ny; i++) {
                long n = i / ((long)K * OH * OW);
                float want = ok[i / ((long)OH * OW) % K] != 0.0f && !(on && n == 1) ? full[i] : 0.0f;
                if (part[i] != want)
                    fail_msg("%s simd %d generators %d: element %ld is %g, not %g", what, simd, on, i,
                             (double)part[i], (double)want);
            }
            /* the mask's application fused (apply): to the bit what
             * k_mask_apply_keep with its relu makes of the conv without one */
            float *plain = garbage(ny), *ref = garbage(ny), *fused = garbage(ny);
            /* plain's given a U made beforehand, which holds every channel:
             * with keep vectors it is not read (garbage here) */
            float *junk = garbage(four ? k_wino4_pre_floats(C, K, simd) : k_wino_pre_floats(C, K, simd));
            for (int i = 0; i < split_count(2); i++) {
                kpart(x, w, b, ga, be, mu, va, junk, ik, ok, mask, &gen, plain, ws, N, C, H, W, K, 1e-5f,
                                   0, OH, OW, 0, simd, 1, split_at(N, 2, i), split_at(N, 2, i + 1));
                kpart(x, w, b, ga, be, mu, va, NULL, ik, ok, mask, &gen, fused, ws, N, C, H, W, K, 1e-5f,
                                   1, OH, OW, 1, simd, 1, split_at(N, 2, i), split_at(N, 2, i + 1));
            }
            k_mask_apply_keep(plain, mask, ok, &gen, ref, OH * OW, K, 1, 0, N * K);
            if (memcmp(ref, fused, sizeof(float) * (size_t)ny) != 0)
                fail_msg("%s simd %d generators %d: the fused mask application differs", what, simd, on);
            /* output channels split in groups (a small batch), the image the
             * mask turns off included: the same bits */
            for (int gr = 2; gr <= 3; gr++) {
                float *gp = garbage(ny), *gf = garbage(ny);
                for (int i = 0; i < split_count(2); i++) {
                    int a = split_at(gr * N, 2, i), e = split_at(gr * N, 2, i + 1);
                    kpart(x, w, b, ga, be, mu, va, NULL, ik, ok, mask, &gen, gp, ws, N, C, H, W, K, 1e-5f,
                                       1, OH, OW, 0, simd, gr, a, e);
                    kpart(x, w, b, ga, be, mu, va, NULL, ik, ok, mask, &gen, gf, ws, N, C, H, W, K, 1e-5f,
                                       1, OH, OW, 1, simd, gr, a, e);
                }
                assert_same(part, gp, ny, what);
                assert_same(fused, gf, ny, what);
                free(gp), free(gf);
            }
            free(plain), free(ref), free(fused), free(junk);
            /* keep vectors that keep every channel (an inference graph's
             * whole model): U made beforehand is read. Made from other
             * weights w2 here, the conv is w2's, to the bit */
            float *all1 = fmalloc(C > K ? C : K), *w2 = fmalloc(nw), *with = garbage(ny), *want2 = garbage(ny);
            for (int i = 0; i < (C > K ? C : K); i++)
                all1[i] = 1.0f;
            fill(w2, nw, 69);
            float *pre2 = garbage(four ? k_wino4_pre_floats(C, K, simd) : k_wino_pre_floats(C, K, simd));
            if (alg == 2)
                k_conv2d_wino25_prep(w2, b, ga, be, mu, va, pre2, ws, C, K, 1e-5f, simd, 0, k_wino_pre_units(K, simd));
            else if (four)
                k_conv2d_wino4_prep(w2, b, ga, be, mu, va, pre2, ws, C, K, 1e-5f, simd, 0, k_wino_pre_units(K, simd));
            else
                k_conv2d_wino_prep(w2, b, ga, be, mu, va, pre2, ws, C, K, 1e-5f, simd, 0, k_wino_pre_units(K, simd));
            for (int i = 0; i < split_count(2); i++) {
                kpart(x, w, b, ga, be, mu, va, pre2, all1, all1, mask, &gen, with, ws, N, C, H, W, K, 1e-5f, 1, OH,
                      OW, 1, simd, 1, split_at(N, 2, i), split_at(N, 2, i + 1));
                kpart(x, w2, b, ga, be, mu, va, NULL, all1, all1, mask, &gen, want2, ws, N, C, H, W, K, 1e-5f, 1, OH,
                      OW, 1, simd, 1, split_at(N, 2, i), split_at(N, 2, i + 1));
            }
            if (memcmp(with, want2, sizeof(float) * (size_t)ny) != 0)
                fail_msg("%s simd %d generators %d: U made beforehand not read with every channel kept", what, simd,
                         on);
            free(all1), free(w2), free(with), free(want2), free(pre2);
        }
        free(ws), free(full), free(part);
    }
    free(x), free(w), free(b), free(ga), free(be), free(mu), free(va), free(ik), free(ok), free(mask);
}

/* at the padding the part kernels had before taking others: r / 2 */
static void wino_keep_case(int N, int C, int H, int W, int K, int alg)
{
    wino_keep_pad_case(N, C, H, W, K, alg, alg == 2 ? 2 : 1);
}

/* The part kernels leave input channels that are all zeros in an image
 * (a mask or relu before the conv switched them off) out of the sums of
 * its tiles' columns: the same bits as summing them. The images of a batch
 * share column tiles (some a channel is zero in only one of), a lone image
 * does not, so every image must come out as it does alone; and within the
 * Winograd tolerance of the direct sums. With and without keep vectors;
 * F(2x2)'s part kernel, or F(4x4)'s (four). */
static void wino_zeros_case(int N, int C, int H, int W, int K, int alg)
{
    Part *kpart = alg == 2 ? k_conv2d_wino25_part : alg ? k_conv2d_wino4_part : k_conv2d_wino_part;
    int four = alg != 0, R = alg == 2 ? 5 : 3;
    long nx = (long)N * C * H * W, nw = (long)K * C * R * R, ny = (long)N * K * H * W, per = (long)K * H * W;
    ConvShape sh = { N, C, H, W, K, R, R, 1, R / 2 };
    float *x = fmalloc(nx), *w = fmalloc(nw), *b = fmalloc(K), *ik = fmalloc(C);
    fill(x, nx, 71), fill(w, nw, 72), fill(b, K, 73);
    for (int c = 0; c < C; c++)
        ik[c] = (float)(c % 5 != 3);
    for (long i = 0; i < nx; i++) {   /* about half of each image's channels are zeros; image 1 all of them */
        long n = i / ((long)C * H * W), c = i / ((long)H * W) % C;
        if (n == 1 || (n * 7 + c * 3) % 5 < 2 || ik[c] == 0.0f)
            x[i] = 0.0f;
    }
    double *ry = malloc(sizeof(double) * (size_t)ny), *rdx = malloc(sizeof(double) * (size_t)nx),
           *rdw = malloc(sizeof(double) * (size_t)nw), *rdb = malloc(sizeof(double) * (size_t)K);
    float *dy = fmalloc(ny);
    fill(dy, ny, 74);
    conv_ref(&sh, H, W, x, w, b, dy, 1, ry, rdx, rdw, rdb);
    char what[96];
    snprintf(what, sizeof what, "winograd %s zero channels N%d C%d %dx%d K%d",
             alg == 2 ? "F(2x2,5x5)" : four ? "F(4x4)" : "F(2x2)", N, C, H, W, K);
    for (int si = 0; si < 2; si++) {
        int simd = simds[si];
        long nws = alg == 2 ? k_wino25_ws(C, H, W, K, 2, simd) : four ? k_wino4_ws(C, H, W, K, 1, simd)
                                                                : k_wino_ws(C, H, W, K, simd);
        float *ws = garbage(nws), *all[2], *one = garbage(per);
        for (int keep = 0; keep < 2; keep++) {
            all[keep] = garbage(ny);
            for (int i = 0; i < split_count(2); i++)
                kpart(x, w, b, NULL, NULL, NULL, NULL, NULL, keep ? ik : NULL, NULL, NULL, NULL, all[keep],
                                   ws, N, C, H, W, K, 0.0f, 0, H, W, 0, simd, 1, split_at(N, 2, i),
                                   split_at(N, 2, i + 1));
            for (int n = 0; n < N; n++)
                for (int gr = 1; gr <= 2; gr++) { /* alone, and its channels in two groups (one image, two threads) */
                    kpart(x + (long)n * C * H * W, w, b, NULL, NULL, NULL, NULL, NULL, keep ? ik : NULL,
                                       NULL, NULL, NULL, one, ws, 1, C, H, W, K, 0.0f, 0, H, W, 0, simd, gr, 0, gr);
                    if (memcmp(one, all[keep] + n * per, sizeof(float) * (size_t)per) != 0)
                        fail_msg("%s simd %d keep %d groups %d: image %d alone differs from it in the batch", what,
                                 simd, keep, gr, n);
                }
            assert_close_d(all[keep], ry, ny, 1e-4 * sqrt(C), what);
        }
        assert_same(all[0], all[1], ny, what);
        free(ws), free(all[0]), free(all[1]), free(one);
    }
    free(x), free(w), free(b), free(ik), free(dy), free(ry), free(rdx), free(rdw), free(rdb);
}

static void test_winograd(void **state)
{
    (void)state;
    for (int four = 0; four < 2; four++) {
        wino_case(3, 32, 28, 28, 32, four); /* SimCNN's second layer: blocks slice images */
        wino_case(4, 16, 7, 7, 24, four);   /* odd sizes: the last tiles hang over; several images a block */
        wino_case(2, 20, 9, 6, 17, four);   /* H != W, K not a multiple of a tile */
        wino_case(5, 64, 14, 14, 16, four); /* C > K */
        wino_case(2, 16, 5, 18, 40, four);  /* a tile row wider than 16 tiles at 4 a side: two chunks */
        wino_case(2, 16, 24, 22, 17, four); /* chunks of 16 tiles across tile rows of 6 (11): last tiles move */
        wino_case(2, 72, 9, 9, 40, four);   /* the weight gradient's blocks of channels, 3 x 2, the last ones partial */
    }
    /* F(2x2, 5x5): its tiles read 4 columns past their row's last (k_wino_strips' over) */
    wino_case(3, 32, 16, 16, 64, 2);  /* a 5x5 network's 16x16 layer */
    wino_case(4, 16, 7, 7, 24, 2);    /* odd sizes: the last tiles hang over */
    wino_case(2, 20, 9, 6, 17, 2);    /* H != W, K not a multiple of a tile */
    wino_case(2, 64, 8, 8, 16, 2);    /* C > K, 4 tiles a row */
    wino_case(2, 16, 4, 37, 40, 2);   /* a tile row wider than 16 tiles: two chunks */
    wino_case(2, 16, 24, 22, 17, 2);  /* chunks of 16 tiles across tile rows of 11: last tiles move */
    wino_case(2, 16, 4, 4, 16, 2);    /* the smallest: 2 tiles a row, the overhang past two rows */
    wino_case(2, 40, 8, 8, 72, 2);    /* the weight gradient's blocks of channels, 2 x 3, the last ones partial */
    /* other paddings (training's): the output's tiles, the input read from m tr - pad, the data gradient with 4 - pad */
    wino_pad_case(2, 32, 28, 28, 32, 2, 0); /* LeNet's valid 5x5: 24x24 out, its data gradient padding 4 */
    wino_pad_case(3, 17, 9, 11, 20, 2, 0);  /* 5x7 out: the last tiles hang over */
    wino_pad_case(2, 16, 12, 10, 16, 2, 1); /* 10x8 out */
    wino_pad_case(2, 20, 6, 7, 36, 2, 3);   /* 8x9 out, larger than the input */
    wino_pad_case(2, 16, 5, 4, 16, 2, 4);   /* 9x8 out */
    /* F(4x4) at paddings 0 and 2 (training's valid 3x3 convs; the data gradient with 2 - pad) */
    wino_pad_case(2, 32, 28, 28, 32, 1, 0); /* a valid 3x3: 26x26 out, its data gradient padding 2 */
    wino_pad_case(3, 17, 9, 11, 20, 1, 0);  /* 7x9 out: the last tiles hang over */
    wino_pad_case(2, 40, 14, 10, 72, 1, 0); /* 12x8 out; the weight gradient's blocks, 2 x 3, partial */
    wino_pad_case(2, 16, 6, 7, 36, 1, 2);   /* 8x9 out, larger than the input */
    wino_pad_case(2, 16, 4, 4, 16, 1, 2);   /* the smallest: 6x6 out from 4x4 */
    wino_part_case(4, 64, 7, 7, 24, 6, 6);   /* SimCNN's last conv before 2x2 max pooling */
    wino_part_case(3, 16, 9, 6, 17, 5, 6);   /* fewer tile rows only */
    wino_part_case(2, 8, 5, 40, 16, 5, 33);  /* fewer tiles in a row wider than 16 tiles */
    for (int alg = 0; alg < 3; alg++) { /* F(2x2), F(4x4), F(2x2, 5x5) */
        wino_keep_case(4, 36, 14, 14, 64, alg);  /* a sweep's union module: some channels switched off */
        wino_keep_case(3, 12, 7, 7, 9, alg);     /* output channels not a multiple of a register tile */
        if (alg == 1) {   /* F(4x4) at paddings 0 and 2 (a valid 3x3 conv's module): the output's size differs */
            wino_keep_pad_case(4, 36, 14, 14, 64, 1, 0);
            wino_keep_pad_case(3, 12, 9, 11, 9, 1, 0);
            wino_keep_pad_case(3, 20, 6, 7, 17, 1, 2);
        }
        wino_zeros_case(5, 36, 14, 14, 64, alg); /* a module's conv after a masked one: 49 tiles an image */
        wino_zeros_case(6, 16, 7, 7, 24, alg);   /* several images a column tile */
        wino_zeros_case(2, 20, 28, 28, 12, alg); /* blocks slice images */
    }
    assert_false(k_wino_ok(16, 8, 8, 16, 3, 3, 2, 1, 4, 4)); /* stride 2 */
    assert_false(k_wino_ok(16, 8, 8, 16, 5, 5, 1, 2, 8, 8)); /* 5x5 */
    assert_true(k_wino25_ok(16, 8, 8, 16, 5, 5, 1, 2, 8, 8));
    assert_true(k_wino25_ok(16, 8, 8, 16, 5, 5, 1, 1, 6, 6));   /* padding 1: training takes any */
    assert_true(k_wino25_ok(16, 8, 8, 16, 5, 5, 1, 0, 4, 4));   /* valid */
    assert_true(k_wino25_ok(16, 4, 4, 16, 5, 5, 1, 4, 8, 8));   /* a valid conv's data gradient */
    assert_false(k_wino25_ok(16, 6, 6, 16, 5, 5, 1, 0, 2, 2));  /* outputs of 2x2 */
    assert_false(k_wino25_ok(16, 8, 8, 16, 5, 5, 1, 5, 14, 14)); /* padding past 4 */
    assert_false(k_wino25_infer_ok(16, 8, 8, 32, 5, 5, 1, 1, 6, 6)); /* inference: padding 2 only */
    assert_false(k_wino25_ok(16, 8, 8, 16, 5, 5, 2, 2, 4, 4));  /* stride 2 */
    assert_false(k_wino25_ok(8, 8, 8, 32, 5, 5, 1, 2, 8, 8));   /* 8 input channels: direct in training */
    assert_false(k_wino25_ok(16, 8, 8, 16, 3, 3, 1, 1, 8, 8));  /* 3x3 */
    assert_true(k_wino25_infer_ok(8, 14, 14, 32, 5, 5, 1, 2, 14, 14));   /* inference: from 8 inputs */
    assert_false(k_wino25_infer_ok(16, 14, 14, 16, 5, 5, 1, 2, 14, 14)); /* but 16 outputs there: direct */
    assert_true(k_wino25_infer_ok(12, 28, 28, 16, 5, 5, 1, 2, 28, 28));  /* and at 28x28 from 12 inputs */
    assert_true(k_wino25_infer_ok(8, 7, 7, 2, 5, 5, 1, 2, 7, 7));        /* at 7x7 any outputs */
    assert_false(k_wino25_infer_ok(4, 7, 7, 64, 5, 5, 1, 2, 7, 7));      /* 4 inputs: direct */
    assert_true(k_wino25_bwd_w_ok(64, 8, 8, 128, 2) && k_wino25_bwd_w_ok(64, 14, 14, 64, 2));
    assert_false(k_wino25_bwd_w_ok(64, 7, 7, 128, 2)); /* 64 outputs computed for 49 */
    assert_false(k_wino25_bwd_w_ok(16, 16, 16, 32, 2)); /* 16 input channels */
    assert_true(k_wino25_bwd_w_ok(32, 28, 28, 32, 0));  /* valid: 24x24 outputs, none past the edge */
    assert_false(k_wino25_bwd_w_ok(32, 11, 11, 32, 0)); /* 7x7 outputs: 64 computed for 49 */
    assert_false(k_wino_ok(1, 28, 28, 32, 3, 3, 1, 1, 28, 28)); /* one input channel: direct */
    assert_true(k_wino_bwd_w_ok(32, 28, 28, 32) && k_wino_bwd_w_ok(64, 14, 14, 64));
    assert_false(k_wino_bwd_w_ok(64, 7, 7, 128)); /* a third of the tiles' outputs past the edge */
}

static void test_sum_parts(void **state)
{
    (void)state;
    const int G = 5, len = 37;
    float *part = fmalloc(G * len), *out[3];
    fill(part, G * len, 9);
    for (int sp = 0; sp < 3; sp++) {
        out[sp] = garbage(len);
        for (int i = 0; i < split_count(sp); i++)
            k_sum_parts(part, out[sp], G, len, split_at(len, sp, i), split_at(len, sp, i + 1));
    }
    for (int i = 0; i < len; i++) {
        float want = part[i];
        for (int g = 1; g < G; g++)
            want += part[g * len + i]; /* the same order, so the same bits */
        assert_true(out[0][i] == want);
    }
    assert_same(out[0], out[1], len, "sum_parts");
    assert_same(out[0], out[2], len, "sum_parts");
    for (int sp = 0; sp < 3; sp++)
        free(out[sp]);
    free(part);
}

/* ---------------- linear ---------------- */

static void linear_case(int B, int F, int O)
{
    float *x = fmalloc((long)B * F), *w = fmalloc((long)O * F), *b = fmalloc(O), *dy = fmalloc((long)B * O);
    fill(x, (long)B * F, 11), fill(w, (long)O * F, 12), fill(b, O, 13), fill(dy, (long)B * O, 14);
    double *ry = calloc((size_t)B * O, sizeof(double)), *rdx = calloc((size_t)B * F, sizeof(double)),
           *rdw = calloc((size_t)O * F, sizeof(double)), *rdb = calloc((size_t)O, sizeof(double));
    for (int i = 0; i < B; i++)
        for (int o = 0; o < O; o++) {
            double acc = b[o];
            for (int f = 0; f < F; f++) {
                acc += (double)x[(long)i * F + f] * w[(long)o * F + f];
                rdx[(long)i * F + f] += (double)dy[(long)i * O + o] * w[(long)o * F + f];
                rdw[(long)o * F + f] += (double)dy[(long)i * O + o] * x[(long)i * F + f];
            }
            ry[(long)i * O + o] = acc;
            rdb[o] += dy[(long)i * O + o];
        }
    char what[96];
    for (int si = 0; si < 2; si++) {
        int simd = simds[si];
        float *ws = garbage(k_linear_ws(B, F, O, simd)), *y[3], *dx[3], *dw[3], *db[3];
        for (int sp = 0; sp < 3; sp++) {
            y[sp] = garbage((long)B * O), dx[sp] = garbage((long)B * F), dw[sp] = garbage((long)O * F),
            db[sp] = garbage(O);
            for (int i = 0; i < split_count(sp); i++) {
                /* forward: rows; in split 2, groups of outputs times rows */
                int og = sp == 2 ? 3 : 1, a = split_at(og * B, sp, i), e = split_at(og * B, sp, i + 1);
                k_linear_fwd(x, w, b, y[sp], ws, B, F, O, og, simd, a, e);
                a = split_at(B, sp, i), e = split_at(B, sp, i + 1);
                k_linear_bwd_x(dy, w, dx[sp], ws, B, F, O, simd, a, e);
                a = split_at(O, sp, i), e = split_at(O, sp, i + 1);
                k_linear_bwd_w(x, dy, dw[sp], db[sp], ws, B, F, O, simd, a, e);
            }
        }
        snprintf(what, sizeof what, "linear B%d F%d O%d simd %d", B, F, O, simd);
        assert_close_d(y[0], ry, (long)B * O, 1e-4, what);
        assert_close_d(dx[0], rdx, (long)B * F, 1e-4, what);
        assert_close_d(dw[0], rdw, (long)O * F, 1e-4, what);
        assert_close_d(db[0], rdb, O, 1e-4, what);
        for (int sp = 1; sp < 3; sp++) {
            assert_same(y[0], y[sp], (long)B * O, what);
            assert_same(dx[0], dx[sp], (long)B * F, what);
            assert_same(dw[0], dw[sp], (long)O * F, what);
            assert_same(db[0], db[sp], O, what);
        }
        k_linear_fwd(x, w, NULL, y[1], ws, B, F, O, 1, simd, 0, B);
        for (long i = 0; i < (long)B * O; i++)
            ry[i] -= b[i % O];
        assert_close_d(y[1], ry, (long)B * O, 1e-4, what);
        for (long i = 0; i < (long)B * O; i++)
            ry[i] += b[i % O];
        for (int sp = 0; sp < 3; sp++)
            free(y[sp]), free(dx[sp]), free(dw[sp]), free(db[sp]);
        free(ws);
    }
    free(x), free(w), free(b), free(dy), free(ry), free(rdx), free(rdw), free(rdb);
}

static void test_linear(void **state)
{
    (void)state;
    linear_case(33, 200, 40);
    linear_case(7, 16, 10);
    linear_case(9, 70, 5);
    linear_case(1, 3, 1);
    linear_case(20, 288, 35);
}

/* ---------------- batchnorm ---------------- */

/* relu = 1: relu(batchnorm) and its gradient, the relu fused into both. */
static void bn_case(int N, int C, int HW, float offset, int relu)
{
    long n = (long)N * C * HW, M = (long)N * HW;
    float *x = fmalloc(n), *dy = fmalloc(n), *gamma = fmalloc(C), *beta = fmalloc(C);
    fill(x, n, 21), fill(dy, n, 22), fill(gamma, C, 23), fill(beta, C, 24);
    for (long i = 0; i < n; i++)
        x[i] += offset;
    const float momentum = 0.1f, eps = 1e-5f;
    double *ry = malloc(sizeof(double) * (size_t)n), *rdx = malloc(sizeof(double) * (size_t)n),
           *rstat = malloc(sizeof(double) * 2 * (size_t)C), *rrun = malloc(sizeof(double) * 2 * (size_t)C),
           *rdg = malloc(sizeof(double) * (size_t)C), *rdb = malloc(sizeof(double) * (size_t)C),
           *reval = malloc(sizeof(double) * (size_t)n);
    for (int c = 0; c < C; c++) {
        double s = 0, q = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < HW; j++)
                s += x[((long)i * C + c) * HW + j];
        double mean = s / M;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < HW; j++)
                q += (x[((long)i * C + c) * HW + j] - mean) * (x[((long)i * C + c) * HW + j] - mean);
        double var = q / M, inv = 1 / sqrt(var + eps), sdy = 0, sdyx = 0;
        rstat[c] = mean, rstat[C + c] = inv;
        /* running stats start at 0 and 1 */
        rrun[c] = momentum * mean, rrun[C + c] = (1 - momentum) + momentum * q / (M - 1);
        double einv = 1 / sqrt(rrun[C + c] + eps);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < HW; j++) {
                long k = ((long)i * C + c) * HW + j;
                ry[k] = (x[k] - mean) * inv * gamma[c] + beta[c];
                reval[k] = (x[k] - rrun[c]) * einv * gamma[c] + beta[c];
                double g = relu && ry[k] <= 0 ? 0 : dy[k];
                if (relu)
                    ry[k] = ry[k] > 0 ? ry[k] : 0;
                sdy += g, sdyx += g * (x[k] - mean) * inv;
            }
        rdg[c] = sdyx, rdb[c] = sdy;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < HW; j++) {
                long k = ((long)i * C + c) * HW + j;
                double g = relu && ry[k] <= 0 ? 0 : dy[k];
                rdx[k] = gamma[c] * inv * (g - sdy / M - (x[k] - mean) * inv * sdyx / M);
            }
    }
    float *y[3], *dx[3], *st[3], *rm[3], *rv[3], *dg[3], *db[3], *ye = garbage(n);
    for (int sp = 0; sp < 3; sp++) {
        y[sp] = garbage(n), dx[sp] = garbage(n), st[sp] = garbage(2 * C), dg[sp] = garbage(C), db[sp] = garbage(C);
        rm[sp] = fmalloc(C), rv[sp] = fmalloc(C);
        for (int c = 0; c < C; c++)
            rm[sp][c] = 0.0f, rv[sp][c] = 1.0f;
        for (int i = 0; i < split_count(sp); i++) {
            int a = split_at(C, sp, i), e = split_at(C, sp, i + 1);
            k_bn_fwd_train(x, gamma, beta, y[sp], st[sp], rm[sp], rv[sp], N, C, HW, momentum, eps, relu, a, e);
            k_bn_bwd(x, dy, gamma, st[sp], relu ? beta : NULL, dx[sp], dg[sp], db[sp], N, C, HW, relu, a, e);
        }
    }
    k_bn_fwd_eval(x, gamma, beta, rm[0], rv[0], ye, N, C, HW, eps, 0, C);
    char what[96];
    snprintf(what, sizeof what, "batchnorm N%d C%d HW%d offset %g relu %d", N, C, HW, offset, relu);
    /* The output of a normalization is O(1) whatever the offset, so its
     * error is measured against 1 + the offset's rounding. */
    assert_close_d(y[0], ry, n, 1e-4 * (1 + fabs(offset) / 16), what);
    assert_close_d(st[0], rstat, 2 * C, 1e-4, what);
    assert_close_d(rm[0], rrun, C, 1e-4, what);
    assert_close_d(rv[0], rrun + C, C, 1e-4, what);
    assert_close_d(ye, reval, n, 1e-4 * (1 + fabs(offset) / 16), what);
    assert_close_d(dg[0], rdg, C, 1e-4, what);
    assert_close_d(db[0], rdb, C, 1e-4, what);
    assert_close_d(dx[0], rdx, n, 1e-4 * (1 + fabs(offset) / 16), what);
    for (int sp = 1; sp < 3; sp++) {
        assert_same(y[0], y[sp], n, what), assert_same(dx[0], dx[sp], n, what);
        assert_same(st[0], st[sp], 2 * C, what), assert_same(rm[0], rm[sp], C, what);
        assert_same(rv[0], rv[sp], C, what), assert_same(dg[0], dg[sp], C, what);
        assert_same(db[0], db[sp], C, what);
    }
    for (int sp = 0; sp < 3; sp++)
        free(y[sp]), free(dx[sp]), free(st[sp]), free(rm[sp]), free(rv[sp]), free(dg[sp]), free(db[sp]);
    free(x), free(dy), free(gamma), free(beta), free(ye);
    free(ry), free(rdx), free(rstat), free(rrun), free(rdg), free(rdb), free(reval);
}

static void test_batchnorm(void **state)
{
    (void)state;
    for (int relu = 0; relu < 2; relu++) {
        bn_case(4, 3, 49, 0.0f, relu);
        bn_case(16, 5, 1, 0.0f, relu);  /* after a linear layer */
        bn_case(2, 4, 17, 100.0f, relu); /* a large mean: two passes keep the variance */
        bn_case(8, 2, 196, -3.0f, relu);
    }
}

/* k_bn_mask_fwd_train and k_bn_mask_bwd against the kernels they fuse
 * (k_bn_fwd_train, k_mask_apply_keep; k_mask_apply_keep_bwd, k_bn_bwd): the
 * same bits, with a keep vector that drops channels, the generators on and
 * off, with and without the relu, planes with and without a tail of 16, and
 * split over the units as threads split them. */
static void bn_mask_case(int N, int C, int HW, int relu, int generators)
{
    long n = (long)N * C * HW;
    float *x = fmalloc(n), *dy = fmalloc(n), *gamma = fmalloc(C), *beta = fmalloc(C), *m = fmalloc((long)N * C),
          *keep = fmalloc(C);
    fill(x, n, 31), fill(dy, n, 32), fill(gamma, C, 33), fill(beta, C, 34), fill(m, (long)N * C, 35);
    for (long i = 0; i < (long)N * C; i++)
        m[i] = m[i] > 0.3f ? 0.0f : m[i] + 0.75f; /* some planes off, as relu(tanh()) leaves them */
    for (int c = 0; c < C; c++)
        keep[c] = c % 3 == 1 ? 0.0f : 1.0f;
    const float momentum = 0.1f, eps = 1e-5f;
    /* the pair as the unfused graph runs them */
    float *t = garbage(n), *y = garbage(n), *st = garbage(2 * C), *rm = fmalloc(C), *rv = fmalloc(C);
    float *dt = garbage(n), *dm = garbage((long)N * C), *dx = garbage(n), *dg = garbage(C), *db = garbage(C);
    for (int c = 0; c < C; c++)
        rm[c] = 0.0f, rv[c] = 1.0f;
    k_bn_fwd_train(x, gamma, beta, t, st, rm, rv, N, C, HW, momentum, eps, 0, 0, C);
    k_mask_apply_keep(t, m, keep, &generators, y, HW, C, relu, 0, N * C);
    k_mask_apply_keep_bwd(t, m, keep, &generators, dy, dt, dm, HW, C, relu, 0, N * C);
    k_bn_bwd(x, dt, gamma, st, NULL, dx, dg, db, N, C, HW, 0, 0, C);
    char what[96];
    snprintf(what, sizeof what, "bn_mask N%d C%d HW%d relu %d generators %d", N, C, HW, relu, generators);
    for (int sp = 0; sp < 3; sp++) {
        float *fy = garbage(n), *fst = garbage(2 * C), *frm = fmalloc(C), *frv = fmalloc(C), *fdm = garbage((long)N * C),
              *fdx = garbage(n), *fdg = garbage(C), *fdb = garbage(C);
        for (int c = 0; c < C; c++)
            frm[c] = 0.0f, frv[c] = 1.0f;
        for (int i = 0; i < split_count(sp); i++) {
            int a = split_at(C, sp, i), e = split_at(C, sp, i + 1);
            k_bn_mask_fwd_train(x, gamma, beta, m, keep, &generators, fy, fst, frm, frv, N, C, HW, momentum, eps, relu,
                                a, e);
        }
        for (int i = 0; i < split_count(sp); i++) {
            int a = split_at(C, sp, i), e = split_at(C, sp, i + 1);
            k_bn_mask_bwd(x, dy, gamma, fst, beta, m, keep, &generators, fdx, fdg, fdb, fdm, N, C, HW, relu, a, e);
        }
        if (memcmp(fy, y, sizeof(float) * (size_t)n) || memcmp(fst, st, sizeof(float) * 2 * (size_t)C) ||
            memcmp(frm, rm, sizeof(float) * (size_t)C) || memcmp(frv, rv, sizeof(float) * (size_t)C))
            fail_msg("%s: the forward differs from the two kernels'", what);
        if (memcmp(fdm, dm, sizeof(float) * (size_t)N * C) || memcmp(fdx, dx, sizeof(float) * (size_t)n) ||
            memcmp(fdg, dg, sizeof(float) * (size_t)C) || memcmp(fdb, db, sizeof(float) * (size_t)C))
            fail_msg("%s: the gradient differs from the two kernels'", what);
        free(fy), free(fst), free(frm), free(frv), free(fdm), free(fdx), free(fdg), free(fdb);
    }
    free(x), free(dy), free(gamma), free(beta), free(m), free(keep);
    free(t), free(y), free(st), free(rm), free(rv), free(dt), free(dm), free(dx), free(dg), free(db);
}

/* k_bn_mask_pool_fwd_train and k_bn_mask_pool_bwd against the four
 * kernels they fuse (bn_mask's pair and k_maxpool_fwd, k_maxpool_bwd): the
 * same bits, windows that tile the plane, overlap, or leave a row and a
 * column out, with the backward's scratch keeping a channel's planes and
 * (N * H * W over 256K floats) making them again. */
static void bn_mask_pool_case(int N, int C, int H, int W, int k, int st, int relu, int generators)
{
    long HW = (long)H * W, n = N * C * HW;
    int OH = (H - k) / st + 1, OW = (W - k) / st + 1;
    long pn = (long)N * C * OH * OW;
    float *x = fmalloc(n), *dyp = fmalloc(pn), *gamma = fmalloc(C), *beta = fmalloc(C), *m = fmalloc((long)N * C),
          *keep = fmalloc(C);
    fill(x, n, 41), fill(dyp, pn, 42), fill(gamma, C, 43), fill(beta, C, 44), fill(m, (long)N * C, 45);
    for (long i = 0; i < (long)N * C; i++)
        m[i] = m[i] > 0.3f ? 0.0f : m[i] + 0.75f;
    for (int c = 0; c < C; c++)
        keep[c] = c % 3 == 1 ? 0.0f : 1.0f;
    const float momentum = 0.1f, eps = 1e-5f;
    float *t = garbage(n), *y = garbage(n), *py = garbage(pn), *st0 = garbage(2 * C), *rm = fmalloc(C),
          *rv = fmalloc(C), *dy = garbage(n), *dt = garbage(n), *dm = garbage((long)N * C), *dx = garbage(n),
          *dg = garbage(C), *db = garbage(C);
    for (int c = 0; c < C; c++)
        rm[c] = 0.0f, rv[c] = 1.0f;
    k_bn_fwd_train(x, gamma, beta, t, st0, rm, rv, N, C, (int)HW, momentum, eps, 0, 0, C);
    k_mask_apply_keep(t, m, keep, &generators, y, (int)HW, C, relu, 0, N * C);
    k_maxpool_fwd(y, py, H, W, k, st, OH, OW, 0, N * C);
    k_maxpool_bwd(y, dyp, dy, H, W, k, st, OH, OW, 0, N * C);
    k_mask_apply_keep_bwd(t, m, keep, &generators, dy, dt, dm, (int)HW, C, relu, 0, N * C);
    k_bn_bwd(x, dt, gamma, st0, NULL, dx, dg, db, N, C, (int)HW, 0, 0, C);
    char what[128];
    snprintf(what, sizeof what, "bn_mask_pool N%d C%d %dx%d k%d s%d relu %d generators %d", N, C, H, W, k, st, relu,
             generators);
    float *ws = garbage(k_bn_pool_ws(N, H, W));
    for (int sp = 0; sp < 3; sp++) {
        float *fy = garbage(pn), *fst = garbage(2 * C), *frm = fmalloc(C), *frv = fmalloc(C),
              *fdm = garbage((long)N * C), *fdx = garbage(n), *fdg = garbage(C), *fdb = garbage(C);
        for (int c = 0; c < C; c++)
            frm[c] = 0.0f, frv[c] = 1.0f;
        for (int i = 0; i < split_count(sp); i++) {
            int a = split_at(C, sp, i), e = split_at(C, sp, i + 1);
            k_bn_mask_pool_fwd_train(x, gamma, beta, m, keep, &generators, fy, fst, frm, frv, ws, N, C, H, W, k, st,
                                     OH, OW, momentum, eps, relu, a, e);
        }
        for (int i = 0; i < split_count(sp); i++) {
            int a = split_at(C, sp, i), e = split_at(C, sp, i + 1);
            k_bn_mask_pool_bwd(x, dyp, gamma, fst, beta, m, keep, &generators, fdx, fdg, fdb, fdm, ws, N, C, H, W, k,
                               st, OH, OW, relu, a, e);
        }
        if (memcmp(fy, py, sizeof(float) * (size_t)pn) || memcmp(fst, st0, sizeof(float) * 2 * (size_t)C) ||
            memcmp(frm, rm, sizeof(float) * (size_t)C) || memcmp(frv, rv, sizeof(float) * (size_t)C))
            fail_msg("%s: the forward differs from the three kernels'", what);
        if (memcmp(fdm, dm, sizeof(float) * (size_t)N * C) || memcmp(fdx, dx, sizeof(float) * (size_t)n) ||
            memcmp(fdg, dg, sizeof(float) * (size_t)C) || memcmp(fdb, db, sizeof(float) * (size_t)C))
            fail_msg("%s: the gradient differs from the three kernels'", what);
        free(fy), free(fst), free(frm), free(frv), free(fdm), free(fdx), free(fdg), free(fdb);
    }
    free(ws), free(x), free(dyp), free(gamma), free(beta), free(m), free(keep);
    free(t), free(y), free(py), free(st0), free(rm), free(rv), free(dy), free(dt), free(dm), free(dx), free(dg),
        free(db);
}

/* Without a mask, k_bn_mask_pool_* against k_bn_fwd_train (relu fused or
 * not), k_maxpool_fwd, k_maxpool_bwd and k_bn_bwd: the same bits. */
static void bn_pool_case(int N, int C, int H, int W, int k, int st, int relu)
{
    long HW = (long)H * W, n = N * C * HW;
    int OH = (H - k) / st + 1, OW = (W - k) / st + 1;
    long pn = (long)N * C * OH * OW;
    float *x = fmalloc(n), *dyp = fmalloc(pn), *gamma = fmalloc(C), *beta = fmalloc(C);
    fill(x, n, 51), fill(dyp, pn, 52), fill(gamma, C, 53), fill(beta, C, 54);
    float *y = garbage(n), *py = garbage(pn), *st0 = garbage(2 * C), *rm = fmalloc(C), *rv = fmalloc(C),
          *dy = garbage(n), *dx = garbage(n), *dg = garbage(C), *db = garbage(C), *ws = garbage(k_bn_pool_ws(N, H, W));
    float *fy = garbage(pn), *fst = garbage(2 * C), *frm = fmalloc(C), *frv = fmalloc(C), *fdx = garbage(n),
          *fdg = garbage(C), *fdb = garbage(C);
    for (int c = 0; c < C; c++)
        rm[c] = frm[c] = 0.0f, rv[c] = frv[c] = 1.0f;
    k_bn_fwd_train(x, gamma, beta, y, st0, rm, rv, N, C, (int)HW, 0.1f, 1e-5f, relu, 0, C);
    k_maxpool_fwd(y, py, H, W, k, st, OH, OW, 0, N * C);
    k_maxpool_bwd(y, dyp, dy, H, W, k, st, OH, OW, 0, N * C);
    k_bn_bwd(x, dy, gamma, st0, relu ? beta : NULL, dx, dg, db, N, C, (int)HW, relu, 0, C);
    k_bn_mask_pool_fwd_train(x, gamma, beta, NULL, NULL, NULL, fy, fst, frm, frv, ws, N, C, H, W, k, st, OH, OW, 0.1f,
                             1e-5f, relu, 0, C);
    k_bn_mask_pool_bwd(x, dyp, gamma, fst, beta, NULL, NULL, NULL, fdx, fdg, fdb, NULL, ws, N, C, H, W, k, st, OH, OW,
                       relu, 0, C);
    if (memcmp(fy, py, sizeof(float) * (size_t)pn) || memcmp(fst, st0, sizeof(float) * 2 * (size_t)C) ||
        memcmp(frm, rm, sizeof(float) * (size_t)C) || memcmp(frv, rv, sizeof(float) * (size_t)C) ||
        memcmp(fdx, dx, sizeof(float) * (size_t)n) || memcmp(fdg, dg, sizeof(float) * (size_t)C) ||
        memcmp(fdb, db, sizeof(float) * (size_t)C))
        fail_msg("bn_pool N%d C%d %dx%d k%d s%d relu %d: differs from the batchnorm's and the pooling's kernels", N, C,
                 H, W, k, st, relu);
    free(x), free(dyp), free(gamma), free(beta), free(y), free(py), free(st0), free(rm), free(rv), free(dy), free(dx),
        free(dg), free(db), free(ws), free(fy), free(fst), free(frm), free(frv), free(fdx), free(fdg), free(fdb);
}

static void test_bn_mask(void **state)
{
    for (int relu = 0; relu < 2; relu++) {
        bn_pool_case(4, 5, 14, 14, 2, 2, relu);
        bn_pool_case(3, 4, 7, 9, 3, 2, relu);
    }
    (void)state;
    for (int relu = 0; relu < 2; relu++)
        for (int gen = 0; gen < 2; gen++) {
            bn_mask_pool_case(4, 5, 14, 14, 2, 2, relu, gen);  /* windows that tile the plane */
            bn_mask_pool_case(3, 4, 7, 7, 2, 2, relu, gen);    /* a row and a column no window covers */
            bn_mask_pool_case(2, 3, 9, 11, 3, 2, relu, gen);   /* windows that overlap */
            bn_mask_pool_case(3, 3, 10, 10, 5, 5, relu, gen);  /* tiled, k = 5 */
        }
    assert_false(k_bn_pool_keeps(3, 300, 300));
    bn_mask_pool_case(3, 2, 300, 300, 2, 2, 1, 1);             /* the planes made again in the second pass */
    for (int relu = 0; relu < 2; relu++)
        for (int gen = 0; gen < 2; gen++) {
            bn_mask_case(4, 5, 49, relu, gen);  /* 3 vectors and a tail of 1 */
            bn_mask_case(3, 4, 64, relu, gen);  /* whole vectors */
            bn_mask_case(5, 3, 9, relu, gen);   /* a tail only */
            bn_mask_case(2, 6, 196, relu, gen);
        }
}

/* ---------------- elementwise ---------------- */

static void test_relu_add(void **state)
{
    (void)state;
    enum { n = 103 };
    float x[n], b[n], y[n], dy[n], dx[n], s[n];
    fill(x, n, 31), fill(b, n, 32), fill(dy, n, 33);
    x[0] = 0.0f;
    k_relu_fwd(x, y, 0, 50), k_relu_fwd(x, y, 50, n);
    k_relu_bwd(y, dy, dx, 0, n);
    k_add(x, b, s, 0, 7), k_add(x, b, s, 7, n);
    for (int i = 0; i < n; i++) {
        assert_true(y[i] == (x[i] > 0 ? x[i] : 0.0f));
        assert_true(dx[i] == (x[i] > 0 ? dy[i] : 0.0f));
        assert_true(s[i] == x[i] + b[i]);
    }
}

static void test_dropout(void **state)
{
    (void)state;
    enum { n = 100000 };
    float *x = fmalloc(n), *y = fmalloc(n), *y2 = fmalloc(n), *dx = fmalloc(n), *y3 = fmalloc(n);
    for (int i = 0; i < n; i++)
        x[i] = 1.0f + (float)(i % 7);
    unsigned long long seed = 0x123456789abcdefull;
    const float p = 0.3f;
    k_dropout_fwd(x, y, &seed, 5, p, 0, n);
    k_dropout_fwd(x, y2, &seed, 5, p, 0, 333), k_dropout_fwd(x, y2, &seed, 5, p, 333, n);
    assert_same(y, y2, n, "dropout");
    k_dropout_bwd(x, dx, &seed, 5, p, 0, n); /* dy = x: dx must equal y */
    assert_same(y, dx, n, "dropout backward");
    long kept = 0;
    for (int i = 0; i < n; i++)
        if (y[i] != 0.0f) {
            kept++;
            assert_true(fabsf(y[i] - x[i] / (1.0f - p)) <= 1e-6f * y[i]);
        }
    assert_true(fabs((double)kept / n - (1.0 - p)) < 0.01);
    /* another salt, another seed: other decisions, about as many kept */
    long same = 0, kept3 = 0;
    k_dropout_fwd(x, y3, &seed, 6, p, 0, n);
    for (int i = 0; i < n; i++)
        same += (y[i] != 0) == (y3[i] != 0), kept3 += y3[i] != 0;
    assert_true(fabs((double)same / n - (0.7 * 0.7 + 0.3 * 0.3)) < 0.01);
    assert_true(fabs((double)kept3 / n - 0.7) < 0.01);
    seed++;
    k_dropout_fwd(x, y3, &seed, 5, p, 0, n);
    same = 0;
    for (int i = 0; i < n; i++)
        same += (y[i] != 0) == (y3[i] != 0);
    assert_true(fabs((double)same / n - 0.58) < 0.01);
    k_dropout_fwd(x, y3, &seed, 5, 0.0f, 0, n);
    assert_same(x, y3, n, "dropout p = 0");
    k_dropout_fwd(x, y3, &seed, 5, 1.0f, 0, n);
    for (int i = 0; i < n; i++)
        assert_true(y3[i] == 0.0f);
    free(x), free(y), free(y2), free(dx), free(y3);
}

/* PyTorch's SGD by hand: d = g + wd p; buf = momentum buf + d (buf = d at
 * the first step); step = nesterov ? d + momentum buf : buf; p -= lr step. */
static void test_sgd(void **state)
{
    (void)state;
    float lr = 0.1f;
    float p[3] = { 1.0f, 1.0f, 1.0f }, g[3] = { 0.5f, 0.5f, 0.5f }, v[3] = { 0.2f, 0.2f, 0.2f };
    k_sgd(p, g, v, &lr, 0.9f, 0.01f, 1, 0, 1);
    k_sgd(p + 1, g + 1, v + 1, &lr, 0.9f, 0.01f, 0, 0, 1);
    k_sgd(p + 2, g + 2, NULL, &lr, 0.0f, 0.01f, 0, 0, 1);
    /* d = 0.51, buf = 0.9*0.2 + 0.51 = 0.69 */
    assert_float_equal(v[0], 0.69f, 1e-6f);
    assert_float_equal(p[0], 1.0f - 0.1f * (0.51f + 0.9f * 0.69f), 1e-6f); /* 0.8869 */
    assert_float_equal(v[1], 0.69f, 1e-6f);
    assert_float_equal(p[1], 0.931f, 1e-6f);
    assert_float_equal(p[2], 0.949f, 1e-6f);
    assert_float_equal(v[2], 0.2f, 0.0f);
    /* Several steps against a double-precision replay, from buf = 0. */
    enum { n = 37 };
    float pp[n], gg[n], vv[n], p2[n], v2[n];
    double rp[n], rv[n];
    fill(pp, n, 41);
    for (int i = 0; i < n; i++)
        rp[i] = p2[i] = pp[i], rv[i] = vv[i] = v2[i] = 0.0f;
    for (int step = 0; step < 5; step++) {
        fill(gg, n, 50 + step);
        k_sgd(pp, gg, vv, &lr, 0.9f, 5e-4f, 1, 0, n);
        k_sgd(p2, gg, v2, &lr, 0.9f, 5e-4f, 1, 0, 10), k_sgd(p2, gg, v2, &lr, 0.9f, 5e-4f, 1, 10, n);
        for (int i = 0; i < n; i++) {
            double d = gg[i] + 5e-4 * rp[i];
            rv[i] = step == 0 ? d : 0.9 * rv[i] + d;
            rp[i] -= 0.1 * (d + 0.9 * rv[i]);
        }
    }
    for (int i = 0; i < n; i++) {
        assert_true(fabs(pp[i] - rp[i]) < 1e-5);
        assert_true(fabs(vv[i] - rv[i]) < 1e-5);
    }
    assert_same(pp, p2, n, "sgd"), assert_same(vv, v2, n, "sgd");
}

/* ---------------- pooling ---------------- */

static void pool_case(int P, int H, int W, int k, int s)
{
    int OH = (H - k) / s + 1, OW = (W - k) / s + 1;
    long nx = (long)P * H * W, ny = (long)P * OH * OW;
    float *x = fmalloc(nx), *dy = fmalloc(ny);
    fill(x, nx, 61), fill(dy, ny, 62);
    for (long i = 0; i < nx; i += 3)
        x[i] = 0.25f; /* ties */
    double *rmy = calloc((size_t)ny, sizeof(double)), *rmdx = calloc((size_t)nx, sizeof(double)),
           *ray = calloc((size_t)ny, sizeof(double)), *radx = calloc((size_t)nx, sizeof(double));
    for (int p = 0; p < P; p++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                long yi = ((long)p * OH + oh) * OW + ow, best = -1;
                double sum = 0;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) {
                        long xi = ((long)p * H + oh * s + i) * W + ow * s + j;
                        if (best < 0 || x[xi] > x[best])
                            best = xi;
                        sum += x[xi];
                        radx[xi] += dy[yi] / (k * k);
                    }
                rmy[yi] = x[best], ray[yi] = sum / (k * k);
                rmdx[best] += dy[yi];
            }
    float *y[3], *dx[3], *ya[3], *dxa[3];
    for (int sp = 0; sp < 3; sp++) {
        y[sp] = garbage(ny), dx[sp] = garbage(nx), ya[sp] = garbage(ny), dxa[sp] = garbage(nx);
        for (int i = 0; i < split_count(sp); i++) {
            int a = split_at(P, sp, i), e = split_at(P, sp, i + 1);
            k_maxpool_fwd(x, y[sp], H, W, k, s, OH, OW, a, e);
            k_maxpool_bwd(x, dy, dx[sp], H, W, k, s, OH, OW, a, e);
            k_avgpool_fwd(x, ya[sp], H, W, k, s, OH, OW, a, e);
            k_avgpool_bwd(dy, dxa[sp], H, W, k, s, OH, OW, a, e);
        }
    }
    assert_close_d(y[0], rmy, ny, 1e-6, "maxpool");
    assert_close_d(dx[0], rmdx, nx, 1e-6, "maxpool backward");
    assert_close_d(ya[0], ray, ny, 1e-5, "avgpool");
    assert_close_d(dxa[0], radx, nx, 1e-5, "avgpool backward");
    for (int sp = 1; sp < 3; sp++) {
        assert_same(y[0], y[sp], ny, "maxpool"), assert_same(dx[0], dx[sp], nx, "maxpool");
        assert_same(ya[0], ya[sp], ny, "avgpool"), assert_same(dxa[0], dxa[sp], nx, "avgpool");
    }
    for (int sp = 0; sp < 3; sp++)
        free(y[sp]), free(dx[sp]), free(ya[sp]), free(dxa[sp]);
    free(x), free(dy), free(rmy), free(rmdx), free(ray), free(radx);
}

static void test_pool(void **state)
{
    (void)state;
    pool_case(5, 7, 7, 2, 2); /* 7 -> 3: the last row and column unused */
    pool_case(3, 28, 28, 2, 2); /* SimCNN's: 14 windows a row, part of a vector */
    pool_case(2, 40, 37, 2, 2); /* 18 windows a row: a whole vector and a part; W odd */
    pool_case(3, 8, 8, 3, 2); /* overlapping windows */
    pool_case(4, 6, 5, 2, 1);
    /* all equal: the whole gradient goes to each window's first element */
    float x[16], dy[4] = { 1, 2, 3, 4 }, dx[16];
    for (int i = 0; i < 16; i++)
        x[i] = 7.0f;
    k_maxpool_bwd(x, dy, dx, 4, 4, 2, 2, 2, 2, 0, 1);
    for (int i = 0; i < 16; i++)
        assert_true(dx[i] == (i == 0 ? 1.0f : i == 2 ? 2.0f : i == 8 ? 3.0f : i == 10 ? 4.0f : 0.0f));
}

static void test_gap(void **state)
{
    (void)state;
    enum { P = 6, HW = 49 };
    float x[P * HW], y[P], dy[P], dx[P * HW];
    fill(x, P * HW, 71), fill(dy, P, 72);
    k_gap_fwd(x, y, HW, 0, 2), k_gap_fwd(x, y, HW, 2, P);
    k_gap_bwd(dy, dx, HW, 0, P);
    for (int p = 0; p < P; p++) {
        double s = 0;
        for (int i = 0; i < HW; i++)
            s += x[p * HW + i];
        assert_true(fabs(y[p] - s / HW) < 1e-6);
        for (int i = 0; i < HW; i++)
            assert_true(fabs(dx[p * HW + i] - dy[p] / HW) < 1e-7);
    }
}

/* The mask generator (k_mask_gen_fwd) runs whole groups of 8 images a
 * lane each: every image's mask and saved values must be the same bits as
 * that image alone (one at a time), however the units split; and its
 * masks relu(tanh(w2 relu(w1 gap(x)) + b2)) within rounding. */
static void mask_gen_case(int N, int C, int HW, int Hd, int K)
{
    long nx = (long)N * C * HW, ns = (long)N * (C + Hd + K);
    float *x = fmalloc(nx), *w1 = fmalloc((long)Hd * C), *w2 = fmalloc((long)K * Hd), *b2 = fmalloc(K);
    fill(x, nx, 81), fill(w1, (long)Hd * C, 82), fill(w2, (long)K * Hd, 83), fill(b2, K, 84);
    for (long i = 0; i < (long)Hd * C; i++)
        w1[i] *= 4.0f; /* masks spread over (0, 1) and zeros */
    float *m[3], *sv[3];
    for (int v = 0; v < 3; v++)
        m[v] = garbage((long)N * K), sv[v] = garbage(ns);
    k_mask_gen_fwd(x, w1, w2, b2, m[0], sv[0], C, HW, Hd, K, 0, N);
    int at = N > 5 ? 5 : N / 2; /* groups of 8 from 0, then from 5 */
    k_mask_gen_fwd(x, w1, w2, b2, m[1], sv[1], C, HW, Hd, K, 0, at);
    k_mask_gen_fwd(x, w1, w2, b2, m[1], sv[1], C, HW, Hd, K, at, N);
    for (int n = 0; n < N; n++)
        k_mask_gen_fwd(x, w1, w2, b2, m[2], sv[2], C, HW, Hd, K, n, n + 1);
    char what[96];
    snprintf(what, sizeof what, "mask generator N%d C%d HW%d Hd%d K%d", N, C, HW, Hd, K);
    for (int v = 1; v < 3; v++) {
        assert_same(m[0], m[v], (long)N * K, what);
        assert_same(sv[0], sv[v], ns, what);
    }
    int on = 0;
    for (int n = 0; n < N; n++) {
        double g[512], h[512];
        for (int c = 0; c < C; c++) {
            g[c] = 0;
            for (int i = 0; i < HW; i++)
                g[c] += x[((long)n * C + c) * HW + i];
            g[c] /= HW;
        }
        for (int j = 0; j < Hd; j++) {
            h[j] = 0;
            for (int c = 0; c < C; c++)
                h[j] += (double)w1[(long)j * C + c] * g[c];
            h[j] = h[j] > 0 ? h[j] : 0;
        }
        for (int k = 0; k < K; k++) {
            double z = b2[k];
            for (int j = 0; j < Hd; j++)
                z += (double)w2[(long)k * Hd + j] * h[j];
            double want = tanh(z) > 0 ? tanh(z) : 0;
            on += want > 0;
            if (fabs(m[0][(long)n * K + k] - want) > 1e-5)
                fail_msg("%s: image %d channel %d is %g, not %g", what, n, k, (double)m[0][(long)n * K + k], want);
        }
    }
    assert_true(on > 0 && on < N * K);
    for (int v = 0; v < 3; v++)
        free(m[v]), free(sv[v]);
    free(x), free(w1), free(w2), free(b2);
}

static void test_mask_gen(void **state)
{
    (void)state;
    mask_gen_case(19, 36, 49, 64, 71);   /* SimCNN's last generator: two groups and 3 alone */
    mask_gen_case(16, 15, 196, 64, 36);  /* fewer inputs than 16 lanes */
    mask_gen_case(9, 40, 16, 24, 8);     /* 16-lane runs and a rest; a group and 1 alone */
    mask_gen_case(3, 300, 4, 16, 5);     /* wider than the groups' room: one at a time */
}

/* ---------------- loss ---------------- */

static void test_cross_entropy(void **state)
{
    (void)state;
    enum { N = 6, K = 10 };
    float l[N * K], rowloss[N], dl[N * K], mean, dloss = 2.0f;
    int labels[N] = { 0, 9, 3, 3, 5, 1 };
    fill(l, N * K, 81);
    for (int j = 0; j < K; j++)
        l[K + j] *= 1000.0f; /* row 1: overflows a naive expf */
    l[2 * K + 3] = 90.0f, l[2 * K + 4] = -90.0f;
    k_ce_fwd(l, labels, rowloss, N, K, 0, 4), k_ce_fwd(l, labels, rowloss, N, K, 4, N);
    k_mean(rowloss, &mean, N, 0, 1);
    k_ce_bwd(l, labels, &dloss, dl, N, K, 0, N);
    double msum = 0;
    for (int b = 0; b < N; b++) {
        double m = l[b * K], s = 0;
        for (int j = 0; j < K; j++)
            m = l[b * K + j] > m ? l[b * K + j] : m;
        for (int j = 0; j < K; j++)
            s += exp(l[b * K + j] - m);
        double want = log(s) + m - l[b * K + labels[b]];
        assert_true(isfinite(rowloss[b]));
        assert_true(fabs(rowloss[b] - want) <= 1e-4 * (1 + fabs(want)));
        msum += want;
        for (int j = 0; j < K; j++) {
            double d = (exp(l[b * K + j] - m) / s - (j == labels[b])) * dloss / N;
            assert_true(fabs(dl[b * K + j] - d) <= 1e-6);
        }
    }
    assert_true(fabs(mean - msum / N) <= 1e-4 * (1 + fabs(msum / N)));
}

/* ---------------- the reference GEMM ---------------- */

static void test_gemm(void **state)
{
    (void)state;
    enum { M = 5, N = 7, K = 3 };
    float A[M * K], B[K * N], C[M * N];
    fill(A, M * K, 91), fill(B, K * N, 92);
    k_gemm(M, N, K, A, B, C, 0);
    k_gemm(M, N, K, A, B, C, 1);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)A[i * K + k] * B[k * N + j];
            assert_true(fabs(C[i * N + j] - 2 * s) < 1e-5);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv),
        cmocka_unit_test(test_conv_bn),     cmocka_unit_test(test_conv_small),     cmocka_unit_test(test_conv_groups),     cmocka_unit_test(test_winograd),      cmocka_unit_test(test_sum_parts),     cmocka_unit_test(test_linear),
        cmocka_unit_test(test_batchnorm), cmocka_unit_test(test_bn_mask),     cmocka_unit_test(test_relu_add),     cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_sgd),      cmocka_unit_test(test_pool),          cmocka_unit_test(test_gap),
        cmocka_unit_test(test_mask_gen),
        cmocka_unit_test(test_cross_entropy), cmocka_unit_test(test_gemm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
