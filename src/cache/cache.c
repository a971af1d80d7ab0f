/*
 * cache.c - the cache service's lifecycle: creating it from settings,
 * freeing it, its clock, and its keys (the prefix). The service's other
 * files are listed in service.h.
 */
#include "cache/service.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"

#include <stdlib.h>
#include <string.h>

/* RC_OK when s can make a service, else RC_ECONFIG; *level = LOG_LEVEL. */
static int check_settings(const rc_settings *s, int *level)
{
    if (!s)
        return rc_seterr(RC_ECONFIG, "rc_cache_new: NULL settings");
    if (s->redis_max_connections < 1 || s->redis_socket_timeout <= 0 ||
        s->circuit_breaker_threshold < 1 || s->circuit_breaker_timeout <= 0 ||
        s->cache_fallback_max_entries < 1 || s->cache_max_value_bytes < 1 ||
        (!s->redis_host && !s->redis_unix_path))
        return rc_seterr(RC_ECONFIG,
                         "rc_cache_new: settings out of range "
                         "(use rc_settings_load or rc_settings_defaults)");
    if (s->redis_sentinels && !s->redis_sentinel_master)
        return rc_seterr(RC_ECONFIG, "REDIS_SENTINEL_MASTER: must be set with REDIS_SENTINELS "
                                     "(the name the sentinels monitor the master by)");
    *level = rc_log_level_parse(s->log_level ? s->log_level : "info");
    if (*level < 0)
        return rc_seterr(RC_ECONFIG, "LOG_LEVEL: bad value '%s'", s->log_level);
    return RC_OK;
}

/* Builds c's parts from s; on failure frees what was built (not c). */
static int build_parts(rc_cache *c, const rc_settings *s)
{
    c->prefix = rc_strdup(s->cache_key_prefix ? s->cache_key_prefix : "");
    int st =
        c->prefix ? rc_glob_escape(c->prefix, &c->escaped_prefix) : RC_ENOMEM;
    bool pool_ok = false, breaker_ok = false;
    if (st == RC_OK)
        pool_ok = (st = rc_pool_init(&c->pool, s, c->log_level)) == RC_OK;
    if (st == RC_OK)
        breaker_ok =
            (st = rc_breaker_init(&c->breaker, s->circuit_breaker_threshold,
                                  s->circuit_breaker_timeout)) == RC_OK;
    if (st == RC_OK && pthread_mutex_init(&c->pend_mu, NULL) != 0)
        st = RC_ENOMEM;
    if (st == RC_OK && pthread_mutex_init(&c->replay_mu, NULL) != 0) {
        pthread_mutex_destroy(&c->pend_mu);
        st = RC_ENOMEM;
    }
    if (st == RC_OK && pthread_mutex_init(&c->trust_mu, NULL) != 0) {
        pthread_mutex_destroy(&c->pend_mu);
        pthread_mutex_destroy(&c->replay_mu);
        st = RC_ENOMEM;
    }
    if (st == RC_OK && pthread_mutex_init(&c->watch_mu, NULL) != 0) {
        pthread_mutex_destroy(&c->pend_mu);
        pthread_mutex_destroy(&c->replay_mu);
        pthread_mutex_destroy(&c->trust_mu);
        st = RC_ENOMEM;
    }
    if (st == RC_OK && pthread_mutex_init(&c->metrics_mu, NULL) != 0) {
        pthread_mutex_destroy(&c->pend_mu);
        pthread_mutex_destroy(&c->replay_mu);
        pthread_mutex_destroy(&c->trust_mu);
        pthread_mutex_destroy(&c->watch_mu);
        st = RC_ENOMEM;
    }
    if (st) {
        if (breaker_ok)
            rc_breaker_destroy(&c->breaker);
        if (pool_ok)
            rc_pool_destroy(&c->pool);
        free(c->prefix);
        free(c->escaped_prefix);
    }
    return st;
}

int rc_cache_new(const rc_settings *s, rc_cache **out)
{
    if (!out)
        return rc_seterr(RC_EINVAL, "rc_cache_new: NULL out");
    *out = NULL;
    int level = 0;
    int st = check_settings(s, &level);
    if (st)
        return st;
    rc_cache *c = calloc(1, sizeof *c);
    if (!c)
        return rc_seterr(RC_ENOMEM, "out of memory");
    c->enabled = s->redis_enabled;
    c->fallback_enabled = s->cache_fallback_enabled;
    c->max_value_bytes = (size_t)s->cache_max_value_bytes;
    c->log_level = level;
    c->outbox_poll_ms = s->cache_outbox_poll_ms > 0 ? s->cache_outbox_poll_ms : 100;
    atomic_store(&c->trust_gen, 1); /* not trusted before the first check */
    if (build_parts(c, s) != RC_OK) {
        free(c);
        return rc_seterr(RC_ENOMEM, "out of memory");
    }
    rc_pool_describe(&c->pool, c->where, sizeof c->where);
    c->metrics_timed = s->cache_metrics_enabled;
    /* One in-process store: the near cache's when there is one (the outage
     * store keeps its entries there), else the fallback's own. */
    if (rc_tier_init(c, s) != RC_OK ||
        !(c->fb = rc_fallback_new(c->near, (size_t)s->cache_fallback_max_entries,
                                  rc_clock_monotonic, NULL)) ||
        !(c->fleet = rc_fleet_new((double)s->cache_stats_flush_interval))) {
        rc_cache_free(c);
        return rc_seterr(RC_ENOMEM, "out of memory");
    }
    /* Without Redis the fallback is the cache; with it, the outage store,
     * whose entries live CACHE_FALLBACK_MAX_STALENESS_MS at most. */
    if (!c->enabled && c->fallback_enabled)
        rc_fallback_activate(c->fb);
    if (c->enabled)
        rc_fallback_set_max_age(c->fb, s->cache_fallback_max_staleness_ms > 0
                                           ? s->cache_fallback_max_staleness_ms / 1000.0
                                           : 1.0);
    if (c->enabled && rc_watch_start(c) != RC_OK) {
        rc_cache_free(c);
        return rc_seterr(RC_ENOMEM, "out of memory");
    }
    *out = c;
    return RC_OK;
}

void rc_cache_free(rc_cache *c)
{
    if (!c)
        return;
    rc_fleet_free(c); /* sends what is left first */
    rc_watch_stop(c); /* its thread uses everything below */
    rc_fallback_free(c->fb); /* its entries may be in the near cache's store */
    rc_tier_free(c); /* its thread uses the pool's settings */
    rc_pool_destroy(&c->pool);
    rc_breaker_destroy(&c->breaker);
    rc_pending_clear(&c->pend);
    pthread_mutex_destroy(&c->pend_mu);
    pthread_mutex_destroy(&c->replay_mu);
    pthread_mutex_destroy(&c->trust_mu);
    pthread_mutex_destroy(&c->watch_mu);
    pthread_mutex_destroy(&c->metrics_mu);
    free(c->retired);
    free(c->prefix);
    free(c->escaped_prefix);
    free(c);
}

void rc_cache_set_clock(rc_cache *c, rc_clock_fn fn, void *ud)
{
    if (!c)
        return;
    rc_breaker_set_clock(&c->breaker, fn, ud);
    rc_fallback_set_clock(c->fb, fn, ud);
}

bool rc_cache_value_oversized(rc_cache *c, size_t len)
{
    if (len <= c->max_value_bytes)
        return false;
    atomic_fetch_add(&c->oversized_skipped, 1);
    return true;
}

/* ---- keys ---- */

const char *rc_cache_prefix(const rc_cache *c)
{
    return c ? c->prefix : "";
}

int rc_cache_key(const rc_cache *c, const char *key, char **out)
{
    if (!c || !key || !out)
        return rc_seterr(RC_EINVAL, "rc_cache_key: NULL argument");
    *out = rc_str_concat(c->prefix, key);
    return *out ? RC_OK : rc_seterr(RC_ENOMEM, "out of memory");
}

int rc_cache_glob_escape(const char *s, char **out)
{
    return rc_glob_escape(s, out);
}
