/*
 * values.c - the value operations of the cache service (get, set, del,
 * exists, ttl, clear, get_or_load, mget, mset): Redis when it can be used,
 * else the in-memory fallback; a write or delete that could not reach Redis
 * is remembered for replay (replay.c). Also the fallback as a value store.
 */
#include "cache/service.h"

#include "core/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rc_values_copy(const char *s, size_t n, char **val, size_t *len)
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

int rc_values_fallback_get(rc_cache *c, const char *key, char **val,
                           size_t *len)
{
    if (c->enabled && c->fallback_enabled && rc_fallback_active(c->fb))
        rc_outbox_to_fallback(c); /* the outage store serves only what is fresh */
    int st = c->fallback_enabled ? rc_fallback_get(c->fb, key, val, len)
                                 : RC_ENOTFOUND;
    if (st == RC_OK) {
        atomic_fetch_add(&c->hits, 1);
        atomic_fetch_add(&c->fallback_hits, 1);
    } else if (st == RC_ENOTFOUND) {
        atomic_fetch_add(&c->misses, 1);
        rc_seterr(RC_ENOTFOUND, "%s", "not in the cache");
    }
    return st;
}

/* ---- one key ---- */

int rc_cache_get(rc_cache *c, const char *key, char **val, size_t *len)
{
    if (!c || !key || !val)
        return rc_seterr(RC_EINVAL, "rc_cache_get: NULL argument");
    *val = NULL;
    const char *argv[] = {"GET", key};
    redisReply *r;
    int st = rc_call_one(c, 2, argv, NULL, &r);
    if (st == RC_EUNAVAILABLE)
        return rc_values_fallback_get(c, key, val, len);
    if (st)
        return st;
    st = rc_call_reply_error(c, r, "GET");
    if (st == RC_OK && r->type == REDIS_REPLY_STRING) {
        st = rc_values_copy(r->str, r->len, val, len);
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
static int set_unavailable(rc_cache *c, const char *key, const char *val,
                           size_t len, int ttl)
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

int rc_cache_set(rc_cache *c, const char *key, const char *val, size_t len,
                 int ttl)
{
    if (!c || !key || (!val && len))
        return rc_seterr(RC_EINVAL, "rc_cache_set: NULL argument");
    if (ttl <= 0)
        return rc_seterr(RC_EINVAL,
                         "rc_cache_set: the TTL must be positive, got %d", ttl);
    char ttls[16];
    snprintf(ttls, sizeof ttls, "%d", ttl);
    const char *argv[] = {"SET", key, val ? val : "", "EX", ttls};
    const size_t lens[] = {3, strlen(key), len, 2, strlen(ttls)};
    redisReply *r;
    int st = rc_call_one(c, 5, argv, lens, &r);
    if (st == RC_EUNAVAILABLE)
        return set_unavailable(c, key, val, len, ttl);
    if (st)
        return st;
    st = rc_call_reply_error(c, r, "SET");
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

/* UNLINK keys[0..n) in one command; *removed as rc_cache_del_many. */
static int unlink_many(rc_cache *c, const char *const *keys, size_t n,
                       long long *removed)
{
    const char **argv = malloc((n + 1) * sizeof *argv);
    if (!argv)
        return rc_seterr(RC_ENOMEM, "out of memory");
    argv[0] = "UNLINK";
    memcpy(argv + 1, keys, n * sizeof *argv);
    redisReply *r;
    rc_cmd cmd = {(int)n + 1, argv, NULL};
    int st = rc_cache_exec_durable(c, &cmd, 1, &r); /* Sentinel: replicated */
    free(argv);
    if (st == RC_EUNAVAILABLE) {
        rc_cache_remember_deletes(c, keys, n, NULL);
        return rc_seterr(RC_EUNAVAILABLE,
                         "redis unavailable: %zu delete(s) remembered "
                         "for replay",
                         n);
    }
    if (st)
        return st;
    st = rc_call_reply_error(c, r, "UNLINK");
    if (st == RC_OK) {
        atomic_fetch_add(&c->deletes, n);
        if (removed && r->type == REDIS_REPLY_INTEGER)
            *removed = r->integer;
    }
    freeReplyObject(r);
    return st;
}

int rc_cache_del_many(rc_cache *c, const char *const *keys, size_t n,
                      long long *removed)
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
    return unlink_many(c, keys, n, removed);
}

int rc_cache_exists(rc_cache *c, const char *key, bool *exists)
{
    if (!c || !key || !exists)
        return rc_seterr(RC_EINVAL, "rc_cache_exists: NULL argument");
    long long n = 0, ttl;
    const char *argv[] = {"EXISTS", key};
    int st = rc_call_integer(c, 2, argv, &n);
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
    int st = rc_call_integer(c, 2, argv, ttl);
    if (st == RC_EUNAVAILABLE && c->fallback_enabled &&
        rc_fallback_ttl(c->fb, key, ttl) == RC_OK)
        return RC_OK;
    return st;
}

/* ---- patterns ---- */

typedef struct clear_args {
    const char *pattern; /* full pattern: escaped prefix + glob */
    long long removed;   /* keys removed */
} clear_args;

/* rc_redis_fn of rc_cache_clear: SCAN + UNLINK of clear_args ud. */
static int clear_fn(rc_cache *c, rc_link *ctx, void *ud)
{
    clear_args *a = ud;
    int st = rc_replay_scan_unlink(c, ctx, a->pattern, &a->removed);
    return st == RC_OK ? rc_call_wait(c, ctx) : st; /* Sentinel: replicated */
}

int rc_cache_clear(rc_cache *c, const char *glob, long long *removed)
{
    if (removed)
        *removed = 0;
    if (!c || !glob)
        return rc_seterr(RC_EINVAL, "rc_cache_clear: NULL argument");
    char *pattern = rc_str_concat(c->escaped_prefix, glob);
    if (!pattern)
        return rc_seterr(RC_ENOMEM, "out of memory");
    long long fb_removed = (long long)rc_fallback_del_matching(c->fb, pattern);
    clear_args a = {pattern, 0};
    int st = c->enabled ? rc_call_with(c, clear_fn, &a) : RC_OK;
    free(pattern);
    if (st == RC_EUNAVAILABLE || st == RC_EAUTH) {
        rc_cache_remember_deletes(c, NULL, 0, glob);
        return rc_seterr(RC_EUNAVAILABLE,
                         "redis unavailable: the clear of '%s' is "
                         "remembered for replay",
                         glob);
    }
    if (st == RC_OK) {
        if (removed)
            *removed = c->enabled ? a.removed : fb_removed;
        atomic_fetch_add(&c->deletes, (uint64_t)a.removed);
    }
    return st;
}

int rc_cache_get_or_load(rc_cache *c, const char *key, int ttl,
                         rc_loader_fn loader, void *ud, char **val, size_t *len)
{
    if (!c || !key || !loader || !val)
        return rc_seterr(RC_EINVAL, "rc_cache_get_or_load: NULL argument");
    if (ttl <= 0)
        return rc_seterr(RC_EINVAL,
                         "rc_cache_get_or_load: the TTL must be positive, "
                         "got %d",
                         ttl);
    size_t n = 0;
    int st = rc_cache_get(c, key, val, &n);
    if (st == RC_ENOTFOUND || st == RC_EBACKEND) {
        st = loader(ud, val, &n);
        if (st == RC_OK)
            rc_cache_set(c, key, *val, n,
                         ttl); /* a failed store is not fatal */
        else
            *val = NULL;
    }
    if (st == RC_OK && len)
        *len = n;
    return st;
}

/* ---- batches ---- */

/* vals[i], lens[i] from the replies of the GETs (a miss is NULL). */
static int mget_replies(rc_cache *c, const rc_batch *b, char **vals,
                        size_t *lens)
{
    int st = RC_OK;
    for (size_t i = 0; st == RC_OK && i < b->n; i++) {
        const redisReply *r = b->replies[i];
        if (r->type == REDIS_REPLY_STRING) {
            st = rc_values_copy(r->str, r->len, &vals[i], &lens[i]);
            atomic_fetch_add(&c->hits, 1);
        } else {
            rc_call_reply_error(c, r, "GET");
            atomic_fetch_add(&c->misses, 1);
        }
    }
    return st;
}

int rc_cache_mget(rc_cache *c, const char *const *keys, size_t n, char **vals,
                  size_t *lens)
{
    if (!c || (n && (!keys || !vals || !lens)))
        return rc_seterr(RC_EINVAL, "rc_cache_mget: NULL argument");
    for (size_t i = 0; i < n; i++) {
        vals[i] = NULL;
        lens[i] = 0;
    }
    if (!n)
        return RC_OK;
    rc_batch b = {0};
    int st = rc_batch_alloc(&b, n, 2 * n, false);
    for (size_t i = 0; st == RC_OK && i < n; i++) {
        b.argv[2 * i] = "GET";
        b.argv[2 * i + 1] = keys[i];
        b.cmds[i] = (rc_cmd){2, b.argv + 2 * i, NULL};
    }
    if (st == RC_OK)
        st = rc_cache_exec(c, b.cmds, n, b.replies);
    if (st == RC_EUNAVAILABLE) {
        st = RC_OK;
        for (size_t i = 0; st == RC_OK && i < n; i++) {
            st = rc_values_fallback_get(c, keys[i], &vals[i], &lens[i]);
            st = st == RC_ENOTFOUND ? RC_OK : st;
        }
    } else if (st == RC_OK) {
        st = mget_replies(c, &b, vals, lens);
    }
    rc_batch_free(&b);
    for (size_t i = 0; st && i < n; i++) {
        free(vals[i]);
        vals[i] = NULL;
    }
    return st;
}

/* The SETs of mset: SET keys[i] vals[i] EX ttls. */
static void mset_commands(rc_batch *b, const char *const *keys,
                          const char *const *vals, const size_t *lens,
                          const char *ttls)
{
    for (size_t i = 0; i < b->n; i++) {
        const char **a = b->argv + 5 * i;
        size_t *l = b->argvlen + 5 * i;
        a[0] = "SET", l[0] = 3;
        a[1] = keys[i], l[1] = strlen(keys[i]);
        a[2] = vals[i] ? vals[i] : "", l[2] = lens[i];
        a[3] = "EX", l[3] = 2;
        a[4] = ttls, l[4] = strlen(ttls);
        b->cmds[i] = (rc_cmd){5, a, l};
    }
}

int rc_cache_mset(rc_cache *c, const char *const *keys, const char *const *vals,
                  const size_t *lens, size_t n, int ttl)
{
    if (!c || (n && (!keys || !vals || !lens)))
        return rc_seterr(RC_EINVAL, "rc_cache_mset: NULL argument");
    if (ttl <= 0)
        return rc_seterr(
            RC_EINVAL, "rc_cache_mset: the TTL must be positive, got %d", ttl);
    if (!n)
        return RC_OK;
    char ttls[16];
    snprintf(ttls, sizeof ttls, "%d", ttl);
    rc_batch b = {0};
    int st = rc_batch_alloc(&b, n, 5 * n, true);
    if (st == RC_OK) {
        mset_commands(&b, keys, vals, lens, ttls);
        st = rc_cache_exec(c, b.cmds, n, b.replies);
    }
    if (st == RC_EUNAVAILABLE) {
        int worst = RC_OK;
        for (size_t i = 0; i < n; i++) {
            int s1 = set_unavailable(c, keys[i], vals[i], lens[i], ttl);
            worst = worst ? worst : s1;
        }
        st = worst;
    } else {
        for (size_t i = 0; st == RC_OK && i < n; i++)
            if ((st = rc_call_reply_error(c, b.replies[i], "SET")) == RC_OK)
                atomic_fetch_add(&c->sets, 1);
    }
    rc_batch_free(&b);
    return st;
}

/* ---- the fallback as a value store ---- */

int rc_cache_fallback_get(rc_cache *c, const char *key, char **val, size_t *len)
{
    if (!c || !key || !val)
        return rc_seterr(RC_EINVAL, "rc_cache_fallback_get: NULL argument");
    *val = NULL;
    return rc_values_fallback_get(c, key, val, len);
}

int rc_cache_fallback_set(rc_cache *c, const char *key, const char *val,
                          size_t len, int ttl)
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
