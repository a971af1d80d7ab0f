/*
 * metrics_text.c - the Prometheus text exposition (format 0.0.4) of a
 * service and its cached repositories (rc_cache_metrics_text), and of the
 * fleet totals (rc_cache_fleet_metrics_text). Names are prefixed
 * repocache_, in base units (seconds, bytes); counters end in _total; every
 * family has its # HELP and # TYPE lines. The families are listed in the
 * README ("Operating").
 */
#include "cache/service.h"

#include "core/strbuf.h"
#include "repocache/metrics.h"

#include <stdlib.h>
#include <string.h>

/* # HELP and # TYPE of family name. */
static void family(rc_strbuf *b, const char *name, const char *type, const char *help)
{
    rc_strbuf_printf(b, "# HELP repocache_%s %s\n# TYPE repocache_%s %s\n", name, help,
                     name, type);
}

/* One sample without labels. */
static void sample(rc_strbuf *b, const char *name, unsigned long long v)
{
    rc_strbuf_printf(b, "repocache_%s %llu\n", name, v);
}

/* A label value as the format wants it: \ " and newline escaped. Namespaces
 * are plain words, so this only guards against a strange one. */
static const char *label(const char *s, char *buf, size_t size)
{
    size_t o = 0;
    for (; *s && o + 3 < size; s++) {
        if (*s == '\\' || *s == '"' || *s == '\n')
            buf[o++] = '\\';
        buf[o++] = *s == '\n' ? 'n' : *s;
    }
    buf[o] = '\0';
    return buf;
}

/* ---- the service ---- */

static void service_counters(rc_strbuf *b, const rc_cache_stats *st)
{
    family(b, "cache_gets_total", "counter",
           "Lookups through the service's own API (rc_cache_get, rc_cache_get_or_load, the "
           "fallback), by outcome; reads through cached repositories are repocache_reads_total");
    rc_strbuf_printf(b, "repocache_cache_gets_total{outcome=\"hit\"} %llu\n",
                     (unsigned long long)st->hits);
    rc_strbuf_printf(b, "repocache_cache_gets_total{outcome=\"miss\"} %llu\n",
                     (unsigned long long)st->misses);
    const struct {
        const char *name, *help;
        uint64_t v;
    } cs[] = {
        {"cache_sets_total", "Successful writes of values (Redis or fallback)", st->sets},
        {"cache_deletes_total", "Keys deleted in Redis", st->deletes},
        {"redis_errors_total", "Redis calls that failed or were refused by the open breaker, "
                               "and error replies", st->errors},
        {"fallback_hits_total", "Lookups answered by the in-memory fallback", st->fallback_hits},
        {"oversized_values_skipped_total",
         "Answers not cached: their encoding was over CACHE_MAX_VALUE_BYTES",
         st->oversized_skipped},
        {"single_flight_waits_total", "Reads that waited for another thread's load of the key",
         st->single_flight_waits},
        {"near_evictions_total", "Near-cache values evicted for room", st->near_evictions},
        {"near_invalidations_total", "Invalidations the near cache received from Redis",
         st->near_invalidations},
        {"near_coherence_losses_total", "Times the near cache stopped serving and emptied",
         st->near_coherence_losses},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        family(b, cs[i].name, "counter", cs[i].help);
        sample(b, cs[i].name, cs[i].v);
    }
}

static void service_gauges(rc_strbuf *b, const rc_cache_stats *st)
{
    const struct {
        const char *name, *help;
        uint64_t v;
    } gs[] = {
        {"circuit_state", "Circuit breaker: 0 closed, 1 open, 2 half open", (uint64_t)st->circuit},
        {"redis_available", "1 when the last Redis call succeeded", st->redis_available},
        {"pending_deletes", "Remembered deletes not yet replayed", st->pending_deletes},
        {"fallback_entries", "Entries in the in-memory fallback", st->fallback_entries},
        {"near_coherent", "1 while the near cache serves", st->near_coherent},
        {"near_entries", "Values held by the near cache", st->near_entries},
        {"near_bytes", "Accounted size of those values in bytes", st->near_bytes},
    };
    for (size_t i = 0; i < sizeof gs / sizeof gs[0]; i++) {
        family(b, gs[i].name, "gauge", gs[i].help);
        sample(b, gs[i].name, gs[i].v);
    }
}

/* ---- the repositories ---- */

/* The samples of one histogram, labels given as text ("entity=\"hero\",..."). */
static void histogram(rc_strbuf *b, const char *name, const char *labels,
                      const rc_histogram_view *v)
{
    for (int i = 0; i < RC_HIST_BOUNDS; i++)
        rc_strbuf_printf(b, "repocache_%s_bucket{%s,le=\"%g\"} %llu\n", name, labels,
                         rc_histogram_bound(i), (unsigned long long)v->cumulative[i]);
    rc_strbuf_printf(b, "repocache_%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels,
                     (unsigned long long)v->count);
    rc_strbuf_printf(b, "repocache_%s_sum{%s} %.9g\n", name, labels, v->sum_s);
    rc_strbuf_printf(b, "repocache_%s_count{%s} %llu\n", name, labels,
                     (unsigned long long)v->count);
}

static void reads(rc_strbuf *b, const char *fam, const rc_metrics_totals *t, size_t n)
{
    char e[256];
    for (size_t j = 0; j < n; j++)
        for (int i = 0; i < RC_TIERS; i++)
            for (int o = 0; o < RC_OUTCOMES; o++)
                rc_strbuf_printf(b, "repocache_%s{entity=\"%s\",tier=\"%s\",outcome=\"%s\"} %llu\n",
                                 fam, label(t[j].ns, e, sizeof e), rc_read_tier_name(i),
                                 rc_read_outcome_name(o), (unsigned long long)t[j].reads[i][o]);
}

/* The counters of t[0..n) as families prefix + <counter>_total. */
static void counters(rc_strbuf *b, const char *prefix, const char *help_prefix,
                     const rc_metrics_totals *t, size_t n)
{
    char e[256];
    for (int k = 0; k < RC_M_COUNTERS; k++) {
        char name[96];
        snprintf(name, sizeof name, "%s%s_total", prefix, rc_metric_counter_name(k));
        rc_strbuf_printf(b, "# HELP repocache_%s %s%s\n# TYPE repocache_%s counter\n", name,
                         help_prefix, rc_metric_counter_help(k), name);
        for (size_t j = 0; j < n; j++)
            rc_strbuf_printf(b, "repocache_%s{entity=\"%s\"} %llu\n", name,
                             label(t[j].ns, e, sizeof e), (unsigned long long)t[j].count[k]);
    }
}

static void latencies(rc_strbuf *b, const rc_metrics_totals *t, size_t n)
{
    char e[256], labels[400];
    family(b, "read_duration_seconds", "histogram",
           "Latency of reads through cached repositories, by the tier that answered and the outcome");
    for (size_t j = 0; j < n; j++)
        for (int i = 0; i < RC_TIERS; i++)
            for (int o = 0; o < RC_OUTCOMES; o++) {
                snprintf(labels, sizeof labels, "entity=\"%s\",tier=\"%s\",outcome=\"%s\"",
                         label(t[j].ns, e, sizeof e), rc_read_tier_name(i),
                         rc_read_outcome_name(o));
                histogram(b, "read_duration_seconds", labels, &t[j].read_latency[i][o]);
            }
    family(b, "write_invalidation_duration_seconds", "histogram",
           "Latency of the cache invalidation after a successful write (the wrapped "
           "repository's write not included)");
    for (size_t j = 0; j < n; j++) {
        snprintf(labels, sizeof labels, "entity=\"%s\"", label(t[j].ns, e, sizeof e));
        histogram(b, "write_invalidation_duration_seconds", labels, &t[j].write_latency);
    }
}

int rc_cache_metrics_text(rc_cache *c, char **text)
{
    if (!c || !text)
        return rc_seterr(RC_EINVAL, "rc_cache_metrics_text: NULL argument");
    *text = NULL;
    rc_metrics_totals *t = NULL;
    size_t n = 0;
    rc_strbuf b = {0};
    rc_cache_stats st;
    rc_stats_local(c, &st);
    if (rc_metrics_collect(c, &t, &n) != RC_OK)
        return RC_ENOMEM;
    family(&b, "reads_total", "counter",
           "Reads through cached repositories, by the tier that answered and the outcome "
           "(hit and negative_hit are hits, miss went to the wrapped repository)");
    reads(&b, "reads_total", t, n);
    counters(&b, "", "", t, n);
    if (c->metrics_timed)
        latencies(&b, t, n);
    service_counters(&b, &st);
    service_gauges(&b, &st);
    free(t);
    return rc_strbuf_finish(&b, text);
}

int rc_cache_metrics_flush(rc_cache *c)
{
    if (!c)
        return rc_seterr(RC_EINVAL, "rc_cache_metrics_flush: NULL argument");
    return rc_fleet_flush(c);
}

/* ---- the fleet ---- */

int rc_cache_fleet_metrics_text(rc_cache *c, const char *const *ns, size_t n, char **text)
{
    if (!c || !text || (n && !ns))
        return rc_seterr(RC_EINVAL, "rc_cache_fleet_metrics_text: NULL argument");
    *text = NULL;
    rc_metrics_totals *t = calloc(n ? n : 1, sizeof *t);
    double *age = calloc(n ? n : 1, sizeof *age);
    size_t got = 0;
    rc_strbuf b = {0};
    for (size_t i = 0; t && age && i < n; i++) {
        rc_fleet_stats fs;
        if (rc_cache_fleet_stats(c, ns[i], &fs) != RC_OK || !fs.present)
            continue;
        snprintf(t[got].ns, sizeof t->ns, "%s", ns[i]);
        memcpy(t[got].reads, fs.reads, sizeof fs.reads);
        const uint64_t cs[RC_M_COUNTERS] = {fs.fills, fs.stale_fills_rejected, fs.invalidations,
                                            fs.decode_errors, fs.errors, fs.lease_waits};
        memcpy(t[got].count, cs, sizeof cs);
        age[got++] = fs.age_s;
    }
    family(&b, "fleet_reads_total", "counter",
           "Reads by every process sharing this Redis and prefix, as repocache_reads_total");
    reads(&b, "fleet_reads_total", t, got);
    counters(&b, "fleet_", "Every process sharing this Redis: ", t, got);
    family(&b, "fleet_age_seconds", "gauge", "Seconds since a process last sent its counters");
    char e[256];
    for (size_t j = 0; j < got; j++)
        rc_strbuf_printf(&b, "repocache_fleet_age_seconds{entity=\"%s\"} %.3f\n",
                         label(t[j].ns, e, sizeof e), age[j]);
    if (!t || !age)
        b.oom = true;
    free(t);
    free(age);
    rc_clearerr();
    return rc_strbuf_finish(&b, text);
}
