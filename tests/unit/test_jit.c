/* The JIT: kernels specialized to constant shapes compute what the same C
 * compiled natively computes (to float rounding: the JIT may fuse multiply
 * and add into FMA), and bad requests are errors, not crashes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        if (fabsf(a[i] - b[i]) > 1e-5f * (1.0f + fabsf(b[i])))
            fail_msg("element %zu: jit %.9g, reference %.9g", i, a[i], b[i]);
}

static void test_host_cpu_is_named(void **state)
{
    (void)state;
    assert_true(strlen(jit_cpu(jit)) > 0);
    printf("jit: host cpu %s\n", jit_cpu(jit));
}

static void test_gemm_specialized(void **state)
{
    (void)state;
    const int M = 7, N = 33, K = 19;
    const int shapes[] = { M, N, K, 0 };
    /* M N K as constants, A B C from the caller, accumulate = 0 */
    JitCall call = { "gemm_7x33x19", "k_gemm", "iiipppi", shapes };
    char err[512];
    assert_int_equal(jit_add_calls(jit, &call, 1, err, sizeof err), 0);
    void (*fn)(const float *, const float *, float *) = (void (*)(const float *, const float *, float *))jit_lookup(jit, "gemm_7x33x19");
    assert_non_null(fn);
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
    fill(A, (size_t)M * K, 1);
    fill(B, (size_t)K * N, 2);
    fn(A, B, C1);
    k_gemm(M, N, K, A, B, C2, 0);
    assert_close(C1, C2, (size_t)M * N);
    free(A), free(B), free(C1), free(C2);
}

static void conv_case(int N, int C, int H, int W, int K, int R, int stride, int pad, int bias)
{
    int OH = (H + 2 * pad - R) / stride + 1, OW = (W + 2 * pad - R) / stride + 1;
    int consts[] = { N, C, H, W, K, R, R, stride, pad, OH, OW };
    char name[64];
    snprintf(name, sizeof name, "conv_%d_%d_%d_%d_%d_%d_%d_%d_%d", N, C, H, W, K, R, stride, pad, bias);
    JitCall call = { name, "k_conv2d_fwd", bias ? "ppppiiiiiiiiiii" : "ppnpiiiiiiiiiii", consts };
    char err[512];
    assert_int_equal(jit_add_calls(jit, &call, 1, err, sizeof err), 0);
    size_t nx = (size_t)N * C * H * W, nw = (size_t)K * C * R * R, ny = (size_t)N * K * OH * OW;
    float *x = malloc(sizeof(float) * nx), *w = malloc(sizeof(float) * nw), *b = malloc(sizeof(float) * K);
    float *y1 = malloc(sizeof(float) * ny), *y2 = malloc(sizeof(float) * ny);
    fill(x, nx, 3);
    fill(w, nw, 4);
    fill(b, (size_t)K, 5);
    if (bias) {
        void (*fn)(const float *, const float *, const float *, float *) =
            (void (*)(const float *, const float *, const float *, float *))jit_lookup(jit, name);
        assert_non_null(fn);
        fn(x, w, b, y1);
    } else {
        void (*fn)(const float *, const float *, float *) = (void (*)(const float *, const float *, float *))jit_lookup(jit, name);
        assert_non_null(fn);
        fn(x, w, y1);
    }
    k_conv2d_fwd(x, w, bias ? b : NULL, y2, N, C, H, W, K, R, R, stride, pad, OH, OW);
    assert_close(y1, y2, ny);
    free(x), free(w), free(b), free(y1), free(y2);
}

static void test_conv_specialized(void **state)
{
    (void)state;
    conv_case(2, 3, 28, 28, 8, 3, 1, 1, 1);
    conv_case(1, 5, 13, 11, 4, 3, 2, 1, 0);
    conv_case(3, 2, 9, 9, 6, 1, 1, 0, 1);
    conv_case(1, 4, 7, 7, 3, 5, 1, 2, 1);
}

static void test_bad_requests(void **state)
{
    (void)state;
    char err[512];
    int c[] = { 1 };
    JitCall nokernel = { "x", "k_nope", "i", c };
    assert_int_equal(jit_add_calls(jit, &nokernel, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "no kernel named k_nope"));
    JitCall badsig = { "y", "k_gemm", "ii", c };
    assert_int_equal(jit_add_calls(jit, &badsig, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "k_gemm takes 7 arguments, the call passes 2"));
    assert_null(jit_lookup(jit, "never_defined"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_cpu_is_named),
        cmocka_unit_test(test_gemm_specialized),
        cmocka_unit_test(test_conv_specialized),
        cmocka_unit_test(test_bad_requests),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
