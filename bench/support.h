/*
 * support.h - what the bench programs share: settings under a key prefix of
 * their own, a fresh SQLite file, sample heroes, memory shared with forked
 * children, waiting for them, and quantiles.
 */
#ifndef RC_BENCH_SUPPORT_H
#define RC_BENCH_SUPPORT_H

#include "repocache/cache.h"
#include "repocache/entity.h"
#include "repocache/repository.h"
#include "repocache/settings.h"
#include "repocache/sqlite_repository.h"
#include "repocache/strategy.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <sys/types.h>

/* *s = the settings of the environment with CACHE_KEY_PREFIX + sub as the
 * prefix, then the pairs of kv applied in turn (name, value, ..., NULL; kv
 * may be NULL). RC_OK, or the failing status with rc_errmsg(). Clear *s
 * with rc_settings_clear. */
int bench_settings(rc_settings *s, const char *sub, const char *const *kv);

/* What one process of a bench works with. */
typedef struct bench_side {
    rc_settings s;     /* settings (bench_settings) */
    rc_sqlite_db *db;  /* its own connection to the SQLite file */
    rc_cache *cache;   /* its own cache service */
    rc_strategy st;    /* the hero strategy */
    rc_repo *sqlite;   /* the SQLite hero repository */
    rc_repo *cached;   /* the cached decorator (bench_side_wrap) */
} bench_side;

/* Opens x: settings as bench_settings(sub, kv), the SQLite file at path,
 * a cache service, the hero strategy and the SQLite hero repository; not
 * the decorator (bench_side_wrap). On failure says why on stderr and
 * closes x. */
int bench_side_open(bench_side *x, const char *path, const char *sub,
                    const char *const *kv);
/* x->cached = a cached decorator over inner, which it then owns (freed
 * even on failure), or over x->sqlite when inner is NULL. */
int bench_side_wrap(bench_side *x, rc_repo *inner);
/* Releases everything of x; safe on a zeroed or partly opened x. */
void bench_side_close(bench_side *x);

/* Removes the SQLite file at path and its -wal and -shm files. */
void bench_unlink_db(const char *path);

/* A hero to save (no id): name, age 40, appearance, language, one trait,
 * interest and strength. Owned by the caller (rc_hero_free); NULL when out
 * of memory. */
rc_hero *bench_hero_new(const char *name, const char *appearance,
                        const char *language);

/* n zeroed bytes shared with every child forked afterwards (an anonymous
 * MAP_SHARED mapping); NULL on failure. Released with bench_shared_free. */
void *bench_shared_new(size_t n);
void bench_shared_free(void *p, size_t n);

/* Waits for child pid; 0 when it exited with status 0, else -1 (and says
 * so on stderr, naming what). */
int bench_wait(pid_t pid, const char *what);

/* A raw hiredis connection to the Redis of s (AUTH and SELECT done), for
 * what the bench measures outside the library; NULL (said on stderr) when
 * it fails. Free with redisFree. */
redisContext *bench_redis_connect(const rc_settings *s);
/* out = "2 CPUs online, redis-server 7.0.15, SQLite 3.40.1, hiredis 0.14.1"
 * (the server asked on c). */
void bench_describe_machine(redisContext *c, char *out, size_t n);

/* qsort comparator of doubles, ascending. */
int bench_cmp_double(const void *a, const void *b);
/* The q-quantile (0 <= q <= 1) of the n ascending values of v, nearest
 * rank; 0 when n is 0. */
double bench_quantile(const double *v, size_t n, double q);

#endif
