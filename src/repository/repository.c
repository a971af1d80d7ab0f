/*
 * repository.c - dispatch helpers over the repository vtable and the typed
 * convenience functions for the named queries.
 *
 * Every helper clears its out pointers first (so "left NULL on failure" holds
 * whatever the implementation does), refuses a NULL repository with
 * RC_EINVAL, and returns RC_EUNSUPPORTED when the table or the slot is
 * missing, or when the table predates the slot's version. Otherwise it
 * returns the implementation's status unchanged.
 */
#include "repocache/repository.h"

#include <stdio.h>

/* The table of r when it has a non-NULL slot `slot` (present since version
 * `ver`), else NULL. */
#define RC_SLOT_(r, slot, ver)                                                 \
    ((r)->methods && (r)->methods->version >= (ver) && (r)->methods->slot      \
         ? (r)->methods                                                        \
         : NULL)

/* Shared prologue of the dispatch helpers: checks r and the slot. */
static int check_slot(const rc_repo *r, const rc_repo_methods *m,
                      const char *slot)
{
    if (!r)
        return rc_seterr(RC_EINVAL, "%s: repository is NULL", slot);
    if (!m)
        return rc_seterr(RC_EUNSUPPORTED, "%s: not implemented by %s", slot,
                         r->methods && r->methods->name ? r->methods->name
                                                        : "this repository");
    return RC_OK;
}

#define RC_DISPATCH_(r, slot, ver, ...)                                        \
    do {                                                                       \
        const rc_repo_methods *m_ = (r) ? RC_SLOT_(r, slot, ver) : NULL;       \
        int rc_ = check_slot((r), m_, #slot);                                  \
        if (rc_ != RC_OK)                                                      \
            return rc_;                                                        \
        return m_->slot(__VA_ARGS__);                                          \
    } while (0)

int rc_repo_outbox_attach(rc_repo *r, const rc_outbox_hook *hook)
{
    RC_DISPATCH_(r, outbox_attach, 2, r, hook);
}

int rc_repo_outbox_read(rc_repo *r, long long after, size_t max,
                        int pending_only, rc_outbox_row **rows, size_t *n)
{
    if (rows)
        *rows = NULL;
    if (n)
        *n = 0;
    RC_DISPATCH_(r, outbox_read, 2, r, after, max, pending_only, rows, n);
}

int rc_repo_outbox_applied(rc_repo *r, const long long *seqs, size_t n)
{
    RC_DISPATCH_(r, outbox_applied, 2, r, seqs, n);
}

int rc_repo_find_by_id(rc_repo *r, const char *id, void **out)
{
    if (out)
        *out = NULL;
    RC_DISPATCH_(r, find_by_id, 1, r, id, out);
}

int rc_repo_list_all(rc_repo *r, rc_list **out)
{
    if (out)
        *out = NULL;
    RC_DISPATCH_(r, list_all, 1, r, out);
}

int rc_repo_find_by_query(rc_repo *r, const char *query,
                          const char *const *args, size_t nargs, rc_list **out)
{
    if (out)
        *out = NULL;
    RC_DISPATCH_(r, find_by_query, 1, r, query, args, nargs, out);
}

int rc_repo_save(rc_repo *r, const void *entity, void **saved)
{
    if (saved)
        *saved = NULL;
    RC_DISPATCH_(r, save, 1, r, entity, saved);
}

int rc_repo_update(rc_repo *r, const void *entity, void **stored,
                   void **previous)
{
    if (stored)
        *stored = NULL;
    if (previous)
        *previous = NULL;
    RC_DISPATCH_(r, update, 1, r, entity, stored, previous);
}

int rc_repo_remove(rc_repo *r, const char *id, void **previous)
{
    if (previous)
        *previous = NULL;
    RC_DISPATCH_(r, remove, 1, r, id, previous);
}

void rc_repo_free(rc_repo *r)
{
    if (r && RC_SLOT_(r, destroy, 1))
        r->methods->destroy(r);
}

void rc_repo_destroy(rc_repo *r) { rc_repo_free(r); }

/* ---- typed convenience functions ---- */

/* One-argument query. */
static int query1(rc_repo *r, const char *query, const char *arg,
                  rc_list **out)
{
    const char *args[1] = {arg};
    return rc_repo_find_by_query(r, query, args, 1, out);
}

int rc_hero_find_by_language(rc_repo *r, const char *language, rc_list **out)
{
    return query1(r, RC_Q_BY_LANGUAGE, language, out);
}

int rc_hero_find_by_name(rc_repo *r, const char *name, rc_list **out)
{
    return query1(r, RC_Q_BY_NAME, name, out);
}

int rc_child_find_by_name(rc_repo *r, const char *name, rc_list **out)
{
    return query1(r, RC_Q_BY_NAME, name, out);
}

int rc_child_find_exact_match(rc_repo *r, const char *name, int age,
                              const char *gender, rc_list **out)
{
    char agebuf[16];
    const char *args[3] = {name, agebuf, gender};
    snprintf(agebuf, sizeof agebuf, "%d", age);
    return rc_repo_find_by_query(r, RC_Q_EXACT_MATCH, args, 3, out);
}

int rc_story_find_by_child_id(rc_repo *r, const char *child_id, rc_list **out)
{
    return query1(r, RC_Q_BY_CHILD_ID, child_id, out);
}

int rc_story_find_by_child_name(rc_repo *r, const char *child_name,
                                rc_list **out)
{
    return query1(r, RC_Q_BY_CHILD_NAME, child_name, out);
}

int rc_story_find_by_language(rc_repo *r, const char *language, rc_list **out)
{
    return query1(r, RC_Q_BY_LANGUAGE, language, out);
}
