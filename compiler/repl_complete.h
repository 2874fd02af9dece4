/* What Tab offers in the REPL: the word at the cursor completed from what
 * fits there (a command, its options, a model's name after --model, a layer
 * in a model's braces, a key in a train statement's, ...). A pure function
 * of the text typed and the session's names, so that it is tested without a
 * terminal; repl.c hands it to libedit. */
#ifndef MWT_REPL_COMPLETE_H
#define MWT_REPL_COMPLETE_H

/* The names the session defines, each kind in its own list. */
typedef struct ReplNames {
    const char *const *models, *const *datasets, *const *blocks;
    const char *const *const *params;   /* per block, its parameters' names (NULL-terminated; NULL: none) */
    int nmodels, ndatasets, nblocks;
} ReplNames;

enum { REPL_COMPLETE_FILES = -1 };

/* The candidates for the word `word` (what is typed of it) into out, at
 * most cap, each starting with word; how many. `item` is the lines of an
 * item typed so far when the line continues one (NULL at a fresh prompt),
 * `before` the line up to the word. REPL_COMPLETE_FILES where a path goes
 * (--ckpt, -o, --svg, --resume, an import): the caller completes file names. */
int repl_complete(const char *item, const char *before, const char *word, const ReplNames *names, const char **out,
                  int cap);

/* The commands a REPL line may start with (NULL-terminated). */
extern const char *const repl_commands[];

/* The characters that end a word for completion: blanks and the language's
 * punctuation, so that `augment = [hf` completes `hf`. */
extern const char repl_complete_breaks[];

#endif
