/*
 * cached_invalidate.c - the cached decorator's writes: each write slot
 * forwards to the wrapped repository and, when that succeeded, removes every
 * cache key whose answer the write may have changed (the exact keys, or the
 * whole namespace when the old values are unknown) through the cache
 * layer's fenced deletes (cache/lease.h); plus rc_cached_repo_invalidate.
 * Why the leases go first and how a fill is fenced: docs/consistency.md.
 */
#include "repository/cached.h"

#include "cache/lease.h"
#include "core/strset.h"
#include "core/token.h"

#include <stdlib.h>
#include <string.h>

/* A set of distinct owned key strings. */
typedef struct keyset {
    rc_strset s;     /* the keys */
    bool incomplete; /* a key could not be added (out of memory, failed
                        callback) */
} keyset;

/* Adds key (taking it; NULL marks out of memory) unless already present. */
static void ks_take(keyset *s, char *key)
{
    if (rc_strset_take(&s->s, key) != RC_OK)
        s->incomplete = true;
}

/* Frees the keys of s. */
static void ks_free(keyset *s)
{
    rc_strset_clear(&s->s);
}

/* rc_query_key_fn collecting the key of each query an entity belongs to. */
typedef struct collect_ctx {
    cached_repo *r; /* whose keys */
    keyset *data;   /* where they go */
} collect_ctx;

/* Adds the key of query(args) to the set (a query the strategy lacks adds
 * nothing); RC_ENOMEM stops the walk and marks the set incomplete. */
static int collect_query_key(void *ud, const char *query,
                             const char *const *args, size_t nargs)
{
    collect_ctx *c = ud;
    char *key = NULL;
    int rc = rc_strategy_key_query(&c->r->st, c->r->prefix, query, args, nargs,
                                   &key);
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

/* Drops every key of the namespace (leases first, see rc_lease_drop), or
 * remembers to; returns the count of keys removed (leases not counted) or
 * -1. */
static long long drop_namespace(cached_repo *r)
{
    long long removed = 0;
    rc_cache_fallback_invalidate(r->cache, NULL, 0);
    int rc = rc_lease_drop(r->cache, r->lease_glob, r->ns_glob, &removed);
    /* after Redis: a near-cache fill that read Redis before the drop and
     * stored since is gone too */
    rc_cache_tier_remove_matching(r->cache, r->ns_glob);
    if (rc != RC_OK) {
        rc_metrics_count(r->m, RC_M_errors);
        return -1;
    }
    rc_metrics_add(r->m, RC_M_invalidations, (uint64_t)removed);
    return removed;
}

/*
 * Deletes the data keys and the lease of each (negative entries have none)
 * in one round trip (rc_lease_delete); with writer_lease, also sets it to
 * writer_token for a cache_on_write fill. *removed = data keys that existed.
 * RC_OK, or RC_EUNAVAILABLE after remembering the deletes for replay.
 */
static int delete_keys(cached_repo *r, keyset *data, const char *writer_lease,
                       const char *writer_token, long long *removed)
{
    keyset leases = {0};
    for (size_t i = 0; i < data->s.n; i++)
        if (!rc_cached_is_negative_key(r, data->s.items[i]))
            ks_take(&leases, rc_cached_lease_key(r, data->s.items[i]));
    *removed = 0;
    rc_cache_fallback_invalidate(r->cache, (const char *const *)data->s.items,
                                 data->s.n);
    rc_lease_deletes d = {
        .leases = (const char *const *)leases.s.items,
        .nleases = leases.s.n,
        .keys = (const char *const *)data->s.items,
        .nkeys = data->s.n,
        .writer_lease = writer_lease,
        .writer_token = writer_token,
        .lease_ms = r->lease_ms,
        .drop_glob = r->ns_glob,
    };
    int rc =
        leases.incomplete ? RC_ENOMEM : rc_lease_delete(r->cache, &d, removed);
    ks_free(&leases);
    /* After Redis's delete (whose invalidations reached us before its reply):
     * this process reads its own write from now on. */
    rc_cache_tier_remove(r->cache, (const char *const *)data->s.items, data->s.n);
    if (rc == RC_ENOMEM) /* nothing sent: drop by pattern instead */
        return drop_namespace(r) < 0 ? RC_EUNAVAILABLE : RC_OK;
    if (rc == RC_OK)
        rc_metrics_add(r->m, RC_M_invalidations, (uint64_t)*removed);
    else
        rc_metrics_count(r->m, RC_M_errors);
    return rc == RC_OK ? RC_OK : RC_EUNAVAILABLE;
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
    ks_take(s, rc_cached_negative_key(r, key));
    ks_take(s, key);
    return s->incomplete ? NULL : key;
}

/* cache_on_write: re-reads id from the wrapped repository and fills through
 * the lease the invalidation took for us. */
static void write_fill(cached_repo *r, const char *id, const char *key,
                       const char *token)
{
    void *e = NULL;
    char *lease = rc_cached_lease_key(r, key), *text = NULL;
    size_t len = 0;
    if (lease && rc_repo_find_by_id(r->inner, id, &e) == RC_OK &&
        rc_cached_encode(r, false, e, &text, &len) == RC_OK)
        rc_cached_fill(r, key, lease, token, text, len, r->st.ttl);
    else if (lease) /* nothing to fill: readers must not wait for us */
        (void)rc_lease_release(r->cache, lease, token);
    free(text);
    if (e)
        r->st.entity->free(e);
    free(lease);
    rc_clearerr();
}

/* Collects into data every key a write of id changes (old and new are the
 * entity before and after, either NULL); returns the by-id key (owned by
 * data), or NULL when the set is incomplete (then drop the namespace). */
static const char *collect_keys(cached_repo *r, keyset *data, const char *id,
                                const void *old, const void *new)
{
    collect_ctx cc = {r, data};
    char *all = NULL;
    const char *idkey = add_id_keys(r, data, id);
    if (rc_strategy_key_all(&r->st, r->prefix, &all) == RC_OK)
        ks_take(data, all);
    else
        data->incomplete = true;
    /* a callback that fails leaves the list incomplete: drop everything */
    if ((old && r->st.query_keys(old, collect_query_key, &cc) != RC_OK) ||
        (new && r->st.query_keys(new, collect_query_key, &cc) != RC_OK))
        data->incomplete = true;
    return data->incomplete ? NULL : idkey;
}

/* Appends key and its NUL to the blob *b (of *len bytes); false when out of
 * memory. */
static bool blob_add(char **b, size_t *len, const char *key)
{
    size_t n = strlen(key) + 1;
    char *nb = realloc(*b, *len + n);
    if (!nb)
        return false;
    memcpy(nb + *len, key, n);
    *b = nb;
    *len += n;
    return true;
}

char *rc_cached_outbox_keys(cached_repo *r, const void *old, const void *now,
                            size_t *len)
{
    keyset data = {0};
    const void *e = now ? now : old;
    const char *id = e ? r->st.entity->get_id(e) : NULL;
    char *b = NULL;
    bool ok = id && r->st.query_keys && collect_keys(r, &data, id, old, now);
    *len = 0;
    for (size_t i = 0; ok && i < data.s.n; i++) { /* the leases first */
        if (rc_cached_is_negative_key(r, data.s.items[i]))
            continue;
        char *lease = rc_cached_lease_key(r, data.s.items[i]);
        ok = lease && blob_add(&b, len, lease);
        free(lease);
    }
    for (size_t i = 0; ok && i < data.s.n; i++)
        ok = blob_add(&b, len, data.s.items[i]);
    ks_free(&data);
    if (!ok) {
        free(b);
        *len = 0;
        rc_clearerr();
        return NULL;
    }
    return b;
}

/*
 * After a successful write of the entity with id: removes every key whose
 * answer may have changed. old/new are the entity before and after (either
 * NULL); old_known is false when the wrapped repository could not tell the
 * old values (then the whole namespace goes); seq is the write's outbox row
 * (0: none), marked applied once the deletes reached Redis. Never fails the
 * write.
 */
static void invalidate_written(cached_repo *r, long long seq, const char *id,
                               const void *old, bool old_known, const void *new,
                               bool fill_after)
{
    keyset data = {0};
    char token[RC_TOKEN_LEN + 1] = "";
    long long removed = 0;
    const char *idkey = NULL;
    if (!old_known || !id || !r->st.query_keys ||
        !(idkey = collect_keys(r, &data, id, old, new))) {
        ks_free(&data);
        if (drop_namespace(r) >= 0)
            rc_cached_outbox_done(r, seq);
        return;
    }
    fill_after = fill_after && r->st.cache_on_write;
    char *wlease = fill_after ? rc_cached_lease_key(r, idkey) : NULL;
    fill_after = fill_after && wlease;
    if (fill_after)
        rc_token_hex(token);
    int rc = delete_keys(r, &data, fill_after ? wlease : NULL, token, &removed);
    if (rc == RC_OK) /* Redis has the deletes: the outbox row is done */
        rc_cached_outbox_done(r, seq);
    if (rc == RC_OK && fill_after)
        write_fill(r, id, idkey, token);
    free(wlease);
    ks_free(&data);
}

/* invalidate_written, timed (the write-invalidation latency). */
static void after_write(cached_repo *r, long long seq, const char *id,
                        const void *old, bool old_known, const void *new,
                        bool fill_after)
{
    uint64_t t0 = rc_metrics_start(r->m);
    invalidate_written(r, seq, id, old, old_known, new, fill_after);
    rc_metrics_write(r->m, t0);
}

/* ---- write slots ---- */

int rc_cached_save(rc_repo *base, const void *entity, void **saved)
{
    cached_repo *r = rc_cached_self(base);
    void *s = NULL;
    if (saved)
        *saved = NULL;
    rc_cached_outbox_enter(r);
    int rc = rc_repo_save(r->inner, entity, &s);
    long long seq = rc_cached_outbox_leave();
    if (rc != RC_OK)
        return rc;
    const void *now = s ? s : entity;
    after_write(r, seq, r->st.entity->get_id(now), NULL, true, now, true);
    if (saved)
        *saved = s;
    else if (s)
        r->st.entity->free(s);
    return rc;
}

int rc_cached_update(rc_repo *base, const void *entity, void **stored,
                     void **previous)
{
    cached_repo *r = rc_cached_self(base);
    void *s = NULL, *p = NULL;
    if (stored)
        *stored = NULL;
    if (previous)
        *previous = NULL;
    rc_cached_outbox_enter(r);
    int rc = rc_repo_update(r->inner, entity, &s, &p);
    long long seq = rc_cached_outbox_leave();
    if (rc != RC_OK)
        return rc;
    const void *now = s ? s : entity;
    after_write(r, seq, r->st.entity->get_id(now), p, p != NULL, now, true);
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

int rc_cached_remove(rc_repo *base, const char *id, void **previous)
{
    cached_repo *r = rc_cached_self(base);
    void *p = NULL;
    if (previous)
        *previous = NULL;
    rc_cached_outbox_enter(r);
    int rc = rc_repo_remove(r->inner, id, &p);
    long long seq = rc_cached_outbox_leave();
    if (rc != RC_OK)
        return rc;
    after_write(r, seq, id, p, p != NULL, NULL, false);
    if (previous)
        *previous = p;
    else if (p)
        r->st.entity->free(p);
    return rc;
}

/* ---- manual invalidation ---- */

/* The keys of scope (by_id or a named query) with args, into data. */
static int scope_keys(cached_repo *r, const char *scope,
                      const char *const *args, size_t nargs, keyset *data)
{
    if (strcmp(scope, "by_id") == 0) {
        if (nargs != 1 || !args || !args[0])
            return rc_seterr(RC_EINVAL, "invalidate by_id: takes one id");
        if (rc_id_validate(args[0]) != RC_OK)
            return RC_EINVAL;
        if (!add_id_keys(r, data, args[0]))
            data->incomplete = true; /* its key could not be built */
        return RC_OK;
    }
    char *key = NULL;
    int rc = rc_strategy_key_query(&r->st, r->prefix, scope, args, nargs, &key);
    if (rc == RC_OK)
        ks_take(data, key);
    return rc;
}

int rc_cached_repo_invalidate(rc_repo *base, const char *scope,
                              const char *const *args, size_t nargs,
                              long long *removed)
{
    long long n = 0;
    keyset data = {0};
    int rc = RC_OK;
    if (removed)
        *removed = 0;
    if (!rc_cached_repo_is(base) || !scope)
        return rc_seterr(RC_EINVAL,
                         "invalidate: not a cached repository or no scope");
    cached_repo *r = rc_cached_self(base);
    if (strcmp(scope, "all") == 0) {
        if (nargs)
            return rc_seterr(RC_EINVAL, "invalidate all: takes no arguments");
        n = drop_namespace(r);
        rc = n < 0 ? RC_EUNAVAILABLE : RC_OK;
    } else {
        if ((rc = scope_keys(r, scope, args, nargs, &data)) != RC_OK) {
            ks_free(&data);
            return rc;
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
