/* side.c - see side.h. */
#include "side.h"

#include "harness.h"
#include "service.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

rc_hero *th_hero(const char *id, const char *name)
{
    rc_hero *h = rc_hero_new();
    h->id = strdup(id);
    h->name = strdup(name);
    h->age = 30;
    h->gender = strdup("female");
    h->appearance = strdup("tall");
    h->language = strdup("en");
    return h;
}

rc_repo *th_side_hero_repo(th_side *s)
{
    rc_strategy st;
    rc_repo *inner = NULL, *r = NULL;
    rc_cached_repo_options o = {.own_inner = true};
    ck_assert_int_eq(rc_sqlite_repo_new(s->db, &rc_hero_entity, &inner), RC_OK);
    ck_assert_int_eq(rc_strategy_hero(NULL, &st), RC_OK);
    ck_assert_int_eq(rc_cached_repo_new(inner, s->cache, &st, &o, &r), RC_OK);
    return r;
}

void th_side_open(th_side *s, const char *url, const char *db_path, const char *const *kv,
                  bool wait_near)
{
    s->cache = th_cache_new(url, kv);
    ck_assert_int_eq(rc_sqlite_open(db_path, &s->db), RC_OK);
    s->repo = th_side_hero_repo(s);
    double t0 = th_now();
    rc_cache_stats cs;
    do {
        ck_assert(th_now() - t0 < TH_WAIT_SECONDS);
        usleep(1000);
        rc_cache_get_stats(s->cache, &cs);
    } while (wait_near && !cs.near_coherent);
}

void th_side_close(th_side *s)
{
    rc_repo_free(s->repo);
    rc_sqlite_free(s->db);
    rc_cache_free(s->cache);
}
