#include "diag.h"

#include <stdarg.h>
#include <string.h>

void diag_init(Diag *d, FILE *out)
{
    d->out = out;
    d->errors = 0;
    d->max_errors = 30;
    d->suppressed = 0;
}

/* The source line, bytes that would garble a terminal shown as '?', so that
 * the caret stays under the right column. */
static void print_excerpt(FILE *out, Loc loc)
{
    enum { WIDTH = 100 };      /* a long line is cut to this much around the caret */
    size_t len;
    const char *line = src_line(loc.file, loc.line, &len);
    if (loc.line == 1 && len >= 3 && !memcmp(line, "\xef\xbb\xbf", 3))
        line += 3, len -= 3;   /* the byte-order mark that opens a file takes no column (lexer.l) */
    if (len && line[len - 1] == '\r')
        len--;                 /* a CRLF line's end, not a character of it */
    size_t col = loc.col > 0 ? (size_t)loc.col - 1 : 0;
    size_t from = 0, to = len;
    if (len > WIDTH) {
        from = col > WIDTH / 2 ? col - WIDTH / 2 : 0;
        to = from + WIDTH < len ? from + WIDTH : len;
    }
    fputs(from ? "    ..." : "    ", out);
    for (size_t i = from; i < to; i++) {
        unsigned char c = (unsigned char)line[i];
        fputc(c == '\t' || (c >= 32 && c < 127) ? c : '?', out);
    }
    fputs(to < len ? "...\n    " : "\n    ", out);
    if (from)
        fputs("   ", out);
    for (size_t i = from; i < col && i < len; i++)
        fputc(line[i] == '\t' ? '\t' : ' ', out);
    fputs("^\n", out);
}

static void report(Diag *d, Loc loc, const char *kind, const char *fmt, va_list ap)
{
    if (loc.file)
        fprintf(d->out, "%s:%d:%d: %s: ", loc.file->path, src_line_no(loc.file, loc.line), loc.col, kind);
    else
        fprintf(d->out, "mwtc: %s: ", kind);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    if (loc.file)
        print_excerpt(d->out, loc);
}

void diag_error(Diag *d, Loc loc, const char *fmt, ...)
{
    d->errors++;
    if (d->errors > d->max_errors) {
        if (!d->suppressed)
            fprintf(d->out, "mwtc: error: too many errors, stopping here\n");
        d->suppressed = 1;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    report(d, loc, "error", fmt, ap);
    va_end(ap);
}

void diag_note(Diag *d, Loc loc, const char *fmt, ...)
{
    if (d->suppressed)
        return;
    va_list ap;
    va_start(ap, fmt);
    report(d, loc, "note", fmt, ap);
    va_end(ap);
}

void diag_plain(Diag *d, const char *fmt, ...)
{
    d->errors++;
    va_list ap;
    va_start(ap, fmt);
    fputs("mwtc: error: ", d->out);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    va_end(ap);
}
