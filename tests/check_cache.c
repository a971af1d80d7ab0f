/* check_cache.c - every operation of the cache service against a real
 * redis-server: values (binary, odd keys), clear by pattern, get-or-load,
 * batches, queue, health, stats, raw pipelines, scripts, remembered deletes,
 * and running without Redis. */
#include "chaos.h"
#include "harness.h"
#include "service.h"

#include "cache/service.h"
#include "cache/pending.h"
#include "repocache/cache.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static th_redis srv;
static rc_cache *cache;
static char prefix[64];

/* A cache on srv with the given prefix and fast failure settings. */
static rc_cache *make_cache(const char *url, const char *pfx, bool enabled)
{
    const char *kv[] = {"CACHE_KEY_PREFIX", pfx, "REDIS_SOCKET_TIMEOUT", "0.5",
                        "CIRCUIT_BREAKER_TIMEOUT", "0.2", "REDIS_ENABLED",
                        enabled ? "1" : "0", NULL};
    return th_cache_new(url, kv);
}

static void setup(void)
{
    ck_assert_int_eq(th_redis_shared(&srv), 0);
    snprintf(prefix, sizeof prefix, "t%d:", (int)getpid());
    cache = make_cache(srv.url, prefix, true);
}

static void teardown(void)
{
    long long n;
    rc_cache_clear(cache, "*", &n);
    rc_cache_free(cache);
    cache = NULL;
    th_redis_stop(&srv);
}

/* prefix + k, freed by the caller. */
static char *key(const char *k)
{
    char *out;
    ck_assert_int_eq(rc_cache_key(cache, k, &out), RC_OK);
    return out;
}

START_TEST(test_set_get_del)
{
    char *k = key("a"), *v;
    size_t len;
    bool ex;
    ck_assert_int_eq(rc_cache_get(cache, k, &v, &len), RC_ENOTFOUND);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(rc_cache_set(cache, k, "hello", 5, 60), RC_OK);
    ck_assert_int_eq(rc_cache_get(cache, k, &v, &len), RC_OK);
    ck_assert_uint_eq(len, 5);
    ck_assert_str_eq(v, "hello");
    free(v);
    ck_assert_int_eq(rc_cache_exists(cache, k, &ex), RC_OK);
    ck_assert(ex);
    ck_assert_int_eq(rc_cache_del(cache, k), RC_OK);
    ck_assert_int_eq(rc_cache_exists(cache, k, &ex), RC_OK);
    ck_assert(!ex);
    ck_assert_int_eq(rc_cache_del(cache, k), RC_OK); /* absent is fine */
    free(k);
}
END_TEST

START_TEST(test_ttl)
{
    char *k = key("ttl");
    long long t;
    ck_assert_int_eq(rc_cache_set(cache, k, "x", 1, 0), RC_EINVAL);
    ck_assert_int_eq(rc_cache_set(cache, k, "x", 1, -5), RC_EINVAL);
    ck_assert_int_eq(rc_cache_ttl(cache, k, &t), RC_OK);
    ck_assert_int_eq(t, -2);
    ck_assert_int_eq(rc_cache_set(cache, k, "x", 1, 100), RC_OK);
    ck_assert_int_eq(rc_cache_ttl(cache, k, &t), RC_OK);
    ck_assert(t > 95 && t <= 100);
    ck_assert_int_eq(rc_cache_set(cache, k, "x", 1, 1), RC_OK);
    ck_assert_int_eq(rc_cache_ttl(cache, k, &t), RC_OK);
    ck_assert(t >= 0 && t <= 1);
    bool ex = true;
    th_await(rc_cache_exists(cache, k, &ex) == RC_OK && !ex, TH_WAIT_SECONDS);
    free(k);
}
END_TEST

START_TEST(test_binary_values)
{
    char *k = key("bin"), *v;
    const char val[] = {'a', 0, 'b', '\r', '\n', 0, (char)0xff, 'z'};
    size_t len;
    ck_assert_int_eq(rc_cache_set(cache, k, val, sizeof val, 60), RC_OK);
    ck_assert_int_eq(rc_cache_get(cache, k, &v, &len), RC_OK);
    ck_assert_uint_eq(len, sizeof val);
    ck_assert_int_eq(memcmp(v, val, sizeof val), 0);
    ck_assert_int_eq(v[len], '\0');
    free(v);
    ck_assert_int_eq(rc_cache_set(cache, k, "", 0, 60), RC_OK); /* empty value */
    ck_assert_int_eq(rc_cache_get(cache, k, &v, &len), RC_OK);
    ck_assert_uint_eq(len, 0);
    free(v);
    free(k);
}
END_TEST

static const char *const odd_keys[] = {
    "with space", "crlf\r\nSET x y\r\n", "pct%s%d%n", "star*", "q?", "[ab]", "back\\slash",
    "*", "all*?[]\\", "ünï",
};
#define NODD (sizeof odd_keys / sizeof odd_keys[0])

START_TEST(test_odd_keys_round_trip)
{
    for (size_t i = 0; i < NODD; i++) {
        char *k = key(odd_keys[i]), *v;
        size_t len;
        ck_assert_int_eq(rc_cache_set(cache, k, odd_keys[i], strlen(odd_keys[i]), 60), RC_OK);
        ck_assert_int_eq(rc_cache_get(cache, k, &v, &len), RC_OK);
        ck_assert_str_eq(v, odd_keys[i]);
        free(v);
        free(k);
    }
    /* Exactly those keys, with exactly those names, are in Redis. */
    redisContext *rc = th_redis_connect(&srv, NULL);
    ck_assert_ptr_nonnull(rc);
    for (size_t i = 0; i < NODD; i++) {
        char *k = key(odd_keys[i]);
        redisReply *r = redisCommand(rc, "EXISTS %b", k, strlen(k));
        ck_assert_int_eq(r->integer, 1);
        freeReplyObject(r);
        free(k);
    }
    redisFree(rc);
    /* Each clears only itself when escaped, "*" and "all*?[]\\" included. */
    for (size_t i = 0; i < NODD; i++) {
        char *lit;
        long long n = -1;
        ck_assert_int_eq(rc_cache_glob_escape(odd_keys[i], &lit), RC_OK);
        ck_assert_int_eq(rc_cache_clear(cache, lit, &n), RC_OK);
        ck_assert_msg(n == 1, "clearing '%s' removed %lld keys", odd_keys[i], n);
        free(lit);
    }
}
END_TEST

START_TEST(test_clear_is_literal)
{
    /* A prefix full of glob characters; a key outside the prefix that an
     * unescaped prefix would match; keys inside with glob characters. */
    rc_cache *g = make_cache(srv.url, "p*[x]?\\:", true);
    const char *outside = "pZZxQ\\:victim"; /* matches p*[x]?\: unescaped */
    ck_assert_int_eq(rc_cache_set(g, outside, "v", 1, 60), RC_OK);
    char *k1, *k2, *k3;
    ck_assert_int_eq(rc_cache_key(g, "a*", &k1), RC_OK);
    ck_assert_int_eq(rc_cache_key(g, "ab", &k2), RC_OK);
    ck_assert_int_eq(rc_cache_key(g, "b", &k3), RC_OK);
    ck_assert_int_eq(rc_cache_set(g, k1, "1", 1, 60), RC_OK);
    ck_assert_int_eq(rc_cache_set(g, k2, "2", 1, 60), RC_OK);
    ck_assert_int_eq(rc_cache_set(g, k3, "3", 1, 60), RC_OK);
    /* An escaped user value matches only itself. */
    char *lit;
    long long n = -1;
    ck_assert_int_eq(rc_cache_glob_escape("a*", &lit), RC_OK);
    ck_assert_str_eq(lit, "a\\*");
    ck_assert_int_eq(rc_cache_clear(g, lit, &n), RC_OK);
    ck_assert_int_eq(n, 1);
    bool ex;
    ck_assert_int_eq(rc_cache_exists(g, k1, &ex), RC_OK);
    ck_assert(!ex);
    ck_assert_int_eq(rc_cache_exists(g, k2, &ex), RC_OK);
    ck_assert(ex);
    /* A real pattern within the prefix. */
    ck_assert_int_eq(rc_cache_clear(g, "*", &n), RC_OK);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(rc_cache_exists(g, outside, &ex), RC_OK);
    ck_assert(ex);
    ck_assert_int_eq(rc_cache_del(g, outside), RC_OK);
    free(lit);
    free(k1);
    free(k2);
    free(k3);
    rc_cache_free(g);
}
END_TEST

START_TEST(test_clear_many_batches)
{
    enum { N = 2500 };
    const char *keys[N], *vals[N];
    size_t lens[N];
    static char buf[N][96];
    for (int i = 0; i < N; i++) {
        snprintf(buf[i], sizeof buf[i], "%sbulk:%d", prefix, i);
        keys[i] = buf[i];
        vals[i] = "v";
        lens[i] = 1;
    }
    ck_assert_int_eq(rc_cache_mset(cache, keys, vals, lens, N, 60), RC_OK);
    long long n;
    ck_assert_int_eq(rc_cache_clear(cache, "bulk:*", &n), RC_OK);
    ck_assert_int_eq(n, N);
    ck_assert_int_eq(rc_cache_clear(cache, "bulk:*", &n), RC_OK);
    ck_assert_int_eq(n, 0);
}
END_TEST

START_TEST(test_glob_escape)
{
    char *e;
    ck_assert_int_eq(rc_cache_glob_escape("a*b?c[d]e\\f", &e), RC_OK);
    ck_assert_str_eq(e, "a\\*b\\?c\\[d\\]e\\\\f");
    free(e);
    ck_assert_int_eq(rc_cache_glob_escape("", &e), RC_OK);
    ck_assert_str_eq(e, "");
    free(e);
}
END_TEST

static int load_calls;
static int loader_ok(void *ud, char **val, size_t *len)
{
    load_calls++;
    *val = strdup((const char *)ud);
    *len = strlen(*val);
    return RC_OK;
}
static int loader_fail(void *ud, char **val, size_t *len)
{
    (void)ud, (void)val, (void)len;
    load_calls++;
    return RC_EBACKEND;
}

START_TEST(test_get_or_load)
{
    char *k = key("gol"), *v;
    size_t len;
    load_calls = 0;
    ck_assert_int_eq(rc_cache_get_or_load(cache, k, 60, loader_fail, NULL, &v, &len),
                     RC_EBACKEND);
    ck_assert_int_eq(load_calls, 1);
    bool ex;
    ck_assert_int_eq(rc_cache_exists(cache, k, &ex), RC_OK);
    ck_assert(!ex);
    ck_assert_int_eq(rc_cache_get_or_load(cache, k, 60, loader_ok, "loaded", &v, &len), RC_OK);
    ck_assert_str_eq(v, "loaded");
    free(v);
    ck_assert_int_eq(rc_cache_get_or_load(cache, k, 60, loader_ok, "other", &v, &len), RC_OK);
    ck_assert_str_eq(v, "loaded");
    ck_assert_int_eq(load_calls, 2);
    free(v);
    ck_assert_int_eq(rc_cache_get_or_load(cache, k, 0, loader_ok, "x", &v, &len), RC_EINVAL);
    free(k);
}
END_TEST

START_TEST(test_mget_mset_del_many)
{
    char *k[3] = {key("m0"), key("m1"), key("m2")};
    const char *keys[3] = {k[0], k[1], k[2]};
    const char *vals[2] = {"zero", "o\0ne"};
    size_t lens[3] = {4, 4};
    ck_assert_int_eq(rc_cache_mset(cache, keys, vals, lens, 2, 60), RC_OK);
    ck_assert_int_eq(rc_cache_mset(cache, keys, vals, lens, 2, 0), RC_EINVAL);
    char *out[3];
    ck_assert_int_eq(rc_cache_mget(cache, keys, 3, out, lens), RC_OK);
    ck_assert_str_eq(out[0], "zero");
    ck_assert_uint_eq(lens[1], 4);
    ck_assert_int_eq(memcmp(out[1], "o\0ne", 4), 0);
    ck_assert_ptr_null(out[2]);
    free(out[0]);
    free(out[1]);
    long long removed;
    ck_assert_int_eq(rc_cache_del_many(cache, keys, 3, &removed), RC_OK);
    ck_assert_int_eq(removed, 2);
    for (int i = 0; i < 3; i++)
        free(k[i]);
}
END_TEST

START_TEST(test_queue_fifo)
{
    char *q = key("queue"), *v;
    size_t len;
    long long n;
    ck_assert_int_eq(rc_queue_pop(cache, q, &v, &len), RC_ENOTFOUND);
    ck_assert_int_eq(rc_queue_push(cache, q, "first", 5), RC_OK);
    ck_assert_int_eq(rc_queue_push(cache, q, "se\0cond", 7), RC_OK);
    ck_assert_int_eq(rc_queue_push(cache, q, "third", 5), RC_OK);
    ck_assert_int_eq(rc_queue_length(cache, q, &n), RC_OK);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(rc_queue_pop(cache, q, &v, &len), RC_OK);
    ck_assert_str_eq(v, "first");
    free(v);
    ck_assert_int_eq(rc_queue_pop(cache, q, &v, &len), RC_OK);
    ck_assert_uint_eq(len, 7);
    ck_assert_int_eq(memcmp(v, "se\0cond", 7), 0);
    free(v);
    ck_assert_int_eq(rc_queue_clear(cache, q), RC_OK);
    ck_assert_int_eq(rc_queue_length(cache, q, &n), RC_OK);
    ck_assert_int_eq(n, 0);
    free(q);
}
END_TEST

START_TEST(test_health_and_stats)
{
    ck_assert_int_eq(rc_cache_health_check(cache), RC_OK);
    char *k = key("s"), *v;
    size_t len;
    ck_assert_int_eq(rc_cache_set(cache, k, "1", 1, 60), RC_OK);
    ck_assert_int_eq(rc_cache_get(cache, k, &v, &len), RC_OK);
    free(v);
    ck_assert_int_eq(rc_cache_get(cache, k, &v, &len), RC_OK);
    free(v);
    ck_assert_int_eq(rc_cache_get(cache, "nope-not-here", &v, &len), RC_ENOTFOUND);
    ck_assert_int_eq(rc_cache_del(cache, k), RC_OK);
    rc_cache_stats st;
    ck_assert_int_eq(rc_cache_get_stats(cache, &st), RC_OK);
    ck_assert_uint_eq(st.hits, 2);
    ck_assert_uint_eq(st.misses, 1);
    ck_assert(st.hit_rate > 0.66 && st.hit_rate < 0.67);
    ck_assert_uint_eq(st.sets, 1);
    ck_assert_uint_eq(st.deletes, 1);
    ck_assert_uint_eq(st.errors, 0);
    ck_assert_int_eq(st.circuit, RC_CIRCUIT_CLOSED);
    ck_assert(st.redis_enabled && st.redis_available);
    ck_assert(st.keys >= 0);
    ck_assert(strlen(st.used_memory_human) > 1);
    char *json;
    ck_assert_int_eq(rc_cache_stats_json(cache, &json), RC_OK);
    ck_assert_ptr_nonnull(strstr(json, "\"hits\":2"));
    ck_assert_ptr_nonnull(strstr(json, "\"circuit\":\"closed\""));
    ck_assert_ptr_nonnull(strstr(json, "\"used_memory_human\":\""));
    ck_assert_ptr_nonnull(strstr(json, "\"redis_available\":true"));
    free(json);
    free(k);
}
END_TEST

/* What rc_cache_stats_json handed back. */
static char *stats_text;

static int call_stats_json(void *ud)
{
    (void)ud;
    stats_text = (char *)"untouched";
    return rc_cache_stats_json(cache, &stats_text);
}

/* The whole object on RC_OK, nothing otherwise; the text is the caller's
 * to free() whatever allocator jansson has (memory of the chaos allocator
 * handed to free() makes libc abort). */
static void check_stats_json(void *ud, int rc)
{
    (void)ud;
    if (rc == RC_OK) {
        json_t *j = json_loads(stats_text, 0, NULL);
        ck_assert_ptr_nonnull(j);
        ck_assert_uint_eq(json_object_size(j), 16) /* with "near" */;
        ck_assert_ptr_nonnull(json_object_get(j, "oversized_skipped"));
        ck_assert_str_eq(json_string_value(json_object_get(j, "circuit")),
                         "closed");
        json_decref(j);
    } else {
        ck_assert_ptr_null(stats_text);
    }
    free(stats_text);
}

/* The stats JSON with every jansson allocation failing in turn. */
START_TEST(test_stats_json_out_of_memory)
{
    ck_assert_int_gt(th_chaos_each("rc_cache_stats_json", call_stats_json,
                                   check_stats_json, NULL),
                     10);
}
END_TEST

START_TEST(test_exec_pipeline)
{
    char *k = key("pipe");
    const char *a1[] = {"SET", k, "5"}, *a2[] = {"INCR", k}, *a3[] = {"HGET", k, "f"};
    rc_cmd cmds[3] = {{3, a1, NULL}, {2, a2, NULL}, {3, a3, NULL}};
    redisReply *r[3];
    ck_assert_int_eq(rc_cache_exec(cache, cmds, 3, r), RC_OK);
    ck_assert_int_eq(r[1]->type, REDIS_REPLY_INTEGER);
    ck_assert_int_eq(r[1]->integer, 6);
    ck_assert_int_eq(r[2]->type, REDIS_REPLY_ERROR); /* WRONGTYPE is a reply */
    for (int i = 0; i < 3; i++)
        freeReplyObject(r[i]);
    ck_assert_int_eq(rc_cache_del(cache, k), RC_OK);
    free(k);
}
END_TEST

START_TEST(test_eval)
{
    static const char script[] = "return {KEYS[1], ARGV[1], #ARGV[1]}";
    char *k = key("ev");
    const char *keys[] = {k}, *args[] = {"a\0b"};
    const size_t lens[] = {3};
    redisReply *r;
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(rc_cache_eval(cache, script, 1, keys, 1, args, lens, &r), RC_OK);
        ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
        ck_assert_str_eq(r->element[0]->str, k);
        ck_assert_uint_eq(r->element[1]->len, 3);
        ck_assert_int_eq(r->element[2]->integer, 3);
        freeReplyObject(r);
        /* The second round runs after SCRIPT FLUSH: NOSCRIPT -> EVAL. */
        const char *fl[] = {"SCRIPT", "FLUSH"};
        rc_cmd cmd = {2, fl, NULL};
        ck_assert_int_eq(rc_cache_exec(cache, &cmd, 1, &r), RC_OK);
        freeReplyObject(r);
    }
    /* The SHA1 we send is the one Redis computes: with the script loaded,
     * our call is one EVALSHA and no EVAL. */
    const char *ld[] = {"SCRIPT", "LOAD", script}, *reset[] = {"CONFIG", "RESETSTAT"};
    rc_cmd cmds[2] = {{3, ld, NULL}, {2, reset, NULL}};
    redisReply *rr[2];
    ck_assert_int_eq(rc_cache_exec(cache, cmds, 2, rr), RC_OK);
    freeReplyObject(rr[0]);
    freeReplyObject(rr[1]);
    ck_assert_int_eq(rc_cache_eval(cache, script, 1, keys, 1, args, lens, &r), RC_OK);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    const char *info[] = {"INFO", "commandstats"};
    rc_cmd cmd = {2, info, NULL};
    ck_assert_int_eq(rc_cache_exec(cache, &cmd, 1, &r), RC_OK);
    ck_assert_ptr_nonnull(strstr(r->str, "cmdstat_evalsha:calls=1,"));
    ck_assert_ptr_null(strstr(r->str, "cmdstat_eval:"));
    freeReplyObject(r);
    free(k);
}
END_TEST

START_TEST(test_remembered_deletes_replayed_first)
{
    char *k1 = key("r1"), *k2 = key("r2"), *v;
    size_t len;
    ck_assert_int_eq(rc_cache_set(cache, k1, "1", 1, 60), RC_OK);
    ck_assert_int_eq(rc_cache_set(cache, k2, "2", 1, 60), RC_OK);
    const char *keys[] = {k1};
    ck_assert_int_eq(rc_cache_remember_deletes(cache, keys, 1, NULL), RC_OK);
    rc_cache_stats st;
    /* The very next command sees k1 gone (replayed before it). */
    ck_assert_int_eq(rc_cache_get(cache, k1, &v, &len), RC_ENOTFOUND);
    ck_assert_int_eq(rc_cache_get(cache, k2, &v, &len), RC_OK);
    free(v);
    ck_assert_int_eq(rc_cache_get_stats(cache, &st), RC_OK);
    ck_assert_uint_eq(st.pending_deletes, 0);
    /* A pattern drop alone (relative to the prefix). */
    ck_assert_int_eq(rc_cache_remember_deletes(cache, NULL, 0, "r*"), RC_OK);
    ck_assert_int_eq(rc_cache_get(cache, k2, &v, &len), RC_ENOTFOUND);
    ck_assert_int_eq(rc_cache_get_stats(cache, &st), RC_OK);
    ck_assert_uint_eq(st.pending_deletes, 0);
    free(k1);
    free(k2);
}
END_TEST

START_TEST(test_remembered_deletes_overflow)
{
    enum { N = 10050 };
    char *k = key("keep");
    ck_assert_int_eq(rc_cache_set(cache, k, "1", 1, 60), RC_OK);
    /* Past the bound the keys are replaced by the drop pattern. */
    char **names = malloc(N * sizeof *names);
    for (int i = 0; i < N; i++) {
        names[i] = malloc(96);
        snprintf(names[i], 96, "%sgone%d", prefix, i);
    }
    ck_assert_int_eq(rc_cache_remember_deletes(cache, (const char *const *)names, N, "kee*"),
                     RC_OK);
    rc_cache_stats st;
    memset(&st, 0, sizeof st);
    bool ex = true;
    ck_assert_int_eq(rc_cache_exists(cache, k, &ex), RC_OK);
    ck_assert(!ex);
    ck_assert_int_eq(rc_cache_get_stats(cache, &st), RC_OK);
    ck_assert_uint_eq(st.pending_deletes, 0);
    for (int i = 0; i < N; i++)
        free(names[i]);
    free(names);
    free(k);
}
END_TEST

START_TEST(test_pending_set)
{
    rc_pending p, q;
    rc_pending_init(&p);
    rc_pending_init(&q);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(rc_pending_add_key(&p, "same"), RC_OK);
    ck_assert_uint_eq(p.keys.n, 1);
    char k[32];
    for (int i = 0; i < 30000; i++) {
        snprintf(k, sizeof k, "key%d", i % 20000);
        ck_assert_int_eq(rc_pending_add_key(&p, k), RC_OK);
    }
    ck_assert_uint_eq(p.keys.n, 20001);
    ck_assert_int_eq(rc_pending_add_glob(&p, "a*"), RC_OK);
    ck_assert_int_eq(rc_pending_add_glob(&p, "a*"), RC_OK);
    ck_assert_uint_eq(rc_pending_count(&p), 20002);
    rc_pending_move(&q, &p);
    ck_assert_uint_eq(rc_pending_count(&p), 0);
    ck_assert_int_eq(rc_pending_add_key(&p, "key5"), RC_OK);
    ck_assert_int_eq(rc_pending_add_key(&p, "new"), RC_OK);
    ck_assert_int_eq(rc_pending_merge(&p, &q), RC_OK);
    ck_assert_uint_eq(rc_pending_count(&q), 0);
    ck_assert_uint_eq(p.keys.n, 20002);
    ck_assert_uint_eq(p.globs.n, 1);
    rc_pending_forget_keys(&p);
    ck_assert_uint_eq(rc_pending_count(&p), 1);
    rc_pending_clear(&p);
    rc_pending_clear(&p);
}
END_TEST

START_TEST(test_remembered_once_per_key)
{
    /* A key deleted many times during an outage is remembered once. */
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    rc_cache *c = make_cache(r.url, "", true);
    ck_assert_int_eq(rc_cache_set(c, "hot", "v", 1, 60), RC_OK);
    th_redis_kill(&r);
    for (int i = 0; i < 20000; i++)
        rc_cache_del(c, "hot");
    rc_cache_stats st;
    ck_assert_int_eq(rc_cache_get_stats(c, &st), RC_OK);
    ck_assert_uint_eq(st.pending_deletes, 1);
    ck_assert_int_eq(th_redis_restart(&r), 0);
    redisContext *raw = th_redis_connect(&r, NULL);
    redisReply *rep = redisCommand(raw, "SET hot stale");
    freeReplyObject(rep);
    th_await(rc_cache_health_check(c) == RC_OK, TH_WAIT_SECONDS);
    rep = redisCommand(raw, "EXISTS hot");
    ck_assert_int_eq(rep->integer, 0);
    freeReplyObject(rep);
    redisFree(raw);
    rc_cache_free(c);
    th_redis_stop(&r);
}
END_TEST

START_TEST(test_disabled_uses_fallback_only)
{
    rc_cache *d = make_cache("redis://127.0.0.1:1/0", "d:", false);
    char *v;
    size_t len;
    ck_assert_int_eq(rc_cache_set(d, "d:k", "v", 1, 60), RC_OK);
    ck_assert_int_eq(rc_cache_get(d, "d:k", &v, &len), RC_OK);
    ck_assert_str_eq(v, "v");
    free(v);
    ck_assert_int_eq(rc_cache_del(d, "d:k"), RC_OK);
    ck_assert_int_eq(rc_cache_get(d, "d:k", &v, &len), RC_ENOTFOUND);
    ck_assert_int_eq(rc_queue_push(d, "q", "x", 1), RC_EUNAVAILABLE);
    ck_assert_int_eq(rc_cache_health_check(d), RC_EUNAVAILABLE);
    ck_assert(!rc_cache_redis_usable(d));
    ck_assert_uint_eq(rc_cache_debug_connects(d), 0);
    rc_cache_stats st;
    ck_assert_int_eq(rc_cache_get_stats(d, &st), RC_OK);
    ck_assert(!st.redis_enabled && !st.redis_available);
    ck_assert_int_eq(st.keys, -1);
    ck_assert_uint_eq(st.fallback_hits, 1);
    rc_cache_free(d);
}
END_TEST

START_TEST(test_key_and_prefix)
{
    char *k;
    ck_assert_str_eq(rc_cache_prefix(cache), prefix);
    ck_assert_int_eq(rc_cache_key(cache, "hero:1", &k), RC_OK);
    ck_assert_int_eq(strncmp(k, prefix, strlen(prefix)), 0);
    ck_assert_str_eq(k + strlen(prefix), "hero:1");
    free(k);
    rc_cache_free(NULL);
}
END_TEST

START_TEST(test_unix_socket_and_db)
{
    th_redis u;
    char *sock = th_tmpfile("redis.sock"), extra[400], url[400];
    snprintf(extra, sizeof extra, "--unixsocket %s --unixsocketperm 700", sock);
    ck_assert_int_eq(th_redis_start(&u, extra), 0);
    snprintf(url, sizeof url, "unix://%s?db=3", sock);
    rc_cache *c = make_cache(url, "", true);
    ck_assert_int_eq(rc_cache_set(c, "via-unix", "1", 1, 60), RC_OK);
    /* It landed in database 3 (checked over TCP). */
    redisContext *rc = th_redis_connect(&u, NULL);
    redisReply *r = redisCommand(rc, "EXISTS via-unix");
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);
    r = redisCommand(rc, "SELECT 3");
    freeReplyObject(r);
    r = redisCommand(rc, "EXISTS via-unix");
    ck_assert_int_eq(r->integer, 1);
    freeReplyObject(r);
    redisFree(rc);
    rc_cache_free(c);
    th_redis_stop(&u);
    free(sock);
}
END_TEST

static Suite *cache_suite(void)
{
    Suite *s = suite_create("cache");
    const th_case cases[] = {
        {"set_get_del", test_set_get_del},
        {"ttl", test_ttl},
        {"binary_values", test_binary_values},
        {"odd_keys", test_odd_keys_round_trip},
        {"clear_literal", test_clear_is_literal},
        {"clear_batches", test_clear_many_batches},
        {"glob_escape", test_glob_escape},
        {"get_or_load", test_get_or_load},
        {"batches", test_mget_mset_del_many},
        {"queue", test_queue_fifo},
        {"health_stats", test_health_and_stats},
        {"stats_json_out_of_memory", test_stats_json_out_of_memory},
        {"exec", test_exec_pipeline},
        {"eval", test_eval},
        {"remembered_deletes", test_remembered_deletes_replayed_first},
        {"remembered_overflow", test_remembered_deletes_overflow},
        {"pending_set", test_pending_set},
        {"remembered_once", test_remembered_once_per_key},
        {"disabled", test_disabled_uses_fallback_only},
        {"key_prefix", test_key_and_prefix},
        {"unix_socket", test_unix_socket_and_db},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], setup, teardown, 0);
    return s;
}

int main(void)
{
    return th_run_suite(cache_suite());
}
