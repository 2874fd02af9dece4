/* Modules, their metrics and the calibration (mwt_modules.h). */
#include "mwt_modules.h"
#include "k_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

long long mod_kept(const unsigned char *keep, long long n)
{
    long long k = 0;
    for (long long i = 0; i < n; i++)
        k += keep[i] != 0;
    return k;
}

static void class_module(const ModStats *s, int c, double threshold, unsigned char *keep)
{
    const double *f = s->freq + (long long)c * s->kernels;
    for (int l = 0; l < s->layers; l++) {
        long long a = s->layer_off[l], b = s->layer_off[l + 1];
        double t = threshold;
        for (;;) {
            long long kept = 0;
            for (long long j = a; j < b; j++)
                kept += (keep[j] = f[j] >= t - 1e-12);
            /* the fallback: a layer keeps at least one kernel */
            if (kept > 0 || t <= 0)
                break;
            t -= 0.05;
        }
    }
}

void mod_module(const ModStats *s, const int *classes, int n, double threshold, unsigned char *keep)
{
    memset(keep, 0, (size_t)s->kernels);
    unsigned char one[s->kernels > 0 ? s->kernels : 1];
    for (int i = 0; i < n; i++) {
        class_module(s, classes[i], threshold, one);
        for (long long j = 0; j < s->kernels; j++)
            keep[j] |= one[j];
    }
    /* residual groups: an add's operands keep the same channels */
    for (int l = 0; l < s->layers; l++)
        for (int m = l + 1; m < s->layers; m++) {
            long long kl = s->layer_off[l + 1] - s->layer_off[l], km = s->layer_off[m + 1] - s->layer_off[m];
            if (s->group[l] != s->group[m] || kl != km)
                continue;
            for (long long j = 0; j < kl; j++) {
                unsigned char u = keep[s->layer_off[l] + j] | keep[s->layer_off[m] + j];
                keep[s->layer_off[l] + j] = keep[s->layer_off[m] + j] = u;
            }
        }
}

double mod_jaccard(const uint64_t *a, const uint64_t *b, int words)
{
    long long inter = 0, uni = 0;
    for (int i = 0; i < words; i++) {
        inter += __builtin_popcountll(a[i] & b[i]);
        uni += __builtin_popcountll(a[i] | b[i]);
    }
    return uni ? (double)inter / (double)uni : 1.0;
}

double mod_cohesion(const uint64_t *masks, long long n, const uint64_t *module, int words)
{
    if (n < 2)
        return 1.0;
    uint64_t a[words], b[words];
    double sum = 0;
    long long pairs = 0;
    for (long long i = 0; i < n; i++) {
        for (int w = 0; w < words; w++)
            a[w] = masks[i * words + w] & module[w];
        for (long long j = i + 1; j < n; j++) {
            for (int w = 0; w < words; w++)
                b[w] = masks[j * words + w] & module[w];
            sum += mod_jaccard(a, b, words);
            pairs++;
        }
    }
    return sum / (double)pairs;
}

double mod_calib_score(const ModCalib *c, const float *z)
{
    double x[32], s = c->w[c->dim];
    k_calib_features(c->logits, c->own, z, x);
    for (int i = 0; i < c->dim; i++)
        s += c->w[i] * ((x[i] - c->mean[i]) / c->std[i]);
    return k_calib_sigmoid(s);
}

/* Solves A x = b (n <= 33) by Gaussian elimination with partial pivoting. */
static void solve(double *A, double *b, int n)
{
    for (int k = 0; k < n; k++) {
        int p = k;
        for (int i = k + 1; i < n; i++)
            if (fabs(A[i * n + k]) > fabs(A[p * n + k]))
                p = i;
        for (int j = 0; j < n; j++) {
            double t = A[k * n + j];
            A[k * n + j] = A[p * n + j], A[p * n + j] = t;
        }
        double t = b[k];
        b[k] = b[p], b[p] = t;
        if (fabs(A[k * n + k]) < 1e-300)
            continue;
        for (int i = k + 1; i < n; i++) {
            double f = A[i * n + k] / A[k * n + k];
            for (int j = k; j < n; j++)
                A[i * n + j] -= f * A[k * n + j];
            b[i] -= f * b[k];
        }
    }
    for (int k = n - 1; k >= 0; k--) {
        double s = b[k];
        for (int j = k + 1; j < n; j++)
            s -= A[k * n + j] * b[j];
        b[k] = fabs(A[k * n + k]) < 1e-300 ? 0 : s / A[k * n + k];
    }
}

void mod_calib_fit(ModCalib *c, const float *z, const unsigned char *y, long long n, int logits, int own)
{
    memset(c, 0, sizeof *c);
    c->logits = logits, c->own = own;
    int dim = c->dim = logits <= 32 ? logits : 3;
    double *f = malloc(sizeof(double) * (size_t)(n * dim + 1));
    if (!f) {
        c->dim = 0;   /* no features, bias 0: every score 0.5 */
        return;
    }
    for (long long r = 0; r < n; r++)
        k_calib_features(logits, own, z + r * logits, f + r * dim);
    for (int i = 0; i < dim; i++) {
        double s = 0, ss = 0;
        for (long long r = 0; r < n; r++) {
            s += f[r * dim + i];
            ss += f[r * dim + i] * f[r * dim + i];
        }
        c->mean[i] = n ? s / (double)n : 0;
        double var = n ? ss / (double)n - c->mean[i] * c->mean[i] : 0;
        c->std[i] = var > 1e-12 ? sqrt(var) : 1;
    }
    int D = dim + 1;
    double H[33 * 33], g[33], x[33];
    const double lambda = 1e-3;   /* keeps separable data from running off to infinity */
    for (int it = 0; it < 25; it++) {
        memset(H, 0, sizeof H);
        memset(g, 0, sizeof g);
        for (long long r = 0; r < n; r++) {
            for (int i = 0; i < dim; i++)
                x[i] = (f[r * dim + i] - c->mean[i]) / c->std[i];
            x[dim] = 1;
            double s = 0;
            for (int i = 0; i < D; i++)
                s += c->w[i] * x[i];
            double p = k_calib_sigmoid(s), d = p * (1 - p);
            for (int i = 0; i < D; i++) {
                g[i] += (p - y[r]) * x[i];
                for (int j = 0; j < D; j++)
                    H[i * D + j] += d * x[i] * x[j];
            }
        }
        double norm = 0;
        for (int i = 0; i < D; i++) {
            g[i] = g[i] / (double)n + lambda * (i < dim ? c->w[i] : 0);
            for (int j = 0; j < D; j++)
                H[i * D + j] = H[i * D + j] / (double)n + (i == j && i < dim ? lambda : 0) + (i == j ? 1e-9 : 0);
            norm += g[i] * g[i];
        }
        solve(H, g, D);
        for (int i = 0; i < D; i++)
            c->w[i] -= g[i];
        if (norm < 1e-14)
            break;
    }
    free(f);
}
