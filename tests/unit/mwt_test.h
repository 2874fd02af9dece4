/* Helpers for the compiler's unit tests: compile a string, capture the
 * diagnostics, look things up in the result. */
#ifndef MWT_TEST_H
#define MWT_TEST_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "driver.h"
#include "run.h"
#include "run_modularize.h"

typedef struct TestComp {
    Compilation c;
    char *diags;               /* everything the compiler reported */
    size_t diags_len;
    int errors;
} TestComp;

/* Writes `src` to a temporary file named `name` and runs the front end on it
 * (check = 0: parse only). */
TestComp *tc_compile(const char *name, const char *src, int check);
/* tc_compile(name, src, 1), failing the test on any error. */
TestComp *tc_compile_ok(const char *name, const char *src);
/* How many nodes of g are op's. */
int tc_count_op(const IrGraph *g, IrOp op);
/* The same on a file of the source tree, e.g. "examples/fashion.mwt". */
TestComp *tc_compile_source(const char *rel, int check);
void tc_free(TestComp *t);
/* Runs the front end on a file with the source tree's stdlib, diagnostics to
 * `diags`, arena chunks of `chunk` bytes (0: the default); frees everything
 * and returns the number of errors. */
int tc_run_file(const char *path, FILE *diags, size_t chunk);
/* $MWTC_SOURCE_DIR/rel */
const char *tc_source_path(const char *rel);
Net *tc_model(TestComp *t, const char *name);
/* Builds m for `model` (tr: its train statement, NULL for inference only) at
 * `batch` on `threads` threads and draws its initial weights from rng (which
 * the caller may go on drawing from); fails the test when the build fails. */
void tc_model_init(RunModel *m, TestComp *t, Net *model, const TrainInfo *tr, int batch, int threads, RtRng *rng,
                   MaskInit mask_init);
/* A path under $MWTC_TEST_TMP. */
const char *tc_tmp_path(const char *name);
void tc_write(const char *path, const char *text, size_t len);
/* Compiles src (a train and a modularize statement) as `name`, trains it
 * into ckpt (the path of `ckpt_name` under $MWTC_TEST_TMP, written into
 * ckpt[ckpt_len]) and modularizes it, storing the kernel frequencies (and
 * sweeping when asked); the report in r. Fails the test on any error. */
TestComp *tc_train_modular(const char *name, const char *src, const char *ckpt_name, int sweep, char *ckpt,
                           size_t ckpt_len, ModReport *r);

#define assert_diag(t, needle)                                                         \
    do {                                                                               \
        if (!strstr((t)->diags, (needle)))                                             \
            fail_msg("expected \"%s\" in the diagnostics:\n%s", (needle), (t)->diags); \
    } while (0)

#endif
