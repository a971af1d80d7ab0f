/* hostports.h - lists of "host:port,host:port" (REDIS_SENTINELS): parsed
 * once, each host a name, an IPv4 address or a [bracketed] IPv6 one. */
#ifndef RC_CORE_HOSTPORTS_H
#define RC_CORE_HOSTPORTS_H

#include <stddef.h>

typedef struct rc_hostport {
    char *host; /* without brackets */
    int port;
} rc_hostport;

typedef struct rc_hostports {
    rc_hostport *items;
    size_t n;
} rc_hostports;

/* Parses list into *out (zeroed first; at least one entry, no empty ones,
 * ports 1-65535). RC_OK; RC_ECONFIG naming setting and the bad entry;
 * RC_ENOMEM. On failure *out holds nothing to free. */
int rc_hostports_parse(const char *setting, const char *list, rc_hostports *out);
void rc_hostports_clear(rc_hostports *l);

#endif
