/* rt_data_cifar: the CIFAR-10 and CIFAR-100 binary versions. A CIFAR-10 record is 1 label byte
 * followed by 3072 pixel bytes: the R, G and B planes of 32x32, row-major, which is already our
 * C x H x W layout. A CIFAR-100 record has 2 label bytes, the coarse label (one of 20
 * superclasses) and the fine one (one of 100 classes), then the same pixels. File sizes are
 * checked (a whole number of records) before anything is allocated. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rt_data.h"

enum { CIFAR_PIXELS = 3 * 32 * 32, CIFAR_TRAIN_FILES = 5 };

/* A record's layout: its label bytes before the pixels, and which of them is the label read. */
typedef struct CifarRecord {
  int labels, which;
} CifarRecord;

/* Checks one file and returns its record count in *records. */
static int check_file(const char *path, CifarRecord f, size_t *records, char *err, size_t errlen) {
  struct stat st;
  size_t rec = (size_t)f.labels + CIFAR_PIXELS;
  if (stat(path, &st) != 0) return rt_data_fail(err, errlen, path, "%s", strerror(errno));
  if (!S_ISREG(st.st_mode)) return rt_data_fail(err, errlen, path, "not a regular file");
  size_t size = (size_t)st.st_size;
  if (size == 0) return rt_data_fail(err, errlen, path, "empty file (no records)");
  if (size % rec != 0)
    return rt_data_fail(err, errlen, path,
                "size %zu is not a multiple of %zu (%d label byte%s + %d pixel bytes per record)",
                size, rec, f.labels, f.labels > 1 ? "s" : "", CIFAR_PIXELS);
  *records = size / rec;
  return 0;
}

/* Reads `records` records of path into x (pixels) and y (labels), checking every label. */
static int read_file(const char *path, CifarRecord f, size_t records, int classes, uint8_t *x, uint8_t *y,
                     char *err, size_t errlen) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return rt_data_fail(err, errlen, path, "cannot open: %s", strerror(errno));
  unsigned char rec[2 + CIFAR_PIXELS];
  size_t len = (size_t)f.labels + CIFAR_PIXELS;
  for (size_t i = 0; i < records; i++) {
    if (fread(rec, 1, len, fp) != len) { /* the file shrank, or I/O failed */
      fclose(fp);
      return rt_data_fail(err, errlen, path, "truncated: record %zu of %zu cannot be read", i, records);
    }
    unsigned label = rec[f.which];
    if (label >= (unsigned)classes) {
      fclose(fp);
      return rt_data_fail(err, errlen, path, "%slabel %u of record %zu is not below classes = %d",
                  f.labels == 1 ? "" : f.which == 0 ? "coarse " : "fine ", label, i, classes);
    }
    y[i] = (uint8_t)label;
    memcpy(x + i * CIFAR_PIXELS, rec + f.labels, CIFAR_PIXELS);
  }
  fclose(fp);
  return 0;
}

/* The set in files[0 .. n - 2] (train) and files[n - 1] (test), in dir or in dir/sub (how the
 * archive unpacks). */
static int load(const char *dir, const char *sub, const char *const *names, int n, CifarRecord f, int classes,
                RtDataset *out, char *err, size_t errlen) {
  char paths[CIFAR_TRAIN_FILES + 1][4096];
  size_t records[CIFAR_TRAIN_FILES + 1];
  struct stat st;
  char base[4096];
  snprintf(base, sizeof base, "%s", dir);
  char probe[4096];
  snprintf(probe, sizeof probe, "%s/%s", dir, names[0]);
  if (stat(probe, &st) != 0) {
    snprintf(probe, sizeof probe, "%s/%s/%s", dir, sub, names[0]);
    if (stat(probe, &st) == 0) snprintf(base, sizeof base, "%s/%s", dir, sub);
  }

  size_t n_train = 0;
  for (int i = 0; i < n; i++) {
    if ((size_t)snprintf(paths[i], sizeof paths[i], "%s/%s", base, names[i]) >= sizeof paths[i])
      return rt_data_fail(err, errlen, dir, "path too long");
    if (check_file(paths[i], f, &records[i], err, errlen)) return -1;
    if (i < n - 1) n_train += records[i]; /* each count < SIZE_MAX / 3074 */
  }

  RtDataset d = {.classes = classes, .channels = 3, .height = 32, .width = 32,
                 .n_train = n_train, .n_test = records[n - 1]};
  d.train_x = malloc(d.n_train * CIFAR_PIXELS);
  d.train_y = malloc(d.n_train);
  d.test_x = malloc(d.n_test * CIFAR_PIXELS);
  d.test_y = malloc(d.n_test);
  if (!d.train_x || !d.train_y || !d.test_x || !d.test_y) {
    rt_data_free(&d);
    return rt_data_fail(err, errlen, dir, "out of memory (%zu images)", n_train + records[n - 1]);
  }
  size_t at = 0;
  for (int i = 0; i < n; i++) {
    int test = i == n - 1;
    uint8_t *x = test ? d.test_x : d.train_x + at * CIFAR_PIXELS;
    uint8_t *y = test ? d.test_y : d.train_y + at;
    if (read_file(paths[i], f, records[i], classes, x, y, err, errlen)) {
      rt_data_free(&d);
      return -1;
    }
    if (!test) at += records[i];
  }
  *out = d;
  return 0;
}

int rt_data_load_cifar10(const char *dir, int classes, int c, int h, int w, RtDataset *out,
                         char *err, size_t errlen) {
  static const char *const names[CIFAR_TRAIN_FILES + 1] = {
      "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
      "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  memset(out, 0, sizeof *out);
  if (classes < 1 || classes > 256)
    return rt_data_fail(err, errlen, dir, "classes = %d is not in 1..256 (labels are bytes)", classes);
  if (c != 3 || h != 32 || w != 32)
    return rt_data_fail(err, errlen, dir, "the declared shape [%d, %d, %d] does not match CIFAR-10's "
                "[3, 32, 32]", c, h, w);
  return load(dir, "cifar-10-batches-bin", names, CIFAR_TRAIN_FILES + 1, (CifarRecord){1, 0}, classes, out, err,
              errlen);
}

int rt_data_load_cifar100(const char *dir, int classes, int c, int h, int w, RtDataset *out,
                          char *err, size_t errlen) {
  static const char *const names[2] = {"train.bin", "test.bin"};
  memset(out, 0, sizeof *out);
  if (classes != 100 && classes != 20)
    return rt_data_fail(err, errlen, dir, "classes = %d: CIFAR-100 has 100 classes (its fine labels) or 20 "
                "superclasses (its coarse labels)", classes);
  if (c != 3 || h != 32 || w != 32)
    return rt_data_fail(err, errlen, dir, "the declared shape [%d, %d, %d] does not match CIFAR-100's "
                "[3, 32, 32]", c, h, w);
  return load(dir, "cifar-100-binary", names, 2, (CifarRecord){2, classes == 100 ? 1 : 0}, classes, out, err,
              errlen);
}
