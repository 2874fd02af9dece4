/* The direct conv kernels of runtime/kernels (k_conv*.c, k_small*.c),
 * compiled natively, against naive references summed in double: odd
 * shapes, both tile widths (simd 8 and 16), and the promise that a result
 * does not depend on how [0, units) was split between threads (bit for
 * bit). kernel_test.h has the helpers; test_kernels_wino.c the Winograd
 * kernels, test_kernels_layers.c the other layers'. */
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
#include "k_small.h"
#include "k_tile.h"
#include "kernel_test.h"


static void conv_case(const KtConvShape *s, int G)
{
    int N = s->N, C = s->C, H = s->H, W = s->W, K = s->K, R = s->R, S = s->S;
    int OH = (H + 2 * s->pad - R) / s->stride + 1, OW = (W + 2 * s->pad - S) / s->stride + 1;
    long nx = (long)N * C * H * W, nw = (long)K * C * R * S, ny = (long)N * K * OH * OW;
    float *x = kt_fmalloc(nx), *w = kt_fmalloc(nw), *b = kt_fmalloc(K), *dy = kt_fmalloc(ny);
    kt_fill(x, nx, 1), kt_fill(w, nw, 2), kt_fill(b, K, 3), kt_fill(dy, ny, 4);
    double *ry = malloc(sizeof(double) * (size_t)ny), *rdx = malloc(sizeof(double) * (size_t)nx),
           *rdw = malloc(sizeof(double) * (size_t)(G * nw)), *rdb = malloc(sizeof(double) * (size_t)G * K);
    kt_conv_ref(s, OH, OW, x, w, b, dy, G, ry, rdx, rdw, rdb);
    char what[160];
    for (int si = 0; si < 2; si++) {
        int simd = kt_simds[si];
        long nws = k_conv2d_ws(N, C, H, W, K, R, S, s->stride, s->pad, OH, OW, simd);
        float *ws = kt_garbage(nws);
        float *y[3], *dx[3], *dw[3], *db[3];
        for (int sp = 0; sp < 3; sp++) {
            y[sp] = kt_garbage(ny), dx[sp] = kt_garbage(nx), dw[sp] = kt_garbage(G * nw),
            db[sp] = kt_garbage((long)G * K);
            /* split 2 runs its parts last first: a part that wrote past its
             * units would spoil one done before it */
            for (int q = 0; q < kt_split_count(sp); q++) {
                int i = sp == 2 ? kt_split_count(sp) - 1 - q : q;
                /* forward: output rows; in split 2, channel groups times rows */
                int kt = sp == 2 ? k_conv2d_groups(1, K, simd, 3) : 1;   /* a group of tiles per thread */
                int a = kt_split_at(kt * N * OH, sp, i), e = kt_split_at(kt * N * OH, sp, i + 1);
                k_conv2d_fwd(x, w, b, y[sp], ws, N, C, H, W, K, R, S, s->stride, s->pad, OH, OW, kt, simd, a, e);
                a = kt_split_at(N, sp, i), e = kt_split_at(N, sp, i + 1);
                k_conv2d_bwd_x(dy, w, dx[sp], ws, N, C, H, W, K, R, S, s->stride, s->pad, OH, OW, simd, a, e);
                /* weight gradient: chunks, in split 1 cut into 2 parts of
                 * the input channels, in split 2 into 4 (some empty where C
                 * has fewer dot tiles) */
                int cs = sp ? 2 * sp : 1;
                a = kt_split_at(G * cs, sp, i), e = kt_split_at(G * cs, sp, i + 1);
                k_conv2d_bwd_w(x, dy, dw[sp], db[sp], ws, N, C, H, W, K, R, S, s->stride, s->pad, OH, OW, G, cs, simd,
                               a, e);
            }
        }
        snprintf(what, sizeof what, "conv N%d C%d %dx%d K%d %dx%d stride %d pad %d G%d simd %d", N, C, H, W, K, R, S,
                 s->stride, s->pad, G, simd);
        kt_assert_close_d(y[0], ry, ny, 1e-4, what);
        kt_assert_close_d(dx[0], rdx, nx, 1e-4, what);
        kt_assert_close_d(dw[0], rdw, G * nw, 1e-4, what);
        kt_assert_close_d(db[0], rdb, (long)G * K, 1e-4, what);
        for (int sp = 1; sp < 3; sp++) {
            kt_assert_same(y[0], y[sp], ny, what);
            kt_assert_same(dx[0], dx[sp], nx, what);
            kt_assert_same(dw[0], dw[sp], G * nw, what);
            kt_assert_same(db[0], db[sp], (long)G * K, what);
        }
        /* One group per tile of channels (threads not known), in two calls:
         * the same outputs to the bit. */
        int kt = k_conv2d_groups(1, K, simd, 0);
        for (int i = 0; i < 2; i++)
            k_conv2d_fwd(x, w, b, y[1], ws, N, C, H, W, K, R, S, s->stride, s->pad, OH, OW, kt, simd,
                         kt_split_at(kt * N * OH, 1, i), kt_split_at(kt * N * OH, 1, i + 1));
        kt_assert_same(y[0], y[1], ny, what);
        /* Without bias: the same weights gradient, no bias gradient. */
        k_conv2d_fwd(x, w, NULL, y[1], ws, N, C, H, W, K, R, S, s->stride, s->pad, OH, OW, 1, simd, 0, N * OH);
        for (long i = 0; i < ny; i++)
            ry[i] -= b[(i / ((long)OH * OW)) % K];
        kt_assert_close_d(y[1], ry, ny, 1e-4, what);
        for (long i = 0; i < ny; i++)
            ry[i] += b[(i / ((long)OH * OW)) % K];
        k_conv2d_bwd_w(x, dy, dw[1], NULL, ws, N, C, H, W, K, R, S, s->stride, s->pad, OH, OW, G, 1, simd, 0, G);
        kt_assert_same(dw[0], dw[1], G * nw, what);
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
 * tiles of them), dot products over groups of images (512 channels), the
 * weight gradient's units in more than one group (136 channels out),
 * k_small_strided_ok's larger strided planes (the GEMMs alone) and
 * k_small_strided_dx_ok's (3x3 into 5x5 to 7x7, not 8x8), taps
 * that fall off every side, stride 2 (odd planes too: input pixels no
 * output reads). */
static void test_conv_small(void **state)
{
    (void)state;
    const KtConvShape shapes[] = {
        { 5, 17, 2, 2, 18, 3, 3, 1, 1 }, { 33, 16, 4, 4, 20, 3, 3, 1, 1 }, { 3, 20, 3, 3, 16, 3, 3, 1, 1 },
        { 2, 16, 1, 1, 17, 3, 3, 1, 1 }, { 4, 18, 4, 2, 16, 1, 1, 1, 0 }, { 3, 16, 4, 4, 16, 5, 5, 1, 2 },
        { 2, 16, 4, 4, 16, 3, 3, 1, 0 }, { 3, 17, 8, 8, 16, 3, 3, 2, 1 }, { 2, 16, 7, 5, 18, 3, 3, 2, 1 },
        { 2, 16, 8, 8, 17, 1, 1, 2, 0 }, { 3, 40, 2, 3, 18, 3, 3, 1, 1 },
        { 5, 512, 4, 4, 18, 3, 3, 1, 1 }, /* dot products in groups of images: each image's columns 295 KB */
        { 3, 16, 4, 4, 136, 3, 3, 1, 1 }, /* the weight gradient's units in groups of 16 (k_small_bwd_w_group) */
        /* k_small_strided_ok's: stride-2 5x5 and 4x4 convs into 4x4 to
         * 8x8 from planes past 64 pixels (the data gradient's in chunks
         * of K_SMALL_PIX), odd and even, square or not */
        { 3, 16, 12, 12, 18, 5, 5, 2, 2 }, { 2, 17, 15, 15, 16, 5, 5, 2, 1 }, { 2, 16, 17, 17, 20, 5, 5, 2, 1 },
        { 3, 16, 14, 13, 17, 4, 4, 2, 1 }, { 2, 20, 10, 10, 16, 5, 5, 2, 1 },
        /* k_small_strided_dx_ok's: stride-2 3x3 convs into 5x5 to 7x7
         * (their data gradient alone takes the GEMMs; the test runs all) */
        { 3, 16, 14, 14, 17, 3, 3, 2, 1 }, { 2, 17, 10, 9, 16, 3, 3, 2, 1 }, { 2, 16, 13, 13, 18, 3, 3, 2, 0 },
    };
    assert_false(k_small_strided_dx_ok(16, 16, 16, 16, 3, 3, 2, 1, 8, 8));
    assert_false(k_small_strided_dx_ok(16, 16, 16, 16, 5, 5, 2, 2, 8, 8));
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int simd = 8; simd <= 16; simd += 8) {
            const KtConvShape *sh = &shapes[si];
            int N = sh->N, C = sh->C, H = sh->H, W = sh->W, K = sh->K, R = sh->R, S = sh->S;
            int OH = (H + 2 * sh->pad - R) / sh->stride + 1, OW = (W + 2 * sh->pad - S) / sh->stride + 1;
            /* 1x1 convs stay on the direct kernel, but the small one computes them too;
             * the strided planes have the GEMMs alone, not the dot products */
            int strided = k_small_strided_ok(C, H, W, K, R, S, sh->stride, sh->pad, OH, OW) ||
                          k_small_strided_dx_ok(C, H, W, K, R, S, sh->stride, sh->pad, OH, OW);
            assert_true(strided ? !k_small_ok(C, H, W, K, R, S, sh->stride, sh->pad, OH, OW)
                                : k_small_ok(C, H, W, K, R, S, sh->stride, sh->pad, OH, OW) == (R * S > 1));
            assert_true(strided == (si >= 13));
            long nx = (long)N * C * H * W, nw = (long)K * C * R * S, ny = (long)N * K * OH * OW;
            float *x = kt_fmalloc(nx), *w = kt_fmalloc(nw), *b = kt_fmalloc(K), *dy = kt_fmalloc(ny);
            kt_fill(x, nx, 11), kt_fill(w, nw, 12), kt_fill(b, K, 13), kt_fill(dy, ny, 14);
            double *ry = malloc(sizeof(double) * (size_t)ny), *rdx = malloc(sizeof(double) * (size_t)nx),
                   *rdw = malloc(sizeof(double) * (size_t)nw), *rdb = malloc(sizeof(double) * (size_t)K);
            kt_conv_ref(sh, OH, OW, x, w, b, dy, 1, ry, rdx, rdw, rdb);
            /* inference's batchnorm: the bias kept on even shapes, relu on odd ones */
            int bias = si % 2 == 0, relu = si % 2 == 1;
            float *gamma = kt_fmalloc(K), *beta = kt_fmalloc(K), *mean = kt_fmalloc(K), *var = kt_fmalloc(K);
            kt_fill(gamma, K, 15), kt_fill(beta, K, 16), kt_fill(mean, K, 17), kt_fill(var, K, 18);
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
             * the units split by their columns (k_small_split) and the
             * weight gradient's by 2 and 3 slices of x's channel tiles (more
             * slices than tiles on most shapes: empty ones) */
            float *y[5], *dx[5], *dw[5], *db[5], *ybn[5], *ydot[5], *ypix[5];
            /* the prepared weights, by one thread and by 3 threads' shares */
            long npre = k_small_pre_floats(C, K, R, S, simd);
            int up = k_small_pre_units(K, simd);
            float *pre[2] = { kt_garbage(npre), kt_garbage(npre) };
            for (int i = 0; i < kt_split_count(2); i++)
                k_conv2d_small_prep(w, bias ? b : NULL, gamma, beta, mean, var, pre[1], C, K, R, S, 1e-5f, simd,
                                    kt_split_at(up, 2, i), kt_split_at(up, 2, i + 1));
            k_conv2d_small_prep(w, bias ? b : NULL, gamma, beta, mean, var, pre[0], C, K, R, S, 1e-5f, simd, 0, up);
            kt_assert_same(pre[0], pre[1], npre, "k_conv2d_small_prep");
            for (int sp = 0; sp < 5; sp++) {
                y[sp] = kt_garbage(ny), dx[sp] = kt_garbage(nx), dw[sp] = kt_garbage(nw), db[sp] = kt_garbage(K);
                ybn[sp] = kt_garbage(ny), ydot[sp] = kt_garbage(ny), ypix[sp] = kt_garbage(ny);
                int split = sp >= 3, th = split ? sp - 2 : sp;
                for (int i = 0; i < kt_split_count(th); i++) {
                    float *ws = kt_garbage(wsn);
                    int ni = split ? k_small_cols(N, simd) : 1;
                    int uk = k_small_units(K, simd) * ni, uc = k_small_units(C, simd) * ni;
                    int sl = split ? th : 1, uw = k_small_units(K, simd) * sl;   /* x's channels in 2 or 3 slices */
                    k_conv2d_small(x, w, b, y[sp], ws, N, C, H, W, K, R, S, sh->stride, sh->pad, OH, OW, 0, split,
                                   simd, kt_split_at(uk, th, i), kt_split_at(uk, th, i + 1));
                    k_conv2d_small(dy, w, NULL, dx[sp], ws, N, C, H, W, K, R, S, sh->stride, sh->pad, OH, OW, 1,
                                   split, simd, kt_split_at(uc, th, i), kt_split_at(uc, th, i + 1));
                    k_conv2d_small_bwd_w(x, dy, dw[sp], db[sp], ws, N, C, H, W, K, R, S, sh->stride, sh->pad, OH,
                                         OW, sl, simd, kt_split_at(uw, th, i), kt_split_at(uw, th, i + 1));
                    k_conv2d_small_bn(x, w, bias ? b : NULL, gamma, beta, mean, var, ybn[sp], ws, N, C, H, W, K, R, S,
                                      sh->stride, sh->pad, OH, OW, 1e-5f, relu, split, simd, kt_split_at(uk, th, i),
                                      kt_split_at(uk, th, i + 1));
                    int ud = k_small_dot_units(K, OH * OW, simd);
                    if (strided) {
                        free(ws);
                        continue;
                    }
                    k_conv2d_small_dot(x, w, bias ? b : NULL, gamma, beta, mean, var, ydot[sp], ws, N, C, H, W, K, R,
                                       S, sh->stride, sh->pad, OH, OW, 1e-5f, relu, simd, kt_split_at(ud, th, i),
                                       kt_split_at(ud, th, i + 1));
                    k_conv2d_small_pix(x, pre[sp % 2], ypix[sp], ws, N, C, H, W, K, R, S, sh->stride, sh->pad, OH, OW,
                                       relu, simd, kt_split_at(up, th, i), kt_split_at(up, th, i + 1));
                    free(ws);
                }
                if (sp == 0) {
                    /* float sums of C R S terms drift from the double ones as its square
                     * root: 1e-5 up to 360 terms (40 channels), more for 512 channels */
                    double tol = 1e-5 * sqrt(fmax(1.0, C * R * S / 360.0));
                    kt_assert_close_d(y[0], ry, ny, tol, "k_conv2d_small");
                    kt_assert_close_d(dx[0], rdx, nx, 1e-5, "k_conv2d_small flip");
                    kt_assert_close_d(dw[0], rdw, nw, 1e-5, "k_conv2d_small_bwd_w");
                    kt_assert_close_d(db[0], rdb, K, 1e-5, "k_conv2d_small_bwd_w bias");
                    kt_assert_close_d(ybn[0], rbn, ny, tol, "k_conv2d_small_bn");
                    if (!strided) {
                        kt_assert_close_d(ydot[0], rbn, ny, tol, "k_conv2d_small_dot");
                        kt_assert_bits(ypix[0], ybn[0], ny, "k_conv2d_small_pix against k_conv2d_small_bn");
                    }
                } else {
                    kt_assert_same(y[0], y[sp], ny, "k_conv2d_small");
                    kt_assert_same(dx[0], dx[sp], nx, "k_conv2d_small flip");
                    kt_assert_same(dw[0], dw[sp], nw, "k_conv2d_small_bwd_w");
                    kt_assert_same(db[0], db[sp], K, "k_conv2d_small_bwd_w bias");
                    kt_assert_same(ybn[0], ybn[sp], ny, "k_conv2d_small_bn");
                    if (!strided) {
                        kt_assert_same(ydot[0], ydot[sp], ny, "k_conv2d_small_dot");
                        kt_assert_same(ypix[0], ypix[sp], ny, "k_conv2d_small_pix");
                    }
                }
            }
            for (int sp = 0; sp < 5; sp++)
                free(y[sp]), free(dx[sp]), free(dw[sp]), free(db[sp]), free(ybn[sp]), free(ydot[sp]), free(ypix[sp]);
            free(pre[0]), free(pre[1]);
            free(x), free(w), free(b), free(dy), free(ry), free(rdx), free(rdw), free(rdb);
            free(gamma), free(beta), free(mean), free(var), free(rbn);
        }
}

/* When the small planes' forward and data gradient split their units by
 * images (the sums are the same either way, test_conv_small): on many
 * threads, and on 2 where the input's layout is 2 MB or more and larger
 * than the weights; never on one thread or an unknown count. */
static void test_small_split(void **state)
{
    (void)state;
    long w256 = 256L * 256 * 9, w512 = 512L * 512 * 9;
    assert_true(k_small_split(32, 2, 128, 256 * 64, w256, 16));    /* 256 -> 256 from 8x8: 8 MB against 2.4 */
    assert_true(k_small_split(8, 2, 128, 64 * 64, 64L * 64 * 9, 16));   /* 64 -> 64: 2 MB, and few units */
    assert_false(k_small_split(32, 1, 128, 256 * 64, w256, 16));   /* one thread */
    assert_false(k_small_split(32, 0, 128, 256 * 64, w256, 16));   /* not known */
    assert_false(k_small_split(64, 2, 128, 512 * 16, w512, 16));   /* VGG16's 4x4: the weights are larger */
    assert_false(k_small_split(64, 2, 100, 64 * 32, 64L * 64 * 9, 16));   /* 100 images pad to 128: 1 MB */
    assert_true(k_small_split(64, 2, 100, 64 * 64, 64L * 64 * 9, 16));    /* 2 MB with the padding */
    assert_true(k_small_split(64, 8, 128, 512 * 16, w512, 16));    /* 8 units a thread */
    /* the weight gradient's slices of x's channels: where x laid out is 2 MB or more and larger
     * than dy, one a thread, at most one a tile of channels */
    assert_int_equal(k_small_bwd_w_slices(128, 256, 8, 8, 256, 4, 4, 16, 2), 2);   /* 8 MB against 2 */
    assert_int_equal(k_small_bwd_w_slices(128, 256, 8, 8, 256, 4, 4, 16, 1), 1);
    assert_int_equal(k_small_bwd_w_slices(128, 256, 8, 8, 256, 4, 4, 16, 0), 1);
    assert_int_equal(k_small_bwd_w_slices(128, 512, 4, 4, 512, 4, 4, 16, 2), 1);   /* VGG16's 4x4: x = dy */
    assert_int_equal(k_small_bwd_w_slices(128, 256, 8, 8, 512, 4, 4, 16, 2), 2);   /* x twice dy */
    assert_int_equal(k_small_bwd_w_slices(128, 40, 14, 14, 64, 7, 7, 16, 8), 2);   /* 2 tiles of 40 */
    assert_int_equal(k_small_bwd_w_slices(128, 40, 14, 14, 64, 7, 7, 8, 8), 2);    /* of 24 with AVX2 */
    assert_int_equal(k_small_bwd_w_slices(64, 32, 8, 8, 16, 4, 4, 16, 2), 1);      /* 512 KB */
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
    static const KtConvShape shapes[] = {
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
        /* C*R*S large: im2col blocks of fewer columns (at most 1 MB); past
         * K_KC_MIN taps summed in chunks of K_KC (k_gemm_out_kc) */
        { 7, 40, 7, 7, 24, 5, 5, 1, 2 },  /* 1000 taps: blocks of 5 whole images, not 13 */
        { 2, 96, 12, 12, 8, 5, 5, 1, 2 }, /* 2400 taps: chunks with 8-float tiles, from the rows with 16 */
        { 11, 1100, 7, 7, 20, 1, 1, 1, 0 }, /* 1x1, 1100 channels: 9 chunks, the last of 76; 9 or 10 images a block */
        { 1, 120, 5, 5, 520, 3, 3, 2, 1 },  /* 1080 taps into 520 channels: two groups of K_MC */
        { 17, 8, 8, 8, 1040, 1, 1, 1, 0 }, /* dy's block over K_BWW_DY_MAX: the weight gradient's groups of it */
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
            const KtConvShape *h = &shapes[i];
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
            const KtConvShape *h = &shapes[i];
            int OW = (h->W + 2 * h->pad - h->S) / h->stride + 1;
            assert_int_equal(k_conv_rows_ok(h->C, h->R, h->S, h->stride, OW, simd), simd == 16 && i + 1 < nshapes);
        }
        assert_false(k_conv_rows_ok(16, 3, 3, 2, 14, simd));
        assert_false(k_conv_rows_ok(16, 3, 3, 2, 32, simd));
        assert_int_equal(k_conv_rows_ok(16, 3, 3, 1, 14, simd), simd == 16);
    }
    /* one chunk; more chunks than images (empty chunks give zeros), also
     * where a chunk's sums are its own rows of the parts (k_bwdw_acc: K and
     * C * R * S whole dot tiles), from an im2col and from the rows */
    conv_case(&shapes[1], 1);
    conv_case(&shapes[3], 8);
    static const KtConvShape whole[] = { { 3, 4, 6, 6, 8, 1, 1, 1, 0 }, { 3, 4, 16, 16, 8, 5, 5, 1, 2 } };
    for (size_t i = 0; i < sizeof whole / sizeof *whole; i++)
        conv_case(&whole[i], 8), conv_case(&whole[i], 2);
}

/* k_op over all the taps equals, to the bit, k_op over the first ones
 * and k_op_acc over the rest (k_gemm_out_kc's chunks), with and without a
 * bias, for each tile; values of every sign and size, so that a change in
 * how the sums round would show. */
static void test_op_acc(void **state)
{
    (void)state;
    enum { KIN = 300, LD = 40 };
    float *a = kt_fmalloc(8L * KIN), *b = kt_fmalloc((long)KIN * LD), *bias = kt_fmalloc(8);
    float whole[8 * LD], parts[8 * LD];
    kt_fill(a, 8L * KIN, 5), kt_fill(b, (long)KIN * LD, 6), kt_fill(bias, 8, 7);
    for (long i = 0; i < 8L * KIN; i += 7)
        a[i] *= 1e4f;
    for (int si = 0; si < 2; si++) {
        int simd = kt_simds[si];
        for (int withb = 0; withb < 2; withb++)
            for (int cut = 1; cut < KIN; cut += 37) {
                memset(whole, 0, sizeof whole), memset(parts, 0, sizeof parts);
                k_op(simd, KIN, a, b, LD, withb ? bias : NULL, whole, LD);
                k_op(simd, cut, a, b, LD, withb ? bias : NULL, parts, LD);
                int mid = cut + (KIN - cut) / 2;
                k_op_acc(simd, mid - cut, a + (long)cut * k_op_mr(simd), b + (long)cut * LD, LD, parts, LD);
                k_op_acc(simd, KIN - mid, a + (long)mid * k_op_mr(simd), b + (long)mid * LD, LD, parts, LD);
                kt_assert_same(whole, parts, 8 * LD, "k_op_acc");
            }
    }
    free(a), free(b), free(bias);
}

/* Inference's conv with a batchnorm folded in and relu (k_conv2d_bn_fwd),
 * from an im2col and from the padded rows (stride 1, rows of 28 and 13),
 * with and without bias, against the double sums; the same bits however
 * the rows split, and with the channels in groups. */
static void test_conv_bn(void **state)
{
    (void)state;
    static const KtConvShape shapes[] = {
        { 2, 6, 28, 28, 20, 5, 5, 1, 2 },
        { 3, 5, 13, 13, 9, 3, 3, 1, 1 },
        { 3, 5, 13, 11, 10, 3, 3, 2, 1 },
        { 5, 4, 7, 7, 9, 3, 3, 1, 1 },
    };
    for (size_t c = 0; c < sizeof shapes / sizeof *shapes; c++) {
        const KtConvShape *s = &shapes[c];
        int N = s->N, C = s->C, H = s->H, W = s->W, K = s->K, R = s->R, S = s->S;
        int OH = (H + 2 * s->pad - R) / s->stride + 1, OW = (W + 2 * s->pad - S) / s->stride + 1;
        long nx = (long)N * C * H * W, nw = (long)K * C * R * S, ny = (long)N * K * OH * OW;
        float *x = kt_fmalloc(nx), *w = kt_fmalloc(nw), *b = kt_fmalloc(K), *gm = kt_fmalloc(K), *bt = kt_fmalloc(K),
              *mean = kt_fmalloc(K), *var = kt_fmalloc(K), *dy = kt_fmalloc(ny);
        kt_fill(x, nx, 11), kt_fill(w, nw, 12), kt_fill(b, K, 13), kt_fill(gm, K, 14), kt_fill(bt, K, 15),
            kt_fill(mean, K, 16);
        kt_fill(var, K, 17), kt_fill(dy, ny, 18);
        for (int k = 0; k < K; k++)
            var[k] = var[k] * var[k] + 0.1f;
        double *ry = malloc(sizeof(double) * (size_t)ny), *rdx = malloc(sizeof(double) * (size_t)nx),
               *rdw = malloc(sizeof(double) * (size_t)nw), *rdb = malloc(sizeof(double) * (size_t)K);
        for (int bias = 0; bias < 2; bias++) {
            float *zero = kt_fmalloc(K);
            for (int k = 0; k < K; k++)
                zero[k] = 0.0f;
            kt_conv_ref(s, OH, OW, x, w, bias ? b : zero, dy, 1, ry, rdx, rdw, rdb);
            free(zero);
            for (long i = 0; i < ny; i++) {
                int k = (int)((i / ((long)OH * OW)) % K);
                double v = (ry[i] - mean[k]) * gm[k] / sqrt((double)var[k] + 1e-5) + bt[k];
                ry[i] = v > 0 ? v : 0;
            }
            for (int si = 0; si < 2; si++) {
                int simd = kt_simds[si];
                float *ws = kt_garbage(k_conv2d_ws(N, C, H, W, K, R, S, s->stride, s->pad, OH, OW, simd));
                float *y[3];
                char what[160];
                snprintf(what, sizeof what, "conv_bn N%d C%d %dx%d K%d %dx%d stride %d bias %d simd %d", N, C, H, W, K,
                         R, S, s->stride, bias, simd);
                for (int sp = 0; sp < 3; sp++) {
                    y[sp] = kt_garbage(ny);
                    int kt = sp == 2 ? k_conv2d_groups(1, K, simd, 3) : 1;
                    for (int i = 0; i < kt_split_count(sp); i++)
                        k_conv2d_bn_fwd(x, w, bias ? b : NULL, gm, bt, mean, var, y[sp], ws, N, C, H, W, K, R, S,
                                        s->stride, s->pad, OH, OW, 1e-5f, 1, kt, simd, kt_split_at(kt * N * OH, sp, i),
                                        kt_split_at(kt * N * OH, sp, i + 1));
                }
                kt_assert_close_d(y[0], ry, ny, 1e-4, what);
                kt_assert_same(y[0], y[1], ny, what);
                kt_assert_same(y[0], y[2], ny, what);
                for (int sp = 0; sp < 3; sp++)
                    free(y[sp]);
                free(ws);
            }
        }
        free(x), free(w), free(b), free(gm), free(bt), free(mean), free(var), free(dy);
        free(ry), free(rdx), free(rdw), free(rdb);
    }
}


/* k_small_layout against the rule its comment states, element by element:
 * tiles of nr in {4, 24, 32} (the scalar copy and the 8x8 transposes),
 * image counts that leave a tile part empty, pixels not a multiple of 8,
 * in the forward's form (rows images) and the weight gradient's (rows
 * channels, one image at a time into its column). What the rule leaves
 * alone must stay as it was. */
static void test_small_layout(void **state)
{
    (void)state;
    const int Ns[] = { 1, 7, 8, 13, 33, 100 }, Cs[] = { 1, 3, 17 }, Ps[] = { 1, 4, 9, 16, 49, 65 };
    const int nrs[] = { 4, 24, 32 };
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 3; b++)
            for (int e = 0; e < 6; e++)
                for (int f = 0; f < 3; f++) {
                    int N = Ns[a], C = Cs[b], Pi = Ps[e], nr = nrs[f], Np = (N + nr - 1) / nr * nr;
                    int Cp = (C + nr - 1) / nr * nr;
                    long nx = (long)N * C * Pi, nd = (long)k_max(Np * C, Cp * N) * Pi + 8;
                    float *x = kt_fmalloc(nx), *d = kt_fmalloc(nd), *want = kt_fmalloc(nd);
                    for (long i = 0; i < nx; i++)
                        x[i] = (float)i + 0.5f;
                    for (int form = 0; form < 2; form++) {
                        for (long i = 0; i < nd; i++)
                            d[i] = want[i] = -1.0f;
                        if (form == 0) {
                            /* rows images, C channels: dst[tile][q][c][j] */
                            long ts = (long)Pi * C * nr;
                            for (int r = 0; r < Np; r++)
                                for (int c = 0; c < C; c++)
                                    for (int q = 0; q < Pi; q++)
                                        want[r / nr * ts + (long)q * C * nr + (long)c * nr + r % nr] =
                                            r < N ? x[(long)r * C * Pi + (long)c * Pi + q] : 0.0f;
                            k_small_layout(x, d, N, Np, C, Pi, nr, ts, (long)C * nr, nr, (long)C * Pi);
                        } else {
                            /* rows channels of image n: dst[tile][q][n][j] */
                            long ts = (long)Pi * N * nr;
                            for (int n = 0; n < N; n++)
                                for (int r = 0; r < Cp; r++)
                                    for (int q = 0; q < Pi; q++)
                                        want[r / nr * ts + (long)q * N * nr + (long)n * nr + r % nr] =
                                            r < C ? x[(long)n * C * Pi + (long)r * Pi + q] : 0.0f;
                            for (int n = 0; n < N; n++)
                                k_small_layout(x + (long)n * C * Pi, d + (long)n * nr, C, Cp, 1, Pi, nr, ts,
                                               (long)N * nr, 1, Pi);
                        }
                        char what[96];
                        snprintf(what, sizeof what, "small_layout form %d N%d C%d P%d nr%d", form, N, C, Pi, nr);
                        kt_assert_same(d, want, nd, what);
                    }
                    free(x), free(d), free(want);
                }
}

static void test_sum_parts(void **state)
{
    (void)state;
    const int G = 5, len = 37;
    float *part = kt_fmalloc(G * len), *out[3];
    kt_fill(part, G * len, 9);
    for (int sp = 0; sp < 3; sp++) {
        out[sp] = kt_garbage(len);
        for (int i = 0; i < kt_split_count(sp); i++)
            k_sum_parts(part, out[sp], G, len, kt_split_at(len, sp, i), kt_split_at(len, sp, i + 1));
    }
    for (int i = 0; i < len; i++) {
        float want = part[i];
        for (int g = 1; g < G; g++)
            want += part[g * len + i]; /* the same order, so the same bits */
        assert_true(out[0][i] == want);
    }
    kt_assert_same(out[0], out[1], len, "sum_parts");
    kt_assert_same(out[0], out[2], len, "sum_parts");
    for (int sp = 0; sp < 3; sp++)
        free(out[sp]);
    free(part);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv),
        cmocka_unit_test(test_conv_bn),
        cmocka_unit_test(test_conv_small),
        cmocka_unit_test(test_small_split),
        cmocka_unit_test(test_small_layout),
        cmocka_unit_test(test_conv_groups),
        cmocka_unit_test(test_op_acc),
        cmocka_unit_test(test_sum_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
