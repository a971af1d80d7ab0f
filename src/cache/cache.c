/*
 * cache.c - the cache service's lifecycle: creating it from settings,
 * freeing it, its clock, and its keys (the prefix). The service's other
 * files are listed in service.h.
 */
#include "cache/service.h"

#include "core/clock.h"
#include "core/hostports.h"
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
    if (s->redis_cluster_nodes && s->redis_sentinels)
        return rc_seterr(RC_ECONFIG, "REDIS_CLUSTER_NODES and REDIS_SENTINELS: set one of them "
                                     "(a cluster finds its masters itself)");
    if (s->redis_cluster_nodes && s->redis_unix_path)
        return rc_seterr(RC_ECONFIG, "REDIS_CLUSTER_NODES: REDIS_URL names a unix socket; "
                                     "a cluster's nodes are host:port");
    if (s->redis_cluster_nodes && s->redis_db != 0)
        return rc_seterr(RC_ECONFIG, "REDIS_DB: must be 0 with REDIS_CLUSTER_NODES (a cluster "
                                     "has database 0 only), got %d", s->redis_db);
    *level = rc_log_level_parse(s->log_level ? s->log_level : "info");
    if (*level < 0)
        return rc_seterr(RC_ECONFIG, "LOG_LEVEL: bad value '%s'", s->log_level);
    return RC_OK;
}

/* With a cluster, the settings of the pool every master's copies: the
 * first seed's address, and TLS on with rediss:// or any REDIS_TLS_* file
 * or name. ps shares s's strings but host, which *host holds (free it). */
static int cluster_pool_settings(const rc_settings *s, rc_settings *ps, char **host)
{
    *ps = *s;
    *host = NULL;
    if (!s->redis_cluster_nodes)
        return RC_OK;
    rc_hostports l;
    int st = rc_hostports_parse("REDIS_CLUSTER_NODES", s->redis_cluster_nodes, &l);
    if (st)
        return st;
    *host = rc_strdup(l.items[0].host);
    ps->redis_host = *host;
    ps->redis_port = l.items[0].port;
    ps->redis_tls = s->redis_tls || s->redis_tls_ca_file || s->redis_tls_ca_dir ||
                    s->redis_tls_cert_file || s->redis_tls_key_file ||
                    s->redis_tls_server_name;
    rc_hostports_clear(&l);
    return *host ? RC_OK : rc_seterr(RC_ENOMEM, "out of memory");
}

/* Builds c's parts from s; on failure frees what was built (not c). */
static int build_parts(rc_cache *c, const rc_settings *s)
{
    c->prefix = rc_strdup(s->cache_key_prefix ? s->cache_key_prefix : "");
    int st =
        c->prefix ? rc_glob_escape(c->prefix, &c->escaped_prefix) : RC_ENOMEM;
    bool pool_ok = false, breaker_ok = false;
    /* the outbox's lock: an outbox applied through a cluster may meet a
     * master it has to verify, which lists the namespaces again */
    pthread_mutexattr_t recursive;
    pthread_mutexattr_init(&recursive);
    pthread_mutexattr_settype(&recursive, PTHREAD_MUTEX_RECURSIVE);
    rc_settings ps;
    char *host = NULL;
    if (st == RC_OK)
        st = cluster_pool_settings(s, &ps, &host);
    if (st == RC_OK)
        pool_ok = (st = rc_pool_init(&c->pool, &ps, c->log_level)) == RC_OK;
    free(host);
    if (st == RC_OK)
        breaker_ok =
            (st = rc_breaker_init(&c->breaker, s->circuit_breaker_threshold,
                                  s->circuit_breaker_timeout)) == RC_OK;
    bool dels_ok = false;
    if (st == RC_OK)
        dels_ok = (st = rc_deletes_init(&c->dels)) == RC_OK;
    if (st == RC_OK && pthread_mutex_init(&c->trust_mu, NULL) != 0)
        st = RC_ENOMEM;
    if (st == RC_OK && pthread_mutex_init(&c->watch_mu, &recursive) != 0) {
        pthread_mutex_destroy(&c->trust_mu);
        st = RC_ENOMEM;
    }
    if (st == RC_OK && pthread_mutex_init(&c->metrics_mu, NULL) != 0) {
        pthread_mutex_destroy(&c->trust_mu);
        pthread_mutex_destroy(&c->watch_mu);
        st = RC_ENOMEM;
    }
    pthread_mutexattr_destroy(&recursive);
    if (st) {
        if (dels_ok)
            rc_deletes_destroy(&c->dels);
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
    if (c->enabled && s->redis_cluster_nodes) {
        snprintf(c->where, sizeof c->where, "cluster %s", s->redis_cluster_nodes);
        atomic_store(&c->trusted_gen, 1); /* its trust is its masters' */
        if ((st = rc_cluster_new(c, s->redis_cluster_nodes, &c->cluster)) != RC_OK) {
            rc_cache_free(c);
            return st;
        }
    }
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
    rc_cluster_free(c->cluster); /* its masters' pools share the pool's TLS */
    rc_pool_destroy(&c->pool);
    rc_breaker_destroy(&c->breaker);
    rc_deletes_destroy(&c->dels);
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
