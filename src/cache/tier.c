/* tier.c - the near cache as the service offers it (lease.h): the store
 * (near.c) gated by its coherence (tracking.c) and the breaker. */
#include "cache/service.h"

#include "core/clock.h"
#include "core/str.h"

#include <stdlib.h>
#include <string.h>

/* Period of the tracker's liveness check, seconds. */
#define TRACKING_CHECK_S 0.25

static void hook_invalidate(void *ud, const char *key)
{
    rc_near_remove(ud, key);
}

/* Empties the near cache's values, not the outage entries sharing its store
 * (coherence is lost on every failed call while Redis is away). */
static void hook_flush(void *ud) { rc_near_remove_matching(ud, RC_NOT_OUTAGE_GLOB); }

int rc_tier_init(rc_cache *c, const rc_settings *s)
{
    c->single_flight = s->cache_single_flight;
    c->near_strict = s->cache_l1_strict;
    if (!s->cache_l1_enabled || !s->redis_enabled)
        return RC_OK;
    if (s->cache_l1_max_entries < 1 || s->cache_l1_max_bytes < 1 || s->cache_l1_max_ttl < 1)
        return rc_seterr(RC_ECONFIG, "rc_cache_new: near cache settings out of range");
    c->near = rc_near_new((size_t)s->cache_l1_max_entries, (size_t)s->cache_l1_max_bytes,
                          (double)s->cache_l1_max_ttl);
    if (!c->near)
        return rc_seterr(RC_ENOMEM, "out of memory");
    /* With a cluster, each master has a tracker (cluster_tracking.c). */
    if (c->cluster) {
        rc_cluster_watch(c);
        return RC_OK;
    }
    if (rc_tier_tracker(c, &c->pool, c->where, &c->tracking) != RC_OK) {
        rc_near_free(c->near);
        c->near = NULL;
        return RC_ENOMEM;
    }
    return RC_OK;
}

int rc_tier_tracker(rc_cache *c, rc_pool *pool, const char *where, rc_tracking **out)
{
    rc_tracking_hooks h = {hook_invalidate, hook_flush, c->near};
    return rc_tracking_new(pool, where, c->log_level, TRACKING_CHECK_S, h, out);
}

void rc_tier_flush(rc_cache *c)
{
    if (c->near)
        hook_flush(c->near);
}

void rc_tier_free(rc_cache *c)
{
    rc_cluster_unwatch(c); /* the trackers' hooks use the near cache */
    rc_tracking_free(c->tracking);
    rc_near_free(c->near);
    c->tracking = NULL;
    c->near = NULL;
}

int rc_cache_tier_track(rc_cache *c, const char *ns)
{
    if (!c->near)
        return RC_OK;
    char *ns_colon = rc_str_concat(ns, ":"), *p = NULL;
    int st = ns_colon ? rc_cache_key(c, ns_colon, &p) : RC_ENOMEM;
    if (st == RC_OK)
        st = c->cluster ? rc_cluster_track(c, p) : rc_tracking_add_prefix(c->tracking, p);
    free(ns_colon);
    free(p);
    return st ? rc_seterr(st, "out of memory") : RC_OK;
}

/* Whether the near cache may serve now (one atomic load when all is well,
 * plus the socket read in strict mode). The breaker is not asked on every
 * hit (its mutex would serialise threads): when it opens, call.c makes the
 * tracker lose coherence, which empties the store. */
static bool serving(rc_cache *c, double now)
{
    if (!c->near)
        return false;
    if (!c->cluster)
        return rc_tracking_ready_at(c->tracking, c->near_strict, now);
    if (rc_cluster_near_ready(c, c->near_strict, now))
        return true;
    rc_cluster_refresh(c); /* a master may be gone: its tracker never arms */
    return false;
}

int rc_cache_tier_begin(rc_cache *c, const char *key, double wait_s,
                        rc_near_value *out, rc_tier_fill *f)
{
    f->ticket = 0;
    memset(out, 0, sizeof *out);
    /* one clock reading for the read's timing, the tracker and the expiry */
    double now = f->began_ns ? (double)f->began_ns / 1e9 : rc_clock_monotonic(NULL);
    if (!serving(c, now))
        return 0;
    int res = rc_near_begin_as(c->near, key, c->single_flight ? wait_s : 0, f->packed, now,
                               out, &f->ticket);
    return res == RC_NEAR_HIT || res == RC_NEAR_FILL ? res : 0;
}

bool rc_cache_tier_put(rc_cache *c, const char *key, rc_tier_fill *f,
                       rc_near_value *v, size_t size, double ttl)
{
    if (!f->ticket || !c->near) {
        rc_near_value_clear(v);
        return false;
    }
    /* An invalidation of key that overtook the reply removes the
     * placeholder here, before the put looks for it. */
    if (c->cluster)
        rc_cluster_near_sync(c);
    else
        rc_tracking_sync(c->tracking);
    bool stored = rc_near_put(c->near, key, f->ticket, v, size, ttl);
    f->ticket = 0;
    return stored;
}

void rc_cache_tier_abandon(rc_cache *c, const char *key, rc_tier_fill *f)
{
    if (f->ticket && c->near)
        rc_near_abandon(c->near, key, f->ticket);
    f->ticket = 0;
}

void rc_cache_tier_remove(rc_cache *c, const char *const *keys, size_t n)
{
    for (size_t i = 0; c->near && i < n; i++)
        rc_near_remove(c->near, keys[i]);
}

void rc_cache_tier_remove_matching(rc_cache *c, const char *glob)
{
    if (!c->near)
        return;
    char *p = rc_str_concat(c->escaped_prefix, glob);
    if (!p) { /* cannot name the keys: drop them all */
        rc_near_reset(c->near);
        return;
    }
    rc_near_remove_matching(c->near, p);
    free(p);
}
