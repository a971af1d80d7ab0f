/* check_tracking.c - near cache coherence through Redis server-assisted
 * invalidation, against a real redis-server: an invalidation is applied
 * before another client's write returns to it, FLUSHALL empties, and losing
 * either connection (CLIENT KILL, a paused or restarted server) empties the
 * store, stops serving, and re-arms. */
#include "harness.h"

#include "cache/near.h"
#include "cache/pool.h"
#include "cache/tracking.h"
#include "core/log.h"
#include "repocache/settings.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct world {
    th_redis r;
    rc_settings s;
    rc_pool pool;
    rc_near *near;
    rc_tracking *t;
    redisContext *raw;     /* another client */
} world;

static void hook_invalidate(void *ud, const char *key) { rc_near_remove(ud, key); }
static void hook_flush(void *ud) { rc_near_reset(ud); }

/* A gate the invalidation hook can be held at: a drain that has read an
 * invalidation and not applied it yet. */
typedef struct gate {
    rc_near *near;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool closed;  /* hold the next invalidation */
    bool holding; /* one is held */
} gate;

static void gated_invalidate(void *ud, const char *key)
{
    gate *g = ud;
    pthread_mutex_lock(&g->mu);
    if (g->closed) {
        g->holding = true;
        pthread_cond_broadcast(&g->cv);
        while (g->closed)
            pthread_cond_wait(&g->cv, &g->mu);
        g->holding = false;
    }
    pthread_mutex_unlock(&g->mu);
    rc_near_remove(g->near, key);
}

static void gated_flush(void *ud) { rc_near_reset(((gate *)ud)->near); }

/* Waits up to 10 s for the tracker to be (or not be) coherent. */
static void wait_coherent(world *w, bool want)
{
    double t0 = th_now();
    while (rc_tracking_ready(w->t, false) != want) {
        ck_assert_msg(th_now() - t0 < 10, "tracking never became %s",
                      want ? "coherent" : "incoherent");
        usleep(2000);
    }
}

/* Waits up to 10 s until coherence has been lost n times in all (a loss
 * and the re-arm after it can be quicker than any poll of the state). */
static void wait_losses(world *w, uint64_t n)
{
    rc_tracking_stats st;
    double t0 = th_now();
    for (rc_tracking_get_stats(w->t, &st); st.losses < n; rc_tracking_get_stats(w->t, &st)) {
        ck_assert_msg(th_now() - t0 < 10, "coherence never lost");
        usleep(1000);
    }
}

static void start_with(world *w, const char *timeout, gate *g)
{
    memset(w, 0, sizeof *w);
    ck_assert_int_eq(th_redis_start(&w->r, NULL), 0);
    ck_assert_int_eq(rc_settings_defaults(&w->s), RC_OK);
    ck_assert_int_eq(rc_settings_set(&w->s, "REDIS_URL", w->r.url), RC_OK);
    ck_assert_int_eq(rc_settings_set(&w->s, "REDIS_SOCKET_TIMEOUT", timeout), RC_OK);
    ck_assert_int_eq(rc_pool_init(&w->pool, &w->s, RC_LOG_ERROR), RC_OK);
    w->near = rc_near_new(1000, 1 << 20, 300);
    rc_tracking_hooks h = {hook_invalidate, hook_flush, w->near};
    if (g) {
        g->near = w->near;
        h = (rc_tracking_hooks){gated_invalidate, gated_flush, g};
    }
    ck_assert_int_eq(rc_tracking_new(&w->pool, "test", RC_LOG_ERROR, 0.1, h, &w->t), RC_OK);
    ck_assert(!rc_tracking_ready(w->t, false)); /* nothing tracked yet */
    ck_assert_int_eq(rc_tracking_add_prefix(w->t, "hero:"), RC_OK);
    wait_coherent(w, true);
    w->raw = th_redis_connect(&w->r, NULL);
    ck_assert_ptr_nonnull(w->raw);
}

static void start(world *w, const char *timeout) { start_with(w, timeout, NULL); }

static void finish(world *w)
{
    rc_tracking_free(w->t);
    rc_near_free(w->near);
    rc_pool_destroy(&w->pool);
    rc_settings_clear(&w->s);
    redisFree(w->raw);
    th_redis_stop(&w->r);
}

static void put(world *w, const char *key)
{
    rc_near_value out, v = {.kind = RC_NEAR_BYTES, .ptr = strdup("v"), .len = 1};
    uint64_t ticket;
    ck_assert_int_eq(rc_near_begin(w->near, key, 0, &out, &ticket), RC_NEAR_FILL);
    ck_assert(rc_near_put(w->near, key, ticket, &v, 1, 300));
}

static bool has(world *w, const char *key) { return rc_near_ttl(w->near, key) != -2; }

static void raw(world *w, const char *cmd)
{
    redisReply *r = redisCommand(w->raw, cmd);
    ck_assert_ptr_nonnull(r);
    freeReplyObject(r);
}

/* 1000 times: hero:1 stored, another client's SET of it returned, then a
 * sync (or a strict rc_tracking_ready) has removed it. */
static void check_writes_applied(world *w, bool strict_ready)
{
    char cmd[64];
    for (int i = 0; i < 1000; i++) {
        put(w, "hero:1");
        snprintf(cmd, sizeof cmd, "SET hero:1 v%d", i);
        raw(w, cmd);
        if (strict_ready)
            ck_assert(rc_tracking_ready(w->t, true));
        else
            rc_tracking_sync(w->t);
        ck_assert_msg(!has(w, "hero:1"), "write %d not applied", i);
    }
}

START_TEST(test_invalidation_before_the_writer_returns)
{
    /* Another client's SET returns to it only after Redis wrote the
     * invalidation to our subscriber: once it has returned, a sync applies
     * it, every time. */
    world w;
    start(&w, "1");
    check_writes_applied(&w, false);
    /* keys outside the tracked prefixes do not disturb the store */
    put(&w, "hero:2");
    raw(&w, "SET story:2 x");
    raw(&w, "PING"); /* a round trip later */
    rc_tracking_sync(w.t);
    ck_assert(has(&w, "hero:2"));
    rc_tracking_stats st;
    rc_tracking_get_stats(w.t, &st);
    ck_assert_uint_ge(st.invalidations, 1000);
    ck_assert_uint_eq(st.losses, 0);
    ck_assert(st.coherent);
    finish(&w);
}
END_TEST

START_TEST(test_strict_ready_applies_first)
{
    /* The strict check before a hit: once another client's SET has
     * returned, rc_tracking_ready(strict) has applied its invalidation
     * (most often before the thread wakes to it), every time. */
    world w;
    start(&w, "1");
    check_writes_applied(&w, true);
    /* nothing unread: the check is quiet and the entry stays */
    put(&w, "hero:2");
    ck_assert(rc_tracking_ready(w.t, true));
    ck_assert(has(&w, "hero:2"));
    finish(&w);
}
END_TEST

typedef struct asker {
    rc_tracking *t;
    atomic_bool answered;
    bool ready;
} asker;

static void *ask_strict(void *arg)
{
    asker *a = arg;
    a->ready = rc_tracking_ready(a->t, true);
    atomic_store(&a->answered, true);
    return NULL;
}

START_TEST(test_strict_ready_waits_for_a_drain_under_way)
{
    /* A drain has read an invalidation and not applied it: the socket is
     * empty, yet a strict check must wait for that drain, not serve. */
    world w;
    gate g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    start_with(&w, "1", &g);
    put(&w, "hero:1");
    pthread_mutex_lock(&g.mu);
    g.closed = true;
    pthread_mutex_unlock(&g.mu);
    raw(&w, "SET hero:1 new");
    pthread_mutex_lock(&g.mu);
    while (!g.holding) /* the thread's drain holds it */
        pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);
    asker a = {.t = w.t};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, ask_strict, &a), 0);
    usleep(200 * 1000);
    bool early = atomic_load(&a.answered);
    bool stale = has(&w, "hero:1");
    pthread_mutex_lock(&g.mu);
    g.closed = false;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    pthread_join(th, NULL);
    ck_assert_msg(!early, "a strict check answered while a drain held an invalidation");
    ck_assert(stale);
    ck_assert(a.ready);
    ck_assert(!has(&w, "hero:1"));
    finish(&w);
}
END_TEST

START_TEST(test_flushall_empties)
{
    world w;
    start(&w, "1");
    put(&w, "hero:1");
    put(&w, "hero:2");
    raw(&w, "FLUSHALL");
    /* Redis sends a flush's invalidation during the command, which can put
     * it on the wire just after the flusher's reply (unlike a key's, which
     * BCAST sends first): wait for it. */
    double t0 = th_now();
    while (has(&w, "hero:1") || has(&w, "hero:2")) {
        ck_assert(th_now() - t0 < 5);
        rc_tracking_sync(w.t);
    }
    ck_assert(rc_tracking_ready(w.t, false)); /* still coherent */
    finish(&w);
}
END_TEST

/* Kills the one client whose CLIENT LIST line contains needle and not
 * unless (NULL: no exception). */
static void kill_clients(world *w, const char *needle, const char *unless)
{
    redisReply *r = redisCommand(w->raw, "CLIENT LIST");
    ck_assert(r && r->type == REDIS_REPLY_STRING);
    int killed = 0;
    for (char *line = strtok(r->str, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strstr(line, needle) || (unless && strstr(line, unless)))
            continue;
        long long id = atoll(strstr(line, "id=") + 3);
        redisReply *k = redisCommand(w->raw, "CLIENT KILL ID %lld", id);
        ck_assert(k && k->type == REDIS_REPLY_INTEGER && k->integer == 1);
        freeReplyObject(k);
        killed++;
    }
    freeReplyObject(r);
    ck_assert_int_eq(killed, 1);
}

static void check_loss_and_recovery(const char *needle, const char *unless)
{
    world w;
    start(&w, "1");
    put(&w, "hero:1");
    kill_clients(&w, needle, unless);
    wait_losses(&w, 1);
    ck_assert(!has(&w, "hero:1")); /* emptied */
    wait_coherent(&w, true);       /* re-armed */
    put(&w, "hero:1");
    raw(&w, "SET hero:1 new");
    rc_tracking_sync(w.t);
    ck_assert(!has(&w, "hero:1")); /* and invalidating again */
    rc_tracking_stats st;
    rc_tracking_get_stats(w.t, &st);
    ck_assert_uint_eq(st.losses, 1);
    ck_assert_uint_eq(st.arms, 2);
    finish(&w);
}

START_TEST(test_subscriber_killed) { check_loss_and_recovery("cmd=subscribe", NULL); }
END_TEST

/* the control connection redirects its invalidations: redir=<id> */
START_TEST(test_control_killed) { check_loss_and_recovery("redir=", "redir=-1"); }
END_TEST

START_TEST(test_paused_server_loses_coherence)
{
    /* A server that stops answering: PINGs go unanswered, coherence is lost
     * within the timeout plus a PING period. */
    world w;
    start(&w, "0.3");
    put(&w, "hero:1");
    th_redis_pause(&w.r);
    double t0 = th_now();
    wait_losses(&w, 1);
    double took = th_now() - t0;
    ck_assert(!has(&w, "hero:1"));
    th_redis_resume(&w.r);
    wait_coherent(&w, true);
    fprintf(stderr, "tracking: a paused server lost coherence after %.0f ms\n", took * 1e3);
    ck_assert(took < 0.3 + 0.1 + 0.5);
    finish(&w);
}
END_TEST

START_TEST(test_restarted_server_rearms)
{
    world w;
    start(&w, "1");
    put(&w, "hero:1");
    th_redis_kill(&w.r);
    wait_losses(&w, 1);
    ck_assert(!has(&w, "hero:1"));
    ck_assert_int_eq(th_redis_restart(&w.r), 0);
    wait_coherent(&w, true);
    redisFree(w.raw);
    w.raw = th_redis_connect(&w.r, NULL);
    put(&w, "hero:1");
    raw(&w, "SET hero:1 after-restart");
    rc_tracking_sync(w.t);
    ck_assert(!has(&w, "hero:1"));
    finish(&w);
}
END_TEST

START_TEST(test_new_prefix_rearms)
{
    world w;
    start(&w, "1");
    put(&w, "hero:1");
    ck_assert_int_eq(rc_tracking_add_prefix(w.t, "child:"), RC_OK);
    wait_coherent(&w, true);
    rc_tracking_stats st;
    rc_tracking_get_stats(w.t, &st);
    double t0 = th_now();
    while (st.arms < 2) { /* the re-arm may still be under way */
        ck_assert(th_now() - t0 < 10);
        usleep(2000);
        rc_tracking_get_stats(w.t, &st);
    }
    wait_coherent(&w, true);
    put(&w, "child:1");
    raw(&w, "SET child:1 x");
    rc_tracking_sync(w.t);
    ck_assert(!has(&w, "child:1"));
    finish(&w);
}
END_TEST

static Suite *tracking_suite(void)
{
    Suite *s = suite_create("tracking");
    const th_case cases[] = {
        {"before_writer_returns", test_invalidation_before_the_writer_returns},
        {"strict_ready", test_strict_ready_applies_first},
        {"strict_ready_waits", test_strict_ready_waits_for_a_drain_under_way},
        {"flushall", test_flushall_empties},
        {"subscriber_killed", test_subscriber_killed},
        {"control_killed", test_control_killed},
        {"paused", test_paused_server_loses_coherence},
        {"restarted", test_restarted_server_rearms},
        {"new_prefix", test_new_prefix_rearms},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], NULL, NULL, 0);
    return s;
}

int main(void)
{
    return th_run_suite(tracking_suite());
}
