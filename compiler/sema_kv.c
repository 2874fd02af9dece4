/* `key = value` bodies of dataset, train, modularize and reuse. */
#include <string.h>

#include "sema_int.h"

const KeyVal *kv_find(const Vec *kvs, const char *key)
{
    for (int i = 0; i < kvs->n; i++) {
        const KeyVal *kv = kvs->v[i];
        if (strcmp(kv->key, key) == 0)
            return kv;
    }
    return NULL;
}

/* Where a key that is unknown here goes instead: the optimizer's arguments
 * written as train keys (PyTorch habits: lr = 0.1 beside epochs), the
 * threshold written in a train or reuse statement. NULL: nowhere known. */
static const char *key_elsewhere(SemaCtx *c, const char *what, const char *key)
{
    static const char *const sgd[] = { "lr", "momentum", "nesterov", "weight_decay" };
    for (size_t i = 0; i < sizeof sgd / sizeof *sgd; i++)
        if (!strcmp(what, "train") && !strcmp(key, sgd[i]))
            return arena_printf(c->a, "it is an argument of the optimizer: optimizer = sgd(%s = ...)", key);
    if ((!strcmp(what, "train") || !strcmp(what, "reuse")) && !strcmp(key, "threshold"))
        return "the threshold is the modularize statement's: modularize MODEL { threshold = ... }";
    if (!strcmp(what, "reuse")) {   /* what a reuse takes from its model's train statement, or fixes */
        static const char *const from_train[] = { "batch", "optimizer", "momentum", "nesterov", "weight_decay" };
        for (size_t i = 0; i < sizeof from_train / sizeof *from_train; i++)
            if (!strcmp(key, from_train[i]))
                return "a reuse fine-tunes with the batch and the sgd settings of its model's train statement "
                       "(its own keys: classes, epochs, lr, generators)";
        if (!strcmp(key, "schedule"))
            return "a reuse fine-tunes over a cosine schedule of its epochs";
        if (!strcmp(key, "loss"))
            return "a reuse fine-tunes on cross_entropy alone: its module's kernels are chosen already";
    }
    return NULL;
}

/* The key a training script's name stands for (batch_size: batch, num_classes: classes), or NULL. */
static const char *key_synonym(const char *what, const char *key)
{
    static const char *const train[][2] = {
        { "batch_size", "batch" }, { "batchsize", "batch" }, { "num_epochs", "epochs" }, { "n_epochs", "epochs" },
        { "max_epochs", "epochs" }, { "optim", "optimizer" }, { "scheduler", "schedule" },
        { "lr_scheduler", "schedule" }, { "criterion", "loss" }, { "num_threads", "threads" },
    };
    static const char *const dataset[][2] = {
        { "num_classes", "classes" }, { "n_classes", "classes" }, { "input_shape", "shape" }, { "size", "shape" },
        { "transform", "augment" }, { "transforms", "augment" }, { "class_names", "names" }, { "labels", "names" },
    };
    for (size_t i = 0; i < sizeof train / sizeof *train; i++)
        if (!strcmp(what, "train") && !strcmp(key, train[i][0]))
            return train[i][1];
    for (size_t i = 0; i < sizeof dataset / sizeof *dataset; i++)
        if (!strcmp(what, "a dataset") && !strcmp(key, dataset[i][0]))
            return dataset[i][1];
    return NULL;
}

bool kv_check_keys(SemaCtx *c, const char *what, const Vec *kvs, const char *const *keys)
{
    bool ok = true;
    for (int i = 0; i < kvs->n; i++) {
        const KeyVal *kv = kvs->v[i];
        bool known = false;
        for (int k = 0; keys[k]; k++)
            known |= strcmp(keys[k], kv->key) == 0;
        if (!known) {
            char *list = "";
            for (int k = 0; keys[k]; k++)
                list = arena_printf(c->a, "%s%s%s", list, k ? ", " : "", keys[k]);
            int nkeys = 0;
            while (keys[nkeys])
                nkeys++;
            const char *best = key_synonym(what, kv->key), *elsewhere = key_elsewhere(c, what, kv->key);
            if (!best)
                best = name_closest(kv->key, keys, nkeys);
            if (elsewhere)
                sema_error(c, kv->loc, "unknown key '%s' in %s: %s", kv->key, what, elsewhere);
            else if (best)
                sema_error(c, kv->loc, "unknown key '%s' in %s; did you mean '%s'? (the keys are: %s)", kv->key, what,
                           best, list);
            else
                sema_error(c, kv->loc, "unknown key '%s' in %s (the keys are: %s)", kv->key, what, list);
            ok = false;
            continue;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(((const KeyVal *)kvs->v[j])->key, kv->key) == 0) {
                sema_error(c, kv->loc, "key '%s' given twice in %s", kv->key, what);
                ok = false;
                break;
            }
    }
    return ok;
}

const char *expr_ident(const Expr *e) { return e->kind == EX_IDENT ? e->s : NULL; }

bool expr_int(SemaCtx *c, const Expr *e, const char *what, long long lo, long long hi, long long *out)
{
    Value v;
    if (!sema_eval(c, e, NULL, &v))
        return false;
    if (v.kind != V_INT) {
        sema_error(c, e->loc, "%s must be an integer, not %s", what, value_str(c->a, &v));
        return false;
    }
    if (v.i < lo || v.i > hi) {
        sema_error(c, e->loc, "%s must be between %lld and %lld, not %lld", what, lo, hi, v.i);
        return false;
    }
    *out = v.i;
    return true;
}

bool expr_num(SemaCtx *c, const Expr *e, const char *what, double lo, double hi, bool lo_open, double *out)
{
    Value v;
    if (!sema_eval(c, e, NULL, &v))
        return false;
    if (v.kind != V_INT && v.kind != V_FLOAT) {
        sema_error(c, e->loc, "%s must be a number, not %s", what, value_str(c->a, &v));
        return false;
    }
    if ((lo_open ? v.f <= lo : v.f < lo) || v.f > hi) {
        sema_error(c, e->loc, "%s must be in %s%g, %g], not %g", what, lo_open ? "(" : "[", lo, hi, v.f);
        return false;
    }
    *out = v.f;
    return true;
}

bool kv_misspelled(const Vec *kvs, const char *key)
{
    for (int i = 0; i < kvs->n; i++) {
        const KeyVal *kv = kvs->v[i];
        if (strcmp(kv->key, key) != 0 && name_closest(kv->key, &key, 1))
            return true;
    }
    return false;
}

bool key_int(SemaCtx *c, const Vec *kvs, const char *key, long long lo, long long hi, long long *out, bool *ok)
{
    if (!kv_find(kvs, key))
        return false;
    if (kv_int(c, kvs, key, lo, hi, out))
        return true;
    *ok = false;
    return false;
}

bool kv_int(SemaCtx *c, const Vec *kvs, const char *key, long long lo, long long hi, long long *out)
{
    const KeyVal *kv = kv_find(kvs, key);
    return !kv || expr_int(c, kv->value, key, lo, hi, out);
}

bool kv_num(SemaCtx *c, const Vec *kvs, const char *key, double lo, double hi, bool lo_open, double *out)
{
    const KeyVal *kv = kv_find(kvs, key);
    return !kv || expr_num(c, kv->value, key, lo, hi, lo_open, out);
}
