/*
 * fallback.h - the in-memory LRU used while Redis is unavailable.
 *
 * A hash table (chained, FNV-1a) over a doubly linked recency list: get, set
 * and delete are O(1). Bounded by max entries (the least recently used goes
 * first); each entry has a TTL on the injectable clock. Thread-safe (one
 * mutex).
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

#include "repocache/cache.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rc_fallback rc_fallback;

/* A new, inactive fallback of at most max entries; NULL on ENOMEM. */
rc_fallback *rc_fallback_new(size_t max, rc_clock_fn clock, void *ud);
/* Frees fb and its entries; accepts NULL. */
void rc_fallback_free(rc_fallback *fb);
/* Sets the clock used for TTLs (NULL = CLOCK_MONOTONIC). */
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
/* Stores a copy for ttl seconds (> 0). RC_OK, RC_EUNAVAILABLE when inactive,
 * RC_EINVAL, RC_ENOMEM. Evicts the least recently used entry when full. */
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
