/* Source files and positions in them. */
#ifndef MWT_SOURCE_H
#define MWT_SOURCE_H
#include <stddef.h>

#include "arena.h"

typedef struct SrcFile {
    const char *path;      /* as the user named it, or as the import resolved it */
    const char *real;      /* canonical path, for "imported twice" and cycles */
    const char *text;
    size_t len;
    /* What line l is called in messages: lines[l - 1] for l <= nlines (the
     * REPL's session: the line it was typed on); NULL: l itself. */
    const int *lines;
    int nlines;
} SrcFile;

typedef struct Loc {
    const SrcFile *file;
    int line, col;         /* 1-based; col counts bytes */
} Loc;

/* Reads a whole file into the arena. NULL and errno set when it cannot. */
SrcFile *src_read(Arena *a, const char *path);
SrcFile *src_from_string(Arena *a, const char *path, const char *text, size_t len);

/* The number messages give line `line` of f (SrcFile.lines). */
int src_line_no(const SrcFile *f, int line);
/* The bytes of line `line` (without its newline). */
const char *src_line(const SrcFile *f, int line, size_t *len);

#endif
