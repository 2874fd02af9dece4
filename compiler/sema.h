/* Semantic checks: names, arguments, values, shapes. The result is what the
 * later stages (lowering, training, modularizing) consume. */
#ifndef MWT_SEMA_H
#define MWT_SEMA_H
#include "ast.h"
#include "diag.h"
#include "net.h"

typedef enum { DS_IDX, DS_CIFAR10, DS_CIFAR100, DS_SVHN, DS_SYNTHETIC } DataSource;

typedef struct DatasetInfo {
    const Item *item;
    const char *name;
    DataSource source;
    const char *path;          /* the sources that read a directory */
    bool svhn_extra;           /* svhn(DIR, extra = true): extra_32x32.mat's images train too */
    long long syn_n, syn_test, syn_seed;
    int classes;
    Shape shape;
    int norm_n;                /* 0 none, 1 one pair for all channels, or one per channel */
    double *mean, *std;
    int crop_pad;              /* 0: no random crop */
    bool hflip;
    const char **names;        /* NULL or `classes` class names */
} DatasetInfo;

typedef enum { SCHED_COSINE, SCHED_CONSTANT, SCHED_STEP } Schedule;

/* How the mask generators' two weight matrices start (their b2 always starts at 1):
 * MASK_INIT_LINEAR as every other linear layer, uniform in +-1/sqrt(fan_in) (PyTorch's
 * nn.Linear default); MASK_INIT_KAIMING_NORMAL normal with std sqrt(2/fan_in), as the
 * reference code (qibinhang/MwT, kaiming_normal_) draws them: masks that start more
 * input-dependent, so the modules come out smaller and the model less accurate. */
typedef enum { MASK_INIT_LINEAR, MASK_INIT_KAIMING_NORMAL } MaskInit;

typedef struct TrainInfo {
    const Item *item;
    Net *model;
    DatasetInfo *data;
    int epochs, batch;
    bool batch_default;        /* no batch key: 128 */
    double lr, momentum, weight_decay;
    bool nesterov;
    Schedule schedule;
    int step_every;
    double step_gamma;
    double w_ce, w_cohesion, w_coupling;
    long long seed;
    int threads;               /* 0: every core */
    MaskInit mask_init;
} TrainInfo;

typedef struct ModularizeInfo {
    const Item *item;
    Net *model;
    double threshold;
    bool keep_generators;
} ModularizeInfo;

typedef struct ReuseInfo {
    const Item *item;
    Net *model;
    const char *name;
    int *classes;
    int nclasses;
    int epochs;
    double lr;
    bool keep_generators;
} ReuseInfo;

typedef struct Checked {
    Vec models;                /* Net* */
    Vec datasets;              /* DatasetInfo* */
    Vec trains;                /* TrainInfo* */
    Vec modularizes;           /* ModularizeInfo* */
    Vec reuses;                /* ReuseInfo* */
} Checked;

/* The keys each item's braces take (NULL-terminated): what the checker
 * accepts, and what the REPL's Tab offers there. */
extern const char *const sema_train_keys[], *const sema_modularize_keys[], *const sema_reuse_keys[],
    *const sema_dataset_keys[];
/* The data sources by name, in DataSource's order (NULL-terminated). */
extern const char *const sema_sources[];

/* Checks every item of the program; reports every error it finds. Returns
 * the number of errors. */
int sema_check(Arena *a, Diag *d, const Program *p, Checked *out);

#endif
