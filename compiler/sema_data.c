/* dataset NAME = SOURCE(args) { classes shape normalize augment names } */
#include <string.h>

#include "rt_data.h"
#include "sema_int.h"

enum { MAX_CLASSES = 256 };    /* labels are bytes in every loader */

/* The directory a source reads, its first argument; svhn's named
 * `extra` after it. */
static bool source_path(SemaCtx *c, const Expr *src, DatasetInfo *ds)
{
    bool svhn = ds->source == DS_SVHN;
    const Arg *g = src->args.n == 1 || (svhn && src->args.n > 1) ? src->args.v[0] : NULL;
    if (!g || (g->name && strcmp(g->name, "path") != 0) || g->value->kind != EX_STRING) {
        if (svhn)
            sema_error(c, src->loc, "svhn takes the directory of the files as a string, then extra = true or "
                       "false: svhn(\"dir\") or svhn(\"dir\", extra = true)");
        else
            sema_error(c, src->loc, "%s takes one argument, the directory of the files as a string: %s(\"dir\")",
                       src->s, src->s);
        return false;
    }
    if (svhn && src->args.n > 1) {
        static const ParamSpec specs[] = { { "extra", P_BOOL, false } };
        Vec rest = { src->args.v + 1, src->args.n - 1, src->args.n - 1 };
        Value v;
        bool given;
        if (!sema_bind(c, "svhn", src->loc, specs, 1, &rest, NULL, &v, &given))
            return false;
        ds->svhn_extra = given && v.b;
    }
    if (!g->value->s[0]) {
        sema_error(c, g->value->loc, "the directory of %s is empty", src->s);
        return false;
    }
    ds->path = g->value->s;
    return true;
}

const char *const sema_sources[] = { "idx", "cifar10", "cifar100", "svhn", "synthetic", NULL };
_Static_assert(DS_IDX == 0 && DS_CIFAR10 == 1 && DS_CIFAR100 == 2 && DS_SVHN == 3 && DS_SYNTHETIC == 4,
               "sema_sources lists the sources in DataSource's order");

static bool source(SemaCtx *c, const Expr *src, DatasetInfo *ds)
{
    for (int k = DS_IDX; k < DS_SYNTHETIC; k++)   /* the sources that read a directory */
        if (strcmp(src->s, sema_sources[k]) == 0) {
            ds->source = (DataSource)k;
            return source_path(c, src, ds);
        }
    if (strcmp(src->s, "synthetic") == 0) {
        static const ParamSpec specs[] = { { "n", P_INT, false }, { "test", P_INT, false }, { "seed", P_INT, false } };
        Value v[3];
        bool given[3];
        ds->source = DS_SYNTHETIC;
        if (!sema_bind(c, "synthetic", src->loc, specs, 3, &src->args, NULL, v, given))
            return false;
        ds->syn_n = given[0] ? v[0].i : 2048;
        ds->syn_test = given[1] ? v[1].i : 512;
        ds->syn_seed = given[2] ? v[2].i : 1;
        bool ok = true;
        for (int i = 0; i < 2; i++)
            if (given[i] && (v[i].i < 1 || v[i].i > 10000000)) {
                sema_error(c, v[i].loc, "synthetic: %s must be between 1 and 10000000, not %lld", specs[i].name, v[i].i);
                ok = false;
            }
        if (given[2] && v[2].i < 0) {
            sema_error(c, v[2].loc, "synthetic: seed must not be negative");
            ok = false;
        }
        return ok;
    }
    /* torchvision's data set names: which source reads their files (CIFAR10 and CIFAR100 by closeness) */
    static const char *const idx_sets[] = {
        "mnist", "fashionmnist", "fashion_mnist", "FashionMNIST", "MNIST", "kmnist", "KMNIST", "emnist", "EMNIST",
    };
    for (size_t i = 0; i < sizeof idx_sets / sizeof *idx_sets; i++)
        if (!strcmp(src->s, idx_sets[i])) {
            sema_error(c, src->loc, "unknown data source '%s': its files (train-images-idx3-ubyte[.gz] and the "
                       "others) are read by idx(\"DIR\")", src->s);
            return false;
        }
    if (!strcmp(src->s, "SVHN")) {
        sema_error(c, src->loc, "unknown data source 'SVHN': its files (train_32x32.mat, test_32x32.mat) are read by "
                   "svhn(\"DIR\")");
        return false;
    }
    const char *best = name_closest(src->s, sema_sources, 5);
    if (best)
        sema_error(c, src->loc, "unknown data source '%s'; did you mean '%s'? (the sources are: idx, cifar10, "
                   "cifar100, svhn, synthetic)", src->s, best);
    else
        sema_error(c, src->loc, "unknown data source '%s' (the sources are: idx, cifar10, cifar100, svhn, synthetic)",
                   src->s);
    return false;
}

static bool shape(SemaCtx *c, const Expr *e, Shape *out)
{
    if (e->kind == EX_LIST && e->items.n != 3) {
        sema_error(c, e->loc, "shape needs 3 sizes [C, H, W], not %d%s", e->items.n,
                   e->items.n == 2 ? " (a one-channel image is [1, H, W])" : "");
        return false;
    }
    if (e->kind != EX_LIST) {
        sema_error(c, e->loc, "shape must be a list [C, H, W]");
        return false;
    }
    out->rank = 3;
    bool ok = true;
    for (int i = 0; i < 3; i++)
        ok = expr_int(c, e->items.v[i], "a shape's size", 1, 1 << 16, &out->d[i]) && ok;
    return ok;
}

static bool norm_pair(SemaCtx *c, const Expr *e, double *mean, double *std)
{
    if (e->kind != EX_TUPLE || e->items.n != 2) {
        sema_error(c, e->loc, "normalize takes (mean, std) or a list of them, one per channel");
        return false;
    }
    const Expr *a = e->items.v[0], *b = e->items.v[1];
    if (a->kind == EX_TUPLE || a->kind == EX_LIST || b->kind == EX_TUPLE || b->kind == EX_LIST) {
        /* the means and the standard deviations as two groups, as torchvision's Normalize takes them */
        sema_error(c, e->loc, "normalize takes one (mean, std) pair for all channels, or a list of pairs, one per "
                   "channel: [(mean, std), (mean, std), ...], not a group of means and a group of standard deviations");
        return false;
    }
    if (!expr_num(c, e->items.v[0], "a mean", -1e6, 1e6, false, mean) ||
        !expr_num(c, e->items.v[1], "a standard deviation", -1e6, 1e6, false, std))
        return false;
    if (*std <= 0) {
        sema_error(c, ((const Expr *)e->items.v[1])->loc, "a standard deviation must be above 0");
        return false;
    }
    if (*std < 1e-6) {   /* as a float 1e-300 is 0, and pixels divided by it are infinite */
        sema_error(c, ((const Expr *)e->items.v[1])->loc, "a standard deviation must be at least 1e-06, not %g", *std);
        return false;
    }
    return true;
}

static bool normalize(SemaCtx *c, const Expr *e, DatasetInfo *ds)
{
    int n = e->kind == EX_LIST ? e->items.n : 1;
    if (e->kind == EX_LIST && n != 1 && n != ds->shape.d[0]) {
        sema_error(c, e->loc, "normalize has %d (mean, std) pairs, but the images have %lld channel%s", n,
                   ds->shape.d[0], ds->shape.d[0] == 1 ? "" : "s");
        return false;
    }
    if (n > RT_NORM_MAX) {
        sema_error(c, e->loc, "normalize has %d (mean, std) pairs, and at most %d are supported: give one pair for "
                   "all channels", n, RT_NORM_MAX);
        return false;
    }
    ds->norm_n = n;
    ds->mean = arena_alloc(c->a, sizeof(double) * (size_t)n);
    ds->std = arena_alloc(c->a, sizeof(double) * (size_t)n);
    bool ok = true;
    for (int i = 0; i < n; i++)
        ok = norm_pair(c, e->kind == EX_LIST ? e->items.v[i] : e, &ds->mean[i], &ds->std[i]) && ok;
    return ok;
}

static bool augment(SemaCtx *c, const Expr *e, DatasetInfo *ds)
{
    if (e->kind != EX_LIST) {
        sema_error(c, e->loc, "augment must be a list, e.g. [random_crop(pad = 2), hflip]");
        return false;
    }
    bool ok = true;
    for (int i = 0; i < e->items.n; i++) {
        const Expr *a = e->items.v[i];
        const char *name = a->kind == EX_IDENT || a->kind == EX_CALL ? a->s : "";
        if (strcmp(name, "hflip") == 0 && a->args.n == 0) {
            ds->hflip = true;
        } else if (strcmp(name, "random_crop") == 0) {
            static const ParamSpec specs[] = { { "pad", P_INT, true } };
            Value v;
            bool given;
            if (!sema_bind(c, "random_crop", a->loc, specs, 1, &a->args, NULL, &v, &given)) {
                ok = false;
            } else if (v.i < 1 || v.i > ds->shape.d[1]) {
                sema_error(c, v.loc, "random_crop: pad must be between 1 and the image height %lld, not %lld",
                           ds->shape.d[1], v.i);
                ok = false;
            } else {
                ds->crop_pad = (int)v.i;
            }
        } else {
            const char *name = a->kind == EX_IDENT || a->kind == EX_CALL ? a->s : NULL;
            /* torchvision's transforms, and the plain words for them */
            static const char *const flips[] = { "RandomHorizontalFlip", "horizontal_flip", "flip" },
                              *const crops[] = { "RandomCrop", "crop" };
            const char *mean = NULL;
            for (size_t k = 0; name && k < sizeof flips / sizeof *flips; k++)
                mean = !strcmp(name, flips[k]) ? "hflip" : mean;
            for (size_t k = 0; name && k < sizeof crops / sizeof *crops; k++)
                mean = !strcmp(name, crops[k]) ? "random_crop(pad = P)" : mean;
            if (mean)
                sema_error(c, a->loc, "unknown augmentation '%s'; did you mean %s? (the augmentations are: "
                           "random_crop(pad = P), hflip)", name, mean);
            else
                sema_error(c, a->loc, "unknown augmentation '%s' (the augmentations are: random_crop(pad = P), hflip)",
                           name ? name : expr_kind_str(a));
            ok = false;
        }
    }
    return ok;
}

static bool names(SemaCtx *c, const Expr *e, DatasetInfo *ds)
{
    if (e->kind != EX_LIST) {
        sema_error(c, e->loc, "names must be a list of strings");
        return false;
    }
    if (e->items.n != ds->classes) {
        sema_error(c, e->loc, "names has %d names, but the data set has %d classes", e->items.n, ds->classes);
        return false;
    }
    ds->names = arena_alloc(c->a, sizeof(char *) * (size_t)e->items.n);
    for (int i = 0; i < e->items.n; i++) {
        const Expr *s = e->items.v[i];
        if (s->kind != EX_STRING) {
            sema_error(c, s->loc, "a class name must be a string, not %s", expr_kind_str(s));
            return false;
        }
        ds->names[i] = s->s;
    }
    return true;
}

const char *const sema_dataset_keys[] = { "classes", "shape", "normalize", "augment", "names", NULL };

DatasetInfo *sema_dataset(SemaCtx *c, const Item *it)
{
    DatasetInfo *ds = arena_alloc(c->a, sizeof *ds);
    ds->item = it;
    ds->name = it->name;
    bool ok = kv_check_keys(c, "a dataset", &it->kvs, sema_dataset_keys);
    bool src_ok = source(c, it->source, ds);   /* the source's own checks need a known source */
    ok = src_ok && ok;
    const KeyVal *cl = kv_find(&it->kvs, "classes"), *sh = kv_find(&it->kvs, "shape");
    if (!cl && !kv_misspelled(&it->kvs, "classes"))   /* a misspelling of it said so already */
        sema_error(c, it->name_loc, "dataset '%s' needs classes = N", it->name);
    if (!sh && !kv_misspelled(&it->kvs, "shape"))
        sema_error(c, it->name_loc, "dataset '%s' needs shape = [C, H, W]", it->name);
    if (!cl || !sh)
        return NULL;
    long long classes = 0;
    if (!expr_int(c, cl->value, "classes", 2, MAX_CLASSES, &classes) || !shape(c, sh->value, &ds->shape))
        return NULL;
    ds->classes = (int)classes;
    if (src_ok && ds->source == DS_IDX && ds->shape.d[0] != 1) {
        sema_error(c, sh->value->loc, "idx images have one channel: shape must be [1, H, W]");
        ok = false;
    }
    /* the sources of 32x32 colour images: that shape, and the class counts their labels give */
    static const struct {
        DataSource source;
        const char *name, *classes;
        int n1, n2;
    } rgb32[] = {
        { DS_CIFAR10, "CIFAR-10", "10 classes", 10, 10 },
        { DS_CIFAR100, "CIFAR-100", "100 classes (its fine labels) or 20 superclasses (its coarse labels)", 100, 20 },
        { DS_SVHN, "SVHN", "10 classes (the digits)", 10, 10 },
    };
    for (size_t i = 0; src_ok && i < sizeof rgb32 / sizeof *rgb32; i++) {
        if (ds->source != rgb32[i].source)
            continue;
        if (ds->shape.d[0] != 3 || ds->shape.d[1] != 32 || ds->shape.d[2] != 32) {
            sema_error(c, sh->value->loc, "%s images are [3, 32, 32]", rgb32[i].name);
            ok = false;
        }
        if (ds->classes != rgb32[i].n1 && ds->classes != rgb32[i].n2) {
            sema_error(c, cl->value->loc, "%s has %s, not %d", rgb32[i].name, rgb32[i].classes, ds->classes);
            ok = false;
        }
    }
    if (src_ok && ds->source == DS_SYNTHETIC && ds->syn_n < ds->classes) {
        sema_error(c, it->source->loc, "synthetic: n = %lld is fewer images than the %d classes", ds->syn_n, ds->classes);
        ok = false;
    }
    const KeyVal *kv;
    if ((kv = kv_find(&it->kvs, "normalize")))
        ok = normalize(c, kv->value, ds) && ok;
    if ((kv = kv_find(&it->kvs, "augment")))
        ok = augment(c, kv->value, ds) && ok;
    if ((kv = kv_find(&it->kvs, "names")))
        ok = names(c, kv->value, ds) && ok;
    return ok ? ds : NULL;
}
