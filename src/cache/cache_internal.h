/*
 * cache_internal.h - what the rest of the library (the cached decorator) uses
 * of the cache service beyond the public API: raw pipelined commands and Lua
 * scripts on a pooled context, with the breaker, the error counting and the
 * replay of remembered deletes applied exactly as for the public calls.
 */
#ifndef REPOCACHE_CACHE_INTERNAL_H
#define REPOCACHE_CACHE_INTERNAL_H

#include "repocache/cache.h"

#include <hiredis/hiredis.h>

/* One command as an argument vector (binary-safe). */
typedef struct rc_cmd {
    int argc;
    const char *const *argv;
    const size_t *argvlen; /* NULL: every argv[i] is NUL-terminated */
} rc_cmd;

/*
 * Runs n commands pipelined on one pooled context: one round trip.
 * replies[i] (caller frees with freeReplyObject) may be an error reply.
 * RC_OK when every reply arrived; RC_EUNAVAILABLE when Redis is disabled,
 * unreachable, timed out or the breaker is open (replies all NULL; the failure
 * is counted and fed to the breaker). Remembered deletes are replayed on the
 * context before these commands.
 */
int rc_cache_exec(rc_cache *c, const rc_cmd *cmds, size_t n,
                  redisReply **replies);

/*
 * Runs a Lua script with EVALSHA (its SHA1 computed once), falling back to
 * EVAL on NOSCRIPT. keys/args are NUL-terminated except args with lengths in
 * arglens (NULL: all NUL-terminated). *reply as rc_cache_exec.
 */
int rc_cache_eval(rc_cache *c, const char *script, int nkeys,
                  const char *const *keys, int nargs, const char *const *args,
                  const size_t *arglens, redisReply **reply);

/*
 * Remembers keys whose delete could not reach Redis; they are deleted (in
 * one pipeline) before any other command uses Redis again. When more than a
 * bound are pending, the service instead forgets them and drops every key
 * under the prefix matching drop_glob (escaped prefix + glob, e.g. "hero:*")
 * on recovery. RC_OK or RC_ENOMEM (then everything under the prefix is
 * dropped on recovery). With n == 0 and a drop_glob, remembers that pattern
 * drop itself (as a failed rc_cache_clear does). A no-op with
 * REDIS_ENABLED=false. The bound is 10000 keys.
 */
int rc_cache_remember_deletes(rc_cache *c, const char *const *keys, size_t n,
                              const char *drop_glob);

/* Whether the service would try Redis now (enabled and breaker not open). */
bool rc_cache_redis_usable(rc_cache *c);

/* The in-memory fallback, used directly by callers that bypass Redis while it
 * is unavailable (no-ops returning RC_ENOTFOUND / RC_EUNAVAILABLE when the
 * fallback is disabled). It serves only while Redis is unavailable (after a
 * failed call, or always with REDIS_ENABLED=false): while Redis is in use,
 * set returns RC_EUNAVAILABLE and get RC_ENOTFOUND. get counts a hit
 * (and a fallback hit) or a miss in the statistics; *val as rc_cache_get. */
int rc_cache_fallback_get(rc_cache *c, const char *key, char **val, size_t *len);
int rc_cache_fallback_set(rc_cache *c, const char *key, const char *val,
                          size_t len, int ttl);
void rc_cache_fallback_del(rc_cache *c, const char *key);

/* The breaker's state now, without touching Redis (rc_cache_get_stats asks
 * the server for memory and key count, which is a Redis call). */
rc_circuit_state rc_cache_circuit(rc_cache *c);

/* For tests: how many connects the pool has attempted so far (every
 * redisConnect*, successful or not). */
uint64_t rc_cache_debug_connects(rc_cache *c);

/* For tests: how many SIGPIPEs raised by this library's writes the guard
 * has consumed in this process (see the SIGPIPE note in cache.h). */
uint64_t rc_cache_debug_sigpipes(void);

#endif
