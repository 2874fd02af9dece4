/* rt_pool: workers wait for a run by watching a job counter, and the threads of a run meet at a
 * centralized barrier (an arrival counter and a phase counter) after every step.
 *
 * Waiting spins on a counter (with a pause hint), then sleeps: on the counter itself with a futex
 * on Linux, elsewhere on a condition variable. A futex lets a broadcast wake every sleeper at once;
 * with a condition variable they would file out one at a time through its mutex, arrive late at the
 * next barrier, make the others give up spinning and sleep, and so on for the whole run.
 *
 * A sleeper first registers in the counter's `sleepers`, then checks the counter once more; a
 * waker bumps the counter, then reads `sleepers`. Both sides use seq_cst, so at least one sees the
 * other's write: the sleeper sees the new value, or the waker sees the sleeper and wakes it (the
 * futex, or the condition variable's mutex, closes the window between the check and the sleep). */
#define _GNU_SOURCE /* sched_getaffinity */
#include "rt_pool.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#include "rt_data.h" /* rt_data_fail */

/* How long a thread spins before it sleeps. At a barrier, the wait lasts as long as the step is
 * unbalanced, and a thread that slept through it arrives late at the next barrier, where the others
 * may then give up and sleep in turn: with 50 us instead of 1 ms, 60 tiny steps on 16 threads took
 * 11 ms instead of 0.2 ms after the workers had slept. A worker waiting for the next run should
 * outlast the serial part of a training iteration (the caller makes the next batch), or every
 * iteration pays a wake-up (~50 us); past that the caller is evaluating or saving: sleep. */
#ifndef BARRIER_SPIN_NS
#define BARRIER_SPIN_NS 1000000L
#endif
#ifndef JOB_SPIN_NS
#define JOB_SPIN_NS 1000000L
#endif

/* After this long, a spinning thread offers its CPU at each turn (sched_yield): the thread it
 * waits for may be waiting for one, when other programs keep the cores busy. */
#ifndef YIELD_AFTER_NS
#define YIELD_AFTER_NS 20000L
#endif

/* The counters live on cache lines of their own: spinning readers of `phase` should not be
 * disturbed by every arrival's write to `arrived`. */
#define LINE 64

typedef struct Signal {
  _Alignas(LINE) atomic_uint value;
  atomic_int sleepers;
} Signal;

typedef struct Worker {
  struct RtPool *p;
  int t;
} Worker;

struct RtPool {
  Signal job;   /* bumped to start a run, or to stop */
  Signal phase; /* bumped by the last thread to arrive at a barrier */
  _Alignas(LINE) atomic_uint arrived;
  atomic_int stop;
  int threads;
  int oversubscribed; /* more threads than CPUs: yield instead of spinning */
  int started;        /* workers running (they are joined by destroy) */
  pthread_t *tid;
  Worker *args;
  pthread_mutex_t mu; /* for the condition variable, where there is no futex */
  pthread_cond_t cv;
  /* The current run: written by the caller before it bumps `job`, read by the workers after they
   * see the bump, and not touched again until every worker has arrived at the last barrier. */
  const RtStep *steps;
  int n;
  char *base;
  float *const *ws;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#ifdef __linux__
/* The kernel sleeps only while *v == old, atomically with respect to the wake. */
static void sleep_on(RtPool *p, Signal *s, unsigned old) {
  (void)p;
  syscall(SYS_futex, (unsigned *)&s->value, FUTEX_WAIT_PRIVATE, old, NULL, NULL, 0);
}
static void wake_all(RtPool *p, Signal *s) {
  (void)p;
  syscall(SYS_futex, (unsigned *)&s->value, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
#else
static void sleep_on(RtPool *p, Signal *s, unsigned old) {
  pthread_mutex_lock(&p->mu);
  if (atomic_load(&s->value) == old) pthread_cond_wait(&p->cv, &p->mu);
  pthread_mutex_unlock(&p->mu);
}
static void wake_all(RtPool *p, Signal *s) {
  (void)s;
  pthread_mutex_lock(&p->mu);
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}
#endif

/* Waits until s->value != old and returns the new value, with acquire ordering. */
static unsigned wait_change(RtPool *p, Signal *s, unsigned old, long spin_ns) {
  unsigned now;
  if (p->oversubscribed) { /* the thread we wait for may need our CPU */
    for (int i = 0; i < 20; i++) {
      if ((now = atomic_load_explicit(&s->value, memory_order_acquire)) != old) return now;
      sched_yield();
    }
  } else {
    long long t0 = 0, dt = 0;
    for (unsigned i = 1;; i++) {
      if ((now = atomic_load_explicit(&s->value, memory_order_acquire)) != old) return now;
      if (dt > YIELD_AFTER_NS) sched_yield();
      else cpu_relax();
      /* reading the clock every time would slow the reaction down; beside a yield it costs
       * nothing, and a yield may take a time slice: 64 of them would outlast spin_ns */
      if ((i & 63) == 0 || dt > YIELD_AFTER_NS) {
        if (i == 64) t0 = now_ns();
        else if ((dt = now_ns() - t0) > spin_ns) break;
      }
    }
  }
  atomic_fetch_add_explicit(&s->sleepers, 1, memory_order_seq_cst);
  while ((now = atomic_load_explicit(&s->value, memory_order_seq_cst)) == old) sleep_on(p, s, old);
  atomic_fetch_sub_explicit(&s->sleepers, 1, memory_order_relaxed);
  return now;
}

/* Bumps the counter (release: what was written before is visible to whoever sees the bump) and
 * wakes the sleepers, if there are any. */
static void publish(RtPool *p, Signal *s) {
  atomic_fetch_add_explicit(&s->value, 1, memory_order_seq_cst);
  if (atomic_load_explicit(&s->sleepers, memory_order_seq_cst) > 0) wake_all(p, s);
}

/* The phase cannot move before this thread arrives, so reading it first is safe. The arrivals form
 * one release sequence that the last arrival acquires; its bump of `phase` then carries every
 * thread's writes to every waiter. Resetting `arrived` before the bump is safe for the same
 * reason: nobody arrives at the next barrier before seeing the bump. */
static void barrier(RtPool *p) {
  unsigned ph = atomic_load_explicit(&p->phase.value, memory_order_acquire);
  if (atomic_fetch_add_explicit(&p->arrived, 1, memory_order_acq_rel) + 1 == (unsigned)p->threads) {
    atomic_store_explicit(&p->arrived, 0, memory_order_relaxed);
    publish(p, &p->phase);
  } else {
    wait_change(p, &p->phase, ph, BARRIER_SPIN_NS);
  }
}

/* Thread t's part of the current run. Copies the run's description first: after its last arrival
 * a worker must not read the pool's fields, which the caller may already be rewriting. */
static void run_share(RtPool *p, int t) {
  const RtStep *steps = p->steps;
  int n = p->n, T = p->threads;
  char *base = p->base;
  float *ws = p->ws ? p->ws[t] : NULL;
  for (int s = 0; s < n; s++) {
    long long u = steps[s].units > 0 ? steps[s].units : 0;
    int lo = (int)(u * t / T), hi = (int)(u * (t + 1) / T);
    if (lo < hi) steps[s].fn(base, ws, lo, hi);
    barrier(p);
  }
}

static void *worker_main(void *arg) {
  Worker *w = arg;
  RtPool *p = w->p;
  unsigned seen = 0; /* `job` starts at 0; a run may already have begun: then it returns at once */
  for (;;) {
    seen = wait_change(p, &p->job, seen, JOB_SPIN_NS);
    if (atomic_load_explicit(&p->stop, memory_order_relaxed)) break; /* ordered by `job` */
    run_share(p, w->t);
  }
  return NULL;
}

RtPool *rt_pool_create(int threads, char *err, size_t errlen) {
  if (threads < 1) {
    rt_data_fail(err, errlen, "thread pool", "%d threads (at least 1 is needed)", threads);
    return NULL;
  }
  size_t size = (sizeof(RtPool) + LINE - 1) / LINE * LINE; /* aligned_alloc wants a multiple */
  RtPool *p = aligned_alloc(LINE, size);
  if (!p) {
    rt_data_fail(err, errlen, "thread pool", "out of memory");
    return NULL;
  }
  memset(p, 0, sizeof *p);
  atomic_init(&p->job.value, 0);
  atomic_init(&p->job.sleepers, 0);
  atomic_init(&p->phase.value, 0);
  atomic_init(&p->phase.sleepers, 0);
  atomic_init(&p->arrived, 0);
  atomic_init(&p->stop, 0);
  p->threads = threads;
  p->oversubscribed = threads > rt_pool_default_threads();
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  if (threads == 1) return p;
  p->tid = calloc((size_t)threads, sizeof *p->tid);
  p->args = calloc((size_t)threads, sizeof *p->args);
  if (!p->tid || !p->args) {
    rt_data_fail(err, errlen, "thread pool", "out of memory");
    rt_pool_destroy(p);
    return NULL;
  }
  for (int t = 1; t < threads; t++) {
    p->args[t] = (Worker){p, t};
    int rc = pthread_create(&p->tid[t], NULL, worker_main, &p->args[t]);
    if (rc != 0) {
      rt_data_fail(err, errlen, "thread pool", "cannot start thread %d of %d: %s", t + 1, threads,
                   strerror(rc));
      rt_pool_destroy(p);
      return NULL;
    }
    p->started = t;
  }
  return p;
}

void rt_pool_destroy(RtPool *p) {
  if (!p) return;
  if (p->started > 0) {
    atomic_store_explicit(&p->stop, 1, memory_order_relaxed);
    publish(p, &p->job);
    for (int t = 1; t <= p->started; t++) pthread_join(p->tid[t], NULL);
  }
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p->tid);
  free(p->args);
  free(p);
}

int rt_pool_threads(const RtPool *p) { return p->threads; }

void rt_pool_run_serial(const RtStep *steps, int n, char *base, float *const *ws) {
  float *w = ws ? ws[0] : NULL;
  for (int s = 0; s < n; s++)
    if (steps[s].units > 0) steps[s].fn(base, w, 0, steps[s].units);
}

void rt_pool_run(RtPool *p, const RtStep *steps, int n, char *base, float *const *ws) {
  if (n <= 0) return;
  if (p->threads == 1) {
    rt_pool_run_serial(steps, n, base, ws);
    return;
  }
  p->steps = steps;
  p->n = n;
  p->base = base;
  p->ws = ws;
  publish(p, &p->job);
  run_share(p, 0); /* its last barrier is where the caller waits for everyone */
}

/* The tuner's constants. A probe times TUNE_MIN_WINDOW runs or more of each mode, about
 * TUNE_PROBE_NS of them, and compares the medians: one run that a page fault or another program
 * held up does not decide; a probe of the other mode stops early once over half its window has
 * run slower than the mode in use (it can no longer win). A probe's cost is at most its slower
 * window; the first waits until the graph has run TUNE_GAP_MIN times that long (TUNE_WARMUP runs
 * first: first touches of the arena, cold caches), so that a short run (a few steps of a big
 * model) is not slowed by probing; one thread may take T times as long as T threads.
 * Each later probe waits as many times its slower window: TUNE_GAP_MIN after a change of mode,
 * doubling up to TUNE_GAP while the mode stays, so that a wrong choice is soon undone and probing
 * costs at most 1/TUNE_GAP of the time in the long run. Leaving all threads takes a clear win
 * (TUNE_SERIAL_WIN), so that noise on a quiet machine does not give up its speed. */
#define TUNE_PROBE_NS 10000000LL
#define TUNE_MIN_WINDOW 3
#define TUNE_WARMUP 4
#define TUNE_GAP_MIN 20
#define TUNE_GAP 100
#define TUNE_SERIAL_WIN 0.9

static long long median(long long *v, int n) {
  for (int i = 1; i < n; i++) /* insertion sort: n <= RT_TUNE_WINDOW */
    for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
      long long x = v[j];
      v[j] = v[j - 1];
      v[j - 1] = x;
    }
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* After a probe: other_n runs of the other mode timed (the whole window, or fewer that lost). */
static void tune_decide(RtPoolTune *t, long long now, int other_n) {
  long long sum[2] = {0, 0};
  for (int i = 0; i < t->window; i++) sum[0] += t->ns[0][i];
  for (int i = 0; i < other_n; i++) sum[1] += t->ns[1][i];
  long long cur = t->cur_median, other = median(t->ns[1], other_n);
  int flip = other_n == t->window &&
             (t->serial ? other < cur : other < TUNE_SERIAL_WIN * (double)cur);
  if (flip) t->serial = !t->serial;
  if (flip || t->gap < TUNE_GAP_MIN) t->gap = TUNE_GAP_MIN;
  else t->gap = t->gap * 2 > TUNE_GAP ? TUNE_GAP : t->gap * 2;
  t->phase = 0;
  t->next_ns = now + t->gap * (sum[0] > sum[1] ? sum[0] : sum[1]);
}

int rt_pool_tune_serial(const RtPoolTune *t) {
  return t && (t->phase == 2 ? !t->serial : t->serial);
}

void rt_pool_run_tuned(RtPool *p, RtPoolTune *t, const RtStep *steps, int n, char *base,
                       float *const *ws) {
  if (!t || p->threads == 1 || n <= 0) {
    rt_pool_run(p, steps, n, base, ws);
    return;
  }
  int serial = rt_pool_tune_serial(t);
  long long t0 = now_ns();
  if (serial) rt_pool_run_serial(steps, n, base, ws);
  else rt_pool_run(p, steps, n, base, ws);
  long long now = now_ns(), dt = now - t0;
  t->runs++;
  t->serial_runs += serial && t->phase == 0; /* probes aside: the runs it chose one thread for */
  if (t->phase == 0) {
    if (t->runs < TUNE_WARMUP || now < t->next_ns) return;
    long long w = TUNE_PROBE_NS / (dt > 0 ? dt : 1) + 1;
    t->window = (int)(w < TUNE_MIN_WINDOW  ? TUNE_MIN_WINDOW
                      : w > RT_TUNE_WINDOW ? RT_TUNE_WINDOW
                                           : w);
    if (t->next_ns == 0) { /* the first probe: its serial window may take T times the runs' time */
      t->next_ns = now + TUNE_GAP_MIN * (long long)(p->threads + 1) * t->window * dt;
      return;
    }
    t->timed = 0;
    t->phase = 1;
  } else if (t->phase == 1) {
    t->ns[0][t->timed++] = dt;
    if (t->timed < t->window) return;
    t->cur_median = median(t->ns[0], t->window); /* sorts them: tune_decide needs their sum alone */
    t->phase = 2;
    t->timed = 0;
    t->lost = 0;
    t->skip = t->serial; /* the workers slept through the serial runs */
  } else if (t->skip) {
    t->skip = 0;
  } else {
    t->ns[1][t->timed++] = dt;
    t->lost += dt > t->cur_median;
    if (t->timed == t->window || 2 * t->lost > t->window) tune_decide(t, now, t->timed);
  }
}

/* Share 0 on the caller's thread, the others on threads of their own (rt_pool.h). */
void rt_run_shares(void *(*fn)(void *), void *args, size_t size, int n) {
  pthread_t tid[RT_SHARES_MAX];
  int started[RT_SHARES_MAX] = {0};
  char *a = args;
  for (int k = 1; k < n && k < RT_SHARES_MAX; k++) started[k] = pthread_create(&tid[k], NULL, fn, a + k * size) == 0;
  if (n > 0) fn(a);
  for (int k = 1; k < n; k++) {
    if (k < RT_SHARES_MAX && started[k])
      pthread_join(tid[k], NULL);
    else
      fn(a + k * size);
  }
}

/* Online CPUs, fewer when this process may only run on some (taskset, a container's cpuset). */
int rt_pool_default_threads(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
#ifdef CPU_COUNT
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) >= 1 && CPU_COUNT(&set) < n)
    n = CPU_COUNT(&set);
#endif
  return n >= 1 ? (n > 4096 ? 4096 : (int)n) : 1;
}
