/*
 * call.c - the path every Redis call of the cache service takes: the circuit
 * breaker, a pooled context, the replay of remembered
 * deletes first, then the commands; the outcome switches the service between
 * Redis and the fallback (note_up / note_down) and is counted. Also raw
 * pipelines, the classification of failures and error replies, and PING.
 *
 * Commands are written by wire.c (send with MSG_NOSIGNAL: a server gone
 * away never raises SIGPIPE, and no call touches the signal mask).
 */
#include "cache/service.h"

#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- raw pipelines on one context (I/O errors -> RC_EUNAVAILABLE) ---- */

/* RC_EUNAVAILABLE with what went wrong on ctx. */
static int io_error(rc_cache *c, rc_link *ctx)
{
    int timed_out =
        ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (timed_out)
        return rc_seterr(RC_EUNAVAILABLE, "redis at %s: timed out", c->where);
    return rc_seterr(RC_EUNAVAILABLE, "redis at %s: %s", c->where,
                     ctx->errstr[0] ? ctx->errstr : "connection lost");
}

/* Frees replies[0..n) and sets them to NULL. */
static void free_replies(redisReply **replies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
}

/* A server that wants AUTH, is still loading its data, or has become a
 * replica (READONLY: a failover demoted it) answers with an error: that is
 * Redis being unavailable, not a reply (the connection is then discarded,
 * and with Sentinel the next one asks for the master again).
 * RC_EAUTH / RC_EUNAVAILABLE (replies freed) when one says so, else RC_OK. */
static int unusable_server(rc_cache *c, redisReply **replies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const redisReply *r = replies[i];
        bool err = r->type == REDIS_REPLY_ERROR;
        bool noauth = err && strncmp(r->str, "NOAUTH", 6) == 0;
        bool loading = err && strncmp(r->str, "LOADING", 7) == 0;
        /* a script's write on a replica: "... -READONLY You can't ..." */
        bool readonly = err && (strncmp(r->str, "READONLY", 8) == 0 ||
                                strstr(r->str, "-READONLY") != NULL);
        if (!noauth && !loading && !readonly)
            continue;
        free_replies(replies, n);
        if (noauth)
            return rc_seterr(RC_EAUTH,
                             "redis at %s: authentication required (NOAUTH): "
                             "set REDIS_PASSWORD or a password in REDIS_URL",
                             c->where);
        if (readonly)
            return rc_seterr(RC_EUNAVAILABLE, "redis at %s: a read-only replica now "
                             "(READONLY)", c->where);
        return rc_seterr(RC_EUNAVAILABLE, "redis at %s: still loading its data",
                         c->where);
    }
    return RC_OK;
}

/* ---- invalidations acknowledged by the replicas (Sentinel) ---- */

/* WAIT's timeout on ctx: half the link's, so its reply beats the deadline. */
static void wait_args(rc_link *ctx, char n[16], char ms[24])
{
    long long t = ctx->timeout_ns / 2000000;
    snprintf(n, 16, "%d", ctx->replicas);
    snprintf(ms, 24, "%lld", t > 0 ? t : 1);
}

/* The reply of WAIT: RC_OK when ctx->replicas acknowledged, else
 * RC_EUNAVAILABLE (trust dropped: the invalidations may be lost). */
static int wait_reply(rc_cache *c, rc_link *ctx, const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER && r->integer >= ctx->replicas)
        return RC_OK;
    atomic_fetch_add(&c->unacked, 1);
    rc_identity_distrust(c);
    /* the near cache's subscriber may be on a master that was replaced */
    rc_tracking_lose(c->tracking, "an invalidation not acknowledged by the replicas");
    if (r->type == REDIS_REPLY_INTEGER)
        return rc_seterr(RC_EUNAVAILABLE,
                         "redis at %s: %lld of %d replicas acknowledged an invalidation "
                         "(a failover may be under way)",
                         c->where, r->integer, ctx->replicas);
    return rc_seterr(RC_EUNAVAILABLE, "redis at %s: WAIT refused: %.*s", c->where,
                     (int)(r->len > 200 ? 200 : r->len), r->str ? r->str : "");
}

bool rc_call_must_wait(const rc_link *ctx) { return ctx->replicas > 0; }

int rc_call_wait(rc_cache *c, rc_link *ctx)
{
    if (!rc_call_must_wait(ctx))
        return RC_OK;
    char n[16], ms[24];
    wait_args(ctx, n, ms);
    const char *argv[3] = {"WAIT", n, ms};
    rc_cmd cmd = {3, argv, NULL};
    redisReply *r = NULL;
    int st = rc_call_pipeline(c, ctx, &cmd, 1, &r);
    if (st == RC_OK)
        st = wait_reply(c, ctx, r);
    if (st == RC_OK)
        atomic_fetch_add(&c->acked, 1);
    freeReplyObject(r);
    return st;
}

int rc_call_pipeline(rc_cache *c, rc_link *ctx, const rc_cmd *cmds,
                     size_t n, redisReply **replies)
{
    for (size_t i = 0; i < n; i++)
        replies[i] = NULL;
    if (ctx->route)
        return rc_route_pipeline(c, ctx, cmds, n, replies);
    int st = rc_call_send(c, ctx, cmds, n);
    return st == RC_OK ? rc_call_receive(c, ctx, replies, n) : st;
}

int rc_call_send(rc_cache *c, rc_link *ctx, const rc_cmd *cmds, size_t n)
{
    if (!rc_wire_send(ctx, cmds, n))
        return ctx->err == REDIS_ERR_OOM ? rc_seterr(RC_ENOMEM, "out of memory")
                                         : io_error(c, ctx);
    return RC_OK;
}

int rc_call_receive(rc_cache *c, rc_link *ctx, redisReply **replies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!(replies[i] = rc_wire_reply(ctx))) {
            free_replies(replies, i);
            return io_error(c, ctx);
        }
    }
    return unusable_server(c, replies, n);
}

int rc_batch_alloc(rc_batch *b, size_t n, size_t nargs, bool with_lens)
{
    b->n = n;
    b->cmds = calloc(n, sizeof *b->cmds);
    b->argv = malloc(nargs * sizeof *b->argv);
    b->argvlen = with_lens ? malloc(nargs * sizeof *b->argvlen) : NULL;
    b->replies = calloc(n, sizeof *b->replies);
    if (!b->cmds || !b->argv || (with_lens && !b->argvlen) || !b->replies)
        return rc_seterr(RC_ENOMEM, "out of memory");
    return RC_OK;
}

void rc_batch_free(rc_batch *b)
{
    for (size_t i = 0; b->replies && i < b->n; i++)
        freeReplyObject(b->replies[i]);
    free(b->cmds);
    free(b->argv);
    free(b->argvlen);
    free(b->replies);
}

/* ---- the path of every Redis call ---- */

/* A call reached Redis: leave the fallback (dropping it) if we were in it. */
static void note_up(rc_cache *c)
{
    int was = atomic_exchange(&c->avail, RC_AVAIL_UP);
    if (was == RC_AVAIL_UP)
        return;
    size_t dropped = rc_fallback_deactivate(c->fb);
    /* The first contact and a lone failed call (a connection lost and
     * replaced) are routine (debug); a recovery after the breaker opened is
     * news (info). */
    bool news = atomic_exchange(&c->degraded, false);
    rc_log(c->log_level, news ? RC_LOG_INFO : RC_LOG_DEBUG,
           news ? "redis_recovered" : "redis_up",
           "redis at %s: %s (%zu fallback entries dropped)", c->where,
           was == RC_AVAIL_DOWN ? "back in use" : "in use", dropped);
}

/* A call failed: count it, serve from the fallback, say so once. */
static void note_down(rc_cache *c, const char *why)
{
    atomic_fetch_add(&c->errors, 1);
    if (c->fallback_enabled)
        rc_fallback_activate(c->fb);
    if (atomic_exchange(&c->avail, RC_AVAIL_DOWN) != RC_AVAIL_DOWN)
        rc_log(c->log_level, RC_LOG_DEBUG, "redis_call_failed",
               "%s; this call is answered without Redis",
               why);
}

/* Borrows a context, replays, runs fn and gives the context back; *reached
 * = whether Redis answered (else the context is discarded). */
static int run_on_conn(rc_cache *c, rc_redis_fn fn, void *ud, bool *reached)
{
    rc_conn *conn = NULL;
    int st = rc_pool_borrow(&c->pool, &conn);
    *reached = false;
    if (st != RC_OK)
        return st;
    rc_conn_enter(conn);
    st = rc_identity_verify(c, conn); /* a new Redis is dropped, the outbox applied */
    if (st == RC_OK)
        st = rc_replay_pending(c, &c->dels, conn->ctx);
    if (st == RC_OK)
        st = fn(c, conn->ctx, ud);
    rc_conn_leave(conn);
    *reached = st != RC_EUNAVAILABLE && st != RC_EAUTH;
    rc_pool_return(&c->pool, conn, !*reached);
    return st;
}

/* Notes the outcome of a call that went to Redis: st as it was. */
static int noted(rc_cache *c, int st)
{
    if (st != RC_EUNAVAILABLE && st != RC_EAUTH) {
        note_up(c);
        return st;
    }
    char why[600];
    snprintf(why, sizeof why, "%s", rc_errmsg());
    note_down(c, why);
    return rc_seterr(st, "%s", why);
}

int rc_call_with(rc_cache *c, rc_redis_fn fn, void *ud)
{
    if (!c->enabled)
        return rc_seterr(RC_EUNAVAILABLE,
                         "redis is disabled (REDIS_ENABLED=false)");
    if (c->cluster) /* each master has its breaker (route.c) */
        return noted(c, rc_route_call(c, fn, ud));
    rc_breaker_ticket t = rc_breaker_acquire(&c->breaker);
    if (t == RC_BREAKER_PROBE)
        rc_log(c->log_level, RC_LOG_DEBUG, "redis_breaker_half_open",
               "redis at %s: circuit breaker half open: one probe", c->where);
    if (t == RC_BREAKER_DENY) {
        atomic_fetch_add(&c->errors, 1);
        return rc_seterr(RC_EUNAVAILABLE, "redis at %s: circuit breaker open",
                         c->where);
    }
    bool ok;
    int st = run_on_conn(c, fn, ud, &ok);
    if (rc_breaker_report(&c->breaker, t, ok)) {
        atomic_store(&c->degraded, true);
        rc_log(c->log_level, RC_LOG_WARNING, "redis_breaker_open",
               "redis at %s: circuit breaker open (%s); degrading%s", c->where,
               rc_errmsg(), c->fallback_enabled ? " to the in-memory fallback" : "");
        rc_tracking_lose(c->tracking, "circuit breaker open");
        rc_identity_distrust(c);
    }
    if (t == RC_BREAKER_PROBE) /* the recovery itself is redis_recovered */
        rc_log(c->log_level, RC_LOG_DEBUG, ok ? "redis_breaker_closed" : "redis_breaker_reopened",
               "redis at %s: circuit breaker %s", c->where,
               ok ? "closed (the probe succeeded)" : "open again (the probe failed)");
    return noted(c, st);
}

/* ---- commands ---- */

typedef struct exec_args {
    const rc_cmd *cmds;   /* the commands */
    size_t n;             /* how many */
    redisReply **replies; /* their replies */
    bool durable;         /* invalidations: WAIT for the replicas after */
} exec_args;

/* The pipeline of a, then WAIT in the same round trip. */
static int exec_durable(rc_cache *c, rc_link *ctx, exec_args *a)
{
    rc_cmd small[9], *cmds = a->n < 9 ? small : malloc((a->n + 1) * sizeof *cmds);
    redisReply *rsmall[9], **rep = a->n < 9 ? rsmall : malloc((a->n + 1) * sizeof *rep);
    int st = cmds && rep ? RC_OK : rc_seterr(RC_ENOMEM, "out of memory");
    char n[16], ms[24];
    wait_args(ctx, n, ms);
    const char *argv[3] = {"WAIT", n, ms};
    if (st == RC_OK) {
        memcpy(cmds, a->cmds, a->n * sizeof *cmds);
        cmds[a->n] = (rc_cmd){3, argv, NULL};
        st = rc_call_pipeline(c, ctx, cmds, a->n + 1, rep);
    }
    if (st == RC_OK) {
        st = wait_reply(c, ctx, rep[a->n]);
        freeReplyObject(rep[a->n]);
        for (size_t i = 0; i < a->n; i++) {
            if (st != RC_OK)
                freeReplyObject(rep[i]);
            a->replies[i] = st == RC_OK ? rep[i] : NULL;
        }
    }
    if (cmds != small)
        free(cmds);
    if (rep != rsmall)
        free(rep);
    return st;
}

/* rc_redis_fn of rc_cache_exec: the pipeline of exec_args ud. */
static int exec_fn(rc_cache *c, rc_link *ctx, void *ud)
{
    exec_args *a = ud;
    int st = a->durable && rc_call_must_wait(ctx)
                 ? exec_durable(c, ctx, a)
                 : rc_call_pipeline(c, ctx, a->cmds, a->n, a->replies);
    if (st == RC_OK && a->durable)
        atomic_fetch_add(&c->acked, 1);
    return st;
}

static int exec_with(rc_cache *c, const rc_cmd *cmds, size_t n, redisReply **replies,
                     bool durable)
{
    for (size_t i = 0; replies && i < n; i++)
        replies[i] = NULL;
    if (!c || (n && (!cmds || !replies)))
        return rc_seterr(RC_EINVAL, "rc_cache_exec: NULL argument");
    for (size_t i = 0; i < n; i++)
        if (cmds[i].argc < 1 || !cmds[i].argv)
            return rc_seterr(RC_EINVAL, "rc_cache_exec: command %zu is empty",
                             i);
    if (!n)
        return RC_OK;
    exec_args a = {cmds, n, replies, durable};
    int st = rc_call_with(c, exec_fn, &a);
    return st == RC_EAUTH ? RC_EUNAVAILABLE : st;
}

int rc_cache_exec(rc_cache *c, const rc_cmd *cmds, size_t n, redisReply **replies)
{
    return exec_with(c, cmds, n, replies, false);
}

int rc_cache_exec_durable(rc_cache *c, const rc_cmd *cmds, size_t n, redisReply **replies)
{
    return exec_with(c, cmds, n, replies, true);
}

int rc_call_one(rc_cache *c, int argc, const char *const *argv,
                const size_t *lens, redisReply **reply)
{
    rc_cmd cmd = {argc, argv, lens};
    return rc_cache_exec(c, &cmd, 1, reply);
}

int rc_call_reply_error(rc_cache *c, const redisReply *r, const char *what)
{
    if (r->type != REDIS_REPLY_ERROR)
        return RC_OK;
    atomic_fetch_add(&c->errors, 1);
    double now = rc_breaker_now(&c->breaker);
    bool oom = strncmp(r->str, "OOM", 3) == 0 || strstr(r->str, "-OOM") != NULL;
    if (oom)
        atomic_store(&c->fills_paused_until, now + RC_FILL_PAUSE);
    double last = atomic_load(&c->refused_logged);
    if ((last == 0 || now - last >= RC_REFUSAL_LOG_PERIOD) &&
        atomic_compare_exchange_strong(&c->refused_logged, &last, now))
        rc_log(c->log_level, RC_LOG_WARNING, "redis_refused",
               "redis at %s: %s refused: %.*s%s",
               c->where, what, (int)(r->len > 200 ? 200 : r->len), r->str,
               oom ? " (fills paused for 10 s)" : "");
    return rc_seterr(RC_EBACKEND, "redis at %s: %s: %.*s", c->where, what,
                     (int)(r->len > 200 ? 200 : r->len), r->str);
}

bool rc_call_fills_paused(rc_cache *c)
{
    double until = atomic_load(&c->fills_paused_until);
    return until != 0 && rc_breaker_now(&c->breaker) < until;
}

int rc_call_integer(rc_cache *c, int argc, const char *const *argv,
                    long long *out)
{
    redisReply *r;
    int st = rc_call_one(c, argc, argv, NULL, &r);
    if (st)
        return st;
    st = rc_call_reply_error(c, r, argv[0]);
    if (st == RC_OK && r->type != REDIS_REPLY_INTEGER)
        st = rc_seterr(RC_EBACKEND, "redis at %s: %s: not an integer reply",
                       c->where, argv[0]);
    if (st == RC_OK)
        *out = r->integer;
    freeReplyObject(r);
    return st;
}

/* rc_redis_fn of rc_cache_health_check: PING, an error reply counted. */
static int ping_fn(rc_cache *c, rc_link *ctx, void *ud)
{
    if (rc_route_unpinned(ctx)) /* a cluster: every master */
        return rc_route_each_master(c, ctx, ping_fn, ud);
    const char *argv[] = {"PING"};
    rc_cmd cmd = {1, argv, NULL};
    redisReply *r;
    int st = rc_call_pipeline(c, ctx, &cmd, 1, &r);
    if (st == RC_OK) {
        st = rc_call_reply_error(c, r, "PING");
        freeReplyObject(r);
    }
    return st;
}

int rc_cache_health_check(rc_cache *c)
{
    if (!c)
        return rc_seterr(RC_EINVAL, "rc_cache_health_check: NULL argument");
    int st = rc_call_with(c, ping_fn, NULL);
    return st == RC_EBACKEND ? RC_EUNAVAILABLE : st;
}

/* ---- state, without touching Redis ---- */

int rc_cache_connection_info(rc_cache *c, rc_cache_connection *out)
{
    if (!c || !out)
        return rc_seterr(RC_EINVAL, "rc_cache_connection_info: NULL argument");
    memset(out, 0, sizeof *out);
    rc_pool_last(&c->pool, out->server, out->sentinel, out->tls, out->last_error);
    out->connects = atomic_load(&c->pool.connects);
    return RC_OK;
}

bool rc_cache_redis_usable(rc_cache *c)
{
    /* with a cluster, each master's breaker decides for its keys */
    return c && c->enabled && (c->cluster || rc_breaker_usable(&c->breaker));
}

rc_circuit_state rc_cache_circuit(rc_cache *c)
{
    if (c && c->cluster)
        return rc_cluster_circuit(c);
    return c ? rc_breaker_state(&c->breaker) : RC_CIRCUIT_CLOSED;
}

uint64_t rc_cache_debug_connects(rc_cache *c)
{
    if (c && c->cluster)
        return rc_cluster_connects(c);
    return c ? atomic_load(&c->pool.connects) : 0;
}
