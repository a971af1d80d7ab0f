/* tale_seed.c - deterministic sample heroes, children and stories. */
#include "tale.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const hero_names[] = {
    "Aria", "Bogdan", "Celeste", "Dmitri", "Elara", "Fyodor", "Gwen", "Ivan",
    "Juniper", "Kira", "Leo", "Mila"};
static const char *const hero_traits[] = {"brave", "kind", "curious",
                                          "patient", "clever", "cheerful"};
static const char *const hero_interests[] = {"dragons", "stars", "music",
                                             "forests", "the sea", "books"};
static const char *const hero_strengths[] = {"swordplay", "healing", "riddles",
                                             "flying", "kindness", "speed"};
static const char *const child_names[] = {"Anya", "Ben", "Chloe", "Dima",
                                          "Emma", "Fedya", "Grace", "Hugo"};
static const char *const genders[] = {"male", "female", "other"};
static const char *const age_categories[] = {"3-5", "5-7", "7-10"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define PICK(a, i) ((a)[(size_t)(i) % COUNT(a)])

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return strdup(buf);
}

/* Two items from table, starting at i. */
static int push2(rc_strlist *l, const char *const *table, size_t n, unsigned i)
{
    int rc = rc_strlist_push(l, table[i % n]);
    return rc ? rc : rc_strlist_push(l, table[(i + 1) % n]);
}

rc_hero *tale_sample_hero(unsigned i, const char *language)
{
    rc_hero *h = rc_hero_new();
    if (!h)
        return NULL;
    h->name = fmt("%s %u", PICK(hero_names, i), i + 1);
    h->age = 10 + (int)(i % 60);
    h->gender = strdup(PICK(genders, i));
    h->appearance = fmt("a %s hero with a cloak of colour %u",
                        PICK(hero_traits, i + 3), i % 7);
    h->language = strdup(language ? language : (i % 2 ? "ru" : "en"));
    if (!h->name || !h->gender || !h->appearance || !h->language ||
        push2(&h->personality_traits, hero_traits, COUNT(hero_traits), i) ||
        push2(&h->interests, hero_interests, COUNT(hero_interests), i + 1) ||
        push2(&h->strengths, hero_strengths, COUNT(hero_strengths), i + 2)) {
        rc_hero_free(h);
        return NULL;
    }
    return h;
}

rc_child *tale_sample_child(unsigned i)
{
    rc_child *c = rc_child_new();
    if (!c)
        return NULL;
    c->name = fmt("%s %u", PICK(child_names, i), i + 1);
    c->age_category = strdup(PICK(age_categories, i));
    c->age = 3 + (int)(i % 8);
    c->gender = strdup(PICK(genders, i));
    if (!c->name || !c->age_category || !c->gender ||
        push2(&c->interests, hero_interests, COUNT(hero_interests), i)) {
        rc_child_free(c);
        return NULL;
    }
    return c;
}

rc_story *tale_sample_story(unsigned i, const rc_child *child)
{
    rc_story *s = rc_story_new();
    if (!s)
        return NULL;
    s->title = fmt("The %s of night %u", PICK(hero_interests, i), i + 1);
    s->content = fmt("Once upon a time, %s set out on journey number %u.",
                     child ? child->name : "a child", i + 1);
    s->moral = strdup("Kindness is a kind of courage.");
    s->language = strdup(i % 2 ? "ru" : "en");
    s->model_used = strdup("sample-generator");
    s->story_length.set = true;
    s->story_length.value = 3 + (int)(i % 10);
    s->rating.set = i % 3 != 0;
    s->rating.value = 1 + (int)(i % 10);
    if (!s->title || !s->content || !s->moral || !s->language ||
        !s->model_used) {
        rc_story_free(s);
        return NULL;
    }
    if (child) {
        s->child_id = child->id ? strdup(child->id) : NULL;
        s->child_name = strdup(child->name);
        s->age_category = strdup(child->age_category);
        s->child_gender = strdup(child->gender);
        if ((child->id && !s->child_id) || !s->child_name ||
            !s->age_category || !s->child_gender ||
            rc_strlist_copy(&s->child_interests, &child->interests)) {
            rc_story_free(s);
            return NULL;
        }
    }
    return s;
}

/* Saves sample entities number from .. to-1 of kind k into r. Children
 * saved go into kids; stories are about the children of kids, round robin. */
static int seed_range(rc_repo *r, int k, unsigned from, unsigned to,
                      rc_list *kids)
{
    int rc = RC_OK;
    for (unsigned i = from; rc == RC_OK && i < to; i++) {
        void *e = NULL, *saved = NULL;
        if (k == TALE_HERO)
            e = tale_sample_hero(i, NULL);
        else if (k == TALE_CHILD)
            e = tale_sample_child(i);
        else
            e = tale_sample_story(i, kids->len ? kids->items[i % kids->len] : NULL);
        rc = e ? rc_repo_save(r, e, k == TALE_CHILD ? &saved : NULL) : RC_ENOMEM;
        r->entity->free(e);
        if (rc == RC_OK && saved)
            rc = rc_list_push(kids, saved);
    }
    return rc;
}

int tale_seed(rc_repo *heroes, rc_repo *children, rc_repo *stories,
              unsigned nheroes, unsigned nchildren, unsigned nstories,
              rc_list *made_children)
{
    rc_list *kids = made_children ? made_children
                                  : rc_list_new(&rc_child_entity);
    int rc = kids ? RC_OK : RC_ENOMEM;
    if (rc == RC_OK)
        rc = seed_range(heroes, TALE_HERO, 0, nheroes, kids);
    if (rc == RC_OK)
        rc = seed_range(children, TALE_CHILD, 0, nchildren, kids);
    if (rc == RC_OK)
        rc = seed_range(stories, TALE_STORY, 0, nstories, kids);
    if (kids != made_children)
        rc_list_free(kids);
    return rc;
}

/* One transaction's worth of seed_range. */
typedef struct seed_batch {
    rc_repo *repo;
    int kind;
    unsigned from, to;
    rc_list *kids;
} seed_batch;

static int run_batch(void *ud)
{
    const seed_batch *b = ud;
    return seed_range(b->repo, b->kind, b->from, b->to, b->kids);
}

/* Seeds n entities of kind k into a's SQLite repository, a batch at a time. */
static int seed_kind(tale_app *a, int k, unsigned n, rc_list *kids,
                     bool progress)
{
    const char *ns = tale_kind(k)->ns;
    int rc = RC_OK;
    for (unsigned from = 0; rc == RC_OK && from < n; from += TALE_SEED_BATCH) {
        seed_batch b = {a->sqlite[k], k, from,
                        n - from < TALE_SEED_BATCH ? n : from + TALE_SEED_BATCH,
                        kids};
        rc = rc_sqlite_batch(a->db, run_batch, &b);
        if (progress && rc == RC_OK)
            fprintf(stderr, "\rtale: seed: %s %u/%u", ns, b.to, n);
    }
    if (progress && n)
        fputc('\n', stderr);
    return rc;
}

int tale_seed_batched(tale_app *a, const unsigned counts[TALE_NKINDS],
                      bool progress)
{
    rc_list *kids = rc_list_new(&rc_child_entity);
    int rc = kids ? RC_OK : RC_ENOMEM;
    for (int k = 0; rc == RC_OK && k < TALE_NKINDS; k++)
        rc = seed_kind(a, k, counts[k], kids, progress);
    rc_list_free(kids);
    /* The rows went around the cache: drop what it held of each namespace
     * written (even after a failure: earlier batches are committed). The
     * invalidation also takes the leases, so a reader that read before the
     * last commit cannot fill an answer from before it. */
    for (int k = 0; k < TALE_NKINDS; k++) {
        if (!counts[k])
            continue;
        int inv = rc_cached_repo_invalidate(a->cached[k], "all", NULL, 0, NULL);
        if (rc == RC_OK && inv != RC_OK && inv != RC_EUNAVAILABLE)
            rc = inv; /* unreachable: the caller warns (pending deletes) */
    }
    return rc;
}
