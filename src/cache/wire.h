/*
 * wire.h - RESP on the service's sockets, written by us: commands are
 * formatted here (the protocol's request form: *argc, then $len and the
 * bytes of each argument) and hiredis only parses the replies (its reader). Every write is a send(2) with MSG_NOSIGNAL, so a server gone away
 * gives EPIPE, never SIGPIPE, and no call touches the signal mask; every
 * read waits at most the socket's timeout (SO_RCVTIMEO, set by the pool).
 *
 * On failure the context is marked broken the way hiredis marks its own
 * (c->err = REDIS_ERR_IO or REDIS_ERR_PROTOCOL or REDIS_ERR_EOF, c->errstr
 * says why, errno kept for a timeout), and the caller discards it.
 */
#ifndef RC_CACHE_WIRE_H
#define RC_CACHE_WIRE_H

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
 * one sendmsg when the socket takes it all. false on failure (c broken; out
 * of memory: c->err REDIS_ERR_OOM). */
bool rc_wire_send(redisContext *c, const rc_cmd *cmds, size_t n);
/* Reads what the socket has into c's reader. flags: 0 waits up to the socket
 * timeout; MSG_DONTWAIT does not wait. 1: bytes read; 0: nothing to read
 * (MSG_DONTWAIT only); -1: EOF, error or timeout (c broken). */
int rc_wire_feed(redisContext *c, int flags);
/* The next reply on c, waiting up to the socket timeout per read; NULL on
 * failure (c broken). The caller frees it with freeReplyObject. */
redisReply *rc_wire_reply(redisContext *c);
/* One command and its reply (rc_wire_send, then rc_wire_reply). */
redisReply *rc_wire_command(redisContext *c, int argc, const char **argv);
/* Sends refused with EPIPE or ECONNRESET so far (each would have been a
 * SIGPIPE through write(2)); for tests. */
uint64_t rc_wire_debug_resets(void);

#endif
