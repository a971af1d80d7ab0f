/*
 * crossproc.c - how soon a reader process sees another process's write of an
 * entity it holds in its near cache, and whether it ever reads the old value
 * after the write has returned.
 *
 *   bench_crossproc --db PATH [--writes N] [--strict true|false]
 *
 * Two processes, each with its own cache service and SQLite connection, on
 * the Redis of REDIS_URL and one SQLite file. The writer updates one hero
 * through its cached repository N times (default 10,000); after each update
 * returns it records the monotonic time of the return and then publishes
 * the version with a release store into memory shared with the reader. The
 * reader reads the hero through its cached repository in a loop (so it is
 * served from its near cache between writes); before each read it loads the
 * published version (acquire), after it parses the version it got.
 *
 *   latency   the reader's first read returning version v (the time that
 *             read returned) minus the time the update to v returned, over
 *             every v: p50, p99, max. A read that got v before its update had
 *             returned counts as 0 (and is counted as "early").
 *   stale     reads that returned a version older than the one published
 *             before the read began (the promise: 0).
 *
 * The writer waits (up to 1 s) for the reader to have read each version,
 * then 100 us, before the next write, so every write meets a reader that is
 * on near-cache hits; a version unread after 1 s is counted as unseen.
 * Both settings of the reader are measured, CACHE_L1_STRICT=true then false
 * (or only the one given). CLOCK_MONOTONIC is one clock for the whole
 * machine, so times from the two processes compare. Keys live under
 * CACHE_KEY_PREFIX + "bench-crossproc:" and are removed at the end.
 */
#include "support.h"

#include "repocache/cache.h"
#include "repocache/cached_repository.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_WRITES 100000
#define UNSEEN_AFTER 1.0   /* seconds the writer waits for the reader */
#define PAUSE_US 100       /* the writer's pause after the reader has read */
#define PREFIX "bench-crossproc:"

/* The memory the parent, the writer and the reader share. */
typedef struct xp_shared {
    atomic_int ready;       /* the reader holds the hero in its near cache */
    atomic_int done;        /* the writer has made its last write */
    atomic_long published;  /* newest version whose update has returned */
    atomic_long seen;       /* newest version the reader has read */
    long reads;             /* reader: reads made after ready */
    long stale;             /* reader: reads older than published at their start */
    long stale_writes;      /* reader: writes with such a read after their return */
    double stale_max;       /* reader: longest such read after its write's return */
    long errors;            /* reader: reads that failed */
    uint64_t near_hits;     /* reader: its service's near-cache hits */
    long unseen;            /* writer: versions unread UNSEEN_AFTER after return */
    double returned[MAX_WRITES + 1];   /* when the update to v returned */
    double first_read[MAX_WRITES + 1]; /* when v was first read */
} xp_shared;

static double now(void) { return rc_clock_monotonic(NULL); }

/* The version in h ("v123" in appearance), or -1. */
static long version_of(const rc_hero *h)
{
    return h->appearance && h->appearance[0] == 'v'
               ? strtol(h->appearance + 1, NULL, 10)
               : -1;
}

/* Reads hero id through r; *v = its version (-1 when the read failed). */
static void read_version(rc_repo *r, const char *id, long *v)
{
    rc_hero *h = NULL;
    *v = rc_repo_find_by_id(r, id, (void **)&h) == RC_OK ? version_of(h) : -1;
    rc_hero_free(h);
}

/* ---- the reader ---- */

/* A read that returned at t an older version than pub, published before
 * the read began. */
static void count_stale(xp_shared *sh, long pub, double t)
{
    static long last_pub;
    double late = t - sh->returned[pub];
    sh->stale++;
    sh->stale_writes += pub != last_pub;
    last_pub = pub;
    if (late > sh->stale_max)
        sh->stale_max = late;
}

/* Reads until the writer is done; the figures go to sh. */
static void read_loop(xp_shared *sh, rc_repo *r, const char *id)
{
    long last = 0;
    while (!atomic_load_explicit(&sh->done, memory_order_acquire)) {
        long pub = atomic_load_explicit(&sh->published, memory_order_acquire);
        long v;
        read_version(r, id, &v);
        double t = now();
        sh->reads++;
        if (v < 0) {
            sh->errors++;
            continue;
        }
        if (v < pub)
            count_stale(sh, pub, t);
        for (long u = last + 1; u <= v && u <= MAX_WRITES; u++)
            sh->first_read[u] = t;
        if (v > last) {
            last = v;
            atomic_store_explicit(&sh->seen, v, memory_order_release);
        }
    }
}

static int reader_main(xp_shared *sh, const char *path, const char *id,
                       const char *strict)
{
    const char *kv[] = {"CACHE_L1_STRICT", strict, NULL};
    bench_side x;
    rc_cache_stats cs;
    long v = -1;
    if (bench_side_open(&x, path, PREFIX, kv) != RC_OK ||
        bench_side_wrap(&x, NULL) != RC_OK)
        return 1;
    /* Twice: the first read fills Redis, the second brings the hero into
     * the near cache; then until a read is a near hit. */
    for (int i = 0; i < 1000; i++) {
        uint64_t before;
        rc_cache_get_stats(x.cache, &cs);
        before = cs.near_hits;
        read_version(x.cached, id, &v);
        rc_cache_get_stats(x.cache, &cs);
        if (v < 0 || cs.near_hits > before)
            break;
        usleep(1000);
    }
    if (v != 0) {
        fprintf(stderr, "bench_crossproc: the reader read version %ld, not 0\n", v);
        bench_side_close(&x);
        return 1;
    }
    atomic_store_explicit(&sh->ready, 1, memory_order_release);
    read_loop(sh, x.cached, id);
    rc_cache_get_stats(x.cache, &cs);
    sh->near_hits = cs.near_hits;
    bench_side_close(&x);
    return 0;
}

/* ---- the writer ---- */

/* Waits up to `limit` seconds for *word to reach at_least; false on
 * timeout. Polls with short sleeps, leaving the CPU to Redis and the
 * reader (the latency is timed by the reader, not by this loop). */
static bool wait_for(atomic_long *word, long at_least, double limit)
{
    double t0 = now();
    while (atomic_load_explicit(word, memory_order_acquire) < at_least) {
        if (now() - t0 > limit)
            return false;
        usleep(20);
    }
    return true;
}

static int write_loop(xp_shared *sh, rc_repo *r, rc_hero *h, long writes)
{
    char v[32];
    for (long i = 1; i <= writes; i++) {
        snprintf(v, sizeof v, "v%ld", i);
        free(h->appearance);
        if (!(h->appearance = strdup(v)))
            return RC_ENOMEM;
        int rc = rc_repo_update(r, h, NULL, NULL);
        double t = now();
        if (rc != RC_OK) {
            fprintf(stderr, "bench_crossproc: update: %s: %s\n",
                    rc_strerror(rc), rc_errmsg());
            return rc;
        }
        sh->returned[i] = t;
        atomic_store_explicit(&sh->published, i, memory_order_release);
        if (!wait_for(&sh->seen, i, UNSEEN_AFTER))
            sh->unseen++;
        usleep(PAUSE_US);
    }
    return RC_OK;
}

static int writer_main(xp_shared *sh, const char *path, const char *id,
                       long writes)
{
    bench_side x;
    rc_hero *h = NULL;
    int rc;
    if (bench_side_open(&x, path, PREFIX, NULL) != RC_OK ||
        bench_side_wrap(&x, NULL) != RC_OK)
        return 1;
    rc = rc_repo_find_by_id(x.sqlite, id, (void **)&h);
    for (int i = 0; rc == RC_OK && !atomic_load(&sh->ready); i++)
        if (i > 30000)
            rc = RC_ETIMEOUT;
        else
            usleep(1000);
    if (rc == RC_OK)
        rc = write_loop(sh, x.cached, h, writes);
    atomic_store_explicit(&sh->done, 1, memory_order_release);
    rc_cached_repo_invalidate(x.cached, "all", NULL, 0, NULL);
    rc_hero_free(h);
    bench_side_close(&x);
    return rc == RC_OK ? 0 : 1;
}

/* ---- the parent ---- */

/* The latencies in us of versions 1..writes: all[] (a version read before
 * its update returned counts 0), and after[] (*nafter of them) those read
 * after the return; both sorted. */
static void latencies(const xp_shared *sh, long writes, double *all,
                      double *after, size_t *nafter)
{
    *nafter = 0;
    for (long v = 1; v <= writes; v++) {
        double d = (sh->first_read[v] - sh->returned[v]) * 1e6;
        all[v - 1] = d < 0 ? 0 : d;
        if (d >= 0)
            after[(*nafter)++] = d;
    }
    qsort(all, (size_t)writes, sizeof *all, bench_cmp_double);
    qsort(after, *nafter, sizeof *after, bench_cmp_double);
}

/* "p50 1.0 us, p99 2.0 us, max 3.0 us" of the n sorted values v. */
static const char *pct(const double *v, size_t n, char buf[96])
{
    snprintf(buf, 96, "p50 %.1f us, p99 %.1f us, max %.1f us",
             bench_quantile(v, n, 0.50), bench_quantile(v, n, 0.99),
             n ? v[n - 1] : 0.0);
    return buf;
}

static void report(const xp_shared *sh, long writes, const char *strict)
{
    double *all = malloc((size_t)writes * sizeof *all);
    double *after = malloc((size_t)writes * sizeof *after);
    size_t nafter;
    char b1[96], b2[96];
    if (all && after) {
        latencies(sh, writes, all, after, &nafter);
        printf("  reader CACHE_L1_STRICT=%s:\n"
               "    writer's return -> reader's first read of the new value: %s\n"
               "      (%ld writes were read before the writer's call returned, "
               "counted 0; the other %zu: %s)\n"
               "    reads returning the old value after the return was "
               "published: %ld of %ld reads (near-cache hits %llu; failed "
               "reads %ld; writes unread after %.0f s: %ld)\n"
               "    writes followed by such a read: %ld; the latest such read "
               "returned %.1f us after the write's return\n",
               strict, pct(all, (size_t)writes, b1), writes - (long)nafter,
               nafter, pct(after, nafter, b2), sh->stale, sh->reads,
               (unsigned long long)sh->near_hits, sh->errors, UNSEEN_AFTER,
               sh->unseen, sh->stale_writes, sh->stale_max * 1e6);
    }
    free(all);
    free(after);
}

/* One run with the reader's CACHE_L1_STRICT = strict, on hero id. */
static int run_mode(const char *path, const char *id, long writes,
                    const char *strict)
{
    xp_shared *sh = bench_shared_new(sizeof *sh);
    pid_t reader, writer;
    int bad = 0;
    if (!sh)
        return 1;
    fflush(NULL);
    if ((reader = fork()) == 0)
        _exit(reader_main(sh, path, id, strict));
    if ((writer = fork()) == 0)
        _exit(writer_main(sh, path, id, writes));
    if (reader < 0 || writer < 0) {
        perror("bench_crossproc: fork");
        atomic_store(&sh->done, 1);
        bad = 1;
    }
    if (writer > 0)
        bad |= bench_wait(writer, "writer") != 0;
    atomic_store(&sh->done, 1); /* the reader stops even if the writer failed */
    if (reader > 0)
        bad |= bench_wait(reader, "reader") != 0;
    if (!bad)
        report(sh, writes, strict);
    bench_shared_free(sh, sizeof *sh);
    return bad;
}

/* Seeds one hero per mode (version 0) into a fresh file; ids[i] owned. */
static int seed(const char *path, char *ids[2])
{
    rc_sqlite_db *db = NULL;
    rc_repo *r = NULL;
    int rc;
    bench_unlink_db(path);
    rc = rc_sqlite_open(path, &db);
    if (rc == RC_OK)
        rc = rc_sqlite_repo_new(db, &rc_hero_entity, &r);
    for (int i = 0; rc == RC_OK && i < 2; i++) {
        rc_hero *h = bench_hero_new(i ? "Relaxed reader's hero" : "Strict reader's hero",
                                    "v0", "en");
        rc_hero *saved = NULL;
        rc = h ? rc_repo_save(r, h, (void **)&saved) : RC_ENOMEM;
        if (rc == RC_OK && !(ids[i] = strdup(saved->id)))
            rc = RC_ENOMEM;
        rc_hero_free(saved);
        rc_hero_free(h);
    }
    if (rc != RC_OK)
        fprintf(stderr, "bench_crossproc: seed: %s: %s\n", rc_strerror(rc), rc_errmsg());
    rc_repo_free(r);
    rc_sqlite_free(db);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_crossproc --db PATH [--writes N] [--strict true|false]\n"
                    "  Redis from REDIS_URL (or REDIS_HOST/REDIS_PORT)\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *only = NULL;
    static const char *const modes[] = {"true", "false"};
    char *ids[2] = {NULL, NULL};
    long writes = 10000;
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc)
            path = argv[++i];
        else if (!strcmp(argv[i], "--writes") && i + 1 < argc)
            writes = atol(argv[++i]);
        else if (!strcmp(argv[i], "--strict") && i + 1 < argc)
            only = argv[++i];
        else
            return usage();
    }
    if (!path || writes < 1 || writes > MAX_WRITES ||
        (only && strcmp(only, "true") && strcmp(only, "false")))
        return usage();
    if (seed(path, ids) != RC_OK)
        return 1;
    printf("cross-process: a writer process updates a hero %ld times; a reader "
           "process holds it in its near cache\n", writes);
    for (int m = 0; m < 2; m++)
        if (!only || !strcmp(only, modes[m]))
            bad |= run_mode(path, ids[m], writes, modes[m]);
    free(ids[0]);
    free(ids[1]);
    return bad;
}
