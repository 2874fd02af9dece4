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
    LLVMTargetMachineRef tm;
    char *cpu, *features, *triple;
};

/* Sets the host's triple and data layout on `mod` and runs O3; 0 or -1. */
int jit_optimize(Jit *j, LLVMModuleRef mod, char *err, size_t errlen);
/* Optimizes `mod` for the host at O3 and hands it to the JIT (which owns it
 * from then on, also on failure). */
int jit_optimize_and_add(Jit *j, LLVMOrcThreadSafeContextRef tsctx, LLVMModuleRef mod, char *err, size_t errlen);

extern const unsigned char mwt_kernels_bc[];
extern const size_t mwt_kernels_bc_len;

#endif
