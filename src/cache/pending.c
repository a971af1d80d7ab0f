/* pending.c - the set of remembered deletes (see pending.h). */
#include "cache/pending.h"

#include "core/hash.h"
#include "repocache/status.h"

#include <stdlib.h>
#include <string.h>

void rc_pending_init(rc_pending *p) { memset(p, 0, sizeof *p); }

void rc_pending_forget_keys(rc_pending *p)
{
    for (size_t i = 0; i < p->nkeys; i++)
        free(p->keys[i]);
    free(p->keys);
    free(p->slots);
    p->keys = NULL;
    p->slots = NULL;
    p->nkeys = p->cap = p->nslots = 0;
}

void rc_pending_clear(rc_pending *p)
{
    rc_pending_forget_keys(p);
    for (size_t i = 0; i < p->nglobs; i++)
        free(p->globs[i]);
    free(p->globs);
    rc_pending_init(p);
}

size_t rc_pending_count(const rc_pending *p) { return p->nkeys + p->nglobs; }

/* The slot holding key, or the empty slot where it would go. */
static size_t *find_slot(const rc_pending *p, const char *key)
{
    size_t mask = p->nslots - 1, i = (size_t)rc_hash_str(key) & mask;
    while (p->slots[i] && strcmp(p->keys[p->slots[i] - 1], key) != 0)
        i = (i + 1) & mask;
    return &p->slots[i];
}

/* Makes room for one more key. RC_OK or RC_ENOMEM (p unchanged). */
static int grow(rc_pending *p)
{
    if (p->nkeys < p->cap)
        return RC_OK;
    size_t cap = p->cap ? 2 * p->cap : 64, nslots = 4 * cap;
    char **keys = realloc(p->keys, cap * sizeof *keys);
    if (!keys)
        return RC_ENOMEM;
    p->keys = keys;
    size_t *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return RC_ENOMEM;
    free(p->slots);
    p->slots = slots;
    p->nslots = nslots;
    p->cap = cap;
    for (size_t i = 0; i < p->nkeys; i++)
        *find_slot(p, p->keys[i]) = i + 1;
    return RC_OK;
}

int rc_pending_add_key(rc_pending *p, const char *key)
{
    if (p->nslots && *find_slot(p, key))
        return RC_OK;
    char *copy = strdup(key);
    if (!copy || grow(p) != RC_OK) {
        free(copy);
        return RC_ENOMEM;
    }
    p->keys[p->nkeys++] = copy;
    *find_slot(p, copy) = p->nkeys;
    return RC_OK;
}

int rc_pending_add_glob(rc_pending *p, const char *pattern)
{
    for (size_t i = 0; i < p->nglobs; i++)
        if (strcmp(p->globs[i], pattern) == 0)
            return RC_OK;
    char *copy = strdup(pattern);
    char **v = copy ? realloc(p->globs, (p->nglobs + 1) * sizeof *v) : NULL;
    if (!v) {
        free(copy);
        return RC_ENOMEM;
    }
    p->globs = v;
    p->globs[p->nglobs++] = copy;
    return RC_OK;
}

void rc_pending_move(rc_pending *dst, rc_pending *src)
{
    *dst = *src;
    rc_pending_init(src);
}

int rc_pending_merge(rc_pending *dst, rc_pending *src)
{
    int st = RC_OK;
    for (size_t i = 0; i < src->nkeys; i++)
        if (rc_pending_add_key(dst, src->keys[i]) != RC_OK)
            st = RC_ENOMEM;
    for (size_t i = 0; i < src->nglobs; i++)
        if (rc_pending_add_glob(dst, src->globs[i]) != RC_OK)
            st = RC_ENOMEM;
    rc_pending_clear(src);
    return st;
}
