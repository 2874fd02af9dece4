/* The kernels of runtime/kernels other than the convs, compiled natively,
 * against naive references summed in double: linear, batchnorm (with the
 * masks and pools it fuses), elementwise, SGD, pooling, the mask
 * generator, the loss and the reference GEMM; odd shapes, both tile widths
 * and the same bits however the units split. */
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

/* ---------------- linear ---------------- */

static void linear_case(int B, int F, int O)
{
    float *x = kt_fmalloc((long)B * F), *w = kt_fmalloc((long)O * F), *b = kt_fmalloc(O), *dy = kt_fmalloc((long)B * O);
    kt_fill(x, (long)B * F, 11), kt_fill(w, (long)O * F, 12), kt_fill(b, O, 13), kt_fill(dy, (long)B * O, 14);
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
        int simd = kt_simds[si];
        float *ws = kt_garbage(k_linear_ws(B, F, O, simd)), *y[3], *dx[3], *dw[3], *db[3];
        for (int sp = 0; sp < 3; sp++) {
            y[sp] = kt_garbage((long)B * O), dx[sp] = kt_garbage((long)B * F), dw[sp] = kt_garbage((long)O * F),
            db[sp] = kt_garbage(O);
            for (int i = 0; i < kt_split_count(sp); i++) {
                /* forward: rows; in split 2, groups of outputs times rows */
                int og = sp == 2 ? 3 : 1, a = kt_split_at(og * B, sp, i), e = kt_split_at(og * B, sp, i + 1);
                k_linear_fwd(x, w, b, y[sp], ws, B, F, O, og, simd, a, e);
                a = kt_split_at(B, sp, i), e = kt_split_at(B, sp, i + 1);
                k_linear_bwd_x(dy, w, dx[sp], ws, B, F, O, simd, a, e);
                a = kt_split_at(O, sp, i), e = kt_split_at(O, sp, i + 1);
                k_linear_bwd_w(x, dy, dw[sp], db[sp], ws, B, F, O, simd, a, e);
            }
        }
        snprintf(what, sizeof what, "linear B%d F%d O%d simd %d", B, F, O, simd);
        kt_assert_close_d(y[0], ry, (long)B * O, 1e-4, what);
        kt_assert_close_d(dx[0], rdx, (long)B * F, 1e-4, what);
        kt_assert_close_d(dw[0], rdw, (long)O * F, 1e-4, what);
        kt_assert_close_d(db[0], rdb, O, 1e-4, what);
        for (int sp = 1; sp < 3; sp++) {
            kt_assert_same(y[0], y[sp], (long)B * O, what);
            kt_assert_same(dx[0], dx[sp], (long)B * F, what);
            kt_assert_same(dw[0], dw[sp], (long)O * F, what);
            kt_assert_same(db[0], db[sp], O, what);
        }
        k_linear_fwd(x, w, NULL, y[1], ws, B, F, O, 1, simd, 0, B);
        for (long i = 0; i < (long)B * O; i++)
            ry[i] -= b[i % O];
        kt_assert_close_d(y[1], ry, (long)B * O, 1e-4, what);
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
    float *x = kt_fmalloc(n), *dy = kt_fmalloc(n), *gamma = kt_fmalloc(C), *beta = kt_fmalloc(C);
    kt_fill(x, n, 21), kt_fill(dy, n, 22), kt_fill(gamma, C, 23), kt_fill(beta, C, 24);
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
    float *y[3], *dx[3], *st[3], *rm[3], *rv[3], *dg[3], *db[3], *ye = kt_garbage(n);
    for (int sp = 0; sp < 3; sp++) {
        y[sp] = kt_garbage(n), dx[sp] = kt_garbage(n), st[sp] = kt_garbage(2 * C), dg[sp] = kt_garbage(C),
        db[sp] = kt_garbage(C);
        rm[sp] = kt_fmalloc(C), rv[sp] = kt_fmalloc(C);
        for (int c = 0; c < C; c++)
            rm[sp][c] = 0.0f, rv[sp][c] = 1.0f;
        for (int i = 0; i < kt_split_count(sp); i++) {
            int a = kt_split_at(C, sp, i), e = kt_split_at(C, sp, i + 1);
            k_bn_fwd_train(x, gamma, beta, y[sp], st[sp], rm[sp], rv[sp], N, C, HW, momentum, eps, relu, a, e);
            k_bn_bwd(x, dy, gamma, st[sp], relu ? beta : NULL, dx[sp], dg[sp], db[sp], N, C, HW, relu, a, e);
        }
    }
    k_bn_fwd_eval(x, gamma, beta, rm[0], rv[0], ye, N, C, HW, eps, 0, C);
    char what[96];
    snprintf(what, sizeof what, "batchnorm N%d C%d HW%d offset %g relu %d", N, C, HW, offset, relu);
    /* The output of a normalization is O(1) whatever the offset, so its
     * error is measured against 1 + the offset's rounding. */
    kt_assert_close_d(y[0], ry, n, 1e-4 * (1 + fabs(offset) / 16), what);
    kt_assert_close_d(st[0], rstat, 2 * C, 1e-4, what);
    kt_assert_close_d(rm[0], rrun, C, 1e-4, what);
    kt_assert_close_d(rv[0], rrun + C, C, 1e-4, what);
    kt_assert_close_d(ye, reval, n, 1e-4 * (1 + fabs(offset) / 16), what);
    kt_assert_close_d(dg[0], rdg, C, 1e-4, what);
    kt_assert_close_d(db[0], rdb, C, 1e-4, what);
    kt_assert_close_d(dx[0], rdx, n, 1e-4 * (1 + fabs(offset) / 16), what);
    for (int sp = 1; sp < 3; sp++) {
        kt_assert_same(y[0], y[sp], n, what), kt_assert_same(dx[0], dx[sp], n, what);
        kt_assert_same(st[0], st[sp], 2 * C, what), kt_assert_same(rm[0], rm[sp], C, what);
        kt_assert_same(rv[0], rv[sp], C, what), kt_assert_same(dg[0], dg[sp], C, what);
        kt_assert_same(db[0], db[sp], C, what);
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
    float *x = kt_fmalloc(n), *dy = kt_fmalloc(n), *gamma = kt_fmalloc(C), *beta = kt_fmalloc(C),
          *m = kt_fmalloc((long)N * C), *keep = kt_fmalloc(C);
    kt_fill(x, n, 31), kt_fill(dy, n, 32), kt_fill(gamma, C, 33), kt_fill(beta, C, 34), kt_fill(m, (long)N * C, 35);
    for (long i = 0; i < (long)N * C; i++)
        m[i] = m[i] > 0.3f ? 0.0f : m[i] + 0.75f; /* some planes off, as relu(tanh()) leaves them */
    for (int c = 0; c < C; c++)
        keep[c] = c % 3 == 1 ? 0.0f : 1.0f;
    const float momentum = 0.1f, eps = 1e-5f;
    /* the pair as the unfused graph runs them */
    float *t = kt_garbage(n), *y = kt_garbage(n), *st = kt_garbage(2 * C), *rm = kt_fmalloc(C), *rv = kt_fmalloc(C);
    float *dt = kt_garbage(n), *dm = kt_garbage((long)N * C), *dx = kt_garbage(n), *dg = kt_garbage(C),
          *db = kt_garbage(C);
    for (int c = 0; c < C; c++)
        rm[c] = 0.0f, rv[c] = 1.0f;
    k_bn_fwd_train(x, gamma, beta, t, st, rm, rv, N, C, HW, momentum, eps, 0, 0, C);
    k_mask_apply_keep(t, m, keep, &generators, y, HW, C, relu, 0, N * C);
    k_mask_apply_keep_bwd(t, m, keep, &generators, dy, dt, dm, HW, C, relu, 0, N * C);
    k_bn_bwd(x, dt, gamma, st, NULL, dx, dg, db, N, C, HW, 0, 0, C);
    char what[96];
    snprintf(what, sizeof what, "bn_mask N%d C%d HW%d relu %d generators %d", N, C, HW, relu, generators);
    for (int sp = 0; sp < 3; sp++) {
        float *fy = kt_garbage(n), *fst = kt_garbage(2 * C), *frm = kt_fmalloc(C), *frv = kt_fmalloc(C),
              *fdm = kt_garbage((long)N * C), *fdx = kt_garbage(n), *fdg = kt_garbage(C), *fdb = kt_garbage(C);
        for (int c = 0; c < C; c++)
            frm[c] = 0.0f, frv[c] = 1.0f;
        for (int i = 0; i < kt_split_count(sp); i++) {
            int a = kt_split_at(C, sp, i), e = kt_split_at(C, sp, i + 1);
            k_bn_mask_fwd_train(x, gamma, beta, m, keep, &generators, fy, fst, frm, frv, N, C, HW, momentum, eps, relu,
                                a, e);
        }
        for (int i = 0; i < kt_split_count(sp); i++) {
            int a = kt_split_at(C, sp, i), e = kt_split_at(C, sp, i + 1);
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
    float *x = kt_fmalloc(n), *dyp = kt_fmalloc(pn), *gamma = kt_fmalloc(C), *beta = kt_fmalloc(C),
          *m = kt_fmalloc((long)N * C), *keep = kt_fmalloc(C);
    kt_fill(x, n, 41), kt_fill(dyp, pn, 42), kt_fill(gamma, C, 43), kt_fill(beta, C, 44), kt_fill(m, (long)N * C, 45);
    for (long i = 0; i < (long)N * C; i++)
        m[i] = m[i] > 0.3f ? 0.0f : m[i] + 0.75f;
    for (int c = 0; c < C; c++)
        keep[c] = c % 3 == 1 ? 0.0f : 1.0f;
    const float momentum = 0.1f, eps = 1e-5f;
    float *t = kt_garbage(n), *y = kt_garbage(n), *py = kt_garbage(pn), *st0 = kt_garbage(2 * C), *rm = kt_fmalloc(C),
          *rv = kt_fmalloc(C), *dy = kt_garbage(n), *dt = kt_garbage(n), *dm = kt_garbage((long)N * C),
          *dx = kt_garbage(n), *dg = kt_garbage(C), *db = kt_garbage(C);
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
    float *ws = kt_garbage(k_bn_pool_ws(N, H, W));
    for (int sp = 0; sp < 3; sp++) {
        float *fy = kt_garbage(pn), *fst = kt_garbage(2 * C), *frm = kt_fmalloc(C), *frv = kt_fmalloc(C),
              *fdm = kt_garbage((long)N * C), *fdx = kt_garbage(n), *fdg = kt_garbage(C), *fdb = kt_garbage(C);
        for (int c = 0; c < C; c++)
            frm[c] = 0.0f, frv[c] = 1.0f;
        for (int i = 0; i < kt_split_count(sp); i++) {
            int a = kt_split_at(C, sp, i), e = kt_split_at(C, sp, i + 1);
            k_bn_mask_pool_fwd_train(x, gamma, beta, m, keep, &generators, fy, fst, frm, frv, ws, N, C, H, W, k, st,
                                     OH, OW, momentum, eps, relu, a, e);
        }
        for (int i = 0; i < kt_split_count(sp); i++) {
            int a = kt_split_at(C, sp, i), e = kt_split_at(C, sp, i + 1);
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
    float *x = kt_fmalloc(n), *dyp = kt_fmalloc(pn), *gamma = kt_fmalloc(C), *beta = kt_fmalloc(C);
    kt_fill(x, n, 51), kt_fill(dyp, pn, 52), kt_fill(gamma, C, 53), kt_fill(beta, C, 54);
    float *y = kt_garbage(n), *py = kt_garbage(pn), *st0 = kt_garbage(2 * C), *rm = kt_fmalloc(C), *rv = kt_fmalloc(C),
          *dy = kt_garbage(n), *dx = kt_garbage(n), *dg = kt_garbage(C), *db = kt_garbage(C),
          *ws = kt_garbage(k_bn_pool_ws(N, H, W));
    float *fy = kt_garbage(pn), *fst = kt_garbage(2 * C), *frm = kt_fmalloc(C), *frv = kt_fmalloc(C),
          *fdx = kt_garbage(n), *fdg = kt_garbage(C), *fdb = kt_garbage(C);
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
    kt_fill(x, n, 31), kt_fill(b, n, 32), kt_fill(dy, n, 33);
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
    float *x = kt_fmalloc(n), *y = kt_fmalloc(n), *y2 = kt_fmalloc(n), *dx = kt_fmalloc(n), *y3 = kt_fmalloc(n);
    for (int i = 0; i < n; i++)
        x[i] = 1.0f + (float)(i % 7);
    unsigned long long seed = 0x123456789abcdefull;
    const float p = 0.3f;
    k_dropout_fwd(x, y, &seed, 5, p, 0, n);
    k_dropout_fwd(x, y2, &seed, 5, p, 0, 333), k_dropout_fwd(x, y2, &seed, 5, p, 333, n);
    kt_assert_same(y, y2, n, "dropout");
    k_dropout_bwd(x, dx, &seed, 5, p, 0, n); /* dy = x: dx must equal y */
    kt_assert_same(y, dx, n, "dropout backward");
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
    kt_assert_same(x, y3, n, "dropout p = 0");
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
    kt_fill(pp, n, 41);
    for (int i = 0; i < n; i++)
        rp[i] = p2[i] = pp[i], rv[i] = vv[i] = v2[i] = 0.0f;
    for (int step = 0; step < 5; step++) {
        kt_fill(gg, n, 50 + step);
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
    kt_assert_same(pp, p2, n, "sgd"), kt_assert_same(vv, v2, n, "sgd");
}

/* ---------------- pooling ---------------- */

static void pool_case(int P, int H, int W, int k, int s)
{
    int OH = (H - k) / s + 1, OW = (W - k) / s + 1;
    long nx = (long)P * H * W, ny = (long)P * OH * OW;
    float *x = kt_fmalloc(nx), *dy = kt_fmalloc(ny);
    kt_fill(x, nx, 61), kt_fill(dy, ny, 62);
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
        y[sp] = kt_garbage(ny), dx[sp] = kt_garbage(nx), ya[sp] = kt_garbage(ny), dxa[sp] = kt_garbage(nx);
        for (int i = 0; i < kt_split_count(sp); i++) {
            int a = kt_split_at(P, sp, i), e = kt_split_at(P, sp, i + 1);
            k_maxpool_fwd(x, y[sp], H, W, k, s, OH, OW, a, e);
            k_maxpool_bwd(x, dy, dx[sp], H, W, k, s, OH, OW, a, e);
            k_avgpool_fwd(x, ya[sp], H, W, k, s, OH, OW, a, e);
            k_avgpool_bwd(dy, dxa[sp], H, W, k, s, OH, OW, a, e);
        }
    }
    kt_assert_close_d(y[0], rmy, ny, 1e-6, "maxpool");
    kt_assert_close_d(dx[0], rmdx, nx, 1e-6, "maxpool backward");
    kt_assert_close_d(ya[0], ray, ny, 1e-5, "avgpool");
    kt_assert_close_d(dxa[0], radx, nx, 1e-5, "avgpool backward");
    for (int sp = 1; sp < 3; sp++) {
        kt_assert_same(y[0], y[sp], ny, "maxpool"), kt_assert_same(dx[0], dx[sp], nx, "maxpool");
        kt_assert_same(ya[0], ya[sp], ny, "avgpool"), kt_assert_same(dxa[0], dxa[sp], nx, "avgpool");
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
    kt_fill(x, P * HW, 71), kt_fill(dy, P, 72);
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
    float *x = kt_fmalloc(nx), *w1 = kt_fmalloc((long)Hd * C), *w2 = kt_fmalloc((long)K * Hd), *b2 = kt_fmalloc(K);
    kt_fill(x, nx, 81), kt_fill(w1, (long)Hd * C, 82), kt_fill(w2, (long)K * Hd, 83), kt_fill(b2, K, 84);
    for (long i = 0; i < (long)Hd * C; i++)
        w1[i] *= 4.0f; /* masks spread over (0, 1) and zeros */
    float *m[3], *sv[3];
    for (int v = 0; v < 3; v++)
        m[v] = kt_garbage((long)N * K), sv[v] = kt_garbage(ns);
    k_mask_gen_fwd(x, w1, w2, b2, m[0], sv[0], C, HW, Hd, K, 0, N);
    int at = N > 5 ? 5 : N / 2; /* groups of 8 from 0, then from 5 */
    k_mask_gen_fwd(x, w1, w2, b2, m[1], sv[1], C, HW, Hd, K, 0, at);
    k_mask_gen_fwd(x, w1, w2, b2, m[1], sv[1], C, HW, Hd, K, at, N);
    for (int n = 0; n < N; n++)
        k_mask_gen_fwd(x, w1, w2, b2, m[2], sv[2], C, HW, Hd, K, n, n + 1);
    char what[96];
    snprintf(what, sizeof what, "mask generator N%d C%d HW%d Hd%d K%d", N, C, HW, Hd, K);
    for (int v = 1; v < 3; v++) {
        kt_assert_same(m[0], m[v], (long)N * K, what);
        kt_assert_same(sv[0], sv[v], ns, what);
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
    kt_fill(l, N * K, 81);
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
    kt_fill(A, M * K, 91), kt_fill(B, K * N, 92);
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
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_bn_mask),
        cmocka_unit_test(test_relu_add),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_sgd),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_gap),
        cmocka_unit_test(test_mask_gen),
        cmocka_unit_test(test_cross_entropy),
        cmocka_unit_test(test_gemm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
