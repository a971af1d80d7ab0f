/* check_harness.c - the test harness itself: a private redis-server can be
 * started, paused, resumed, killed and restarted on the same port. */
#include "harness.h"

#include <check.h>
#include <stdlib.h>

static bool answers(const th_redis *r)
{
    redisContext *c = th_redis_connect(r, NULL);
    redisReply *rep;
    bool ok;
    if (!c)
        return false;
    rep = redisCommand(c, "PING");
    ok = rep && rep->type == REDIS_REPLY_STATUS;
    freeReplyObject(rep);
    redisFree(c);
    return ok;
}

START_TEST(test_lifecycle)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    ck_assert(answers(&r));
    th_redis_pause(&r);
    ck_assert(!answers(&r)); /* times out after 2 s */
    th_redis_resume(&r);
    ck_assert(answers(&r));
    th_redis_kill(&r);
    ck_assert(!answers(&r));
    ck_assert_int_eq(th_redis_restart(&r), 0);
    ck_assert(answers(&r));
    th_redis_stop(&r);
    ck_assert(!answers(&r));
}
END_TEST

START_TEST(test_shared)
{
    th_redis r;
    ck_assert_int_eq(th_redis_shared(&r), 0);
    ck_assert(answers(&r));
    ck_assert_int_eq(th_redis_flushall(&r, NULL), 0);
    th_redis_stop(&r); /* no-op for the suite-wide server */
}
END_TEST

START_TEST(test_password)
{
    th_redis r;
    redisContext *c;
    ck_assert_int_eq(th_redis_start(&r, "--requirepass s3cret"), 0);
    ck_assert_ptr_null(th_redis_connect(&r, "wrong"));
    c = th_redis_connect(&r, "s3cret");
    ck_assert_ptr_nonnull(c);
    redisFree(c);
    th_redis_stop(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("harness");
    TCase *tc = tcase_create("redis");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_lifecycle);
    tcase_add_test(tc, test_shared);
    tcase_add_test(tc, test_password);
    suite_add_tcase(s, tc);
    return th_run_suite(s);
}
