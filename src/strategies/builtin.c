/*
 * builtin.c - the hero, child and story strategies: three tables of data
 * (key segments as in docs/wire-format.md, TTL source, flags, codec) and,
 * per entity, the list of query keys its field values belong to. The cache
 * logic is elsewhere, once (src/repository/cached_repository.c).
 */
#include "repocache/repository.h"
#include "repocache/strategy.h"

#include <stdio.h>
#include <string.h>

/* Emits query q with the given arguments when none of them is NULL. */
static int emit_if(rc_query_key_fn emit, void *ud, const char *q,
                   const char *const *args, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!args[i])
            return RC_OK;
    return emit(ud, q, args, n);
}

#define EMIT(q, ...)                                                           \
    do {                                                                       \
        const char *const a_[] = {__VA_ARGS__};                                \
        int rc_ = emit_if(emit, ud, q, a_, sizeof a_ / sizeof a_[0]);          \
        if (rc_ != RC_OK)                                                      \
            return rc_;                                                        \
    } while (0)

/* ---- hero ---- */

static const rc_query_def hero_queries[] = {
    {.name = RC_Q_BY_LANGUAGE, .segment = "lang", .nargs = 1},
    {.name = RC_Q_BY_NAME, .segment = "name", .nargs = 1},
};

static int hero_query_keys(const void *e, rc_query_key_fn emit, void *ud)
{
    const rc_hero *h = e;
    EMIT(RC_Q_BY_LANGUAGE, h->language);
    EMIT(RC_Q_BY_NAME, h->name);
    return RC_OK;
}

/* ---- child ---- */

static const rc_query_def child_queries[] = {
    {.name = RC_Q_BY_NAME, .segment = "name", .nargs = 1},
    /* one free-text part (name) first, then an age and a gender */
    {.name = RC_Q_EXACT_MATCH, .segment = "exact", .nargs = 3},
};

static int child_query_keys(const void *e, rc_query_key_fn emit, void *ud)
{
    const rc_child *c = e;
    char age[16];
    snprintf(age, sizeof age, "%d", c->age);
    EMIT(RC_Q_BY_NAME, c->name);
    EMIT(RC_Q_EXACT_MATCH, c->name, age, c->gender);
    return RC_OK;
}

/* ---- story ---- */

static const rc_query_def story_queries[] = {
    {.name = RC_Q_BY_CHILD_ID, .segment = "child", .nargs = 1},
    {.name = RC_Q_BY_CHILD_NAME, .segment = "child_name", .nargs = 1},
    {.name = RC_Q_BY_LANGUAGE, .segment = "lang", .nargs = 1},
};

static int story_query_keys(const void *e, rc_query_key_fn emit, void *ud)
{
    const rc_story *s = e;
    EMIT(RC_Q_BY_CHILD_ID, s->child_id);
    EMIT(RC_Q_BY_CHILD_NAME, s->child_name);
    EMIT(RC_Q_BY_LANGUAGE, s->language);
    return RC_OK;
}

/* ---- the tables (ttl and negative_ttl come from the settings) ---- */

#define QUERIES(t) .queries = (t), .nqueries = sizeof(t) / sizeof((t)[0])

static const rc_strategy hero_strategy = {
    .ns = "hero", .entity = &rc_hero_entity, .codec = &rc_hero_codec,
    QUERIES(hero_queries), .ttl = 3600, .negative_ttl = 60,
    .cache_on_read = true, .cache_on_write = true,
    .query_keys = hero_query_keys,
};

static const rc_strategy child_strategy = {
    .ns = "child", .entity = &rc_child_entity, .codec = &rc_child_codec,
    QUERIES(child_queries), .ttl = 1800, .negative_ttl = 60,
    .cache_on_read = true, .cache_on_write = true,
    .query_keys = child_query_keys,
};

static const rc_strategy story_strategy = {
    .ns = "story", .entity = &rc_story_entity, .codec = &rc_story_codec,
    QUERIES(story_queries), .ttl = 600, .negative_ttl = 60,
    .cache_on_read = true, .cache_on_write = true,
    .query_keys = story_query_keys,
};

/* *out = tmpl with the TTLs of s: entity_ttl, else CACHE_DEFAULT_TTL when
 * that is not positive (then the table's); s == NULL keeps the table's
 * defaults. */
static int from_settings(const rc_strategy *tmpl, const rc_settings *s,
                         int entity_ttl, rc_strategy *out)
{
    if (!out)
        return rc_seterr(RC_EINVAL, "strategy: out is NULL");
    *out = *tmpl;
    if (s) {
        out->ttl = entity_ttl > 0              ? entity_ttl
                   : s->cache_default_ttl > 0 ? s->cache_default_ttl
                                              : tmpl->ttl;
        out->negative_ttl = s->cache_negative_ttl > 0 ? s->cache_negative_ttl : 0;
    }
    return RC_OK;
}

int rc_strategy_hero(const rc_settings *s, rc_strategy *out)
{
    return from_settings(&hero_strategy, s, s ? s->cache_hero_ttl : 0, out);
}

int rc_strategy_child(const rc_settings *s, rc_strategy *out)
{
    return from_settings(&child_strategy, s, s ? s->cache_child_ttl : 0, out);
}

int rc_strategy_story(const rc_settings *s, rc_strategy *out)
{
    return from_settings(&story_strategy, s, s ? s->cache_story_ttl : 0, out);
}

int rc_strategy_builtin(const char *name, const rc_settings *s,
                        rc_strategy *out)
{
    if (name && strcmp(name, "hero") == 0)
        return rc_strategy_hero(s, out);
    if (name && strcmp(name, "child") == 0)
        return rc_strategy_child(s, out);
    if (name && strcmp(name, "story") == 0)
        return rc_strategy_story(s, out);
    return rc_seterr(RC_EINVAL, "unknown entity '%s' (hero, child or story)",
                     name ? name : "(null)");
}
