/*
 * tale.c - the `tale` program: an operator CLI and demo over the SQLite
 * repositories wrapped by cached repositories.
 *
 *   tale [--db=PATH] COMMAND [ARGS]     tale help [COMMAND]
 *
 * Settings come from the environment and `.env` in the working directory
 * (the environment wins); --db overrides DATABASE_PATH. Every argument and
 * every input is checked before the database is opened, so bad usage or bad
 * input writes nothing (not even a new database file).
 *
 * Exit codes: 0 ok, 3 not found, 2 bad usage or bad input, 1 other failures.
 */
#include "tale.h"

#include "repocache/version.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#define TALE_MAX_STDIN (64u * 1024 * 1024) /* bytes `put` accepts */
#define TALE_MAX_SEED 1000000u             /* entities `seed` makes per kind */

double tale_now(void) { return rc_clock_monotonic(NULL); }

static rc_strategy kinds[TALE_NKINDS]; /* tale_kind(k), filled once */
static pthread_once_t kinds_once = PTHREAD_ONCE_INIT;

/* Fills kinds from the library's built-in strategies; a library without
 * one of them cannot run tale. */
static void fill_kinds(void)
{
    for (int k = 0; k < TALE_NKINDS; k++) {
        if (rc_strategy_builtin(rc_strategy_builtin_name((size_t)k), NULL,
                                &kinds[k]) != RC_OK) {
            fprintf(stderr, "tale: no built-in strategy %d: %s\n", k,
                    rc_errmsg());
            abort();
        }
    }
}

const rc_strategy *tale_kind(int k)
{
    pthread_once(&kinds_once, fill_kinds);
    return &kinds[k];
}

int tale_kind_index(const char *name)
{
    for (int i = 0; i < TALE_NKINDS; i++)
        if (strcmp(tale_kind(i)->ns, name) == 0)
            return i;
    return -1;
}

int tale_exit_code(int status)
{
    switch (status) {
    case RC_OK: return TALE_EXIT_OK;
    case RC_ENOTFOUND: return TALE_EXIT_NOTFOUND;
    case RC_EINVAL:
    case RC_EDECODE:
    case RC_ECONFIG: return TALE_EXIT_USAGE;
    default: return TALE_EXIT_FAIL;
    }
}

int tale_fail(const char *what, int status)
{
    const char *detail = rc_errmsg();
    const char *text = status == TALE_EWRITE ? "cannot write the output"
                                             : rc_strerror(status);
    if (detail[0])
        fprintf(stderr, "tale: %s: %s: %s\n", what, text, detail);
    else
        fprintf(stderr, "tale: %s: %s\n", what, text);
    return tale_exit_code(status);
}

/* Bad usage: a message, a hint, exit 2. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tale: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(run `tale help` for usage)\n", stderr);
    return TALE_EXIT_USAGE;
}

/* ---- output ---- */

/* Flushes f: RC_OK, or TALE_EWRITE with errno's text as the detail. */
static int flush_out(FILE *f)
{
    if (fflush(f) == 0 && !ferror(f))
        return RC_OK;
    return rc_seterr(TALE_EWRITE, "%s", strerror(errno ? errno : EIO));
}

/* Prints j (taking it over; NULL: the encode failed) and a newline. A
 * failed write is TALE_EWRITE, not out of memory. */
static int print_json(FILE *f, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (!text)
        return rc_seterr(RC_ENOMEM, "the JSON output could not be built");
    errno = 0;
    fputs(text, f);
    fputc('\n', f);
    free(text);
    return flush_out(f);
}

int tale_print_entity(FILE *f, const rc_strategy *k, const void *e)
{
    return print_json(f, k->codec->encode(e));
}

int tale_print_list(FILE *f, const rc_strategy *k, const rc_list *l)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < l->len; i++) {
        if (json_array_append_new(arr, k->codec->encode(l->items[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return print_json(f, arr);
}

/* ---- the application ---- */

void tale_app_close(tale_app *a)
{
    for (int i = 0; i < TALE_NKINDS; i++) {
        rc_repo_free(a->cached[i]);
        rc_repo_free(a->sqlite[i]);
        a->cached[i] = a->sqlite[i] = NULL;
    }
    rc_cache_free(a->cache);
    rc_sqlite_free(a->db);
    a->cache = NULL;
    a->db = NULL;
}

int tale_wrap(tale_app *a, rc_cache *cache, rc_repo *out[TALE_NKINDS])
{
    int rc = RC_OK;
    for (int i = 0; i < TALE_NKINDS; i++)
        out[i] = NULL;
    for (int i = 0; rc == RC_OK && i < TALE_NKINDS; i++)
        rc = rc_cached_repo_new(a->sqlite[i], cache, &a->strategy[i], NULL,
                                &out[i]);
    if (rc != RC_OK) {
        for (int i = 0; i < TALE_NKINDS; i++) {
            rc_repo_free(out[i]);
            out[i] = NULL;
        }
    }
    return rc;
}

int tale_app_open(tale_app *a, const rc_settings *s)
{
    int rc;
    memset(a, 0, sizeof *a);
    a->settings = s;
    rc = rc_sqlite_open(s->database_path, &a->db);
    if (rc != RC_OK) {
        tale_fail(s->database_path, rc);
        return rc;
    }
    rc = rc_cache_new(s, &a->cache);
    if (rc != RC_OK) {
        tale_fail("cache service", rc);
        tale_app_close(a);
        return rc;
    }
    for (int i = 0; rc == RC_OK && i < TALE_NKINDS; i++) {
        rc = rc_strategy_builtin(tale_kind(i)->ns, s, &a->strategy[i]);
        if (rc == RC_OK)
            rc = rc_sqlite_repo_new(a->db, a->strategy[i].entity,
                                    &a->sqlite[i]);
    }
    if (rc == RC_OK)
        rc = tale_wrap(a, a->cache, a->cached);
    if (rc != RC_OK) {
        tale_fail("opening the repositories", rc);
        tale_app_close(a);
    }
    return rc;
}

/* After a write: Redis deletes this process could not deliver stay in the
 * database's invalidation outbox, which the next process to reach Redis
 * applies before it trusts Redis; say so. */
static void warn_pending(tale_app *a, const char *kind)
{
    rc_cache_stats st;
    if (rc_cache_get_stats(a->cache, &st) == RC_OK && st.redis_enabled &&
        st.pending_deletes > 0)
        fprintf(stderr,
                "tale: warning: %llu cache invalidation(s) could not reach "
                "Redis; they wait in the database's outbox and the next "
                "process to reach Redis applies them (any tale command will; "
                "or run `tale invalidate %s all`)\n",
                (unsigned long long)st.pending_deletes, kind);
}

/* ---- argument checks (before anything is opened) ---- */

/* The kind named arg, or -1 after printing an error. */
static int parse_kind(const char *arg)
{
    int k = tale_kind_index(arg);
    if (k < 0)
        usage_error("unknown entity \"%s\" (expected hero, child or story)",
                    arg);
    return k;
}

static int check_id(const char *id)
{
    if (rc_id_validate(id) != RC_OK) {
        usage_error("invalid id \"%s\": ids are 1-128 characters of "
                    "A-Z a-z 0-9 . _ - and not \"all\"", id);
        return -1;
    }
    return 0;
}

/* Checks that query exists for kind k and takes nargs arguments. */
static int check_query(int k, const char *query, size_t nargs)
{
    const rc_strategy *st = tale_kind(k);
    const rc_query_def *q = rc_strategy_find_query(st, query);
    if (!q) {
        fprintf(stderr, "tale: unknown %s query \"%s\"; known:", st->ns,
                query);
        for (size_t i = 0; i < st->nqueries; i++)
            fprintf(stderr, " %s", st->queries[i].name);
        fputc('\n', stderr);
        return -1;
    }
    if (q->nargs != nargs) {
        fprintf(stderr, "tale: %s query %s takes %zu argument(s), got %zu\n",
                st->ns, query, q->nargs, nargs);
        return -1;
    }
    return 0;
}

/* Parses a count for option opt. */
static int parse_count(const char *opt, const char *arg, unsigned *out)
{
    char *end;
    unsigned long v;
    if (!arg) {
        usage_error("%s needs a number", opt);
        return -1;
    }
    errno = 0;
    v = strtoul(arg, &end, 10);
    if (errno || end == arg || *end || arg[0] == '-' || v > TALE_MAX_SEED) {
        fprintf(stderr, "tale: %s: \"%s\" is not a count from 0 to %u\n", opt,
                arg, TALE_MAX_SEED);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* Reads all of stdin; NULL (message printed) on failure. */
static char *read_stdin(size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            char *nb = cap >= TALE_MAX_STDIN ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                fprintf(stderr, "tale: input larger than %u bytes\n",
                        TALE_MAX_STDIN);
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf && ferror(stdin)) {
        fprintf(stderr, "tale: reading stdin: %s\n", strerror(errno));
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Decodes and validates an entity of kind k from stdin; NULL (message
 * printed) when it is not one. */
static void *read_entity(int k)
{
    const rc_strategy *kind = tale_kind(k);
    size_t len = 0;
    char *text = read_stdin(&len);
    json_error_t jerr;
    json_t *j;
    void *e = NULL;
    int rc;
    if (!text)
        return NULL;
    j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr); /* no key twice */
    free(text);
    if (!j) {
        fprintf(stderr, "tale: bad JSON on stdin: line %d column %d: %s\n",
                jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        fprintf(stderr, "tale: bad input: expected a JSON object (one %s)\n",
                kind->ns);
        json_decref(j);
        return NULL;
    }
    rc = kind->codec->decode(j, &e);
    json_decref(j);
    if (rc != RC_OK) {
        tale_fail("bad input", rc);
        return NULL;
    }
    rc = kind->entity->validate(e, false);
    if (rc != RC_OK) {
        tale_fail("bad input", rc);
        kind->entity->free(e);
        return NULL;
    }
    return e;
}

/* ---- subcommands ---- */

typedef struct cmdline {
    rc_settings *settings; /* loaded settings (may be adjusted) */
    char **pos;            /* positional arguments after the command */
    int npos;              /* their count */
    bool json;             /* --json */
    bool prometheus;       /* --prometheus */
    bool seed_opts;        /* a seed count option was given */
    unsigned counts[TALE_NKINDS]; /* seed counts */
} cmdline;

static int cmd_seed(cmdline *cl)
{
    tale_app a;
    int rc;
    if (tale_app_open(&a, cl->settings) != RC_OK)
        return TALE_EXIT_FAIL;
    rc = tale_seed_batched(&a, cl->counts, isatty(STDERR_FILENO) == 1);
    if (rc == RC_OK)
        printf("seeded %u heroes, %u children, %u stories into %s\n",
               cl->counts[TALE_HERO], cl->counts[TALE_CHILD],
               cl->counts[TALE_STORY], cl->settings->database_path);
    else
        rc = tale_fail("seed", rc);
    warn_pending(&a, "hero|child|story");
    tale_app_close(&a);
    return tale_exit_code(rc);
}

static int cmd_get(cmdline *cl)
{
    int k = parse_kind(cl->pos[0]);
    tale_app a;
    void *e = NULL;
    int rc;
    if (k < 0 || check_id(cl->pos[1]) < 0)
        return TALE_EXIT_USAGE;
    if (tale_app_open(&a, cl->settings) != RC_OK)
        return TALE_EXIT_FAIL;
    rc = rc_repo_find_by_id(a.cached[k], cl->pos[1], &e);
    if (rc == RC_OK) {
        rc = tale_print_entity(stdout, tale_kind(k), e);
        tale_kind(k)->entity->free(e);
    }
    if (rc == RC_ENOTFOUND)
        fprintf(stderr, "tale: %s %s not found\n", tale_kind(k)->ns,
                cl->pos[1]);
    else if (rc != RC_OK)
        tale_fail("get", rc);
    tale_app_close(&a);
    return tale_exit_code(rc);
}

static int cmd_find(cmdline *cl)
{
    int k = parse_kind(cl->pos[0]);
    const char *query = cl->pos[1];
    const char *const *args = (const char *const *)cl->pos + 2;
    size_t nargs = (size_t)cl->npos - 2;
    bool all = strcmp(query, "all") == 0;
    rc_list *l = NULL;
    tale_app a;
    int rc;
    if (k < 0)
        return TALE_EXIT_USAGE;
    if (all && nargs)
        return usage_error("find %s all takes no arguments", tale_kind(k)->ns);
    if (!all && check_query(k, query, nargs) < 0)
        return TALE_EXIT_USAGE;
    if (tale_app_open(&a, cl->settings) != RC_OK)
        return TALE_EXIT_FAIL;
    rc = all ? rc_repo_list_all(a.cached[k], &l)
             : rc_repo_find_by_query(a.cached[k], query, args, nargs, &l);
    if (rc == RC_OK)
        rc = tale_print_list(stdout, tale_kind(k), l);
    if (rc != RC_OK)
        tale_fail("find", rc);
    rc_list_free(l);
    tale_app_close(&a);
    return tale_exit_code(rc);
}

static int cmd_put(cmdline *cl)
{
    int k = parse_kind(cl->pos[0]);
    const rc_strategy *kind;
    void *e, *stored = NULL;
    const char *done = "updated";
    tale_app a;
    int rc;
    if (k < 0)
        return TALE_EXIT_USAGE;
    kind = tale_kind(k);
    e = read_entity(k);
    if (!e)
        return TALE_EXIT_USAGE;
    if (tale_app_open(&a, cl->settings) != RC_OK) {
        kind->entity->free(e);
        return TALE_EXIT_FAIL;
    }
    rc = kind->entity->get_id(e)
             ? rc_repo_update(a.cached[k], e, &stored, NULL)
             : RC_ENOTFOUND;
    if (rc == RC_ENOTFOUND) {
        done = "created";
        rc = rc_repo_save(a.cached[k], e, &stored);
    }
    if (rc == RC_OK) {
        fprintf(stderr, "tale: %s %s %s\n", done, kind->ns,
                kind->entity->get_id(stored));
        rc = tale_print_entity(stdout, kind, stored);
    }
    if (rc != RC_OK)
        tale_fail("put", rc);
    kind->entity->free(stored);
    kind->entity->free(e);
    warn_pending(&a, kind->ns);
    tale_app_close(&a);
    return tale_exit_code(rc);
}

static int cmd_delete(cmdline *cl)
{
    int k = parse_kind(cl->pos[0]);
    tale_app a;
    int rc;
    if (k < 0 || check_id(cl->pos[1]) < 0)
        return TALE_EXIT_USAGE;
    if (tale_app_open(&a, cl->settings) != RC_OK)
        return TALE_EXIT_FAIL;
    rc = rc_repo_remove(a.cached[k], cl->pos[1], NULL);
    if (rc == RC_OK)
        printf("deleted %s %s\n", tale_kind(k)->ns, cl->pos[1]);
    else if (rc == RC_ENOTFOUND)
        fprintf(stderr, "tale: %s %s not found\n", tale_kind(k)->ns,
                cl->pos[1]);
    else
        tale_fail("delete", rc);
    warn_pending(&a, tale_kind(k)->ns);
    tale_app_close(&a);
    return tale_exit_code(rc);
}

static int cmd_invalidate(cmdline *cl)
{
    int k = parse_kind(cl->pos[0]);
    const char *scope = cl->pos[1];
    const char *const *args = (const char *const *)cl->pos + 2;
    size_t nargs = (size_t)cl->npos - 2;
    long long removed = 0;
    tale_app a;
    int rc;
    if (k < 0)
        return TALE_EXIT_USAGE;
    if (strcmp(scope, "all") == 0) {
        if (nargs)
            return usage_error("invalidate %s all takes no arguments",
                               tale_kind(k)->ns);
    } else if (strcmp(scope, "by_id") == 0) {
        if (nargs != 1)
            return usage_error("invalidate %s by_id takes one id",
                               tale_kind(k)->ns);
        if (check_id(args[0]) < 0)
            return TALE_EXIT_USAGE;
    } else if (check_query(k, scope, nargs) < 0) {
        return TALE_EXIT_USAGE;
    }
    if (tale_app_open(&a, cl->settings) != RC_OK)
        return TALE_EXIT_FAIL;
    rc = rc_cached_repo_invalidate(a.cached[k], scope, args, nargs, &removed);
    if (rc == RC_OK)
        printf("invalidated %lld key(s) of %s (%s)\n", removed,
               tale_kind(k)->ns, scope);
    else if (rc == RC_EUNAVAILABLE)
        fprintf(stderr, "tale: invalidate: Redis is unreachable, nothing "
                        "was invalidated\n");
    else
        tale_fail("invalidate", rc);
    tale_app_close(&a);
    return tale_exit_code(rc);
}

static int cmd_stats(cmdline *cl)
{
    int only = -1, rc = RC_OK;
    tale_app a;
    if (cl->npos > 1)
        return usage_error("stats takes at most one entity%s", "");
    if (cl->npos == 1 && (only = parse_kind(cl->pos[0])) < 0)
        return TALE_EXIT_USAGE;
    if (tale_app_open(&a, cl->settings) != RC_OK)
        return TALE_EXIT_FAIL;
    if (cl->json) {
        json_t *out = only >= 0 ? NULL : json_object();
        for (int k = 0; rc == RC_OK && k < TALE_NKINDS; k++) {
            char *text = NULL;
            json_t *j;
            if (only >= 0 && k != only)
                continue;
            rc = rc_cached_repo_stats_json(a.cached[k], &text);
            if (rc != RC_OK)
                break;
            j = json_loads(text, 0, NULL);
            free(text);
            if (j && json_object_set_new(j, "fleet", tale_fleet_json(&a, k)) != 0)
                rc = RC_ENOMEM; /* j still goes into out, freed with it */
            if (!j) {
                rc = RC_ENOMEM;
            } else if (only >= 0) {
                out = j;
            } else if (!out || json_object_set_new(out, tale_kind(k)->ns, j)) {
                rc = RC_ENOMEM;
            }
        }
        if (rc == RC_OK)
            rc = print_json(stdout, out);
        else
            json_decref(out);
    } else if (cl->prometheus) {
        rc = tale_stats_prometheus(&a);
    } else {
        rc = tale_stats_table(&a, only);
    }
    if (rc != RC_OK)
        tale_fail("stats", rc);
    tale_app_close(&a);
    return tale_exit_code(rc);
}

/* A cluster's nodes (rc_cache_cluster_nodes) for tale health. */
typedef struct health_nodes {
    rc_cache_cluster_node *v;
    size_t n;
} health_nodes;

/* The nodes as a JSON array (new reference, NULL when out of memory). */
static json_t *nodes_json(const health_nodes *hn)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < hn->n; i++) {
        const rc_cache_cluster_node *d = &hn->v[i];
        if (json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "address",
                                               d->address, "id", d->id, "role",
                                               d->master ? "master" : "replica", "slots",
                                               d->slots, "reachable", (int)d->reachable,
                                               "error", d->error)) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* One line per node. */
static void print_nodes(const health_nodes *hn)
{
    for (size_t i = 0; i < hn->n; i++) {
        const rc_cache_cluster_node *d = &hn->v[i];
        printf("node: %s %s%s%s, %s%s%s\n", d->address, d->master ? "master" : "replica",
               d->master ? " of slots " : "", d->slots,
               d->reachable ? "reachable" : "unreachable", d->error[0] ? ": " : "", d->error);
    }
}

/* Prints health as text or (json) one JSON object. */
static int print_health(const rc_settings *s, const char *where, int rc,
                        const rc_cache_stats *st, const rc_cache_connection *cn,
                        const health_nodes *hn, bool json)
{
    const char *redis = !s->redis_enabled ? "disabled"
                        : rc == RC_OK     ? "reachable"
                                          : "unreachable";
    const char *circuit = st ? rc_circuit_state_name(st->circuit) : "unknown";
    /* with a cluster, TLS is on with rediss:// or any REDIS_TLS_* file or name */
    bool tls = s->redis_tls || (s->redis_cluster_nodes &&
                                (s->redis_tls_ca_file || s->redis_tls_ca_dir ||
                                 s->redis_tls_cert_file || s->redis_tls_key_file ||
                                 s->redis_tls_server_name));
    const char *transport = tls ? "tls" : "plain";
    const char *reason = cn->last_error[0] ? cn->last_error : rc_errmsg();
    if (json)
        return print_json(stdout,
                          json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:o*}",
                                    "redis", redis, "where", where, "error",
                                    rc == RC_OK ? "" : rc_strerror(rc), "reason",
                                    rc == RC_OK ? "" : reason, "transport", transport, "tls",
                                    cn->tls, "master", s->redis_sentinels ? cn->server : "",
                                    "sentinel", cn->sentinel, "circuit", circuit,
                                    "fallback", (int)s->cache_fallback_enabled, "nodes",
                                    hn->v ? nodes_json(hn) : NULL));
    if (!s->redis_enabled)
        printf("redis: disabled (REDIS_ENABLED=false)\n");
    else if (rc == RC_OK)
        printf("redis: reachable at %s\n", where);
    else
        printf("redis: unreachable at %s (%s%s%s)\n", where, rc_strerror(rc),
               reason[0] ? ": " : "", reason);
    if (s->redis_enabled && s->redis_sentinels)
        printf("sentinel: master '%s' at %s, named by sentinel %s\n", s->redis_sentinel_master,
               cn->server[0] ? cn->server : "(none yet)",
               cn->sentinel[0] ? cn->sentinel : "(none answered)");
    print_nodes(hn);
    if (s->redis_enabled)
        printf("transport: %s%s%s\n", transport, cn->tls[0] ? ", " : "", cn->tls);
    printf("circuit: %s\n", circuit);
    printf("fallback: %s\n", s->cache_fallback_enabled ? "enabled" : "disabled");
    return RC_OK;
}

static int cmd_health(cmdline *cl)
{
    const rc_settings *s = cl->settings;
    char where[512];
    rc_cache *c = NULL;
    rc_cache_stats st;
    int rc, out;
    if (s->redis_cluster_nodes)
        snprintf(where, sizeof where, "%scluster via %s", s->redis_tls ? "rediss:// " : "",
                 s->redis_cluster_nodes);
    else if (s->redis_sentinels)
        snprintf(where, sizeof where, "%smaster '%s' via sentinels %s db %d",
                 s->redis_tls ? "rediss:// " : "",
                 s->redis_sentinel_master ? s->redis_sentinel_master : "?",
                 s->redis_sentinels, s->redis_db);
    else if (s->redis_unix_path)
        snprintf(where, sizeof where, "unix:%s db %d", s->redis_unix_path,
                 s->redis_db);
    else
        snprintf(where, sizeof where, "%s%s:%d db %d", s->redis_tls ? "rediss://" : "",
                 s->redis_host ? s->redis_host : "?", s->redis_port,
                 s->redis_db);
    rc = rc_cache_new(s, &c);
    if (rc != RC_OK)
        return tale_fail("cache service", rc);
    rc = s->redis_enabled ? rc_cache_health_check(c) : RC_OK;
    rc_cache_connection cn;
    rc_cache_connection_info(c, &cn);
    bool have = rc_cache_get_stats(c, &st) == RC_OK;
    health_nodes hn = {NULL, 0};
    if (s->redis_enabled && s->redis_cluster_nodes &&
        rc_cache_cluster_nodes(c, &hn.v, &hn.n) != RC_OK && rc == RC_OK)
        rc = RC_EUNAVAILABLE;
    out = print_health(s, where, rc, have ? &st : NULL, &cn, &hn, cl->json);
    rc_cache_cluster_nodes_free(hn.v, hn.n);
    rc_cache_free(c);
    if (out != RC_OK)
        return tale_fail("health", out);
    return rc == RC_OK ? TALE_EXIT_OK : TALE_EXIT_FAIL;
}

static int cmd_demo(cmdline *cl)
{
    /* The demo's keys live under their own prefix so it never serves, or
     * clears, entries of a real service sharing the Redis. */
    const char *base = cl->settings->cache_key_prefix;
    size_t n = strlen(base) + sizeof "tale-demo:";
    char *prefix = malloc(n);
    tale_app a;
    int rc;
    if (!prefix)
        return tale_fail("demo", RC_ENOMEM);
    snprintf(prefix, n, "%stale-demo:", base);
    rc = rc_settings_set(cl->settings, "CACHE_KEY_PREFIX", prefix);
    free(prefix);
    if (rc == RC_OK) /* it leaves no key behind: no fleet counters either */
        rc = rc_settings_set(cl->settings, "CACHE_STATS_FLUSH_INTERVAL", "0");
    if (rc != RC_OK)
        return tale_fail("demo", rc);
    if (tale_app_open(&a, cl->settings) != RC_OK)
        return TALE_EXIT_FAIL;
    rc = tale_demo(&a);
    tale_app_close(&a);
    return rc;
}

static int cmd_help(cmdline *cl)
{
    if (cl->npos == 0)
        tale_print_usage(stdout);
    else if (tale_print_help(stdout, cl->pos[0]) != 0)
        return usage_error("no command \"%s\"", cl->pos[0]);
    return TALE_EXIT_OK;
}

typedef struct command {
    const char *name;
    int min_pos, max_pos; /* positional arguments after the name (-1: any) */
    int (*run)(cmdline *cl);
} command;

static const command commands[] = {
    {"seed", 0, 0, cmd_seed},
    {"get", 2, 2, cmd_get},
    {"find", 2, -1, cmd_find},
    {"put", 1, 1, cmd_put},
    {"delete", 2, 2, cmd_delete},
    {"invalidate", 2, -1, cmd_invalidate},
    {"stats", 0, 1, cmd_stats},
    {"health", 0, 0, cmd_health},
    {"demo", 0, 0, cmd_demo},
    {"help", 0, 1, cmd_help},
};

/* A closed stdin or stderr reads and writes /dev/null, so that no file
 * opened later (the database, a Redis socket) takes its descriptor. A
 * closed stdout is refused: nothing could be printed. Returns 0 or -1. */
static int guard_std_streams(void)
{
    bool out_closed = fcntl(1, F_GETFD) == -1 && errno == EBADF;
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        int null = open("/dev/null", O_RDWR);
        if (null < 0)
            return -1;
        if (null != fd) {
            dup2(null, fd);
            close(null);
        }
    }
    if (out_closed) {
        fprintf(stderr, "tale: standard output is closed: nothing could be "
                        "printed, so nothing was done\n");
        return -1;
    }
    return 0;
}

/* What the options asked for, beyond cmdline's own fields. */
typedef struct options {
    const char *db;  /* --db */
    bool help;       /* -h, --help */
    bool version;    /* --version */
} options;

enum { OPT_DB = 256, OPT_VERSION, OPT_JSON, OPT_PROMETHEUS, OPT_HEROES, OPT_CHILDREN,
       OPT_STORIES };

/* Parses the options (anywhere on the line, getopt_long permuting argv;
 * "--" ends them) into o and cl; argv[optind..] are then the positional
 * arguments. 0, or an exit code after a message. */
static int parse_options(int argc, char **argv, options *o, cmdline *cl)
{
    static const struct option longs[] = {
        {"db", required_argument, NULL, OPT_DB},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {"json", no_argument, NULL, OPT_JSON},
        {"prometheus", no_argument, NULL, OPT_PROMETHEUS},
        {"heroes", required_argument, NULL, OPT_HEROES},
        {"children", required_argument, NULL, OPT_CHILDREN},
        {"stories", required_argument, NULL, OPT_STORIES},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0; /* our messages, not getopt's */
    while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
        switch (c) {
        case OPT_DB: o->db = optarg; break;
        case 'h': o->help = true; break;
        case OPT_VERSION: o->version = true; break;
        case OPT_JSON: cl->json = true; break;
        case OPT_PROMETHEUS: cl->prometheus = true; break;
        case OPT_HEROES:
        case OPT_CHILDREN:
        case OPT_STORIES:
            if (parse_count(argv[optind - 1], optarg, &cl->counts[c - OPT_HEROES]) < 0)
                return TALE_EXIT_USAGE;
            cl->seed_opts = true;
            break;
        case ':': return usage_error("%s needs a value", argv[optind - 1]);
        default: return usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    return 0;
}

/* The command named name, or NULL after a message. */
static const command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    usage_error("unknown command \"%s\"", name);
    return NULL;
}

/* Checks cl's arguments and options against cmd: 0, or an exit code. */
static int check_usage(const command *cmd, const cmdline *cl)
{
    if (cl->npos < cmd->min_pos || (cmd->max_pos >= 0 && cl->npos > cmd->max_pos))
        return usage_error("wrong number of arguments for %s", cmd->name);
    if ((cl->json && cmd->run != cmd_stats && cmd->run != cmd_health) ||
        (cl->prometheus && (cmd->run != cmd_stats || cl->json)) ||
        (cl->seed_opts && cmd->run != cmd_seed))
        return usage_error("option not valid for %s", cmd->name);
    return 0;
}

/* Loads the settings (./.env, the environment, --db) and runs cmd. */
static int run_command(const command *cmd, cmdline *cl, const char *db)
{
    rc_settings s;
    int rc = rc_settings_load(&s, ".env");
    if (rc == RC_OK && db)
        rc = rc_settings_set(&s, "DATABASE_PATH", db);
    if (rc != RC_OK) {
        rc_settings_clear(&s);
        return tale_fail("settings", rc);
    }
    cl->settings = &s;
    rc = cmd->run(cl);
    rc_settings_clear(&s);
    return rc;
}

int main(int argc, char **argv)
{
    const command *cmd = NULL;
    options o = {0};
    cmdline cl = {.counts = {10, 5, 10}};
    int rc;

    if (guard_std_streams() != 0)
        return TALE_EXIT_FAIL;
    if ((rc = parse_options(argc, argv, &o, &cl)) != 0)
        return rc;
    cl.pos = argv + optind + 1;
    cl.npos = argc - optind - 1;
    if (o.version) {
        printf("tale %s (library repocache %s)\n", REPOCACHE_VERSION, rc_version());
    } else if (o.help && optind < argc) { /* COMMAND --help */
        if (tale_print_help(stdout, argv[optind]) != 0)
            return usage_error("no command \"%s\"", argv[optind]);
    } else if (o.help) {
        tale_print_usage(stdout);
    } else if (optind >= argc) {
        tale_print_usage(stderr);
        return TALE_EXIT_USAGE;
    } else if (!(cmd = find_command(argv[optind]))) {
        return TALE_EXIT_USAGE;
    } else if ((rc = check_usage(cmd, &cl)) != 0) {
        return rc;
    } else {
        rc = cmd->run == cmd_help ? cmd_help(&cl) : run_command(cmd, &cl, o.db);
    }
    /* Output of printf that never arrived (a full disk, a closed pipe). */
    if (rc == TALE_EXIT_OK && flush_out(stdout) != RC_OK)
        rc = tale_fail("stdout", TALE_EWRITE);
    return rc;
}
