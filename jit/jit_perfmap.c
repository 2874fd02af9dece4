/* MWTC_PERF_MAP=1: name the JIT'ed code for perf.
 *
 * perf reads /tmp/perf-PID.map ("START SIZE NAME" a line, hex) to name code
 * that no file on disk holds; without it every kernel shows as one anonymous
 * address range, and a profile can say only that 89% of the time is "JIT'ed".
 * The names come from each object's symbol table, read before the JIT takes
 * the object: a symbol's value in a relocatable ELF object is its offset in
 * its section, and the linker keeps a section's code in one piece, so the
 * section's address (from any global symbol the JIT looks up) plus that
 * offset is where the symbol lies. Local symbols (the kernels themselves,
 * the bodies calls share) get their names too, which a lookup cannot give.
 * Each computed address of a global is checked against its lookup; a
 * section that does not check out is left out rather than named wrongly.
 *
 * perf reads the map once, after the run, and names every sample in a range
 * by that range's line: a JIT's code freed and its pages reused by a later
 * graph's would leave two lines for one address (a whole job under perf had
 * 126 such overlaps in 377 lines, and its training kernels' samples named
 * after the modules'). So a perf-mapped JIT's code stays mapped until the
 * process exits (jit_perf_map_keep): more memory, for a profiling run only. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llvm-c/Core.h>
#include <llvm-c/Object.h>

#include "jit_int.h"

typedef struct PmSym {
    char *name;
    uint64_t off, size;
    int section;   /* index into PerfMap.sect */
} PmSym;

struct PerfMap {
    char **sect;   /* section names, one entry per distinct section */
    int nsect;
    PmSym *sym;
    int nsym, cap;
};

int jit_perf_map_wanted(void)
{
    const char *env = getenv("MWTC_PERF_MAP");
    return env && *env && strcmp(env, "0") != 0 && strcmp(env, "off") != 0;
}

static int section_index(PerfMap *pm, const char *name)
{
    for (int i = 0; i < pm->nsect; i++)
        if (!strcmp(pm->sect[i], name))
            return i;
    char **s = realloc(pm->sect, sizeof *s * (size_t)(pm->nsect + 1));
    if (!s)
        return -1;
    pm->sect = s;
    if (!(s[pm->nsect] = strdup(name)))
        return -1;
    return pm->nsect++;
}

/* ELF's st_bind is not in the C API: which symbols are global is found in
 * jit_perf_map_write by looking each up (a local's lookup fails). */
PerfMap *jit_perf_map_read(LLVMMemoryBufferRef obj)
{
    PerfMap *pm = calloc(1, sizeof *pm);
    if (!pm)
        return NULL;
    char *msg = NULL;
    LLVMBinaryRef bin = LLVMCreateBinary(obj, NULL, &msg);   /* a context only for IR files */
    if (!bin) {
        LLVMDisposeMessage(msg);
        return pm;   /* nothing to name */
    }
    LLVMSymbolIteratorRef si = LLVMObjectFileCopySymbolIterator(bin);
    LLVMSectionIteratorRef sec = LLVMObjectFileCopySectionIterator(bin);
    for (; si && !LLVMObjectFileIsSymbolIteratorAtEnd(bin, si); LLVMMoveToNextSymbol(si)) {
        const char *name = LLVMGetSymbolName(si);
        uint64_t size = LLVMGetSymbolSize(si);
        if (!name || !*name || size == 0)
            continue;
        LLVMMoveToContainingSection(sec, si);
        if (LLVMObjectFileIsSectionIteratorAtEnd(bin, sec))
            continue;
        const char *sname = LLVMGetSectionName(sec);
        /* code only (data symbols would name the constants); the JIT's
         * code model puts it in .ltext */
        if (!sname || (strncmp(sname, ".text", 5) != 0 && strncmp(sname, ".ltext", 6) != 0))
            continue;
        if (pm->nsym == pm->cap) {
            int cap = pm->cap ? 2 * pm->cap : 64;
            PmSym *s = realloc(pm->sym, sizeof *s * (size_t)cap);
            if (!s)
                break;
            pm->sym = s;
            pm->cap = cap;
        }
        PmSym *s = &pm->sym[pm->nsym];
        s->name = strdup(name);
        s->off = LLVMGetSymbolAddress(si);
        s->size = size;
        s->section = section_index(pm, sname);
        if (!s->name || s->section < 0) {
            free(s->name);
            break;
        }
        pm->nsym++;
    }
    if (sec)
        LLVMDisposeSectionIterator(sec);
    if (si)
        LLVMDisposeSymbolIterator(si);
    LLVMDisposeBinary(bin);
    return pm;
}

/* The kernel a symbol's code runs: a call's own function is named as the
 * call, the body it shares with calls of its shape NAME.shape. */
static const char *kernel_of(const char *sym, const JitCall *calls, int n)
{
    size_t len = strlen(sym);
    if (len > 6 && !strcmp(sym + len - 6, ".shape"))
        len -= 6;
    for (int i = 0; i < n; i++)
        if (strlen(calls[i].name) == len && !strncmp(calls[i].name, sym, len))
            return calls[i].kernel;
    return NULL;
}

void jit_perf_map_write(Jit *j, PerfMap *pm, const JitCall *calls, int ncalls)
{
    if (!pm)
        return;
    uint64_t *base = calloc((size_t)(pm->nsect > 0 ? pm->nsect : 1), sizeof *base);
    int *ok = calloc((size_t)(pm->nsect > 0 ? pm->nsect : 1), sizeof *ok);   /* 0 unknown, 1 ok, -1 bad */
    char path[64];
    snprintf(path, sizeof path, "/tmp/perf-%ld.map", (long)getpid());
    FILE *f = base && ok ? fopen(path, "a") : NULL;
    if (f) {
        for (int i = 0; i < pm->nsym; i++) {
            PmSym *s = &pm->sym[i];
            uint64_t addr = (uint64_t)(uintptr_t)jit_lookup(j, s->name);
            if (!addr)
                continue;
            uint64_t b = addr - s->off;
            if (ok[s->section] == 0) {
                base[s->section] = b;
                ok[s->section] = 1;
            } else if (base[s->section] != b) {
                ok[s->section] = -1;   /* the section was not kept in one piece */
            }
        }
        for (int i = 0; i < pm->nsym; i++) {
            PmSym *s = &pm->sym[i];
            const char *k = kernel_of(s->name, calls, ncalls);
            if (ok[s->section] == 1)
                fprintf(f, "%llx %llx %s%s%s\n", (unsigned long long)(base[s->section] + s->off),
                        (unsigned long long)s->size, k ? k : s->name, k ? " " : "", k ? s->name : "");
        }
        fclose(f);
    }
    free(base);
    free(ok);
    jit_perf_map_free(pm);
}

static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static LLVMOrcLLJITRef *kept;
static int nkept, kept_cap, at_exit; /* at_exit: 1 dispose_kept registered, -1 it could not be */

static void dispose_kept(void)
{
    for (int i = 0; i < nkept; i++) {
        LLVMErrorRef e = LLVMOrcDisposeLLJIT(kept[i]);
        if (e)
            LLVMConsumeError(e);
    }
    free(kept);
    kept = NULL, nkept = kept_cap = 0;
}

void jit_perf_map_keep(LLVMOrcLLJITRef lljit)
{
    int taken = 0;
    pthread_mutex_lock(&kept_lock);
    if (!at_exit)
        at_exit = atexit(dispose_kept) == 0 ? 1 : -1;
    if (at_exit == 1 && nkept == kept_cap) {
        int cap = kept_cap ? 2 * kept_cap : 8;
        LLVMOrcLLJITRef *k = realloc(kept, sizeof *k * (size_t)cap);
        if (k)
            kept = k, kept_cap = cap;
    }
    if (at_exit == 1 && nkept < kept_cap)
        kept[nkept++] = lljit, taken = 1;
    pthread_mutex_unlock(&kept_lock);
    if (!taken) { /* disposed of now, as without the map: its pages may then be named twice */
        LLVMErrorRef e = LLVMOrcDisposeLLJIT(lljit);
        if (e)
            LLVMConsumeError(e);
    }
}

void jit_perf_map_free(PerfMap *pm)
{
    if (!pm)
        return;
    for (int i = 0; i < pm->nsym; i++)
        free(pm->sym[i].name);
    for (int i = 0; i < pm->nsect; i++)
        free(pm->sect[i]);
    free(pm->sym);
    free(pm->sect);
    free(pm);
}
