/* Names, arguments, values and statements. */
#include <stdlib.h>
#include <string.h>

#include "mwt_test.h"
#include "names.h"
#include "rt_data.h"

#define DS "dataset d = synthetic(n = 64) { classes = 2 shape = [1, 8, 8] }\n"
#define M "model m : [1, 8, 8] -> [2] { modular { conv(4) relu } gap linear(2) }\n"

static void test_block_arguments_and_defaults(void **state)
{
    (void)state;
    TestComp *t = tc_compile("s_args.mwt",
        "block b(out, k = 3, stride = 1, p = k / 2) { conv(out, k = k, stride = stride, pad = p) }\n"
        "model m : [1, 9, 9] -> [4, 5, 5] { b(4, 5, stride = 2) }\n", 1);
    assert_int_equal(t->errors, 0);
    Net *n = tc_model(t, "m");
    NetLayer *c = n->seq.v[0];
    assert_int_equal(c->k, 5);
    assert_int_equal(c->stride, 2);
    assert_int_equal(c->pad, 2);               /* the default k / 2, with k = 5 */
    assert_int_equal(c->out.d[1], 5);
    assert_string_equal(c->site->block, "b");
    tc_free(t);
}

static void test_argument_errors(void **state)
{
    (void)state;
    TestComp *t = tc_compile("s_argerr.mwt",
        "model a : [1, 8, 8] -> [1, 8, 8] { conv(1, 3, 1, 1, true, 7) }\n"
        "model b : [1, 8, 8] -> [1, 8, 8] { conv(1, kernel = 3) }\n"
        "model c : [1, 8, 8] -> [1, 8, 8] { conv(1, k = 3, k = 3) }\n"
        "model d : [1, 8, 8] -> [1, 8, 8] { conv(k = 3, 1) }\n"
        "model e : [1, 8, 8] -> [1, 8, 8] { conv(k = 3) }\n"
        "model f : [1, 8, 8] -> [1, 8, 8] { conv(1.5) }\n"
        "model g : [1, 8, 8] -> [1, 8, 8] { relu(1) }\n", 1);
    assert_int_equal(t->errors, 7);
    assert_diag(t, "1:59: error: too many arguments to conv (it takes at most 5)");
    assert_diag(t, "2:44: error: conv has no parameter 'kernel'; did you mean 'k'? (it has: out, k, stride, pad, bias)");
    assert_diag(t, "3:51: error: argument 'k' of conv given twice");
    assert_diag(t, "4:48: error: positional argument after a named one in conv");
    assert_diag(t, "5:36: error: conv needs argument 'out'");
    assert_diag(t, "6:41: error: argument 'out' of conv must be an integer, not 1.5");
    assert_diag(t, "7:41: error: relu takes no arguments");
    tc_free(t);
}

static void test_expressions(void **state)
{
    (void)state;
    TestComp *t = tc_compile("s_expr.mwt",
        "block b(n) { conv(n * 2 - 7 / 2) }\n"       /* 7 / 2 truncates to 3 */
        "model m(w = 5) : [1, 8, 8] -> [7, 8, 8] { b(w) }\n"
        "model z : [1, 8, 8] -> [1, 8, 8] { conv(1 / 0) }\n"
        "model o : [1, 8, 8] -> [1, 8, 8] { conv(9223372036854775807 + 1) }\n"
        "model u : [1, 8, 8] -> [1, 8, 8] { conv(width) }\n"
        "model s : [1, 8, 8] -> [1, 8, 8] { conv(\"four\") }\n", 1);
    assert_int_equal(tc_model(t, "m")->seq.v[0]->out_ch, 7);
    assert_diag(t, "3:43: error: division by zero");
    assert_diag(t, "error: integer overflow in 9223372036854775807 + 1");
    assert_diag(t, "5:41: error: unknown name 'width'");
    assert_diag(t, "6:41: error: expected a number, found a string");
    assert_int_equal(t->errors, 4);
    tc_free(t);
}

static void test_names(void **state)
{
    (void)state;
    TestComp *t = tc_compile("s_names.mwt",
        "block b { relux }\n"
        "block relu { gap }\n"
        "block c { c }\n"
        "model m : [1, 8, 8] -> [1, 8, 8] { batchnrom }\n"
        "model m : [1, 8, 8] -> [1, 8, 8] { }\n"
        "train q on d { }\n", 1);
    assert_diag(t, "1:11: error: unknown layer 'relux'; did you mean 'relu'?");
    assert_diag(t, "2:7: error: a block cannot be named 'relu': that is a built-in layer");
    assert_diag(t, "3:11: error: block 'c' calls itself");
    assert_diag(t, "4:36: error: unknown layer 'batchnrom'; did you mean 'batchnorm'?");
    assert_diag(t, "5:7: error: redefinition of 'm'");
    assert_diag(t, "4:7: note: the first model 'm' is defined here");
    assert_diag(t, "6:7: error: unknown model 'q'");
    assert_diag(t, "6:12: error: unknown dataset 'd'");
    assert_int_equal(t->errors, 7);
    tc_free(t);
}

static void test_error_inside_block_names_the_call_chain(void **state)
{
    (void)state;
    TestComp *t = tc_compile("s_chain.mwt",
        "block inner(c) { conv(c) }\n"
        "block outer(c) { inner(c - 4) }\n"
        "model m : [1, 8, 8] -> [1, 8, 8] { outer(4) }\n", 1);
    assert_int_equal(t->errors, 1);
    assert_diag(t, "s_chain.mwt:1:23: error: conv: the number of channels must be at least 1, not 0");
    assert_diag(t, "s_chain.mwt:2:18: note: in block 'inner' called from here");
    assert_diag(t, "s_chain.mwt:3:36: note: in block 'outer' called from here");
    tc_free(t);
}

static void test_dataset(void **state)
{
    (void)state;
    TestComp *t = tc_compile("s_data.mwt",
        "dataset f = idx(\"fashion-mnist\") { classes = 10 shape = [1, 28, 28] normalize = (0.286, 0.353)\n"
        "    augment = [random_crop(pad = 2), hflip] }\n"
        "dataset c = cifar10(\"c\") { classes = 10 shape = [3, 32, 32] normalize = [(0.4, 0.2), (0.5, 0.2), (0.4, 0.3)] }\n"
        "dataset bad = idx(\"x\") { classes = 10 shape = [3, 28, 28] normalize = (0.5, 0) colour = 1 }\n"
        "dataset nos = idx(\"x\") { shape = [1, 2, 2] }\n"
        "dataset nam = synthetic() { classes = 2 shape = [1, 4, 4] names = [\"a\"] }\n"
        "dataset aug = synthetic() { classes = 2 shape = [1, 4, 4] augment = [rotate] }\n"
        "dataset src = mnist(\"x\") { classes = 2 shape = [1, 4, 4] }\n", 1);
    assert_int_equal(t->c.checked.datasets.n, 2);
    DatasetInfo *f = t->c.checked.datasets.v[0];
    assert_int_equal(f->source, DS_IDX);
    assert_string_equal(f->path, "fashion-mnist");
    assert_int_equal(f->norm_n, 1);
    assert_true(f->std[0] == 0.353);
    assert_int_equal(f->crop_pad, 2);
    assert_true(f->hflip);
    DatasetInfo *c = t->c.checked.datasets.v[1];
    assert_int_equal(c->norm_n, 3);
    assert_diag(t, "4:80: error: unknown key 'colour' in a dataset (the keys are: classes, shape, normalize, augment, names)");
    assert_diag(t, "4:47: error: idx images have one channel: shape must be [1, H, W]");
    assert_diag(t, "4:77: error: a standard deviation must be above 0");
    assert_diag(t, "5:9: error: dataset 'nos' needs classes = N");
    assert_diag(t, "6:67: error: names has 1 names, but the data set has 2 classes");
    assert_diag(t, "7:70: error: unknown augmentation 'rotate'");
    assert_diag(t, "8:15: error: unknown data source 'mnist': its files (train-images-idx3-ubyte[.gz] and the others) "
                   "are read by idx(\"DIR\")");
    tc_free(t);

    /* one (mean, std) pair per channel: 40 channels are fine, past RT_NORM_MAX is an error */
    for (int ch = 40; ch <= 1025; ch += 985) {
        size_t cap = 64 + 16 * (size_t)ch;
        char *s = malloc(cap);
        int o = snprintf(s, cap, "dataset w = synthetic() { classes = 2 shape = [%d, 2, 2] normalize = [", ch);
        for (int i = 0; i < ch; i++)
            o += snprintf(s + o, cap - (size_t)o, "%s(0.5, 0.2)", i ? ", " : "");
        snprintf(s + o, cap - (size_t)o, "] }\n");
        t = tc_compile("s_norm.mwt", s, 1);
        if (ch <= RT_NORM_MAX) {
            assert_int_equal(t->errors, 0);
            assert_int_equal(((DatasetInfo *)t->c.checked.datasets.v[0])->norm_n, ch);
        } else {
            assert_diag(t, "error: normalize has 1025 (mean, std) pairs, and at most 1024 are supported");
        }
        tc_free(t);
        free(s);
    }
}

static void test_train(void **state)
{
    (void)state;
    TestComp *t = tc_compile("s_train.mwt", DS M
        "model plain : [1, 8, 8] -> [2] { conv(4) gap linear(2) }\n"
        "model wide : [1, 8, 8] -> [3] { conv(4) gap linear(3) }\n"
        "train m on d { epochs = 3 batch = 16 optimizer = sgd(lr = 0.1, momentum = 0.9, nesterov = true)\n"
        "               schedule = step(every = 2, gamma = 0.5) loss = cross_entropy + 0.5 * cohesion + coupling * 1.5 seed = 7\n"
        "               mask_init = kaiming_normal }\n"
        "train plain on d { loss = cross_entropy + 0.5 * cohesion }\n"
        "train m on d { mask_init = he }\n"
        "train plain on d { mask_init = linear }\n"
        "train wide on d { optimizer = adam(lr = 0.1) schedule = linear }\n"
        "train m on d { loss = cross_entropy - coupling  optimizer = sgd(nesterov = true) }\n", 1);
    assert_int_equal(t->c.checked.trains.n, 1);
    TrainInfo *tr = t->c.checked.trains.v[0];
    assert_int_equal(tr->epochs, 3);
    assert_int_equal(tr->batch, 16);
    assert_true(tr->lr == 0.1 && tr->momentum == 0.9 && tr->nesterov);
    assert_int_equal(tr->schedule, SCHED_STEP);
    assert_int_equal(tr->step_every, 2);
    assert_true(tr->w_ce == 1 && tr->w_cohesion == 0.5 && tr->w_coupling == 1.5);
    assert_int_equal(tr->seed, 7);
    assert_int_equal(tr->mask_init, MASK_INIT_KAIMING_NORMAL);
    assert_diag(t, "error: cohesion needs a model with masks, and model 'plain' has none");
    assert_diag(t, "error: unknown mask_init 'he' (the choices are: linear, kaiming_normal)");
    assert_diag(t, "error: mask_init sets how mask generators start, and model 'plain' has none");
    assert_diag(t, "error: unknown optimizer 'adam'");
    assert_diag(t, "error: unknown schedule");
    assert_diag(t, "error: model 'wide' outputs [3], but dataset 'd' has 2 classes");
    assert_diag(t, "error: loss terms are added, not subtracted");
    assert_diag(t, "error: sgd: nesterov needs a momentum above 0");
    tc_free(t);
}

static void test_modularize_and_reuse(void **state)
{
    (void)state;
    TestComp *t = tc_compile("s_mod.mwt", DS M
        "model plain : [1, 8, 8] -> [2] { conv(4) gap linear(2) }\n"
        "modularize m { threshold = 0.8 generators = drop }\n"
        "reuse m as pair { classes = [1, 0] epochs = 3 }\n"
        "modularize plain { }\n"
        "modularize m { threshold = 1.5 }\n"
        "reuse m as bad { classes = [0, 0, 2] }\n", 1);
    assert_int_equal(t->c.checked.modularizes.n, 1);
    ModularizeInfo *mi = t->c.checked.modularizes.v[0];
    assert_true(mi->threshold == 0.8 && !mi->keep_generators);
    ReuseInfo *r = t->c.checked.reuses.v[0];
    assert_int_equal(r->nclasses, 2);
    assert_int_equal(r->classes[0], 1);
    assert_int_equal(r->epochs, 3);
    assert_diag(t, "error: modularize needs a model with masks, and model 'plain' has none");
    assert_diag(t, "error: threshold must be in (0, 1], not 1.5");
    assert_diag(t, "error: class 0 appears twice");
    assert_diag(t, "error: a class must be between 0 and 1, not 2");
    tc_free(t);
}

/* Suggestions, and the columns a class name takes in a table. */
static void test_name_distance_and_width(void **state)
{
    (void)state;
    assert_int_equal(name_distance("ReLU", "relu"), 0);
    assert_int_equal(name_distance("conv", "cnov"), 2);
    const char *const cands[] = { "maxpool", "avgpool", "relu" };
    assert_string_equal(name_closest("maxpol", cands, 3), "maxpool");
    assert_null(name_closest("x", cands, 3));
    assert_int_equal(name_width("Sandal"), 6);
    assert_int_equal(name_width("Caf\xc3\xa9"), 4);               /* e-acute: two bytes, one column */
    assert_int_equal(name_width("e\xcc\x81"), 1);                 /* e and a combining accent */
    assert_int_equal(name_width("\xe6\x97\xa5\xe6\x9c\xac"), 4); /* two wide CJK characters */
    assert_int_equal(name_width("a\xff"), 2);                      /* a bad byte takes one column */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    name_pad(f, "Caf\xc3\xa9", 6);
    name_pad(f, "toolong", 3);
    fclose(f);
    assert_string_equal(buf, "Caf\xc3\xa9  toolong");
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_arguments_and_defaults),
        cmocka_unit_test(test_name_distance_and_width),
        cmocka_unit_test(test_argument_errors),
        cmocka_unit_test(test_expressions),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_error_inside_block_names_the_call_chain),
        cmocka_unit_test(test_dataset),
        cmocka_unit_test(test_train),
        cmocka_unit_test(test_modularize_and_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
