/* strbuf.c - a growing text buffer (see strbuf.h). */
#include "core/strbuf.h"

#include "core/str.h"
#include "repocache/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void rc_strbuf_printf(rc_strbuf *b, const char *fmt, ...)
{
    for (int pass = 0; pass < 2 && !b->oom; pass++) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s)
            b->oom = true;
        else {
            b->s = s;
            b->cap = cap;
        }
    }
}

int rc_strbuf_finish(rc_strbuf *b, char **out)
{
    *out = NULL;
    if (!b->oom && !b->s)
        b->s = rc_strdup("");
    if (b->oom || !b->s) {
        free(b->s);
        *b = (rc_strbuf){0};
        return rc_seterr(RC_ENOMEM, "out of memory");
    }
    *out = b->s;
    *b = (rc_strbuf){0};
    return RC_OK;
}
