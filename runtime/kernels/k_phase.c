/* The phases of a stride-2 conv (pass_phase.c): a 5x5 conv at stride 2 is
 * a 3x3 conv at stride 1 over the four phases of its input (its even and
 * odd rows and columns) as 4C channels, with the kernel's taps regrouped
 * the same way. These kernels move the data there and back; the 3x3 conv
 * between them runs in the Winograd kernels.
 *
 * Phase f = 2 * alpha + beta holds rows alpha, alpha + 2, ... and columns
 * beta, beta + 2, ... of x shifted by `off` (0 or 1): channel f * C + c at
 * (u, v) is x[c][2u + alpha - off][2v + beta - off], 0 outside x. */
#include "k_kernels.h"
#include "k_tile.h"

/* Row u of phase (alpha, beta) of one plane of x [H, W]: WP floats. Where
 * the row lies inside x and its columns are all inside, 16 at a time. */
static inline void k_s2d_row(const float *restrict x, float *restrict y, int H, int W, int WP, int row, int col0)
{
    if (row < 0 || row >= H) {
        for (int v = 0; v < WP; v++)
            y[v] = 0;
        return;
    }
    const float *xr = x + (long)row * W;
    int v = 0;
    /* columns col0 + 2v: the first inside is v0, the last v1 - 1 */
    int v0 = col0 < 0 ? (1 - col0) / 2 : 0, v1 = (W - col0 + 1) / 2;
    v1 = v1 < WP ? v1 : WP;
    for (; v < v0 && v < WP; v++)
        y[v] = 0;
    for (; v + 16 <= v1 && col0 + 2 * (v + 16) <= W; v += 16) {
        k_v16 a, b;
        __builtin_memcpy(&a, xr + col0 + 2 * v, sizeof a);
        __builtin_memcpy(&b, xr + col0 + 2 * v + 16, sizeof b);
        k_v16 e = K_EVEN16(a, b);
        __builtin_memcpy(y + v, &e, sizeof e);
    }
    for (; v < v1; v++)
        y[v] = xr[col0 + 2 * v];
    for (; v < WP; v++)
        y[v] = 0;
}

void k_space_to_depth(const float *restrict x, float *restrict y, int N, int C, int H, int W, int HP, int WP, int off,
                      int lo, int hi)
{
    (void)N;
    long plane = (long)HP * WP;
    for (long p = lo; p < hi; p++) {   /* p = n * C + c */
        long n = p / C, c = p % C;
        const float *xp = x + p * H * W;
        for (int f = 0; f < 4; f++) {
            int alpha = f >> 1, beta = f & 1;
            float *yp = y + ((n * 4 + f) * C + c) * plane;
            for (int u = 0; u < HP; u++)
                k_s2d_row(xp, yp + (long)u * WP, H, W, WP, 2 * u + alpha - off, beta - off);
        }
    }
}

void k_depth_to_space(const float *restrict dy, float *restrict dx, int N, int C, int H, int W, int HP, int WP,
                      int off, int lo, int hi)
{
    (void)N;
    long plane = (long)HP * WP;
    for (long p = lo; p < hi; p++) {
        long n = p / C, c = p % C;
        float *xp = dx + p * H * W;
        for (int i = 0; i < H; i++) {
            int u = (i + off) >> 1, alpha = (i + off) & 1;
            float *xr = xp + (long)i * W;
            if (u >= HP) {   /* a row the conv does not read */
                for (int j = 0; j < W; j++)
                    xr[j] = 0;
                continue;
            }
            const float *r0 = dy + ((n * 4 + 2 * alpha) * C + c) * plane + (long)u * WP;   /* beta 0 */
            const float *r1 = r0 + C * plane;                                                /* beta 1 */
            for (int j = 0; j < W; j++) {
                int v = (j + off) >> 1;
                xr[j] = v >= WP ? 0 : ((j + off) & 1) ? r1[v] : r0[v];
            }
        }
    }
}

void k_phase_w(const float *restrict w, float *restrict wp, int K, int C, int R, int lo, int hi)
{
    for (long o = lo; o < hi; o++)
        for (int f = 0; f < 4; f++)
            for (long c = 0; c < C; c++) {
                float *t = wp + ((o * 4 + f) * C + c) * 9;
                const float *s = w + (o * C + c) * R * R;
                for (int a = 0; a < 3; a++)
                    for (int b = 0; b < 3; b++) {
                        int r = 2 * a + (f >> 1), q = 2 * b + (f & 1);
                        t[a * 3 + b] = r < R && q < R ? s[r * R + q] : 0;
                    }
            }
    (void)K;
}

void k_phase_w_grad(const float *restrict dwp, float *restrict dw, int K, int C, int R, int lo, int hi)
{
    for (long o = lo; o < hi; o++)
        for (long c = 0; c < C; c++)
            for (int r = 0; r < R; r++)
                for (int q = 0; q < R; q++) {
                    int f = 2 * (r & 1) + (q & 1);
                    dw[((o * C + c) * R + r) * R + q] = dwp[((o * 4 + f) * C + c) * 9 + (r >> 1) * 3 + (q >> 1)];
                }
    (void)K;
}
