/* rt_progress: the bar and the epoch lines. The bar is cleared by overwriting it with spaces rather
 * than with an escape sequence, which any terminal (and a log viewer) understands; it is fitted to
 * the terminal's width, because a bar that wraps can no longer be redrawn in place. */
#include "rt_progress.h"

#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define REDRAW_S 0.1 /* at most 10 redraws a second: a terminal is slow, a step is not */
#define MAX_BAR 30

struct RtProgress {
  FILE *out;
  int mode; /* RT_PROGRESS_BAR, _LINES or _QUIET (AUTO resolved) */
  char what[128];
  int epochs, steps_per_epoch, first_epoch, batch;
  double t_begin, t_epoch, t_draw;
  int steps_done;  /* in the current epoch */
  int epochs_done; /* in this run */
  int shown;       /* characters of the bar on the current line; 0: none */
  int work;        /* rt_work_begin's bar */
  long long total;
  atomic_llong done;
  atomic_flag drawing; /* held by the thread drawing a work bar */
};

static volatile sig_atomic_t interrupted, armed;

void rt_interrupt_request(void) { interrupted = 1; }
int rt_interrupted(void) { return interrupted != 0; }
void rt_interrupt_clear(void) { interrupted = 0; }
void rt_interrupt_arm(int on) { armed = on; }

/* The command line's Ctrl-C: inside a training loop (armed) the first one
 * asks it to stop after its step, so that the checkpoint of the last whole
 * epoch is where the run ends and the run says so; a second one, or one
 * anywhere else, ends mwtc at once, as without a handler. */
static void on_interrupt(int sig)
{
  if (armed && !interrupted) {
    static const char msg[] = "\nmwtc: stopping after this step (Ctrl-C again to quit now)\n";
    interrupted = 1;
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    return;
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

void rt_interrupt_install(void)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
}

double rt_clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

RtProgress *rt_progress_begin(FILE *out, int mode, const char *what, int epochs,
                              int steps_per_epoch, int first_epoch, int batch) {
  RtProgress *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  if (mode == RT_PROGRESS_AUTO) mode = isatty(fileno(out)) ? RT_PROGRESS_BAR : RT_PROGRESS_LINES;
  p->out = out;
  p->mode = mode;
  snprintf(p->what, sizeof p->what, "%s", what ? what : "train");
  p->epochs = epochs;
  p->steps_per_epoch = steps_per_epoch;
  p->first_epoch = first_epoch;
  p->batch = batch;
  p->t_begin = p->t_epoch = rt_clock();
  p->t_draw = -1e300;
  return p;
}

/* "1:23" or "1:02:03"; "?" when unknown. */
static void fmt_duration(char *b, size_t n, double s) {
  if (!(s >= 0) || s > 1e8) {
    snprintf(b, n, "?");
    return;
  }
  long t = lround(s);
  if (t >= 3600) snprintf(b, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else snprintf(b, n, "%ld:%02ld", t / 60, t % 60);
}

static int terminal_width(FILE *out) {
  struct winsize ws;
  if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

/* Writes line over the bar now shown (padding with spaces to erase a longer one), then `end`.
 * Lines mode never writes \r: its output is meant for log files. */
static void overwrite(RtProgress *p, const char *line, const char *end) {
  int len = (int)strlen(line);
  fprintf(p->out, "%s%s%*s%s", p->mode == RT_PROGRESS_BAR ? "\r" : "", line,
          p->shown > len ? p->shown - len : 0, "", end);
  fflush(p->out);
}

/* "HEAD [#####.....] TAIL" over the bar now shown, the bar fitted to the terminal (left out where
 * it would be under 5 characters): a line that wraps cannot be redrawn in place. */
static void draw(RtProgress *p, const char *head, double frac, const char *tail) {
  char line[320];
  int room = terminal_width(p->out) - 1 - (int)strlen(head) - (int)strlen(tail) - 4;
  int width = room > MAX_BAR ? MAX_BAR : room;
  if (width >= 5) {
    char bar[MAX_BAR + 1];
    int full = (int)(frac * width);
    memset(bar, '#', (size_t)full);
    memset(bar + full, '.', (size_t)(width - full));
    bar[width] = 0;
    snprintf(line, sizeof line, "%s [%s] %s", head, bar, tail);
  } else {
    snprintf(line, sizeof line, "%s %s", head, tail);
  }
  overwrite(p, line, "");
  p->shown = (int)strlen(line);
}

void rt_progress_step(RtProgress *p, int epoch, int step, double loss, double acc) {
  if (!p || p->mode == RT_PROGRESS_QUIET) return;
  p->steps_done = step + 1;
  if (p->mode != RT_PROGRESS_BAR) return;
  double now = rt_clock();
  if (now - p->t_draw < REDRAW_S) return;
  p->t_draw = now;

  int spe = p->steps_per_epoch > 0 ? p->steps_per_epoch : 1;
  double frac = (double)(step + 1) / spe;
  if (frac > 1) frac = 1;
  double in_epoch = now - p->t_epoch, in_run = now - p->t_begin;
  double ips = in_epoch > 0 ? (double)(step + 1) * p->batch / in_epoch : 0;
  long long done = (long long)(epoch - p->first_epoch) * spe + step + 1;
  long long total = (long long)(p->epochs - p->first_epoch) * spe;
  char eta[32];
  fmt_duration(eta, sizeof eta, done > 0 ? in_run * (double)(total - done) / (double)done : -1);

  char head[64], tail[160];
  snprintf(head, sizeof head, "epoch %d/%d", epoch + 1, p->epochs);
  snprintf(tail, sizeof tail, "%3d%% %.0f img/s loss %.3f acc %.1f%% ETA %s", (int)(frac * 100),
           ips, loss, acc * 100, eta);
  draw(p, head, frac, tail);
}

RtProgress *rt_work_begin(FILE *out, int mode, const char *what, long long total) {
  RtProgress *p = rt_progress_begin(out, mode, what, 0, 0, 0, 0);
  if (!p) return NULL;
  p->work = 1;
  p->total = total > 0 ? total : 1;
  atomic_init(&p->done, 0);
  atomic_flag_clear(&p->drawing);
  return p;
}

void rt_work_add(RtProgress *p, long long units) {
  if (!p || p->mode != RT_PROGRESS_BAR) return;
  long long done = atomic_fetch_add(&p->done, units) + units;
  if (atomic_flag_test_and_set(&p->drawing)) return; /* another thread draws: this one works on */
  double now = rt_clock();
  if (now - p->t_draw >= REDRAW_S) {
    p->t_draw = now;
    double frac = done >= p->total ? 1.0 : (double)done / (double)p->total, ran = now - p->t_begin;
    char el[32], eta[32], tail[96];
    fmt_duration(el, sizeof el, ran);
    fmt_duration(eta, sizeof eta, done > 0 ? ran * (1 - frac) / frac : -1);
    snprintf(tail, sizeof tail, "%3d%% %s ETA %s", (int)(frac * 100), el, eta);
    draw(p, p->what, frac, tail);
  }
  atomic_flag_clear(&p->drawing);
}

void rt_progress_epoch(RtProgress *p, int epoch, double loss, double acc, double test_acc,
                       double images_per_s, double seconds) {
  if (!p || p->mode == RT_PROGRESS_QUIET) return;
  double now = rt_clock();
  if (seconds < 0) seconds = now - p->t_epoch;
  if (images_per_s < 0) images_per_s = seconds > 0 ? (double)p->steps_done * p->batch / seconds : 0;
  char line[256], test[32] = "";
  if (test_acc >= 0) snprintf(test, sizeof test, " test %.2f%%", test_acc * 100);
  snprintf(line, sizeof line, "epoch %d/%d: loss %.4f train %.2f%%%s %.0f img/s %.1f s", epoch + 1,
           p->epochs, loss, acc * 100, test, images_per_s, seconds);
  overwrite(p, line, "\n");
  p->shown = 0;
  p->t_epoch = now;
  p->t_draw = -1e300; /* the next epoch's bar appears at its first step */
  p->steps_done = 0;
  p->epochs_done++;
}

void rt_progress_end(RtProgress *p) {
  if (!p) return;
  if (p->work) {
    if (p->shown) fprintf(p->out, "\r%*s\r", p->shown, ""); /* the caller's lines say what ran */
    fflush(p->out);
    free(p);
    return;
  }
  if (p->mode != RT_PROGRESS_QUIET) {
    if (p->shown) fputc('\n', p->out); /* keep the last bar: it shows where the run stopped */
    if (p->epochs_done > 0) {
      char t[32];
      fmt_duration(t, sizeof t, rt_clock() - p->t_begin);
      fprintf(p->out, "%s: %d epoch%s in %s\n", p->what, p->epochs_done,
              p->epochs_done == 1 ? "" : "s", t);
    }
    fflush(p->out);
  }
  free(p);
}
