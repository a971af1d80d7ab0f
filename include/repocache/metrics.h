/*
 * repocache/metrics.h - what an operator can read: the Prometheus text of a
 * cache service and of every cached repository created on it, and the
 * fleet totals that every process sharing the Redis adds into it.
 *
 * One definition of a read's result for all of them (and for
 * rc_cached_repo_stats and its JSON): every read through a cached
 * repository ends in one tier (near, redis, fallback) and one outcome
 * (hit, negative_hit, miss); a hit is hit or negative_hit, a miss is miss.
 */
#ifndef REPOCACHE_METRICS_H
#define REPOCACHE_METRICS_H

#include "repocache/cache.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * *text = the Prometheus text exposition (format 0.0.4) of c and of every
 * cached repository created on it (repositories of one entity namespace
 * summed; those already freed included, so counters never go back), with
 * "# HELP" and "# TYPE" for each family; the families are listed in the
 * README. Reads the process's own figures only (no Redis call). Caller
 * frees with free(). RC_OK, RC_EINVAL, RC_ENOMEM.
 */
RC_API int rc_cache_metrics_text(rc_cache *c, char **text);

/* Sends this process's counters to Redis now (they go by themselves every
 * CACHE_STATS_FLUSH_INTERVAL seconds from a miss or a write, and at
 * rc_cache_free, unless that setting is 0). RC_OK, RC_EUNAVAILABLE (kept
 * for the next send). */
RC_API int rc_cache_metrics_flush(rc_cache *c);

/* The fleet totals of one entity namespace: what every process sharing this
 * Redis and prefix has sent. */
typedef struct rc_fleet_stats {
    bool present;                  /* some process has sent figures */
    uint64_t hits, misses;         /* reads, as in rc_cached_repo_stats */
    uint64_t negative_hits;        /* of hits, "not found" answers */
    uint64_t near_hits;            /* of hits, answered by a near cache */
    uint64_t fallback_reads;       /* reads while Redis was unusable */
    uint64_t reads[3][3];          /* [tier: near, redis, fallback]
                                      [outcome: hit, negative_hit, miss] */
    uint64_t fills, stale_fills_rejected, invalidations, decode_errors,
        errors, lease_waits;        /* as the Prometheus counters */
    long long updated_at;          /* unix time of the last send, 0 none */
    double age_s;                  /* seconds since then (-1 when none) */
} rc_fleet_stats;

/* Reads the fleet totals of namespace ns (one HGETALL). RC_OK (with
 * present false when there are none), RC_EUNAVAILABLE, RC_EINVAL. */
RC_API int rc_cache_fleet_stats(rc_cache *c, const char *ns, rc_fleet_stats *out);

/* *text = the fleet totals of the namespaces ns[0..n) as Prometheus text:
 * repocache_fleet_reads_total{entity,tier,outcome}, repocache_fleet_<counter>_total
 * {entity} and repocache_fleet_age_seconds{entity}. Caller frees. RC_OK
 * (families empty where Redis had nothing or could not be asked), RC_ENOMEM. */
RC_API int rc_cache_fleet_metrics_text(rc_cache *c, const char *const *ns, size_t n,
                                char **text);

#ifdef __cplusplus
}
#endif
#endif
