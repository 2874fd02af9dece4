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
    if (strlen(c->sig) != nk || nk > 64) {
        snprintf(err, errlen, "%s takes %u arguments, the call passes %zu", c->kernel, nk, strlen(c->sig));
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
    unsigned k = 0;
    int rc = 0;
    for (unsigned i = 0; i < nk; i++) {
        switch (c->sig[i]) {
        case 'p': {
            LLVMValueRef off = LLVMConstInt(i64, (unsigned long long)(long long)c->consts[k++], 1);
            args[i] = LLVMBuildInBoundsGEP2(b, i8, LLVMGetParam(fn, 0), &off, 1, "");
            break;
        }
        case 'n': args[i] = LLVMConstPointerNull(ptr); break;
        case 'w': args[i] = LLVMGetParam(fn, 1); break;
        case 'l': args[i] = LLVMGetParam(fn, 2); break;
        case 'h': args[i] = LLVMGetParam(fn, 3); break;
        case 'i': args[i] = LLVMConstInt(i32, (unsigned long long)(long long)c->consts[k++], 1); break;
        case 'f': args[i] = LLVMConstReal(LLVMFloatTypeInContext(ctx), (float)c->consts[k++]); break;
        default:
            snprintf(err, errlen, "bad signature character '%c' for %s", c->sig[i], c->kernel);
            rc = -1;
        }
        if (rc)
            break;
        if (LLVMTypeOf(args[i]) != kparams[i]) {
            snprintf(err, errlen, "argument %u of %s: the signature gives the wrong type", i + 1, c->kernel);
            rc = -1;
            break;
        }
    }
    if (rc == 0) {
        LLVMBuildCall2(b, kty, kernel, args, nk, "");
        LLVMBuildRetVoid(b);
    }
    LLVMDisposeBuilder(b);
    return rc;
}

LLVMModuleRef jit_build_module(Jit *j, LLVMContextRef ctx, const JitCall *calls, int n, char *err, size_t errlen)
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
    for (int i = 0; i < n; i++)
        if (add_call(j, ctx, mod, &calls[i], err, errlen) != 0) {
            LLVMDisposeModule(mod);
            return NULL;
        }
    return mod;
}

char *jit_calls_ir(Jit *j, const JitCall *calls, int n, int opt, char *err, size_t errlen)
{
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = jit_build_module(j, ctx, calls, n, err, errlen);
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
