/* The run function of an emitted module (aot/aot.c): an object file holds
 * the module's kernel calls (its graph at batch 1 and, mostly, its bulk
 * graph at K_AOT_BULK, which runs in the same arena), the arena's contents
 * before a run (weights, statistics), room for K_AOT_SLOTS arenas and
 * scratches, and a NAME_run that hands all of them to k_aot_run. Written here, in the kernels' C, so
 * that the object carries it as bitcode like any kernel and needs no library
 * of ours at link time.
 *
 * Thread-safe, and up to K_AOT_SLOTS calls at once: a call takes a free
 * slot (an arena, a scratch and a mutex), else waits for the first to be
 * freed, blocked, not spinning: with 64 threads on 2 cores, spinning waiters took
 * the CPU from the one call that held the only arena, 25x slower than one
 * thread. A slot's arena gets the weights at its first call (memcpy from
 * the constant copy; the rest of it is zeros, as the arena starts), so
 * unused slots cost address space only; nothing is allocated. This is the
 * one kernel that calls libc beyond libm: memcpy and the pthread mutex and
 * condition functions, which glibc (2.34 on) and musl keep in libc itself. */
#include "k_kernels.h"

#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* Whether this CPU, and the OS's saving of its registers, have every bit in
 * need[0..K_AOT_CPU_WORDS) (the words k_kernels.h lists). aot.c compiles it
 * and k_aot_entry (and NAME_run) for the baseline x86-64 whatever the
 * module's CPU, and k_aot_run, compiled for that CPU, as a call of its own:
 * nothing runs before the check that could use an instruction this CPU
 * lacks (not even a vzeroupper on the way out). */
int k_aot_cpu_ok(const unsigned *need)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned have[K_AOT_CPU_WORDS] = { 0 }, a, b, c, d;
    unsigned max = __get_cpuid_max(0, 0);
    if (max >= 1) {
        __cpuid(1, a, b, c, d);
        have[0] = c;
    }
    if (max >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        have[1] = b, have[2] = c, have[3] = d;
        if (a >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            have[4] = a, have[7] = d;
        }
    }
    if (__get_cpuid_max(0x80000000u, 0) >= 0x80000001u) {
        __cpuid(0x80000001u, a, b, c, d);
        have[5] = c;
    }
    if (have[0] & (1u << 27)) {   /* OSXSAVE: XCR0 says which registers the OS saves */
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        (void)hi;
        have[6] = ((lo & 0x6u) == 0x6u ? 1u : 0u) | ((lo & 0xe6u) == 0xe6u ? 2u : 0u) |
                  (lo & (1u << 19) ? 4u : 0u);
    }
    for (int i = 0; i < K_AOT_CPU_WORDS; i++)
        if ((have[i] & need[i]) != need[i])
            return 0;
#endif
    (void)need;
    return 1;
}

/* p = sigmoid(w . standardize(features(z)) + b), as mod_calib_score
 * computes it (one class's calibration, cal's layout: k_aot_run). */
static float calibrated(const double *cal, const float *z, int K)
{
    double x[33];
    int own = (int)cal[0], dim = (int)cal[1];
    const double *mean = cal + 2, *std = mean + dim, *w = std + dim;
    k_calib_features(K, own, z, x);
    double s = w[dim];
    for (int i = 0; i < dim; i++)
        s += w[i] * ((x[i] - mean[i]) / std[i]);
    return (float)k_calib_sigmoid(s);
}

/* 0 not yet asked, 1 this CPU runs the module, -1 it does not */
static int cpu_state;

/* The first free slot, lowest first: one thread keeps to slot 0 (one
 * arena warm in its caches, one copy of the weights), k threads to the
 * first k. When all are busy, the first to be freed: a call waits on
 * `wait`, blocked, and each call that frees a slot while some wait wakes
 * one. (Waiting on one slot's mutex would leave a caller behind a long
 * call while other slots free.) No wakeup is lost: a waiter looks at the
 * slots holding wait->mu, and a call frees its slot before it reads
 * `waiting`, which a waiter raises before it looks. */
static KAotSlot *take_slot(KAotSlot *slots, int nslots, KAotWait *wait, int *which)
{
    for (int s = 0; s < nslots; s++)
        if (pthread_mutex_trylock(&slots[s].mu) == 0) {
            *which = s;
            return &slots[s];
        }
    pthread_mutex_lock(&wait->mu);
    __atomic_add_fetch(&wait->waiting, 1, __ATOMIC_SEQ_CST);
    for (;;) {
        for (int s = 0; s < nslots; s++)
            if (pthread_mutex_trylock(&slots[s].mu) == 0) {
                __atomic_sub_fetch(&wait->waiting, 1, __ATOMIC_SEQ_CST);
                pthread_mutex_unlock(&wait->mu);
                *which = s;
                return &slots[s];
            }
        pthread_cond_wait(&wait->freed, &wait->mu);
    }
}

static void free_slot(KAotSlot *slot, KAotWait *wait)
{
    pthread_mutex_unlock(&slot->mu);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);   /* the unlock before the read: a waiter's scan sees the slot free, or this sees it waiting */
    if (__atomic_load_n(&wait->waiting, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&wait->mu);
        pthread_cond_signal(&wait->freed);
        pthread_mutex_unlock(&wait->mu);
    }
}

int k_aot_entry(char *arenas, const char *init, char *wss, KAotSlot *slots, KAotWait *wait, const unsigned *need,
                const KAotStep *steps, const int *units, int nsteps, const long long *io, const float *norm,
                const int *sel, const double *cal, const float *images, float *scores, int n)
{
    int cpu = __atomic_load_n(&cpu_state, __ATOMIC_RELAXED);
    if (!cpu) {   /* racing first calls agree: the answer is the CPU's */
        cpu = k_aot_cpu_ok(need) ? 1 : -1;
        __atomic_store_n(&cpu_state, cpu, __ATOMIC_RELAXED);
    }
    if (cpu < 0)
        return -2;
    return k_aot_run(arenas, init, wss, slots, wait, steps, units, nsteps, io, norm, sel, cal, images, scores, n);
}

/* Images [at, at + cnt) (cnt <= its batch) through graph g (io + K_AOT_G0 +
 * g * K_AOT_GW) in arena `base`, their scores out (k_aot_run). */
static void run_graph(const long long *io, const long long *g, char *base, float *ws, const KAotStep *steps,
                      const int *units, const float *norm, const int *sel, const double *cal, const float *images,
                      float *scores, long long at, long long cnt)
{
    const long long C = io[K_AOT_C], HW = io[K_AOT_HW], K = io[K_AOT_K], S = io[K_AOT_S], B = g[K_AOT_B];
    float *x = (float *)(base + g[K_AOT_IN]);
    const float *out = (const float *)(base + g[K_AOT_OUT]);
    /* as the loader normalizes: (v - mean) / std, per channel */
    for (long long i = 0; i < B; i++)
        for (long long c = 0; c < C; c++) {
            float *d = x + (i * C + c) * HW;
            const float *src = images + ((at + i) * C + c) * HW;
            float mean = norm[c], std = norm[C + c];
            for (long long p = 0; p < HW; p++)
                d[p] = i < cnt ? (src[p] - mean) / std : 0.0f;   /* past n: zeros, scores unread */
        }
    for (long long k = g[K_AOT_FIRST] + g[K_AOT_PREP]; k < g[K_AOT_FIRST] + g[K_AOT_STEPS]; k++)
        steps[k](base, ws, 0, units[k]);
    for (long long i = 0; i < cnt; i++) {
        const double *cb = cal;   /* class j's calibration, after the j before it */
        for (long long j = 0; j < S; j++) {
            if (cal)
                scores[(at + i) * S + j] = calibrated(cb, out + i * K, (int)K), cb += 3 + 3 * (int)cb[1];
            else
                scores[(at + i) * S + j] = out[i * K + sel[j]];
        }
    }
}

int k_aot_run(char *arenas, const char *init, char *wss, KAotSlot *slots, KAotWait *wait, const KAotStep *steps,
              const int *units, int nsteps, const long long *io, const float *norm, const int *sel,
              const double *cal, const float *images, float *scores, int n)
{
    (void)nsteps;   /* io says which steps are whose */
    if (n < 0 || (n > 0 && (!images || !scores)))
        return -1;
    if (n == 0)
        return 0;
    int s;
    KAotSlot *slot = take_slot(slots, (int)io[K_AOT_NSLOTS], wait, &s);
    char *base = arenas + s * io[K_AOT_ARENA];
    float *ws = (float *)(wss + s * io[K_AOT_WS]);
    const long long *g0 = io + K_AOT_G0;
    if (!slot->ready) {   /* its first call: the weights (the rest starts as zeros), then what is prepared from them */
        memcpy(base, init, (size_t)io[K_AOT_INIT]);
        for (int k = 0; k < io[K_AOT_GRAPHS]; k++) {
            const long long *g = g0 + k * K_AOT_GW;
            for (long long i = g[K_AOT_FIRST]; i < g[K_AOT_FIRST] + g[K_AOT_PREP]; i++)
                steps[i](base, ws, 0, units[i]);
        }
        slot->ready = 1;
    }
    /* the bulk graph (the last) while it has a whole batch, then the first */
    long long at = 0;
    for (int k = (int)io[K_AOT_GRAPHS] - 1; k >= 0; k--) {
        const long long *g = g0 + k * K_AOT_GW, B = g[K_AOT_B];
        for (; k > 0 ? n - at >= B : at < n; at += B)
            run_graph(io, g, base, ws, steps, units, norm, sel, cal, images, scores, at, n - at < B ? n - at : B);
    }
    free_slot(slot, wait);
    return 0;
}
