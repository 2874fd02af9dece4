/* How close two names are, and how wide they print (names.h). */
#include "names.h"

#include <ctype.h>
#include <string.h>

/* Levenshtein distance, for "did you mean" hints; letters match whatever
 * their case (ReLU is relu, GAP is gap). */
int name_distance(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    int row[41];
    for (int j = 0; j <= lb; j++)
        row[j] = j;
    for (int i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int cur = row[j];
            int sub = prev + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            int del = row[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            prev = cur;
        }
    }
    return row[lb];
}

const char *name_closest(const char *name, const char *const *cands, int n)
{
    const char *best = NULL;
    int bestd = 3;
    for (int i = 0; i < n; i++) {
        int d = name_distance(name, cands[i]);
        if (d < bestd)
            bestd = d, best = cands[i];
    }
    return best && (int)strlen(name) > bestd ? best : NULL;
}

const char *const *names_layers(int *n)
{
    static const char *const layers[] = {
        "conv", "batchnorm", "relu", "maxpool", "avgpool", "gap", "flatten", "linear", "dropout", "mask",
    };
    *n = (int)(sizeof layers / sizeof *layers);
    return layers;
}

/* The value map gives for name, compared in lower case without '_' and
 * without a trailing "1d" or "2d" (AdaptiveAvgPool2d: adaptiveavgpool); NULL
 * when it gives none. */
static const char *torch_find(const char *name, const char *const (*map)[2], size_t n)
{
    char key[64];
    size_t k = 0;
    for (const char *p = name; *p && k + 1 < sizeof key; p++)
        if (*p != '_')
            key[k++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    key[k] = 0;
    if (k > 2 && (!strcmp(key + k - 2, "1d") || !strcmp(key + k - 2, "2d")))
        key[k - 2] = 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(key, map[i][0]))
            return map[i][1];
    return NULL;
}

const char *names_torch_layer(const char *name)
{
    static const char *const map[][2] = {
        { "softmax", "the model ends in logits, and cross_entropy applies the softmax itself: leave it out" },
        { "logsoftmax", "the model ends in logits, and cross_entropy applies the softmax itself: leave it out" },
        { "adaptiveavgpool", "did you mean 'gap' (global average pooling)?" },
        { "globalavgpool", "did you mean 'gap' (global average pooling)?" },
        { "globalaveragepool", "did you mean 'gap' (global average pooling)?" },
        { "view", "did you mean 'flatten'?" },
        { "reshape", "did you mean 'flatten'?" },
        { "sigmoid", "the language's activation is relu" },
        { "tanh", "the language's activation is relu" },
        { "gelu", "the language's activation is relu" },
        { "leakyrelu", "the language's activation is relu" },
        { "elu", "the language's activation is relu" },
        { "silu", "the language's activation is relu" },
        { "bn", "did you mean 'batchnorm'?" },
        { "batchnormalization", "did you mean 'batchnorm'?" },
        { "fc", "did you mean 'linear'?" },
        { "dense", "did you mean 'linear'?" },
        { "fullyconnected", "did you mean 'linear'?" },
        { "identity", "a layer that does nothing is no layer: leave it out" },
    };
    return torch_find(name, map, sizeof map / sizeof *map);
}

const char *names_torch_param(const char *name)
{
    static const char *const map[][2] = {
        { "kernelsize", "k" }, { "kernel", "k" }, { "padding", "pad" }, { "outchannels", "out" },
        { "outfeatures", "out" }, { "filters", "out" }, { "channels", "out" }, { "features", "out" },
        { "strides", "stride" }, { "learningrate", "lr" }, { "stepsize", "every" }, { "weightdecay", "weight_decay" },
    };
    return torch_find(name, map, sizeof map / sizeof *map);
}

const char *names_torch_word(const char *name)
{
    static const char *const map[][2] = {
        { "crossentropyloss", "cross_entropy" }, { "crossentropy", "cross_entropy" }, { "ce", "cross_entropy" },
        { "nll", "cross_entropy" }, { "nllloss", "cross_entropy" }, { "cohesionloss", "cohesion" },
        { "couplingloss", "coupling" }, { "cosineannealinglr", "cosine" }, { "cosineannealing", "cosine" },
        { "steplr", "step" }, { "constantlr", "constant" },
    };
    return torch_find(name, map, sizeof map / sizeof *map);
}

int names_is_layer(const char *name)
{
    int n;
    const char *const *v = names_layers(&n);
    for (int i = 0; i < n; i++)
        if (!strcmp(name, v[i]))
            return 1;
    return 0;
}

unsigned long name_utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    int len = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    unsigned long c = len == 1 ? s[0] : len == 2 ? s[0] & 0x1fu : len == 3 ? s[0] & 0x0fu : s[0] & 0x07u;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            len = 0;
        else
            c = c << 6 | (s[i] & 0x3fu);
    }
    if (len == 0) {
        *p = s + 1;
        return 0xfffd;
    }
    *p = s + len;
    return c;
}

int name_width(const char *s)
{
    int w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned long c = name_utf8_next(&p);
        if ((c >= 0x300 && c <= 0x36f) || (c >= 0x200b && c <= 0x200f) || (c >= 0xfe00 && c <= 0xfe0f))
            continue;   /* combining marks, zero-width characters, variation selectors */
        int wide = (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf) || (c >= 0xac00 && c <= 0xd7a3) ||
                   (c >= 0xf900 && c <= 0xfaff) || (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
                   (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1faff) || (c >= 0x20000 && c <= 0x3fffd);
        w += 1 + wide;
    }
    return w;
}

void name_pad(FILE *out, const char *s, int width)
{
    fputs(s, out);
    for (int w = name_width(s); w < width; w++)
        fputc(' ', out);
}
