/* The verifier between passes: every operand defined before its use, the
 * operand count of the op table, and each output shape re-derived from the
 * operands by the op's rule (ir_ops.def). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

static int bad(char *err, size_t errlen, const IrNode *n, const char *fmt, ...)
{
    int k = snprintf(err, errlen, "%%%d = %s (line %d): ", n->out->id, ir_op_name(n->op), n->line);
    va_list ap;
    va_start(ap, fmt);
    if (k >= 0 && (size_t)k < errlen)
        vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
    va_end(ap);
    return -1;
}

static int same(const IrValue *v, int rank, const long long *d)
{
    return v->rank == rank && memcmp(v->d, d, sizeof(long long) * (size_t)rank) == 0;
}

/* The further results' shapes: the count and each shape the op gives. */
static int extras_ok(const IrNode *n)
{
    long long c;
    switch (n->op) {
    case IR_BATCHNORM:
        c = n->in[0]->d[1];
        return n->nextra == 0 || (n->nextra == 1 && n->extra[0]->rank == 2 && n->extra[0]->d[0] == 2 &&
                                  n->extra[0]->d[1] == c);
    case IR_BATCHNORM_GRAD:
        c = n->in[0]->d[1];
        return n->nextra == 2 && same(n->extra[0], 1, &c) && same(n->extra[1], 1, &c);
    case IR_CONV2D_GRAD_W:
    case IR_LINEAR_GRAD_W:
        return n->nextra == 0 || (n->nextra == 1 && same(n->extra[0], 1, &n->out->d[0]));
    case IR_MASK_GEN: {
        const IrValue *x = n->in[0], *w1 = n->in[1];
        long long sd[2] = { x->d[0], x->d[1] + w1->d[0] + n->out->d[1] };
        return n->nextra == 0 || (n->nextra == 1 && same(n->extra[0], 2, sd));
    }
    case IR_MASK_GEN_GRAD:
        return n->nextra == 3 && same(n->extra[0], n->in[2]->rank, n->in[2]->d) &&
               same(n->extra[1], n->in[3]->rank, n->in[3]->d) && same(n->extra[2], 1, &n->in[3]->d[0]);
    case IR_MASK_APPLY_GRAD:
        return n->nextra == 1 && same(n->extra[0], n->in[1]->rank, n->in[1]->d);
    case IR_BN_MASK:
    case IR_BN_MASK_POOL:
        c = n->in[0]->d[1];
        return n->nextra == 1 && n->extra[0]->rank == 2 && n->extra[0]->d[0] == 2 && n->extra[0]->d[1] == c;
    case IR_BN_MASK_GRAD:
    case IR_BN_MASK_POOL_GRAD: /* dm with a mask */
        c = n->in[0]->d[1];
        return n->nextra == n->nin - 3 && same(n->extra[0], 1, &c) && same(n->extra[1], 1, &c) &&
               (n->nin == 5 || same(n->extra[2], n->in[5]->rank, n->in[5]->d));
    default:
        return n->nextra == 0;
    }
}

/* d (x's shape) pooled by n's window and stride: its rank, or -1. */
static int pooled(const IrNode *n, const IrValue *x, long long *d)
{
    if (x->rank != 4 || n->k < 1 || n->stride < 1 || n->k > x->d[2] || n->k > x->d[3])
        return -1;
    d[2] = (x->d[2] - n->k) / n->stride + 1, d[3] = (x->d[3] - n->k) / n->stride + 1;
    return 4;
}

/* Whether xp [B,4C,H',W'] can hold the phases of x [B,C,H,W] shifted by
 * off: at least a row and a column, and at most one past x's last. */
static int phases_fit(const IrValue *x, const IrValue *xp, long long off)
{
    if (x->rank != 4 || xp->rank != 4 || xp->d[0] != x->d[0] || xp->d[1] != 4 * x->d[1] || off < 0 || off > 1)
        return 0;
    for (int i = 2; i < 4; i++)
        if (xp->d[i] < 1 || xp->d[i] > (x->d[i] + off + 1) / 2 + 1)
            return 0;
    return 1;
}

/* The shape the op's rule gives; -1 when the operands do not fit the rule. */
static int derive(const IrNode *n, long long B, long long *d)
{
    const IrValue *x = n->nin ? n->in[0] : NULL;
    switch (n->op) {
    case IR_INPUT:
    case IR_PARAM:
    case IR_STATE:
        memcpy(d, n->out->d, sizeof(long long) * (size_t)n->out->rank);
        return n->out->rank;
    case IR_CONV2D:
    case IR_CONV2D_BN: {
        const IrValue *w = n->in[1];
        int nbias = n->op == IR_CONV2D ? n->nin - 2 : n->nin - 6;
        if (x->rank != 4 || w->rank != 4 || w->d[1] != x->d[1] || w->d[2] != n->k || w->d[3] != n->k ||
            nbias < 0 || nbias > 1)
            return -1;
        for (int i = 2; i < n->nin; i++)   /* the bias and batchnorm's four: one per kernel */
            if (n->in[i]->rank != 1 || n->in[i]->d[0] != w->d[0])
                return -1;
        long long oh = (x->d[2] + 2 * n->pad - n->k) / n->stride + 1, ow = (x->d[3] + 2 * n->pad - n->k) / n->stride + 1;
        long long s[4] = { x->d[0], w->d[0], oh, ow };
        memcpy(d, s, sizeof s);
        return 4;
    }
    case IR_BATCHNORM:
        for (int i = 1; i < 5; i++)
            if (!same(n->in[i], 1, &x->d[1]))
                return -1;
        if (x->rank < 2)
            return -1;
        memcpy(d, x->d, sizeof(long long) * (size_t)x->rank);
        return x->rank;
    case IR_BN_MASK: /* x [B,K,...], gamma, beta, mean, var [K], m [B,K] (bn_mask_pool: m or none) */
    case IR_BN_MASK_POOL: {
        if (n->nin != 6 && (n->op == IR_BN_MASK || n->nin != 5))
            return -1;
        for (int i = 1; i < 5; i++)
            if (!same(n->in[i], 1, &x->d[1]))
                return -1;
        if (x->rank < 2 ||
            (n->nin == 6 && (n->in[5]->rank != 2 || n->in[5]->d[0] != x->d[0] || n->in[5]->d[1] != x->d[1])))
            return -1;
        memcpy(d, x->d, sizeof(long long) * (size_t)x->rank);
        return n->op == IR_BN_MASK ? x->rank : pooled(n, x, d);
    }
    case IR_BN_MASK_GRAD: /* x, dout, gamma [K], stats [2,K], beta [K], m [B,K] */
    case IR_BN_MASK_POOL_GRAD: {
        long long dd[IR_MAX_RANK];
        memcpy(dd, x->d, sizeof(long long) * (size_t)x->rank);
        if ((n->nin != 6 && (n->op == IR_BN_MASK_GRAD || n->nin != 5)) || x->rank < 2 ||
            (n->op == IR_BN_MASK_POOL_GRAD && pooled(n, x, dd) < 0) || !same(n->in[1], x->rank, dd) ||
            !same(n->in[2], 1, &x->d[1]) || n->in[3]->rank != 2 || n->in[3]->d[0] != 2 ||
            n->in[3]->d[1] != x->d[1] || !same(n->in[4], 1, &x->d[1]) ||
            (n->nin == 6 && (n->in[5]->rank != 2 || n->in[5]->d[0] != x->d[0] || n->in[5]->d[1] != x->d[1])))
            return -1;
        memcpy(d, x->d, sizeof(long long) * (size_t)x->rank);
        return x->rank;
    }
    case IR_RELU:
    case IR_DROPOUT:
        memcpy(d, x->d, sizeof(long long) * (size_t)x->rank);
        return x->rank;
    case IR_MAXPOOL:
    case IR_AVGPOOL: {
        if (x->rank != 4 || n->k > x->d[2] || n->k > x->d[3])
            return -1;
        long long s[4] = { x->d[0], x->d[1], (x->d[2] - n->k) / n->stride + 1, (x->d[3] - n->k) / n->stride + 1 };
        memcpy(d, s, sizeof s);
        return 4;
    }
    case IR_GAP:
        if (x->rank != 4)
            return -1;
        d[0] = x->d[0], d[1] = x->d[1];
        return 2;
    case IR_FLATTEN:
        d[0] = x->d[0], d[1] = 1;
        for (int i = 1; i < x->rank; i++)
            d[1] *= x->d[i];
        return 2;
    case IR_LINEAR: {
        const IrValue *w = n->in[1];
        if (x->rank != 2 || w->rank != 2 || w->d[1] != x->d[1])
            return -1;
        if (n->nin == 3 && (n->in[2]->rank != 1 || n->in[2]->d[0] != w->d[0]))
            return -1;
        d[0] = x->d[0], d[1] = w->d[0];
        return 2;
    }
    case IR_MASK_GEN: {
        const IrValue *w1 = n->in[1], *w2 = n->in[2], *b2 = n->in[3];
        if (x->rank != 4 || w1->rank != 2 || w1->d[1] != x->d[1] || w2->rank != 2 || w2->d[1] != w1->d[0] ||
            !same(b2, 1, &w2->d[0]))
            return -1;
        d[0] = x->d[0], d[1] = w2->d[0];
        return 2;
    }
    case IR_MASK_APPLY: {
        const IrValue *m = n->in[1];
        if (x->rank != 4 || m->rank != 2 || m->d[0] != x->d[0] || m->d[1] != x->d[1])
            return -1;
        memcpy(d, x->d, sizeof(long long) * 4);
        return 4;
    }
    case IR_ADD:
        if (!same(n->in[1], x->rank, x->d))
            return -1;
        memcpy(d, x->d, sizeof(long long) * (size_t)x->rank);
        return x->rank;
    case IR_CROSS_ENTROPY:
        if (x->rank != 2 || !same(n->in[1], 1, &x->d[0]))
            return -1;
        return 0;
    case IR_COHESION:
    case IR_COUPLING:
        if (x->rank != 1 || n->nin < 2)
            return -1;
        for (int i = 1; i < n->nin; i++)
            if (n->in[i]->rank != 2 || n->in[i]->d[0] != x->d[0])
                return -1;
        return 0;
    case IR_WEIGHTED_SUM:
        for (int i = 0; i < n->nin; i++)
            if (n->in[i]->rank != 0)
                return -1;
        return 0;
    case IR_CONST:
        return 0;
    case IR_SCALE:
        return x->rank == 0 ? 0 : -1;
    case IR_CONV2D_GRAD_X: {
        /* dx has the forward input's shape: the forward rule must map it to dy's */
        const IrValue *w = n->in[1], *o = n->out;
        if (x->rank != 4 || w->rank != 4 || o->rank != 4 || o->d[0] != x->d[0] || o->d[1] != w->d[1] ||
            x->d[1] != w->d[0] || (o->d[2] + 2 * n->pad - n->k) / n->stride + 1 != x->d[2] ||
            (o->d[3] + 2 * n->pad - n->k) / n->stride + 1 != x->d[3])
            return -1;
        memcpy(d, o->d, sizeof(long long) * 4);
        return 4;
    }
    case IR_CONV2D_GRAD_W: {
        const IrValue *dy = n->in[1];
        if (x->rank != 4 || dy->rank != 4 || dy->d[0] != x->d[0] ||
            (x->d[2] + 2 * n->pad - n->k) / n->stride + 1 != dy->d[2] ||
            (x->d[3] + 2 * n->pad - n->k) / n->stride + 1 != dy->d[3])
            return -1;
        long long s[4] = { dy->d[1], x->d[1], n->k, n->k };
        memcpy(d, s, sizeof s);
        return 4;
    }
    case IR_BATCHNORM_GRAD:
        if ((n->nin != 4 && n->nin != 5) || !same(n->in[1], x->rank, x->d) || x->rank < 2 ||
            !same(n->in[2], 1, &x->d[1]) || n->in[3]->rank != 2 || n->in[3]->d[0] != 2 ||
            n->in[3]->d[1] != x->d[1] || (n->nin == 5 && !same(n->in[4], 1, &x->d[1])))
            return -1;
        memcpy(d, x->d, sizeof(long long) * (size_t)x->rank);
        return x->rank;
    case IR_RELU_GRAD:
        if (!same(n->in[1], x->rank, x->d))
            return -1;
        memcpy(d, x->d, sizeof(long long) * (size_t)x->rank);
        return x->rank;
    case IR_MAXPOOL_GRAD:
    case IR_AVGPOOL_GRAD: {
        /* the forward rule maps dx's shape to dy's */
        const IrValue *dy = n->in[n->op == IR_MAXPOOL_GRAD ? 1 : 0], *o = n->out;
        if (dy->rank != 4 || o->rank != 4 || o->d[0] != dy->d[0] || o->d[1] != dy->d[1] ||
            (o->d[2] - n->k) / n->stride + 1 != dy->d[2] || (o->d[3] - n->k) / n->stride + 1 != dy->d[3] ||
            (n->op == IR_MAXPOOL_GRAD && !same(x, 4, o->d)))
            return -1;
        memcpy(d, o->d, sizeof(long long) * 4);
        return 4;
    }
    case IR_GAP_GRAD: {
        const IrValue *o = n->out;
        if (x->rank != 2 || o->rank != 4 || o->d[0] != x->d[0] || o->d[1] != x->d[1])
            return -1;
        memcpy(d, o->d, sizeof(long long) * 4);
        return 4;
    }
    case IR_RESHAPE:
        if (ir_numel(x) != ir_numel(n->out))
            return -1;
        memcpy(d, n->out->d, sizeof(long long) * (size_t)n->out->rank);
        return n->out->rank;
    case IR_LINEAR_GRAD_X: {
        const IrValue *w = n->in[1];
        if (x->rank != 2 || w->rank != 2 || w->d[0] != x->d[1])
            return -1;
        d[0] = x->d[0], d[1] = w->d[1];
        return 2;
    }
    case IR_LINEAR_GRAD_W: {
        const IrValue *dy = n->in[1];
        if (x->rank != 2 || dy->rank != 2 || dy->d[0] != x->d[0])
            return -1;
        d[0] = dy->d[1], d[1] = x->d[1];
        return 2;
    }
    case IR_DROPOUT_GRAD:
        memcpy(d, x->d, sizeof(long long) * (size_t)x->rank);
        return x->rank;
    case IR_MASK_GEN_GRAD: {
        /* dx has the generator input's shape; the saved rows fit C + Hd + K */
        const IrValue *dm = n->in[1], *w1 = n->in[2], *w2 = n->in[3], *o = n->out;
        if (x->rank != 2 || dm->rank != 2 || o->rank != 4 || o->d[0] != x->d[0] || dm->d[0] != x->d[0] ||
            w1->rank != 2 || w2->rank != 2 || w1->d[1] != o->d[1] || w2->d[1] != w1->d[0] || w2->d[0] != dm->d[1] ||
            x->d[1] != o->d[1] + w1->d[0] + w2->d[0] || (n->nin != 4 && n->nin != 5) ||
            (n->nin == 5 && !same(n->in[4], 4, o->d)))
            return -1;
        memcpy(d, o->d, sizeof(long long) * 4);
        return 4;
    }
    case IR_MASK_APPLY_GRAD: {
        const IrValue *m = n->in[1];
        if (x->rank != 4 || !same(n->in[2], 4, x->d) || m->rank != 2 || m->d[0] != x->d[0] || m->d[1] != x->d[1])
            return -1;
        memcpy(d, x->d, sizeof(long long) * 4);
        return 4;
    }
    case IR_COHESION_GRAD:
    case IR_COUPLING_GRAD: {
        const IrValue *m = n->in[1];
        if (x->rank != 1 || m->rank != 2 || m->d[0] != x->d[0] || n->in[2]->rank != 0)
            return -1;
        memcpy(d, m->d, sizeof(long long) * 2);
        return 2;
    }
    case IR_CROSS_ENTROPY_GRAD:
        if (x->rank != 2 || !same(n->in[1], 1, &x->d[0]) || n->in[2]->rank != 0)
            return -1;
        memcpy(d, x->d, sizeof(long long) * 2);
        return 2;
    case IR_SPACE_TO_DEPTH:
    case IR_DEPTH_TO_SPACE: {
        /* the phases xp [B,4C,H',W'] of x [B,C,H,W]: the out-of-place side is the result's */
        const IrValue *xs = n->op == IR_SPACE_TO_DEPTH ? x : n->out, *xp = n->op == IR_SPACE_TO_DEPTH ? n->out : x;
        if (!phases_fit(xs, xp, n->pad))
            return -1;
        memcpy(d, n->out->d, sizeof(long long) * 4);
        return 4;
    }
    case IR_PHASE_W:
    case IR_PHASE_W_GRAD: {
        const IrValue *w = n->op == IR_PHASE_W ? x : n->out, *wp = n->op == IR_PHASE_W ? n->out : x;
        long long s[4] = { w->d[0], 4 * w->d[1], 3, 3 };
        if (w->rank != 4 || n->k < 1 || n->k > 6 || w->d[2] != n->k || w->d[3] != n->k || !same(wp, 4, s))
            return -1;
        memcpy(d, n->out->d, sizeof(long long) * 4);
        return 4;
    }
    case IR_NUM_OPS:
        break;
    }
    (void)B;
    return -1;
}

int ir_verify(const IrGraph *g, char *err, size_t errlen)
{
    int maxid = 0;
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *n = g->nodes.v[i];
        maxid = n->out->id > maxid ? n->out->id : maxid;
        for (int j = 0; j < n->nextra; j++)
            maxid = n->extra[j]->id > maxid ? n->extra[j]->id : maxid;
    }
    char *seen = calloc((size_t)maxid + 1, 1);
    if (!seen) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < g->nodes.n && rc == 0; i++) {
        const IrNode *n = g->nodes.v[i];
        int arity = ir_op_arity(n->op);
        if (arity >= 0 && n->nin != arity) {
            rc = bad(err, errlen, n, "%d operands, the op takes %d", n->nin, arity);
            break;
        }
        if ((n->op == IR_CONV2D || n->op == IR_LINEAR) && n->nin != 2 && n->nin != 3) {
            rc = bad(err, errlen, n, "%d operands, the op takes 2 or 3", n->nin);
            break;
        }
        for (int j = 0; j < n->nin; j++)
            if (!seen[n->in[j]->id]) {
                rc = bad(err, errlen, n, "operand %%%d is used before it is defined", n->in[j]->id);
                break;
            }
        if (rc)
            break;
        long long d[IR_MAX_RANK];
        int r = derive(n, g->batch, d);
        if (r < 0)
            rc = bad(err, errlen, n, "the operands' shapes do not fit the op's rule");
        else if (!same(n->out, r, d))
            rc = bad(err, errlen, n, "the output shape differs from the one the rule gives");
        else if (!extras_ok(n))
            rc = bad(err, errlen, n, "its further results do not fit the op's rule");
        seen[n->out->id] = 1;
        for (int j = 0; j < n->nextra; j++)
            if (n->extra[j]->id <= maxid)
                seen[n->extra[j]->id] = 1;
    }
    free(seen);
    return rc;
}
