/* ORC LLJIT for the host CPU. Every owned LLVM handle is released on the one
 * cleanup path of each function. */
#include "jit.h"
#include "aot.h"
#include "k_kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "jit_int.h"

static void take_error(LLVMErrorRef e, const char *what, char *err, size_t errlen)
{
    char *m = LLVMGetErrorMessage(e);
    snprintf(err, errlen, "%s: %s", what, m);
    LLVMDisposeErrorMessage(m);
}

/* MWTC_JIT_CPU=NAME, an x86-64 level (aot_cpus: x86-64-v3 is AVX2's):
 * code for that level and its features rather than for the host's, on a
 * host that has them. To compare: the kernels of the other vector width
 * (AVX2's 8-float tiles, simd 8) on an AVX-512 machine, beside the host's
 * in one run. `native` names the host's own, as `emit --cpu` takes it (a
 * script that sets the variable either way). 0, or -1 with a message. */
static int jit_level(Jit *j, char *err, size_t errlen)
{
    const char *want = getenv("MWTC_JIT_CPU");
    if (!want || !*want || !strcmp(want, "native"))
        return 0;
    int known = 0;
    for (int i = 0; aot_cpus[i]; i++)
        known |= !strcmp(aot_cpus[i], want);
    if (!known) {
        snprintf(err, errlen, "MWTC_JIT_CPU=%s: not an x86-64 level (x86-64, x86-64-v2, x86-64-v3, x86-64-v4) or native",
                 want);
        return -1;
    }
    const char *features = aot_level_features(want);
    unsigned need[K_AOT_CPU_WORDS];
    aot_cpu_need(features, need);
    if (!k_aot_cpu_ok(need)) {
        snprintf(err, errlen, "MWTC_JIT_CPU=%s: this machine lacks some of its features (%s)", want, features);
        return -1;
    }
    LLVMDisposeMessage(j->cpu);
    LLVMDisposeMessage(j->features);
    j->cpu = LLVMCreateMessage(want);
    j->features = LLVMCreateMessage(features);
    return 0;
}

Jit *jit_create(char *err, size_t errlen)
{
    /* the asm parser: k_aot_cpu_ok's cpuid and xgetbv are inline assembly */
    if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter() || LLVMInitializeNativeAsmParser()) {
        snprintf(err, errlen, "LLVM has no code generator for this machine");
        return NULL;
    }
    Jit *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    j->cpu = LLVMGetHostCPUName();
    j->features = LLVMGetHostCPUFeatures();
    if (jit_level(j, err, errlen) != 0) {
        jit_destroy(j);
        return NULL;
    }
    j->triple = LLVMGetDefaultTargetTriple();
    char *msg = NULL;
    LLVMTargetRef target;
    if (LLVMGetTargetFromTriple(j->triple, &target, &msg)) {
        snprintf(err, errlen, "no LLVM target for %s: %s", j->triple, msg);
        LLVMDisposeMessage(msg);
        jit_destroy(j);
        return NULL;
    }
    /* The machine the optimizer tunes for: the host CPU, every feature it has. */
    j->target = target;
    j->tm = jit_target_machine(j);
    /* The JIT compiles with a machine like j->tm: the host CPU, every feature,
     * aggressive code generation (the default builder would use -O2's). */
    LLVMTargetMachineRef jtm = LLVMCreateTargetMachine(target, j->triple, j->cpu, j->features,
                                                       LLVMCodeGenLevelAggressive, LLVMRelocPIC,
                                                       LLVMCodeModelJITDefault);
    LLVMOrcJITTargetMachineBuilderRef jtmb = LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(jtm);
    LLVMErrorRef e;
    LLVMOrcLLJITBuilderRef b = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(b, jtmb);
    if ((e = LLVMOrcCreateLLJIT(&j->lljit, b))) {
        take_error(e, "cannot start the JIT", err, errlen);
        jit_destroy(j);
        return NULL;
    }
    /* Let JIT'ed code call libc (the optimizer may turn a zeroing loop into memset). */
    LLVMOrcDefinitionGeneratorRef gen;
    if ((e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->lljit), NULL,
                                                                  NULL))) {
        take_error(e, "cannot resolve process symbols", err, errlen);
        jit_destroy(j);
        return NULL;
    }
    LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(j->lljit), gen);
    return j;
}

void jit_destroy(Jit *j)
{
    if (!j)
        return;
    if (j->lljit && j->perf_mapped)
        jit_perf_map_keep(j->lljit);
    else if (j->lljit) {
        LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->lljit);
        if (e)
            LLVMConsumeError(e);
    }
    if (j->tm)
        LLVMDisposeTargetMachine(j->tm);
    LLVMDisposeMessage(j->cpu);
    LLVMDisposeMessage(j->features);
    LLVMDisposeMessage(j->triple);
    free(j);
}

const char *jit_cpu(const Jit *j) { return j->cpu; }
const char *jit_cpu_features(const Jit *j) { return j->features; }

LLVMTargetMachineRef jit_target_machine(const Jit *j)
{
    return LLVMCreateTargetMachine(j->target, j->triple, j->cpu, j->features, LLVMCodeGenLevelAggressive,
                                   LLVMRelocPIC, LLVMCodeModelJITDefault);
}

int jit_optimize_with(Jit *j, LLVMTargetMachineRef tm, LLVMModuleRef mod, int unroll, char *err, size_t errlen)
{
    LLVMSetTarget(mod, j->triple);
    LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(mod, dl);
    LLVMDisposeTargetData(dl);
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    /* No unrolling beyond the loops the kernels ask for (K_UNROLL) and what
     * clang did to the bitcode, unless asked: the unroller's own choices
     * cost ~17% of the cold compile and gained nothing on the training step
     * but in the kernels jit_kernel_unrolled names (measured on Zen 4,
     * kernel by kernel with MWTC_PROFILE=1). */
    LLVMPassBuilderOptionsSetLoopUnrolling(opts, unroll);
    LLVMErrorRef e = LLVMRunPasses(mod, "default<O3>", tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    if (e) {
        take_error(e, "the optimizer failed", err, errlen);
        return -1;
    }
    return 0;
}

int jit_optimize(Jit *j, LLVMModuleRef mod, char *err, size_t errlen)
{
    return jit_optimize_with(j, j->tm, mod, 0, err, errlen);
}

int jit_from_cache(const Jit *j) { return j->from_cache; }

void *jit_lookup(Jit *j, const char *name)
{
    LLVMOrcExecutorAddress addr = 0;
    LLVMErrorRef e = LLVMOrcLLJITLookup(j->lljit, &addr, name);
    if (e) {
        LLVMConsumeError(e);
        return NULL;
    }
    return (void *)(uintptr_t)addr;
}
