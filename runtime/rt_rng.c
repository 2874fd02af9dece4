/* xoshiro256** 1.0 and splitmix64, after Blackman and Vigna (public domain reference code). */
#include "rt_rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void rt_rng_seed(RtRng *r, uint64_t seed) {
  /* splitmix64 never yields four zero words in a row, so the state is never all zero. */
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

uint64_t rt_rng_next_u64(RtRng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

float rt_rng_uniform(RtRng *r) {
  /* The top 24 bits are exactly representable in a float, so the result is < 1. */
  return (float)(rt_rng_next_u64(r) >> 40) * 0x1.0p-24f;
}

uint64_t rt_rng_below(RtRng *r, uint64_t n) {
  if (n == 0) return 0;
  /* Reject the lowest (2^64 mod n) values so every residue is equally likely. */
  uint64_t threshold = (0 - n) % n;
  for (;;) {
    uint64_t x = rt_rng_next_u64(r);
    if (x >= threshold) return x % n;
  }
}

float rt_rng_normal(RtRng *r) {
  /* u1 in (0, 1] keeps log() finite; doubles keep the tails accurate. */
  double u1 = ((double)(rt_rng_next_u64(r) >> 11) + 1.0) * 0x1.0p-53;
  double u2 = (double)(rt_rng_next_u64(r) >> 11) * 0x1.0p-53;
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
