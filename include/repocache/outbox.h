/*
 * repocache/outbox.h - the invalidation outbox's row: the cache keys one
 * write changed, stored by the repository in the same transaction as the
 * write, so that whichever process reaches Redis first deletes them there
 * (docs/consistency.md, "The invalidation outbox"). A data type only: the
 * repository stores rows (repocache/repository.h, version 2 of the table),
 * the cache service applies them.
 */
#ifndef REPOCACHE_OUTBOX_H
#define REPOCACHE_OUTBOX_H

#include "repocache/export.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One row. */
typedef struct rc_outbox_row {
    long long seq;   /* its number: rows are numbered in commit order, and a
                        number is never reused */
    char *pattern;   /* the namespace's keys as a Redis glob (escaped prefix +
                        escaped namespace + ":*"); never NULL */
    char *keys;      /* the keys to delete, each NUL-terminated, one after
                        another; NULL: delete every key matching pattern */
    size_t keys_len; /* bytes of keys (the terminators included) */
    int applied;     /* 1 once applied to Redis (kept a while for the
                        processes still without Redis, see outbox_applied) */
} rc_outbox_row;

/* What a repository with an outbox asks of whoever attached it, inside each
 * successful write's transaction (the cached decorator attaches one). */
typedef struct rc_outbox_hook {
    /* Fills *row's pattern and keys (they stay the hook's until logged) for
     * a write that turned old into now (either NULL: a save has no old, a
     * remove no now); keys NULL when they cannot be listed (the row then
     * drops the pattern); no pattern: no row for this write. */
    void (*row)(void *ud, const void *old, const void *now, rc_outbox_row *row);
    /* After the transaction, on the same thread, before the write returns:
     * the number of the row stored, or 0 when nothing was stored (the write
     * failed). Releases what row gave. */
    void (*logged)(void *ud, long long seq);
    void *ud; /* their argument */
} rc_outbox_hook;

/* Frees rows[0..n) and the array; accepts NULL. */
RC_API void rc_outbox_rows_free(rc_outbox_row *rows, size_t n);

#ifdef __cplusplus
}
#endif
#endif
