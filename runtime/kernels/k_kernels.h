/* The kernels the generated code calls. They are written once, in plain C,
 * and compiled twice: natively (the reference the tests compare with) and to
 * LLVM bitcode that the JIT links into each model's module, where the shape
 * arguments become constants, the calls are inlined and O3 vectorizes the
 * loops for the host CPU (Glow's libjit and PostgreSQL's llvmjit do the same).
 * So: shapes are ordinary int arguments here, and nothing here allocates or
 * calls libc other than libm.
 *
 * Threads. Every kernel ends in (int lo, int hi): it computes the units
 * [lo, hi) of its parallel dimension, which each kernel names ("units:").
 * The thread pool splits [0, units) into contiguous ranges, one per thread.
 * A unit's result never depends on how the units were split: no kernel
 * reduces across units, so a result is bit for bit the same whatever the
 * thread count. Sums over the batch that feed a weight gradient are done in
 * a fixed number of chunks (the caller's G) and then added in chunk order by
 * k_sum_parts.
 *
 * Scratch. Kernels with a `ws` argument get a per-thread scratch area of the
 * size the matching *_ws function gives (in floats); it holds nothing between
 * calls.
 *
 * simd: the host's vector width in floats (16 with AVX-512F, else 8); the
 * kernels that tile for registers choose their tile from it. A constant in
 * every JIT'ed call, so only one tile's code survives.
 *
 * Layout: NCHW, row-major, float32; labels are int32. */
#ifndef K_KERNELS_H
#define K_KERNELS_H

/* --- the reference GEMM the JIT test uses: C[M,N] = A[M,K] B[K,N] (+ C) --- */
void k_gemm(int M, int N, int K, const float *restrict A, const float *restrict B, float *restrict C,
            int accumulate);

/* --- convolution: x [N,C,H,W], w [K,C,R,S], b [K] or NULL, y [N,K,OH,OW] --- */
/* Scratch per thread for any of the three conv kernels of this shape. */
long k_conv2d_ws(int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd);
/* y = conv(x, w) + b. units: output rows, N*OH of them (row u: image u / OH,
 * row u % OH), so a single image splits over threads too; with kt > 1, kt
 * groups of output channels times the rows (kt * N*OH units), for the few
 * rows of a small image. */
void k_conv2d_fwd(const float *restrict x, const float *restrict w, const float *restrict b, float *restrict y,
                  float *restrict ws, int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int OH,
                  int OW, int kt, int simd, int lo, int hi);
/* The kt codegen passes for `rows` output rows (N*OH) and K channels over
 * `threads` threads (0: not known): 1 unless the rows are few, then one
 * group of register tiles of channels per thread. */
int k_conv2d_groups(long rows, int K, int simd, int threads);
/* Inference: conv, then batchnorm on running statistics (folded into the
 * packed weights and the bias), then relu when `relu`. units: as k_conv2d_fwd. */
void k_conv2d_bn_fwd(const float *restrict x, const float *restrict w, const float *restrict b,
                     const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                     const float *restrict var, float *restrict y, float *restrict ws, int N, int C, int H, int W,
                     int K, int R, int S, int stride, int pad, int OH, int OW, float eps, int relu, int kt, int simd,
                     int lo, int hi);
/* dx = the gradient of y with respect to x, given dy (written, not added). units: images. */
void k_conv2d_bwd_x(const float *restrict dy, const float *restrict w, float *restrict dx, float *restrict ws, int N,
                    int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd, int lo,
                    int hi);
/* Weight gradient in G chunks of the batch: chunk g covers images
 * [g*N/G, (g+1)*N/G) and writes dwpart[g][K*C*R*S] (and, when dbpart is not
 * NULL, dbpart[g][K], the bias gradient). units: G * CS, unit u the input
 * channels (k_bwdw_unit) of part u % CS of chunk u / CS; the bias gradient
 * is part 0's. */
void k_conv2d_bwd_w(const float *restrict x, const float *restrict dy, float *restrict dwpart, float *restrict dbpart,
                    float *restrict ws, int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int OH,
                    int OW, int G, int CS, int simd, int lo, int hi);
/* The parts CS each chunk of a weight gradient of C input channels is cut
 * into on `threads` threads: 1 below 2 G threads; more, so that the G chunks
 * (plan_chunks: 8) do not leave threads idle, but no more units than
 * threads and none under 16 channels. The bits are the same for any CS. */
int k_bwdw_splits(int C, int G, int threads);
/* Whether k_conv2d_bwd_x computes dx of a strided conv as its stride^2
 * phases, each a stride-1 conv of dy (k_conv_bwdx.c), rather than by a
 * scatter-add. */
int k_bwdx_phases_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int simd);
/* Whether the forward conv (and a data gradient computed as a conv) runs
 * its GEMM from the padded input rows, in phases when strided, rather than
 * from an im2col (k_rows_ok in k_conv.h says where that was measured to pay). */
int k_conv_rows_ok(int C, int R, int S, int stride, int OW, int simd);
/* Convs of small planes (k_small.c): a GEMM per output pixel over the
 * batch. k_small_ok says whether a conv x [N,C,H,W] -> y [N,K,OH,OW]
 * qualifies (stride 1 or 2, at most 16 output pixels a plane; in inference
 * only with k_small_batch_ok's batch), k_small_ws the scratch. The shape
 * arguments are the conv's, x [N,C,H,W] -> y [N,K,OH,OW] with w
 * [K][C][R][S]. k_conv2d_small: y = conv(x, w) + b (b may be NULL); with
 * flip, its first argument is dy and its output dx (b NULL); units:
 * k_small_units(K) tiles of output channels (k_small_units(C) with flip).
 * k_conv2d_small_bn: inference's conv, batchnorm (with its running
 * statistics) and relu when asked, as k_conv2d_bn_fwd; units as the
 * forward's. k_conv2d_small_bwd_w: dw [K][C][R][S] and db [K] (db may be
 * NULL), whole sums, written; units: k_small_units(K) times its slices of x's
 * channels (k_small_bwd_w_slices: 1 but on several threads). The forward, data
 * gradient and k_conv2d_small_bn with split (k_small_split: many threads,
 * or an input of N images of img_floats larger than the w_floats weights)
 * take k_small_units times k_small_cols(N) units, unit u the tile u %
 * k_small_units of output channels and u / k_small_units of images. */
int k_small_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW);
/* Stride-2 4x4 and 5x5 convs into planes of up to 64 pixels, for
 * k_conv2d_small, k_conv2d_small_bn and k_conv2d_small_bwd_w alone (the
 * dot products and k_small_pix.c take k_small_ok's planes only). */
int k_small_strided_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW);
/* Stride-2 3x3 convs into planes of 5x5 to 7x7, for their data gradient
 * alone (k_conv2d_small with flip). */
int k_small_strided_dx_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW);
long k_small_ws(int N, int C, int H, int W, int K, int R, int S, int OH, int OW, int simd);
int k_small_batch_ok(int N, int simd);
/* Inference's small planes below a tile of images (!k_small_batch_ok): a
 * dot product per output of w's rows as they lie and the images' columns,
 * k_small_dot_group's images at a time, batchnorm and relu as
 * k_conv2d_small_bn; units: k_small_dot_units(K, OH * OW) tiles of output
 * channels. */
int k_small_dot_group(int N, int C, int R, int S, int OH, int OW);
int k_small_dot_units(int K, int P, int simd);
void k_conv2d_small_dot(const float *restrict x, const float *restrict w, const float *restrict b,
                        const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                        const float *restrict var, float *restrict y, float *restrict ws, int N, int C, int H, int W,
                        int K, int R, int S, int stride, int pad, int OH, int OW, float eps, int relu, int simd, int lo,
                        int hi);
/* Inference's small planes at k_small_pix_ok batches (k_small_pix.c): the
 * GEMMs of k_conv2d_small_bn with images as the tile's rows and output
 * channels as its vectors, from weights k_conv2d_small_prep laid out and
 * scaled by the batchnorm beforehand into pre (k_small_pre_floats of them;
 * units: k_small_pre_units(K) tiles of output channels); the same bits as
 * k_conv2d_small_bn. k_conv2d_small_pix: units the same tiles, scratch
 * k_small_pix_ws. */
int k_small_pix_ok(int N, int simd);
int k_small_pre_units(int K, int simd);
long k_small_pre_floats(int C, int K, int R, int S, int simd);
long k_small_pix_ws(int N, int C, int H, int W);
void k_conv2d_small_prep(const float *restrict w, const float *restrict b, const float *restrict gamma,
                         const float *restrict beta, const float *restrict mean, const float *restrict var,
                         float *restrict pre, int C, int K, int R, int S, float eps, int simd, int lo, int hi);
void k_conv2d_small_pix(const float *restrict x, const float *restrict pre, float *restrict y, float *restrict ws,
                        int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW, int relu,
                        int simd, int lo, int hi);
int k_small_units(int K, int simd);
int k_small_cols(int n, int simd);
int k_small_split(int units, int threads, int N, long img_floats, long w_floats, int simd);
void k_conv2d_small(const float *restrict x, const float *restrict w, const float *restrict b, float *restrict y,
                    float *restrict ws, int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int OH,
                    int OW, int flip, int split, int simd, int lo, int hi);
void k_conv2d_small_bn(const float *restrict x, const float *restrict w, const float *restrict b,
                       const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                       const float *restrict var, float *restrict y, float *restrict ws, int N, int C, int H, int W,
                       int K, int R, int S, int stride, int pad, int OH, int OW, float eps, int relu, int split,
                       int simd, int lo, int hi);
int k_small_bwd_w_slices(int N, int C, int H, int W, int K, int OH, int OW, int simd, int threads);
void k_conv2d_small_bwd_w(const float *restrict x, const float *restrict dy, float *restrict dw, float *restrict db,
                          float *restrict ws, int N, int C, int H, int W, int K, int R, int S, int stride, int pad,
                          int OH, int OW, int slices, int simd, int lo, int hi);
/* Winograd F(2x2, 3x3) (k_wino.c) for 3x3 convs with stride 1 and padding 1:
 * k_wino_ok says whether the shape qualifies (x [N,C,H,W] -> y [N,K,OH,OW]).
 * k_conv2d_wino computes y = conv(x, w) + b, the batchnorm on running
 * statistics folded in when gamma is not NULL, then relu when `relu`; with
 * flip = 1, x is dy [N,K',H,W] of a conv with weights w [K'][K][3][3] and y
 * its dx (C = K' input channels here, K outputs). units: images; with
 * groups > 1, groups * N: unit g N + n computes image n's g-th range of
 * output channels (k_wino_groups), the same sums. */
int k_wino_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW);
/* The same for an inference forward (no gradient of it is taken): fewer
 * channels qualify, as measured for that kernel alone. */
int k_wino_infer_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW);
long k_wino_ws(int C, int H, int W, int K, int simd);
/* How many groups of output channels a Winograd conv of N images into K
 * channels splits into on `threads` threads (0: not known): with fewer
 * images than threads, one image would run on one thread. */
int k_wino_groups(int N, int K, int simd, int threads);
void k_conv2d_wino(const float *restrict x, const float *restrict w, const float *restrict b,
                   const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                   const float *restrict var, const float *restrict pre, float *restrict y, float *restrict ws, int N,
                   int C, int H, int W, int K, float eps, int relu, int flip, int simd, int groups, int lo, int hi);
/* A conv's transformed weights U (and their batchnorm scale), flipped as
 * the call's flip: k_conv2d_wino_prep computes them into pre
 * (k_wino_pre_floats of them), and k_conv2d_wino, given pre, reads them
 * there instead of computing them on each of its threads; the same U to
 * the bit. An inference conv's once (its weights do not change from one
 * call to the next: at batch 1 that transform was a third of the call); a
 * training conv's before each call, on all threads. units: register tiles
 * of output channels, k_wino_pre_units of them (either size). Scratch:
 * 2 K + 32 floats. */
long k_wino_pre_floats(int C, int K, int simd);
int k_wino_pre_units(int K, int simd);
/* Whether a call of N images of H x W (F(4x4) when four) gains enough by
 * it to give U the room. */
int k_wino_pre_pays(int N, int H, int W, int four);
void k_conv2d_wino_prep(const float *restrict w, const float *restrict b, const float *restrict gamma,
                        const float *restrict beta, const float *restrict mean, const float *restrict var,
                        float *restrict pre, float *restrict ws, int C, int K, int flip, float eps, int simd, int lo,
                        int hi);
/* The same forward (no flip) where only a part of y is read: output rows
 * < OH and columns < OW (a pool after it drops the rest), and with outkeep,
 * only the output channels k with outkeep[k] != 0 (a mask multiplies the
 * others by 0); with mask [N][K] and *gen != 0, only the images whose mask
 * is not 0 on every such channel. With inkeep, input channels c with
 * inkeep[c] == 0 are taken to be zeros (a mask switched them off) and left
 * out of the sums. The part read is k_conv2d_wino's, the same sums without
 * the zero terms (to the sign of a zero); every other element is
 * k_conv2d_wino's or 0. With apply (and relu), y is what k_mask_apply_keep
 * with its relu makes of that output, to the bit: each channel k of image n
 * times (*gen ? mask[n][k] : 1) outkeep[k], then the relu. pre as
 * k_conv2d_wino's, read only where the keep vectors keep every channel (or
 * there are none): its U holds every channel. Scratch: k_wino_ws. */
void k_conv2d_wino_part(const float *restrict x, const float *restrict w, const float *restrict b,
                        const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                        const float *restrict var, const float *restrict pre, const float *restrict inkeep,
                        const float *restrict outkeep, const float *restrict mask, const int *restrict gen,
                        float *restrict y, float *restrict ws, int N, int C, int H, int W, int K, float eps, int relu,
                        int OH, int OW, int apply, int simd, int groups, int lo, int hi);
/* The same by F(4x4, 3x3) (k_wino4.c), for the same shapes, the weight
 * gradient too (as k_conv2d_wino_bwd_w): 4x fewer multiplies than the
 * direct conv instead of 2.25x, rounding a little more; k_wino4_pays says
 * whether it is faster than F(2x2) at width W. */
int k_wino4_pays(int W);
/* k_conv2d_wino_part by F(4x4, 3x3), for the codegen's convs with keep
 * vectors or masks whose every row and column is read (OH x OW: the whole
 * output, H x W at padding 1, and from it the padding, 0 to 2) and whose
 * channels are not split (groups 1; more run every channel in group 0's
 * units): the same channels, images and mask application, pre read as
 * there, k_conv2d_wino4's sums without the zero terms. Scratch:
 * k_wino4_ws. */
void k_conv2d_wino4_part(const float *restrict x, const float *restrict w, const float *restrict b,
                         const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                         const float *restrict var, const float *restrict pre, const float *restrict inkeep,
                         const float *restrict outkeep, const float *restrict mask, const int *restrict gen,
                         float *restrict y, float *restrict ws, int N, int C, int H, int W, int K, float eps,
                         int relu, int OH, int OW, int apply, int simd, int groups, int lo, int hi);
/* The same for an inference forward of N images with C input channels of
 * H x W and simd-float vectors (the forward alone measured per vector
 * width). */
int k_wino4_infer_pays(int N, int C, int H, int W, int simd);
/* F(4x4, 3x3) in training at paddings 0 and 2 too (F(2x2) and the
 * inference and part kernels take padding 1 only): a valid 3x3 conv's
 * forward and data gradient (the conv of dy the other way, padding 2), and
 * where k_wino4_bwd_w_ok its weight gradient. k_conv2d_wino4 and its
 * weight gradient take the padding: x [N,C,H,W] into [N,K,H+2pad-2,W+2pad-2]. */
int k_wino4_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW);
/* whether an inference forward at padding 0 or 2 may run by F(4x4) (its
 * part kernel where one runs), and whether it pays with C inputs of H x W,
 * K outputs and simd-float vectors */
int k_wino4_infer_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW);
int k_wino4_pad_pays(int C, int H, int W, int K, int simd);
int k_wino4_bwd_w_ok(int C, int H, int W, int K, int pad);
/* The same for the weight gradient of a stride-2 5x5 conv through its input's phases (pass_phase),
 * where the alternative is the direct stride-2 kernel, not a direct 3x3 one. */
int k_wino4_bwd_w_phases_ok(int C, int H, int W, int K, int pad);
long k_wino4_ws(int C, int H, int W, int K, int pad, int simd);
void k_conv2d_wino4(const float *restrict x, const float *restrict w, const float *restrict b,
                    const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                    const float *restrict var, const float *restrict pre, float *restrict y, float *restrict ws, int N,
                    int C, int H, int W, int K, int pad, float eps, int relu, int flip, int simd, int groups, int lo,
                    int hi);
/* Its U precomputed, as k_conv2d_wino_prep's. */
long k_wino4_pre_floats(int C, int K, int simd);
void k_conv2d_wino4_prep(const float *restrict w, const float *restrict b, const float *restrict gamma,
                         const float *restrict beta, const float *restrict mean, const float *restrict var,
                         float *restrict pre, float *restrict ws, int C, int K, int flip, float eps, int simd, int lo,
                         int hi);
void k_conv2d_wino4_bwd_w(const float *restrict x, const float *restrict dy, float *restrict dwpart,
                          float *restrict dbpart, float *restrict ws, int N, int C, int H, int W, int K, int pad,
                          int G, int CS, int simd, int lo, int hi);
/* 5x5 convolutions, stride 1, padding 2 (k_wino25_ok: 16 channels a side
 * and more in training, any padding up to 4 there; k_wino25_infer_ok in
 * inference, padding 2), by F(2x2, 5x5)
 * (k_wino4.c): 2.8x fewer multiplies than the direct conv, rounding as
 * F(4x4, 3x3). The forward and the data gradient
 * (flip) as k_conv2d_wino4, its U made beforehand as k_conv2d_wino4_prep
 * (k_wino4_pre_floats: 36 values a kernel either way), the part kernel as
 * k_conv2d_wino4_part's and the weight gradient as k_conv2d_wino4_bwd_w.
 * k_conv2d_wino25 and its weight gradient take the padding (x [N,C,H,W]
 * into [N,K,H+2pad-4,W+2pad-4]; the data gradient is the conv of dy the
 * other way with padding 4 - pad). Scratch: k_wino25_ws. */
int k_wino25_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW);
/* whether an inference forward (a module's conv: fewer channels) runs by
 * F(2x2, 5x5) */
int k_wino25_infer_ok(int C, int H, int W, int K, int R, int S, int stride, int pad, int OH, int OW);
/* whether the weight gradient of such a conv (x [N,C,H,W], K outputs,
 * padding pad) runs by F(2x2, 5x5) too (k_conv2d_wino25_bwd_w) */
int k_wino25_bwd_w_ok(int C, int H, int W, int K, int pad);
long k_wino25_ws(int C, int H, int W, int K, int pad, int simd);
void k_conv2d_wino25(const float *restrict x, const float *restrict w, const float *restrict b,
                     const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                     const float *restrict var, const float *restrict pre, float *restrict y, float *restrict ws,
                     int N, int C, int H, int W, int K, int pad, float eps, int relu, int flip, int simd, int groups,
                     int lo, int hi);
void k_conv2d_wino25_prep(const float *restrict w, const float *restrict b, const float *restrict gamma,
                          const float *restrict beta, const float *restrict mean, const float *restrict var,
                          float *restrict pre, float *restrict ws, int C, int K, int flip, float eps, int simd, int lo,
                          int hi);
void k_conv2d_wino25_part(const float *restrict x, const float *restrict w, const float *restrict b,
                          const float *restrict gamma, const float *restrict beta, const float *restrict mean,
                          const float *restrict var, const float *restrict pre, const float *restrict inkeep,
                          const float *restrict outkeep, const float *restrict mask, const int *restrict gen,
                          float *restrict y, float *restrict ws, int N, int C, int H, int W, int K, float eps,
                          int relu, int OH, int OW, int apply, int simd, int groups, int lo, int hi);
void k_conv2d_wino25_bwd_w(const float *restrict x, const float *restrict dy, float *restrict dwpart,
                           float *restrict dbpart, float *restrict ws, int N, int C, int H, int W, int K, int pad,
                           int G, int CS, int simd, int lo, int hi);
/* The weight gradient of such a conv (x [N,C,H,W], dy [N,K,H,W]) by the
 * same transforms, for the shapes k_wino_bwd_w_ok accepts, in G chunks of the batch as k_conv2d_bwd_w (dwpart,
 * dbpart and the units G * CS alike). */
int k_wino_bwd_w_ok(int C, int H, int W, int K);
/* Which kernel takes the weight gradient of a 3x3 conv at padding 1 of x
 * [N,C,H,W] into K channels, as measured: 4 F(4x4)'s
 * (k_conv2d_wino4_bwd_w; only where `four`), 2 F(2x2)'s
 * (k_conv2d_wino_bwd_w), 0 the direct kernel. */
int k_wino_bwd_w_pick(int C, int H, int W, int K, int simd, int four);
void k_conv2d_wino_bwd_w(const float *restrict x, const float *restrict dy, float *restrict dwpart,
                         float *restrict dbpart, float *restrict ws, int N, int C, int H, int W, int K, int G, int CS,
                         int simd, int lo, int hi);
/* out[i] = part[0][i] + part[1][i] + ... + part[G-1][i], in that order. units: elements i < len. */
void k_sum_parts(const float *restrict part, float *restrict out, int G, int len, int lo, int hi);

/* --- a stride-2 5x5 conv's phases (k_phase.c, pass_phase.c): x [N,C,H,W] <-> xp [N,4C,HP,WP], channel
 * f*C + c of xp (f = 2 alpha + beta) at (u, v) being x[c][2u + alpha - off][2v + beta - off] (0 outside
 * x); w [K,C,R,R] (R <= 6) <-> wp [K,4C,3,3], wp[o][f*C + c][a][b] = w[o][c][2a + alpha][2b + beta]
 * (0 past R). Each pair is the other's adjoint. --- */
/* xp from x (every element written). units: input planes, N*C. */
void k_space_to_depth(const float *restrict x, float *restrict xp, int N, int C, int H, int W, int HP, int WP, int off,
                      int lo, int hi);
/* dx from dxp (every element written; rows and columns past xp's get 0). units: N*C. */
void k_depth_to_space(const float *restrict dxp, float *restrict dx, int N, int C, int H, int W, int HP, int WP,
                      int off, int lo, int hi);
/* wp from w. units: K. */
void k_phase_w(const float *restrict w, float *restrict wp, int K, int C, int R, int lo, int hi);
/* dw from dwp (the taps past R dropped). units: K. */
void k_phase_w_grad(const float *restrict dwp, float *restrict dw, int K, int C, int R, int lo, int hi);

/* --- linear: x [B,F], w [O,F] (PyTorch's layout), b [O] or NULL, y [B,O] --- */
long k_linear_ws(int B, int F, int O, int simd);
/* y = x w^T + b. units: rows b < B; with og > 1, og groups of outputs times
 * the rows (og * B units), so that a batch of one splits over threads. */
void k_linear_fwd(const float *restrict x, const float *restrict w, const float *restrict b, float *restrict y,
                  float *restrict ws, int B, int F, int O, int og, int simd, int lo, int hi);
/* dx = dy w. units: rows b < B. */
void k_linear_bwd_x(const float *restrict dy, const float *restrict w, float *restrict dx, float *restrict ws, int B,
                    int F, int O, int simd, int lo, int hi);
/* dw = dy^T x, db = column sums of dy (when db is not NULL), summed over b
 * in order. units: output rows o < O. */
void k_linear_bwd_w(const float *restrict x, const float *restrict dy, float *restrict dw, float *restrict db,
                    float *restrict ws, int B, int F, int O, int simd, int lo, int hi);

/* --- batchnorm over [N,C,HW] (HW = 1 after a linear layer) --- */
/* Training: batch mean and biased variance per channel; stats[0][c] = mean,
 * stats[1][c] = 1/sqrt(var+eps); the running statistics move by `momentum`
 * toward the batch's (running_var with the unbiased variance), as PyTorch
 * does. units: channels. */
void k_bn_fwd_train(const float *restrict x, const float *restrict gamma, const float *restrict beta,
                    float *restrict y, float *restrict stats, float *restrict run_mean, float *restrict run_var,
                    int N, int C, int HW, float momentum, float eps, int relu, int lo, int hi);
/* Inference: the running statistics. units: channels. */
void k_bn_fwd_eval(const float *restrict x, const float *restrict gamma, const float *restrict beta,
                   const float *restrict run_mean, const float *restrict run_var, float *restrict y, int N, int C,
                   int HW, float eps, int lo, int hi);
/* dgamma, dbeta and dx of the training-mode batchnorm; relu = 1: of
 * relu(batchnorm) (the forward's relu fused), dy the relu output's gradient.
 * units: channels. */
void k_bn_bwd(const float *restrict x, const float *restrict dy, const float *restrict gamma,
              const float *restrict stats, const float *restrict beta, float *restrict dx, float *restrict dgamma,
              float *restrict dbeta, int N, int C, int HW, int relu, int lo, int hi);

/* A training batchnorm, then y = its output * (*generators ? m : 1) * keep[c]
 * per plane (n, c) (k_mask_apply_keep), then relu when relu = 1: one pass,
 * the batchnorm's output never written. The same stats and y as the two
 * kernels, to the bit. units: channels. */
void k_bn_mask_fwd_train(const float *restrict x, const float *restrict gamma, const float *restrict beta,
                         const float *restrict m, const float *restrict keep, const int *restrict generators,
                         float *restrict y, float *restrict stats, float *restrict run_mean, float *restrict run_var,
                         int N, int C, int HW, float momentum, float eps, int relu, int lo, int hi);
/* Its gradient: dm as k_mask_apply_keep_bwd, dx, dgamma and dbeta as
 * k_bn_bwd on the gradient k_mask_apply_keep_bwd would have written, to the
 * bit. dy: of the fused output. units: channels. */
void k_bn_mask_bwd(const float *restrict x, const float *restrict dy, const float *restrict gamma,
                   const float *restrict stats, const float *restrict beta, const float *restrict m,
                   const float *restrict keep, const int *restrict generators, float *restrict dx,
                   float *restrict dgamma, float *restrict dbeta, float *restrict dm, int N, int C, int HW, int relu,
                   int lo, int hi);

/* bn_mask and the max pooling (k, stride st) after it, fused: only the
 * pooled planes [OH,OW] are written to y; each plane of bn_mask's output
 * is made in ws and pooled from there. ws: k_bn_pool_ws floats. The same
 * bits as the three kernels. Without a mask (m, keep, generators NULL): a
 * batchnorm (relu = 1: and its relu) and the pooling, the same bits as
 * k_bn_fwd_train and k_maxpool_fwd. units: channels. */
void k_bn_mask_pool_fwd_train(const float *restrict x, const float *restrict gamma, const float *restrict beta,
                              const float *restrict m, const float *restrict keep, const int *restrict generators,
                              float *restrict y, float *restrict stats, float *restrict run_mean,
                              float *restrict run_var, float *restrict ws, int N, int C, int H, int W, int k, int st,
                              int OH, int OW, float momentum, float eps, int relu, int lo, int hi);
/* Its gradient, dy the pooled output's: k_maxpool_bwd's gradient of each
 * plane made again in ws, then as k_bn_mask_bwd (without a mask, dm NULL:
 * as k_bn_bwd). units: channels. */
void k_bn_mask_pool_bwd(const float *restrict x, const float *restrict dy, const float *restrict gamma,
                        const float *restrict stats, const float *restrict beta, const float *restrict m,
                        const float *restrict keep, const int *restrict generators, float *restrict dx,
                        float *restrict dgamma, float *restrict dbeta, float *restrict dm, float *restrict ws, int N,
                        int C, int H, int W, int k, int st, int OH, int OW, int relu, int lo, int hi);
/* Floats of one plane in their scratch (a cache line's multiple); whether
 * the backward keeps a channel's N planes of the pooling gradient from its
 * first pass for its second (up to 1 MB: in L2), else makes them again;
 * the floats of its scratch. */
static inline long k_bn_pool_plane(int H, int W) { return ((long)H * W + 15) / 16 * 16; }
static inline int k_bn_pool_keeps(int N, int H, int W) { return N * k_bn_pool_plane(H, W) <= 262144; }
static inline long k_bn_pool_ws(int N, int H, int W)
{
    return (1 + (k_bn_pool_keeps(N, H, W) ? N : 1)) * k_bn_pool_plane(H, W);
}

/* --- elementwise. units: elements --- */
void k_relu_fwd(const float *restrict x, float *restrict y, int lo, int hi);
/* dx = dy where y > 0, else 0. */
void k_relu_bwd(const float *restrict y, const float *restrict dy, float *restrict dx, int lo, int hi);
void k_add(const float *restrict a, const float *restrict b, float *restrict y, int lo, int hi);
/* Inverted dropout: element i is kept when a hash of (*seed, salt, i) says so
 * (probability 1 - p) and scaled by 1/(1-p). The backward pass recomputes the
 * same decision, so no mask is stored. */
void k_dropout_fwd(const float *restrict x, float *restrict y, const unsigned long long *restrict seed, int salt,
                   float p, int lo, int hi);
void k_dropout_bwd(const float *restrict dy, float *restrict dx, const unsigned long long *restrict seed, int salt,
                   float p, int lo, int hi);

/* --- pooling over planes [H,W] -> [OH,OW], no padding. units: planes (N*C) --- */
void k_maxpool_fwd(const float *restrict x, float *restrict y, int H, int W, int k, int s, int OH, int OW, int lo,
                   int hi);
/* The gradient goes to the first maximum of each window (row-major scan), summed where windows overlap. */
void k_maxpool_bwd(const float *restrict x, const float *restrict dy, float *restrict dx, int H, int W, int k, int s,
                   int OH, int OW, int lo, int hi);
void k_avgpool_fwd(const float *restrict x, float *restrict y, int H, int W, int k, int s, int OH, int OW, int lo,
                   int hi);
void k_avgpool_bwd(const float *restrict dy, float *restrict dx, int H, int W, int k, int s, int OH, int OW, int lo,
                   int hi);
/* Global average pool: y[p] = mean of plane p of x. */
void k_gap_fwd(const float *restrict x, float *restrict y, int HW, int lo, int hi);
void k_gap_bwd(const float *restrict dy, float *restrict dx, int HW, int lo, int hi);

/* --- loss --- */
/* rowloss[b] = logsumexp(logits[b]) - logits[b][labels[b]]. units: rows b < N. */
void k_ce_fwd(const float *restrict logits, const int *restrict labels, float *restrict rowloss, int N, int classes,
              int lo, int hi);
/* *out = mean of rowloss[0..N), summed in order. units: 1. */
void k_mean(const float *restrict rowloss, float *restrict out, int N, int lo, int hi);
/* dlogits = *dloss * (softmax(logits) - onehot(labels)) / N. units: rows. */
void k_ce_bwd(const float *restrict logits, const int *restrict labels, const float *restrict dloss,
              float *restrict dlogits, int N, int classes, int lo, int hi);

/* --- optimizer: PyTorch's SGD. g' = g + wd p; v = momentum v + g';
 * step = nesterov ? g' + momentum v : v (v when momentum > 0, else g');
 * p -= *lr * step. units: elements --- */
void k_sgd(float *restrict p, const float *restrict g, float *restrict v, const float *restrict lr, float momentum,
           float wd, int nesterov, int lo, int hi);

/* --- MwT (k_mwt.c): x [B,C,HW] the masked conv's input, w1 [Hd,C], w2 [K,Hd], b2 [K], m [B,K] --- */
/* m = relu(tanh(w2 relu(w1 gap(x)) + b2)); save[b] = gap(x) [C], the hidden layer [Hd], tanh [K]. units: rows. */
void k_mask_gen_fwd(const float *restrict x, const float *restrict w1, const float *restrict w2,
                    const float *restrict b2, float *restrict m, float *restrict save, int C, int HW, int Hd, int K,
                    int lo, int hi);
/* dx (written; acc + that when acc is not NULL) from dm; rows[b] = the gradients at the two pre-activations
 * [K + Hd], for _bwd_w. dx may be acc (a training graph's plan: in place). units: rows. */
void k_mask_gen_bwd_x(const float *restrict save, const float *restrict dm, const float *restrict w1,
                      const float *restrict w2, const float *acc, float *dx, float *restrict rows, int C, int HW,
                      int Hd, int K, int lo, int hi);
/* dw2 and db2 (units 0..K-1, a row each) and dw1 (units K..K+Hd-1), summed over rows in order. */
void k_mask_gen_bwd_w(const float *restrict save, const float *restrict rows, float *restrict dw1,
                      float *restrict dw2, float *restrict db2, int B, int C, int Hd, int K, int lo, int hi);
/* y = x * m per plane (b, k). units: planes B*K. */
void k_mask_apply_fwd(const float *restrict x, const float *restrict m, float *restrict y, int HW, int lo, int hi);
/* y = x * (*generators ? m : 1) * keep[k], keep the module's kernels (1) or not (0); relu = 1: then relu. units: planes.
 * y may be x (an inference graph's plan: in place). */
void k_mask_apply_keep(const float *x, const float *restrict m, const float *restrict keep,
                       const int *restrict generators, float *y, int HW, int K, int relu, int lo, int hi);
/* Its gradient: dx = dy * (*generators ? m : 1) * keep[k]; dm = keep[k] * sum(dy x), 0 without generators;
 * relu = 1: dy counts only where the forward's product was > 0. */
void k_mask_apply_keep_bwd(const float *restrict x, const float *restrict m, const float *restrict keep,
                           const int *restrict generators, const float *restrict dy, float *restrict dx,
                           float *restrict dm, int HW, int K, int relu, int lo, int hi);
void k_mask_apply_bwd(const float *restrict x, const float *restrict m, const float *restrict dy, float *restrict dx,
                      float *restrict dm, int HW, int lo, int hi);
/* rowstat[i] = { sum of cos(m_i, m_j) over j > i with the same label, their count, the same for other labels }.
 * units: (B+1)/2, unit u the rows u and B-1-u. ws: B floats. */
void k_mask_sim_rows(const int *restrict labels, const float *restrict m, float *restrict rowstat,
                     float *restrict ws, int B, int K, int lo, int hi);
/* out[0] += w * (mode 0: 1 - mean same-label similarity; mode 1: mean other-label similarity). units: 1. */
void k_mask_sim_loss(const float *restrict rowstat, float *restrict out, int B, int mode, float w, int lo, int hi);
/* dm = *dloss * scale * d(that term)/dm. units: rows. ws: B floats. */
void k_mask_sim_bwd(const int *restrict labels, const float *restrict m, const float *restrict dloss,
                    float *restrict dm, float *restrict ws, int B, int K, int mode, float scale, int lo, int hi);

/* --- scalar glue (k_graph.c). units: 1 --- */
void k_fill(float *restrict y, float v, int lo, int hi);            /* y[0] = v */
void k_scale(const float *restrict x, float *restrict y, float w, int lo, int hi);  /* y[0] = w x[0] */
void k_axpy(const float *restrict x, float *restrict y, float w, int lo, int hi);   /* y[0] += w x[0] */

/* --- a module's calibration (DESIGN.md: a logistic regression from module
 * c's logits to "is class c"), fitted by mwt_modules.c and applied there and
 * by an emitted one-class module's NAME_probability: both take their
 * features from here, so that the two agree --- */
#include <math.h>
static inline double k_calib_sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }
/* The features of one row of logits z [logits] for class `own`, into x;
 * returns how many. Up to 32 classes the logits themselves; past that the
 * own logit, the largest other logit and the own log-softmax. */
static inline int k_calib_features(int logits, int own, const float *z, double *x)
{
    if (logits <= 32) {
        for (int i = 0; i < logits; i++)
            x[i] = z[i];
        return logits;
    }
    double other = -INFINITY, top = z[0], sum = 0;
    for (int i = 0; i < logits; i++) {
        top = z[i] > top ? z[i] : top;
        if (i != own && z[i] > other)
            other = z[i];
    }
    for (int i = 0; i < logits; i++)
        sum += exp(z[i] - top);
    x[0] = z[own], x[1] = other, x[2] = z[own] - top - log(sum);
    return 3;
}

/* --- an emitted module's run (k_aot.c; aot/aot.c builds its arguments) --- */
#include <pthread.h>
typedef void (*KAotStep)(char *base, float *ws, int lo, int hi);
/* How many calls of an emitted module run at once (more wait), each with an
 * arena and a scratch of its own. */
#define K_AOT_SLOTS 4
/* The images a call's bulk graph takes at a time: an emitted module holds
 * its graph at batch 1 and, where it gives every image the same bits
 * (run_emit checks), one at this batch, its kernels chosen as at batch 1
 * (CgCalls.pin_batch): a call of n images runs n / K_AOT_BULK bulk runs,
 * then the rest one at a time, and a score never depends on how a caller
 * groups its images into calls. Both graphs run in one arena, which the
 * batch-1 graph's preparation fills for both. One call of 512 or 10000
 * images, one thread of a Sapphire Rapids Xeon, against the batch-1 graph
 * alone: SimCNN's shoes module 1.22-1.28x the images a second, modules of
 * VGG16 and ResNet18 (3x32x32) 1.48-1.72x and 1.24-1.27x. At 16 and 32
 * images SimCNN's gained less than at 8, at 4 less too. */
#define K_AOT_BULK 8
/* One of them: all zeros before the first call (glibc's and musl's
 * PTHREAD_MUTEX_INITIALIZER); on a cache line of its own. */
typedef struct KAotSlot {
    _Alignas(64) pthread_mutex_t mu;
    int ready;                 /* its arena holds the weights and what is prepared from them */
} KAotSlot;
/* Where calls wait while every slot is busy, for whichever frees first:
 * all zeros before the first call too (PTHREAD_COND_INITIALIZER as well). */
typedef struct KAotWait {
    _Alignas(64) pthread_mutex_t mu;
    pthread_cond_t freed;
    int waiting;               /* calls waiting: a call that frees a slot signals only then */
} KAotWait;
/* k_aot_run's io: the module's numbers, then K_AOT_GW for each graph (the
 * batch-1 graph first, then the bulk one where there is one). */
enum {
    K_AOT_C, K_AOT_HW, K_AOT_K, K_AOT_S, /* an image's channels and pixels, the logits, the scores */
    K_AOT_INIT,                          /* init's bytes, copied into a graph's arena at its first run */
    K_AOT_WS,                            /* a slot's scratch (bytes) */
    K_AOT_NSLOTS,
    K_AOT_ARENA,                         /* a slot's arena (bytes), where every graph runs */
    K_AOT_GRAPHS,                        /* 1 or 2 */
    K_AOT_G0                             /* the first graph's numbers */
};
enum {
    K_AOT_IN, K_AOT_OUT,                 /* byte offsets in its arena of the images [B, C, HW], the logits [B, K] */
    K_AOT_B,                             /* its batch */
    K_AOT_FIRST, K_AOT_PREP, K_AOT_STEPS, /* its steps: steps[FIRST ..), PREP of them prepare, STEPS in all */
    K_AOT_GW
};
/* n images (C x HW floats each, before normalization) through the module,
 * in a slot's arena (arenas + s * io[K_AOT_ARENA]; its scratch at wss + s *
 * io[K_AOT_WS]): K_AOT_BULK at a time by the bulk graph while as many are
 * left, then by the batch-1 graph. A run normalizes its images into the
 * arena at its graph's K_AOT_IN (norm: C means, then C stds), runs the
 * graph's steps after its preparation, steps[k](base, ws, 0, units[k]) in
 * order (one thread: all units), then per image the S scores out[sel[j]]
 * of the K logits; or, with cal, the S calibrated probabilities, each of
 * its class against all others (cal: S blocks one after the other, each
 * own, dim, then dim means, dim deviations, dim weights and the bias,
 * ModCalib's). A slot's arena gets init at its first call, then every
 * graph's preparation runs (what the other steps read from the weights).
 * Returns 0, or -1 for n < 0 or a NULL buffer. */
int k_aot_run(char *arenas, const char *init, char *wss, KAotSlot *slots, KAotWait *wait, const KAotStep *steps,
              const int *units, int nsteps, const long long *io, const float *norm, const int *sel,
              const double *cal, const float *images, float *scores, int n);
/* NAME_run's and NAME_probability's body: -2 (whatever n is) when this CPU
 * lacks a feature in need (k_aot_cpu_ok, asked once), else k_aot_run. */
int k_aot_entry(char *arenas, const char *init, char *wss, KAotSlot *slots, KAotWait *wait, const unsigned *need,
                const KAotStep *steps, const int *units, int nsteps, const long long *io, const float *norm,
                const int *sel, const double *cal, const float *images, float *scores, int n);
/* The CPU features a module was compiled for, as x86 CPUID bits in words:
 * [0] leaf 1 ecx, [1] leaf 7 ebx, [2] leaf 7 ecx, [3] leaf 7 edx, [4] leaf 7
 * subleaf 1 eax, [5] leaf 0x80000001 ecx, [6] the OS saves YMM (bit 0),
 * ZMM (bit 1) and APX's extended general registers (bit 2), [7] leaf 7
 * subleaf 1 edx. 1 when this CPU has them all (always off x86). */
#define K_AOT_CPU_WORDS 8
int k_aot_cpu_ok(const unsigned *need);

#endif
