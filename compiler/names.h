/* How close two names are, for "did you mean" hints in every stage; how
 * wide a name prints, for the tables that list class names. */
#ifndef MWT_NAMES_H
#define MWT_NAMES_H

#include <stdio.h>

/* Levenshtein distance, letters matching whatever their case; 99 past 40 characters. */
int name_distance(const char *a, const char *b);
/* The candidate within 2 edits of name (and fewer edits than its length), or NULL. */
const char *name_closest(const char *name, const char *const *cands, int n);

/* The built-in layers' names (LANGUAGE.md section 1), n of them in *n. */
const char *const *names_layers(int *n);
/* Whether name is a built-in layer's. */
int names_is_layer(const char *name);
/* For a PyTorch module's or parameter's name where the language has another
 * (Softmax, AdaptiveAvgPool2d, kernel_size, padding, ...): what to say, or the
 * parameter's name here; NULL for any other name. */
const char *names_torch_layer(const char *name);
const char *names_torch_param(const char *name);
/* The same for a loss term's or a schedule's name (CrossEntropyLoss: cross_entropy, CosineAnnealingLR: cosine). */
const char *names_torch_word(const char *name);

/* The terminal columns UTF-8 text s takes: one per character, two for the
 * wide East Asian ones, none for combining marks (printf's %-14s counts bytes,
 * so "Café" would push its row's columns one to the left). */
int name_width(const char *s);
/* The UTF-8 character at *p, advancing past it; a byte that starts none is
 * U+FFFD, one byte long. */
unsigned long name_utf8_next(const unsigned char **p);
/* s, then spaces up to width columns. */
void name_pad(FILE *out, const char *s, int width);

#endif
