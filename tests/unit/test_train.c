/* The training loop end to end on synthetic data: it learns; the same seed
 * gives the same checkpoint bit for bit with 1, 2 and 3 threads, for a
 * standard model and a modular one (MwT's losses); a run stopped after an
 * epoch and resumed ends in the checkpoint the uninterrupted run wrote; a
 * checkpoint of another model is refused; the mask generators start as
 * mask_init says; an interrupt (the REPL's Ctrl-C) stops training between
 * steps and keeps the checkpoint of the last whole epoch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mwt_test.h"
#include "rt_ckpt.h"
#include "rt_progress.h"
#include "run.h"
#include "run_train.h"

static const char *src =
    "dataset d = synthetic(n = 384, test = 128, seed = 3) {\n"
    "    classes = 4  shape = [2, 12, 12]  normalize = (0.5, 0.25)  augment = [random_crop(pad = 1), hflip] }\n"
    "model m : [2, 12, 12] -> [4] {\n"
    "    conv(8) batchnorm relu maxpool(2)\n"
    "    residual { conv(8) batchnorm relu conv(8) batchnorm } relu\n"
    "    conv(16, stride = 2) batchnorm relu gap dropout(0.2) linear(4) }\n"
    "train m on d { epochs = 3  batch = 32  optimizer = sgd(lr = 0.05, momentum = 0.9, nesterov = true,\n"
    "    weight_decay = 0.0005)  schedule = cosine  seed = 5 }\n";

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void assert_same_file(const char *a, const char *b)
{
    size_t na, nb;
    unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
    assert_int_equal(na, nb);
    if (memcmp(x, y, na) != 0)
        fail_msg("%s and %s differ", a, b);
    free(x), free(y);
}

static RunResult train_src(const char *text, const char *ckpt, int threads, int stop_after, const char *resume)
{
    TestComp *t = tc_compile("train.mwt", text, 1);
    if (t->errors)
        fail_msg("%s", t->diags);
    RunOptions o = { .threads = threads, .seed = -1, .progress = RT_PROGRESS_QUIET, .ckpt = ckpt,
                     .resume = resume, .source_path = tc_tmp_path("train.mwt"), .stop_after = stop_after };
    RunResult r;
    char err[1024];
    if (run_train(&t->c.arena, t->c.checked.trains.v[0], &o, &r, err, sizeof err) != 0)
        fail_msg("%s", err);
    tc_free(t);
    return r;
}

static RunResult train(const char *ckpt, int threads, int stop_after, const char *resume)
{
    return train_src(src, ckpt, threads, stop_after, resume);
}

static void test_learns_and_is_deterministic(void **s)
{
    (void)s;
    char a[512], b[512], c[512];
    snprintf(a, sizeof a, "%s", tc_tmp_path("t1.ckpt"));
    snprintf(b, sizeof b, "%s", tc_tmp_path("t2.ckpt"));
    snprintf(c, sizeof c, "%s", tc_tmp_path("t3.ckpt"));
    RunResult r1 = train(a, 1, 0, NULL);
    RunResult r2 = train(b, 2, 0, NULL);
    RunResult r3 = train(c, 3, 0, NULL);
    printf("test accuracy %.4f (1 thread), %.4f (2), %.4f (3)\n", r1.accuracy, r2.accuracy, r3.accuracy);
    assert_true(r1.accuracy > 0.6);   /* 4 classes: chance is 0.25 */
    assert_true(r1.accuracy == r2.accuracy && r2.accuracy == r3.accuracy);
    assert_same_file(a, b);
    assert_same_file(a, c);
}

static void test_resume_ends_where_the_run_would_have(void **s)
{
    (void)s;
    char full[512], part[512];
    snprintf(full, sizeof full, "%s", tc_tmp_path("full.ckpt"));
    snprintf(part, sizeof part, "%s", tc_tmp_path("part.ckpt"));
    train(full, 2, 0, NULL);
    train(part, 2, 1, NULL);     /* interrupted after epoch 1 of 3 */
    train(part, 1, 0, part);     /* resumed, on another thread count */
    assert_same_file(full, part);
}

/* A modular model: each masked layer's relu folds into its mask_apply. */
static const char *modular_src =
    "dataset d = synthetic(n = 256, test = 64, seed = 4) {\n"
    "    classes = 4  shape = [2, 12, 12]  normalize = (0.5, 0.25) }\n"
    "model m : [2, 12, 12] -> [4] {\n"
    "    conv(8) batchnorm relu\n"
    "    modular { conv(8) batchnorm relu maxpool(2) conv(12) batchnorm relu }\n"
    "    gap linear(4) }\n"
    "train m on d { epochs = 2  batch = 32  optimizer = sgd(lr = 0.05, momentum = 0.9)\n"
    "    loss = cross_entropy + 0.5 * cohesion + 1.5 * coupling  seed = 6 }\n";

/* Masked layers whose batchnorm, mask_apply and pooling fuse in other ways:
 * no relu, overlapping windows, planes with a tail of 16 (13x13, 6x6), a
 * residual's add reading the masked output; logits that a batchnorm makes. */
static const char *pools_src =
    "dataset d = synthetic(n = 96, test = 32, seed = 2) {\n"
    "    classes = 3  shape = [1, 13, 13] }\n"
    "model m : [1, 13, 13] -> [3] {\n"
    "    conv(6) batchnorm relu\n"
    "    modular { conv(8) batchnorm maxpool(3, stride = 2) conv(8) batchnorm relu maxpool(2) }\n"
    "    residual { conv(8) batchnorm mask relu }\n"
    "    gap linear(3) batchnorm }\n"
    "train m on d { epochs = 2  batch = 24  optimizer = sgd(lr = 0.05, momentum = 0.9)\n"
    "    loss = cross_entropy + 0.5 * cohesion + 1.5 * coupling  seed = 3 }\n";

/* Training compiles the fused graph (pass_fuse: each relu folded into the
 * batchnorm or mask_apply before it, forward and backward, a masked layer's
 * batchnorm, mask_apply and pooling into one kernel each way); it must
 * train bit for bit like the graph as written (MWTC_FUSE=off). */
static void test_fused_training_is_the_graph_as_written(void **s)
{
    (void)s;
    const char *srcs[3] = { src, modular_src, pools_src };
    for (int i = 0; i < 3; i++) {
        char a[512], b[512], fa[32], fb[32];
        snprintf(fa, sizeof fa, "f%d.ckpt", i);
        snprintf(fb, sizeof fb, "u%d.ckpt", i);
        snprintf(a, sizeof a, "%s", tc_tmp_path(fa));
        snprintf(b, sizeof b, "%s", tc_tmp_path(fb));
        RunResult rf = train_src(srcs[i], a, 2, 0, NULL);
        setenv("MWTC_FUSE", "off", 1);
        RunResult ru = train_src(srcs[i], b, 2, 0, NULL);
        unsetenv("MWTC_FUSE");
        printf("test accuracy %.4f fused, %.4f as written\n", rf.accuracy, ru.accuracy);
        assert_true(rf.accuracy == ru.accuracy);
        assert_same_file(a, b);
    }
}

/* Small planes (k_small.c): a masked 4x4 conv without bias (its forward
 * and data gradient by Winograd F(2x2), which goes first there, its weight
 * gradient by k_small.c), a 2x2 one with 18 outputs (a tile and a bit),
 * all of it k_small.c's. The same checkpoint on 1, 2 and 3 threads
 * (batches of 30 and 12: F(2x2) at 4x4 takes four images at a time, and
 * a thread's share ends in fewer);
 * against the direct and Winograd kernels (MWTC_SMALL=off), the same
 * weights but for rounding. */
static const char *small_src =
    "dataset d = synthetic(n = 192, test = 64, seed = 8) {\n"
    "    classes = 3  shape = [2, 8, 8] }\n"
    "model m : [2, 8, 8] -> [3] {\n"
    "    conv(16) batchnorm relu maxpool(2)\n"
    "    modular { conv(16, bias = false) batchnorm relu } maxpool(2)\n"
    "    conv(18) relu gap linear(3) }\n"
    "train m on d { epochs = 1  batch = 30  optimizer = sgd(lr = 0.05, momentum = 0.9)\n"
    "    loss = cross_entropy + 0.5 * cohesion + 1.5 * coupling  seed = 2 }\n";

static void test_small_planes(void **s)
{
    (void)s;
    char p[4][512];
    for (int k = 0; k < 4; k++) {
        char name[32];
        snprintf(name, sizeof name, "sm%d.ckpt", k);
        snprintf(p[k], sizeof p[k], "%s", tc_tmp_path(name));
        if (k == 3)
            setenv("MWTC_SMALL", "off", 1);
        train_src(small_src, p[k], k == 3 ? 2 : k + 1, 0, NULL);
        unsetenv("MWTC_SMALL");
    }
    assert_same_file(p[0], p[1]);
    assert_same_file(p[0], p[2]);
    RtCkpt c[2] = { { 0 }, { 0 } };
    char err[512];
    assert_int_equal(rt_ckpt_load(&c[0], p[0], err, sizeof err), 0);
    assert_int_equal(rt_ckpt_load(&c[1], p[3], err, sizeof err), 0);
    int compared = 0;
    for (int i = 0; i < c[0].n; i++) {
        const RtCkptEntry *x = &c[0].e[i], *y = rt_ckpt_find(&c[1], x->name);
        if (strncmp(x->name, "param/", 6) != 0)
            continue;
        assert_non_null(y);
        const float *u = x->data, *v = y->data;
        double worst = 0, big = 1e-3;
        for (size_t j = 0; j < x->bytes / 4; j++)
            worst = fmax(worst, fabs((double)u[j] - v[j])), big = fmax(big, fabs((double)u[j]));
        if (worst > 1e-3 * big)
            fail_msg("%s differs by %g (of %g) from the other kernels' training", x->name, worst, big);
        compared++;
    }
    assert_true(compared >= 10);
    rt_ckpt_free(&c[0]), rt_ckpt_free(&c[1]);
}

/* MwT's ops (the mask generators, the similarity rows and the two losses,
 * their gradients) keep the promise too: 1, 2 and 3 threads, one checkpoint. */
static void test_modular_training_is_deterministic(void **s)
{
    (void)s;
    char p[3][512];
    for (int k = 0; k < 3; k++) {
        char name[32];
        snprintf(name, sizeof name, "md%d.ckpt", k + 1);
        snprintf(p[k], sizeof p[k], "%s", tc_tmp_path(name));
        train_src(modular_src, p[k], k + 1, 0, NULL);
    }
    assert_same_file(p[0], p[1]);
    assert_same_file(p[0], p[2]);
}

/* On more threads than a weight gradient has chunks (8), each chunk is cut
 * into parts of its input channels (k_bwdw_splits): 24 threads cut the
 * 48-channel layer's chunks in 3 and the 32-channel layers' in 2, for the
 * direct kernel (the 1x1 and stride-2 convs) and Winograd's (F(2x2) at
 * 12x12, F(4x4) at 14x14). The same checkpoint as one thread's. */
static void test_weight_gradient_parts(void **s)
{
    (void)s;
    for (int side = 12; side <= 14; side += 2) {
        char text[1024], p[2][512];
        snprintf(text, sizeof text,
                 "dataset d = synthetic(n = 128, test = 32, seed = 7) { classes = 4  shape = [3, %d, %d] }\n"
                 "model m : [3, %d, %d] -> [4] {\n"
                 "    conv(32) batchnorm relu\n"
                 "    modular { conv(48) batchnorm relu conv(32) batchnorm relu }\n"
                 "    conv(32, k = 1) batchnorm relu  conv(16, stride = 2) relu  gap linear(4) }\n"
                 "train m on d { epochs = 1  batch = 32  loss = cross_entropy + 0.5 * cohesion + 1.5 * coupling\n"
                 "    seed = 8 }\n",
                 side, side, side, side);
        for (int k = 0; k < 2; k++) {
            char name[32];
            snprintf(name, sizeof name, "cs%d_%d.ckpt", side, k);
            snprintf(p[k], sizeof p[k], "%s", tc_tmp_path(name));
            train_src(text, p[k], k ? 24 : 1, 0, NULL);
        }
        assert_same_file(p[0], p[1]);
    }
}

static void test_wrong_checkpoint_is_refused(void **s)
{
    (void)s;
    char ck[512];
    snprintf(ck, sizeof ck, "%s", tc_tmp_path("other.ckpt"));
    train(ck, 1, 1, NULL);
    TestComp *t = tc_compile("other.mwt",
                             "dataset d = synthetic(n = 64, test = 16) { classes = 4  shape = [2, 12, 12] }\n"
                             "model m : [2, 12, 12] -> [4] { conv(4) relu gap linear(4) }\n"
                             "train m on d { epochs = 1  batch = 32 }\n",
                             1);
    RunOptions o = { .seed = -1, .progress = RT_PROGRESS_QUIET, .ckpt = ck };
    RunResult r;
    char err[1024];
    assert_int_equal(run_eval(&t->c.arena, t->c.checked.models.v[0], t->c.checked.datasets.v[0], &o, &r, err,
                              sizeof err),
                     -1);
    if (!strstr(err, "other.ckpt") || !strstr(err, "shape"))
        fail_msg("unexpected message: %s", err);
    tc_free(t);
}

/* An interrupt requested before a step stops the run there with an error
 * that says so; the checkpoint of a run that finished an epoch before is
 * left as that epoch wrote it. */
static void test_interrupt_stops_between_steps(void **s)
{
    (void)s;
    char ck[512], ref[512];
    snprintf(ref, sizeof ref, "%s", tc_tmp_path("intr_ref.ckpt"));
    train(ref, 1, 1, NULL);   /* one epoch, as the interrupted run's checkpoint holds */
    snprintf(ck, sizeof ck, "%s", tc_tmp_path("intr.ckpt"));
    train(ck, 1, 1, NULL);
    TestComp *t = tc_compile("train.mwt", src, 1);
    RunOptions o = { .threads = 1, .seed = -1, .progress = RT_PROGRESS_QUIET, .ckpt = ck, .resume = ck,
                     .source_path = tc_tmp_path("train.mwt") };
    RunResult r;
    char err[1024];
    rt_interrupt_request();
    int rc = run_train(&t->c.arena, t->c.checked.trains.v[0], &o, &r, err, sizeof err);
    rt_interrupt_clear();
    assert_int_equal(rc, -1);
    if (!strstr(err, "interrupted at epoch 2, step 1; the checkpoint holds the epochs before it"))
        fail_msg("unexpected message: %s", err);
    assert_same_file(ck, ref);
    tc_free(t);
}

/* The mask generators' weights start as `mask_init` says: linear, uniform in
 * +-1/sqrt(fan_in) like every other linear layer (std 1/sqrt(3 fan_in));
 * kaiming_normal, std sqrt(2/fan_in). b2 starts at 1 either way. The two
 * differ by a factor 2.45 in std, far outside the sampling error of the
 * 64x64 + 128x64 weights looked at. */
static void check_mask_init(const char *choice, MaskInit want)
{
    char text[1024];
    snprintf(text, sizeof text,
             "dataset d = synthetic(n = 64, test = 16) { classes = 4  shape = [2, 8, 8] }\n"
             "model m : [2, 8, 8] -> [4] { conv(64) relu modular { conv(128) batchnorm relu } gap linear(4) }\n"
             "train m on d { epochs = 1  batch = 8  loss = cross_entropy + coupling %s%s }\n",
             choice ? "mask_init = " : "", choice ? choice : "");
    TestComp *t = tc_compile("init.mwt", text, 1);
    if (t->errors)
        fail_msg("%s", t->diags);
    const TrainInfo *tr = t->c.checked.trains.v[0];
    assert_int_equal(tr->mask_init, want);
    RunModel m;
    RtRng rng;
    rt_rng_seed(&rng, 11);
    tc_model_init(&m, t, tr->model, tr, 4, 1, &rng, tr->mask_init);
    int seen = 0;
    for (int i = 0; i < m.train.g->params.n; i++) {
        const IrValue *p = m.train.g->params.v[i];
        const char *dot = strrchr(p->name, '.');
        const float *v = run_param(&m, i);
        long long n = ir_numel(p);
        if (dot && strcmp(dot, ".b2") == 0) {
            for (long long j = 0; j < n; j++)
                assert_true(v[j] == 1.0f);
            seen++;
        }
        if (!dot || (strcmp(dot, ".w1") != 0 && strcmp(dot, ".w2") != 0))
            continue;
        double fan_in = (double)(n / p->d[0]), ss = 0, max = 0;
        for (long long j = 0; j < n; j++) {
            ss += (double)v[j] * v[j];
            max = fabs(v[j]) > max ? fabs(v[j]) : max;
        }
        double std = sqrt(ss / (double)n);
        double expect = want == MASK_INIT_LINEAR ? 1 / sqrt(3 * fan_in) : sqrt(2 / fan_in);
        if (fabs(std / expect - 1) > 0.05)
            fail_msg("%s: std %g, want %g (%s)", p->name, std, expect, choice ? choice : "default");
        if (want == MASK_INIT_LINEAR && max > 1 / sqrt(fan_in))
            fail_msg("%s: %g outside +-1/sqrt(%g)", p->name, max, fan_in);
        seen++;
    }
    assert_int_equal(seen, 3);
    run_model_free(&m);
    tc_free(t);
}

/* The logits of the inference graph on x. */
static void eval_logits(RunModel *m, const float *x, float *out)
{
    const IrGraph *g = m->eval.g;
    long long B = g->batch;
    memcpy(run_images(m, &m->eval), x, sizeof(float) * (size_t)ir_numel(g->images));
    run_graph(m, &m->eval);
    memcpy(out, m->base + m->eval.plan->off[g->logits->id], sizeof(float) * (size_t)(B * g->logits->d[1]));
}

/* The inference graph's Winograd convs read weights transformed beforehand
 * (CgCalls.nprep): after training steps, and after weights written through
 * run_param and run_state, its logits are those of a model built afresh
 * with the same weights, to the bit. */
static void test_prepared_weights_follow_the_weights(void **s)
{
    (void)s;
    TestComp *t = tc_compile("prep.mwt",
                             "dataset d = synthetic(n = 64, test = 16) { classes = 3  shape = [8, 6, 6] }\n"
                             "model m : [8, 6, 6] -> [3] {\n"
                             "    conv(16) batchnorm relu conv(12) batchnorm relu gap linear(3) }\n"
                             "train m on d { epochs = 1  batch = 4  optimizer = sgd(lr = 0.1)  schedule = constant }\n",
                             1);
    if (t->errors)
        fail_msg("%s", t->diags);
    const TrainInfo *tr = t->c.checked.trains.v[0];
    RunModel m, fresh;
    RtRng rng;
    rt_rng_seed(&rng, 7);
    tc_model_init(&m, t, tr->model, tr, 2, 2, &rng, tr->mask_init);
    tc_model_init(&fresh, t, tr->model, NULL, 2, 1, &rng, tr->mask_init);
    assert_int_equal(m.prep.nsteps, 2);   /* both convs prepared */
    float x[4 * 8 * 6 * 6], a[6], b[6], before[6];
    int32_t y[4] = { 0, 1, 2, 1 };
    for (size_t i = 0; i < sizeof x / sizeof *x; i++)
        x[i] = rt_rng_normal(&rng);
    const IrGraph *g = m.eval.g;
    for (int round = 0; round < 3; round++) {
        eval_logits(&m, x, before);
        if (round == 0) {   /* training steps change the weights and the batchnorm statistics */
            int ok;
            for (int k = 0; k < 3; k++)
                run_train_step(&m, x, y, 0.1, 1, &ok);
        } else if (round == 1) {
            float *w = run_param(&m, 0);
            for (long long i = 0; i < ir_numel(g->params.v[0]); i++)
                w[i] *= -1.5f;
        } else {
            float *var = run_state(&m, 1);
            for (long long i = 0; i < ir_numel(g->states.v[1]); i++)
                var[i] *= 3.0f;
        }
        eval_logits(&m, x, a);
        for (int i = 0; i < g->params.n; i++)
            memcpy(run_param(&fresh, i), run_param(&m, i), sizeof(float) * (size_t)ir_numel(g->params.v[i]));
        for (int i = 0; i < g->states.n; i++)
            memcpy(run_state(&fresh, i), run_state(&m, i), sizeof(float) * (size_t)ir_numel(g->states.v[i]));
        eval_logits(&fresh, x, b);
        if (memcmp(a, b, sizeof a) != 0)
            fail_msg("round %d: the logits differ from a fresh model's with the same weights", round);
        if (!memcmp(a, before, sizeof a))
            fail_msg("round %d: the weights changed and the logits did not", round);
    }
    run_model_free(&m);
    run_model_free(&fresh);
    tc_free(t);
}

static void test_mask_init(void **s)
{
    (void)s;
    check_mask_init(NULL, MASK_INIT_LINEAR);
    check_mask_init("linear", MASK_INIT_LINEAR);
    check_mask_init("kaiming_normal", MASK_INIT_KAIMING_NORMAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learns_and_is_deterministic),
        cmocka_unit_test(test_resume_ends_where_the_run_would_have),
        cmocka_unit_test(test_fused_training_is_the_graph_as_written),
        cmocka_unit_test(test_modular_training_is_deterministic), cmocka_unit_test(test_small_planes),
        cmocka_unit_test(test_weight_gradient_parts), cmocka_unit_test(test_wrong_checkpoint_is_refused),
        cmocka_unit_test(test_mask_init),
        cmocka_unit_test(test_prepared_weights_follow_the_weights),
        cmocka_unit_test(test_interrupt_stops_between_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
