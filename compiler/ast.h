/* The syntax tree the parser builds: items, layers and expressions, all in
 * the compilation's arena. Names are interned nowhere: compare with strcmp. */
#ifndef MWT_AST_H
#define MWT_AST_H
#include <stdbool.h>
#include <stdio.h>

#include "arena.h"
#include "source.h"

typedef enum {
    EX_INT, EX_FLOAT, EX_STRING, EX_IDENT,
    EX_CALL,               /* name(args) */
    EX_LIST,               /* [a, b] */
    EX_TUPLE,              /* (a, b) */
    EX_BINARY,             /* lhs op rhs, op one of + - * / */
    EX_NEG,                /* -lhs */
    EX_LAYERS,             /* { layers }, the value of residual's shortcut */
} ExprKind;

typedef struct Expr Expr;
typedef struct Arg {
    Loc loc;
    const char *name;      /* NULL for a positional argument */
    Expr *value;
} Arg;

struct Expr {
    ExprKind kind;
    Loc loc;
    int depth;             /* nesting depth of this tree: the parser caps it */
    long long i;           /* EX_INT */
    double f;              /* EX_FLOAT */
    const char *s;         /* EX_STRING text, EX_IDENT / EX_CALL name */
    char op;               /* EX_BINARY */
    Expr *lhs, *rhs;       /* EX_BINARY, EX_NEG (lhs) */
    Vec args;              /* EX_CALL: Arg* */
    Vec items;             /* EX_LIST, EX_TUPLE: Expr* */
    Vec layers;            /* EX_LAYERS: Layer* */
};

typedef enum { LY_CALL, LY_MODULAR, LY_RESIDUAL } LayerKind;
typedef struct Layer {
    LayerKind kind;
    Loc loc;
    int depth;             /* nesting of modular/residual bodies: the parser caps it */
    const char *name;      /* LY_CALL: layer or block name */
    int has_parens;        /* written name(...) rather than name */
    Vec args;              /* Arg* (LY_CALL, LY_RESIDUAL) */
    Vec body;              /* Layer* (LY_MODULAR, LY_RESIDUAL) */
} Layer;

typedef struct Param {
    Loc loc;
    const char *name;
    Expr *deflt;           /* NULL when the parameter has no default */
} Param;

typedef struct KeyVal {
    Loc loc;
    const char *key;
    Expr *value;
} KeyVal;

typedef enum { IT_IMPORT, IT_DATASET, IT_BLOCK, IT_MODEL, IT_TRAIN, IT_MODULARIZE, IT_REUSE } ItemKind;

typedef struct Item {
    ItemKind kind;
    bool bad;              /* had a syntax error: defined, but not checked further */
    Loc loc;               /* the keyword */
    const char *name;      /* dataset, block, model; reuse: the new name */
    Loc name_loc;
    const char *path;      /* import */
    Expr *source;          /* dataset: EX_CALL */
    Vec params;            /* block, model: Param* */
    Expr *in_shape, *out_shape;   /* model: EX_LIST */
    Vec layers;            /* block, model: Layer* */
    const char *model;     /* train, modularize, reuse */
    Loc model_loc;
    const char *dataset;   /* train */
    Loc dataset_loc;
    Vec kvs;               /* dataset, train, modularize, reuse: KeyVal* */
} Item;

typedef struct Program {
    Vec items;             /* Item*, imports already replaced by what they import */
    Vec files;             /* SrcFile*, every file loaded */
    /* const char*: each name written after `dataset`, `block` or `model`,
     * whether or not its item parsed: a use of one whose item was lost to
     * a syntax error is not "unknown" as well */
    Vec declared;
} Program;

/* The deepest expression or layer nesting the front end accepts: deeper
 * programs get one error, not a stack overflow in a recursive stage. */
enum { AST_MAX_DEPTH = 200 };

const char *ast_item_kind_name(ItemKind k);
/* The shortest text that reads back as x, always with a '.' or exponent. */
const char *ast_format_float(double x, char *buf, int len);
void ast_dump(FILE *out, const Program *p);

#endif
