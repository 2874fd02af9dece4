/* `mwtc check`: each model's layer table, as text or JSON. */
#ifndef MWT_REPORT_CHECK_H
#define MWT_REPORT_CHECK_H
#include <stdio.h>

#include "net.h"

void report_check_text(FILE *out, const Net *net);
void report_check_json(FILE *out, const Net *const *nets, int n);

#endif
