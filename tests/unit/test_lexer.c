/* The scanner: tokens, values, positions, and what it says about bytes the
 * language does not know. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mwt_test.h"
#include "parse.h"
#include "parser.h"
#define YYSTYPE MWT_YYSTYPE
#define YYLTYPE MWT_YYLTYPE
#include "lexer.h"

typedef struct Tok {
    int kind;
    MWT_YYSTYPE val;
    MWT_YYLTYPE loc;
} Tok;

/* Scans `src` into toks (at most 64); returns the count. Diagnostics go to *diags. */
static int scan(const char *src, Tok *toks, char **diags, Arena *a, jmp_buf *oom)
{
    size_t len;
    FILE *mem = open_memstream(diags, &len);
    static Diag d;
    diag_init(&d, mem);
    arena_init(a, oom);
    SrcFile *f = src_from_string(a, "t.mwt", src, strlen(src));
    ParseCtx ctx = { .arena = a, .diag = &d, .file = f, .line = 1, .col = 1 };
    yyscan_t s;
    assert_int_equal(mwt_yylex_init_extra(&ctx, &s), 0);
    YY_BUFFER_STATE b = mwt_yy_scan_bytes(f->text, (int)f->len, s);
    int n = 0;
    for (;;) {
        Tok t;
        t.kind = mwt_yylex(&t.val, &t.loc, s);
        if (t.kind == 0 || n == 64)
            break;
        toks[n++] = t;
    }
    mwt_yy_delete_buffer(b, s);
    mwt_yylex_destroy(s);
    fclose(mem);
    return n;
}

static void test_non_ascii_word_is_one_error(void **state)
{
    (void)state;
    Tok t[64];
    char *diags;
    Arena a;
    jmp_buf oom;
    int n = scan("model r\xc3\xa9seau", t, &diags, &a, &oom);
    assert_int_equal(n, 2);
    assert_int_equal(t[1].kind, IDENT);
    assert_non_null(strstr(diags, "t.mwt:1:7: error: names are ASCII letters, digits and '_': 'r\xc3\xa9seau' is not one"));
    int errors = 0;
    for (const char *p = diags; (p = strstr(p, "error:")); p++)
        errors++;
    assert_int_equal(errors, 1);
    free(diags);
    arena_free(&a);
}

static void test_keywords_and_punctuation(void **state)
{
    (void)state;
    Tok t[64];
    char *diags;
    Arena a;
    jmp_buf oom;
    int n = scan("import dataset block model train on modularize reuse as modular residual -> { } ( ) [ ] = , : + - * /",
                 t, &diags, &a, &oom);
    int want[] = { IMPORT, DATASET, BLOCK, MODEL, TRAIN, ON, MODULARIZE, REUSE, AS, MODULAR, RESIDUAL, ARROW,
                   '{', '}', '(', ')', '[', ']', '=', ',', ':', '+', '-', '*', '/' };
    assert_int_equal(n, (int)(sizeof want / sizeof *want));
    for (int i = 0; i < n; i++)
        assert_int_equal(t[i].kind, want[i]);
    assert_string_equal(diags, "");
    free(diags);
    arena_free(&a);
}

static void test_values_and_positions(void **state)
{
    (void)state;
    Tok t[64];
    char *diags;
    Arena a;
    jmp_buf oom;
    int n = scan("conv_bn 42 0.05 1e-3 .5 \"fashion-mnist\" # comment\n  relu", t, &diags, &a, &oom);
    assert_int_equal(n, 7);
    assert_int_equal(t[0].kind, IDENT);
    assert_string_equal(t[0].val.str, "conv_bn");
    assert_int_equal(t[1].kind, INT);
    assert_int_equal(t[1].val.ival, 42);
    assert_int_equal(t[1].loc.first_column, 9);
    assert_int_equal(t[2].kind, FLOAT);
    assert_true(t[2].val.fval == 0.05);
    assert_int_equal(t[3].kind, FLOAT);
    assert_true(t[3].val.fval == 1e-3);
    assert_int_equal(t[4].kind, FLOAT);
    assert_true(t[4].val.fval == 0.5);
    assert_int_equal(t[5].kind, STRING);
    assert_string_equal(t[5].val.str, "fashion-mnist");
    assert_int_equal(t[6].kind, IDENT);
    assert_int_equal(t[6].loc.first_line, 2);
    assert_int_equal(t[6].loc.first_column, 3);
    assert_string_equal(diags, "");
    free(diags);
    arena_free(&a);
}

static void test_bad_input_is_reported_and_skipped(void **state)
{
    (void)state;
    Tok t[64];
    char *diags;
    Arena a;
    jmp_buf oom;
    int n = scan("relu @ \x01 \xff 12abc 1e 99999999999999999999 \"open", t, &diags, &a, &oom);
    /* relu, the three bad numbers as INT 0, the string; the byte 0xff is no name, skipped */
    assert_int_equal(n, 5);
    assert_int_equal(t[0].kind, IDENT);
    assert_int_equal(t[1].kind, INT);
    assert_int_equal(t[4].kind, STRING);
    assert_non_null(strstr(diags, "t.mwt:1:6: error: unexpected character '@'"));
    assert_non_null(strstr(diags, "t.mwt:1:8: error: unexpected byte 0x01"));
    assert_non_null(strstr(diags, "t.mwt:1:10: error: unexpected character '\\xff'"));
    assert_non_null(strstr(diags, "error: malformed number '12abc'"));
    assert_non_null(strstr(diags, "error: malformed number '1e'"));
    assert_non_null(strstr(diags, "error: integer literal '99999999999999999999' is too large"));
    assert_non_null(strstr(diags, "error: unterminated string"));
    free(diags);
    arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keywords_and_punctuation),
        cmocka_unit_test(test_values_and_positions),
        cmocka_unit_test(test_bad_input_is_reported_and_skipped),
        cmocka_unit_test(test_non_ascii_word_is_one_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
