/* The graph IR: values (tensors with constant shapes, the batch included)
 * and the nodes that define them, in topological order. Module masks and the
 * modularity losses are ops like any other (ir_ops.def). The printed form is
 * stable: golden tests compare it. */
#ifndef MWT_IR_H
#define MWT_IR_H
#include <stdio.h>

#include "arena.h"
#include "net.h"
#include "sema.h"

typedef enum {
#define OP(e, name, nin, rule) IR_##e,
#include "ir_ops.def"
#undef OP
    IR_NUM_OPS
} IrOp;

enum { IR_MAX_RANK = 4, IR_MAX_IN = 64 };

typedef struct IrNode IrNode;
/* What a value holds, for the memory plan: parameters, their gradients and
 * optimizer state, and the model's kept state persist across steps; inputs
 * are written by the runtime before each step; temporaries live from their
 * definition to their last use. */
typedef enum { IR_V_TEMP, IR_V_PARAM, IR_V_STATE, IR_V_INPUT, IR_V_GRAD } IrValueKind;

typedef struct IrValue {
    int id;                    /* %id in the dump */
    int rank;
    long long d[IR_MAX_RANK];
    const char *name;          /* params, states and inputs: "conv1.w", "bn1.mean", "images" */
    IrValueKind kind;
    int index;                 /* params: position in IrGraph.params; grads: their param's */
    IrNode *def;
} IrValue;

struct IrNode {
    IrOp op;
    Loc loc;                   /* the layer it came from */
    int line;                  /* where the user wrote it: the outermost block call */
    IrValue **in;
    int nin;
    IrValue *out;
    IrValue *extra[3];         /* further results: batchnorm's stats, the bias gradient, ... */
    int nextra;
    long long k, stride, pad;  /* conv2d, pools, and their gradients */
    double p;                  /* dropout (and its gradient): the drop probability; const, scale: the value */
    int salt;                  /* dropout: which one, so each draws its own elements */
    double *weights;           /* weighted_sum: one per input */
};

typedef struct IrGraph {
    const char *model;
    long long batch;
    int training;              /* batchnorm on batch statistics, dropout active, ends in the loss */
    Vec nodes;                 /* IrNode*, topological */
    Vec params;                /* IrValue* */
    Vec states;                /* IrValue*: running statistics */
    int next_id;               /* the next value's %id */
    Vec grads;                 /* IrValue*, after autodiff: the gradient of params.v[i] (NULL: none) */
    IrValue *images, *labels, *logits, *loss;
    Vec masks;                 /* IrValue*: each mask_gen's output, for the losses */
    Vec probes;                /* IrValue*: read by the runtime after a step besides the logits and masks (run_variants.c) */
    int *origin;               /* after pass_fuse: by node, the index of the source graph's node it stands for */
    int exports_prefix;        /* a whole model's: modules read the values of the nodes before its first
                                  mask_apply from its runs (run_modules); compiled as written (run_model.c) */
} IrGraph;

const char *ir_op_name(IrOp op);
/* The number of operands an op takes; -1 when variable. */
int ir_op_arity(IrOp op);

/* Lowers a checked model for one batch size. With a train statement the graph
 * is in training mode and ends in its loss, as written; without, it is the
 * inference graph (batchnorm on running statistics, no dropout). */
IrGraph *ir_lower(Arena *a, const Net *net, const TrainInfo *train, long long batch);

/* For passes: a new node appended to g (its result a fresh temporary of the
 * given shape) and a further result on it. */
IrNode *ir_add_node(Arena *a, IrGraph *g, IrOp op, Loc loc, int line, int nin, IrValue *const *in, int rank,
                    const long long *d);
IrValue *ir_add_result(Arena *a, IrGraph *g, IrNode *n, int rank, const long long *d);
/* The mask_apply that scales mask l's channels, and the conv those channels
 * are (back through its batchnorm); NULL when there is none. */
const IrNode *ir_mask_apply(const IrGraph *g, int l);
const IrNode *ir_masked_conv(const IrGraph *g, int l);
/* The number of elements of a value. */
/* By value id, how many times g reads each value; the logits, the loss,
 * the masks and the probes count as read by the runtime. */
int *ir_use_counts(Arena *a, const IrGraph *g);
/* The node of g that writes v: in a fused graph not always v->def, which
 * stays the source graph's (pass_fuse). */
const IrNode *ir_writer(const IrGraph *g, const IrValue *v);
long long ir_numel(const IrValue *v);

/* Autodiff (pass_autodiff.c): appends the backward pass of a training graph,
 * from its loss to every parameter's gradient (g->grads). 0, or -1 and a
 * message. */
int pass_autodiff(Arena *a, IrGraph *g, char *err, size_t errlen);
void ir_print(FILE *out, const IrGraph *g);
/* Fusion (pass_fuse.c): the graph to compile for g. In an inference graph
 * conv -> batchnorm (-> relu) becomes one conv2d_bn node; the result shares
 * g's values, and g is left as it was. A training graph comes back as is. */
IrGraph *pass_fuse(Arena *a, const IrGraph *g);
/* Moves each masked conv of an inference graph (and the batchnorm after
 * it) to after its mask's generator, which reads only the conv's input,
 * where nothing between them reads what moves: then the conv knows its
 * mask (cg_wino.c's part kernels). */
void pass_gens_first(IrGraph *g);
/* Phases (pass_phase.c): g, or a copy whose 5x5 stride-2 convs, where
 * the 3x3 conv over their input's phases runs in the Winograd kernels, are
 * that conv between space_to_depth and phase_weights (their gradients
 * likewise); values and origin as pass_fuse's. */
IrGraph *pass_phase(Arena *a, const IrGraph *g, int simd);
/* g with a node order of its own to change (and an origin: g's indices). */
IrGraph *ir_copy_order(Arena *a, const IrGraph *g);
/* Re-derives every shape from the ops' rules; 0 when all agree, else -1 and
 * a message naming the node in err. */
int ir_verify(const IrGraph *g, char *err, size_t errlen);

#endif
