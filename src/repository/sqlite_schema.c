/*
 * sqlite_schema.c - the schema of the SQLite database: one table per entity
 * (heroes, children, stories), one column per field, versioned with PRAGMA
 * user_version. migrations[v] takes a database from version v to v + 1;
 * opening applies the missing ones in one transaction and refuses a
 * database newer than this library.
 */
#include "sqlite_internal.h"

#include <stdio.h>

/* Value rules (gender, ranges, required fields) live in validation, not
 * here; NOT NULL marks what the store itself relies on: ids, names, integers,
 * the list columns and the timestamps the order uses. */
static const char *const migrations[] = {
    /* 0 -> 1: the three tables and the indexes their queries use. */
    "CREATE TABLE heroes ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " name TEXT NOT NULL,"
    " age INTEGER NOT NULL,"
    " gender TEXT,"
    " appearance TEXT,"
    " personality_traits TEXT NOT NULL," /* JSON array of strings */
    " interests TEXT NOT NULL,"          /* JSON array of strings */
    " strengths TEXT NOT NULL,"          /* JSON array of strings */
    " language TEXT,"
    " created_at TEXT NOT NULL,"
    " updated_at TEXT NOT NULL);"
    "CREATE INDEX heroes_order ON heroes(created_at, id);"
    "CREATE INDEX heroes_language ON heroes(language, created_at, id);"
    "CREATE INDEX heroes_name ON heroes(name, created_at, id);"
    "CREATE TABLE children ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " name TEXT NOT NULL,"
    " age_category TEXT,"
    " age INTEGER NOT NULL,"
    " gender TEXT,"
    " interests TEXT NOT NULL," /* JSON array of strings */
    " created_at TEXT NOT NULL,"
    " updated_at TEXT NOT NULL);"
    "CREATE INDEX children_order ON children(created_at, id);"
    "CREATE INDEX children_name ON children(name, created_at, id);"
    "CREATE INDEX children_exact ON children(name, age, gender);"
    "CREATE TABLE stories ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " title TEXT NOT NULL,"
    " content TEXT,"
    " moral TEXT,"
    " language TEXT,"
    " child_id TEXT,"
    " child_name TEXT,"
    " age_category TEXT,"
    " child_gender TEXT,"
    " child_interests TEXT NOT NULL," /* JSON array of strings */
    " story_length INTEGER,"
    " rating INTEGER,"
    " audio_file_url TEXT,"
    " audio_file_provider TEXT,"
    " audio_file_metadata TEXT," /* JSON text */
    " model_used TEXT,"
    " full_response TEXT,"   /* JSON text */
    " generation_info TEXT," /* JSON text */
    " created_at TEXT NOT NULL,"
    " updated_at TEXT NOT NULL);"
    "CREATE INDEX stories_order ON stories(created_at, id);"
    "CREATE INDEX stories_child_id ON stories(child_id, created_at, id);"
    "CREATE INDEX stories_child_name ON stories(child_name, created_at, id);"
    "CREATE INDEX stories_language ON stories(language, created_at, id);",
    /* 1 -> 2: the invalidation outbox (sqlite_outbox.c); AUTOINCREMENT so
     * that a number is never reused once its row is removed. */
    "CREATE TABLE rc_outbox ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " pattern TEXT NOT NULL,"    /* the namespace's glob */
    " keys BLOB,"                /* NUL-terminated keys; NULL: the pattern */
    " applied INTEGER NOT NULL DEFAULT 0," /* 1 once in Redis */
    " written_at REAL NOT NULL);" /* julian day of the write */
    /* only the rows not yet applied: what readers and the bound look up */
    "CREATE INDEX rc_outbox_pending ON rc_outbox(seq) WHERE applied = 0;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof *migrations))

/* Reads PRAGMA user_version into *v. */
static int user_version(rc_sqlite_db *db, int *v)
{
    sqlite3_stmt *st;
    int rc = sq_prepare(db, "PRAGMA user_version", &st);
    if (rc != RC_OK)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *v = sqlite3_column_int(st, 0);
    else
        rc = sq_backend_err(db, "user_version");
    sqlite3_finalize(st);
    return rc;
}

/* Brings the schema to SCHEMA_VERSION in one transaction. The version is
 * read after BEGIN IMMEDIATE, so two processes opening a new file at once
 * migrate it once. */
int sq_migrate(rc_sqlite_db *db)
{
    char sql[64];
    int rc, v = 0;
    if ((rc = sq_exec(db, "BEGIN IMMEDIATE", "begin")) != RC_OK)
        return rc;
    rc = user_version(db, &v);
    if (rc == RC_OK && v > SCHEMA_VERSION)
        rc = rc_seterr(RC_EBACKEND,
                       "sqlite: database schema version %d is newer than "
                       "this library's (%d)",
                       v, SCHEMA_VERSION);
    for (; rc == RC_OK && v < SCHEMA_VERSION; v++)
        rc = sq_exec(db, migrations[v], "migrate");
    if (rc == RC_OK) {
        /* PRAGMA takes no parameters; the value is our own constant. */
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
        rc = sq_exec(db, sql, "user_version");
    }
    if (rc == RC_OK)
        return sq_exec(db, "COMMIT", "commit");
    sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}
