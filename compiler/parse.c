/* Drives the flex scanner and the bison parser over one file. */
#include "parse.h"

#include <limits.h>
#include <setjmp.h>

#include "parser.h"
/* flex's header names the bison types without our prefix */
#define YYSTYPE MWT_YYSTYPE
#define YYLTYPE MWT_YYLTYPE
#include "lexer.h"

int parse_file(Arena *a, Diag *d, const SrcFile *f, Vec *items, Vec *declared)
{
    ParseCtx ctx = { .arena = a, .diag = d, .file = f, .items = items, .declared = declared, .line = 1, .col = 1 };
    yyscan_t scanner;
    if (mwt_yylex_init_extra(&ctx, &scanner) != 0) {
        diag_plain(d, "%s: cannot start the scanner", f->path);
        return 1;
    }
    int before = d->errors;
    if (f->len > INT_MAX / 2) {
        diag_plain(d, "%s: too large for a program (%zu bytes)", f->path, f->len);
        mwt_yylex_destroy(scanner);
        return 1;
    }
    /* Out of memory in an AST constructor longjmps: come through here first
     * to free the scanner, then go on to the driver's handler. */
    jmp_buf here, *outer = a->oom;
    YY_BUFFER_STATE volatile buf = NULL;
    if (setjmp(here)) {
        a->oom = outer;
        if (buf)
            mwt_yy_delete_buffer(buf, scanner);
        mwt_yylex_destroy(scanner);
        longjmp(*outer, 1);
    }
    a->oom = &here;
    buf = mwt_yy_scan_bytes(f->text, (int)f->len, scanner);
    int rc = mwt_yyparse(scanner, &ctx);
    a->oom = outer;
    mwt_yy_delete_buffer(buf, scanner);
    mwt_yylex_destroy(scanner);
    int errors = d->errors - before;
    if (rc != 0 && errors == 0) {
        /* bison gave up (memory exhausted) without a syntax error of its own */
        diag_plain(d, "%s: the parser ran out of memory", f->path);
        errors = 1;
    }
    return errors;
}
