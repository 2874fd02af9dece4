#include "json.h"

#include "names.h"

/* s as a JSON string. JSON text is UTF-8, and a class name or a path may
 * hold any bytes: what is not UTF-8 (a stray byte, an overlong or truncated
 * sequence, a surrogate) becomes U+FFFD, so that the output always parses. */
void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        const unsigned char *at = p;
        unsigned long c = name_utf8_next(&p);
        long n = p - at;
        int bad = (c == 0xfffd && n == 1) || (n == 2 && c < 0x80) || (n == 3 && c < 0x800) ||
                  (n == 4 && c < 0x10000) || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff;
        if (bad)
            fputs("\\ufffd", out);
        else if (c == '"' || c == '\\')
            fprintf(out, "\\%c", (int)c);
        else if (c < 0x20)
            fprintf(out, "\\u%04lx", c);
        else
            fwrite(at, 1, (size_t)n, out);
    }
    fputc('"', out);
}
