/*
 * support.c - what the bench programs share (see support.h).
 */
#include "support.h"

#include "repocache/cached_repository.h"
#include "repocache/status.h"

#include <hiredis/hiredis.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int bench_settings(rc_settings *s, const char *sub, const char *const *kv)
{
    char prefix[512];
    int rc = rc_settings_load(s, NULL);
    if (rc != RC_OK)
        return rc;
    snprintf(prefix, sizeof prefix, "%s%s", s->cache_key_prefix, sub);
    rc = rc_settings_set(s, "CACHE_KEY_PREFIX", prefix);
    for (size_t i = 0; rc == RC_OK && kv && kv[i]; i += 2)
        rc = rc_settings_set(s, kv[i], kv[i + 1]);
    if (rc != RC_OK)
        rc_settings_clear(s);
    return rc;
}

int bench_side_open(bench_side *x, const char *path, const char *sub,
                    const char *const *kv)
{
    int rc;
    memset(x, 0, sizeof *x);
    rc = bench_settings(&x->s, sub, kv);
    if (rc == RC_OK)
        rc = rc_sqlite_open(path, &x->db);
    if (rc == RC_OK)
        rc = rc_cache_new(&x->s, &x->cache);
    if (rc == RC_OK)
        rc = rc_strategy_hero(&x->s, &x->st);
    if (rc == RC_OK)
        rc = rc_sqlite_repo_new(x->db, &rc_hero_entity, &x->sqlite);
    if (rc != RC_OK) {
        fprintf(stderr, "bench: setup: %s: %s\n", rc_strerror(rc), rc_errmsg());
        bench_side_close(x);
    }
    return rc;
}

int bench_side_wrap(bench_side *x, rc_repo *inner)
{
    rc_cached_repo_options opt = {.own_inner = inner != NULL};
    int rc = rc_cached_repo_new(inner ? inner : x->sqlite, x->cache, &x->st,
                                &opt, &x->cached);
    if (rc != RC_OK)
        fprintf(stderr, "bench: cached repository: %s: %s\n", rc_strerror(rc),
                rc_errmsg());
    return rc;
}

void bench_side_close(bench_side *x)
{
    rc_repo_free(x->cached);
    rc_repo_free(x->sqlite);
    rc_cache_free(x->cache);
    rc_sqlite_free(x->db);
    rc_settings_clear(&x->s);
    memset(x, 0, sizeof *x);
}

void bench_unlink_db(const char *path)
{
    char side[1024];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

rc_hero *bench_hero_new(const char *name, const char *appearance,
                        const char *language)
{
    rc_hero *h = rc_hero_new();
    int rc = h ? RC_OK : RC_ENOMEM;
    if (rc == RC_OK) {
        h->name = strdup(name);
        h->age = 40;
        h->gender = strdup("female");
        h->appearance = strdup(appearance);
        h->language = strdup(language);
        rc = rc_strlist_push(&h->personality_traits, "brave");
    }
    if (rc == RC_OK)
        rc = rc_strlist_push(&h->interests, "benchmarks");
    if (rc == RC_OK)
        rc = rc_strlist_push(&h->strengths, "patience");
    if (rc == RC_OK && (!h->name || !h->gender || !h->appearance || !h->language))
        rc = RC_ENOMEM;
    if (rc != RC_OK) {
        rc_hero_free(h);
        return NULL;
    }
    return h;
}

void *bench_shared_new(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void bench_shared_free(void *p, size_t n)
{
    if (p)
        munmap(p, n);
}

int bench_wait(pid_t pid, const char *what)
{
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) {
        perror("bench: waitpid");
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    fprintf(stderr, "bench: the %s process failed (status %d)\n", what, status);
    return -1;
}

redisContext *bench_redis_connect(const rc_settings *s)
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

void bench_describe_machine(redisContext *c, char *out, size_t n)
{
    redisReply *rep = redisCommand(c, "INFO server");
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

int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_quantile(const double *v, size_t n, double q)
{
    size_t rank;
    if (n == 0)
        return 0;
    rank = (size_t)ceil(q * (double)n);
    return v[rank == 0 ? 0 : rank - 1];
}
