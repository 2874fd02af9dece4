/* The commands of LANGUAGE.md section 2, each on a program the front end has
 * read and checked: what main.c runs once and the REPL runs per line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "ir.h"
#include "report_check.h"
#include "rt_ckpt.h"
#include "rt_progress.h"

int cmd_check(Compilation *c, const CliOptions *o)
{
    Vec nets = {0};
    for (int i = 0; i < c->checked.models.n; i++) {
        Net *net = c->checked.models.v[i];
        if (!o->model || strcmp(o->model, net->name) == 0)
            vec_push(&c->arena, &nets, net);
    }
    if (o->model && nets.n == 0) {
        cmd_no_model(c, o);
        return EXIT_ERROR;
    }
    if (o->json) {
        report_check_json(stdout, (const Net *const *)nets.v, nets.n);
        return EXIT_OK;
    }
    for (int i = 0; i < nets.n; i++) {
        if (i)
            putchar('\n');
        report_check_text(stdout, nets.v[i]);
    }
    if (nets.n == 0)
        printf("%s: no models; %d item%s checked\n", o->file, c->prog.items.n, c->prog.items.n == 1 ? "" : "s");
    return EXIT_OK;
}

/* dump ir: the model named by --model, else the first train statement's,
 * else the first model; with its train statement's batch and loss, else an
 * inference graph for one image. */
static int cmd_dump_ir(Compilation *c, const CliOptions *o)
{
    const Net *net = NULL;
    const TrainInfo *train = NULL;
    for (int i = 0; i < c->checked.trains.n && !train; i++) {
        TrainInfo *t = c->checked.trains.v[i];
        if (!o->model || strcmp(t->model->name, o->model) == 0)
            train = t;
    }
    if (train)
        net = train->model;
    for (int i = 0; i < c->checked.models.n && !net; i++) {
        Net *n = c->checked.models.v[i];
        if (!o->model || strcmp(n->name, o->model) == 0)
            net = n;
    }
    if (!net) {
        o->model ? cmd_no_model(c, o) : diag_plain(&c->diag, "%s has no model", o->file);
        return EXIT_ERROR;
    }
    IrGraph *g = ir_lower(&c->arena, net, train, train ? train->batch : 1);
    char err[512];
    if (ir_verify(g, err, sizeof err) != 0) {
        diag_plain(&c->diag, "internal error: the IR of model '%s' does not verify: %s", net->name, err);
        return EXIT_ERROR;
    }
    /* A training graph is shown with its backward pass. */
    if (train && pass_autodiff(&c->arena, g, err, sizeof err) == 0 && ir_verify(g, err, sizeof err) != 0) {
        diag_plain(&c->diag, "internal error: the backward pass of model '%s' does not verify: %s", net->name, err);
        return EXIT_ERROR;
    }
    ir_print(stdout, g);
    return EXIT_OK;
}

/* The main job's --json is one object (LANGUAGE.md section 3): each step
 * prints its object into one buffer, where it starts noted; then the
 * report goes out with the others in arrays, "train" and "reuse". With
 * several modularize statements the first report's keys stay at the top, as
 * section 3 has them, and all the reports go under "reports". Without
 * --json each step prints to stdout as it ends. */
enum { STEP_TRAIN, STEP_REPORT, STEP_REUSE };
typedef struct Steps {
    FILE *f;                   /* the buffer; NULL: stdout */
    char *buf;
    size_t len;
    long *at;                  /* by step: where its object starts */
    int *kind;
    int n;
} Steps;

static FILE *step(Steps *s, int kind)
{
    if (!s->f)
        return stdout;
    fflush(s->f);
    s->at[s->n] = ftell(s->f);
    s->kind[s->n++] = kind;
    return s->f;
}

/* Step i's object, its trailing white space left out: [*from, end). */
static long step_text(const Steps *s, int i, long *from)
{
    long end = i + 1 < s->n ? s->at[i + 1] : (long)s->len;
    *from = s->at[i];
    while (end > *from && (s->buf[end - 1] == '\n' || s->buf[end - 1] == ' '))
        end--;
    return end;
}

static int steps_of(const Steps *s, int kind)
{
    int n = 0;
    for (int i = 0; i < s->n; i++) {
        long from, end = step_text(s, i, &from);
        n += s->kind[i] == kind && end > from;
    }
    return n;
}

/* ", "key": [ ... ]" of the steps of a kind, if any; *sep before it. */
static void print_steps(const Steps *s, int kind, const char *key, const char **sep)
{
    if (!steps_of(s, kind))
        return;
    printf("%s\"%s\": [ ", *sep, key);
    const char *comma = "";
    for (int i = 0; i < s->n; i++) {
        long from, end = step_text(s, i, &from);
        if (s->kind[i] == kind && end > from) {
            printf("%s%.*s", comma, (int)(end - from), s->buf + from);
            comma = ",\n    ";
        }
    }
    printf(" ]");
    *sep = ",\n  ";
}

static void print_main_json(const Steps *s)
{
    const char *sep = "";
    int reports = steps_of(s, STEP_REPORT);
    if (reports >= 1) {
        for (int i = 0; i < s->n && !*sep; i++) {
            long from, end = step_text(s, i, &from);
            if (s->kind[i] == STEP_REPORT && end > from && s->buf[end - 1] == '}') {
                end--;   /* the report without its closing brace: the others go inside */
                while (end > from && s->buf[end - 1] == ' ')
                    end--;
                printf("%.*s", (int)(end - from), s->buf + from);
                sep = ",\n  ";
            }
        }
    }
    if (!*sep)
        printf("{ ");
    if (reports > 1)
        print_steps(s, STEP_REPORT, "reports", &sep);
    print_steps(s, STEP_TRAIN, "train", &sep);
    print_steps(s, STEP_REUSE, "reuse", &sep);
    printf(" }\n");
}

/* Every file the main job will write (each train statement's checkpoint,
 * each reuse's, the chart), tried before the first training rather than
 * after the hours that come before it. */
static int outputs_writable(Compilation *c, const CliOptions *o)
{
    int n = c->checked.trains.n + c->checked.reuses.n;
    char err[1024];
    for (int i = 0; i <= n; i++) {
        const char *path = i < c->checked.trains.n ? (o->output ? o->output
                                                     : arena_printf(&c->arena, "%s.ckpt",
                                                                    ((const TrainInfo *)c->checked.trains.v[i])->model->name))
                           : i < n ? arena_printf(&c->arena, "%s.ckpt",
                                                  ((const ReuseInfo *)c->checked.reuses.v[i - c->checked.trains.n])->name)
                           : c->checked.modularizes.n ? o->svg : NULL;
        if (path && rt_ckpt_writable(path, err, sizeof err) != 0) {
            diag_plain(&c->diag, "%s", err);
            return EXIT_ERROR;
        }
        /* modularize and reuse read the trained model back from it */
        if (i < c->checked.trains.n && c->checked.modularizes.n + c->checked.reuses.n > 0 && rt_ckpt_in_place(path)) {
            diag_plain(&c->diag, "%s: not a regular file: the main job reads the trained model back from its "
                       "checkpoint to modularize and reuse it (`mwtc train -o %s` trains alone)", path, path);
            return EXIT_ERROR;
        }
    }
    return EXIT_OK;
}

/* The main job: check, then every train statement in order, then each
 * modularize statement on its model's checkpoint, then each reuse. */
static int main_job(Compilation *c, const CliOptions *o)
{
    Steps s = { 0 };
    int nsteps = c->checked.trains.n + c->checked.modularizes.n + c->checked.reuses.n;
    if (o->json) {
        s.at = arena_alloc(&c->arena, sizeof(long) * (size_t)(nsteps + 1));
        s.kind = arena_alloc(&c->arena, sizeof(int) * (size_t)(nsteps + 1));
        if (!(s.f = open_memstream(&s.buf, &s.len))) {
            diag_plain(&c->diag, "out of memory");
            return EXIT_ERROR;
        }
    }
    int status = o->json ? EXIT_OK : cmd_check(c, o);
    if (o->output && c->checked.trains.n > 1) {
        /* each would replace the one before it, and modularize would read the last */
        fprintf(stderr, "mwtc: error: -o names one checkpoint, but %s trains %d models (each writes MODEL.ckpt without -o)\n",
                o->file, c->checked.trains.n);
        status = EXIT_USAGE;
    }
    if (o->svg && c->checked.modularizes.n == 0)
        fprintf(stderr, "mwtc: warning: --svg charts the modules, and %s has no modularize statement; ignored\n",
                strcmp(o->file, "<repl>") ? o->file : "the session");
    if (status == EXIT_OK)
        status = outputs_writable(c, o);
    for (int i = 0; i < c->checked.trains.n && status == EXIT_OK; i++) {
        status = cmd_train_one(c, o, c->checked.trains.v[i], step(&s, STEP_TRAIN));
        /* Ctrl-C in a run's last step: it finished, and what follows is not started */
        if (status == EXIT_OK && rt_interrupted()) {
            diag_plain(&c->diag, "stopped by Ctrl-C: training %s finished, its checkpoint holds every epoch; "
                       "the statements after it did not run",
                       ((const TrainInfo *)c->checked.trains.v[i])->model->name);
            status = EXIT_ERROR;
        }
    }
    for (int i = 0; i < c->checked.modularizes.n && status == EXIT_OK; i++) {
        const ModularizeInfo *m = c->checked.modularizes.v[i];
        const TrainInfo *t = NULL;
        for (int k = 0; k < c->checked.trains.n && !t; k++)
            if (((const TrainInfo *)c->checked.trains.v[k])->model == m->model)
                t = c->checked.trains.v[k];
        if (!t) {
            diag_plain(&c->diag, "%s: modularize %s needs a train statement for it", o->file, m->model->name);
            status = EXIT_ERROR;
            break;
        }
        const char *ckpt = o->output ? o->output : arena_printf(&c->arena, "%s.ckpt", m->model->name);
        status = cmd_modularize_one(c, o, t, m, ckpt, 0, step(&s, STEP_REPORT));
    }
    for (int i = 0; i < c->checked.reuses.n && status == EXIT_OK; i++) {
        const ReuseInfo *ru = c->checked.reuses.v[i];
        status = cmd_reuse_one(c, o, ru, o->output ? o->output : arena_printf(&c->arena, "%s.ckpt", ru->model->name),
                               step(&s, STEP_REUSE));
    }
    if (s.f) {   /* what the steps that ran gave, also when a later one failed */
        fclose(s.f);
        if (steps_of(&s, STEP_TRAIN) + steps_of(&s, STEP_REPORT) + steps_of(&s, STEP_REUSE))
            print_main_json(&s);
        free(s.buf);
    }
    return status;
}

/* The program's source file that path names (the same file, by device and
 * inode, however it is spelled), or NULL. */
static const char *source_named(const Compilation *c, const char *path)
{
    struct stat a, b;
    if (!path || stat(path, &a) != 0)
        return NULL;
    for (int i = 0; i < c->prog.files.n; i++) {
        const SrcFile *f = c->prog.files.v[i];
        const char *p = f->real ? f->real : f->path;
        if (p && stat(p, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            return f->path;
    }
    return NULL;
}

int cmd_main(Compilation *c, const CliOptions *o)
{
    int status = EXIT_ERROR;
    /* A checkpoint or chart written over the program would destroy it. */
    const char *outs[2][2] = { { "-o", o->output }, { "--svg", o->svg } };
    for (int i = 0; i < 2; i++) {
        const char *src = source_named(c, outs[i][1]);
        if (src) {
            fprintf(stderr, "mwtc: error: %s %s would overwrite the program's source %s; name another file\n", outs[i][0],
                    outs[i][1], src);
            return EXIT_USAGE;
        }
    }
    if (strcmp(o->command, "dump") == 0 && strcmp(o->what, "ast") == 0) {
        ast_dump(stdout, &c->prog);
        status = EXIT_OK;
    } else if (strcmp(o->command, "dump") == 0) {
        status = strcmp(o->what, "llvm") == 0 ? cmd_dump_llvm(c, o) : cmd_dump_ir(c, o);
    } else if (strcmp(o->command, "check") == 0) {
        status = cmd_check(c, o);
    } else if (strcmp(o->command, "train") == 0) {
        status = cmd_train(c, o);
    } else if (strcmp(o->command, "eval") == 0) {
        status = cmd_eval(c, o);
    } else if (strcmp(o->command, "emit") == 0) {
        status = cmd_emit(c, o);
    } else if (strcmp(o->command, "reuse") == 0) {
        if (!o->ckpt) {
            fprintf(stderr, "mwtc: error: reuse needs --ckpt CKPT (the trained modular model)%s\n",
                    cmd_ckpt_hint(c, o));
            status = EXIT_USAGE;
        } else if (c->checked.reuses.n == 0) {
            diag_plain(&c->diag, "%s has no reuse statement", o->file);
        } else {
            /* --json prints one object: a single reuse's, or those of several
             * under "reuse" (what ran before a failure included) */
            int several = o->json && c->checked.reuses.n > 1;
            if (several)
                printf("{ \"reuse\": [\n");
            status = EXIT_OK;
            for (int i = 0; i < c->checked.reuses.n && status == EXIT_OK; i++) {
                if (several && i)
                    printf(", ");
                status = cmd_reuse_one(c, o, c->checked.reuses.v[i], o->ckpt, stdout);
            }
            if (several)
                printf("] }\n");
        }
    } else if (strcmp(o->command, "modularize") == 0 || strcmp(o->command, "report") == 0) {
        status = cmd_modularize(c, o, strcmp(o->command, "report") == 0);
    } else {
        status = main_job(c, o);
    }
    return status;
}
