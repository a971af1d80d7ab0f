/* str.h - the string helpers every layer shares. Each returns NULL (or
 * RC_ENOMEM) when out of memory and accepts NULL where it says so. */
#ifndef RC_CORE_STR_H
#define RC_CORE_STR_H

#include <stdbool.h>
#include <stddef.h>

/* A malloc'd copy of s; NULL when s is NULL or out of memory. */
char *rc_strdup(const char *s);
/* A malloc'd a followed by b; NULL when out of memory. */
char *rc_str_concat(const char *a, const char *b);
/* A malloc'd copy of the first n bytes of s (which need not be
 * NUL-terminated), NUL-terminated; NULL when out of memory. */
char *rc_strndup(const char *s, size_t n);
/* *out = s with Redis glob characters (* ? [ ] \) escaped by a backslash,
 * malloc'd. RC_OK, RC_EINVAL (NULL argument) or RC_ENOMEM. */
int rc_glob_escape(const char *s, char **out);
/* Whether s is an int written the one canonical way: decimal digits, no
 * leading zero (but "0"), an optional '-' (but not "-0"), nothing else, in
 * the range of int; the value in *out (NULL: not wanted). So "3" is
 * canonical and "03", "+3", " 3" and "3 " are not. */
bool rc_int_canonical(const char *s, int *out);

#endif
