/*
 * cached_outbox.c - the cached decorator's part of the invalidation outbox
 * (repocache/outbox.h, docs/consistency.md): the bridge between the wrapped
 * repository's outbox slots (version 2 of the table) and the cache
 * service's registration (cache/outbox.h), which must not know repositories.
 *
 * Inside each write's transaction the wrapped repository asks hook_row for
 * the keys the write changes (the same keys the write then deletes in
 * Redis, leases first) and stores them; hook_logged hands the row's number
 * to the write slot on the same thread, which marks the row applied once
 * its delete has reached Redis. Otherwise the row stays for whichever
 * process reaches Redis first.
 */
#include "repository/cached.h"

#include "cache/outbox.h"

#include <stdlib.h>
#include <string.h>

/* The row of the write in progress on this thread (the repository calls
 * the hook on the writing thread, before the write returns). */
static _Thread_local char *tl_keys;     /* what hook_row gave */
static _Thread_local long long tl_seq;  /* its number, once stored */

static void hook_row(void *ud, const void *old, const void *now,
                     rc_outbox_row *row)
{
    cached_repo *r = ud;
    free(tl_keys);
    tl_keys = rc_cached_outbox_keys(r, old, now, &row->keys_len);
    row->keys = tl_keys;
    row->pattern = r->row_pattern;
}

static void hook_logged(void *ud, long long seq)
{
    cached_repo *r = ud;
    free(tl_keys);
    tl_keys = NULL;
    tl_seq = seq;
    if (seq)
        rc_cache_outbox_count_written(r->cache);
}

/* rc_outbox_source callbacks over the wrapped repository. */
static int src_read(void *ud, long long after, size_t max, int pending_only,
                    rc_outbox_row **rows, size_t *n)
{
    cached_repo *r = ud;
    return rc_repo_outbox_read(r->inner, after, max, pending_only, rows, n);
}

static int src_applied(void *ud, const long long *seqs, size_t n)
{
    cached_repo *r = ud;
    return rc_repo_outbox_applied(r->inner, seqs, n);
}

int rc_cached_outbox_open(cached_repo *r)
{
    const char *ep = NULL;
    char *esc = NULL;
    if (rc_cache_glob_escape(r->prefix, &esc) != RC_OK)
        return rc_seterr(RC_ENOMEM, "cached repo: out of memory");
    ep = esc;
    r->row_pattern = malloc(strlen(ep) + strlen(r->ns_glob) + 1);
    if (r->row_pattern)
        strcat(strcpy(r->row_pattern, ep), r->ns_glob);
    free(esc);
    if (!r->row_pattern)
        return rc_seterr(RC_ENOMEM, "cached repo: out of memory");
    rc_outbox_hook hook = {hook_row, hook_logged, r};
    r->outbox = rc_repo_outbox_attach(r->inner, &hook) == RC_OK;
    rc_clearerr(); /* no outbox: the namespace alone is registered */
    rc_outbox_source src = {
        .read = r->outbox ? src_read : NULL,
        .applied = r->outbox ? src_applied : NULL,
        .ud = r,
        .lease_glob = r->lease_glob,
        .ns_glob = r->ns_glob,
    };
    return rc_cache_outbox_watch(r->cache, &src, &r->watch);
}

void rc_cached_outbox_close(cached_repo *r)
{
    rc_cache_outbox_unwatch(r->cache, r->watch);
    r->watch = NULL;
    if (r->outbox)
        rc_repo_outbox_attach(r->inner, NULL);
    r->outbox = false;
    free(r->row_pattern);
    r->row_pattern = NULL;
}

long long rc_cached_outbox_take_seq(void)
{
    long long seq = tl_seq;
    tl_seq = 0;
    return seq;
}

void rc_cached_outbox_done(cached_repo *r, long long seq)
{
    if (!seq || !r->outbox)
        return;
    if (rc_repo_outbox_applied(r->inner, &seq, 1) == RC_OK)
        rc_cache_outbox_count_applied(r->cache, 1);
    rc_clearerr();
}
