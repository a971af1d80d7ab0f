/*
 * lease.c - the fencing protocol (lease.h; design in docs/consistency.md):
 * memcache-style leases in Redis, run as Lua scripts (loaded once, called by
 * EVALSHA; script.c), the fenced delete pipeline and pattern drop of a
 * write, and the in-process fence of the fallback.
 */
#include "cache/service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the Lua scripts ---- */

/* Sent with a plain GET of KEYS[1] before it, in the same round trip (the
 * value comes from the GET, so Redis never copies it through Lua).
 * KEYS: value, lease[, negative]. ARGV: token ("" = take no lease), lease ms.
 * -> {1, pttl} the value exists (pttl: its PTTL, ms); {2} negative hit;
 *    {0, 1} no value, lease taken; {0, 0} no value, lease held by another
 *    reader (or none asked for). */
static const char CHECK_LUA[] =
    "local t = redis.call('PTTL', KEYS[1])\n"
    "if t ~= -2 then return {1, t} end\n"
    "if #KEYS > 2 and redis.call('EXISTS', KEYS[3]) == 1 then return {2} end\n"
    "if ARGV[1] ~= '' and redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', "
    "ARGV[2]) then return {0, 1} end\n"
    "return {0, 0}\n";

/* KEYS: target, lease. ARGV: token, value, ttl seconds. -> 1 stored, 0
 * rejected (the lease was deleted by a write, expired or was taken over). */
static const char FILL_LUA[] = "if redis.call('GET', KEYS[2]) == ARGV[1] then\n"
                               "  redis.call('SET', KEYS[1], ARGV[2], 'EX', "
                               "ARGV[3])\n"
                               "  redis.call('DEL', KEYS[2])\n"
                               "  return 1\n"
                               "end\n"
                               "return 0\n";

/* KEYS: lease. ARGV: token. Gives back a lease no fill will use. */
static const char RELEASE_LUA[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n";

/* ---- read: lookup, fill, release ---- */

void rc_lease_hit_free(rc_lease_hit *h)
{
    if (!h)
        return;
    freeReplyObject(h->holder);
    *h = (rc_lease_hit){0};
}

/* What the GET reply got and the CHECK reply chk say together (filling
 * *hit, *leased; got is taken). The two ran one after the other, not
 * atomically: a write or a fill may have come between them. */
static rc_lease_found lookup_reply(rc_cache *c, redisReply *got, const redisReply *chk,
                                   const char *lease, const char *token,
                                   rc_lease_hit *hit, bool *leased)
{
    long long kind = chk->element[0]->integer;
    bool took = kind == 0 && chk->elements == 2 &&
                chk->element[1]->type == REDIS_REPLY_INTEGER && chk->element[1]->integer == 1;
    /* kind 1 with no GET value: a fill landed between; a miss, no lease */
    rc_lease_found res = got->type == REDIS_REPLY_STRING  ? RC_LEASE_HIT
                         : got->type == REDIS_REPLY_ERROR ? RC_LEASE_FOREIGN
                         : kind == 2                      ? RC_LEASE_NEGATIVE
                         : kind == 0 && !took && token[0] ? RC_LEASE_FILLING
                                                          : RC_LEASE_MISS;
    if (took && res != RC_LEASE_MISS) /* a lease taken in the gap goes back */
        (void)rc_lease_release(c, lease, token);
    *leased = res == RC_LEASE_MISS && took;
    if (res != RC_LEASE_HIT) {
        freeReplyObject(got);
        return res;
    }
    /* handed over in place: no copy of the value. Gone by the CHECK (a write
     * came between): the value is still an answer from before the write's
     * return, but not one to keep (pttl -2). */
    long long pttl = kind == 1 && chk->elements == 2 ? chk->element[1]->integer : -2;
    *hit = (rc_lease_hit){got->str, got->len, pttl, got};
    return res;
}

rc_lease_found rc_lease_lookup(rc_cache *c, const char *key, const char *lease,
                               const char *neg, const char *token, int lease_ms,
                               rc_lease_hit *hit, bool *leased)
{
    *hit = (rc_lease_hit){0};
    *leased = false;
    if (!rc_cache_redis_usable(c))
        return RC_LEASE_DOWN;
    if (rc_call_fills_paused(c))
        token = ""; /* Redis refused a fill for memory: take no lease */
    const char *keys[3] = {key, lease, neg};
    char ms[24];
    snprintf(ms, sizeof ms, "%d", lease_ms);
    const char *args[2] = {token, ms}, *get_argv[2] = {"GET", key};
    rc_cmd get = {2, get_argv, NULL};
    redisReply *got = NULL, *chk = NULL;
    if (rc_cache_eval_after(c, &get, &got, CHECK_LUA, neg ? 3 : 2, keys, 2, args, NULL,
                            &chk) != RC_OK ||
        !got || !chk || chk->type != REDIS_REPLY_ARRAY || chk->elements < 1 ||
        chk->element[0]->type != REDIS_REPLY_INTEGER ||
        (got->type == REDIS_REPLY_ERROR && strncmp(got->str, "WRONGTYPE", 9) != 0)) {
        freeReplyObject(got);
        freeReplyObject(chk);
        return RC_LEASE_FAILED;
    }
    rc_lease_found res = lookup_reply(c, got, chk, lease, token, hit, leased);
    freeReplyObject(chk);
    return res;
}

rc_lease_fill_result rc_lease_fill(rc_cache *c, const char *key,
                                   const char *lease, const char *token,
                                   const char *val, size_t len, int ttl)
{
    if (len > RC_LEASE_VALUE_MAX) { /* Redis would refuse it: never sent */
        rc_lease_release(c, lease, token);
        return RC_LEASE_NOT_SENT;
    }
    const char *keys[2] = {key, lease};
    char ttls[24];
    snprintf(ttls, sizeof ttls, "%d", ttl);
    const char *args[3] = {token, val, ttls};
    const size_t lens[3] = {strlen(token), len, strlen(ttls)};
    redisReply *rep = NULL;
    rc_lease_fill_result res = RC_LEASE_NOT_SENT;
    if (rc_cache_eval(c, FILL_LUA, 2, keys, 3, args, lens, &rep) == RC_OK &&
        rep && rep->type == REDIS_REPLY_INTEGER)
        res = rep->integer == 0 ? RC_LEASE_REJECTED : RC_LEASE_STORED;
    freeReplyObject(rep);
    return res;
}

bool rc_lease_release(rc_cache *c, const char *lease, const char *token)
{
    const char *keys[1] = {lease};
    const char *args[1] = {token};
    redisReply *rep = NULL;
    bool ok =
        rc_cache_eval(c, RELEASE_LUA, 1, keys, 1, args, NULL, &rep) == RC_OK &&
        rep && rep->type == REDIS_REPLY_INTEGER;
    freeReplyObject(rep);
    return ok;
}

/* ---- write: the fenced delete pipeline ---- */

/* Remembers d's leases and keys for replay (d->drop_glob when they cannot
 * be); argv holds them one after another. */
static void remember(rc_cache *c, const rc_lease_deletes *d, const char **argv)
{
    if (rc_cache_remember_deletes(c, argv, d->nleases + d->nkeys,
                                  d->drop_glob) != RC_OK)
        (void)rc_cache_remember_deletes(c, NULL, 0, d->drop_glob);
}

/* Runs the pipeline of d; argv has room for both DELs: "DEL" leases...
 * "DEL" keys... */
static int delete_pipeline(rc_cache *c, const rc_lease_deletes *d,
                           const char **argv, long long *removed)
{
    size_t nl = d->nleases, nk = d->nkeys, ncmd = 0, data_cmd;
    argv[0] = "DEL";
    if (nl)
        memcpy(argv + 1, d->leases, nl * sizeof *argv);
    argv[nl + 1] = "DEL";
    memcpy(argv + nl + 2, d->keys, nk * sizeof *argv);
    char ms[24];
    snprintf(ms, sizeof ms, "%d", d->lease_ms);
    const char *set[5] = {"SET", d->writer_lease, d->writer_token, "PX", ms};
    rc_cmd cmds[3];
    if (nl)
        cmds[ncmd++] = (rc_cmd){(int)nl + 1, argv, NULL};
    data_cmd = ncmd;
    cmds[ncmd++] = (rc_cmd){(int)nk + 1, argv + nl + 1, NULL};
    if (d->writer_lease)
        cmds[ncmd++] = (rc_cmd){5, set, NULL};
    redisReply *rep[3] = {NULL, NULL, NULL};
    /* with Sentinel, acknowledged by the replicas too (a failover must not
     * lose it) */
    bool ok = rc_cache_exec_durable(c, cmds, ncmd, rep) == RC_OK;
    for (size_t i = 0; i < ncmd && ok; i++)
        ok = rep[i] && rep[i]->type != REDIS_REPLY_ERROR;
    if (ok)
        *removed = rep[data_cmd]->integer;
    for (size_t i = 0; i < ncmd; i++)
        freeReplyObject(rep[i]);
    return ok ? RC_OK : RC_EUNAVAILABLE;
}

int rc_lease_delete(rc_cache *c, const rc_lease_deletes *d, long long *removed)
{
    *removed = 0;
    if (!c || !d || !d->nkeys || (d->nleases && !d->leases) || !d->keys ||
        (d->writer_lease && !d->writer_token))
        return rc_seterr(RC_EINVAL, "rc_lease_delete: bad argument");
    const char **argv = malloc((d->nkeys + d->nleases + 2) * sizeof *argv);
    if (!argv)
        return rc_seterr(RC_ENOMEM, "out of memory");
    int rc = delete_pipeline(c, d, argv, removed);
    if (rc != RC_OK) {
        /* leases and keys one after another: argv minus the two "DEL"s */
        memmove(argv + d->nleases + 1, argv + d->nleases + 2,
                d->nkeys * sizeof *argv);
        remember(c, d, argv + 1);
    }
    free(argv);
    return rc;
}

int rc_lease_drop(rc_cache *c, const char *lease_glob, const char *data_glob,
                  long long *removed)
{
    *removed = 0;
    if (rc_cache_clear(c, lease_glob, NULL) != RC_OK ||
        rc_cache_clear(c, data_glob, removed) != RC_OK) {
        (void)rc_cache_remember_deletes(c, NULL, 0, lease_glob);
        (void)rc_cache_remember_deletes(c, NULL, 0, data_glob);
        return RC_EUNAVAILABLE;
    }
    return RC_OK;
}

/* ---- the fence of the fallback ---- */

uint64_t rc_cache_fence_epoch(rc_cache *c)
{
    return rc_fallback_epoch(c->fb);
}

int rc_cache_fallback_fill_fenced(rc_cache *c, const char *key, const char *val,
                                  size_t len, int ttl, uint64_t epoch)
{
    if (!c || !key || (!val && len) || ttl <= 0)
        return rc_seterr(RC_EINVAL,
                         "rc_cache_fallback_fill_fenced: bad argument");
    if (!c->fallback_enabled)
        return RC_EUNAVAILABLE;
    return rc_fallback_set_fenced(c->fb, key, val, len, ttl, epoch);
}

void rc_cache_fallback_invalidate(rc_cache *c, const char *const *keys,
                                  size_t n)
{
    rc_fallback_invalidate(c->fb, keys, n);
}
