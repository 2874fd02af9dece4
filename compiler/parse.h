/* The parser's entry point and the state the flex scanner and the bison
 * parser share (yyextra / parse-param). */
#ifndef MWT_PARSE_H
#define MWT_PARSE_H
#include <stdbool.h>

#include "ast.h"
#include "diag.h"

typedef struct ParseCtx {
    Arena *arena;
    Diag *diag;
    const SrcFile *file;
    Vec *items;            /* where parsed items go */
    Vec *declared;         /* the names after dataset, block and model (Program.declared) */
    /* the last three tokens scanned, the last first (at a syntax error the
     * first is the lookahead): kind, place, and text when a name */
    int tok[3];
    Loc tok_loc[3];
    const char *tok_name[3];
    int line, col;         /* scanner position of the next byte */
    int mark;              /* errors reported before the current item began */
    bool too_deep;         /* "nested too deeply" was said once for this file */
    const char *last_text; /* the text of the token scanned last, for syntax errors */
    int last_len;
    /* the braces opened and not closed yet, innermost last (past 64: counted
     * only), so that a syntax error at the end of the file or at the next
     * item can say which one is left open */
    Loc open[64];
    int nopen;
    int close_line;        /* the line of the last '}' scanned */
    int semicolon;         /* ';'s scanned: the first one says why it is wrong */
    Loc close;             /* and where it is */
    Loc subst;             /* a look-alike character the scanner read as a token, reported */
} ParseCtx;

/* Parses one file, appending its items to *items. Returns the number of
 * errors found (0 on success); errors went to ctx->diag. */
int parse_file(Arena *a, Diag *d, const SrcFile *f, Vec *items, Vec *declared);

#endif
