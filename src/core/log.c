/* log.c - the library's logging (see log.h and repocache/log.h). */
#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static const char *const level_names[] = {"debug", "info", "warning", "error"};

/* The handler and its argument, read and replaced together. */
static pthread_mutex_t handler_mu = PTHREAD_MUTEX_INITIALIZER;
static rc_log_fn handler = rc_log_stderr;
static void *handler_ud;

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

void rc_log_set_handler(rc_log_fn fn, void *ud)
{
    pthread_mutex_lock(&handler_mu);
    handler = fn ? fn : rc_log_stderr;
    handler_ud = fn ? ud : NULL;
    pthread_mutex_unlock(&handler_mu);
}

void rc_log_stderr(void *ud, int level, const char *event, const char *message)
{
    (void)ud;
    struct timeval tv;
    struct tm tm;
    char ts[32] = "";
    gettimeofday(&tv, NULL);
    time_t secs = tv.tv_sec;
    if (gmtime_r(&secs, &tm))
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    /* One fprintf per line so that lines from several threads do not mix. */
    fprintf(stderr, "%s.%03dZ repocache: %s: %s: %s\n", ts, (int)(tv.tv_usec / 1000),
            rc_log_level_name(level), event, message);
}

/* Where the user information of the URL whose "://" is at p ends: the '@'
 * before the host, or NULL when the authority has none. */
static const char *userinfo_end(const char *p)
{
    const char *at = NULL;
    for (const char *q = p + 3; *q && !strchr("/ \t\r\n\"'<>", *q); q++)
        if (*q == '@')
            at = q;
    return at;
}

void rc_log_mask_userinfo(char *s, size_t size)
{
    char out[1024];
    size_t o = 0;
    const char *p = s;
    for (const char *m; (m = strstr(p, "://")) && o < sizeof out;) {
        const char *at = userinfo_end(m);
        if (!at) {
            o += (size_t)snprintf(out + o, sizeof out - o, "%.*s", (int)(m + 3 - p), p);
            p = m + 3;
            continue;
        }
        const char *colon = memchr(m + 3, ':', (size_t)(at - m - 3));
        const char *keep_end = colon ? colon + 1 : m + 3;
        o += (size_t)snprintf(out + o, sizeof out - o, "%.*s***", (int)(keep_end - p), p);
        p = at;
    }
    if (o < sizeof out)
        snprintf(out + o, sizeof out - o, "%s", p);
    snprintf(s, size, "%s", out);
}

void rc_log(int threshold, int level, const char *event, const char *fmt, ...)
{
    if (level < threshold || level < RC_LOG_DEBUG || level > RC_LOG_ERROR)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    rc_log_mask_userinfo(line, sizeof line);
    pthread_mutex_lock(&handler_mu);
    rc_log_fn fn = handler;
    void *ud = handler_ud;
    pthread_mutex_unlock(&handler_mu);
    fn(ud, level, event, line);
}
