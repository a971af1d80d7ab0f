/* check_repository.c - the repository vtable from the outside: a tiny
 * in-memory repository written here (counting calls) implements it through
 * the base struct; the dispatch helpers refuse missing slots; the typed
 * convenience functions route to find_by_query with the right name and
 * arguments. */
#include "harness.h"

#include "repocache/repository.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a tiny in-memory repository, as outside code would write it ---- */

enum { MEM_MAX = 16, MEM_ARGS = 4 };

typedef struct mem_repo {
    rc_repo base;             /* must be first */
    void *items[MEM_MAX];     /* owned entities; NULL = free slot */
    int next_id;              /* for generated ids */
    /* Calls counted per slot */
    int n_find, n_list, n_query, n_save, n_update, n_remove, n_destroy;
    /* The last query seen */
    char query[32];
    char args[MEM_ARGS][32];
    size_t nargs;
    int query_status;         /* what find_by_query returns */
} mem_repo;

static int mem_destroyed; /* destroy calls, observed after the free */

static int mem_slot(mem_repo *m, const char *id)
{
    int i;
    for (i = 0; i < MEM_MAX; i++)
        if (m->items[i] &&
            strcmp(m->base.entity->get_id(m->items[i]), id) == 0)
            return i;
    return -1;
}

static int mem_find(rc_repo *r, const char *id, void **out)
{
    mem_repo *m = (mem_repo *)r;
    int i = mem_slot(m, id);
    m->n_find++;
    if (i < 0)
        return RC_ENOTFOUND;
    *out = r->entity->clone(m->items[i]);
    return RC_OK;
}

static int mem_list(rc_repo *r, rc_list **out)
{
    mem_repo *m = (mem_repo *)r;
    rc_list *l = rc_list_new(r->entity);
    int i;
    m->n_list++;
    for (i = 0; i < MEM_MAX; i++)
        if (m->items[i])
            rc_list_push(l, r->entity->clone(m->items[i]));
    *out = l;
    return RC_OK;
}

static int mem_query(rc_repo *r, const char *query, const char *const *args,
                     size_t nargs, rc_list **out)
{
    mem_repo *m = (mem_repo *)r;
    size_t i;
    m->n_query++;
    snprintf(m->query, sizeof m->query, "%s", query);
    m->nargs = nargs;
    for (i = 0; i < nargs && i < MEM_ARGS; i++)
        snprintf(m->args[i], sizeof m->args[i], "%s", args[i]);
    if (m->query_status != RC_OK)
        return m->query_status;
    *out = rc_list_new(r->entity);
    return RC_OK;
}

static int mem_save(rc_repo *r, const void *e, void **saved)
{
    mem_repo *m = (mem_repo *)r;
    rc_hero *copy; /* this repository stores heroes */
    int i;
    m->n_save++;
    if (r->entity->validate(e, false) != RC_OK)
        return RC_EINVAL;
    copy = r->entity->clone(e);
    if (!copy->id) {
        char id[16];
        snprintf(id, sizeof id, "m%d", ++m->next_id);
        copy->id = strdup(id);
    }
    if (mem_slot(m, copy->id) >= 0) {
        r->entity->free(copy);
        return RC_ECONFLICT;
    }
    for (i = 0; i < MEM_MAX && m->items[i]; i++)
        ;
    m->items[i] = copy;
    if (saved)
        *saved = r->entity->clone(copy);
    return RC_OK;
}

static int mem_update(rc_repo *r, const void *e, void **stored,
                      void **previous)
{
    mem_repo *m = (mem_repo *)r;
    int i = mem_slot(m, r->entity->get_id(e));
    m->n_update++;
    if (i < 0)
        return RC_ENOTFOUND;
    if (previous)
        *previous = m->items[i];
    else
        r->entity->free(m->items[i]);
    m->items[i] = r->entity->clone(e);
    if (stored)
        *stored = r->entity->clone(e);
    return RC_OK;
}

static int mem_remove(rc_repo *r, const char *id, void **previous)
{
    mem_repo *m = (mem_repo *)r;
    int i = mem_slot(m, id);
    m->n_remove++;
    if (i < 0)
        return RC_ENOTFOUND;
    if (previous)
        *previous = m->items[i];
    else
        r->entity->free(m->items[i]);
    m->items[i] = NULL;
    return RC_OK;
}

static void mem_destroy(rc_repo *r)
{
    mem_repo *m = (mem_repo *)r;
    int i;
    for (i = 0; i < MEM_MAX; i++)
        r->entity->free(m->items[i]);
    free(m);
    mem_destroyed++;
}

static const rc_repo_methods mem_methods = {
    .version = RC_REPO_VERSION,
    .name = "mem",
    .find_by_id = mem_find,
    .list_all = mem_list,
    .find_by_query = mem_query,
    .save = mem_save,
    .update = mem_update,
    .remove = mem_remove,
    .destroy = mem_destroy,
};

static mem_repo *mem_new(void)
{
    mem_repo *m = calloc(1, sizeof *m);
    ck_assert_ptr_nonnull(m);
    m->base.methods = &mem_methods;
    m->base.entity = &rc_hero_entity;
    return m;
}

static rc_hero *mk_hero(const char *id, const char *name, int age)
{
    rc_hero *h = rc_hero_new();
    h->id = id ? strdup(id) : NULL;
    h->name = strdup(name);
    h->age = age;
    h->gender = strdup("other");
    h->appearance = strdup("");
    h->language = strdup("en");
    return h;
}

/* ---- an outside implementation works through the helpers ---- */

START_TEST(test_custom_repository)
{
    mem_repo *m = mem_new();
    rc_repo *r = &m->base;
    rc_hero *h = mk_hero(NULL, "Ann", 30), *saved = NULL, *found = NULL;
    rc_hero *prev = NULL, *stored = NULL;
    rc_list *l = NULL;

    ck_assert_int_eq(rc_repo_save(r, h, (void **)&saved), RC_OK);
    ck_assert_str_eq(saved->id, "m1");
    ck_assert_int_eq(rc_repo_save(r, saved, NULL), RC_ECONFLICT);
    ck_assert_int_eq(rc_repo_find_by_id(r, "m1", (void **)&found), RC_OK);
    ck_assert_str_eq(found->name, "Ann");
    ck_assert_int_eq(rc_repo_list_all(r, &l), RC_OK);
    ck_assert_uint_eq(l->len, 1);
    rc_list_free(l);

    found->age = 31;
    ck_assert_int_eq(
        rc_repo_update(r, found, (void **)&stored, (void **)&prev), RC_OK);
    ck_assert_int_eq(prev->age, 30);
    ck_assert_int_eq(stored->age, 31);
    rc_hero_free(prev);
    ck_assert_int_eq(rc_repo_remove(r, "m1", (void **)&prev), RC_OK);
    ck_assert_int_eq(prev->age, 31);
    ck_assert_int_eq(rc_repo_remove(r, "m1", NULL), RC_ENOTFOUND);
    rc_hero_free(found);
    found = (rc_hero *)&found; /* the helper must reset it */
    ck_assert_int_eq(rc_repo_find_by_id(r, "m1", (void **)&found),
                     RC_ENOTFOUND);
    ck_assert_ptr_null(found);

    /* each helper called its slot, once per call */
    ck_assert_int_eq(m->n_save, 2);
    ck_assert_int_eq(m->n_find, 2);
    ck_assert_int_eq(m->n_list, 1);
    ck_assert_int_eq(m->n_update, 1);
    ck_assert_int_eq(m->n_remove, 2);
    ck_assert_int_eq(m->n_query, 0);

    mem_destroyed = 0;
    rc_repo_free(r);
    ck_assert_int_eq(mem_destroyed, 1);
    rc_hero_free(h);
    rc_hero_free(saved);
    rc_hero_free(prev);
    rc_hero_free(stored);
}
END_TEST

/* Statuses come back unchanged, and out pointers are NULL after a failure
 * even when the implementation did not touch them. */
START_TEST(test_status_passthrough)
{
    mem_repo *m = mem_new();
    rc_list *l = (rc_list *)&l;
    const char *args[1] = {"x"};
    void *out = (void *)&out;
    int codes[] = {RC_EBACKEND, RC_ENOMEM, RC_EINVAL, RC_ETIMEOUT};
    size_t i;
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        m->query_status = codes[i];
        l = (rc_list *)&l;
        ck_assert_int_eq(rc_repo_find_by_query(&m->base, "q", args, 1, &l),
                         codes[i]);
        ck_assert_ptr_null(l);
    }
    ck_assert_int_eq(rc_repo_find_by_id(&m->base, "nope", &out),
                     RC_ENOTFOUND);
    ck_assert_ptr_null(out);
    rc_repo_free(&m->base);
}
END_TEST

/* ---- dispatch helpers refuse missing slots ---- */

/* Asserts every helper returns want on r, clearing its out pointers. */
static void assert_all_refused(rc_repo *r, int want)
{
    rc_hero *h = mk_hero("x", "X", 10);
    const char *args[1] = {"en"};
    void *a = (void *)&a, *b = (void *)&b;
    rc_list *l = (rc_list *)&l;

    ck_assert_int_eq(rc_repo_find_by_id(r, "x", &a), want);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(rc_repo_list_all(r, &l), want);
    ck_assert_ptr_null(l);
    l = (rc_list *)&l;
    ck_assert_int_eq(rc_repo_find_by_query(r, "by_language", args, 1, &l),
                     want);
    ck_assert_ptr_null(l);
    a = (void *)&a;
    ck_assert_int_eq(rc_repo_save(r, h, &a), want);
    ck_assert_ptr_null(a);
    a = (void *)&a;
    ck_assert_int_eq(rc_repo_update(r, h, &a, &b), want);
    ck_assert_ptr_null(a);
    ck_assert_ptr_null(b);
    b = (void *)&b;
    ck_assert_int_eq(rc_repo_remove(r, "x", &b), want);
    ck_assert_ptr_null(b);
    l = (rc_list *)&l;
    ck_assert_int_eq(rc_hero_find_by_language(r, "en", &l), want);
    ck_assert_ptr_null(l);
    ck_assert_int_eq(rc_child_find_exact_match(r, "X", 5, "male", NULL),
                     want);
    rc_hero_free(h);
}

START_TEST(test_null_slots)
{
    static const rc_repo_methods empty = {.version = RC_REPO_VERSION,
                                          .name = "empty"};
    rc_repo r = {.methods = &empty, .entity = &rc_hero_entity};
    assert_all_refused(&r, RC_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "empty"));
    rc_repo_free(&r); /* NULL destroy slot: nothing happens */
}
END_TEST

START_TEST(test_null_methods_and_repo)
{
    rc_repo r = {.methods = NULL, .entity = &rc_hero_entity};
    assert_all_refused(&r, RC_EUNSUPPORTED);
    rc_repo_free(&r);
    assert_all_refused(NULL, RC_EINVAL);
    rc_repo_free(NULL);
}
END_TEST

/* A table claiming a version older than the slots' is not trusted with them. */
START_TEST(test_old_version_table)
{
    static rc_repo_methods old;
    mem_repo *m = mem_new();
    old = mem_methods;
    old.version = 0;
    m->base.methods = &old;
    assert_all_refused(&m->base, RC_EUNSUPPORTED);
    ck_assert_int_eq(m->n_find + m->n_list + m->n_query + m->n_save +
                         m->n_update + m->n_remove,
                     0);
    mem_destroy(&m->base);
}
END_TEST

/* ---- typed convenience functions route to find_by_query ---- */

/* Asserts the last query seen by m was name(args...), then frees l. */
static void assert_routed(mem_repo *m, rc_list *l, int calls, const char *name,
                          size_t nargs, const char *a0, const char *a1,
                          const char *a2)
{
    const char *want[3] = {a0, a1, a2};
    size_t i;
    ck_assert_ptr_nonnull(l);
    rc_list_free(l);
    ck_assert_int_eq(m->n_query, calls);
    ck_assert_str_eq(m->query, name);
    ck_assert_uint_eq(m->nargs, nargs);
    for (i = 0; i < nargs; i++)
        ck_assert_str_eq(m->args[i], want[i]);
}

START_TEST(test_typed_routing)
{
    mem_repo *m = mem_new();
    rc_repo *r = &m->base;
    rc_list *l = NULL;
    ck_assert_int_eq(rc_hero_find_by_language(r, "ru", &l), RC_OK);
    assert_routed(m, l, 1, "by_language", 1, "ru", NULL, NULL);
    ck_assert_int_eq(rc_hero_find_by_name(r, "Ann Lee", &l), RC_OK);
    assert_routed(m, l, 2, "by_name", 1, "Ann Lee", NULL, NULL);
    ck_assert_int_eq(rc_child_find_by_name(r, "Max", &l), RC_OK);
    assert_routed(m, l, 3, "by_name", 1, "Max", NULL, NULL);
    ck_assert_int_eq(rc_child_find_exact_match(r, "Max", 7, "male", &l),
                     RC_OK);
    assert_routed(m, l, 4, "exact_match", 3, "Max", "7", "male");
    ck_assert_int_eq(rc_child_find_exact_match(r, "Mia", 12, "female", &l),
                     RC_OK);
    assert_routed(m, l, 5, "exact_match", 3, "Mia", "12", "female");
    ck_assert_int_eq(rc_child_find_exact_match(r, "Z", -3, "other", &l),
                     RC_OK);
    assert_routed(m, l, 6, "exact_match", 3, "Z", "-3", "other");
    ck_assert_int_eq(rc_child_find_exact_match(r, "Z", 0, "other", &l),
                     RC_OK);
    assert_routed(m, l, 7, "exact_match", 3, "Z", "0", "other");
    ck_assert_int_eq(rc_story_find_by_child_id(r, "c-1", &l), RC_OK);
    assert_routed(m, l, 8, "by_child_id", 1, "c-1", NULL, NULL);
    ck_assert_int_eq(rc_story_find_by_child_name(r, "Max", &l), RC_OK);
    assert_routed(m, l, 9, "by_child_name", 1, "Max", NULL, NULL);
    ck_assert_int_eq(rc_story_find_by_language(r, "en", &l), RC_OK);
    assert_routed(m, l, 10, "by_language", 1, "en", NULL, NULL);
    /* their status is find_by_query's, unchanged */
    m->query_status = RC_EBACKEND;
    l = (rc_list *)&l;
    ck_assert_int_eq(rc_story_find_by_language(r, "en", &l), RC_EBACKEND);
    ck_assert_ptr_null(l);
    ck_assert_int_eq(m->n_query, 11);
    ck_assert_int_eq(m->n_find + m->n_list + m->n_save, 0);
    rc_repo_free(r);
}
END_TEST

static Suite *repository_suite(void)
{
    Suite *s = suite_create("repository");
    const th_case cases[] = {
        {"custom_repository", test_custom_repository},
        {"status_passthrough", test_status_passthrough},
        {"null_slots", test_null_slots},
        {"null_methods_and_repo", test_null_methods_and_repo},
        {"old_version_table", test_old_version_table},
        {"typed_routing", test_typed_routing},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], NULL, NULL, 0);
    return s;
}

int main(void)
{
    return th_run_suite(repository_suite());
}
