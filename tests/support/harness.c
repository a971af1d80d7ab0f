/* harness.c - see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double th_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

pid_t th_spawn(char *const *argv, const char *out)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int fd = out ? open(out, O_CREAT | O_TRUNC | O_WRONLY, 0600) : open("/dev/null", O_RDWR);
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* gone with the test, whatever happens */
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    execvp(argv[0], argv);
    _exit(127);
}

int th_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int port = -1;
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

void th_await_tick(void) { usleep(1000); }

/* The password r's server was started with (--requirepass in r->extra),
 * copied into buf; NULL when it has none. */
static const char *own_password(const th_redis *r, char *buf, size_t size)
{
    const char *p = strstr(r->extra, "--requirepass ");
    size_t n;
    if (!p)
        return NULL;
    p += strlen("--requirepass ");
    n = strcspn(p, " ");
    if (n == 0 || n >= size)
        return NULL;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

/* Whether the server of r serves commands now: it answers PING with PONG
 * (after AUTH with its own password, when it has one). A server still
 * loading its data (LOADING) is not ready. NOAUTH counts as ready only for
 * a server whose password the harness does not know (the shared one). */
static bool serves(const th_redis *r)
{
    struct timeval tv = {0, 200000};
    char pwbuf[128];
    const char *pw = own_password(r, pwbuf, sizeof pwbuf);
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    redisReply *rep = NULL;
    bool up = false;
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return false;
    }
    redisSetTimeout(c, tv);
    if (pw) {
        rep = redisCommand(c, "AUTH %s", pw);
        up = rep && rep->type == REDIS_REPLY_STATUS;
        freeReplyObject(rep);
        rep = NULL;
    }
    if (up || !pw) {
        rep = redisCommand(c, "PING");
        up = rep && ((rep->type == REDIS_REPLY_STATUS &&
                      strcmp(rep->str, "PONG") == 0) ||
                     (!pw && rep->type == REDIS_REPLY_ERROR &&
                      strncmp(rep->str, "NOAUTH", 6) == 0));
    }
    freeReplyObject(rep);
    redisFree(c);
    return up;
}

/* Waits up to seconds for r to serve commands (see serves). Returns 0, or
 * -1 on time-out or when our server process exited (r->pid then 0). */
static int wait_ready(th_redis *r, double seconds)
{
    double end = th_now() + seconds;
    while (th_now() < end) {
        if (serves(r))
            return 0;
        if (r->pid > 0 && waitpid(r->pid, NULL, WNOHANG) == r->pid) {
            r->pid = 0; /* it exited: the port was taken, or a bad argument */
            return -1;
        }
        usleep(20000);
    }
    return -1;
}

static int spawn(th_redis *r)
{
    char port[16], *argv[64], extra[sizeof r->extra], *save = NULL;
    int argc = 0;
    snprintf(port, sizeof port, "%d", r->port);
    argv[argc++] = "redis-server";
    argv[argc++] = "--port";
    argv[argc++] = port;
    argv[argc++] = "--bind";
    argv[argc++] = "127.0.0.1";
    argv[argc++] = "--save";
    argv[argc++] = "";
    argv[argc++] = "--appendonly";
    argv[argc++] = "no";
    argv[argc++] = "--dir";
    argv[argc++] = r->dir;
    snprintf(extra, sizeof extra, "%s", r->extra);
    for (char *tok = strtok_r(extra, " ", &save); tok && argc < 62;
         tok = strtok_r(NULL, " ", &save))
        argv[argc++] = tok;
    argv[argc] = NULL;

    pid_t pid = th_spawn(argv, NULL);
    if (pid < 0)
        return -1;
    r->pid = pid;
    if (wait_ready(r, 60.0) != 0) {
        fprintf(stderr, "harness: redis-server on port %d did not start\n",
                r->port);
        th_redis_kill(r);
        return -1;
    }
    return 0;
}

int th_redis_start(th_redis *r, const char *extra_args)
{
    char *dir;
    memset(r, 0, sizeof *r);
    r->port = th_free_port();
    if (r->port < 0)
        return -1;
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d/0", r->port);
    snprintf(r->extra, sizeof r->extra, "%s", extra_args ? extra_args : "");
    dir = th_tmpfile("redis");
    if (!dir)
        return -1;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        free(dir);
        return -1;
    }
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    free(dir);
    return spawn(r);
}

/* The shared cluster of seeds "127.0.0.1:P1,...": r->url its pseudo-URL,
 * r->port the first seed's, ready when that seed answers. */
static int shared_cluster(th_redis *r, const char *seeds)
{
    memset(r, 0, sizeof *r);
    if (sscanf(seeds, "127.0.0.1:%d", &r->port) != 1 ||
        strlen(TH_REDIS_CLUSTER_SCHEME) + strlen(seeds) >= sizeof r->url) {
        fprintf(stderr, "harness: " TH_REDIS_CLUSTER_ENV " must be 127.0.0.1:PORT,... "
                        "(under %zu characters), got %s\n", sizeof r->url, seeds);
        return -1;
    }
    snprintf(r->url, sizeof r->url, "%s%s", TH_REDIS_CLUSTER_SCHEME, seeds);
    return wait_ready(r, 5.0);
}

int th_redis_shared(th_redis *r)
{
    const char *url = getenv("REPOCACHE_TEST_REDIS_URL");
    const char *seeds = getenv(TH_REDIS_CLUSTER_ENV);
    int port;
    if (seeds && *seeds) {
        if (url && *url) {
            fprintf(stderr, "harness: set REPOCACHE_TEST_REDIS_URL or " TH_REDIS_CLUSTER_ENV
                            ", not both\n");
            return -1;
        }
        return shared_cluster(r, seeds);
    }
    if (!url || !*url)
        return th_redis_start(r, NULL);
    memset(r, 0, sizeof *r);
    if (strncmp(url, "rediss://", 9) == 0) {
        const char *plain = getenv("REPOCACHE_TEST_REDIS_PLAIN_PORT");
        const char *colon = strrchr(url + 9, ':');
        if (!plain || sscanf(plain, "%d", &port) != 1 || !colon ||
            sscanf(colon + 1, "%d", &r->tls_port) != 1) {
            fprintf(stderr, "harness: a rediss://HOST:PORT[/db] REPOCACHE_TEST_REDIS_URL "
                            "needs REPOCACHE_TEST_REDIS_PLAIN_PORT (got %s)\n", url);
            return -1;
        }
        snprintf(r->tls_url, sizeof r->tls_url, "%s", url);
    } else if (sscanf(url, "redis://127.0.0.1:%d", &port) != 1) {
        fprintf(stderr, "harness: REPOCACHE_TEST_REDIS_URL must be "
                        "redis://127.0.0.1:PORT[/db] or rediss://HOST:PORT[/db], got %s\n",
                url);
        return -1;
    }
    r->port = port;
    snprintf(r->url, sizeof r->url, "%s", url);
    return wait_ready(r, 5.0);
}

static void signal_and_wait(th_redis *r, int sig)
{
    if (r->pid <= 0)
        return;
    kill(r->pid, SIGCONT); /* a paused server cannot handle SIGTERM */
    kill(r->pid, sig);
    while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    r->pid = 0;
}

void th_redis_stop(th_redis *r) { signal_and_wait(r, SIGTERM); }
void th_redis_kill(th_redis *r) { signal_and_wait(r, SIGKILL); }

int th_redis_restart(th_redis *r)
{
    th_redis_kill(r);
    for (int i = 0; i < 50; i++) {
        if (spawn(r) == 0)
            return 0;
        usleep(100000); /* the port may still be held for a moment */
    }
    return -1;
}

void th_redis_pause(th_redis *r)
{
    if (r->pid > 0)
        kill(r->pid, SIGSTOP);
}

void th_redis_resume(th_redis *r)
{
    if (r->pid > 0)
        kill(r->pid, SIGCONT);
}

int th_silent_open(th_silent *s)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 4; i++)
        s->fds[i] = -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(0x7f000002); /* 127.0.0.2 */
    s->fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fds[0] < 0 || bind(s->fds[0], (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(s->fds[0], 0) != 0 ||
        getsockname(s->fds[0], (struct sockaddr *)&a, &len) != 0) {
        th_silent_close(s);
        return -1;
    }
    s->port = ntohs(a.sin_port);
    /* Backlog 0 queues one connection; these never get accepted. */
    for (int i = 1; i < 4; i++) {
        s->fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (s->fds[i] >= 0 &&
            connect(s->fds[i], (struct sockaddr *)&a, sizeof a) != 0 &&
            errno != EINPROGRESS) {
            th_silent_close(s);
            return -1;
        }
    }
    usleep(50000); /* the handshakes of the fillers complete */
    return 0;
}

void th_silent_close(th_silent *s)
{
    for (int i = 0; i < 4; i++) {
        if (s->fds[i] >= 0)
            close(s->fds[i]);
        s->fds[i] = -1;
    }
}

redisContext *th_redis_connect(const th_redis *r, const char *password)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (password) {
        redisReply *rep = redisCommand(c, "AUTH %s", password);
        bool ok = rep && rep->type == REDIS_REPLY_STATUS;
        freeReplyObject(rep);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

int th_redis_flushall(const th_redis *r, const char *password)
{
    redisContext *c = th_redis_connect(r, password);
    redisReply *rep;
    int rc;
    if (!c)
        return -1;
    rep = redisCommand(c, "FLUSHALL");
    rc = rep && rep->type == REDIS_REPLY_STATUS ? 0 : -1;
    freeReplyObject(rep);
    redisFree(c);
    return rc;
}

char *th_tmpfile(const char *name)
{
    char tmpl[] = "/tmp/repocache-test-XXXXXX";
    char *dir = mkdtemp(tmpl);
    char *out;
    size_t n;
    if (!dir)
        return NULL;
    n = strlen(dir) + strlen(name) + 2;
    out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", dir, name);
    return out;
}

char *th_fixture_path(const char *name)
{
    const char *dir = getenv("RC_TEST_FIXTURES");
    size_t n;
    char *out;
    if (!dir)
        dir = "tests/fixtures";
    n = strlen(dir) + strlen(name) + 2;
    out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", dir, name);
    return out;
}

char *th_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
            if (len)
                *len = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}

int th_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

void th_add_cases(Suite *s, const th_case *cases, size_t n, SFun setup,
                  SFun teardown, double timeout)
{
    for (size_t i = 0; i < n; i++) {
        TCase *tc = tcase_create(cases[i].name);
        if (setup || teardown)
            tcase_add_checked_fixture(tc, setup, teardown);
        if (timeout > 0)
            tcase_set_timeout(tc, timeout);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
}

char *th_capture_stderr(void (*fn)(void *), void *arg)
{
    char *path = th_tmpfile("stderr.log");
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    ck_assert(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char *text = th_read_file(path, NULL);
    ck_assert_ptr_nonnull(text);
    free(path);
    return text;
}
