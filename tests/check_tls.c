/*
 * check_tls.c - the transport over TLS and its bounded waits, against real
 * redis-server processes with throwaway certificates (support/tls.h): a
 * cached repository reads and writes over TLS with and without a client
 * certificate; an unknown CA, a wrong name, an expired certificate and a
 * missing client certificate are each refused with their reason and every
 * call still answers from SQLite; REDIS_TLS_VERIFY=false warns; a server
 * paused before the handshake or during a command, and a resolver that
 * never answers, hold REDIS_SOCKET_TIMEOUT; a server killed and restarted
 * is found again (and no SIGPIPE).
 */
#define _GNU_SOURCE
#include "harness.h"
#include "service.h"
#include "side.h"
#include "tls.h"
#include "cache/service.h"
#include "repocache/log.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static th_certs certs; /* made once, in main */

/* Bounds of a wait that REDIS_SOCKET_TIMEOUT=0.2 holds (generous above). */
#define TIMEOUT "0.2"
#define BOUND_LOW 0.15
#define BOUND_HIGH 1.5

/* ---- helpers ---- */

/* kv: the TLS settings (trusting ca, with the client certificate or not)
 * followed by the pairs of more (NULL-terminated; may be NULL). */
static void tls_kv(const char **kv, const char *ca, bool client, const char *const *more)
{
    int n = th_tls_settings(&certs, client, kv);
    kv[1] = ca; /* REDIS_TLS_CA_FILE's value */
    for (size_t i = 0; more && more[i]; i++)
        kv[n++] = more[i];
    kv[n] = NULL;
}

/* The name of hero id read through r, in buf. */
static const char *name_of(rc_repo *r, const char *id, char *buf, size_t size)
{
    void *e = NULL;
    ck_assert_int_eq(rc_repo_find_by_id(r, id, &e), RC_OK);
    ck_assert_ptr_nonnull(e);
    snprintf(buf, size, "%s", ((rc_hero *)e)->name);
    rc_hero_free(e);
    return buf;
}

/* The reply to a command on the plain port of r, as an integer. */
static long long plain_int(const th_redis *r, const char *cmd, const char *arg)
{
    redisContext *c = th_redis_connect(r, NULL);
    ck_assert_ptr_nonnull(c);
    redisReply *rep = arg ? redisCommand(c, "%s %s", cmd, arg) : redisCommand(c, cmd);
    ck_assert_ptr_nonnull(rep);
    ck_assert_int_eq(rep->type, REDIS_REPLY_INTEGER);
    long long v = rep->integer;
    freeReplyObject(rep);
    redisFree(c);
    return v;
}

/* Every operation of a cached hero repository on s answers RC_OK with the
 * data of SQLite (Redis reachable or not). */
static void exercise(th_side *s)
{
    char buf[64];
    rc_hero *h = th_hero("h1", "Ann");
    ck_assert_int_eq(rc_repo_save(s->repo, h, NULL), RC_OK);
    rc_hero_free(h);
    ck_assert_str_eq(name_of(s->repo, "h1", buf, sizeof buf), "Ann");
    ck_assert_str_eq(name_of(s->repo, "h1", buf, sizeof buf), "Ann");
    rc_list *l = NULL;
    ck_assert_int_eq(rc_hero_find_by_name(s->repo, "Ann", &l), RC_OK);
    ck_assert_uint_eq(l->len, 1);
    rc_list_free(l);
    h = th_hero("h1", "Bea");
    ck_assert_int_eq(rc_repo_update(s->repo, h, NULL, NULL), RC_OK);
    rc_hero_free(h);
    ck_assert_str_eq(name_of(s->repo, "h1", buf, sizeof buf), "Bea");
    ck_assert_int_eq(rc_hero_find_by_name(s->repo, "Ann", &l), RC_OK);
    ck_assert_uint_eq(l->len, 0);
    rc_list_free(l);
    ck_assert_int_eq(rc_repo_list_all(s->repo, &l), RC_OK);
    ck_assert_uint_eq(l->len, 1);
    rc_list_free(l);
}

/* Reads hero h1 and the heroes named Ann through s; whether both answers
 * are in Redis now (the plain port shows them). A write's invalidation is
 * also applied later from the outbox (CACHE_OUTBOX_POLL_MS), which may
 * remove a fill made before it: callers wait for this to hold. */
static bool filled(th_side *s, const th_redis *r)
{
    char buf[64];
    rc_list *l = NULL;
    name_of(s->repo, "h1", buf, sizeof buf);
    ck_assert_int_eq(rc_hero_find_by_name(s->repo, "Ann", &l), RC_OK);
    rc_list_free(l);
    return plain_int(r, "EXISTS", "hero:h1") == 1 &&
           plain_int(r, "EXISTS", "hero:name:Ann") == 1;
}

static void connection(rc_cache *c, rc_cache_connection *info)
{
    ck_assert_int_eq(rc_cache_connection_info(c, info), RC_OK);
}

/* ---- (a), (b): TLS that works ---- */

/* With a client certificate against tls-auth-clients yes; the near cache's
 * own connection (tracking) over TLS too. */
START_TEST(test_client_certificate_required)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start_tls(&r, &certs, certs.server, "yes", NULL), 0);
    const char *kv[24];
    tls_kv(kv, certs.ca, true, NULL);
    th_side s;
    char *db = th_tmpfile("tls.db");
    th_side_open(&s, r.tls_url, db, kv, true);
    exercise(&s);
    /* What went over TLS is in Redis: the plain port shows it. */
    th_await(filled(&s, &r), TH_WAIT_SECONDS);
    redisContext *pc = th_redis_connect(&r, NULL);
    redisReply *rep = redisCommand(pc, "GET hero:h1");
    ck_assert_int_eq(rep->type, REDIS_REPLY_STRING);
    ck_assert_ptr_nonnull(strstr(rep->str, "\"Bea\""));
    freeReplyObject(rep);
    redisFree(pc);
    rc_cache_connection info;
    connection(s.cache, &info);
    ck_assert_ptr_nonnull(strstr(info.tls, "TLSv1.3 TLS_"));
    ck_assert_ptr_nonnull(strstr(info.tls, "verified name localhost"));
    ck_assert_str_eq(info.last_error, "");
    char where[64];
    snprintf(where, sizeof where, "localhost:%d", r.tls_port);
    ck_assert_str_eq(info.server, where);
    th_side_close(&s);
    th_redis_stop(&r);
    free(db);
}
END_TEST

/* Without a client certificate against tls-auth-clients optional; the
 * server named by its IP address (verified against the SAN's IP). */
START_TEST(test_no_client_certificate_optional)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start_tls(&r, &certs, certs.server, "optional", NULL), 0);
    const char *kv[24];
    tls_kv(kv, certs.ca, false, NULL);
    char url[128];
    snprintf(url, sizeof url, "rediss://127.0.0.1:%d/0", r.tls_port);
    th_side s;
    char *db = th_tmpfile("tls.db");
    th_side_open(&s, url, db, kv, true);
    exercise(&s);
    th_await(filled(&s, &r), TH_WAIT_SECONDS);
    rc_cache_connection info;
    connection(s.cache, &info);
    ck_assert_ptr_nonnull(strstr(info.tls, "verified name 127.0.0.1"));
    ck_assert_str_eq(info.last_error, "");
    th_side_close(&s);
    th_redis_stop(&r);
    free(db);
}
END_TEST

/* ---- (c): refused, with the reason, and degraded ---- */

/* A server with cert and auth, a service trusting ca (with the client
 * certificate or not): every call answers from SQLite, nothing reaches
 * Redis, and last_error says expect (and no key material). */
static void refused(const char *cert, const char *auth, const char *extra, const char *ca,
                    bool client, const char *expect)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start_tls(&r, &certs, cert, auth, extra), 0);
    const char *more[] = {"REDIS_SOCKET_TIMEOUT", "1", NULL};
    const char *kv[24];
    tls_kv(kv, ca, client, more);
    th_side s;
    char *db = th_tmpfile("tls.db");
    th_side_open(&s, r.tls_url, db, kv, false);
    exercise(&s);
    ck_assert_int_eq(rc_cache_health_check(s.cache), RC_EUNAVAILABLE);
    rc_cache_connection info;
    connection(s.cache, &info);
    ck_assert_msg(strstr(info.last_error, expect), "last_error '%s' does not say '%s'",
                  info.last_error, expect);
    ck_assert_ptr_null(strstr(info.last_error, "BEGIN"));
    ck_assert_ptr_null(strstr(info.last_error, "PRIVATE"));
    ck_assert_str_eq(info.tls, "");
    ck_assert_uint_gt(info.connects, 0);
    ck_assert_int_eq(plain_int(&r, "DBSIZE", NULL), 0);
    th_side_close(&s);
    th_redis_stop(&r);
    free(db);
}

/* An unknown CA, the server sending its certificate alone: it trusts
 * another CA for client certificates, so it has no chain to add. */
START_TEST(test_unknown_ca_refused)
{
    char extra[400];
    snprintf(extra, sizeof extra, "--tls-ca-cert-file %s", certs.other_ca);
    refused(certs.server, "optional", extra, certs.other_ca, false,
            "TLS handshake failed: certificate verify failed (unable to get local issuer "
            "certificate)");
}
END_TEST

/* An unknown CA, the server sending its chain (OpenSSL adds the CA it
 * trusts for client certificates when it signed the server's). */
START_TEST(test_unknown_ca_in_chain_refused)
{
    refused(certs.server, "optional", NULL, certs.other_ca, false,
            "TLS handshake failed: certificate verify failed (self-signed certificate in "
            "certificate chain)");
}
END_TEST

START_TEST(test_wrong_name_refused)
{
    refused(certs.wrong_name, "optional", NULL, certs.ca, false,
            "TLS handshake failed: certificate verify failed (hostname mismatch)");
}
END_TEST

START_TEST(test_expired_refused)
{
    refused(certs.expired, "optional", NULL, certs.ca, false,
            "TLS handshake failed: certificate verify failed (certificate has expired)");
}
END_TEST

/* TLS 1.3: the server refuses after the client's handshake ended (the
 * PING after it shows it at connect); its alert ("tlsv13 alert certificate
 * required") may be lost to the reset of the connection the PING arrives
 * on, so the message names what the server asked for. */
START_TEST(test_missing_client_certificate_refused)
{
    refused(certs.server, "yes", NULL, certs.ca, false,
            "(the server asked for a client certificate; REDIS_TLS_CERT_FILE is not set)");
}
END_TEST

/* ---- (d): REDIS_TLS_VERIFY=false ---- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int unverified_warnings;

static void count_unverified(void *ud, int level, const char *event, const char *message)
{
    (void)ud, (void)message;
    pthread_mutex_lock(&log_mu);
    if (level == RC_LOG_WARNING && strcmp(event, "redis_tls_unverified") == 0)
        unverified_warnings++;
    pthread_mutex_unlock(&log_mu);
}

START_TEST(test_verify_off_warns)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start_tls(&r, &certs, certs.wrong_name, "optional", NULL), 0);
    rc_log_set_handler(count_unverified, NULL);
    const char *kv[] = {"REDIS_TLS_VERIFY", "false", "LOG_LEVEL", "warning",
                        "CACHE_L1_ENABLED", "false", NULL};
    rc_cache *c = th_cache_new(r.tls_url, kv);
    pthread_mutex_lock(&log_mu);
    ck_assert_int_eq(unverified_warnings, 1);
    pthread_mutex_unlock(&log_mu);
    ck_assert_int_eq(rc_cache_health_check(c), RC_OK);
    ck_assert_int_eq(rc_cache_set(c, "k", "v", 1, 60), RC_OK);
    ck_assert_int_eq(plain_int(&r, "EXISTS", "k"), 1);
    rc_cache_connection info;
    connection(c, &info);
    ck_assert_ptr_nonnull(strstr(info.tls, "not verified (REDIS_TLS_VERIFY=false)"));
    rc_cache_free(c);
    /* The same service verifying refuses that server. */
    const char *strict[] = {"REDIS_TLS_CA_FILE", certs.ca, "CACHE_L1_ENABLED", "false", NULL};
    c = th_cache_new(r.tls_url, strict);
    ck_assert_int_eq(rc_cache_health_check(c), RC_EUNAVAILABLE);
    rc_cache_free(c);
    pthread_mutex_lock(&log_mu);
    ck_assert_int_eq(unverified_warnings, 1);
    pthread_mutex_unlock(&log_mu);
    rc_log_set_handler(NULL, NULL);
    th_redis_stop(&r);
}
END_TEST

/* ---- (e): REDIS_SOCKET_TIMEOUT against a paused TLS server ---- */

static void assert_bounded(double t0, const char *what)
{
    double took = th_now() - t0;
    ck_assert_msg(took >= BOUND_LOW && took < BOUND_HIGH, "%s took %.3f s", what, took);
}

/* Paused before the handshake: the kernel accepts the connection (the
 * listen backlog), the server never answers the ClientHello. */
START_TEST(test_paused_before_handshake)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start_tls(&r, &certs, certs.server, "yes", NULL), 0);
    const char *more[] = {"REDIS_SOCKET_TIMEOUT", TIMEOUT, "CACHE_L1_ENABLED", "false", NULL};
    const char *kv[24];
    tls_kv(kv, certs.ca, true, more);
    th_redis_pause(&r);
    th_side s;
    char *db = th_tmpfile("tls.db");
    double t0 = th_now();
    th_side_open(&s, r.tls_url, db, kv, false);
    ck_assert_msg(th_now() - t0 < BOUND_HIGH, "opening took %.3f s", th_now() - t0);
    t0 = th_now();
    ck_assert_int_eq(rc_cache_health_check(s.cache), RC_EUNAVAILABLE);
    assert_bounded(t0, "a health check");
    rc_cache_connection info;
    connection(s.cache, &info);
    ck_assert_msg(strstr(info.last_error, "TLS handshake failed: timed out"), "last_error '%s'",
                  info.last_error);
    /* a cached repository on a fresh service: its first read meets the
     * paused server and still answers */
    rc_hero *h = th_hero("h1", "Ann");
    ck_assert_int_eq(rc_repo_save(s.repo, h, NULL), RC_OK);
    rc_hero_free(h);
    rc_repo_free(s.repo);
    rc_cache_free(s.cache);
    s.cache = th_cache_new(r.tls_url, kv);
    s.repo = th_side_hero_repo(&s);
    char buf[64];
    t0 = th_now();
    ck_assert_str_eq(name_of(s.repo, "h1", buf, sizeof buf), "Ann");
    assert_bounded(t0, "a read");
    th_redis_resume(&r);
    th_side_close(&s);
    th_redis_stop(&r);
    free(db);
}
END_TEST

/* Paused during a command: the link is up, the reply never comes. */
START_TEST(test_paused_during_command)
{
    th_redis r;
    ck_assert_int_eq(th_redis_start_tls(&r, &certs, certs.server, "yes", NULL), 0);
    const char *more[] = {"REDIS_SOCKET_TIMEOUT", TIMEOUT, "CACHE_L1_ENABLED", "false",
                          "CIRCUIT_BREAKER_TIMEOUT", "0.2", NULL};
    const char *kv[24];
    tls_kv(kv, certs.ca, true, more);
    th_side s;
    char *db = th_tmpfile("tls.db");
    th_side_open(&s, r.tls_url, db, kv, false);
    ck_assert_int_eq(rc_cache_health_check(s.cache), RC_OK); /* a pooled link */
    uint64_t connects = rc_cache_debug_connects(s.cache);
    rc_hero *h = th_hero("h1", "Ann");
    ck_assert_int_eq(rc_repo_save(s.repo, h, NULL), RC_OK);
    rc_hero_free(h);
    th_redis_pause(&r);
    char buf[64];
    double t0 = th_now();
    ck_assert_str_eq(name_of(s.repo, "h1", buf, sizeof buf), "Ann");
    assert_bounded(t0, "a read");
    ck_assert_uint_eq(rc_cache_debug_connects(s.cache), connects); /* the same link */
    th_redis_resume(&r);
    th_await(rc_cache_health_check(s.cache) == RC_OK, TH_WAIT_SECONDS);
    th_redis_pause(&r);
    t0 = th_now();
    ck_assert_int_eq(rc_queue_push(s.cache, "q", "x", 1), RC_EUNAVAILABLE);
    assert_bounded(t0, "a queue push");
    th_redis_resume(&r);
    th_side_close(&s);
    th_redis_stop(&r);
    free(db);
}
END_TEST

/* ---- (f): a resolver that never answers (plain transport) ---- */

/* In this (forked) process only: a mount namespace where /etc/resolv.conf
 * names 127.0.0.1, where a UDP socket takes every query and answers none.
 * Then one call on redis://never-answers.example; writes "took error" to
 * fd. */
static void resolve_child(int fd)
{
    char msg[512] = "setup failed";
    char *conf = th_tmpfile("resolv.conf");
    FILE *f = conf ? fopen(conf, "w") : NULL;
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (!f || fputs("nameserver 127.0.0.1\n", f) < 0 || fclose(f) != 0)
        snprintf(msg, sizeof msg, "cannot write resolv.conf");
    else if (unshare(CLONE_NEWNS) != 0 ||
             mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
             mount(conf, "/etc/resolv.conf", NULL, MS_BIND, NULL) != 0)
        snprintf(msg, sizeof msg, "namespace: %s", strerror(errno));
    else if (u < 0 || bind(u, (struct sockaddr *)&a, sizeof a) != 0)
        snprintf(msg, sizeof msg, "bind 127.0.0.1:53: %s", strerror(errno));
    else {
        rc_settings s;
        rc_cache *c = NULL;
        if (rc_settings_defaults(&s) ||
            rc_settings_set(&s, "REDIS_URL", "redis://never-answers.example:6379/0") ||
            rc_settings_set(&s, "REDIS_SOCKET_TIMEOUT", TIMEOUT) ||
            rc_settings_set(&s, "CACHE_L1_ENABLED", "false") ||
            rc_settings_set(&s, "LOG_LEVEL", "error") || rc_cache_new(&s, &c)) {
            snprintf(msg, sizeof msg, "service: %s", rc_errmsg());
        } else {
            double t0 = th_now();
            int st = rc_cache_health_check(c);
            double took = th_now() - t0;
            rc_cache_connection info;
            rc_cache_connection_info(c, &info);
            snprintf(msg, sizeof msg, "%.3f %d %s", took, st, info.last_error);
        }
    }
    if (write(fd, msg, strlen(msg)) < 0)
        _exit(2);
    _exit(0); /* the resolver thread may still wait: not ours to join */
}

START_TEST(test_resolver_never_answers)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        resolve_child(p[1]);
    }
    close(p[1]);
    char msg[512];
    size_t n = 0;
    ssize_t got;
    while ((got = read(p[0], msg + n, sizeof msg - 1 - n)) > 0)
        n += (size_t)got;
    msg[n] = '\0';
    close(p[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    double took;
    int st, used = 0;
    ck_assert_msg(sscanf(msg, "%lf %d %n", &took, &st, &used) == 2, "child: %s", msg);
    ck_assert_msg(took >= BOUND_LOW && took < BOUND_HIGH, "resolving took %.3f s", took);
    ck_assert_int_eq(st, RC_EUNAVAILABLE);
    ck_assert_msg(strstr(msg + used, "cannot resolve 'never-answers.example': timed out"),
                  "last_error: %s", msg + used);
}
END_TEST

/* ---- (g): killed mid-use and restarted ---- */

START_TEST(test_killed_and_restarted)
{
    signal(SIGPIPE, SIG_DFL); /* a write to a dead peer must not raise it */
    th_redis r;
    ck_assert_int_eq(th_redis_start_tls(&r, &certs, certs.server, "yes", NULL), 0);
    const char *more[] = {"REDIS_SOCKET_TIMEOUT", TIMEOUT, "CIRCUIT_BREAKER_TIMEOUT", "0.2",
                          "REDIS_MAX_CONNECTIONS", "4", NULL};
    const char *kv[24];
    tls_kv(kv, certs.ca, true, more);
    th_side s;
    char *db = th_tmpfile("tls.db");
    th_side_open(&s, r.tls_url, db, kv, true);
    exercise(&s);
    th_await(filled(&s, &r), TH_WAIT_SECONDS);
    th_redis_kill(&r);
    /* every call on the dead links: still answered */
    char buf[64];
    for (int i = 0; i < 5; i++) {
        const char *keys[] = {"a", "b", "c"}, *vals[] = {"1", "2", "3"};
        size_t lens[] = {1, 1, 1};
        ck_assert_int_eq(rc_cache_mset(s.cache, keys, vals, lens, 3, 60), RC_OK);
        ck_assert_str_eq(name_of(s.repo, "h1", buf, sizeof buf), "Bea");
    }
    rc_hero *h = th_hero("h1", "Cyd");
    ck_assert_int_eq(rc_repo_update(s.repo, h, NULL, NULL), RC_OK);
    rc_hero_free(h);
    ck_assert_int_eq(th_redis_restart(&r), 0);
    th_await(rc_cache_health_check(s.cache) == RC_OK, TH_WAIT_SECONDS);
    ck_assert_str_eq(name_of(s.repo, "h1", buf, sizeof buf), "Cyd");
    /* reads fill Redis again (once the new server's keys are trusted) */
    th_await(strcmp(name_of(s.repo, "h1", buf, sizeof buf), "Cyd") == 0 &&
                 plain_int(&r, "EXISTS", "hero:h1") == 1,
             TH_WAIT_SECONDS);
    rc_cache_connection info;
    connection(s.cache, &info);
    ck_assert_ptr_nonnull(strstr(info.tls, "verified name localhost"));
    th_side_close(&s);
    th_redis_stop(&r);
    free(db);
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    const th_case cases[] = {
        {"client_certificate_required", test_client_certificate_required},
        {"no_client_certificate_optional", test_no_client_certificate_optional},
        {"unknown_ca_refused", test_unknown_ca_refused},
        {"unknown_ca_in_chain_refused", test_unknown_ca_in_chain_refused},
        {"wrong_name_refused", test_wrong_name_refused},
        {"expired_refused", test_expired_refused},
        {"missing_client_certificate_refused", test_missing_client_certificate_refused},
        {"verify_off_warns", test_verify_off_warns},
        {"paused_before_handshake", test_paused_before_handshake},
        {"paused_during_command", test_paused_during_command},
        {"resolver_never_answers", test_resolver_never_answers},
        {"killed_and_restarted", test_killed_and_restarted},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], NULL, NULL, 0);
    return s;
}

int main(void)
{
    if (th_certs_make(&certs) != 0)
        return EXIT_FAILURE;
    return th_run_suite(tls_suite());
}
