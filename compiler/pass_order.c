/* Node order for inference graphs (ir.h, pass_gens_first): a masked conv
 * after its mask's generator. The generator reads only the conv's input,
 * so the conv can wait for it; then the conv knows its mask as it runs
 * (cg_wino.c): it skips the images the mask turns off and applies the mask as it
 * writes. The sweep's variant graphs (run_variants.c) and the compiled form
 * of every module's inference graph (run_model.c) are ordered so; a whole
 * model's is not, and a graph as written keeps its order (module_slice
 * reads it). */
#include <string.h>

#include "ir.h"

static int node_index(const IrGraph *g, const IrNode *n)
{
    for (int i = 0; i < g->nodes.n; i++)
        if (g->nodes.v[i] == n)
            return i;
    return -1;
}

static int reads(const IrNode *n, const IrValue *v)
{
    for (int k = 0; k < n->nin; k++)
        if (n->in[k] == v)
            return 1;
    return 0;
}

/* Moves mask l's conv (a conv2d and the batchnorm after it, or a fused
 * conv2d_bn) to after the mask's generator. Nothing between them may read
 * what it moves. A fused graph's origin moves along with its nodes. */
static void gen_first(IrGraph *g, int l)
{
    const IrNode *ap = ir_mask_apply(g, l), *conv = ap ? ir_writer(g, ap->in[0]) : NULL, *bn = NULL;
    const IrNode *gen = ir_writer(g, g->masks.v[l]);
    if (conv && conv->op == IR_BATCHNORM)
        bn = conv, conv = ir_writer(g, conv->in[0]);
    if (!conv || !gen || (conv->op != IR_CONV2D && conv->op != IR_CONV2D_BN) || (bn && conv->op != IR_CONV2D))
        return;
    int ic = node_index(g, conv), ib = bn ? node_index(g, bn) : ic, ig = node_index(g, gen);
    if (ic < 0 || ib < 0 || ig < 0 || ic > ig || ib < ic || ib > ig)
        return;
    for (int i = ic + 1; i <= ig; i++)
        if (i != ib && (reads(g->nodes.v[i], conv->out) || (bn && reads(g->nodes.v[i], bn->out))))
            return;
    /* [.. conv .. bn .. gen ..] -> [.. .. .. gen conv bn ..] */
    void *c = g->nodes.v[ic], *b = bn ? g->nodes.v[ib] : NULL;
    int oc = g->origin ? g->origin[ic] : 0, ob = g->origin ? g->origin[ib] : 0, w = ic;
    for (int i = ic; i <= ig; i++)
        if (i != ic && !(bn && i == ib)) {
            if (g->origin)
                g->origin[w] = g->origin[i];
            g->nodes.v[w++] = g->nodes.v[i];
        }
    if (g->origin)
        g->origin[w] = oc;
    g->nodes.v[w++] = c;
    if (b) {
        if (g->origin)
            g->origin[w] = ob;
        g->nodes.v[w++] = b;
    }
}

void pass_gens_first(IrGraph *g)
{
    if (g->training)
        return;
    for (int l = 0; l < g->masks.n; l++)
        gen_first(g, l);
}

IrGraph *ir_copy_order(Arena *a, const IrGraph *g)
{
    IrGraph *o = arena_alloc(a, sizeof *o);
    *o = *g;
    memset(&o->nodes, 0, sizeof o->nodes);
    o->origin = arena_alloc(a, sizeof(int) * (size_t)(g->nodes.n + 1));
    for (int i = 0; i < g->nodes.n; i++) {
        o->origin[i] = g->origin ? g->origin[i] : i;
        vec_push(a, &o->nodes, g->nodes.v[i]);
    }
    return o;
}
