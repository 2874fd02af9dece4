/* The diagnostics sink: every stage reports here and returns; nothing exits.
 * Errors print as FILE:LINE:COL: error: MESSAGE, the source line and a caret. */
#ifndef MWT_DIAG_H
#define MWT_DIAG_H
#include <stdio.h>

#include "source.h"

typedef struct Diag {
    FILE *out;
    int errors;            /* errors reported so far (counted past the cap too) */
    int max_errors;        /* after this many, one "too many errors" line, then silence */
    int suppressed;
} Diag;

void diag_init(Diag *d, FILE *out);
void diag_error(Diag *d, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(Diag *d, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* An error about no particular place: "mwtc: error: MESSAGE". */
void diag_plain(Diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
