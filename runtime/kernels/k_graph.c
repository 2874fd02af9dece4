/* The scalar glue of a graph: constants, weighted sums of losses. Each is
 * one unit: a handful of floats is not worth splitting. */
#include "k_kernels.h"

void k_fill(float *restrict y, float v, int lo, int hi)
{
    if (lo < hi)
        y[0] = v;
}

void k_scale(const float *restrict x, float *restrict y, float w, int lo, int hi)
{
    if (lo < hi)
        y[0] = w * x[0];
}

void k_axpy(const float *restrict x, float *restrict y, float w, int lo, int hi)
{
    if (lo < hi)
        y[0] += w * x[0];
}
