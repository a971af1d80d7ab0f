/*
 * harness.h - shared test support: temporary files and real redis-server
 * processes the tests start, stop, kill, pause (SIGSTOP) and restart.
 */
#ifndef RC_TEST_HARNESS_H
#define RC_TEST_HARNESS_H

#include <check.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct th_redis {
    pid_t pid;        /* 0 when not started by us (shared server) or stopped */
    int port;         /* loopback port, plain (the tests' own connections) */
    char url[256];    /* redis://127.0.0.1:PORT/0, or the shared server's
                         REPOCACHE_TEST_REDIS_URL (rediss:// in the TLS pass),
                         or TH_REDIS_CLUSTER_SCHEME + the shared cluster's
                         seeds (the cluster pass) */
    char dir[256];    /* working directory of the server */
    char extra[1024]; /* extra command-line arguments, space separated */
    int tls_port;     /* its TLS port (tls.h), or 0 */
    char tls_url[128]; /* rediss://localhost:TLS_PORT/0, or "" */
} th_redis;

/* Starts argv[0] (searched in PATH) with argv in a child that dies with the
 * calling process (PR_SET_PDEATHSIG), its output into the file out (NULL:
 * /dev/null). The child's pid, or -1. */
pid_t th_spawn(char *const *argv, const char *out);
/* A TCP port of 127.0.0.1 free now (the kernel's pick); -1 on failure. */
int th_free_port(void);
/* Starts a private redis-server on a free 127.0.0.1 port with extra
 * arguments ("--requirepass secret"; NULL for none) and waits until it
 * answers. Returns 0, or -1 (with a message on stderr). */
int th_redis_start(th_redis *r, const char *extra_args);
/* Fills r with the suite-wide server of scripts/test.sh
 * (REPOCACHE_TEST_REDIS_URL, redis://127.0.0.1:PORT[/db]), or starts a
 * private one when the variable is unset. The URL may be
 * rediss://HOST:TLS_PORT[/db] (scripts/tls.sh): the services the tests make
 * then speak TLS (th_settings_url in service.h adds the REDIS_TLS_* files
 * named by REPOCACHE_TEST_TLS_CA_FILE, _CERT_FILE, _KEY_FILE) and r->port is
 * the same server's plain port, REPOCACHE_TEST_REDIS_PLAIN_PORT, for the
 * tests' own connections. Returns 0 or -1. */
int th_redis_shared(th_redis *r);
/* The shared Redis may instead be a Redis Cluster (scripts/cluster.sh):
 * REPOCACHE_TEST_REDIS_CLUSTER=127.0.0.1:P1,127.0.0.1:P2,... (its seeds;
 * REPOCACHE_TEST_REDIS_URL then unset). th_redis_shared sets r->url to
 * TH_REDIS_CLUSTER_SCHEME + those seeds and r->port to the first seed's:
 * th_settings_url (service.h) makes such a URL REDIS_CLUSTER_NODES, and
 * the tests' own commands go through route.h (th_route_cmd,
 * th_route_flushall), which sends each to the right master. */
#define TH_REDIS_CLUSTER_SCHEME "redis-cluster://"
#define TH_REDIS_CLUSTER_ENV "REPOCACHE_TEST_REDIS_CLUSTER"
/* A free TCP port on 127.0.0.1 (bound and released), or -1. */
int th_free_port(void);
/* SIGTERM and wait (the server is gone when this returns). */
void th_redis_stop(th_redis *r);
/* SIGKILL and wait: the server dies without closing connections cleanly. */
void th_redis_kill(th_redis *r);
/* Starts the server again on the same port with the same arguments. */
int th_redis_restart(th_redis *r);
/* SIGSTOP / SIGCONT. */
void th_redis_pause(th_redis *r);
void th_redis_resume(th_redis *r);
/* A loopback port that never answers, like a host that is down: a listener
 * on 127.0.0.2 whose accept queue is kept full, so the kernel drops the SYN
 * of every further connect and each waits for its own timeout. */
typedef struct th_silent {
    int port;   /* on 127.0.0.2 */
    int fds[4]; /* the listener and the connections filling its queue */
} th_silent;
/* Opens one. Returns 0 or -1. */
int th_silent_open(th_silent *s);
/* Closes it. */
void th_silent_close(th_silent *s);

/* A free TCP port on 127.0.0.1 (bound and released), or -1. */
int th_free_port(void);

/* A new connection to r (AUTH with password when non-NULL); NULL on failure. */
redisContext *th_redis_connect(const th_redis *r, const char *password);
/* FLUSHALL on r. Returns 0 or -1. */
int th_redis_flushall(const th_redis *r, const char *password);

/* Generous bound, in seconds, for a test waiting on a condition that a
 * loaded machine (sanitizers, valgrind, busy loops) may take long to reach. */
#define TH_WAIT_SECONDS 30.0

/* Sleeps one polling interval of th_await (a millisecond). */
void th_await_tick(void);
/* Polls cond (an expression, re-evaluated) every millisecond until it holds;
 * fails the test, naming cond, when it still does not after seconds. Tests
 * wait for what they assert with this, never for a fixed time. */
#define th_await(cond, seconds)                                                \
    do {                                                                       \
        double th_await_end_ = th_now() + (seconds);                           \
        while (!(cond)) {                                                      \
            ck_assert_msg(th_now() < th_await_end_,                            \
                          "waited %.0f s in vain for: %s", (double)(seconds),  \
                          #cond);                                              \
            th_await_tick();                                                   \
        }                                                                      \
    } while (0)

/* A path "<fresh temp dir>/<name>"; caller frees. Directory left for the OS. */
char *th_tmpfile(const char *name);
/* Monotonic seconds. */
double th_now(void);
/* Path of a fixture file under tests/fixtures (RC_TEST_FIXTURES); caller frees. */
char *th_fixture_path(const char *name);
/* Reads a whole file; caller frees; NULL on failure. *len may be NULL. */
char *th_read_file(const char *path, size_t *len);
/* Runs fn(arg) with stderr redirected to a file; returns what it wrote
 * (caller frees). */
char *th_capture_stderr(void (*fn)(void *), void *arg);

/* One behaviour of a suite: a TCase of its own holding one test. */
typedef struct th_case {
    const char *name;   /* TCase name */
    const TTest *test;  /* the START_TEST function */
} th_case;

/* Adds one TCase per case to s, each with the checked fixture setup /
 * teardown (either may be NULL) and, when timeout > 0, that timeout in
 * seconds (else Check's default). */
void th_add_cases(Suite *s, const th_case *cases, size_t n, SFun setup,
                  SFun teardown, double timeout);

/* Runs suite s (taking it over) with Check's normal output; returns
 * EXIT_SUCCESS when every test passed, else EXIT_FAILURE. Every suite's main
 * ends with this. */
int th_run_suite(Suite *s);

#endif
