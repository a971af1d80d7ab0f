/*
 * sqlite_statements.c - the tables of the SQLite database and their
 * statements. A table's columns are derived from its entity's field table
 * at open, and every statement (insert, get, all, update, delete, one per
 * named query) is generated from them and prepared once: values are only
 * ever bound, no SQL is built from a value.
 */
#include "sqlite_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SQL_MAX 2048 /* bytes in one generated statement */

const table_def sq_tables[T_COUNT] = {
    [T_HERO] = {&rc_hero_entity, &rc_hero_fields, "heroes"},
    [T_CHILD] = {&rc_child_entity, &rc_child_fields, "children"},
    [T_STORY] = {&rc_story_entity, &rc_story_fields, "stories"},
};

int sq_backend_err(rc_sqlite_db *db, const char *what)
{
    return rc_seterr(RC_EBACKEND, "sqlite: %s: %s", what,
                     sqlite3_errmsg(db->conn));
}

void sq_done_with(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

int sq_step_done(sqlite3_stmt *st)
{
    int src = sqlite3_step(st);
    return src == SQLITE_ROW ? SQLITE_DONE : src;
}

int sq_exec(rc_sqlite_db *db, const char *sql, const char *what)
{
    if (sqlite3_exec(db->conn, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sq_backend_err(db, what);
    return RC_OK;
}

/* Appends printf output to buf (of SQL_MAX bytes); false when it overflows. */
static bool sql_cat(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool sql_cat(char *buf, const char *fmt, ...)
{
    size_t n = strlen(buf);
    va_list ap;
    int w;
    va_start(ap, fmt);
    w = vsnprintf(buf + n, SQL_MAX - n, fmt, ap);
    va_end(ap);
    return w >= 0 && (size_t)w < SQL_MAX - n;
}

/* Column list "id, name, ..." or placeholders "?1, ?2, ..." or assignments
 * "name = ?2, ..." (every column but id) of rt, appended to buf. */
enum cols_form { COLS_NAMES, COLS_PARAMS, COLS_SET };

static bool sql_cols(char *buf, const table_rt *rt, enum cols_form form)
{
    bool ok = true;
    size_t i;
    for (i = 0; i < rt->ncols && ok; i++) {
        const char *sep = i > (form == COLS_SET) ? ", " : "";
        if (form == COLS_NAMES)
            ok = sql_cat(buf, "%s%s", sep, rt->cols[i].name);
        else if (form == COLS_PARAMS)
            ok = sql_cat(buf, "%s?%zu", sep, i + 1);
        else if (i > 0)
            ok = sql_cat(buf, "%s%s = ?%zu", sep, rt->cols[i].name, i + 1);
    }
    return ok;
}

/* SELECT <columns> FROM <table> into buf. */
static bool sql_select(char *buf, const table_def *t, const table_rt *rt)
{
    buf[0] = '\0';
    return sql_cat(buf, "SELECT ") && sql_cols(buf, rt, COLS_NAMES) &&
           sql_cat(buf, " FROM %s", t->table);
}

/* " WHERE <field> = ?1 AND ..." of query q (a field's column is named as
 * the field), appended to buf. */
static bool sql_where(char *buf, const rc_query_spec *q)
{
    bool ok = true;
    size_t i, n = rc_query_nargs(q);
    for (i = 0; i < n && ok; i++)
        ok = sql_cat(buf, "%s%s = ?%zu", i ? " AND " : " WHERE ", q->fields[i],
                     i + 1);
    return ok;
}

int sq_prepare(rc_sqlite_db *db, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v3(db->conn, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
                           NULL) != SQLITE_OK)
        return sq_backend_err(db, "prepare");
    return RC_OK;
}

/* Appends column `name` for field f (inside parent, or NULL) to rt. */
static int add_column(table_rt *rt, const char *name, const rc_field *f,
                      const rc_field *parent)
{
    column *c = &rt->cols[rt->ncols];
    if (rt->ncols == MAX_COLUMNS)
        return rc_seterr(RC_EBACKEND, "sqlite: too many columns");
    if (!parent && f->kind == RC_FK_STR) {
        if (strcmp(f->name, "id") == 0)
            rt->id = f;
        else if (strcmp(f->name, "created_at") == 0)
            rt->created = f;
        else if (strcmp(f->name, "updated_at") == 0)
            rt->updated = f;
    }
    snprintf(c->name, sizeof c->name, "%s", name);
    c->f = f;
    c->parent = parent;
    rt->ncols++;
    return RC_OK;
}

/* Fills rt's columns from t's field table, flattening nested structs. */
static int build_columns(table_rt *rt, const table_def *t)
{
    const rc_fields *fs = t->fields;
    size_t i, j;
    int rc = RC_OK;
    for (i = 0; i < fs->count && rc == RC_OK; i++) {
        const rc_field *f = &fs->items[i];
        if (f->kind != RC_FK_OBJ) {
            rc = add_column(rt, f->name, f, NULL);
            continue;
        }
        for (j = 0; j < f->sub->count && rc == RC_OK; j++) {
            char name[64];
            snprintf(name, sizeof name, "%s_%s", f->name,
                     f->sub->items[j].name);
            rc = add_column(rt, name, &f->sub->items[j], f);
        }
    }
    /* id first (UPDATE binds it as ?1); every entity has the three stamps */
    if (rc == RC_OK && (rt->ncols == 0 || rt->cols[0].f != rt->id ||
                        !rt->created || !rt->updated))
        rc = rc_seterr(RC_EBACKEND, "sqlite: %s: unexpected field table",
                       t->table);
    return rc;
}

/* Writes statement number s (S_*) of table t into sql (SQL_MAX bytes);
 * false when it does not fit. Every statement lists the columns of rt;
 * lists and queries are ordered by created_at, then id. */
static bool statement_sql(char *sql, const table_def *t, const table_rt *rt,
                          int s)
{
    const char *order = " ORDER BY created_at, id";
    sql[0] = '\0';
    switch (s) {
    case S_INSERT:
        return sql_cat(sql, "INSERT INTO %s (", t->table) &&
               sql_cols(sql, rt, COLS_NAMES) && sql_cat(sql, ") VALUES (") &&
               sql_cols(sql, rt, COLS_PARAMS) && sql_cat(sql, ")");
    case S_GET:
        return sql_select(sql, t, rt) && sql_cat(sql, " WHERE id = ?1");
    case S_ALL:
        return sql_select(sql, t, rt) && sql_cat(sql, "%s", order);
    case S_UPDATE:
        return sql_cat(sql, "UPDATE %s SET ", t->table) &&
               sql_cols(sql, rt, COLS_SET) && sql_cat(sql, " WHERE id = ?1");
    case S_DELETE:
        return sql_cat(sql, "DELETE FROM %s WHERE id = ?1", t->table);
    default: /* the entity's query s - S_QUERY */
        return sql_select(sql, t, rt) &&
               sql_where(sql, &t->fields->queries->items[s - S_QUERY]) &&
               sql_cat(sql, "%s", order);
    }
}

/* Derives the columns of table ti and prepares its statements. */
static int prepare_table(rc_sqlite_db *db, int ti)
{
    const table_def *t = &sq_tables[ti];
    table_rt *rt = &db->rt[ti];
    char sql[SQL_MAX];
    int rc, s, n;

    if (rc_queries_check(t->fields) != RC_OK)
        return rc_seterr(RC_EBACKEND, "sqlite: %s: %s", t->table,
                         rc_errmsg());
    if ((rc = build_columns(rt, t)) != RC_OK)
        return rc;
    n = S_QUERY + (int)t->fields->queries->count;
    for (s = 0; s < n; s++) {
        if (!statement_sql(sql, t, rt, s))
            return rc_seterr(RC_EBACKEND, "sqlite: statement too long");
        if ((rc = sq_prepare(db, sql, &rt->st[s])) != RC_OK)
            return rc;
    }
    return RC_OK;
}

int sq_prepare_all(rc_sqlite_db *db)
{
    int rc = sq_prepare(db, "BEGIN IMMEDIATE", &db->begin);
    if (rc == RC_OK)
        rc = sq_prepare(db, "COMMIT", &db->commit);
    if (rc == RC_OK)
        rc = sq_prepare(db, "ROLLBACK", &db->rollback);
    for (int i = 0; rc == RC_OK && i < T_COUNT; i++)
        rc = prepare_table(db, i);
    if (rc == RC_OK)
        rc = sq_outbox_prepare(db);
    return rc;
}

void sq_finalize_all(rc_sqlite_db *db)
{
    sq_outbox_finalize(db); /* first: it may still run a transaction */
    for (int i = 0; i < T_COUNT; i++)
        for (int j = 0; j < S_COUNT; j++)
            sqlite3_finalize(db->rt[i].st[j]);
    sqlite3_finalize(db->begin);
    sqlite3_finalize(db->commit);
    sqlite3_finalize(db->rollback);
}
