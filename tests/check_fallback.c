/* check_fallback.c - the in-memory LRU fallback: active only while Redis is
 * unavailable, bounded LRU eviction, TTLs on a controllable clock, literal
 * pattern deletes, thread safety, and through the service: used during an
 * outage, dropped entirely when Redis is back. */
#include "harness.h"

#include "cache/service.h"
#include "cache/fallback.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static double fake_now;
static double fake_clock(void *ud)
{
    (void)ud;
    return fake_now;
}

static rc_fallback *fb;

static void setup(void)
{
    fake_now = 1000.0;
    fb = rc_fallback_new(NULL, 3, fake_clock, NULL);
    ck_assert_ptr_nonnull(fb);
    rc_fallback_activate(fb);
}

static void teardown(void)
{
    rc_fallback_free(fb);
    fb = NULL;
}

static bool has(const char *key)
{
    char *v = NULL;
    int st = rc_fallback_get(fb, key, &v, NULL);
    free(v);
    return st == RC_OK;
}

START_TEST(test_inactive_serves_nothing)
{
    rc_fallback *f = rc_fallback_new(NULL, 10, fake_clock, NULL);
    char *v = NULL;
    ck_assert(!rc_fallback_active(f));
    ck_assert_int_eq(rc_fallback_set(f, "k", "v", 1, 10), RC_EUNAVAILABLE);
    ck_assert_int_eq(rc_fallback_get(f, "k", &v, NULL), RC_ENOTFOUND);
    rc_fallback_activate(f);
    ck_assert_int_eq(rc_fallback_set(f, "k", "v", 1, 10), RC_OK);
    ck_assert_int_eq(rc_fallback_get(f, "k", &v, NULL), RC_OK);
    free(v);
    ck_assert_uint_eq(rc_fallback_deactivate(f), 1);
    ck_assert_uint_eq(rc_fallback_count(f), 0);
    ck_assert_int_eq(rc_fallback_get(f, "k", &v, NULL), RC_ENOTFOUND);
    rc_fallback_activate(f);
    ck_assert_int_eq(rc_fallback_get(f, "k", &v, NULL), RC_ENOTFOUND); /* really gone */
    rc_fallback_free(f);
    rc_fallback_free(NULL);
}
END_TEST

START_TEST(test_binary_round_trip)
{
    const char val[] = {'x', 0, 'y', 0};
    char *v;
    size_t len;
    ck_assert_int_eq(rc_fallback_set(fb, "b", val, sizeof val, 10), RC_OK);
    ck_assert_int_eq(rc_fallback_get(fb, "b", &v, &len), RC_OK);
    ck_assert_uint_eq(len, sizeof val);
    ck_assert_int_eq(memcmp(v, val, len), 0);
    ck_assert_int_eq(v[len], 0);
    free(v);
    ck_assert_int_eq(rc_fallback_set(fb, "b", "x", 1, 0), RC_EINVAL);
}
END_TEST

/* The store evicts by SIEVE: a value read since the hand last passed is
 * spared, so the oldest unread one goes. */
START_TEST(test_eviction)
{
    ck_assert_int_eq(rc_fallback_set(fb, "a", "1", 1, 100), RC_OK);
    ck_assert_int_eq(rc_fallback_set(fb, "b", "2", 1, 100), RC_OK);
    ck_assert_int_eq(rc_fallback_set(fb, "c", "3", 1, 100), RC_OK);
    ck_assert(has("a")); /* a is read: b is now the oldest unread */
    ck_assert_int_eq(rc_fallback_set(fb, "d", "4", 1, 100), RC_OK);
    ck_assert_uint_eq(rc_fallback_count(fb), 3);
    ck_assert(!has("b"));
    ck_assert(has("a") && has("c") && has("d"));
    /* Overwriting does not grow it. */
    ck_assert_int_eq(rc_fallback_set(fb, "c", "33", 2, 100), RC_OK);
    ck_assert_uint_eq(rc_fallback_count(fb), 3);
    char *v;
    ck_assert_int_eq(rc_fallback_get(fb, "c", &v, NULL), RC_OK);
    ck_assert_str_eq(v, "33");
    free(v);
}
END_TEST

START_TEST(test_ttl_on_clock)
{
    long long ttl;
    ck_assert_int_eq(rc_fallback_set(fb, "t", "v", 1, 5), RC_OK);
    ck_assert_int_eq(rc_fallback_ttl(fb, "t", &ttl), RC_OK);
    ck_assert_int_eq(ttl, 5);
    fake_now += 4.5;
    ck_assert_int_eq(rc_fallback_ttl(fb, "t", &ttl), RC_OK);
    ck_assert_int_eq(ttl, 1);
    ck_assert(has("t"));
    fake_now += 0.5;
    ck_assert(!has("t"));
    ck_assert_uint_eq(rc_fallback_count(fb), 0); /* evicted on access */
    ck_assert_int_eq(rc_fallback_ttl(fb, "t", &ttl), RC_OK);
    ck_assert_int_eq(ttl, -2);
}
END_TEST

START_TEST(test_delete_and_literal_patterns)
{
    rc_fallback *f = rc_fallback_new(NULL, 100, fake_clock, NULL);
    rc_fallback_activate(f);
    const char *keys[] = {"p:a*", "p:ab", "p:b", "q:a"};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(rc_fallback_set(f, keys[i], "v", 1, 10), RC_OK);
    ck_assert_uint_eq(rc_fallback_del_matching(f, "p:a\\*"), 1);
    ck_assert_uint_eq(rc_fallback_count(f), 3);
    ck_assert_uint_eq(rc_fallback_del_matching(f, "p:*"), 2);
    ck_assert_uint_eq(rc_fallback_count(f), 1);
    rc_fallback_del(f, "q:a");
    rc_fallback_del(f, "q:a");
    ck_assert_uint_eq(rc_fallback_count(f), 0);
    rc_fallback_free(f);
}
END_TEST

START_TEST(test_large_bounded)
{
    enum { MAX = 20000, N = 50000 };
    rc_fallback *f = rc_fallback_new(NULL, MAX, fake_clock, NULL);
    rc_fallback_activate(f);
    char k[32];
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "k%d", i);
        ck_assert_int_eq(rc_fallback_set(f, k, k, strlen(k), 100), RC_OK);
    }
    /* The bound is split over the store's shards, each evicting its own
     * oldest: at most MAX held, the newest half of them surely, nothing much
     * older than the newest MAX. */
    size_t held = rc_fallback_count(f);
    ck_assert_uint_le(held, MAX);
    ck_assert_uint_ge(held, MAX * 9 / 10);
    for (int i = 0; i < N; i += 7) {
        char *v = NULL;
        snprintf(k, sizeof k, "k%d", i);
        int st = rc_fallback_get(f, k, &v, NULL);
        if (i >= N - MAX / 2)
            ck_assert_int_eq(st, RC_OK);
        if (i < N - MAX * 11 / 10)
            ck_assert_int_eq(st, RC_ENOTFOUND);
        if (v)
            ck_assert_str_eq(v, k);
        free(v);
    }
    rc_fallback_free(f);
}
END_TEST

static void *hammer(void *arg)
{
    rc_fallback *f = arg;
    char k[16];
    for (int i = 0; i < 20000; i++) {
        snprintf(k, sizeof k, "k%d", i % 97);
        char *v = NULL;
        switch (i % 4) {
        case 0:
        case 1:
            rc_fallback_set(f, k, k, strlen(k), 10);
            break;
        case 2:
            if (rc_fallback_get(f, k, &v, NULL) == RC_OK && strcmp(v, k) != 0)
                return (void *)1;
            free(v);
            break;
        default:
            rc_fallback_del(f, k);
        }
        if (i % 5000 == 0) {
            rc_fallback_deactivate(f);
            rc_fallback_activate(f);
        }
    }
    return NULL;
}

START_TEST(test_threads)
{
    rc_fallback *f = rc_fallback_new(NULL, 50, NULL, NULL);
    rc_fallback_activate(f);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, f);
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        ck_assert_ptr_null(bad);
    }
    ck_assert_uint_le(rc_fallback_count(f), 50);
    rc_fallback_free(f);
}
END_TEST

/* ---- through the service ---- */

static rc_cache *service(const th_redis *r, bool fallback)
{
    rc_settings s;
    rc_cache *c;
    ck_assert_int_eq(rc_settings_defaults(&s), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", r->url), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_SOCKET_TIMEOUT", "0.2"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "CIRCUIT_BREAKER_THRESHOLD", "2"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "CIRCUIT_BREAKER_TIMEOUT", "0.2"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "CACHE_FALLBACK_ENABLED", fallback ? "1" : "0"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "LOG_LEVEL", "error"), RC_OK);
    ck_assert_int_eq(rc_cache_new(&s, &c), RC_OK);
    rc_settings_clear(&s);
    return c;
}

START_TEST(test_service_outage_and_recovery)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    rc_cache *c = service(&r, true);
    char *v;
    size_t len;
    /* While Redis is up the fallback is not used. */
    ck_assert_int_eq(rc_cache_set(c, "k", "redis-v1", 8, 60), RC_OK);
    ck_assert_int_eq(rc_cache_set(c, "c:1", "v", 1, 60), RC_OK);
    ck_assert_int_eq(rc_cache_fallback_set(c, "x", "v", 1, 60), RC_EUNAVAILABLE);
    th_redis_kill(&r);
    long long cleared;
    ck_assert_int_eq(rc_cache_clear(c, "c:*", &cleared), RC_EUNAVAILABLE);
    /* Outage: writes land in the fallback, reads are served from it. */
    ck_assert_int_eq(rc_cache_set(c, "k", "fallback-v2", 11, 60), RC_OK);
    ck_assert_int_eq(rc_cache_get(c, "k", &v, &len), RC_OK);
    ck_assert_str_eq(v, "fallback-v2");
    free(v);
    ck_assert_int_eq(rc_cache_fallback_set(c, "direct", "d", 1, 60), RC_OK);
    ck_assert_int_eq(rc_cache_fallback_get(c, "direct", &v, &len), RC_OK);
    free(v);
    rc_cache_fallback_del(c, "direct");
    ck_assert_int_eq(rc_cache_fallback_get(c, "direct", &v, &len), RC_ENOTFOUND);
    bool ex;
    ck_assert_int_eq(rc_cache_exists(c, "k", &ex), RC_OK);
    ck_assert(ex);
    long long ttl;
    ck_assert_int_eq(rc_cache_ttl(c, "k", &ttl), RC_OK);
    ck_assert_int_eq(ttl, 1); /* capped by CACHE_FALLBACK_MAX_STALENESS_MS (1 s) */
    rc_cache_stats st;
    ck_assert_int_eq(rc_cache_get_stats(c, &st), RC_OK);
    ck_assert_uint_eq(st.fallback_entries, 1);
    ck_assert_uint_ge(st.fallback_hits, 1);
    ck_assert(!st.redis_available);
    /* rc_cache_del removes from the fallback too. */
    ck_assert_int_eq(rc_cache_set(c, "gone", "g", 1, 60), RC_OK);
    ck_assert_int_eq(rc_cache_del(c, "gone"), RC_EUNAVAILABLE);
    ck_assert_int_eq(rc_cache_fallback_get(c, "gone", &v, &len), RC_ENOTFOUND);
    /* Back: the fallback is dropped, and the stale Redis value of "k"
     * (written before the outage) was deleted by the replay. */
    ck_assert_int_eq(th_redis_restart(&r), 0);
    redisContext *raw = th_redis_connect(&r, NULL);
    redisReply *rep = redisCommand(raw, "SET k stale-v1");
    freeReplyObject(rep);
    rep = redisCommand(raw, "SET c:1 stale");
    freeReplyObject(rep);
    redisFree(raw);
    th_await(rc_cache_redis_usable(c), TH_WAIT_SECONDS); /* breaker open period */
    ck_assert_int_eq(rc_cache_health_check(c), RC_OK);
    ck_assert_int_eq(rc_cache_get(c, "k", &v, &len), RC_ENOTFOUND);
    ck_assert_int_eq(rc_cache_get(c, "c:1", &v, &len), RC_ENOTFOUND); /* clear replayed */
    ck_assert_int_eq(rc_cache_get_stats(c, &st), RC_OK);
    ck_assert_uint_eq(st.fallback_entries, 0);
    ck_assert(st.redis_available);
    ck_assert_int_eq(rc_cache_fallback_get(c, "k", &v, &len), RC_ENOTFOUND);
    rc_cache_free(c);
    th_redis_stop(&r);
}
END_TEST

/* One in-process store: during an outage the fallback's entries are the
 * near cache store's, under its bound, and the near cache's coherence
 * losses (one per failed call) leave them. */
START_TEST(test_service_one_store)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    rc_settings s;
    rc_cache *c;
    ck_assert_int_eq(rc_settings_defaults(&s), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", r.url), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_SOCKET_TIMEOUT", "0.2"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "CIRCUIT_BREAKER_THRESHOLD", "1000"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "CACHE_L1_MAX_ENTRIES", "64"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "CACHE_FALLBACK_MAX_ENTRIES", "100000"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "CACHE_FALLBACK_MAX_STALENESS_MS", "60000"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "LOG_LEVEL", "error"), RC_OK);
    ck_assert_int_eq(rc_cache_new(&s, &c), RC_OK);
    rc_settings_clear(&s);
    th_redis_kill(&r);
    char k[16], *v;
    size_t len;
    for (int i = 0; i < 200; i++) { /* each set fails in Redis first */
        snprintf(k, sizeof k, "k%d", i);
        ck_assert_int_eq(rc_cache_set(c, k, k, strlen(k), 60), RC_OK);
    }
    rc_cache_stats st;
    ck_assert_int_eq(rc_cache_get_stats(c, &st), RC_OK);
    ck_assert_uint_le(st.fallback_entries, 64); /* CACHE_L1_MAX_ENTRIES, not 100000 */
    ck_assert_uint_ge(st.fallback_entries, 32);
    ck_assert_uint_eq(st.near_entries, st.fallback_entries); /* the same store */
    ck_assert_int_eq(rc_cache_get(c, "k199", &v, &len), RC_OK); /* the newest is kept */
    ck_assert_str_eq(v, "k199");
    free(v);
    rc_cache_free(c);
}
END_TEST

START_TEST(test_service_fallback_disabled)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    rc_cache *c = service(&r, false);
    th_redis_kill(&r);
    char *v;
    size_t len;
    bool ex;
    ck_assert_int_eq(rc_cache_set(c, "k", "v", 1, 60), RC_EUNAVAILABLE);
    ck_assert_int_eq(rc_cache_get(c, "k", &v, &len), RC_ENOTFOUND);
    ck_assert_int_eq(rc_cache_exists(c, "k", &ex), RC_EUNAVAILABLE);
    ck_assert_int_eq(rc_cache_fallback_set(c, "k", "v", 1, 60), RC_EUNAVAILABLE);
    ck_assert_int_eq(rc_cache_fallback_get(c, "k", &v, &len), RC_ENOTFOUND);
    rc_cache_free(c);
}
END_TEST

static Suite *fallback_suite(void)
{
    Suite *s = suite_create("fallback");
    const th_case cases[] = {
        {"inactive", test_inactive_serves_nothing},
        {"binary", test_binary_round_trip},
        {"eviction", test_eviction},
        {"service_one_store", test_service_one_store},
        {"ttl", test_ttl_on_clock},
        {"patterns", test_delete_and_literal_patterns},
        {"large", test_large_bounded},
        {"threads", test_threads},
        {"service_outage", test_service_outage_and_recovery},
        {"service_disabled", test_service_fallback_disabled},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], setup, teardown, 0);
    return s;
}

int main(void)
{
    return th_run_suite(fallback_suite());
}
