/* The JIT: an ORC LLJIT for the host CPU, the kernels' bitcode, and the
 * specialization of a kernel call to constant shapes. LLVM's C API only. */
#ifndef MWT_JIT_H
#define MWT_JIT_H
#include <stddef.h>

typedef struct Jit Jit;

/* NULL and a message in err on failure. */
Jit *jit_create(char *err, size_t errlen);
void jit_destroy(Jit *j);
/* The host CPU as LLVM names it, and its features ("+avx2,+fma,..."). */
const char *jit_cpu(const Jit *j);
const char *jit_cpu_features(const Jit *j);

/* A specialized call: defines `void name(char *base, float *ws, int lo, int hi)`
 * that calls `kernel`, each of its arguments given by one character of `sig`:
 *   'p' base + a byte offset (the next entry of consts): a tensor in the arena
 *   'q' the same, or a null pointer where the offset is negative
 *   'n' a null pointer            'w' ws, the calling thread's scratch
 *   'i' the next const as an int  'f' the next const as a float
 *   'r' the next const as an int the kernel needs no code specialized for
 *       (a flag of its setup, not of its loops)
 *   'l' lo                        'h' hi (the range of units this thread computes)
 * The kernel is inlined into it, its shapes constants, and the module is
 * optimized at O3 for the host. Calls of one kernel that differ only in
 * their 'p', 'q' and 'r' arguments share one compiled body of it (their
 * shape), to which each passes those at run time. Tensors are addressed from the arena's base,
 * so the code does not depend on where the arena lies. Returns 0, or -1 with
 * a message in err. */
typedef struct JitCall {
    const char *name, *kernel, *sig;
    const double *consts;
} JitCall;
typedef void (*JitFn)(char *base, float *ws, int lo, int hi);
/* Whether sig character c takes the next entry of consts ('p' 'q' 'i' 'f'
 * 'r'): the one list every reader of a signature walks consts by. */
static inline int jit_sig_const(char c) { return c == 'p' || c == 'q' || c == 'i' || c == 'f' || c == 'r'; }
/* Compiles the calls on every core and links them (jit_object.c); a second
 * time with the same calls on the same machine, from the disk cache. */
int jit_add_calls(Jit *j, const JitCall *calls, int n, char *err, size_t errlen);
/* Whether the last jit_add_calls came from the disk cache. */
int jit_from_cache(const Jit *j);

/* The address of a function jit_add_calls defined; NULL if none. */
void *jit_lookup(Jit *j, const char *name);

/* The textual LLVM IR of the module jit_add_calls would build for these
 * calls, optimized (opt != 0) or not; a malloc'ed string, NULL on error. */
char *jit_calls_ir(Jit *j, const JitCall *calls, int n, int opt, char *err, size_t errlen);

#endif
