/*
 * cache.c - the cache service: the path every Redis call takes (breaker,
 * pool, SIGPIPE guard, replay of remembered deletes, fallback switching,
 * error counting), the value operations, the queue and the statistics.
 *
 * SIGPIPE: hiredis writes with write(2), which raises SIGPIPE on a socket
 * whose peer is gone (MSG_NOSIGNAL is not reachable through hiredis 0.14).
 * Every Redis call therefore runs with SIGPIPE blocked in the calling thread
 * only (pthread_sigmask); a SIGPIPE raised meanwhile by our own write is
 * thread-directed, stays pending, and is consumed with sigtimedwait before the
 * old mask is restored. The process-wide disposition is never touched. If
 * SIGPIPE was already pending in the thread before the call, it is left alone.
 * (A process-directed SIGPIPE sent by kill(2) during that window could be
 * consumed too; nothing sends one in practice.)
 */
#include "cache/cache_internal.h"

#include "cache/breaker.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/str.h"
#include "cache/fallback.h"
#include "core/log.h"
#include "cache/pending.h"
#include "cache/pool.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* More remembered deletes than this are replaced by a pattern drop. */
#define RC_PENDING_MAX 10000
/* Keys per UNLINK command when replaying or clearing. */
#define RC_UNLINK_BATCH 500
/* COUNT hint of each SCAN step. */
#define RC_SCAN_COUNT "1000"

enum { AVAIL_UNKNOWN = 0, AVAIL_UP = 1, AVAIL_DOWN = 2 };

struct rc_cache {
    char *prefix;             /* CACHE_KEY_PREFIX, never NULL */
    char *escaped_prefix;     /* prefix with glob characters escaped */
    bool enabled;             /* REDIS_ENABLED */
    bool fallback_enabled;    /* CACHE_FALLBACK_ENABLED */
    int log_level;            /* LOG_LEVEL */
    char where[300];          /* "host:port" or socket path, for messages */
    rc_pool pool;
    rc_breaker breaker;
    rc_fallback *fb;
    /* remembered deletes */
    pthread_mutex_t pend_mu;  /* guards pend and inflight */
    rc_pending pend;          /* remembered deletes not yet taken */
    size_t inflight;          /* taken by the replay in progress */
    atomic_size_t pend_count; /* count(pend) + inflight, read without lock */
    pthread_mutex_t replay_mu; /* one replay at a time; others wait for it */
    atomic_uint replay_failures; /* failed replays so far */
    /* statistics */
    atomic_uint_fast64_t hits, misses, sets, deletes, errors, fallback_hits;
    atomic_int avail;         /* AVAIL_* */
};

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

/* ---- SIGPIPE guard (see the top of this file) ---- */

typedef struct sigpipe_guard {
    sigset_t old;         /* the thread's mask before */
    bool pending_before;  /* SIGPIPE was already pending */
} sigpipe_guard;

static void sigpipe_block(sigpipe_guard *g)
{
    sigset_t pipe_set, pend;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pend);
    sigpending(&pend);
    g->pending_before = sigismember(&pend, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &g->old);
}

/* SIGPIPEs raised by our writes and consumed by the guard (statistics). */
static atomic_uint_fast64_t sigpipes_consumed;

static void sigpipe_unblock(sigpipe_guard *g)
{
    sigset_t pipe_set, pend;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pend);
    if (!g->pending_before && sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE) == 1) {
        const struct timespec zero = {0, 0};
        int sig;
        while ((sig = sigtimedwait(&pipe_set, NULL, &zero)) < 0 && errno == EINTR)
            ;
        if (sig == SIGPIPE)
            atomic_fetch_add(&sigpipes_consumed, 1);
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

uint64_t rc_cache_debug_sigpipes(void) { return atomic_load(&sigpipes_consumed); }

/* ---- remembered deletes ---- */

/* Refreshes the lock-free count; pend_mu held. */
static void recount_locked(rc_cache *c)
{
    atomic_store(&c->pend_count, rc_pending_count(&c->pend) + c->inflight);
}

/* Adds "escaped prefix + glob" to the patterns to drop; pend_mu held. */
static int add_glob_locked(rc_cache *c, const char *glob)
{
    size_t n = strlen(c->escaped_prefix) + strlen(glob) + 1;
    char *pat = malloc(n);
    if (!pat)
        return RC_ENOMEM;
    snprintf(pat, n, "%s%s", c->escaped_prefix, glob);
    int st = rc_pending_add_glob(&c->pend, pat);
    free(pat);
    return st;
}

/* Last resort when something could not be remembered: drop everything under
 * the prefix on recovery (retried until there is memory for it). */
static void add_drop_all_locked(rc_cache *c)
{
    while (add_glob_locked(c, "*") != RC_OK)
        ;
}

int rc_cache_remember_deletes(rc_cache *c, const char *const *keys, size_t n,
                              const char *drop_glob)
{
    if (!c || (n && !keys))
        return rc_seterr(RC_EINVAL, "rc_cache_remember_deletes: NULL argument");
    if (!c->enabled)
        return RC_OK; /* no Redis: nothing can be stale there */
    int st = RC_OK;
    pthread_mutex_lock(&c->pend_mu);
    if (n == 0 && drop_glob) /* a pattern drop alone (a failed clear) */
        st = add_glob_locked(c, drop_glob);
    for (size_t i = 0; st == RC_OK && i < n; i++) {
        if (c->pend.keys.n >= RC_PENDING_MAX) {
            /* Too many distinct keys: forget them, drop by pattern instead. */
            rc_pending_forget_keys(&c->pend);
            st = add_glob_locked(c, drop_glob ? drop_glob : "*");
            break;
        }
        st = rc_pending_add_key(&c->pend, keys[i]);
    }
    if (st == RC_ENOMEM)
        add_drop_all_locked(c);
    recount_locked(c);
    pthread_mutex_unlock(&c->pend_mu);
    return st ? rc_seterr(st, "out of memory remembering deletes; everything under "
                              "the prefix will be dropped on recovery")
              : RC_OK;
}

/* ---- raw helpers on one context (I/O errors -> RC_EUNAVAILABLE) ---- */

static int io_error(rc_cache *c, redisContext *ctx)
{
    int timed_out = ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (timed_out)
        return rc_seterr(RC_EUNAVAILABLE, "redis at %s: timed out", c->where);
    return rc_seterr(RC_EUNAVAILABLE, "redis at %s: %s", c->where,
                     ctx->errstr[0] ? ctx->errstr : "connection lost");
}

/* Sends n commands, then reads n replies into replies[] (all NULL on error). */
static int pipeline(rc_cache *c, redisContext *ctx, const rc_cmd *cmds, size_t n,
                    redisReply **replies)
{
    for (size_t i = 0; i < n; i++)
        replies[i] = NULL;
    for (size_t i = 0; i < n; i++)
        if (redisAppendCommandArgv(ctx, cmds[i].argc, (const char **)cmds[i].argv,
                                   cmds[i].argvlen) != REDIS_OK)
            return ctx->err ? io_error(c, ctx) : rc_seterr(RC_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        void *r = NULL;
        if (redisGetReply(ctx, &r) != REDIS_OK) {
            for (size_t j = 0; j < i; j++) {
                freeReplyObject(replies[j]);
                replies[j] = NULL;
            }
            return io_error(c, ctx);
        }
        replies[i] = r;
    }
    /* A server that wants AUTH (or is still loading its data) answers every
     * command with an error: that is Redis being unavailable, not a reply. */
    for (size_t i = 0; i < n; i++) {
        const redisReply *r = replies[i];
        bool noauth = r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOAUTH", 6) == 0;
        bool loading = r->type == REDIS_REPLY_ERROR && strncmp(r->str, "LOADING", 7) == 0;
        if (!noauth && !loading)
            continue;
        for (size_t j = 0; j < n; j++) {
            freeReplyObject(replies[j]);
            replies[j] = NULL;
        }
        return noauth ? rc_seterr(RC_EAUTH, "redis at %s: authentication required (NOAUTH): "
                                            "set REDIS_PASSWORD or a password in REDIS_URL",
                                  c->where)
                      : rc_seterr(RC_EUNAVAILABLE, "redis at %s: still loading its data",
                                  c->where);
    }
    return RC_OK;
}

/* UNLINKs keys[0..n) (lengths lens, NULL = strlen) in batches, pipelined;
 * *removed += how many existed. */
static int unlink_keys(rc_cache *c, redisContext *ctx, const char *const *keys,
                       const size_t *lens, size_t n, long long *removed)
{
    if (!n)
        return RC_OK;
    size_t ncmds = (n + RC_UNLINK_BATCH - 1) / RC_UNLINK_BATCH;
    rc_cmd *cmds = calloc(ncmds, sizeof *cmds);
    const char **argv = malloc((n + ncmds) * sizeof *argv);
    size_t *argvlen = malloc((n + ncmds) * sizeof *argvlen);
    redisReply **replies = calloc(ncmds, sizeof *replies);
    int st = cmds && argv && argvlen && replies ? RC_OK : rc_seterr(RC_ENOMEM, "out of memory");
    for (size_t b = 0, k = 0, a = 0; st == RC_OK && b < ncmds; b++) {
        size_t m = n - k < RC_UNLINK_BATCH ? n - k : RC_UNLINK_BATCH;
        cmds[b].argc = (int)m + 1;
        cmds[b].argv = argv + a;
        cmds[b].argvlen = argvlen + a;
        argv[a] = "UNLINK";
        argvlen[a++] = 6;
        for (size_t i = 0; i < m; i++, k++, a++) {
            argv[a] = keys[k];
            argvlen[a] = lens ? lens[k] : strlen(keys[k]);
        }
    }
    if (st == RC_OK)
        st = pipeline(c, ctx, cmds, ncmds, replies);
    for (size_t b = 0; st == RC_OK && b < ncmds; b++)
        if (replies[b]->type == REDIS_REPLY_INTEGER && removed)
            *removed += replies[b]->integer;
    for (size_t b = 0; replies && b < ncmds; b++)
        freeReplyObject(replies[b]);
    free(cmds);
    free(argv);
    free(argvlen);
    free(replies);
    return st;
}

/* SCAN MATCH pattern + UNLINK of every batch found; *removed += count. */
static int scan_unlink(rc_cache *c, redisContext *ctx, const char *pattern,
                       long long *removed)
{
    char cursor[32] = "0";
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", RC_SCAN_COUNT};
        rc_cmd cmd = {6, argv, NULL};
        redisReply *r;
        int st = pipeline(c, ctx, &cmd, 1, &r);
        if (st)
            return st;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            st = rc_seterr(RC_EBACKEND, "redis at %s: unexpected SCAN reply%s%.*s", c->where,
                           r->type == REDIS_REPLY_ERROR ? ": " : "",
                           r->type == REDIS_REPLY_ERROR ? (int)r->len : 0,
                           r->type == REDIS_REPLY_ERROR ? r->str : "");
            freeReplyObject(r);
            return st;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        redisReply *found = r->element[1];
        const char **keys = malloc((found->elements + 1) * sizeof *keys);
        size_t *lens = malloc((found->elements + 1) * sizeof *lens);
        if (!keys || !lens)
            st = rc_seterr(RC_ENOMEM, "out of memory");
        for (size_t i = 0; st == RC_OK && i < found->elements; i++) {
            keys[i] = found->element[i]->str;
            lens[i] = found->element[i]->len;
        }
        if (st == RC_OK)
            st = unlink_keys(c, ctx, keys, lens, found->elements, removed);
        free(keys);
        free(lens);
        freeReplyObject(r);
        if (st)
            return st;
    } while (strcmp(cursor, "0") != 0);
    return RC_OK;
}

/* Replays remembered deletes on ctx before anything else uses Redis. While a
 * replay runs, every other caller that sees deletes pending waits for it. */
static int replay_pending(rc_cache *c, redisContext *ctx)
{
    if (atomic_load(&c->pend_count) == 0)
        return RC_OK;
    unsigned failures = atomic_load(&c->replay_failures);
    pthread_mutex_lock(&c->replay_mu);
    if (atomic_load(&c->replay_failures) != failures) {
        /* The replay we waited for failed: Redis is failing, do not pay a
         * second timeout for it. */
        pthread_mutex_unlock(&c->replay_mu);
        return rc_seterr(RC_EUNAVAILABLE, "redis at %s: replay of remembered deletes failed",
                         c->where);
    }
    rc_pending snap;
    pthread_mutex_lock(&c->pend_mu);
    rc_pending_move(&snap, &c->pend);
    c->inflight = rc_pending_count(&snap);
    pthread_mutex_unlock(&c->pend_mu);
    int st = RC_OK;
    long long removed = 0;
    if (snap.keys.n)
        st = unlink_keys(c, ctx, (const char *const *)snap.keys.items, NULL, snap.keys.n,
                         &removed);
    for (size_t i = 0; st == RC_OK && i < snap.globs.n; i++)
        st = scan_unlink(c, ctx, snap.globs.items[i], &removed);
    if (st == RC_OK && rc_pending_count(&snap))
        rc_log(c->log_level, RC_LOG_INFO,
               "redis at %s: replayed %zu remembered deletes and %zu patterns "
               "(%lld keys removed)", c->where, snap.keys.n, snap.globs.n, removed);
    pthread_mutex_lock(&c->pend_mu);
    c->inflight = 0;
    if (st == RC_OK)
        rc_pending_clear(&snap);
    else if (rc_pending_merge(&c->pend, &snap) != RC_OK) /* put them back */
        add_drop_all_locked(c);
    recount_locked(c);
    pthread_mutex_unlock(&c->pend_mu);
    if (st)
        atomic_fetch_add(&c->replay_failures, 1);
    pthread_mutex_unlock(&c->replay_mu);
    return st;
}

static int fallback_get_counted(rc_cache *c, const char *key, char **val, size_t *len);

/* ---- the path of every Redis call ---- */

typedef int (*redis_fn)(rc_cache *c, redisContext *ctx, void *ud);

static void note_up(rc_cache *c)
{
    int was = atomic_exchange(&c->avail, AVAIL_UP);
    if (was == AVAIL_UP)
        return;
    size_t dropped = rc_fallback_deactivate(c->fb);
    /* The first contact is routine (debug); a recovery is news (info). */
    rc_log(c->log_level, was == AVAIL_DOWN ? RC_LOG_INFO : RC_LOG_DEBUG,
           "redis at %s: %s (%zu fallback entries dropped)", c->where,
           was == AVAIL_DOWN ? "back in use" : "in use", dropped);
}

static void note_down(rc_cache *c, const char *why)
{
    atomic_fetch_add(&c->errors, 1);
    if (c->fallback_enabled)
        rc_fallback_activate(c->fb);
    if (atomic_exchange(&c->avail, AVAIL_DOWN) != AVAIL_DOWN)
        rc_log(c->log_level, RC_LOG_WARNING, "%s; degrading%s", why,
               c->fallback_enabled ? " to the in-memory fallback" : "");
}

/*
 * Runs fn on a pooled context, through the breaker and with SIGPIPE guarded,
 * after replaying remembered deletes. fn returns RC_EUNAVAILABLE (I/O error,
 * timeout, server loading) or RC_EAUTH (NOAUTH) only when Redis cannot be
 * used; the context is then discarded and the failure fed to the breaker.
 * Returns RC_OK, fn's status, RC_EUNAVAILABLE or RC_EAUTH (with rc_errmsg).
 */
static int with_redis(rc_cache *c, redis_fn fn, void *ud)
{
    if (!c->enabled)
        return rc_seterr(RC_EUNAVAILABLE, "redis is disabled (REDIS_ENABLED=false)");
    rc_breaker_ticket t = rc_breaker_acquire(&c->breaker);
    if (t == RC_BREAKER_DENY) {
        atomic_fetch_add(&c->errors, 1);
        return rc_seterr(RC_EUNAVAILABLE, "redis at %s: circuit breaker open", c->where);
    }
    sigpipe_guard g;
    sigpipe_block(&g);
    rc_conn *conn = NULL;
    int st = rc_pool_borrow(&c->pool, &conn);
    bool reached = false;
    if (st == RC_OK) {
        rc_conn_enter(conn);
        st = replay_pending(c, conn->ctx);
        if (st == RC_OK)
            st = fn(c, conn->ctx, ud);
        rc_conn_leave(conn);
        reached = st != RC_EUNAVAILABLE && st != RC_EAUTH;
        rc_pool_return(&c->pool, conn, !reached);
    }
    sigpipe_unblock(&g);
    bool ok = reached;
    if (rc_breaker_report(&c->breaker, t, ok))
        rc_log(c->log_level, RC_LOG_WARNING,
               "redis at %s: circuit breaker open (%s)", c->where, rc_errmsg());
    if (ok) {
        note_up(c);
    } else {
        char why[600];
        snprintf(why, sizeof why, "%s", rc_errmsg());
        note_down(c, why);
        rc_seterr(st, "%s", why);
    }
    return st;
}

typedef struct exec_args {
    const rc_cmd *cmds;
    size_t n;
    redisReply **replies;
} exec_args;

static int exec_fn(rc_cache *c, redisContext *ctx, void *ud)
{
    exec_args *a = ud;
    return pipeline(c, ctx, a->cmds, a->n, a->replies);
}

int rc_cache_exec(rc_cache *c, const rc_cmd *cmds, size_t n, redisReply **replies)
{
    for (size_t i = 0; replies && i < n; i++)
        replies[i] = NULL;
    if (!c || (n && (!cmds || !replies)))
        return rc_seterr(RC_EINVAL, "rc_cache_exec: NULL argument");
    for (size_t i = 0; i < n; i++)
        if (cmds[i].argc < 1 || !cmds[i].argv)
            return rc_seterr(RC_EINVAL, "rc_cache_exec: command %zu is empty", i);
    if (!n)
        return RC_OK;
    exec_args a = {cmds, n, replies};
    int st = with_redis(c, exec_fn, &a);
    return st == RC_EAUTH ? RC_EUNAVAILABLE : st;
}

/* One command; *reply owned by the caller. */
static int exec1(rc_cache *c, int argc, const char *const *argv, const size_t *lens,
                 redisReply **reply)
{
    rc_cmd cmd = {argc, argv, lens};
    return rc_cache_exec(c, &cmd, 1, reply);
}

/* RC_OK when r is not an error reply; else RC_EBACKEND with its text. */
static int reply_error(rc_cache *c, const redisReply *r, const char *what)
{
    if (r->type != REDIS_REPLY_ERROR)
        return RC_OK;
    atomic_fetch_add(&c->errors, 1);
    return rc_seterr(RC_EBACKEND, "redis at %s: %s: %.*s", c->where, what,
                     (int)(r->len > 200 ? 200 : r->len), r->str);
}

bool rc_cache_redis_usable(rc_cache *c)
{
    return c && c->enabled && rc_breaker_usable(&c->breaker);
}

rc_circuit_state rc_cache_circuit(rc_cache *c)
{
    return c ? rc_breaker_state(&c->breaker) : RC_CIRCUIT_CLOSED;
}

uint64_t rc_cache_debug_connects(rc_cache *c)
{
    return c ? atomic_load(&c->pool.connects) : 0;
}

int rc_cache_fallback_get(rc_cache *c, const char *key, char **val, size_t *len)
{
    if (!c || !key || !val)
        return rc_seterr(RC_EINVAL, "rc_cache_fallback_get: NULL argument");
    *val = NULL;
    return fallback_get_counted(c, key, val, len);
}

int rc_cache_fallback_set(rc_cache *c, const char *key, const char *val, size_t len,
                          int ttl)
{
    if (!c || !key || (!val && len) || ttl <= 0)
        return rc_seterr(RC_EINVAL, "rc_cache_fallback_set: bad argument");
    if (!c->fallback_enabled)
        return RC_EUNAVAILABLE;
    return rc_fallback_set(c->fb, key, val, len, ttl);
}

void rc_cache_fallback_del(rc_cache *c, const char *key)
{
    if (c && key)
        rc_fallback_del(c->fb, key);
}

/* ---- lifecycle ---- */

int rc_cache_new(const rc_settings *s, rc_cache **out)
{
    if (!out)
        return rc_seterr(RC_EINVAL, "rc_cache_new: NULL out");
    *out = NULL;
    if (!s)
        return rc_seterr(RC_ECONFIG, "rc_cache_new: NULL settings");
    if (s->redis_max_connections < 1 || s->redis_socket_timeout <= 0 ||
        s->circuit_breaker_threshold < 1 || s->circuit_breaker_timeout <= 0 ||
        s->cache_fallback_max_entries < 1 || (!s->redis_host && !s->redis_unix_path))
        return rc_seterr(RC_ECONFIG, "rc_cache_new: settings out of range "
                                     "(use rc_settings_load or rc_settings_defaults)");
    int level = rc_log_level_parse(s->log_level ? s->log_level : "info");
    if (level < 0)
        return rc_seterr(RC_ECONFIG, "LOG_LEVEL: bad value '%s'", s->log_level);
    rc_cache *c = calloc(1, sizeof *c);
    if (!c)
        return rc_seterr(RC_ENOMEM, "out of memory");
    c->enabled = s->redis_enabled;
    c->fallback_enabled = s->cache_fallback_enabled;
    c->log_level = level;
    c->prefix = rc_strdup(s->cache_key_prefix ? s->cache_key_prefix : "");
    int st = c->prefix ? rc_cache_glob_escape(c->prefix, &c->escaped_prefix) : RC_ENOMEM;
    bool pool_ok = false, breaker_ok = false;
    if (st == RC_OK)
        pool_ok = (st = rc_pool_init(&c->pool, s)) == RC_OK;
    if (st == RC_OK)
        breaker_ok = (st = rc_breaker_init(&c->breaker, s->circuit_breaker_threshold,
                                           s->circuit_breaker_timeout)) == RC_OK;
    if (st == RC_OK && !(c->fb = rc_fallback_new((size_t)s->cache_fallback_max_entries,
                                                 rc_clock_monotonic, NULL)))
        st = RC_ENOMEM;
    if (st == RC_OK && pthread_mutex_init(&c->pend_mu, NULL) != 0)
        st = RC_ENOMEM;
    if (st == RC_OK && pthread_mutex_init(&c->replay_mu, NULL) != 0) {
        pthread_mutex_destroy(&c->pend_mu);
        st = RC_ENOMEM;
    }
    if (st) {
        rc_fallback_free(c->fb);
        if (breaker_ok)
            rc_breaker_destroy(&c->breaker);
        if (pool_ok)
            rc_pool_destroy(&c->pool);
        free(c->prefix);
        free(c->escaped_prefix);
        free(c);
        return rc_seterr(RC_ENOMEM, "out of memory");
    }
    rc_pool_describe(&c->pool, c->where, sizeof c->where);
    /* Without Redis the fallback is the cache. */
    if (!c->enabled && c->fallback_enabled)
        rc_fallback_activate(c->fb);
    *out = c;
    return RC_OK;
}

void rc_cache_free(rc_cache *c)
{
    if (!c)
        return;
    rc_pool_destroy(&c->pool);
    rc_breaker_destroy(&c->breaker);
    rc_fallback_free(c->fb);
    rc_pending_clear(&c->pend);
    pthread_mutex_destroy(&c->pend_mu);
    pthread_mutex_destroy(&c->replay_mu);
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

/* ---- keys ---- */

const char *rc_cache_prefix(const rc_cache *c) { return c ? c->prefix : ""; }

int rc_cache_key(const rc_cache *c, const char *key, char **out)
{
    if (!c || !key || !out)
        return rc_seterr(RC_EINVAL, "rc_cache_key: NULL argument");
    size_t a = strlen(c->prefix), b = strlen(key);
    char *k = malloc(a + b + 1);
    if (!k)
        return rc_seterr(RC_ENOMEM, "out of memory");
    memcpy(k, c->prefix, a);
    memcpy(k + a, key, b + 1);
    *out = k;
    return RC_OK;
}

int rc_cache_glob_escape(const char *s, char **out)
{
    return rc_glob_escape(s, out);
}

/* ---- values ---- */

static int copy_value(const char *s, size_t n, char **val, size_t *len)
{
    char *v = malloc(n + 1);
    if (!v)
        return rc_seterr(RC_ENOMEM, "out of memory");
    if (n)
        memcpy(v, s, n);
    v[n] = '\0';
    *val = v;
    if (len)
        *len = n;
    return RC_OK;
}

/* The fallback's answer to a get; counts the hit or miss. */
static int fallback_get_counted(rc_cache *c, const char *key, char **val, size_t *len)
{
    int st = c->fallback_enabled ? rc_fallback_get(c->fb, key, val, len) : RC_ENOTFOUND;
    if (st == RC_OK) {
        atomic_fetch_add(&c->hits, 1);
        atomic_fetch_add(&c->fallback_hits, 1);
    } else if (st == RC_ENOTFOUND) {
        atomic_fetch_add(&c->misses, 1);
        rc_seterr(RC_ENOTFOUND, "%s", "not in the cache");
    }
    return st;
}

int rc_cache_get(rc_cache *c, const char *key, char **val, size_t *len)
{
    if (!c || !key || !val)
        return rc_seterr(RC_EINVAL, "rc_cache_get: NULL argument");
    *val = NULL;
    const char *argv[] = {"GET", key};
    redisReply *r;
    int st = exec1(c, 2, argv, NULL, &r);
    if (st == RC_EUNAVAILABLE)
        return fallback_get_counted(c, key, val, len);
    if (st)
        return st;
    st = reply_error(c, r, "GET");
    if (st == RC_OK && r->type == REDIS_REPLY_STRING) {
        st = copy_value(r->str, r->len, val, len);
        if (st == RC_OK)
            atomic_fetch_add(&c->hits, 1);
    } else if (st == RC_OK) {
        atomic_fetch_add(&c->misses, 1);
        st = RC_ENOTFOUND;
    }
    freeReplyObject(r);
    return st;
}

/* A write that could not reach Redis: Redis may keep an older value for key,
 * so its delete is remembered; the value goes to the fallback if enabled. */
static int set_unavailable(rc_cache *c, const char *key, const char *val, size_t len,
                           int ttl)
{
    const char *k[1] = {key};
    rc_cache_remember_deletes(c, k, 1, NULL);
    if (!c->fallback_enabled)
        return RC_EUNAVAILABLE;
    int st = rc_fallback_set(c->fb, key, val, len, ttl);
    if (st == RC_OK)
        atomic_fetch_add(&c->sets, 1);
    return st == RC_ENOMEM ? RC_ENOMEM : st ? RC_EUNAVAILABLE : RC_OK;
}

int rc_cache_set(rc_cache *c, const char *key, const char *val, size_t len, int ttl)
{
    if (!c || !key || (!val && len))
        return rc_seterr(RC_EINVAL, "rc_cache_set: NULL argument");
    if (ttl <= 0)
        return rc_seterr(RC_EINVAL, "rc_cache_set: the TTL must be positive, got %d", ttl);
    char ttls[16];
    snprintf(ttls, sizeof ttls, "%d", ttl);
    const char *argv[] = {"SET", key, val ? val : "", "EX", ttls};
    const size_t lens[] = {3, strlen(key), len, 2, strlen(ttls)};
    redisReply *r;
    int st = exec1(c, 5, argv, lens, &r);
    if (st == RC_EUNAVAILABLE)
        return set_unavailable(c, key, val, len, ttl);
    if (st)
        return st;
    st = reply_error(c, r, "SET");
    if (st == RC_OK)
        atomic_fetch_add(&c->sets, 1);
    freeReplyObject(r);
    return st;
}

int rc_cache_del(rc_cache *c, const char *key)
{
    const char *keys[1] = {key};
    return rc_cache_del_many(c, keys, 1, NULL);
}

int rc_cache_del_many(rc_cache *c, const char *const *keys, size_t n, long long *removed)
{
    if (removed)
        *removed = 0;
    if (!c || (n && !keys))
        return rc_seterr(RC_EINVAL, "rc_cache_del_many: NULL argument");
    for (size_t i = 0; i < n; i++)
        if (!keys[i])
            return rc_seterr(RC_EINVAL, "rc_cache_del_many: NULL key");
    for (size_t i = 0; i < n; i++)
        rc_fallback_del(c->fb, keys[i]);
    if (!n || !c->enabled)
        return RC_OK;
    const char **argv = malloc((n + 1) * sizeof *argv);
    if (!argv)
        return rc_seterr(RC_ENOMEM, "out of memory");
    argv[0] = "UNLINK";
    memcpy(argv + 1, keys, n * sizeof *argv);
    redisReply *r;
    int st = exec1(c, (int)n + 1, argv, NULL, &r);
    free(argv);
    if (st == RC_EUNAVAILABLE) {
        rc_cache_remember_deletes(c, keys, n, NULL);
        return rc_seterr(RC_EUNAVAILABLE, "redis unavailable: %zu delete(s) remembered "
                                          "for replay", n);
    }
    if (st)
        return st;
    st = reply_error(c, r, "UNLINK");
    if (st == RC_OK) {
        atomic_fetch_add(&c->deletes, n);
        if (removed && r->type == REDIS_REPLY_INTEGER)
            *removed = r->integer;
    }
    freeReplyObject(r);
    return st;
}

/* Runs one command whose reply is an integer into *out. */
static int exec_integer(rc_cache *c, int argc, const char *const *argv, long long *out)
{
    redisReply *r;
    int st = exec1(c, argc, argv, NULL, &r);
    if (st)
        return st;
    st = reply_error(c, r, argv[0]);
    if (st == RC_OK && r->type != REDIS_REPLY_INTEGER)
        st = rc_seterr(RC_EBACKEND, "redis at %s: %s: not an integer reply", c->where, argv[0]);
    if (st == RC_OK)
        *out = r->integer;
    freeReplyObject(r);
    return st;
}

int rc_cache_exists(rc_cache *c, const char *key, bool *exists)
{
    if (!c || !key || !exists)
        return rc_seterr(RC_EINVAL, "rc_cache_exists: NULL argument");
    long long n = 0, ttl;
    const char *argv[] = {"EXISTS", key};
    int st = exec_integer(c, 2, argv, &n);
    if (st == RC_EUNAVAILABLE && c->fallback_enabled &&
        rc_fallback_ttl(c->fb, key, &ttl) == RC_OK) {
        *exists = ttl != -2;
        return RC_OK;
    }
    if (st == RC_OK)
        *exists = n > 0;
    return st;
}

int rc_cache_ttl(rc_cache *c, const char *key, long long *ttl)
{
    if (!c || !key || !ttl)
        return rc_seterr(RC_EINVAL, "rc_cache_ttl: NULL argument");
    const char *argv[] = {"TTL", key};
    int st = exec_integer(c, 2, argv, ttl);
    if (st == RC_EUNAVAILABLE && c->fallback_enabled &&
        rc_fallback_ttl(c->fb, key, ttl) == RC_OK)
        return RC_OK;
    return st;
}

typedef struct clear_args {
    const char *pattern;
    long long removed;
} clear_args;

static int clear_fn(rc_cache *c, redisContext *ctx, void *ud)
{
    clear_args *a = ud;
    return scan_unlink(c, ctx, a->pattern, &a->removed);
}

int rc_cache_clear(rc_cache *c, const char *glob, long long *removed)
{
    if (removed)
        *removed = 0;
    if (!c || !glob)
        return rc_seterr(RC_EINVAL, "rc_cache_clear: NULL argument");
    size_t n = strlen(c->escaped_prefix) + strlen(glob) + 1;
    char *pattern = malloc(n);
    if (!pattern)
        return rc_seterr(RC_ENOMEM, "out of memory");
    snprintf(pattern, n, "%s%s", c->escaped_prefix, glob);
    long long fb_removed = (long long)rc_fallback_del_matching(c->fb, pattern);
    clear_args a = {pattern, 0};
    int st = c->enabled ? with_redis(c, clear_fn, &a) : RC_OK;
    free(pattern);
    if (st == RC_EUNAVAILABLE || st == RC_EAUTH) {
        rc_cache_remember_deletes(c, NULL, 0, glob);
        return rc_seterr(RC_EUNAVAILABLE, "redis unavailable: the clear of '%s' is "
                                          "remembered for replay", glob);
    }
    if (st == RC_OK) {
        if (removed)
            *removed = c->enabled ? a.removed : fb_removed;
        atomic_fetch_add(&c->deletes, (uint64_t)a.removed);
    }
    return st;
}

int rc_cache_get_or_load(rc_cache *c, const char *key, int ttl, rc_loader_fn loader,
                         void *ud, char **val, size_t *len)
{
    if (!c || !key || !loader || !val)
        return rc_seterr(RC_EINVAL, "rc_cache_get_or_load: NULL argument");
    if (ttl <= 0)
        return rc_seterr(RC_EINVAL, "rc_cache_get_or_load: the TTL must be positive, got %d",
                         ttl);
    size_t n = 0;
    int st = rc_cache_get(c, key, val, &n);
    if (st == RC_ENOTFOUND || st == RC_EBACKEND) {
        st = loader(ud, val, &n);
        if (st == RC_OK)
            rc_cache_set(c, key, *val, n, ttl); /* a failed store is not fatal */
        else
            *val = NULL;
    }
    if (st == RC_OK && len)
        *len = n;
    return st;
}

int rc_cache_mget(rc_cache *c, const char *const *keys, size_t n, char **vals, size_t *lens)
{
    if (!c || (n && (!keys || !vals || !lens)))
        return rc_seterr(RC_EINVAL, "rc_cache_mget: NULL argument");
    for (size_t i = 0; i < n; i++) {
        vals[i] = NULL;
        lens[i] = 0;
    }
    if (!n)
        return RC_OK;
    rc_cmd *cmds = calloc(n, sizeof *cmds);
    const char **argv = malloc(2 * n * sizeof *argv);
    redisReply **replies = calloc(n, sizeof *replies);
    int st = cmds && argv && replies ? RC_OK : rc_seterr(RC_ENOMEM, "out of memory");
    for (size_t i = 0; st == RC_OK && i < n; i++) {
        argv[2 * i] = "GET";
        argv[2 * i + 1] = keys[i];
        cmds[i] = (rc_cmd){2, argv + 2 * i, NULL};
    }
    if (st == RC_OK)
        st = rc_cache_exec(c, cmds, n, replies);
    if (st == RC_EUNAVAILABLE) {
        st = RC_OK;
        for (size_t i = 0; st == RC_OK && i < n; i++) {
            st = fallback_get_counted(c, keys[i], &vals[i], &lens[i]);
            st = st == RC_ENOTFOUND ? RC_OK : st;
        }
    } else {
        for (size_t i = 0; st == RC_OK && i < n; i++) {
            if (replies[i]->type == REDIS_REPLY_STRING) {
                st = copy_value(replies[i]->str, replies[i]->len, &vals[i], &lens[i]);
                atomic_fetch_add(&c->hits, 1);
            } else {
                reply_error(c, replies[i], "GET");
                atomic_fetch_add(&c->misses, 1);
            }
        }
    }
    for (size_t i = 0; replies && i < n; i++)
        freeReplyObject(replies[i]);
    if (st)
        for (size_t i = 0; i < n; i++) {
            free(vals[i]);
            vals[i] = NULL;
        }
    free(cmds);
    free(argv);
    free(replies);
    return st;
}

int rc_cache_mset(rc_cache *c, const char *const *keys, const char *const *vals,
                  const size_t *lens, size_t n, int ttl)
{
    if (!c || (n && (!keys || !vals || !lens)))
        return rc_seterr(RC_EINVAL, "rc_cache_mset: NULL argument");
    if (ttl <= 0)
        return rc_seterr(RC_EINVAL, "rc_cache_mset: the TTL must be positive, got %d", ttl);
    if (!n)
        return RC_OK;
    char ttls[16];
    snprintf(ttls, sizeof ttls, "%d", ttl);
    rc_cmd *cmds = calloc(n, sizeof *cmds);
    const char **argv = malloc(5 * n * sizeof *argv);
    size_t *argvlen = malloc(5 * n * sizeof *argvlen);
    redisReply **replies = calloc(n, sizeof *replies);
    int st = cmds && argv && argvlen && replies ? RC_OK : rc_seterr(RC_ENOMEM, "out of memory");
    for (size_t i = 0; st == RC_OK && i < n; i++) {
        const char **a = argv + 5 * i;
        size_t *l = argvlen + 5 * i;
        a[0] = "SET", l[0] = 3;
        a[1] = keys[i], l[1] = strlen(keys[i]);
        a[2] = vals[i] ? vals[i] : "", l[2] = lens[i];
        a[3] = "EX", l[3] = 2;
        a[4] = ttls, l[4] = strlen(ttls);
        cmds[i] = (rc_cmd){5, a, l};
    }
    if (st == RC_OK)
        st = rc_cache_exec(c, cmds, n, replies);
    if (st == RC_EUNAVAILABLE) {
        int worst = RC_OK;
        for (size_t i = 0; i < n; i++) {
            int s1 = set_unavailable(c, keys[i], vals[i], lens[i], ttl);
            worst = worst ? worst : s1;
        }
        st = worst;
    } else {
        for (size_t i = 0; st == RC_OK && i < n; i++)
            if ((st = reply_error(c, replies[i], "SET")) == RC_OK)
                atomic_fetch_add(&c->sets, 1);
    }
    for (size_t i = 0; replies && i < n; i++)
        freeReplyObject(replies[i]);
    free(cmds);
    free(argv);
    free(argvlen);
    free(replies);
    return st;
}

static int ping_fn(rc_cache *c, redisContext *ctx, void *ud)
{
    (void)ud;
    const char *argv[] = {"PING"};
    rc_cmd cmd = {1, argv, NULL};
    redisReply *r;
    int st = pipeline(c, ctx, &cmd, 1, &r);
    if (st == RC_OK) {
        st = reply_error(c, r, "PING");
        freeReplyObject(r);
    }
    return st;
}

int rc_cache_health_check(rc_cache *c)
{
    if (!c)
        return rc_seterr(RC_EINVAL, "rc_cache_health_check: NULL argument");
    int st = with_redis(c, ping_fn, NULL);
    return st == RC_EBACKEND ? RC_EUNAVAILABLE : st;
}

/* ---- queue ---- */

int rc_queue_push(rc_cache *c, const char *queue, const char *val, size_t len)
{
    if (!c || !queue || (!val && len))
        return rc_seterr(RC_EINVAL, "rc_queue_push: NULL argument");
    const char *argv[] = {"RPUSH", queue, val ? val : ""};
    const size_t lens[] = {5, strlen(queue), len};
    redisReply *r;
    int st = exec1(c, 3, argv, lens, &r);
    if (st == RC_OK) {
        st = reply_error(c, r, "RPUSH");
        freeReplyObject(r);
    }
    return st;
}

int rc_queue_pop(rc_cache *c, const char *queue, char **val, size_t *len)
{
    if (!c || !queue || !val)
        return rc_seterr(RC_EINVAL, "rc_queue_pop: NULL argument");
    *val = NULL;
    const char *argv[] = {"LPOP", queue};
    redisReply *r;
    int st = exec1(c, 2, argv, NULL, &r);
    if (st)
        return st;
    st = reply_error(c, r, "LPOP");
    if (st == RC_OK)
        st = r->type == REDIS_REPLY_STRING ? copy_value(r->str, r->len, val, len)
                                           : RC_ENOTFOUND;
    freeReplyObject(r);
    return st;
}

int rc_queue_length(rc_cache *c, const char *queue, long long *len)
{
    if (!c || !queue || !len)
        return rc_seterr(RC_EINVAL, "rc_queue_length: NULL argument");
    const char *argv[] = {"LLEN", queue};
    return exec_integer(c, 2, argv, len);
}

int rc_queue_clear(rc_cache *c, const char *queue)
{
    if (!c || !queue)
        return rc_seterr(RC_EINVAL, "rc_queue_clear: NULL argument");
    const char *argv[] = {"UNLINK", queue};
    long long n;
    return exec_integer(c, 2, argv, &n);
}

/* ---- statistics ---- */

/* Copies the value of field (e.g. "used_memory_human") from an INFO text. */
static void info_field(const char *info, const char *field, char *out, size_t size)
{
    size_t fl = strlen(field);
    out[0] = '\0';
    for (const char *p = info; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, field, fl) == 0 && p[fl] == ':') {
            size_t n = strcspn(p + fl + 1, "\r\n");
            snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), p + fl + 1);
            return;
        }
    }
}

int rc_cache_get_stats(rc_cache *c, rc_cache_stats *st)
{
    if (!c || !st)
        return rc_seterr(RC_EINVAL, "rc_cache_get_stats: NULL argument");
    memset(st, 0, sizeof *st);
    st->keys = -1;
    if (rc_cache_redis_usable(c)) {
        const char *info[] = {"INFO", "memory"}, *dbsize[] = {"DBSIZE"};
        rc_cmd cmds[2] = {{2, info, NULL}, {1, dbsize, NULL}};
        redisReply *r[2];
        if (rc_cache_exec(c, cmds, 2, r) == RC_OK) {
            if (r[0]->type == REDIS_REPLY_STRING)
                info_field(r[0]->str, "used_memory_human", st->used_memory_human,
                           sizeof st->used_memory_human);
            if (r[1]->type == REDIS_REPLY_INTEGER)
                st->keys = r[1]->integer;
            freeReplyObject(r[0]);
            freeReplyObject(r[1]);
        }
    }
    st->hits = atomic_load(&c->hits);
    st->misses = atomic_load(&c->misses);
    st->hit_rate = st->hits + st->misses ? (double)st->hits / (double)(st->hits + st->misses) : 0;
    st->sets = atomic_load(&c->sets);
    st->deletes = atomic_load(&c->deletes);
    st->errors = atomic_load(&c->errors);
    st->fallback_hits = atomic_load(&c->fallback_hits);
    st->fallback_entries = rc_fallback_count(c->fb);
    st->circuit = rc_breaker_state(&c->breaker);
    st->redis_enabled = c->enabled;
    st->redis_available = c->enabled && atomic_load(&c->avail) == AVAIL_UP;
    st->pending_deletes = atomic_load(&c->pend_count);
    rc_clearerr();
    return RC_OK;
}

int rc_cache_stats_json(rc_cache *c, char **json)
{
    if (!c || !json)
        return rc_seterr(RC_EINVAL, "rc_cache_stats_json: NULL argument");
    *json = NULL;
    rc_cache_stats st;
    rc_cache_get_stats(c, &st);
    json_t *o = json_pack("{s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:s, s:b, s:b, s:I, s:s, s:I}",
                          "hits", (json_int_t)st.hits, "misses", (json_int_t)st.misses,
                          "hit_rate", st.hit_rate, "sets", (json_int_t)st.sets,
                          "deletes", (json_int_t)st.deletes, "errors", (json_int_t)st.errors,
                          "fallback_hits", (json_int_t)st.fallback_hits,
                          "fallback_entries", (json_int_t)st.fallback_entries,
                          "circuit", rc_circuit_state_name(st.circuit),
                          "redis_enabled", (int)st.redis_enabled,
                          "redis_available", (int)st.redis_available,
                          "pending_deletes", (json_int_t)st.pending_deletes,
                          "used_memory_human", st.used_memory_human,
                          "keys", (json_int_t)st.keys);
    /* dumped into a malloc'd buffer: the caller frees it with free(),
     * whatever allocator jansson was given */
    int rc = o ? rc_json_dump(o, JSON_PRESERVE_ORDER, json, NULL) : RC_ENOMEM;
    json_decref(o);
    return rc ? rc_seterr(RC_ENOMEM, "out of memory") : RC_OK;
}
