/* The JIT: kernels specialized to constant shapes compute what the same C
 * compiled natively computes (to float rounding: the JIT may fuse multiply
 * and add into FMA), and bad requests are errors, not crashes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mwt_test.h"
#include "jit.h"
#include "k_kernels.h"

static Jit *jit;

static int setup(void **state)
{
    (void)state;
    char err[512];
    jit = jit_create(err, sizeof err);
    if (!jit)
        fprintf(stderr, "jit_create: %s\n", err);
    return jit ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    jit_destroy(jit);
    return 0;
}

static void fill(float *v, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (float)((seed >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
}

static void assert_close(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(a[i] - b[i]) <= 1e-5f * (1.0f + fabsf(b[i]))))   /* a NaN fails too */
            fail_msg("element %zu: jit %.9g, reference %.9g", i, a[i], b[i]);
}

static void test_host_cpu_is_named(void **state)
{
    (void)state;
    assert_true(strlen(jit_cpu(jit)) > 0);
    printf("jit: host cpu %s\n", jit_cpu(jit));
}

/* The tile width the kernels should use on this host. */
static int host_simd(void) { return strstr(jit_cpu_features(jit), "+avx512f") ? 16 : 8; }

/* Tensors live in one arena and a call names them by byte offset. */
typedef struct {
    char *base;
    size_t used, cap;
} TArena;

static double arena_put(TArena *a, size_t nfloats)
{
    size_t off = a->used;
    a->used += (nfloats * sizeof(float) + 63) / 64 * 64;
    assert_true(a->used <= a->cap);
    return (double)off;
}

static float *at(TArena *a, double off) { return (float *)(a->base + (size_t)off); }

static JitFn add_one(const char *name, const char *kernel, const char *sig, const double *consts)
{
    JitCall call = { name, kernel, sig, consts };
    char err[512];
    if (jit_add_calls(jit, &call, 1, err, sizeof err) != 0)
        fail_msg("jit_add_calls %s: %s", name, err);
    JitFn fn = (JitFn)jit_lookup(jit, name);
    assert_non_null(fn);
    return fn;
}

static void test_gemm_specialized(void **state)
{
    (void)state;
    const int M = 7, N = 33, K = 19;
    TArena a = { malloc(1 << 16), 0, 1 << 16 };
    double oA = arena_put(&a, (size_t)M * K), oB = arena_put(&a, (size_t)K * N), oC = arena_put(&a, (size_t)M * N);
    /* M N K as constants, A B C in the arena, accumulate = 0 */
    const double consts[] = { M, N, K, oA, oB, oC, 0 };
    JitFn fn = add_one("gemm_7x33x19", "k_gemm", "iiipppi", consts);
    float *C2 = malloc(sizeof(float) * M * N);
    fill(at(&a, oA), (size_t)M * K, 1);
    fill(at(&a, oB), (size_t)K * N, 2);
    fn(a.base, NULL, 0, 0);
    k_gemm(M, N, K, at(&a, oA), at(&a, oB), C2, 0);
    assert_close(at(&a, oC), C2, (size_t)M * N);
    free(a.base), free(C2);
}

/* The three conv kernels specialized to a shape, against the native build,
 * and split in two in the JIT, which must not change a bit. */
static void conv_case(int N, int C, int H, int W, int K, int R, int stride, int pad, int bias, int simd)
{
    int OH = (H + 2 * pad - R) / stride + 1, OW = (W + 2 * pad - R) / stride + 1, G = 2;
    size_t nx = (size_t)N * C * H * W, nw = (size_t)K * C * R * R, ny = (size_t)N * K * OH * OW;
    long nws = k_conv2d_ws(N, C, H, W, K, R, R, stride, pad, OH, OW, simd);
    TArena a = { NULL, 0, (nx * 2 + nw * (G + 1) + ny * 2 + (size_t)K * (G + 1) + 64) * sizeof(float) + 64 * 16 };
    a.base = malloc(a.cap);
    double ox = arena_put(&a, nx), ow = arena_put(&a, nw), ob = arena_put(&a, (size_t)K), oy = arena_put(&a, ny),
           ody = arena_put(&a, ny), odx = arena_put(&a, nx), odw = arena_put(&a, nw * G), odb = arena_put(&a, (size_t)K * G);
    double shape[] = { N, C, H, W, K, R, R, stride, pad, OH, OW, simd };
    double cf[20], cx[20], cw[20];
    int n = 0;
    cf[n++] = ox, cf[n++] = ow;
    if (bias)
        cf[n++] = ob;
    cf[n++] = oy;
    memcpy(cf + n, shape, sizeof shape);
    cf[n + 11] = 1, cf[n + 12] = simd;   /* the forward takes kt (1: rows only) before simd */
    cx[0] = ody, cx[1] = ow, cx[2] = odx;
    memcpy(cx + 3, shape, sizeof shape);
    cw[0] = ox, cw[1] = ody, cw[2] = odw, cw[3] = odb;
    memcpy(cw + 4, shape, sizeof shape);
    cw[15] = G, cw[16] = 2, cw[17] = simd; /* G and CS (2 parts of the input channels) come before simd */
    char name[96];
    snprintf(name, sizeof name, "conv_%d_%d_%d_%d_%d_%d_%d_%d_%d_%d", N, C, H, W, K, R, stride, pad, bias, simd);
    JitFn fwd = add_one(name, "k_conv2d_fwd", bias ? "ppppwiiiiiiiiiiiiilh" : "ppnpwiiiiiiiiiiiiilh", cf);
    strcat(name, "_bx");
    JitFn bx = add_one(name, "k_conv2d_bwd_x", "pppwiiiiiiiiiiiilh", cx);
    strcat(name, "_bw");
    JitFn bw = add_one(name, "k_conv2d_bwd_w", "ppppwiiiiiiiiiiiiiilh", cw);
    float *ws = malloc(sizeof(float) * (size_t)nws), *y2 = malloc(sizeof(float) * ny),
          *dx2 = malloc(sizeof(float) * nx), *dw2 = malloc(sizeof(float) * nw * G), *db2 = malloc(sizeof(float) * K * G);
    fill(at(&a, ox), nx, 3);
    fill(at(&a, ow), nw, 4);
    fill(at(&a, ob), (size_t)K, 5);
    fill(at(&a, ody), ny, 6);
    fwd(a.base, ws, 0, N * OH);   /* units: output rows */
    k_conv2d_fwd(at(&a, ox), at(&a, ow), bias ? at(&a, ob) : NULL, y2, ws, N, C, H, W, K, R, R, stride, pad, OH, OW,
                 1, simd, 0, N * OH);
    assert_close(at(&a, oy), y2, ny);
    bx(a.base, ws, 0, N);
    k_conv2d_bwd_x(at(&a, ody), at(&a, ow), dx2, ws, N, C, H, W, K, R, R, stride, pad, OH, OW, simd, 0, N);
    assert_close(at(&a, odx), dx2, nx);
    memcpy(dx2, at(&a, odx), sizeof(float) * nx);
    bx(a.base, ws, 0, N / 2);
    bx(a.base, ws, N / 2, N);
    assert_memory_equal(at(&a, odx), dx2, sizeof(float) * nx);
    k_conv2d_bwd_w(at(&a, ox), at(&a, ody), dw2, db2, ws, N, C, H, W, K, R, R, stride, pad, OH, OW, G, 1, simd, 0, G);
    bw(a.base, ws, 0, 2 * G);
    assert_close(at(&a, odw), dw2, nw * G);
    assert_close(at(&a, odb), db2, (size_t)K * G);
    free(a.base), free(ws), free(y2), free(dx2), free(dw2), free(db2);
}

static void test_conv_specialized(void **state)
{
    (void)state;
    int simd = host_simd(), other = simd == 16 ? 8 : 16;
    conv_case(2, 3, 28, 28, 8, 3, 1, 1, 1, simd);
    conv_case(1, 5, 13, 11, 4, 3, 2, 1, 0, simd);
    conv_case(3, 2, 9, 9, 6, 1, 1, 0, 1, simd);
    conv_case(1, 4, 7, 7, 3, 5, 1, 2, 1, simd);
    conv_case(3, 32, 14, 14, 64, 3, 1, 1, 1, simd);
    /* the other tile width runs on any host too */
    conv_case(2, 3, 28, 28, 8, 3, 1, 1, 1, other);
    conv_case(1, 5, 13, 11, 4, 3, 2, 1, 0, other);
}

/* Two copies of an arena: the JIT runs on one, the native build on the
 * other; then every float of the two must agree to rounding. */
typedef struct {
    TArena jit, nat;
} Twin;

static Twin twin(size_t cap)
{
    Twin t = { { calloc(cap, 1), 0, cap }, { calloc(cap, 1), 0, cap } };
    return t;
}

static double twin_put(Twin *t, size_t n, unsigned seed)
{
    double off = arena_put(&t->jit, n);
    t->nat.used = t->jit.used;
    fill(at(&t->jit, off), n, seed);
    memcpy(at(&t->nat, off), at(&t->jit, off), n * sizeof(float));
    return off;
}

static float *nat(Twin *t, double off) { return at(&t->nat, off); }

static void twin_check(Twin *t)
{
    assert_close(at(&t->jit, 0), at(&t->nat, 0), t->jit.used / sizeof(float));
    free(t->jit.base), free(t->nat.base);
}

static void test_other_kernels_specialized(void **state)
{
    (void)state;
    int simd = host_simd();
    {   /* linear, with sizes that leave partial tiles */
        const int B = 9, F = 70, O = 13;
        Twin t = twin(1 << 20);
        double x = twin_put(&t, (size_t)B * F, 1), w = twin_put(&t, (size_t)O * F, 2), b = twin_put(&t, O, 3),
               y = twin_put(&t, (size_t)B * O, 4), dy = twin_put(&t, (size_t)B * O, 5),
               dx = twin_put(&t, (size_t)B * F, 6), dw = twin_put(&t, (size_t)O * F, 7), db = twin_put(&t, O, 8);
        float *ws = malloc(sizeof(float) * (size_t)k_linear_ws(B, F, O, simd));
        const double cf[] = { x, w, b, y, B, F, O, 1, simd }, cx[] = { dy, w, dx, B, F, O, simd },
                     cw[] = { x, dy, dw, db, B, F, O, simd };
        add_one("lin_fwd", "k_linear_fwd", "ppppwiiiiilh", cf)(t.jit.base, ws, 0, B);
        add_one("lin_bx", "k_linear_bwd_x", "pppwiiiilh", cx)(t.jit.base, ws, 0, B);
        add_one("lin_bw", "k_linear_bwd_w", "ppppwiiiilh", cw)(t.jit.base, ws, 0, O);
        k_linear_fwd(nat(&t, x), nat(&t, w), nat(&t, b), nat(&t, y), ws, B, F, O, 1, simd, 0, B);
        k_linear_bwd_x(nat(&t, dy), nat(&t, w), nat(&t, dx), ws, B, F, O, simd, 0, B);
        k_linear_bwd_w(nat(&t, x), nat(&t, dy), nat(&t, dw), nat(&t, db), ws, B, F, O, simd, 0, O);
        twin_check(&t);
        free(ws);
    }
    {   /* batchnorm, relu, dropout, pooling, loss, SGD, sum of parts */
        const int N = 4, C = 3, HW = 36, n = N * C * HW, P = N * C;
        Twin t = twin(1 << 20);
        double x = twin_put(&t, n, 11), g = twin_put(&t, C, 12), be = twin_put(&t, C, 13), y = twin_put(&t, n, 14),
               st = twin_put(&t, 2 * C, 15), rm = twin_put(&t, C, 16), rv = twin_put(&t, C, 17),
               dy = twin_put(&t, n, 18), dx = twin_put(&t, n, 19), dg = twin_put(&t, C, 20), db = twin_put(&t, C, 21),
               r = twin_put(&t, n, 22), seed = twin_put(&t, 2, 23), d = twin_put(&t, n, 24),
               mp = twin_put(&t, (size_t)P * 9, 25), mdx = twin_put(&t, n, 26), lg = twin_put(&t, 40, 27),
               lab = twin_put(&t, 4, 28), rl = twin_put(&t, 4, 29), mean = twin_put(&t, 1, 30),
               dl = twin_put(&t, 40, 31), pr = twin_put(&t, n, 32), gr = twin_put(&t, n, 33),
               v = twin_put(&t, n, 34), lr = twin_put(&t, 1, 35), sp = twin_put(&t, C, 36);
        for (int i = 0; i < 4; i++)
            ((int *)at(&t.jit, lab))[i] = ((int *)nat(&t, lab))[i] = (i * 7) % 10;
        const double cbn[] = { x, g, be, y, st, rm, rv, N, C, HW, 0.1, 1e-5, 1 },
                     cbb[] = { x, dy, g, st, be, dx, dg, db, N, C, HW, 1 }, crelu[] = { y, r },
                     cdrop[] = { x, d, seed, 3, 0.25 }, cmp[] = { x, mp, 6, 6, 2, 2, 3, 3 },
                     cmb[] = { x, mp, mdx, 6, 6, 2, 2, 3, 3 }, cce[] = { lg, lab, rl, 4, 10 }, cmean[] = { rl, mean, 4 },
                     cceb[] = { lg, lab, mean, dl, 4, 10 }, csgd[] = { pr, gr, v, lr, 0.9, 5e-4, 1 },
                     csum[] = { g, sp, 1, C };
        /* units: channels, elements, planes, rows, 1 */
        struct { const char *name, *kernel, *sig; const double *c; int units; } k[] = {
            { "bn_f", "k_bn_fwd_train", "pppppppiiiffil" "h", cbn, C },   /* with the relu fused */
            { "bn_b", "k_bn_bwd", "ppppppppiiiilh", cbb, C },
            { "relu", "k_relu_fwd", "pplh", crelu, n },
            { "drop", "k_dropout_fwd", "pppiflh", cdrop, n },
            { "mp_f", "k_maxpool_fwd", "ppiiiiiilh", cmp, P },
            { "mp_b", "k_maxpool_bwd", "pppiiiiiilh", cmb, P },
            { "ce_f", "k_ce_fwd", "pppiilh", cce, 4 },
            { "mean", "k_mean", "ppilh", cmean, 1 },
            { "ce_b", "k_ce_bwd", "ppppiilh", cceb, 4 },
            { "sgd", "k_sgd", "ppppffilh", csgd, n },
            { "sum", "k_sum_parts", "ppiilh", csum, C },
        };
        for (size_t i = 0; i < sizeof k / sizeof *k; i++)
            add_one(k[i].name, k[i].kernel, k[i].sig, k[i].c)(t.jit.base, NULL, 0, k[i].units);
        unsigned long long *sd = (unsigned long long *)nat(&t, seed);
        k_bn_fwd_train(nat(&t, x), nat(&t, g), nat(&t, be), nat(&t, y), nat(&t, st), nat(&t, rm), nat(&t, rv), N, C,
                       HW, 0.1f, 1e-5f, 1, 0, C);
        k_bn_bwd(nat(&t, x), nat(&t, dy), nat(&t, g), nat(&t, st), nat(&t, be), nat(&t, dx), nat(&t, dg), nat(&t, db), N,
                 C, HW, 1, 0, C);
        k_relu_fwd(nat(&t, y), nat(&t, r), 0, n);
        k_dropout_fwd(nat(&t, x), nat(&t, d), sd, 3, 0.25f, 0, n);
        k_maxpool_fwd(nat(&t, x), nat(&t, mp), 6, 6, 2, 2, 3, 3, 0, P);
        k_maxpool_bwd(nat(&t, x), nat(&t, mp), nat(&t, mdx), 6, 6, 2, 2, 3, 3, 0, P);
        k_ce_fwd(nat(&t, lg), (const int *)nat(&t, lab), nat(&t, rl), 4, 10, 0, 4);
        k_mean(nat(&t, rl), nat(&t, mean), 4, 0, 1);
        k_ce_bwd(nat(&t, lg), (const int *)nat(&t, lab), nat(&t, mean), nat(&t, dl), 4, 10, 0, 4);
        k_sgd(nat(&t, pr), nat(&t, gr), nat(&t, v), nat(&t, lr), 0.9f, 5e-4f, 1, 0, n);
        k_sum_parts(nat(&t, g), nat(&t, sp), 1, C, 0, C);
        twin_check(&t);
    }
}

/* Calls of one shape share a compiled body: three linear layers of one
 * shape (tensors of their own, the bias there or not ('q'), a runtime 'r'
 * constant that differs) compute what the kernel computes for each, next to
 * one of another shape; the module has one shared body, for the three. */
static void test_shared_shapes(void **state)
{
    (void)state;
    int simd = host_simd();
    const int F = 40, O = 13, Bs[4] = { 5, 5, 5, 6 }, og[4] = { 1, 2, 1, 1 };
    TArena a = { malloc(1 << 18), 0, 1 << 18 };
    double x[2], w[2], b[2], y[4];
    for (int i = 0; i < 2; i++) {
        x[i] = arena_put(&a, (size_t)6 * F), w[i] = arena_put(&a, (size_t)O * F), b[i] = arena_put(&a, O);
        fill(at(&a, x[i]), (size_t)6 * F, 40u + (unsigned)i);
        fill(at(&a, w[i]), (size_t)O * F, 50u + (unsigned)i);
        fill(at(&a, b[i]), O, 60u + (unsigned)i);
    }
    for (int i = 0; i < 4; i++)
        y[i] = arena_put(&a, (size_t)6 * O);
    const double xs[4] = { x[0], x[1], x[0], x[1] }, ws_[4] = { w[0], w[1], w[1], w[0] }, bs[4] = { b[0], -1, b[1], b[0] };
    double consts[4][9];
    char names[4][16];
    JitCall calls[4];
    for (int i = 0; i < 4; i++) {
        double c[9] = { xs[i], ws_[i], bs[i], y[i], Bs[i], F, O, og[i], simd };
        memcpy(consts[i], c, sizeof c);
        snprintf(names[i], sizeof names[i], "shared_lin%d", i);
        calls[i] = (JitCall){ names[i], "k_linear_fwd", "ppqpwiiirilh", consts[i] };
    }
    char err[512];
    char *ir = jit_calls_ir(jit, calls, 4, 0, err, sizeof err);
    if (!ir)
        fail_msg("%s", err);
    /* one body, defined once and called by the three (the first names it) */
    const char *body = strstr(ir, "define internal void @shared_lin0.shape(");
    assert_non_null(body);
    assert_null(strstr(body + 1, "define internal void @shared_lin0.shape("));
    for (int i = 1; i < 4; i++) {
        char other[64];
        snprintf(other, sizeof other, "@%s.shape(", names[i]);
        assert_null(strstr(ir, other));
    }
    free(ir);
    if (jit_add_calls(jit, calls, 4, err, sizeof err) != 0)
        fail_msg("%s", err);
    float *ws = malloc(sizeof(float) * (size_t)k_linear_ws(6, F, O, simd)), *want = malloc(sizeof(float) * 6 * O);
    for (int i = 0; i < 4; i++) {
        JitFn fn = (JitFn)jit_lookup(jit, names[i]);
        assert_non_null(fn);
        fn(a.base, ws, 0, Bs[i] * og[i]);
        k_linear_fwd(at(&a, xs[i]), at(&a, ws_[i]), bs[i] < 0 ? NULL : at(&a, bs[i]), want, ws, Bs[i], F, O, og[i], simd,
                     0, Bs[i] * og[i]);
        assert_close(at(&a, y[i]), want, (size_t)Bs[i] * O);
    }
    free(ws), free(want), free(a.base);
}

static void test_bad_requests(void **state)
{
    (void)state;
    char err[512];
    double c[] = { 1, 2 };   /* a constant for each i of the signatures below */
    JitCall nokernel = { "x", "k_nope", "i", c };
    assert_int_equal(jit_add_calls(jit, &nokernel, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "no kernel named k_nope"));
    JitCall badsig = { "y", "k_gemm", "ii", c };
    assert_int_equal(jit_add_calls(jit, &badsig, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "k_gemm takes 7 arguments, the call passes 2"));
    assert_null(jit_lookup(jit, "never_defined"));
}

/* Compiled in parallel parts, then again from the disk cache: the same code,
 * the same results; a damaged cache file is ignored and compiled anew. */
static void test_object_cache(void **state)
{
    (void)state;
    enum { NC = 9 };
    char dir[512], path[1024], err[512];
    snprintf(dir, sizeof dir, "%s.%ld", tc_tmp_path("jitcache"), (long)getpid());   /* this run's alone */
    setenv("MWTC_CACHE_DIR", dir, 1);
    unsetenv("MWTC_CACHE");
    TArena a = { malloc(1 << 18), 0, 1 << 18 };
    double consts[NC][7];
    char names[NC][32];
    JitCall calls[NC];
    for (int i = 0; i < NC; i++) {
        int M = 3 + i, N = 17 + 2 * i, K = 5 + i;
        double oA = arena_put(&a, (size_t)M * K), oB = arena_put(&a, (size_t)K * N), oC = arena_put(&a, (size_t)M * N);
        fill(at(&a, oA), (size_t)M * K, (unsigned)i + 1);
        fill(at(&a, oB), (size_t)K * N, (unsigned)i + 7);
        double c[7] = { M, N, K, oA, oB, oC, 0 };
        memcpy(consts[i], c, sizeof c);
        /* a name per test run, so an older cache from another build cannot answer */
        snprintf(names[i], sizeof names[i], "cached_gemm_%d_%ld", i, (long)getpid());
        calls[i] = (JitCall){ names[i], "k_gemm", "iiipppi", consts[i] };
    }
    float *want = NULL;
    size_t bytes = a.used;
    for (int round = 0; round < 3; round++) {
        Jit *j = jit_create(err, sizeof err);
        assert_non_null(j);
        if (jit_add_calls(j, calls, NC, err, sizeof err) != 0)
            fail_msg("%s", err);
        /* round 0 compiles, round 1 reads the cache, round 2 finds it damaged and compiles */
        assert_int_equal(jit_from_cache(j), round == 1);
        for (int i = 0; i < NC; i++) {
            JitFn fn = (JitFn)jit_lookup(j, names[i]);
            assert_non_null(fn);
            fn(a.base, NULL, 0, 0);
        }
        if (!want) {
            want = malloc(bytes);
            memcpy(want, a.base, bytes);
            for (int i = 0; i < NC; i++) {   /* and right: against the kernel itself */
                const double *c = consts[i];
                int M = (int)c[0], N = (int)c[1], K = (int)c[2];
                float *ref = malloc(sizeof(float) * (size_t)(M * N));
                k_gemm(M, N, K, at(&a, c[3]), at(&a, c[4]), ref, 0);
                assert_close(at(&a, c[5]), ref, (size_t)(M * N));
                free(ref);
            }
        } else {
            assert_memory_equal(a.base, want, bytes);
        }
        jit_destroy(j);
        if (round == 1) {   /* damage the one cache file: a byte in the middle of an object */
            char cmd[1200];
            snprintf(cmd, sizeof cmd, "ls %s/*.o", dir);
            FILE *ls = popen(cmd, "r");
            assert_non_null(ls);
            assert_non_null(fgets(path, sizeof path, ls));
            pclose(ls);
            path[strcspn(path, "\n")] = 0;
            FILE *f = fopen(path, "r+b");
            assert_non_null(f);
            fseek(f, 0, SEEK_END);
            long size = ftell(f);
            fseek(f, size / 2, SEEK_SET);
            int ch = fgetc(f);
            fseek(f, size / 2, SEEK_SET);
            fputc(ch ^ 0x5a, f);
            fclose(f);
        }
    }
    free(want), free(a.base);
    char rm[1100];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    assert_int_equal(system(rm), 0);
}

/* MWTC_PERF_MAP=1 names the JIT'ed code for perf in /tmp/perf-PID.map: each
 * call's function at the address a lookup gives, named by its kernel, and
 * the body calls of one shape share (a local symbol no lookup finds). */
static void test_perf_map(void **state)
{
    (void)state;
    int simd = host_simd();
    const int F = 24, O = 9, B = 4;
    char err[512], path[64], names[3][48];
    snprintf(path, sizeof path, "/tmp/perf-%ld.map", (long)getpid());
    unlink(path);
    setenv("MWTC_PERF_MAP", "1", 1);
    Jit *j = jit_create(err, sizeof err);
    assert_non_null(j);
    double consts[3][9];
    JitCall calls[3];
    for (int i = 0; i < 3; i++) {   /* tensors anywhere: one shape, one body */
        double c[9] = { 64.0 * i, 4096, -1, 8192 + 64.0 * i, B, F, O, 1, simd };
        memcpy(consts[i], c, sizeof c);
        snprintf(names[i], sizeof names[i], "pm_lin%d_%ld", i, (long)getpid());
        calls[i] = (JitCall){ names[i], "k_linear_fwd", "ppqpwiiirilh", consts[i] };
    }
    if (jit_add_calls(j, calls, 3, err, sizeof err) != 0)
        fail_msg("%s", err);
    /* JITs made and destroyed before it (a job's earlier graphs) leave no
     * code where its code lies: their pages are kept until exit */
    for (int r = 0; r < 2; r++) {
        Jit *old = jit_create(err, sizeof err);
        assert_non_null(old);
        char oname[48];
        snprintf(oname, sizeof oname, "pm_old%d_%ld", r, (long)getpid());
        JitCall oc = { oname, "k_linear_fwd", "ppqpwiiirilh", consts[0] };
        if (jit_add_calls(old, &oc, 1, err, sizeof err) != 0)
            fail_msg("%s", err);
        jit_destroy(old);
    }
    Jit *later = jit_create(err, sizeof err);
    assert_non_null(later);
    char lname[48];
    snprintf(lname, sizeof lname, "pm_later_%ld", (long)getpid());
    JitCall lc = { lname, "k_linear_fwd", "ppqpwiiirilh", consts[1] };
    if (jit_add_calls(later, &lc, 1, err, sizeof err) != 0)
        fail_msg("%s", err);
    unsetenv("MWTC_PERF_MAP");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    unsigned long long start[64], size[64];
    char name[64][160];
    int n = 0;
    while (n < 64 && fscanf(f, "%llx %llx %159[^\n]", &start[n], &size[n], name[n]) == 3)
        n++;
    fclose(f);
    unlink(path);
    assert_int_equal(n, 7); /* 3 calls and the body they share, 3 single calls (each its own body) */
    char body[200];
    snprintf(body, sizeof body, "k_linear_fwd %s.shape", names[0]);
    int found_body = 0;
    for (int i = 0; i < n; i++) {
        assert_true(size[i] > 0);
        found_body |= !strcmp(name[i], body);
        for (int k = 0; k < n; k++)   /* no two ranges overlap */
            assert_true(k == i || start[i] + size[i] <= start[k] || start[k] + size[k] <= start[i]);
    }
    assert_true(found_body);
    for (int c = 0; c < 3; c++) {
        char want[200];
        snprintf(want, sizeof want, "k_linear_fwd %s", names[c]);
        int at_lookup = 0;
        for (int i = 0; i < n; i++)
            if (!strcmp(name[i], want))
                at_lookup = start[i] == (unsigned long long)(uintptr_t)jit_lookup(j, names[c]);
        if (!at_lookup)
            fail_msg("%s is not in %s at its address", want, path);
    }
    jit_destroy(j);
    jit_destroy(later);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_cpu_is_named),
        cmocka_unit_test(test_gemm_specialized),
        cmocka_unit_test(test_conv_specialized),
        cmocka_unit_test(test_other_kernels_specialized),
        cmocka_unit_test(test_shared_shapes),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_object_cache),
        cmocka_unit_test(test_perf_map),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
