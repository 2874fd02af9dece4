/* import "path": next to the importing file, then each $MWT_PATH directory,
 * then the stdlib. A file imported twice is loaded once; a cycle is an error. */
#include "import.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "parse.h"
#include "rt_ckpt.h"

typedef struct Loader {
    Arena *a;
    Diag *d;
    const ImportPaths *paths;
    Program *prog;
    Vec stack;                 /* SrcFile* being loaded: the import chain */
    Vec ids;                   /* FileId*: of each of prog->files, in its order (load_file pushes both) */
} Loader;

/* A loaded file's device and inode, read once when it is loaded: asking
 * them of every loaded file at each import made a chain of n imports take
 * n^2 stat calls (3000 files: 5.5 s). */
typedef struct FileId {
    dev_t dev;
    ino_t ino;
    int known;
} FileId;

static FileId *file_id(Arena *a, const char *real)
{
    struct stat st;
    FileId *id = arena_alloc(a, sizeof *id);
    id->known = stat(real, &st) == 0;
    id->dev = id->known ? st.st_dev : 0, id->ino = id->known ? st.st_ino : 0;
    return id;
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static const char *ends_mwt(const char *s)
{
    size_t n = strlen(s);
    return n >= 4 && strcmp(s + n - 4, ".mwt") == 0 ? "" : ".mwt";
}

/* dir + "/" + name (+ ".mwt"), if that file exists; else the bare name, if it exists. */
static const char *try_dir(Arena *a, const char *dir, size_t dirlen, const char *name)
{
    const char *p = arena_printf(a, "%.*s%s%s%s", (int)dirlen, dir, dirlen ? "/" : "", name, ends_mwt(name));
    if (is_file(p))
        return p;
    p = arena_printf(a, "%.*s%s%s", (int)dirlen, dir, dirlen ? "/" : "", name);
    return is_file(p) ? p : NULL;
}

static const char *resolve(Loader *L, const SrcFile *from, const char *name)
{
    if (name[0] == '/')
        return try_dir(L->a, "", 0, name);
    const char *slash = strrchr(from->path, '/');
    const char *p = try_dir(L->a, from->path, slash ? (size_t)(slash - from->path) : 0, name);
    if (!slash && !p)
        p = try_dir(L->a, ".", 1, name);
    if (p)
        return p;
    for (const char *s = L->paths->mwt_path; s && *s;) {
        const char *colon = strchr(s, ':');
        size_t n = colon ? (size_t)(colon - s) : strlen(s);
        if (n && (p = try_dir(L->a, s, n, name)))
            return p;
        s += n + (colon ? 1 : 0);
    }
    if (L->paths->stdlib_dir)
        return try_dir(L->a, L->paths->stdlib_dir, strlen(L->paths->stdlib_dir), name);
    return NULL;
}

/* Whether the file at `real` is loaded already: the same path, or the same
 * file under another name (a hard link; id: real's file_id). */
static int loaded(Loader *L, const char *real, const FileId *id)
{
    for (int i = 0; i < L->prog->files.n; i++) {
        const char *r = ((SrcFile *)L->prog->files.v[i])->real;
        const FileId *o = L->ids.v[i];
        if (strcmp(r, real) == 0 || (id->known && o->known && o->dev == id->dev && o->ino == id->ino))
            return 1;
    }
    return 0;
}

static void load_file(Loader *L, const SrcFile *f, FileId *id);

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The .mwt files of directory dir as imports ("name/file", quoted, sorted,
 * comma-separated); NULL when dir is no directory or holds none. */
static const char *mwt_files(Arena *a, const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char *v[64];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 64;) {
        size_t len = strlen(e->d_name);
        if (len > 4 && !strcmp(e->d_name + len - 4, ".mwt"))
            v[n++] = arena_printf(a, "\"%s/%.*s\"", name, (int)(len - 4), e->d_name);
    }
    closedir(d);
    if (!n)
        return NULL;
    qsort(v, (size_t)n, sizeof *v, by_name);
    const char *out = v[0];
    for (int i = 1; i < n; i++)
        out = arena_printf(a, "%s, %s", out, v[i]);
    return out;
}

static void do_import(Loader *L, const SrcFile *from, Item *imp)
{
    if (!imp->path[0]) {
        diag_error(L->d, imp->loc, "import needs the path of a file: import \"nn/blocks\"");
        return;
    }
    const char *path = resolve(L, from, imp->path);
    if (!path) {
        /* the path as written, next to the importing file: there, but no file */
        const char *slash = strrchr(from->path, '/');
        const char *near = imp->path[0] == '/' || !slash
                               ? imp->path
                               : arena_printf(L->a, "%.*s/%s", (int)(slash - from->path), from->path, imp->path);
        struct stat st;
        const char *in_lib = L->paths->stdlib_dir && imp->path[0] != '/'
                                 ? arena_printf(L->a, "%s/%s", L->paths->stdlib_dir, imp->path)
                                 : NULL;
        const char *files = in_lib && stat(near, &st) != 0 ? mwt_files(L->a, in_lib, imp->path) : NULL;
        if (files)   /* import "nn": a folder of the stdlib */
            diag_error(L->d, imp->loc, "cannot import \"%s\": it is a folder of the stdlib; import one of its files: %s",
                       imp->path, files);
        else if (stat(near, &st) == 0)
            diag_error(L->d, imp->loc, "cannot import \"%s\": %s is %s, not a .mwt file", imp->path, near,
                       S_ISDIR(st.st_mode) ? "a directory" : "a device or other special file");
        else {
            /* import "models/resnet": the files of the stdlib's folder it names, to pick from */
            const char *end = strrchr(imp->path, '/'), *dir = NULL, *there = NULL;
            if (in_lib && end) {
                dir = arena_printf(L->a, "%.*s", (int)(end - imp->path), imp->path);
                there = mwt_files(L->a, arena_printf(L->a, "%s/%s", L->paths->stdlib_dir, dir), dir);
            }
            diag_error(L->d, imp->loc, "cannot find import \"%s\" (looked next to %s, in $MWT_PATH%s)%s%s%s%s",
                       imp->path, from->path, L->paths->stdlib_dir ? " and in the stdlib" : "",
                       there ? "; the stdlib's " : "", there ? dir : "", there ? "/ holds " : "", there ? there : "");
        }
        return;
    }
    const char *why = import_not_program(path);
    if (why) {   /* a checkpoint: its bytes would be a page of syntax errors */
        diag_error(L->d, imp->loc, "cannot import \"%s\": %s %s", imp->path, path, why);
        return;
    }
    SrcFile *f = src_read(L->a, path);
    if (!f) {
        diag_error(L->d, imp->loc, "cannot read \"%s\": %s", path, strerror(errno));
        return;
    }
    for (int i = 0; i < L->stack.n; i++) {
        const SrcFile *s = L->stack.v[i];
        if (strcmp(s->real, f->real) == 0) {
            char *chain = "";
            for (int j = i; j < L->stack.n; j++)
                chain = arena_printf(L->a, "%s%s -> ", chain, ((SrcFile *)L->stack.v[j])->path);
            diag_error(L->d, imp->loc, "import cycle: %s%s", chain, f->path);
            return;
        }
    }
    FileId *id = file_id(L->a, f->real);
    if (loaded(L, f->real, id))
        return;                /* imported before: a no-op */
    load_file(L, f, id);
}

/* id: f's, as file_id reads it. */
static void load_file(Loader *L, const SrcFile *f, FileId *id)
{
    vec_push(L->a, &L->prog->files, (void *)f);
    vec_push(L->a, &L->ids, id);
    vec_push(L->a, &L->stack, (void *)f);
    Vec items = {0};
    parse_file(L->a, L->d, f, &items, &L->prog->declared);
    for (int i = 0; i < items.n; i++) {
        Item *it = items.v[i];
        vec_push(L->a, &L->prog->items, it);
        if (it->kind == IT_IMPORT)
            do_import(L, f, it);
    }
    L->stack.n--;
}

const char *import_not_program(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return "is a directory, not a program";
    if (rt_ckpt_looks_like(path))
        return "is a checkpoint, not a program: commands take it with --ckpt (mwtc eval FILE.mwt --ckpt CKPT)";
    return NULL;
}

int import_load(Arena *a, Diag *d, const char *path, const ImportPaths *paths, Program *prog)
{
    const char *why = import_not_program(path);
    if (why) {
        diag_plain(d, "%s %s", path, why);
        return 1;
    }
    int before = d->errors;
    SrcFile *f = src_read(a, path);
    if (!f) {
        /* src_read takes regular files only: a pipe or a device gives EINVAL */
        int e = errno;
        const char *with = arena_printf(a, "%s.mwt", path);
        if (e == ENOENT && *ends_mwt(path) && is_file(with))
            diag_plain(d, "cannot read %s: no such file; did you mean %s?", path, with);
        else
            diag_plain(d, "cannot read %s: %s", path,
                       e == EINVAL ? "not a regular file (a program is read from a file)" : strerror(e));
        return 1;
    }
    Loader L = { .a = a, .d = d, .paths = paths, .prog = prog };
    load_file(&L, f, file_id(a, f->real));
    return d->errors - before;
}

int import_load_text(Arena *a, Diag *d, const char *name, const char *text, size_t len, const int *lines,
                     int nlines, const ImportPaths *paths, Program *prog)
{
    int before = d->errors;
    Loader L = { .a = a, .d = d, .paths = paths, .prog = prog };
    SrcFile *f = src_from_string(a, name, text, len);
    f->lines = lines, f->nlines = nlines;
    load_file(&L, f, file_id(a, f->real));
    return d->errors - before;
}
