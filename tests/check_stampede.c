/* check_stampede.c - one database load per stampede: 4 processes x 16
 * threads read one cold id at once through cached repositories (each process
 * its own service, as separate programs have), over a repository whose find
 * takes 20 ms and counts its loads in memory shared by the processes. The
 * threads of a process share one load (the near cache's single flight, or
 * each thread's wait on the lease without it); the processes wait on the
 * lease of the one that loads. A not-found answer is shared the same way. */
#include "harness.h"
#include "repocache/cache.h"
#include "repocache/cached_repository.h"
#include "repocache/settings.h"
#include "repocache/sqlite_repository.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NPROC 4
#define NTHREADS 16
#define NBURSTS 4 /* the last reads an id nobody saved */
#define LOAD_MS 20

/* Shared by every process (MAP_SHARED before fork). */
typedef struct board {
    char ids[NBURSTS][64];           /* the id each burst reads */
    atomic_int arrived[NBURSTS];     /* processes ready for the burst */
    atomic_int loads[NBURSTS];       /* finds that reached the database */
    atomic_int wrong[NBURSTS];       /* reads that did not answer right */
} board;

static th_redis shared;
static char *db_path;
static board *bd;

/* ---- a slow repository over SQLite that counts its loads ---- */

typedef struct slow_repo {
    rc_repo base; /* must be first */
    rc_repo *inner;
    int burst;    /* which burst's load counter to bump (set per burst) */
} slow_repo;

static int slow_find(rc_repo *b, const char *id, void **out)
{
    slow_repo *s = (slow_repo *)b;
    atomic_fetch_add(&bd->loads[s->burst], 1);
    struct timespec ts = {0, LOAD_MS * 1000000L};
    nanosleep(&ts, NULL);
    return rc_repo_find_by_id(s->inner, id, out);
}

static void slow_destroy(rc_repo *b)
{
    rc_repo_free(((slow_repo *)b)->inner);
    free(b);
}

static const rc_repo_methods slow_methods = {
    .version = RC_REPO_VERSION,
    .name = "slow",
    .find_by_id = slow_find,
    .destroy = slow_destroy,
};

/* ---- one reading process ---- */

typedef struct reader {
    rc_repo *repo;
    int burst;
    pthread_barrier_t *start;
} reader;

static void *read_once(void *p)
{
    reader *r = p;
    pthread_barrier_wait(r->start);
    void *e = NULL;
    int rc = rc_repo_find_by_id(r->repo, bd->ids[r->burst], &e);
    bool missing = r->burst == NBURSTS - 1;
    if (missing ? rc != RC_ENOTFOUND : rc != RC_OK || !e)
        atomic_fetch_add(&bd->wrong[r->burst], 1);
    rc_hero_free(e);
    return NULL;
}

/* The body of one reading process; its exit status: 0 when set up. */
static int reader_process(const char *near_enabled)
{
    rc_settings s;
    rc_cache *cache = NULL;
    rc_sqlite_db *db = NULL;
    rc_repo *sq = NULL, *repo = NULL;
    rc_strategy st;
    setenv("REDIS_URL", shared.url, 1);
    setenv("LOG_LEVEL", "error", 1);
    setenv("CACHE_L1_ENABLED", near_enabled, 1);
    slow_repo *slow = calloc(1, sizeof *slow);
    if (!slow || rc_settings_load(&s, NULL) || rc_cache_new(&s, &cache) ||
        rc_sqlite_open(db_path, &db) || rc_sqlite_repo_new(db, &rc_hero_entity, &sq) ||
        rc_strategy_hero(&s, &st))
        return 1;
    slow->base.methods = &slow_methods;
    slow->base.entity = &rc_hero_entity;
    slow->inner = sq;
    rc_cached_repo_options o = {.own_inner = true};
    if (rc_cached_repo_new(&slow->base, cache, &st, &o, &repo))
        return 1;
    for (int b = 0; b < NBURSTS; b++) {
        slow->burst = b;
        atomic_fetch_add(&bd->arrived[b], 1);
        while (atomic_load(&bd->arrived[b]) < NPROC)
            usleep(100);
        pthread_t th[NTHREADS];
        reader rd = {repo, b, NULL};
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, NTHREADS);
        rd.start = &start;
        for (int t = 0; t < NTHREADS; t++)
            pthread_create(&th[t], NULL, read_once, &rd);
        for (int t = 0; t < NTHREADS; t++)
            pthread_join(th[t], NULL);
        pthread_barrier_destroy(&start);
    }
    rc_repo_free(repo);
    rc_cache_free(cache);
    rc_sqlite_free(db);
    rc_settings_clear(&s);
    return 0;
}

static void setup(void)
{
    ck_assert_int_eq(th_redis_shared(&shared), 0);
    ck_assert_int_eq(th_redis_flushall(&shared, NULL), 0);
    db_path = th_tmpfile("stampede.db");
    bd = mmap(NULL, sizeof *bd, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(bd, MAP_FAILED);
    memset(bd, 0, sizeof *bd);
    rc_sqlite_db *db = NULL;
    rc_repo *sq = NULL;
    ck_assert_int_eq(rc_sqlite_open(db_path, &db), RC_OK);
    ck_assert_int_eq(rc_sqlite_repo_new(db, &rc_hero_entity, &sq), RC_OK);
    for (int b = 0; b < NBURSTS - 1; b++) {
        rc_hero *h = rc_hero_new(), *saved = NULL;
        h->name = strdup("Stampede");
        h->age = 30;
        h->gender = strdup("female");
        h->appearance = strdup("");
        h->language = strdup("en");
        ck_assert_int_eq(rc_repo_save(sq, h, (void **)&saved), RC_OK);
        snprintf(bd->ids[b], sizeof bd->ids[b], "%s", saved->id);
        rc_hero_free(h);
        rc_hero_free(saved);
    }
    snprintf(bd->ids[NBURSTS - 1], sizeof bd->ids[0], "nobody-saved-this");
    rc_repo_free(sq);
    rc_sqlite_free(db);
}

static void teardown(void)
{
    munmap(bd, sizeof *bd);
    free(db_path);
}

/* Runs the bursts with NPROC reading processes and checks one load each. */
static void stampede(const char *near_enabled)
{
    pid_t pids[NPROC];
    for (int p = 0; p < NPROC; p++) {
        pids[p] = fork();
        ck_assert_int_ge(pids[p], 0);
        if (pids[p] == 0)
            _exit(reader_process(near_enabled));
    }
    for (int p = 0; p < NPROC; p++) {
        int status;
        ck_assert_int_eq(waitpid(pids[p], &status, 0), pids[p]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "reader process %d failed to set up", p);
    }
    for (int b = 0; b < NBURSTS; b++) {
        fprintf(stderr, "stampede (near cache %s): burst %d: %d database load(s) for %d reads\n",
                near_enabled, b, atomic_load(&bd->loads[b]), NPROC * NTHREADS);
        ck_assert_int_eq(atomic_load(&bd->wrong[b]), 0);
        ck_assert_int_eq(atomic_load(&bd->loads[b]), 1);
    }
}

START_TEST(test_one_load_per_stampede) { stampede("true"); }
END_TEST

START_TEST(test_one_load_without_near_cache) { stampede("false"); }
END_TEST

static Suite *stampede_suite(void)
{
    Suite *s = suite_create("stampede");
    const th_case cases[] = {
        {"one_load_per_stampede", test_one_load_per_stampede},
        {"one_load_without_near_cache", test_one_load_without_near_cache},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], setup, teardown, 60);
    return s;
}

int main(void)
{
    return th_run_suite(stampede_suite());
}
