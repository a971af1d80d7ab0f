/* strbuf.h - a growing text buffer written with printf formats; an
 * allocation failure is remembered and reported once, at the end. */
#ifndef RC_CORE_STRBUF_H
#define RC_CORE_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct rc_strbuf {
    char *s;    /* the text, NUL-terminated (NULL until the first write) */
    size_t len; /* its length */
    size_t cap; /* room in s */
    bool oom;   /* a write failed for memory: the text is incomplete */
} rc_strbuf;

/* Appends the formatted text (nothing once oom). */
void rc_strbuf_printf(rc_strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* *out = the text (the caller frees it; "" when nothing was written) and b
 * is emptied. RC_OK, or RC_ENOMEM (then *out is NULL and b freed). */
int rc_strbuf_finish(rc_strbuf *b, char **out);

#endif
