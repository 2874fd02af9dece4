/* Out of memory at every allocation of a real compilation: the front end
 * must report it and return, never crash (and, under ASan, never leak). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mwt_test.h"
#include "mwt_alloc.h"

static long budget;            /* allocations left before failing; < 0: unlimited */
static long count;

static void *failing_alloc(void *ud, void *ptr, size_t size)
{
    (void)ud;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    count++;
    if (budget >= 0 && budget-- == 0)
        return NULL;
    return realloc(ptr, size);
}

static void test_every_allocation_can_fail(void **state)
{
    (void)state;
    const char *src = getenv("MWTC_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/examples/fashion.mwt", src ? src : ".");
    mwt_set_alloc(failing_alloc, NULL);
    /* how many allocations a full check takes */
    budget = -1;
    count = 0;
    TestComp *t = NULL;
    {
        Compilation *c = calloc(1, sizeof *c);
        FILE *null = fopen("/dev/null", "w");
        char stdlib_dir[4096];
        snprintf(stdlib_dir, sizeof stdlib_dir, "%s/stdlib", src ? src : ".");
        ImportPaths paths = { NULL, stdlib_dir };
        arena_init(&c->arena, &c->oom);
        c->arena.chunk = 512;
        diag_init(&c->diag, null);
        assert_int_equal(driver_front_end(c, path, &paths, 1), 0);
        arena_free(&c->arena);
        fclose(null);
        free(c);
    }
    long total = count;
    printf("a full check takes %ld allocations\n", total);
    assert_true(total > 50);
    for (long k = 0; k < total; k++) {
        Compilation *c = calloc(1, sizeof *c);
        char *diags = NULL;
        size_t len;
        FILE *mem = open_memstream(&diags, &len);
        char stdlib_dir[4096];
        snprintf(stdlib_dir, sizeof stdlib_dir, "%s/stdlib", src ? src : ".");
        ImportPaths paths = { NULL, stdlib_dir };
        arena_init(&c->arena, &c->oom);
        c->arena.chunk = 512;
        diag_init(&c->diag, mem);
        budget = k;
        int errors = driver_front_end(c, path, &paths, 1);
        budget = -1;
        fclose(mem);
        assert_true(errors > 0);
        if (!strstr(diags, "out of memory") && !strstr(diags, "Cannot allocate memory"))
            fail_msg("allocation %ld failed without a diagnostic: %s", k, diags);
        arena_free(&c->arena);
        free(diags);
        free(c);
    }
    mwt_set_alloc(NULL, NULL);
    (void)t;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation_can_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
