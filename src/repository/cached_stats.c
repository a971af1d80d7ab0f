/*
 * cached_stats.c - the cached decorator's statistics: the Python fields
 * (strategy settings, whether "all" is cached), this repository's counters,
 * and the cache service's statistics, as a struct or as JSON.
 */
#include "repository/cached.h"

#include "core/json.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The bound of a key count: keys of the whole database examined (SCAN). */
#define KEYS_SCANNED_MAX 1000000

int rc_cached_repo_get_stats(rc_repo *base, rc_cached_repo_stats *st)
{
    if (!rc_cached_repo_is(base) || !st)
        return rc_seterr(RC_EINVAL, "stats: not a cached repository");
    cached_repo *r = rc_cached_self(base);
    char *all = NULL;
    long long ttl = -2;
    memset(st, 0, sizeof *st);
    st->entity_type = r->st.ns;
    st->default_ttl = r->st.ttl;
    st->cache_on_read = r->st.cache_on_read;
    st->cache_on_write = r->st.cache_on_write;
    int rc = rc_strategy_key_all(&r->st, r->prefix, &all);
    if (rc != RC_OK)
        return rc;
    if (rc_cache_ttl(r->cache, all, &ttl) != RC_OK)
        ttl = -2;
    free(all);
    st->all_cached = ttl != -2;
    st->all_ttl_remaining = ttl;
    /* one definition of a hit and a miss (cache/metrics.h) */
    st->negative_hits = rc_metrics_reads(r->m, -1, RC_OUTCOME_NEGATIVE_HIT);
    st->hits = rc_metrics_reads(r->m, -1, RC_OUTCOME_HIT) + st->negative_hits;
    st->misses = rc_metrics_reads(r->m, -1, RC_OUTCOME_MISS);
    st->near_hits = rc_metrics_reads(r->m, RC_TIER_NEAR, RC_OUTCOME_HIT);
    st->hit_rate = st->hits + st->misses
                       ? (double)st->hits / (double)(st->hits + st->misses)
                       : 0.0;
    st->errors = rc_metrics_counter(r->m, RC_M_errors);
    st->decode_errors = rc_metrics_counter(r->m, RC_M_decode_errors);
    st->invalidations = rc_metrics_counter(r->m, RC_M_invalidations);
    st->stale_fills_rejected = rc_metrics_counter(r->m, RC_M_stale_fills_rejected);
    st->lease_waits = rc_metrics_counter(r->m, RC_M_lease_waits);
    if (rc_cache_count_keys(r->cache, r->ns_glob, KEYS_SCANNED_MAX, &st->keys,
                            &st->keys_exact) != RC_OK)
        st->keys = -1;
    return rc_cache_get_stats(r->cache, &st->cache);
}

/* This repository's fields of the stats as a JSON object (NULL when out of
 * memory). */
static json_t *stats_object(const rc_cached_repo_stats *st)
{
    return json_pack(
        "{s:s, s:i, s:b, s:I, s:b, s:b, s:I, s:I, s:f, s:I, s:I, s:I, s:I, "
        "s:I, s:I, s:I, s:I, s:b}",
        "entity_type", st->entity_type, "default_ttl", st->default_ttl,
        "all_cached", st->all_cached, "all_ttl_remaining",
        (json_int_t)st->all_ttl_remaining, "cache_on_read", st->cache_on_read,
        "cache_on_write", st->cache_on_write, "hits", (json_int_t)st->hits,
        "misses", (json_int_t)st->misses, "hit_rate", st->hit_rate,
        "negative_hits", (json_int_t)st->negative_hits, "errors",
        (json_int_t)st->errors, "decode_errors", (json_int_t)st->decode_errors,
        "invalidations", (json_int_t)st->invalidations, "stale_fills_rejected",
        (json_int_t)st->stale_fills_rejected, "near_hits",
        (json_int_t)st->near_hits, "lease_waits", (json_int_t)st->lease_waits, "keys",
        (json_int_t)st->keys, "keys_exact", st->keys_exact);
}

int rc_cached_repo_stats_json(rc_repo *base, char **json)
{
    rc_cached_repo_stats st;
    char *cache_json = NULL;
    if (!json)
        return rc_seterr(RC_EINVAL, "stats: json is NULL");
    *json = NULL;
    int rc = rc_cached_repo_get_stats(base, &st);
    if (rc != RC_OK)
        return rc;
    rc = rc_cache_stats_json(rc_cached_self(base)->cache, &cache_json);
    if (rc != RC_OK)
        return rc;
    json_t *cj = json_loads(cache_json, 0, NULL);
    free(cache_json);
    json_t *o = stats_object(&st);
    rc = RC_ENOMEM;
    if (!o || !cj)
        json_decref(cj);
    /* json_object_set_new takes cj even when it fails (jansson frees it
     * then): cj is not ours to release after the call */
    else if (json_object_set_new(o, "cache", cj) == 0)
        /* dumped into our own buffer: the caller frees it with free(),
         * whatever allocator jansson was given */
        rc = rc_json_dump(o, 0, json, NULL);
    json_decref(o);
    return rc ? rc_seterr(RC_ENOMEM, "stats: out of memory") : RC_OK;
}
