/* Helpers for the runtime's unit tests: a scratch directory per test. */
#ifndef MWT_RT_TEST_H
#define MWT_RT_TEST_H
#include <stddef.h>

/* Makes a fresh directory PREFIX_XXXXXX under $MWTC_TEST_TMP (else /tmp)
 * and writes its path into dir[n]: 0, or -1 (a cmocka setup's failure). */
int rt_test_mkdir(char *dir, size_t n, const char *prefix);
/* Removes dir and everything below it. */
void rt_test_rmdir(const char *dir);

#endif
