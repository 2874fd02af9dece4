/* AST constructors, called from the grammar's one-line actions. */
#ifndef MWT_AST_BUILD_H
#define MWT_AST_BUILD_H
#include "ast.h"
#include "parse.h"

Expr *ast_int(Arena *a, Loc l, long long v);
Expr *ast_float(Arena *a, Loc l, double v);
Expr *ast_string(Arena *a, Loc l, const char *s);
Expr *ast_ident(Arena *a, Loc l, const char *name);
Expr *ast_call(Arena *a, Loc l, const char *name, Vec args);
Expr *ast_list(Arena *a, Loc l, Vec items);
Expr *ast_tuple(Arena *a, Loc l, Vec items);
Expr *ast_binary(Arena *a, Loc l, char op, Expr *lhs, Expr *rhs);
Expr *ast_neg(Arena *a, Loc l, Expr *e);
Expr *ast_layers(Arena *a, Loc l, Vec layers);
/* The depth caps: past AST_MAX_DEPTH, one error and a harmless stand-in. */
Expr *ast_limit(ParseCtx *ctx, Expr *e);
Layer *ast_limit_layer(ParseCtx *ctx, Layer *y);
Arg *ast_arg(Arena *a, Loc l, const char *name, Expr *value);
Param *ast_param(Arena *a, Loc l, const char *name, Expr *deflt);
KeyVal *ast_kv(Arena *a, Loc l, const char *key, Expr *value);
Layer *ast_layer_call(Arena *a, Loc l, const char *name, Vec args, int has_parens);
Layer *ast_layer_modular(Arena *a, Loc l, Vec body);
Layer *ast_layer_residual(Arena *a, Loc l, Vec args, Vec body);
Item *ast_import(Arena *a, Loc l, const char *path);
Item *ast_dataset(Arena *a, Loc l, const char *name, Loc nl, Expr *source, Vec kvs);
Item *ast_block(Arena *a, Loc l, const char *name, Loc nl, Vec params, Vec layers);
Item *ast_model(Arena *a, Loc l, const char *name, Loc nl, Vec params, Expr *in, Expr *out, Vec layers);
Item *ast_train(Arena *a, Loc l, const char *model, Loc ml, const char *dataset, Loc dl, Vec kvs);
Item *ast_modularize(Arena *a, Loc l, const char *model, Loc ml, Vec kvs);
Item *ast_reuse(Arena *a, Loc l, const char *model, Loc ml, const char *name, Loc nl, Vec kvs);

#endif
