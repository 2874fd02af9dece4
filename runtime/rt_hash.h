/* rt_hash: FNV-1a, 64 bits, for the places that compare or key bytes by a
 * hash (the checker's repeated messages, modularize's equal modules, the
 * JIT's object cache). Not for anything an adversary chooses. */
#ifndef RT_HASH_H
#define RT_HASH_H

#include <stddef.h>
#include <stdint.h>

#define RT_FNV_SEED 0xcbf29ce484222325ull

/* h continued over the n bytes at p (start from RT_FNV_SEED). */
static inline uint64_t rt_fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

#endif
