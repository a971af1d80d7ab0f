/*
 * strategy.c - the generic part of entity strategies: checking a strategy,
 * finding its queries, and building its cache keys (layout in
 * repocache/strategy.h and docs/wire-format.md). Nothing here knows hero,
 * child or story.
 */
#include "repocache/strategy.h"

#include "core/entity_queries.h"
#include "core/str.h"

#include <stdlib.h>
#include <string.h>

/* A growable string; a failed append poisons it (oom) and frees nothing. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_putn(sbuf *b, const char *p, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

/* Appends s, writing every byte of `special` as '\' + byte. */
static void sb_put_escaped(sbuf *b, const char *s, const char *special)
{
    for (; *s; s++) {
        if (strchr(special, *s))
            sb_putn(b, "\\", 1);
        sb_putn(b, s, 1);
    }
}

/* Hands the built string to *out, or frees it on oom. */
static int sb_finish(sbuf *b, char **out)
{
    if (b->oom || !b->s) {
        free(b->s);
        *out = NULL;
        return rc_seterr(RC_ENOMEM, "key: out of memory");
    }
    *out = b->s;
    return RC_OK;
}

/* prefix + ns + ":" into b. */
static void sb_ns(sbuf *b, const rc_strategy *st, const char *prefix)
{
    sb_puts(b, prefix ? prefix : "");
    sb_puts(b, st->ns);
    sb_putn(b, ":", 1);
}

static bool ns_ok(const char *ns)
{
    if (!ns || !*ns)
        return false;
    for (; *ns; ns++)
        if (!((*ns >= 'a' && *ns <= 'z') || (*ns >= 'A' && *ns <= 'Z') ||
              (*ns >= '0' && *ns <= '9') || *ns == '_' || *ns == '-'))
            return false;
    return true;
}

int rc_strategy_check(const rc_strategy *st)
{
    if (!st)
        return rc_seterr(RC_EINVAL, "strategy: NULL");
    if (!ns_ok(st->ns))
        return rc_seterr(RC_EINVAL, "strategy: namespace must be [A-Za-z0-9_-]+");
    if (!st->entity || !st->entity->free || !st->entity->clone ||
        !st->entity->get_id)
        return rc_seterr(RC_EINVAL, "strategy %s: entity ops incomplete", st->ns);
    if (!st->codec || !st->codec->encode || !st->codec->decode)
        return rc_seterr(RC_EINVAL, "strategy %s: codec incomplete", st->ns);
    if (st->ttl <= 0)
        return rc_seterr(RC_EINVAL, "strategy %s: ttl must be positive, got %d",
                         st->ns, st->ttl);
    if (st->negative_ttl < 0)
        return rc_seterr(RC_EINVAL, "strategy %s: negative_ttl must be >= 0, got %d",
                         st->ns, st->negative_ttl);
    if (st->nqueries && !st->queries)
        return rc_seterr(RC_EINVAL, "strategy %s: query table missing", st->ns);
    for (size_t i = 0; i < st->nqueries; i++) {
        const rc_query_def *q = &st->queries[i];
        if (!q->name || !*q->name || !q->segment || !*q->segment)
            return rc_seterr(RC_EINVAL, "strategy %s: query %zu lacks a name or segment",
                             st->ns, i);
        if (strcmp(q->segment, "all") == 0 || q->segment[0] == '~' ||
            strchr(q->segment, ':'))
            return rc_seterr(RC_EINVAL,
                             "strategy %s: segment '%s' is reserved or has ':'",
                             st->ns, q->segment);
        if (q->nargs < 1 || q->nargs > RC_STRATEGY_MAX_ARGS)
            return rc_seterr(RC_EINVAL, "strategy %s: query %s: nargs %zu out of range",
                             st->ns, q->name, q->nargs);
        for (size_t j = 0; j < i; j++)
            if (strcmp(st->queries[j].name, q->name) == 0 ||
                strcmp(st->queries[j].segment, q->segment) == 0)
                return rc_seterr(RC_EINVAL,
                                 "strategy %s: query %s repeats a name or segment",
                                 st->ns, q->name);
    }
    return RC_OK;
}

const rc_query_def *rc_strategy_find_query(const rc_strategy *st,
                                           const char *name)
{
    if (!st || !name)
        return NULL;
    for (size_t i = 0; i < st->nqueries; i++)
        if (strcmp(st->queries[i].name, name) == 0)
            return &st->queries[i];
    return NULL;
}

int rc_strategy_key_id(const rc_strategy *st, const char *prefix,
                       const char *id, char **out)
{
    sbuf b = {0};
    if (!out)
        return rc_seterr(RC_EINVAL, "key: out is NULL");
    *out = NULL;
    if (!st || !st->ns)
        return rc_seterr(RC_EINVAL, "key: strategy is NULL");
    int rc = rc_id_validate(id);
    if (rc != RC_OK)
        return rc;
    sb_ns(&b, st, prefix);
    sb_puts(&b, id);
    return sb_finish(&b, out);
}

int rc_strategy_key_all(const rc_strategy *st, const char *prefix, char **out)
{
    sbuf b = {0};
    if (!out)
        return rc_seterr(RC_EINVAL, "key: out is NULL");
    *out = NULL;
    if (!st || !st->ns)
        return rc_seterr(RC_EINVAL, "key: strategy is NULL");
    sb_ns(&b, st, prefix);
    sb_puts(&b, "all");
    return sb_finish(&b, out);
}

int rc_strategy_key_query(const rc_strategy *st, const char *prefix,
                          const char *query, const char *const *args,
                          size_t nargs, char **out)
{
    sbuf b = {0};
    if (!out)
        return rc_seterr(RC_EINVAL, "key: out is NULL");
    *out = NULL;
    if (!st || !st->ns)
        return rc_seterr(RC_EINVAL, "key: strategy is NULL");
    const rc_query_def *q = rc_strategy_find_query(st, query);
    if (!q)
        return rc_seterr(RC_EINVAL, "%s: unknown query '%s'", st->ns,
                         query ? query : "(null)");
    if (nargs != q->nargs || (nargs && !args))
        return rc_seterr(RC_EINVAL, "%s.%s: takes %zu argument(s), got %zu",
                         st->ns, q->name, q->nargs, nargs);
    for (size_t i = 0; i < nargs; i++) {
        int rc = rc_query_arg_check(st->ns, q->name, i, args[i],
                                    (q->int_args >> i) & 1);
        if (rc != RC_OK)
            return rc;
        /* Unescaped, a ':' after the first argument would let two argument
         * lists share a key ("A:1","2","g" and "A","1","2:g"). */
        if (!q->escape_args && i > 0 && strchr(args[i], ':'))
            return rc_seterr(RC_EINVAL,
                             "%s.%s: argument %zu may not contain ':' (the key "
                             "would be ambiguous)", st->ns, q->name, i + 1);
    }
    sb_ns(&b, st, prefix);
    sb_puts(&b, q->segment);
    for (size_t i = 0; i < nargs; i++) {
        sb_putn(&b, ":", 1);
        if (q->escape_args)
            sb_put_escaped(&b, args[i], ":\\");
        else
            sb_puts(&b, args[i]);
    }
    return sb_finish(&b, out);
}

int rc_strategy_key_pattern(const rc_strategy *st, const char *prefix,
                            char **out)
{
    sbuf b = {0};
    char *ep = NULL, *ens = NULL;
    if (!out)
        return rc_seterr(RC_EINVAL, "key: out is NULL");
    *out = NULL;
    if (!st || !st->ns)
        return rc_seterr(RC_EINVAL, "key: strategy is NULL");
    int rc = rc_glob_escape(prefix ? prefix : "", &ep);
    if (rc == RC_OK)
        rc = rc_glob_escape(st->ns, &ens);
    if (rc == RC_OK) {
        sb_puts(&b, ep);
        sb_puts(&b, ens);
        sb_puts(&b, ":*");
        rc = sb_finish(&b, out);
    }
    free(ep);
    free(ens);
    return rc;
}
