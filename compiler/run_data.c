/* A dataset statement made real: the loader its source names, the
 * normalization and augmentation it declares. */
#include <stdio.h>
#include <string.h>

#include "run_train.h"

int run_data_load(const DatasetInfo *d, RtDataset *out, RtNormalize *norm, RtAugment *aug, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int c = (int)d->shape.d[0], h = (int)d->shape.d[1], w = (int)d->shape.d[2];
    int rc;
    switch (d->source) {
    case DS_IDX: rc = rt_data_load_idx(d->path, d->classes, c, h, w, out, err, errlen); break;
    case DS_CIFAR10: rc = rt_data_load_cifar10(d->path, d->classes, c, h, w, out, err, errlen); break;
    default:
        rc = rt_data_synthetic(d->classes, c, h, w, (size_t)d->syn_n, (size_t)d->syn_test, (uint64_t)d->syn_seed, out,
                               err, errlen);
        break;
    }
    if (rc != 0)
        return -1;
    memset(norm, 0, sizeof *norm);
    norm->n = d->norm_n > 16 ? 16 : d->norm_n;
    for (int i = 0; i < norm->n; i++) {
        norm->mean[i] = (float)d->mean[i];
        norm->std[i] = (float)d->std[i];
    }
    aug->crop_pad = d->crop_pad;
    aug->hflip = d->hflip;
    return 0;
}
