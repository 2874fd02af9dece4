/* Argument expressions: integers and floats with + - * / over parameters,
 * `true` and `false`; `/` of two integers truncates. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "sema_int.h"

const char *expr_kind_str(const Expr *e)
{
    switch (e->kind) {
    case EX_INT: return "an integer";
    case EX_FLOAT: return "a number";
    case EX_STRING: return "a string";
    case EX_IDENT: return "a name";
    case EX_CALL: return "a call";
    case EX_LIST: return "a list";
    case EX_TUPLE: return "a tuple";
    case EX_BINARY:
    case EX_NEG: return "an expression";
    case EX_LAYERS: return "a layer block";
    }
    return "?";
}

const char *value_str(Arena *a, const Value *v)
{
    switch (v->kind) {
    case V_INT: return arena_printf(a, "%lld", v->i);
    case V_FLOAT: {
        char buf[48];
        return arena_strdup(a, ast_format_float(v->f, buf, sizeof buf));
    }
    case V_BOOL: return v->b ? "true" : "false";
    case V_LAYERS: return "{ ... }";
    }
    return "?";
}

static bool eval_binary(SemaCtx *c, const Expr *e, Value l, Value r, Value *out)
{
    if (l.kind == V_BOOL || r.kind == V_BOOL) {
        sema_error(c, e->loc, "'%c' needs numbers, not true or false", e->op);
        return false;
    }
    out->loc = e->loc;
    if (l.kind == V_INT && r.kind == V_INT) {
        long long v = 0;
        bool overflow = false;
        switch (e->op) {
        case '+': overflow = __builtin_add_overflow(l.i, r.i, &v); break;
        case '-': overflow = __builtin_sub_overflow(l.i, r.i, &v); break;
        case '*': overflow = __builtin_mul_overflow(l.i, r.i, &v); break;
        case '/':
            if (r.i == 0) {
                sema_error(c, e->loc, "division by zero");
                return false;
            }
            overflow = l.i == INT64_MIN && r.i == -1;
            if (!overflow)
                v = l.i / r.i;
            break;
        }
        if (overflow) {
            sema_error(c, e->loc, "integer overflow in %lld %c %lld", l.i, e->op, r.i);
            return false;
        }
        out->kind = V_INT;
        out->i = v;
        out->f = (double)v;
        return true;
    }
    double x = l.f, y = r.f, v = 0;
    switch (e->op) {
    case '+': v = x + y; break;
    case '-': v = x - y; break;
    case '*': v = x * y; break;
    case '/':
        if (y == 0) {
            sema_error(c, e->loc, "division by zero");
            return false;
        }
        v = x / y;
        break;
    }
    if (!isfinite(v)) {
        sema_error(c, e->loc, "the result of '%c' is too large", e->op);
        return false;
    }
    out->kind = V_FLOAT;
    out->f = v;
    return true;
}

bool sema_eval(SemaCtx *c, const Expr *e, const Env *env, Value *out)
{
    memset(out, 0, sizeof *out);
    out->loc = e->loc;
    switch (e->kind) {
    case EX_INT:
        out->kind = V_INT;
        out->i = e->i;
        out->f = (double)e->i;
        return true;
    case EX_FLOAT:
        if (!isfinite(e->f)) {
            sema_error(c, e->loc, "number is too large");
            return false;
        }
        out->kind = V_FLOAT;
        out->f = e->f;
        return true;
    case EX_IDENT:
        for (const Env *b = env; b; b = b->next)
            if (strcmp(b->name, e->s) == 0) {
                *out = b->v;
                out->loc = e->loc;
                return true;
            }
        if (strcmp(e->s, "true") == 0 || strcmp(e->s, "false") == 0) {
            out->kind = V_BOOL;
            out->b = e->s[0] == 't';
            return true;
        }
        {
            const char *best = NULL;
            int bestd = 3;
            for (const Env *b = env; b; b = b->next) {
                int d = name_distance(e->s, b->name);
                if (d < bestd)
                    bestd = d, best = b->name;
            }
            static const char *consts[] = { "true", "false" };
            for (int i = 0; i < 2; i++) {
                int d = name_distance(e->s, consts[i]);
                if (d < bestd)
                    bestd = d, best = consts[i];
            }
            if (best && (int)strlen(e->s) > bestd)
                sema_error(c, e->loc, "unknown name '%s'; did you mean '%s'?", e->s, best);
            else
                sema_error(c, e->loc, "unknown name '%s'", e->s);
        }
        return false;
    case EX_BINARY: {
        Value l, r;
        bool okl = sema_eval(c, e->lhs, env, &l);
        bool okr = sema_eval(c, e->rhs, env, &r);
        return okl && okr && eval_binary(c, e, l, r, out);
    }
    case EX_NEG:
        if (!sema_eval(c, e->lhs, env, out))
            return false;
        if (out->kind == V_BOOL) {
            sema_error(c, e->loc, "'-' needs a number, not true or false");
            return false;
        }
        if (out->kind == V_INT) {
            if (out->i == INT64_MIN) {
                sema_error(c, e->loc, "integer overflow in -(%lld)", out->i);
                return false;
            }
            out->i = -out->i;
        }
        out->f = -out->f;
        out->loc = e->loc;
        return true;
    case EX_LAYERS:
        out->kind = V_LAYERS;
        out->layers = e;
        return true;
    case EX_STRING:
    case EX_CALL:
    case EX_LIST:
    case EX_TUPLE:
        break;
    }
    sema_error(c, e->loc, "expected a number, found %s", expr_kind_str(e));
    return false;
}

static const char *type_name(ParamType t)
{
    switch (t) {
    case P_INT: return "an integer";
    case P_NUM: return "a number";
    case P_BOOL: return "true or false";
    case P_LAYERS: return "a layer block { ... }";
    case P_ANY: return "a number or true/false";
    }
    return "?";
}

bool sema_convert(SemaCtx *c, const char *what, const char *param, ParamType t, Value *v)
{
    bool ok;
    switch (t) {
    case P_INT: ok = v->kind == V_INT; break;
    case P_NUM:
        ok = v->kind == V_INT || v->kind == V_FLOAT;
        break;
    case P_BOOL: ok = v->kind == V_BOOL; break;
    case P_LAYERS: ok = v->kind == V_LAYERS; break;
    default: ok = v->kind != V_LAYERS; break;
    }
    if (!ok && t == P_BOOL && v->kind == V_INT && !strcmp(what, "linear") && !strcmp(param, "bias"))
        /* linear(6272, 10): PyTorch's Linear(in_features, out_features) */
        sema_error(c, v->loc, "argument 'bias' of linear must be true or false, not %s: linear takes only its "
                   "number of outputs, its inputs come from the shape before it (PyTorch's Linear(in, out) is "
                   "linear(out))", value_str(c->a, v));
    else if (!ok)
        sema_error(c, v->loc, "argument '%s' of %s must be %s, not %s", param, what, type_name(t),
                   v->kind == V_LAYERS ? "a layer block" : value_str(c->a, v));
    return ok;
}

bool sema_bind(SemaCtx *c, const char *what, Loc at, const ParamSpec *specs, int n,
               const Vec *args, const Env *env, Value *vals, bool *given)
{
    bool ok = true, named_seen = false;
    int pos = 0;
    for (int i = 0; i < n; i++)
        given[i] = false;
    for (int i = 0; i < args->n; i++) {
        const Arg *g = args->v[i];
        int slot = -1;
        if (g->name) {
            named_seen = true;
            for (int j = 0; j < n; j++)
                if (strcmp(specs[j].name, g->name) == 0)
                    slot = j;
            if (slot < 0) {
                char *names = "";
                const char *alt = names_torch_param(g->name), *mean = NULL;   /* kernel_size, padding, ... */
                for (int j = 0; j < n; j++) {
                    names = arena_printf(c->a, "%s%s%s", names, j ? ", " : "", specs[j].name);
                    if (alt && !strcmp(alt, specs[j].name))
                        mean = alt;
                }
                if (mean)
                    sema_error(c, g->loc, "%s has no parameter '%s'; did you mean '%s'? (it has: %s)", what, g->name,
                               mean, names);
                else
                    sema_error(c, g->loc, "%s has no parameter '%s'%s%s%s", what, g->name,
                               n ? " (it has: " : "", names, n ? ")" : "");
                ok = false;
                continue;
            }
        } else {
            if (named_seen) {
                sema_error(c, g->loc, "positional argument after a named one in %s", what);
                ok = false;
                continue;
            }
            if (pos >= n) {
                if (n == 0)
                    sema_error(c, g->loc, "%s takes no arguments", what);
                else
                    sema_error(c, g->loc, "too many arguments to %s (it takes at most %d)", what, n);
                ok = false;
                break;
            }
            slot = pos++;
        }
        if (given[slot]) {
            sema_error(c, g->loc, "argument '%s' of %s given twice", specs[slot].name, what);
            ok = false;
            continue;
        }
        given[slot] = true;
        if (!sema_eval(c, g->value, env, &vals[slot]) ||
            !sema_convert(c, what, specs[slot].name, specs[slot].type, &vals[slot])) {
            ok = false;
            continue;
        }
    }
    for (int j = 0; j < n && ok; j++)
        if (specs[j].required && !given[j]) {
            sema_error(c, at, "%s needs argument '%s'", what, specs[j].name);
            ok = false;
        }
    return ok;
}
