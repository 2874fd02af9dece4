/* Modules and their metrics against hand-computed cases, and modularize
 * end to end on a small modular model trained on synthetic data. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mwt_test.h"
#include "rt_ckpt.h"
#include "rt_progress.h"
#include "run_modularize.h"

/* 2 classes; layer 0 has 3 kernels, layer 1 has 2. */
static double freq[2][5] = { { 0.95, 0.5, 0.9, 0.2, 0.85 }, { 0.1, 0.92, 0.3, 0.6, 0.7 } };
static long long off[3] = { 0, 3, 5 };
static long long count[2] = { 10, 10 };

static ModStats stats(int *group)
{
    ModStats s = { 2, 2, 5, off, group, &freq[0][0], count };
    return s;
}

static void test_threshold_and_fallback(void **st)
{
    (void)st;
    int group[2] = { 0, 1 };
    ModStats s = stats(group);
    unsigned char k[5];
    int c0 = 0, c1 = 1, both[2] = { 0, 1 };
    mod_module(&s, &c0, 1, 0.9, k);
    unsigned char want0[5] = { 1, 0, 1, 0, 0 };
    /* layer 1 keeps nothing at 0.9: 0.85, then 0.80 -> kernel 4 at 0.85 */
    want0[4] = 1;
    assert_memory_equal(k, want0, 5);
    mod_module(&s, &c1, 1, 0.9, k);
    /* layer 1 falls back to 0.70 (0.9 -> 0.85 -> 0.8 -> 0.75 -> 0.7): kernel 4 */
    unsigned char want1[5] = { 0, 1, 0, 0, 1 };
    assert_memory_equal(k, want1, 5);
    mod_module(&s, both, 2, 0.9, k);
    unsigned char want01[5] = { 1, 1, 1, 0, 1 };
    assert_memory_equal(k, want01, 5);
    assert_int_equal(mod_kept(k, 5), 4);
    /* lower thresholds keep more: KRR falls as the threshold rises */
    long long prev = 6;
    for (double t = 0.5; t < 0.96; t += 0.05) {
        mod_module(&s, &c0, 1, t, k);
        assert_true(mod_kept(k, 5) <= prev);
        prev = mod_kept(k, 5);
    }
}

static void test_residual_union(void **st)
{
    (void)st;
    static double f[1][4] = { { 1, 0, 0, 1 } };
    long long o[3] = { 0, 2, 4 };
    int group[2] = { 7, 7 };   /* two layers of 2 kernels meet at an add */
    long long n[1] = { 1 };
    ModStats s = { 1, 2, 4, o, group, &f[0][0], n };
    unsigned char k[4];
    int c = 0;
    mod_module(&s, &c, 1, 0.9, k);
    unsigned char want[4] = { 1, 1, 1, 1 };
    assert_memory_equal(k, want, 4);
}

static void test_jaccard_and_cohesion(void **st)
{
    (void)st;
    uint64_t a = 0x0f, b = 0x3c, z = 0;
    assert_true(fabs(mod_jaccard(&a, &b, 1) - 2.0 / 6.0) < 1e-12);
    assert_true(mod_jaccard(&z, &z, 1) == 1.0);
    /* three images; the module keeps bits 0..3: {0,1}, {0,1,2}, {3} -> J = 2/3, 0, 0 */
    uint64_t masks[3] = { 0x3 | 0x100, 0x7, 0x8 }, module = 0xf;
    assert_true(fabs(mod_cohesion(masks, 3, &module, 1) - (2.0 / 3.0) / 3.0) < 1e-12);
}

static void test_calibration(void **st)
{
    (void)st;
    float z[200];
    unsigned char y[200];
    for (int i = 0; i < 200; i++) {
        z[i] = (float)(i - 100) / 10.0f + (i % 7 == 0 ? 3.0f : 0.0f);
        y[i] = i >= 100;
    }
    ModCalib c;
    mod_calib_fit(&c, z, y, 200, 1, 0);
    float lo = -5, mid = 0.05f, hi = 5;
    assert_true(mod_calib_score(&c, &lo) < 0.05);
    assert_true(mod_calib_score(&c, &hi) > 0.95);
    assert_true(fabs(mod_calib_score(&c, &mid) - 0.5) < 0.25);
}

/* Past 32 classes the calibration reads the own logit, the largest other
 * and the own log-softmax of each row of 40 logits (each row its own 40,
 * not the first 32 of a 32-wide stride). */
static void test_calibration_many_classes(void **st)
{
    (void)st;
    enum { N = 400, L = 40, OWN = 35 };
    static float z[N * L];
    unsigned char y[N];
    for (int i = 0; i < N; i++) {
        y[i] = i % 4 == 0;
        for (int j = 0; j < L; j++)
            z[i * L + j] = (float)((i * 7 + j * 13) % 17) / 17.0f;
        z[i * L + OWN] = y[i] ? 2.0f + (float)(i % 5) / 10 : (float)(i % 5) / 10;
    }
    ModCalib c;
    mod_calib_fit(&c, z, y, N, L, OWN);
    assert_int_equal(c.dim, 3);
    int right = 0;
    for (int i = 0; i < N; i++)
        right += (mod_calib_score(&c, z + i * L) > 0.5) == y[i];
    assert_int_equal(right, N);
}

/* The text report says why modules composed beat the model they were cut
 * from (the calibrations' doing), and says nothing when they do not. */
static void test_report_composed_above_model(void **st)
{
    (void)st;
    ModuleReport mods[2] = { { 0, 3, 0.5, 1.0, 100, 10 }, { 1, 4, 0.6, 0.2, 120, 12 } };
    ModReport r = { .model = "m", .dataset = "d", .classes = 2, .threshold = 0.9, .generators = 1,
                    .accuracy = 0.50, .modular_accuracy = 0.95, .modular_accuracy_raw = 0.5, .masked_kernels = 6,
                    .krr = 0.55, .cohesion = 1, .coupling = 1, .flops = 200, .params = 20, .modules = mods };
    for (int k = 0; k < 3; k++) {
        r.modular_accuracy = k == 0 ? 0.95 : k == 1 ? 0.505 : 0.40;   /* above, within a point, below */
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        assert_non_null(f);
        mod_report_text(f, &r);
        fclose(f);
        assert_true((strstr(text, "composed above the model itself") != NULL) == (k == 0));
        assert_non_null(strstr(text, "(loses its own class)"));   /* class 1, recall 0.2 */
        free(text);
    }
}

/* The SVG's bars fit any class count: 10 named classes as 60 px bars with
 * their values and names; 100 (CIFAR-100's) as 12 px bars in a wider image,
 * numbered on their side, where 600 px had made them -2 px wide. Classes
 * without test images: "n/a", or a grey mark and a note. */
static char *svg_of(const ModReport *r)
{
    char path[] = "/tmp/mwtc_svg_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char err[256];
    assert_int_equal(mod_report_svg(path, r, err, sizeof err), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *text = calloc(1, 1 << 20);
    size_t n = fread(text, 1, (1 << 20) - 1, f);
    assert_true(n > 0 && n < (1 << 20) - 1);
    fclose(f);
    unlink(path);
    return text;
}

static void test_report_svg_any_classes(void **st)
{
    (void)st;
    static const char *names[10] = { "T-shirt", "Trouser", "Pullover", "Dress", "Coat",
                                     "Sandal",  "Shirt",   "Sneaker",  "Bag",   "Ankle <boot>" };
    ModuleReport mods[100];
    for (int c = 0; c < 100; c++)
        mods[c] = (ModuleReport){ c, 10, 0.5 + 0.004 * c, c >= 64 ? NAN : 0.01 * c, 100, 10 };
    ModReport r = { .model = "m", .dataset = "d", .classes = 10, .threshold = 0.9, .generators = 1,
                    .modular_accuracy = 0.5, .krr = 0.7, .modules = mods, .names = names };
    char *svg = svg_of(&r);
    assert_non_null(strstr(svg, "width=\"720\""));
    assert_non_null(strstr(svg, "width=\"52\" height=\"67\""));   /* class 0's KRR 0.5: 60 px less 8, 130 * 0.5 */
    assert_non_null(strstr(svg, ">0.54<"));                         /* class 9's KRR, above its bar */
    assert_non_null(strstr(svg, ">Ankle &lt;boot&gt;<"));
    assert_null(strstr(svg, "grey"));
    free(svg);
    r.classes = 100, r.names = NULL;
    svg = svg_of(&r);
    assert_non_null(strstr(svg, "width=\"1320\""));   /* 120 + 100 * 12 */
    assert_null(strstr(svg, "width=\"-"));
    int bars = 0;
    for (const char *q = strstr(svg, "width=\"10\""); q; q = strstr(q + 1, "width=\"10\""))
        bars++;
    assert_int_equal(bars, 200 + 36);   /* 100 KRR, 100 recall (36 empty), 36 grey marks */
    assert_non_null(strstr(svg, "rotate(-90)\" text-anchor=\"end\" font-size=\"9\">99</text>"));
    assert_non_null(strstr(svg, "own-class recall (grey: no test images of the class)"));
    assert_null(strstr(svg, ">0.54<"));   /* no values over 12 px bars */
    free(svg);
}

static const char *src =
    "dataset d = synthetic(n = 512, test = 256, seed = 3) { classes = 4  shape = [2, 12, 12] }\n"
    "model m : [2, 12, 12] -> [4] {\n"
    "    conv(8) batchnorm relu\n"
    "    modular { conv(8) batchnorm relu maxpool(2) residual { conv(8) batchnorm relu conv(8) batchnorm } relu }\n"
    "    gap linear(4) }\n"
    "train m on d { epochs = 3  batch = 32  optimizer = sgd(lr = 0.05, momentum = 0.9, nesterov = true)\n"
    "    loss = cross_entropy + 0.5 * cohesion + 1.5 * coupling  seed = 2 }\n"
    "modularize m { threshold = 0.9 }\n";

static void test_modularize_end_to_end(void **st)
{
    (void)st;
    char ck[512], err[1024];
    ModReport r;
    TestComp *t = tc_train_modular("mz.mwt", src, "mz.ckpt", 1, ck, sizeof ck, &r);
    const TrainInfo *tr = t->c.checked.trains.v[0];
    RunOptions o = { .seed = -1, .progress = RT_PROGRESS_QUIET, .ckpt = ck };
    mod_report_text(stdout, &r);
    assert_int_equal(r.masked_kernels, 24);
    assert_true(r.accuracy > 0.5);
    assert_true(r.krr > 0 && r.krr <= 1);
    assert_true(r.cohesion >= 0 && r.cohesion <= 1 && r.coupling >= 0 && r.coupling <= 1);
    /* the model's cost as `check` reports it (maxpool and gap included) */
    assert_int_equal(r.flops, tr->model->flops);
    assert_int_equal(r.params, tr->model->params);
    for (int c = 0; c < 4; c++) {
        assert_true(r.modules[c].kernels >= 3);   /* the fallback: a kernel per layer at least */
        assert_true(r.modules[c].recall >= 0 && r.modules[c].recall <= 1);
        assert_true(r.modules[c].flops <= r.flops);
    }
    for (int i = 1; i < r.nsweep; i++)
        assert_true(r.sweep_krr[i] <= r.sweep_krr[i - 1] + 1e-12);
    /* the frequencies went into the checkpoint */
    RtCkpt c = { 0 };
    assert_int_equal(rt_ckpt_load(&c, ck, err, sizeof err), 0);
    const RtCkptEntry *e = rt_ckpt_find(&c, "mwt/freq");
    assert_non_null(e);
    assert_int_equal(e->dims[0], 4);
    assert_int_equal(e->dims[1], 24);
    rt_ckpt_free(&c);
    /* a second modularize at another threshold reads them back: same KRR at 0.9 */
    ModReport r2;
    if (run_modularize(&t->c.arena, tr, t->c.checked.modularizes.v[0], &o, 0.9, 0, 1, &r2, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_true(r2.krr == r.krr);
    /* A frequency exactly at the threshold survives the checkpoint: class 0's
     * kernels alternate between 1 and 5400 of 6000 images, 0.9, which float
     * cannot hold (stored, it rounds below), at a threshold of exactly 0.9. */
    assert_int_equal(rt_ckpt_load(&c, ck, err, sizeof err), 0);
    double count = 6000, on = 5400;
    assert_true((double)(float)(on / count) < on / count);
    float fq[4 * 24], cnt[4] = { 6000, 6000, 6000, 6000 };
    for (int i = 0; i < 4 * 24; i++)
        fq[i] = i < 24 ? (i % 2 ? 1.0f : (float)(on / count)) : 0.0f;
    long long d2[2] = { 4, 24 }, d1[1] = { 4 };
    assert_int_equal(rt_ckpt_add_f32(&c, "mwt/freq", 2, d2, fq), 0);
    assert_int_equal(rt_ckpt_add_f32(&c, "mwt/count", 1, d1, cnt), 0);
    assert_int_equal(rt_ckpt_save(&c, ck, err, sizeof err), 0);
    rt_ckpt_free(&c);
    ModReport r3;
    if (run_modularize(&t->c.arena, tr, t->c.checked.modularizes.v[0], &o, (double)on / count, 0, 1, &r3, err,
                       sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(r3.modules[0].kernels, 24);
    tc_free(t);
}

/* What modularize measured on images goes into the checkpoint with the
 * modules and their calibrations; a later modularize of the same modules
 * reads it back, to the last bit, and one whose tensors differ measures again. */
static void test_measured_stored(void **st)
{
    (void)st;
    char ck[512], err[1024];
    ModReport r, r2, r3;
    TestComp *t = tc_train_modular("ms.mwt", src, "ms.ckpt", 0, ck, sizeof ck, &r);
    const TrainInfo *tr = t->c.checked.trains.v[0];
    const ModularizeInfo *mi = t->c.checked.modularizes.v[0];
    RunOptions o = { .seed = -1, .progress = RT_PROGRESS_QUIET, .ckpt = ck };
    assert_false(r.stored);
    RtCkpt c = { 0 };
    assert_int_equal(rt_ckpt_load(&c, ck, err, sizeof err), 0);
    const RtCkptEntry *m = rt_ckpt_find(&c, "mwt/modules"), *cal = rt_ckpt_find(&c, "mwt/calib");
    assert_non_null(m);
    assert_int_equal(m->bytes, 4 * 24);
    assert_non_null(cal);
    assert_int_equal(cal->dims[0], 4);
    assert_int_equal(cal->dims[1], 3 * 4 + 1);
    assert_non_null(rt_ckpt_find(&c, "mwt/report"));
    rt_ckpt_free(&c);

    if (run_modularize(&t->c.arena, tr, mi, &o, -1, 0, 1, &r2, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_true(r2.stored);
    assert_true(r2.accuracy == r.accuracy && r2.cohesion == r.cohesion && r2.coupling == r.coupling);
    assert_true(r2.modular_accuracy == r.modular_accuracy && r2.modular_accuracy_raw == r.modular_accuracy_raw);
    for (int k = 0; k < 4; k++)
        assert_true(r2.modules[k].recall == r.modules[k].recall);

    /* another weight: measured again, and a report (readonly) leaves the stored figures alone */
    assert_int_equal(rt_ckpt_load(&c, ck, err, sizeof err), 0);
    for (int i = 0; i < c.n; i++)
        if (c.e[i].kind == RT_CKPT_F32 && strncmp(c.e[i].name, "mwt/", 4) && c.e[i].bytes >= sizeof(float)) {
            ((float *)c.e[i].data)[0] += 0.25f;
            break;
        }
    assert_int_equal(rt_ckpt_save(&c, ck, err, sizeof err), 0);
    rt_ckpt_free(&c);
    if (run_modularize(&t->c.arena, tr, mi, &o, -1, 0, 1, &r3, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_false(r3.stored);

    /* a stored report that does not parse is measured again, not trusted */
    static const char *bad[] = { "", "fingerprint\n", "fingerprint 1 2\n", "threshold 0.9\n", "fingerprint 12\nrecall 7\n" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(rt_ckpt_load(&c, ck, err, sizeof err), 0);
        assert_int_equal(rt_ckpt_add_bytes(&c, "mwt/report", bad[i], strlen(bad[i])), 0);
        assert_int_equal(rt_ckpt_save(&c, ck, err, sizeof err), 0);
        rt_ckpt_free(&c);
        if (run_modularize(&t->c.arena, tr, mi, &o, -1, 0, 1, &r3, err, sizeof err) != 0)
            fail_msg("%s", err);
        assert_false(r3.stored);
    }
    tc_free(t);
}

/* Rewrites entry `name` of checkpoint ck: f32 of `rank` dims d (data v), or
 * bytes (rank < 0, v the text). */
static void put(const char *ck, const char *name, int rank, const long long *d, const void *v)
{
    char err[1024];
    RtCkpt c = { 0 };
    assert_int_equal(rt_ckpt_load(&c, ck, err, sizeof err), 0);
    if (rank < 0)
        assert_int_equal(rt_ckpt_add_bytes(&c, name, v, strlen(v)), 0);
    else
        assert_int_equal(rt_ckpt_add_f32(&c, name, rank, d, v), 0);
    assert_int_equal(rt_ckpt_save(&c, ck, err, sizeof err), 0);
    rt_ckpt_free(&c);
}

/* A checkpoint damaged where its CRC cannot tell (entries rewritten whole,
 * as by another program): stored frequencies that are not frequencies are
 * counted again (an empty count read past its end), and a run description
 * or random generator state that mwtc train never writes is an error. */
static void test_damaged_entries(void **st)
{
    (void)st;
    char ck[512], err[1024];
    ModReport r, r2;
    TestComp *t = tc_train_modular("dm.mwt", src, "dm.ckpt", 0, ck, sizeof ck, &r);
    const TrainInfo *tr = t->c.checked.trains.v[0];
    const ModularizeInfo *mi = t->c.checked.modularizes.v[0];
    RunOptions o = { .seed = -1, .progress = RT_PROGRESS_QUIET, .ckpt = ck };
    float nan4[4] = { NAN, NAN, NAN, NAN }, fq[4 * 24];
    for (int i = 0; i < 4 * 24; i++)
        fq[i] = i == 5 ? NAN : 0.5f;
    long long empty[2] = { 4, 0 }, d1[1] = { 4 }, d2[2] = { 4, 24 };
    for (int k = 0; k < 3; k++) {
        if (k == 0)
            put(ck, "mwt/count", 2, empty, NULL);
        else if (k == 1)
            put(ck, "mwt/count", 1, d1, nan4);
        else
            put(ck, "mwt/freq", 2, d2, fq);
        if (run_modularize(&t->c.arena, tr, mi, &o, -1, 0, 1, &r2, err, sizeof err) != 0)
            fail_msg("%s", err);
        assert_true(r2.krr == r.krr);   /* counted again: the same modules */
    }
    put(ck, "meta", -1, NULL, "model=m\nepoch=-3\nepochs=2\nbatch=32\nseed=4\nlimit=-1\ndata=0\n");
    assert_int_not_equal(run_modularize(&t->c.arena, tr, mi, &o, -1, 0, 1, &r2, err, sizeof err), 0);
    print_message("%s\n", err);
    assert_non_null(strstr(err, "its run description is damaged (epoch=-3)"));
    put(ck, "meta", -1, NULL, "model=m\nepoch=1\nepochs=2\nbatch=32\nseed=4\nlimit=-1\ndata=0\n");
    RtCkpt c = { 0 };
    static const unsigned char zeros[32];
    assert_int_equal(rt_ckpt_load(&c, ck, err, sizeof err), 0);
    assert_int_equal(rt_ckpt_add_bytes(&c, "rng", zeros, sizeof zeros), 0);
    assert_int_equal(rt_ckpt_save(&c, ck, err, sizeof err), 0);
    rt_ckpt_free(&c);
    RunOptions ro = { .seed = -1, .progress = RT_PROGRESS_QUIET, .ckpt = tc_tmp_path("dm2.ckpt"), .resume = ck };
    RunResult rr;
    assert_int_not_equal(run_train(&t->c.arena, tr, &ro, &rr, err, sizeof err), 0);
    print_message("%s\n", err);
    assert_non_null(strstr(err, "random generator state is damaged"));
    tc_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold_and_fallback), cmocka_unit_test(test_residual_union),
        cmocka_unit_test(test_jaccard_and_cohesion),   cmocka_unit_test(test_calibration),
        cmocka_unit_test(test_calibration_many_classes), cmocka_unit_test(test_report_composed_above_model),
        cmocka_unit_test(test_modularize_end_to_end), cmocka_unit_test(test_measured_stored),
        cmocka_unit_test(test_damaged_entries), cmocka_unit_test(test_report_svg_any_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
