/*
 * repocache/cache.h - the cache service: Redis through a pool of
 * connections of its own (plain or TLS; hiredis parses the replies), with
 * timeouts, a circuit breaker, an in-process fallback store,
 * statistics and a FIFO queue. Usable on its own, without any repository.
 *
 * Thread-safe: any function may be called from any thread at once.
 *
 * Degradation: when Redis is disabled, unreachable or the breaker is open,
 * no call fails because of it: reads miss (or hit the fallback when enabled),
 * writes go to the fallback or report RC_EUNAVAILABLE, which callers may
 * ignore. Deletes that could not reach Redis are remembered and replayed
 * before Redis is used again by this service (see rc_cache_del_many).
 *
 * Guarantees the cached decorator relies on:
 * - Remembered deletes (failed rc_cache_del / rc_cache_del_many, failed
 *   writes (Redis may keep an older value of their key), failed clears, and
 *   rc_cache_remember_deletes) are replayed, in one pipeline of UNLINKs
 *   (plus SCAN+UNLINK for remembered patterns), before any other command
 *   uses Redis again: the first call that reaches Redis replays them on its
 *   context first, and every other call waits for that replay. A key is
 *   remembered once however often it is deleted; past 10000 distinct keys
 *   they are replaced by a drop of the given pattern (or of everything
 *   under the prefix).
 * - The fallback serves only while Redis is unavailable (from the first
 *   failed call on) and is dropped entirely, under its lock, by the first
 *   call that reaches Redis again: it never serves something Redis-side
 *   invalidation removed meanwhile. rc_cache_del also removes the key from
 *   the fallback. With REDIS_ENABLED=false the fallback is the cache.
 * - Circuit breaker: closed -> open after CIRCUIT_BREAKER_THRESHOLD
 *   consecutive failed calls (connect, AUTH, I/O error or timeout); while
 *   open (CIRCUIT_BREAKER_TIMEOUT seconds) no connect is attempted and no
 *   timeout is paid: calls answer RC_EUNAVAILABLE / a miss at once. Then the
 *   next call is the one probe (half-open); every other call is still
 *   refused while it is in flight. A successful probe closes the breaker and
 *   resets the period; a failed one reopens it for twice the previous period,
 *   capped at 8 x CIRCUIT_BREAKER_TIMEOUT (240 s by default). The clock is
 *   injectable (rc_cache_set_clock).
 * - Every call is bounded: resolving the host name, connecting, the TLS
 *   handshake, AUTH/SELECT and each command or pipeline as a whole wait at
 *   most REDIS_SOCKET_TIMEOUT; a connection that saw an I/O error, a
 *   protocol error or a timeout is closed, never reused, and replaced by a
 *   fresh connect that re-applies TLS, AUTH [user] password and SELECT db.
 * - TLS (rediss:// URLs, REDIS_TLS_*): the server's certificate and name are
 *   verified unless REDIS_TLS_VERIFY=false; a failed handshake degrades like
 *   an unreachable server, and rc_cache_connection_info says why.
 * - SIGPIPE: the library writes to Redis with send(MSG_NOSIGNAL), TLS
 *   included, so a dead connection gives an error, never SIGPIPE; neither
 *   the signal mask nor the process-wide disposition is touched.
 * - An allocation failure inside hiredis 0.14's reader aborts the process
 *   (hiredis does so itself); allocation failures in this library return RC_ENOMEM.
 * - Passwords never appear in logs (repocache/log.h: stderr or the
 *   application's handler, filtered by LOG_LEVEL), rc_errmsg() messages,
 *   statistics or metrics.
 *
 * Keys are NUL-terminated strings used byte for byte; the configured prefix
 * (CACHE_KEY_PREFIX) is NOT added by these functions: callers pass full keys
 * (rc_cache_key builds one). Values are binary (pointer + length).
 */
#ifndef REPOCACHE_CACHE_H
#define REPOCACHE_CACHE_H

#include "repocache/export.h"
#include "repocache/settings.h"
#include "repocache/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rc_cache rc_cache;

/* Circuit breaker states. */
typedef enum rc_circuit_state {
    RC_CIRCUIT_CLOSED = 0,    /* Redis in use */
    RC_CIRCUIT_OPEN = 1,      /* failing: no Redis call is made */
    RC_CIRCUIT_HALF_OPEN = 2  /* one probe in flight */
} rc_circuit_state;

/* Name of a state: "closed", "open", "half_open". */
RC_API const char *rc_circuit_state_name(rc_circuit_state s);

/* A monotonic clock in seconds; tests substitute their own. */
typedef double (*rc_clock_fn)(void *ud);
/* The default clock: seconds on CLOCK_MONOTONIC (ud ignored). */
RC_API double rc_clock_monotonic(void *ud);

/* Creates a service from settings (copied; s may be freed afterwards).
 * Never fails because Redis is unreachable: it connects lazily.
 * *out owned by the caller (rc_cache_free). RC_ENOMEM / RC_ECONFIG. */
RC_API int rc_cache_new(const rc_settings *s, rc_cache **out);
/* Frees the service and closes its connections; accepts NULL. */
RC_API void rc_cache_free(rc_cache *c);
/* Replaces the clock (NULL restores the monotonic clock). For tests. */
RC_API void rc_cache_set_clock(rc_cache *c, rc_clock_fn fn, void *ud);

/* The configured key prefix (borrowed, never NULL). */
RC_API const char *rc_cache_prefix(const rc_cache *c);
/* *out = prefix + key, a new string the caller frees with free(). */
RC_API int rc_cache_key(const rc_cache *c, const char *key, char **out);

/* ---- values ---- */

/* *val (malloc'd, NUL-terminated past *len, caller frees) = the value.
 * RC_ENOTFOUND on a miss, including when Redis is unavailable and the
 * fallback has nothing. */
RC_API int rc_cache_get(rc_cache *c, const char *key, char **val, size_t *len);
/* Stores val for ttl seconds (ttl <= 0: RC_EINVAL). RC_OK when stored in
 * Redis or, while Redis is unavailable, in the fallback; else RC_EUNAVAILABLE. */
RC_API int rc_cache_set(rc_cache *c, const char *key, const char *val, size_t len,
                        int ttl);
/* Deletes key. RC_OK (deleted or absent), or RC_EUNAVAILABLE when Redis
 * could not be reached (the delete is then remembered and replayed). */
RC_API int rc_cache_del(rc_cache *c, const char *key);
/* Deletes n keys in one round trip; *removed (may be NULL) = how many
 * existed. Same remembering rule as rc_cache_del. */
RC_API int rc_cache_del_many(rc_cache *c, const char *const *keys, size_t n,
                             long long *removed);
/* *exists = whether key exists. RC_EUNAVAILABLE when Redis is unavailable
 * and the fallback is off. */
RC_API int rc_cache_exists(rc_cache *c, const char *key, bool *exists);
/* *ttl = remaining seconds, -1 without expiry, -2 when absent. */
RC_API int rc_cache_ttl(rc_cache *c, const char *key, long long *ttl);
/* Deletes every key under the prefix matching glob (the prefix is added and
 * escaped; glob itself is used as a pattern, so escape user values with
 * rc_cache_glob_escape). SCAN + UNLINK in batches, never KEYS; matching
 * fallback entries go too. *removed = count. RC_EUNAVAILABLE when Redis
 * could not be reached (the clear is then remembered and replayed). */
RC_API int rc_cache_clear(rc_cache *c, const char *glob, long long *removed);
/* Escapes * ? [ ] \ in s so it matches only itself in a pattern.
 * *out new, caller frees. */
RC_API int rc_cache_glob_escape(const char *s, char **out);

/* Loader for rc_cache_get_or_load: *val (malloc'd) and *len on RC_OK. */
typedef int (*rc_loader_fn)(void *ud, char **val, size_t *len);
/* Get, or on a miss call loader and store its value for ttl seconds.
 * Returns the loader's status when it fails (nothing stored). */
RC_API int rc_cache_get_or_load(rc_cache *c, const char *key, int ttl,
                                rc_loader_fn loader, void *ud, char **val,
                                size_t *len);

/* Pipelined batch get: vals[i]/lens[i] (vals[i] NULL on a miss; caller
 * frees each). One round trip. */
RC_API int rc_cache_mget(rc_cache *c, const char *const *keys, size_t n,
                         char **vals, size_t *lens);
/* Pipelined batch set, all with ttl. One round trip. */
RC_API int rc_cache_mset(rc_cache *c, const char *const *keys,
                         const char *const *vals, const size_t *lens, size_t n,
                         int ttl);

/* PING. RC_OK when Redis answered, else RC_EUNAVAILABLE (or RC_EAUTH). */
RC_API int rc_cache_health_check(rc_cache *c);

/* ---- the connection, for operators ---- */

/* What the service's last connect to Redis did (tale health). */
typedef struct rc_cache_connection {
    char server[300];     /* where it went: "host:port" or the socket path;
                             with Sentinel, the master the sentinels named
                             ("" before the first connect) */
    char sentinel[300];   /* with Sentinel, "host:port" of the sentinel that
                             named it; else "" */
    char tls[160];        /* "" over a plain socket; else the protocol, the
                             cipher and the name verified ("TLSv1.3
                             TLS_AES_256_GCM_SHA384, verified name
                             localhost") */
    char last_error[256]; /* why the last connect failed ("" when it
                             succeeded); never a password or key material */
    uint64_t connects;    /* connects attempted so far */
    /* Room for figures added later; zero. */
    uint64_t reserved_[8];
} rc_cache_connection;

/* Fills *out from what the service knows now (no I/O). RC_OK or
 * RC_EINVAL. */
RC_API int rc_cache_connection_info(rc_cache *c, rc_cache_connection *out);

/* One node of a Redis Cluster (REDIS_CLUSTER_NODES), as the slot map names
 * it. */
typedef struct rc_cache_cluster_node {
    char address[300];   /* "host:port" */
    char id[41];         /* the node id, or "" */
    bool master;         /* serves slots as master */
    char *slots;         /* its slot ranges, "0-5460,10923" (malloc'd; ""
                            for a replica) */
    bool reachable;      /* answered PING just now */
    char error[256];     /* why not ("" when reachable) */
} rc_cache_cluster_node;

/* The nodes of the service's cluster, each asked for PING now (masters
 * first): *out (free with rc_cache_cluster_nodes_free), *n of them. RC_OK;
 * RC_EINVAL when the service has no cluster; RC_EUNAVAILABLE when no seed
 * gave a slot map; RC_ENOMEM. */
RC_API int rc_cache_cluster_nodes(rc_cache *c, rc_cache_cluster_node **out, size_t *n);
/* Frees what rc_cache_cluster_nodes gave (NULL is fine). */
RC_API void rc_cache_cluster_nodes_free(rc_cache_cluster_node *nodes, size_t n);

/* ---- FIFO queue on a Redis list (never falls back: items are not lost
 * silently; RC_EUNAVAILABLE instead) ---- */

/* Appends a copy of val (binary) at the tail of the list named queue (used
 * as given, no prefix added). RC_OK or RC_EUNAVAILABLE. */
RC_API int rc_queue_push(rc_cache *c, const char *queue, const char *val, size_t len);
/* Takes the head item: *val (malloc'd, NUL-terminated past *len) caller
 * frees. RC_ENOTFOUND when empty, RC_EUNAVAILABLE. */
RC_API int rc_queue_pop(rc_cache *c, const char *queue, char **val, size_t *len);
/* *len = items in the queue. RC_OK or RC_EUNAVAILABLE. */
RC_API int rc_queue_length(rc_cache *c, const char *queue, long long *len);
/* Removes the queue and its items. RC_OK or RC_EUNAVAILABLE. */
RC_API int rc_queue_clear(rc_cache *c, const char *queue);

/* ---- statistics ---- */

typedef struct rc_cache_stats {
    uint64_t hits, misses;       /* gets answered / not answered */
    double hit_rate;             /* hits / (hits + misses), 0 when none */
    uint64_t sets, deletes;      /* successful writes (Redis or fallback)
                                    and keys deleted in Redis */
    uint64_t errors;             /* Redis calls that failed or were refused
                                    by the open breaker, and error replies */
    uint64_t fallback_hits;      /* gets answered by the fallback */
    uint64_t fallback_entries;   /* entries in the fallback now */
    rc_circuit_state circuit;    /* breaker state */
    bool redis_enabled;          /* configured to use Redis */
    bool redis_available;        /* the last call reached Redis */
    uint64_t pending_deletes;    /* remembered deletes not yet replayed */
    char used_memory_human[32];  /* from INFO memory ("" when unavailable) */
    long long keys;              /* DBSIZE: the whole database, every prefix
                                    (-1 when unavailable); a namespace's
                                    own count is rc_cached_repo_stats.keys */
    /* the near cache (all 0 without one) */
    bool near_coherent;          /* serving now */
    uint64_t near_hits;          /* reads answered by it */
    uint64_t near_misses;        /* reads it could not answer while serving */
    uint64_t near_entries;       /* values held now in the in-process store
                                    (fallback_entries among them) */
    uint64_t near_bytes;         /* their accounted size (encoded + key + 64) */
    uint64_t near_evictions;     /* values evicted for room */
    uint64_t near_invalidations; /* invalidations received from Redis */
    uint64_t near_coherence_losses; /* times it stopped serving and emptied */
    uint64_t single_flight_waits;   /* reads that waited for another's load */
    uint64_t oversized_skipped;  /* values not cached: their encoding was
                                    over CACHE_MAX_VALUE_BYTES */
    /* outages: the invalidation outbox and Redis's identity */
    bool redis_trusted;          /* Redis in use: its identity checked and the
                                    outbox applied since trust was last lost */
    uint64_t outbox_written;     /* outbox rows this process's writes stored */
    uint64_t outbox_applied;     /* outbox rows this process applied to Redis
                                    and removed */
    uint64_t outbox_pending;     /* rows pending when last read */
    uint64_t identity_changes;   /* Redis identities (run_id and replication
                                    id) seen that replaced the one trusted */
    uint64_t identity_drops;     /* namespaces this process dropped for a new
                                    identity */
    uint64_t unacknowledged_invalidations; /* with Sentinel: invalidations
                                    fewer replicas acknowledged (WAIT) than
                                    were up, so treated as not applied */
    /* Room for figures added later (see "Growing structs" in
     * repocache/export.h); zero. */
    uint64_t reserved_[15];
} rc_cache_stats;

/* *count = keys under the prefix matching glob (the prefix is added and
 * escaped, as rc_cache_clear), counted with SCAN MATCH COUNT 1000: one round
 * trip per 1000 keys of the whole database, stopping once max_scanned keys
 * have been examined (*exact false then, and *count a lower bound). RC_OK or
 * RC_EUNAVAILABLE. */
RC_API int rc_cache_count_keys(rc_cache *c, const char *glob, long long max_scanned,
                        long long *count, bool *exact);

/* Fills *st (asks the server for memory and key count when reachable). */
RC_API int rc_cache_get_stats(rc_cache *c, rc_cache_stats *st);
/* *json = the stats as a JSON object text, caller frees. */
RC_API int rc_cache_stats_json(rc_cache *c, char **json);

#ifdef __cplusplus
}
#endif
#endif
