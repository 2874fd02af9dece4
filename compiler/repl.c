/* mwtc repl [FILE.mwt]: a session program that grows by the items typed
 * into it, and every mwtc command run on it, JIT-compiled as from the
 * command line.
 *
 * The session is `import "FILE"` (when given) and the items typed since,
 * named <repl> in diagnostics, which call each line by the line it was
 * typed on (the first line typed is 1: a piped script's own numbers), not
 * by its place in the session (Repl.lines). An item (a model, a dataset, a train
 * statement, ... over as many lines as its braces take) is kept only when
 * the whole session still checks: a model shows its layer table, an error
 * shows where it is and leaves the session as it was. A line that starts
 * with a command word runs that command on the session (`train --epochs 1`,
 * `report --ckpt m.ckpt --threshold 0.8`, `emit --ckpt m.ckpt --module 5,7
 * -o shoes.o`, `run` for the main job), each on a fresh compilation of it,
 * so it sees exactly what the session says. Line editing and history come
 * from libedit on a terminal; piped input is read as it comes, without
 * prompts, and the exit status says whether every line succeeded. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>

#include "cli.h"
#include "cmd.h"
#include "driver.h"
#include "import.h"
#include "repl.h"
#include "repl_complete.h"
#include "report_check.h"
#include "rt_progress.h"

#define SESSION "<repl>"

typedef struct Repl {
    char *text;                /* the session program */
    size_t len;
    size_t base;               /* the import line's bytes (0: no file, or one with errors) */
    int models;                /* models in the session, to show the new ones */
    const char *argv0;
    int tty;
    int failed;                /* a line failed (the exit status of piped input) */
    int cancelled;             /* Ctrl-C at a prompt: the line or item is dropped */
    /* the typed items that a later one of the same kind and name replaces
     * (a model typed again, a train statement for the same model) */
    struct Typed {
        char key[160];         /* "model m", "train m", ... */
        size_t start, len;     /* in text, its '\n' included */
    } *typed;
    int ntyped, captyped;
    const char *file;          /* FILE.mwt as given, and its import line: :reset reads it again */
    char *import;
    /* per line of text, the line typed (1 the first, counting every line
     * read: a piped script's own numbers), 0 for the import line: what
     * diagnostics call the session's lines (SrcFile.lines) */
    int *lines;
    int nlines, typed_lines;
    char *pending;             /* a command line that ended an unclosed item: the next line to run */
    /* the checkpoint the session's last training wrote, and its model: the
     * --ckpt of eval, modularize, report, reuse and emit when none is given
     * (a researcher trains, then modularizes what was just trained) */
    char ckpt[PATH_MAX], ckpt_model[128];
    /* what Tab completes: the session's names (as of its last check) and
     * the lines of the item being typed (NULL at a fresh prompt) */
    char **names;              /* models, then data sets, then blocks */
    char ***params;            /* per block, its parameters' names (NULL-terminated) */
    int nmodels, ndatasets, nblocks;
    const char *item;
} Repl;

/* Newlines in s[0, n). */
static int newlines(const char *s, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == '\n';
    return k;
}

/* The session's text is just the import line (or nothing): its line, 0. */
static int lines_reset(Repl *r)
{
    free(r->lines);
    r->nlines = newlines(r->text, r->len);
    r->lines = calloc((size_t)r->nlines + 1, sizeof(int));
    return r->lines ? 0 : -1;
}

/* Ctrl-C on a terminal: at a prompt it drops the line (or the item being
 * typed), during a command it stops the command's training between two
 * steps, and modularize's passes over images (frequencies, modules, the
 * sweep, an emit's calibration) between two batches; the session goes on.
 * Work that does not poll for it (a compile) runs on, and a second Ctrl-C
 * before the first was taken ends mwtc as it would have without this
 * handler. */
static volatile sig_atomic_t busy;   /* a command is running (not a prompt) */

static void on_interrupt(int sig)
{
    if (rt_interrupted()) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    rt_interrupt_request();
    if (busy) {   /* training or a pass over images stops and says so; a compile runs on: say what a second one does */
        static const char say[] = "\n(Ctrl-C: training stops at its next step, modularize at its next batch; a "
                                  "compile runs on, and a second Ctrl-C ends mwtc)\n";
        ssize_t w = write(2, say, sizeof say - 1);
        (void)w;
    }
}

/* Tab: repl_complete() on the line up to the cursor's word; file names
 * (libedit's own completion) where it says a path goes. */
static Repl *completing;
static const char *cands[64];
static int ncands;

static char *next_cand(const char *text, int state)
{
    static int i;
    (void)text;
    if (!state)
        i = 0;
    return i < ncands ? strdup(cands[i++]) : NULL;
}

static char **complete(const char *text, int start, int end)
{
    (void)end;
    Repl *r = completing;
    ReplNames nm = { 0 };
    if (r->names) {   /* none before anything checked */
        const char *const *v = (const char *const *)r->names;
        nm = (ReplNames){ v, v + r->nmodels, v + r->nmodels + r->ndatasets, (const char *const *const *)r->params,
                          r->nmodels, r->ndatasets, r->nblocks };
    }
    char *before = strndup(rl_line_buffer, (size_t)start);
    rl_attempted_completion_over = 1;
    if (!before)
        return NULL;
    ncands = repl_complete(r->item, before, text, &nm, cands, 64);
    free(before);
    if (ncands == REPL_COMPLETE_FILES) {
        ncands = 0;
        rl_attempted_completion_over = 0;   /* libedit completes the file name */
        return NULL;
    }
    return ncands > 0 ? rl_completion_matches(text, next_cand) : NULL;
}

/* Where the prompts go: stdout, or the terminal's stderr when stdout is piped on. */
static FILE *term(void) { return isatty(1) ? stdout : stderr; }

static char *read_line(Repl *r, const char *prompt)
{
    if (r->tty) {
        rt_interrupt_clear();
        char *l = readline(prompt);
        if (rt_interrupted()) {   /* readline gave up the line, or returned it as the key came */
            rt_interrupt_clear();
            free(l);
            r->cancelled = 1;
            fputc('\n', term());
            return strdup("");
        }
        if (l && *l)
            add_history(l);
        r->typed_lines += l != NULL;
        return l;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    r->typed_lines += n >= 0;
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))   /* CRLF from a file made on Windows */
        line[--n] = 0;
    const char *nul = memchr(line, 0, (size_t)n);
    if (nul) {   /* the session is text: cut there, the line would end mid-item and garble the next one */
        fprintf(stderr, "mwtc: error: repl: a NUL byte at column %ld of this line; the line is left out\n",
                (long)(nul - line) + 1);
        line[0] = 0;
        r->failed = 1;
    }
    return line;
}

/* The front end on text in a new compilation; *errors its errors (printed). */
static Compilation *compile(Repl *r, const char *text, size_t len, const int *lines, int nlines, int check,
                            int *errors)
{
    Compilation *c = calloc(1, sizeof *c);
    if (!c) {
        fputs("mwtc: error: out of memory\n", stderr);
        *errors = 1;
        return NULL;
    }
    arena_init(&c->arena, &c->oom);
    diag_init(&c->diag, stderr);
    if (setjmp(c->oom)) {
        fputs("mwtc: error: out of memory\n", stderr);
        *errors = 1;
        return c;
    }
    ImportPaths paths = { getenv("MWT_PATH"), driver_stdlib_dir(&c->arena, r->argv0) };
    *errors = driver_front_end_text(c, SESSION, text, len, lines, nlines, &paths, check);
    return c;
}

static void release(Compilation *c)
{
    if (c) {
        arena_free(&c->arena);
        free(c);
    }
}

/* The session's names, kept for Tab from a compilation that checked. */
static void keep_names(Repl *r, const Compilation *c)
{
    for (int i = 0; i < r->nmodels + r->ndatasets + r->nblocks; i++)
        free(r->names[i]);
    for (int i = 0; i < r->nblocks; i++) {
        for (int j = 0; r->params[i] && r->params[i][j]; j++)
            free(r->params[i][j]);
        free(r->params[i]);
    }
    free(r->names), free(r->params);
    r->names = NULL, r->params = NULL;
    r->nmodels = r->ndatasets = r->nblocks = 0;
    if (!c)
        return;
    int n = c->prog.items.n, k = 0;
    char **v = n ? calloc((size_t)n, sizeof *v) : NULL;
    char ***p = n ? calloc((size_t)n, sizeof *p) : NULL;
    if (!v || !p) {
        free(v), free(p);
        return;   /* no names to offer: Tab offers the rest */
    }
    static const ItemKind kinds[] = { IT_MODEL, IT_DATASET, IT_BLOCK };
    int count[3] = { 0 };
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < n; i++) {
            const Item *it = c->prog.items.v[i];
            if (it->kind != kinds[j] || !it->name || !(v[k] = strdup(it->name)))
                continue;
            if (it->kind == IT_BLOCK && (p[count[2]] = calloc((size_t)it->params.n + 1, sizeof **p)))
                for (int q = 0, m = 0; q < it->params.n; q++)   /* one that fails to copy is not offered */
                    if ((p[count[2]][m] = strdup(((const Param *)it->params.v[q])->name)))
                        m++;
            k++, count[j]++;
        }
    r->names = v, r->params = p;
    r->nmodels = count[0], r->ndatasets = count[1], r->nblocks = count[2];
}

/* Braces still open in s (outside strings and comments), s the lines of an
 * item so far: a comment ends at the end of its line; *opened whether a
 * brace opened at all. */
static int depth(const char *s, int *opened)
{
    int d = 0, str = 0;
    *opened = 0;
    for (; *s; s++) {
        if (str) {
            str = *s != '"' && *s != '\n';   /* the lexer ends a string at a newline too */
        } else if (*s == '"') {
            str = 1;
        } else if (*s == '#') {
            while (s[1] && s[1] != '\n')
                s++;
        } else {
            d += (*s == '{') - (*s == '}');
            *opened |= *s == '{';
        }
    }
    return d;
}

/* What an item defines, as "KEYWORD NAME" (dataset, block, model: its name;
 * train, modularize: its model), into key; 0 for an item that replaces
 * nothing (import, reuse, a header it cannot read). */
static int item_key(const char *item, char *key, size_t len)
{
    static const char *const kinds[] = { "dataset", "block", "model", "train", "modularize" };
    size_t kw = strcspn(item, " \t\n");
    const char *name = item + kw + strspn(item + kw, " \t\n");
    size_t nl = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (kw == strlen(kinds[i]) && !strncmp(item, kinds[i], kw) && nl > 0 && kw + nl + 2 < len) {
            snprintf(key, len, "%s %.*s", kinds[i], (int)nl, name);
            return 1;
        }
    return 0;
}

/* Room for one more typed item; -1 when there is none to have. */
static int typed_room(Repl *r)
{
    if (r->ntyped < r->captyped)
        return 0;
    int cap = 2 * r->captyped + 8;
    void *v = realloc(r->typed, sizeof *r->typed * (size_t)cap);
    if (!v)
        return -1;
    r->typed = v, r->captyped = cap;
    return 0;
}

/* Adds an item to the session if the session still checks with it; an item
 * typed again (the same kind and name) takes the place of the one before, so
 * that a model can be changed without :reset. */
static void add_item(Repl *r, const char *item, int first)
{
    char key[160] = "";
    int old = -1;
    if (item_key(item, key, sizeof key))
        for (int i = 0; i < r->ntyped && old < 0; i++)
            if (!strcmp(r->typed[i].key, key))
                old = i;
    size_t n = strlen(item), at = old >= 0 ? r->typed[old].start : r->len, gone = old >= 0 ? r->typed[old].len : 0;
    char *t = malloc(r->len - gone + n + 2);
    /* the lines likewise: before its place, the item's as typed, after the one it replaces */
    int before = newlines(r->text, at), mine = newlines(item, n) + 1, replaced = newlines(r->text + at, gone);
    int nl = r->nlines - replaced + mine;
    int *lines = malloc(sizeof(int) * (size_t)(nl + 1));
    if (!t || !lines || typed_room(r) != 0) {
        free(t), free(lines);
        fputs("mwtc: error: out of memory\n", stderr);
        r->failed = 1;
        return;
    }
    /* text before the item's place, the item, text after the one it replaces */
    memcpy(t, r->text, at);
    memcpy(t + at, item, n);
    t[at + n] = '\n';
    memcpy(t + at + n + 1, r->text + at + gone, r->len - at - gone);
    size_t len = r->len - gone + n + 1;
    t[len] = 0;
    memcpy(lines, r->lines, sizeof(int) * (size_t)before);
    for (int i = 0; i < mine; i++)
        lines[before + i] = first + i;
    memcpy(lines + before + mine, r->lines + before + replaced, sizeof(int) * (size_t)(r->nlines - before - replaced));
    int errors;
    Compilation *c = compile(r, t, len, lines, nl, 1, &errors);
    if (errors || !c) {
        free(t), free(lines);
        r->failed = 1;
        release(c);
        return;
    }
    free(r->text), free(r->lines);
    r->text = t;
    r->len = len;
    r->lines = lines, r->nlines = nl;
    if (old >= 0) {   /* the items after it moved */
        for (int i = 0; i < r->ntyped; i++)
            if (r->typed[i].start > at)
                r->typed[i].start = r->typed[i].start + n + 1 - gone;
        r->typed[old].len = n + 1;
    } else if (key[0]) {
        r->typed[r->ntyped].start = at, r->typed[r->ntyped].len = n + 1;
        snprintf(r->typed[r->ntyped++].key, sizeof r->typed->key, "%s", key);
    }
    for (int i = r->models; i < c->checked.models.n; i++)
        report_check_text(stdout, c->checked.models.v[i]);
    const char *sp = old >= 0 ? strchr(key, ' ') : NULL;
    for (int i = 0; sp && !strncmp(key, "model", 5) && i < c->checked.models.n; i++)
        if (!strcmp(((const Net *)c->checked.models.v[i])->name, sp + 1))   /* its new layer table */
            report_check_text(stdout, c->checked.models.v[i]);
    if (old >= 0)
        printf("replaced %s\n", key);
    else if (c->checked.models.n == r->models)
        printf("ok\n");
    r->models = c->checked.models.n;
    keep_names(r, c);
    release(c);
}

/* line's words, split at blanks; "double" or 'single' quotes keep blanks in
 * one word; a word that starts with '#' starts a comment, as in items.
 * Returns how many (at most max), or -1 for an unclosed quote. */
static int words(char *line, char **w, int max)
{
    int n = 0;
    for (char *s = line; *s;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            break;
        if (n == max)
            return n;
        char *out = s;
        w[n++] = out;
        while (*s && *s != ' ' && *s != '\t') {
            if (*s == '"' || *s == '\'') {
                char q = *s;
                for (s++; *s && *s != q; s++)
                    *out++ = *s;
                if (!*s)
                    return -1;
                s++;
            } else {
                *out++ = *s++;
            }
        }
        if (*s)
            s++;
        *out = 0;
    }
    return n;
}

/* Whether a line is a command: its first word is one, and for the words
 * that also start an item (train, modularize, reuse) no name follows:
 * `train -o m.ckpt` runs training, `train m on d { ... }` is an item. */
static int is_command(const char *line)
{
    static const char *const items[] = { "train", "modularize", "reuse", NULL };
    size_t n = strcspn(line, " \t");
    const char *next = line + n + strspn(line + n, " \t");
    for (int i = 0; repl_commands[i]; i++)
        if (strlen(repl_commands[i]) == n && strncmp(line, repl_commands[i], n) == 0) {
            for (int k = 0; items[k]; k++)
                if (!strcmp(repl_commands[i], items[k]) && *next && *next != '-' && *next != '#')
                    return 0;
            return 1;
        }
    return 0;
}

/* Whether a line read while an item's braces are open is a command instead:
 * a command word alone, or before an option (`train --epochs 1`, `dump ir`).
 * A model's layers never read so, and a forgotten '}' then costs one error,
 * not the commands typed after it. */
static int ends_item(const char *line)
{
    line += strspn(line, " \t");
    size_t n = strcspn(line, " \t");
    const char *next = line + n + strspn(line + n, " \t");
    if (!is_command(line))
        return 0;
    if (n == 4 && !strncmp(line, "dump", 4))
        return !strncmp(next, "ast", 3) || !strncmp(next, "ir", 2) || !strncmp(next, "llvm", 4) || *next == '-';
    return !*next || *next == '-' || *next == '#';
}

/* A command line on the session: argv as the command line would give it,
 * the session in the file's place. */
static int run_command(Repl *r, char *line)
{
    char *w[128], *argv[132];
    int n = words(line, w, 128);
    if (n <= 0) {
        fprintf(stderr, n < 0 ? "mwtc: error: a quote is not closed\n" : "mwtc: no command\n");
        return EXIT_USAGE;
    }
    /* ~/ at the start of a word is $HOME/, as a shell would have it (`-o ~/m.ckpt`) */
    static char home[8][PATH_MAX];
    const char *h = getenv("HOME");
    for (int j = 1, t = 0; h && j < n && t < 8; j++)
        if (w[j][0] == '~' && (w[j][1] == '/' || !w[j][1]) &&
            snprintf(home[t], sizeof home[t], "%s%s", h, w[j] + 1) < (int)sizeof home[t])
            w[j] = home[t++];
    int k = 0;
    argv[k++] = "mwtc";
    int i = 0;
    if (strcmp(w[0], "run") != 0)
        argv[k++] = w[i];
    i++;
    int session = 1;
    if (strcmp(w[0], "dump") == 0) {   /* what to dump comes before the session's name */
        if (i < n && w[i][0] != '-') {
            argv[k++] = w[i++];
        } else if (i >= n || strcmp(w[i], "--help") != 0) {
            fprintf(stderr, "mwtc: error: dump needs what to dump: ast, ir or llvm\n");
            return EXIT_USAGE;
        } else {
            session = 0;   /* dump --help: the session's name would be taken for what to dump */
        }
    }
    if (session)
        argv[k++] = SESSION;
    while (i < n)
        argv[k++] = w[i++];
    CliOptions o;
    if (!cli_parse(k, argv, &o))
        return EXIT_USAGE;
    if (o.help) {
        cli_help(strcmp(o.command, "run") ? o.command : NULL);
        return EXIT_OK;
    }
    if (cli_reads_ckpt(o.command) && !o.ckpt && r->ckpt[0] && (!o.model || !strcmp(o.model, r->ckpt_model)) &&
        access(r->ckpt, F_OK) == 0) {
        o.ckpt = r->ckpt;
        fprintf(stderr, "mwtc: --ckpt %s (model %s, as this session last trained it)\n", r->ckpt, r->ckpt_model);
    }
    int dump_ast = strcmp(o.command, "dump") == 0 && strcmp(o.what, "ast") == 0, errors;
    Compilation *c = compile(r, r->text, r->len, r->lines, r->nlines, !dump_ast, &errors);
    volatile int status = EXIT_ERROR;
    if (c && !errors) {
        if (setjmp(c->oom))   /* the front end armed it for itself */
            fputs("mwtc: error: out of memory\n", stderr);
        else
            status = cmd_main(c, &o);
        if (c->ckpt_written && strlen(c->ckpt_written) < sizeof r->ckpt &&
            strlen(c->ckpt_model) < sizeof r->ckpt_model) {
            strcpy(r->ckpt, c->ckpt_written);
            strcpy(r->ckpt_model, c->ckpt_model);
        }
    }
    fflush(stdout);
    release(c);
    return status;
}

static void help(void)
{
    puts("Type an item of the language (dataset, block, model, train, modularize, reuse,\n"
         "import) to add it to the session: it is checked with everything before it, a\n"
         "model shows its layer table, and an item with an error is not added. An item\n"
         "goes on over lines until its braces close (a blank line before its first brace\n"
         "ends it, and so does a command line, which then runs). A dataset, block or\n"
         "model typed again, or a train or modularize statement for the same model,\n"
         "replaces the one typed before, where it stood.\n"
         "\n"
         "Commands run on the session as they would on a file (mwtc CMD --help):\n"
         "  run [--epochs N ...]             the main job: train, modularize, reuse\n"
         "  check [--model NAME]             layer tables\n"
         "  train [-o CKPT] [--epochs N]     the first train statement (or --model's)\n"
         "  eval [--ckpt CKPT] [--module C,...]\n"
         "  modularize [--ckpt CKPT] [--threshold T] [--sweep]\n"
         "  report [--ckpt CKPT] [--threshold T]\n"
         "  reuse [--ckpt CKPT]\n"
         "  emit [--ckpt CKPT] --module C,... -o NAME.o\n"
         "  dump ast|ir|llvm [--model NAME]\n"
         "Without --ckpt, a command reads the checkpoint the session's last training\n"
         "wrote (train, or run's), for that model. On a terminal, Tab completes what fits\n"
         "where the cursor is: commands, options, names, files, layers, keys.\n"
         "\n"
         "  :show    the session program     :reset   drop the items typed, read the file\n"
         "  :help    this text               :quit    leave (so does end of input)");
}

/* One line (and the lines an item continues over); 0 to go on, 1 to stop. */
static int step(Repl *r, char *line)
{
    int first = r->typed_lines;   /* the line this is, where an item starts */
    char *s = line;
    while (*s == ' ' || *s == '\t')
        s++;
    for (size_t n = strlen(s); n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r');)
        s[--n] = 0;
    if (!*s || *s == '#')
        return 0;
    static const char *const bare[][2] = { { "quit", ":quit" }, { "exit", ":quit" }, { "q", ":quit" },
                                            { "help", ":help" }, { "show", ":show" }, { "reset", ":reset" } };
    for (size_t i = 0; i < sizeof bare / sizeof *bare; i++)
        if (!strcmp(s, bare[i][0])) {   /* the word alone would go to the parser as an item */
            fprintf(stderr, "mwtc: error: '%s' is neither an item nor a command; REPL commands start with ':' "
                    "(%s)\n", s, bare[i][1]);
            r->failed = 1;
            return 0;
        }
    if (*s == ':') {
        if (!strcmp(s, ":quit") || !strcmp(s, ":q") || !strcmp(s, ":exit"))
            return 1;
        if (!strcmp(s, ":help"))
            help();
        else if (!strcmp(s, ":show"))
            fwrite(r->text, 1, r->len, stdout);
        else if (!strcmp(s, ":reset")) {
            /* the file as it is now: one fixed since the start joins the session, one broken since leaves it */
            r->len = r->base = 0;
            r->ntyped = 0;
            char *fresh = r->import ? strdup(r->import) : NULL;
            if (fresh) {
                free(r->text);
                r->text = fresh;
                r->len = r->base = strlen(fresh);
            }
            r->text[r->len] = 0;
            int errors;
            Compilation *c = lines_reset(r) == 0 ? compile(r, r->text, r->len, r->lines, r->nlines, 1, &errors) : NULL;
            if (r->import && (errors || !c)) {
                fprintf(stderr, "mwtc: error: %s has errors: the session goes on without it\n", r->file);
                r->len = r->base = 0;
                r->text[0] = 0;
                r->failed = 1;
                release(c);
                c = lines_reset(r) == 0 ? compile(r, r->text, r->len, r->lines, r->nlines, 1, &errors) : NULL;
            }
            r->models = c && !errors ? c->checked.models.n : 0;
            keep_names(r, c && !errors ? c : NULL);
            release(c);
            printf("ok\n");
        } else {
            fprintf(stderr, "mwtc: error: unknown REPL command '%s' (:help lists them)\n", s);
            r->failed = 1;
        }
        return 0;
    }
    if (is_command(s)) {
        rt_interrupt_clear();
        busy = 1;
        if (run_command(r, s) != EXIT_OK)
            r->failed = 1;
        busy = 0;
        return 0;
    }
    /* an item: the lines until its braces close; every item but an import has
     * braces, so one whose header goes on over lines is read up to its first
     * brace (a blank line there ends it, for the checker to say what is missing) */
    static const char *const with_braces[] = { "dataset", "block", "model", "train", "modularize", "reuse" };
    size_t kw = strcspn(s, " \t({");
    int braces = 0, opened = 0;
    for (size_t i = 0; i < sizeof with_braces / sizeof *with_braces; i++)
        braces |= kw == strlen(with_braces[i]) && !strncmp(s, with_braces[i], kw);
    char *item = strdup(s);
    while (item && (depth(item, &opened) > 0 || (braces && !opened))) {
        r->item = item;   /* Tab completes in its context */
        char *more = read_line(r, "...> ");
        r->item = NULL;
        if (!more) {   /* end of input: what there is goes to the checker, which says what is missing */
            if (r->tty)
                fputc('\n', term());   /* after the ^D, not on its line */
            break;
        }
        if (r->cancelled) {   /* Ctrl-C: the item is dropped */
            free(more);
            free(item);
            return 0;
        }
        if (!opened && !more[strspn(more, " \t")]) {
            free(more);
            break;
        }
        if (ends_item(more)) {   /* the item goes to the checker as it is; the command runs next */
            r->pending = more;
            break;
        }
        char *joined = malloc(strlen(item) + strlen(more) + 2);
        if (joined)
            sprintf(joined, "%s\n%s", item, more);
        free(item);
        free(more);
        item = joined;
    }
    if (!item) {
        fputs("mwtc: error: out of memory\n", stderr);
        r->failed = 1;
        return 0;
    }
    if (r->tty && strchr(item, '\n') && !strchr(item, '#')) {
        /* the whole item as one history line, so that Up brings it back to change and
         * type again (a comment would swallow the lines joined after it) */
        char *one = strdup(item);
        for (char *q = one; q && *q; q++)
            *q = *q == '\n' ? ' ' : *q;
        if (one)
            add_history(one);
        free(one);
    }
    add_item(r, item, first);
    free(item);
    return 0;
}

int repl_run(const CliOptions *o, const char *argv0)
{
    /* a person at the keyboard, whatever stdout is (`mwtc repl | tee log`): line
     * editing, prompts on the terminal, Ctrl-C that keeps the session */
    Repl r = { .argv0 = argv0, .tty = isatty(0) && (isatty(1) || isatty(2)) };
    if (r.tty && !isatty(1))
        rl_outstream = stderr;
    cli_in_repl = true;
    setvbuf(stdout, NULL, _IOLBF, 0);   /* results and diagnostics in the order they happen, piped too */
    r.text = calloc(1, 1);
    if (!r.text) {
        fputs("mwtc: error: out of memory\n", stderr);
        return EXIT_ERROR;
    }
    if (o->file) {
        char real[PATH_MAX];
        if (!realpath(o->file, real)) {
            int e = errno;
            char with[PATH_MAX];
            size_t n = strlen(o->file);
            snprintf(with, sizeof with, "%s.mwt", o->file);
            if (e == ENOENT && !(n >= 4 && !strcmp(o->file + n - 4, ".mwt")) && access(with, R_OK) == 0)
                fprintf(stderr, "mwtc: error: cannot read %s: no such file; did you mean %s?\n", o->file, with);
            else
                fprintf(stderr, "mwtc: error: cannot read %s: %s\n", o->file, strerror(e));
            free(r.text);
            return EXIT_ERROR;
        }
        const char *why = import_not_program(real);
        if (why) {
            fprintf(stderr, "mwtc: error: %s %s\n", o->file, why);
            free(r.text);
            return EXIT_ERROR;
        }
        if (strchr(real, '"')) {
            fprintf(stderr, "mwtc: error: %s: a path with a '\"' cannot be imported\n", o->file);
            free(r.text);
            return EXIT_ERROR;
        }
        free(r.text);
        size_t n = strlen(real) + 16;
        r.text = malloc(n);
        if (!r.text) {
            fputs("mwtc: error: out of memory\n", stderr);
            return EXIT_ERROR;
        }
        snprintf(r.text, n, "import \"%s\"\n", real);
        r.len = r.base = strlen(r.text);
        r.file = o->file;
        if (!(r.import = strdup(r.text))) {
            fputs("mwtc: error: out of memory\n", stderr);
            free(r.text);
            return EXIT_ERROR;
        }
        int errors = 1;
        Compilation *c = lines_reset(&r) == 0 ? compile(&r, r.text, r.len, r.lines, r.nlines, 1, &errors) : NULL;
        if (errors || !c) {
            fprintf(stderr, "mwtc: error: %s has errors: the session starts without it\n", o->file);
            r.len = r.base = 0;
            r.text[0] = 0;
            r.failed = 1;
            r.nlines = 0;
        } else {
            r.models = c->checked.models.n;
            keep_names(&r, c);
            if (r.tty) {   /* on the terminal, where the prompts go */
                FILE *t = term();
                fprintf(t, "%s: models", o->file);
                for (int i = 0; i < c->checked.models.n; i++)
                    fprintf(t, "%s%s", i ? ", " : " ", ((const Net *)c->checked.models.v[i])->name);
                fprintf(t, "%s; data sets", c->checked.models.n ? "" : " none");
                for (int i = 0; i < c->checked.datasets.n; i++)
                    fprintf(t, "%s%s", i ? ", " : " ", ((const DatasetInfo *)c->checked.datasets.v[i])->name);
                fprintf(t, "%s\n", c->checked.datasets.n ? "" : " none");
            }
        }
        release(c);
    }
    if (!r.lines && lines_reset(&r) != 0) {   /* no file: an empty session, whose lines are all typed */
        fputs("mwtc: error: out of memory\n", stderr);
        free(r.text);
        return EXIT_ERROR;
    }
    /* history kept between sessions, in ~/.mwtc_history, on a terminal only */
    char hist[PATH_MAX] = "";
    const char *home = getenv("HOME");
    if (r.tty && home && *home && snprintf(hist, sizeof hist, "%s/.mwtc_history", home) < (int)sizeof hist) {
        stifle_history(1000);
        read_history(hist);
    } else {
        hist[0] = 0;
    }
    if (r.tty) {
        fprintf(term(), "mwtc repl: type an item to add it, a command to run it (:help, :quit)\n");
        completing = &r;
        rl_attempted_completion_function = complete;
        rl_basic_word_break_characters = repl_complete_breaks;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_interrupt;   /* no SA_RESTART: the read under readline returns */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
    }
    for (;;) {
        r.cancelled = 0;
        char *line = r.pending ? r.pending : read_line(&r, "mwt> ");
        r.pending = NULL;
        if (!line) {
            if (r.tty)
                fputc('\n', term());   /* end of input (^D) ends the prompt's line */
            break;
        }
        int stop = step(&r, line);
        free(line);
        fflush(stdout);
        if (stop)
            break;
    }
    if (hist[0])
        write_history(hist);   /* failing to is no error: the session's work is done */
    keep_names(&r, NULL);
    free(r.text);
    free(r.typed);
    free(r.import);
    free(r.lines);
    return r.tty || !r.failed ? EXIT_OK : EXIT_ERROR;
}
