/*
 * tls.c - what TLS costs: a Redis hit over TLS against the same hit over a
 * plain socket, on one redis-server listening on both, in the same run; and
 * the time to open a connection with and without TLS.
 *
 *   bench_tls --db PATH [--reps N] [--connects N]
 *
 * The plain side is REDIS_URL (redis://); the TLS side is BENCH_TLS_URL
 * (rediss://, with the REDIS_TLS_* settings of the environment: CA, client
 * certificate). scripts/bench.sh starts such a server with certificates made
 * at run time.
 *
 * Hit: find by id through a cached hero repository on a service without
 * the near cache (CACHE_L1_ENABLED=false), every read a Redis hit (warmed
 * first, untimed), one thread; --reps repetitions per side (default 9),
 * plain and TLS interleaved; the figure is the median. The target: TLS
 * ops/s / plain ops/s >= 0.8.
 *
 * Connect: --connects (default 200) openings of one link each way,
 * interleaved, each timed from the start of rc_link_open (the library's own
 * transport, src/cache/link.c: socket, non-blocking connect and, for TLS,
 * the whole handshake with certificate verification) until it returns, the
 * link then closed untimed. Both sides name the server by its address
 * (127.0.0.1), so no name resolution is in either. The median and the 90th
 * percentile, in microseconds. Not in it: the AUTH/SELECT/PING the pool
 * runs after a connect (one round trip each, as a hit).
 * Keys live under CACHE_KEY_PREFIX + "bench-tls:" and are removed at the end.
 */
#include "support.h"

#include "cache/link.h"
#include "cache/tls.h"
#include "repocache/cached_repository.h"
#include "repocache/log.h"
#include "repocache/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NHEROES 200
#define OPS 4000 /* reads per repetition */
#define MAX_REPS 99
#define MAX_CONNECTS 5000

static double now(void) { return rc_clock_monotonic(NULL); }

typedef struct side {
    const char *name;
    bench_side x;
    rc_link_config link; /* for the connect figure */
    char *host;
    int port;
} side;

static char *ids[NHEROES];

/* Reads every hero through s, OPS in all; seconds taken, or -1. */
static double read_all(side *s)
{
    double t0 = now();
    for (size_t i = 0; i < OPS; i++) {
        void *e = NULL;
        if (rc_repo_find_by_id(s->x.cached, ids[i % NHEROES], &e) != RC_OK || !e) {
            fprintf(stderr, "bench_tls: %s: a read failed: %s\n", s->name, rc_errmsg());
            return -1;
        }
        rc_hero_free(e);
    }
    return now() - t0;
}

/* One connect of s: microseconds, or -1. */
static double connect_once(side *s)
{
    rc_link *l = NULL;
    double t0 = now();
    int st = rc_link_open(&s->link, s->host, s->port, NULL, &l);
    double us = (now() - t0) * 1e6;
    if (st != RC_OK) {
        fprintf(stderr, "bench_tls: %s: connect failed: %s\n", s->name, rc_errmsg());
        return -1;
    }
    rc_link_close(l);
    return us;
}

static int open_side(side *s, const char *name, const char *db, const char *url)
{
    const char *kv[] = {"REDIS_URL", url, "CACHE_L1_ENABLED", "false",
                        "CACHE_STATS_FLUSH_INTERVAL", "0", "LOG_LEVEL", "error", NULL};
    s->name = name;
    if (bench_side_open(&s->x, db, "bench-tls:", kv) || bench_side_wrap(&s->x, NULL))
        return -1;
    s->host = s->x.s.redis_host;
    s->port = s->x.s.redis_port;
    s->link.timeout = s->x.s.redis_socket_timeout;
    if (s->x.s.redis_tls && rc_tls_new(&s->x.s, RC_LOG_ERROR, &s->link.tls) != RC_OK) {
        fprintf(stderr, "bench_tls: %s: %s\n", name, rc_errmsg());
        return -1;
    }
    return 0;
}

static void close_side(side *s)
{
    rc_tls_free(s->link.tls);
    bench_side_close(&s->x);
}

static int parse_args(int argc, char **argv, const char **db, int *reps, int *connects)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
            *db = argv[++i];
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            *reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--connects") == 0 && i + 1 < argc)
            *connects = atoi(argv[++i]);
        else
            return -1;
    }
    return *db && *reps > 0 && *reps <= MAX_REPS && *connects > 0 &&
                   *connects <= MAX_CONNECTS
               ? 0
               : -1;
}

/* Saves the heroes (through the plain side's SQLite repository). */
static int seed(side *s)
{
    for (int i = 0; i < NHEROES; i++) {
        char name[32];
        snprintf(name, sizeof name, "TLS hero %d", i);
        rc_hero *h = bench_hero_new(name, "a bench hero with a long green cloak", "en"), *out = NULL;
        int st = h ? rc_repo_save(s->x.sqlite, h, (void **)&out) : RC_ENOMEM;
        rc_hero_free(h);
        if (st != RC_OK || !out || !(ids[i] = strdup(out->id))) {
            rc_hero_free(out);
            fprintf(stderr, "bench_tls: seeding: %s\n", rc_errmsg());
            return -1;
        }
        rc_hero_free(out);
    }
    return 0;
}

static void print_connects(const char *name, double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    printf("%-44s %10.0f %10.0f\n", name, bench_quantile(v, (size_t)n, 0.5),
           bench_quantile(v, (size_t)n, 0.9));
}

int main(int argc, char **argv)
{
    const char *db = NULL, *tls_url = getenv("BENCH_TLS_URL"), *plain_url = getenv("REDIS_URL");
    int reps = 9, connects = 200, status = 1;
    if (parse_args(argc, argv, &db, &reps, &connects) || !tls_url || !plain_url) {
        fprintf(stderr, "usage: REDIS_URL=redis://... BENCH_TLS_URL=rediss://... bench_tls "
                        "--db PATH [--reps N<=%d] [--connects N<=%d]\n",
                MAX_REPS, MAX_CONNECTS);
        return 2;
    }
    bench_unlink_db(db);
    side plain = {0}, tls = {0};
    static double hit[2][MAX_REPS], conn[2][MAX_CONNECTS];
    if (open_side(&plain, "plain", db, plain_url) || open_side(&tls, "TLS", db, tls_url) ||
        seed(&plain) || read_all(&plain) < 0 || read_all(&tls) < 0)
        goto out;
    for (int r = 0; r < reps; r++) {
        double a = read_all(&plain), b = read_all(&tls);
        if (a < 0 || b < 0)
            goto out;
        hit[0][r] = OPS / a;
        hit[1][r] = OPS / b;
    }
    for (int i = 0; i < connects; i++) {
        if ((conn[0][i] = connect_once(&plain)) < 0 || (conn[1][i] = connect_once(&tls)) < 0)
            goto out;
    }
    redisContext *raw = bench_redis_connect(&plain.x.s);
    char machine[256] = "";
    if (raw) {
        bench_describe_machine(raw, machine, sizeof machine);
        redisFree(raw);
    }
    rc_cache_connection info;
    rc_cache_connection_info(tls.x.cache, &info);
    qsort(hit[0], (size_t)reps, sizeof(double), bench_cmp_double);
    qsort(hit[1], (size_t)reps, sizeof(double), bench_cmp_double);
    double p = bench_quantile(hit[0], (size_t)reps, 0.5), t = bench_quantile(hit[1], (size_t)reps, 0.5);
    printf("%s\nTLS: %s\n\n", machine, info.tls);
    printf("%-44s %12s %10s\n", "Redis hit (find by id, no near cache)", "ops/s", "us/op");
    printf("%-44s %12.0f %10.1f\n", "plain", p, 1e6 / p);
    printf("%-44s %12.0f %10.1f\n", "TLS", t, 1e6 / t);
    printf("(median of %d repetitions of %d reads, interleaved)\n\n", reps, OPS);
    printf("%-44s %10s %10s\n", "connect (rc_link_open, 127.0.0.1)", "median us", "p90 us");
    print_connects("plain (socket, connect)", conn[0], connects);
    print_connects("TLS (socket, connect, handshake, verify)", conn[1], connects);
    printf("(%d connects each way, interleaved)\n\n", connects);
    printf("%-58s %10s %10s\n", "target", "measured", "bound");
    printf("%-58s %9.2fx %9.2fx  %s\n", "TLS Redis hit ops/s / plain", t / p, 0.8,
           t / p >= 0.8 ? "met" : "NOT MET");
    status = 0;
out:
    if (plain.x.cache) {
        long long removed = 0;
        rc_cache_clear(plain.x.cache, "*", &removed);
    }
    close_side(&tls);
    close_side(&plain);
    for (int i = 0; i < NHEROES; i++)
        free(ids[i]);
    bench_unlink_db(db);
    return status;
}
