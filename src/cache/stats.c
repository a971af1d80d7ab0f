/*
 * stats.c - the statistics of the cache service: counters kept by the other
 * files, the breaker state, the fallback size, the remembered deletes, and
 * from the server (when reachable) its memory use and key count.
 */
#include "cache/service.h"

#include "core/json.h"
#include "core/str.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *rc_circuit_state_name(rc_circuit_state s)
{
    switch (s) {
    case RC_CIRCUIT_CLOSED:
        return "closed";
    case RC_CIRCUIT_OPEN:
        return "open";
    case RC_CIRCUIT_HALF_OPEN:
        return "half_open";
    }
    return "unknown";
}

/* Copies the value of field (e.g. "used_memory_human") from an INFO text. */
static void info_field(const char *info, const char *field, char *out,
                       size_t size)
{
    size_t fl = strlen(field);
    out[0] = '\0';
    for (const char *p = info; p && *p;
         p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, field, fl) == 0 && p[fl] == ':') {
            size_t n = strcspn(p + fl + 1, "\r\n");
            snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1),
                     p + fl + 1);
            return;
        }
    }
}

/* With a cluster: every master's memory use and key count, summed. */
typedef struct master_sums {
    long long keys;   /* DBSIZE */
    long long memory; /* used_memory, bytes */
} master_sums;

static int master_stats_fn(rc_cache *c, rc_link *ctx, void *ud)
{
    if (rc_route_unpinned(ctx))
        return rc_route_each_master(c, ctx, master_stats_fn, ud);
    master_sums *sum = ud;
    const char *info[] = {"INFO", "memory"}, *dbsize[] = {"DBSIZE"};
    rc_cmd cmds[2] = {{2, info, NULL}, {1, dbsize, NULL}};
    redisReply *r[2];
    int st = rc_call_pipeline(c, ctx, cmds, 2, r);
    if (st != RC_OK)
        return st;
    char mem[32];
    if (r[0]->type == REDIS_REPLY_STRING) {
        info_field(r[0]->str, "used_memory", mem, sizeof mem);
        sum->memory += atoll(mem);
    }
    if (r[1]->type == REDIS_REPLY_INTEGER)
        sum->keys += r[1]->integer;
    freeReplyObject(r[0]);
    freeReplyObject(r[1]);
    return RC_OK;
}

static void cluster_stats(rc_cache *c, rc_cache_stats *st)
{
    master_sums sum = {0, 0};
    if (rc_call_with(c, master_stats_fn, &sum) != RC_OK)
        return;
    st->keys = sum.keys;
    snprintf(st->used_memory_human, sizeof st->used_memory_human, "%.2fM",
             (double)sum.memory / 1048576.0);
}

/* Memory use and key count from the server, when it can be asked. */
static void server_stats(rc_cache *c, rc_cache_stats *st)
{
    if (!rc_cache_redis_usable(c))
        return;
    if (c->cluster) {
        cluster_stats(c, st);
        return;
    }
    const char *info[] = {"INFO", "memory"}, *dbsize[] = {"DBSIZE"};
    rc_cmd cmds[2] = {{2, info, NULL}, {1, dbsize, NULL}};
    redisReply *r[2];
    if (rc_cache_exec(c, cmds, 2, r) != RC_OK)
        return;
    if (r[0]->type == REDIS_REPLY_STRING)
        info_field(r[0]->str, "used_memory_human", st->used_memory_human,
                   sizeof st->used_memory_human);
    if (r[1]->type == REDIS_REPLY_INTEGER)
        st->keys = r[1]->integer;
    freeReplyObject(r[0]);
    freeReplyObject(r[1]);
}

/* The near cache's figures. */
static void near_stats(rc_cache *c, rc_cache_stats *st)
{
    if (!c->near)
        return;
    rc_near_stats n;
    rc_tracking_stats t;
    rc_near_get_stats(c->near, &n);
    if (c->cluster)
        rc_cluster_tracking_stats(c, &t);
    else
        rc_tracking_get_stats(c->tracking, &t);
    st->near_coherent = t.coherent;
    st->near_hits = n.hits;
    st->near_misses = n.misses;
    st->near_entries = n.entries;
    st->near_bytes = n.bytes;
    st->near_evictions = n.evictions;
    st->near_invalidations = t.invalidations;
    st->near_coherence_losses = t.losses;
    st->single_flight_waits = n.waits;
}

void rc_stats_local(rc_cache *c, rc_cache_stats *st)
{
    memset(st, 0, sizeof *st);
    st->keys = -1;
    st->hits = atomic_load(&c->hits);
    st->misses = atomic_load(&c->misses);
    st->hit_rate = st->hits + st->misses
                       ? (double)st->hits / (double)(st->hits + st->misses)
                       : 0;
    st->sets = atomic_load(&c->sets);
    st->deletes = atomic_load(&c->deletes);
    st->errors = atomic_load(&c->errors);
    st->fallback_hits = atomic_load(&c->fallback_hits);
    st->fallback_entries = rc_fallback_count(c->fb);
    st->oversized_skipped = atomic_load(&c->oversized_skipped);
    st->circuit = rc_cache_circuit(c);
    st->redis_enabled = c->enabled;
    st->redis_available = c->enabled && atomic_load(&c->avail) == RC_AVAIL_UP;
    st->pending_deletes = rc_cluster_pending(c);
    near_stats(c, st);
    st->redis_trusted = rc_identity_trusted(c);
    st->outbox_written = atomic_load(&c->ob_written);
    st->outbox_applied = atomic_load(&c->ob_applied);
    st->outbox_pending = atomic_load(&c->ob_pending);
    st->identity_changes = atomic_load(&c->identity_changes);
    st->identity_drops = atomic_load(&c->identity_drops);
    st->unacknowledged_invalidations = atomic_load(&c->unacked);
}

int rc_cache_get_stats(rc_cache *c, rc_cache_stats *st)
{
    if (!c || !st)
        return rc_seterr(RC_EINVAL, "rc_cache_get_stats: NULL argument");
    rc_cache_stats srv = {.keys = -1};
    server_stats(c, &srv); /* first: whether Redis answered shows below */
    rc_stats_local(c, st);
    memcpy(st->used_memory_human, srv.used_memory_human, sizeof st->used_memory_human);
    st->keys = srv.keys;
    rc_clearerr();
    return RC_OK;
}

/* The near cache's statistics as a JSON object (NULL when out of memory). */
static json_t *near_object(const rc_cache_stats *st)
{
    return json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "coherent",
                     (int)st->near_coherent, "hits", (json_int_t)st->near_hits,
                     "misses", (json_int_t)st->near_misses, "entries",
                     (json_int_t)st->near_entries, "bytes", (json_int_t)st->near_bytes,
                     "evictions", (json_int_t)st->near_evictions, "invalidations",
                     (json_int_t)st->near_invalidations, "coherence_losses",
                     (json_int_t)st->near_coherence_losses, "single_flight_waits",
                     (json_int_t)st->single_flight_waits);
}

/* The outbox's and identity's statistics as a JSON object. */
static json_t *outage_object(const rc_cache_stats *st)
{
    return json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I}", "redis_trusted",
                     (int)st->redis_trusted, "outbox_written",
                     (json_int_t)st->outbox_written, "outbox_applied",
                     (json_int_t)st->outbox_applied, "outbox_pending",
                     (json_int_t)st->outbox_pending, "identity_changes",
                     (json_int_t)st->identity_changes, "identity_drops",
                     (json_int_t)st->identity_drops, "unacknowledged_invalidations",
                     (json_int_t)st->unacknowledged_invalidations);
}

/* The statistics as a JSON object (NULL when out of memory). */
static json_t *stats_object(const rc_cache_stats *st)
{
    return json_pack(
        "{s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:b, s:b, s:I, "
        "s:s, s:I, s:o, s:o}",
        "hits", (json_int_t)st->hits, "misses", (json_int_t)st->misses,
        "hit_rate", st->hit_rate, "sets", (json_int_t)st->sets, "deletes",
        (json_int_t)st->deletes, "errors", (json_int_t)st->errors,
        "fallback_hits", (json_int_t)st->fallback_hits, "fallback_entries",
        (json_int_t)st->fallback_entries, "oversized_skipped",
        (json_int_t)st->oversized_skipped, "circuit",
        rc_circuit_state_name(st->circuit), "redis_enabled",
        (int)st->redis_enabled, "redis_available", (int)st->redis_available,
        "pending_deletes", (json_int_t)st->pending_deletes, "used_memory_human",
        st->used_memory_human, "keys", (json_int_t)st->keys, "near",
        near_object(st), "outage", outage_object(st));
}

int rc_cache_stats_json(rc_cache *c, char **json)
{
    if (!c || !json)
        return rc_seterr(RC_EINVAL, "rc_cache_stats_json: NULL argument");
    *json = NULL;
    rc_cache_stats st;
    rc_cache_get_stats(c, &st);
    json_t *o = stats_object(&st);
    /* dumped into a malloc'd buffer: the caller frees it with free(),
     * whatever allocator jansson was given */
    int rc = o ? rc_json_dump(o, JSON_PRESERVE_ORDER, json, NULL) : RC_ENOMEM;
    json_decref(o);
    return rc ? rc_seterr(RC_ENOMEM, "out of memory") : RC_OK;
}

/* One SCAN step from cursor (updated) over pattern; *count += matches. On
 * ctx (a cluster's master) or, when NULL, as a call of its own. */
static int scan_step(rc_cache *c, rc_link *ctx, const char *pattern, char *cursor,
                     size_t size, long long *count)
{
    const char *argv[6] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
    rc_cmd cmd = {6, argv, NULL};
    redisReply *r = NULL;
    int st = ctx ? rc_call_pipeline(c, ctx, &cmd, 1, &r) : rc_call_one(c, 6, argv, NULL, &r);
    if (st != RC_OK)
        return st;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return rc_seterr(RC_EUNAVAILABLE, "SCAN: unexpected reply");
    }
    snprintf(cursor, size, "%s", r->element[0]->str);
    *count += (long long)r->element[1]->elements;
    freeReplyObject(r);
    return RC_OK;
}

/* rc_cache_count_keys with a cluster: each master scanned. */
typedef struct count_args {
    const char *pattern;
    long long max_scanned, *count;
    bool exact; /* every master's SCAN ended */
} count_args;

static int count_fn(rc_cache *c, rc_link *ctx, void *ud)
{
    if (rc_route_unpinned(ctx))
        return rc_route_each_master(c, ctx, count_fn, ud);
    count_args *a = ud;
    char cursor[32] = "0";
    for (long long scanned = 0; scanned < a->max_scanned; scanned += 1000) {
        int st = scan_step(c, ctx, a->pattern, cursor, sizeof cursor, a->count);
        if (st != RC_OK || strcmp(cursor, "0") == 0)
            return st;
    }
    a->exact = false;
    return RC_OK;
}

int rc_cache_count_keys(rc_cache *c, const char *glob, long long max_scanned,
                        long long *count, bool *exact)
{
    if (!c || !glob || !count || !exact)
        return rc_seterr(RC_EINVAL, "rc_cache_count_keys: NULL argument");
    *count = 0;
    *exact = false;
    char *pattern = rc_str_concat(c->escaped_prefix, glob), cursor[32] = "0";
    if (!pattern)
        return rc_seterr(RC_ENOMEM, "out of memory");
    int st = RC_OK;
    if (c->cluster) {
        count_args a = {pattern, max_scanned, count, true};
        st = rc_call_with(c, count_fn, &a);
        *exact = st == RC_OK && a.exact;
        max_scanned = 0; /* done */
    }
    for (long long scanned = 0; st == RC_OK && scanned < max_scanned; scanned += 1000) {
        st = scan_step(c, NULL, pattern, cursor, sizeof cursor, count);
        if (st == RC_OK && strcmp(cursor, "0") == 0) {
            *exact = true;
            break;
        }
    }
    free(pattern);
    return st;
}
