/* The .mwt grammar (LANGUAGE.md section 1). Pure, reentrant, with locations;
 * actions only call AST constructors (ast_build.c). Error recovery happens at
 * the item level and inside braces, so one run reports every syntax error.
 * parse.error is custom rather than detailed only to quote the offending
 * token's text, as in: unexpected identifier 'flatten'. */
%require "3.8"
%define api.pure full
%define api.prefix {mwt_yy}
%locations
%define parse.error custom
%expect 0
%param {void *scanner}
%parse-param {ParseCtx *ctx}

%code requires {
#include "ast.h"
#include "names.h"
#include "parse.h"
}

%code {
#include <string.h>

#include "ast_build.h"

int mwt_yylex(MWT_YYSTYPE *lval, MWT_YYLTYPE *lloc, void *scanner);
static void mwt_yyerror(MWT_YYLTYPE *l, void *scanner, ParseCtx *ctx, const char *msg);
static bool missing_comma(ParseCtx *ctx, Loc at, const char *before, const char *what);
#define L(at) ((Loc){ ctx->file, (at).first_line, (at).first_column })
#define A ctx->arena
}

%union {
    long long ival;
    double fval;
    const char *str;
    Expr *expr;
    Arg *arg;
    Layer *layer;
    Param *param;
    KeyVal *kv;
    Item *item;
    Vec vec;
}

%token IMPORT "import" DATASET "dataset" BLOCK "block" MODEL "model" TRAIN "train"
%token ON "on" MODULARIZE "modularize" REUSE "reuse" AS "as" MODULAR "modular"
%token RESIDUAL "residual" ARROW "->"
%token <str> IDENT "identifier" STRING "string"
%token <ival> INT "integer"
%token <fval> FLOAT "number"

%type <expr> expr primary list shape
%type <arg> arg
%type <layer> layer
%type <param> param
%type <kv> kv
%type <item> item
%type <vec> args arglist exprs exprlist layers params paramlist kvs body

%left '+' '-'
%left '*' '/'
%precedence NEG

%%

/* program: item* */
program
    : %empty
    | program item          { $2->bad = ctx->diag->errors > ctx->mark; vec_push(A, ctx->items, $2); ctx->mark = ctx->diag->errors; }
    | program error         { ctx->mark = ctx->diag->errors; }
    ;

/* item: import | dataset | block | model | train | modularize | reuse */
item
    : "import" STRING                                       { $$ = ast_import(A, L(@1), $2); }
    | "dataset" IDENT '=' IDENT '(' args ')' '{' kvs '}'
        { $$ = ast_dataset(A, L(@1), $2, L(@2), ast_call(A, L(@4), $4, $6), $9); }
    | "block" IDENT params body                             { $$ = ast_block(A, L(@1), $2, L(@2), $3, $4); }
    | "model" IDENT params ':' shape "->" shape body        { $$ = ast_model(A, L(@1), $2, L(@2), $3, $5, $7, $8); }
    | "train" IDENT "on" IDENT '{' kvs '}'                  { $$ = ast_train(A, L(@1), $2, L(@2), $4, L(@4), $6); }
    | "modularize" IDENT '{' kvs '}'                        { $$ = ast_modularize(A, L(@1), $2, L(@2), $4); }
    | "reuse" IDENT "as" IDENT '{' kvs '}'                  { $$ = ast_reuse(A, L(@1), $2, L(@2), $4, L(@4), $6); }
    ;

/* params: [ '(' param (',' param)* ')' ] */
params
    : %empty                { $$ = (Vec){0}; }
    | '(' ')'               { $$ = (Vec){0}; }
    | '(' paramlist ')'     { $$ = $2; }
    ;
paramlist
    : param                 { $$ = (Vec){0}; vec_push(A, &$$, $1); }
    | paramlist ',' param   { $$ = $1; vec_push(A, &$$, $3); }
    ;
/* param: IDENT [ '=' expr ] */
param
    : IDENT                 { $$ = ast_param(A, L(@1), $1, NULL); }
    | IDENT '=' expr        { $$ = ast_param(A, L(@1), $1, $3); }
    ;

/* shape: '[' expr (',' expr)* ']' */
shape
    : list
    ;

/* body: '{' layer* '}' */
body
    : '{' layers '}'        { $$ = $2; }
    ;
layers
    : %empty                { $$ = (Vec){0}; }
    | layers layer          { $$ = $1; vec_push(A, &$$, ast_limit_layer(ctx, $2)); }
    | layers error          { $$ = $1; }
    ;

/* layer: IDENT [ '(' args ')' ] | "modular" body | "residual" [ '(' args ')' ] body */
layer
    : IDENT                             { $$ = ast_layer_call(A, L(@1), $1, (Vec){0}, 0); }
    | IDENT '(' args ')'                { $$ = ast_layer_call(A, L(@1), $1, $3, 1); }
    | "modular" body                    { $$ = ast_layer_modular(A, L(@1), $2); }
    | "residual" body                   { $$ = ast_layer_residual(A, L(@1), (Vec){0}, $2); }
    | "residual" '(' args ')' body      { $$ = ast_layer_residual(A, L(@1), $3, $5); }
    ;

/* args: [ arg (',' arg)* ]   arg: expr | IDENT '=' expr | IDENT '=' '{' layer* '}' */
args
    : %empty                { $$ = (Vec){0}; }
    | arglist
    ;
arglist
    : arg                   { $$ = (Vec){0}; vec_push(A, &$$, $1); }
    | arglist ',' arg       { $$ = $1; vec_push(A, &$$, $3); }
    /* a comma left out before a named argument: one error, and the call parses on
     * (nothing else can follow an argument); after an error in the item (say, a
     * string left open) it is an error to recover from, and not reported again */
    | arglist IDENT '=' expr
        { if (!missing_comma(ctx, L(@2), $2, "arguments")) YYERROR;
          $$ = $1; vec_push(A, &$$, ast_arg(A, L(@2), $2, $4)); }
    ;
arg
    : expr                  { $$ = ast_arg(A, L(@1), NULL, $1); }
    | IDENT '=' expr        { $$ = ast_arg(A, L(@1), $1, $3); }
    | IDENT '=' body        { $$ = ast_arg(A, L(@1), $1, ast_limit(ctx, ast_layers(A, L(@3), $3))); }
    ;

/* kvs: (IDENT '=' expr)* */
kvs
    : %empty                { $$ = (Vec){0}; }
    | kvs kv                { $$ = $1; vec_push(A, &$$, $2); }
    | kvs error             { $$ = $1; }
    ;
kv
    : IDENT '=' expr        { $$ = ast_kv(A, L(@1), $1, $3); }
    ;

/* expr: expr ('+'|'-'|'*'|'/') expr | '-' expr | primary */
expr
    : expr '+' expr         { $$ = ast_limit(ctx, ast_binary(A, L(@2), '+', $1, $3)); }
    | expr '-' expr         { $$ = ast_limit(ctx, ast_binary(A, L(@2), '-', $1, $3)); }
    | expr '*' expr         { $$ = ast_limit(ctx, ast_binary(A, L(@2), '*', $1, $3)); }
    | expr '/' expr         { $$ = ast_limit(ctx, ast_binary(A, L(@2), '/', $1, $3)); }
    | '-' expr %prec NEG    { $$ = ast_limit(ctx, ast_neg(A, L(@1), $2)); }
    | primary
    ;

/* primary: INT | FLOAT | STRING | IDENT | IDENT '(' args ')' | '(' expr ')'
 *        | '(' expr ',' expr (',' expr)* ')' | '[' [expr (',' expr)*] ']' */
primary
    : INT                   { $$ = ast_int(A, L(@1), $1); }
    | FLOAT                 { $$ = ast_float(A, L(@1), $1); }
    | STRING                { $$ = ast_string(A, L(@1), $1); }
    | IDENT                 { $$ = ast_ident(A, L(@1), $1); }
    | IDENT '(' args ')'    { $$ = ast_limit(ctx, ast_call(A, L(@1), $1, $3)); }
    | '(' expr ')'          { $$ = $2; }
    | '(' expr ',' exprlist ')'
        { Vec v = {0}; vec_push(A, &v, $2); for (int i = 0; i < $4.n; i++) vec_push(A, &v, $4.v[i]);
          $$ = ast_limit(ctx, ast_tuple(A, L(@1), v)); }
    | list
    ;
list
    : '[' exprs ']'         { $$ = ast_limit(ctx, ast_list(A, L(@1), $2)); }
    ;
exprs
    : %empty                { $$ = (Vec){0}; }
    | exprlist
    ;
exprlist
    : expr                  { $$ = (Vec){0}; vec_push(A, &$$, $1); }
    | exprlist ',' expr     { $$ = $1; vec_push(A, &$$, $3); }
    /* [1, 28 28]: a number cannot follow one, so a comma was left out */
    | exprlist INT
        { if (!missing_comma(ctx, L(@2), NULL, "values")) YYERROR;
          $$ = $1; vec_push(A, &$$, ast_int(A, L(@2), $2)); }
    | exprlist FLOAT
        { if (!missing_comma(ctx, L(@2), NULL, "values")) YYERROR;
          $$ = $1; vec_push(A, &$$, ast_float(A, L(@2), $2)); }
    ;

%%

static void mwt_yyerror(MWT_YYLTYPE *l, void *scanner, ParseCtx *ctx, const char *msg)
{
    (void)scanner;
    /* Only bison's own failures come here ("memory exhausted": its stack
     * outgrew YYMAXDEPTH); syntax errors go through the reporter below. */
    if (strcmp(msg, "memory exhausted") == 0)
        diag_error(ctx->diag, L(*l), "program nested too deeply for the parser");
    else
        diag_error(ctx->diag, L(*l), "%s", msg);
}

/* What the comma-less rules above report: an error, and parsing goes on;
 * false, reporting nothing, when the item has an error already. */
static bool missing_comma(ParseCtx *ctx, Loc at, const char *before, const char *what)
{
    if (ctx->diag->errors > ctx->mark)
        return false;
    if (before)
        diag_error(ctx->diag, at, "missing ',' before '%s': %s are separated by commas", before, what);
    else
        diag_error(ctx->diag, at, "missing ',' before this value: %s are separated by commas", what);
    return true;
}

static bool is_value_token(yysymbol_kind_t k)
{
    return k == YYSYMBOL_IDENT || k == YYSYMBOL_INT || k == YYSYMBOL_FLOAT || k == YYSYMBOL_STRING;
}

/* How a token reads in a message: keywords and punctuation quoted, the
 * classes of tokens (identifier, integer, ...) by name. */
static const char *token_words(yysymbol_kind_t k, char *buf, size_t len)
{
    if (k < 0)
        return "token";        /* YYSYMBOL_YYEMPTY: no lookahead */
    const char *name = yysymbol_name(k);
    if (k == YYSYMBOL_YYEOF || is_value_token(k) || name[0] == '\'')
        return name;
    snprintf(buf, len, "'%s'", name);
    return buf;
}

static bool has_token(const yysymbol_kind_t *v, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(yysymbol_name(v[i]), name))
            return true;
    return false;
}

static int yyreport_syntax_error(const yypcontext_t *yc, void *scanner, ParseCtx *ctx)
{
    (void)scanner;
    char msg[512], word[64];
    yysymbol_kind_t tok = yypcontext_token(yc);
    const MWT_YYLTYPE *where = yypcontext_location(yc);
    if (ctx->subst.file && where->first_line == ctx->subst.line && where->first_column == ctx->subst.col)
        return 0;   /* `→` where no '->' goes: the scanner's error was about it */
    int o = snprintf(msg, sizeof msg, "syntax error: unexpected %s", token_words(tok, word, sizeof word));
    if (tok != YYSYMBOL_STRING && is_value_token(tok) && ctx->last_text) {
        o += snprintf(msg + o, sizeof msg - (size_t)o, " '%.*s%s'", ctx->last_len > 40 ? 40 : ctx->last_len,
                      ctx->last_text, ctx->last_len > 40 ? "..." : "");
    }
    yysymbol_kind_t exp[8];
    int n = yypcontext_expected_tokens(yc, exp, 8);
    bool item = false;
    for (int i = 0; i < n; i++)
        item |= exp[i] == YYSYMBOL_IMPORT;
    bool keyword = tok == YYSYMBOL_IMPORT || tok == YYSYMBOL_DATASET || tok == YYSYMBOL_BLOCK ||
                   tok == YYSYMBOL_MODEL || tok == YYSYMBOL_TRAIN || tok == YYSYMBOL_ON || tok == YYSYMBOL_MODULARIZE ||
                   tok == YYSYMBOL_REUSE || tok == YYSYMBOL_AS || tok == YYSYMBOL_MODULAR || tok == YYSYMBOL_RESIDUAL;
    bool name = false;
    for (int i = 0; i < n; i++)
        name |= exp[i] == YYSYMBOL_IDENT;
    static const char *const items[] = { "import", "dataset", "block", "model", "train", "modularize", "reuse" };
    const char *kw = tok == YYSYMBOL_IDENT && ctx->tok_name[0] ? name_closest(ctx->tok_name[0], items, 7) : NULL;
    if (item && kw) {
        snprintf(msg + o, sizeof msg - (size_t)o, "; did you mean '%s'?", kw);
    } else if (item) {
        snprintf(msg + o, sizeof msg - (size_t)o,
                 "; expecting an item: import, dataset, block, model, train, modularize or reuse");
        /* Words left over on the line an item closed (`{ conv(4) } gap
         * linear(3) }`): that item lost them, so its checks would only
         * repeat this error in other words. */
        MWT_YYLTYPE at = *yypcontext_location(yc);
        Item *last = ctx->items->n > 0 ? ctx->items->v[ctx->items->n - 1] : NULL;
        if (last && at.first_line == ctx->close_line && tok != YYSYMBOL_YYEOF &&
            strcmp(yysymbol_name(tok), "'}'") != 0)   /* a brace too many takes nothing from the item */
            last->bad = true;
        /* Layers after a model or block on lines of their own: a '}' too many
         * inside it ended it early, and its shape errors would follow from that. */
        bool layer = tok == YYSYMBOL_MODULAR || tok == YYSYMBOL_RESIDUAL ||
                     (tok == YYSYMBOL_IDENT && ctx->tok_name[0] && names_is_layer(ctx->tok_name[0]));
        if (last && layer && at.first_line > ctx->close_line && (last->kind == IT_MODEL || last->kind == IT_BLOCK) &&
            last->loc.file == ctx->close.file && ctx->close.line > last->loc.line) {
            diag_error(ctx->diag, L(*yypcontext_location(yc)), "%s", msg);
            diag_note(ctx->diag, ctx->close, "%s '%s' ended at this '}': is it one too many?",
                      last->kind == IT_MODEL ? "model" : "block", last->name);
            last->bad = true;
            return 0;
        }
    } else if (n == 1 && !strcmp(yysymbol_name(exp[0]), "'='") && ctx->tok_name[1] &&
               (ctx->tok[2] == INT || ctx->tok[2] == FLOAT) &&
               (!strcmp(ctx->tok_name[1], "cross_entropy") || !strcmp(ctx->tok_name[1], "cohesion") ||
                !strcmp(ctx->tok_name[1], "coupling"))) {
        /* `loss = cross_entropy + 0.5 coupling`: the name read as the next key */
        diag_error(ctx->diag, ctx->tok_loc[1], "a number then '%s': a weighted term is written NUMBER * %s",
                   ctx->tok_name[1], ctx->tok_name[1]);
        return 0;
    } else if (!strcmp(yysymbol_name(tok), "','") && has_token(exp, n, "'}'")) {
        /* `conv(8), relu` or `epochs = 1, batch = 8`: a comma where a layer or a key begins */
        snprintf(msg + o, sizeof msg - (size_t)o, ": layers and keys are separated by whitespace, not commas");
    } else if (keyword && name && n == 1) {
        snprintf(msg + o, sizeof msg - (size_t)o, ", expecting a name ('%s' is a keyword)", yysymbol_name(tok));
    } else if (n > 0 && n <= 5) {
        for (int i = 0; i < n && o < (int)sizeof msg; i++)
            o += snprintf(msg + o, sizeof msg - (size_t)o, "%s%s", i == 0 ? ", expecting " : i == n - 1 ? " or " : ", ",
                          token_words(exp[i], word, sizeof word));
    }
    diag_error(ctx->diag, L(*yypcontext_location(yc)), "%s", msg);
    /* at the end of the file or at an item's keyword, an unclosed brace is the likely cause */
    bool item_word = tok == YYSYMBOL_YYEOF || tok == YYSYMBOL_IMPORT || tok == YYSYMBOL_DATASET ||
                     tok == YYSYMBOL_BLOCK || tok == YYSYMBOL_MODEL || tok == YYSYMBOL_TRAIN ||
                     tok == YYSYMBOL_MODULARIZE || tok == YYSYMBOL_REUSE;
    if (item_word && ctx->nopen > 0 && ctx->nopen <= 64)
        diag_note(ctx->diag, ctx->open[ctx->nopen - 1], "this '{' is not closed");
    return 0;
}
