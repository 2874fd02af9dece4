/* The grammar: the tree it builds, and recovery that reports every syntax error. */
#include <stdlib.h>
#include <string.h>

#include "mwt_test.h"

static const Item *item(TestComp *t, int i)
{
    assert_true(i < t->c.prog.items.n);
    return t->c.prog.items.v[i];
}

static void test_items(void **state)
{
    (void)state;
    TestComp *t = tc_compile("p_items.mwt",
        "dataset d = synthetic(n = 64) { classes = 2 shape = [1, 8, 8] }\n"
        "block b(out, k = 3) { conv(out, k = k) relu }\n"
        "model m(c = 2) : [1, 8, 8] -> [c] { b(4) modular { b(4) } residual(shortcut = { conv(4, k = 1) }) { b(4) } gap linear(c) }\n"
        "train m on d { epochs = 2 loss = cross_entropy + 0.5 * cohesion }\n"
        "modularize m { threshold = 0.9 }\n"
        "reuse m as r { classes = [0, 1] }\n", 0);
    assert_int_equal(t->errors, 0);
    assert_int_equal(t->c.prog.items.n, 6);
    assert_int_equal(item(t, 0)->kind, IT_DATASET);
    assert_string_equal(item(t, 0)->source->s, "synthetic");
    assert_int_equal(item(t, 0)->kvs.n, 2);
    const Item *b = item(t, 1);
    assert_int_equal(b->kind, IT_BLOCK);
    assert_int_equal(b->params.n, 2);
    assert_null(((Param *)b->params.v[0])->deflt);
    assert_int_equal(((Param *)b->params.v[1])->deflt->i, 3);
    const Item *m = item(t, 2);
    assert_int_equal(m->kind, IT_MODEL);
    assert_int_equal(m->in_shape->items.n, 3);
    assert_int_equal(m->layers.n, 5);
    const Layer *res = m->layers.v[2];
    assert_int_equal(res->kind, LY_RESIDUAL);
    assert_int_equal(res->args.n, 1);
    assert_int_equal(((Arg *)res->args.v[0])->value->kind, EX_LAYERS);
    assert_int_equal(((Layer *)m->layers.v[1])->kind, LY_MODULAR);
    const Item *tr = item(t, 3);
    assert_string_equal(tr->model, "m");
    assert_string_equal(tr->dataset, "d");
    const Expr *loss = ((KeyVal *)tr->kvs.v[1])->value;
    assert_int_equal(loss->kind, EX_BINARY);
    assert_int_equal(loss->op, '+');
    assert_int_equal(item(t, 5)->kind, IT_REUSE);
    assert_string_equal(item(t, 5)->name, "r");
    tc_free(t);
}

static void test_precedence(void **state)
{
    (void)state;
    TestComp *t = tc_compile("p_prec.mwt", "block b(x = 1 + 2 * 3 - -4 / 2) { relu }\n", 0);
    assert_int_equal(t->errors, 0);
    const Expr *e = ((Param *)item(t, 0)->params.v[0])->deflt;
    /* (1 + (2 * 3)) - ((-4) / 2) */
    assert_int_equal(e->op, '-');
    assert_int_equal(e->lhs->op, '+');
    assert_int_equal(e->lhs->rhs->op, '*');
    assert_int_equal(e->rhs->op, '/');
    assert_int_equal(e->rhs->lhs->kind, EX_NEG);
    tc_free(t);
}

static void test_tuples_and_lists(void **state)
{
    (void)state;
    TestComp *t = tc_compile("p_tuple.mwt",
        "dataset d = idx(\"x\") { classes = 2 shape = [1, 2, 2] normalize = [(0.5, 0.25)] augment = [] }\n", 0);
    assert_int_equal(t->errors, 0);
    const Expr *norm = ((KeyVal *)item(t, 0)->kvs.v[2])->value;
    assert_int_equal(norm->kind, EX_LIST);
    assert_int_equal(((Expr *)norm->items.v[0])->kind, EX_TUPLE);
    assert_int_equal(((KeyVal *)item(t, 0)->kvs.v[3])->value->items.n, 0);
    tc_free(t);
}

static void test_recovery_reports_every_syntax_error(void **state)
{
    (void)state;
    TestComp *t = tc_compile("p_recover.mwt",
        "model a : [1, 8, 8] -> [2] { conv(4,) gap linear(2) }\n"
        "train a on d { epochs = }\n"
        "model b : [1, 8, 8] [2] { gap linear(2) }\n"
        "block ok { relu }\n", 0);
    assert_int_equal(t->errors, 3);
    assert_diag(t, "p_recover.mwt:1:37: error: syntax error: unexpected ')'");
    assert_diag(t, "p_recover.mwt:2:25: error: syntax error: unexpected '}'");
    assert_diag(t, "p_recover.mwt:3:21: error: syntax error: unexpected '[', expecting '->'");
    /* the item after the errors still parses */
    const Item *last = t->c.prog.items.v[t->c.prog.items.n - 1];
    assert_string_equal(last->name, "ok");
    tc_free(t);
}

static void test_empty_and_comment_only(void **state)
{
    (void)state;
    TestComp *t = tc_compile("p_empty.mwt", "", 1);
    assert_int_equal(t->errors, 0);
    assert_int_equal(t->c.prog.items.n, 0);
    tc_free(t);
    t = tc_compile("p_comments.mwt", "# nothing\n# at all", 1);
    assert_int_equal(t->errors, 0);
    tc_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_tuples_and_lists),
        cmocka_unit_test(test_recovery_reports_every_syntax_error),
        cmocka_unit_test(test_empty_and_comment_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
