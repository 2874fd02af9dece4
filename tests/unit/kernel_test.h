/* What the kernel tests (test_kernels_conv.c, test_kernels_wino.c,
 * test_kernels_layers.c, test_kernels_mwt.c) share: inputs from a fixed LCG, NaN-filled
 * outputs and scratch, comparisons against references summed in double or
 * to the bit, the thread splits every kernel runs with, and the direct
 * conv's reference. */
#ifndef MWT_KERNEL_TEST_H
#define MWT_KERNEL_TEST_H

/* The tile widths every kernel runs with: 8 and 16 floats. */
extern const int kt_simds[2];

/* malloc of n floats (at least one); fails the test on NULL. */
float *kt_fmalloc(long n);
/* Values in [-1, 1) from a fixed LCG. */
void kt_fill(float *v, long n, unsigned seed);
/* NaN everywhere: an output the kernel forgets to write, or scratch it
 * trusts to be zero, shows. */
float *kt_garbage(long n);
/* Fails unless |got - want| <= tol (1 + |want|) everywhere. */
void kt_assert_close_d(const float *got, const double *want, long n, double tol, const char *what);
/* Fails unless a and b are the same bytes: results of two splits. */
void kt_assert_same(const float *a, const float *b, long n, const char *what);
/* a and b, from two kernels that sum alike, the same to the bit */
void kt_assert_bits(const float *a, const float *b, long n, const char *what);
/* The splits each kernel is run with: all at once, in two, in three.
 * kt_split_at gives part i's first unit of split s. */
int kt_split_count(int s);
int kt_split_at(int units, int s, int i);

typedef struct {
    int N, C, H, W, K, R, S, stride, pad;
} KtConvShape;

/* The conv of s in double: y (with bias b), and for dy the data gradient
 * dx, the weight gradient dw and the bias gradient db, each summed per
 * chunk of the batch (G chunks, chunk g images [g N / G, (g+1) N / G)). */
void kt_conv_ref(const KtConvShape *s, int OH, int OW, const float *x, const float *w, const float *b,
                 const float *dy, int G, double *y, double *dx, double *dw, double *db);
/* The largest error of got against want, relative to 1 + |want|. */
double kt_worst_d(const float *got, const double *want, long n);

#endif
