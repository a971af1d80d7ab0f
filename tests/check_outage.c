/* check_outage.c - the promise across processes while Redis goes away and
 * comes back. A writer process updates one hero's name to 1, 2, 3, ... and
 * publishes each number after rc_repo_update returns (shared memory); a
 * reader process, two threads, reads the hero back-to-back and checks each
 * read against the last number published before the read began. This
 * process kills the private redis-server and restarts it (plain, and with
 * --appendonly yes so it comes back holding what it had), with the writer's
 * breaker longer than the reader's and the reverse. Printed: reads, writes,
 * violations per million reads, the maximum staleness (how long before the
 * read the first write the reader missed had returned) and, per outage, the
 * time from Redis's return to the reader's cache being trusted again.
 *
 * Also: `tale` as a short-lived writer that exits while Redis is paused;
 * its invalidation is applied by whichever process reaches Redis first.
 *
 * RC_OUTAGE_SECONDS=60 RC_OUTAGE_COUNT=5 (with CK_RUN_CASE=long_run) runs
 * the long measurement instead of skipping it. */
#include "harness.h"
#include "cache/service.h"
#include "repocache/cached_repository.h"
#include "repocache/sqlite_repository.h"

#include <pthread.h>
#include <sqlite3.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

enum { RING = 1 << 18, MAX_OUTAGES = 64 };

/* What the three processes share (an anonymous shared mapping). */
typedef struct board {
    atomic_long published;          /* last version whose update returned */
    _Atomic double pub_at[RING];    /* when version v % RING was published */
    atomic_bool direct[RING];       /* its writer trusted Redis before and
                                       after it: its own delete reached Redis */
    atomic_int stop;                /* the run is over */
    atomic_int ready;               /* processes that opened their side */
    atomic_long reads, violations;  /* the reader's figures */
    atomic_long covered;            /* violations behind a direct write */
    _Atomic double max_stale;       /* seconds */
    atomic_int outage;              /* outages begun so far */
    _Atomic double back_at[MAX_OUTAGES];    /* Redis answering again */
    _Atomic double trusted_at[MAX_OUTAGES]; /* reader trusted Redis again */
} board;

static board *bd;
static th_redis srv;
static char *db_path;

/* One process's view: its cache service, the SQLite file and a cached hero
 * repository over it. */
typedef struct side {
    rc_cache *cache;
    rc_sqlite_db *db;
    rc_repo *repo;
} side;

/* Opens a side with CIRCUIT_BREAKER_TIMEOUT = breaker seconds; 0 or -1. */
static int open_side(side *s, const char *breaker)
{
    rc_settings set;
    rc_strategy st;
    rc_repo *inner = NULL;
    rc_cached_repo_options o = {.own_inner = true};
    if (rc_settings_defaults(&set) != RC_OK ||
        rc_settings_set(&set, "REDIS_URL", srv.url) != RC_OK ||
        rc_settings_set(&set, "LOG_LEVEL", "error") != RC_OK ||
        rc_settings_set(&set, "REDIS_SOCKET_TIMEOUT", "0.2") != RC_OK ||
        rc_settings_set(&set, "CIRCUIT_BREAKER_THRESHOLD", "2") != RC_OK ||
        rc_settings_set(&set, "CIRCUIT_BREAKER_TIMEOUT", breaker) != RC_OK)
        return -1;
    int rc = rc_cache_new(&set, &s->cache);
    rc_settings_clear(&set);
    if (rc != RC_OK || rc_sqlite_open(db_path, &s->db) != RC_OK ||
        rc_sqlite_repo_new(s->db, &rc_hero_entity, &inner) != RC_OK ||
        rc_strategy_hero(NULL, &st) != RC_OK ||
        rc_cached_repo_new(inner, s->cache, &st, &o, &s->repo) != RC_OK)
        return -1;
    return 0;
}

static void close_side(side *s)
{
    rc_repo_free(s->repo);
    rc_sqlite_free(s->db);
    rc_cache_free(s->cache);
}

/* Sets hero h1's name to the number v through r. */
static int write_version(rc_repo *r, long v, bool create)
{
    rc_hero *h = rc_hero_new();
    char name[32];
    snprintf(name, sizeof name, "%ld", v);
    h->id = strdup("h1");
    h->name = strdup(name);
    h->age = 30;
    h->gender = strdup("male");
    h->appearance = strdup("tall");
    h->language = strdup("en");
    int rc = create ? rc_repo_save(r, h, NULL) : rc_repo_update(r, h, NULL, NULL);
    rc_hero_free(h);
    return rc;
}

/* Whether a service uses Redis (breaker closed, the last call reached it,
 * and Redis's identity checked and the outbox applied since trust was last
 * lost). */
static bool trusted(rc_cache *c)
{
    return rc_cache_circuit(c) == RC_CIRCUIT_CLOSED &&
           atomic_load(&c->avail) == RC_AVAIL_UP && rc_identity_trusted(c);
}

/* The writer process: a version per millisecond or so until told to stop. */
static int writer_main(const char *breaker)
{
    side w;
    if (open_side(&w, breaker) != 0)
        return 1;
    atomic_fetch_add(&bd->ready, 1);
    long v = atomic_load(&bd->published);
    while (!atomic_load(&bd->stop)) {
        v++;
        bool before = trusted(w.cache);
        if (write_version(w.repo, v, false) != RC_OK)
            return 2;
        atomic_store(&bd->direct[v % RING], before && trusted(w.cache));
        atomic_store(&bd->pub_at[v % RING], th_now());
        atomic_store(&bd->published, v);
        usleep(1000);
    }
    close_side(&w);
    return 0;
}

/* One reader thread: every read against the version published before it. */
static void *reader_thread(void *p)
{
    rc_repo *r = p;
    while (!atomic_load(&bd->stop)) {
        long before = atomic_load(&bd->published);
        double t = th_now();
        void *e = NULL;
        if (rc_repo_find_by_id(r, "h1", &e) != RC_OK)
            continue;
        long got = atol(((rc_hero *)e)->name);
        rc_hero_free(e);
        atomic_fetch_add(&bd->reads, 1);
        if (got >= before)
            continue;
        atomic_fetch_add(&bd->violations, 1);
        if (atomic_load(&bd->direct[(got + 1) % RING]))
            atomic_fetch_add(&bd->covered, 1);
        double stale = t - atomic_load(&bd->pub_at[(got + 1) % RING]);
        double m = atomic_load(&bd->max_stale);
        while (stale > m && !atomic_compare_exchange_weak(&bd->max_stale, &m, stale))
            ;
    }
    return NULL;
}

/* The reader process: two reading threads; this one notes, per outage, when
 * the service trusts Redis again after its return. */
static int reader_main(const char *breaker)
{
    side rd;
    if (open_side(&rd, breaker) != 0)
        return 1;
    atomic_fetch_add(&bd->ready, 1);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, reader_thread, rd.repo);
    while (!atomic_load(&bd->stop)) {
        int k = atomic_load(&bd->outage) - 1;
        if (k >= 0 && atomic_load(&bd->back_at[k]) > 0 &&
            atomic_load(&bd->trusted_at[k]) == 0 && trusted(rd.cache))
            atomic_store(&bd->trusted_at[k], th_now());
        usleep(1000);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    close_side(&rd);
    return 0;
}

static pid_t spawn(int (*fn)(const char *), const char *breaker)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(fn(breaker));
    return pid;
}

static void sleep_s(double s) { usleep((useconds_t)(s * 1e6)); }

/* The figures of one run. */
typedef struct result {
    double ppm;       /* violations per million reads */
    long covered;     /* violations behind a write whose delete reached Redis */
    double max_stale; /* seconds */
} result;

/* One run: seconds in all, outages of down seconds each, evenly spread. */
static result run(const char *label, const char *redis_args,
                  const char *writer_breaker, const char *reader_breaker,
                  double seconds, int outages, double down)
{
    ck_assert_int_le(outages, MAX_OUTAGES);
    ck_assert_int_eq(th_redis_start(&srv, redis_args), 0);
    db_path = th_tmpfile("outage.db");
    bd = mmap(NULL, sizeof *bd, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(bd != MAP_FAILED);
    memset(bd, 0, sizeof *bd);
    side s0;
    ck_assert_int_eq(open_side(&s0, "1"), 0);
    ck_assert_int_eq(write_version(s0.repo, 0, true), RC_OK);
    close_side(&s0);
    pid_t w = spawn(writer_main, writer_breaker), r = spawn(reader_main, reader_breaker);
    th_await(atomic_load(&bd->ready) == 2, TH_WAIT_SECONDS);
    double slot = seconds / (outages + 1), t0 = th_now();
    for (int k = 0; k < outages; k++) {
        sleep_s(t0 + slot * (k + 1) - th_now());
        th_redis_kill(&srv);
        atomic_store(&bd->outage, k + 1);
        sleep_s(down);
        ck_assert_int_eq(th_redis_restart(&srv), 0);
        atomic_store(&bd->back_at[k], th_now());
    }
    sleep_s(t0 + seconds - th_now());
    atomic_store(&bd->stop, 1);
    int st;
    ck_assert_int_eq(waitpid(w, &st, 0), w);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer failed (%d)", st);
    ck_assert_int_eq(waitpid(r, &st, 0), r);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reader failed (%d)", st);
    long reads = atomic_load(&bd->reads), bad = atomic_load(&bd->violations);
    double ppm = reads ? 1e6 * (double)bad / (double)reads : 0, worst = 0;
    int untrusted = 0;
    for (int k = 0; k < outages; k++) {
        double tr = atomic_load(&bd->trusted_at[k]);
        if (tr == 0)
            untrusted++;
        else if (tr - atomic_load(&bd->back_at[k]) > worst)
            worst = tr - atomic_load(&bd->back_at[k]);
    }
    fprintf(stderr,
            "outage: %s: %.1f s, %d outages of %.1f s: %ld reads, %ld writes, "
            "%ld violations (%.0f per million; %ld behind a write whose delete "
            "reached Redis), max staleness %.1f ms, Redis back -> trusted at "
            "most %.0f ms (%d outages never trusted)\n",
            label, seconds, outages, down, reads, atomic_load(&bd->published), bad,
            ppm, atomic_load(&bd->covered), atomic_load(&bd->max_stale) * 1e3,
            worst * 1e3, untrusted);
    result res = {ppm, atomic_load(&bd->covered), atomic_load(&bd->max_stale)};
    ck_assert_int_gt(reads, 1000);
    ck_assert_int_eq(untrusted, 0);
    th_redis_stop(&srv);
    munmap(bd, sizeof *bd);
    free(db_path);
    return res;
}

/* What every run must show: no stale read behind a write whose delete
 * reached Redis, and a stale read behind one that could not at most
 * CACHE_OUTBOX_POLL_MS (100 ms) plus a round trip old; 50 ms of slack for a
 * loaded machine's scheduling. */
static void check(result r)
{
    ck_assert_int_eq(r.covered, 0);
    ck_assert_msg(r.max_stale < 0.100 + 0.050, "max staleness %.1f ms", r.max_stale * 1e3);
}

START_TEST(test_plain_writer_breaker_longer)
{
    check(run("plain, writer breaker 3 s, reader 0.3 s", NULL, "3", "0.3", 3.5, 1, 0.5));
}
END_TEST

START_TEST(test_plain_reader_breaker_longer)
{
    check(run("plain, writer breaker 0.3 s, reader 3 s", NULL, "0.3", "3", 3.5, 1, 0.5));
}
END_TEST

START_TEST(test_aof_writer_breaker_longer)
{
    check(run("aof, writer breaker 3 s, reader 0.3 s", "--appendonly yes", "3", "0.3",
                     3.5, 1, 0.5));
}
END_TEST

START_TEST(test_aof_reader_breaker_longer)
{
    check(run("aof, writer breaker 0.3 s, reader 3 s", "--appendonly yes", "0.3", "3",
                     3.5, 1, 0.5));
}
END_TEST

/* ---- tale as a short-lived writer ---- */

/* The first column of the first row of sql on the database (a number). */
static long long db_number(const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Runs `tale ARGS` (with stdin from file in, when not NULL) against srv and
 * db_path; its exit status, its stdout into out (when not NULL). */
static int run_tale(const char *args, const char *in, char *out, size_t outlen)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "REDIS_URL=%s REDIS_SOCKET_TIMEOUT=0.2 LOG_LEVEL=error %s --db %s %s %s%s",
             srv.url, getenv("TALE_BIN"), db_path, args, in ? "< " : "", in ? in : "");
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = out ? fread(out, 1, outlen - 1, p) : 0;
    if (out)
        out[n] = '\0';
    else
        while (fgetc(p) != EOF)
            ;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The name of hero h1 read through r. */
static char *name_of(rc_repo *r)
{
    void *e = NULL;
    ck_assert_int_eq(rc_repo_find_by_id(r, "h1", &e), RC_OK);
    char *n = strdup(((rc_hero *)e)->name);
    rc_hero_free(e);
    return n;
}

START_TEST(test_tale_writer_exits_during_outage)
{
    ck_assert_ptr_nonnull(getenv("TALE_BIN"));
    ck_assert_int_eq(th_redis_start(&srv, NULL), 0);
    db_path = th_tmpfile("outage-tale.db");
    side r;
    ck_assert_int_eq(open_side(&r, "0.3"), 0);
    ck_assert_int_eq(write_version(r.repo, 0, true), RC_OK);
    free(name_of(r.repo)); /* the database's answer, now in Redis */
    redisContext *raw = th_redis_connect(&srv, NULL);
    redisReply *rep = redisCommand(raw, "EXISTS hero:h1");
    ck_assert_int_eq(rep->integer, 1);
    freeReplyObject(rep);
    /* Redis stops answering; tale updates the hero and exits. */
    th_redis_pause(&srv);
    rc_hero *h = NULL;
    ck_assert_int_eq(rc_repo_find_by_id(r.repo, "h1", (void **)&h), RC_OK);
    free(h->name);
    h->name = strdup("from-tale");
    char *text = NULL, *in = th_tmpfile("hero.json");
    ck_assert_int_eq(rc_entity_encode_text(&rc_hero_codec, h, &text), RC_OK);
    rc_hero_free(h);
    FILE *f = fopen(in, "w");
    fputs(text, f);
    fclose(f);
    free(text);
    ck_assert_int_eq(run_tale("put hero", in, NULL, 0), 0);
    ck_assert_int_eq(db_number("SELECT count(*) FROM rc_outbox WHERE applied = 0"), 1);
    /* Redis comes back holding the old value; the first process to use it
     * (tale here, or this process's background probe) applies the row. */
    th_redis_resume(&srv);
    char out[4096];
    ck_assert_int_eq(run_tale("get hero h1", NULL, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "from-tale"));
    th_await(rc_identity_trusted(r.cache) && rc_cache_circuit(r.cache) == RC_CIRCUIT_CLOSED,
             TH_WAIT_SECONDS);
    char *n = name_of(r.repo);
    ck_assert_str_eq(n, "from-tale");
    free(n);
    ck_assert_int_eq(db_number("SELECT count(*) FROM rc_outbox WHERE applied = 0"), 0);
    fprintf(stderr, "outage: tale wrote during a pause and exited; its row was applied "
                    "when Redis answered again, and every reader saw its write\n");
    redisFree(raw);
    close_side(&r);
    th_redis_stop(&srv);
    free(in);
    free(db_path);
}
END_TEST

/* The long measurement, when asked for (RC_OUTAGE_SECONDS). */
START_TEST(test_long_run)
{
    const char *secs = getenv("RC_OUTAGE_SECONDS"), *n = getenv("RC_OUTAGE_COUNT");
    if (!secs)
        return;
    const char *aof = getenv("RC_OUTAGE_AOF");
    check(run("long run", aof && *aof ? "--appendonly yes" : NULL, "30", "30",
              atof(secs), n ? atoi(n) : 5, 2.0));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("outage");
    const th_case cases[] = {
        {"plain_writer_breaker_longer", test_plain_writer_breaker_longer},
        {"plain_reader_breaker_longer", test_plain_reader_breaker_longer},
        {"aof_writer_breaker_longer", test_aof_writer_breaker_longer},
        {"aof_reader_breaker_longer", test_aof_reader_breaker_longer},
        {"tale_writer_exits_during_outage", test_tale_writer_exits_during_outage},
        {"long_run", test_long_run},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], NULL, NULL, 600);
    return th_run_suite(s);
}
