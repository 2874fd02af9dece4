/* rt_data: data sets in memory and the batches made from them.
 *
 * Pixels stay 8-bit (C x H x W bytes per image, labels one byte each): 60000 Fashion-MNIST images
 * are 47 MB this way and 188 MB as floats. rt_data_batch turns the images of one batch into
 * floats ([0, 1], then normalized), applying the augmentation on the way.
 *
 * Loaders return 0 on success. On error they return nonzero, leave *out zeroed with nothing
 * allocated, and write one line "PATH: what is wrong" into err (when err != NULL). */
#ifndef RT_DATA_H
#define RT_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "rt_pool.h"
#include "rt_rng.h"

/* Where idx("fashion-mnist") points: Debian's package dataset-fashion-mnist. */
#define RT_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

typedef struct RtDataset {
  int classes, channels, height, width;
  size_t n_train, n_test;
  uint8_t *train_x, *train_y; /* n_train * C*H*W bytes, n_train labels (each < classes) */
  uint8_t *test_x, *test_y;
} RtDataset;

/* Bytes of one image: C*H*W. */
size_t rt_data_image_size(const RtDataset *ds);

/* IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
 * t10k-labels-idx1-ubyte in dir, each plain or with ".gz" appended; the plain file wins when both
 * exist). dir "fashion-mnist" means RT_FASHION_MNIST_DIR. The declared shape must be [1, rows,
 * cols]. Bytes after the declared data (trailing garbage) are an error. */
int rt_data_load_idx(const char *dir, int classes, int c, int h, int w, RtDataset *out, char *err,
                     size_t errlen);

/* CIFAR-10 binary version: data_batch_1.bin .. data_batch_5.bin (train) and test_batch.bin, in
 * dir or in dir/cifar-10-batches-bin (how the archive unpacks). Each record is 1 label byte and
 * 3072 pixel bytes (R, G, B planes of 32x32). The declared shape must be [3, 32, 32]. */
int rt_data_load_cifar10(const char *dir, int classes, int c, int h, int w, RtDataset *out,
                         char *err, size_t errlen);

/* CIFAR-100 binary version: train.bin and test.bin, in dir or in dir/cifar-100-binary. Each record
 * is 2 label bytes (coarse, fine) and 3072 pixel bytes. classes = 100 reads the fine labels,
 * classes = 20 the coarse ones (the superclasses); the declared shape must be [3, 32, 32]. */
int rt_data_load_cifar100(const char *dir, int classes, int c, int h, int w, RtDataset *out,
                          char *err, size_t errlen);

/* SVHN's cropped digits: train_32x32.mat and test_32x32.mat in dir (what torchvision's SVHN
 * downloads), level-5 MAT-files holding X (uint8, 32 x 32 x 3 x N) and y (N labels 1..10, 10 the
 * digit 0, read as 0, as torchvision does). extra != 0: extra_32x32.mat's images (torchvision's
 * split "extra") follow train's in the training set. The declared shape must be [3, 32, 32]. */
int rt_data_load_svhn(const char *dir, int classes, int extra, int c, int h, int w, RtDataset *out,
                      char *err, size_t errlen);

/* A learnable, class-dependent data set made from seed: each class has a smooth random prototype,
 * each sample is its class's prototype shifted, rescaled and noised. Labels are balanced
 * (i % classes) and shuffled. The samples are made on up to `threads` threads (< 1: one); the same
 * arguments, whatever the thread count, give the same bytes. */
int rt_data_synthetic(int classes, int c, int h, int w, size_t n_train, size_t n_test,
                      uint64_t seed, int threads, RtDataset *out, char *err, size_t errlen);

/* Frees the arrays and zeroes *ds; safe on a zeroed or already freed data set. */
void rt_data_free(RtDataset *ds);

/* For the loaders: writes "WHAT: message" into err (if any) and returns -1. */
int rt_data_fail(char *err, size_t errlen, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* normalize: n = 0 none; n = 1 one (mean, std) for every channel; n = channels one per channel. */
/* The most (mean, std) pairs a normalize gives one per channel (sema checks it); one pair
 * serves any number of channels. */
#define RT_NORM_MAX 1024
typedef struct RtNormalize {
  int n;
  float mean[RT_NORM_MAX], std[RT_NORM_MAX];
} RtNormalize;

/* crop_pad = P > 0: torchvision RandomCrop(size, padding=P): zero-pad P on each side, take a
 * random HxW window. hflip != 0: RandomHorizontalFlip(p=0.5). Crop comes first, then flip. */
typedef struct RtAugment {
  int crop_pad;
  int hflip;
} RtAugment;

/* Writes n images ds[split][indices[i]] (split 0 train, 1 test) into x_out (n x C x H x W floats:
 * byte / 255, then (v - mean) / std) and their labels into y_out. norm and aug may be NULL (none);
 * rng may be NULL when aug does nothing random. Random draws per image, in image order:
 * crop top = below(2P+1), crop left = below(2P+1) when P > 0, then flip = uniform() < 0.5 when
 * hflip. The zero padding is a raw pixel 0, normalized like every other pixel. */
void rt_data_batch(const RtDataset *ds, int split, const uint32_t *indices, int n,
                   const RtNormalize *norm, const RtAugment *aug, RtRng *rng, float *x_out,
                   int32_t *y_out);
/* The same, its planes converted on pool's threads (the draws stay on the caller's): the same
 * bytes whatever the pool. pool NULL: the caller's thread alone, as rt_data_batch. */
void rt_data_batch_on(RtPool *pool, const RtDataset *ds, int split, const uint32_t *indices, int n,
                      const RtNormalize *norm, const RtAugment *aug, RtRng *rng, float *x_out,
                      int32_t *y_out);

/* Fisher-Yates shuffle of idx[0..n). */
void rt_data_shuffle(uint32_t *idx, size_t n, RtRng *rng);

#endif
