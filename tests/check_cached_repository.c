/* check_cached_repository.c - the cached decorator against a real Redis:
 * with a counting in-memory repository written here (proving it wraps any
 * vtable), with the SQLite repositories (every named query of every entity
 * cached and invalidated), interop with the Python service's layout
 * (docs/wire-format.md), a user-defined strategy for a made-up entity,
 * corrupted and foreign values, manual invalidation scopes, negative caching
 * and statistics. */
#include "chaos.h"
#include "harness.h"
#include "route.h"
#include "service.h"
#include "cache/service.h"
#include "repocache/cached_repository.h"
#include "repocache/codec.h"
#include "repocache/sqlite_repository.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static th_redis srv;
static rc_cache *cache;
static th_route *rd; /* the tests' own commands (route.h) */

/* ------------------------------------------------------------------ */
/* Redis helpers (hiredis through route.h, not the library)            */

static redisReply *rcmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = th_route_vcmd(rd, fmt, ap);
    va_end(ap);
    ck_assert_ptr_nonnull(r);
    return r;
}

static bool rexists(const char *key)
{
    redisReply *r = rcmd("EXISTS %s", key);
    bool e = r->integer == 1;
    freeReplyObject(r);
    return e;
}

static void rset(const char *key, const char *val, size_t len)
{
    redisReply *r = rcmd("SET %s %b", key, val, len);
    ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
}

/* GET as a malloc'd string, NULL when absent. */
static char *rget(const char *key)
{
    redisReply *r = rcmd("GET %s", key);
    char *s = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every key in Redis, sorted, each followed by '\n'. Caller frees. */
/* Every key, sorted, one per line; untag: auxiliary keys without their
 * (checked) slot tag, as th_untag. */
static char *keys_listed(bool untag)
{
    redisReply *r = rcmd("KEYS *");
    char **v = calloc(r->elements + 1, sizeof *v);
    size_t total = 1;
    for (size_t i = 0; i < r->elements; i++) {
        v[i] = strdup(untag ? th_untag(r->element[i]->str) : r->element[i]->str);
        total += r->element[i]->len + 1;
    }
    qsort(v, r->elements, sizeof *v, cmp_str);
    char *s = calloc(1, total);
    for (size_t i = 0; i < r->elements; i++) {
        strcat(s, v[i]);
        strcat(s, "\n");
        free(v[i]);
    }
    free(v);
    freeReplyObject(r);
    return s;
}

static char *rkeys(void) { return keys_listed(true); }

/* Every key and value ("key=value\n", sorted): a snapshot of the cache. */
static char *rsnapshot(void)
{
    char *keys = keys_listed(false), *save = NULL;
    size_t cap = 1 << 16, len = 0;
    char *s = calloc(1, cap);
    for (char *k = strtok_r(keys, "\n", &save); k; k = strtok_r(NULL, "\n", &save)) {
        char *v = rget(k);
        len += (size_t)snprintf(s + len, cap - len, "%s=%s\n", th_untag(k), v ? v : "(nil)");
        free(v);
    }
    free(keys);
    return s;
}

#define ASSERT_KEYS(expect)                                                    \
    do {                                                                       \
        char *k_ = rkeys();                                                    \
        ck_assert_str_eq(k_, expect);                                          \
        free(k_);                                                              \
    } while (0)

/* ------------------------------------------------------------------ */
/* A counting in-memory repository, generic over the entity type        */

/* -1: unknown query; else whether e answers query(args). */
typedef int (*match_fn)(const void *e, const char *q, const char *const *args,
                        size_t n);

typedef struct count_repo {
    rc_repo base; /* must be first */
    void *items[64];
    size_t n;
    match_fn match;
    int finds, lists, queries, saves, updates, removes;
    bool fail_writes;    /* every write returns RC_EBACKEND */
    bool give_previous;  /* update/remove report *previous */
    bool *destroyed;     /* set on destroy when non-NULL */
} count_repo;

static void *cr_find(count_repo *r, const char *id, size_t *at)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->base.entity->get_id(r->items[i]), id) == 0) {
            if (at)
                *at = i;
            return r->items[i];
        }
    return NULL;
}

static int cr_find_by_id(rc_repo *b, const char *id, void **out)
{
    count_repo *r = (count_repo *)b;
    r->finds++;
    void *e = cr_find(r, id, NULL);
    if (!e)
        return RC_ENOTFOUND;
    *out = b->entity->clone(e);
    return RC_OK;
}

static int cr_list(count_repo *r, const char *q, const char *const *args,
                   size_t n, rc_list **out)
{
    rc_list *l = rc_list_new(r->base.entity);
    for (size_t i = 0; i < r->n; i++) {
        int m = q ? r->match(r->items[i], q, args, n) : 1;
        if (m < 0) {
            rc_list_free(l);
            return RC_EINVAL;
        }
        if (m)
            rc_list_push(l, r->base.entity->clone(r->items[i]));
    }
    *out = l;
    return RC_OK;
}

static int cr_list_all(rc_repo *b, rc_list **out)
{
    ((count_repo *)b)->lists++;
    return cr_list((count_repo *)b, NULL, NULL, 0, out);
}

static int cr_query(rc_repo *b, const char *q, const char *const *args,
                    size_t n, rc_list **out)
{
    count_repo *r = (count_repo *)b;
    r->queries++;
    if (!r->match)
        return RC_EINVAL;
    return cr_list(r, q, args, n, out);
}

static int cr_save(rc_repo *b, const void *e, void **saved)
{
    count_repo *r = (count_repo *)b;
    r->saves++;
    if (r->fail_writes)
        return RC_EBACKEND;
    const char *id = b->entity->get_id(e);
    if (!id)
        return RC_EINVAL;
    if (cr_find(r, id, NULL))
        return RC_ECONFLICT;
    r->items[r->n++] = b->entity->clone(e);
    if (saved)
        *saved = b->entity->clone(e);
    return RC_OK;
}

static int cr_update(rc_repo *b, const void *e, void **stored, void **previous)
{
    count_repo *r = (count_repo *)b;
    size_t at;
    r->updates++;
    if (r->fail_writes)
        return RC_EBACKEND;
    if (!cr_find(r, b->entity->get_id(e), &at))
        return RC_ENOTFOUND;
    if (previous && r->give_previous)
        *previous = r->items[at];
    else
        b->entity->free(r->items[at]);
    r->items[at] = b->entity->clone(e);
    if (stored)
        *stored = b->entity->clone(e);
    return RC_OK;
}

static int cr_remove(rc_repo *b, const char *id, void **previous)
{
    count_repo *r = (count_repo *)b;
    size_t at;
    r->removes++;
    if (r->fail_writes)
        return RC_EBACKEND;
    if (!cr_find(r, id, &at))
        return RC_ENOTFOUND;
    if (previous && r->give_previous)
        *previous = r->items[at];
    else
        b->entity->free(r->items[at]);
    r->items[at] = r->items[--r->n];
    return RC_OK;
}

static void cr_destroy(rc_repo *b)
{
    count_repo *r = (count_repo *)b;
    for (size_t i = 0; i < r->n; i++)
        b->entity->free(r->items[i]);
    if (r->destroyed)
        *r->destroyed = true;
    free(r);
}

static const rc_repo_methods count_methods = {
    .version = RC_REPO_VERSION, .name = "counting",
    .find_by_id = cr_find_by_id, .list_all = cr_list_all,
    .find_by_query = cr_query, .save = cr_save, .update = cr_update,
    .remove = cr_remove, .destroy = cr_destroy,
};

static count_repo *count_repo_new(const rc_entity_ops *ops, match_fn match)
{
    count_repo *r = calloc(1, sizeof *r);
    r->base.methods = &count_methods;
    r->base.entity = ops;
    r->match = match;
    r->give_previous = true;
    return r;
}

static void reset_counts(count_repo *r)
{
    r->finds = r->lists = r->queries = r->saves = r->updates = r->removes = 0;
}

static int hero_match(const void *e, const char *q, const char *const *args,
                      size_t n)
{
    const rc_hero *h = e;
    if (n != 1)
        return -1;
    if (strcmp(q, RC_Q_BY_LANGUAGE) == 0)
        return strcmp(h->language, args[0]) == 0;
    if (strcmp(q, RC_Q_BY_NAME) == 0)
        return strcmp(h->name, args[0]) == 0;
    return -1;
}

static rc_hero *mk_hero(const char *id, const char *name, const char *lang)
{
    rc_hero *h = rc_hero_new();
    h->id = id ? strdup(id) : NULL;
    h->name = strdup(name);
    h->age = 30;
    h->gender = strdup("female");
    h->appearance = strdup("tall");
    h->language = strdup(lang);
    rc_strlist_push(&h->interests, "maps");
    h->created_at = strdup("2024-01-15T10:30:00");
    h->updated_at = strdup("2024-01-15T10:30:00");
    return h;
}

/* Puts a hero straight into the counting repository (no cache involved). */
static void cr_put(count_repo *r, rc_hero *h) { r->items[r->n++] = h; }

/* ------------------------------------------------------------------ */
/* Fixture                                                             */

static rc_settings settings;

static void setup(void)
{
    ck_assert_int_eq(th_route_flushall(&srv), 0);
    ck_assert_int_eq(rc_settings_defaults(&settings), RC_OK);
    th_settings_url(&settings, srv.url);
    ck_assert_int_eq(rc_settings_set(&settings, "LOG_LEVEL", "warning"), RC_OK);
    /* The tests compare every key in Redis: the fleet counters (a hash under
     * the prefix) stay out of it. */
    ck_assert_int_eq(rc_settings_set(&settings, "CACHE_STATS_FLUSH_INTERVAL", "0"), RC_OK);
    ck_assert_int_eq(rc_cache_new(&settings, &cache), RC_OK);
    rd = th_route_open(&srv);
}

static void teardown(void)
{
    rc_cache_free(cache);
    cache = NULL;
    rc_settings_clear(&settings);
    th_route_close(rd);
    rd = NULL;
}

/* A cached hero repository over a new counting repository. */
static rc_repo *cached_hero(count_repo **inner, bool on_write)
{
    rc_strategy st;
    rc_repo *c = NULL;
    rc_cached_repo_options o = {.own_inner = true};
    *inner = count_repo_new(&rc_hero_entity, hero_match);
    ck_assert_int_eq(rc_strategy_hero(&settings, &st), RC_OK);
    st.cache_on_write = on_write;
    ck_assert_int_eq(rc_cached_repo_new(&(*inner)->base, cache, &st, &o, &c), RC_OK);
    return c;
}

static void stats(rc_repo *c, rc_cached_repo_stats *st)
{
    ck_assert_int_eq(rc_cached_repo_get_stats(c, st), RC_OK);
}

/* ------------------------------------------------------------------ */
/* Counting repository: hits, misses, exact invalidation               */

START_TEST(test_miss_once_then_hit)
{
    count_repo *in;
    rc_repo *c = cached_hero(&in, true);
    void *e = NULL;
    rc_list *l = NULL;
    const char *en[] = {"en"};
    cr_put(in, mk_hero("h1", "Ann", "en"));

    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(rc_repo_find_by_id(c, "h1", &e), RC_OK);
        ck_assert_str_eq(((rc_hero *)e)->name, "Ann");
        rc_hero_free(e);
        ck_assert_int_eq(rc_repo_list_all(c, &l), RC_OK);
        ck_assert_uint_eq(l->len, 1);
        rc_list_free(l);
        ck_assert_int_eq(rc_repo_find_by_query(c, "by_language", en, 1, &l), RC_OK);
        ck_assert_uint_eq(l->len, 1);
        rc_list_free(l);
        /* the wrapped repository is asked once per key, never again */
        ck_assert_int_eq(in->finds, 1);
        ck_assert_int_eq(in->lists, 1);
        ck_assert_int_eq(in->queries, 1);
    }
    ASSERT_KEYS("hero:all\nhero:h1\nhero:lang:en\n");
    rc_cached_repo_stats st;
    stats(c, &st);
    ck_assert_uint_eq(st.misses, 3);
    ck_assert_uint_eq(st.hits, 6);
    ck_assert_double_eq_tol(st.hit_rate, 6.0 / 9.0, 1e-9);
    rc_repo_free(c);
}
END_TEST

/* cache_on_read off: reads use what is cached but never fill. */
START_TEST(test_cache_on_read_off)
{
    count_repo *in = count_repo_new(&rc_hero_entity, hero_match);
    rc_strategy st;
    rc_repo *c = NULL;
    rc_cached_repo_options o = {.own_inner = true};
    ck_assert_int_eq(rc_strategy_hero(&settings, &st), RC_OK);
    st.cache_on_read = false;
    ck_assert_int_eq(rc_cached_repo_new(&in->base, cache, &st, &o, &c), RC_OK);
    cr_put(in, mk_hero("h1", "Ann", "en"));
    void *e;
    rc_list *l;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(rc_repo_find_by_id(c, "h1", &e), RC_OK);
        rc_hero_free(e);
        ck_assert_int_eq(rc_repo_find_by_id(c, "h7", &e), RC_ENOTFOUND);
        ck_assert_int_eq(rc_repo_list_all(c, &l), RC_OK);
        rc_list_free(l);
    }
    ck_assert_int_eq(in->finds, 4);
    ck_assert_int_eq(in->lists, 2);
    ASSERT_KEYS("");
    /* cache_on_write still stores, and reads then use it */
    rc_hero *h = mk_hero("h1", "Bea", "en");
    ck_assert_int_eq(rc_repo_update(c, h, NULL, NULL), RC_OK);
    rc_hero_free(h);
    ASSERT_KEYS("hero:h1\n");
    reset_counts(in);
    ck_assert_int_eq(rc_repo_find_by_id(c, "h1", &e), RC_OK);
    ck_assert_str_eq(((rc_hero *)e)->name, "Bea");
    rc_hero_free(e);
    ck_assert_int_eq(in->finds, 0);
    rc_repo_free(c);
}
END_TEST

/* Fills every key a hero test uses: ids, all, both languages, four names,
 * and a negative entry for h9. */
static void prime(rc_repo *c)
{
    const char *qs[][2] = {{"by_language", "en"}, {"by_language", "ru"},
                           {"by_name", "Ann"},    {"by_name", "Bob"},
                           {"by_name", "Zed"},    {"by_name", "Cat"}};
    void *e;
    rc_list *l;
    const char *ids[] = {"h1", "h2", "h3"};
    for (size_t i = 0; i < 3; i++) {
        if (rc_repo_find_by_id(c, ids[i], &e) == RC_OK)
            rc_hero_free(e);
    }
    ck_assert_int_eq(rc_repo_find_by_id(c, "h9", &e), RC_ENOTFOUND);
    ck_assert_int_eq(rc_repo_list_all(c, &l), RC_OK);
    rc_list_free(l);
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        ck_assert_int_eq(rc_repo_find_by_query(c, qs[i][0], &qs[i][1], 1, &l), RC_OK);
        rc_list_free(l);
    }
}

START_TEST(test_writes_remove_exact_keys)
{
    count_repo *in;
    rc_repo *c = cached_hero(&in, false);
    cr_put(in, mk_hero("h1", "Ann", "en"));
    cr_put(in, mk_hero("h2", "Bob", "ru"));
    cr_put(in, mk_hero("h3", "Zed", "en"));
    prime(c);
    ASSERT_KEYS("hero:all\nhero:h1\nhero:h2\nhero:h3\nhero:lang:en\nhero:lang:ru\n"
                "hero:name:Ann\nhero:name:Bob\nhero:name:Cat\nhero:name:Zed\n"
                "hero:~none:h9\n");

    /* update: h1 moves en -> ru and Ann -> Cat: old and new keys go */
    rc_hero *h = mk_hero("h1", "Cat", "ru");
    ck_assert_int_eq(rc_repo_update(c, h, NULL, NULL), RC_OK);
    rc_hero_free(h);
    ASSERT_KEYS("hero:h2\nhero:h3\nhero:name:Bob\nhero:name:Zed\nhero:~none:h9\n");

    /* remove h2: its id, all, its language and name */
    prime(c);
    ck_assert_int_eq(rc_repo_remove(c, "h2", NULL), RC_OK);
    ASSERT_KEYS("hero:h1\nhero:h3\nhero:lang:en\nhero:name:Ann\nhero:name:Cat\n"
                "hero:name:Zed\nhero:~none:h9\n");

    /* save h9: its negative entry, all, its language and name */
    prime(c);
    h = mk_hero("h9", "Zed", "ru");
    ck_assert_int_eq(rc_repo_save(c, h, NULL), RC_OK);
    rc_hero_free(h);
    ASSERT_KEYS("hero:h1\nhero:h3\nhero:lang:en\nhero:name:Ann\nhero:name:Bob\n"
                "hero:name:Cat\nhero:~none:h2\n");

    rc_cached_repo_stats st;
    stats(c, &st);
    ck_assert_uint_eq(st.invalidations, 6 + 4 + 4);
    rc_repo_free(c);
}
END_TEST

START_TEST(test_cache_on_write_stores_entity)
{
    count_repo *in;
    rc_repo *c = cached_hero(&in, true);
    void *e = NULL;
    cr_put(in, mk_hero("h1", "Ann", "en"));
    prime(c);
    rc_hero *h = mk_hero("h1", "Cat", "ru");
    ck_assert_int_eq(rc_repo_update(c, h, NULL, NULL), RC_OK);
    rc_hero_free(h);
    /* only the by-id key comes back, with the new value */
    ASSERT_KEYS("hero:h1\nhero:name:Bob\nhero:name:Zed\nhero:~none:h2\n"
                "hero:~none:h3\nhero:~none:h9\n");
    reset_counts(in);
    ck_assert_int_eq(rc_repo_find_by_id(c, "h1", &e), RC_OK);
    ck_assert_str_eq(((rc_hero *)e)->name, "Cat");
    ck_assert_int_eq(in->finds, 0);
    rc_hero_free(e);
    h = mk_hero("h5", "Eve", "en");
    ck_assert_int_eq(rc_repo_save(c, h, NULL), RC_OK);
    rc_hero_free(h);
    ck_assert(rexists("hero:h5"));
    rc_repo_free(c);
}
END_TEST

START_TEST(test_failing_write_leaves_cache)
{
    count_repo *in;
    rc_repo *c = cached_hero(&in, true);
    cr_put(in, mk_hero("h1", "Ann", "en"));
    prime(c);
    char *before = rsnapshot();
    in->fail_writes = true;
    rc_hero *h = mk_hero("h1", "Cat", "ru");
    void *out = (void *)1, *prev = (void *)1;
    ck_assert_int_eq(rc_repo_update(c, h, &out, &prev), RC_EBACKEND);
    ck_assert_ptr_null(out);
    ck_assert_ptr_null(prev);
    ck_assert_int_eq(rc_repo_remove(c, "h1", NULL), RC_EBACKEND);
    free(h->id);
    h->id = strdup("h9");
    ck_assert_int_eq(rc_repo_save(c, h, NULL), RC_EBACKEND);
    rc_hero_free(h);
    char *after = rsnapshot();
    ck_assert_str_eq(after, before);
    free(before);
    free(after);
    /* other statuses pass through unchanged too */
    in->fail_writes = false;
    ck_assert_int_eq(rc_repo_remove(c, "nope", NULL), RC_ENOTFOUND);
    h = mk_hero("h1", "Ann", "en");
    ck_assert_int_eq(rc_repo_save(c, h, NULL), RC_ECONFLICT);
    rc_hero_free(h);
    rc_repo_free(c);
}
END_TEST

/* A wrapped repository that cannot report *previous: the whole namespace
 * goes (other entities stay). */
START_TEST(test_no_previous_drops_namespace)
{
    count_repo *in;
    rc_repo *c = cached_hero(&in, false);
    in->give_previous = false;
    cr_put(in, mk_hero("h1", "Ann", "en"));
    cr_put(in, mk_hero("h3", "Zed", "en"));
    prime(c);
    rset("child:c1", "x", 1);
    rc_hero *h = mk_hero("h1", "Cat", "ru");
    ck_assert_int_eq(rc_repo_update(c, h, NULL, NULL), RC_OK);
    rc_hero_free(h);
    ASSERT_KEYS("child:c1\n");
    rc_repo_free(c);
}
END_TEST

START_TEST(test_negative_cache)
{
    count_repo *in;
    rc_repo *c = cached_hero(&in, false);
    void *e = NULL;
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(rc_repo_find_by_id(c, "ghost", &e), RC_ENOTFOUND);
    ck_assert_ptr_null(e);
    ck_assert_int_eq(in->finds, 1); /* the storm stops at the cache */
    redisReply *r = rcmd("TTL %s", th_aux_key("", "hero:ghost", "~none:"));
    ck_assert_int_gt(r->integer, 0);
    ck_assert_int_le(r->integer, 60);
    freeReplyObject(r);
    rc_cached_repo_stats st;
    stats(c, &st);
    ck_assert_uint_eq(st.negative_hits, 4);
    /* a save of that id removes it */
    rc_hero *h = mk_hero("ghost", "Gus", "en");
    ck_assert_int_eq(rc_repo_save(c, h, NULL), RC_OK);
    rc_hero_free(h);
    ck_assert(!rexists(th_aux_key("", "hero:ghost", "~none:")));
    ck_assert_int_eq(rc_repo_find_by_id(c, "ghost", &e), RC_OK);
    rc_hero_free(e);
    rc_repo_free(c);

    /* CACHE_NEGATIVE_TTL=0 turns it off */
    settings.cache_negative_ttl = 0;
    freeReplyObject(rcmd("FLUSHALL"));
    c = cached_hero(&in, false);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(rc_repo_find_by_id(c, "ghost", &e), RC_ENOTFOUND);
    ck_assert_int_eq(in->finds, 3);
    ASSERT_KEYS("");
    rc_repo_free(c);
}
END_TEST

/* Redis down during a write whose old values are unknown (no *previous):
 * the whole namespace is dropped when Redis is back, before it is used. */
START_TEST(test_no_previous_while_redis_down)
{
    th_redis p;
    ck_assert_int_eq(th_redis_start(&p, "--appendonly yes --appendfsync always"), 0);
    rc_settings s;
    rc_cache *pc = NULL;
    ck_assert_int_eq(rc_settings_defaults(&s), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", p.url), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "LOG_LEVEL", "error"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_SOCKET_TIMEOUT", "0.2"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "CIRCUIT_BREAKER_TIMEOUT", "0.2"), RC_OK);
    ck_assert_int_eq(rc_cache_new(&s, &pc), RC_OK);
    count_repo *in = count_repo_new(&rc_hero_entity, hero_match);
    in->give_previous = false;
    cr_put(in, mk_hero("h1", "Ann", "en"));
    rc_strategy st;
    rc_repo *c = NULL;
    rc_cached_repo_options o = {.own_inner = true};
    ck_assert_int_eq(rc_strategy_hero(&s, &st), RC_OK);
    ck_assert_int_eq(rc_cached_repo_new(&in->base, pc, &st, &o, &c), RC_OK);
    rc_list *l = NULL;
    const char *ann[] = {"Ann"};
    ck_assert_int_eq(rc_repo_find_by_query(c, "by_name", ann, 1, &l), RC_OK);
    ck_assert_uint_eq(l->len, 1);
    rc_list_free(l);

    th_redis_kill(&p);
    rc_hero *h = mk_hero("h1", "Cat", "en");
    ck_assert_int_eq(rc_repo_update(c, h, NULL, NULL), RC_OK);
    rc_hero_free(h);
    ck_assert_int_eq(th_redis_restart(&p), 0);
    redisContext *pr = th_redis_connect(&p, NULL);
    redisReply *r = redisCommand(pr, "EXISTS hero:name:Ann");
    ck_assert_int_eq(r->integer, 1); /* back from the AOF, stale */
    freeReplyObject(r);
    th_await(rc_cache_redis_usable(pc), TH_WAIT_SECONDS); /* breaker open time */
    reset_counts(in);
    ck_assert_int_eq(rc_repo_find_by_query(c, "by_name", ann, 1, &l), RC_OK);
    ck_assert_uint_eq(l->len, 0);
    rc_list_free(l);
    ck_assert_int_eq(in->queries, 1);
    redisFree(pr);
    rc_repo_free(c);
    rc_cache_free(pc);
    rc_settings_clear(&s);
    th_redis_stop(&p);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Slots, ownership, construction                                      */

static int never_update(rc_repo *b, const void *e, void **s, void **p)
{
    (void)b, (void)e, (void)s, (void)p;
    return RC_EBACKEND;
}

START_TEST(test_slots_and_ownership)
{
    static rc_repo_methods partial;
    partial = count_methods;
    partial.update = NULL;
    partial.find_by_query = NULL;
    count_repo *in = count_repo_new(&rc_hero_entity, hero_match);
    bool destroyed = false;
    in->base.methods = &partial;
    in->destroyed = &destroyed;
    rc_strategy st;
    rc_repo *c = NULL;
    ck_assert_int_eq(rc_strategy_hero(NULL, &st), RC_OK);
    ck_assert_int_eq(rc_cached_repo_new(&in->base, cache, &st, NULL, &c), RC_OK);
    ck_assert(rc_cached_repo_is(c));
    ck_assert(!rc_cached_repo_is(&in->base));
    ck_assert_ptr_eq(rc_cached_repo_inner(c), &in->base);
    ck_assert_str_eq(c->methods->name, "cached");
    ck_assert_ptr_null(c->methods->update);
    ck_assert_ptr_null(c->methods->find_by_query);
    ck_assert_ptr_nonnull(c->methods->find_by_id);
    rc_hero *h = mk_hero("h1", "Ann", "en");
    ck_assert_int_eq(rc_repo_update(c, h, NULL, NULL), RC_EUNSUPPORTED);
    rc_hero_free(h);
    rc_repo_free(c); /* not owned: inner survives */
    ck_assert(!destroyed);

    /* decorators stack: cached over cached over counting */
    partial.update = never_update;
    rc_repo *c1 = NULL, *c2 = NULL;
    rc_cached_repo_options own = {.own_inner = true};
    ck_assert_int_eq(rc_cached_repo_new(&in->base, cache, &st, &own, &c1), RC_OK);
    ck_assert_int_eq(rc_cached_repo_new(c1, cache, &st, &own, &c2), RC_OK);
    h = mk_hero("h1", "Ann", "en");
    ck_assert_int_eq(rc_repo_update(c2, h, NULL, NULL), RC_EBACKEND);
    rc_hero_free(h);
    rc_repo_free(c2);
    ck_assert(destroyed);

    /* a strategy for another entity is refused; an owned inner is freed */
    destroyed = false;
    in = count_repo_new(&rc_hero_entity, hero_match);
    in->destroyed = &destroyed;
    ck_assert_int_eq(rc_strategy_child(NULL, &st), RC_OK);
    ck_assert_int_eq(rc_cached_repo_new(&in->base, cache, &st, &own, &c), RC_EINVAL);
    ck_assert_ptr_null(c);
    ck_assert(destroyed);
    ck_assert_int_eq(rc_cached_repo_invalidate(NULL, "all", NULL, 0, NULL), RC_EINVAL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* SQLite: every named query of every entity, cached and invalidated    */

typedef struct qspec {
    const char *q;
    const char *args[3];
    size_t n;
} qspec;

/* "id,id,...," of a list, sorted. Caller frees. */
static char *ids_of(const rc_list *l)
{
    char **v = calloc(l->len + 1, sizeof *v);
    size_t total = 1;
    for (size_t i = 0; i < l->len; i++) {
        v[i] = (char *)l->ops->get_id(l->items[i]);
        total += strlen(v[i]) + 1;
    }
    qsort(v, l->len, sizeof *v, cmp_str);
    char *s = calloc(1, total);
    for (size_t i = 0; i < l->len; i++) {
        strcat(s, v[i]);
        strcat(s, ",");
    }
    free(v);
    return s;
}

/* The JSON of an entity (to compare whole values). Caller frees. */
static char *json_of(const rc_codec *codec, const void *e)
{
    char *s = NULL;
    ck_assert_int_eq(rc_entity_encode_text(codec, e, &s), RC_OK);
    return s;
}

typedef struct world {
    rc_repo *inner, *cached;
    rc_strategy st;
    const qspec *qs;
    size_t nq;
    const char *const *ids;
    size_t nids;
} world;

/* Reads everything through the cache (filling it) and checks each key is
 * now in Redis. */
static void prime_world(const world *w)
{
    rc_list *l;
    void *e;
    char *k;
    ck_assert_int_eq(rc_repo_list_all(w->cached, &l), RC_OK);
    rc_list_free(l);
    for (size_t i = 0; i < w->nq; i++) {
        ck_assert_int_eq(rc_repo_find_by_query(w->cached, w->qs[i].q, w->qs[i].args,
                                               w->qs[i].n, &l), RC_OK);
        rc_list_free(l);
        ck_assert_int_eq(rc_strategy_key_query(&w->st, "", w->qs[i].q, w->qs[i].args,
                                               w->qs[i].n, &k), RC_OK);
        ck_assert_msg(rexists(k), "%s not cached", k);
        free(k);
    }
    for (size_t i = 0; i < w->nids; i++)
        if (rc_repo_find_by_id(w->cached, w->ids[i], &e) == RC_OK)
            w->st.entity->free(e);
}

/* Every answer through the cache equals the database's. */
static void assert_world(const world *w, const char *when)
{
    rc_list *a, *b;
    void *x, *y;
    for (size_t i = 0; i <= w->nq; i++) {
        const qspec *q = i < w->nq ? &w->qs[i] : NULL;
        if (q) {
            ck_assert_int_eq(rc_repo_find_by_query(w->cached, q->q, q->args, q->n, &a), RC_OK);
            ck_assert_int_eq(rc_repo_find_by_query(w->inner, q->q, q->args, q->n, &b), RC_OK);
        } else {
            ck_assert_int_eq(rc_repo_list_all(w->cached, &a), RC_OK);
            ck_assert_int_eq(rc_repo_list_all(w->inner, &b), RC_OK);
        }
        char *sa = ids_of(a), *sb = ids_of(b);
        ck_assert_msg(strcmp(sa, sb) == 0, "%s: %s(%s): cached [%s], database [%s]",
                      when, q ? q->q : "all", q ? q->args[0] : "", sa, sb);
        free(sa);
        free(sb);
        rc_list_free(a);
        rc_list_free(b);
    }
    for (size_t i = 0; i < w->nids; i++) {
        int ra = rc_repo_find_by_id(w->cached, w->ids[i], &x);
        int rb = rc_repo_find_by_id(w->inner, w->ids[i], &y);
        ck_assert_int_eq(ra, rb);
        if (ra == RC_OK) {
            char *ja = json_of(w->st.codec, x), *jb = json_of(w->st.codec, y);
            ck_assert_msg(strcmp(ja, jb) == 0, "%s: %s: %s vs %s", when, w->ids[i], ja, jb);
            free(ja);
            free(jb);
            w->st.entity->free(x);
            w->st.entity->free(y);
        }
    }
}

/* One write to check: applied to the cached repository. */
typedef struct mutation {
    const char *what;
    void (*apply)(rc_repo *c);
} mutation;

static void run_world(world *w, const mutation *m, size_t nm)
{
    for (size_t i = 0; i < nm; i++) {
        prime_world(w);
        assert_world(w, "before");
        m[i].apply(w->cached);
        assert_world(w, m[i].what);
    }
}

static rc_sqlite_db *open_db(void)
{
    char *path = th_tmpfile("cached.db");
    rc_sqlite_db *db = NULL;
    ck_assert_int_eq(rc_sqlite_open(path, &db), RC_OK);
    free(path);
    return db;
}

static void make_world(world *w, rc_sqlite_db *db, const rc_entity_ops *ops,
                       const char *name)
{
    rc_cached_repo_options o = {.own_inner = false};
    ck_assert_int_eq(rc_sqlite_repo_new(db, ops, &w->inner), RC_OK);
    ck_assert_int_eq(rc_strategy_builtin(name, &settings, &w->st), RC_OK);
    w->st.cache_on_write = false; /* every key must come from a read */
    ck_assert_int_eq(rc_cached_repo_new(w->inner, cache, &w->st, &o, &w->cached), RC_OK);
}

static void free_world(world *w)
{
    rc_repo_free(w->cached);
    rc_repo_free(w->inner);
}

/* -- heroes -- */

static void hero_set(rc_repo *c, const char *id, const char *name, const char *lang)
{
    void *e = NULL;
    rc_hero *h = mk_hero(id, name, lang);
    int rc = rc_repo_find_by_id(c, id, &e);
    rc_hero_free(e);
    ck_assert_int_eq(rc == RC_OK ? rc_repo_update(c, h, NULL, NULL)
                                 : rc_repo_save(c, h, NULL), RC_OK);
    rc_hero_free(h);
}

static void h_lang(rc_repo *c) { hero_set(c, "h1", "Ann", "ru"); }
static void h_name(rc_repo *c) { hero_set(c, "h1", "Cat", "ru"); }
static void h_del(rc_repo *c) { ck_assert_int_eq(rc_repo_remove(c, "h2", NULL), RC_OK); }
static void h_save(rc_repo *c) { hero_set(c, "h3", "Ann", "en"); }

START_TEST(test_sqlite_hero_queries)
{
    static const qspec qs[] = {
        {"by_language", {"en"}, 1}, {"by_language", {"ru"}, 1},
        {"by_name", {"Ann"}, 1},    {"by_name", {"Bob"}, 1},
        {"by_name", {"Cat"}, 1},
    };
    static const char *const ids[] = {"h1", "h2", "h3"};
    static const mutation m[] = {{"language en->ru", h_lang}, {"name Ann->Cat", h_name},
                                 {"delete h2", h_del}, {"save h3", h_save}};
    rc_sqlite_db *db = open_db();
    world w = {.qs = qs, .nq = 5, .ids = ids, .nids = 3};
    make_world(&w, db, &rc_hero_entity, "hero");
    hero_set(w.cached, "h1", "Ann", "en");
    hero_set(w.cached, "h2", "Bob", "ru");
    run_world(&w, m, 4);
    free_world(&w);
    rc_sqlite_free(db);
}
END_TEST

/* -- children -- */

static void child_set(rc_repo *c, const char *id, const char *name, int age,
                      const char *gender)
{
    void *e = NULL;
    rc_child *ch = rc_child_new();
    ch->id = strdup(id);
    ch->name = strdup(name);
    ch->age = age;
    ch->age_category = strdup(age < 7 ? "3-6" : "7-10");
    ch->gender = strdup(gender);
    int rc = rc_repo_find_by_id(c, id, &e);
    rc_child_free(e);
    ck_assert_int_eq(rc == RC_OK ? rc_repo_update(c, ch, NULL, NULL)
                                 : rc_repo_save(c, ch, NULL), RC_OK);
    rc_child_free(ch);
}

static void c_age(rc_repo *c) { child_set(c, "c1", "Ann", 8, "female"); }
static void c_gender(rc_repo *c) { child_set(c, "c1", "Ann", 8, "male"); }
static void c_name(rc_repo *c) { child_set(c, "c1", "Cat Ng", 8, "male"); }
static void c_del(rc_repo *c) { ck_assert_int_eq(rc_repo_remove(c, "c2", NULL), RC_OK); }
static void c_save(rc_repo *c) { child_set(c, "c3", "Ann", 7, "female"); }

START_TEST(test_sqlite_child_queries)
{
    static const qspec qs[] = {
        {"by_name", {"Ann"}, 1},
        {"by_name", {"Bob"}, 1},
        {"by_name", {"Cat Ng"}, 1},
        {"exact_match", {"Ann", "7", "female"}, 3},
        {"exact_match", {"Ann", "8", "female"}, 3},
        {"exact_match", {"Ann", "8", "male"}, 3},
        {"exact_match", {"Cat Ng", "8", "male"}, 3},
        {"exact_match", {"Bob", "8", "male"}, 3},
    };
    static const char *const ids[] = {"c1", "c2", "c3"};
    static const mutation m[] = {{"age 7->8", c_age}, {"gender", c_gender},
                                 {"name", c_name}, {"delete c2", c_del},
                                 {"save c3", c_save}};
    rc_sqlite_db *db = open_db();
    world w = {.qs = qs, .nq = 8, .ids = ids, .nids = 3};
    make_world(&w, db, &rc_child_entity, "child");
    child_set(w.cached, "c1", "Ann", 7, "female");
    child_set(w.cached, "c2", "Bob", 8, "male");
    run_world(&w, m, 5);
    free_world(&w);
    rc_sqlite_free(db);
}
END_TEST

/* -- stories -- */

static void story_set(rc_repo *c, const char *id, const char *lang,
                      const char *child_id, const char *child_name)
{
    void *e = NULL;
    rc_story *s = rc_story_new();
    s->id = strdup(id);
    s->title = strdup("The Fox");
    s->content = strdup("Once upon a time...");
    s->moral = strdup("Be kind");
    s->language = strdup(lang);
    s->child_id = child_id ? strdup(child_id) : NULL;
    s->child_name = child_name ? strdup(child_name) : NULL;
    int rc = rc_repo_find_by_id(c, id, &e);
    rc_story_free(e);
    ck_assert_int_eq(rc == RC_OK ? rc_repo_update(c, s, NULL, NULL)
                                 : rc_repo_save(c, s, NULL), RC_OK);
    rc_story_free(s);
}

static void s_lang(rc_repo *c) { story_set(c, "s1", "ru", "c1", "Ann"); }
static void s_child(rc_repo *c) { story_set(c, "s1", "ru", "c3", "Ann"); }
static void s_cname(rc_repo *c) { story_set(c, "s1", "ru", "c3", "Cat"); }
static void s_nochild(rc_repo *c) { story_set(c, "s1", "ru", NULL, NULL); }
static void s_del(rc_repo *c) { ck_assert_int_eq(rc_repo_remove(c, "s2", NULL), RC_OK); }
static void s_save(rc_repo *c) { story_set(c, "s3", "en", "c1", "Ann"); }

START_TEST(test_sqlite_story_queries)
{
    static const qspec qs[] = {
        {"by_child_id", {"c1"}, 1},   {"by_child_id", {"c2"}, 1},
        {"by_child_id", {"c3"}, 1},   {"by_child_name", {"Ann"}, 1},
        {"by_child_name", {"Bob"}, 1}, {"by_child_name", {"Cat"}, 1},
        {"by_language", {"en"}, 1},   {"by_language", {"ru"}, 1},
    };
    static const char *const ids[] = {"s1", "s2", "s3"};
    static const mutation m[] = {{"language", s_lang}, {"child id", s_child},
                                 {"child name", s_cname}, {"child removed", s_nochild},
                                 {"delete s2", s_del}, {"save s3", s_save}};
    rc_sqlite_db *db = open_db();
    world w = {.qs = qs, .nq = 8, .ids = ids, .nids = 3};
    make_world(&w, db, &rc_story_entity, "story");
    story_set(w.cached, "s1", "en", "c1", "Ann");
    story_set(w.cached, "s2", "ru", "c2", "Bob");
    run_world(&w, m, 6);
    free_world(&w);
    rc_sqlite_free(db);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Interop with the Python service: the layout of docs/wire-format.md  */

/* Stores fixture name under key, or when key has no ':' under
 * key + ":" + the id of its (first) entity; returns that id (caller frees). */
static char *put_fixture(const char *name, const char *key)
{
    char *path = th_fixture_path(name);
    size_t len = 0;
    char *text = th_read_file(path, &len);
    ck_assert_ptr_nonnull(text);
    json_t *j = json_loads(text, 0, NULL);
    ck_assert_ptr_nonnull(j);
    json_t *env = json_is_array(j) ? json_array_get(j, 0) : j;
    const char *idv = json_string_value(json_object_get(json_object_get(env, "entity"), "id"));
    ck_assert_ptr_nonnull(idv);
    char *id = strdup(idv);
    char k[256];
    snprintf(k, sizeof k, "%s%s%s", key, strchr(key, ':') ? "" : ":",
             strchr(key, ':') ? "" : id);
    rset(k, text, len);
    json_decref(j);
    free(text);
    free(path);
    return id;
}

START_TEST(test_interop_reads_python_values)
{
    const char *const names[] = {"hero", "story"};
    const rc_entity_ops *ops[] = {&rc_hero_entity, &rc_story_entity};
    const char *fixtures[] = {"hero_envelope.json", "story_envelope.json"};
    for (int i = 0; i < 2; i++) {
        count_repo *in = count_repo_new(ops[i], NULL);
        rc_strategy st;
        rc_repo *c = NULL;
        rc_cached_repo_options o = {.own_inner = true};
        ck_assert_int_eq(rc_strategy_builtin(names[i], &settings, &st), RC_OK);
        ck_assert_int_eq(rc_cached_repo_new(&in->base, cache, &st, &o, &c), RC_OK);
        /* The service meets this server first: a Redis identity no service
         * has trusted has its namespaces dropped once, before use. */
        ck_assert_int_eq(rc_cache_health_check(cache), RC_OK);
        char *id = put_fixture(fixtures[i], names[i]);
        void *e = NULL;
        ck_assert_int_eq(rc_repo_find_by_id(c, id, &e), RC_OK);
        ck_assert_str_eq(ops[i]->get_id(e), id);
        ck_assert_int_eq(in->finds, 0); /* answered from the Python value */
        if (i == 0)
            ck_assert_str_eq(((rc_hero *)e)->name, "Алиса");
        else
            ck_assert_int_eq(((rc_story *)e)->rating.value, 8);
        ops[i]->free(e);
        free(id);
        rc_repo_free(c);
    }
    /* a child written by hand as Python wrote it, and the child fixture (id
     * null, as Python cached unsaved children) inside a query list */
    static const char child_py[] =
        "{\"entity\": {\"id\": \"c-9\", \"name\": \"Emma\", \"age_category\": "
        "\"5-7\", \"age\": 6, \"gender\": \"female\", \"interests\": "
        "[\"dinosaurs\"], \"created_at\": \"2024-01-15T10:30:00\", "
        "\"updated_at\": null}, \"cached_at\": \"2024-01-15T10:30:05.123456\", "
        "\"ttl\": 1800}";
    rset("child:c-9", child_py, strlen(child_py));
    char *path = th_fixture_path("child_envelope.json");
    size_t len = 0;
    char *text = th_read_file(path, &len), *list = malloc(len + 3);
    snprintf(list, len + 3, "[%s]", text);
    rset("child:name:Emma", list, strlen(list));
    free(list);
    free(text);
    free(path);
    {
        count_repo *in = count_repo_new(&rc_child_entity, NULL);
        rc_strategy st;
        rc_repo *c = NULL;
        rc_cached_repo_options o = {.own_inner = true};
        ck_assert_int_eq(rc_strategy_child(&settings, &st), RC_OK);
        ck_assert_int_eq(rc_cached_repo_new(&in->base, cache, &st, &o, &c), RC_OK);
        void *e = NULL;
        rc_list *l = NULL;
        const char *emma[] = {"Emma"};
        ck_assert_int_eq(rc_repo_find_by_id(c, "c-9", &e), RC_OK);
        ck_assert_str_eq(((rc_child *)e)->interests.items[0], "dinosaurs");
        rc_child_free(e);
        ck_assert_int_eq(rc_repo_find_by_query(c, "by_name", emma, 1, &l), RC_OK);
        ck_assert_uint_eq(l->len, 1);
        ck_assert_str_eq(((rc_child *)l->items[0])->age_category, "5-7");
        rc_list_free(l);
        ck_assert_int_eq(in->finds + in->queries, 0);
        rc_repo_free(c);
    }
    /* a list written by Python under hero:all and hero:lang:en */
    count_repo *in;
    rc_repo *c = cached_hero(&in, true);
    free(put_fixture("hero_list.json", "hero:all"));
    free(put_fixture("hero_list.json", "hero:lang:en"));
    rc_list *l = NULL;
    const char *en[] = {"en"};
    ck_assert_int_eq(rc_repo_list_all(c, &l), RC_OK);
    ck_assert_uint_eq(l->len, 3);
    ck_assert_str_eq(((rc_hero *)l->items[1])->name, "Max");
    rc_list_free(l);
    ck_assert_int_eq(rc_repo_find_by_query(c, "by_language", en, 1, &l), RC_OK);
    ck_assert_uint_eq(l->len, 3);
    rc_list_free(l);
    ck_assert_int_eq(in->lists + in->queries, 0);
    rc_repo_free(c);
}
END_TEST

static void assert_envelope(json_t *env, int ttl, const char *const *fields)
{
    ck_assert(json_is_object(env));
    ck_assert_uint_eq(json_object_size(env), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(env, "ttl")), ttl);
    const char *at = json_string_value(json_object_get(env, "cached_at"));
    ck_assert_ptr_nonnull(at);
    ck_assert_msg(strlen(at) >= 19 && at[4] == '-' && at[10] == 'T' && !strchr(at, 'Z') &&
                      !strchr(at, '+'), "cached_at %s", at);
    json_t *ent = json_object_get(env, "entity");
    ck_assert(json_is_object(ent));
    for (size_t i = 0; fields[i]; i++)
        ck_assert_msg(json_object_get(ent, fields[i]), "field %s missing", fields[i]);
}

START_TEST(test_interop_writes_python_layout)
{
    static const char *const hero_fields[] = {
        "id", "name", "age", "gender", "appearance", "personality_traits", "interests",
        "strengths", "language", "created_at", "updated_at", NULL};
    count_repo *in;
    rc_repo *c = cached_hero(&in, false);
    cr_put(in, mk_hero("h1", "Ann Ö: x", "en"));
    void *e;
    rc_list *l;
    const char *name[] = {"Ann Ö: x"};
    ck_assert_int_eq(rc_repo_find_by_id(c, "h1", &e), RC_OK);
    rc_hero_free(e);
    ck_assert_int_eq(rc_repo_find_by_query(c, "by_name", name, 1, &l), RC_OK);
    rc_list_free(l);

    char *v = rget("hero:h1");
    ck_assert_ptr_nonnull(v);
    json_t *j = json_loads(v, 0, NULL);
    assert_envelope(j, 3600, hero_fields);
    json_t *ent = json_object_get(j, "entity");
    ck_assert_str_eq(json_string_value(json_object_get(ent, "name")), "Ann Ö: x");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(ent, "interests"), 0)),
                     "maps");
    json_decref(j);
    free(v);
    /* the query key holds the name byte for byte; the value is an array of
     * envelopes */
    v = rget("hero:name:Ann Ö: x");
    ck_assert_ptr_nonnull(v);
    j = json_loads(v, 0, NULL);
    ck_assert(json_is_array(j));
    ck_assert_uint_eq(json_array_size(j), 1);
    assert_envelope(json_array_get(j, 0), 3600, hero_fields);
    json_decref(j);
    free(v);
    redisReply *r = rcmd("TTL hero:h1");
    ck_assert_int_gt(r->integer, 3590);
    ck_assert_int_le(r->integer, 3600);
    freeReplyObject(r);
    rc_repo_free(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A user-defined strategy for a made-up entity                        */

typedef struct gadget {
    char *id;
    char *color;
    int size;
} gadget;

static void gadget_free(void *e)
{
    gadget *g = e;
    if (!g)
        return;
    free(g->id);
    free(g->color);
    free(g);
}

static void *gadget_clone(const void *e)
{
    const gadget *g = e;
    gadget *c = calloc(1, sizeof *c);
    c->id = strdup(g->id);
    c->color = strdup(g->color);
    c->size = g->size;
    return c;
}

static const char *gadget_id(const void *e) { return ((const gadget *)e)->id; }

static const rc_entity_ops gadget_entity = {
    .name = "gadget", .free = gadget_free, .clone = gadget_clone, .get_id = gadget_id,
};

static json_t *gadget_encode(const void *e)
{
    const gadget *g = e;
    return json_pack("{s:s, s:s, s:i}", "id", g->id, "color", g->color, "size", g->size);
}

static int gadget_decode(const json_t *j, void **out)
{
    const char *id, *color;
    int size;
    if (json_unpack((json_t *)j, "{s:s, s:s, s:i}", "id", &id, "color", &color, "size",
                    &size) != 0)
        return RC_EDECODE;
    gadget *g = calloc(1, sizeof *g);
    g->id = strdup(id);
    g->color = strdup(color);
    g->size = size;
    *out = g;
    return RC_OK;
}

static const rc_codec gadget_codec = {.encode = gadget_encode, .decode = gadget_decode};

static const rc_query_def gadget_queries[] = {
    {.name = "by_color", .segment = "color", .nargs = 1},
    {.name = "by_color_size", .segment = "cs", .nargs = 2, .escape_args = true},
};

static int gadget_query_keys(const void *e, rc_query_key_fn emit, void *ud)
{
    const gadget *g = e;
    char size[16];
    if (strcmp(g->color, "!") == 0)
        return RC_EBACKEND; /* a callback that fails */
    snprintf(size, sizeof size, "%d", g->size);
    const char *a[] = {g->color, size};
    int rc = emit(ud, "by_color", a, 1);
    return rc ? rc : emit(ud, "by_color_size", a, 2);
}

static int gadget_match(const void *e, const char *q, const char *const *args, size_t n)
{
    const gadget *g = e;
    if (strcmp(q, "by_color") == 0 && n == 1)
        return strcmp(g->color, args[0]) == 0;
    if (strcmp(q, "by_color_size") == 0 && n == 2)
        return strcmp(g->color, args[0]) == 0 && g->size == atoi(args[1]);
    return -1;
}

static gadget *mk_gadget(const char *id, const char *color, int size)
{
    gadget g = {(char *)id, (char *)color, size};
    return gadget_clone(&g);
}

START_TEST(test_user_defined_strategy)
{
    const rc_strategy st = {
        .ns = "gadget", .entity = &gadget_entity, .codec = &gadget_codec,
        .queries = gadget_queries, .nqueries = 2, .ttl = 99, .negative_ttl = 5,
        .cache_on_read = true, .cache_on_write = false, .query_keys = gadget_query_keys,
    };
    count_repo *in = count_repo_new(&gadget_entity, gadget_match);
    rc_cached_repo_options o = {.own_inner = true};
    rc_repo *c = NULL;
    ck_assert_int_eq(rc_cached_repo_new(&in->base, cache, &st, &o, &c), RC_OK);
    gadget *g = mk_gadget("g1", "re:d", 3);
    ck_assert_int_eq(rc_repo_save(c, g, NULL), RC_OK);
    gadget_free(g);
    void *e;
    rc_list *l;
    const char *red[] = {"re:d", "3"};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(rc_repo_find_by_id(c, "g1", &e), RC_OK);
        ck_assert_int_eq(((gadget *)e)->size, 3);
        gadget_free(e);
        ck_assert_int_eq(rc_repo_find_by_query(c, "by_color", red, 1, &l), RC_OK);
        ck_assert_uint_eq(l->len, 1);
        rc_list_free(l);
        ck_assert_int_eq(rc_repo_find_by_query(c, "by_color_size", red, 2, &l), RC_OK);
        ck_assert_uint_eq(l->len, 1);
        rc_list_free(l);
    }
    ck_assert_int_eq(in->finds + in->queries, 3);
    ASSERT_KEYS("gadget:color:re:d\ngadget:cs:re\\:d:3\ngadget:g1\n");
    redisReply *r = rcmd("TTL gadget:g1");
    ck_assert_int_le(r->integer, 99);
    freeReplyObject(r);
    /* a change of color and size invalidates old and new keys */
    g = mk_gadget("g1", "blue", 4);
    ck_assert_int_eq(rc_repo_update(c, g, NULL, NULL), RC_OK);
    gadget_free(g);
    ASSERT_KEYS("");
    ck_assert_int_eq(rc_repo_find_by_query(c, "by_color", red, 1, &l), RC_OK);
    ck_assert_uint_eq(l->len, 0);
    rc_list_free(l);
    /* when the callback fails, the namespace goes (other entities stay) */
    const char *blue[] = {"blue"};
    ck_assert_int_eq(rc_repo_find_by_query(c, "by_color", blue, 1, &l), RC_OK);
    rc_list_free(l);
    rset("hero:h1", "x", 1);
    g = mk_gadget("g2", "!", 1);
    ck_assert_int_eq(rc_repo_save(c, g, NULL), RC_OK);
    gadget_free(g);
    ASSERT_KEYS("hero:h1\n");
    rc_repo_free(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Corrupted and foreign values                                        */

START_TEST(test_corrupt_and_foreign_values)
{
    static const char *const garbage[] = {
        "garbage", "", "{}", "[1]", "null", "{\"entity\": {\"id\": 5}}",
        "{\"entity\": \"x\", \"cached_at\": 1, \"ttl\": 1}", "[[[[[[",
        "{\"entity\": {\"id\": \"h1\", \"name\": \"Ann\"}}", "\xff\xfe\x00\x01"};
    count_repo *in;
    rc_repo *c = cached_hero(&in, false);
    cr_put(in, mk_hero("h1", "Ann", "en"));
    void *e;
    rc_list *l;
    const char *en[] = {"en"};
    size_t n = sizeof garbage / sizeof garbage[0];
    for (size_t i = 0; i < n; i++) {
        size_t len = i == n - 1 ? 4 : strlen(garbage[i]);
        rset("hero:h1", garbage[i], len);
        rset("hero:all", garbage[i], len);
        rset("hero:lang:en", garbage[i], len);
        ck_assert_int_eq(rc_repo_find_by_id(c, "h1", &e), RC_OK);
        ck_assert_str_eq(((rc_hero *)e)->name, "Ann");
        rc_hero_free(e);
        ck_assert_int_eq(rc_repo_list_all(c, &l), RC_OK);
        ck_assert_uint_eq(l->len, 1);
        rc_list_free(l);
        ck_assert_int_eq(rc_repo_find_by_query(c, "by_language", en, 1, &l), RC_OK);
        ck_assert_uint_eq(l->len, 1);
        rc_list_free(l);
    }
    /* values of other Redis types */
    freeReplyObject(rcmd("DEL hero:h1 hero:all hero:lang:en"));
    freeReplyObject(rcmd("RPUSH hero:h1 a b"));
    freeReplyObject(rcmd("HSET hero:all f v"));
    freeReplyObject(rcmd("SADD hero:lang:en x"));
    ck_assert_int_eq(rc_repo_find_by_id(c, "h1", &e), RC_OK);
    rc_hero_free(e);
    ck_assert_int_eq(rc_repo_list_all(c, &l), RC_OK);
    rc_list_free(l);
    ck_assert_int_eq(rc_repo_find_by_query(c, "by_language", en, 1, &l), RC_OK);
    rc_list_free(l);
    rc_cached_repo_stats st;
    stats(c, &st);
    ck_assert_uint_eq(st.decode_errors, 3 * (n + 1));
    /* the bad values were replaced by good ones: hits from now on */
    reset_counts(in);
    ck_assert_int_eq(rc_repo_find_by_id(c, "h1", &e), RC_OK);
    rc_hero_free(e);
    ck_assert_int_eq(rc_repo_list_all(c, &l), RC_OK);
    rc_list_free(l);
    ck_assert_int_eq(in->finds + in->lists, 0);
    rc_repo_free(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* invalidate_cache                                                     */

START_TEST(test_invalidate_scopes)
{
    count_repo *in;
    rc_repo *c = cached_hero(&in, false);
    long long removed = -1;
    cr_put(in, mk_hero("h1", "A*", "en"));
    cr_put(in, mk_hero("h2", "Ab", "ru"));
    cr_put(in, mk_hero("h3", "A?", "en"));
    void *e;
    rc_list *l;
    const char *names[] = {"A*", "Ab", "A?", "[A]"};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(rc_repo_find_by_query(c, "by_name", &names[i], 1, &l), RC_OK);
        rc_list_free(l);
    }
    ck_assert_int_eq(rc_repo_find_by_id(c, "h1", &e), RC_OK);
    rc_hero_free(e);
    ck_assert_int_eq(rc_repo_find_by_id(c, "h8", &e), RC_ENOTFOUND);
    rset("child:c1", "x", 1);

    /* a glob character removes only the literal key */
    ck_assert_int_eq(rc_cached_repo_invalidate(c, "by_name", &names[0], 1, &removed), RC_OK);
    ck_assert_int_eq(removed, 1);
    ck_assert(!rexists("hero:name:A*"));
    ck_assert(rexists("hero:name:Ab") && rexists("hero:name:A?"));
    ck_assert_int_eq(rc_cached_repo_invalidate(c, "by_name", &names[3], 1, &removed), RC_OK);
    ck_assert_int_eq(removed, 1);
    ck_assert(rexists("hero:name:Ab") && rexists("hero:name:A?"));
    ck_assert_int_eq(rc_cached_repo_invalidate(c, "by_name", &names[0], 1, &removed), RC_OK);
    ck_assert_int_eq(removed, 0);
    /* by id: the value (the negative entry of another id stays) */
    const char *h1[] = {"h1"}, *h8[] = {"h8"};
    ck_assert_int_eq(rc_cached_repo_invalidate(c, "by_id", h1, 1, &removed), RC_OK);
    ck_assert_int_eq(removed, 1);
    ck_assert(rexists(th_aux_key("", "hero:h8", "~none:")));
    ck_assert_int_eq(rc_cached_repo_invalidate(c, "by_id", h8, 1, &removed), RC_OK);
    ck_assert_int_eq(removed, 1);
    ASSERT_KEYS("child:c1\nhero:name:A?\nhero:name:Ab\n");
    /* bad scopes and arguments */
    ck_assert_int_eq(rc_cached_repo_invalidate(c, "by_colour", h1, 1, &removed), RC_EINVAL);
    ck_assert_int_eq(rc_cached_repo_invalidate(c, "by_name", names, 2, &removed), RC_EINVAL);
    ck_assert_int_eq(rc_cached_repo_invalidate(c, "by_id", NULL, 0, &removed), RC_EINVAL);
    const char *bad_id[] = {"a:b"};
    ck_assert_int_eq(rc_cached_repo_invalidate(c, "by_id", bad_id, 1, &removed), RC_EINVAL);
    ck_assert_int_eq(rc_cached_repo_invalidate(c, "all", h1, 1, &removed), RC_EINVAL);
    ck_assert_int_eq(rc_cached_repo_invalidate(&in->base, "all", NULL, 0, &removed), RC_EINVAL);
    /* all: every hero key, nothing else */
    ck_assert_int_eq(rc_repo_list_all(c, &l), RC_OK);
    rc_list_free(l);
    ck_assert_int_eq(rc_cached_repo_invalidate(c, "all", NULL, 0, &removed), RC_OK);
    ck_assert_int_eq(removed, 3);
    ASSERT_KEYS("child:c1\n");
    rc_cached_repo_stats st;
    stats(c, &st);
    ck_assert_uint_eq(st.invalidations, 1 + 1 + 1 + 1 + 3);
    rc_repo_free(c);
}
END_TEST

/* A prefix with glob characters: "all" removes only its own keys. */
START_TEST(test_invalidate_all_with_glob_prefix)
{
    rc_settings s2;
    rc_cache *c2 = NULL;
    ck_assert_int_eq(rc_settings_defaults(&s2), RC_OK);
    th_settings_url(&s2, srv.url);
    ck_assert_int_eq(rc_settings_set(&s2, "CACHE_KEY_PREFIX", "p1x:"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s2, "LOG_LEVEL", "warning"), RC_OK);
    ck_assert_int_eq(rc_cache_new(&s2, &c2), RC_OK);
    rc_cache_free(cache);
    ck_assert_int_eq(rc_settings_set(&settings, "CACHE_KEY_PREFIX", "p[1]*:"), RC_OK);
    ck_assert_int_eq(rc_cache_new(&settings, &cache), RC_OK);

    count_repo *in = count_repo_new(&rc_hero_entity, hero_match);
    cr_put(in, mk_hero("h1", "Ann", "en"));
    rc_strategy st;
    rc_repo *a = NULL, *b = NULL;
    ck_assert_int_eq(rc_strategy_hero(NULL, &st), RC_OK);
    ck_assert_int_eq(rc_cached_repo_new(&in->base, cache, &st, NULL, &a), RC_OK);
    ck_assert_int_eq(rc_cached_repo_new(&in->base, c2, &st, NULL, &b), RC_OK);
    rc_list *l;
    void *e;
    rc_repo *both[] = {a, b};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(rc_repo_list_all(both[i], &l), RC_OK);
        rc_list_free(l);
        ck_assert_int_eq(rc_repo_find_by_id(both[i], "h1", &e), RC_OK);
        rc_hero_free(e);
    }
    ASSERT_KEYS("p1x:hero:all\np1x:hero:h1\np[1]*:hero:all\np[1]*:hero:h1\n");
    long long removed = 0;
    ck_assert_int_eq(rc_cached_repo_invalidate(a, "all", NULL, 0, &removed), RC_OK);
    ck_assert_int_eq(removed, 2);
    ASSERT_KEYS("p1x:hero:all\np1x:hero:h1\n");
    rc_repo_free(a);
    rc_repo_free(b);
    rc_repo_free(&in->base);
    rc_cache_free(c2);
    rc_settings_clear(&s2);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Statistics                                                           */

START_TEST(test_stats)
{
    count_repo *in;
    rc_repo *c = cached_hero(&in, true);
    rc_cached_repo_stats st;
    cr_put(in, mk_hero("h1", "Ann", "en"));
    stats(c, &st);
    ck_assert_str_eq(st.entity_type, "hero");
    ck_assert_int_eq(st.default_ttl, 3600);
    ck_assert(!st.all_cached);
    ck_assert_int_eq(st.all_ttl_remaining, -2);
    ck_assert(st.cache_on_read && st.cache_on_write);
    ck_assert_double_eq(st.hit_rate, 0.0);
    rc_list *l;
    ck_assert_int_eq(rc_repo_list_all(c, &l), RC_OK);
    rc_list_free(l);
    ck_assert_int_eq(rc_repo_list_all(c, &l), RC_OK);
    rc_list_free(l);
    stats(c, &st);
    ck_assert(st.all_cached);
    ck_assert_int_gt(st.all_ttl_remaining, 3590);
    ck_assert_uint_eq(st.hits, 1);
    ck_assert_uint_eq(st.misses, 1);
    ck_assert_double_eq_tol(st.hit_rate, 0.5, 1e-9);
    ck_assert_int_ge(st.cache.keys, 1);
    ck_assert(st.cache.redis_available);

    char *js = NULL;
    ck_assert_int_eq(rc_cached_repo_stats_json(c, &js), RC_OK);
    json_t *j = json_loads(js, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "entity_type")), "hero");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "default_ttl")), 3600);
    ck_assert(json_is_true(json_object_get(j, "all_cached")));
    ck_assert_int_gt(json_integer_value(json_object_get(j, "all_ttl_remaining")), 3590);
    ck_assert(json_is_true(json_object_get(j, "cache_on_read")));
    ck_assert(json_is_true(json_object_get(j, "cache_on_write")));
    const char *more[] = {"hits", "misses", "hit_rate", "errors", "decode_errors",
                          "invalidations", "stale_fills_rejected", "negative_hits"};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
        ck_assert_msg(json_is_number(json_object_get(j, more[i])), "%s", more[i]);
    ck_assert(json_is_object(json_object_get(j, "cache")));
    json_decref(j);
    free(js);
    ck_assert_int_eq(rc_cached_repo_get_stats(&in->base, &st), RC_EINVAL);
    rc_repo_free(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Out of memory in the codec (every jansson allocation in turn)        */

/* A cache that cannot encode or decode never changes an answer or a write's
 * status, never leaks, and never leaves a stale value behind. */
START_TEST(test_codec_out_of_memory)
{
    count_repo *in;
    rc_repo *c = cached_hero(&in, true);
    cr_put(in, mk_hero("h1", "Ann", "en"));
    long n;
    bool done = false;
    for (n = 1; !done && n < 5000; n++) {
        char name[16];
        void *e = NULL;
        rc_list *l = NULL;
        snprintf(name, sizeof name, "N%ld", n);
        freeReplyObject(rcmd("FLUSHALL"));
        th_chaos_begin(n);
        /* miss + fill, hit, list, update with cache_on_write */
        ck_assert_int_eq(rc_repo_find_by_id(c, "h1", &e), RC_OK);
        rc_hero_free(e);
        ck_assert_int_eq(rc_repo_find_by_id(c, "h1", &e), RC_OK);
        rc_hero_free(e);
        ck_assert_int_eq(rc_repo_list_all(c, &l), RC_OK);
        ck_assert_uint_eq(l->len, 1);
        rc_list_free(l);
        rc_hero *h = mk_hero("h1", name, "en");
        ck_assert_int_eq(rc_repo_update(c, h, NULL, NULL), RC_OK);
        rc_hero_free(h);
        done = th_chaos_calls() < n; /* nothing failed this time */
        long live = th_chaos_end();
        ck_assert_msg(live == 0, "N=%ld: %ld jansson blocks leaked", n, live);
        /* whatever failed, the cache answers the latest write */
        ck_assert_int_eq(rc_repo_find_by_id(c, "h1", &e), RC_OK);
        ck_assert_str_eq(((rc_hero *)e)->name, name);
        rc_hero_free(e);
        ck_assert_int_eq(rc_repo_list_all(c, &l), RC_OK);
        ck_assert_str_eq(((rc_hero *)l->items[0])->name, name);
        rc_list_free(l);
    }
    ck_assert(done);
    ck_assert_int_gt(n, 20);
    rc_repo_free(c);
}
END_TEST

/* What rc_cached_repo_stats_json handed back. */
static char *stats_text;

static int call_stats_json(void *ud)
{
    stats_text = (char *)"untouched";
    return rc_cached_repo_stats_json(ud, &stats_text);
}

/* The whole object on RC_OK, nothing otherwise; the text is the caller's
 * to free() whatever allocator jansson has. */
static void check_stats_json(void *ud, int rc)
{
    (void)ud;
    if (rc == RC_OK) {
        json_t *j = json_loads(stats_text, 0, NULL);
        ck_assert_ptr_nonnull(j);
        ck_assert_str_eq(json_string_value(json_object_get(j, "entity_type")),
                         "hero");
        ck_assert(json_is_true(json_object_get(j, "all_cached")));
        ck_assert(json_is_object(json_object_get(j, "cache")));
        json_decref(j);
    } else {
        ck_assert_ptr_null(stats_text);
    }
    free(stats_text);
}

/* The stats JSON with every jansson allocation failing in turn: never a
 * leak, a double free or a use after free (the chaos allocator faults on
 * those). */
START_TEST(test_stats_json_out_of_memory)
{
    count_repo *in;
    rc_repo *c = cached_hero(&in, true);
    rc_list *l = NULL;
    ck_assert_int_eq(rc_repo_list_all(c, &l), RC_OK);
    rc_list_free(l);
    ck_assert_int_gt(th_chaos_each("rc_cached_repo_stats_json",
                                   call_stats_json, check_stats_json, c),
                     20);
    rc_repo_free(c);
}
END_TEST

/* Reads the oversized-value test makes through c, a cached repository over
 * in holding 20 heroes: the list (about 9 KB encoded) is over the 2000-byte
 * cap, each hero (about 350 bytes) under it. */
static void read_big_and_small(rc_repo *c, count_repo *in)
{
    rc_list *l = NULL;
    void *e = NULL;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(rc_repo_list_all(c, &l), RC_OK);
        ck_assert_uint_eq(l->len, 20);
        rc_list_free(l);
        ck_assert_int_eq(rc_repo_find_by_id(c, "h1", &e), RC_OK);
        rc_hero_free(e);
    }
    ck_assert_int_eq(in->lists, 3); /* the list is never cached */
    ck_assert_int_eq(in->finds, 1); /* the hero is */
    rc_cached_repo_stats st;
    stats(c, &st);
    ck_assert_uint_eq(st.cache.oversized_skipped, 3);
    ck_assert_uint_eq(st.errors, 0);
}

/* CACHE_MAX_VALUE_BYTES: a value over it is answered from the wrapped
 * repository every time and stored nowhere (Redis, near cache, fallback). */
START_TEST(test_oversized_values_not_cached)
{
    char id[8];
    for (int pass = 0; pass < 2; pass++) {
        rc_cache_free(cache);
        ck_assert_int_eq(rc_settings_set(&settings, "CACHE_MAX_VALUE_BYTES", "2000"), RC_OK);
        if (pass == 1) /* the fallback as the cache */
            ck_assert_int_eq(rc_settings_set(&settings, "REDIS_ENABLED", "false"), RC_OK);
        ck_assert_int_eq(rc_cache_new(&settings, &cache), RC_OK);
        count_repo *in;
        rc_repo *c = cached_hero(&in, false);
        for (int i = 1; i <= 20; i++) {
            snprintf(id, sizeof id, "h%d", i);
            cr_put(in, mk_hero(id, "Ann", "en"));
        }
        read_big_and_small(c, in);
        if (pass == 0)
            ASSERT_KEYS("hero:h1\n");
        rc_repo_free(c);
    }
}
END_TEST

static Suite *cached_suite(void)
{
    Suite *s = suite_create("cached_repository");
    const th_case cases[] = {
        {"miss_once_then_hit", test_miss_once_then_hit},
        {"cache_on_read_off", test_cache_on_read_off},
        {"writes_remove_exact_keys", test_writes_remove_exact_keys},
        {"cache_on_write", test_cache_on_write_stores_entity},
        {"failing_write_leaves_cache", test_failing_write_leaves_cache},
        {"no_previous_drops_namespace", test_no_previous_drops_namespace},
        {"no_previous_while_redis_down", test_no_previous_while_redis_down},
        {"negative_cache", test_negative_cache},
        {"slots_and_ownership", test_slots_and_ownership},
        {"sqlite_hero_queries", test_sqlite_hero_queries},
        {"sqlite_child_queries", test_sqlite_child_queries},
        {"sqlite_story_queries", test_sqlite_story_queries},
        {"interop_reads_python_values", test_interop_reads_python_values},
        {"interop_writes_python_layout", test_interop_writes_python_layout},
        {"user_defined_strategy", test_user_defined_strategy},
        {"corrupt_and_foreign_values", test_corrupt_and_foreign_values},
        {"invalidate_scopes", test_invalidate_scopes},
        {"invalidate_all_with_glob_prefix", test_invalidate_all_with_glob_prefix},
        {"stats", test_stats},
        {"oversized_values_not_cached", test_oversized_values_not_cached},
        {"codec_out_of_memory", test_codec_out_of_memory},
        {"stats_json_out_of_memory", test_stats_json_out_of_memory},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], setup, teardown, 0);
    return s;
}

int main(void)
{
    if (th_redis_shared(&srv) != 0)
        return EXIT_FAILURE;
    int status = th_run_suite(cached_suite());
    th_redis_stop(&srv);
    return status;
}
