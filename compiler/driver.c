#include "driver.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MWTC_STDLIB_SOURCE_DIR
#define MWTC_STDLIB_SOURCE_DIR ""
#endif
#ifndef MWTC_STDLIB_INSTALL_DIR
#define MWTC_STDLIB_INSTALL_DIR ""
#endif

int driver_front_end(Compilation *c, const char *path, const ImportPaths *paths, int check)
{
    if (setjmp(c->oom)) {
        diag_plain(&c->diag, "out of memory while compiling %s", path);
        return c->diag.errors;
    }
    int errors = import_load(&c->arena, &c->diag, path, paths, &c->prog);
    if (check && c->prog.files.n)
        errors += sema_check(&c->arena, &c->diag, &c->prog, &c->checked);
    return errors;
}

int driver_front_end_text(Compilation *c, const char *name, const char *text, size_t len, const int *lines, int nlines,
                          const ImportPaths *paths, int check)
{
    if (setjmp(c->oom)) {
        diag_plain(&c->diag, "out of memory while compiling %s", name);
        return c->diag.errors;
    }
    int errors = import_load_text(&c->arena, &c->diag, name, text, len, lines, nlines, paths, &c->prog);
    if (check && c->prog.files.n)
        errors += sema_check(&c->arena, &c->diag, &c->prog, &c->checked);
    return errors;
}

static int is_dir(const char *p)
{
    struct stat st;
    return p && *p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *driver_stdlib_dir(Arena *a, const char *argv0)
{
    const char *env = getenv("MWT_STDLIB");
    if (is_dir(env))
        return env;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 && argv0 && realpath(argv0, exe))
        n = (ssize_t)strlen(exe);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            const char *cands[] = { "/../stdlib", "/../share/mwtc/stdlib", "/stdlib" };
            for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
                const char *p = arena_printf(a, "%s%s", exe, cands[i]);
                char real[PATH_MAX];   /* messages name stdlib files without the ".." */
                if (is_dir(p))
                    return realpath(p, real) ? arena_strdup(a, real) : p;
            }
        }
    }
    if (is_dir(MWTC_STDLIB_SOURCE_DIR))
        return MWTC_STDLIB_SOURCE_DIR;
    if (is_dir(MWTC_STDLIB_INSTALL_DIR))
        return MWTC_STDLIB_INSTALL_DIR;
    return NULL;
}
