/* Specialized kernel calls: the kernels' bitcode is parsed into a fresh
 * module, each call becomes a small function that passes constant shapes,
 * the kernels are made internal and always-inline, and O3 then turns each
 * call into loops of known trip counts vectorized for the host. */
#include <stdio.h>
#include <string.h>

#include <llvm-c/BitReader.h>
#include <llvm-c/Core.h>

#include "jit_int.h"

/* clang stamped the kernels with the generic x86-64 it compiled for; the
 * host's CPU and features replace that, or O3 could not use AVX2/AVX-512. */
static void retarget(Jit *j, LLVMContextRef ctx, LLVMValueRef fn)
{
    static const char *drop[] = { "target-cpu", "target-features", "tune-cpu" };
    for (int i = 0; i < 3; i++)
        LLVMRemoveStringAttributeAtIndex(fn, LLVMAttributeFunctionIndex, drop[i], (unsigned)strlen(drop[i]));
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(ctx, "target-cpu", 10, j->cpu, (unsigned)strlen(j->cpu)));
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(ctx, "target-features", 15, j->features,
                                                      (unsigned)strlen(j->features)));
}

static void make_inline(LLVMContextRef ctx, LLVMValueRef fn)
{
    unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
    unsigned always = LLVMGetEnumAttributeKindForName("alwaysinline", 12);
    LLVMRemoveEnumAttributeAtIndex(fn, LLVMAttributeFunctionIndex, noinline);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(ctx, always, 0));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
}

static int add_call(Jit *j, LLVMContextRef ctx, LLVMModuleRef mod, const JitCall *c, char *err, size_t errlen)
{
    LLVMValueRef kernel = LLVMGetNamedFunction(mod, c->kernel);
    if (!kernel || LLVMIsDeclaration(kernel)) {
        snprintf(err, errlen, "no kernel named %s", c->kernel);
        return -1;
    }
    LLVMTypeRef kty = LLVMGlobalGetValueType(kernel);
    unsigned nk = LLVMCountParamTypes(kty);
    if (strlen(c->sig) != nk) {
        snprintf(err, errlen, "%s takes %u arguments, the call passes %zu", c->kernel, nk, strlen(c->sig));
        return -1;
    }
    LLVMTypeRef ptr = LLVMPointerTypeInContext(ctx, 0), i32 = LLVMInt32TypeInContext(ctx);
    unsigned np = 0;
    for (const char *s = c->sig; *s; s++)
        np += *s == 'p';
    LLVMTypeRef params[32];
    if (np > 32) {
        snprintf(err, errlen, "too many pointers");
        return -1;
    }
    for (unsigned i = 0; i < np; i++)
        params[i] = ptr;
    LLVMValueRef fn = LLVMAddFunction(mod, c->name, LLVMFunctionType(LLVMVoidTypeInContext(ctx), params, np, 0));
    retarget(j, ctx, fn);
    LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, fn, "entry"));
    LLVMValueRef args[64];
    unsigned p = 0, k = 0;
    for (unsigned i = 0; i < nk && i < 64; i++) {
        char t = c->sig[i];
        if (t == 'p')
            args[i] = LLVMGetParam(fn, p++);
        else if (t == 'n')
            args[i] = LLVMConstPointerNull(ptr);
        else
            args[i] = LLVMConstInt(i32, (unsigned long long)(long long)c->consts[k++], 1);
    }
    LLVMBuildCall2(b, kty, kernel, args, nk, "");
    LLVMBuildRetVoid(b);
    LLVMDisposeBuilder(b);
    return 0;
}

int jit_add_calls(Jit *j, const JitCall *calls, int n, char *err, size_t errlen)
{
    LLVMOrcThreadSafeContextRef tsctx = LLVMOrcCreateNewThreadSafeContext();
    LLVMContextRef ctx = LLVMOrcThreadSafeContextGetContext(tsctx);
    LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRange((const char *)mwt_kernels_bc, mwt_kernels_bc_len,
                                                                    "kernels.bc", 0);
    LLVMModuleRef mod = NULL;
    int rc = -1;
    if (LLVMParseBitcodeInContext2(ctx, buf, &mod)) {
        snprintf(err, errlen, "the embedded kernel bitcode does not parse");
        goto done;
    }
    for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f))
        if (!LLVMIsDeclaration(f)) {
            retarget(j, ctx, f);
            make_inline(ctx, f);
        }
    for (int i = 0; i < n; i++)
        if (add_call(j, ctx, mod, &calls[i], err, errlen) != 0) {
            LLVMDisposeModule(mod);
            goto done;
        }
    rc = jit_optimize_and_add(j, tsctx, mod, err, errlen);
done:
    LLVMDisposeMemoryBuffer(buf);
    LLVMOrcDisposeThreadSafeContext(tsctx);
    return rc;
}
