/* Shape inference, mask placement, and parameter and FLOP counts checked
 * against numbers worked out by hand. */
#include <stdlib.h>
#include <string.h>

#include "mwt_test.h"

static void assert_shape(Shape s, int rank, long long a, long long b, long long c)
{
    assert_int_equal(s.rank, rank);
    assert_int_equal(s.d[0], a);
    if (rank == 3) {
        assert_int_equal(s.d[1], b);
        assert_int_equal(s.d[2], c);
    }
}

static void test_conv_pool_linear(void **state)
{
    (void)state;
    TestComp *t = tc_compile("h_basic.mwt",
        "model m : [3, 32, 32] -> [10] {\n"
        "  conv(16, k = 5, stride = 2, pad = 1, bias = false)\n"   /* (32 + 2 - 5) / 2 + 1 = 15 */
        "  maxpool(3, stride = 2)\n"                               /* (15 - 3) / 2 + 1 = 7 */
        "  avgpool(2)\n"                                           /* 3 */
        "  batchnorm relu dropout(0.25) flatten linear(10)\n"
        "}\n", 1);
    assert_int_equal(t->errors, 0);
    Net *n = tc_model(t, "m");
    assert_shape(n->seq.v[0]->out, 3, 16, 15, 15);
    assert_int_equal(n->seq.v[0]->params, 3 * 16 * 25);
    assert_int_equal(n->seq.v[0]->flops, 2LL * 3 * 25 * 16 * 15 * 15);
    assert_shape(n->seq.v[1]->out, 3, 16, 7, 7);
    assert_shape(n->seq.v[2]->out, 3, 16, 3, 3);
    assert_int_equal(n->seq.v[3]->params, 32);
    assert_shape(n->seq.v[6]->out, 1, 144, 0, 0);
    assert_int_equal(n->seq.v[7]->params, 144 * 10 + 10);
    assert_int_equal(n->params, 3 * 16 * 25 + 32 + 1450);
    tc_free(t);
}

static void test_shape_errors(void **state)
{
    (void)state;
    TestComp *t = tc_compile("h_err.mwt",
        "model a : [1, 28, 28] -> [10] { conv(8) linear(10) }\n"
        "model b : [1, 4, 4] -> [1] { maxpool(8) }\n"
        "model c : [1, 2, 2] -> [1] { conv(1, k = 5, pad = 0) }\n"
        "model d : [1, 8, 8] -> [10] { gap gap }\n"
        "model e : [1, 8, 8] -> [10] { conv(4) gap linear(5) }\n"
        "model f : [1, 8, 8] -> [4, 8, 8] { residual(shortcut = { conv(2) }) { conv(4) } }\n"
        "model g : [1, 8, 8] -> [4, 6, 6] { residual { conv(4, k = 3, pad = 0) } }\n", 1);
    assert_int_equal(t->errors, 7);
    assert_diag(t, "1:41: error: linear needs a flat input [N], but its input is [8, 28, 28] (put flatten or gap before it)");
    assert_diag(t, "2:30: error: maxpool(8) is larger than its input [1, 4, 4]");
    assert_diag(t, "3:30: error: conv: kernel 5x5 is larger than its input [1, 2, 2] padded by 0");
    assert_diag(t, "4:35: error: gap needs a [C, H, W] input, but its input is [1]");
    assert_diag(t, "5:24: error: model 'e' is declared to output [10], but its layers give [5]");
    assert_diag(t, "6:36: error: residual: its body gives [4, 8, 8] but its shortcut gives [2, 8, 8]");
    assert_diag(t, "7:36: error: residual: its body turns [1, 8, 8] into [4, 6, 6], and no 1x1 conv with a stride can do the same");
    tc_free(t);
}

static void test_residual_projection(void **state)
{
    (void)state;
    TestComp *t = tc_compile("h_res.mwt",
        "model m : [16, 32, 32] -> [32, 16, 16] {\n"
        "  residual { conv(32, stride = 2, bias = false) batchnorm relu conv(32, bias = false) batchnorm } relu\n"
        "}\n"
        "model same : [8, 4, 4] -> [8, 4, 4] { residual { conv(8) } }\n", 1);
    assert_int_equal(t->errors, 0);
    NetLayer *r = tc_model(t, "m")->seq.v[0];
    assert_int_equal(r->op, NET_RESIDUAL);
    assert_true(r->auto_shortcut);
    assert_int_equal(r->shortcut.n, 2);
    NetLayer *proj = r->shortcut.v[0];
    assert_int_equal(proj->k, 1);
    assert_int_equal(proj->stride, 2);
    assert_false(proj->bias);
    assert_int_equal(proj->params, 16 * 32);
    assert_int_equal(r->shortcut.v[1]->params, 64);
    assert_shape(r->out, 3, 32, 16, 16);
    NetLayer *s = tc_model(t, "same")->seq.v[0];
    assert_int_equal(s->shortcut.n, 0);   /* identity */
    tc_free(t);
}

static void test_mask_placement(void **state)
{
    (void)state;
    TestComp *t = tc_compile("h_mask.mwt",
        "block cb(o) { conv(o) }\n"
        "model m : [3, 8, 8] -> [16, 4, 4] {\n"
        "  conv(8) relu\n"
        "  modular { cb(8) batchnorm relu conv(16) relu maxpool(2) }\n"
        "}\n"
        "model x : [3, 8, 8] -> [4, 8, 8] { conv(4) relu mask }\n"
        "model big : [3, 4, 4] -> [256, 4, 4] { conv(256) mask }\n"
        "model r : [8, 8, 8] -> [16, 4, 4] { modular { residual { conv(16, stride = 2) batchnorm } } }\n", 1);
    assert_int_equal(t->errors, 0);
    Net *n = tc_model(t, "m");
    /* conv relu | conv(from cb) batchnorm MASK relu conv MASK relu maxpool */
    NetOp want[] = { NET_CONV, NET_RELU, NET_CONV, NET_BATCHNORM, NET_MASK, NET_RELU, NET_CONV, NET_MASK,
                     NET_RELU, NET_MAXPOOL };
    assert_int_equal(n->seq.n, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(n->seq.v[i]->op, want[i]);
    assert_null(n->seq.v[0]->mask);           /* outside modular: no mask */
    NetLayer *m1 = n->seq.v[4];
    assert_ptr_equal(m1->conv, n->seq.v[2]);
    assert_int_equal(m1->gen_in, 8);          /* the conv's input channels */
    assert_int_equal(m1->hidden, 8);          /* C_out < 128: H = C_out */
    assert_int_equal(m1->params, 8 * 8 + 8 * 8 + 8);
    assert_int_equal(n->masked_layers, 2);
    assert_int_equal(n->masked_kernels, 24);
    Net *x = tc_model(t, "x");
    assert_int_equal(x->seq.v[2]->op, NET_MASK);   /* the explicit mask, after relu */
    assert_false(x->seq.v[2]->auto_mask);
    NetLayer *bm = tc_model(t, "big")->seq.v[1];
    assert_int_equal(bm->hidden, 128);        /* C_out >= 128: H = C_out / 2 */
    assert_int_equal(bm->params, 3 * 128 + 128 * 256 + 256);
    /* the automatic projection of a residual in modular { } is masked too */
    NetLayer *res = tc_model(t, "r")->seq.v[0];
    assert_int_equal(res->body.v[2]->op, NET_MASK);
    assert_int_equal(res->shortcut.n, 3);
    assert_int_equal(res->shortcut.v[2]->op, NET_MASK);
    assert_int_equal(tc_model(t, "r")->masked_layers, 2);
    tc_free(t);
}

static void test_mask_errors(void **state)
{
    (void)state;
    TestComp *t = tc_compile("h_maskerr.mwt",
        "model a : [3, 8, 8] -> [3, 8, 8] { relu mask }\n"
        "model b : [3, 8, 8] -> [4, 8, 8] { conv(4) mask mask }\n"
        "model c : [3, 8, 8] -> [4, 8, 8] { modular { conv(4) mask } }\n"
        "model d : [3, 8, 8] -> [256] { conv(4) flatten mask }\n"
        "model e : [3, 8, 8] -> [4, 8, 8] { modular { modular { conv(4) } } }\n", 1);
    assert_int_equal(t->errors, 5);
    assert_diag(t, "1:41: error: mask must follow a conv");
    assert_diag(t, "2:49: error: the conv this mask follows already has a mask");
    assert_diag(t, "3:54: error: 'mask' inside 'modular { }' is redundant");
    assert_diag(t, "4:48: error: mask masks the channels of the conv at line 4, but after flatten the input here is "
                   "[256], which has none");
    assert_diag(t, "5:46: error: 'modular' inside 'modular'");
    tc_free(t);
}

static void test_fashion_example(void **state)
{
    (void)state;
    TestComp *t = tc_compile_source("examples/fashion.mwt", 1);
    assert_int_equal(t->errors, 0);
    Net *m = tc_model(t, "simcnn");
    assert_int_equal(m->params, 466186);      /* PyTorch's count, tests/models/expected_params.txt */
    assert_int_equal(m->masked_kernels, 288);
    assert_int_equal(m->masked_layers, 4);
    tc_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_pool_linear),
        cmocka_unit_test(test_shape_errors),
        cmocka_unit_test(test_residual_projection),
        cmocka_unit_test(test_mask_placement),
        cmocka_unit_test(test_mask_errors),
        cmocka_unit_test(test_fashion_example),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
