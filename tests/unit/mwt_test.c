#include "mwt_test.h"
#include "rt_progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *tc_tmp_path(const char *name)
{
    static char buf[4096];
    const char *dir = getenv("MWTC_TEST_TMP");
    snprintf(buf, sizeof buf, "%s/%s", dir && *dir ? dir : "/tmp", name);
    return buf;
}

void tc_write(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
}

const char *tc_source_path(const char *rel)
{
    static char buf[4096];
    const char *src = getenv("MWTC_SOURCE_DIR");
    snprintf(buf, sizeof buf, "%s/%s", src && *src ? src : ".", rel);
    return buf;
}

int tc_run_file(const char *path, FILE *diags, size_t chunk)
{
    Compilation *c = calloc(1, sizeof *c);
    assert_non_null(c);
    char stdlib_dir[4096];
    snprintf(stdlib_dir, sizeof stdlib_dir, "%s", tc_source_path("stdlib"));
    ImportPaths paths = { NULL, stdlib_dir };
    arena_init(&c->arena, &c->oom);
    if (chunk)
        c->arena.chunk = chunk;
    diag_init(&c->diag, diags);
    int errors = driver_front_end(c, path, &paths, 1);
    arena_free(&c->arena);
    free(c);
    return errors;
}

static TestComp *compile_path(const char *path, int check)
{
    TestComp *t = calloc(1, sizeof *t);
    assert_non_null(t);
    FILE *mem = open_memstream(&t->diags, &t->diags_len);
    assert_non_null(mem);
    arena_init(&t->c.arena, &t->c.oom);
    diag_init(&t->c.diag, mem);
    char stdlib_dir[4096];
    snprintf(stdlib_dir, sizeof stdlib_dir, "%s", tc_source_path("stdlib"));
    ImportPaths paths = { NULL, stdlib_dir };
    t->errors = driver_front_end(&t->c, path, &paths, check);
    fclose(mem);
    return t;
}

TestComp *tc_compile(const char *name, const char *src, int check)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", tc_tmp_path(name));
    tc_write(path, src, strlen(src));
    return compile_path(path, check);
}

TestComp *tc_compile_source(const char *rel, int check)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", tc_source_path(rel));
    return compile_path(path, check);
}

void tc_free(TestComp *t)
{
    arena_free(&t->c.arena);
    free(t->diags);
    free(t);
}

Net *tc_model(TestComp *t, const char *name)
{
    for (int i = 0; i < t->c.checked.models.n; i++) {
        Net *n = t->c.checked.models.v[i];
        if (strcmp(n->name, name) == 0)
            return n;
    }
    fail_msg("no model '%s'; diagnostics:\n%s", name, t->diags);
    return NULL;
}

void tc_model_init(RunModel *m, TestComp *t, Net *model, const TrainInfo *tr, int batch, int threads, RtRng *rng,
                   MaskInit mask_init)
{
    char err[512];
    if (run_model_build(m, &t->c.arena, model, tr, batch, threads, 0, err, sizeof err) != 0)
        fail_msg("build: %s", err);
    run_model_init(m, rng, mask_init);
}

TestComp *tc_compile_ok(const char *name, const char *src)
{
    TestComp *t = tc_compile(name, src, 1);
    if (t->errors)
        fail_msg("%s", t->diags);
    return t;
}

int tc_count_op(const IrGraph *g, IrOp op)
{
    int k = 0;
    for (int i = 0; i < g->nodes.n; i++)
        k += ((const IrNode *)g->nodes.v[i])->op == op;
    return k;
}

TestComp *tc_train_modular(const char *name, const char *src, const char *ckpt_name, int sweep, char *ckpt,
                           size_t ckpt_len, ModReport *r)
{
    TestComp *t = tc_compile_ok(name, src);
    char err[1024];
    snprintf(ckpt, ckpt_len, "%s", tc_tmp_path(ckpt_name));
    RunOptions o = { .seed = -1, .progress = RT_PROGRESS_QUIET, .ckpt = ckpt };
    RunResult rr;
    const TrainInfo *tr = t->c.checked.trains.v[0];
    if (run_train(&t->c.arena, tr, &o, &rr, err, sizeof err) != 0)
        fail_msg("%s", err);
    if (run_modularize(&t->c.arena, tr, t->c.checked.modularizes.v[0], &o, -1, sweep, 0, r, err, sizeof err) != 0)
        fail_msg("%s", err);
    return t;
}
