/*
 * fallback.c - the outage store (see fallback.h): encoded values kept in
 * the service's one in-process store (near.c), under keys of their own
 * (RC_OUTAGE_MARK + the Redis key), so they never meet the near cache's
 * decoded values of the same key. The state of the outage (active, the
 * fence epoch, the age cap) is kept here, under one mutex that every
 * operation holds, so an invalidation (epoch bumped, keys removed) and a
 * fenced fill (epoch checked, value stored) never interleave.
 */
#include "cache/fallback.h"
#include "cache/near.h"

#include "core/clock.h"
#include "core/str.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Longest life the store allows an entry of its own, seconds: a fallback
 * without Redis (REDIS_ENABLED=false) keeps entries their whole TTL. */
#define OWN_STORE_MAX_TTL (366.0 * 86400)
/* The byte bound of a store of its own (the near cache's default). */
#define OWN_STORE_MAX_BYTES ((size_t)64 << 20)

struct rc_fallback {
    pthread_mutex_t mu;
    rc_near *store;   /* the near cache's, or own */
    bool own_store;
    bool active;
    uint64_t epoch;   /* the fence: bumped by every invalidation */
    double max_age;   /* longest life of an entry, s (0: the TTL) */
};

rc_fallback *rc_fallback_new(rc_near *store, size_t max, rc_clock_fn clock, void *ud)
{
    rc_fallback *fb = calloc(1, sizeof *fb);
    if (!fb)
        return NULL;
    fb->own_store = !store;
    fb->store = store ? store : rc_near_new(max ? max : 1, OWN_STORE_MAX_BYTES,
                                            OWN_STORE_MAX_TTL);
    if (!fb->store || pthread_mutex_init(&fb->mu, NULL) != 0) {
        if (fb->own_store)
            rc_near_free(fb->store);
        free(fb);
        return NULL;
    }
    if (clock)
        rc_near_set_clock(fb->store, clock, ud);
    return fb;
}

void rc_fallback_free(rc_fallback *fb)
{
    if (!fb)
        return;
    if (fb->own_store)
        rc_near_free(fb->store);
    else
        rc_near_remove_matching(fb->store, RC_OUTAGE_MARK "*");
    pthread_mutex_destroy(&fb->mu);
    free(fb);
}

void rc_fallback_set_clock(rc_fallback *fb, rc_clock_fn clock, void *ud)
{
    pthread_mutex_lock(&fb->mu);
    rc_near_set_clock(fb->store, clock, ud);
    pthread_mutex_unlock(&fb->mu);
}

void rc_fallback_activate(rc_fallback *fb)
{
    pthread_mutex_lock(&fb->mu);
    fb->active = true;
    pthread_mutex_unlock(&fb->mu);
}

size_t rc_fallback_deactivate(rc_fallback *fb)
{
    pthread_mutex_lock(&fb->mu);
    fb->active = false;
    size_t n = rc_near_remove_matching(fb->store, RC_OUTAGE_MARK "*");
    pthread_mutex_unlock(&fb->mu);
    return n;
}

bool rc_fallback_active(rc_fallback *fb)
{
    pthread_mutex_lock(&fb->mu);
    bool a = fb->active;
    pthread_mutex_unlock(&fb->mu);
    return a;
}

/* RC_OUTAGE_MARK + key, or NULL when out of memory. */
static char *store_key(const char *key) { return rc_str_concat(RC_OUTAGE_MARK, key); }

int rc_fallback_get(rc_fallback *fb, const char *key, char **val, size_t *len)
{
    char *k = store_key(key);
    if (!k)
        return RC_ENOMEM;
    int st = RC_ENOTFOUND;
    rc_near_value v;
    pthread_mutex_lock(&fb->mu);
    if (fb->active)
        st = rc_near_lookup(fb->store, k, &v);
    pthread_mutex_unlock(&fb->mu);
    free(k);
    if (st == RC_OK) { /* the store's copy is ours: char[len + 1] */
        *val = v.ptr;
        if (len)
            *len = v.len;
    }
    return st;
}

/* rc_fallback_set and rc_fallback_set_fenced (epoch NULL: not fenced). */
static int set_entry(rc_fallback *fb, const char *key, const char *val, size_t len, int ttl,
                     const uint64_t *epoch)
{
    if (!key || (!val && len) || ttl <= 0)
        return RC_EINVAL;
    char *k = store_key(key), *copy = malloc(len + 1);
    if (!k || !copy) {
        free(k);
        free(copy);
        return RC_ENOMEM;
    }
    if (len)
        memcpy(copy, val, len);
    copy[len] = '\0';
    rc_near_value v = {RC_NEAR_BYTES, NULL, copy, len};
    pthread_mutex_lock(&fb->mu);
    int st = !fb->active                    ? RC_EUNAVAILABLE
             : epoch && *epoch != fb->epoch ? RC_ECONFLICT
                                            : RC_OK;
    double life = fb->max_age > 0 && fb->max_age < ttl ? fb->max_age : ttl;
    if (st == RC_OK && len + strlen(k) > rc_near_max_value_bytes(fb->store))
        st = RC_EUNAVAILABLE; /* over the store's byte bound: kept nowhere */
    else if (st == RC_OK && !rc_near_put(fb->store, k, 0, &v, len, life))
        st = RC_ENOMEM;
    pthread_mutex_unlock(&fb->mu);
    rc_near_value_clear(&v); /* taken by a put; freed here otherwise */
    free(k);
    return st;
}

int rc_fallback_set(rc_fallback *fb, const char *key, const char *val, size_t len, int ttl)
{
    return set_entry(fb, key, val, len, ttl, NULL);
}

int rc_fallback_set_fenced(rc_fallback *fb, const char *key, const char *val, size_t len,
                           int ttl, uint64_t epoch)
{
    return set_entry(fb, key, val, len, ttl, &epoch);
}

uint64_t rc_fallback_epoch(rc_fallback *fb)
{
    pthread_mutex_lock(&fb->mu);
    uint64_t e = fb->epoch;
    pthread_mutex_unlock(&fb->mu);
    return e;
}

/* Removes key's entry; fb->mu held. */
static void remove_locked(rc_fallback *fb, const char *key)
{
    char *k = store_key(key);
    if (k)
        rc_near_remove(fb->store, k);
    else /* cannot name it: drop them all */
        rc_near_remove_matching(fb->store, RC_OUTAGE_MARK "*");
    free(k);
}

void rc_fallback_invalidate(rc_fallback *fb, const char *const *keys, size_t n)
{
    pthread_mutex_lock(&fb->mu);
    fb->epoch++;
    for (size_t i = 0; i < n; i++)
        remove_locked(fb, keys[i]);
    pthread_mutex_unlock(&fb->mu);
}

int rc_fallback_ttl(rc_fallback *fb, const char *key, long long *ttl)
{
    char *k = store_key(key);
    if (!k)
        return RC_ENOMEM;
    pthread_mutex_lock(&fb->mu);
    bool active = fb->active;
    if (active)
        *ttl = rc_near_ttl(fb->store, k);
    pthread_mutex_unlock(&fb->mu);
    free(k);
    return active ? RC_OK : RC_EUNAVAILABLE;
}

void rc_fallback_del(rc_fallback *fb, const char *key)
{
    pthread_mutex_lock(&fb->mu);
    remove_locked(fb, key);
    pthread_mutex_unlock(&fb->mu);
}

size_t rc_fallback_del_matching(rc_fallback *fb, const char *pattern)
{
    char *p = store_key(pattern);
    pthread_mutex_lock(&fb->mu);
    size_t n = rc_near_remove_matching(fb->store, p ? p : RC_OUTAGE_MARK "*");
    pthread_mutex_unlock(&fb->mu);
    free(p);
    return n;
}

size_t rc_fallback_count(rc_fallback *fb)
{
    return rc_near_count_matching(fb->store, RC_OUTAGE_MARK "*");
}

void rc_fallback_set_max_age(rc_fallback *fb, double seconds)
{
    pthread_mutex_lock(&fb->mu);
    fb->max_age = seconds > 0 ? seconds : 0;
    pthread_mutex_unlock(&fb->mu);
}
