/* A module compiled as a model of its own (run.h): slice, build, gather. */
#include "run.h"

#include <string.h>

int run_module_build(RunModel *mod, Slice *s, Arena *a, RunModel *full, const unsigned char *keep, int generators,
                     int threads, char *err, size_t errlen)
{
    memset(mod, 0, sizeof *mod);
    if (pass_slice(a, full->eval.g, keep, s, err, errlen) != 0)
        return -1;
    if (run_model_build_graph(mod, a, full->net, s->g, threads, err, errlen) != 0)
        return -1;
    for (int i = 0; i < s->g->params.n; i++)
        slice_gather(&s->params[i], run_param(full, s->params[i].src->index), run_param(mod, i));
    for (int i = 0; i < s->g->states.n; i++)
        slice_gather(&s->states[i], run_state(full, s->states[i].src->index), run_state(mod, i));
    run_model_set_module(mod, s->keep, generators);
    return 0;
}
