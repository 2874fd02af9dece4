/* emit: a module as NAME.o and NAME.h (LANGUAGE.md section 4). The module
 * is the one eval --module evaluates: the kernels of its classes at the
 * threshold (from the checkpoint's frequencies), sliced and compiled on its
 * own, its generators kept or dropped as the modularize statement says; or
 * a reuse's checkpoint, its module with the fine-tuned head. It is built at
 * batch 1 (a call's images go through one at a time: no batch to fill) for
 * one thread (CgCalls.threads 1: no split of its channels), its 3x3 convs as
 * Winograd (5.5x faster per image than the direct kernels at batch 1 on a
 * Zen 1, bench/RESULTS.md), and aot_emit writes its calls, its arena and
 * NAME_run. With it, where it gives each image the same bits, the same
 * module at K_AOT_BULK images, its kernels chosen as at batch 1, for the
 * calls that bring that many (k_aot_run). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aot.h"
#include "k_kernels.h"
#include "rt_progress.h"
#include "run_modularize.h"
#include "run_mz.h"

/* Appends to buf[*w], cut at its end (class names and paths are any length). */
static void ap(char *buf, size_t cap, size_t *w, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void ap(char *buf, size_t cap, size_t *w, const char *fmt, ...)
{
    if (*w + 1 >= cap)
        return;
    va_list v;
    va_start(v, fmt);
    int k = vsnprintf(buf + *w, cap - *w, fmt, v);
    va_end(v);
    if (k > 0)
        *w = *w + (size_t)k < cap ? *w + (size_t)k : cap - 1;
}

/* The kernels of `classes` in t's modular checkpoint (NULL: a model without
 * masks), as eval --module takes them; *zp stays open for the calibration
 * (the caller closes it). */
static int module_keep(Mz **zp, Arena *a, const TrainInfo *t, const ModularizeInfo *mi, const RunOptions *o,
                       double threshold, const int *classes, int n, unsigned char **keep, long long *kernels, double *T,
                       char *err, size_t errlen)
{
    RunMeta meta;
    *keep = NULL;
    if (mz_open(zp, a, t, o->ckpt, o->threads, &meta, err, errlen) != 0)
        return -1;
    Mz *z = *zp;
    z->who = "emit";
    *kernels = z->st.kernels;
    *T = threshold >= 0 ? threshold : mi ? mi->threshold : 0.9;
    if (z->st.kernels) {
        if (mz_frequencies(z, o, 1, err, errlen) != 0)
            return -1;
        if (!(*keep = malloc((size_t)z->st.kernels))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        mod_module(&z->st, classes, n, *T, *keep);
    }
    return 0;
}

/* The module's calibration of each of its n classes (DESIGN.md), fitted
 * as modularize fits it (mz_measure: the same training images, Newton's
 * method) on this module's logits, into *cal (malloc'd) in k_aot_run's
 * layout; its length, or -1. A module keeps only kernels that fire for its
 * classes, so its raw logits lack the evidence against them: without this
 * a user of one class's module has no yes/no cut, and of several classes'
 * no way to say "none of them". */
static int calibrate(Mz *z, RunModel *m, const int *classes, int n, const RunOptions *o, double **cal,
                     long long *images, char *err, size_t errlen)
{
    long long nimg;
    int C = z->classes, k = 0;
    uint32_t *idx = mz_calib_idx(z, &nimg);
    float *lg = malloc(sizeof(float) * (size_t)(nimg * C + 1));
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)(nimg + 1));
    double *v = malloc(sizeof(double) * (size_t)n * (3 + 3 * 32));
    ModCalib c;
    if (idx && lg && lab && v && o->progress != RT_PROGRESS_QUIET) {
        fprintf(stderr, "emit %s: calibrating the module of class%s", m->net->name, n > 1 ? "es" : "");
        for (int i = 0; i < n; i++)
            fprintf(stderr, "%s %d", i ? "," : "", classes[i]);
        fprintf(stderr, " on %lld training images\n", nimg);
    }
    if (idx && lg && lab && v && mz_forward(z, m, 0, idx, nimg, lg, NULL, NULL, lab, err, errlen) != 0) {
        free(idx), free(lg), free(lab), free(v);
        return -1;
    }
    for (int i = 0; i < n && idx && lg && lab && v; i++) {
        if (mz_calib_fit(&c, lg, lab, nimg, C, classes[i]) != 0) {
            k = -1;
            break;
        }
        v[k++] = classes[i], v[k++] = c.dim;
        for (int d = 0; d < c.dim; d++)
            v[k + d] = c.mean[d], v[k + c.dim + d] = c.std[d], v[k + 2 * c.dim + d] = c.w[d];
        k += 3 * c.dim;
        v[k++] = c.w[c.dim];
    }
    free(idx), free(lg), free(lab);
    if (!idx || !lg || !lab || !v || k < 0) {
        free(v);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *cal = v;
    *images = nimg;
    return k;
}

/* m's steps (with prep, the preparation's first) as aot_emit takes a
 * graph: its calls numbered from call0 in the object's list. */
static void aot_graph(AotGraph *g, Arena *a, const RunModel *m, int call0, int prep)
{
    int np = prep ? m->prep.nsteps : 0, ns = np + m->eval.nsteps;
    int *call = arena_alloc(a, sizeof(int) * (size_t)(ns + 1));
    int *units = arena_alloc(a, sizeof(int) * (size_t)(ns + 1));
    for (int k = 0; k < ns; k++) {
        const RunGraph *rg = k < np ? &m->prep : &m->eval;
        call[k] = call0 + rg->call[k < np ? k : k - np];
        units[k] = rg->steps[k < np ? k : k - np].units;
    }
    const IrGraph *eg = m->eval.g;
    *g = (AotGraph){ .step_call = call, .step_units = units, .nsteps = ns, .nprep = np,
                     .in_off = m->eval.plan->off[eg->images->id], .out_off = m->eval.plan->off[eg->logits->id],
                     .batch = (int)eg->batch };
}

/* Whether bulk (the module at K_AOT_BULK images) gives every image the
 * bits m (at one) gives it, in m's arena, so that the object can run both
 * there: the same bytes before their scratch (the weights, statistics and
 * flags a slot's arena starts with), the same room for the preparation,
 * holding the same bytes after a run of each (m's preparation serves
 * both), and the same logits, to the bit, for 4 runs of bulk's of images
 * of random pixels. Its kernels are chosen as m's (CgCalls.pin_batch),
 * and a kernel's sums run in an order that does not depend on the batch;
 * this checks it for the module at hand. */
static int same_bits(RunModel *m, RunModel *bulk)
{
    long long pre = m->L->parts, B = bulk->eval.g->batch, K = m->eval.g->logits->d[1];
    long long at = m->L->prepared, size = m->L->size;
    if (bulk->L->parts != pre || memcmp(m->base, bulk->base, (size_t)pre) != 0 || bulk->eval.g->logits->d[1] != K ||
        bulk->L->prepared != at || bulk->L->size != size)
        return 0;
    long long img = ir_numel(m->eval.g->images);
    const float *l1 = (const float *)(m->base + m->eval.plan->off[m->eval.g->logits->id]);
    const float *lb = (const float *)(bulk->base + bulk->eval.plan->off[bulk->eval.g->logits->id]);
    float *x1 = run_images(m, &m->eval), *xb = run_images(bulk, &bulk->eval);
    RtRng rng;
    rt_rng_seed(&rng, 11);
    for (int r = 0; r < 4; r++) {
        for (long long i = 0; i < B * img; i++)
            xb[i] = rt_rng_normal(&rng);   /* about what normalized images hold */
        run_graph(bulk, &bulk->eval);
        for (long long b = 0; b < B; b++) {
            memcpy(x1, xb + b * img, sizeof(float) * (size_t)img);
            run_graph(m, &m->eval);
            if (memcmp(l1, lb + b * K, sizeof(float) * (size_t)K) != 0)
                return 0;
        }
    }
    return memcmp(m->base + at, bulk->base + at, (size_t)(size - at)) == 0;
}

/* Whether obj and hdr can be written (by way of their temporary files,
 * which it leaves out): 0, or -1 with a message. A rename over a directory
 * fails, so a directory is refused before either file is written. */
static int writable(const char *obj, const char *otmp, const char *hdr, const char *htmp, char *err, size_t errlen)
{
    struct stat sb;
    for (int k = 0; k < 2; k++) {
        const char *path = k ? hdr : obj, *tmp = k ? htmp : otmp;
        const char *also = k ? " (" : "", *other = k ? obj : "", *tail = k ? " not written either)" : "";
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            snprintf(err, errlen, "cannot write %s: %s%s%s%s", path, strerror(EISDIR), also, other, tail);
            return -1;
        }
        FILE *f = fopen(tmp, "w");
        if (!f) {
            snprintf(err, errlen, "cannot write %s: %s%s%s%s", path, strerror(errno), also, other, tail);
            return -1;
        }
        fclose(f);
        remove(tmp);
    }
    return 0;
}

int run_emit(Arena *a, const TrainInfo *t, const ModularizeInfo *mi, const ReuseInfo *ru, const RunOptions *o,
             double threshold, const int *classes, int n, const char *name, const char *cpu, const char *obj,
             const char *hdr, RunEmitResult *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    const DatasetInfo *d = t->data;
    int C = ru ? ru->nclasses : d->classes, sel[256];
    if (n < 1 || n > 256) {
        snprintf(err, errlen, "--module: 1 to 256 classes, not %d", n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        sel[i] = -1;
        for (int k = 0; k < C; k++)
            if (ru ? ru->classes[k] == classes[i] : k == classes[i])
                sel[i] = k;
        if (sel[i] < 0) {
            if (ru)
                snprintf(err, errlen, "--module: class %d is not a class of reuse '%s'", classes[i], ru->name);
            else
                snprintf(err, errlen, "--module: class %d is not one of the %d classes of %s", classes[i], C, d->name);
            return -1;
        }
    }
    /* where the files go, before the work: a path that cannot be written
     * fails now, not after the module is calibrated and compiled */
    char otmp[4200], htmp[4200];
    snprintf(otmp, sizeof otmp, "%s.%ld.tmp", obj, (long)getpid());
    snprintf(htmp, sizeof htmp, "%s.%ld.tmp", hdr, (long)getpid());
    if (writable(obj, otmp, hdr, htmp, err, errlen) != 0)
        return -1;
    unsigned char *keep = NULL;
    long long kernels = 0;
    int gen = mi ? mi->keep_generators : 1, rc = -1, built = 0, sliced = 0, built1 = 0, built8 = 0, sliced8 = 0;
    double T = 0;
    RunModel full, mod, one, full8, mod8;
    double *cal = NULL;
    Mz *z = NULL;
    Slice slice, slice8;
    RunMeta meta;
    memset(&full, 0, sizeof full);
    memset(&mod, 0, sizeof mod);
    memset(&one, 0, sizeof one);
    memset(&full8, 0, sizeof full8);
    memset(&mod8, 0, sizeof mod8);
    const Net *net = ru ? run_head_net(a, t->model, ru->name, ru->nclasses) : t->model;
    if (!ru && module_keep(&z, a, t, mi, o, threshold, classes, n, &keep, &kernels, &T, err, errlen) != 0)
        goto done;
    if (!ru && !kernels && threshold >= 0)
        fprintf(stderr, "mwtc: warning: --threshold does not apply: %s has no masks, so the module is the whole model\n",
                net->name);
    /* the model as the checkpoint holds it: a module's source, and a
     * reuse's kept kernels (a model without masks is built below, twice) */
    built = ru || kernels;
    RunEmitted emitted = { 0 };
    if (built && (run_model_build(&full, a, net, NULL, 1, 1, &emitted, err, errlen) != 0 ||
                  run_ckpt_load(&full, o->ckpt, &meta, NULL, 0, err, errlen) != 0))
        goto done;
    if (ru) {   /* the kernels the reuse kept, as its checkpoint says */
        kernels = 0;
        for (int l = 0; l < full.eval.g->masks.n; l++)
            kernels += ((const IrValue *)full.eval.g->masks.v[l])->d[1];
        if (kernels && !(keep = malloc((size_t)kernels))) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        gen = kernels ? run_model_get_module(&full, keep) : 0;
    }
    /* The bulk graph first, the model at K_AOT_BULK images; then the
     * batch-1 graph, its preparation's room where the bulk graph's starts:
     * both then run in one arena, which the preparation fills once. */
    RunModel *b = kernels ? &mod8 : &full8, *m = kernels ? &mod : &one;
    if (kernels) {
        sliced8 = 1;
        if (run_module_build_at(&mod8, &slice8, a, &full, K_AOT_BULK, keep, gen, &emitted, err, errlen) != 0)
            goto done;
        emitted.prepared_at = mod8.L->prepared;
        sliced = 1;
        if (run_module_build(&mod, &slice, a, &full, keep, gen, 0, &emitted, err, errlen) != 0)
            goto done;
    } else {
        built8 = 1;
        if (run_model_build(&full8, a, net, NULL, K_AOT_BULK, 1, &emitted, err, errlen) != 0 ||
            run_ckpt_load(&full8, o->ckpt, &meta, NULL, 0, err, errlen) != 0)
            goto done;
        emitted.prepared_at = full8.L->prepared;
        built1 = 1;
        if (run_model_build(&one, a, net, NULL, 1, 1, &emitted, err, errlen) != 0 ||
            run_ckpt_load(&one, o->ckpt, &meta, NULL, 0, err, errlen) != 0)
            goto done;
    }
    int channels = (int)m->eval.g->images->d[1];
    float *mean = arena_alloc(a, sizeof(float) * (size_t)channels);
    float *std = arena_alloc(a, sizeof(float) * (size_t)channels);
    for (int c = 0; c < channels; c++) {
        int k = d->norm_n == 1 ? 0 : c;
        mean[c] = d->norm_n ? (float)d->mean[k] : 0.0f;
        std[c] = d->norm_n ? (float)d->std[k] : 1.0f;
    }
    int ncal = 0;
    long long cal_images = 0;
    if (!ru && kernels && (ncal = calibrate(z, m, classes, n, o, &cal, &cal_images, err, errlen)) < 0)
        goto done;
    int bulk = same_bits(m, b);
    AotModule am = {
        .name = name, .calls = m->calls.v, .ncalls = m->calls.n, .ngraphs = 1 + bulk, .arena = m->base,
        .arena_bytes = m->L->size,
        /* What a slot's arena starts with: the bytes before its scratch.
         * The calibration's run left activations in the rest (SimCNN's shoes
         * module: 154 KB of them in its 1.05 MB, 4 MB at a batch of 32),
         * which no run reads before it writes them. */
        .arena_init = m->L->parts, .ws_floats = m->L->ws_floats, .channels = channels,
        .pixels = m->eval.g->images->d[2] * m->eval.g->images->d[3], .logits = (int)m->eval.g->logits->d[1],
        .mean = mean, .std = std, .sel = sel, .nsel = n, .cpu = cpu, .cal = ncal ? cal : NULL, .ncal = ncal,
        .cal_images = cal_images,
    };
    aot_graph(&am.graph[0], a, m, 0, 1);
    if (bulk) {   /* its calls after m's, named apart */
        JitCall *calls = arena_alloc(a, sizeof(JitCall) * (size_t)(m->calls.n + b->calls.n));
        memcpy(calls, m->calls.v, sizeof(JitCall) * (size_t)m->calls.n);
        for (int i = 0; i < b->calls.n; i++) {
            calls[m->calls.n + i] = b->calls.v[i];
            calls[m->calls.n + i].name = arena_printf(a, "b%s", b->calls.v[i].name);
        }
        am.calls = calls, am.ncalls = m->calls.n + b->calls.n;
        aot_graph(&am.graph[1], a, b, m->calls.n, 0);   /* its preparation is m's (same_bits) */
        am.ws_floats = b->L->ws_floats > am.ws_floats ? b->L->ws_floats : am.ws_floats;
    }
    res->bulk = bulk ? K_AOT_BULK : 0;
    const char *target = cpu ? cpu : jit_cpu(m->jit);
    long long kept = kernels ? mod_kept(keep, kernels) : 0;
    res->kernels = kept, res->masked = kernels;
    res->krr = kernels ? (double)kept / (double)kernels : 1;
    res->threshold = T;
    res->generators = gen;
    res->epoch = meta.epoch;
    res->input = (long long)channels * am.pixels;
    char about[2048];
    size_t w = 0;
    ap(about, sizeof about, &w, "Classes of %s: ", ru ? ru->name : net->name);
    for (int i = 0; i < n; i++)
        ap(about, sizeof about, &w, "%s%d%s%s%s", i ? ", " : "", classes[i], d->names ? " (" : "",
           d->names ? d->names[classes[i]] : "", d->names ? ")" : "");
    if (ru)
        ap(about, sizeof about, &w, ".\nreuse '%s' of model %s with its fine-tuned head,", ru->name, t->model->name);
    else if (kernels)
        ap(about, sizeof about, &w, ".\nThe module of model %s at threshold %g,", net->name, T);
    else
        ap(about, sizeof about, &w, ".\nModel %s, which has no masks: the whole model, its scores for them,", net->name);
    ap(about, sizeof about, &w, " from %s (epoch %d).\n", o->ckpt, meta.epoch);
    if (kernels)
        ap(about, sizeof about, &w, "%lld of %lld masked kernels (KRR %.4f), generators %s.\n", kept, kernels, res->krr,
           gen ? "kept" : "dropped");
    if (cpu)
        ap(about, sizeof about, &w, "Compiled for CPU %s: it runs on any x86-64 CPU that has that level's features\n"
                                    "(on another, %s_run returns -2).", cpu, name);
    else
        ap(about, sizeof about, &w, "Compiled for this CPU, %s, with all its features: run it on one like it\n"
                                    "(on another, %s_run returns -2; emit with --cpu x86-64-v3, say, for any of that level).",
           target, name);
    /* both to temporary files, then renamed: never half an object under its
     * name, nor an object without its header (nor an older one removed) */
    if (aot_emit(m->jit, &am, obj, otmp, err, errlen) != 0)
        goto done;
    if (aot_header(&am, classes, about, hdr, htmp, err, errlen) != 0) {
        remove(otmp);
        size_t l = strlen(err);
        snprintf(err + l, errlen - l, " (%s not written either)", obj);
        goto done;
    }
    if (rename(otmp, obj) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", obj, strerror(errno));
        remove(htmp), remove(otmp);
        goto done;
    }
    if (rename(htmp, hdr) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", hdr, strerror(errno));
        remove(htmp);
        goto done;
    }
    res->cpu = arena_printf(a, "%s", target);
    res->calibrated = ncal > 0;
    rc = 0;
done:
    if (sliced8)
        run_model_free(&mod8);
    if (built8)
        run_model_free(&full8);
    if (sliced)
        run_model_free(&mod);
    if (built1)
        run_model_free(&one);
    if (built)
        run_model_free(&full);
    mz_close(z);
    free(keep), free(cal);
    return rc;
}
