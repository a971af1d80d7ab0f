/*
 * outbox.c - the invalidation outbox as the cache service applies it
 * (outbox.h): the registered sources, applying their rows to Redis (one
 * UNLINK per row, so a row's leases and data keys go in one atomic command;
 * a pattern row by SCAN + UNLINK, leases first), and to the fallback while
 * Redis is away.
 */
#include "cache/service.h"

#include "core/log.h"
#include "core/str.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Rows read and applied at a time. */
#define RC_OUTBOX_BATCH 256

/* One registered source. */
typedef struct rc_watch {
    rc_outbox_source src;  /* as registered */
    long long fb_seen;     /* rows up to this number are out of the fallback */
    struct rc_watch *next; /* the next source */
} rc_watch;

int rc_cache_outbox_watch(rc_cache *c, const rc_outbox_source *src,
                          void **handle)
{
    *handle = NULL;
    rc_watch *w = calloc(1, sizeof *w);
    if (!w)
        return rc_seterr(RC_ENOMEM, "out of memory");
    w->src = *src;
    pthread_mutex_lock(&c->watch_mu);
    w->next = c->watches;
    c->watches = w;
    pthread_mutex_unlock(&c->watch_mu);
    *handle = w;
    return RC_OK;
}

void rc_cache_outbox_unwatch(rc_cache *c, void *handle)
{
    if (!c || !handle)
        return;
    pthread_mutex_lock(&c->watch_mu);
    for (rc_watch **p = &c->watches; *p; p = &(*p)->next)
        if (*p == handle) {
            *p = (*p)->next;
            break;
        }
    pthread_mutex_unlock(&c->watch_mu);
    free(handle);
}

void rc_cache_outbox_count_written(rc_cache *c)
{
    atomic_fetch_add(&c->ob_written, 1);
}

void rc_cache_outbox_count_applied(rc_cache *c, size_t n)
{
    atomic_fetch_add(&c->ob_applied, (uint_fast64_t)n);
}

/* Takes watch_mu for a caller holding a connection. With a cluster the
 * outbox is applied under watch_mu through every master's pool, so a
 * caller holding a master's connection waits for it at most
 * REDIS_SOCKET_TIMEOUT (else the two could wait for each other). */
static int lock_watches(rc_cache *c)
{
    if (!c->cluster) {
        pthread_mutex_lock(&c->watch_mu);
        return RC_OK;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    double ns = (double)until.tv_nsec + c->pool.link.timeout * 1e9;
    until.tv_sec += (time_t)(ns / 1e9);
    until.tv_nsec = (long)(ns - (double)(time_t)(ns / 1e9) * 1e9);
    if (pthread_mutex_timedlock(&c->watch_mu, &until) != 0)
        return rc_seterr(RC_EUNAVAILABLE, "redis at %s: the outbox is being applied",
                         c->where);
    return RC_OK;
}

int rc_outbox_each_namespace(rc_cache *c,
                             int (*fn)(rc_cache *c, rc_link *ctx,
                                       const rc_outbox_source *src, void *ud),
                             rc_link *ctx, void *ud)
{
    int st = lock_watches(c);
    if (st != RC_OK)
        return st;
    for (rc_watch *w = c->watches; w && st == RC_OK; w = w->next)
        st = fn(c, ctx, &w->src, ud);
    pthread_mutex_unlock(&c->watch_mu);
    return st;
}

/* The keys of row as an array (*n of them; free the array only). */
static const char **row_keys(const rc_outbox_row *row, size_t *n)
{
    size_t k = 0;
    for (size_t i = 0; i < row->keys_len; i++)
        k += row->keys[i] == '\0';
    const char **keys = malloc((k ? k : 1) * sizeof *keys);
    *n = 0;
    for (size_t i = 0; keys && i < row->keys_len; i += strlen(row->keys + i) + 1)
        keys[(*n)++] = row->keys + i;
    return keys;
}

/* A pattern row: SCAN + UNLINK of its leases, then of the whole pattern. */
static int apply_pattern(rc_cache *c, rc_link *ctx, const char *pattern)
{
    size_t n = strlen(pattern);
    long long removed = 0;
    char *head = n && pattern[n - 1] == '*' ? rc_strdup(pattern) : NULL;
    if (!head)
        return rc_replay_scan_unlink(c, ctx, pattern, &removed);
    head[n - 1] = '\0';
    char *leases = rc_str_concat(head, "~lease:*");
    int st = leases ? rc_replay_scan_unlink(c, ctx, leases, &removed)
                    : rc_seterr(RC_ENOMEM, "out of memory");
    if (st == RC_OK)
        st = rc_replay_scan_unlink(c, ctx, pattern, &removed);
    free(leases);
    free(head);
    return st;
}

/* Applies rows[0..n) on ctx: the key rows in one pipeline of UNLINKs, then
 * the pattern rows. RC_OK or the failure. */
static int apply_rows(rc_cache *c, rc_link *ctx, rc_outbox_row *rows,
                      size_t n)
{
    const char **keys[RC_OUTBOX_BATCH];
    size_t nkeys[RC_OUTBOX_BATCH], ncmd = 0, nargs = 0;
    int st = RC_OK;
    for (size_t i = 0; i < n; i++) {
        keys[i] = NULL;
        nkeys[i] = 0;
        if (rows[i].keys && !(keys[i] = row_keys(&rows[i], &nkeys[i])))
            st = rc_seterr(RC_ENOMEM, "out of memory");
        if (nkeys[i]) {
            ncmd++;
            nargs += 1 + nkeys[i];
        }
    }
    rc_batch b = {0};
    if (st == RC_OK && ncmd && (st = rc_batch_alloc(&b, ncmd, nargs, false)) == RC_OK) {
        size_t k = 0, a = 0;
        for (size_t i = 0; i < n; i++) {
            if (!nkeys[i])
                continue;
            b.cmds[k++] = (rc_cmd){(int)(1 + nkeys[i]), b.argv + a, NULL};
            b.argv[a++] = "UNLINK";
            for (size_t j = 0; j < nkeys[i]; j++)
                b.argv[a++] = keys[i][j];
        }
        st = rc_call_pipeline(c, ctx, b.cmds, b.n, b.replies);
        for (size_t i = 0; st == RC_OK && i < b.n; i++)
            st = rc_call_reply_error(c, b.replies[i], "UNLINK");
    }
    rc_batch_free(&b);
    for (size_t i = 0; i < n; i++) {
        if (st == RC_OK && !rows[i].keys)
            st = apply_pattern(c, ctx, rows[i].pattern);
        free(keys[i]);
    }
    /* With Sentinel a row counts as applied once the replicas have it. */
    return st == RC_OK ? rc_call_wait(c, ctx) : st;
}

/* Marks the rows applied in w's store (a failure leaves them to be applied
 * again, which is harmless). */
static void mark_applied(rc_cache *c, rc_watch *w, const rc_outbox_row *rows,
                        size_t n)
{
    long long seqs[RC_OUTBOX_BATCH];
    for (size_t i = 0; i < n; i++)
        seqs[i] = rows[i].seq;
    if (w->src.applied(w->src.ud, seqs, n) == RC_OK)
        atomic_fetch_add(&c->ob_applied, (uint_fast64_t)n);
    else
        rc_clearerr();
}

static _Thread_local bool tl_applying; /* inside rc_outbox_apply */

bool rc_outbox_applying(void) { return tl_applying; }

int rc_outbox_apply(rc_cache *c, rc_link *ctx)
{
    int st = RC_OK;
    bool outer = !tl_applying;
    tl_applying = true;
    pthread_mutex_lock(&c->watch_mu);
    for (rc_watch *w = c->watches; w && st == RC_OK; w = w->next) {
        long long after = 0;
        for (size_t n = RC_OUTBOX_BATCH; w->src.read && st == RC_OK && n == RC_OUTBOX_BATCH;) {
            rc_outbox_row *rows = NULL;
            if (w->src.read(w->src.ud, after, RC_OUTBOX_BATCH, 1, &rows, &n) != RC_OK) {
                st = rc_seterr(RC_EUNAVAILABLE, "outbox: cannot be read: %s",
                               rc_errmsg());
                break;
            }
            if (n && (st = apply_rows(c, ctx, rows, n)) == RC_OK) {
                mark_applied(c, w, rows, n);
                after = rows[n - 1].seq;
            }
            rc_outbox_rows_free(rows, n);
        }
    }
    pthread_mutex_unlock(&c->watch_mu);
    if (outer)
        tl_applying = false;
    if (st == RC_OK)
        atomic_store(&c->ob_pending, 0);
    return st;
}

void rc_outbox_flush(rc_cache *c)
{
    pthread_mutex_lock(&c->watch_mu);
    for (rc_watch *w = c->watches; w; w = w->next)
        if (w->src.applied && w->src.applied(w->src.ud, NULL, 0) != RC_OK)
            rc_clearerr();
    pthread_mutex_unlock(&c->watch_mu);
}

bool rc_outbox_pending(rc_cache *c)
{
    bool any = false;
    pthread_mutex_lock(&c->watch_mu);
    for (rc_watch *w = c->watches; w && !any; w = w->next) {
        rc_outbox_row *rows = NULL;
        size_t n = 0;
        if (w->src.read && w->src.read(w->src.ud, 0, 1, 1, &rows, &n) == RC_OK)
            any = n > 0;
        rc_outbox_rows_free(rows, n);
    }
    pthread_mutex_unlock(&c->watch_mu);
    rc_clearerr();
    return any;
}

/* Removes row's keys (or pattern) from the fallback. */
static void row_to_fallback(rc_cache *c, const rc_outbox_row *row)
{
    size_t n = 0;
    const char **keys = row->keys ? row_keys(row, &n) : NULL;
    if (keys) {
        rc_fallback_invalidate(c->fb, keys, n);
    } else { /* a pattern row, or no memory to list the keys */
        rc_fallback_invalidate(c->fb, NULL, 0);
        rc_fallback_del_matching(c->fb, row->keys ? "*" : row->pattern);
    }
    free(keys);
}

void rc_outbox_to_fallback(rc_cache *c)
{
    pthread_mutex_lock(&c->watch_mu);
    for (rc_watch *w = c->watches; w; w = w->next) {
        for (size_t n = RC_OUTBOX_BATCH; w->src.read && n == RC_OUTBOX_BATCH;) {
            rc_outbox_row *rows = NULL;
            if (w->src.read(w->src.ud, w->fb_seen, RC_OUTBOX_BATCH, 0, &rows, &n) != RC_OK) {
                rc_clearerr();
                break;
            }
            for (size_t i = 0; i < n; i++) {
                row_to_fallback(c, &rows[i]);
                if (!rows[i].applied)
                    atomic_fetch_add(&c->ob_pending, 1);
            }
            if (n)
                w->fb_seen = rows[n - 1].seq;
            rc_outbox_rows_free(rows, n);
        }
    }
    pthread_mutex_unlock(&c->watch_mu);
}
