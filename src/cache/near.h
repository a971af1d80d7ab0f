/*
 * near.h - the near cache: the service's one in-process store, of decoded
 * values (entities, lists, raw byte strings and not-found answers) in front
 * of Redis, and of the outage store's encoded values while Redis is away
 * (fallback.c keeps those under keys of their own).
 *
 * Representation: the store owns one decoded value per key, its entities
 * packed (core/pack.h: one allocation each), and hands out a copy: packed
 * for a caller that asked for packed results, else an ordinary deep copy. A
 * copy is what the caller must get anyway (it frees the answer with the
 * entity's own free) and it keeps the store simple: no reference counts, no
 * value shared with a caller, nothing freed behind a reader's back. A packed
 * copy of a hero is one malloc and one memcpy (about 40 ns here), a deep one
 * 14 mallocs and the 14 frees the caller pays later (about 240 ns). A hit is
 * a hash lookup without a lock and the copy: no JSON, no system call.
 *
 * Bounds: at most max_entries values and max_bytes bytes (a value's size is
 * its encoded length plus its key plus a fixed overhead per entry), split
 * evenly over the shards; no value outlives the TTL it was stored with, nor
 * max_ttl seconds.
 *
 * Eviction: SIEVE (a FIFO queue with one "visited" bit per entry and a hand
 * that sweeps from the oldest entry, sparing and clearing visited ones). A
 * hit only sets a bit, so popular keys survive one-hit wonders; on skewed
 * traces it keeps more of the hot set than LRU (the bench prints both hit
 * ratios on a Zipf 0.99 trace).
 *
 * Fills are fenced and shared (single flight): rc_near_begin puts a
 * placeholder under the key; a value enters the store only through the
 * placeholder of the fill that loaded it (rc_near_put), and every
 * invalidation of the key, every pattern removal and every reset removes the
 * placeholder, so a fill that raced with an invalidation stores nothing.
 * Other threads that miss the same key meanwhile wait for the filler instead
 * of loading it again.
 *
 * Thread-safe: one mutex and one condition variable per shard; hits take
 * neither, so threads that hit do not share a written cache line. A hit
 * walks the shard's table inside an epoch walk (core/epoch.h) and copies the
 * value it finds; everything else (misses, placeholders, fills, removals,
 * eviction) runs under the shard's mutex. For the walk's sake the table's
 * links are atomic, a value entry is published complete (its ticket goes to
 * 0 last, with release order) and never changes after, and an unlinked
 * entry (or a table replaced by a larger one) is retired: freed only when no
 * walk can hold it.
 */
#ifndef RC_CACHE_NEAR_H
#define RC_CACHE_NEAR_H

#include "repocache/cache.h"
#include "repocache/entity.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rc_near rc_near;

/* What a value is. */
typedef enum rc_near_kind {
    RC_NEAR_BYTES = 1, /* ptr: char[len + 1], NUL-terminated past len */
    RC_NEAR_ENTITY,    /* ptr: an entity of type ops (packed in the store) */
    RC_NEAR_LIST,      /* ptr: an rc_list (its items packed in the store) */
    RC_NEAR_NEGATIVE   /* a cached "not found" (ptr NULL) */
} rc_near_kind;

/* A value handed to or out of the store. */
typedef struct rc_near_value {
    rc_near_kind kind;         /* what ptr is */
    const rc_entity_ops *ops;  /* RC_NEAR_ENTITY: its type (lists carry theirs) */
    void *ptr;                 /* owned by whoever holds the struct */
    size_t len;                /* RC_NEAR_BYTES: bytes in ptr */
} rc_near_value;

/* Frees v's value (by kind) and zeroes v; accepts NULL and empty values. */
void rc_near_value_clear(rc_near_value *v);
/* *out = a copy of v: its entities packed when packed and v's are (they are
 * in the store), else ordinary. RC_OK or RC_ENOMEM (out empty). */
int rc_near_value_copy(const rc_near_value *v, bool packed, rc_near_value *out);

/* What rc_near_begin found. */
typedef enum rc_near_begin_result {
    RC_NEAR_HIT = 1,  /* *out holds a copy of the value */
    RC_NEAR_FILL,     /* *ticket is ours: load, then rc_near_put or _abandon */
    RC_NEAR_BUSY      /* another fill outlived the wait: load without storing */
} rc_near_begin_result;

/* Counters (totals over the shards). */
typedef struct rc_near_stats {
    uint64_t hits;          /* gets and begins answered from the store */
    uint64_t misses;        /* gets and begins that found nothing */
    uint64_t entries;       /* values held now */
    uint64_t bytes;         /* their accounted size */
    uint64_t evictions;     /* values evicted for room */
    uint64_t waits;         /* begins that waited for another fill */
} rc_near_stats;

/* A new store; NULL on ENOMEM. max_entries >= 1, max_bytes >= 1, max_ttl > 0
 * seconds. The clock defaults to rc_clock_monotonic. */
rc_near *rc_near_new(size_t max_entries, size_t max_bytes, double max_ttl);
/* Frees the store and every value; no call may be in progress. Accepts NULL. */
void rc_near_free(rc_near *n);
/* Replaces the clock (NULL: rc_clock_monotonic). For tests. */
void rc_near_set_clock(rc_near *n, rc_clock_fn fn, void *ud);

/* *out = a copy of key's value. RC_OK, RC_ENOTFOUND (absent, expired or a
 * fill in progress), RC_ENOMEM (the copy failed; *out empty). */
int rc_near_get(rc_near *n, const char *key, rc_near_value *out);
/* rc_near_get, not counted in the hits and misses (the outage store's
 * reads: fallback.c counts its own). */
int rc_near_lookup(rc_near *n, const char *key, rc_near_value *out);

/*
 * Looks key up for a read that will load it on a miss. A value: RC_NEAR_HIT
 * with a copy in *out. Nothing: a placeholder is set, RC_NEAR_FILL, and
 * *ticket identifies it. A fill by another thread in progress: waits up to
 * wait_s seconds for it, then answers as above from what it left (its value,
 * or nothing); RC_NEAR_BUSY when it is still filling. RC_ENOMEM (< 0) when
 * out of memory.
 */
int rc_near_begin(rc_near *n, const char *key, double wait_s, rc_near_value *out,
                  uint64_t *ticket);
/* rc_near_begin, the copy of a hit's entities packed when packed; now is
 * the caller's reading of the store's clock (0: read it here). */
int rc_near_begin_as(rc_near *n, const char *key, double wait_s, bool packed,
                     double now, rc_near_value *out, uint64_t *ticket);
/* Stores *v (taken, even on refusal: *v is left empty) for ttl seconds
 * (capped at max_ttl) under key if the placeholder of ticket is still there,
 * and wakes the waiters; size is the value's encoded length (its accounted
 * weight). Returns true when stored. ticket 0 stores unconditionally,
 * replacing any value or placeholder (for raw sets while Redis is away). */
bool rc_near_put(rc_near *n, const char *key, uint64_t ticket, rc_near_value *v,
                 size_t size, double ttl);
/* Gives up the placeholder of ticket (nothing to store) and wakes waiters. */
void rc_near_abandon(rc_near *n, const char *key, uint64_t ticket);

/* Removes key (value or placeholder). Returns true when something was there. */
bool rc_near_remove(rc_near *n, const char *key);
/* Removes every key matching the glob pattern (Redis syntax: * ? [..] \);
 * returns how many values went. */
size_t rc_near_remove_matching(rc_near *n, const char *pattern);
/* The largest size + key length rc_near_put stores whatever the shard: a
 * larger value never fits the byte bound. */
size_t rc_near_max_value_bytes(rc_near *n);
/* Values whose key matches the glob pattern, counted (a walk of the store). */
size_t rc_near_count_matching(rc_near *n, const char *pattern);
/* Removes everything (values and placeholders); returns how many values went. */
size_t rc_near_reset(rc_near *n);

/* Remaining whole seconds of key's value (rounded up), or -2 when absent. */
long long rc_near_ttl(rc_near *n, const char *key);
/* The counters now. */
void rc_near_get_stats(rc_near *n, rc_near_stats *st);

#endif
