/* Shared by the jit_*.c files. */
#ifndef MWT_JIT_INT_H
#define MWT_JIT_INT_H
#include <stdint.h>

#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/TargetMachine.h>

#include "jit.h"

struct Jit {
    LLVMOrcLLJITRef lljit;
    LLVMTargetRef target;
    LLVMTargetMachineRef tm;
    char *cpu, *features, *triple;
    int from_cache;            /* the last jit_add_calls found its objects in the disk cache */
};

/* A new target machine for the host, as the JIT compiles with: every
 * feature, aggressive codegen. One per thread; NULL on failure. */
LLVMTargetMachineRef jit_target_machine(const Jit *j);
/* Sets the host's triple and data layout on `mod` and runs O3 (tuned by tm);
 * 0 or -1. */
int jit_optimize(Jit *j, LLVMModuleRef mod, char *err, size_t errlen);
int jit_optimize_with(Jit *j, LLVMTargetMachineRef tm, LLVMModuleRef mod, char *err, size_t errlen);
/* The kernels' bitcode in `ctx` with the calls defined; NULL on error. */
LLVMModuleRef jit_build_module(Jit *j, LLVMContextRef ctx, const JitCall *calls, int n, char *err, size_t errlen);

extern const unsigned char mwt_kernels_bc[];
extern const size_t mwt_kernels_bc_len;

#endif
