/* Codegen: a planned graph becomes a list of kernel calls with every shape,
 * offset and attribute a constant (jit.h's JitCall), each with the number of
 * units the thread pool splits. It does not know whether the calls feed the
 * JIT or an object file. */
#ifndef MWT_CG_H
#define MWT_CG_H
#include "jit.h"
#include "plan.h"

typedef struct CgCalls {
    JitCall *v;
    int *units;
    int *node;                 /* by call: the index of the graph node it computes (-1: none) */
    int n, cap;
    /* Set before cg_graph when these calls go to one JIT with other
     * modules' (run_models_compile): a channel count that differs from one
     * module to the next is then a run-time argument ('r') where the
     * kernel's loops gain nothing from it as a constant, so that the
     * modules' calls of one layer share one compiled body. */
    int share;
    /* The threads the calls' units are split over (rt_pool_threads; 1 for
     * an emitted module, whose calls run on one thread), which sets how
     * finely a small batch's conv splits its channels; 0: not known. The
     * split never changes a result. */
    int threads;
    /* The batch each conv's kernel is chosen for (Winograd F(4x4) or
     * F(2x2), its weights transformed beforehand or not, the small planes'
     * dot products or GEMMs), where that is not the graph's own: 0, the
     * graph's. Those choices change the bits of a score; the splits do
     * not. An emitted model's graphs pin 1, so that its graph at a batch
     * of K_AOT_BULK gives every image the bits its batch-1 graph gives
     * (run_emit checks that before it emits both). */
    int pin_batch;
    /* Where the preparation's room (PlanLayout.prepared) starts at the
     * least: 0, right after the work area. An emitted module's graph at
     * batch 1 starts it where its bulk graph's does, so that both find
     * the same prepared weights at the same offsets in one arena. */
    long long prepared_at;
    /* The last nprep calls prepare the last graph's weights for its other
     * calls (Winograd's transformed weights): they run once before it, and
     * again after its weights or batchnorm statistics change. */
    int nprep;
} CgCalls;

/* Appends the calls of g's nodes, in order, named PREFIXn (n their index
 * in out). 0, or -1 and a message when an op has no kernel. */
int cg_graph(Arena *a, const Plan *p, const char *prefix, CgCalls *out, char *err, size_t errlen);
/* Appends the SGD update of every parameter (one call over the params region). */
void cg_sgd(Arena *a, const PlanLayout *L, const char *name, double momentum, double weight_decay, int nesterov,
            CgCalls *out);

#endif
