/* How close two names are, for "did you mean" hints in every stage. */
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
