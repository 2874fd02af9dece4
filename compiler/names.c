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
