/* Finite-difference checks of autodiff and the kernels, one small model per
 * op: the gradient the compiled training step writes for a parameter must
 * match (loss(p + h) - loss(p - h)) / 2h, with the loss computed by the same
 * compiled step at learning rate 0 (so the SGD update changes nothing).
 * Every op sits between a parameter and the loss, so each gradient rule is
 * on the path of some checked parameter. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mwt_test.h"
#include "run.h"

/* A program around `layers`: images [2, 8, 8], 3 classes, batch 4. */
static const char *loss = "cross_entropy";

static const char *program(const char *layers, const char *shape)
{
    static char src[4096];
    snprintf(src, sizeof src,
             "dataset d = synthetic(n = 64, test = 16) { classes = 3  shape = %s }\n"
             "model m : %s -> [3] { %s }\n"
             "train m on d { epochs = 1  batch = 4  optimizer = sgd(lr = 0.1)  schedule = constant  loss = %s }\n",
             shape, shape, layers, loss);
    return src;
}

static double loss_at(RunModel *m, const float *x, const int32_t *y)
{
    int ok;
    return run_train_step(m, x, y, 0.0, 1234, &ok);
}

/* Checks up to `samples` elements of every parameter. */
static void check_grads(const char *layers, const char *shape, double h, int samples)
{
    TestComp *t = tc_compile("grad.mwt", program(layers, shape), 1);
    if (t->errors)
        fail_msg("%s", t->diags);
    const TrainInfo *tr = t->c.checked.trains.v[0];
    RunModel m;
    RtRng rng;
    rt_rng_seed(&rng, 42);
    tc_model_init(&m, t, tr->model, tr, 4, 1, &rng, MASK_INIT_KAIMING_NORMAL);   /* masks that differ between inputs, some 0 */
    const IrGraph *g = m.train.g;
    long long B = g->batch, img = ir_numel(g->images) / B;
    float *x = malloc(sizeof(float) * (size_t)(B * img));
    int32_t y[4] = { 0, 1, 2, 1 };
    for (long long i = 0; i < B * img; i++)
        x[i] = rt_rng_normal(&rng);
    double l0 = loss_at(&m, x, y);
    int bad = 0, checked = 0, kinks = 0;
    for (int p = 0; p < g->params.n; p++) {
        const IrValue *pv = g->params.v[p];
        long long n = ir_numel(pv);
        float *w = run_param(&m, p);
        /* the analytic gradient of this parameter, from one step at the unperturbed point */
        float *grad = malloc(sizeof(float) * (size_t)n);
        loss_at(&m, x, y);
        memcpy(grad, m.base + m.L->grads + (m.L->param_off[p] - m.L->params), sizeof(float) * (size_t)n);
        for (int s = 0; s < samples && s < n; s++) {
            long long i = n <= samples ? s : (long long)rt_rng_below(&rng, (uint64_t)n);
            float keep = w[i];
            w[i] = keep + (float)h;
            double lp = loss_at(&m, x, y);
            w[i] = keep - (float)h;
            double lm = loss_at(&m, x, y);
            w[i] = keep;
            double num = (lp - lm) / (2 * h), ana = grad[i];
            /* A relu or a max that switches between p - h and p + h makes the
             * central difference meaningless there: the one-sided ones disagree. */
            double up = (lp - l0) / h, down = (l0 - lm) / h;
            if (fabs(up - down) > 2e-3 + 0.05 * fmax(fabs(up), fabs(down))) {
                kinks++;
                continue;
            }
            checked++;
            if (fabs(num - ana) > 2e-3 + 3e-2 * fmax(fabs(num), fabs(ana))) {
                bad++;
                print_message("%s: %s[%lld]: finite difference %.6g, gradient %.6g\n", layers, pv->name, i, num, ana);
            }
        }
        free(grad);
    }
    free(x);
    run_model_free(&m);
    tc_free(t);
    if (bad)
        fail_msg("%d of %d gradients differ from their finite differences", bad, checked);
    if (kinks > checked / 4)
        fail_msg("%d samples sat on a kink, %d were checked: too few", kinks, checked);
}

#define S3 "[2, 8, 8]"

static void test_linear(void **s) { (void)s; check_grads("flatten linear(5) relu linear(3)", S3, 1e-3, 24); }
static void test_linear_nobias(void **s) { (void)s; check_grads("flatten linear(3, bias = false)", S3, 1e-3, 24); }
static void test_conv(void **s) { (void)s; check_grads("conv(4) flatten linear(3)", S3, 1e-3, 24); }
static void test_conv_stride_pad(void **s)
{
    (void)s;
    check_grads("conv(3, k = 3, stride = 2, pad = 0) conv(4, k = 3, stride = 2, pad = 2, bias = false) flatten linear(3)",
                S3, 1e-2, 24);
}
static void test_conv_1x1(void **s) { (void)s; check_grads("conv(3, k = 1, stride = 2) flatten linear(3)", S3, 1e-3, 24); }
/* 32 channels a side: 3x3 convs by Winograd F(4x4) and 5x5 ones by F(2x2,
 * 5x5), their forward, data and weight gradients as the codegen picks them
 * (cg_conv.c use_wino, use_wino25) */
static void test_conv_winograd(void **s)
{
    (void)s;
    check_grads("conv(32) relu conv(32, k = 5) relu conv(32, k = 5, bias = false) gap linear(3)", "[16, 8, 8]", 1e-3,
                24);
}
/* F(2x2, 5x5) at other paddings (training's): valid (12x12 into 8x8, its
 * data gradient padding 4) and padding 1 (8x8 into 6x6, padding 3 back);
 * both weight gradients by it too (32 channels a side, no tile past the
 * edge). */
static void test_conv_winograd_padding(void **s)
{
    (void)s;
    check_grads("conv(32) relu conv(32, k = 5, pad = 0) relu conv(32, k = 5, pad = 1) gap linear(3)", "[16, 12, 12]",
                1e-3, 24);
}
/* F(4x4) at paddings 0 and 2 (k_wino4_ok): a valid 3x3 conv whose weight
 * gradient is F(4x4)'s too (12x12 out: k_wino4_bwd_w_ok), then one at
 * padding 2, whose output is larger than its input; the data gradients
 * are the convs the other way with paddings 2 and 0. */
static void test_conv_winograd_valid_3x3(void **s)
{
    (void)s;
    check_grads("conv(16, pad = 0) relu conv(16, pad = 2) relu gap linear(3)", "[16, 14, 14]", 1e-3, 24);
}
/* The weight gradient at padding 1 by F(4x4) from 11x11 on
 * (k_wino_bwd_w_pick), its tiles hanging over 13x13 by 3 rows and
 * columns, where the forward is F(4x4)'s too; and 11x11, whose forward is
 * F(2x2)'s. No pooling after the convs: their gradients then stand well
 * above check_grads' absolute tolerance (behind gap, one 20% too large
 * passed). */
static void test_conv_winograd_bwd_w_pick(void **s)
{
    (void)s;
    check_grads("conv(16) relu conv(16) flatten linear(3)", "[16, 13, 13]", 1e-3, 24);
    check_grads("conv(16) relu conv(16) flatten linear(3)", "[16, 11, 11]", 1e-3, 24);
}
/* 5x5 stride-2 convs as 3x3 convs over their input's phases (pass_phase.c),
 * each op where its rules say: padding 2 into 8x8 (forward and data
 * gradient) and padding 3 into 5x5 (the phases shifted; the data gradient
 * alone); padding 0 into 12x12 (forward and weight gradient) and padding 4
 * into 8x8 (the data gradient alone). test_phase checks that they are
 * rewritten and agree with the direct kernels. */
static void test_conv_phases(void **s)
{
    (void)s;
    check_grads("conv(4) relu conv(16, k = 5, stride = 2, pad = 2) relu conv(16, k = 5, stride = 2, pad = 3) gap linear(3)",
                "[2, 16, 16]", 1e-3, 24);
    check_grads("conv(16, k = 5, stride = 2, pad = 0) relu conv(16, k = 5, stride = 2, pad = 4) relu gap linear(3)",
                "[4, 28, 28]", 1e-3, 24);
}
/* Stride-2 5x5 and 4x4 convs into planes of up to 64 pixels, from planes
 * past 64 (k_small_strided_ok): their forward, data and weight gradients
 * by k_small.c's GEMMs; and a stride-2 3x3 conv into 7x7, its data
 * gradient alone by them (k_small_strided_dx_ok). No pooling after them,
 * so that their gradients stand above check_grads' absolute tolerance. */
static void test_conv_small_strided(void **s)
{
    (void)s;
    check_grads("conv(16) relu conv(16, k = 5, stride = 2, pad = 1) relu flatten linear(3)", "[16, 15, 15]", 1e-3, 24);
    check_grads("conv(16) relu conv(16, k = 4, stride = 2, pad = 1) relu flatten linear(3)", "[16, 10, 10]", 1e-3, 24);
    check_grads("conv(16) relu conv(16, stride = 2) relu flatten linear(3)", "[16, 14, 14]", 1e-3, 24);
}
static void test_batchnorm(void **s) { (void)s; check_grads("conv(4) batchnorm flatten linear(3)", S3, 1e-3, 24); }
static void test_batchnorm_linear(void **s)
{
    (void)s;
    check_grads("flatten linear(6) batchnorm relu linear(3)", S3, 1e-3, 24);
}
static void test_relu(void **s) { (void)s; check_grads("conv(4) relu flatten linear(3)", S3, 1e-3, 24); }
static void test_maxpool(void **s) { (void)s; check_grads("conv(4) maxpool(2) flatten linear(3)", S3, 1e-3, 24); }
static void test_maxpool_overlap(void **s)
{
    (void)s;
    check_grads("conv(4) maxpool(3, stride = 2) flatten linear(3)", S3, 1e-3, 24);
}
static void test_avgpool(void **s) { (void)s; check_grads("conv(4) avgpool(2) flatten linear(3)", S3, 1e-3, 24); }
static void test_gap(void **s) { (void)s; check_grads("conv(4) gap linear(3)", S3, 1e-3, 24); }
static void test_dropout(void **s) { (void)s; check_grads("flatten linear(16) dropout(0.3) linear(3)", S3, 1e-3, 24); }
static void test_residual_identity(void **s)
{
    (void)s;
    check_grads("conv(2) residual { conv(2) relu conv(2) } flatten linear(3)", S3, 1e-3, 24);
}
static void test_residual_projection(void **s)
{
    (void)s;
    check_grads("residual { conv(4, stride = 2) batchnorm relu conv(4) batchnorm } relu gap linear(3)", S3, 1e-3, 24);
}
static void test_cross_entropy(void **s) { (void)s; check_grads("flatten linear(3)", S3, 1e-3, 24); }

/* MwT: the mask generator and its application, alone and after a batchnorm. */
static void test_mask(void **s) { (void)s; check_grads("conv(4) conv(5) mask relu flatten linear(3)", S3, 1e-3, 24); }
static void test_mask_modular(void **s)
{
    (void)s;
    check_grads("conv(4) relu modular { conv(6) batchnorm relu maxpool(2) conv(4) batchnorm relu } gap linear(3)", S3,
                1e-3, 24);
}
/* The modularity losses, weighted as written, over two masked layers (the
 * labels 0 1 2 1 give one same-label pair and five others). */
static void test_cohesion_coupling(void **s)
{
    (void)s;
    loss = "cross_entropy + 0.5 * cohesion + 1.5 * coupling";
    check_grads("conv(4) relu modular { conv(6) batchnorm relu conv(5) relu } gap linear(3)", S3, 1e-3, 24);
    loss = "0.001 * cross_entropy + 2 * cohesion";
    check_grads("conv(4) relu modular { conv(6) batchnorm relu conv(5) relu } gap linear(3)", S3, 1e-3, 24);
    loss = "0.001 * cross_entropy + coupling";
    check_grads("conv(4) relu modular { conv(6) relu } gap linear(3)", S3, 1e-3, 24);
    loss = "cross_entropy";
}

/* Inference batchnorm normalizes with the running statistics:
 * y = gamma (x - mean) / sqrt(var + eps) + beta, checked by hand. */
static void test_batchnorm_eval(void **s)
{
    (void)s;
    TestComp *t = tc_compile("bn_eval.mwt", "model m : [2, 1, 1] -> [2] { batchnorm flatten }\n", 1);
    if (t->errors)
        fail_msg("%s", t->diags);
    RunModel m;
    char err[512];
    if (run_model_build(&m, &t->c.arena, t->c.checked.models.v[0], NULL, 3, 1, 0, err, sizeof err) != 0)
        fail_msg("build: %s", err);
    float gamma[2] = { 2, -1 }, beta[2] = { 0.5f, 1 }, mean[2] = { 1, -2 }, var[2] = { 4, 0.25f };
    memcpy(run_param(&m, 0), gamma, sizeof gamma);
    memcpy(run_param(&m, 1), beta, sizeof beta);
    memcpy(run_state(&m, 0), mean, sizeof mean);
    memcpy(run_state(&m, 1), var, sizeof var);
    float *x = run_images(&m, &m.eval);
    float in[6] = { 3, 0, -1, -2, 0.5f, 7 };
    memcpy(x, in, sizeof in);
    run_graph(&m, &m.eval);
    const float *yv = (const float *)(m.base + m.eval.plan->off[m.eval.g->logits->id]);
    for (int i = 0; i < 6; i++) {
        int c = i % 2;
        float want = gamma[c] * (in[i] - mean[c]) / sqrtf(var[c] + 1e-5f) + beta[c];
        if (fabsf(yv[i] - want) > 1e-5f * (1 + fabsf(want)))
            fail_msg("element %d: %g, want %g", i, yv[i], want);
    }
    run_model_free(&m);
    tc_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),          cmocka_unit_test(test_linear_nobias),
        cmocka_unit_test(test_conv),            cmocka_unit_test(test_conv_stride_pad),
        cmocka_unit_test(test_conv_1x1),        cmocka_unit_test(test_conv_winograd),
        cmocka_unit_test(test_conv_winograd_padding),
        cmocka_unit_test(test_conv_winograd_valid_3x3), cmocka_unit_test(test_conv_winograd_bwd_w_pick),
        cmocka_unit_test(test_conv_phases),     cmocka_unit_test(test_conv_small_strided),
        cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_batchnorm_linear), cmocka_unit_test(test_relu),
        cmocka_unit_test(test_maxpool),         cmocka_unit_test(test_maxpool_overlap),
        cmocka_unit_test(test_avgpool),         cmocka_unit_test(test_gap),
        cmocka_unit_test(test_dropout),         cmocka_unit_test(test_residual_identity),
        cmocka_unit_test(test_residual_projection), cmocka_unit_test(test_cross_entropy),
        cmocka_unit_test(test_batchnorm_eval),  cmocka_unit_test(test_mask),
        cmocka_unit_test(test_mask_modular),    cmocka_unit_test(test_cohesion_coupling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
