/* JSON output: one string writer for every --json printer, so that a path
 * or a class name with a quote, a backslash or a control character in it
 * still gives valid JSON. */
#ifndef MWT_JSON_H
#define MWT_JSON_H
#include <stdio.h>

/* s as a JSON string literal, quotes included. */
void json_str(FILE *out, const char *s);

#endif
