/* Modularize (run_modularize.h): the kernel frequencies, one module per
 * class, what each costs, and the report. A module is evaluated as itself:
 * sliced from the modular model's inference graph (pass_slice.c) and compiled
 * on its own, it computes what the modular model computes with every kernel
 * outside it switched off (tests/unit/test_slice.c), with a fraction of the
 * work. What takes images is in run_mzmeasure.c, what is kept of it in the
 * checkpoint in run_mzstore.c. */
#include "run_modularize.h"
#include "run_mz.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_ckpt.h"
#include "rt_progress.h"


/* Runs images idx[0..n) of a split through the inference graph; per image
 * its logits, its binary masks, and per class the count of each kernel on. */
int mz_forward(Mz *z, RunModel *m, int split, const uint32_t *idx, long long n, float *logits, uint64_t *bits,
               double *on, int32_t *labels, char *err, size_t errlen)
{
    RunGraph *rg = &m->eval;
    int B = (int)rg->g->batch, C = z->classes;
    uint32_t bidx[4096];
    int32_t lab[4096];
    const float *lg = (const float *)(m->base + rg->plan->off[rg->g->logits->id]);
    for (long long at = 0; at < n; at += B) {
        if (rt_interrupted())
            return run_stopped(err, errlen);
        int k = run_fill_batch(m, rg, &z->ds, split, &z->norm, idx, at, n, bidx, lab);
        run_graph(m, rg);
        rt_work_add(z->bar, k);
        for (int i = 0; i < k; i++) {
            long long r = at + i;
            if (labels)
                labels[r] = lab[i];
            if (logits)
                memcpy(logits + r * C, lg + (long long)i * C, sizeof(float) * (size_t)C);
            if (!bits && !on)
                continue;
            if (bits)
                memset(bits + r * z->words, 0, sizeof(uint64_t) * (size_t)z->words);
            for (int l = 0; l < z->st.layers; l++) {
                const IrValue *mv = rg->g->masks.v[l];
                const float *mk = (const float *)(m->base + rg->plan->off[mv->id]) + (long long)i * mv->d[1];
                for (long long j = 0; j < mv->d[1]; j++) {
                    if (!(mk[j] > 0))
                        continue;
                    long long g = z->st.layer_off[l] + j;
                    if (bits)
                        bits[r * z->words + g / 64] |= 1ull << (g % 64);
                    if (on && lab[i] < C)
                        on[(long long)lab[i] * z->st.kernels + g] += 1;
                }
            }
        }
    }
    return 0;
}

/* The mask a value's channels carry, following channel-wise ops back; -1 none. */
static int mask_of(const IrGraph *g, const IrValue *v, int depth)
{
    for (; v && v->def && depth < 64; depth++) {
        const IrNode *n = v->def;
        if (n->op == IR_MASK_APPLY) {
            for (int i = 0; i < g->masks.n; i++)
                if (g->masks.v[i] == n->in[1])
                    return i;
            return -1;
        }
        if (n->op != IR_RELU && n->op != IR_BATCHNORM && n->op != IR_DROPOUT && n->op != IR_MAXPOOL &&
            n->op != IR_AVGPOOL)
            return -1;
        v = n->in[0];
    }
    return -1;
}

/* Layers whose outputs meet at a residual add share a group. */
static void residual_groups(const IrGraph *g, int *group)
{
    for (int i = 0; i < g->masks.n; i++)
        group[i] = i;
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *n = g->nodes.v[i];
        if (n->op != IR_ADD)
            continue;
        int a = mask_of(g, n->in[0], 0), b = mask_of(g, n->in[1], 0);
        if (a < 0 || b < 0)
            continue;
        int from = group[b], to = group[a];
        for (int k = 0; k < g->masks.n; k++)
            if (group[k] == from)
                group[k] = to;
    }
}

/* FLOPs and parameters of a module: each layer at the channels it keeps
 * (inputs from switched-off kernels are gone too), counted as `check` counts
 * them, so that keep NULL (the model) gives check's total. */
static void module_cost(const Mz *z, const unsigned char *keep, int generators, long long *flops, long long *params)
{
    const IrGraph *g = z->m.eval.g;
    long long *act = calloc((size_t)g->next_id, sizeof(long long));
    long long f = 0, p = 0, B = g->batch;
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *n = g->nodes.v[i];
        const IrValue *x = n->nin ? n->in[0] : NULL, *y = n->out;
        long long ax = x ? act[x->id] : 0, hw = y->rank == 4 ? y->d[2] * y->d[3] : 1;
        long long a = y->rank >= 2 ? y->d[1] : 0;
        switch (n->op) {
        case IR_INPUT: break;
        case IR_CONV2D:
            for (int l = 0; l < z->st.layers; l++)
                if (keep && ir_masked_conv(g, l) == n)
                    a = mod_kept(keep + z->st.layer_off[l], z->st.layer_off[l + 1] - z->st.layer_off[l]);
            f += 2 * a * ax * n->k * n->k * hw + (n->nin == 3 ? a * hw : 0);
            p += a * ax * n->k * n->k + (n->nin == 3 ? a : 0);
            break;
        case IR_BATCHNORM: a = ax, f += 2 * a * hw, p += 2 * a; break;
        case IR_MASK_GEN: {
            long long hd = n->in[1]->d[0], in = act[x->id];
            for (int l = 0; l < z->st.layers; l++)
                if (g->masks.v[l] == y && keep)
                    a = mod_kept(keep + z->st.layer_off[l], z->st.layer_off[l + 1] - z->st.layer_off[l]);
            if (generators)
                f += 2 * (in * hd + hd * a) + in * x->d[2] * x->d[3], p += in * hd + hd * a + a;
            break;
        }
        case IR_MASK_APPLY:
            for (int l = 0; l < z->st.layers; l++)
                if (g->masks.v[l] == n->in[1])
                    a = keep ? mod_kept(keep + z->st.layer_off[l], z->st.layer_off[l + 1] - z->st.layer_off[l]) : a;
            f += a * hw;
            break;
        case IR_ADD: a = ax > act[n->in[1]->id] ? ax : act[n->in[1]->id], f += a * hw; break;
        case IR_FLATTEN: a = ax * (x->rank == 4 ? x->d[2] * x->d[3] : 1); break;
        /* pools and gap as `check` counts them (sema_layers.c): one operation per window
         * element, per input element */
        case IR_MAXPOOL:
        case IR_AVGPOOL: a = ax, f += a * hw * n->k * n->k; break;
        case IR_GAP: a = ax, f += a * x->d[2] * x->d[3]; break;
        case IR_DROPOUT: a = ax; break;
        case IR_LINEAR:
            a = y->d[1];
            f += 2 * ax * a + (n->nin == 3 ? a : 0), p += ax * a + (n->nin == 3 ? a : 0);
            break;
        default: a = ax, f += a * hw; break;
        }
        act[y->id] = a;
        for (int j = 0; j < n->nextra; j++)
            act[n->extra[j]->id] = a;
    }
    (void)B;
    free(act);
    *flops = f, *params = p;
}

/* 1 when the stored counts per class are those of the first N training
 * images: then the frequencies were counted over the images this run uses.
 * (A run with another --limit counted others, and would hand its modules to
 * this one unseen.) */
static int counted_here(const Mz *z, const RtCkptEntry *n, long long N)
{
    long long want[256] = { 0 };
    if (z->classes > 256)
        return 0;
    for (long long i = 0; i < N; i++)
        if (z->ds.train_y[i] < z->classes)
            want[z->ds.train_y[i]]++;
    for (int k = 0; k < z->classes; k++) {
        float v = ((const float *)n->data)[k];   /* compared as a float: NaN or 1e30 is no count */
        if (!(v == (float)want[k]) || v > 1e9f)
            return 0;
    }
    return 1;
}

/* Whether the stored frequencies are frequencies: [classes][kernels], each
 * in [0, 1] (a damaged checkpoint's are counted again). */
static int freq_ok(const Mz *z, const RtCkptEntry *e)
{
    if (e->kind != RT_CKPT_F32 || e->rank != 2 || e->dims[0] != z->classes || e->dims[1] != z->st.kernels)
        return 0;
    for (long long i = 0; i < z->classes * z->st.kernels; i++) {
        float f = ((const float *)e->data)[i];
        if (!(f >= 0 && f <= 1))
            return 0;
    }
    return 1;
}

/* Loads the frequencies from the checkpoint, or counts them and stores them. */
int mz_frequencies(Mz *z, const RunOptions *o, int readonly, char *err, size_t errlen)
{
    ModStats *s = &z->st;
    RtCkpt c = { 0 };
    if (rt_ckpt_load(&c, o->ckpt, err, errlen) != 0)
        return -1;
    const RtCkptEntry *e = rt_ckpt_find(&c, "mwt/freq"), *n = rt_ckpt_find(&c, "mwt/count");
    int rc = 0;
    long long N = (long long)z->ds.n_train;
    if (o->limit > 0 && o->limit < N)
        N = o->limit;
    z->ntrain = N;
    if (e && n && freq_ok(z, e) && n->kind == RT_CKPT_F32 && n->rank == 1 && n->dims[0] == z->classes &&
        counted_here(z, n, N)) {
        for (int k = 0; k < z->classes; k++)
            s->count[k] = (long long)((const float *)n->data)[k];
        /* Stored as float, a frequency is not the ratio counted: 5400 of 6000
         * images, 0.9 exactly, comes back as 0.89999998 and would fall below a
         * threshold of 0.9 that the run which counted it passed. Each is a
         * count of images over the class's count, so rounding recovers the
         * count, and the ratio is the one modularize computed. */
        for (long long i = 0; i < z->classes * s->kernels; i++) {
            double f = ((const float *)e->data)[i], c = (double)s->count[i / s->kernels];
            s->freq[i] = c > 0 ? round(f * c) / c : f;
        }
        goto done;
    }
    double *on = calloc((size_t)(z->classes * s->kernels), sizeof(double));
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)N);
    float *fq = malloc(sizeof(float) * (size_t)(z->classes * s->kernels));
    float cnt[256];
    if (!on || !lab || !fq) {
        free(on), free(lab), free(fq);
        snprintf(err, errlen, "out of memory");
        rc = -1;
        goto done;
    }
    run_model_set_module(&z->m, NULL, 1);
    if (o->progress != RT_PROGRESS_QUIET)
        fprintf(stderr, "%s %s: kernel frequencies over %lld training images%s\n", mz_who(z), z->m.net->name, N,
                readonly ? " (not stored: 'mwtc modularize' stores them in the checkpoint for later commands)" : "");
    z->bar = rt_work_begin(stderr, o->progress, "frequencies", N);
    rc = mz_forward(z, &z->m, 0, NULL, N, NULL, NULL, on, lab, err, errlen);
    rt_progress_end(z->bar);
    z->bar = NULL;
    if (rc != 0) {   /* stopped: frequencies of part of the images are not stored */
        free(on), free(lab), free(fq);
        goto done;
    }
    memset(s->count, 0, sizeof(long long) * (size_t)z->classes);
    for (long long i = 0; i < N; i++)
        if (lab[i] < z->classes)
            s->count[lab[i]]++;
    for (int k = 0; k < z->classes; k++) {
        for (long long j = 0; j < s->kernels; j++) {
            long long at = (long long)k * s->kernels + j;
            s->freq[at] = s->count[k] ? on[at] / (double)s->count[k] : 0;
            fq[at] = (float)s->freq[at];
        }
        cnt[k] = (float)s->count[k];
    }
    if (!readonly) {
        long long d2[2] = { z->classes, s->kernels }, d1[1] = { z->classes };
        if (rt_ckpt_add_f32(&c, "mwt/freq", 2, d2, fq) != 0 || rt_ckpt_add_f32(&c, "mwt/count", 1, d1, cnt) != 0 ||
            rt_ckpt_save(&c, o->ckpt, err, errlen) != 0)
            rc = -1;
    }
    free(on), free(lab), free(fq);
done:
    rt_ckpt_free(&c);
    return rc;
}

int mz_open(Mz **out, Arena *a, const TrainInfo *t, const char *ckpt, int threads, RunMeta *meta, char *err,
            size_t errlen)
{
    Mz *z = *out = calloc(1, sizeof *z);
    if (!z) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    RtAugment aug;
    int C = t->data->classes;
    if (run_data_load(t->data, threads > 0 ? threads : rt_pool_default_threads(), &z->ds, &z->norm, &aug, err, errlen) !=
        0)
        return -1;
    /* Batches of 64: each module compiles its own arena at this batch, and ten of them at 256 held
     * 440 MB. Measured on SimCNN (report --sweep): 64 is as fast as 256 (14 s vs 15 s, the
     * activations stay in cache) at less than half the memory (305 MB vs 708 MB); 32 is slower. */
    if (run_model_build(&z->m, a, t->model, NULL, 64, threads > 0 ? threads : rt_pool_default_threads(), 0, err,
                        errlen) != 0)
        return -1;
    if (run_ckpt_load(&z->m, ckpt, meta, NULL, 0, err, errlen) != 0)
        return -1;
    const IrGraph *g = z->m.eval.g;
    z->classes = C;
    z->ntrain = (long long)z->ds.n_train;
    ModStats *s = &z->st;
    s->classes = C, s->layers = g->masks.n;
    s->layer_off = arena_alloc(a, sizeof(long long) * (size_t)(s->layers + 1));
    s->group = arena_alloc(a, sizeof(int) * (size_t)s->layers);
    for (int l = 0; l < s->layers; l++)
        s->layer_off[l + 1] = s->layer_off[l] + ((const IrValue *)g->masks.v[l])->d[1];
    s->kernels = s->layer_off[s->layers];
    residual_groups(g, s->group);
    s->freq = arena_alloc(a, sizeof(double) * (size_t)(C * s->kernels));
    s->count = arena_alloc(a, sizeof(long long) * (size_t)C);
    z->words = (int)((s->kernels + 63) / 64);
    return 0;
}

void mz_close(Mz *z)
{
    if (!z)
        return;
    run_model_free(&z->m);
    rt_data_free(&z->ds);
    free(z);
}

/* Module c's kernels as one bit each: keeps [class][kernel] -> mod_bits [class][words]. */
static void module_bits(const Mz *z, const unsigned char *keeps, uint64_t *mod_bits)
{
    memset(mod_bits, 0, sizeof(uint64_t) * (size_t)(z->classes * z->words));
    for (int c = 0; c < z->classes; c++)
        for (long long j = 0; j < z->st.kernels; j++)
            if (keeps[(long long)c * z->st.kernels + j])
                mod_bits[(long long)c * z->words + j / 64] |= 1ull << (j % 64);
}

/* report measures what the checkpoint does not hold every time it runs: why,
 * and how to store it (stored and stored_t as mz_measured_load gave them). */
static void not_stored(const char *ckpt, int stored, double stored_t, double threshold, double statement_t)
{
    char store[64] = "";
    if (fabs(threshold - statement_t) > 1e-9)
        snprintf(store, sizeof store, " --threshold %g", threshold);
    if (stored < 0 && fabs(stored_t - threshold) > 1e-9)
        fprintf(stderr, "report: %s holds the figures of the modules at threshold %.2f, not %.2f: measuring them on "
                "images (mwtc modularize FILE.mwt --ckpt %s%s stores them)\n", ckpt, stored_t, threshold, ckpt, store);
    else
        fprintf(stderr, "report: %s holds no figures measured for these modules by this build of mwtc on this CPU: "
                "measuring them on images (mwtc modularize FILE.mwt --ckpt %s%s stores them)\n", ckpt, ckpt, store);
}

int run_modularize(Arena *a, const TrainInfo *t, const ModularizeInfo *mi, const RunOptions *o, double threshold,
                   int sweep, int readonly, ModReport *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    Mz *z = NULL;
    int rc = -1, C = t->data->classes;
    unsigned char *keeps = NULL;
    uint64_t *mod_bits = NULL;
    ModCalib *cals = NULL;
    RunMeta meta;
    if (mz_open(&z, a, t, o->ckpt, o->threads, &meta, err, errlen) != 0)
        goto done;
    z->who = readonly ? "report" : "modularize";
    const IrGraph *g = z->m.eval.g;
    ModStats *s = &z->st;
    if (g->masks.n == 0) {
        snprintf(err, errlen, "model '%s' has no masks to modularize by (put its convs in modular { })",
                 t->model->name);
        goto done;
    }
    if (mz_frequencies(z, o, readonly, err, errlen) != 0)
        goto done;

    r->model = t->model->name, r->dataset = t->data->name, r->names = t->data->names, r->classes = C;
    r->threshold = threshold >= 0 ? threshold : mi ? mi->threshold : 0.9;
    r->generators = mi ? mi->keep_generators : 1;
    r->masked_kernels = s->kernels;
    r->modules = arena_alloc(a, sizeof(ModuleReport) * (size_t)C);
    keeps = malloc((size_t)(C * s->kernels));
    mod_bits = malloc(sizeof(uint64_t) * (size_t)(C * z->words));
    cals = malloc(sizeof(ModCalib) * (size_t)C);
    if (!keeps || !mod_bits || !cals) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (int c = 0; c < C; c++)
        mod_module(s, &c, 1, r->threshold, keeps + (long long)c * s->kernels);

    /* what needs no images: each module's size and cost, KRR, coupling between modules */
    module_cost(z, NULL, 1, &r->flops, &r->params);
    double cpl = 0, krr = 0;
    long long pairs = 0;
    module_bits(z, keeps, mod_bits);
    for (int c = 0; c < C; c++) {
        const unsigned char *k = keeps + (long long)c * s->kernels;
        ModuleReport *m = &r->modules[c];
        m->cls = c;
        m->kernels = mod_kept(k, s->kernels);
        m->krr = (double)m->kernels / (double)s->kernels;
        krr += m->krr;
        module_cost(z, k, r->generators, &m->flops, &m->params);
    }
    for (int c = 0; c < C; c++)
        for (int d = c + 1; d < C; d++, pairs++)
            cpl += mod_jaccard(mod_bits + (long long)c * z->words, mod_bits + (long long)d * z->words, z->words);
    r->krr = krr / C, r->coupling = pairs ? cpl / (double)pairs : 0;

    /* what needs images: measured once per modules and stored in the checkpoint */
    double stored_t;
    int stored = mz_measured_load(z, o->ckpt, keeps, r->generators, r, &stored_t);
    r->stored = stored > 0;
    if (r->stored) {
        if (o->progress != RT_PROGRESS_QUIET)
            fprintf(stderr, "%s %s: the modules at threshold %.2f as measured and stored in %s\n", mz_who(z),
                    t->model->name, r->threshold, o->ckpt);
    } else {
        if (readonly && o->progress != RT_PROGRESS_QUIET)
            not_stored(o->ckpt, stored, stored_t, r->threshold, mi ? mi->threshold : 0.9);
        if (mz_measure(z, a, keeps, mod_bits, r, cals, o, err, errlen) != 0 ||
            (!readonly && mz_measured_save(z, o->ckpt, keeps, r->generators, cals, r, err, errlen) != 0))
            goto done;
    }
    if (sweep && mz_sweep(z, a, r, o, err, errlen) != 0)
        goto done;
    rc = 0;
done:
    free(keeps), free(mod_bits), free(cals);
    mz_close(z);
    return rc;
}
