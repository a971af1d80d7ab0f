/* wire.c - RESP on our own writes and hiredis's reader (wire.h). */
#include "cache/wire.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

static atomic_uint_fast64_t resets;

uint64_t rc_wire_debug_resets(void) { return atomic_load(&resets); }

/* Marks c broken with type and the text of errno (or what). */
static void broken(redisContext *c, int type, const char *what)
{
    int e = errno;
    c->err = type;
    snprintf(c->errstr, sizeof c->errstr, "%s", what ? what : strerror(e));
    errno = e;
}

/* Sends iov[0..n) in full, resuming after partial writes. */
static bool send_all(redisContext *c, struct iovec *iov, int n)
{
    while (n > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            if (errno == EPIPE || errno == ECONNRESET)
                atomic_fetch_add(&resets, 1);
            broken(c, REDIS_ERR_IO, NULL);
            return false;
        }
        size_t left = (size_t)w; /* skip what went, resume mid-buffer */
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return true;
}

/* Writes "<lead><v>\r\n" at p; returns the end. */
static char *put_header(char *p, char lead, size_t v)
{
    char digits[24];
    int n = 0;
    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    *p++ = lead;
    while (n > 0)
        *p++ = digits[--n];
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

static size_t arg_len(const rc_cmd *cmd, int i)
{
    return cmd->argvlen ? cmd->argvlen[i] : strlen(cmd->argv[i]);
}

/* Bytes of cmds[0..n) in RESP: *argc, then $len and the bytes of each. */
static size_t resp_size(const rc_cmd *cmds, size_t n)
{
    size_t total = 0;
    for (size_t k = 0; k < n; k++) {
        total += 24 + 2;
        for (int i = 0; i < cmds[k].argc; i++)
            total += 24 + 2 + arg_len(&cmds[k], i) + 2;
    }
    return total;
}

/* The bytes to send, in RESP (the protocol's multi-bulk request form). */
static char *resp_format(char *p, const rc_cmd *cmds, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        p = put_header(p, '*', (size_t)cmds[k].argc);
        for (int i = 0; i < cmds[k].argc; i++) {
            size_t len = arg_len(&cmds[k], i);
            p = put_header(p, '$', len);
            memcpy(p, cmds[k].argv[i], len);
            p += len;
            *p++ = '\r';
            *p++ = '\n';
        }
    }
    return p;
}

bool rc_wire_send(redisContext *c, const rc_cmd *cmds, size_t n)
{
    char stack[8192];
    size_t cap = resp_size(cmds, n);
    char *buf = cap <= sizeof stack ? stack : malloc(cap);
    if (!buf) {
        broken(c, REDIS_ERR_OOM, "out of memory");
        return false;
    }
    struct iovec iov = {buf, (size_t)(resp_format(buf, cmds, n) - buf)};
    bool ok = send_all(c, &iov, 1);
    if (buf != stack)
        free(buf);
    return ok;
}

int rc_wire_feed(redisContext *c, int flags)
{
    char buf[16384];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, flags);
        if (n > 0) {
            if (redisReaderFeed(c->reader, buf, (size_t)n) == REDIS_OK)
                return 1;
            broken(c, REDIS_ERR_OOM, "out of memory");
            return -1;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && flags && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n == 0)
            broken(c, REDIS_ERR_EOF, "server closed the connection");
        else
            broken(c, REDIS_ERR_IO, NULL); /* EAGAIN: the timeout passed */
        return -1;
    }
}

redisReply *rc_wire_reply(redisContext *c)
{
    void *r = NULL;
    for (;;) {
        if (redisReaderGetReply(c->reader, &r) != REDIS_OK) {
            broken(c, REDIS_ERR_PROTOCOL, c->reader->errstr);
            return NULL;
        }
        if (r)
            return r;
        if (rc_wire_feed(c, 0) < 0)
            return NULL;
    }
}

redisReply *rc_wire_command(redisContext *c, int argc, const char **argv)
{
    rc_cmd cmd = {argc, argv, NULL};
    return rc_wire_send(c, &cmd, 1) ? rc_wire_reply(c) : NULL;
}
