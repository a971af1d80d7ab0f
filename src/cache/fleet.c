/*
 * fleet.c - the fleet counters (fleet.h): this service's counts since its
 * last send, added into one Redis hash per entity namespace; and reading
 * those hashes back (rc_cache_fleet_stats).
 */
#include "cache/service.h"

#include "core/clock.h"
#include "core/str.h"
#include "repocache/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FLEET_TAG "~stats:"
/* Fields of one hash: the reads by tier and outcome, then the counters. */
#define FLEET_FIELDS (RC_TIERS * RC_OUTCOMES + RC_M_COUNTERS)

struct rc_fleet {
    pthread_mutex_t mu;      /* one send at a time; guards sent */
    rc_metrics_totals *sent; /* per namespace, what Redis has from us */
    size_t nsent;            /* how many */
    double period;           /* seconds between sends; 0: none */
    _Atomic double due;      /* clock time of the next send */
};

rc_fleet *rc_fleet_new(double period_s)
{
    rc_fleet *f = calloc(1, sizeof *f);
    if (!f || pthread_mutex_init(&f->mu, NULL) != 0) {
        free(f);
        return NULL;
    }
    f->period = period_s;
    atomic_store(&f->due, rc_clock_monotonic(NULL) + period_s);
    return f;
}

void rc_fleet_free(rc_cache *c)
{
    rc_fleet *f = c->fleet;
    if (!f)
        return;
    if (f->period > 0 && rc_cache_redis_usable(c))
        (void)rc_fleet_flush(c);
    c->fleet = NULL;
    pthread_mutex_destroy(&f->mu);
    free(f->sent);
    free(f);
}

char *rc_fleet_key(const rc_cache *c, const char *ns)
{
    char *tail = rc_str_concat(FLEET_TAG, ns), *key = NULL;
    if (tail && rc_cache_key(c, tail, &key) != RC_OK)
        key = NULL;
    free(tail);
    return key;
}

/* The name of field i of a hash, into buf. */
static void field_name(int i, char *buf, size_t size)
{
    if (i < RC_TIERS * RC_OUTCOMES)
        snprintf(buf, size, "reads:%s:%s", rc_read_tier_name(i / RC_OUTCOMES),
                 rc_read_outcome_name(i % RC_OUTCOMES));
    else
        snprintf(buf, size, "%s", rc_metric_counter_name(i - RC_TIERS * RC_OUTCOMES));
}

/* The value of field i in t. */
static uint64_t field_value(const rc_metrics_totals *t, int i)
{
    if (i < RC_TIERS * RC_OUTCOMES)
        return t->reads[i / RC_OUTCOMES][i % RC_OUTCOMES];
    return t->count[i - RC_TIERS * RC_OUTCOMES];
}

/* The last sent totals of ns (added, zero, when new); NULL out of memory. */
static rc_metrics_totals *sent_of(rc_fleet *f, const char *ns)
{
    for (size_t i = 0; i < f->nsent; i++)
        if (strcmp(f->sent[i].ns, ns) == 0)
            return &f->sent[i];
    rc_metrics_totals *g = realloc(f->sent, (f->nsent + 1) * sizeof *g);
    if (!g)
        return NULL;
    f->sent = g;
    memset(&g[f->nsent], 0, sizeof *g);
    snprintf(g[f->nsent].ns, sizeof g->ns, "%s", ns);
    return &g[f->nsent++];
}

/* One namespace's commands: HINCRBY of each field that moved, then HSET
 * updated_at; their strings in strs (3 per field, FLEET_FIELDS + 1 fields
 * at most). Returns how many commands. */
static size_t ns_commands(rc_cache *c, const rc_metrics_totals *now, const rc_metrics_totals *sent,
                          rc_cmd *cmds, const char **argv, char (*strs)[48], char **key)
{
    size_t n = 0;
    *key = rc_fleet_key(c, now->ns);
    if (!*key)
        return 0;
    for (int i = 0; i < FLEET_FIELDS; i++) {
        uint64_t d = field_value(now, i) - field_value(sent, i);
        if (!d)
            continue;
        field_name(i, strs[2 * i], sizeof strs[0]);
        snprintf(strs[2 * i + 1], sizeof strs[0], "%llu", (unsigned long long)d);
        const char **a = argv + 4 * n;
        a[0] = "HINCRBY", a[1] = *key, a[2] = strs[2 * i], a[3] = strs[2 * i + 1];
        cmds[n++] = (rc_cmd){4, a, NULL};
    }
    if (!n)
        return 0;
    snprintf(strs[2 * FLEET_FIELDS], sizeof strs[0], "%lld", (long long)time(NULL));
    const char **a = argv + 4 * n;
    a[0] = "HSET", a[1] = *key, a[2] = "updated_at", a[3] = strs[2 * FLEET_FIELDS];
    cmds[n++] = (rc_cmd){4, a, NULL};
    return n;
}

/* Sends one namespace's changes; on success they count as sent. */
static int flush_ns(rc_cache *c, rc_fleet *f, const rc_metrics_totals *now)
{
    rc_metrics_totals *sent = sent_of(f, now->ns);
    rc_cmd cmds[FLEET_FIELDS + 1];
    const char *argv[4 * (FLEET_FIELDS + 1)];
    char strs[2 * FLEET_FIELDS + 1][48];
    redisReply *replies[FLEET_FIELDS + 1];
    char *key = NULL;
    if (!sent)
        return rc_seterr(RC_ENOMEM, "out of memory");
    size_t n = ns_commands(c, now, sent, cmds, argv, strs, &key);
    int st = n ? rc_cache_exec(c, cmds, n, replies) : RC_OK;
    for (size_t i = 0; n && st == RC_OK && i < n; i++)
        if (rc_call_reply_error(c, replies[i], "HINCRBY") != RC_OK)
            st = RC_EUNAVAILABLE;
    for (size_t i = 0; n && i < n; i++)
        freeReplyObject(replies[i]);
    free(key);
    if (st == RC_OK) {
        memcpy(sent->reads, now->reads, sizeof now->reads);
        memcpy(sent->count, now->count, sizeof now->count);
    }
    return st;
}

int rc_fleet_flush(rc_cache *c)
{
    rc_metrics_totals *t = NULL;
    size_t n = 0;
    if (!c->enabled || !c->fleet)
        return RC_OK;
    int st = rc_metrics_collect(c, &t, &n);
    pthread_mutex_lock(&c->fleet->mu);
    for (size_t i = 0; st == RC_OK && i < n; i++)
        st = flush_ns(c, c->fleet, &t[i]);
    pthread_mutex_unlock(&c->fleet->mu);
    free(t);
    return st;
}

void rc_fleet_maybe_flush(rc_cache *c)
{
    rc_fleet *f = c->fleet;
    if (!f || f->period <= 0)
        return;
    double due = atomic_load_explicit(&f->due, memory_order_relaxed);
    double now = rc_clock_monotonic(NULL);
    if (now < due || !atomic_compare_exchange_strong(&f->due, &due, now + f->period))
        return;
    char kept[512]; /* the caller's error detail survives the send */
    snprintf(kept, sizeof kept, "%s", rc_errmsg());
    if (rc_cache_redis_usable(c))
        (void)rc_fleet_flush(c);
    rc_seterr(RC_OK, "%s", kept);
}

/* ---- reading the fleet totals ---- */

/* Sets the field name of out to value v. */
static void fleet_field(rc_fleet_stats *out, const char *name, const char *v)
{
    unsigned long long n = strtoull(v, NULL, 10);
    if (strcmp(name, "updated_at") == 0) {
        out->updated_at = (long long)n;
        return;
    }
    for (int i = 0; i < FLEET_FIELDS; i++) {
        char buf[48];
        field_name(i, buf, sizeof buf);
        if (strcmp(buf, name) != 0)
            continue;
        if (i < RC_TIERS * RC_OUTCOMES)
            out->reads[i / RC_OUTCOMES][i % RC_OUTCOMES] = n;
        else {
            uint64_t *cs[RC_M_COUNTERS] = {&out->fills, &out->stale_fills_rejected,
                                           &out->invalidations, &out->decode_errors,
                                           &out->errors, &out->lease_waits};
            *cs[i - RC_TIERS * RC_OUTCOMES] = n;
        }
        return;
    }
}

/* hits, misses and the rest from out->reads. */
static void fleet_sums(rc_fleet_stats *out)
{
    for (int t = 0; t < RC_TIERS; t++) {
        out->hits += out->reads[t][RC_OUTCOME_HIT] + out->reads[t][RC_OUTCOME_NEGATIVE_HIT];
        out->negative_hits += out->reads[t][RC_OUTCOME_NEGATIVE_HIT];
        out->misses += out->reads[t][RC_OUTCOME_MISS];
    }
    out->near_hits = out->reads[RC_TIER_NEAR][RC_OUTCOME_HIT];
    for (int o = 0; o < RC_OUTCOMES; o++)
        out->fallback_reads += out->reads[RC_TIER_FALLBACK][o];
    out->age_s = out->updated_at ? (double)(time(NULL) - out->updated_at) : -1;
}

int rc_cache_fleet_stats(rc_cache *c, const char *ns, rc_fleet_stats *out)
{
    if (!c || !ns || !out)
        return rc_seterr(RC_EINVAL, "rc_cache_fleet_stats: NULL argument");
    memset(out, 0, sizeof *out);
    out->age_s = -1;
    char *key = rc_fleet_key(c, ns);
    if (!key)
        return rc_seterr(RC_ENOMEM, "out of memory");
    const char *argv[2] = {"HGETALL", key};
    redisReply *r = NULL;
    int st = rc_call_one(c, 2, argv, NULL, &r);
    free(key);
    if (st != RC_OK)
        return st;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < r->elements; i += 2)
            if (r->element[i]->type == REDIS_REPLY_STRING &&
                r->element[i + 1]->type == REDIS_REPLY_STRING)
                fleet_field(out, r->element[i]->str, r->element[i + 1]->str);
        out->present = r->elements > 0;
    }
    freeReplyObject(r);
    fleet_sums(out);
    return RC_OK;
}
