/* log.h - the cache service's logging to stderr, filtered by LOG_LEVEL.
 * Messages never contain passwords: callers pass only hosts, ports, paths,
 * key counts and hiredis/server error texts (which never echo a password). */
#ifndef RC_CACHE_LOG_H
#define RC_CACHE_LOG_H

enum rc_log_level { RC_LOG_DEBUG = 0, RC_LOG_INFO, RC_LOG_WARNING, RC_LOG_ERROR };

/* The level named by s ("debug", "info", "warning", "error"; case-insensitive),
 * or -1 when s names none. */
int rc_log_level_parse(const char *s);

/* The name of level ("debug" ... "error"), or "?" for none. */
const char *rc_log_level_name(int level);

/* Writes "repocache: <level>: <message>\n" to stderr when level >= threshold. */
void rc_log(int threshold, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
