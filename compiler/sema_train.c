/* train, modularize and reuse statements. */
#include <stdint.h>
#include <string.h>

#include "names.h"
#include "sema_int.h"

/* The model a statement names: NULL with an error when unknown, NULL and no
 * error when the model itself had errors (reported at its definition). */
static Net *find_model(SemaCtx *c, const char *name, Loc loc)
{
    Symbol *s = sema_find(&c->models, name);
    if (!s) {
        if (sema_find(&c->blocks, name))
            sema_error(c, loc, "'%s' is a block, not a model", name);
        else
            sema_unknown(c, loc, IT_MODEL, name);
        return NULL;
    }
    return s->net;
}

/* A word a key does not take: quoted, with the one it misspells. */
/* The word of words that s was meant as: its PyTorch name's (CosineAnnealingLR:
 * cosine, CrossEntropyLoss: cross_entropy), or the closest; NULL when none. */
static const char *meant(const char *s, const char *const *words, int n)
{
    const char *torch = names_torch_word(s);
    for (int i = 0; torch && i < n; i++)
        if (!strcmp(torch, words[i]))
            return words[i];
    return name_closest(s, words, n);
}

static void unknown_word(SemaCtx *c, const Expr *e, const char *key, const char *const *words, int n,
                         const char *list)
{
    const char *s = e->kind == EX_IDENT || e->kind == EX_CALL ? e->s : NULL;
    const char *best = s ? meant(s, words, n) : NULL;
    if (best)
        sema_error(c, e->loc, "unknown %s '%s'; did you mean '%s'? (the choices are: %s)", key, s, best, list);
    else if (s)
        sema_error(c, e->loc, "unknown %s '%s' (the choices are: %s)", key, s, list);
    else
        sema_error(c, e->loc, "%s must be one of: %s", key, list);
}

static bool optimizer(SemaCtx *c, const Expr *e, TrainInfo *t)
{
    if ((e->kind != EX_CALL && e->kind != EX_IDENT) || strcmp(e->s, "sgd") != 0) {
        static const char *const words[] = { "sgd" };
        if (e->kind == EX_CALL || e->kind == EX_IDENT)
            unknown_word(c, e, "optimizer", words, 1, "sgd(lr, momentum, nesterov, weight_decay)");
        else
            sema_error(c, e->loc, "optimizer must be sgd(lr, momentum, nesterov, weight_decay), not %s", expr_kind_str(e));
        return false;
    }
    static const ParamSpec specs[] = {
        { "lr", P_NUM, false }, { "momentum", P_NUM, false }, { "nesterov", P_BOOL, false },
        { "weight_decay", P_NUM, false },
    };
    Value v[4];
    bool given[4];
    if (!sema_bind(c, "sgd", e->loc, specs, 4, &e->args, NULL, v, given))
        return false;
    t->lr = given[0] ? v[0].f : 0.05;
    t->momentum = given[1] ? v[1].f : 0;
    t->nesterov = given[2] && v[2].b;
    t->weight_decay = given[3] ? v[3].f : 0;
    bool ok = true;
    if (!(t->lr > 0 && t->lr <= 100)) {
        sema_error(c, v[0].loc, "sgd: lr must be in (0, 100], not %g", t->lr);
        ok = false;
    }
    if (!(t->momentum >= 0 && t->momentum < 1)) {
        sema_error(c, v[1].loc, "sgd: momentum must be in [0, 1), not %g", t->momentum);
        ok = false;
    }
    if (!(t->weight_decay >= 0 && t->weight_decay < 1)) {
        sema_error(c, v[3].loc, "sgd: weight_decay must be in [0, 1), not %g", t->weight_decay);
        ok = false;
    }
    if (ok && t->nesterov && t->momentum == 0) {
        sema_error(c, v[2].loc, "sgd: nesterov needs a momentum above 0");
        ok = false;
    }
    return ok;
}

static bool schedule(SemaCtx *c, const Expr *e, TrainInfo *t)
{
    const char *name = e->kind == EX_IDENT || e->kind == EX_CALL ? e->s : "";
    if (e->kind == EX_IDENT && strcmp(name, "cosine") == 0) {
        t->schedule = SCHED_COSINE;
        return true;
    }
    if (e->kind == EX_IDENT && strcmp(name, "constant") == 0) {
        t->schedule = SCHED_CONSTANT;
        return true;
    }
    if (strcmp(name, "step") == 0) {
        static const ParamSpec specs[] = { { "every", P_INT, true }, { "gamma", P_NUM, true } };
        Value v[2];
        bool given[2];
        if (!sema_bind(c, "step", e->loc, specs, 2, &e->args, NULL, v, given))
            return false;
        if (v[0].i < 1) {
            sema_error(c, v[0].loc, "step: every must be at least 1 epoch, not %lld", v[0].i);
            return false;
        }
        if (!(v[1].f > 0 && v[1].f <= 1)) {
            sema_error(c, v[1].loc, "step: gamma must be in (0, 1], not %g", v[1].f);
            return false;
        }
        t->schedule = SCHED_STEP;
        t->step_every = (int)v[0].i;
        t->step_gamma = v[1].f;
        return true;
    }
    static const char *const words[] = { "cosine", "constant", "step" };
    unknown_word(c, e, "schedule", words, 3, "cosine, constant, step(every = E, gamma = G)");
    return false;
}

/* mask_init = linear | kaiming_normal */
static bool mask_init(SemaCtx *c, const Expr *e, TrainInfo *t)
{
    if (e->kind == EX_IDENT && strcmp(e->s, "linear") == 0) {
        t->mask_init = MASK_INIT_LINEAR;
        return true;
    }
    if (e->kind == EX_IDENT && strcmp(e->s, "kaiming_normal") == 0) {
        t->mask_init = MASK_INIT_KAIMING_NORMAL;
        return true;
    }
    static const char *const words[] = { "linear", "kaiming_normal" };
    unknown_word(c, e, "mask_init", words, 2, "linear, kaiming_normal");
    return false;
}

/* LOSS: a sum of terms, each `term` or `number * term`. */
static bool loss_term(SemaCtx *c, const Expr *e, TrainInfo *t, bool *seen, Loc *where)
{
    const Expr *name = e, *weight = NULL;
    if (e->kind == EX_BINARY && e->op == '*') {
        name = e->rhs->kind == EX_IDENT ? e->rhs : e->lhs;
        weight = name == e->rhs ? e->lhs : e->rhs;
        if (weight->kind == EX_IDENT) {
            sema_error(c, e->loc, "a loss is a sum of terms, each 'term' or 'number * term': terms are not multiplied");
            return false;
        }
    }
    static const char *terms[] = { "cross_entropy", "cohesion", "coupling" };
    int k = -1;
    for (int i = 0; i < 3 && name->kind == EX_IDENT; i++)
        if (strcmp(name->s, terms[i]) == 0)
            k = i;
    if (k < 0) {
        const char *best = name->kind == EX_IDENT ? meant(name->s, terms, 3) : NULL;
        if (best)
            sema_error(c, name->loc, "unknown loss term '%s'; did you mean '%s'? (the terms are: cross_entropy, "
                       "cohesion, coupling)", name->s, best);
        else if (name->kind == EX_IDENT)
            sema_error(c, name->loc, "unknown loss term '%s' (the terms are: cross_entropy, cohesion, coupling)", name->s);
        else
            sema_error(c, e->loc, "a loss is a sum of terms, each 'term' or 'number * term'");
        return false;
    }
    if (seen[k]) {
        sema_error(c, name->loc, "loss term '%s' appears twice", terms[k]);
        return false;
    }
    seen[k] = true;
    where[k] = name->loc;
    double w = 1;
    if (weight && !expr_num(c, weight, "a loss weight", 0, 1e6, false, &w))
        return false;
    double *dst[] = { &t->w_ce, &t->w_cohesion, &t->w_coupling };
    *dst[k] = w;
    return true;
}

static bool loss(SemaCtx *c, const Expr *e, TrainInfo *t, bool *seen, Loc *where)
{
    if (e->kind == EX_BINARY && e->op == '+')
        return loss(c, e->lhs, t, seen, where) & loss(c, e->rhs, t, seen, where);
    if (e->kind == EX_BINARY && e->op == '-') {
        sema_error(c, e->loc, "loss terms are added, not subtracted");
        return false;
    }
    return loss_term(c, e, t, seen, where);
}

const char *const sema_train_keys[] = { "epochs", "batch", "optimizer", "schedule", "loss", "seed", "threads",
                                        "mask_init", NULL };
const char *const sema_modularize_keys[] = { "threshold", "generators", NULL };
const char *const sema_reuse_keys[] = { "classes", "epochs", "lr", "generators", NULL };

TrainInfo *sema_train(SemaCtx *c, const Item *it)
{
    TrainInfo *t = arena_alloc(c->a, sizeof *t);
    t->item = it;
    t->epochs = 10;
    t->batch = 128;
    t->lr = 0.05;
    t->schedule = SCHED_COSINE;
    t->w_ce = 1;
    bool ok = kv_check_keys(c, "train", &it->kvs, sema_train_keys);
    t->model = find_model(c, it->model, it->model_loc);
    Symbol *ds = sema_find(&c->datasets, it->dataset);
    if (!ds)
        sema_unknown(c, it->dataset_loc, IT_DATASET, it->dataset);
    t->data = ds ? ds->data : NULL;
    long long v = 0;
    if (key_int(c, &it->kvs, "epochs", 1, 100000, &v, &ok))
        t->epochs = (int)v;
    const KeyVal *b = kv_find(&it->kvs, "batch");
    bool batch_ok = !b || key_int(c, &it->kvs, "batch", 1, 65536, &v, &ok);
    if (b && batch_ok)
        t->batch = (int)v;
    t->batch_default = !b;
    if (key_int(c, &it->kvs, "seed", 0, INT64_MAX, &v, &ok))
        t->seed = v;
    if (key_int(c, &it->kvs, "threads", 1, 1024, &v, &ok))
        t->threads = (int)v;
    const KeyVal *kv;
    if ((kv = kv_find(&it->kvs, "optimizer")))
        ok = optimizer(c, kv->value, t) && ok;
    if ((kv = kv_find(&it->kvs, "schedule")))
        ok = schedule(c, kv->value, t) && ok;
    if ((kv = kv_find(&it->kvs, "mask_init"))) {
        ok = mask_init(c, kv->value, t) && ok;
        if (t->model && t->model->masked_layers == 0) {
            sema_error(c, kv->loc, "mask_init sets how mask generators start, and model '%s' has none (put its convs in modular { })",
                       t->model->name);
            ok = false;
        }
    }
    if ((kv = kv_find(&it->kvs, "loss"))) {
        bool seen[3] = { false, false, false };
        Loc where[3];
        t->w_ce = 0;
        if (!loss(c, kv->value, t, seen, where)) {
            ok = false;
        } else if (!seen[0]) {
            sema_error(c, kv->loc, "the loss needs cross_entropy: the modularity losses alone do not train a classifier");
            ok = false;
        } else if (t->model && t->model->masked_layers == 0 && (seen[1] || seen[2])) {
            sema_error(c, where[seen[1] ? 1 : 2], "%s needs a model with masks, and model '%s' has none (put its convs in modular { })",
                       seen[1] ? "cohesion" : "coupling", t->model->name);
            ok = false;
        }
    }
    if (t->model && t->data) {
        Net *m = t->model;
        DatasetInfo *d = t->data;
        if (m->in.rank != 3 || memcmp(m->in.d, d->shape.d, sizeof m->in.d) != 0) {
            sema_error(c, it->dataset_loc, "model '%s' takes %s, but dataset '%s' gives %s", m->name,
                       sema_shape(c, m->in), d->name, sema_shape(c, d->shape));
            ok = false;
        }
        if (m->out.rank != 1 || m->out.d[0] != d->classes) {
            sema_error(c, it->dataset_loc, "model '%s' outputs %s, but dataset '%s' has %d classes", m->name,
                       sema_shape(c, m->out), d->name, d->classes);
            ok = false;
        }
        /* a synthetic set's size is known now; a file's only once it is read (run_train.c says it then) */
        if (d->source == DS_SYNTHETIC && d->syn_n < t->batch && batch_ok && !kv_misspelled(&it->kvs, "batch")) {
            if (b)
                sema_error(c, b->value->loc, "batch %d is more than the %lld training images of dataset '%s'",
                           t->batch, d->syn_n, d->name);
            else
                sema_error(c, it->loc, "the default batch of %d is more than the %lld training images of dataset "
                           "'%s'; set batch = N (at most %lld)", t->batch, d->syn_n, d->name, d->syn_n);
            ok = false;
        }
    }
    return ok && t->model && t->data ? t : NULL;
}

static bool generators(SemaCtx *c, const Vec *kvs, bool *keep)
{
    const KeyVal *kv = kv_find(kvs, "generators");
    if (!kv)
        return true;
    const char *s = expr_ident(kv->value);
    if (s && (strcmp(s, "keep") == 0 || strcmp(s, "drop") == 0)) {
        *keep = s[0] == 'k';
        return true;
    }
    sema_error(c, kv->value->loc, "generators must be keep or drop");
    return false;
}

static Net *masked_model(SemaCtx *c, const Item *it, const char *what)
{
    Net *m = find_model(c, it->model, it->model_loc);
    if (m && m->masked_layers == 0) {
        sema_error(c, it->model_loc, "%s needs a model with masks, and model '%s' has none (put its convs in modular { })",
                   what, m->name);
        return NULL;
    }
    return m;
}

ModularizeInfo *sema_modularize(SemaCtx *c, const Item *it)
{
    ModularizeInfo *m = arena_alloc(c->a, sizeof *m);
    m->item = it;
    m->threshold = 0.9;
    m->keep_generators = true;
    bool ok = kv_check_keys(c, "modularize", &it->kvs, sema_modularize_keys);
    m->model = masked_model(c, it, "modularize");
    const KeyVal *th = kv_find(&it->kvs, "threshold");
    double pct = !th                          ? 0
                 : th->value->kind == EX_INT   ? (double)th->value->i
                 : th->value->kind == EX_FLOAT ? th->value->f
                                               : 0;
    if (pct > 1 && pct <= 100) {   /* a percentage: 90 for 90% of a class's images */
        sema_error(c, th->value->loc, "threshold must be in (0, 1], not %g: it is a share of a class's images "
                   "(%g%% is %g)", pct, pct, pct / 100);
        ok = false;
    } else {
        ok = kv_num(c, &it->kvs, "threshold", 0, 1, true, &m->threshold) && ok;
    }
    ok = generators(c, &it->kvs, &m->keep_generators) && ok;
    return ok && m->model ? m : NULL;
}

/* The first train statement of model `name` in p (with a syntax error
 * too when `bad`), or NULL. */
static const Item *train_item(const Program *p, const char *name, bool bad)
{
    for (int i = 0; i < p->items.n; i++) {
        const Item *it = p->items.v[i];
        if (it->kind == IT_TRAIN && (bad || !it->bad) && it->model && !strcmp(it->model, name))
            return it;
    }
    return NULL;
}

/* A train statement of an unknown model whose name is close to name's: its
 * "did you mean" error already points the way (`train nett` and `modularize net`). */
static bool misspelled_train(SemaCtx *c, const Program *p, const char *name)
{
    for (int i = 0; i < p->items.n; i++) {
        const Item *it = p->items.v[i];
        if (it->kind == IT_TRAIN && it->model && !sema_find(&c->models, it->model) &&
            name_closest(it->model, &name, 1))
            return true;
    }
    return false;
}

void sema_train_statements(SemaCtx *c, const Program *p, const Checked *out)
{
    /* one per model: each writes MODEL.ckpt from scratch, and modularize would read the last */
    for (int i = 0; i < p->items.n; i++) {
        const Item *it = p->items.v[i], *first;
        if (it->kind != IT_TRAIN || it->bad || !it->model || !(first = train_item(p, it->model, false)) || first == it)
            continue;
        sema_error(c, it->model_loc, "model '%s' has a train statement already: each would train it from the start "
                   "into %s.ckpt (train another model, or set one statement's keys)", it->model, it->model);
        diag_note(c->d, first->model_loc, "the first train statement of model '%s'", it->model);
    }
    /* modularize and reuse take the model's data and recipe from its train statement (a failed one said why) */
    for (int k = 0; k < 2; k++) {
        const Vec *v = k ? &out->reuses : &out->modularizes;
        for (int i = 0; i < v->n; i++) {
            const Item *it = k ? ((const ReuseInfo *)v->v[i])->item : ((const ModularizeInfo *)v->v[i])->item;
            if (!train_item(p, it->model, true) && !misspelled_train(c, p, it->model))
                sema_error(c, it->model_loc, "%s %s needs a train statement for model '%s' (its data and recipe): add "
                           "train %s on DATASET { ... }", k ? "reuse" : "modularize", it->model, it->model, it->model);
        }
    }
}

void sema_reuse_batches(SemaCtx *c, const Checked *out)
{
    for (int i = 0; i < out->reuses.n; i++) {
        const ReuseInfo *r = out->reuses.v[i];
        const TrainInfo *t = NULL;
        for (int k = 0; k < out->trains.n && !t; k++)
            if (((const TrainInfo *)out->trains.v[k])->model == r->model)
                t = out->trains.v[k];
        if (!t || t->data->source != DS_SYNTHETIC || t->data->classes < 1)
            continue;
        /* rt_data_synthetic's labels: i % classes for image i, shuffled */
        long long n = t->data->syn_n, C = t->data->classes, have = 0;
        for (int k = 0; k < r->nclasses; k++)
            have += n / C + (r->classes[k] < n % C);
        if (have < t->batch) {
            const KeyVal *cl = kv_find(&r->item->kvs, "classes"), *b = kv_find(&t->item->kvs, "batch");
            sema_error(c, cl ? cl->value->loc : r->item->name_loc,
                       "reuse '%s' fine-tunes on batches of %d, and its classes have %lld of the %lld training images "
                       "of dataset '%s'", r->name, t->batch, have, n, t->data->name);
            diag_note(c->d, b ? b->value->loc : t->item->loc,
                      "the batch of %d comes from this train statement of model '%s'", t->batch, r->model->name);
        }
    }
}

ReuseInfo *sema_reuse(SemaCtx *c, const Item *it)
{
    ReuseInfo *r = arena_alloc(c->a, sizeof *r);
    r->item = it;
    r->name = it->name;
    r->epochs = 10;
    r->lr = 0.05;
    r->keep_generators = false;
    bool ok = kv_check_keys(c, "reuse", &it->kvs, sema_reuse_keys);
    r->model = masked_model(c, it, "reuse");
    if (sema_find(&c->models, it->name) || sema_find(&c->blocks, it->name)) {
        sema_error(c, it->name_loc, "'%s' is already the name of a model or block", it->name);
        ok = false;
    } else if (sema_find(&c->reuses, it->name)) {
        sema_error(c, it->name_loc, "a reuse named '%s' is defined already", it->name);
        diag_note(c->d, sema_find(&c->reuses, it->name)->item->name_loc, "the first one is here");
        ok = false;
    } else {
        Symbol *s = arena_alloc(c->a, sizeof *s);
        s->name = it->name;
        s->item = it;
        vec_push(c->a, &c->reuses, s);
    }
    long long v = 0;
    if (key_int(c, &it->kvs, "epochs", 1, 100000, &v, &ok))
        r->epochs = (int)v;
    ok = kv_num(c, &it->kvs, "lr", 0, 100, true, &r->lr) && ok;
    ok = generators(c, &it->kvs, &r->keep_generators) && ok;
    const KeyVal *cl = kv_find(&it->kvs, "classes");
    if (!cl) {
        if (!kv_misspelled(&it->kvs, "classes"))   /* a misspelling of it said so already */
            sema_error(c, it->name_loc, "reuse needs classes = [c1, c2, ...]");
        return NULL;
    }
    if (cl->value->kind != EX_LIST || cl->value->items.n < 2) {
        sema_error(c, cl->value->loc, "classes must be a list of at least two class numbers");
        return NULL;
    }
    long long nclasses = r->model && r->model->out.rank == 1 ? r->model->out.d[0] : 1 << 16;
    r->nclasses = cl->value->items.n;
    r->classes = arena_alloc(c->a, sizeof(int) * (size_t)r->nclasses);
    for (int i = 0; i < r->nclasses; i++) {
        const Expr *e = cl->value->items.v[i];
        if (!expr_int(c, e, "a class", 0, nclasses - 1, &v)) {
            ok = false;
            continue;
        }
        r->classes[i] = (int)v;
        for (int j = 0; j < i; j++)
            if (r->classes[j] == (int)v) {
                sema_error(c, e->loc, "class %lld appears twice", v);
                ok = false;
            }
    }
    return ok && r->model ? r : NULL;
}
