/*
 * repocache/repository.h - the repository interface: a versioned const table
 * of function pointers and the base struct every implementation embeds first.
 *
 * A repository stores entities of one type (rc_repo.entity). Implementations:
 * the SQLite repositories (repocache/sqlite_repository.h), the cached
 * decorator (repocache/cached_repository.h), or your own:
 *
 *     struct my_repo { rc_repo base;  // must be first
 *                      ... };
 *     static const rc_repo_methods my_methods = { .version = RC_REPO_VERSION,
 *         .name = "my", .find_by_id = my_find, ... };
 *
 * A slot may be NULL; the dispatch helpers below then return RC_EUNSUPPORTED.
 * New slots only ever go at the end of the table, marked with their version.
 *
 * Ownership, for every slot: inputs are borrowed and never modified; what a
 * call hands back through an out pointer is new and owned by the caller, who
 * frees it with the entity's free (rc_repo.entity->free) or rc_list_free.
 * On failure the out pointers are left NULL.
 */
#ifndef REPOCACHE_REPOSITORY_H
#define REPOCACHE_REPOSITORY_H

#include "repocache/export.h"
#include "repocache/entity.h"
#include "repocache/status.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RC_REPO_VERSION 1

typedef struct rc_repo rc_repo;

typedef struct rc_repo_methods {
    int version;      /* RC_REPO_VERSION the table was written against */
    const char *name; /* implementation name, for logs ("sqlite", "cached") */

    /* Version 1 */

    /* *out = the entity with this id. RC_ENOTFOUND when absent. */
    int (*find_by_id)(rc_repo *r, const char *id, void **out);
    /* *out = every entity (possibly empty list). */
    int (*list_all)(rc_repo *r, rc_list **out);
    /* *out = the answer of the named query with nargs string arguments.
     * RC_EINVAL for an unknown query or a wrong argument count. */
    int (*find_by_query)(rc_repo *r, const char *query,
                         const char *const *args, size_t nargs, rc_list **out);
    /* Creates entity. *saved (when saved != NULL) = the stored entity, with
     * the generated id and timestamps. RC_ECONFLICT when the id exists,
     * RC_EINVAL when invalid (nothing written). */
    int (*save)(rc_repo *r, const void *entity, void **saved);
    /* Replaces the entity with entity's id. *stored = the stored entity;
     * *previous = the entity as it was just before, read atomically with the
     * update (either may be NULL). RC_ENOTFOUND when the id is absent.
     * An implementation that cannot give *previous leaves it NULL; callers
     * that need it (the cached decorator) then assume any value changed. */
    int (*update)(rc_repo *r, const void *entity, void **stored,
                  void **previous);
    /* Deletes the entity with this id; *previous (may be NULL) = the entity
     * as it was. RC_ENOTFOUND when absent. Same rule for *previous. */
    int (*remove)(rc_repo *r, const char *id, void **previous);
    /* Releases the repository (and whatever it owns). */
    void (*destroy)(rc_repo *r);
} rc_repo_methods;

/* The base struct; every implementation embeds it as its first member. */
struct rc_repo {
    const rc_repo_methods *methods; /* the table; never NULL */
    const rc_entity_ops *entity;    /* the entity type it stores */
};

/* ---- dispatch helpers: check for NULL slots, then forward ----
 * Each sets its out pointers to NULL first, returns RC_EINVAL for a NULL r,
 * RC_EUNSUPPORTED when r has no table, the slot is NULL or the table's
 * version predates the slot, and otherwise the implementation's status
 * unchanged. Ownership as in the table above. */

RC_API int rc_repo_find_by_id(rc_repo *r, const char *id, void **out);
RC_API int rc_repo_list_all(rc_repo *r, rc_list **out);
RC_API int rc_repo_find_by_query(rc_repo *r, const char *query,
                                 const char *const *args, size_t nargs,
                                 rc_list **out);
RC_API int rc_repo_save(rc_repo *r, const void *entity, void **saved);
RC_API int rc_repo_update(rc_repo *r, const void *entity, void **stored,
                          void **previous);
RC_API int rc_repo_remove(rc_repo *r, const char *id, void **previous);
/* Frees r (through its destroy slot); accepts NULL and a NULL slot. */
RC_API void rc_repo_free(rc_repo *r);
/* The former name of rc_repo_free, kept so that code written for 0.1.0
 * still compiles and links; new code uses rc_repo_free. */
RC_API void rc_repo_destroy(rc_repo *r);

/* The query names (RC_Q_BY_LANGUAGE ...) are in repocache/entity.h. */

/* ---- typed convenience functions over find_by_query (no second
 * implementation: each is one call to rc_repo_find_by_query; *out as
 * there). rc_child_find_exact_match passes age as decimal text ("7"). ---- */

RC_API int rc_hero_find_by_language(rc_repo *r, const char *language, rc_list **out);
RC_API int rc_hero_find_by_name(rc_repo *r, const char *name, rc_list **out);
RC_API int rc_child_find_by_name(rc_repo *r, const char *name, rc_list **out);
RC_API int rc_child_find_exact_match(rc_repo *r, const char *name, int age,
                                     const char *gender, rc_list **out);
RC_API int rc_story_find_by_child_id(rc_repo *r, const char *child_id,
                                     rc_list **out);
RC_API int rc_story_find_by_child_name(rc_repo *r, const char *child_name,
                                       rc_list **out);
RC_API int rc_story_find_by_language(rc_repo *r, const char *language,
                                     rc_list **out);

#ifdef __cplusplus
}
#endif
#endif
