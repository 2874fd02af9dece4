/* mwtc: reads as the list of stages. Each stage reports to the diagnostics
 * sink and returns; main turns the count of errors into the exit status. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "driver.h"
#include "repl.h"
#include "rt_progress.h"

/* What stdout could not take (a full disk, a closed pipe) is an I/O error:
 * exit 1, as LANGUAGE.md says, and not a successful run whose output is
 * gone. A reader that went away (`| head`) needs no message. */
static volatile sig_atomic_t pipe_closed;

static void on_sigpipe(int sig)
{
    (void)sig;
    pipe_closed = 1;   /* the write returns EPIPE */
}

static int output_status(int status)
{
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout))
        return status;
    if (!pipe_closed)
        fprintf(stderr, "mwtc: error: cannot write the output: %s\n", strerror(errno ? errno : EIO));
    return status == EXIT_OK ? EXIT_ERROR : status;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, on_sigpipe);   /* a closed pipe is a write error (output_status), not the end by a signal */
    CliOptions o;
    if (!cli_parse(argc, argv, &o))
        return EXIT_USAGE;
    if (o.help) {
        cli_help(strcmp(o.command, "run") ? o.command : NULL);
        return output_status(EXIT_OK);
    }
    if (o.version) {
        puts("mwtc " MWTC_VERSION);
        return output_status(EXIT_OK);
    }
    if (strcmp(o.command, "repl") == 0)
        return output_status(repl_run(&o, argv[0]));
    rt_interrupt_install();   /* Ctrl-C while training stops after the step (rt_progress.h) */
    Compilation *c = calloc(1, sizeof *c);
    if (!c) {
        fputs("mwtc: error: out of memory\n", stderr);
        return EXIT_ERROR;
    }
    arena_init(&c->arena, &c->oom);
    diag_init(&c->diag, stderr);
    volatile int status = EXIT_ERROR;
    if (setjmp(c->oom)) {
        fputs("mwtc: error: out of memory\n", stderr);
        goto done;
    }
    ImportPaths paths = { getenv("MWT_PATH"), driver_stdlib_dir(&c->arena, argv[0]) };
    int dump_ast = strcmp(o.command, "dump") == 0 && strcmp(o.what, "ast") == 0;
    if (driver_front_end(c, o.file, &paths, !dump_ast) > 0)
        goto done;
    if (setjmp(c->oom)) {   /* again: the front end armed it for its own frame, which has returned */
        fputs("mwtc: error: out of memory\n", stderr);
        goto done;
    }
    status = cmd_main(c, &o);
done:
    status = output_status(status);
    if (rt_interrupted())   /* stopped by Ctrl-C, as a shell reports a program it ended */
        status = 128 + SIGINT;
    arena_free(&c->arena);
    free(c);
    return status;
}
