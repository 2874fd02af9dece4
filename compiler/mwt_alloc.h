/* The one allocator hook of the compiler (Lua style): every heap byte the
 * compiler takes goes through mwt_realloc, so tests can inject out-of-memory. */
#ifndef MWT_ALLOC_H
#define MWT_ALLOC_H
#include <stddef.h>

/* realloc-like: size 0 frees and returns NULL; NULL on failure. */
typedef void *(*MwtAllocFn)(void *ud, void *ptr, size_t size);

void mwt_set_alloc(MwtAllocFn fn, void *ud);
void *mwt_realloc(void *ptr, size_t size);
void mwt_free(void *ptr);

#endif
