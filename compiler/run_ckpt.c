/* A model's checkpoint: "param/NAME", "state/NAME" and "moment/NAME"
 * tensors, the RNG, the program's source, "meta" (key=value lines), and for
 * a model trained as a module (a reuse) "module/keep" and "module/generators".
 * rt_ckpt does the file format, the checksum and the atomic rename. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_ckpt.h"
#include "run_train.h"

static const IrGraph *graph(const RunModel *m) { return m->train.g ? m->train.g : m->eval.g; }

static int add(RtCkpt *c, const char *kind, const IrValue *v, const float *data)
{
    char name[256];
    snprintf(name, sizeof name, "%s/%s", kind, v->name);
    return rt_ckpt_add_f32(c, name, v->rank, v->d, data);
}

/* The program's text, or NULL when it cannot be read (the checkpoint is still useful without it). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            char *b = realloc(buf, cap = cap ? 2 * cap : 4096);
            if (!b)
                break;
            buf = b;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* A model run as a module (a reuse: run_model_set_module) keeps that in its
 * checkpoint, so that loading it evaluates what was trained: "module/keep"
 * (one float 0/1 per masked kernel, in mask order) and "module/generators"
 * (a scalar 0/1). Nothing for a whole model (no keep set, all on). */
static long long masked_kernels(const RunModel *m)
{
    long long n = 0;
    for (int i = 0; i < m->L->nmasks; i++)
        n += ((const IrValue *)m->eval.g->masks.v[i])->d[1];
    return n;
}

static int add_module(RtCkpt *c, const RunModel *m)
{
    long long n = masked_kernels(m);
    unsigned char *keep = malloc((size_t)n + 1);
    float *kf = malloc(sizeof(float) * (size_t)(n + 1));
    if (!keep || !kf) {
        free(keep), free(kf);
        return -1;
    }
    int on = run_model_get_module(m, keep), whole = on;
    for (long long j = 0; j < n; j++) {
        kf[j] = keep[j];
        whole &= keep[j];
    }
    float gen = on ? 1.0f : 0.0f;
    int bad = 0;
    if (m->module || !whole)
        bad = rt_ckpt_add_f32(c, "module/keep", 1, &n, kf) | rt_ckpt_add_f32(c, "module/generators", 0, NULL, &gen);
    free(keep), free(kf);
    return bad;
}

/* Restores what add_module wrote, if anything. */
static int load_module(const RtCkpt *c, RunModel *m, const char *path, char *err, size_t errlen)
{
    const RtCkptEntry *e = rt_ckpt_find(c, "module/keep"), *gen = rt_ckpt_find(c, "module/generators");
    if (!e && !gen)
        return 0;
    long long n = masked_kernels(m);
    int ok = e && gen && e->kind == RT_CKPT_F32 && e->rank == 1 && e->dims[0] == n && gen->kind == RT_CKPT_F32 &&
             gen->rank == 0;
    unsigned char *keep = ok ? malloc((size_t)n + 1) : NULL;
    for (long long j = 0; ok && keep && j < n; j++) {
        float v = ((const float *)e->data)[j];
        ok = v == 0.0f || v == 1.0f;
        keep[j] = v == 1.0f;
    }
    float on = ok ? *(const float *)gen->data : 0;
    ok = ok && keep && (on == 0.0f || on == 1.0f);
    if (ok)
        run_model_set_module(m, keep, on == 1.0f);
    else
        snprintf(err, errlen, "%s: its module (module/keep, module/generators) does not fit the model's %lld masked kernels",
                 path, n);
    free(keep);
    return ok ? 0 : -1;
}

int run_ckpt_save(RunModel *m, const char *path, const RunMeta *meta, const RtRng *rng, const char *source_path,
                  char *err, size_t errlen)
{
    const IrGraph *g = graph(m);
    RtCkpt c = { 0 };
    int bad = 0;
    char text[512];
    snprintf(text, sizeof text, "model=%s\nepoch=%d\nepochs=%d\nbatch=%d\nseed=%lld\nlimit=%lld\ndata=%lu\n",
             meta->model, meta->epoch, meta->epochs, meta->batch, meta->seed, meta->limit, meta->data);
    bad |= rt_ckpt_add_bytes(&c, "meta", text, strlen(text));
    for (int i = 0; i < g->params.n; i++) {
        bad |= add(&c, "param", g->params.v[i], run_param(m, i));
        if (m->L->train)   /* a model that trains has moments; a reuse's whole model holds its module's weights only */
            bad |= add(&c, "moment", g->params.v[i], run_moment(m, i));
    }
    for (int i = 0; i < g->states.n; i++)
        bad |= add(&c, "state", g->states.v[i], run_state(m, i));
    if (rng)
        bad |= rt_ckpt_add_bytes(&c, "rng", rng->s, sizeof rng->s);
    bad |= add_module(&c, m);
    size_t len = 0;
    char *src = slurp(source_path, &len);
    if (src)
        bad |= rt_ckpt_add_bytes(&c, "source", src, len);
    free(src);
    int rc = -1;
    if (bad)
        snprintf(err, errlen, "%s: out of memory while assembling the checkpoint", path);
    else
        rc = rt_ckpt_save(&c, path, err, errlen);
    rt_ckpt_free(&c);
    return rc;
}

/* An integer in [lo, hi], the whole of s; else 0. (atoi would take "12x",
 * and a number past int's range is undefined for it.) */
static int meta_int(const char *s, long long lo, long long hi, long long *v)
{
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return end != s && *end == 0 && errno == 0 && *v >= lo && *v <= hi;
}

/* The run description ("meta": key=value lines) of checkpoint `path`; 0,
 * or -1 with a message naming the line that is not one mwtc train writes (a
 * damaged checkpoint: a negative epoch would resume before the start). */
static int parse_meta(const RtCkptEntry *e, RunMeta *meta, const char *path, char *err, size_t errlen)
{
    memset(meta, 0, sizeof *meta);
    char text[1024];
    size_t n = e->bytes < sizeof text - 1 ? e->bytes : sizeof text - 1;
    memcpy(text, e->data, n);
    text[n] = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq++ = 0;
        long long v = 0;
        int ok = 1;
        if (strcmp(line, "model") == 0)
            snprintf(meta->model, sizeof meta->model, "%s", eq);
        else if (strcmp(line, "epoch") == 0)
            ok = meta_int(eq, 0, INT_MAX, &v), meta->epoch = (int)v;
        else if (strcmp(line, "epochs") == 0)
            ok = meta_int(eq, 0, INT_MAX, &v), meta->epochs = (int)v;
        else if (strcmp(line, "batch") == 0)
            ok = meta_int(eq, 0, INT_MAX, &v), meta->batch = (int)v;
        else if (strcmp(line, "seed") == 0)
            ok = meta_int(eq, LLONG_MIN, LLONG_MAX, &v), meta->seed = v;
        else if (strcmp(line, "limit") == 0)
            ok = meta_int(eq, -1, LLONG_MAX, &v), meta->limit = v;   /* -1: no --limit */
        else if (strcmp(line, "data") == 0)
            meta->data = strtoul(eq, NULL, 10);
        if (!ok) {
            snprintf(err, errlen, "%s: its run description is damaged (%.40s=%.40s): not as mwtc train wrote it", path,
                     line, eq);
            return -1;
        }
    }
    return 0;
}

static int dims_str(char *buf, size_t len, int rank, const long long *d)
{
    int k = snprintf(buf, len, "[");
    for (int i = 0; i < rank; i++)
        k += snprintf(buf + k, len - (size_t)k, "%s%lld", i ? ", " : "", d[i]);
    return k + snprintf(buf + k, len - (size_t)k, "]");
}

/* The layer that reads tensor v (a parameter or a state): where its shape
 * comes from, for a message. NULL when no node reads it. */
static const IrNode *reader(const IrGraph *g, const IrValue *v)
{
    for (int i = 0; i < g->nodes.n; i++) {
        const IrNode *n = g->nodes.v[i];
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] == v)
                return n;
    }
    return NULL;
}

static int load_one(const RtCkpt *c, const IrGraph *g, const char *path, const char *kind, const IrValue *v,
                    float *dst, char *err, size_t errlen)
{
    char name[256];
    snprintf(name, sizeof name, "%s/%s", kind, v->name);
    const RtCkptEntry *e = rt_ckpt_find(c, name);
    int missing = !e || e->kind != RT_CKPT_F32;
    if (missing || e->rank != v->rank || memcmp(e->dims, v->d, sizeof(long long) * (size_t)v->rank) != 0) {
        const IrNode *n = reader(g, v);
        char at[300] = "";
        if (n && n->loc.file && n->loc.line > 0)
            snprintf(at, sizeof at, " (the layer at %s:%d)", n->loc.file->path, n->loc.line);
        if (missing) {   /* the model's name matched (run_ckpt_load): a layer was added */
            snprintf(err, errlen, "%s: has no tensor %s%s: the model has changed since this checkpoint was trained",
                     path, name, at);
            return -1;
        }
        char a[96], b[96];
        dims_str(a, sizeof a, e->rank, e->dims);
        dims_str(b, sizeof b, v->rank, v->d);
        snprintf(err, errlen, "%s: %s has shape %s, the model's is %s%s: the model has changed since this "
                 "checkpoint was trained", path, name, a, b, at);
        return -1;
    }
    memcpy(dst, e->data, e->bytes);
    return 0;
}

int run_ckpt_load(RunModel *m, const char *path, RunMeta *meta, RtRng *rng, int moments, char *err, size_t errlen)
{
    const IrGraph *g = graph(m);
    RtCkpt c = { 0 };
    if (rt_ckpt_load(&c, path, err, errlen) != 0)
        return -1;
    int rc = -1;
    const RtCkptEntry *e = rt_ckpt_find(&c, "meta");
    if (!e || e->kind != RT_CKPT_BYTES) {
        snprintf(err, errlen, "%s: has no run description: not a checkpoint mwtc train wrote", path);
        goto done;
    }
    if (parse_meta(e, meta, path, err, errlen) != 0)
        goto done;
    if (strcmp(meta->model, g->model) != 0) {
        snprintf(err, errlen, "%s: is a checkpoint of model '%s', not of '%s'", path, meta->model, g->model);
        goto done;
    }
    for (int i = 0; i < g->params.n; i++)
        if (load_one(&c, g, path, "param", g->params.v[i], run_param(m, i), err, errlen) != 0 ||
            (moments && load_one(&c, g, path, "moment", g->params.v[i], run_moment(m, i), err, errlen) != 0))
            goto done;
    for (int i = 0; i < g->states.n; i++)
        if (load_one(&c, g, path, "state", g->states.v[i], run_state(m, i), err, errlen) != 0)
            goto done;
    if (load_module(&c, m, path, err, errlen) != 0)
        goto done;
    if (rng) {
        e = rt_ckpt_find(&c, "rng");
        if (!e || e->kind != RT_CKPT_BYTES || e->bytes != sizeof rng->s) {
            snprintf(err, errlen, "%s: has no random generator state to resume from", path);
            goto done;
        }
        memcpy(rng->s, e->data, sizeof rng->s);
        int zero = 1;   /* xoshiro's one state that gives nothing but zeros */
        for (size_t i = 0; i < sizeof rng->s / sizeof rng->s[0]; i++)
            zero &= rng->s[i] == 0;
        if (zero) {
            snprintf(err, errlen, "%s: its random generator state is damaged (all zeros)", path);
            goto done;
        }
    }
    rc = 0;
done:
    rt_ckpt_free(&c);
    return rc;
}

int run_ckpt_model(const char *path, char *model, size_t len, int *module, char *err, size_t errlen)
{
    RtCkpt c = { 0 };
    if (rt_ckpt_load(&c, path, err, errlen) != 0)
        return -1;
    const RtCkptEntry *e = rt_ckpt_find(&c, "meta");
    int rc = -1;
    if (e && e->kind == RT_CKPT_BYTES) {
        RunMeta meta;
        if (parse_meta(e, &meta, path, err, errlen) == 0) {
            snprintf(model, len, "%s", meta.model);
            *module = rt_ckpt_find(&c, "module/keep") != NULL;
            rc = 0;
        }
    } else {
        snprintf(err, errlen, "%s: has no run description: not a checkpoint mwtc train wrote", path);
    }
    rt_ckpt_free(&c);
    return rc;
}

int run_ckpt_load_matching(RunModel *m, const char *path, char *err, size_t errlen)
{
    const IrGraph *g = graph(m);
    RtCkpt c = { 0 };
    if (rt_ckpt_load(&c, path, err, errlen) != 0)
        return -1;
    int n = 0;
    for (int k = 0; k < 2; k++) {
        const Vec *v = k ? &g->states : &g->params;
        for (int i = 0; i < v->n; i++) {
            const IrValue *t = v->v[i];
            char name[256];
            snprintf(name, sizeof name, "%s/%s", k ? "state" : "param", t->name);
            const RtCkptEntry *e = rt_ckpt_find(&c, name);
            if (!e || e->kind != RT_CKPT_F32 || e->rank != t->rank ||
                memcmp(e->dims, t->d, sizeof(long long) * (size_t)t->rank) != 0)
                continue;
            memcpy(k ? run_state(m, i) : run_param(m, i), e->data, e->bytes);
            n++;
        }
    }
    rt_ckpt_free(&c);
    return n;
}
