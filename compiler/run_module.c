/* Modules compiled as models of their own (run.h): slice, build, gather;
 * and many modules evaluated together, sharing the nodes before their first
 * mask and one JIT, where a layer's calls in every module share one
 * compiled body. */
#include "rt_hash.h"
#include "run.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The module's graph: full's sliced to keep, with probes what
 * run_variants.c reads kept too. */
static int module_slice(Slice *s, Arena *a, RunModel *full, const unsigned char *keep, int generators, int from,
                        int probes, char *err, size_t errlen)
{
    /* generators < 0: dropped, but the masks stay for keep vectors inside the slice */
    if (pass_slice(a, full->eval.g, keep, from, generators == 0, s, err, errlen) != 0)
        return -1;
    if (probes)
        run_variants_probe(a, s->g);
    return 0;
}

void run_module_fill(RunModel *mod, const Slice *s, RunModel *full, int generators)
{
    for (int i = 0; i < s->g->params.n; i++)
        slice_gather(&s->params[i], run_param(full, s->params[i].src->index), run_param(mod, i));
    for (int i = 0; i < s->g->states.n; i++)
        slice_gather(&s->states[i], run_state(full, s->states[i].src->index), run_state(mod, i));
    run_model_set_module(mod, s->keep, generators > 0);
}

int run_module_build(RunModel *mod, Slice *s, Arena *a, RunModel *full, const unsigned char *keep, int generators,
                     int from, const RunEmitted *emitted, char *err, size_t errlen)
{
    memset(mod, 0, sizeof *mod);
    if (module_slice(s, a, full, keep, generators, from, 0, err, errlen) != 0 ||
        run_model_build_graph(mod, a, full->net, s->g, full->pool, emitted, err, errlen) != 0)
        return -1;
    run_module_fill(mod, s, full, generators);
    return 0;
}

int run_module_build_at(RunModel *mod, Slice *s, Arena *a, RunModel *full, long long batch,
                        const unsigned char *keep, int generators, const RunEmitted *emitted, char *err,
                        size_t errlen)
{
    memset(mod, 0, sizeof *mod);
    IrGraph *g = run_lower(a, full->net, NULL, batch, err, errlen);
    if (!g)
        return -1;
    g->exports_prefix = full->eval.g->exports_prefix;   /* sliced as full's own graph would be */
    if (pass_slice(a, g, keep, 0, generators == 0, s, err, errlen) != 0 ||
        run_model_build_graph(mod, a, full->net, s->g, full->pool, emitted, err, errlen) != 0)
        return -1;
    run_module_fill(mod, s, full, generators);
    return 0;
}

void run_module_input_rows(const SliceInput *in, const float *src, float *dst, long long rows)
{
    long long sper = ir_numel(in->src) / in->src->d[0], dper = ir_numel(in->dst) / in->dst->d[0];
    if (!in->idx) {
        memcpy(dst, src, sizeof(float) * (size_t)(rows * dper));
        return;
    }
    long long K = in->dst->d[1], inner = dper / K;
    for (long long b = 0; b < rows; b++)
        for (long long j = 0; j < K; j++)
            memcpy(dst + b * dper + j * inner, src + b * sper + in->idx[j] * inner, sizeof(float) * (size_t)inner);
}

void run_module_gather(RunModel *mod, const Slice *s, const RunModel *full)
{
    for (int i = 0; i < s->ninputs; i++) {
        const SliceInput *in = &s->inputs[i];
        run_module_input_rows(in, (const float *)(full->base + full->eval.plan->off[in->src->id]),
                              (float *)(mod->base + mod->eval.plan->off[in->dst->id]), in->src->d[0]);
    }
}

void run_modules_free(RunModules *ms)
{
    for (int k = 0; ms->m && k < ms->n; k++)
        run_model_free(&ms->m[k]);
    jit_destroy(ms->jit);   /* after the modules: it holds their code */
    free(ms->m), free(ms->s);
    memset(ms, 0, sizeof *ms);
}

/* What a built model will hold in memory: its arena and its threads' scratch. */
static size_t model_bytes(const RunModel *m, RtPool *pool)
{
    return (size_t)m->L->size + (size_t)rt_pool_threads(pool) * (size_t)m->L->ws_floats * sizeof(float);
}

int run_modules_build(RunModules *ms, Arena *a, RunModel *full, const unsigned char *keeps, long long kernels, int n,
                      int generators, int probes, size_t budget, char *err, size_t errlen)
{
    memset(ms, 0, sizeof *ms);
    ms->from = slice_shared_end(full->eval.g);
    ms->kernels = kernels;
    ms->m = calloc((size_t)n, sizeof *ms->m);
    ms->s = calloc((size_t)n, sizeof *ms->s);
    if (!ms->m || !ms->s) {
        snprintf(err, errlen, "out of memory");
        run_modules_free(ms);
        return -1;
    }
    if (!(ms->jit = jit_create(err, errlen))) {
        run_modules_free(ms);
        return -1;
    }
    /* all of them planned and generated, then compiled at once, then linked */
    size_t bytes = 0;
    for (int k = 0; k < n && (k == 0 || bytes < budget); k++) {
        ms->n = k + 1;
        if (module_slice(&ms->s[k], a, full, keeps + (long long)k * kernels, generators, ms->from, probes, err,
                         errlen) != 0 ||
            run_model_prepare_graph(&ms->m[k], a, full->net, ms->s[k].g, ms->jit, full->pool,
                                    arena_printf(a, "m%de", k), err, errlen) != 0) {
            run_modules_free(ms);
            return -1;
        }
        bytes += model_bytes(&ms->m[k], full->pool);
    }
    int rc = run_models_compile(ms->jit, ms->m, ms->n, err, errlen);
    for (int k = 0; k < ms->n && rc == 0; k++)
        if ((rc = run_model_link(&ms->m[k], a, full->pool, err, errlen)) == 0)
            run_module_fill(&ms->m[k], &ms->s[k], full, generators);
    if (rc != 0)
        run_modules_free(ms);
    return rc;
}

/* MWTC_VARIANT_REUSE=off runs every variant on every image (to compare). */
static int variant_reuse(void)
{
    const char *e = getenv("MWTC_VARIANT_REUSE");
    return !(e && !strcmp(e, "off"));
}

int run_modules_alone(const RunModules *ms)
{
    const char *e = getenv("MWTC_MODULES_ALONE");   /* off: always shared per step, to compare */
    if (e && !strcmp(e, "off"))
        return 0;
    /* A module per thread where there are enough to go round: each runs
     * its graphs alone, with no barrier between steps and no thread waiting
     * on another's images (a module's masks turn off whole images, a
     * different number in each thread's share of a batch). SimCNN on Zen 1,
     * 2 threads, alternating runs: the sweep 7.5-7.7 s against 8.0-8.4;
     * modularize's ten modules on 12000 images 25.0 s against 25.9-26.7.
     * With fewer than 2 modules a thread, the last ones taken would leave
     * threads idle: those modules share the threads per step. */
    int T = ms->m[0].pool ? rt_pool_threads(ms->m[0].pool) : 1;
    return T > 1 && ms->n >= 2 * T;
}

/* run_modules_each's work, handed to the pool as one unit per thread. */
typedef struct Each {
    void (*fn)(void *, int, int);
    void *ctx;
    const int *order;
    int n;
    atomic_int next;
} Each;

static void each_task(char *base, float *ws, int lo, int hi)
{
    (void)ws, (void)hi;
    Each *e = (Each *)(void *)base;
    for (int i; (i = atomic_fetch_add(&e->next, 1)) < e->n;)
        e->fn(e->ctx, lo, e->order[i]);
}

void run_modules_each(RunModules *ms, int alone, const int *order, void (*fn)(void *ctx, int thread, int k), void *ctx)
{
    if (!alone) {
        for (int i = 0; i < ms->n; i++)
            fn(ctx, 0, order[i]);
        return;
    }
    RtPool *pool = ms->m[0].pool;
    Each e = { fn, ctx, order, ms->n, 0 };
    RtStep step = { each_task, rt_pool_threads(pool) };   /* unit t is thread t */
    rt_pool_run(pool, &step, 1, (char *)&e, NULL);
}

void run_modules_order(const RunModules *ms, const long long *cost, int *order)
{
    for (int k = 0; k < ms->n; k++) {   /* insertion sort: costliest first, then first come */
        int at = k;
        while (at > 0 && cost[order[at - 1]] < cost[k])
            order[at] = order[at - 1], at--;
        order[at] = k;
    }
}

/* One batch through the modules: what each thread needs. */
typedef struct Batch {
    RunModules *ms;
    const RunModel *full;
    const unsigned char *inner;
    int ninner, generators, alone, cnt;
    long long n, at, C, K;
    float *logits;
    unsigned char **in;        /* per thread: a module's kernels */
} Batch;

static void batch_module(void *ctx, int thread, int k)
{
    Batch *b = ctx;
    RunModules *ms = b->ms;
    RunModel *m = &ms->m[k];
    long long n = b->n, at = b->at, C = b->C, K = b->K;
    run_module_gather(m, &ms->s[k], b->full);
    const float *lg = (const float *)(m->base + m->eval.plan->off[m->eval.g->logits->id]);
    for (int t = 0; t < b->ninner; t++) {
        float *out = b->logits + ((long long)k * b->ninner + t) * n * C;
        const unsigned char *kt = b->inner ? b->inner + ((long long)k * b->ninner + t) * K : NULL;
        if (t > 0 && kt && memcmp(kt, kt - K, (size_t)K) == 0) {
            memcpy(out + at * C, out - n * C + at * C, sizeof(float) * (size_t)(b->cnt * C));
            continue;   /* the same module as the previous one: the same scores */
        }
        if (kt) {
            slice_keep(&ms->s[k], kt, b->in[thread]);
            run_model_set_module(m, b->in[thread], b->generators);
        }
        if (b->alone)
            run_graph_alone(m, &m->eval);
        else
            run_graph(m, &m->eval);
        memcpy(out + at * C, lg, sizeof(float) * (size_t)(b->cnt * C));
    }
    rt_work_add(ms->bar, b->cnt);
}

int run_modules_forward(RunModules *ms, RunModel *full, const RtDataset *ds, const RtNormalize *norm, int split,
                        const uint32_t *idx, long long n, const unsigned char *inner, int ninner, int generators,
                        float *logits, int32_t *labels, char *err, size_t errlen)
{
    if (inner && variant_reuse())
        return run_variants_forward(ms, full, ds, norm, split, idx, n, inner, ninner, generators, logits, labels, err,
                                    errlen);
    int B = (int)full->eval.g->batch, alone = run_modules_alone(ms), T = alone ? rt_pool_threads(full->pool) : 1;
    Batch b = { ms, full, inner, ninner, generators, alone, 0, n, 0, full->eval.g->logits->d[1], ms->kernels, logits,
                NULL };
    uint32_t *bidx = malloc(sizeof(uint32_t) * (size_t)B);
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)B);
    int *order = malloc(sizeof(int) * (size_t)ms->n);
    long long *cost = malloc(sizeof(long long) * (size_t)ms->n);
    b.in = calloc((size_t)T, sizeof *b.in);
    int ok = bidx && lab && order && cost && b.in, rc = -1;
    for (int t = 0; t < T && ok; t++)
        ok = (b.in[t] = malloc((size_t)ms->kernels + 1)) != NULL;
    if (!ok) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (int k = 0; k < ms->n; k++)   /* a module costs about its kernels */
        cost[k] = ms->s[k].kernels;
    run_modules_order(ms, cost, order);
    for (long long at = 0; at < n; at += B) {
        if (rt_interrupted()) {
            run_stopped(err, errlen);
            goto done;
        }
        b.cnt = run_fill_batch(full, &full->eval, ds, split, norm, idx, at, n, bidx, lab);
        b.at = at;
        run_graph_prefix(full, &full->eval, ms->from);
        run_modules_each(ms, alone, order, batch_module, &b);
        for (int i = 0; labels && i < b.cnt; i++)
            labels[at + i] = lab[i];
    }
    rc = 0;
done:
    for (int t = 0; b.in && t < T; t++)
        free(b.in[t]);
    free(bidx), free(lab), free(order), free(cost), free(b.in);
    return rc;
}

static int modules_eval_all(Arena *a, RunModel *full, const RtDataset *ds, const RtNormalize *norm,
                            const unsigned char *keeps, long long kernels, int n, int generators,
                            const unsigned char *inner, int ninner, const RunPass *passes, int npasses, size_t budget,
                            RtProgress *bar, char *err, size_t errlen)
{
    long long C = full->eval.g->logits->d[1];
    for (int k0 = 0; k0 < n;) {
        RunModules ms;
        if (run_modules_build(&ms, a, full, keeps + k0 * kernels, kernels, n - k0, generators,
                              inner && variant_reuse(), budget, err, errlen) != 0)
            return -1;
        ms.bar = bar;
        for (int p = 0; p < npasses; p++) {
            const RunPass *q = &passes[p];
            if (run_modules_forward(&ms, full, ds, norm, q->split, q->idx, q->n,
                                    inner ? inner + (long long)k0 * ninner * kernels : NULL, ninner, generators,
                                    q->logits + (long long)k0 * ninner * q->n * C, q->labels, err, errlen) != 0) {
                run_modules_free(&ms);
                return -1;
            }
        }
        k0 += ms.n;
        run_modules_free(&ms);
    }
    return 0;
}

/* Module k's kernels and inner keep vectors: what its scores depend on. */
static int same_module(const unsigned char *keeps, const unsigned char *inner, int ninner, long long kernels, int j,
                       int k)
{
    return !memcmp(keeps + j * kernels, keeps + k * kernels, (size_t)kernels) &&
           (!inner || !memcmp(inner + (long long)j * ninner * kernels, inner + (long long)k * ninner * kernels,
                              (size_t)(ninner * kernels)));
}

/* Modules with the same kernels (and inner vectors) have the same scores:
 * only the first of each kind runs, and the others copy its scores. An
 * undertrained model's modules often all keep every kernel: a hundred
 * classes of ResNet18 at 224x224 after one epoch spent 7 minutes on a
 * hundred copies of one module. Where all differ, nothing changes. */
int run_modules_eval(Arena *a, RunModel *full, const RtDataset *ds, const RtNormalize *norm, const unsigned char *keeps,
                     long long kernels, int n, int generators, const unsigned char *inner, int ninner,
                     const RunPass *passes, int npasses, size_t budget, RtProgress *bar, char *err, size_t errlen)
{
    long long C = full->eval.g->logits->d[1], ni = inner ? ninner : 1, images = 0;
    int *first = malloc(sizeof(int) * (size_t)n), *at = malloc(sizeof(int) * (size_t)n), uniq = 0, rc = -1;
    uint64_t *h = malloc(sizeof(uint64_t) * (size_t)n);
    if (!first || !at || !h) {
        free(first), free(at), free(h);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int k = 0; k < n; k++) {   /* FNV-1a of each, to compare only those that may be equal */
        uint64_t v = rt_fnv(RT_FNV_SEED, keeps + k * kernels, (size_t)kernels);
        if (inner)
            v = rt_fnv(v, inner + k * ninner * kernels, (size_t)(ninner * kernels));
        h[k] = v, first[k] = k;
        for (int j = 0; j < k && first[k] == k; j++)
            if (first[j] == j && h[j] == v && same_module(keeps, inner, ninner, kernels, j, k))
                first[k] = j;
        if (first[k] == k)
            at[k] = uniq++;
    }
    free(h);
    if (uniq == n) {
        free(first), free(at);
        return modules_eval_all(a, full, ds, norm, keeps, kernels, n, generators, inner, ninner, passes, npasses,
                                budget, bar, err, errlen);
    }
    /* the distinct ones packed, then their scores spread to every copy */
    unsigned char *pk = malloc((size_t)(uniq * kernels + 1));
    unsigned char *pi = inner ? malloc((size_t)(uniq * ni * kernels + 1)) : NULL;
    RunPass *pp = calloc((size_t)npasses, sizeof *pp);
    int ok = pk && (!inner || pi) && pp;
    for (int p = 0; p < npasses && ok; p++) {
        pp[p] = passes[p];
        ok = (pp[p].logits = malloc(sizeof(float) * (size_t)(uniq * ni * passes[p].n * C + 1))) != NULL;
        images += passes[p].n;
    }
    if (!ok) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (int k = 0; k < n; k++)
        if (first[k] == k) {
            memcpy(pk + at[k] * kernels, keeps + k * kernels, (size_t)kernels);
            if (inner)
                memcpy(pi + at[k] * ni * kernels, inner + k * ni * kernels, (size_t)(ni * kernels));
        }
    if (modules_eval_all(a, full, ds, norm, pk, kernels, uniq, generators, pi, ninner, pp, npasses, budget, bar, err,
                         errlen) != 0)
        goto done;
    for (int p = 0; p < npasses; p++) {
        long long per = ni * passes[p].n * C;   /* one module's scores in this pass */
        for (int k = 0; k < n; k++)
            memcpy(passes[p].logits + k * per, pp[p].logits + at[first[k]] * per, sizeof(float) * (size_t)per);
    }
    rt_work_add(bar, (n - uniq) * images);
    rc = 0;
done:
    for (int p = 0; pp && p < npasses; p++)
        free(pp[p].logits);
    free(pp), free(pk), free(pi), free(first), free(at);
    return rc;
}
