/*
 * cached_repository.c - the cached decorator (repocache/cached_repository.h):
 * one generic implementation for every entity; what differs per entity is
 * the strategy (keys, TTL, flags, codec), which is data.
 *
 * Fencing (full design in docs/consistency.md). Keys, for a data key
 * K = P + ns + ":" + rest:
 *     lease of K     P + ns + ":~lease:" + rest   (token, PX lease_ms)
 *     negative entry P + ns + ":~none:" + id      (covered by the by-id lease)
 * Read:  LOOKUP script: value, or negative entry, or SET lease NX PX (one
 *        round trip) -> database -> FILL script: SET value EX ttl only if the
 *        lease still holds our token, then DEL lease (one round trip).
 * Write: database -> one pipeline: DEL the leases; DEL the data keys
 *        (in that order, see delete_keys); [cache_on_write: SET by-id lease
 *        to our token] -> [re-read the database, FILL through that lease].
 * A write deletes the lease of every key whose answer it may change, so a
 * reader that read the database before the write cannot fill afterwards;
 * a fill that succeeds holds a lease taken after the write's delete, hence
 * its database read saw the write.
 *
 * While Redis is unusable, reads use the service's process-local fallback;
 * fills there are fenced by a process-wide write epoch under one mutex that
 * writers also hold while deleting their keys from the fallback.
 */
#include "repocache/cached_repository.h"

#include "cache/cache_internal.h"
#include "core/json.h"
#include "core/str.h"
#include "core/strset.h"
#include "core/token.h"
#include "repocache/codec.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_LEASE_MS 5000
#define NEGATIVE_VALUE "1"

/* ---- the Lua scripts (loaded once by the service, called by EVALSHA) ---- */

/* KEYS: value, lease[, negative]. ARGV: token ("" = take no lease), lease ms.
 * -> {1, value} hit; {2} negative hit; {3} not a string (foreign type);
 *    {0, 1} miss, lease taken; {0, 0} miss, lease held by another reader. */
static const char LOOKUP_LUA[] =
    "local v = redis.pcall('GET', KEYS[1])\n"
    "if type(v) == 'table' and v.err then return {3} end\n"
    "if v then return {1, v} end\n"
    "if #KEYS > 2 and redis.call('EXISTS', KEYS[3]) == 1 then return {2} end\n"
    "if ARGV[1] ~= '' and redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', "
    "ARGV[2]) then return {0, 1} end\n"
    "return {0, 0}\n";

/* KEYS: target, lease. ARGV: token, value, ttl seconds. -> 1 stored, 0
 * rejected (the lease was deleted by a write, expired or was taken over). */
static const char FILL_LUA[] =
    "if redis.call('GET', KEYS[2]) == ARGV[1] then\n"
    "  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])\n"
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

/* ---- the decorator ---- */

typedef struct cached_repo {
    rc_repo base;                /* must be first */
    rc_repo_methods methods;     /* our table, with the inner's NULL slots */
    rc_repo *inner;              /* the wrapped repository */
    rc_cache *cache;             /* borrowed cache service */
    rc_strategy st;              /* copy of the strategy */
    bool own_inner;              /* destroy inner with us */
    int lease_ms;                /* lease lifetime */
    rc_fill_hook_fn hook;        /* test hook before a read fill */
    void *hook_ud;               /* its argument */
    const char *prefix;          /* CACHE_KEY_PREFIX (borrowed from cache) */
    size_t head_len;             /* strlen(prefix) + strlen(ns) + 1 */
    char *ns_glob;               /* escaped ns + ":*", relative to the prefix */
    char *lease_glob;            /* escaped ns + ":~lease:*", likewise */
    atomic_uint_fast64_t hits, misses, negative_hits, errors, decode_errors,
        invalidations, stale_fills_rejected;
} cached_repo;

/* Process-wide fence of the fallback: see the comment at the top. */
static pthread_mutex_t fb_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t fb_epoch; /* guarded by fb_lock */

static void cached_destroy(rc_repo *base);

static void count(atomic_uint_fast64_t *c) { atomic_fetch_add(c, 1); }

/* ---- keys ---- */

/* P + ns + ":" + tag + rest-of(key), where key = P + ns + ":" + rest. */
static char *side_key(const cached_repo *r, const char *key, const char *tag)
{
    size_t kl = strlen(key), tl = strlen(tag);
    char *s = malloc(kl + tl + 1);
    if (!s)
        return NULL;
    memcpy(s, key, r->head_len);
    memcpy(s + r->head_len, tag, tl);
    memcpy(s + r->head_len + tl, key + r->head_len, kl - r->head_len + 1);
    return s;
}

static char *lease_key(const cached_repo *r, const char *key)
{
    return side_key(r, key, "~lease:");
}

/* The negative entry of by-id key key. */
static char *negative_key(const cached_repo *r, const char *key)
{
    return side_key(r, key, "~none:");
}

/* ---- values ---- */

/* *out = the entity (is_list false) or rc_list (true) encoded in text. */
static int decode_value(const cached_repo *r, bool is_list, const char *text,
                        size_t len, void **out)
{
    if (is_list)
        return rc_envelope_list_decode(r->st.codec, r->st.entity, text, len,
                                       (rc_list **)out);
    return rc_envelope_decode(r->st.codec, text, len, out);
}

static int encode_value(const cached_repo *r, bool is_list, const void *v,
                        char **text, size_t *len)
{
    if (is_list)
        return rc_envelope_list_encode(r->st.codec, v, r->st.ttl, text, len);
    return rc_envelope_encode(r->st.codec, v, r->st.ttl, text, len);
}

/* ---- Redis steps ---- */

enum lookup_result {
    LK_UNAVAILABLE, /* Redis not reachable: use the fallback */
    LK_HIT,         /* *val holds the value */
    LK_NEGATIVE,    /* the negative entry exists */
    LK_FOREIGN,     /* the key holds something that is not a string */
    LK_MISS         /* *leased tells whether we hold the lease */
};

/* On LK_HIT, *hit holds the reply (the value is (*hit)->element[1]); the
 * caller frees it with freeReplyObject. */
static enum lookup_result lookup(cached_repo *r, const char *key,
                                 const char *lease, const char *neg,
                                 const char *token, redisReply **hit,
                                 bool *leased)
{
    const char *keys[3] = {key, lease, neg};
    char ms[24];
    snprintf(ms, sizeof ms, "%d", r->lease_ms);
    const char *args[2] = {token, ms};
    redisReply *rep = NULL;
    enum lookup_result res;
    *hit = NULL;
    *leased = false;
    if (rc_cache_eval(r->cache, LOOKUP_LUA, neg ? 3 : 2, keys, 2, args, NULL,
                      &rep) != RC_OK ||
        !rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER) {
        count(&r->errors);
        freeReplyObject(rep);
        return LK_UNAVAILABLE;
    }
    long long kind = rep->element[0]->integer;
    if (kind == 1 && rep->elements == 2 &&
        rep->element[1]->type == REDIS_REPLY_STRING) {
        *hit = rep; /* decoded in place: no copy of the value */
        return LK_HIT;
    }
    if (kind == 2)
        res = LK_NEGATIVE;
    else if (kind == 3)
        res = LK_FOREIGN;
    else {
        res = LK_MISS;
        *leased = rep->elements == 2 &&
                  rep->element[1]->type == REDIS_REPLY_INTEGER &&
                  rep->element[1]->integer == 1;
    }
    freeReplyObject(rep);
    return res;
}

/* Stores val under target if lease still holds token. Counts a rejection. */
static void fill(cached_repo *r, const char *target, const char *lease,
                 const char *token, const char *val, size_t len, int ttl)
{
    const char *keys[2] = {target, lease};
    char ttls[24];
    snprintf(ttls, sizeof ttls, "%d", ttl);
    const char *args[3] = {token, val, ttls};
    const size_t lens[3] = {strlen(token), len, strlen(ttls)};
    redisReply *rep = NULL;
    if (rc_cache_eval(r->cache, FILL_LUA, 2, keys, 3, args, lens, &rep) !=
            RC_OK ||
        !rep || rep->type != REDIS_REPLY_INTEGER)
        count(&r->errors);
    else if (rep->integer == 0)
        count(&r->stale_fills_rejected);
    freeReplyObject(rep);
}

/* Gives back our lease when there is nothing to fill (so other readers may
 * fill at once rather than after lease_ms). */
static void release(cached_repo *r, const char *lease, const char *token)
{
    const char *keys[1] = {lease};
    const char *args[1] = {token};
    redisReply *rep = NULL;
    if (rc_cache_eval(r->cache, RELEASE_LUA, 1, keys, 1, args, NULL, &rep) !=
            RC_OK ||
        !rep || rep->type != REDIS_REPLY_INTEGER)
        count(&r->errors);
    freeReplyObject(rep);
}

/* DEL of one key (a value that did not decode). */
static void drop_key(cached_repo *r, const char *key)
{
    if (rc_cache_del(r->cache, key) != RC_OK)
        count(&r->errors);
}

/* ---- the fallback (Redis unusable) ---- */

static uint64_t fb_epoch_now(void)
{
    pthread_mutex_lock(&fb_lock);
    uint64_t e = fb_epoch;
    pthread_mutex_unlock(&fb_lock);
    return e;
}

/* Stores val in the fallback unless a write happened since epoch e. */
static void fb_fill(cached_repo *r, const char *key, const char *val,
                    size_t len, int ttl, uint64_t e)
{
    pthread_mutex_lock(&fb_lock);
    if (fb_epoch == e)
        (void)rc_cache_fallback_set(r->cache, key, val, len, ttl);
    pthread_mutex_unlock(&fb_lock);
}

/* A write: bumps the epoch and removes keys from the fallback. */
static void fb_invalidate(cached_repo *r, const char *const *keys, size_t n)
{
    pthread_mutex_lock(&fb_lock);
    fb_epoch++;
    for (size_t i = 0; i < n; i++)
        rc_cache_fallback_del(r->cache, keys[i]);
    pthread_mutex_unlock(&fb_lock);
}

/* ---- the generic read ---- */

/* How to ask the wrapped repository for the answer of one cache key. */
typedef struct load_req {
    const char *id;              /* find_by_id */
    const char *query;           /* find_by_query (NULL: list_all) */
    const char *const *args;
    size_t nargs;
} load_req;

static int load(cached_repo *r, bool is_list, const load_req *q, void **out)
{
    if (!is_list)
        return rc_repo_find_by_id(r->inner, q->id, out);
    if (!q->query)
        return rc_repo_list_all(r->inner, (rc_list **)out);
    return rc_repo_find_by_query(r->inner, q->query, q->args, q->nargs,
                                 (rc_list **)out);
}

/*
 * What a read stores after loading with status rc: the encoded answer under
 * key, or the negative marker under neg. Returns the text (caller frees) and
 * sets *target, *len and *ttl; NULL when there is nothing to store (an
 * error, not found without negative caching, out of memory).
 */
static char *fill_value(cached_repo *r, bool is_list, int rc,
                        const void *answer, const char *key, const char *neg,
                        const char **target, size_t *len, int *ttl)
{
    char *text = NULL;
    if (rc == RC_OK && encode_value(r, is_list, answer, &text, len) == RC_OK) {
        *target = key;
        *ttl = r->st.ttl;
    } else if (rc == RC_ENOTFOUND && neg && (text = rc_strdup(NEGATIVE_VALUE))) {
        *target = neg;
        *len = strlen(text);
        *ttl = r->st.negative_ttl;
    }
    if (text && r->hook)
        r->hook(r->hook_ud, key);
    return text;
}

/* Decodes a cached value; a failure is counted, the key dropped, false. */
static bool take_hit(cached_repo *r, bool is_list, const char *key,
                     const char *val, size_t len, bool from_fallback,
                     void **out)
{
    if (decode_value(r, is_list, val, len, out) == RC_OK) {
        count(&r->hits);
        return true;
    }
    *out = NULL;
    count(&r->decode_errors);
    if (from_fallback)
        rc_cache_fallback_del(r->cache, key);
    else
        drop_key(r, key);
    return false;
}

/* Read through the fallback while Redis is unusable. */
static int read_fallback(cached_repo *r, bool is_list, const char *key,
                         const char *neg, const load_req *q, void **out)
{
    char *val = NULL;
    size_t len = 0;
    if (rc_cache_fallback_get(r->cache, key, &val, &len) == RC_OK) {
        bool ok = take_hit(r, is_list, key, val, len, true, out);
        free(val);
        if (ok)
            return RC_OK;
    }
    if (neg && rc_cache_fallback_get(r->cache, neg, &val, &len) == RC_OK) {
        free(val);
        count(&r->hits);
        count(&r->negative_hits);
        return RC_ENOTFOUND;
    }
    count(&r->misses);
    uint64_t e = fb_epoch_now();
    int rc = load(r, is_list, q, out);
    const char *target = NULL;
    int ttl = 0;
    char *text = r->st.cache_on_read ? fill_value(r, is_list, rc, *out, key,
                                                  neg, &target, &len, &ttl)
                                     : NULL;
    if (text)
        fb_fill(r, target, text, len, ttl, e);
    free(text);
    return rc;
}

/*
 * The one read path: key is the full cache key; neg the negative entry
 * (find by id with negative caching on) or NULL; q says how to load.
 */
static int cached_read(cached_repo *r, bool is_list, const char *key,
                       const char *neg, const load_req *q, void **out)
{
    char *lease = lease_key(r, key);
    char token[RC_TOKEN_LEN + 1] = ""; /* "": take no lease (cache_on_read off) */
    bool leased = false;
    int rc;
    if (!lease) /* out of memory: no caching this time */
        return load(r, is_list, q, out);
    if (r->st.cache_on_read)
        rc_token_hex(token);
    /* A value that does not decode is dropped and looked up once more
     * (taking the lease then); garbage twice: read through, no fill. */
    for (int attempt = 0; attempt < 2; attempt++) {
        redisReply *hit = NULL;
        enum lookup_result lk =
            rc_cache_redis_usable(r->cache)
                ? lookup(r, key, lease, neg, token, &hit, &leased)
                : LK_UNAVAILABLE;
        if (lk == LK_UNAVAILABLE) {
            rc = read_fallback(r, is_list, key, neg, q, out);
            goto done;
        }
        if (lk == LK_NEGATIVE) {
            count(&r->hits);
            count(&r->negative_hits);
            rc = RC_ENOTFOUND;
            goto done;
        }
        if (lk == LK_MISS)
            break;
        if (lk == LK_HIT) {
            bool ok = take_hit(r, is_list, key, hit->element[1]->str,
                               hit->element[1]->len, false, out);
            freeReplyObject(hit);
            if (ok) {
                rc = RC_OK;
                goto done;
            }
        } else { /* LK_FOREIGN */
            count(&r->decode_errors);
            drop_key(r, key);
        }
    }
    count(&r->misses);
    rc = load(r, is_list, q, out);
    if (leased) {
        const char *target = NULL;
        size_t len = 0;
        int ttl = 0;
        char *text = fill_value(r, is_list, rc, *out, key, neg, &target, &len,
                                &ttl);
        if (text)
            fill(r, target, lease, token, text, len, ttl);
        else
            release(r, lease, token);
        free(text);
    }
done:
    free(lease);
    return rc;
}

/* ---- read slots ---- */

static cached_repo *self(rc_repo *base) { return (cached_repo *)base; }

static int cached_find_by_id(rc_repo *base, const char *id, void **out)
{
    cached_repo *r = self(base);
    char *key = NULL, *neg = NULL;
    load_req q = {.id = id};
    *out = NULL;
    if (rc_strategy_key_id(&r->st, r->prefix, id, &key) != RC_OK) {
        rc_clearerr();
        return rc_repo_find_by_id(r->inner, id, out); /* its status */
    }
    if (r->st.negative_ttl > 0 && !(neg = negative_key(r, key))) {
        free(key);
        return rc_repo_find_by_id(r->inner, id, out);
    }
    int rc = cached_read(r, false, key, neg, &q, out);
    free(key);
    free(neg);
    return rc;
}

static int cached_list_all(rc_repo *base, rc_list **out)
{
    cached_repo *r = self(base);
    char *key = NULL;
    load_req q = {0};
    *out = NULL;
    if (rc_strategy_key_all(&r->st, r->prefix, &key) != RC_OK)
        return rc_repo_list_all(r->inner, out);
    int rc = cached_read(r, true, key, NULL, &q, (void **)out);
    free(key);
    return rc;
}

static int cached_find_by_query(rc_repo *base, const char *query,
                                const char *const *args, size_t nargs,
                                rc_list **out)
{
    cached_repo *r = self(base);
    char *key = NULL;
    load_req q = {.query = query, .args = args, .nargs = nargs};
    *out = NULL;
    if (rc_strategy_key_query(&r->st, r->prefix, query, args, nargs, &key) !=
        RC_OK) {
        /* not a query of the strategy (or bad arguments): uncached, and the
         * wrapped repository gives the answer or the error */
        rc_clearerr();
        return rc_repo_find_by_query(r->inner, query, args, nargs, out);
    }
    int rc = cached_read(r, true, key, NULL, &q, (void **)out);
    free(key);
    return rc;
}

/* ---- invalidation ---- */

/* A set of distinct owned key strings. */
typedef struct keyset {
    rc_strset s;
    bool incomplete; /* a key could not be added (out of memory, failed callback) */
} keyset;

/* Adds key (taking it; NULL marks out of memory) unless already present. */
static void ks_take(keyset *s, char *key)
{
    if (rc_strset_take(&s->s, key) != RC_OK)
        s->incomplete = true;
}

static void ks_free(keyset *s) { rc_strset_clear(&s->s); }

/* rc_query_key_fn collecting the key of each query an entity belongs to. */
typedef struct collect_ctx {
    cached_repo *r;
    keyset *data;
} collect_ctx;

static int collect_query_key(void *ud, const char *query,
                             const char *const *args, size_t nargs)
{
    collect_ctx *c = ud;
    char *key = NULL;
    int rc = rc_strategy_key_query(&c->r->st, c->r->prefix, query, args,
                                   nargs, &key);
    if (rc == RC_ENOMEM) {
        c->data->incomplete = true;
        return rc;
    }
    if (rc == RC_OK)
        ks_take(c->data, key);
    else
        rc_clearerr(); /* a query the table lacks: nothing to remove */
    return RC_OK;
}

/*
 * Drops every key of the namespace, or remembers to; returns the count of
 * keys removed (leases not counted) or -1. Two SCAN passes, leases first: a
 * SCAN is not atomic, and a fill holding a lease from before the write could
 * otherwise store its stale value after the data pass went by. Once the
 * lease pass is over no such lease is left, and whatever such a fill stored
 * before that still exists for the data pass to find.
 */
static long long drop_namespace(cached_repo *r)
{
    long long removed = 0;
    fb_invalidate(r, NULL, 0);
    if (rc_cache_clear(r->cache, r->lease_glob, NULL) != RC_OK ||
        rc_cache_clear(r->cache, r->ns_glob, &removed) != RC_OK) {
        count(&r->errors);
        (void)rc_cache_remember_deletes(r->cache, NULL, 0, r->lease_glob);
        (void)rc_cache_remember_deletes(r->cache, NULL, 0, r->ns_glob);
        return -1;
    }
    atomic_fetch_add(&r->invalidations, (uint_fast64_t)removed);
    return removed;
}

/*
 * Deletes the data keys and the lease of each (negative entries have none)
 * in one round trip; with writer_lease, also sets it to writer_token for a
 * cache_on_write fill. *removed = data keys that existed. RC_OK, or
 * RC_EUNAVAILABLE after remembering the deletes for replay.
 */
static int delete_keys(cached_repo *r, keyset *data, const char *writer_lease,
                       const char *writer_token, long long *removed)
{
    keyset leases = {0};
    for (size_t i = 0; i < data->s.n; i++)
        if (strncmp(data->s.items[i] + r->head_len, "~none:", 6) != 0)
            ks_take(&leases, lease_key(r, data->s.items[i]));
    *removed = 0;
    fb_invalidate(r, (const char *const *)data->s.items, data->s.n);
    if (leases.incomplete) {
        ks_free(&leases);
        return drop_namespace(r) < 0 ? RC_EUNAVAILABLE : RC_OK;
    }

    /* argv of both DELs in one buffer: "DEL" leases... "DEL" data... The
     * leases go first: the pipeline is not atomic, and a fill holding an old
     * lease that ran between a data DEL and a lease DEL would store a stale
     * value; a fill between the lease DEL and the data DEL holds a lease
     * taken after the write's commit, so its value is fresh. */
    size_t nd = data->s.n, nl = leases.s.n;
    const char **argv = malloc((nd + nl + 2) * sizeof *argv);
    if (!argv) {
        ks_free(&leases);
        return drop_namespace(r) < 0 ? RC_EUNAVAILABLE : RC_OK;
    }
    argv[0] = "DEL";
    memcpy(argv + 1, leases.s.items, nl * sizeof *argv);
    argv[nl + 1] = "DEL";
    memcpy(argv + nl + 2, data->s.items, nd * sizeof *argv);
    char ms[24];
    snprintf(ms, sizeof ms, "%d", r->lease_ms);
    const char *set[5] = {"SET", writer_lease, writer_token, "PX", ms};
    rc_cmd cmds[3];
    size_t ncmd = 0, data_cmd;
    if (nl)
        cmds[ncmd++] = (rc_cmd){(int)nl + 1, argv, NULL};
    data_cmd = ncmd;
    cmds[ncmd++] = (rc_cmd){(int)nd + 1, argv + nl + 1, NULL};
    if (writer_lease)
        cmds[ncmd++] = (rc_cmd){5, set, NULL};
    redisReply *rep[3] = {NULL, NULL, NULL};
    int rc = rc_cache_exec(r->cache, cmds, ncmd, rep);
    bool ok = rc == RC_OK;
    for (size_t i = 0; i < ncmd && ok; i++)
        ok = rep[i] && rep[i]->type != REDIS_REPLY_ERROR;
    if (ok) {
        *removed = rep[data_cmd]->integer;
        atomic_fetch_add(&r->invalidations, (uint_fast64_t)*removed);
    } else {
        /* remember leases and data keys (argv minus the two "DEL"s) */
        count(&r->errors);
        memmove(argv + nl + 1, argv + nl + 2, nd * sizeof *argv);
        if (rc_cache_remember_deletes(r->cache, argv + 1, nd + nl,
                                      r->ns_glob) != RC_OK)
            (void)rc_cache_remember_deletes(r->cache, NULL, 0, r->ns_glob);
        rc = RC_EUNAVAILABLE;
    }
    for (size_t i = 0; i < ncmd; i++)
        freeReplyObject(rep[i]);
    free(argv);
    ks_free(&leases);
    return rc;
}

/* Adds the by-id key and negative entry of id to s; returns the by-id key
 * (owned by s) or NULL. */
static const char *add_id_keys(cached_repo *r, keyset *s, const char *id)
{
    char *key = NULL;
    if (rc_strategy_key_id(&r->st, r->prefix, id, &key) != RC_OK) {
        rc_clearerr();
        return NULL;
    }
    ks_take(s, negative_key(r, key));
    ks_take(s, key);
    return s->incomplete ? NULL : key;
}

/* cache_on_write: re-reads id from the wrapped repository and fills through
 * the lease the invalidation took for us. */
static void write_fill(cached_repo *r, const char *id, const char *key,
                       const char *token)
{
    void *e = NULL;
    char *lease = lease_key(r, key);
    if (lease && rc_repo_find_by_id(r->inner, id, &e) == RC_OK) {
        size_t len = 0;
        char *text = NULL;
        if (encode_value(r, false, e, &text, &len) == RC_OK)
            fill(r, key, lease, token, text, len, r->st.ttl);
        free(text);
    }
    if (e)
        r->st.entity->free(e);
    free(lease);
    rc_clearerr();
}

/*
 * After a successful write of the entity with id: removes every key whose
 * answer may have changed. old/new are the entity before and after (either
 * NULL); old_known is false when the wrapped repository could not tell the
 * old values (then the whole namespace goes). Never fails the write.
 */
static void after_write(cached_repo *r, const char *id, const void *old,
                        bool old_known, const void *new, bool fill_after)
{
    keyset data = {0};
    collect_ctx cc = {r, &data};
    const char *idkey = NULL;
    char *all = NULL;
    char token[RC_TOKEN_LEN + 1] = "";
    long long removed = 0;

    if (!old_known || !id || !r->st.query_keys) {
        drop_namespace(r);
        return;
    }
    idkey = add_id_keys(r, &data, id);
    if (rc_strategy_key_all(&r->st, r->prefix, &all) == RC_OK)
        ks_take(&data, all);
    else
        data.incomplete = true;
    /* a callback that fails leaves the list incomplete: drop everything */
    if ((old && r->st.query_keys(old, collect_query_key, &cc) != RC_OK) ||
        (new && r->st.query_keys(new, collect_query_key, &cc) != RC_OK))
        data.incomplete = true;
    if (!idkey || data.incomplete) {
        ks_free(&data);
        drop_namespace(r);
        return;
    }
    fill_after = fill_after && r->st.cache_on_write;
    char *wlease = fill_after ? lease_key(r, idkey) : NULL;
    fill_after = fill_after && wlease;
    if (fill_after)
        rc_token_hex(token);
    int rc = delete_keys(r, &data, fill_after ? wlease : NULL, token, &removed);
    if (rc == RC_OK && fill_after)
        write_fill(r, id, idkey, token);
    free(wlease);
    ks_free(&data);
}

/* ---- write slots ---- */

static int cached_save(rc_repo *base, const void *entity, void **saved)
{
    cached_repo *r = self(base);
    void *s = NULL;
    if (saved)
        *saved = NULL;
    int rc = rc_repo_save(r->inner, entity, &s);
    if (rc != RC_OK)
        return rc;
    const void *now = s ? s : entity;
    after_write(r, r->st.entity->get_id(now), NULL, true, now, true);
    if (saved)
        *saved = s;
    else if (s)
        r->st.entity->free(s);
    return rc;
}

static int cached_update(rc_repo *base, const void *entity, void **stored,
                         void **previous)
{
    cached_repo *r = self(base);
    void *s = NULL, *p = NULL;
    if (stored)
        *stored = NULL;
    if (previous)
        *previous = NULL;
    int rc = rc_repo_update(r->inner, entity, &s, &p);
    if (rc != RC_OK)
        return rc;
    const void *now = s ? s : entity;
    after_write(r, r->st.entity->get_id(now), p, p != NULL, now, true);
    if (stored)
        *stored = s;
    else if (s)
        r->st.entity->free(s);
    if (previous)
        *previous = p;
    else if (p)
        r->st.entity->free(p);
    return rc;
}

static int cached_remove(rc_repo *base, const char *id, void **previous)
{
    cached_repo *r = self(base);
    void *p = NULL;
    if (previous)
        *previous = NULL;
    int rc = rc_repo_remove(r->inner, id, &p);
    if (rc != RC_OK)
        return rc;
    after_write(r, id, p, p != NULL, NULL, false);
    if (previous)
        *previous = p;
    else if (p)
        r->st.entity->free(p);
    return rc;
}

/* ---- lifecycle ---- */

static const rc_repo_methods cached_methods = {
    .version = RC_REPO_VERSION,
    .name = "cached",
    .find_by_id = cached_find_by_id,
    .list_all = cached_list_all,
    .find_by_query = cached_find_by_query,
    .save = cached_save,
    .update = cached_update,
    .remove = cached_remove,
    .destroy = cached_destroy,
};

static void cached_destroy(rc_repo *base)
{
    cached_repo *r = self(base);
    if (!r)
        return;
    if (r->own_inner)
        rc_repo_destroy(r->inner);
    free(r->ns_glob);
    free(r->lease_glob);
    free(r);
}

bool rc_is_cached_repo(const rc_repo *r)
{
    return r && r->methods && r->methods->destroy == cached_destroy;
}

rc_repo *rc_cached_repo_inner(rc_repo *r)
{
    return rc_is_cached_repo(r) ? self(r)->inner : NULL;
}

/* Our table with a NULL slot wherever the wrapped repository has none. */
static void mirror_slots(rc_repo_methods *m, const rc_repo *inner)
{
    const rc_repo_methods *im = inner->methods;
    *m = cached_methods;
#define MIRROR_(slot)                                                          \
    if (!im || im->version < 1 || !im->slot)                                   \
        m->slot = NULL;
    MIRROR_(find_by_id)
    MIRROR_(list_all)
    MIRROR_(find_by_query)
    MIRROR_(save)
    MIRROR_(update)
    MIRROR_(remove)
#undef MIRROR_
}

int rc_cached_repo_new(rc_repo *inner, rc_cache *cache, const rc_strategy *st,
                       const rc_cached_repo_options *opt, rc_repo **out)
{
    bool own = opt && opt->own_inner;
    int rc = RC_OK;
    cached_repo *r = NULL;
    char *ens = NULL;
    if (out)
        *out = NULL;
    if (!out || !inner || !cache)
        rc = rc_seterr(RC_EINVAL, "cached repo: inner, cache and out are required");
    else if ((rc = rc_strategy_check(st)) != RC_OK)
        ;
    else if (inner->entity && inner->entity != st->entity)
        rc = rc_seterr(RC_EINVAL, "cached repo: strategy %s does not match the "
                                  "wrapped repository's entity %s",
                       st->ns, inner->entity->name ? inner->entity->name : "?");
    else if (opt && opt->lease_ms < 0)
        rc = rc_seterr(RC_EINVAL, "cached repo: lease_ms must be >= 0");
    else if (!(r = calloc(1, sizeof *r)) ||
             rc_cache_glob_escape(st->ns, &ens) != RC_OK ||
             !(r->ns_glob = malloc(strlen(ens) + 3)) ||
             !(r->lease_glob = malloc(strlen(ens) + 10))) {
        rc = rc_seterr(RC_ENOMEM, "cached repo: out of memory");
    }
    if (rc != RC_OK) {
        free(ens);
        if (r) {
            free(r->ns_glob);
            free(r);
        }
        if (own)
            rc_repo_destroy(inner);
        return rc;
    }
    sprintf(r->ns_glob, "%s:*", ens);
    sprintf(r->lease_glob, "%s:~lease:*", ens);
    free(ens);
    mirror_slots(&r->methods, inner);
    r->base.methods = &r->methods;
    r->base.entity = st->entity;
    r->inner = inner;
    r->cache = cache;
    r->st = *st;
    r->own_inner = own;
    r->lease_ms = opt && opt->lease_ms > 0 ? opt->lease_ms : DEFAULT_LEASE_MS;
    r->hook = opt ? opt->fill_hook : NULL;
    r->hook_ud = opt ? opt->fill_hook_ud : NULL;
    r->prefix = rc_cache_prefix(cache);
    r->head_len = strlen(r->prefix) + strlen(st->ns) + 1;
    *out = &r->base;
    return RC_OK;
}

/* ---- manual invalidation ---- */

int rc_cached_repo_invalidate(rc_repo *base, const char *scope,
                              const char *const *args, size_t nargs,
                              long long *removed)
{
    long long n = 0;
    keyset data = {0};
    int rc = RC_OK;
    if (removed)
        *removed = 0;
    if (!rc_is_cached_repo(base) || !scope)
        return rc_seterr(RC_EINVAL, "invalidate: not a cached repository or no scope");
    cached_repo *r = self(base);
    if (strcmp(scope, "all") == 0) {
        if (nargs)
            return rc_seterr(RC_EINVAL, "invalidate all: takes no arguments");
        n = drop_namespace(r);
        rc = n < 0 ? RC_EUNAVAILABLE : RC_OK;
    } else {
        if (strcmp(scope, "by_id") == 0) {
            if (nargs != 1 || !args || !args[0])
                return rc_seterr(RC_EINVAL, "invalidate by_id: takes one id");
            if (rc_id_validate(args[0]) != RC_OK)
                return RC_EINVAL;
            add_id_keys(r, &data, args[0]);
        } else {
            char *key = NULL;
            rc = rc_strategy_key_query(&r->st, r->prefix, scope, args, nargs,
                                       &key);
            if (rc != RC_OK)
                return rc;
            ks_take(&data, key);
        }
        if (data.incomplete)
            rc = rc_seterr(RC_ENOMEM, "invalidate: out of memory");
        else
            rc = delete_keys(r, &data, NULL, NULL, &n);
        ks_free(&data);
    }
    if (removed)
        *removed = n < 0 ? 0 : n;
    return rc;
}

/* ---- statistics ---- */

int rc_cached_repo_get_stats(rc_repo *base, rc_cached_repo_stats *st)
{
    if (!rc_is_cached_repo(base) || !st)
        return rc_seterr(RC_EINVAL, "stats: not a cached repository");
    cached_repo *r = self(base);
    char *all = NULL;
    long long ttl = -2;
    memset(st, 0, sizeof *st);
    st->entity_type = r->st.ns;
    st->default_ttl = r->st.ttl;
    st->cache_on_read = r->st.cache_on_read;
    st->cache_on_write = r->st.cache_on_write;
    int rc = rc_strategy_key_all(&r->st, r->prefix, &all);
    if (rc != RC_OK)
        return rc;
    if (rc_cache_ttl(r->cache, all, &ttl) != RC_OK)
        ttl = -2;
    free(all);
    st->all_cached = ttl != -2;
    st->all_ttl_remaining = ttl;
    st->hits = atomic_load(&r->hits);
    st->misses = atomic_load(&r->misses);
    st->hit_rate = st->hits + st->misses
                       ? (double)st->hits / (double)(st->hits + st->misses)
                       : 0.0;
    st->negative_hits = atomic_load(&r->negative_hits);
    st->errors = atomic_load(&r->errors);
    st->decode_errors = atomic_load(&r->decode_errors);
    st->invalidations = atomic_load(&r->invalidations);
    st->stale_fills_rejected = atomic_load(&r->stale_fills_rejected);
    return rc_cache_get_stats(r->cache, &st->cache);
}

int rc_cached_repo_stats_json(rc_repo *base, char **json)
{
    rc_cached_repo_stats st;
    char *cache_json = NULL;
    json_t *o = NULL, *cj = NULL;
    if (!json)
        return rc_seterr(RC_EINVAL, "stats: json is NULL");
    *json = NULL;
    int rc = rc_cached_repo_get_stats(base, &st);
    if (rc != RC_OK)
        return rc;
    rc = rc_cache_stats_json(self(base)->cache, &cache_json);
    if (rc != RC_OK)
        return rc;
    cj = json_loads(cache_json, 0, NULL);
    free(cache_json);
    o = json_pack("{s:s, s:i, s:b, s:I, s:b, s:b, s:I, s:I, s:f, s:I, s:I, "
                  "s:I, s:I, s:I}",
                  "entity_type", st.entity_type, "default_ttl", st.default_ttl,
                  "all_cached", st.all_cached, "all_ttl_remaining",
                  (json_int_t)st.all_ttl_remaining, "cache_on_read",
                  st.cache_on_read, "cache_on_write", st.cache_on_write,
                  "hits", (json_int_t)st.hits, "misses", (json_int_t)st.misses,
                  "hit_rate", st.hit_rate, "negative_hits",
                  (json_int_t)st.negative_hits, "errors",
                  (json_int_t)st.errors, "decode_errors",
                  (json_int_t)st.decode_errors, "invalidations",
                  (json_int_t)st.invalidations, "stale_fills_rejected",
                  (json_int_t)st.stale_fills_rejected);
    rc = RC_ENOMEM;
    if (!o || !cj)
        json_decref(cj);
    /* json_object_set_new takes cj even when it fails (jansson frees it
     * then): cj is not ours to release after the call */
    else if (json_object_set_new(o, "cache", cj) == 0)
        /* dumped into our own buffer: the caller frees it with free(),
         * whatever allocator jansson was given */
        rc = rc_json_dump(o, 0, json, NULL);
    json_decref(o);
    return rc ? rc_seterr(RC_ENOMEM, "stats: out of memory") : RC_OK;
}
