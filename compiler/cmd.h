/* The commands of LANGUAGE.md section 2 that run a model (cmd_run.c); each
 * returns an exit status (cli.h). */
#ifndef MWT_CMD_H
#define MWT_CMD_H
#include <stdio.h>

#include "cli.h"
#include "driver.h"
#include "run_train.h"

/* Runs o's command on c, which the front end has read and checked (parsed
 * only for dump ast): main.c runs it once, the REPL once per command line
 * (cmd_main.c). Returns the exit status. */
int cmd_main(Compilation *c, const CliOptions *o);
/* check: each model's layer table (--model NAME's only). */
int cmd_check(Compilation *c, const CliOptions *o);
int cmd_train(Compilation *c, const CliOptions *o);
/* Trains one statement; prints its result to `out` (NULL: nowhere). */
int cmd_train_one(Compilation *c, const CliOptions *o, const TrainInfo *t, FILE *out);
int cmd_eval(Compilation *c, const CliOptions *o);
int cmd_dump_llvm(Compilation *c, const CliOptions *o);
/* modularize (writes the frequencies into the checkpoint) and report (reads only). */
int cmd_modularize(Compilation *c, const CliOptions *o, int readonly);
/* One model's, as modularize statement mi says (NULL: the defaults): its
 * report to `out`. */
int cmd_modularize_one(Compilation *c, const CliOptions *o, const TrainInfo *t, const ModularizeInfo *mi,
                       const char *ckpt, int readonly, FILE *out);

/* emit (cmd_emit.c): a module as NAME.o and NAME.h. */
int cmd_emit(Compilation *c, const CliOptions *o);

/* For a command without --ckpt: " (M.ckpt is here, ...: --ckpt M.ckpt)" when
 * the checkpoint train writes for one of the file's models (--model's) is in
 * the current directory, else "". */
const char *cmd_ckpt_hint(Compilation *c, const CliOptions *o);

/* Shared by the commands (cmd_run.c). The train statement --model names,
 * else that of the model --ckpt's (or --resume's) checkpoint is of, else the
 * first (NULL diagnosed); a model's train and modularize
 * statements (NULL if none); the options a run takes from the command line. */
const TrainInfo *cmd_pick_train(Compilation *c, const CliOptions *o);
/* "FILE has no model named 'X'", with the model X misspells or a word on a dataset named X. */
void cmd_no_model(Compilation *c, const CliOptions *o);
const TrainInfo *cmd_train_of(Compilation *c, const Net *net);
const ModularizeInfo *cmd_modularize_of(Compilation *c, const Net *net);
void cmd_options(const CliOptions *o, RunOptions *r);
/* --module C[,C...]: at most 256 distinct class numbers into classes[*n],
 * written back plainly into list; EXIT_OK, or EXIT_USAGE printed. Whether
 * they are classes of the data is the run's to say. */
int cmd_parse_classes(const char *arg, int *classes, int *n, char *list, size_t listlen);

/* reuse: the statement's module with a new head, fine-tuned from ckpt_in;
 * its result to `out`. */
int cmd_reuse_one(Compilation *c, const CliOptions *o, const ReuseInfo *ru, const char *ckpt_in, FILE *out);

#endif
