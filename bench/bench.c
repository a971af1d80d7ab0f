/*
 * bench.c - measures the cached repository against SQLite and against the
 * floor of a raw hiredis GET, in one run, against the redis-server named by
 * REDIS_URL (or REDIS_HOST/REDIS_PORT) and a fresh SQLite file.
 *
 *   bench --db PATH [--json] [--reps N] [--scale F]
 *
 * Workloads, each with one thread and again with two threads at once:
 *   find by id from SQLite; from the near cache (strict, the default, and
 *   with CACHE_L1_STRICT=false; ordinary copies, the default, and packed
 *   results, repocache/entity.h); through a service without the near cache on
 *   a Redis hit; a raw hiredis GET of the same bytes on one connection (the
 *   floor); the miss path (the hero cache emptied, untimed, before each
 *   repetition, and every read of the repetition on a distinct hero), with
 *   the near cache and through the service without it; update
 *   from SQLite and through the cache (with its invalidation; cache_on_write
 *   off, and on as by default); the named query by_language returning 1,000
 *   heroes, from SQLite, the near cache (ordinary and packed), and Redis
 *   without the near cache.
 *   Workloads that read warm caches warm them first, untimed.
 * Each figure is the median of --reps repetitions (default 5), all
 * workloads' repetitions interleaved. Targets are ratios from the same run,
 * printed as met / not met (see main). Then the eviction figure
 * (eviction.c): near cache against plain LRU on a Zipf trace.
 * The bench writes only under the key prefix CACHE_KEY_PREFIX + "bench:" and
 * removes its keys at the end.
 */
#include "eviction.h"
#include "report.h"
#include "support.h"
#include "repocache/cache.h"
#include "repocache/cached_repository.h"
#include "repocache/repository.h"
#include "repocache/settings.h"
#include "repocache/sqlite_repository.h"
#include "repocache/strategy.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NHEROES 1000       /* heroes the query returns (language en) */
#define NOTHER 200         /* other heroes (language ru) */
#define MAX_THREADS 2
/* Operations per repetition and thread that touch distinct heroes in every
 * thread (misses must not repeat an id; updates must not share a hero). */
#define MAX_DISTINCT (NHEROES / MAX_THREADS)
#define MAX_REPS 99

/* ---- the context every workload gets ---- */

typedef struct bench {
    rc_settings s;                /* settings (prefix adjusted) */
    rc_sqlite_db *db;             /* the SQLite file */
    rc_cache *cache;              /* the cache service */
    rc_strategy st;               /* hero strategy */
    rc_repo *sqlite;              /* SQLite hero repository */
    rc_repo *cached;              /* cached decorator (cache_on_write on) */
    rc_repo *cached_nw;           /* second decorator, cache_on_write off */
    rc_cache *cache_l2;           /* a service without the near cache */
    rc_repo *cached_l2;           /* a decorator on it */
    rc_cache *cache_relaxed;      /* a service with CACHE_L1_STRICT=false */
    rc_repo *cached_relaxed;      /* a decorator on it */
    rc_repo *packed;              /* on cache: packed_results */
    rc_repo *packed_relaxed;      /* on cache_relaxed: packed_results */
    rc_cache *cache_nometrics;    /* ... and CACHE_METRICS_ENABLED=false */
    rc_repo *cached_nometrics;    /* a decorator on it */
    rc_hero *heroes[NHEROES];     /* the English heroes (as stored) */
    char *keys[NHEROES];          /* their by-id cache keys */
    redisContext *raw[MAX_THREADS]; /* raw connections, one per thread */
} bench;

/* One operation number i in thread t; RC_OK or a failure. */
typedef int (*op_fn)(bench *b, int t, size_t i);

typedef struct workload {
    const char *name;  /* shown in the table */
    const char *key;   /* JSON name */
    int (*rep_prep)(bench *b); /* untimed, before each repetition (NULL: none) */
    op_fn op;          /* the timed operation */
    size_t ops;        /* operations per repetition and thread */
} workload;

typedef struct result {
    const workload *w;
    int threads;
    double ops_per_sec; /* median over the repetitions, all threads */
    double us_per_op;   /* latency seen by one thread */
} result;

static double now(void) { return rc_clock_monotonic(NULL); }

/* Spreads the threads over different heroes. */
static size_t pick(int t, size_t i)
{
    return (i + (size_t)t * (NHEROES / MAX_THREADS)) % NHEROES;
}

/* ---- operations ---- */

static int op_sqlite_find(bench *b, int t, size_t i)
{
    void *e = NULL;
    int rc = rc_repo_find_by_id(b->sqlite, b->heroes[pick(t, i)]->id, &e);
    rc_hero_free(e);
    return rc;
}

static int find_with(rc_repo *r, bench *b, int t, size_t i)
{
    void *e = NULL;
    int rc = rc_repo_find_by_id(r, b->heroes[pick(t, i)]->id, &e);
    rc_hero_free(e);
    return rc;
}

static int op_cached_find(bench *b, int t, size_t i)
{
    return find_with(b->cached, b, t, i);
}

static int op_l2_find(bench *b, int t, size_t i)
{
    return find_with(b->cached_l2, b, t, i);
}

static int op_relaxed_find(bench *b, int t, size_t i)
{
    return find_with(b->cached_relaxed, b, t, i);
}

static int op_packed_find(bench *b, int t, size_t i)
{
    return find_with(b->packed, b, t, i);
}

static int op_packed_relaxed_find(bench *b, int t, size_t i)
{
    return find_with(b->packed_relaxed, b, t, i);
}

static int op_nometrics_find(bench *b, int t, size_t i)
{
    return find_with(b->cached_nometrics, b, t, i);
}

/* Reads every hero twice through r (untimed): into Redis, then from Redis
 * into r's near cache; and the query likewise. */
static int warm(bench *b, rc_repo *r)
{
    int rc = RC_OK;
    for (int pass = 0; rc == RC_OK && pass < 2; pass++) {
        for (size_t i = 0; rc == RC_OK && i < NHEROES; i++)
            rc = find_with(r, b, 0, i);
        rc_list *l = NULL;
        if (rc == RC_OK)
            rc = rc_hero_find_by_language(r, "en", &l);
        rc_list_free(l);
    }
    return rc;
}

static int prep_warm(bench *b) { return warm(b, b->cached); }
static int prep_warm_l2(bench *b) { return warm(b, b->cached_l2); }
static int prep_warm_relaxed(bench *b) { return warm(b, b->cached_relaxed); }
static int prep_warm_packed(bench *b) { return warm(b, b->packed); }
static int prep_warm_packed_relaxed(bench *b) { return warm(b, b->packed_relaxed); }
static int prep_warm_nometrics(bench *b) { return warm(b, b->cached_nometrics); }

static int op_raw_get(bench *b, int t, size_t i)
{
    const char *argv[2] = {"GET", b->keys[pick(t, i)]};
    redisReply *rep = redisCommandArgv(b->raw[t], 2, argv, NULL);
    int rc = rep && rep->type == REDIS_REPLY_STRING ? RC_OK : RC_EBACKEND;
    freeReplyObject(rep);
    return rc;
}

/* Empties the hero cache: every read of the repetition is then a miss (each
 * thread reads distinct heroes; see MAX_DISTINCT). */
static int prep_empty_cache(bench *b)
{
    return rc_cached_repo_invalidate(b->cached, "all", NULL, 0, NULL);
}

/* Alternates the hero's age so every update changes a value. */
static int update_with(bench *b, rc_repo *r, int t, size_t i)
{
    rc_hero *h = b->heroes[pick(t, i)];
    h->age = h->age == 40 ? 41 : 40;
    return rc_repo_update(r, h, NULL, NULL);
}

static int op_sqlite_update(bench *b, int t, size_t i)
{
    return update_with(b, b->sqlite, t, i);
}

static int op_cached_update(bench *b, int t, size_t i)
{
    return update_with(b, b->cached, t, i);
}

static int op_cached_update_nw(bench *b, int t, size_t i)
{
    return update_with(b, b->cached_nw, t, i);
}

static int query_with(rc_repo *r)
{
    rc_list *l = NULL;
    int rc = rc_hero_find_by_language(r, "en", &l);
    if (rc == RC_OK && l->len != NHEROES) {
        fprintf(stderr, "bench: by_language en returned %zu heroes, not %d\n",
                l->len, NHEROES);
        rc = RC_EBACKEND;
    }
    rc_list_free(l);
    return rc;
}

static int op_sqlite_query(bench *b, int t, size_t i)
{
    (void)t;
    (void)i;
    return query_with(b->sqlite);
}

static int op_cached_query(bench *b, int t, size_t i)
{
    (void)t;
    (void)i;
    return query_with(b->cached);
}

static int op_packed_query(bench *b, int t, size_t i)
{
    (void)t;
    (void)i;
    return query_with(b->packed);
}

static int op_l2_query(bench *b, int t, size_t i)
{
    (void)t;
    (void)i;
    return query_with(b->cached_l2);
}

/* ---- running ---- */

typedef struct thread_arg {
    bench *b;
    const workload *w;
    int t;
    pthread_barrier_t *start;
    int rc;
} thread_arg;

static void *thread_main(void *p)
{
    thread_arg *a = p;
    pthread_barrier_wait(a->start);
    for (size_t i = 0; a->rc == RC_OK && i < a->w->ops; i++)
        a->rc = a->w->op(a->b, a->t, i);
    return NULL;
}

/* Seconds for one repetition of w in one thread. */
static int run_single(bench *b, const workload *w, double *sec)
{
    double t0 = now();
    int rc = RC_OK;
    for (size_t i = 0; rc == RC_OK && i < w->ops; i++)
        rc = w->op(b, 0, i);
    *sec = now() - t0;
    return rc;
}

/* Wall seconds for one repetition of w in n threads at once. */
static int run_threads(bench *b, const workload *w, int n, double *sec)
{
    pthread_t th[MAX_THREADS];
    thread_arg args[MAX_THREADS];
    pthread_barrier_t start;
    double t0;
    int rc = RC_OK;
    pthread_barrier_init(&start, NULL, (unsigned)n + 1);
    for (int t = 0; t < n; t++) {
        args[t] = (thread_arg){b, w, t, &start, RC_OK};
        pthread_create(&th[t], NULL, thread_main, &args[t]);
    }
    pthread_barrier_wait(&start);
    t0 = now();
    for (int t = 0; t < n; t++) {
        pthread_join(th[t], NULL);
        if (args[t].rc != RC_OK)
            rc = args[t].rc;
    }
    *sec = now() - t0;
    pthread_barrier_destroy(&start);
    return rc;
}

/* One repetition of w in `threads` threads: ops per second. Untimed first:
 * one operation, so that a key a previous workload invalidated is filled
 * again, then the workload's own preparation. */
static int one_rep(bench *b, const workload *w, int threads, double *rate)
{
    double sec = 0;
    int rc = w->op(b, 0, 0);
    if (rc == RC_OK && w->rep_prep)
        rc = w->rep_prep(b);
    if (rc == RC_OK)
        rc = threads == 1 ? run_single(b, w, &sec)
                          : run_threads(b, w, threads, &sec);
    if (rc != RC_OK)
        fprintf(stderr, "bench: %s (%d thread(s)): %s: %s\n", w->name,
                threads, rc_strerror(rc), rc_errmsg());
    *rate = sec > 0 ? (double)(w->ops * (size_t)threads) / sec : 0;
    return rc;
}

/*
 * Measures every (workload, threads) pair of res: one warm-up repetition
 * each, then `reps` rounds, each running every pair once in turn, so that
 * noise from the machine falls on all of them alike (the targets are
 * ratios). Each figure is the median of its repetitions.
 */
static int measure_all(bench *b, result *res, size_t n, int reps)
{
    static double rate[64][MAX_REPS];
    double warm;
    int rc = RC_OK;
    for (size_t i = 0; rc == RC_OK && i < n; i++)
        rc = one_rep(b, res[i].w, res[i].threads, &warm);
    for (int r = 0; rc == RC_OK && r < reps; r++)
        for (size_t i = 0; rc == RC_OK && i < n; i++)
            rc = one_rep(b, res[i].w, res[i].threads, &rate[i][r]);
    for (size_t i = 0; rc == RC_OK && i < n; i++) {
        qsort(rate[i], (size_t)reps, sizeof rate[i][0], bench_cmp_double);
        res[i].ops_per_sec = rate[i][reps / 2];
        res[i].us_per_op = 1e6 * res[i].threads / res[i].ops_per_sec;
    }
    return rc;
}

/* ---- setup ---- */

static int seed(bench *b)
{
    int rc = RC_OK;
    for (int i = 0; rc == RC_OK && i < NHEROES + NOTHER; i++) {
        char name[64];
        void *saved = NULL;
        snprintf(name, sizeof name, "Bench hero %d", i);
        rc_hero *h = bench_hero_new(name, "a bench hero with a long green cloak",
                                    i < NHEROES ? "en" : "ru");
        rc = h ? rc_repo_save(b->sqlite, h, &saved) : RC_ENOMEM;
        if (rc == RC_OK && i < NHEROES) {
            b->heroes[i] = saved;
            rc = rc_strategy_key_id(&b->st, rc_cache_prefix(b->cache),
                                    b->heroes[i]->id, &b->keys[i]);
        } else {
            rc_hero_free(saved);
        }
        rc_hero_free(h);
    }
    return rc;
}

static void bench_close(bench *b)
{
    if (b->cached)
        rc_cached_repo_invalidate(b->cached, "all", NULL, 0, NULL);
    rc_repo_free(b->cached);
    rc_repo_free(b->cached_nw);
    rc_repo_free(b->cached_l2);
    rc_repo_free(b->cached_relaxed);
    rc_repo_free(b->packed);
    rc_repo_free(b->packed_relaxed);
    rc_repo_free(b->cached_nometrics);
    rc_cache_free(b->cache_l2);
    rc_cache_free(b->cache_relaxed);
    rc_cache_free(b->cache_nometrics);
    rc_repo_free(b->sqlite);
    rc_cache_free(b->cache);
    rc_sqlite_free(b->db);
    for (int i = 0; i < NHEROES; i++) {
        rc_hero_free(b->heroes[i]);
        free(b->keys[i]);
    }
    for (int t = 0; t < MAX_THREADS; t++)
        redisFree(b->raw[t]);
    rc_settings_clear(&b->s);
}

/* A second service on the same Redis and prefix with the settings kv
 * (name, value pairs, NULL-terminated), and a hero decorator on it. */
static int side_service(bench *b, const char *const *kv, rc_cache **c, rc_repo **r)
{
    rc_settings s;
    int rc = bench_settings(&s, "bench:", kv);
    if (rc != RC_OK)
        return rc;
    rc = rc_cache_new(&s, c);
    if (rc == RC_OK)
        rc = rc_cached_repo_new(b->sqlite, *c, &b->st, NULL, r);
    rc_settings_clear(&s);
    return rc;
}

static int bench_open(bench *b, const char *path)
{
    rc_strategy nw;
    int rc;
    bench_unlink_db(path); /* a fresh file: remove what an earlier run left */
    rc = bench_settings(&b->s, "bench:", NULL);
    if (rc == RC_OK)
        rc = rc_sqlite_open(path, &b->db);
    if (rc == RC_OK)
        rc = rc_cache_new(&b->s, &b->cache);
    if (rc == RC_OK && rc_cache_health_check(b->cache) != RC_OK) {
        fprintf(stderr, "bench: Redis is not reachable; set REDIS_URL\n");
        return RC_EUNAVAILABLE;
    }
    for (int t = 0; rc == RC_OK && t < MAX_THREADS; t++)
        if (!(b->raw[t] = bench_redis_connect(&b->s)))
            rc = RC_EUNAVAILABLE;
    if (rc == RC_OK)
        rc = rc_strategy_hero(&b->s, &b->st);
    if (rc == RC_OK)
        rc = rc_sqlite_repo_new(b->db, &rc_hero_entity, &b->sqlite);
    if (rc == RC_OK)
        rc = rc_cached_repo_new(b->sqlite, b->cache, &b->st, NULL, &b->cached);
    nw = b->st;
    nw.cache_on_write = false;
    if (rc == RC_OK)
        rc = rc_cached_repo_new(b->sqlite, b->cache, &nw, NULL, &b->cached_nw);
    if (rc == RC_OK)
        rc = side_service(b, (const char *[]){"CACHE_L1_ENABLED", "false", NULL},
                          &b->cache_l2, &b->cached_l2);
    if (rc == RC_OK)
        rc = side_service(b, (const char *[]){"CACHE_L1_STRICT", "false", NULL},
                          &b->cache_relaxed, &b->cached_relaxed);
    rc_cached_repo_options packed = {.packed_results = true};
    if (rc == RC_OK)
        rc = rc_cached_repo_new(b->sqlite, b->cache, &b->st, &packed, &b->packed);
    if (rc == RC_OK)
        rc = rc_cached_repo_new(b->sqlite, b->cache_relaxed, &b->st, &packed,
                                &b->packed_relaxed);
    if (rc == RC_OK) /* the cost of metrics on a hit: the same without them */
        rc = side_service(b, (const char *[]){"CACHE_L1_STRICT", "false",
                                              "CACHE_METRICS_ENABLED", "false", NULL},
                          &b->cache_nometrics, &b->cached_nometrics);
    if (rc == RC_OK)
        rc = rc_cached_repo_invalidate(b->cached, "all", NULL, 0, NULL);
    if (rc == RC_OK)
        rc = seed(b);
    return rc;
}

/* ---- main ---- */

static const result *find_result(const result *r, size_t n, const char *key,
                                 int threads)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(r[i].w->key, key) == 0 && r[i].threads == threads)
            return &r[i];
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench --db PATH [--json] [--reps N] [--scale F]\n"
                    "  Redis from REDIS_URL (or REDIS_HOST/REDIS_PORT)\n");
    return 2;
}

/* The workloads, in the order of the table (ops scaled by --scale). */
static workload workloads[] = {
    {"find by id, SQLite", "sqlite_find", NULL, op_sqlite_find, 5000},
    {"find by id, near-cache hit", "near_hit", prep_warm, op_cached_find, 100000},
    {"find by id, near-cache hit (CACHE_L1_STRICT=false)", "near_hit_relaxed",
     prep_warm_relaxed, op_relaxed_find, 100000},
    {"find by id, near-cache hit (not strict, CACHE_METRICS_ENABLED=false)",
     "near_hit_nometrics", prep_warm_nometrics, op_nometrics_find, 100000},
    {"find by id, near-cache hit, packed results", "near_hit_packed", prep_warm_packed,
     op_packed_find, 100000},
    {"find by id, near-cache hit, packed results, not strict", "near_hit_packed_relaxed",
     prep_warm_packed_relaxed, op_packed_relaxed_find, 100000},
    {"find by id, Redis hit (near cache off)", "cache_hit", prep_warm_l2,
     op_l2_find, 5000},
    {"raw hiredis GET of the same bytes (floor)", "raw_get", NULL, op_raw_get, 5000},
    {"find by id, cache miss (fill included)", "cache_miss", prep_empty_cache,
     op_cached_find, MAX_DISTINCT},
    {"find by id, cache miss, near cache off", "cache_miss_l2", prep_empty_cache,
     op_l2_find, MAX_DISTINCT},
    {"update, SQLite", "sqlite_update", NULL, op_sqlite_update, MAX_DISTINCT},
    {"update, cached (invalidation only)", "cached_update", NULL,
     op_cached_update_nw, MAX_DISTINCT},
    {"update, cached (+ cache_on_write, default)", "cached_update_cow", NULL,
     op_cached_update, MAX_DISTINCT},
    {"query by_language -> 1000 heroes, SQLite", "sqlite_query", NULL,
     op_sqlite_query, 20},
    {"query by_language -> 1000 heroes, near-cache hit", "near_query", prep_warm,
     op_cached_query, 100},
    {"query by_language -> 1000 heroes, near-cache hit, packed results", "near_query_packed",
     prep_warm_packed, op_packed_query, 100},
    {"query by_language -> 1000 heroes, Redis hit (near off)", "cache_query",
     prep_warm_l2, op_l2_query, 20},
};
#define NWORKLOADS (sizeof workloads / sizeof workloads[0])
#define NRESULTS (2 * NWORKLOADS)
#define NTARGETS 14

typedef struct options {
    const char *path; /* --db */
    bool json;        /* --json */
    int reps;         /* --reps */
    double scale;     /* --scale */
} options;

/* Parses the arguments into o and scales the workloads; 0, or -1 on bad
 * usage. */
static int parse_args(int argc, char **argv, options *o)
{
    *o = (options){NULL, false, 5, 1.0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc)
            o->path = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            o->json = true;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            o->reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--scale") && i + 1 < argc)
            o->scale = atof(argv[++i]);
        else
            return -1;
    }
    if (!o->path || o->reps < 1 || o->reps > MAX_REPS || o->scale <= 0 ||
        o->scale > 100)
        return -1;
    for (size_t i = 0; i < NWORKLOADS; i++) {
        workload *w = &workloads[i];
        bool distinct = w->ops == MAX_DISTINCT;
        w->ops = (size_t)((double)w->ops * o->scale);
        if (w->ops < 1)
            w->ops = 1;
        if (distinct && w->ops > MAX_DISTINCT)
            w->ops = MAX_DISTINCT;
    }
    return 0;
}

/* The targets of the run into tg; returns the round trip (a raw GET, us). */
static double targets(const result *res, bench_target tg[NTARGETS])
{
#define R(key, threads) find_result(res, NRESULTS, key, threads)
    double rtt = R("raw_get", 1)->us_per_op;
    double sq = R("sqlite_find", 1)->ops_per_sec;
    tg[0] = (bench_target){"Redis hit (near off) throughput / raw GET throughput",
                           R("cache_hit", 1)->ops_per_sec / R("raw_get", 1)->ops_per_sec,
                           0.85, true, "x"};
    tg[1] = (bench_target){"miss <= SQLite find + 2 round trips",
                           R("cache_miss", 1)->us_per_op,
                           R("sqlite_find", 1)->us_per_op + 2 * rtt, false, "us"};
    tg[2] = (bench_target){"update (invalidation) <= SQLite update + 2 round trips",
                           R("cached_update", 1)->us_per_op,
                           R("sqlite_update", 1)->us_per_op + 2 * rtt, false, "us"};
    tg[3] = (bench_target){"Redis hits: 2 threads / 1 thread throughput",
                           R("cache_hit", 2)->ops_per_sec / R("cache_hit", 1)->ops_per_sec,
                           1.6, true, "x"};
    tg[4] = (bench_target){"near hit / SQLite find throughput",
                           R("near_hit", 1)->ops_per_sec / sq, 20, true, "x"};
    tg[5] = (bench_target){"near hit, not strict / SQLite find throughput",
                           R("near_hit_relaxed", 1)->ops_per_sec / sq, 20, true, "x"};
    tg[6] = (bench_target){"near hits: 2 threads / 1 thread throughput",
                           R("near_hit", 2)->ops_per_sec / R("near_hit", 1)->ops_per_sec,
                           1.7, true, "x"};
    tg[7] = (bench_target){"near hits, not strict: 2 threads / 1 thread",
                           R("near_hit_relaxed", 2)->ops_per_sec /
                               R("near_hit_relaxed", 1)->ops_per_sec,
                           1.7, true, "x"};
    tg[8] = (bench_target){"1000-hero query: near hit / SQLite throughput",
                           R("near_query", 1)->ops_per_sec /
                               R("sqlite_query", 1)->ops_per_sec,
                           5, true, "x"};
    tg[9] = (bench_target){"near hit, not strict: latency metrics on / off",
                           R("near_hit_relaxed", 1)->us_per_op /
                               R("near_hit_nometrics", 1)->us_per_op,
                           1.10, false, "x"};
    tg[10] = (bench_target){"near hit, packed / SQLite find throughput",
                            R("near_hit_packed", 1)->ops_per_sec / sq, 20, true, "x"};
    tg[11] = (bench_target){"near hit, packed, not strict / SQLite find throughput",
                            R("near_hit_packed_relaxed", 1)->ops_per_sec / sq, 20, true, "x"};
    tg[12] = (bench_target){"near hits, packed, not strict: 2 threads / 1 thread",
                            R("near_hit_packed_relaxed", 2)->ops_per_sec /
                                R("near_hit_packed_relaxed", 1)->ops_per_sec,
                            1.7, true, "x"};
    tg[13] = (bench_target){"1000-hero query: near hit, packed / SQLite throughput",
                            R("near_query_packed", 1)->ops_per_sec /
                                R("sqlite_query", 1)->ops_per_sec,
                            5, true, "x"};
#undef R
    return rtt;
}

/* Prints the figures and targets of res, as a table or JSON. */
static int report(bench *b, const result *res, const options *o)
{
    bench_figure f[NRESULTS];
    bench_target tg[NTARGETS];
    char machine[160];
    bench_run run = {machine, o->reps, targets(res, tg)};
    double sieve = 0, lru = 0;
    bench_describe_machine(b->raw[0], machine, sizeof machine);
    for (size_t i = 0; i < NRESULTS; i++)
        f[i] = (bench_figure){res[i].w->name, res[i].w->key, res[i].threads,
                              res[i].ops_per_sec, res[i].us_per_op};
    if (o->json)
        return bench_report_json(&run, f, NRESULTS, tg, NTARGETS) ? RC_ENOMEM : RC_OK;
    bench_report_table(&run, f, NRESULTS, tg, NTARGETS);
    if (bench_eviction(&sieve, &lru) == 0)
        printf("\neviction, Zipf 0.99 over 1,000,000 keys, 10,000 entries, 2,000,000 "
               "reads:\n  hit ratio near cache (SIEVE) %.4f, plain LRU %.4f\n", sieve, lru);
    return RC_OK;
}

int main(int argc, char **argv)
{
    static bench b;
    result res[NRESULTS];
    options o;
    int rc;
    if (parse_args(argc, argv, &o) != 0)
        return usage();
    rc = bench_open(&b, o.path);
    if (rc != RC_OK)
        fprintf(stderr, "bench: setup: %s: %s\n", rc_strerror(rc), rc_errmsg());
    /* Fill the by-id keys and the query key (seeding bypassed the cache). */
    for (size_t i = 0; rc == RC_OK && i < NHEROES; i++)
        rc = op_cached_find(&b, 0, i);
    for (size_t i = 0; i < NWORKLOADS; i++) {
        res[i] = (result){&workloads[i], 1, 0, 0};
        res[NWORKLOADS + i] = (result){&workloads[i], MAX_THREADS, 0, 0};
    }
    if (rc == RC_OK)
        rc = measure_all(&b, res, NRESULTS, o.reps);
    if (rc == RC_OK)
        rc = report(&b, res, &o);
    bench_close(&b);
    return rc == RC_OK ? 0 : 1;
}
