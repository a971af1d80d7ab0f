/*
 * sqlite_repository.c - the SQLite repositories: heroes, children and stories
 * in one database file.
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
 * Storage: one table per entity (heroes, children, stories), one column per
 * field. String lists are stored as JSON array text (jansson), which keeps
 * order, duplicates and every byte of every item. Optional fields are NULL.
 * JSON-text fields (full_response, generation_info, audio metadata) are stored
 * as the text given. A story's audio_file is three columns (audio_file_url,
 * audio_file_provider, audio_file_metadata); all NULL means no audio file.
 *
 * Every statement is prepared once, when the database is opened, and bound
 * with values: no SQL is ever built from a value.
 *
 * Schema: versioned with PRAGMA user_version. migrations[v] takes a database
 * from version v to v + 1; open applies the missing ones in one transaction
 * and refuses a database newer than this library.
 *
 * Behaviour: list_all and every query are ordered by created_at, then id.
 * save keeps a given id (RC_ECONFLICT when it exists) or generates 32 hex
 * digits (core/token.h), retrying on a collision; it keeps created_at and
 * updated_at when given and sets them to now (UTC) otherwise. update never
 * changes created_at (the stored one is kept) and sets updated_at to now.
 */
#include "repocache/sqlite_repository.h"

#include "repocache/codec.h"
#include "core/entity_fields.h"
#include "core/entity_queries.h"
#include "core/token.h"

#include <ctype.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUSY_TIMEOUT_MS 5000 /* how long a call waits for another writer */
#define ID_ATTEMPTS 8        /* generated ids tried before giving up */
#define MAX_COLUMNS 32       /* columns in the widest table */
#define SQL_MAX 2048         /* bytes in one generated statement */

/* ---- schema ---- */

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
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof *migrations))

/* ---- tables ---- */

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

static const table_def tables[T_COUNT] = {
    [T_HERO] = {&rc_hero_entity, &rc_hero_fields, "heroes"},
    [T_CHILD] = {&rc_child_entity, &rc_child_fields, "children"},
    [T_STORY] = {&rc_story_entity, &rc_story_fields, "stories"},
};

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
    pthread_mutex_t lock;                    /* held by every call */
    sqlite3_stmt *begin, *commit, *rollback; /* transaction control */
    table_rt rt[T_COUNT];                    /* per table */
};

typedef struct sqlite_repo {
    rc_repo base;       /* must be first */
    rc_sqlite_db *db;   /* borrowed */
    const table_def *t; /* the table */
    table_rt *rt;       /* db->rt[table] */
    sqlite3_stmt **st;  /* rt->st */
} sqlite_repo;

/* Records sqlite's message for the failed step `what`; returns RC_EBACKEND. */
static int backend_err(rc_sqlite_db *db, const char *what)
{
    return rc_seterr(RC_EBACKEND, "sqlite: %s: %s", what,
                     sqlite3_errmsg(db->conn));
}

/* Resets st for its next use. */
static void done_with(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Runs a statement that returns no rows; sqlite's result code. */
static int step_done(sqlite3_stmt *st)
{
    int src = sqlite3_step(st);
    return src == SQLITE_ROW ? SQLITE_DONE : src;
}

/* ---- ids ---- */

/* A new random id: 32 lowercase hex digits (128 bits, core/token.h). */
static char *random_id(void)
{
    char *id = malloc(RC_TOKEN_LEN + 1);
    if (id)
        rc_token_hex(id);
    return id;
}

/* ---- entity fields ---- */

/* The char * member of e described by f. */
static char **str_member(void *e, const rc_field *f)
{
    return RC_FIELD_PTR(e, f);
}

/* Replaces the string member f of e with a copy of s. RC_OK or RC_ENOMEM. */
static int set_str(void *e, const rc_field *f, const char *s)
{
    char *copy = rc_strdup(s);
    if (s && !copy)
        return rc_seterr(RC_ENOMEM, "sqlite: out of memory");
    free(*str_member(e, f));
    *str_member(e, f) = copy;
    return RC_OK;
}

/* Where column c lives in e; NULL when its nested struct is absent (then
 * created, zeroed, when create is true; NULL also on ENOMEM). */
static void *column_member(void *e, const column *c, bool create)
{
    void **sub;
    if (!c->parent)
        return RC_FIELD_PTR(e, c->f);
    sub = RC_FIELD_PTR(e, c->parent);
    if (!*sub && create)
        *sub = calloc(1, c->parent->sub->size);
    return *sub ? RC_FIELD_PTR(*sub, c->f) : NULL;
}

/* JSON array text of l (malloc'd); NULL on ENOMEM or invalid UTF-8. */
static char *list_to_json(const rc_strlist *l)
{
    json_t *arr = json_array();
    char *text = NULL;
    size_t i;
    if (!arr)
        return NULL;
    for (i = 0; i < l->len; i++)
        if (json_array_append_new(arr, json_string(l->items[i])) != 0)
            goto out;
    text = json_dumps(arr, JSON_COMPACT);
out:
    json_decref(arr);
    return text;
}

/* Fills the empty l from JSON array text. RC_OK, RC_ENOMEM or RC_EBACKEND. */
static int list_from_json(rc_strlist *l, const char *text, const char *col)
{
    json_t *arr = text ? json_loads(text, 0, NULL) : NULL;
    size_t i;
    json_t *v;
    int rc = RC_OK;
    if (!json_is_array(arr)) {
        json_decref(arr);
        return rc_seterr(RC_EBACKEND, "sqlite: column %s is not a JSON array",
                         col);
    }
    json_array_foreach(arr, i, v) {
        if (!json_is_string(v)) {
            rc = rc_seterr(RC_EBACKEND,
                           "sqlite: column %s holds a non-string item", col);
            break;
        }
        if ((rc = rc_strlist_push(l, json_string_value(v))) != RC_OK)
            break;
    }
    json_decref(arr);
    return rc;
}

/* Binds every column of e to ?1..?n in column order. */
static int bind_entity(sqlite_repo *r, sqlite3_stmt *st, const void *e)
{
    int src = SQLITE_OK;
    size_t i;
    for (i = 0; i < r->rt->ncols && src == SQLITE_OK; i++) {
        const column *c = &r->rt->cols[i];
        /* column_member never writes when create is false */
        const void *m = column_member((void *)e, c, false);
        int k = (int)i + 1;
        if (!m) {
            src = sqlite3_bind_null(st, k);
            continue;
        }
        switch (c->f->kind) {
        case RC_FK_STR:
        case RC_FK_JSON: {
            const char *s = *(const char *const *)m;
            src = s ? sqlite3_bind_text(st, k, s, -1, SQLITE_STATIC)
                    : sqlite3_bind_null(st, k);
            break;
        }
        case RC_FK_INT:
            src = sqlite3_bind_int(st, k, *(const int *)m);
            break;
        case RC_FK_OPTINT: {
            const rc_opt_int *o = m;
            src = o->set ? sqlite3_bind_int(st, k, o->value)
                         : sqlite3_bind_null(st, k);
            break;
        }
        case RC_FK_STRLIST: {
            char *json = list_to_json(m);
            if (!json)
                return rc_seterr(RC_EINVAL, "%s.%s: cannot encode the list",
                                 r->t->ops->name, c->name);
            src = sqlite3_bind_text(st, k, json, -1, free);
            break;
        }
        case RC_FK_OBJ: /* never a column (flattened at open) */
            break;
        }
    }
    return src == SQLITE_OK ? RC_OK : backend_err(r->db, "bind");
}

/* Sets column c of e from column i of the current row of st. */
static int read_column(sqlite3_stmt *st, int i, const column *c, void *e)
{
    bool null = sqlite3_column_type(st, i) == SQLITE_NULL;
    void *m;
    if (null && c->f->kind != RC_FK_OPTINT && c->f->kind != RC_FK_STRLIST)
        return RC_OK; /* NULL string; absent nested struct stays absent */
    if (!(m = column_member(e, c, true)))
        return rc_seterr(RC_ENOMEM, "sqlite: out of memory");
    switch (c->f->kind) {
    case RC_FK_STR:
    case RC_FK_JSON: {
        const char *text = (const char *)sqlite3_column_text(st, i);
        size_t n = (size_t)sqlite3_column_bytes(st, i);
        char *s = text ? malloc(n + 1) : NULL;
        if (!s)
            return rc_seterr(RC_ENOMEM, "sqlite: out of memory");
        memcpy(s, text, n);
        s[n] = '\0';
        *(char **)m = s;
        break;
    }
    case RC_FK_INT:
        *(int *)m = sqlite3_column_int(st, i);
        break;
    case RC_FK_OPTINT:
        ((rc_opt_int *)m)->set = !null;
        ((rc_opt_int *)m)->value = null ? 0 : sqlite3_column_int(st, i);
        break;
    case RC_FK_STRLIST:
        return list_from_json(
            m, null ? "[]" : (const char *)sqlite3_column_text(st, i),
            c->name);
    case RC_FK_OBJ:
        break;
    }
    return RC_OK;
}

/* *out = a new entity from the current row of st. */
static int read_entity(sqlite_repo *r, sqlite3_stmt *st, void **out)
{
    void *e = calloc(1, r->t->fields->size);
    size_t i;
    int rc = e ? RC_OK : rc_seterr(RC_ENOMEM, "sqlite: out of memory");
    for (i = 0; i < r->rt->ncols && rc == RC_OK; i++)
        rc = read_column(st, (int)i, &r->rt->cols[i], e);
    if (rc != RC_OK) {
        r->t->ops->free(e);
        return rc;
    }
    *out = e;
    return RC_OK;
}

/* ---- statement runners (the caller holds db->lock) ---- */

/* *out = the entity with id, RC_ENOTFOUND when absent. */
static int get_one(sqlite_repo *r, const char *id, void **out)
{
    sqlite3_stmt *st = r->st[S_GET];
    int src, rc;
    if (sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) != SQLITE_OK)
        rc = backend_err(r->db, "bind");
    else if ((src = sqlite3_step(st)) == SQLITE_ROW)
        rc = read_entity(r, st, out);
    else if (src == SQLITE_DONE)
        rc = rc_seterr(RC_ENOTFOUND, "%s '%s' not found", r->t->ops->name, id);
    else
        rc = backend_err(r->db, "select");
    done_with(st);
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
        if ((rc = read_entity(r, st, &e)) == RC_OK)
            rc = rc_list_push(l, e);
    }
    if (rc == RC_OK && src != SQLITE_DONE)
        rc = backend_err(r->db, "select");
    done_with(st);
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
    int rc = bind_entity(r, st, e);
    if (rc == RC_OK && step_done(st) != SQLITE_DONE) {
        if (sqlite3_extended_errcode(r->db->conn) ==
            SQLITE_CONSTRAINT_PRIMARYKEY)
            rc = rc_seterr(RC_ECONFLICT, "%s id '%s' already exists",
                           r->t->ops->name, r->t->ops->get_id(e));
        else
            rc = backend_err(r->db, "write");
    }
    done_with(st);
    return rc;
}

/* BEGIN IMMEDIATE: takes the write lock now, so the reads that follow and
 * the write form one atomic step, also against other processes. */
static int tx_begin(rc_sqlite_db *db)
{
    int src = step_done(db->begin);
    int rc = src == SQLITE_DONE ? RC_OK : backend_err(db, "begin");
    sqlite3_reset(db->begin);
    return rc;
}

/* Commits when rc is RC_OK, else rolls back; returns the final status. */
static int tx_end(rc_sqlite_db *db, int rc)
{
    if (rc == RC_OK) {
        if (step_done(db->commit) != SQLITE_DONE)
            rc = backend_err(db, "commit");
        sqlite3_reset(db->commit);
    }
    if (rc != RC_OK && !sqlite3_get_autocommit(db->conn)) {
        step_done(db->rollback);
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

/* Binds args to st after checking them against q: an argument whose field
 * is an integer must be decimal integer text. */
static int bind_args(sqlite_repo *r, sqlite3_stmt *st, const rc_query_spec *q,
                     const char *const *args, size_t nargs)
{
    const char *name = r->t->ops->name;
    size_t i, want = rc_query_nargs(q);
    if (nargs != want)
        return rc_seterr(RC_EINVAL,
                         "%s query %s takes %zu argument%s, got %zu", name,
                         q->name, want, want == 1 ? "" : "s", nargs);
    for (i = 0; i < nargs; i++) {
        int src;
        if (!args || !args[i])
            return rc_seterr(RC_EINVAL, "%s query %s: argument %zu is NULL",
                             name, q->name, i + 1);
        if (rc_query_arg_field(r->t->fields, q, i)->kind == RC_FK_INT) {
            const char *a = args[i];
            char *end;
            long v = strtol(a, &end, 10);
            if (!isdigit((unsigned char)a[*a == '-']) || *end || v < INT_MIN ||
                v > INT_MAX)
                return rc_seterr(RC_EINVAL,
                                 "%s query %s: argument %zu must be an "
                                 "integer, got '%s'",
                                 name, q->name, i + 1, args[i]);
            src = sqlite3_bind_int(st, (int)i + 1, (int)v);
        } else {
            src = sqlite3_bind_text(st, (int)i + 1, args[i], -1,
                                    SQLITE_STATIC);
        }
        if (src != SQLITE_OK)
            return backend_err(r->db, "bind");
    }
    return RC_OK;
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
    rc = bind_args(r, st, &qs->items[i], args, nargs);
    if (rc == RC_OK)
        rc = get_many(r, st, out);
    else
        done_with(st);
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
    if (rc == RC_OK && !*str_member(copy, r->rt->created))
        rc = set_str(copy, r->rt->created, now);
    if (rc == RC_OK && !*str_member(copy, r->rt->updated))
        rc = set_str(copy, r->rt->updated, now);
    free(now);
    pthread_mutex_lock(&r->db->lock);
    for (attempt = 0; rc == RC_OK; attempt++) {
        if (!given_id) {
            char *id = random_id();
            if (!id) {
                rc = rc_seterr(RC_EBACKEND, "sqlite: no random id");
                break;
            }
            free(*str_member(copy, r->rt->id));
            *str_member(copy, r->rt->id) = id;
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
        rc = set_str(copy, r->rt->updated, now);
    free(now);
    pthread_mutex_lock(&r->db->lock);
    if (rc == RC_OK && (rc = tx_begin(r->db)) == RC_OK) {
        rc = get_one(r, t->ops->get_id(entity), &prev);
        if (rc == RC_OK)
            rc = set_str(copy, r->rt->created,
                         *str_member(prev, r->rt->created));
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
                step_done(del) != SQLITE_DONE)
                rc = backend_err(r->db, "delete");
            done_with(del);
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
    for (i = 0; i < T_COUNT && tables[i].ops != ops; i++)
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
    r->t = &tables[i];
    r->rt = &db->rt[i];
    r->st = db->rt[i].st;
    *out = &r->base;
    return RC_OK;
}

/* ---- opening, migrating, preparing ---- */

/* Appends printf output to buf (of SQL_MAX bytes); false when it overflows. */
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

static int prepare(rc_sqlite_db *db, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v3(db->conn, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
                           NULL) != SQLITE_OK)
        return backend_err(db, "prepare");
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

/* Derives the columns of table ti and prepares its statements. */
static int prepare_table(rc_sqlite_db *db, int ti)
{
    const table_def *t = &tables[ti];
    table_rt *rt = &db->rt[ti];
    sqlite3_stmt **st = rt->st;
    char sql[SQL_MAX];
    bool ok = true;
    int rc;
    size_t q;
    const char *order = " ORDER BY created_at, id";

    if ((rc = rc_queries_check(t->fields)) != RC_OK ||
        (rc = build_columns(rt, t)) != RC_OK)
        return rc;
    sql[0] = '\0';
    ok = sql_cat(sql, "INSERT INTO %s (", t->table) &&
         sql_cols(sql, rt, COLS_NAMES) && sql_cat(sql, ") VALUES (") &&
         sql_cols(sql, rt, COLS_PARAMS) && sql_cat(sql, ")");
    if (!ok || (rc = prepare(db, sql, &st[S_INSERT])) != RC_OK)
        goto fail;
    ok = sql_select(sql, t, rt) && sql_cat(sql, " WHERE id = ?1");
    if (!ok || (rc = prepare(db, sql, &st[S_GET])) != RC_OK)
        goto fail;
    ok = sql_select(sql, t, rt) && sql_cat(sql, "%s", order);
    if (!ok || (rc = prepare(db, sql, &st[S_ALL])) != RC_OK)
        goto fail;
    sql[0] = '\0';
    ok = sql_cat(sql, "UPDATE %s SET ", t->table) &&
         sql_cols(sql, rt, COLS_SET) && sql_cat(sql, " WHERE id = ?1");
    if (!ok || (rc = prepare(db, sql, &st[S_UPDATE])) != RC_OK)
        goto fail;
    sql[0] = '\0';
    ok = sql_cat(sql, "DELETE FROM %s WHERE id = ?1", t->table);
    if (!ok || (rc = prepare(db, sql, &st[S_DELETE])) != RC_OK)
        goto fail;
    for (q = 0; q < t->fields->queries->count; q++) {
        ok = sql_select(sql, t, rt) &&
             sql_where(sql, &t->fields->queries->items[q]) &&
             sql_cat(sql, "%s", order);
        if (!ok || (rc = prepare(db, sql, &st[S_QUERY + q])) != RC_OK)
            goto fail;
    }
    return RC_OK;
fail:
    return ok ? rc : rc_seterr(RC_EBACKEND, "sqlite: statement too long");
}

static int exec(rc_sqlite_db *db, const char *sql, const char *what)
{
    if (sqlite3_exec(db->conn, sql, NULL, NULL, NULL) != SQLITE_OK)
        return backend_err(db, what);
    return RC_OK;
}

/* Reads PRAGMA user_version into *v. */
static int user_version(rc_sqlite_db *db, int *v)
{
    sqlite3_stmt *st;
    int rc = prepare(db, "PRAGMA user_version", &st);
    if (rc != RC_OK)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *v = sqlite3_column_int(st, 0);
    else
        rc = backend_err(db, "user_version");
    sqlite3_finalize(st);
    return rc;
}

/* Brings the schema to SCHEMA_VERSION in one transaction. The version is
 * read after BEGIN IMMEDIATE, so two processes opening a new file at once
 * migrate it once. */
static int migrate(rc_sqlite_db *db)
{
    char sql[64];
    int rc, v = 0;
    if ((rc = exec(db, "BEGIN IMMEDIATE", "begin")) != RC_OK)
        return rc;
    rc = user_version(db, &v);
    if (rc == RC_OK && v > SCHEMA_VERSION)
        rc = rc_seterr(RC_EBACKEND,
                       "sqlite: database schema version %d is newer than "
                       "this library's (%d)",
                       v, SCHEMA_VERSION);
    for (; rc == RC_OK && v < SCHEMA_VERSION; v++)
        rc = exec(db, migrations[v], "migrate");
    if (rc == RC_OK) {
        /* PRAGMA takes no parameters; the value is our own constant. */
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
        rc = exec(db, sql, "user_version");
    }
    if (rc == RC_OK)
        return exec(db, "COMMIT", "commit");
    sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int rc_sqlite_open(const char *path, rc_sqlite_db **out)
{
    rc_sqlite_db *db;
    int rc = RC_OK, i;
    if (out)
        *out = NULL;
    if (!path || !out)
        return rc_seterr(RC_EINVAL, "rc_sqlite_open: NULL argument");
    db = calloc(1, sizeof *db);
    if (!db)
        return rc_seterr(RC_ENOMEM, "sqlite: out of memory");
    if (pthread_mutex_init(&db->lock, NULL) != 0) {
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
        rc_sqlite_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db->conn, BUSY_TIMEOUT_MS);
    /* WAL: readers never block the writer. NORMAL is durable with WAL
     * except for the last commits on power loss, and never corrupts. */
    rc = exec(db, "PRAGMA journal_mode = WAL", "journal_mode");
    if (rc == RC_OK)
        rc = exec(db, "PRAGMA synchronous = NORMAL", "synchronous");
    if (rc == RC_OK)
        rc = migrate(db);
    if (rc == RC_OK)
        rc = prepare(db, "BEGIN IMMEDIATE", &db->begin);
    if (rc == RC_OK)
        rc = prepare(db, "COMMIT", &db->commit);
    if (rc == RC_OK)
        rc = prepare(db, "ROLLBACK", &db->rollback);
    for (i = 0; rc == RC_OK && i < T_COUNT; i++)
        rc = prepare_table(db, i);
    if (rc != RC_OK) {
        rc_sqlite_close(db);
        return rc;
    }
    *out = db;
    return RC_OK;
}

void rc_sqlite_close(rc_sqlite_db *db)
{
    int i, j;
    if (!db)
        return;
    for (i = 0; i < T_COUNT; i++)
        for (j = 0; j < S_COUNT; j++)
            sqlite3_finalize(db->rt[i].st[j]);
    sqlite3_finalize(db->begin);
    sqlite3_finalize(db->commit);
    sqlite3_finalize(db->rollback);
    sqlite3_close(db->conn);
    pthread_mutex_destroy(&db->lock);
    free(db);
}
