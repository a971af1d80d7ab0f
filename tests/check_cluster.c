/* check_cluster.c - the cached repository through a real Redis Cluster of
 * three masters and three replicas (support/cluster.h), with
 * REDIS_CLUSTER_NODES: reads of every kind with their keys on the masters
 * of their slots, a write whose old and new query keys live on different
 * masters invalidating both, invalidate all on every master, keys with
 * braces, MOVED after a slot migrates and ASK during a migration, and a
 * master killed: errors only for its slots' keys, the calls answered from
 * the database, recovery once its replica takes over, no stale read after. */
#include "cache/service.h"
#include "cluster.h"
#include "core/slot.h"
#include "side.h"

#include "repocache/cached_repository.h"
#include "repocache/settings.h"
#include "repocache/sqlite_repository.h"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static th_cluster cl;

#define cmd(...) th_cluster_cmd(&cl, __VA_ARGS__)
#define a_master(not ) th_cluster_other_master(&cl, not )

/* The master serving key, checked against CLUSTER KEYSLOT. */
static int owner(const char *key)
{
    int m = a_master(-1);
    unsigned slot = rc_slot(key, strlen(key));
    redisReply *r = cmd(m, "CLUSTER KEYSLOT %s", key);
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    ck_assert_int_eq(r->integer, slot);
    freeReplyObject(r);
    return th_cluster_owner(&cl, m, slot);
}

/* Whether key exists on its master. */
static bool stored(const char *key)
{
    redisReply *r = cmd(owner(key), "EXISTS %s", key);
    bool yes = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return yes;
}

/* Keys matching pattern on every master. */
static long long count_keys(const char *pattern)
{
    long long n = 0;
    ck_assert_int_eq(th_cluster_roles(&cl), 0);
    for (int i = 0; i < TH_CLUSTER_NODES; i++) {
        if (!th_cluster_alive(&cl, i) || cl.master_of[i] >= 0)
            continue;
        char cursor[32] = "0";
        do {
            redisReply *r = cmd(i, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
            ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
            snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
            n += (long long)r->element[1]->elements;
            freeReplyObject(r);
        } while (strcmp(cursor, "0") != 0);
    }
    return n;
}

/* A side (service, SQLite file, cached hero repository) on the cluster,
 * its keys under prefix. */
static void open_side(th_side *s, const char *prefix)
{
    const char *kv[] = {"CACHE_KEY_PREFIX", prefix, "CIRCUIT_BREAKER_TIMEOUT", "1",
                        "REDIS_SOCKET_TIMEOUT", "0.5", NULL};
    char name[64];
    snprintf(name, sizeof name, "cluster-%.2s.db", prefix);
    char *db = th_tmpfile(name);
    th_side_open(s, th_cluster_url(&cl), db, kv, false);
    free(db);
}

/* Saves (or, with is_update, updates) hero id with name and lang. */
static void write_hero(rc_repo *r, bool is_update, const char *id, const char *name,
                       const char *lang)
{
    rc_hero *h = th_hero(id, name);
    free(h->language);
    h->language = strdup(lang);
    int st = is_update ? rc_repo_update(r, h, NULL, NULL) : rc_repo_save(r, h, NULL);
    ck_assert_msg(st == RC_OK, "%s", rc_errmsg());
    rc_hero_free(h);
}
#define save(r, id, name, lang) write_hero(r, false, id, name, lang)
#define update(r, id, name, lang) write_hero(r, true, id, name, lang)

/* The name of hero id as read through r. */
static char *name_of(rc_repo *r, const char *id)
{
    rc_hero *h = NULL;
    ck_assert_msg(rc_repo_find_by_id(r, id, (void **)&h) == RC_OK, "%s", rc_errmsg());
    char *n = strdup(h->name);
    rc_hero_free(h);
    return n;
}

/* How many heroes the named query (by_language, by_name) finds for arg. */
static size_t found(rc_repo *r, const char *query, const char *arg)
{
    rc_list *l = NULL;
    const char *args[1] = {arg};
    ck_assert_msg(rc_repo_find_by_query(r, query, args, 1, &l) == RC_OK, "%s", rc_errmsg());
    size_t n = l->len;
    rc_list_free(l);
    return n;
}
#define by_language(r, lang) found(r, "by_language", lang)
#define by_name(r, name) found(r, "by_name", name)

START_TEST(test_reads_of_every_kind)
{
    th_side s;
    open_side(&s, "r1:");
    save(s.repo, "h1", "Ann", "en");
    save(s.repo, "h2", "{B}ob{", "en");
    save(s.repo, "h3", "Cy}{", "ru");
    char *n = name_of(s.repo, "h1");
    ck_assert_str_eq(n, "Ann");
    free(n);
    n = name_of(s.repo, "h1"); /* from Redis now */
    free(n);
    ck_assert(stored("r1:hero:h1"));
    rc_list *l = NULL;
    ck_assert_int_eq(rc_repo_list_all(s.repo, &l), RC_OK);
    ck_assert_uint_eq(l->len, 3);
    rc_list_free(l);
    ck_assert(stored("r1:hero:all"));
    ck_assert_uint_eq(by_language(s.repo, "en"), 2);
    ck_assert_uint_eq(by_language(s.repo, "en"), 2);
    ck_assert(stored("r1:hero:lang:en"));
    ck_assert_int_eq(rc_hero_find_by_name(s.repo, "{B}ob{", &l), RC_OK);
    ck_assert_uint_eq(l->len, 1);
    rc_list_free(l);
    ck_assert(stored("r1:hero:name:{B}ob{"));
    void *none = NULL;
    ck_assert_int_eq(rc_repo_find_by_id(s.repo, "ghost", &none), RC_ENOTFOUND);
    ck_assert_int_eq(rc_repo_find_by_id(s.repo, "ghost", &none), RC_ENOTFOUND);
    /* the not-found entry lives in its data key's slot */
    char aux[128];
    snprintf(aux, sizeof aux, "r1:hero:~none:{%s}ghost",
             rc_slot_tag(rc_slot("r1:hero:ghost", 13)));
    ck_assert(stored(aux));
    ck_assert_int_eq(owner(aux), owner("r1:hero:ghost"));
    rc_cached_repo_stats st;
    ck_assert_int_eq(rc_cached_repo_get_stats(s.repo, &st), RC_OK);
    ck_assert_uint_ge(st.hits, 3);
    ck_assert_uint_ge(st.misses, 4);
    ck_assert_uint_eq(st.errors, 0);
    /* counted on every master: h1, all, lang:en, name:{B}ob{, ~none:ghost */
    ck_assert_int_eq(st.keys, count_keys("r1:hero:*"));
    ck_assert_int_ge(st.keys, 5);
    ck_assert(st.keys_exact);
    rc_cache_stats cs;
    ck_assert_int_eq(rc_cache_get_stats(s.cache, &cs), RC_OK);
    ck_assert_uint_eq(cs.errors, 0);
    ck_assert_int_eq(cs.circuit, RC_CIRCUIT_CLOSED);
    ck_assert_int_ge(cs.keys, st.keys); /* DBSIZE of every master */
    ck_assert_msg(cs.used_memory_human[0], "no memory figure");
    th_side_close(&s);
}
END_TEST

START_TEST(test_write_invalidates_keys_on_two_masters)
{
    th_side s;
    open_side(&s, "w1:");
    /* two names whose query keys live on different masters */
    char a[32] = "Ann", b[32] = "";
    for (int i = 0; !b[0] && i < 100; i++) {
        char key[64];
        snprintf(key, sizeof key, "w1:hero:name:N{%d}", i);
        if (owner(key) != owner("w1:hero:name:Ann"))
            snprintf(b, sizeof b, "N{%d}", i);
    }
    ck_assert(b[0]);
    char ka[64], kb[64];
    snprintf(ka, sizeof ka, "w1:hero:name:%s", a);
    snprintf(kb, sizeof kb, "w1:hero:name:%s", b);
    ck_assert_int_ne(owner(ka), owner(kb));
    save(s.repo, "h1", a, "en");
    ck_assert_uint_eq(by_name(s.repo, a), 1);
    ck_assert_uint_eq(by_name(s.repo, b), 0);
    ck_assert(stored(ka) && stored(kb));
    update(s.repo, "h1", b, "en");
    ck_assert(!stored(ka) && !stored(kb));
    ck_assert_uint_eq(by_name(s.repo, a), 0);
    ck_assert_uint_eq(by_name(s.repo, b), 1);
    char *n = name_of(s.repo, "h1");
    ck_assert_str_eq(n, b);
    free(n);
    th_side_close(&s);
}
END_TEST

/* invalidate all through r: at least min keys removed, none left on any
 * master under pattern. */
static void invalidate_all(rc_repo *r, const char *pattern, long long min)
{
    long long removed = 0;
    ck_assert_msg(rc_cached_repo_invalidate(r, "all", NULL, 0, &removed) == RC_OK, "%s",
                  rc_errmsg());
    ck_assert_int_ge(removed, min);
    ck_assert_int_eq(count_keys(pattern), 0);
}

START_TEST(test_invalidate_all_on_every_master)
{
    th_side s;
    open_side(&s, "a1:");
    char id[16];
    for (int i = 0; i < 30; i++) {
        snprintf(id, sizeof id, "h%d", i);
        save(s.repo, id, "Ann", "en");
        free(name_of(s.repo, id));
    }
    long long n = count_keys("a1:hero:*");
    ck_assert_int_ge(n, 30);
    invalidate_all(s.repo, "a1:hero:*", 30);
    th_side_close(&s);
}
END_TEST

/* A prefix with a hash tag puts every key on one master; the others are
 * still checked (their identity claims live there) and dropped. */
START_TEST(test_tagged_prefix)
{
    th_side s;
    open_side(&s, "{tn}x:");
    save(s.repo, "h1", "Ann", "en");
    free(name_of(s.repo, "h1"));
    ck_assert_uint_eq(by_language(s.repo, "en"), 1);
    ck_assert(stored("{tn}x:hero:h1") && stored("{tn}x:hero:lang:en"));
    invalidate_all(s.repo, "{tn}x:hero:*", 2);
    ck_assert_int_eq(rc_cache_health_check(s.cache), RC_OK);
    th_side_close(&s);
}
END_TEST

/* The master of key and another one. */
static void masters_of(const char *key, int *from, int *to)
{
    *from = owner(key);
    *to = a_master(*from);
}

START_TEST(test_moved_after_a_migration)
{
    th_side s;
    open_side(&s, "m1:");
    save(s.repo, "h1", "Ann", "en");
    free(name_of(s.repo, "h1"));
    ck_assert(stored("m1:hero:h1"));
    int from, to;
    masters_of("m1:hero:h1", &from, &to);
    unsigned slot = rc_slot("m1:hero:h1", 10);
    ck_assert_int_eq(th_cluster_migrate_slot(&cl, slot, from, to), 0);
    ck_assert_int_eq(owner("m1:hero:h1"), to);
    uint64_t before = atomic_load(&s.cache->cluster->redirects);
    rc_cached_repo_stats st0, st1;
    rc_cached_repo_get_stats(s.repo, &st0);
    char *n = name_of(s.repo, "h1"); /* MOVED, then the new master */
    ck_assert_str_eq(n, "Ann");
    free(n);
    rc_cached_repo_get_stats(s.repo, &st1);
    ck_assert_uint_eq(st1.hits, st0.hits + 1);
    ck_assert_uint_ge(atomic_load(&s.cache->cluster->redirects), before + 1);
    update(s.repo, "h1", "Bea", "en");
    n = name_of(s.repo, "h1");
    ck_assert_str_eq(n, "Bea");
    free(n);
    ck_assert_uint_eq(st1.errors, 0);
    th_side_close(&s);
}
END_TEST

START_TEST(test_ask_during_a_migration)
{
    th_side s;
    open_side(&s, "k1:");
    save(s.repo, "h1", "Ann", "en");
    free(name_of(s.repo, "h1"));
    int from, to;
    masters_of("k1:hero:h1", &from, &to);
    unsigned slot = rc_slot("k1:hero:h1", 10);
    ck_assert_int_eq(th_cluster_migration_begin(&cl, slot, from, to), 0);
    ck_assert_int_eq(th_cluster_migrate_key(&cl, from, to, "k1:hero:h1"), 0);
    uint64_t before = atomic_load(&s.cache->cluster->redirects);
    /* one key: ASK, then ASKING and the command on the target */
    const char *argv[2] = {"GET", "k1:hero:h1"};
    redisReply *r = NULL;
    ck_assert_msg(rc_call_one(s.cache, 2, argv, NULL, &r) == RC_OK, "%s", rc_errmsg());
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    ck_assert_uint_ge(atomic_load(&s.cache->cluster->redirects), before + 1);
    /* a read's script also names the lease, absent on the target: Redis
     * answers TRYAGAIN until the slot has moved; the read is answered
     * from the database meanwhile */
    char *n = name_of(s.repo, "h1");
    ck_assert_str_eq(n, "Ann");
    free(n);
    ck_assert_int_eq(th_cluster_migration_finish(&cl, slot, from, to), 0);
    update(s.repo, "h1", "Bea", "en");
    n = name_of(s.repo, "h1");
    ck_assert_str_eq(n, "Bea");
    free(n);
    th_side_close(&s);
}
END_TEST

/* ---- a slot migrated under two threads ---- */

typedef struct race {
    th_side *side;
    atomic_int committed; /* the last version whose update returned */
    atomic_bool stop;
    atomic_int errors, stale, reads, writes;
} race;

static void *writer(void *p)
{
    race *g = p;
    for (int v = 1; !atomic_load(&g->stop); v++) {
        char name[32];
        snprintf(name, sizeof name, "v%d", v);
        rc_hero *h = th_hero("h1", name);
        if (rc_repo_update(g->side->repo, h, NULL, NULL) != RC_OK)
            atomic_fetch_add(&g->errors, 1);
        else
            atomic_store(&g->committed, v);
        rc_hero_free(h);
        atomic_fetch_add(&g->writes, 1);
    }
    return NULL;
}

static void *reader(void *p)
{
    race *g = p;
    while (!atomic_load(&g->stop)) {
        int before = atomic_load(&g->committed);
        rc_hero *h = NULL;
        if (rc_repo_find_by_id(g->side->repo, "h1", (void **)&h) != RC_OK) {
            atomic_fetch_add(&g->errors, 1);
            continue;
        }
        if (atoi(h->name + 1) < before)
            atomic_fetch_add(&g->stale, 1);
        rc_hero_free(h);
        atomic_fetch_add(&g->reads, 1);
    }
    return NULL;
}

/* Moves every key of slot from `from` to `to` (a key deleted meanwhile is
 * passed over: NOKEY). */
static void move_keys(unsigned slot, int from, int to)
{
    for (;;) {
        redisReply *keys = cmd(from, "CLUSTER GETKEYSINSLOT %u 100", slot);
        ck_assert_int_eq(keys->type, REDIS_REPLY_ARRAY);
        size_t n = keys->elements;
        for (size_t k = 0; k < n; k++) {
            redisReply *r = cmd(from, "MIGRATE 127.0.0.1 %d %s 0 5000", cl.node[to].port,
                                keys->element[k]->str);
            ck_assert_msg(r->type == REDIS_REPLY_STATUS, "MIGRATE: %s", r->str);
            freeReplyObject(r);
        }
        freeReplyObject(keys);
        if (!n)
            return;
        usleep(20000);
    }
}

START_TEST(test_migration_under_two_threads)
{
    th_side s;
    open_side(&s, "t1:");
    save(s.repo, "h1", "v0", "en");
    race g = {.side = &s};
    int from, to;
    masters_of("t1:hero:h1", &from, &to);
    unsigned slot = rc_slot("t1:hero:h1", 10);
    pthread_t w, r;
    ck_assert_int_eq(pthread_create(&w, NULL, writer, &g), 0);
    ck_assert_int_eq(pthread_create(&r, NULL, reader, &g), 0);
    usleep(200000);
    double t0 = th_now();
    ck_assert_int_eq(th_cluster_migration_begin(&cl, slot, from, to), 0);
    usleep(200000); /* reads and writes while the slot is half moved */
    move_keys(slot, from, to);
    usleep(200000);
    ck_assert_int_eq(th_cluster_migration_finish(&cl, slot, from, to), 0);
    double moved = th_now() - t0;
    usleep(300000);
    atomic_store(&g.stop, true);
    pthread_join(w, NULL);
    pthread_join(r, NULL);
    printf("slot %u migrated in %.2f s under two threads: %d reads, %d writes, %d caller "
           "errors, %d stale reads, %llu redirects followed\n",
           slot, moved, atomic_load(&g.reads), atomic_load(&g.writes), atomic_load(&g.errors),
           atomic_load(&g.stale), (unsigned long long)atomic_load(&s.cache->cluster->redirects));
    ck_assert_int_eq(owner("t1:hero:h1"), to);
    ck_assert_int_gt(atomic_load(&g.reads), 10);
    ck_assert_int_gt(atomic_load(&g.writes), 10);
    ck_assert_int_eq(atomic_load(&g.errors), 0);
    ck_assert_int_eq(atomic_load(&g.stale), 0);
    ck_assert_uint_gt(atomic_load(&s.cache->cluster->redirects), 0);
    th_side_close(&s);
}
END_TEST

/* Whether a GET of key reached its master (not the fallback). */
static bool reaches(rc_cache *c, const char *key)
{
    const char *argv[2] = {"GET", key};
    redisReply *r = NULL;
    int st = rc_call_one(c, 2, argv, NULL, &r);
    freeReplyObject(r);
    return st == RC_OK;
}

START_TEST(test_master_killed)
{
    th_side s;
    open_side(&s, "f1:");
    /* one hero on the master to kill, one elsewhere */
    char other[16] = "";
    int victim = owner("f1:hero:h1");
    for (int i = 2; !other[0] && i < 100; i++) {
        char key[32];
        snprintf(key, sizeof key, "f1:hero:h%d", i);
        if (owner(key) != victim)
            snprintf(other, sizeof other, "h%d", i);
    }
    char okey[32];
    snprintf(okey, sizeof okey, "f1:hero:%s", other);
    save(s.repo, "h1", "Ann", "en");
    save(s.repo, other, "Oz", "en");
    free(name_of(s.repo, "h1"));
    free(name_of(s.repo, other));
    double t0 = th_now();
    th_cluster_kill(&cl, victim);
    int victim_failures = 0, other_failures = 0, reads = 0;
    double back = -1;
    while (th_now() - t0 < 30 && back < 0) {
        char *n = name_of(s.repo, "h1"); /* always answered (the database) */
        ck_assert_str_eq(n, "Ann");
        free(n);
        n = name_of(s.repo, other);
        free(n);
        reads += 2;
        other_failures += !reaches(s.cache, okey);
        if (reaches(s.cache, "f1:hero:h1"))
            back = th_now() - t0;
        else
            victim_failures++;
        usleep(20000);
    }
    printf("master killed: its keys back in Redis after %.2f s (%d failed calls on its "
           "slots, %d on the others', %d reads, 0 caller errors)\n",
           back, victim_failures, other_failures, reads);
    ck_assert_msg(back > 0, "the replica never took over");
    ck_assert_int_gt(victim_failures, 0);
    ck_assert_int_eq(other_failures, 0);
    /* no stale read after: a write, then reads through the new master */
    update(s.repo, "h1", "Bea", "en");
    for (int i = 0; i < 10; i++) {
        char *n = name_of(s.repo, "h1");
        ck_assert_str_eq(n, "Bea");
        free(n);
    }
    ck_assert(reaches(s.cache, "f1:hero:h1"));
    th_side_close(&s);
}
END_TEST

/* rc_cache_new refuses what a cluster cannot be, naming the settings. */
START_TEST(test_ambiguous_settings_refused)
{
    const char *combos[][2] = {
        {"REDIS_SENTINELS", "127.0.0.1:26379"},
        {"REDIS_URL", "unix:///tmp/redis.sock"},
        {"REDIS_DB", "2"},
    };
    const char *named[] = {"REDIS_SENTINELS", "unix socket", "REDIS_DB"};
    for (size_t i = 0; i < 3; i++) {
        rc_settings st;
        rc_cache *c = NULL;
        ck_assert_int_eq(rc_settings_defaults(&st), RC_OK);
        ck_assert_int_eq(rc_settings_set(&st, "REDIS_CLUSTER_NODES", "127.0.0.1:1"), RC_OK);
        ck_assert_int_eq(rc_settings_set(&st, combos[i][0], combos[i][1]), RC_OK);
        ck_assert_int_eq(rc_settings_set(&st, "REDIS_SENTINEL_MASTER", "m"), RC_OK);
        ck_assert_int_eq(rc_cache_new(&st, &c), RC_ECONFIG);
        ck_assert_ptr_null(c);
        ck_assert_msg(strstr(rc_errmsg(), named[i]) &&
                          strstr(rc_errmsg(), "REDIS_CLUSTER_NODES"),
                      "%s", rc_errmsg());
        rc_settings_clear(&st);
    }
}
END_TEST

START_TEST(test_nodes_listed)
{
    th_side s;
    open_side(&s, "n1:");
    rc_cache_cluster_node *v = NULL;
    size_t n = 0, masters = 0;
    ck_assert_msg(rc_cache_cluster_nodes(s.cache, &v, &n) == RC_OK, "%s", rc_errmsg());
    ck_assert_uint_eq(n, TH_CLUSTER_NODES);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(v[i].reachable, "%s: %s", v[i].address, v[i].error);
        ck_assert_uint_eq(strlen(v[i].id), 40);
        if (v[i].master) {
            masters++;
            ck_assert_msg(v[i].slots[0], "master %s has no slots", v[i].address);
        } else {
            ck_assert_str_eq(v[i].slots, "");
        }
        ck_assert_msg(i == 0 || v[i - 1].master || !v[i].master, "masters first");
    }
    ck_assert_uint_eq(masters, 3);
    rc_cache_cluster_nodes_free(v, n);
    ck_assert_int_eq(rc_cache_health_check(s.cache), RC_OK);
    th_side_close(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cluster");
    const th_case cases[] = {
        {"ambiguous_settings_refused", test_ambiguous_settings_refused},
        {"nodes_listed", test_nodes_listed},
        {"reads_of_every_kind", test_reads_of_every_kind},
        {"write_invalidates_keys_on_two_masters", test_write_invalidates_keys_on_two_masters},
        {"invalidate_all_on_every_master", test_invalidate_all_on_every_master},
        {"tagged_prefix", test_tagged_prefix},
        {"moved_after_a_migration", test_moved_after_a_migration},
        {"ask_during_a_migration", test_ask_during_a_migration},
        {"migration_under_two_threads", test_migration_under_two_threads},
        {"master_killed", test_master_killed}, /* last: the cluster loses a node */
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], NULL, NULL, 0);
    return th_cluster_run(&cl, s);
}
