/* check_cache_faults.c - real faults against private redis-servers: killed
 * mid-run, paused with SIGSTOP, restarted behind --requirepass, wrong
 * password, unreachable hosts, SIGPIPE. Prints the measured figures
 * (operations run, longest call while paused, time for the breaker to open
 * and to recover) to stderr with the prefix "faults:". */
#include "harness.h"

#include "cache/service.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TIMEOUT 0.2      /* REDIS_SOCKET_TIMEOUT of these tests */
#define MARGIN 0.15      /* allowed above it for one call */
#define BREAKER_OPEN 0.3 /* CIRCUIT_BREAKER_TIMEOUT of these tests */

static rc_cache *service(const char *url, int threshold, const char *log_level)
{
    rc_settings s;
    rc_cache *c;
    char num[16], open_s[16];
    snprintf(num, sizeof num, "%d", threshold);
    snprintf(open_s, sizeof open_s, "%g", BREAKER_OPEN);
    ck_assert_int_eq(rc_settings_defaults(&s), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", url), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_SOCKET_TIMEOUT", "0.2"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "CIRCUIT_BREAKER_THRESHOLD", num), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "CIRCUIT_BREAKER_TIMEOUT", open_s), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "LOG_LEVEL", log_level), RC_OK);
    ck_assert_int_eq(rc_cache_new(&s, &c), RC_OK);
    rc_settings_clear(&s);
    return c;
}

/* One mixed operation (i picks which); returns its duration in seconds.
 * Whatever Redis does, every operation must return a documented status. */
static double op(rc_cache *c, int i)
{
    char key[32], *v = NULL;
    size_t len;
    bool ex;
    long long n;
    snprintf(key, sizeof key, "k%d", i % 50);
    double t0 = th_now();
    int st;
    switch (i % 6) {
    case 0:
        st = rc_cache_set(c, key, "value", 5, 60);
        ck_assert(st == RC_OK || st == RC_EUNAVAILABLE);
        break;
    case 1:
        st = rc_cache_get(c, key, &v, &len);
        ck_assert(st == RC_OK || st == RC_ENOTFOUND);
        free(v);
        break;
    case 2:
        st = rc_cache_del(c, key);
        ck_assert(st == RC_OK || st == RC_EUNAVAILABLE);
        break;
    case 3:
        st = rc_cache_exists(c, key, &ex);
        ck_assert(st == RC_OK || st == RC_EUNAVAILABLE);
        break;
    case 4:
        st = rc_queue_length(c, "queue", &n);
        ck_assert(st == RC_OK || st == RC_EUNAVAILABLE);
        break;
    default:
        st = rc_cache_health_check(c);
        ck_assert(st == RC_OK || st == RC_EUNAVAILABLE);
    }
    return th_now() - t0;
}

/* Runs ops until pred-like condition on the circuit; returns ops run. */
static int run_until_state(rc_cache *c, rc_circuit_state want, int *i, double limit)
{
    double t0 = th_now();
    int n = 0;
    while (rc_cache_circuit(c) != want) {
        op(c, (*i)++);
        n++;
        ck_assert_msg(th_now() - t0 < limit, "state %d not reached", want);
    }
    return n;
}

START_TEST(test_killed_mid_run)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    rc_cache *c = service(r.url, 5, "error");
    int i = 0, ops = 0;
    for (; i < 300; i++)
        op(c, i);
    ops += 300;
    ck_assert_int_eq(rc_cache_circuit(c), RC_CIRCUIT_CLOSED);
    rc_cache_stats st;
    ck_assert_int_eq(rc_cache_get_stats(c, &st), RC_OK);
    ck_assert_uint_eq(st.errors, 0);

    th_redis_kill(&r);
    double killed = th_now();
    int to_open = run_until_state(c, RC_CIRCUIT_OPEN, &i, 5.0);
    double open_after = th_now() - killed;
    ops += to_open;
    ck_assert_int_eq(to_open, 5); /* each op is one Redis call: threshold 5 */
    /* While open: no caller connects nor pays a timeout; only the
     * service's thread probes, at most one connect per 50 ms. */
    uint64_t connects = rc_cache_debug_connects(c);
    double longest = 0, t0 = th_now();
    int while_open = 0;
    while (th_now() - t0 < BREAKER_OPEN * 0.8) {
        double d = op(c, i++);
        longest = d > longest ? d : longest;
        while_open++;
    }
    ops += while_open;
    uint64_t probes = rc_cache_debug_connects(c) - connects;
    ck_assert_uint_le(probes, (uint64_t)(BREAKER_OPEN * 0.8 / 0.05) + 1);
    ck_assert(longest < TIMEOUT); /* no timeout paid */
    ck_assert_int_gt(while_open, 100);
    /* Redis stays down through a failed probe or two, then comes back. */
    double t1 = th_now();
    while (th_now() - t1 < 0.5)
        op(c, i++), ops++;
    ck_assert_uint_gt(rc_cache_debug_connects(c), connects); /* probes happened */
    ck_assert_int_eq(th_redis_restart(&r), 0);
    double restarted = th_now();
    int to_close = 0;
    while (rc_cache_circuit(c) != RC_CIRCUIT_CLOSED || !rc_cache_redis_usable(c)) {
        op(c, i++);
        to_close++;
        ck_assert(th_now() - restarted < TH_WAIT_SECONDS);
    }
    double recovered_after = th_now() - restarted;
    ops += to_close;
    ck_assert_int_eq(rc_cache_set(c, "after", "ok", 2, 60), RC_OK);
    char *v;
    size_t len;
    ck_assert_int_eq(rc_cache_get(c, "after", &v, &len), RC_OK);
    free(v);
    ck_assert_int_eq(rc_cache_get_stats(c, &st), RC_OK);
    ck_assert(st.redis_available);
    ck_assert_uint_gt(st.errors, 0);
    ck_assert_uint_eq(st.fallback_entries, 0);
    ck_assert_uint_eq(st.pending_deletes, 0);
    fprintf(stderr,
            "faults: killed: %d ops; breaker opened %.1f ms after the kill (%d ops); "
            "%d ops while open, longest %.3f ms, %llu background probes; recovered %.1f ms after "
            "the restart (open period %.1f s, doubling per failed probe)\n",
            ops, open_after * 1e3, to_open, while_open, longest * 1e3,
            (unsigned long long)probes, recovered_after * 1e3, BREAKER_OPEN);
    rc_cache_free(c);
    th_redis_stop(&r);
}
END_TEST

START_TEST(test_paused_calls_bounded)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    /* A huge threshold: every call really goes to the paused server. */
    rc_cache *c = service(r.url, 1000000, "error");
    int i = 0;
    for (; i < 50; i++)
        op(c, i);
    uint64_t connects0 = rc_cache_debug_connects(c);
    th_redis_pause(&r);
    double first = op(c, 1); /* on the pooled, already open context */
    double longest = first;
    int ops = 51;
    for (int k = 0; k < 12; k++, ops++) { /* each one reconnects */
        double d = op(c, i++);
        longest = d > longest ? d : longest;
    }
    uint64_t reconnects = rc_cache_debug_connects(c) - connects0;
    ck_assert_uint_ge(reconnects, 10);
    ck_assert_msg(longest <= TIMEOUT + MARGIN, "a call took %.3f s", longest);
    ck_assert(first >= TIMEOUT * 0.9); /* it really waited for the server */
    th_redis_resume(&r);
    ck_assert_int_eq(rc_cache_health_check(c), RC_OK);
    ops++;
    fprintf(stderr,
            "faults: paused: %d ops; longest call %.1f ms (first, on an open context: "
            "%.1f ms; %llu reconnects) against a %.0f ms timeout\n",
            ops, longest * 1e3, first * 1e3, (unsigned long long)reconnects, TIMEOUT * 1e3);
    rc_cache_free(c);
    th_redis_stop(&r);
}
END_TEST

START_TEST(test_paused_breaker_opens)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    rc_cache *c = service(r.url, 3, "error");
    ck_assert_int_eq(rc_cache_health_check(c), RC_OK);
    th_redis_pause(&r);
    double t0 = th_now(), longest = 0;
    int i = 0, ops = 0;
    while (rc_cache_circuit(c) != RC_CIRCUIT_OPEN) {
        double d = op(c, i++);
        longest = d > longest ? d : longest;
        ops++;
        ck_assert(th_now() - t0 < TH_WAIT_SECONDS);
    }
    double open_after = th_now() - t0;
    ck_assert_int_eq(ops, 3);
    ck_assert(open_after <= 3 * (TIMEOUT + MARGIN));
    /* Open: the paused server costs nothing. */
    double t1 = th_now();
    for (int k = 0; k < 500; k++, ops++)
        op(c, i++);
    ck_assert(th_now() - t1 < TIMEOUT); /* 500 calls cost less than one timeout */
    th_redis_resume(&r);
    double resumed = th_now();
    while (rc_cache_health_check(c) != RC_OK) {
        ops++;
        ck_assert(th_now() - resumed < TH_WAIT_SECONDS);
        usleep(1000);
    }
    double recovered_after = th_now() - resumed;
    fprintf(stderr,
            "faults: paused+breaker: %d ops; opened after %.1f ms (3 timeouts, longest "
            "call %.1f ms); recovered %.1f ms after SIGCONT\n",
            ops + 1, open_after * 1e3, longest * 1e3, recovered_after * 1e3);
    rc_cache_free(c);
    th_redis_stop(&r);
}
END_TEST

/* Whether key exists in db (via a separate connection with password). */
static bool raw_exists(const th_redis *r, const char *pw, int db, const char *key)
{
    redisContext *rc = th_redis_connect(r, pw);
    ck_assert_ptr_nonnull(rc);
    redisReply *rep = redisCommand(rc, "SELECT %d", db);
    freeReplyObject(rep);
    rep = redisCommand(rc, "EXISTS %s", key);
    bool ex = rep && rep->integer == 1;
    freeReplyObject(rep);
    redisFree(rc);
    return ex;
}

START_TEST(test_restart_requirepass)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, "--requirepass Rp4ssw0rd"), 0);
    char url[200];
    snprintf(url, sizeof url, "redis://:Rp4ssw0rd@127.0.0.1:%d/2", r.port);
    rc_cache *c = service(url, 2, "error");
    ck_assert_int_eq(rc_cache_set(c, "before", "1", 1, 60), RC_OK);
    ck_assert(raw_exists(&r, "Rp4ssw0rd", 2, "before"));
    ck_assert_int_eq(th_redis_restart(&r), 0); /* empty again: no persistence */
    double restarted = th_now();
    int ops = 1, i = 0;
    bool saw_open = false;
    /* The pooled context is dead: the first call fails and replaces it; the
     * next connects anew, with AUTH and SELECT 2 again. */
    while (rc_cache_set(c, "after", "2", 1, 60) != RC_OK ||
           !raw_exists(&r, "Rp4ssw0rd", 2, "after")) {
        saw_open |= rc_cache_circuit(c) == RC_CIRCUIT_OPEN;
        op(c, i++);
        ops += 2;
        ck_assert(th_now() - restarted < TH_WAIT_SECONDS);
    }
    double recovered_after = th_now() - restarted;
    ck_assert(raw_exists(&r, "Rp4ssw0rd", 2, "after"));
    ck_assert(!raw_exists(&r, "Rp4ssw0rd", 0, "after"));
    /* The timeout is in force on the new context too. */
    th_redis_pause(&r);
    double t0 = th_now();
    char *v;
    size_t len;
    ck_assert_int_eq(rc_cache_get(c, "after", &v, &len), RC_ENOTFOUND);
    double paused_call = th_now() - t0;
    ck_assert(paused_call <= TIMEOUT + MARGIN);
    th_redis_resume(&r);
    ops++;
    /* Kill with the breaker opening, then the half-open probe recovers. */
    th_redis_kill(&r);
    double killed = th_now();
    while (rc_cache_circuit(c) != RC_CIRCUIT_OPEN) {
        op(c, i++), ops++;
        ck_assert(th_now() - killed < TH_WAIT_SECONDS);
    }
    double open_after = th_now() - killed;
    ck_assert_int_eq(th_redis_restart(&r), 0);
    double back = th_now();
    bool saw_half_open = false;
    while (rc_cache_health_check(c) != RC_OK) {
        saw_half_open |= rc_cache_circuit(c) == RC_CIRCUIT_HALF_OPEN;
        ops++;
        usleep(2000);
        ck_assert(th_now() - back < TH_WAIT_SECONDS);
    }
    double probe_recovered = th_now() - back;
    ck_assert_int_eq(rc_cache_circuit(c), RC_CIRCUIT_CLOSED);
    ck_assert_int_eq(rc_cache_set(c, "third", "3", 1, 60), RC_OK);
    ck_assert(raw_exists(&r, "Rp4ssw0rd", 2, "third"));
    fprintf(stderr,
            "faults: requirepass restart: %d ops; reconnected with AUTH+SELECT %.1f ms "
            "after the restart%s; call on the paused new context %.1f ms; breaker opened "
            "%.1f ms after the kill, closed by the probe %.1f ms after the restart%s\n",
            ops, recovered_after * 1e3, saw_open ? " (breaker had opened)" : "",
            paused_call * 1e3, open_after * 1e3, probe_recovered * 1e3,
            saw_half_open ? " (half-open seen)" : "");
    rc_cache_free(c);
    th_redis_stop(&r);
}
END_TEST

#define SECRET "Sup3rS3cretPassw0rdXYZ"

typedef struct leak_case {
    const char *url;     /* with SECRET in it */
    int expect_health;   /* status of the health check */
    char errs[4096];     /* every rc_errmsg() seen */
    char json[2048];     /* the stats JSON */
    double longest;      /* longest call */
    int ops;
} leak_case;

static void note_err(leak_case *lc)
{
    size_t n = strlen(lc->errs);
    snprintf(lc->errs + n, sizeof lc->errs - n, "%s\n", rc_errmsg());
}

static void run_leak_case(void *arg)
{
    leak_case *lc = arg;
    rc_cache *c = service(lc->url, 3, "debug"); /* log everything */
    double t0 = th_now();
    int st = rc_cache_health_check(c);
    lc->longest = th_now() - t0;
    ck_assert_int_eq(st, lc->expect_health);
    note_err(lc);
    /* Degradation: operations still answer. */
    char *v;
    size_t len;
    for (int i = 0; i < 20; i++) {
        double d = op(c, i);
        lc->longest = d > lc->longest ? d : lc->longest;
        note_err(lc);
        lc->ops++;
    }
    ck_assert_int_eq(rc_cache_set(c, "k", "v", 1, 60), RC_OK); /* fallback */
    ck_assert_int_eq(rc_cache_get(c, "k", &v, &len), RC_OK);
    free(v);
    note_err(lc);
    ck_assert_int_eq(rc_cache_del(c, "k"), RC_EUNAVAILABLE);
    note_err(lc);
    ck_assert_int_eq(rc_queue_push(c, "q", "x", 1), RC_EUNAVAILABLE);
    note_err(lc);
    lc->ops += 5;
    char *json;
    ck_assert_int_eq(rc_cache_stats_json(c, &json), RC_OK);
    snprintf(lc->json, sizeof lc->json, "%s", json);
    free(json);
    rc_cache_stats st2;
    ck_assert_int_eq(rc_cache_get_stats(c, &st2), RC_OK);
    ck_assert(!st2.redis_available);
    ck_assert_int_eq(st2.keys, -1);
    ck_assert_uint_gt(st2.errors, 0);
    rc_cache_free(c);
}

static void check_no_leak(leak_case *lc, const char *logs, const char *what)
{
    ck_assert_msg(strstr(logs, SECRET) == NULL, "%s: password in the log", what);
    ck_assert_msg(strstr(lc->errs, SECRET) == NULL, "%s: password in rc_errmsg", what);
    ck_assert_msg(strstr(lc->json, SECRET) == NULL, "%s: password in the stats", what);
    ck_assert_msg(strstr(logs, "repocache: warning:") != NULL, "%s: nothing logged: %s",
                  what, logs);
    ck_assert_ptr_nonnull(strstr(lc->json, "\"redis_available\":false"));
}

START_TEST(test_wrong_password)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, "--requirepass rightpw"), 0);
    leak_case lc;
    memset(&lc, 0, sizeof lc);
    char url[200];
    snprintf(url, sizeof url, "redis://:" SECRET "@127.0.0.1:%d/0", r.port);
    lc.url = url;
    lc.expect_health = RC_EAUTH;
    char *logs = th_capture_stderr(run_leak_case, &lc);
    check_no_leak(&lc, logs, "wrong password");
    ck_assert_ptr_nonnull(strstr(lc.errs, "AUTH"));
    ck_assert_ptr_nonnull(strstr(logs, "AUTH"));
    free(logs);
    /* An ACL user with the wrong password: AUTH user pass, refused. */
    redisContext *raw = th_redis_connect(&r, "rightpw");
    redisReply *rep = redisCommand(raw, "ACL SETUSER alice on >alicepw ~* &* +@all");
    ck_assert_int_eq(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    redisFree(raw);
    memset(&lc, 0, sizeof lc);
    snprintf(url, sizeof url, "redis://alice:" SECRET "@127.0.0.1:%d/0", r.port);
    lc.url = url;
    lc.expect_health = RC_EAUTH;
    logs = th_capture_stderr(run_leak_case, &lc);
    check_no_leak(&lc, logs, "wrong user password");
    free(logs);
    /* The right user password works (AUTH alice alicepw). */
    snprintf(url, sizeof url, "redis://alice:alicepw@127.0.0.1:%d/0", r.port);
    rc_cache *c = service(url, 3, "error");
    ck_assert_int_eq(rc_cache_health_check(c), RC_OK);
    rc_cache_free(c);
    fprintf(stderr, "faults: wrong password: %d ops, longest call %.1f ms\n", lc.ops * 2,
            lc.longest * 1e3);
    th_redis_stop(&r);
}
END_TEST

typedef struct level_case {
    th_redis *r;
    const char *level;
} level_case;

/* An outage and a recovery, logged at lc->level. */
static void outage_and_recovery(void *arg)
{
    level_case *lc = arg;
    rc_cache *c = service(lc->r->url, 2, lc->level);
    ck_assert_int_eq(rc_cache_health_check(c), RC_OK);
    th_redis_kill(lc->r);
    for (int i = 0; i < 5; i++)
        op(c, i);
    ck_assert_int_eq(th_redis_restart(lc->r), 0);
    double t0 = th_now();
    while (rc_cache_health_check(c) != RC_OK) {
        usleep(2000);
        ck_assert(th_now() - t0 < TH_WAIT_SECONDS);
    }
    rc_cache_free(c);
}

START_TEST(test_log_levels)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    level_case lc = {&r, "error"};
    char *logs = th_capture_stderr(outage_and_recovery, &lc);
    ck_assert_str_eq(logs, ""); /* nothing at "error": degradation is not one */
    free(logs);
    lc.level = "warning";
    logs = th_capture_stderr(outage_and_recovery, &lc);
    ck_assert_ptr_nonnull(strstr(logs, "repocache: warning: "));
    ck_assert_ptr_nonnull(strstr(logs, "circuit breaker open"));
    ck_assert_ptr_null(strstr(logs, "repocache: info: "));
    free(logs);
    lc.level = "info";
    logs = th_capture_stderr(outage_and_recovery, &lc);
    ck_assert_ptr_nonnull(strstr(logs, "repocache: info: "));
    ck_assert_ptr_nonnull(strstr(logs, "back in use"));
    ck_assert_ptr_null(strstr(logs, "repocache: debug: "));
    /* One line per transition, not one per call. */
    int lines = 0;
    for (const char *p = logs; (p = strchr(p, '\n')); p++)
        lines++;
    ck_assert_int_le(lines, 6);
    free(logs);
    th_redis_stop(&r);
}
END_TEST

START_TEST(test_password_missing)
{
    /* The server wants AUTH and we have no password: NOAUTH replies are
     * treated as Redis being unavailable, not as answers. */
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, "--requirepass needed"), 0);
    rc_cache *c = service(r.url, 3, "error");
    char *v;
    size_t len;
    ck_assert_int_eq(rc_cache_health_check(c), RC_EAUTH);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "NOAUTH"));
    ck_assert_int_eq(rc_cache_get(c, "k", &v, &len), RC_ENOTFOUND);
    ck_assert_int_eq(rc_cache_set(c, "k", "v", 1, 60), RC_OK); /* the fallback */
    ck_assert_int_eq(rc_cache_get(c, "k", &v, &len), RC_OK);
    free(v);
    ck_assert_int_eq(rc_cache_circuit(c), RC_CIRCUIT_OPEN);
    rc_cache_free(c);
    th_redis_stop(&r);
}
END_TEST

START_TEST(test_unreachable_hosts)
{
    /* A closed port (refused at once), and a port nobody answers (bounded
     * by the connect timeout); both on loopback. */
    th_redis r;
    th_silent silent;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    ck_assert_int_eq(th_silent_open(&silent), 0);
    th_redis_stop(&r);
    const int ports[] = {r.port, silent.port};
    const char *auth[] = {":" SECRET "@127.0.0.1", "u:" SECRET "@127.0.0.2"};
    int ops = 0;
    double longest = 0;
    for (int k = 0; k < 2; k++) {
        char url[200];
        leak_case lc;
        memset(&lc, 0, sizeof lc);
        snprintf(url, sizeof url, "redis://%s:%d/0", auth[k], ports[k]);
        lc.url = url;
        lc.expect_health = RC_EUNAVAILABLE;
        char *logs = th_capture_stderr(run_leak_case, &lc);
        check_no_leak(&lc, logs, url);
        ck_assert_msg(lc.longest <= TIMEOUT + MARGIN, "%s: a call took %.3f s", url,
                      lc.longest);
        ck_assert_ptr_nonnull(strstr(lc.errs, k ? "127.0.0.2" : "127.0.0.1"));
        free(logs);
        ops += lc.ops + 1;
        longest = lc.longest > longest ? lc.longest : longest;
    }
    th_silent_close(&silent);
    fprintf(stderr, "faults: unreachable: %d ops, longest call %.1f ms\n", ops, longest * 1e3);
}
END_TEST

START_TEST(test_no_sigpipe)
{
    /* SIGPIPE keeps its default action (terminate) throughout. */
    ck_assert_ptr_eq(signal(SIGPIPE, SIG_DFL), SIG_DFL);
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    rc_cache *c = service(r.url, 1000, "error");
    ck_assert_int_eq(rc_cache_health_check(c), RC_OK); /* leaves an open context */
    redisContext *raw = th_redis_connect(&r, NULL);
    ck_assert_ptr_nonnull(raw);
    th_redis_kill(&r);
    size_t big = 16u << 20;
    char *val = malloc(big);
    memset(val, 'x', big);
    /* Control: unguarded writes to the dead server raise SIGPIPE (the first
     * draws a reset, the next reports ECONNRESET, later ones EPIPE). */
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 200; i++) {
            ssize_t w = write(raw->fd, val, 1 << 20);
            (void)w;
            usleep(5000);
        }
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE,
                  "the control write did not raise SIGPIPE");
    redisFree(raw);
    /* Ours survives with SIGPIPE unblocked and at its default action (it
     * would terminate this process): the library's sends to the dead server
     * fail with EPIPE/ECONNRESET instead (retried a few times: it depends on
     * when the reset arrives during the write). */
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    ck_assert(!sigismember(&mask, SIGPIPE));
    uint64_t resets0 = rc_wire_debug_resets();
    int attempts = 0;
    while (rc_wire_debug_resets() == resets0 && attempts < 10) {
        if (attempts++) {
            ck_assert_int_eq(th_redis_restart(&r), 0);
            ck_assert_int_eq(rc_cache_health_check(c), RC_OK);
            th_redis_kill(&r);
        }
        /* degraded: RC_EUNAVAILABLE, the value being over the in-process
         * store's share of CACHE_L1_MAX_BYTES */
        ck_assert_int_eq(rc_cache_set(c, "k", val, big, 60), RC_EUNAVAILABLE);
        ck_assert_int_eq(rc_cache_set(c, "k", val, big, 60), RC_EUNAVAILABLE);
    }
    ck_assert_uint_gt(rc_wire_debug_resets(), resets0);
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    ck_assert(!sigismember(&mask, SIGPIPE)); /* the mask untouched */
    ck_assert_ptr_eq(signal(SIGPIPE, SIG_DFL), SIG_DFL); /* disposition untouched */
    fprintf(stderr, "faults: sigpipe: %llu send(s) refused by the dead peer in %d attempt(s), "
            "no SIGPIPE\n", (unsigned long long)(rc_wire_debug_resets() - resets0), attempts);
    free(val);
    rc_cache_free(c);
}
END_TEST

/* Redis out of memory (maxmemory 1, noeviction): a lookup that would take
 * a lease is refused with -OOM; the service counts and logs it once, and
 * takes no lease (so tries no fill) for the next RC_FILL_PAUSE seconds, so
 * reads go on without an error each. */
typedef struct oom_case {
    th_redis *r;
    uint64_t errors_after_first, errors_after_more;
    rc_lease_found first, later;
} oom_case;

static void oom_reads(void *arg)
{
    oom_case *k = arg;
    rc_cache *c = service(k->r->url, 5, "warning");
    rc_lease_hit hit;
    bool leased;
    k->first = rc_lease_lookup(c, "k", "~lease:k", NULL, "token1", 5000, &hit, &leased);
    rc_lease_hit_free(&hit);
    rc_cache_stats st;
    rc_cache_get_stats(c, &st);
    k->errors_after_first = st.errors;
    for (int i = 0; i < 50; i++) {
        k->later = rc_lease_lookup(c, "k", "~lease:k", NULL, "token2", 5000, &hit, &leased);
        rc_lease_hit_free(&hit);
        ck_assert(!leased);
    }
    rc_cache_get_stats(c, &st);
    k->errors_after_more = st.errors;
    rc_cache_free(c);
}

START_TEST(test_out_of_memory_seen_and_fills_paused)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, "--maxmemory 1 --maxmemory-policy noeviction"), 0);
    oom_case k = {.r = &r};
    char *logs = th_capture_stderr(oom_reads, &k);
    ck_assert_int_eq(k.first, RC_LEASE_FAILED);    /* the script's SET got -OOM */
    ck_assert_uint_ge(k.errors_after_first, 1);    /* counted by the service */
    ck_assert_int_eq(k.later, RC_LEASE_MISS);      /* then: no lease, no error */
    ck_assert_uint_eq(k.errors_after_more, k.errors_after_first);
    ck_assert_ptr_nonnull(strstr(logs, "OOM"));
    ck_assert_ptr_nonnull(strstr(logs, "fills paused"));
    int lines = 0;
    for (const char *p = logs; (p = strchr(p, '\n')); p++)
        lines++;
    ck_assert_int_eq(lines, 1); /* logged once, not once per read */
    free(logs);
    th_redis_stop(&r);
}
END_TEST

/* Pooled connections killed by the server (CLIENT KILL) are replaced at the
 * next call: routine, so nothing is logged above debug, and no line claims a
 * degradation. */
typedef struct kill_case {
    th_redis *r;
    int ok;
} kill_case;

static void kill_pooled(void *arg)
{
    kill_case *k = arg;
    rc_cache *c = service(k->r->url, 5, "info");
    redisContext *raw = th_redis_connect(k->r, NULL);
    for (int i = 0; i < 30; i++) {
        k->ok += rc_cache_health_check(c) == RC_OK;
        redisReply *rep = redisCommand(raw, "CLIENT KILL TYPE normal SKIPME yes");
        freeReplyObject(rep);
    }
    k->ok += rc_cache_health_check(c) == RC_OK;
    redisFree(raw);
    rc_cache_free(c);
}

START_TEST(test_killed_connections_not_degradation)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    kill_case k = {.r = &r};
    char *logs = th_capture_stderr(kill_pooled, &k);
    ck_assert_int_ge(k.ok, 16); /* every other call at least */
    ck_assert_ptr_null(strstr(logs, "degrading"));
    ck_assert_str_eq(logs, "");
    free(logs);
    th_redis_stop(&r);
}
END_TEST

static Suite *faults_suite(void)
{
    Suite *s = suite_create("cache_faults");
    const th_case cases[] = {
        {"killed", test_killed_mid_run},
        {"out_of_memory", test_out_of_memory_seen_and_fills_paused},
        {"killed_connections", test_killed_connections_not_degradation},
        {"paused", test_paused_calls_bounded},
        {"paused_breaker", test_paused_breaker_opens},
        {"restart_requirepass", test_restart_requirepass},
        {"wrong_password", test_wrong_password},
        {"password_missing", test_password_missing},
        {"log_levels", test_log_levels},
        {"unreachable", test_unreachable_hosts},
        {"sigpipe", test_no_sigpipe},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], NULL, NULL, 60);
    return s;
}

int main(void)
{
    return th_run_suite(faults_suite());
}
