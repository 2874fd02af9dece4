/* Codegen of the convs: which kernel computes a conv, its data gradient
 * and its weight gradient (the direct kernels, Winograd F(2x2), F(4x4) and
 * F(2x2, 5x5), the small planes' GEMMs and dot products), each choice
 * measured (the comments say where), and the calls that run it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_int.h"
#include "k_kernels.h"

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
int cg_inference(const Cg *C, const IrNode *n)
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
    return (cg_inference(C, n) ? infer : train)((int)x->d[1], (int)x->d[2], (int)x->d[3], (int)K, (int)n->k, (int)n->k,
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
           (!cg_inference(C, n) || k_wino4_pad_pays((int)x->d[1], (int)x->d[2], (int)x->d[3], (int)K, C->p->L->simd));
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
int cg_batch(const Cg *C, const IrValue *x)
{
    return C->out->pin_batch > 0 ? C->out->pin_batch : (int)x->d[0];
}

/* Which convs take k_small.c's kernels, by what they ask of them. */
typedef enum {
    SMALL_PLANES,     /* k_small_ok's (VGG16's 4x4 and 2x2 stages): every kernel of k_small.c and k_small_pix.c */
    SMALL_STRIDED,    /* and k_small_strided_ok's stride-2 4x4 and 5x5 convs: k_small.c's GEMMs */
    SMALL_STRIDED_DX, /* and k_small_strided_dx_ok's stride-2 3x3 convs: the data gradient's GEMMs */
} SmallKind;

/* Whether a conv of x [N,C,H,W] into y [N,K,OH,OW] has small planes of
 * that kind; MWTC_SMALL=off keeps them all on the other kernels, to
 * compare. */
static int small_planes(const IrValue *x, const IrValue *y, const IrNode *n, SmallKind kind)
{
    const char *e = getenv("MWTC_SMALL");
    if ((e && !strcmp(e, "off")) || x->rank != 4)
        return 0;
    int c = (int)x->d[1], h = (int)x->d[2], w = (int)x->d[3], k = (int)y->d[1], r = (int)n->k, st = (int)n->stride;
    int pad = (int)n->pad, oh = (int)y->d[2], ow = (int)y->d[3];
    return k_small_ok(c, h, w, k, r, r, st, pad, oh, ow) ||
           (kind >= SMALL_STRIDED && k_small_strided_ok(c, h, w, k, r, r, st, pad, oh, ow)) ||
           (kind >= SMALL_STRIDED_DX && k_small_strided_dx_ok(c, h, w, k, r, r, st, pad, oh, ow));
}

/* k_small.c's GEMMs per output pixel for such a conv, the strided ones
 * too, training's or inference's (from a tile of images). */
static int use_small(const Cg *C, const IrValue *x, const IrValue *y, const IrNode *n)
{
    return small_planes(x, y, n, SMALL_STRIDED) &&
           !(cg_inference(C, n) && !k_small_batch_ok(cg_batch(C, x), C->p->L->simd));
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
    return small_planes(x, y, n, SMALL_PLANES) && cg_inference(C, n) &&
           !k_small_batch_ok(cg_batch(C, x), C->p->L->simd);
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
    return small_planes(x, y, n, SMALL_PLANES) && cg_inference(C, n) && k_small_pix_ok(cg_batch(C, x), simd) &&
           !k_small_batch_ok(cg_batch(C, x), simd);
}

/* k_small.c's units for a forward or data gradient from `in` (its
 * images, channels and pixels) into `rows` channels through `wf` floats of
 * weights, and in *split whether they split by the images (k_small_split:
 * many threads, or an input larger than the weights). */
static int small_units(const Cg *C, const IrValue *in, long long rows, long long wf, int *split)
{
    int simd = C->p->L->simd, u = k_small_units((int)rows, simd);
    *split = k_small_split(u, C->out->threads, (int)in->d[0], (long)(in->d[1] * in->d[2] * in->d[3]), (long)wf, simd);
    return *split ? u * k_small_cols((int)in->d[0], simd) : u;
}

/* k_conv2d_small's 11 shape constants: the conv's (N C H W K R S stride
 * pad OH OW), of x into y (CONV_SHAPE's). */
#define SMALL_SHAPE(x, y, n) CONV_SHAPE(x, y, n)

/* A small-plane inference conv's weights as k_conv2d_small_pix reads them
 * (scaled by its batchnorm, with the folded bias), laid out once by a
 * preparation call (k_conv2d_small_prep). Its offset. */
static double prepared_small(Cg *C, const IrValue *x, const IrValue *w, const IrValue *b, IrValue *const *bn,
                             const IrValue *y, const IrNode *n)
{
    int cin = (int)x->d[1], K = (int)y->d[1], simd = C->p->L->simd;
    CgPrep saved;
    double at = cg_prep_begin(C, k_small_pre_floats(cin, K, (int)n->k, (int)n->k, simd), &saved);
    cg_call(C, k_small_pre_units(K, simd), "k_conv2d_small_prep", "pqqqqqpiiiifilh", O(C, w), Q(C, b),
            Q(C, bn ? bn[0] : NULL), Q(C, bn ? bn[1] : NULL), Q(C, bn ? bn[2] : NULL), Q(C, bn ? bn[3] : NULL), at,
            (double)cin, (double)K, (double)n->k, (double)n->k, 1e-5, (double)simd);
    cg_prep_end(C, &saved);
    return at;
}

/* The forward of such a conv from its prepared weights. */
static void small_pix(Cg *C, const IrValue *x, const IrValue *b, IrValue *const *bn, const IrValue *y,
                      const IrNode *n, int relu)
{
    double pre = prepared_small(C, x, n->in[1], b, bn, y, n);
    cg_call(C, k_small_pre_units((int)y->d[1], C->p->L->simd), "k_conv2d_small_pix", "pppwiiiiiiiiiiiiilh", O(C, x),
            pre, O(C, y), SMALL_SHAPE(x, y, n), (double)relu, (double)C->p->L->simd);
}

/* The 5 shape constants of k_conv2d_wino_bwd_w: N C H W K. */
#define WINO_SHAPE(x, K) (double)(x)->d[0], (double)(x)->d[1], (double)(x)->d[2], (double)(x)->d[3], (double)(K)

int cg_conv(Cg *C, const IrNode *n)
{
    const PlanLayout *L = C->p->L;
    const IrValue *x = n->in[0], *y = n->out;
    double simd = L->simd, parts = (double)L->parts;
    switch (n->op) {
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
            cg_call(C, units, "k_conv2d_small_dot", "ppqqqqqpwiiiiiiiiiiifiilh", O(C, x), O(C, n->in[1]),
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
            int split, units = small_units(C, x, y->d[1], ir_numel(n->in[1]), &split);
            if (n->nin == 3)
                cg_call(C, units, "k_conv2d_small", "ppppwiiiiiiiiiiiiiilh", O(C, x), O(C, n->in[1]), O(C, n->in[2]),
                        O(C, y), SMALL_SHAPE(x, y, n), 0.0, (double)split, simd);
            else
                cg_call(C, units, "k_conv2d_small", "ppnpwiiiiiiiiiiiiiilh", O(C, x), O(C, n->in[1]), O(C, y),
                        SMALL_SHAPE(x, y, n), 0.0, (double)split, simd);
            return 0;
        }
        if (wino_ok) {
            cg_wino(C, x, n->in[1], n->nin == 3 ? n->in[2] : NULL, NULL, y, y->d[1], 0, 0, cg_inference(C, n), 3, 1);
            return 0;
        }
        if (use_wino4p(C, x, y->d[1], n)) {
            cg_wino(C, x, n->in[1], n->nin == 3 ? n->in[2] : NULL, NULL, y, y->d[1], 0, 0, cg_inference(C, n), 3,
                 (int)n->pad);
            return 0;
        }
        if (use_wino25(C, x, y->d[1], n)) {
            cg_wino(C, x, n->in[1], n->nin == 3 ? n->in[2] : NULL, NULL, y, y->d[1], 0, 0, cg_inference(C, n), 5,
                 (int)n->pad);
            return 0;
        }
        double kt = conv_groups(C, x, y);
        int units = (int)(kt * (double)(x->d[0] * y->d[2]));
        if (n->nin == 3)
            cg_call(C, units, "k_conv2d_fwd", "ppppwiiiiiiiiiiiiilh", O(C, x), O(C, n->in[1]), O(C, n->in[2]), O(C, y),
                    CONV_SHAPE(x, y, n), kt, simd);
        else
            cg_call(C, units, "k_conv2d_fwd", "ppnpwiiiiiiiiiiiiilh", O(C, x), O(C, n->in[1]), O(C, y),
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
            cg_call(C, units, "k_conv2d_small_dot", "ppqpppppwiiiiiiiiiiifiilh", O(C, x), O(C, n->in[1]),
                    Q(C, n->nin == 7 ? n->in[2] : NULL), O(C, n->in[g0]), O(C, n->in[g0 + 1]), O(C, n->in[g0 + 2]),
                    O(C, n->in[g0 + 3]), O(C, y), SMALL_SHAPE(x, y, n), 1e-5, n->p, simd);
            return 0;
        }
        if (use_wino(C, x, y->d[1], n)) {
            cg_wino(C, x, n->in[1], n->nin == 7 ? n->in[2] : NULL, &n->in[g0], y, y->d[1], (int)n->p, 0, 1, 3, 1);
            return 0;
        }
        if (use_small(C, x, y, n)) {   /* after Winograd, as IR_CONV2D's inference */
            int split, units = small_units(C, x, y->d[1], ir_numel(n->in[1]), &split);
            cg_call(C, units, "k_conv2d_small_bn", "ppqpppppwiiiiiiiiiiifiiilh", O(C, x), O(C, n->in[1]),
                    Q(C, n->nin == 7 ? n->in[2] : NULL), O(C, n->in[g0]), O(C, n->in[g0 + 1]), O(C, n->in[g0 + 2]),
                    O(C, n->in[g0 + 3]), O(C, y), SMALL_SHAPE(x, y, n), 1e-5, n->p, (double)split, simd);
            return 0;
        }
        if (use_wino4p(C, x, y->d[1], n)) {   /* after the small planes' kernels, as IR_CONV2D's */
            cg_wino(C, x, n->in[1], n->nin == 7 ? n->in[2] : NULL, &n->in[g0], y, y->d[1], (int)n->p, 0, 1, 3,
                 (int)n->pad);
            return 0;
        }
        if (use_wino25(C, x, y->d[1], n)) {   /* after the small planes' kernels, as IR_CONV2D's */
            cg_wino(C, x, n->in[1], n->nin == 7 ? n->in[2] : NULL, &n->in[g0], y, y->d[1], (int)n->p, 0, 1, 5,
                 (int)n->pad);
            return 0;
        }
        double kt = conv_groups(C, x, y);
        int units = (int)(kt * (double)(x->d[0] * y->d[2]));
        if (n->nin == 7)
            cg_call(C, units, "k_conv2d_bn_fwd", "ppppppppwiiiiiiiiiiifiiilh", O(C, x), O(C, n->in[1]), O(C, n->in[2]),
                    O(C, n->in[g0]), O(C, n->in[g0 + 1]), O(C, n->in[g0 + 2]), O(C, n->in[g0 + 3]), O(C, y),
                    CONV_SHAPE(x, y, n), 1e-5, n->p, kt, simd);
        else
            cg_call(C, units, "k_conv2d_bn_fwd", "ppnpppppwiiiiiiiiiiifiiilh", O(C, x), O(C, n->in[1]), O(C, n->in[g0]),
                    O(C, n->in[g0 + 1]), O(C, n->in[g0 + 2]), O(C, n->in[g0 + 3]), O(C, y), CONV_SHAPE(x, y, n), 1e-5,
                    n->p, kt, simd);
        return 0;
    }
    case IR_CONV2D_GRAD_X: /* x = dy, y = dx */
        /* dx: per pixel of it, a GEMM over the pixels of dy that read it,
         * for the strided 3x3 convs' planes too (a gradient op: no
         * inference batch to check); Winograd first where both apply, as
         * the forward's */
        if (small_planes(y, x, n, SMALL_STRIDED_DX) && !use_wino(C, y, x->d[1], n)) {
            int split, units = small_units(C, x, y->d[1], ir_numel(n->in[1]), &split);
            cg_call(C, units, "k_conv2d_small", "ppnpwiiiiiiiiiiiiiilh", O(C, x), O(C, n->in[1]), O(C, y),
                    SMALL_SHAPE(y, x, n), 1.0, (double)split, simd);
            return 0;
        }
        if (use_wino(C, y, x->d[1], n)) {   /* dx: the conv of dy with the kernels flipped */
            cg_wino(C, x, n->in[1], NULL, NULL, y, y->d[1], 0, 1, 0, 3, 1);
            return 0;
        }
        if (use_wino4p(C, y, x->d[1], n)) {
            cg_wino(C, x, n->in[1], NULL, NULL, y, y->d[1], 0, 1, 0, 3, 2 - (int)n->pad);
            return 0;
        }
        if (use_wino25(C, y, x->d[1], n)) {
            cg_wino(C, x, n->in[1], NULL, NULL, y, y->d[1], 0, 1, 0, 5, 4 - (int)n->pad);
            return 0;
        }
        cg_call(C, (int)y->d[0], "k_conv2d_bwd_x", "pppwiiiiiiiiiiiilh", O(C, x), O(C, n->in[1]), O(C, y),
                CONV_SHAPE(y, x, n), simd);
        return 0;
    case IR_CONV2D_GRAD_W: {
        const IrValue *dy = n->in[1];
        if (use_small(C, x, dy, n)) {   /* whole sums, written: no parts to add */
            int sl = k_small_bwd_w_slices((int)x->d[0], (int)x->d[1], (int)x->d[2], (int)x->d[3], (int)dy->d[1],
                                          (int)dy->d[2], (int)dy->d[3], L->simd, C->out->threads);
            int units = k_small_units((int)dy->d[1], L->simd) * sl;
            if (n->nextra)
                cg_call(C, units, "k_conv2d_small_bwd_w", "ppppwiiiiiiiiiiiiilh", O(C, x), O(C, dy), O(C, y),
                        O(C, n->extra[0]), SMALL_SHAPE(x, dy, n), (double)sl, simd);
            else
                cg_call(C, units, "k_conv2d_small_bwd_w", "pppnwiiiiiiiiiiiiilh", O(C, x), O(C, dy), O(C, y),
                        SMALL_SHAPE(x, dy, n), (double)sl, simd);
            return 0;
        }
        /* G chunks of the batch (the order of the sums), each cut into CS
         * parts of its input channels when there are more threads than chunks */
        int G = plan_chunks(x->d[0]), CS = k_bwdw_splits((int)x->d[1], G, C->out->threads), u = G * CS;
        long long nw = ir_numel(y), nb = n->nextra ? ir_numel(n->extra[0]) : 0;
        double dbpart = parts + 4.0 * (double)(G * nw);
        int w25 = use_wino25(C, x, dy->d[1], n) &&
                  k_wino25_bwd_w_ok((int)x->d[1], (int)x->d[2], (int)x->d[3], (int)dy->d[1], (int)n->pad);
        /* x made by space_to_depth: a stride-2 5x5 conv's weight gradient through its phases */
        int (*w4ok)(int, int, int, int, int) =
            x->def && x->def->op == IR_SPACE_TO_DEPTH ? k_wino4_bwd_w_phases_ok : k_wino4_bwd_w_ok;
        int w4p = use_wino4p(C, x, dy->d[1], n) &&
                  w4ok((int)x->d[1], (int)x->d[2], (int)x->d[3], (int)dy->d[1], (int)n->pad);
        int bw = use_wino(C, x, dy->d[1], n) ? k_wino_bwd_w_pick((int)x->d[1], (int)x->d[2], (int)x->d[3],
                                                                 (int)dy->d[1], L->simd, cg_wino4_on())
                                             : 0;
        int wino = w25 || w4p || bw;
        const char *wk = w25              ? "k_conv2d_wino25_bwd_w"
                         : w4p || bw == 4 ? "k_conv2d_wino4_bwd_w"
                                          : "k_conv2d_wino_bwd_w";
        /* F(4x4) and F(2x2, 5x5) take the conv's padding */
        int padded = wino && strcmp(wk, "k_conv2d_wino_bwd_w") != 0;
        if (padded && nb)
            cg_call(C, u, wk, "ppppwiiiiiiiiilh", O(C, x), O(C, dy), parts, dbpart, WINO_SHAPE(x, dy->d[1]),
                    (double)n->pad, (double)G, (double)CS, simd);
        else if (padded)
            cg_call(C, u, wk, "pppnwiiiiiiiiilh", O(C, x), O(C, dy), parts, WINO_SHAPE(x, dy->d[1]), (double)n->pad,
                    (double)G, (double)CS, simd);
        else if (wino && nb)
            cg_call(C, u, wk, "ppppwiiiiiiiilh", O(C, x), O(C, dy), parts, dbpart, WINO_SHAPE(x, dy->d[1]), (double)G,
                    (double)CS, simd);
        else if (wino)
            cg_call(C, u, wk, "pppnwiiiiiiiilh", O(C, x), O(C, dy), parts, WINO_SHAPE(x, dy->d[1]), (double)G,
                    (double)CS, simd);
        else if (nb)
            cg_call(C, u, "k_conv2d_bwd_w", "ppppwiiiiiiiiiiiiiilh", O(C, x), O(C, dy), parts, dbpart,
                    CONV_SHAPE(x, dy, n), (double)G, (double)CS, simd);
        else
            cg_call(C, u, "k_conv2d_bwd_w", "pppnwiiiiiiiiiiiiiilh", O(C, x), O(C, dy), parts, CONV_SHAPE(x, dy, n),
                    (double)G, (double)CS, simd);
        cg_call(C, (int)nw, "k_sum_parts", "ppirlh", parts, O(C, y), (double)G, (double)nw);
        if (nb)
            cg_call(C, (int)nb, "k_sum_parts", "ppirlh", dbpart, O(C, n->extra[0]), (double)G, (double)nb);
        return 0;
    }
    default:
        return -1;
    }
}
