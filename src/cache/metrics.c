/*
 * metrics.c - the blocks the cached repositories record into (metrics.h):
 * attaching one per repository, recording reads and writes, the
 * rate-limited decode_error log, and the totals per namespace that the
 * Prometheus text (metrics_text.c) and the fleet counters (fleet.c) read.
 */
#include "cache/service.h"

#include "core/log.h"
#include "core/str.h"

#include <stdlib.h>
#include <string.h>

static const char *const tier_names[RC_TIERS] = {"near", "redis", "fallback"};
static const char *const outcome_names[RC_OUTCOMES] = {"hit", "negative_hit", "miss"};
#define RC_M_NAME_(name, help) #name,
#define RC_M_HELP_(name, help) help,
static const char *const counter_names[RC_M_COUNTERS] = {RC_METRIC_COUNTERS(RC_M_NAME_)};
static const char *const counter_helps[RC_M_COUNTERS] = {RC_METRIC_COUNTERS(RC_M_HELP_)};
#undef RC_M_NAME_
#undef RC_M_HELP_

const char *rc_read_tier_name(int tier) { return tier_names[tier]; }
const char *rc_read_outcome_name(int outcome) { return outcome_names[outcome]; }
const char *rc_metric_counter_name(int k) { return counter_names[k]; }
const char *rc_metric_counter_help(int k) { return counter_helps[k]; }

static rc_metrics_totals *totals_of(rc_metrics_totals *t, size_t *n, const char *ns);

/* Makes room for ns's totals in c->retired (once per namespace), so that a
 * repository's figures are never lost when it goes; false when out of
 * memory. Under metrics_mu. */
static bool reserve_retired(rc_cache *c, const char *ns)
{
    for (size_t i = 0; i < c->nretired; i++)
        if (strcmp(c->retired[i].ns, ns) == 0)
            return true;
    rc_metrics_totals *grown = realloc(c->retired, (c->nretired + 1) * sizeof *grown);
    if (!grown)
        return false;
    c->retired = grown;
    /* a namespace too long to be named in the totals is not totalled */
    return totals_of(c->retired, &c->nretired, ns) || strlen(ns) >= sizeof grown->ns;
}

rc_metrics *rc_metrics_attach(rc_cache *c, const char *ns)
{
    /* aligned: each counter and histogram stripe on lines of its own */
    rc_metrics *m = rc_counter_struct_alloc(sizeof *m);
    if (!m || !(m->ns = rc_strdup(ns))) {
        free(m);
        return NULL;
    }
    m->cache = c;
    m->timed = c->metrics_timed;
    pthread_mutex_lock(&c->metrics_mu);
    bool ok = reserve_retired(c, ns);
    if (ok) {
        m->next = c->metrics;
        c->metrics = m;
    }
    pthread_mutex_unlock(&c->metrics_mu);
    if (!ok) {
        free(m->ns);
        free(m);
        return NULL;
    }
    return m;
}

void rc_metrics_read(rc_metrics *m, rc_read_tier tier, rc_read_outcome outcome,
                     uint64_t t0)
{
    rc_counter_add(&m->reads[tier][outcome]);
    if (t0)
        rc_histogram_observe(&m->read_latency[tier][outcome], rc_histogram_now_ns() - t0);
    if (outcome == RC_OUTCOME_MISS)
        rc_fleet_maybe_flush(m->cache);
}

void rc_metrics_write(rc_metrics *m, uint64_t t0)
{
    if (t0)
        rc_histogram_observe(&m->write_latency, rc_histogram_now_ns() - t0);
    rc_fleet_maybe_flush(m->cache);
}

void rc_metrics_decode_error(rc_metrics *m, const char *key)
{
    rc_cache *c = m->cache;
    rc_metrics_count(m, RC_M_decode_errors);
    atomic_fetch_add(&c->decode_unlogged, 1);
    double now = rc_clock_monotonic(NULL);
    double last = atomic_load(&c->decode_logged);
    if ((last == 0 || now - last >= RC_DECODE_LOG_PERIOD) &&
        atomic_compare_exchange_strong(&c->decode_logged, &last, now))
        rc_log(c->log_level, RC_LOG_WARNING, "decode_error",
               "%s: %llu cached value(s) did not decode (dropped), the last under %.200s",
               m->ns, (unsigned long long)atomic_exchange(&c->decode_unlogged, 0), key);
}

uint64_t rc_metrics_reads(const rc_metrics *m, int tier, rc_read_outcome outcome)
{
    uint64_t n = 0;
    for (int t = 0; t < RC_TIERS; t++)
        if (tier < 0 || t == tier)
            n += rc_counter_get(&m->reads[t][outcome]);
    return n;
}

/* ---- totals ---- */

/* Adds v into *into. */
static void view_add(rc_histogram_view *into, const rc_histogram_view *v)
{
    for (int i = 0; i <= RC_HIST_BOUNDS; i++)
        into->cumulative[i] += v->cumulative[i];
    into->count += v->count;
    into->sum_s += v->sum_s;
}

/* Adds m's figures into *t. */
static void totals_add(rc_metrics_totals *t, const rc_metrics *m)
{
    rc_histogram_view v;
    for (int i = 0; i < RC_TIERS; i++)
        for (int o = 0; o < RC_OUTCOMES; o++) {
            t->reads[i][o] += rc_counter_get(&m->reads[i][o]);
            rc_histogram_read(&m->read_latency[i][o], &v);
            view_add(&t->read_latency[i][o], &v);
        }
    for (int k = 0; k < RC_M_COUNTERS; k++)
        t->count[k] += rc_counter_get(&m->count[k]);
    rc_histogram_read(&m->write_latency, &v);
    view_add(&t->write_latency, &v);
}

/* Adds the figures of b into *a. */
static void totals_merge(rc_metrics_totals *a, const rc_metrics_totals *b)
{
    for (int i = 0; i < RC_TIERS; i++)
        for (int o = 0; o < RC_OUTCOMES; o++) {
            a->reads[i][o] += b->reads[i][o];
            view_add(&a->read_latency[i][o], &b->read_latency[i][o]);
        }
    for (int k = 0; k < RC_M_COUNTERS; k++)
        a->count[k] += b->count[k];
    view_add(&a->write_latency, &b->write_latency);
}

/* The totals of ns in t[0..*n), added at the end when absent (t has room);
 * NULL when ns is too long to be one. */
static rc_metrics_totals *totals_of(rc_metrics_totals *t, size_t *n, const char *ns)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(t[i].ns, ns) == 0)
            return &t[i];
    if (strlen(ns) >= sizeof t->ns)
        return NULL;
    memset(&t[*n], 0, sizeof t[*n]);
    strcpy(t[*n].ns, ns);
    return &t[(*n)++];
}

void rc_metrics_detach(rc_metrics *m)
{
    if (!m)
        return;
    rc_cache *c = m->cache;
    pthread_mutex_lock(&c->metrics_mu);
    for (rc_metrics **p = &c->metrics; *p; p = &(*p)->next)
        if (*p == m) {
            *p = m->next;
            break;
        }
    /* reserved by rc_metrics_attach: found, never added here */
    rc_metrics_totals *t = totals_of(c->retired, &c->nretired, m->ns);
    if (t)
        totals_add(t, m);
    pthread_mutex_unlock(&c->metrics_mu);
    free(m->ns);
    free(m);
}

int rc_metrics_collect(rc_cache *c, rc_metrics_totals **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&c->metrics_mu);
    size_t room = c->nretired;
    for (rc_metrics *m = c->metrics; m; m = m->next)
        room++;
    rc_metrics_totals *t = calloc(room ? room : 1, sizeof *t);
    if (!t) {
        pthread_mutex_unlock(&c->metrics_mu);
        return rc_seterr(RC_ENOMEM, "out of memory");
    }
    /* in the order first seen: the oldest repository is last in the list */
    for (size_t i = 0; i < c->nretired; i++)
        totals_merge(totals_of(t, n, c->retired[i].ns), &c->retired[i]);
    size_t live = room - c->nretired;
    for (size_t k = live; k > 0; k--) {
        rc_metrics *m = c->metrics;
        for (size_t j = 1; j < k; j++)
            m = m->next;
        rc_metrics_totals *tt = totals_of(t, n, m->ns);
        if (tt)
            totals_add(tt, m);
    }
    pthread_mutex_unlock(&c->metrics_mu);
    *out = t;
    return RC_OK;
}
