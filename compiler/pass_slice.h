/* module_slice: the graph of one module, with physically smaller tensors.
 * A masked conv keeps only its module's output channels; every layer after
 * it reads only the channels that are left (the next conv's input
 * channels, batchnorm's statistics, the first linear layer's columns); a mask
 * generator keeps the rows of its module's kernels and reads only the
 * channels left (a removed channel would enter it as a zero). The result is
 * an ordinary IrGraph: the same planner and codegen compile it. */
#ifndef MWT_PASS_SLICE_H
#define MWT_PASS_SLICE_H
#include "ir.h"

/* One of the module's parameters or states, and where it comes from: its
 * element at position (i0, i1, ...) is the source's at (idx[0][i0], idx[1][i1],
 * ...); idx[k] NULL keeps dimension k whole. */
typedef struct SliceTensor {
    const IrValue *src, *dst;
    const int *idx[IR_MAX_RANK];
} SliceTensor;

/* A module that starts after the nodes every module shares reads what they
 * computed as inputs: dst[b][j] = src[b][idx[j]] along the channels
 * (idx NULL: all of them, as they are). */
typedef struct SliceInput {
    const IrValue *src, *dst;
    const int *idx;
} SliceInput;

typedef struct Slice {
    IrGraph *g;                /* the module's inference graph */
    SliceInput *inputs;        /* with `from` > 0: what it reads from the source's nodes before `from` */
    int ninputs;
    SliceTensor *params;       /* by the module's parameter index */
    SliceTensor *states;       /* by the module's state index */
    unsigned char *keep;       /* per kernel of the module's masks, in mask order: 1, or 0 for a channel
                                  left in only so that the two operands of a residual add agree */
    long long kernels;         /* the kernels of the module graph's masks */
    long long *src_kernel;     /* by such kernel: its index among the source's masked kernels */
    long long kept;            /* the source's kernels the module keeps, all layers */
    int widened;               /* layers that carry switched-off channels */
    int dropped;               /* layers whose generator (and mask) were left out */
} Slice;

/* Slices graph g to the module keep (per masked kernel of g, in
 * mask order, 1 = kept): an inference graph, or a training graph before
 * autodiff (without the mask losses, which read every kernel), which
 * autodiff then differentiates as the module's own (a reuse fine-tunes the
 * smaller network). From node `from` on (0: all of it; see
 * slice_shared_end). drop_generators: leave the mask generators out (the
 * cheaper module that `generators = drop` asks for; its masks are 1); else
 * they stay, and the runtime's flag may still turn them off (a slice that
 * evaluates several modules inside it, by keep vectors, needs them). 0, or
 * -1 and a message. */
int pass_slice(Arena *a, const IrGraph *g, const unsigned char *keep, int from, int drop_generators, Slice *s,
               char *err, size_t errlen);

/* The nodes of g before this index compute the same in every module, up to
 * which channels a module takes (nothing before the first mask_apply depends
 * on the kernels switched off): run once for many modules, they feed each
 * module's slice from this node on. */
int slice_shared_end(const IrGraph *g);

/* The keep vector, in the module's kernels, of a smaller module `keep` (per
 * masked kernel of the source) inside this one: a slice made for the union of
 * several modules evaluates each of them, its other kernels switched off. */
void slice_keep(const Slice *s, const unsigned char *keep, unsigned char *out);

/* Copies the module's tensor t out of its source's data; and back into it
 * (the source's other elements left as they are). */
void slice_gather(const SliceTensor *t, const float *src, float *dst);
void slice_scatter(const SliceTensor *t, const float *mod, float *src);

#endif
