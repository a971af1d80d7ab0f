/* wire.c - RESP on our own writes and hiredis's reader (wire.h). */
#include "cache/wire.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Commands formatted per sendmsg call at most (the rest go in more calls). */
#define IOV_BATCH 64

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

bool rc_wire_send(redisContext *c, const rc_cmd *cmds, size_t n)
{
    while (n > 0) {
        char *fmt[IOV_BATCH];
        struct iovec iov[IOV_BATCH];
        int k = 0;
        bool ok = true;
        for (; ok && k < IOV_BATCH && (size_t)k < n; k++) {
            int len = redisFormatCommandArgv(&fmt[k], cmds[k].argc,
                                                   (const char **)cmds[k].argv,
                                                   cmds[k].argvlen);
            ok = len >= 0;
            if (!ok)
                break;
            iov[k] = (struct iovec){fmt[k], (size_t)len};
        }
        if (!ok)
            broken(c, REDIS_ERR_OOM, "out of memory");
        ok = ok && send_all(c, iov, k);
        for (int i = 0; i < k; i++)
            redisFreeCommand(fmt[i]);
        if (!ok)
            return false;
        cmds += k;
        n -= (size_t)k;
    }
    return true;
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
