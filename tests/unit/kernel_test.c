/* The kernel tests' helpers (kernel_test.h). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernel_test.h"

const int kt_simds[2] = { 8, 16 };

float *kt_fmalloc(long n)
{
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    assert_non_null(p);
    return p;
}

void kt_fill(float *v, long n, unsigned seed)
{
    for (long i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

float *kt_garbage(long n)
{
    float *p = kt_fmalloc(n);
    for (long i = 0; i < n; i++)
        p[i] = NAN;
    return p;
}

void kt_assert_close_d(const float *got, const double *want, long n, double tol, const char *what)
{
    for (long i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= tol * (1.0 + fabs(want[i]))))
            fail_msg("%s: element %ld: got %.9g, want %.9g", what, i, got[i], want[i]);
}

void kt_assert_same(const float *a, const float *b, long n, const char *what)
{
    if (memcmp(a, b, sizeof(float) * (size_t)n) != 0)
        fail_msg("%s: results differ with the split of the units", what);
}

void kt_assert_bits(const float *a, const float *b, long n, const char *what)
{
    for (long i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0)
            fail_msg("%s: element %ld: %.9g, not %.9g to the bit", what, i, a[i], b[i]);
}

int kt_split_count(int s) { return s + 1; }
int kt_split_at(int units, int s, int i) { return (int)((long)units * i / kt_split_count(s)); }

void kt_conv_ref(const KtConvShape *s, int OH, int OW, const float *x, const float *w, const float *b, const float *dy,
                 int G, double *y, double *dx, double *dw, double *db)
{
    int N = s->N, C = s->C, H = s->H, W = s->W, K = s->K, R = s->R, S = s->S;
    memset(y, 0, sizeof(double) * (size_t)N * K * OH * OW);
    memset(dx, 0, sizeof(double) * (size_t)N * C * H * W);
    memset(dw, 0, sizeof(double) * (size_t)G * K * C * R * S);
    memset(db, 0, sizeof(double) * (size_t)G * K);
    for (int n = 0; n < N; n++) {
        int g = 0;
        while (!((long)g * N / G <= n && n < (long)(g + 1) * N / G))
            g++;
        for (int k = 0; k < K; k++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    long yi = (((long)n * K + k) * OH + oh) * OW + ow;
                    double acc = b[k];
                    db[(long)g * K + k] += dy[yi];
                    for (int c = 0; c < C; c++)
                        for (int r = 0; r < R; r++)
                            for (int q = 0; q < S; q++) {
                                int ih = oh * s->stride + r - s->pad, iw = ow * s->stride + q - s->pad;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                                    continue;
                                long xi = (((long)n * C + c) * H + ih) * W + iw,
                                     wi = (((long)k * C + c) * R + r) * S + q;
                                acc += (double)w[wi] * x[xi];
                                dx[xi] += (double)w[wi] * dy[yi];
                                dw[(long)g * K * C * R * S + wi] += (double)dy[yi] * x[xi];
                            }
                    y[yi] = acc;
                }
    }
}

double kt_worst_d(const float *got, const double *want, long n)
{
    double e = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]) / (1.0 + fabs(want[i]));
        e = d > e ? d : e;
    }
    return e;
}
