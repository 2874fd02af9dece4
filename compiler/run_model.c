/* A model made runnable: lower -> autodiff -> verify -> plan -> codegen ->
 * JIT, then the arena, the thread pool and the per-thread scratch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>

#include "rt_progress.h"
#include "run.h"

IrGraph *run_lower(Arena *a, const Net *net, const TrainInfo *train, long long batch, char *err, size_t errlen)
{
    IrGraph *g = ir_lower(a, net, train, batch);
    char why[512];
    if (ir_verify(g, why, sizeof why) != 0) {
        snprintf(err, errlen, "internal error: the IR of model '%s' does not verify: %s", net->name, why);
        return NULL;
    }
    if (!train)
        return g;
    if (pass_autodiff(a, g, why, sizeof why) != 0) {
        snprintf(err, errlen, "model '%s' cannot be trained yet: %s", net->name, why);
        return NULL;
    }
    if (ir_verify(g, why, sizeof why) != 0) {
        snprintf(err, errlen, "internal error: the backward pass of model '%s' does not verify: %s", net->name, why);
        return NULL;
    }
    return g;
}

static int steps(RunModel *m, Arena *a, RunGraph *rg, int first, int last)
{
    rg->nsteps = 0;
    rg->steps = arena_alloc(a, sizeof(RtStep) * (size_t)(last - first + 1));
    rg->call = arena_alloc(a, sizeof(int) * (size_t)(last - first + 1));
    rg->node = arena_alloc(a, sizeof(int) * (size_t)(last - first + 1));
    rg->seconds = arena_alloc(a, sizeof(double) * (size_t)(last - first + 1));
    for (int i = first; i < last; i++) {
        if (m->calls.units[i] <= 0)
            continue;
        RtTask fn = (RtTask)jit_lookup(m->jit, m->calls.v[i].name);
        if (!fn)
            return -1;
        rg->call[rg->nsteps] = i;
        /* the node of the graph as written (a fused node stands for its chain's last) */
        const int *origin = rg->plan->g->origin;
        rg->node[rg->nsteps] = origin && m->calls.node[i] >= 0 ? origin[m->calls.node[i]] : m->calls.node[i];
        rg->steps[rg->nsteps++] = (RtStep){ fn, m->calls.units[i] };
    }
    return 0;
}

/* Plan and codegen: the layout for the JIT's CPU, the fused graphs planned,
 * their kernel calls (the inference graph's named EPREFIXn). */
static int prepare(RunModel *m, Arena *a, const TrainInfo *train, const char *eprefix, char *err, size_t errlen)
{
    const Net *net = m->net;
    int simd = strstr(jit_cpu_features(m->jit), "+avx512f") ? 16 : 8;
    m->L = plan_layout(a, train ? m->train.g : m->eval.g, simd, train != NULL);
    /* both compile their fused graphs; m->train.g and m->eval.g stay the model as written */
    int fuse = !(getenv("MWTC_FUSE") && !strcmp(getenv("MWTC_FUSE"), "off"));
    IrGraph *tfused = train && fuse ? pass_fuse(a, m->train.g) : m->train.g;
    IrGraph *fused = fuse ? pass_fuse(a, m->eval.g) : ir_copy_order(a, m->eval.g);
    /* A module's convs get their masks before them (cg_wino.c's part kernels);
     * a whole model's graph stays as written: modules read its prefix, and
     * the part kernels' longer compile did not pay for its one graph.
     * MWTC_MASK_FIRST=off: modules as written too, to compare. */
    const char *first = getenv("MWTC_MASK_FIRST");
    if (!m->eval.g->exports_prefix && !(first && !strcmp(first, "off")))
        pass_gens_first(fused);
    /* stride-2 5x5 convs over their input's phases: in the graphs compiled
     * only, as fusion (module_slice and modularize read the model as written) */
    if (train)
        tfused = pass_phase(a, tfused, simd);
    fused = pass_phase(a, fused, simd);
    char why[512];
    if ((train && ir_verify(tfused, why, sizeof why) != 0) || ir_verify(fused, why, sizeof why) != 0) {
        snprintf(err, errlen, "internal error: the fused graphs of '%s' do not verify: %s", net->name, why);
        return -1;
    }
    if (train)
        m->train.plan = plan_graph(a, m->L, tfused);
    m->eval.plan = plan_graph(a, m->L, fused);
    long long work = m->train.plan && m->train.plan->work_bytes > m->eval.plan->work_bytes
                         ? m->train.plan->work_bytes
                         : m->eval.plan->work_bytes;
    m->L->size = m->L->work + work;
    if (m->calls.prepared_at > m->L->size)
        m->L->size = m->calls.prepared_at;
    m->L->prepared = m->L->size;   /* cg_graph adds what the preparation computes */

    m->ntrain = 0;
    if (train) {
        if (cg_graph(a, m->train.plan, "t", &m->calls, err, errlen) != 0)
            return -1;
        cg_sgd(a, m->L, "sgd", train->momentum, train->weight_decay, train->nesterov, &m->calls);
        m->ntrain = m->calls.n;
    }
    return cg_graph(a, m->eval.plan, eprefix, &m->calls, err, errlen);
}

/* Whether an arena of `size` bytes is more than this machine's memory and
 * swap: then it is refused before anything touches it. With overcommit
 * the allocation itself may succeed, and the memset after it end in the
 * kernel's OOM killer instead of a message. */
static int beyond_memory(size_t size)
{
    struct sysinfo si;
    if (sysinfo(&si) != 0)
        return 0;
    return (unsigned long long)size / si.mem_unit > (unsigned long long)si.totalram + si.totalswap;
}

/* After the JIT has the calls: the steps, the arena, the pool, the scratch. */
static int finish(RunModel *m, Arena *a, int threads, RtPool *share, char *err, size_t errlen)
{
    int prep0 = m->calls.n - m->calls.nprep;
    m->prep.g = m->eval.g, m->prep.plan = m->eval.plan;
    m->prep_stale = 1;
    if ((m->train.g && steps(m, a, &m->train, 0, m->ntrain) != 0) || steps(m, a, &m->eval, m->ntrain, prep0) != 0 ||
        steps(m, a, &m->prep, prep0, m->calls.n) != 0) {
        snprintf(err, errlen, "internal error: a compiled kernel call is missing");
        return -1;
    }
    size_t size = (size_t)((m->L->size + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN);
    m->base = beyond_memory(size) ? NULL : aligned_alloc(PLAN_ALIGN, size);
    if (!m->base) {
        /* the training graph's batch is what a user can change: say so */
        if (m->train.g)
            snprintf(err, errlen, "out of memory: model '%s' needs %.1f MB to train at batch %lld; a smaller batch "
                     "(batch = N in its train statement) needs less", m->net->name, (double)size / 1e6,
                     m->train.g->batch);
        else
            snprintf(err, errlen, "out of memory: model '%s' needs %.1f MB", m->net->name, (double)size / 1e6);
        return -1;
    }
    memset(m->base, 0, size);
    run_model_set_module(m, NULL, 1);
    m->pool = share ? share : rt_pool_create(threads, err, errlen);
    m->pool_borrowed = share != NULL;
    if (!m->pool)
        return -1;
    int T = rt_pool_threads(m->pool);
    m->ws = calloc((size_t)T, sizeof(float *));
    if (!m->ws) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t wsb = (size_t)((m->L->ws_floats * 4 + PLAN_ALIGN) / PLAN_ALIGN * PLAN_ALIGN);
    for (int t = 0; t < T; t++)
        if (!(m->ws[t] = aligned_alloc(PLAN_ALIGN, wsb))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    return 0;
}

/* Everything after the graphs, with a JIT of the model's own. */
static int build(RunModel *m, Arena *a, const TrainInfo *train, int threads, RtPool *share, double t0, char *err,
                 size_t errlen)
{
    m->jit = jit_create(err, errlen);
    if (!m->jit || prepare(m, a, train, "e", err, errlen) != 0 ||
        jit_add_calls(m->jit, m->calls.v, m->calls.n, err, errlen) != 0)
        return -1;
    m->compile_seconds = rt_clock() - t0;
    return finish(m, a, threads, share, err, errlen);
}

/* An emitted model's choices (RunEmitted), in the calls cg_graph makes. */
static void emit_calls(RunModel *m, const RunEmitted *emitted)
{
    m->calls.pin_batch = emitted ? 1 : 0;
    m->calls.prepared_at = emitted ? emitted->prepared_at : 0;
}

int run_model_build(RunModel *m, Arena *a, const Net *net, const TrainInfo *train, int eval_batch, int threads,
                    const RunEmitted *emitted, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    m->net = net;
    m->calls.threads = emitted ? 1 : threads;
    emit_calls(m, emitted);
    m->profile = getenv("MWTC_PROFILE") != NULL;
    double t0 = rt_clock();
    if (train && !(m->train.g = run_lower(a, net, train, train->batch, err, errlen)))
        return -1;
    if (!(m->eval.g = run_lower(a, net, NULL, eval_batch, err, errlen)))
        return -1;
    m->eval.g->exports_prefix = 1;   /* a whole model: modules may read its prefix (run_modules) */
    return build(m, a, train, threads, NULL, t0, err, errlen);
}

/* Whether two slices' graphs hold the same tensors in the same order (the
 * training and inference graphs of one module share its arena). */
static int same_tensors(const IrGraph *x, const IrGraph *y)
{
    for (int k = 0; k < 2; k++) {
        const Vec *a = k ? &x->states : &x->params, *b = k ? &y->states : &y->params;
        if (a->n != b->n)
            return 0;
        for (int i = 0; i < a->n; i++) {
            const IrValue *u = a->v[i], *v = b->v[i];
            if (strcmp(u->name, v->name) != 0 || u->rank != v->rank ||
                memcmp(u->d, v->d, sizeof(long long) * (size_t)u->rank) != 0)
                return 0;
        }
    }
    return x->masks.n == y->masks.n;
}

int run_model_build_module_train(RunModel *m, Slice *s, Arena *a, const Net *net, const TrainInfo *train,
                                 const unsigned char *keep, int generators, int eval_batch, int threads, char *err,
                                 size_t errlen)
{
    memset(m, 0, sizeof *m);
    m->net = net;
    m->calls.threads = threads;
    m->profile = getenv("MWTC_PROFILE") != NULL;
    double t0 = rt_clock();
    /* the forward pass sliced, then differentiated as a network of its own */
    IrGraph *fwd = ir_lower(a, net, train, train->batch), *inf = ir_lower(a, net, NULL, eval_batch);
    Slice st;
    char why[512];
    if (pass_slice(a, fwd, keep, 0, !generators, &st, err, errlen) != 0 ||
        pass_slice(a, inf, keep, 0, !generators, s, err, errlen) != 0)
        return -1;
    if (!same_tensors(st.g, s->g)) {
        snprintf(err, errlen, "internal error: the training and inference graphs of a module of '%s' differ in "
                 "their tensors", net->name);
        return -1;
    }
    if (pass_autodiff(a, st.g, why, sizeof why) != 0 || ir_verify(st.g, why, sizeof why) != 0) {
        snprintf(err, errlen, "internal error: the backward pass of a module of '%s': %s", net->name, why);
        return -1;
    }
    m->train.g = st.g;
    m->eval.g = s->g;
    return build(m, a, train, threads, NULL, t0, err, errlen);
}

int run_model_build_graph(RunModel *m, Arena *a, const Net *net, IrGraph *eval, RtPool *pool,
                          const RunEmitted *emitted, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    m->net = net;
    m->profile = getenv("MWTC_PROFILE") != NULL;
    m->eval.g = eval;
    m->calls.threads = emitted ? 1 : pool ? rt_pool_threads(pool) : 0;
    emit_calls(m, emitted);
    return build(m, a, NULL, 0, pool, rt_clock(), err, errlen);
}

int run_model_prepare_graph(RunModel *m, Arena *a, const Net *net, IrGraph *eval, Jit *jit, const RtPool *pool,
                            const char *prefix, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    m->calls.threads = pool ? rt_pool_threads(pool) : 0;
    m->net = net;
    m->profile = getenv("MWTC_PROFILE") != NULL;
    m->eval.g = eval;
    m->jit = jit;
    m->jit_borrowed = 1;
    m->calls.share = 1;
    return prepare(m, a, NULL, prefix, err, errlen);
}

int run_models_compile(Jit *jit, RunModel *m, int n, char *err, size_t errlen)
{
    int total = 0;
    for (int k = 0; k < n; k++)
        total += m[k].calls.n;
    JitCall *all = malloc(sizeof(JitCall) * (size_t)(total ? total : 1));
    if (!all) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int k = 0, at = 0; k < n; k++) {
        memcpy(all + at, m[k].calls.v, sizeof(JitCall) * (size_t)m[k].calls.n);
        at += m[k].calls.n;
    }
    int rc = jit_add_calls(jit, all, total, err, errlen);
    free(all);
    return rc;
}

int run_model_link(RunModel *m, Arena *a, RtPool *pool, char *err, size_t errlen)
{
    return finish(m, a, 0, pool, err, errlen);
}

/* $MWTC_TUNE=off: every run on all threads, to compare (rt_pool_run_tuned). */
static int tune_off(void)
{
    static int off = -1;
    if (off < 0) {
        const char *e = getenv("MWTC_TUNE");
        off = e && !strcmp(e, "off");
    }
    return off;
}

/* Before the inference graph runs: its preparation, where the weights may
 * have changed since it last ran; on the caller's thread alone with alone. */
static void prepare_eval(RunModel *m, const RunGraph *rg, int alone)
{
    if (rg != &m->eval || !m->prep_stale)
        return;
    if (alone)
        rt_pool_run_serial(m->prep.steps, m->prep.nsteps, m->base, m->ws);
    else
        rt_pool_run(m->pool, m->prep.steps, m->prep.nsteps, m->base, m->ws);
    m->prep_stale = 0;
}

/* rg's tuner, NULL where every run goes on all threads (profiling, $MWTC_TUNE=off). */
static RtPoolTune *graph_tune(const RunModel *m, RunGraph *rg)
{
    return m->profile || tune_off() ? NULL : &rg->tune;
}

/* Runs a graph's steps, on all threads or on one as its tuner finds faster; profiling runs them
 * one at a time and times each. */
void run_graph(RunModel *m, RunGraph *rg)
{
    RtPoolTune *tune = graph_tune(m, rg);
    prepare_eval(m, rg, rt_pool_tune_serial(tune));
    if (rg == &m->train)   /* it updates the weights */
        m->prep_stale = 1;
    if (!m->profile) {
        rt_pool_run_tuned(m->pool, tune, rg->steps, rg->nsteps, m->base, m->ws);
        return;
    }
    for (int i = 0; i < rg->nsteps; i++) {
        double t0 = rt_clock();
        rt_pool_run(m->pool, &rg->steps[i], 1, m->base, m->ws);
        rg->seconds[i] += rt_clock() - t0;
    }
}

void run_graph_prefix(RunModel *m, RunGraph *rg, int end)
{
    int n = 0;
    while (n < rg->nsteps && rg->node[n] < end)
        n++;
    prepare_eval(m, rg, 0);
    rt_pool_run(m->pool, rg->steps, n, m->base, m->ws);
}

void run_graph_alone(RunModel *m, RunGraph *rg)
{
    prepare_eval(m, rg, 1);
    if (rg == &m->train)
        m->prep_stale = 1;
    for (int i = 0; i < rg->nsteps; i++) {
        double t0 = m->profile ? rt_clock() : 0;
        rt_pool_run_serial(&rg->steps[i], 1, m->base, m->ws);
        if (m->profile)
            rg->seconds[i] += rt_clock() - t0;
    }
}

static void print_profile(const RunModel *m, const RunGraph *rg, const char *what)
{
    double total = 0;
    for (int i = 0; i < rg->nsteps; i++)
        total += rg->seconds[i];
    if (total <= 0)
        return;
    fprintf(stderr, "profile of %s %s: %.3f s in %d steps (its batches: %.3f s more)\n", m->net->name, what, total,
            rg->nsteps, rg->batch_seconds);
    for (int i = 0; i < rg->nsteps; i++) {
        const JitCall *c = &m->calls.v[rg->call[i]];
        fprintf(stderr, "  %6.2f%% %8.3f s  %-18s units %-8d consts", 100 * rg->seconds[i] / total, rg->seconds[i],
                c->kernel, rg->steps[i].units);
        int k = 0;
        for (const char *s = c->sig; *s; s++)
            if (*s == 'i' || *s == 'r')
                fprintf(stderr, " %g", c->consts[k++]);
            else
                k += jit_sig_const(*s);
        fputc('\n', stderr);
    }
}

void run_model_free(RunModel *m)
{
    if (m->profile && m->jit) {
        if (m->train.steps)
            print_profile(m, &m->train, "training step");
        if (m->eval.steps)
            print_profile(m, &m->eval, "inference");
    }
    if (m->ws && m->pool)
        for (int t = 0; t < rt_pool_threads(m->pool); t++)
            free(m->ws[t]);
    free(m->ws);
    if (m->pool && !m->pool_borrowed)
        rt_pool_destroy(m->pool);
    free(m->base);
    if (!m->jit_borrowed)
        jit_destroy(m->jit);
    memset(m, 0, sizeof *m);
}

void run_model_set_module(RunModel *m, const unsigned char *keep, int generators)
{
    const IrGraph *g = m->eval.g;
    m->module = keep != NULL;
    for (int i = 0, at = 0; i < m->L->nmasks; i++) {
        const IrValue *mk = g->masks.v[i];
        float *k = (float *)(m->base + m->L->keep_off[i]);
        for (long long j = 0; j < mk->d[1]; j++, at++)
            k[j] = keep ? (float)keep[at] : 1.0f;
    }
    int32_t on = generators;
    memcpy(m->base + m->L->scalars + 16, &on, sizeof on);
}

int run_model_get_module(const RunModel *m, unsigned char *keep)
{
    const IrGraph *g = m->eval.g;
    for (int i = 0, at = 0; keep && i < m->L->nmasks; i++) {
        const IrValue *mk = g->masks.v[i];
        const float *k = (const float *)(m->base + m->L->keep_off[i]);
        for (long long j = 0; j < mk->d[1]; j++, at++)
            keep[at] = k[j] == 1.0f;
    }
    int32_t on;
    memcpy(&on, m->base + m->L->scalars + 16, sizeof on);
    return on != 0;
}

static const IrGraph *any_graph(const RunModel *m) { return m->train.g ? m->train.g : m->eval.g; }

float *run_param(RunModel *m, int i)
{
    m->prep_stale = 1;
    return (float *)(m->base + m->L->param_off[i]);
}

float *run_state(RunModel *m, int i)
{
    m->prep_stale = 1;
    return (float *)(m->base + m->L->state_off[i]);
}
float *run_moment(RunModel *m, int i)
{
    return (float *)(m->base + m->L->moments + (m->L->param_off[i] - m->L->params));
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

void run_model_init(RunModel *m, RtRng *rng, MaskInit mask_init)
{
    const IrGraph *g = any_graph(m);
    long long fan_in = 1;
    for (int i = 0; i < g->params.n; i++) {
        const IrValue *p = g->params.v[i];
        float *v = run_param(m, i);
        long long n = ir_numel(p);
        if (ends_with(p->name, ".gamma") || ends_with(p->name, ".b2")) {
            for (long long j = 0; j < n; j++)
                v[j] = 1.0f;   /* batchnorm scale; a mask generator starts with every kernel on */
            continue;
        }
        if (ends_with(p->name, ".beta")) {
            memset(v, 0, sizeof(float) * (size_t)n);
            continue;
        }
        if (p->rank >= 2)      /* a weight: its fan-in serves the bias that follows it */
            fan_in = n / p->d[0];
        if (mask_init == MASK_INIT_KAIMING_NORMAL && (ends_with(p->name, ".w1") || ends_with(p->name, ".w2"))) {
            /* kaiming_normal_ (fan_in, gain sqrt 2), as the reference code draws them; with
             * mask_init = linear they take the uniform draw below, as every other weight */
            float std = sqrtf(2.0f / (float)fan_in);
            for (long long j = 0; j < n; j++)
                v[j] = std * rt_rng_normal(rng);
            continue;
        }
        float bound = 1.0f / sqrtf((float)fan_in);
        for (long long j = 0; j < n; j++)
            v[j] = (2.0f * rt_rng_uniform(rng) - 1.0f) * bound;
    }
    for (int i = 0; i < g->states.n; i++) {
        const IrValue *s = g->states.v[i];
        float *v = run_state(m, i);
        float init = ends_with(s->name, ".var") ? 1.0f : 0.0f;
        for (long long j = 0; j < ir_numel(s); j++)
            v[j] = init;
    }
    if (m->L->train)
        memset(m->base + m->L->moments, 0, (size_t)m->L->params_bytes);
}

float *run_images(RunModel *m, RunGraph *rg) { return (float *)(m->base + rg->plan->off[rg->g->images->id]); }
int32_t *run_labels(RunModel *m, RunGraph *rg) { return (int32_t *)(m->base + rg->plan->off[rg->g->labels->id]); }

int run_argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

double run_train_step(RunModel *m, const float *images, const int32_t *labels, double lr, uint64_t dropout_seed,
                      int *correct)
{
    RunGraph *rg = &m->train;
    long long B = rg->g->batch, img = ir_numel(rg->g->images) / B;
    float *x = run_images(m, rg);
    int32_t *y = run_labels(m, rg);
    if (images != x)
        memcpy(x, images, sizeof(float) * (size_t)(B * img));
    if (labels != y)
        memcpy(y, labels, sizeof(int32_t) * (size_t)B);
    float flr = (float)lr;
    memcpy(m->base + m->L->scalars, &flr, sizeof flr);
    memcpy(m->base + m->L->scalars + 8, &dropout_seed, sizeof dropout_seed);
    /* the logits are read before the update: run the graph, then look */
    run_graph(m, rg);
    const float *logits = (const float *)(m->base + rg->plan->off[rg->g->logits->id]);
    int classes = (int)rg->g->logits->d[1], ok = 0;
    for (long long b = 0; b < B; b++)
        ok += run_argmax(logits + b * classes, classes) == y[b];
    *correct = ok;
    float loss;
    memcpy(&loss, m->base + rg->plan->off[rg->g->loss->id], sizeof loss);
    return loss;
}

int run_stopped(char *err, size_t errlen)
{
    snprintf(err, errlen, "stopped by Ctrl-C before it finished");
    return -1;
}

void run_make_batch(RunModel *m, RunGraph *rg, const RtDataset *ds, int split, const uint32_t *idx, int n,
                    const RtNormalize *norm, const RtAugment *aug, RtRng *rng, int32_t *lab)
{
    double t0 = m->profile ? rt_clock() : 0;
    rt_data_batch_on(rt_pool_tune_serial(graph_tune(m, rg)) ? NULL : m->pool, ds, split, idx, n, norm, aug, rng,
                     run_images(m, rg), lab);
    if (m->profile)
        rg->batch_seconds += rt_clock() - t0;
}

int run_fill_batch(RunModel *m, RunGraph *rg, const RtDataset *ds, int split, const RtNormalize *norm,
                   const uint32_t *idx, long long at, long long n, uint32_t *scratch, int32_t *lab)
{
    int B = (int)rg->g->batch, k = (int)(n - at < B ? n - at : B);
    for (int i = 0; i < B; i++)   /* a short last batch repeats its first image; those scores are ignored */
        scratch[i] = idx ? idx[at + (i < k ? i : 0)] : (uint32_t)(at + (i < k ? i : 0));
    run_make_batch(m, rg, ds, split, scratch, B, norm, NULL, NULL, lab);
    return k;
}

double run_evaluate(RunModel *m, const RtDataset *ds, int split, long long n, const RtNormalize *norm,
                    const unsigned char *among, long long *class_correct, long long *class_total)
{
    RunGraph *rg = &m->eval;
    long long B = rg->g->batch, total = split ? (long long)ds->n_test : (long long)ds->n_train;
    if (n > 0 && n < total)
        total = n;
    int classes = (int)rg->g->logits->d[1];
    uint32_t *idx = malloc(sizeof(uint32_t) * (size_t)B);
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)B);
    if (!idx || !lab) {
        free(idx), free(lab);
        return -1;
    }
    const float *logits = (const float *)(m->base + rg->plan->off[rg->g->logits->id]);
    long long right = 0, counted = 0;
    for (long long at = 0; at < total; at += B) {
        int k = run_fill_batch(m, rg, ds, split, norm, NULL, at, total, idx, lab);
        run_graph(m, rg);
        for (int i = 0; i < k; i++) {
            const float *l = logits + (long long)i * classes;
            int best = -1;
            if (among && (lab[i] < 0 || lab[i] >= classes || !among[lab[i]]))
                continue;
            for (int c = 0; c < classes; c++)   /* run_argmax over the outputs allowed */
                if ((!among || among[c]) && (best < 0 || l[c] > l[best]))
                    best = c;
            int ok = best == lab[i];
            right += ok, counted++;
            if (class_correct && lab[i] < classes) {
                class_correct[lab[i]] += ok;
                class_total[lab[i]]++;
            }
        }
    }
    free(idx), free(lab);
    return counted ? (double)right / (double)counted : 0.0;
}
