/* check_near_cache.c - the near cache through cached repositories, against a
 * real redis-server and real SQLite files: a warm read is answered in the
 * process; a write through another service (its own connections, as another
 * process has) is seen at once after it returns; a write in this process is
 * read back at once; an invalidation that overtakes a fill's reply fences
 * it; a value dies with its Redis TTL; concurrent misses share one load; and
 * a writer in another process never leaves a stale read behind it. */
#include "harness.h"
#include "service.h"
#include "side.h"
#include "cache/service.h"
#include "repocache/cached_repository.h"
#include "repocache/sqlite_repository.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static th_redis shared;
static char *db_path;

static void setup(void)
{
    ck_assert_int_eq(th_redis_shared(&shared), 0);
    ck_assert_int_eq(th_redis_flushall(&shared, NULL), 0);
    db_path = th_tmpfile("near.db");
}

static void teardown(void) { free(db_path); }

/* One process's view: a service, the SQLite file and a cached hero repo. */
typedef th_side side;

static void open_side(side *s, const char *const *kv)
{
    th_side_open(s, shared.url, db_path, kv, true);
}

static void close_side(side *s) { th_side_close(s); }

static void put_hero(rc_repo *r, const char *id, const char *name)
{
    rc_hero *h = rc_hero_new();
    h->id = strdup(id);
    h->name = strdup(name);
    h->age = 30;
    h->gender = strdup("male");
    h->appearance = strdup("tall");
    h->language = strdup("en");
    void *old = NULL;
    int rc = rc_repo_find_by_id(r, id, &old);
    rc_hero_free(old);
    ck_assert_int_eq(rc == RC_OK ? rc_repo_update(r, h, NULL, NULL) : rc_repo_save(r, h, NULL),
                     RC_OK);
    rc_hero_free(h);
}

/* The name of hero id read through r (a static buffer). */
static const char *name_of(rc_repo *r, const char *id)
{
    static char buf[64];
    void *e = NULL;
    ck_assert_int_eq(rc_repo_find_by_id(r, id, &e), RC_OK);
    snprintf(buf, sizeof buf, "%s", ((rc_hero *)e)->name);
    rc_hero_free(e);
    return buf;
}

static uint64_t near_hits(rc_repo *r)
{
    rc_cached_repo_stats st;
    ck_assert_int_eq(rc_cached_repo_get_stats(r, &st), RC_OK);
    return st.near_hits;
}

START_TEST(test_warm_read_in_process)
{
    side a;
    open_side(&a, NULL);
    put_hero(a.repo, "h1", "Aria");
    ck_assert_str_eq(name_of(a.repo, "h1"), "Aria"); /* database, fills Redis */
    ck_assert_str_eq(name_of(a.repo, "h1"), "Aria"); /* near cache */
    uint64_t before = near_hits(a.repo);
    for (int i = 0; i < 100; i++)
        ck_assert_str_eq(name_of(a.repo, "h1"), "Aria");
    ck_assert_uint_eq(near_hits(a.repo), before + 100);
    /* a list too */
    rc_list *l = NULL;
    ck_assert_int_eq(rc_hero_find_by_language(a.repo, "en", &l), RC_OK);
    rc_list_free(l); /* database, fills Redis */
    ck_assert_int_eq(rc_hero_find_by_language(a.repo, "en", &l), RC_OK);
    rc_list_free(l); /* Redis, into the near cache */
    before = near_hits(a.repo);
    ck_assert_int_eq(rc_hero_find_by_language(a.repo, "en", &l), RC_OK);
    ck_assert_uint_eq(l->len, 1);
    rc_list_free(l);
    ck_assert_uint_eq(near_hits(a.repo), before + 1);
    /* this process's write is read back at once */
    put_hero(a.repo, "h1", "Bria");
    ck_assert_str_eq(name_of(a.repo, "h1"), "Bria");
    ck_assert_int_eq(rc_hero_find_by_language(a.repo, "en", &l), RC_OK);
    ck_assert_str_eq(((rc_hero *)l->items[0])->name, "Bria");
    rc_list_free(l);
    close_side(&a);
}
END_TEST

START_TEST(test_packed_results)
{
    side a;
    open_side(&a, NULL);
    rc_strategy st;
    rc_repo *inner = NULL, *packed = NULL;
    rc_cached_repo_options o = {.own_inner = true, .packed_results = true};
    ck_assert_int_eq(rc_sqlite_repo_new(a.db, &rc_hero_entity, &inner), RC_OK);
    ck_assert_int_eq(rc_strategy_hero(NULL, &st), RC_OK);
    ck_assert_int_eq(rc_cached_repo_new(inner, a.cache, &st, &o, &packed), RC_OK);
    put_hero(a.repo, "h1", "Aria");
    ck_assert_str_eq(name_of(packed, "h1"), "Aria"); /* database, fills Redis */
    ck_assert_str_eq(name_of(packed, "h1"), "Aria"); /* Redis, into the near cache */
    uint64_t before = near_hits(packed);
    rc_hero *h = NULL;
    ck_assert_int_eq(rc_repo_find_by_id(packed, "h1", (void **)&h), RC_OK);
    ck_assert_uint_eq(near_hits(packed), before + 1);
    ck_assert_uint_gt(h->packed_bytes_, sizeof *h); /* one block */
    ck_assert_str_eq(h->appearance, "tall");
    /* changed by assignment and written back: the new value is read */
    h->name = strdup("Bria");
    ck_assert_int_eq(rc_repo_update(packed, h, NULL, NULL), RC_OK);
    rc_hero_free(h);
    ck_assert_str_eq(name_of(packed, "h1"), "Bria");
    /* the same store, read through an ordinary repository: ordinary copies */
    ck_assert_str_eq(name_of(a.repo, "h1"), "Bria");
    ck_assert_int_eq(rc_repo_find_by_id(a.repo, "h1", (void **)&h), RC_OK);
    ck_assert_uint_eq(h->packed_bytes_, 0);
    free(h->name);
    h->name = strdup("mine");
    rc_hero_free(h);
    /* lists: packed items */
    rc_list *l = NULL;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(rc_hero_find_by_language(packed, "en", &l), RC_OK);
        ck_assert_uint_eq(l->len, 1);
        if (i == 2)
            ck_assert_uint_gt(((rc_hero *)l->items[0])->packed_bytes_, 0);
        rc_list_free(l);
    }
    rc_repo_free(packed);
    close_side(&a);
}
END_TEST

START_TEST(test_other_service_write_seen_at_once)
{
    side a, b;
    open_side(&a, NULL);
    open_side(&b, NULL);
    put_hero(b.repo, "h1", "v0");
    char want[16];
    for (int i = 1; i <= 300; i++) {
        ck_assert_str_eq(name_of(a.repo, "h1"), i == 1 ? "v0" : want);
        ck_assert_str_eq(name_of(a.repo, "h1"), i == 1 ? "v0" : want); /* warm */
        snprintf(want, sizeof want, "v%d", i);
        put_hero(b.repo, "h1", want);
        /* b's write has returned: a never answers from before it */
        ck_assert_str_eq(name_of(a.repo, "h1"), want);
    }
    ck_assert_uint_gt(near_hits(a.repo), 250);
    close_side(&b);
    close_side(&a);
}
END_TEST

START_TEST(test_invalidation_overtaking_the_reply_fences_the_fill)
{
    /* The in-flight race, forced: a read claims the key, reads the old value
     * from Redis, and before it stores it an invalidation arrives (another
     * client's SET). The value never enters the near cache. */
    side a;
    open_side(&a, NULL);
    rc_cache *c = a.cache;
    redisContext *raw = th_redis_connect(&shared, NULL);
    int refused = 0;
    for (int i = 0; i < 200; i++) {
        rc_tier_fill f = {0}; /* packed and began_ns are the caller's */
        rc_near_value v;
        ck_assert_int_eq(rc_cache_tier_begin(c, "hero:race", 0, &v, &f), RC_NEAR_FILL);
        redisReply *r = redisCommand(raw, "SET hero:race new%d", i); /* the write */
        freeReplyObject(r);
        rc_near_value old = {.kind = RC_NEAR_BYTES, .ptr = strdup("old"), .len = 3};
        refused += !rc_cache_tier_put(c, "hero:race", &f, &old, 3, 60);
        rc_near_value got;
        ck_assert_int_ne(rc_cache_tier_begin(c, "hero:race", 0, &got, &f), RC_NEAR_HIT);
        rc_cache_tier_abandon(c, "hero:race", &f);
    }
    ck_assert_int_eq(refused, 200);
    redisFree(raw);
    close_side(&a);
}
END_TEST

START_TEST(test_redis_ttl_bounds_the_near_cache)
{
    side a;
    open_side(&a, NULL);
    put_hero(a.repo, "h1", "Aria");
    ck_assert_str_eq(name_of(a.repo, "h1"), "Aria");
    redisContext *raw = th_redis_connect(&shared, NULL);
    redisReply *r = redisCommand(raw, "PEXPIRE hero:h1 300");
    freeReplyObject(r);
    /* PEXPIRE is a write: the near copy goes; the next read takes Redis's
     * value with its 300 ms left */
    ck_assert_str_eq(name_of(a.repo, "h1"), "Aria");
    ck_assert_str_eq(name_of(a.repo, "h1"), "Aria");
    rc_cache_stats cs;
    rc_cache_get_stats(a.cache, &cs);
    ck_assert_uint_eq(cs.near_entries, 1);
    /* the database changes behind the cache's back; once Redis's key has
     * expired the near cache must not answer either */
    rc_sqlite_db *db = NULL;
    rc_repo *plain = NULL;
    ck_assert_int_eq(rc_sqlite_open(db_path, &db), RC_OK);
    ck_assert_int_eq(rc_sqlite_repo_new(db, &rc_hero_entity, &plain), RC_OK);
    put_hero(plain, "h1", "Behind");
    usleep(400000);
    ck_assert_str_eq(name_of(a.repo, "h1"), "Behind");
    rc_repo_free(plain);
    rc_sqlite_free(db);
    redisFree(raw);
    close_side(&a);
}
END_TEST

/* ---- single flight ---- */

static atomic_int loads;
static void count_load(void *ud, const char *key)
{
    (void)ud;
    (void)key;
    atomic_fetch_add(&loads, 1);
    usleep(20000); /* a 20 ms database load */
}

typedef struct reader {
    rc_repo *repo;
    int rc;
} reader;

static void *read_one(void *p)
{
    reader *r = p;
    void *e = NULL;
    r->rc = rc_repo_find_by_id(r->repo, "h1", &e);
    rc_hero_free(e);
    return NULL;
}

START_TEST(test_single_flight_threads)
{
    side a;
    open_side(&a, NULL);
    put_hero(a.repo, "h1", "Aria");
    rc_repo_free(a.repo); /* again, with a hook that counts the loads */
    rc_strategy st;
    rc_repo *inner = NULL;
    rc_cached_repo_options o = {.own_inner = true, .fill_hook = count_load};
    ck_assert_int_eq(rc_sqlite_repo_new(a.db, &rc_hero_entity, &inner), RC_OK);
    ck_assert_int_eq(rc_strategy_hero(NULL, &st), RC_OK);
    ck_assert_int_eq(rc_cached_repo_new(inner, a.cache, &st, &o, &a.repo), RC_OK);
    int worst = 0;
    for (int burst = 0; burst < 10; burst++) {
        ck_assert_int_eq(rc_cached_repo_invalidate(a.repo, "all", NULL, 0, NULL), RC_OK);
        atomic_store(&loads, 0);
        enum { T = 16 };
        reader rd[T];
        pthread_t th[T];
        for (int i = 0; i < T; i++) {
            rd[i] = (reader){a.repo, -99};
            pthread_create(&th[i], NULL, read_one, &rd[i]);
        }
        for (int i = 0; i < T; i++) {
            pthread_join(th[i], NULL);
            ck_assert_int_eq(rd[i].rc, RC_OK);
        }
        worst = atomic_load(&loads) > worst ? atomic_load(&loads) : worst;
    }
    fprintf(stderr, "near: 16 concurrent cold reads in one process: at most %d loads\n", worst);
    ck_assert_int_eq(worst, 1);
    close_side(&a);
}
END_TEST

/* ---- another process ---- */

/* A writer process updates h1 and, after each update returns, publishes its
 * number through a pipe; this process (settings kv) reads h1, warm in its
 * near cache, and checks every read against the last number published
 * before the read began. Returns the stale reads; *reads, *hits. */
static int writer_process(const char *const *kv, int *reads_out, uint64_t *hits)
{
    enum { WRITES = 400 };
    side w0;
    open_side(&w0, NULL);
    put_hero(w0.repo, "h1", "0");
    close_side(&w0);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        side w;
        open_side(&w, NULL);
        char v[16];
        for (int i = 1; i <= WRITES; i++) {
            snprintf(v, sizeof v, "%d", i);
            put_hero(w.repo, "h1", v);
            ck_assert_int_eq(write(fds[1], &i, sizeof i), (ssize_t)sizeof i);
            usleep(2000);
        }
        close_side(&w);
        _exit(0);
    }
    close(fds[1]);
    side a;
    open_side(&a, kv);
    int published = 0, violations = 0, reads = 0, n;
    while ((n = (int)read(fds[0], &published, sizeof published)) == (int)sizeof published) {
        for (int k = 0; k < 20; k++, reads++)
            violations += atoi(name_of(a.repo, "h1")) < published;
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(published, WRITES);
    *reads_out = reads;
    *hits = near_hits(a.repo);
    close(fds[0]);
    close_side(&a);
    return violations;
}

START_TEST(test_writer_process_never_leaves_a_stale_read)
{
    int reads;
    uint64_t hits;
    int stale = writer_process(NULL, &reads, &hits);
    fprintf(stderr, "near: CACHE_L1_STRICT=true: %d reads behind a writer process: %d stale, "
                    "%llu near hits\n", reads, stale, (unsigned long long)hits);
    ck_assert_int_eq(stale, 0);
    ck_assert_uint_gt(hits, (uint64_t)reads / 2);
}
END_TEST

START_TEST(test_relaxed_mode_window_measured)
{
    /* Without the read on the hit path, a read in the moment between an
     * invalidation reaching the socket and the thread waking can be stale:
     * the figure is printed (docs/consistency.md quotes it); the reads must
     * still come from the near cache. */
    static const char *const relaxed[] = {"CACHE_L1_STRICT", "false", NULL};
    int reads;
    uint64_t hits;
    int stale = writer_process(relaxed, &reads, &hits);
    fprintf(stderr, "near: CACHE_L1_STRICT=false: %d reads behind a writer process: %d stale "
                    "(%.0f per million), %llu near hits\n", reads, stale,
            1e6 * stale / reads, (unsigned long long)hits);
    ck_assert_uint_gt(hits, (uint64_t)reads / 2);
}
END_TEST

START_TEST(test_off_means_off)
{
    static const char *const off[] = {"CACHE_L1_ENABLED", "false", NULL};
    rc_cache *c = th_cache_new(shared.url, off);
    rc_cache_stats cs;
    rc_cache_get_stats(c, &cs);
    ck_assert(!cs.near_coherent);
    rc_tier_fill f = {0}; /* packed and began_ns are the caller's */
    rc_near_value v;
    ck_assert_int_eq(rc_cache_tier_begin(c, "hero:x", 0, &v, &f), 0);
    rc_cache_free(c);
}
END_TEST

static Suite *near_cache_suite(void)
{
    Suite *s = suite_create("near_cache");
    const th_case cases[] = {
        {"warm_read_in_process", test_warm_read_in_process},
        {"packed_results", test_packed_results},
        {"other_service_write", test_other_service_write_seen_at_once},
        {"in_flight_race", test_invalidation_overtaking_the_reply_fences_the_fill},
        {"redis_ttl", test_redis_ttl_bounds_the_near_cache},
        {"single_flight_threads", test_single_flight_threads},
        {"writer_process", test_writer_process_never_leaves_a_stale_read},
        {"relaxed_window", test_relaxed_mode_window_measured},
        {"off", test_off_means_off},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], setup, teardown, 60);
    return s;
}

int main(void)
{
    return th_run_suite(near_cache_suite());
}
