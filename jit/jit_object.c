/* Compiling kernel calls to machine code, in parallel and once.
 *
 * The calls are dealt to one part per core, by shape (calls that differ only
 * in where their tensors lie share one compiled body: jit_kernels.c), the
 * parts about equal in size; each part is built, optimized and emitted as an
 * object file on its own thread, with its own LLVM context and target
 * machine (LLVM shares neither across threads), and the JIT links the
 * objects. The objects are also kept in a disk cache, keyed by everything
 * that decides them: the calls (names, kernels, constants), the kernels'
 * bitcode, the JIT's own sources (how it builds and optimizes the calls),
 * the CPU and its features, LLVM's version and this file's format. A second
 * run of the same model on the same machine compiles nothing.
 *
 * Cache: $MWTC_CACHE_DIR, else $XDG_CACHE_HOME/mwtc, else $HOME/.cache/mwtc;
 * MWTC_CACHE=off turns it off. A file is written to a temporary name and
 * renamed, so concurrent runs never read half of one; a file that does not
 * check out (magic, sizes, checksum) is ignored and rewritten. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <llvm-c/Core.h>
#include <llvm-c/Error.h>

#include "jit_int.h"
#include "rt_hash.h"
#include "rt_pool.h"

/* A part's calls make up to two modules: those of kernels that want the
 * loop unroller (jit_kernel_unrolled) and the rest; an object each. */
enum { MAX_PARTS = 4, MAX_OBJS = 2 * MAX_PARTS };
static const char MAGIC[8] = { 'M', 'W', 'T', 'C', 'O', 'B', 'J', '1' };

typedef struct Part {
    Jit *j;
    JitCall *calls;
    int n;
    LLVMMemoryBufferRef obj[2];
    int nobj;
    int rc;
    char err[512];
} Part;

static uint64_t fnv_str(uint64_t h, const char *s) { return rt_fnv(h, s, strlen(s) + 1); }

/* 128 bits of key: two FNV streams from different seeds over the same bytes. */
static void cache_key(const Jit *j, const JitCall *calls, int n, uint64_t key[2])
{
    static const uint64_t seed[2] = { RT_FNV_SEED, 0x84222325cbf29ce4ull };
    unsigned maj, min, pat;
    LLVMGetVersion(&maj, &min, &pat);
    unsigned ver[3] = { maj, min, pat };
    for (int k = 0; k < 2; k++) {
        uint64_t h = rt_fnv(seed[k], MAGIC, sizeof MAGIC);
        h = rt_fnv(h, ver, sizeof ver);
        h = fnv_str(fnv_str(fnv_str(h, j->triple), j->cpu), j->features);
        h = rt_fnv(h, mwt_kernels_bc, mwt_kernels_bc_len);
        h = fnv_str(h, mwt_jit_source_id);
        for (int i = 0; i < n; i++) {
            const JitCall *c = &calls[i];
            h = fnv_str(fnv_str(fnv_str(h, c->name), c->kernel), c->sig);
            int nc = 0;
            for (const char *s = c->sig; *s; s++)
                nc += jit_sig_const(*s);
            h = rt_fnv(h, c->consts, sizeof(double) * (size_t)nc);
        }
        key[k] = h;
    }
}

/* The cache file for key, its directory created; 0, or -1 when the cache is off. */
static int cache_path(const uint64_t key[2], char *path, size_t len)
{
    const char *off = getenv("MWTC_CACHE");
    if (off && (!strcmp(off, "off") || !strcmp(off, "0")))
        return -1;
    char dir[4096];
    const char *d = getenv("MWTC_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (d && *d)
        snprintf(dir, sizeof dir, "%s", d);
    else if (x && *x)
        snprintf(dir, sizeof dir, "%s/mwtc", x);
    else if (home && *home)
        snprintf(dir, sizeof dir, "%s/.cache/mwtc", home);
    else
        return -1;
    /* mkdir -p */
    for (char *s = dir + 1;; s++) {
        if (*s && *s != '/')
            continue;
        char was = *s;
        *s = 0;
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return -1;
        if (!(*s = was))
            break;
    }
    int w = snprintf(path, len, "%s/%016llx%016llx.o", dir, (unsigned long long)key[0], (unsigned long long)key[1]);
    return w > 0 && (size_t)w < len ? 0 : -1;
}

/* The objects of a cache file: magic, count, then per object its size, its
 * FNV and its bytes. 0 with nparts buffers, or -1 (no file, or a bad one). */
static int cache_read(const char *path, LLVMMemoryBufferRef *obj, int *nparts)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char magic[8];
    uint32_t n = 0;
    int rc = -1, got = 0;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, MAGIC, 8) != 0 || fread(&n, 4, 1, f) != 1 || n == 0 ||
        n > MAX_OBJS)
        goto done;
    for (; got < (int)n; got++) {
        uint64_t size, sum;
        if (fread(&size, 8, 1, f) != 1 || fread(&sum, 8, 1, f) != 1 || size == 0 || size > (1ull << 31))
            goto done;
        char *buf = malloc((size_t)size);
        if (!buf || fread(buf, 1, (size_t)size, f) != size || rt_fnv(RT_FNV_SEED, buf, (size_t)size) != sum) {
            free(buf);
            goto done;
        }
        obj[got] = LLVMCreateMemoryBufferWithMemoryRangeCopy(buf, (size_t)size, "mwtc-cached.o");
        free(buf);
    }
    rc = fgetc(f) == EOF ? 0 : -1;
done:
    fclose(f);
    if (rc != 0)
        for (int i = 0; i < got; i++)
            LLVMDisposeMemoryBuffer(obj[i]);
    else
        *nparts = (int)n;
    return rc;
}

/* Best effort: a cache that cannot be written only costs the next run a compile. */
static void cache_write(const char *path, LLVMMemoryBufferRef *obj, int n)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return;
    uint32_t count = (uint32_t)n;
    int ok = fwrite(MAGIC, 1, 8, f) == 8 && fwrite(&count, 4, 1, f) == 1;
    for (int i = 0; ok && i < n; i++) {
        uint64_t size = LLVMGetBufferSize(obj[i]);
        uint64_t sum = rt_fnv(RT_FNV_SEED, LLVMGetBufferStart(obj[i]), (size_t)size);
        ok = fwrite(&size, 8, 1, f) == 1 && fwrite(&sum, 8, 1, f) == 1 &&
             fwrite(LLVMGetBufferStart(obj[i]), 1, (size_t)size, f) == size;
    }
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0)
        remove(tmp);
}

/* One module of calls, optimized and emitted into *obj; 0 or -1 with p->err. */
static int compile_module(Part *p, LLVMTargetMachineRef tm, const JitCall *calls, int n, int unroll,
                          LLVMMemoryBufferRef *obj)
{
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = jit_build_module(p->j, ctx, calls, n, NULL, p->err, sizeof p->err);
    int rc = -1;
    if (mod && jit_optimize_with(p->j, tm, mod, unroll, p->err, sizeof p->err) == 0) {
        char *msg = NULL;
        if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &msg, obj)) {
            snprintf(p->err, sizeof p->err, "cannot emit machine code: %s", msg ? msg : "?");
            *obj = NULL;
        } else {
            rc = 0;
        }
        LLVMDisposeMessage(msg);
    }
    if (mod)
        LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
    return rc;
}

static void *compile_part(void *arg)
{
    Part *p = arg;
    p->rc = -1;
    LLVMTargetMachineRef tm = jit_target_machine(p->j);
    if (!tm) {
        snprintf(p->err, sizeof p->err, "cannot create a target machine");
        return NULL;
    }
    /* the calls sorted in place: the rolled ones first, then the unrolled */
    int nr = 0;
    for (int i = 0; i < p->n; i++)
        if (!jit_kernel_unrolled(p->calls[i].kernel)) {
            JitCall t = p->calls[nr];
            p->calls[nr++] = p->calls[i];
            p->calls[i] = t;
        }
    p->rc = 0;
    if (nr > 0 && (p->rc = compile_module(p, tm, p->calls, nr, 0, &p->obj[p->nobj])) == 0)
        p->nobj++;
    if (p->rc == 0 && nr < p->n && (p->rc = compile_module(p, tm, p->calls + nr, p->n - nr, 1, &p->obj[p->nobj])) == 0)
        p->nobj++;
    LLVMDisposeTargetMachine(tm);
    return NULL;
}

static int link_objects(Jit *j, LLVMMemoryBufferRef *obj, int n, const JitCall *calls, int ncalls, char *err,
                        size_t errlen)
{
    int rc = 0;
    int perf = jit_perf_map_wanted();
    PerfMap *pm[MAX_OBJS] = { NULL };
    for (int i = 0; i < n; i++) {
        if (rc != 0) {
            LLVMDisposeMemoryBuffer(obj[i]);
            continue;
        }
        if (perf)
            pm[i] = jit_perf_map_read(obj[i]);   /* before the JIT owns the buffer */
        LLVMErrorRef e = LLVMOrcLLJITAddObjectFile(j->lljit, LLVMOrcLLJITGetMainJITDylib(j->lljit), obj[i]);
        if (e) {
            char *m = LLVMGetErrorMessage(e);
            snprintf(err, errlen, "the JIT refused the compiled kernels: %s", m);
            LLVMDisposeErrorMessage(m);
            rc = -1;
        }
    }
    for (int i = 0; i < n; i++) {
        if (rc == 0)
            jit_perf_map_write(j, pm[i], calls, ncalls);
        else
            jit_perf_map_free(pm[i]);
    }
    j->perf_mapped |= perf;
    return rc;
}

static int parts_wanted(int n)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int p = cores > MAX_PARTS ? MAX_PARTS : cores < 1 ? 1 : (int)cores;
    const char *env = getenv("MWTC_COMPILE_THREADS");
    if (env && atoi(env) >= 1)
        p = atoi(env) > MAX_PARTS ? MAX_PARTS : atoi(env);
    if (p > n / 4)   /* a few calls are not worth a thread each */
        p = n / 4 > 1 ? n / 4 : 1;
    return p;
}

/* The calls to the P parts by shape, the biggest shape first, each to the
 * part with the least so far: the calls of one shape land in one part, which
 * compiles their shared body once, and the parts take about as long. Costs
 * are the kernels' sizes, so the split does not depend on timing. 0, or -1
 * out of memory. */
static int deal(const JitCall *calls, int n, Part *part, int P)
{
    size_t m = (size_t)(n > 0 ? n : 1);
    int *group = malloc(sizeof(int) * m), *owner = malloc(sizeof(int) * m), *order = malloc(sizeof(int) * m);
    long *cost = calloc(m, sizeof(long));
    int rc = group && owner && order && cost ? 0 : -1;
    if (rc == 0) {
        jit_call_groups(calls, n, group);
        int ng = 0;
        for (int i = 0; i < n; i++) {
            if (group[i] == i) {
                cost[i] = jit_kernel_size(calls[i].kernel);
                order[ng++] = i;
            }
            cost[group[i]] += 20;   /* each call's own small function */
        }
        for (int a = 1; a < ng; a++)   /* insertion sort: biggest first, then first come */
            for (int b = a; b > 0 && cost[order[b]] > cost[order[b - 1]]; b--) {
                int t = order[b];
                order[b] = order[b - 1];
                order[b - 1] = t;
            }
        long load[MAX_PARTS] = { 0 };
        for (int a = 0; a < ng; a++) {
            int best = 0;
            for (int q = 1; q < P; q++)
                if (load[q] < load[best])
                    best = q;
            owner[order[a]] = best;
            load[best] += cost[order[a]];
        }
        for (int i = 0; i < n; i++) {
            Part *p = &part[owner[group[i]]];
            p->calls[p->n++] = calls[i];
        }
    }
    free(group);
    free(owner);
    free(order);
    free(cost);
    return rc;
}

int jit_add_calls(Jit *j, const JitCall *calls, int n, char *err, size_t errlen)
{
    uint64_t key[2];
    char path[4096];
    LLVMMemoryBufferRef obj[MAX_OBJS];
    int nobj = 0;
    cache_key(j, calls, n, key);
    int cached = cache_path(key, path, sizeof path) == 0;
    j->from_cache = 0;
    if (cached && cache_read(path, obj, &nobj) == 0) {
        j->from_cache = 1;
        return link_objects(j, obj, nobj, calls, n, err, errlen);
    }

    int P = parts_wanted(n);
    Part part[MAX_PARTS];
    memset(part, 0, sizeof part);
    for (int p = 0; p < P; p++) {
        part[p].j = j;
        part[p].calls = malloc(sizeof(JitCall) * (size_t)(n > 0 ? n : 1));   /* a part may get more than n / P */
        part[p].rc = -1;
        if (!part[p].calls) {
            snprintf(err, errlen, "out of memory");
            for (int q = 0; q < p; q++)
                free(part[q].calls);
            return -1;
        }
    }
    if (deal(calls, n, part, P) != 0) {
        snprintf(err, errlen, "out of memory");
        for (int q = 0; q < P; q++)
            free(part[q].calls);
        return -1;
    }
    rt_run_shares(compile_part, part, sizeof part[0], P);
    int rc = 0;
    for (int p = 0; p < P; p++) {
        if (part[p].rc != 0 && rc == 0) {
            snprintf(err, errlen, "%s", part[p].err);
            rc = -1;
        }
        free(part[p].calls);
    }
    for (int p = 0; p < P; p++)
        for (int k = 0; k < part[p].nobj; k++)
            obj[nobj++] = part[p].obj[k];
    if (rc != 0) {
        for (int k = 0; k < nobj; k++)
            LLVMDisposeMemoryBuffer(obj[k]);
        return -1;
    }
    if (cached)
        cache_write(path, obj, nobj);
    return link_objects(j, obj, nobj, calls, n, err, errlen);
}
