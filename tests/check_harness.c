/* check_harness.c - the test harness itself: a private redis-server can be
 * started, paused, resumed, killed and restarted on the same port. */
#include "harness.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

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

/* PING after AUTH with password (NULL: none) answers PONG. */
static bool pongs(const th_redis *r, const char *password)
{
    redisContext *c = th_redis_connect(r, password);
    redisReply *rep;
    bool ok;
    if (!c)
        return false;
    rep = redisCommand(c, "PING");
    ok = rep && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0;
    freeReplyObject(rep);
    redisFree(c);
    return ok;
}

/* A server restarted over a saved data set answers -LOADING until it has
 * read it all: th_redis_restart returns only once it serves commands.
 * LOAD_SLOWLY makes loading 2000 keys last about a second (microseconds per
 * key) and has the server answer clients meanwhile (every 1 KiB read). */
#define LOAD_SLOWLY                                                            \
    "--key-load-delay 500 --loading-process-events-interval-bytes 1024"
static void restart_waits_for_loading(const char *extra, const char *password)
{
    th_redis r;
    redisContext *c;
    redisReply *rep;
    ck_assert_int_eq(th_redis_start(&r, extra), 0);
    c = th_redis_connect(&r, password);
    ck_assert_ptr_nonnull(c);
    rep = redisCommand(c, "EVAL %s 0",
                       "for i = 1, 2000 do redis.call('SET', 'k' .. i, i) end");
    ck_assert_ptr_nonnull(rep);
    freeReplyObject(rep);
    rep = redisCommand(c, "SAVE");
    ck_assert(rep && rep->type == REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    redisFree(c);
    ck_assert_int_eq(th_redis_restart(&r), 0);
    ck_assert(pongs(&r, password)); /* not -LOADING */
    c = th_redis_connect(&r, password);
    ck_assert_ptr_nonnull(c);
    rep = redisCommand(c, "DBSIZE");
    ck_assert(rep && rep->type == REDIS_REPLY_INTEGER);
    ck_assert_int_eq(rep->integer, 2000);
    freeReplyObject(rep);
    redisFree(c);
    th_redis_stop(&r);
}

START_TEST(test_restart_waits_for_loading)
{
    restart_waits_for_loading(LOAD_SLOWLY, NULL);
}
END_TEST

START_TEST(test_restart_waits_for_loading_password)
{
    restart_waits_for_loading("--requirepass s3cret " LOAD_SLOWLY, "s3cret");
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
    tcase_add_test(tc, test_restart_waits_for_loading);
    tcase_add_test(tc, test_restart_waits_for_loading_password);
    suite_add_tcase(s, tc);
    return th_run_suite(s);
}
