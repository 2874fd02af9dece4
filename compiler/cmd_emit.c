/* mwtc emit FILE.mwt --ckpt CKPT --module C[,C...] -o NAME.o: the module of
 * those classes as an object file and a C header (run_emit.c, aot/). And
 * the --module list every command that takes one reads. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aot.h"
#include "cmd.h"
#include "json.h"
#include "run_modularize.h"

int cmd_parse_classes(const char *arg, int *classes, int *n, char *list, size_t listlen)
{
    const char *p = arg;
    size_t lo = 0;
    *n = 0;
    if (listlen)
        list[0] = 0;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ',') || (*end == ',' && !end[1]) || *n == 256 || errno == ERANGE || v < 0 ||
            v > INT_MAX) {
            fprintf(stderr, "mwtc: error: --module needs class numbers (0 or more) separated by commas, not '%s'\n", arg);
            return EXIT_USAGE;
        }
        for (int i = 0; i < *n; i++)
            if (classes[i] == v) {
                fprintf(stderr, "mwtc: error: --module: class %ld is given twice\n", v);
                return EXIT_USAGE;
            }
        classes[(*n)++] = (int)v;
        if (lo < listlen)
            lo += (size_t)snprintf(list + lo, listlen - lo, "%s%ld", *n > 1 ? "," : "", v);
        if (!*end)
            return EXIT_OK;
        p = end + 1;
    }
}

/* NAME from -o DIR/NAME.o, and DIR/NAME.h; EXIT_OK or EXIT_USAGE printed. */
static int names(const char *out, char *name, size_t namelen, char *hdr, size_t hdrlen)
{
    const char *base = strrchr(out, '/');
    base = base ? base + 1 : out;
    size_t len = strlen(base);
    if (len < 3 || strcmp(base + len - 2, ".o") != 0) {
        fprintf(stderr, "mwtc: error: emit: -o needs NAME.o (it writes NAME.o and NAME.h), not '%s'\n", out);
        return EXIT_USAGE;
    }
    len -= 2;
    int ok = isalpha((unsigned char)base[0]) || base[0] == '_';
    for (size_t i = 0; ok && i < len; i++)
        ok = isalnum((unsigned char)base[i]) || base[i] == '_';
    if (!ok) {
        fprintf(stderr,
                "mwtc: error: emit: '%.*s' (from -o %s) is not a C identifier: NAME.o defines NAME_run, so NAME must be one\n",
                (int)len, base, out);
        return EXIT_USAGE;
    }
    /* C reserves names that start with '_' and a capital or a second '_' for the
     * implementation, and NAME_INPUT_SIZE and the like would be such names */
    if (base[0] == '_') {
        fprintf(stderr, "mwtc: error: emit: '%.*s' (from -o %s) starts with '_': its header's macros (NAME_INPUT_SIZE in "
                "capitals...) would be identifiers C reserves; start it with a letter\n", (int)len, base, out);
        return EXIT_USAGE;
    }
    if (len >= namelen || len >= 200) {
        fprintf(stderr, "mwtc: error: emit: the name '%.*s...' (from -o) has %zu characters; at most 199\n", 20, base, len);
        return EXIT_USAGE;
    }
    /* NAME.h beside a program built with -I. would hide the C library's header */
    static const char *const std_headers[] = { "assert", "complex", "ctype", "errno", "fenv", "float", "inttypes",
        "iso646", "limits", "locale", "math", "setjmp", "signal", "stdalign", "stdarg", "stdatomic", "stdbool",
        "stddef", "stdint", "stdio", "stdlib", "stdnoreturn", "string", "tgmath", "threads", "time", "uchar",
        "wchar", "wctype", "pthread", "unistd" };
    for (size_t i = 0; i < sizeof std_headers / sizeof *std_headers; i++)
        if (strlen(std_headers[i]) == len && !memcmp(std_headers[i], base, len))
            fprintf(stderr, "mwtc: warning: emit: %.*s.h has the name of a C library header: a program compiled with "
                    "-I and this directory gets it for <%.*s.h>; another name avoids that\n", (int)len, base, (int)len, base);
    memcpy(name, base, len);
    name[len] = 0;
    if (strlen(out) >= hdrlen) {
        fprintf(stderr, "mwtc: error: emit: -o %s: the path is too long\n", out);
        return EXIT_USAGE;
    }
    strcpy(hdr, out);
    hdr[strlen(hdr) - 1] = 'h';
    return EXIT_OK;
}

int cmd_emit(Compilation *c, const CliOptions *o)
{
    if (!o->ckpt || !o->output) {
        fprintf(stderr, "mwtc: error: emit needs %s%s\n%s\n",
                !o->ckpt && !o->output ? "--ckpt CKPT and -o NAME.o" : !o->ckpt ? "--ckpt CKPT" : "-o NAME.o",
                o->ckpt ? "" : cmd_ckpt_hint(c, o), cli_try_cmd("emit"));
        return EXIT_USAGE;
    }
    char name[256], hdr[4096], list[256 * 12] = "", owner[128], err[1024];
    int st = names(o->output, name, sizeof name, hdr, sizeof hdr);
    if (st != EXIT_OK)
        return st;
    const char *cpu = NULL;   /* this machine's */
    if (o->cpu && strcmp(o->cpu, "native") != 0) {
        for (int i = 0; aot_cpus[i] && !cpu; i++)
            if (!strcmp(o->cpu, aot_cpus[i]))
                cpu = aot_cpus[i];
        if (!cpu) {
            fprintf(stderr, "mwtc: error: emit: --cpu %s: not one of native, x86-64, x86-64-v2, x86-64-v3, x86-64-v4\n", o->cpu);
            return EXIT_USAGE;
        }
    }
    int has_module = 0;
    const ReuseInfo *ru = NULL;
    if (run_ckpt_model(o->ckpt, owner, sizeof owner, &has_module, err, sizeof err) == 0)
        for (int i = 0; i < c->checked.reuses.n && !ru; i++)
            if (strcmp(((const ReuseInfo *)c->checked.reuses.v[i])->name, owner) == 0)
                ru = c->checked.reuses.v[i];
    if (ru && o->threshold >= 0) {
        fprintf(stderr, "mwtc: error: emit: %s is the checkpoint of reuse '%s', whose kernels are fixed: --threshold does not apply\n",
                o->ckpt, ru->name);
        return EXIT_USAGE;
    }
    int classes[256], n = 0;
    if (o->module) {
        if ((st = cmd_parse_classes(o->module, classes, &n, list, sizeof list)) != EXIT_OK)
            return st;
    } else if (ru) {   /* a reuse's checkpoint is the module of its classes */
        n = ru->nclasses;
        for (int i = 0; i < n; i++)
            classes[i] = ru->classes[i];
    } else {
        fprintf(stderr, "mwtc: error: emit needs --module C[,C...]: the classes whose module to emit\n");
        return EXIT_USAGE;
    }
    const TrainInfo *t = ru ? cmd_train_of(c, ru->model) : cmd_pick_train(c, o);
    if (!t) {
        if (ru)
            diag_plain(&c->diag, "%s: reuse %s needs a train statement for %s", o->file, ru->name, ru->model->name);
        return EXIT_ERROR;
    }
    if (ru && !has_module) {
        diag_plain(&c->diag, "%s: does not say which kernels reuse '%s' kept (an older mwtc wrote it); run 'mwtc reuse' again",
                   o->ckpt, ru->name);
        return EXIT_ERROR;
    }
    RunOptions ro;
    cmd_options(o, &ro);
    ro.ckpt = o->ckpt;
    RunEmitResult r;
    if (run_emit(&c->arena, t, ru ? NULL : cmd_modularize_of(c, t->model), ru, &ro, o->threshold, classes, n, name, cpu,
                 o->output, hdr, &r, err, sizeof err) != 0) {
        diag_plain(&c->diag, "%s", err);
        return EXIT_ERROR;
    }
    if (o->json) {
        printf("{ \"object\": ");
        json_str(stdout, o->output);
        printf(", \"header\": ");
        json_str(stdout, hdr);
        printf(", \"function\": \"%s_run\", ", name);
        if (r.calibrated)
            printf("\"probability\": \"%s_probability\", ", name);
        printf("\"classes\": [");
        for (int i = 0; i < n; i++)
            printf("%s%d", i ? ", " : "", classes[i]);
        printf("], \"input_size\": %lld, \"output_size\": %d, \"kernels\": %lld, \"masked_kernels\": %lld, "
               "\"krr\": %.4f, \"generators\": \"%s\", \"cpu\": \"%s\", \"bulk\": %d }\n",
               r.input, n, r.kernels, r.masked, r.krr, r.generators ? "keep" : "drop", r.cpu, r.bulk ? r.bulk : 1);
        return EXIT_OK;
    }
    printf("emitted %s and %s: %s_run%s%s%s, ", o->output, hdr, name, r.calibrated ? " (and " : "",
           r.calibrated ? name : "", r.calibrated ? "_probability)" : "");
    if (ru)
        printf("reuse %s of %s (classes", ru->name, ru->model->name);
    else
        printf("the module of %s (classes", t->model->name);
    for (int i = 0; i < n; i++)
        printf("%s%d", i ? ", " : " ", classes[i]);
    printf("), %lld floats in, %d score%s out", r.input, n, n == 1 ? "" : "s");
    if (r.masked)
        printf("; %lld of %lld masked kernels (KRR %.4f), generators %s", r.kernels, r.masked, r.krr,
               r.generators ? "kept" : "dropped");
    printf("; compiled for %s", r.cpu);
    if (r.bulk)
        printf("; a call runs %d images at a time", r.bulk);
    printf("\n");
    return EXIT_OK;
}
