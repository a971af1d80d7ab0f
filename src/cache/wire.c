/* wire.c - RESP on our own writes and hiredis's reader (wire.h). */
#include "cache/wire.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_uint_fast64_t resets;

uint64_t rc_wire_debug_resets(void) { return atomic_load(&resets); }

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

bool rc_wire_send(rc_link *c, const rc_cmd *cmds, size_t n)
{
    char stack[8192];
    size_t cap = resp_size(cmds, n);
    char *buf = cap <= sizeof stack ? stack : malloc(cap);
    if (!buf) {
        rc_link_fail(c, REDIS_ERR_OOM, "out of memory");
        return false;
    }
    rc_link_arm(c);
    bool ok = rc_link_send(c, buf, (size_t)(resp_format(buf, cmds, n) - buf));
    if (!ok && (errno == EPIPE || errno == ECONNRESET))
        atomic_fetch_add(&resets, 1);
    if (buf != stack)
        free(buf);
    return ok;
}

int rc_wire_feed(rc_link *c, bool wait)
{
    char buf[16384];
    redisReader *r = c->reader;
    if (c->max_buffered && r->len - r->pos > c->max_buffered) {
        char why[96];
        snprintf(why, sizeof why, "a reply of more than %zu bytes", c->max_buffered);
        rc_link_fail(c, REDIS_ERR_PROTOCOL, why);
        return -1;
    }
    ssize_t n = rc_link_recv(c, buf, sizeof buf, wait);
    if (n <= 0)
        return (int)n;
    if (redisReaderFeed(r, buf, (size_t)n) == REDIS_OK)
        return 1;
    rc_link_fail(c, REDIS_ERR_OOM, "out of memory");
    return -1;
}

redisReply *rc_wire_reply(rc_link *c)
{
    void *r = NULL;
    for (;;) {
        if (redisReaderGetReply(c->reader, &r) != REDIS_OK) {
            rc_link_fail(c, REDIS_ERR_PROTOCOL, c->reader->errstr);
            return NULL;
        }
        if (r)
            return r;
        if (rc_wire_feed(c, true) < 0)
            return NULL;
    }
}

redisReply *rc_wire_command(rc_link *c, int argc, const char **argv)
{
    rc_cmd cmd = {argc, argv, NULL};
    return rc_wire_send(c, &cmd, 1) ? rc_wire_reply(c) : NULL;
}
