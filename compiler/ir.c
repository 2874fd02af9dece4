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
    int count[IR_NUM_OPS];     /* per-op counters for parameter names: conv1, conv2, ... */
    const NetLayer **convs;    /* conv layers seen, and the value each read, for its mask */
    IrValue **conv_in;
    int nconvs, capconvs;
} Lower;

static IrValue *value(Arena *a, IrGraph *g, int rank, const long long *d)
{
    IrValue *v = arena_alloc(a, sizeof *v);
    v->id = g->next_id++;
    v->rank = rank;
    memcpy(v->d, d, sizeof(long long) * (size_t)rank);
    return v;
}

IrNode *ir_add_node(Arena *a, IrGraph *g, IrOp op, Loc loc, int line, int nin, IrValue *const *in, int rank,
                    const long long *d)
{
    IrNode *n = arena_alloc(a, sizeof *n);
    n->op = op;
    n->loc = loc;
    n->line = line;
    n->nin = nin;
    n->in = arena_alloc(a, sizeof(IrValue *) * (size_t)(nin ? nin : 1));
    if (nin)
        memcpy(n->in, in, sizeof(IrValue *) * (size_t)nin);
    n->out = value(a, g, rank, d);
    n->out->def = n;
    vec_push(a, &g->nodes, n);
    return n;
}

IrValue *ir_add_result(Arena *a, IrGraph *g, IrNode *n, int rank, const long long *d)
{
    IrValue *v = value(a, g, rank, d);
    v->def = n;
    n->extra[n->nextra++] = v;
    return v;
}

int *ir_use_counts(Arena *a, const IrGraph *g)
{
    int *uses = arena_alloc(a, sizeof(int) * (size_t)g->next_id);
    memset(uses, 0, sizeof(int) * (size_t)g->next_id);
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *n = g->nodes.v[i];
        for (int k = 0; k < n->nin; k++)
            uses[n->in[k]->id]++;
    }
    uses[g->logits->id]++;
    if (g->loss)
        uses[g->loss->id]++;
    for (int i = 0; i < g->masks.n; i++)
        uses[((const IrValue *)g->masks.v[i])->id]++;
    for (int i = 0; i < g->probes.n; i++)
        uses[((const IrValue *)g->probes.v[i])->id]++;
    return uses;
}

const IrNode *ir_writer(const IrGraph *g, const IrValue *v)
{
    for (int i = 0; i < g->nodes.n; i++)
        if (((const IrNode *)g->nodes.v[i])->out == v)
            return g->nodes.v[i];
    return NULL;
}

long long ir_numel(const IrValue *v)
{
    long long k = 1;
    for (int i = 0; i < v->rank; i++)
        k *= v->d[i];
    return k;
}

static IrNode *node(Lower *L, IrOp op, Loc loc, int nin, IrValue **in, int rank, const long long *d)
{
    /* the line as the user knows it: the REPL's session numbers its lines as they were typed */
    return ir_add_node(L->a, L->g, op, loc, src_line_no(loc.file, loc.line), nin, in, rank, d);
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
    n->out->kind = IR_V_PARAM;
    n->out->index = L->g->params.n;
    vec_push(L->a, &L->g->params, n->out);
    return n->out;
}

static IrValue *state(Lower *L, Loc loc, int idx, const char *what, long long c)
{
    IrNode *n = node(L, IR_STATE, loc, 0, NULL, 1, &c);
    n->out->name = arena_printf(L->a, "bn%d.%s", idx, what);
    n->out->kind = IR_V_STATE;
    n->out->index = L->g->states.n;
    vec_push(L->a, &L->g->states, n->out);
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
    IrValue *in[5] = { x };
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
        in[3] = state(L, l->loc, k, "mean", l->in.d[0]);
        in[4] = state(L, l->loc, k, "var", l->in.d[0]);
        n = node(L, IR_BATCHNORM, l->loc, 5, in, r, d);
        if (L->g->training) {
            long long sd[2] = { 2, l->in.d[0] };
            ir_add_result(L->a, L->g, n, 2, sd);
        }
        return n->out;
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
        if (!L->g->training)   /* inference: the identity */
            return x;
        n = node(L, IR_DROPOUT, l->loc, 1, in, r, d);
        n->p = l->p;
        n->salt = ++L->count[IR_DROPOUT];
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
        n = node(L, IR_MASK_GEN, l->loc, 4, g, 2, md);
        if (L->g->training) {   /* what the backward pass needs: gap(x), the hidden layer, tanh */
            long long sd[2] = { L->g->batch, l->gen_in + l->hidden + l->out_ch };
            ir_add_result(L->a, L->g, n, 2, sd);
        }
        IrValue *m = n->out;
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
    g->training = train != NULL;
    long long d[IR_MAX_RANK];
    int r = batched(&L, net->in, d);
    IrNode *in = node(&L, IR_INPUT, net->item->loc, 0, NULL, r, d);
    in->out->name = "images";
    in->out->kind = IR_V_INPUT;
    g->images = in->out;
    g->logits = lower_seq(&L, &net->seq, g->images);
    if (!train)
        return g;
    IrNode *lab = node(&L, IR_INPUT, train->item->loc, 0, NULL, 1, &g->batch);
    lab->out->name = "labels";
    lab->out->kind = IR_V_INPUT;
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

const IrNode *ir_mask_apply(const IrGraph *g, int l)
{
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *n = g->nodes.v[i];
        if (n->op == IR_MASK_APPLY && n->in[1] == g->masks.v[l])
            return n;
    }
    return NULL;
}

const IrNode *ir_masked_conv(const IrGraph *g, int l)
{
    const IrNode *a = ir_mask_apply(g, l);
    const IrNode *d = a ? a->in[0]->def : NULL;
    while (d && d->op == IR_BATCHNORM)
        d = d->in[0]->def;
    return d && d->op == IR_CONV2D ? d : NULL;
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
    fprintf(out, "graph %s (batch %lld, %s, %d params)\n", g->model, g->batch, g->training ? "training" : "inference",
            g->params.n);
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *n = g->nodes.v[i];
        fprintf(out, "  %%%d", n->out->id);
        for (int j = 0; j < n->nextra; j++)
            fprintf(out, ", %%%d", n->extra[j]->id);
        fprintf(out, " = %s", ir_op_name(n->op));
        if (n->out->name)
            fprintf(out, " \"%s\"", n->out->name);
        for (int j = 0; j < n->nin; j++)
            fprintf(out, "%s%%%d", j ? ", " : " ", n->in[j]->id);
        switch (n->op) {
        case IR_CONV2D:
        case IR_CONV2D_GRAD_X:
        case IR_CONV2D_GRAD_W: fprintf(out, " {k %lld, stride %lld, pad %lld}", n->k, n->stride, n->pad); break;
        case IR_MAXPOOL:
        case IR_AVGPOOL:
        case IR_MAXPOOL_GRAD:
        case IR_AVGPOOL_GRAD: fprintf(out, " {k %lld, stride %lld}", n->k, n->stride); break;
        case IR_SPACE_TO_DEPTH:
        case IR_DEPTH_TO_SPACE: fprintf(out, " {pad %lld}", n->pad); break;
        case IR_PHASE_W:
        case IR_PHASE_W_GRAD: fprintf(out, " {k %lld}", n->k); break;
        case IR_DROPOUT:
        case IR_DROPOUT_GRAD: fprintf(out, " {p %g, salt %d}", n->p, n->salt); break;
        case IR_CONST:
        case IR_SCALE:
        case IR_COHESION_GRAD:
        case IR_COUPLING_GRAD: fprintf(out, " {%g}", n->p); break;
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
        for (int j = 0; j < n->nextra; j++) {
            fputs(", ", out);
            print_shape(out, n->extra[j]);
        }
        fprintf(out, "  ; line %d\n", n->line);
    }
    if (g->loss)
        fprintf(out, "  loss %%%d\n", g->loss->id);
    for (int i = 0; i < g->grads.n; i++) {
        const IrValue *p = g->params.v[i], *d = g->grads.v[i];
        if (d)
            fprintf(out, "  grad \"%s\" %%%d\n", p->name, d->id);
    }
    fprintf(out, "  logits %%%d\n", g->logits->id);
}
