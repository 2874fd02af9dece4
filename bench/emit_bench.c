/* bench/emit_bench.c: an emitted module (mwtc emit) timed as a user's program runs it, built by
 * bench/infer_vs_torch with -DMOD_H='"NAME.h"' -DRUN=NAME_run -DIN=NAME_INPUT_SIZE
 * -DOUT=NAME_OUTPUT_SIZE against NAME.o, -lm and -lz (to read the images):
 *
 *     emit_bench IDX_DIR        the Fashion-MNIST test images (t10k-images-idx3-ubyte[.gz])
 *
 * Prints one JSON object: the median latency of 1000 single-image calls (after 20 warm-up calls)
 * and images/s over all 10000 images in one call; one thread, as NAME_run runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include MOD_H

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", argv[1]);
    gzFile f = gzopen(path, "rb");   /* zlib reads a plain file as well */
    if (!f) {
        snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", argv[1]);
        f = gzopen(path, "rb");
    }
    enum { N = 10000 };
    unsigned char head[16], *px = malloc((size_t)N * IN);
    float *x = malloc(sizeof(float) * (size_t)N * IN), *s = malloc(sizeof(float) * (size_t)N * OUT);
    if (!f || !px || !x || !s || gzread(f, head, 16) != 16 || gzread(f, px, N * IN) != N * IN) {
        fprintf(stderr, "emit_bench: cannot read the test images of %s\n", argv[1]);
        return 1;
    }
    gzclose(f);
    for (long i = 0; i < (long)N * IN; i++)
        x[i] = (float)px[i] / 255.0f;
    for (int i = 0; i < 20; i++)
        RUN(x + (size_t)i * IN, s, 1);
    static double lat[1000];
    for (int i = 0; i < 1000; i++) {
        double t0 = now();
        RUN(x + (size_t)i * IN, s, 1);
        lat[i] = now() - t0;
    }
    qsort(lat, 1000, sizeof lat[0], cmp);
    double t0 = now();
    if (RUN(x, s, N) != 0)
        return 1;
    double all = now() - t0;
    printf("{ \"emitted_b1_latency_ms\": %.4f, \"emitted_images_per_s\": %.1f }\n", 1e3 * lat[500], N / all);
    return 0;
}
