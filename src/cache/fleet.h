/*
 * fleet.h - counters across every process sharing a Redis: each service
 * adds what its cached repositories counted since its last send into one
 * Redis hash per entity namespace, P + "~stats:" + ns (HINCRBY per field in
 * one pipeline, plus HSET updated_at <unix seconds>), every
 * CACHE_STATS_FLUSH_INTERVAL seconds from a miss or a write (never a hit),
 * and at rc_cache_free (none of it with an interval of 0). Readers sum nothing: the hash is the fleet's total.
 * Fields: reads:<tier>:<outcome> and the RC_METRIC_COUNTERS names.
 */
#ifndef RC_CACHE_FLEET_H
#define RC_CACHE_FLEET_H

#include "repocache/cache.h"

typedef struct rc_fleet rc_fleet;

/* What was last sent, and when the next send is due; period_s 0: nothing
 * is sent but by rc_fleet_flush. NULL when out of memory. */
rc_fleet *rc_fleet_new(double period_s);
/* Sends what is left (unless the period is 0 or Redis is not usable now),
 * then frees c->fleet. */
void rc_fleet_free(rc_cache *c);

/* Sends the counters when the period has passed since the last send (one
 * caller at a time; the others go on at once). */
void rc_fleet_maybe_flush(rc_cache *c);
/* Sends what changed since the last send, now. RC_OK (also when nothing
 * changed or Redis is disabled), RC_EUNAVAILABLE (kept for the next send),
 * RC_ENOMEM. */
int rc_fleet_flush(rc_cache *c);

/* The hash key of namespace ns (P + "~stats:" + ns), malloc'd; NULL when
 * out of memory. */
char *rc_fleet_key(const rc_cache *c, const char *ns);

#endif
