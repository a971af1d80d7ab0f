/*
 * lease.h - the fencing protocol of the cache service, as the cached
 * decorator uses it (design in docs/consistency.md). The one header of
 * src/cache the layers above may include; it speaks of keys, values and
 * tokens only (no hiredis type).
 *
 * Keys are full keys chosen by the caller: a data key K, its lease key, and
 * for a by-id key its negative entry. Tokens are rc_token_hex strings.
 *
 * In Redis (each step one round trip, Lua scripts run by EVALSHA):
 *   rc_lease_lookup   K's value, or the negative entry, or SET lease token
 *                     NX PX lease_ms, saying whether we took it;
 *   rc_lease_fill     SET K value EX ttl only if the lease still holds our
 *                     token, then DEL the lease;
 *   rc_lease_release  DEL the lease if it still holds our token;
 *   rc_lease_delete   a write's invalidation: DEL the leases, then DEL the
 *                     data keys (in that order, one pipeline), optionally
 *                     SET the writer's own lease; remembered for replay when
 *                     Redis cannot be reached;
 *   rc_lease_drop     the same for whole patterns (SCAN + UNLINK, leases
 *                     first).
 * In the process (the fallback, used while Redis is unusable): every write
 * bumps the service's fence epoch and deletes its keys from the fallback
 * under one lock; a reader notes the epoch before its database read, and
 * its fill is stored only if the epoch has not moved since.
 */
#ifndef RC_CACHE_LEASE_H
#define RC_CACHE_LEASE_H

#include "cache/near.h"
#include "repocache/cache.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What rc_lease_lookup found. */
typedef enum rc_lease_found {
    RC_LEASE_DOWN,     /* Redis not in use now (disabled, breaker open):
                          nothing was tried; use the fallback */
    RC_LEASE_FAILED,   /* the lookup failed (unreachable, timed out, an
                          unexpected reply): use the fallback */
    RC_LEASE_HIT,      /* *hit holds K's value */
    RC_LEASE_NEGATIVE, /* the negative entry exists */
    RC_LEASE_FOREIGN,  /* K holds something that is not a string */
    RC_LEASE_MISS,     /* no value: *leased says whether we took the lease */
    RC_LEASE_FILLING   /* no value, and another reader holds the lease we
                          asked for: it is loading the value now */
} rc_lease_found;

/* A value found by rc_lease_lookup, read in place (no copy of the value). */
typedef struct rc_lease_hit {
    const char *val; /* the value, NUL-terminated past len */
    size_t len;      /* its length in bytes */
    long long pttl;  /* its remaining life in ms (-1: none) */
    void *holder;    /* what owns val (opaque; rc_lease_hit_free) */
} rc_lease_hit;

/* Frees what holds h's value (val is invalid afterwards); accepts an empty
 * hit. */
void rc_lease_hit_free(rc_lease_hit *h);

/*
 * Looks key up (with its negative entry neg, which may be NULL) in one round
 * trip; on a miss takes lease for token (PX lease_ms) unless token is ""
 * (take none). *hit is emptied first and filled on RC_LEASE_HIT (the caller
 * frees it with rc_lease_hit_free); *leased is true only on a miss whose
 * lease we now hold.
 */
rc_lease_found rc_lease_lookup(rc_cache *c, const char *key, const char *lease,
                               const char *neg, const char *token, int lease_ms,
                               rc_lease_hit *hit, bool *leased);

/* What rc_lease_fill did. */
typedef enum rc_lease_fill_result {
    RC_LEASE_STORED,   /* the value is stored, the lease deleted */
    RC_LEASE_REJECTED, /* the lease no longer holds token (deleted by a
                          write, expired or taken over): nothing stored */
    RC_LEASE_NOT_SENT  /* Redis could not be used, or answered oddly */
} rc_lease_fill_result;

/* The largest value a fill sends: Redis's default proto-max-bulk-len (512
 * MiB) less room for the command. A larger one is never sent (the lease is
 * given back, RC_LEASE_NOT_SENT), rather than sent in full to be refused. */
#define RC_LEASE_VALUE_MAX ((size_t)512 * 1024 * 1024 - 4096)

/* Whether a value of len bytes is over CACHE_MAX_VALUE_BYTES: the
 * decorator caches no such value (anywhere) and this counts it
 * (oversized_skipped in the stats). */
bool rc_cache_value_oversized(rc_cache *c, size_t len);

/* Stores val[0..len) under key for ttl seconds only if lease still holds
 * token, then deletes the lease (one round trip). While Redis has refused a
 * write for memory in the last RC_FILL_PAUSE seconds, rc_lease_lookup takes
 * no lease, so no fill is tried. */
rc_lease_fill_result rc_lease_fill(rc_cache *c, const char *key,
                                   const char *lease, const char *token,
                                   const char *val, size_t len, int ttl);

/* Gives back our lease when there is nothing to fill, so other readers may
 * fill at once rather than after lease_ms. false when the call failed. */
bool rc_lease_release(rc_cache *c, const char *lease, const char *token);

/* A write's invalidation, for rc_lease_delete. */
typedef struct rc_lease_deletes {
    const char *const *leases; /* lease keys, deleted first */
    size_t nleases;            /* how many */
    const char *const *keys;   /* data keys, deleted after the leases */
    size_t nkeys;              /* how many (at least one) */
    const char *writer_lease;  /* NULL, or a lease SET to writer_token
                                  PX lease_ms last (cache_on_write) */
    const char *writer_token;  /* the writer's token (with writer_lease) */
    int lease_ms;              /* the writer's lease lifetime */
    const char *drop_glob;     /* pattern (relative to the prefix, escaped)
                                  dropped instead when the keys cannot all
                                  be remembered */
} rc_lease_deletes;

/*
 * Runs d in one pipelined round trip: DEL leases; DEL keys; [SET
 * writer_lease writer_token PX lease_ms]. The leases go first because a
 * pipeline is not atomic: a fill holding an old lease that ran between a
 * data DEL and a lease DEL would store a stale value, whereas a fill between
 * the lease DEL and the data DEL holds a lease taken after the write.
 * RC_OK with *removed = data keys that existed; RC_EUNAVAILABLE when Redis
 * could not be reached or refused a command (leases and keys are then
 * remembered for replay, or d->drop_glob when they cannot be); RC_ENOMEM
 * with nothing sent nor remembered (the caller drops by pattern); RC_EINVAL.
 */
int rc_lease_delete(rc_cache *c, const rc_lease_deletes *d, long long *removed);

/*
 * Deletes every key matching lease_glob, then every key matching data_glob
 * (globs relative to the prefix, as rc_cache_clear), leases first for the
 * same reason as rc_lease_delete: once the lease pass is over no lease from
 * before it is left, and whatever a fill stored with such a lease is still
 * there for the data pass. RC_OK with *removed = data keys removed, or
 * RC_EUNAVAILABLE with both patterns remembered for replay.
 */
int rc_lease_drop(rc_cache *c, const char *lease_glob, const char *data_glob,
                  long long *removed);

/* ---- the fallback and its fence ---- */

/* The fallback's answer for key, counted as a hit (and a fallback hit) or a
 * miss in the service statistics: *val (malloc'd, NUL-terminated past *len)
 * on RC_OK; RC_ENOTFOUND when absent, or while Redis is in use, or with the
 * fallback disabled; RC_ENOMEM, RC_EINVAL. */
int rc_cache_fallback_get(rc_cache *c, const char *key, char **val,
                          size_t *len);
/* Removes key from the fallback (the epoch is not moved). */
void rc_cache_fallback_del(rc_cache *c, const char *key);

/* The service's fence epoch now: note it before a database read. */
uint64_t rc_cache_fence_epoch(rc_cache *c);
/* Stores a copy of val in the fallback for ttl seconds unless a write
 * invalidated since epoch (RC_ECONFLICT then, nothing stored). RC_OK;
 * RC_EUNAVAILABLE while Redis is in use or with the fallback disabled;
 * RC_EINVAL, RC_ENOMEM. */
int rc_cache_fallback_fill_fenced(rc_cache *c, const char *key, const char *val,
                                  size_t len, int ttl, uint64_t epoch);
/* A write: bumps the fence epoch and removes keys[0..n) from the fallback
 * under the same lock (n may be 0: only the bump). */
void rc_cache_fallback_invalidate(rc_cache *c, const char *const *keys,
                                  size_t n);

/* ---- the near cache (tier.c; the store is near.h) ----
 *
 * Serves only while it is coherent: tracking armed on both connections, every
 * invalidation that has reached the process applied, and the breaker not
 * open (see tracking.h). A read begins on its data key before it asks
 * Redis; a value enters only through that begin's placeholder, after the
 * invalidations that reached the process meanwhile were applied, so one that
 * overtook the reply fences the fill. Values enter only as Redis holds them
 * (a hit, or a fill Redis stored), for at most their remaining Redis TTL. */

/* A read's claim on a key of the near cache. */
typedef struct rc_tier_fill {
    uint64_t ticket; /* the placeholder (0: none: store nothing) */
    bool packed;     /* set by the caller: a hit's entities come packed */
    uint64_t began_ns; /* set by the caller: when the read began
                          (CLOCK_MONOTONIC, ns; 0: unknown) */
} rc_tier_fill;

/* Tracks the keys of namespace ns (prefix + ns + ":") for the near cache;
 * called once per cached repository. RC_OK (also without a near cache) or
 * RC_ENOMEM. */
int rc_cache_tier_track(rc_cache *c, const char *ns);
/* Looks key up for a read. RC_NEAR_HIT: *out holds a copy (packed when
 * f->packed). RC_NEAR_FILL:
 * *f holds the placeholder (finish with rc_cache_tier_put or _abandon).
 * 0 (*f empty): the near cache does not serve now, or another thread's fill
 * outlived wait_s; go on without it. Waits for another thread filling key
 * (single flight) up to wait_s seconds. */
int rc_cache_tier_begin(rc_cache *c, const char *key, double wait_s,
                        rc_near_value *out, rc_tier_fill *f);
/* Stores *v (taken; pack its entities, core/pack.h, so that hits copy them
 * cheaply) under key through f for ttl seconds (capped by
 * CACHE_L1_MAX_TTL) after applying the invalidations that reached the
 * process; size is v's encoded length. Returns whether it was stored. */
bool rc_cache_tier_put(rc_cache *c, const char *key, rc_tier_fill *f,
                       rc_near_value *v, size_t size, double ttl);
/* Gives up f's placeholder. */
void rc_cache_tier_abandon(rc_cache *c, const char *key, rc_tier_fill *f);
/* A write in this process: removes keys[0..n) before it returns. */
void rc_cache_tier_remove(rc_cache *c, const char *const *keys, size_t n);
/* Removes every key matching glob (relative to the prefix, escaped). */
void rc_cache_tier_remove_matching(rc_cache *c, const char *glob);

#endif
