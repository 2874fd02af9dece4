/* bench_infer: what issue 6 asks of inference and compilation, for one
 * model, printed as one JSON object (bench/infer_vs_torch prints it beside
 * PyTorch's figures):
 *   - compile_cold_s / compile_cached_s: the training step and inference
 *     graph of the file's train statement, compiled with an empty disk cache,
 *     then again (a second run of the same model);
 *   - b256_images_per_s: inference on the test images at batch 256 (normalized
 *     once beforehand, as the PyTorch peer does), forward passes only, the
 *     best of three passes;
 *   - b1_latency_ms: one image at a time, the median over --latency images;
 *   - with --module C,... and a trained modular checkpoint (--ckpt, with the
 *     kernel frequencies `mwtc modularize` stored): the module of those classes,
 *     sliced and compiled on its own with generators dropped, at batch 256 and
 *     batch 1, and its channels per conv (module_channels) so that the peer
 *     can build the same network;
 *   - peak_rss_mb: this process's peak resident memory;
 *   - with --batch B, the throughput at batch B instead (bB_images_per_s):
 *     how the kernels chosen for a few images fare between batch 1 and 256.
 *
 *   bench_infer FILE.mwt [--ckpt CKPT] [--threads T] [--images N] [--latency N]
 *               [--module C,...] [--threshold T] [--batch B]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "driver.h"
#include "mwt_modules.h"
#include "rt_ckpt.h"
#include "rt_progress.h"
#include "run_train.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "bench_infer: %s: %s\n", what, err);
    exit(1);
}

/* images/s over n normalized images x [n][img] at the graph's batch. */
static double throughput(RunModel *m, const float *x, long long n, long long img)
{
    RunGraph *rg = &m->eval;
    long long B = rg->g->batch;
    float *in = run_images(m, rg);
    memcpy(in, x, sizeof(float) * (size_t)(B * img));
    run_graph(m, rg);   /* warm */
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {   /* the best of three passes, as the PyTorch peer does */
        double t0 = rt_clock();
        for (long long at = 0; at < n; at += B) {
            long long k = n - at < B ? n - at : B;
            memcpy(in, x + at * img, sizeof(float) * (size_t)(k * img));
            run_graph(m, rg);
        }
        double r = (double)n / (rt_clock() - t0);
        best = r > best ? r : best;
    }
    return best;
}

/* Median milliseconds of one image through a batch-1 graph. */
static double latency(RunModel *m, const float *x, long long n, long long img)
{
    RunGraph *rg = &m->eval;
    float *in = run_images(m, rg);
    double *t = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < 20; i++) {   /* warm */
        memcpy(in, x, sizeof(float) * (size_t)img);
        run_graph(m, rg);
    }
    for (long long i = 0; i < n; i++) {
        double t0 = rt_clock();
        memcpy(in, x + i * img, sizeof(float) * (size_t)img);
        run_graph(m, rg);
        t[i] = rt_clock() - t0;
    }
    qsort(t, (size_t)n, sizeof(double), cmp_double);
    double med = t[n / 2] * 1e3;
    free(t);
    return med;
}

/* The module of `classes` from the checkpoint's frequencies (no residual
 * unions: for models without residual blocks, as SimCNN). */
static unsigned char *module_keep(const IrGraph *g, const char *ckpt, const int *classes, int n, int C, double T)
{
    RtCkpt c = { 0 };
    char err[512];
    if (rt_ckpt_load(&c, ckpt, err, sizeof err) != 0)
        die(ckpt, err);
    const RtCkptEntry *e = rt_ckpt_find(&c, "mwt/freq");
    if (!e)
        die(ckpt, "no kernel frequencies in it: run `mwtc modularize` on it first");
    ModStats s = { .classes = C, .layers = g->masks.n };
    s.layer_off = calloc((size_t)s.layers + 1, sizeof(long long));
    s.group = calloc((size_t)s.layers + 1, sizeof(int));
    for (int l = 0; l < s.layers; l++) {
        s.layer_off[l + 1] = s.layer_off[l] + ((const IrValue *)g->masks.v[l])->d[1];
        s.group[l] = l;
    }
    s.kernels = s.layer_off[s.layers];
    if (e->rank != 2 || e->dims[0] != C || e->dims[1] != s.kernels)
        die(ckpt, "its kernel frequencies do not fit this model");
    s.freq = malloc(sizeof(double) * (size_t)(C * s.kernels));
    for (long long i = 0; i < C * s.kernels; i++)
        s.freq[i] = ((const float *)e->data)[i];
    long long cnt[256];
    s.count = cnt;
    unsigned char *keep = malloc((size_t)s.kernels);
    mod_module(&s, classes, n, T, keep);
    free(s.layer_off), free(s.group), free(s.freq);
    rt_ckpt_free(&c);
    return keep;
}

/* The options live outside main's frame: the front end's out-of-memory
 * longjmp lands in main. */
static const char *file, *ckpt, *module;
static int threads = 2, batch = 256;
static long long nimg = 10000, nlat = 1000;
static double threshold = 0.9;

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ckpt") && i + 1 < argc)
            ckpt = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--images") && i + 1 < argc)
            nimg = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--latency") && i + 1 < argc)
            nlat = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--module") && i + 1 < argc)
            module = argv[++i];
        else if (!strcmp(argv[i], "--threshold") && i + 1 < argc)
            threshold = atof(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc && atoi(argv[i + 1]) > 0)
            batch = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !file)
            file = argv[i];
        else {
            fprintf(stderr, "usage: bench_infer FILE.mwt [--ckpt CKPT] [--threads T] [--images N] [--latency N] "
                            "[--module C,...] [--threshold T] [--batch B]\n");
            return 2;
        }
    }
    if (!file) {
        fprintf(stderr, "bench_infer: no .mwt file given\n");
        return 2;
    }
    if (module && !ckpt)
        die("--module", "needs --ckpt, a trained modular checkpoint");

    Compilation c = { 0 };
    arena_init(&c.arena, &c.oom);
    diag_init(&c.diag, stderr);
    if (setjmp(c.oom))
        die(file, "out of memory");
    ImportPaths paths = { getenv("MWT_PATH"), driver_stdlib_dir(&c.arena, argv[0]) };
    if (driver_front_end(&c, file, &paths, 1) > 0 || c.checked.trains.n == 0)
        die(file, "does not check, or has no train statement");
    const TrainInfo *t = c.checked.trains.v[0];
    Arena *a = &c.arena;
    char err[1024];

    /* compile: an empty cache, then the same model again */
    char dir[] = "/tmp/mwtc-bench-cache-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp", "cannot make a cache directory");
    setenv("MWTC_CACHE_DIR", dir, 1);
    unsetenv("MWTC_CACHE");
    double cold = 0, cached = 0;
    for (int k = 0; k < 2; k++) {
        RunModel m;
        if (run_model_build(&m, a, t->model, t, 256, threads, 0, err, sizeof err) != 0)
            die("compile", err);
        *(k ? &cached : &cold) = m.compile_seconds;
        run_model_free(&m);
    }
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    if (system(rm) != 0)
        fprintf(stderr, "bench_infer: could not remove %s\n", dir);
    unsetenv("MWTC_CACHE_DIR");

    /* the test images, normalized once */
    RtDataset ds;
    RtNormalize norm;
    RtAugment aug;
    if (run_data_load(t->data, threads, &ds, &norm, &aug, err, sizeof err) != 0)
        die("data", err);
    if (nimg > (long long)ds.n_test)
        nimg = (long long)ds.n_test;
    if (nlat > nimg)
        nlat = nimg;
    long long img = (long long)ds.channels * ds.height * ds.width;
    float *x = malloc(sizeof(float) * (size_t)(nimg * img));
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)nimg);
    uint32_t *idx = malloc(sizeof(uint32_t) * (size_t)nimg);
    for (long long i = 0; i < nimg; i++)
        idx[i] = (uint32_t)i;
    for (long long at = 0; at < nimg; at += 1000) {
        int k = (int)(nimg - at < 1000 ? nimg - at : 1000);
        rt_data_batch(&ds, 1, idx + at, k, &norm, NULL, NULL, x + at * img, lab + at);
    }

    RunModel mB, m1;
    RunMeta meta;
    if (run_model_build(&mB, a, t->model, NULL, batch, threads, 0, err, sizeof err) != 0 ||
        run_model_build(&m1, a, t->model, NULL, 1, threads, 0, err, sizeof err) != 0)
        die("build", err);
    RtRng rng;
    rt_rng_seed(&rng, 1);
    run_model_init(&mB, &rng, t->mask_init);
    run_model_init(&m1, &rng, t->mask_init);
    if (ckpt && (run_ckpt_load(&mB, ckpt, &meta, NULL, 0, err, sizeof err) != 0 ||
                 run_ckpt_load(&m1, ckpt, &meta, NULL, 0, err, sizeof err) != 0))
        die(ckpt, err);
    double tB = throughput(&mB, x, nimg, img), b1 = latency(&m1, x, nlat, img);

    printf("{ \"model\": \"%s\", \"threads\": %d, \"images\": %lld, \"compile_cold_s\": %.3f, "
           "\"compile_cached_s\": %.4f,\n  \"b%d_images_per_s\": %.1f, \"b1_latency_ms\": %.4f",
           t->model->name, threads, nimg, cold, cached, batch, tB, b1);
    if (module) {
        int classes[64], n = 0;
        for (const char *s = module; *s && n < 64;) {
            classes[n++] = atoi(s);
            while (*s && *s != ',')
                s++;
            if (*s == ',')
                s++;
        }
        unsigned char *keep = module_keep(mB.eval.g, ckpt, classes, n, t->data->classes, threshold);
        RunModel modB, mod1;
        Slice sB, s1;
        if (run_module_build(&modB, &sB, a, &mB, keep, 0, 0, 0, err, sizeof err) != 0 ||
            run_module_build(&mod1, &s1, a, &m1, keep, 0, 0, threads == 1 ? &(const RunEmitted){ 0 } : NULL, err,
                             sizeof err) != 0)   /* as emit's */
            die("module", err);
        double mtB = throughput(&modB, x, nimg, img), mb1 = latency(&mod1, x, nlat, img);
        printf(",\n  \"module\": \"%s\", \"module_b%d_images_per_s\": %.1f, \"module_b1_latency_ms\": %.4f, "
               "\"module_channels\": [",
               module, batch, mtB, mb1);
        int first = 1;
        for (int i = 0; i < sB.g->nodes.n; i++) {
            const IrNode *nd = sB.g->nodes.v[i];
            if (nd->op == IR_CONV2D) {
                printf("%s%lld", first ? "" : ", ", nd->out->d[1]);
                first = 0;
            }
        }
        printf("]");
        run_model_free(&modB), run_model_free(&mod1);
        free(keep);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf(",\n  \"peak_rss_mb\": %.1f }\n", (double)ru.ru_maxrss / 1024.0);
    run_model_free(&mB), run_model_free(&m1);
    free(x), free(lab), free(idx);
    rt_data_free(&ds);
    arena_free(&c.arena);
    return 0;
}
