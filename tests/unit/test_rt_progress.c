/* Unit tests of runtime/rt_progress.c, writing into memory streams (open_memstream). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "rt_progress.h"

static char *buf;
static size_t len;

static FILE *open_out(void) {
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  return f;
}

static int count(const char *s, const char *what) {
  int n = 0;
  for (const char *p = strstr(s, what); p; p = strstr(p + 1, what)) n++;
  return n;
}

/* Three epochs of five steps; epoch 2 has no test figure. */
static void run(FILE *out, int mode) {
  RtProgress *p = rt_progress_begin(out, mode, "train simcnn", 3, 5, 0, 32);
  assert_non_null(p);
  for (int e = 0; e < 3; e++) {
    for (int s = 0; s < 5; s++) rt_progress_step(p, e, s, 2.0 / (s + 1), 0.1 * s);
    rt_progress_epoch(p, e, 0.4121 - 0.1 * e, 0.8512 + 0.01 * e, e == 1 ? -1 : 0.884,
                      1234 + e, 48.6 + e);
  }
  rt_progress_end(p);
}

static void test_lines(void **state) {
  (void)state;
  FILE *out = open_out();
  run(out, RT_PROGRESS_LINES);
  fclose(out);
  assert_string_equal(buf,
                      "epoch 1/3: loss 0.4121 train 85.12% test 88.40% 1234 img/s 48.6 s\n"
                      "epoch 2/3: loss 0.3121 train 86.12% 1235 img/s 49.6 s\n"
                      "epoch 3/3: loss 0.2121 train 87.12% test 88.40% 1236 img/s 50.6 s\n"
                      "train simcnn: 3 epochs in 0:00\n");
  free(buf);
}

static void test_auto_on_a_file_is_lines(void **state) {
  (void)state;
  FILE *out = open_out();
  run(out, RT_PROGRESS_AUTO);
  fclose(out);
  assert_null(strchr(buf, '\r'));
  assert_int_equal(count(buf, "\n"), 4);
  free(buf);
}

static void test_quiet(void **state) {
  (void)state;
  FILE *out = open_out();
  run(out, RT_PROGRESS_QUIET);
  fclose(out);
  assert_int_equal(len, 0);
  free(buf);
  /* NULL is accepted everywhere. */
  rt_progress_step(NULL, 0, 0, 1, 1);
  rt_progress_epoch(NULL, 0, 1, 1, 1, 1, 1);
  rt_progress_end(NULL);
}

static void test_bar(void **state) {
  (void)state;
  FILE *out = open_out();
  run(out, RT_PROGRESS_BAR);
  fclose(out);
  /* Quick steps: the first one of each epoch is drawn, the rest fall within 0.1 s of it. */
  assert_int_equal(count(buf, "\r"), 6);
  assert_int_equal(count(buf, "\n"), 4);
  assert_non_null(strstr(buf, "\repoch 1/3 ["));
  assert_non_null(strstr(buf, "]  20% "));
  assert_non_null(strstr(buf, " img/s loss 2.000 acc 0.0% ETA "));
  /* Every epoch line overwrites the bar (padded with spaces), then ends the line. */
  const char *e = strstr(buf, "\repoch 2/3: loss 0.3121 train 86.12% 1235 img/s 49.6 s");
  assert_non_null(e);
  const char *nl = strchr(e, '\n');
  assert_non_null(nl);
  for (const char *c = e + 1; c < nl; c++) assert_true(*c != '\r');
  assert_true(nl[-1] == ' ' || nl[-1] == 's');
  const char *tail = "\ntrain simcnn: 3 epochs in 0:00\n";
  assert_string_equal(buf + strlen(buf) - strlen(tail), tail);
  free(buf);
}

static void test_bar_redraws_and_resume(void **state) {
  (void)state;
  FILE *out = open_out();
  RtProgress *p = rt_progress_begin(out, RT_PROGRESS_BAR, "train m", 4, 3, 2, 10);
  struct timespec nap = {0, 120 * 1000000L};
  for (int s = 0; s < 3; s++) {
    nanosleep(&nap, NULL);
    rt_progress_step(p, 2, s, 1.0, 0.5);
  }
  rt_progress_epoch(p, 2, 1.0, 0.5, -1, -1, -1); /* measured: 3 steps of 10 in ~0.36 s */
  for (int s = 0; s < 2; s++) rt_progress_step(p, 3, s, 1.0, 0.5);
  rt_progress_end(p); /* stopped in the middle of an epoch: the bar line is ended */
  fclose(out);
  assert_int_equal(count(buf, "\repoch 3/4 ["), 3);
  assert_non_null(strstr(buf, "]  33% "));
  assert_non_null(strstr(buf, "] 100% "));
  assert_non_null(strstr(buf, "ETA 0:00"));
  const char *e = strstr(buf, "\repoch 3/4: loss 1.0000 train 50.00% ");
  assert_non_null(e);
  int ips = 0;
  double secs = 0;
  assert_int_equal(sscanf(e, "\repoch 3/4: loss 1.0000 train 50.00%% %d img/s %lf s", &ips, &secs),
                   2);
  assert_true(secs >= 0.3 && secs < 5);
  assert_true(ips > 5 && ips <= 100);
  assert_non_null(strstr(buf, "\repoch 4/4 ["));
  size_t n = strlen(buf);
  assert_string_equal(buf + n - strlen("\ntrain m: 1 epoch in 0:00\n"),
                      "\ntrain m: 1 epoch in 0:00\n");
  free(buf);
}

/* A work bar: drawn on the first unit and then at most every 0.1 s, its
 * percentage of the total, erased at the end (the caller's lines stay). */
static void test_work_bar(void **state) {
  (void)state;
  FILE *out = open_out();
  RtProgress *p = rt_work_begin(out, RT_PROGRESS_BAR, "modules", 40);
  struct timespec nap = {0, 120 * 1000000L};
  rt_work_add(p, 4);
  rt_work_add(p, 4); /* within 0.1 s of the first: not drawn */
  nanosleep(&nap, NULL);
  rt_work_add(p, 12);
  rt_progress_end(p);
  fclose(out);
  assert_int_equal(count(buf, "\rmodules ["), 2);
  assert_non_null(strstr(buf, "]  10% 0:00 ETA "));
  assert_non_null(strstr(buf, "]  50% 0:00 ETA 0:00"));
  assert_null(strchr(buf, '\n'));
  /* erased: a return, as many spaces as the last bar has characters, a return */
  const char *q = NULL;
  for (const char *r = strstr(buf, "\rmodules ["); r; r = strstr(r + 1, "\rmodules [")) q = r;
  const char *erase = strchr(q + 1, '\r');
  assert_non_null(erase);
  size_t shown = (size_t)(erase - q - 1);
  assert_int_equal(strlen(erase), shown + 2);
  assert_int_equal(strspn(erase + 1, " "), shown);
  assert_true(erase[shown + 1] == '\r');
  free(buf);
  /* elsewhere nothing at all */
  out = open_out();
  p = rt_work_begin(out, RT_PROGRESS_LINES, "modules", 40);
  rt_work_add(p, 40);
  rt_progress_end(p);
  fclose(out);
  assert_int_equal(len, 0);
  free(buf);
  rt_work_add(NULL, 1);
}

static void *add_units(void *p) {
  for (int i = 0; i < 1000; i++) rt_work_add(p, 1);
  return NULL;
}

/* Threads adding at once lose no unit: after 4 x 1000 of 4001, the last
 * one (drawn, 0.1 s later) shows 100%. */
static void test_work_threads(void **state) {
  (void)state;
  FILE *out = open_out();
  RtProgress *p = rt_work_begin(out, RT_PROGRESS_BAR, "sweep", 4001);
  pthread_t t[4];
  for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&t[i], NULL, add_units, p), 0);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  struct timespec nap = {0, 120 * 1000000L};
  nanosleep(&nap, NULL);
  rt_work_add(p, 1);
  rt_progress_end(p);
  fclose(out);
  const char *last = NULL;
  for (const char *q = strstr(buf, "\rsweep ["); q; q = strstr(q + 1, "\rsweep [")) last = q;
  assert_non_null(last);
  assert_non_null(strstr(last, "] 100% "));
  free(buf);
}

static void test_clock(void **state) {
  (void)state;
  double a = rt_clock();
  struct timespec nap = {0, 20 * 1000000L};
  nanosleep(&nap, NULL);
  double b = rt_clock();
  assert_true(b - a >= 0.019 && b - a < 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lines),
      cmocka_unit_test(test_auto_on_a_file_is_lines),
      cmocka_unit_test(test_quiet),
      cmocka_unit_test(test_bar),
      cmocka_unit_test(test_bar_redraws_and_resume),
      cmocka_unit_test(test_work_bar),
      cmocka_unit_test(test_work_threads),
      cmocka_unit_test(test_clock),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
