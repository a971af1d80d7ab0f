/* str.h - the string helpers every layer shares. Each returns NULL (or
 * RC_ENOMEM) when out of memory and accepts NULL where it says so. */
#ifndef RC_CORE_STR_H
#define RC_CORE_STR_H

#include <stddef.h>

/* A malloc'd copy of s; NULL when s is NULL or out of memory. */
char *rc_strdup(const char *s);
/* A malloc'd copy of the first n bytes of s (which need not be
 * NUL-terminated), NUL-terminated; NULL when out of memory. */
char *rc_strndup(const char *s, size_t n);
/* *out = s with Redis glob characters (* ? [ ] \) escaped by a backslash,
 * malloc'd. RC_OK, RC_EINVAL (NULL argument) or RC_ENOMEM. */
int rc_glob_escape(const char *s, char **out);

#endif
