/* The REPL's Tab (compiler/repl_complete.c): what it offers at each place
 * of a command line and of an item, and that every word it offers in an
 * item is one the checker knows (a word Tab puts in must not be "unknown"). */
#include <stdlib.h>
#include <string.h>

#include "mwt_test.h"
#include "repl_complete.h"

static const char *const models[] = { "simcnn", "small" }, *const datasets[] = { "fashion" },
                         *const blocks[] = { "conv_bn", "conv_bn_relu" };
static const char *const conv_bn_params[] = { "out", "k", "stride", "bias", NULL };
static const char *const *const params[] = { conv_bn_params, NULL };
static const ReplNames names = { models, datasets, blocks, params, 2, 1, 2 };

/* The candidates, sorted, joined by spaces ("<files>" for a path). */
static const char *offered(const char *item, const char *before, const char *word)
{
    static char buf[1024];
    const char *v[64];
    int n = repl_complete(item, before, word, &names, v, 64);
    if (n == REPL_COMPLETE_FILES)
        return "<files>";
    for (int i = 0; i < n; i++)   /* insertion sort: a handful */
        for (int j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
            const char *t = v[j];
            v[j] = v[j - 1], v[j - 1] = t;
        }
    buf[0] = 0;
    for (int i = 0; i < n; i++) {
        assert_true(strncmp(v[i], word, strlen(word)) == 0);   /* each starts with what is typed */
        strcat(buf, i ? " " : "");
        strcat(buf, v[i]);
    }
    return buf;
}

static void test_first_word(void **st)
{
    (void)st;
    assert_string_equal(offered(NULL, "", "mo"), "model modularize");
    assert_string_equal(offered(NULL, "", "re"), "report reuse");
    assert_string_equal(offered(NULL, "  ", "e"), "emit eval");
    assert_string_equal(offered(NULL, "", ":"), ":help :quit :reset :show");
    assert_string_equal(offered(NULL, "", "zz"), "");
}

static void test_command_options(void **st)
{
    (void)st;
    /* each command its own options, from the command line's table */
    assert_string_equal(offered(NULL, "train ", "--e"), "--epochs");
    assert_string_equal(offered(NULL, "eval ", "--e"), "");   /* eval reads no --epochs */
    assert_string_equal(offered(NULL, "report --ckpt m.ckpt ", "--s"), "--svg --sweep");
    assert_string_equal(offered(NULL, "emit ", "--c"), "--ckpt --cpu");
    assert_string_equal(offered(NULL, "run ", "--t"), "--threads --threshold");
    /* an option given is not offered again */
    assert_string_equal(offered(NULL, "report --sweep ", "--s"), "--svg");
    /* an option's value: a model, a path, or nothing to offer */
    assert_string_equal(offered(NULL, "eval --model ", ""), "simcnn small");
    assert_string_equal(offered(NULL, "train --model ", "sm"), "small");
    assert_string_equal(offered(NULL, "eval --model=", "s"), "simcnn small");
    assert_string_equal(offered(NULL, "eval --ckpt ", "m"), "<files>");
    assert_string_equal(offered(NULL, "emit --module 5,7 -o ", ""), "<files>");
    assert_string_equal(offered(NULL, "report --svg ", "s"), "<files>");
    assert_string_equal(offered(NULL, "train --epochs ", ""), "");
    assert_string_equal(offered(NULL, "dump ", ""), "ast ir llvm");
    assert_string_equal(offered(NULL, "dump ir ", "--m"), "--model");
    /* train, modularize and reuse start an item too: a model's name, or an option */
    assert_string_equal(offered(NULL, "train ", "s"), "simcnn small");
    assert_string_equal(offered(NULL, "modularize ", "--t"), "--threads --threshold");
    assert_string_equal(offered(NULL, "reuse ", ""), "--ckpt --epochs --help --json --limit --quiet --seed --threads "
                                                     "simcnn small");
}

static void test_item_headers(void **st)
{
    (void)st;
    assert_string_equal(offered(NULL, "model ", "s"), "simcnn small");   /* one typed again replaces it */
    assert_string_equal(offered(NULL, "train simcnn ", ""), "on");
    assert_string_equal(offered(NULL, "train simcnn on ", "f"), "fashion");
    assert_string_equal(offered(NULL, "reuse simcnn ", "a"), "as");
    assert_string_equal(offered(NULL, "dataset d = ", ""), "cifar10 cifar100 idx svhn synthetic");
    assert_string_equal(offered(NULL, "dataset d = synthetic(", ""), "n seed test");
    assert_string_equal(offered(NULL, "dataset d = idx(\"", "fash"), "<files>");
    assert_string_equal(offered(NULL, "import \"", "nn/"), "<files>");
    assert_string_equal(offered(NULL, "model m : [1, 28, 28] -> [", ""), "");   /* a shape: nothing to offer */
}

static void test_item_bodies(void **st)
{
    (void)st;
    const char *model = "model m : [1, 28, 28] -> [10] {";
    assert_string_equal(offered(model, "", "con"), "conv conv_bn conv_bn_relu");
    assert_string_equal(offered(model, "conv(32) ", "re"), "relu residual");
    assert_string_equal(offered(model, "conv(32, ", ""), "bias k pad stride");
    assert_string_equal(offered(model, "conv(32, k = 5, bias = ", ""), "false true");
    assert_string_equal(offered(model, "maxpool(2, ", ""), "k stride");
    assert_string_equal(offered(model, "conv_bn(32, ", "s"), "stride");   /* a block's parameters */
    assert_string_equal(offered(model, "conv_bn_relu(32, ", ""), "");     /* one without a list */
    assert_string_equal(offered(model, "modular { conv(8) ", "ba"), "batchnorm");
    assert_string_equal(offered(model, "residual(shortcut = { ", "c"), "conv conv_bn conv_bn_relu");
    assert_string_equal(offered(NULL, "model m : [1, 8, 8] -> [2] { conv(4) ", "g"), "gap");
    /* a comment or a string does not open anything */
    assert_string_equal(offered("model m : [1, 8, 8] -> [2] { # a { brace\n", "", "fl"), "flatten");
    const char *train = "train simcnn on fashion {";
    assert_string_equal(offered(train, "", "e"), "epochs");
    assert_string_equal(offered(train, "epochs = 3 ", "s"), "schedule seed");
    assert_string_equal(offered(train, "schedule = ", "c"), "constant cosine");
    assert_string_equal(offered(train, "optimizer = ", ""), "sgd");
    assert_string_equal(offered(train, "optimizer = sgd(lr = 0.05, ", "n"), "nesterov");
    assert_string_equal(offered(train, "optimizer = sgd(nesterov = ", ""), "false true");
    assert_string_equal(offered(train, "loss = ", "c"), "cohesion coupling cross_entropy");
    assert_string_equal(offered(train, "loss = cross_entropy + 0.5 * ", "co"), "cohesion coupling");
    assert_string_equal(offered(train, "schedule = step(", ""), "every gamma");
    assert_string_equal(offered(NULL, "modularize simcnn { ", ""), "generators threshold");
    assert_string_equal(offered(NULL, "modularize simcnn { generators = ", ""), "drop keep");
    assert_string_equal(offered(NULL, "reuse simcnn as shoes { ", "e"), "epochs");
    const char *data = "dataset d = synthetic(n = 64) {";
    assert_string_equal(offered(data, "", "n"), "names normalize");
    assert_string_equal(offered(data, "augment = [", ""), "hflip random_crop");
    assert_string_equal(offered(data, "augment = [random_crop(pad = 2), ", "h"), "hflip");
    assert_string_equal(offered(data, "augment = [random_crop(", ""), "pad");
    assert_string_equal(offered(NULL, "train simcnn on fashion { epochs = 1 } ", ""), "");   /* after it closed */
}

/* Every word Tab offers in an item, put where it was offered, is one the
 * checker knows: its diagnostics say nothing is unknown. */
static void known(const char *fmt, const char *item, const char *before)
{
    const char *v[64];
    int n = repl_complete(item, before, "", &names, v, 64);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        char src[2048];
        snprintf(src, sizeof src, fmt, v[i]);
        TestComp *t = tc_compile("tab.mwt", src, 1);
        if (strstr(t->diags, "unknown") || strstr(t->diags, "did you mean"))
            fail_msg("Tab offered '%s', which the checker does not know:\n%s\n%s", v[i], src, t->diags);
        tc_free(t);
    }
}

static void test_offered_words_check(void **st)
{
    (void)st;
    const char *data = "dataset fashion = synthetic(n = 64, test = 16) { classes = 2 shape = [1, 8, 8] }\n",
               *model = "model simcnn : [1, 8, 8] -> [2] { modular { conv(4) } relu gap linear(2) }\n",
               *in_model = "model simcnn : [1, 8, 8] -> [2] {", *in_train = "train simcnn on fashion {";
    /* the program around each word (with: 1 after the data set, 2 after it and a masked model),
     * the item typed so far and the line before the word */
    static const struct {
        int with;
        const char *text, *before;
        int item;   /* 0 none, 1 in_model, 2 in_train, 3 in a modularize statement, 4 in a data set */
    } cases[] = {
        { 1, "model simcnn : [1, 8, 8] -> [2] { conv(4, %s = 1) relu gap linear(2) }", "conv(4, ", 1 },
        { 1, "model simcnn : [1, 8, 8] -> [2] { conv(4) relu maxpool(2, %s = 2) gap linear(2) }", "maxpool(2, ", 1 },
        { 2, "train simcnn on fashion { %s = 1 }", "", 2 },
        { 2, "train simcnn on fashion { schedule = %s }", "schedule = ", 2 },
        { 2, "train simcnn on fashion { schedule = step(%s = 1) }", "schedule = step(", 2 },
        { 2, "train simcnn on fashion { optimizer = %s(lr = 0.1) }", "optimizer = ", 2 },
        { 2, "train simcnn on fashion { optimizer = sgd(%s = 0.1) }", "optimizer = sgd(", 2 },
        { 2, "train simcnn on fashion { loss = cross_entropy + %s }", "loss = cross_entropy + ", 2 },
        { 2, "train simcnn on fashion { mask_init = %s }", "mask_init = ", 2 },
        { 2, "modularize simcnn { generators = %s }", "generators = ", 3 },
        { 0, "dataset fashion = %s(n = 64) { classes = 2 shape = [1, 8, 8] }", "dataset fashion = ", 0 },
        { 0, "dataset fashion = synthetic(%s = 8) { classes = 2 shape = [1, 8, 8] }", "dataset fashion = synthetic(", 0 },
        { 0, "dataset fashion = synthetic() { classes = 2 shape = [1, 8, 8] augment = [%s] }", "augment = [", 4 },
    };
    const char *items[] = { NULL, in_model, in_train, "modularize simcnn {", "dataset fashion = synthetic() {" };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char fmt[1024];
        snprintf(fmt, sizeof fmt, "%s%s%s\n", cases[i].with >= 1 ? data : "", cases[i].with >= 2 ? model : "",
                 cases[i].text);
        known(fmt, items[cases[i].item], cases[i].before);
    }
}

/* Any text: no crash (the ASan build runs this), every candidate starts
 * with the word. Pieces of the language and of its edge cases: deep
 * brackets, words longer than a token keeps, open strings, comments. */
static void test_any_text(void **st)
{
    (void)st;
    static const char *const pieces[] = { "model ", "train ", "dataset ", "eval ", "--model ", "--ckpt", "=", "(", ")",
                                          "{", "}", "[", "]", ",", "\"", "#", "\n", " ", "conv", "+", "*", "import ",
                                          "step(", "sgd(", "-o ", "dump ", ":", "\t",
                                          "a_name_longer_than_any_token_the_scanner_keeps_whole_and_then_some_more_x" };
    unsigned long x = 12345;
    for (int round = 0; round < 20000; round++) {
        char item[600] = "", before[600] = "";
        int pieces_n = (int)(sizeof pieces / sizeof *pieces);
        for (int part = 0; part < 2; part++) {
            char *t = part ? before : item;
            int n = (int)((x >> 7) % 24);
            for (int i = 0; i < n; i++) {
                x = x * 6364136223846793005ul + 1442695040888963407ul;
                strcat(t, pieces[(x >> 33) % (unsigned long)pieces_n]);
            }
        }
        x = x * 6364136223846793005ul + 1442695040888963407ul;
        const char *word = (x >> 40) % 3 == 0 ? "" : (x >> 40) % 3 == 1 ? "c" : "--";
        const char *v[8];   /* fewer than some places offer: the cap holds */
        int n = repl_complete((x >> 20) % 2 ? item : NULL, before, word, &names, v, 8);
        assert_true(n == REPL_COMPLETE_FILES || (n >= 0 && n <= 8));
        for (int i = 0; i < n; i++)
            assert_true(strncmp(v[i], word, strlen(word)) == 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_word),      cmocka_unit_test(test_command_options),
        cmocka_unit_test(test_item_headers),    cmocka_unit_test(test_item_bodies),
        cmocka_unit_test(test_offered_words_check), cmocka_unit_test(test_any_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
