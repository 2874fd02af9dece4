/* pass_phase and k_phase.c: a 5x5 conv at stride 2 as a 3x3 conv over its
 * input's phases. The identity itself on the native kernels (every padding
 * 0-4, odd and even sizes, rectangles), the layout kernels against each
 * other's adjoints, the rewritten graphs, and compiled models that train
 * and score as the direct kernels do (to float rounding: the sums run in
 * another order). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "k_kernels.h"
#include "mwt_test.h"
#include "rt_rng.h"

static float *randn(RtRng *r, long n)
{
    float *v = malloc(sizeof(float) * (size_t)n);
    for (long i = 0; i < n; i++)
        v[i] = rt_rng_normal(r);
    return v;
}

/* The direct 5x5 stride-2 conv at padding p against the 3x3 stride-1 conv
 * at padding p / 2 over the phases shifted by p % 2, both by k_conv2d_fwd. */
static void identity_at(int H, int W, int p)
{
    enum { N = 2, C = 3, K = 5, R = 5, SIMD = 8 };
    RtRng r;
    rt_rng_seed(&r, (uint64_t)(H * 100 + W * 10 + p));
    int OH = (H + 2 * p - R) / 2 + 1, OW = (W + 2 * p - R) / 2 + 1, q = p / 2, off = p - 2 * q;
    int HP = OH + 2 - 2 * q, WP = OW + 2 - 2 * q;
    float *x = randn(&r, (long)N * C * H * W), *w = randn(&r, (long)K * C * R * R), *b = randn(&r, K);
    float *y1 = calloc((size_t)N * K * OH * OW, sizeof(float)), *y2 = calloc((size_t)N * K * OH * OW, sizeof(float));
    float *xp = malloc(sizeof(float) * (size_t)N * 4 * C * HP * WP), *wp = malloc(sizeof(float) * K * 4 * C * 9);
    long ws1 = k_conv2d_ws(N, C, H, W, K, R, R, 2, p, OH, OW, SIMD),
         ws2 = k_conv2d_ws(N, 4 * C, HP, WP, K, 3, 3, 1, q, OH, OW, SIMD);
    float *ws = malloc(sizeof(float) * (size_t)(ws1 > ws2 ? ws1 : ws2));
    k_conv2d_fwd(x, w, b, y1, ws, N, C, H, W, K, R, R, 2, p, OH, OW, 1, SIMD, 0, N * OH);
    k_space_to_depth(x, xp, N, C, H, W, HP, WP, off, 0, N * C);
    k_phase_w(w, wp, K, C, R, 0, K);
    k_conv2d_fwd(xp, wp, b, y2, ws, N, 4 * C, HP, WP, K, 3, 3, 1, q, OH, OW, 1, SIMD, 0, N * OH);
    for (long i = 0; i < (long)N * K * OH * OW; i++)
        if (fabsf(y1[i] - y2[i]) > 1e-4f * (1 + fabsf(y1[i])))
            fail_msg("%dx%d pad %d: output %ld: direct %g, by phases %g", H, W, p, i, y1[i], y2[i]);
    free(x), free(w), free(b), free(y1), free(y2), free(xp), free(wp), free(ws);
}

static void test_identity(void **s)
{
    (void)s;
    for (int p = 0; p <= 4; p++) {
        identity_at(12, 12, p);
        identity_at(13, 13, p);
        identity_at(11, 14, p);
        identity_at(16, 9, p);
    }
}

static double dot(const float *a, const float *b, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* <S x, y> = <x, S' y>: depth_to_space is space_to_depth's gradient, and
 * phase_w_grad phase_w's (the extents one past x too, whose elements
 * space_to_depth writes as zeros and depth_to_space drops), on narrow
 * planes and on wide ones (space_to_depth's vector path). */
static void test_adjoints(void **s)
{
    (void)s;
    RtRng r;
    rt_rng_seed(&r, 11);
    for (int off = 0; off <= 1; off++)
        for (int H = 5; H <= 8; H++) {
            enum { N = 2, C = 3 };
            int W = H == 5 ? 70 : H == 6 ? 65 : 7;   /* rows of 16 phase columns at a time and their tails */
            int HP = (H + off + 1) / 2 + (H & 1), WP = (W + off + 1) / 2;
            long nx = (long)N * C * H * W, np = (long)N * 4 * C * HP * WP;
            float *x = randn(&r, nx), *yp = randn(&r, np), *sx = malloc(sizeof(float) * (size_t)np),
                  *ty = malloc(sizeof(float) * (size_t)nx);
            k_space_to_depth(x, sx, N, C, H, W, HP, WP, off, 0, N * C);
            k_depth_to_space(yp, ty, N, C, H, W, HP, WP, off, 0, N * C);
            double a = dot(sx, yp, np), b = dot(x, ty, nx);
            if (fabs(a - b) > 1e-4 * (1 + fabs(a)))
                fail_msg("off %d, %dx%d into %dx%d: <S x, y> %g, <x, S' y> %g", off, H, W, HP, WP, a, b);
            free(x), free(yp), free(sx), free(ty);
        }
    for (int R = 1; R <= 6; R++) {
        enum { K = 3, C = 2 };
        long nw = (long)K * C * R * R, np = (long)K * 4 * C * 9;
        float *w = randn(&r, nw), *yp = randn(&r, np), *pw = malloc(sizeof(float) * (size_t)np),
              *ty = malloc(sizeof(float) * (size_t)nw);
        k_phase_w(w, pw, K, C, R, 0, K);
        k_phase_w_grad(yp, ty, K, C, R, 0, K);
        double a = dot(pw, yp, np), b = dot(w, ty, nw);
        if (fabs(a - b) > 1e-4 * (1 + fabs(a)))
            fail_msg("R %d: <P w, y> %g, <w, P' y> %g", R, a, b);
        /* and every tap of w lands once */
        double sw = 0, sp = 0;
        for (long i = 0; i < nw; i++)
            sw += w[i];
        for (long i = 0; i < np; i++)
            sp += pw[i];
        assert_true(fabs(sw - sp) < 1e-4 * (1 + fabs(sw)));
        free(w), free(yp), free(pw), free(ty);
    }
}

/* Stride-2 5x5 convs at every padding, each op going through the phases
 * where pass_phase's rules say so (training; inference where the forward
 * does):
 *   m's 16x16 out (padding 2): forward, data and weight gradients
 *       (inference too);
 *   m's 9x9 (padding 3, the phases shifted): forward and data gradient
 *       (inference too);
 *   m's 7x7 (padding 4, F(4x4) at padding 2): the data gradient alone;
 *   m's 3x3 (padding 1): none, its planes k_small.c's;
 *   v's 12x12 (padding 0, the images'): forward and weight gradient;
 *   v's 8x8 (padding 4, F(4x4) at padding 2 and 0): the data gradient
 *       alone. */
static const char *src =
    "dataset d = synthetic(n = 64, test = 16, seed = 5) { classes = 4  shape = [3, 32, 32] }\n"
    "model m : [3, 32, 32] -> [4] {\n"
    "    conv(8) relu\n"
    "    conv(16, k = 5, stride = 2, pad = 2) batchnorm relu\n"
    "    conv(16, k = 5, stride = 2, pad = 3, bias = false) relu\n"
    "    conv(16, k = 5, stride = 2, pad = 4) batchnorm relu\n"
    "    conv(16, k = 5, stride = 2, pad = 1) relu\n"
    "    gap linear(4) }\n"
    "dataset e = synthetic(n = 64, test = 16, seed = 6) { classes = 4  shape = [4, 28, 28] }\n"
    "model v : [4, 28, 28] -> [4] {\n"
    "    conv(16, k = 5, stride = 2, pad = 0) relu\n"
    "    conv(16, k = 5, stride = 2, pad = 4) batchnorm relu\n"
    "    gap linear(4) }\n"
    "dataset f = synthetic(n = 64, test = 16, seed = 7) { classes = 4  shape = [16, 23, 23] }\n"
    "model w : [16, 23, 23] -> [4] {\n"
    "    conv(32, k = 5, stride = 2, pad = 1) relu\n"
    "    conv(32, k = 5, stride = 2, pad = 2) relu\n"
    "    gap linear(4) }\n"
    "train m on d { epochs = 1  batch = 4  optimizer = sgd(lr = 0.1) }\n"
    "train v on e { epochs = 1  batch = 4  optimizer = sgd(lr = 0.1) }\n"
    "train w on f { epochs = 1  batch = 4  optimizer = sgd(lr = 0.1) }\n";

static void test_graphs(void **st)
{
    (void)st;
    TestComp *t = tc_compile_ok("phase.mwt", src);
    Arena *a = &t->c.arena;
    char why[256];
    IrGraph *tg = ir_lower(a, tc_model(t, "m"), t->c.checked.trains.v[0], 4);
    assert_int_equal(pass_autodiff(a, tg, why, sizeof why), 0);
    IrGraph *tf = pass_fuse(a, tg), *tp = pass_phase(a, tf, 16);
    if (ir_verify(tp, why, sizeof why) != 0)
        fail_msg("%s", why);
    /* m: x's phases for the first two, w regrouped for the first three,
     * three data gradients and one weight gradient through them */
    assert_int_equal(tc_count_op(tp, IR_SPACE_TO_DEPTH), 2);
    assert_int_equal(tc_count_op(tp, IR_PHASE_W), 3);
    assert_int_equal(tc_count_op(tp, IR_DEPTH_TO_SPACE), 3);
    assert_int_equal(tc_count_op(tp, IR_PHASE_W_GRAD), 1);
    assert_int_equal(tc_count_op(tp, IR_CONV2D), tc_count_op(tf, IR_CONV2D));
    assert_int_equal(tp->nodes.n, tf->nodes.n + 4 + 3 + 2);
    int s2 = 0;
    for (int i = 0; i < tp->nodes.n; i++) {
        const IrNode *n = tp->nodes.v[i];
        assert_true(tp->origin[i] >= 0 && tp->origin[i] < tg->nodes.n);
        assert_true(i == 0 || tp->origin[i] >= tp->origin[i - 1]);
        s2 += (n->op == IR_CONV2D || n->op == IR_CONV2D_GRAD_X || n->op == IR_CONV2D_GRAD_W) && n->stride == 2;
        /* the gradients land in the parameters' gradients, as before */
        if (n->op == IR_PHASE_W_GRAD)
            assert_int_equal(n->out->kind, IR_V_GRAD);
    }
    /* as they were: the second's and third's weight gradients, the third's
     * forward, the last's three */
    assert_int_equal(s2, 6);
    assert_ptr_equal(tp->loss, tf->loss);
    /* the verifier checks the new ops' shapes: a shift of 2, or weights
     * regrouped from another kernel size, are refused by name */
    for (int i = 0; i < tp->nodes.n; i++) {
        IrNode *n = tp->nodes.v[i];
        long long *attr = n->op == IR_SPACE_TO_DEPTH || n->op == IR_DEPTH_TO_SPACE ? &n->pad
                          : n->op == IR_PHASE_W || n->op == IR_PHASE_W_GRAD   ? &n->k
                                                                              : NULL;
        if (!attr)
            continue;
        long long keep = *attr;
        *attr = n->op == IR_SPACE_TO_DEPTH || n->op == IR_DEPTH_TO_SPACE ? 2 : 3;
        assert_int_equal(ir_verify(tp, why, sizeof why), -1);
        if (!strstr(why, ir_op_name(n->op)))
            fail_msg("%s: %s", ir_op_name(n->op), why);
        *attr = keep;
    }
    assert_int_equal(ir_verify(tp, why, sizeof why), 0);
    /* the source graphs are untouched; off, nothing changes */
    assert_int_equal(tc_count_op(tf, IR_SPACE_TO_DEPTH), 0);
    setenv("MWTC_PHASE", "off", 1);
    assert_ptr_equal(pass_phase(a, tf, 16), tf);
    unsetenv("MWTC_PHASE");
    /* inference: the first two, fused with their batchnorm or not */
    IrGraph *eg = ir_lower(a, tc_model(t, "m"), NULL, 4), *ef = pass_fuse(a, eg), *ep = pass_phase(a, ef, 16);
    if (ir_verify(ep, why, sizeof why) != 0)
        fail_msg("%s", why);
    assert_int_equal(tc_count_op(ep, IR_SPACE_TO_DEPTH), 2);
    assert_int_equal(tc_count_op(ep, IR_CONV2D_BN), tc_count_op(ef, IR_CONV2D_BN));
    /* v: the first's forward and weight gradient (no data gradient: the
     * images), the second's data gradient */
    IrGraph *vg = ir_lower(a, tc_model(t, "v"), t->c.checked.trains.v[1], 4);
    assert_int_equal(pass_autodiff(a, vg, why, sizeof why), 0);
    IrGraph *vp = pass_phase(a, pass_fuse(a, vg), 16);
    if (ir_verify(vp, why, sizeof why) != 0)
        fail_msg("%s", why);
    assert_int_equal(tc_count_op(vp, IR_SPACE_TO_DEPTH), 1);
    assert_int_equal(tc_count_op(vp, IR_PHASE_W), 2);
    assert_int_equal(tc_count_op(vp, IR_DEPTH_TO_SPACE), 1);
    assert_int_equal(tc_count_op(vp, IR_PHASE_W_GRAD), 1);
    IrGraph *wg = ir_lower(a, tc_model(t, "w"), t->c.checked.trains.v[2], 4);
    assert_int_equal(pass_autodiff(a, wg, why, sizeof why), 0);
    IrGraph *wf = pass_fuse(a, wg);
    /* w: the first's forward and weight gradient (F(4x4), 12x12 for 11x11)
     * and the second's data gradient; with 8-float vectors (AVX2's rules)
     * also the second's forward (6x6 outputs) */
    IrGraph *w8 = pass_phase(a, wf, 8), *w16 = pass_phase(a, wf, 16);
    assert_int_equal(tc_count_op(w8, IR_SPACE_TO_DEPTH), 2);
    assert_int_equal(tc_count_op(w8, IR_PHASE_W_GRAD), 1);
    assert_int_equal(tc_count_op(w16, IR_SPACE_TO_DEPTH), 1);
    assert_int_equal(tc_count_op(w16, IR_PHASE_W_GRAD), 1);
    assert_int_equal(tc_count_op(w8, IR_DEPTH_TO_SPACE), 1);
    assert_int_equal(tc_count_op(w16, IR_DEPTH_TO_SPACE), 1);
    tc_free(t);
}

/* One training step at learning rate 0 (loss and every gradient) and the
 * inference logits of model `name`, with MWTC_PHASE=off or not; the calls
 * to k_space_to_depth and k_depth_to_space in *phased. */
static void run_with(TestComp *t, const char *name, int tr, int off, double *loss, float **grads, float *logits,
                     int *phased)
{
    if (off)
        setenv("MWTC_PHASE", "off", 1);
    RunModel m;
    RtRng rng;
    rt_rng_seed(&rng, 21);
    tc_model_init(&m, t, tc_model(t, name), t->c.checked.trains.v[tr], 4, 2, &rng, MASK_INIT_KAIMING_NORMAL);
    unsetenv("MWTC_PHASE");
    *phased = 0;
    for (int i = 0; i < m.calls.n; i++)
        *phased += !strcmp(m.calls.v[i].kernel, "k_space_to_depth") + !strcmp(m.calls.v[i].kernel, "k_depth_to_space");
    const IrGraph *g = m.train.g;
    long long img = ir_numel(g->images);
    float *x = malloc(sizeof(float) * (size_t)img);
    int32_t y[4] = { 0, 1, 2, 3 };
    for (long long i = 0; i < img; i++)
        x[i] = rt_rng_normal(&rng);
    int ok;
    *loss = run_train_step(&m, x, y, 0.0, 1, &ok);
    for (int p = 0; p < g->params.n; p++) {
        long long n = ir_numel(g->params.v[p]);
        grads[p] = malloc(sizeof(float) * (size_t)n);
        memcpy(grads[p], m.base + m.L->grads + (m.L->param_off[p] - m.L->params), sizeof(float) * (size_t)n);
    }
    /* running statistics that are not 0 and 1, so that the folding into the conv shows */
    for (int i = 0; i < m.eval.g->states.n; i++) {
        const IrValue *s = m.eval.g->states.v[i];
        float *v = run_state(&m, i);
        for (long long j = 0; j < ir_numel(s); j++)
            v[j] = strstr(s->name, ".var") ? 0.5f + rt_rng_uniform(&rng) : rt_rng_uniform(&rng) - 0.5f;
    }
    memcpy(run_images(&m, &m.eval), x, sizeof(float) * (size_t)img);
    run_graph(&m, &m.eval);
    memcpy(logits, m.base + m.eval.plan->off[m.eval.g->logits->id], sizeof(float) * 16);
    free(x);
    run_model_free(&m);
}

static double worst_rel(const float *a, const float *b, long long n)
{
    double worst = 0, scale = 1e-3;
    for (long long i = 0; i < n; i++)
        scale = fmax(scale, fabs((double)a[i]));
    for (long long i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)a[i] - b[i]) / scale);
    return worst;
}

static void test_same_as_direct(void **st)
{
    (void)st;
    TestComp *t = tc_compile_ok("phase.mwt", src);
    const char *names[4] = { "m", "v", "w", "w" };
    /* the last: w compiled for AVX2 (8-float tiles and their rules), where the host has it */
    __builtin_cpu_init();
    int runs = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 4 : 3;
    for (int k = 0; k < runs; k++) {
        const TrainInfo *tr = t->c.checked.trains.v[k < 3 ? k : 2];
        if (k == 3)
            setenv("MWTC_JIT_CPU", "x86-64-v3", 1);
        float *g1[64] = { 0 }, *g2[64] = { 0 }, l1[16], l2[16];
        double loss1, loss2;
        int phased1, phased2;
        run_with(t, names[k], k < 3 ? k : 2, 0, &loss1, g1, l1, &phased1);
        run_with(t, names[k], k < 3 ? k : 2, 1, &loss2, g2, l2, &phased2);
        unsetenv("MWTC_JIT_CPU");
        assert_true(phased1 >= 2);   /* a forward's or weight gradient's, and a data gradient's */
        if (k == 3)   /* training both forwards' phases and a data gradient's, inference the first's */
            assert_int_equal(phased1, 4);
        assert_int_equal(phased2, 0);
        if (fabs(loss1 - loss2) > 1e-5 * (1 + fabs(loss2)))
            fail_msg("model %s: loss by phases %.8g, direct %.8g", names[k], loss1, loss2);
        IrGraph *g = ir_lower(&t->c.arena, tc_model(t, names[k]), tr, 4);   /* the parameters, in order */
        for (int p = 0; p < g->params.n; p++) {
            const IrValue *pv = g->params.v[p];
            double d = worst_rel(g2[p], g1[p], ir_numel(pv));
            if (d > 1e-4)
                fail_msg("model %s: the gradient of %s differs by %.3g of its largest", names[k], pv->name, d);
            free(g1[p]), free(g2[p]);
        }
        double d = worst_rel(l2, l1, 16);
        if (d > 1e-4)
            fail_msg("model %s: the logits differ by %.3g of the largest", names[k], d);
    }
    tc_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_adjoints),
        cmocka_unit_test(test_graphs),
        cmocka_unit_test(test_same_as_direct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
