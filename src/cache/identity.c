/*
 * identity.c - Redis's identity and the trust in it. A Redis that restarted
 * (its run_id changes), a replica promoted in a failover (another run_id) or
 * an AOF restore (a restart) can hold values whose invalidation it had
 * acknowledged. So a service uses a connection only after checking the
 * run_id behind it (INFO server, once per connection and per loss of
 * trust), and before it trusts an identity it has not trusted before:
 *
 *   1. every registered namespace is dropped there once: a hash
 *      P + "~identity:" + run_id holds, per namespace glob, "done" or the
 *      Redis time (ms) until which one process's claim to drop it stands
 *      (CLAIM below, atomic). The claimant drops (SCAN + UNLINK, leases
 *      first) and marks it done; the others wait until it is done, or take
 *      the claim over once it has lapsed (its process died);
 *   2. the invalidation outbox is applied (outbox.c);
 *   3. only then is the identity trusted and the caller's command sent.
 *
 * After the breaker opened (rc_identity_distrust) steps 2 and 3 run again
 * before Redis is used; step 1 only if the run_id changed meanwhile. The
 * marker of a run_id lives as long as that server's data; a new process
 * connecting later finds it done and drops nothing. The first service ever
 * to meet a server drops its namespaces once (they were not ours to trust).
 */
#include "cache/service.h"

#include "core/log.h"
#include "core/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long a claim to drop a namespace stands, ms (renewed by nothing: a
 * drop taking longer lets a second process drop too, which is harmless). */
#define CLAIM_MS "10000"
/* How long a service waits for another process's drop, seconds. */
#define CLAIM_WAIT 20.0

/* KEYS[1] the marker hash, ARGV[1] the namespace, ARGV[2] the claim's life
 * in ms: "done", "wait" (another claim stands) or "won" (ours now). */
static const char claim_script[] =
    "local v = redis.call('HGET', KEYS[1], ARGV[1]) "
    "if v == 'done' then return 'done' end "
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "if v and tonumber(v) and tonumber(v) > now then return 'wait' end "
    "redis.call('HSET', KEYS[1], ARGV[1], now + tonumber(ARGV[2])) "
    "return 'won'";

/* One command on ctx; *reply owned by the caller. */
static int one(rc_cache *c, redisContext *ctx, int argc, const char **argv,
               redisReply **reply)
{
    rc_cmd cmd = {argc, argv, NULL};
    int st = rc_call_pipeline(c, ctx, &cmd, 1, reply);
    if (st == RC_OK && (st = rc_call_reply_error(c, *reply, argv[0])) != RC_OK) {
        freeReplyObject(*reply);
        *reply = NULL;
    }
    return st;
}

/* id = the run_id of the server behind ctx. */
static int read_run_id(rc_cache *c, redisContext *ctx, char id[48])
{
    const char *argv[] = {"INFO", "server"};
    redisReply *r = NULL;
    int st = one(c, ctx, 2, argv, &r);
    if (st != RC_OK)
        return st;
    const char *p = r->type == REDIS_REPLY_STRING ? strstr(r->str, "run_id:") : NULL;
    size_t n = p ? strcspn(p + 7, "\r\n") : 0;
    if (!p || n == 0 || n >= 48)
        st = rc_seterr(RC_EBACKEND, "redis at %s: INFO server has no run_id",
                       c->where);
    else
        snprintf(id, 48, "%.*s", (int)n, p + 7);
    freeReplyObject(r);
    return st;
}

/* Claims src's namespace in the marker and drops it, or waits for the
 * process that claimed it (rc_outbox_each_namespace callback). */
static int drop_namespace(rc_cache *c, redisContext *ctx,
                          const rc_outbox_source *src, void *ud)
{
    const char *marker = ud; /* P + "~identity:" + run_id */
    const char *claim[] = {"EVAL", claim_script, "1", marker,
                           src->ns_glob, CLAIM_MS};
    double until = rc_breaker_now(&c->breaker) + CLAIM_WAIT;
    for (;;) {
        redisReply *r = NULL;
        int st = one(c, ctx, 6, claim, &r);
        if (st != RC_OK)
            return st;
        bool done = r->type == REDIS_REPLY_STRING && strcmp(r->str, "done") == 0;
        bool won = r->type == REDIS_REPLY_STRING && strcmp(r->str, "won") == 0;
        freeReplyObject(r);
        if (done)
            return RC_OK;
        if (won)
            break;
        if (rc_breaker_now(&c->breaker) > until)
            return rc_seterr(RC_EUNAVAILABLE, "redis at %s: another process "
                             "is still dropping %s", c->where, src->ns_glob);
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    long long removed = 0;
    char *leases = rc_str_concat(c->escaped_prefix, src->lease_glob);
    char *all = rc_str_concat(c->escaped_prefix, src->ns_glob);
    int st = leases && all ? RC_OK : rc_seterr(RC_ENOMEM, "out of memory");
    if (st == RC_OK)
        st = rc_replay_scan_unlink(c, ctx, leases, &removed);
    if (st == RC_OK)
        st = rc_replay_scan_unlink(c, ctx, all, &removed);
    free(leases);
    free(all);
    const char *mark[] = {"HSET", marker, src->ns_glob, "done"};
    redisReply *r = NULL;
    if (st == RC_OK && (st = one(c, ctx, 4, mark, &r)) == RC_OK) {
        freeReplyObject(r);
        atomic_fetch_add(&c->identity_drops, 1);
        rc_log(c->log_level, RC_LOG_INFO,
               "redis at %s: new identity: dropped %s (%lld keys)", c->where,
               src->ns_glob, removed);
    }
    return st;
}

/* Step 1 for run_id: every namespace dropped there once. trust_mu held. */
static int drop_once(rc_cache *c, redisContext *ctx, const char *run_id)
{
    char tail[64];
    snprintf(tail, sizeof tail, "~identity:%s", run_id);
    char *key = rc_str_concat(c->prefix, tail);
    if (!key)
        return rc_seterr(RC_ENOMEM, "out of memory");
    int st = rc_outbox_each_namespace(c, drop_namespace, ctx, key);
    free(key);
    return st;
}

int rc_identity_verify(rc_cache *c, rc_conn *conn)
{
    unsigned gen = atomic_load(&c->trust_gen);
    if (conn->verified == gen && atomic_load(&c->trusted_gen) == gen)
        return RC_OK;
    char id[48];
    int st = read_run_id(c, conn->ctx, id);
    if (st != RC_OK)
        return st;
    pthread_mutex_lock(&c->trust_mu);
    gen = atomic_load(&c->trust_gen);
    bool known = strcmp(id, c->run_id) == 0;
    if (!known) {
        if (c->run_id[0]) {
            atomic_fetch_add(&c->identity_changes, 1);
            rc_log(c->log_level, RC_LOG_INFO,
                   "redis at %s: a new server (run_id %s, was %s): its keys "
                   "are not trusted until dropped", c->where, id, c->run_id);
        }
        atomic_store(&c->trusted_gen, 0);
        st = drop_once(c, conn->ctx, id);
        if (st == RC_OK)
            snprintf(c->run_id, sizeof c->run_id, "%s", id);
    }
    if (st == RC_OK && atomic_load(&c->trusted_gen) != gen)
        st = rc_outbox_apply(c, conn->ctx);
    if (st == RC_OK) {
        atomic_store(&c->trusted_gen, gen);
        conn->verified = gen;
    }
    pthread_mutex_unlock(&c->trust_mu);
    return st;
}

void rc_identity_distrust(rc_cache *c)
{
    atomic_fetch_add(&c->trust_gen, 1);
}

bool rc_identity_trusted(rc_cache *c)
{
    return c->enabled && atomic_load(&c->trusted_gen) == atomic_load(&c->trust_gen);
}
