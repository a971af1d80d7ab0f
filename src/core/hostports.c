/* hostports.c - see hostports.h. */
#include "core/hostports.h"

#include "core/str.h"
#include "repocache/status.h"

#include <stdlib.h>
#include <string.h>

/* Parses one "host:port" of len bytes at s into *hp. */
static int parse_one(const char *setting, const char *s, size_t len, rc_hostport *hp)
{
    const char *colon = NULL, *host = s;
    size_t host_len;
    if (len && s[0] == '[') { /* [v6]:port */
        const char *close = memchr(s, ']', len);
        if (!close || close + 1 >= s + len || close[1] != ':')
            goto bad;
        host = s + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        for (size_t i = 0; i < len; i++)
            if (s[i] == ':')
                colon = s + i;
        if (!colon)
            goto bad;
        host_len = (size_t)(colon - s);
        if (memchr(s, ':', host_len)) /* a bare IPv6 address needs brackets */
            goto bad;
    }
    const char *p = colon + 1, *end = s + len;
    long port = 0;
    if (p == end || end - p > 5)
        goto bad;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            goto bad;
        port = port * 10 + (*p - '0');
    }
    if (host_len == 0 || port < 1 || port > 65535)
        goto bad;
    hp->host = malloc(host_len + 1);
    if (!hp->host)
        return rc_seterr(RC_ENOMEM, "out of memory");
    memcpy(hp->host, host, host_len);
    hp->host[host_len] = '\0';
    hp->port = (int)port;
    return RC_OK;
bad:
    return rc_seterr(RC_ECONFIG, "%s: bad entry '%.*s' (expected host:port, "
                                 "[v6 address]:port, separated by commas)",
                     setting, (int)(len > 200 ? 200 : len), s);
}

int rc_hostports_parse(const char *setting, const char *list, rc_hostports *out)
{
    memset(out, 0, sizeof *out);
    size_t cap = 1;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    out->items = calloc(cap, sizeof *out->items);
    if (!out->items)
        return rc_seterr(RC_ENOMEM, "out of memory");
    const char *s = list;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        while (len && (*s == ' ' || *s == '\t'))
            s++, len--;
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        int st = parse_one(setting, s, len, &out->items[out->n]);
        if (st) {
            rc_hostports_clear(out);
            return st;
        }
        out->n++;
        if (!comma)
            return RC_OK;
        s = comma + 1;
    }
}

void rc_hostports_clear(rc_hostports *l)
{
    for (size_t i = 0; l->items && i < l->n; i++)
        free(l->items[i].host);
    free(l->items);
    memset(l, 0, sizeof *l);
}
