/* status.c - status codes, messages and the per-thread error detail. */
#include "repocache/status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char errbuf[512];

const char *rc_strerror(int status)
{
    switch (status) {
#define RC_STATUS_MSG_(name, value, msg)                                       \
    case value:                                                                \
        return msg;
        RC_STATUS_MAP(RC_STATUS_MSG_)
#undef RC_STATUS_MSG_
    }
    return "unknown status";
}

const char *rc_status_name(int status)
{
    switch (status) {
#define RC_STATUS_NAME_(name, value, msg)                                      \
    case value:                                                                \
        return "RC_" #name;
        RC_STATUS_MAP(RC_STATUS_NAME_)
#undef RC_STATUS_NAME_
    }
    return "RC_UNKNOWN";
}

const char *rc_errmsg(void) { return errbuf; }

int rc_seterr(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return status;
}

void rc_clearerr(void) { errbuf[0] = '\0'; }
