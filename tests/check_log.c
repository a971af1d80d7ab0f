/* check_log.c - the log hook: a handler gets level, event name and message
 * for the breaker's transitions, the recovery and the replay of remembered
 * deletes against a real server that is killed and restarted; LOG_LEVEL
 * filters before the handler; a password in REDIS_URL never reaches it; URL
 * user information is masked; the default handler's line format. */
#include "harness.h"
#include "service.h"

#include "core/log.h"
#include "repocache/log.h"

#include <check.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET "Log5ecretPassw0rd"

/* Every line a handler received: "level event message\n" appended. */
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static char seen[65536];

static void collect(void *ud, int level, const char *event, const char *message)
{
    ck_assert_ptr_eq(ud, seen);
    pthread_mutex_lock(&seen_mu);
    size_t n = strlen(seen);
    snprintf(seen + n, sizeof seen - n, "%s %s %s\n", rc_log_level_name(level), event,
             message);
    pthread_mutex_unlock(&seen_mu);
}

static void setup(void)
{
    seen[0] = '\0';
    rc_log_set_handler(collect, seen);
}

static void teardown(void) { rc_log_set_handler(NULL, NULL); }

/* A service on url with LOG_LEVEL level, a breaker of threshold 2 and a
 * 0.2 s open period. */
static rc_cache *service(const char *url, const char *level)
{
    rc_settings s;
    rc_cache *c = NULL;
    ck_assert_int_eq(rc_settings_load(&s, NULL), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", url), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "LOG_LEVEL", level), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "CIRCUIT_BREAKER_THRESHOLD", "2"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "CIRCUIT_BREAKER_TIMEOUT", "0.2"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_SOCKET_TIMEOUT", "0.5"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "CACHE_L1_ENABLED", "false"), RC_OK);
    ck_assert_int_eq(rc_cache_new(&s, &c), RC_OK);
    rc_settings_clear(&s);
    return c;
}

/* Redis killed, a delete remembered, Redis back: every transition logged. */
static void outage_and_recovery(th_redis *r, const char *url, const char *level)
{
    rc_cache *c = service(url, level);
    char *v = NULL;
    ck_assert_int_eq(rc_cache_set(c, "log:k", "v", 1, 60), RC_OK);
    th_redis_kill(r);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(rc_cache_get(c, "log:k", &v, NULL), RC_ENOTFOUND);
    ck_assert_int_eq(rc_cache_del(c, "log:k"), RC_EUNAVAILABLE);
    ck_assert_int_eq(th_redis_restart(r), 0);
    double t0 = th_now();
    while (rc_cache_health_check(c) != RC_OK) {
        usleep(20000);
        ck_assert(th_now() - t0 < TH_WAIT_SECONDS);
    }
    ck_assert_int_eq(rc_cache_get(c, "log:k", &v, NULL), RC_ENOTFOUND);
    rc_cache_free(c);
}

START_TEST(test_events_of_an_outage)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    outage_and_recovery(&r, r.url, "debug");
    ck_assert_msg(strstr(seen, "debug redis_up redis at 127.0.0.1:"), "%s", seen);
    ck_assert_msg(strstr(seen, "debug redis_call_failed "), "%s", seen);
    ck_assert_msg(strstr(seen, "warning redis_breaker_open redis at "), "%s", seen);
    ck_assert_msg(strstr(seen, "debug redis_breaker_half_open "), "%s", seen);
    ck_assert_msg(strstr(seen, "debug redis_breaker_closed "), "%s", seen);
    ck_assert_msg(strstr(seen, "info redis_recovered "), "%s", seen);
    ck_assert_msg(strstr(seen, "info replay_done redis at "), "%s", seen);
    ck_assert_msg(strstr(seen, "replayed 1 remembered deletes"), "%s", seen);
    /* the breaker opened once: one line for it, not one per call */
    const char *p = strstr(seen, "redis_breaker_open");
    ck_assert_ptr_null(strstr(p + 1, "redis_breaker_open"));
    th_redis_stop(&r);
}
END_TEST

START_TEST(test_level_filters_before_the_handler)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    outage_and_recovery(&r, r.url, "warning");
    ck_assert_msg(strstr(seen, "warning redis_breaker_open "), "%s", seen);
    ck_assert_msg(!strstr(seen, "debug ") && !strstr(seen, "info "), "%s", seen);
    seen[0] = '\0';
    outage_and_recovery(&r, r.url, "error");
    ck_assert_str_eq(seen, "");
    th_redis_stop(&r);
}
END_TEST

START_TEST(test_password_never_reaches_the_handler)
{
    th_redis r;
    char url[256];
    ck_assert_int_eq(th_redis_start(&r, "--requirepass " SECRET), 0);
    /* the right password, then an outage */
    snprintf(url, sizeof url, "redis://default:" SECRET "@127.0.0.1:%d/0", r.port);
    outage_and_recovery(&r, url, "debug");
    /* a wrong one: AUTH refused, the breaker opens */
    snprintf(url, sizeof url, "redis://default:wrong" SECRET "@127.0.0.1:%d/0", r.port);
    rc_cache *c = service(url, "debug");
    char *v = NULL;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(rc_cache_get(c, "k", &v, NULL), RC_ENOTFOUND);
    rc_cache_free(c);
    ck_assert_msg(strstr(seen, "redis_breaker_open"), "%s", seen);
    ck_assert_msg(!strstr(seen, SECRET), "%s", seen);
    th_redis_stop(&r);
}
END_TEST

START_TEST(test_userinfo_is_masked)
{
    char s[256];
    const char *cases[][2] = {
        {"at redis://u:pw@h:1/0 now", "at redis://u:***@h:1/0 now"},
        {"redis://:pw@h", "redis://:***@h"},
        {"redis://pw@h and unix://x:y@/p", "redis://***@h and unix://x:***@/p"},
        {"redis://h:6379/0 has none", "redis://h:6379/0 has none"},
        {"no url: a@b", "no url: a@b"},
        {"redis://u:p@w@h", "redis://u:***@h"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(s, sizeof s, "%s", cases[i][0]);
        rc_log_mask_userinfo(s, sizeof s);
        ck_assert_str_eq(s, cases[i][1]);
    }
    /* through rc_log, to the handler */
    rc_log(RC_LOG_INFO, RC_LOG_WARNING, "test_event", "url %s", "redis://a:" SECRET "@h");
    ck_assert_str_eq(seen, "warning test_event url redis://a:***@h\n");
    rc_log(RC_LOG_WARNING, RC_LOG_INFO, "test_event", "filtered");
    ck_assert_str_eq(seen, "warning test_event url redis://a:***@h\n");
}
END_TEST

static void log_one(void *ud)
{
    (void)ud;
    rc_log(RC_LOG_DEBUG, RC_LOG_WARNING, "redis_breaker_open", "redis at h:1: open");
}

START_TEST(test_default_handler_line)
{
    rc_log_set_handler(NULL, NULL);
    char *text = th_capture_stderr(log_one, NULL);
    regex_t re;
    ck_assert_int_eq(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                             "repocache: warning: redis_breaker_open: redis at h:1: open\n$",
                             REG_EXTENDED),
                     0);
    ck_assert_msg(regexec(&re, text, 0, NULL, 0) == 0, "%s", text);
    ck_assert_str_eq(seen, ""); /* the collector was replaced */
    regfree(&re);
    free(text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    const th_case cases[] = {
        {"events_of_an_outage", test_events_of_an_outage},
        {"level_filters_before_the_handler", test_level_filters_before_the_handler},
        {"password_never_reaches_the_handler", test_password_never_reaches_the_handler},
        {"userinfo_is_masked", test_userinfo_is_masked},
        {"default_handler_line", test_default_handler_line},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], setup, teardown, 0);
    return th_run_suite(s);
}
