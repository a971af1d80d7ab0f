/*
 * cached_outbox.c - the cached decorator's part of the invalidation outbox
 * (repocache/outbox.h, docs/consistency.md): the bridge between the wrapped
 * repository's outbox slots (version 2 of the table) and the cache
 * service's registration (cache/outbox.h), which must not know repositories.
 *
 * Inside each write's transaction the wrapped repository asks hook_row
 * (through the decorator making the write, rc_cached_outbox_enter) for the
 * keys the write changes (the same keys the write then deletes in
 * Redis, leases first) and stores them; hook_logged hands the row's number
 * to the write slot on the same thread, which marks the row applied once
 * its delete has reached Redis. Otherwise the row stays for whichever
 * process reaches Redis first.
 */
#include "repository/cached.h"

#include "cache/outbox.h"

#include <stdlib.h>
#include <string.h>

/* The write in progress on this thread (the repository calls the hook on
 * the writing thread, before the write returns). A write made on the
 * wrapped repository directly, not through a decorator, stores no row. */
static _Thread_local cached_repo *tl_writer; /* the decorator writing */
static _Thread_local char *tl_keys;          /* what hook_row gave */
static _Thread_local long long tl_seq;       /* its number, once stored */

/* The hook asks the decorator writing now (not the one that attached it:
 * several may wrap one repository, each with its own strategy). */
static void hook_row(void *ud, const void *old, const void *now,
                     rc_outbox_row *row)
{
    (void)ud;
    cached_repo *r = tl_writer;
    free(tl_keys);
    tl_keys = NULL;
    if (!r)
        return; /* no pattern: no row */
    tl_keys = rc_cached_outbox_keys(r, old, now, &row->keys_len);
    row->keys = tl_keys;
    row->pattern = r->row_pattern;
}

static void hook_logged(void *ud, long long seq)
{
    (void)ud;
    free(tl_keys);
    tl_keys = NULL;
    tl_seq = seq;
    if (seq && tl_writer)
        rc_cache_outbox_count_written(tl_writer->cache);
}

/* One hook for every decorator: its functions never go away, so a
 * repository may keep it after the decorator that attached it is gone. */
static const rc_outbox_hook the_hook = {hook_row, hook_logged, NULL};

void rc_cached_outbox_enter(cached_repo *r)
{
    tl_writer = r;
    tl_seq = 0;
}

long long rc_cached_outbox_leave(void)
{
    long long seq = tl_seq;
    tl_writer = NULL;
    tl_seq = 0;
    return seq;
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
    r->outbox = rc_repo_outbox_attach(r->inner, &the_hook) == RC_OK;
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
    r->watch = NULL; /* the hook stays: other decorators may wrap inner */
    r->outbox = false;
    free(r->row_pattern);
    r->row_pattern = NULL;
}

void rc_cached_outbox_done(cached_repo *r, long long seq)
{
    if (!seq || !r->outbox)
        return;
    if (rc_repo_outbox_applied(r->inner, &seq, 1) == RC_OK)
        rc_cache_outbox_count_applied(r->cache, 1);
    rc_clearerr();
}
