/*
 * service.h - the insides of the cache service, private to src/cache (and
 * its tests): the service object, what its files share, and the raw calls
 * below the public API. The layers above see cache/lease.h only.
 *
 * The files of the service:
 *   cache.c    lifecycle, clock, keys and prefix
 *   call.c     the path of every Redis call (breaker, pool, replay first,
 *              availability), raw pipelines, error replies
 *   replay.c   remembered deletes and their replay (UNLINK batches, SCAN)
 *   values.c   get/set/del/exists/ttl/clear/mget/mset/get_or_load, and the
 *              fallback as a value store
 *   queue.c    the FIFO queue
 *   stats.c    statistics
 *   lease.c    the fencing protocol (lease.h)
 *   tier.c     the near cache as the service offers it (lease.h), with
 *              near.c (the store) and tracking.c (its coherence)
 *   script.c   Lua scripts by EVALSHA
 *   identity.c Redis's identity (run_id) and the trust in it: a new one is
 *              dropped once, the outbox applied, before Redis is used
 *   outbox.c   the invalidation outbox: registered sources, applying rows
 *              to Redis and to the fallback (outbox.h)
 *   watch.c    the service's thread: background probes while the breaker
 *              is open, the outbox polled every CACHE_OUTBOX_POLL_MS
 *   cluster.c  with REDIS_CLUSTER_NODES: the masters and the slot map
 *              (cluster.h); route.c: the path of a call through them
 *   breaker.c, pool.c, pending.c, fallback.c: the parts they are built of
 *   link.c, wire.c, tls.c, resolve.c: the connections (a socket or a TLS
 *              session of ours, RESP on it, every wait bounded)
 */
#ifndef RC_CACHE_SERVICE_H
#define RC_CACHE_SERVICE_H

#include "cache/breaker.h"
#include "cache/cluster.h"
#include "cache/fallback.h"
#include "cache/fleet.h"
#include "cache/lease.h"
#include "cache/metrics.h"
#include "cache/near.h"
#include "cache/outbox.h"
#include "cache/pending.h"
#include "cache/pool.h"
#include "cache/tracking.h"
#include "cache/wire.h"
#include "repocache/cache.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Whether the last call reached Redis (rc_cache.avail). */
enum { RC_AVAIL_UNKNOWN = 0, RC_AVAIL_UP = 1, RC_AVAIL_DOWN = 2 };

struct rc_cache {
    char *prefix;          /* CACHE_KEY_PREFIX, never NULL */
    char *escaped_prefix;  /* prefix with glob characters escaped */
    bool enabled;          /* REDIS_ENABLED */
    bool fallback_enabled; /* CACHE_FALLBACK_ENABLED */
    size_t max_value_bytes; /* CACHE_MAX_VALUE_BYTES */
    int log_level;         /* LOG_LEVEL */
    char where[300];       /* "host:port" or socket path, for messages */
    rc_pool pool;          /* the connections */
    rc_breaker breaker;    /* the circuit breaker */
    rc_fallback *fb;       /* the in-memory fallback and its fence */
    /* the near cache (tier.c); both NULL when CACHE_L1_ENABLED=false or
     * REDIS_ENABLED=false */
    rc_near *near;         /* decoded values in front of Redis */
    rc_tracking *tracking; /* keeps near coherent across processes (NULL
                              with a cluster: one per master, cluster.h) */
    bool single_flight;    /* CACHE_SINGLE_FLIGHT */
    bool near_strict;      /* CACHE_L1_STRICT */
    rc_deletes dels;       /* remembered deletes (replay.c); with a
                              cluster, those no master could be named for */
    struct rc_cluster *cluster; /* REDIS_CLUSTER_NODES: the masters, each
                                   with its pool, breaker and deletes
                                   (cluster.h); NULL: one server (pool) */
    /* statistics */
    atomic_uint_fast64_t hits, misses, sets, deletes, errors, fallback_hits;
    atomic_uint_fast64_t oversized_skipped; /* rc_cache_value_oversized */
    atomic_int avail; /* RC_AVAIL_* */
    atomic_bool degraded;        /* the breaker opened since Redis was last up */
    _Atomic double refused_logged; /* clock time of the last refusal logged */
    _Atomic double fills_paused_until; /* no fills before (Redis said OOM) */
    /* Redis's identity and the trust in it (identity.c) */
    pthread_mutex_t trust_mu;  /* one recovery at a time; guards run_id */
    char run_id[RC_IDENTITY_MAX]; /* identity of the Redis trusted last
                                     ("<run_id>:<master_replid>"), "" */
    atomic_uint trust_gen;     /* bumped whenever trust is lost */
    atomic_uint trusted_gen;   /* trust_gen when last recovered: trusted
                                  while the two are equal */
    atomic_uint_fast64_t identity_changes, identity_drops;
    atomic_uint_fast64_t unacked; /* invalidations the replicas did not
                                     acknowledge in time (Sentinel) */
    atomic_uint_fast64_t acked;   /* invalidations applied (and with
                                     Sentinel acknowledged); for tests */
    /* the outbox (outbox.c) */
    pthread_mutex_t watch_mu;  /* guards watches and their use */
    struct rc_watch *watches;  /* registered sources */
    int outbox_poll_ms;        /* CACHE_OUTBOX_POLL_MS */
    atomic_uint_fast64_t ob_written, ob_applied, ob_pending;
    /* the service's thread (watch.c) */
    pthread_t watch_thread;    /* started when Redis is enabled */
    bool watch_running;        /* watch_thread exists */
    pthread_mutex_t wake_mu;   /* guards watch_stop */
    pthread_cond_t wake_cv;    /* wakes the thread to stop */
    bool watch_stop;           /* the thread must end */
    /* metrics of the cached repositories (metrics.c) and the fleet (fleet.c) */
    bool metrics_timed;             /* CACHE_METRICS_ENABLED */
    pthread_mutex_t metrics_mu;     /* guards metrics and retired */
    rc_metrics *metrics;            /* one block per live repository */
    rc_metrics_totals *retired;     /* per namespace: repositories gone */
    size_t nretired;                /* how many */
    atomic_uint_fast64_t decode_unlogged; /* decode errors not yet logged */
    _Atomic double decode_logged;   /* clock time of the last one logged */
    rc_fleet *fleet;                /* what was last sent to Redis */
};

/* ---- raw commands (call.c, script.c) ---- */

/* Commands are rc_cmd (wire.h). */

/*
 * Runs n commands pipelined on one pooled context: one round trip.
 * replies[i] (caller frees with freeReplyObject) may be an error reply.
 * RC_OK when every reply arrived; RC_EUNAVAILABLE when Redis is disabled,
 * unreachable, timed out or the breaker is open (replies all NULL; the failure
 * is counted and fed to the breaker). Remembered deletes are replayed on the
 * context before these commands.
 */
int rc_cache_exec(rc_cache *c, const rc_cmd *cmds, size_t n,
                  redisReply **replies);

/* rc_cache_exec of invalidations: with Sentinel, followed in the same
 * round trip by WAIT <replicas> <REDIS_SOCKET_TIMEOUT / 2>, the replicas
 * the sentinel saw up when the connection was opened (link.h). Fewer
 * acknowledgements: RC_EUNAVAILABLE, as if Redis had not been reached (a
 * failover could lose them): the connection is discarded, trust dropped
 * (rc_identity_distrust), and the caller keeps what it deleted to delete
 * again. Without Sentinel, or with no replica, rc_cache_exec. */
int rc_cache_exec_durable(rc_cache *c, const rc_cmd *cmds, size_t n,
                          redisReply **replies);
/* The same on a context inside an rc_redis_fn, after its invalidations:
 * WAIT (one round trip) when rc_call_must_wait(ctx). */
int rc_call_wait(rc_cache *c, rc_link *ctx);
bool rc_call_must_wait(const rc_link *ctx);

/*
 * Runs a Lua script with EVALSHA (its SHA1 computed once), falling back to
 * EVAL on NOSCRIPT. keys/args are NUL-terminated except args with lengths in
 * arglens (NULL: all NUL-terminated). *reply as rc_cache_exec.
 */
int rc_cache_eval(rc_cache *c, const char *script, int nkeys,
                  const char *const *keys, int nargs, const char *const *args,
                  const size_t *arglens, redisReply **reply);
/* rc_cache_eval after the read command pre, in the same round trip;
 * *pre_reply its reply (NULL on failure; the caller frees it). On NOSCRIPT
 * both are sent again (pre must be safe to repeat). */
int rc_cache_eval_after(rc_cache *c, const rc_cmd *pre, redisReply **pre_reply,
                        const char *script, int nkeys, const char *const *keys,
                        int nargs, const char *const *args, const size_t *arglens,
                        redisReply **reply);

/* hex = the 40 lowercase hex digits + NUL of SHA1(data[0..n)) (script.c),
 * as Redis names a script. */
void rc_script_sha1_hex(const char *data, size_t n, char hex[41]);

/* Work done on one pooled context by rc_call_with. */
typedef int (*rc_redis_fn)(rc_cache *c, rc_link *ctx, void *ud);

/*
 * Runs fn on a pooled context, through the breaker,
 * after replaying remembered deletes. fn returns RC_EUNAVAILABLE (I/O error,
 * timeout, server loading) or RC_EAUTH (NOAUTH) only when Redis cannot be
 * used; the context is then discarded and the failure fed to the breaker.
 * Returns RC_OK, fn's status, RC_EUNAVAILABLE or RC_EAUTH (with rc_errmsg).
 */
int rc_call_with(rc_cache *c, rc_redis_fn fn, void *ud);
/* Sends n commands on ctx, then reads n replies into replies[] (all NULL on
 * failure). RC_EUNAVAILABLE on I/O errors, timeouts and a server still
 * loading, RC_EAUTH on NOAUTH, RC_ENOMEM. */
int rc_call_pipeline(rc_cache *c, rc_link *ctx, const rc_cmd *cmds,
                     size_t n, redisReply **replies);
/* rc_call_pipeline of one server (not a stand-in) in its two halves, so
 * several servers' pipelines can be in flight at once (route.c): the
 * commands sent, then their n replies read. */
int rc_call_send(rc_cache *c, rc_link *ctx, const rc_cmd *cmds, size_t n);
int rc_call_receive(rc_cache *c, rc_link *ctx, redisReply **replies, size_t n);
/* rc_cache_exec of one command; *reply owned by the caller. */
int rc_call_one(rc_cache *c, int argc, const char *const *argv,
                const size_t *lens, redisReply **reply);
/* One command whose reply is an integer, into *out. */
int rc_call_integer(rc_cache *c, int argc, const char *const *argv,
                    long long *out);
/* RC_OK when r is not an error reply; else RC_EBACKEND with its text
 * (counted as an error, and logged as a warning at most once per
 * RC_REFUSAL_LOG_PERIOD seconds). An -OOM reply also pauses fills for
 * RC_FILL_PAUSE seconds (rc_call_fills_paused). */
int rc_call_reply_error(rc_cache *c, const redisReply *r, const char *what);
/* Whether fills are paused now because Redis refused one for memory. */
bool rc_call_fills_paused(rc_cache *c);
#define RC_REFUSAL_LOG_PERIOD 10.0
#define RC_FILL_PAUSE 10.0

/* The commands of one pipeline and room for their arguments and replies. */
typedef struct rc_batch {
    size_t n;             /* commands */
    rc_cmd *cmds;         /* the commands */
    const char **argv;    /* every command's arguments, one after another */
    size_t *argvlen;      /* their lengths (NULL when not asked for) */
    redisReply **replies; /* one per command (NULL until they arrive) */
} rc_batch;

/* Allocates b for n commands with nargs arguments in all (and their
 * lengths when with_lens). RC_OK or RC_ENOMEM (b then holds what it got:
 * rc_batch_free it either way). */
int rc_batch_alloc(rc_batch *b, size_t n, size_t nargs, bool with_lens);
/* Frees b's replies and room. */
void rc_batch_free(rc_batch *b);

/* Whether the service would try Redis now (enabled and breaker not open). */
bool rc_cache_redis_usable(rc_cache *c);

/* The statistics known in the process (no Redis call: used_memory_human
 * "" and keys -1). */
void rc_stats_local(rc_cache *c, rc_cache_stats *st);

/* The breaker's state now, without touching Redis (rc_cache_get_stats asks
 * the server for memory and key count, which is a Redis call). */
rc_circuit_state rc_cache_circuit(rc_cache *c);

/* For tests: how many connects the pool has attempted so far (every
 * redisConnect*, successful or not). */
uint64_t rc_cache_debug_connects(rc_cache *c);


/* ---- through a Redis Cluster (route.c) ---- */

/* rc_call_with with a cluster: fn runs on a stand-in link whose commands
 * go to their keys' masters (rc_call_pipeline on it), after the deletes
 * remembered before any map was known are replayed. */
int rc_route_call(rc_cache *c, rc_redis_fn fn, void *ud);
/* rc_call_pipeline on a stand-in link: each command sent to the master of
 * its key's slot (one round trip per master), redirects followed. RC_OK
 * when every reply arrived (error replies included); RC_EUNAVAILABLE when a
 * master could not be used (replies all NULL); RC_EINVAL for a command
 * without a key outside rc_route_each_master. */
int rc_route_pipeline(rc_cache *c, rc_link *ctx, const rc_cmd *cmds, size_t n,
                      redisReply **replies);
/* Whether ctx is a stand-in link not pinned to one master. */
bool rc_route_unpinned(const rc_link *ctx);
/* Runs fn on ctx pinned to each master of the map in turn (its commands
 * without a key go there); every master is tried, the first failure
 * returned. */
int rc_route_each_master(rc_cache *c, rc_link *ctx, rc_redis_fn fn, void *ud);

/* ---- remembered deletes (replay.c) ---- */

/*
 * Remembers keys whose delete could not reach Redis; they are deleted (in
 * one pipeline) before any other command uses Redis again. When more than a
 * bound are pending, the service instead forgets them and drops every key
 * under the prefix matching drop_glob (escaped prefix + glob, e.g. "hero:*")
 * on recovery. RC_OK or RC_ENOMEM (then everything under the prefix is
 * dropped on recovery). With n == 0 and a drop_glob, remembers that pattern
 * drop itself (as a failed rc_cache_clear does). A no-op with
 * REDIS_ENABLED=false. The bound is 10000 keys.
 */
int rc_cache_remember_deletes(rc_cache *c, const char *const *keys, size_t n,
                              const char *drop_glob);
/* rc_cache_remember_deletes into d (the service's, or a master's). RC_OK
 * or RC_ENOMEM (then everything under the prefix is dropped on replay). */
int rc_deletes_remember(rc_cache *c, rc_deletes *d, const char *const *keys, size_t n,
                        const char *drop_glob);
/* Replays the remembered deletes of d on ctx before anything else uses
 * that server; while a replay runs, every other caller that sees deletes
 * pending waits for it. RC_OK, or the failure (the deletes are kept for the
 * next call). */
int rc_replay_pending(rc_cache *c, rc_deletes *d, rc_link *ctx);
/* SCAN MATCH pattern (a full pattern) + UNLINK of every batch found;
 * *removed += count. */
int rc_replay_scan_unlink(rc_cache *c, rc_link *ctx, const char *pattern,
                          long long *removed);

/* ---- Redis's identity and the outbox (identity.c, outbox.c, watch.c) ---- */

/* Before conn's first use after it was opened or trust was lost: checks
 * Redis's run_id (INFO server) and, when this service has not trusted that
 * identity, has every registered namespace dropped once (a marker key per
 * run_id and namespace says who does it; the others wait for it to be
 * done); then, unless trusted already, applies the outbox. Only then does
 * the caller use Redis. RC_OK or the failure (RC_EUNAVAILABLE ...). */
int rc_identity_verify(rc_cache *c, rc_conn *conn);
/* rc_identity_verify for a cluster's master: its identity checked on conn
 * once per node->gen; a new one has every namespace dropped there first
 * (the claims named with tag, a hash tag of a slot it serves, so that they
 * live there). The outbox is not applied here (watch.c applies it through
 * every master). RC_OK or the failure. */
int rc_identity_verify_node(rc_cache *c, rc_cnode *node, rc_conn *conn, const char *tag);
/* Whether conn was verified against node's identity as it is now (then
 * rc_identity_verify_node has nothing to do). */
bool rc_identity_node_verified(rc_cnode *node, const rc_conn *conn);
/* Trust is lost (the breaker opened): every connection is verified again
 * and the outbox applied before Redis is used. */
void rc_identity_distrust(rc_cache *c);
/* Whether Redis is trusted now. */
bool rc_identity_trusted(rc_cache *c);
/* The registered namespaces, for the identity drop: calls fn with each
 * source's globs under watch_mu; stops at the first failure. */
int rc_outbox_each_namespace(rc_cache *c,
                             int (*fn)(rc_cache *c, rc_link *ctx,
                                       const rc_outbox_source *src, void *ud),
                             rc_link *ctx, void *ud);
/* Applies every pending row of every source to Redis on ctx (one UNLINK per
 * row, pipelined; a pattern row by SCAN, leases first) and removes the rows
 * applied. RC_OK or the failure (rows kept). */
int rc_outbox_apply(rc_cache *c, rc_link *ctx);
/* Whether the calling thread is inside rc_outbox_apply (whose commands
 * must not start another). */
bool rc_outbox_applying(void);
/* Has every source mark the rows applied so far (the marks may wait for a
 * write otherwise). */
void rc_outbox_flush(rc_cache *c);
/* Whether any source has a row pending (reads the stores, not Redis). */
bool rc_outbox_pending(rc_cache *c);
/* While Redis is away: removes from the fallback the keys of the rows not
 * seen yet (rows stay for Redis). */
void rc_outbox_to_fallback(rc_cache *c);
/* Starts / stops the service's thread (watch.c). */
int rc_watch_start(rc_cache *c);
void rc_watch_stop(rc_cache *c);

/* ---- the near cache (tier.c) ---- */

/* Builds c->near and c->tracking from s when the near cache is on. RC_OK or
 * RC_ENOMEM. */
int rc_tier_init(rc_cache *c, const rc_settings *s);
/* Stops tracking and frees the near cache; accepts a service without one. */
void rc_tier_free(rc_cache *c);
/* A tracker of the server behind pool (borrowed) whose hooks keep the
 * near cache: one per service, or per master with a cluster. */
int rc_tier_tracker(rc_cache *c, rc_pool *pool, const char *where, rc_tracking **out);
/* Empties the near cache's values (not the outage entries). */
void rc_tier_flush(rc_cache *c);

/* ---- values (values.c) ---- */

/* *val = a malloc'd copy of s[0..n), NUL-terminated; *len = n (len may be
 * NULL). RC_OK or RC_ENOMEM. */
int rc_values_copy(const char *s, size_t n, char **val, size_t *len);
/* The fallback's answer to a get (RC_ENOTFOUND when it is disabled);
 * counts the hit or miss. */
int rc_values_fallback_get(rc_cache *c, const char *key, char **val,
                           size_t *len);

/* Stores directly in the fallback (no fence); RC_EUNAVAILABLE while Redis is
 * in use or with the fallback disabled. */
int rc_cache_fallback_set(rc_cache *c, const char *key, const char *val,
                          size_t len, int ttl);

#endif
