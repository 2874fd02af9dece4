/* The commands of LANGUAGE.md section 2 that run a model (cmd_run.c); each
 * returns an exit status (cli.h). */
#ifndef MWT_CMD_H
#define MWT_CMD_H
#include "cli.h"
#include "driver.h"

int cmd_train(Compilation *c, const CliOptions *o);
/* Trains one statement; prints its result when `print`. */
int cmd_train_one(Compilation *c, const CliOptions *o, const TrainInfo *t, int print);
int cmd_eval(Compilation *c, const CliOptions *o);
int cmd_dump_llvm(Compilation *c, const CliOptions *o);
/* modularize (writes the frequencies into the checkpoint) and report (reads only). */
int cmd_modularize(Compilation *c, const CliOptions *o, int readonly);
int cmd_modularize_one(Compilation *c, const CliOptions *o, const TrainInfo *t, const char *ckpt, int readonly);

/* reuse: the statement's module with a new head, fine-tuned from ckpt_in. */
int cmd_reuse_one(Compilation *c, const CliOptions *o, const ReuseInfo *ru, const char *ckpt_in);

#endif
