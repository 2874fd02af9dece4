/* Codegen: one switch over the ops, each case the kernel call(s) of
 * k_kernels.h with its constants. Tensors are byte offsets from the arena's
 * base (plan.h); the parallel dimension of each kernel is its unit count. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"
#include "k_kernels.h"

typedef struct Cg {
    Arena *a;
    const Plan *p;
    const char *prefix;
    CgCalls *out;
    int node;                  /* the node being generated */
    unsigned char *fused;      /* by node: a mask application the conv before it computes */
    CgCalls prep;              /* the preparation of the graph's weights (CgCalls.nprep) */
} Cg;

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

static void push(Cg *C, int units, const char *kernel, const char *sig, int nconst, const double *consts)
{
    double *c = arena_alloc(C->a, sizeof(double) * (size_t)(nconst ? nconst : 1));
    memcpy(c, consts, sizeof(double) * (size_t)nconst);
    append(C->a, C->out, (JitCall){ arena_printf(C->a, "%s%d", C->prefix, C->out->n), kernel, sig, c }, units, C->node);
}

/* A call whose constants follow the signature: one double per 'p', 'q', 'i', 'f', 'r'. */
static void call(Cg *C, int units, const char *kernel, const char *sig, ...)
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
    push(C, units, kernel, sig, n, c);
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

static double O(const Cg *C, const IrValue *v) { return (double)C->p->off[v->id]; }
static double Q(const Cg *C, const IrValue *v) { return v ? O(C, v) : -1.0; }
static int units(const IrValue *v) { return (int)ir_numel(v); }

/* The masked layer whose mask m is; -1 if none. */
static int mask_layer(const Cg *C, const IrValue *m)
{
    for (int i = 0; i < C->p->g->masks.n; i++)
        if (C->p->g->masks.v[i] == m)
            return i;
    return -1;
}

/* The 11 shape constants of a conv kernel: N C H W K R S stride pad OH OW. */
#define CONV_SHAPE(x, y, n) \
    (double)(x)->d[0], (double)(x)->d[1], (double)(x)->d[2], (double)(x)->d[3], (double)(y)->d[1], (double)(n)->k, \
        (double)(n)->k, (double)(n)->stride, (double)(n)->pad, (double)(y)->d[2], (double)(y)->d[3]

/* How many groups of output channels a forward conv splits into besides its rows. */
static double conv_groups(const Cg *C, const IrValue *x, const IrValue *y)
{
    return (double)k_conv2d_groups((long)(x->d[0] * y->d[2]), (int)y->d[1], C->p->L->simd, C->out->threads);
}

/* Whether node n computes an inference forward (no gradient is taken of
 * it): the kernels may then be picked for the forward alone. */
static int inference(const Cg *C, const IrNode *n)
{
    return n->op == IR_CONV2D_BN || (n->op == IR_CONV2D && !C->p->g->training);
}

/* A shape rule of the Winograd kernels (k_wino_ok and its kin) for a conv
 * n of x [N,C,H,W] into K channels: train's for training, infer's for an
 * inference forward. None with MWTC_WINOGRAD=off. */
typedef int WinoOk(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW);

static int wino_shape(const Cg *C, const IrValue *x, long long K, const IrNode *n, WinoOk *train, WinoOk *infer)
{
    const char *e = getenv("MWTC_WINOGRAD");
    if ((e && !strcmp(e, "off")) || x->rank != 4)
        return 0;
    long long s = n->stride > 0 ? n->stride : 1, oh = (x->d[2] + 2 * n->pad - n->k) / s + 1,
              ow = (x->d[3] + 2 * n->pad - n->k) / s + 1;   /* the conv's output, x its input */
    return (inference(C, n) ? infer : train)((int)x->d[1], (int)x->d[2], (int)x->d[3], (int)K, (int)n->k, (int)n->k,
                                             (int)n->stride, (int)n->pad, (int)oh, (int)ow);
}

/* Winograd (k_wino4.c and k_wino.c) for a 3x3, stride 1, pad 1 conv of x
 * [N,C,H,W] into K channels, at any batch: a small one splits its output
 * channels over the threads (k_wino_groups), where it used to run the
 * direct kernel split by rows (SimCNN at batch 1 on Zen 1, two threads:
 * 1.3 ms, now 0.6). */
static int use_wino(const Cg *C, const IrValue *x, long long K, const IrNode *n)
{
    return wino_shape(C, x, K, n, k_wino_ok, k_wino_infer_ok);
}

/* F(4x4, 3x3) (k_wino4.c) for a 3x3 stride-1 conv at padding 0 (a valid
 * conv) or 2: in training, its data gradient (the conv of dy with padding
 * 2 - pad) and where k_wino4_bwd_w_ok its weight gradient; in inference
 * where k_wino4_infer_ok, with F(4x4)'s part kernel where one runs (wino).
 * F(2x2) is written for padding 1, so the direct kernels had run these: a
 * valid 3x3 conv 64->128 at 14x14 trained at 0.86x PyPI PyTorch's speed,
 * now 1.35x; 64->64 at 32x32 1.18x, now 2.49x (bench/layers_vs_torch.py,
 * 2 threads of a Sapphire Rapids). */
static int use_wino4p(const Cg *C, const IrValue *x, long long K, const IrNode *n)
{
    return wino_shape(C, x, K, n, k_wino4_ok, k_wino4_infer_ok) &&
           (!inference(C, n) || k_wino4_pad_pays((int)x->d[1], (int)x->d[2], (int)x->d[3], (int)K, C->p->L->simd));
}

/* Winograd F(2x2, 5x5) (k_wino4.c) for a conv 5x5, stride 1, pad 2 of x
 * [N,C,H,W] into K channels, its data gradient and (where
 * k_wino25_bwd_w_ok) its weight gradient; and an inference conv at any
 * batch, its U made beforehand where a call has few tiles (wino, as
 * F(4x4)'s: with U computed at every call, calls of fewer than 784 pixels
 * had been slower than the direct kernel, cnn5x5's batch-1 latency on 2
 * threads of a Sapphire Rapids 1.64 ms against 1.07; with U beforehand
 * 0.65). */
static int use_wino25(const Cg *C, const IrValue *x, long long K, const IrNode *n)
{
    return wino_shape(C, x, K, n, k_wino25_ok, k_wino25_infer_ok);
}

/* The batch x's conv chooses its kernel for (CgCalls.pin_batch). */
static int batch(const Cg *C, const IrValue *x)
{
    return C->out->pin_batch > 0 ? C->out->pin_batch : (int)x->d[0];
}

/* Whether a conv of x [N,C,H,W] into y [N,K,OH,OW] has small planes
 * (k_small_ok: VGG16's 4x4 and 2x2 stages) for the kernels of k_small.c
 * and k_small_pix.c; MWTC_SMALL=off keeps them on the other kernels, to
 * compare. */
static int small_planes(const IrValue *x, const IrValue *y, const IrNode *n)
{
    const char *e = getenv("MWTC_SMALL");
    if ((e && !strcmp(e, "off")) || x->rank != 4)
        return 0;
    return k_small_ok((int)x->d[1], (int)x->d[2], (int)x->d[3], (int)y->d[1], (int)n->k, (int)n->k, (int)n->stride,
                      (int)n->pad, (int)y->d[2], (int)y->d[3]);
}

/* k_small.c's GEMMs per output pixel for such a conv, training's or
 * inference's (from a tile of images). */
static int use_small(const Cg *C, const IrValue *x, const IrValue *y, const IrNode *n)
{
    return small_planes(x, y, n) && !(inference(C, n) && !k_small_batch_ok(batch(C, x), C->p->L->simd));
}

/* k_small.c's dot products for an inference conv of small planes at a
 * batch too small for its GEMMs (and for use_small_pix's): bound by
 * reading the weights, which it reads as they lie, once for each group of
 * images whose columns fit in L2 (k_small_dot_group). Below 32 images they
 * beat Winograd and the direct kernel at every batch (VGG16 on 2 threads
 * of an AVX-512 Xeon: 4 images a call 308 images/s against 233 when they
 * took only 3 images or fewer, 16 images 439 against 364, 31 images 451
 * against 308). */
static int use_small_dot(const Cg *C, const IrValue *x, const IrValue *y, const IrNode *n)
{
    return small_planes(x, y, n) && inference(C, n) && !k_small_batch_ok(batch(C, x), C->p->L->simd);
}

/* k_small_pix.c's GEMMs for an inference conv of small planes from a few
 * images up to a tile of k_small.c's GEMMs, their weights laid out
 * beforehand (prepared_small), where the dot products ran (VGG16's 512
 * channels at 4x4 and 8 images, one thread of an AVX-512 Xeon: 5.7 ms a
 * call, now 3.5; at 2x2 2.0, now 0.9). Below k_small_pix_ok's batch the
 * dot products, which cost by the image where these cost a whole tile.
 * From a tile of images on, k_small.c's GEMMs (the same bits) or
 * Winograd: there these gained 1-2% of VGG16's and ResNet18's inference at
 * 256 images, and the copy of the weights would have cost modularize 15%
 * more memory (VGG16's ten modules each with its own). */
static int use_small_pix(const Cg *C, const IrValue *x, const IrValue *y, const IrNode *n)
{
    int simd = C->p->L->simd;
    return small_planes(x, y, n) && inference(C, n) && k_small_pix_ok(batch(C, x), simd) &&
           !k_small_batch_ok(batch(C, x), simd);
}

/* k_small.c's units for a forward or data gradient into `rows` channels
 * over `cols` images, and in *split whether they split by the images
 * (k_small_split: many threads). */
static int small_units(const Cg *C, long long rows, long long cols, int *split)
{
    int u = k_small_units((int)rows, C->p->L->simd);
    *split = k_small_split(u, C->out->threads);
    return *split ? u * k_small_cols((int)cols, C->p->L->simd) : u;
}

/* k_conv2d_small's 11 shape constants: the conv's (N C H W K R S stride
 * pad OH OW), of x into y (CONV_SHAPE's). */
#define SMALL_SHAPE(x, y, n) CONV_SHAPE(x, y, n)

/* F(4x4, 3x3) (k_wino4.c) for a Winograd conv of x where it pays, else
 * F(2x2, 3x3); MWTC_WINOGRAD=2x2 always F(2x2) (to compare). */
static int wino4(const Cg *C, const IrValue *x, int infer)
{
    const char *e = getenv("MWTC_WINOGRAD");
    if (e && !strcmp(e, "2x2"))
        return 0;
    if (!infer)
        return k_wino4_pays((int)x->d[3]);
    return k_wino4_infer_pays(batch(C, x), (int)x->d[1], (int)x->d[2], (int)x->d[3], C->p->L->simd);
}

/* The rows and columns of v (rank 4) that the graph reads: all of them,
 * unless every reader is an op on each element or channel that passes on
 * its own extent (a mask, relu, inference batchnorm, dropout) or a pool
 * whose windows stop short of the edge (2x2 max pooling of 7x7 reads 6x6). */
static void extent(const IrGraph *g, const IrValue *v, long long *eh, long long *ew, int depth)
{
    long long H = v->d[2], W = v->d[3];
    *eh = 0, *ew = 0;
    int out = v == g->logits;
    for (int i = 0; i < g->masks.n; i++)
        out |= g->masks.v[i] == v;
    for (int i = 0; i < g->probes.n; i++)
        out |= g->probes.v[i] == v;
    for (int i = 0; i < g->nodes.n && !out && depth < 64; i++) {
        const IrNode *n = g->nodes.v[i];
        long long h = H, w = W;
        for (int k = 0; k < n->nin; k++) {
            if (n->in[k] != v)
                continue;
            if ((n->op == IR_MASK_APPLY || n->op == IR_RELU || n->op == IR_DROPOUT ||
                 (n->op == IR_BATCHNORM && !g->training)) &&
                k == 0 && n->out->rank == 4)
                extent(g, n->out, &h, &w, depth + 1);
            else if ((n->op == IR_MAXPOOL || n->op == IR_AVGPOOL) && k == 0) {
                long long rh = (n->out->d[2] - 1) * n->stride - n->pad + n->k, rw = (n->out->d[3] - 1) * n->stride - n->pad + n->k;
                h = rh < H ? rh : H, w = rw < W ? rw : W;
            }
            *eh = h > *eh ? h : *eh, *ew = w > *ew ? w : *ew;
        }
    }
    if (out || depth >= 64 || *eh == 0)
        *eh = H, *ew = W;
}

/* Keep vectors a conv can leave channels out by: the arena offset of the
 * keep vector of the mask whose channels x carries (back through ops that
 * keep a zero channel zero), in graphs that run variants of a module
 * (their probes: run_variants.c) only; and in any graph, of the mask that
 * multiplies y's channels (its only reader, the mask_apply keep_out puts
 * in *apply). -1 where there is none. */
static double keep_in(const Cg *C, const IrValue *x)
{
    const IrGraph *g = C->p->g;
    for (int depth = 0; g->probes.n && x && x->def && depth < 64; depth++) {
        const IrNode *n = x->def;
        if (n->op == IR_MASK_APPLY) {
            for (int l = 0; l < g->masks.n; l++)
                if (g->masks.v[l] == n->in[1] && n->in[1]->d[1] == x->d[1])
                    return (double)C->p->L->keep_off[l];
            return -1;
        }
        if (n->op != IR_RELU && n->op != IR_MAXPOOL && n->op != IR_AVGPOOL && n->op != IR_DROPOUT)
            return -1;
        x = n->in[0];
    }
    return -1;
}

/* The mask that `apply` (keep_out's reader) multiplies by, when its
 * generator runs before node n: its arena offset; else -1. */
static double mask_before(const Cg *C, const IrNode *apply, const IrNode *n)
{
    const IrGraph *g = C->p->g;
    int at = -1, gen = -1;
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *r = g->nodes.v[i];
        at = r == n ? i : at;
        gen = r->out == apply->in[1] ? i : gen;
    }
    return gen >= 0 && at >= 0 && gen < at ? O(C, apply->in[1]) : -1;
}

static double keep_out(const Cg *C, const IrValue *y, const IrNode **apply)
{
    const IrGraph *g = C->p->g;
    const IrNode *reader = NULL;
    *apply = NULL;
    int uses = y == g->logits;
    for (int i = 0; i < g->probes.n; i++)
        uses += g->probes.v[i] == y;
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *n = g->nodes.v[i];
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] == y)
                uses++, reader = n;
    }
    if (uses != 1 || reader->op != IR_MASK_APPLY || reader->in[0] != y)
        return -1;
    for (int l = 0; l < g->masks.n; l++)
        if (g->masks.v[l] == reader->in[1]) {
            *apply = reader;
            return (double)C->p->L->keep_off[l];
        }
    return -1;
}

/* Whether a and b share a byte of the arena. */
static int overlap(const Cg *C, const IrValue *a, const IrValue *b)
{
    long long ao = C->p->off[a->id], bo = C->p->off[b->id];
    return ao < bo + ir_numel(b) * 4 && bo < ao + ir_numel(a) * 4;
}

/* Room of its own past the arena's other tensors for the floats a
 * preparation call computes (its offset), the calls made until prep_end
 * going to the graph's preparation: the steps that run before the graph's
 * first run and again after anything writes the weights. */
typedef struct {
    CgCalls *out;
    const char *prefix;
} CgPrep;

static double prep_begin(Cg *C, long long floats, CgPrep *saved)
{
    PlanLayout *L = C->p->L;
    long long at = L->size;
    L->size += (floats * 4 + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN;
    saved->out = C->out, saved->prefix = C->prefix;
    C->out = &C->prep, C->prefix = arena_printf(C->a, "%sp", saved->prefix);
    return (double)at;
}

static void prep_end(Cg *C, const CgPrep *saved) { C->out = saved->out, C->prefix = saved->prefix; }

/* A Winograd inference conv's transformed weights, computed once by a
 * preparation call (k_conv2d_wino_prep), rather than on every call: the
 * conv's batchnorm and weights do not change from one inference to the
 * next. Its offset. */
static double prepared(Cg *C, const char *kernel, const IrValue *x, const IrValue *w, const IrValue *b,
                       IrValue *const *bn, long long K)
{
    int cin = (int)x->d[1], simd = C->p->L->simd, f4 = strcmp(kernel, "k_conv2d_wino") != 0;   /* 6x6 tiles */
    CgPrep saved;
    double at = prep_begin(C, f4 ? k_wino4_pre_floats(cin, (int)K, simd) : k_wino_pre_floats(cin, (int)K, simd),
                           &saved);
    call(C, k_wino_pre_units((int)K, simd), arena_printf(C->a, "%s_prep", kernel), "pqqqqqpwiifilh",
         O(C, w), Q(C, b), Q(C, bn ? bn[0] : NULL), Q(C, bn ? bn[1] : NULL), Q(C, bn ? bn[2] : NULL),
         Q(C, bn ? bn[3] : NULL), at, (double)cin, (double)K, 1e-5, (double)simd);
    prep_end(C, &saved);
    return at;
}

/* A small-plane inference conv's weights as k_conv2d_small_pix reads them
 * (scaled by its batchnorm, with the folded bias), laid out once by a
 * preparation call (k_conv2d_small_prep). Its offset. */
static double prepared_small(Cg *C, const IrValue *x, const IrValue *w, const IrValue *b, IrValue *const *bn,
                             const IrValue *y, const IrNode *n)
{
    int cin = (int)x->d[1], K = (int)y->d[1], simd = C->p->L->simd;
    CgPrep saved;
    double at = prep_begin(C, k_small_pre_floats(cin, K, (int)n->k, (int)n->k, simd), &saved);
    call(C, k_small_pre_units(K, simd), "k_conv2d_small_prep", "pqqqqqpiiiifilh", O(C, w), Q(C, b),
         Q(C, bn ? bn[0] : NULL), Q(C, bn ? bn[1] : NULL), Q(C, bn ? bn[2] : NULL), Q(C, bn ? bn[3] : NULL), at,
         (double)cin, (double)K, (double)n->k, (double)n->k, 1e-5, (double)simd);
    prep_end(C, &saved);
    return at;
}

/* The forward of such a conv from its prepared weights. */
static void small_pix(Cg *C, const IrValue *x, const IrValue *b, IrValue *const *bn, const IrValue *y,
                      const IrNode *n, int relu)
{
    double pre = prepared_small(C, x, n->in[1], b, bn, y, n);
    call(C, k_small_pre_units((int)y->d[1], C->p->L->simd), "k_conv2d_small_pix", "pppwiiiiiiiiiiiiilh", O(C, x),
         pre, O(C, y), SMALL_SHAPE(x, y, n), (double)relu, (double)C->p->L->simd);
}

/* The 5 shape constants of k_conv2d_wino_bwd_w: N C H W K. */
#define WINO_SHAPE(x, K) (double)(x)->d[0], (double)(x)->d[1], (double)(x)->d[2], (double)(x)->d[3], (double)(K)

/* A Winograd conv of x (N C H W) into y with K channels, r x r kernels (3:
 * F(4x4) or F(2x2), 5: F(2x2, 5x5)), its bias and inference batchnorm
 * optional ('q'), its batch and flip given at run time ('r'): the forward,
 * the data gradient and the inference conv of a layer of one shape then
 * share one compiled body (jit.h). */
static void wino(Cg *C, const IrValue *x, const IrValue *w, const IrValue *b, IrValue *const *bn, const IrValue *y,
                 long long K, int relu, int flip, int infer, int r, int pad)
{
    const char *kernel = r == 5                           ? "k_conv2d_wino25"
                         : pad != 1 || wino4(C, x, infer) ? "k_conv2d_wino4"
                                                          : "k_conv2d_wino";
    int groups = k_wino_groups((int)x->d[0], (int)K, C->p->L->simd, C->out->threads);
    /* four: 6x6 tiles (k_wino4.c), F(4x4)'s or F(2x2, 5x5)'s */
    int four = strcmp(kernel, "k_conv2d_wino") != 0, probes = C->p->g->probes.n > 0;
    int other = r == 3 && pad != 1;   /* F(4x4) at padding 0 or 2: its part kernel alone, every row read */
    long long eh = y->d[2], ew = y->d[3];
    double ik = -1, ok = -1, mk = -1;
    const IrNode *apply = NULL;
    const char *part = NULL;
    if (infer && !flip) {
        ik = keep_in(C, x), ok = keep_out(C, y, &apply);
        if (apply)
            mk = mask_before(C, apply, C->p->g->nodes.v[C->node]);
        if (!other && (!strcmp(kernel, "k_conv2d_wino") || ((ik >= 0 || (probes && ok >= 0)) && r == 3)))
            extent(C->p->g, y, &eh, &ew, 0);
        int full = eh == y->d[2] && ew == y->d[3];
        /* F(2x2, 5x5)'s part kernel is F(4x4)'s: every row and column, the
         * channels not split; F(4x4)'s at padding 0 or 2 likewise (its
         * output's size gives it the padding). Where it cannot run, the
         * plain kernel does, and the mask's application after it (no F(2x2)
         * part kernel to fall back on, and a conv whose channels a sweep
         * switches off is correct without one: they are zeros in, and
         * zeroed after) */
        const char *p4 = r == 5 ? "k_conv2d_wino25_part" : "k_conv2d_wino4_part",
                   *p2 = r == 5 || other ? NULL : "k_conv2d_wino_part";
        /* Convs with keep vectors (a sweep's variants) run a part kernel:
         * it leaves the channels they switch off out of its GEMMs, and the
         * modules compiled together share its bodies (its channel counts
         * given at run time). F(4x4)'s where F(4x4) pays, the conv's every
         * row is read and its channels are not split (k_conv2d_wino4_part:
         * SimCNN's sweep on Zen 1, its 14x14 convs 10-15% faster); else
         * F(2x2)'s, which also stops at the rows read. */
        if (ik >= 0 || (probes && ok >= 0))
            part = four && full && groups == 1 ? p4 : p2;
        /* A module's other convs whose mask is ready before them (the
         * generator first: pass_gens_first) run one too, the module's keep
         * vector their outkeep: it writes zeros for the images the mask
         * turns off, applies the mask as it writes, and leaves the input
         * channels that are zeros in an image (44% of them after SimCNN's
         * first masked layer) out of its sums. The same bits as the conv
         * then the application. F(4x4)'s where F(4x4) runs and the part
         * kernel can (as above), else F(2x2)'s. */
        else if (mk >= 0 && !C->p->g->exports_prefix && (!four || (full && groups == 1)))
            part = four ? p4 : p2;
        if (!part)
            ok = -1, mk = -1, apply = NULL;
        four = part ? strcmp(part, "k_conv2d_wino_part") != 0 : four;
    }
    /* U computed beforehand for an inference conv where that pays; not with
     * a sweep's keep vectors, which change from one run to the next, and
     * with them the channels U would hold (the part kernels read it only
     * where the keep vectors keep every channel) */
    double pre = infer && !flip && !(probes && (ik >= 0 || ok >= 0)) &&
                         k_wino_pre_pays(batch(C, x), (int)x->d[2], (int)x->d[3], four && r == 3)
                     ? prepared(C, four ? kernel : "k_conv2d_wino", x, w, b, bn, K)
                     : -1;
    /* With its mask ready (mask_before) and a relu after it, the conv writes
     * what the mask's application would (k_conv2d_wino_part's apply), and
     * that pass over the output is left out; unless the application's output
     * lies over x, which the conv reads as it writes. */
    int fuse = mk >= 0 && apply->p == 1.0 && !relu && !overlap(C, x, apply->out);
    if (fuse)
        for (int i = 0; i < C->p->g->nodes.n; i++)
            C->fused[i] |= C->p->g->nodes.v[i] == apply;
    if (eh < y->d[2] || ew < y->d[3] || part) {   /* only what is read */
        part = part ? part : "k_conv2d_wino_part";
        double c[32] = { O(C, x), O(C, w), Q(C, b), Q(C, bn ? bn[0] : NULL), Q(C, bn ? bn[1] : NULL),
                         Q(C, bn ? bn[2] : NULL), Q(C, bn ? bn[3] : NULL), pre };
        int nc = 8;
        char sig[40] = "ppqqqqqq";
        strcat(sig, ik >= 0 ? "p" : "n"), strcat(sig, ok >= 0 ? "p" : "n"), strcat(sig, mk >= 0 ? "pp" : "nn");
        /* With keep vectors the channel counts are given at run time: a
         * layer's part kernel calls in the modules compiled together then
         * share one compiled body, whose GEMMs' sizes are counted from the
         * keep vectors and zero lists at run time anyway. A body for each
         * module's counts took longer to compile than it saved (ten modules
         * of SimCNN: 1.9 s of compiling against 0.9 s of running). */
        const char *share = ik >= 0 || ok >= 0 ? "r" : "i";
        strcat(sig, "pwr"), strcat(sig, share), strcat(sig, "ii"), strcat(sig, share), strcat(sig, "fiiiiiilh");
        if (ik >= 0)
            c[nc++] = ik;
        if (ok >= 0)
            c[nc++] = ok;
        if (mk >= 0)
            c[nc++] = mk, c[nc++] = (double)C->p->L->scalars + 16;   /* the generators' switch */
        double rest[] = { O(C, fuse ? apply->out : y), (double)x->d[0], (double)x->d[1], (double)x->d[2],
                          (double)x->d[3], (double)K, 1e-5, (double)(relu || fuse), (double)eh, (double)ew,
                          (double)fuse, (double)C->p->L->simd, (double)groups };
        memcpy(c + nc, rest, sizeof rest);
        push(C, (int)x->d[0] * groups, part, arena_strdup(C->a, sig),
             nc + (int)(sizeof rest / sizeof *rest), c);
        return;
    }
    /* F(4x4) and F(2x2, 5x5) take the padding after K: x's, or the data
     * gradient's (dy's) r - 1 - the conv's */
    int padded = strcmp(kernel, "k_conv2d_wino") != 0;
    double c[20] = { O(C, x), O(C, w), Q(C, b), Q(C, bn ? bn[0] : NULL), Q(C, bn ? bn[1] : NULL),
                     Q(C, bn ? bn[2] : NULL), Q(C, bn ? bn[3] : NULL), pre, O(C, y), (double)x->d[0],
                     (double)x->d[1], (double)x->d[2], (double)x->d[3], (double)K };
    int nc = 14;
    if (padded)
        c[nc++] = pad;
    double rest[] = { 1e-5, (double)relu, (double)flip, (double)C->p->L->simd, (double)groups };
    memcpy(c + nc, rest, sizeof rest);
    push(C, (int)x->d[0] * groups, kernel, padded ? "ppqqqqqqpwriiiiifiriilh" : "ppqqqqqqpwriiiifiriilh",
         nc + (int)(sizeof rest / sizeof *rest), c);
}

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
    case IR_CONST: call(C, 1, "k_fill", "pflh", O(C, y), n->p); return 0;
    case IR_SCALE: call(C, 1, "k_scale", "ppflh", O(C, x), O(C, y), n->p); return 0;
    case IR_WEIGHTED_SUM:
        call(C, 1, "k_scale", "ppflh", O(C, n->in[0]), O(C, y), n->weights[0]);
        for (int i = 1; i < n->nin; i++)
            call(C, 1, "k_axpy", "ppflh", O(C, n->in[i]), O(C, y), n->weights[i]);
        return 0;
    case IR_CONV2D: {
        /* Training takes the small planes' GEMMs over Winograd (its forward
         * and both gradients); inference keeps Winograd where it runs, with
         * its transformed weights made beforehand (VGG16's 4x4 convs at
         * batch 256: F(2x2) 45 ms a call, the GEMMs 58 ms), and the GEMMs
         * elsewhere (the 2x2 convs, 57 ms a call in the direct kernel, 10 ms);
         * below a tile of images, dot products before either (VGG16's
         * 4x4 convs at batch 1: Winograd 1.55 ms a call, now 0.3), and
         * from a few images on the GEMMs with the images as rows */
        if (use_small_pix(C, x, y, n)) {
            small_pix(C, x, n->nin == 3 ? n->in[2] : NULL, NULL, y, n, 0);
            return 0;
        }
        if (use_small_dot(C, x, y, n)) {
            int units = k_small_dot_units((int)y->d[1], (int)(y->d[2] * y->d[3]), L->simd);
            call(C, units, "k_conv2d_small_dot", "ppqqqqqpwiiiiiiiiiiifiilh", O(C, x), O(C, n->in[1]),
                 Q(C, n->nin == 3 ? n->in[2] : NULL), -1.0, -1.0, -1.0, -1.0, O(C, y), SMALL_SHAPE(x, y, n), 1e-5,
                 0.0, simd);
            return 0;
        }
        /* Winograd before the small planes' GEMMs where both apply (4x4, stride
         * 1), in inference and in training: VGG16's 4x4 stage, forward and
         * data gradient, 1.52-1.58 s in 15 steps by k_small.c, 1.17-1.19 by
         * F(2x2) (2 threads of a Sapphire Rapids; ResNet18's 1.83-1.90 and
         * 1.53-1.57). Its weight gradient stays k_small.c's (F(2x2)'s was 3x
         * slower there). */
        int wino_ok = use_wino(C, x, y->d[1], n);
        if (use_small(C, x, y, n) && !wino_ok) {
            int split, units = small_units(C, y->d[1], x->d[0], &split);
            if (n->nin == 3)
                call(C, units, "k_conv2d_small", "ppppwiiiiiiiiiiiiiilh", O(C, x), O(C, n->in[1]), O(C, n->in[2]),
                     O(C, y), SMALL_SHAPE(x, y, n), 0.0, (double)split, simd);
            else
                call(C, units, "k_conv2d_small", "ppnpwiiiiiiiiiiiiiilh", O(C, x), O(C, n->in[1]), O(C, y),
                     SMALL_SHAPE(x, y, n), 0.0, (double)split, simd);
            return 0;
        }
        if (wino_ok) {
            wino(C, x, n->in[1], n->nin == 3 ? n->in[2] : NULL, NULL, y, y->d[1], 0, 0, inference(C, n), 3, 1);
            return 0;
        }
        if (use_wino4p(C, x, y->d[1], n)) {
            wino(C, x, n->in[1], n->nin == 3 ? n->in[2] : NULL, NULL, y, y->d[1], 0, 0, inference(C, n), 3,
                 (int)n->pad);
            return 0;
        }
        if (use_wino25(C, x, y->d[1], n)) {
            wino(C, x, n->in[1], n->nin == 3 ? n->in[2] : NULL, NULL, y, y->d[1], 0, 0, inference(C, n), 5,
                 (int)n->pad);
            return 0;
        }
        double kt = conv_groups(C, x, y);
        int units = (int)(kt * (double)(x->d[0] * y->d[2]));
        if (n->nin == 3)
            call(C, units, "k_conv2d_fwd", "ppppwiiiiiiiiiiiiilh", O(C, x), O(C, n->in[1]), O(C, n->in[2]), O(C, y),
                 CONV_SHAPE(x, y, n), kt, simd);
        else
            call(C, units, "k_conv2d_fwd", "ppnpwiiiiiiiiiiiiilh", O(C, x), O(C, n->in[1]), O(C, y),
                 CONV_SHAPE(x, y, n), kt, simd);
        return 0;
    }
    case IR_CONV2D_BN: { /* x, w (, b), gamma, beta, mean, var */
        int g0 = n->nin == 7 ? 3 : 2;
        if (use_small_pix(C, x, y, n)) {
            small_pix(C, x, n->nin == 7 ? n->in[2] : NULL, &n->in[g0], y, n, (int)n->p);
            return 0;
        }
        if (use_small_dot(C, x, y, n)) {
            int units = k_small_dot_units((int)y->d[1], (int)(y->d[2] * y->d[3]), L->simd);
            call(C, units, "k_conv2d_small_dot", "ppqpppppwiiiiiiiiiiifiilh", O(C, x), O(C, n->in[1]),
                 Q(C, n->nin == 7 ? n->in[2] : NULL), O(C, n->in[g0]), O(C, n->in[g0 + 1]), O(C, n->in[g0 + 2]),
                 O(C, n->in[g0 + 3]), O(C, y), SMALL_SHAPE(x, y, n), 1e-5, n->p, simd);
            return 0;
        }
        if (use_wino(C, x, y->d[1], n)) {
            wino(C, x, n->in[1], n->nin == 7 ? n->in[2] : NULL, &n->in[g0], y, y->d[1], (int)n->p, 0, 1, 3, 1);
            return 0;
        }
        if (use_small(C, x, y, n)) {   /* after Winograd, as IR_CONV2D's inference */
            int split, units = small_units(C, y->d[1], x->d[0], &split);
            call(C, units, "k_conv2d_small_bn", "ppqpppppwiiiiiiiiiiifiiilh", O(C, x), O(C, n->in[1]),
                 Q(C, n->nin == 7 ? n->in[2] : NULL), O(C, n->in[g0]), O(C, n->in[g0 + 1]), O(C, n->in[g0 + 2]),
                 O(C, n->in[g0 + 3]), O(C, y), SMALL_SHAPE(x, y, n), 1e-5, n->p, (double)split, simd);
            return 0;
        }
        if (use_wino4p(C, x, y->d[1], n)) {   /* after the small planes' kernels, as IR_CONV2D's */
            wino(C, x, n->in[1], n->nin == 7 ? n->in[2] : NULL, &n->in[g0], y, y->d[1], (int)n->p, 0, 1, 3,
                 (int)n->pad);
            return 0;
        }
        if (use_wino25(C, x, y->d[1], n)) {   /* after the small planes' kernels, as IR_CONV2D's */
            wino(C, x, n->in[1], n->nin == 7 ? n->in[2] : NULL, &n->in[g0], y, y->d[1], (int)n->p, 0, 1, 5,
                 (int)n->pad);
            return 0;
        }
        double kt = conv_groups(C, x, y);
        int units = (int)(kt * (double)(x->d[0] * y->d[2]));
        if (n->nin == 7)
            call(C, units, "k_conv2d_bn_fwd", "ppppppppwiiiiiiiiiiifiiilh", O(C, x), O(C, n->in[1]), O(C, n->in[2]),
                 O(C, n->in[g0]), O(C, n->in[g0 + 1]), O(C, n->in[g0 + 2]), O(C, n->in[g0 + 3]), O(C, y),
                 CONV_SHAPE(x, y, n), 1e-5, n->p, kt, simd);
        else
            call(C, units, "k_conv2d_bn_fwd", "ppnpppppwiiiiiiiiiiifiiilh", O(C, x), O(C, n->in[1]), O(C, n->in[g0]),
                 O(C, n->in[g0 + 1]), O(C, n->in[g0 + 2]), O(C, n->in[g0 + 3]), O(C, y), CONV_SHAPE(x, y, n), 1e-5,
                 n->p, kt, simd);
        return 0;
    }
    case IR_CONV2D_GRAD_X: /* x = dy, y = dx */
        /* dx: per pixel of it, a GEMM over the pixels of dy that read it;
         * Winograd first where both apply, as the forward's */
        if (use_small(C, y, x, n) && !use_wino(C, y, x->d[1], n)) {
            int split, units = small_units(C, y->d[1], y->d[0], &split);
            call(C, units, "k_conv2d_small", "ppnpwiiiiiiiiiiiiiilh", O(C, x), O(C, n->in[1]), O(C, y),
                 SMALL_SHAPE(y, x, n), 1.0, (double)split, simd);
            return 0;
        }
        if (use_wino(C, y, x->d[1], n)) {   /* dx: the conv of dy with the kernels flipped */
            wino(C, x, n->in[1], NULL, NULL, y, y->d[1], 0, 1, 0, 3, 1);
            return 0;
        }
        if (use_wino4p(C, y, x->d[1], n)) {
            wino(C, x, n->in[1], NULL, NULL, y, y->d[1], 0, 1, 0, 3, 2 - (int)n->pad);
            return 0;
        }
        if (use_wino25(C, y, x->d[1], n)) {
            wino(C, x, n->in[1], NULL, NULL, y, y->d[1], 0, 1, 0, 5, 4 - (int)n->pad);
            return 0;
        }
        call(C, (int)y->d[0], "k_conv2d_bwd_x", "pppwiiiiiiiiiiiilh", O(C, x), O(C, n->in[1]), O(C, y),
             CONV_SHAPE(y, x, n), simd);
        return 0;
    case IR_CONV2D_GRAD_W: {
        const IrValue *dy = n->in[1];
        if (use_small(C, x, dy, n)) {   /* whole sums, written: no parts to add */
            int units = k_small_units((int)dy->d[1], L->simd);
            if (n->nextra)
                call(C, units, "k_conv2d_small_bwd_w", "ppppwiiiiiiiiiiiilh", O(C, x), O(C, dy), O(C, y),
                     O(C, n->extra[0]), SMALL_SHAPE(x, dy, n), simd);
            else
                call(C, units, "k_conv2d_small_bwd_w", "pppnwiiiiiiiiiiiilh", O(C, x), O(C, dy), O(C, y),
                     SMALL_SHAPE(x, dy, n), simd);
            return 0;
        }
        /* G chunks of the batch (the order of the sums), each cut into CS
         * parts of its input channels when there are more threads than chunks */
        int G = plan_chunks(x->d[0]), CS = k_bwdw_splits((int)x->d[1], G, C->out->threads), u = G * CS;
        long long nw = ir_numel(y), nb = n->nextra ? ir_numel(n->extra[0]) : 0;
        double dbpart = parts + 4.0 * (double)(G * nw);
        int w25 = use_wino25(C, x, dy->d[1], n) &&
                  k_wino25_bwd_w_ok((int)x->d[1], (int)x->d[2], (int)x->d[3], (int)dy->d[1], (int)n->pad);
        int w4p = use_wino4p(C, x, dy->d[1], n) &&
                  k_wino4_bwd_w_ok((int)x->d[1], (int)x->d[2], (int)x->d[3], (int)dy->d[1], (int)n->pad);
        int wino = w25 || w4p ||
                   (use_wino(C, x, dy->d[1], n) &&
                    k_wino_bwd_w_ok((int)x->d[1], (int)x->d[2], (int)x->d[3], (int)dy->d[1]));
        const char *wk = w25                    ? "k_conv2d_wino25_bwd_w"
                         : w4p || wino4(C, x, 0) ? "k_conv2d_wino4_bwd_w"
                                                  : "k_conv2d_wino_bwd_w";
        /* F(4x4) and F(2x2, 5x5) take the conv's padding */
        int padded = wino && strcmp(wk, "k_conv2d_wino_bwd_w") != 0;
        if (padded && nb)
            call(C, u, wk, "ppppwiiiiiiiiilh", O(C, x), O(C, dy), parts, dbpart, WINO_SHAPE(x, dy->d[1]), (double)n->pad,
                 (double)G, (double)CS, simd);
        else if (padded)
            call(C, u, wk, "pppnwiiiiiiiiilh", O(C, x), O(C, dy), parts, WINO_SHAPE(x, dy->d[1]), (double)n->pad, (double)G,
                 (double)CS, simd);
        else if (wino && nb)
            call(C, u, wk, "ppppwiiiiiiiilh", O(C, x), O(C, dy), parts, dbpart, WINO_SHAPE(x, dy->d[1]), (double)G,
                 (double)CS, simd);
        else if (wino)
            call(C, u, wk, "pppnwiiiiiiiilh", O(C, x), O(C, dy), parts, WINO_SHAPE(x, dy->d[1]), (double)G,
                 (double)CS, simd);
        else if (nb)
            call(C, u, "k_conv2d_bwd_w", "ppppwiiiiiiiiiiiiiilh", O(C, x), O(C, dy), parts, dbpart,
                 CONV_SHAPE(x, dy, n), (double)G, (double)CS, simd);
        else
            call(C, u, "k_conv2d_bwd_w", "pppnwiiiiiiiiiiiiiilh", O(C, x), O(C, dy), parts, CONV_SHAPE(x, dy, n),
                 (double)G, (double)CS, simd);
        call(C, (int)nw, "k_sum_parts", "ppirlh", parts, O(C, y), (double)G, (double)nw);
        if (nb)
            call(C, (int)nb, "k_sum_parts", "ppirlh", dbpart, O(C, n->extra[0]), (double)G, (double)nb);
        return 0;
    }
    case IR_BATCHNORM: {
        long long N = x->d[0], Cc = x->d[1], HW = ir_numel(x) / (N * Cc);
        if (n->nextra)
            call(C, (int)Cc, "k_bn_fwd_train", "pppppppiiiffilh", O(C, x), O(C, n->in[1]), O(C, n->in[2]), O(C, y),
                 O(C, n->extra[0]), O(C, n->in[3]), O(C, n->in[4]), (double)N, (double)Cc, (double)HW, 0.1, 1e-5,
                 n->p);
        else
            call(C, (int)Cc, "k_bn_fwd_eval", "ppppppiiiflh", O(C, x), O(C, n->in[1]), O(C, n->in[2]),
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
            call(C, (int)x->d[1], "k_bn_mask_pool_fwd_train", "pppqqqppppwiiiiiiiiffilh", O(C, x), O(C, n->in[1]),
                 O(C, n->in[2]), m, keep, gen, O(C, y), O(C, n->extra[0]), O(C, n->in[3]), O(C, n->in[4]), POOL_SHAPE,
                 0.1, 1e-5, n->p);
        else
            call(C, (int)x->d[1], "k_bn_mask_pool_bwd", "pppppqqqpppqwiiiiiiiiilh", O(C, x), O(C, n->in[1]),
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
            call(C, (int)Cc, "k_bn_mask_fwd_train", "ppppppppppiiiffilh", O(C, x), O(C, n->in[1]), O(C, n->in[2]),
                 O(C, n->in[5]), (double)L->keep_off[l], (double)L->scalars + 16, O(C, y), O(C, n->extra[0]),
                 O(C, n->in[3]), O(C, n->in[4]), (double)N, (double)Cc, (double)HW, 0.1, 1e-5, n->p);
        else
            call(C, (int)Cc, "k_bn_mask_bwd", "ppppppppppppiiiilh", O(C, x), O(C, n->in[1]), O(C, n->in[2]),
                 O(C, n->in[3]), O(C, n->in[4]), O(C, n->in[5]), (double)L->keep_off[l], (double)L->scalars + 16,
                 O(C, y), O(C, n->extra[0]), O(C, n->extra[1]), O(C, n->extra[2]), (double)N, (double)Cc, (double)HW,
                 n->p);
        return 0;
    }
    case IR_BATCHNORM_GRAD: {
        long long N = x->d[0], Cc = x->d[1], HW = ir_numel(x) / (N * Cc);
        if (n->nin == 5)   /* relu fused (pass_fuse): beta too, to recompute where it let dy through */
            call(C, (int)Cc, "k_bn_bwd", "ppppppppiiiilh", O(C, x), O(C, n->in[1]), O(C, n->in[2]), O(C, n->in[3]),
                 O(C, n->in[4]), O(C, y), O(C, n->extra[0]), O(C, n->extra[1]), (double)N, (double)Cc, (double)HW,
                 n->p);
        else
            call(C, (int)Cc, "k_bn_bwd", "ppppnpppiiiilh", O(C, x), O(C, n->in[1]), O(C, n->in[2]), O(C, n->in[3]),
                 O(C, y), O(C, n->extra[0]), O(C, n->extra[1]), (double)N, (double)Cc, (double)HW, 0.0);
        return 0;
    }
    case IR_RELU: call(C, units(y), "k_relu_fwd", "pplh", O(C, x), O(C, y)); return 0;
    case IR_RELU_GRAD: call(C, units(y), "k_relu_bwd", "ppplh", O(C, x), O(C, n->in[1]), O(C, y)); return 0;
    case IR_ADD: call(C, units(y), "k_add", "ppplh", O(C, x), O(C, n->in[1]), O(C, y)); return 0;
    case IR_MAXPOOL:
    case IR_AVGPOOL:
        call(C, (int)(x->d[0] * x->d[1]), n->op == IR_MAXPOOL ? "k_maxpool_fwd" : "k_avgpool_fwd", "ppiiiiiilh",
             O(C, x), O(C, y), (double)x->d[2], (double)x->d[3], (double)n->k, (double)n->stride, (double)y->d[2],
             (double)y->d[3]);
        return 0;
    case IR_MAXPOOL_GRAD: {
        const IrValue *dy = n->in[1];
        call(C, (int)(y->d[0] * y->d[1]), "k_maxpool_bwd", "pppiiiiiilh", O(C, x), O(C, dy), O(C, y),
             (double)y->d[2], (double)y->d[3], (double)n->k, (double)n->stride, (double)dy->d[2], (double)dy->d[3]);
        return 0;
    }
    case IR_AVGPOOL_GRAD:
        call(C, (int)(y->d[0] * y->d[1]), "k_avgpool_bwd", "ppiiiiiilh", O(C, x), O(C, y), (double)y->d[2],
             (double)y->d[3], (double)n->k, (double)n->stride, (double)x->d[2], (double)x->d[3]);
        return 0;
    case IR_GAP:
        call(C, (int)(x->d[0] * x->d[1]), "k_gap_fwd", "ppilh", O(C, x), O(C, y), (double)(x->d[2] * x->d[3]));
        return 0;
    case IR_GAP_GRAD:
        call(C, (int)(y->d[0] * y->d[1]), "k_gap_bwd", "ppilh", O(C, x), O(C, y), (double)(y->d[2] * y->d[3]));
        return 0;
    case IR_SPACE_TO_DEPTH: /* x [N,C,H,W] -> y [N,4C,HP,WP] */
        call(C, (int)(x->d[0] * x->d[1]), "k_space_to_depth", "ppiiiiiiilh", O(C, x), O(C, y), (double)x->d[0],
             (double)x->d[1], (double)x->d[2], (double)x->d[3], (double)y->d[2], (double)y->d[3], (double)n->pad);
        return 0;
    case IR_DEPTH_TO_SPACE: /* x [N,4C,HP,WP] -> y [N,C,H,W] */
        call(C, (int)(y->d[0] * y->d[1]), "k_depth_to_space", "ppiiiiiiilh", O(C, x), O(C, y), (double)y->d[0],
             (double)y->d[1], (double)y->d[2], (double)y->d[3], (double)x->d[2], (double)x->d[3], (double)n->pad);
        return 0;
    case IR_PHASE_W:
        /* In inference the weights do not change from one run to the next:
         * regrouped once, by a preparation call, into room of their own,
         * where the conv (and its own preparation, which runs after) reads
         * them */
        if (!C->p->g->training && x->kind == IR_V_PARAM) {
            CgPrep saved;
            double at = prep_begin(C, ir_numel(y), &saved);
            call(C, (int)x->d[0], "k_phase_w", "ppiiilh", O(C, x), at, (double)x->d[0], (double)x->d[1], (double)n->k);
            prep_end(C, &saved);
            C->p->off[y->id] = (long long)at;
            return 0;
        }
        call(C, (int)x->d[0], "k_phase_w", "ppiiilh", O(C, x), O(C, y), (double)x->d[0], (double)x->d[1], (double)n->k);
        return 0;
    case IR_PHASE_W_GRAD: /* x [K,4C,3,3] -> y [K,C,R,R] */
        call(C, (int)y->d[0], "k_phase_w_grad", "ppiiilh", O(C, x), O(C, y), (double)y->d[0], (double)y->d[1],
             (double)n->k);
        return 0;
    case IR_LINEAR: {
        const IrValue *w = n->in[1];
        /* a small batch also splits its outputs, in groups of 16, over the threads */
        double og = x->d[0] <= 16 && w->d[0] > 16 ? (double)((w->d[0] + 15) / 16) : 1.0;
        int units = (int)(og * (double)x->d[0]);
        if (n->nin == 3)
            call(C, units, "k_linear_fwd", chans(C, "ppppwi?iiilh"), O(C, x), O(C, w), O(C, n->in[2]), O(C, y),
                 (double)x->d[0], (double)w->d[1], (double)w->d[0], og, simd);
        else
            call(C, units, "k_linear_fwd", chans(C, "ppnpwi?iiilh"), O(C, x), O(C, w), O(C, y), (double)x->d[0],
                 (double)w->d[1], (double)w->d[0], og, simd);
        return 0;
    }
    case IR_LINEAR_GRAD_X: { /* x = dy */
        const IrValue *w = n->in[1];
        call(C, (int)x->d[0], "k_linear_bwd_x", "pppwiiiilh", O(C, x), O(C, w), O(C, y), (double)x->d[0],
             (double)w->d[1], (double)w->d[0], simd);
        return 0;
    }
    case IR_LINEAR_GRAD_W: {
        const IrValue *dy = n->in[1];
        if (n->nextra)
            call(C, (int)y->d[0], "k_linear_bwd_w", "ppppwiiiilh", O(C, x), O(C, dy), O(C, y), O(C, n->extra[0]),
                 (double)x->d[0], (double)x->d[1], (double)y->d[0], simd);
        else
            call(C, (int)y->d[0], "k_linear_bwd_w", "pppnwiiiilh", O(C, x), O(C, dy), O(C, y), (double)x->d[0],
                 (double)x->d[1], (double)y->d[0], simd);
        return 0;
    }
    case IR_DROPOUT:
        call(C, units(y), "k_dropout_fwd", "pppiflh", O(C, x), O(C, y), (double)L->scalars + 8, (double)n->salt, n->p);
        return 0;
    case IR_DROPOUT_GRAD:
        call(C, units(y), "k_dropout_bwd", "pppiflh", O(C, x), O(C, y), (double)L->scalars + 8, (double)n->salt, n->p);
        return 0;
    case IR_CROSS_ENTROPY: {
        const IrValue *lg = x;
        call(C, (int)lg->d[0], "k_ce_fwd", "pppiilh", O(C, lg), O(C, n->in[1]), parts, (double)lg->d[0],
             (double)lg->d[1]);
        call(C, 1, "k_mean", "ppilh", parts, O(C, y), (double)lg->d[0]);
        return 0;
    }
    case IR_CROSS_ENTROPY_GRAD:
        call(C, (int)x->d[0], "k_ce_bwd", "ppppiilh", O(C, x), O(C, n->in[1]), O(C, n->in[2]), O(C, y),
             (double)x->d[0], (double)x->d[1]);
        return 0;
    case IR_MASK_GEN: {
        const IrValue *w1 = n->in[1];
        long long B = x->d[0], Cc = x->d[1], HW = x->d[2] * x->d[3], Hd = w1->d[0], K = y->d[1];
        call(C, (int)B, "k_mask_gen_fwd", chans(C, "pppppp?ii?lh"), O(C, x), O(C, w1), O(C, n->in[2]), O(C, n->in[3]),
             O(C, y), n->nextra ? O(C, n->extra[0]) : parts, (double)Cc, (double)HW, (double)Hd, (double)K);
        return 0;
    }
    case IR_MASK_GEN_GRAD: { /* x = saved, y = dx */
        const IrValue *dm = n->in[1], *w1 = n->in[2], *w2 = n->in[3];
        long long B = y->d[0], Cc = y->d[1], HW = y->d[2] * y->d[3], Hd = w1->d[0], K = w2->d[0];
        if (n->nin == 5)   /* an add fused (pass_fuse): dx = in[4] + the generator's share */
            call(C, (int)B, "k_mask_gen_bwd_x", "pppppppiiiilh", O(C, x), O(C, dm), O(C, w1), O(C, w2),
                 O(C, n->in[4]), O(C, y), parts, (double)Cc, (double)HW, (double)Hd, (double)K);
        else
            call(C, (int)B, "k_mask_gen_bwd_x", "ppppnppiiiilh", O(C, x), O(C, dm), O(C, w1), O(C, w2), O(C, y), parts,
                 (double)Cc, (double)HW, (double)Hd, (double)K);
        call(C, (int)(K + Hd), "k_mask_gen_bwd_w", "pppppiiiilh", O(C, x), parts, O(C, n->extra[0]),
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
            call(C, (int)(x->d[0] * x->d[1]), "k_mask_apply_keep", chans(C, "pppppi?ilh"), O(C, x), O(C, m),
                 (double)L->keep_off[l], (double)L->scalars + 16, O(C, y), (double)(x->d[2] * x->d[3]),
                 (double)x->d[1], n->p);
        else
            call(C, (int)(x->d[0] * x->d[1]), "k_mask_apply_keep_bwd", "pppppppiiilh", O(C, x), O(C, m),
                 (double)L->keep_off[l], (double)L->scalars + 16, O(C, n->in[2]), O(C, y), O(C, n->extra[0]),
                 (double)(x->d[2] * x->d[3]), (double)x->d[1], n->p);
        return 0;
    }
    case IR_COHESION:
    case IR_COUPLING: {
        int layers = n->nin - 1, mode = n->op == IR_COUPLING;
        call(C, 1, "k_fill", "pflh", O(C, y), 0.0);
        for (int l = 1; l <= layers; l++) {
            const IrValue *m = n->in[l];
            call(C, (int)(m->d[0] + 1) / 2, "k_mask_sim_rows", "pppwiilh", O(C, x), O(C, m), parts, (double)m->d[0],
                 (double)m->d[1]);
            call(C, 1, "k_mask_sim_loss", "ppirflh", parts, O(C, y), (double)m->d[0], (double)mode, 1.0 / layers);
        }
        return 0;
    }
    case IR_COHESION_GRAD:
    case IR_COUPLING_GRAD: {
        const IrValue *m = n->in[1];
        call(C, (int)m->d[0], "k_mask_sim_bwd", "ppppwiirflh", O(C, x), O(C, m), O(C, n->in[2]), O(C, y),
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
    call(&C, (int)(L->params_bytes / 4), "k_sgd", "ppppffilh", (double)L->params, (double)L->grads,
         (double)L->moments, (double)L->scalars, momentum, weight_decay, (double)nesterov);
}
