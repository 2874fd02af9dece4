/* rt_pool: a small thread pool that runs a training iteration's steps in parallel.
 *
 * A training iteration is ~60 short steps (a GEMM, a ReLU, a reduction...), ~470 iterations an
 * epoch, so the barrier between two steps must cost about a microsecond: threads spin on an atomic
 * counter, and only after ~1 ms of waiting sleep (a futex on Linux), so that idle workers (between
 * epochs, during evaluation) do not burn a core. Measured on 16 idle cores: 0.3 us a step with 2
 * threads, 2 us with 16.
 *
 * One thread at a time calls rt_pool_run on a given pool; it takes part as thread 0. */
#ifndef RT_POOL_H
#define RT_POOL_H

#include <stddef.h>

typedef struct RtPool RtPool;

/* Thread t runs units [lo, hi) of a step; base is the run's memory (activations, parameters),
 * ws the thread's own scratch buffer. */
typedef void (*RtTask)(char *base, float *ws, int lo, int hi);

typedef struct RtStep {
  RtTask fn;
  int units; /* <= 0: nothing to do (the barrier still separates it from its neighbours) */
} RtStep;

/* threads >= 1: starts threads - 1 workers (the caller is thread 0). NULL and a message in err
 * when threads < 1 or a thread cannot be started. */
RtPool *rt_pool_create(int threads, char *err, size_t errlen);
/* Stops and joins the workers; NULL is a no-op. */
void rt_pool_destroy(RtPool *p);
int rt_pool_threads(const RtPool *p);

/* Runs steps[0..n) in order. Thread t of T runs fn(base, ws[t], lo, hi) on its contiguous share
 * lo = t*units/T, hi = (t+1)*units/T, unless that share is empty. A barrier separates consecutive
 * steps: a step sees every write of the steps before it. Returns when all are done, and the
 * caller then sees every write of the run. ws may be NULL (every thread gets NULL). */
void rt_pool_run(RtPool *p, const RtStep *steps, int n, char *base, float *const *ws);

/* Every unit of steps[0..n) on the caller's thread, with ws[0] (NULL: none); no pool needed.
 * Work that keeps every thread busy with its own graphs (run_variants.c's modules) runs each
 * graph this way. */
void rt_pool_run_serial(const RtStep *steps, int n, char *base, float *const *ws);

/* Where one graph runs faster: on all threads, or on the caller's alone. On a quiet machine all
 * threads win, but when other programs keep a core busy, a worker that the kernel deschedules
 * holds every barrier up for a time slice: a small model's steps then ran 3x slower on 2 threads
 * than on 1. So a graph that runs many times times a few runs in each mode now and then and keeps
 * the faster; probing costs at most 5% of the time, and 1% in a long run. Zero-initialized: all
 * threads, probing once the graph has run a while. The results are the same either way (a
 * unit's work never depends on how the units are shared out). */
#define RT_TUNE_WINDOW 16
typedef struct RtPoolTune {
  int serial;        /* the mode in use: 1 = the caller's thread alone */
  int phase;         /* 0 running, 1 timing the mode in use, 2 timing the other */
  int timed, window; /* runs timed so far in the phase; runs a phase times */
  int skip;          /* the next run is not timed (the workers' wake-up after a serial spell) */
  int gap;           /* the wait after a probe, in probe times */
  int lost;          /* runs of the other mode slower than cur_median */
  long long cur_median;            /* of the mode in use's window */
  long long runs, serial_runs;     /* runs, and those it chose one thread for (probes aside) */
  long long next_ns;               /* when the next probe may start (0: not yet set) */
  long long ns[2][RT_TUNE_WINDOW]; /* the runs' times: [0] the mode in use, [1] the other */
} RtPoolTune;

/* rt_pool_run, on all threads or on the caller's alone, as tune decides (NULL: all threads). */
void rt_pool_run_tuned(RtPool *p, RtPoolTune *tune, const RtStep *steps, int n, char *base,
                       float *const *ws);

/* Whether tune's next run will be on the caller's thread alone (NULL: no). Work that goes with a
 * tuned graph's runs (an inference graph's preparation) runs as the graph will. */
int rt_pool_tune_serial(const RtPoolTune *tune);

/* The number of online CPUs (fewer when the affinity mask allows fewer), at least 1. */
int rt_pool_default_threads(void);

/* One-off work outside a pool (a data set made, the JIT's parts compiled): fn(args + k * size) for
 * every k < n, share 0 on the caller's thread and each other on a thread of its own, joined before
 * it returns. A share whose thread cannot start (or past the first RT_SHARES_MAX) runs on the
 * caller's thread after share 0: the work is done either way. */
#define RT_SHARES_MAX 64
void rt_run_shares(void *(*fn)(void *), void *args, size_t size, int n);

#endif
