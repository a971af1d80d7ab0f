/*
 * entity_queries.h - internal: the named queries of each entity, once.
 *
 * A named query selects the entities whose fields equal its arguments, one
 * field per argument. An entity's query table (hanging off its field table,
 * rc_hero_fields.queries ...) is the only list of its queries: the built-in
 * strategies take each query's name, argument count and key segment from it,
 * and the query keys an entity belongs to (rc_queries_emit); the SQLite
 * repository derives its WHERE clauses from it and binds an argument as an
 * integer when its field is an RC_FK_INT, as text when an RC_FK_STR.
 */
#ifndef RC_ENTITY_QUERIES_H
#define RC_ENTITY_QUERIES_H

#include "core/entity_fields.h"

#include <stdbool.h>
#include <stddef.h>

#define RC_QUERY_MAX_ARGS 4 /* arguments of one query, at most */
#define RC_QUERIES_MAX 4    /* queries of one entity, at most */

/* One named query: the fields its arguments must equal, in order. */
typedef struct rc_query_spec {
    const char *name;    /* as given to find_by_query (RC_Q_*) */
    const char *segment; /* its short name in cache keys ("lang") */
    const char *fields[RC_QUERY_MAX_ARGS]; /* field each argument equals
                                              (top level); NULL ends */
} rc_query_spec;

/* The named queries of one entity. */
typedef struct rc_queries {
    const rc_query_spec *items; /* the queries, in a fixed order */
    size_t count;               /* number of queries */
} rc_queries;

/* The query tables of the built-in entities (rc_hero_fields.queries ...). */
extern const rc_queries rc_hero_queries;
extern const rc_queries rc_child_queries;
extern const rc_queries rc_story_queries;

/* Callback of rc_queries_emit: one query an entity belongs to and its
 * arguments (borrowed, valid during the call). RC_OK, or a status that
 * stops the enumeration and is passed back. */
typedef int (*rc_query_emit_fn)(void *ud, const char *query,
                                const char *const *args, size_t nargs);

/* The number of arguments of q. */
size_t rc_query_nargs(const rc_query_spec *q);
/* The field of t that argument i of q equals: a top-level RC_FK_STR or
 * RC_FK_INT field; NULL when q names no such field or i is out of range. */
const rc_field *rc_query_arg_field(const rc_fields *t, const rc_query_spec *q,
                                   size_t i);
/* RC_OK when arg is a usable argument i (from 0) of query (of who, for the
 * message): not NULL, at most RC_QUERY_ARG_MAX bytes and, when is_int, an
 * int written canonically (rc_int_canonical). Else RC_EINVAL saying which
 * rule it broke. The one check the cache keys and the SQLite queries share,
 * so that one answer never has two keys. */
int rc_query_arg_check(const char *who, const char *query, size_t i,
                       const char *arg, bool is_int);
/* RC_OK when every query of t is usable: a name and a segment, 1 to
 * RC_QUERY_MAX_ARGS arguments each naming a field as rc_query_arg_field
 * accepts, names unique, at most RC_QUERIES_MAX queries. Else RC_EINVAL
 * naming the problem. A table without queries is fine. */
int rc_queries_check(const rc_fields *t);
/*
 * Calls emit once per query of t, in table order, whose arguments all have
 * a value in entity e: string fields as they are, integer fields in
 * decimal. A NULL string field emits nothing for its queries. Returns RC_OK,
 * the first non-OK status of emit, or RC_EINVAL when the table is not
 * usable (rc_queries_check).
 */
int rc_queries_emit(const rc_fields *t, const void *e, rc_query_emit_fn emit,
                    void *ud);

#endif
