/* check_cluster_near.c - the near cache over a real Redis Cluster of three
 * masters and three replicas (support/cluster.h): it serves hits for keys
 * on every master; two services sharing a database and the cluster, one
 * writing keys on three masters while the other reads, with a slot
 * migrated meanwhile: no read older than a returned write, and hits from
 * the near cache among them; a master killed under the same writer and
 * reader: the near cache emptied at once, serving again once its replica
 * took over, no caller error and no stale read. */
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static th_cluster cl;

#define KEYS 3 /* one hero on each master */

/* Services (sides) on the cluster, their keys under prefix; every side of
 * a test shares one SQLite file, as processes sharing a database do. */
static void open_side(th_side *s, const char *prefix, const char *db)
{
    const char *kv[] = {"CACHE_KEY_PREFIX", prefix, "CIRCUIT_BREAKER_TIMEOUT", "1",
                        "REDIS_SOCKET_TIMEOUT", "0.5", NULL};
    th_side_open(s, th_cluster_url(&cl), db, kv, false);
}

static rc_cache_stats stats_of(const th_side *s)
{
    rc_cache_stats st;
    ck_assert_int_eq(rc_cache_get_stats(s->cache, &st), RC_OK);
    return st;
}

/* Whether hero id reads as name through s. */
static bool reads_as(const th_side *s, const char *id, const char *name)
{
    rc_hero *h = NULL;
    ck_assert_msg(rc_repo_find_by_id(s->repo, id, (void **)&h) == RC_OK, "%s", rc_errmsg());
    bool same = strcmp(h->name, name) == 0;
    rc_hero_free(h);
    return same;
}

/* Hits of the near cache of s so far. */
static uint64_t near_hits(const th_side *s) { return stats_of(s).near_hits; }

/* ids[m] = a hero id whose key (prefix + "hero:" + id) the m-th master
 * serves, for KEYS different masters; masters[m] its node. */
static void one_per_master(const char *prefix, char ids[KEYS][16], int masters[KEYS])
{
    int found = 0;
    int any = th_cluster_other_master(&cl, -1);
    for (int i = 0; found < KEYS && i < 1000; i++) {
        char id[16], key[64];
        snprintf(id, sizeof id, "h%d", i);
        snprintf(key, sizeof key, "%shero:%s", prefix, id);
        int m = th_cluster_owner(&cl, any, rc_slot(key, strlen(key)));
        bool seen = false;
        for (int j = 0; j < found; j++)
            seen = seen || masters[j] == m;
        if (!seen) {
            masters[found] = m;
            snprintf(ids[found++], 16, "%s", id);
        }
    }
    ck_assert_int_eq(found, KEYS);
}

static void put_hero(const th_side *s, bool is_update, const char *id, const char *name)
{
    rc_hero *h = th_hero(id, name);
    int st = is_update ? rc_repo_update(s->repo, h, NULL, NULL) : rc_repo_save(s->repo, h, NULL);
    ck_assert_msg(st == RC_OK, "%s", rc_errmsg());
    rc_hero_free(h);
}

START_TEST(test_near_hits_on_every_master)
{
    char *db = th_tmpfile("near-hits.db"), ids[KEYS][16];
    int masters[KEYS];
    th_side s;
    open_side(&s, "n1:", db);
    one_per_master("n1:", ids, masters);
    th_await(stats_of(&s).near_coherent, TH_WAIT_SECONDS); /* all three armed */
    for (int k = 0; k < KEYS; k++) {
        put_hero(&s, false, ids[k], "Ann");
        ck_assert(reads_as(&s, ids[k], "Ann")); /* fills */
    }
    uint64_t before = near_hits(&s);
    for (int k = 0; k < KEYS; k++)
        ck_assert(reads_as(&s, ids[k], "Ann"));
    ck_assert_uint_eq(near_hits(&s), before + KEYS);
    rc_cache_stats st = stats_of(&s);
    ck_assert_uint_ge(st.near_entries, KEYS);
    ck_assert_uint_eq(st.errors, 0);
    th_side_close(&s);
    free(db);
}
END_TEST

/* ---- a writer and a reader in two services ---- */

typedef struct race {
    th_side writer, reader;   /* two services on one database */
    char *db;
    int masters[KEYS];        /* the master of each id's key */
    pthread_t wt, rt;
    char ids[KEYS][16];
    atomic_int committed[KEYS]; /* the last version whose update returned */
    _Atomic double committed_at[KEYS]; /* when it returned */
    atomic_bool stop;
    atomic_bool after;        /* reads from now on are counted in stale_after */
    atomic_int errors, stale, stale_after, reads, writes;
    _Atomic double max_lag;   /* the stalest read: how long after the write it began */
} race;

static void *writer(void *p)
{
    race *g = p;
    for (int v = 1; !atomic_load(&g->stop); v++) {
        int k = v % KEYS;
        char name[32];
        snprintf(name, sizeof name, "v%d", v);
        rc_hero *h = th_hero(g->ids[k], name);
        if (rc_repo_update(g->writer.repo, h, NULL, NULL) != RC_OK)
            atomic_fetch_add(&g->errors, 1);
        else {
            atomic_store(&g->committed_at[k], th_now());
            atomic_store(&g->committed[k], v);
        }
        rc_hero_free(h);
        atomic_fetch_add(&g->writes, 1);
        usleep(200); /* room for the reader's hits between writes */
    }
    return NULL;
}

static void *reader(void *p)
{
    race *g = p;
    for (int i = 0; !atomic_load(&g->stop); i++) {
        int k = i % KEYS, before = atomic_load(&g->committed[k]);
        bool after = atomic_load(&g->after);
        double began = th_now(), lag = began - atomic_load(&g->committed_at[k]);
        rc_hero *h = NULL;
        if (rc_repo_find_by_id(g->reader.repo, g->ids[k], (void **)&h) != RC_OK) {
            atomic_fetch_add(&g->errors, 1);
            continue;
        }
        if (atoi(h->name + 1) < before) {
            atomic_fetch_add(after ? &g->stale_after : &g->stale, 1);
            if (lag > atomic_load(&g->max_lag))
                atomic_store(&g->max_lag, lag); /* one reader: no race */
        }
        rc_hero_free(h);
        atomic_fetch_add(&g->reads, 1);
    }
    return NULL;
}

/* Opens g's two services (keys under prefix), saves one hero per master,
 * waits until the reader's near cache serves and starts both threads. */
static void race_start(race *g, const char *prefix)
{
    g->db = th_tmpfile("near-race.db");
    open_side(&g->writer, prefix, g->db);
    open_side(&g->reader, prefix, g->db);
    one_per_master(prefix, g->ids, g->masters);
    for (int k = 0; k < KEYS; k++)
        put_hero(&g->writer, false, g->ids[k], "v0");
    th_await(stats_of(&g->reader).near_coherent, TH_WAIT_SECONDS);
    ck_assert_int_eq(pthread_create(&g->wt, NULL, writer, g), 0);
    ck_assert_int_eq(pthread_create(&g->rt, NULL, reader, g), 0);
    usleep(300000);
}

/* Stops both threads. */
static void race_stop(race *g)
{
    atomic_store(&g->stop, true);
    pthread_join(g->wt, NULL);
    pthread_join(g->rt, NULL);
}

static void race_close(race *g)
{
    th_side_close(&g->writer);
    th_side_close(&g->reader);
    free(g->db);
}

START_TEST(test_coherent_across_services_through_a_migration)
{
    race g = {0};
    race_start(&g, "c1:");
    th_side *r = &g.reader;
    int *masters = g.masters;
    uint64_t hits0 = near_hits(r);
    char key[64];
    snprintf(key, sizeof key, "c1:hero:%s", g.ids[0]);
    unsigned slot = rc_slot(key, strlen(key));
    int to = masters[1];
    ck_assert_int_eq(th_cluster_migrate_slot(&cl, slot, masters[0], to), 0);
    usleep(300000);
    race_stop(&g);
    uint64_t hits = near_hits(r) - hits0;
    printf("near cache across two services, a slot migrated meanwhile: %d reads (%llu near "
           "hits), %d writes, %d errors, %d stale reads\n",
           atomic_load(&g.reads), (unsigned long long)hits, atomic_load(&g.writes),
           atomic_load(&g.errors), atomic_load(&g.stale));
    ck_assert_int_eq(th_cluster_owner(&cl, to, slot), to);
    ck_assert_int_gt(atomic_load(&g.writes), 10);
    ck_assert_int_eq(atomic_load(&g.errors), 0);
    ck_assert_int_eq(atomic_load(&g.stale), 0);
    ck_assert_uint_gt(hits, 0);
    ck_assert_uint_gt(stats_of(r).near_invalidations, 0);
    race_close(&g);
}
END_TEST

/* Whether c's map names node i master of slot. */
static bool routes_to(rc_cache *c, unsigned slot, int i)
{
    rc_slotmap *m = rc_cluster_map(c);
    const rc_slotnode *n = m ? rc_slotmap_master(m, slot) : NULL;
    bool yes = n && n->port == cl.node[i].port;
    rc_slotmap_release(m);
    return yes;
}

START_TEST(test_master_killed_under_load)
{
    race g = {0};
    race_start(&g, "k1:");
    th_side *r = &g.reader;
    int *masters = g.masters;
    char key[64];
    snprintf(key, sizeof key, "k1:hero:%s", g.ids[0]);
    unsigned slot = rc_slot(key, strlen(key));
    rc_cache_stats st = stats_of(r);
    ck_assert_uint_gt(st.near_entries, 0);
    double t0 = th_now();
    th_cluster_kill(&cl, masters[0]);
    /* the killed master's subscriber sees EOF: coherence lost, the near
     * cache emptied (its values; outage entries share its store) and not
     * serving until the replica has taken over */
    th_await(stats_of(r).near_coherence_losses > st.near_coherence_losses, TH_WAIT_SECONDS);
    ck_assert(!stats_of(r).near_coherent);
    int promoted = th_cluster_await_failover(&cl, masters[0], TH_WAIT_SECONDS);
    ck_assert_int_ge(promoted, 0);
    th_await(stats_of(r).near_coherent, TH_WAIT_SECONDS);
    double serving = th_now() - t0;
    /* After: both services route to the promoted replica, and every
     * invalidation a write could not deliver meanwhile has been applied
     * from the outbox (every CACHE_OUTBOX_POLL_MS by either service). */
    th_await(routes_to(g.writer.cache, slot, promoted) && routes_to(r->cache, slot, promoted) &&
                 !rc_outbox_pending(r->cache),
             TH_WAIT_SECONDS);
    atomic_store(&g.after, true);
    double after = th_now() - t0;
    uint64_t hits = near_hits(r);
    usleep(500000);
    race_stop(&g);
    printf("master killed under a writer and a reader in two services: near cache coherence "
           "lost at once, serving again after %.2f s, both services on the promoted replica "
           "and the outbox applied after %.2f s; %d reads (%llu near hits after), %d writes, "
           "%d caller errors; %d stale reads before that (the stalest began %.1f ms after its "
           "write returned), %d after\n",
           serving, after, atomic_load(&g.reads), (unsigned long long)(near_hits(r) - hits),
           atomic_load(&g.writes), atomic_load(&g.errors), atomic_load(&g.stale),
           1e3 * atomic_load(&g.max_lag), atomic_load(&g.stale_after));
    ck_assert_int_eq(atomic_load(&g.errors), 0);
    ck_assert_int_eq(atomic_load(&g.stale_after), 0);
    ck_assert_int_gt(atomic_load(&g.writes), 10);
    ck_assert_uint_gt(near_hits(r), hits);
    race_close(&g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cluster_near");
    const th_case cases[] = {
        {"near_hits_on_every_master", test_near_hits_on_every_master},
        {"coherent_across_services_through_a_migration",
         test_coherent_across_services_through_a_migration},
        {"master_killed_under_load", test_master_killed_under_load}, /* last: a node dies */
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], NULL, NULL, 0);
    return th_cluster_run(&cl, s);
}
