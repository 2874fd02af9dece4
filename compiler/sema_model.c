/* Expanding a model: blocks inlined with their arguments bound, modular { }
 * masks placed, residual shortcuts built, and the shape followed through
 * every layer. The first error in a model stops its expansion: the shapes
 * after it are unknown. */
#include <limits.h>
#include <string.h>

#include "sema_int.h"

enum { MAX_DIM = 1 << 16, MAX_DEPTH = 200 };

static NetLayer *new_layer(SemaCtx *c, NetOp op, Loc loc, Shape in)
{
    NetLayer *l = arena_alloc(c->a, sizeof *l);
    c->layers++;
    l->op = op;
    l->loc = loc;
    l->site = c->site;
    l->in = in;
    l->out = in;
    return l;
}

static void unknown_layer(SemaCtx *c, Loc loc, const char *name)
{
    if (sema_find(&c->models, name)) {
        sema_error(c, loc, "'%s' is a model, not a layer: define its layers in a block to reuse them", name);
        return;
    }
    if (sema_lost(c, name) || sema_defined_later(c, loc, IT_BLOCK, name))
        return;
    const char *torch = names_torch_layer(name);   /* a PyTorch habit: Softmax, AdaptiveAvgPool2d, ... */
    if (torch) {
        sema_error(c, loc, "unknown layer '%s': %s", name, torch);
        return;
    }
    const char *best = NULL;
    int bestd = 3;
    int nl;
    const char *const *layers = names_layers(&nl);
    for (int i = 0; i < nl; i++) {
        int d = name_distance(name, layers[i]);
        if (d < bestd)
            bestd = d, best = layers[i];
    }
    for (int i = 0; i < c->blocks.n; i++) {
        const Symbol *s = c->blocks.v[i];
        int d = name_distance(name, s->name);
        if (d < bestd)
            bestd = d, best = s->name;
    }
    if (best && (int)strlen(name) > bestd)
        sema_error(c, loc, "unknown layer '%s'; did you mean '%s'?", name, best);
    else
        sema_error(c, loc, "unknown layer '%s' (not a built-in layer nor a block defined before this point)", name);
}

static bool expand_seq(SemaCtx *c, const Vec *layers, const Env *env, bool modular, NetSeq *out, Shape *cur);

static long long mask_hidden(long long cout) { return cout < 128 ? cout : cout / 2; }

/* The mask of `conv`, placed where the shape is `at`. */
static NetLayer *make_mask(SemaCtx *c, Loc loc, NetLayer *conv, Shape at, bool automatic)
{
    NetLayer *m = new_layer(c, NET_MASK, loc, at);
    m->conv = conv;
    m->auto_mask = automatic;
    m->gen_in = conv->in.d[0];
    m->out_ch = conv->out_ch;
    m->hidden = mask_hidden(conv->out_ch);
    m->params = m->gen_in * m->hidden + m->hidden * m->out_ch + m->out_ch;
    m->flops = shape_numel(conv->in) + 2 * m->gen_in * m->hidden + 2 * m->hidden * m->out_ch + shape_numel(at);
    conv->mask = m;
    return m;
}

static bool explicit_mask(SemaCtx *c, const Layer *y, bool modular, NetSeq *out, Shape cur)
{
    if (y->args.n) {
        sema_error(c, ((const Arg *)y->args.v[0])->loc, "mask takes no arguments");
        return false;
    }
    if (modular) {
        sema_error(c, y->loc, "'mask' inside 'modular { }' is redundant: every conv there already gets one");
        return false;
    }
    NetLayer *conv = NULL;
    for (int i = out->n - 1; i >= 0 && !conv; i--)
        if (out->v[i]->op == NET_CONV)
            conv = out->v[i];
    if (!conv) {
        sema_error(c, y->loc, "mask must follow a conv: there is no conv before it in this sequence");
        return false;
    }
    if (conv->mask || conv->want_mask) {
        sema_error(c, y->loc, "the conv this mask follows already has a mask");
        return false;
    }
    if (cur.rank == 0 || conv->in.rank == 0)   /* shapes unknown after an error */
        return true;
    if (cur.rank != 3) {   /* a flatten, gap or linear since the conv: no channels left to mask */
        sema_error(c, y->loc, "mask masks the channels of the conv at line %d, but after %s the input here is %s, which has "
                   "none (put the mask right after the conv, its batchnorm or its relu)",
                   src_line_no(conv->loc.file, conv->loc.line), net_op_name(out->v[out->n - 1]->op), sema_shape(c, cur));
        return false;
    }
    if (cur.d[0] != conv->out_ch) {
        sema_error(c, y->loc, "mask: the conv it masks (line %d, the last one in its sequence) gives %lld channels, but "
                   "after %s the input here has %lld (put the mask right after the conv it masks)",
                   src_line_no(conv->loc.file, conv->loc.line), conv->out_ch,
                   net_op_name(out->v[out->n - 1]->op), cur.d[0]);
        return false;
    }
    net_seq_push(c->a, out, make_mask(c, y->loc, conv, cur, false));
    return true;
}

/* The automatic shortcut of a residual whose body changes the shape: a 1x1
 * conv with the stride that gives the body's spatial size, then batchnorm. */
static bool projection(SemaCtx *c, const Layer *y, bool modular, NetLayer *res, Shape in, Shape body)
{
    long long s = 0;
    if (in.rank == 3 && body.rank == 3)
        for (long long t = 1; t <= in.d[1] && !s; t++)
            if ((in.d[1] - 1) / t + 1 == body.d[1] && (in.d[2] - 1) / t + 1 == body.d[2])
                s = t;
    if (!s) {
        sema_error(c, y->loc, "residual: its body turns %s into %s, and no 1x1 conv with a stride can do the same; "
                   "give a shortcut = { ... }", sema_shape(c, in), sema_shape(c, body));
        return false;
    }
    NetLayer *conv = new_layer(c, NET_CONV, y->loc, in);
    conv->out_ch = body.d[0];
    conv->k = 1;
    conv->stride = s;
    conv->pad = 0;
    conv->bias = false;
    conv->want_mask = modular;
    conv->out = body;
    NetLayer *bn = new_layer(c, NET_BATCHNORM, y->loc, body);
    double numel = (double)shape_numel(body);
    if (!sema_set_counts(c, y->loc, "residual's automatic shortcut", conv, (double)in.d[0] * (double)body.d[0],
                         2.0 * (double)in.d[0] * numel) ||
        !sema_set_counts(c, y->loc, "residual's automatic shortcut", bn, 2.0 * (double)body.d[0], 2.0 * numel))
        return false;
    net_seq_push(c->a, &res->shortcut, conv);
    net_seq_push(c->a, &res->shortcut, bn);
    res->auto_shortcut = true;
    return true;
}

static bool expand_residual(SemaCtx *c, const Layer *y, const Env *env, bool modular, NetSeq *out, Shape *cur)
{
    static const ParamSpec specs[] = { { "shortcut", P_LAYERS, false } };
    Value v[1];
    bool given[1];
    if (!sema_bind(c, "residual", y->loc, specs, 1, &y->args, env, v, given))
        return false;
    NetLayer *res = new_layer(c, NET_RESIDUAL, y->loc, *cur);
    Shape body = *cur, sc = *cur;
    bool ok = expand_seq(c, &y->body, env, modular, &res->body, &body);
    if (given[0])   /* its shortcut is checked too when the body has an error */
        ok = expand_seq(c, &v[0].layers->layers, env, modular, &res->shortcut, &sc) && ok;
    if (!ok)   /* also when the input's shape is unknown: expand_seq fails then */
        return false;
    if (given[0]) {
        if (sc.rank != body.rank || memcmp(sc.d, body.d, sizeof sc.d) != 0) {
            sema_error(c, y->loc, "residual: its body gives %s but its shortcut gives %s", sema_shape(c, body), sema_shape(c, sc));
            return false;
        }
    } else if (body.rank != cur->rank || memcmp(body.d, cur->d, sizeof body.d) != 0) {
        if (!projection(c, y, modular, res, *cur, body))
            return false;
    }
    res->out = body;
    res->flops = shape_numel(body);
    net_seq_push(c->a, out, res);
    *cur = body;
    return true;
}

static bool expand_block(SemaCtx *c, const Layer *y, Symbol *blk, const Env *env, bool modular, NetSeq *out,
                         Shape *cur)
{
    if (blk->bad)
        return false;          /* its definition's errors were reported already */
    const Item *it = blk->item;
    if (c->depth >= MAX_DEPTH) {
        sema_error(c, y->loc, "blocks nested more than %d deep", MAX_DEPTH);
        return false;
    }
    int n = it->params.n;
    ParamSpec *specs = arena_alloc(c->a, sizeof *specs * (size_t)(n + 1));
    Value *vals = arena_alloc(c->a, sizeof *vals * (size_t)(n + 1));
    bool *given = arena_alloc(c->a, sizeof *given * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        const Param *p = it->params.v[i];
        specs[i] = (ParamSpec){ p->name, P_ANY, p->deflt == NULL };
    }
    const char *what = arena_printf(c->a, "block '%s'", it->name);
    if (!sema_bind(c, what, y->loc, specs, n, &y->args, env, vals, given))
        return false;
    CallSite *site = arena_alloc(c->a, sizeof *site);
    *site = (CallSite){ y->loc, it->name, c->site };
    const CallSite *saved = c->site;
    c->site = site;
    /* Defaults are evaluated inside the block, after the parameters before them. */
    Env *benv = NULL;
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        const Param *p = it->params.v[i];
        Env *b = arena_alloc(c->a, sizeof *b);
        b->name = p->name;
        b->next = benv;
        if (given[i])
            b->v = vals[i];
        else
            ok = sema_eval(c, p->deflt, benv, &b->v);
        benv = b;
    }
    c->depth++;
    ok = ok && expand_seq(c, &it->layers, benv, modular, out, cur);
    c->depth--;
    c->site = saved;
    return ok;
}

/* Whether layers [from, n) of s (residual branches included) hold a conv
 * that modular { } marked for a mask. */
static bool marks_a_conv(const NetSeq *s, int from)
{
    for (int i = from; i < s->n; i++) {
        const NetLayer *l = s->v[i];
        if ((l->op == NET_CONV && l->want_mask) || marks_a_conv(&l->body, 0) || marks_a_conv(&l->shortcut, 0))
            return true;
    }
    return false;
}

/* One layer (a built-in, mask, block call, residual or modular { }) of a
 * sequence into out, *cur its input shape and then its output's. */
static bool expand_one(SemaCtx *c, const Layer *y, const Env *env, bool modular, NetSeq *out, Shape *cur)
{
    if (c->too_many)
        return false;
    if (c->layers > SEMA_MAX_LAYERS) {
        c->too_many = true;
        sema_error(c, y->loc, "the model expands to more than %d layers here (blocks that call blocks, each "
                   "more than once, multiply)", SEMA_MAX_LAYERS);
        return false;
    }
    if (y->kind == LY_MODULAR) {
        if (modular) {
            sema_error(c, y->loc, "'modular' inside 'modular': the outer one already masks every conv");
            return false;
        }
        int from = out->n;
        if (!expand_seq(c, &y->body, env, true, out, cur))
            return false;
        /* else the model has no masks, and the error would come only at the
         * loss or the modularize statement that needs them */
        if (!marks_a_conv(out, from)) {
            sema_error(c, y->loc, "'modular { }' holds no conv: nothing in it gets a mask (put convs inside it)");
            return false;
        }
        return true;
    }
    if (y->kind == LY_RESIDUAL)
        return expand_residual(c, y, env, modular, out, cur);
    if (strcmp(y->name, "mask") == 0)
        return explicit_mask(c, y, modular, out, *cur);
    const LayerRule *r = layer_rule(y->name);
    if (r) {
        NetLayer *l = new_layer(c, NET_CONV, y->loc, *cur);
        if (!layer_rule_apply(c, r, y, env, *cur, l))
            return false;
        l->want_mask = modular && l->op == NET_CONV;
        net_seq_push(c->a, out, l);
        *cur = l->out;
        return true;
    }
    Symbol *blk = sema_find(&c->blocks, y->name);
    if (!blk) {
        unknown_layer(c, y->loc, y->name);
        return false;
    }
    return expand_block(c, y, blk, env, modular, out, cur);
}

/* A sequence goes on past a layer with an error, with its shape unknown
 * (rank 0) from there: the layers after it still check what needs no shape
 * (their arguments, nesting, names), so that one run reports them all. */
static bool expand_seq(SemaCtx *c, const Vec *layers, const Env *env, bool modular, NetSeq *out, Shape *cur)
{
    bool ok = true;
    for (int i = 0; i < layers->n; i++)
        if (!expand_one(c, layers->v[i], env, modular, out, cur)) {
            ok = false;
            *cur = (Shape){ 0 };
        }
    return ok && cur->rank != 0;
}

/* modular { }: a mask after each marked conv, after its batchnorm when one
 * follows it directly (in the expanded sequence, across block boundaries). */
static void place_masks(SemaCtx *c, NetSeq *s)
{
    for (int i = 0; i < s->n; i++) {
        NetLayer *l = s->v[i];
        if (l->op == NET_RESIDUAL) {
            place_masks(c, &l->body);
            place_masks(c, &l->shortcut);
            continue;
        }
        if (l->op != NET_CONV || !l->want_mask)
            continue;
        int at = i + 1 < s->n && s->v[i + 1]->op == NET_BATCHNORM ? i + 1 : i;
        NetLayer *m = make_mask(c, s->v[at]->loc, l, s->v[at]->out, true);
        m->site = s->v[at]->site;
        net_seq_insert(c->a, s, at + 1, m);
    }
}

static void count_masks(const NetSeq *s, Net *net)
{
    for (int i = 0; i < s->n; i++) {
        const NetLayer *l = s->v[i];
        if (l->op == NET_MASK) {
            net->masked_layers++;
            net->masked_kernels += l->out_ch;
        }
        count_masks(&l->body, net);
        count_masks(&l->shortcut, net);
    }
}

static bool eval_shape(SemaCtx *c, const Expr *e, const Env *env, const char *what, Shape *out)
{
    if (e->items.n != 1 && e->items.n != 3) {
        sema_error(c, e->loc, "a model's %s shape must be [C, H, W] or [N], not %d numbers", what, e->items.n);
        return false;
    }
    out->rank = e->items.n;
    bool ok = true;
    for (int i = 0; i < e->items.n; i++) {
        Value v;
        if (!sema_eval(c, e->items.v[i], env, &v)) {
            ok = false;
            continue;
        }
        if (v.kind != V_INT) {
            sema_error(c, v.loc, "a model's %s size must be an integer, not %s", what, value_str(c->a, &v));
            ok = false;
            continue;
        }
        if (v.i < 1 || v.i > MAX_DIM) {
            sema_error(c, v.loc, "a model's %s size must be between 1 and %d, not %lld", what, MAX_DIM, v.i);
            ok = false;
        }
        out->d[i] = v.i;
    }
    return ok;
}

/* A block or model with more than SEMA_MAX_PARAMS parameters: said, true. */
static bool too_many_params(SemaCtx *c, const Item *it)
{
    if (it->params.n <= SEMA_MAX_PARAMS)
        return false;
    sema_error(c, ((const Param *)it->params.v[SEMA_MAX_PARAMS])->loc, "%s '%s' has %d parameters; at most %d",
               ast_item_kind_name(it->kind), it->name, it->params.n, SEMA_MAX_PARAMS);
    return true;
}

Net *sema_model(SemaCtx *c, const Item *it)
{
    c->layers = 0, c->too_many = false;
    if (too_many_params(c, it))
        return NULL;
    Env *env = NULL;
    bool ok = true;
    for (int i = 0; i < it->params.n; i++) {
        const Param *p = it->params.v[i];
        for (const Env *e = env; e; e = e->next)
            if (strcmp(e->name, p->name) == 0) {
                sema_error(c, p->loc, "parameter '%s' appears twice", p->name);
                ok = false;
            }
        if (!p->deflt) {
            sema_error(c, p->loc, "model parameter '%s' needs a default value: a model is built with its defaults",
                       p->name);
            ok = false;
            continue;
        }
        Env *b = arena_alloc(c->a, sizeof *b);
        b->name = p->name;
        b->next = env;
        ok = sema_eval(c, p->deflt, env, &b->v) && ok;
        env = b;
    }
    if (!ok)
        return NULL;
    Net *net = arena_alloc(c->a, sizeof *net);
    net->name = it->name;
    net->item = it;
    bool shapes = eval_shape(c, it->in_shape, env, "input", &net->in);
    shapes = eval_shape(c, it->out_shape, env, "output", &net->out) && shapes;
    if (!shapes)
        return NULL;
    Shape cur = net->in;
    c->site = NULL;
    if (!expand_seq(c, &it->layers, env, false, &net->seq, &cur))
        return NULL;
    if (cur.rank != net->out.rank || memcmp(cur.d, net->out.d, sizeof cur.d) != 0) {
        sema_error(c, it->out_shape->loc, "model '%s' is declared to output %s, but its layers give %s",
                   it->name, sema_shape(c, net->out), sema_shape(c, cur));
        return NULL;
    }
    place_masks(c, &net->seq);
    net->params = net_seq_params(&net->seq);
    net->flops = net_seq_flops(&net->seq);
    if (net->params == LLONG_MAX || net->flops == LLONG_MAX) {   /* each layer fits, their sum does not */
        sema_error(c, it->loc, "model '%s' is too large: more than %.3g %s", it->name, (double)LLONG_MAX,
                   net->params == LLONG_MAX ? "parameters" : "FLOPs per image");
        return NULL;
    }
    count_masks(&net->seq, net);
    return net;
}

/* What a block's expressions can be checked for before any call: names
 * other than its first `nparams` parameters, and division by a literal zero. */
static bool check_expr(SemaCtx *c, const Item *blk, const Expr *e, int nparams)
{
    switch (e->kind) {
    case EX_IDENT: {
        if (!strcmp(e->s, "true") || !strcmp(e->s, "false"))
            return true;
        Env *env = NULL;
        for (int i = 0; i < nparams; i++) {
            const Param *p = blk->params.v[i];
            if (strcmp(p->name, e->s) == 0)
                return true;
            Env *b = arena_alloc(c->a, sizeof *b);
            b->name = p->name;
            b->next = env;
            env = b;
        }
        Value v;
        return sema_eval(c, e, env, &v);       /* reports the unknown name, with a hint */
    }
    case EX_BINARY:
        if (e->op == '/' && ((e->rhs->kind == EX_INT && e->rhs->i == 0) || (e->rhs->kind == EX_FLOAT && e->rhs->f == 0))) {
            sema_error(c, e->loc, "division by zero");
            return false;
        }
        return check_expr(c, blk, e->lhs, nparams) & check_expr(c, blk, e->rhs, nparams);
    case EX_NEG:
        return check_expr(c, blk, e->lhs, nparams);
    case EX_INT:
    case EX_FLOAT:
    case EX_LAYERS:
        return true;
    default: {
        Value v;
        return sema_eval(c, e, NULL, &v);      /* a string, list, call: not a number */
    }
    }
}

static bool check_names(SemaCtx *c, const Item *blk, const Vec *layers)
{
    bool ok = true;
    for (int i = 0; i < layers->n; i++) {
        const Layer *y = layers->v[i];
        for (int j = 0; j < y->args.n; j++) {
            const Arg *g = y->args.v[j];
            if (g->value->kind == EX_LAYERS)
                ok = check_names(c, blk, &g->value->layers) && ok;
            else
                ok = check_expr(c, blk, g->value, blk->params.n) && ok;
        }
        if (y->kind != LY_CALL) {
            ok = check_names(c, blk, &y->body) && ok;
            continue;
        }
        if (layer_rule(y->name) || strcmp(y->name, "mask") == 0)
            continue;
        if (strcmp(y->name, blk->name) == 0) {
            sema_error(c, y->loc, "block '%s' calls itself", blk->name);
            ok = false;
        } else if (!sema_find(&c->blocks, y->name)) {
            unknown_layer(c, y->loc, y->name);
            ok = false;
        }
    }
    return ok;
}

bool sema_block_names(SemaCtx *c, const Item *blk)
{
    if (too_many_params(c, blk))
        return false;
    bool ok = true;
    for (int i = 0; i < blk->params.n; i++) {
        const Param *p = blk->params.v[i];
        if (p->deflt)
            ok = check_expr(c, blk, p->deflt, i) && ok;   /* defaults see the parameters before them */
        for (int j = 0; j < i; j++)
            if (strcmp(((const Param *)blk->params.v[j])->name, p->name) == 0) {
                sema_error(c, p->loc, "parameter '%s' appears twice", p->name);
                ok = false;
            }
    }
    return check_names(c, blk, &blk->layers) && ok;
}
