/*
 * check_sentinel.c - Redis Sentinel: discovery of the master through real
 * sentinels (a master, a replica and three redis-server --sentinel on
 * loopback, started here), bad settings, READONLY from a replica, the cost
 * of waiting for the replica per write, and the
 * promise across a failover: a forced failover (SENTINEL FAILOVER) and the
 * master killed with SIGKILL, each under a writer and a reader thread on a
 * cached repository over SQLite for RC_SENTINEL_SECONDS (20) seconds.
 *
 * Per scenario it prints (stderr) the calls that returned an error (asserted
 * 0), the seconds from the trigger until a write's invalidation was applied
 * and acknowledged on the new master, and the stale reads (asserted 0): a
 * read that began after a write had returned and showed an older version.
 * A reader on a second service over the same file (another process's view)
 * is checked too: its stale reads are printed with how far behind they
 * were, and asserted within 2 s (the outbox poll's bound behind writes that
 * could not reach Redis, generous for a loaded machine).
 *
 * The sentinels require a password (REDIS_SENTINEL_PASSWORD).
 */
#include "harness.h"
#include "sentinel.h"
#include "service.h"
#include "side.h"

#include "cache/service.h"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ts_cluster cl;

static void setup(void) { ck_assert_int_eq(ts_start(&cl), 0); }
static void teardown(void) { ts_stop(&cl); }

/* A URL whose host is never used (with Sentinel the sentinels say where). */
#define UNUSED_URL "redis://127.0.0.1:1/0"

static rc_hero *mk_hero(const char *id, long version)
{
    rc_hero *h = rc_hero_new();
    char v[32];
    snprintf(v, sizeof v, "%010ld", version);
    h->id = strdup(id);
    h->name = strdup(id);
    h->age = 30;
    h->gender = strdup("male");
    h->appearance = strdup(v);
    h->language = strdup("en");
    return h;
}

static void open_side_pw(th_side *s, const char *db, const char *list, const char *master,
                         const char *password)
{
    const char *kv[] = {"REDIS_SENTINELS",         list,     "REDIS_SENTINEL_MASTER", master,
                        "REDIS_SENTINEL_PASSWORD", password, "REDIS_SOCKET_TIMEOUT",  "0.5",
                        "CIRCUIT_BREAKER_TIMEOUT", "1",      NULL};
    th_side_open(s, UNUSED_URL, db, kv, false);
}

static void open_side(th_side *s, const char *db, const char *list, const char *master)
{
    open_side_pw(s, db, list, master, cl.password);
}

/* ------------------------------------------------------------------ */

START_TEST(test_discovery)
{
    char *db = th_tmpfile("d.db");
    th_side s;
    open_side(&s, db, cl.list, cl.name);
    ck_assert_int_eq(rc_cache_health_check(s.cache), RC_OK);
    rc_cache_connection cn;
    ck_assert_int_eq(rc_cache_connection_info(s.cache, &cn), RC_OK);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", cl.servers[0].port);
    ck_assert_str_eq(cn.server, want);
    snprintf(want, sizeof want, "127.0.0.1:%d", cl.port[0]);
    ck_assert_str_eq(cn.sentinel, want);
    /* a write and a read through the cached repository reach the master */
    rc_hero *h = mk_hero("h0", 1);
    ck_assert_int_eq(rc_repo_save(s.repo, h, NULL), RC_OK);
    rc_hero_free(h);
    void *e = NULL;
    ck_assert_int_eq(rc_repo_find_by_id(s.repo, "h0", &e), RC_OK);
    rc_hero_free(e);
    ck_assert_int_eq(rc_repo_find_by_id(s.repo, "h0", &e), RC_OK);
    rc_hero_free(e);
    redisContext *m = th_redis_connect(&cl.servers[0], NULL);
    redisReply *r = redisCommand(m, "EXISTS hero:h0");
    ck_assert_int_eq(r->integer, 1);
    freeReplyObject(r);
    redisFree(m);
    th_side_close(&s);

    /* a wrong sentinel password: degraded, the reason named, never the password */
    open_side_pw(&s, db, cl.list, cl.name, "wrong-pw");
    ck_assert_int_eq(rc_cache_health_check(s.cache), RC_EUNAVAILABLE);
    ck_assert_int_eq(rc_repo_find_by_id(s.repo, "h0", &e), RC_OK);
    rc_hero_free(e);
    ck_assert_int_eq(rc_cache_connection_info(s.cache, &cn), RC_OK);
    ck_assert_msg(strstr(cn.last_error, "AUTH refused") != NULL, "%s", cn.last_error);
    ck_assert_ptr_null(strstr(cn.last_error, "wrong-pw"));
    th_side_close(&s);

    /* the first sentinel dead: the next one answers */
    ts_kill_sentinel(&cl, 0);
    open_side(&s, db, cl.list, cl.name);
    double t0 = th_now();
    ck_assert_int_eq(rc_cache_health_check(s.cache), RC_OK);
    double took = th_now() - t0;
    ck_assert_int_eq(rc_cache_connection_info(s.cache, &cn), RC_OK);
    snprintf(want, sizeof want, "127.0.0.1:%d", cl.port[1]);
    ck_assert_str_eq(cn.sentinel, want);
    ck_assert(took < 5.0); /* a refused connect, not a hang */
    th_side_close(&s);

    /* a master name the sentinels do not know: degraded, answers from SQLite */
    open_side(&s, db, cl.list, "nosuchmaster");
    ck_assert_int_eq(rc_cache_health_check(s.cache), RC_EUNAVAILABLE);
    ck_assert_int_eq(rc_repo_find_by_id(s.repo, "h0", &e), RC_OK);
    ck_assert_str_eq(((rc_hero *)e)->appearance, "0000000001");
    rc_hero_free(e);
    h = mk_hero("h0", 2);
    ck_assert_int_eq(rc_repo_update(s.repo, h, NULL, NULL), RC_OK);
    rc_hero_free(h);
    ck_assert_int_eq(rc_cache_connection_info(s.cache, &cn), RC_OK);
    ck_assert_msg(strstr(cn.last_error, "nosuchmaster") != NULL, "%s", cn.last_error);
    ck_assert_str_eq(cn.server, "");
    th_side_close(&s);
    free(db);
}
END_TEST

/* A replica named directly (no Sentinel): its READONLY makes the write's
 * invalidation count as not applied (remembered, the call still answers). */
START_TEST(test_readonly_is_unavailable)
{
    char *db = th_tmpfile("r.db");
    th_side s;
    const char *kv[] = {"REDIS_SOCKET_TIMEOUT", "0.5", NULL};
    th_side_open(&s, cl.servers[1].url, db, kv, false);
    rc_hero *h = mk_hero("h0", 1);
    ck_assert_int_eq(rc_repo_save(s.repo, h, NULL), RC_OK);
    rc_hero_free(h);
    rc_cache_stats st;
    rc_cache_get_stats(s.cache, &st);
    ck_assert_uint_gt(st.pending_deletes, 0);
    ck_assert_uint_gt(st.errors, 0);
    void *e = NULL;
    ck_assert_int_eq(rc_repo_find_by_id(s.repo, "h0", &e), RC_OK);
    rc_hero_free(e);
    th_side_close(&s);
    free(db);
}
END_TEST

START_TEST(test_master_without_name_refused)
{
    rc_settings s;
    rc_cache *c = NULL;
    ck_assert_int_eq(rc_settings_defaults(&s), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_SENTINELS", "127.0.0.1:26379"), RC_OK);
    ck_assert_int_eq(rc_cache_new(&s, &c), RC_ECONFIG);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "REDIS_SENTINEL_MASTER"));
    ck_assert_ptr_null(c);
    rc_settings_clear(&s);
}
END_TEST

/* The cost of waiting for the replica: writes through the cached
 * repository with Sentinel (DEL + WAIT 1 in one round trip) and straight
 * to the master (no WAIT), printed, not asserted (speed is measured, never
 * asserted). */
static double write_us(th_side *s, int n)
{
    double t0 = th_now();
    for (int i = 1; i <= n; i++) {
        rc_hero *h = mk_hero("h0", i);
        ck_assert_int_eq(rc_repo_update(s->repo, h, NULL, NULL), RC_OK);
        rc_hero_free(h);
    }
    return (th_now() - t0) / n * 1e6;
}

START_TEST(test_write_cost)
{
    char *db = th_tmpfile("w.db");
    th_side direct, via;
    const char *kv[] = {"REDIS_SOCKET_TIMEOUT", "0.5", NULL};
    th_side_open(&direct, cl.servers[0].url, db, kv, false);
    open_side(&via, db, cl.list, cl.name);
    rc_hero *h = mk_hero("h0", 0);
    ck_assert_int_eq(rc_repo_save(direct.repo, h, NULL), RC_OK);
    rc_hero_free(h);
    enum { N = 400 };
    write_us(&direct, 20); /* warm both */
    write_us(&via, 20);
    double d = 0, v = 0;
    for (int round = 0; round < 3; round++) {
        d += write_us(&direct, N) / 3;
        v += write_us(&via, N) / 3;
    }
    uint64_t unacked = atomic_load(&via.cache->unacked), acked = atomic_load(&via.cache->acked);
    fprintf(stderr,
            "sentinel write cost: update through the cached repository %.1f us straight to "
            "the master, %.1f us with Sentinel (DEL + WAIT 1): +%.1f us per write; "
            "%llu invalidations acknowledged, %llu not\n",
            d, v, v - d, (unsigned long long)acked, (unsigned long long)unacked);
    ck_assert_uint_eq(unacked, 0);
    ck_assert_uint_ge(acked, 3 * N);
    th_side_close(&via);
    th_side_close(&direct);
    free(db);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The promise across a failover                                       */

#define RETURNS 65536 /* versions whose return time is kept */

typedef struct run {
    th_side side;           /* the service, the SQLite file, the repository */
    th_side other;          /* another service on the same file: another
                               process's reader */
    atomic_long returned;   /* highest version whose write returned */
    _Atomic double returned_at[RETURNS]; /* when version v returned */
    atomic_ullong other_reads, other_stale;
    _Atomic double other_worst; /* its stalest read: seconds behind */
    atomic_bool stop;
    atomic_ullong reads, writes, errors, stale, after_reads, after_stale;
    _Atomic double named_at;  /* when the sentinels named the new master (0) */
    _Atomic double reached_at; /* first write begun after that whose
                                  invalidation was acknowledged (0) */
    long version;           /* the writer's */
} run;

static void *writer_main(void *p)
{
    run *r = p;
    rc_cache *c = r->side.cache;
    while (!atomic_load(&r->stop)) {
        rc_hero *h = mk_hero("h0", ++r->version);
        double named = atomic_load(&r->named_at);
        uint64_t acked = atomic_load(&c->acked), unacked = atomic_load(&c->unacked);
        if (rc_repo_update(r->side.repo, h, NULL, NULL) != RC_OK)
            atomic_fetch_add(&r->errors, 1);
        else {
            atomic_store(&r->returned_at[r->version % RETURNS], th_now());
            atomic_store(&r->returned, r->version);
        }
        if (named > 0 && atomic_load(&r->reached_at) == 0 &&
            atomic_load(&c->acked) > acked && atomic_load(&c->unacked) == unacked)
            atomic_store(&r->reached_at, th_now());
        rc_hero_free(h);
        atomic_fetch_add(&r->writes, 1);
        usleep(1000);
    }
    return NULL;
}

static void *reader_main(void *p)
{
    run *r = p;
    while (!atomic_load(&r->stop)) {
        long floor = atomic_load(&r->returned);
        bool after = atomic_load(&r->named_at) > 0;
        void *e = NULL;
        if (rc_repo_find_by_id(r->side.repo, "h0", &e) != RC_OK) {
            atomic_fetch_add(&r->errors, 1);
        } else if (atol(((rc_hero *)e)->appearance) < floor) {
            atomic_fetch_add(&r->stale, 1);
            if (after)
                atomic_fetch_add(&r->after_stale, 1);
            fprintf(stderr, "stale read: version %s < %ld\n", ((rc_hero *)e)->appearance, floor);
        }
        rc_hero_free(e);
        atomic_fetch_add(&r->reads, 1);
        atomic_fetch_add(&r->after_reads, after);
        usleep(50); /* leave the machine to the servers too */
    }
    return NULL;
}

/* The other service's reader: stale reads counted with how far behind
 * they were (the window of a write whose invalidation was not
 * acknowledged: CACHE_OUTBOX_POLL_MS; docs/consistency.md). */
static void *other_reader_main(void *p)
{
    run *r = p;
    while (!atomic_load(&r->stop)) {
        long floor = atomic_load(&r->returned);
        void *e = NULL;
        if (rc_repo_find_by_id(r->other.repo, "h0", &e) != RC_OK) {
            atomic_fetch_add(&r->errors, 1);
        } else {
            long seen = atol(((rc_hero *)e)->appearance);
            if (seen < floor) {
                double behind = th_now() - atomic_load(&r->returned_at[(seen + 1) % RETURNS]);
                atomic_fetch_add(&r->other_stale, 1);
                if (behind > atomic_load(&r->other_worst))
                    atomic_store(&r->other_worst, behind);
            }
        }
        rc_hero_free(e);
        atomic_fetch_add(&r->other_reads, 1);
        usleep(50);
    }
    return NULL;
}

/* Seconds each failover scenario runs (RC_SENTINEL_SECONDS, default 20). */
static double scenario_seconds(void)
{
    const char *s = getenv("RC_SENTINEL_SECONDS");
    double v = s ? atof(s) : 20.0;
    return v >= 6 ? v : 6;
}

static void failover_scenario(bool kill_master)
{
    static run r;
    memset(&r, 0, sizeof r);
    char *db = th_tmpfile("f.db");
    open_side(&r.side, db, cl.list, cl.name);
    open_side(&r.other, db, cl.list, cl.name);
    rc_hero *h = mk_hero("h0", 0);
    ck_assert_int_eq(rc_repo_save(r.side.repo, h, NULL), RC_OK);
    rc_hero_free(h);
    int old = cl.servers[0].port;
    pthread_t w, rd, ord;
    ck_assert_int_eq(pthread_create(&w, NULL, writer_main, &r), 0);
    ck_assert_int_eq(pthread_create(&rd, NULL, reader_main, &r), 0);
    ck_assert_int_eq(pthread_create(&ord, NULL, other_reader_main, &r), 0);
    double total = scenario_seconds(), t0 = th_now();
    usleep(3000000);
    double trigger = th_now();
    if (kill_master)
        ts_kill(&cl, old);
    else
        ck_assert_int_eq(ts_failover(&cl, TH_WAIT_SECONDS), 0);
    int now = ts_wait_new_master(&cl, old, TH_WAIT_SECONDS);
    ck_assert_int_gt(now, 0);
    atomic_store(&r.named_at, th_now());
    double named = th_now() - trigger;
    if (kill_master) { /* the old master comes back (empty) and is made a replica */
        usleep(2000000);
        ck_assert_int_eq(th_redis_restart(ts_server(&cl, old)), 0);
    }
    while (th_now() - t0 < total)
        usleep(100000);
    /* a loaded machine may need longer before a write reaches the master */
    th_await(atomic_load(&r.reached_at) > 0, TH_WAIT_SECONDS);
    atomic_store(&r.stop, true);
    pthread_join(w, NULL);
    pthread_join(rd, NULL);
    pthread_join(ord, NULL);
    rc_cache_connection cn;
    rc_cache_connection_info(r.side.cache, &cn);
    rc_cache_stats st;
    rc_cache_get_stats(r.side.cache, &st);
    fprintf(stderr,
            "sentinel %s: %.0f s, %llu writes, %llu reads (%llu after the failover); "
            "errors returned %llu; new master named %.2f s after the trigger; "
            "writes reach it %.2f s after the trigger; stale reads %llu (%llu after the "
            "failover); invalidations not acknowledged %llu; identity changes %llu; "
            "connects %llu; master now %s via %s\n",
            kill_master ? "master killed (SIGKILL)" : "forced failover", th_now() - t0,
            (unsigned long long)r.writes, (unsigned long long)r.reads,
            (unsigned long long)r.after_reads, (unsigned long long)r.errors, named,
            atomic_load(&r.reached_at) - trigger, (unsigned long long)r.stale,
            (unsigned long long)r.after_stale,
            (unsigned long long)atomic_load(&r.side.cache->unacked),
            (unsigned long long)st.identity_changes, (unsigned long long)cn.connects,
            cn.server, cn.sentinel);
    fprintf(stderr,
            "sentinel %s: another service's reader: %llu reads, %llu stale (at most %.0f ms "
            "behind the write)\n",
            kill_master ? "master killed (SIGKILL)" : "forced failover",
            (unsigned long long)r.other_reads, (unsigned long long)r.other_stale,
            atomic_load(&r.other_worst) * 1000);
    char want[32];
    snprintf(want, sizeof want, "127.0.0.1:%d", now);
    ck_assert_str_eq(cn.server, want);
    ck_assert_uint_eq(r.errors, 0);
    ck_assert_uint_eq(r.stale, 0);
    ck_assert_uint_gt(r.after_reads, 10);
    ck_assert_uint_gt(r.writes, 10);
    ck_assert_uint_ge(st.identity_changes, 1);
    ck_assert_uint_eq(st.unacknowledged_invalidations, atomic_load(&r.side.cache->unacked));
    /* behind writes not acknowledged: the outbox poll's bound (100 ms),
     * generous for a loaded machine */
    ck_assert_msg(atomic_load(&r.other_worst) < 2.0, "%.3f s", atomic_load(&r.other_worst));
    th_side_close(&r.other);
    th_side_close(&r.side);
    free(db);
}

START_TEST(test_forced_failover) { failover_scenario(false); }
END_TEST

START_TEST(test_master_killed) { failover_scenario(true); }
END_TEST

int main(void)
{
    Suite *s = suite_create("sentinel");
    const th_case plain[] = {
        {"master_without_name_refused", test_master_without_name_refused},
    };
    const th_case cases[] = {
        {"discovery", test_discovery},
        {"readonly_is_unavailable", test_readonly_is_unavailable},
        {"write_cost", test_write_cost},
        {"forced_failover", test_forced_failover},
        {"master_killed", test_master_killed},
    };
    th_add_cases(s, plain, sizeof plain / sizeof plain[0], NULL, NULL, 0);
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], setup, teardown, 180);
    return th_run_suite(s);
}
