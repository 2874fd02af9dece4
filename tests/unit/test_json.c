/* json_str: any bytes in, a JSON string out that a strict parser takes:
 * quotes, backslashes and control characters escaped, UTF-8 kept as it is,
 * and what is not UTF-8 (a class name may hold any bytes) as U+FFFD. */
#define _GNU_SOURCE /* open_memstream */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "json.h"

static void expect(const char *in, const char *want)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    json_str(f, in);
    fclose(f);
    assert_string_equal(buf, want);
    free(buf);
}

static void test_escapes(void **st)
{
    (void)st;
    expect("T-shirt", "\"T-shirt\"");
    expect("a\"b\\c", "\"a\\\"b\\\\c\"");
    expect("tab\there\n", "\"tab\\u0009here\\u000a\"");
}

static void test_utf8(void **st)
{
    (void)st;
    expect("Kleid \xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x91\x9f", "\"Kleid \xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x91\x9f\"");
    expect("\xef\xbf\xbd", "\"\xef\xbf\xbd\"");             /* U+FFFD itself is UTF-8 */
    expect("a\xff" "b", "\"a\\ufffdb\"");                    /* a byte that starts nothing */
    expect("\x80", "\"\\ufffd\"");                           /* a lone continuation byte */
    expect("\xc3", "\"\\ufffd\"");                           /* cut at the end */
    expect("\xe2\x82" "x", "\"\\ufffd\\ufffdx\"");           /* cut in the middle */
    expect("\xc0\xaf", "\"\\ufffd\"");                       /* overlong '/' */
    expect("\xed\xa0\x80", "\"\\ufffd\"");                   /* a surrogate */
    expect("\xf4\x90\x80\x80", "\"\\ufffd\"");               /* past U+10FFFF */
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_escapes), cmocka_unit_test(test_utf8) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
