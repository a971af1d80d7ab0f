/* redis_url.h - internal: REDIS_URL parsing for settings.c.
 *   redis://[user[:password]@]host[:port][/db]  (host may be [v6])
 *   rediss://...  the same, over TLS
 *   unix:///path.sock[?db=N]
 * Every message names the
 * URL only as rc_redis_url_redact shows it: never a password. */
#ifndef RC_CORE_REDIS_URL_H
#define RC_CORE_REDIS_URL_H

#include <stdbool.h>
#include <stddef.h>

/* A parsed URL; every string malloc'd (or NULL). */
typedef struct rc_redis_url {
    char *host, *unix_path, *user, *password; /* what the URL gave */
    int port, db;                             /* port 6379 and db 0 unless given */
    bool tls;                                 /* rediss:// */
} rc_redis_url;

/* Parses url into *u (zeroed first). RC_OK, or RC_ECONFIG naming the
 * problem, or RC_ENOMEM; on failure *u holds nothing to free. */
int rc_redis_url_parse(const char *url, rc_redis_url *u);
/* Frees u's strings and zeroes it. */
void rc_redis_url_clear(rc_redis_url *u);
/* A copy of url safe to print, in buf (see redis_url.c). */
const char *rc_redis_url_redact(const char *url, char *buf, size_t size);

#endif
