/*
 * fallback.h - the outage store: encoded values served while Redis is
 * unavailable (and, with REDIS_ENABLED=false, the whole cache).
 *
 * Not a store of its own: its entries live in the service's one in-process
 * store (near.h), the near cache's when there is one (bounded with it by
 * CACHE_L1_MAX_ENTRIES and CACHE_L1_MAX_BYTES, evicted with it by SIEVE),
 * else one made for it of max entries. Each entry has a TTL on the store's
 * clock. Thread-safe (one mutex over the outage's state).
 *
 * The fallback is "active" only while Redis is unavailable: rc_fallback_set
 * and rc_fallback_get do nothing while it is inactive, and deactivating it
 * drops every entry under the same lock, so nothing written while Redis was
 * down can be served after Redis-side invalidation has moved on.
 *
 * The fence: an epoch that every rc_fallback_invalidate bumps while it
 * removes its keys, under the same lock. A fill that noted the epoch before
 * reading its source is stored (rc_fallback_set_fenced) only if the epoch has
 * not moved, so a write that invalidated meanwhile is never undone.
 */
#ifndef RC_CACHE_FALLBACK_H
#define RC_CACHE_FALLBACK_H

#include "cache/near.h"
#include "repocache/cache.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rc_fallback rc_fallback;

/* The first byte of an outage entry's key in the store (then the Redis
 * key): no key of ours starts with it (keys are text). */
#define RC_OUTAGE_MARK "\x01"
/* A glob naming every key of the store but the outage entries: what the
 * near cache drops when its coherence is lost. */
#define RC_NOT_OUTAGE_GLOB "[!\x01]*"


/* A new, inactive fallback keeping its entries in store (borrowed: it must
 * outlive fb), or, store NULL, in a store of its own of at most max entries;
 * clock (NULL: CLOCK_MONOTONIC) becomes the store's. NULL on ENOMEM. */
rc_fallback *rc_fallback_new(rc_near *store, size_t max, rc_clock_fn clock, void *ud);
/* Frees fb and its entries; accepts NULL. */
void rc_fallback_free(rc_fallback *fb);
/* Sets the store's clock, used for TTLs (NULL = CLOCK_MONOTONIC). */
void rc_fallback_set_clock(rc_fallback *fb, rc_clock_fn clock, void *ud);

/* Caps every entry's life at seconds whatever its TTL (0: no cap): while
 * Redis is away, CACHE_FALLBACK_MAX_STALENESS_MS. */
void rc_fallback_set_max_age(rc_fallback *fb, double seconds);
/* Marks Redis unavailable: the fallback serves from now on. */
void rc_fallback_activate(rc_fallback *fb);
/* Marks Redis back: drops every entry and stops serving. Returns how many
 * entries were dropped. */
size_t rc_fallback_deactivate(rc_fallback *fb);
/* Whether the fallback is serving. */
bool rc_fallback_active(rc_fallback *fb);

/* *val (malloc'd, NUL-terminated past *len) on RC_OK; RC_ENOTFOUND when
 * absent, expired or inactive; RC_ENOMEM. A hit makes the entry most recent. */
int rc_fallback_get(rc_fallback *fb, const char *key, char **val, size_t *len);
/* Stores a copy for ttl seconds (> 0). RC_OK; RC_EUNAVAILABLE when inactive
 * or the value is larger than the store's byte bound (kept nowhere);
 * RC_EINVAL; RC_ENOMEM. Evicts another value (SIEVE) when full. */
int rc_fallback_set(rc_fallback *fb, const char *key, const char *val,
                    size_t len, int ttl);
/* The fence epoch now. */
uint64_t rc_fallback_epoch(rc_fallback *fb);
/* rc_fallback_set, unless the epoch is no longer epoch: RC_ECONFLICT then
 * (nothing stored). */
int rc_fallback_set_fenced(rc_fallback *fb, const char *key, const char *val,
                           size_t len, int ttl, uint64_t epoch);
/* Bumps the epoch and removes keys[0..n) (active or not), under one lock. */
void rc_fallback_invalidate(rc_fallback *fb, const char *const *keys,
                            size_t n);
/* *ttl = remaining whole seconds (rounded up), or -2 when absent. RC_OK, or
 * RC_EUNAVAILABLE when inactive. */
int rc_fallback_ttl(rc_fallback *fb, const char *key, long long *ttl);
/* Removes key (active or not). */
void rc_fallback_del(rc_fallback *fb, const char *key);
/* Removes every key matching the glob pattern (fnmatch syntax, which matches
 * Redis's for * ? [..] and \ escapes); returns how many. */
size_t rc_fallback_del_matching(rc_fallback *fb, const char *pattern);
/* Entries held now (expired ones not yet evicted included). */
size_t rc_fallback_count(rc_fallback *fb);

#endif
