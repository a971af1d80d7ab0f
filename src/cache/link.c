/*
 * link.c - the library's own connections (link.h).
 *
 * Once open, a socket is blocking with SO_RCVTIMEO and SO_SNDTIMEO set to
 * the timeout: the first read after a send is one recv(2) that the socket
 * itself ends at the deadline (the common case: a command costs one send
 * and one recv); a later read of the same command takes what is there and
 * else polls for what is left of the deadline. TLS does the same through
 * tls.c's BIO (rc_tls_sock.may_block for that first read; every other read
 * and write is MSG_DONTWAIT, its waits polls), and a read always asks the
 * session first, which may hold decrypted bytes that poll cannot see. The
 * handshake runs on the socket still non-blocking.
 */
#include "cache/link.h"
#include "cache/resolve.h"
#include "cache/tls.h"

#include "core/clock.h"
#include "repocache/status.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static int64_t now_ns(void) { return (int64_t)(rc_clock_monotonic(NULL) * 1e9); }

void rc_link_fail(rc_link *l, int type, const char *msg)
{
    int e = errno;
    l->err = type;
    snprintf(l->errstr, sizeof l->errstr, "%s", msg ? msg : strerror(e));
    errno = e;
}

/* Waits until fd is ready for events or the deadline passes: 1 ready, 0
 * timed out, -1 poll failed. */
static int wait_fd(int fd, short events, int64_t deadline_ns)
{
    for (;;) {
        int64_t left = deadline_ns - now_ns();
        if (left <= 0)
            return 0;
        struct pollfd p = {fd, events, 0};
        int r = poll(&p, 1, (int)((left + 999999) / 1000000));
        if (r > 0)
            return 1;
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

static void timed_out(rc_link *l)
{
    errno = EAGAIN; /* what a socket timeout leaves: callers test it */
    rc_link_fail(l, REDIS_ERR_IO, "timed out");
}

/* Waits until l's socket is ready for events before the command's deadline;
 * false with l marked dead (a timeout, or poll's error) otherwise. */
static bool await_ready(rc_link *l, short events)
{
    int w = wait_fd(l->fd, events, l->deadline_ns);
    if (w > 0)
        return true;
    if (w == 0)
        timed_out(l);
    else
        rc_link_fail(l, REDIS_ERR_IO, NULL);
    return false;
}

/* ---- opening ---- */

static bool set_blocking(int fd, bool blocking)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 &&
           fcntl(fd, F_SETFL, blocking ? fl & ~O_NONBLOCK : fl | O_NONBLOCK) == 0;
}

/* Connects a non-blocking socket to addr before the deadline; the socket, or
 * -1 with why. */
static int connect_one(const struct sockaddr *addr, socklen_t len, int family,
                       int64_t deadline_ns, char *why, size_t why_size)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(why, why_size, "%s", strerror(errno));
        return -1;
    }
    int r;
    do
        r = connect(fd, addr, len);
    while (r < 0 && errno == EINTR);
    if (r < 0 && errno == EINPROGRESS) {
        int w = wait_fd(fd, POLLOUT, deadline_ns);
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (w == 0)
            errno = ETIMEDOUT, r = -1;
        else if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            r = -1;
        else if (soerr)
            errno = soerr, r = -1;
        else
            r = 0;
    }
    if (r < 0) {
        snprintf(why, why_size, "%s", errno == ETIMEDOUT ? "timed out" : strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* The connected socket for host:port or unix_path, or -1 with why. */
static int connect_any(const char *host, int port, const char *unix_path,
                       int64_t deadline_ns, int *st, char *why, size_t why_size)
{
    *st = RC_EUNAVAILABLE;
    if (unix_path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(unix_path) >= sizeof sa.sun_path) {
            snprintf(why, why_size, "socket path too long");
            return -1;
        }
        memcpy(sa.sun_path, unix_path, strlen(unix_path) + 1);
        return connect_one((struct sockaddr *)&sa, sizeof sa, AF_UNIX, deadline_ns, why,
                           why_size);
    }
    struct addrinfo *res;
    char rwhy[128];
    *st = rc_resolve(host, port, deadline_ns, &res, rwhy, sizeof rwhy);
    if (*st) {
        snprintf(why, why_size, "cannot resolve '%.100s': %s", host, rwhy);
        return -1;
    }
    *st = RC_EUNAVAILABLE;
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next)
        fd = connect_one(a->ai_addr, a->ai_addrlen, a->ai_family, deadline_ns, why, why_size);
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

/* The open socket: blocking, each read and write bounded by the timeout. */
static bool socket_setup(int fd, int64_t timeout_ns)
{
    struct timeval tv = {(time_t)(timeout_ns / 1000000000),
                         (suseconds_t)(timeout_ns % 1000000000 / 1000)};
    if (tv.tv_sec == 0 && tv.tv_usec == 0)
        tv.tv_usec = 1;
    return set_blocking(fd, true) &&
           setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
           setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0;
}

int rc_link_open(const rc_link_config *cfg, const char *host, int port,
                 const char *unix_path, rc_link **out)
{
    *out = NULL;
    char where[300], why[256];
    if (unix_path)
        snprintf(where, sizeof where, "%s", unix_path);
    else
        snprintf(where, sizeof where, "%s:%d", host, port);
    rc_link *l = calloc(1, sizeof *l);
    if (!l || !(l->reader = redisReaderCreate())) {
        free(l);
        return rc_seterr(RC_ENOMEM, "out of memory");
    }
    l->timeout_ns = (int64_t)(cfg->timeout * 1e9);
    if (l->timeout_ns <= 0)
        l->timeout_ns = 1000000;
    l->max_buffered = cfg->max_buffered;
    int64_t deadline = now_ns() + l->timeout_ns;
    int st;
    l->fd = connect_any(host, port, unix_path, deadline, &st, why, sizeof why);
    if (l->fd < 0) {
        rc_link_close(l);
        return st == RC_ENOMEM ? rc_seterr(RC_ENOMEM, "out of memory")
                               : rc_seterr(RC_EUNAVAILABLE, "redis at %s: connect failed: %s",
                                           where, why);
    }
    l->sock.fd = l->fd;
    if (cfg->tls && !unix_path) {
        st = rc_tls_handshake(cfg->tls, &l->sock, host, deadline, &l->ssl, l->tls_info,
                              sizeof l->tls_info, why, sizeof why);
        if (st) {
            rc_link_close(l);
            return st == RC_ENOMEM ? rc_seterr(RC_ENOMEM, "out of memory")
                                   : rc_seterr(RC_EUNAVAILABLE,
                                               "redis at %s: TLS handshake failed: %s", where,
                                               why);
        }
    }
    if (!socket_setup(l->fd, l->timeout_ns)) {
        snprintf(why, sizeof why, "%s", strerror(errno));
        rc_link_close(l);
        return rc_seterr(RC_EUNAVAILABLE, "redis at %s: cannot set up the socket: %s", where,
                         why);
    }
    *out = l;
    return RC_OK;
}

void rc_link_close(rc_link *l)
{
    if (!l)
        return;
    if (l->ssl) {
        if (!l->err)
            SSL_shutdown(l->ssl); /* close_notify; the peer's is not awaited */
        SSL_free(l->ssl);
        ERR_clear_error();
    }
    if (l->fd >= 0)
        close(l->fd);
    if (l->reader)
        redisReaderFree(l->reader);
    free(l);
}

/* ---- I/O ---- */

void rc_link_arm(rc_link *l)
{
    l->deadline_ns = now_ns() + l->timeout_ns;
    l->fresh = true;
}

/* Marks a TLS link dead after OpenSSL failed with ret; before the server
 * ever answered, a refusal of the missing client certificate is named. */
static void tls_failed(rc_link *l, int type, int ret)
{
    char why[128];
    rc_tls_error(l->ssl, ret, why, sizeof why);
    if (!l->answered && rc_tls_cert_requested(l->ssl)) {
        char more[sizeof l->errstr];
        snprintf(more, sizeof more, "%.40s (the server asked for a client certificate; "
                 "REDIS_TLS_CERT_FILE is not set)", why);
        rc_link_fail(l, type, more);
    } else {
        rc_link_fail(l, type, why);
    }
}

static bool tls_send(rc_link *l, const char *p, size_t len)
{
    while (len > 0) {
        ERR_clear_error();
        int n = SSL_write(l->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        int e = SSL_get_error(l->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (await_ready(l, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT))
                continue;
            return false;
        }
        tls_failed(l, REDIS_ERR_IO, n);
        return false;
    }
    return true;
}

static bool plain_send(rc_link *l, const char *p, size_t len)
{
    int flags = MSG_NOSIGNAL; /* the first try may block: SO_SNDTIMEO bounds it */
    while (len > 0) {
        ssize_t n = send(l->fd, p, len, flags);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            flags = MSG_NOSIGNAL | MSG_DONTWAIT; /* later: poll what is left */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            flags = MSG_NOSIGNAL | MSG_DONTWAIT;
            if (await_ready(l, POLLOUT))
                continue;
            return false;
        }
        rc_link_fail(l, REDIS_ERR_IO, NULL);
        return false;
    }
    return true;
}

bool rc_link_send(rc_link *l, const void *buf, size_t len)
{
    return l->ssl ? tls_send(l, buf, len) : plain_send(l, buf, len);
}

static ssize_t tls_recv(rc_link *l, void *buf, size_t cap, bool wait)
{
    l->sock.may_block = wait && l->fresh; /* the BIO's first recv may block */
    l->fresh = false;
    for (;;) {
        ERR_clear_error();
        int n = SSL_read(l->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
        l->sock.may_block = false;
        if (n > 0) {
            l->answered = true;
            return n;
        }
        int e = SSL_get_error(l->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (!wait)
                return 0;
            if (await_ready(l, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT))
                continue;
            return -1;
        }
        tls_failed(l, e == SSL_ERROR_ZERO_RETURN ? REDIS_ERR_EOF : REDIS_ERR_IO, n);
        return -1;
    }
}

static ssize_t plain_recv(rc_link *l, void *buf, size_t cap, bool wait)
{
    /* The first read after a send may block: the socket's own timeout ends
     * it at the deadline. A later one takes what is there (the rest of a
     * pipeline's replies usually is) and else polls for what is left. */
    int flags = wait && l->fresh ? 0 : MSG_DONTWAIT;
    l->fresh = false;
    for (;;) {
        ssize_t n = recv(l->fd, buf, cap, flags);
        if (n > 0)
            return n;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait)
                return 0;
            if (flags == 0) { /* the socket's own timeout ended the wait */
                timed_out(l);
                return -1;
            }
            if (await_ready(l, POLLIN))
                continue;
            return -1;
        }
        if (n == 0)
            rc_link_fail(l, REDIS_ERR_EOF, "server closed the connection");
        else
            rc_link_fail(l, REDIS_ERR_IO, NULL);
        return -1;
    }
}

ssize_t rc_link_recv(rc_link *l, void *buf, size_t cap, bool wait)
{
    return l->ssl ? tls_recv(l, buf, cap, wait) : plain_recv(l, buf, cap, wait);
}
