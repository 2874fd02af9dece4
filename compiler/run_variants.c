/* Many variants of each module on the same images (run.h): the threshold
 * sweep runs every class's module at ten thresholds, each a keep vector
 * inside the slice of the class's largest. Consecutive variants differ in
 * a few kernels, and an image often gives those kernels nothing to pass on
 * (their mask is 0 for it, or the relu after them cuts every value): then
 * the next variant computes, for that image, exactly what the last one did,
 * to the bit, and its scores are copied instead. The images that must run
 * again are packed into full batches, from the shared nodes' outputs kept
 * for a chunk of images.
 *
 * Why it is exact: a variant that switches kernel j off zeroes j's channel
 * where the mask applies it; the ops after it on that channel alone (relu,
 * pools, gap, dropout at inference) keep a zero a zero, up to the first
 * value that another op reads (the probe). If the last variant left that
 * probe channel all zeros on the image, every reader sees the same values
 * as before; layer by layer, then, every input, every mask and the scores
 * are the same. A kernel switched on again is always run. */
/* Each module's variants run on one thread, the modules dealt to the
 * threads (run_modules_each): a module's pending images depend on its own
 * last variant, never on another module's. */
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the shared nodes keep per chunk: 256 MB of their outputs at most. */
#define VARIANTS_STORE ((size_t)256 << 20)

/* The value that first leaves v's channels to other ops: v followed while
 * its one reader is an op on each channel alone that keeps zeros zero. */
static IrValue *chain_end(const IrGraph *g, IrValue *v)
{
    for (;;) {
        const IrNode *only = NULL;
        int uses = 0;
        for (int i = 0; i < g->nodes.n; i++) {
            const IrNode *n = g->nodes.v[i];
            for (int k = 0; k < n->nin; k++)
                if (n->in[k] == v)
                    uses++, only = n;
        }
        if (v == g->logits || uses != 1)
            return v;
        switch (only->op) {
        case IR_RELU:
        case IR_MAXPOOL:
        case IR_AVGPOOL:
        case IR_GAP:
        case IR_DROPOUT: v = only->out; break;
        default: return v;
        }
    }
}

void run_variants_probe(Arena *a, IrGraph *g)
{
    pass_gens_first(g);
    for (int l = 0; l < g->masks.n; l++) {
        const IrNode *ap = ir_mask_apply(g, l);
        const IrValue *mk = g->masks.v[l];
        IrValue *v = ap ? chain_end(g, ap->out) : NULL;
        if (!v || v->rank < 2 || v->d[0] != g->batch || v->d[1] != mk->d[1]) {
            g->probes.n = 0;   /* no probe for every mask: the module always runs */
            return;
        }
        vec_push(a, &g->probes, v);
    }
}

/* A module's probes as the runtime reads them: per mask, where its probe
 * and the mask lie in the arena and how many floats a channel of one image
 * has. */
typedef struct Probes {
    int n;                     /* masks with a probe; 0: none, the module always runs */
    long long off[64], moff[64], chans[64], inner[64];
} Probes;

static void probes_of(const RunModel *m, Probes *p)
{
    const IrGraph *g = m->eval.g;
    p->n = 0;
    if (g->probes.n != g->masks.n || g->probes.n > 64)
        return;
    for (int l = 0; l < g->probes.n; l++) {
        const IrValue *v = g->probes.v[l];
        p->off[l] = m->eval.plan->off[v->id];
        p->moff[l] = m->eval.plan->off[((const IrValue *)g->masks.v[l])->id];
        p->chans[l] = v->d[1];
        p->inner[l] = ir_numel(v) / (v->d[0] * v->d[1]);
        if (p->off[l] < 0 || p->moff[l] < 0)
            return;
    }
    p->n = g->probes.n;
}

/* Row b's probes into z (per kernel of the module: 1 when its channel is
 * all zeros). A channel its mask (with the generators on) or the keep
 * vector zeroed is, without a look. */
static void probe_zeros(const RunModel *m, const Probes *p, int b, const unsigned char *keep, int generators,
                        unsigned char *z)
{
    for (int l = 0, at = 0; l < p->n; l++) {
        const float *v = (const float *)(m->base + p->off[l]) + (long long)b * p->chans[l] * p->inner[l];
        const float *mk = (const float *)(m->base + p->moff[l]) + (long long)b * p->chans[l];
        for (long long j = 0; j < p->chans[l]; j++, at++) {
            if (!keep[at] || (generators > 0 && mk[j] == 0.0f)) {
                z[at] = 1;
                continue;
            }
            long long e = 0;   /* a channel that is not all zeros mostly shows it at once */
            while (e < p->inner[l] && v[j * p->inner[l] + e] == 0.0f)
                e++;
            z[at] = e == p->inner[l];
        }
    }
}

/* The shared nodes' outputs the modules read, each once. */
typedef struct Store {
    int n;
    const IrValue *v[64];
    long long per[64];         /* floats of one image */
    float *data[64];           /* [chunk image][per] */
} Store;

static int store_add(Store *st, const IrValue *v)
{
    for (int i = 0; i < st->n; i++)
        if (st->v[i] == v)
            return 0;
    if (st->n == 64)
        return -1;
    st->v[st->n] = v, st->per[st->n] = ir_numel(v) / v->d[0];
    st->n++;
    return 0;
}

static int store_slot(const Store *st, const IrValue *v)
{
    for (int i = 0; i < st->n; i++)
        if (st->v[i] == v)
            return i;
    return -1;
}

/* Module m's inputs for batch row b from the store's image r (as run_module_gather, one row). */
static void gather_row(RunModel *m, const Slice *s, const Store *st, long long r, long long b)
{
    for (int i = 0; i < s->ninputs; i++) {
        const SliceInput *in = &s->inputs[i];
        int k = store_slot(st, in->src);
        long long per = ir_numel(in->dst) / in->dst->d[0];
        run_module_input_rows(in, st->data[k] + r * st->per[k],
                              (float *)(m->base + m->eval.plan->off[in->dst->id]) + b * per, 1);
    }
}

/* What one thread keeps while it runs a module's variants over a chunk:
 * the images to run again, per image the module's kernels that were all
 * zeros at its last run, the last variant's and this one's kernels. */
typedef struct VarThread {
    long long *pend, *diff;
    unsigned char *zs, *pin, *cin;
    long long runs, reused;
} VarThread;

/* A chunk's images through the modules (run_modules_each). */
typedef struct VarJob {
    RunModules *ms;
    const Store *st;
    const unsigned char *inner;
    int ninner, generators, C, B, alone;
    long long n, c0, cn, K, kmax;
    float *logits;
    VarThread *th;             /* per thread */
} VarJob;

/* Module k's variants on the chunk's images, in order: each image runs
 * again only where a kernel the variant switches off was not all zeros on
 * it (or one comes back on); the others keep the last variant's scores. */
static void variant_module(void *ctx, int thread, int k)
{
    VarJob *j = ctx;
    VarThread *th = &j->th[thread];
    RunModules *ms = j->ms;
    RunModel *m = &ms->m[k];
    const Slice *s = &ms->s[k];
    long long MK = s->kernels, n = j->n, c0 = j->c0, cn = j->cn, K = j->K, kmax = j->kmax;
    int C = j->C, B = j->B;
    if (rt_interrupted())
        return;   /* run_variants_forward says so once every module has returned */
    Probes pr;
    probes_of(m, &pr);
    const float *lg = (const float *)(m->base + m->eval.plan->off[m->eval.g->logits->id]);
    for (int t = 0; t < j->ninner; t++) {
        float *out = j->logits + ((long long)k * j->ninner + t) * n * C;
        const unsigned char *kt = j->inner + ((long long)k * j->ninner + t) * K;
        if (t > 0 && memcmp(kt, kt - K, (size_t)K) == 0) {
            memcpy(out + c0 * C, out - n * C + c0 * C, sizeof(float) * (size_t)(cn * C));
            continue;   /* the same module as the previous one: the same scores */
        }
        slice_keep(s, kt, th->cin);
        run_model_set_module(m, th->cin, j->generators);
        /* the kernels it switches off (nd) and on (again) against the last variant run */
        long long nd = 0;
        int again = t == 0 || !pr.n;
        for (long long i = 0; i < MK && !again; i++)
            if (th->pin[i] && !th->cin[i])
                th->diff[nd++] = i;
            else if (!th->pin[i] && th->cin[i])
                again = 1;
        long long np = 0;
        for (long long i = 0; i < cn; i++) {
            int run = again;
            for (long long d = 0; d < nd && !run; d++)
                run = !th->zs[i * kmax + th->diff[d]];
            if (run)
                th->pend[np++] = i;
            else
                memcpy(out + (c0 + i) * C, out - n * C + (c0 + i) * C, sizeof(float) * (size_t)C);
        }
        th->runs += np, th->reused += cn - np;
        for (long long p0 = 0; p0 < np; p0 += B) {
            long long cnt = np - p0 < B ? np - p0 : B;
            for (long long b = 0; b < cnt; b++)
                gather_row(m, s, j->st, th->pend[p0 + b], b);
            if (j->alone)
                run_graph_alone(m, &m->eval);
            else
                run_graph(m, &m->eval);
            for (long long b = 0; b < cnt; b++) {
                long long i = th->pend[p0 + b];
                memcpy(out + (c0 + i) * C, lg + b * C, sizeof(float) * (size_t)C);
                if (pr.n)
                    probe_zeros(m, &pr, (int)b, th->cin, j->generators, th->zs + i * kmax);
            }
        }
        memcpy(th->pin, th->cin, (size_t)MK);
    }
    rt_work_add(ms->bar, cn);
}

int run_variants_forward(RunModules *ms, RunModel *full, const RtDataset *ds, const RtNormalize *norm, int split,
                         const uint32_t *idx, long long n, const unsigned char *inner, int ninner, int generators,
                         float *logits, int32_t *labels, char *err, size_t errlen)
{
    int B = (int)full->eval.g->batch, C = (int)full->eval.g->logits->d[1], rc = -1;
    int alone = run_modules_alone(ms), NT = alone ? rt_pool_threads(full->pool) : 1;
    long long K = ms->kernels, kmax = 1, per = 0;
    Store st = { 0 };
    for (int k = 0; k < ms->n; k++) {
        kmax = ms->s[k].kernels > kmax ? ms->s[k].kernels : kmax;
        for (int i = 0; i < ms->s[k].ninputs; i++)
            if (store_add(&st, ms->s[k].inputs[i].src) != 0) {
                snprintf(err, errlen, "internal error: a module reads more than 64 shared values");
                return -1;
            }
    }
    for (int i = 0; i < st.n; i++)
        per += st.per[i];
    long long S = ms->chunk > 0 ? ms->chunk : (long long)(VARIANTS_STORE / sizeof(float) / (size_t)(per ? per : 1));
    S = S / B * B;
    long long nb = (n + B - 1) / B * B;
    S = S < B ? B : S > nb ? nb : S;
    uint32_t *bidx = malloc(sizeof(uint32_t) * (size_t)B);
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)B);
    int *order = malloc(sizeof(int) * (size_t)ms->n);
    long long *cost = malloc(sizeof(long long) * (size_t)ms->n);
    VarThread *th = calloc((size_t)NT, sizeof *th);
    int ok = bidx && lab && order && cost && th;
    for (int t = 0; t < NT && ok; t++) {
        VarThread *h = &th[t];
        h->pend = malloc(sizeof(long long) * (size_t)S);
        h->diff = malloc(sizeof(long long) * (size_t)kmax);
        h->zs = malloc((size_t)(S * kmax)), h->pin = malloc((size_t)kmax), h->cin = malloc((size_t)kmax);
        ok = h->pend && h->diff && h->zs && h->pin && h->cin;
    }
    for (int i = 0; i < st.n && ok; i++)
        ok = (st.data[i] = malloc(sizeof(float) * (size_t)(S * st.per[i]))) != NULL;
    if (!ok) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    /* the costliest modules first, so that the last ones taken are short:
     * a module costs about its kernels summed over its distinct variants */
    for (int k = 0; k < ms->n; k++) {
        cost[k] = 0;
        for (int t = 0; t < ninner; t++) {
            const unsigned char *kt = inner + ((long long)k * ninner + t) * K;
            if (t == 0 || memcmp(kt, kt - K, (size_t)K) != 0)
                for (long long i = 0; i < K; i++)
                    cost[k] += kt[i] != 0;
        }
    }
    run_modules_order(ms, cost, order);
    for (long long c0 = 0; c0 < n; c0 += S) {
        long long cn = n - c0 < S ? n - c0 : S;
        if (rt_interrupted()) {
            run_stopped(err, errlen);
            goto done;
        }
        /* the shared nodes, once per image of the chunk */
        for (long long b0 = 0; b0 < cn; b0 += B) {
            int cnt = run_fill_batch(full, &full->eval, ds, split, norm, idx, c0 + b0, n, bidx, lab);
            run_graph_prefix(full, &full->eval, ms->from);
            for (int i = 0; i < st.n; i++)
                memcpy(st.data[i] + b0 * st.per[i], full->base + full->eval.plan->off[st.v[i]->id],
                       sizeof(float) * (size_t)(cnt * st.per[i]));
            for (int i = 0; labels && i < cnt; i++)
                labels[c0 + b0 + i] = lab[i];
        }
        VarJob job = { ms, &st, inner, ninner, generators, C, B, alone, n, c0, cn, K, kmax, logits, th };
        run_modules_each(ms, alone, order, variant_module, &job);
        if (rt_interrupted()) {   /* the modules that saw it skipped their work */
            run_stopped(err, errlen);
            goto done;
        }
    }
    for (int t = 0; t < NT; t++)
        ms->runs += th[t].runs, ms->reused += th[t].reused;
    rc = 0;
done:
    for (int i = 0; i < st.n; i++)
        free(st.data[i]);
    for (int t = 0; th && t < NT; t++)
        free(th[t].pend), free(th[t].diff), free(th[t].zs), free(th[t].pin), free(th[t].cin);
    free(bidx), free(lab), free(order), free(cost), free(th);
    return rc;
}
