/* Specialized kernel calls: the kernels' bitcode is parsed into a fresh
 * module, each call becomes a small function that passes constant shapes,
 * the kernels are made internal and always-inline, and O3 then turns each
 * call into loops of known trip counts vectorized for the host. Calls of one
 * shape (a layer's forward and inference, the same elementwise op on many
 * tensors) share one body: compiling each its own copy made up a third of
 * SimCNN's cold compile. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/BitReader.h>
#include <llvm-c/Core.h>

#include "jit_int.h"

void jit_set_target(LLVMContextRef ctx, LLVMValueRef fn, const char *cpu, const char *features)
{
    static const char *drop[] = { "target-cpu", "target-features", "tune-cpu" };
    for (int i = 0; i < 3; i++)
        LLVMRemoveStringAttributeAtIndex(fn, LLVMAttributeFunctionIndex, drop[i], (unsigned)strlen(drop[i]));
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(ctx, "target-cpu", 10, cpu, (unsigned)strlen(cpu)));
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(ctx, "target-features", 15, features, (unsigned)strlen(features)));
}

/* clang stamped the kernels with the generic x86-64 it compiled for; the
 * host's CPU and features replace that, or O3 could not use AVX2/AVX-512.
 * LLVM tunes Intel's AVX-512 CPUs (and x86-64-v4) to prefer 256-bit
 * vectors, and would split a function's 16-float vectors (k_tile.h) in two
 * where clang's "min-legal-vector-width" says 0, as it does on the kernels.
 * The kernels are inlined into the calls' functions (shape_fn), which
 * carry no such attribute, so the tiles keep zmm registers there (objdump of
 * a cached object shows them on Sapphire Rapids). Forcing
 * "prefer-vector-width"="512" on top widened only O3's own loops, and
 * SimCNN trained 5-10% slower on that CPU (three runs each): not done. */
static void retarget(Jit *j, LLVMContextRef ctx, LLVMValueRef fn)
{
    jit_set_target(ctx, fn, j->cpu, j->features);
}

static void make_inline(LLVMContextRef ctx, LLVMValueRef fn)
{
    unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
    unsigned always = LLVMGetEnumAttributeKindForName("alwaysinline", 12);
    LLVMRemoveEnumAttributeAtIndex(fn, LLVMAttributeFunctionIndex, noinline);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(ctx, always, 0));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
}

/* Whether the argument of sig character c is given at run time to a
 * shape's shared body ('p' and 'q' tensors, 'r', the thread's 'w', 'l', 'h'),
 * rather than built into it. */
static int runtime_arg(char c) { return strchr("pqrwlh", c) != NULL; }

/* Whether two calls compute the same function of their pointers: the same
 * kernel, signature and shape constants; only where their tensors lie differs. */
static int same_shape(const JitCall *a, const JitCall *b)
{
    if (strcmp(a->kernel, b->kernel) != 0 || strcmp(a->sig, b->sig) != 0)
        return 0;
    int k = 0;
    for (const char *s = a->sig; *s; s++)
        if (jit_sig_const(*s)) {
            if (!runtime_arg(*s) && a->consts[k] != b->consts[k])
                return 0;
            k++;
        }
    return 1;
}

void jit_call_groups(const JitCall *calls, int n, int *group)
{
    for (int i = 0; i < n; i++) {
        group[i] = i;
        for (int k = 0; k < i; k++)
            if (group[k] == k && same_shape(&calls[k], &calls[i])) {
                group[i] = k;
                break;
            }
    }
}

/* A constant argument: 'n' null, 'i' or 'r' an int, 'f' a float (v). */
static LLVMValueRef const_arg(LLVMContextRef ctx, char c, double v)
{
    switch (c) {
    case 'n': return LLVMConstPointerNull(LLVMPointerTypeInContext(ctx, 0));
    case 'i':
    case 'r': return LLVMConstInt(LLVMInt32TypeInContext(ctx), (unsigned long long)(long long)v, 1);
    default: return LLVMConstReal(LLVMFloatTypeInContext(ctx), (float)v);
    }
}

/* The function a call runs: the kernel itself for a call of its own shape,
 * else (shared) a function of the call's runtime values only, the shape
 * constants in its body, kept out of line so that calls of one shape share
 * one compiled body: the same code compiled once instead of per call.
 * Its parameters: one per runtime_arg of the signature, in order. */
static LLVMValueRef shape_fn(Jit *j, LLVMContextRef ctx, LLVMModuleRef mod, const JitCall *c, LLVMValueRef kernel,
                             char *err, size_t errlen)
{
    char name[256];
    snprintf(name, sizeof name, "%s.shape", c->name);
    LLVMTypeRef kty = LLVMGlobalGetValueType(kernel);
    unsigned nk = LLVMCountParamTypes(kty), np = 0;
    LLVMTypeRef kparams[64], params[64];
    LLVMGetParamTypes(kty, kparams);
    for (unsigned i = 0; i < nk; i++)
        if (runtime_arg(c->sig[i]))
            params[np++] = kparams[i];
    LLVMValueRef fn = LLVMAddFunction(mod, name, LLVMFunctionType(LLVMVoidTypeInContext(ctx), params, np, 0));
    retarget(j, ctx, fn);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(ctx, noinline, 0));
    LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, fn, "entry"));
    LLVMValueRef args[64];
    int k = 0;
    unsigned q = 0;
    for (unsigned i = 0; i < nk; i++) {
        char ch = c->sig[i];
        args[i] = runtime_arg(ch) ? LLVMGetParam(fn, q++) : const_arg(ctx, ch, jit_sig_const(ch) ? c->consts[k] : 0);
        k += jit_sig_const(ch);
        if (LLVMTypeOf(args[i]) != kparams[i]) {
            snprintf(err, errlen, "argument %u of %s: the signature gives the wrong type", i + 1, c->kernel);
            LLVMDisposeBuilder(b);
            return NULL;
        }
    }
    LLVMBuildCall2(b, kty, kernel, args, nk, "");
    LLVMBuildRetVoid(b);
    LLVMDisposeBuilder(b);
    return fn;
}

/* The call's own function NAME(base, ws, lo, hi): its tensors' addresses
 * (base + offset) and constants into the kernel, or into its shape's
 * shared function when `shared` is not NULL. */
static int add_call(Jit *j, LLVMContextRef ctx, LLVMModuleRef mod, const JitCall *c, LLVMValueRef shared,
                    char *err, size_t errlen)
{
    LLVMValueRef kernel = LLVMGetNamedFunction(mod, c->kernel);
    if (!kernel || LLVMIsDeclaration(kernel)) {
        snprintf(err, errlen, "no kernel named %s", c->kernel);
        return -1;
    }
    LLVMTypeRef kty = LLVMGlobalGetValueType(kernel);
    unsigned nk = LLVMCountParamTypes(kty);
    if (strlen(c->sig) != nk || nk > 64) {
        snprintf(err, errlen, "%s takes %u arguments, the call passes %zu", c->kernel, nk, strlen(c->sig));
        return -1;
    }
    for (const char *s = c->sig; *s; s++)
        if (!strchr("pqnwlhifr", *s)) {
            snprintf(err, errlen, "bad signature character '%c' for %s", *s, c->kernel);
            return -1;
        }
    LLVMTypeRef kparams[64];
    LLVMGetParamTypes(kty, kparams);
    LLVMTypeRef ptr = LLVMPointerTypeInContext(ctx, 0), i32 = LLVMInt32TypeInContext(ctx);
    LLVMTypeRef i8 = LLVMInt8TypeInContext(ctx), i64 = LLVMInt64TypeInContext(ctx);
    LLVMTypeRef params[4] = { ptr, ptr, i32, i32 };
    LLVMValueRef fn = LLVMAddFunction(mod, c->name, LLVMFunctionType(LLVMVoidTypeInContext(ctx), params, 4, 0));
    retarget(j, ctx, fn);
    LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, fn, "entry"));
    LLVMValueRef args[64];
    unsigned na = 0;
    int k = 0, rc = 0;
    for (unsigned i = 0; i < nk && rc == 0; i++) {
        char ch = c->sig[i];
        double cv = jit_sig_const(ch) ? c->consts[k++] : 0;
        LLVMValueRef v;
        if (ch == 'p' || (ch == 'q' && cv >= 0)) {   /* a tensor: base + its offset */
            LLVMValueRef off = LLVMConstInt(i64, (unsigned long long)(long long)cv, 1);
            v = LLVMBuildInBoundsGEP2(b, i8, LLVMGetParam(fn, 0), &off, 1, "");
        } else if (ch == 'q') {   /* no tensor */
            v = LLVMConstPointerNull(ptr);
        } else if (strchr("wlh", ch)) {
            v = LLVMGetParam(fn, ch == 'w' ? 1 : ch == 'l' ? 2 : 3);
        } else {
            v = const_arg(ctx, ch, cv);
        }
        if (shared && !runtime_arg(ch))   /* built into the shared body */
            continue;
        if (LLVMTypeOf(v) != kparams[i]) {
            snprintf(err, errlen, "argument %u of %s: the signature gives the wrong type", i + 1, c->kernel);
            rc = -1;
        }
        args[na++] = v;
    }
    if (rc == 0) {
        LLVMValueRef callee = shared ? shared : kernel;
        LLVMBuildCall2(b, shared ? LLVMGlobalGetValueType(shared) : kty, callee, args, na, "");
        LLVMBuildRetVoid(b);
    }
    LLVMDisposeBuilder(b);
    return rc;
}

LLVMModuleRef jit_build_module(Jit *j, LLVMContextRef ctx, const JitCall *calls, int n, const char *keep, char *err,
                               size_t errlen)
{
    LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRange((const char *)mwt_kernels_bc, mwt_kernels_bc_len,
                                                                    "kernels.bc", 0);
    LLVMModuleRef mod = NULL;
    if (LLVMParseBitcodeInContext2(ctx, buf, &mod)) {
        snprintf(err, errlen, "the embedded kernel bitcode does not parse");
        LLVMDisposeMemoryBuffer(buf);
        return NULL;
    }
    LLVMDisposeMemoryBuffer(buf);
    for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f))
        if (!LLVMIsDeclaration(f)) {
            retarget(j, ctx, f);
            make_inline(ctx, f);
        }
    size_t m = (size_t)(n > 0 ? n : 1);
    int *group = malloc(sizeof(int) * m), *size = calloc(m, sizeof(int));
    LLVMValueRef *shared = calloc(m, sizeof *shared);
    int rc = 0;
    if (!group || !size || !shared) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    } else {
        jit_call_groups(calls, n, group);
        for (int i = 0; i < n; i++)
            size[group[i]]++;
    }
    for (int i = 0; i < n && rc == 0; i++) {
        int g = group[i];
        if (size[g] > 1 && !shared[g]) {   /* a shape of several calls: one shared body */
            LLVMValueRef kernel = LLVMGetNamedFunction(mod, calls[g].kernel);
            if (!kernel || LLVMIsDeclaration(kernel) ||
                strlen(calls[g].sig) != LLVMCountParamTypes(LLVMGlobalGetValueType(kernel))) {
                snprintf(err, errlen, "no kernel %s with the signature %s", calls[g].kernel, calls[g].sig);
                rc = -1;
                break;
            }
            if (!(shared[g] = shape_fn(j, ctx, mod, &calls[g], kernel, err, errlen))) {
                rc = -1;
                break;
            }
        }
        rc = add_call(j, ctx, mod, &calls[i], size[g] > 1 ? shared[g] : NULL, err, errlen);
    }
    free(size);
    free(group);
    free(shared);
    if (rc != 0) {
        LLVMDisposeModule(mod);
        return NULL;
    }
    /* The kernels no call uses go before the optimizer sees them: it would
     * simplify every one of them before its inliner dropped them. */
    LLVMValueRef kept = keep ? LLVMGetNamedFunction(mod, keep) : NULL;
    if (keep && (!kept || LLVMIsDeclaration(kept))) {
        snprintf(err, errlen, "no kernel named %s", keep);
        LLVMDisposeModule(mod);
        return NULL;
    }
    for (int gone = 1; gone;) {
        gone = 0;
        for (LLVMValueRef f = LLVMGetFirstFunction(mod), next; f; f = next) {
            next = LLVMGetNextFunction(f);
            if (f != kept && !LLVMIsDeclaration(f) && LLVMGetLinkage(f) == LLVMInternalLinkage && !LLVMGetFirstUse(f)) {
                LLVMDeleteFunction(f);
                gone = 1;
            }
        }
    }
    return mod;
}

char *jit_calls_ir(Jit *j, const JitCall *calls, int n, int opt, char *err, size_t errlen)
{
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = jit_build_module(j, ctx, calls, n, NULL, err, errlen);
    char *out = NULL;
    if (mod && (!opt || jit_optimize(j, mod, err, errlen) == 0)) {
        char *s = LLVMPrintModuleToString(mod);
        out = strdup(s);
        LLVMDisposeMessage(s);
        if (!out)
            snprintf(err, errlen, "out of memory");
    }
    if (mod)
        LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
    return out;
}

/* Kernel sizes: the instructions of each kernel function of the bitcode and
 * of the functions it calls, counted once per process. */
typedef struct KernelSize {
    char name[64];
    long size;
} KernelSize;
static KernelSize *kernel_size;
static int n_kernel_size;
static pthread_once_t kernel_size_once = PTHREAD_ONCE_INIT;

static long fn_size(LLVMValueRef f, int depth)
{
    if (!f || LLVMIsDeclaration(f) || depth > 16)
        return 0;
    long s = 0;
    for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(f); bb; bb = LLVMGetNextBasicBlock(bb))
        for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in; in = LLVMGetNextInstruction(in)) {
            s++;
            if (LLVMGetInstructionOpcode(in) == LLVMCall && LLVMIsAFunction(LLVMGetCalledValue(in)))
                s += fn_size(LLVMGetCalledValue(in), depth + 1);   /* not through a pointer (k_aot_run's steps) */
        }
    return s;
}

static void count_kernel_sizes(void)
{
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRange((const char *)mwt_kernels_bc, mwt_kernels_bc_len,
                                                                    "kernels.bc", 0);
    LLVMModuleRef mod = NULL;
    if (LLVMParseBitcodeInContext2(ctx, buf, &mod) == 0) {
        int n = 0;
        for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f))
            n += !LLVMIsDeclaration(f) && LLVMGetLinkage(f) == LLVMExternalLinkage;
        kernel_size = calloc((size_t)n + 1, sizeof *kernel_size);
        for (LLVMValueRef f = LLVMGetFirstFunction(mod); f && kernel_size; f = LLVMGetNextFunction(f)) {
            size_t len;
            const char *name = LLVMGetValueName2(f, &len);
            if (LLVMIsDeclaration(f) || LLVMGetLinkage(f) != LLVMExternalLinkage || len >= sizeof kernel_size->name)
                continue;
            KernelSize *k = &kernel_size[n_kernel_size++];
            memcpy(k->name, name, len);
            k->size = fn_size(f, 0);
        }
        LLVMDisposeModule(mod);
    }
    LLVMDisposeMemoryBuffer(buf);
    LLVMContextDispose(ctx);
}

long jit_kernel_size(const char *kernel)
{
    pthread_once(&kernel_size_once, count_kernel_sizes);
    for (int i = 0; i < n_kernel_size; i++)
        if (!strcmp(kernel_size[i].name, kernel))
            return kernel_size[i].size;
    return 100;
}

int jit_kernel_unrolled(const char *kernel)
{
    /* F(2x2)'s Winograd weight gradient: 8-19% slower in training without
     * it (Zen 4, MWTC_PROFILE=1, three runs each). F(4x4)'s gained 4-9%, ~1%
     * of the training step, for 12% more cold compile (0.2 s of the 1.7 s a
     * single thread takes on SimCNN): not taken. */
    return !strcmp(kernel, "k_conv2d_wino_bwd_w");
}
