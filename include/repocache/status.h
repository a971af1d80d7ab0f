/*
 * repocache/status.h - status codes shared by every repocache function.
 *
 * Every function that can fail returns an int: 0 (RC_OK) for success and a
 * negative RC_E* code otherwise. The codes, their names and their messages
 * come from one X-macro list so they never drift apart.
 */
#ifndef REPOCACHE_STATUS_H
#define REPOCACHE_STATUS_H

#include "repocache/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message) */
#define RC_STATUS_MAP(X)                                                       \
    X(OK, 0, "success")                                                        \
    X(ENOTFOUND, -1, "not found")                                              \
    X(EINVAL, -2, "invalid argument")                                          \
    X(ECONFLICT, -3, "conflict: the id already exists")                        \
    X(EBACKEND, -4, "backend error")                                           \
    X(ENOMEM, -5, "out of memory")                                             \
    X(EUNAVAILABLE, -6, "cache unavailable")                                   \
    X(EDECODE, -7, "value does not decode")                                    \
    X(EUNSUPPORTED, -8, "operation not supported by this repository")          \
    X(ECONFIG, -9, "bad configuration")                                        \
    X(ETIMEOUT, -10, "timed out")                                              \
    X(EAUTH, -11, "authentication failed")

typedef enum rc_status {
#define RC_STATUS_ENUM_(name, value, msg) RC_##name = value,
    RC_STATUS_MAP(RC_STATUS_ENUM_)
#undef RC_STATUS_ENUM_
} rc_status;

/* Message for a status code; never NULL ("unknown status" for other values). */
RC_API const char *rc_strerror(int status);

/* Name of a status code ("RC_ENOTFOUND"); never NULL ("RC_UNKNOWN" otherwise). */
RC_API const char *rc_status_name(int status);

/*
 * Detail of the last failure on the calling thread ("age: must be 1-120, got
 * 300"), or "" when none was recorded. The string is owned by the library and
 * valid until the next repocache call on this thread. Passwords never appear.
 */
RC_API const char *rc_errmsg(void);

/* Records a detail for rc_errmsg() (printf-style) and returns status unchanged. */
RC_API int rc_seterr(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Clears the calling thread's detail message. */
RC_API void rc_clearerr(void);

#ifdef __cplusplus
}
#endif
#endif
