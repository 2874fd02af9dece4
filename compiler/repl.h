/* The REPL (repl.c): mwtc repl [FILE.mwt]. */
#ifndef MWT_REPL_H
#define MWT_REPL_H
#include "cli.h"

/* Reads items and commands from stdin until its end or :quit; the exit
 * status (on a terminal always 0; piped, 1 when a line failed). */
int repl_run(const CliOptions *o, const char *argv0);

#endif
