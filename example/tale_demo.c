/*
 * tale_demo.c - `tale demo`: the four scenes of the Python example, with
 * timings measured on this machine (never invented):
 *   1. reads straight from SQLite (no cache);
 *   2. the same reads through the cache: a cold pass (misses, fills), then
 *      warm passes answered by Redis (a second service without the near
 *      cache) and by the near cache (or by the fallback while Redis is
 *      unreachable), with hit and miss counts, and for each workload and
 *      each tier a plain statement of how it compares with SQLite;
 *   3. an update, the keys it invalidated, and the read that follows;
 *   4. Redis unavailable (a closed port): the same answers, and the time per
 *      call showing no timeout is paid.
 * Every answer is digested (its JSON) so scenes 2 and 4 can be checked
 * against scene 1.
 */
#include "tale.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEMO_HEROES 200   /* heroes seeded; also the find-by-id calls */
#define DEMO_CHILDREN 20  /* children seeded */
#define DEMO_STORIES 60   /* stories seeded */
#define DEMO_PASSES 3     /* timed passes; the median is shown */
#define DEMO_CLOSED_URL "redis://127.0.0.1:1"

enum { C_HERO_ID, C_HERO_LANG, C_CHILD_NAME, C_STORY_CHILD, C_STORY_ALL, NCASES };

static const char *const case_names[NCASES] = {
    "find hero by id", "heroes by language", "children by name",
    "stories by child id", "all stories"};

/* The ids and names the workload reads (from SQLite, owned). */
typedef struct demo_data {
    rc_list *heroes;   /* heroes whose ids are read (at most DEMO_HEROES) */
    rc_list *children; /* every child */
} demo_data;

/* One case of one pass. */
typedef struct case_result {
    size_t calls;    /* calls made */
    double total;    /* seconds spent inside the calls */
    double max;      /* slowest call */
    uint64_t digest; /* FNV-1a over the JSON of every answer, in order */
    int rc;          /* first failure, RC_OK when none */
} case_result;

static double per_call(const case_result *r)
{
    return r->calls ? r->total / (double)r->calls : 0.0;
}

/* "12.3 us", "1.24 ms", "1.20 s". */
static const char *fmt_time(double sec, char buf[32])
{
    if (sec < 1e-3)
        snprintf(buf, 32, "%.1f us", sec * 1e6);
    else if (sec < 1.0)
        snprintf(buf, 32, "%.2f ms", sec * 1e3);
    else
        snprintf(buf, 32, "%.2f s", sec);
    return buf;
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* Folds entity e of kind k into r->digest. */
static void digest_entity(case_result *r, int k, const void *e)
{
    char *text = NULL;
    if (rc_entity_encode_text(tale_kind(k)->codec, e, &text) == RC_OK)
        r->digest = fnv(r->digest, text);
    else if (r->rc == RC_OK)
        r->rc = RC_ENOMEM;
    free(text);
}

/* Records one call that started at t0 and returned rc with e or l. */
static void account(case_result *r, double t0, int rc, int k, void *e,
                    rc_list *l)
{
    double dt = tale_now() - t0;
    r->calls++;
    r->total += dt;
    if (dt > r->max)
        r->max = dt;
    if (rc != RC_OK && r->rc == RC_OK)
        r->rc = rc;
    r->digest = fnv(r->digest, "|");
    if (e)
        digest_entity(r, k, e);
    for (size_t i = 0; l && i < l->len; i++)
        digest_entity(r, k, l->items[i]);
    if (e)
        tale_kind(k)->entity->free(e);
    rc_list_free(l);
}

static void run_query(case_result *r, rc_repo *repo, int k, const char *q,
                      const char *arg)
{
    rc_list *l = NULL;
    double t0 = tale_now();
    int rc = rc_repo_find_by_query(repo, q, &arg, 1, &l);
    account(r, t0, rc, k, NULL, l);
}

/* One pass of case c over repos (SQLite or cached). */
static void run_case(int c, rc_repo *const repos[TALE_NKINDS],
                     const demo_data *d, case_result *r)
{
    static const char *const langs[] = {"en", "ru"};
    memset(r, 0, sizeof *r);
    r->digest = 1469598103934665603ull;
    switch (c) {
    case C_HERO_ID:
        for (size_t i = 0; i < d->heroes->len; i++) {
            const rc_hero *h = d->heroes->items[i];
            void *e = NULL;
            double t0 = tale_now();
            int rc = rc_repo_find_by_id(repos[TALE_HERO], h->id, &e);
            account(r, t0, rc, TALE_HERO, e, NULL);
        }
        break;
    case C_HERO_LANG:
        for (size_t i = 0; i < 2; i++)
            run_query(r, repos[TALE_HERO], TALE_HERO, RC_Q_BY_LANGUAGE,
                      langs[i]);
        break;
    case C_CHILD_NAME:
        for (size_t i = 0; i < d->children->len; i++)
            run_query(r, repos[TALE_CHILD], TALE_CHILD, RC_Q_BY_NAME,
                      ((const rc_child *)d->children->items[i])->name);
        break;
    case C_STORY_CHILD:
        for (size_t i = 0; i < d->children->len; i++)
            run_query(r, repos[TALE_STORY], TALE_STORY, RC_Q_BY_CHILD_ID,
                      ((const rc_child *)d->children->items[i])->id);
        break;
    default: {
        rc_list *l = NULL;
        double t0 = tale_now();
        int rc = rc_repo_list_all(repos[TALE_STORY], &l);
        account(r, t0, rc, TALE_STORY, NULL, l);
        break;
    }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs every case `passes` times over repos; out[c] is the pass with the
 * median time per call (its digest and rc are checked by the callers). */
static int run_workload(rc_repo *const repos[TALE_NKINDS], const demo_data *d,
                        int passes, case_result out[NCASES])
{
    for (int c = 0; c < NCASES; c++) {
        case_result runs[DEMO_PASSES];
        double t[DEMO_PASSES];
        for (int p = 0; p < passes; p++) {
            run_case(c, repos, d, &runs[p]);
            if (runs[p].rc != RC_OK) {
                out[c] = runs[p];
                return runs[p].rc;
            }
            t[p] = per_call(&runs[p]);
        }
        qsort(t, (size_t)passes, sizeof t[0], cmp_double);
        for (int p = 0; p < passes; p++)
            if (per_call(&runs[p]) == t[passes / 2])
                out[c] = runs[p];
    }
    return RC_OK;
}

static bool same_answers(const case_result a[NCASES], const case_result b[NCASES])
{
    for (int c = 0; c < NCASES; c++)
        if (a[c].digest != b[c].digest)
            return false;
    return true;
}

/* Sum of hits and misses over the three cached repositories. */
static void repo_counts(rc_repo *const repos[TALE_NKINDS], uint64_t *hits,
                        uint64_t *misses, uint64_t *inval)
{
    *hits = *misses = *inval = 0;
    for (int k = 0; k < TALE_NKINDS; k++) {
        rc_cached_repo_stats st;
        if (rc_cached_repo_get_stats(repos[k], &st) == RC_OK) {
            *hits += st.hits;
            *misses += st.misses;
            *inval += st.invalidations;
        }
    }
}

/* Of the hits of the three cached repositories, those the near cache
 * answered. */
static uint64_t near_hits_of(rc_repo *const repos[TALE_NKINDS])
{
    uint64_t n = 0;
    for (int k = 0; k < TALE_NKINDS; k++) {
        rc_cached_repo_stats st;
        if (rc_cached_repo_get_stats(repos[k], &st) == RC_OK)
            n += st.near_hits;
    }
    return n;
}

static int invalidate_all(rc_repo *const repos[TALE_NKINDS], long long *removed)
{
    int rc = RC_OK;
    *removed = 0;
    for (int k = 0; k < TALE_NKINDS; k++) {
        long long n = 0;
        int r = rc_cached_repo_invalidate(repos[k], "all", NULL, 0, &n);
        if (r == RC_OK)
            *removed += n;
        else if (rc == RC_OK)
            rc = r;
    }
    return rc;
}

/* ---- scene 3: which keys an update removes ---- */

#define MAX_KEYS 32

typedef struct key_set {
    const rc_strategy *st; /* hero strategy */
    const char *prefix;    /* cache key prefix */
    char *keys[MAX_KEYS];  /* full keys (owned) */
    size_t n;              /* how many */
} key_set;

static void key_set_add(key_set *ks, char *key)
{
    if (!key)
        return;
    for (size_t i = 0; i < ks->n; i++)
        if (strcmp(ks->keys[i], key) == 0) {
            free(key);
            return;
        }
    if (ks->n < MAX_KEYS)
        ks->keys[ks->n++] = key;
    else
        free(key);
}

static int add_query_key(void *ud, const char *query, const char *const *args,
                         size_t nargs)
{
    key_set *ks = ud;
    char *key = NULL;
    int rc = rc_strategy_key_query(ks->st, ks->prefix, query, args, nargs, &key);
    key_set_add(ks, key);
    return rc;
}

/* Every key a write of h may touch: by id, all, and its query keys. */
static void key_set_of(key_set *ks, const rc_hero *h)
{
    char *key = NULL;
    if (rc_strategy_key_id(ks->st, ks->prefix, h->id, &key) == RC_OK)
        key_set_add(ks, key);
    key = NULL;
    if (rc_strategy_key_all(ks->st, ks->prefix, &key) == RC_OK)
        key_set_add(ks, key);
    if (ks->st->query_keys)
        ks->st->query_keys(h, add_query_key, ks);
}

static void key_set_exists(const key_set *ks, rc_cache *c, bool out[MAX_KEYS])
{
    for (size_t i = 0; i < ks->n; i++) {
        out[i] = false;
        rc_cache_exists(c, ks->keys[i], &out[i]);
    }
}

/* What a write did to one key. */
enum { K_NOT_CACHED, K_REMOVED, K_REWRITTEN, K_STORED, K_STALE };

static const char *const key_state_names[] = {
    "not cached", "cached before, removed",
    "removed, then stored again with the new value (cache_on_write)",
    "stored with the new value (cache_on_write)",
    "STILL PRESENT with an old answer"};

/* What happened to key: removed, holding the new hero (cache_on_write
 * stores the written entity again), or still holding an old answer. */
static int key_state(rc_cache *c, const char *key, bool before, bool now,
                     const rc_hero *changed)
{
    int state = K_STALE;
    char *val = NULL;
    size_t len = 0;
    void *e = NULL;
    if (!now)
        return before ? K_REMOVED : K_NOT_CACHED;
    if (rc_cache_get(c, key, &val, &len) == RC_OK &&
        rc_envelope_decode(&rc_hero_codec, val, len, &e) == RC_OK &&
        strcmp(((rc_hero *)e)->name, changed->name) == 0)
        state = before ? K_REWRITTEN : K_STORED;
    rc_hero_free(e);
    free(val);
    return state;
}

static void key_set_clear(key_set *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        free(ks->keys[i]);
    ks->n = 0;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Reads through heroes every key an update of orig will have to remove. */
static int fill_update_keys(rc_repo *heroes, const rc_hero *orig)
{
    rc_hero *h = NULL;
    rc_list *l[4] = {NULL, NULL, NULL, NULL};
    int rc = rc_repo_find_by_id(heroes, orig->id, (void **)&h);
    if (rc == RC_OK)
        rc = rc_hero_find_by_language(heroes, "en", &l[0]);
    if (rc == RC_OK)
        rc = rc_hero_find_by_language(heroes, "ru", &l[1]);
    if (rc == RC_OK)
        rc = rc_hero_find_by_name(heroes, orig->name, &l[2]);
    if (rc == RC_OK)
        rc = rc_repo_list_all(heroes, &l[3]);
    rc_hero_free(h);
    for (int i = 0; i < 4; i++)
        rc_list_free(l[i]);
    return rc;
}

/* A copy of orig named "<name> the Bold", in Russian; NULL on ENOMEM. */
static rc_hero *bold_copy(const rc_hero *orig)
{
    rc_hero *changed = rc_hero_clone(orig);
    size_t n = strlen(orig->name) + sizeof " the Bold";
    char *name = malloc(n), *lang = dup_str("ru");
    if (!changed || !name || !lang) {
        free(name);
        free(lang);
        rc_hero_free(changed);
        return NULL;
    }
    snprintf(name, n, "%s the Bold", orig->name);
    free(changed->name);
    free(changed->language);
    changed->name = name;
    changed->language = lang;
    return changed;
}

/* What the update (dt seconds, `counted` keys invalidated by the
 * decorator's count) did to each key of ks, cached or not before it. */
static void print_key_states(tale_app *a, const key_set *ks,
                             const bool before[], const rc_hero *changed,
                             double dt, uint64_t counted)
{
    bool now[MAX_KEYS];
    int state[MAX_KEYS];
    size_t gone = 0, cached = 0, plen = strlen(ks->prefix);
    char t[32];
    key_set_exists(ks, a->cache, now);
    for (size_t i = 0; i < ks->n; i++) {
        state[i] = key_state(a->cache, ks->keys[i], before[i], now[i], changed);
        cached += before[i];
        gone += state[i] == K_REMOVED || state[i] == K_REWRITTEN;
    }
    printf("  the update took %s; %zu of the %zu cached keys it affects "
           "lost their old answer\n  (the decorator counted %llu key(s) "
           "invalidated):\n",
           fmt_time(dt, t), gone, cached, (unsigned long long)counted);
    for (size_t i = 0; i < ks->n; i++)
        printf("    %-40s %s\n", ks->keys[i] + plen, key_state_names[state[i]]);
    if (a->settings->cache_key_prefix[0])
        printf("    (keys shown without the prefix \"%s\")\n", ks->prefix);
}

/* Reads the updated hero back (a hit when the hits grew past hits0) and
 * the query it moved into. */
static int read_back(tale_app *a, const rc_hero *changed, uint64_t hits0)
{
    rc_repo *heroes = a->cached[TALE_HERO];
    rc_hero *after = NULL;
    rc_list *l = NULL;
    uint64_t h, m, i;
    char t[32];
    double t0 = tale_now();
    int rc = rc_repo_find_by_id(heroes, changed->id, (void **)&after);
    double dt = tale_now() - t0;
    repo_counts(a->cached, &h, &m, &i);
    if (rc == RC_OK) {
        printf("  read back through the cache (%s, a %s): name \"%s\", "
               "language %s\n", fmt_time(dt, t), h > hits0 ? "hit" : "miss",
               after->name, after->language);
        printf("  %s\n", strcmp(after->name, changed->name) == 0 &&
                                 strcmp(after->language, "ru") == 0
                             ? "the new value is served, never the old one"
                             : "WRONG: the old value was served");
        rc = rc_hero_find_by_language(heroes, "ru", &l);
    }
    if (rc == RC_OK) {
        bool listed = false;
        for (size_t k = 0; k < l->len; k++)
            listed |= strcmp(((rc_hero *)l->items[k])->id, changed->id) == 0;
        printf("  heroes by language ru now %s it\n",
               listed ? "include" : "DO NOT include");
    }
    rc_list_free(l);
    rc_hero_free(after);
    return rc;
}

static int scene_update(tale_app *a, const demo_data *d)
{
    const rc_hero *orig = NULL;
    rc_hero *changed;
    key_set ks = {.st = &a->strategy[TALE_HERO], .prefix = rc_cache_prefix(a->cache)};
    bool before[MAX_KEYS];
    uint64_t h0, m0, i0, h1, m1, i1;
    double t0, dt;
    int rc;
    for (size_t i = 0; i < d->heroes->len && !orig; i++) {
        const rc_hero *h = d->heroes->items[i];
        if (strcmp(h->language, "en") == 0)
            orig = h;
    }
    if (!orig) {
        printf("  (no English hero to update)\n");
        return RC_OK;
    }
    rc = fill_update_keys(a->cached[TALE_HERO], orig);
    if (rc != RC_OK)
        return rc;
    if (!(changed = bold_copy(orig)))
        return RC_ENOMEM;
    key_set_of(&ks, orig);
    key_set_of(&ks, changed);
    key_set_exists(&ks, a->cache, before);
    printf("  hero %s: name \"%s\" -> \"%s\", language en -> ru\n", orig->id,
           orig->name, changed->name);
    repo_counts(a->cached, &h0, &m0, &i0);
    t0 = tale_now();
    rc = rc_repo_update(a->cached[TALE_HERO], changed, NULL, NULL);
    dt = tale_now() - t0;
    repo_counts(a->cached, &h1, &m1, &i1);
    if (rc == RC_OK) {
        print_key_states(a, &ks, before, changed, dt, i1 - i0);
        rc = read_back(a, changed, h1);
    }
    rc_hero_free(changed);
    key_set_clear(&ks);
    return rc;
}

/* ---- the scenes ---- */

/* A table header: workload, calls, then n time columns. */
static void print_case_header(int n, const char *const cols[])
{
    printf("  %-22s %6s", "workload", "calls");
    for (int i = 0; i < n; i++)
        printf("  %12s", cols[i]);
    printf("\n");
}

/* A table row: case c, its calls, then the time per call of each of the n
 * results. */
static void print_case_row(int c, int n, const case_result *const r[])
{
    char t[32];
    printf("  %-22s %6zu", case_names[c], r[n - 1][c].calls);
    for (int i = 0; i < n; i++)
        printf("  %12s", fmt_time(per_call(&r[i][c]), t));
    printf("\n");
}

static int load_data(tale_app *a, demo_data *d)
{
    rc_list *all = NULL;
    int rc;
    d->heroes = rc_list_new(&rc_hero_entity);
    d->children = NULL;
    if (!d->heroes)
        return RC_ENOMEM;
    rc = rc_repo_list_all(a->sqlite[TALE_HERO], &all);
    for (size_t i = 0; rc == RC_OK && i < all->len && i < DEMO_HEROES; i++) {
        void *e = rc_hero_clone(all->items[i]);
        rc = e ? rc_list_push(d->heroes, e) : RC_ENOMEM;
    }
    rc_list_free(all);
    if (rc == RC_OK)
        rc = rc_repo_list_all(a->sqlite[TALE_CHILD], &d->children);
    return rc;
}

/* A second cache service over the app's database, with a's settings (and
 * .env), a's key prefix, and then the pairs of kv (name, value, ..., NULL):
 * *c and the repositories over it (owned by the caller), *s its settings
 * (rc_settings_clear). */
static int open_service(tale_app *a, const char *const *kv, rc_settings *s,
                        rc_cache **c, rc_repo *repos[TALE_NKINDS])
{
    int rc = rc_settings_load(s, ".env");
    for (int k = 0; k < TALE_NKINDS; k++)
        repos[k] = NULL;
    *c = NULL;
    if (rc != RC_OK)
        return rc;
    rc = rc_settings_set(s, "CACHE_KEY_PREFIX", rc_cache_prefix(a->cache));
    if (rc == RC_OK) /* as the demo's own service: no fleet counters left behind */
        rc = rc_settings_set(s, "CACHE_STATS_FLUSH_INTERVAL", "0");
    for (size_t i = 0; rc == RC_OK && kv[i]; i += 2)
        rc = rc_settings_set(s, kv[i], kv[i + 1]);
    if (rc == RC_OK)
        rc = rc_cache_new(s, c);
    if (rc == RC_OK)
        rc = tale_wrap(a, *c, repos);
    return rc;
}

static void close_service(rc_settings *s, rc_cache *c, rc_repo *repos[TALE_NKINDS])
{
    for (int k = 0; k < TALE_NKINDS; k++)
        rc_repo_free(repos[k]);
    rc_cache_free(c);
    rc_settings_clear(s);
}

/* ---- scene 2: the reads through each tier of the cache ---- */

/* A way to answer the reads warm: Redis, the near cache or the fallback. */
typedef struct tier {
    const char *column;     /* table heading: "Redis hit" */
    const char *name;       /* in sentences: "a Redis hit" */
    const char *why;        /* why it can be slower than SQLite */
    case_result r[NCASES];  /* the median pass of each case */
    uint64_t hits, near, misses; /* over its passes */
} tier;

/* Runs the warm passes of t over repos, with its hit counts. */
static int run_tier(tier *t, rc_repo *const repos[TALE_NKINDS],
                    const demo_data *d)
{
    uint64_t h0, m0, i0, n0 = near_hits_of(repos), h1, m1, i1;
    int rc;
    repo_counts(repos, &h0, &m0, &i0);
    rc = run_workload(repos, d, DEMO_PASSES, t->r);
    repo_counts(repos, &h1, &m1, &i1);
    t->hits = h1 - h0;
    t->misses = m1 - m0;
    t->near = near_hits_of(repos) - n0;
    return rc;
}

/* One sentence per workload: how each tier compares with SQLite; then why,
 * for each tier slower than SQLite somewhere. */
static void compare_tiers(const case_result base[NCASES], const tier *t,
                          int nt)
{
    bool slower[4] = {false, false, false, false};
    char t1[32], t2[32];
    for (int c = 0; c < NCASES; c++) {
        double b = per_call(&base[c]);
        printf("  - %s:", case_names[c]);
        for (int i = 0; i < nt; i++) {
            double w = per_call(&t[i].r[c]);
            if (w > b)
                printf("%s %s is slower than SQLite here (%s against %s)",
                       i ? ";" : "", t[i].name, fmt_time(w, t1), fmt_time(b, t2));
            else
                printf("%s %s is %.1fx faster than SQLite", i ? ";" : "",
                       t[i].name, w > 0 ? b / w : 0.0);
            slower[i] |= w > b;
        }
        printf(".\n");
    }
    for (int i = 0; i < nt; i++)
        if (slower[i])
            printf("  Why %s is slower: %s.\n", t[i].name, t[i].why);
    for (int i = 0; i < nt; i++)
        if (slower[i]) {
            printf("  SQLite reads a local file from the page cache inside "
                   "this process; a cache pays off\n  when the database is "
                   "remote or busy, or the query is expensive.\n");
            break;
        }
}

static const tier tier_redis = {
    .column = "Redis hit", .name = "a Redis hit",
    .why = "it is a network round trip to Redis plus decoding the cached JSON"};
static const tier tier_near = {
    .column = "near hit", .name = "a near-cache hit",
    .why = "it hands the caller a copy of every entity of the answer"};
static const tier tier_fallback = {
    .column = "fallback hit", .name = "a fallback hit",
    .why = "it still decodes the cached JSON (the Python layout)"};

/* The warm tiers of scene 2 into t (*nt of them): with Redis and the near
 * cache, Redis alone first (a second service without the near cache, on
 * the keys the cold pass filled), then the app's own service after one
 * untimed pass that brings every answer into its near cache. */
static int warm_tiers(tale_app *a, const demo_data *d, bool redis_up,
                      tier t[2], int *nt)
{
    static const char *const no_near[] = {"CACHE_L1_ENABLED", "false", NULL};
    bool near_on = redis_up && a->settings->cache_l1_enabled;
    case_result prime[NCASES];
    rc_settings s2;
    rc_cache *c2;
    rc_repo *r2[TALE_NKINDS];
    int rc = RC_OK;
    *nt = 0;
    if (near_on) {
        t[*nt] = tier_redis;
        rc = open_service(a, no_near, &s2, &c2, r2);
        if (rc == RC_OK)
            rc = run_tier(&t[(*nt)++], r2, d);
        close_service(&s2, c2, r2);
        if (rc == RC_OK)
            rc = run_workload(a->cached, d, 1, prime);
    }
    t[*nt] = near_on ? tier_near : redis_up ? tier_redis : tier_fallback;
    if (rc == RC_OK)
        rc = run_tier(&t[(*nt)++], a->cached, d);
    return rc;
}

static int scene_cache(tale_app *a, const demo_data *d,
                       const case_result base[NCASES], bool redis_up)
{
    case_result cold[NCASES];
    tier t[2];
    uint64_t hits, misses, inval;
    bool same;
    int nt = 0, rc;
    printf("\nScene 2: the same reads through the cache (%s)\n",
           !redis_up ? "in-memory fallback"
           : a->settings->cache_l1_enabled ? "Redis, and the near cache in this process"
                                           : "Redis; the near cache is off");
    rc = run_workload(a->cached, d, 1, cold);
    repo_counts(a->cached, &hits, &misses, &inval);
    printf("  cold pass: %llu hits, %llu misses (every answer read from "
           "SQLite, then stored)\n",
           (unsigned long long)hits, (unsigned long long)misses);
    if (rc == RC_OK)
        rc = warm_tiers(a, d, redis_up, t, &nt);
    if (rc != RC_OK)
        return rc;
    for (int i = 0; i < nt; i++)
        printf("  warm passes, %s: %llu hits (%llu from the near cache), "
               "%llu misses\n", t[i].column, (unsigned long long)t[i].hits,
               (unsigned long long)t[i].near, (unsigned long long)t[i].misses);
    print_case_header(2 + nt, (const char *const[]){"SQLite", "cold (miss)",
                                                     t[0].column, t[1].column});
    for (int c = 0; c < NCASES; c++)
        print_case_row(c, 2 + nt, (const case_result *const[]){base, cold, t[0].r, t[1].r});
    compare_tiers(base, t, nt);
    same = same_answers(base, cold);
    for (int i = 0; i < nt; i++)
        same = same && same_answers(base, t[i].r);
    printf("  answers identical to SQLite's: %s\n", same ? "yes" : "NO");
    return RC_OK;
}

/* Scene 4: a second service on a closed port; its answers are checked
 * against ref (SQLite after the update). */
static int scene_down(tale_app *a, const demo_data *d,
                      const case_result base[NCASES], const case_result ref[NCASES])
{
    static const char *const closed_kv[] = {
        "REDIS_URL", DEMO_CLOSED_URL, "REDIS_ENABLED", "true",
        "REDIS_CLUSTER_NODES", "", /* one closed server, not the cluster */
        "LOG_LEVEL", "error", /* the connect failures are the point */
        NULL};
    case_result down1[NCASES], down2[NCASES];
    rc_settings s2;
    rc_cache *closed;
    rc_repo *down[TALE_NKINDS];
    rc_cache_stats cs;
    double slowest = 0;
    char t1[32], t2[32];
    int rc;
    printf("\nScene 4: Redis unavailable (REDIS_URL=%s, a closed port)\n",
           DEMO_CLOSED_URL);
    rc = open_service(a, closed_kv, &s2, &closed, down);
    if (rc == RC_OK)
        rc = run_workload(down, d, 1, down1);
    if (rc == RC_OK)
        rc = run_workload(down, d, DEMO_PASSES, down2);
    if (rc == RC_OK) {
        for (int c = 0; c < NCASES; c++) {
            slowest = down1[c].max > slowest ? down1[c].max : slowest;
            slowest = down2[c].max > slowest ? down2[c].max : slowest;
        }
        print_case_header(3, (const char *const[]){"SQLite", "first pass",
                                                    "later passes"});
        for (int c = 0; c < NCASES; c++)
            print_case_row(c, 3, (const case_result *const[]){base, down1, down2});
        rc_cache_get_stats(closed, &cs);
        printf("  answers identical to SQLite's: %s\n",
               same_answers(ref, down1) && same_answers(ref, down2) ? "yes" : "NO");
        printf("  slowest single call: %s; REDIS_SOCKET_TIMEOUT is %s, so %s\n",
               fmt_time(slowest, t1), fmt_time(s2.redis_socket_timeout, t2),
               slowest < s2.redis_socket_timeout ? "no call waited for a timeout"
                                                 : "a call took as long as the timeout");
        printf("  circuit %s after %llu failed Redis call(s); %s, %llu fallback hit(s)\n",
               rc_circuit_state_name(cs.circuit), (unsigned long long)cs.errors,
               s2.cache_fallback_enabled ? "fallback enabled" : "fallback disabled",
               (unsigned long long)cs.fallback_hits);
    }
    close_service(&s2, closed, down);
    return rc;
}

/* The header, the sample data (d) and scene 1 (base). */
static int scene_sqlite(tale_app *a, demo_data *d, case_result base[NCASES],
                        bool *redis_up)
{
    long long removed = 0;
    char t[32];
    double t0;
    int rc;
    printf("tale demo: a Redis cache in front of SQLite repositories\n");
    printf("  database   %s\n", a->settings->database_path);
    *redis_up = a->settings->redis_enabled && rc_cache_health_check(a->cache) == RC_OK;
    if (*redis_up)
        printf("  redis      reachable; demo keys under the prefix \"%s\"\n",
               rc_cache_prefix(a->cache));
    else
        printf("  redis      %s: scenes 2 and 3 run on the in-memory "
               "fallback (set REDIS_URL to use a server)\n",
               a->settings->redis_enabled ? "NOT reachable" : "disabled");
    t0 = tale_now();
    rc = tale_seed(a->sqlite[TALE_HERO], a->sqlite[TALE_CHILD], a->sqlite[TALE_STORY],
                   DEMO_HEROES, DEMO_CHILDREN, DEMO_STORIES, NULL);
    if (rc == RC_OK)
        rc = load_data(a, d);
    if (rc != RC_OK)
        return rc;
    invalidate_all(a->cached, &removed); /* start cold, whatever was there */
    printf("  seeded %d heroes, %d children, %d stories in %s\n", DEMO_HEROES,
           DEMO_CHILDREN, DEMO_STORIES, fmt_time(tale_now() - t0, t));
    printf("  each figure: median of %d passes, time per call\n", DEMO_PASSES);
    printf("\nScene 1: reads straight from SQLite, no cache\n");
    rc = run_workload(a->sqlite, d, DEMO_PASSES, base);
    if (rc != RC_OK)
        return rc;
    print_case_header(1, (const char *const[]){"SQLite"});
    for (int c = 0; c < NCASES; c++)
        print_case_row(c, 1, (const case_result *const[]){base});
    return RC_OK;
}

int tale_demo(tale_app *a)
{
    demo_data d = {NULL, NULL};
    case_result base[NCASES], ref[NCASES];
    long long removed = 0;
    bool redis_up = false;
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0); /* keep order with the library's log */
    rc = scene_sqlite(a, &d, base, &redis_up);
    if (rc == RC_OK)
        rc = scene_cache(a, &d, base, redis_up);
    if (rc == RC_OK) {
        printf("\nScene 3: an update invalidates every key whose answer changed\n");
        rc = scene_update(a, &d);
    }
    if (rc == RC_OK) /* scene 4's answers are those of SQLite after the update */
        rc = run_workload(a->sqlite, &d, 1, ref);
    if (rc == RC_OK)
        rc = scene_down(a, &d, base, ref);
    rc_list_free(d.heroes);
    rc_list_free(d.children);
    if (rc != RC_OK)
        return tale_fail("demo", rc);
    invalidate_all(a->cached, &removed);
    printf("\ndone: removed the demo's %lld cache key(s)\n", removed);
    return TALE_EXIT_OK;
}
