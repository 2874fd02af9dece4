/* The modules of the last modularize, kept in its checkpoint (run_mz.h).
 *
 * What modularize measures on images (the model's test accuracy, cohesion,
 * each module's own-class recall, the modules composed) takes a forward pass
 * of the model and of every module over the test set: most of the time of a
 * `report`. Those figures are a function of the checkpoint's tensors, the
 * model's inference graph, the data, the modules' kernels and whether they
 * keep their generators, and of nothing else (same seed, same result, any
 * thread count, on one CPU). So modularize stores them in the checkpoint under a
 * fingerprint of all of that, with the modules and their calibrations, and a
 * later report or modularize whose fingerprint matches reads them instead of
 * measuring again. Anything else (the modules' KRR, FLOPs, coupling) is
 * cheap and is always computed.
 *
 * Entries: mwt/modules (bytes: [class][kernel] 0/1), mwt/calib (f32
 * [class][3 * features + 1]: the features' means, deviations, weights, then
 * the bias; ModCalib), and
 * mwt/report (text, one `key value` per line, numbers as %.17g so that they
 * come back to the last bit). */
#define _GNU_SOURCE /* open_memstream */
#include "run_mz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "jit.h"
#include "rt_ckpt.h"

/* How mwtc measures modules; a change to what it measures (not to the
 * inputs below) bumps it, so that figures stored before are measured again.
 * 2: a masked conv whose channels are the logits keeps them all in a module.
 * 3: inference convs picked for the forward alone (their sums round
 * differently), and the CPU in the fingerprint.
 * 4: inference convs picked again (F(4x4) at 14x14 with 8-float vectors,
 * Winograd from 2 input channels on: k_wino_infer_ok). */
#define MEASURE_VERSION "mwtc modules 4"

/* Everything the measured figures depend on, as one CRC-32. */
static unsigned long fingerprint(const Mz *z, const RtCkpt *c, const unsigned char *keeps, int generators)
{
    unsigned long h = rt_crc32(0, MEASURE_VERSION, sizeof MEASURE_VERSION - 1);
    /* the kernels' vector width and instructions: the same seed gives the
     * same figures on the same CPU, another CPU rounds its own way */
    const char *cpu = jit_cpu(z->m.jit), *features = jit_cpu_features(z->m.jit);
    h = rt_crc32(h, cpu, strlen(cpu) + 1), h = rt_crc32(h, features, strlen(features) + 1);
    for (int i = 0; i < c->n; i++) {   /* the tensors and the run's metadata, not what modularize added */
        if (!strncmp(c->e[i].name, "mwt/", 4))
            continue;
        h = rt_crc32(h, c->e[i].name, strlen(c->e[i].name) + 1);
        h = rt_crc32(h, c->e[i].data, c->e[i].bytes);
    }
    char *ir = NULL;                   /* the inference graph, as `mwtc dump ir` prints it */
    size_t len = 0;
    FILE *f = open_memstream(&ir, &len);
    if (f) {
        ir_print(f, z->m.eval.g);
        fclose(f);
        h = rt_crc32(h, ir, len);
    }
    free(ir);
    const RtDataset *d = &z->ds;
    size_t img = rt_data_image_size(d);
    long long shape[6] = { d->classes, d->channels, d->height, d->width, (long long)d->n_train, (long long)d->n_test };
    h = rt_crc32(h, shape, sizeof shape);
    h = rt_crc32(h, d->train_x, d->n_train * img), h = rt_crc32(h, d->train_y, d->n_train);
    h = rt_crc32(h, d->test_x, d->n_test * img), h = rt_crc32(h, d->test_y, d->n_test);
    h = rt_crc32(h, &z->norm.n, sizeof z->norm.n);
    h = rt_crc32(h, z->norm.mean, sizeof(float) * (size_t)z->norm.n);
    h = rt_crc32(h, z->norm.std, sizeof(float) * (size_t)z->norm.n);
    h = rt_crc32(h, &generators, sizeof generators);
    h = rt_crc32(h, &z->ntrain, sizeof z->ntrain);   /* the calibration images come from the first ntrain */
    return rt_crc32(h, keeps, (size_t)(z->classes * z->st.kernels));
}

/* One line "key value" at *p, advancing past it; 0 when the line is not that. */
static int read_line(const char **p, const char *key, double *v)
{
    size_t k = strlen(key);
    if (strncmp(*p, key, k) || (*p)[k] != ' ')
        return 0;
    char *end;
    *v = strtod(*p + k + 1, &end);
    if (end == *p + k + 1 || *end != '\n')
        return 0;
    *p = end + 1;
    return 1;
}

int mz_measured_load(Mz *z, const char *ckpt, const unsigned char *keeps, int generators, ModReport *r,
                     double *threshold)
{
    *threshold = -1;
    RtCkpt c = { 0 };
    char err[256];
    if (rt_ckpt_load(&c, ckpt, err, sizeof err) != 0)
        return 0;
    const RtCkptEntry *e = rt_ckpt_find(&c, "mwt/report");
    int C = z->classes, ok = 0;
    char *text = e && e->kind == RT_CKPT_BYTES ? malloc(e->bytes + 1) : NULL;
    if (text) {
        memcpy(text, e->data, e->bytes);
        text[e->bytes] = 0;
        const char *p = text;
        double fp, acc, coh, mod, raw, rec[256];
        ok = read_line(&p, "fingerprint", &fp) && read_line(&p, "threshold", threshold) &&
             fp == (double)fingerprint(z, &c, keeps, generators) &&
             read_line(&p, "accuracy", &acc) && read_line(&p, "cohesion", &coh) &&
             read_line(&p, "modular_accuracy", &mod) && read_line(&p, "modular_accuracy_raw", &raw);
        for (int k = 0; ok && k < C; k++)
            ok = read_line(&p, "recall", &rec[k]) && rec[k] >= 0 && rec[k] <= 1;
        ok = ok && *p == 0;
        if (ok) {
            r->accuracy = acc, r->cohesion = coh, r->modular_accuracy = mod, r->modular_accuracy_raw = raw;
            for (int k = 0; k < C; k++)
                r->modules[k].recall = rec[k];
        }
    }
    free(text);
    rt_ckpt_free(&c);
    return ok ? 1 : e ? -1 : 0;
}

int mz_measured_save(Mz *z, const char *ckpt, const unsigned char *keeps, int generators, const ModCalib *cal,
                     const ModReport *r, char *err, size_t errlen)
{
    RtCkpt c = { 0 };
    if (rt_ckpt_load(&c, ckpt, err, errlen) != 0)
        return -1;
    int C = z->classes, rc = -1, dim = cal[0].dim, w = 3 * dim + 1;
    size_t cap = 512 + 40 * (size_t)C;
    char *text = malloc(cap);
    float *cf = malloc(sizeof(float) * (size_t)(C * w));
    if (!text || !cf) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    size_t n = (size_t)snprintf(text, cap,
                                "fingerprint %lu\nthreshold %.17g\naccuracy %.17g\ncohesion %.17g\n"
                                "modular_accuracy %.17g\nmodular_accuracy_raw %.17g\n",
                                fingerprint(z, &c, keeps, generators), r->threshold, r->accuracy, r->cohesion,
                                r->modular_accuracy, r->modular_accuracy_raw);
    for (int k = 0; k < C && n < cap; k++)
        n += (size_t)snprintf(text + n, cap - n, "recall %.17g\n", r->modules[k].recall);
    for (int k = 0; k < C; k++) {
        float *row = cf + (long long)k * w;
        for (int j = 0; j < dim; j++)
            row[j] = (float)cal[k].mean[j], row[dim + j] = (float)cal[k].std[j], row[2 * dim + j] = (float)cal[k].w[j];
        row[3 * dim] = (float)cal[k].w[dim];
    }
    long long d2[2] = { C, w };
    if (rt_ckpt_add_bytes(&c, "mwt/modules", keeps, (size_t)(C * z->st.kernels)) != 0 ||
        rt_ckpt_add_f32(&c, "mwt/calib", 2, d2, cf) != 0 || rt_ckpt_add_bytes(&c, "mwt/report", text, n) != 0) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    rc = rt_ckpt_save(&c, ckpt, err, errlen);
done:
    free(text), free(cf);
    rt_ckpt_free(&c);
    return rc;
}
