/*
 * repocache/sqlite_repository.h - the embedded default database: one SQLite
 * file holding heroes, children and stories, and a repository per entity.
 *
 * Schema created on open and versioned with PRAGMA user_version; WAL mode;
 * busy timeout. Thread safety: see the comment at the top of
 * src/repository/sqlite_repository.c (in short: any number of threads may
 * share one rc_sqlite_db; several processes may share one file).
 *
 * Behaviour of the repositories, beyond repocache/repository.h:
 *  - list_all and every named query return entities ordered by created_at,
 *    then id; string comparisons in queries are exact (byte for byte).
 *  - save generates an id (32 lowercase hex digits, 128 random bits) when the
 *    entity has none, and sets created_at / updated_at to now (UTC,
 *    microseconds) when they are NULL; given values are kept.
 *  - update keeps the stored created_at and sets updated_at to now; *previous
 *    is read in the same transaction as the write.
 *  - find_by_id, update and remove refuse an id that could never be valid
 *    (rc_id_validate) with RC_EINVAL.
 */
#ifndef REPOCACHE_SQLITE_REPOSITORY_H
#define REPOCACHE_SQLITE_REPOSITORY_H

#include "repocache/export.h"
#include "repocache/repository.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rc_sqlite_db rc_sqlite_db;

/* Opens (creating and migrating) the database file at path (":memory:" gives
 * a private in-memory database). *out is owned by
 * the caller, released with rc_sqlite_free after every repository made from
 * it is destroyed. RC_EBACKEND with rc_errmsg() on failure. */
RC_API int rc_sqlite_open(const char *path, rc_sqlite_db **out);
/* Closes the database and frees db; accepts NULL. */
RC_API void rc_sqlite_free(rc_sqlite_db *db);
/* The former name of rc_sqlite_free, kept so that code written for 0.1.0
 * still compiles and links; new code uses rc_sqlite_free. */
RC_API void rc_sqlite_close(rc_sqlite_db *db);

/* The work of one rc_sqlite_batch: RC_OK to commit, anything else to roll
 * back (that status is then rc_sqlite_batch's). */
typedef int (*rc_sqlite_batch_fn)(void *ud);

/*
 * Runs fn(ud) inside one transaction on db (BEGIN IMMEDIATE ... COMMIT):
 * the writes fn makes through db's repositories, on this thread, are
 * committed together, once, or (fn returning other than RC_OK, or the
 * commit failing) not at all. For bulk loads: one commit per batch instead
 * of one per row. Calls of other threads on db wait until the batch ends;
 * other processes wait for SQLite's lock (WAL readers never do). A write
 * inside that fails is not undone on its own: fn decides, by its status.
 * Returns fn's status, RC_EBACKEND when the transaction could not begin or
 * commit, RC_EINVAL for NULL arguments or a batch inside a batch.
 *
 * A bulk load straight into the SQLite repositories bypasses any cached
 * repository over them: invalidate those namespaces afterwards
 * (rc_cached_repo_invalidate(r, "all", ...)), as `tale seed` does.
 */
RC_API int rc_sqlite_batch(rc_sqlite_db *db, rc_sqlite_batch_fn fn, void *ud);

/* A repository for entity type ops (rc_hero_entity, rc_child_entity or
 * rc_story_entity) over db. *out is owned by the caller (rc_repo_free);
 * it borrows db, which must outlive it. RC_EINVAL for another entity type. */
RC_API int rc_sqlite_repo_new(rc_sqlite_db *db, const rc_entity_ops *ops,
                              rc_repo **out);

#ifdef __cplusplus
}
#endif
#endif
