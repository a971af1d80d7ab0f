/*
 * repocache/log.h - where the library's log lines go. By default each line
 * is written to stderr as
 *     2026-01-31T12:00:00.123Z repocache: warning: redis_breaker_open: <message>
 * (ISO 8601 UTC timestamp, level, stable event name, message). A host
 * application routes them elsewhere with rc_log_set_handler, as SQLite's
 * SQLITE_CONFIG_LOG does. Each service filters by its LOG_LEVEL before the
 * handler is called. Messages never hold a password: the library never
 * passes one, and any URL user information in a message is masked
 * ("redis://user:***@host") before a handler sees it.
 *
 * Event names (stable; new ones may be added, none renamed):
 *   redis_up                  Redis answers (first contact: debug)
 *   redis_recovered           Redis answers again after the breaker opened
 *   redis_call_failed         a call failed; answered without Redis (debug)
 *   redis_breaker_open        the breaker opened: degrading
 *   redis_breaker_half_open   the breaker lets one probe through (debug)
 *   redis_breaker_closed      the probe succeeded: the breaker closed (debug;
 *                             redis_recovered says it at info)
 *   redis_breaker_reopened    the probe failed: open again (debug)
 *   redis_refused             Redis refused a command (error reply; at
 *                             most one per 10 s)
 *   replay_done               remembered deletes replayed
 *   replay_failed             a replay of remembered deletes failed (debug)
 *   decode_error              a cached value did not decode (at most one
 *                             per 10 s per service, with the count since)
 *   near_coherence_lost       the near cache stopped serving and emptied
 *   near_tracking_armed       the near cache serves again (debug)
 *   near_tracking_refused     Redis refused CLIENT TRACKING
 *   redis_identity_new        a Redis with a run_id or replication id not
 *                             trusted before (a restart, a failover):
 *                             its keys are not trusted until dropped
 *   redis_identity_dropped    a namespace dropped on such a Redis
 */
#ifndef REPOCACHE_LOG_H
#define REPOCACHE_LOG_H

#include "repocache/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Log levels, lowest first. */
enum rc_log_level { RC_LOG_DEBUG = 0, RC_LOG_INFO, RC_LOG_WARNING, RC_LOG_ERROR };

/* A log handler: level (RC_LOG_*), event (a stable name, above) and the
 * message (no newline). Called from whichever thread logs, possibly from
 * several at once; the strings are valid during the call only. */
typedef void (*rc_log_fn)(void *ud, int level, const char *event,
                          const char *message);

/* Sends every log line of the process to fn(ud, ...) from now on; fn NULL
 * restores the default handler. Thread-safe. */
RC_API void rc_log_set_handler(rc_log_fn fn, void *ud);

/* The default handler: one line to stderr, as shown above (ud ignored). */
RC_API void rc_log_stderr(void *ud, int level, const char *event, const char *message);

/* The name of level ("debug", "info", "warning", "error"), or "?". */
RC_API const char *rc_log_level_name(int level);

#ifdef __cplusplus
}
#endif
#endif
