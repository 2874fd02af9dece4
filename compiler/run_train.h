/* Training and evaluation as commands: data, schedule, progress, checkpoints. */
#ifndef MWT_RUN_TRAIN_H
#define MWT_RUN_TRAIN_H
#include "run.h"

typedef struct RunOptions {
    int epochs;                /* <= 0: the train statement's */
    long long limit;           /* <= 0: every training image */
    int threads;               /* <= 0: the statement's, else every core */
    long long seed;            /* < 0: the statement's */
    int progress;              /* RT_PROGRESS_* */
    const char *ckpt;          /* where to write (train) or read (eval) */
    const char *resume;        /* a checkpoint to continue from, or NULL */
    const char *source_path;   /* the program, stored in the checkpoint */
    int stop_after;            /* > 0: stop after this epoch as if interrupted (tests) */
    /* reuse: train and test on these classes only, relabelled 0..n-1; start
     * from the parameters of init_from that the model shares; a module's
     * keep vector and generators */
    const int *subset;
    int nsubset;
    /* eval: the model's outputs (after the relabelling) it picks among, and
     * the only labels whose images it counts; NULL: all */
    const unsigned char *among;
    const char *init_from;
    const unsigned char *keep;
    int generators;
} RunOptions;

typedef struct RunResult {
    int epochs;
    double accuracy;           /* test accuracy after the last epoch */
    double loss, train_accuracy;   /* the last epoch's means */
    double images_per_s;       /* training steps only, over the epochs run here */
    double seconds, compile_seconds;
    int threads;
    double one_thread;         /* the share of training steps run on one thread, which was faster then */
    long long images;          /* test images evaluated */
    long long steps;           /* optimizer steps the checkpoint's parameters have taken, all epochs */
    bool batchnorm;            /* the model has batchnorm layers (running statistics) */
    /* eval --module of one class, which is always right among its classes: how often,
     * choosing among all outputs, it says its class on that class's images */
    bool has_recall;
    double recall;
    /* and, with masks, how its calibrated probability (NAME_probability of an
     * emitted module) answers "is it its class?" over all test images */
    bool has_yes_no;
    double yes_no_accuracy, yes_no_recall, yes_no_precision;
    long long yes_no_images;   /* all the test images */
    bool no_masks;             /* eval --module of a model without masks: the whole model */
    long long *class_correct, *class_total;   /* per class, arena-allocated */
    int classes;
} RunResult;

/* A checkpoint's description of its run. */
typedef struct RunMeta {
    char model[128];
    int epoch, epochs, batch;
    long long seed, limit;
    unsigned long data;        /* CRC-32 of the training images and labels; 0: not recorded (older checkpoints) */
} RunMeta;

int run_data_load(const DatasetInfo *d, int threads, RtDataset *out, RtNormalize *norm, RtAugment *aug, char *err,
                  size_t errlen);

/* Trains t's model; writes o->ckpt after every epoch. */
int run_train(Arena *a, const TrainInfo *t, const RunOptions *o, RunResult *r, char *err, size_t errlen);
/* Evaluates the checkpoint o->ckpt of `net` on the test images of `data`
 * (with o->subset, of those classes, relabelled 0..n-1 in their order). */
int run_eval(Arena *a, const Net *net, const DatasetInfo *data, const RunOptions *o, RunResult *r, char *err,
             size_t errlen);

/* Checkpoints (run_ckpt.c): the model's tensors by name, optimizer state,
 * RNG, the program's source and the run's description. */
int run_ckpt_save(RunModel *m, const char *path, const RunMeta *meta, const RtRng *rng, const char *source_path,
                  char *err, size_t errlen);
/* Restores every tensor the model has (moments only when `moments`) and
 * the module it was trained as, if any; checks that the checkpoint is of
 * this model. */
int run_ckpt_load(RunModel *m, const char *path, RunMeta *meta, RtRng *rng, int moments, char *err, size_t errlen);
/* The name of the model a checkpoint is of (its "meta"), into model, and
 * whether it was trained as a module (it holds module/keep). */
int run_ckpt_model(const char *path, char *model, size_t len, int *module, char *err, size_t errlen);
/* Loads every parameter and state the checkpoint has under the model's names
 * and shapes; the number loaded, or -1. */
int run_ckpt_load_matching(RunModel *m, const char *path, char *err, size_t errlen);
/* The dataset restricted to `classes`, relabelled 0..n-1 in their order. */
int run_data_subset(RtDataset *ds, const int *classes, int n, char *err, size_t errlen);
/* A copy of `net` with a new head: relu, linear(classes). */
Net *run_head_net(Arena *a, const Net *net, const char *name, int classes);

#endif
