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
typedef struct IrValue {
    int id;                    /* %id in the dump */
    int rank;
    long long d[IR_MAX_RANK];
    const char *name;          /* params and inputs: "conv1.w", "images" */
    IrNode *def;
} IrValue;

struct IrNode {
    IrOp op;
    Loc loc;                   /* the layer it came from */
    int line;                  /* where the user wrote it: the outermost block call */
    IrValue **in;
    int nin;
    IrValue *out;
    long long k, stride, pad;  /* conv2d, pools */
    double p;                  /* dropout */
    double *weights;           /* weighted_sum: one per input */
};

typedef struct IrGraph {
    const char *model;
    long long batch;
    Vec nodes;                 /* IrNode*, topological */
    Vec params;                /* IrValue* */
    IrValue *images, *labels, *logits, *loss;
    Vec masks;                 /* IrValue*: each mask_gen's output, for the losses */
} IrGraph;

const char *ir_op_name(IrOp op);
/* The number of operands an op takes; -1 when variable. */
int ir_op_arity(IrOp op);

/* Lowers a checked model for one batch size; with a train statement the graph
 * ends in its loss, as written. */
IrGraph *ir_lower(Arena *a, const Net *net, const TrainInfo *train, long long batch);
void ir_print(FILE *out, const IrGraph *g);
/* Re-derives every shape from the ops' rules; 0 when all agree, else -1 and
 * a message naming the node in err. */
int ir_verify(const IrGraph *g, char *err, size_t errlen);

#endif
