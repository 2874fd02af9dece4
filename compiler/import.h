/* Loading a program: the root file and, depth first, every file it imports. */
#ifndef MWT_IMPORT_H
#define MWT_IMPORT_H
#include "ast.h"
#include "diag.h"

typedef struct ImportPaths {
    const char *mwt_path;      /* $MWT_PATH: directories separated by ':' (may be NULL) */
    const char *stdlib_dir;    /* the installed or in-tree stdlib (may be NULL) */
} ImportPaths;

/* Parses `path` and its imports into *prog: prog->items holds every item in
 * definition order, an import's items placed where the import stands (the
 * import item itself kept before them). Returns the number of errors. */
int import_load(Arena *a, Diag *d, const char *path, const ImportPaths *paths, Program *prog);
/* Why path is no program to read, for what is plainly none (a directory, a
 * checkpoint: their bytes would only be a page of syntax errors); NULL else. */
const char *import_not_program(const char *path);
/* The same for a program held in memory (the REPL's session), named `name`
 * in diagnostics, its line l called lines[l - 1] there (SrcFile.lines; NULL:
 * l); its imports resolve as a file's in the current directory would. */
int import_load_text(Arena *a, Diag *d, const char *name, const char *text, size_t len, const int *lines,
                     int nlines, const ImportPaths *paths, Program *prog);

#endif
