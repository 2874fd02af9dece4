#include "ast_build.h"

static Expr *expr(Arena *a, ExprKind k, Loc l)
{
    Expr *e = arena_alloc(a, sizeof *e);
    e->kind = k;
    e->loc = l;
    return e;
}

Expr *ast_int(Arena *a, Loc l, long long v) { Expr *e = expr(a, EX_INT, l); e->i = v; return e; }
Expr *ast_float(Arena *a, Loc l, double v) { Expr *e = expr(a, EX_FLOAT, l); e->f = v; return e; }
Expr *ast_string(Arena *a, Loc l, const char *s) { Expr *e = expr(a, EX_STRING, l); e->s = s; return e; }
Expr *ast_ident(Arena *a, Loc l, const char *name) { Expr *e = expr(a, EX_IDENT, l); e->s = name; return e; }
static int items_depth(const Vec *v);
static int args_depth(const Vec *v);
static int layers_depth(const Vec *v);

Expr *ast_call(Arena *a, Loc l, const char *name, Vec args)
{
    Expr *e = expr(a, EX_CALL, l);
    e->s = name;
    e->args = args;
    e->depth = args_depth(&args);
    return e;
}
Expr *ast_list(Arena *a, Loc l, Vec items)
{
    Expr *e = expr(a, EX_LIST, l);
    e->items = items;
    e->depth = items_depth(&items);
    return e;
}
Expr *ast_tuple(Arena *a, Loc l, Vec items)
{
    Expr *e = ast_list(a, l, items);
    e->kind = EX_TUPLE;
    return e;
}
Expr *ast_binary(Arena *a, Loc l, char op, Expr *lhs, Expr *rhs)
{
    Expr *e = expr(a, EX_BINARY, l);
    e->op = op;
    e->lhs = lhs;
    e->rhs = rhs;
    e->depth = 1 + (lhs->depth > rhs->depth ? lhs->depth : rhs->depth);
    return e;
}
Expr *ast_neg(Arena *a, Loc l, Expr *x)
{
    Expr *e = expr(a, EX_NEG, l);
    e->lhs = x;
    e->depth = x->depth + 1;
    return e;
}

static int items_depth(const Vec *v)
{
    int d = 0;
    for (int i = 0; i < v->n; i++) {
        const Expr *e = v->v[i];
        d = e->depth > d ? e->depth : d;
    }
    return d + 1;
}

static int args_depth(const Vec *v)
{
    int d = 0;
    for (int i = 0; i < v->n; i++) {
        const Arg *g = v->v[i];
        d = g->value->depth > d ? g->value->depth : d;
    }
    return d + 1;
}

static int layers_depth(const Vec *v)
{
    int d = 0;
    for (int i = 0; i < v->n; i++) {
        const Layer *y = v->v[i];
        d = y->depth > d ? y->depth : d;
    }
    return d + 1;
}

Expr *ast_limit(ParseCtx *ctx, Expr *e)
{
    if (e->depth <= AST_MAX_DEPTH)
        return e;
    if (!ctx->too_deep)
        diag_error(ctx->diag, e->loc, "expression too long or too deeply nested (more than %d operations deep)", AST_MAX_DEPTH);
    ctx->too_deep = true;
    return ast_int(ctx->arena, e->loc, 0);
}

Layer *ast_limit_layer(ParseCtx *ctx, Layer *y)
{
    if (y->depth <= AST_MAX_DEPTH)
        return y;
    if (!ctx->too_deep)
        diag_error(ctx->diag, y->loc, "layers nested too deeply (more than %d levels)", AST_MAX_DEPTH);
    ctx->too_deep = true;
    return ast_layer_call(ctx->arena, y->loc, "relu", (Vec){0}, 0);
}
Expr *ast_layers(Arena *a, Loc l, Vec layers)
{
    Expr *e = expr(a, EX_LAYERS, l);
    e->layers = layers;
    e->depth = layers_depth(&layers);
    return e;
}

Arg *ast_arg(Arena *a, Loc l, const char *name, Expr *value)
{
    Arg *g = arena_alloc(a, sizeof *g);
    g->loc = l;
    g->name = name;
    g->value = value;
    return g;
}

Param *ast_param(Arena *a, Loc l, const char *name, Expr *deflt)
{
    Param *p = arena_alloc(a, sizeof *p);
    p->loc = l;
    p->name = name;
    p->deflt = deflt;
    return p;
}

KeyVal *ast_kv(Arena *a, Loc l, const char *key, Expr *value)
{
    KeyVal *kv = arena_alloc(a, sizeof *kv);
    kv->loc = l;
    kv->key = key;
    kv->value = value;
    return kv;
}

static Layer *layer(Arena *a, LayerKind k, Loc l)
{
    Layer *y = arena_alloc(a, sizeof *y);
    y->kind = k;
    y->loc = l;
    return y;
}

Layer *ast_layer_call(Arena *a, Loc l, const char *name, Vec args, int has_parens)
{
    Layer *y = layer(a, LY_CALL, l);
    y->name = name;
    y->args = args;
    y->has_parens = has_parens;
    y->depth = args_depth(&args);
    return y;
}

Layer *ast_layer_modular(Arena *a, Loc l, Vec body)
{
    Layer *y = layer(a, LY_MODULAR, l);
    y->name = "modular";
    y->body = body;
    y->depth = layers_depth(&body);
    return y;
}

Layer *ast_layer_residual(Arena *a, Loc l, Vec args, Vec body)
{
    Layer *y = layer(a, LY_RESIDUAL, l);
    y->name = "residual";
    y->args = args;
    y->body = body;
    int da = args_depth(&args), db = layers_depth(&body);
    y->depth = da > db ? da : db;
    return y;
}

static Item *item(Arena *a, ItemKind k, Loc l)
{
    Item *it = arena_alloc(a, sizeof *it);
    it->kind = k;
    it->loc = l;
    return it;
}

Item *ast_import(Arena *a, Loc l, const char *path) { Item *it = item(a, IT_IMPORT, l); it->path = path; return it; }

Item *ast_dataset(Arena *a, Loc l, const char *name, Loc nl, Expr *source, Vec kvs)
{
    Item *it = item(a, IT_DATASET, l);
    it->name = name;
    it->name_loc = nl;
    it->source = source;
    it->kvs = kvs;
    return it;
}

Item *ast_block(Arena *a, Loc l, const char *name, Loc nl, Vec params, Vec layers)
{
    Item *it = item(a, IT_BLOCK, l);
    it->name = name;
    it->name_loc = nl;
    it->params = params;
    it->layers = layers;
    return it;
}

Item *ast_model(Arena *a, Loc l, const char *name, Loc nl, Vec params, Expr *in, Expr *out, Vec layers)
{
    Item *it = ast_block(a, l, name, nl, params, layers);
    it->kind = IT_MODEL;
    it->in_shape = in;
    it->out_shape = out;
    return it;
}

Item *ast_train(Arena *a, Loc l, const char *model, Loc ml, const char *dataset, Loc dl, Vec kvs)
{
    Item *it = item(a, IT_TRAIN, l);
    it->model = model;
    it->model_loc = ml;
    it->dataset = dataset;
    it->dataset_loc = dl;
    it->kvs = kvs;
    return it;
}

Item *ast_modularize(Arena *a, Loc l, const char *model, Loc ml, Vec kvs)
{
    Item *it = item(a, IT_MODULARIZE, l);
    it->model = model;
    it->model_loc = ml;
    it->kvs = kvs;
    return it;
}

Item *ast_reuse(Arena *a, Loc l, const char *model, Loc ml, const char *name, Loc nl, Vec kvs)
{
    Item *it = item(a, IT_REUSE, l);
    it->model = model;
    it->model_loc = ml;
    it->name = name;
    it->name_loc = nl;
    it->kvs = kvs;
    return it;
}
