/*
 * bench.c - measures the cached repository against SQLite and against the
 * floor of a raw hiredis GET, in one run, against the redis-server named by
 * REDIS_URL (or REDIS_HOST/REDIS_PORT) and a fresh SQLite file.
 *
 *   bench --db PATH [--json] [--reps N] [--scale F]
 *
 * Workloads, each with one thread and again with two threads at once:
 *   find by id from SQLite; from the near cache (strict, the default, and
 *   with CACHE_L1_STRICT=false); through a service without the near cache on
 *   a Redis hit; a raw hiredis GET of the same bytes on one connection (the
 *   floor); the miss path (the hero cache emptied, untimed, before each
 *   repetition, and every read of the repetition on a distinct hero); update
 *   from SQLite and through the cache (with its invalidation; cache_on_write
 *   off, and on as by default); the named query by_language returning 1,000
 *   heroes, from SQLite, the near cache, and Redis without the near cache.
 *   Workloads that read warm caches warm them first, untimed.
 * Each figure is the median of --reps repetitions (default 5), all
 * workloads' repetitions interleaved. Targets are ratios from the same run,
 * printed as met / not met (see main). Then the eviction figure
 * (eviction.c): near cache against plain LRU on a Zipf trace.
 * The bench writes only under the key prefix CACHE_KEY_PREFIX + "bench:" and
 * removes its keys at the end.
 */
#include "eviction.h"
#include "repocache/cache.h"
#include "repocache/cached_repository.h"
#include "repocache/repository.h"
#include "repocache/settings.h"
#include "repocache/sqlite_repository.h"
#include "repocache/strategy.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
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
    rc_cache *cache_nometrics;    /* CACHE_L1_STRICT=false and
                                     CACHE_METRICS_ENABLED=false */
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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
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
        qsort(rate[i], (size_t)reps, sizeof rate[i][0], cmp_double);
        res[i].ops_per_sec = rate[i][reps / 2];
        res[i].us_per_op = 1e6 * res[i].threads / res[i].ops_per_sec;
    }
    return rc;
}

/* ---- setup ---- */

static redisContext *raw_connect(const rc_settings *s)
{
    struct timeval tv = {2, 0};
    redisContext *c = s->redis_unix_path
                          ? redisConnectUnixWithTimeout(s->redis_unix_path, tv)
                          : redisConnectWithTimeout(s->redis_host,
                                                    s->redis_port, tv);
    redisReply *rep = NULL;
    if (!c || c->err) {
        fprintf(stderr, "bench: cannot connect to Redis: %s\n",
                c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    if (s->redis_password) {
        rep = s->redis_user
                  ? redisCommand(c, "AUTH %s %s", s->redis_user, s->redis_password)
                  : redisCommand(c, "AUTH %s", s->redis_password);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "bench: Redis AUTH failed\n");
            freeReplyObject(rep);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(rep);
    }
    rep = redisCommand(c, "SELECT %d", s->redis_db);
    freeReplyObject(rep);
    return c;
}

static int seed(bench *b)
{
    int rc = RC_OK;
    for (int i = 0; rc == RC_OK && i < NHEROES + NOTHER; i++) {
        rc_hero *h = rc_hero_new();
        char name[64];
        void *saved = NULL;
        if (!h)
            return RC_ENOMEM;
        snprintf(name, sizeof name, "Bench hero %d", i);
        h->name = strdup(name);
        h->age = 40;
        h->gender = strdup(i % 2 ? "female" : "male");
        h->appearance = strdup("a bench hero with a long green cloak");
        h->language = strdup(i < NHEROES ? "en" : "ru");
        rc = rc_strlist_push(&h->personality_traits, "brave");
        if (rc == RC_OK)
            rc = rc_strlist_push(&h->interests, "benchmarks");
        if (rc == RC_OK)
            rc = rc_strlist_push(&h->strengths, "patience");
        if (rc == RC_OK && (!h->name || !h->gender || !h->appearance ||
                            !h->language))
            rc = RC_ENOMEM;
        if (rc == RC_OK)
            rc = rc_repo_save(b->sqlite, h, &saved);
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

/* A second service on the same Redis and prefix with the boolean settings
 * flags (NULL-terminated) false, and a hero decorator on it. */
static int side_service(bench *b, const char *const *flags, rc_cache **c, rc_repo **r)
{
    rc_settings s;
    int rc = rc_settings_load(&s, NULL);
    if (rc == RC_OK)
        rc = rc_settings_set(&s, "CACHE_KEY_PREFIX", b->s.cache_key_prefix);
    for (; rc == RC_OK && *flags; flags++)
        rc = rc_settings_set(&s, *flags, "false");
    if (rc == RC_OK)
        rc = rc_cache_new(&s, c);
    if (rc == RC_OK)
        rc = rc_cached_repo_new(b->sqlite, *c, &b->st, NULL, r);
    rc_settings_clear(&s);
    return rc;
}

static int bench_open(bench *b, const char *path)
{
    char prefix[512];
    rc_strategy nw;
    char side[1024];
    int rc;
    /* A fresh file: remove what an earlier run left. */
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);

    rc = rc_settings_load(&b->s, NULL);
    if (rc != RC_OK)
        return rc;
    snprintf(prefix, sizeof prefix, "%sbench:", b->s.cache_key_prefix);
    rc = rc_settings_set(&b->s, "CACHE_KEY_PREFIX", prefix);
    if (rc == RC_OK)
        rc = rc_sqlite_open(path, &b->db);
    if (rc == RC_OK)
        rc = rc_cache_new(&b->s, &b->cache);
    if (rc == RC_OK && rc_cache_health_check(b->cache) != RC_OK) {
        fprintf(stderr, "bench: Redis is not reachable; set REDIS_URL\n");
        return RC_EUNAVAILABLE;
    }
    for (int t = 0; rc == RC_OK && t < MAX_THREADS; t++)
        if (!(b->raw[t] = raw_connect(&b->s)))
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
        rc = side_service(b, (const char *[]){"CACHE_L1_ENABLED", NULL}, &b->cache_l2,
                          &b->cached_l2);
    if (rc == RC_OK)
        rc = side_service(b, (const char *[]){"CACHE_L1_STRICT", NULL}, &b->cache_relaxed,
                          &b->cached_relaxed);
    if (rc == RC_OK) /* the cost of metrics on a hit: the same, without them */
        rc = side_service(b, (const char *[]){"CACHE_L1_STRICT", "CACHE_METRICS_ENABLED", NULL},
                          &b->cache_nometrics, &b->cached_nometrics);
    if (rc == RC_OK)
        rc = rc_cached_repo_invalidate(b->cached, "all", NULL, 0, NULL);
    if (rc == RC_OK)
        rc = seed(b);
    return rc;
}

/* ---- output ---- */

typedef struct target {
    const char *name;  /* what is compared */
    double value;      /* measured */
    double limit;      /* the bound */
    bool at_least;     /* value must be >= limit (else <=) */
    const char *unit;  /* "x" or "us" */
} target;

static bool met(const target *t)
{
    return t->at_least ? t->value >= t->limit : t->value <= t->limit;
}

static void print_table(const char *machine, const result *r, size_t n,
                        const target *tg, size_t ntg, int reps, double rtt)
{
    printf("%s\n\n", machine);
    printf("%-44s %7s %12s %10s\n", "workload", "threads", "ops/s", "us/op");
    for (size_t i = 0; i < n; i++)
        printf("%-44s %7d %12.0f %10.1f\n", r[i].w->name, r[i].threads,
               r[i].ops_per_sec, r[i].us_per_op);
    printf("(median of %d repetitions; us/op is the latency one thread "
           "sees; round trip = raw GET = %.1f us)\n\n",
           reps, rtt);
    printf("%-58s %10s %10s  %s\n", "target", "measured", "bound", "");
    for (size_t i = 0; i < ntg; i++)
        printf("%-58s %9.2f%s %9.2f%s  %s\n", tg[i].name, tg[i].value,
               tg[i].unit, tg[i].limit, tg[i].unit,
               met(&tg[i]) ? "met" : "NOT MET");
}

static int print_json(const char *machine, const result *r, size_t n,
                      const target *tg, size_t ntg, int reps, double rtt)
{
    json_t *root = json_object(), *res = json_array(), *tgs = json_array();
    char *text;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            res, json_pack("{s:s, s:s, s:i, s:f, s:f}", "workload",
                           r[i].w->key, "name", r[i].w->name, "threads",
                           r[i].threads, "ops_per_sec", r[i].ops_per_sec,
                           "us_per_op", r[i].us_per_op));
    for (size_t i = 0; i < ntg; i++)
        json_array_append_new(
            tgs, json_pack("{s:s, s:f, s:f, s:s, s:b}", "target", tg[i].name,
                           "measured", tg[i].value, "bound", tg[i].limit,
                           "unit", tg[i].unit, "met", met(&tg[i])));
    json_object_set_new(root, "machine", json_string(machine));
    json_object_set_new(root, "repetitions", json_integer(reps));
    json_object_set_new(root, "round_trip_us", json_real(rtt));
    json_object_set_new(root, "results", res);
    json_object_set_new(root, "targets", tgs);
    text = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    if (!text)
        return RC_ENOMEM;
    printf("%s\n", text);
    free(text);
    return RC_OK;
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

/* "2 CPUs online, redis-server 7.0.15, SQLite 3.40.1, hiredis 0.14.1". */
static void describe_machine(bench *b, char *out, size_t n)
{
    redisReply *rep = redisCommand(b->raw[0], "INFO server");
    const char *v = rep && rep->type == REDIS_REPLY_STRING
                        ? strstr(rep->str, "redis_version:")
                        : NULL;
    char ver[32] = "?";
    if (v)
        sscanf(v + strlen("redis_version:"), "%31[0-9.]", ver);
    freeReplyObject(rep);
    snprintf(out, n, "%ld CPUs online, redis-server %s, SQLite %s, hiredis %d.%d.%d",
             sysconf(_SC_NPROCESSORS_ONLN), ver, sqlite3_libversion(),
             HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
}

static int usage(void)
{
    fprintf(stderr, "usage: bench --db PATH [--json] [--reps N] [--scale F]\n"
                    "  Redis from REDIS_URL (or REDIS_HOST/REDIS_PORT)\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    int reps = 5;
    double scale = 1.0;
    static bench b;
    workload wl[] = {
        {"find by id, SQLite", "sqlite_find", NULL, op_sqlite_find, 5000},
        {"find by id, near-cache hit", "near_hit", prep_warm, op_cached_find,
         100000},
        {"find by id, near-cache hit (CACHE_L1_STRICT=false)", "near_hit_relaxed",
         prep_warm_relaxed, op_relaxed_find, 100000},
        {"find by id, near-cache hit (not strict, CACHE_METRICS_ENABLED=false)",
         "near_hit_nometrics", prep_warm_nometrics, op_nometrics_find, 100000},
        {"find by id, Redis hit (near cache off)", "cache_hit", prep_warm_l2,
         op_l2_find, 5000},
        {"raw hiredis GET of the same bytes (floor)", "raw_get", NULL,
         op_raw_get, 5000},
        {"find by id, cache miss (fill included)", "cache_miss",
         prep_empty_cache, op_cached_find, MAX_DISTINCT},
        {"update, SQLite", "sqlite_update", NULL, op_sqlite_update,
         MAX_DISTINCT},
        {"update, cached (invalidation only)", "cached_update", NULL,
         op_cached_update_nw, MAX_DISTINCT},
        {"update, cached (+ cache_on_write, default)", "cached_update_cow",
         NULL, op_cached_update, MAX_DISTINCT},
        {"query by_language -> 1000 heroes, SQLite", "sqlite_query", NULL,
         op_sqlite_query, 20},
        {"query by_language -> 1000 heroes, near-cache hit", "near_query",
         prep_warm, op_cached_query, 100},
        {"query by_language -> 1000 heroes, Redis hit (near off)", "cache_query",
         prep_warm_l2, op_l2_query, 20},
    };
    const size_t nwl = sizeof wl / sizeof wl[0];
    result res[2 * sizeof wl / sizeof wl[0]];
    size_t nres = 0;
    enum { NTARGETS = 10 };
    target tg[NTARGETS];
    char machine[160];
    double rtt;
    int rc = RC_OK;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc)
            path = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--scale") && i + 1 < argc)
            scale = atof(argv[++i]);
        else
            return usage();
    }
    if (!path || reps < 1 || reps > MAX_REPS || scale <= 0 || scale > 100)
        return usage();
    for (size_t i = 0; i < nwl; i++) {
        bool distinct = wl[i].ops == MAX_DISTINCT;
        wl[i].ops = (size_t)((double)wl[i].ops * scale);
        if (wl[i].ops < 1)
            wl[i].ops = 1;
        if (distinct && wl[i].ops > MAX_DISTINCT)
            wl[i].ops = MAX_DISTINCT;
    }

    rc = bench_open(&b, path);
    if (rc != RC_OK) {
        fprintf(stderr, "bench: setup: %s: %s\n", rc_strerror(rc), rc_errmsg());
        bench_close(&b);
        return 1;
    }
    describe_machine(&b, machine, sizeof machine);
    /* Fill the by-id keys and the query key (seeding bypassed the cache). */
    for (size_t i = 0; rc == RC_OK && i < NHEROES; i++)
        rc = op_cached_find(&b, 0, i);
    for (size_t i = 0; i < nwl; i++)
        res[nres++] = (result){&wl[i], 1, 0, 0};
    for (size_t i = 0; i < nwl; i++)
        res[nres++] = (result){&wl[i], MAX_THREADS, 0, 0};
    if (rc == RC_OK)
        rc = measure_all(&b, res, nres, reps);
    if (rc != RC_OK) {
        bench_close(&b);
        return 1;
    }

    {
        const result *sq = find_result(res, nres, "sqlite_find", 1);
        const result *hit = find_result(res, nres, "cache_hit", 1);
        const result *hit2 = find_result(res, nres, "cache_hit", 2);
        const result *raw = find_result(res, nres, "raw_get", 1);
        const result *miss = find_result(res, nres, "cache_miss", 1);
        const result *squp = find_result(res, nres, "sqlite_update", 1);
        const result *up = find_result(res, nres, "cached_update", 1);
        const result *nh = find_result(res, nres, "near_hit", 1);
        const result *nh2 = find_result(res, nres, "near_hit", 2);
        const result *nr = find_result(res, nres, "near_hit_relaxed", 1);
        const result *nr2 = find_result(res, nres, "near_hit_relaxed", 2);
        const result *sqq = find_result(res, nres, "sqlite_query", 1);
        const result *nq = find_result(res, nres, "near_query", 1);
        const result *nm = find_result(res, nres, "near_hit_nometrics", 1);
        rtt = raw->us_per_op;
        tg[0] = (target){"Redis hit (near off) throughput / raw GET throughput",
                         hit->ops_per_sec / raw->ops_per_sec, 0.85, true, "x"};
        tg[1] = (target){"miss <= SQLite find + 2 round trips",
                         miss->us_per_op, sq->us_per_op + 2 * rtt, false, "us"};
        tg[2] = (target){"update (invalidation) <= SQLite update + 2 round trips",
                         up->us_per_op, squp->us_per_op + 2 * rtt, false, "us"};
        tg[3] = (target){"Redis hits: 2 threads / 1 thread throughput",
                         hit2->ops_per_sec / hit->ops_per_sec, 1.6, true, "x"};
        tg[4] = (target){"near hit / SQLite find throughput",
                         nh->ops_per_sec / sq->ops_per_sec, 20, true, "x"};
        tg[5] = (target){"near hit, not strict / SQLite find throughput",
                         nr->ops_per_sec / sq->ops_per_sec, 20, true, "x"};
        tg[6] = (target){"near hits: 2 threads / 1 thread throughput",
                         nh2->ops_per_sec / nh->ops_per_sec, 1.7, true, "x"};
        tg[7] = (target){"near hits, not strict: 2 threads / 1 thread",
                         nr2->ops_per_sec / nr->ops_per_sec, 1.7, true, "x"};
        tg[8] = (target){"1000-hero query: near hit / SQLite throughput",
                         nq->ops_per_sec / sqq->ops_per_sec, 5, true, "x"};
        tg[9] = (target){"near hit, not strict: latency metrics on / off",
                         nr->us_per_op / nm->us_per_op, 1.10, false, "x"};
    }
    if (json)
        rc = print_json(machine, res, nres, tg, NTARGETS, reps, rtt);
    else
        print_table(machine, res, nres, tg, NTARGETS, reps, rtt);
    double sieve = 0, lru = 0;
    if (rc == RC_OK && !json && bench_eviction(&sieve, &lru) == 0)
        printf("\neviction, Zipf 0.99 over 1,000,000 keys, 10,000 entries, 2,000,000 "
               "reads:\n  hit ratio near cache (SIEVE) %.4f, plain LRU %.4f\n", sieve, lru);
    bench_close(&b);
    return rc == RC_OK ? 0 : 1;
}
