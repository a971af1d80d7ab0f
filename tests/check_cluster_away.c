/* check_cluster_away.c - a master away in a real Redis Cluster
 * (support/cluster.h). The invalidation outbox: a write whose delete never
 * reached Redis (made by a service without Redis, sharing the database)
 * leaves the old value in its master; a service that then uses that
 * master applies the outbox first, when it first uses the master and again
 * when the master is back after its breaker opened, so it never reads that
 * old value. A pipeline over several masters, one of them paused: the
 * others' groups are sent (and done) while the paused one's reply is
 * awaited. */
#include "cache/service.h"
#include "cluster.h"
#include "core/slot.h"
#include "side.h"

#include "repocache/cached_repository.h"
#include "repocache/settings.h"
#include "repocache/sqlite_repository.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static th_cluster cl;

/* A side on db: through the cluster (its keys under prefix, its thread
 * applying the outbox only every minute, so what a test sees applied was
 * applied before a use), or with Redis off when !redis. */
static void open_side(th_side *s, const char *prefix, const char *db, bool redis)
{
    const char *kv[] = {"CACHE_KEY_PREFIX", prefix, "CIRCUIT_BREAKER_TIMEOUT", "1",
                        "CIRCUIT_BREAKER_THRESHOLD", "1", "REDIS_SOCKET_TIMEOUT", "0.3",
                        "CACHE_OUTBOX_POLL_MS", "60000", "CACHE_L1_ENABLED", "false",
                        "REDIS_ENABLED", redis ? "true" : "false", NULL};
    th_side_open(s, th_cluster_url(&cl), db, kv, false);
}

static void put_hero(const th_side *s, bool is_update, const char *name)
{
    rc_hero *h = th_hero("h1", name);
    int st = is_update ? rc_repo_update(s->repo, h, NULL, NULL) : rc_repo_save(s->repo, h, NULL);
    ck_assert_msg(st == RC_OK, "%s", rc_errmsg());
    rc_hero_free(h);
}

static char *name_of(const th_side *s)
{
    rc_hero *h = NULL;
    ck_assert_msg(rc_repo_find_by_id(s->repo, "h1", (void **)&h) == RC_OK, "%s", rc_errmsg());
    char *n = strdup(h->name);
    rc_hero_free(h);
    return n;
}

/* Whether hero h1's key under prefix holds a value naming name. */
static bool redis_holds(const char *prefix, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "%shero:h1", prefix);
    int m = th_cluster_owner(&cl, th_cluster_other_master(&cl, -1), rc_slot(key, strlen(key)));
    redisReply *r = th_cluster_cmd(&cl, m, "GET %s", key);
    bool yes = r->type == REDIS_REPLY_STRING && strstr(r->str, name);
    freeReplyObject(r);
    return yes;
}

/* Hero h1 saved as "Ann" through a service on the cluster and read (Redis
 * holds it), then, when also_read, read through r too (r has used its
 * master); then updated to "Bea" by a service without Redis: the database
 * says "Bea", Redis still "Ann", the update's outbox row pending. */
static void stale_in_redis(const char *prefix, const char *db, th_side *also_read)
{
    th_side w, off;
    open_side(&w, prefix, db, true);
    put_hero(&w, false, "Ann");
    free(name_of(&w));
    th_side_close(&w); /* its rows marked applied */
    if (also_read)
        free(name_of(also_read));
    ck_assert(redis_holds(prefix, "Ann"));
    open_side(&off, prefix, db, false);
    put_hero(&off, true, "Bea");
    th_side_close(&off);
    ck_assert(redis_holds(prefix, "Ann"));
}

static void assert_reads_bea(const th_side *s)
{
    char *n = name_of(s);
    ck_assert_str_eq(n, "Bea");
    free(n);
}

START_TEST(test_applied_before_a_master_is_first_used)
{
    char *db = th_tmpfile("outbox-first.db");
    stale_in_redis("o1:", db, NULL);
    th_side r;
    open_side(&r, "o1:", db, true);
    assert_reads_bea(&r);
    ck_assert(!redis_holds("o1:", "Ann"));
    th_side_close(&r);
    free(db);
}
END_TEST

START_TEST(test_applied_before_a_master_back_is_used)
{
    char *db = th_tmpfile("outbox-back.db");
    char key[] = "o2:hero:h1";
    th_side r;
    open_side(&r, "o2:", db, true);
    stale_in_redis("o2:", db, &r);
    int m = th_cluster_owner(&cl, th_cluster_other_master(&cl, -1), rc_slot(key, strlen(key)));
    /* the master away for less than the cluster's node timeout (1 s): r's
     * read times out (0.3 s) and its breaker for that master opens */
    kill(cl.node[m].pid, SIGSTOP);
    assert_reads_bea(&r); /* from the database */
    kill(cl.node[m].pid, SIGCONT);
    rc_cache_stats st;
    ck_assert_int_eq(rc_cache_get_stats(r.cache, &st), RC_OK);
    ck_assert_int_ne(st.circuit, RC_CIRCUIT_CLOSED);
    ck_assert(redis_holds("o2:", "Ann"));
    /* back: the first call to it after its breaker applies the outbox, so
     * no read, then or after, finds "Ann" */
    double until = th_now() + TH_WAIT_SECONDS;
    do {
        ck_assert_msg(th_now() < until, "the breaker never closed");
        assert_reads_bea(&r);
        ck_assert_int_eq(rc_cache_get_stats(r.cache, &st), RC_OK);
        th_await_tick();
    } while (st.circuit != RC_CIRCUIT_CLOSED);
    assert_reads_bea(&r);
    ck_assert(!redis_holds("o2:", "Ann"));
    th_side_close(&r);
    free(db);
}
END_TEST

/* ---- a pipeline over a paused master ---- */

typedef struct del_call {
    rc_cache *cache;
    const char *keys[2];
    atomic_bool returned;
} del_call;

static void *delete_both(void *p)
{
    del_call *d = p;
    long long removed = 0;
    rc_cache_del_many(d->cache, d->keys, 2, &removed); /* one master's part times out */
    atomic_store(&d->returned, true);
    return NULL;
}

static bool exists_on(int node, const char *key)
{
    redisReply *r = th_cluster_cmd(&cl, node, "EXISTS %s", key);
    bool yes = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return yes;
}

/* Deletes full[0] and full[1] (full keys, on masters paused and other),
 * in that order or the other (paused_first), through a new service while
 * paused answers no client: whether other's key was deleted while the call
 * still awaited paused's reply. */
static bool sent_meanwhile(const char *const full[2], int paused, int other, bool paused_first)
{
    th_side s;
    char *db = th_tmpfile("away-pipeline.db");
    open_side(&s, "p1:", db, true);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(rc_cache_set(s.cache, full[i], "v", 1, 60), RC_OK);
    ck_assert(exists_on(other, full[1]));
    /* paused for clients only: the cluster bus goes on, no failover */
    freeReplyObject(th_cluster_cmd(&cl, paused, "CLIENT PAUSE 2000 ALL"));
    del_call d = {.cache = s.cache};
    d.keys[0] = full[paused_first ? 0 : 1];
    d.keys[1] = full[paused_first ? 1 : 0];
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, delete_both, &d), 0);
    th_await(!exists_on(other, full[1]), TH_WAIT_SECONDS);
    bool meanwhile = !atomic_load(&d.returned);
    pthread_join(t, NULL);
    freeReplyObject(th_cluster_cmd(&cl, paused, "CLIENT UNPAUSE"));
    th_side_close(&s);
    free(db);
    return meanwhile;
}

START_TEST(test_groups_sent_before_replies_are_read)
{
    /* full key f[0] on one master, f[1] on another */
    char k[2][32], f[2][64];
    int owner[2] = {-1, -1}, any = th_cluster_other_master(&cl, -1);
    th_side s;
    char *db = th_tmpfile("away-names.db");
    open_side(&s, "p1:", db, true);
    for (int i = 0, n = 0; n < 2 && i < 1000; i++) {
        char *key = NULL;
        snprintf(k[n], sizeof k[n], "x%d", i);
        ck_assert_int_eq(rc_cache_key(s.cache, k[n], &key), RC_OK);
        snprintf(f[n], sizeof f[n], "%s", key);
        free(key);
        owner[n] = th_cluster_owner(&cl, any, rc_slot(f[n], strlen(f[n])));
        n += n == 0 || owner[1] != owner[0];
    }
    th_side_close(&s);
    free(db);
    ck_assert_int_ne(owner[0], owner[1]);
    const char *full[2] = {f[0], f[1]};
    /* in either order: one group after another would, in one of them, send
     * nothing to the other master before the paused one's reply */
    for (int order = 0; order < 2; order++)
        ck_assert_msg(sent_meanwhile(full, owner[0], owner[1], order == 0),
                      "the other master's group waited for the paused one's reply (%s first)",
                      order == 0 ? "paused" : "other");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cluster_away");
    const th_case cases[] = {
        {"applied_before_a_master_is_first_used", test_applied_before_a_master_is_first_used},
        {"applied_before_a_master_back_is_used", test_applied_before_a_master_back_is_used},
        {"groups_sent_before_replies_are_read", test_groups_sent_before_replies_are_read},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], NULL, NULL, 0);
    return th_cluster_run(&cl, s);
}
