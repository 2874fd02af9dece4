/* Timing for the kernel benchmarks: the calling thread's CPU time (other
 * processes on the machine distort it less than wall time), and the best of
 * a few calls of a JIT'ed kernel. */
#ifndef MWT_BENCH_TIME_H
#define MWT_BENCH_TIME_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jit.h"

static inline double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The best of reps timed calls of units [0, units), after one warm-up. */
static inline double bench_best(JitFn fn, char *base, float *ws, int units, int reps)
{
    fn(base, ws, 0, units);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        fn(base, ws, 0, units);
        double t = bench_now() - t0;
        best = t < best ? t : best;
    }
    return best;
}

/* The JIT the kernel benchmarks compile with, and their two arguments:
 * [simd] (default: this CPU's, 16 with AVX-512, else 8) and [repetitions]. */
static inline Jit *bench_start(const char *prog, int argc, char **argv, int default_reps, int *simd, int *reps)
{
    char err[512];
    Jit *jit = jit_create(err, sizeof err);
    if (!jit) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return NULL;
    }
    *simd = strstr(jit_cpu_features(jit), "+avx512f") ? 16 : 8;
    if (argc > 1)
        *simd = atoi(argv[1]);
    *reps = argc > 2 ? atoi(argv[2]) : default_reps;
    return jit;
}

#endif
