/* strset.c - a set of distinct strings (see strset.h). */
#include "core/strset.h"

#include "core/hash.h"
#include "core/str.h"
#include "repocache/status.h"

#include <stdlib.h>
#include <string.h>

void rc_strset_init(rc_strset *s) { memset(s, 0, sizeof *s); }

void rc_strset_clear(rc_strset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->items[i]);
    free(s->items);
    free(s->slots);
    rc_strset_init(s);
}

/* The slot holding str, or the empty slot where it would go (nslots > 0). */
static size_t *find_slot(const rc_strset *s, const char *str)
{
    size_t mask = s->nslots - 1, i = (size_t)rc_hash_str(str) & mask;
    while (s->slots[i] && strcmp(s->items[s->slots[i] - 1], str) != 0)
        i = (i + 1) & mask;
    return &s->slots[i];
}

bool rc_strset_has(const rc_strset *s, const char *str)
{
    return s->nslots && *find_slot(s, str);
}

/* Makes room for one more string. RC_OK or RC_ENOMEM (s unchanged). */
static int grow(rc_strset *s)
{
    if (s->n < s->cap)
        return RC_OK;
    size_t cap = s->cap ? 2 * s->cap : 16, nslots = 4 * cap;
    size_t *slots = calloc(nslots, sizeof *slots);
    char **items = slots ? realloc(s->items, cap * sizeof *items) : NULL;
    if (!items) {
        free(slots);
        return RC_ENOMEM;
    }
    s->items = items;
    free(s->slots);
    s->slots = slots;
    s->nslots = nslots;
    s->cap = cap;
    for (size_t i = 0; i < s->n; i++)
        *find_slot(s, s->items[i]) = i + 1;
    return RC_OK;
}

int rc_strset_take(rc_strset *s, char *str)
{
    if (!str)
        return RC_ENOMEM;
    if (rc_strset_has(s, str)) {
        free(str);
        return RC_OK;
    }
    if (grow(s) != RC_OK) {
        free(str);
        return RC_ENOMEM;
    }
    s->items[s->n++] = str;
    *find_slot(s, str) = s->n;
    return RC_OK;
}

int rc_strset_add(rc_strset *s, const char *str)
{
    if (rc_strset_has(s, str))
        return RC_OK;
    return rc_strset_take(s, rc_strdup(str));
}

void rc_strset_move(rc_strset *dst, rc_strset *src)
{
    *dst = *src;
    rc_strset_init(src);
}
