/* check_pool.c - the connection pool: never more than REDIS_MAX_CONNECTIONS
 * contexts, a context used by one thread at a time (a debug assertion aborts
 * otherwise), broken contexts replaced and never reused, and two threads
 * running thousands of mixed operations while the server is killed and
 * restarted once (no crash, no shared context, no leak under ASan). */
#include "harness.h"

#include "cache/service.h"
#include "cache/pool.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static rc_cache *service(const char *url, int max_conns)
{
    rc_settings s;
    rc_cache *c;
    char n[16];
    snprintf(n, sizeof n, "%d", max_conns);
    ck_assert_int_eq(rc_settings_defaults(&s), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", url), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_MAX_CONNECTIONS", n), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_SOCKET_TIMEOUT", "0.2"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "CIRCUIT_BREAKER_THRESHOLD", "5"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "CIRCUIT_BREAKER_TIMEOUT", "0.1"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "LOG_LEVEL", "error"), RC_OK);
    ck_assert_int_eq(rc_cache_new(&s, &c), RC_OK);
    rc_settings_clear(&s);
    return c;
}

/* Clients connected to r, as the server counts them. */
static long long server_clients(const th_redis *r)
{
    redisContext *rc = th_redis_connect(r, NULL);
    ck_assert_ptr_nonnull(rc);
    redisReply *rep = redisCommand(rc, "INFO clients");
    const char *p = strstr(rep->str, "connected_clients:");
    long long n = p ? atoll(p + 18) : -1;
    freeReplyObject(rep);
    redisFree(rc);
    return n - 1; /* not this one */
}

START_TEST(test_assertion_catches_sharing)
{
    rc_conn conn;
    memset(&conn, 0, sizeof conn);
    rc_conn_enter(&conn);
    rc_conn_leave(&conn);
    rc_conn_enter(&conn);
    rc_conn_enter(&conn); /* a second user at once: abort() */
}
END_TEST

/* 0 before the kill, 1 while the server is down, 2 after the restart,
 * 3 once the service is seen using Redis again. */
static atomic_int phase;

typedef struct worker {
    rc_cache *c;
    int id, n;
    atomic_int *stop;
    int ok, unavailable, misses, bad; /* outcomes */
    atomic_int ok_in[4], unavailable_in[4]; /* by phase (the test polls them) */
    double longest;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    char key[32], val[32], *v;
    size_t len;
    for (int i = 0; i < w->n && !(w->stop && atomic_load(w->stop)); i++) {
        snprintf(key, sizeof key, "w%d:k%d", w->id, i % 64);
        snprintf(val, sizeof val, "v%d", i % 64);
        double t0 = th_now();
        int st;
        switch (i % 8) {
        case 0:
        case 1:
            st = rc_cache_set(w->c, key, val, strlen(val), 60);
            break;
        case 2:
        case 3:
            st = rc_cache_get(w->c, key, &v, &len);
            if (st == RC_OK && strcmp(v, val) != 0 && strncmp(v, "v", 1) != 0)
                w->bad++;
            if (st == RC_OK)
                free(v);
            break;
        case 4:
            st = rc_cache_del(w->c, key);
            break;
        case 5: {
            const char *keys[3] = {key, "w:x", "w:y"};
            char *vals[3];
            size_t lens[3];
            st = rc_cache_mget(w->c, keys, 3, vals, lens);
            for (int k = 0; st == RC_OK && k < 3; k++)
                free(vals[k]);
            break;
        }
        case 6: {
            redisReply *r;
            const char *ks[1] = {key};
            st = rc_cache_eval(w->c, "return redis.call('EXISTS', KEYS[1])", 1, ks, 0, NULL,
                               NULL, &r);
            freeReplyObject(r);
            break;
        }
        default: {
            long long n;
            st = rc_queue_length(w->c, "w:queue", &n);
        }
        }
        double d = th_now() - t0;
        w->longest = d > w->longest ? d : w->longest;
        int ph = atomic_load(&phase);
        if (st == RC_OK)
            w->ok++, atomic_fetch_add(&w->ok_in[ph], 1);
        else if (st == RC_EUNAVAILABLE)
            w->unavailable++, atomic_fetch_add(&w->unavailable_in[ph], 1);
        else if (st == RC_ENOTFOUND)
            w->misses++;
        else
            w->bad++;
    }
    return NULL;
}

START_TEST(test_two_threads_kill_restart)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    rc_cache *c = service(r.url, 2);
    worker w[2];
    pthread_t t[2];
    atomic_int stop = 0;
    atomic_store(&phase, 0);
    for (int i = 0; i < 2; i++) {
        w[i] = (worker){.c = c, .id = i, .n = 1 << 30, .stop = &stop};
        pthread_create(&t[i], NULL, work, &w[i]);
    }
    /* Each phase lasts until both threads have done what is asserted of it
     * below (bounded): a loaded machine runs fewer operations per second. */
    th_await(atomic_load(&w[0].ok_in[0]) > 1000 && atomic_load(&w[1].ok_in[0]) > 1000,
             TH_WAIT_SECONDS);
    ck_assert_int_le(server_clients(&r), 2);
    th_redis_kill(&r);
    atomic_store(&phase, 1);
    th_await(atomic_load(&w[0].unavailable_in[1]) > 0 &&
                 atomic_load(&w[1].unavailable_in[1]) > 0,
             TH_WAIT_SECONDS);
    ck_assert_int_eq(th_redis_restart(&r), 0);
    atomic_store(&phase, 2);
    th_await(rc_cache_circuit(c) == RC_CIRCUIT_CLOSED && rc_cache_redis_usable(c),
             TH_WAIT_SECONDS);
    atomic_store(&phase, 3);
    th_await(atomic_load(&w[0].ok_in[3]) > 1000 && atomic_load(&w[1].ok_in[3]) > 1000,
             TH_WAIT_SECONDS);
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    int total = 0, unavailable = 0;
    double longest = 0;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(w[i].bad, 0);
        /* Each thread reached Redis before the kill and after the restart,
         * and got "unavailable" (not a crash) in between. */
        ck_assert_int_gt(w[i].ok_in[0], 1000);
        ck_assert_int_gt(w[i].unavailable_in[1], 0);
        ck_assert_int_gt(w[i].ok_in[3], 1000);
        total += w[i].ok + w[i].unavailable + w[i].misses;
        unavailable += w[i].unavailable;
        longest = w[i].longest > longest ? w[i].longest : longest;
    }
    /* After the restart both threads' work reached Redis again. */
    ck_assert_int_eq(rc_cache_health_check(c), RC_OK);
    ck_assert_int_eq(rc_cache_set(c, "final", "1", 1, 60), RC_OK);
    ck_assert_int_le(server_clients(&r), 2);
    rc_cache_stats st;
    ck_assert_int_eq(rc_cache_get_stats(c, &st), RC_OK);
    ck_assert(st.redis_available);
    ck_assert_uint_eq(st.fallback_entries, 0);
    ck_assert_uint_eq(st.pending_deletes, 0);
    for (int i = 0; i < 2; i++)
        fprintf(stderr, "faults: pool: thread %d: ok/unavailable by phase (up, down, "
                        "restarted, recovered): %d/%d %d/%d %d/%d %d/%d\n", i,
                w[i].ok_in[0], w[i].unavailable_in[0], w[i].ok_in[1], w[i].unavailable_in[1],
                w[i].ok_in[2], w[i].unavailable_in[2], w[i].ok_in[3], w[i].unavailable_in[3]);
    fprintf(stderr,
            "faults: pool: 2 threads, %d mixed ops across a kill and a restart; "
            "%d unavailable answers; longest call %.1f ms; %llu connects\n",
            total, unavailable, longest * 1e3,
            (unsigned long long)rc_cache_debug_connects(c));
    rc_cache_free(c);
    th_redis_stop(&r);
}
END_TEST

START_TEST(test_bounded_by_max)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    rc_cache *c = service(r.url, 1);
    worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.c = c, .id = i, .n = 1500};
        pthread_create(&t[i], NULL, work, &w[i]);
    }
    th_await(rc_cache_debug_connects(c) > 0, TH_WAIT_SECONDS); /* working */
    ck_assert_int_le(server_clients(&r), 1);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(w[i].bad, 0);
        ck_assert_int_eq(w[i].unavailable, 0);
    }
    ck_assert_uint_eq(rc_cache_debug_connects(c), 1); /* one context, reused */
    rc_cache_free(c);
    th_redis_stop(&r);
}
END_TEST

START_TEST(test_broken_context_replaced)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    rc_cache *c = service(r.url, 4);
    ck_assert_int_eq(rc_cache_set(c, "k", "v", 1, 60), RC_OK);
    ck_assert_uint_eq(rc_cache_debug_connects(c), 1);
    /* The server drops our connection: the next call fails once on it, the
     * context is freed, and the one after connects anew. */
    redisContext *raw = th_redis_connect(&r, NULL);
    redisReply *rep = redisCommand(raw, "CLIENT KILL SKIPME yes TYPE normal");
    ck_assert_int_eq(rep->integer, 1);
    freeReplyObject(rep);
    redisFree(raw);
    char *v;
    size_t len;
    ck_assert_int_eq(rc_cache_get(c, "k", &v, &len), RC_ENOTFOUND); /* failed once */
    ck_assert_uint_eq(rc_cache_debug_connects(c), 1);
    ck_assert_int_eq(rc_cache_get(c, "k", &v, &len), RC_OK);
    free(v);
    ck_assert_uint_eq(rc_cache_debug_connects(c), 2);
    ck_assert_int_eq(rc_cache_get(c, "k", &v, &len), RC_OK); /* reused while sound */
    free(v);
    ck_assert_uint_eq(rc_cache_debug_connects(c), 2);
    rc_cache_free(c);
    th_redis_stop(&r);
}
END_TEST

static Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("assertion");
    tcase_add_test_raise_signal(tc, test_assertion_catches_sharing, SIGABRT);
    suite_add_tcase(s, tc);
    const th_case cases[] = {
        {"two_threads_kill_restart", test_two_threads_kill_restart},
        {"bounded_by_max", test_bounded_by_max},
        {"broken_replaced", test_broken_context_replaced},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], NULL, NULL, 60);
    return s;
}

int main(void)
{
    return th_run_suite(pool_suite());
}
