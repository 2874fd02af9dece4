/* A module used on its own: eval --module (its classes' test images through
 * the sliced module) and reuse (the module with a new head, fine-tuned on its
 * classes' images). */
#include <stdlib.h>
#include <string.h>

#include "run_modularize.h"
#include "run_mz.h"

/* As emit calibrates the module (one calibration per class, fitted on its
 * logits lc of the nc calibration images), what its NAME_probability says
 * of every test image: the class of the highest probability if that is
 * above 0.5, else none of them. Right when that is the image's class, or
 * none for an image of another class; recall over the images of the
 * module's classes, precision over those it named a class. For one class,
 * yes or no. 0, or -1 out of memory. */
static int yes_no(RunResult *res, const float *lg, const int32_t *lab, long long ntest, const float *lc,
                  const int32_t *labc, long long nc, int C, const int *classes, int n)
{
    ModCalib *cal = malloc(sizeof(ModCalib) * (size_t)n);
    for (int k = 0; cal && k < n; k++)
        if (mz_calib_fit(&cal[k], lc, labc, nc, C, classes[k]) != 0) {
            free(cal);
            return -1;
        }
    if (!cal)
        return -1;
    long long right = 0, members = 0, members_right = 0, named = 0, named_right = 0;
    for (long long i = 0; i < ntest; i++) {
        int said = -1, is = -1;
        double best = 0.5;
        for (int k = 0; k < n; k++) {
            double p = mod_calib_score(&cal[k], lg + i * C);
            if (p > best)
                best = p, said = classes[k];
            if (lab[i] == classes[k])
                is = classes[k];
        }
        right += said == is;
        members += is >= 0, members_right += is >= 0 && said == is;
        named += said >= 0, named_right += said >= 0 && said == is;
    }
    free(cal);
    res->has_yes_no = ntest > 0;
    res->yes_no_images = ntest;
    res->yes_no_accuracy = ntest ? (double)right / (double)ntest : 0;
    res->yes_no_recall = members ? (double)members_right / (double)members : 0;
    res->yes_no_precision = named ? (double)named_right / (double)named : 0;
    return 0;
}

int run_eval_module(Arena *a, const TrainInfo *t, const ModularizeInfo *mi, const RunOptions *o, double threshold,
                    const int *classes, int n, RunResult *res, double *krr, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    Mz *z = NULL;
    int rc = -1, C = t->data->classes;
    unsigned char *keep = NULL;
    float *lg = NULL, *lgc = NULL;
    int32_t *lab = NULL, *labc = NULL;
    uint32_t *cal_idx = NULL;
    long long ncal = 0;
    for (int i = 0; i < n; i++)
        if (classes[i] < 0 || classes[i] >= C) {
            snprintf(err, errlen, "--module: class %d is not one of the %d classes of %s", classes[i], C,
                     t->data->name);
            goto done;
        }
    RunMeta meta;
    if (mz_open(&z, a, t, o->ckpt, o->threads, &meta, err, errlen) != 0)
        goto done;
    z->who = "eval";
    ModStats *s = &z->st;
    /* without masks the module of any classes is the whole model, its scores restricted to them */
    if (s->kernels && mz_frequencies(z, o, 1, err, errlen) != 0)
        goto done;
    keep = malloc((size_t)s->kernels + 1);
    long long ntest = (long long)z->ds.n_test;
    lg = malloc(sizeof(float) * (size_t)(ntest * C + 1));
    lab = malloc(sizeof(int32_t) * (size_t)(ntest + 1));
    if (!keep || !lg || !lab) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    double T = threshold >= 0 ? threshold : mi ? mi->threshold : 0.9;
    mod_module(s, classes, n, T, keep);
    *krr = s->kernels ? (double)mod_kept(keep, s->kernels) / (double)s->kernels : 1;
    res->no_masks = s->kernels == 0;
    if (s->kernels) {   /* the module sliced to a model of its own, also on the calibration images */
        int gen = mi ? mi->keep_generators : 1;
        cal_idx = mz_calib_idx(z, &ncal);
        lgc = malloc(sizeof(float) * (size_t)(ncal * C + 1));
        labc = malloc(sizeof(int32_t) * (size_t)(ncal + 1));
        if (!cal_idx || !lgc || !labc) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        RunPass pass[2] = { { 1, NULL, ntest, lg, lab }, { 0, cal_idx, ncal, lgc, labc } };
        if (run_modules_eval(a, &z->m, &z->ds, &z->norm, keep, s->kernels, 1, gen, NULL, 1, pass, 2,
                             RUN_MODULES_BUDGET, NULL, err, errlen) != 0)
            goto done;
    } else {
        if (mz_forward(z, &z->m, 1, NULL, ntest, lg, NULL, NULL, lab, err, errlen) != 0)
            goto done;
    }
    res->classes = C;
    res->class_correct = arena_alloc(a, sizeof(long long) * (size_t)C);
    res->class_total = arena_alloc(a, sizeof(long long) * (size_t)C);
    long long right = 0, seen = 0;
    for (long long i = 0; i < ntest; i++) {
        int in = -1;
        for (int k = 0; k < n; k++)
            if (lab[i] == classes[k])
                in = k;
        if (in < 0)
            continue;   /* only the module's classes' images */
        int best = classes[0];
        for (int k = 1; k < n; k++)
            if (lg[i * C + classes[k]] > lg[i * C + best])
                best = classes[k];
        seen++;
        right += best == lab[i];
        res->class_total[lab[i]]++;
        res->class_correct[lab[i]] += best == lab[i];
    }
    res->images = seen;
    res->accuracy = seen ? (double)right / (double)seen : 0;
    if (n == 1 && seen) {   /* its own-class recall, as modularize measures it */
        long long said = 0;
        for (long long i = 0; i < ntest; i++)
            said += lab[i] == classes[0] && run_argmax(lg + i * C, C) == classes[0];
        res->has_recall = true;
        res->recall = (double)said / (double)seen;
    }
    if (cal_idx && yes_no(res, lg, lab, ntest, lgc, labc, ncal, C, classes, n) != 0) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    res->epochs = meta.epoch;
    rc = 0;
done:
    free(keep), free(lg), free(lab), free(lgc), free(labc), free(cal_idx);
    mz_close(z);
    return rc;
}

int run_reuse(Arena *a, const TrainInfo *t, const ModularizeInfo *mi, const ReuseInfo *ru, const RunOptions *o,
              const char *ckpt_in, const char *ckpt_out, RunResult *res, double *krr, char *err, size_t errlen)
{
    /* the module of the reused classes, from the trained model's frequencies */
    Mz *z = NULL;
    unsigned char *keep = NULL;
    int rc = -1;
    RunOptions fo = *o;
    fo.ckpt = ckpt_in;
    RunMeta meta;
    if (mz_open(&z, a, t, ckpt_in, o->threads, &meta, err, errlen) != 0)
        goto done;
    ModStats *s = &z->st;
    if (mz_frequencies(z, &fo, 0, err, errlen) != 0)
        goto done;
    keep = malloc((size_t)s->kernels + 1);
    if (!keep) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    mod_module(s, ru->classes, ru->nclasses, mi ? mi->threshold : 0.9, keep);
    *krr = s->kernels ? (double)mod_kept(keep, s->kernels) / (double)s->kernels : 1;
    mz_close(z);   /* before fine-tuning builds its own model */
    z = NULL;

    /* the module with a new head, fine-tuned on the classes' images */
    TrainInfo tr = *t;
    tr.model = run_head_net(a, t->model, ru->name, ru->nclasses);
    tr.epochs = ru->epochs;
    tr.lr = ru->lr;
    tr.schedule = SCHED_COSINE;
    tr.w_ce = 1, tr.w_cohesion = 0, tr.w_coupling = 0;
    RunOptions ro = *o;
    ro.ckpt = ckpt_out;
    ro.resume = NULL;
    ro.subset = ru->classes, ro.nsubset = ru->nclasses;
    ro.init_from = ckpt_in;
    ro.keep = keep, ro.generators = ru->keep_generators;
    if (o->epochs <= 0)
        ro.epochs = ru->epochs;
    rc = run_train(a, &tr, &ro, res, err, errlen);
done:
    free(keep);
    mz_close(z);
    return rc;
}
