/*
 * sqlite_outbox.c - the SQLite repository's invalidation outbox (version 2
 * of the repository table, repocache/outbox.h): table rc_outbox of the
 * database, shared by every repository and process using the file. A write
 * stores its row inside its own transaction (sq_outbox_log), so the row
 * exists exactly when the data does; readers take rows in number order and
 * mark them applied once in Redis. Marking costs no transaction of its own:
 * the numbers wait in memory and are marked inside the next write's
 * transaction, or when RC_OUTBOX_ACK_BATCH are waiting, or on a flush (the
 * cache service's thread asks for one every CACHE_OUTBOX_POLL_MS) or close.
 * Until then another process may apply the row again, which is harmless. An applied row is kept until
 * RC_OUTBOX_RETAIN_S seconds after its write (a process on its fallback
 * still needs it), then removed by the next marking.
 *
 * Bounded growth: when a write finds RC_OUTBOX_MAX_ROWS or more rows
 * pending (its number minus the oldest pending's), every row of its pattern
 * is replaced, in the same transaction, by one row deleting the whole
 * pattern. So at most RC_OUTBOX_MAX_ROWS + one row per namespace are pending
 * however long Redis stays away, plus the applied rows of the last
 * RC_OUTBOX_RETAIN_S seconds.
 */
#include "sqlite_internal.h"

#include <stdlib.h>
#include <string.h>

/* Rows pending past which a namespace's rows collapse into one drop. */
#define RC_OUTBOX_MAX_ROWS 10000
/* Applied rows are removed when a row numbered a multiple of this is
 * marked applied. */
#define RC_OUTBOX_EXPIRE_EVERY 256

int sq_outbox_prepare(rc_sqlite_db *db)
{
    int rc = sq_prepare(db,
                        "INSERT INTO rc_outbox(pattern, keys, written_at) "
                        "VALUES (?1, ?2, julianday('now'))",
                        &db->ob_insert);
    if (rc == RC_OK)
        rc = sq_prepare(db, "SELECT min(seq) FROM rc_outbox WHERE applied = 0",
                        &db->ob_oldest);
    if (rc == RC_OK)
        rc = sq_prepare(db, "DELETE FROM rc_outbox WHERE pattern = ?1",
                        &db->ob_collapse);
    if (rc == RC_OK)
        rc = sq_prepare(db,
                        "SELECT seq, pattern, keys, applied FROM rc_outbox "
                        "WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                        &db->ob_read);
    if (rc == RC_OK) /* the same, through the index of the pending rows */
        rc = sq_prepare(db,
                        "SELECT seq, pattern, keys, applied FROM rc_outbox "
                        "WHERE seq > ?1 AND applied = 0 ORDER BY seq LIMIT ?2",
                        &db->ob_read_pending);
    if (rc == RC_OK)
        rc = sq_prepare(db, "UPDATE rc_outbox SET applied = 1 WHERE seq = ?1",
                        &db->ob_delete);
    if (rc == RC_OK)
        rc = sq_prepare(db,
                        "DELETE FROM rc_outbox WHERE applied = 1 AND "
                        "written_at < julianday('now') - ?1 / 86400.0",
                        &db->ob_expire);
    return rc;
}

/* Numbers waiting past which they are marked at once. */
#define RC_OUTBOX_ACK_BATCH 256

/* Marks the waiting numbers applied (inside a transaction held), and every
 * RC_OUTBOX_EXPIRE_EVERY rows removes those no process can need any more.
 * db->lock held. */
static int mark_acks(rc_sqlite_db *db)
{
    sqlite3_stmt *st = db->ob_delete, *ex = db->ob_expire;
    int rc = RC_OK;
    bool expire = false;
    for (size_t i = 0; rc == RC_OK && i < db->nacks; i++) {
        sqlite3_bind_int64(st, 1, db->acks[i]);
        if (sq_step_done(st) != SQLITE_DONE)
            rc = sq_backend_err(db, "outbox applied");
        sq_done_with(st);
        expire = expire || db->acks[i] % RC_OUTBOX_EXPIRE_EVERY == 0;
    }
    if (rc == RC_OK && expire) {
        sqlite3_bind_int(ex, 1, RC_OUTBOX_RETAIN_S);
        if (sq_step_done(ex) != SQLITE_DONE)
            rc = sq_backend_err(db, "outbox expire");
        sq_done_with(ex);
    }
    if (rc == RC_OK)
        db->nacks = 0;
    return rc;
}

/* mark_acks in a transaction of its own; db->lock held. */
static int flush_acks(rc_sqlite_db *db)
{
    if (!db->nacks)
        return RC_OK;
    int rc = sq_tx_begin(db);
    if (rc == RC_OK)
        rc = sq_tx_end(db, mark_acks(db));
    return rc;
}

void sq_outbox_finalize(rc_sqlite_db *db)
{
    if (db->nacks && db->ob_delete && db->ob_expire && db->begin && db->commit &&
        db->rollback)
        flush_acks(db); /* best effort: unmarked rows are applied again */
    free(db->acks);
    db->acks = NULL;
    sqlite3_finalize(db->ob_insert);
    sqlite3_finalize(db->ob_oldest);
    sqlite3_finalize(db->ob_collapse);
    sqlite3_finalize(db->ob_read);
    sqlite3_finalize(db->ob_read_pending);
    sqlite3_finalize(db->ob_delete);
    sqlite3_finalize(db->ob_expire);
}

/* Inserts (pattern, keys) into the outbox; *seq = its number. */
static int insert_row(rc_sqlite_db *db, const char *pattern, const char *keys,
                      size_t len, long long *seq)
{
    sqlite3_stmt *st = db->ob_insert;
    int rc = RC_OK;
    if (sqlite3_bind_text(st, 1, pattern, -1, SQLITE_STATIC) != SQLITE_OK ||
        (keys ? sqlite3_bind_blob64(st, 2, keys, len, SQLITE_STATIC)
              : sqlite3_bind_null(st, 2)) != SQLITE_OK ||
        sq_step_done(st) != SQLITE_DONE)
        rc = sq_backend_err(db, "outbox insert");
    else
        *seq = (long long)sqlite3_last_insert_rowid(db->conn);
    sq_done_with(st);
    return rc;
}

/* When too many rows are pending: replaces pattern's rows by one drop of
 * the pattern (*seq = its number). */
static int bound_rows(rc_sqlite_db *db, const char *pattern, long long *seq)
{
    sqlite3_stmt *st = db->ob_oldest;
    long long oldest = *seq;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        oldest = sqlite3_column_int64(st, 0);
    sq_done_with(st);
    if (*seq - oldest < RC_OUTBOX_MAX_ROWS)
        return RC_OK;
    st = db->ob_collapse;
    int rc = RC_OK;
    if (sqlite3_bind_text(st, 1, pattern, -1, SQLITE_STATIC) != SQLITE_OK ||
        sq_step_done(st) != SQLITE_DONE)
        rc = sq_backend_err(db, "outbox collapse");
    sq_done_with(st);
    return rc == RC_OK ? insert_row(db, pattern, NULL, 0, seq) : rc;
}

int sq_outbox_log(sqlite_repo *r, const void *old, const void *now,
                  long long *seq)
{
    *seq = 0;
    if (!r->hook.row)
        return RC_OK;
    if (r->db->nacks && mark_acks(r->db) != RC_OK)
        rc_clearerr(); /* they stay waiting */
    rc_outbox_row row = {0};
    r->hook.row(r->hook.ud, old, now, &row);
    if (!row.pattern)
        return RC_OK; /* the hook wants no row for this write */
    int rc = insert_row(r->db, row.pattern, row.keys, row.keys_len, seq);
    if (rc == RC_OK)
        rc = bound_rows(r->db, row.pattern, seq);
    return rc;
}

void sq_outbox_logged(sqlite_repo *r, long long seq)
{
    if (r->hook.logged)
        r->hook.logged(r->hook.ud, seq);
}

int sq_outbox_attach(rc_repo *base, const rc_outbox_hook *hook)
{
    sqlite_repo *r = (sqlite_repo *)base;
    pthread_mutex_lock(&r->db->lock);
    if (hook)
        r->hook = *hook;
    else
        memset(&r->hook, 0, sizeof r->hook);
    pthread_mutex_unlock(&r->db->lock);
    return RC_OK;
}

/* Copies the current row of ob_read into *row. */
static int read_row(sqlite3_stmt *st, rc_outbox_row *row)
{
    const unsigned char *pat = sqlite3_column_text(st, 1);
    const void *keys = sqlite3_column_blob(st, 2);
    size_t len = (size_t)sqlite3_column_bytes(st, 2);
    row->seq = sqlite3_column_int64(st, 0);
    row->applied = sqlite3_column_int(st, 3);
    row->pattern = pat ? strdup((const char *)pat) : NULL;
    row->keys_len = keys ? len : 0;
    row->keys = keys ? malloc(len + 1) : NULL;
    if (!row->pattern || (keys && !row->keys))
        return rc_seterr(RC_ENOMEM, "sqlite: out of memory");
    if (keys) {
        memcpy(row->keys, keys, len);
        row->keys[len] = '\0';
    }
    return RC_OK;
}

int sq_outbox_read(rc_repo *base, long long after, size_t max,
                   int pending_only, rc_outbox_row **rows, size_t *n)
{
    sqlite_repo *r = (sqlite_repo *)base;
    sqlite3_stmt *st = pending_only ? r->db->ob_read_pending : r->db->ob_read;
    if (!rows || !n || !max)
        return rc_seterr(RC_EINVAL, "outbox read: bad argument");
    rc_outbox_row *out = calloc(max, sizeof *out);
    if (!out)
        return rc_seterr(RC_ENOMEM, "sqlite: out of memory");
    int rc = RC_OK, step;
    size_t k = 0;
    pthread_mutex_lock(&r->db->lock);
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    while (rc == RC_OK && k < max && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = read_row(st, &out[k++]);
    if (rc == RC_OK && k < max && step != SQLITE_DONE)
        rc = sq_backend_err(r->db, "outbox read");
    sq_done_with(st);
    pthread_mutex_unlock(&r->db->lock);
    if (rc != RC_OK) {
        rc_outbox_rows_free(out, k);
        return rc;
    }
    *rows = out;
    *n = k;
    return RC_OK;
}

int sq_outbox_applied(rc_repo *base, const long long *seqs, size_t n)
{
    sqlite_repo *r = (sqlite_repo *)base;
    rc_sqlite_db *db = r->db;
    int rc = RC_OK;
    if (n && !seqs)
        return rc_seterr(RC_EINVAL, "outbox applied: NULL seqs");
    pthread_mutex_lock(&db->lock);
    if (db->nacks + n > db->cap_acks) {
        size_t cap = (db->nacks + n) * 2;
        long long *a = realloc(db->acks, cap * sizeof *a);
        if (a) {
            db->acks = a;
            db->cap_acks = cap;
        } else {
            rc = rc_seterr(RC_ENOMEM, "sqlite: out of memory");
        }
    }
    for (size_t i = 0; rc == RC_OK && i < n; i++)
        db->acks[db->nacks++] = seqs[i];
    if (rc == RC_OK && (n == 0 || db->nacks >= RC_OUTBOX_ACK_BATCH))
        rc = flush_acks(db);
    pthread_mutex_unlock(&db->lock);
    return rc;
}
