/* A checked network: the model's layers with every block expanded, masks
 * placed, arguments evaluated and shapes, parameters and FLOPs known. This is
 * what sema hands to lowering. */
#ifndef MWT_NET_H
#define MWT_NET_H
#include <stdbool.h>

#include "ast.h"

typedef struct Shape {
    int rank;              /* 1: [C]  3: [C, H, W] */
    long long d[3];
} Shape;

typedef enum {
    NET_CONV, NET_BATCHNORM, NET_RELU, NET_MAXPOOL, NET_AVGPOOL, NET_GAP, NET_FLATTEN,
    NET_LINEAR, NET_DROPOUT, NET_MASK, NET_RESIDUAL,
} NetOp;

/* Where a layer came from: the chain of block calls that produced it. */
typedef struct CallSite {
    Loc loc;
    const char *block;
    const struct CallSite *parent;
} CallSite;

typedef struct NetLayer NetLayer;
typedef struct NetSeq {
    NetLayer **v;
    int n, cap;
} NetSeq;

struct NetLayer {
    NetOp op;
    Loc loc;
    const CallSite *site;  /* NULL when written in the model itself */
    Shape in, out;
    long long out_ch, k, stride, pad;   /* conv, pools; linear: out_ch */
    bool bias;             /* conv, linear */
    double p;              /* dropout */
    long long hidden;      /* mask: the generator's hidden width */
    long long gen_in;      /* mask: the generator's input channels (the conv's input) */
    NetLayer *conv;        /* mask: the conv it masks */
    NetLayer *mask;        /* conv: its mask, if any */
    bool auto_mask;        /* mask: placed by modular { } rather than written */
    NetSeq body, shortcut; /* residual: the shortcut is empty for the identity */
    bool auto_shortcut;    /* residual: the projection was added by the compiler */
    bool want_mask;        /* conv: written inside modular { }, so a mask is placed after it */
    long long params, flops;   /* this layer's own (residual: its add) */
};

typedef struct Net {
    const char *name;
    const Item *item;
    Shape in, out;
    NetSeq seq;
    long long params, flops;
    int masked_layers;
    long long masked_kernels;
} Net;

const char *net_op_name(NetOp op);
void net_seq_push(Arena *a, NetSeq *s, NetLayer *l);
void net_seq_insert(Arena *a, NetSeq *s, int at, NetLayer *l);
/* Totals over a sequence, nested residuals included; LLONG_MAX where the
 * sum would overflow (sema_model refuses such a model). */
long long net_seq_params(const NetSeq *s);
long long net_seq_flops(const NetSeq *s);
long long shape_numel(Shape s);
/* The line a user reads for a layer: where it is written in the model's own
 * file, that is the outermost block call when it came from a block. */
int net_layer_line(const NetLayer *l);
/* "[1, 28, 28]" into buf */
const char *shape_str(Shape s, char *buf, int len);

#endif
