/* The commands that run a model: train, eval, dump llvm, and the training
 * part of the main job. Each prints its result to stdout (text or --json)
 * and its progress to stderr. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "json.h"
#include "names.h"
#include "rt_ckpt.h"
#include "rt_progress.h"
#include "run_modularize.h"
#include "run_train.h"

void cmd_no_model(Compilation *c, const CliOptions *o)
{
    const char *names[256];
    int n = 0;
    for (int i = 0; i < c->checked.models.n && n < 256; i++)
        names[n++] = ((const Net *)c->checked.models.v[i])->name;
    const char *best = name_closest(o->model, names, n);
    bool dataset = false;
    for (int i = 0; i < c->checked.datasets.n; i++)
        dataset |= !strcmp(((const DatasetInfo *)c->checked.datasets.v[i])->name, o->model);
    if (dataset)
        diag_plain(&c->diag, "%s has no model named '%s' (that is a dataset)", o->file, o->model);
    else if (best)
        diag_plain(&c->diag, "%s has no model named '%s'; did you mean '%s'?", o->file, o->model, best);
    else
        diag_plain(&c->diag, "%s has no model named '%s'", o->file, o->model);
}

/* Without --model, the train statement of the model the checkpoint given
 * (--ckpt, else --resume) was trained for, if the file has one. */
static const TrainInfo *ckpt_train(Compilation *c, const CliOptions *o)
{
    const char *path = o->ckpt ? o->ckpt : o->resume;
    char owner[128], err[256];
    int module;
    if (o->model || !path || run_ckpt_model(path, owner, sizeof owner, &module, err, sizeof err) != 0)
        return NULL;
    for (int i = 0; i < c->checked.trains.n; i++) {
        const TrainInfo *t = c->checked.trains.v[i];
        if (!strcmp(t->model->name, owner))
            return t;
    }
    return NULL;
}

const char *cmd_ckpt_hint(Compilation *c, const CliOptions *o)
{
    for (int i = 0; i < c->checked.trains.n; i++) {
        const char *m = ((const TrainInfo *)c->checked.trains.v[i])->model->name;
        const char *path = arena_printf(&c->arena, "%s.ckpt", m);
        if ((!o->model || !strcmp(o->model, m)) && access(path, F_OK) == 0)
            return arena_printf(&c->arena, " (%s is here, where train writes model %s's: --ckpt %s)", path, m, path);
    }
    return "";
}

/* The train statement --model names, else the checkpoint's model's, else the first. */
const TrainInfo *cmd_pick_train(Compilation *c, const CliOptions *o)
{
    const TrainInfo *from_ckpt = ckpt_train(c, o);
    if (from_ckpt)
        return from_ckpt;
    for (int i = 0; i < c->checked.trains.n; i++) {
        const TrainInfo *t = c->checked.trains.v[i];
        if (!o->model || strcmp(t->model->name, o->model) == 0)
            return t;
    }
    int known = 0;
    for (int i = 0; o->model && i < c->checked.models.n; i++)
        known |= !strcmp(((const Net *)c->checked.models.v[i])->name, o->model);
    if (o->model && !known)
        cmd_no_model(c, o);
    else if (o->model)
        diag_plain(&c->diag, "%s has no train statement for model '%s'", o->file, o->model);
    else
        diag_plain(&c->diag, "%s has no train statement", o->file);
    return NULL;
}

void cmd_options(const CliOptions *o, RunOptions *r)
{
    memset(r, 0, sizeof *r);
    r->epochs = (int)o->epochs;
    r->limit = o->limit;
    r->threads = (int)o->threads;
    r->seed = o->seed;
    r->progress = o->quiet ? RT_PROGRESS_QUIET : RT_PROGRESS_AUTO;
    r->resume = o->resume;
    r->source_path = o->file;
}

static void print_train(FILE *f, const TrainInfo *t, const RunResult *r, const char *ckpt, int json)
{
    if (json) {
        fprintf(f, "{ \"model\": \"%s\", \"dataset\": \"%s\", \"epochs\": %d, \"batch\": %d, \"threads\": %d,\n"
               "  \"images_per_s\": %.1f, \"accuracy\": %.4f, \"train_accuracy\": %.4f, \"loss\": %.4f,\n"
               "  \"seconds\": %.2f, \"compile_seconds\": %.3f, \"one_thread_share\": %.3f, \"checkpoint\": ",
               t->model->name, t->data->name, r->epochs, t->batch, r->threads, r->images_per_s, r->accuracy,
               r->train_accuracy, r->loss, r->seconds, r->compile_seconds, r->one_thread);
        json_str(f, ckpt);
        fprintf(f, " }\n");
        return;
    }
    fprintf(f, "%s: trained %d epoch%s on %s: test accuracy %.2f%% (train %.2f%%, loss %.4f)\n", t->model->name,
           r->epochs, r->epochs == 1 ? "" : "s", t->data->name, 100 * r->accuracy, 100 * r->train_accuracy, r->loss);
    /* The steps move to one thread while it is faster: when other programs keep the cores busy,
     * a thread waiting for a descheduled partner at every barrier loses more than it gains. */
    char one[96] = "";
    if (r->threads > 1 && r->one_thread >= 0.1)
        snprintf(one, sizeof one, " (one for %.0f%% of the steps: faster while the machine was busy)",
                 100 * r->one_thread);
    fprintf(f, "%.0f images/s on %d thread%s%s, %.1f s training, %.2f s compiling; checkpoint %s\n", r->images_per_s,
           r->threads, r->threads == 1 ? "" : "s", one, r->seconds, r->compile_seconds, ckpt);
    /* After a few steps the running statistics still lean to their start (mean 0, variance 1):
     * test images are normalized by them, training batches by their own, and the two
     * accuracies part for that alone. */
    if (r->batchnorm && r->steps < 50 && r->accuracy < r->train_accuracy - 0.2)
        fprintf(f, "note: batchnorm's running statistics have followed only %lld training step%s (each moves them "
                "10%% of the way), and test accuracy uses them: it trails until they settle over more steps\n",
                r->steps, r->steps == 1 ? "" : "s");
}

int cmd_train_one(Compilation *c, const CliOptions *o, const TrainInfo *t, FILE *out)
{
    RunOptions ro;
    cmd_options(o, &ro);
    ro.ckpt = o->output ? o->output : arena_printf(&c->arena, "%s.ckpt", t->model->name);
    RunResult r;
    char err[1024];
    if (rt_ckpt_writable(ro.ckpt, err, sizeof err) != 0 || run_train(&c->arena, t, &ro, &r, err, sizeof err) != 0) {
        diag_plain(&c->diag, "%s", err);
        /* Ctrl-C after an epoch: say how to go on from it */
        if (rt_interrupted() && strstr(err, "the checkpoint holds")) {
            char lim[48] = "";   /* a resume must see the images this run saw */
            if (o->limit > 0)
                snprintf(lim, sizeof lim, " --limit %lld", (long long)o->limit);
            fprintf(stderr, "mwtc: note: mwtc%s %s --resume %s%s goes on from there\n",
                    strcmp(o->command, "run") ? " train" : "", o->file, ro.ckpt, lim);
        }
        return EXIT_ERROR;
    }
    c->ckpt_written = ro.ckpt;
    c->ckpt_model = t->model->name;
    if (out)
        print_train(out, t, &r, ro.ckpt, o->json);
    return EXIT_OK;
}

int cmd_train(Compilation *c, const CliOptions *o)
{
    const TrainInfo *t = cmd_pick_train(c, o);
    if (!t)
        return EXIT_ERROR;
    CliOptions to = *o;
    if (!to.output && to.resume)   /* a resumed run goes on in its own checkpoint, not in MODEL.ckpt */
        to.output = to.resume;
    return cmd_train_one(c, &to, t, stdout);
}

/* eval's output: per class its accuracy; map[k] is the data set's class of
 * the model's class k (NULL: k itself), list the --module classes (or NULL). */
static void print_eval(const CliOptions *o, const char *model, const DatasetInfo *d, const RunResult *r,
                       const int *map, const char *list, double krr)
{
    if (o->json) {
        printf("{ \"model\": \"%s\", \"dataset\": \"%s\", \"accuracy\": %.4f, \"images\": %lld,", model, d->name,
               r->accuracy, r->images);
        if (list && krr >= 0)
            printf(" \"module\": \"%s\", \"krr\": %.4f,", list, krr);
        else if (list)   /* a reuse's classes: its module is the checkpoint's */
            printf(" \"module\": \"%s\",", list);
        if (list && r->has_recall)
            printf(" \"recall\": %.4f,", r->recall);
        if (list && r->has_yes_no)
            printf(" \"yes_no\": { \"accuracy\": %.4f, \"recall\": %.4f, \"precision\": %.4f },", r->yes_no_accuracy,
                   r->yes_no_recall, r->yes_no_precision);
        printf(" \"classes\": [");
        for (int k = 0, first = 1; k < r->classes; k++) {
            int cls = map ? map[k] : k;
            if (list && r->class_total[k] == 0)
                continue;
            printf("%s\n  { \"class\": %d, ", first ? "" : ",", cls);
            first = 0;
            if (d->names) {
                printf("\"name\": ");
                json_str(stdout, d->names[cls]);
                printf(", ");
            }
            if (r->class_total[k])   /* a class without test images has no accuracy: null */
                printf("\"images\": %lld, \"accuracy\": %.4f }", r->class_total[k],
                       (double)r->class_correct[k] / (double)r->class_total[k]);
            else
                printf("\"images\": 0, \"accuracy\": null }");
        }
        printf(" ] }\n");
        return;
    }
    if (list && r->no_masks)
        printf("module %s of %s (no masks: the whole model, choosing among these classes) on their test images: ",
               list, model);
    else if (list && krr >= 0)
        printf("module %s of %s (KRR %.4f) on its classes' test images: ", list, model, krr);
    else if (list)   /* a reuse: a module already, its head choosing among these classes */
        printf("classes %s of %s on their test images: ", list, model);
    printf("%s on %s (%s, %d epoch%s): test accuracy %.2f%% over %lld images\n", model, d->name, o->ckpt, r->epochs,
           r->epochs == 1 ? "" : "s", 100 * r->accuracy, r->images);
    if (list && r->has_recall)
        printf("  (one class is always right among its classes; choosing among all %d outputs, the module says %s "
               "for %.2f%% of them: its own-class recall)\n", d->classes, list, 100 * r->recall);
    if (list && r->has_yes_no && !strchr(list, ','))
        printf("  by its calibrated probability (emit's NAME_probability), \"is it class %s?\" is answered right for "
               "%.2f%% of all %lld test images (recall %.2f%%, precision %.2f%%)\n", list, 100 * r->yes_no_accuracy,
               r->yes_no_images, 100 * r->yes_no_recall, 100 * r->yes_no_precision);
    else if (list && r->has_yes_no)
        printf("  by its calibrated probabilities (emit's NAME_probability: the class above 0.5, else none), \"is it "
               "one of classes %s, and which?\" is answered right for %.2f%% of all %lld test images (recall %.2f%%, "
               "precision %.2f%%)\n", list, 100 * r->yes_no_accuracy, r->yes_no_images, 100 * r->yes_no_recall,
               100 * r->yes_no_precision);
    int w = 14;   /* the name column, as wide as the widest name */
    for (int k = 0; d->names && k < r->classes; k++) {
        int nw = name_width(d->names[map ? map[k] : k]);
        w = nw > w ? nw : w;
    }
    for (int k = 0; k < r->classes; k++) {
        int cls = map ? map[k] : k;
        if (!r->class_total[k] && list)
            continue;
        printf("  class %-3d ", cls);
        name_pad(stdout, d->names ? d->names[cls] : "", w);
        if (r->class_total[k])
            printf(" %6.2f%%  (%lld images)\n", 100.0 * (double)r->class_correct[k] / (double)r->class_total[k],
                   r->class_total[k]);
        else
            printf("    n/a   (no test images)\n");
    }
}

/* The train statement of a reuse's model (its data and recipe), or NULL diagnosed. */
static const TrainInfo *reuse_train(Compilation *c, const CliOptions *o, const ReuseInfo *ru)
{
    const TrainInfo *t = cmd_train_of(c, ru->model);
    if (!t)
        diag_plain(&c->diag, "%s: reuse %s needs a train statement for %s", o->file, ru->name, ru->model->name);
    return t;
}

/* eval of a reuse's checkpoint: the module with its fine-tuned head (the
 * module as the checkpoint keeps it), on its classes' test images. */
static int eval_reuse(Compilation *c, const CliOptions *o, const ReuseInfo *ru, int has_module)
{
    const TrainInfo *t = reuse_train(c, o, ru);
    if (!t)
        return EXIT_ERROR;
    RunOptions ro;
    cmd_options(o, &ro);
    ro.ckpt = o->ckpt;
    ro.subset = ru->classes, ro.nsubset = ru->nclasses;
    /* --module: some of the reuse's classes, its head choosing among them alone (as emit builds them) */
    int classes[256], n = 0;
    char list[256 * 12] = "";
    unsigned char among[256] = { 0 };
    if (o->module) {
        int st = cmd_parse_classes(o->module, classes, &n, list, sizeof list);
        if (st != EXIT_OK)
            return st;
        for (int i = 0; i < n; i++) {
            int k = 0;
            while (k < ru->nclasses && ru->classes[k] != classes[i])
                k++;
            if (k == ru->nclasses) {
                diag_plain(&c->diag, "--module: class %d is not a class of reuse '%s'", classes[i], ru->name);
                return EXIT_ERROR;
            }
            among[k] = 1;
        }
        ro.among = among;
    }
    RunResult r;
    char err[1024];
    if (!has_module) {   /* written before checkpoints kept their module: its kernels are not known */
        diag_plain(&c->diag, "%s: does not say which kernels reuse '%s' kept (an older mwtc wrote it); run 'mwtc reuse' again",
                   o->ckpt, ru->name);
        return EXIT_ERROR;
    }
    if (run_eval(&c->arena, run_head_net(&c->arena, t->model, ru->name, ru->nclasses), t->data, &ro, &r, err,
                 sizeof err) != 0) {
        diag_plain(&c->diag, "%s", err);
        return EXIT_ERROR;
    }
    print_eval(o, ru->name, t->data, &r, ru->classes, o->module ? list : NULL, -1);
    return EXIT_OK;
}

int cmd_eval(Compilation *c, const CliOptions *o)
{
    if (!o->ckpt) {
        fprintf(stderr, "mwtc: error: eval needs --ckpt CKPT%s\n%s\n", cmd_ckpt_hint(c, o), cli_try_cmd("eval"));
        return EXIT_USAGE;
    }
    char owner[128], err[1024];
    int has_module = 0;
    if (run_ckpt_model(o->ckpt, owner, sizeof owner, &has_module, err, sizeof err) == 0)
        for (int i = 0; i < c->checked.reuses.n; i++) {
            const ReuseInfo *ru = c->checked.reuses.v[i];
            if (strcmp(ru->name, owner) == 0)
                return eval_reuse(c, o, ru, has_module);
        }
    const TrainInfo *t = cmd_pick_train(c, o);
    if (!t)
        return EXIT_ERROR;
    RunOptions ro;
    cmd_options(o, &ro);
    ro.ckpt = o->ckpt;
    RunResult r;
    int classes[256], n = 0;
    char list[256 * 12] = "";   /* the classes as given, written back plainly */
    double krr = 1;
    if (o->module) {
        int st = cmd_parse_classes(o->module, classes, &n, list, sizeof list);
        if (st != EXIT_OK)
            return st;
        if (run_eval_module(&c->arena, t, cmd_modularize_of(c, t->model), &ro, o->threshold, classes, n, &r, &krr, err,
                            sizeof err) != 0) {
            diag_plain(&c->diag, "%s", err);
            return EXIT_ERROR;
        }
    } else if (run_eval(&c->arena, t->model, t->data, &ro, &r, err, sizeof err) != 0) {
        diag_plain(&c->diag, "%s", err);
        return EXIT_ERROR;
    }
    print_eval(o, t->model->name, t->data, &r, NULL, o->module ? list : NULL, krr);
    return EXIT_OK;
}

int cmd_dump_llvm(Compilation *c, const CliOptions *o)
{
    const TrainInfo *t = NULL;
    const Net *net = NULL;
    for (int i = 0; i < c->checked.trains.n && !t; i++) {
        const TrainInfo *ti = c->checked.trains.v[i];
        if (!o->model || strcmp(ti->model->name, o->model) == 0)
            t = ti;
    }
    net = t ? t->model : NULL;
    for (int i = 0; i < c->checked.models.n && !net; i++) {
        const Net *n = c->checked.models.v[i];
        if (!o->model || strcmp(n->name, o->model) == 0)
            net = n;
    }
    if (!net) {
        o->model ? cmd_no_model(c, o) : diag_plain(&c->diag, "%s has no model", o->file);
        return EXIT_ERROR;
    }
    RunModel m;
    char err[1024];
    if (run_model_build(&m, &c->arena, net, t, t ? t->batch : 1, 1, 0, err, sizeof err) != 0) {
        diag_plain(&c->diag, "%s", err);
        run_model_free(&m);
        return EXIT_ERROR;
    }
    char *ir = jit_calls_ir(m.jit, m.calls.v, m.calls.n, 1, err, sizeof err);
    run_model_free(&m);
    if (!ir) {
        diag_plain(&c->diag, "%s", err);
        return EXIT_ERROR;
    }
    fputs(ir, stdout);
    free(ir);
    return EXIT_OK;
}

/* The train statement of a model (for its data set). */
const TrainInfo *cmd_train_of(Compilation *c, const Net *net)
{
    for (int i = 0; i < c->checked.trains.n; i++) {
        const TrainInfo *t = c->checked.trains.v[i];
        if (t->model == net)
            return t;
    }
    return NULL;
}

/* The last modularize statement of the model: the main job runs them in
 * order, so its modules are the ones the checkpoint keeps, and report, eval,
 * emit and reuse then find their figures stored. */
const ModularizeInfo *cmd_modularize_of(Compilation *c, const Net *net)
{
    for (int i = c->checked.modularizes.n - 1; i >= 0; i--) {
        const ModularizeInfo *m = c->checked.modularizes.v[i];
        if (m->model == net)
            return m;
    }
    return NULL;
}

int cmd_modularize_one(Compilation *c, const CliOptions *o, const TrainInfo *t, const ModularizeInfo *mi,
                       const char *ckpt, int readonly, FILE *out)
{
    RunOptions ro;
    cmd_options(o, &ro);
    ro.ckpt = ckpt;
    ModReport r;
    char err[1024];
    if (!readonly && rt_ckpt_writable(ckpt, err, sizeof err) != 0) {
        diag_plain(&c->diag, "%s (modularize stores the modules in the checkpoint; 'mwtc report' only reads it)", err);
        return EXIT_ERROR;
    }
    if ((o->svg && rt_ckpt_writable(o->svg, err, sizeof err) != 0) ||
        run_modularize(&c->arena, t, mi, &ro, o->threshold, o->sweep || o->svg, readonly, &r,
                       err, sizeof err) != 0) {
        diag_plain(&c->diag, "%s", err);
        return EXIT_ERROR;
    }
    if (o->json)
        mod_report_json(out, &r);
    else
        mod_report_text(out, &r);
    if (o->svg && mod_report_svg(o->svg, &r, err, sizeof err) != 0) {
        diag_plain(&c->diag, "%s", err);
        return EXIT_ERROR;
    }
    return EXIT_OK;
}

/* modularize and report: the --model's train statement, else the checkpoint's
 * model's, else the first modularize statement's model, else the first train
 * statement. */
int cmd_modularize(Compilation *c, const CliOptions *o, int readonly)
{
    if (!o->ckpt) {
        fprintf(stderr, "mwtc: error: %s needs --ckpt CKPT%s\n%s\n", o->command, cmd_ckpt_hint(c, o),
                cli_try_cmd(o->command));
        return EXIT_USAGE;
    }
    const TrainInfo *t = ckpt_train(c, o);
    if (!t && !o->model && c->checked.modularizes.n) {
        const ModularizeInfo *m = c->checked.modularizes.v[0];
        t = cmd_train_of(c, m->model);
    }
    if (!t)
        t = cmd_pick_train(c, o);
    if (!t) {
        if (!o->model)
            diag_plain(&c->diag, "%s: modularizing needs the model's train statement (for its data)", o->file);
        return EXIT_ERROR;
    }
    return cmd_modularize_one(c, o, t, cmd_modularize_of(c, t->model), o->ckpt, readonly, stdout);
}

int cmd_reuse_one(Compilation *c, const CliOptions *o, const ReuseInfo *ru, const char *ckpt_in, FILE *f)
{
    const TrainInfo *t = reuse_train(c, o, ru);
    if (!t)
        return EXIT_ERROR;
    RunOptions ro;
    cmd_options(o, &ro);
    RunResult r;
    double krr = 1;
    char err[1024];
    const char *out = arena_printf(&c->arena, "%s.ckpt", ru->name);
    if (rt_ckpt_writable(out, err, sizeof err) != 0 ||
        run_reuse(&c->arena, t, cmd_modularize_of(c, ru->model), ru, &ro, ckpt_in, out, &r, &krr, err, sizeof err) != 0) {
        diag_plain(&c->diag, "%s", err);
        return EXIT_ERROR;
    }
    if (o->json) {
        fprintf(f, "{ \"reuse\": \"%s\", \"model\": \"%s\", \"classes\": [", ru->name, ru->model->name);
        for (int i = 0; i < ru->nclasses; i++)
            fprintf(f, "%s%d", i ? ", " : "", ru->classes[i]);
        fprintf(f, "], \"generators\": \"%s\", \"krr\": %.4f, \"epochs\": %d, \"accuracy\": %.4f, \"images\": %lld, "
               "\"checkpoint\": ", ru->keep_generators ? "keep" : "drop", krr, r.epochs, r.accuracy, r.images);
        json_str(f, out);
        fprintf(f, " }\n");
        return EXIT_OK;
    }
    fprintf(f, "reuse %s: classes", ru->name);
    for (int i = 0; i < ru->nclasses; i++)
        fprintf(f, " %d", ru->classes[i]);
    fprintf(f, " of %s, KRR %.4f, generators %s, new head fine-tuned %d epoch%s: test accuracy %.2f%% on their %lld "
           "images (last epoch); checkpoint %s\n", ru->model->name, krr, ru->keep_generators ? "kept" : "dropped",
           r.epochs, r.epochs == 1 ? "" : "s", 100 * r.accuracy, r.images, out);
    return EXIT_OK;
}
