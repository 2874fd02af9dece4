#include "report_check.h"

#include <string.h>

#include "json.h"

static const char *describe(const NetLayer *l, char *buf, size_t len)
{
    switch (l->op) {
    case NET_CONV:
        snprintf(buf, len, "conv %lldx%lld/%lld pad %lld -> %lld%s%s", l->k, l->k, l->stride, l->pad, l->out_ch,
                 l->bias ? "" : " no bias", l->mask ? " (masked)" : "");
        break;
    case NET_MAXPOOL:
    case NET_AVGPOOL:
        snprintf(buf, len, "%s %lldx%lld/%lld", net_op_name(l->op), l->k, l->k, l->stride);
        break;
    case NET_LINEAR:
        snprintf(buf, len, "linear -> %lld%s", l->out_ch, l->bias ? "" : " no bias");
        break;
    case NET_DROPOUT:
        snprintf(buf, len, "dropout %g", l->p);
        break;
    case NET_MASK:
        snprintf(buf, len, "mask %lld->%lld->%lld%s", l->gen_in, l->hidden, l->out_ch, l->auto_mask ? "" : " (explicit)");
        break;
    case NET_RESIDUAL:
        snprintf(buf, len, "residual%s", l->auto_shortcut ? " (1x1 projection)" : "");
        break;
    default:
        snprintf(buf, len, "%s", net_op_name(l->op));
        break;
    }
    return buf;
}

static void text_row(FILE *out, int line, int depth, const char *what, Shape s, long long params, long long flops,
                     const char *block)
{
    char sh[80], name[160];
    snprintf(name, sizeof name, "%*s%s", depth * 2, "", what);
    if (line)
        fprintf(out, "  %5d  ", line);
    else
        fprintf(out, "  %5s  ", "");
    fprintf(out, "%-40s %-16s %12lld %14lld", name, shape_str(s, sh, sizeof sh), params, flops);
    if (block)
        fprintf(out, "  %s", block);
    fputc('\n', out);
}


static const char *block_name(const NetLayer *l) { return l->site ? l->site->block : NULL; }

static void text_seq(FILE *out, const NetSeq *seq, int depth)
{
    char buf[160];
    for (int i = 0; i < seq->n; i++) {
        const NetLayer *l = seq->v[i];
        const char *block = block_name(l);
        if (l->op == NET_RESIDUAL) {
            long long p = net_seq_params(&l->body) + net_seq_params(&l->shortcut);
            long long f = l->flops + net_seq_flops(&l->body) + net_seq_flops(&l->shortcut);
            text_row(out, net_layer_line(l), depth, describe(l, buf, sizeof buf), l->out, p, f, block);
            text_seq(out, &l->body, depth + 1);
            if (l->shortcut.n) {
                text_row(out, 0, depth + 1, "shortcut:", l->in, 0, 0, NULL);
                text_seq(out, &l->shortcut, depth + 2);
            }
            text_row(out, 0, depth + 1, "add", l->out, 0, l->flops, NULL);
            continue;
        }
        text_row(out, net_layer_line(l), depth, describe(l, buf, sizeof buf), l->out, l->params, l->flops, block);
    }
}

void report_check_text(FILE *out, const Net *net)
{
    char a[80], b[80];
    fprintf(out, "model %s : %s -> %s\n", net->name, shape_str(net->in, a, sizeof a), shape_str(net->out, b, sizeof b));
    fprintf(out, "  %5s  %-40s %-16s %12s %14s  %s\n", "line", "layer", "output", "params", "flops", "block");
    text_seq(out, &net->seq, 0);
    fprintf(out, "  total: %lld parameters, %lld forward FLOPs per image (%.2f MFLOPs)", net->params, net->flops,
            (double)net->flops / 1e6);
    if (net->masked_layers)
        fprintf(out, ", %d masked conv%s with %lld kernels", net->masked_layers, net->masked_layers == 1 ? "" : "s",
                net->masked_kernels);
    fputs("\n", out);
}

static void json_shape(FILE *out, Shape s)
{
    fputc('[', out);
    for (int i = 0; i < s.rank; i++)
        fprintf(out, "%s%lld", i ? ", " : "", s.d[i]);
    fputc(']', out);
}

static void json_seq(FILE *out, const NetSeq *seq, int indent)
{
    fputc('[', out);
    for (int i = 0; i < seq->n; i++) {
        const NetLayer *l = seq->v[i];
        long long p = l->params + net_seq_params(&l->body) + net_seq_params(&l->shortcut);
        long long f = l->flops + net_seq_flops(&l->body) + net_seq_flops(&l->shortcut);
        fprintf(out, "%s\n%*s{ \"op\": \"%s\", \"line\": %d, \"shape\": ", i ? "," : "", indent, "",
                net_op_name(l->op), net_layer_line(l));
        json_shape(out, l->out);
        fprintf(out, ", \"params\": %lld, \"flops\": %lld", p, f);
        switch (l->op) {
        case NET_CONV:
            fprintf(out, ", \"out\": %lld, \"k\": %lld, \"stride\": %lld, \"pad\": %lld, \"bias\": %s, \"masked\": %s",
                    l->out_ch, l->k, l->stride, l->pad, l->bias ? "true" : "false", l->mask ? "true" : "false");
            break;
        case NET_MAXPOOL:
        case NET_AVGPOOL:
            fprintf(out, ", \"k\": %lld, \"stride\": %lld", l->k, l->stride);
            break;
        case NET_LINEAR:
            fprintf(out, ", \"out\": %lld, \"bias\": %s", l->out_ch, l->bias ? "true" : "false");
            break;
        case NET_DROPOUT:
            fprintf(out, ", \"p\": %g", l->p);
            break;
        case NET_MASK:
            fprintf(out, ", \"in\": %lld, \"hidden\": %lld, \"kernels\": %lld", l->gen_in, l->hidden, l->out_ch);
            break;
        case NET_RESIDUAL:
            fputs(", \"body\": ", out);
            json_seq(out, &l->body, indent + 2);
            fputs(", \"shortcut\": ", out);
            json_seq(out, &l->shortcut, indent + 2);
            break;
        default:
            break;
        }
        if (l->site) {
            fputs(", \"block\": ", out);
            json_str(out, l->site->block);
        }
        fputs(" }", out);
    }
    fputc(']', out);
}

void report_check_json(FILE *out, const Net *const *nets, int n)
{
    fputs("{ \"models\": [", out);
    for (int i = 0; i < n; i++) {
        const Net *net = nets[i];
        fprintf(out, "%s\n  { \"name\": ", i ? "," : "");
        json_str(out, net->name);
        fputs(", \"input\": ", out);
        json_shape(out, net->in);
        fputs(", \"output\": ", out);
        json_shape(out, net->out);
        fprintf(out, ", \"params\": %lld, \"flops\": %lld, \"masked_layers\": %d, \"masked_kernels\": %lld,\n    \"layers\": ",
                net->params, net->flops, net->masked_layers, net->masked_kernels);
        json_seq(out, &net->seq, 6);
        fputs(" }", out);
    }
    fputs(" ] }\n", out);
}
