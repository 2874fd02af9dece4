#include "k_kernels.h"

/* i-k-j order: the innermost loop runs along rows of B and C with unit
 * stride, which LLVM vectorizes once N is a constant. */
void k_gemm(int M, int N, int K, const float *restrict A, const float *restrict B, float *restrict C,
            int accumulate)
{
    for (int i = 0; i < M; i++) {
        float *c = C + (long)i * N;
        if (!accumulate)
            for (int j = 0; j < N; j++)
                c[j] = 0.0f;
        for (int k = 0; k < K; k++) {
            float a = A[(long)i * K + k];
            const float *b = B + (long)k * N;
            for (int j = 0; j < N; j++)
                c[j] += a * b[j];
        }
    }
}
