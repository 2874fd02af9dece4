/* A dataset statement made real: the loader its source names, the
 * normalization and augmentation it declares. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "run_train.h"

/* The directory an idx(), cifar10(), cifar100() or svhn() source reads. A relative one is
 * looked up in the current directory first, as it always was, then next to
 * the file that declares the dataset, where that file's imports are looked
 * up too: `mwtc dir/x.mwt` finds dir/data from anywhere. NULL, with err set,
 * when it is in neither place. */
static const char *data_dir(const DatasetInfo *d, char *buf, size_t n, char *err, size_t errlen)
{
    const char *p = d->path;
    struct stat st;
    if (p[0] == '/' || !strcmp(p, "fashion-mnist") || stat(p, &st) == 0)
        return p;   /* absolute, Debian's package (its loader says if it is missing), or here */
    const char *why = errno == ENOENT ? "no such directory" : strerror(errno);
    const SrcFile *f = d->item ? d->item->loc.file : NULL;
    const char *slash = f ? strrchr(f->path, '/') : NULL;
    if (slash && (size_t)snprintf(buf, n, "%.*s/%s", (int)(slash - f->path), f->path, p) < n) {
        if (stat(buf, &st) == 0)
            return buf;
        snprintf(err, errlen, "%s: %s, here or next to %s (dataset %s at %s:%d)", p, why, f->path, d->name, f->path,
                 src_line_no(f, d->item->loc.line));
    } else if (f) {
        snprintf(err, errlen, "%s: %s (dataset %s at %s:%d)", p, why, d->name, f->path, src_line_no(f, d->item->loc.line));
    } else {
        snprintf(err, errlen, "%s: %s (dataset %s)", p, why, d->name);
    }
    return NULL;
}

int run_data_load(const DatasetInfo *d, int threads, RtDataset *out, RtNormalize *norm, RtAugment *aug, char *err,
                  size_t errlen)
{
    memset(out, 0, sizeof *out);
    int c = (int)d->shape.d[0], h = (int)d->shape.d[1], w = (int)d->shape.d[2];
    int rc;
    char buf[4096];
    const char *dir = d->source == DS_SYNTHETIC ? NULL : data_dir(d, buf, sizeof buf, err, errlen);
    if (d->source != DS_SYNTHETIC && !dir)
        return -1;
    switch (d->source) {
    case DS_IDX: rc = rt_data_load_idx(dir, d->classes, c, h, w, out, err, errlen); break;
    case DS_CIFAR10: rc = rt_data_load_cifar10(dir, d->classes, c, h, w, out, err, errlen); break;
    case DS_CIFAR100: rc = rt_data_load_cifar100(dir, d->classes, c, h, w, out, err, errlen); break;
    case DS_SVHN: rc = rt_data_load_svhn(dir, d->classes, d->svhn_extra, c, h, w, out, err, errlen); break;
    default:
        rc = rt_data_synthetic(d->classes, c, h, w, (size_t)d->syn_n, (size_t)d->syn_test, (uint64_t)d->syn_seed,
                               threads, out, err, errlen);
        break;
    }
    if (rc != 0) {   /* say which statement read the files */
        const SrcFile *f = d->item ? d->item->loc.file : NULL;
        size_t k = strlen(err);
        if (f && dir && k + 1 < errlen && !strstr(err, "(dataset "))
            snprintf(err + k, errlen - k, " (dataset %s at %s:%d)", d->name, f->path, src_line_no(f, d->item->loc.line));
        return -1;
    }
    memset(norm, 0, sizeof *norm);
    if (d->norm_n > RT_NORM_MAX) {   /* sema refuses it; a pair cut off would read past the arrays */
        snprintf(err, errlen, "normalize: %d pairs, at most %d", d->norm_n, RT_NORM_MAX);
        return -1;
    }
    norm->n = d->norm_n;
    for (int i = 0; i < norm->n; i++) {
        norm->mean[i] = (float)d->mean[i];
        norm->std[i] = (float)d->std[i];
    }
    aug->crop_pad = d->crop_pad;
    aug->hflip = d->hflip;
    return 0;
}

static int subset_split(const uint8_t *x, const uint8_t *y, size_t n, size_t img, const int *classes, int k,
                        uint8_t **xo, uint8_t **yo, size_t *no)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < k; c++)
            m += y[i] == classes[c];
    *xo = malloc(img * (m ? m : 1));
    *yo = malloc(m ? m : 1);
    if (!*xo || !*yo)
        return -1;
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < k; c++)
            if (y[i] == classes[c]) {
                memcpy(*xo + at * img, x + i * img, img);
                (*yo)[at++] = (uint8_t)c;
            }
    *no = m;
    return 0;
}

int run_data_subset(RtDataset *ds, const int *classes, int n, char *err, size_t errlen)
{
    size_t img = rt_data_image_size(ds);
    RtDataset out = *ds;
    out.classes = n;
    out.train_x = out.train_y = out.test_x = out.test_y = NULL;
    if (subset_split(ds->train_x, ds->train_y, ds->n_train, img, classes, n, &out.train_x, &out.train_y,
                     &out.n_train) != 0 ||
        subset_split(ds->test_x, ds->test_y, ds->n_test, img, classes, n, &out.test_x, &out.test_y, &out.n_test) != 0) {
        rt_data_free(&out);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rt_data_free(ds);
    *ds = out;
    return 0;
}

Net *run_head_net(Arena *a, const Net *net, const char *name, int classes)
{
    Net *h = arena_alloc(a, sizeof *h);
    *h = *net;
    h->name = name;
    memset(&h->seq, 0, sizeof h->seq);
    for (int i = 0; i < net->seq.n; i++)
        net_seq_push(a, &h->seq, net->seq.v[i]);
    NetLayer *last = net->seq.v[net->seq.n - 1];
    NetLayer *relu = arena_alloc(a, sizeof *relu), *lin = arena_alloc(a, sizeof *lin);
    relu->op = NET_RELU, relu->loc = last->loc, relu->in = relu->out = net->out;
    lin->op = NET_LINEAR, lin->loc = last->loc, lin->in = net->out;
    lin->out.rank = 1, lin->out.d[0] = classes, lin->out_ch = classes, lin->bias = true;
    lin->params = net->out.d[0] * classes + classes, lin->flops = 2 * net->out.d[0] * classes + classes;
    net_seq_push(a, &h->seq, relu);
    net_seq_push(a, &h->seq, lin);
    h->out = lin->out;
    h->params = net->params + lin->params;
    h->flops = net->flops + lin->flops;
    return h;
}
