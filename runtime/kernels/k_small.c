/* Convolutions of small planes (outputs of 16 pixels or fewer: VGG16's
 * last two stages on CIFAR-10, 512 channels at 4x4 and 2x2, and
 * ResNet18's last, with its stride-2 entry from 8x8), stride 1 or 2, in
 * training and in inference at batches that fill a tile of images, as a
 * GEMM per output pixel over the batch:
 *   y[n][o][p] = b[o] + sum over the taps t valid at p, and c, of w[o][c][t] x[n][c][q(p, t)]
 * Rows are output channels (register tiles of MR), columns images (NR of
 * them), the inner dimension the input channels of each valid tap in turn.
 * The direct kernel's tiles run along an output row, 2 pixels at 2x2 in a
 * 16-wide tile, and its sums include the padding's taps (9 where 4 are
 * valid): VGG16's 2x2 layers ran at 17% of the cores' peak; Winograd
 * F(2x2) at 4x4 has 2 tiles a row where its transforms work on 16.
 *
 * k_conv2d_small: the forward, and with flip the data gradient (per input
 * pixel, a GEMM over the output pixels that read it, each through its
 * tap); units are tiles of MR output channels. k_conv2d_small_bwd_w:
 * the weight gradient (and the bias's), units tiles of MR of w's output
 * channels, each summing over the whole batch: no parts to add after. Each
 * output is one tile's sum, in an order fixed by the shape (taps in order,
 * then channels or images in order), so the thread split changes no bit.
 * Each call first lays out the input with images (or channels) innermost,
 * once per thread, in its scratch (on many threads the forward and data
 * gradient split their units by images too: k_small_split). Below a tile
 * of images, inference takes k_small_pix.c's GEMMs (images as the rows of
 * the tile, the same bits) from three quarters of a tile of those, and
 * dot products below (k_small_dot_group). Where Winograd applies too (4x4
 * planes, stride 1, 16 channels a side), cg_conv.c takes F(2x2) for the forward
 * and the data gradient, and this weight gradient. */
#include "k_kernels.h"
#include "k_tile.h"
#include "k_small.h"

/* Register tiles: 8 rows by 32 columns (two vectors) with AVX-512, where
 * the op kernels' 16 by 16 ran at 62% of the core's peak from L2 and 8 by
 * 32 at 80% (Xeon, model 167, inner dimension 512): per step of the inner
 * dimension 2 vector loads and 8 broadcasts for 16 FMAs, where 16 by 16
 * takes 1 and 16, and the loads were what held it back. 4 by 24 with AVX2.
 * The tile's shape changes no sum's order: each output adds its segments'
 * products in order whatever tile holds it. */
K_SEG_KERNEL(k_seg_8x32, k_v16, 16, 8, 2, 8, 1, 0)
K_SEG_KERNEL(k_seg_4x24, k_v8, 8, 4, 3, 4, 1, 0)
K_SEG_KERNEL(k_acc_8x32, k_v16, 16, 8, 2, 8, 1, 2)   /* the sums go on from the tile's */
K_SEG_KERNEL(k_acc_4x24, k_v8, 8, 4, 3, 4, 1, 2)

static inline int k_small_mr(int simd) { return simd >= 16 ? 8 : 4; }
static inline int k_small_nr(int simd) { return simd >= 16 ? 32 : 24; }

static inline void k_seg(int simd, int nseg, const float *const *as, const float *const *bs, int kin, long ldb,
                         const float *restrict bias, float *restrict c, long ldc)
{
    if (simd >= 16)
        k_seg_8x32(nseg, as, bs, kin, ldb, 0, bias, c, ldc);
    else
        k_seg_4x24(nseg, as, bs, kin, ldb, 0, bias, c, ldc);
}

K_SEG_KERNEL(k_rows_16x16, k_v16, 16, 16, 1, 1, lda, 0)
K_SEG_KERNEL(k_rows_4x16, k_v8, 8, 4, 2, 1, lda, 0)

int k_small_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW)
{
    /* output planes of at most 16 pixels (inputs of at most 64: stride 2
     * into 4x4, ResNet18's last stage); thin channel counts leave the tiles
     * empty, and a 1x1 conv is one GEMM in the direct kernel already
     * (ResNet18's stride-2 projection into 4x4 ran 2x slower here, its
     * input laid out again for one tap): the direct kernel for those */
    return (stride == 1 || stride == 2) && OH * OW <= 16 && H * W <= 64 && OH == (H + 2 * pad - R) / stride + 1 &&
           OW == (W + 2 * pad - S) / stride + 1 && C >= 16 && K >= 16 && R * S > 1 && R * S <= 25;
}

/* What the strided GEMMs' planes share: stride 2, from up to 18x18, 16
 * channels or more in and out. */
static int k_small_strided_shape(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW)
{
    return stride == 2 && H * W <= 324 && OH == (H + 2 * pad - R) / stride + 1 &&
           OW == (W + 2 * pad - S) / stride + 1 && C >= 16 && K >= 16;
}

/* Stride-2 convs of 4x4 or 5x5 kernels into planes of up to 64 pixels,
 * from up to 18x18: there the direct kernel's rows of 8 or fewer outputs
 * fill a half or less of its tiles, and most of its taps at the plane's
 * edge read the padding. These GEMMs sum the valid taps only, over a tile
 * of 32 images (24 with AVX2). Measured per op, each layer with a 1x1 conv
 * before it, batchnorm, relu, gap and linear(10) after it, 2560 images on
 * 2 threads of an AVX-512 Xeon, direct kernel against these (forward, data
 * gradient, weight gradient, seconds): 64 -> 64 5x5 from 15x15 into 7x7
 * 0.11-0.12 / 0.13 / 0.14 against 0.09 / 0.09 / 0.12; from 10x10 into 4x4
 * 0.035 / 0.056 / 0.06 against 0.027 / 0.032 / 0.034; 128 -> 128 from
 * 17x17 into 8x8 0.46-0.48 / 0.54-0.57 / 0.66-0.68 against 0.44 / 0.38 /
 * 0.61; 4x4 kernels, 64 -> 64 from 14x14 into 7x7, 0.07 / 0.08 / 0.08-0.09
 * against 0.06 / 0.06 / 0.08. 3x3 kernels stay direct (into 8x8 the
 * forward took 0.51 s here against 0.34; but for the data gradient into
 * 5x5 to 7x7, k_small_strided_dx_ok), as do planes past 64 pixels
 * (into 9x9, pass_phase.c's phases, and above). With AVX2's code the
 * forward into 8x8 at 128 channels was 12% slower, the layer's three ops
 * 5% faster. Training's ops, and inference's from a tile of images: the
 * dot products and k_small_pix.c take k_small_ok's planes alone. */
int k_small_strided_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW)
{
    return k_small_strided_shape(C, H, W, K, R, S, stride, pad, OH, OW) && OH * OW <= 64 && R * S >= 16 &&
           R * S <= 25;
}

/* The data gradient alone of stride-2 3x3 convs into planes of 5x5 to
 * 7x7 (17 to 49 pixels; 4x4 and below are k_small_ok's for every op):
 * a GEMM per pixel of dx over the pixels of dy that read it, where the
 * direct kernel ran dy's rows of 7 or fewer. Measured per op on the layer
 * network of k_small_strided_ok (2560 images, 2 threads of a Zen 4 with
 * AVX-512, direct kernel against these, seconds, ABBA): 128 -> 128 from
 * 12x12 into 6x6 0.171 against 0.136-0.142; 64 -> 64 from 14x14 into 7x7
 * 0.075-0.078 against 0.062; 128 -> 128 from 10x10 into 5x5 0.143-0.146
 * against 0.099-0.115; 256 -> 512 from 14x14 into 7x7 1.70-1.76 against
 * 1.55-1.56; 32 -> 64 from 14x14 (ResCNN's on Fashion-MNIST) 0.042-0.072
 * against 0.030-0.033. Into 8x8, level or slower (64 -> 64 0.070 against
 * 0.078-0.084), and the forward and weight gradient lose at 3x3 (the
 * last stop's runs on an AVX-512 Xeon: into 8x8 the forward 0.51 s
 * against 0.34, the weight gradient 3-8% slower): those stay direct. */
int k_small_strided_dx_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW)
{
    return k_small_strided_shape(C, H, W, K, R, S, stride, pad, OH, OW) && R == 3 && S == 3 && OH * OW > 16 &&
           OH * OW <= 49;
}

/* Whether an inference batch of N fills a tile of images: with fewer the
 * tiles compute zeros, and every tile of channels packs its weights for
 * them (ResNet18's stride-2 conv into 4x4 at batch 1: 5.5 ms a call here,
 * 1.8 in the direct kernel). Training keeps them at any batch. */
int k_small_batch_ok(int N, int simd) { return N >= k_small_nr(simd); }

int k_small_units(int K, int simd) { return (K + k_small_mr(simd) - 1) / k_small_mr(simd); }

/* Tiles of n images. */
int k_small_cols(int n, int simd) { return (n + k_small_nr(simd) - 1) / k_small_nr(simd); }

/* Whether a forward or data gradient of `units` tiles of output channels
 * on `threads` threads (0: not known) splits each unit by its tiles of
 * images. Each thread lays out the whole input for its units, which on
 * many threads costs about as much as they do: VGG16's 4x4 convs at batch
 * 128, 0.86 ms for it against 0.78 ms a unit, so that a thread's share on
 * 16 threads took 3.81 ms where a 16th of the call is 3.2 (one thread
 * running that share). Split, a unit is one tile of channels and one of
 * images, and a thread lays out only the image tiles its units read: 3.18
 * ms on 16 threads' share, 0.89 against 1.36 on 64's, no slower on 1 or 2,
 * though each unit packs its channels' weights again. Below 16 units a
 * thread. The same sums either way. */
/* The input laid out (floats) from which its copy on each thread costs more than splitting saves,
 * on 2 threads, where the other operand (the weights, or dy) is the smaller: 2 MB
 * (k_small_split, k_small_bwd_w_slices). */
enum { K_SMALL_LAID_MIN = 512 << 10 };

int k_small_split(int units, int threads, int N, long img_floats, long w_floats, int simd)
{
    /* Where the input's layout (its images padded to a tile) is
     * 2 MB or more and larger than the weights, split on 2 threads too:
     * unsplit, each thread laid out all of it and read it from L3 for
     * each unit, and two threads ran the forward only 1.5x faster than one
     * (256 -> 256 from 8x8, stride 2: 15.4 ms a call against 12.6 split,
     * 8 MB of input against 2.4 MB of weights; 256 -> 512 44.9 against 30.0;
     * 128 -> 256 8.7 against 7.4; 64 -> 64 1.44 against 1.22; 2 threads of
     * a Zen 4, batch 128). Where the weights are the larger, each image tile
     * packed them again from memory: VGG16's 512 channels at 4x4 39.7
     * against 45.8, at 2x2 8.9 against 15.1. One thread gains nothing
     * (23.2 against 24.9 at 256 channels from 8x8). */
    long laid = k_rup(N, k_small_nr(simd)) * img_floats;
    if (threads > 1 && laid >= K_SMALL_LAID_MIN && laid > w_floats)
        return 1;
    return threads > 0 && units < 16 * threads;
}

/* Inference below a tile of images: each output a dot product of its
 * kernel's row of w, read as it lies, with a column of the image (the
 * input's taps at that pixel, zeros where they fall on the padding). There
 * VGG16's 512-channel convs are bound by reading their weights (9.4 MB
 * each): the direct kernel read them at 6 GB/s at 2x2 (1.5 ms a call),
 * Winograd its transformed weights, 16/9 as many, at 11 GB/s at 4x4 (1.55
 * ms). The images go in groups whose columns fit in half of L2 (2 MB on
 * the Xeon measured), each group passing over the weights once: at 4x4
 * and 512 channels in, 3 images a group. */
int k_small_dot_group(int N, int C, int R, int S, int OH, int OW)
{
    int P = OH * OW;
    long per = (long)(P > 8 ? 16 : P) * k_rup((long)C * R * S, 16) * 4, g = (1L << 20) / per;
    return (int)(g < 1 ? 1 : g < N ? g : N);
}

/* Planes of 9 to 16 pixels (4x4) take the products as GEMMs over the
 * kernels' rows instead: one vector of 16 pixels per step of the inner
 * dimension, times a weight of each of the tile's rows, read in place (the
 * dot products' tiles reuse each vector 4 times and streamed both operands
 * from L2: VGG16's 4x4 convs at batch 1 ran at 30% of the cores' peak). */
static inline int k_small_rows_mr(int simd) { return simd >= 16 ? 16 : 4; }

int k_small_dot_units(int K, int P, int simd)
{
    int mr = P > 8 ? k_small_rows_mr(simd) : k_dot_mr(simd);
    return (K + mr - 1) / mr;
}

/* The dot path's scratch: the images' columns (16 pixels at the most),
 * padded to whole vectors, and a row of zeros as long. */
static long k_small_dot_ws(int N, int C, int R, int S)
{
    long ct = k_rup((long)C * R * S, 16);
    return (long)N * 16 * ct + ct + 16;
}

/* The weight gradient's units go in groups that share each segment of x
 * (its tile of channels at one pixel, N NR floats: 16 KB at 128 images)
 * while it is in L1: a group's packed dy fits in a quarter of L2 (512 KB:
 * 8 units at 4x4 and 128 images), and its tiles of sums, one per unit and
 * tap, stay in memory from one segment to the next. Unit by unit, every
 * segment came from L2 again for each unit, 128 bytes for 16 FMAs, and the
 * loads of it held the multiplies back (VGG16's 512 channels at 4x4,
 * 0.24-0.26 s in 10 steps on 2 threads of the Xeon measured; 0.21 in
 * groups of 8 or 16 alike, 0.23 of 4). */
static int k_small_bwd_w_group(int N, int P, int simd)
{
    long per = (long)P * N * k_small_mr(simd) * 4, g = (512L << 10) / per;
    return (int)(g < 1 ? 1 : g > 16 ? 16 : g);
}

/* The weight gradient's scratch: x laid out again, a group's packed dy and
 * its tiles of sums (T of them a unit). */
static long k_small_bwd_w_ws(int N, int C, int H, int W, int R, int S, int OH, int OW, int simd)
{
    long mr = k_small_mr(simd), nr = k_small_nr(simd), g = k_small_bwd_w_group(N, OH * OW, simd);
    return (long)H * W * N * k_rup(C, nr) + g * ((long)OH * OW * N * mr + (long)R * S * mr * nr) + mr;
}

/* Floats of scratch a call needs: the input laid out again, a tile's
 * packed weights (or a group's gradients, with their tiles of sums), the
 * tiles of output of K_SMALL_PIX pixels. */
long k_small_ws(int N, int C, int H, int W, int K, int R, int S, int OH, int OW, int simd)
{
    long mr = k_small_mr(simd), nr = k_small_nr(simd);
    long fwd = (long)H * W * C * k_rup(N, nr) + (long)R * S * C * mr;
    long bx = (long)OH * OW * K * k_rup(N, nr) + (long)R * S * K * mr;
    long bw = k_small_bwd_w_ws(N, C, H, W, R, S, OH, OW, simd);
    long m = fwd > bx ? fwd : bx;
    m = m > bw ? m : bw;
    long dot = k_small_dot_ws(k_small_dot_group(N, C, R, S, OH, OW), C, R, S), pix = k_small_pix_ws(N, C, H, W);
    m = m > dot ? m : dot;
    m = m > pix ? m : pix;
    return m + K_SMALL_PIX * mr * nr + 64;
}


/* The forward and data gradient; with gamma, inference's batchnorm folded
 * in as k_conv_fwd_units folds it (s = gamma / sqrt(var + eps) into the
 * packed weights, (b - mean) s + beta the bias) and relu when asked. */
static void k_small_run(const float *restrict x, const float *restrict w, const float *restrict b,
                        const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                        const float *restrict var, float eps, int relu, float *restrict y, float *restrict ws, int N,
                        int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int flip,
                        int split, int simd, int lo, int hi)
{
    if (lo >= hi)
        return;
    /* this call's input (Ci channels, Pi pixels) and output (Co, Po): the
     * conv's, or with flip its output's gradient in and its input's out */
    int Ci = flip ? K : C, Co = flip ? C : K, Pi = flip ? OH * OW : H * W, Po = flip ? H * W : OH * OW;
    int mr = k_small_mr(simd), nr = k_small_nr(simd), Np = (int)k_rup(N, nr), T = R * S;
    int rts = (Co + mr - 1) / mr, cur = -1;   /* tiles of output channels; the image tile laid out */
    float *xt = ws, *ap = xt + (long)Pi * Ci * Np, *tile = ap + (long)T * Ci * mr;
    /* xt[image tile][q][c][NR images]: one tile's columns of every pixel
     * and channel together (a tile's GEMMs over every pixel read them from
     * L2; the whole input, 4 MB at VGG16's 4x4, does not fit there); past
     * N zeros. Split (k_small_split), a unit is one tile of channels and
     * one of images, and xt holds the thread's current image tile only. */
    long ts = (long)Pi * Ci * nr;   /* from one image tile to the next */
    if (!split)
        k_small_layout(x, xt, N, Np, Ci, Pi, nr, ts, (long)Ci * nr, nr, (long)Ci * Pi);
    int taps[25], pix[25];
    const float *as[25], *bs[25];
    for (int u = lo; u < hi; u++) {
        int rt = split ? u % rts : u, n1 = split ? (u / rts + 1) * nr : N;
        int o0 = rt * mr, rows = k_min(mr, Co - o0);
        if (split && u / rts != cur) {
            cur = u / rts;
            k_small_layout(x + (long)cur * nr * Ci * Pi, xt, k_min(nr, N - cur * nr), nr, Ci, Pi, nr, ts,
                           (long)Ci * nr, nr, (long)Ci * Pi);
        }
        /* ap[t][c][i]: tap t of the kernel joining input channel c to
         * output channel o0 + i: w [K][C][R][S], flipped read as w[c][o] */
        float scale[16], bias[16];
        k_fold_bn(b, gamma, beta, mean, var, eps, o0, rows, mr, scale, bias);
        /* c outermost: each of the tile's rows of w is read in order, and
         * the T runs of mr floats written for one c stay in L1, written
         * whole from blk: written straight from w, 16 KB apart a float at a
         * time, they were scatters (17% of the forward of VGG16's 512
         * channels at 2x2). Flipped, the tile's weights for one c are one
         * run of mr T floats, and c walks w by C T floats, a page or more
         * apart, where the hardware prefetchers do not follow: each run
         * waited on memory (47% of that conv's data gradient), hence the
         * prefetch 8 runs ahead. */
        for (int c = 0; c < Ci; c++) {
            if (flip && c + 8 < Ci)
                for (int l = 0; l < rows * T; l += 16)
                    __builtin_prefetch(w + ((long)(c + 8) * C + o0) * T + l);
            float blk[8 * 25];   /* the tile's weights for c, [i][t]: mr <= 8, T <= 25 */
            for (int i = 0; i < mr; i++)
                for (int t = 0; t < T; t++) {
                    float v = 0.0f;
                    if (i < rows)
                        v = flip ? w[((long)c * C + o0 + i) * T + t] : w[((long)(o0 + i) * C + c) * T + t];
                    blk[i * T + t] = gamma ? v * scale[i] : v;
                }
            for (int t = 0; t < T; t++)
                for (int i = 0; i < mr; i++)
                    ap[((long)t * Ci + c) * mr + i] = blk[i * T + t];
        }
        for (int n0 = split ? cur * nr : 0; n0 < k_min(n1, N); n0 += nr)
            for (int p0 = 0; p0 < Po; p0 += K_SMALL_PIX) {
                int p1 = k_min(p0 + K_SMALL_PIX, Po);
                for (int p = p0; p < p1; p++) {
                    int nt = k_small_pairs(flip, p, H, W, R, S, stride, pad, OH, OW, taps, pix);
                    const float *xn = xt + (split ? 0 : (n0 / nr) * ts);
                    for (int k = 0; k < nt; k++)
                        as[k] = ap + (long)taps[k] * Ci * mr, bs[k] = xn + (long)pix[k] * Ci * nr;
                    k_seg(simd, nt, as, bs, Ci, nr, b || gamma ? bias : NULL, tile + (long)(p - p0) * mr * nr, nr);
                }
                /* y's planes written in runs, from the tiles of up to
                 * K_SMALL_PIX pixels: a pixel at a time, they went Po
                 * floats apart, as scatters (7% of the forward of VGG16's
                 * 512 channels at 2x2) */
                for (int j = 0; j < nr && n0 + j < N; j++)
                    for (int i = 0; i < rows; i++)
                        for (int p = p0; p < p1; p++) {
                            float v = tile[((long)(p - p0) * mr + i) * nr + j];
                            y[((long)(n0 + j) * Co + o0 + i) * Po + p] = relu && !(v > 0.0f) ? 0.0f : v;
                        }
            }
    }
}

void k_conv2d_small(const float *restrict x, const float *restrict w, const float *restrict b, float *restrict y,
                    float *restrict ws, int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int OH,
                    int OW, int flip, int split, int simd, int lo, int hi)
{
    k_small_run(x, w, b, NULL, NULL, NULL, NULL, 0.0f, 0, y, ws, N, C, H, W, K, R, S, stride, pad, OH, OW, flip, split,
                simd, lo, hi);
}

void k_conv2d_small_bn(const float *restrict x, const float *restrict w, const float *restrict b,
                       const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                       const float *restrict var, float *restrict y, float *restrict ws, int N, int C, int H, int W,
                       int K, int R, int S, int stride, int pad, int OH, int OW, float eps, int relu, int split,
                       int simd, int lo, int hi)
{
    k_small_run(x, w, b, gamma, beta, mean, var, eps, relu, y, ws, N, C, H, W, K, R, S, stride, pad, OH, OW, 0, split,
                simd, lo, hi);
}

/* How many slices of x's channels the weight gradient's units split into on `threads` threads
 * (0: not known): one, unless x laid out is 2 MB or more and larger than dy, on 2 threads or
 * more. Unsliced, each thread lays out all of x for its tiles of w's rows: 256 -> 256 from 8x8
 * at stride 2 (x 8 MB, dy 2 MB, batch 128) ran 1.67x faster on 2 threads than on one. Sliced, a
 * unit is a tile of rows and one slice of x's channel tiles: each thread lays out its slices'
 * channels alone, and packs all of dy for them. Measured on 2 threads of a Zen 4, ms a call,
 * unsliced against 2 slices: 256 -> 256 12.9-13.2 against 11.4-11.5; 256 -> 512 23.3-23.4
 * against 21.7 (x twice dy); 128 -> 256 5.6-5.9 against 5.5; 64 -> 64 0.94-0.97 against 0.87;
 * VGG16's 512 channels at 4x4, stride 1 (x as large as dy), level, 32.2-33.4 either way. */
int k_small_bwd_w_slices(int N, int C, int H, int W, int K, int OH, int OW, int simd, int threads)
{
    long x = (long)k_rup(C, k_small_nr(simd)) * H * W * N, dy = (long)K * OH * OW * N;
    int tiles = (C + k_small_nr(simd) - 1) / k_small_nr(simd);
    if (threads < 2 || x < K_SMALL_LAID_MIN || x <= dy)
        return 1;
    return threads < tiles ? threads : tiles;
}

void k_conv2d_small_bwd_w(const float *restrict x, const float *restrict dy, float *restrict dw, float *restrict db,
                          float *restrict ws, int N, int C, int H, int W, int K, int R, int S, int stride, int pad,
                          int OH, int OW, int slices, int simd, int lo, int hi)
{
    if (lo >= hi)
        return;
    int mr = k_small_mr(simd), nr = k_small_nr(simd), Cp = (int)k_rup(C, nr), T = R * S, HW = H * W, P = OH * OW;
    int G = k_small_bwd_w_group(N, P, simd), ku = k_small_units(K, simd), nct = Cp / nr;
    long apu = (long)P * N * mr, tu = (long)T * mr * nr;   /* a unit's packed dy, its tiles */
    float *xq = ws, *ap = xq + (long)HW * N * Cp, *tiles = ap + G * apu;
    /* xq[channel tile][q][n][NR channels]: one tile's columns of every
     * pixel and image together, as k_conv2d_small's; past C zeros. Every
     * tile of K reads all of it: split by C's tiles, each unit gathered its
     * tile of dy again, and VGG16's 4x4 weight gradient took twice as long
     * on any number of threads (k_small_split). Sliced
     * (k_small_bwd_w_slices), unit u is tile u % ku of w's rows over slice
     * u / ku of x's channel tiles, and xq holds the slices this thread's
     * units read, each laid out when the first of them comes. */
    long ts = (long)HW * N * nr;
    /* the pairs (p, q) of each tap: output pixels in order */
    int taps[25], pix[25], np[25] = { 0 }, pp[25][64], pq[25][64];   /* up to 64 output pixels */
    for (int p = 0; p < P; p++) {
        int nt = k_small_pairs(0, p, H, W, R, S, stride, pad, OH, OW, taps, pix);
        for (int k = 0; k < nt; k++) {
            int t = taps[k];
            pp[t][np[t]] = p, pq[t][np[t]] = pix[k], np[t]++;
        }
    }
    for (int sl = lo / ku; sl <= (hi - 1) / ku; sl++) {
        /* this slice's units and channel tiles */
        int u0 = sl == lo / ku ? lo % ku : 0, u1 = sl == (hi - 1) / ku ? (hi - 1) % ku + 1 : ku;
        int ct0 = (int)((long)nct * sl / slices), ct1 = (int)((long)nct * (sl + 1) / slices);
        for (int n = 0; n < N; n++)
            k_small_layout(x + (long)n * C * HW + (long)ct0 * nr * HW, xq + (long)ct0 * ts + (long)n * nr,
                           k_min(C - ct0 * nr, (ct1 - ct0) * nr), (ct1 - ct0) * nr, 1, HW, nr, ts, (long)N * nr, 1,
                           HW);
        for (int g0 = u0; g0 < u1; g0 += G) {
            int g1 = k_min(g0 + G, u1);
            /* ap[unit][p][n][i] = dy[n][o0 + i][p], o0 the unit's first row */
            for (int u = g0; u < g1; u++) {
                int o0 = u * mr, rows = k_min(mr, K - o0);
                float *a = ap + (u - g0) * apu;
                /* a's runs of mr written whole, each from the unit's rows of
                 * one image, a few lines in L1: with the pixels innermost they
                 * went N mr floats apart, as scatters (5% of the call) */
                for (int n = 0; n < N; n++)
                    for (int p = 0; p < P; p++)
                        for (int i = 0; i < mr; i++)
                            a[((long)p * N + n) * mr + i] = i < rows ? dy[((long)n * K + o0 + i) * P + p] : 0.0f;
            }
            for (int c0 = ct0 * nr; c0 < k_min(C, ct1 * nr); c0 += nr) {
                /* each tap's sum over its pairs in order, a tile per unit: the
                 * segment of x once for the group, its units one after another */
                for (int t = 0; t < T; t++)
                    for (int k = 0; k < np[t]; k++) {
                        const float *bs = xq + (c0 / nr) * ts + (long)pq[t][k] * N * nr;
                        for (int u = g0; u < g1; u++) {
                            const float *as = ap + (u - g0) * apu + (long)pp[t][k] * N * mr;
                            float *tile = tiles + (u - g0) * tu + (long)t * mr * nr;
                            if (simd >= 16 && k == 0)
                                k_seg_8x32(1, &as, &bs, N, nr, 0, NULL, tile, nr);
                            else if (simd >= 16)
                                k_acc_8x32(1, &as, &bs, N, nr, 0, NULL, tile, nr);
                            else if (k == 0)
                                k_seg_4x24(1, &as, &bs, N, nr, 0, NULL, tile, nr);
                            else
                                k_acc_4x24(1, &as, &bs, N, nr, 0, NULL, tile, nr);
                        }
                    }
                for (int u = g0; u < g1; u++) {
                    int o0 = u * mr, rows = k_min(mr, K - o0);
                    const float *tu0 = tiles + (u - g0) * tu;
                    for (int i = 0; i < rows; i++)
                        for (int j = 0; j < nr && c0 + j < C; j++)
                            for (int t = 0; t < T; t++)
                                dw[((long)(o0 + i) * C + c0 + j) * T + t] =
                                    np[t] ? tu0[((long)t * mr + i) * nr + j] : 0.0f;
                }
            }
            if (db && sl == 0)   /* the images in order, each its pixels in order; slice 0's units */
                for (int u = g0; u < g1; u++) {
                    int o0 = u * mr, rows = k_min(mr, K - o0);
                    for (int i = 0; i < rows; i++) {
                        float s = 0.0f;
                        for (int n = 0; n < N; n++)
                            for (int p = 0; p < P; p++)
                                s += dy[((long)n * K + o0 + i) * P + p];
                        db[o0 + i] = s;
                    }
                }
        }
    }
}

/* The epilogue of an inference output: bias, batchnorm, relu. */
static inline float k_small_out(float v, const float *restrict b, const float *restrict gamma,
                                const float *restrict beta, const float *restrict mean, const float *restrict var,
                                float eps, int relu, int o)
{
    v += b ? b[o] : 0.0f;
    if (gamma)
        v = (v - mean[o]) * (gamma[o] / sqrtf(var[o] + eps)) + beta[o];
    return relu && !(v > 0.0f) ? 0.0f : v;
}

/* k_conv2d_small_dot's GEMMs over the kernels' rows, for planes of 9 to
 * 16 pixels: colt[n][c * T + t][16 pixels], zeros off the plane and past
 * P; tiles of k_small_rows_mr rows, the last one moved back to end at K
 * (K >= 16) and writing only the rows that are its own. */
static void k_small_rows(const float *restrict x, const float *restrict w, const float *restrict b,
                         const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                         const float *restrict var, float *restrict y, float *restrict ws, int N, int C, int H, int W,
                         int K, int R, int S, int stride, int pad, int OH, int OW, float eps, int relu, int simd,
                         int lo, int hi)
{
    int T = R * S, P = OH * OW, CT = C * T, mr = k_small_rows_mr(simd);
    float *colt = ws, tile[16 * 16];
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int r = 0; r < R; r++)
                for (int s2 = 0; s2 < S; s2++) {
                    float *d = colt + ((long)n * CT + (long)c * T + r * S + s2) * 16;
                    for (int p = 0; p < 16; p++) {
                        int ih = p / OW * stride + r - pad, iw = p % OW * stride + s2 - pad;
                        d[p] = p < P && ih >= 0 && ih < H && iw >= 0 && iw < W
                                   ? x[(((long)n * C + c) * H + ih) * W + iw]
                                   : 0.0f;
                    }
                }
    for (int u = lo; u < hi; u++) {
        int o0 = u * mr, a0 = k_min(o0, K - mr);
        for (int n = 0; n < N; n++) {
            const float *a = w + (long)a0 * CT, *bt = colt + (long)n * CT * 16;
            if (simd >= 16)
                k_rows_16x16(1, &a, &bt, CT, 16, CT, NULL, tile, 16);
            else
                k_rows_4x16(1, &a, &bt, CT, 16, CT, NULL, tile, 16);
            for (int o = o0; o < k_min(o0 + mr, K); o++)
                for (int p = 0; p < P; p++)
                    y[((long)n * K + o) * P + p] =
                        k_small_out(tile[(o - a0) * 16 + p], b, gamma, beta, mean, var, eps, relu, o);
        }
    }
}

/* k_conv2d_small_dot for one group of N images. */
static void k_small_dots(const float *restrict x, const float *restrict w, const float *restrict b,
                         const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                         const float *restrict var, float *restrict y, float *restrict ws, int N, int C, int H, int W,
                         int K, int R, int S, int stride, int pad, int OH, int OW, float eps, int relu, int simd,
                         int lo, int hi)
{
    int T = R * S, P = OH * OW, CT = C * T, V = simd >= 16 ? 16 : 8, nv = CT / V, mr = k_dot_mr(simd);
    long ct = k_rup(CT, 16);
    if (P > 8) {
        k_small_rows(x, w, b, gamma, beta, mean, var, y, ws, N, C, H, W, K, R, S, stride, pad, OH, OW, eps, relu,
                     simd, lo, hi);
        return;
    }
    float *col = ws, *zero = col + (long)N * P * ct;
    /* col[n][p][c * T + t] = x[n][c][ih][iw] at tap t of output pixel p, 0
     * off the plane (and past CT) */
    for (long i = 0; i < ct; i++)
        zero[i] = 0.0f;
    for (int n = 0; n < N; n++)
        for (int p = 0; p < P; p++) {
            float *d = col + ((long)n * P + p) * ct;
            int oh = p / OW, ow = p % OW;
            for (int c = 0; c < C; c++)
                for (int r = 0; r < R; r++)
                    for (int s2 = 0; s2 < S; s2++) {
                        int ih = oh * stride + r - pad, iw = ow * stride + s2 - pad;
                        d[(long)c * T + r * S + s2] = ih >= 0 && ih < H && iw >= 0 && iw < W
                                                          ? x[(((long)n * C + c) * H + ih) * W + iw]
                                                          : 0.0f;
                    }
            for (long i = CT; i < ct; i++)
                d[i] = 0.0f;
        }
    const float *a[4], *bb[K_DOT_NR];
    float out[16];
    for (int u = lo; u < hi; u++) {
        int o0 = u * mr, rows = k_min(mr, K - o0);
        for (int i = 0; i < mr; i++)
            a[i] = i < rows ? w + (long)(o0 + i) * CT : zero;
        for (int n = 0; n < N; n++)
            for (int p0 = 0; p0 < P; p0 += K_DOT_NR) {
                for (int j = 0; j < K_DOT_NR; j++)
                    bb[j] = p0 + j < P ? col + ((long)n * P + p0 + j) * ct : zero;
                k_dot(simd, nv, a, bb, out);
                for (int i = 0; i < rows; i++)
                    for (int j = 0; j < K_DOT_NR && p0 + j < P; j++) {
                        float v = out[i * K_DOT_NR + j];
                        for (int q = nv * V; q < CT; q++)   /* the rest, in order */
                            v += a[i][q] * bb[j][q];
                        y[((long)n * K + o0 + i) * P + p0 + j] =
                            k_small_out(v, b, gamma, beta, mean, var, eps, relu, o0 + i);
                    }
            }
    }
}

void k_conv2d_small_dot(const float *restrict x, const float *restrict w, const float *restrict b,
                        const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                        const float *restrict var, float *restrict y, float *restrict ws, int N, int C, int H, int W,
                        int K, int R, int S, int stride, int pad, int OH, int OW, float eps, int relu, int simd, int lo,
                        int hi)
{
    if (lo >= hi)
        return;
    int g = k_small_dot_group(N, C, R, S, OH, OW);
    for (int n0 = 0; n0 < N; n0 += g)
        k_small_dots(x + (long)n0 * C * H * W, w, b, gamma, beta, mean, var, y + (long)n0 * K * OH * OW, ws,
                     k_min(g, N - n0), C, H, W, K, R, S, stride, pad, OH, OW, eps, relu, simd, lo, hi);
}
