/* No input may crash the front end: random bytes, random tokens, and every
 * test program and example mangled (bytes dropped, duplicated, replaced).
 * Each must either check or report errors; under ASan a crash or a leak is a
 * failure. The seed is fixed: failures reproduce. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mwt_test.h"

static unsigned long long rng = 0x9e3779b97f4a7c15ULL;
static unsigned next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng >> 11);
}

static int runs, rejected;

static void front_end(const char *text, size_t len)
{
    const char *path = tc_tmp_path("fuzz.mwt");
    tc_write(path, text, len);
    FILE *null = fopen("/dev/null", "w");
    rejected += tc_run_file(path, null, 0) > 0;
    runs++;
    fclose(null);
}

static void test_random_bytes(void **state)
{
    (void)state;
    static char buf[4096];
    for (int i = 0; i < 300; i++) {
        size_t n = next() % sizeof buf;
        for (size_t j = 0; j < n; j++)
            buf[j] = (char)next();
        front_end(buf, n);
    }
}

static void test_random_tokens(void **state)
{
    (void)state;
    static const char *toks[] = {
        "import", "dataset", "block", "model", "train", "on", "modularize", "reuse", "as", "modular",
        "residual", "->", "{", "}", "(", ")", "[", "]", "=", ",", ":", "+", "-", "*", "/", "conv", "relu",
        "gap", "linear", "mask", "x", "0", "1", "3", "-1", "0.5", "\"s\"", "\n", "shortcut", "classes",
        "shape", "[1, 8, 8]", "idx", "synthetic", "b", "m", "d", "loss", "cohesion", "99999999999",
    };
    static char buf[8192];
    for (int i = 0; i < 400; i++) {
        size_t o = 0;
        int n = (int)(next() % 60);
        for (int k = 0; k < n; k++)
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%s ", toks[next() % (sizeof toks / sizeof *toks)]);
        front_end(buf, o);
    }
}

static void mangle_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    static char orig[1 << 16], buf[1 << 17];
    size_t n = fread(orig, 1, sizeof orig, f);
    fclose(f);
    for (int i = 0; i < 12; i++) {
        size_t o = 0;
        for (size_t j = 0; j < n && o + 2 < sizeof buf; j++) {
            unsigned r = next() % 100;
            if (r < 2)
                continue;                         /* drop */
            if (r < 4)
                buf[o++] = orig[j];               /* duplicate */
            buf[o++] = r < 5 ? "{}()[]=,-\n"[next() % 10] : orig[j];
        }
        front_end(buf, o);
    }
}

static void mangle_dir(const char *sub)
{
    char d[4096];
    snprintf(d, sizeof d, "%s", tc_source_path(sub));
    DIR *dir = opendir(d);
    assert_non_null(dir);
    struct dirent *e;
    while ((e = readdir(dir))) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".mwt") == 0) {
            char p[8192];
            snprintf(p, sizeof p, "%s/%s", d, e->d_name);
            mangle_file(p);
        }
    }
    closedir(dir);
}

static void test_mangled_programs(void **state)
{
    (void)state;
    mangle_dir("examples");
    mangle_dir("stdlib/models");
    mangle_dir("tests/parse");
    mangle_dir("tests/errors");
    /* the mangled programs are mostly wrong: make sure they were really checked */
    assert_true(rejected > runs / 2);
    printf("fuzz: %d inputs, %d rejected with diagnostics\n", runs, rejected);
}

static void test_deep_nesting(void **state)
{
    (void)state;
    static char buf[300000];
    size_t o = (size_t)snprintf(buf, sizeof buf, "block b(x = ");
    for (int i = 0; i < 100000; i++)
        buf[o++] = '(';
    buf[o++] = '1';
    front_end(buf, o);
    o = (size_t)snprintf(buf, sizeof buf, "model m : [1, 4, 4] -> [1, 4, 4] { ");
    for (int i = 0; i < 5000; i++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "residual { ");
    front_end(buf, o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_random_tokens),
        cmocka_unit_test(test_mangled_programs),
        cmocka_unit_test(test_deep_nesting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
