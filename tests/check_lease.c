/* check_lease.c - the lease protocol of the cache service (cache/lease.h)
 * against a real redis-server: lookups (value in place, negative entry,
 * foreign type, lease taken or not), fills only under our token, release,
 * the write's delete pipeline (leases before data keys, the writer's lease
 * last, one round trip; remembered when Redis is down), the pattern drop,
 * and the per-service fence of the fallback. */
#include "harness.h"
#include "service.h"

#include "cache/lease.h"
#include "cache/service.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static th_redis srv;
static rc_cache *cache;
static redisContext *raw;
static char prefix[64];

/* A service on url with prefix pfx; fallback on; Redis on when enabled. */
static rc_cache *make_cache(const char *url, const char *pfx, bool enabled)
{
    const char *kv[] = {"CACHE_KEY_PREFIX",
                        pfx,
                        "REDIS_SOCKET_TIMEOUT",
                        "0.3",
                        "CIRCUIT_BREAKER_THRESHOLD",
                        "1",
                        "CIRCUIT_BREAKER_TIMEOUT",
                        "0.2",
                        "CACHE_FALLBACK_ENABLED",
                        "1",
                        "REDIS_ENABLED",
                        enabled ? "1" : "0",
                        NULL};
    return th_cache_new(url, kv);
}

static void setup(void)
{
    ck_assert_int_eq(th_redis_shared(&srv), 0);
    snprintf(prefix, sizeof prefix, "lt%d:", (int)getpid());
    cache = make_cache(srv.url, prefix, true);
    raw = th_redis_connect(&srv, NULL);
    ck_assert_ptr_nonnull(raw);
}

static void teardown(void)
{
    long long n;
    rc_cache_clear(cache, "*", &n);
    rc_cache_free(cache);
    cache = NULL;
    redisFree(raw);
    th_redis_stop(&srv);
}

/* The full key of k. */
static const char *K(const char *k)
{
    return th_key(prefix, k);
}

/* The raw reply of a command on a direct connection (caller frees). */
static redisReply *rcmd(const char *fmt, const char *key)
{
    redisReply *r = redisCommand(raw, fmt, key);
    ck_assert_ptr_nonnull(r);
    return r;
}

/* GET key on the direct connection, malloc'd; NULL when absent. */
static char *rget(const char *key)
{
    redisReply *r = rcmd("GET %s", key);
    char *v = r->type == REDIS_REPLY_STRING ? strndup(r->str, r->len) : NULL;
    freeReplyObject(r);
    return v;
}

static long long rinteger(const char *fmt, const char *key)
{
    redisReply *r = rcmd(fmt, key);
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

START_TEST(test_lookup_miss_takes_lease)
{
    rc_lease_hit hit;
    bool leased = true;
    const char *key = K("hero:1"), *lease = K("hero:~lease:1");
    ck_assert_int_eq(
        rc_lease_lookup(cache, key, lease, NULL, "tok-a", 5000, &hit, &leased),
        RC_LEASE_MISS);
    ck_assert(leased);
    ck_assert_ptr_null(hit.val);
    char *v = rget(lease);
    ck_assert_str_eq(v, "tok-a");
    free(v);
    long long pttl = rinteger("PTTL %s", lease);
    ck_assert(pttl > 4000 && pttl <= 5000);
    /* another reader: told a fill is in progress, without the lease, which
     * stays ours */
    ck_assert_int_eq(
        rc_lease_lookup(cache, key, lease, NULL, "tok-b", 5000, &hit, &leased),
        RC_LEASE_FILLING);
    ck_assert(!leased);
    v = rget(lease);
    ck_assert_str_eq(v, "tok-a");
    free(v);
    /* token "": no lease is taken */
    const char *k2 = K("hero:2"), *l2 = K("hero:~lease:2");
    ck_assert_int_eq(
        rc_lease_lookup(cache, k2, l2, NULL, "", 5000, &hit, &leased),
        RC_LEASE_MISS);
    ck_assert(!leased);
    ck_assert_int_eq(rinteger("EXISTS %s", l2), 0);
}
END_TEST

START_TEST(test_lookup_hit_negative_foreign)
{
    rc_lease_hit hit;
    bool leased = true;
    const char *key = K("hero:1"), *lease = K("hero:~lease:1"),
               *neg = K("hero:~none:1");
    /* a binary value, handed back in place */
    ck_assert_int_eq(rc_cache_set(cache, key, "a\0b", 3, 60), RC_OK);
    ck_assert_int_eq(
        rc_lease_lookup(cache, key, lease, neg, "t", 5000, &hit, &leased),
        RC_LEASE_HIT);
    ck_assert(!leased);
    ck_assert_uint_eq(hit.len, 3);
    ck_assert_int_eq(memcmp(hit.val, "a\0b", 4), 0); /* NUL past len too */
    rc_lease_hit_free(&hit);
    ck_assert_ptr_null(hit.val);
    rc_lease_hit_free(&hit); /* an empty hit is fine */
    ck_assert_int_eq(rinteger("EXISTS %s", lease), 0);
    /* the negative entry, when the value is absent */
    ck_assert_int_eq(rc_cache_del(cache, key), RC_OK);
    ck_assert_int_eq(rc_cache_set(cache, neg, "1", 1, 60), RC_OK);
    ck_assert_int_eq(
        rc_lease_lookup(cache, key, lease, neg, "t", 5000, &hit, &leased),
        RC_LEASE_NEGATIVE);
    ck_assert_int_eq(rinteger("EXISTS %s", lease), 0);
    /* without neg the negative entry is not looked at */
    ck_assert_int_eq(
        rc_lease_lookup(cache, key, lease, NULL, "t", 5000, &hit, &leased),
        RC_LEASE_MISS);
    ck_assert(leased);
    /* something that is not a string */
    freeReplyObject(rcmd("RPUSH %s x", key));
    ck_assert_int_eq(
        rc_lease_lookup(cache, key, lease, neg, "t", 5000, &hit, &leased),
        RC_LEASE_FOREIGN);
    ck_assert(!leased);
}
END_TEST

START_TEST(test_fill_only_under_our_token)
{
    rc_lease_hit hit;
    bool leased;
    const char *key = K("hero:1"), *lease = K("hero:~lease:1");
    ck_assert_int_eq(
        rc_lease_lookup(cache, key, lease, NULL, "mine", 5000, &hit, &leased),
        RC_LEASE_MISS);
    ck_assert(leased);
    /* someone else's token: rejected, nothing stored, the lease stays */
    ck_assert_int_eq(rc_lease_fill(cache, key, lease, "other", "v0", 2, 60),
                     RC_LEASE_REJECTED);
    ck_assert_int_eq(rinteger("EXISTS %s", key), 0);
    ck_assert_int_eq(rinteger("EXISTS %s", lease), 1);
    /* ours: stored with the TTL, the lease deleted */
    ck_assert_int_eq(rc_lease_fill(cache, key, lease, "mine", "v\0 1", 4, 60),
                     RC_LEASE_STORED);
    redisReply *r = rcmd("GET %s", key);
    ck_assert_uint_eq(r->len, 4);
    ck_assert_int_eq(memcmp(r->str, "v\0 1", 4), 0);
    freeReplyObject(r);
    long long ttl = rinteger("TTL %s", key);
    ck_assert(ttl > 55 && ttl <= 60);
    ck_assert_int_eq(rinteger("EXISTS %s", lease), 0);
    /* the lease is gone (deleted by a write, say): a second fill is refused */
    ck_assert_int_eq(rc_lease_fill(cache, key, lease, "mine", "v2", 2, 60),
                     RC_LEASE_REJECTED);
    char *v = rget(key);
    ck_assert_str_eq(v, "v");
    free(v);
}
END_TEST

START_TEST(test_release_only_ours)
{
    const char *lease = K("hero:~lease:1");
    freeReplyObject(rcmd("SET %s theirs PX 5000", lease));
    ck_assert(rc_lease_release(cache, lease, "mine"));
    ck_assert_int_eq(rinteger("EXISTS %s", lease), 1);
    ck_assert(rc_lease_release(cache, lease, "theirs"));
    ck_assert_int_eq(rinteger("EXISTS %s", lease), 0);
}
END_TEST

/* A new connection in MONITOR mode (reads time out after 2 s). */
static redisContext *monitor_open(void)
{
    redisContext *mon = th_redis_connect(&srv, NULL);
    ck_assert_ptr_nonnull(mon);
    struct timeval tv = {2, 0};
    redisSetTimeout(mon, tv);
    redisReply *r = redisCommand(mon, "MONITOR");
    ck_assert_ptr_nonnull(r);
    freeReplyObject(r);
    return mon;
}

/* Reads MONITOR lines from mon until one contains until (or 2 s pass);
 * returns them joined by '\n' (caller frees), keeping only lines that
 * contain keep. */
static char *monitor_lines(redisContext *mon, const char *keep,
                           const char *until)
{
    size_t cap = 1 << 16, len = 0;
    char *out = calloc(1, cap);
    double end = th_now() + 2.0;
    while (th_now() < end) {
        void *rep = NULL;
        if (redisGetReply(mon, &rep) != REDIS_OK)
            break;
        redisReply *r = rep;
        bool last = r->type == REDIS_REPLY_STATUS && strstr(r->str, until);
        if (r->type == REDIS_REPLY_STATUS && strstr(r->str, keep) &&
            strstr(r->str, "lua") == NULL)
            len += (size_t)snprintf(out + len, cap - len, "%s\n",
                                    strchr(r->str, '"'));
        freeReplyObject(r);
        if (last)
            break;
    }
    return out;
}

START_TEST(test_delete_pipeline_order)
{
    const char *d1 = K("hero:1"), *d2 = K("hero:name:Ann"),
               *n1 = K("hero:~none:1");
    char l1[128], l2[128], wl[128];
    snprintf(l1, sizeof l1, "%shero:~lease:1", prefix);
    snprintf(l2, sizeof l2, "%shero:~lease:name:Ann", prefix);
    snprintf(wl, sizeof wl, "%s", l1);
    const char *leases[] = {l1, l2}, *keys[] = {d1, d2, n1};
    ck_assert_int_eq(rc_cache_set(cache, d1, "x", 1, 60), RC_OK);
    ck_assert_int_eq(rc_cache_set(cache, d2, "y", 1, 60), RC_OK);
    freeReplyObject(rcmd("SET %s old PX 5000", l2));
    redisContext *mon = monitor_open();
    rc_lease_deletes d = {.leases = leases,
                          .nleases = 2,
                          .keys = keys,
                          .nkeys = 3,
                          .writer_lease = wl,
                          .writer_token = "wtok",
                          .lease_ms = 4000,
                          .drop_glob = "hero:*"};
    long long removed = -1;
    ck_assert_int_eq(rc_lease_delete(cache, &d, &removed), RC_OK);
    ck_assert_int_eq(removed, 2); /* the data keys that existed */
    freeReplyObject(redisCommand(raw, "ECHO %s-end", prefix));
    char *seen = monitor_lines(mon, prefix, "-end");
    char expect[1024];
    snprintf(expect, sizeof expect,
             "\"DEL\" \"%s\" \"%s\"\n"
             "\"DEL\" \"%s\" \"%s\" \"%s\"\n"
             "\"SET\" \"%s\" \"wtok\" \"PX\" \"4000\"\n"
             "\"ECHO\" \"%s-end\"\n",
             l1, l2, d1, d2, n1, wl, prefix);
    ck_assert_str_eq(seen, expect);
    free(seen);
    redisFree(mon);
    ck_assert_int_eq(rinteger("EXISTS %s", d1) + rinteger("EXISTS %s", d2), 0);
    char *v = rget(wl);
    ck_assert_str_eq(v, "wtok");
    free(v);
    long long pttl = rinteger("PTTL %s", wl);
    ck_assert(pttl > 3000 && pttl <= 4000);
    /* without leases nor a writer lease: one DEL */
    rc_lease_deletes one = {
        .keys = keys, .nkeys = 1, .lease_ms = 1000, .drop_glob = "hero:*"};
    ck_assert_int_eq(rc_lease_delete(cache, &one, &removed), RC_OK);
    ck_assert_int_eq(removed, 0);
    rc_lease_deletes none = {.keys = keys, .nkeys = 0};
    ck_assert_int_eq(rc_lease_delete(cache, &none, &removed), RC_EINVAL);
}
END_TEST

/* While Redis is down the deletes are remembered (leases and keys) and
 * replayed before the next command once it is back. */
START_TEST(test_delete_remembered_while_down)
{
    th_redis p;
    ck_assert_int_eq(th_redis_start(&p, NULL), 0);
    rc_cache *c = make_cache(p.url, "", true);
    redisContext *pr = th_redis_connect(&p, NULL);
    freeReplyObject(redisCommand(pr, "SET d stale"));
    freeReplyObject(redisCommand(pr, "SET l old"));
    redisFree(pr);
    ck_assert_int_eq(rc_cache_health_check(c), RC_OK);
    th_redis_pause(&p);
    const char *leases[] = {"l"}, *keys[] = {"d"};
    rc_lease_deletes d = {.leases = leases,
                          .nleases = 1,
                          .keys = keys,
                          .nkeys = 1,
                          .lease_ms = 1000,
                          .drop_glob = "*"};
    long long removed = -1;
    ck_assert_int_eq(rc_lease_delete(c, &d, &removed), RC_EUNAVAILABLE);
    ck_assert_int_eq(removed, 0);
    rc_cache_stats st;
    ck_assert_int_eq(rc_cache_get_stats(c, &st), RC_OK);
    ck_assert_uint_eq(st.pending_deletes, 2);
    /* Redis down: the lookup says so without trying (the breaker is open) */
    rc_lease_hit hit;
    bool leased;
    ck_assert_int_eq(
        rc_lease_lookup(c, "d", "l", NULL, "t", 1000, &hit, &leased),
        RC_LEASE_DOWN);
    ck_assert_int_eq(rc_lease_fill(c, "d", "l", "t", "v", 1, 60),
                     RC_LEASE_NOT_SENT);
    ck_assert(!rc_lease_release(c, "l", "t"));
    th_redis_resume(&p);
    usleep(300000); /* past the breaker's open period */
    ck_assert_int_eq(
        rc_lease_lookup(c, "d", "l", NULL, "", 1000, &hit, &leased),
        RC_LEASE_MISS);
    pr = th_redis_connect(&p, NULL);
    redisReply *r = redisCommand(pr, "EXISTS d l");
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);
    redisFree(pr);
    ck_assert_int_eq(rc_cache_get_stats(c, &st), RC_OK);
    ck_assert_uint_eq(st.pending_deletes, 0);
    rc_cache_free(c);
    th_redis_stop(&p);
}
END_TEST

START_TEST(test_lookup_failed_when_unreachable)
{
    th_redis p;
    ck_assert_int_eq(th_redis_start(&p, NULL), 0);
    rc_cache *c = make_cache(p.url, "", true);
    th_redis_kill(&p);
    rc_lease_hit hit;
    bool leased = true;
    /* the first call tries and fails; then the open breaker refuses */
    ck_assert_int_eq(
        rc_lease_lookup(c, "k", "l", NULL, "t", 1000, &hit, &leased),
        RC_LEASE_FAILED);
    ck_assert(!leased);
    ck_assert_int_eq(
        rc_lease_lookup(c, "k", "l", NULL, "t", 1000, &hit, &leased),
        RC_LEASE_DOWN);
    long long removed = -1;
    ck_assert_int_eq(rc_lease_drop(c, "~lease:*", "*", &removed),
                     RC_EUNAVAILABLE);
    ck_assert_int_eq(removed, 0);
    rc_cache_stats st;
    ck_assert_int_eq(rc_cache_get_stats(c, &st), RC_OK);
    ck_assert_uint_eq(st.pending_deletes, 2); /* both patterns */
    rc_cache_free(c);
    /* disabled: never tried */
    c = make_cache(p.url, "", false);
    ck_assert_int_eq(
        rc_lease_lookup(c, "k", "l", NULL, "t", 1000, &hit, &leased),
        RC_LEASE_DOWN);
    rc_cache_free(c);
    th_redis_stop(&p);
}
END_TEST

START_TEST(test_drop_leases_then_data)
{
    const char *names[] = {"hero:1", "hero:name:Ann", "hero:~lease:1",
                           "hero:~lease:name:Ann", "child:1"};
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_eq(rc_cache_set(cache, K(names[i]), "v", 1, 60), RC_OK);
    redisContext *mon = monitor_open();
    long long removed = -1;
    ck_assert_int_eq(rc_lease_drop(cache, "hero:~lease:*", "hero:*", &removed),
                     RC_OK);
    ck_assert_int_eq(removed, 2); /* data keys only */
    freeReplyObject(redisCommand(raw, "ECHO %s-end", prefix));
    char *seen = monitor_lines(mon, "UNLINK", "-end");
    redisFree(mon);
    /* every lease UNLINKed before any data key */
    const char *last_lease = NULL, *first_data = strstr(seen, "hero:1\"");
    for (const char *p = seen; (p = strstr(p, "~lease:")) != NULL; p++)
        last_lease = p;
    const char *ann = strstr(seen, "hero:name:Ann\"");
    if (ann && (!first_data || ann < first_data))
        first_data = ann;
    ck_assert_msg(last_lease && first_data && last_lease < first_data, "%s",
                  seen);
    ck_assert_ptr_null(strstr(seen, "child:1"));
    free(seen);
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(rinteger("EXISTS %s", K(names[i])), 0);
    ck_assert_int_eq(rinteger("EXISTS %s", K("child:1")), 1);
}
END_TEST

/* The fence of the fallback: a fill noted before a write's invalidation is
 * refused; the epoch is per service. */
START_TEST(test_fallback_fence_per_service)
{
    rc_cache *a = make_cache(srv.url, "", false),
             *b = make_cache(srv.url, "", false);
    char *v = NULL;
    size_t len = 0;
    uint64_t ea = rc_cache_fence_epoch(a), eb = rc_cache_fence_epoch(b);
    ck_assert_int_eq(rc_cache_fallback_fill_fenced(a, "k", "v1", 2, 60, ea),
                     RC_OK);
    ck_assert_int_eq(rc_cache_fallback_get(a, "k", &v, &len), RC_OK);
    ck_assert_str_eq(v, "v1");
    free(v);
    const char *keys[] = {"k"};
    rc_cache_fallback_invalidate(a, keys, 1);
    ck_assert_int_eq(rc_cache_fallback_get(a, "k", &v, &len), RC_ENOTFOUND);
    ck_assert_ptr_null(v);
    ck_assert_uint_ne(rc_cache_fence_epoch(a), ea);
    /* a fill that noted the epoch before the write is refused */
    ck_assert_int_eq(rc_cache_fallback_fill_fenced(a, "k", "stale", 5, 60, ea),
                     RC_ECONFLICT);
    ck_assert_int_eq(rc_cache_fallback_get(a, "k", &v, &len), RC_ENOTFOUND);
    /* a write through a does not move b's epoch */
    ck_assert_uint_eq(rc_cache_fence_epoch(b), eb);
    ck_assert_int_eq(rc_cache_fallback_fill_fenced(b, "k", "b1", 2, 60, eb),
                     RC_OK);
    /* n == 0 only bumps */
    rc_cache_fallback_invalidate(b, NULL, 0);
    ck_assert_uint_ne(rc_cache_fence_epoch(b), eb);
    ck_assert_int_eq(rc_cache_fallback_get(b, "k", &v, &len), RC_OK);
    free(v);
    rc_cache_fallback_del(b, "k");
    ck_assert_int_eq(rc_cache_fallback_get(b, "k", &v, &len), RC_ENOTFOUND);
    /* while Redis is in use the fallback stores nothing */
    ck_assert_int_eq(rc_cache_fallback_fill_fenced(cache, "k", "v", 1, 60,
                                                   rc_cache_fence_epoch(cache)),
                     RC_EUNAVAILABLE);
    ck_assert_int_eq(rc_cache_fallback_fill_fenced(a, "k", "v", 1, 0, ea),
                     RC_EINVAL);
    rc_cache_free(a);
    rc_cache_free(b);
}
END_TEST

/* The hit path on the wire: a plain GET and one EVALSHA, pipelined. */
START_TEST(test_hit_is_get_and_evalsha)
{
    rc_lease_hit hit;
    bool leased;
    const char *key = K("hero:1"), *lease = K("hero:~lease:1");
    ck_assert_int_eq(rc_cache_set(cache, key, "v", 1, 60), RC_OK);
    /* first lookup loads the script (EVAL on NOSCRIPT at most once) */
    ck_assert_int_eq(
        rc_lease_lookup(cache, key, lease, NULL, "t", 1000, &hit, &leased),
        RC_LEASE_HIT);
    rc_lease_hit_free(&hit);
    redisContext *mon = monitor_open();
    ck_assert_int_eq(
        rc_lease_lookup(cache, key, lease, NULL, "t", 1000, &hit, &leased),
        RC_LEASE_HIT);
    ck_assert_str_eq(hit.val, "v");
    rc_lease_hit_free(&hit);
    freeReplyObject(redisCommand(raw, "ECHO %s-end", prefix));
    char *seen = monitor_lines(mon, "", "-end");
    redisFree(mon);
    char *second = strchr(seen, '\n');
    ck_assert_ptr_nonnull(second);
    *second++ = '\0';
    char *third = strchr(second, '\n');
    ck_assert_ptr_nonnull(third);
    *third++ = '\0';
    ck_assert_msg(strncmp(seen, "\"GET\" ", 6) == 0, "%s", seen);
    ck_assert_msg(strncmp(second, "\"EVALSHA\" ", 10) == 0, "%s", second);
    ck_assert_ptr_nonnull(strstr(second, "\"2\" \""));
    ck_assert_msg(strncmp(third, "\"ECHO\"", 6) == 0, "%s", third);
    free(seen);
}
END_TEST

static Suite *lease_suite(void)
{
    Suite *s = suite_create("lease");
    const th_case cases[] = {
        {"lookup_miss_takes_lease", test_lookup_miss_takes_lease},
        {"lookup_hit_negative_foreign", test_lookup_hit_negative_foreign},
        {"fill_only_under_our_token", test_fill_only_under_our_token},
        {"release_only_ours", test_release_only_ours},
        {"delete_pipeline_order", test_delete_pipeline_order},
        {"delete_remembered_while_down", test_delete_remembered_while_down},
        {"lookup_failed_when_unreachable", test_lookup_failed_when_unreachable},
        {"drop_leases_then_data", test_drop_leases_then_data},
        {"fallback_fence_per_service", test_fallback_fence_per_service},
        {"hit_is_get_and_evalsha", test_hit_is_get_and_evalsha},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], setup, teardown, 0);
    return s;
}

int main(void)
{
    return th_run_suite(lease_suite());
}
