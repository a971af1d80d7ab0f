/*
 * wrap_own.c - wrapping your own repository with the cached decorator.
 *
 * A tiny in-memory hero repository implements the repository vtable (only
 * the slots it supports; the others stay NULL), and the cached decorator
 * puts Redis in front of it with the built-in hero strategy. Settings come
 * from the environment (REDIS_URL, CACHE_KEY_PREFIX, ...). Built with the
 * project so this example cannot rot; the README quotes it.
 *
 * Prints the decorator's stats and how often the wrapped repository was
 * read; exit status 0 when every call succeeded.
 */
#include <repocache/cache.h>
#include <repocache/cached_repository.h>
#include <repocache/repository.h>
#include <repocache/settings.h>
#include <repocache/strategy.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- your repository: heroes in an array ---- */

typedef struct mem_repo {
    rc_repo base;       /* must be first */
    rc_hero *heroes[8]; /* stored heroes (owned) */
    int n;              /* how many */
    int reads;          /* find_by_id calls that reached us */
} mem_repo;

static int mem_find(rc_repo *r, const char *id, void **out)
{
    mem_repo *m = (mem_repo *)r;
    m->reads++;
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->heroes[i]->id, id) == 0)
            return (*out = rc_hero_clone(m->heroes[i])) ? RC_OK : RC_ENOMEM;
    return RC_ENOTFOUND;
}

static int mem_save(rc_repo *r, const void *entity, void **saved)
{
    mem_repo *m = (mem_repo *)r;
    rc_hero *h = rc_hero_clone(entity);
    if (!h)
        return RC_ENOMEM;
    if (m->n == 8 || !h->id) { /* this toy needs caller-chosen ids */
        rc_hero_free(h);
        return RC_EINVAL;
    }
    m->heroes[m->n++] = h;
    if (saved && !(*saved = rc_hero_clone(h)))
        return RC_ENOMEM;
    return RC_OK;
}

static void mem_destroy(rc_repo *r)
{
    mem_repo *m = (mem_repo *)r;
    for (int i = 0; i < m->n; i++)
        rc_hero_free(m->heroes[i]);
    free(m);
}

static const rc_repo_methods mem_methods = {
    .version = RC_REPO_VERSION,
    .name = "memory",
    .find_by_id = mem_find,
    .save = mem_save,
    .destroy = mem_destroy,
    /* list_all, find_by_query, update, remove: NULL, so RC_EUNSUPPORTED */
};

/* ---- wrapping it ---- */

int main(void)
{
    rc_settings s;
    rc_cache *cache = NULL;
    rc_strategy st;
    rc_repo *cached = NULL;
    mem_repo *mine = calloc(1, sizeof *mine), *inner = mine;
    rc_hero *h = rc_hero_new(), *got = NULL;
    char *stats = NULL;
    long long removed = 0;
    int rc;

    if (!mine || !h)
        return 1;
    mine->base.methods = &mem_methods;
    mine->base.entity = &rc_hero_entity;

    rc = rc_settings_load(&s, NULL); /* environment only */
    if (rc == RC_OK)
        rc = rc_cache_new(&s, &cache);
    if (rc == RC_OK)
        rc = rc_strategy_hero(&s, &st);
    if (rc == RC_OK) {
        /* own_inner: the decorator destroys `mine` when it is destroyed. */
        rc_cached_repo_options opt = {.own_inner = true};
        rc = rc_cached_repo_new(&mine->base, cache, &st, &opt, &cached);
        mine = NULL; /* owned by the decorator now (freed even on failure) */
    }
    if (rc == RC_OK) {
        h->id = strdup("wrap-own-1");
        h->name = strdup("Aria");
        h->age = 12;
        h->gender = strdup("female");
        h->appearance = strdup("");
        h->language = strdup("en");
        rc = rc_repo_save(cached, h, NULL);
    }
    for (int i = 0; rc == RC_OK && i < 2; i++) { /* a miss, then a hit */
        rc = rc_repo_find_by_id(cached, "wrap-own-1", (void **)&got);
        rc_hero_free(got);
        got = NULL;
    }
    if (rc == RC_OK)
        rc = rc_cached_repo_stats_json(cached, &stats);
    if (rc == RC_OK) {
        printf("%s\n", stats);
        printf("2 finds, %d reached the wrapped repository\n", inner->reads);
        rc = rc_cached_repo_invalidate(cached, "by_id",
                                       (const char *const[]){"wrap-own-1"}, 1,
                                       &removed);
    }
    if (rc == RC_OK)
        printf("invalidated %lld key(s)\n", removed);
    else
        fprintf(stderr, "wrap_own: %s: %s\n", rc_strerror(rc), rc_errmsg());

    free(stats);
    rc_hero_free(h);
    rc_repo_free(cached);
    rc_cache_free(cache);
    rc_settings_clear(&s);
    free(mine);
    return rc == RC_OK ? 0 : 1;
}
