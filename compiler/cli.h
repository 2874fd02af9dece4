/* The command line of LANGUAGE.md section 2. */
#ifndef MWT_CLI_H
#define MWT_CLI_H
#include <stdbool.h>

enum { EXIT_OK = 0, EXIT_ERROR = 1, EXIT_USAGE = 2 };

typedef struct CliOptions {
    const char *command;       /* "run" for the main job */
    const char *what;          /* dump: ast | ir | llvm */
    const char *file;
    const char *model, *ckpt, *output, *module, *svg, *resume, *cpu;
    bool json, quiet, sweep, help, version;
    long long epochs, limit, threads, seed;   /* -1: not given */
    double threshold;                         /* < 0: not given */
} CliOptions;

/* Set by the REPL, whose commands are typed without "mwtc". */
extern bool cli_in_repl;
/* The line after a usage error that says where help is ("Try 'mwtc
 * --help'."; in the REPL its own). */
const char *cli_try(void);
/* The same for one command: "Try 'mwtc CMD --help'." (in the REPL "Try 'CMD --help'."). */
const char *cli_try_cmd(const char *cmd);

/* Parses argv; on a usage error prints it and returns false. */
bool cli_parse(int argc, char **argv, CliOptions *o);
/* Whether the command reads --ckpt (eval, modularize, report, reuse, emit). */
bool cli_reads_ckpt(const char *command);
/* The options the command reads, and those every command takes (--threads,
 * --quiet, --help), into out (at most cap); how many. 0 for no command. */
int cli_options(const char *command, const char **out, int cap);
/* Whether an option is followed by its value (--model NAME, -o PATH). */
bool cli_option_takes_value(const char *option);
void cli_help(const char *command);

#endif
