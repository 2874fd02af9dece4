/* import: next to the file, $MWT_PATH, the stdlib; twice is once; cycles. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mwt_test.h"

static char dir[4096];

static void put(const char *rel, const char *text)
{
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    tc_write(p, text, strlen(text));
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s", tc_tmp_path("imports"));
    mkdir(dir, 0777);
    char p[8192];
    snprintf(p, sizeof p, "%s/sub", dir);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/path", dir);
    mkdir(p, 0777);
    return 0;
}

typedef struct Run {
    Compilation c;
    char *diags;
    size_t len;
    int errors;
} Run;

static Run *run(const char *rel, const char *mwt_path, int with_stdlib)
{
    Run *r = calloc(1, sizeof *r);
    char root[8192], mp[8192], stdlib_dir[4096];
    snprintf(root, sizeof root, "%s/%s", dir, rel);
    if (mwt_path)
        snprintf(mp, sizeof mp, "/nonexistent:%s/%s", dir, mwt_path);
    const char *src = getenv("MWTC_SOURCE_DIR");
    snprintf(stdlib_dir, sizeof stdlib_dir, "%s/stdlib", src ? src : ".");
    ImportPaths paths = { mwt_path ? mp : NULL, with_stdlib ? stdlib_dir : NULL };
    FILE *mem = open_memstream(&r->diags, &r->len);
    arena_init(&r->c.arena, &r->c.oom);
    diag_init(&r->c.diag, mem);
    r->errors = driver_front_end(&r->c, root, &paths, 1);
    fclose(mem);
    return r;
}

static void done(Run *r)
{
    arena_free(&r->c.arena);
    free(r->diags);
    free(r);
}

static void test_next_to_file_and_once(void **state)
{
    (void)state;
    put("sub/blocks.mwt", "block twice(c) { conv(c) conv(c) }\n");
    put("sub/main.mwt", "import \"blocks\"\nimport \"blocks.mwt\"\nimport \"./blocks\"\n"
                        "model m : [1, 4, 4] -> [2, 4, 4] { twice(2) }\n");
    Run *r = run("sub/main.mwt", NULL, 0);
    assert_int_equal(r->errors, 0);
    assert_int_equal(r->c.prog.files.n, 2);   /* blocks.mwt loaded once */
    assert_int_equal(r->c.checked.models.n, 1);
    done(r);
}

static void test_mwt_path_and_stdlib(void **state)
{
    (void)state;
    put("path/lib.mwt", "block one(c) { conv(c) }\n");
    put("usepath.mwt", "import \"lib\"\nimport \"nn/blocks\"\nmodel m : [1, 4, 4] -> [2, 4, 4] { one(2) conv_bn(2) }\n");
    Run *r = run("usepath.mwt", "path", 1);
    assert_int_equal(r->errors, 0);
    done(r);
    r = run("usepath.mwt", NULL, 1);
    assert_int_equal(r->errors, 2);   /* the import, then the unknown block it would have defined */
    assert_non_null(strstr(r->diags, "usepath.mwt:1:1: error: cannot find import \"lib\""));
    done(r);
}

static void test_cycle(void **state)
{
    (void)state;
    put("a.mwt", "import \"b\"\nblock x { relu }\n");
    put("b.mwt", "import \"a\"\nblock y { relu }\n");
    Run *r = run("a.mwt", NULL, 0);
    assert_int_equal(r->errors, 1);
    assert_non_null(strstr(r->diags, "b.mwt:1:1: error: import cycle: "));
    assert_non_null(strstr(r->diags, "a.mwt -> "));
    done(r);
}

static void test_errors_in_imported_file_name_it(void **state)
{
    (void)state;
    put("broken.mwt", "block z { relu( }\n");
    put("usebroken.mwt", "import \"broken\"\n");
    Run *r = run("usebroken.mwt", NULL, 0);
    assert_true(r->errors >= 1);
    assert_non_null(strstr(r->diags, "broken.mwt:1:17: error: syntax error"));
    done(r);
}

static void test_missing_root(void **state)
{
    (void)state;
    Run *r = run("does-not-exist.mwt", NULL, 0);
    assert_int_equal(r->errors, 1);
    assert_non_null(strstr(r->diags, "mwtc: error: cannot read "));
    assert_non_null(strstr(r->diags, "does-not-exist.mwt: No such file or directory"));
    done(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next_to_file_and_once),
        cmocka_unit_test(test_mwt_path_and_stdlib),
        cmocka_unit_test(test_cycle),
        cmocka_unit_test(test_errors_in_imported_file_name_it),
        cmocka_unit_test(test_missing_root),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
