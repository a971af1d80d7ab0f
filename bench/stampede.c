/*
 * stampede.c - how many database loads 64 concurrent cold reads of one id
 * make, from 4 processes x 16 threads, when a load takes 20 ms.
 *
 *   bench_stampede --db PATH [--bursts N]
 *
 * Each of the 4 processes has its own cache service and SQLite connection
 * (one file, the Redis of REDIS_URL) and reads through a cached repository
 * over a slow repository written here: it wraps the SQLite hero repository,
 * and its find_by_id counts the call in memory shared by all the processes,
 * sleeps 20 ms (the slow database), then forwards. A burst (default 100):
 * the parent process invalidates the id through its own cached repository
 * (Redis, and through Redis every near cache), then a barrier shared by the
 * 64 threads and the parent releases them all at once; each reads the id
 * once; a second barrier waits for every read. The loads of the burst are
 * then read off the shared counter. Prints the mean and the largest number
 * of loads per burst and their histogram, the reads that failed or returned
 * another hero, and the burst times. Keys live under CACHE_KEY_PREFIX +
 * "bench-stampede:" and are removed at the end.
 */
#include "support.h"

#include "repocache/cached_repository.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define PROCS 4
#define THREADS 16
#define READERS (PROCS * THREADS)
#define MAX_BURSTS 1000
#define LOAD_US 20000
#define PREFIX "bench-stampede:"

/* The memory the parent and the readers share. */
typedef struct sp_shared {
    pthread_barrier_t start;  /* READERS + 1: the id is cold, read now */
    pthread_barrier_t end;    /* READERS + 1: every read has returned */
    atomic_int loads;         /* find_by_id calls that reached the database */
    atomic_int failed;        /* reads that failed or returned another hero */
    atomic_ullong waits;      /* the readers' services' single-flight waits */
    atomic_int incoherent;    /* readers whose near cache never served */
    char id[64];              /* the hero read */
} sp_shared;

/* ---- the slow repository: SQLite behind a 20 ms load, counted ---- */

typedef struct slow_repo {
    rc_repo base;         /* must be first */
    rc_repo *inner;       /* the SQLite hero repository (borrowed) */
    atomic_int *loads;    /* the shared load counter */
} slow_repo;

static int slow_find(rc_repo *r, const char *id, void **out)
{
    slow_repo *s = (slow_repo *)r;
    atomic_fetch_add(s->loads, 1);
    usleep(LOAD_US);
    return rc_repo_find_by_id(s->inner, id, out);
}

static void slow_destroy(rc_repo *r) { free(r); }

static const rc_repo_methods slow_methods = {
    .version = RC_REPO_VERSION,
    .name = "slow",
    .find_by_id = slow_find,
    .destroy = slow_destroy,
    /* the bench only reads by id: the other slots stay NULL */
};

static rc_repo *slow_new(rc_repo *inner, atomic_int *loads)
{
    slow_repo *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->base.methods = &slow_methods;
    s->base.entity = inner->entity;
    s->inner = inner;
    s->loads = loads;
    return &s->base;
}

/* ---- a reader process ---- */

typedef struct reader_arg {
    sp_shared *sh;
    rc_repo *repo;
    int bursts;
} reader_arg;

static void *reader_thread(void *p)
{
    reader_arg *a = p;
    for (int b = 0; b < a->bursts; b++) {
        rc_hero *h = NULL;
        pthread_barrier_wait(&a->sh->start);
        if (rc_repo_find_by_id(a->repo, a->sh->id, (void **)&h) != RC_OK ||
            strcmp(h->id, a->sh->id) != 0)
            atomic_fetch_add(&a->sh->failed, 1);
        rc_hero_free(h);
        pthread_barrier_wait(&a->sh->end);
    }
    return NULL;
}

/* Waits (up to 5 s) until the near cache of c serves: a long-running
 * service is in that state, and single flight works through it. */
static void wait_coherent(sp_shared *sh, rc_cache *c)
{
    rc_cache_stats cs = {0};
    for (int i = 0; i < 500; i++) {
        rc_cache_get_stats(c, &cs);
        if (cs.near_coherent)
            return;
        usleep(10000);
    }
    atomic_fetch_add(&sh->incoherent, 1);
}

/* THREADS threads reading through a cached repository over the slow
 * repository, burst after burst. Dies with the parent (a broken barrier
 * would otherwise leave it waiting). */
static int reader_main(sp_shared *sh, const char *path, int bursts)
{
    bench_side x;
    pthread_t th[THREADS];
    reader_arg a = {sh, NULL, bursts};
    rc_cache_stats cs;
    rc_repo *slow;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (bench_side_open(&x, path, PREFIX, NULL) != RC_OK)
        return 1;
    if (!(slow = slow_new(x.sqlite, &sh->loads)) || bench_side_wrap(&x, slow) != RC_OK) {
        bench_side_close(&x);
        return 1;
    }
    a.repo = x.cached;
    wait_coherent(sh, x.cache);
    for (int t = 0; t < THREADS; t++)
        if (pthread_create(&th[t], NULL, reader_thread, &a) != 0)
            _exit(1); /* the barriers count on every thread */
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    rc_cache_get_stats(x.cache, &cs);
    atomic_fetch_add(&sh->waits, cs.single_flight_waits);
    bench_side_close(&x);
    return 0;
}

/* ---- the parent ---- */

typedef struct sp_result {
    int loads[MAX_BURSTS];   /* loads of each burst */
    double ms[MAX_BURSTS];   /* each burst's time, barrier to barrier */
} sp_result;

/* Makes every burst: invalidate, release the readers, wait for them. */
static int run_bursts(sp_shared *sh, rc_repo *cached, int bursts, sp_result *res)
{
    const char *const args[] = {sh->id};
    for (int b = 0; b < bursts; b++) {
        int rc = rc_cached_repo_invalidate(cached, "by_id", args, 1, NULL);
        double t0;
        if (rc != RC_OK) {
            fprintf(stderr, "bench_stampede: invalidate: %s\n", rc_strerror(rc));
            return rc;
        }
        atomic_store(&sh->loads, 0);
        pthread_barrier_wait(&sh->start);
        t0 = rc_clock_monotonic(NULL);
        pthread_barrier_wait(&sh->end);
        res->ms[b] = (rc_clock_monotonic(NULL) - t0) * 1e3;
        res->loads[b] = atomic_load(&sh->loads);
    }
    return RC_OK;
}

static void report(const sp_shared *sh, sp_result *res, int bursts)
{
    int hist[READERS + 1] = {0}, max = 0;
    long sum = 0;
    for (int b = 0; b < bursts; b++) {
        int n = res->loads[b] > READERS ? READERS : res->loads[b];
        hist[n]++;
        sum += res->loads[b];
        max = res->loads[b] > max ? res->loads[b] : max;
    }
    qsort(res->ms, (size_t)bursts, sizeof res->ms[0], bench_cmp_double);
    printf("stampede: %d concurrent cold reads of one hero (%d processes x %d "
           "threads), a %d ms database load, %d bursts\n",
           READERS, PROCS, THREADS, LOAD_US / 1000, bursts);
    printf("  database loads per burst: mean %.2f, max %d (target 1, never "
           "more than 4)\n  histogram (loads: bursts):", (double)sum / bursts, max);
    for (int n = 0; n <= READERS; n++)
        if (hist[n])
            printf(" %d: %d", n, hist[n]);
    printf("\n  reads failed or wrong: %d of %d; single-flight waits in the "
           "readers' services: %llu; readers whose near cache never served: "
           "%d; burst time p50 %.1f ms, max %.1f ms\n",
           atomic_load(&sh->failed), READERS * bursts,
           (unsigned long long)atomic_load(&sh->waits), atomic_load(&sh->incoherent),
           bench_quantile(res->ms, (size_t)bursts, 0.5), res->ms[bursts - 1]);
}

/* The hero the readers read, saved into a fresh file: its id into sh. */
static int seed(const char *path, sp_shared *sh)
{
    bench_side x;
    rc_hero *h = bench_hero_new("Stampede hero", "a crowd of readers", "en");
    rc_hero *saved = NULL;
    int rc;
    bench_unlink_db(path);
    rc = h ? bench_side_open(&x, path, PREFIX, NULL) : RC_ENOMEM;
    if (rc != RC_OK) {
        rc_hero_free(h);
        return rc;
    }
    rc = rc_repo_save(x.sqlite, h, (void **)&saved);
    if (rc == RC_OK)
        snprintf(sh->id, sizeof sh->id, "%s", saved->id);
    else
        fprintf(stderr, "bench_stampede: seed: %s: %s\n", rc_strerror(rc), rc_errmsg());
    rc_hero_free(saved);
    rc_hero_free(h);
    bench_side_close(&x);
    return rc;
}

static int init_shared(sp_shared *sh)
{
    pthread_barrierattr_t at;
    int rc = pthread_barrierattr_init(&at);
    rc = rc ? rc : pthread_barrierattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
    rc = rc ? rc : pthread_barrier_init(&sh->start, &at, READERS + 1);
    rc = rc ? rc : pthread_barrier_init(&sh->end, &at, READERS + 1);
    pthread_barrierattr_destroy(&at);
    return rc;
}

/* Forks the readers, then runs the bursts from this process's own side
 * (opened after the forks: no child inherits its threads). */
static int run(sp_shared *sh, const char *path, int bursts, sp_result *res)
{
    pid_t pid[PROCS];
    bench_side x;
    int bad = 0;
    fflush(NULL);
    for (int p = 0; p < PROCS; p++)
        if ((pid[p] = fork()) == 0)
            _exit(reader_main(sh, path, bursts));
        else if (pid[p] < 0)
            return 1; /* the others die with this process */
    if (bench_side_open(&x, path, PREFIX, NULL) != RC_OK ||
        bench_side_wrap(&x, NULL) != RC_OK)
        return 1;
    bad = run_bursts(sh, x.cached, bursts, res) != RC_OK;
    rc_cached_repo_invalidate(x.cached, "all", NULL, 0, NULL);
    bench_side_close(&x);
    for (int p = 0; p < PROCS && !bad; p++)
        bad |= bench_wait(pid[p], "reader") != 0;
    return bad;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int bursts = 100, bad;
    sp_shared *sh;
    static sp_result res;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc)
            path = argv[++i];
        else if (!strcmp(argv[i], "--bursts") && i + 1 < argc)
            bursts = atoi(argv[++i]);
        else
            bursts = -1;
    }
    if (!path || bursts < 1 || bursts > MAX_BURSTS) {
        fprintf(stderr, "usage: bench_stampede --db PATH [--bursts N]\n"
                        "  Redis from REDIS_URL (or REDIS_HOST/REDIS_PORT)\n");
        return 2;
    }
    if (!(sh = bench_shared_new(sizeof *sh)) || init_shared(sh) != 0 ||
        seed(path, sh) != RC_OK)
        return 1;
    alarm(60 + (unsigned)bursts); /* a reader that died leaves the barriers waiting */
    bad = run(sh, path, bursts, &res);
    if (!bad)
        report(sh, &res, bursts);
    bench_shared_free(sh, sizeof *sh);
    return bad;
}
