/*
 * app.c - the program of the four consumer builds (scripts/consumers.sh):
 * another project's code, using repocache through its installed or
 * embedded package only. It stores and reads back a hero through a cached
 * SQLite repository on the in-memory cache (REDIS_ENABLED=false: no server
 * needed) and checks the header and library versions agree.
 *
 * It also carries warnings on purpose (an unused variable, which -Wall
 * reports, and an unused parameter, which -Wextra does): the consumers build
 * without warning flags, so were repocache's -Wall -Wextra -Werror to leak
 * into them, this file would not compile.
 */
#include <repocache/cached_repository.h>
#include <repocache/sqlite_repository.h>
#include <repocache/version.h>

#include <stdio.h>
#include <string.h>

static void unused_parameter(int warned) {}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "consumer: %s: %s %s\n", what, rc_strerror(rc), rc_errmsg());
    return 1;
}

int main(void)
{
    rc_settings s;
    rc_cache *cache = NULL;
    rc_sqlite_db *db = NULL;
    rc_repo *sqlite = NULL, *heroes = NULL;
    rc_strategy st;
    rc_hero *h = NULL, *saved = NULL, *got = NULL;
    int rc;

    int unused_variable;
    unused_parameter(0);
    if (strcmp(rc_version(), REPOCACHE_VERSION) != 0) {
        fprintf(stderr, "consumer: headers %s, library %s\n", REPOCACHE_VERSION, rc_version());
        return 1;
    }
    if ((rc = rc_settings_defaults(&s)) || (rc = rc_settings_set(&s, "REDIS_ENABLED", "false")))
        return fail("settings", rc);
    if ((rc = rc_cache_new(&s, &cache)) || (rc = rc_sqlite_open(":memory:", &db)) ||
        (rc = rc_sqlite_repo_new(db, &rc_hero_entity, &sqlite)) ||
        (rc = rc_strategy_hero(&s, &st)) ||
        (rc = rc_cached_repo_new(sqlite, cache, &st, NULL, &heroes)))
        return fail("open", rc);

    h = rc_hero_new();
    h->name = strdup("Ann");
    h->age = 7;
    h->gender = strdup("female");
    h->appearance = strdup("");
    h->language = strdup("en");
    if ((rc = rc_repo_save(heroes, h, (void **)&saved)))
        return fail("save", rc);
    if ((rc = rc_repo_find_by_id(heroes, saved->id, (void **)&got)))
        return fail("find", rc);
    printf("consumer: repocache %s, hero %s read back as %s\n", rc_version(), saved->id,
           got->name);

    rc_hero_free(got);
    rc_hero_free(saved);
    rc_hero_free(h);
    rc_repo_free(heroes);
    rc_repo_free(sqlite);
    rc_sqlite_free(db);
    rc_cache_free(cache);
    rc_settings_clear(&s);
    return 0;
}
