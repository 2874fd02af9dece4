/* The built-in layers: their parameters, value checks, shape rules, and
 * parameter and FLOP counts. FLOPs count one multiply-add as 2, as most
 * papers do; parameters count what PyTorch's parameters() would (batchnorm
 * running statistics are buffers, not parameters). */
#include <string.h>

#include "sema_int.h"

enum { MAX_DIM = 1 << 16 };    /* channels, sizes: enough for any real network */

typedef bool (*ApplyFn)(SemaCtx *c, const Layer *y, const Value *v, const bool *given, Shape in,
                        NetLayer *out);

struct LayerRule {
    const char *name;
    NetOp op;
    const ParamSpec *specs;
    int n;
    ApplyFn apply;
};

static bool need_rank3(SemaCtx *c, const Layer *y, Shape in)
{
    if (in.rank == 3)
        return true;
    sema_error(c, y->loc, "%s needs a [C, H, W] input, but its input is %s", y->name, sema_shape(c, in));
    return false;
}

static bool in_range(SemaCtx *c, const Value *v, const char *layer, const char *what, long long lo,
                     long long hi)
{
    if (v->i >= lo && v->i <= hi)
        return true;
    if (v->i < lo)
        sema_error(c, v->loc, "%s: %s must be at least %lld, not %lld", layer, what, lo, v->i);
    else
        sema_error(c, v->loc, "%s: %s must be at most %lld, not %lld", layer, what, hi, v->i);
    return false;
}

bool sema_set_counts(SemaCtx *c, Loc loc, const char *name, NetLayer *out, double params, double flops)
{
    if (params > 1e15 || flops > 1e18) {
        sema_error(c, loc, "%s is too large: %.3g parameters, %.3g FLOPs", name, params, flops);
        return false;
    }
    out->params = (long long)params;
    out->flops = (long long)flops;
    return true;
}

static bool set_counts(SemaCtx *c, const Layer *y, NetLayer *out, double params, double flops)
{
    return sema_set_counts(c, y->loc, y->name, out, params, flops);
}

static const ParamSpec conv_specs[] = {
    { "out", P_INT, true }, { "k", P_INT, false }, { "stride", P_INT, false },
    { "pad", P_INT, false }, { "bias", P_BOOL, false },
};
static bool conv_apply(SemaCtx *c, const Layer *y, const Value *v, const bool *given, Shape in,
                       NetLayer *o)
{
    long long k = given[1] ? v[1].i : 3, s = given[2] ? v[2].i : 1;
    long long pad = given[3] ? v[3].i : k / 2;
    bool ok = in_range(c, &v[0], "conv", "the number of channels", 1, MAX_DIM);
    ok &= !given[1] || in_range(c, &v[1], "conv", "the kernel size", 1, MAX_DIM);
    ok &= !given[2] || in_range(c, &v[2], "conv", "the stride", 1, MAX_DIM);
    ok &= !given[3] || in_range(c, &v[3], "conv", "the padding", 0, MAX_DIM);
    if (in.rank == 0)          /* after an error: the input shape is unknown, the arguments are checked */
        return o->out = in, ok;
    if (!need_rank3(c, y, in) || !ok)
        return false;
    o->out_ch = v[0].i;
    o->k = k;
    o->stride = s;
    o->pad = pad;
    o->bias = given[4] ? v[4].b : true;
    if (k > in.d[1] + 2 * pad || k > in.d[2] + 2 * pad) {
        sema_error(c, y->loc, "conv: kernel %lldx%lld is larger than its input %s padded by %lld",
                   k, k, sema_shape(c, in), pad);
        return false;
    }
    o->out = (Shape){ 3, { o->out_ch, (in.d[1] + 2 * pad - k) / s + 1, (in.d[2] + 2 * pad - k) / s + 1 } };
    double spatial = (double)o->out.d[1] * (double)o->out.d[2];
    double macs = (double)in.d[0] * (double)(k * k) * (double)o->out_ch * spatial;
    return set_counts(c, y, o, (double)in.d[0] * (double)(k * k) * (double)o->out_ch + (o->bias ? (double)o->out_ch : 0),
                      2 * macs + (o->bias ? (double)o->out_ch * spatial : 0));
}

static bool bn_apply(SemaCtx *c, const Layer *y, const Value *v, const bool *given, Shape in, NetLayer *o)
{
    (void)v, (void)given;
    o->out = in;   /* rank 0 (unknown after an error) stays unknown */
    return set_counts(c, y, o, 2.0 * (double)in.d[0], 2.0 * (double)shape_numel(in));
}

static bool relu_apply(SemaCtx *c, const Layer *y, const Value *v, const bool *given, Shape in, NetLayer *o)
{
    (void)v, (void)given;
    o->out = in;
    return set_counts(c, y, o, 0, (double)shape_numel(in));
}

static const ParamSpec pool_specs[] = { { "k", P_INT, true }, { "stride", P_INT, false } };
static bool pool_apply(SemaCtx *c, const Layer *y, const Value *v, const bool *given, Shape in, NetLayer *o)
{
    bool ok = in_range(c, &v[0], y->name, "the pool size", 1, MAX_DIM);
    ok &= !given[1] || in_range(c, &v[1], y->name, "the stride", 1, MAX_DIM);
    if (in.rank == 0)
        return o->out = in, ok;
    if (!need_rank3(c, y, in) || !ok)
        return false;
    o->k = v[0].i;
    o->stride = given[1] ? v[1].i : o->k;
    if (o->k > in.d[1] || o->k > in.d[2]) {
        sema_error(c, y->loc, "%s(%lld) is larger than its input %s", y->name, o->k, sema_shape(c, in));
        return false;
    }
    o->out = (Shape){ 3, { in.d[0], (in.d[1] - o->k) / o->stride + 1, (in.d[2] - o->k) / o->stride + 1 } };
    return set_counts(c, y, o, 0, (double)shape_numel(o->out) * (double)(o->k * o->k));
}

static bool gap_apply(SemaCtx *c, const Layer *y, const Value *v, const bool *given, Shape in, NetLayer *o)
{
    (void)v, (void)given;
    if (in.rank == 0)
        return o->out = in, true;
    if (!need_rank3(c, y, in))
        return false;
    o->out = (Shape){ 1, { in.d[0] } };
    return set_counts(c, y, o, 0, (double)shape_numel(in));
}

static bool flatten_apply(SemaCtx *c, const Layer *y, const Value *v, const bool *given, Shape in, NetLayer *o)
{
    (void)v, (void)given;
    o->out = in.rank ? (Shape){ 1, { shape_numel(in) } } : in;
    return set_counts(c, y, o, 0, 0);
}

static const ParamSpec linear_specs[] = { { "out", P_INT, true }, { "bias", P_BOOL, false } };
static bool linear_apply(SemaCtx *c, const Layer *y, const Value *v, const bool *given, Shape in, NetLayer *o)
{
    bool ok = in_range(c, &v[0], "linear", "the number of outputs", 1, MAX_DIM);
    if (in.rank == 0)
        return o->out = in, ok;
    if (in.rank != 1) {
        sema_error(c, y->loc, "linear needs a flat input [N], but its input is %s (put flatten or gap before it)",
                   sema_shape(c, in));
        return false;
    }
    if (!ok)
        return false;
    o->out_ch = v[0].i;
    o->bias = given[1] ? v[1].b : true;
    o->out = (Shape){ 1, { o->out_ch } };
    double w = (double)in.d[0] * (double)o->out_ch, b = o->bias ? (double)o->out_ch : 0;
    return set_counts(c, y, o, w + b, 2 * w + b);
}

static const ParamSpec dropout_specs[] = { { "p", P_NUM, false } };
static bool dropout_apply(SemaCtx *c, const Layer *y, const Value *v, const bool *given, Shape in, NetLayer *o)
{
    o->p = given[0] ? v[0].f : 0.5;
    if (!(o->p >= 0 && o->p < 1)) {
        sema_error(c, v[0].loc, "dropout: p must be in [0, 1), not %g", o->p);
        return false;
    }
    o->out = in;
    return set_counts(c, y, o, 0, 0);
}

#define RULE(name, op, specs, fn) { name, op, specs, (int)(sizeof specs / sizeof specs[0]), fn }
#define RULE0(name, op, fn) { name, op, NULL, 0, fn }
static const LayerRule rules[] = {
    RULE("conv", NET_CONV, conv_specs, conv_apply),
    RULE0("batchnorm", NET_BATCHNORM, bn_apply),
    RULE0("relu", NET_RELU, relu_apply),
    RULE("maxpool", NET_MAXPOOL, pool_specs, pool_apply),
    RULE("avgpool", NET_AVGPOOL, pool_specs, pool_apply),
    RULE0("gap", NET_GAP, gap_apply),
    RULE0("flatten", NET_FLATTEN, flatten_apply),
    RULE("linear", NET_LINEAR, linear_specs, linear_apply),
    RULE("dropout", NET_DROPOUT, dropout_specs, dropout_apply),
};

const LayerRule *layer_rule(const char *name)
{
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (strcmp(rules[i].name, name) == 0)
            return &rules[i];
    return NULL;
}

const char *layer_rule_names(void)
{
    return "conv, batchnorm, relu, maxpool, avgpool, gap, flatten, linear, dropout, mask, modular, residual";
}

bool layer_rule_apply(SemaCtx *c, const LayerRule *r, const Layer *y, const Env *env, Shape in,
                      NetLayer *out)
{
    Value vals[8];
    bool given[8];
    out->op = r->op;
    out->in = in;
    if (!sema_bind(c, r->name, y->loc, r->specs, r->n, &y->args, env, vals, given))
        return false;
    return r->apply(c, y, vals, given, in, out);
}
