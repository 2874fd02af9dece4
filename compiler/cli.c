#include "cli.h"
#include "names.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const commands[] = { "check", "train", "eval", "modularize", "report", "reuse", "emit", "repl", "dump",
                                        NULL };

bool cli_in_repl = false;

const char *cli_try(void)
{
    return cli_in_repl ? "Try ':help', or 'CMD --help' for a command." : "Try 'mwtc --help'.";
}

const char *cli_try_cmd(const char *cmd)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "Try '%s%s --help'.", cli_in_repl ? "" : "mwtc ", cmd);
    return buf;
}

static bool usage(const char *fmt, const char *arg)
{
    fputs("mwtc: error: ", stderr);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s\n", cli_try());
    return false;
}

/* An integer option in [lo, hi]: the bounds the train statement's keys
 * have (sema_train.c), so that no value wraps on its way to an int. */
static bool int_arg(const char *opt, const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || (errno && errno != ERANGE)) {
        fprintf(stderr, "mwtc: error: %s needs an integer, not '%s'\n%s\n", opt, s, cli_try());
        return false;
    }
    if (errno == ERANGE || v < lo || v > hi) {
        if (hi == LLONG_MAX && errno != ERANGE)   /* below lo; the upper bound is none a person would give */
            fprintf(stderr, "mwtc: error: %s needs an integer of at least %lld, not '%s'\n%s\n", opt, lo, s, cli_try());
        else
            fprintf(stderr, "mwtc: error: %s needs an integer from %lld to %lld, not '%s'\n%s\n", opt, lo, hi, s,
                    cli_try());
        return false;
    }
    *out = v;
    return true;
}

/* A word where the command or the file goes that is neither: a word of
 * letters, digits, '-' and '_' (no '.' or '/': not a path; not the REPL's
 * "<repl>") and no such file (`mwtc trian x.mwt`). */
static bool not_a_file(const char *s)
{
    if (!*s || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != strlen(s))
        return false;
    return access(s, F_OK) != 0;
}

static bool unknown_command(const char *s)
{
    int n = 0;
    while (commands[n])
        n++;
    const char *close = name_closest(s, commands, n);
    if (close) {
        fprintf(stderr, "mwtc: error: unknown command '%s'; did you mean '%s'?\n%s\n", s, close, cli_try());
        return false;
    }
    fprintf(stderr, "mwtc: error: unknown command '%s' (commands:", s);
    for (int k = 0; commands[k]; k++)
        fprintf(stderr, " %s", commands[k]);
    fprintf(stderr, "; or a FILE.mwt for the main job)\n%s\n", cli_try());
    return false;
}

/* The options each command reads (--quiet and --threads: all of them, or
 * harmlessly none). */
enum {
    O_MODEL = 1 << 0, O_CKPT = 1 << 1, O_OUT = 1 << 2, O_MODULE = 1 << 3, O_SVG = 1 << 4, O_RESUME = 1 << 5,
    O_CPU = 1 << 6, O_JSON = 1 << 7, O_SWEEP = 1 << 8, O_EPOCHS = 1 << 9, O_LIMIT = 1 << 10, O_SEED = 1 << 11,
    O_THRESHOLD = 1 << 12
};

static const struct {
    const char *command;
    int reads;
} reads[] = {
    { "check", O_MODEL | O_JSON },
    { "dump", O_MODEL },
    { "train", O_OUT | O_MODEL | O_RESUME | O_EPOCHS | O_LIMIT | O_SEED | O_JSON },
    { "eval", O_CKPT | O_MODEL | O_MODULE | O_THRESHOLD | O_LIMIT | O_JSON },
    { "modularize", O_CKPT | O_MODEL | O_THRESHOLD | O_SWEEP | O_SVG | O_LIMIT | O_JSON },
    { "report", O_CKPT | O_MODEL | O_THRESHOLD | O_SWEEP | O_SVG | O_LIMIT | O_JSON },
    { "reuse", O_CKPT | O_EPOCHS | O_LIMIT | O_SEED | O_JSON },
    { "emit", O_CKPT | O_OUT | O_MODULE | O_THRESHOLD | O_CPU | O_MODEL | O_LIMIT | O_JSON },
    { "repl", 0 },
    { "run", O_OUT | O_MODEL | O_RESUME | O_EPOCHS | O_LIMIT | O_SEED | O_THRESHOLD | O_SWEEP | O_SVG | O_JSON },
};

/* An option the command does not read is a warning, not an error: scripts
 * pass one set of options to several commands. But it must not pass in
 * silence: `train --ckpt x.ckpt` writes MODEL.ckpt, `modularize -o y.ckpt`
 * stores the modules in --ckpt's file. It is then dropped, so that nothing
 * later acts on it (`check -o x.mwt` must not be refused as overwriting). */
static int options_read(const char *command)
{
    for (size_t k = 0; k < sizeof reads / sizeof *reads; k++)
        if (!strcmp(reads[k].command, command))
            return reads[k].reads;
    return -1;
}

bool cli_reads_ckpt(const char *command)
{
    int r = options_read(command);
    return r >= 0 && (r & O_CKPT);
}

/* Each option's bit and name: the warnings' order, and Tab's. */
static const struct {
    int bit;
    const char *name;
} option_names[] = {
    { O_MODEL, "--model" }, { O_CKPT, "--ckpt" },   { O_OUT, "-o" },       { O_MODULE, "--module" },
    { O_SVG, "--svg" },     { O_RESUME, "--resume" }, { O_CPU, "--cpu" },  { O_JSON, "--json" },
    { O_SWEEP, "--sweep" }, { O_EPOCHS, "--epochs" }, { O_LIMIT, "--limit" }, { O_SEED, "--seed" },
    { O_THRESHOLD, "--threshold" },
};

/* Whether o has the option of that bit. */
static bool option_given(const CliOptions *o, int bit)
{
    switch (bit) {
    case O_MODEL: return o->model != NULL;
    case O_CKPT: return o->ckpt != NULL;
    case O_OUT: return o->output != NULL;
    case O_MODULE: return o->module != NULL;
    case O_SVG: return o->svg != NULL;
    case O_RESUME: return o->resume != NULL;
    case O_CPU: return o->cpu != NULL;
    case O_JSON: return o->json;
    case O_SWEEP: return o->sweep;
    case O_EPOCHS: return o->epochs >= 0;
    case O_LIMIT: return o->limit >= 0;
    case O_SEED: return o->seed >= 0;
    default: return o->threshold >= 0;   /* O_THRESHOLD */
    }
}

int cli_options(const char *command, const char **out, int cap)
{
    int r = options_read(command), n = 0;
    if (r < 0)
        return 0;
    for (size_t k = 0; k < sizeof option_names / sizeof *option_names; k++)
        if ((r & option_names[k].bit) && n < cap)
            out[n++] = option_names[k].name;
    static const char *const always[] = { "--threads", "--quiet", "--help" };
    for (size_t k = 0; k < sizeof always / sizeof *always && n < cap; k++)
        out[n++] = always[k];
    return n;
}

bool cli_option_takes_value(const char *option)
{
    static const char *const valued[] = { "--model", "--ckpt", "-o", "--module", "--svg", "--resume", "--cpu",
                                          "--epochs", "--limit", "--seed", "--threshold", "--threads" };
    for (size_t k = 0; k < sizeof valued / sizeof *valued; k++)
        if (!strcmp(option, valued[k]))
            return true;
    return false;
}

static void warn_unread(CliOptions *o)
{
    int r = options_read(o->command);
    if (r < 0)
        return;
    const char *cmd = !strcmp(o->command, "run") ? "the main job" : o->command;
    for (size_t k = 0; k < sizeof option_names / sizeof *option_names; k++)
        if (option_given(o, option_names[k].bit) && !(r & option_names[k].bit))
            fprintf(stderr, "mwtc: warning: %s does not apply to %s; ignored\n", option_names[k].name, cmd);
    if (!(r & O_MODEL)) o->model = NULL;
    if (!(r & O_CKPT)) o->ckpt = NULL;
    if (!(r & O_OUT)) o->output = NULL;
    if (!(r & O_MODULE)) o->module = NULL;
    if (!(r & O_SVG)) o->svg = NULL;
    if (!(r & O_RESUME)) o->resume = NULL;
    if (!(r & O_CPU)) o->cpu = NULL;
    if (!(r & O_JSON)) o->json = false;
    if (!(r & O_SWEEP)) o->sweep = false;
    if (!(r & O_EPOCHS)) o->epochs = -1;
    if (!(r & O_LIMIT)) o->limit = -1;
    if (!(r & O_SEED)) o->seed = -1;
    if (!(r & O_THRESHOLD)) o->threshold = -1;
    if (!strcmp(o->command, "eval") && !o->module) {   /* they pick the module's kernels */
        for (int k = 0; k < 2; k++)
            if (k ? o->limit >= 0 : o->threshold >= 0)
                fprintf(stderr, "mwtc: warning: %s applies to eval only with --module; ignored\n",
                        k ? "--limit" : "--threshold");
        o->limit = -1, o->threshold = -1;
    }
}

/* A word that is an option, not a value (`-o --quiet` lacks its file). */
static bool is_option(const char *s)
{
    return (s[0] == '-' && s[1] == '-') || !strcmp(s, "-o") || !strcmp(s, "-h");
}

/* The command s names, as commands[] spells it, or NULL. */
static const char *command_word(const char *s)
{
    for (int k = 0; commands[k]; k++)
        if (!strcmp(s, commands[k]))
            return commands[k];
    return NULL;
}

bool cli_parse(int argc, char **argv, CliOptions *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = o->limit = o->threads = o->seed = -1;
    o->threshold = -1;
    int i = 1;
    if (i < argc && argv[i][0] != '-') {
        o->command = command_word(argv[i]);
        if (o->command)
            i++;
    }
    if (!o->command)
        o->command = "run";
    if (strcmp(o->command, "dump") == 0 && i < argc && argv[i][0] != '-') {
        o->what = argv[i++];
        if (strcmp(o->what, "ast") && strcmp(o->what, "ir") && strcmp(o->what, "llvm"))
            return usage("dump what? '%s' is not one of ast, ir, llvm", o->what);
    }
    int first_opt = i;
    bool rest = false;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--") && !rest) {   /* what follows is the file, even `-x.mwt` */
            rest = true;
            continue;
        }
        if (rest) {
            if (o->file)
                return usage("one file at a time: what is '%s'?", argv[i]);
            o->file = argv[i];
            continue;
        }
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        /* --epochs=3 is --epochs 3 */
        char name[32];
        const char *eq = a[0] == '-' && a[1] == '-' ? strchr(a, '=') : NULL;
        bool joined = eq && (size_t)(eq - a) < sizeof name;
        if (joined) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = 0;
            a = name, next = eq + 1;
        }
#define VALUE()                                                      \
    do {                                                             \
        if (!next || (!joined && is_option(next)))                   \
            return usage("option '%s' needs a value", a);            \
        if (!*next) /* `-o ""`: no file to write */                  \
            return usage("option '%s' needs a non-empty value", a);  \
        i += !joined;                                                \
    } while (0)
        bool flag = !strcmp(a, "--help") || !strcmp(a, "-h") || !strcmp(a, "--json") || !strcmp(a, "--quiet") ||
                    !strcmp(a, "--sweep") || !strcmp(a, "--version");
        /* an option with a value given twice: the last one counts, said so (a flag twice is the flag) */
        for (int j = first_opt; j < i && !flag; j++)
            if (!strcmp(a, argv[j]) || (!strncmp(argv[j], a, strlen(a)) && argv[j][strlen(a)] == '=' && a[1] == '-')) {
                fprintf(stderr, "mwtc: warning: %s is given more than once; the last one counts\n", a);
                break;
            }
        if (joined && flag)
            return usage("option '%s' takes no value", a);
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            o->help = true;
        } else if (!strcmp(a, "--version")) {
            o->version = true;
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--quiet")) {
            o->quiet = true;
        } else if (!strcmp(a, "--sweep")) {
            o->sweep = true;
        } else if (!strcmp(a, "--model")) {
            VALUE();
            o->model = next;
        } else if (!strcmp(a, "--ckpt")) {
            VALUE();
            o->ckpt = next;
        } else if (!strcmp(a, "-o")) {
            VALUE();
            o->output = next;
        } else if (!strcmp(a, "--module")) {
            VALUE();
            o->module = next;
            /* `--module 1, 3`: the list split at a space after its comma, joined again */
            static char joined[4096];
            size_t len = strlen(next);
            if (len && next[len - 1] == ',' && len < sizeof joined) {
                memcpy(joined, next, len + 1);
                while (len && joined[len - 1] == ',' && i + 1 < argc && !is_option(argv[i + 1]) &&
                       len + strlen(argv[i + 1]) < sizeof joined) {
                    strcpy(joined + len, argv[++i]);
                    len = strlen(joined);
                }
                o->module = joined;
            }
        } else if (!strcmp(a, "--cpu")) {
            VALUE();
            o->cpu = next;
        } else if (!strcmp(a, "--svg")) {
            VALUE();
            o->svg = next;
        } else if (!strcmp(a, "--resume")) {
            VALUE();
            o->resume = next;
        } else if (!strcmp(a, "--epochs")) {
            VALUE();
            if (!int_arg(a, next, 1, 100000, &o->epochs))
                return false;
        } else if (!strcmp(a, "--limit")) {
            VALUE();
            if (!int_arg(a, next, 1, LLONG_MAX, &o->limit))
                return false;
        } else if (!strcmp(a, "--threads")) {
            VALUE();
            if (!int_arg(a, next, 1, 1024, &o->threads))
                return false;
        } else if (!strcmp(a, "--seed")) {
            VALUE();
            if (!int_arg(a, next, 0, LLONG_MAX, &o->seed))
                return false;
        } else if (!strcmp(a, "--threshold")) {
            VALUE();
            char *end;
            o->threshold = strtod(next, &end);
            if (!*next || *end || !(o->threshold > 0 && o->threshold <= 100))
                return usage("--threshold needs a number in (0, 1], not '%s'", next);
            if (o->threshold > 1) {   /* a percentage: 90 for 90% of a class's images */
                fprintf(stderr, "mwtc: error: --threshold needs a number in (0, 1], not '%s': it is a share of a "
                        "class's images (%g%% is %g)\n%s\n", next, o->threshold, o->threshold / 100, cli_try());
                return false;
            }
        } else if (a[0] == '-' && a[1]) {
            return usage("unknown option '%s'", a);
        } else if (!o->file && !strcmp(o->command, "run") && command_word(a) && not_a_file(a)) {
            /* options before the command (`mwtc --help train`, `mwtc --epochs 1 train x.mwt`) */
            o->command = command_word(a);
            if (!strcmp(o->command, "dump") && next && !is_option(next)) {
                o->what = argv[++i];
                if (strcmp(o->what, "ast") && strcmp(o->what, "ir") && strcmp(o->what, "llvm"))
                    return usage("dump what? '%s' is not one of ast, ir, llvm", o->what);
            }
        } else if (!o->file) {
            o->file = a;
        } else {
            if (!strcmp(o->command, "run") && not_a_file(o->file))
                return unknown_command(o->file);
            if (!strcmp(o->file, "<repl>"))   /* a command typed in the REPL, which runs on the session */
                return usage("commands here run on the session; to add '%s' to it, import it", a);
            if (!strcmp(o->command, "run") && command_word(a) && not_a_file(a)) {   /* `mwtc x.mwt eval ...` */
                const char *what = !strcmp(command_word(a), "dump") && next && !is_option(next) ? next : NULL;
                fprintf(stderr, "mwtc: error: the command goes before the file: mwtc %s%s%s %s ...\n%s\n",
                        command_word(a), what ? " " : "", what ? what : "", o->file, cli_try());
                return false;
            }
            return usage("one file at a time: what is '%s'?", a);
        }
#undef VALUE
    }
    if (o->file && !strcmp(o->command, "run") && not_a_file(o->file) && !rest)
        return unknown_command(o->file);
    if (o->help || o->version)
        return true;
    if (strcmp(o->command, "dump") == 0 && !o->what)
        return usage("%s", "dump needs what to dump: ast, ir or llvm");
    if (!o->file && strcmp(o->command, "repl") != 0)
        return usage(strcmp(o->command, "run") == 0 ? "%sno input file" : "%s needs a FILE.mwt",
                     strcmp(o->command, "run") == 0 ? "" : o->command);
    warn_unread(o);
    return true;
}

void cli_help(const char *command)
{
    if (command && strcmp(command, "check") == 0) {
        puts("usage: mwtc check FILE.mwt [--json] [--model NAME]\n"
             "\n"
             "Parses FILE.mwt and everything it imports, checks names, arguments, values and\n"
             "shapes, and prints each model's layer table: layer, output shape, parameters\n"
             "(trainable numbers, mask generators included, as PyTorch counts them) and\n"
             "forward FLOPs per image (a multiply-add counts 2). Every error is reported as\n"
             "FILE:LINE:COL: error: MESSAGE.\n"
             "\n"
             "  --json        one JSON object: { \"models\": [ { name, input, output, params,\n"
             "                flops, layers: [ { op, line, shape, params, flops, ... } ] } ] }\n"
             "  --model NAME  only that model");
        return;
    }
    if (command && strcmp(command, "dump") == 0) {
        puts("usage: mwtc dump ast|ir|llvm FILE.mwt [--model NAME]\n"
             "\n"
             "  ast   the syntax tree of FILE.mwt (imports are listed, not expanded)\n"
             "  ir    the graph IR of a model: the --model one, else the first train\n"
             "        statement's (its batch, ending in its loss as written), else the\n"
             "        first model's (one image, ending in its logits)\n"
             "  llvm  the LLVM IR the JIT compiles for a model: one function per kernel call\n"
             "        of its training step and its inference, shapes and offsets constant,\n"
             "        optimized at O3 for this CPU");
        return;
    }
    if (command && strcmp(command, "train") == 0) {
        puts("usage: mwtc train FILE.mwt [-o CKPT] [--model NAME] [--resume CKPT] [--epochs N] [--limit N]\n"
             "                  [--threads N] [--seed N] [--json] [--quiet]\n"
             "\n"
             "Trains the first train statement's model (or --model NAME's) on its data set:\n"
             "the step (forward, backward, SGD) is JIT-compiled for this CPU; the last partial\n"
             "batch of an epoch is dropped. After every epoch the test accuracy is measured\n"
             "and the checkpoint written (default MODEL.ckpt; a temporary file renamed over it;\n"
             "a device or FIFO such as -o /dev/null is written in place).\n"
             "Progress goes to stderr: a bar on a terminal, one line per epoch otherwise.\n"
             "Ctrl-C stops the run after its step (exit 130): the checkpoint holds the last\n"
             "whole epoch, and --resume goes on from it; a second Ctrl-C quits at once.\n"
             "\n"
             "  --resume CKPT  continue a run from its checkpoint (parameters, optimizer state,\n"
             "                 random generator, epoch): it ends where the whole run would have;\n"
             "                 written back to CKPT unless -o names another\n"
             "  --epochs N     train N epochs (the schedule spans N)\n"
             "  --limit N      use the first N training images\n"
             "  --threads N    threads (default: the statement's, else every core); the result\n"
             "                 is the same bit for bit whatever N\n"
             "  --json         the result as one JSON object on stdout");
        return;
    }
    if (command && strcmp(command, "eval") == 0) {
        puts("usage: mwtc eval FILE.mwt --ckpt CKPT [--model NAME] [--module C[,C...]] [--json]\n"
             "\n"
             "Test accuracy of a checkpoint, overall and per class. With --module, the module\n"
             "of those classes (sliced from a modular checkpoint) on their test images. A\n"
             "reuse's checkpoint (NAME.ckpt) is its module with its fine-tuned head, on its\n"
             "classes' test images; with --module, on some of its classes, the head choosing\n"
             "among those alone (what emit --module builds from it).");
        return;
    }
    if (command && (strcmp(command, "modularize") == 0 || strcmp(command, "report") == 0)) {
        puts("usage: mwtc modularize FILE.mwt --ckpt CKPT [--model NAME] [--threshold T] [--sweep] [--limit N]\n"
             "                       [--json] [--svg FILE]\n"
             "       mwtc report FILE.mwt --ckpt CKPT [--model NAME] [--threshold T] [--sweep] [--limit N]\n"
             "                   [--json] [--svg FILE]\n"
             "\n"
             "Derives one module per class from a trained modular checkpoint: the frequency\n"
             "of each masked kernel over each class's training images (computed once and\n"
             "stored in the checkpoint by modularize; report writes nothing), the kernels at\n"
             "or above the threshold (default: the modularize statement's, else 0.9), and the\n"
             "metrics: KRR, cohesion, coupling, each module's own-class recall, FLOPs and\n"
             "parameters, and the modules composed (calibrated and by raw logits).\n"
             "modularize also stores the modules, their calibrations and the figures measured\n"
             "on images in the checkpoint; a later report of the same modules reads them back.\n"
             "\n"
             "  --model NAME  the model (default: the one the checkpoint is of)\n"
             "  --sweep       also thresholds 0.5 .. 0.95 on 1000 test images\n"
             "  --limit N     kernel frequencies over the first N training images\n"
             "  --svg FILE    charts of KRR and recall per class and of the sweep");
        return;
    }
    if (command && strcmp(command, "reuse") == 0) {
        puts("usage: mwtc reuse FILE.mwt --ckpt CKPT [--epochs N] [--limit N] [--json]\n"
             "\n"
             "Runs the file's reuse statements on a trained modular checkpoint: for each, the\n"
             "module of its classes (the kernels at the modularize statement's threshold, else\n"
             "0.9), generators dropped unless it says keep, with a new head fine-tuned on those\n"
             "classes' training images for its epochs (--epochs overrides); prints the\n"
             "accuracy on their test images after the last epoch and the module's KRR, and\n"
             "writes NAME.ckpt, which eval and emit take. --json prints the reuse's object, or\n"
             "{ \"reuse\": [...] } for a file with several.");
        return;
    }
    if (command && strcmp(command, "repl") == 0) {
        puts("usage: mwtc repl [FILE.mwt]\n"
             "\n"
             "An interactive session: a program that starts as FILE.mwt (imported) and grows\n"
             "by the items typed into it, each checked with everything before it (a model\n"
             "shows its layer table; an item with an error is not added), and any command run\n"
             "on it as on a file: run, check, train, eval, modularize, report, reuse, emit,\n"
             "dump, with their options (`train --epochs 1 -o m.ckpt`, `report --ckpt m.ckpt\n"
             "--threshold 0.8`); without --ckpt, eval, modularize, report, reuse and emit read\n"
             "the checkpoint the session's last training wrote (`train`, then `modularize\n"
             "--threshold 0.8`). :help lists them, :show prints the session, :reset drops what\n"
             "was typed and reads FILE.mwt again, :quit or the end of input leaves. An item\n"
             "typed again (a model, a train statement for the same model) replaces the one\n"
             "before. FILE.mwt is read again at every step. Diagnostics name the session\n"
             "<repl>. Line editing and history on a terminal (libedit; the history is kept in\n"
             "~/.mwtc_history, an item typed over lines as one line), and Tab completes what\n"
             "fits where the cursor is: a command, its options, a model after --model, a file\n"
             "after --ckpt or -o, a layer in a model's braces, a key or its value in a train\n"
             "statement's, the session's names. There Ctrl-C drops the line or item being\n"
             "typed, stops training between two steps (the checkpoint keeps the epochs that\n"
             "finished) and modularize, report, eval --module and emit between two batches of\n"
             "images; a second Ctrl-C during other work ends mwtc. From a pipe, lines are read\n"
             "without prompts and the exit status is 1 when any line failed.");
        return;
    }
    if (command && strcmp(command, "emit") == 0) {
        puts("usage: mwtc emit FILE.mwt --ckpt CKPT --module C[,C...] -o NAME.o [--model NAME] [--threshold T]\n"
             "                 [--cpu CPU] [--json]\n"
             "\n"
             "Writes the module of those classes as NAME.o, an object file with its weights\n"
             "inside that needs only libc and libm, and NAME.h, which declares\n"
             "    int NAME_run(const float *images, float *scores, int n);\n"
             "and NAME_INPUT_SIZE, NAME_OUTPUT_SIZE, NAME_CLASSES. Images go in as the loader\n"
             "reads them (C x H x W floats, 8-bit pixels / 255; the module normalizes them),\n"
             "one score per class comes out, in the order given. The module is the one\n"
             "'eval --module' evaluates: the kernels of its classes at the threshold (default:\n"
             "the modularize statement's, else 0.9), generators as the statement says, sliced\n"
             "and compiled at O3 for this CPU. A reuse's checkpoint gives its module with its\n"
             "fine-tuned head (--module may then be left out).\n"
             "\n"
             "A module (not a reuse's) also gets\n"
             "    int NAME_probability(const float *images, float *p, int n);\n"
             "for each image and class of the module, the probability that the image is of\n"
             "that class (above 0.5: yes), by a logistic calibration of the module's logits\n"
             "that emit fits per class on up to 2000 training images: raw logits say no yes\n"
             "or no (one class's), nor \"none of these\" (several classes': their probabilities\n"
             "need not sum to 1, and all below 0.5 means none).\n"
             "\n"
             "A call runs its images 8 at a time while as many are left (the module compiled\n"
             "at 8 images too, each conv's kernel as at one), then one at a time; emit checks\n"
             "that every image gets the same bits either way (--json: \"bulk\": 8; 1 where\n"
             "not, and the object runs one image at a time). Hand over many images a call.\n"
             "\n"
             "  --cpu CPU   compile for CPU instead of this machine's (native, the default,\n"
             "              uses all of its features): x86-64, x86-64-v2, x86-64-v3 (AVX2)\n"
             "              or x86-64-v4 (AVX-512), for an object that runs on other machines\n"
             "\n"
             "  cc -O2 main.c NAME.o -lm");
        return;
    }
    puts("usage: mwtc FILE.mwt [options]           check, then train, modularize and reuse as the file says\n"
         "       mwtc check FILE.mwt [--json]      parse and check; print each model's layer table\n"
         "       mwtc train FILE.mwt [-o CKPT]     train (the first train statement, or --model NAME's)\n"
         "       mwtc eval FILE.mwt --ckpt CKPT [--module C[,C...]] [--json]\n"
         "       mwtc modularize FILE.mwt --ckpt CKPT [--threshold T] [--sweep]\n"
         "       mwtc report FILE.mwt --ckpt CKPT [--json] [--svg FILE]\n"
         "       mwtc reuse FILE.mwt --ckpt CKPT    run the file's reuse statements from a trained model\n"
         "       mwtc emit FILE.mwt --ckpt CKPT --module C[,C...] -o NAME.o\n"
         "       mwtc repl [FILE.mwt]\n"
         "       mwtc dump ast|ir|llvm FILE.mwt [--model NAME]\n"
         "\n"
         "options: --epochs N  --limit N  --threads N  --seed N  --quiet  -o PATH  --model NAME\n"
         "         --json  --ckpt CKPT  --resume CKPT  --module C,...  --threshold T  --sweep\n"
         "         --svg FILE  --cpu CPU  --help  --version  -- (the rest is the file)\n"
         "         (also --name=value; an option the command does not read is a warning, but for\n"
         "         --threads and --quiet, which every command takes)\n"
         "\n"
         "With --json the main job prints one object: the report, its \"train\" and\n"
         "\"reuse\" results inside.\n"
         "Imports are searched next to the importing file, then in each directory of\n"
         "$MWT_PATH (':'-separated), then in the stdlib.\n"
         "Exit status: 0 success, 1 a diagnosed error, 2 bad usage.\n"
         "'mwtc CMD --help' describes one command. The language: LANGUAGE.md.");
}
