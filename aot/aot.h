/* Emitting a module as an object file and a C header (LANGUAGE.md section
 * 4): the same kernel calls the JIT compiles, optimized the same way for the
 * host CPU, written to NAME.o with the module's arena (its weights) inside,
 * and NAME_run(images, scores, n), the only symbol it exports besides a
 * module's NAME_probability (its calibrated scores). The object
 * needs libc and libm, nothing of LLVM or of this project. */
#ifndef MWT_AOT_H
#define MWT_AOT_H
#include <stddef.h>

#include "jit.h"

/* One inference graph of a module: at batch 1, or its bulk graph at
 * K_AOT_BULK (k_kernels.h). */
typedef struct AotGraph {
    const int *step_call;      /* the steps in order (the preparation's first): the call each runs ... */
    const int *step_units;     /* ... over units [0, units) */
    int nsteps, nprep;         /* the first nprep prepare what the others read from the weights */
    long long in_off, out_off; /* byte offsets of the images [B, C, H, W] and the logits [B, K] */
    int batch;
} AotGraph;

typedef struct AotModule {
    const char *name;          /* a C identifier: the object defines NAME_run */
    const JitCall *calls;      /* what the module's inference graphs compile to */
    int ncalls;
    AotGraph graph[2];         /* at batch 1, and the bulk one where ngraphs is 2: both run in one
                                  arena, the same bytes where both read them, the bulk graph's
                                  preparation the batch-1 graph's */
    int ngraphs;
    const char *arena;         /* the arena as it is before a run: weights, statistics, flags */
    long long arena_bytes;
    long long arena_init;      /* the bytes of it a slot's arena starts with (weights, statistics,
                                  flags: not the activations, which every run writes before it reads
                                  them): the rest is zeros, or computed by the preparation at the
                                  slot's first call */
    long long ws_floats;       /* one thread's scratch, for either graph */
    int channels;
    long long pixels;          /* H * W */
    int logits;                /* K */
    const float *mean, *std;   /* per channel (channels of each) */
    const int *sel;            /* score j of an image is logit sel[j] */
    int nsel;
    const double *cal;         /* NULL, or the calibration of each of the nsel classes (k_aot_run's
                                  layout): NAME_probability */
    int ncal;                  /* its numbers: nsel times 2 + 3 * dim + 1 */
    long long cal_images;      /* the training images it was fitted on (the header says) */
    const char *cpu;           /* LLVM's name of the CPU to compile for; NULL: this one, with all its features */
} AotModule;

/* The CPUs aot_emit compiles for besides this one ("native"): the x86-64
 * levels, for an object that runs on other machines. NULL-terminated. */
extern const char *const aot_cpus[];
/* The features of an x86-64 level of aot_cpus (its CPU name carries no
 * feature string): "+avx,+avx2,..."; "" for the baseline. */
const char *aot_level_features(const char *cpu);
/* need[K_AOT_CPU_WORDS] (k_kernels.h) from an LLVM feature string
 * ("+avx2,-avx512f,..."): the CPUID bits of the features it turns on. */
void aot_cpu_need(const char *features, unsigned *need);

/* Writes the object file to tmp (its messages name path, where the caller
 * renames it); 0, or -1 with a message in err. */
int aot_emit(Jit *j, const AotModule *m, const char *path, const char *tmp, char *err, size_t errlen);

/* Writes the header for m: NAME_INPUT_SIZE, NAME_OUTPUT_SIZE, NAME_CLASSES
 * (classes[nsel]), NAME_run's prototype (and NAME_probability's), and `about` (lines of comment
 * saying what the module is and the CPU it was compiled for). 0, or -1
 * with a message. */
int aot_header(const AotModule *m, const int *classes, const char *about, const char *path, const char *tmp, char *err,
               size_t errlen);

#endif
