/* rt_rng: a small seeded random number generator (xoshiro256**, seeded by splitmix64).
 * The state is a plain struct: copy it into a checkpoint and back to resume the same stream. */
#ifndef RT_RNG_H
#define RT_RNG_H

#include <stdint.h>

typedef struct RtRng {
  uint64_t s[4];
} RtRng;

/* Any seed (0 included) gives a valid, well-mixed state. */
void rt_rng_seed(RtRng *r, uint64_t seed);
uint64_t rt_rng_next_u64(RtRng *r);
/* Uniform float in [0, 1), 24 random bits. */
float rt_rng_uniform(RtRng *r);
/* Uniform integer in [0, n), unbiased (rejection); returns 0 when n == 0. */
uint64_t rt_rng_below(RtRng *r, uint64_t n);
/* Standard normal N(0, 1) (Box-Muller; consumes two draws, keeps no cached value). */
float rt_rng_normal(RtRng *r);

#endif
