/* One conv kernel compiled natively (-O3 -march=native, the shapes as
 * arguments), timed on one thread: a binary `perf record` and `perf
 * annotate` can look into, where the JIT'ed kernels are one symbol each.
 * The JIT's copies have the shapes as constants, so a copy of a row whose
 * length is an argument here (a memcpy call) is inline there: time the
 * JIT'ed kernel with bench_kernels, look for where it goes with this.
 *
 *   perf_kernel KERNEL C H K [repetitions]       batch 128, 3x3 pad 1, H x H
 *   KERNEL: wino_fwd wino_bwd_w wino4_fwd wino4_bwd_w direct_bwd_w
 *   cmake --build build --target perf_kernel      (not in the default build)
 *   perf record -e cpu-clock build/bench/perf_kernel wino_bwd_w 256 8 256 30
 *   perf annotate --stdio -s k_conv2d_wino_bwd_w */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "k_kernels.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *filled(long n, long seed)
{
    float *p = aligned_alloc(64, ((size_t)n * sizeof(float) + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "perf_kernel: out of memory\n");
        exit(1);
    }
    for (long i = 0; i < n; i++)
        p[i] = (float)((i * seed) % 1000) / 1000.0f - 0.5f;
    return p;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: perf_kernel wino_fwd|wino_bwd_w|wino4_fwd|wino4_bwd_w|direct_bwd_w C H K [reps]\n");
        return 2;
    }
    const char *k = argv[1];
    int N = 128, C = atoi(argv[2]), H = atoi(argv[3]), K = atoi(argv[4]), reps = argc > 5 ? atoi(argv[5]) : 5, G = 8;
    int simd = __builtin_cpu_supports("avx512f") ? 16 : 8;
    if (C < 1 || H < 4 || K < 1 || reps < 1) {
        fprintf(stderr, "perf_kernel: C and K at least 1, H at least 4\n");
        return 2;
    }
    long nws = k_wino_ws(C, H, H, K, simd), n4 = k_wino4_ws(C, H, H, K, 1, simd),
         nd = k_conv2d_ws(N, C, H, H, K, 3, 3, 1, 1, H, H, simd);
    nws = (nws > n4 ? nws : n4) > nd ? (nws > n4 ? nws : n4) : nd;
    float *x = filled((long)N * C * H * H, 7919), *dy = filled((long)N * K * H * H, 104729),
          *w = filled((long)K * C * 9, 31), *b = filled(K, 3), *dw = filled((long)G * K * C * 9, 1),
          *ws = filled(nws + 64, 1);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        if (!strcmp(k, "wino_fwd"))
            k_conv2d_wino(x, w, b, NULL, NULL, NULL, NULL, NULL, dy, ws, N, C, H, H, K, 0.0f, 0, 0, simd, 1, 0, N);
        else if (!strcmp(k, "wino_bwd_w"))
            k_conv2d_wino_bwd_w(x, dy, dw, NULL, ws, N, C, H, H, K, G, 1, simd, 0, G);
        else if (!strcmp(k, "wino4_fwd"))
            k_conv2d_wino4(x, w, b, NULL, NULL, NULL, NULL, NULL, dy, ws, N, C, H, H, K, 1, 0.0f, 0, 0, simd, 1, 0, N);
        else if (!strcmp(k, "wino4_bwd_w"))
            k_conv2d_wino4_bwd_w(x, dy, dw, NULL, ws, N, C, H, H, K, 1, G, 1, simd, 0, G);
        else if (!strcmp(k, "direct_bwd_w"))
            k_conv2d_bwd_w(x, dy, dw, NULL, ws, N, C, H, H, K, 3, 3, 1, 1, H, H, G, 1, simd, 0, G);
        else {
            fprintf(stderr, "perf_kernel: no kernel '%s'\n", k);
            return 2;
        }
        double t = now() - t0;
        best = t < best ? t : best;
    }
    printf("%s %d -> %d at %dx%d, batch %d: best of %d %.2f ms, %.1f GFLOP/s of the direct conv's FLOPs\n", k, C, K,
           H, H, N, reps, best * 1e3, 2.0 * N * C * K * 9 * H * H / best / 1e9);
    free(x), free(dy), free(w), free(b), free(dw), free(ws);
    return 0;
}
