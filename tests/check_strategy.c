/* check_strategy.c - entity strategies: the keys of docs/wire-format.md for
 * the three built-ins (with and without a prefix, byte for byte), the rules
 * that keep two queries off one key, glob escaping of patterns, TTLs from
 * settings, the query keys each entity's fields belong to, and strategy
 * checks. */
#include "harness.h"
#include "repocache/repository.h"
#include "repocache/strategy.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The key of query q with args, or "ERR<status>". Caller frees. */
static char *qkey(const rc_strategy *st, const char *prefix, const char *q,
                  const char *const *args, size_t n)
{
    char *k = NULL;
    int rc = rc_strategy_key_query(st, prefix, q, args, n, &k);
    if (rc != RC_OK) {
        k = malloc(16);
        snprintf(k, 16, "ERR%d", rc);
    }
    return k;
}

#define ASSERT_QKEY(st, prefix, q, expect, ...)                                \
    do {                                                                       \
        const char *a_[] = {__VA_ARGS__};                                      \
        char *k_ = qkey(st, prefix, q, a_, sizeof a_ / sizeof a_[0]);          \
        ck_assert_str_eq(k_, expect);                                          \
        free(k_);                                                              \
    } while (0)

START_TEST(test_builtin_keys)
{
    rc_strategy h, c, s;
    char *k;
    ck_assert_int_eq(rc_strategy_hero(NULL, &h), RC_OK);
    ck_assert_int_eq(rc_strategy_child(NULL, &c), RC_OK);
    ck_assert_int_eq(rc_strategy_story(NULL, &s), RC_OK);
    ASSERT_QKEY(&h, NULL, "by_language", "hero:lang:en", "en");
    ASSERT_QKEY(&h, "", "by_name", "hero:name:Captain Wonder", "Captain Wonder");
    ASSERT_QKEY(&c, NULL, "by_name", "child:name:Эмма: O'Brien", "Эмма: O'Brien");
    ASSERT_QKEY(&c, NULL, "exact_match", "child:exact:Ann Lee:7:female",
                "Ann Lee", "7", "female");
    ASSERT_QKEY(&s, NULL, "by_child_id", "story:child:c-1", "c-1");
    ASSERT_QKEY(&s, NULL, "by_child_name", "story:child_name:Ann", "Ann");
    ASSERT_QKEY(&s, NULL, "by_language", "story:lang:ru", "ru");
    ASSERT_QKEY(&s, "app1:", "by_language", "app1:story:lang:ru", "ru");
    ck_assert_int_eq(rc_strategy_key_id(&h, "app1:", "42", &k), RC_OK);
    ck_assert_str_eq(k, "app1:hero:42");
    free(k);
    ck_assert_int_eq(rc_strategy_key_id(&c, NULL, "child_1.x-y", &k), RC_OK);
    ck_assert_str_eq(k, "child:child_1.x-y");
    free(k);
    ck_assert_int_eq(rc_strategy_key_all(&s, NULL, &k), RC_OK);
    ck_assert_str_eq(k, "story:all");
    free(k);
    ck_assert_int_eq(rc_strategy_key_all(&h, "p:", &k), RC_OK);
    ck_assert_str_eq(k, "p:hero:all");
    free(k);
}
END_TEST

START_TEST(test_bad_keys)
{
    rc_strategy h;
    char *k = (char *)"unchanged";
    ck_assert_int_eq(rc_strategy_hero(NULL, &h), RC_OK);
    /* ids that could meet another key are refused */
    ck_assert_int_eq(rc_strategy_key_id(&h, NULL, "all", &k), RC_EINVAL);
    ck_assert_ptr_null(k);
    ck_assert_int_eq(rc_strategy_key_id(&h, NULL, "lang:en", &k), RC_EINVAL);
    ck_assert_int_eq(rc_strategy_key_id(&h, NULL, "~lease", &k), RC_EINVAL);
    ck_assert_int_eq(rc_strategy_key_id(&h, NULL, "", &k), RC_EINVAL);
    ck_assert_int_eq(rc_strategy_key_id(&h, NULL, NULL, &k), RC_EINVAL);
    {
        const char *a[] = {"en", "x"};
        char *e = qkey(&h, NULL, "by_language", a, 2);
        ck_assert_str_eq(e, "ERR-2");
        free(e);
        e = qkey(&h, NULL, "by_colour", a, 1);
        ck_assert_str_eq(e, "ERR-2");
        free(e);
        ck_assert_str_ne(rc_errmsg(), "");
    }
}
END_TEST

/* No two queries of a built-in share a key: distinct segments, none "all",
 * none able to be an id with the same namespace... and a by-id key of any
 * valid id never equals a query or "all" key. */
START_TEST(test_no_shared_keys)
{
    rc_strategy sts[3];
    ck_assert_int_eq(rc_strategy_hero(NULL, &sts[0]), RC_OK);
    ck_assert_int_eq(rc_strategy_child(NULL, &sts[1]), RC_OK);
    ck_assert_int_eq(rc_strategy_story(NULL, &sts[2]), RC_OK);
    for (int i = 0; i < 3; i++) {
        const rc_strategy *st = &sts[i];
        ck_assert_int_eq(rc_strategy_check(st), RC_OK);
        for (size_t a = 0; a < st->nqueries; a++) {
            /* a query key always has ':' after the namespace, an id never */
            const char *args[3] = {"x", "1", "male"};
            char *k = qkey(st, NULL, st->queries[a].name, args,
                           st->queries[a].nargs);
            ck_assert_ptr_nonnull(strchr(k + strlen(st->ns) + 1, ':'));
            free(k);
            for (size_t b = a + 1; b < st->nqueries; b++)
                ck_assert_str_ne(st->queries[a].segment, st->queries[b].segment);
        }
    }
}
END_TEST

/* A query with two free-text parts escapes ':' so ("a:b","c") and
 * ("a","b:c") get different keys. */
START_TEST(test_escape_args)
{
    static const rc_query_def q[] = {
        {.name = "by_pair", .segment = "pair", .nargs = 2, .escape_args = true},
    };
    rc_strategy st;
    ck_assert_int_eq(rc_strategy_hero(NULL, &st), RC_OK);
    st.queries = q;
    st.nqueries = 1;
    ck_assert_int_eq(rc_strategy_check(&st), RC_OK);
    ASSERT_QKEY(&st, NULL, "by_pair", "hero:pair:a\\:b:c", "a:b", "c");
    ASSERT_QKEY(&st, NULL, "by_pair", "hero:pair:a:b\\:c", "a", "b:c");
    ASSERT_QKEY(&st, NULL, "by_pair", "hero:pair:a\\\\:c", "a\\", "c");
}
END_TEST

START_TEST(test_pattern_escapes_glob)
{
    rc_strategy h;
    char *p;
    ck_assert_int_eq(rc_strategy_hero(NULL, &h), RC_OK);
    ck_assert_int_eq(rc_strategy_key_pattern(&h, NULL, &p), RC_OK);
    ck_assert_str_eq(p, "hero:*");
    free(p);
    ck_assert_int_eq(rc_strategy_key_pattern(&h, "a*b?[c]\\:", &p), RC_OK);
    ck_assert_str_eq(p, "a\\*b\\?\\[c\\]\\\\:hero:*");
    free(p);
}
END_TEST

START_TEST(test_ttl_from_settings)
{
    rc_settings s;
    rc_strategy st;
    ck_assert_int_eq(rc_settings_defaults(&s), RC_OK);
    s.cache_hero_ttl = 111;
    s.cache_child_ttl = 222;
    s.cache_story_ttl = 0; /* not set: CACHE_DEFAULT_TTL */
    s.cache_default_ttl = 444;
    s.cache_negative_ttl = 7;
    ck_assert_int_eq(rc_strategy_hero(&s, &st), RC_OK);
    ck_assert_int_eq(st.ttl, 111);
    ck_assert_int_eq(st.negative_ttl, 7);
    ck_assert(st.cache_on_read && st.cache_on_write);
    ck_assert_int_eq(rc_strategy_builtin("child", &s, &st), RC_OK);
    ck_assert_int_eq(st.ttl, 222);
    ck_assert_str_eq(st.ns, "child");
    ck_assert_int_eq(rc_strategy_builtin("story", &s, &st), RC_OK);
    ck_assert_int_eq(st.ttl, 444);
    s.cache_negative_ttl = 0;
    ck_assert_int_eq(rc_strategy_story(&s, &st), RC_OK);
    ck_assert_int_eq(st.negative_ttl, 0);
    ck_assert_int_eq(rc_strategy_builtin("dragon", &s, &st), RC_EINVAL);
    rc_settings_clear(&s);
    /* defaults without settings */
    ck_assert_int_eq(rc_strategy_hero(NULL, &st), RC_OK);
    ck_assert_int_eq(st.ttl, 3600);
    ck_assert_int_eq(rc_strategy_child(NULL, &st), RC_OK);
    ck_assert_int_eq(st.ttl, 1800);
    ck_assert_int_eq(rc_strategy_story(NULL, &st), RC_OK);
    ck_assert_int_eq(st.ttl, 600);
    ck_assert_int_eq(st.negative_ttl, 60);
}
END_TEST

/* The defaults a built-in strategy uses without settings are those
 * rc_settings_defaults fills in: one set of defaults (repocache/settings.h). */
START_TEST(test_default_ttls_agree)
{
    rc_settings s;
    rc_strategy bare, set;
    const char *names[] = {"hero", "child", "story"};
    ck_assert_int_eq(rc_settings_defaults(&s), RC_OK);
    const int ttls[] = {s.cache_hero_ttl, s.cache_child_ttl, s.cache_story_ttl};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        ck_assert_int_eq(rc_strategy_builtin(names[i], NULL, &bare), RC_OK);
        ck_assert_int_eq(rc_strategy_builtin(names[i], &s, &set), RC_OK);
        ck_assert_int_eq(bare.ttl, ttls[i]);
        ck_assert_int_eq(bare.ttl, set.ttl);
        ck_assert_int_eq(bare.negative_ttl, s.cache_negative_ttl);
        ck_assert_int_eq(bare.negative_ttl, set.negative_ttl);
    }
    ck_assert_int_eq(s.cache_default_ttl, RC_DEFAULT_TTL);
    ck_assert_int_eq(s.cache_hero_ttl, RC_DEFAULT_HERO_TTL);
    ck_assert_int_eq(s.cache_child_ttl, RC_DEFAULT_CHILD_TTL);
    ck_assert_int_eq(s.cache_story_ttl, RC_DEFAULT_STORY_TTL);
    ck_assert_int_eq(s.cache_negative_ttl, RC_DEFAULT_NEGATIVE_TTL);
    rc_settings_clear(&s);
}
END_TEST

/* Collects "query|arg|arg..." lines. */
typedef struct emitted {
    char buf[1024];
} emitted;

static int collect(void *ud, const char *q, const char *const *args, size_t n)
{
    emitted *e = ud;
    strcat(e->buf, q);
    for (size_t i = 0; i < n; i++) {
        strcat(e->buf, "|");
        strcat(e->buf, args[i]);
    }
    strcat(e->buf, ";");
    return RC_OK;
}

static int stop_at_first(void *ud, const char *q, const char *const *args,
                         size_t n)
{
    (void)args;
    (void)n;
    (void)q;
    (*(int *)ud)++;
    return RC_EBACKEND;
}

START_TEST(test_query_keys_of_entities)
{
    rc_strategy st;
    emitted e = {""};
    rc_hero *h = rc_hero_new();
    h->name = strdup("Ann");
    h->language = strdup("ru");
    ck_assert_int_eq(rc_strategy_hero(NULL, &st), RC_OK);
    ck_assert_int_eq(st.query_keys(h, collect, &e), RC_OK);
    ck_assert_str_eq(e.buf, "by_language|ru;by_name|Ann;");
    int calls = 0;
    ck_assert_int_eq(st.query_keys(h, stop_at_first, &calls), RC_EBACKEND);
    ck_assert_int_eq(calls, 1);
    rc_hero_free(h);

    rc_child *c = rc_child_new();
    c->name = strdup("Bo Li");
    c->age = 7;
    c->gender = strdup("other");
    e.buf[0] = '\0';
    ck_assert_int_eq(rc_strategy_child(NULL, &st), RC_OK);
    ck_assert_int_eq(st.query_keys(c, collect, &e), RC_OK);
    ck_assert_str_eq(e.buf, "by_name|Bo Li;exact_match|Bo Li|7|other;");
    rc_child_free(c);

    rc_story *s = rc_story_new();
    s->language = strdup("en");
    e.buf[0] = '\0';
    ck_assert_int_eq(rc_strategy_story(NULL, &st), RC_OK);
    ck_assert_int_eq(st.query_keys(s, collect, &e), RC_OK);
    ck_assert_str_eq(e.buf, "by_language|en;"); /* no child: no child keys */
    s->child_id = strdup("c1");
    s->child_name = strdup("Ann");
    e.buf[0] = '\0';
    ck_assert_int_eq(st.query_keys(s, collect, &e), RC_OK);
    ck_assert_str_eq(e.buf, "by_child_id|c1;by_child_name|Ann;by_language|en;");
    rc_story_free(s);
}
END_TEST

START_TEST(test_check_rejects)
{
    rc_strategy base, st;
    ck_assert_int_eq(rc_strategy_hero(NULL, &base), RC_OK);
    static const rc_query_def all_seg[] = {{"q", "all", 1, false, 0}};
    static const rc_query_def tilde[] = {{"q", "~lease", 1, false, 0}};
    static const rc_query_def dup[] = {{"a", "s", 1, false, 0}, {"b", "s", 1, false, 0}};
    static const rc_query_def dupname[] = {{"a", "s", 1, false, 0}, {"a", "t", 1, false, 0}};
    static const rc_query_def noargs[] = {{"a", "s", 0, false, 0}};
    static const rc_query_def colon[] = {{"a", "s:t", 1, false, 0}};
    const rc_query_def *bad[] = {all_seg, tilde, dup, dupname, noargs, colon};
    const size_t nbad[] = {1, 1, 2, 2, 1, 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st = base;
        st.queries = bad[i];
        st.nqueries = nbad[i];
        ck_assert_int_eq(rc_strategy_check(&st), RC_EINVAL);
    }
    st = base;
    st.ttl = 0;
    ck_assert_int_eq(rc_strategy_check(&st), RC_EINVAL);
    st = base;
    st.negative_ttl = -1;
    ck_assert_int_eq(rc_strategy_check(&st), RC_EINVAL);
    st = base;
    st.ns = "he ro";
    ck_assert_int_eq(rc_strategy_check(&st), RC_EINVAL);
    st = base;
    st.codec = NULL;
    ck_assert_int_eq(rc_strategy_check(&st), RC_EINVAL);
    ck_assert_int_eq(rc_strategy_check(NULL), RC_EINVAL);
    ck_assert_ptr_null(rc_strategy_find_query(&base, "nope"));
    ck_assert_str_eq(rc_strategy_find_query(&base, "by_name")->segment, "name");
}
END_TEST

static Suite *strategy_suite(void)
{
    Suite *s = suite_create("strategy");
    const th_case cases[] = {
        {"builtin_keys", test_builtin_keys},
        {"bad_keys", test_bad_keys},
        {"no_shared_keys", test_no_shared_keys},
        {"escape_args", test_escape_args},
        {"pattern_escapes_glob", test_pattern_escapes_glob},
        {"ttl_from_settings", test_ttl_from_settings},
        {"default_ttls_agree", test_default_ttls_agree},
        {"query_keys_of_entities", test_query_keys_of_entities},
        {"check_rejects", test_check_rejects},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], NULL, NULL, 0);
    return s;
}

int main(void)
{
    return th_run_suite(strategy_suite());
}
