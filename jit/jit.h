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

/* A specialized call: defines `name(float *p0, ..., float *pk)` that calls
 * `kernel` with its arguments in the order of `sig`: 'p' takes the next
 * pointer parameter, 'n' passes a null pointer, 'i' the next constant of
 * `consts`. The kernel is inlined into it and the result optimized at O3 for
 * the host. Returns 0, or -1 with a message in err. */
typedef struct JitCall {
    const char *name, *kernel, *sig;
    const int *consts;
} JitCall;
int jit_add_calls(Jit *j, const JitCall *calls, int n, char *err, size_t errlen);

/* The address of a function jit_add_calls defined; NULL if none. */
void *jit_lookup(Jit *j, const char *name);

#endif
