/* module_slice: the module equivalence test. A sliced module, compiled on
 * its own, scores every image as the modular model does with every kernel
 * outside the module switched off: to 1e-4, for the module of every class
 * of a small trained model (and for arbitrary kernel sets), with the mask
 * generators kept and dropped. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jit_int.h"
#include "mwt_test.h"
#include "rt_ckpt.h"
#include "rt_progress.h"
#include "run_modularize.h"

/* the most masked kernels a test model has */
enum { MAXK = 160 };

/* A residual block whose shortcut is the identity of a masked layer (so its
 * add joins two masked layers) and one with an unmasked 1x1 projection (so
 * the masked side must widen to every channel). */
static const char *src =
    "dataset d = synthetic(n = 512, test = 128, seed = 5) { classes = 4  shape = [2, 12, 12] }\n"
    "model m : [2, 12, 12] -> [4] {\n"
    "    conv(8) batchnorm relu\n"
    "    modular { conv(8) batchnorm relu maxpool(2) residual { conv(8) batchnorm relu conv(8) batchnorm } relu }\n"
    "    residual(shortcut = { conv(12, k = 1) batchnorm }) { conv(12) batchnorm mask } relu\n"
    "    flatten linear(16) relu linear(4) }\n"
    "train m on d { epochs = 2  batch = 32  optimizer = sgd(lr = 0.05, momentum = 0.9, nesterov = true)\n"
    "    loss = cross_entropy + 0.5 * cohesion + 1.5 * coupling  seed = 4 }\n"
    "modularize m { threshold = 0.9 }\n";

enum { BATCH = 64 };

/* The logits of images [0, BATCH) of the test split. */
static void scores(RunModel *m, const RtDataset *ds, const RtNormalize *norm, float *out)
{
    RunGraph *rg = &m->eval;
    uint32_t idx[BATCH];
    int32_t lab[BATCH];
    for (int i = 0; i < BATCH; i++)
        idx[i] = (uint32_t)i;
    rt_data_batch(ds, 1, idx, BATCH, norm, NULL, NULL, run_images(m, rg), lab);
    run_graph(m, rg);
    memcpy(out, m->base + rg->plan->off[rg->g->logits->id], sizeof(float) * BATCH * 4);
}

/* The same through the shared nodes: they run in the modular model, the
 * module reads what they computed. */
static void scores_shared(RunModel *full, RunModel *mod, const Slice *s, const RtDataset *ds, const RtNormalize *norm,
                          float *out)
{
    uint32_t idx[BATCH];
    int32_t lab[BATCH];
    for (int i = 0; i < BATCH; i++)
        idx[i] = (uint32_t)i;
    rt_data_batch(ds, 1, idx, BATCH, norm, NULL, NULL, run_images(full, &full->eval), lab);
    run_graph_prefix(full, &full->eval, slice_shared_end(full->eval.g));
    run_module_gather(mod, s, full);
    run_graph(mod, &mod->eval);
    memcpy(out, mod->base + mod->eval.plan->off[mod->eval.g->logits->id], sizeof(float) * BATCH * 4);
}

/* Module keep against the modular model, generators kept and dropped; the
 * module evaluated in a slice made for `slice_for` (a superset of keep). */
static void check_in(Arena *a, RunModel *full, const RtDataset *ds, const RtNormalize *norm,
                     const unsigned char *slice_for, const unsigned char *keep, long long kernels, const char *what)
{
    for (int gen = 1; gen >= 0; gen--) {
        float want[BATCH * 4], got[BATCH * 4], whole[BATCH * 4];
        run_model_set_module(full, NULL, 1);
        scores(full, ds, norm, whole);
        run_model_set_module(full, keep, gen);
        scores(full, ds, norm, want);
        for (int shared = 0; shared < 2; shared++) {
        /* the whole module from the images; or from what the nodes every
         * module shares computed in the modular model */
        int from = shared ? slice_shared_end(full->eval.g) : 0;
        RunModel mod;
        Slice s;
        char err[1024];
        int exact = memcmp(slice_for, keep, (size_t)kernels) == 0;
        /* generators dropped: left out of an exact module; switched off in a larger slice */
        if (run_module_build(&mod, &s, a, full, slice_for, gen ? 1 : exact ? 0 : -1, from, 0, err, sizeof err) != 0)
            fail_msg("%s: %s", what, err);
        unsigned char inside[MAXK];
        slice_keep(&s, keep, inside);
        run_model_set_module(&mod, inside, gen);
        if (shared) {
            assert_true(from > 0);
            assert_true(s.ninputs >= 1);   /* the first masked layer's batchnorm output (and its mask) */
            scores_shared(full, &mod, &s, ds, norm, got);
        } else {
            scores(&mod, ds, norm, got);
        }
        double worst = 0, moved = 0;   /* moved: how far switching kernels off moved the scores */
        for (int i = 0; i < BATCH * 4; i++) {
            worst = fmax(worst, fabs((double)want[i] - got[i]));
            moved = fmax(moved, fabs((double)want[i] - whole[i]));
        }
        /* physically smaller: the module's masked kernels are the kept ones plus any a residual add needs */
        long long kept = 0, in_module = 0;
        for (long long j = 0; j < kernels; j++)
            kept += keep[j];
        for (long long j = 0; j < s.kernels; j++)
            in_module += inside[j];
        print_message("%s, generators %s%s: %lld of %lld kernels (%lld in the graph's masks, %d layers without "
                      "a mask), max |diff| %.2g (%.2g from the whole model's)\n",
                      what, gen ? "kept" : "dropped", shared ? ", shared nodes" : "", kept, kernels, s.kernels,
                      s.dropped, worst, moved);
        if (exact) {
            assert_int_equal(s.kept, kept);
            assert_true(gen ? s.dropped == 0 : s.dropped == 4 - s.widened);
        } else {
            assert_int_equal(in_module, kept);
            assert_int_equal(s.dropped, 0);
        }
        assert_true(s.kernels <= kernels);
        assert_true(worst <= 1e-4);
        run_model_free(&mod);
        }
    }
    run_model_set_module(full, NULL, 1);
}

static void check(Arena *a, RunModel *full, const RtDataset *ds, const RtNormalize *norm, const unsigned char *keep,
                  long long kernels, const char *what)
{
    check_in(a, full, ds, norm, keep, keep, kernels, what);
}

/* A small modular model trained and modularized, built for inference with
 * its checkpoint, and its modules' statistics from the stored frequencies. */
typedef struct Trained {
    TestComp *t;
    RunModel full;
    RtDataset ds;
    RtNormalize norm;
    long long off[5], K, count[4];
    int group[4];
    double *freq;
    ModStats ms;
    char ck[512];              /* its checkpoint */
} Trained;

static void trained(Trained *T, const char *name, const char *text, const char *ckpt)
{
    char *ck = T->ck, err[1024];
    ModReport r;
    T->t = tc_train_modular(name, text, ckpt, 0, ck, sizeof T->ck, &r);
    const TrainInfo *tr = T->t->c.checked.trains.v[0];
    RtAugment aug;
    RunMeta meta;
    if (run_data_load(tr->data, 2, &T->ds, &T->norm, &aug, err, sizeof err) != 0 ||
        run_model_build(&T->full, &T->t->c.arena, tr->model, NULL, BATCH, 2, 0, err, sizeof err) != 0 ||
        run_ckpt_load(&T->full, ck, &meta, NULL, 0, err, sizeof err) != 0)
        fail_msg("%s", err);
    const IrGraph *g = T->full.eval.g;
    assert_int_equal(g->masks.n, 4);
    T->off[0] = 0;
    for (int l = 0; l < 4; l++)
        T->off[l + 1] = T->off[l] + ((const IrValue *)g->masks.v[l])->d[1];
    T->K = T->off[4];
    assert_true(T->K <= MAXK);

    /* every class's module at 0.9, from the frequencies modularize stored */
    RtCkpt c = { 0 };
    assert_int_equal(rt_ckpt_load(&c, ck, err, sizeof err), 0);
    const RtCkptEntry *fe = rt_ckpt_find(&c, "mwt/freq");
    assert_non_null(fe);
    T->freq = malloc(sizeof(double) * (size_t)(4 * T->K));
    for (long long i = 0; i < 4 * T->K; i++)
        T->freq[i] = ((const float *)fe->data)[i];
    rt_ckpt_free(&c);
    for (int k = 0; k < 4; k++)
        T->count[k] = 1, T->group[k] = k;   /* no residual unions: the slice must widen on its own */
    T->ms = (ModStats){ .classes = 4, .layers = 4, .kernels = T->K, .layer_off = T->off, .group = T->group,
                        .freq = T->freq, .count = T->count };
}

static void trained_free(Trained *T)
{
    free(T->freq);
    run_model_free(&T->full);
    rt_data_free(&T->ds);
    tc_free(T->t);
}

/* Modules built together compile together (run_models_compile), and a
 * layer's calls in two modules share one compiled body though the modules
 * keep different numbers of its kernels: where two modules call the same
 * kernels in the same order, each call of module k > 0 falls in the group of
 * module 0's at its place (jit_call_groups), for every kernel whose channel
 * counts codegen passes at run time. Returns how many such calls share a body
 * with other constants (channel counts). */
static int check_shared_bodies(const RunModules *ms)
{
    static const char *shared[] = { "k_conv2d_wino_part", "k_conv2d_wino4_part", "k_conv2d_wino25_part",
                                    "k_mask_gen_fwd",     "k_mask_apply_keep",   "k_linear_fwd",
                                    "k_maxpool_fwd",      "k_relu_fwd" };
    int total = 0;
    for (int k = 0; k < ms->n; k++)
        total += ms->m[k].calls.n;
    JitCall *all = malloc(sizeof(JitCall) * (size_t)total);
    int *group = malloc(sizeof(int) * (size_t)total);
    for (int k = 0, at = 0; k < ms->n; at += ms->m[k++].calls.n)
        memcpy(all + at, ms->m[k].calls.v, sizeof(JitCall) * (size_t)ms->m[k].calls.n);
    jit_call_groups(all, total, group);
    int compared = 0, differ = 0;
    const CgCalls *a = &ms->m[0].calls;
    for (int k = 1, at = a->n; k < ms->n; at += ms->m[k++].calls.n) {
        const CgCalls *b = &ms->m[k].calls;
        int same = a->n == b->n;
        for (int i = 0; same && i < a->n; i++)
            same = !strcmp(a->v[i].kernel, b->v[i].kernel) && !strcmp(a->v[i].sig, b->v[i].sig);
        compared += same;
        for (int i = 0; same && i < a->n; i++)
            for (size_t q = 0; q < sizeof shared / sizeof *shared; q++)
                if (!strcmp(a->v[i].kernel, shared[q])) {
                    assert_int_equal(group[at + i], group[i]);
                    int nc = 0;
                    for (const char *c = a->v[i].sig; *c; c++)
                        nc += jit_sig_const(*c);
                    differ += memcmp(a->v[i].consts, b->v[i].consts, sizeof(double) * (size_t)nc) != 0;
                }
    }
    print_message("modules compiled together: %d of %d call the same kernels as module 0, %d calls of theirs share "
                  "a body of module 0's with other constants\n",
                  compared, ms->n - 1, differ);
    assert_true(compared > 0);
    free(all), free(group);
    return differ;
}

/* Variants reused where an image cannot tell them apart (run_variants.c)
 * against every variant run on every image (MWTC_VARIANT_REUSE=off): the
 * same scores to the bit, for each class's modules at thresholds that
 * switch kernels off, one repeated, then the first again (kernels switched
 * on), in chunks smaller than the images and batches left part empty.
 * Returns how many image runs the reuse copied; check_shared_bodies's
 * count into *shared, and how many of the modules' calls are F(4x4)'s part
 * kernel into *four. */
static long long check_reuse(Trained *T, const char *what, int *shared, int *four, const char *part)
{
    enum { NV = 6, NT = 100 };
    static const double thr[NV] = { 0.3, 0.6, 0.9, 0.9, 0.99, 0.3 };
    char err[1024];
    long long K = T->K;
    assert_true(K <= MAXK);
    unsigned char keeps[4 * MAXK], vin[4 * NV * MAXK];
    for (int cls = 0; cls < 4; cls++) {
        for (int t = 0; t < NV; t++)
            mod_module(&T->ms, &cls, 1, thr[t], vin + (cls * NV + t) * K);
        for (long long j = 0; j < K; j++) {   /* the slice holds every variant */
            keeps[cls * K + j] = 0;
            for (int t = 0; t < NV; t++)
                keeps[cls * K + j] |= vin[(cls * NV + t) * K + j];
        }
    }
    /* v 0: reused, a module per thread (4 modules, 2 threads); 1: every
     * variant run; 2: reused, each module's steps shared by the threads */
    float *rv[3];
    long long reused[3];
    for (int v = 0; v < 3; v++) {
        setenv("MWTC_VARIANT_REUSE", v == 1 ? "off" : "on", 1);
        setenv("MWTC_MODULES_ALONE", v == 2 ? "off" : "on", 1);
        rv[v] = calloc(4 * NV * NT * 4, sizeof(float));
        RunModules ms;
        if (run_modules_build(&ms, &T->t->c.arena, &T->full, keeps, K, 4, 1, v != 1, RUN_MODULES_BUDGET, err,
                              sizeof err) != 0)
            fail_msg("%s", err);
        assert_int_equal(run_modules_alone(&ms), v != 2);
        ms.chunk = BATCH;
        if (!v)
            *shared = check_shared_bodies(&ms);
        for (int k = 0; k < ms.n && !v; k++)
            for (int i = 0; i < ms.m[k].calls.n; i++)
                *four += !strcmp(ms.m[k].calls.v[i].kernel, part);
        if (run_modules_forward(&ms, &T->full, &T->ds, &T->norm, 1, NULL, NT, vin, NV, 1, rv[v], NULL, err,
                                sizeof err) != 0)
            fail_msg("%s", err);
        reused[v] = ms.reused;
        run_modules_free(&ms);
    }
    unsetenv("MWTC_VARIANT_REUSE");
    unsetenv("MWTC_MODULES_ALONE");
    print_message("%s: variants reused for %lld of %d image runs\n", what, reused[0], 4 * NV * NT);
    assert_memory_equal(rv[0], rv[1], sizeof(float) * 4 * NV * NT * 4);
    assert_memory_equal(rv[0], rv[2], sizeof(float) * 4 * NV * NT * 4);
    assert_int_equal(reused[1], 0);
    assert_int_equal(reused[2], reused[0]);
    for (int v = 0; v < 3; v++)
        free(rv[v]);
    return reused[0];
}

static void test_module_equivalence(void **st)
{
    (void)st;
    char err[1024];
    Trained T;
    trained(&T, "slice.mwt", src, "slice.ckpt");
    Arena *a = &T.t->c.arena;
    RunModel full = T.full;
    RtDataset ds = T.ds;
    RtNormalize norm = T.norm;
    long long *off = T.off, K = T.K;
    ModStats ms = T.ms;
    unsigned char keep[MAXK];
    assert_true(K <= 64);
    for (int cls = 0; cls < 4; cls++) {
        char what[64];
        mod_module(&ms, &cls, 1, 0.9, keep);
        snprintf(what, sizeof what, "module of class %d", cls);
        check(a, &full, &ds, &norm, keep, K, what);
    }
    /* a module inside the slice of a larger set (as the sweep evaluates
     * every threshold's module in one slice per class) */
    unsigned char outer[MAXK];
    int c0 = 0;
    mod_module(&ms, &c0, 1, 0.9, keep);
    for (long long j = 0; j < K; j++)
        outer[j] = keep[j] | (unsigned char)(j % 3 == 0);
    check_in(a, &full, &ds, &norm, outer, keep, K, "module of class 0 inside a larger slice");
    /* arbitrary kernel sets: every other kernel, and one kernel per layer */
    for (long long j = 0; j < K; j++)
        keep[j] = (unsigned char)(j % 2);
    check(a, &full, &ds, &norm, keep, K, "odd kernels");
    memset(keep, 0, sizeof keep);
    for (int l = 0; l < 4; l++)
        keep[off[l + 1] - 1] = 1;
    check(a, &full, &ds, &norm, keep, K, "one kernel a layer");
    /* everything: the module is the modular model */
    memset(keep, 1, sizeof keep);
    check(a, &full, &ds, &norm, keep, K, "all kernels");

    /* Modules evaluated in groups (run_modules_eval's memory budget): one
     * group of four, or four groups of one, give the same scores to the
     * bit, through both passes and with inner keep vectors. */
    enum { NI = 2, NCAL = 70, NTEST = 100 };
    unsigned char keeps[4 * 64], inner[4 * NI * 64];
    for (int cls = 0; cls < 4; cls++) {
        mod_module(&ms, &cls, 1, 0.9, keeps + cls * K);
        for (int t = 0; t < NI; t++)
            for (long long j = 0; j < K; j++)
                inner[(cls * NI + t) * K + j] = keeps[cls * K + j] & (unsigned char)(t == 0 || j % 2);
    }
    uint32_t cal_idx[NCAL];
    for (int i = 0; i < NCAL; i++)
        cal_idx[i] = (uint32_t)(i * 7);
    float *lg[2][2];
    int32_t lab[2][2][NTEST];
    for (int v = 0; v < 2; v++) {
        lg[v][0] = calloc(4 * NI * NCAL * 4, sizeof(float));
        lg[v][1] = calloc(4 * NI * NTEST * 4, sizeof(float));
        RunPass passes[2] = { { 0, cal_idx, NCAL, lg[v][0], lab[v][0] }, { 1, NULL, NTEST, lg[v][1], lab[v][1] } };
        if (run_modules_eval(a, &full, &ds, &norm, keeps, K, 4, 1, inner, NI, passes, 2, v ? 1 : RUN_MODULES_BUDGET, NULL, err,
                             sizeof err) != 0)
            fail_msg("%s", err);
    }
    assert_memory_equal(lg[0][0], lg[1][0], sizeof(float) * 4 * NI * NCAL * 4);
    assert_memory_equal(lg[0][1], lg[1][1], sizeof(float) * 4 * NI * NTEST * 4);
    assert_memory_equal(lab[0][0], lab[1][0], sizeof(int32_t) * NCAL);
    assert_memory_equal(lab[0][1], lab[1][1], sizeof(int32_t) * NTEST);
    /* Copies of a module are run once (run_modules_eval): modules 0, 1, 0
     * again, and 1's kernels with other inner vectors (its first twice),
     * give the scores the distinct modules gave above, to the bit. */
    {
        unsigned char dk[4 * 64], di[4 * NI * 64];
        const int of[4] = { 0, 1, 0, 1 };
        for (int k = 0; k < 4; k++) {
            memcpy(dk + k * K, keeps + of[k] * K, (size_t)K);
            for (int t = 0; t < NI; t++)
                memcpy(di + (k * NI + t) * K, inner + (of[k] * NI + (k == 3 ? 0 : t)) * K, (size_t)K);
        }
        float *dl[2] = { calloc(4 * NI * NCAL * 4, sizeof(float)), calloc(4 * NI * NTEST * 4, sizeof(float)) };
        int32_t dlab[2][NTEST];
        RunPass passes[2] = { { 0, cal_idx, NCAL, dl[0], dlab[0] }, { 1, NULL, NTEST, dl[1], dlab[1] } };
        if (run_modules_eval(a, &full, &ds, &norm, dk, K, 4, 1, di, NI, passes, 2, RUN_MODULES_BUDGET, NULL, err,
                             sizeof err) != 0)
            fail_msg("%s", err);
        const long long per[2] = { NI * NCAL * 4, NI * NTEST * 4 };
        for (int p = 0; p < 2; p++) {
            long long one = per[p] / NI;   /* one inner vector's scores */
            for (int k = 0; k < 4; k++)
                for (int t = 0; t < NI; t++)
                    assert_memory_equal(dl[p] + k * per[p] + t * one,
                                        lg[0][p] + of[k] * per[p] + (k == 3 ? 0 : t) * one, sizeof(float) * one);
        }
        assert_memory_equal(dlab[1], lab[0][1], sizeof(int32_t) * NTEST);
        free(dl[0]), free(dl[1]);
    }
    /* The REPL's Ctrl-C (rt_interrupted) stops the modules' passes and says
     * so, without keep vectors and with them (the sweep's variants, which
     * cli/repl_interrupt cannot stop in time: they take a moment); cleared,
     * the same call runs. */
    for (int v = 0; v < 3; v++) {
        float *l = calloc(4 * NI * NTEST * 4, sizeof(float));
        RunPass pass = { 1, NULL, NTEST, l, NULL };
        if (v < 2)
            rt_interrupt_request();
        err[0] = 0;
        int rc = run_modules_eval(a, &full, &ds, &norm, keeps, K, 4, 1, v ? inner : NULL, v ? NI : 1, &pass, 1,
                                  RUN_MODULES_BUDGET, NULL, err, sizeof err);
        rt_interrupt_clear();
        assert_int_equal(rc, v < 2 ? -1 : 0);
        assert_true((strstr(err, "stopped by Ctrl-C before it finished") != NULL) == (v < 2));
        if (v == 2)
            assert_memory_equal(l, lg[0][1], sizeof(float) * 4 * NI * NTEST * 4);
        free(l);
    }
    /* without keep vectors: four modules a thread each (the group of four
     * on 2 threads), or each module's steps shared by the threads, to the bit */
    float *plain[2];
    for (int v = 0; v < 2; v++) {
        setenv("MWTC_MODULES_ALONE", v ? "off" : "on", 1);
        plain[v] = calloc(4 * NTEST * 4, sizeof(float));
        RunPass pass = { 1, NULL, NTEST, plain[v], NULL };
        if (run_modules_eval(a, &full, &ds, &norm, keeps, K, 4, 1, NULL, 1, &pass, 1, RUN_MODULES_BUDGET, NULL, err,
                             sizeof err) != 0)
            fail_msg("%s", err);
    }
    unsetenv("MWTC_MODULES_ALONE");
    assert_memory_equal(plain[0], plain[1], sizeof(float) * 4 * NTEST * 4);
    free(plain[0]), free(plain[1]);
    /* and they are the modules' scores: the last module's, on test images 0 .. BATCH */
    float want[BATCH * 4];
    run_model_set_module(&full, inner + (3 * NI + 1) * K, 1);
    scores(&full, &ds, &norm, want);
    run_model_set_module(&full, NULL, 1);
    for (int i = 0; i < BATCH * 4; i++)
        assert_true(fabs((double)want[i] - lg[1][1][(3 * NI + 1) * NTEST * 4 + i]) <= 1e-4);
    for (int v = 0; v < 2; v++)
        free(lg[v][0]), free(lg[v][1]);

    T.full = full;
    int shared, four = 0;
    check_reuse(&T, "residual model", &shared, &four, "k_conv2d_wino4_part");
    trained_free(&T);
}

/* A masked conv whose channels are the logits (gap after it, no linear
 * layer): a module keeps all its channels, the others switched off, so that
 * it still scores every class, as the modular model does with them off. */
static const char *src_logits =
    "dataset d = synthetic(n = 512, test = 128, seed = 5) { classes = 4  shape = [2, 12, 12] }\n"
    "model m : [2, 12, 12] -> [4] {\n"
    "    conv(8) batchnorm relu\n"
    "    modular { conv(8) batchnorm relu maxpool(2) conv(8) batchnorm relu conv(8) relu conv(4, k = 1) }\n"
    "    gap }\n"
    "train m on d { epochs = 3  batch = 32  optimizer = sgd(lr = 0.05, momentum = 0.9, nesterov = true)\n"
    "    loss = cross_entropy + 0.5 * cohesion + 3 * coupling  seed = 4  mask_init = kaiming_normal }\n"
    "modularize m { threshold = 0.9 }\n";

static void test_masked_logits(void **st)
{
    (void)st;
    Trained T;
    trained(&T, "logits.mwt", src_logits, "logits.ckpt");
    unsigned char keep[MAXK];
    int cut = 0;   /* modules that switch off a kernel of the last layer: the case this is about */
    for (int cls = 0; cls < 4; cls++) {
        char what[64];
        mod_module(&T.ms, &cls, 1, 0.9, keep);
        for (long long j = T.off[3]; j < T.K; j++)
            cut |= !keep[j];
        snprintf(what, sizeof what, "logits model, module of class %d", cls);
        check(&T.t->c.arena, &T.full, &T.ds, &T.norm, keep, T.K, what);
    }
    /* and a module without the last layer's kernel of its own class, by hand */
    memset(keep, 1, sizeof keep);
    keep[T.off[3] + 1] = 0;
    check(&T.t->c.arena, &T.full, &T.ds, &T.norm, keep, T.K, "logits model, class 1's logit off");
    print_message("%d of 4 modules switch off a logit\n", cut);
    /* its masks are sparse enough that some images give a variant's
     * switched-off kernels nothing: the reuse must find them */
    int shared, four = 0;
    assert_true(check_reuse(&T, "logits model", &shared, &four, "k_conv2d_wino4_part") > 0);
    /* its modules keep different numbers of a layer's kernels */
    assert_true(shared > 0);
    trained_free(&T);
}

/* A masked conv at 16x16 with 16 input channels: in a sweep's modules
 * (keep vectors) F(4x4)'s part kernel (k_conv2d_wino4_part) runs it, and
 * the modules are still the modular model with the other kernels switched
 * off, and the variants' reuse still exact. */
static const char *src_four =
    "dataset d = synthetic(n = 512, test = 128, seed = 6) { classes = 4  shape = [2, 16, 16] }\n"
    "model m : [2, 16, 16] -> [4] {\n"
    "    conv(8) batchnorm relu\n"
    "    modular { conv(16) batchnorm relu conv(16) batchnorm relu maxpool(2) conv(16) batchnorm relu\n"
    "              conv(12) batchnorm relu maxpool(2) }\n"
    "    flatten linear(16) relu linear(4) }\n"
    "train m on d { epochs = 3  batch = 32  optimizer = sgd(lr = 0.05, momentum = 0.9, nesterov = true)\n"
    "    loss = cross_entropy + 0.5 * cohesion + 3 * coupling  seed = 4  mask_init = kaiming_normal }\n"
    "modularize m { threshold = 0.9 }\n";

/* The same with 5x5 convs: F(2x2, 5x5)'s part kernel (k_conv2d_wino25_part)
 * at 16x16 and 8x8, where the modules keep 32 of a layer's kernels or more
 * (k_wino25_infer_ok). */
static const char *src_five =
    "dataset d = synthetic(n = 512, test = 128, seed = 6) { classes = 4  shape = [2, 16, 16] }\n"
    "model m : [2, 16, 16] -> [4] {\n"
    "    conv(16) batchnorm relu\n"
    "    modular { conv(64, k = 5) batchnorm relu maxpool(2) conv(64, k = 5) batchnorm relu\n"
    "              conv(8, k = 1) batchnorm relu conv(8, k = 1) batchnorm relu maxpool(2) }\n"
    "    flatten linear(16) relu linear(4) }\n"
    "train m on d { epochs = 3  batch = 32  optimizer = sgd(lr = 0.05, momentum = 0.9, nesterov = true)\n"
    "    loss = cross_entropy + 0.5 * cohesion + 3 * coupling  seed = 4  mask_init = kaiming_normal }\n"
    "modularize m { threshold = 0.9 }\n";

/* Valid 3x3 convs (padding 0): F(4x4)'s part kernel at padding 0
 * (k_wino4_infer_ok), in the modules and in the sweep's variants (keep
 * vectors). */
static const char *src_valid =
    "dataset d = synthetic(n = 512, test = 128, seed = 6) { classes = 4  shape = [2, 18, 18] }\n"
    "model m : [2, 18, 18] -> [4] {\n"
    "    conv(16) batchnorm relu\n"
    "    modular { conv(32, pad = 0) batchnorm relu conv(32, pad = 0) batchnorm relu maxpool(2)\n"
    "              conv(12) batchnorm relu conv(8) batchnorm relu }\n"
    "    flatten linear(16) relu linear(4) }\n"
    "train m on d { epochs = 3  batch = 32  optimizer = sgd(lr = 0.05, momentum = 0.9, nesterov = true)\n"
    "    loss = cross_entropy + 0.5 * cohesion + 3 * coupling  seed = 4  mask_init = kaiming_normal }\n"
    "modularize m { threshold = 0.9 }\n";

/* Stride-2 5x5 convs: 3x3 convs over their input's phases in the modules
 * too (pass_phase.c): the second (8x8 out), its input channels those the
 * first keeps; the first runs in the whole model, before any mask. */
static const char *src_strided =
    "dataset d = synthetic(n = 512, test = 128, seed = 6) { classes = 4  shape = [2, 32, 32] }\n"
    "model m : [2, 32, 32] -> [4] {\n"
    "    conv(16) batchnorm relu\n"
    "    modular { conv(32, k = 5, stride = 2) batchnorm relu conv(32, k = 5, stride = 2) batchnorm relu\n"
    "              conv(8) batchnorm relu conv(8) batchnorm relu }\n"
    "    flatten linear(16) relu linear(4) }\n"
    "train m on d { epochs = 3  batch = 32  optimizer = sgd(lr = 0.05, momentum = 0.9, nesterov = true)\n"
    "    loss = cross_entropy + 0.5 * cohesion + 3 * coupling  seed = 4  mask_init = kaiming_normal }\n"
    "modularize m { threshold = 0.9 }\n";

static void part_case(const char *name, const char *src, const char *ckpt, const char *model, const char *part)
{
    Trained T;
    trained(&T, name, src, ckpt);
    unsigned char keep[MAXK], outer[MAXK];
    for (int cls = 0; cls < 4; cls++) {
        char what[64];
        mod_module(&T.ms, &cls, 1, 0.9, keep);
        print_message("%s: module of class %d keeps %lld of %lld kernels\n", model, cls, mod_kept(keep, T.K), T.K);
        snprintf(what, sizeof what, "%s, module of class %d", model, cls);
        check(&T.t->c.arena, &T.full, &T.ds, &T.norm, keep, T.K, what);
        for (long long j = 0; j < T.K; j++)
            outer[j] = keep[j] | (unsigned char)(j % 3 == 0);
        snprintf(what, sizeof what, "%s, module of class %d inside a larger slice", model, cls);
        check_in(&T.t->c.arena, &T.full, &T.ds, &T.norm, outer, keep, T.K, what);
    }
    int shared, calls = 0;
    check_reuse(&T, model, &shared, &calls, part);
    print_message("%s: %d calls of %s in 4 modules\n", model, calls, part);
    assert_true(calls > 0);
    trained_free(&T);
}

static void test_four_part(void **st)
{
    (void)st;
    part_case("four.mwt", src_four, "four.ckpt", "F(4x4) model", "k_conv2d_wino4_part");
    part_case("five.mwt", src_five, "five.ckpt", "F(2x2,5x5) model", "k_conv2d_wino25_part");
    part_case("valid.mwt", src_valid, "valid.ckpt", "valid 3x3 model", "k_conv2d_wino4_part");
    part_case("strided.mwt", src_strided, "strided.ckpt", "stride-2 5x5 model", "k_space_to_depth");
}

/* A model's calls of the part kernels, and of the mask's own application. */
static void count_calls(const RunModel *m, int *parts, int *applies)
{
    *parts = 0, *applies = 0;
    for (int i = 0; i < m->calls.n; i++) {
        *parts += strstr(m->calls.v[i].kernel, "_part") != NULL;
        *applies += !strcmp(m->calls.v[i].kernel, "k_mask_apply_keep");
    }
}

/* A module's inference graph runs a masked conv after its mask's
 * generator (pass_gens_first); the conv then writes zeros for the images
 * its mask turns off, applies the mask itself and leaves the input channels
 * that are zeros out of its sums (cg_wino.c's part kernels): the same logits, to
 * the bit, as the graph compiled in the order as written
 * (MWTC_MASK_FIRST=off), for each class's module built from the images. A
 * whole model is compiled as written (modules read its prefix), with each
 * class's module switched on by keep vectors too, generators on and off. */
static void mask_first_case(Trained *T, const char *what)
{
    char err[1024];
    const TrainInfo *tr = T->t->c.checked.trains.v[0];
    RunMeta meta;
    RunModel off;
    setenv("MWTC_MASK_FIRST", "off", 1);
    if (run_model_build(&off, &T->t->c.arena, tr->model, NULL, BATCH, 2, 0, err, sizeof err) != 0 ||
        run_ckpt_load(&off, T->ck, &meta, NULL, 0, err, sizeof err) != 0)
        fail_msg("%s", err);
    unsetenv("MWTC_MASK_FIRST");
    int parts[2], applies[2];
    count_calls(&T->full, &parts[0], &applies[0]);
    count_calls(&off, &parts[1], &applies[1]);
    /* the whole model is compiled as written: modules read its prefix */
    assert_int_equal(T->full.calls.n, off.calls.n);
    for (int i = 0; i < off.calls.n; i++)
        assert_string_equal(T->full.calls.v[i].kernel, off.calls.v[i].kernel);
    assert_int_equal(parts[0], parts[1]);
    unsigned char keep[MAXK];
    float on_s[BATCH * 4], off_s[BATCH * 4];
    for (int cls = -1; cls < 4; cls++) {
        if (cls >= 0)
            mod_module(&T->ms, &cls, 1, 0.9, keep);
        for (int gen = 1; gen >= 0; gen--) {
            run_model_set_module(&T->full, cls >= 0 ? keep : NULL, gen);
            run_model_set_module(&off, cls >= 0 ? keep : NULL, gen);
            scores(&T->full, &T->ds, &T->norm, on_s);
            scores(&off, &T->ds, &T->norm, off_s);
            if (memcmp(on_s, off_s, sizeof on_s) != 0)
                fail_msg("%s: class %d's keep vector, generators %d: the logits differ", what, cls, gen);
        }
    }
    run_model_set_module(&T->full, NULL, 1);
    for (int cls = 0; cls < 4; cls++) {
        mod_module(&T->ms, &cls, 1, 0.9, keep);
        RunModel mod[2];
        Slice s[2];
        for (int v = 0; v < 2; v++) {
            setenv("MWTC_MASK_FIRST", v ? "off" : "on", 1);
            if (run_module_build(&mod[v], &s[v], &T->t->c.arena, &T->full, keep, 1, 0, 0, err, sizeof err) != 0)
                fail_msg("%s: %s", what, err);
            scores(&mod[v], &T->ds, &T->norm, v ? off_s : on_s);
            count_calls(&mod[v], &parts[v], &applies[v]);
        }
        unsetenv("MWTC_MASK_FIRST");
        print_message("%s: module of class %d: %d part kernel calls and %d mask applications (as written: %d, %d)\n",
                      what, cls, parts[0], applies[0], parts[1], applies[1]);
        assert_true(parts[0] > parts[1]);
        assert_true(applies[0] < applies[1]);
        if (memcmp(on_s, off_s, sizeof on_s) != 0)
            fail_msg("%s: the module of class %d: the logits differ", what, cls);
        run_model_free(&mod[0]), run_model_free(&mod[1]);
    }
    run_model_free(&off);
}

static void test_mask_first(void **st)
{
    (void)st;
    Trained T;
    trained(&T, "first4.mwt", src_four, "first4.ckpt");   /* F(4x4)'s part kernel at 16x16 */
    mask_first_case(&T, "F(4x4) model");
    trained_free(&T);
    trained(&T, "first5.mwt", src_five, "first5.ckpt");   /* F(2x2, 5x5)'s at 16x16 and 8x8 */
    mask_first_case(&T, "F(2x2,5x5) model");
    trained_free(&T);
    trained(&T, "first.mwt", src, "first.ckpt");   /* residual adds, a mask with no relu after it */
    mask_first_case(&T, "residual model");
    trained_free(&T);
}

/* The sliced graph's shapes: a conv keeps its module's output channels, the
 * next conv its input channels, the first linear layer its columns. */
static void test_sliced_shapes(void **st)
{
    (void)st;
    TestComp *t = tc_compile("shapes.mwt",
                             "model m : [1, 8, 8] -> [3] {\n"
                             "    modular { conv(4) batchnorm relu conv(6) batchnorm relu }\n"
                             "    flatten linear(3) }\n",
                             1);
    if (t->errors)
        fail_msg("%s", t->diags);
    Arena *a = &t->c.arena;
    IrGraph *g = ir_lower(a, tc_model(t, "m"), NULL, 2);
    unsigned char keep[10] = { 1, 0, 1, 0, /* layer 2 */ 0, 0, 1, 0, 0, 0 };
    Slice s;
    char err[512];
    if (pass_slice(a, g, keep, 0, 0, &s, err, sizeof err) != 0)
        fail_msg("%s", err);
    const IrGraph *m = s.g;
    assert_int_equal(m->params.n, g->params.n);
    const IrValue *w1 = m->params.v[0], *w2 = NULL, *lin = NULL;
    for (int i = 0; i < m->params.n; i++) {
        const IrValue *p = m->params.v[i];
        if (strcmp(p->name, "conv2.w") == 0)
            w2 = p;
        if (strcmp(p->name, "linear1.w") == 0)
            lin = p;
    }
    assert_string_equal(w1->name, "conv1.w");
    assert_int_equal(w1->d[0], 2);   /* kernels 0 and 2 */
    assert_int_equal(w1->d[1], 1);
    assert_non_null(w2);
    assert_int_equal(w2->d[0], 1);   /* kernel 2 */
    assert_int_equal(w2->d[1], 2);
    assert_non_null(lin);
    assert_int_equal(lin->d[0], 3);
    assert_int_equal(lin->d[1], 64); /* one channel of 8x8 */
    assert_int_equal(s.kernels, 3);
    assert_int_equal(s.widened, 0);
    /* conv2.w row 0 is the source's row 2, its columns the source's 0 and 2 */
    float srcw[6 * 4 * 9], dst[2 * 9];
    for (int i = 0; i < 6 * 4 * 9; i++)
        srcw[i] = (float)i;
    const SliceTensor *tw = NULL;
    for (int i = 0; i < m->params.n; i++)
        if (s.params[i].dst == w2)
            tw = &s.params[i];
    assert_non_null(tw);
    slice_gather(tw, srcw, dst);
    assert_true(dst[0] == (float)((2 * 4 + 0) * 9));
    assert_true(dst[9] == (float)((2 * 4 + 2) * 9));
    assert_true(dst[17] == (float)((2 * 4 + 2) * 9 + 8));
    /* and back: the module's elements where they came from, the rest as they were */
    float back[6 * 4 * 9];
    for (int i = 0; i < 6 * 4 * 9; i++)
        back[i] = -1.0f;
    slice_scatter(tw, dst, back);
    for (int i = 0, n = 0; i < 6 * 4 * 9; i++) {
        int kept = back[i] != -1.0f;
        n += kept;
        assert_true(!kept || back[i] == srcw[i]);
        if (i == 6 * 4 * 9 - 1)
            assert_int_equal(n, 2 * 9);
    }
    /* a layer that keeps nothing is refused with a message */
    memset(keep, 0, 4);
    assert_int_equal(pass_slice(a, g, keep, 0, 0, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "keeps no kernel"));
    tc_free(t);
}

/* A reuse fine-tunes its module as the smaller network (the default): the
 * same training as the whole model with the module's other kernels
 * switched off (MWTC_REUSE_SLICE=off) but for the order of its sums, for
 * a module whose residual adds join masked layers and widen a layer, with
 * its generators dropped and kept. Its checkpoint is the whole model's
 * form, its other kernels as they were. */
static void test_reuse_trains_the_module(void **st)
{
    (void)st;
    char text[4096], ck[512], err[1024];
    snprintf(text, sizeof text, "%s%s", src,
             "reuse m as drop { classes = [0, 2]  epochs = 1 }\n"
             "reuse m as keep { classes = [3, 1]  epochs = 1  generators = keep }\n");
    ModReport r;
    TestComp *t = tc_train_modular("reuse_slice.mwt", text, "reuse_slice.ckpt", 0, ck, sizeof ck, &r);
    Arena *a = &t->c.arena;
    const TrainInfo *tr = t->c.checked.trains.v[0];
    const ModularizeInfo *mi = t->c.checked.modularizes.v[0];
    for (int k = 0; k < 2; k++) {
        const ReuseInfo *ru = t->c.checked.reuses.v[k];
        char out[2][512];
        RunResult res[2];
        for (int sliced = 0; sliced < 2; sliced++) {
            setenv("MWTC_REUSE_SLICE", sliced ? "on" : "off", 1);
            snprintf(out[sliced], sizeof out[sliced], "%s", tc_tmp_path(sliced ? "reuse_on.ckpt" : "reuse_off.ckpt"));
            RunOptions o = { .progress = RT_PROGRESS_QUIET, .seed = -1 };
            double krr;
            if (run_reuse(a, tr, mi, ru, &o, ck, out[sliced], &res[sliced], &krr, err, sizeof err) != 0)
                fail_msg("reuse %s: %s", ru->name, err);
        }
        unsetenv("MWTC_REUSE_SLICE");
        RtCkpt c[2] = { { 0 }, { 0 } };
        for (int i = 0; i < 2; i++)
            assert_int_equal(rt_ckpt_load(&c[i], out[i], err, sizeof err), 0);
        int compared = 0;
        for (int i = 0; i < c[0].n; i++) {
            const RtCkptEntry *x = &c[0].e[i];
            if (strncmp(x->name, "param/", 6) != 0 && strncmp(x->name, "module/", 7) != 0)
                continue;   /* the moments (the module's are not kept) and the running statistics of
                               channels the module leaves out (the whole model keeps updating them) */
            const RtCkptEntry *y = rt_ckpt_find(&c[1], x->name);
            assert_non_null(y);
            assert_int_equal(x->bytes, y->bytes);
            const float *u = x->data, *v = y->data;
            double worst = 0, big = 1;
            for (size_t j = 0; j < x->bytes / 4; j++)
                worst = fmax(worst, fabs((double)u[j] - v[j])), big = fmax(big, fabs((double)u[j]));
            if (worst > 1e-4 * big)
                fail_msg("reuse %s: %s differs by %g between the module and the whole model trained", ru->name,
                         x->name, worst);
            compared++;
        }
        assert_true(compared > 20);
        print_message("reuse %s (generators %s): %d tensors the same to 1e-4; test accuracy %.4f and %.4f\n",
                      ru->name, ru->keep_generators ? "kept" : "dropped", compared, res[1].accuracy, res[0].accuracy);
        assert_true(fabs(res[0].accuracy - res[1].accuracy) <= 0.02);
        rt_ckpt_free(&c[0]), rt_ckpt_free(&c[1]);
    }
    tc_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sliced_shapes),
        cmocka_unit_test(test_module_equivalence),
        cmocka_unit_test(test_masked_logits),
        cmocka_unit_test(test_four_part),
        cmocka_unit_test(test_mask_first),
        cmocka_unit_test(test_reuse_trains_the_module),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
