/* The run function of an emitted module (aot/aot.c): an object file holds
 * the module's kernel calls, one arena with its weights in it, the scratch,
 * and a NAME_run that hands all of them to k_aot_run. Written here, in the
 * kernels' C, so that the object carries it as bitcode like any kernel and
 * needs no library of ours at link time.
 *
 * Thread-safe: one arena serves every caller, so a spin lock (atomic
 * builtins, no libc) lets one run at a time; nothing is allocated per call. */
#include "k_kernels.h"

int k_aot_run(char *base, float *ws, const KAotStep *steps, const int *units, int nsteps, const long long *io,
              const float *norm, const int *sel, int *lock, const float *images, float *scores, int n)
{
    if (n < 0 || (n > 0 && (!images || !scores)))
        return -1;
    const long long in_off = io[0], out_off = io[1], B = io[2], C = io[3], HW = io[4], K = io[5], S = io[6];
    while (__atomic_exchange_n(lock, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(lock, __ATOMIC_RELAXED))
            ;
    float *x = (float *)(base + in_off);
    const float *out = (const float *)(base + out_off);
    for (long long at = 0; at < n; at += B) {
        long long cnt = n - at < B ? n - at : B;
        /* as the loader normalizes: (v - mean) / std, per channel */
        for (long long i = 0; i < B; i++)
            for (long long c = 0; c < C; c++) {
                float *d = x + (i * C + c) * HW;
                const float *s = images + ((at + i) * C + c) * HW;
                float mean = norm[c], std = norm[C + c];
                for (long long p = 0; p < HW; p++)
                    d[p] = i < cnt ? (s[p] - mean) / std : 0.0f;   /* past n: zeros, scores unread */
            }
        for (int k = 0; k < nsteps; k++)
            steps[k](base, ws, 0, units[k]);
        for (long long i = 0; i < cnt; i++)
            for (long long j = 0; j < S; j++)
                scores[(at + i) * S + j] = out[i * K + sel[j]];
    }
    __atomic_store_n(lock, 0, __ATOMIC_RELEASE);
    return 0;
}
