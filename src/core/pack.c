/* pack.c - packed entities (see pack.h). */
#include "core/pack.h"

#include "core/entity_fields.h"
#include "repocache/status.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN_ 16 /* of the arrays and nested structs in a block */

static size_t aligned_(size_t n) { return (n + ALIGN_ - 1) & ~(size_t)(ALIGN_ - 1); }

/* The built-in table of ops, or NULL. */
static const rc_fields *table_of(const rc_entity_ops *ops)
{
    if (ops == &rc_hero_entity)
        return &rc_hero_fields;
    if (ops == &rc_child_entity)
        return &rc_child_fields;
    if (ops == &rc_story_entity)
        return &rc_story_fields;
    return NULL;
}

/* The bytes e's members take in a block: *al in the aligned part, *str in
 * the strings. */
static void measure_(const rc_fields *t, const void *e, size_t *al, size_t *str)
{
    for (size_t i = 0; i < t->count; i++) {
        const rc_field *f = &t->items[i];
        const void *m = RC_FIELD_CPTR(e, f);
        if (f->kind == RC_FK_STR || f->kind == RC_FK_JSON) {
            if (*(char *const *)m)
                *str += strlen(*(char *const *)m) + 1;
        } else if (f->kind == RC_FK_STRLIST) {
            const rc_strlist *l = m;
            if (l->len)
                *al += aligned_(l->len * sizeof(char *));
            for (size_t j = 0; j < l->len; j++)
                *str += strlen(l->items[j]) + 1;
        } else if (f->kind == RC_FK_OBJ && *(void *const *)m) {
            *al += aligned_(f->sub->size);
            measure_(f->sub, *(void *const *)m, al, str);
        }
    }
}

/* Copies s to *str and advances it; the copy. */
static char *put_str_(char **str, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = memcpy(*str, s, n);
    *str += n;
    return d;
}

/* Points every member of dst (a byte copy of src) at copies of src's
 * members taken from the cursors *al and *str. */
static void fill_(const rc_fields *t, void *dst, const void *src, char **al, char **str)
{
    for (size_t i = 0; i < t->count; i++) {
        const rc_field *f = &t->items[i];
        void *m = RC_FIELD_PTR(dst, f);
        const void *sm = RC_FIELD_CPTR(src, f);
        if (f->kind == RC_FK_STR || f->kind == RC_FK_JSON) {
            const char *s = *(char *const *)sm;
            *(char **)m = s ? put_str_(str, s) : NULL;
        } else if (f->kind == RC_FK_STRLIST) {
            const rc_strlist *sl = sm;
            rc_strlist *l = m;
            l->items = NULL;
            if (sl->len) {
                l->items = (char **)(void *)*al;
                *al += aligned_(sl->len * sizeof(char *));
                for (size_t j = 0; j < sl->len; j++)
                    l->items[j] = put_str_(str, sl->items[j]);
            }
        } else if (f->kind == RC_FK_OBJ && *(void *const *)sm) {
            void *sub = *al;
            *al += aligned_(f->sub->size);
            memcpy(sub, *(void *const *)sm, f->sub->size);
            fill_(f->sub, sub, *(void *const *)sm, al, str);
            *(void **)m = sub;
        }
    }
}

void *rc_entity_pack(const rc_entity_ops *ops, const void *e)
{
    const rc_fields *t = table_of(ops);
    if (!t)
        return ops->clone(e);
    size_t al = 0, str = 0;
    measure_(t, e, &al, &str);
    size_t head = aligned_(t->size), total = head + al + str;
    char *b = malloc(total);
    if (!b) {
        rc_seterr(RC_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(b, e, t->size);
    char *alc = b + head, *strc = b + head + al;
    fill_(t, b, e, &alc, &strc);
    *(size_t *)(b + t->packed_offset) = total;
    return b;
}

/* p moved from block `from` to block `to` (NULL stays NULL). */
static void *moved_(const void *p, const char *from, char *to)
{
    return p ? to + ((const char *)p - from) : NULL;
}

/* Moves every member pointer of e (in block `to`) from block `from`. */
static void relocate_(const rc_fields *t, void *e, const char *from, char *to)
{
    for (size_t i = 0; i < t->count; i++) {
        const rc_field *f = &t->items[i];
        void *m = RC_FIELD_PTR(e, f);
        if (f->kind == RC_FK_STR || f->kind == RC_FK_JSON) {
            *(char **)m = moved_(*(char **)m, from, to);
        } else if (f->kind == RC_FK_STRLIST) {
            rc_strlist *l = m;
            l->items = moved_(l->items, from, to);
            for (size_t j = 0; j < l->len; j++)
                l->items[j] = moved_(l->items[j], from, to);
        } else if (f->kind == RC_FK_OBJ && *(void **)m) {
            *(void **)m = moved_(*(void **)m, from, to);
            relocate_(f->sub, *(void **)m, from, to);
        }
    }
}

void *rc_entity_copy(const rc_entity_ops *ops, const void *e, bool want_packed)
{
    const rc_fields *t = table_of(ops);
    size_t n = t ? rc_fields_packed_bytes(t, e) : 0;
    if (!want_packed || n == 0)
        return ops->clone(e);
    char *b = malloc(n);
    if (!b) {
        rc_seterr(RC_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(b, e, n);
    relocate_(t, b, e, b);
    return b;
}

/* A copy of l, each item rc_entity_pack (pack) or rc_entity_copy of l's. */
static rc_list *list_map_(const rc_list *l, bool pack, bool want_packed)
{
    rc_list *c = rc_list_new(l->ops);
    if (c && l->len) {
        c->items = malloc(l->len * sizeof *c->items);
        c->cap = c->items ? l->len : 0;
    }
    if (!c || (l->len && !c->items)) {
        rc_list_free(c);
        rc_seterr(RC_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < l->len; i++) {
        void *e = pack ? rc_entity_pack(l->ops, l->items[i])
                       : rc_entity_copy(l->ops, l->items[i], want_packed);
        if (!e) {
            rc_list_free(c);
            return NULL;
        }
        c->items[c->len++] = e;
    }
    return c;
}

rc_list *rc_list_pack(const rc_list *l) { return list_map_(l, true, false); }

rc_list *rc_list_copy(const rc_list *l, bool want_packed)
{
    return list_map_(l, false, want_packed);
}
