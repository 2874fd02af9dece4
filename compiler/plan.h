/* The static memory plan: every tensor of a model's training and inference
 * graphs at a fixed byte offset in one arena, decided before any code is
 * generated, so the generated code addresses tensors as base + constant and
 * the training loop allocates nothing.
 *
 *   params | states | grads (mirror of params) | moments (mirror) | scalars | keep |
 *   parts (weight-gradient partial sums, row losses) | work (inputs, temporaries)
 *
 * The persistent regions are shared by every graph of a model (a parameter
 * lives at one place whatever graph reads it); each graph plans its own
 * temporaries from `work`, reusing a buffer once its last reader has run.
 * The graphs never run at the same time, so their work areas overlap. */
#ifndef MWT_PLAN_H
#define MWT_PLAN_H
#include "ir.h"

enum { PLAN_ALIGN = 64 };

typedef struct PlanLayout {
    int nparams, nstates;
    long long *param_off, *state_off;   /* by index */
    long long params, params_bytes;
    long long states, states_bytes;
    int train;                          /* the model trains: grads and moments are there */
    long long grads, moments;           /* params' mirrors: grads + (param_off - params); empty without train */
    long long scalars;                  /* float lr at +0, uint64 dropout seed at +8, int32 generators on at +16 */
    int nmasks;
    long long *keep_off;                /* by mask: which of its kernels a module keeps (1) or switches off (0) */
    long long parts, parts_bytes;
    long long work;
    long long size;                     /* bytes of the whole arena: the largest graph's end */
    long long prepared;                 /* from here to size: what the preparation calls compute
                                           from the weights (cg.h CgCalls.nprep), at a graph's first run */
    long long ws_floats;                /* per-thread scratch of the largest kernel */
    int simd;                           /* the host's vector width in floats */
} PlanLayout;

typedef struct Plan {
    const IrGraph *g;
    PlanLayout *L;
    long long *off;                     /* by value id: the byte offset of each value */
    long long work_bytes;               /* this graph's peak work area */
} Plan;

/* The chunks a weight gradient's batch sum is split into (k_conv2d_bwd_w's G):
 * fixed by the batch, never by the thread count. */
int plan_chunks(long long batch);
/* The persistent layout of `g`'s parameters and states (the training graph,
 * or any graph of the model: they have the same parameters in the same order).
 * Without `train` (a model that only infers: modules, modularize's model,
 * eval) the gradients and moments take no room: they would double an
 * arena's size twice over for nothing. */
PlanLayout *plan_layout(Arena *a, const IrGraph *g, int simd, int train);
/* Places g's values; grows the layout's parts, scratch and size to fit. */
Plan *plan_graph(Arena *a, PlanLayout *L, const IrGraph *g);

#endif
