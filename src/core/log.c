/* log.c - the cache service's stderr logging (see log.h). */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

static const char *const level_names[] = {"debug", "info", "warning", "error"};

const char *rc_log_level_name(int level)
{
    return level >= RC_LOG_DEBUG && level <= RC_LOG_ERROR ? level_names[level] : "?";
}

int rc_log_level_parse(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

void rc_log(int threshold, int level, const char *fmt, ...)
{
    if (level < threshold || level < RC_LOG_DEBUG || level > RC_LOG_ERROR)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One fprintf per line so that lines from several threads do not mix. */
    fprintf(stderr, "repocache: %s: %s\n", level_names[level], line);
}
