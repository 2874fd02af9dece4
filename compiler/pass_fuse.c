/* Fusion (ir.h, pass_fuse). Inference graphs: conv -> batchnorm, and a
 * relu right after it, become one conv2d_bn node; a relu after a mask_apply
 * folds into it. Batchnorm on running
 * statistics is a per-channel scale and shift, so it folds into the conv's
 * weights and bias as the kernel packs them; the relu is applied to each
 * block of outputs while it is still in cache. Two passes over the
 * activations (and their memory traffic) disappear. Training graphs: a relu
 * folds into the batchnorm or mask_apply before it and into their gradients
 * (fuse_train_relus), a batchnorm into the mask_apply after it and their
 * gradients into one (fuse_train_bn_masks), a max pooling after them or
 * after a batchnorm too (fuse_train_bn_mask_pools), an add into the mask
 * generator's gradient (fuse_train_adds).
 *
 * The fused graph is what gets planned and compiled; it shares its values
 * with the source graph, which stays as it was for everything that reads the
 * model's structure (modularize, module_slice). A fused node's result is the
 * last value of its chain, so the values others read (a batchnorm's output a
 * mask scales, the logits, the masks) keep their identity. */
#include <limits.h>
#include <string.h>

#include "ir.h"

/* The node that reads v (its only use), at or after node `from`. */
static const IrNode *only_reader(const IrGraph *g, int from, const IrValue *v, int *at)
{
    for (int i = from; i < g->nodes.n; i++) {
        const IrNode *n = g->nodes.v[i];
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] == v) {
                *at = i;
                return n;
            }
    }
    return NULL;
}

/* A copy of n to stand in the fused graph. */
static IrNode *clone(Arena *a, const IrNode *n, int nin)
{
    IrNode *f = arena_alloc(a, sizeof *f);
    *f = *n;
    f->nin = nin;
    f->in = arena_alloc(a, sizeof(IrValue *) * (size_t)nin);
    memcpy(f->in, n->in, sizeof(IrValue *) * (size_t)(nin < n->nin ? nin : n->nin));
    return f;
}

/* Training graphs: a relu right after a training batchnorm or a
 * mask_apply folds into it (p = 1), and in the backward pass its relu_grad
 * folds into their gradient, which recomputes where the relu let the
 * gradient through from values it reads anyway. Gone: a pass over the
 * activations each way, the pre-relu tensor and the relu's gradient.
 * Everything else in a training graph stays: the backward needs it. */
static void fuse_train_relus(Arena *a, const IrGraph *g, const int *uses, IrNode **at, unsigned char *gone)
{
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *n = g->nodes.v[i];
        int bn = n->op == IR_BATCHNORM && n->nextra == 1;
        if (!(bn || n->op == IR_MASK_APPLY) || uses[n->out->id] != 1)
            continue;
        int ri = -1, gi = -1, bi = -1;
        const IrNode *r = only_reader(g, i + 1, n->out, &ri);
        if (!r || r->op != IR_RELU)
            continue;
        /* the relu's gradient (it reads the relu's output) and the one node that reads it */
        const IrNode *rg = NULL;
        for (int j = ri + 1; j < g->nodes.n && !rg; j++) {
            const IrNode *c = g->nodes.v[j];
            if (c->op == IR_RELU_GRAD && c->in[0] == r->out)
                rg = c, gi = j;
        }
        if (!rg || uses[rg->out->id] != 1)
            continue;
        const IrNode *b = only_reader(g, gi + 1, rg->out, &bi);
        int ok = bn ? b && b->op == IR_BATCHNORM_GRAD && b->nin == 4 && b->in[1] == rg->out && b->in[0] == n->in[0] &&
                          b->in[3] == n->extra[0]
                    : b && b->op == IR_MASK_APPLY_GRAD && b->in[2] == rg->out && b->in[0] == n->in[0] &&
                          b->in[1] == n->in[1];
        if (!ok)
            continue;
        IrNode *f = clone(a, n, n->nin);
        f->out = r->out;   /* the relu's value, as in the inference fusion */
        f->p = 1;
        IrNode *fb = clone(a, b, bn ? 5 : b->nin);
        fb->in[bn ? 1 : 2] = rg->in[1];   /* the relu output's gradient */
        if (bn)
            fb->in[4] = n->in[2];           /* beta: the backward recomputes the forward's sign */
        fb->p = 1;
        at[i] = f, at[bi] = fb;
        gone[ri] = gone[gi] = 1;
    }
}

/* Training graphs: a batchnorm whose output only a mask_apply reads (and
 * that mask_apply's gradient) becomes one bn_mask node where the mask_apply
 * stood (its mask is made by then), the relu fused into the mask_apply
 * going with it; the mask_apply's gradient and the batchnorm's become one
 * bn_mask_grad where the mask_apply's gradient stood, before the mask
 * generator's gradient that reads its dm. Gone: the batchnorm's output and
 * its gradient, each a tensor of the conv's size written once and read
 * back (twice, the gradient), both recomputed in registers from the conv's
 * output instead: the same bits. */
static void fuse_train_bn_masks(Arena *a, const IrGraph *g, const int *uses, IrNode **at, unsigned char *gone)
{
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *n = g->nodes.v[i];
        if (n->op != IR_BATCHNORM || n->nextra != 1 || at[i] || uses[n->out->id] != 2)
            continue;
        int ai = -1, gi = -1, bi = -1;
        const IrNode *ap = only_reader(g, i + 1, n->out, &ai);
        if (!ap || ap->op != IR_MASK_APPLY || ap->in[0] != n->out)
            continue;
        const IrNode *ag = only_reader(g, ai + 1, n->out, &gi);
        if (!ag || ag->op != IR_MASK_APPLY_GRAD || ag->in[0] != n->out || ag->in[1] != ap->in[1] ||
            uses[ag->out->id] != 1)
            continue;
        const IrNode *apf = at[ai] ? at[ai] : ap, *agf = at[gi] ? at[gi] : ag;   /* their relu fused or not */
        const IrNode *bg = only_reader(g, gi + 1, ag->out, &bi);
        if (apf->p != agf->p || !bg || bg->op != IR_BATCHNORM_GRAD || at[bi] || bg->nin != 4 ||
            bg->in[1] != ag->out || bg->in[0] != n->in[0] || bg->in[3] != n->extra[0])
            continue;
        IrNode *f = clone(a, n, 6);
        f->op = IR_BN_MASK;
        f->in[5] = ap->in[1];
        f->out = apf->out;
        f->p = apf->p;
        IrNode *fb = clone(a, bg, 6);
        fb->op = IR_BN_MASK_GRAD;
        fb->in[1] = agf->in[2];   /* the fused output's gradient */
        fb->in[4] = n->in[2];     /* beta: t is recomputed */
        fb->in[5] = ap->in[1];
        fb->extra[2] = ag->extra[0];
        fb->nextra = 3;
        fb->p = apf->p;
        at[ai] = f, at[gi] = fb;
        gone[i] = gone[bi] = 1;
    }
}

/* The node at position i as fused so far (NULL where it is gone). */
static const IrNode *now(const IrGraph *g, IrNode *const *at, const unsigned char *gone, int i)
{
    return gone[i] ? NULL : at[i] ? at[i] : g->nodes.v[i];
}

/* The positions of the first two readers of v in the graph as fused so far
 * (-1 where none); how many nodes read it. INT_MAX for one of the graph's
 * outputs, which no fusion may take away. */
static int readers(const IrGraph *g, IrNode *const *at, const unsigned char *gone, const IrValue *v, int *r)
{
    int out = v == g->logits || v == g->loss, k = 0;
    for (int i = 0; i < g->masks.n; i++)
        out |= g->masks.v[i] == v;
    for (int i = 0; i < g->probes.n; i++)
        out |= g->probes.v[i] == v;
    r[0] = r[1] = -1;
    if (out)
        return INT_MAX;
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *n = now(g, at, gone, i);
        for (int j = 0; n && j < n->nin; j++)
            if (n->in[j] == v) {
                if (k < 2)
                    r[k] = i;
                k++;
            }
    }
    return k;
}

/* Training graphs: a bn_mask, or a batchnorm (its relu fused or none),
 * whose output only a max pooling reads (and the pooling's gradient) takes
 * the pooling in, forward and backward: the pooled planes are written, the
 * full-size output and its gradient never are; the backward makes each
 * plane and its pooling gradient again, in cache. The same bits
 * (k_bn_mask_pool_fwd_train, k_bn_mask_pool_bwd; without a mask they
 * compute as k_bn_fwd_train and k_bn_bwd). */
static void fuse_train_bn_mask_pools(Arena *a, const IrGraph *g, IrNode **at, unsigned char *gone)
{
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *f = now(g, at, gone, i);
        int r[2], q[2];
        if (!f || !(f->op == IR_BN_MASK || (f->op == IR_BATCHNORM && f->nextra == 1)) ||
            readers(g, at, gone, f->out, r) != 2)
            continue;
        int masked = f->op == IR_BN_MASK, nin = masked ? 6 : 5;
        const IrNode *mp = now(g, at, gone, r[0]), *mg = now(g, at, gone, r[1]);
        if (mp->op != IR_MAXPOOL || mp->in[0] != f->out || mg->op != IR_MAXPOOL_GRAD || mg->in[0] != f->out ||
            mg->k != mp->k || mg->stride != mp->stride || readers(g, at, gone, mg->out, q) != 1)
            continue;
        const IrNode *bg = now(g, at, gone, q[0]);
        if (bg->op != (masked ? IR_BN_MASK_GRAD : IR_BATCHNORM_GRAD) || bg->in[1] != mg->out ||
            bg->in[0] != f->in[0] || bg->in[3] != f->extra[0] || (masked && bg->in[5] != f->in[5]) ||
            (!masked && (bg->p != f->p || bg->nextra != 2)))
            continue;
        IrNode *fp = clone(a, f, nin);
        fp->op = IR_BN_MASK_POOL;
        fp->out = mp->out;
        fp->k = mp->k, fp->stride = mp->stride;
        IrNode *fb = clone(a, bg, nin);
        fb->op = IR_BN_MASK_POOL_GRAD;
        fb->in[1] = mg->in[1];   /* the pooled output's gradient */
        fb->in[4] = f->in[2];    /* beta: the forward is made again */
        fb->p = f->p;
        fb->k = mp->k, fb->stride = mp->stride;
        at[r[0]] = fp, at[q[0]] = fb;
        gone[i] = gone[r[1]] = 1;
    }
}

/* Does a node in (from, to) read one of n's further results? */
static int extras_read(const IrGraph *g, const IrNode *n, int from, int to)
{
    for (int i = from + 1; i < to; i++) {
        const IrNode *c = g->nodes.v[i];
        for (int k = 0; k < c->nin; k++)
            for (int e = 0; e < n->nextra; e++)
                if (c->in[k] == n->extra[e])
                    return 1;
    }
    return 0;
}

/* Training graphs: x's gradient is the conv's share plus the mask
 * generator's (a constant per plane), added by an add node; the generator's
 * gradient takes the other share as an operand and writes the sum (one pass
 * over x's size instead of three). The fused node stands where the add
 * stood, after both shares. */
static void fuse_train_adds(Arena *a, const IrGraph *g, const int *uses, IrNode **at, unsigned char *gone)
{
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *n = g->nodes.v[i];
        if (n->op != IR_MASK_GEN_GRAD || n->nin != 4 || at[i] || uses[n->out->id] != 1)
            continue;
        int ai = -1;
        const IrNode *add = only_reader(g, i + 1, n->out, &ai);
        if (!add || add->op != IR_ADD || at[ai] || add->in[0] == add->in[1] || extras_read(g, n, i, ai))
            continue;
        IrNode *f = clone(a, n, 5);
        f->in[4] = add->in[add->in[0] == n->out ? 1 : 0];
        f->out = add->out;
        at[ai] = f;
        gone[i] = 1;
    }
}

/* Inference graphs: conv -> batchnorm (-> relu) becomes one conv2d_bn. */
static void fuse_conv_bn(Arena *a, const IrGraph *g, const int *uses, IrNode **at, unsigned char *gone)
{
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *n = g->nodes.v[i];
        int bi = -1, ri = -1;
        const IrNode *bn = n->op == IR_CONV2D && uses[n->out->id] == 1 ? only_reader(g, i + 1, n->out, &bi) : NULL;
        if (!bn || bn->op != IR_BATCHNORM || bn->nextra || bn->in[0] != n->out)
            continue;
        const IrNode *r = uses[bn->out->id] == 1 ? only_reader(g, bi + 1, bn->out, &ri) : NULL;
        int relu = r && r->op == IR_RELU;
        IrValue *in[7];
        int k = 0;
        for (int j = 0; j < n->nin; j++)
            in[k++] = n->in[j];
        for (int j = 1; j < 5; j++)
            in[k++] = bn->in[j];
        /* built by hand: its result is the chain's last value, not a new one;
         * it stands where the batchnorm stood, after every operand */
        IrNode *f = clone(a, n, k);
        f->op = IR_CONV2D_BN;
        memcpy(f->in, in, sizeof(IrValue *) * (size_t)k);
        f->out = relu ? r->out : bn->out;
        f->p = relu;
        f->nextra = 0;
        at[bi] = f;
        gone[i] = 1;
        if (relu)
            gone[ri] = 1;
    }
}

/* Inference graphs: a relu right after a mask_apply folds into it (p = 1),
 * as in training; a pass over the activations less. */
static void fuse_mask_relus(Arena *a, const IrGraph *g, const int *uses, IrNode **at, unsigned char *gone)
{
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *n = g->nodes.v[i];
        int ri = -1;
        const IrNode *r = n->op == IR_MASK_APPLY && uses[n->out->id] == 1 ? only_reader(g, i + 1, n->out, &ri) : NULL;
        if (!r || r->op != IR_RELU)
            continue;
        IrNode *f = clone(a, n, n->nin);
        f->out = r->out;
        f->p = 1;
        at[i] = f;
        gone[ri] = 1;
    }
}

IrGraph *pass_fuse(Arena *a, const IrGraph *g)
{
    IrGraph *o = arena_alloc(a, sizeof *o);
    *o = *g;
    memset(&o->nodes, 0, sizeof o->nodes);
    o->origin = arena_alloc(a, sizeof(int) * (size_t)(g->nodes.n + 1));
    int *uses = ir_use_counts(a, g);
    IrNode **at = arena_alloc(a, sizeof(IrNode *) * (size_t)(g->nodes.n + 1));   /* fused nodes by position */
    unsigned char *gone = arena_alloc(a, (size_t)g->nodes.n + 1);
    memset(at, 0, sizeof(IrNode *) * (size_t)(g->nodes.n + 1));
    memset(gone, 0, (size_t)g->nodes.n + 1);
    if (g->training) {
        fuse_train_relus(a, g, uses, at, gone);
        fuse_train_bn_masks(a, g, uses, at, gone);
        fuse_train_bn_mask_pools(a, g, at, gone);
        fuse_train_adds(a, g, uses, at, gone);
    } else {
        fuse_conv_bn(a, g, uses, at, gone);
        fuse_mask_relus(a, g, uses, at, gone);
    }
    for (int i = 0; i < g->nodes.n; i++) {
        if (gone[i])
            continue;
        o->origin[o->nodes.n] = i;
        vec_push(a, &o->nodes, at[i] ? at[i] : g->nodes.v[i]);
    }
    return o;
}
