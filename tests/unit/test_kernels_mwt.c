/* The MwT kernels' backward passes (k_mwt.c) against finite differences of
 * references computed in double: the mask generator's gradients for x, w1,
 * w2 and b2, the mask application's for x and m (with and without the
 * fused relu, a module's keep vector, generators dropped), and the
 * cohesion and coupling losses' for the masks, with the losses themselves.
 * check_grads (test_grad.c) runs these kernels inside compiled models, but
 * differentiates a float loss: the generator's gradients there, a few
 * thousandths, sit near its tolerance. Here the difference is taken in
 * double, so a gradient 0.1% off fails; and every kernel must give the
 * same bits however its units split. The generator's forward is checked
 * against its double sums in test_kernels_layers.c. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "k_kernels.h"
#include "kernel_test.h"

/* Kernel against double: |got - want| <= tol (1 + |want|). The float
 * kernels sum up to a few hundred terms of order 1; a gradient's rule off
 * by 0.1% is well outside. */
#define MT_TOL 2e-5

/* A reference loss over doubles that a context points at. */
typedef double (*MtLoss)(const void *ctx);

/* The central difference of f in *p, step h, in double (truncation ~h^2,
 * rounding ~1e-16 / h); *kink is set where the one-sided differences
 * disagree: a relu switched between p - h and p + h. */
static double mt_fd(MtLoss f, const void *ctx, double *p, double h, int *kink)
{
    double keep = *p, l0 = f(ctx);
    *p = keep + h;
    double lp = f(ctx);
    *p = keep - h;
    double lm = f(ctx);
    *p = keep;
    double up = (lp - l0) / h, down = (l0 - lm) / h;
    *kink = fabs(up - down) > 1e-4 * (1 + fabs(up) + fabs(down));
    return (lp - lm) / (2 * h);
}

/* Checks got[i] against the finite difference in p[i] for every i (n <= 300)
 * or for 300 of them spread over the array; at most a tenth may sit on a
 * kink (skipped). */
static void mt_check_fd(MtLoss f, const void *ctx, double *p, const float *got, long n, const char *what)
{
    long step = n <= 300 ? 1 : n / 300 + 1, kinks = 0, checked = 0;
    for (long i = 0; i < n; i += step) {
        int kink;
        double want = mt_fd(f, ctx, &p[i], 1e-6, &kink);
        if (kink) {
            kinks++;
            continue;
        }
        checked++;
        if (!(fabs(got[i] - want) <= MT_TOL * (1 + fabs(want))))
            fail_msg("%s: element %ld: kernel %.9g, finite difference %.9g", what, i, (double)got[i], want);
    }
    if (kinks > checked / 10)
        fail_msg("%s: %ld samples sat on a kink, %ld were checked", what, kinks, checked);
}

static double *mt_dcopy(const float *v, long n)
{
    double *d = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    assert_non_null(d);
    for (long i = 0; i < n; i++)
        d[i] = v[i];
    return d;
}

/* ---------------- the mask generator ---------------- */

/* sum over b, k of dm[b][k] m[b][k], m = relu(tanh(w2 relu(w1 gap(x)) + b2)):
 * its gradients are what k_mask_gen_bwd_x and _bwd_w compute from dm. g
 * holds gap(x), for the differences in the weights (x stays). */
typedef struct {
    int B, C, HW, Hd, K;
    double *x, *w1, *w2, *b2, *g;
    const float *dm;
} MtGen;

/* row b's terms from its gap g */
static double mt_gen_row(const MtGen *r, const double *g, int b)
{
    double h[512], L = 0;
    for (int j = 0; j < r->Hd; j++) {
        double s = 0;
        for (int c = 0; c < r->C; c++)
            s += r->w1[(long)j * r->C + c] * g[c];
        h[j] = s > 0 ? s : 0;
    }
    for (int k = 0; k < r->K; k++) {
        double s = r->b2[k];
        for (int j = 0; j < r->Hd; j++)
            s += r->w2[(long)k * r->Hd + j] * h[j];
        double t = tanh(s);
        L += r->dm[(long)b * r->K + k] * (t > 0 ? t : 0);
    }
    return L;
}

static void mt_gap(const MtGen *r, int b, double *g)
{
    for (int c = 0; c < r->C; c++) {
        double s = 0;
        for (int i = 0; i < r->HW; i++)
            s += r->x[((long)b * r->C + c) * r->HW + i];
        g[c] = s / r->HW;
    }
}

static double mt_gen_loss(const void *vc)
{
    const MtGen *r = vc;
    double L = 0;
    for (int b = 0; b < r->B; b++)
        L += mt_gen_row(r, r->g + (long)b * r->C, b);
    return L;
}

/* the same with the gaps taken again: for the differences in x */
static double mt_gen_loss_x(const void *vc)
{
    const MtGen *r = vc;
    double g[512], L = 0;
    for (int b = 0; b < r->B; b++) {
        mt_gap(r, b, g);
        L += mt_gen_row(r, g, b);
    }
    return L;
}

static void gen_bwd_case(int B, int C, int HW, int Hd, int K)
{
    assert_true(C <= 512 && Hd <= 512); /* the references' rows */
    long nx = (long)B * C * HW, ns = (long)B * (C + Hd + K), nr = (long)B * (K + Hd);
    float *x = kt_fmalloc(nx), *w1 = kt_fmalloc((long)Hd * C), *w2 = kt_fmalloc((long)K * Hd), *b2 = kt_fmalloc(K),
          *dm = kt_fmalloc((long)B * K), *acc = kt_fmalloc(nx);
    kt_fill(x, nx, 301), kt_fill(w1, (long)Hd * C, 302), kt_fill(w2, (long)K * Hd, 303), kt_fill(b2, K, 304);
    kt_fill(dm, (long)B * K, 305), kt_fill(acc, nx, 306);
    for (long i = 0; i < (long)Hd * C; i++)
        w1[i] *= 4.0f; /* masks spread over (0, 1) and zeros, as in test_kernels_layers */
    float *m = kt_garbage((long)B * K), *save = kt_garbage(ns);
    k_mask_gen_fwd(x, w1, w2, b2, m, save, C, HW, Hd, K, 0, B);
    int on = 0;
    for (long i = 0; i < (long)B * K; i++)
        on += m[i] > 0;
    assert_true(on > 0 && on < B * K);

    /* each split's gradients, the same bits as all at once */
    float *dx[3], *dxa[3], *rows[3], *dw1[3], *dw2[3], *db2[3];
    char what[128];
    snprintf(what, sizeof what, "mask generator backward B%d C%d HW%d Hd%d K%d", B, C, HW, Hd, K);
    for (int s = 0; s < 3; s++) {
        dx[s] = kt_garbage(nx), dxa[s] = kt_garbage(nx), rows[s] = kt_garbage(nr);
        dw1[s] = kt_garbage((long)Hd * C), dw2[s] = kt_garbage((long)K * Hd), db2[s] = kt_garbage(K);
        for (int i = 0; i < kt_split_count(s); i++) {
            int a = kt_split_at(B, s, i), e = kt_split_at(B, s, i + 1);
            k_mask_gen_bwd_x(save, dm, w1, w2, NULL, dx[s], rows[s], C, HW, Hd, K, a, e);
            k_mask_gen_bwd_x(save, dm, w1, w2, acc, dxa[s], rows[s], C, HW, Hd, K, a, e);
        }
        for (int i = 0; i < kt_split_count(s); i++)
            k_mask_gen_bwd_w(save, rows[s], dw1[s], dw2[s], db2[s], B, C, Hd, K, kt_split_at(K + Hd, s, i),
                             kt_split_at(K + Hd, s, i + 1));
        if (s > 0) {
            kt_assert_same(dx[0], dx[s], nx, what), kt_assert_same(dxa[0], dxa[s], nx, what);
            kt_assert_same(dw1[0], dw1[s], (long)Hd * C, what), kt_assert_same(dw2[0], dw2[s], (long)K * Hd, what);
            kt_assert_same(db2[0], db2[s], K, what);
        }
    }
    /* the fused add: the other contribution plus this one, to the bit */
    for (long i = 0; i < nx; i++)
        if (dxa[0][i] != acc[i] + dx[0][i])
            fail_msg("%s: the accumulated dx[%ld] is %.9g, not %.9g", what, i, (double)dxa[0][i],
                     (double)(acc[i] + dx[0][i]));

    MtGen r = { B, C, HW, Hd, K, mt_dcopy(x, nx), mt_dcopy(w1, (long)Hd * C), mt_dcopy(w2, (long)K * Hd),
                mt_dcopy(b2, K), malloc(sizeof(double) * (size_t)B * C), dm };
    assert_non_null(r.g);
    for (int b = 0; b < B; b++)
        mt_gap(&r, b, r.g + (long)b * C);
    char part[160];
    snprintf(part, sizeof part, "%s: dx", what);
    mt_check_fd(mt_gen_loss_x, &r, r.x, dx[0], nx, part);
    snprintf(part, sizeof part, "%s: dw1", what);
    mt_check_fd(mt_gen_loss, &r, r.w1, dw1[0], (long)Hd * C, part);
    snprintf(part, sizeof part, "%s: dw2", what);
    mt_check_fd(mt_gen_loss, &r, r.w2, dw2[0], (long)K * Hd, part);
    snprintf(part, sizeof part, "%s: db2", what);
    mt_check_fd(mt_gen_loss, &r, r.b2, db2[0], K, part);

    free(r.x), free(r.w1), free(r.w2), free(r.b2), free(r.g);
    for (int s = 0; s < 3; s++)
        free(dx[s]), free(dxa[s]), free(rows[s]), free(dw1[s]), free(dw2[s]), free(db2[s]);
    free(x), free(w1), free(w2), free(b2), free(dm), free(acc), free(m), free(save);
}

static void test_mask_gen_bwd(void **state)
{
    (void)state;
    gen_bwd_case(5, 7, 9, 6, 5);      /* odd everything, fewer than 8 rows */
    gen_bwd_case(19, 36, 49, 32, 40); /* the forward's two groups of 8 rows and 3 alone */
    gen_bwd_case(3, 300, 4, 16, 5);   /* more than 256 channels: dx's sums in two blocks */
}

/* ---------------- the mask application ---------------- */

/* sum of dy y, y = x s (then relu), s = (generators ? m[p] : 1) keep[p % K]
 * per plane p (keep NULL: 1, k_mask_apply_bwd's plain product). */
typedef struct {
    int P, HW, K, relu, generators;
    double *x, *m;
    const float *keep, *dy;
} MtApply;

static double mt_apply_loss(const void *vc)
{
    const MtApply *r = vc;
    double L = 0;
    for (int p = 0; p < r->P; p++) {
        double s = (r->generators ? r->m[p] : 1.0) * (r->keep ? r->keep[p % r->K] : 1.0);
        for (int i = 0; i < r->HW; i++) {
            double y = r->x[(long)p * r->HW + i] * s;
            L += r->dy[(long)p * r->HW + i] * (r->relu && !(y > 0) ? 0 : y);
        }
    }
    return L;
}

/* keep_kind 0: k_mask_apply_bwd; 1: _keep_bwd with a module's keep vector
 * (every third kernel off). */
static void apply_bwd_case(int B, int K, int HW, int keep_kind, int relu, int generators)
{
    int P = B * K;
    long n = (long)P * HW;
    float *x = kt_fmalloc(n), *m = kt_fmalloc(P), *dy = kt_fmalloc(n), *keep = kt_fmalloc(K);
    kt_fill(x, n, 401), kt_fill(m, P, 402), kt_fill(dy, n, 403);
    /* a mask: relu(tanh), zeros among them; with the relu fused, none: at a
     * zero mask the relu switches with the mask's sign, a kink (where the
     * generator's own relu passes no gradient on) */
    for (int p = 0; p < P; p++)
        m[p] = m[p] > 0 ? m[p] : relu ? 0.5f - m[p] / 4 : 0;
    for (int k = 0; k < K; k++)
        keep[k] = k % 3 == 2 ? 0.0f : 1.0f;
    const float *kp = keep_kind ? keep : NULL;
    char what[128];
    snprintf(what, sizeof what, "mask apply backward B%d K%d HW%d keep %d relu %d generators %d", B, K, HW, keep_kind,
             relu, generators);
    float *dx[3], *dm[3], *y = kt_garbage(n);
    if (keep_kind)
        k_mask_apply_keep(x, m, keep, &generators, y, HW, K, relu, 0, P);
    else
        k_mask_apply_fwd(x, m, y, HW, 0, P);
    for (int s = 0; s < 3; s++) {
        dx[s] = kt_garbage(n), dm[s] = kt_garbage(P);
        for (int i = 0; i < kt_split_count(s); i++) {
            int a = kt_split_at(P, s, i), e = kt_split_at(P, s, i + 1);
            if (keep_kind)
                k_mask_apply_keep_bwd(x, m, keep, &generators, dy, dx[s], dm[s], HW, K, relu, a, e);
            else
                k_mask_apply_bwd(x, m, dy, dx[s], dm[s], HW, a, e);
        }
        if (s > 0)
            kt_assert_same(dx[0], dx[s], n, what), kt_assert_same(dm[0], dm[s], P, what);
    }
    MtApply r = { P, HW, K, relu, generators, mt_dcopy(x, n), mt_dcopy(m, P), kp, dy };
    /* the forward: y is what the loss differentiates */
    for (int p = 0; p < P; p++)
        for (int i = 0; i < HW; i++) {
            double s = (generators ? m[p] : 1.0) * (kp ? kp[p % K] : 1.0), want = (double)x[(long)p * HW + i] * s;
            want = relu && !(want > 0) ? 0 : want;
            if (!(fabs(y[(long)p * HW + i] - want) <= 1e-6 * (1 + fabs(want))))
                fail_msg("%s: y[%d][%d] is %.9g, not %.9g", what, p, i, (double)y[(long)p * HW + i], want);
        }
    char part[160];
    snprintf(part, sizeof part, "%s: dx", what);
    mt_check_fd(mt_apply_loss, &r, r.x, dx[0], n, part);
    snprintf(part, sizeof part, "%s: dm", what);
    mt_check_fd(mt_apply_loss, &r, r.m, dm[0], P, part);
    free(r.x), free(r.m);
    for (int s = 0; s < 3; s++)
        free(dx[s]), free(dm[s]);
    free(x), free(m), free(dy), free(keep), free(y);
}

static void test_mask_apply_bwd(void **state)
{
    (void)state;
    apply_bwd_case(3, 5, 37, 0, 0, 1);   /* planes of 16-lane runs and a tail */
    apply_bwd_case(2, 6, 9, 0, 0, 1);    /* shorter than a run */
    for (int relu = 0; relu < 2; relu++) /* a module's kernels: kept and generated, kept alone, dropped */
        for (int gen = 0; gen < 2; gen++)
            apply_bwd_case(3, 7, 20, 1, relu, gen);
}

/* ---------------- cohesion and coupling ---------------- */

/* w times cohesion (mode 0: 1 - the mean cosine of same-label pairs) or
 * coupling (mode 1: the mean cosine of other-label pairs) of the rows of
 * m, each normalized as F.normalize does (by max(|m_i|, 1e-12)); 0 for a
 * batch without a pair of the kind. */
typedef struct {
    int B, K, mode;
    double w, *m;
    const int *labels;
} MtSim;

static double mt_sim_loss(const void *vc)
{
    const MtSim *r = vc;
    double nrm[64], s = 0;
    long pairs = 0;
    for (int i = 0; i < r->B; i++) {
        double q = 0;
        for (int k = 0; k < r->K; k++)
            q += r->m[(long)i * r->K + k] * r->m[(long)i * r->K + k];
        nrm[i] = sqrt(q) > 1e-12 ? sqrt(q) : 1e-12;
    }
    for (int i = 0; i < r->B; i++)
        for (int j = i + 1; j < r->B; j++) {
            if ((r->labels[i] == r->labels[j]) != (r->mode == 0))
                continue;
            double d = 0;
            for (int k = 0; k < r->K; k++)
                d += r->m[(long)i * r->K + k] * r->m[(long)j * r->K + k];
            s += d / (nrm[i] * nrm[j]);
            pairs++;
        }
    if (pairs == 0)
        return 0;
    return r->w * (r->mode == 0 ? 1 - s / (double)pairs : s / (double)pairs);
}

/* zero_row >= 0: that row of m all zeros (an image whose every tanh was
 * <= 0): the loss has no derivative in it, but the other rows still do
 * and its own gradient must stay finite. */
static void sim_case(int B, int K, const int *labels, int mode, int zero_row)
{
    assert_true(B <= 64);
    long n = (long)B * K;
    float *m = kt_fmalloc(n);
    kt_fill(m, n, 501 + (unsigned)B);
    for (long i = 0; i < n; i++)
        m[i] = m[i] > 0 ? m[i] : 0;
    for (int i = 0; i < B; i++)
        m[(long)i * K + i % K] = i == zero_row ? 0.0f : 0.25f + 0.01f * (float)i; /* no row is zero by chance */
    if (zero_row >= 0)
        for (int k = 0; k < K; k++)
            m[(long)zero_row * K + k] = 0;
    const float dloss = 1.5f, scale = 0.7f, w = 2.5f;
    char what[128];
    snprintf(what, sizeof what, "%s B%d K%d%s", mode ? "coupling" : "cohesion", B, K,
             zero_row >= 0 ? " with a zero row" : "");
    MtSim r = { B, K, mode, w, mt_dcopy(m, n), labels };
    float *rowstat[3], *dm[3], *ws = kt_fmalloc(B), out[3];
    for (int s = 0; s < 3; s++) {
        rowstat[s] = kt_garbage(4L * B), dm[s] = kt_garbage(n);
        int units = (B + 1) / 2;
        for (int i = 0; i < kt_split_count(s); i++)
            k_mask_sim_rows(labels, m, rowstat[s], ws, B, K, kt_split_at(units, s, i), kt_split_at(units, s, i + 1));
        out[s] = 0.125f; /* the loss adds into what the other terms left */
        k_mask_sim_loss(rowstat[s], &out[s], B, mode, w, 0, 1);
        for (int i = 0; i < kt_split_count(s); i++)
            k_mask_sim_bwd(labels, m, &dloss, dm[s], ws, B, K, mode, scale, kt_split_at(B, s, i),
                           kt_split_at(B, s, i + 1));
        if (s > 0) {
            kt_assert_same(rowstat[0], rowstat[s], 4L * B, what), kt_assert_same(&out[0], &out[s], 1, what);
            kt_assert_same(dm[0], dm[s], n, what);
        }
    }
    double want = 0.125 + mt_sim_loss(&r);
    if (!(fabs(out[0] - want) <= 1e-5 * (1 + fabs(want))))
        fail_msg("%s: the loss is %.9g, not %.9g", what, (double)out[0], want);
    /* dm = dloss scale d(term)/dm: the reference's w folded in, then out */
    r.w = (double)dloss * scale;
    char part[160];
    snprintf(part, sizeof part, "%s: dm", what);
    for (int i = 0; i < B; i++) {
        if (i == zero_row) {
            for (int k = 0; k < K; k++)
                if (!isfinite(dm[0][(long)i * K + k]))
                    fail_msg("%s: the zero row's gradient [%d] is %g", part, k, (double)dm[0][(long)i * K + k]);
            continue;
        }
        mt_check_fd(mt_sim_loss, &r, r.m + (long)i * K, dm[0] + (long)i * K, K, part);
    }
    free(r.m), free(ws), free(m);
    for (int s = 0; s < 3; s++)
        free(rowstat[s]), free(dm[s]);
}

static void test_mask_sim(void **state)
{
    (void)state;
    static const int mixed[8] = { 0, 1, 0, 2, 1, 0, 3, 3 };
    static const int distinct[6] = { 0, 1, 2, 3, 4, 5 }, same[5] = { 2, 2, 2, 2, 2 };
    int many[21];
    for (int i = 0; i < 21; i++)
        many[i] = (i * 7 + i / 5) % 4;
    for (int mode = 0; mode < 2; mode++) {
        sim_case(8, 5, mixed, mode, -1);
        sim_case(21, 40, many, mode, -1);   /* odd rows: the middle unit takes one row */
        sim_case(8, 16, mixed, mode, 3);
        sim_case(6, 9, distinct, mode, -1); /* cohesion: no pair of the kind */
        sim_case(5, 9, same, mode, -1);     /* coupling: none either */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_gen_bwd),
        cmocka_unit_test(test_mask_apply_bwd),
        cmocka_unit_test(test_mask_sim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
