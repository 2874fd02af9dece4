/* rt_progress: training progress on a stream (stderr).
 *
 * On a terminal, a bar redrawn in place (with \r) at most 10 times a second:
 *   epoch 3/10 [#######.......]  45% 1234 img/s loss 0.412 acc 85.1% ETA 1:23
 * and, in every mode but quiet, one permanent line per epoch:
 *   epoch 3/10: loss 0.4121 train 85.12% test 88.40% 1234 img/s 48.6 s
 * Elsewhere (a log file, a pipe) only the permanent lines.
 *
 * Epochs and steps are counted from 0 and shown from 1. Accuracies are fractions (0.851), shown as
 * percentages. Every function accepts p == NULL and then does nothing. */
#ifndef RT_PROGRESS_H
#define RT_PROGRESS_H

#include <stdio.h>

enum {
  RT_PROGRESS_AUTO = 0, /* a bar when the stream is a terminal, else lines */
  RT_PROGRESS_BAR = 1,
  RT_PROGRESS_LINES = 2,
  RT_PROGRESS_QUIET = 3 /* nothing at all */
};

typedef struct RtProgress RtProgress;

/* what: "train simcnn", used in the summary line of rt_progress_end. epochs: the run's total;
 * first_epoch: where it starts (> 0 when resuming). batch: images per step, for img/s. NULL only
 * when out of memory. */
RtProgress *rt_progress_begin(FILE *out, int mode, const char *what, int epochs,
                              int steps_per_epoch, int first_epoch, int batch);

/* After step `step` of epoch `epoch`: the epoch's running mean loss and accuracy. img/s is measured
 * since the epoch began (the previous rt_progress_epoch, or rt_progress_begin); the ETA covers the
 * rest of the run at the pace of the run so far, evaluations included. */
void rt_progress_step(RtProgress *p, int epoch, int step, double loss, double acc);

/* End of an epoch: its permanent line. test_acc < 0: no test figure. images_per_s or seconds < 0:
 * use the ones measured here (the epoch's wall time, steps * batch over it). */
void rt_progress_epoch(RtProgress *p, int epoch, double loss, double acc, double test_acc,
                       double images_per_s, double seconds);

/* Long work that is not training (modularize's passes over images, a module at a time): on a
 * terminal a bar redrawn in place at most 10 times a second,
 *   modules [##########..........]  50% 1:05 ETA 1:05
 * that rt_progress_end erases; elsewhere nothing (the caller's own lines say what runs). total:
 * the units of work (images times modules); rt_work_add adds units done. rt_work_add may be called
 * from any thread: the count is atomic, and one thread at a time draws. */
RtProgress *rt_work_begin(FILE *out, int mode, const char *what, long long total);
void rt_work_add(RtProgress *p, long long units);

/* Ends a bar left unfinished (a work bar: erases it), prints "WHAT: N epochs in M:SS" when any
 * epoch ended, frees p. */
void rt_progress_end(RtProgress *p);

/* Monotonic seconds (an arbitrary origin). */
double rt_clock(void);

/* A request to stop long work early (the REPL's Ctrl-C): set from a signal
 * handler (async-signal-safe), polled by the training loop between steps,
 * cleared before the next command. */
void rt_interrupt_request(void);
int rt_interrupted(void);
void rt_interrupt_clear(void);
/* The command line's handler (not the REPL's): Ctrl-C stops a training
 * loop between steps while it is armed (rt_interrupt_arm), and ends the
 * program at once otherwise or when pressed again. */
void rt_interrupt_install(void);
void rt_interrupt_arm(int on);

#endif
