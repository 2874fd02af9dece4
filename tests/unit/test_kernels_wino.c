/* The Winograd conv kernels of runtime/kernels (k_wino*.c), compiled
 * natively, against the direct sums (kernel_test.h's reference): forward,
 * data and weight gradients, the part kernels, the rules; the same bits
 * however the units split. */
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
#include "kernel_test.h"

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
    KtConvShape s = { N, C, H, W, K, R, R, 1, pad };
    long nx = (long)N * C * H * W, nw = (long)K * C * R * R, ny = (long)N * K * OH * OW;
    float *x = kt_fmalloc(nx), *w = kt_fmalloc(nw), *b = kt_fmalloc(K), *dy = kt_fmalloc(ny), *ga = kt_fmalloc(K),
          *be = kt_fmalloc(K), *mu = kt_fmalloc(K), *va = kt_fmalloc(K);
    kt_fill(x, nx, 41), kt_fill(w, nw, 42), kt_fill(b, K, 43), kt_fill(dy, ny, 44), kt_fill(ga, K, 45),
        kt_fill(be, K, 46), kt_fill(mu, K, 47), kt_fill(va, K, 48);
    for (int k = 0; k < K; k++)
        va[k] = 0.5f + va[k] * va[k];
    enum { G = 2 }; /* chunks of the weight gradient */
    double *ry = malloc(sizeof(double) * (size_t)ny), *rdx = malloc(sizeof(double) * (size_t)nx),
           *rdw = malloc(sizeof(double) * (size_t)(G * nw)), *rdb = malloc(sizeof(double) * (size_t)(G * K)),
           *rbn = malloc(sizeof(double) * (size_t)ny);
    kt_conv_ref(&s, OH, OW, x, w, b, dy, G, ry, rdx, rdw, rdb);
    for (long i = 0; i < ny; i++) {
        int k = (int)(i / ((long)OH * OW) % K);
        double v = (ry[i] - mu[k]) / sqrt((double)va[k] + 1e-5) * ga[k] + be[k];
        rbn[i] = v > 0 ? v : 0;
    }
    char what[96];
    snprintf(what, sizeof what, "winograd %s N%d C%d %dx%d K%d pad %d",
             alg == 2 ? "F(2x2,5x5)"
             : alg    ? "F(4x4)"
                      : "F(2x2)",
             N, C, H, W, K, pad);
    /* F(2x2, 5x5) below the channels codegen gives it too: the kernel takes any */
    assert_true(alg == 2 || (pad == 1 ? k_wino_ok(C, H, W, K, 3, 3, 1, 1, H, W)
                                      : alg == 1 && k_wino4_ok(C, H, W, K, 3, 3, 1, pad, OH, OW)));
    for (int si = 0; si < 2; si++) {
        int simd = kt_simds[si];
        long nws = k_wino_ws(C, H, W, K, simd), nwb = k_wino_ws(K, OH, OW, C, simd);
        if (alg) {
            long a = alg == 2 ? k_wino25_ws(C, H, W, K, pad, simd) : k_wino4_ws(C, H, W, K, pad, simd),
                 b4 = alg == 2 ? k_wino25_ws(K, OH, OW, C, 4 - pad, simd) : k_wino4_ws(K, OH, OW, C, 2 - pad, simd);
            nws = nws > a ? nws : a, nwb = nwb > b4 ? nwb : b4;
        }
        float *ws = kt_garbage(nws > nwb ? nws : nwb), *y[3], *yb[3], *dx[3], *dw[3], *db[3];
        for (int sp = 0; sp < 3; sp++) {
            y[sp] = kt_garbage(ny), yb[sp] = kt_garbage(ny), dx[sp] = kt_garbage(nx), dw[sp] = kt_garbage(G * nw),
            db[sp] = kt_garbage(G * K);
            for (int i = 0; i < kt_split_count(sp); i++) {
                int a = kt_split_at(N, sp, i), e = kt_split_at(N, sp, i + 1);
                conv(x, w, b, NULL, NULL, NULL, NULL, NULL, y[sp], ws, N, C, H, W, K, 0.0f, 0, 0, simd, 1, a, e);
                conv(x, w, b, ga, be, mu, va, NULL, yb[sp], ws, N, C, H, W, K, 1e-5f, 1, 0, simd, 1, a, e);
                conv(dy, w, NULL, NULL, NULL, NULL, NULL, NULL, dx[sp], ws, N, K, OH, OW, C, 0.0f, 0, 1, simd, 1, a, e);
                int cs = sp ? 2 * sp + 1 : 1; /* 1, 3 and 5 parts of the input channels (k_bwdw_unit) */
                a = kt_split_at(G * cs, sp, i), e = kt_split_at(G * cs, sp, i + 1);
                wc_bwd_w(x, dy, dw[sp], db[sp], ws, N, C, H, W, K, G, cs, simd, a, e);
            }
        }
        /* the weight gradient sums over every tile of a chunk: 1e-4 of its size */
        kt_assert_close_d(dw[0], rdw, G * nw, 1e-4 * sqrt((double)N * H * W), what);
        kt_assert_close_d(db[0], rdb, G * K, 1e-4 * sqrt((double)N * H * W), what);
        if (getenv("MWTC_TEST_VERBOSE"))
            print_message("%s simd %d: worst y %.3g dx %.3g dw %.3g (relative, per sqrt of the terms)\n", what, simd,
                          kt_worst_d(y[0], ry, ny) / sqrt(C), kt_worst_d(dx[0], rdx, nx) / sqrt(K),
                          kt_worst_d(dw[0], rdw, G * nw) / sqrt((double)N * H * W));
        kt_assert_close_d(y[0], ry, ny, tol * sqrt(C), what);
        kt_assert_close_d(yb[0], rbn, ny, tol * sqrt(C), what);
        kt_assert_close_d(dx[0], rdx, nx, tol * sqrt(K), what);
        for (int sp = 1; sp < 3; sp++) {
            kt_assert_same(y[0], y[sp], ny, what);
            kt_assert_same(yb[0], yb[sp], ny, what);
            kt_assert_same(dx[0], dx[sp], nx, what);
            kt_assert_same(dw[0], dw[sp], G * nw, what);
            kt_assert_same(db[0], db[sp], G * K, what);
        }
        wc_bwd_w(x, dy, dw[1], NULL, ws, N, C, H, W, K, G, 3, simd, 0, 3 * G); /* without the bias */
        kt_assert_same(dw[0], dw[1], G * nw, what);
        /* each image alone, as at batch 1: its tiles in GEMM column tiles of
         * their own (the last one narrower, k_op_4x8_of_24), the same bits */
        for (int n = 0; n < N; n++) {
            conv(x + (long)n * C * H * W, w, b, ga, be, mu, va, NULL, yb[1], ws, 1, C, H, W, K, 1e-5f, 1, 0, simd, 1, 0,
                 1);
            kt_assert_same(yb[0] + (long)n * K * OH * OW, yb[1], (long)K * OH * OW, what);
        }
        for (int gr = 2; gr <= 3; gr++) { /* output channels split in groups (a small batch): the same bits */
            for (int i = 0; i < kt_split_count(2); i++) {
                int a = kt_split_at(gr * N, 2, i), e = kt_split_at(gr * N, 2, i + 1);
                conv(x, w, b, NULL, NULL, NULL, NULL, NULL, y[1], ws, N, C, H, W, K, 0.0f, 0, 0, simd, gr, a, e);
                conv(x, w, b, ga, be, mu, va, NULL, yb[1], ws, N, C, H, W, K, 1e-5f, 1, 0, simd, gr, a, e);
                conv(dy, w, NULL, NULL, NULL, NULL, NULL, NULL, dx[1], ws, N, K, OH, OW, C, 0.0f, 0, 1, simd, gr, a, e);
            }
            kt_assert_same(y[0], y[1], ny, what);
            kt_assert_same(yb[0], yb[1], ny, what);
            kt_assert_same(dx[0], dx[1], nx, what);
        }
        /* U computed beforehand (an inference conv's; a training conv's and
         * its data gradient's, flipped), the preparation split over its
         * units: the same bits in one group or several */
        typedef void Prep(const float *restrict, const float *restrict, const float *restrict, const float *restrict,
                          const float *restrict, const float *restrict, float *restrict, float *restrict, int, int,
                          int, float, int, int, int);
        Prep *prep = alg == 2 ? k_conv2d_wino25_prep : alg ? k_conv2d_wino4_prep : k_conv2d_wino_prep;
        long np = alg ? k_wino4_pre_floats(C, K, simd) : k_wino_pre_floats(C, K, simd),
             npf = alg ? k_wino4_pre_floats(K, C, simd) : k_wino_pre_floats(K, C, simd);
        float *pre = kt_garbage(np), *preb = kt_garbage(np), *pref = kt_garbage(npf);
        int pu = k_wino_pre_units(K, simd), puf = k_wino_pre_units(C, simd);
        for (int i = 0; i < kt_split_count(2); i++) {
            prep(w, b, NULL, NULL, NULL, NULL, pre, ws, C, K, 0, 0.0f, simd, kt_split_at(pu, 2, i),
                 kt_split_at(pu, 2, i + 1));
            prep(w, b, ga, be, mu, va, preb, ws, C, K, 0, 1e-5f, simd, kt_split_at(pu, 2, i),
                 kt_split_at(pu, 2, i + 1));
            prep(w, NULL, NULL, NULL, NULL, NULL, pref, ws, K, C, 1, 0.0f, simd, kt_split_at(puf, 2, i),
                 kt_split_at(puf, 2, i + 1));
        }
        for (int gr = 1; gr <= 3; gr++) {
            for (int i = 0; i < kt_split_count(2); i++) {
                int a = kt_split_at(gr * N, 2, i), e = kt_split_at(gr * N, 2, i + 1);
                conv(x, w, b, NULL, NULL, NULL, NULL, pre, y[1], ws, N, C, H, W, K, 0.0f, 0, 0, simd, gr, a, e);
                conv(x, w, b, ga, be, mu, va, preb, yb[1], ws, N, C, H, W, K, 1e-5f, 1, 0, simd, gr, a, e);
                conv(dy, w, NULL, NULL, NULL, NULL, NULL, pref, dx[1], ws, N, K, OH, OW, C, 0.0f, 0, 1, simd, gr, a, e);
            }
            kt_assert_same(y[0], y[1], ny, what);
            kt_assert_same(yb[0], yb[1], ny, what);
            kt_assert_same(dx[0], dx[1], nx, what);
        }
        free(pre), free(preb), free(pref);
        for (int sp = 0; sp < 3; sp++)
            free(y[sp]), free(yb[sp]), free(dx[sp]), free(dw[sp]), free(db[sp]);
        free(ws);
    }
    free(x), free(w), free(b), free(dy), free(ga), free(be), free(mu), free(va);
    free(ry), free(rdx), free(rdw), free(rdb), free(rbn);
}

static void wino_case(int N, int C, int H, int W, int K, int alg)
{
    wino_pad_case(N, C, H, W, K, alg, alg == 2 ? 2 : 1);
}

/* k_conv2d_wino_part: output rows < OH and columns < OW are k_conv2d_wino's
 * to the bit (with a folded batchnorm and a relu), every other element
 * k_conv2d_wino's or 0, however the images split. */
static void wino_part_case(int N, int C, int H, int W, int K, int OH, int OW)
{
    long nx = (long)N * C * H * W, nw = (long)K * C * 9, ny = (long)N * K * H * W;
    float *x = kt_fmalloc(nx), *w = kt_fmalloc(nw), *b = kt_fmalloc(K), *ga = kt_fmalloc(K), *be = kt_fmalloc(K),
          *mu = kt_fmalloc(K), *va = kt_fmalloc(K);
    kt_fill(x, nx, 51), kt_fill(w, nw, 52), kt_fill(b, K, 53), kt_fill(ga, K, 55), kt_fill(be, K, 56),
        kt_fill(mu, K, 57), kt_fill(va, K, 58);
    for (int k = 0; k < K; k++)
        va[k] = 0.5f + va[k] * va[k];
    char what[96];
    snprintf(what, sizeof what, "winograd part N%d C%d %dx%d K%d, %dx%d of it", N, C, H, W, K, OH, OW);
    for (int si = 0; si < 2; si++) {
        int simd = kt_simds[si];
        float *ws = kt_garbage(k_wino_ws(C, H, W, K, simd)), *full = kt_garbage(ny), *part[3];
        k_conv2d_wino(x, w, b, ga, be, mu, va, NULL, full, ws, N, C, H, W, K, 1e-5f, 1, 0, simd, 1, 0, N);
        for (int sp = 0; sp < 3; sp++) {
            part[sp] = kt_garbage(ny);
            for (int i = 0; i < kt_split_count(sp); i++)
                k_conv2d_wino_part(x, w, b, ga, be, mu, va, NULL, NULL, NULL, NULL, NULL, part[sp], ws, N, C, H, W, K,
                                   1e-5f, 1, OH, OW, 0, simd, 1, kt_split_at(N, sp, i), kt_split_at(N, sp, i + 1));
        }
        for (long i = 0; i < ny; i++) {
            long r = i / W % H, c = i % W;
            if (r < OH && c < OW && memcmp(&part[0][i], &full[i], sizeof(float)) != 0)
                fail_msg("%s simd %d: element %ld differs in the part read", what, simd, i);
            if (part[0][i] != 0.0f && memcmp(&part[0][i], &full[i], sizeof(float)) != 0)
                fail_msg("%s simd %d: element %ld neither the conv's nor 0", what, simd, i);
        }
        for (int sp = 1; sp < 3; sp++)
            kt_assert_same(part[0], part[sp], ny, what);
        /* with U computed beforehand: the same bits */
        float *pre = kt_garbage(k_wino_pre_floats(C, K, simd));
        k_conv2d_wino_prep(w, b, ga, be, mu, va, pre, ws, C, K, 0, 1e-5f, simd, 0, k_wino_pre_units(K, simd));
        k_conv2d_wino_part(x, w, b, ga, be, mu, va, pre, NULL, NULL, NULL, NULL, part[1], ws, N, C, H, W, K, 1e-5f, 1,
                           OH, OW, 0, simd, 1, 0, N);
        kt_assert_same(part[0], part[1], ny, what);
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
    float *x = kt_fmalloc(nx), *w = kt_fmalloc(nw), *b = kt_fmalloc(K), *ga = kt_fmalloc(K), *be = kt_fmalloc(K),
          *mu = kt_fmalloc(K), *va = kt_fmalloc(K), *ik = kt_fmalloc(C), *ok = kt_fmalloc(K);
    kt_fill(x, nx, 61), kt_fill(w, nw, 62), kt_fill(b, K, 63), kt_fill(ga, K, 65), kt_fill(be, K, 66),
        kt_fill(mu, K, 67), kt_fill(va, K, 68);
    for (int k = 0; k < K; k++)
        va[k] = 0.5f + va[k] * va[k], ok[k] = (float)(k % 3 != 1);
    for (int c = 0; c < C; c++)
        ik[c] = (float)(c % 4 != 2);
    float *mask = kt_fmalloc((long)N * K);
    for (long i = 0; i < (long)N * K; i++)   /* image 1: on only where the channel is switched off */
        mask[i] = i / K == 1 ? (float)(ok[i % K] == 0.0f) : 0.5f;
    for (long i = 0; i < nx; i++)   /* the switched-off inputs are zeros */
        if (ik[i / ((long)H * W) % C] == 0.0f)
            x[i] = 0.0f;
    char what[96];
    snprintf(what, sizeof what, "winograd %s keep N%d C%d %dx%d K%d pad %d",
             alg == 2 ? "F(2x2,5x5)" : four ? "F(4x4)" : "F(2x2)", N, C, H, W, K, pad);
    for (int si = 0; si < 2; si++) {
        int simd = kt_simds[si];
        long nws = alg == 2 ? k_wino25_ws(C, H, W, K, pad, simd) : four ? k_wino4_ws(C, H, W, K, pad, simd)
                                                                : k_wino_ws(C, H, W, K, simd);
        float *ws = kt_garbage(nws), *full = kt_garbage(ny), *part = kt_garbage(ny);
        whole(x, w, b, ga, be, mu, va, NULL, full, ws, N, C, H, W, K, 1e-5f, 1, 0, simd, 1, 0, N);
        /* and a mask that turns image 1 off on every kept channel (not on the
         * others): with the generators on, that image is zeros */
        for (int on = 0; on < 2; on++) {
            int gen = on;
            for (int i = 0; i < kt_split_count(2); i++)
                kpart(x, w, b, ga, be, mu, va, NULL, ik, ok, mask, &gen, part, ws, N, C, H, W, K, 1e-5f, 1,
                                   OH, OW, 0, simd, 1, kt_split_at(N, 2, i), kt_split_at(N, 2, i + 1));
            for (long i = 0; i < ny; i++) {
                long n = i / ((long)K * OH * OW);
                float want = ok[i / ((long)OH * OW) % K] != 0.0f && !(on && n == 1) ? full[i] : 0.0f;
                if (part[i] != want)
                    fail_msg("%s simd %d generators %d: element %ld is %g, not %g", what, simd, on, i,
                             (double)part[i], (double)want);
            }
            /* the mask's application fused (apply): to the bit what
             * k_mask_apply_keep with its relu makes of the conv without one */
            float *plain = kt_garbage(ny), *ref = kt_garbage(ny), *fused = kt_garbage(ny);
            /* plain's given a U made beforehand, which holds every channel:
             * with keep vectors it is not read (garbage here) */
            float *junk = kt_garbage(four ? k_wino4_pre_floats(C, K, simd) : k_wino_pre_floats(C, K, simd));
            for (int i = 0; i < kt_split_count(2); i++) {
                kpart(x, w, b, ga, be, mu, va, junk, ik, ok, mask, &gen, plain, ws, N, C, H, W, K, 1e-5f,
                                   0, OH, OW, 0, simd, 1, kt_split_at(N, 2, i), kt_split_at(N, 2, i + 1));
                kpart(x, w, b, ga, be, mu, va, NULL, ik, ok, mask, &gen, fused, ws, N, C, H, W, K, 1e-5f,
                                   1, OH, OW, 1, simd, 1, kt_split_at(N, 2, i), kt_split_at(N, 2, i + 1));
            }
            k_mask_apply_keep(plain, mask, ok, &gen, ref, OH * OW, K, 1, 0, N * K);
            if (memcmp(ref, fused, sizeof(float) * (size_t)ny) != 0)
                fail_msg("%s simd %d generators %d: the fused mask application differs", what, simd, on);
            /* output channels split in groups (a small batch), the image the
             * mask turns off included: the same bits */
            for (int gr = 2; gr <= 3; gr++) {
                float *gp = kt_garbage(ny), *gf = kt_garbage(ny);
                for (int i = 0; i < kt_split_count(2); i++) {
                    int a = kt_split_at(gr * N, 2, i), e = kt_split_at(gr * N, 2, i + 1);
                    kpart(x, w, b, ga, be, mu, va, NULL, ik, ok, mask, &gen, gp, ws, N, C, H, W, K, 1e-5f,
                                       1, OH, OW, 0, simd, gr, a, e);
                    kpart(x, w, b, ga, be, mu, va, NULL, ik, ok, mask, &gen, gf, ws, N, C, H, W, K, 1e-5f,
                                       1, OH, OW, 1, simd, gr, a, e);
                }
                kt_assert_same(part, gp, ny, what);
                kt_assert_same(fused, gf, ny, what);
                free(gp), free(gf);
            }
            free(plain), free(ref), free(fused), free(junk);
            /* keep vectors that keep every channel (an inference graph's
             * whole model): U made beforehand is read. Made from other
             * weights w2 here, the conv is w2's, to the bit */
            float *all1 = kt_fmalloc(C > K ? C : K), *w2 = kt_fmalloc(nw), *with = kt_garbage(ny),
                  *want2 = kt_garbage(ny);
            for (int i = 0; i < (C > K ? C : K); i++)
                all1[i] = 1.0f;
            kt_fill(w2, nw, 69);
            float *pre2 = kt_garbage(four ? k_wino4_pre_floats(C, K, simd) : k_wino_pre_floats(C, K, simd));
            if (alg == 2)
                k_conv2d_wino25_prep(w2, b, ga, be, mu, va, pre2, ws, C, K, 0, 1e-5f, simd, 0,
                                     k_wino_pre_units(K, simd));
            else if (four)
                k_conv2d_wino4_prep(w2, b, ga, be, mu, va, pre2, ws, C, K, 0, 1e-5f, simd, 0,
                                    k_wino_pre_units(K, simd));
            else
                k_conv2d_wino_prep(w2, b, ga, be, mu, va, pre2, ws, C, K, 0, 1e-5f, simd, 0, k_wino_pre_units(K, simd));
            for (int i = 0; i < kt_split_count(2); i++) {
                kpart(x, w, b, ga, be, mu, va, pre2, all1, all1, mask, &gen, with, ws, N, C, H, W, K, 1e-5f, 1, OH,
                      OW, 1, simd, 1, kt_split_at(N, 2, i), kt_split_at(N, 2, i + 1));
                kpart(x, w2, b, ga, be, mu, va, NULL, all1, all1, mask, &gen, want2, ws, N, C, H, W, K, 1e-5f, 1, OH,
                      OW, 1, simd, 1, kt_split_at(N, 2, i), kt_split_at(N, 2, i + 1));
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
    KtConvShape sh = { N, C, H, W, K, R, R, 1, R / 2 };
    float *x = kt_fmalloc(nx), *w = kt_fmalloc(nw), *b = kt_fmalloc(K), *ik = kt_fmalloc(C);
    kt_fill(x, nx, 71), kt_fill(w, nw, 72), kt_fill(b, K, 73);
    for (int c = 0; c < C; c++)
        ik[c] = (float)(c % 5 != 3);
    for (long i = 0; i < nx; i++) {   /* about half of each image's channels are zeros; image 1 all of them */
        long n = i / ((long)C * H * W), c = i / ((long)H * W) % C;
        if (n == 1 || (n * 7 + c * 3) % 5 < 2 || ik[c] == 0.0f)
            x[i] = 0.0f;
    }
    double *ry = malloc(sizeof(double) * (size_t)ny), *rdx = malloc(sizeof(double) * (size_t)nx),
           *rdw = malloc(sizeof(double) * (size_t)nw), *rdb = malloc(sizeof(double) * (size_t)K);
    float *dy = kt_fmalloc(ny);
    kt_fill(dy, ny, 74);
    kt_conv_ref(&sh, H, W, x, w, b, dy, 1, ry, rdx, rdw, rdb);
    char what[96];
    snprintf(what, sizeof what, "winograd %s zero channels N%d C%d %dx%d K%d",
             alg == 2 ? "F(2x2,5x5)" : four ? "F(4x4)" : "F(2x2)", N, C, H, W, K);
    for (int si = 0; si < 2; si++) {
        int simd = kt_simds[si];
        long nws = alg == 2 ? k_wino25_ws(C, H, W, K, 2, simd) : four ? k_wino4_ws(C, H, W, K, 1, simd)
                                                                : k_wino_ws(C, H, W, K, simd);
        float *ws = kt_garbage(nws), *all[2], *one = kt_garbage(per);
        for (int keep = 0; keep < 2; keep++) {
            all[keep] = kt_garbage(ny);
            for (int i = 0; i < kt_split_count(2); i++)
                kpart(x, w, b, NULL, NULL, NULL, NULL, NULL, keep ? ik : NULL, NULL, NULL, NULL, all[keep],
                                   ws, N, C, H, W, K, 0.0f, 0, H, W, 0, simd, 1, kt_split_at(N, 2, i),
                                   kt_split_at(N, 2, i + 1));
            for (int n = 0; n < N; n++)
                for (int gr = 1; gr <= 2; gr++) { /* alone, and its channels in two groups (one image, two threads) */
                    kpart(x + (long)n * C * H * W, w, b, NULL, NULL, NULL, NULL, NULL, keep ? ik : NULL,
                                       NULL, NULL, NULL, one, ws, 1, C, H, W, K, 0.0f, 0, H, W, 0, simd, gr, 0, gr);
                    if (memcmp(one, all[keep] + n * per, sizeof(float) * (size_t)per) != 0)
                        fail_msg("%s simd %d keep %d groups %d: image %d alone differs from it in the batch", what,
                                 simd, keep, gr, n);
                }
            kt_assert_close_d(all[keep], ry, ny, 1e-4 * sqrt(C), what);
        }
        kt_assert_same(all[0], all[1], ny, what);
        free(ws), free(all[0]), free(all[1]), free(one);
    }
    free(x), free(w), free(b), free(ik), free(dy), free(ry), free(rdx), free(rdw), free(rdb);
}

/* F(2x2) at 4x4 transforms four whole images' tiles at a time, in and
 * out (k_wino_in44, k_wino_out44), other sizes one image's tile rows
 * (k_wino_strip, k_wino_out): the same operations on the same values. A 4x5 image whose fifth column is
 * zeros takes the strips, and its first four columns' outputs read what
 * the 4x4 image's read: the same bits, with a folded batchnorm and a relu,
 * flipped (a data gradient's), through the part kernel with keep vectors
 * and with a mask applied, with channels of zeros in some images and in
 * all, however the images split. N images over blocks of 8 (C + K past 512: 16 tile rows a block),
 * the last groups of four partial. */
/* N images of C channels 4x4 (*x4) and the same with a fifth column of zeros (*x5): channel 3 zeros in every
 * image, others in some. */
static void quad_images(int N, int C, unsigned seed, float **x4, float **x5)
{
    long n4 = (long)N * C * 16;
    *x4 = kt_fmalloc(n4), *x5 = kt_fmalloc(n4 / 16 * 20);
    kt_fill(*x4, n4, seed);
    for (long i = 0; i < n4; i++) {
        long n = i / (16L * C), c = i / 16 % C;
        if (c == 3 || (n * 5 + c * 3) % 7 < 2)
            (*x4)[i] = 0.0f;
    }
    for (long i = 0; i < n4 / 16 * 20; i++)
        (*x5)[i] = i % 5 == 4 ? 0.0f : (*x4)[i / 5 * 4 + i % 5];
}

static void wino_quad_case(int N, int C, int K)
{
    long nw = (long)K * C * 9;
    int on = 1;
    float *x4, *x5, *d4, *d5, *w = kt_fmalloc(nw), *b = kt_fmalloc(K), *ga = kt_fmalloc(K), *be = kt_fmalloc(K),
                              *mu = kt_fmalloc(K), *va = kt_fmalloc(K), *ik = kt_fmalloc(C);
    quad_images(N, C, 81, &x4, &x5);
    quad_images(N, K, 89, &d4, &d5); /* the data gradient's dy */
    kt_fill(w, nw, 82), kt_fill(b, K, 83), kt_fill(ga, K, 85), kt_fill(be, K, 86), kt_fill(mu, K, 87),
        kt_fill(va, K, 88);
    for (int k = 0; k < K; k++)
        va[k] = 0.5f + va[k] * va[k];
    for (int c = 0; c < C; c++)
        ik[c] = (float)(c % 7 != 2);
    float *ok = kt_fmalloc(K), *mask = kt_fmalloc((long)N * K);
    for (int k = 0; k < K; k++)
        ok[k] = (float)(k % 5 != 1);
    kt_fill(mask, (long)N * K, 84);
    for (long i = 0; i < (long)N * K; i++) /* a mask per image; image 2 off on every kept channel */
        mask[i] = i / K == 2 ? (float)(ok[i % K] == 0.0f) : mask[i] > 0.0f ? mask[i] : 0.0f;
    char what[64];
    snprintf(what, sizeof what, "F(2x2) at 4x4 N%d C%d K%d", N, C, K);
    for (int si = 0; si < 2; si++) {
        int simd = kt_simds[si];
        long a = k_wino_ws(C, 4, 5, K, simd), f = k_wino_ws(K, 4, 5, C, simd);
        float *ws = kt_garbage(a > f ? a : f);
        for (int sp = 0; sp < 3; sp++)
            for (int kind = 0; kind < 4; kind++) {
                /* conv + batchnorm + relu, flipped, part with keep vectors; the mask applied and a relu, the
                 * images it turns off zeros (the generators on) */
                long ny = (long)N * (kind == 1 ? C : K) * 16;
                float *y4 = kt_garbage(ny), *y5 = kt_garbage(ny / 16 * 20);
                for (int i = 0; i < kt_split_count(sp); i++) {
                    int u0 = kt_split_at(N, sp, i), u1 = kt_split_at(N, sp, i + 1);
                    for (int wide = 0; wide < 2; wide++) {
                        const float *in = kind == 1 ? (wide ? d5 : d4) : wide ? x5 : x4;
                        float *out = wide ? y5 : y4;
                        int W = wide ? 5 : 4;
                        if (kind == 0)
                            k_conv2d_wino(in, w, b, ga, be, mu, va, NULL, out, ws, N, C, 4, W, K, 1e-5f, 1, 0, simd,
                                          1, u0, u1);
                        else if (kind == 1)
                            k_conv2d_wino(in, w, NULL, NULL, NULL, NULL, NULL, NULL, out, ws, N, K, 4, W, C, 0.0f, 0,
                                          1, simd, 1, u0, u1);
                        else if (kind == 2)
                            k_conv2d_wino_part(in, w, b, NULL, NULL, NULL, NULL, NULL, ik, NULL, NULL, NULL, out, ws,
                                               N, C, 4, W, K, 0.0f, 0, 4, W, 0, simd, 1, u0, u1);
                        else
                            k_conv2d_wino_part(in, w, b, NULL, NULL, NULL, NULL, NULL, ik, ok, mask, &on, out, ws, N,
                                               C, 4, W, K, 0.0f, 1, 4, W, 1, simd, 1, u0, u1);
                    }
                }
                for (long i = 0; i < ny; i++)
                    if (memcmp(&y4[i], &y5[i / 4 * 5 + i % 4], sizeof(float)) != 0)
                        fail_msg("%s simd %d split %d kind %d: element %ld is %.9g, the strips' %.9g", what, simd, sp,
                                 kind, i, y4[i], y5[i / 4 * 5 + i % 4]);
                free(y4), free(y5);
            }
        free(ws);
    }
    free(x4), free(x5), free(d4), free(d5), free(w), free(b), free(ga), free(be), free(mu), free(va), free(ik);
    free(ok), free(mask);
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
    /* other paddings (training's): the output's tiles, the input read from m tr - pad, the data gradient with 4 - pad
     */
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
    wino_quad_case(11, 300, 260); /* VGG16's 4x4 stage: blocks of 8 images, groups of 4, 4 | 3 */
    wino_quad_case(6, 24, 40);    /* one block, 4 + 2 */
    wino_quad_case(1, 16, 16);    /* batch 1 */
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
    /* the weight gradient at padding 1, as measured: F(4x4) from 11x11 on
     * (but where F(4x4) is off), F(2x2) where its chunks of 16 tiles cost
     * less than the direct kernel's pixels (AVX2) or its tiles hang over by
     * at most 15% (16-float vectors) */
    assert_int_equal(k_wino_bwd_w_pick(64, 13, 13, 64, 16, 1), 4);
    assert_int_equal(k_wino_bwd_w_pick(64, 11, 11, 64, 8, 1), 4);
    assert_int_equal(k_wino_bwd_w_pick(64, 13, 13, 64, 16, 0), 0);
    assert_int_equal(k_wino_bwd_w_pick(64, 28, 28, 64, 16, 0), 2);
    assert_int_equal(k_wino_bwd_w_pick(64, 7, 7, 128, 16, 1), 0); /* the main job's bits (k_wino.c) */
    assert_int_equal(k_wino_bwd_w_pick(64, 7, 7, 128, 8, 1), 2);
    assert_int_equal(k_wino_bwd_w_pick(64, 9, 9, 64, 16, 1), 0);
    assert_int_equal(k_wino_bwd_w_pick(64, 9, 9, 64, 8, 1), 2);
    assert_int_equal(k_wino_bwd_w_pick(64, 5, 5, 64, 8, 1), 0);
    assert_int_equal(k_wino_bwd_w_pick(8, 28, 28, 64, 16, 1), 0); /* too few channels for Winograd at all */
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_winograd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
