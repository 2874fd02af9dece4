/* The front end as one call: load the program and its imports, then check it.
 * What main.c and the tests use. */
#ifndef MWT_DRIVER_H
#define MWT_DRIVER_H
#include "ast.h"
#include "diag.h"
#include "import.h"
#include "sema.h"

typedef struct Compilation {
    Arena arena;
    jmp_buf oom;
    Diag diag;
    Program prog;
    Checked checked;
    /* the checkpoint the last training in this compilation wrote (train, the
     * main job's train statements) and its model, in the arena; NULL: none.
     * The REPL takes it as the session's --ckpt for what comes next. */
    const char *ckpt_written, *ckpt_model;
} Compilation;

/* Both return the number of errors (reported to c->diag); an allocation
 * failure is reported as one error. `check` = 0 stops after parsing. */
int driver_front_end(Compilation *c, const char *path, const ImportPaths *paths, int check);
/* The same on a program held in memory, called `name` (the REPL's session),
 * its line l called lines[l - 1] in messages (NULL: l). */
int driver_front_end_text(Compilation *c, const char *name, const char *text, size_t len, const int *lines, int nlines,
                          const ImportPaths *paths, int check);

/* The stdlib directory: $MWT_STDLIB, next to the executable (the source tree
 * or an installed share/mwtc/stdlib), or where the build was configured. */
const char *driver_stdlib_dir(Arena *a, const char *argv0);

#endif
