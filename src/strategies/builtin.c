/*
 * builtin.c - the hero, child and story strategies: one row of data each
 * (namespace, entity, codec, which setting gives the TTL, its default). Their
 * named queries, key segments (docs/wire-format.md) and the query keys an entity belongs to come
 * from the entity's query table in core (core/entity_queries.h), the one
 * list of an entity's queries. The cache logic is elsewhere, once
 * (src/repository/cached_repository.c).
 */
#include "repocache/strategy.h"

#include "core/entity_fields.h"
#include "core/entity_queries.h"

#include <pthread.h>
#include <stddef.h>
#include <string.h>

_Static_assert(RC_QUERY_MAX_ARGS <= RC_STRATEGY_MAX_ARGS,
               "a built-in query must fit a strategy query");

/* What one built-in strategy adds to its entity's description. */
typedef struct builtin {
    const char *name;            /* namespace and entity name */
    const rc_entity_ops *entity; /* the entity type */
    const rc_codec *codec;       /* its JSON codec */
    const rc_fields *fields;     /* its description: fields and queries */
    size_t ttl_setting;          /* offsetof the rc_settings TTL field */
    int default_ttl;             /* TTL without settings (RC_DEFAULT_*) */
    int (*query_keys)(const void *e, rc_query_key_fn emit,
                      void *ud); /* rc_strategy.query_keys */
} builtin;

/* The strategy callback listing the query keys entity e of n belongs to. */
#define QUERY_KEYS_(n)                                                         \
    static int n##_query_keys(const void *e, rc_query_key_fn emit, void *ud)   \
    {                                                                          \
        return rc_queries_emit(&rc_##n##_fields, e, emit, ud);                 \
    }
QUERY_KEYS_(hero)
QUERY_KEYS_(child)
QUERY_KEYS_(story)

#define BUILTIN_(n, ttl)                                                       \
    {                                                                          \
        .name = #n, .entity = &rc_##n##_entity, .codec = &rc_##n##_codec,      \
        .fields = &rc_##n##_fields,                                            \
        .ttl_setting = offsetof(rc_settings, cache_##n##_ttl),                 \
        .default_ttl = ttl, .query_keys = n##_query_keys,                      \
    }
enum { B_HERO, B_CHILD, B_STORY, NBUILTINS };
static const builtin builtins[NBUILTINS] = {
    [B_HERO] = BUILTIN_(hero, RC_DEFAULT_HERO_TTL),
    [B_CHILD] = BUILTIN_(child, RC_DEFAULT_CHILD_TTL),
    [B_STORY] = BUILTIN_(story, RC_DEFAULT_STORY_TTL),
};

const char *rc_strategy_builtin_name(size_t i)
{
    return i < NBUILTINS ? builtins[i].name : NULL;
}

/* The strategies' query tables, derived once from the entities' ones. */
static rc_query_def query_defs[NBUILTINS][RC_QUERIES_MAX];
static pthread_once_t query_defs_once = PTHREAD_ONCE_INIT;

/* The bits of q's integer arguments (rc_query_def.int_args). */
static unsigned int_args(const rc_fields *t, const rc_query_spec *q)
{
    unsigned bits = 0;
    for (size_t i = 0; i < rc_query_nargs(q); i++)
        if (rc_query_arg_field(t, q, i)->kind == RC_FK_INT)
            bits |= 1u << i;
    return bits;
}

/* Fills query_defs: name, segment and argument count of each query of
 * each built-in's entity, in the entity's order. */
static void build_query_defs(void)
{
    for (size_t b = 0; b < NBUILTINS; b++) {
        const rc_queries *qs = builtins[b].fields->queries;
        for (size_t i = 0; i < qs->count && i < RC_QUERIES_MAX; i++)
            query_defs[b][i] = (rc_query_def){
                .name = qs->items[i].name,
                .segment = qs->items[i].segment,
                .nargs = rc_query_nargs(&qs->items[i]),
                .int_args = int_args(builtins[b].fields, &qs->items[i]),
            };
    }
}

/* *out = the strategy of b with the TTLs of s: b's setting, else
 * CACHE_DEFAULT_TTL when that is not positive (then b's default); s == NULL
 * keeps the defaults. */
static int from_settings(const builtin *b, const rc_settings *s,
                         rc_strategy *out)
{
    if (!out)
        return rc_seterr(RC_EINVAL, "strategy: out is NULL");
    int rc = rc_queries_check(b->fields);
    if (rc != RC_OK)
        return rc;
    pthread_once(&query_defs_once, build_query_defs);
    *out = (rc_strategy){
        .ns = b->name,
        .entity = b->entity,
        .codec = b->codec,
        .queries = query_defs[b - builtins],
        .nqueries = b->fields->queries->count,
        .ttl = b->default_ttl,
        .negative_ttl = RC_DEFAULT_NEGATIVE_TTL,
        .cache_on_read = true,
        .cache_on_write = true,
        .query_keys = b->query_keys,
    };
    if (s) {
        int ttl = *(const int *)((const char *)s + b->ttl_setting);
        out->ttl = ttl > 0                    ? ttl
                   : s->cache_default_ttl > 0 ? s->cache_default_ttl
                                              : b->default_ttl;
        out->negative_ttl =
            s->cache_negative_ttl > 0 ? s->cache_negative_ttl : 0;
    }
    return RC_OK;
}

int rc_strategy_hero(const rc_settings *s, rc_strategy *out)
{
    return from_settings(&builtins[B_HERO], s, out);
}

int rc_strategy_child(const rc_settings *s, rc_strategy *out)
{
    return from_settings(&builtins[B_CHILD], s, out);
}

int rc_strategy_story(const rc_settings *s, rc_strategy *out)
{
    return from_settings(&builtins[B_STORY], s, out);
}

int rc_strategy_builtin(const char *name, const rc_settings *s,
                        rc_strategy *out)
{
    for (size_t b = 0; name && b < NBUILTINS; b++)
        if (strcmp(name, builtins[b].name) == 0)
            return from_settings(&builtins[b], s, out);
    return rc_seterr(RC_EINVAL, "unknown entity '%s' (hero, child or story)",
                     name ? name : "(null)");
}
