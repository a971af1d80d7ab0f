/*
 * wire.h - RESP on the service's links (link.h), written by us: commands are
 * formatted here (the protocol's request form: *argc, then $len and the
 * bytes of each argument) and hiredis only parses the replies (its reader).
 * A send starts the command's deadline (the link's timeout); the reads of
 * its replies share it, so a command or a pipeline waits at most the
 * timeout in all. A reply that would buffer more than the link's cap of
 * unparsed bytes kills the link.
 *
 * On failure the link is dead (c->err, c->errstr say why; errno EAGAIN for a
 * timeout), and the caller discards it.
 */
#ifndef RC_CACHE_WIRE_H
#define RC_CACHE_WIRE_H

#include "cache/link.h"

#include <hiredis/hiredis.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One command as an argument vector (binary-safe). */
typedef struct rc_cmd {
    int argc;                /* arguments, the command name included */
    const char *const *argv; /* the arguments */
    const size_t *argvlen;   /* NULL: every argv[i] is NUL-terminated */
} rc_cmd;

/* Sends cmds[0..n) on c, pipelined: one buffer (on the stack up to 8 KiB),
 * one send when the socket takes it all. false on failure (c broken; out
 * of memory: c->err REDIS_ERR_OOM). */
bool rc_wire_send(rc_link *c, const rc_cmd *cmds, size_t n);
/* Reads what the link has into c's reader. wait: up to the deadline of the
 * last send; !wait: what is there now. 1: bytes read; 0: nothing to read
 * (!wait only); -1: EOF, error, timeout or the cap (c dead). */
int rc_wire_feed(rc_link *c, bool wait);
/* The next reply on c, waiting up to the socket timeout per read; NULL on
 * failure (c broken). The caller frees it with freeReplyObject. */
redisReply *rc_wire_reply(rc_link *c);
/* One command and its reply (rc_wire_send, then rc_wire_reply). */
redisReply *rc_wire_command(rc_link *c, int argc, const char **argv);
/* Sends refused with EPIPE or ECONNRESET so far (each would have been a
 * SIGPIPE through write(2)); for tests. */
uint64_t rc_wire_debug_resets(void);

#endif
