/* fallback.c - the in-memory LRU fallback (see fallback.h). */
#include "cache/fallback.h"

#include "core/clock.h"
#include "core/hash.h"
#include "core/str.h"

#include <fnmatch.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct entry {
    struct entry *hnext;      /* next in the hash chain */
    struct entry *prev, *next; /* recency list: head = most recent */
    char *key;
    char *val;                /* NUL-terminated past len */
    size_t len;
    double expires;           /* clock time */
    uint64_t hash;
} entry;

struct rc_fallback {
    pthread_mutex_t mu;
    entry **buckets;
    size_t nbuckets;          /* power of two */
    size_t count, max;
    entry *head, *tail;       /* most / least recently used */
    bool active;
    uint64_t epoch;           /* the fence: bumped by every invalidation */
    double max_age;           /* longest life of an entry, s (0: the TTL) */
    rc_clock_fn clock;
    void *clock_ud;
};


rc_fallback *rc_fallback_new(size_t max, rc_clock_fn clock, void *ud)
{
    rc_fallback *fb = calloc(1, sizeof *fb);
    if (!fb)
        return NULL;
    fb->max = max ? max : 1;
    fb->nbuckets = 16;
    while (fb->nbuckets < fb->max && fb->nbuckets < ((size_t)1 << 24))
        fb->nbuckets <<= 1;
    fb->buckets = calloc(fb->nbuckets, sizeof *fb->buckets);
    if (!fb->buckets || pthread_mutex_init(&fb->mu, NULL) != 0) {
        free(fb->buckets);
        free(fb);
        return NULL;
    }
    fb->clock = clock ? clock : rc_clock_monotonic;
    fb->clock_ud = ud;
    return fb;
}

static void entry_free(entry *e)
{
    free(e->key);
    free(e->val);
    free(e);
}

static void clear_locked(rc_fallback *fb)
{
    for (entry *e = fb->head, *n; e; e = n) {
        n = e->next;
        entry_free(e);
    }
    memset(fb->buckets, 0, fb->nbuckets * sizeof *fb->buckets);
    fb->head = fb->tail = NULL;
    fb->count = 0;
}

void rc_fallback_free(rc_fallback *fb)
{
    if (!fb)
        return;
    clear_locked(fb);
    pthread_mutex_destroy(&fb->mu);
    free(fb->buckets);
    free(fb);
}

void rc_fallback_set_clock(rc_fallback *fb, rc_clock_fn clock, void *ud)
{
    pthread_mutex_lock(&fb->mu);
    fb->clock = clock ? clock : rc_clock_monotonic;
    fb->clock_ud = clock ? ud : NULL;
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
    size_t n = fb->count;
    fb->active = false;
    clear_locked(fb);
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

static void list_unlink(rc_fallback *fb, entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        fb->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        fb->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_push_front(rc_fallback *fb, entry *e)
{
    e->prev = NULL;
    e->next = fb->head;
    if (fb->head)
        fb->head->prev = e;
    fb->head = e;
    if (!fb->tail)
        fb->tail = e;
}

/* The slot pointing at key's entry (or at the NULL ending its chain). */
static entry **find_slot(rc_fallback *fb, const char *key, uint64_t h)
{
    entry **slot = &fb->buckets[h & (fb->nbuckets - 1)];
    while (*slot && ((*slot)->hash != h || strcmp((*slot)->key, key) != 0))
        slot = &(*slot)->hnext;
    return slot;
}

static void remove_locked(rc_fallback *fb, entry *e)
{
    entry **slot = find_slot(fb, e->key, e->hash);
    *slot = e->hnext;
    list_unlink(fb, e);
    fb->count--;
    entry_free(e);
}

/* The live entry for key, evicting it when expired; NULL when none. */
static entry *lookup_locked(rc_fallback *fb, const char *key)
{
    entry *e = *find_slot(fb, key, rc_hash_str(key));
    if (e && fb->clock(fb->clock_ud) >= e->expires) {
        remove_locked(fb, e);
        e = NULL;
    }
    return e;
}

int rc_fallback_get(rc_fallback *fb, const char *key, char **val, size_t *len)
{
    int st = RC_ENOTFOUND;
    pthread_mutex_lock(&fb->mu);
    entry *e = fb->active ? lookup_locked(fb, key) : NULL;
    if (e) {
        char *copy = malloc(e->len + 1);
        if (copy) {
            memcpy(copy, e->val, e->len + 1);
            *val = copy;
            if (len)
                *len = e->len;
            list_unlink(fb, e);
            list_push_front(fb, e);
            st = RC_OK;
        } else {
            st = RC_ENOMEM;
        }
    }
    pthread_mutex_unlock(&fb->mu);
    return st;
}

/* A new entry holding copies of key and val (hash set, not linked); NULL
 * when out of memory. */
static entry *entry_new(const char *key, const char *val, size_t len)
{
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->key = rc_strdup(key);
    e->val = malloc(len + 1);
    if (!e->key || !e->val) {
        entry_free(e);
        return NULL;
    }
    if (len)
        memcpy(e->val, val, len);
    e->val[len] = '\0';
    e->len = len;
    e->hash = rc_hash_str(key);
    return e;
}

/* Stores e (replacing key's entry, else evicting the least recently used
 * when full) unless inactive or, with epoch, the epoch moved; frees e when
 * it is not stored. */
static int insert(rc_fallback *fb, entry *e, int ttl, const uint64_t *epoch)
{
    pthread_mutex_lock(&fb->mu);
    int st = !fb->active                        ? RC_EUNAVAILABLE
             : epoch && *epoch != fb->epoch ? RC_ECONFLICT
                                                : RC_OK;
    if (st != RC_OK) {
        pthread_mutex_unlock(&fb->mu);
        entry_free(e);
        return st;
    }
    e->expires = fb->clock(fb->clock_ud) +
                 (fb->max_age > 0 && fb->max_age < ttl ? fb->max_age : ttl);
    entry **slot = find_slot(fb, e->key, e->hash);
    if (*slot)
        remove_locked(fb, *slot);
    else if (fb->count >= fb->max)
        remove_locked(fb, fb->tail);
    slot = find_slot(fb, e->key, e->hash); /* the chain may have changed */
    *slot = e;
    list_push_front(fb, e);
    fb->count++;
    pthread_mutex_unlock(&fb->mu);
    return RC_OK;
}

/* rc_fallback_set and rc_fallback_set_fenced (epoch NULL: not fenced). */
static int set_entry(rc_fallback *fb, const char *key, const char *val,
                     size_t len, int ttl, const uint64_t *epoch)
{
    if (!key || (!val && len) || ttl <= 0)
        return RC_EINVAL;
    entry *e = entry_new(key, val, len);
    return e ? insert(fb, e, ttl, epoch) : RC_ENOMEM;
}

int rc_fallback_set(rc_fallback *fb, const char *key, const char *val,
                    size_t len, int ttl)
{
    return set_entry(fb, key, val, len, ttl, NULL);
}

int rc_fallback_set_fenced(rc_fallback *fb, const char *key, const char *val,
                           size_t len, int ttl, uint64_t epoch)
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

void rc_fallback_invalidate(rc_fallback *fb, const char *const *keys, size_t n)
{
    pthread_mutex_lock(&fb->mu);
    fb->epoch++;
    for (size_t i = 0; i < n; i++) {
        entry *e = *find_slot(fb, keys[i], rc_hash_str(keys[i]));
        if (e)
            remove_locked(fb, e);
    }
    pthread_mutex_unlock(&fb->mu);
}

int rc_fallback_ttl(rc_fallback *fb, const char *key, long long *ttl)
{
    pthread_mutex_lock(&fb->mu);
    if (!fb->active) {
        pthread_mutex_unlock(&fb->mu);
        return RC_EUNAVAILABLE;
    }
    entry *e = lookup_locked(fb, key);
    if (e) {
        double left = e->expires - fb->clock(fb->clock_ud);
        long long whole = (long long)left;
        *ttl = (double)whole < left ? whole + 1 : whole;
    } else {
        *ttl = -2;
    }
    pthread_mutex_unlock(&fb->mu);
    return RC_OK;
}

void rc_fallback_del(rc_fallback *fb, const char *key)
{
    pthread_mutex_lock(&fb->mu);
    entry *e = *find_slot(fb, key, rc_hash_str(key));
    if (e)
        remove_locked(fb, e);
    pthread_mutex_unlock(&fb->mu);
}

size_t rc_fallback_del_matching(rc_fallback *fb, const char *pattern)
{
    size_t n = 0;
    pthread_mutex_lock(&fb->mu);
    for (entry *e = fb->head, *next; e; e = next) {
        next = e->next;
        if (fnmatch(pattern, e->key, 0) == 0) {
            remove_locked(fb, e);
            n++;
        }
    }
    pthread_mutex_unlock(&fb->mu);
    return n;
}

size_t rc_fallback_count(rc_fallback *fb)
{
    pthread_mutex_lock(&fb->mu);
    size_t n = fb->count;
    pthread_mutex_unlock(&fb->mu);
    return n;
}

void rc_fallback_set_max_age(rc_fallback *fb, double seconds)
{
    pthread_mutex_lock(&fb->mu);
    fb->max_age = seconds > 0 ? seconds : 0;
    pthread_mutex_unlock(&fb->mu);
}
