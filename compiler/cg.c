/* Codegen: one switch over the ops, each case the kernel call(s) of
 * k_kernels.h with its constants (a conv's, which kernel runs it, in
 * cg_conv.c). Tensors are byte offsets from the arena's base (plan.h); the
 * parallel dimension of each kernel is its unit count. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_int.h"
#include "k_kernels.h"

static void append(Arena *a, CgCalls *o, JitCall call, int units, int node)
{
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 64;
        JitCall *v = arena_alloc(a, sizeof *v * (size_t)cap);
        int *u = arena_alloc(a, sizeof *u * (size_t)cap), *nd = arena_alloc(a, sizeof *nd * (size_t)cap);
        if (o->n) {
            memcpy(v, o->v, sizeof *v * (size_t)o->n);
            memcpy(u, o->units, sizeof *u * (size_t)o->n);
            memcpy(nd, o->node, sizeof *nd * (size_t)o->n);
        }
        o->v = v, o->units = u, o->node = nd, o->cap = cap;
    }
    o->v[o->n] = call;
    o->node[o->n] = node;
    o->units[o->n++] = units;
}

void cg_push(Cg *C, int units, const char *kernel, const char *sig, int nconst, const double *consts)
{
    double *c = arena_alloc(C->a, sizeof(double) * (size_t)(nconst ? nconst : 1));
    memcpy(c, consts, sizeof(double) * (size_t)nconst);
    append(C->a, C->out, (JitCall){ arena_printf(C->a, "%s%d", C->prefix, C->out->n), kernel, sig, c }, units, C->node);
}

void cg_call(Cg *C, int units, const char *kernel, const char *sig, ...)
{
    double c[40];
    int n = 0;
    va_list ap;
    va_start(ap, sig);
    for (const char *s = sig; *s; s++)
        if (jit_sig_const(*s)) {
            c[n++] = va_arg(ap, double);
            /* a tensor that may be missing (Q's -1) is a 'q': a 'p' would
             * become the arena's address less one byte */
            assert(*s != 'p' || c[n - 1] >= 0);
        }
    va_end(ap);
    cg_push(C, units, kernel, sig, n, c);
}

/* sig with each '?', a channel count, given at run time where the calls
 * share their bodies with other modules' (CgCalls.share), else a constant. */
static const char *chans(const Cg *C, const char *sig)
{
    char *s = arena_strdup(C->a, sig);
    for (char *c = s; *c; c++)
        if (*c == '?')
            *c = C->out->share ? 'r' : 'i';
    return s;
}

static int units(const IrValue *v) { return (int)ir_numel(v); }

/* The masked layer whose mask m is; -1 if none. */
static int mask_layer(const Cg *C, const IrValue *m)
{
    for (int i = 0; i < C->p->g->masks.n; i++)
        if (C->p->g->masks.v[i] == m)
            return i;
    return -1;
}

double cg_prep_begin(Cg *C, long long floats, CgPrep *saved)
{
    PlanLayout *L = C->p->L;
    long long at = L->size;
    L->size += (floats * 4 + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN;
    saved->out = C->out, saved->prefix = C->prefix;
    C->out = &C->prep, C->prefix = arena_printf(C->a, "%sp", saved->prefix);
    return (double)at;
}

void cg_prep_end(Cg *C, const CgPrep *saved) { C->out = saved->out, C->prefix = saved->prefix; }

static int node(Cg *C, const IrNode *n)
{
    const PlanLayout *L = C->p->L;
    const IrValue *x = n->nin ? n->in[0] : NULL, *y = n->out;
    double simd = L->simd, parts = (double)L->parts;
    switch (n->op) {
    case IR_INPUT:
    case IR_PARAM:
    case IR_STATE:
    case IR_FLATTEN:
    case IR_RESHAPE:
        return 0;   /* written by the runtime, persistent, or a view */
    case IR_CONST: cg_call(C, 1, "k_fill", "pflh", O(C, y), n->p); return 0;
    case IR_SCALE: cg_call(C, 1, "k_scale", "ppflh", O(C, x), O(C, y), n->p); return 0;
    case IR_WEIGHTED_SUM:
        cg_call(C, 1, "k_scale", "ppflh", O(C, n->in[0]), O(C, y), n->weights[0]);
        for (int i = 1; i < n->nin; i++)
            cg_call(C, 1, "k_axpy", "ppflh", O(C, n->in[i]), O(C, y), n->weights[i]);
        return 0;
    case IR_CONV2D:
    case IR_CONV2D_BN:
    case IR_CONV2D_GRAD_X:
    case IR_CONV2D_GRAD_W:
        return cg_conv(C, n);
    case IR_BATCHNORM: {
        long long N = x->d[0], Cc = x->d[1], HW = ir_numel(x) / (N * Cc);
        if (n->nextra)
            cg_call(C, (int)Cc, "k_bn_fwd_train", "pppppppiiiffilh", O(C, x), O(C, n->in[1]), O(C, n->in[2]), O(C, y),
                    O(C, n->extra[0]), O(C, n->in[3]), O(C, n->in[4]), (double)N, (double)Cc, (double)HW, 0.1, 1e-5,
                    n->p);
        else
            cg_call(C, (int)Cc, "k_bn_fwd_eval", "ppppppiiiflh", O(C, x), O(C, n->in[1]), O(C, n->in[2]),
                    O(C, n->in[3]), O(C, n->in[4]), O(C, y), (double)N, (double)Cc, (double)HW, 1e-5);
        return 0;
    }
    case IR_BN_MASK_POOL:
    case IR_BN_MASK_POOL_GRAD: {
        const IrValue *py = n->op == IR_BN_MASK_POOL ? y : n->in[1];   /* the pooled shape */
        int l = n->nin == 6 ? mask_layer(C, n->in[5]) : -1;   /* none: a batchnorm and its pooling */
        if (n->nin == 6 && l < 0)
            return -1;
        double m = n->nin == 6 ? O(C, n->in[5]) : -1, keep = l >= 0 ? (double)L->keep_off[l] : -1,
               gen = l >= 0 ? (double)L->scalars + 16 : -1, dm = n->nextra == 3 ? O(C, n->extra[2]) : -1;
#define POOL_SHAPE (double)x->d[0], (double)x->d[1], (double)x->d[2], (double)x->d[3], (double)n->k, \
                   (double)n->stride, (double)py->d[2], (double)py->d[3]
        if (n->op == IR_BN_MASK_POOL)
            cg_call(C, (int)x->d[1], "k_bn_mask_pool_fwd_train", "pppqqqppppwiiiiiiiiffilh", O(C, x), O(C, n->in[1]),
                    O(C, n->in[2]), m, keep, gen, O(C, y), O(C, n->extra[0]), O(C, n->in[3]), O(C, n->in[4]),
                    POOL_SHAPE, 0.1, 1e-5, n->p);
        else
            cg_call(C, (int)x->d[1], "k_bn_mask_pool_bwd", "pppppqqqpppqwiiiiiiiiilh", O(C, x), O(C, n->in[1]),
                    O(C, n->in[2]), O(C, n->in[3]), O(C, n->in[4]), m, keep, gen, O(C, y), O(C, n->extra[0]),
                    O(C, n->extra[1]), dm, POOL_SHAPE, n->p);
#undef POOL_SHAPE
        return 0;
    }
    case IR_BN_MASK:
    case IR_BN_MASK_GRAD: { /* the keep vector and the generators' flag as k_mask_apply_keep's */
        long long N = x->d[0], Cc = x->d[1], HW = ir_numel(x) / (N * Cc);
        int l = mask_layer(C, n->in[5]);
        if (l < 0)
            return -1;
        if (n->op == IR_BN_MASK)
            cg_call(C, (int)Cc, "k_bn_mask_fwd_train", "ppppppppppiiiffilh", O(C, x), O(C, n->in[1]), O(C, n->in[2]),
                    O(C, n->in[5]), (double)L->keep_off[l], (double)L->scalars + 16, O(C, y), O(C, n->extra[0]),
                    O(C, n->in[3]), O(C, n->in[4]), (double)N, (double)Cc, (double)HW, 0.1, 1e-5, n->p);
        else
            cg_call(C, (int)Cc, "k_bn_mask_bwd", "ppppppppppppiiiilh", O(C, x), O(C, n->in[1]), O(C, n->in[2]),
                    O(C, n->in[3]), O(C, n->in[4]), O(C, n->in[5]), (double)L->keep_off[l], (double)L->scalars + 16,
                    O(C, y), O(C, n->extra[0]), O(C, n->extra[1]), O(C, n->extra[2]), (double)N, (double)Cc, (double)HW,
                    n->p);
        return 0;
    }
    case IR_BATCHNORM_GRAD: {
        long long N = x->d[0], Cc = x->d[1], HW = ir_numel(x) / (N * Cc);
        if (n->nin == 5)   /* relu fused (pass_fuse): beta too, to recompute where it let dy through */
            cg_call(C, (int)Cc, "k_bn_bwd", "ppppppppiiiilh", O(C, x), O(C, n->in[1]), O(C, n->in[2]), O(C, n->in[3]),
                    O(C, n->in[4]), O(C, y), O(C, n->extra[0]), O(C, n->extra[1]), (double)N, (double)Cc, (double)HW,
                    n->p);
        else
            cg_call(C, (int)Cc, "k_bn_bwd", "ppppnpppiiiilh", O(C, x), O(C, n->in[1]), O(C, n->in[2]), O(C, n->in[3]),
                    O(C, y), O(C, n->extra[0]), O(C, n->extra[1]), (double)N, (double)Cc, (double)HW, 0.0);
        return 0;
    }
    case IR_RELU: cg_call(C, units(y), "k_relu_fwd", "pplh", O(C, x), O(C, y)); return 0;
    case IR_RELU_GRAD: cg_call(C, units(y), "k_relu_bwd", "ppplh", O(C, x), O(C, n->in[1]), O(C, y)); return 0;
    case IR_ADD: cg_call(C, units(y), "k_add", "ppplh", O(C, x), O(C, n->in[1]), O(C, y)); return 0;
    case IR_MAXPOOL:
    case IR_AVGPOOL:
        cg_call(C, (int)(x->d[0] * x->d[1]), n->op == IR_MAXPOOL ? "k_maxpool_fwd" : "k_avgpool_fwd", "ppiiiiiilh",
                O(C, x), O(C, y), (double)x->d[2], (double)x->d[3], (double)n->k, (double)n->stride, (double)y->d[2],
                (double)y->d[3]);
        return 0;
    case IR_MAXPOOL_GRAD: {
        const IrValue *dy = n->in[1];
        cg_call(C, (int)(y->d[0] * y->d[1]), "k_maxpool_bwd", "pppiiiiiilh", O(C, x), O(C, dy), O(C, y),
                (double)y->d[2], (double)y->d[3], (double)n->k, (double)n->stride, (double)dy->d[2], (double)dy->d[3]);
        return 0;
    }
    case IR_AVGPOOL_GRAD:
        cg_call(C, (int)(y->d[0] * y->d[1]), "k_avgpool_bwd", "ppiiiiiilh", O(C, x), O(C, y), (double)y->d[2],
                (double)y->d[3], (double)n->k, (double)n->stride, (double)x->d[2], (double)x->d[3]);
        return 0;
    case IR_GAP:
        cg_call(C, (int)(x->d[0] * x->d[1]), "k_gap_fwd", "ppilh", O(C, x), O(C, y), (double)(x->d[2] * x->d[3]));
        return 0;
    case IR_GAP_GRAD:
        cg_call(C, (int)(y->d[0] * y->d[1]), "k_gap_bwd", "ppilh", O(C, x), O(C, y), (double)(y->d[2] * y->d[3]));
        return 0;
    case IR_SPACE_TO_DEPTH: /* x [N,C,H,W] -> y [N,4C,HP,WP] */
        cg_call(C, (int)(x->d[0] * x->d[1]), "k_space_to_depth", "ppiiiiiiilh", O(C, x), O(C, y), (double)x->d[0],
                (double)x->d[1], (double)x->d[2], (double)x->d[3], (double)y->d[2], (double)y->d[3], (double)n->pad);
        return 0;
    case IR_DEPTH_TO_SPACE: /* x [N,4C,HP,WP] -> y [N,C,H,W] */
        cg_call(C, (int)(y->d[0] * y->d[1]), "k_depth_to_space", "ppiiiiiiilh", O(C, x), O(C, y), (double)y->d[0],
                (double)y->d[1], (double)y->d[2], (double)y->d[3], (double)x->d[2], (double)x->d[3], (double)n->pad);
        return 0;
    case IR_PHASE_W:
        /* In inference the weights do not change from one run to the next:
         * regrouped once, by a preparation call, into room of their own,
         * where the conv (and its own preparation, which runs after) reads
         * them */
        if (!C->p->g->training && x->kind == IR_V_PARAM) {
            CgPrep saved;
            double at = cg_prep_begin(C, ir_numel(y), &saved);
            cg_call(C, (int)x->d[0], "k_phase_w", "ppiiilh", O(C, x), at, (double)x->d[0], (double)x->d[1],
                    (double)n->k);
            cg_prep_end(C, &saved);
            C->p->off[y->id] = (long long)at;
            return 0;
        }
        cg_call(C, (int)x->d[0], "k_phase_w", "ppiiilh", O(C, x), O(C, y), (double)x->d[0], (double)x->d[1],
                (double)n->k);
        return 0;
    case IR_PHASE_W_GRAD: /* x [K,4C,3,3] -> y [K,C,R,R] */
        cg_call(C, (int)y->d[0], "k_phase_w_grad", "ppiiilh", O(C, x), O(C, y), (double)y->d[0], (double)y->d[1],
                (double)n->k);
        return 0;
    case IR_LINEAR: {
        const IrValue *w = n->in[1];
        /* a small batch also splits its outputs, in groups of 16, over the threads */
        double og = x->d[0] <= 16 && w->d[0] > 16 ? (double)((w->d[0] + 15) / 16) : 1.0;
        int units = (int)(og * (double)x->d[0]);
        if (n->nin == 3)
            cg_call(C, units, "k_linear_fwd", chans(C, "ppppwi?iiilh"), O(C, x), O(C, w), O(C, n->in[2]), O(C, y),
                    (double)x->d[0], (double)w->d[1], (double)w->d[0], og, simd);
        else
            cg_call(C, units, "k_linear_fwd", chans(C, "ppnpwi?iiilh"), O(C, x), O(C, w), O(C, y), (double)x->d[0],
                    (double)w->d[1], (double)w->d[0], og, simd);
        return 0;
    }
    case IR_LINEAR_GRAD_X: { /* x = dy */
        const IrValue *w = n->in[1];
        cg_call(C, (int)x->d[0], "k_linear_bwd_x", "pppwiiiilh", O(C, x), O(C, w), O(C, y), (double)x->d[0],
                (double)w->d[1], (double)w->d[0], simd);
        return 0;
    }
    case IR_LINEAR_GRAD_W: {
        const IrValue *dy = n->in[1];
        if (n->nextra)
            cg_call(C, (int)y->d[0], "k_linear_bwd_w", "ppppwiiiilh", O(C, x), O(C, dy), O(C, y), O(C, n->extra[0]),
                    (double)x->d[0], (double)x->d[1], (double)y->d[0], simd);
        else
            cg_call(C, (int)y->d[0], "k_linear_bwd_w", "pppnwiiiilh", O(C, x), O(C, dy), O(C, y), (double)x->d[0],
                    (double)x->d[1], (double)y->d[0], simd);
        return 0;
    }
    case IR_DROPOUT:
        cg_call(C, units(y), "k_dropout_fwd", "pppiflh", O(C, x), O(C, y), (double)L->scalars + 8, (double)n->salt,
                n->p);
        return 0;
    case IR_DROPOUT_GRAD:
        cg_call(C, units(y), "k_dropout_bwd", "pppiflh", O(C, x), O(C, y), (double)L->scalars + 8, (double)n->salt,
                n->p);
        return 0;
    case IR_CROSS_ENTROPY: {
        const IrValue *lg = x;
        cg_call(C, (int)lg->d[0], "k_ce_fwd", "pppiilh", O(C, lg), O(C, n->in[1]), parts, (double)lg->d[0],
                (double)lg->d[1]);
        cg_call(C, 1, "k_mean", "ppilh", parts, O(C, y), (double)lg->d[0]);
        return 0;
    }
    case IR_CROSS_ENTROPY_GRAD:
        cg_call(C, (int)x->d[0], "k_ce_bwd", "ppppiilh", O(C, x), O(C, n->in[1]), O(C, n->in[2]), O(C, y),
                (double)x->d[0], (double)x->d[1]);
        return 0;
    case IR_MASK_GEN: {
        const IrValue *w1 = n->in[1];
        long long B = x->d[0], Cc = x->d[1], HW = x->d[2] * x->d[3], Hd = w1->d[0], K = y->d[1];
        cg_call(C, (int)B, "k_mask_gen_fwd", chans(C, "pppppp?ii?lh"), O(C, x), O(C, w1), O(C, n->in[2]),
                O(C, n->in[3]), O(C, y), n->nextra ? O(C, n->extra[0]) : parts, (double)Cc, (double)HW, (double)Hd,
                (double)K);
        return 0;
    }
    case IR_MASK_GEN_GRAD: { /* x = saved, y = dx */
        const IrValue *dm = n->in[1], *w1 = n->in[2], *w2 = n->in[3];
        long long B = y->d[0], Cc = y->d[1], HW = y->d[2] * y->d[3], Hd = w1->d[0], K = w2->d[0];
        if (n->nin == 5)   /* an add fused (pass_fuse): dx = in[4] + the generator's share */
            cg_call(C, (int)B, "k_mask_gen_bwd_x", "pppppppiiiilh", O(C, x), O(C, dm), O(C, w1), O(C, w2),
                    O(C, n->in[4]), O(C, y), parts, (double)Cc, (double)HW, (double)Hd, (double)K);
        else
            cg_call(C, (int)B, "k_mask_gen_bwd_x", "ppppnppiiiilh", O(C, x), O(C, dm), O(C, w1), O(C, w2), O(C, y),
                    parts, (double)Cc, (double)HW, (double)Hd, (double)K);
        cg_call(C, (int)(K + Hd), "k_mask_gen_bwd_w", "pppppiiiilh", O(C, x), parts, O(C, n->extra[0]),
                O(C, n->extra[1]), O(C, n->extra[2]), (double)B, (double)Cc, (double)Hd, (double)K);
        return 0;
    }
    case IR_MASK_APPLY:
    case IR_MASK_APPLY_GRAD: {
        /* Both modes scale by the keep vector and may drop the generators:
         * all ones and on, except while a module is evaluated or fine-tuned. */
        const IrValue *m = n->in[1];
        int l = mask_layer(C, m);
        if (l < 0)
            return -1;
        if (n->op == IR_MASK_APPLY)
            cg_call(C, (int)(x->d[0] * x->d[1]), "k_mask_apply_keep", chans(C, "pppppi?ilh"), O(C, x), O(C, m),
                    (double)L->keep_off[l], (double)L->scalars + 16, O(C, y), (double)(x->d[2] * x->d[3]),
                    (double)x->d[1], n->p);
        else
            cg_call(C, (int)(x->d[0] * x->d[1]), "k_mask_apply_keep_bwd", "pppppppiiilh", O(C, x), O(C, m),
                    (double)L->keep_off[l], (double)L->scalars + 16, O(C, n->in[2]), O(C, y), O(C, n->extra[0]),
                    (double)(x->d[2] * x->d[3]), (double)x->d[1], n->p);
        return 0;
    }
    case IR_COHESION:
    case IR_COUPLING: {
        int layers = n->nin - 1, mode = n->op == IR_COUPLING;
        cg_call(C, 1, "k_fill", "pflh", O(C, y), 0.0);
        for (int l = 1; l <= layers; l++) {
            const IrValue *m = n->in[l];
            cg_call(C, (int)(m->d[0] + 1) / 2, "k_mask_sim_rows", "pppwiilh", O(C, x), O(C, m), parts, (double)m->d[0],
                    (double)m->d[1]);
            cg_call(C, 1, "k_mask_sim_loss", "ppirflh", parts, O(C, y), (double)m->d[0], (double)mode, 1.0 / layers);
        }
        return 0;
    }
    case IR_COHESION_GRAD:
    case IR_COUPLING_GRAD: {
        const IrValue *m = n->in[1];
        cg_call(C, (int)m->d[0], "k_mask_sim_bwd", "ppppwiirflh", O(C, x), O(C, m), O(C, n->in[2]), O(C, y),
                (double)m->d[0], (double)m->d[1], (double)(n->op == IR_COUPLING_GRAD), n->p);
        return 0;
    }
    case IR_NUM_OPS:
        break;
    }
    return -1;
}

int cg_graph(Arena *a, const Plan *p, const char *prefix, CgCalls *out, char *err, size_t errlen)
{
    Cg C = { a, p, prefix, out, 0, arena_alloc(a, (size_t)p->g->nodes.n + 1), { 0 } };
    for (int i = 0; i < p->g->nodes.n; i++) {
        const IrNode *n = p->g->nodes.v[i];
        C.node = i;
        if (C.fused[i])
            continue;
        if (node(&C, n) != 0) {
            snprintf(err, errlen, "no kernel for %s (line %d) in this build", ir_op_name(n->op), n->line);
            return -1;
        }
    }
    for (int i = 0; i < C.prep.n; i++)   /* the preparation last */
        append(a, out, C.prep.v[i], C.prep.units[i], C.prep.node[i]);
    out->nprep = C.prep.n;
    return 0;
}

void cg_sgd(Arena *a, const PlanLayout *L, const char *name, double momentum, double weight_decay, int nesterov,
            CgCalls *out)
{
    Cg C = { a, NULL, name, out, -1, NULL, { 0 } };
    cg_call(&C, (int)(L->params_bytes / 4), "k_sgd", "ppppffilh", (double)L->params, (double)L->grads,
            (double)L->moments, (double)L->scalars, momentum, weight_decay, (double)nesterov);
}
