/* check_outbox.c - the invalidation outbox and Redis's identity, against real
 * SQLite files and real redis-servers: a write stores its row in its own
 * transaction, marked applied once its delete reached Redis; the table's
 * growth is bounded; a version-1 repository keeps working without one; a
 * restarted (AOF-restored) Redis has its namespaces dropped by one service
 * of two, and leaves no key behind. */
#include "harness.h"
#include "service.h"
#include "cache/service.h"
#include "repocache/cached_repository.h"
#include "repocache/sqlite_repository.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *db_path;

static void setup(void) { db_path = th_tmpfile("outbox.db"); }
static void teardown(void) { free(db_path); }

/* A service on url (breaker after one failure, short timeouts). */
static rc_cache *service(const char *url)
{
    rc_settings s;
    rc_cache *c = NULL;
    ck_assert_int_eq(rc_settings_defaults(&s), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", url), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "LOG_LEVEL", "error"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_SOCKET_TIMEOUT", "0.2"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "CIRCUIT_BREAKER_THRESHOLD", "1"), RC_OK);
    ck_assert_int_eq(rc_cache_new(&s, &c), RC_OK);
    rc_settings_clear(&s);
    return c;
}

/* A cached hero repository over db on c. */
static rc_repo *heroes(rc_sqlite_db *db, rc_cache *c)
{
    rc_repo *inner = NULL, *r = NULL;
    rc_strategy st;
    rc_cached_repo_options o = {.own_inner = true};
    ck_assert_int_eq(rc_sqlite_repo_new(db, &rc_hero_entity, &inner), RC_OK);
    ck_assert_int_eq(rc_strategy_hero(NULL, &st), RC_OK);
    ck_assert_int_eq(rc_cached_repo_new(inner, c, &st, &o, &r), RC_OK);
    return r;
}

static rc_hero *hero(const char *id, const char *name)
{
    rc_hero *h = rc_hero_new();
    h->id = strdup(id);
    h->name = strdup(name);
    h->age = 30;
    h->gender = strdup("male");
    h->appearance = strdup("tall");
    h->language = strdup("en");
    return h;
}

/* The first column of the first row of sql (a number), -1 when none. */
static long long number(const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

START_TEST(test_row_written_with_the_write)
{
    th_silent down;
    th_redis up;
    ck_assert_int_eq(th_silent_open(&down), 0);
    ck_assert_int_eq(th_redis_shared(&up), 0);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.2:%d/0", down.port);
    rc_sqlite_db *db = NULL;
    ck_assert_int_eq(rc_sqlite_open(db_path, &db), RC_OK);
    /* Redis unreachable: the row stays, naming the keys, leases first. */
    rc_cache *c = service(url);
    rc_repo *r = heroes(db, c);
    rc_hero *h = hero("h1", "Ann");
    ck_assert_int_eq(rc_repo_save(r, h, NULL), RC_OK);
    ck_assert_int_eq(number("SELECT count(*) FROM rc_outbox WHERE applied = 0"), 1);
    rc_outbox_row *rows = NULL;
    size_t n = 0;
    ck_assert_int_eq(rc_repo_outbox_read(rc_cached_repo_inner(r), 0, 10, 1, &rows, &n), RC_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(rows[0].pattern, "hero:*");
    ck_assert_str_eq(rows[0].keys, th_aux_key("", "hero:h1", "~lease:")); /* the first key */
    bool found = false; /* the by-id key among them */
    for (size_t i = 0; i < rows[0].keys_len; i += strlen(rows[0].keys + i) + 1)
        found = found || strcmp(rows[0].keys + i, "hero:h1") == 0;
    ck_assert(found);
    rc_outbox_rows_free(rows, n);
    rc_cache_stats cs;
    ck_assert_int_eq(rc_cache_get_stats(c, &cs), RC_OK);
    ck_assert_uint_eq(cs.outbox_written, 1);
    rc_repo_free(r);
    rc_cache_free(c);
    /* Redis reachable: the first use applies the pending row, and a write
     * whose delete reached Redis marks its own row applied. */
    c = service(up.url);
    r = heroes(db, c);
    ck_assert_int_eq(rc_cache_health_check(c), RC_OK);
    free(h->name);
    h->name = strdup("Bob");
    ck_assert_int_eq(rc_repo_update(r, h, NULL, NULL), RC_OK);
    /* the marks wait for a write or the service's next poll (100 ms) */
    th_await(number("SELECT count(*) FROM rc_outbox WHERE applied = 1") == 2, TH_WAIT_SECONDS);
    ck_assert_int_eq(number("SELECT count(*) FROM rc_outbox WHERE applied = 0"), 0);
    ck_assert_int_eq(rc_cache_get_stats(c, &cs), RC_OK);
    ck_assert_uint_eq(cs.outbox_applied, 2);
    rc_hero_free(h);
    rc_repo_free(r);
    rc_cache_free(c);
    rc_sqlite_free(db);
    th_silent_close(&down);
}
END_TEST

/* A hook that always names one key. */
static void one_key(void *ud, const void *old, const void *now, rc_outbox_row *row)
{
    (void)ud, (void)old, (void)now;
    row->pattern = (char *)"hero:*";
    row->keys = (char *)"hero:k";
    row->keys_len = 7;
}
static void logged(void *ud, long long seq) { (void)ud, (void)seq; }

START_TEST(test_growth_is_bounded)
{
    rc_sqlite_db *db = NULL;
    rc_repo *r = NULL;
    ck_assert_int_eq(rc_sqlite_open(db_path, &db), RC_OK);
    ck_assert_int_eq(rc_sqlite_repo_new(db, &rc_hero_entity, &r), RC_OK);
    rc_outbox_hook hook = {one_key, logged, NULL};
    ck_assert_int_eq(rc_repo_outbox_attach(r, &hook), RC_OK);
    rc_hero *h = hero("h1", "A");
    ck_assert_int_eq(rc_repo_save(r, h, NULL), RC_OK);
    for (int i = 0; i < 10050; i++)
        ck_assert_int_eq(rc_repo_update(r, h, NULL, NULL), RC_OK);
    long long pending = number("SELECT count(*) FROM rc_outbox WHERE applied = 0");
    fprintf(stderr, "outbox: 10051 writes without Redis: %lld rows pending\n", pending);
    ck_assert_int_le(pending, 10000 + 1);
    /* the oldest pending row now drops the whole namespace */
    ck_assert_int_eq(number("SELECT count(*) FROM rc_outbox WHERE keys IS NULL"), 1);
    rc_hero_free(h);
    rc_repo_free(r);
    rc_sqlite_free(db);
}
END_TEST

/* ---- a version-1 repository: one hero in memory ---- */

typedef struct v1_repo {
    rc_repo base; /* must be first */
    rc_hero *h;   /* the stored hero (owned) */
} v1_repo;

static int v1_find(rc_repo *b, const char *id, void **out)
{
    v1_repo *m = (v1_repo *)b;
    if (!m->h || strcmp(m->h->id, id) != 0)
        return RC_ENOTFOUND;
    *out = rc_hero_entity.clone(m->h);
    return *out ? RC_OK : RC_ENOMEM;
}

static int v1_update(rc_repo *b, const void *e, void **stored, void **previous)
{
    v1_repo *m = (v1_repo *)b;
    if (previous)
        *previous = m->h;
    else
        rc_hero_free(m->h);
    m->h = rc_hero_entity.clone(e);
    if (stored)
        *stored = rc_hero_entity.clone(e);
    return RC_OK;
}

static void v1_destroy(rc_repo *b)
{
    rc_hero_free(((v1_repo *)b)->h);
    free(b);
}

/* Written against version 1 of the table: no outbox slots exist for it. */
static const rc_repo_methods v1_methods = {
    .version = 1, .name = "v1", .find_by_id = v1_find, .update = v1_update,
    .destroy = v1_destroy,
};

START_TEST(test_version_one_table_keeps_working)
{
    th_redis up;
    ck_assert_int_eq(th_redis_shared(&up), 0);
    v1_repo *m = calloc(1, sizeof *m);
    m->base.methods = &v1_methods;
    m->base.entity = &rc_hero_entity;
    m->h = hero("h1", "Ann");
    rc_outbox_row *rows = NULL;
    size_t n = 0;
    ck_assert_int_eq(rc_repo_outbox_read(&m->base, 0, 1, 0, &rows, &n), RC_EUNSUPPORTED);
    rc_cache *c = service(up.url);
    rc_repo *inner = &m->base, *r = NULL;
    rc_strategy st;
    rc_cached_repo_options o = {.own_inner = true};
    ck_assert_int_eq(rc_strategy_hero(NULL, &st), RC_OK);
    ck_assert_int_eq(rc_cached_repo_new(inner, c, &st, &o, &r), RC_OK);
    void *e = NULL;
    ck_assert_int_eq(rc_repo_find_by_id(r, "h1", &e), RC_OK);
    rc_hero_free(e);
    rc_hero *h = hero("h1", "Bob");
    ck_assert_int_eq(rc_repo_update(r, h, NULL, NULL), RC_OK);
    rc_hero_free(h);
    ck_assert_int_eq(rc_repo_find_by_id(r, "h1", &e), RC_OK);
    ck_assert_str_eq(((rc_hero *)e)->name, "Bob");
    rc_hero_free(e);
    rc_cache_stats cs;
    ck_assert_int_eq(rc_cache_get_stats(c, &cs), RC_OK);
    ck_assert_uint_eq(cs.outbox_written, 0);
    rc_repo_free(r);
    rc_cache_free(c);
}
END_TEST

START_TEST(test_new_identity_dropped_once)
{
    th_redis srv;
    ck_assert_int_eq(th_redis_start(&srv, "--appendonly yes --appendfsync always"), 0);
    rc_sqlite_db *db = NULL;
    ck_assert_int_eq(rc_sqlite_open(db_path, &db), RC_OK);
    rc_cache *a = service(srv.url), *b = service(srv.url);
    rc_repo *ra = heroes(db, a), *rb = heroes(db, b);
    rc_hero *h = hero("h1", "Ann");
    ck_assert_int_eq(rc_repo_save(ra, h, NULL), RC_OK);
    rc_hero_free(h);
    void *e = NULL;
    ck_assert_int_eq(rc_repo_find_by_id(rb, "h1", &e), RC_OK); /* into Redis */
    rc_hero_free(e);
    redisContext *raw = th_redis_connect(&srv, NULL);
    redisReply *rep = redisCommand(raw, "EXISTS hero:h1");
    ck_assert_int_eq(rep->integer, 1);
    freeReplyObject(rep);
    redisFree(raw);
    /* The first service to meet the server dropped the namespace once. */
    rc_cache_stats sa, sb;
    ck_assert_int_eq(rc_cache_get_stats(a, &sa), RC_OK);
    ck_assert_int_eq(rc_cache_get_stats(b, &sb), RC_OK);
    ck_assert_uint_eq(sa.identity_drops + sb.identity_drops, 1);
    uint64_t before = sa.identity_drops + sb.identity_drops;
    /* Restarted from its AOF: the value is back, under a new run_id. */
    th_redis_kill(&srv);
    ck_assert_int_eq(th_redis_restart(&srv), 0);
    raw = th_redis_connect(&srv, NULL);
    rep = redisCommand(raw, "EXISTS hero:h1");
    ck_assert_int_eq(rep->integer, 1);
    freeReplyObject(rep);
    th_await(rc_cache_health_check(a) == RC_OK && rc_cache_health_check(b) == RC_OK,
             TH_WAIT_SECONDS);
    ck_assert_int_eq(rc_cache_get_stats(a, &sa), RC_OK);
    ck_assert_int_eq(rc_cache_get_stats(b, &sb), RC_OK);
    ck_assert_uint_eq(sa.identity_changes, 1);
    ck_assert_uint_eq(sb.identity_changes, 1);
    ck_assert_uint_eq(sa.identity_drops + sb.identity_drops - before, 1); /* one of two */
    ck_assert(sa.redis_trusted && sb.redis_trusted);
    rep = redisCommand(raw, "DBSIZE"); /* the value gone, no marker key left */
    ck_assert_int_eq(rep->integer, 0);
    freeReplyObject(rep);
    redisFree(raw);
    rc_repo_free(ra);
    rc_repo_free(rb);
    rc_cache_free(a);
    rc_cache_free(b);
    rc_sqlite_free(db);
    th_redis_stop(&srv);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("outbox");
    const th_case cases[] = {
        {"row_written_with_the_write", test_row_written_with_the_write},
        {"growth_is_bounded", test_growth_is_bounded},
        {"version_one_table", test_version_one_table_keeps_working},
        {"new_identity_dropped_once", test_new_identity_dropped_once},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], setup, teardown, 120);
    return th_run_suite(s);
}
