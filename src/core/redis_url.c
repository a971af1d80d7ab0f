/* redis_url.c - REDIS_URL parsing and redaction (see redis_url.h). */
#include "core/redis_url.h"

#include "core/str.h"
#include "repocache/status.h"

#include <ctype.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* Decodes %XX escapes of s[0..n) into a new string; NULL on a bad escape or
 * on %00 (a NUL would cut the value short). */
static char *pct_decode(const char *s, size_t n, bool *bad)
{
    char *out = malloc(n + 1), *o = out;
    *bad = false;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n) { /* fewer than two hex digits follow */
                *bad = true;
                break;
            }
            char hex[3] = {s[i + 1], s[i + 2], 0};
            *o = (char)strtol(hex, NULL, 16);
            if (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1]) ||
                !*o++) {
                *bad = true;
                break;
            }
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    if (*bad) {
        free(out);
        return NULL;
    }
    *o = '\0';
    return out;
}

/* Length of the scheme of url ("redis" of "redis://..."): a letter, then
 * letters, digits, + - or ., ended by ':'; 0 when url has none. */
static size_t scheme_len(const char *url)
{
    size_t n = 0;
    if (!isalpha((unsigned char)url[0]))
        return 0;
    while (isalnum((unsigned char)url[n]) || url[n] == '+' || url[n] == '-' ||
           url[n] == '.')
        n++;
    return url[n] == ':' ? n : 0;
}

/* A copy of url safe to print, in buf, whatever its shape: everything before
 * the last '@' that could be a secret becomes "***". In a URL of the form
 * scheme://user:password@... only the password goes (the parser reads the
 * user up to the first ':'); in any other shape ("redis:/u:pw@h",
 * "redis//:pw@h", "scheme://pw@h") all of it does, up to the last '@'. */
const char *rc_redis_url_redact(const char *url, char *buf, size_t size)
{
    const char *at = strrchr(url, '@');
    size_t keep = scheme_len(url);
    if (!at)
        return snprintf(buf, size, "%s", url), buf;
    if (keep && strncmp(url + keep, "://", 3) == 0) {
        const char *info = url + keep + 3;
        const char *colon = memchr(info, ':', (size_t)(at - info));
        if (colon)
            return snprintf(buf, size, "%.*s:***%s", (int)(colon - url), url, at), buf;
        keep += 3;
    } else if (keep) {
        keep++; /* the ':' */
        while (url[keep] == '/')
            keep++;
    }
    if (url + keep > at) /* "redis://@h" or the like: nothing to hide */
        keep = (size_t)(at - url);
    snprintf(buf, size, "%.*s***%s", (int)keep, url, at);
    return buf;
}

/* ---- REDIS_URL ---- */

void rc_redis_url_clear(rc_redis_url *u)
{
    free(u->host);
    free(u->unix_path);
    free(u->user);
    free(u->password);
    memset(u, 0, sizeof *u);
}

static int url_error(const char *url, const char *why)
{
    char shown[512];
    return rc_seterr(RC_ECONFIG, "REDIS_URL: bad value '%s' (%s)",
                     rc_redis_url_redact(url, shown, sizeof shown), why);
}

/* "user:password" or "user" (or ":password") into u->user / u->password. */
static int parse_userinfo(const char *url, const char *s, size_t n, rc_redis_url *u)
{
    const char *colon = memchr(s, ':', n);
    size_t ulen = colon ? (size_t)(colon - s) : n;
    bool bad = false;
    if (ulen) {
        u->user = pct_decode(s, ulen, &bad);
        if (!u->user)
            return bad ? url_error(url, "bad %-escape in the user name")
                       : rc_seterr(RC_ENOMEM, "out of memory");
    }
    if (colon) {
        u->password = pct_decode(colon + 1, n - ulen - 1, &bad);
        if (!u->password)
            return bad ? url_error(url, "bad %-escape in the password")
                       : rc_seterr(RC_ENOMEM, "out of memory");
    }
    return RC_OK;
}

static int parse_db(const char *url, const char *s, int *db)
{
    char *end;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (!*s || !isdigit((unsigned char)*s) || *end || errno || n < 0 || n > 1000000)
        return url_error(url, "the database must be an integer >= 0");
    *db = (int)n;
    return RC_OK;
}

/* unix:///absolute/path.sock[?db=N] (url starts with "unix://"). */
static int parse_unix_url(const char *url, rc_redis_url *u)
{
    const char *p = url + 7, *q = strchr(p, '?');
    size_t plen = q ? (size_t)(q - p) : strlen(p);
    if (plen < 2 || p[0] != '/')
        return url_error(url, "expected unix:///absolute/path.sock[?db=N]");
    u->unix_path = rc_strndup(p, plen);
    if (!u->unix_path)
        return rc_seterr(RC_ENOMEM, "out of memory");
    if (!q)
        return RC_OK;
    if (strncmp(q, "?db=", 4) != 0)
        return url_error(url, "the only query parameter is db=N");
    return parse_db(url, q + 4, &u->db);
}

/* The port of ":PORT" at colon, ending at end, into u->port. */
static int parse_port(const char *url, const char *colon, const char *end,
                      rc_redis_url *u)
{
    char port[16];
    size_t n = (size_t)(end - colon - 1);
    long v = 0;
    char *stop = NULL;
    if (n > 0 && n < sizeof port) {
        memcpy(port, colon + 1, n);
        port[n] = '\0';
        errno = 0;
        v = isdigit((unsigned char)port[0]) ? strtol(port, &stop, 10) : 0;
    }
    if (!stop || *stop || errno || v < 1 || v > 65535)
        return url_error(url, "the port must be an integer 1-65535");
    u->port = (int)v;
    return RC_OK;
}

/* host[:port] or [ipv6][:port], the n bytes at p, into u. */
static int parse_host_port(const char *url, const char *p, size_t n,
                           rc_redis_url *u)
{
    const char *end = p + n, *colon = NULL;
    if (*p == '[') { /* [ipv6]:port */
        const char *rb = memchr(p, ']', n);
        if (!rb)
            return url_error(url, "unterminated [IPv6 address]");
        u->host = rc_strndup(p + 1, (size_t)(rb - p - 1));
        if (rb + 1 < end) {
            if (rb[1] != ':')
                return url_error(url, "expected :port after the ]");
            colon = rb + 1;
        }
    } else {
        colon = memchr(p, ':', n);
        u->host = rc_strndup(p, colon ? (size_t)(colon - p) : n);
    }
    if (!u->host)
        return rc_seterr(RC_ENOMEM, "out of memory");
    if (!*u->host)
        return url_error(url, "missing host");
    return colon ? parse_port(url, colon, end, u) : RC_OK;
}

/* redis://[user[:password]@]host[:port][/db] (url starts with "redis://"). */
static int parse_tcp_url(const char *url, rc_redis_url *u)
{
    const char *p = url + (u->tls ? 9 : 8);
    const char *at = strrchr(p, '@');
    if (at) {
        int st = parse_userinfo(url, p, (size_t)(at - p), u);
        if (st)
            return st;
        p = at + 1;
    }
    const char *slash = strchr(p, '/');
    int st = parse_host_port(url, p, slash ? (size_t)(slash - p) : strlen(p), u);
    if (st == RC_OK && slash && slash[1])
        st = parse_db(url, slash + 1, &u->db);
    return st;
}

/* Parses a REDIS_URL into u (port 6379 and db 0 unless given). */
int rc_redis_url_parse(const char *url, rc_redis_url *u)
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (strncasecmp(url, "rediss://", 9) == 0) {
        u->tls = true;
        return parse_tcp_url(url, u);
    }
    if (strncasecmp(url, "unix://", 7) == 0)
        return parse_unix_url(url, u);
    if (strncasecmp(url, "redis://", 8) == 0)
        return parse_tcp_url(url, u);
    return url_error(url, "expected redis[s]://[user[:password]@]host[:port][/db] "
                          "or unix:///path.sock[?db=N]");
}
