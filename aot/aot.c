/* aot_emit: a module's kernel calls, built as the JIT builds them
 * (jit_build_module: the kernels' bitcode, each call a small function with
 * its shapes constant), then in the same LLVM module the globals the calls
 * run on and NAME_run, optimized at O3 for this CPU and written as a
 * position-independent object file. Everything but NAME_run is internal, so
 * two emitted modules link into one program without a clash. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>

#include "aot.h"
#include "jit_int.h"
#include "k_kernels.h"

static LLVMValueRef global(LLVMModuleRef mod, const char *name, LLVMValueRef init, int constant, unsigned align)
{
    LLVMValueRef g = LLVMAddGlobal(mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, constant);
    LLVMSetLinkage(g, LLVMInternalLinkage);
    if (align)
        LLVMSetAlignment(g, align);
    return g;
}

/* The arena's bytes up to its last nonzero one: what a slot's arena gets at
 * its first call (the rest of it stays zeros: activations and flags that
 * start at 0). */
static long long arena_used(const char *bytes, long long n)
{
    while (n > 0 && bytes[n - 1] == 0)
        n--;
    return n;
}

/* Bytes of a slot's arena and scratch. */
static long long slot_bytes(const AotModule *m, long long *ab, long long *wsb)
{
    *ab = (m->arena_bytes + 63) / 64 * 64;
    *wsb = (m->ws_floats * 4 + 63) / 64 * 64 + 64;
    return *ab + *wsb;
}

/* K_AOT_SLOTS, or fewer where their .bss would pass 1.5 GiB: a program's
 * static data must stay under 2 GiB (the default code model). */
static int slots(const AotModule *m)
{
    long long ab, wsb, one = slot_bytes(m, &ab, &wsb);
    int k = K_AOT_SLOTS;
    while (k > 1 && k * one > (3LL << 29))
        k--;
    return k;
}

static LLVMValueRef zeros(LLVMContextRef ctx, long long n)
{
    return LLVMConstNull(LLVMArrayType2(LLVMInt8TypeInContext(ctx), (uint64_t)n));
}

static LLVMValueRef i32_array(LLVMContextRef ctx, const int *v, int n)
{
    LLVMTypeRef i32 = LLVMInt32TypeInContext(ctx);
    LLVMValueRef *c = malloc(sizeof *c * (size_t)(n > 0 ? n : 1));
    if (!c)
        return NULL;
    for (int i = 0; i < n; i++)
        c[i] = LLVMConstInt(i32, (unsigned long long)(long long)v[i], 1);
    LLVMValueRef a = LLVMConstArray2(i32, c, (uint64_t)n);
    free(c);
    return a;
}

/* The CPUID bits of the features LLVM may use (k_kernels.h's words): an
 * object compiled for more than the CPU it runs on returns -2 from NAME_run,
 * instead of dying on an illegal instruction somewhere inside. A feature
 * not listed is not checked (those that the kernels' float code could
 * use are: the SSE and AVX families, FMA and FMA4, XOP, the bit
 * manipulation sets, and APX, whose extra registers any code may use: its
 * parts all need APX_F and the OS saving those registers). */
static const struct {
    const char *name;
    int word, bit, state;   /* state: the registers the OS must save, 1 YMM, 3 YMM and ZMM, 4 APX's */
} cpu_bits[] = {
    { "sse3", 0, 0, 0 },          { "pclmul", 0, 1, 0 },        { "ssse3", 0, 9, 0 },
    { "fma", 0, 12, 1 },          { "sse4.1", 0, 19, 0 },       { "sse4.2", 0, 20, 0 },
    { "movbe", 0, 22, 0 },        { "popcnt", 0, 23, 0 },       { "aes", 0, 25, 0 },
    { "avx", 0, 28, 1 },          { "f16c", 0, 29, 1 },         { "bmi", 1, 3, 0 },
    { "avx2", 1, 5, 1 },          { "bmi2", 1, 8, 0 },          { "avx512f", 1, 16, 3 },
    { "avx512dq", 1, 17, 3 },     { "adx", 1, 19, 0 },          { "avx512ifma", 1, 21, 3 },
    { "avx512cd", 1, 28, 3 },     { "sha", 1, 29, 0 },          { "avx512bw", 1, 30, 3 },
    { "avx512vl", 1, 31, 3 },     { "avx512vbmi", 2, 1, 3 },    { "avx512vbmi2", 2, 6, 3 },
    { "gfni", 2, 8, 0 },          { "vaes", 2, 9, 1 },          { "vpclmulqdq", 2, 10, 1 },
    { "avx512vnni", 2, 11, 3 },   { "avx512bitalg", 2, 12, 3 }, { "avx512vpopcntdq", 2, 14, 3 },
    { "avx512fp16", 3, 23, 3 },   { "avxvnni", 4, 4, 1 },       { "avx512bf16", 4, 5, 3 },
    { "lzcnt", 5, 5, 0 },         { "sahf", 5, 0, 0 },          { "sse4a", 5, 6, 0 },
    { "prfchw", 5, 8, 0 },        { "xop", 5, 11, 1 },          { "fma4", 5, 16, 1 },
    { "tbm", 5, 21, 0 },          { "cx16", 0, 13, 0 },         { "egpr", 7, 21, 4 },
    { "push2pop2", 7, 21, 4 },    { "ppx", 7, 21, 4 },          { "ndd", 7, 21, 4 },
    { "ccmp", 7, 21, 4 },         { "nf", 7, 21, 4 },           { "cf", 7, 21, 4 },
    { "zu", 7, 21, 4 },
};

const char *aot_level_features(const char *cpu)
{
    static const char v2[] = "+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt";
    static const char v3[] = "+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt,+avx,+avx2,+bmi,+bmi2,+f16c,+fma,+lzcnt,+movbe";
    static const char v4[] = "+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt,+avx,+avx2,+bmi,+bmi2,+f16c,+fma,+lzcnt,+movbe,"
                             "+avx512f,+avx512bw,+avx512cd,+avx512dq,+avx512vl";
    return !strcmp(cpu, "x86-64-v2") ? v2 : !strcmp(cpu, "x86-64-v3") ? v3 : !strcmp(cpu, "x86-64-v4") ? v4 : "";
}

void aot_cpu_need(const char *features, unsigned *need)
{
    memset(need, 0, sizeof(unsigned) * K_AOT_CPU_WORDS);
    for (const char *p = features; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (*p == '+')
            for (size_t i = 0; i < sizeof cpu_bits / sizeof *cpu_bits; i++)
                if (strlen(cpu_bits[i].name) == len - 1 && !memcmp(cpu_bits[i].name, p + 1, len - 1)) {
                    need[cpu_bits[i].word] |= 1u << cpu_bits[i].bit;
                    need[6] |= (unsigned)cpu_bits[i].state;
                }
        p += len + (end != NULL);
    }
}

/* NAME_run and what it passes to k_aot_entry; 0 or -1 with a message. */
static int add_run(LLVMContextRef ctx, LLVMModuleRef mod, const AotModule *m, const char *features, char *err,
                   size_t errlen)
{
    LLVMTypeRef ptr = LLVMPointerTypeInContext(ctx, 0), i32 = LLVMInt32TypeInContext(ctx);
    LLVMTypeRef i64 = LLVMInt64TypeInContext(ctx), f32 = LLVMFloatTypeInContext(ctx);
    LLVMValueRef kernel = LLVMGetNamedFunction(mod, "k_aot_entry");
    int nsteps = 0;
    for (int g = 0; g < m->ngraphs; g++)
        nsteps += m->graph[g].nsteps;
    LLVMValueRef *fns = malloc(sizeof *fns * (size_t)(nsteps > 0 ? nsteps : 1));
    int *units_v = malloc(sizeof(int) * (size_t)(nsteps > 0 ? nsteps : 1));
    LLVMValueRef *nv = malloc(sizeof *nv * (size_t)(2 * m->channels));
    if (!fns || !units_v || !nv) {
        free(fns), free(units_v), free(nv);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    long long used = arena_used(m->arena, m->arena_init), ab, wsb;
    slot_bytes(m, &ab, &wsb);
    int k = slots(m);
    long long io[K_AOT_G0 + 2 * K_AOT_GW] = { 0 };
    io[K_AOT_C] = m->channels, io[K_AOT_HW] = m->pixels, io[K_AOT_K] = m->logits, io[K_AOT_S] = m->nsel;
    io[K_AOT_INIT] = used, io[K_AOT_WS] = wsb, io[K_AOT_NSLOTS] = k, io[K_AOT_ARENA] = ab;
    io[K_AOT_GRAPHS] = m->ngraphs;
    /* the graphs' steps one after the other, in one array */
    for (int g = 0, s = 0; g < m->ngraphs; g++) {
        const AotGraph *gr = &m->graph[g];
        long long *gi = io + K_AOT_G0 + g * K_AOT_GW;
        gi[K_AOT_IN] = gr->in_off, gi[K_AOT_OUT] = gr->out_off, gi[K_AOT_B] = gr->batch;
        gi[K_AOT_FIRST] = s, gi[K_AOT_PREP] = gr->nprep, gi[K_AOT_STEPS] = gr->nsteps;
        for (int i = 0; i < gr->nsteps; i++, s++) {
            units_v[s] = gr->step_units[i];
            if (!(fns[s] = LLVMGetNamedFunction(mod, m->calls[gr->step_call[i]].name))) {
                snprintf(err, errlen, "internal error: step %d's function %s is missing", s,
                         m->calls[gr->step_call[i]].name);
                free(fns), free(units_v), free(nv);
                return -1;
            }
        }
    }
    for (int c = 0; c < m->channels; c++) {
        nv[c] = LLVMConstReal(f32, m->mean[c]);
        nv[m->channels + c] = LLVMConstReal(f32, m->std[c]);
    }
    int nio = K_AOT_G0 + m->ngraphs * K_AOT_GW;
    LLVMValueRef iov[K_AOT_G0 + 2 * K_AOT_GW];
    for (int i = 0; i < nio; i++)
        iov[i] = LLVMConstInt(i64, (unsigned long long)io[i], 1);
    /* the arenas, scratches and slots are zeros: .bss, no bytes in the file */
    LLVMValueRef init = global(mod, "aot.init", LLVMConstStringInContext2(ctx, m->arena, (size_t)used, 1), 1, 64);
    LLVMValueRef arenas = global(mod, "aot.arenas", zeros(ctx, k * ab), 0, 64);
    LLVMValueRef ws = global(mod, "aot.ws", zeros(ctx, k * wsb), 0, 64);
    LLVMValueRef slotv = global(mod, "aot.slots", zeros(ctx, k * (long long)sizeof(KAotSlot)), 0, _Alignof(KAotSlot));
    LLVMValueRef wait = global(mod, "aot.wait", zeros(ctx, (long long)sizeof(KAotWait)), 0, _Alignof(KAotWait));
    unsigned need[K_AOT_CPU_WORDS];
    aot_cpu_need(features, need);
    LLVMValueRef needv[K_AOT_CPU_WORDS];
    for (int i = 0; i < K_AOT_CPU_WORDS; i++)
        needv[i] = LLVMConstInt(i32, need[i], 0);
    LLVMValueRef needg = global(mod, "aot.need", LLVMConstArray2(i32, needv, K_AOT_CPU_WORDS), 1, 4);
    LLVMValueRef steps = global(mod, "aot.steps", LLVMConstArray2(ptr, fns, (uint64_t)nsteps), 1, 0);
    LLVMValueRef ua = i32_array(ctx, units_v, nsteps), sa = i32_array(ctx, m->sel, m->nsel);
    if (!ua || !sa) {
        snprintf(err, errlen, "out of memory");
        free(fns), free(units_v), free(nv);
        return -1;
    }
    LLVMValueRef units = global(mod, "aot.units", ua, 1, 0);
    LLVMValueRef iog = global(mod, "aot.io", LLVMConstArray2(i64, iov, (uint64_t)nio), 1, 0);
    LLVMValueRef norm = global(mod, "aot.norm", LLVMConstArray2(f32, nv, (uint64_t)(2 * m->channels)), 1, 0);
    LLVMValueRef sel = global(mod, "aot.sel", sa, 1, 0);
    free(fns), free(units_v), free(nv);

    LLVMValueRef cal = NULL;
    if (m->cal) {
        LLVMTypeRef f64 = LLVMDoubleTypeInContext(ctx);
        LLVMValueRef *cv = malloc(sizeof(LLVMValueRef) * (size_t)m->ncal);
        if (!cv) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (int i = 0; i < m->ncal; i++)
            cv[i] = LLVMConstReal(f64, m->cal[i]);
        cal = global(mod, "aot.cal", LLVMConstArray2(f64, cv, (uint64_t)m->ncal), 1, 8);
        free(cv);
    }
    /* NAME_run, and with calibrations NAME_probability: the same run, a
     * probability for each class (k_aot_run) */
    for (int k = 0; k < 1 + (cal != NULL); k++) {
        char name[300];
        snprintf(name, sizeof name, "%s_%s", m->name, k ? "probability" : "run");
        LLVMTypeRef params[3] = { ptr, ptr, i32 };
        LLVMValueRef fn = LLVMAddFunction(mod, name, LLVMFunctionType(i32, params, 3, 0));
        LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
        LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, fn, "entry"));
        LLVMValueRef args[16] = { arenas, init, ws, slotv, wait, needg, steps, units,
                                  LLVMConstInt(i32, (unsigned long long)nsteps, 0), iog, norm, sel,
                                  k ? cal : LLVMConstNull(ptr), LLVMGetParam(fn, 0), LLVMGetParam(fn, 1),
                                  LLVMGetParam(fn, 2) };
        LLVMValueRef r = LLVMBuildCall2(b, LLVMGlobalGetValueType(kernel), kernel, args, 16, "");
        LLVMBuildRet(b, r);
        LLVMDisposeBuilder(b);
    }
    return 0;
}

/* The check of the CPU (k_aot_cpu_ok, k_aot_entry, NAME_run) as the first
 * x86-64 had it; k_aot_run, compiled for the module's CPU, a call of its
 * own after it. Nothing before the check may use what it checks for. */
static void baseline_entry(LLVMContextRef ctx, LLVMModuleRef mod, const char *triple, const char *name)
{
    if (strncmp(triple, "x86_64", 6) != 0)
        return;
    char run[300], prob[300];
    snprintf(run, sizeof run, "%s_run", name);
    snprintf(prob, sizeof prob, "%s_probability", name);
    const char *base[] = { "k_aot_cpu_ok", "k_aot_entry", run, prob };
    for (int k = 0; k < 4; k++) {
        LLVMValueRef f = LLVMGetNamedFunction(mod, base[k]);
        if (f)
            jit_set_target(ctx, f, "x86-64", "+cx8,+fxsr,+mmx,+sse,+sse2,+x87");
    }
    LLVMValueRef f = LLVMGetNamedFunction(mod, "k_aot_run");
    if (f) {
        LLVMRemoveEnumAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMGetEnumAttributeKindForName("alwaysinline", 12));
        LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                                LLVMCreateEnumAttribute(ctx, LLVMGetEnumAttributeKindForName("noinline", 8), 0));
    }
}

const char *const aot_cpus[] = { "x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4", NULL };

int aot_emit(Jit *host, const AotModule *m, const char *path, const char *tmp, char *err, size_t errlen)
{
    /* another CPU: its name, and the features LLVM knows it by (none added) */
    Jit other = *host, *j = host;
    if (m->cpu) {
        other.cpu = (char *)m->cpu;
        other.features = (char *)"";
        j = &other;
    }
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = jit_build_module(j, ctx, m->calls, m->ncalls, "k_aot_entry", err, errlen);
    LLVMTargetMachineRef tm = NULL;
    int rc = -1;
    if (!mod)
        goto done;
    /* the calls' functions are the object's own, not its interface */
    for (int i = 0; i < m->ncalls; i++) {
        LLVMValueRef f = LLVMGetNamedFunction(mod, m->calls[i].name);
        if (f)
            LLVMSetLinkage(f, LLVMInternalLinkage);
    }
    if (add_run(ctx, mod, m, m->cpu ? aot_level_features(m->cpu) : j->features, err, errlen) != 0)
        goto done;
    baseline_entry(ctx, mod, j->triple, m->name);
    /* the object's file symbol, which linkers name in their errors (else "llvm-link") */
    char src[300];
    snprintf(src, sizeof src, "%s.o", m->name);
    LLVMSetSourceFileName(mod, src, strlen(src));
    char *why = NULL;
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &why)) {
        snprintf(err, errlen, "internal error: the emitted module does not verify: %.300s", why ? why : "?");
        LLVMDisposeMessage(why);
        goto done;
    }
    LLVMDisposeMessage(why);
    /* as the JIT's machine, but for a program's link: the default code model */
    tm = LLVMCreateTargetMachine(j->target, j->triple, j->cpu, j->features, LLVMCodeGenLevelAggressive, LLVMRelocPIC,
                                 LLVMCodeModelDefault);
    if (!tm) {
        snprintf(err, errlen, "cannot create a target machine for %s", j->triple);
        goto done;
    }
    if (jit_optimize_with(j, tm, mod, 0, err, errlen) != 0)
        goto done;
    char *msg = NULL;
    if (LLVMTargetMachineEmitToFile(tm, mod, tmp, LLVMObjectFile, &msg)) {
        snprintf(err, errlen, "cannot write %s: %.300s", path, msg ? msg : "?");
        LLVMDisposeMessage(msg);
        remove(tmp);
        goto done;
    }
    LLVMDisposeMessage(msg);
    rc = 0;
done:
    if (tm)
        LLVMDisposeTargetMachine(tm);
    if (mod)
        LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
    return rc;
}

int aot_header(const AotModule *m, const int *classes, const char *about, const char *path, const char *tmp, char *err,
               size_t errlen)
{
    char up[256];
    size_t n = strlen(m->name);
    if (n >= sizeof up) {
        snprintf(err, errlen, "the name '%s' is too long", m->name);
        return -1;
    }
    for (size_t i = 0; i <= n; i++)
        up[i] = (char)toupper((unsigned char)m->name[i]);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "/* %s.h: the module %s, emitted by mwtc.\n", m->name, m->name);
    for (const char *s = about; s && *s;) {   /* a path or a class name may hold a comment's end */
        fputs(" * ", f);
        for (; *s && *s != '\n'; s++)
            fputs(s[0] == '*' && s[1] == '/' ? "*\\" : (char[2]){ *s, 0 }, f);
        fputc('\n', f);
        s += *s == '\n';
    }
    fprintf(f, " *\n * Link %s.o with -lm; it needs nothing else (no LLVM, no mwtc; its mutexes are\n"
               " * in libc from glibc 2.34 on, before that add -pthread). */\n", m->name);
    /* the guard keeps the name's case: net.h and Net.h declare net_run and
     * Net_run, and a program that includes both needs both declarations */
    fprintf(f, "#ifndef MWTC_MODULE_%s_H\n#define MWTC_MODULE_%s_H\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n",
            m->name, m->name);
    /* but the macros are upper case: Net.h after net.h would redefine them (a
     * warning at most) with the other module's sizes, and a buffer sized by
     * one would take the other's scores */
    fprintf(f, "#if defined(%s_INPUT_SIZE) || defined(%s_OUTPUT_SIZE) || defined(%s_CLASSES)\n"
               "#error \"%s_INPUT_SIZE, _OUTPUT_SIZE or _CLASSES is already defined, by the header of a module whose "
               "name differs from %s only in case? Emit one of them under another name.\"\n#endif\n",
            up, up, up, up, m->name);
    fprintf(f, "#define %s_INPUT_SIZE   %lld          /* floats per image, C*H*W */\n", up,
            (long long)m->channels * m->pixels);
    fprintf(f, "#define %s_OUTPUT_SIZE  %d            /* one score per class of the module */\n", up, m->nsel);
    fprintf(f, "#define %s_CLASSES      {", up);
    for (int i = 0; i < m->nsel; i++)
        fprintf(f, "%s %d", i ? "," : "", classes[i]);
    fprintf(f, " }\n\n");
    fprintf(f, "/* n images in, n * %s_OUTPUT_SIZE scores out, in the order of %s_CLASSES.\n"
               " * An image is C x H x W floats as the loader reads it: 8-bit pixels / 255, before\n"
               " * normalization (the module applies it). Returns 0, -1 when n < 0 or, for\n"
               " * n > 0, a buffer is NULL, or -2 (for any n) when this CPU lacks instructions\n"
               " * the module was compiled for. Scores are raw logits, not probabilities.\n"
               " * Thread-safe: up to %d calls run at once, each in an arena of its own,\n"
               " * and more wait for one (blocked, not spinning). Allocates nothing. */\n",
            up, up, slots(m));
    if (m->ngraphs > 1)
        fprintf(f, "/* A call runs its images %d at a time while as many are left, then one at a\n"
                   " * time; an image's scores are the same bits either way, whichever call and\n"
                   " * place it comes in: hand over many images a call for speed. */\n",
                m->graph[1].batch);
    fprintf(f, "int %s_run(const float *images, float *scores, int n);\n\n", m->name);
    if (m->cal && m->nsel == 1)
        fprintf(f, "/* The same run, one number an image: the probability that it is of class %d, by\n"
                   " * the module's calibration (a logistic regression from its logits, fitted on\n"
                   " * %lld training images of every class when it was emitted): above 0.5, say\n"
                   " * yes. n images in, n floats out; returns as %s_run does. */\n"
                   "int %s_probability(const float *images, float *p, int n);\n\n",
                classes[0], m->cal_images, m->name, m->name);
    else if (m->cal)   /* raw logits choose among the module's classes, but cannot say "none of them" */
        fprintf(f, "/* The same run, calibrated: p[i * %s_OUTPUT_SIZE + j] is the probability that\n"
                   " * image i is of class %s_CLASSES[j], by the module's calibration of that class\n"
                   " * (a logistic regression from its logits, fitted on %lld training images of\n"
                   " * every class when it was emitted). Each is its class against all others: they\n"
                   " * need not sum to 1, and all below 0.5 says the image is none of these classes.\n"
                   " * n images in, n * %s_OUTPUT_SIZE floats out; returns as %s_run does. */\n"
                   "int %s_probability(const float *images, float *p, int n);\n\n",
                up, up, m->cal_images, up, m->name, m->name);
    fprintf(f, "#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
    if (fclose(f) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}
