/*
 * cluster.c - a Redis Cluster against one Redis server, in the same run.
 *
 *   bench_cluster --db PATH [--reps N]
 *
 * The single side is REDIS_URL; the cluster side is BENCH_CLUSTER_NODES
 * (its seeds, as REDIS_CLUSTER_NODES takes them). Both are services
 * without the near cache (CACHE_L1_ENABLED=false), over one SQLite file,
 * and a second pair with it (strict, the default) for its hits: one
 * subscriber socket polled per hit on the single server, one per master
 * in the cluster.
 * scripts/bench.sh starts a three-master cluster on loopback for it.
 *
 * Hit: find by id through a cached hero repository, every read a Redis hit
 * (warmed first, untimed), one thread, OPS reads per repetition, single and
 * cluster interleaved; the median of --reps (default 9). The target:
 * cluster ops/s / single ops/s >= 0.9.
 *
 * Write: an update of one hero (its language swapped between en and ru)
 * through the cached repository, which removes its by-id key and the keys
 * of the queries it was and is in (all, by_language of both languages,
 * by_name), leases included. The hero is chosen so that those keys live on
 * three masters (their slots, rc_slot, against CLUSTER SLOTS); UPDATES
 * updates per repetition, interleaved as above, and SQLite's own update in
 * the same repetitions for scale. Microseconds per update, median.
 * Keys live under CACHE_KEY_PREFIX + "bench-cluster:" and are removed at the
 * end.
 */
#include "support.h"

#include "core/slot.h"
#include "repocache/cached_repository.h"
#include "repocache/status.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NHEROES 200
#define OPS 4000    /* reads per repetition */
#define UPDATES 400 /* updates per repetition */
#define MAX_REPS 99
#define SUB "bench-cluster:"

static double now(void) { return rc_clock_monotonic(NULL); }

static char *ids[NHEROES];
static char *on_one[NHEROES]; /* the ids whose key the first one's master serves */
static int n_on_one;

/* Reads the n heroes of list through r in turn, OPS reads; ops/s, or -1. */
static double read_list(rc_repo *r, char *const *list, int n, const char *name)
{
    double t0 = now();
    for (size_t i = 0; i < OPS; i++) {
        void *e = NULL;
        if (rc_repo_find_by_id(r, list[i % (size_t)n], &e) != RC_OK || !e) {
            fprintf(stderr, "bench_cluster: %s: a read failed: %s\n", name, rc_errmsg());
            return -1;
        }
        rc_hero_free(e);
    }
    return OPS / (now() - t0);
}

/* Reads every hero through r; ops/s, or -1. */
static double read_all(rc_repo *r, const char *name) { return read_list(r, ids, NHEROES, name); }

/* on_one = the heroes whose key lives on the master of the first's. */
static void pick_on_one(const int owner[RC_SLOTS])
{
    int first = -1;
    for (int i = 0; i < NHEROES; i++) {
        char key[160];
        snprintf(key, sizeof key, "%shero:%s", SUB, ids[i]);
        int m = owner[rc_slot(key, strlen(key))];
        if (first < 0)
            first = m;
        if (m == first)
            on_one[n_on_one++] = ids[i];
    }
}

/* UPDATES updates of h through r, swapping its language; us each, or -1. */
static double update_all(rc_repo *r, rc_hero *h, const char *name)
{
    double t0 = now();
    for (int i = 0; i < UPDATES; i++) {
        const char *lang = strcmp(h->language, "en") == 0 ? "ru" : "en";
        free(h->language);
        h->language = strdup(lang);
        if (!h->language || rc_repo_update(r, h, NULL, NULL) != RC_OK) {
            fprintf(stderr, "bench_cluster: %s: an update failed: %s\n", name, rc_errmsg());
            return -1;
        }
    }
    return (now() - t0) * 1e6 / UPDATES;
}

static int open_side(bench_side *x, const char *db, const char *const *kv)
{
    return bench_side_open(x, db, SUB, kv) || bench_side_wrap(x, NULL) ? -1 : 0;
}

/* Waits (up to 10 s) until x's near cache serves. 0 or -1. */
static int near_serving(const bench_side *x, const char *name)
{
    for (double until = now() + 10; now() < until;) {
        rc_cache_stats st;
        if (rc_cache_get_stats(x->cache, &st) == RC_OK && st.near_coherent)
            return 0;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    fprintf(stderr, "bench_cluster: %s: the near cache never served\n", name);
    return -1;
}

/* The master (its port) of each slot, from CLUSTER SLOTS of the first seed
 * in nodes ("host:port,..."). 0 or -1. */
static int read_owners(const char *nodes, int owner[RC_SLOTS])
{
    char host[256];
    int port = 0;
    if (sscanf(nodes, "%255[^:]:%d", host, &port) != 2)
        return -1;
    redisContext *c = redisConnect(host, port);
    redisReply *r = c && !c->err ? redisCommand(c, "CLUSTER SLOTS") : NULL;
    int st = r && r->type == REDIS_REPLY_ARRAY ? 0 : -1;
    for (size_t i = 0; st == 0 && i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2) {
            st = -1;
            break;
        }
        for (long long s = e->element[0]->integer; s <= e->element[1]->integer && s < RC_SLOTS; s++)
            owner[s] = (int)e->element[2]->element[1]->integer;
    }
    freeReplyObject(r);
    redisFree(c);
    return st;
}

/* How many masters the keys an update of h (en <-> ru) removes live on. */
static int masters_of_write(const bench_side *x, const rc_hero *h, const int owner[RC_SLOTS])
{
    const char *prefix = rc_cache_prefix(x->cache), *en[] = {"en"}, *ru[] = {"ru"},
               *name[] = {h->name};
    char *keys[5] = {NULL};
    int n = 0, seen[5];
    rc_strategy_key_id(&x->st, prefix, h->id, &keys[0]);
    rc_strategy_key_all(&x->st, prefix, &keys[1]);
    rc_strategy_key_query(&x->st, prefix, RC_Q_BY_LANGUAGE, en, 1, &keys[2]);
    rc_strategy_key_query(&x->st, prefix, RC_Q_BY_LANGUAGE, ru, 1, &keys[3]);
    rc_strategy_key_query(&x->st, prefix, RC_Q_BY_NAME, name, 1, &keys[4]);
    for (int i = 0; i < 5; i++) {
        if (!keys[i])
            return -1; /* out of memory: say so as "no span" */
        int m = owner[rc_slot(keys[i], strlen(keys[i]))], known = 0;
        for (int j = 0; j < n; j++)
            known |= seen[j] == m;
        if (!known)
            seen[n++] = m;
        free(keys[i]);
    }
    return n;
}

/* Saves the heroes, then the hero to update: the first whose write's keys
 * live on three masters (*spans: how many they are on). */
static int seed(bench_side *x, const int owner[RC_SLOTS], rc_hero **writer, int *spans)
{
    for (int i = 0; i < NHEROES + 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "Cluster hero %d", i);
        rc_hero *h = bench_hero_new(name, "a bench hero with a long green cloak", "en"), *out = NULL;
        int st = h ? rc_repo_save(x->sqlite, h, (void **)&out) : RC_ENOMEM;
        rc_hero_free(h);
        if (st != RC_OK || !out) {
            fprintf(stderr, "bench_cluster: seeding: %s\n", rc_errmsg());
            return -1;
        }
        if (i < NHEROES) {
            ids[i] = strdup(out->id);
            rc_hero_free(out);
            if (!ids[i])
                return -1;
            continue;
        }
        if ((*spans = masters_of_write(x, out, owner)) >= 3) {
            *writer = out;
            return 0;
        }
        rc_hero_free(out);
    }
    fprintf(stderr, "bench_cluster: no hero's write spans three masters\n");
    return -1;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return bench_quantile(v, (size_t)n, 0.5);
}

int main(int argc, char **argv)
{
    const char *db = NULL, *nodes = getenv("BENCH_CLUSTER_NODES");
    int reps = 9, status = 1, spans = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
            db = argv[++i];
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else
            reps = 0;
    }
    if (!db || !nodes || !getenv("REDIS_URL") || reps <= 0 || reps > MAX_REPS) {
        fprintf(stderr, "usage: REDIS_URL=redis://... BENCH_CLUSTER_NODES=host:port,... "
                        "bench_cluster --db PATH [--reps N<=%d]\n", MAX_REPS);
        return 2;
    }
    bench_unlink_db(db);
    const char *one[] = {"CACHE_L1_ENABLED", "false", "LOG_LEVEL", "error", NULL};
    const char *many[] = {"REDIS_CLUSTER_NODES", nodes, "CACHE_L1_ENABLED", "false",
                          "LOG_LEVEL", "error", NULL};
    const char *one_near[] = {"LOG_LEVEL", "error", NULL};
    const char *many_near[] = {"REDIS_CLUSTER_NODES", nodes, "LOG_LEVEL", "error", NULL};
    static int owner[RC_SLOTS];
    static double hit[5][MAX_REPS], upd[3][MAX_REPS];
    bench_side single = {0}, cluster = {0}, single_near = {0}, cluster_near = {0};
    rc_hero *h = NULL;
    if (open_side(&single, db, one) || open_side(&cluster, db, many) ||
        read_owners(nodes, owner) || seed(&single, owner, &h, &spans) ||
        read_all(single.cached, "single") < 0 || read_all(cluster.cached, "cluster") < 0 ||
        (pick_on_one(owner), 0) ||
        open_side(&single_near, db, one_near) || open_side(&cluster_near, db, many_near) ||
        near_serving(&single_near, "single") || near_serving(&cluster_near, "cluster") ||
        read_all(single_near.cached, "single, near") < 0 ||
        read_all(cluster_near.cached, "cluster, near") < 0)
        goto out;
    for (int r = 0; r < reps; r++) {
        if ((hit[0][r] = read_all(single.cached, "single")) < 0 ||
            (hit[1][r] = read_all(cluster.cached, "cluster")) < 0 ||
            (hit[4][r] = read_list(cluster.cached, on_one, n_on_one, "cluster, one master")) < 0 ||
            (hit[2][r] = read_all(single_near.cached, "single, near")) < 0 ||
            (hit[3][r] = read_all(cluster_near.cached, "cluster, near")) < 0 ||
            (upd[0][r] = update_all(single.sqlite, h, "SQLite")) < 0 ||
            (upd[1][r] = update_all(single.cached, h, "single")) < 0 ||
            (upd[2][r] = update_all(cluster.cached, h, "cluster")) < 0)
            goto out;
    }
    double hs = median(hit[0], reps), hc = median(hit[1], reps);
    printf("Redis Cluster (3 masters, loopback) against one redis-server\n");
    printf("%-52s %12s %10s\n", "find by id, Redis hit", "ops/s", "us/op");
    printf("%-52s %12.0f %10.1f\n", "single server", hs, 1e6 / hs);
    printf("%-52s %12.0f %10.1f\n", "cluster", hc, 1e6 / hc);
    double h1 = median(hit[4], reps);
    printf("%-52s %12.0f %10.1f\n", "cluster, only keys of one master", h1, 1e6 / h1);
    double ns = median(hit[2], reps), nc = median(hit[3], reps);
    printf("%-52s %12s %10s\n", "find by id, near-cache hit (strict)", "ops/s", "us/op");
    printf("%-52s %12.0f %10.2f\n", "single server (one subscriber polled)", ns, 1e6 / ns);
    printf("%-52s %12.0f %10.2f\n", "cluster (every master's subscriber, one poll)", nc, 1e6 / nc);
    printf("%-52s %12s %10s\n", "update of one hero (its keys on 3 masters)", "", "us/op");
    printf("%-52s %12s %10.1f\n", "SQLite alone", "", median(upd[0], reps));
    printf("%-52s %12s %10.1f\n", "cached, single server", "", median(upd[1], reps));
    printf("%-52s %12s %10.1f\n", "cached, cluster (keys on 3 masters)", "", median(upd[2], reps));
    printf("(median of %d repetitions of %d reads and %d updates, interleaved; the write's "
           "keys are on %d masters)\n\n", reps, OPS, UPDATES, spans);
    printf("%-52s %10s %10s\n", "target", "measured", "bound");
    printf("%-52s %9.2fx %9.2fx  %s\n", "cluster Redis hit ops/s / single", hc / hs, 0.9,
           hc / hs >= 0.9 ? "met" : "NOT MET");
    printf("%-52s %9.2fx %10s  %s\n", "  the same, keys of one master / single", h1 / hs, "",
           "(the client's path alone)");
    status = 0;
out:
    if (single.cached)
        rc_cached_repo_invalidate(single.cached, "all", NULL, 0, NULL);
    if (cluster.cached)
        rc_cached_repo_invalidate(cluster.cached, "all", NULL, 0, NULL);
    rc_hero_free(h);
    for (int i = 0; i < NHEROES; i++)
        free(ids[i]);
    bench_side_close(&cluster_near);
    bench_side_close(&single_near);
    bench_side_close(&cluster);
    bench_side_close(&single);
    bench_unlink_db(db);
    return status;
}
