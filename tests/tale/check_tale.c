/*
 * check_tale.c - black-box tests of the `tale` program (TALE_BIN) and the
 * wrap_own example (WRAP_OWN_BIN): every subcommand, every exit code, JSON
 * round trips through put and get, invalidation visible in Redis, and the
 * demo with Redis and with a closed port.
 *
 * Each test runs in its own temporary directory (the working directory of
 * tale, so no stray .env is read) with a fresh database and a key prefix of
 * its own, against the suite's redis-server (REPOCACHE_TEST_REDIS_URL, or a
 * private one the harness starts), or the shared Redis Cluster of the
 * cluster pass (REPOCACHE_TEST_REDIS_CLUSTER: tale then gets
 * REDIS_CLUSTER_NODES, and the tests' own commands go through route.h).
 */
#include "harness.h"
#include "route.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLOSED_URL "redis://127.0.0.1:1"

static th_redis g_redis;     /* the suite's server */
static int g_db;             /* its database number */
static char g_dir[256];      /* this test's working directory */
static char g_dbpath[300];   /* this test's database */
static char g_prefix[64];    /* this test's key prefix */
/* Where the stdout of the next runs goes: NULL captures it; "closed" closes
 * it; "broken-pipe" is a pipe nobody reads (SIGPIPE ignored); any other
 * string is a file to write (/dev/full). */
static const char *g_stdout;

/* The output of one run. */
typedef struct run {
    int status; /* exit status (128 + signal when killed) */
    char *out;  /* stdout (owned) */
    char *err;  /* stderr (owned) */
} run;

static void run_free(run *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

static char *path_in_dir(const char *name)
{
    static char buf[4][400];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", g_dir, name);
    return p;
}

/* Runs bin with args (NULL-terminated) in g_dir, stdin from in (may be
 * NULL: empty). */
static run run_argv(const char *bin, const char *in, const char *const *args)
{
    const char *inpath = path_in_dir("stdin.txt");
    const char *outpath = path_in_dir("stdout.txt");
    const char *errpath = path_in_dir("stderr.txt");
    FILE *f = fopen(inpath, "wb");
    run r = {0, NULL, NULL};
    int st = 0;
    pid_t pid;
    ck_assert_ptr_nonnull(f);
    if (in)
        fputs(in, f);
    fclose(f);
    fflush(NULL);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        const char *argv[64];
        int n = 0;
        argv[n++] = bin;
        for (; *args && n < 63; args++)
            argv[n++] = *args;
        argv[n] = NULL;
        int pfd[2];
        if (g_stdout && !strcmp(g_stdout, "broken-pipe")) {
            if (pipe(pfd) != 0 || dup2(pfd[1], 1) < 0)
                _exit(126);
            close(pfd[0]); /* nobody reads: writes fail with EPIPE */
            close(pfd[1]);
            signal(SIGPIPE, SIG_IGN);
        }
        if (g_stdout && !strcmp(g_stdout, "closed"))
            close(1);
        else if (g_stdout && strcmp(g_stdout, "broken-pipe") &&
                 !freopen(g_stdout, "wb", stdout))
            _exit(126);
        if (!freopen(inpath, "rb", stdin) || !freopen(errpath, "wb", stderr) ||
            (!g_stdout && !freopen(outpath, "wb", stdout)))
            _exit(126);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = th_read_file(outpath, NULL);
    r.err = th_read_file(errpath, NULL);
    ck_assert_ptr_nonnull(r.out);
    ck_assert_ptr_nonnull(r.err);
    return r;
}

/* Runs tale --db <test db> args... (NULL-terminated). */
static run tale_in(const char *in, ...)
{
    const char *args[60];
    int n = 0;
    va_list ap;
    args[n++] = "--db";
    args[n++] = g_dbpath;
    va_start(ap, in);
    for (const char *a; (a = va_arg(ap, const char *)) && n < 59;)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    return run_argv(getenv("TALE_BIN"), in, args);
}

#define tale(...) tale_in(NULL, __VA_ARGS__, (const char *)NULL)
#define tale_stdin(in, ...) tale_in(in, __VA_ARGS__, (const char *)NULL)

/* Asserts the exit status, showing stderr when it differs. */
#define ck_status(r, want)                                                     \
    ck_assert_msg((r).status == (want), "exit %d, wanted %d; stderr: %s",      \
                  (r).status, (want), (r).err)

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    ck_assert_msg(j != NULL, "not JSON (%s): %s", e.text, text);
    return j;
}

static bool file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* ---- Redis checks ---- */

static th_route *redis(void)
{
    th_route *rt = th_route_open(&g_redis);
    if (!th_route_is_cluster(&g_redis)) {
        redisReply *rep = th_route_cmd(rt, "SELECT %d", g_db);
        ck_assert_ptr_nonnull(rep);
        freeReplyObject(rep);
    }
    return rt;
}

/* Whether prefix + suffix exists. */
static bool key_exists(const char *suffix)
{
    th_route *rt = redis();
    redisReply *rep = th_route_cmd(rt, "EXISTS %s%s", g_prefix, suffix);
    bool yes;
    ck_assert_ptr_nonnull(rep);
    yes = rep->integer == 1;
    freeReplyObject(rep);
    th_route_close(rt);
    return yes;
}

/* The value of prefix + suffix (owned), or NULL. */
static char *key_get(const char *suffix)
{
    th_route *rt = redis();
    redisReply *rep = th_route_cmd(rt, "GET %s%s", g_prefix, suffix);
    char *v = NULL;
    ck_assert_ptr_nonnull(rep);
    if (rep->type == REDIS_REPLY_STRING)
        v = strdup(rep->str);
    freeReplyObject(rep);
    th_route_close(rt);
    return v;
}

/* Number of keys under this test's prefix starting with start (KEYS of
 * every master; the prefix has no glob characters). */
static long long count_keys(const char *start)
{
    th_route *rt = redis();
    redisReply *rep = th_route_cmd(rt, "KEYS %s%s*", g_prefix, start);
    long long n;
    ck_assert_ptr_nonnull(rep);
    ck_assert_int_eq(rep->type, REDIS_REPLY_ARRAY);
    n = (long long)rep->elements;
    freeReplyObject(rep);
    th_route_close(rt);
    return n;
}

/* The Redis tale is to use: url (a closed port, a bad URL) in place of the
 * suite's server or cluster. */
static void use_redis_url(const char *url)
{
    setenv("REDIS_URL", url, 1);
    unsetenv("REDIS_CLUSTER_NODES");
}

/* ---- fixtures ---- */

static void setup(void)
{
    char *p = th_tmpfile("tale.db");
    ck_assert_ptr_nonnull(p);
    snprintf(g_dbpath, sizeof g_dbpath, "%s", p);
    *strrchr(p, '/') = '\0';
    snprintf(g_dir, sizeof g_dir, "%s", p);
    free(p);
    ck_assert_int_eq(chdir(g_dir), 0);
    snprintf(g_prefix, sizeof g_prefix, "tale-test:%ld:", (long)getpid());
    if (th_route_is_cluster(&g_redis)) {
        setenv("REDIS_CLUSTER_NODES", g_redis.url + strlen(TH_REDIS_CLUSTER_SCHEME), 1);
        unsetenv("REDIS_URL");
    } else {
        use_redis_url(g_redis.url);
    }
    setenv("CACHE_KEY_PREFIX", g_prefix, 1);
    setenv("LOG_LEVEL", "warning", 1);
    unsetenv("DATABASE_PATH");
    unsetenv("REDIS_ENABLED");
}

/* Seeds and returns the heroes (JSON array, owned). */
static json_t *seed_heroes(const char *n)
{
    run r = tale("seed", "--heroes", n, "--children", "3", "--stories", "4");
    json_t *all;
    ck_status(r, 0);
    run_free(&r);
    r = tale("find", "hero", "all");
    ck_status(r, 0);
    all = parse(r.out);
    run_free(&r);
    return all;
}

static const char *str_of(json_t *obj, const char *field)
{
    const char *s = json_string_value(json_object_get(obj, field));
    ck_assert_msg(s != NULL, "field %s missing", field);
    return s;
}

/* ---- usage and exit codes ---- */

START_TEST(usage_errors_exit_2_and_write_nothing)
{
    static const char *const cases[][6] = {
        {NULL},
        {"frobnicate", NULL},
        {"get", "hero", NULL},
        {"get", "villain", "x", NULL},
        {"get", "hero", "bad id!", NULL},
        {"get", "hero", "all", NULL},
        {"find", "hero", "by_colour", "red", NULL},
        {"find", "hero", "by_language", NULL},
        {"find", "child", "exact_match", "Ann", "7", NULL},
        {"find", "hero", "all", "extra", NULL},
        {"delete", "story", NULL},
        {"invalidate", "hero", "by_id", NULL},
        {"invalidate", "hero", "nonsense", NULL},
        {"stats", "villain", NULL},
        {"stats", "hero", "child", NULL},
        {"seed", "--heroes", "-1", NULL},
        {"seed", "--heroes", "lots", NULL},
        {"get", "--json", "hero", "x", NULL},
        {"health", "--bogus", NULL},
        {"--db", NULL},
        {"seed", "--heroes", NULL},
        {"help", "villain", NULL},
        {"put", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[8] = {"--db", g_dbpath};
        int n = 2;
        run r;
        for (int k = 0; cases[i][k]; k++)
            args[n++] = cases[i][k];
        args[n] = NULL;
        r = run_argv(getenv("TALE_BIN"), NULL, args);
        ck_assert_msg(r.status == 2, "case %zu (%s ...): exit %d", i,
                      cases[i][0] ? cases[i][0] : "(none)", r.status);
        ck_assert_msg(strlen(r.err) > 0, "case %zu: no message", i);
        ck_assert_msg(!file_exists(g_dbpath), "case %zu created the database", i);
        run_free(&r);
    }
}
END_TEST

START_TEST(help_exits_0)
{
    run r = tale("--help");
    ck_status(r, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "usage: tale"));
    ck_assert_ptr_nonnull(strstr(r.out, "invalidate"));
    run_free(&r);
}
END_TEST

/* Options and help as redis-cli, sqlite3 and git have them: --db=PATH as
 * well as --db PATH, --version, `help COMMAND` and `COMMAND --help`. */
START_TEST(options_and_help_like_other_clis)
{
    static const char *const helps[][3] = {{"help", "get", NULL},
                                           {"get", "--help", NULL},
                                           {"--help", "invalidate", NULL}};
    run r = tale("--version");
    ck_status(r, 0);
    ck_assert_msg(strncmp(r.out, "tale 0.", 7) == 0 && strstr(r.out, "(library repocache 0."),
                  "%s", r.out);
    run_free(&r);
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
        r = tale(helps[i][0], helps[i][1]);
        ck_status(r, 0);
        ck_assert_msg(strstr(r.out, "usage: tale [--db=PATH] get ") ||
                          strstr(r.out, "usage: tale [--db=PATH] invalidate "),
                      "%s", r.out);
        run_free(&r);
    }
    r = tale("help");
    ck_status(r, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "health"));
    run_free(&r);
    r = tale("help", "frobnicate");
    ck_status(r, 2);
    run_free(&r);
    ck_assert(!file_exists(g_dbpath)); /* help opens nothing */

    char opt[600];
    snprintf(opt, sizeof opt, "--db=%s", g_dbpath);
    const char *eq[] = {opt, "seed", "--heroes=2", NULL};
    r = run_argv(getenv("TALE_BIN"), NULL, eq);
    ck_status(r, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "seeded 2 heroes"));
    run_free(&r);
    ck_assert(file_exists(g_dbpath));

    r = tale("health", "--json");
    ck_status(r, 0);
    json_t *j = parse(r.out);
    ck_assert_str_eq(str_of(j, "redis"), "reachable");
    ck_assert_str_eq(str_of(j, "circuit"), "closed");
    json_decref(j);
    run_free(&r);
}
END_TEST

START_TEST(bad_setting_exits_2_naming_it)
{
    run r;
    setenv("CACHE_HERO_TTL", "soon", 1);
    r = tale("find", "hero", "all");
    ck_status(r, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "CACHE_HERO_TTL"));
    run_free(&r);
    unsetenv("CACHE_HERO_TTL");
}
END_TEST

START_TEST(other_failure_exits_1)
{
    const char *args[] = {"--db", "/nonexistent-dir/x/tale.db", "seed", NULL};
    run r = run_argv(getenv("TALE_BIN"), NULL, args);
    ck_status(r, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "tale:"));
    run_free(&r);
}
END_TEST

/* ---- seed, get, find ---- */

START_TEST(seed_prints_counts_and_find_all_lists_them)
{
    run r = tale("seed", "--heroes", "7", "--children", "3", "--stories", "5");
    ck_status(r, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "7 heroes, 3 children, 5 stories"));
    run_free(&r);
    static const char *const kinds[] = {"hero", "child", "story"};
    static const size_t want[] = {7, 3, 5};
    for (int k = 0; k < 3; k++) {
        json_t *all;
        r = tale("find", kinds[k], "all");
        ck_status(r, 0);
        all = parse(r.out);
        ck_assert(json_is_array(all));
        ck_assert_uint_eq(json_array_size(all), want[k]);
        json_decref(all);
        run_free(&r);
    }
}
END_TEST

/* A bulk load fills no cache entry and, once done, leaves no answer from
 * before it: the namespaces it wrote are invalidated once, at the end. */
START_TEST(seed_fills_nothing_and_invalidates_once)
{
    json_t *all = seed_heroes("3"); /* leaves hero:all cached */
    run r;
    json_decref(all);
    ck_assert(key_exists("hero:all"));
    ck_assert(key_exists("child:all") == false);
    r = tale("seed", "--heroes", "2500", "--children", "0", "--stories", "0");
    ck_status(r, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "seeded 2500 heroes"));
    ck_assert_ptr_null(strstr(r.err, "tale: seed:")); /* no progress: not a terminal */
    run_free(&r);
    ck_assert_int_eq(count_keys("hero:"), 0);
    r = tale("find", "hero", "all");
    ck_status(r, 0);
    all = parse(r.out);
    ck_assert_uint_eq(json_array_size(all), 2503);
    json_decref(all);
    run_free(&r);
}
END_TEST

START_TEST(default_database_is_in_the_working_directory)
{
    const char *args[] = {"seed", "--heroes", "1", NULL};
    run r = run_argv(getenv("TALE_BIN"), NULL, args);
    ck_status(r, 0);
    ck_assert(file_exists(path_in_dir("tale.db")));
    run_free(&r);
}
END_TEST

START_TEST(get_returns_the_entity_or_exits_3)
{
    json_t *all = seed_heroes("3");
    json_t *h0 = json_array_get(all, 0), *got;
    run r = tale("get", "hero", str_of(h0, "id"));
    ck_status(r, 0);
    got = parse(r.out);
    ck_assert(json_equal(got, h0));
    json_decref(got);
    run_free(&r);

    r = tale("get", "hero", "no-such-hero");
    ck_status(r, 3);
    ck_assert_str_eq(r.out, "");
    ck_assert_ptr_nonnull(strstr(r.err, "not found"));
    run_free(&r);
    json_decref(all);
}
END_TEST

/* Runs find and returns the array (owned). */
static json_t *find(const char *kind, const char *q, const char *a1,
                    const char *a2, const char *a3)
{
    run r = tale("find", kind, q, a1, a2, a3);
    json_t *j;
    ck_status(r, 0);
    j = parse(r.out);
    ck_assert(json_is_array(j));
    run_free(&r);
    return j;
}

START_TEST(find_runs_every_named_query)
{
    json_t *heroes = seed_heroes("6"), *children, *stories, *l;
    json_t *h = json_array_get(heroes, 0), *c, *s;
    size_t i;
    json_t *v;
    run r = tale("find", "child", "all");
    children = parse(r.out);
    run_free(&r);
    r = tale("find", "story", "all");
    stories = parse(r.out);
    run_free(&r);
    c = json_array_get(children, 0);
    s = json_array_get(stories, 0);

    l = find("hero", "by_language", "ru", NULL, NULL);
    ck_assert_uint_eq(json_array_size(l), 3);
    json_array_foreach(l, i, v) ck_assert_str_eq(str_of(v, "language"), "ru");
    json_decref(l);
    l = find("hero", "by_name", str_of(h, "name"), NULL, NULL);
    ck_assert_uint_eq(json_array_size(l), 1);
    ck_assert(json_equal(json_array_get(l, 0), h));
    json_decref(l);

    l = find("child", "by_name", str_of(c, "name"), NULL, NULL);
    ck_assert_uint_eq(json_array_size(l), 1);
    json_decref(l);
    {
        char age[16];
        snprintf(age, sizeof age, "%lld",
                 (long long)json_integer_value(json_object_get(c, "age")));
        l = find("child", "exact_match", str_of(c, "name"), age,
                 str_of(c, "gender"));
        ck_assert_uint_eq(json_array_size(l), 1);
        ck_assert(json_equal(json_array_get(l, 0), c));
        json_decref(l);
        l = find("child", "exact_match", str_of(c, "name"), "17",
                 str_of(c, "gender"));
        ck_assert_uint_eq(json_array_size(l), 0);
        json_decref(l);
    }

    l = find("story", "by_child_id", str_of(s, "child_id"), NULL, NULL);
    ck_assert_uint_ge(json_array_size(l), 1);
    json_array_foreach(l, i, v)
        ck_assert_str_eq(str_of(v, "child_id"), str_of(s, "child_id"));
    json_decref(l);
    l = find("story", "by_child_name", str_of(s, "child_name"), NULL, NULL);
    ck_assert_uint_ge(json_array_size(l), 1);
    json_decref(l);
    l = find("story", "by_language", "en", NULL, NULL);
    ck_assert_uint_eq(json_array_size(l), 2);
    json_decref(l);

    json_decref(heroes);
    json_decref(children);
    json_decref(stories);
}
END_TEST

/* ---- put ---- */

static const char hero_json[] =
    "{\"id\": \"hero-rt-1\", \"name\": \"Ёжик Ñandú: \\\"quoted\\\"\", "
    "\"age\": 42, \"gender\": \"other\", \"appearance\": \"tall, \\n green\", "
    "\"personality_traits\": [\"brave\", \"kind\"], \"interests\": [], "
    "\"strengths\": [\"riddles\"], \"language\": \"ru\", "
    "\"created_at\": \"2024-01-15T10:30:00\", "
    "\"updated_at\": \"2024-01-15T10:30:00\"}";

static const char story_json[] =
    "{\"id\": \"story-rt-1\", \"title\": \"The Fox\", \"content\": \"Once...\", "
    "\"moral\": \"Share.\", \"language\": \"en\", \"child_id\": \"c1\", "
    "\"child_name\": \"Ann\", \"age_category\": \"5-7\", "
    "\"child_gender\": \"female\", \"child_interests\": [\"foxes\"], "
    "\"story_length\": 5, \"rating\": null, "
    "\"audio_file\": {\"url\": \"https://x/a.mp3\", \"provider\": \"tts\", "
    "\"metadata\": {\"voice\": \"alloy\", \"n\": [1, 2]}}, "
    "\"model_used\": \"gpt\", \"full_response\": {\"raw\": true}, "
    "\"generation_info\": null, \"created_at\": \"2024-01-15T10:30:00\", "
    "\"updated_at\": \"2024-01-15T10:30:00.123456\"}";

/* Every field of want has the same value in got (timestamps excepted). */
static void assert_fields(json_t *want, json_t *got)
{
    const char *k;
    json_t *v;
    json_object_foreach(want, k, v)
    {
        if (!strcmp(k, "created_at") || !strcmp(k, "updated_at"))
            continue;
        ck_assert_msg(json_equal(v, json_object_get(got, k)),
                      "field %s differs", k);
    }
}

static void round_trip(const char *kind, const char *text, const char *id)
{
    json_t *want = parse(text), *put, *got;
    run r = tale_stdin(text, "put", kind);
    ck_status(r, 0);
    ck_assert_ptr_nonnull(strstr(r.err, "created"));
    put = parse(r.out);
    run_free(&r);
    assert_fields(want, put);
    r = tale("get", kind, id);
    ck_status(r, 0);
    got = parse(r.out);
    run_free(&r);
    assert_fields(want, got);
    ck_assert(json_equal(put, got));
    /* A second get is served by the cache: the same JSON. */
    json_decref(got);
    r = tale("get", kind, id);
    got = parse(r.out);
    run_free(&r);
    ck_assert(json_equal(put, got));
    json_decref(want);
    json_decref(put);
    json_decref(got);
}

START_TEST(put_get_round_trip_hero_and_story)
{
    round_trip("hero", hero_json, "hero-rt-1");
    round_trip("story", story_json, "story-rt-1");
}
END_TEST

START_TEST(put_without_id_creates_and_with_id_updates)
{
    json_t *j = parse(hero_json), *got;
    char *text;
    const char *id;
    run r;
    json_object_del(j, "id");
    text = json_dumps(j, 0);
    r = tale_stdin(text, "put", "hero");
    ck_status(r, 0);
    ck_assert_ptr_nonnull(strstr(r.err, "created"));
    got = parse(r.out);
    run_free(&r);
    free(text);
    id = str_of(got, "id");
    ck_assert_uint_gt(strlen(id), 0);

    json_object_set_new(got, "name", json_string("Renamed"));
    json_object_set_new(got, "age", json_integer(43));
    text = json_dumps(got, 0);
    r = tale_stdin(text, "put", "hero");
    ck_status(r, 0);
    ck_assert_ptr_nonnull(strstr(r.err, "updated"));
    run_free(&r);
    free(text);
    r = tale("get", "hero", id);
    ck_status(r, 0);
    {
        json_t *now = parse(r.out);
        ck_assert_str_eq(str_of(now, "name"), "Renamed");
        ck_assert_int_eq(json_integer_value(json_object_get(now, "age")), 43);
        json_decref(now);
    }
    run_free(&r);
    r = tale("find", "hero", "all");
    {
        json_t *all = parse(r.out);
        ck_assert_uint_eq(json_array_size(all), 1);
        json_decref(all);
    }
    run_free(&r);
    json_decref(j);
    json_decref(got);
}
END_TEST

START_TEST(bad_input_exits_2_and_changes_nothing)
{
    static const struct {
        const char *input, *needle;
    } cases[] = {
        {"{\"name\": \"X\"", "JSON"},
        {"", "JSON"},
        {"[1, 2]", "object"},
        /* a key twice: refused, not "the last one wins" (this would update
         * hero-rt-1 when the second id won) */
        {"{\"id\": \"other\", \"name\": \"X\", \"age\": 30, \"gender\": "
         "\"male\", \"appearance\": \"\", \"language\": \"en\", "
         "\"id\": \"hero-rt-1\"}",
         "duplicate"},
        {"{\"id\": \"hero-rt-1\", \"name\": \"X\", \"age\": 300, \"gender\": "
         "\"male\", \"appearance\": \"\", \"language\": \"en\"}",
         "age"},
        {"{\"id\": \"hero-rt-1\", \"name\": \"X\", \"age\": 30, \"gender\": "
         "\"robot\", \"appearance\": \"\", \"language\": \"en\"}",
         "gender"},
        {"{\"id\": \"hero-rt-1\", \"name\": \"X\", \"age\": \"thirty\", "
         "\"gender\": \"male\", \"appearance\": \"\", \"language\": \"en\"}",
         "age"},
        {"{\"id\": \"bad id\", \"name\": \"X\", \"age\": 30, \"gender\": "
         "\"male\", \"appearance\": \"\", \"language\": \"en\"}",
         "id"},
    };
    json_t *before, *after;
    run r = tale_stdin(hero_json, "put", "hero");
    ck_status(r, 0);
    run_free(&r);
    r = tale("get", "hero", "hero-rt-1");
    before = parse(r.out);
    run_free(&r);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = tale_stdin(cases[i].input, "put", "hero");
        ck_assert_msg(r.status == 2, "case %zu: exit %d", i, r.status);
        ck_assert_msg(strstr(r.err, cases[i].needle) != NULL,
                      "case %zu: message does not name %s: %s", i,
                      cases[i].needle, r.err);
        ck_assert_str_eq(r.out, "");
        run_free(&r);
    }
    r = tale("get", "hero", "hero-rt-1");
    after = parse(r.out);
    run_free(&r);
    ck_assert(json_equal(before, after));
    r = tale("find", "hero", "all");
    {
        json_t *all = parse(r.out);
        ck_assert_uint_eq(json_array_size(all), 1);
        json_decref(all);
    }
    run_free(&r);
    json_decref(before);
    json_decref(after);
}
END_TEST

/* ---- delete ---- */

START_TEST(delete_removes_or_exits_3)
{
    run r = tale_stdin(hero_json, "put", "hero");
    ck_status(r, 0);
    run_free(&r);
    r = tale("delete", "hero", "hero-rt-1");
    ck_status(r, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "deleted hero hero-rt-1"));
    run_free(&r);
    r = tale("get", "hero", "hero-rt-1");
    ck_status(r, 3);
    run_free(&r);
    r = tale("delete", "hero", "hero-rt-1");
    ck_status(r, 3);
    run_free(&r);
}
END_TEST

/* ---- invalidation visible in Redis ---- */

START_TEST(put_invalidates_keys_in_redis)
{
    json_t *j = parse(hero_json);
    char *text, *val;
    run r = tale_stdin(hero_json, "put", "hero");
    ck_status(r, 0);
    run_free(&r);
    /* Fill by-id, all and both query keys of the hero. */
    run_free((r = tale("get", "hero", "hero-rt-1"), &r));
    run_free((r = tale("find", "hero", "all"), &r));
    run_free((r = tale("find", "hero", "by_language", "ru"), &r));
    run_free((r = tale("find", "hero", "by_name", str_of(j, "name")), &r));
    ck_assert(key_exists("hero:hero-rt-1"));
    ck_assert(key_exists("hero:all"));
    ck_assert(key_exists("hero:lang:ru"));
    {
        char k[256];
        snprintf(k, sizeof k, "hero:name:%s", str_of(j, "name"));
        ck_assert(key_exists(k));
        /* Move the hero to English under a new name. */
        json_object_set_new(j, "language", json_string("en"));
        json_object_set_new(j, "name", json_string("Moved"));
        text = json_dumps(j, 0);
        r = tale_stdin(text, "put", "hero");
        ck_status(r, 0);
        run_free(&r);
        free(text);
        ck_assert(!key_exists(k));
    }
    ck_assert(!key_exists("hero:all"));
    ck_assert(!key_exists("hero:lang:ru"));
    /* The by-id key is gone or holds the new value (cache_on_write). */
    val = key_get("hero:hero-rt-1");
    if (val) {
        ck_assert_ptr_nonnull(strstr(val, "\"Moved\""));
        ck_assert_ptr_null(strstr(val, "quoted"));
    }
    free(val);
    r = tale("find", "hero", "by_language", "ru");
    ck_assert_str_eq(r.out, "[]\n");
    run_free(&r);
    json_decref(j);
}
END_TEST

START_TEST(delete_invalidates_keys_in_redis)
{
    run r = tale_stdin(hero_json, "put", "hero");
    ck_status(r, 0);
    run_free(&r);
    run_free((r = tale("get", "hero", "hero-rt-1"), &r));
    run_free((r = tale("find", "hero", "all"), &r));
    run_free((r = tale("find", "hero", "by_language", "ru"), &r));
    ck_assert(key_exists("hero:hero-rt-1"));
    ck_assert(key_exists("hero:all"));
    ck_assert(key_exists("hero:lang:ru"));
    r = tale("delete", "hero", "hero-rt-1");
    ck_status(r, 0);
    run_free(&r);
    ck_assert(!key_exists("hero:hero-rt-1"));
    ck_assert(!key_exists("hero:all"));
    ck_assert(!key_exists("hero:lang:ru"));
    r = tale("find", "hero", "all");
    ck_assert_str_eq(r.out, "[]\n");
    run_free(&r);
}
END_TEST

START_TEST(invalidate_scopes_remove_keys_and_count_them)
{
    json_t *heroes = seed_heroes("4");
    const char *id = str_of(json_array_get(heroes, 0), "id");
    char k[200];
    run r;
    snprintf(k, sizeof k, "hero:%s", id);
    run_free((r = tale("get", "hero", id), &r));
    run_free((r = tale("find", "hero", "by_language", "en"), &r));
    ck_assert(key_exists(k));
    ck_assert(key_exists("hero:lang:en"));
    ck_assert(key_exists("hero:all"));

    r = tale("invalidate", "hero", "by_id", id);
    ck_status(r, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "invalidated 1 key"));
    run_free(&r);
    ck_assert(!key_exists(k));
    ck_assert(key_exists("hero:lang:en"));

    r = tale("invalidate", "hero", "by_language", "en");
    ck_status(r, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "invalidated 1 key"));
    run_free(&r);
    ck_assert(!key_exists("hero:lang:en"));
    ck_assert(key_exists("hero:all"));

    run_free((r = tale("find", "child", "all"), &r));
    ck_assert(key_exists("child:all"));
    {
        long long before = count_keys("hero:");
        char want[64];
        ck_assert_int_ge(before, 1); /* all (a seed fills nothing) */
        snprintf(want, sizeof want, "invalidated %lld key", before);
        r = tale("invalidate", "hero", "all");
        ck_status(r, 0);
        ck_assert_msg(strstr(r.out, want) != NULL, "%s", r.out);
        run_free(&r);
    }
    ck_assert_int_eq(count_keys("hero:"), 0);
    ck_assert(key_exists("child:all")); /* other entities untouched */

    r = tale("invalidate", "hero", "all");
    ck_status(r, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "invalidated 0 key"));
    run_free(&r);
    json_decref(heroes);
}
END_TEST

/* ---- stats and health ---- */

START_TEST(stats_table_and_json)
{
    json_t *heroes = seed_heroes("2"), *j, *h;
    run r;
    json_decref(heroes);
    r = tale("stats");
    ck_status(r, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "hero"));
    ck_assert_ptr_nonnull(strstr(r.out, "child"));
    ck_assert_ptr_nonnull(strstr(r.out, "story"));
    ck_assert_ptr_nonnull(strstr(r.out, "circuit"));
    run_free(&r);

    r = tale("stats", "--json");
    ck_status(r, 0);
    j = parse(r.out);
    run_free(&r);
    h = json_object_get(j, "hero");
    ck_assert_str_eq(str_of(h, "entity_type"), "hero");
    ck_assert(json_is_true(json_object_get(h, "all_cached"))); /* seed_heroes */
    ck_assert_int_gt(json_integer_value(json_object_get(h, "all_ttl_remaining")), 0);
    ck_assert_str_eq(str_of(json_object_get(j, "story"), "entity_type"), "story");
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_object_get(j, "child"), "all_ttl_remaining")),
                     -2);
    json_decref(j);

    r = tale("stats", "--json", "child");
    ck_status(r, 0);
    j = parse(r.out);
    ck_assert_str_eq(str_of(j, "entity_type"), "child");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "default_ttl")), 1800);
    ck_assert(json_is_object(json_object_get(j, "cache")));
    json_decref(j);
    run_free(&r);
}
END_TEST

START_TEST(health_reports_redis_and_circuit)
{
    run r = tale("health");
    ck_status(r, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "redis: reachable"));
    ck_assert_ptr_nonnull(strstr(r.out, "circuit: closed"));
    run_free(&r);

    use_redis_url(CLOSED_URL);
    r = tale("health");
    ck_status(r, 1);
    ck_assert_ptr_nonnull(strstr(r.out, "redis: unreachable"));
    ck_assert_ptr_nonnull(strstr(r.out, "circuit:"));
    run_free(&r);

    setenv("REDIS_ENABLED", "false", 1);
    r = tale("health");
    ck_status(r, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "redis: disabled"));
    run_free(&r);
}
END_TEST

START_TEST(password_never_printed)
{
    run r;
    use_redis_url("redis://:sekrit-pass-42@127.0.0.1:1/0");
    r = tale("health");
    ck_status(r, 1);
    ck_assert_ptr_null(strstr(r.out, "sekrit"));
    ck_assert_ptr_null(strstr(r.err, "sekrit"));
    run_free(&r);
    r = tale("stats", "--json");
    ck_status(r, 0);
    ck_assert_ptr_null(strstr(r.out, "sekrit"));
    ck_assert_ptr_null(strstr(r.err, "sekrit"));
    run_free(&r);
    /* Malformed URLs: refused as bad settings, still without the password. */
    static const char *const bad[] = {"redis:/u:sekrit-pass-42@127.0.0.1:6379",
                                      "redis//:sekrit-pass-42@127.0.0.1",
                                      "redis://u:sekrit-pass-42@127.0.0.1:x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        use_redis_url(bad[i]);
        r = tale("health");
        ck_status(r, 2);
        ck_assert_ptr_nonnull(strstr(r.err, "REDIS_URL"));
        ck_assert_msg(strstr(r.out, "sekrit") == NULL, "%s: %s", bad[i], r.out);
        ck_assert_msg(strstr(r.err, "sekrit") == NULL, "%s: %s", bad[i], r.err);
        run_free(&r);
    }
}
END_TEST

/* A stdout that takes no output is reported as such, exit 1: never as
 * "out of memory", never exit 0. A closed one is refused before anything
 * is done. */
START_TEST(write_errors_reported)
{
    static const char *const where[] = {"closed", "/dev/full", "broken-pipe"};
    static const char *const want[] = {"standard output is closed",
                                       "No space left on device", "Broken pipe"};
    run r = tale_stdin(hero_json, "put", "hero");
    ck_status(r, 0);
    run_free(&r);
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        g_stdout = where[i];
        const char *const cmds[][3] = {{"get", "hero", "hero-rt-1"},
                                       {"find", "hero", "all"},
                                       {"stats", NULL, NULL},
                                       {"--help", NULL, NULL}};
        for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
            r = tale(cmds[c][0], cmds[c][1], cmds[c][2]);
            ck_assert_msg(r.status == 1, "%s %s: exit %d: %s", where[i],
                          cmds[c][0], r.status, r.err);
            ck_assert_msg(strstr(r.err, want[i]) != NULL, "%s %s: %s", where[i],
                          cmds[c][0], r.err);
            ck_assert_ptr_null(strstr(r.err, "out of memory"));
            run_free(&r);
        }
        if (i == 0) { /* refused before anything is done */
            r = tale("delete", "hero", "hero-rt-1");
            ck_status(r, 1);
            run_free(&r);
        }
        g_stdout = NULL;
        r = tale("get", "hero", "hero-rt-1");
        ck_status(r, 0);
        run_free(&r);
    }
}
END_TEST

START_TEST(works_without_redis)
{
    json_t *got;
    run r;
    use_redis_url(CLOSED_URL);
    r = tale_stdin(hero_json, "put", "hero");
    ck_status(r, 0);
    /* The write's invalidation could not reach Redis: said plainly. */
    ck_assert_ptr_nonnull(strstr(r.err, "tale invalidate hero all"));
    run_free(&r);
    r = tale("get", "hero", "hero-rt-1");
    ck_status(r, 0);
    got = parse(r.out);
    ck_assert_str_eq(str_of(got, "id"), "hero-rt-1");
    json_decref(got);
    run_free(&r);
    r = tale("find", "hero", "by_language", "ru");
    ck_status(r, 0);
    got = parse(r.out);
    ck_assert_uint_eq(json_array_size(got), 1);
    json_decref(got);
    run_free(&r);
    /* Invalidation cannot reach Redis: a failure, said plainly. */
    r = tale("invalidate", "hero", "all");
    ck_status(r, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "unreachable"));
    run_free(&r);
}
END_TEST

/* ---- demo and the example ---- */

static void check_demo_output(const run *r, bool redis_up)
{
    ck_assert_ptr_nonnull(strstr(r->out, "Scene 1"));
    ck_assert_ptr_nonnull(strstr(r->out, "Scene 2"));
    ck_assert_ptr_nonnull(strstr(r->out, "Scene 3"));
    ck_assert_ptr_nonnull(strstr(r->out, "Scene 4"));
    ck_assert_ptr_nonnull(strstr(r->out, redis_up ? "redis      reachable"
                                                  : "NOT reachable"));
    /* Scenes 2 and 4 check their answers against SQLite. */
    {
        const char *p = strstr(r->out, "answers identical to SQLite's: yes");
        ck_assert_ptr_nonnull(p);
        ck_assert_ptr_nonnull(strstr(p + 1, "answers identical to SQLite's: yes"));
    }
    ck_assert_ptr_nonnull(strstr(r->out, "the new value is served"));
    ck_assert_ptr_nonnull(strstr(r->out, "no call waited for a timeout"));
    ck_assert_ptr_nonnull(strstr(r->out, "circuit open"));
    ck_assert_ptr_null(strstr(r->out, "STILL PRESENT"));
    ck_assert_ptr_null(strstr(r->out, "WRONG"));
    ck_assert_ptr_null(strstr(r->out, "DO NOT"));
}

START_TEST(demo_with_redis)
{
    run r = tale("demo");
    ck_status(r, 0);
    check_demo_output(&r, true);
    /* The demo cleans up its keys. */
    ck_assert_int_eq(count_keys(""), 0);
    run_free(&r);
}
END_TEST

START_TEST(demo_with_a_closed_port)
{
    run r;
    use_redis_url(CLOSED_URL);
    r = tale("demo");
    ck_status(r, 0);
    check_demo_output(&r, false);
    run_free(&r);
}
END_TEST

START_TEST(wrap_own_example_runs)
{
    const char *args[] = {NULL};
    run r = run_argv(getenv("WRAP_OWN_BIN"), NULL, args);
    json_t *j;
    char *nl;
    ck_status(r, 0);
    nl = strchr(r.out, '\n');
    ck_assert_ptr_nonnull(nl);
    *nl = '\0';
    j = parse(r.out);
    ck_assert_str_eq(str_of(j, "entity_type"), "hero");
    ck_assert_int_ge(json_integer_value(json_object_get(j, "hits")), 1);
    json_decref(j);
    ck_assert_ptr_nonnull(strstr(nl + 1, "invalidated 1 key"));
    ck_assert(!key_exists("hero:wrap-own-1"));
    run_free(&r);
}
END_TEST

static Suite *tale_suite(void)
{
    Suite *s = suite_create("tale");
    const th_case tests[] = {
        {"usage", usage_errors_exit_2_and_write_nothing},
        {"help", help_exits_0},
        {"options_and_help", options_and_help_like_other_clis},
        {"seed_fills_nothing", seed_fills_nothing_and_invalidates_once},
        {"bad_setting", bad_setting_exits_2_naming_it},
        {"other_failure", other_failure_exits_1},
        {"seed", seed_prints_counts_and_find_all_lists_them},
        {"default_db", default_database_is_in_the_working_directory},
        {"get", get_returns_the_entity_or_exits_3},
        {"find", find_runs_every_named_query},
        {"put_round_trip", put_get_round_trip_hero_and_story},
        {"put_create_update", put_without_id_creates_and_with_id_updates},
        {"put_bad_input", bad_input_exits_2_and_changes_nothing},
        {"delete", delete_removes_or_exits_3},
        {"put_invalidates", put_invalidates_keys_in_redis},
        {"delete_invalidates", delete_invalidates_keys_in_redis},
        {"invalidate", invalidate_scopes_remove_keys_and_count_them},
        {"stats", stats_table_and_json},
        {"health", health_reports_redis_and_circuit},
        {"password", password_never_printed},
        {"write_errors", write_errors_reported},
        {"no_redis", works_without_redis},
        {"demo_redis", demo_with_redis},
        {"demo_closed_port", demo_with_a_closed_port},
        {"wrap_own", wrap_own_example_runs},
    };
    th_add_cases(s, tests, sizeof tests / sizeof tests[0], setup, NULL, 120);
    return s;
}

int main(void)
{
    int status;
    const char *url;
    if (!getenv("TALE_BIN") || !getenv("WRAP_OWN_BIN")) {
        fprintf(stderr, "check_tale: TALE_BIN and WRAP_OWN_BIN must be set\n");
        return 1;
    }
    if (th_redis_shared(&g_redis) != 0)
        return 1;
    url = strrchr(g_redis.url, '/');
    g_db = !th_route_is_cluster(&g_redis) && url && url[1] && url > g_redis.url + 8
               ? atoi(url + 1)
               : 0;
    status = th_run_suite(tale_suite());
    th_redis_stop(&g_redis); /* no-op for the shared server */
    return status;
}
