/* str.c - string helpers (see str.h). */
#include "core/str.h"

#include "repocache/status.h"

#include <limits.h>
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

bool rc_int_canonical(const char *s, int *out)
{
    const char *d = s + (*s == '-');
    size_t n = strlen(d);
    if (n == 0 || n > 10 || (d[0] == '0' && (n > 1 || d != s)))
        return false;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (d[i] < '0' || d[i] > '9')
            return false;
        v = 10 * v + (d[i] - '0');
    }
    v = d != s ? -v : v;
    if (v < INT_MIN || v > INT_MAX)
        return false;
    if (out)
        *out = (int)v;
    return true;
}

char *rc_str_concat(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *p = malloc(na + nb + 1);
    if (p) {
        memcpy(p, a, na);
        memcpy(p + na, b, nb + 1);
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
