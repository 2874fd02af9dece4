#include "source.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


SrcFile *src_from_string(Arena *a, const char *path, const char *text, size_t len)
{
    SrcFile *f = arena_alloc(a, sizeof *f);
    f->path = arena_strdup(a, path);
    f->real = f->path;
    char *t = arena_alloc(a, len + 1);
    memcpy(t, text, len);
    f->text = t;
    f->len = len;
    return f;
}

SrcFile *src_read(Arena *a, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return NULL;
    if (!S_ISREG(st.st_mode)) {
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        return NULL;
    }
    /* The arena buffer comes first: an allocation failure longjmps, and
     * nothing may be open or owned outside the arena at that point. */
    size_t cap = (size_t)st.st_size;
    char *text = arena_alloc(a, cap + 1);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    size_t len = fread(text, 1, cap, fp);
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        errno = EIO;
        return NULL;
    }
    SrcFile *f = arena_alloc(a, sizeof *f);
    f->path = arena_strdup(a, path);
    f->real = f->path;
    f->text = text;
    f->len = len;
    char rp[PATH_MAX];
    if (realpath(path, rp))
        f->real = arena_strdup(a, rp);
    return f;
}

int src_line_no(const SrcFile *f, int line)
{
    return f && f->lines && line >= 1 && line <= f->nlines ? f->lines[line - 1] : line;
}

const char *src_line(const SrcFile *f, int line, size_t *len)
{
    /* memchr, not a byte loop: an excerpt deep in a large file (a binary
     * named as a program, up to 30 errors) scanned 20 MB a byte at a time. */
    const char *p = f->text, *end = f->text + f->len;
    for (int l = 1; l < line && p < end; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    const char *e = memchr(p, '\n', (size_t)(end - p));
    if (!e)
        e = end;
    *len = (size_t)(e - p);
    return p;
}
