/*
 * metrics.h - what each cached repository records for operators, into a
 * block the cache service owns (so that the service can show every
 * repository created on it, rc_cache_metrics_text), and what the decorator
 * calls to record (the one header of src/cache besides lease.h and near.h
 * that the layers above include).
 *
 * One definition of a read's result: every read through a cached
 * repository ends in exactly one (tier, outcome), recorded by exactly one
 * rc_metrics_read. A hit is outcome hit or negative_hit on any tier; a miss
 * is outcome miss (the wrapped repository answered). The repository's
 * statistics (hits, misses, negative_hits, near_hits), its JSON, the
 * Prometheus text and the fleet counters all derive from these counts.
 *
 * Cost on the hit path: one relaxed atomic increment of the (tier, outcome)
 * count in the calling thread's stripe (core/counter.h); with
 * CACHE_METRICS_ENABLED (the default) also one clock read (the start is the reading
 * the near cache takes anyway) and the
 * histogram's two relaxed increments, likewise striped. No lock, no cache
 * line shared by two threads.
 */
#ifndef RC_CACHE_METRICS_H
#define RC_CACHE_METRICS_H

#include "core/counter.h"
#include "core/histogram.h"
#include "repocache/cache.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Where a read was answered. */
typedef enum rc_read_tier {
    RC_TIER_NEAR = 0,  /* the near cache (in process) */
    RC_TIER_REDIS,     /* Redis (a miss: Redis had nothing, the wrapped
                          repository answered) */
    RC_TIER_FALLBACK,  /* the in-memory fallback, while Redis is unusable */
    RC_TIERS
} rc_read_tier;

/* How a read ended. */
typedef enum rc_read_outcome {
    RC_OUTCOME_HIT = 0,      /* a cached value */
    RC_OUTCOME_NEGATIVE_HIT, /* a cached "not found" */
    RC_OUTCOME_MISS,         /* the wrapped repository answered */
    RC_OUTCOMES
} rc_read_outcome;

/* Where a read was answered and how it ended. */
typedef struct rc_read_how {
    rc_read_tier tier;       /* near, redis, fallback */
    rc_read_outcome outcome; /* hit, negative_hit, miss */
} rc_read_how;

/* X(name, help): the counters of a repository besides its reads, each
 * exported as repocache_<name>_total{entity}. */
#define RC_METRIC_COUNTERS(X)                                                  \
    X(fills, "Values stored in Redis by read and write fills")                 \
    X(stale_fills_rejected, "Fills refused because a write took the lease meanwhile") \
    X(invalidations, "Cache keys removed by writes and manual invalidation")   \
    X(decode_errors, "Cached values that did not decode (dropped)")            \
    X(errors, "Cache operations of this repository that failed")               \
    X(lease_waits, "Misses that found another reader filling and waited for its value")

typedef enum rc_metric_counter {
#define RC_M_ENUM_(name, help) RC_M_##name,
    RC_METRIC_COUNTERS(RC_M_ENUM_)
#undef RC_M_ENUM_
    RC_M_COUNTERS
} rc_metric_counter;

/* One cached repository's figures (owned by the service). */
typedef struct rc_metrics {
    rc_cache *cache;                                  /* the service */
    char *ns;                                         /* the entity namespace */
    bool timed;                                       /* CACHE_METRICS_ENABLED */
    rc_counter reads[RC_TIERS][RC_OUTCOMES];          /* reads by result */
    rc_counter count[RC_M_COUNTERS];                  /* RC_METRIC_COUNTERS */
    rc_histogram read_latency[RC_TIERS][RC_OUTCOMES]; /* with timed only */
    rc_histogram write_latency;                       /* a write's
                                                         invalidation */
    struct rc_metrics *next;                          /* the service's list */
} rc_metrics;

/* A new block for a repository of namespace ns, listed by the service c.
 * NULL when out of memory. */
rc_metrics *rc_metrics_attach(rc_cache *c, const char *ns);
/* The repository is gone: its figures stay in the service's totals for ns
 * (counters never go back) and m is freed. Accepts NULL. */
void rc_metrics_detach(rc_metrics *m);

/* The start of a read or a write: 0 unless timed. */
static inline uint64_t rc_metrics_start(const rc_metrics *m)
{
    return m->timed ? rc_histogram_now_ns() : 0;
}
/* rc_metrics_start with the caller's reading of rc_histogram_now_ns. */
static inline uint64_t rc_metrics_start_at(const rc_metrics *m, uint64_t now_ns)
{
    return m->timed ? now_ns : 0;
}

/* A read that began at t0 (rc_metrics_start) ended in (tier, outcome). */
void rc_metrics_read(rc_metrics *m, rc_read_tier tier, rc_read_outcome outcome,
                     uint64_t t0);
/* A write's invalidation that began at t0 is over. Also sends the service's
 * counters to Redis when they are due (rc_fleet_maybe_flush). */
void rc_metrics_write(rc_metrics *m, uint64_t t0);

/* Adds one to counter k. */
static inline void rc_metrics_count(rc_metrics *m, rc_metric_counter k)
{
    rc_counter_add(&m->count[k]);
}
/* Adds n to counter k. */
static inline void rc_metrics_add(rc_metrics *m, rc_metric_counter k, uint64_t n)
{
    rc_counter_add_n(&m->count[k], n);
}
/* Counter k now. */
static inline uint64_t rc_metrics_counter(const rc_metrics *m, rc_metric_counter k)
{
    return rc_counter_get(&m->count[k]);
}
/* A cached value did not decode: counted, and logged (decode_error) at most
 * once per RC_DECODE_LOG_PERIOD seconds per service, with the count. */
void rc_metrics_decode_error(rc_metrics *m, const char *key);
#define RC_DECODE_LOG_PERIOD 10.0

/* Reads of m by outcome summed over the tiers (or one tier). */
uint64_t rc_metrics_reads(const rc_metrics *m, int tier, rc_read_outcome outcome);

/* ---- totals, per namespace (metrics.c; for the text and the fleet) ---- */

/* Every figure of one namespace, summed over its repositories past and
 * present. */
typedef struct rc_metrics_totals {
    char ns[128];                                          /* the namespace */
    uint64_t reads[RC_TIERS][RC_OUTCOMES];
    uint64_t count[RC_M_COUNTERS];
    rc_histogram_view read_latency[RC_TIERS][RC_OUTCOMES];
    rc_histogram_view write_latency;
} rc_metrics_totals;

/* *out = a malloc'd array of *n totals, one per namespace the service has
 * seen, in the order first seen. RC_OK or RC_ENOMEM. */
int rc_metrics_collect(rc_cache *c, rc_metrics_totals **out, size_t *n);

/* The names of tiers and outcomes as labels ("near", "hit", ...). */
const char *rc_read_tier_name(int tier);
const char *rc_read_outcome_name(int outcome);
/* The name of counter k ("fills", ...) and its help text. */
const char *rc_metric_counter_name(int k);
const char *rc_metric_counter_help(int k);

#endif
