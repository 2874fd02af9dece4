/* `mwtc dump ast`: the tree as indented S-expressions, expressions written
 * back in source form with every binary operation parenthesized. */
#include <stdlib.h>
#include <string.h>

#include "ast.h"

const char *ast_item_kind_name(ItemKind k)
{
    static const char *names[] = { "import", "dataset", "block", "model", "train", "modularize", "reuse" };
    return names[k];
}

static void dump_layers(FILE *out, const Vec *layers, int depth);

const char *ast_format_float(double x, char *buf, int len)
{
    if (x > -1e15 && x < 1e15 && x == (double)(long long)x) {   /* the range first: the cast of 1e308 or inf is undefined */
        snprintf(buf, (size_t)len, "%.1f", x);  /* 10.0, not 1e+01 */
        return buf;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, (size_t)len, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    if (!strpbrk(buf, ".eEni") && (int)strlen(buf) + 3 <= len)
        strcat(buf, ".0");
    return buf;
}

static void dump_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 32 || c >= 127)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void dump_expr(FILE *out, const Expr *e, int depth);

static void dump_args(FILE *out, const Vec *args, int depth)
{
    for (int i = 0; i < args->n; i++) {
        const Arg *g = args->v[i];
        if (i)
            fputs(", ", out);
        if (g->name)
            fprintf(out, "%s = ", g->name);
        dump_expr(out, g->value, depth);
    }
}

static void dump_items(FILE *out, const Vec *v, const char *open, const char *close, int depth)
{
    fputs(open, out);
    for (int i = 0; i < v->n; i++) {
        if (i)
            fputs(", ", out);
        dump_expr(out, v->v[i], depth);
    }
    fputs(close, out);
}

static void dump_expr(FILE *out, const Expr *e, int depth)
{
    switch (e->kind) {
    case EX_INT: fprintf(out, "%lld", e->i); break;
    case EX_FLOAT: {
        char buf[48];
        fputs(ast_format_float(e->f, buf, sizeof buf), out);
        break;
    }
    case EX_STRING: dump_string(out, e->s); break;
    case EX_IDENT: fputs(e->s, out); break;
    case EX_CALL:
        fprintf(out, "%s(", e->s);
        dump_args(out, &e->args, depth);
        fputc(')', out);
        break;
    case EX_LIST: dump_items(out, &e->items, "[", "]", depth); break;
    case EX_TUPLE: dump_items(out, &e->items, "(", ")", depth); break;
    case EX_BINARY:
        fputc('(', out);
        dump_expr(out, e->lhs, depth);
        fprintf(out, " %c ", e->op);
        dump_expr(out, e->rhs, depth);
        fputc(')', out);
        break;
    case EX_NEG:
        fputs("-", out);
        dump_expr(out, e->lhs, depth);
        break;
    case EX_LAYERS:
        fputs("{\n", out);
        dump_layers(out, &e->layers, depth + 2);
        fprintf(out, "%*s}", depth * 2, "");
        break;
    }
}

static void dump_layers(FILE *out, const Vec *layers, int depth)
{
    for (int i = 0; i < layers->n; i++) {
        const Layer *y = layers->v[i];
        fprintf(out, "%*s(%s", depth * 2, "", y->name);
        if (y->args.n) {
            fputs(" ", out);
            dump_args(out, &y->args, depth + 1);
        }
        if (y->kind != LY_CALL) {
            fputs("\n", out);
            dump_layers(out, &y->body, depth + 1);
            fprintf(out, "%*s", depth * 2, "");
        }
        fputs(")\n", out);
    }
}

static void dump_params(FILE *out, const Vec *params)
{
    fputs(" (", out);
    for (int i = 0; i < params->n; i++) {
        const Param *p = params->v[i];
        fprintf(out, "%s%s", i ? ", " : "", p->name);
        if (p->deflt) {
            fputs(" = ", out);
            dump_expr(out, p->deflt, 0);
        }
    }
    fputs(")", out);
}

static void dump_kvs(FILE *out, const Vec *kvs)
{
    for (int i = 0; i < kvs->n; i++) {
        const KeyVal *kv = kvs->v[i];
        fprintf(out, "  (%s ", kv->key);
        dump_expr(out, kv->value, 1);
        fputs(")\n", out);
    }
}

void ast_dump(FILE *out, const Program *p)
{
    const SrcFile *root = p->files.n ? p->files.v[0] : NULL;
    for (int i = 0; i < p->items.n; i++) {
        const Item *it = p->items.v[i];
        if (it->loc.file != root)
            continue;          /* imported files are dumped by dumping them */
        fprintf(out, "(%s", ast_item_kind_name(it->kind));
        switch (it->kind) {
        case IT_IMPORT:
            fputc(' ', out);
            dump_string(out, it->path);
            fputs(")\n", out);
            continue;
        case IT_DATASET:
            fprintf(out, " %s ", it->name);
            dump_expr(out, it->source, 0);
            fputs("\n", out);
            dump_kvs(out, &it->kvs);
            break;
        case IT_BLOCK:
        case IT_MODEL:
            fprintf(out, " %s", it->name);
            dump_params(out, &it->params);
            if (it->kind == IT_MODEL) {
                fputs(" ", out);
                dump_expr(out, it->in_shape, 0);
                fputs(" -> ", out);
                dump_expr(out, it->out_shape, 0);
            }
            fputs("\n", out);
            dump_layers(out, &it->layers, 1);
            break;
        case IT_TRAIN:
            fprintf(out, " %s on %s\n", it->model, it->dataset);
            dump_kvs(out, &it->kvs);
            break;
        case IT_MODULARIZE:
            fprintf(out, " %s\n", it->model);
            dump_kvs(out, &it->kvs);
            break;
        case IT_REUSE:
            fprintf(out, " %s as %s\n", it->model, it->name);
            dump_kvs(out, &it->kvs);
            break;
        }
        fputs(")\n", out);
    }
}
