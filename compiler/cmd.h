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

#endif
