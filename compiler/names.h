/* How close two names are, for "did you mean" hints in every stage. */
#ifndef MWT_NAMES_H
#define MWT_NAMES_H

/* Levenshtein distance, letters matching whatever their case; 99 past 40 characters. */
int name_distance(const char *a, const char *b);
/* The candidate within 2 edits of name (and fewer edits than its length), or NULL. */
const char *name_closest(const char *name, const char *const *cands, int n);

#endif
