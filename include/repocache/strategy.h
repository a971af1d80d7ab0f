/*
 * repocache/strategy.h - entity cache strategies: what the cached decorator
 * needs to know about one entity type, as data (in the manner of Redis's
 * dictType): key namespace, named queries and their key segments, TTLs,
 * flags, the codec, and one callback listing the query keys an entity's
 * field values belong to (what a write must invalidate).
 *
 * hero, child and story are three instances (rc_strategy_hero() ...; their
 * queries are those of the entities, repocache/entity.h); a user
 * fills an rc_strategy for an entity of their own the same way, without
 * touching the library.
 *
 * Key layout (docs/wire-format.md), with the optional prefix P
 * (CACHE_KEY_PREFIX):
 *     by id:  P + ns + ":" + id                    "hero:42"
 *     all:    P + ns + ":all"                      "hero:all"
 *     query:  P + ns + ":" + segment + ":" + args joined by ":"
 *                                                  "child:exact:Ann:7:female"
 * Arguments go in byte for byte (spaces, colons, non-ASCII): the layout of
 * docs/wire-format.md, shared with the Python service. Two keys never meet:
 * a by-id key has no ':' after the namespace (ids are [A-Za-z0-9._-] and
 * never "all", rc_id_validate) while a query key always has one; segments
 * are distinct within a strategy, have no ':', are not "all" and do not
 * start with '~' (rc_strategy_check); and each built-in query has at most
 * one free-text argument, placed first, followed by constrained ones (an
 * age, a gender).
 * A user query with several free-text arguments sets escape_args, which
 * writes ':' as "\:" and '\' as "\\" inside each argument.
 *
 * Keys under P + ns + ":~" are the decorator's own (leases, negative
 * entries; see repocache/cached_repository.h); no data key of
 * docs/wire-format.md and no id can take that form.
 */
#ifndef REPOCACHE_STRATEGY_H
#define REPOCACHE_STRATEGY_H

#include "repocache/export.h"
#include "repocache/codec.h"
#include "repocache/entity.h"
#include "repocache/settings.h"
#include "repocache/status.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RC_STRATEGY_MAX_ARGS 8 /* most arguments a named query may take */

/* One named query of an entity and its key segment. */
typedef struct rc_query_def {
    const char *name;    /* query name, as passed to find_by_query ("by_language") */
    const char *segment; /* key segment ("lang" gives "hero:lang:{language}") */
    size_t nargs;        /* number of string arguments (1..RC_STRATEGY_MAX_ARGS) */
    bool escape_args;    /* escape ':' and '\' inside arguments (off for
                            the built-ins: their keys are fixed by
                            docs/wire-format.md) */
    unsigned int_args;   /* bit i set: argument i is an integer, refused
                            unless canonical (see RC_QUERY_ARG_MAX) */
} rc_query_def;

/* Receives one query key an entity belongs to: the query name and its
 * arguments (borrowed, valid during the call). Returns RC_OK or a status
 * that stops the enumeration and is passed back. */
typedef int (*rc_query_key_fn)(void *ud, const char *query,
                               const char *const *args, size_t nargs);

typedef struct rc_strategy {
    /* Data */
    const char *ns;                /* key namespace ("hero"); [A-Za-z0-9_-]+ */
    const rc_entity_ops *entity;   /* the entity type */
    const rc_codec *codec;         /* its JSON codec (cache values) */
    const rc_query_def *queries;   /* table of named queries (borrowed) */
    size_t nqueries;               /* entries in queries */
    int ttl;                       /* seconds a cached value lives (> 0) */
    int negative_ttl;              /* seconds a not-found by id is cached;
                                      0 = negative caching off */
    /* Flags */
    bool cache_on_read;            /* fill the cache on a read miss */
    bool cache_on_write;           /* store the entity after a write */
    /* Callbacks */
    /* Calls emit once per (query, args) whose answer contains entity e,
     * i.e. the query keys a write of e must invalidate. A field that is
     * absent (NULL) emits nothing for its query. Returns RC_OK or the first
     * non-OK status of emit. NULL: the entity belongs to no query key (a
     * write then invalidates every query key of the namespace). */
    int (*query_keys)(const void *e, rc_query_key_fn emit, void *ud);
    /* Room for members added later, each meaning "as before" when zero
     * (see "Growing structs" in repocache/export.h): initialise the whole
     * struct, e.g. with designated initializers. */
    void *reserved_[4];
} rc_strategy;

/* ---- the built-in strategies ---- */

/*
 * Fill *out with the hero / child / story strategy. TTL from s:
 * CACHE_HERO_TTL / CACHE_CHILD_TTL / CACHE_STORY_TTL, or CACHE_DEFAULT_TTL
 * when that is not positive; negative TTL from CACHE_NEGATIVE_TTL. s == NULL
 * uses the defaults of repocache/settings.h (RC_DEFAULT_HERO_TTL /
 * RC_DEFAULT_CHILD_TTL / RC_DEFAULT_STORY_TTL, negative
 * RC_DEFAULT_NEGATIVE_TTL), as rc_settings_defaults does. Both flags on. The
 * tables *out points at are static. RC_OK, or RC_EINVAL when out is NULL.
 */
RC_API int rc_strategy_hero(const rc_settings *s, rc_strategy *out);
RC_API int rc_strategy_child(const rc_settings *s, rc_strategy *out);
RC_API int rc_strategy_story(const rc_settings *s, rc_strategy *out);
/* The built-in strategy for entity name ("hero", "child", "story") as above;
 * RC_EINVAL for another name. */
RC_API int rc_strategy_builtin(const char *name, const rc_settings *s,
                               rc_strategy *out);
/* The name of built-in strategy i (0 "hero", 1 "child", 2 "story"), or NULL
 * past the last one, so that
 *     for (size_t i = 0; (name = rc_strategy_builtin_name(i)); i++)
 * walks them all. */
RC_API const char *rc_strategy_builtin_name(size_t i);

/* ---- checks and lookups ---- */

/* RC_OK when st is usable (namespace, entity, codec, ttl > 0,
 * negative_ttl >= 0, query table: names and segments unique, non-empty, not
 * "all", not starting with '~', nargs in range); else RC_EINVAL with a
 * message naming the problem. */
RC_API int rc_strategy_check(const rc_strategy *st);
/* The query named name, or NULL (borrowed from st's table). */
RC_API const rc_query_def *rc_strategy_find_query(const rc_strategy *st,
                                                  const char *name);

/* ---- key builders: *out is a new string the caller frees with free();
 * prefix may be NULL (= ""). RC_OK, RC_EINVAL, RC_ENOMEM ---- */

/* prefix + ns + ":" + id. RC_EINVAL when id is not a valid id. */
RC_API int rc_strategy_key_id(const rc_strategy *st, const char *prefix,
                              const char *id, char **out);
/* prefix + ns + ":all". */
RC_API int rc_strategy_key_all(const rc_strategy *st, const char *prefix,
                               char **out);
/* prefix + ns + ":" + segment + ":" + args joined by ":". RC_EINVAL for an
 * unknown query or a wrong argument count (message in rc_errmsg()). */
RC_API int rc_strategy_key_query(const rc_strategy *st, const char *prefix,
                                 const char *query, const char *const *args,
                                 size_t nargs, char **out);
/* A pattern matching every key of the namespace, decorator keys included:
 * escape(prefix) + escape(ns) + ":*". */
RC_API int rc_strategy_key_pattern(const rc_strategy *st, const char *prefix,
                                   char **out);

#ifdef __cplusplus
}
#endif
#endif
