/* The item walk: every item is checked in order, so a name must be defined
 * before it is used; all errors of the program are reported. */
#include <stdarg.h>
#include <string.h>

#include "rt_hash.h"
#include "sema_int.h"

void sema_error(SemaCtx *c, Loc loc, const char *fmt, ...)
{
    char small[1024], *buf = small;   /* a message longer (a very long name) is not cut */
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n >= (int)sizeof small) {
        buf = arena_alloc(c->a, (size_t)n + 1);
        vsnprintf(buf, (size_t)n + 1, fmt, again);
    }
    va_end(again);
    va_end(ap);
    const void *fp = loc.file;                 /* the place and the message */
    uint64_t h = rt_fnv(RT_FNV_SEED, &fp, sizeof fp);
    h = rt_fnv(rt_fnv(h, &loc.line, sizeof loc.line), &loc.col, sizeof loc.col);
    h = rt_fnv(h, buf, strlen(buf));
    for (int i = 0; i < c->nsaid; i++)
        if (c->said[i] == h)
            return;
    if (c->nsaid < (int)(sizeof c->said / sizeof c->said[0]))
        c->said[c->nsaid++] = h;
    diag_error(c->d, loc, "%s", buf);
    /* Inside a block: say where each enclosing block was called from (the
     * innermost few and the outermost, for deep chains). */
    int depth = 0, shown = 0;
    for (const CallSite *s = c->site; s; s = s->parent)
        depth++;
    int skipped = depth - 6;   /* shown: the 5 innermost calls and the outermost */
    for (const CallSite *s = c->site; s; s = s->parent, shown++) {
        if (shown == 4 && skipped > 0)
            diag_note(c->d, s->loc, "in block '%s' called from here (%d more calls up to the model not shown)",
                      s->block, skipped);
        else if (shown <= 4 || !s->parent)
            diag_note(c->d, s->loc, "in block '%s' called from here", s->block);
    }
}

const char *sema_shape(SemaCtx *c, Shape s)
{
    char buf[80];
    return arena_strdup(c->a, shape_str(s, buf, sizeof buf));
}

Symbol *sema_find(Vec *syms, const char *name)
{
    for (int i = 0; i < syms->n; i++) {
        Symbol *s = syms->v[i];
        if (strcmp(s->name, name) == 0)
            return s;
    }
    return NULL;
}

/* The closest of `syms` to name, close enough to be a typo of it, or NULL. */
const char *sema_closest(const Vec *syms, const char *name)
{
    const char *best = NULL;
    int bestd = 3;
    for (int i = 0; i < syms->n; i++) {
        const Symbol *s = syms->v[i];
        int d = name_distance(name, s->name);
        if (d < bestd)
            bestd = d, best = s->name;
    }
    return best && (int)strlen(name) > bestd ? best : NULL;
}

bool sema_lost(SemaCtx *c, const char *name)
{
    if (c->d->errors == 0 || sema_find(&c->datasets, name) || sema_find(&c->models, name) ||
        sema_find(&c->blocks, name))
        return false;   /* a lost item left a syntax error behind */
    for (int i = 0; c->prog && i < c->prog->declared.n; i++)
        if (!strcmp(c->prog->declared.v[i], name))
            return true;
    return false;
}

bool sema_defined_later(SemaCtx *c, Loc loc, ItemKind kind, const char *name)
{
    const char *what = ast_item_kind_name(kind);
    for (int i = 0; c->prog && i < c->prog->items.n; i++) {
        const Item *it = c->prog->items.v[i];
        if (it->kind == kind && it->name && !strcmp(it->name, name)) {
            if (it->name_loc.file == loc.file)
                sema_error(c, loc, "%s '%s' is defined after this use, at line %d; a name must be defined before it "
                           "is used", what, name, src_line_no(it->name_loc.file, it->name_loc.line));
            else
                sema_error(c, loc, "%s '%s' is defined after this use, at %s:%d; a name must be defined before it "
                           "is used", what, name, it->name_loc.file->path,
                           src_line_no(it->name_loc.file, it->name_loc.line));
            return true;
        }
    }
    return false;
}

void sema_unknown(SemaCtx *c, Loc loc, ItemKind kind, const char *name)
{
    const char *what = ast_item_kind_name(kind);
    if (sema_defined_later(c, loc, kind, name))
        return;
    if (sema_lost(c, name))
        return;
    Vec *other = kind == IT_MODEL ? &c->datasets : &c->models;
    if (sema_find(other, name)) {
        sema_error(c, loc, "'%s' is a %s, not a %s (train MODEL on DATASET)", name,
                   kind == IT_MODEL ? "dataset" : "model", what);
        return;
    }
    const char *best = sema_closest(kind == IT_MODEL ? &c->models : &c->datasets, name);
    if (best)
        sema_error(c, loc, "unknown %s '%s'; did you mean '%s'?", what, name, best);
    else
        sema_error(c, loc, "unknown %s '%s'", what, name);
}

/* A new name in `syms`; false (and an error) when it is taken. */
static Symbol *define(SemaCtx *c, Vec *syms, const char *kind, const Item *it)
{
    Symbol *old = sema_find(syms, it->name);
    if (!old && syms == &c->blocks)
        old = sema_find(&c->models, it->name);
    if (!old && syms == &c->models)
        old = sema_find(&c->blocks, it->name);
    if (old) {
        sema_error(c, it->name_loc, "redefinition of '%s'", it->name);
        diag_note(c->d, old->item->name_loc, "the first %s '%s' is defined here",
                  ast_item_kind_name(old->item->kind), it->name);
        (void)kind;
        return NULL;
    }
    Symbol *s = arena_alloc(c->a, sizeof *s);
    s->name = it->name;
    s->item = it;
    vec_push(c->a, syms, s);
    return s;
}

static bool is_builtin_layer(const char *name)
{
    return layer_rule(name) || strcmp(name, "mask") == 0;
}

int sema_check(Arena *a, Diag *d, const Program *p, Checked *out)
{
    SemaCtx c = { .a = a, .d = d, .prog = p };
    int before = d->errors;
    memset(out, 0, sizeof *out);
    for (int i = 0; i < p->items.n; i++) {
        const Item *it = p->items.v[i];
        Symbol *s;
        if (it->bad) {
            /* A syntax error inside: its name exists (no "unknown" cascades),
             * but what the parser recovered is not checked. */
            Vec *syms = it->kind == IT_DATASET ? &c.datasets : it->kind == IT_BLOCK ? &c.blocks
                      : it->kind == IT_MODEL ? &c.models : NULL;
            if (syms && (s = define(&c, syms, "", it)))
                s->bad = true;
            continue;
        }
        switch (it->kind) {
        case IT_IMPORT:
            break;
        case IT_DATASET:
            if ((s = define(&c, &c.datasets, "dataset", it)) && (s->data = sema_dataset(&c, it)))
                vec_push(a, &out->datasets, s->data);
            else if (s)
                s->bad = true;
            break;
        case IT_BLOCK:
            if (is_builtin_layer(it->name)) {
                sema_error(&c, it->name_loc, "a block cannot be named '%s': that is a built-in layer", it->name);
                break;
            }
            if ((s = define(&c, &c.blocks, "block", it)))
                s->bad = !sema_block_names(&c, it);
            break;
        case IT_MODEL:
            if (is_builtin_layer(it->name)) {
                sema_error(&c, it->name_loc, "a model cannot be named '%s': that is a built-in layer", it->name);
                break;
            }
            if ((s = define(&c, &c.models, "model", it)) && (s->net = sema_model(&c, it)))
                vec_push(a, &out->models, s->net);
            else if (s)
                s->bad = true;
            break;
        case IT_TRAIN: {
            TrainInfo *t = sema_train(&c, it);
            if (t)
                vec_push(a, &out->trains, t);
            break;
        }
        case IT_MODULARIZE: {
            ModularizeInfo *m = sema_modularize(&c, it);
            if (m)
                vec_push(a, &out->modularizes, m);
            break;
        }
        case IT_REUSE: {
            ReuseInfo *r = sema_reuse(&c, it);
            if (r)
                vec_push(a, &out->reuses, r);
            break;
        }
        }
    }
    sema_train_statements(&c, p, out);
    sema_reuse_batches(&c, out);
    return d->errors - before;
}
