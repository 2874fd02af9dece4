/* Phases (ir.h, pass_phase): in a graph to compile, a 5x5 conv at stride 2
 * becomes a 3x3 conv at stride 1 over the four phases of its input (its
 * even and odd rows and columns, as 4C channels: space_to_depth), with its
 * kernel's taps regrouped the same way (phase_weights). 36 taps for 25, 11
 * of them zeros, but a stride-1 3x3 conv runs in the Winograd kernels, at
 * a quarter of the multiplies: the direct kernels had run it at 0.87-1.13x
 * PyPI PyTorch's speed, the one layer shape slower than PyTorch
 * (bench/layers_vs_torch.py 64:32:128:5:2:2).
 *
 * Row by row: output row i of the conv at padding p reads x's rows
 * 2i + r - p, r < 5; r = 2a + alpha is row i + a - q of phase alpha at
 * padding q, whose row u is x's row 2u + alpha - (p - 2q). q = p / 2 keeps
 * the phases as small as x (and for the usual p = 2 gives F(2x2)'s and
 * F(4x4)'s padding 1); off = p - 2q (0 or 1) shifts them. Columns alike.
 *
 * In a training graph the gradients can go through the same phases: the
 * data gradient is the 3x3 conv's, brought back by depth_to_space, and the
 * weight gradient is the 3x3 conv's over x's phases, regrouped back by
 * phase_weights_grad. Each of the three ops is rewritten on its own, where
 * the 3x3 conv runs in the Winograd kernels (the rules codegen applies) and
 * where that was measured to pay (decide); elsewhere 11 zero taps cost more
 * than they save. MWTC_PHASE=off leaves every conv as it is, to compare. */
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "k_kernels.h"

/* A forward conv that qualifies: its operands, the phases' shape, which of
 * its ops go through the phases, and the values that stand for x and w
 * there once an op has made them. */
typedef struct {
    const IrNode *conv;
    IrValue *x, *w, *xp, *wr;   /* x, w; x's phases, w regrouped (NULL until made) */
    long long q, off, ph_h, ph_w;
    int fwd, gx, gw;
} Phased;

/* Whether the 3x3 conv over the phases (xp [N,C4,HP,WP] into K channels at
 * padding q, OH x OW out) runs in the Winograd kernels, as cg_conv.c chooses
 * them: F(2x2) or F(4x4) at padding 1, F(4x4) at 0 and 2; small planes
 * stay on k_small.c's GEMMs, the original conv's kernels there. */
static int winograd(const IrGraph *g, long long C4, long long HP, long long WP, long long K, long long q,
                    long long OH, long long OW, int simd)
{
    int c = (int)C4, h = (int)HP, w = (int)WP, k = (int)K, p = (int)q, oh = (int)OH, ow = (int)OW;
    const char *e = getenv("MWTC_WINOGRAD");
    if ((e && !strcmp(e, "off")) || k_small_ok(c, h, w, k, 3, 3, 1, p, oh, ow))
        return 0;
    if (q == 1)
        return g->training ? k_wino_ok(c, h, w, k, 3, 3, 1, 1, oh, ow) : k_wino_infer_ok(c, h, w, k, 3, 3, 1, 1, oh, ow);
    return g->training ? k_wino4_ok(c, h, w, k, 3, 3, 1, p, oh, ow)
                       : k_wino4_infer_ok(c, h, w, k, 3, 3, 1, p, oh, ow) && k_wino4_pad_pays(c, h, w, k, simd);
}

/* The 3x3 conv's output tiles over an O x P plane, F(4x4)'s 4x4: at least
 * 3 a side (fewer make the GEMMs too thin to pay), computing at most
 * `waste` times the plane. */
static int tiles_fit(long long O, long long P, double waste)
{
    long long th = (O + 3) / 4, tw = (P + 3) / 4;
    return th >= 3 && tw >= 3 && 16.0 * (double)(th * tw) <= waste * (double)(O * P);
}

/* Which of conv n's ops go through the phases (f->fwd, gx, gw); 0 when
 * none. Measured per op (MWTC_PROFILE=1, 2 threads of a Sapphire Rapids,
 * batch 128, 64 -> 64 channels unless said, the direct 5x5 kernels at
 * stride 2 against the phases'; bench/RESULTS.md has the table):
 * - the forward gained 1.16-2x, but lost at the phases' padding 1
 *   (F(2x2) there) at 5x5 outputs (0.66x; even at 6x6, gaining from 7x7),
 *   and at the phases' padding 0 or 2 (F(4x4)) where its tiles hang over
 *   much or are few a side: 7x7 out of 8x8 0.66x, 9x9 out of 12x12 0.77x,
 *   10x10 even, 14x14 out of 16x16 1.47x;
 * - the data gradient, for convs at padding 2-4 (the phases' 1 and 2),
 *   gained 1.1-3x everywhere Winograd ran it, from 5x5 outputs; at
 *   padding 0 and 1 (the phases' 0: dy into larger phases by F(4x4) at
 *   padding 2) from 9x9 outputs (1.2-1.7x), losing at 5x5 and 7x7
 *   (0.75-0.83x);
 * - the weight gradient gained only by F(4x4) with tiles that fit the
 *   output exactly (16x16 1.75-1.9x; 12x12 even); by F(4x4) at 11x11
 *   (12x12 computed) 0.83x, at 17x17 (20x20) 0.86x, by F(2x2) or by the
 *   direct kernel over 4C channels 0.65-0.83x.
 * With 8-float vectors (AVX2's code, MWTC_JIT_CPU=x86-64-v3 on the same
 * machine: the direct kernels at half the width lose more to fewer
 * multiplies), training takes more: the forward from 6x6 outputs at the
 * phases' padding 1 (1.14-1.2x there) and, at 0 and 2, where F(4x4)
 * computes up to 1.55x the plane (10x10 1.2-1.3x, 13x13 1.4x; 9x9 in
 * 12x12 0.93x); the weight gradient by F(2x2) from 8x8 outputs (1.15-1.2x;
 * 7x7 and 6x6 0.7-0.9x) and by F(4x4) at the phases' padding 0 and 1
 * where it computes up to 1.4x the plane (11x11 1.35x, 17x17 1.15x; 10x10
 * and 13x13 in 12x12 and 16x16 0.7x).
 * Re-measured on a Zen 4 (AVX-512 on 256-bit units; F(4x4)'s kernels much
 * faster since), the training forward at the phases' padding 0 or 2 gains
 * wherever F(4x4) has 3 tiles a side, however much they hang over: 64 ->
 * 64 channels, 9x9 outputs 1.20x (padding 0) and 1.45x (padding 4), 10x10
 * 1.67x, 13x13 1.5x, 17x17 1.25-1.28x, 128 -> 128 at 10x10 1.3x; AVX2's
 * code 1.12-1.72x. At 7x7 (2 tiles a side) the small-plane kernel still
 * wins (the phases 0.88x). The weight gradient there, by F(4x4) over the
 * phases against the direct kernel, gained alike at every overhang
 * (k_wino4_bwd_w_phases_ok: 1.09-1.55x); at the phases' padding 1 by
 * F(2x2) (below 13x13, where F(4x4) does not pay) it gained at 10x10 and
 * 12x12 (1.1-1.3x, 1.76x; at 8x8 0.88-0.97x, against the small-plane
 * kernel; odd sizes stay off, k_wino_bwd_w_ok's overhang rule), and by
 * F(4x4) at 13x13 and 17x17 (16x16 and 20x20 computed) it did not
 * (0.91-1.29x), so that rule stays.
 * Where an op does not go through the phases, the direct kernel runs it
 * (the weight gradient reading x, the data gradient w). Inference (the
 * forward alone, bench_infer, one conv 4-64 -> 16-64 channels): at batch
 * 256 the phases gained 1.1-1.7x from 8x8 outputs, 0.95x at 7x7; at batch
 * 1 from 10x10 (1.3-1.4x; 12x12 and 14x14 even, 8x8 0.8x). The rule cannot
 * depend on the batch (an emitted module's batch-1 and bulk graphs must
 * call the same kernels), so it takes them from 8x8. */
static int decide(const IrGraph *g, const IrNode *n, int simd, Phased *f)
{
    memset(f, 0, sizeof *f);
    if ((n->op != IR_CONV2D && n->op != IR_CONV2D_BN) || n->k != 5 || n->stride != 2 || n->pad < 0 || n->pad > 4 ||
        n->in[0]->rank != 4)
        return 0;
    const IrValue *x = n->in[0], *y = n->out;
    long long q = n->pad / 2, OH = y->d[2], OW = y->d[3], C4 = 4 * x->d[1], K = y->d[1];
    long long hp = OH + 2 - 2 * q, wp = OW + 2 - 2 * q;   /* the 3x3 conv at padding q gives y's extent */
    if (hp < 1 || wp < 1 || !winograd(g, C4, hp, wp, K, q, OH, OW, simd))
        return 0;
    f->conv = n, f->x = n->in[0], f->w = n->in[1], f->q = q, f->off = n->pad - 2 * q, f->ph_h = hp, f->ph_w = wp;
    int narrow = g->training && simd < 16;   /* 8-float vectors: AVX2's rules */
    int from = g->training ? (narrow ? 6 : 7) : 8;
    /* F(4x4) at the phases' padding 0 or 2: in training, 3 tiles a side whatever they hang over
     * (at most 16/9 of the plane, 9x9 in 12x12) */
    f->fwd = q == 1 ? OH >= from && OW >= from : tiles_fit(OH, OW, g->training ? 1.8 : 1.35);
    if (g->training) {
        const char *e = getenv("MWTC_WINOGRAD");
        int four = !(e && !strcmp(e, "2x2")) && k_wino4_pays((int)wp);
        f->gx = q != 0 || (OH >= 9 && OW >= 9);
        if (q == 1 && !four)   /* F(2x2) */
            f->gw = k_wino_bwd_w_ok((int)C4, (int)hp, (int)wp, (int)K) && OH >= 9 - narrow && OW >= 9 - narrow;
        else
            f->gw = q == 1 ? k_wino_bwd_w_ok((int)C4, (int)hp, (int)wp, (int)K) &&
                                 tiles_fit(OH, OW, narrow ? 1.4 : 1.0)
                           : k_wino4_bwd_w_phases_ok((int)C4, (int)hp, (int)wp, (int)K, (int)q);
    }
    return f->fwd || f->gx || f->gw;
}

/* The forward whose gradient b is: the data gradient's weights are w, the
 * weight gradient's input is x and its result w's gradient. */
static Phased *find(Phased *ph, int n, const IrNode *b)
{
    for (int i = 0; i < n; i++) {
        Phased *f = &ph[i];
        if (b->k != 5 || b->stride != 2 || b->pad != f->conv->pad)
            continue;
        if (b->op == IR_CONV2D_GRAD_X && b->in[1] == f->w && b->out->rank == 4 &&
            !memcmp(b->out->d, f->x->d, sizeof f->x->d))
            return f;
        if (b->op == IR_CONV2D_GRAD_W && b->in[0] == f->x && f->w->kind == IR_V_PARAM &&
            b->out->kind == IR_V_GRAD && b->out->index == f->w->index)
            return f;
    }
    return NULL;
}

/* The phases of x, made where first needed. */
static IrValue *phases_of_x(Arena *a, IrGraph *o, Phased *f, const IrNode *at)
{
    if (!f->xp) {
        long long d[4] = { f->x->d[0], 4 * f->x->d[1], f->ph_h, f->ph_w };
        IrNode *s = ir_add_node(a, o, IR_SPACE_TO_DEPTH, at->loc, at->line, 1, &f->x, 4, d);
        s->pad = f->off;
        f->xp = s->out;
    }
    return f->xp;
}

/* w's taps regrouped by phase, made where first needed. */
static IrValue *phases_of_w(Arena *a, IrGraph *o, Phased *f, const IrNode *at)
{
    if (!f->wr) {
        long long d[4] = { f->w->d[0], 4 * f->w->d[1], 3, 3 };
        IrNode *r = ir_add_node(a, o, IR_PHASE_W, at->loc, at->line, 1, &f->w, 4, d);
        r->k = 5;
        f->wr = r->out;
    }
    return f->wr;
}

IrGraph *pass_phase(Arena *a, const IrGraph *g, int simd)
{
    const char *e = getenv("MWTC_PHASE");
    Phased f;
    int count = 0;
    for (int i = 0; i < g->nodes.n; i++)
        count += decide(g, g->nodes.v[i], simd, &f);
    if (!count || (e && !strcmp(e, "off")))
        return (IrGraph *)g;

    IrGraph *o = arena_alloc(a, sizeof *o);
    *o = *g;
    memset(&o->nodes, 0, sizeof o->nodes);
    /* at most three nodes for one */
    o->origin = arena_alloc(a, sizeof(int) * (size_t)(3 * g->nodes.n + 1));
    Phased *ph = arena_alloc(a, sizeof *ph * (size_t)count);
    int nph = 0;
    for (int i = 0; i < g->nodes.n; i++) {
        IrNode *n = g->nodes.v[i];
        int from = o->nodes.n, src = g->origin ? g->origin[i] : i;
        Phased *p = n->op == IR_CONV2D_GRAD_X || n->op == IR_CONV2D_GRAD_W ? find(ph, nph, n) : NULL;
        if (decide(g, n, simd, &f)) {
            p = &ph[nph++];
            *p = f;
        }
        if ((n->op == IR_CONV2D || n->op == IR_CONV2D_BN) && p && p->fwd) {
            /* the conv itself, its other operands (bias, batchnorm) and result as they were */
            IrValue *xp = phases_of_x(a, o, p, n), *wp = phases_of_w(a, o, p, n);
            IrNode *c = arena_alloc(a, sizeof *c);
            *c = *n;
            c->in = arena_alloc(a, sizeof(IrValue *) * (size_t)n->nin);
            memcpy(c->in, n->in, sizeof(IrValue *) * (size_t)n->nin);
            c->in[0] = xp, c->in[1] = wp;
            c->k = 3, c->stride = 1, c->pad = p->q;
            vec_push(a, &o->nodes, c);
        } else if (n->op == IR_CONV2D_GRAD_X && p && p->gx) {
            /* dy -> the phases' gradient -> dx, which keeps its value */
            IrValue *in[2] = { n->in[0], phases_of_w(a, o, p, n) };
            long long d[4] = { p->x->d[0], 4 * p->x->d[1], p->ph_h, p->ph_w };
            IrNode *gx = ir_add_node(a, o, IR_CONV2D_GRAD_X, n->loc, n->line, 2, in, 4, d);
            gx->k = 3, gx->stride = 1, gx->pad = p->q;
            IrNode *dx = ir_add_node(a, o, IR_DEPTH_TO_SPACE, n->loc, n->line, 1, &gx->out, 4, n->out->d);
            dx->pad = p->off;
            dx->out = n->out;
        } else if (n->op == IR_CONV2D_GRAD_W && p && p->gw) {
            /* the phases' weight gradient (the bias's as it was) -> dw, which keeps its value */
            IrValue *in[2] = { phases_of_x(a, o, p, n), n->in[1] };
            long long d[4] = { p->w->d[0], 4 * p->w->d[1], 3, 3 };
            IrNode *gw = ir_add_node(a, o, IR_CONV2D_GRAD_W, n->loc, n->line, 2, in, 4, d);
            gw->k = 3, gw->stride = 1, gw->pad = p->q;
            gw->nextra = n->nextra;
            memcpy(gw->extra, n->extra, sizeof n->extra);
            IrNode *dw = ir_add_node(a, o, IR_PHASE_W_GRAD, n->loc, n->line, 1, &gw->out, 4, n->out->d);
            dw->k = n->k;
            dw->out = n->out;
        } else
            vec_push(a, &o->nodes, n);
        for (int j = from; j < o->nodes.n; j++)
            o->origin[j] = src;
    }
    return o;
}
