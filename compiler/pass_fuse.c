/* Fusion for inference graphs (ir.h, pass_fuse): conv -> batchnorm, and a
 * relu right after it, become one conv2d_bn node. Batchnorm on running
 * statistics is a per-channel scale and shift, so it folds into the conv's
 * weights and bias as the kernel packs them; the relu is applied to each
 * block of outputs while it is still in cache. Two passes over the
 * activations (and their memory traffic) disappear.
 *
 * The fused graph is what gets planned and compiled; it shares its values
 * with the source graph, which stays as it was for everything that reads the
 * model's structure (modularize, module_slice). A fused node's result is the
 * last value of its chain, so the values others read (a batchnorm's output a
 * mask scales, the logits, the masks) keep their identity. */
#include <string.h>

#include "ir.h"

/* Counts the uses of each value; the logits and the masks count as used by
 * the runtime, so a chain that ends in one of them keeps it. */
static int *use_counts(Arena *a, const IrGraph *g)
{
    int *uses = arena_alloc(a, sizeof(int) * (size_t)g->next_id);
    memset(uses, 0, sizeof(int) * (size_t)g->next_id);
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *n = g->nodes.v[i];
        for (int k = 0; k < n->nin; k++)
            uses[n->in[k]->id]++;
    }
    uses[g->logits->id]++;
    for (int i = 0; i < g->masks.n; i++)
        uses[((const IrValue *)g->masks.v[i])->id]++;
    return uses;
}

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

IrGraph *pass_fuse(Arena *a, const IrGraph *g)
{
    IrGraph *o = arena_alloc(a, sizeof *o);
    *o = *g;
    memset(&o->nodes, 0, sizeof o->nodes);
    o->origin = arena_alloc(a, sizeof(int) * (size_t)(g->nodes.n + 1));
    if (g->training) {   /* the backward pass needs every intermediate value */
        for (int i = 0; i < g->nodes.n; i++) {
            o->origin[o->nodes.n] = i;
            vec_push(a, &o->nodes, g->nodes.v[i]);
        }
        return o;
    }
    int *uses = use_counts(a, g);
    IrNode **at = arena_alloc(a, sizeof(IrNode *) * (size_t)(g->nodes.n + 1));   /* fused nodes by position */
    unsigned char *gone = arena_alloc(a, (size_t)g->nodes.n + 1);
    memset(at, 0, sizeof(IrNode *) * (size_t)(g->nodes.n + 1));
    memset(gone, 0, (size_t)g->nodes.n + 1);
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
        IrNode *f = arena_alloc(a, sizeof *f);
        *f = *n;
        f->op = IR_CONV2D_BN;
        f->nin = k;
        f->in = arena_alloc(a, sizeof(IrValue *) * (size_t)k);
        memcpy(f->in, in, sizeof(IrValue *) * (size_t)k);
        f->out = relu ? r->out : bn->out;
        f->p = relu;
        f->nextra = 0;
        at[bi] = f;
        gone[i] = 1;
        if (relu)
            gone[ri] = 1;
    }
    for (int i = 0; i < g->nodes.n; i++) {
        if (gone[i])
            continue;
        o->origin[o->nodes.n] = i;
        vec_push(a, &o->nodes, at[i] ? at[i] : g->nodes.v[i]);
    }
    return o;
}
