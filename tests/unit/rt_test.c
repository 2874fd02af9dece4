/* Helpers for the runtime's unit tests (rt_test.h). */
#include "rt_test.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int rt_test_mkdir(char *dir, size_t n, const char *prefix)
{
    const char *base = getenv("MWTC_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    snprintf(dir, n, "%s/%s_XXXXXX", base, prefix);
    return mkdtemp(dir) ? 0 : -1;
}

void rt_test_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[8192];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                if (unlink(p) != 0)   /* a directory */
                    rt_test_rmdir(p);
            }
        closedir(d);
    }
    rmdir(dir);
}
