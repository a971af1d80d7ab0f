/* pending.c - the set of remembered deletes (see pending.h). */
#include "cache/pending.h"

#include "repocache/status.h"

#include <string.h>

void rc_pending_init(rc_pending *p) { memset(p, 0, sizeof *p); }

void rc_pending_forget_keys(rc_pending *p) { rc_strset_clear(&p->keys); }

void rc_pending_clear(rc_pending *p)
{
    rc_strset_clear(&p->keys);
    rc_strset_clear(&p->globs);
}

size_t rc_pending_count(const rc_pending *p) { return p->keys.n + p->globs.n; }

int rc_pending_add_key(rc_pending *p, const char *key) { return rc_strset_add(&p->keys, key); }

int rc_pending_add_glob(rc_pending *p, const char *pattern)
{
    return rc_strset_add(&p->globs, pattern);
}

void rc_pending_move(rc_pending *dst, rc_pending *src)
{
    *dst = *src;
    rc_pending_init(src);
}

int rc_pending_merge(rc_pending *dst, rc_pending *src)
{
    int st = RC_OK;
    for (size_t i = 0; i < src->keys.n; i++)
        if (rc_pending_add_key(dst, src->keys.items[i]) != RC_OK)
            st = RC_ENOMEM;
    for (size_t i = 0; i < src->globs.n; i++)
        if (rc_pending_add_glob(dst, src->globs.items[i]) != RC_OK)
            st = RC_ENOMEM;
    rc_pending_clear(src);
    return st;
}

int rc_deletes_init(rc_deletes *d)
{
    memset(d, 0, sizeof *d);
    if (pthread_mutex_init(&d->mu, NULL) != 0)
        return RC_ENOMEM;
    if (pthread_mutex_init(&d->replay_mu, NULL) != 0) {
        pthread_mutex_destroy(&d->mu);
        return RC_ENOMEM;
    }
    return RC_OK;
}

void rc_deletes_destroy(rc_deletes *d)
{
    rc_pending_clear(&d->pend);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->replay_mu);
}
