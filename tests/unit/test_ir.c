/* Lowering to the graph IR: it verifies for every model we ship, its params
 * are exactly the parameters sema counted (the PyTorch counts), masks and
 * losses are ops, and the verifier catches a graph that breaks a rule. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mwt_test.h"
#include "ir.h"

static long long numel(const IrValue *v)
{
    long long n = 1;
    for (int i = 0; i < v->rank; i++)
        n *= v->d[i];
    return n;
}

static void check_file(const char *rel)
{
    TestComp *t = tc_compile_source(rel, 1);
    assert_int_equal(t->errors, 0);
    for (int i = 0; i < t->c.checked.models.n; i++) {
        Net *net = t->c.checked.models.v[i];
        for (int b = 1; b <= 64; b *= 64) {
            IrGraph *g = ir_lower(&t->c.arena, net, NULL, b);
            char err[512];
            if (ir_verify(g, err, sizeof err) != 0)
                fail_msg("%s: %s", net->name, err);
            long long n = 0;
            for (int p = 0; p < g->params.n; p++)
                n += numel(g->params.v[p]);
            assert_int_equal(n, net->params);
            assert_int_equal(g->masks.n, net->masked_layers);
            assert_int_equal(g->logits->d[0], b);
        }
    }
    tc_free(t);
}

static void test_every_shipped_model_lowers_and_verifies(void **state)
{
    (void)state;
    check_file("stdlib/models/simcnn.mwt");
    check_file("stdlib/models/rescnn.mwt");
    check_file("stdlib/models/vgg16.mwt");
    check_file("stdlib/models/resnet18.mwt");
    check_file("examples/fashion.mwt");
    check_file("examples/rescnn_synth.mwt");
}

static void test_loss_as_written(void **state)
{
    (void)state;
    TestComp *t = tc_compile("ir_loss.mwt",
        "dataset d = synthetic() { classes = 3 shape = [2, 8, 8] }\n"
        "model m : [2, 8, 8] -> [3] { modular { conv(4) relu conv(6) } gap linear(3) }\n"
        "train m on d { batch = 5 loss = cross_entropy + 2 * coupling }\n", 1);
    assert_int_equal(t->errors, 0);
    TrainInfo *tr = t->c.checked.trains.v[0];
    IrGraph *g = ir_lower(&t->c.arena, tr->model, tr, tr->batch);
    char err[512];
    assert_int_equal(ir_verify(g, err, sizeof err), 0);
    const IrNode *sum = g->loss->def;
    assert_int_equal(sum->op, IR_WEIGHTED_SUM);
    assert_int_equal(sum->nin, 2);               /* no cohesion term: it was not written */
    assert_int_equal(sum->in[0]->def->op, IR_CROSS_ENTROPY);
    assert_int_equal(sum->in[1]->def->op, IR_COUPLING);
    assert_true(sum->weights[0] == 1 && sum->weights[1] == 2);
    const IrNode *coup = sum->in[1]->def;
    assert_int_equal(coup->nin, 3);              /* labels and the two masks */
    assert_ptr_equal(coup->in[0], g->labels);
    /* the second mask's generator reads the second conv's input: the relu */
    const IrNode *gen2 = coup->in[2]->def;
    assert_int_equal(gen2->op, IR_MASK_GEN);
    assert_int_equal(gen2->in[0]->def->op, IR_RELU);
    assert_int_equal(g->images->d[0], 5);
    tc_free(t);
}

static void test_verifier_catches_broken_graphs(void **state)
{
    (void)state;
    TestComp *t = tc_compile("ir_bad.mwt", "model m : [1, 8, 8] -> [2] { conv(4) gap linear(2) }\n", 1);
    IrGraph *g = ir_lower(&t->c.arena, t->c.checked.models.v[0], NULL, 2);
    char err[512];
    assert_int_equal(ir_verify(g, err, sizeof err), 0);
    IrNode *conv = NULL, *lin = NULL;
    for (int i = 0; i < g->nodes.n; i++) {
        IrNode *n = g->nodes.v[i];
        if (n->op == IR_CONV2D)
            conv = n;
        if (n->op == IR_LINEAR)
            lin = n;
    }
    conv->out->d[1] = 5;                         /* a wrong output shape */
    assert_int_equal(ir_verify(g, err, sizeof err), -1);
    assert_non_null(strstr(err, "conv2d (line 1): "));
    conv->out->d[1] = 4;
    IrValue *w = lin->in[1];
    lin->in[1] = lin->out;                       /* an operand used before it is defined */
    assert_int_equal(ir_verify(g, err, sizeof err), -1);
    assert_non_null(strstr(err, "is used before it is defined"));
    lin->in[1] = w;
    lin->nin = 1;                                /* too few operands */
    assert_int_equal(ir_verify(g, err, sizeof err), -1);
    assert_non_null(strstr(err, "the op takes 2 or 3"));
    tc_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_shipped_model_lowers_and_verifies),
        cmocka_unit_test(test_loss_as_written),
        cmocka_unit_test(test_verifier_catches_broken_graphs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
