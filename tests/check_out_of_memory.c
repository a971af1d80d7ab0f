/*
 * check_out_of_memory.c - every allocation failing in turn, until the call
 * succeeds: every public call of the cache service that allocates, both
 * stats JSON functions, the decorator's construction, and its reads and
 * writes, against a real redis-server.
 *
 * How: this executable is linked with -Wl,--wrap=malloc,--wrap=calloc,
 * --wrap=realloc,--wrap=free (tests/CMakeLists.txt). The library's objects
 * are linked into it, so every call its own code makes to those goes through
 * the __wrap_ functions below, which count the allocations of the call under
 * test and make the Nth fail; jansson is given the same functions
 * (json_set_alloc_funcs), so its allocations count too. Not reached:
 * allocations made inside shared libraries themselves (libc, sqlite, and
 * hiredis, which aborts on out of memory anyway; see cache.h). So this
 * proves, for each of the library's own allocations and jansson's: the call
 * answers RC_ENOMEM (or, where the library promises it, its normal answer),
 * hands nothing back on failure, leaks nothing (every block allocated during
 * the call is freed once its outputs are), and the service keeps working.
 *
 * The sanitizer build runs it too: --wrap renames only this link's
 * references, and __real_malloc is ASan's malloc.
 */
#include "harness.h"
#include "side.h"
#include "service.h"

#include "cache/lease.h"
#include "cache/service.h"
#include "repocache/cached_repository.h"
#include "repocache/sqlite_repository.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the failing allocator ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t m, size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
void __real_free(void *p);

/* Blocks allocated while armed and not freed yet (no malloc here). */
#define MAX_LIVE 65536

static bool armed;           /* counting (and failing) now */
static long fail_at;         /* the allocation to fail (1-based) */
static long calls;           /* allocations since arming */
static void *live[MAX_LIVE]; /* blocks allocated while armed */
static size_t nlive;         /* how many */

/* Whether this allocation is the one to fail. */
static bool fail_now(void)
{
    return armed && ++calls == fail_at;
}

static void track(void *p)
{
    if (!armed || !p)
        return;
    if (nlive == MAX_LIVE)
        abort();
    live[nlive++] = p;
}

/* Forgets p; whether it was tracked. */
static bool untrack(void *p)
{
    for (size_t i = nlive; i-- > 0;)
        if (live[i] == p) {
            live[i] = live[--nlive];
            return true;
        }
    return false;
}

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t m, size_t n);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n);
void __wrap_free(void *p);

void *__wrap_malloc(size_t n)
{
    if (fail_now())
        return NULL;
    void *p = __real_malloc(n);
    track(p);
    return p;
}

void *__wrap_calloc(size_t m, size_t n)
{
    if (fail_now())
        return NULL;
    void *p = __real_calloc(m, n);
    track(p);
    return p;
}

void *__wrap_realloc(void *old, size_t n)
{
    if (fail_now())
        return NULL; /* old is untouched, as realloc promises */
    void *p = __real_realloc(old, n);
    if (p) {
        bool was = old && untrack(old);
        if (was || !old)
            track(p);
    }
    return p;
}

void *__wrap_aligned_alloc(size_t a, size_t n)
{
    if (fail_now())
        return NULL;
    void *p = __real_aligned_alloc(a, n);
    track(p);
    return p;
}

void __wrap_free(void *p)
{
    if (p)
        untrack(p);
    __real_free(p);
}

/* From now on the nth allocation fails. */
static void arm(long n)
{
    nlive = 0;
    calls = 0;
    fail_at = n;
    armed = true;
}

/* Stops failing and tracking (blocks already tracked stay so, to be freed). */
static void disarm(void)
{
    armed = false;
}

/* Blocks allocated while armed that are still live. */
static size_t leaked(void)
{
    return nlive;
}

/* While a wrapped repository works (its own allocations are not the
 * library's; see the suspending repository below). */
static long suspended_calls;

static void suspend(void)
{
    suspended_calls = calls;
    armed = false;
}

static void resume(void)
{
    calls = suspended_calls;
    armed = fail_at != 0;
}

/* ---- the loop ---- */

/* One call under test: call runs armed (it must not use Check); check runs
 * unarmed, asserts the outcome rc and frees what call handed back; prepare
 * (may be NULL) puts Redis in the state the call expects, unarmed. */
typedef struct oom_case {
    const char *name;
    void (*prepare)(void *ud);
    int (*call)(void *ud);
    void (*check)(void *ud, int rc);
} oom_case;

/* Runs k with the 1st, 2nd, ... allocation failing until a run in which
 * none failed; every run answers RC_OK or RC_ENOMEM (RC_OK when nothing
 * failed) and leaks nothing. Returns how many allocations the call made. */
static long run_case(const oom_case *k, void *ud)
{
    bool done = false;
    long n;
    for (n = 1; !done && n < 20000; n++) {
        if (k->prepare)
            k->prepare(ud);
        arm(n);
        int rc = k->call(ud);
        disarm();
        done = calls < n;
        fail_at = 0;
        ck_assert_msg(rc == RC_OK || rc == RC_ENOMEM, "%s, N=%ld: %s", k->name,
                      n, rc_status_name(rc));
        ck_assert_msg(!done || rc == RC_OK, "%s, N=%ld: %s without a failure",
                      k->name, n, rc_status_name(rc));
        k->check(ud, rc);
        ck_assert_msg(leaked() == 0, "%s, N=%ld: %zu blocks leaked", k->name, n,
                      leaked());
    }
    ck_assert_msg(done, "%s: never succeeded", k->name);
    printf("%s: each of %ld allocations failed in turn\n", k->name, n - 2);
    fflush(stdout);
    return n - 2;
}

/* ---- the cache service ---- */

static th_redis srv;
static rc_settings settings;
static rc_cache *cache;
static char prefix[64];

static void setup(void)
{
    ck_assert_int_eq(th_redis_shared(&srv), 0);
    snprintf(prefix, sizeof prefix, "oom%d:", (int)getpid());
    ck_assert_int_eq(rc_settings_defaults(&settings), RC_OK);
    ck_assert_int_eq(rc_settings_set(&settings, "REDIS_URL", srv.url), RC_OK);
    ck_assert_int_eq(rc_settings_set(&settings, "CACHE_KEY_PREFIX", prefix),
                     RC_OK);
    ck_assert_int_eq(rc_settings_set(&settings, "LOG_LEVEL", "error"), RC_OK);
    /* The near cache's thread allocates on a schedule of its own, and this
     * counting allocator is not thread-safe: off here (check_near and
     * check_near_cache cover it). */
    ck_assert_int_eq(rc_settings_set(&settings, "CACHE_L1_ENABLED", "false"), RC_OK);
    ck_assert_int_eq(rc_cache_new(&settings, &cache), RC_OK);
    /* an idle connection, so that the calls below do not connect */
    ck_assert_int_eq(rc_cache_health_check(cache), RC_OK);
    json_set_alloc_funcs(__wrap_malloc, __wrap_free);
}

static void teardown(void)
{
    long long n;
    json_set_alloc_funcs(malloc, free);
    rc_cache_clear(cache, "*", &n);
    rc_cache_free(cache);
    cache = NULL;
    rc_settings_clear(&settings);
    th_redis_stop(&srv);
}

/* The full key of k. */
static const char *K(const char *k)
{
    return th_key(prefix, k);
}

/* The value of key through the service (unarmed), malloc'd; NULL when
 * absent. */
static char *get(const char *key)
{
    char *v = NULL;
    int rc = rc_cache_get(cache, key, &v, NULL);
    ck_assert(rc == RC_OK || rc == RC_ENOTFOUND);
    return v;
}

static void put(const char *key, const char *val)
{
    ck_assert_int_eq(rc_cache_set(cache, key, val, strlen(val), 60), RC_OK);
}

/* What the cases hand over between call and check. */
typedef struct io {
    char *s;        /* a string handed back */
    size_t len;     /* its length */
    long long n;    /* a count handed back */
    bool b;         /* a flag handed back */
    char *vals[3];  /* values handed back */
    size_t lens[3]; /* their lengths */
    rc_cache *c;    /* a service made by the call */
    rc_repo *repo;  /* a repository made by the call */
} io;

/* ---- construction and keys ---- */

static int call_new(void *ud)
{
    io *o = ud;
    return rc_cache_new(&settings, &o->c);
}

static void check_new(void *ud, int rc)
{
    io *o = ud;
    ck_assert(rc == RC_OK ? o->c != NULL : o->c == NULL);
    if (o->c)
        ck_assert_int_eq(rc_cache_health_check(o->c), RC_OK);
    rc_cache_free(o->c);
    o->c = NULL;
}

static int call_key(void *ud)
{
    io *o = ud;
    o->s = NULL;
    return rc_cache_key(cache, "k", &o->s);
}

static void check_key(void *ud, int rc)
{
    io *o = ud;
    if (rc == RC_OK)
        ck_assert_str_eq(o->s, K("k"));
    else
        ck_assert_ptr_null(o->s);
    free(o->s);
}

static int call_escape(void *ud)
{
    io *o = ud;
    o->s = NULL;
    return rc_cache_glob_escape("a*b?", &o->s);
}

static void check_escape(void *ud, int rc)
{
    io *o = ud;
    if (rc == RC_OK)
        ck_assert_str_eq(o->s, "a\\*b\\?");
    else
        ck_assert_ptr_null(o->s);
    free(o->s);
}

START_TEST(test_construction_and_keys)
{
    io o = {0};
    const oom_case cases[] = {
        {"rc_cache_new", NULL, call_new, check_new},
        {"rc_cache_key", NULL, call_key, check_key},
        {"rc_cache_glob_escape", NULL, call_escape, check_escape},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_int_gt(run_case(&cases[i], &o), 0);
}
END_TEST

/* ---- connecting, and the fallback ---- */

/* A fresh service (no connection yet), with Redis on or off. */
static rc_cache *fresh(bool enabled)
{
    const char *kv[] = {"CACHE_KEY_PREFIX", prefix, "REDIS_ENABLED",
                        enabled ? "1" : "0", "CACHE_L1_ENABLED", "false", NULL};
    return th_cache_new(srv.url, kv);
}

static void prep_connect(void *ud)
{
    io *o = ud;
    o->c = fresh(true);
}

static int call_connect(void *ud)
{
    io *o = ud;
    return rc_cache_health_check(o->c);
}

/* The service (and the connection it keeps) goes: nothing else may stay. */
static void check_free_service(void *ud, int rc)
{
    io *o = ud;
    (void)rc;
    if (o->s)
        ck_assert_str_eq(o->s, "v");
    free(o->s);
    o->s = NULL;
    rc_cache_free(o->c);
    o->c = NULL;
}

/* Without Redis the fallback is the cache: a set copies, a get copies. */
static void prep_fallback(void *ud)
{
    io *o = ud;
    o->c = fresh(false);
    ck_assert_int_eq(rc_cache_set(o->c, "old", "v", 1, 60), RC_OK);
    o->s = NULL;
}

static int call_fallback(void *ud)
{
    io *o = ud;
    int rc = rc_cache_set(o->c, "new", "w", 1, 60);
    int rc2 = rc_cache_get(o->c, "old", &o->s, &o->len);
    return rc ? rc : rc2;
}

START_TEST(test_connect_and_fallback)
{
    io o = {0};
    const oom_case cases[] = {
        {"first connect", prep_connect, call_connect, check_free_service},
        {"fallback set and get", prep_fallback, call_fallback,
         check_free_service},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_int_gt(run_case(&cases[i], &o), 0);
}
END_TEST

/* ---- values ---- */

static void prep_get(void *ud)
{
    (void)ud;
    put(K("g"), "value-g");
}

static int call_get(void *ud)
{
    io *o = ud;
    return rc_cache_get(cache, K("g"), &o->s, &o->len);
}

static void check_get(void *ud, int rc)
{
    io *o = ud;
    if (rc == RC_OK)
        ck_assert_str_eq(o->s, "value-g");
    else
        ck_assert_ptr_null(o->s);
    free(o->s);
}

static void prep_set(void *ud)
{
    (void)ud;
    ck_assert_int_eq(rc_cache_del(cache, K("s")), RC_OK);
}

static int call_set(void *ud)
{
    (void)ud;
    return rc_cache_set(cache, K("s"), "v", 1, 60);
}

static void check_set(void *ud, int rc)
{
    (void)ud;
    char *v = get(K("s"));
    if (rc == RC_OK)
        ck_assert_str_eq(v, "v");
    free(v);
}

static void prep_three(void *ud)
{
    (void)ud;
    put(K("a"), "1");
    put(K("b"), "2");
    ck_assert_int_eq(rc_cache_del(cache, K("c")), RC_OK);
}

static int call_del_many(void *ud)
{
    io *o = ud;
    const char *keys[] = {K("a"), K("b"), K("c")};
    return rc_cache_del_many(cache, keys, 3, &o->n);
}

static void check_del_many(void *ud, int rc)
{
    io *o = ud;
    char *a = get(K("a")), *b = get(K("b"));
    if (rc == RC_OK) {
        ck_assert_int_eq(o->n, 2);
        ck_assert(!a && !b);
    } else { /* nothing was sent */
        ck_assert_int_eq(o->n, 0);
        ck_assert(a && b);
    }
    free(a);
    free(b);
}

static int call_mget(void *ud)
{
    io *o = ud;
    const char *keys[] = {K("a"), K("b"), K("c")};
    return rc_cache_mget(cache, keys, 3, o->vals, o->lens);
}

static void check_mget(void *ud, int rc)
{
    io *o = ud;
    if (rc == RC_OK) {
        ck_assert_str_eq(o->vals[0], "1");
        ck_assert_str_eq(o->vals[1], "2");
    }
    for (int i = 0; i < 3; i++) {
        if (rc != RC_OK || i == 2)
            ck_assert_ptr_null(o->vals[i]);
        free(o->vals[i]);
    }
}

static void prep_mset(void *ud)
{
    (void)ud;
    const char *keys[] = {K("x"), K("y")};
    ck_assert_int_eq(rc_cache_del_many(cache, keys, 2, NULL), RC_OK);
}

static int call_mset(void *ud)
{
    (void)ud;
    const char *keys[] = {K("x"), K("y")}, *vals[] = {"vx", "vy"};
    const size_t lens[] = {2, 2};
    return rc_cache_mset(cache, keys, vals, lens, 2, 60);
}

static void check_mset(void *ud, int rc)
{
    (void)ud;
    char *x = get(K("x")), *y = get(K("y"));
    if (rc == RC_OK) {
        ck_assert_str_eq(x, "vx");
        ck_assert_str_eq(y, "vy");
    } else { /* nothing was sent */
        ck_assert(!x && !y);
    }
    free(x);
    free(y);
}

START_TEST(test_values)
{
    io o = {0};
    const oom_case cases[] = {
        {"rc_cache_get", prep_get, call_get, check_get},
        {"rc_cache_set", prep_set, call_set, check_set},
        {"rc_cache_del_many", prep_three, call_del_many, check_del_many},
        {"rc_cache_mget", prep_three, call_mget, check_mget},
        {"rc_cache_mset", prep_mset, call_mset, check_mset},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i], &o);
    ck_assert_int_gt(run_case(&cases[0], &o), 0); /* the copy */
}
END_TEST

/* ---- patterns, loading, the queue ---- */

#define NCLEAR 600 /* two UNLINK batches */

static void prep_clear(void *ud)
{
    (void)ud;
    static const char *keys[NCLEAR], *vals[NCLEAR];
    static size_t lens[NCLEAR];
    static char names[NCLEAR][96];
    for (int i = 0; i < NCLEAR; i++) {
        snprintf(names[i], sizeof names[i], "%sclr:%d", prefix, i);
        keys[i] = names[i];
        vals[i] = "v";
        lens[i] = 1;
    }
    ck_assert_int_eq(rc_cache_mset(cache, keys, vals, lens, NCLEAR, 60), RC_OK);
}

static int call_clear(void *ud)
{
    io *o = ud;
    return rc_cache_clear(cache, "clr:*", &o->n);
}

static void check_clear(void *ud, int rc)
{
    io *o = ud;
    if (rc == RC_OK) {
        ck_assert_int_eq(o->n, NCLEAR);
        char *v = get(K("clr:7"));
        ck_assert_ptr_null(v);
    } else {
        ck_assert_int_eq(o->n, 0);
    }
}

static int loader(void *ud, char **val, size_t *len)
{
    (void)ud;
    *val = malloc(7);
    if (!*val)
        return RC_ENOMEM;
    memcpy(*val, "loaded", 7);
    *len = 6;
    return RC_OK;
}

static void prep_load(void *ud)
{
    (void)ud;
    ck_assert_int_eq(rc_cache_del(cache, K("l")), RC_OK);
}

static int call_load(void *ud)
{
    io *o = ud;
    o->s = NULL;
    return rc_cache_get_or_load(cache, K("l"), 60, loader, NULL, &o->s,
                                &o->len);
}

static void check_load(void *ud, int rc)
{
    io *o = ud;
    if (rc == RC_OK) {
        ck_assert_str_eq(o->s, "loaded");
        char *v = get(K("l"));
        ck_assert_str_eq(v, "loaded"); /* stored: no allocation failed */
        free(v);
    } else {
        ck_assert_ptr_null(o->s);
    }
    free(o->s);
}

static void prep_queue(void *ud)
{
    (void)ud;
    ck_assert_int_eq(rc_queue_clear(cache, K("q")), RC_OK);
    ck_assert_int_eq(rc_queue_push(cache, K("q"), "item", 4), RC_OK);
}

static int call_pop(void *ud)
{
    io *o = ud;
    return rc_queue_pop(cache, K("q"), &o->s, &o->len);
}

static void check_pop(void *ud, int rc)
{
    io *o = ud;
    if (rc == RC_OK)
        ck_assert_str_eq(o->s, "item");
    else /* (the item popped is lost with RC_ENOMEM) */
        ck_assert_ptr_null(o->s);
    free(o->s);
}

START_TEST(test_patterns_loading_queue)
{
    io o = {0};
    const oom_case cases[] = {
        {"rc_cache_clear", prep_clear, call_clear, check_clear},
        {"rc_cache_get_or_load", prep_load, call_load, check_load},
        {"rc_queue_pop", prep_queue, call_pop, check_pop},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_int_gt(run_case(&cases[i], &o), 0);
}
END_TEST

/* ---- remembered deletes and their replay ---- */

/* Replays what is pending (unarmed) and checks nothing is left. */
static void flush_pending(void)
{
    rc_cache_stats st;
    ck_assert_int_eq(rc_cache_health_check(cache), RC_OK);
    ck_assert_int_eq(rc_cache_get_stats(cache, &st), RC_OK);
    ck_assert_uint_eq(st.pending_deletes, 0);
}

static int call_remember(void *ud)
{
    (void)ud;
    const char *keys[] = {K("a"), K("b"), K("c")};
    return rc_cache_remember_deletes(cache, keys, 3, "a*");
}

static void check_remember(void *ud, int rc)
{
    (void)ud;
    (void)rc; /* RC_ENOMEM: everything under the prefix goes instead */
    flush_pending();
    char *a = get(K("a")), *b = get(K("b"));
    ck_assert(!a && !b);
}

/* Remembers deletes of a and b (unarmed); the call under test replays
 * them. */
static void prep_replay(void *ud)
{
    prep_three(ud);
    const char *keys[] = {K("a"), K("b")};
    ck_assert_int_eq(rc_cache_remember_deletes(cache, keys, 2, NULL), RC_OK);
}

static int call_replay(void *ud)
{
    io *o = ud;
    o->b = true;
    return rc_cache_exists(cache, K("a"), &o->b);
}

static void check_replay(void *ud, int rc)
{
    io *o = ud;
    if (rc == RC_OK) /* replayed first, then EXISTS */
        ck_assert(!o->b);
    flush_pending(); /* a failed replay is kept, and done now */
    char *a = get(K("a")), *b = get(K("b"));
    ck_assert(!a && !b);
}

START_TEST(test_remembered_deletes)
{
    io o = {0};
    const oom_case cases[] = {
        {"rc_cache_remember_deletes", prep_three, call_remember,
         check_remember},
        {"replay", prep_replay, call_replay, check_replay},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_int_gt(run_case(&cases[i], &o), 0);
}
END_TEST

/* ---- statistics ---- */

static int call_stats_json(void *ud)
{
    io *o = ud;
    o->s = NULL;
    return rc_cache_stats_json(cache, &o->s);
}

/* Checks a stats JSON text (complete on RC_OK: with field and the last
 * field of the service's stats, "keys", in object sub or at the top when sub
 * is NULL; absent otherwise) and frees it. */
static void check_json(char *s, int rc, const char *field, const char *sub)
{
    if (rc == RC_OK) {
        json_t *j = json_loads(s, 0, NULL);
        ck_assert_msg(j != NULL, "not JSON: %s", s);
        ck_assert_ptr_nonnull(json_object_get(j, field));
        json_t *in = sub ? json_object_get(j, sub) : j;
        ck_assert_ptr_nonnull(json_object_get(in, "keys"));
        json_decref(j);
    } else {
        ck_assert_ptr_null(s);
    }
    free(s);
}

static void check_stats_json(void *ud, int rc)
{
    io *o = ud;
    check_json(o->s, rc, "circuit", NULL);
}

/* ---- the decorator ---- */

/* A repository forwarding to another with the countdown suspended: what the
 * wrapped repository allocates is not the decorator's. */
typedef struct susp_repo {
    rc_repo base;   /* must be first */
    rc_repo *inner; /* the SQLite repository */
} susp_repo;

static rc_repo *inner_of(rc_repo *b)
{
    return ((susp_repo *)b)->inner;
}

static int s_find(rc_repo *b, const char *id, void **out)
{
    suspend();
    int rc = rc_repo_find_by_id(inner_of(b), id, out);
    resume();
    return rc;
}

static int s_list(rc_repo *b, rc_list **out)
{
    suspend();
    int rc = rc_repo_list_all(inner_of(b), out);
    resume();
    return rc;
}

static int s_query(rc_repo *b, const char *q, const char *const *args, size_t n,
                   rc_list **out)
{
    suspend();
    int rc = rc_repo_find_by_query(inner_of(b), q, args, n, out);
    resume();
    return rc;
}

static int s_update(rc_repo *b, const void *e, void **stored, void **prev)
{
    suspend();
    int rc = rc_repo_update(inner_of(b), e, stored, prev);
    resume();
    return rc;
}

static void s_destroy(rc_repo *b)
{
    rc_repo_free(inner_of(b));
    free(b);
}

static const rc_repo_methods susp_methods = {
    .version = RC_REPO_VERSION,
    .name = "suspending",
    .find_by_id = s_find,
    .list_all = s_list,
    .find_by_query = s_query,
    .update = s_update,
    .destroy = s_destroy,
};

typedef struct world {
    rc_sqlite_db *db; /* the database */
    rc_repo *inner;   /* suspending repository over SQLite */
    rc_repo *repo;    /* the cached repository over inner */
    rc_strategy st;   /* the hero strategy */
    char name[32];    /* the hero's name as last written */
    int round;        /* writes so far */
} world;

static void world_open(world *w)
{
    char *path = th_tmpfile("oom.db");
    rc_repo *sq = NULL;
    memset(w, 0, sizeof *w);
    ck_assert_int_eq(rc_sqlite_open(path, &w->db), RC_OK);
    free(path);
    ck_assert_int_eq(rc_sqlite_repo_new(w->db, &rc_hero_entity, &sq), RC_OK);
    rc_hero *h = th_hero("h1", "Ann");
    ck_assert_int_eq(rc_repo_save(sq, h, NULL), RC_OK);
    rc_hero_free(h);
    snprintf(w->name, sizeof w->name, "Ann");
    susp_repo *s = calloc(1, sizeof *s);
    s->base.methods = &susp_methods;
    s->base.entity = &rc_hero_entity;
    s->inner = sq;
    w->inner = &s->base;
    ck_assert_int_eq(rc_strategy_hero(&settings, &w->st), RC_OK);
    /* A failed allocation can leave a lease taken and never given back; a
     * later read then waits for its filler up to the lease time: keep it
     * short so the hundreds of rounds stay quick. */
    rc_cached_repo_options opt = {.own_inner = true, .lease_ms = 50};
    ck_assert_int_eq(
        rc_cached_repo_new(w->inner, cache, &w->st, &opt, &w->repo), RC_OK);
    /* the digests of the lease scripts are computed once per process and
     * kept: have them before anything is counted */
    rc_lease_hit hit;
    bool leased;
    rc_lease_lookup(cache, "x", "y", NULL, "", 1000, &hit, &leased);
    rc_lease_fill(cache, "x", "y", "t", "v", 1, 1);
    rc_lease_release(cache, "y", "t");
}

static void world_close(world *w)
{
    rc_repo_free(w->repo);
    rc_sqlite_free(w->db);
}

static int call_repo_new(void *ud)
{
    world *w = ud;
    rc_cached_repo_options opt = {0};
    rc_repo *r = NULL;
    int rc = rc_cached_repo_new(w->inner, cache, &w->st, &opt, &r);
    rc_repo_free(r);
    return rc;
}

static void check_repo_new(void *ud, int rc)
{
    (void)ud;
    (void)rc; /* made and destroyed within the call: no leak is the check */
}

/* The decorator's own stats JSON. */
static char *repo_json;

static int call_repo_json(void *ud)
{
    world *w = ud;
    repo_json = NULL;
    return rc_cached_repo_stats_json(w->repo, &repo_json);
}

static void check_repo_json(void *ud, int rc)
{
    (void)ud;
    check_json(repo_json, rc, "entity_type", "cache");
}

START_TEST(test_stats_and_construction)
{
    io o = {0};
    world w;
    world_open(&w);
    const oom_case cases[] = {
        {"rc_cache_stats_json", NULL, call_stats_json, check_stats_json},
    };
    ck_assert_int_gt(run_case(&cases[0], &o), 0);
    const oom_case wcases[] = {
        {"rc_cached_repo_new", NULL, call_repo_new, check_repo_new},
        {"rc_cached_repo_stats_json", NULL, call_repo_json, check_repo_json},
    };
    for (size_t i = 0; i < sizeof wcases / sizeof wcases[0]; i++)
        ck_assert_int_gt(run_case(&wcases[i], &w), 0);
    world_close(&w);
}
END_TEST

/* Reads and a write through the decorator: a cache that cannot allocate
 * never changes an answer nor a write's status, and never leaves a stale
 * value behind. */
static void prep_rw(void *ud)
{
    (void)ud;
    long long n;
    ck_assert_int_eq(rc_cache_clear(cache, "hero:*", &n), RC_OK);
}

static int call_rw(void *ud)
{
    world *w = ud;
    void *e = NULL;
    rc_list *l = NULL;
    /* miss + fill, hit, list, update with cache_on_write */
    int rc = rc_repo_find_by_id(w->repo, "h1", &e);
    rc_hero_free(e);
    e = NULL;
    if (rc == RC_OK)
        rc = rc_repo_find_by_id(w->repo, "h1", &e);
    rc_hero_free(e);
    if (rc == RC_OK)
        rc = rc_repo_list_all(w->repo, &l);
    rc_list_free(l);
    w->round++;
    char name[32];
    snprintf(name, sizeof name, "N%d", w->round);
    suspend();
    rc_hero *h = th_hero("h1", name);
    resume();
    int wrc = rc_repo_update(w->repo, h, NULL, NULL);
    suspend();
    rc_hero_free(h);
    resume();
    if (wrc == RC_OK)
        snprintf(w->name, sizeof w->name, "%s", name);
    return rc == RC_OK ? wrc : rc;
}

static void check_rw(void *ud, int rc)
{
    world *w = ud;
    void *e = NULL;
    rc_list *l = NULL;
    /* every call answered as the database would: an allocation of the
     * cache never fails one */
    ck_assert_int_eq(rc, RC_OK);
    /* whatever failed, the cache answers the latest write */
    ck_assert_int_eq(rc_repo_find_by_id(w->repo, "h1", &e), RC_OK);
    ck_assert_str_eq(((rc_hero *)e)->name, w->name);
    rc_hero_free(e);
    ck_assert_int_eq(rc_repo_find_by_id(w->repo, "h1", &e), RC_OK);
    ck_assert_str_eq(((rc_hero *)e)->name, w->name);
    rc_hero_free(e);
    ck_assert_int_eq(rc_repo_list_all(w->repo, &l), RC_OK);
    ck_assert_uint_eq(l->len, 1);
    ck_assert_str_eq(((rc_hero *)l->items[0])->name, w->name);
    rc_list_free(l);
    flush_pending();
}

START_TEST(test_decorator_reads_and_writes)
{
    world w;
    world_open(&w);
    const oom_case k = {"reads and a write", prep_rw, call_rw, check_rw};
    ck_assert_int_gt(run_case(&k, &w), 20);
    world_close(&w);
}
END_TEST

static Suite *oom_suite(void)
{
    Suite *s = suite_create("out_of_memory");
    const th_case cases[] = {
        {"construction_and_keys", test_construction_and_keys},
        {"connect_and_fallback", test_connect_and_fallback},
        {"values", test_values},
        {"patterns_loading_queue", test_patterns_loading_queue},
        {"remembered_deletes", test_remembered_deletes},
        {"stats_and_construction", test_stats_and_construction},
        {"decorator_reads_and_writes", test_decorator_reads_and_writes},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], setup, teardown, 0);
    return s;
}

int main(void)
{
    return th_run_suite(oom_suite());
}
