/* pass_fuse: which chains fuse, and that the fused inference graph scores
 * like the graph as written (batchnorm folded into the weights rounds a
 * little differently: to 1e-4 relative). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mwt_test.h"
#include "rt_progress.h"
#include "run_train.h"

static const char *src =
    "dataset d = synthetic(n = 64, test = 64, seed = 3) { classes = 4  shape = [2, 12, 12] }\n"
    "model m : [2, 12, 12] -> [4] {\n"
    "    conv(8) batchnorm relu\n"                    /* conv + bn + relu */
    "    conv(8, bias = false) batchnorm\n"           /* no bias, no relu after */
    "    residual { conv(8) batchnorm relu conv(8) batchnorm } relu maxpool(2)\n"
    "    modular { conv(8) batchnorm relu }\n"       /* bn feeds a mask: conv + bn only */
    "    gap linear(4) }\n"
    "train m on d { epochs = 1  batch = 16  optimizer = sgd(lr = 0.05) }\n";

/* Nodes of op whose fused relu flag is p (and with nin operands, unless nin < 0). */
static int count_fused(const IrGraph *g, IrOp op, double p, int nin)
{
    int k = 0;
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *n = g->nodes.v[i];
        k += n->op == op && n->p == p && (nin < 0 || n->nin == nin);
    }
    return k;
}

static void test_what_fuses(void **st)
{
    (void)st;
    TestComp *t = tc_compile_ok("fuse.mwt", src);
    Arena *a = &t->c.arena;
    IrGraph *g = ir_lower(a, tc_model(t, "m"), NULL, 4);
    IrGraph *f = pass_fuse(a, g);
    char why[256];
    assert_int_equal(ir_verify(f, why, sizeof why), 0);
    assert_int_equal(tc_count_op(g, IR_CONV2D), 5);
    assert_int_equal(tc_count_op(f, IR_CONV2D), 0);
    assert_int_equal(tc_count_op(f, IR_CONV2D_BN), 5);
    assert_int_equal(tc_count_op(f, IR_BATCHNORM), 0);
    /* relus: after conv 1 and inside the block into the conv; the masked
     * layer's into its mask_apply; the one after the add stays */
    assert_int_equal(tc_count_op(g, IR_RELU), 4);
    assert_int_equal(tc_count_op(f, IR_RELU), 1);
    assert_int_equal(tc_count_op(f, IR_MASK_APPLY), 1);
    assert_int_equal(count_fused(f, IR_MASK_APPLY, 1, -1), 1);
    for (int i = 0; i < f->nodes.n; i++) {
        assert_true(f->origin[i] >= 0 && f->origin[i] < g->nodes.n);
        assert_true(i == 0 || f->origin[i] > f->origin[i - 1]);
    }
    assert_int_equal(count_fused(f, IR_CONV2D_BN, 1, -1), 2);
    /* the source graph is untouched; the masks and logits are the same values */
    assert_int_equal(tc_count_op(g, IR_BATCHNORM), 5);
    assert_ptr_equal(f->logits, g->logits);
    assert_ptr_equal(f->masks.v[0], g->masks.v[0]);
    /* a training graph keeps its convs and batchnorms (the backward reads
     * them); a relu folds into the batchnorm or mask_apply before it, both
     * ways: all but the one after the add; the mask generator's gradient
     * takes in the add of its share */
    IrGraph *tg = ir_lower(a, tc_model(t, "m"), t->c.checked.trains.v[0], 4);
    assert_int_equal(pass_autodiff(a, tg, why, sizeof why), 0);
    IrGraph *tf = pass_fuse(a, tg);
    assert_int_equal(ir_verify(tf, why, sizeof why), 0);
    assert_int_equal(tc_count_op(tf, IR_CONV2D_BN), 0);
    assert_int_equal(tc_count_op(tf, IR_BATCHNORM), 4);
    assert_int_equal(tc_count_op(tg, IR_RELU), 4);
    assert_int_equal(tc_count_op(tg, IR_RELU_GRAD), 4);
    assert_int_equal(tc_count_op(tf, IR_RELU), 1);
    assert_int_equal(tc_count_op(tf, IR_RELU_GRAD), 1);
    assert_int_equal(count_fused(tf, IR_BATCHNORM, 1, -1), 2);
    assert_int_equal(count_fused(tf, IR_BATCHNORM_GRAD, 1, 5), 2);
    /* the masked layer's batchnorm and mask_apply (its relu in it): one
     * bn_mask, their gradients one bn_mask_grad */
    assert_int_equal(tc_count_op(tf, IR_MASK_APPLY), 0);
    assert_int_equal(tc_count_op(tf, IR_MASK_APPLY_GRAD), 0);
    assert_int_equal(count_fused(tf, IR_BN_MASK, 1, 6), 1);
    assert_int_equal(count_fused(tf, IR_BN_MASK_GRAD, 1, 6), 1);
    /* the masked conv's input: the add of the conv's and the generator's shares of its gradient */
    assert_int_equal(count_fused(tf, IR_MASK_GEN_GRAD, 0, 5), 1);
    assert_int_equal(tc_count_op(tf, IR_ADD), tc_count_op(tg, IR_ADD) - 1);
    assert_int_equal(tf->nodes.n, tg->nodes.n - 9);
    assert_ptr_equal(tf->loss, tg->loss);
    tc_free(t);
}

/* Training graphs: a masked layer's batchnorm, mask_apply (relu) and max
 * pooling fuse into one bn_mask_pool each way, where nothing else reads the
 * mask_apply's output, and so do a batchnorm (relu) and a max pooling
 * without a mask; a residual's add reading it keeps the pooling out. */
static void test_what_fuses_with_pools(void **st)
{
    (void)st;
    TestComp *t = tc_compile("pool.mwt",
                             "dataset d = synthetic(n = 64, test = 64) { classes = 4  shape = [2, 12, 12] }\n"
                             "model m : [2, 12, 12] -> [4] {\n"
                             "    conv(8) batchnorm relu maxpool(2, stride = 1)\n"   /* no mask; fuses */
                             "    modular { conv(8) batchnorm relu maxpool(2)\n"    /* fuses */
                             "              conv(8) batchnorm maxpool(3, stride = 1) }\n" /* no relu; fuses */
                             "    conv(8) batchnorm maxpool(1)\n"                   /* neither; fuses */
                             "    residual { conv(8) batchnorm mask relu } maxpool(2)\n" /* the add reads it */
                             "    gap linear(4) }\n"
                             "train m on d { epochs = 1  batch = 16  loss = cross_entropy + cohesion }\n",
                             1);
    if (t->errors)
        fail_msg("%s", t->diags);
    Arena *a = &t->c.arena;
    char why[256];
    IrGraph *tg = ir_lower(a, tc_model(t, "m"), t->c.checked.trains.v[0], 4);
    assert_int_equal(pass_autodiff(a, tg, why, sizeof why), 0);
    IrGraph *tf = pass_fuse(a, tg);
    if (ir_verify(tf, why, sizeof why) != 0)
        fail_msg("%s", why);
    assert_int_equal(tc_count_op(tg, IR_MAXPOOL), 5);
    assert_int_equal(count_fused(tf, IR_BN_MASK_POOL, 1, 6), 1);
    assert_int_equal(count_fused(tf, IR_BN_MASK_POOL, 0, 6), 1);
    assert_int_equal(count_fused(tf, IR_BN_MASK_POOL, 1, 5), 1);
    assert_int_equal(count_fused(tf, IR_BN_MASK_POOL, 0, 5), 1);
    assert_int_equal(tc_count_op(tf, IR_BN_MASK_POOL_GRAD), 4);
    assert_int_equal(tc_count_op(tf, IR_BATCHNORM), 0);
    assert_int_equal(tc_count_op(tf, IR_BATCHNORM_GRAD), 0);
    assert_int_equal(count_fused(tf, IR_BN_MASK, 1, 6), 1);   /* the residual's */
    assert_int_equal(tc_count_op(tf, IR_BN_MASK_GRAD), 1);
    assert_int_equal(tc_count_op(tf, IR_MAXPOOL), 1);
    assert_int_equal(tc_count_op(tf, IR_MAXPOOL_GRAD), 1);
    tc_free(t);
}

/* The model's logits, fused (MWTC_FUSE unset) or as written, with
 * environment variable env set to "off" (env NULL: none); the calls to
 * kernels whose names begin with `kernel` compiled for it, added to *calls
 * when calls is not NULL. */
static void logits_with(TestComp *t, int fuse, const char *env, const char *kernel, int *calls, float *out, int n)
{
    if (fuse)
        unsetenv("MWTC_FUSE");
    else
        setenv("MWTC_FUSE", "off", 1);
    if (env)
        setenv(env, "off", 1);
    RunModel m;
    RtRng rng;
    rt_rng_seed(&rng, 7);
    tc_model_init(&m, t, tc_model(t, "m"), NULL, n, 2, &rng, MASK_INIT_KAIMING_NORMAL);
    unsetenv("MWTC_FUSE");
    if (env)
        unsetenv(env);
    for (int i = 0; calls && i < m.calls.n; i++)
        *calls += !strncmp(m.calls.v[i].kernel, kernel, strlen(kernel));
    /* batchnorm statistics that are not 0 and 1, so that the folding shows */
    for (int i = 0; i < m.eval.g->states.n; i++) {
        const IrValue *s = m.eval.g->states.v[i];
        float *v = run_state(&m, i);
        for (long long j = 0; j < ir_numel(s); j++)
            v[j] = strstr(s->name, ".var") ? 0.5f + rt_rng_uniform(&rng) : rt_rng_uniform(&rng) - 0.5f;
    }
    for (int i = 0; i < m.eval.g->params.n; i++) {
        const IrValue *p = m.eval.g->params.v[i];
        if (strstr(p->name, ".gamma") || strstr(p->name, ".beta"))
            for (long long j = 0; j < ir_numel(p); j++)
                run_param(&m, i)[j] = 0.5f + rt_rng_uniform(&rng);
    }
    float *x = run_images(&m, &m.eval);
    for (long long j = 0; j < ir_numel(m.eval.g->images); j++)
        x[j] = 2.0f * rt_rng_uniform(&rng) - 1.0f;
    run_graph(&m, &m.eval);
    memcpy(out, m.base + m.eval.plan->off[m.eval.g->logits->id], sizeof(float) * (size_t)(n * 4));
    run_model_free(&m);
}

static void logits(TestComp *t, int fuse, float *out, int n) { logits_with(t, fuse, NULL, NULL, NULL, out, n); }

static void test_fused_scores(void **st)
{
    (void)st;
    TestComp *t = tc_compile_ok("fuse.mwt", src);
    enum { N = 8 };
    float plain[N * 4], fused[N * 4];
    logits(t, 0, plain, N);
    logits(t, 1, fused, N);
    double worst = 0, scale = 0;
    for (int i = 0; i < N * 4; i++) {
        worst = fmax(worst, fabs((double)plain[i] - fused[i]));
        scale = fmax(scale, fabs((double)plain[i]));
    }
    print_message("fused vs as written: max |diff| %.3g over logits up to %.3g\n", worst, scale);
    assert_true(scale > 0.01);
    assert_true(worst <= 1e-4 * fmax(1.0, scale));
    tc_free(t);
}

/* Inference's convs of small planes (k_small.c's GEMMs per pixel, with
 * batchnorm folded in or without it) score as the other kernels do: at 4x4
 * from stride 2, and at 2x2 after a pooling, masked and not; at a batch
 * that fills a tile of images on any machine (32 with AVX-512, 24 with
 * AVX2); at 8, as k_small_pix.c's GEMMs over prepared weights; at 1, as
 * dot products; at 3 as dot products with AVX-512, the GEMMs with AVX2. */
/* n images' 4 scores by the small planes' kernels (`small`) within 1e-4
 * of the other kernels' (`other`), and not all near 0. */
static void assert_scores_close(const char *what, const float *small, const float *other, int n)
{
    double worst = 0, scale = 0;
    for (int i = 0; i < n * 4; i++) {
        worst = fmax(worst, fabs((double)small[i] - other[i]));
        scale = fmax(scale, fabs((double)small[i]));
    }
    print_message("%s vs other kernels, %d images: max |diff| %.3g over logits up to %.3g\n", what, n, worst, scale);
    assert_true(scale > 0.01);
    assert_true(worst <= 1e-4 * fmax(1.0, scale));
}

static void test_small_planes_infer(void **st)
{
    (void)st;
    TestComp *t = tc_compile("small.mwt",
                             "dataset d = synthetic(n = 64, test = 64, seed = 3) { classes = 4  shape = [3, 8, 8] }\n"
                             "model m : [3, 8, 8] -> [4] {\n"
                             "    conv(16) batchnorm relu conv(20, stride = 2) batchnorm relu\n"
                             "    conv(17, bias = false) relu maxpool(2)\n"
                             "    modular { conv(18) batchnorm relu } conv(16) relu\n"
                             "    gap linear(4) }\n"
                             "train m on d { epochs = 1  batch = 16  optimizer = sgd(lr = 0.05) }\n",
                             1);
    if (t->errors)
        fail_msg("%s", t->diags);
    const int batches[] = { 32, 8, 1, 3 };
    for (int bi = 0; bi < 4; bi++) {
        int N = batches[bi];
        float small[32 * 4], other[32 * 4];
        int all = 0, gemms = 0, pix = 0, prep = 0, dots = 0, off = 0;
        logits_with(t, 1, NULL, "k_conv2d_small", &all, small, N);   /* each of them: a prefix */
        logits_with(t, 1, NULL, "k_conv2d_small_bn", &gemms, small, N);
        logits_with(t, 1, NULL, "k_conv2d_small_pix", &pix, small, N);
        logits_with(t, 1, NULL, "k_conv2d_small_prep", &prep, small, N);
        logits_with(t, 1, NULL, "k_conv2d_small_dot", &dots, small, N);
        logits_with(t, 1, "MWTC_SMALL", "k_conv2d_small", &off, other, N);
        /* the 4x4 stride-2 conv, the masked 2x2 one, the 2x2 one without
         * batchnorm; below a tile of images also the 4x4 one after the
         * stride, which runs Winograd at 32 images */
        assert_int_equal(gemms, N == 32 ? 2 : 0);   /* the third has no batchnorm: */
        assert_int_equal(all - gemms - pix - prep - dots, N == 32 ? 1 : 0);   /* k_conv2d_small */
        assert_int_equal(pix + dots, N == 32 ? 0 : 4);
        if (N != 3)   /* at 3, by the machine's tile */
            assert_int_equal(pix, N == 8 ? 4 : 0);
        assert_int_equal(prep, pix);   /* each its weights prepared */
        assert_int_equal(off, 0);
        assert_scores_close("small planes", small, other, N);
    }
    tc_free(t);
}

/* Stride-2 5x5 and 4x4 convs into planes of up to 64 pixels
 * (k_small_strided_ok): inference from a tile of images by the GEMMs with
 * batchnorm folded in, as training; below it, not by the dot products
 * (4x4 and 2x2 planes only) but by the direct kernel. The scores agree
 * with MWTC_SMALL=off's either way. */
static void test_small_planes_strided(void **st)
{
    (void)st;
    TestComp *t = tc_compile_ok("strided.mwt",
                                "dataset d = synthetic(n = 64, test = 64, seed = 3) {\n"
                                "    classes = 4  shape = [3, 16, 16] }\n"
                                "model m : [3, 16, 16] -> [4] {\n"
                                "    conv(16) batchnorm relu conv(20, k = 5, stride = 2, pad = 1) batchnorm relu\n"
                                "    conv(18, pad = 2) relu\n"
                                "    modular { conv(17, k = 4, stride = 2, pad = 1) batchnorm relu }\n"
                                "    gap linear(4) }\n"
                                "train m on d { epochs = 1  batch = 16  optimizer = sgd(lr = 0.05) }\n");
    const int batches[] = { 32, 8 };
    for (int bi = 0; bi < 2; bi++) {
        int N = batches[bi];
        float small[32 * 4], other[32 * 4];
        int all = 0, gemms = 0, off = 0;
        logits_with(t, 1, NULL, "k_conv2d_small", &all, small, N);
        logits_with(t, 1, NULL, "k_conv2d_small_bn", &gemms, small, N);
        logits_with(t, 1, "MWTC_SMALL", "k_conv2d_small", &off, other, N);
        /* 16x16 into 7x7 by 5x5 kernels, then 9x9 into 4x4 by 4x4 ones */
        assert_int_equal(gemms, N == 32 ? 2 : 0);
        assert_int_equal(all, gemms);
        assert_int_equal(off, 0);
        assert_scores_close("strided small planes", small, other, N);
    }
    tc_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_what_fuses), cmocka_unit_test(test_what_fuses_with_pools),
        cmocka_unit_test(test_small_planes_infer),
        cmocka_unit_test(test_small_planes_strided),
        cmocka_unit_test(test_fused_scores),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
