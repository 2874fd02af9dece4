/* The training loop: per epoch a fresh shuffle, batches through the
 * compiled step, the learning rate of the schedule, a test evaluation, a
 * checkpoint. Every random draw (initialization, shuffle, augmentation,
 * dropout) comes from one seeded generator in a fixed order, and no kernel
 * result depends on the thread count, so a run is reproducible bit for bit
 * and a resumed run ends where the uninterrupted one would have. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_ckpt.h"
#include "rt_progress.h"
#include "run_train.h"

/* The learning rate of epoch e (from 0), stepped per epoch like PyTorch's
 * CosineAnnealingLR(T_max = epochs) and StepLR. */
static double schedule_lr(const TrainInfo *t, int e, int epochs)
{
    switch (t->schedule) {
    case SCHED_COSINE: return t->lr * 0.5 * (1.0 + cos(M_PI * e / epochs));
    case SCHED_STEP: return t->lr * pow(t->step_gamma, e / (t->step_every > 0 ? t->step_every : 1));
    default: return t->lr;
    }
}

/* What a checkpoint records of its training data (RunMeta.data): never 0. */
static unsigned long data_crc(const RtDataset *ds)
{
    unsigned long h = rt_crc32(0, ds->train_x, ds->n_train * rt_data_image_size(ds));
    h = rt_crc32(h, ds->train_y, ds->n_train);
    return h ? h : 1;
}

static int pick_threads(int opt, int stmt)
{
    if (opt > 0)
        return opt;
    if (stmt > 0)
        return stmt;
    return rt_pool_default_threads();
}

/* Whether a reuse trains its module as the smaller network it is (the
 * default) or, with MWTC_REUSE_SLICE=off, as the whole model with its other
 * kernels switched off (keep vectors): the same sums but for the zeros, to
 * compare. */
static int sliced_module(void)
{
    const char *e = getenv("MWTC_REUSE_SLICE");
    return !(e && !strcmp(e, "off"));
}

/* A module's weights and statistics back into the whole model's
 * (run_module_fill gathered them), for a checkpoint in the whole model's
 * form (its other kernels as they were, switched off by its keep vector),
 * which eval, emit and report read as before. */
static void module_out(RunModel *m, const Slice *s, RunModel *whole)
{
    for (int i = 0; i < s->g->params.n; i++)
        slice_scatter(&s->params[i], run_param(m, i), run_param(whole, s->params[i].src->index));
    for (int i = 0; i < s->g->states.n; i++)
        slice_scatter(&s->states[i], run_state(m, i), run_state(whole, s->states[i].src->index));
}

int run_train(Arena *a, const TrainInfo *t, const RunOptions *o, RunResult *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    RtDataset ds;
    RtNormalize norm;
    RtAugment aug;
    if (run_data_load(t->data, pick_threads(o->threads, t->threads), &ds, &norm, &aug, err, errlen) != 0)
        return -1;
    if (o->subset && run_data_subset(&ds, o->subset, o->nsubset, err, errlen) != 0)
        return -1;
    RunModel m, whole;
    Slice slice;
    memset(&m, 0, sizeof m);
    uint32_t *idx = NULL;
    int rc = -1, module = 0;
    int threads = pick_threads(o->threads, t->threads);
    long long n = (long long)ds.n_train;
    if (o->limit > 0 && o->limit < n)
        n = o->limit;
    int B = t->batch;
    if (n < B) {   /* before compiling anything */
        int limited = o->limit > 0 && o->limit < (long long)ds.n_train;
        if (o->nsubset)   /* a reuse: its classes' images only */
            snprintf(err, errlen, "reuse %s fine-tunes on batches of %d images, and %s %lld training images of its "
                     "classes", t->model->name, B, limited ? "--limit leaves" : "there are", n);
        else
            snprintf(err, errlen, "training %s needs at least one batch of %d images%s, and %s %lld", t->model->name,
                     B, t->batch_default ? " (the default batch; set batch = N)" : "",
                     limited ? "--limit leaves" : "the training set has", n);
        goto done;
    }
    int steps = (int)(n / B);   /* the last partial batch is dropped (drop_last) */
    RtRng rng;
    long long seed = o->seed >= 0 ? o->seed : t->seed;
    rt_rng_seed(&rng, (uint64_t)seed);
    if (o->keep && sliced_module()) {
        /* A module: the whole model (at batch 1, never run) holds the
         * weights as the whole model's run would (drawn in its order, then
         * loaded) and takes the module's back for each checkpoint; the
         * smaller network trains. */
        module = 1;   /* from here on whole is freed, whether or not it builds */
        if (run_model_build(&whole, a, t->model, NULL, 1, 1, &(const RunEmitted){ 0 }, err, errlen) != 0)   /* one thread */
            goto done;
        whole.profile = 0;   /* it never runs: no table of it under MWTC_PROFILE */
        run_model_init(&whole, &rng, t->mask_init);
        if (o->init_from && run_ckpt_load_matching(&whole, o->init_from, err, errlen) < 0)
            goto done;
        run_model_set_module(&whole, o->keep, o->generators);
        if (run_model_build_module_train(&m, &slice, a, t->model, t, o->keep, o->generators, t->batch, threads, err,
                                         errlen) != 0)
            goto done;
        run_module_fill(&m, &slice, &whole, o->generators);   /* its moments start at 0, as its arena does */
    } else {
        if (run_model_build(&m, a, t->model, t, t->batch, threads, 0, err, errlen) != 0)
            goto done;
        run_model_init(&m, &rng, t->mask_init);
        if (o->init_from && run_ckpt_load_matching(&m, o->init_from, err, errlen) < 0)
            goto done;
        if (o->keep)
            run_model_set_module(&m, o->keep, o->generators);
    }
    RunMeta meta = { .epochs = o->epochs > 0 ? o->epochs : t->epochs, .batch = B, .seed = seed, .limit = o->limit,
                     .data = data_crc(&ds) };
    snprintf(meta.model, sizeof meta.model, "%s", t->model->name);
    int first = 0;
    if (o->resume) {
        RunMeta old;
        if (run_ckpt_load(&m, o->resume, &old, &rng, 1, err, errlen) != 0)
            goto done;
        if (old.batch != B) {
            snprintf(err, errlen, "%s: was trained with batch %d, the train statement says %d", o->resume, old.batch, B);
            goto done;
        }
        /* a resumed run ends where the uninterrupted one would have: on the same images */
        if (old.data && old.data != meta.data) {
            /* an older mwtc drew a synthetic set's samples from one stream: the same seed, other bytes */
            snprintf(err, errlen, "%s: was trained on other images or labels than dataset %s's%s; resume it on the "
                     "data it was trained on, or train from the start", o->resume, t->data->name,
                     t->data->source == DS_SYNTHETIC ? " (or by an older mwtc, whose synthetic samples differ)" : "");
            goto done;
        }
        long long was = old.limit > 0 && old.limit < (long long)ds.n_train ? old.limit : (long long)ds.n_train;
        if (was != n) {
            int all = was == (long long)ds.n_train;
            snprintf(err, errlen, "%s: was trained on %s %lld training images, this run would use %lld; resume %s",
                     o->resume, all ? "all" : "the first", was, n,
                     all ? "without --limit" : arena_printf(a, "with --limit %lld", was));
            goto done;
        }
        first = old.epoch;
        if (o->epochs <= 0)
            meta.epochs = old.epochs;
        if (first >= meta.epochs) {
            snprintf(err, errlen, "%s: already trained %d of %d epochs; ask for more with --epochs", o->resume, first,
                     meta.epochs);
            goto done;
        }
    }
    idx = malloc(sizeof(uint32_t) * (size_t)n);
    if (!idx) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    r->threads = rt_pool_threads(m.pool);
    r->compile_seconds = m.compile_seconds;
    char what[160];
    snprintf(what, sizeof what, "train %s", t->model->name);
    RtProgress *p = rt_progress_begin(stderr, o->progress, what, meta.epochs, steps, first, B);
    rt_interrupt_arm(1);   /* the command line's Ctrl-C stops between steps from here */
    float *xs = run_images(&m, &m.train);
    int32_t *ys = run_labels(&m, &m.train);
    double train_time = 0;
    long long trained = 0;
    for (int e = first; e < meta.epochs; e++) {
        double t0 = rt_clock(), lr = schedule_lr(t, e, meta.epochs), loss_sum = 0;
        long long right = 0;
        for (long long i = 0; i < n; i++)   /* each epoch shuffles the same identity, so a resume needs no index state */
            idx[i] = (uint32_t)i;
        rt_data_shuffle(idx, (size_t)n, &rng);
        for (int s = 0; s < steps; s++) {
            if (rt_interrupted()) {   /* Ctrl-C: the checkpoint keeps the last whole epoch */
                rt_progress_end(p);
                int kept = o->ckpt && (e > first || (o->resume && !strcmp(o->resume, o->ckpt) && e > 0));
                snprintf(err, errlen, "interrupted at epoch %d, step %d; %s", e + 1, s + 1,
                         kept      ? "the checkpoint holds the epochs before it"
                         : o->ckpt ? "no epoch finished, so no checkpoint was written"
                                   : "nothing was saved");
                goto done;
            }
            run_make_batch(&m, &m.train, &ds, 0, idx + (size_t)s * B, B, &norm, &aug, &rng, ys);
            int ok;
            double loss = run_train_step(&m, xs, ys, lr, rt_rng_next_u64(&rng), &ok);
            if (!isfinite(loss)) {
                rt_progress_end(p);
                snprintf(err, errlen, "training diverged: the loss is %g at epoch %d, step %d (try a lower lr)", loss,
                         e + 1, s + 1);
                goto done;
            }
            loss_sum += loss;
            right += ok;
            rt_progress_step(p, e, s, loss_sum / (s + 1), (double)right / ((double)(s + 1) * B));
        }
        double dt = rt_clock() - t0;
        train_time += dt;
        trained += (long long)steps * B;
        r->loss = loss_sum / steps;
        r->train_accuracy = (double)right / ((double)steps * B);
        r->accuracy = run_evaluate(&m, &ds, 1, 0, &norm, NULL, NULL, NULL);
        rt_progress_epoch(p, e, r->loss, r->train_accuracy, r->accuracy, (double)steps * B / dt, dt);
        meta.epoch = e + 1;
        if (module)
            module_out(&m, &slice, &whole);
        if (o->ckpt && run_ckpt_save(module ? &whole : &m, o->ckpt, &meta, &rng, o->source_path, err, errlen) != 0) {
            rt_progress_end(p);
            goto done;
        }
        if (o->stop_after > 0 && e + 1 >= o->stop_after)
            break;
    }
    rt_progress_end(p);
    r->epochs = meta.epochs;
    r->images_per_s = train_time > 0 ? (double)trained / train_time : 0;
    if (m.train.tune.runs > 0)
        r->one_thread = (double)m.train.tune.serial_runs / (double)m.train.tune.runs;
    r->seconds = train_time;
    r->images = (long long)ds.n_test;
    r->steps = (long long)meta.epoch * steps;
    for (int i = 0; i < m.eval.g->nodes.n; i++)
        r->batchnorm |= ((const IrNode *)m.eval.g->nodes.v[i])->op == IR_BATCHNORM;
    rc = 0;
done:
    rt_interrupt_arm(0);
    free(idx);
    run_model_free(&m);
    if (module)
        run_model_free(&whole);
    rt_data_free(&ds);
    return rc;
}

int run_eval(Arena *a, const Net *net, const DatasetInfo *data, const RunOptions *o, RunResult *r, char *err,
             size_t errlen)
{
    memset(r, 0, sizeof *r);
    RtDataset ds;
    RtNormalize norm;
    RtAugment aug;
    if (run_data_load(data, pick_threads(o->threads, 0), &ds, &norm, &aug, err, errlen) != 0)
        return -1;
    RunModel m;
    memset(&m, 0, sizeof m);
    int rc = -1;
    if (o->subset && run_data_subset(&ds, o->subset, o->nsubset, err, errlen) != 0)
        goto done;
    if (run_model_build(&m, a, net, NULL, 256, pick_threads(o->threads, 0), 0, err, errlen) != 0)
        goto done;
    RunMeta meta;
    if (run_ckpt_load(&m, o->ckpt, &meta, NULL, 0, err, errlen) != 0)
        goto done;
    r->classes = ds.classes;
    r->class_correct = arena_alloc(a, sizeof(long long) * (size_t)ds.classes);
    r->class_total = arena_alloc(a, sizeof(long long) * (size_t)ds.classes);
    r->accuracy = run_evaluate(&m, &ds, 1, 0, &norm, o->among, r->class_correct, r->class_total);
    r->images = 0;
    for (int k = 0; k < ds.classes; k++)
        r->images += r->class_total[k];
    r->epochs = meta.epoch;
    rc = 0;
done:
    run_model_free(&m);
    rt_data_free(&ds);
    return rc;
}
