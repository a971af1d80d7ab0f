/*
 * cached_repository.c - the cached decorator (repocache/cached_repository.h):
 * one generic implementation for every entity; what differs per entity is
 * the strategy (keys, TTL, flags, codec), which is data. The decorator
 * builds keys, counts, forwards to the wrapped repository, encodes and
 * decodes with the codec, and leaves the fencing to the cache layer's lease
 * protocol (cache/lease.h). This file: lifecycle and the read path; the
 * auxiliary keys are in cached_keys.c, writes in cached_invalidate.c,
 * statistics in cached_stats.c.
 *
 * Fencing (full design in docs/consistency.md). Keys, for a data key
 * K = P + ns + ":" + rest:
 *     lease of K     P + ns + ":~lease:{T}" + rest   (token, PX lease_ms)
 *     negative entry P + ns + ":~none:{T}" + id      (covered by the by-id lease)
 *     (T names K's Redis Cluster slot: cached_keys.c)
 * Read:  rc_lease_lookup: value, or negative entry, or SET lease NX PX (one
 *        round trip) -> database -> rc_lease_fill: SET value EX ttl only if
 *        the lease still holds our token, then DEL lease (one round trip).
 * Write: database -> rc_lease_delete, one pipeline: DEL the leases; DEL the
 *        data keys (in that order); [cache_on_write: SET by-id lease to our
 *        token] -> [re-read the database, fill through that lease].
 * A write deletes the lease of every key whose answer it may change, so a
 * reader that read the database before the write cannot fill afterwards;
 * a fill that succeeds holds a lease taken after the write's delete, hence
 * its database read saw the write.
 *
 * While Redis is unusable, reads use the service's process-local fallback;
 * fills there are fenced by the service's write epoch (rc_cache_fence_epoch),
 * which writers bump while deleting their keys from the fallback.
 */
#include "repository/cached.h"

#include "cache/lease.h"
#include "core/clock.h"
#include "core/pack.h"
#include "core/str.h"
#include "core/token.h"
#include "repocache/codec.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_LEASE_MS 5000
#define NEGATIVE_VALUE "1"

static void cached_destroy(rc_repo *base);

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

int rc_cached_encode(const cached_repo *r, bool is_list, const void *v,
                     char **text, size_t *len)
{
    int rc = is_list
                 ? rc_envelope_list_encode(r->st.codec, v, r->st.ttl, text, len)
                 : rc_envelope_encode(r->st.codec, v, r->st.ttl, text, len);
    if (rc == RC_OK && rc_cache_value_oversized(r->cache, *len)) {
        free(*text); /* never cached (CACHE_MAX_VALUE_BYTES) */
        *text = NULL;
        return RC_EINVAL;
    }
    return rc;
}

bool rc_cached_fill(cached_repo *r, const char *target, const char *lease,
                    const char *token, const char *val, size_t len, int ttl)
{
    switch (rc_lease_fill(r->cache, target, lease, token, val, len, ttl)) {
    case RC_LEASE_STORED:
        rc_metrics_count(r->m, RC_M_fills);
        return true;
    case RC_LEASE_REJECTED:
        rc_metrics_count(r->m, RC_M_stale_fills_rejected);
        break;
    case RC_LEASE_NOT_SENT:
        rc_metrics_count(r->m, RC_M_errors);
        break;
    }
    return false;
}

/* DEL of one key (a value that did not decode). */
static void drop_key(cached_repo *r, const char *key)
{
    if (rc_cache_del(r->cache, key) != RC_OK)
        rc_metrics_count(r->m, RC_M_errors);
}

/* ---- the generic read ---- */

/* How to ask the wrapped repository for the answer of one cache key. */
typedef struct load_req {
    const char *id;          /* find_by_id */
    const char *query;       /* find_by_query (NULL: list_all) */
    const char *const *args; /* the query's arguments */
    size_t nargs;            /* how many */
} load_req;

/* The wrapped repository's answer to q, in *out; its status. */
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
    if (rc == RC_OK &&
        rc_cached_encode(r, is_list, answer, &text, len) == RC_OK) {
        *target = key;
        *ttl = r->st.ttl;
    } else if (rc == RC_ENOTFOUND && neg &&
               (text = rc_strdup(NEGATIVE_VALUE))) {
        *target = neg;
        *len = strlen(text);
        *ttl = r->st.negative_ttl;
    }
    if (text && r->hook)
        r->hook(r->hook_ud, key);
    return text;
}

/* Keeps a copy of v, the answer under key as Redis holds it now (for
 * pttl_ms more: -1 none, -2 gone), in the near cache through f. */
static void tier_keep(cached_repo *r, bool is_list, const char *key,
                      rc_tier_fill *f, const void *v, size_t size,
                      long long pttl_ms)
{
    if (!f->ticket || pttl_ms == -2 || pttl_ms == 0) {
        rc_cache_tier_abandon(r->cache, key, f);
        return;
    }
    rc_near_value nv = {.kind = is_list ? RC_NEAR_LIST : RC_NEAR_ENTITY,
                        .ops = r->st.entity};
    nv.ptr = is_list ? (void *)rc_list_pack(v) : rc_entity_pack(r->st.entity, v);
    if (!nv.ptr) {
        rc_cache_tier_abandon(r->cache, key, f);
        return;
    }
    double ttl = pttl_ms < 0 ? (double)r->st.ttl : (double)pttl_ms / 1000.0;
    rc_cache_tier_put(r->cache, key, f, &nv, size, ttl);
}

/* Decodes a cached value; a failure is counted, the key dropped, false. */
static bool take_hit(cached_repo *r, bool is_list, const char *key,
                     const char *val, size_t len, bool from_fallback,
                     void **out)
{
    if (decode_value(r, is_list, val, len, out) == RC_OK)
        return true;
    *out = NULL;
    rc_metrics_decode_error(r->m, key);
    if (from_fallback)
        rc_cache_fallback_del(r->cache, key);
    else
        drop_key(r, key);
    return false;
}

/* Read through the fallback while Redis is unusable. */
static int read_fallback(cached_repo *r, bool is_list, const char *key,
                         const char *neg, const load_req *q, void **out,
                         rc_read_how *how)
{
    char *val = NULL;
    size_t len = 0;
    how->tier = RC_TIER_FALLBACK;
    if (rc_cache_fallback_get(r->cache, key, &val, &len) == RC_OK) {
        bool ok = take_hit(r, is_list, key, val, len, true, out);
        free(val);
        if (ok) {
            how->outcome = RC_OUTCOME_HIT;
            return RC_OK;
        }
    }
    if (neg && rc_cache_fallback_get(r->cache, neg, &val, &len) == RC_OK) {
        free(val);
        how->outcome = RC_OUTCOME_NEGATIVE_HIT;
        return RC_ENOTFOUND;
    }
    how->outcome = RC_OUTCOME_MISS;
    uint64_t e = rc_cache_fence_epoch(r->cache);
    int rc = load(r, is_list, q, out);
    const char *target = NULL;
    int ttl = 0;
    char *text = r->st.cache_on_read ? fill_value(r, is_list, rc, *out, key,
                                                  neg, &target, &len, &ttl)
                                     : NULL;
    if (text)
        (void)rc_cache_fallback_fill_fenced(r->cache, target, text, len, ttl,
                                            e);
    free(text);
    return rc;
}

/* A read that is not over after the lookup: go on to the database. */
#define READ_GO_ON 1

/*
 * Looks key up, at most twice: a value that does not decode is dropped and
 * looked up once more (taking the lease then); garbage twice: read through,
 * no fill. Returns the read's status when the lookup answered it (a hit, a
 * negative hit, or the fallback's read), else READ_GO_ON with *leased, and
 * *filling when another reader holds the lease (it is loading the value).
 */
static int read_lookup(cached_repo *r, bool is_list, const char *key,
                       const char *lease, const char *neg, const char *token,
                       const load_req *q, void **out, bool *leased,
                       bool *filling, rc_tier_fill *f, rc_read_how *how)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        rc_lease_hit hit;
        rc_lease_found lk = rc_lease_lookup(r->cache, key, lease, neg, token,
                                            r->lease_ms, &hit, leased);
        if (lk == RC_LEASE_FAILED)
            rc_metrics_count(r->m, RC_M_errors);
        if (lk == RC_LEASE_DOWN || lk == RC_LEASE_FAILED)
            return read_fallback(r, is_list, key, neg, q, out, how);
        if (lk == RC_LEASE_NEGATIVE) {
            how->outcome = RC_OUTCOME_NEGATIVE_HIT;
            return RC_ENOTFOUND;
        }
        if (lk == RC_LEASE_MISS || lk == RC_LEASE_FILLING) {
            *filling = lk == RC_LEASE_FILLING;
            break;
        }
        if (lk == RC_LEASE_HIT) {
            bool ok = take_hit(r, is_list, key, hit.val, hit.len, false, out);
            if (ok)
                tier_keep(r, is_list, key, f, *out, hit.len, hit.pttl);
            rc_lease_hit_free(&hit);
            if (ok) {
                how->outcome = RC_OUTCOME_HIT;
                return RC_OK;
            }
        } else { /* RC_LEASE_FOREIGN */
            rc_metrics_decode_error(r->m, key);
            drop_key(r, key);
        }
    }
    return READ_GO_ON;
}

/* Pauses between two looks while another reader fills, seconds: the first
 * about a round trip and a database read (a writer's cache_on_write refill
 * holds the lease that long), doubling to the longest. */
#define AWAIT_PAUSE_MIN 0.0001
#define AWAIT_PAUSE_MAX 0.05

/*
 * The lease of key is another reader's (in any process): look again with
 * growing pauses (AWAIT_PAUSE_MIN, doubling to AWAIT_PAUSE_MAX) until its value
 * (or not found) is there, or the lease is free and we take it (*leased), or
 * lease_ms passed (READ_GO_ON without the lease: the database, no fill, as
 * when nobody waits). Returns as read_lookup.
 */
static int await_filler(cached_repo *r, bool is_list, const char *key,
                        const char *lease, const char *neg, const char *token,
                        const load_req *q, void **out, bool *leased,
                        rc_tier_fill *f, rc_read_how *how)
{
    double deadline = rc_clock_monotonic(NULL) + (double)r->lease_ms / 1000.0;
    double pause = AWAIT_PAUSE_MIN;
    rc_metrics_count(r->m, RC_M_lease_waits);
    for (;;) {
        double left = deadline - rc_clock_monotonic(NULL);
        if (left <= 0)
            return READ_GO_ON;
        rc_clock_sleep(pause < left ? pause : left);
        bool filling = false;
        int rc = read_lookup(r, is_list, key, lease, neg, token, q, out, leased,
                             &filling, f, how);
        if (rc != READ_GO_ON || !filling)
            return rc; /* answered, or the lease is ours or free: go on */
        pause = pause * 2 < AWAIT_PAUSE_MAX ? pause * 2 : AWAIT_PAUSE_MAX;
    }
}

/* Redis, then the database: the read after a near-cache miss; f is the
 * near cache's claim on key (empty when it does not serve); with_neg: key
 * has a negative entry; *how says where it ended (a miss of Redis unless a
 * step says otherwise). */
static int read_through(cached_repo *r, bool is_list, const char *key,
                        bool with_neg, const load_req *q, void **out,
                        rc_tier_fill *f, rc_read_how *how)
{
    char *lease = rc_cached_lease_key(r, key);
    char *neg = with_neg ? rc_cached_negative_key(r, key) : NULL;
    char token[RC_TOKEN_LEN + 1] = ""; /* "": take no lease */
    bool leased = false;
    if (!lease || (with_neg && !neg)) { /* out of memory: no caching this time */
        free(lease);
        free(neg);
        return load(r, is_list, q, out);
    }
    if (r->st.cache_on_read)
        rc_token_hex(token);
    bool filling = false;
    int rc = read_lookup(r, is_list, key, lease, neg, token, q, out, &leased,
                         &filling, f, how);
    if (rc == READ_GO_ON && filling)
        rc = await_filler(r, is_list, key, lease, neg, token, q, out, &leased, f, how);
    if (rc != READ_GO_ON) {
        free(lease);
        free(neg);
        return rc;
    }
    rc = load(r, is_list, q, out);
    if (leased) {
        const char *target = NULL;
        size_t len = 0;
        int ttl = 0;
        char *text =
            fill_value(r, is_list, rc, *out, key, neg, &target, &len, &ttl);
        /* Not kept in the near cache: our own SET invalidates the key, and
         * the next read takes it from Redis (a hit) into the near cache. */
        if (text)
            rc_cached_fill(r, target, lease, token, text, len, ttl);
        else if (!rc_lease_release(r->cache, lease, token))
            rc_metrics_count(r->m, RC_M_errors);
        free(text);
    }
    free(lease);
    free(neg);
    return rc;
}

/*
 * The one read path: key is the full cache key; with_neg: it has a negative
 * entry (find by id with negative caching on); q says how to load. The
 * near cache first (a hit there is a copy, no I/O), then Redis, then the
 * database; concurrent misses of key in this process wait for one load.
 */
static int cached_read(cached_repo *r, bool is_list, const char *key,
                       bool with_neg, const load_req *q, void **out)
{
    uint64_t began = rc_histogram_now_ns(), t0 = rc_metrics_start_at(r->m, began);
    rc_tier_fill f = {.packed = r->packed, .began_ns = began};
    rc_near_value nv;
    rc_read_how how = {RC_TIER_REDIS, RC_OUTCOME_MISS};
    double wait_s = (double)r->lease_ms / 1000.0;
    int rc = READ_GO_ON;
    if (rc_cache_tier_begin(r->cache, key, wait_s, &nv, &f) == RC_NEAR_HIT) {
        if (nv.kind == (is_list ? RC_NEAR_LIST : RC_NEAR_ENTITY)) {
            *out = nv.ptr;
            how = (rc_read_how){RC_TIER_NEAR, RC_OUTCOME_HIT};
            rc = RC_OK;
        } else
            rc_near_value_clear(&nv);
    }
    if (rc == READ_GO_ON) {
        rc = read_through(r, is_list, key, with_neg, q, out, &f, &how);
        rc_cache_tier_abandon(r->cache, key, &f);
    }
    rc_metrics_read(r->m, how.tier, how.outcome, t0); /* the one count of a read */
    return rc;
}

/* ---- read slots ---- */

/* find_by_id: the by-id key, with its negative entry when negative caching
 * is on; uncached when a key cannot be built. */
static int cached_find_by_id(rc_repo *base, const char *id, void **out)
{
    cached_repo *r = rc_cached_self(base);
    char buf[256], *key = NULL;
    load_req q = {.id = id};
    *out = NULL;
    if (rc_cached_key_id(r, id, buf, sizeof buf, &key) != RC_OK) {
        rc_clearerr();
        return rc_repo_find_by_id(r->inner, id, out); /* its status */
    }
    int rc = cached_read(r, false, key, r->st.negative_ttl > 0, &q, out);
    if (key != buf)
        free(key);
    return rc;
}

/* list_all: the "all" key. */
static int cached_list_all(rc_repo *base, rc_list **out)
{
    cached_repo *r = rc_cached_self(base);
    char *key = NULL;
    load_req q = {0};
    *out = NULL;
    if (rc_strategy_key_all(&r->st, r->prefix, &key) != RC_OK)
        return rc_repo_list_all(r->inner, out);
    int rc = cached_read(r, true, key, false, &q, (void **)out);
    free(key);
    return rc;
}

/* find_by_query: the query's key, when the strategy has the query. */
static int cached_find_by_query(rc_repo *base, const char *query,
                                const char *const *args, size_t nargs,
                                rc_list **out)
{
    cached_repo *r = rc_cached_self(base);
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
    int rc = cached_read(r, true, key, false, &q, (void **)out);
    free(key);
    return rc;
}

/* ---- lifecycle ---- */

static const rc_repo_methods cached_methods = {
    .version = RC_REPO_VERSION,
    .name = "cached",
    .find_by_id = cached_find_by_id,
    .list_all = cached_list_all,
    .find_by_query = cached_find_by_query,
    .save = rc_cached_save,
    .update = rc_cached_update,
    .remove = rc_cached_remove,
    .destroy = cached_destroy,
};

/* destroy: frees the decorator (and the wrapped repository if owned). */
static void cached_destroy(rc_repo *base)
{
    cached_repo *r = rc_cached_self(base);
    if (!r)
        return;
    rc_cached_outbox_close(r);
    if (r->own_inner)
        rc_repo_free(r->inner);
    rc_metrics_detach(r->m);
    free(r->ns_glob);
    free(r->lease_glob);
    free(r->head);
    free(r);
}

bool rc_cached_repo_is(const rc_repo *r)
{
    return r && r->methods && r->methods->destroy == cached_destroy;
}

bool rc_is_cached_repo(const rc_repo *r) { return rc_cached_repo_is(r); }

rc_repo *rc_cached_repo_inner(rc_repo *r)
{
    return rc_cached_repo_is(r) ? rc_cached_self(r)->inner : NULL;
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

/* RC_OK when the arguments of rc_cached_repo_new can make a decorator. */
static int check_args(rc_repo *inner, rc_cache *cache, const rc_strategy *st,
                      const rc_cached_repo_options *opt, rc_repo **out)
{
    int rc;
    if (!out || !inner || !cache)
        return rc_seterr(RC_EINVAL,
                         "cached repo: inner, cache and out are required");
    if ((rc = rc_strategy_check(st)) != RC_OK)
        return rc;
    if (inner->entity && inner->entity != st->entity)
        return rc_seterr(RC_EINVAL,
                         "cached repo: strategy %s does not match the "
                         "wrapped repository's entity %s",
                         st->ns,
                         inner->entity->name ? inner->entity->name : "?");
    if (opt && opt->lease_ms < 0)
        return rc_seterr(RC_EINVAL, "cached repo: lease_ms must be >= 0");
    return RC_OK;
}

/* A new decorator with its patterns and its metrics block on cache (the
 * rest unset); NULL when out of memory. */
static cached_repo *alloc_repo(const rc_strategy *st, rc_cache *cache)
{
    cached_repo *r = calloc(1, sizeof *r);
    char *ens = NULL;
    if (!r || rc_cache_glob_escape(st->ns, &ens) != RC_OK ||
        !(r->ns_glob = malloc(strlen(ens) + 3)) ||
        !(r->lease_glob = malloc(strlen(ens) + 3 + strlen(RC_CACHED_LEASE_TAG))) ||
        !(r->m = rc_metrics_attach(cache, st->ns))) {
        free(ens);
        if (r)
            free(r->ns_glob), free(r->lease_glob);
        free(r);
        return NULL;
    }
    strcat(strcpy(r->ns_glob, ens), ":*");
    strcat(strcat(strcpy(r->lease_glob, ens), ":" RC_CACHED_LEASE_TAG), "*");
    free(ens);
    return r;
}

int rc_cached_repo_new(rc_repo *inner, rc_cache *cache, const rc_strategy *st,
                       const rc_cached_repo_options *opt, rc_repo **out)
{
    bool own = opt && opt->own_inner;
    cached_repo *r = NULL;
    if (out)
        *out = NULL;
    int rc = check_args(inner, cache, st, opt, out);
    if (rc == RC_OK) /* the near cache follows writes to ns from now on */
        rc = rc_cache_tier_track(cache, st->ns);
    if (rc == RC_OK && !(r = alloc_repo(st, cache)))
        rc = rc_seterr(RC_ENOMEM, "cached repo: out of memory");
    if (rc != RC_OK) {
        if (own)
            rc_repo_free(inner);
        return rc;
    }
    mirror_slots(&r->methods, inner);
    r->base.methods = &r->methods;
    r->base.entity = st->entity;
    r->inner = inner;
    r->cache = cache;
    r->st = *st;
    r->own_inner = own;
    r->packed = opt && opt->packed_results;
    r->lease_ms = opt && opt->lease_ms > 0 ? opt->lease_ms : DEFAULT_LEASE_MS;
    r->hook = opt ? opt->fill_hook : NULL;
    r->hook_ud = opt ? opt->fill_hook_ud : NULL;
    r->prefix = rc_cache_prefix(cache);
    r->head_len = strlen(r->prefix) + strlen(st->ns) + 1;
    if ((rc = rc_cached_keys_init(r)) != RC_OK || (rc = rc_cached_outbox_open(r)) != RC_OK) {
        cached_destroy(&r->base); /* the wrapped repository too, if owned */
        return rc;
    }
    *out = &r->base;
    return RC_OK;
}
