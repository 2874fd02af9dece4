/* Where Winograd starts to pay for few channels: the forward 3x3 conv (stride
 * 1, pad 1) at batch 64, the eval batch modules run at, by the direct kernel,
 * F(2x2, 3x3) and F(4x4, 3x3), for input and output channel counts a sliced
 * module has (a module keeps a few of a layer's kernels), one thread, the
 * best of the repetitions in thread CPU time. It prints the times and which
 * kernel codegen picks for an inference conv (k_wino_infer_ok,
 * k_wino4_infer_pays), marking a pick that is slower than the best by more
 * than 10%. Usage: bench_wino_small [simd] [repetitions]. BENCH_R=5: 5x5
 * convs (pad 2), the direct kernel against F(2x2, 5x5) (k_wino25_infer_ok),
 * in the F(4x4) column. BENCH_PAD=0 (or 2): 3x3 convs at that padding, the
 * direct kernel against F(4x4) (k_wino4_infer_ok); no F(2x2) there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_time.h"
#include "jit.h"
#include "k_kernels.h"

static long maxl(long a, long b) { return a > b ? a : b; }

int main(int argc, char **argv)
{
    int simd, reps;
    Jit *jit = bench_start("bench_wino_small", argc, argv, 7, &simd, &reps);
    if (!jit)
        return 1;
    char err[512];
    static const int Cs[] = { 2, 4, 8, 12, 16, 32 }, Ks[] = { 2, 4, 8, 16, 32, 64 }, Hs[] = { 7, 14, 28 };
    const int N = 64, R = getenv("BENCH_R") && atoi(getenv("BENCH_R")) == 5 ? 5 : 3,
              P = R == 3 && getenv("BENCH_PAD") ? atoi(getenv("BENCH_PAD")) : R / 2;
    if (P != R / 2 && P != 0 && P != 2) {
        fprintf(stderr, "bench_wino_small: BENCH_PAD must be 0, 1 or 2 (3x3 kernels)\n");
        return 2;
    }
    const int other = P != R / 2; /* F(4x4) at padding 0 or 2: no F(2x2) */
    printf("host %s, simd %d, batch %d, %dx%d kernels, pad %d, 1 thread, best of %d; ms per call of the forward "
           "conv\n",
           jit_cpu(jit), simd, N, R, R, P, reps);
    printf("%-16s %9s %9s %9s  %-7s %s\n", "C->K HxW", "direct", "F(2x2)", R == 5 ? "F(2,5)" : "F(4x4)", "picked",
           "best");
    int id = 0, worse = 0, rows = 0;
    for (size_t h = 0; h < sizeof Hs / sizeof *Hs; h++)
        for (size_t ci = 0; ci < sizeof Cs / sizeof *Cs; ci++)
            for (size_t ki = 0; ki < sizeof Ks / sizeof *Ks; ki++) {
                int C = Cs[ci], K = Ks[ki], H = Hs[h], W = H, OH = H + 2 * P - R + 1, OW = OH;
                size_t nx = (size_t)N * C * H * W, nw = (size_t)K * C * R * R, ny = (size_t)N * K * OH * OW;
                size_t off[4], sz[4] = { nx, nw, (size_t)K, ny }, used = 0;
                for (int i = 0; i < 4; i++)
                    off[i] = used, used += (sz[i] * sizeof(float) + 63) / 64 * 64;
                char *base = aligned_alloc(64, used);
                for (size_t i = 0; i < used / sizeof(float); i++)
                    ((float *)base)[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
                long nws = maxl(k_conv2d_ws(N, C, H, W, K, R, R, 1, P, OH, OW, simd),
                                maxl(k_wino_ws(C, H, W, K, simd),
                                     maxl(k_wino4_ws(C, H, W, K, R == 3 ? P : 1, simd),
                                          k_wino25_ws(C, H, W, K, 2, simd))));
                float *ws = aligned_alloc(64, ((size_t)nws * sizeof(float) + 63) / 64 * 64);
                int kt = k_conv2d_groups((long)N * H, K, simd, 1);   /* one call runs the whole range */
                double cd[17] = { (double)off[0], (double)off[1], (double)off[2], (double)off[3], N, C, H, W, K, R, R,
                                  1, P, OH, OW, kt, simd };
                double cw[13] = { (double)off[0], (double)off[1], (double)off[3], N, C, H, W, K, 0, 0, 0, simd, 1 };
                /* F(4x4) and F(2x2, 5x5) take the padding after K */
                double c25[14] = { (double)off[0], (double)off[1], (double)off[3], N, C, H, W, K, P, 0, 0, 0, simd, 1 };
                char n[3][32];
                for (int i = 0; i < 3; i++)
                    snprintf(n[i], sizeof n[i], "s%d_%d", id, i);
                id++;
                JitCall calls[3] = {
                    { n[0], "k_conv2d_fwd", "ppppwiiiiiiiiiiiiilh", cd },
                    { n[1], "k_conv2d_wino", "ppnnnnnnpwiiiiifiiiilh", cw },
                    R == 5 ? (JitCall){ n[2], "k_conv2d_wino25", "ppnnnnnnpwiiiiiifiiiilh", c25 }
                           : (JitCall){ n[2], "k_conv2d_wino4", "ppnnnnnnpwiiiiiifiiiilh", c25 },
                };
                if (R == 5 || other) /* no F(2x2, 3x3) column */
                    calls[1] = calls[2];
                if (jit_add_calls(jit, calls, 3, err, sizeof err) != 0) {
                    fprintf(stderr, "bench_wino_small: %s\n", err);
                    return 1;
                }
                double t[3];
                t[0] = bench_best((JitFn)jit_lookup(jit, n[0]), base, ws, kt * N * OH, reps);
                t[1] = R == 5 || other ? 1e30 : bench_best((JitFn)jit_lookup(jit, n[1]), base, ws, N, reps);
                t[2] = bench_best((JitFn)jit_lookup(jit, n[2]), base, ws, N, reps);
                int pick = R == 5  ? 2 * k_wino25_infer_ok(C, H, W, K, 5, 5, 1, 2, H, W)
                           : other ? 2 * (k_wino4_infer_ok(C, H, W, K, 3, 3, 1, P, OH, OW) &&
                                          k_wino4_pad_pays(C, H, W, K, simd))
                           : !k_wino_infer_ok(C, H, W, K, 3, 3, 1, 1, H, W) ? 0
                           : k_wino4_infer_pays(N, C, H, W, simd)            ? 2
                                                                             : 1,
                    best = 0;
                for (int i = 1; i < 3; i++)
                    best = t[i] < t[best] ? i : best;
                const char *name[] = { "direct", "F(2x2)", R == 5 ? "F(2,5)" : "F(4x4)" };
                int slow = t[pick] > 1.1 * t[best];
                worse += slow, rows++;
                char shp[32];
                snprintf(shp, sizeof shp, "%d->%d %dx%d", C, K, H, W);
                char f22[16] = "        -"; /* no F(2x2, 3x3) for 5x5 kernels */
                if (R != 5 && !other)
                    snprintf(f22, sizeof f22, "%9.3f", t[1] * 1e3);
                printf("%-16s %9.3f %s %9.3f  %-7s %s%s\n", shp, t[0] * 1e3, f22, t[2] * 1e3, name[pick], name[best],
                       slow ? "  (picked is >10% slower)" : "");
                free(base), free(ws);
            }
    printf("%d of %d shapes pick a kernel more than 10%% slower than the best\n", worse, rows);
    jit_destroy(jit);
    return 0;
}
