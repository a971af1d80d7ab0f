/*
 * sqlite_internal.h - what the files of the SQLite repository share: the
 * table descriptions, the per-connection state, the repository struct and
 * the functions each file offers the others.
 *
 *   sqlite_schema.c      the schema and its migrations
 *   sqlite_statements.c  the tables and their generated, prepared statements
 *   sqlite_rows.c        binding entities and arguments, reading rows
 *   sqlite_repository.c  opening, the statement runners and the vtable
 */
#ifndef RC_SQLITE_INTERNAL_H
#define RC_SQLITE_INTERNAL_H

#include "repocache/sqlite_repository.h"

#include "core/entity_fields.h"
#include "core/entity_queries.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#define MAX_COLUMNS 32 /* columns in the widest table */

/* One table per entity. Its columns are the entity's fields and its named
 * queries the entity's queries, both taken from the entity's field table
 * (core/entity_fields.h, core/entity_queries.h) rather than listed again
 * here: a field's column is named as the field, a field of a nested struct
 * as "<struct>_<field>" (audio_file_url); a query matches each argument
 * against its field's column, as an integer for an integer field. A field
 * added to an entity without a migration adding its column makes open fail
 * loudly (prepare error). */
typedef struct table_def {
    const rc_entity_ops *ops; /* the entity type stored */
    const rc_fields *fields;  /* its field table (and queries) */
    const char *table;        /* table name */
} table_def;

enum { T_HERO, T_CHILD, T_STORY, T_COUNT };

/* The tables, by T_*: the one list of what this database stores. */
extern const table_def sq_tables[T_COUNT];

/* One column: a field, possibly inside a nested struct. */
typedef struct column {
    char name[64];          /* column name */
    const rc_field *f;      /* the field stored (never RC_FK_OBJ) */
    const rc_field *parent; /* the RC_FK_OBJ field holding f, or NULL */
} column;

/* Statements of one table; st[S_QUERY + i] runs the entity's query i. */
enum {
    S_INSERT, S_GET, S_ALL, S_UPDATE, S_DELETE, S_QUERY,
    S_COUNT = S_QUERY + RC_QUERIES_MAX
};

/* What open derives from a table_def, per connection. */
typedef struct table_rt {
    column cols[MAX_COLUMNS];  /* in statement order */
    size_t ncols;              /* columns in use */
    const rc_field *id, *created, *updated; /* char * fields save sets */
    sqlite3_stmt *st[S_COUNT]; /* prepared at open */
} table_rt;

/* ---- the database and the repositories ---- */

struct rc_sqlite_db {
    sqlite3 *conn;                           /* the one connection */
    pthread_mutex_t lock;                    /* held by every call (recursive:
                                                a batch holds it too) */
    sqlite3_stmt *begin, *commit, *rollback; /* transaction control */
    bool in_batch;                           /* rc_sqlite_batch is running:
                                                its transaction is the one */
    table_rt rt[T_COUNT];                    /* per table */
};

typedef struct sqlite_repo {
    rc_repo base;       /* must be first */
    rc_sqlite_db *db;   /* borrowed */
    const table_def *t; /* the table */
    table_rt *rt;       /* db->rt[table] */
    sqlite3_stmt **st;  /* rt->st */
} sqlite_repo;

/* ---- statements (sqlite_statements.c) ---- */

/* Records sqlite's message for the failed step `what`; returns RC_EBACKEND. */
int sq_backend_err(rc_sqlite_db *db, const char *what);
/* Resets st for its next use. */
void sq_done_with(sqlite3_stmt *st);
/* Runs a statement that returns no rows; sqlite's result code. */
int sq_step_done(sqlite3_stmt *st);
/* Runs sql (no values bound, no rows wanted); RC_OK or RC_EBACKEND. */
int sq_exec(rc_sqlite_db *db, const char *sql, const char *what);
/* Prepares sql into *st for repeated use; RC_OK or RC_EBACKEND. */
int sq_prepare(rc_sqlite_db *db, const char *sql, sqlite3_stmt **st);
/* Derives every table's columns and prepares every statement of db
 * (transaction control and each table's). RC_OK or RC_EBACKEND. */
int sq_prepare_all(rc_sqlite_db *db);
/* Finalizes whatever sq_prepare_all prepared (all or part). */
void sq_finalize_all(rc_sqlite_db *db);

/* ---- the schema (sqlite_schema.c) ---- */

/* Brings db's schema to this library's version; RC_OK or RC_EBACKEND
 * (also for a database newer than this library). */
int sq_migrate(rc_sqlite_db *db);

/* ---- rows (sqlite_rows.c) ---- */

/* The char * member of e described by f. */
char **sq_str_member(void *e, const rc_field *f);
/* Replaces the string member f of e with a copy of s. RC_OK or RC_ENOMEM. */
int sq_set_str(void *e, const rc_field *f, const char *s);
/* Binds every column of e to ?1..?n in column order. */
int sq_bind_entity(sqlite_repo *r, sqlite3_stmt *st, const void *e);
/* Binds args to st after checking them against q: an argument whose field
 * is an integer must be decimal integer text. RC_EINVAL, RC_EBACKEND. */
int sq_bind_args(sqlite_repo *r, sqlite3_stmt *st, const rc_query_spec *q,
                 const char *const *args, size_t nargs);
/* *out = a new entity from the current row of st. */
int sq_read_entity(sqlite_repo *r, sqlite3_stmt *st, void **out);

#endif
