/*
 * outbox.h - the invalidation outbox as the cache service uses it
 * (docs/consistency.md, "The invalidation outbox"). The decorator registers
 * each cached repository with the service: its namespace, and, when the
 * wrapped repository keeps an outbox, how to read and remove its rows. The
 * service then:
 *   - applies every pending row to Redis before it trusts Redis again (after
 *     the breaker opened, or on a Redis identity it has not seen), and every
 *     CACHE_OUTBOX_POLL_MS while connected (a row is marked applied);
 *   - while Redis is away, removes from the fallback the keys of every row
 *     new to it, applied or not, before each fallback read and every
 *     CACHE_OUTBOX_POLL_MS;
 *   - drops the namespace once per new Redis identity (identity.c).
 * One of the headers of src/cache the layers above may include.
 */
#ifndef RC_CACHE_OUTBOX_H
#define RC_CACHE_OUTBOX_H

#include "repocache/cache.h"
#include "repocache/outbox.h"

#include <stddef.h>

/* One cached namespace and its outbox. */
typedef struct rc_outbox_source {
    /* Rows numbered above after, at most max, only those not applied when
     * pending_only (rc_repo_outbox_read); NULL when there is no outbox (only
     * the namespace is registered). */
    int (*read)(void *ud, long long after, size_t max, int pending_only,
                rc_outbox_row **rows, size_t *n);
    /* Marks rows applied (rc_repo_outbox_applied). */
    int (*applied)(void *ud, const long long *seqs, size_t n);
    void *ud;               /* their argument */
    const char *lease_glob; /* the namespace's leases, relative to the
                               prefix (escaped ns + ":~lease:*"); borrowed
                               until unregistered */
    const char *ns_glob;    /* every key of the namespace (escaped ns + ":*") */
} rc_outbox_source;

/* Registers src (copied; its strings borrowed); *handle is for
 * rc_cache_outbox_unwatch. RC_OK or RC_ENOMEM (then nothing registered). */
int rc_cache_outbox_watch(rc_cache *c, const rc_outbox_source *src,
                          void **handle);
/* Unregisters; waits for a use of it in progress. Accepts NULL. */
void rc_cache_outbox_unwatch(rc_cache *c, void *handle);
/* Counts rows stored by this process's writes (statistics). */
void rc_cache_outbox_count_written(rc_cache *c);
/* Counts rows this process applied itself (a write whose delete reached
 * Redis marks its own row applied). */
void rc_cache_outbox_count_applied(rc_cache *c, size_t n);

#endif
