/* What modularize measures on images (run_mz.h): the model on the test
 * images (accuracy, binary masks, cohesion), every module on the test images
 * and on calibration images spread over the training set (own-class recall),
 * the modules composed by calibrated scores and by raw logits, and the
 * threshold sweep. Each module is sliced to a model of its own, and the
 * modules compile together (run_module.c); the nodes all modules share run
 * once per batch. */
#include "run_mz.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_progress.h"

/* Per module c: logits over the calibration images and the test images. */
typedef struct Scores {
    long long ncal, ntest;
    float *cal, *test;         /* [module][image][classes] */
    int32_t *cal_lab, *test_lab;
} Scores;

/* Per class its module (generators kept or left out), sliced on its own. */
static int module_scores(Mz *z, Arena *a, const unsigned char *keeps, int generators, const uint32_t *cal_idx,
                         Scores *s, char *err, size_t errlen)
{
    RunPass passes[2] = { { 0, cal_idx, s->ncal, s->cal, s->cal_lab }, { 1, NULL, s->ntest, s->test, s->test_lab } };
    return run_modules_eval(a, &z->m, &z->ds, &z->norm, keeps, z->st.kernels, z->classes, generators, NULL, 1, passes,
                            2, RUN_MODULES_BUDGET, z->bar, err, errlen);
}

/* Recall per module, composed accuracy raw and calibrated; each module's
 * calibration into cals [class] unless NULL. */
static void compose(Mz *z, const Scores *s, double *recall, double *acc, double *raw, ModCalib *cals)
{
    int C = z->classes;
    ModCalib cal;
    double *score = calloc((size_t)(s->ntest * C + 1), sizeof(double));
    for (int c = 0; c < C; c++) {
        const float *lc = s->cal + (long long)c * s->ncal * C, *lt = s->test + (long long)c * s->ntest * C;
        if (mz_calib_fit(&cal, lc, s->cal_lab, s->ncal, C, c) != 0)
            memset(&cal, 0, sizeof cal);   /* out of memory: no features, every score 0.5 */
        if (cals)
            cals[c] = cal;
        long long hit = 0, n = 0;
        for (long long i = 0; i < s->ntest; i++) {
            score[i * C + c] = mod_calib_score(&cal, lt + i * C);
            if (s->test_lab[i] == c) {
                n++;
                hit += run_argmax(lt + i * C, C) == c;
            }
        }
        recall[c] = n ? (double)hit / (double)n : NAN;   /* no test images of c: no recall to report */
    }
    long long ok = 0, okraw = 0;
    for (long long i = 0; i < s->ntest; i++) {
        int best = 0, braw = 0;
        for (int c = 1; c < C; c++) {
            if (score[i * C + c] > score[i * C + best])
                best = c;
            if (s->test[((long long)c * s->ntest + i) * C + c] > s->test[((long long)braw * s->ntest + i) * C + braw])
                braw = c;
        }
        ok += best == s->test_lab[i];
        okraw += braw == s->test_lab[i];
    }
    *acc = s->ntest ? (double)ok / (double)s->ntest : 0;
    *raw = s->ntest ? (double)okraw / (double)s->ntest : 0;
    free(score);
}

/* n indices spread evenly over [0, total): every class is represented. */
static uint32_t *spread(long long total, long long n)
{
    uint32_t *v = malloc(sizeof(uint32_t) * (size_t)(n ? n : 1));
    for (long long i = 0; v && i < n; i++)
        v[i] = (uint32_t)(i * total / n);
    return v;
}

uint32_t *mz_calib_idx(const Mz *z, long long *n)
{
    *n = z->ntrain < 2000 ? z->ntrain : 2000;   /* spread over the images this run uses */
    return spread(z->ntrain, *n);
}

int mz_calib_fit(ModCalib *c, const float *lg, const int32_t *labels, long long n, int classes, int own)
{
    unsigned char *y = malloc((size_t)n + 1);
    if (!y)
        return -1;
    for (long long i = 0; i < n; i++)
        y[i] = labels[i] == own;
    mod_calib_fit(c, lg, y, n, classes, own);
    free(y);
    return 0;
}

static int alloc_scores(Scores *s, long long ncal, long long ntest, int C)
{
    s->ncal = ncal, s->ntest = ntest;
    s->cal = malloc(sizeof(float) * (size_t)(C * C * ncal + 1));
    s->test = malloc(sizeof(float) * (size_t)(C * C * ntest + 1));
    s->cal_lab = malloc(sizeof(int32_t) * (size_t)(ncal + 1));
    s->test_lab = malloc(sizeof(int32_t) * (size_t)(ntest + 1));
    return s->cal && s->test && s->cal_lab && s->test_lab ? 0 : -1;
}

static void free_scores(Scores *s) { free(s->cal), free(s->test), free(s->cal_lab), free(s->test_lab); }

/* The threshold sweep: 0.5 .. 0.95 on subsets (1000 test images, 500
 * calibration images). One slice per class, made for the union of its
 * modules over every threshold, evaluates all of them with its other kernels
 * switched off: ten slices, not a hundred, compiled together; and the nodes
 * every module shares run once per batch, not a hundred times. */
int mz_sweep(Mz *z, Arena *a, ModReport *r, const RunOptions *o, char *err, size_t errlen)
{
    enum { NT = 10 };
    int C = z->classes, rc = -1;
    ModStats *s = &z->st;
    long long ntrain = z->ntrain, ntest = (long long)z->ds.n_test;
    long long nt = ntest < 1000 ? ntest : 1000, nc = ntrain < 500 ? ntrain : 500;
    double t0 = rt_clock();
    uint32_t *cal_idx = spread(ntrain, nc), *test_idx = spread(ntest, nt);
    unsigned char *keeps = malloc((size_t)(C * NT * s->kernels + 1)), *uni = malloc((size_t)(C * s->kernels + 1));
    float *lcal = malloc(sizeof(float) * (size_t)(C * NT * nc * C + 1));
    float *ltest = malloc(sizeof(float) * (size_t)(C * NT * nt * C + 1));
    int32_t *labcal = malloc(sizeof(int32_t) * (size_t)(nc + 1)), *labtest = malloc(sizeof(int32_t) * (size_t)(nt + 1));
    Scores sc[NT];
    memset(sc, 0, sizeof sc);
    int ok = cal_idx && test_idx && keeps && uni && lcal && ltest && labcal && labtest;
    for (int i = 0; i < NT && ok; i++)
        ok = alloc_scores(&sc[i], nc, nt, C) == 0;
    if (!ok) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (o->progress != RT_PROGRESS_QUIET)
        fprintf(stderr, "%s %s: sweep of %d thresholds on %lld test and %lld calibration images\n", mz_who(z),
                z->m.net->name, NT, nt, nc);
    double krr[NT] = { 0 };
    for (int c = 0; c < C; c++) {
        unsigned char *u = uni + (long long)c * s->kernels;
        memset(u, 0, (size_t)s->kernels);
        for (int i = 0; i < NT; i++) {
            unsigned char *k = keeps + ((long long)c * NT + i) * s->kernels;
            mod_module(s, &c, 1, 0.5 + 0.05 * i, k);
            krr[i] += (double)mod_kept(k, s->kernels) / (double)s->kernels / C;
            for (long long j = 0; j < s->kernels; j++)
                u[j] |= k[j];
        }
    }
    RunPass passes[2] = { { 0, cal_idx, nc, lcal, labcal }, { 1, test_idx, nt, ltest, labtest } };
    RtProgress *bar = rt_work_begin(stderr, o->progress, "sweep", (long long)C * (nc + nt));
    int bad = run_modules_eval(a, &z->m, &z->ds, &z->norm, uni, s->kernels, C, r->generators ? 1 : -1, keeps, NT,
                               passes, 2, RUN_MODULES_BUDGET, bar, err, errlen);
    rt_progress_end(bar);
    if (bad)
        goto done;
    for (int i = 0; i < NT; i++) {   /* [class][threshold][image] -> per threshold [class][image] */
        for (int c = 0; c < C; c++) {
            memcpy(sc[i].cal + (long long)c * nc * C, lcal + ((long long)c * NT + i) * nc * C,
                   sizeof(float) * (size_t)(nc * C));
            memcpy(sc[i].test + (long long)c * nt * C, ltest + ((long long)c * NT + i) * nt * C,
                   sizeof(float) * (size_t)(nt * C));
        }
        memcpy(sc[i].cal_lab, labcal, sizeof(int32_t) * (size_t)nc);
        memcpy(sc[i].test_lab, labtest, sizeof(int32_t) * (size_t)nt);
    }
    for (int i = 0; i < NT; i++) {
        double recall[256], rec = 0;
        int with = 0;   /* classes with test images in the subset: the mean is over those */
        compose(z, &sc[i], recall, &r->sweep_acc[i], &r->sweep_raw[i], NULL);
        for (int c = 0; c < C; c++)
            if (!isnan(recall[c]))
                rec += recall[c], with++;
        r->sweep_t[i] = 0.5 + 0.05 * i, r->sweep_krr[i] = krr[i], r->sweep_recall[i] = with ? rec / with : NAN;
    }
    r->nsweep = NT;
    r->sweep_images = nt;
    r->sweep_seconds = rt_clock() - t0;
    rc = 0;
done:
    for (int i = 0; i < NT; i++)
        free_scores(&sc[i]);
    free(cal_idx), free(test_idx), free(keeps), free(uni), free(lcal), free(ltest), free(labcal), free(labtest);
    return rc;
}

int mz_measure(Mz *z, Arena *a, const unsigned char *keeps, const uint64_t *mod_bits, ModReport *r, ModCalib *cals,
               const RunOptions *o, char *err, size_t errlen)
{
    int C = z->classes, rc = -1;
    long long ntest = (long long)z->ds.n_test;
    long long ncal;
    uint64_t *bits = malloc(sizeof(uint64_t) * (size_t)(ntest * z->words + 1));
    uint64_t *cls = malloc(sizeof(uint64_t) * (size_t)(ntest * z->words + 1));
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)(ntest + 1));
    float *lg = malloc(sizeof(float) * (size_t)(ntest * C + 1));
    uint32_t *cal_idx = mz_calib_idx(z, &ncal);
    Scores sc = { 0 };
    if (!bits || !cls || !lab || !lg || !cal_idx || alloc_scores(&sc, ncal, ntest, C) != 0) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (o->progress != RT_PROGRESS_QUIET)
        fprintf(stderr, "%s %s: %d modules on %lld test and %lld calibration images\n", mz_who(z), z->m.net->name,
                C, ntest, ncal);
    /* one bar for the model's pass and the modules': the model's is about one module's */
    z->bar = rt_work_begin(stderr, o->progress, "modules", ntest + (long long)C * (ntest + ncal));
    /* the model as trained, and the test images' binary masks */
    if (mz_forward(z, &z->m, 1, NULL, ntest, lg, bits, NULL, lab, err, errlen) != 0)
        goto done;
    long long right = 0;
    for (long long i = 0; i < ntest; i++)
        right += run_argmax(lg + i * C, C) == lab[i];
    r->accuracy = ntest ? (double)right / (double)ntest : 0;
    double coh = 0;
    for (int c = 0; c < C; c++) {
        long long n = 0;
        for (long long i = 0; i < ntest; i++)
            if (lab[i] == c)
                memcpy(cls + n++ * z->words, bits + i * z->words, sizeof(uint64_t) * (size_t)z->words);
        coh += mod_cohesion(cls, n, mod_bits + (long long)c * z->words, z->words);
    }
    r->cohesion = coh / C;

    if (module_scores(z, a, keeps, r->generators, cal_idx, &sc, err, errlen) != 0)
        goto done;
    double recall[256];
    compose(z, &sc, recall, &r->modular_accuracy, &r->modular_accuracy_raw, cals);
    for (int c = 0; c < C; c++)
        r->modules[c].recall = recall[c];
    rc = 0;
done:
    rt_progress_end(z->bar);
    z->bar = NULL;
    free_scores(&sc);
    free(bits), free(cls), free(lab), free(lg), free(cal_idx);
    return rc;
}

