/*
 * entity_queries.c - the named queries of hero, child and story as data
 * (entity_queries.h), and the generic walks over them: argument fields,
 * checks, and the queries an entity belongs to.
 */
#include "core/entity_queries.h"

#include "core/str.h"
#include "repocache/status.h"

#include <stdio.h>
#include <string.h>

/* ---- the tables: name, key segment, the field each argument equals ---- */

static const rc_query_spec hero_queries_[] = {
    {RC_Q_BY_LANGUAGE, "lang", {"language"}},
    {RC_Q_BY_NAME, "name", {"name"}},
};

static const rc_query_spec child_queries_[] = {
    {RC_Q_BY_NAME, "name", {"name"}},
    /* one free-text part (name) first, then an age and a gender: the key
     * "child:exact:{name}:{age}:{gender}" stays unambiguous */
    {RC_Q_EXACT_MATCH, "exact", {"name", "age", "gender"}},
};

static const rc_query_spec story_queries_[] = {
    {RC_Q_BY_CHILD_ID, "child", {"child_id"}},
    {RC_Q_BY_CHILD_NAME, "child_name", {"child_name"}},
    {RC_Q_BY_LANGUAGE, "lang", {"language"}},
};

#define QUERIES_(arr)                                                          \
    {                                                                          \
        .items = arr, .count = sizeof arr / sizeof arr[0]                      \
    }
const rc_queries rc_hero_queries = QUERIES_(hero_queries_);
const rc_queries rc_child_queries = QUERIES_(child_queries_);
const rc_queries rc_story_queries = QUERIES_(story_queries_);

/* ---- walks ---- */

size_t rc_query_nargs(const rc_query_spec *q)
{
    size_t n = 0;
    while (n < RC_QUERY_MAX_ARGS && q->fields[n])
        n++;
    return n;
}

int rc_query_arg_check(const char *who, const char *query, size_t i,
                       const char *arg, bool is_int)
{
    if (!arg)
        return rc_seterr(RC_EINVAL, "%s.%s: argument %zu is NULL", who, query, i + 1);
    size_t n = strlen(arg);
    if (n > RC_QUERY_ARG_MAX)
        return rc_seterr(RC_EINVAL, "%s.%s: argument %zu is %zu bytes, more than %d",
                         who, query, i + 1, n, RC_QUERY_ARG_MAX);
    if (is_int && !rc_int_canonical(arg, NULL))
        return rc_seterr(RC_EINVAL,
                         "%s.%s: argument %zu must be an integer written as "
                         "digits without a leading zero or '+' (3, not 03), got '%s'",
                         who, query, i + 1, arg);
    return RC_OK;
}

const rc_field *rc_query_arg_field(const rc_fields *t, const rc_query_spec *q,
                                   size_t i)
{
    if (i >= rc_query_nargs(q))
        return NULL;
    for (size_t k = 0; k < t->count; k++) {
        const rc_field *f = &t->items[k];
        if (strcmp(f->name, q->fields[i]) == 0)
            return f->kind == RC_FK_STR || f->kind == RC_FK_INT ? f : NULL;
    }
    return NULL;
}

/* RC_OK when query i of t is usable and its name is not an earlier one's. */
static int check_query_(const rc_fields *t, size_t i)
{
    const rc_query_spec *q = &t->queries->items[i];
    size_t n;
    if (!q->name || !*q->name || !q->segment || !*q->segment)
        return rc_seterr(RC_EINVAL, "%s: query %zu lacks a name or segment",
                         t->name, i);
    if ((n = rc_query_nargs(q)) == 0)
        return rc_seterr(RC_EINVAL, "%s query %s: no arguments", t->name,
                         q->name);
    for (size_t a = 0; a < n; a++)
        if (!rc_query_arg_field(t, q, a))
            return rc_seterr(RC_EINVAL,
                             "%s query %s: '%s' is no string or integer field",
                             t->name, q->name, q->fields[a]);
    for (size_t j = 0; j < i; j++)
        if (strcmp(t->queries->items[j].name, q->name) == 0)
            return rc_seterr(RC_EINVAL, "%s: query %s appears twice", t->name,
                             q->name);
    return RC_OK;
}

int rc_queries_check(const rc_fields *t)
{
    if (!t->queries)
        return RC_OK;
    if (t->queries->count > RC_QUERIES_MAX)
        return rc_seterr(RC_EINVAL, "%s: more than %d queries", t->name,
                         RC_QUERIES_MAX);
    for (size_t i = 0; i < t->queries->count; i++) {
        int rc = check_query_(t, i);
        if (rc != RC_OK)
            return rc;
    }
    return RC_OK;
}

/* Emits query q of t for entity e, unless a string argument is NULL. */
static int emit_query_(const rc_fields *t, const rc_query_spec *q,
                       const void *e, rc_query_emit_fn emit, void *ud)
{
    char ints[RC_QUERY_MAX_ARGS][16]; /* decimal text of integer arguments */
    const char *args[RC_QUERY_MAX_ARGS];
    size_t n = rc_query_nargs(q);
    for (size_t i = 0; i < n; i++) {
        const rc_field *f = rc_query_arg_field(t, q, i);
        if (f->kind == RC_FK_INT) {
            snprintf(ints[i], sizeof ints[i], "%d",
                     *(const int *)RC_FIELD_CPTR(e, f));
            args[i] = ints[i];
        } else if (!(args[i] = *(const char *const *)RC_FIELD_CPTR(e, f))) {
            return RC_OK; /* an absent value belongs to no key */
        }
    }
    return emit(ud, q->name, args, n);
}

int rc_queries_emit(const rc_fields *t, const void *e, rc_query_emit_fn emit,
                    void *ud)
{
    int rc = rc_queries_check(t);
    for (size_t i = 0; rc == RC_OK && t->queries && i < t->queries->count; i++)
        rc = emit_query_(t, &t->queries->items[i], e, emit, ud);
    return rc;
}
