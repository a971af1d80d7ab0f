/* check_metrics.c - what operators read, against a real redis-server and
 * SQLite files: every read counted once under its tier and outcome (near,
 * Redis, fallback; hit, negative hit, miss) and timed in its histogram; the
 * struct, the Prometheus text and the fleet agree; counts outlive their
 * repository; write-invalidation latency; CACHE_METRICS_ENABLED=false keeps
 * the counts but no histograms; fleet counters summed across two services,
 * sent by a miss once due and never by a hit; decode errors logged once per
 * period. (The text's syntax is checked by a real parser in
 * tests/tale/check_prometheus.py.) */
#include "harness.h"
#include "service.h"
#include "side.h"

#include "repocache/cached_repository.h"
#include "repocache/log.h"
#include "repocache/metrics.h"
#include "repocache/sqlite_repository.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static th_redis shared;
static char *db_path;

static void setup(void)
{
    ck_assert_int_eq(th_redis_shared(&shared), 0);
    ck_assert_int_eq(th_redis_flushall(&shared, NULL), 0);
    db_path = th_tmpfile("metrics.db");
}

static void teardown(void) { free(db_path); }

typedef th_side side;

static void open_side(side *s, const char *url, const char *const *kv, bool near)
{
    th_side_open(s, url, db_path, kv, near);
}

static void close_side(side *s) { th_side_close(s); }

static rc_repo *hero_repo(side *s) { return th_side_hero_repo(s); }

static void save_hero(rc_repo *r, const char *id)
{
    rc_hero *h = rc_hero_new();
    h->id = strdup(id);
    h->name = strdup("Ann");
    h->age = 30;
    h->gender = strdup("female");
    h->appearance = strdup("tall");
    h->language = strdup("en");
    ck_assert_int_eq(rc_repo_save(r, h, NULL), RC_OK);
    rc_hero_free(h);
}

static int find(rc_repo *r, const char *id)
{
    void *e = NULL;
    int rc = rc_repo_find_by_id(r, id, &e);
    rc_hero_free(e);
    return rc;
}

/* The value of the sample line that starts with head (name{labels}) in
 * the service's text; -1 when there is none. */
static double sample(rc_cache *c, const char *head)
{
    char *text = NULL;
    ck_assert_int_eq(rc_cache_metrics_text(c, &text), RC_OK);
    double v = -1;
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, head, strlen(head)) == 0 && p[strlen(head)] == ' ')
            v = strtod(p + strlen(head) + 1, NULL);
    free(text);
    return v;
}

/* Whether the service's text holds needle. */
static bool text_has(rc_cache *c, const char *needle)
{
    char *text = NULL;
    ck_assert_int_eq(rc_cache_metrics_text(c, &text), RC_OK);
    bool has = strstr(text, needle) != NULL;
    free(text);
    return has;
}

static double reads(rc_cache *c, const char *tier, const char *outcome)
{
    char head[160];
    snprintf(head, sizeof head,
             "repocache_reads_total{entity=\"hero\",tier=\"%s\",outcome=\"%s\"}", tier, outcome);
    return sample(c, head);
}

static double latency_count(rc_cache *c, const char *tier, const char *outcome)
{
    char head[200];
    snprintf(head, sizeof head,
             "repocache_read_duration_seconds_count{entity=\"hero\",tier=\"%s\",outcome=\"%s\"}",
             tier, outcome);
    return sample(c, head);
}

#define MISSING "0123456789abcdef0123456789abcdef"

START_TEST(test_reads_by_tier_and_outcome)
{
    side s;
    open_side(&s, shared.url, NULL, true);
    save_hero(s.repo, "m1");                        /* cache_on_write: in Redis */
    ck_assert_int_eq(find(s.repo, "m1"), RC_OK);    /* Redis hit, kept near */
    ck_assert_int_eq(find(s.repo, "m1"), RC_OK);    /* near hit */
    ck_assert_int_eq(find(s.repo, MISSING), RC_ENOTFOUND); /* miss */
    ck_assert_int_eq(find(s.repo, MISSING), RC_ENOTFOUND); /* negative hit */
    ck_assert_double_eq(reads(s.cache, "near", "hit"), 1);
    ck_assert_double_eq(reads(s.cache, "redis", "hit"), 1);
    ck_assert_double_eq(reads(s.cache, "redis", "miss"), 1);
    ck_assert_double_eq(reads(s.cache, "redis", "negative_hit"), 1);
    ck_assert_double_eq(reads(s.cache, "fallback", "miss"), 0);
    ck_assert_double_eq(latency_count(s.cache, "near", "hit"), 1);
    ck_assert_double_eq(latency_count(s.cache, "redis", "miss"), 1);
    ck_assert_double_eq(
        sample(s.cache, "repocache_read_duration_seconds_bucket{entity=\"hero\",tier=\"near\","
                        "outcome=\"hit\",le=\"+Inf\"}"),
        1);
    ck_assert(sample(s.cache, "repocache_read_duration_seconds_sum{entity=\"hero\",tier=\"redis\","
                              "outcome=\"miss\"}") > 0);
    /* the struct says the same */
    rc_cached_repo_stats st;
    ck_assert_int_eq(rc_cached_repo_get_stats(s.repo, &st), RC_OK);
    ck_assert_uint_eq(st.hits, 3);
    ck_assert_uint_eq(st.misses, 1);
    ck_assert_uint_eq(st.negative_hits, 1);
    ck_assert_uint_eq(st.near_hits, 1);
    ck_assert_int_ge(st.keys, 2); /* the value and the negative entry */
    ck_assert(st.keys_exact);
    ck_assert_double_eq(sample(s.cache, "repocache_fills_total{entity=\"hero\"}"), 2);
    ck_assert_double_eq(sample(s.cache, "repocache_near_coherent"), 1);
    ck_assert_double_eq(sample(s.cache, "repocache_redis_available"), 1);
    ck_assert_double_eq(sample(s.cache, "repocache_circuit_state"), 0);
    close_side(&s);
}
END_TEST

START_TEST(test_fallback_tier)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    side s;
    const char *kv[] = {"REDIS_SOCKET_TIMEOUT", "0.3", NULL};
    open_side(&s, r.url, kv, false);
    save_hero(s.repo, "f1");
    th_redis_kill(&r);
    ck_assert_int_eq(find(s.repo, "f1"), RC_OK); /* miss: fallback filled */
    ck_assert_int_eq(find(s.repo, "f1"), RC_OK); /* fallback hit */
    ck_assert_double_eq(reads(s.cache, "fallback", "miss"), 1);
    ck_assert_double_eq(reads(s.cache, "fallback", "hit"), 1);
    ck_assert_double_eq(latency_count(s.cache, "fallback", "hit"), 1);
    ck_assert_double_eq(sample(s.cache, "repocache_redis_available"), 0);
    ck_assert(sample(s.cache, "repocache_redis_errors_total") >= 1);
    ck_assert(sample(s.cache, "repocache_errors_total{entity=\"hero\"}") >= 1);
    /* the text needs no Redis */
    ck_assert(text_has(s.cache, "# TYPE repocache_fallback_entries gauge\n"));
    close_side(&s);
}
END_TEST

START_TEST(test_writes_and_repositories_gone)
{
    side s;
    const char *kv[] = {"CACHE_L1_ENABLED", "false", NULL};
    open_side(&s, shared.url, kv, false);
    save_hero(s.repo, "w1");
    ck_assert_double_eq(sample(s.cache, "repocache_write_invalidation_duration_seconds_count"
                                        "{entity=\"hero\"}"),
                        1);
    ck_assert(sample(s.cache, "repocache_write_invalidation_duration_seconds_sum"
                              "{entity=\"hero\"}") > 0);
    ck_assert_int_eq(find(s.repo, "w1"), RC_OK);
    /* a second repository of the same entity: summed under one label set */
    rc_repo *other = hero_repo(&s);
    ck_assert_int_eq(find(other, "w1"), RC_OK);
    ck_assert_double_eq(reads(s.cache, "redis", "hit"), 2);
    rc_repo_free(other);
    rc_repo_free(s.repo);
    s.repo = NULL;
    /* gone, but counters never go back */
    ck_assert_double_eq(reads(s.cache, "redis", "hit"), 2);
    ck_assert_double_eq(sample(s.cache, "repocache_write_invalidation_duration_seconds_count"
                                        "{entity=\"hero\"}"),
                        1);
    s.repo = hero_repo(&s);
    ck_assert_int_eq(find(s.repo, "w1"), RC_OK);
    ck_assert_double_eq(reads(s.cache, "redis", "hit"), 3);
    rc_cached_repo_stats st; /* a repository's own struct counts its own */
    ck_assert_int_eq(rc_cached_repo_get_stats(s.repo, &st), RC_OK);
    ck_assert_uint_eq(st.hits, 1);
    close_side(&s);
}
END_TEST

START_TEST(test_metrics_disabled_keeps_counts)
{
    side s;
    const char *kv[] = {"CACHE_METRICS_ENABLED", "false", NULL};
    open_side(&s, shared.url, kv, true);
    save_hero(s.repo, "d1");
    ck_assert_int_eq(find(s.repo, "d1"), RC_OK);
    ck_assert_int_eq(find(s.repo, "d1"), RC_OK);
    ck_assert_double_eq(reads(s.cache, "near", "hit"), 1);
    ck_assert(!text_has(s.cache, "duration_seconds"));
    close_side(&s);
}
END_TEST

START_TEST(test_fleet_sums_services)
{
    side a, b;
    rc_fleet_stats f;
    const char *kv[] = {"CACHE_STATS_FLUSH_INTERVAL", "0", "CACHE_L1_ENABLED", "false",
                        "CACHE_KEY_PREFIX", "fleet-sum:", NULL};
    open_side(&a, shared.url, kv, false);
    open_side(&b, shared.url, kv, false);
    ck_assert_int_eq(rc_cache_fleet_stats(a.cache, "hero", &f), RC_OK);
    ck_assert(!f.present);
    ck_assert_double_eq(f.age_s, -1);
    save_hero(a.repo, "s1");
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(find(a.repo, "s1"), RC_OK);
    ck_assert_int_eq(find(b.repo, "s1"), RC_OK);
    ck_assert_int_eq(find(b.repo, MISSING), RC_ENOTFOUND);
    ck_assert_int_eq(rc_cache_metrics_flush(a.cache), RC_OK);
    ck_assert_int_eq(rc_cache_metrics_flush(b.cache), RC_OK);
    ck_assert_int_eq(rc_cache_metrics_flush(b.cache), RC_OK); /* nothing new */
    ck_assert_int_eq(rc_cache_fleet_stats(b.cache, "hero", &f), RC_OK);
    ck_assert(f.present);
    ck_assert_uint_eq(f.hits, 4);
    ck_assert_uint_eq(f.misses, 1);
    ck_assert_uint_eq(f.reads[1][0], 4); /* redis, hit */
    ck_assert_uint_eq(f.fills, 2);       /* a's write, b's negative entry */
    ck_assert(f.age_s >= 0 && f.age_s < 5);
    close_side(&a);
    close_side(&b); /* with interval 0, nothing is sent at free */
    ck_assert_int_eq(th_redis_flushall(&shared, NULL), 0);
    open_side(&a, shared.url, kv, false);
    ck_assert_int_eq(rc_cache_fleet_stats(a.cache, "hero", &f), RC_OK);
    ck_assert(!f.present);
    close_side(&a);
}
END_TEST

START_TEST(test_fleet_sent_by_a_miss_never_a_hit)
{
    side a;
    rc_fleet_stats f;
    const char *kv[] = {"CACHE_STATS_FLUSH_INTERVAL", "1", "CACHE_L1_ENABLED", "false",
                        "CACHE_KEY_PREFIX", "fleet-due:", NULL};
    open_side(&a, shared.url, kv, false);
    save_hero(a.repo, "p1");
    usleep(1100 * 1000);
    for (int i = 0; i < 3; i++) /* Redis hits: never a send */
        ck_assert_int_eq(find(a.repo, "p1"), RC_OK);
    ck_assert_int_eq(rc_cache_fleet_stats(a.cache, "hero", &f), RC_OK);
    ck_assert(!f.present);
    ck_assert_int_eq(find(a.repo, MISSING), RC_ENOTFOUND); /* a miss, due: sent */
    ck_assert_int_eq(rc_cache_fleet_stats(a.cache, "hero", &f), RC_OK);
    ck_assert(f.present);
    ck_assert_uint_eq(f.hits, 3);
    ck_assert_uint_eq(f.misses, 1);
    ck_assert_int_eq(find(a.repo, "p1"), RC_OK);
    close_side(&a); /* what is left goes at free */
    side b;
    open_side(&b, shared.url, kv, false);
    ck_assert_int_eq(rc_cache_fleet_stats(b.cache, "hero", &f), RC_OK);
    ck_assert_uint_eq(f.hits, 4);
    close_side(&b);
}
END_TEST

/* 4 threads read one hero through one repository: every read counted and
 * timed, none lost (relaxed atomics, striped histograms). */
static void *hit_many(void *ud)
{
    for (int i = 0; i < 5000; i++)
        ck_assert_int_eq(find(ud, "t1"), RC_OK);
    return NULL;
}

START_TEST(test_threads_lose_no_count)
{
    side s;
    pthread_t th[4];
    open_side(&s, shared.url, NULL, true);
    save_hero(s.repo, "t1");
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, hit_many, s.repo), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    double all = 0;
    for (int t = 0; t < 3; t++)
        for (int o = 0; o < 3; o++) {
            const char *tiers[] = {"near", "redis", "fallback"};
            const char *outs[] = {"hit", "negative_hit", "miss"};
            double n = reads(s.cache, tiers[t], outs[o]);
            ck_assert_double_eq(latency_count(s.cache, tiers[t], outs[o]), n);
            all += n;
        }
    ck_assert_double_eq(all, 20000);
    ck_assert(reads(s.cache, "near", "hit") > 0);
    close_side(&s);
}
END_TEST

static char logged[8192];

static void collect(void *ud, int level, const char *event, const char *message)
{
    (void)ud;
    size_t n = strlen(logged);
    snprintf(logged + n, sizeof logged - n, "%s %s %s\n", rc_log_level_name(level), event,
             message);
}

START_TEST(test_decode_errors_logged_once_per_period)
{
    side s;
    const char *kv[] = {"LOG_LEVEL", "warning", "CACHE_L1_ENABLED", "false", NULL};
    open_side(&s, shared.url, kv, false);
    save_hero(s.repo, "g1");
    logged[0] = '\0';
    rc_log_set_handler(collect, NULL);
    redisContext *raw = th_redis_connect(&shared, NULL);
    for (int i = 0; i < 3; i++) {
        freeReplyObject(redisCommand(raw, "SET hero:g1 not-json"));
        ck_assert_int_eq(find(s.repo, "g1"), RC_OK); /* dropped, read through */
    }
    redisFree(raw);
    rc_log_set_handler(NULL, NULL);
    ck_assert_double_eq(sample(s.cache, "repocache_decode_errors_total{entity=\"hero\"}"), 3);
    ck_assert_msg(strstr(logged, "warning decode_error hero: 1 cached value(s) did not decode"),
                  "%s", logged);
    ck_assert_msg(strstr(logged, "under hero:g1"), "%s", logged);
    const char *p = strstr(logged, "decode_error");
    ck_assert_msg(!strstr(p + 1, "decode_error"), "logged twice: %s", logged);
    close_side(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    const th_case cases[] = {
        {"reads_by_tier_and_outcome", test_reads_by_tier_and_outcome},
        {"fallback_tier", test_fallback_tier},
        {"writes_and_repositories_gone", test_writes_and_repositories_gone},
        {"metrics_disabled_keeps_counts", test_metrics_disabled_keeps_counts},
        {"fleet_sums_services", test_fleet_sums_services},
        {"fleet_sent_by_a_miss_never_a_hit", test_fleet_sent_by_a_miss_never_a_hit},
        {"decode_errors_logged_once_per_period", test_decode_errors_logged_once_per_period},
        {"threads_lose_no_count", test_threads_lose_no_count},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], setup, teardown, 0);
    return th_run_suite(s);
}
