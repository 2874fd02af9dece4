/* What modularize, eval --module and reuse share (run_modularize.c,
 * run_mzmeasure.c, run_mzstore.c): the data, the modular model's inference
 * graph with a checkpoint's tensors, the masked layers' layout, the kernel
 * frequencies, and what is measured on images. Internal to compiler/. */
#ifndef MWT_RUN_MZ_H
#define MWT_RUN_MZ_H
#include "run_modularize.h"

typedef struct Mz {
    RunModel m;
    RtDataset ds;
    RtNormalize norm;
    ModStats st;
    int words;                 /* 64-bit words of one image's binary mask */
    int classes;
    long long ntrain;          /* training images this run uses: the first ntrain (--limit) */
    const char *who;           /* the command its progress lines name: "modularize" (the default), "report", "eval", "emit" */
    RtProgress *bar;           /* the work bar mz_forward adds its images to (NULL: none) */
} Mz;

/* A new Mz in *out: t's data, the inference graph of its model with ckpt's
 * tensors, the masked layers' layout and residual groups, room for the
 * frequencies. On failure *out may hold a part of it: mz_close it anyway. */
int mz_open(Mz **out, Arena *a, const TrainInfo *t, const char *ckpt, int threads, RunMeta *meta, char *err,
            size_t errlen);
/* Frees all of it (NULL: nothing). */
void mz_close(Mz *z);
/* The command z's progress lines name. */
static inline const char *mz_who(const Mz *z) { return z->who ? z->who : "modularize"; }
/* The frequencies from the checkpoint o->ckpt where they were counted over
 * the training images this run uses (o->limit: the first N, into z->ntrain),
 * else counted over those (and stored there unless readonly). */
int mz_frequencies(Mz *z, const RunOptions *o, int readonly, char *err, size_t errlen);
/* Images idx[0..n) of a split (idx NULL: the first n) through m's inference
 * graph: per image its logits, its binary masks, and per class the count of
 * each kernel on (each output optional). 0, or -1 (err says so) where the
 * REPL's Ctrl-C asked to stop (rt_interrupted), the outputs then partial. */
int mz_forward(Mz *z, RunModel *m, int split, const uint32_t *idx, long long n, float *logits, uint64_t *bits,
               double *on, int32_t *labels, char *err, size_t errlen);
/* The training images modules are calibrated on (DESIGN.md): *n of them,
 * at most 2000, spread evenly over those this run uses, so that every
 * class is there. malloc'd; NULL when out of memory. */
uint32_t *mz_calib_idx(const Mz *z, long long *n);
/* Module `own`'s calibration from its logits lg [n][classes] over those
 * images and their labels: 0, or -1 when out of memory. */
int mz_calib_fit(ModCalib *c, const float *lg, const int32_t *labels, long long n, int classes, int own);
/* The figures that take images (run_mzmeasure.c), into r: the model's test
 * accuracy, cohesion (per class over its test images, each image's masks
 * ANDed with its module: mod_bits [class][words]), each module's own-class
 * recall and the modules composed, calibrated on training images of every
 * class (into cals [class]). */
int mz_measure(Mz *z, Arena *a, const unsigned char *keeps, const uint64_t *mod_bits, ModReport *r, ModCalib *cals,
               const RunOptions *o, char *err, size_t errlen);
/* The sweep of thresholds 0.5 .. 0.95 on subsets of the images, into r's sweep_*. */
int mz_sweep(Mz *z, Arena *a, ModReport *r, const RunOptions *o, char *err, size_t errlen);

/* The figures measured on images (the model's accuracy, cohesion, each
 * module's recall, the composed accuracies) as the last modularize stored
 * them in ckpt, into r: 1 when they were there and measured with these
 * tensors, graph, data, keeps [class][kernel] and generators; else r
 * untouched and 0 when ckpt holds none, -1 when it holds figures of other
 * modules or of another build or CPU, *threshold theirs (run_mzstore.c). */
int mz_measured_load(Mz *z, const char *ckpt, const unsigned char *keeps, int generators, ModReport *r,
                     double *threshold);
/* Stores them in ckpt, with the modules and their calibrations cal [class]. */
int mz_measured_save(Mz *z, const char *ckpt, const unsigned char *keeps, int generators, const ModCalib *cal,
                     const ModReport *r, char *err, size_t errlen);

#endif
