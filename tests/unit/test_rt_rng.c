/* Unit tests of runtime/rt_rng.c. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rt_rng.h"

/* Reference values from an independent Python transcription of splitmix64 + xoshiro256**;
 * splitmix64(0)'s first output 0xe220a8397b1dcdaf is the published one. */
static void test_known_values(void **state) {
  (void)state;
  RtRng r;
  rt_rng_seed(&r, 0);
  assert_true(r.s[0] == 0xe220a8397b1dcdafull);
  assert_true(r.s[1] == 0x6e789e6aa1b965f4ull);
  assert_true(rt_rng_next_u64(&r) == 0x99ec5f36cb75f2b4ull);
  assert_true(rt_rng_next_u64(&r) == 0xbf6e1f784956452aull);
  assert_true(rt_rng_next_u64(&r) == 0x1a5f849d4933e6e0ull);
  rt_rng_seed(&r, 42);
  assert_true(rt_rng_next_u64(&r) == 0x15780b2e0c2ec716ull);
}

static void test_same_seed_same_stream_and_restore(void **state) {
  (void)state;
  RtRng a, b, c;
  rt_rng_seed(&a, 7);
  rt_rng_seed(&b, 7);
  rt_rng_seed(&c, 8);
  int differ = 0;
  for (int i = 0; i < 100; i++) {
    uint64_t x = rt_rng_next_u64(&a);
    assert_true(x == rt_rng_next_u64(&b));
    differ += x != rt_rng_next_u64(&c);
  }
  assert_true(differ > 95);
  RtRng saved = a; /* a checkpoint is a struct copy */
  uint64_t want[10];
  for (int i = 0; i < 10; i++) want[i] = rt_rng_next_u64(&a);
  for (int i = 0; i < 10; i++) assert_true(rt_rng_next_u64(&saved) == want[i]);
}

static void test_uniform(void **state) {
  (void)state;
  RtRng r;
  rt_rng_seed(&r, 1);
  double sum = 0;
  const int n = 100000;
  for (int i = 0; i < n; i++) {
    float u = rt_rng_uniform(&r);
    assert_true(u >= 0.0f && u < 1.0f);
    sum += u;
  }
  assert_true(fabs(sum / n - 0.5) < 0.01);
}

static void test_below_range_and_balance(void **state) {
  (void)state;
  RtRng r;
  rt_rng_seed(&r, 2);
  assert_true(rt_rng_below(&r, 0) == 0);
  assert_true(rt_rng_below(&r, 1) == 0);
  int count[10] = {0};
  const int n = 100000;
  for (int i = 0; i < n; i++) {
    uint64_t k = rt_rng_below(&r, 10);
    assert_true(k < 10);
    count[k]++;
  }
  double chi2 = 0;
  for (int k = 0; k < 10; k++) chi2 += (count[k] - n / 10.0) * (count[k] - n / 10.0) / (n / 10.0);
  assert_true(chi2 < 30.0); /* 9 degrees of freedom: p < 0.001 beyond 27.9 */
  /* A bound just above 2^63 rejects almost half of all draws: still in range. */
  uint64_t big = (1ull << 63) + 1;
  for (int i = 0; i < 1000; i++) assert_true(rt_rng_below(&r, big) < big);
}

static void test_normal_moments(void **state) {
  (void)state;
  RtRng r;
  rt_rng_seed(&r, 3);
  double s = 0, s2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; i++) {
    double x = rt_rng_normal(&r);
    assert_true(isfinite(x));
    s += x;
    s2 += x * x;
  }
  double mean = s / n, var = s2 / n - mean * mean;
  assert_true(fabs(mean) < 0.01);
  assert_true(fabs(var - 1.0) < 0.02);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_known_values),
      cmocka_unit_test(test_same_seed_same_stream_and_restore),
      cmocka_unit_test(test_uniform),
      cmocka_unit_test(test_below_range_and_balance),
      cmocka_unit_test(test_normal_moments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
