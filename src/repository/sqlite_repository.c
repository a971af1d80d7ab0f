/*
 * sqlite_repository.c - the SQLite repositories: heroes, children and stories
 * in one database file; opening and closing it, the statement runners and
 * the repository vtable.
 *
 * Thread safety: one connection per rc_sqlite_db, guarded by a mutex that
 * every repository call holds from start to finish. An rc_sqlite_db and its
 * repositories may therefore be used from any number of threads at once;
 * calls on one rc_sqlite_db are serialised. Several processes (or several
 * rc_sqlite_db on one file) share the file through SQLite's own locking:
 * WAL, a busy timeout of BUSY_TIMEOUT_MS, and BEGIN IMMEDIATE around every
 * read-then-write sequence, so update and remove read *previous atomically
 * with the write.
 *
 * The other files of the repository (sqlite_internal.h lists them) hold
 * the schema and its migrations, the generated statements, and the mapping
 * between rows and entities.
 *
 * Behaviour: list_all and every query are ordered by created_at, then id.
 * save keeps a given id (RC_ECONFLICT when it exists) or generates 32 hex
 * digits (core/token.h), retrying on a collision; it keeps created_at and
 * updated_at when given and sets them to now (UTC) otherwise. update never
 * changes created_at (the stored one is kept) and sets updated_at to now.
 */
#include "sqlite_internal.h"

#include "core/token.h"
#include "repocache/codec.h"

#include <stdlib.h>
#include <string.h>

#define BUSY_TIMEOUT_MS 5000 /* how long a call waits for another writer */
#define ID_ATTEMPTS 8        /* generated ids tried before giving up */

/* ---- ids ---- */

/* A new random id: 32 lowercase hex digits (128 bits, core/token.h). */
static char *random_id(void)
{
    char *id = malloc(RC_TOKEN_LEN + 1);
    if (id)
        rc_token_hex(id);
    return id;
}

/* ---- statement runners (the caller holds db->lock) ---- */

/* *out = the entity with id, RC_ENOTFOUND when absent. */
static int get_one(sqlite_repo *r, const char *id, void **out)
{
    sqlite3_stmt *st = r->st[S_GET];
    int src, rc;
    if (sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) != SQLITE_OK)
        rc = sq_backend_err(r->db, "bind");
    else if ((src = sqlite3_step(st)) == SQLITE_ROW)
        rc = sq_read_entity(r, st, out);
    else if (src == SQLITE_DONE)
        rc = rc_seterr(RC_ENOTFOUND, "%s '%s' not found", r->t->ops->name, id);
    else
        rc = sq_backend_err(r->db, "select");
    sq_done_with(st);
    return rc;
}

/* *out = every row of st (already bound), as a list. */
static int get_many(sqlite_repo *r, sqlite3_stmt *st, rc_list **out)
{
    rc_list *l = rc_list_new(r->t->ops);
    int src = SQLITE_DONE;
    int rc = l ? RC_OK : rc_seterr(RC_ENOMEM, "sqlite: out of memory");
    while (rc == RC_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        void *e;
        if ((rc = sq_read_entity(r, st, &e)) == RC_OK)
            rc = rc_list_push(l, e);
    }
    if (rc == RC_OK && src != SQLITE_DONE)
        rc = sq_backend_err(r->db, "select");
    sq_done_with(st);
    if (rc != RC_OK) {
        rc_list_free(l);
        return rc;
    }
    *out = l;
    return RC_OK;
}

/* Binds e to st and runs it; RC_ECONFLICT on a duplicate id. */
static int write_one(sqlite_repo *r, sqlite3_stmt *st, const void *e)
{
    int rc = sq_bind_entity(r, st, e);
    if (rc == RC_OK && sq_step_done(st) != SQLITE_DONE) {
        if (sqlite3_extended_errcode(r->db->conn) ==
            SQLITE_CONSTRAINT_PRIMARYKEY)
            rc = rc_seterr(RC_ECONFLICT, "%s id '%s' already exists",
                           r->t->ops->name, r->t->ops->get_id(e));
        else
            rc = sq_backend_err(r->db, "write");
    }
    sq_done_with(st);
    return rc;
}

/* BEGIN IMMEDIATE: takes the write lock now, so the reads that follow and
 * the write form one atomic step, also against other processes. */
static int tx_begin(rc_sqlite_db *db)
{
    if (db->in_batch) /* the batch's transaction holds the lock already */
        return RC_OK;
    int src = sq_step_done(db->begin);
    int rc = src == SQLITE_DONE ? RC_OK : sq_backend_err(db, "begin");
    sqlite3_reset(db->begin);
    return rc;
}

/* Commits when rc is RC_OK, else rolls back; returns the final status. */
static int tx_end(rc_sqlite_db *db, int rc)
{
    if (db->in_batch) /* the batch commits or rolls back, once */
        return rc;
    if (rc == RC_OK) {
        if (sq_step_done(db->commit) != SQLITE_DONE)
            rc = sq_backend_err(db, "commit");
        sqlite3_reset(db->commit);
    }
    if (rc != RC_OK && !sqlite3_get_autocommit(db->conn)) {
        sq_step_done(db->rollback);
        sqlite3_reset(db->rollback);
    }
    return rc;
}

/* ---- the vtable ---- */

static int check_id(const sqlite_repo *r, const char *id)
{
    if (!id)
        return rc_seterr(RC_EINVAL, "%s: id is NULL", r->t->ops->name);
    return rc_id_validate(id);
}

static int sq_find_by_id(rc_repo *base, const char *id, void **out)
{
    sqlite_repo *r = (sqlite_repo *)base;
    int rc = check_id(r, id);
    if (rc != RC_OK)
        return rc;
    pthread_mutex_lock(&r->db->lock);
    rc = get_one(r, id, out);
    pthread_mutex_unlock(&r->db->lock);
    return rc;
}

static int sq_list_all(rc_repo *base, rc_list **out)
{
    sqlite_repo *r = (sqlite_repo *)base;
    int rc;
    pthread_mutex_lock(&r->db->lock);
    rc = get_many(r, r->st[S_ALL], out);
    pthread_mutex_unlock(&r->db->lock);
    return rc;
}

static int sq_find_by_query(rc_repo *base, const char *query,
                            const char *const *args, size_t nargs,
                            rc_list **out)
{
    sqlite_repo *r = (sqlite_repo *)base;
    const rc_queries *qs = r->t->fields->queries;
    sqlite3_stmt *st;
    size_t i;
    int rc;
    for (i = 0; i < qs->count; i++)
        if (query && strcmp(query, qs->items[i].name) == 0)
            break;
    if (i == qs->count)
        return rc_seterr(RC_EINVAL, "%s: unknown query '%s'", r->t->ops->name,
                         query ? query : "(null)");
    st = r->st[S_QUERY + i];
    pthread_mutex_lock(&r->db->lock);
    rc = sq_bind_args(r, st, &qs->items[i], args, nargs);
    if (rc == RC_OK)
        rc = get_many(r, st, out);
    else
        sq_done_with(st);
    pthread_mutex_unlock(&r->db->lock);
    return rc;
}

static int sq_save(rc_repo *base, const void *entity, void **saved)
{
    sqlite_repo *r = (sqlite_repo *)base;
    const table_def *t = r->t;
    bool given_id;
    void *copy;
    char *now = NULL;
    int rc, attempt;
    if (!entity)
        return rc_seterr(RC_EINVAL, "%s: entity is NULL", t->ops->name);
    if ((rc = t->ops->validate(entity, false)) != RC_OK)
        return rc;
    given_id = t->ops->get_id(entity) != NULL;
    copy = t->ops->clone(entity);
    rc = copy ? rc_iso_now(&now)
              : rc_seterr(RC_ENOMEM, "sqlite: out of memory");
    if (rc == RC_OK && !*sq_str_member(copy, r->rt->created))
        rc = sq_set_str(copy, r->rt->created, now);
    if (rc == RC_OK && !*sq_str_member(copy, r->rt->updated))
        rc = sq_set_str(copy, r->rt->updated, now);
    free(now);
    pthread_mutex_lock(&r->db->lock);
    for (attempt = 0; rc == RC_OK; attempt++) {
        if (!given_id) {
            char *id = random_id();
            if (!id) {
                rc = rc_seterr(RC_EBACKEND, "sqlite: no random id");
                break;
            }
            free(*sq_str_member(copy, r->rt->id));
            *sq_str_member(copy, r->rt->id) = id;
        }
        rc = write_one(r, r->st[S_INSERT], copy);
        if (rc != RC_ECONFLICT || given_id)
            break;
        if (attempt + 1 == ID_ATTEMPTS) {
            rc = rc_seterr(RC_EBACKEND, "%s: %d generated ids collided",
                           t->ops->name, ID_ATTEMPTS);
            break;
        }
        rc = RC_OK; /* a generated id collided: draw another */
    }
    pthread_mutex_unlock(&r->db->lock);
    if (rc == RC_OK && saved)
        *saved = copy;
    else
        t->ops->free(copy);
    return rc;
}

static int sq_update(rc_repo *base, const void *entity, void **stored,
                     void **previous)
{
    sqlite_repo *r = (sqlite_repo *)base;
    const table_def *t = r->t;
    void *copy, *prev = NULL;
    char *now = NULL;
    int rc;
    if (!entity)
        return rc_seterr(RC_EINVAL, "%s: entity is NULL", t->ops->name);
    if ((rc = t->ops->validate(entity, true)) != RC_OK)
        return rc;
    copy = t->ops->clone(entity);
    rc = copy ? rc_iso_now(&now)
              : rc_seterr(RC_ENOMEM, "sqlite: out of memory");
    if (rc == RC_OK)
        rc = sq_set_str(copy, r->rt->updated, now);
    free(now);
    pthread_mutex_lock(&r->db->lock);
    if (rc == RC_OK && (rc = tx_begin(r->db)) == RC_OK) {
        rc = get_one(r, t->ops->get_id(entity), &prev);
        if (rc == RC_OK)
            rc = sq_set_str(copy, r->rt->created,
                         *sq_str_member(prev, r->rt->created));
        if (rc == RC_OK)
            rc = write_one(r, r->st[S_UPDATE], copy);
        rc = tx_end(r->db, rc);
    }
    pthread_mutex_unlock(&r->db->lock);
    if (rc != RC_OK) {
        t->ops->free(copy);
        t->ops->free(prev);
        return rc;
    }
    if (stored)
        *stored = copy;
    else
        t->ops->free(copy);
    if (previous)
        *previous = prev;
    else
        t->ops->free(prev);
    return RC_OK;
}

static int sq_remove(rc_repo *base, const char *id, void **previous)
{
    sqlite_repo *r = (sqlite_repo *)base;
    sqlite3_stmt *del = r->st[S_DELETE];
    void *prev = NULL;
    int rc = check_id(r, id);
    if (rc != RC_OK)
        return rc;
    pthread_mutex_lock(&r->db->lock);
    if ((rc = tx_begin(r->db)) == RC_OK) {
        rc = get_one(r, id, &prev);
        if (rc == RC_OK) {
            if (sqlite3_bind_text(del, 1, id, -1, SQLITE_STATIC) !=
                    SQLITE_OK ||
                sq_step_done(del) != SQLITE_DONE)
                rc = sq_backend_err(r->db, "delete");
            sq_done_with(del);
        }
        rc = tx_end(r->db, rc);
    }
    pthread_mutex_unlock(&r->db->lock);
    if (rc == RC_OK && previous)
        *previous = prev;
    else
        r->t->ops->free(prev);
    return rc;
}

static void sq_destroy(rc_repo *base) { free(base); }

static const rc_repo_methods sqlite_methods = {
    .version = RC_REPO_VERSION,
    .name = "sqlite",
    .find_by_id = sq_find_by_id,
    .list_all = sq_list_all,
    .find_by_query = sq_find_by_query,
    .save = sq_save,
    .update = sq_update,
    .remove = sq_remove,
    .destroy = sq_destroy,
};

int rc_sqlite_repo_new(rc_sqlite_db *db, const rc_entity_ops *ops,
                       rc_repo **out)
{
    sqlite_repo *r;
    int i;
    if (out)
        *out = NULL;
    if (!db || !out)
        return rc_seterr(RC_EINVAL, "rc_sqlite_repo_new: NULL argument");
    for (i = 0; i < T_COUNT && sq_tables[i].ops != ops; i++)
        ;
    if (i == T_COUNT)
        return rc_seterr(RC_EINVAL,
                         "rc_sqlite_repo_new: no table for entity type %s",
                         ops && ops->name ? ops->name : "(null)");
    r = calloc(1, sizeof *r);
    if (!r)
        return rc_seterr(RC_ENOMEM, "sqlite: out of memory");
    r->base.methods = &sqlite_methods;
    r->base.entity = ops;
    r->db = db;
    r->t = &sq_tables[i];
    r->rt = &db->rt[i];
    r->st = db->rt[i].st;
    *out = &r->base;
    return RC_OK;
}

/* ---- opening and closing ---- */

/* A recursive mutex: the thread running rc_sqlite_batch holds it, and its
 * repository calls inside the batch take it again. 0 or an error number. */
static int init_lock(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int err = pthread_mutexattr_init(&a);
    if (err)
        return err;
    err = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    if (!err)
        err = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return err;
}

int rc_sqlite_open(const char *path, rc_sqlite_db **out)
{
    rc_sqlite_db *db;
    int rc = RC_OK;
    if (out)
        *out = NULL;
    if (!path || !out)
        return rc_seterr(RC_EINVAL, "rc_sqlite_open: NULL argument");
    db = calloc(1, sizeof *db);
    if (!db)
        return rc_seterr(RC_ENOMEM, "sqlite: out of memory");
    if (init_lock(&db->lock) != 0) {
        free(db);
        return rc_seterr(RC_EBACKEND, "sqlite: cannot create a mutex");
    }
    /* NOMUTEX: db->lock already keeps the connection to one thread. */
    if (sqlite3_open_v2(path, &db->conn,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = db->conn ? rc_seterr(RC_EBACKEND, "sqlite: open %s: %s", path,
                                  sqlite3_errmsg(db->conn))
                      : rc_seterr(RC_ENOMEM, "sqlite: out of memory");
        rc_sqlite_free(db);
        return rc;
    }
    sqlite3_busy_timeout(db->conn, BUSY_TIMEOUT_MS);
    /* WAL: readers never block the writer. NORMAL is durable with WAL
     * except for the last commits on power loss, and never corrupts. */
    rc = sq_exec(db, "PRAGMA journal_mode = WAL", "journal_mode");
    if (rc == RC_OK)
        rc = sq_exec(db, "PRAGMA synchronous = NORMAL", "synchronous");
    if (rc == RC_OK)
        rc = sq_migrate(db);
    if (rc == RC_OK)
        rc = sq_prepare_all(db);
    if (rc != RC_OK) {
        rc_sqlite_free(db);
        return rc;
    }
    *out = db;
    return RC_OK;
}

void rc_sqlite_free(rc_sqlite_db *db)
{
    if (!db)
        return;
    sq_finalize_all(db);
    sqlite3_close(db->conn);
    pthread_mutex_destroy(&db->lock);
    free(db);
}

void rc_sqlite_close(rc_sqlite_db *db) { rc_sqlite_free(db); }

int rc_sqlite_batch(rc_sqlite_db *db, rc_sqlite_batch_fn fn, void *ud)
{
    if (!db || !fn)
        return rc_seterr(RC_EINVAL, "rc_sqlite_batch: NULL argument");
    pthread_mutex_lock(&db->lock);
    if (db->in_batch) {
        pthread_mutex_unlock(&db->lock);
        return rc_seterr(RC_EINVAL, "rc_sqlite_batch: batches do not nest");
    }
    int rc = tx_begin(db);
    if (rc == RC_OK) {
        db->in_batch = true;
        rc = fn(ud);
        db->in_batch = false;
        rc = tx_end(db, rc);
    }
    pthread_mutex_unlock(&db->lock);
    return rc;
}
