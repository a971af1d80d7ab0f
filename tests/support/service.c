/* service.c - see service.h. */
#include "service.h"

#include "harness.h"

#include "core/slot.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void th_settings_url(rc_settings *s, const char *url)
{
    static const char *const files[][2] = {
        {"REPOCACHE_TEST_TLS_CA_FILE", "REDIS_TLS_CA_FILE"},
        {"REPOCACHE_TEST_TLS_CERT_FILE", "REDIS_TLS_CERT_FILE"},
        {"REPOCACHE_TEST_TLS_KEY_FILE", "REDIS_TLS_KEY_FILE"},
    };
    size_t scheme = strlen(TH_REDIS_CLUSTER_SCHEME);
    if (strncmp(url, TH_REDIS_CLUSTER_SCHEME, scheme) == 0) {
        ck_assert_int_eq(rc_settings_set(s, "REDIS_CLUSTER_NODES", url + scheme), RC_OK);
        return;
    }
    ck_assert_int_eq(rc_settings_set(s, "REDIS_URL", url), RC_OK);
    if (strncmp(url, "rediss://", 9) != 0)
        return;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *v = getenv(files[i][0]);
        if (v && *v)
            ck_assert_int_eq(rc_settings_set(s, files[i][1], v), RC_OK);
    }
}

rc_cache *th_cache_new(const char *url, const char *const *kv)
{
    rc_settings s;
    rc_cache *c = NULL;
    ck_assert_int_eq(rc_settings_defaults(&s), RC_OK);
    th_settings_url(&s, url);
    ck_assert_int_eq(rc_settings_set(&s, "LOG_LEVEL", "error"), RC_OK);
    for (size_t i = 0; kv && kv[i]; i += 2)
        ck_assert_int_eq(rc_settings_set(&s, kv[i], kv[i + 1]), RC_OK);
    ck_assert_int_eq(rc_cache_new(&s, &c), RC_OK);
    rc_settings_clear(&s);
    return c;
}

static char *next_buf(void)
{
    static char bufs[8][512];
    static int next;
    return bufs[next++ % 8];
}

const char *th_key(const char *prefix, const char *k)
{
    char *b = next_buf();
    snprintf(b, 512, "%s%s", prefix, k);
    return b;
}

const char *th_aux_key(const char *prefix, const char *k, const char *tag)
{
    char data[512], *b = next_buf();
    snprintf(data, sizeof data, "%s%s", prefix, k);
    const char *colon = strchr(k, ':');
    ck_assert_ptr_nonnull(colon);
    int ns_len = (int)(colon - k) + 1;
    snprintf(b, 512, "%s%.*s%s{%s}%s", prefix, ns_len, k, tag,
             rc_slot_tag(rc_slot(data, strlen(data))), colon + 1);
    return b;
}

const char *th_untag(const char *key)
{
    char *b = next_buf();
    snprintf(b, 512, "%s", key);
    const char *tags[] = {"~lease:{", "~none:{"};
    for (int i = 0; i < 2; i++) {
        const char *t = strstr(key, tags[i]);
        const char *close = t ? strchr(t, '}') : NULL;
        if (!close)
            continue;
        size_t head = (size_t)(t - key), tl = strlen(tags[i]) - 1;
        char data[512], slot_tag[8];
        snprintf(data, sizeof data, "%.*s%s", (int)head, key, close + 1);
        snprintf(slot_tag, sizeof slot_tag, "%.*s", (int)(close - (t + tl + 1)), t + tl + 1);
        if (strcmp(slot_tag, rc_slot_tag(rc_slot(data, strlen(data)))) == 0)
            snprintf(b, 512, "%.*s%s", (int)(head + tl), key, close + 1);
    }
    return b;
}
