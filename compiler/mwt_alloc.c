#include "mwt_alloc.h"

#include <stdlib.h>

static void *default_alloc(void *ud, void *ptr, size_t size)
{
    (void)ud;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, size);
}

static MwtAllocFn alloc_fn = default_alloc;
static void *alloc_ud;

void mwt_set_alloc(MwtAllocFn fn, void *ud)
{
    alloc_fn = fn ? fn : default_alloc;
    alloc_ud = ud;
}

void *mwt_realloc(void *ptr, size_t size) { return alloc_fn(alloc_ud, ptr, size); }

void mwt_free(void *ptr)
{
    if (ptr)
        alloc_fn(alloc_ud, ptr, 0);
}
