/* Modules from kernel frequencies (DESIGN.md "MwT, precisely"): per class
 * and masked kernel, how often the kernel's mask is on over the class's
 * training images; a module keeps the kernels at or above the threshold,
 * with a per-layer fallback; metrics on binary masks (KRR, cohesion,
 * coupling); the logistic calibration that composes modules. Pure
 * computations on arrays: no model, no data. Prefix mod_. */
#ifndef MWT_MODULES_H
#define MWT_MODULES_H
#include <stdint.h>

typedef struct ModStats {
    int classes, layers;
    long long kernels;         /* masked kernels, all layers */
    long long *layer_off;      /* by layer: its first kernel; layer_off[layers] = kernels */
    int *group;                /* by layer: layers that meet at a residual add share a group */
    double *freq;              /* [classes][kernels] */
    long long *count;          /* [classes] training images seen */
} ModStats;

/* The module of a set of classes: keep[j] = 1 for each kept kernel. A
 * class keeps kernel j when freq >= threshold; a layer that would keep none
 * lowers its threshold by 0.05 until one survives; a set keeps the union of
 * its classes; layers of one residual group keep the union of their kept
 * channels (so an add's two operands agree). */
void mod_module(const ModStats *s, const int *classes, int n, double threshold, unsigned char *keep);
long long mod_kept(const unsigned char *keep, long long n);

/* Jaccard index of two bit sets of `words` 64-bit words (1 when both are empty). */
double mod_jaccard(const uint64_t *a, const uint64_t *b, int words);
/* Cohesion of one class: the mean pairwise Jaccard index of its images'
 * binary masks (masks: n rows of `words` words), each ANDed with the module. */
double mod_cohesion(const uint64_t *masks, long long n, const uint64_t *module, int words);

/* A logistic calibration: p = sigmoid(w . standardize(x) + b), x the
 * features of a module's logits z [logits] for its class `own`, to "is its
 * class". Up to 32 classes the features are the logits themselves; past that
 * they are the own logit, the largest other logit and the own log-softmax
 * (a Newton step on all of them would solve a system of classes + 1 unknowns
 * per image and module). */
typedef struct ModCalib {
    int logits, own, dim;              /* dim: features */
    double mean[32], std[32], w[33];   /* w[dim] is the bias */
} ModCalib;
/* Fits by Newton's method with a small L2 penalty, on n rows of logits
 * z [n][logits] and targets y [n] (0/1). */
void mod_calib_fit(ModCalib *c, const float *z, const unsigned char *y, long long n, int logits, int own);
double mod_calib_score(const ModCalib *c, const float *z);

#endif
