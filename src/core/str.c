/* str.c - string helpers (see str.h). */
#include "core/str.h"

#include "repocache/status.h"

#include <stdlib.h>
#include <string.h>

char *rc_strdup(const char *s)
{
    return s ? rc_strndup(s, strlen(s)) : NULL;
}

char *rc_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        if (n)
            memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

int rc_glob_escape(const char *s, char **out)
{
    if (!s || !out)
        return rc_seterr(RC_EINVAL, "rc_glob_escape: NULL argument");
    char *e = malloc(2 * strlen(s) + 1), *o = e;
    if (!e)
        return rc_seterr(RC_ENOMEM, "out of memory");
    for (; *s; s++) {
        if (strchr("*?[]\\", *s))
            *o++ = '\\';
        *o++ = *s;
    }
    *o = '\0';
    *out = e;
    return RC_OK;
}
