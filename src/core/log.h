/* log.h - the library's logging: filtered by LOG_LEVEL, masked, and passed
 * to the handler of repocache/log.h (stderr by default). Callers pass hosts,
 * ports, paths, counts and hiredis/server error texts; rc_log masks the user
 * information of any URL in the message before the handler sees it. */
#ifndef RC_CORE_LOG_H
#define RC_CORE_LOG_H

#include "repocache/log.h"

#include <stddef.h>

/* The level named by s ("debug", "info", "warning", "error"; case-insensitive),
 * or -1 when s names none. */
int rc_log_level_parse(const char *s);

/* When level >= threshold: formats the message, masks URL user information
 * and passes it with event (a stable name of repocache/log.h) to the handler. */
void rc_log(int threshold, int level, const char *event, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Masks in place the password (or the user alone, when there is no password)
 * of every "scheme://user[:password]@" in s: "redis://u:***@h". */
void rc_log_mask_userinfo(char *s, size_t size);

#endif
