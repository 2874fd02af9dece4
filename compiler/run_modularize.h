/* Modularizing a trained checkpoint: kernel frequencies (computed once and
 * stored in the checkpoint), one module per class, their metrics, the
 * calibration that composes them, and the threshold sweep. */
#ifndef MWT_RUN_MODULARIZE_H
#define MWT_RUN_MODULARIZE_H
#include <stdio.h>

#include "mwt_modules.h"
#include "run_train.h"

typedef struct ModuleReport {
    int cls;
    long long kernels;
    double krr, recall;
    long long flops, params;
} ModuleReport;

typedef struct ModReport {
    const char *model, *dataset;
    const char **names;
    int classes;
    double threshold;
    int generators;
    double accuracy, modular_accuracy, modular_accuracy_raw;
    long long masked_kernels;
    double krr, cohesion, coupling;
    long long flops, params;            /* the whole model's */
    ModuleReport *modules;
    int stored;                        /* accuracy, cohesion, recall, composed: as a modularize stored them */
    int nsweep;
    long long sweep_images;            /* test images the sweep used */
    double sweep_seconds;              /* the time it took */
    double sweep_t[16], sweep_krr[16], sweep_recall[16], sweep_acc[16], sweep_raw[16];
} ModReport;

/* threshold < 0: the statement's; sweep: also the thresholds 0.5 .. 0.95 on
 * subsets of the images. Writes the frequencies, the modules, their
 * calibrations and what was measured on images into the checkpoint o->ckpt
 * unless `readonly`; reads the last two back when they were measured on the
 * same modules, tensors and data (run_mzstore.c). */
int run_modularize(Arena *a, const TrainInfo *t, const ModularizeInfo *mi, const RunOptions *o, double threshold,
                   int sweep, int readonly, ModReport *r, char *err, size_t errlen);
/* eval --module: the module of `classes`, sliced and compiled on its own, on
 * the test images of those classes, each predicted as the argmax over the
 * module's classes. */
int run_eval_module(Arena *a, const TrainInfo *t, const ModularizeInfo *mi, const RunOptions *o, double threshold,
                    const int *classes, int n, RunResult *res, double *krr, char *err, size_t errlen);
/* reuse: the module of ru's classes (from ckpt_in's frequencies) with a new
 * head relu -> linear(classes), fine-tuned on those classes' images; the
 * result is the last epoch's, on their test images; *krr the module's. */
int run_reuse(Arena *a, const TrainInfo *t, const ModularizeInfo *mi, const ReuseInfo *ru, const RunOptions *o,
              const char *ckpt_in, const char *ckpt_out, RunResult *res, double *krr, char *err, size_t errlen);
/* What emit wrote: the module's kernels (of `masked`), its KRR, the
 * threshold and generators it was cut with, the checkpoint's epoch, floats
 * per image, whether it has NAME_probability (a one-class module's
 * calibration), the CPU it was compiled for. */
typedef struct RunEmitResult {
    long long kernels, masked, input;
    double krr, threshold;
    int generators, epoch, calibrated;
    int bulk;                  /* the images its bulk graph runs at a time (K_AOT_BULK), 0 without one */
    const char *cpu;
} RunEmitResult;
/* emit (run_emit.c): the module of `classes` (from t's checkpoint o->ckpt;
 * or, with ru, the reuse's checkpoint, its module and head) as the object
 * file obj defining NAME_run, compiled for `cpu` (NULL: this machine's), and
 * its header hdr. */
int run_emit(Arena *a, const TrainInfo *t, const ModularizeInfo *mi, const ReuseInfo *ru, const RunOptions *o,
             double threshold, const int *classes, int n, const char *name, const char *cpu, const char *obj,
             const char *hdr, RunEmitResult *res, char *err, size_t errlen);
void mod_report_text(FILE *out, const ModReport *r);
void mod_report_json(FILE *out, const ModReport *r);
int mod_report_svg(const char *path, const ModReport *r, char *err, size_t errlen);

#endif
