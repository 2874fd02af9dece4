/* Tab in the REPL. The text before the cursor (the item's earlier lines
 * and the line so far) is cut into tokens as the lexer would (words,
 * punctuation, strings, comments), and the place of the cursor's word in
 * them decides what fits: the first word of a line, a command's option or
 * an option's value, an item's header, a layer or a key in its braces, a
 * key's value, an argument in a call's parentheses. Lists the checker owns
 * (the layers, each item's keys) come from it, so that Tab never offers
 * what the checker refuses. */
#include "repl_complete.h"

#include <stdbool.h>
#include <string.h>

#include "cli.h"
#include "names.h"
#include "sema.h"

const char repl_complete_breaks[] = " \t\n\"'=;,+*(){}[]";   /* not ':': the REPL's :help */

enum { MAX_OPTS = 16, MAX_DEPTH = 32, TOK_LEN = 64 };

/* The tokens before the cursor's word: the first ones (the item's header)
 * and the last ones, with the brackets still open. */
typedef struct Ctx {
    int n;                            /* tokens in all */
    char head[4][TOK_LEN];            /* the first four */
    char last[2][TOK_LEN];            /* last[0] the one just before the word, last[1] the one before it */
    struct Open {
        char ch;                      /* ( { [ */
        char name[TOK_LEN];           /* the word before it: a call's name */
    } open[MAX_DEPTH];
    int depth;                        /* open brackets (past MAX_DEPTH: counted, not kept) */
    bool in_string;                   /* the word is inside "..." */
    bool braces;                      /* a '{' was opened (the item's body began) */
    char opts[MAX_OPTS][TOK_LEN];     /* the words that start with '-': a command's options given */
    int nopts;
} Ctx;

static void push_tok(Ctx *c, const char *s, size_t len)
{
    char t[TOK_LEN];
    if (len >= TOK_LEN)
        len = TOK_LEN - 1;
    memcpy(t, s, len);
    t[len] = 0;
    if (c->n < 4)
        strcpy(c->head[c->n], t);
    strcpy(c->last[1], c->last[0]);
    strcpy(c->last[0], t);
    if (t[0] == '-' && c->nopts < MAX_OPTS)
        strcpy(c->opts[c->nopts++], t);
    c->n++;
}

static void scan(Ctx *c, const char *s)
{
    for (; *s;) {
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
            s++;
        } else if (*s == '#') {
            s += strcspn(s, "\n");
        } else if (*s == '"') {   /* a string: one token; the lexer ends one at a newline too */
            size_t len = strcspn(s + 1, "\"\n");
            if (!s[1 + len]) {
                c->in_string = true;
                return;
            }
            push_tok(c, s, len + 2);
            s += len + 1 + (s[1 + len] == '"');
        } else if (strchr("(){}[],=+*:;", *s)) {
            if (*s == '(' || *s == '{' || *s == '[') {
                if (c->depth < MAX_DEPTH) {
                    c->open[c->depth].ch = *s;
                    strcpy(c->open[c->depth].name, c->n ? c->last[0] : "");
                }
                c->depth++;
                c->braces |= *s == '{';
            } else if ((*s == ')' || *s == '}' || *s == ']') && c->depth > 0) {
                c->depth--;
            }
            push_tok(c, s, 1);
            s++;
        } else {
            size_t len = strcspn(s, " \t\n\r#\"(){}[],=+*:;");
            push_tok(c, s, len);
            s += len;
        }
    }
}

/* The candidates gathered so far. */
typedef struct Out {
    const char *word;
    const char **v;
    int n, cap;
} Out;

static void offer(Out *o, const char *const *v, int n)
{
    size_t wl = strlen(o->word);
    for (int i = 0; i < n && v[i]; i++) {
        if (strncmp(v[i], o->word, wl) != 0)
            continue;
        bool dup = false;
        for (int k = 0; k < o->n && !dup; k++)
            dup = !strcmp(o->v[k], v[i]);
        if (!dup && o->n < o->cap)
            o->v[o->n++] = v[i];
    }
}

static void offer_list(Out *o, const char *const *v)   /* NULL-terminated */
{
    int n = 0;
    while (v[n])
        n++;
    offer(o, v, n);
}

static bool is(const char *a, const char *b) { return !strcmp(a, b); }

const char *const repl_commands[] = { "run", "check", "train", "eval", "modularize", "report", "reuse", "emit", "dump",
                                      NULL };
static const char *const item_words[] = { "dataset", "block", "model", "train", "modularize", "reuse", "import", NULL };
static const char *const repl_words[] = { ":help", ":show", ":reset", ":quit", NULL };
static const char *const truth[] = { "true", "false", NULL };
static const char *const terms[] = { "cross_entropy", "cohesion", "coupling", NULL };

/* A command's words after its name. */
static int complete_command(const Ctx *c, const char *first, const ReplNames *nm, Out *o)
{
    const char *prev = c->last[0], *opt = is(prev, "=") && c->n >= 3 ? c->last[1] : prev;
    if (c->n >= 2 && opt[0] == '-' && cli_option_takes_value(opt)) {
        if (is(opt, "--model"))
            offer(o, nm->models, nm->nmodels);
        else if (is(opt, "--ckpt") || is(opt, "-o") || is(opt, "--svg") || is(opt, "--resume"))
            return REPL_COMPLETE_FILES;
        return o->n;   /* a number, a class list, a CPU: nothing to offer */
    }
    if (is(first, "dump") && c->n == 1 && o->word[0] != '-') {
        static const char *const what[] = { "ast", "ir", "llvm", NULL };
        offer_list(o, what);
        return o->n;
    }
    const char *opts[24];
    int k = cli_options(first, opts, 24);
    /* an option already given is not offered again */
    for (int i = 0; i < k; i++) {
        bool given = false;
        for (int h = 0; h < c->nopts && !given; h++)
            given = is(c->opts[h], opts[i]);
        if (!given)
            offer(o, &opts[i], 1);
    }
    return o->n;
}

/* A key's values, where the language has a fixed set. */
static void complete_value(const char *key, Out *o)
{
    static const char *const optimizers[] = { "sgd", NULL }, *const schedules[] = { "cosine", "constant", "step", NULL },
                             *const gens[] = { "keep", "drop", NULL },
                             *const inits[] = { "linear", "kaiming_normal", NULL };
    if (is(key, "optimizer"))
        offer_list(o, optimizers);
    else if (is(key, "schedule"))
        offer_list(o, schedules);
    else if (is(key, "loss"))
        offer_list(o, terms);
    else if (is(key, "generators"))
        offer_list(o, gens);
    else if (is(key, "mask_init"))
        offer_list(o, inits);
    else if (is(key, "bias") || is(key, "nesterov"))
        offer_list(o, truth);
}

/* A call's arguments by name: the layers', the optimizer's, the schedule's,
 * the data sources' and the augmentations'. */
static void complete_args(const char *call, Out *o)
{
    static const struct {
        const char *call, *args[5];
    } calls[] = {
        { "conv", { "k", "stride", "pad", "bias", NULL } },  { "maxpool", { "k", "stride", NULL } },
        { "avgpool", { "k", "stride", NULL } },               { "linear", { "bias", NULL } },
        { "dropout", { "p", NULL } },                         { "residual", { "shortcut", NULL } },
        { "sgd", { "lr", "momentum", "nesterov", "weight_decay", NULL } },
        { "step", { "every", "gamma", NULL } },               { "synthetic", { "n", "test", "seed", NULL } },
        { "random_crop", { "pad", NULL } },                   { "svhn", { "extra", NULL } },
    };
    for (size_t i = 0; i < sizeof calls / sizeof *calls; i++)
        if (is(call, calls[i].call))
            offer_list(o, calls[i].args);
}

static void complete_layers(const ReplNames *nm, Out *o)
{
    int n;
    const char *const *layers = names_layers(&n);
    static const char *const blocks[] = { "modular", "residual", NULL };
    offer(o, layers, n);
    offer_list(o, blocks);
    offer(o, nm->blocks, nm->nblocks);
}

/* An item's words after its keyword. */
static int complete_item(const Ctx *c, const char *kind, const ReplNames *nm, Out *o)
{
    bool model = is(kind, "model") || is(kind, "block"), data = is(kind, "dataset");
    if (is(kind, "import"))
        return c->in_string ? REPL_COMPLETE_FILES : 0;
    if (c->in_string)   /* a path in a source's parentheses; any other string is a name */
        return data && c->depth > 0 && c->depth <= MAX_DEPTH && !c->braces &&
                       !is(c->open[c->depth - 1].name, "synthetic")
                   ? REPL_COMPLETE_FILES
                   : 0;
    if (c->n == 1) {   /* the name: one to replace, or the statement's model */
        if (is(kind, "model"))
            offer(o, nm->models, nm->nmodels);
        else if (is(kind, "dataset"))
            offer(o, nm->datasets, nm->ndatasets);
        else if (is(kind, "block"))
            offer(o, nm->blocks, nm->nblocks);
        else if (is(kind, "train") || is(kind, "modularize") || is(kind, "reuse"))
            offer(o, nm->models, nm->nmodels);
        return o->n;
    }
    if (!c->braces) {   /* the header */
        static const char *const on[] = { "on", NULL }, *const as[] = { "as", NULL };
        if (is(kind, "train") && c->n == 2)
            offer_list(o, on);
        else if (is(kind, "train") && c->n == 3)
            offer(o, nm->datasets, nm->ndatasets);
        else if (is(kind, "reuse") && c->n == 2)
            offer_list(o, as);
        else if (data && c->n == 3 && is(c->last[0], "="))
            offer_list(o, sema_sources);
        else if (data && c->depth > 0 && c->depth <= MAX_DEPTH && (is(c->last[0], "(") || is(c->last[0], ",")))
            complete_args(c->open[c->depth - 1].name, o);
        return o->n;
    }
    const char *prev = c->last[0];
    const struct Open *in = c->depth > 0 && c->depth <= MAX_DEPTH ? &c->open[c->depth - 1] : NULL;
    if (c->depth == 0)   /* after the closing brace */
        return 0;
    if (is(prev, "="))
        complete_value(c->last[1], o);
    else if (is(prev, "+") || is(prev, "*"))
        offer_list(o, terms);
    else if (in && in->ch == '(' && (is(prev, "(") || is(prev, ","))) {
        complete_args(in->name, o);
        for (int i = 0; model && nm->params && i < nm->nblocks; i++)   /* a block's call: its parameters */
            if (is(in->name, nm->blocks[i]) && nm->params[i])
                offer_list(o, nm->params[i]);
    } else if (in && in->ch == '[' && (is(prev, "[") || is(prev, ",")))
        offer_list(o, (const char *const[]){ "random_crop", "hflip", NULL });
    else if (in && in->ch == '{' && model)   /* the body, modular's, residual's, a shortcut's */
        complete_layers(nm, o);
    else if (in && in->ch == '{' && c->depth == 1)
        offer_list(o, is(kind, "train")        ? sema_train_keys
                      : is(kind, "modularize") ? sema_modularize_keys
                      : is(kind, "reuse")      ? sema_reuse_keys
                      : data                   ? sema_dataset_keys
                                               : (const char *const[]){ NULL });
    return o->n;
}

int repl_complete(const char *item, const char *before, const char *word, const ReplNames *names, const char **out,
                  int cap)
{
    Ctx c;
    memset(&c, 0, sizeof c);
    if (item)
        scan(&c, item);
    if (!c.in_string)
        scan(&c, before);
    Out o = { word, out, 0, cap };
    if (c.n == 0 && !c.in_string) {   /* the line's first word */
        if (word[0] == ':') {
            offer_list(&o, repl_words);
        } else {
            offer_list(&o, repl_commands);
            offer_list(&o, item_words);
        }
        return o.n;
    }
    const char *first = c.head[0];
    bool command = false;
    for (int i = 0; repl_commands[i]; i++)
        command |= is(first, repl_commands[i]);
    /* train, modularize and reuse start an item too: a name after them makes one */
    bool both = is(first, "train") || is(first, "modularize") || is(first, "reuse");
    if (!item && command && both && c.n == 1 && !c.in_string) {   /* the model's name, or an option */
        if (word[0] != '-')
            complete_item(&c, first, names, &o);
        return word[0] == '-' || !word[0] ? complete_command(&c, first, names, &o) : o.n;
    }
    if (!item && command && (!both || c.head[1][0] == '-'))
        return complete_command(&c, first, names, &o);
    return complete_item(&c, first, names, &o);
}
