/* Running a model: its graphs lowered, differentiated, planned, generated and
 * JIT-compiled for this CPU, one arena for every tensor, a thread pool; then
 * training, evaluation and checkpoints on top (run_train.c, run_ckpt.c).
 * Everything here reports errors as a message in err and a -1. */
#ifndef MWT_RUN_H
#define MWT_RUN_H
#include <stdint.h>

#include "cg.h"
#include "pass_slice.h"
#include "rt_data.h"
#include "rt_pool.h"
#include "rt_progress.h"
#include "rt_rng.h"

typedef struct RunGraph {
    IrGraph *g;
    Plan *plan;
    RtStep *steps;
    int nsteps;
    int *call;                 /* by step: its index in RunModel.calls */
    int *node;                 /* by step: the index of the graph node it computes */
    double *seconds;           /* by step, with $MWTC_PROFILE set: time spent in it */
    double batch_seconds;      /* with $MWTC_PROFILE set: time making its batches (run_make_batch) */
    RtPoolTune tune;           /* on all threads or one: which runs it faster now */
} RunGraph;

typedef struct RunModel {
    const Net *net;
    Jit *jit;
    PlanLayout *L;
    RunGraph train, eval;      /* train.g is NULL for an inference-only model */
    RunGraph prep;             /* eval's preparation (CgCalls.nprep): run before eval when stale */
    int prep_stale;            /* the weights may have changed since prep last ran: set by a
                                  training step and by run_param and run_state, which hand out
                                  the weights to write */
    char *base;                /* the arena: L->size bytes, 64-byte aligned */
    RtPool *pool;
    int pool_borrowed;         /* a module's: its model's pool, not freed with it */
    float **ws;                /* per-thread scratch */
    CgCalls calls;             /* what was compiled, for dump llvm */
    double compile_seconds;    /* its own JIT's (run_model_build): 0 for graphs compiled together */
    int profile;               /* $MWTC_PROFILE: time each step, print a table when freed */
    int module;                /* run as a module (run_model_set_module with a keep): its checkpoints say which */
    int ntrain;                /* calls [0, ntrain) are the training step's */
    int jit_borrowed;          /* jit belongs to others (run_model_prepare_graph) */
} RunModel;

/* An emitted model's calls (run_emit): they run on one thread
 * (CgCalls.threads 1) and choose their kernels as at batch 1
 * (CgCalls.pin_batch), whatever the batch; its preparation's room starts
 * at prepared_at or past it (CgCalls.prepared_at). */
typedef struct RunEmitted {
    long long prepared_at;
} RunEmitted;

/* Builds the model: with `train` its training step (forward, backward, SGD)
 * at the train statement's batch, and always its inference graph at
 * `eval_batch`. emitted: NULL, or how an emitted model's calls are built.
 * 0, or -1 and a message. */
int run_model_build(RunModel *m, Arena *a, const Net *net, const TrainInfo *train, int eval_batch, int threads,
                    const RunEmitted *emitted, char *err, size_t errlen);
/* net's graph at `batch`, verified (and differentiated, with train): NULL
 * and a message when it cannot be. Every graph a model or a module runs
 * starts here. */
IrGraph *run_lower(Arena *a, const Net *net, const TrainInfo *train, long long batch, char *err, size_t errlen);
/* A module of net (keep: per masked kernel, in mask order; its generators
 * kept or dropped) as a network of its own to train: the training graph's
 * forward pass sliced (module_slice), then differentiated, and the
 * inference graph sliced alike (*s: where its tensors come from in net's).
 * A reuse fine-tunes it: the smaller network, not the whole one with its
 * other kernels switched off. 0, or -1 and a message. */
int run_model_build_module_train(RunModel *m, Slice *s, Arena *a, const Net *net, const TrainInfo *train,
                                 const unsigned char *keep, int generators, int eval_batch, int threads, char *err,
                                 size_t errlen);
/* The same for an inference graph made elsewhere (a sliced module's), run
 * on `pool`, which it borrows: the modules of a model share their model's
 * threads, as they run one after the other. A pool per module would leave
 * each module's threads spinning for work while the next module runs. */
int run_model_build_graph(RunModel *m, Arena *a, const Net *net, IrGraph *eval, RtPool *pool,
                          const RunEmitted *emitted, char *err, size_t errlen);
/* The same in three steps, for many graphs and one JIT: each graph planned
 * and generated (its calls named PREFIXn, its channel counts shared where
 * they can be: CgCalls.share) with `jit` borrowed; then all their calls in
 * one jit_add_calls, where calls of one shape share one compiled body
 * whichever graph they come from; then each linked: its steps, arena and
 * scratch, on `pool` (the same pool for both: its threads set how the calls
 * split). Ten modules of a model compile about as fast as one.
 * The caller frees the models, then the JIT. */
int run_model_prepare_graph(RunModel *m, Arena *a, const Net *net, IrGraph *eval, Jit *jit, const RtPool *pool,
                            const char *prefix, char *err, size_t errlen);
int run_models_compile(Jit *jit, RunModel *m, int n, char *err, size_t errlen);
int run_model_link(RunModel *m, Arena *a, RtPool *pool, char *err, size_t errlen);
void run_model_free(RunModel *m);

/* A module as a model of its own (run_module.c): module_slice on full's
 * inference graph for keep (per masked kernel, in mask order), compiled by
 * the same codegen, its tensors gathered from full's; the mask generators
 * kept (1) or dropped (0: left out of the graph; -1: left in but switched
 * off, for a slice that evaluates smaller modules by keep vectors). Its
 * scores are full's with every kernel outside keep switched off. With from > 0 (slice_shared_end) it starts at that
 * node and reads what full's nodes before it computed: run those
 * (run_graph_prefix), then run_module_gather, then the module. emitted:
 * its calls are an emitted module's (run_model_build). */
int run_module_build(RunModel *mod, Slice *s, Arena *a, RunModel *full, const unsigned char *keep, int generators,
                     int from, const RunEmitted *emitted, char *err, size_t errlen);
/* The same module of full's network at another batch (full's own graph
 * lowered again at `batch`, then sliced), its tensors gathered from full's:
 * an emitted module's bulk graph (run_emit). */
int run_module_build_at(RunModel *mod, Slice *s, Arena *a, RunModel *full, long long batch,
                        const unsigned char *keep, int generators, const RunEmitted *emitted, char *err,
                        size_t errlen);
void run_module_gather(RunModel *mod, const Slice *s, const RunModel *full);
/* A built module's parameters and states, gathered from full's by s; its
 * kernels switched as s->keep says, its generators on (> 0) or off. */
void run_module_fill(RunModel *mod, const Slice *s, RunModel *full, int generators);
/* Rows [0, rows) of one of those inputs: src the shared value's images
 * (all their channels), dst the module's. */
void run_module_input_rows(const SliceInput *in, const float *src, float *dst, long long rows);

/* Modules evaluated together: n of them, one per keep vector (`kernels`
 * each, in full's mask order), each sliced from the nodes every module
 * shares on (slice_shared_end). */
typedef struct RunModules {
    int n;
    RunModel *m;
    Slice *s;
    int from;                  /* full's nodes before it run once per batch for all of them */
    long long kernels;         /* full's masked kernels */
    long long chunk;           /* run_variants_forward's images per chunk (0: as its memory allows) */
    long long runs, reused;    /* its image runs, and those it copied from the variant before */
    Jit *jit;                  /* the modules' code, compiled together (run_models_compile) */
    RtProgress *bar;           /* a work bar: each module adds its images as it runs them (NULL: none) */
} RunModules;
/* Builds modules 0, 1, ... of keeps[n] while those built hold less than
 * `budget` bytes (always at least one): ms->n says how many. With probes,
 * each keeps what run_variants_forward reads. */
int run_modules_build(RunModules *ms, Arena *a, RunModel *full, const unsigned char *keeps, long long kernels, int n,
                      int generators, int probes, size_t budget, char *err, size_t errlen);
/* Images idx[0..n) of a split of ds (idx NULL: the first n) through every
 * module: per batch full's shared nodes once, then each module. With
 * `inner` (ninner keep vectors per module, `kernels` each, each inside the
 * module's own), module k runs once per inner[k][t] with its other kernels
 * switched off (a run whose vector equals the one before is not repeated);
 * its scores are logits[((k * ninner + t) * n + image) * classes + c]. */
int run_modules_forward(RunModules *ms, RunModel *full, const RtDataset *ds, const RtNormalize *norm, int split,
                        const uint32_t *idx, long long n, const unsigned char *inner, int ninner, int generators,
                        float *logits, int32_t *labels, char *err, size_t errlen);
/* Whether ms's modules run a module per thread, each graph on one thread
 * (run_graph_alone), rather than one after the other, each graph's steps
 * shared by the threads: where there are at least 2 modules a thread. */
int run_modules_alone(const RunModules *ms);
/* fn(ctx, thread, k) for every module k, in order[0..ms->n): with alone
 * on the modules' pool, each thread taking the next module when it is
 * done with one (a module is never on two threads at once); else on the
 * caller's thread (thread 0). The same results either way. */
void run_modules_each(RunModules *ms, int alone, const int *order, void (*fn)(void *ctx, int thread, int k),
                      void *ctx);
/* order: the modules by cost[k], the costliest first (ties: first come),
 * so that the last ones taken are short. */
void run_modules_order(const RunModules *ms, const long long *cost, int *order);
/* The same with `inner`, as run_modules_forward does it unless
 * MWTC_VARIANT_REUSE=off (run_variants.c): the same scores to the bit, but
 * an image runs again only where the variant's kernels could change them;
 * its modules built with probes. */
int run_variants_forward(RunModules *ms, RunModel *full, const RtDataset *ds, const RtNormalize *norm, int split,
                         const uint32_t *idx, long long n, const unsigned char *inner, int ninner, int generators,
                         float *logits, int32_t *labels, char *err, size_t errlen);
/* Adds to a module's graph, per mask, the value run_variants_forward reads
 * (the first that other ops read of the masked channels; none if a mask
 * has none), and moves each masked conv after its mask's generator, so that
 * the conv can pass over the images and channels the masks turn off. */
void run_variants_probe(Arena *a, IrGraph *g);
/* One set of images for run_modules_eval, and where their scores go
 * (laid out as run_modules_forward's, over all n modules). */
typedef struct RunPass {
    int split;                 /* 0 the training images, 1 the test images */
    const uint32_t *idx;       /* NULL: the first n */
    long long n;
    float *logits;
    int32_t *labels;           /* or NULL */
} RunPass;
/* The n modules through every pass (bar, unless NULL, gets n times the
 * passes' images as they run), a group at a time: each group is as
 * many modules as hold less than `budget` bytes (run_modules_build), run
 * over all passes and freed before the next is built. All modules at once
 * would need n models' memory: ten VGG16 modules take 3 GB, a hundred
 * would not fit. A module's scores do not depend on its group. */
#define RUN_MODULES_BUDGET ((size_t)768 << 20)
int run_modules_eval(Arena *a, RunModel *full, const RtDataset *ds, const RtNormalize *norm, const unsigned char *keeps,
                     long long kernels, int n, int generators, const unsigned char *inner, int ninner,
                     const RunPass *passes, int npasses, size_t budget, RtProgress *bar, char *err, size_t errlen);
void run_modules_free(RunModules *ms);

/* PyTorch's default initialization, drawn from rng in parameter order:
 * conv and linear weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
 * batchnorm gamma 1, beta 0, running mean 0, running variance 1; the mask
 * generators' w1 and w2 as mask_init says (sema.h MaskInit), b2 1. */
void run_model_init(RunModel *m, RtRng *rng, MaskInit mask_init);

/* The inference graph as a module: keep[j] for every masked kernel j, in
 * mask order (NULL: all), and the mask generators on or dropped (mask 1). */
void run_model_set_module(RunModel *m, const unsigned char *keep, int generators);
/* What run_model_set_module set: keep[j] per masked kernel (0/1, in mask
 * order; keep NULL: not wanted), and whether the generators are on. */
int run_model_get_module(const RunModel *m, unsigned char *keep);

/* Tensors by name: parameters ("conv1.w"), states ("bn1.mean"); NULL if none.
 * Writable: the inference graph's preparation runs again before its next
 * run (RunModel.prep_stale). */
float *run_param(RunModel *m, int i);
float *run_state(RunModel *m, int i);
float *run_moment(RunModel *m, int i);

/* One training step on images [B,C,H,W] already normalized and labels [B]:
 * writes them, runs the step at learning rate lr; returns the batch's loss and
 * how many it classified right (before the update). */
double run_train_step(RunModel *m, const float *images, const int32_t *labels, double lr, uint64_t dropout_seed,
                      int *correct);
/* Runs one of m's graphs on what its inputs hold (timed per step with
 * $MWTC_PROFILE). */
void run_graph(RunModel *m, RunGraph *rg);
/* run_graph on the caller's thread alone, with m's first scratch, not
 * touching its pool: for callers that keep every thread busy with graphs
 * of their own (run_variants_forward runs a module per thread). */
void run_graph_alone(RunModel *m, RunGraph *rg);
/* Runs only the steps of the graph's nodes before node `end`. */
void run_graph_prefix(RunModel *m, RunGraph *rg, int end);
/* The index of the largest of v[0..n) (the first, on ties): a prediction. */
int run_argmax(const float *v, int n);
/* The input buffers of a graph, to fill in place. */
float *run_images(RunModel *m, RunGraph *rg);
int32_t *run_labels(RunModel *m, RunGraph *rg);

/* Writes images idx[0..n) of a split of ds into rg's input, normalized and augmented by aug with
 * rng's draws (both may be NULL), and their labels into lab: on the threads rg's next run will use
 * (its tuner's choice), as that run waits for it. n <= rg's batch. */
void run_make_batch(RunModel *m, RunGraph *rg, const RtDataset *ds, int split, const uint32_t *idx, int n,
                    const RtNormalize *norm, const RtAugment *aug, RtRng *rng, int32_t *lab);
/* Writes the batch of rg's B images from position `at` of idx (idx NULL:
 * the images at, at + 1, ...) of a split of ds into rg's input, normalized,
 * and their labels into lab; past n the batch repeats its first image.
 * Returns how many of the B are real. scratch: B indices. */
int run_fill_batch(RunModel *m, RunGraph *rg, const RtDataset *ds, int split, const RtNormalize *norm,
                   const uint32_t *idx, long long at, long long n, uint32_t *scratch, int32_t *lab);
/* -1, err saying that Ctrl-C stopped the work: the REPL's Ctrl-C (rt_interrupted)
 * stops modularize's passes over images between two batches, as it stops
 * training between two steps. */
int run_stopped(char *err, size_t errlen);
/* Test accuracy over split (0 train, 1 test) of ds, the first n images
 * (n <= 0: all); per-class correct/total when not NULL. among (or NULL for
 * all): per output, whether the prediction may be it; images of the other
 * classes are not counted. */
double run_evaluate(RunModel *m, const RtDataset *ds, int split, long long n, const RtNormalize *norm,
                    const unsigned char *among, long long *class_correct, long long *class_total);

#endif
