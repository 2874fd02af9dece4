/* Autodiff, IR to IR: walks the forward nodes of a training graph from the
 * loss back and appends, for each, the backward ops of its gradient rule
 * (ggml's style: one switch). A value used by several nodes gets the sum of
 * their contributions. Only values that depend on a parameter get a
 * gradient, so the first conv computes no gradient for the images. */
#include <stdio.h>
#include <string.h>

#include "ir.h"

typedef struct Ad {
    Arena *a;
    IrGraph *g;
    IrValue **grad;    /* by value id: the gradient so far */
    char *needs;       /* by value id: depends on a parameter */
    const IrNode *at;  /* the forward node whose rule runs */
} Ad;

static IrNode *emit(Ad *A, IrOp op, int nin, IrValue *const *in, const IrValue *shape_of)
{
    return ir_add_node(A->a, A->g, op, A->at->loc, A->at->line, nin, in, shape_of->rank, shape_of->d);
}

/* Adds a contribution to v's gradient. */
static void acc(Ad *A, IrValue *v, IrValue *d)
{
    if (!A->needs[v->id])
        return;
    IrValue *prev = A->grad[v->id];
    if (!prev) {
        A->grad[v->id] = d;
        return;
    }
    IrValue *both[2] = { prev, d };
    A->grad[v->id] = emit(A, IR_ADD, 2, both, v)->out;
}

static int rule(Ad *A, const IrNode *n, IrValue *gy, char *err, size_t errlen)
{
    IrValue *x = n->nin ? n->in[0] : NULL;
    IrNode *b;
    switch (n->op) {
    case IR_INPUT:
    case IR_PARAM:
    case IR_STATE:
    case IR_CONST:
        return 0;
    case IR_WEIGHTED_SUM:
        for (int i = 0; i < n->nin; i++) {
            b = emit(A, IR_SCALE, 1, &gy, gy);
            b->p = n->weights[i];
            acc(A, n->in[i], b->out);
        }
        return 0;
    case IR_CROSS_ENTROPY: {
        IrValue *in[3] = { x, n->in[1], gy };
        acc(A, x, emit(A, IR_CROSS_ENTROPY_GRAD, 3, in, x)->out);
        return 0;
    }
    case IR_LINEAR: {
        IrValue *w = n->in[1];
        if (A->needs[x->id]) {
            IrValue *in[2] = { gy, w };
            acc(A, x, emit(A, IR_LINEAR_GRAD_X, 2, in, x)->out);
        }
        IrValue *in[2] = { x, gy };
        b = emit(A, IR_LINEAR_GRAD_W, 2, in, w);
        acc(A, w, b->out);
        if (n->nin == 3)
            acc(A, n->in[2], ir_add_result(A->a, A->g, b, 1, n->in[2]->d));
        return 0;
    }
    case IR_CONV2D: {
        IrValue *w = n->in[1];
        if (A->needs[x->id]) {
            IrValue *in[2] = { gy, w };
            b = emit(A, IR_CONV2D_GRAD_X, 2, in, x);
            b->k = n->k, b->stride = n->stride, b->pad = n->pad;
            acc(A, x, b->out);
        }
        IrValue *in[2] = { x, gy };
        b = emit(A, IR_CONV2D_GRAD_W, 2, in, w);
        b->k = n->k, b->stride = n->stride, b->pad = n->pad;
        acc(A, w, b->out);
        if (n->nin == 3)
            acc(A, n->in[2], ir_add_result(A->a, A->g, b, 1, n->in[2]->d));
        return 0;
    }
    case IR_SPACE_TO_DEPTH:
        b = emit(A, IR_DEPTH_TO_SPACE, 1, &gy, x);
        b->pad = n->pad;
        acc(A, x, b->out);
        return 0;
    case IR_PHASE_W:
        b = emit(A, IR_PHASE_W_GRAD, 1, &gy, x);
        b->k = n->k;
        acc(A, x, b->out);
        return 0;
    case IR_BATCHNORM: {
        IrValue *in[4] = { x, gy, n->in[1], n->extra[0] };
        b = emit(A, IR_BATCHNORM_GRAD, 4, in, x);
        IrValue *dg = ir_add_result(A->a, A->g, b, 1, n->in[1]->d);
        IrValue *db = ir_add_result(A->a, A->g, b, 1, n->in[2]->d);
        acc(A, x, b->out);
        acc(A, n->in[1], dg);
        acc(A, n->in[2], db);
        return 0;
    }
    case IR_RELU: {
        IrValue *in[2] = { n->out, gy };
        acc(A, x, emit(A, IR_RELU_GRAD, 2, in, x)->out);
        return 0;
    }
    case IR_MAXPOOL:
    case IR_AVGPOOL: {
        IrValue *in[2] = { x, gy };
        int max = n->op == IR_MAXPOOL;
        b = emit(A, max ? IR_MAXPOOL_GRAD : IR_AVGPOOL_GRAD, max ? 2 : 1, max ? in : in + 1, x);
        b->k = n->k, b->stride = n->stride;
        acc(A, x, b->out);
        return 0;
    }
    case IR_GAP:
        acc(A, x, emit(A, IR_GAP_GRAD, 1, &gy, x)->out);
        return 0;
    case IR_FLATTEN:
    case IR_RESHAPE:
        acc(A, x, emit(A, IR_RESHAPE, 1, &gy, x)->out);
        return 0;
    case IR_DROPOUT:
        b = emit(A, IR_DROPOUT_GRAD, 1, &gy, x);
        b->p = n->p, b->salt = n->salt;
        acc(A, x, b->out);
        return 0;
    case IR_ADD:
        acc(A, x, gy);
        acc(A, n->in[1], gy);
        return 0;
    case IR_MASK_GEN: {
        IrValue *in[4] = { n->extra[0], gy, n->in[1], n->in[2] };
        b = emit(A, IR_MASK_GEN_GRAD, 4, in, x);
        IrValue *dw1 = ir_add_result(A->a, A->g, b, 2, n->in[1]->d);
        IrValue *dw2 = ir_add_result(A->a, A->g, b, 2, n->in[2]->d);
        IrValue *db2 = ir_add_result(A->a, A->g, b, 1, n->in[3]->d);
        acc(A, x, b->out);
        acc(A, n->in[1], dw1);
        acc(A, n->in[2], dw2);
        acc(A, n->in[3], db2);
        return 0;
    }
    case IR_MASK_APPLY: {
        IrValue *in[3] = { x, n->in[1], gy };
        b = emit(A, IR_MASK_APPLY_GRAD, 3, in, x);
        IrValue *dm = ir_add_result(A->a, A->g, b, 2, n->in[1]->d);
        acc(A, x, b->out);
        acc(A, n->in[1], dm);
        return 0;
    }
    case IR_COHESION:
    case IR_COUPLING:
        /* the mean over layers: each layer's share of the gradient is 1/layers */
        for (int l = 1; l < n->nin; l++) {
            IrValue *in[3] = { x, n->in[l], gy };
            b = emit(A, n->op == IR_COHESION ? IR_COHESION_GRAD : IR_COUPLING_GRAD, 3, in, n->in[l]);
            b->p = 1.0 / (n->nin - 1);
            acc(A, n->in[l], b->out);
        }
        return 0;
    default:
        snprintf(err, errlen, "no gradient rule for %s (line %d)", ir_op_name(n->op), n->line);
        return -1;
    }
}

int pass_autodiff(Arena *a, IrGraph *g, char *err, size_t errlen)
{
    if (!g->training || !g->loss) {
        snprintf(err, errlen, "autodiff needs a training graph that ends in a loss");
        return -1;
    }
    int nf = g->nodes.n, nv = g->next_id;
    Ad A = { .a = a, .g = g };
    A.grad = arena_alloc(a, sizeof(IrValue *) * (size_t)nv);
    A.needs = arena_alloc(a, (size_t)nv);
    memset(A.grad, 0, sizeof(IrValue *) * (size_t)nv);
    memset(A.needs, 0, (size_t)nv);
    for (int i = 0; i < nf; i++) {
        const IrNode *n = g->nodes.v[i];
        char need = n->op == IR_PARAM;
        for (int j = 0; j < n->nin; j++)
            need |= A.needs[n->in[j]->id];
        if (n->op == IR_STATE || n->op == IR_INPUT)
            need = 0;
        A.needs[n->out->id] = need;
        for (int j = 0; j < n->nextra; j++)
            A.needs[n->extra[j]->id] = 0;   /* batchnorm's stats: no gradient flows through them */
    }
    if (!A.needs[g->loss->id]) {
        snprintf(err, errlen, "the loss does not depend on any parameter");
        return -1;
    }
    A.at = g->loss->def;
    IrNode *one = ir_add_node(a, g, IR_CONST, A.at->loc, A.at->line, 0, NULL, 0, g->loss->d);
    one->p = 1.0;
    A.grad[g->loss->id] = one->out;
    for (int i = nf - 1; i >= 0; i--) {
        const IrNode *n = g->nodes.v[i];
        IrValue *gy = A.grad[n->out->id];
        if (!gy || !A.needs[n->out->id])
            continue;
        A.at = n;
        if (rule(&A, n, gy, err, errlen) != 0)
            return -1;
    }
    g->grads.n = 0;
    for (int i = 0; i < g->params.n; i++) {
        IrValue *p = g->params.v[i], *d = A.grad[p->id];
        if (d) {
            d->kind = IR_V_GRAD;
            d->index = i;
        }
        vec_push(a, &g->grads, d);
    }
    return 0;
}
