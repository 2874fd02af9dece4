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
    int perf_mapped;           /* its code is named in /tmp/perf-PID.map (jit_perf_map_keep) */
};

/* A new target machine for the host, as the JIT compiles with: every
 * feature, aggressive codegen. One per thread; NULL on failure. */
LLVMTargetMachineRef jit_target_machine(const Jit *j);
/* Sets the host's triple and data layout on `mod` and runs O3 (tuned by tm);
 * 0 or -1. */
int jit_optimize(Jit *j, LLVMModuleRef mod, char *err, size_t errlen);
int jit_optimize_with(Jit *j, LLVMTargetMachineRef tm, LLVMModuleRef mod, int unroll, char *err, size_t errlen);
/* Whether O3's loop unroller pays for itself on this kernel's calls. */
int jit_kernel_unrolled(const char *kernel);
/* group[i] = the first call of the same shape as call i (its kernel,
 * signature and constants other than tensor offsets): such calls share one
 * compiled body, so they must be compiled in one module. */
void jit_call_groups(const JitCall *calls, int n, int *group);
/* How big a kernel is (instructions, its callees' included): what
 * compiling one body of it costs, roughly. */
long jit_kernel_size(const char *kernel);
/* The kernels' bitcode in `ctx` with the calls defined, the kernels no call
 * uses removed except `keep` (NULL: none; aot/ calls it itself); NULL on error. */
/* fn compiled for cpu with features (its target attributes replaced). */
void jit_set_target(LLVMContextRef ctx, LLVMValueRef fn, const char *cpu, const char *features);
LLVMModuleRef jit_build_module(Jit *j, LLVMContextRef ctx, const JitCall *calls, int n, const char *keep, char *err,
                               size_t errlen);

/* MWTC_PERF_MAP (jit_perfmap.c): the code symbols of an object, read
 * before the JIT takes it, written to /tmp/perf-PID.map once it is linked,
 * named by the kernel each runs where a call says (write frees the map). */
typedef struct PerfMap PerfMap;
int jit_perf_map_wanted(void);
PerfMap *jit_perf_map_read(LLVMMemoryBufferRef obj);
void jit_perf_map_write(Jit *j, PerfMap *pm, const JitCall *calls, int ncalls);
void jit_perf_map_free(PerfMap *pm);
/* Takes a perf-mapped JIT's LLJIT from jit_destroy and disposes of it at
 * exit, so that no later code lies where the map names this one's. */
void jit_perf_map_keep(LLVMOrcLLJITRef lljit);

extern const unsigned char mwt_kernels_bc[];
/* A hash of the JIT's own sources (jit/source_id.cmake). */
extern const char mwt_jit_source_id[];
extern const size_t mwt_kernels_bc_len;

#endif
