/* One arena per compilation: the AST, the checked networks and every string
 * live in it and die with it. An allocation failure longjmps to the handler
 * the driver installed (arena_catch), so no stage has to check for NULL. */
#ifndef MWT_ARENA_H
#define MWT_ARENA_H
#include <setjmp.h>
#include <stddef.h>

typedef struct ArenaChunk ArenaChunk;
typedef struct Arena {
    ArenaChunk *head;
    jmp_buf *oom;          /* where to go when memory runs out */
    size_t chunk;          /* bytes per chunk; tests make it small to fail often */
} Arena;

void arena_init(Arena *a, jmp_buf *oom);
void arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t size);           /* zeroed */
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A growable array of pointers whose storage lives in the arena. */
typedef struct Vec {
    void **v;
    int n, cap;
} Vec;
void vec_push(Arena *a, Vec *vec, void *item);

#endif
