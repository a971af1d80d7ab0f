/*
 * tracking.h - keeps the near cache coherent across processes with Redis
 * server-assisted invalidation (Redis 7 on RESP2).
 *
 * Two connections of our own, opened like the pool's (rc_pool_connect):
 *   subscriber  SUBSCRIBE __redis__:invalidate
 *   control     CLIENT TRACKING on REDIRECT <subscriber id> BCAST
 *               PREFIX <p1> PREFIX <p2> ...  (one prefix per cached namespace)
 * In BCAST mode Redis writes the invalidation of a key to the subscriber
 * before it replies to the client whose write changed the key, so by the time
 * a writer in any process returns, the invalidation is on its way to us.
 *
 * A background thread owns both connections. It polls them; when the
 * subscriber becomes readable it raises a "pending" flag and applies what
 * arrived (hooks.invalidate per key; hooks.flush for a FLUSHALL/FLUSHDB).
 * The hit path reads one atomic word (rc_tracking_ready): coherent and
 * nothing pending -> serve; pending -> apply first (rc_tracking_sync, a
 * non-blocking read); not coherent -> do not serve. Before a value fetched
 * from Redis enters the near cache, rc_tracking_sync applies everything that
 * has reached the socket, so an invalidation that overtook the reply removes
 * the fill's placeholder first (see near.h).
 *
 * Coherence is lost when either connection fails or closes (poll sees the
 * EOF at once), when the periodic CLIENT TRACKINGINFO on the control
 * connection goes unanswered for REDIS_SOCKET_TIMEOUT or reports the redirect
 * broken, or when a namespace is added (tracking must be re-armed). Redis
 * tells a RESP2 client nothing when one side drops, so the thread checks
 * both itself. Nothing is ever sent on the subscriber: a reply there (a PONG)
 * could make Redis write the subscriber's output after a writer's reply in
 * the same event-loop pass, and delay an invalidation past the write's
 * return. On loss, hooks.flush
 * empties the near cache at once and nothing is served until both
 * connections are back, tracking is re-armed, and the cache has been emptied
 * once more (placeholders set during the gap die there).
 */
#ifndef RC_CACHE_TRACKING_H
#define RC_CACHE_TRACKING_H

#include "cache/pool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rc_tracking rc_tracking;

/* What the tracker does to the near cache. */
typedef struct rc_tracking_hooks {
    void (*invalidate)(void *ud, const char *key); /* key may have changed */
    void (*flush)(void *ud);                       /* anything may have */
    void *ud;                                      /* their argument */
} rc_tracking_hooks;

/* Counters. */
typedef struct rc_tracking_stats {
    uint64_t invalidations;    /* keys (and flushes) received */
    uint64_t losses;           /* times coherence was lost */
    uint64_t arms;             /* times tracking was (re-)armed */
    bool coherent;             /* serving now */
} rc_tracking_stats;

/* A tracker using pool's connection settings (borrowed: it must outlive the
 * tracker); nothing connects until the first prefix is added. ping_s: the
 * period of the liveness PINGs; where: for messages. RC_OK or RC_ENOMEM. */
int rc_tracking_new(rc_pool *pool, const char *where, int log_level, double ping_s,
                    rc_tracking_hooks hooks, rc_tracking **out);
/* Stops the thread and closes both connections; accepts NULL. */
void rc_tracking_free(rc_tracking *t);
/* Tracks keys starting with prefix too (re-arming tracking when it is new).
 * Starts the thread on first use. RC_OK or RC_ENOMEM. */
int rc_tracking_add_prefix(rc_tracking *t, const char *prefix);

/* Whether the near cache may serve now: coherent, with every invalidation
 * that has reached the process applied. strict: look at the subscriber
 * socket first, so nothing already in its buffer is missed: one poll with
 * no wait and no lock when it holds nothing (plain TCP or a Unix socket;
 * over TLS, and when bytes are there, a drain under the subscriber's lock).
 * Not strict: apply what the thread has seen arrive (one atomic load and a
 * clock read when nothing is pending), and read the socket here only when
 * no drain began in the last RC_TRACKING_MAX_LAG seconds; so an invalidation
 * that reached the socket is applied before any hit that begins more than
 * that after it arrived, however late the thread is scheduled. */
bool rc_tracking_ready(rc_tracking *t, bool strict);
/* rc_tracking_ready with the caller's reading of rc_clock_monotonic. */
bool rc_tracking_ready_at(rc_tracking *t, bool strict, double now);
/* rc_tracking_ready_at(t[i], true, ...) of each of n trackers (2 to 16),
 * with one poll of all their sockets when every one is coherent and
 * quiet; else each asked in turn. */
bool rc_tracking_ready_all(rc_tracking *const *t, size_t n, double now);
/* The bound of the not-strict mode, seconds. */
#define RC_TRACKING_MAX_LAG 0.001
/* Applies every invalidation that has reached the subscriber socket (one
 * non-blocking read at least). */
void rc_tracking_sync(rc_tracking *t);
/* Marks coherence lost now (the breaker opened, say): the near cache is
 * emptied and the thread reconnects and re-arms. */
void rc_tracking_lose(rc_tracking *t, const char *why);
/* The counters now. */
void rc_tracking_get_stats(rc_tracking *t, rc_tracking_stats *st);

#endif
