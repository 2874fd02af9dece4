/* Codegen's internals, shared by its files: cg.c (the switch over the
 * ops, the calls' list), cg_conv.c (which kernel runs a conv) and
 * cg_wino.c (a Winograd conv's calls). */
#ifndef MWT_CG_INT_H
#define MWT_CG_INT_H
#include "cg.h"

typedef struct Cg {
    Arena *a;
    const Plan *p;
    const char *prefix;
    CgCalls *out;
    int node;                  /* the node being generated */
    unsigned char *fused;      /* by node: a mask application the conv before it computes */
    CgCalls prep;              /* the preparation of the graph's weights (CgCalls.nprep) */
} Cg;

/* A call with nconst constants, named after the prefix and its index. */
void cg_push(Cg *C, int units, const char *kernel, const char *sig, int nconst, const double *consts);
/* A call whose constants follow the signature: one double per 'p', 'q', 'i', 'f', 'r'. */
void cg_call(Cg *C, int units, const char *kernel, const char *sig, ...);

/* A tensor's arena offset; Q's -1 where there is none. */
static inline double O(const Cg *C, const IrValue *v) { return (double)C->p->off[v->id]; }
static inline double Q(const Cg *C, const IrValue *v) { return v ? O(C, v) : -1.0; }

/* Room of its own past the arena's other tensors for the floats a
 * preparation call computes (its offset), the calls made until cg_prep_end
 * going to the graph's preparation: the steps that run before the graph's
 * first run and again after anything writes the weights. */
typedef struct {
    CgCalls *out;
    const char *prefix;
} CgPrep;

double cg_prep_begin(Cg *C, long long floats, CgPrep *saved);
void cg_prep_end(Cg *C, const CgPrep *saved);

/* Whether node n computes an inference forward (no gradient is taken of
 * it): the kernels may then be picked for the forward alone. */
int cg_inference(const Cg *C, const IrNode *n);
/* The batch x's conv chooses its kernel for (CgCalls.pin_batch). */
int cg_batch(const Cg *C, const IrValue *x);
/* Whether F(4x4, 3x3) may run at padding 1 where it pays: not under
 * MWTC_WINOGRAD=2x2 (F(2x2) always, to compare). */
int cg_wino4_on(void);
/* A Winograd conv of x (N C H W) into y with K channels, r x r kernels
 * (cg_wino.c). */
void cg_wino(Cg *C, const IrValue *x, const IrValue *w, const IrValue *b, IrValue *const *bn, const IrValue *y,
             long long K, int relu, int flip, int infer, int r, int pad);

/* The calls of a conv op (IR_CONV2D, IR_CONV2D_BN, IR_CONV2D_GRAD_X,
 * IR_CONV2D_GRAD_W): 0, or -1 for another op. */
int cg_conv(Cg *C, const IrNode *n);

#endif
