/* Codegen of a Winograd conv (cg_conv.c chose it): its kernel, F(4x4) or
 * F(2x2); in inference its weights transformed beforehand where that pays,
 * and the part kernels that compute only the rows the graph reads and
 * leave the channels a module's or a sweep's masks switch off out of
 * their sums. */
#include <stdlib.h>
#include <string.h>

#include "cg_int.h"
#include "k_kernels.h"

int cg_wino4_on(void)
{
    const char *e = getenv("MWTC_WINOGRAD");
    return !(e && !strcmp(e, "2x2"));
}

/* F(4x4, 3x3) (k_wino4.c) for a Winograd conv of x where it pays, else
 * F(2x2, 3x3); MWTC_WINOGRAD=2x2 always F(2x2) (to compare). */
static int cg_wino4(const Cg *C, const IrValue *x, int infer)
{
    if (!cg_wino4_on())
        return 0;
    if (!infer)
        return k_wino4_pays((int)x->d[3]);
    return k_wino4_infer_pays(cg_batch(C, x), (int)x->d[1], (int)x->d[2], (int)x->d[3], C->p->L->simd);
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
                long long rh = (n->out->d[2] - 1) * n->stride - n->pad + n->k,
                          rw = (n->out->d[3] - 1) * n->stride - n->pad + n->k;
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

/* A Winograd inference conv's transformed weights, computed once by a
 * preparation call (k_conv2d_wino_prep), rather than on every call: the
 * conv's batchnorm and weights do not change from one inference to the
 * next. Its offset. */
static double prepared(Cg *C, const char *kernel, const IrValue *x, const IrValue *w, const IrValue *b,
                       IrValue *const *bn, long long K)
{
    int cin = (int)x->d[1], simd = C->p->L->simd, f4 = strcmp(kernel, "k_conv2d_wino") != 0;   /* 6x6 tiles */
    CgPrep saved;
    long long floats = f4 ? k_wino4_pre_floats(cin, (int)K, simd) : k_wino_pre_floats(cin, (int)K, simd);
    double at = cg_prep_begin(C, floats, &saved);
    cg_call(C, k_wino_pre_units((int)K, simd), arena_printf(C->a, "%s_prep", kernel), "pqqqqqpwiiifilh", O(C, w),
            Q(C, b), Q(C, bn ? bn[0] : NULL), Q(C, bn ? bn[1] : NULL), Q(C, bn ? bn[2] : NULL), Q(C, bn ? bn[3] : NULL),
            at, (double)cin, (double)K, 0.0, 1e-5, (double)simd);
    cg_prep_end(C, &saved);
    return at;
}

/* A training conv's transformed weights (its data gradient's flipped),
 * made by all threads into the parts' room just before the conv's call,
 * which every thread then reads: without it each thread transformed all
 * of the weights for its own images, twice the work on two threads, and
 * two copies of U (16 MB each at 512 -> 512) in the caches. The room is
 * the graph's per-node scratch (plan.h), there where the layer's weight
 * gradient is in the graph: its chunks' sums take 8 x 9 floats a kernel,
 * U 16 (F(2x2)) or 36. Its offset, or -1 where it does not fit or one
 * thread runs the call. */
static double shared(Cg *C, const char *kernel, const IrValue *x, const IrValue *w, const IrValue *b,
                     long long K, int flip, int groups)
{
    const PlanLayout *L = C->p->L;
    int cin = (int)x->d[1], f4 = strcmp(kernel, "k_conv2d_wino") != 0;
    long long floats = f4 ? k_wino4_pre_floats(cin, (int)K, L->simd) : k_wino_pre_floats(cin, (int)K, L->simd);
    if (groups > 1 || C->out->threads < 2 || floats * 4 > L->parts_bytes)
        return -1;
    cg_call(C, k_wino_pre_units((int)K, L->simd), arena_printf(C->a, "%s_prep", kernel), "pqnnnnpwiiifilh", O(C, w),
            Q(C, b), (double)L->parts, (double)cin, (double)K, (double)flip, 1e-5, (double)L->simd);
    return (double)L->parts;
}

/* A Winograd conv of x (N C H W) into y with K channels, r x r kernels (3:
 * F(4x4) or F(2x2), 5: F(2x2, 5x5)), its bias and inference batchnorm
 * optional ('q'), its batch and flip given at run time ('r'): the forward,
 * the data gradient and the inference conv of a layer of one shape then
 * share one compiled body (jit.h). */
void cg_wino(Cg *C, const IrValue *x, const IrValue *w, const IrValue *b, IrValue *const *bn, const IrValue *y,
                 long long K, int relu, int flip, int infer, int r, int pad)
{
    const char *kernel = r == 5                           ? "k_conv2d_wino25"
                         : pad != 1 || cg_wino4(C, x, infer) ? "k_conv2d_wino4"
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
     * where the keep vectors keep every channel). A training conv's before
     * each call, once for all threads. */
    double pre = -1;
    if (infer && !flip && !(probes && (ik >= 0 || ok >= 0)) &&
        k_wino_pre_pays(cg_batch(C, x), (int)x->d[2], (int)x->d[3], four && r == 3))
        pre = prepared(C, four ? kernel : "k_conv2d_wino", x, w, b, bn, K);
    else if (!infer)
        pre = shared(C, kernel, x, w, b, K, flip, groups);
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
        cg_push(C, (int)x->d[0] * groups, part, arena_strdup(C->a, sig), nc + (int)(sizeof rest / sizeof *rest), c);
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
    cg_push(C, (int)x->d[0] * groups, kernel, padded ? "ppqqqqqqpwriiiiifiriilh" : "ppqqqqqqpwriiiifiriilh",
            nc + (int)(sizeof rest / sizeof *rest), c);
}
