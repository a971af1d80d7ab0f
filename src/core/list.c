/* list.c - result lists: an entity descriptor and its items (repocache/entity.h). */
#include "repocache/entity.h"
#include "repocache/status.h"

#include <stdlib.h>

rc_list *rc_list_new(const rc_entity_ops *ops)
{
    rc_list *l = calloc(1, sizeof *l);
    if (l == NULL) {
        rc_seterr(RC_ENOMEM, "out of memory");
        return NULL;
    }
    l->ops = ops;
    return l;
}

int rc_list_push(rc_list *l, void *e)
{
    if (l->len == l->cap) {
        size_t cap = l->cap != 0 ? l->cap * 2 : 8;
        void **items = realloc(l->items, cap * sizeof *items);
        if (items == NULL) {
            l->ops->free(e);
            return rc_seterr(RC_ENOMEM, "out of memory");
        }
        l->items = items;
        l->cap = cap;
    }
    l->items[l->len++] = e;
    return RC_OK;
}

void rc_list_free(rc_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->len; i++)
        l->ops->free(l->items[i]);
    free(l->items);
    free(l);
}

rc_list *rc_list_clone(const rc_list *l)
{
    rc_list *c = rc_list_new(l->ops);
    if (c == NULL)
        return NULL;
    for (size_t i = 0; i < l->len; i++) {
        void *e = l->ops->clone(l->items[i]);
        if (e == NULL || rc_list_push(c, e) != RC_OK) {
            rc_list_free(c);
            rc_seterr(RC_ENOMEM, "out of memory");
            return NULL;
        }
    }
    return c;
}
