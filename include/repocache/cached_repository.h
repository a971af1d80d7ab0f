/*
 * repocache/cached_repository.h - the cached decorator: a repository that
 * wraps any other repository (SQLite, a user's own, another decorator) and
 * puts a Redis cache in front of it, driven by an entity strategy
 * (repocache/strategy.h). Callers see the same vtable and the wrapped
 * repository's status codes, unchanged.
 *
 * Reads (cache-aside): find by id, list all and every named query of the
 * strategy are cached in the layout of docs/wire-format.md, which a Python
 * service shares (envelopes, codec.h). A value that does not decode is a miss,
 * is deleted and counted. A not-found by id is cached for negative_ttl seconds
 * under P + ns + ":~none:" + id (invisible to Python readers); a save of that
 * id removes it.
 *
 * Writes: the wrapped repository first; on failure the cache is untouched and
 * its status returned. On success the by-id key, "all", the negative entry
 * and every query key of the old (*previous from the wrapped update/remove)
 * and the new field values are deleted in one round trip; without *previous
 * every key of the namespace is dropped. cache_on_write then stores the
 * entity as re-read from the wrapped repository, through a lease.
 *
 * Consistency (the promise and its design in docs/consistency.md): fills are
 * fenced by memcache-style leases. A read miss takes, in the same Lua script
 * that looks the key up, a lease P + ns + ":~lease:" + rest-of-key holding a
 * random 128-bit token (SET NX PX). The value is stored only by a script that
 * finds the lease still holding that token; every write deletes the leases of
 * the keys it invalidates, so a reader that read the database before the write
 * committed can no longer fill: its fill is rejected (and counted). Readers
 * without the lease return the database answer without filling. Once a write
 * call has returned, no cached repository sharing the Redis serves the
 * pre-write value. A write whose invalidation cannot reach Redis still
 * succeeds; its deletes are remembered by the cache service and replayed
 * before this process uses Redis again. While Redis is unavailable reads use
 * the service's in-memory fallback (process-local, fenced by the service's
 * write epoch) or go straight to the wrapped repository.
 *
 * Thread-safe when the wrapped repository is.
 */
#ifndef REPOCACHE_CACHED_REPOSITORY_H
#define REPOCACHE_CACHED_REPOSITORY_H

#include "repocache/export.h"
#include "repocache/cache.h"
#include "repocache/repository.h"
#include "repocache/strategy.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Called by a reader between its database read and its cache fill, with the
 * full cache key it is about to fill. For tests (forcing the stale-set race);
 * NULL in production. */
typedef void (*rc_fill_hook_fn)(void *ud, const char *key);

typedef struct rc_cached_repo_options {
    bool own_inner;            /* destroy the wrapped repository with this one */
    int lease_ms;              /* lease lifetime in milliseconds; 0 = 5000.
                                  A fill later than this after the miss is
                                  rejected. */
    rc_fill_hook_fn fill_hook; /* test hook, see above; NULL = none */
    void *fill_hook_ud;        /* passed to fill_hook */
    /* Near-cache hits return packed entities (repocache/entity.h, "Packed
     * entities"): one allocation each, about a third of the cost of a hit.
     * Off by default, because code that frees or reallocates a member of a
     * returned entity (free(h->name); h->name = ...) must not run on them;
     * turn it on where results are read, or changed only by assignment. */
    bool packed_results;
    /* Room for options added later, each off when zero (see "Growing
     * structs" in repocache/export.h): initialise the whole struct, e.g.
     * with designated initializers. */
    void *reserved_[3];
} rc_cached_repo_options;

/*
 * *out = a cached repository over inner, using cache and strategy st.
 * inner and cache are borrowed (they must outlive *out) unless
 * opt->own_inner, in which case inner is destroyed with *out (and also when
 * this call fails). st is copied; the tables it points at (queries, codec,
 * entity) are borrowed and must outlive *out. opt may be NULL (defaults).
 * *out is owned by the caller (rc_repo_free). RC_EINVAL when st does not
 * pass rc_strategy_check or its entity differs from inner->entity, RC_ENOMEM.
 */
RC_API int rc_cached_repo_new(rc_repo *inner, rc_cache *cache, const rc_strategy *st,
                              const rc_cached_repo_options *opt, rc_repo **out);

/* Whether r is a cached repository made by rc_cached_repo_new. */
RC_API bool rc_cached_repo_is(const rc_repo *r);
/* The former name of rc_cached_repo_is, kept so that code written for 0.1.0
 * still compiles and links; new code uses rc_cached_repo_is. */
RC_API bool rc_is_cached_repo(const rc_repo *r);

/* The wrapped repository of a cached repository (borrowed), or NULL. */
RC_API rc_repo *rc_cached_repo_inner(rc_repo *r);

/*
 * Manual invalidation. scope: "all" (every key of the namespace under the
 * prefix, decorator keys included, found with SCAN), "by_id" (args[0] = id:
 * the by-id key and the negative entry), or a named query of the strategy
 * with its arguments (exactly that key: a glob character in an argument
 * removes only the literal key). Leases of the removed keys are removed too
 * (not counted). *removed (may be NULL) = number of cache keys removed.
 * RC_EINVAL for a bad scope or argument count or a repository that is not a
 * cached one; RC_EUNAVAILABLE when Redis could not be reached (the deletes
 * are then remembered and replayed, and *removed = 0).
 */
RC_API int rc_cached_repo_invalidate(rc_repo *r, const char *scope,
                                     const char *const *args, size_t nargs,
                                     long long *removed);

typedef struct rc_cached_repo_stats {
    /* The Python fields */
    const char *entity_type;      /* strategy namespace (borrowed from r) */
    int default_ttl;              /* strategy ttl */
    bool all_cached;              /* the "all" key exists */
    long long all_ttl_remaining;  /* its TTL in seconds; -2 when absent */
    bool cache_on_read;           /* strategy flag */
    bool cache_on_write;          /* strategy flag */
    /* This repository (one definition of a hit and a miss for these, the
     * Prometheus text and the fleet: repocache/metrics.h) */
    uint64_t hits;                /* reads answered from the cache */
    uint64_t misses;              /* reads that went to the wrapped repo */
    double hit_rate;              /* hits / (hits + misses), 0 when none */
    uint64_t negative_hits;       /* by-id reads answered "not found" from
                                     the negative cache (counted in hits) */
    uint64_t errors;              /* cache operations that failed */
    uint64_t decode_errors;       /* cached values that did not decode */
    uint64_t invalidations;       /* cache keys removed by writes and
                                     rc_cached_repo_invalidate */
    uint64_t stale_fills_rejected;/* fills refused because a write took
                                     the lease meanwhile */
    uint64_t near_hits;           /* of hits, those the near cache answered */
    uint64_t lease_waits;         /* misses that found another reader
                                     filling (any process) and waited for
                                     its value instead of the database */
    /* The cache service */
    rc_cache_stats cache;         /* rc_cache_get_stats */
    /* Added in 0.2.0, from the reserved room */
    long long keys;               /* keys of this namespace in Redis (values,
                                     negative entries, leases), counted by
                                     rc_cache_count_keys; -1 unavailable */
    bool keys_exact;              /* false: the count stopped at 1,000,000
                                     keys examined and is a lower bound */
    /* Room for figures added later (see "Growing structs" in
     * repocache/export.h); zero. */
    uint64_t reserved_[6];
} rc_cached_repo_stats;

/* Fills *st for cached repository r. RC_EINVAL when r is not one. Works (with
 * all_cached false, all_ttl_remaining -2) when Redis is unavailable. */
RC_API int rc_cached_repo_get_stats(rc_repo *r, rc_cached_repo_stats *st);
/* *json = the stats as a JSON object text (Python field names, then
 * "hits", "misses", "hit_rate", "negative_hits", "errors", "decode_errors",
 * "invalidations", "stale_fills_rejected", "near_hits", "lease_waits", "keys",
 * "keys_exact", and "cache": the service's stats object). Caller frees with
 * free(). */
RC_API int rc_cached_repo_stats_json(rc_repo *r, char **json);

#ifdef __cplusplus
}
#endif
#endif
