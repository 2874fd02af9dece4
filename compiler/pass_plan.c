/* The static memory plan (plan.h): persistent regions laid out once per
 * model, then each graph's temporaries by liveness with first-fit reuse. An
 * output never shares memory with an input of its own node (the kernels take
 * restrict pointers), but for views: flatten and reshape, an inference
 * mask_apply of a conv's output, and a training mask generator's input
 * gradient summed into the conv's (in_place). Inputs are live from the start
 * (the runtime writes them before a step). */
#include <assert.h>
#include <string.h>

#include "k_kernels.h"
#include "plan.h"

static long long align(long long x) { return (x + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN; }
static long long bytes(const IrValue *v) { return align(ir_numel(v) * 4); }

int plan_chunks(long long batch) { return batch < 8 ? (int)batch : 8; }

PlanLayout *plan_layout(Arena *a, const IrGraph *g, int simd, int train)
{
    PlanLayout *L = arena_alloc(a, sizeof *L);
    L->simd = simd;
    L->train = train;
    L->nparams = g->params.n;
    L->nstates = g->states.n;
    L->param_off = arena_alloc(a, sizeof(long long) * (size_t)(L->nparams + 1));
    L->state_off = arena_alloc(a, sizeof(long long) * (size_t)(L->nstates + 1));
    long long at = 0;
    L->params = at;
    for (int i = 0; i < L->nparams; i++) {
        L->param_off[i] = at;
        at += bytes(g->params.v[i]);
    }
    L->params_bytes = at - L->params;
    L->states = at;
    for (int i = 0; i < L->nstates; i++) {
        L->state_off[i] = at;
        at += bytes(g->states.v[i]);
    }
    L->states_bytes = at - L->states;
    L->grads = at;
    at += train ? L->params_bytes : 0;
    L->moments = at;
    at += train ? L->params_bytes : 0;
    L->scalars = at;
    at += PLAN_ALIGN;
    /* Inference graphs scale each masked layer's channels by a keep vector,
     * so a module is the modular model with the other kernels switched off. */
    L->nmasks = g->masks.n;
    L->keep_off = arena_alloc(a, sizeof(long long) * (size_t)(L->nmasks + 1));
    for (int i = 0; i < L->nmasks; i++) {
        L->keep_off[i] = at;
        at += align(((const IrValue *)g->masks.v[i])->d[1] * 4);
    }
    L->parts = at;   /* sized by plan_graph; work follows it */
    L->work = at;
    L->size = at;
    return L;
}

/* Free blocks of the work area, sorted by offset. */
typedef struct Free {
    long long *off, *len;
    int n;
    long long top;   /* end of everything handed out so far */
} Free;

static long long take(Free *f, long long len)
{
    for (int i = 0; i < f->n; i++)
        if (f->len[i] >= len) {
            long long at = f->off[i];
            f->off[i] += len, f->len[i] -= len;
            if (f->len[i] == 0) {
                memmove(&f->off[i], &f->off[i + 1], sizeof(long long) * (size_t)(f->n - i - 1));
                memmove(&f->len[i], &f->len[i + 1], sizeof(long long) * (size_t)(f->n - i - 1));
                f->n--;
            }
            return at;
        }
    /* a free block that ends at the top grows instead of leaving a hole */
    if (f->n && f->off[f->n - 1] + f->len[f->n - 1] == f->top) {
        long long at = f->off[--f->n];
        f->top = at + len;
        return at;
    }
    long long at = f->top;
    f->top += len;
    return at;
}

static void give(Free *f, long long at, long long len)
{
    int i = 0;
    while (i < f->n && f->off[i] < at)
        i++;
    memmove(&f->off[i + 1], &f->off[i], sizeof(long long) * (size_t)(f->n - i));
    memmove(&f->len[i + 1], &f->len[i], sizeof(long long) * (size_t)(f->n - i));
    f->off[i] = at, f->len[i] = len, f->n++;
    if (i + 1 < f->n && f->off[i] + f->len[i] == f->off[i + 1]) {   /* merge with the next */
        f->len[i] += f->len[i + 1];
        memmove(&f->off[i + 1], &f->off[i + 2], sizeof(long long) * (size_t)(f->n - i - 2));
        memmove(&f->len[i + 1], &f->len[i + 2], sizeof(long long) * (size_t)(f->n - i - 2));
        f->n--;
    }
    if (i > 0 && f->off[i - 1] + f->len[i - 1] == f->off[i]) {      /* and with the previous */
        f->len[i - 1] += f->len[i];
        memmove(&f->off[i], &f->off[i + 1], sizeof(long long) * (size_t)(f->n - i - 1));
        memmove(&f->len[i], &f->len[i + 1], sizeof(long long) * (size_t)(f->n - i - 1));
        f->n--;
    }
}

static int is_view(const IrNode *n) { return n->op == IR_FLATTEN || n->op == IR_RESHAPE; }

/* Per node of a graph: 1 + the operand whose buffer its result shares, 0
 * for none (view_of).
 * Views do; and in a module's inference graph a mask_apply of a conv's
 * output that nothing else reads works in place: cg_wino.c's part kernels apply
 * the mask as the conv writes (into the conv's own buffer, which never lies
 * over the conv's input), else k_mask_apply_keep runs in place. Not in a
 * whole model's (ir.h, exports_prefix): modules read its first conv's
 * output as written, and its graph is compiled as written. */
static unsigned char *in_place(Arena *a, const IrGraph *g)
{
    int nn = g->nodes.n, *uses = ir_use_counts(a, g);
    unsigned char *v = arena_alloc(a, (size_t)nn + 1);
    for (int i = 0; i < nn; i++) {
        const IrNode *n = g->nodes.v[i], *c;
        v[i] = (unsigned char)is_view(n);
        if (n->op == IR_MASK_APPLY && !g->training && !g->exports_prefix && uses[n->in[0]->id] == 1 &&
            (c = ir_writer(g, n->in[0])))
            v[i] = c->op == IR_CONV2D || c->op == IR_CONV2D_BN;
        /* the mask generator's input gradient with the add fused (pass_fuse):
         * dx = acc + its share, element by element, into acc's buffer when
         * nothing else reads acc */
        if (n->op == IR_MASK_GEN_GRAD && n->nin == 5 && uses[n->in[4]->id] == 1 && n->in[4]->kind == IR_V_TEMP)
            v[i] = 1 + 4;
    }
    return v;
}

/* The operand whose buffer node n's result shares (in_place's v != 0). */
static IrValue *view_of(const IrNode *n, unsigned char v) { return n->in[v - 1]; }

/* Scratch and partial sums a node's kernels need beyond its operands. */
static void node_needs(PlanLayout *L, const IrNode *n, long long *parts, long long *ws)
{
    const IrValue *x = n->in[0];
    long long w = 0, part = 0;
    switch (n->op) {
    case IR_CONV2D:
    case IR_CONV2D_BN:
    case IR_CONV2D_GRAD_X:
    case IR_CONV2D_GRAD_W: {
        const IrValue *in = n->op == IR_CONV2D_GRAD_X ? n->out : x;
        const IrValue *out = n->op == IR_CONV2D || n->op == IR_CONV2D_BN ? n->out
                             : n->op == IR_CONV2D_GRAD_X              ? x
                                                                      : n->in[1];
        w = k_conv2d_ws((int)in->d[0], (int)in->d[1], (int)in->d[2], (int)in->d[3], (int)out->d[1], (int)n->k,
                        (int)n->k, (int)n->stride, (int)n->pad, (int)out->d[2], (int)out->d[3], L->simd);
        if (n->op == IR_CONV2D_GRAD_W)
            part = (long long)plan_chunks(x->d[0]) * (ir_numel(n->out) + (n->nextra ? ir_numel(n->extra[0]) : 0));
        break;
    }
    case IR_LINEAR:
    case IR_LINEAR_GRAD_X:
    case IR_LINEAR_GRAD_W: {
        const IrValue *wt = n->op == IR_LINEAR || n->op == IR_LINEAR_GRAD_X ? n->in[1] : n->out;
        w = k_linear_ws((int)x->d[0], (int)wt->d[1], (int)wt->d[0], L->simd);
        break;
    }
    case IR_CROSS_ENTROPY: part = x->d[0]; break;
    case IR_MASK_GEN: part = n->nextra ? 0 : x->d[0] * (x->d[1] + n->in[1]->d[0] + n->out->d[1]); break;
    case IR_MASK_GEN_GRAD: part = x->d[0] * (n->in[2]->d[0] + n->in[3]->d[0]); break;
    case IR_COHESION:
    case IR_COUPLING: part = 4 * x->d[0], w = x->d[0] + 16; break;   /* the rows' norms */
    case IR_COHESION_GRAD:
    case IR_COUPLING_GRAD: w = x->d[0] + 16; break;
    case IR_BN_MASK_POOL:
    case IR_BN_MASK_POOL_GRAD: w = k_bn_pool_ws((int)x->d[0], (int)x->d[2], (int)x->d[3]); break;
    default: break;
    }
    if (part > *parts)
        *parts = part;
    if (w > *ws)
        *ws = w;
}

Plan *plan_graph(Arena *a, PlanLayout *L, const IrGraph *g)
{
    Plan *p = arena_alloc(a, sizeof *p);
    p->g = g, p->L = L;
    int nv = g->next_id, nn = g->nodes.n;
    p->off = arena_alloc(a, sizeof(long long) * (size_t)nv);
    int *last = arena_alloc(a, sizeof(int) * (size_t)nv);
    IrValue **root = arena_alloc(a, sizeof(IrValue *) * (size_t)nv);
    for (int i = 0; i < nv; i++)
        p->off[i] = -1;

    /* Views share their root's buffer; a root lives until its views' last use. */
    long long parts = 0, ws = 0;
    unsigned char *view = in_place(a, g);
    for (int i = 0; i < nn; i++) {
        const IrNode *n = g->nodes.v[i];
        root[n->out->id] = view[i] ? root[view_of(n, view[i])->id] : n->out;
        for (int j = 0; j < n->nextra; j++)
            root[n->extra[j]->id] = n->extra[j];
        last[n->out->id] = i;
        for (int j = 0; j < n->nextra; j++)
            last[n->extra[j]->id] = i;
        for (int j = 0; j < n->nin; j++) {
            IrValue *r = root[n->in[j]->id];
            if (last[r->id] < i)
                last[r->id] = i;
        }
        node_needs(L, n, &parts, &ws);
    }
    if (g->loss)
        last[root[g->loss->id]->id] = nn;
    last[root[g->logits->id]->id] = nn;   /* read by the runtime after a step */
    if (!g->training)                     /* and the masks, to modularize */
        for (int i = 0; i < g->masks.n; i++)
            last[root[((IrValue *)g->masks.v[i])->id]->id] = nn;
    for (int i = 0; i < g->probes.n; i++)
        last[root[((IrValue *)g->probes.v[i])->id]->id] = nn;
    parts = align(parts * 4);
    if (parts > L->parts_bytes) {
        L->parts_bytes = parts;
        L->work = L->parts + parts;
    }
    if (ws > L->ws_floats)
        L->ws_floats = ws;

    Free f = { arena_alloc(a, sizeof(long long) * (size_t)(nv + 1)), arena_alloc(a, sizeof(long long) * (size_t)(nv + 1)),
               0, 0 };
    /* Inputs first: written before the step, live throughout. */
    for (int i = 0; i < nn; i++) {
        const IrNode *n = g->nodes.v[i];
        if (n->op == IR_INPUT) {
            p->off[n->out->id] = take(&f, bytes(n->out));
            last[n->out->id] = nn;
        }
    }
    for (int i = 0; i < nn; i++) {
        const IrNode *n = g->nodes.v[i];
        IrValue *outs[4] = { n->out, n->nextra > 0 ? n->extra[0] : NULL, n->nextra > 1 ? n->extra[1] : NULL,
                             n->nextra > 2 ? n->extra[2] : NULL };
        for (int j = 0; j < 4; j++) {
            IrValue *v = outs[j];
            if (!v || p->off[v->id] >= 0)
                continue;
            if (v->kind == IR_V_PARAM)
                p->off[v->id] = L->param_off[v->index];
            else if (v->kind == IR_V_STATE)
                p->off[v->id] = L->state_off[v->index];
            else if (v->kind == IR_V_GRAD) {
                assert(L->train);   /* a layout made for inference has no room for gradients */
                p->off[v->id] = L->grads + (L->param_off[v->index] - L->params);
            }
            else if (j == 0 && view[i])
                p->off[v->id] = -2;   /* resolved below, from the root */
            else
                p->off[v->id] = take(&f, bytes(v));
        }
        /* Free what this node read for the last time, and results nobody reads. */
        for (int j = -4; j < n->nin; j++) {
            IrValue *v = j < 0 ? outs[j + 4] : root[n->in[j]->id];
            if (!v || v->kind != IR_V_TEMP || last[v->id] != i || root[v->id] != v || p->off[v->id] < 0)
                continue;
            give(&f, p->off[v->id], bytes(v));
            last[v->id] = -1;   /* given back once */
        }
    }
    for (int i = 0; i < nn; i++) {
        const IrNode *n = g->nodes.v[i];
        if (view[i])
            p->off[n->out->id] = p->off[root[n->out->id]->id];
    }
    /* Temporaries and inputs are relative to the work area until now. */
    for (int i = 0; i < nn; i++) {
        const IrNode *n = g->nodes.v[i];
        IrValue *outs[4] = { n->out, n->nextra > 0 ? n->extra[0] : NULL, n->nextra > 1 ? n->extra[1] : NULL,
                             n->nextra > 2 ? n->extra[2] : NULL };
        for (int j = 0; j < 4; j++)
            if (outs[j] && (outs[j]->kind == IR_V_TEMP || outs[j]->kind == IR_V_INPUT))
                p->off[outs[j]->id] += L->work;
    }
    p->work_bytes = f.top;
    return p;
}
