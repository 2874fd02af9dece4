/* module_slice (pass_slice.h): first which channels every value keeps, then
 * the module's graph built node by node with those channels. */
#include "pass_slice.h"

#include <stdio.h>
#include <string.h>

/* A value's channels (dimension 1) in the module: n of them, position i
 * holding the source's channel idx[i]; idx NULL: all the source's, in order. */
typedef struct Chan {
    long long n;
    int *idx;
} Chan;

typedef struct Ctx {
    Arena *a;
    const IrGraph *g;
    Chan *ch;                  /* by source value id */
    Chan *layer;               /* by mask: the output channels its conv keeps */
    const IrNode **conv;       /* by mask: its conv (NULL: none found) */
    const IrNode **apply;      /* by mask: its mask_apply */
    int *mask_of_gen;          /* by value id: which mask a mask_gen defines, else -1 */
    IrGraph *out;
    IrValue **map;             /* by source value id: the module's value */
    Vec params, states;        /* SliceTensor* */
    Vec inputs;                /* SliceInput* */
    int from;                  /* the first source node the module computes */
    unsigned char *drop;       /* by mask: its generator and its mask_apply are left out (mask 1) */
    char *err;
    size_t errlen;
} Ctx;

static int chan_at(Chan c, long long i) { return c.idx ? c.idx[i] : (int)i; }

static int chan_eq(Chan x, Chan y)
{
    if (x.n != y.n)
        return 0;
    for (long long i = 0; i < x.n; i++)
        if (chan_at(x, i) != chan_at(y, i))
            return 0;
    return 1;
}

/* Both are ascending: the merged set, ascending. */
static Chan chan_union(Arena *a, Chan x, Chan y)
{
    Chan u = { 0, arena_alloc(a, sizeof(int) * (size_t)(x.n + y.n + 1)) };
    long long i = 0, j = 0;
    while (i < x.n || j < y.n) {
        int vx = i < x.n ? chan_at(x, i) : -1, vy = j < y.n ? chan_at(y, j) : -1;
        if (j >= y.n || (i < x.n && vx < vy))
            u.idx[u.n++] = vx, i++;
        else if (i >= x.n || vy < vx)
            u.idx[u.n++] = vy, j++;
        else
            u.idx[u.n++] = vx, i++, j++;
    }
    return u;
}

/* The mask whose conv decides v's channels, back through the ops that keep
 * channels as they are; -1 when none does. */
static int layer_of(const Ctx *c, const IrValue *v)
{
    for (int depth = 0; v && v->def && depth < 256; depth++) {
        const IrNode *n = v->def;
        switch (n->op) {
        case IR_RELU:
        case IR_BATCHNORM:
        case IR_DROPOUT:
        case IR_MAXPOOL:
        case IR_AVGPOOL:
        case IR_MASK_APPLY: v = n->in[0]; continue;
        case IR_CONV2D:
            for (int l = 0; l < c->g->masks.n; l++)
                if (c->conv[l] == n)
                    return l;
            return -1;
        default: return -1;
        }
    }
    return -1;
}

/* Whether x holds all n channels, in order. */
static int chan_all(Chan x, long long n)
{
    if (x.n != n)
        return 0;
    for (long long i = 0; i < n; i++)
        if (chan_at(x, i) != i)
            return 0;
    return 1;
}

/* The mask whose conv decides the logits' channels (through layers that
 * keep channels, global pooling and flatten), or -1. */
static int logits_layer(const Ctx *c, const IrValue *v)
{
    for (int depth = 0; v && v->def && depth < 256; depth++) {
        const IrNode *n = v->def;
        if (n->op == IR_GAP || n->op == IR_FLATTEN) {
            v = n->in[0];
            continue;
        }
        return layer_of(c, v);
    }
    return -1;
}

/* Every value's channels from the layers' choice. 0; or 1 with *bad the
 * residual add whose operands disagree; or -1 on an op it cannot slice. */
static int propagate(Ctx *c, const IrNode **bad)
{
    const IrGraph *g = c->g;
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *n = g->nodes.v[i];
        const IrValue *y = n->out;
        Chan all = { y->rank >= 2 ? y->d[1] : 0, NULL }, *ch = &c->ch[y->id];
        switch (n->op) {
        case IR_INPUT:
        case IR_PARAM:
        case IR_STATE:
        case IR_LINEAR: *ch = all; break;
        case IR_CONV2D:
            *ch = all;
            for (int l = 0; l < g->masks.n; l++)
                if (c->conv[l] == n)
                    *ch = c->layer[l];
            break;
        case IR_BATCHNORM:
        case IR_RELU:
        case IR_MAXPOOL:
        case IR_AVGPOOL:
        case IR_DROPOUT:
        case IR_GAP:
        case IR_MASK_APPLY: *ch = c->ch[n->in[0]->id]; break;
        case IR_MASK_GEN: *ch = c->ch[c->apply[c->mask_of_gen[y->id]]->in[0]->id]; break;
        case IR_FLATTEN: {
            const IrValue *x = n->in[0];
            Chan cx = c->ch[x->id];
            if (!cx.idx || x->rank != 4) {
                *ch = cx.idx ? cx : all;
                break;
            }
            long long hw = x->d[2] * x->d[3];
            Chan f = { cx.n * hw, arena_alloc(c->a, sizeof(int) * (size_t)(cx.n * hw)) };
            for (long long k = 0; k < cx.n; k++)
                for (long long p = 0; p < hw; p++)
                    f.idx[k * hw + p] = (int)(cx.idx[k] * hw + p);
            *ch = f;
            break;
        }
        case IR_CROSS_ENTROPY:
        case IR_WEIGHTED_SUM: *ch = all; break;   /* a training graph's loss: a scalar */
        case IR_ADD:
            if (!chan_eq(c->ch[n->in[0]->id], c->ch[n->in[1]->id])) {
                *bad = n;
                return 1;
            }
            *ch = c->ch[n->in[0]->id];
            break;
        default:
            snprintf(c->err, c->errlen, "module_slice: cannot slice a graph with %s (inference graphs and the "
                     "forward pass of a training graph without mask losses have none)", ir_op_name(n->op));
            return -1;
        }
    }
    return 0;
}

/* The two operands of add must carry the same channels: the layers that
 * decide them keep the union. 0, or -1 when a side has no such layer. */
static int widen(Ctx *c, const IrNode *add)
{
    Chan u = chan_union(c->a, c->ch[add->in[0]->id], c->ch[add->in[1]->id]);
    for (int side = 0; side < 2; side++) {
        if (chan_eq(c->ch[add->in[side]->id], u))
            continue;
        int l = layer_of(c, add->in[side]);
        if (l < 0)
            return -1;
        c->layer[l] = u;
    }
    return 0;
}

/* A module's parameter or state: src with dimension 0 taken by d0 and
 * dimension 1 by d1 (NULL: whole). */
static IrValue *tensor(Ctx *c, const IrNode *at, const IrValue *src, const Chan *d0, const Chan *d1)
{
    long long d[IR_MAX_RANK];
    memcpy(d, src->d, sizeof d);
    if (d0)
        d[0] = d0->n;
    if (d1 && src->rank > 1)
        d[1] = d1->n;
    IrOp op = src->kind == IR_V_STATE ? IR_STATE : IR_PARAM;
    IrNode *n = ir_add_node(c->a, c->out, op, at->loc, at->line, 0, NULL, src->rank, d);
    IrValue *v = n->out;
    v->name = src->name;
    v->kind = src->kind;
    Vec *list = op == IR_STATE ? &c->out->states : &c->out->params;
    v->index = list->n;
    vec_push(c->a, list, v);
    SliceTensor *t = arena_alloc(c->a, sizeof *t);
    memset(t, 0, sizeof *t);
    t->src = src, t->dst = v;
    t->idx[0] = d0 ? d0->idx : NULL;
    t->idx[1] = d1 && src->rank > 1 ? d1->idx : NULL;
    vec_push(c->a, op == IR_STATE ? &c->states : &c->params, t);
    return v;
}

/* A value the shared nodes computed, as the module's input: its channels. */
static IrValue *shared_input(Ctx *c, const IrNode *at, const IrValue *v)
{
    long long d[IR_MAX_RANK];
    memcpy(d, v->d, sizeof d);
    const Chan *ch = &c->ch[v->id];
    if (v->rank >= 2)
        d[1] = ch->n;
    IrNode *n = ir_add_node(c->a, c->out, IR_INPUT, at->loc, at->line, 0, NULL, v->rank, d);
    n->out->name = v == c->g->images ? "images" : "shared";
    n->out->kind = IR_V_INPUT;
    if (v == c->g->images)
        c->out->images = n->out;
    SliceInput *in = arena_alloc(c->a, sizeof *in);
    in->src = v, in->dst = n->out, in->idx = v->rank >= 2 ? ch->idx : NULL;
    vec_push(c->a, &c->inputs, in);
    return n->out;
}

static int build(Ctx *c)
{
    const IrGraph *g = c->g;
    IrGraph *o = c->out;
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *n = g->nodes.v[i];
        const IrValue *y = n->out;
        if (n->op == IR_PARAM || n->op == IR_STATE || i < c->from)
            continue;   /* made where they are used, sliced as their use needs; or shared */
        if (n->op == IR_MASK_GEN && c->drop[c->mask_of_gen[y->id]])
            continue;   /* a generator dropped */
        if (n->op == IR_MASK_APPLY && c->drop[c->mask_of_gen[n->in[1]->id]]) {
            if (!c->map[n->in[0]->id])
                c->map[n->in[0]->id] = shared_input(c, n, n->in[0]);
            c->map[y->id] = c->map[n->in[0]->id];   /* times a mask of ones */
            continue;
        }
        long long d[IR_MAX_RANK];
        memcpy(d, y->d, sizeof d);
        if (y->rank >= 2)
            d[1] = c->ch[y->id].n;
        IrValue *in[IR_MAX_IN];
        const Chan *cy = &c->ch[y->id], *cx = n->nin ? &c->ch[n->in[0]->id] : NULL;
        for (int k = 0; k < n->nin; k++) {
            const IrValue *v = n->in[k];
            if (v->kind != IR_V_PARAM && v->kind != IR_V_STATE) {
                if (!c->map[v->id])   /* computed by the shared nodes: an input */
                    c->map[v->id] = shared_input(c, n, v);
                in[k] = c->map[v->id];
                continue;
            }
            switch (n->op) {
            case IR_CONV2D: in[k] = tensor(c, n, v, cy, k == 1 ? cx : NULL); break;
            case IR_BATCHNORM: in[k] = tensor(c, n, v, cx, NULL); break;
            case IR_LINEAR: in[k] = tensor(c, n, v, NULL, k == 1 ? cx : NULL); break;
            case IR_MASK_GEN: in[k] = k == 1 ? tensor(c, n, v, NULL, cx) : tensor(c, n, v, cy, NULL); break;
            default: in[k] = tensor(c, n, v, NULL, NULL); break;
            }
        }
        IrNode *m = ir_add_node(c->a, o, n->op, n->loc, n->line, n->nin, in, y->rank, d);
        m->k = n->k, m->stride = n->stride, m->pad = n->pad, m->p = n->p, m->salt = n->salt, m->weights = n->weights;
        m->out->name = y->name;
        m->out->kind = y->kind;
        /* a training graph's further results, for its backward pass:
         * batchnorm's stats [2, C] and a generator's saved [B, C + Hd + K],
         * with the module's channels */
        for (int j = 0; j < n->nextra; j++) {
            const IrValue *e = n->extra[j];
            long long de[IR_MAX_RANK];
            memcpy(de, e->d, sizeof de);
            if (n->op == IR_BATCHNORM)
                de[1] = cy->n;
            else if (n->op == IR_MASK_GEN)
                de[1] = e->d[1] - n->in[0]->d[1] - y->d[1] + cx->n + cy->n;
            c->map[e->id] = ir_add_result(c->a, o, m, e->rank, de);
        }
        if (y == g->images)
            o->images = m->out;
        if (y == g->labels)
            o->labels = m->out;
        c->map[y->id] = m->out;
    }
    o->logits = c->map[g->logits->id];
    o->loss = g->loss ? c->map[g->loss->id] : NULL;
    for (int l = 0; l < g->masks.n; l++)   /* in the source's order, shared ones included */
        if (!c->drop[l])
            vec_push(c->a, &o->masks, c->map[((const IrValue *)g->masks.v[l])->id]);
    return 0;
}

int slice_shared_end(const IrGraph *g)
{
    for (int i = 0; i < g->nodes.n; i++)
        if (((const IrNode *)g->nodes.v[i])->op == IR_MASK_APPLY)
            return i;
    return 0;   /* no masks: a module is the whole model */
}

int pass_slice(Arena *a, const IrGraph *g, const unsigned char *keep, int from, int drop_generators, Slice *s,
               char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (g->grads.n) {   /* a training graph is sliced before autodiff, which then differentiates the module */
        snprintf(err, errlen, "module_slice: slices a graph before its backward pass, not after");
        return -1;
    }
    int L = g->masks.n;
    Ctx c = { .a = a, .g = g, .err = err, .errlen = errlen, .from = from };
    if (from < 0 || from > slice_shared_end(g)) {
        snprintf(err, errlen, "module_slice: node %d is past the nodes every module shares", from);
        return -1;
    }
    c.ch = arena_alloc(a, sizeof(Chan) * (size_t)g->next_id);
    c.map = arena_alloc(a, sizeof(IrValue *) * (size_t)g->next_id);
    c.mask_of_gen = arena_alloc(a, sizeof(int) * (size_t)g->next_id);
    c.layer = arena_alloc(a, sizeof(Chan) * (size_t)(L + 1));
    c.conv = arena_alloc(a, sizeof(IrNode *) * (size_t)(L + 1));
    c.apply = arena_alloc(a, sizeof(IrNode *) * (size_t)(L + 1));
    for (int i = 0; i < g->next_id; i++)
        c.mask_of_gen[i] = -1;
    long long *off = arena_alloc(a, sizeof(long long) * (size_t)(L + 1));
    for (int l = 0; l < L; l++) {
        const IrValue *mk = g->masks.v[l];
        off[l + 1] = off[l] + mk->d[1];
        c.mask_of_gen[mk->id] = l;
        if (!(c.apply[l] = ir_mask_apply(g, l))) {
            snprintf(err, errlen, "module_slice: mask %d scales nothing", l + 1);
            return -1;
        }
        c.conv[l] = ir_masked_conv(g, l);
        /* the kernels the module keeps; a layer without its own conv keeps what reaches it */
        Chan k = { 0, arena_alloc(a, sizeof(int) * (size_t)(mk->d[1] + 1)) };
        for (long long j = 0; j < mk->d[1]; j++)
            if (keep[off[l] + j])
                k.idx[k.n++] = (int)j;
        if (k.n == 0) {
            snprintf(err, errlen, "module_slice: the module keeps no kernel of mask %d", l + 1);
            return -1;
        }
        c.layer[l] = k;
    }

    /* residual adds: widen the layers on both sides until they agree; a side
     * no layer decides takes every channel, and so does its partner. Then
     * the logits: a module scores every class, so a masked conv whose
     * channels are the logits (through gap or flatten, no linear layer
     * after it) keeps all of them, the module's others switched off by its
     * keep vector, and scores those classes as the modular model does with
     * them off. */
    const IrNode *bad = NULL;
    int rc, rounds = 0, whole = 0;
    for (;;) {
        while ((rc = propagate(&c, &bad)) == 1) {
            if (whole) {
                snprintf(err, errlen, "module_slice: the operands of a residual add disagree on their channels");
                return -1;
            }
            if (++rounds > 2 * L + 4 || widen(&c, bad) != 0) {
                for (int l = 0; l < L; l++)
                    c.layer[l] = (Chan){ ((const IrValue *)g->masks.v[l])->d[1], NULL };
                whole = 1;
            }
        }
        if (rc < 0)
            return -1;
        if (whole || chan_all(c.ch[g->logits->id], g->logits->d[1]))
            break;
        int l = logits_layer(&c, g->logits);
        if (l >= 0 && !chan_all(c.layer[l], ((const IrValue *)g->masks.v[l])->d[1])) {
            c.layer[l] = (Chan){ ((const IrValue *)g->masks.v[l])->d[1], NULL };
            continue;
        }
        for (int k = 0; k < L; k++)   /* nothing to widen that decides them: the whole model */
            c.layer[k] = (Chan){ ((const IrValue *)g->masks.v[k])->d[1], NULL };
        whole = 1;
    }

    /* Generators dropped: a layer whose slice holds only kept kernels needs
     * no mask at all; one that also carries switched-off channels keeps its
     * mask_apply, for the keep vector (the runtime flag makes the mask 1). */
    c.drop = arena_alloc(a, (size_t)L + 1);
    for (int l = 0; l < L && drop_generators; l++) {
        Chan m = c.ch[((const IrValue *)g->masks.v[l])->id];
        c.drop[l] = 1;
        for (long long j = 0; j < m.n; j++)
            c.drop[l] &= keep[off[l] + chan_at(m, j)];
    }
    c.out = arena_alloc(a, sizeof *c.out);
    memset(c.out, 0, sizeof *c.out);
    c.out->model = g->model;
    c.out->batch = g->batch;
    c.out->training = g->training;
    build(&c);
    char why[512];
    if (ir_verify(c.out, why, sizeof why) != 0) {
        snprintf(err, errlen, "internal error: the sliced module does not verify: %s", why);
        return -1;
    }

    s->g = c.out;
    s->params = arena_alloc(a, sizeof(SliceTensor) * (size_t)(c.params.n + 1));
    for (int i = 0; i < c.params.n; i++)
        s->params[i] = *(SliceTensor *)c.params.v[i];
    s->ninputs = c.inputs.n;
    s->inputs = arena_alloc(a, sizeof(SliceInput) * (size_t)(c.inputs.n + 1));
    for (int i = 0; i < c.inputs.n; i++)
        s->inputs[i] = *(SliceInput *)c.inputs.v[i];
    s->states = arena_alloc(a, sizeof(SliceTensor) * (size_t)(c.states.n + 1));
    for (int i = 0; i < c.states.n; i++)
        s->states[i] = *(SliceTensor *)c.states.v[i];
    for (int l = 0; l < L; l++) {
        Chan m = c.ch[((const IrValue *)g->masks.v[l])->id];
        for (long long j = 0; j < m.n; j++)
            s->kept += keep[off[l] + chan_at(m, j)];
        if (!c.drop[l])
            s->kernels += m.n;
        s->dropped += c.drop[l];
    }
    s->keep = arena_alloc(a, (size_t)s->kernels + 1);
    s->src_kernel = arena_alloc(a, sizeof(long long) * (size_t)(s->kernels + 1));
    for (int l = 0, at = 0; l < L; l++) {
        if (c.drop[l])
            continue;
        Chan m = c.ch[((const IrValue *)g->masks.v[l])->id];
        int widened = 0;
        for (long long j = 0; j < m.n; j++, at++) {
            s->src_kernel[at] = off[l] + chan_at(m, j);
            s->keep[at] = keep[s->src_kernel[at]];
            widened |= !s->keep[at];
        }
        s->widened += widened;
    }
    return 0;
}

void slice_keep(const Slice *s, const unsigned char *keep, unsigned char *out)
{
    for (long long j = 0; j < s->kernels; j++)
        out[j] = keep[s->src_kernel[j]];
}

/* Calls fn(ctx, e, at) for every element e of t's module tensor, at its
 * position in the source's. */
static void slice_walk(const SliceTensor *t, void (*fn)(void *ctx, long long e, long long at), void *ctx)
{
    const IrValue *s = t->src, *d = t->dst;
    int r = d->rank;
    long long stride[IR_MAX_RANK], pos[IR_MAX_RANK] = { 0 }, k = 1;
    for (int i = r - 1; i >= 0; i--) {
        stride[i] = k;
        k *= s->d[i];
    }
    long long n = ir_numel(d);
    for (long long e = 0; e < n; e++) {
        long long at = 0;
        for (int i = 0; i < r; i++)
            at += (t->idx[i] ? t->idx[i][pos[i]] : pos[i]) * stride[i];
        fn(ctx, e, at);
        for (int i = r - 1; i >= 0; i--) {
            if (++pos[i] < d->d[i])
                break;
            pos[i] = 0;
        }
    }
}

typedef struct {
    const float *from;
    float *to;
} SliceCopy;

static void copy_in(void *ctx, long long e, long long at)
{
    SliceCopy *c = ctx;
    c->to[e] = c->from[at];
}

static void copy_out(void *ctx, long long e, long long at)
{
    SliceCopy *c = ctx;
    c->to[at] = c->from[e];
}

void slice_gather(const SliceTensor *t, const float *src, float *dst)
{
    SliceCopy c = { src, dst };
    slice_walk(t, copy_in, &c);
}

void slice_scatter(const SliceTensor *t, const float *mod, float *src)
{
    SliceCopy c = { mod, src };
    slice_walk(t, copy_out, &c);
}
