/*
 * strset.h - a set of distinct owned strings in insertion order: an array
 * plus an open-addressing index (hash.h), so adding n strings
 * costs O(n) whatever repeats. Used by the remembered deletes and by the
 * decorator's key sets. Not thread-safe.
 */
#ifndef RC_CORE_STRSET_H
#define RC_CORE_STRSET_H

#include <stdbool.h>
#include <stddef.h>

typedef struct rc_strset {
    char **items;   /* the strings, in insertion order (owned) */
    size_t n;       /* strings held */
    size_t cap;     /* room in items */
    size_t *slots;  /* index: 0 = empty, else position in items + 1 */
    size_t nslots;  /* power of two, 4 x cap (0 when empty) */
} rc_strset;

/* An empty set (all zero is one too). */
void rc_strset_init(rc_strset *s);
/* Frees every string and leaves s empty. */
void rc_strset_clear(rc_strset *s);
/* Whether str is in s. */
bool rc_strset_has(const rc_strset *s, const char *str);
/* Adds a copy of str unless present. RC_OK, or RC_ENOMEM (s unchanged). */
int rc_strset_add(rc_strset *s, const char *str);
/* Adds str itself (malloc'd; s owns it from now on, and frees it at once when
 * it is already present). str == NULL stands for an allocation that failed:
 * RC_ENOMEM, as when there is no room (str is freed then). */
int rc_strset_take(rc_strset *s, char *str);
/* Moves src's strings into dst (which must be empty); src becomes empty. */
void rc_strset_move(rc_strset *dst, rc_strset *src);

#endif
