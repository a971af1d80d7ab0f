/* check_queries.c - one query table per entity (core/entity_queries.h)
 * drives both the built-in strategies (names, argument counts, key segments,
 * the query keys an entity belongs to) and the SQLite repository (its WHERE
 * clauses): every strategy query is a core query and a SQLite query and vice
 * versa, and every query key an entity is said to belong to is a SQLite
 * query whose answer holds that entity. */
#include "core/entity_fields.h"
#include "core/entity_queries.h"
#include "entity_samples.h"
#include "harness.h"
#include "repocache/cached_repository.h"
#include "repocache/sqlite_repository.h"
#include "repocache/strategy.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* The built-ins, with their core descriptions and a full sample each. */
static const struct builtin_case {
    const char *name;        /* strategy and entity name */
    const rc_fields *fields; /* core description: fields and queries */
} builtins[] = {
    {"hero", &rc_hero_fields},
    {"child", &rc_child_fields},
    {"story", &rc_story_fields},
};
#define NBUILTINS (sizeof builtins / sizeof builtins[0])

static void *sample_full(size_t i)
{
    return i == 0 ? (void *)sample_hero_full()
           : i == 1 ? (void *)sample_child_full()
                    : (void *)sample_story_full();
}

START_TEST(test_builtin_names)
{
    for (size_t i = 0; i < NBUILTINS; i++)
        ck_assert_str_eq(rc_strategy_builtin_name(i), builtins[i].name);
    ck_assert_ptr_null(rc_strategy_builtin_name(NBUILTINS));
}
END_TEST

START_TEST(test_core_tables_are_usable)
{
    for (size_t i = 0; i < NBUILTINS; i++) {
        const rc_fields *t = builtins[i].fields;
        ck_assert_ptr_nonnull(t->queries);
        ck_assert_uint_gt(t->queries->count, 0);
        ck_assert_int_eq(rc_queries_check(t), RC_OK);
    }
    ck_assert_int_eq(rc_queries_check(&rc_audio_file_fields), RC_OK);
}
END_TEST

/* A broken table is refused, by the check and by the walks over it. */
START_TEST(test_bad_core_tables)
{
    static const rc_query_spec nofield[] = {{"q", "s", {"colour"}}};
    static const rc_query_spec list[] = {{"q", "s", {"interests"}}};
    static const rc_query_spec noargs[] = {{"q", "s", {NULL}}};
    static const rc_query_spec twice[] = {{"q", "s", {"name"}},
                                          {"q", "t", {"age"}}};
    static const rc_query_spec noseg[] = {{"q", NULL, {"name"}}};
    const rc_queries bad[] = {
        {nofield, 1}, {list, 1}, {noargs, 1}, {twice, 2}, {noseg, 1}};
    rc_hero *h = sample_hero_full();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc_fields t = rc_hero_fields;
        t.queries = &bad[i];
        ck_assert_int_eq(rc_queries_check(&t), RC_EINVAL);
        ck_assert_int_eq(rc_queries_emit(&t, h, NULL, NULL), RC_EINVAL);
    }
    rc_hero_free(h);
}
END_TEST

/* The strategy's query table is the entity's, entry for entry. */
START_TEST(test_strategy_queries_are_the_core_queries)
{
    for (size_t i = 0; i < NBUILTINS; i++) {
        const rc_queries *qs = builtins[i].fields->queries;
        rc_strategy st;
        ck_assert_int_eq(rc_strategy_builtin(builtins[i].name, NULL, &st),
                         RC_OK);
        ck_assert_uint_eq(st.nqueries, qs->count);
        for (size_t k = 0; k < qs->count; k++) {
            const rc_query_def *q =
                rc_strategy_find_query(&st, qs->items[k].name);
            ck_assert_ptr_nonnull(q);
            ck_assert_ptr_eq(q, &st.queries[k]); /* same order */
            ck_assert_str_eq(q->segment, qs->items[k].segment);
            ck_assert_uint_eq(q->nargs, rc_query_nargs(&qs->items[k]));
            ck_assert(!q->escape_args);
        }
    }
}
END_TEST

/* Runs every query key it is given against a SQLite repository and checks
 * the answer holds the entity with id. */
typedef struct probe {
    rc_repo *repo;         /* the SQLite repository */
    const rc_strategy *st; /* the strategy the keys are of */
    const char *id;        /* the entity every answer must hold */
    size_t seen;           /* query keys probed */
} probe;

static int probe_query(void *ud, const char *query, const char *const *args,
                       size_t nargs)
{
    probe *p = ud;
    rc_list *l = NULL;
    bool found = false;
    ck_assert_ptr_eq(rc_strategy_find_query(p->st, query),
                     &p->st->queries[p->seen]);
    ck_assert_int_eq(rc_repo_find_by_query(p->repo, query, args, nargs, &l),
                     RC_OK);
    for (size_t i = 0; i < l->len; i++)
        found = found || strcmp(l->ops->get_id(l->items[i]), p->id) == 0;
    ck_assert_msg(found, "%s %s: answer lacks %s", p->st->ns, query, p->id);
    rc_list_free(l);
    p->seen++;
    return RC_OK;
}

/* A full sample belongs to every query of its strategy; each of those keys
 * is a SQLite query that answers with it. SQLite knows no query the
 * strategy does not. */
START_TEST(test_every_query_key_is_a_sqlite_query)
{
    rc_sqlite_db *db;
    ck_assert_int_eq(rc_sqlite_open(":memory:", &db), RC_OK);
    for (size_t i = 0; i < NBUILTINS; i++) {
        rc_strategy st;
        rc_repo *repo;
        rc_list *l = NULL;
        void *e = sample_full(i);
        const char *arg = "x";
        ck_assert_int_eq(rc_strategy_builtin(builtins[i].name, NULL, &st),
                         RC_OK);
        ck_assert_int_eq(rc_sqlite_repo_new(db, st.entity, &repo), RC_OK);
        ck_assert_int_eq(rc_repo_save(repo, e, NULL), RC_OK);
        probe p = {repo, &st, st.entity->get_id(e), 0};
        ck_assert_int_eq(st.query_keys(e, probe_query, &p), RC_OK);
        ck_assert_uint_eq(p.seen, st.nqueries);
        ck_assert_int_eq(rc_repo_find_by_query(repo, "by_colour", &arg, 1, &l),
                         RC_EINVAL);
        ck_assert_ptr_null(l);
        st.entity->free(e);
        rc_repo_free(repo);
    }
    rc_sqlite_free(db);
}
END_TEST

/* One answer, one key: an argument that SQLite would read as the same age
 * ("03", "+3", " 3" for 3) is refused by the key builder and by SQLite alike,
 * and so is an argument longer than any field it could equal. */
START_TEST(test_query_arguments_canonical)
{
    static const char *const bad_ages[] = {"03", "+3", " 3", "3 ", "-0", "3.0", "",
                                           "99999999999"};
    rc_strategy st;
    ck_assert_int_eq(rc_strategy_child(NULL, &st), RC_OK);
    char *path = th_tmpfile("canon.db");
    rc_sqlite_db *db = NULL;
    rc_repo *children = NULL;
    ck_assert_int_eq(rc_sqlite_open(path, &db), RC_OK);
    ck_assert_int_eq(rc_sqlite_repo_new(db, &rc_child_entity, &children), RC_OK);
    for (size_t i = 0; i < sizeof bad_ages / sizeof bad_ages[0]; i++) {
        const char *args[3] = {"Anya 1", bad_ages[i], "male"};
        char *key = (char *)"unchanged";
        rc_list *l = (rc_list *)&l;
        ck_assert_int_eq(rc_strategy_key_query(&st, "", RC_Q_EXACT_MATCH, args, 3, &key),
                         RC_EINVAL);
        ck_assert_ptr_null(key);
        ck_assert_msg(strstr(rc_errmsg(), "argument 2"), "%s", rc_errmsg());
        ck_assert_int_eq(rc_repo_find_by_query(children, RC_Q_EXACT_MATCH, args, 3, &l),
                         RC_EINVAL);
        ck_assert_ptr_null(l);
    }
    /* canonical ages make keys and queries */
    static const char *const good_ages[] = {"3", "0", "-7", "2147483647"};
    for (size_t i = 0; i < sizeof good_ages / sizeof good_ages[0]; i++) {
        const char *args[3] = {"Anya 1", good_ages[i], "male"};
        char *key = NULL;
        rc_list *l = NULL;
        ck_assert_int_eq(rc_strategy_key_query(&st, "", RC_Q_EXACT_MATCH, args, 3, &key),
                         RC_OK);
        free(key);
        ck_assert_int_eq(rc_repo_find_by_query(children, RC_Q_EXACT_MATCH, args, 3, &l),
                         RC_OK);
        rc_list_free(l);
    }
    /* a ':' after the first argument would make the key ambiguous: not
     * cached (the key builder refuses), though SQLite answers it */
    {
        const char *amb[3] = {"A", "1", "2:g"}, *fine[3] = {"A:1", "2", "male"};
        char *k = (char *)"unchanged";
        ck_assert_int_eq(rc_strategy_key_query(&st, "", RC_Q_EXACT_MATCH, amb, 3, &k),
                         RC_EINVAL);
        ck_assert_ptr_null(k);
        ck_assert_int_eq(rc_strategy_key_query(&st, "", RC_Q_EXACT_MATCH, fine, 3, &k),
                         RC_OK);
        ck_assert_str_eq(k, "child:exact:A:1:2:male");
        free(k);
    }
    /* a text argument: at most RC_QUERY_ARG_MAX bytes */
    char *long_name = malloc(RC_QUERY_ARG_MAX + 2);
    memset(long_name, 'a', RC_QUERY_ARG_MAX + 1);
    long_name[RC_QUERY_ARG_MAX + 1] = '\0';
    const char *one[1] = {long_name};
    char *key = NULL;
    rc_list *l = NULL;
    ck_assert_int_eq(rc_strategy_key_query(&st, "", RC_Q_BY_NAME, one, 1, &key), RC_EINVAL);
    ck_assert_int_eq(rc_repo_find_by_query(children, RC_Q_BY_NAME, one, 1, &l), RC_EINVAL);
    long_name[RC_QUERY_ARG_MAX] = '\0'; /* exactly the limit: fine */
    ck_assert_int_eq(rc_strategy_key_query(&st, "", RC_Q_BY_NAME, one, 1, &key), RC_OK);
    free(key);
    ck_assert_int_eq(rc_repo_find_by_query(children, RC_Q_BY_NAME, one, 1, &l), RC_OK);
    rc_list_free(l);
    free(long_name);
    rc_repo_free(children);
    rc_sqlite_free(db);
    free(path);
}
END_TEST

/* The 0.1.0 names still compile, link and work (aliases of the _free and
 * rc_cached_repo_is names). */
START_TEST(test_former_names)
{
    char *path = th_tmpfile("names.db");
    rc_sqlite_db *db = NULL;
    rc_repo *r = NULL;
    ck_assert_int_eq(rc_sqlite_open(path, &db), RC_OK);
    ck_assert_int_eq(rc_sqlite_repo_new(db, &rc_hero_entity, &r), RC_OK);
    ck_assert(!rc_is_cached_repo(r));
    ck_assert(!rc_cached_repo_is(r));
    rc_repo_destroy(r);
    rc_repo_destroy(NULL);
    rc_sqlite_close(db);
    rc_sqlite_close(NULL);
    free(path);
}
END_TEST

static Suite *queries_suite(void)
{
    Suite *s = suite_create("queries");
    const th_case cases[] = {
        {"builtin_names", test_builtin_names},
        {"core_tables_are_usable", test_core_tables_are_usable},
        {"bad_core_tables", test_bad_core_tables},
        {"strategy_queries_are_the_core_queries",
         test_strategy_queries_are_the_core_queries},
        {"every_query_key_is_a_sqlite_query",
         test_every_query_key_is_a_sqlite_query},
        {"query_arguments_canonical", test_query_arguments_canonical},
        {"former_names", test_former_names},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], NULL, NULL, 0);
    return s;
}

int main(void)
{
    return th_run_suite(queries_suite());
}
