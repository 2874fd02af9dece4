/* rt_data_cifar: the CIFAR-10 binary version. Each record is 1 label byte followed by 3072 pixel
 * bytes: the R, G and B planes of 32x32, row-major, which is already our C x H x W layout.
 * File sizes are checked (a whole number of records) before anything is allocated. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rt_data.h"

enum { CIFAR_PIXELS = 3 * 32 * 32, CIFAR_RECORD = 1 + CIFAR_PIXELS, CIFAR_TRAIN_FILES = 5 };


/* Checks one file and returns its record count in *records. */
static int check_file(const char *path, size_t *records, char *err, size_t errlen) {
  struct stat st;
  if (stat(path, &st) != 0) return rt_data_fail(err, errlen, path, "%s", strerror(errno));
  if (!S_ISREG(st.st_mode)) return rt_data_fail(err, errlen, path, "not a regular file");
  size_t size = (size_t)st.st_size;
  if (size == 0) return rt_data_fail(err, errlen, path, "empty file (no records)");
  if (size % CIFAR_RECORD != 0)
    return rt_data_fail(err, errlen, path,
                "size %zu is not a multiple of %d (1 label byte + %d pixel bytes per record)",
                size, CIFAR_RECORD, CIFAR_PIXELS);
  *records = size / CIFAR_RECORD;
  return 0;
}

/* Reads `records` records of path into x (pixels) and y (labels), checking every label. */
static int read_file(const char *path, size_t records, int classes, uint8_t *x, uint8_t *y,
                     char *err, size_t errlen) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return rt_data_fail(err, errlen, path, "cannot open: %s", strerror(errno));
  unsigned char rec[CIFAR_RECORD];
  for (size_t i = 0; i < records; i++) {
    if (fread(rec, 1, CIFAR_RECORD, fp) != CIFAR_RECORD) { /* the file shrank, or I/O failed */
      fclose(fp);
      return rt_data_fail(err, errlen, path, "truncated: record %zu of %zu cannot be read", i, records);
    }
    if (rec[0] >= classes) {
      fclose(fp);
      return rt_data_fail(err, errlen, path, "label %u of record %zu is not below classes = %d",
                  (unsigned)rec[0], i, classes);
    }
    y[i] = rec[0];
    memcpy(x + i * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
  }
  fclose(fp);
  return 0;
}

int rt_data_load_cifar10(const char *dir, int classes, int c, int h, int w, RtDataset *out,
                         char *err, size_t errlen) {
  static const char *const names[CIFAR_TRAIN_FILES + 1] = {
      "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
      "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  char paths[CIFAR_TRAIN_FILES + 1][4096];
  size_t records[CIFAR_TRAIN_FILES + 1];
  struct stat st;

  memset(out, 0, sizeof *out);
  if (classes < 1 || classes > 256)
    return rt_data_fail(err, errlen, dir, "classes = %d is not in 1..256 (labels are bytes)", classes);
  if (c != 3 || h != 32 || w != 32)
    return rt_data_fail(err, errlen, dir, "the declared shape [%d, %d, %d] does not match CIFAR-10's "
                "[3, 32, 32]", c, h, w);

  /* The archive unpacks into cifar-10-batches-bin/: accept the directory above it too. */
  char base[4096];
  snprintf(base, sizeof base, "%s", dir);
  char probe[4096];
  snprintf(probe, sizeof probe, "%s/%s", dir, names[0]);
  if (stat(probe, &st) != 0) {
    snprintf(probe, sizeof probe, "%s/cifar-10-batches-bin/%s", dir, names[0]);
    if (stat(probe, &st) == 0) snprintf(base, sizeof base, "%s/cifar-10-batches-bin", dir);
  }

  size_t n_train = 0;
  for (int f = 0; f <= CIFAR_TRAIN_FILES; f++) {
    if ((size_t)snprintf(paths[f], sizeof paths[f], "%s/%s", base, names[f]) >= sizeof paths[f])
      return rt_data_fail(err, errlen, dir, "path too long");
    if (check_file(paths[f], &records[f], err, errlen)) return -1;
    if (f < CIFAR_TRAIN_FILES) n_train += records[f]; /* each count < SIZE_MAX / 3073 */
  }

  RtDataset d = {.classes = classes, .channels = 3, .height = 32, .width = 32,
                 .n_train = n_train, .n_test = records[CIFAR_TRAIN_FILES]};
  d.train_x = malloc(d.n_train * CIFAR_PIXELS);
  d.train_y = malloc(d.n_train);
  d.test_x = malloc(d.n_test * CIFAR_PIXELS);
  d.test_y = malloc(d.n_test);
  if (!d.train_x || !d.train_y || !d.test_x || !d.test_y) {
    rt_data_free(&d);
    return rt_data_fail(err, errlen, dir, "out of memory (%zu images)", n_train + records[5]);
  }
  size_t at = 0;
  for (int f = 0; f <= CIFAR_TRAIN_FILES; f++) {
    int test = f == CIFAR_TRAIN_FILES;
    uint8_t *x = test ? d.test_x : d.train_x + at * CIFAR_PIXELS;
    uint8_t *y = test ? d.test_y : d.train_y + at;
    if (read_file(paths[f], records[f], classes, x, y, err, errlen)) {
      rt_data_free(&d);
      return -1;
    }
    if (!test) at += records[f];
  }
  *out = d;
  return 0;
}
