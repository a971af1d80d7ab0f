/*
 * sentinel.h - finding the master through Redis Sentinel (REDIS_SENTINELS,
 * REDIS_SENTINEL_MASTER, REDIS_SENTINEL_PASSWORD), by the Sentinel client
 * rules: the sentinels are asked in order, each with a short timeout
 * (REDIS_SOCKET_TIMEOUT, at most 0.5 s), AUTH first when a sentinel password
 * is set, then SENTINEL get-master-addr-by-name <name>; the sentinel that
 * answered moves to the front of the list; the caller connects to the
 * address given and checks with ROLE that the server is a master there
 * (rc_sentinel_check_role), else asks again, starting at the next sentinel.
 *
 * In the same round trip the sentinel lists the master's replicas
 * (SENTINEL replicas <name>); those it sees up and that can be promoted
 * are what an invalidation waits for (WAIT, docs/consistency.md,
 * "Failover (Sentinel)").
 *
 * Links to sentinels are rc_links opened with the pool's rc_link_config
 * (its TLS context included) and the shorter timeout. Thread-safe.
 */
#ifndef RC_CACHE_SENTINEL_H
#define RC_CACHE_SENTINEL_H

#include "cache/link.h"
#include "repocache/settings.h"

typedef struct rc_sentinel rc_sentinel;

/* What one sentinel said. */
typedef struct rc_sentinel_master {
    char host[256];     /* the master's address */
    int port;
    char sentinel[300]; /* "host:port" of the sentinel that named it */
    int replicas;       /* replicas that sentinel sees up (not s_down,
                           o_down nor disconnected) with a priority other
                           than 0: those a failover could promote */
} rc_sentinel_master;

/* Builds the sentinel list from s (REDIS_SENTINELS, which must be set, and
 * REDIS_SENTINEL_MASTER). RC_OK; RC_ECONFIG (a bad list, no master name);
 * RC_ENOMEM. */
int rc_sentinel_new(const rc_settings *s, rc_sentinel **out);
/* Frees s (NULL is fine); the password is wiped first. */
void rc_sentinel_free(rc_sentinel *s);
/* The master's name (REDIS_SENTINEL_MASTER). */
const char *rc_sentinel_name(const rc_sentinel *s);

/* Asks the sentinels in their current order, starting with the skip-th
 * (the next ones after a master that failed its ROLE check), until one
 * names the master. RC_OK with *out filled; RC_EUNAVAILABLE naming the
 * last failure ("no sentinel knows master 'x'", "sentinel at h:p: connect
 * failed: ...", a refused AUTH); RC_ENOMEM. */
int rc_sentinel_ask(rc_sentinel *s, const rc_link_config *cfg, size_t skip,
                    rc_sentinel_master *out);
/* How many sentinels there are. */
size_t rc_sentinel_count(const rc_sentinel *s);

/* ROLE on l (connected and authenticated): RC_OK when it says master, else
 * RC_EUNAVAILABLE ("redis at <where>: not the master (role slave)") or the
 * I/O failure (l is then dead). */
int rc_sentinel_check_role(rc_link *l, const char *where);

#endif
