/* mwtc: reads as the list of stages. Each stage reports to the diagnostics
 * sink and returns; main turns the count of errors into the exit status. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "driver.h"
#include "repl.h"

int main(int argc, char **argv)
{
    CliOptions o;
    if (!cli_parse(argc, argv, &o))
        return EXIT_USAGE;
    if (o.help) {
        cli_help(strcmp(o.command, "run") ? o.command : NULL);
        return EXIT_OK;
    }
    if (strcmp(o.command, "repl") == 0)
        return repl_run(&o, argv[0]);
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
    fflush(stdout);
    arena_free(&c->arena);
    free(c);
    return status;
}
