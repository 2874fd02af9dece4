#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mwt_alloc.h"

struct ArenaChunk {
    ArenaChunk *next;
    size_t used, size;
    max_align_t data[];
};

enum { CHUNK_SIZE = 64 * 1024 };

void arena_init(Arena *a, jmp_buf *oom)
{
    a->head = NULL;
    a->oom = oom;
    a->chunk = CHUNK_SIZE;
}

void arena_free(Arena *a)
{
    ArenaChunk *c = a->head;
    while (c) {
        ArenaChunk *next = c->next;
        mwt_free(c);
        c = next;
    }
    a->head = NULL;
}

void *arena_alloc(Arena *a, size_t size)
{
    size_t align = sizeof(max_align_t);
    size = (size + align - 1) / align * align;
    ArenaChunk *c = a->head;
    if (!c || c->size - c->used < size) {
        size_t cap = size > a->chunk ? size : a->chunk;
        c = mwt_realloc(NULL, sizeof(ArenaChunk) + cap);
        if (!c)
            longjmp(*a->oom, 1);
        c->size = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *arena_strdup(Arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(Arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void vec_push(Arena *a, Vec *vec, void *item)
{
    if (vec->n == vec->cap) {
        int cap = vec->cap ? vec->cap * 2 : 4;
        void **v = arena_alloc(a, sizeof(void *) * (size_t)cap);
        if (vec->n)
            memcpy(v, vec->v, sizeof(void *) * (size_t)vec->n);
        vec->v = v;
        vec->cap = cap;
    }
    vec->v[vec->n++] = item;
}
