/*
 * sqlite_rows.c - mapping between entities and rows of the SQLite
 * database: binding an entity's columns and a query's arguments to a
 * statement, and reading a row back into a new entity. String lists are
 * stored as JSON array text (jansson), which keeps order, duplicates and
 * every byte of every item; optional fields are NULL; JSON-text fields
 * (full_response, generation_info, audio metadata) are stored as the text
 * given; a story's audio_file is three columns, all NULL for none.
 */
#include "sqlite_internal.h"

#include <ctype.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

char **sq_str_member(void *e, const rc_field *f)
{
    return RC_FIELD_PTR(e, f);
}

int sq_set_str(void *e, const rc_field *f, const char *s)
{
    char *copy = rc_strdup(s);
    if (s && !copy)
        return rc_seterr(RC_ENOMEM, "sqlite: out of memory");
    free(*sq_str_member(e, f));
    *sq_str_member(e, f) = copy;
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

int sq_bind_entity(sqlite_repo *r, sqlite3_stmt *st, const void *e)
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
    return src == SQLITE_OK ? RC_OK : sq_backend_err(r->db, "bind");
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

int sq_read_entity(sqlite_repo *r, sqlite3_stmt *st, void **out)
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

int sq_bind_args(sqlite_repo *r, sqlite3_stmt *st, const rc_query_spec *q,
                     const char *const *args, size_t nargs)
{
    const char *name = r->t->ops->name;
    size_t i, want = rc_query_nargs(q);
    if (nargs != want)
        return rc_seterr(RC_EINVAL,
                         "%s query %s takes %zu argument%s, got %zu", name,
                         q->name, want, want == 1 ? "" : "s", nargs);
    for (i = 0; i < nargs; i++) {
        int src, v;
        bool is_int = rc_query_arg_field(r->t->fields, q, i)->kind == RC_FK_INT;
        int rc = rc_query_arg_check(name, q->name, i, args ? args[i] : NULL, is_int);
        if (rc != RC_OK)
            return rc;
        if (is_int) {
            rc_int_canonical(args[i], &v);
            src = sqlite3_bind_int(st, (int)i + 1, v);
        } else {
            src = sqlite3_bind_text(st, (int)i + 1, args[i], -1,
                                    SQLITE_STATIC);
        }
        if (src != SQLITE_OK)
            return sq_backend_err(r->db, "bind");
    }
    return RC_OK;
}
