/* The kernels the generated code calls. They are written once, in plain C,
 * and compiled twice: natively (the reference the tests compare with) and to
 * LLVM bitcode that the JIT links into each model's module, where the shape
 * arguments become constants, the calls are inlined and O3 vectorizes the
 * loops for the host CPU (Glow's libjit and PostgreSQL's llvmjit do the same).
 * So: shapes are ordinary int arguments here, loops are simple and
 * restrict-qualified, and nothing here allocates or calls libc. */
#ifndef K_KERNELS_H
#define K_KERNELS_H

/* C[M,N] = A[M,K] B[K,N] (+ C when accumulate), all row-major. */
void k_gemm(int M, int N, int K, const float *restrict A, const float *restrict B, float *restrict C,
            int accumulate);

/* y[n,k,oh,ow] = b[k] + sum_{c,r,s} w[k,c,r,s] x[n,c,oh*stride+r-pad,ow*stride+s-pad],
 * NCHW, zero padding; b may be NULL. */
void k_conv2d_fwd(const float *restrict x, const float *restrict w, const float *restrict b, float *restrict y,
                  int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW);

#endif
