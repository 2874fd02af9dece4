/* emit: a module written as an object file and a header, compiled into a C
 * program with the system's C compiler and nothing but libc and libm
 * (tests/aot/aot_main.c), gives the scores the JIT gives: the modular model
 * with every kernel outside the module switched off, to 1e-4, for a module
 * of two classes with its generators kept and dropped (and compiled for the
 * baseline x86-64 rather than this CPU), for a reuse's module with its
 * fine-tuned head and for a model without masks; and a module's
 * NAME_probability gives its calibrations' probabilities, one class's and
 * two classes'. */
#include <math.h>
#include <pthread.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "aot.h"
#include "k_kernels.h"
#include "mwt_test.h"
#include "rt_progress.h"
#include "run_mz.h"

static const char *src =
    "dataset d = synthetic(n = 512, test = 128, seed = 5) { classes = 4  shape = [2, 12, 12]\n"
    "    normalize = [(0.4, 0.2), (0.5, 0.3)] }\n"
    "model m : [2, 12, 12] -> [4] {\n"
    "    conv(8) batchnorm relu\n"
    "    modular { conv(8) batchnorm relu maxpool(2) residual { conv(8) batchnorm relu conv(8) batchnorm } relu }\n"
    "    residual(shortcut = { conv(12, k = 1) batchnorm }) { conv(12) batchnorm mask } relu\n"
    "    flatten linear(16) relu linear(4) }\n"
    "train m on d { epochs = 2  batch = 32  optimizer = sgd(lr = 0.05, momentum = 0.9, nesterov = true)\n"
    "    loss = cross_entropy + 0.5 * cohesion + 3 * coupling  seed = 4  mask_init = kaiming_normal }\n"
    "modularize m { threshold = 0.9 }\n"
    "reuse m as pair { classes = [3, 1]  epochs = 1 }\n";

enum { N = 64 };

/* The logits of test images [0, N) through m (built at batch N). */
static void jit_scores(RunModel *m, const RtDataset *ds, const RtNormalize *norm, float *out, int K)
{
    uint32_t idx[N];
    int32_t lab[N];
    for (int i = 0; i < N; i++)
        idx[i] = (uint32_t)i;
    rt_data_batch(ds, 1, idx, N, norm, NULL, NULL, run_images(m, &m->eval), lab);
    run_graph(m, &m->eval);
    memcpy(out, m->base + m->eval.plan->off[m->eval.g->logits->id], sizeof(float) * N * (size_t)K);
}

/* Emits (run_emit) classes[n] of the checkpoint as NAME.o, builds
 * aot_main against it, runs it on test images [0, N) as the loader reads
 * them (not normalized) and puts its scores in got[N * n]: 0. Or 1 when
 * NAME_run said this CPU lacks what the object was compiled for. */
static int emit_and_run_fn(TestComp *t, const ModularizeInfo *mi, const ReuseInfo *ru, const char *ck,
                           const int *classes, int n, const char *name, const char *cpu, const RtDataset *ds,
                           int probability, float *got)
{
    char obj[512], hdr[512], err[1024];
    snprintf(obj, sizeof obj, "%s", tc_tmp_path(name));
    strcat(obj, ".o");
    snprintf(hdr, sizeof hdr, "%s", obj);
    hdr[strlen(hdr) - 1] = 'h';
    remove(obj), remove(hdr);
    const TrainInfo *tr = t->c.checked.trains.v[0];
    RunOptions ro = { .ckpt = ck, .progress = RT_PROGRESS_QUIET, .seed = -1 };
    RunEmitResult r;
    if (run_emit(&t->c.arena, tr, mi, ru, &ro, -1, classes, n, name, cpu, obj, hdr, &r, err, sizeof err) != 0)
        fail_msg("emit %s: %s", name, err);
    assert_int_equal(r.input, (long long)rt_data_image_size(ds));   /* the model's input: the dataset's images */
    assert_int_equal(r.bulk, K_AOT_BULK);   /* aot_main's calls use both graphs */

    /* the images as a user hands them over: pixels / 255 */
    size_t img = rt_data_image_size(ds);
    float *x = malloc(sizeof(float) * img * N);
    for (size_t i = 0; i < img * N; i++)
        x[i] = (float)ds->test_x[i] / 255.0f;
    char in[512], out[1024], exe[1024], cmd[8192], up[64], dir[512], outsize[128];
    snprintf(dir, sizeof dir, "%s", obj);
    *strrchr(dir, '/') = 0;   /* where NAME.h is */
    snprintf(in, sizeof in, "%s", tc_tmp_path("aot_images.bin"));
    snprintf(out, sizeof out, "%s.scores", obj);
    snprintf(exe, sizeof exe, "%s.exe", obj);
    FILE *f = fopen(in, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(x, sizeof(float) * img, N, f), N);
    fclose(f);
    free(x);
    for (size_t i = 0; i <= strlen(name); i++)
        up[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
    snprintf(outsize, sizeof outsize, "%s_OUTPUT_SIZE", up);   /* a score or a probability a class */
    /* libc (with its threads) and libm only: a symbol of LLVM or of mwtc would not link */
    snprintf(cmd, sizeof cmd,
             "'%s' -std=c17 -O1 -pthread -I'%s' -DMOD_H='\"%s.h\"' -DRUN=%s_%s -DIN=%s_INPUT_SIZE -DOUT=%s "
             "'%s' '%s' -lm -o '%s' && '%s' '%s' '%s' %d",
             MWTC_TEST_CC, dir, name, name, probability ? "probability" : "run", up,
             outsize, tc_source_path("tests/aot/aot_main.c"), obj, exe, exe,
             in, out, N);
    int rc = system(cmd);
    if (WIFEXITED(rc) && WEXITSTATUS(rc) == 10)
        return 1;
    if (rc != 0)
        fail_msg("%s: exit status %d", cmd, rc);
    f = fopen(out, "rb");
    assert_non_null(f);
    assert_int_equal(fread(got, sizeof(float) * (size_t)n, N, f), N);
    fclose(f);
    return 0;
}

/* emit_and_run_fn for NAME_run's scores. */
static int emit_and_run(TestComp *t, const ModularizeInfo *mi, const ReuseInfo *ru, const char *ck, const int *classes,
                        int n, const char *name, const char *cpu, const RtDataset *ds, float *got)
{
    return emit_and_run_fn(t, mi, ru, ck, classes, n, name, cpu, ds, 0, got);
}

static double worst_diff(const float *want, int K, const int *sel, const float *got, int n)
{
    double worst = 0, biggest = 0;
    for (int i = 0; i < N * K; i++)
        biggest = fmax(biggest, fabs((double)want[i]));
    assert_true(biggest > 1e-2);   /* scores worth comparing */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < n; j++)
            worst = fmax(worst, fabs((double)want[i * K + sel[j]] - got[i * n + j]));
    return worst;
}

/* text trained and modularized into the checkpoint ckpt_name (its path in
 * ck[512]), opened as eval --module opens it (*z, its frequencies read). */
static TestComp *trained(const char *name, const char *text, const char *ckpt_name, char *ck, Mz **z, RunMeta *meta)
{
    char err[1024];
    ModReport rep;
    TestComp *t = tc_train_modular(name, text, ckpt_name, 0, ck, 512, &rep);
    RunOptions ro = { .ckpt = ck, .progress = RT_PROGRESS_QUIET, .seed = -1 };
    *z = NULL;
    if (mz_open(z, &t->c.arena, t->c.checked.trains.v[0], ck, 2, meta, err, sizeof err) != 0 ||
        mz_frequencies(*z, &ro, 1, err, sizeof err) != 0)
        fail_msg("%s", err);
    return t;
}

static void test_emitted_module(void **st)
{
    (void)st;
    char ck[512], err[1024];
    RunMeta meta;
    Mz *z;
    TestComp *t = trained("aot.mwt", src, "aot.ckpt", ck, &z, &meta);
    const TrainInfo *tr = t->c.checked.trains.v[0];
    Arena *a = &t->c.arena;
    ModularizeInfo mi = *(const ModularizeInfo *)t->c.checked.modularizes.v[0];
    RunOptions ro = { .ckpt = ck, .progress = RT_PROGRESS_QUIET, .seed = -1 };

    /* the module of classes 2 and 0, as eval --module takes it; the JIT's
     * scores: the modular model with the other kernels switched off */
    int classes[2] = { 2, 0 };
    unsigned char keep[64];
    assert_true(z->st.kernels <= 64);
    mod_module(&z->st, classes, 2, 0.9, keep);
    long long kept = mod_kept(keep, z->st.kernels);
    print_message("module of classes 2, 0: %lld of %lld kernels\n", kept, z->st.kernels);
    assert_true(kept > 0 && kept < z->st.kernels);   /* a real slice, not the whole model */
    RunModel full;
    if (run_model_build(&full, a, tr->model, NULL, N, 2, 0, err, sizeof err) != 0 ||
        run_ckpt_load(&full, ck, &meta, NULL, 0, err, sizeof err) != 0)
        fail_msg("%s", err);
    for (int gen = 1; gen >= 0; gen--) {
        float want[N * 4], got[N * 2];
        run_model_set_module(&full, keep, gen);
        jit_scores(&full, &z->ds, &z->norm, want, 4);
        mi.keep_generators = gen;
        assert_int_equal(emit_and_run(t, &mi, NULL, ck, classes, 2, gen ? "mod_kept" : "mod_dropped", NULL, &z->ds, got), 0);
        double worst = worst_diff(want, 4, classes, got, 2);
        print_message("generators %s: max |emitted - JIT| %.3g\n", gen ? "kept" : "dropped", worst);
        assert_true(worst <= 1e-4);
        if (gen) {   /* for the baseline x86-64 (SSE2, no FMA): other roundings, the same scores to 1e-4 */
            assert_int_equal(emit_and_run(t, &mi, NULL, ck, classes, 2, "mod_base", "x86-64", &z->ds, got), 0);
            worst = worst_diff(want, 4, classes, got, 2);
            print_message("compiled for x86-64: max |emitted - JIT| %.3g\n", worst);
            assert_true(worst <= 1e-4);
#if defined(__x86_64__)
            /* for AVX-512: on a CPU without it, -2 from NAME_run, not an illegal instruction */
            int v4 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                     __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                     __builtin_cpu_supports("avx512vl");
            int refused = emit_and_run(t, &mi, NULL, ck, classes, 2, "mod_v4", "x86-64-v4", &z->ds, got);
            print_message("compiled for x86-64-v4 on a CPU %s AVX-512: %s\n", v4 ? "with" : "without",
                          refused ? "NAME_run returned -2" : "it ran");
            assert_int_equal(refused, !v4);
            if (!refused)
                assert_true(worst_diff(want, 4, classes, got, 2) <= 1e-4);
#endif
        }
    }

    /* NAME_probability is, for each class of the module, the calibration
     * modularize fits (on the same training images, by mod_calib_fit) of
     * that class on the module's logits, as mod_calib_score gives it on the
     * JIT's: for a module of one class, and of two (2, 0: not in order) */
    long long ncal;
    uint32_t *idx = mz_calib_idx(z, &ncal);
    float *cl = malloc(sizeof(float) * 4 * (size_t)ncal);
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)ncal);
    unsigned char *y = malloc((size_t)ncal);
    assert_true(idx && cl && lab && y && ncal > 100);
    int one[1] = { 1 };
    for (int m = 0; m < 2; m++) {
        const int *cls = m ? classes : one;
        int nc = m ? 2 : 1;
        unsigned char k1[64];
        mod_module(&z->st, cls, nc, 0.9, k1);
        run_model_set_module(&full, k1, 1);
        assert_int_equal(mz_forward(z, &full, 0, idx, ncal, cl, NULL, NULL, lab, NULL, 0), 0);
        float lt[N * 4], p[N * 2];
        jit_scores(&full, &z->ds, &z->norm, lt, 4);
        mi.keep_generators = 1;
        assert_int_equal(emit_and_run_fn(t, &mi, NULL, ck, cls, nc, m ? "two" : "one", NULL, &z->ds, 1, p), 0);
        for (int j = 0; j < nc; j++) {
            for (long long i = 0; i < ncal; i++)
                y[i] = lab[i] == cls[j];
            ModCalib cal;
            mod_calib_fit(&cal, cl, y, ncal, 4, cls[j]);
            double worst = 0, lo = 1, hi = 0;
            for (int i = 0; i < N; i++) {
                double want = mod_calib_score(&cal, lt + i * 4), got = p[i * nc + j];
                worst = fmax(worst, fabs(want - got));
                lo = fmin(lo, got), hi = fmax(hi, got);
            }
            print_message("module of %d class%s, class %d: max |emitted - JIT| probability %.3g, from %.3f to %.3f\n",
                          nc, nc > 1 ? "es" : "", cls[j], worst, lo, hi);
            assert_true(worst <= 1e-4);
            assert_true(lo < 0.5 && hi > 0.5);   /* it says yes and no */
        }
    }
    free(idx), free(cl), free(lab), free(y);
    run_model_free(&full);
    /* the header declares it, for both */
    for (int m = 0; m < 2; m++) {
        FILE *hf = fopen(tc_tmp_path(m ? "two.h" : "one.h"), "r");
        assert_non_null(hf);
        char line[512];
        int prob = 0;
        while (fgets(line, sizeof line, hf))
            prob |= strstr(line, "_probability(const float *images, float *p, int n);") != NULL;
        fclose(hf);
        assert_true(prob);
    }

    /* a reuse's checkpoint: its module and fine-tuned head, scores in the
     * order asked (1, 3: the head's second output first) */
    const ReuseInfo *ru = t->c.checked.reuses.v[0];
    char ck_out[512];
    snprintf(ck_out, sizeof ck_out, "%s", tc_tmp_path("aot_pair.ckpt"));
    RunResult res;
    double krr;
    RunOptions rro = { .progress = RT_PROGRESS_QUIET, .seed = -1 };
    if (run_reuse(a, tr, &mi, ru, &rro, ck, ck_out, &res, &krr, err, sizeof err) != 0)
        fail_msg("reuse: %s", err);
    RunModel head;
    if (run_model_build(&head, a, run_head_net(a, tr->model, ru->name, 2), NULL, N, 2, 0, err, sizeof err) != 0 ||
        run_ckpt_load(&head, ck_out, &meta, NULL, 0, err, sizeof err) != 0)
        fail_msg("%s", err);
    float want[N * 2], got[N * 2];
    jit_scores(&head, &z->ds, &z->norm, want, 2);
    int asked[2] = { 1, 3 }, sel[2] = { 1, 0 };
    assert_int_equal(emit_and_run(t, NULL, ru, ck_out, asked, 2, "pair", NULL, &z->ds, got), 0);
    double worst = worst_diff(want, 2, sel, got, 2);
    print_message("reuse (KRR %.3f): max |emitted - JIT| %.3g\n", krr, worst);
    assert_true(worst <= 1e-4);
    run_model_free(&head);

    /* classes the checkpoint does not have are the run's error */
    int bad[1] = { 7 };
    RunEmitResult r;
    assert_int_equal(run_emit(a, tr, &mi, NULL, &ro, -1, bad, 1, "bad", NULL, tc_tmp_path("bad.o"), tc_tmp_path("bad.h"), &r,
                              err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "class 7 is not one of the 4 classes"));
    assert_int_equal(run_emit(a, tr, NULL, ru, &ro, -1, bad, 1, "bad", NULL, tc_tmp_path("bad.o"), tc_tmp_path("bad.h"), &r,
                              err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "class 7 is not a class of reuse 'pair'"));
    mz_close(z);
    tc_free(t);
}

/* A masked stride-2 5x5 conv (8x8 out), a 3x3 conv over its input's
 * phases in inference (pass_phase.c), its regrouped weights made by the
 * emitted object's preparation: a module of one class, generators kept and
 * dropped, scores the JIT's. */
static void test_emitted_strided(void **st)
{
    (void)st;
    static const char *strided =
        "dataset d = synthetic(n = 512, test = 128, seed = 5) { classes = 4  shape = [2, 16, 16] }\n"
        "model m : [2, 16, 16] -> [4] {\n"
        "    conv(8) batchnorm relu\n"
        "    modular { conv(16, k = 5, stride = 2) batchnorm relu conv(16) batchnorm relu }\n"
        "    flatten linear(16) relu linear(4) }\n"
        "train m on d { epochs = 2  batch = 32  optimizer = sgd(lr = 0.05, momentum = 0.9, nesterov = true)\n"
        "    loss = cross_entropy + 0.5 * cohesion + 3 * coupling  seed = 4  mask_init = kaiming_normal }\n"
        "modularize m { threshold = 0.9 }\n";
    char ck[512], err[1024];
    RunMeta meta;
    Mz *z;
    TestComp *t = trained("strided.mwt", strided, "strided.ckpt", ck, &z, &meta);
    const TrainInfo *tr = t->c.checked.trains.v[0];
    Arena *a = &t->c.arena;
    ModularizeInfo mi = *(const ModularizeInfo *)t->c.checked.modularizes.v[0];
    int classes[1] = { 1 };
    unsigned char keep[64];
    assert_true(z->st.kernels <= 64);
    mod_module(&z->st, classes, 1, 0.9, keep);
    long long kept = mod_kept(keep, z->st.kernels);
    print_message("module of class 1: %lld of %lld kernels\n", kept, z->st.kernels);
    assert_true(kept > 0 && kept < z->st.kernels);
    RunModel full;
    if (run_model_build(&full, a, tr->model, NULL, N, 2, 0, err, sizeof err) != 0 ||
        run_ckpt_load(&full, ck, &meta, NULL, 0, err, sizeof err) != 0)
        fail_msg("%s", err);
    int phased = 0;
    for (int i = 0; i < full.calls.n; i++)
        phased += !strcmp(full.calls.v[i].kernel, "k_space_to_depth");
    assert_true(phased > 0);
    for (int gen = 1; gen >= 0; gen--) {
        float want[N * 4], got[N];
        run_model_set_module(&full, keep, gen);
        jit_scores(&full, &z->ds, &z->norm, want, 4);
        mi.keep_generators = gen;
        assert_int_equal(emit_and_run(t, &mi, NULL, ck, classes, 1, gen ? "str_kept" : "str_dropped", NULL, &z->ds, got),
                         0);
        double worst = worst_diff(want, 4, classes, got, 1);
        print_message("generators %s: max |emitted - JIT| %.3g\n", gen ? "kept" : "dropped", worst);
        assert_true(worst <= 1e-4);
    }
    run_model_free(&full);
    mz_close(z);
    tc_free(t);
}

/* A model without masks is emitted whole (built on its own, for one
 * thread: its 3x3 convs as Winograd at batch 1, where the JIT's model at
 * batch N runs them as Winograd over the batch): its scores for the classes
 * asked, in their order, are the JIT's. */
static void test_emitted_whole_model(void **st)
{
    (void)st;
    static const char *plain =
        "dataset d = synthetic(n = 256, test = 128, seed = 6) { classes = 4  shape = [2, 12, 12]\n"
        "    normalize = (0.4, 0.2) }\n"
        "model p : [2, 12, 12] -> [4] {\n"
        "    conv(8) batchnorm relu conv(8) batchnorm relu maxpool(2) conv(12) relu\n"
        "    flatten linear(4) }\n"
        "train p on d { epochs = 1  batch = 32  optimizer = sgd(lr = 0.05, momentum = 0.9)  seed = 2 }\n";
    TestComp *t = tc_compile("plain.mwt", plain, 1);
    if (t->errors)
        fail_msg("%s", t->diags);
    char ck[512], err[1024];
    snprintf(ck, sizeof ck, "%s", tc_tmp_path("plain.ckpt"));
    RunOptions ro = { .seed = -1, .progress = RT_PROGRESS_QUIET, .ckpt = ck };
    RunResult rr;
    const TrainInfo *tr = t->c.checked.trains.v[0];
    if (run_train(&t->c.arena, tr, &ro, &rr, err, sizeof err) != 0)
        fail_msg("%s", err);
    RunModel full;
    RunMeta meta;
    Mz *z = NULL;
    if (mz_open(&z, &t->c.arena, tr, ck, 2, &meta, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(z->st.kernels, 0);
    if (run_model_build(&full, &t->c.arena, tr->model, NULL, N, 2, 0, err, sizeof err) != 0 ||
        run_ckpt_load(&full, ck, &meta, NULL, 0, err, sizeof err) != 0)
        fail_msg("%s", err);
    float want[N * 4], got[N * 3];
    jit_scores(&full, &z->ds, &z->norm, want, 4);
    int asked[3] = { 3, 0, 2 };
    assert_int_equal(emit_and_run(t, NULL, NULL, ck, asked, 3, "whole", NULL, &z->ds, got), 0);
    double worst = worst_diff(want, 4, asked, got, 3);
    print_message("whole model: max |emitted - JIT| %.3g\n", worst);
    assert_true(worst <= 1e-4);
    run_model_free(&full);
    mz_close(z);
    tc_free(t);
}

/* The kernel names of m's calls, joined: what its graphs run. */
static void kernels_of(const RunModel *m, char *out, size_t cap)
{
    out[0] = 0;
    for (int i = 0; i < m->calls.n; i++)
        if (!strstr(out, m->calls.v[i].kernel) && strlen(out) + strlen(m->calls.v[i].kernel) + 2 < cap)
            strcat(strcat(out, m->calls.v[i].kernel), " ");
}

/* An emitted model's graph at K_AOT_BULK images (run_model_build's
 * emitted) chooses each conv's kernel as its batch-1 graph does
 * (CgCalls.pin_batch) and gives each image the batch-1 graph's bits. The
 * same graph unpinned takes F(4x4) at 16x16 and the small planes' GEMMs at
 * 4x4, which batch 1 does not, and gives other bits: the bulk graph's
 * bits rest on the pin (run_emit checks them before it emits it). */
static void test_bulk_graph_pins_kernels(void **st)
{
    (void)st;
    static const char *pin =
        "dataset d = synthetic(n = 64, test = 16, seed = 7) { classes = 3  shape = [2, 16, 16] }\n"
        "model q : [2, 16, 16] -> [3] {\n"
        "    conv(8) relu conv(8) relu maxpool(2) conv(16) relu maxpool(2) conv(16) relu\n"
        "    flatten linear(3) }\n"
        "train q on d { epochs = 1  batch = 16  optimizer = sgd(lr = 0.05) }\n";
    TestComp *t = tc_compile("pin.mwt", pin, 1);
    if (t->errors)
        fail_msg("%s", t->diags);
    const TrainInfo *tr = t->c.checked.trains.v[0];
    RunModel m[3];   /* batch 1, the bulk graph, the bulk graph unpinned */
    RunEmitted emitted = { 0 };
    char err[1024], k[3][1024];
    for (int i = 0; i < 3; i++) {
        if (run_model_build(&m[i], &t->c.arena, tr->model, NULL, i ? K_AOT_BULK : 1, 1, i < 2 ? &emitted : NULL, err,
                            sizeof err) != 0)
            fail_msg("%s", err);
        RtRng rng;
        rt_rng_seed(&rng, 3);   /* the same weights in each */
        run_model_init(&m[i], &rng, tr->mask_init);
        kernels_of(&m[i], k[i], sizeof k[i]);
        print_message("%s: %s\n", i == 0 ? "batch 1" : i == 1 ? "bulk" : "bulk unpinned", k[i]);
    }
    assert_string_equal(k[0], k[1]);
    assert_non_null(strstr(k[2], "k_conv2d_wino4 "));
    assert_non_null(strstr(k[2], "k_conv2d_small_pix "));
    assert_null(strstr(k[0], "k_conv2d_wino4 "));
    assert_null(strstr(k[0], "k_conv2d_small_pix "));
    long long img = 2 * 16 * 16;
    float *xb[2] = { run_images(&m[1], &m[1].eval), run_images(&m[2], &m[2].eval) };
    float *x1 = run_images(&m[0], &m[0].eval);
    RtRng rng;
    rt_rng_seed(&rng, 5);
    for (long long i = 0; i < K_AOT_BULK * img; i++)
        xb[0][i] = xb[1][i] = rt_rng_normal(&rng);
    run_graph(&m[1], &m[1].eval);
    run_graph(&m[2], &m[2].eval);
    const float *l1 = (const float *)(m[0].base + m[0].eval.plan->off[m[0].eval.g->logits->id]);
    int same = 0, unpinned_same = 0;
    for (int b = 0; b < K_AOT_BULK; b++) {
        memcpy(x1, xb[0] + b * img, sizeof(float) * (size_t)img);
        run_graph(&m[0], &m[0].eval);
        for (int i = 1; i < 3; i++) {
            const float *lb = (const float *)(m[i].base + m[i].eval.plan->off[m[i].eval.g->logits->id]) + b * 3;
            *(i == 1 ? &same : &unpinned_same) += !memcmp(l1, lb, sizeof(float) * 3);
        }
    }
    print_message("images whose logits are batch 1's bits: bulk %d of %d, unpinned %d\n", same, K_AOT_BULK,
                  unpinned_same);
    assert_int_equal(same, K_AOT_BULK);
    assert_true(unpinned_same < K_AOT_BULK);
    for (int i = 0; i < 3; i++)
        run_model_free(&m[i]);
    tc_free(t);
}

/* An emitted module's slots and its wait (k_aot.c) start as zeros in .bss:
 * that must be an unlocked mutex and a condition no one waits on, as
 * PTHREAD_MUTEX_INITIALIZER and PTHREAD_COND_INITIALIZER are on glibc and
 * musl. */
static void test_zero_slot_is_an_unlocked_mutex(void **state)
{
    (void)state;
    static const pthread_mutex_t init = PTHREAD_MUTEX_INITIALIZER;
    static const pthread_cond_t cinit = PTHREAD_COND_INITIALIZER;
    static const unsigned char zero[sizeof init + sizeof cinit];
    assert_memory_equal(&init, zero, sizeof init);
    assert_memory_equal(&cinit, zero, sizeof cinit);
}

/* The check an emitted module makes of its CPU (aot_cpu_need's bits,
 * k_aot_cpu_ok's CPUID, here compiled natively) says what the C compiler's
 * own check says, feature by feature: a wrong bit would pass a CPU that
 * lacks a feature, or refuse one that has it. */
static void test_cpu_check_agrees_with_the_compiler(void **state)
{
    (void)state;
    unsigned need[K_AOT_CPU_WORDS];
    aot_cpu_need("", need);
    assert_int_equal(k_aot_cpu_ok(need), 1);
#if defined(__x86_64__)
    aot_cpu_need("+avx2,-avx512f,+fma", need);   /* a '-' feature is not needed */
    assert_int_equal(need[1] >> 16 & 1, 0);
#define HAS(f)                                                                                           \
    do {                                                                                                 \
        aot_cpu_need("+" f, need);                                                                       \
        int has = __builtin_cpu_supports(f) != 0;                                                        \
        print_message("  %-10s %s\n", f, has ? "yes" : "no");                                           \
        assert_int_equal(k_aot_cpu_ok(need), has);                                                       \
    } while (0)
    HAS("sse3"); HAS("ssse3"); HAS("sse4.1"); HAS("sse4.2"); HAS("popcnt"); HAS("avx"); HAS("avx2");
    HAS("fma"); HAS("bmi"); HAS("bmi2"); HAS("avx512f"); HAS("avx512bw"); HAS("avx512dq");
    HAS("avx512cd"); HAS("avx512vl"); HAS("sse4a"); HAS("fma4"); HAS("xop");
#undef HAS
    /* APX (any of LLVM's parts of it): CPUID 7.1 edx bit 21, and XCR0 bit 19 */
    unsigned a = 0, b, c, d, apx = 0;
    if (__get_cpuid_max(0, 0) >= 7)
        __cpuid_count(7, 0, a, b, c, d);
    if (a >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        apx = d >> 21 & 1;
        __cpuid(1, a, b, c, d);
        if (apx && (c >> 27 & 1)) {
            unsigned lo, hi;
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            (void)hi;
            apx = lo >> 19 & 1;
        } else {
            apx = 0;
        }
    }
    static const char *apx_parts[] = { "+egpr", "+ndd", "+ppx", "+push2pop2", "+ccmp", "+nf", "+cf", "+zu" };
    for (int i = 0; i < 8; i++) {
        aot_cpu_need(apx_parts[i], need);
        assert_int_equal(need[7], 1u << 21);
        assert_int_equal(need[6], 4u);
        assert_int_equal(k_aot_cpu_ok(need), (int)apx);
    }
    print_message("  %-10s %s\n", "apx", apx ? "yes" : "no");
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_slot_is_an_unlocked_mutex),
        cmocka_unit_test(test_cpu_check_agrees_with_the_compiler),
        cmocka_unit_test(test_emitted_module),
        cmocka_unit_test(test_emitted_whole_model),
        cmocka_unit_test(test_emitted_strided),
        cmocka_unit_test(test_bulk_graph_pins_kernels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
