/* A module compiled as a model of its own (run.h): slice, build, gather. */
#include "run.h"

#include <string.h>

int run_module_build(RunModel *mod, Slice *s, Arena *a, RunModel *full, const unsigned char *keep, int generators,
                     int from, int threads, char *err, size_t errlen)
{
    memset(mod, 0, sizeof *mod);
    /* generators < 0: dropped, but the masks stay for keep vectors inside the slice */
    if (pass_slice(a, full->eval.g, keep, from, generators == 0, s, err, errlen) != 0)
        return -1;
    if (run_model_build_graph(mod, a, full->net, s->g, threads, err, errlen) != 0)
        return -1;
    for (int i = 0; i < s->g->params.n; i++)
        slice_gather(&s->params[i], run_param(full, s->params[i].src->index), run_param(mod, i));
    for (int i = 0; i < s->g->states.n; i++)
        slice_gather(&s->states[i], run_state(full, s->states[i].src->index), run_state(mod, i));
    run_model_set_module(mod, s->keep, generators > 0);
    return 0;
}

void run_module_gather(RunModel *mod, const Slice *s, const RunModel *full)
{
    for (int i = 0; i < s->ninputs; i++) {
        const SliceInput *in = &s->inputs[i];
        const float *src = (const float *)(full->base + full->eval.plan->off[in->src->id]);
        float *dst = (float *)(mod->base + mod->eval.plan->off[in->dst->id]);
        if (!in->idx) {
            memcpy(dst, src, sizeof(float) * (size_t)ir_numel(in->dst));
            continue;
        }
        long long B = in->src->d[0], C = in->src->d[1], K = in->dst->d[1], inner = ir_numel(in->src) / (B * C);
        for (long long b = 0; b < B; b++)
            for (long long j = 0; j < K; j++)
                memcpy(dst + (b * K + j) * inner, src + (b * C + in->idx[j]) * inner, sizeof(float) * (size_t)inner);
    }
}
