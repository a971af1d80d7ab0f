/*
 * cached.h - the insides of the cached decorator, private to its files:
 *   cached_repository.c  lifecycle, keys and the read path
 *   cached_invalidate.c  the write slots and invalidation (after a write,
 *                        and rc_cached_repo_invalidate)
 *   cached_stats.c       statistics
 *   cached_outbox.c      the invalidation outbox: the hook the wrapped
 *                        repository calls inside each write, and the rows
 *                        offered to the cache service
 * The fencing itself is the cache layer's (cache/lease.h).
 */
#ifndef RC_REPOSITORY_CACHED_H
#define RC_REPOSITORY_CACHED_H

#include "cache/metrics.h"
#include "repocache/cached_repository.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct cached_repo {
    rc_repo base;            /* must be first */
    rc_repo_methods methods; /* our table, with the inner's NULL slots */
    rc_repo *inner;          /* the wrapped repository */
    rc_cache *cache;         /* borrowed cache service */
    rc_strategy st;          /* copy of the strategy */
    bool own_inner;          /* destroy inner with us */
    bool packed;             /* packed_results: near-cache hits come packed */
    int lease_ms;            /* lease lifetime */
    rc_fill_hook_fn hook;    /* test hook before a read fill */
    void *hook_ud;           /* its argument */
    const char *prefix;      /* CACHE_KEY_PREFIX (borrowed from cache) */
    char *head;              /* prefix + ns + ":", the start of every key */
    size_t head_len;         /* strlen(head) */
    bool head_tagged;        /* prefix + ns + ":" holds a hash tag: every key
                                of ns is in its slot (cached_keys.c) */
    char *ns_glob;           /* escaped ns + ":*", relative to the prefix */
    char *lease_glob;        /* escaped ns + ":~lease:*", likewise */
    char *row_pattern;       /* escaped prefix + ns_glob: outbox rows' pattern */
    bool outbox;             /* the wrapped repository stores our rows */
    void *watch;             /* the cache service's registration */
    rc_metrics *m;           /* its counters and latencies (the service
                                lists them: rc_cache_metrics_text) */
} cached_repo;

/* The decorator behind base (which must be one). */
static inline cached_repo *rc_cached_self(rc_repo *base)
{
    return (cached_repo *)base;
}


/* ---- keys (cached_keys.c) and values (cached_repository.c) ---- */

/* The tags of the auxiliary keys, after P + ns + ":". */
#define RC_CACHED_LEASE_TAG "~lease:"
#define RC_CACHED_NEGATIVE_TAG "~none:"

/* Checks the head P + ns + ":" for hash tags and notes whether it holds
 * one. RC_OK, or RC_EINVAL when a '{' there would split a key's slot from
 * its lease's; RC_ENOMEM. */
int rc_cached_keys_init(cached_repo *r);
/* *key = the by-id key of id (rc_strategy_key_id's), built in buf[size]
 * when it fits, else allocated: free it when it is not buf. RC_OK, or
 * RC_EINVAL for a bad id, RC_ENOMEM. */
int rc_cached_key_id(const cached_repo *r, const char *id, char *buf, size_t size,
                     char **key);
/* The lease of data key key (P + ns + ":~lease:{T}" + rest); NULL when out
 * of memory. */
char *rc_cached_lease_key(const cached_repo *r, const char *key);
/* The negative entry of by-id key key (P + ns + ":~none:{T}" + id); NULL
 * when out of memory. */
char *rc_cached_negative_key(const cached_repo *r, const char *key);
/* Whether key (one of r's) is a negative entry. */
bool rc_cached_is_negative_key(const cached_repo *r, const char *key);
/* *text, *len = the entity (is_list false) or rc_list (true) v encoded as
 * its envelope, the value every fill stores. RC_EINVAL (*text NULL,
 * counted as oversized_skipped) when it is over CACHE_MAX_VALUE_BYTES. */
int rc_cached_encode(const cached_repo *r, bool is_list, const void *v,
                     char **text, size_t *len);
/* Stores val under target through lease (rc_lease_fill), counting a
 * rejection or a failure; true when Redis stored it. */
bool rc_cached_fill(cached_repo *r, const char *target, const char *lease,
                    const char *token, const char *val, size_t len, int ttl);

/* ---- the outbox (cached_outbox.c) ---- */

/* Attaches the hook to the wrapped repository when it has an outbox, and
 * registers the namespace (and the rows) with the cache service. RC_OK or
 * RC_ENOMEM. */
int rc_cached_outbox_open(cached_repo *r);
/* Undoes rc_cached_outbox_open; accepts a decorator it did not finish. */
void rc_cached_outbox_close(cached_repo *r);
/* Around a write slot's call of the wrapped repository: enter names r as
 * the decorator writing on this thread; leave returns the number of the
 * outbox row the write stored (0: none) and forgets both. */
void rc_cached_outbox_enter(cached_repo *r);
long long rc_cached_outbox_leave(void);
/* The write's own delete reached Redis: marks its row seq applied (0:
 * none). */
void rc_cached_outbox_done(cached_repo *r, long long seq);
/* The keys a write of old -> now changes, leases first, as an outbox row's
 * keys (NUL-terminated, one after another; *len bytes); NULL when they
 * cannot be listed (then the row drops the namespace). */
char *rc_cached_outbox_keys(cached_repo *r, const void *old, const void *now,
                            size_t *len);

/* ---- writes (cached_invalidate.c) ---- */

int rc_cached_save(rc_repo *base, const void *entity, void **saved);
int rc_cached_update(rc_repo *base, const void *entity, void **stored,
                     void **previous);
int rc_cached_remove(rc_repo *base, const char *id, void **previous);

#endif
