/*
 * replay.c - remembered deletes and their replay. A delete that could not
 * reach Redis (and a write that could not, since Redis may keep an older
 * value) is remembered as a key, or as a pattern; the first call that
 * reaches Redis again replays them all on its context before its own
 * commands (UNLINK in pipelined batches, SCAN + UNLINK per pattern), and
 * every other call waits for that replay. Past RC_PENDING_MAX distinct keys
 * the keys are replaced by a pattern drop.
 */
#include "cache/service.h"

#include "core/log.h"
#include "core/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* More remembered deletes than this are replaced by a pattern drop. */
#define RC_PENDING_MAX 10000
/* Keys per UNLINK command when replaying or clearing. */
#define RC_UNLINK_BATCH 500
/* COUNT hint of each SCAN step. */
#define RC_SCAN_COUNT "1000"

/* ---- remembering ---- */

/* Refreshes the lock-free count; pend_mu held. */
static void recount_locked(rc_deletes *d)
{
    atomic_store(&d->count, rc_pending_count(&d->pend) + d->inflight);
}

/* Adds "escaped prefix + glob" to the patterns to drop; pend_mu held. */
static int add_glob_locked(rc_cache *c, rc_deletes *d, const char *glob)
{
    char *pat = rc_str_concat(c->escaped_prefix, glob);
    if (!pat)
        return RC_ENOMEM;
    int st = rc_pending_add_glob(&d->pend, pat);
    free(pat);
    return st;
}

/* Last resort when something could not be remembered: drop everything under
 * the prefix on recovery (retried until there is memory for it). */
static void add_drop_all_locked(rc_cache *c, rc_deletes *d)
{
    while (add_glob_locked(c, d, "*") != RC_OK)
        ;
}

int rc_deletes_remember(rc_cache *c, rc_deletes *d, const char *const *keys, size_t n,
                        const char *drop_glob)
{
    int st = RC_OK;
    pthread_mutex_lock(&d->mu);
    if (n == 0 && drop_glob) /* a pattern drop alone (a failed clear) */
        st = add_glob_locked(c, d, drop_glob);
    for (size_t i = 0; st == RC_OK && i < n; i++) {
        if (d->pend.keys.n >= RC_PENDING_MAX) {
            /* Too many distinct keys: forget them, drop by pattern instead. */
            rc_pending_forget_keys(&d->pend);
            st = add_glob_locked(c, d, drop_glob ? drop_glob : "*");
            break;
        }
        st = rc_pending_add_key(&d->pend, keys[i]);
    }
    if (st == RC_ENOMEM)
        add_drop_all_locked(c, d);
    recount_locked(d);
    pthread_mutex_unlock(&d->mu);
    return st;
}

int rc_cache_remember_deletes(rc_cache *c, const char *const *keys, size_t n,
                              const char *drop_glob)
{
    if (!c || (n && !keys))
        return rc_seterr(RC_EINVAL, "rc_cache_remember_deletes: NULL argument");
    if (!c->enabled)
        return RC_OK; /* no Redis: nothing can be stale there */
    int st = c->cluster ? rc_cluster_remember(c, keys, n, drop_glob)
                        : rc_deletes_remember(c, &c->dels, keys, n, drop_glob);
    return st ? rc_seterr(st, "out of memory remembering deletes; everything "
                              "under the prefix will be dropped on recovery")
              : RC_OK;
}

/* ---- deleting ---- */

/* Builds the batches of UNLINKs of keys (lengths lens, NULL = strlen). */
static int batches_build(rc_batch *b, const char *const *keys,
                         const size_t *lens, size_t n, size_t per)
{
    size_t ncmds = (n + per - 1) / per;
    if (rc_batch_alloc(b, ncmds, n + ncmds, true) != RC_OK)
        return RC_ENOMEM;
    for (size_t i = 0, k = 0, a = 0; i < ncmds; i++) {
        size_t m = n - k < per ? n - k : per;
        b->cmds[i].argc = (int)m + 1;
        b->cmds[i].argv = b->argv + a;
        b->cmds[i].argvlen = b->argvlen + a;
        b->argv[a] = "UNLINK";
        b->argvlen[a++] = 6;
        for (size_t j = 0; j < m; j++, k++, a++) {
            b->argv[a] = keys[k];
            b->argvlen[a] = lens ? lens[k] : strlen(keys[k]);
        }
    }
    return RC_OK;
}

/* UNLINKs keys[0..n) (lengths lens, NULL = strlen) in batches, pipelined;
 * *removed += how many existed. */
static int unlink_keys(rc_cache *c, rc_link *ctx, const char *const *keys,
                       const size_t *lens, size_t n, long long *removed)
{
    if (!n)
        return RC_OK;
    rc_batch b = {0};
    /* a cluster refuses keys of several slots in one command */
    int st = batches_build(&b, keys, lens, n, c->cluster ? 1 : RC_UNLINK_BATCH);
    if (st == RC_OK)
        st = rc_call_pipeline(c, ctx, b.cmds, b.n, b.replies);
    for (size_t i = 0; st == RC_OK && i < b.n; i++)
        if (b.replies[i]->type == REDIS_REPLY_INTEGER && removed)
            *removed += b.replies[i]->integer;
    rc_batch_free(&b);
    return st;
}

/* Whether r is a SCAN reply: {cursor, {keys...}}. */
static bool scan_reply(const redisReply *r)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
           r->element[0]->type == REDIS_REPLY_STRING &&
           r->element[1]->type == REDIS_REPLY_ARRAY;
}

/* UNLINKs the keys a SCAN reply found. */
static int unlink_found(rc_cache *c, rc_link *ctx, const redisReply *found,
                        long long *removed)
{
    const char **keys = malloc((found->elements + 1) * sizeof *keys);
    size_t *lens = malloc((found->elements + 1) * sizeof *lens);
    int st = keys && lens ? RC_OK : rc_seterr(RC_ENOMEM, "out of memory");
    for (size_t i = 0; st == RC_OK && i < found->elements; i++) {
        keys[i] = found->element[i]->str;
        lens[i] = found->element[i]->len;
    }
    if (st == RC_OK)
        st = unlink_keys(c, ctx, keys, lens, found->elements, removed);
    free(keys);
    free(lens);
    return st;
}

/* What rc_replay_scan_unlink does on each master of a cluster. */
typedef struct scan_args {
    const char *pattern;
    long long *removed;
} scan_args;

static int scan_fn(rc_cache *c, rc_link *ctx, void *ud)
{
    scan_args *a = ud;
    return rc_replay_scan_unlink(c, ctx, a->pattern, a->removed);
}

int rc_replay_scan_unlink(rc_cache *c, rc_link *ctx, const char *pattern,
                          long long *removed)
{
    if (rc_route_unpinned(ctx)) {
        scan_args a = {pattern, removed};
        return rc_route_each_master(c, ctx, scan_fn, &a);
    }
    char cursor[32] = "0";
    do {
        const char *argv[] = {"SCAN",  cursor,  "MATCH",
                              pattern, "COUNT", RC_SCAN_COUNT};
        rc_cmd cmd = {6, argv, NULL};
        redisReply *r;
        int st = rc_call_pipeline(c, ctx, &cmd, 1, &r);
        if (st)
            return st;
        if (!scan_reply(r)) {
            bool err = r->type == REDIS_REPLY_ERROR;
            st = rc_seterr(RC_EBACKEND,
                           "redis at %s: unexpected SCAN reply%s%.*s", c->where,
                           err ? ": " : "", err ? (int)r->len : 0,
                           err ? r->str : "");
            freeReplyObject(r);
            return st;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        st = unlink_found(c, ctx, r->element[1], removed);
        freeReplyObject(r);
        if (st)
            return st;
    } while (strcmp(cursor, "0") != 0);
    return RC_OK;
}

/* ---- replaying ---- */

/* Deletes what snap holds on ctx; *removed += keys removed. */
static int replay_snapshot(rc_cache *c, rc_link *ctx,
                           const rc_pending *snap, long long *removed)
{
    int st = RC_OK;
    if (snap->keys.n)
        st = unlink_keys(c, ctx, (const char *const *)snap->keys.items, NULL,
                         snap->keys.n, removed);
    for (size_t i = 0; st == RC_OK && i < snap->globs.n; i++)
        st = rc_replay_scan_unlink(c, ctx, snap->globs.items[i], removed);
    if (st == RC_OK) /* with Sentinel: kept until the replicas have them */
        st = rc_call_wait(c, ctx);
    if (st == RC_OK && rc_pending_count(snap))
        rc_log(c->log_level, RC_LOG_INFO, "replay_done",
               "redis at %s: replayed %zu remembered deletes and %zu patterns "
               "(%lld keys removed)",
               c->where, snap->keys.n, snap->globs.n, *removed);
    return st;
}

int rc_replay_pending(rc_cache *c, rc_deletes *d, rc_link *ctx)
{
    if (atomic_load(&d->count) == 0)
        return RC_OK;
    unsigned failures = atomic_load(&d->failures);
    pthread_mutex_lock(&d->replay_mu);
    if (atomic_load(&d->failures) != failures) {
        /* The replay we waited for failed: Redis is failing, do not pay a
         * second timeout for it. */
        pthread_mutex_unlock(&d->replay_mu);
        return rc_seterr(RC_EUNAVAILABLE,
                         "redis at %s: replay of remembered deletes failed",
                         c->where);
    }
    rc_pending snap;
    pthread_mutex_lock(&d->mu);
    rc_pending_move(&snap, &d->pend);
    d->inflight = rc_pending_count(&snap);
    pthread_mutex_unlock(&d->mu);
    long long removed = 0;
    int st = replay_snapshot(c, ctx, &snap, &removed);
    pthread_mutex_lock(&d->mu);
    d->inflight = 0;
    if (st == RC_OK)
        rc_pending_clear(&snap);
    else if (rc_pending_merge(&d->pend, &snap) != RC_OK) /* put them back */
        add_drop_all_locked(c, d);
    recount_locked(d);
    pthread_mutex_unlock(&d->mu);
    if (st) {
        atomic_fetch_add(&d->failures, 1);
        rc_log(c->log_level, RC_LOG_DEBUG, "replay_failed",
               "redis at %s: replay of %zu remembered deletes failed; kept", c->where,
               atomic_load(&d->count));
    }
    pthread_mutex_unlock(&d->replay_mu);
    return st;
}
