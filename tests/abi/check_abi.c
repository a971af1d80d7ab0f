/*
 * check_abi.c - the shared library's interface as a host program sees it.
 *
 * This program defines functions named like the library's internal ones
 * (rc_strdup, rc_log), each failing or counting its calls.
 * Were they exported by the library, the dynamic linker would bind the
 * library's own calls to these (symbol interposition): rc_strlist_push would
 * return RC_ENOMEM. Built with hidden visibility, the library keeps its own.
 */
#include "repocache/entity.h"
#include "repocache/settings.h"
#include "repocache/status.h"
#include "repocache/version.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* The host's own functions, same names as internal ones of the library. */
static int host_calls;

char *rc_strdup(const char *s);
char *rc_strdup(const char *s)
{
    (void)s;
    host_calls++;
    return NULL; /* the library would see an allocation failure */
}

void rc_log(int threshold, int level, const char *fmt, ...);
void rc_log(int threshold, int level, const char *fmt, ...)
{
    (void)threshold, (void)level, (void)fmt;
    host_calls++;
}

START_TEST(test_host_rc_strdup_is_not_the_library_s)
{
    rc_strlist l = {0};
    host_calls = 0;
    ck_assert_int_eq(rc_strlist_push(&l, "brave"), RC_OK);
    ck_assert_uint_eq(l.len, 1);
    ck_assert_str_eq(l.items[0], "brave");
    rc_strlist_clear(&l);

    rc_hero *h = rc_hero_new();
    ck_assert_ptr_nonnull(h);
    h->name = strdup("Ann");
    rc_hero *copy = rc_hero_clone(h);
    ck_assert_ptr_nonnull(copy);
    ck_assert_str_eq(copy->name, "Ann");
    rc_hero_free(copy);
    rc_hero_free(h);

    /* settings load logs nothing here but copies strings with rc_strdup */
    rc_settings s;
    ck_assert_int_eq(rc_settings_defaults(&s), RC_OK);
    ck_assert_str_eq(s.database_path, "tale.db");
    rc_settings_clear(&s);
    ck_assert_int_eq(host_calls, 0);
}
END_TEST

START_TEST(test_runtime_version_is_the_headers)
{
    ck_assert_str_eq(rc_version(), REPOCACHE_VERSION);
    ck_assert_int_eq(rc_version_number(), REPOCACHE_VERSION_NUMBER);
    ck_assert_int_eq(REPOCACHE_VERSION_NUMBER,
                     REPOCACHE_VERSION_MAJOR * 10000 +
                         REPOCACHE_VERSION_MINOR * 100 + REPOCACHE_VERSION_PATCH);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("abi");
    TCase *tc = tcase_create("abi");
    tcase_add_test(tc, test_host_rc_strdup_is_not_the_library_s);
    tcase_add_test(tc, test_runtime_version_is_the_headers);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
