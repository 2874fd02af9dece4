/* What F(2x2, 3x3)'s forward gains from input channels that are all zeros
 * in an image (a mask before the conv switched them off; k_wino.c leaves
 * them out of the sums of the column tiles of that image): the forward conv
 * of a sliced module's layers at the eval batch (64), one thread, the best
 * of the repetitions, for a fraction of each image's channels zeroed (at
 * random, per image). Usage: bench_wino_zeros [simd] [repetitions]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_time.h"
#include "jit.h"
#include "k_kernels.h"

int main(int argc, char **argv)
{
    int simd, reps;
    Jit *jit = bench_start("bench_wino_zeros", argc, argv, 7, &simd, &reps);
    if (!jit)
        return 1;
    char err[512];
    static const int shapes[][3] = { { 15, 36, 14 }, { 36, 64, 14 }, { 64, 71, 7 }, { 32, 32, 28 } };
    static const double zeros[] = { 0, 0.25, 0.5, 0.75 };
    const int N = 64;
    printf("host %s, simd %d, batch %d, 1 thread, best of %d; ms per call of the F(2x2) forward\n", jit_cpu(jit), simd,
           N, reps);
    printf("%-14s", "C->K HxW");
    for (size_t z = 0; z < sizeof zeros / sizeof *zeros; z++)
        printf("  %5.0f%% zero", 100 * zeros[z]);
    printf("\n");
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int C = shapes[s][0], K = shapes[s][1], H = shapes[s][2], W = H;
        size_t nx = (size_t)N * C * H * W, nw = (size_t)K * C * 9, ny = (size_t)N * K * H * W;
        size_t off[4], sz[4] = { nx, nw, (size_t)K, ny }, used = 0;
        for (int i = 0; i < 4; i++)
            off[i] = used, used += (sz[i] * sizeof(float) + 63) / 64 * 64;
        char *base = aligned_alloc(64, used);
        long nws = k_wino_ws(C, H, W, K, simd);
        float *ws = aligned_alloc(64, ((size_t)nws * sizeof(float) + 63) / 64 * 64);
        double cw[13] = { (double)off[0], (double)off[1], (double)off[3], N, C, H, W, K, 0, 0, 0, simd, 1 };
        char name[32];
        snprintf(name, sizeof name, "z%zu", s);
        JitCall call = { name, "k_conv2d_wino", "ppnnnnnnpwiiiiifiiiilh", cw };
        if (jit_add_calls(jit, &call, 1, err, sizeof err) != 0) {
            fprintf(stderr, "bench_wino_zeros: %s\n", err);
            return 1;
        }
        char shp[32];
        snprintf(shp, sizeof shp, "%d->%d %dx%d", C, K, H, W);
        printf("%-14s", shp);
        for (size_t z = 0; z < sizeof zeros / sizeof *zeros; z++) {
            float *x = (float *)(base + off[0]);
            for (size_t i = 0; i < used / sizeof(float); i++)
                ((float *)base)[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
            unsigned r = 12345;
            for (int n = 0; n < N; n++)
                for (int c = 0; c < C; c++) {
                    r = r * 1103515245u + 12345u;
                    if ((double)((r >> 8) & 0xffff) / 65536.0 < zeros[z])
                        memset(x + ((size_t)n * C + c) * H * W, 0, sizeof(float) * (size_t)(H * W));
                }
            double t = bench_best((JitFn)jit_lookup(jit, name), base, ws, N, reps);
            printf("  %11.3f", t * 1e3);
        }
        printf("\n");
        free(base), free(ws);
    }
    jit_destroy(jit);
    return 0;
}
