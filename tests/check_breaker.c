/* check_breaker.c - the circuit breaker's state machine on a controllable
 * clock: every transition, exactly one probe in half-open (also under
 * threads), exponential open periods with a cap; and the same through the
 * service against a real server: no connect while open, one probe, recovery. */
#include "harness.h"

#include "cache/breaker.h"
#include "cache/service.h"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static double fake_now;
static double fake_clock(void *ud)
{
    (void)ud;
    return fake_now;
}

static rc_breaker b;

static void setup(void)
{
    fake_now = 100.0;
    ck_assert_int_eq(rc_breaker_init(&b, 3, 10.0), RC_OK);
    rc_breaker_set_clock(&b, fake_clock, NULL);
}

static void teardown(void) { rc_breaker_destroy(&b); }

static void fail_once(void)
{
    rc_breaker_ticket t = rc_breaker_acquire(&b);
    ck_assert_int_eq(t, RC_BREAKER_PASS);
    rc_breaker_report(&b, t, false);
}

/* Opens the breaker from closed. */
static void open_it(void)
{
    fail_once();
    fail_once();
    ck_assert_int_eq(rc_breaker_state(&b), RC_CIRCUIT_CLOSED);
    rc_breaker_ticket t = rc_breaker_acquire(&b);
    ck_assert(rc_breaker_report(&b, t, false)); /* this one opened it */
    ck_assert_int_eq(rc_breaker_state(&b), RC_CIRCUIT_OPEN);
}

START_TEST(test_closed_to_open_after_threshold)
{
    ck_assert_int_eq(rc_breaker_state(&b), RC_CIRCUIT_CLOSED);
    /* A success resets the count of consecutive failures. */
    fail_once();
    fail_once();
    rc_breaker_ticket t = rc_breaker_acquire(&b);
    ck_assert(!rc_breaker_report(&b, t, true));
    fail_once();
    fail_once();
    ck_assert_int_eq(rc_breaker_state(&b), RC_CIRCUIT_CLOSED);
    t = rc_breaker_acquire(&b);
    ck_assert(rc_breaker_report(&b, t, false));
    ck_assert_int_eq(rc_breaker_state(&b), RC_CIRCUIT_OPEN);
    ck_assert_uint_eq(b.opens, 1);
    ck_assert_str_eq(rc_circuit_state_name(RC_CIRCUIT_OPEN), "open");
    ck_assert_str_eq(rc_circuit_state_name(RC_CIRCUIT_CLOSED), "closed");
    ck_assert_str_eq(rc_circuit_state_name(RC_CIRCUIT_HALF_OPEN), "half_open");
}
END_TEST

START_TEST(test_open_denies_until_period_ends)
{
    open_it();
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(rc_breaker_acquire(&b), RC_BREAKER_DENY);
    ck_assert(!rc_breaker_usable(&b));
    fake_now += 9.999;
    ck_assert_int_eq(rc_breaker_acquire(&b), RC_BREAKER_DENY);
    ck_assert_int_eq(rc_breaker_state(&b), RC_CIRCUIT_OPEN);
    fake_now += 0.001;
    ck_assert(rc_breaker_usable(&b));
    ck_assert_int_eq(rc_breaker_state(&b), RC_CIRCUIT_HALF_OPEN); /* due */
}
END_TEST

START_TEST(test_half_open_single_probe_success)
{
    open_it();
    fake_now += 10;
    rc_breaker_ticket probe = rc_breaker_acquire(&b);
    ck_assert_int_eq(probe, RC_BREAKER_PROBE);
    ck_assert_int_eq(rc_breaker_state(&b), RC_CIRCUIT_HALF_OPEN);
    /* Everyone else is denied while the probe is in flight, however long. */
    for (int i = 0; i < 10; i++) {
        fake_now += 100;
        ck_assert_int_eq(rc_breaker_acquire(&b), RC_BREAKER_DENY);
        ck_assert(!rc_breaker_usable(&b));
    }
    ck_assert(!rc_breaker_report(&b, probe, true));
    ck_assert_int_eq(rc_breaker_state(&b), RC_CIRCUIT_CLOSED);
    ck_assert_int_eq(rc_breaker_acquire(&b), RC_BREAKER_PASS);
    rc_breaker_report(&b, RC_BREAKER_PASS, true);
    /* Closed again with a fresh count: threshold failures to reopen. */
    fail_once();
    fail_once();
    ck_assert_int_eq(rc_breaker_state(&b), RC_CIRCUIT_CLOSED);
}
END_TEST

START_TEST(test_half_open_probe_failure_backs_off_with_cap)
{
    open_it();
    double expected[] = {20, 40, 80, 80, 80}; /* base 10 s, cap 8 x 10 s */
    ck_assert_double_eq(RC_BREAKER_MAX_FACTOR, 8.0);
    fake_now += 10;
    for (int i = 0; i < 5; i++) {
        rc_breaker_ticket probe = rc_breaker_acquire(&b);
        ck_assert_int_eq(probe, RC_BREAKER_PROBE);
        ck_assert(rc_breaker_report(&b, probe, false));
        ck_assert_int_eq(rc_breaker_state(&b), RC_CIRCUIT_OPEN);
        fake_now += expected[i] - 0.01;
        ck_assert_int_eq(rc_breaker_acquire(&b), RC_BREAKER_DENY);
        fake_now += 0.01;
    }
    /* A successful probe resets the period to the base. */
    rc_breaker_ticket probe = rc_breaker_acquire(&b);
    ck_assert_int_eq(probe, RC_BREAKER_PROBE);
    rc_breaker_report(&b, probe, true);
    open_it();
    fake_now += 10;
    ck_assert_int_eq(rc_breaker_acquire(&b), RC_BREAKER_PROBE);
}
END_TEST

START_TEST(test_late_outcomes_ignored)
{
    /* Calls that passed while closed and finish after it opened do not
     * change an open or half-open breaker. */
    rc_breaker_ticket late_ok = rc_breaker_acquire(&b), late_bad = rc_breaker_acquire(&b);
    open_it();
    rc_breaker_report(&b, late_ok, true);
    ck_assert_int_eq(rc_breaker_state(&b), RC_CIRCUIT_OPEN);
    fake_now += 10;
    rc_breaker_ticket probe = rc_breaker_acquire(&b);
    ck_assert_int_eq(probe, RC_BREAKER_PROBE);
    rc_breaker_report(&b, late_bad, false);
    ck_assert_int_eq(rc_breaker_acquire(&b), RC_BREAKER_DENY);
    rc_breaker_report(&b, probe, true);
    ck_assert_int_eq(rc_breaker_state(&b), RC_CIRCUIT_CLOSED);
    rc_breaker_report(&b, RC_BREAKER_DENY, false); /* no-op */
    ck_assert_int_eq(rc_breaker_state(&b), RC_CIRCUIT_CLOSED);
}
END_TEST

static atomic_int probes, denies;
static atomic_int go;
static void *race_acquire(void *arg)
{
    (void)arg;
    while (!atomic_load(&go))
        ;
    for (int i = 0; i < 1000; i++) {
        rc_breaker_ticket t = rc_breaker_acquire(&b);
        if (t == RC_BREAKER_PROBE)
            atomic_fetch_add(&probes, 1);
        else if (t == RC_BREAKER_DENY)
            atomic_fetch_add(&denies, 1);
    }
    return NULL;
}

START_TEST(test_exactly_one_probe_under_threads)
{
    open_it();
    fake_now += 10;
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, race_acquire, NULL);
    atomic_store(&go, 1);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(atomic_load(&probes), 1);
    ck_assert_int_eq(atomic_load(&denies), 8 * 1000 - 1);
}
END_TEST

/* ---- through the service, against a real server ---- */

static rc_cache *service(const th_redis *r)
{
    rc_settings s;
    rc_cache *c;
    ck_assert_int_eq(rc_settings_defaults(&s), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", r->url), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_SOCKET_TIMEOUT", "0.2"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "CIRCUIT_BREAKER_THRESHOLD", "3"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "CIRCUIT_BREAKER_TIMEOUT", "5"), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "LOG_LEVEL", "error"), RC_OK);
    ck_assert_int_eq(rc_cache_new(&s, &c), RC_OK);
    rc_settings_clear(&s);
    rc_cache_set_clock(c, fake_clock, NULL);
    return c;
}

static rc_circuit_state circuit(rc_cache *c)
{
    rc_cache_stats st;
    rc_circuit_state now = rc_cache_circuit(c);
    if (now != RC_CIRCUIT_CLOSED) { /* the stats agree (and make no call) */
        ck_assert_int_eq(rc_cache_get_stats(c, &st), RC_OK);
        ck_assert_int_eq(st.circuit, now);
    }
    return now;
}

START_TEST(test_service_transitions)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    rc_cache *c = service(&r);
    ck_assert_int_eq(rc_cache_health_check(c), RC_OK);
    ck_assert_uint_eq(rc_cache_debug_connects(c), 1);
    th_redis_kill(&r);
    /* Three failures (each a real attempt) open it. */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(circuit(c), RC_CIRCUIT_CLOSED);
        ck_assert_int_eq(rc_cache_health_check(c), RC_EUNAVAILABLE);
    }
    ck_assert_int_eq(circuit(c), RC_CIRCUIT_OPEN);
    uint64_t connects = rc_cache_debug_connects(c);
    ck_assert_uint_eq(connects, 3); /* the first failure was on the idle context */
    /* Open: no connect, immediate answers. */
    double t0 = th_now();
    char *v;
    size_t len;
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(rc_cache_get(c, "k", &v, &len), RC_ENOTFOUND);
        ck_assert_int_eq(rc_cache_health_check(c), RC_EUNAVAILABLE);
    }
    ck_assert(th_now() - t0 < 1.0);
    ck_assert_uint_eq(rc_cache_debug_connects(c), connects);
    /* Half-open: one probe, which fails: open again for twice as long. */
    fake_now += 5;
    ck_assert(rc_cache_redis_usable(c));
    ck_assert_int_eq(rc_cache_health_check(c), RC_EUNAVAILABLE);
    ck_assert_uint_eq(rc_cache_debug_connects(c), connects + 1);
    ck_assert_int_eq(circuit(c), RC_CIRCUIT_OPEN);
    fake_now += 9.9;
    ck_assert_int_eq(rc_cache_health_check(c), RC_EUNAVAILABLE);
    ck_assert_uint_eq(rc_cache_debug_connects(c), connects + 1);
    /* Server back; the next due probe succeeds and closes it. */
    ck_assert_int_eq(th_redis_restart(&r), 0);
    fake_now += 0.1;
    ck_assert_int_eq(rc_cache_set(c, "k", "v", 1, 60), RC_OK);
    ck_assert_int_eq(circuit(c), RC_CIRCUIT_CLOSED);
    ck_assert_int_eq(rc_cache_get(c, "k", &v, &len), RC_OK);
    free(v);
    rc_cache_free(c);
    th_redis_stop(&r);
}
END_TEST

typedef struct probe_arg {
    rc_cache *c;
    double took;
    int st;
} probe_arg;

static void *probe_thread(void *arg)
{
    probe_arg *a = arg;
    double t0 = th_now();
    a->st = rc_cache_health_check(a->c);
    a->took = th_now() - t0;
    return NULL;
}

START_TEST(test_service_one_probe_in_flight)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start(&r, NULL), 0);
    rc_cache *c = service(&r);
    th_redis_pause(&r); /* calls now time out after 0.2 s */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(rc_cache_health_check(c), RC_EUNAVAILABLE);
    ck_assert_int_eq(circuit(c), RC_CIRCUIT_OPEN);
    fake_now += 5;
    uint64_t connects = rc_cache_debug_connects(c);
    probe_arg a = {c, 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, probe_thread, &a);
    th_await(!rc_cache_redis_usable(c), TH_WAIT_SECONDS); /* probe taken */
    /* While it is in flight every other call returns at once, no connect. */
    int others = 0;
    double t0 = th_now();
    while (th_now() - t0 < 0.1) {
        char *v;
        size_t len;
        ck_assert_int_eq(rc_cache_get(c, "k", &v, &len), RC_ENOTFOUND);
        others++;
    }
    pthread_join(t, NULL);
    ck_assert_int_eq(a.st, RC_EUNAVAILABLE);
    ck_assert(a.took >= 0.15); /* the probe really waited for the paused server */
    ck_assert_uint_eq(rc_cache_debug_connects(c), connects + 1);
    ck_assert_int_gt(others, 10);
    ck_assert_int_eq(circuit(c), RC_CIRCUIT_OPEN);
    rc_cache_free(c);
    th_redis_stop(&r);
}
END_TEST

static Suite *breaker_suite(void)
{
    Suite *s = suite_create("breaker");
    const th_case cases[] = {
        {"closed_to_open", test_closed_to_open_after_threshold},
        {"open_denies", test_open_denies_until_period_ends},
        {"half_open_success", test_half_open_single_probe_success},
        {"probe_failure_backoff", test_half_open_probe_failure_backs_off_with_cap},
        {"late_outcomes", test_late_outcomes_ignored},
        {"one_probe_threads", test_exactly_one_probe_under_threads},
        {"service_transitions", test_service_transitions},
        {"service_one_probe", test_service_one_probe_in_flight},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], setup, teardown, 0);
    return s;
}

int main(void)
{
    return th_run_suite(breaker_suite());
}
