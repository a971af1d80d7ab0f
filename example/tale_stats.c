/*
 * tale_stats.c - `tale stats`: each entity's figures (this process's own
 * counters, the keys of its namespace), the fleet totals every process
 * sharing the Redis has sent, and the cache service; or all of it as
 * Prometheus text (--prometheus).
 */
#include "tale.h"

#include "repocache/metrics.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

static const char *yn(bool b) { return b ? "yes" : "no"; }

static double rate(uint64_t hits, uint64_t misses)
{
    return hits + misses ? 100.0 * (double)hits / (double)(hits + misses) : 0.0;
}

static void print_stats_row(const rc_cached_repo_stats *st)
{
    char keys[32];
    if (st->keys < 0)
        snprintf(keys, sizeof keys, "-");
    else
        snprintf(keys, sizeof keys, "%s%lld", st->keys_exact ? "" : ">=", st->keys);
    printf("%-7s %6d  %-10s %8lld  %-7s %-8s %9s %8llu %8llu %8.1f%% %6llu %7llu "
           "%8llu %9llu\n",
           st->entity_type, st->default_ttl, yn(st->all_cached), st->all_ttl_remaining,
           yn(st->cache_on_read), yn(st->cache_on_write), keys,
           (unsigned long long)st->hits, (unsigned long long)st->misses,
           st->hit_rate * 100.0, (unsigned long long)st->errors,
           (unsigned long long)st->decode_errors, (unsigned long long)st->invalidations,
           (unsigned long long)st->stale_fills_rejected);
}

static void print_fleet_row(const char *ns, const rc_fleet_stats *f)
{
    if (!f->present) {
        printf("%-7s %8s\n", ns, "-");
        return;
    }
    printf("%-7s %8llu %8llu %8.1f%% %9llu %8llu %8llu %8llu %6llu %6.0f s\n", ns,
           (unsigned long long)f->hits, (unsigned long long)f->misses,
           rate(f->hits, f->misses), (unsigned long long)f->near_hits,
           (unsigned long long)f->negative_hits, (unsigned long long)f->fallback_reads,
           (unsigned long long)f->invalidations, (unsigned long long)f->errors, f->age_s);
}

static void print_service_stats(const rc_cache_stats *c)
{
    printf("\ncache service (this process)\n");
    printf("  redis           %s, %s\n", c->redis_enabled ? "enabled" : "disabled",
           c->redis_available ? "reachable" : "not reachable");
    printf("  circuit         %s\n", rc_circuit_state_name(c->circuit));
    printf("  hits / misses   %llu / %llu (%.1f%%) of rc_cache_get\n",
           (unsigned long long)c->hits, (unsigned long long)c->misses, c->hit_rate * 100.0);
    printf("  sets / deletes  %llu / %llu\n", (unsigned long long)c->sets,
           (unsigned long long)c->deletes);
    printf("  errors          %llu\n", (unsigned long long)c->errors);
    printf("  fallback        %llu hits, %llu entries\n", (unsigned long long)c->fallback_hits,
           (unsigned long long)c->fallback_entries);
    printf("  pending deletes %llu\n", (unsigned long long)c->pending_deletes);
    printf("  server memory   %s\n", c->used_memory_human[0] ? c->used_memory_human : "-");
    if (c->keys >= 0)
        printf("  server keys     %lld (the whole database)\n", c->keys);
    else
        printf("  server keys     -\n");
}

int tale_stats_table(tale_app *a, int only)
{
    rc_cached_repo_stats st;
    int rc = RC_OK;
    printf("%-7s %6s  %-10s %8s  %-7s %-8s %9s %8s %8s %9s %6s %7s %8s %9s\n", "entity", "ttl",
           "all_cached", "all_ttl", "on_read", "on_write", "keys", "hits", "misses",
           "hit_rate", "errors", "decode", "invalid.", "stale_rej");
    for (int k = 0; rc == RC_OK && k < TALE_NKINDS; k++)
        if ((only < 0 || k == only) && (rc = rc_cached_repo_get_stats(a->cached[k], &st)) == RC_OK)
            print_stats_row(&st);
    if (rc != RC_OK)
        return rc;
    printf("(hits, misses and errors count this process only)\n");
    printf("\nfleet (every process sharing this Redis and prefix)\n");
    printf("%-7s %8s %8s %9s %9s %8s %8s %8s %6s %8s\n", "entity", "hits", "misses",
           "hit_rate", "near_hits", "neg_hits", "fallback", "invalid.", "errors", "age");
    for (int k = 0; k < TALE_NKINDS; k++) {
        rc_fleet_stats f;
        const char *ns = tale_kind(k)->ns;
        if (only >= 0 && k != only)
            continue;
        if (rc_cache_fleet_stats(a->cache, ns, &f) == RC_OK)
            print_fleet_row(ns, &f);
        else
            printf("%-7s %8s (Redis unreachable)\n", ns, "-");
    }
    print_service_stats(&st.cache);
    return RC_OK;
}

json_t *tale_fleet_json(tale_app *a, int k)
{
    rc_fleet_stats f;
    if (rc_cache_fleet_stats(a->cache, tale_kind(k)->ns, &f) != RC_OK || !f.present)
        return json_null();
    return json_pack("{s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "hits",
                     (json_int_t)f.hits, "misses", (json_int_t)f.misses, "hit_rate",
                     rate(f.hits, f.misses) / 100.0, "near_hits", (json_int_t)f.near_hits,
                     "negative_hits", (json_int_t)f.negative_hits, "fallback_reads",
                     (json_int_t)f.fallback_reads, "fills", (json_int_t)f.fills,
                     "stale_fills_rejected", (json_int_t)f.stale_fills_rejected,
                     "invalidations", (json_int_t)f.invalidations, "decode_errors",
                     (json_int_t)f.decode_errors, "errors", (json_int_t)f.errors, "age_s",
                     f.age_s);
}

int tale_stats_prometheus(tale_app *a)
{
    const char *ns[TALE_NKINDS];
    char *own = NULL, *fleet = NULL;
    for (int k = 0; k < TALE_NKINDS; k++)
        ns[k] = tale_kind(k)->ns;
    int rc = rc_cache_metrics_text(a->cache, &own);
    if (rc == RC_OK)
        rc = rc_cache_fleet_metrics_text(a->cache, ns, TALE_NKINDS, &fleet);
    if (rc == RC_OK) {
        fputs(own, stdout);
        fputs(fleet, stdout);
    }
    free(own);
    free(fleet);
    return rc;
}
