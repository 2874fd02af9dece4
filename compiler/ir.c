/* The op table, lowering from a checked network, the printer and the verifier. */
#include "ir.h"

#include <string.h>

static const struct { const char *name; int nin; } op_info[] = {
#define OP(e, name, nin, rule) { name, nin },
#include "ir_ops.def"
#undef OP
};

const char *ir_op_name(IrOp op) { return op_info[op].name; }
int ir_op_arity(IrOp op) { return op_info[op].nin; }

typedef struct Lower {
    Arena *a;
    IrGraph *g;
    int next_id;
    int count[IR_NUM_OPS];     /* per-op counters for parameter names: conv1, conv2, ... */
    const NetLayer **convs;    /* conv layers seen, and the value each read, for its mask */
    IrValue **conv_in;
    int nconvs, capconvs;
} Lower;

static IrValue *value(Lower *L, int rank, const long long *d)
{
    IrValue *v = arena_alloc(L->a, sizeof *v);
    v->id = L->next_id++;
    v->rank = rank;
    memcpy(v->d, d, sizeof(long long) * (size_t)rank);
    return v;
}

static IrNode *node(Lower *L, IrOp op, Loc loc, int nin, IrValue **in, int rank, const long long *d)
{
    IrNode *n = arena_alloc(L->a, sizeof *n);
    n->op = op;
    n->loc = loc;
    n->line = loc.line;
    n->nin = nin;
    n->in = arena_alloc(L->a, sizeof(IrValue *) * (size_t)(nin ? nin : 1));
    if (nin)
        memcpy(n->in, in, sizeof(IrValue *) * (size_t)nin);
    n->out = value(L, rank, d);
    n->out->def = n;
    vec_push(L->a, &L->g->nodes, n);
    return n;
}

/* The batch-first shape of a layer's output. */
static int batched(const Lower *L, Shape s, long long *d)
{
    d[0] = L->g->batch;
    for (int i = 0; i < s.rank; i++)
        d[i + 1] = s.d[i];
    return s.rank + 1;
}

static IrValue *param(Lower *L, Loc loc, const char *layer, int idx, const char *what, int rank, long long d0,
                      long long d1, long long d2, long long d3)
{
    long long d[4] = { d0, d1, d2, d3 };
    IrNode *n = node(L, IR_PARAM, loc, 0, NULL, rank, d);
    n->out->name = arena_printf(L->a, "%s%d.%s", layer, idx, what);
    vec_push(L->a, &L->g->params, n->out);
    return n->out;
}

static IrValue *lower_seq(Lower *L, const NetSeq *seq, IrValue *x);

static IrValue *lower_layer1(Lower *L, const NetLayer *l, IrValue *x);

/* Every node a layer makes carries the line the user wrote it on. */
static IrValue *lower_layer(Lower *L, const NetLayer *l, IrValue *x)
{
    int first = L->g->nodes.n;
    IrValue *y = lower_layer1(L, l, x);
    for (int i = first; i < L->g->nodes.n; i++) {
        IrNode *n = L->g->nodes.v[i];
        if (n->line == l->loc.line && n->loc.file == l->loc.file)
            n->line = net_layer_line(l);
    }
    return y;
}

static IrValue *lower_layer1(Lower *L, const NetLayer *l, IrValue *x)
{
    long long d[IR_MAX_RANK];
    int r = batched(L, l->out, d);
    IrValue *in[4] = { x };
    IrNode *n;
    int k;
    switch (l->op) {
    case NET_CONV:
        k = ++L->count[IR_CONV2D];
        in[1] = param(L, l->loc, "conv", k, "w", 4, l->out_ch, l->in.d[0], l->k, l->k);
        if (l->bias)
            in[2] = param(L, l->loc, "conv", k, "b", 1, l->out_ch, 0, 0, 0);
        n = node(L, IR_CONV2D, l->loc, l->bias ? 3 : 2, in, r, d);
        n->k = l->k, n->stride = l->stride, n->pad = l->pad;
        if (L->nconvs == L->capconvs) {
            int cap = L->capconvs ? 2 * L->capconvs : 16;
            const NetLayer **c = arena_alloc(L->a, sizeof *c * (size_t)cap);
            IrValue **v = arena_alloc(L->a, sizeof *v * (size_t)cap);
            if (L->nconvs) {
                memcpy(c, L->convs, sizeof *c * (size_t)L->nconvs);
                memcpy(v, L->conv_in, sizeof *v * (size_t)L->nconvs);
            }
            L->convs = c, L->conv_in = v, L->capconvs = cap;
        }
        L->convs[L->nconvs] = l;
        L->conv_in[L->nconvs++] = x;
        return n->out;
    case NET_BATCHNORM:
        k = ++L->count[IR_BATCHNORM];
        in[1] = param(L, l->loc, "bn", k, "gamma", 1, l->in.d[0], 0, 0, 0);
        in[2] = param(L, l->loc, "bn", k, "beta", 1, l->in.d[0], 0, 0, 0);
        return node(L, IR_BATCHNORM, l->loc, 3, in, r, d)->out;
    case NET_RELU: return node(L, IR_RELU, l->loc, 1, in, r, d)->out;
    case NET_MAXPOOL:
    case NET_AVGPOOL:
        n = node(L, l->op == NET_MAXPOOL ? IR_MAXPOOL : IR_AVGPOOL, l->loc, 1, in, r, d);
        n->k = l->k, n->stride = l->stride;
        return n->out;
    case NET_GAP: return node(L, IR_GAP, l->loc, 1, in, r, d)->out;
    case NET_FLATTEN: return node(L, IR_FLATTEN, l->loc, 1, in, r, d)->out;
    case NET_LINEAR:
        k = ++L->count[IR_LINEAR];
        in[1] = param(L, l->loc, "linear", k, "w", 2, l->out_ch, l->in.d[0], 0, 0);
        if (l->bias)
            in[2] = param(L, l->loc, "linear", k, "b", 1, l->out_ch, 0, 0, 0);
        return node(L, IR_LINEAR, l->loc, l->bias ? 3 : 2, in, r, d)->out;
    case NET_DROPOUT:
        n = node(L, IR_DROPOUT, l->loc, 1, in, r, d);
        n->p = l->p;
        return n->out;
    case NET_MASK: {
        /* The generator reads what its conv read; the mask scales the
         * conv's channels where the mask stands (after its batchnorm). */
        IrValue *conv_in = NULL;
        for (int i = 0; i < L->nconvs; i++)
            if (L->convs[i] == l->conv)
                conv_in = L->conv_in[i];
        k = ++L->count[IR_MASK_GEN];
        IrValue *g[4] = { conv_in, param(L, l->loc, "mask", k, "w1", 2, l->hidden, l->gen_in, 0, 0),
                          param(L, l->loc, "mask", k, "w2", 2, l->out_ch, l->hidden, 0, 0),
                          param(L, l->loc, "mask", k, "b2", 1, l->out_ch, 0, 0, 0) };
        long long md[2] = { L->g->batch, l->out_ch };
        IrValue *m = node(L, IR_MASK_GEN, l->loc, 4, g, 2, md)->out;
        vec_push(L->a, &L->g->masks, m);
        in[1] = m;
        return node(L, IR_MASK_APPLY, l->loc, 2, in, r, d)->out;
    }
    case NET_RESIDUAL: {
        IrValue *body = lower_seq(L, &l->body, x);
        IrValue *sc = l->shortcut.n ? lower_seq(L, &l->shortcut, x) : x;
        IrValue *both[2] = { body, sc };
        return node(L, IR_ADD, l->loc, 2, both, r, d)->out;
    }
    }
    return x;
}

static IrValue *lower_seq(Lower *L, const NetSeq *seq, IrValue *x)
{
    for (int i = 0; i < seq->n; i++)
        x = lower_layer(L, seq->v[i], x);
    return x;
}

IrGraph *ir_lower(Arena *a, const Net *net, const TrainInfo *train, long long batch)
{
    Lower L = { .a = a };
    IrGraph *g = L.g = arena_alloc(a, sizeof *g);
    g->model = net->name;
    g->batch = batch;
    long long d[IR_MAX_RANK];
    int r = batched(&L, net->in, d);
    IrNode *in = node(&L, IR_INPUT, net->item->loc, 0, NULL, r, d);
    in->out->name = "images";
    g->images = in->out;
    g->logits = lower_seq(&L, &net->seq, g->images);
    if (!train)
        return g;
    IrNode *lab = node(&L, IR_INPUT, train->item->loc, 0, NULL, 1, &g->batch);
    lab->out->name = "labels";
    g->labels = lab->out;
    IrValue *terms[3];
    double *w = arena_alloc(a, sizeof(double) * 3);
    int nt = 0;
    IrValue *ce_in[2] = { g->logits, g->labels };
    w[nt] = train->w_ce;
    terms[nt++] = node(&L, IR_CROSS_ENTROPY, train->item->loc, 2, ce_in, 0, d)->out;
    IrOp mwt[2] = { IR_COHESION, IR_COUPLING };
    double mw[2] = { train->w_cohesion, train->w_coupling };
    for (int t = 0; t < 2; t++) {
        if (mw[t] == 0 || g->masks.n == 0)
            continue;
        IrValue **ins = arena_alloc(a, sizeof(IrValue *) * (size_t)(g->masks.n + 1));
        ins[0] = g->labels;
        for (int i = 0; i < g->masks.n; i++)
            ins[i + 1] = g->masks.v[i];
        w[nt] = mw[t];
        terms[nt++] = node(&L, mwt[t], train->item->loc, g->masks.n + 1, ins, 0, d)->out;
    }
    IrNode *sum = node(&L, IR_WEIGHTED_SUM, train->item->loc, nt, terms, 0, d);
    sum->weights = w;
    g->loss = sum->out;
    return g;
}

static void print_shape(FILE *out, const IrValue *v)
{
    fputc('[', out);
    for (int i = 0; i < v->rank; i++)
        fprintf(out, "%s%lld", i ? ", " : "", v->d[i]);
    fputc(']', out);
}

void ir_print(FILE *out, const IrGraph *g)
{
    fprintf(out, "graph %s (batch %lld, %d params)\n", g->model, g->batch, g->params.n);
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *n = g->nodes.v[i];
        fprintf(out, "  %%%d = %s", n->out->id, ir_op_name(n->op));
        if (n->out->name)
            fprintf(out, " \"%s\"", n->out->name);
        for (int j = 0; j < n->nin; j++)
            fprintf(out, "%s%%%d", j ? ", " : " ", n->in[j]->id);
        switch (n->op) {
        case IR_CONV2D: fprintf(out, " {k %lld, stride %lld, pad %lld}", n->k, n->stride, n->pad); break;
        case IR_MAXPOOL:
        case IR_AVGPOOL: fprintf(out, " {k %lld, stride %lld}", n->k, n->stride); break;
        case IR_DROPOUT: fprintf(out, " {p %g}", n->p); break;
        case IR_WEIGHTED_SUM:
            fputs(" {", out);
            for (int j = 0; j < n->nin; j++)
                fprintf(out, "%s%g", j ? ", " : "", n->weights[j]);
            fputs("}", out);
            break;
        default: break;
        }
        fputs(" : ", out);
        print_shape(out, n->out);
        fprintf(out, "  ; line %d\n", n->line);
    }
    if (g->loss)
        fprintf(out, "  loss %%%d\n", g->loss->id);
    fprintf(out, "  logits %%%d\n", g->logits->id);
}
