/* near.c - the near cache store (see near.h). */
#include "cache/near.h"

#include "core/clock.h"
#include "core/counter.h"
#include "core/epoch.h"
#include "core/hash.h"

#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NSHARDS_MAX 16        /* shards (fewer for tiny stores) */
#define ENTRY_OVERHEAD 64     /* bytes accounted per entry beyond key + value */

/* Lock-free hits (near.h): links atomic, a value published whole (ticket
 * to 0 last) and never changed, unlinked memory retired (core/epoch.h). */
typedef struct entry {
    struct entry *_Atomic hnext; /* next in the hash chain */
    struct entry *newer;      /* queue neighbour toward the head (newest) */
    struct entry *older;      /* queue neighbour toward the tail (oldest) */
    uint64_t hash;            /* rc_hash_str(key) */
    _Atomic uint64_t ticket;  /* non-zero: a placeholder, not in the queue */
    rc_near_value v;          /* the value (empty for a placeholder) */
    size_t bytes;             /* accounted size */
    double expires;           /* clock time the value dies */
    atomic_bool visited;      /* SIEVE: hit since the hand last passed */
    rc_retired retired;       /* for its free once unlinked */
    char key[];               /* NUL-terminated */
} entry;

/* A shard's hash chains. */
typedef struct table {
    rc_retired retired;       /* for its free once replaced */
    size_t nbuckets;          /* power of two */
    entry *_Atomic buckets[]; /* the chains */
} table;

typedef struct shard {
    pthread_mutex_t mu;       /* guards everything below (writes of tab too) */
    pthread_cond_t cv;        /* broadcast when a placeholder resolves */
    table *_Atomic tab;       /* the hash chains */
    size_t nentries;          /* values and placeholders in the table */
    entry *head, *tail;       /* the value queue: newest, oldest */
    entry *hand;              /* SIEVE hand (NULL: start from the tail) */
    size_t values, bytes;     /* values held and their accounted size */
    size_t max_values, max_bytes; /* this shard's share of the bounds */
    uint64_t hits, misses, evictions, waits; /* statistics */
} shard;

struct rc_near {
    rc_counter lock_free_hits; /* hits of the lock-free path (the rest: shards) */
    rc_retire_list retired;   /* unlinked entries and replaced tables */
    shard *shards;            /* nshards of them */
    size_t nshards;           /* power of two */
    double max_ttl;           /* cap on any value's life, seconds */
    atomic_uint_fast64_t next_ticket; /* placeholder ids (never 0) */
    rc_clock_fn clock;        /* time source for expiry */
    void *clock_ud;           /* its argument */
};

/* ---- lifecycle ---- */

/* An empty table of n chains; NULL on ENOMEM. */
static table *table_new(size_t n)
{
    table *t = malloc(sizeof *t + n * sizeof t->buckets[0]);
    if (!t)
        return NULL;
    t->nbuckets = n;
    for (size_t i = 0; i < n; i++)
        atomic_init(&t->buckets[i], NULL);
    return t;
}

static void table_free(rc_retired *r)
{
    free((char *)r - offsetof(table, retired));
}

static void entry_free(rc_retired *r)
{
    entry *e = (entry *)(void *)((char *)r - offsetof(entry, retired));
    rc_near_value_clear(&e->v);
    free(e);
}

static bool shard_init(shard *s, size_t max_values, size_t max_bytes)
{
    memset(s, 0, sizeof *s);
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return false;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    bool ok = pthread_cond_init(&s->cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (ok && pthread_mutex_init(&s->mu, NULL) != 0) {
        pthread_cond_destroy(&s->cv);
        ok = false;
    }
    table *t = ok ? table_new(64) : NULL;
    atomic_init(&s->tab, t);
    if (ok && !t) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        ok = false;
    }
    s->max_values = max_values;
    s->max_bytes = max_bytes;
    return ok;
}

static void shard_destroy(shard *s)
{
    table *t = s->tab;
    for (size_t b = 0; b < t->nbuckets; b++)
        for (entry *e = t->buckets[b], *next; e; e = next) {
            next = e->hnext;
            entry_free(&e->retired);
        }
    free(t);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

rc_near *rc_near_new(size_t max_entries, size_t max_bytes, double max_ttl)
{
    if (max_entries < 1 || max_bytes < 1 || !(max_ttl > 0))
        return NULL;
    rc_near *n = rc_counter_struct_alloc(sizeof *n);
    if (!n)
        return NULL;
    if (rc_retire_list_init(&n->retired) != 0) {
        free(n);
        return NULL;
    }
    n->nshards = NSHARDS_MAX;
    while (n->nshards > 1 && max_entries / n->nshards < 4)
        n->nshards /= 2;
    n->max_ttl = max_ttl;
    n->clock = rc_clock_monotonic;
    atomic_init(&n->next_ticket, 1);
    n->shards = calloc(n->nshards, sizeof *n->shards);
    /* The bounds split exactly: the first shards take one more of each. */
    size_t per_values = max_entries / n->nshards, more_values = max_entries % n->nshards;
    size_t per_bytes = max_bytes / n->nshards, more_bytes = max_bytes % n->nshards;
    size_t ok = 0;
    while (n->shards && ok < n->nshards &&
           shard_init(&n->shards[ok], per_values + (ok < more_values),
                      per_bytes + (ok < more_bytes)))
        ok++;
    if (ok == n->nshards)
        return n;
    while (ok > 0)
        shard_destroy(&n->shards[--ok]);
    free(n->shards);
    rc_retire_list_destroy(&n->retired);
    free(n);
    return NULL;
}

void rc_near_free(rc_near *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nshards; i++)
        shard_destroy(&n->shards[i]);
    free(n->shards);
    rc_retire_list_destroy(&n->retired);
    free(n);
}

void rc_near_set_clock(rc_near *n, rc_clock_fn fn, void *ud)
{
    n->clock = fn ? fn : rc_clock_monotonic;
    n->clock_ud = fn ? ud : NULL;
}

/* ---- the table of one shard (its mutex held) ---- */

static shard *shard_of(rc_near *n, uint64_t hash)
{
    return &n->shards[(hash >> 48) & (n->nshards - 1)];
}

static entry *_Atomic *slot_of(shard *s, const char *key, uint64_t hash)
{
    table *t = s->tab;
    entry *_Atomic *p = &t->buckets[hash & (t->nbuckets - 1)];
    while (*p && ((*p)->hash != hash || strcmp((*p)->key, key) != 0))
        p = &(*p)->hnext;
    return p;
}

/* Doubles the buckets when the table is full (best effort: on ENOMEM the
 * chains just grow longer). */
static void maybe_grow(rc_near *n, shard *s)
{
    table *old = s->tab;
    if (s->nentries < old->nbuckets)
        return;
    size_t nb = 2 * old->nbuckets;
    table *t = table_new(nb);
    if (!t)
        return;
    /* A walk in the old table meanwhile may be led into a new chain and
     * miss its key (it then takes the locked path); the chains never form
     * a cycle, and no entry is freed. */
    for (size_t i = 0; i < old->nbuckets; i++)
        for (entry *e = old->buckets[i], *next; e; e = next) {
            next = e->hnext;
            e->hnext = t->buckets[e->hash & (nb - 1)];
            t->buckets[e->hash & (nb - 1)] = e;
        }
    s->tab = t;
    rc_retire(&n->retired, &old->retired, table_free);
}

static void queue_push(shard *s, entry *e)
{
    e->older = s->head;
    e->newer = NULL;
    if (s->head)
        s->head->newer = e;
    s->head = e;
    if (!s->tail)
        s->tail = e;
    s->values++;
    s->bytes += e->bytes;
}

static void queue_unlink(shard *s, entry *e)
{
    if (s->hand == e)
        s->hand = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        s->head = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        s->tail = e->newer;
    s->values--;
    s->bytes -= e->bytes;
}

/* Unlinks *p from the table (and the queue) and frees it; wakes waiters of
 * a placeholder. Returns whether it held a value. */
static bool drop(rc_near *n, shard *s, entry *_Atomic *p)
{
    entry *e = *p;
    bool had_value = e->ticket == 0;
    *p = e->hnext;
    s->nentries--;
    if (had_value)
        queue_unlink(s, e);
    else
        pthread_cond_broadcast(&s->cv);
    rc_retire(&n->retired, &e->retired, entry_free);
    return had_value;
}

/* SIEVE: evicts one value (the shard holds at least one). */
static void evict_one(rc_near *n, shard *s)
{
    entry *e = s->hand ? s->hand : s->tail;
    while (e->visited) {
        e->visited = false;
        e = e->newer ? e->newer : s->tail;
    }
    s->hand = e->newer;
    drop(n, s, slot_of(s, e->key, e->hash));
    s->evictions++;
}

/* ---- reads ---- */

/* The live value entry of key, dropping it when expired; NULL otherwise. */
static entry *find_value(rc_near *n, shard *s, const char *key, uint64_t hash, double now)
{
    entry *_Atomic *p = slot_of(s, key, hash);
    if (!*p || (*p)->ticket)
        return NULL;
    if ((*p)->expires <= now) {
        drop(n, s, p);
        return NULL;
    }
    return *p;
}

/* A hit on e (mutex held): marks it visited, counts it, copies it out. */
static int take_hit(shard *s, entry *e, bool packed, rc_near_value *out)
{
    if (!e->visited) /* no store when set: a hot entry's line stays shared */
        e->visited = true;
    s->hits++;
    return rc_near_value_copy(&e->v, packed, out);
}

/* A hit without the lock: a copy of key's live value in *out, or false
 * (nothing, a placeholder, expired, no epoch slot, out of memory: the
 * locked path then decides). */
static bool lock_free_hit(rc_near *n, shard *s, const char *key, uint64_t hash,
                          double now, bool packed, rc_near_value *out)
{
    if (!rc_epoch_enter())
        return false;
    table *t = atomic_load_explicit(&s->tab, memory_order_acquire);
    entry *e = atomic_load_explicit(&t->buckets[hash & (t->nbuckets - 1)],
                                    memory_order_acquire);
    while (e && (e->hash != hash || strcmp(e->key, key) != 0))
        e = atomic_load_explicit(&e->hnext, memory_order_acquire);
    bool hit = e && atomic_load_explicit(&e->ticket, memory_order_acquire) == 0 &&
               e->expires > now && rc_near_value_copy(&e->v, packed, out) == RC_OK;
    if (hit && !atomic_load_explicit(&e->visited, memory_order_relaxed))
        atomic_store_explicit(&e->visited, true, memory_order_relaxed);
    rc_epoch_leave();
    if (hit)
        rc_counter_add(&n->lock_free_hits);
    return hit;
}

/* rc_near_get (counted) and rc_near_lookup (not). */
static int get_value(rc_near *n, const char *key, rc_near_value *out, bool counted)
{
    memset(out, 0, sizeof *out);
    uint64_t h = rc_hash_str(key);
    shard *s = shard_of(n, h);
    double now = n->clock(n->clock_ud);
    pthread_mutex_lock(&s->mu);
    entry *e = find_value(n, s, key, h, now);
    int st = RC_ENOTFOUND;
    if (e && counted)
        st = take_hit(s, e, false, out);
    else if (e) {
        e->visited = true;
        st = rc_near_value_copy(&e->v, false, out);
    }
    else if (counted)
        s->misses++;
    pthread_mutex_unlock(&s->mu);
    return st;
}

int rc_near_get(rc_near *n, const char *key, rc_near_value *out)
{
    return get_value(n, key, out, true);
}

int rc_near_lookup(rc_near *n, const char *key, rc_near_value *out)
{
    return get_value(n, key, out, false);
}

/* A new placeholder for key in s (mutex held); its ticket, or 0 on ENOMEM. */
static uint64_t add_placeholder(rc_near *n, shard *s, const char *key, uint64_t hash)
{
    size_t kl = strlen(key);
    entry *e = calloc(1, sizeof *e + kl + 1);
    if (!e)
        return 0;
    memcpy(e->key, key, kl + 1);
    e->hash = hash;
    e->ticket = atomic_fetch_add(&n->next_ticket, 1);
    maybe_grow(n, s);
    table *t = s->tab;
    entry *_Atomic *p = &t->buckets[hash & (t->nbuckets - 1)];
    e->hnext = *p;
    *p = e;
    s->nentries++;
    return e->ticket;
}

/* Waits on s->cv until deadline (CLOCK_MONOTONIC seconds); false on timeout. */
static bool wait_until(shard *s, double deadline)
{
    time_t whole = (time_t)deadline;
    struct timespec ts = {whole, (long)((deadline - (double)whole) * 1e9)};
    return pthread_cond_timedwait(&s->cv, &s->mu, &ts) != ETIMEDOUT;
}

int rc_near_begin(rc_near *n, const char *key, double wait_s, rc_near_value *out,
                  uint64_t *ticket)
{
    return rc_near_begin_as(n, key, wait_s, false, 0, out, ticket);
}

int rc_near_begin_as(rc_near *n, const char *key, double wait_s, bool packed,
                     double now, rc_near_value *out, uint64_t *ticket)
{
    if (!(now > 0) || n->clock != rc_clock_monotonic) /* a test's clock */
        now = n->clock(n->clock_ud);
    memset(out, 0, sizeof *out);
    *ticket = 0;
    uint64_t h = rc_hash_str(key);
    shard *s = shard_of(n, h);
    if (lock_free_hit(n, s, key, h, now, packed, out))
        return RC_NEAR_HIT;
    double deadline = 0; /* set when we first wait */
    bool waited = false;
    int res;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        entry *e = find_value(n, s, key, h, now);
        if (e) {
            res = take_hit(s, e, packed, out) == RC_OK ? RC_NEAR_HIT : RC_ENOMEM;
            break;
        }
        entry *_Atomic *p = slot_of(s, key, h); /* absent, or a fill in progress */
        if (!*p) {
            s->misses++;
            *ticket = add_placeholder(n, s, key, h);
            res = *ticket ? RC_NEAR_FILL : RC_ENOMEM;
            break;
        }
        /* another thread is filling key */
        if (!waited) {
            s->waits++;
            deadline = rc_clock_monotonic(NULL) + (wait_s > 0 ? wait_s : 0);
        }
        waited = true;
        if (rc_clock_monotonic(NULL) >= deadline || !wait_until(s, deadline)) {
            entry *still = *slot_of(s, key, h);
            if (still && still->ticket) {
                s->misses++;
                res = RC_NEAR_BUSY;
                break;
            }
        }
        now = n->clock(n->clock_ud); /* after the wait */
    }
    pthread_mutex_unlock(&s->mu);
    return res;
}

/* ---- writes ---- */

bool rc_near_put(rc_near *n, const char *key, uint64_t ticket, rc_near_value *v,
                 size_t size, double ttl)
{
    uint64_t h = rc_hash_str(key);
    shard *s = shard_of(n, h);
    size_t bytes = size + strlen(key) + ENTRY_OVERHEAD;
    bool stored = false;
    pthread_mutex_lock(&s->mu);
    entry *_Atomic *p = slot_of(s, key, h);
    if (ticket == 0) { /* unconditional: replace whatever is there */
        if (*p)
            drop(n, s, p);
        ticket = add_placeholder(n, s, key, h);
        p = slot_of(s, key, h);
    }
    entry *e = *p;
    if (e && ticket && e->ticket == ticket) {
        if (bytes > s->max_bytes || !(ttl > 0)) {
            drop(n, s, p); /* never fits: nothing stored, waiters load */
        } else {
            e->v = *v;
            memset(v, 0, sizeof *v);
            e->bytes = bytes;
            e->expires = n->clock(n->clock_ud) + (ttl < n->max_ttl ? ttl : n->max_ttl);
            e->visited = false;
            e->ticket = 0; /* last: a lock-free walk now sees a complete value */
            queue_push(s, e);
            while (s->values > s->max_values || s->bytes > s->max_bytes)
                evict_one(n, s);
            pthread_cond_broadcast(&s->cv);
            stored = true;
        }
    }
    pthread_mutex_unlock(&s->mu);
    rc_near_value_clear(v);
    return stored;
}

void rc_near_abandon(rc_near *n, const char *key, uint64_t ticket)
{
    uint64_t h = rc_hash_str(key);
    shard *s = shard_of(n, h);
    pthread_mutex_lock(&s->mu);
    entry *_Atomic *p = slot_of(s, key, h);
    if (*p && ticket && (*p)->ticket == ticket)
        drop(n, s, p);
    pthread_mutex_unlock(&s->mu);
}

bool rc_near_remove(rc_near *n, const char *key)
{
    uint64_t h = rc_hash_str(key);
    shard *s = shard_of(n, h);
    bool found = false;
    pthread_mutex_lock(&s->mu);
    entry *_Atomic *p = slot_of(s, key, h);
    if (*p) {
        drop(n, s, p);
        found = true;
    }
    pthread_mutex_unlock(&s->mu);
    return found;
}

/* Removes (or, !remove, counts) every value whose key matches; placeholders
 * are removed too but never counted. */
static size_t visit_where(rc_near *n, bool (*match)(const char *key, const void *ud),
                          const void *ud, bool remove)
{
    size_t found = 0;
    for (size_t i = 0; i < n->nshards; i++) {
        shard *s = &n->shards[i];
        pthread_mutex_lock(&s->mu);
        table *t = s->tab;
        for (size_t b = 0; b < t->nbuckets; b++)
            for (entry *_Atomic *p = &t->buckets[b]; *p;) {
                bool hit = match((*p)->key, ud);
                if (hit && remove) {
                    found += drop(n, s, p);
                    continue;
                }
                found += hit && (*p)->ticket == 0;
                p = &(*p)->hnext;
            }
        pthread_mutex_unlock(&s->mu);
    }
    return found;
}

static bool match_glob(const char *key, const void *pattern)
{
    return fnmatch(pattern, key, 0) == 0;
}

static bool match_all(const char *key, const void *ud)
{
    (void)key;
    (void)ud;
    return true;
}

size_t rc_near_remove_matching(rc_near *n, const char *pattern)
{
    return visit_where(n, match_glob, pattern, true);
}

size_t rc_near_max_value_bytes(rc_near *n)
{
    size_t b = n->shards[n->nshards - 1].max_bytes; /* the smallest share */
    return b > ENTRY_OVERHEAD ? b - ENTRY_OVERHEAD : 0;
}

size_t rc_near_count_matching(rc_near *n, const char *pattern)
{
    return visit_where(n, match_glob, pattern, false);
}

size_t rc_near_reset(rc_near *n) { return visit_where(n, match_all, NULL, true); }

/* x rounded up to whole seconds (x >= 0), without libm. */
static long long ceil_seconds(double x)
{
    long long w = (long long)x;
    return w + (x > (double)w);
}

long long rc_near_ttl(rc_near *n, const char *key)
{
    uint64_t h = rc_hash_str(key);
    shard *s = shard_of(n, h);
    double now = n->clock(n->clock_ud);
    long long ttl = -2;
    pthread_mutex_lock(&s->mu);
    entry *e = find_value(n, s, key, h, now);
    if (e)
        ttl = ceil_seconds(e->expires - now);
    pthread_mutex_unlock(&s->mu);
    return ttl;
}

void rc_near_get_stats(rc_near *n, rc_near_stats *st)
{
    memset(st, 0, sizeof *st);
    for (size_t i = 0; i < n->nshards; i++) {
        shard *s = &n->shards[i];
        pthread_mutex_lock(&s->mu);
        st->hits += s->hits;
        st->misses += s->misses;
        st->entries += s->values;
        st->bytes += s->bytes;
        st->evictions += s->evictions;
        st->waits += s->waits;
        pthread_mutex_unlock(&s->mu);
    }
    st->hits += rc_counter_get(&n->lock_free_hits);
}
