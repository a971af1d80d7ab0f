/* service.c - see service.h. */
#include "service.h"

#include <check.h>
#include <stdio.h>

rc_cache *th_cache_new(const char *url, const char *const *kv)
{
    rc_settings s;
    rc_cache *c = NULL;
    ck_assert_int_eq(rc_settings_defaults(&s), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", url), RC_OK);
    ck_assert_int_eq(rc_settings_set(&s, "LOG_LEVEL", "error"), RC_OK);
    for (size_t i = 0; kv && kv[i]; i += 2)
        ck_assert_int_eq(rc_settings_set(&s, kv[i], kv[i + 1]), RC_OK);
    ck_assert_int_eq(rc_cache_new(&s, &c), RC_OK);
    rc_settings_clear(&s);
    return c;
}

const char *th_key(const char *prefix, const char *k)
{
    static char bufs[8][256];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s%s", prefix, k);
    return b;
}
