/* Timing for the kernel benchmarks: the calling thread's CPU time (other
 * processes on the machine distort it less than wall time), and the best of
 * a few calls of a JIT'ed kernel. */
#ifndef MWT_BENCH_TIME_H
#define MWT_BENCH_TIME_H
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

#endif
