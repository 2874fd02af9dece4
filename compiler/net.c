#include "net.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

const char *net_op_name(NetOp op)
{
    static const char *names[] = {
        "conv", "batchnorm", "relu", "maxpool", "avgpool", "gap", "flatten",
        "linear", "dropout", "mask", "residual",
    };
    return names[op];
}

void net_seq_insert(Arena *a, NetSeq *s, int at, NetLayer *l)
{
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 8;
        NetLayer **v = arena_alloc(a, sizeof *v * (size_t)cap);
        if (s->n)
            memcpy(v, s->v, sizeof *v * (size_t)s->n);
        s->v = v;
        s->cap = cap;
    }
    memmove(s->v + at + 1, s->v + at, sizeof *s->v * (size_t)(s->n - at));
    s->v[at] = l;
    s->n++;
}

void net_seq_push(Arena *a, NetSeq *s, NetLayer *l) { net_seq_insert(a, s, s->n, l); }

/* a + b, or LLONG_MAX where that overflows (counts are never negative) */
static long long sat_add(long long a, long long b)
{
    long long r;
    return __builtin_add_overflow(a, b, &r) ? LLONG_MAX : r;
}

long long net_seq_params(const NetSeq *s)
{
    long long n = 0;
    for (int i = 0; i < s->n; i++)
        n = sat_add(sat_add(n, s->v[i]->params),
                    sat_add(net_seq_params(&s->v[i]->body), net_seq_params(&s->v[i]->shortcut)));
    return n;
}

long long net_seq_flops(const NetSeq *s)
{
    long long n = 0;
    for (int i = 0; i < s->n; i++)
        n = sat_add(sat_add(n, s->v[i]->flops),
                    sat_add(net_seq_flops(&s->v[i]->body), net_seq_flops(&s->v[i]->shortcut)));
    return n;
}

int net_layer_line(const NetLayer *l)
{
    const CallSite *s = l->site;
    if (!s)
        return src_line_no(l->loc.file, l->loc.line);
    while (s->parent)
        s = s->parent;
    return src_line_no(s->loc.file, s->loc.line);
}

long long shape_numel(Shape s)
{
    long long n = 1;
    for (int i = 0; i < s.rank; i++)
        n *= s.d[i];
    return n;
}

const char *shape_str(Shape s, char *buf, int len)
{
    int o = snprintf(buf, (size_t)len, "[");
    for (int i = 0; i < s.rank && o < len; i++)
        o += snprintf(buf + o, (size_t)(len - o), "%s%lld", i ? ", " : "", s.d[i]);
    if (o < len)
        snprintf(buf + o, (size_t)(len - o), "]");
    return buf;
}
