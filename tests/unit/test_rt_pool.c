/* Unit tests of runtime/rt_pool.c. cmocka's assertions must not run on a worker thread (they
 * longjmp), so tasks only record what they saw, and the main thread checks it afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "rt_pool.h"

enum { MAX_T = 8, MAX_UNITS = 1000 };

static char err[256];

typedef struct Count {
  int units, threads;
  float ids[MAX_T]; /* ws[t] = &ids[t]: a task knows its thread from ws */
  atomic_int calls[MAX_UNITS];
  atomic_int bad; /* a call with a wrong or empty range */
} Count;

static void count_units(char *base, float *ws, int lo, int hi) {
  Count *c = (Count *)base;
  int t = (int)(ws - c->ids);
  long long U = c->units, T = c->threads;
  if (t < 0 || t >= T || lo >= hi || lo != U * t / T || hi != U * (t + 1) / T)
    atomic_fetch_add(&c->bad, 1);
  for (int u = lo; u < hi; u++) atomic_fetch_add(&c->calls[u], 1);
}

static void test_create_errors(void **state) {
  (void)state;
  assert_null(rt_pool_create(0, err, sizeof err));
  assert_string_equal(err, "thread pool: 0 threads (at least 1 is needed)");
  assert_null(rt_pool_create(-3, err, sizeof err));
  assert_true(rt_pool_default_threads() >= 1);
  rt_pool_destroy(NULL);
}

static void test_destroy_right_after_create(void **state) {
  (void)state;
  for (int T = 1; T <= MAX_T; T++) {
    RtPool *p = rt_pool_create(T, err, sizeof err);
    assert_non_null(p);
    assert_int_equal(rt_pool_threads(p), T);
    rt_pool_destroy(p);
  }
  RtPool *p = rt_pool_create(3, err, sizeof err);
  rt_pool_run(p, NULL, 0, NULL, NULL); /* no steps: returns at once */
  rt_pool_destroy(p);
}

static void test_every_unit_exactly_once(void **state) {
  (void)state;
  static const int units[] = {0, 1, 2, 3, 7, 1000};
  static Count c;
  for (int T = 1; T <= 5; T++) {
    RtPool *p = rt_pool_create(T, err, sizeof err);
    assert_non_null(p);
    float *ws[MAX_T];
    for (int t = 0; t < T; t++) ws[t] = &c.ids[t];
    for (size_t k = 0; k < sizeof units / sizeof *units; k++) {
      memset(&c, 0, sizeof c);
      c.units = units[k], c.threads = T;
      RtStep step = {count_units, units[k]};
      rt_pool_run(p, &step, 1, (char *)&c, ws);
      assert_int_equal(atomic_load(&c.bad), 0);
      for (int u = 0; u < MAX_UNITS; u++) assert_int_equal(atomic_load(&c.calls[u]), u < units[k]);
    }
    rt_pool_destroy(p);
  }
}

/* Steps that read what other threads wrote in the step before, with one thread slow enough (3 ms)
 * that the others give up spinning and sleep, and pauses between runs that put the workers to
 * sleep too. */
enum { N = 1000 };
typedef struct Chain {
  int round, n;
  int a[N], b[N], c[N];
} Chain;

static void nap(long ns) {
  struct timespec ts = {0, ns};
  nanosleep(&ts, NULL);
}
static void chain_a(char *base, float *ws, int lo, int hi) {
  (void)ws;
  Chain *ch = (Chain *)base;
  for (int i = lo; i < hi; i++) ch->a[i] = i * 3 + ch->round;
}
static void chain_b(char *base, float *ws, int lo, int hi) {
  (void)ws;
  Chain *ch = (Chain *)base;
  for (int i = lo; i < hi; i++) ch->b[i] = ch->a[ch->n - 1 - i] + 1;
}
static void chain_b_slow(char *base, float *ws, int lo, int hi) {
  if (lo == 0) nap(3000000);
  chain_b(base, ws, lo, hi);
}
static void chain_c(char *base, float *ws, int lo, int hi) {
  (void)ws;
  Chain *ch = (Chain *)base;
  for (int i = lo; i < hi; i++) ch->c[i] = ch->b[(i + ch->n / 2) % ch->n] * 2;
}

static void test_steps_see_previous_writes(void **state) {
  (void)state;
  static Chain ch;
  for (int T = 1; T <= 4; T++) {
    RtPool *p = rt_pool_create(T, err, sizeof err);
    assert_non_null(p);
    for (int round = 0; round < 300; round++) {
      ch.round = round;
      ch.n = round % 3 == 0 ? 7 : N;
      RtTask b = round % 50 == 7 ? chain_b_slow : chain_b;
      RtStep steps[] = {{chain_a, ch.n}, {b, ch.n}, {chain_c, ch.n}};
      rt_pool_run(p, steps, 3, (char *)&ch, NULL);
      for (int i = 0; i < ch.n; i++) {
        int j = (i + ch.n / 2) % ch.n;
        assert_int_equal(ch.c[i], ((ch.n - 1 - j) * 3 + round + 1) * 2);
      }
      if (round % 50 == 3) nap(3000000);
    }
    rt_pool_destroy(p);
  }
}

/* A training iteration's worth of steps that do almost nothing: what remains is the barrier. */
typedef struct Tiny {
  atomic_int hits;
} Tiny;
static void tiny(char *base, float *ws, int lo, int hi) {
  (void)ws;
  atomic_fetch_add_explicit(&((Tiny *)base)->hits, hi - lo, memory_order_relaxed);
}

static void test_many_tiny_steps(void **state) {
  (void)state;
  enum { STEPS = 10000 };
  static RtStep steps[STEPS];
  for (int T = 1; T <= 4; T++) {
    RtPool *p = rt_pool_create(T, err, sizeof err);
    assert_non_null(p);
    for (int s = 0; s < STEPS; s++) steps[s] = (RtStep){tiny, 4};
    Tiny t;
    atomic_init(&t.hits, 0);
    rt_pool_run(p, steps, 100, (char *)&t, NULL); /* warm up: workers awake */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rt_pool_run(p, steps, STEPS, (char *)&t, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("  %d thread%s: %.2f us a step (%d CPUs online)\n", T, T == 1 ? "" : "s",
           s / STEPS * 1e6, rt_pool_default_threads());
    assert_int_equal(atomic_load(&t.hits), 4 * (STEPS + 100));
    /* no assertion on the time: tests never assert one (a loaded machine is slow) */
    rt_pool_destroy(p);
  }
}

/* The tuner, on steps whose speed in each mode is set by sleeping, so that the machine's load
 * cannot turn the outcome (sleeping needs no CPU): a step whose workers' shares each sleep 3 ms
 * (one held up by another program, as it were) moves the graph to the caller's thread alone,
 * where its own share takes no time; eight units of 2 ms each move it back to all threads. Every
 * run must still give each unit exactly once, and run as rt_pool_tune_serial said before it that
 * it would (one share, or two). */
typedef struct Slow {
  int workers_nap; /* 1: a share that does not start at unit 0 sleeps 3 ms */
  int unit_nap;    /* 1: each unit sleeps 2 ms */
  atomic_int hits;
  atomic_int shares; /* calls of slow */
} Slow;
static void slow(char *base, float *ws, int lo, int hi) {
  (void)ws;
  Slow *s = (Slow *)base;
  if (s->workers_nap && lo > 0) nap(3000000);
  for (int u = lo; u < hi; u++)
    if (s->unit_nap) nap(2000000);
  atomic_fetch_add_explicit(&s->hits, hi - lo, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->shares, 1, memory_order_relaxed);
}

/* One tuned run, checked against the mode rt_pool_tune_serial announced for it. */
static void tuned_run(RtPool *p, RtPoolTune *tune, const RtStep *step, Slow *s) {
  int serial = rt_pool_tune_serial(tune);
  atomic_store(&s->shares, 0);
  rt_pool_run_tuned(p, tune, step, 1, (char *)s, NULL);
  assert_int_equal(atomic_load(&s->shares), serial || rt_pool_threads(p) == 1 ? 1 : 2);
}

static void test_tuned_runs_pick_the_faster_mode(void **state) {
  (void)state;
  RtPool *p = rt_pool_create(2, err, sizeof err);
  assert_non_null(p);
  RtPoolTune tune;
  memset(&tune, 0, sizeof tune);
  Slow s = {.workers_nap = 1};
  atomic_init(&s.hits, 0);
  atomic_init(&s.shares, 0);
  RtStep step = {slow, 8};
  int runs = 0;
  for (; runs < 10; runs++) tuned_run(p, &tune, &step, &s);
  assert_int_equal(tune.serial_runs, 0); /* no probe yet: the graph has not run long enough */
  for (; runs < 50 && !tune.serial; runs++) {
    if (tune.phase == 0) tune.next_ns = 1; /* probe now, and again if one did not decide */
    tuned_run(p, &tune, &step, &s);
  }
  printf("  workers held up: on one thread after %d runs\n", runs);
  assert_true(tune.serial);
  assert_int_equal(atomic_load(&s.hits), 8 * runs);

  s.workers_nap = 0, s.unit_nap = 1;
  int back = 0;
  for (; back < 40 && tune.serial; back++) {
    if (tune.phase == 0) tune.next_ns = 1;
    tuned_run(p, &tune, &step, &s);
  }
  printf("  units that take time: on all threads again after %d runs\n", back);
  assert_false(tune.serial);
  assert_int_equal(atomic_load(&s.hits), 8 * (runs + back));
  assert_false(rt_pool_tune_serial(NULL));
  rt_pool_run_tuned(p, NULL, &step, 1, (char *)&s, NULL); /* NULL: all threads, untimed */
  rt_pool_destroy(p);

  p = rt_pool_create(1, err, sizeof err); /* one thread: nothing to choose */
  memset(&tune, 0, sizeof tune);
  s.unit_nap = 0;
  for (int i = 0; i < 20; i++) tuned_run(p, &tune, &step, &s);
  assert_int_equal(tune.runs, 0);
  assert_int_equal(atomic_load(&s.hits), 8 * (runs + back + 1 + 20));
  rt_pool_destroy(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_create_errors),
      cmocka_unit_test(test_destroy_right_after_create),
      cmocka_unit_test(test_every_unit_exactly_once),
      cmocka_unit_test(test_steps_see_previous_writes),
      cmocka_unit_test(test_many_tiny_steps),
      cmocka_unit_test(test_tuned_runs_pick_the_faster_mode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
