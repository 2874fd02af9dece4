/* Unit tests of runtime/rt_data_svhn.c: scipy's own MAT-files (tests/data/svhn), and MAT-files
 * written here in every form the format allows (compressed or not, either byte order, labels
 * stored as doubles or as bytes, the small element form, other variables around, one image), then
 * broken every way: each must load bit for bit, or fail with a message that says what is wrong,
 * never crash (the ASan build runs this too). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "rt_data.h"
#include "rt_test.h"

static char root[4096];
static char err[512];

static int setup(void **state) {
  (void)state;
  return rt_test_mkdir(root, sizeof root, "rt_svhn");
}

static int teardown(void **state) {
  (void)state;
  rt_test_rmdir(root);
  return 0;
}

/* tests/data/svhn's pixels (its README), and this file's own. */
static uint8_t scipy_pixel(int n, int ch, int r, int c) { return (uint8_t)((7 * n + 29 * ch + 3 * r + 5 * c) % 256); }
static uint8_t our_pixel(int n, int ch, int r, int c) { return (uint8_t)(n * 31 + ch * 101 + r * 7 + c * 13 + r * c); }

/* Every pixel and label of ds[split] as expected. */
static void expect_set(const RtDataset *ds, int split, int n, uint8_t (*pixel)(int, int, int, int), const int *labels) {
  const uint8_t *x = split ? ds->test_x : ds->train_x, *y = split ? ds->test_y : ds->train_y;
  assert_int_equal(split ? ds->n_test : ds->n_train, n);
  for (int i = 0; i < n; i++) {
    assert_int_equal(y[i], labels[i]);
    for (int ch = 0; ch < 3; ch++)
      for (int r = 0; r < 32; r++)
        for (int c = 0; c < 32; c++) assert_int_equal(x[((i * 3 + ch) * 32 + r) * 32 + c], pixel(i, ch, r, c));
  }
}

static void test_scipy_files(void **state) {
  (void)state;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/tests/data/svhn", getenv("MWTC_SOURCE_DIR"));
  RtDataset ds;
  int rc = rt_data_load_svhn(dir, 10, 0, 3, 32, 32, &ds, err, sizeof err);
  if (rc) print_error("%s\n", err);
  assert_int_equal(rc, 0);
  assert_int_equal(ds.classes, 10);
  static const int train[] = {1, 0, 5, 3, 0}, test[] = {9, 2, 0};   /* 10 is the digit 0 */
  expect_set(&ds, 0, 5, scipy_pixel, train);
  expect_set(&ds, 1, 3, scipy_pixel, test);
  rt_data_free(&ds);
}

/* A MAT-file of our own, as bytes. */
typedef struct Buf {
  uint8_t *p;
  size_t n, cap;
  int big;   /* big-endian numbers */
} Buf;

static void put(Buf *b, const void *d, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = 2 * (b->n + n) + 64;
    b->p = realloc(b->p, b->cap);
    assert_non_null(b->p);
  }
  memcpy(b->p + b->n, d, n);
  b->n += n;
}

static void put_num(Buf *b, const void *v, size_t k) {
  uint8_t t[8];
  for (size_t i = 0; i < k; i++) t[i] = ((const uint8_t *)v)[b->big ? k - 1 - i : i];
  put(b, t, k);
}

static void put32(Buf *b, uint32_t v) { put_num(b, &v, 4); }

static void pad(Buf *b) {
  static const uint8_t z[8];
  put(b, z, (8 - b->n % 8) % 8);
}

/* A subelement: its tag, data, padding; the small form when asked and it fits. */
static void element(Buf *b, uint32_t type, const void *data, uint32_t bytes, int small) {
  if (small && bytes <= 4) {
    uint8_t d[4] = {0};
    memcpy(d, data, bytes);
    put32(b, bytes << 16 | type);
    put(b, d, 4);
    return;
  }
  put32(b, type);
  put32(b, bytes);
  put(b, data, bytes);
  pad(b);
}

typedef struct Form {
  int big, compress, y_bytes, y_first, extra, small_names, one_image, x_class, y_row;
} Form;

/* miMATRIX of a variable: flags, dims, name, real part (already in the file's byte order). */
static void matrix(Buf *out, const Form *f, const char *name, uint32_t cls, const int32_t *dims, int nd, uint32_t type,
                   const void *real, uint32_t bytes) {
  Buf m = {.big = f->big};
  uint32_t flags[2] = {cls, 0};
  put32(&m, 6), put32(&m, 8), put32(&m, flags[0]), put32(&m, flags[1]);
  put32(&m, 5), put32(&m, (uint32_t)(4 * nd));
  for (int i = 0; i < nd; i++) put_num(&m, &dims[i], 4);
  pad(&m);
  element(&m, 1, name, (uint32_t)strlen(name), f->small_names);
  element(&m, type, real, bytes, 1);
  Buf e = {.big = f->big};
  put32(&e, 14), put32(&e, (uint32_t)m.n);
  put(&e, m.p, m.n);
  if (f->compress) {
    uLongf zn = compressBound(e.n);
    uint8_t *z = malloc(zn);
    assert_int_equal(compress2(z, &zn, e.p, e.n, 6), Z_OK);
    put32(out, 15), put32(out, (uint32_t)zn);
    put(out, z, zn);   /* compressed elements are not padded */
    free(z);
  } else {
    put(out, e.p, e.n);
  }
  free(m.p), free(e.p);
}

/* The file's bytes: X of n images (our_pixel), y of labels (1..10). */
static Buf mat_file(const Form *f, int n, const int *labels) {
  Buf b = {.big = f->big};
  char head[128];
  memset(head, ' ', 116);
  memcpy(head, "MATLAB 5.0 MAT-file, written by test_rt_data_svhn", 49);
  memset(head + 116, 0, 8);
  head[124] = f->big ? 0x01 : 0x00, head[125] = f->big ? 0x00 : 0x01;
  head[126] = f->big ? 'M' : 'I', head[127] = f->big ? 'I' : 'M';
  put(&b, head, 128);
  uint8_t *x = malloc((size_t)n * 3072);
  for (int i = 0; i < n; i++)
    for (int ch = 0; ch < 3; ch++)
      for (int c = 0; c < 32; c++)
        for (int r = 0; r < 32; r++) x[((size_t)(i * 3 + ch) * 32 + c) * 32 + r] = our_pixel(i, ch, r, c);
  Buf y = {.big = f->big};
  for (int i = 0; i < n; i++) {
    if (f->y_bytes) {
      uint8_t v = (uint8_t)labels[i];
      put(&y, &v, 1);
    } else {
      double v = labels[i];
      put_num(&y, &v, 8);
    }
  }
  int32_t xd[4] = {32, 32, 3, n}, yd[2] = {n, 1};
  if (f->y_row) yd[0] = 1, yd[1] = n;
  for (int k = 0; k < 3; k++) {
    int which = f->y_first ? (k == 0 ? 1 : k == 1 ? 2 : 0) : k;   /* 0 X, 1 y, 2 another variable */
    if (which == 0)
      matrix(&b, f, "X", f->x_class ? (uint32_t)f->x_class : 9, xd, f->one_image ? 3 : 4, 2, x, (uint32_t)n * 3072);
    else if (which == 1)
      matrix(&b, f, "y", 6, yd, 2, f->y_bytes ? 2 : 9, y.p, (uint32_t)y.n);
    else if (f->extra) {
      double v[3] = {1, 2, 3};
      Buf d = {.big = f->big};
      for (int i = 0; i < 3; i++) put_num(&d, &v[i], 8);
      int32_t dd[2] = {1, 3};
      matrix(&b, f, "notes", 6, dd, 2, 9, d.p, 24);
      free(d.p);
    }
  }
  free(x), free(y.p);
  return b;
}

static void write_bytes(const char *dir, const char *name, const uint8_t *p, size_t n) {
  char path[8400];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(p, 1, n, fp), n);
  fclose(fp);
}

static const int train_labels[] = {10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, test_labels[] = {3, 10, 7};

/* Both files in a form; the set loads as written. */
static void round_trip(const Form *f) {
  int ntrain = f->one_image ? 1 : 11, ntest = f->one_image ? 1 : 3;
  Buf a = mat_file(f, ntrain, train_labels), b = mat_file(f, ntest, test_labels);
  write_bytes(root, "train_32x32.mat", a.p, a.n);
  write_bytes(root, "test_32x32.mat", b.p, b.n);
  free(a.p), free(b.p);
  RtDataset ds;
  int rc = rt_data_load_svhn(root, 10, 0, 3, 32, 32, &ds, err, sizeof err);
  if (rc) print_error("%s\n", err);
  assert_int_equal(rc, 0);
  int want_train[11], want_test[3];
  for (int i = 0; i < 11; i++) want_train[i] = train_labels[i] % 10;
  for (int i = 0; i < 3; i++) want_test[i] = test_labels[i] % 10;
  expect_set(&ds, 0, ntrain, our_pixel, want_train);
  expect_set(&ds, 1, ntest, our_pixel, want_test);
  rt_data_free(&ds);
}

static void test_forms(void **state) {
  (void)state;
  static const Form forms[] = {
      {0},
      {.compress = 1},
      {.big = 1},
      {.big = 1, .compress = 1, .y_bytes = 1},
      {.y_bytes = 1, .y_first = 1, .extra = 1},   /* as MATLAB stores whole doubles: in bytes */
      {.compress = 1, .extra = 1, .small_names = 1, .y_row = 1},
      {.one_image = 1, .small_names = 1},          /* 32x32x3: MATLAB drops a last dimension of 1 */
      {.one_image = 1, .compress = 1, .y_bytes = 1},
  };
  for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) round_trip(&forms[i]);
}

/* svhn(DIR, extra = true): extra_32x32.mat's images after train's, pixel for pixel, in another
 * form than train's; without extra the file is not read; a missing or broken extra file, or a
 * missing test file after it, fails naming the file, with nothing held (ASan: nothing leaked). */
static void test_extra(void **state) {
  (void)state;
  Form plain = {0}, packed = {.compress = 1, .big = 1};
  Buf a = mat_file(&plain, 11, train_labels), e = mat_file(&packed, 3, test_labels), t = mat_file(&plain, 3, test_labels);
  write_bytes(root, "train_32x32.mat", a.p, a.n);
  write_bytes(root, "test_32x32.mat", t.p, t.n);
  RtDataset ds;
  assert_int_not_equal(rt_data_load_svhn(root, 10, 1, 3, 32, 32, &ds, err, sizeof err), 0);
  assert_non_null(strstr(err, "extra_32x32.mat: No such file"));
  assert_non_null(strstr(err, "extra = true"));
  assert_null(ds.train_x);
  write_bytes(root, "extra_32x32.mat", (const uint8_t *)"hello", 5);
  assert_int_not_equal(rt_data_load_svhn(root, 10, 1, 3, 32, 32, &ds, err, sizeof err), 0);
  assert_non_null(strstr(err, "extra_32x32.mat: not a MAT-file"));
  write_bytes(root, "extra_32x32.mat", e.p, e.n);
  int rc = rt_data_load_svhn(root, 10, 1, 3, 32, 32, &ds, err, sizeof err);
  if (rc) print_error("%s\n", err);
  assert_int_equal(rc, 0);
  assert_int_equal(ds.n_train, 14);
  for (int i = 0; i < 14; i++) {
    int j = i < 11 ? i : i - 11;
    assert_int_equal(ds.train_y[i], (i < 11 ? train_labels[j] : test_labels[j]) % 10);
    for (int ch = 0; ch < 3; ch++)
      for (int r = 0; r < 32; r++)
        for (int c = 0; c < 32; c++)
          assert_int_equal(ds.train_x[((i * 3 + ch) * 32 + r) * 32 + c], our_pixel(j, ch, r, c));
  }
  int want_test[3];
  for (int i = 0; i < 3; i++) want_test[i] = test_labels[i] % 10;
  expect_set(&ds, 1, 3, our_pixel, want_test);
  rt_data_free(&ds);
  assert_int_equal(rt_data_load_svhn(root, 10, 0, 3, 32, 32, &ds, err, sizeof err), 0);
  assert_int_equal(ds.n_train, 11);
  rt_data_free(&ds);
  char path[4200];
  snprintf(path, sizeof path, "%s/test_32x32.mat", root);
  assert_int_equal(remove(path), 0);
  assert_int_not_equal(rt_data_load_svhn(root, 10, 1, 3, 32, 32, &ds, err, sizeof err), 0);
  assert_non_null(strstr(err, "test_32x32.mat: No such file"));
  assert_null(ds.train_x);
  free(a.p), free(e.p), free(t.p);
}

/* The test file fine, the training file as given: the load fails saying want. */
static void expect_train_error(const uint8_t *p, size_t n, int classes, const char *want) {
  Form f = {0};
  Buf t = mat_file(&f, 3, test_labels);
  write_bytes(root, "test_32x32.mat", t.p, t.n);
  free(t.p);
  write_bytes(root, "train_32x32.mat", p, n);
  RtDataset ds;
  err[0] = 0;
  int rc = rt_data_load_svhn(root, classes, 0, 3, 32, 32, &ds, err, sizeof err);
  if (rc == 0 || !strstr(err, want)) print_error("rc %d, \"%s\", expected \"%s\"\n", rc, err, want);
  assert_int_not_equal(rc, 0);
  assert_non_null(strstr(err, want));
  assert_non_null(strstr(err, "train_32x32.mat"));   /* the file is named */
  assert_null(ds.train_x);
}

static void test_errors(void **state) {
  (void)state;
  RtDataset ds;
  assert_int_not_equal(rt_data_load_svhn(root, 10, 0, 1, 28, 28, &ds, err, sizeof err), 0);
  assert_non_null(strstr(err, "does not match SVHN's [3, 32, 32]"));
  rt_test_rmdir(root);
  assert_int_equal(rt_test_mkdir(root, sizeof root, "rt_svhn"), 0);
  assert_int_not_equal(rt_data_load_svhn(root, 10, 0, 3, 32, 32, &ds, err, sizeof err), 0);
  assert_non_null(strstr(err, "train_32x32.mat: No such file"));

  expect_train_error((const uint8_t *)"hello", 5, 10, "not a MAT-file");
  uint8_t h73[600] = "MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: HDF5 schema 1.00 .";
  expect_train_error(h73, sizeof h73, 10, "MATLAB 7.3 (HDF5)");
  Form f = {0};
  int bad[3] = {1, 11, 2};
  Buf b = mat_file(&f, 3, bad);
  expect_train_error(b.p, b.n, 10, "label 11 of image 2 is not a digit");
  free(b.p);
  int many[3] = {1, 8, 2};
  b = mat_file(&f, 3, many);
  expect_train_error(b.p, b.n, 5, "label 8 of image 2 is not below classes = 5");
  free(b.p);
  Form dbl = {.x_class = 6};   /* X as a double array */
  b = mat_file(&dbl, 3, test_labels);
  expect_train_error(b.p, b.n, 10, "X is not a uint8 array");
  free(b.p);
  /* X of 2 images, then the y of a file of 3: X is each file's first element */
  Buf two = mat_file(&f, 2, test_labels), three = mat_file(&f, 3, test_labels);
  uint32_t x2, x3;
  memcpy(&x2, two.p + 132, 4), memcpy(&x3, three.p + 132, 4);
  size_t x_end = 128 + 8 + x2, y3 = 128 + 8 + x3;
  Buf mix = {0};
  put(&mix, two.p, x_end);
  put(&mix, three.p + y3, three.n - y3);
  expect_train_error(mix.p, mix.n, 10, "X holds 2 images but y 3 labels");
  /* no y at all */
  expect_train_error(two.p, x_end, 10, "no variable y");
  free(two.p), free(three.p), free(mix.p);
}

/* Every prefix of a good file, plain and compressed, and bytes flipped across it: each fails
 * with a message (or, for a flip that only changes a pixel, loads), and nothing crashes. */
static void test_truncated_and_flipped(void **state) {
  (void)state;
  for (int compress = 0; compress < 2; compress++) {
    Form f = {.compress = compress, .extra = 1, .y_first = 1};   /* X last: no prefix holds it whole */
    Buf b = mat_file(&f, 2, test_labels);
    for (size_t n = 0; n < b.n; n += n < 400 ? 1 : 97) {
      Form g = {0};
      Buf t = mat_file(&g, 1, test_labels);
      write_bytes(root, "test_32x32.mat", t.p, t.n);
      free(t.p);
      write_bytes(root, "train_32x32.mat", b.p, n);
      RtDataset ds;
      err[0] = 0;
      int rc = rt_data_load_svhn(root, 10, 0, 3, 32, 32, &ds, err, sizeof err);
      if (rc == 0) print_error("a prefix of %zu of %zu bytes loaded\n", n, b.n);
      assert_int_not_equal(rc, 0);
      assert_true(err[0] != 0);
    }
    uint64_t s = 99;
    for (int k = 0; k < 300; k++) {
      uint8_t *c = malloc(b.n);
      memcpy(c, b.p, b.n);
      for (int j = 0; j < 3; j++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        size_t at = 128 + (size_t)(s >> 33) % (b.n - 128);
        c[at] ^= (uint8_t)(1u << ((s >> 20) & 7));
      }
      write_bytes(root, "train_32x32.mat", c, b.n);
      RtDataset ds;
      err[0] = 0;
      if (rt_data_load_svhn(root, 10, 0, 3, 32, 32, &ds, err, sizeof err) == 0)
        rt_data_free(&ds);
      else
        assert_true(err[0] != 0);
      free(c);
    }
    free(b.p);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scipy_files),
      cmocka_unit_test_setup_teardown(test_forms, setup, teardown),
      cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_extra, setup, teardown),
      cmocka_unit_test_setup_teardown(test_truncated_and_flipped, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
