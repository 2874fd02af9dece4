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
    char path[4096];
    snprintf(path, sizeof path, "%s", tc_source_path("examples/fashion.mwt"));
    mwt_set_alloc(failing_alloc, NULL);
    /* How many allocations a full check takes, with small arena chunks so
     * that there are many places to fail. */
    FILE *null = fopen("/dev/null", "w");
    budget = -1;
    count = 0;
    assert_int_equal(tc_run_file(path, null, 512), 0);
    fclose(null);
    long total = count;
    printf("a full check takes %ld allocations\n", total);
    assert_true(total > 50);
    for (long k = 0; k < total; k++) {
        char *diags = NULL;
        size_t len;
        FILE *mem = open_memstream(&diags, &len);
        budget = k;
        int errors = tc_run_file(path, mem, 512);
        budget = -1;
        fclose(mem);
        assert_true(errors > 0);
        if (!strstr(diags, "out of memory") && !strstr(diags, "Cannot allocate memory"))
            fail_msg("allocation %ld failed without a diagnostic: %s", k, diags);
        free(diags);
    }
    mwt_set_alloc(NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation_can_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
