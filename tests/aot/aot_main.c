/* A program that uses an emitted module the way a user would: its header,
 * its object file, libc and libm, nothing else (tests/unit/test_aot.c
 * compiles and runs it). Built with -DMOD_H="NAME.h" -DRUN=NAME_run
 * -DIN=NAME_INPUT_SIZE -DOUT=NAME_OUTPUT_SIZE.
 *
 *     aot_main IMAGES SCORES N      N images (raw floats) in, N * OUT scores out
 *
 * It exits 10 when NAME_run returns -2: the CPU lacks what the module was
 * compiled for. Before that it checks the contract's edge cases (n = 0, n < 0, NULL
 * buffers); it runs the images a second time from THREADS threads at
 * once, which must give the same scores: NAME_run is thread-safe, the
 * calls run in arenas of their own (4), and the threads beyond those wait;
 * and a third time in calls of 1 to 17 images, which must give the same
 * scores to the bit: one call of N images runs them 8 at a time by the
 * module's bulk graph, the threads' calls one at a time by its batch-1
 * graph, these both. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include MOD_H

typedef struct Job {
    const float *x;
    float *s;
    int n, rc;
} Job;

static void *job(void *arg)
{
    Job *j = arg;
    for (int i = 0; i < j->n && j->rc == 0; i++)   /* one image a call: the calls interleave */
        j->rc = RUN(j->x + (size_t)i * IN, j->s + (size_t)i * OUT, 1);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    if (RUN(NULL, NULL, 0) == -2) {   /* compiled for more than this CPU has */
        fprintf(stderr, "aot_main: the module needs instructions this CPU lacks\n");
        return 10;
    }
    int n = atoi(argv[3]);
    float *x = malloc(sizeof(float) * IN * (size_t)n), *s = malloc(sizeof(float) * OUT * (size_t)n);
    float *s2 = malloc(sizeof(float) * OUT * (size_t)n);
    FILE *f = fopen(argv[1], "rb");
    if (!x || !s || !s2 || !f || fread(x, sizeof(float) * IN, (size_t)n, f) != (size_t)n)
        return 3;
    fclose(f);
    if (RUN(x, s, 0) != 0 || RUN(x, s, -1) != -1 || RUN(NULL, s, 1) != -1 || RUN(x, NULL, 1) != -1) {
        fprintf(stderr, "aot_main: the edge cases returned the wrong status\n");
        return 4;
    }
    if (RUN(x, s, n) != 0)
        return 5;
    enum { THREADS = 6 };
    Job jobs[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        int lo = n * t / THREADS, hi = n * (t + 1) / THREADS;
        jobs[t] = (Job){ x + (size_t)lo * IN, s2 + (size_t)lo * OUT, hi - lo, 0 };
        if (pthread_create(&th[t], NULL, job, &jobs[t]) != 0)
            return 6;
    }
    int rc = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        rc |= jobs[t].rc;
    }
    if (rc || memcmp(s, s2, sizeof(float) * OUT * (size_t)n) != 0) {
        fprintf(stderr, "aot_main: %d threads gave other scores than one call\n", THREADS);
        return 7;
    }
    static const int sizes[] = { 1, 3, 8, 13, 2, 17, 9, 16, 7 };
    for (int at = 0, k = 0; at < n; k++) {
        int cnt = sizes[k % 9] < n - at ? sizes[k % 9] : n - at;
        if (RUN(x + (size_t)at * IN, s2 + (size_t)at * OUT, cnt) != 0)
            return 5;
        at += cnt;
    }
    if (memcmp(s, s2, sizeof(float) * OUT * (size_t)n) != 0) {
        fprintf(stderr, "aot_main: calls of 1 to 17 images gave other scores than one call\n");
        return 9;
    }
    f = fopen(argv[2], "wb");
    if (!f || fwrite(s, sizeof(float) * OUT, (size_t)n, f) != (size_t)n || fclose(f) != 0)
        return 8;
    return 0;
}
