/*
 * side.h - test support for suites that read through a cached hero
 * repository: one process's view (a service on a test server, a SQLite
 * file, a cached hero repository over it).
 */
#ifndef RC_TEST_SIDE_H
#define RC_TEST_SIDE_H

#include "repocache/cached_repository.h"
#include "repocache/sqlite_repository.h"

#include <stdbool.h>

typedef struct th_side {
    rc_cache *cache;  /* th_cache_new(url, kv) */
    rc_sqlite_db *db; /* the SQLite file */
    rc_repo *repo;    /* a cached hero repository (owning its SQLite one) */
} th_side;

/* A valid hero id / name (age 30, female, "tall", en) for a test to save;
 * the caller frees it with rc_hero_free. */
rc_hero *th_hero(const char *id, const char *name);
/* A cached hero repository on s's service and database. */
rc_repo *th_side_hero_repo(th_side *s);
/* Opens s on url and db_path with the settings kv (as th_cache_new); with
 * wait_near, waits (Check-asserted, TH_WAIT_SECONDS) until the near cache
 * serves (its tracking arms in the background). */
void th_side_open(th_side *s, const char *url, const char *db_path, const char *const *kv,
                  bool wait_near);
/* Frees what th_side_open made. */
void th_side_close(th_side *s);

#endif
