/* GFLOP/s of the JIT'ed conv kernels on SimCNN's layers at batch 128, one
 * thread, the whole range in one call, the direct kernels and then the
 * kernels mwtc runs (Winograd where it applies): what fraction of the core's
 * peak the kernels reach (time: the thread's CPU time, the best of the repetitions,
 * so that other processes on the machine distort it less). Usage: bench_kernels [simd] [repetitions]; simd defaults to
 * the host's (16 with AVX-512F, else 8). BENCH_CS=n cuts each of the weight gradient's 8 chunks into n parts
 * of the input channels (k_bwdw_splits: codegen's choice on more than 8 threads): the whole range still runs on
 * one thread, so the time says what the cut adds to the work. BENCH_R=5 (or 1, 7) times the same layers with
 * R x R kernels and pad R / 2 (Winograd F(2x2,5x5) for 5x5, the direct kernels for 1x1 and 7x7).
 * BENCH_LAYERS="C:K:H,.." times those shapes instead (C input channels, K outputs, H x H, stride 1).
 * BENCH_PAD=p pads by p instead (0: valid convs, which F(4x4) takes at 3x3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <immintrin.h>

#include "bench_time.h"
#include "jit.h"
#include "k_kernels.h"

/* The core's FP32 peak: a register-resident FMA loop, 12 independent
 * accumulators (more than the FMA latency times the FMA ports), compiled for
 * the widest vectors the host has. Returns GFLOP/s of one thread. */
__attribute__((target("avx512f"))) static double peak_avx512(long iters)
{
    __m512 a[12], b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-3f);
    for (int i = 0; i < 12; i++)
        a[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < 12; i++)
            a[i] = _mm512_fmadd_ps(a[i], b, c);
    float sink = 0;
    for (int i = 0; i < 12; i++)
        sink += _mm512_reduce_add_ps(a[i]);
    return (double)sink;
}

__attribute__((target("avx2,fma"))) static double peak_avx2(long iters)
{
    __m256 a[12], b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-3f);
    for (int i = 0; i < 12; i++)
        a[i] = _mm256_set1_ps((float)i);
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < 12; i++)
            a[i] = _mm256_fmadd_ps(a[i], b, c);
    float out[8], sink = 0;
    for (int i = 0; i < 12; i++) {
        _mm256_storeu_ps(out, a[i]);
        for (int j = 0; j < 8; j++)
            sink += out[j];
    }
    return (double)sink;
}

static double peak_gflops(int simd)
{
    long iters = 20000000;
    double t0 = bench_now(), sink = simd >= 16 ? peak_avx512(iters) : peak_avx2(iters), t = bench_now() - t0;
    if (sink == 12345.0)   /* keeps the loop */
        printf(" ");
    return 2.0 * 12 * (simd >= 16 ? 16 : 8) * (double)iters / t * 1e-9;
}

typedef struct {
    const char *name;
    int C, H, K;
} Layer;

enum { BENCH_MAXL = 16 }; /* layers of BENCH_LAYERS */

/* SimCNN on 28x28: 3x3 convs (BENCH_R), pad 1 (R / 2), stride 1. */
static const Layer layers[] = {
    { "conv1", 1, 28, 32 }, { "conv2", 32, 28, 32 }, { "conv3", 32, 14, 64 },
    { "conv4", 64, 14, 64 }, { "conv5", 64, 7, 128 },
};

/* BENCH_NET=cnn5x5: bench/cnn_vs_torch.py's cnn5x5 on 32x32 (with BENCH_R=5). */
static const Layer cnn5x5[] = {
    { "conv1", 3, 32, 64 }, { "conv2", 64, 32, 64 }, { "conv3", 64, 16, 128 }, { "conv4", 128, 8, 128 },
};

int main(int argc, char **argv)
{
    int simd, reps;
    Jit *jit = bench_start("bench_kernels", argc, argv, 5, &simd, &reps);
    if (!jit)
        return 1;
    char err[512];
    const int N = 128, G = 8, CS = getenv("BENCH_CS") ? atoi(getenv("BENCH_CS")) : 1;
    const int R = getenv("BENCH_R") ? atoi(getenv("BENCH_R")) : 3,
              pad = getenv("BENCH_PAD") ? atoi(getenv("BENCH_PAD")) : R / 2;
    if (CS < 1) {
        fprintf(stderr, "bench_kernels: BENCH_CS must be a positive integer\n");
        return 2;
    }
    if (R < 1 || R % 2 == 0 || R > 7) {
        fprintf(stderr, "bench_kernels: BENCH_R must be 1, 3, 5 or 7\n");
        return 2;
    }
    if (pad < 0 || pad >= R) {
        fprintf(stderr, "bench_kernels: BENCH_PAD must be from 0 to BENCH_R - 1\n");
        return 2;
    }
    const char *net = getenv("BENCH_NET");
    if (net && strcmp(net, "simcnn") && strcmp(net, "cnn5x5")) {
        fprintf(stderr, "bench_kernels: BENCH_NET must be simcnn or cnn5x5\n");
        return 2;
    }
    const Layer *ly = net && !strcmp(net, "cnn5x5") ? cnn5x5 : layers;
    size_t nl = ly == cnn5x5 ? sizeof cnn5x5 / sizeof *cnn5x5 : sizeof layers / sizeof *layers;
    Layer own[BENCH_MAXL];
    char names[BENCH_MAXL][8];
    const char *spec = getenv("BENCH_LAYERS");
    if (spec) {   /* "C:K:H,C:K:H,..": any shapes, named l1, l2, .. */
        nl = 0;
        for (const char *p = spec; *p;) {
            int C, K, H, used = 0;
            if (nl == BENCH_MAXL || sscanf(p, "%d:%d:%d%n", &C, &K, &H, &used) != 3 || C < 1 || K < 1 || H < 1 ||
                C > 4096 || K > 4096 || H > 512 || (p[used] && p[used] != ',')) {
                fprintf(stderr, "bench_kernels: BENCH_LAYERS must be up to %d C:K:H triples, comma-separated\n",
                        BENCH_MAXL);
                return 2;
            }
            snprintf(names[nl], sizeof names[nl], "l%zu", nl + 1);
            own[nl] = (Layer){ names[nl], C, H, K };
            nl++;
            p += used + (p[used] == ',');
        }
        ly = own;
    }
    printf("host %s, simd %d, batch %d, %dx%d kernels, 1 thread, best of %d\n", jit_cpu(jit), simd, N, R, R, reps);
    printf("direct kernels (GFLOP/s of the direct FLOPs):\n");
    printf("%-6s %-26s %10s %10s %10s\n", "layer", "shape", "fwd", "bwd_x", "bwd_w");
    double total_flop = 0, total_t = 0, wino_flop = 0, wino_gemm = 0, wino_t = 0;
    char wino_lines[BENCH_MAXL][160] = { "" };
    for (size_t l = 0; l < nl; l++) {
        int C = ly[l].C, H = ly[l].H, W = H, K = ly[l].K, OH = H + 2 * pad - R + 1, OW = OH;
        size_t nx = (size_t)N * C * H * W, nw = (size_t)K * C * R * R, ny = (size_t)N * K * OH * OW;
        /* the arena: x, w, b, y, dy, dx, dwpart[G], dbpart[G] */
        size_t off[8], sz[8] = { nx, nw, (size_t)K, ny, ny, nx, nw * G, (size_t)K * G }, used = 0;
        for (int i = 0; i < 8; i++)
            off[i] = used, used += (sz[i] * sizeof(float) + 63) / 64 * 64;
        char *base = aligned_alloc(64, used);
        for (size_t i = 0; i < used / sizeof(float); i++)
            ((float *)base)[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
        long nws = k_conv2d_ws(N, C, H, W, K, R, R, 1, pad, OH, OW, simd);
        float *ws = aligned_alloc(64, ((size_t)nws * sizeof(float) + 63) / 64 * 64);
        double shape[] = { N, C, H, W, K, R, R, 1, pad, OH, OW };
        double cf[17] = { (double)off[0], (double)off[1], (double)off[2], (double)off[3] };
        double cx[16] = { (double)off[4], (double)off[1], (double)off[5] };
        double cw[18] = { (double)off[0], (double)off[4], (double)off[6], (double)off[7] };
        memcpy(cf + 4, shape, sizeof shape), cf[15] = 1, cf[16] = simd;   /* kt 1: split by rows only */
        memcpy(cx + 3, shape, sizeof shape), cx[14] = simd;
        memcpy(cw + 4, shape, sizeof shape), cw[15] = G, cw[16] = CS, cw[17] = simd;
        char nf[32], nx_[32], nw_[32];
        snprintf(nf, sizeof nf, "%s_fwd", ly[l].name);
        snprintf(nx_, sizeof nx_, "%s_bwd_x", ly[l].name);
        snprintf(nw_, sizeof nw_, "%s_bwd_w", ly[l].name);
        JitCall calls[3] = {
            { nf, "k_conv2d_fwd", "ppppwiiiiiiiiiiiiilh", cf },
            { nx_, "k_conv2d_bwd_x", "pppwiiiiiiiiiiiilh", cx },
            { nw_, "k_conv2d_bwd_w", "ppppwiiiiiiiiiiiiiilh", cw },
        };
        if (jit_add_calls(jit, calls, 3, err, sizeof err) != 0) {
            fprintf(stderr, "bench_kernels: %s\n", err);
            return 1;
        }
        double flop = 2.0 * N * K * C * R * R * OH * OW, t[3];
        t[0] = bench_best((JitFn)jit_lookup(jit, nf), base, ws, N * OH, reps);   /* forward units: output rows */
        t[1] = bench_best((JitFn)jit_lookup(jit, nx_), base, ws, N, reps);
        t[2] = bench_best((JitFn)jit_lookup(jit, nw_), base, ws, G * CS, reps);
        char shp[40];
        snprintf(shp, sizeof shp, "%d->%d %dx%d", C, K, H, W);
        printf("%-6s %-26s", ly[l].name, shp);
        for (int i = 0; i < 3; i++)
            printf(" %6.1f GF/s", flop / t[i] * 1e-9);
        printf("   (%.2f %.2f %.2f ms)\n", t[0] * 1e3, t[1] * 1e3, t[2] * 1e3);
        total_flop += 3 * flop, total_t += t[0] + t[1] + t[2];
        /* as mwtc runs them: Winograd where codegen picks it (cg_conv.c use_wino), else the direct kernel */
        const char *we = getenv("MWTC_WINOGRAD");
        int woff = we && !strcmp(we, "off");
        int f25 = R == 5 && !woff && k_wino25_ok(C, H, W, K, R, R, 1, pad, OH, OW);
        int f4p = R == 3 && !woff && k_wino4_ok(C, H, W, K, R, R, 1, pad, OH, OW); /* F(4x4) at padding 0 or 2 */
        int wf = f25 || f4p || (!woff && k_wino_ok(C, H, W, K, R, R, 1, pad, OH, OW));
        int two = !(we && !strcmp(we, "2x2"));
        int pick = wf && !f25 && !f4p ? k_wino_bwd_w_pick(C, H, W, K, simd, two) : 0;   /* as cg_conv.c */
        int ww = wf && (f25 ? k_wino25_bwd_w_ok(C, H, W, K, pad) : f4p ? k_wino4_bwd_w_ok(C, H, W, K, pad) : pick != 0);
        int f4w = f4p || pick == 4;
        /* as cg_conv.c picks for the forward and data gradient */
        int f4 = !f25 && (f4p || (two && k_wino4_pays(W)));
        const char *wk = f25 ? "k_conv2d_wino25" : f4 ? "k_conv2d_wino4" : "k_conv2d_wino",
                   *wkw = f25 ? "k_conv2d_wino25_bwd_w" : f4w ? "k_conv2d_wino4_bwd_w" : "k_conv2d_wino_bwd_w",
                   *wname = f25 ? "wino25" : f4 ? "wino4" : "wino";
        double tw[3] = { t[0], t[1], t[2] };
        if (wf) {
            double sh[5] = { N, C, H, W, K }, shx[5] = { N, K, OH, OW, C };
            double wcf[16] = { (double)off[0], (double)off[1], (double)off[3] };
            double wcx[16] = { (double)off[4], (double)off[1], (double)off[5] };
            double wcw[13] = { (double)off[0], (double)off[4], (double)off[6] };
            int o = f25 || f4, ow = f25 || f4w; /* F(2x2, 5x5) and F(4x4) take the padding after K */
            memcpy(wcf + 3, sh, sizeof sh), wcf[8] = pad, wcf[8 + o] = 0, wcf[9 + o] = 0, wcf[10 + o] = 0;
            wcf[11 + o] = simd, wcf[12 + o] = 1;
            memcpy(wcx + 3, shx, sizeof shx), wcx[8] = R - 1 - pad, wcx[8 + o] = 0, wcx[9 + o] = 0, wcx[10 + o] = 1;
            wcx[11 + o] = simd, wcx[12 + o] = 1;
            memcpy(wcw + 3, sh, sizeof sh), wcw[8] = pad, wcw[8 + ow] = G, wcw[9 + ow] = CS, wcw[10 + ow] = simd;
            char wn[3][32];
            snprintf(wn[0], sizeof wn[0], "%s_wfwd", ly[l].name);
            snprintf(wn[1], sizeof wn[1], "%s_wbwd_x", ly[l].name);
            snprintf(wn[2], sizeof wn[2], "%s_wbwd_w", ly[l].name);
            JitCall wc[3] = {
                { wn[0], wk, o ? "ppnnnnnnpwiiiiiifiiiilh" : "ppnnnnnnpwiiiiifiiiilh", wcf },
                { wn[1], wk, o ? "ppnnnnnnpwiiiiiifiiiilh" : "ppnnnnnnpwiiiiifiiiilh", wcx },
                { wn[2], wkw, ow ? "pppnwiiiiiiiiilh" : "pppnwiiiiiiiilh", wcw },
            };
            if (jit_add_calls(jit, wc, ww ? 3 : 2, err, sizeof err) != 0) {
                fprintf(stderr, "bench_kernels: %s\n", err);
                return 1;
            }
            tw[0] = bench_best((JitFn)jit_lookup(jit, wn[0]), base, ws, N, reps);
            tw[1] = bench_best((JitFn)jit_lookup(jit, wn[1]), base, ws, N, reps);
            if (ww)
                tw[2] = bench_best((JitFn)jit_lookup(jit, wn[2]), base, ws, G * CS, reps);
            /* the arithmetic the Winograd GEMMs do, per tile and channel pair: F(4x4)
             * 36 products (a tile: 4x4 outputs), F(2x2) 16 (2x2), F(2x2,5x5) 36 (2x2) */
            double g2 = 2.0 * (f25 ? 36 : 16) * K * C * N * (double)((OH + 1) / 2) * ((OW + 1) / 2);
            double g4 = 2.0 * 36 * K * C * N * (double)((OH + 3) / 4) * ((OW + 3) / 4);
            wino_gemm += (f4 ? g4 : g2) * 2 + (ww ? (f4w ? g4 : g2) : flop);
        } else {
            wino_gemm += 3 * flop;
        }
        snprintf(wino_lines[l], sizeof wino_lines[l], "%-6s %-26s %6.1f GF/s %6.1f GF/s %6.1f GF/s   (%s %s %s)",
                 ly[l].name, shp, flop / tw[0] * 1e-9, flop / tw[1] * 1e-9, flop / tw[2] * 1e-9,
                 wf ? wname : "direct", wf ? wname : "direct", !ww ? "direct" : f4w ? "wino4" : wname);
        wino_flop += 3 * flop, wino_t += tw[0] + tw[1] + tw[2];
        free(base), free(ws);
    }
    double peak = peak_gflops(simd), conv = total_flop / total_t * 1e-9;
    printf("all conv layers, fwd + bwd: %.1f ms per batch, %.1f GFLOP/s\n", total_t * 1e3, conv);
    printf("FP32 peak of this core (register-resident FMA loop, %d-float vectors): %.1f GFLOP/s; the convs reach "
           "%.0f%% of it\n", simd >= 16 ? 16 : 8, peak, 100 * conv / peak);
    printf("as mwtc runs them, Winograd where it applies: wino4 F(4x4,3x3), wino F(2x2,3x3), wino25 F(2x2,5x5)\n"
           "(GFLOP/s of the direct FLOPs, so above the peak is possible: Winograd multiplies 4x, 2.25x, 2.8x less):\n");
    for (size_t l = 0; l < nl; l++)
        printf("%s\n", wino_lines[l]);
    printf("all conv layers, fwd + bwd: %.1f ms per batch (direct %.1f ms, x%.2f), %.1f GFLOP/s of direct FLOPs;\n"
           "the arithmetic actually done (Winograd GEMMs, direct kernels) at %.1f GFLOP/s, %.0f%% of the peak\n",
           wino_t * 1e3, total_t * 1e3, total_t / wino_t, wino_flop / wino_t * 1e-9, wino_gemm / wino_t * 1e-9,
           100 * wino_gemm / wino_t * 1e-9 / peak);
    /* SimCNN's linear layers: x [B,F], w [O,F]; bwd_w over all output rows. */
    static const int lin[][2] = { { 1152, 256 }, { 256, 10 } };
    for (int l = 0; l < 2; l++) {
        int F = lin[l][0], O = lin[l][1], B = N;
        size_t off[7], sz[7] = { (size_t)B * F, (size_t)O * F, (size_t)O, (size_t)B * O, (size_t)B * O, (size_t)B * F,
                                 (size_t)O * F },
                       used = 0;
        for (int i = 0; i < 7; i++)
            off[i] = used, used += (sz[i] * sizeof(float) + 63) / 64 * 64;
        char *base = aligned_alloc(64, used);
        for (size_t i = 0; i < used / sizeof(float); i++)
            ((float *)base)[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
        float *ws = aligned_alloc(64, ((size_t)k_linear_ws(B, F, O, simd) * sizeof(float) + 63) / 64 * 64);
        double cf[] = { (double)off[0], (double)off[1], (double)off[2], (double)off[3], B, F, O, 1, simd };
        double cx[] = { (double)off[4], (double)off[1], (double)off[5], B, F, O, simd };
        double cw[] = { (double)off[0], (double)off[4], (double)off[6], (double)off[2], B, F, O, simd };
        char nf[32], nx_[32], nw_[32];
        snprintf(nf, sizeof nf, "lin%d_fwd", l), snprintf(nx_, sizeof nx_, "lin%d_bwd_x", l);
        snprintf(nw_, sizeof nw_, "lin%d_bwd_w", l);
        JitCall calls[3] = {
            { nf, "k_linear_fwd", "ppppwiiiiilh", cf },
            { nx_, "k_linear_bwd_x", "pppwiiiilh", cx },
            { nw_, "k_linear_bwd_w", "ppppwiiiilh", cw },
        };
        if (jit_add_calls(jit, calls, 3, err, sizeof err) != 0) {
            fprintf(stderr, "bench_kernels: %s\n", err);
            return 1;
        }
        double flop = 2.0 * B * F * O, t[3];
        t[0] = bench_best((JitFn)jit_lookup(jit, nf), base, ws, B, reps);
        t[1] = bench_best((JitFn)jit_lookup(jit, nx_), base, ws, B, reps);
        t[2] = bench_best((JitFn)jit_lookup(jit, nw_), base, ws, O, reps);
        char shp[40];
        snprintf(shp, sizeof shp, "%d->%d", F, O);
        printf("linear %-26s", shp);
        for (int i = 0; i < 3; i++)
            printf(" %6.1f GF/s", flop / t[i] * 1e-9);
        printf("   (%.3f %.3f %.3f ms)\n", t[0] * 1e3, t[1] * 1e3, t[2] * 1e3);
        free(base), free(ws);
    }
    /* The memory-bound kernels at conv2's output, [128, 32, 28, 28]: ms and
     * GB/s of the bytes they must move at least. */
    {
        const int C = 32, HW = 784, n = N * C * HW, P = N * C;
        size_t off[10], used = 0, sz[10] = { (size_t)n, (size_t)n, (size_t)n, (size_t)n, (size_t)n / 4, (size_t)C,
                                             (size_t)C, (size_t)2 * C, (size_t)C, (size_t)C };
        for (int i = 0; i < 10; i++)
            off[i] = used, used += (sz[i] * sizeof(float) + 63) / 64 * 64;
        char *base = aligned_alloc(64, used);
        for (size_t i = 0; i < used / sizeof(float); i++)
            ((float *)base)[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
        /* x y dy dx pooled gamma beta stats run_mean run_var */
        double cbn[] = { (double)off[0], (double)off[5], (double)off[6], (double)off[1], (double)off[7],
                         (double)off[8], (double)off[9], N, C, HW, 0.1, 1e-5, 0 };
        double cbb[] = { (double)off[0], (double)off[2], (double)off[5], (double)off[7], (double)off[3],
                         (double)off[8], (double)off[9], N, C, HW, 0 };
        double crf[] = { (double)off[0], (double)off[1] }, crb[] = { (double)off[1], (double)off[2], (double)off[3] };
        double cmf[] = { (double)off[0], (double)off[4], 28, 28, 2, 2, 14, 14 };
        double cmb[] = { (double)off[0], (double)off[4], (double)off[3], 28, 28, 2, 2, 14, 14 };
        JitCall calls[6] = {
            { "m_bn_f", "k_bn_fwd_train", "pppppppiiiffilh", cbn }, { "m_bn_b", "k_bn_bwd", "ppppnpppiiiilh", cbb },
            { "m_relu_f", "k_relu_fwd", "pplh", crf },             { "m_relu_b", "k_relu_bwd", "ppplh", crb },
            { "m_mp_f", "k_maxpool_fwd", "ppiiiiiilh", cmf },      { "m_mp_b", "k_maxpool_bwd", "pppiiiiiilh", cmb },
        };
        if (jit_add_calls(jit, calls, 6, err, sizeof err) != 0) {
            fprintf(stderr, "bench_kernels: %s\n", err);
            return 1;
        }
        int units[6] = { C, C, n, n, P, P };
        double bytes[6] = { 2.0 * n * 4, 3.0 * n * 4, 2.0 * n * 4, 3.0 * n * 4, 1.25 * n * 4, 2.25 * n * 4 };
        printf("[128,32,28,28]:");
        for (int i = 0; i < 6; i++) {
            double t = bench_best((JitFn)jit_lookup(jit, calls[i].name), base, NULL, units[i], reps);
            printf(" %s %.2f ms (%.0f GB/s)", calls[i].kernel + 2, t * 1e3, bytes[i] / t * 1e-9);
        }
        printf("\n");
        free(base);
    }
    jit_destroy(jit);
    return 0;
}
