/*
 * fuzz_url.c - the REDIS_URL parser (rc_settings_set "REDIS_URL") on any
 * shape of URL, with a known password injected where it is one.
 *
 * Input: two fields A and B (cut at the first NUL). The URL A:PW@B puts the
 * known password PW before an '@', in the userinfo whatever A and B are.
 * Oracles: rc_errmsg() never contains PW; a refused URL changes nothing; an
 * accepted redis:// URL holds PW in its password (never in a host, user or
 * path). Then A+B as a URL of its own under REDIS_PASSWORD=PW: again no
 * message contains PW, and a URL without a password keeps it.
 */
#include "fuzz.h"

#include "repocache/settings.h"

#include <string.h>
#include <strings.h>

#define PW "Zq7uFuzzPassw0rdK"

/* Whether the connection fields of a and b are equal. */
static int same_target(const rc_settings *a, const rc_settings *b)
{
#define SAME_STR(f) ((!a->f && !b->f) || (a->f && b->f && !strcmp(a->f, b->f)))
    return SAME_STR(redis_host) && SAME_STR(redis_unix_path) &&
           SAME_STR(redis_user) && SAME_STR(redis_password) &&
           a->redis_port == b->redis_port && a->redis_db == b->redis_db;
#undef SAME_STR
}

/* Sets REDIS_URL=url on defaults with REDIS_PASSWORD=password (NULL: none)
 * and checks the oracles; returns the status. */
static int check_url(const char *url, const char *password, rc_settings *s)
{
    rc_settings before;
    FUZZ_CHECK(rc_settings_defaults(s) == RC_OK, "defaults");
    if (password)
        FUZZ_CHECK(rc_settings_set(s, "REDIS_PASSWORD", password) == RC_OK, "pw");
    FUZZ_CHECK(rc_settings_defaults(&before) == RC_OK, "defaults");
    if (password)
        FUZZ_CHECK(rc_settings_set(&before, "REDIS_PASSWORD", password) == RC_OK,
                   "pw");
    rc_clearerr();
    int rc = rc_settings_set(s, "REDIS_URL", url);
    FUZZ_CHECK(rc == RC_OK || rc == RC_ECONFIG, "%s for %s", rc_status_name(rc), url);
    FUZZ_CHECK(strstr(rc_errmsg(), PW) == NULL, "password in the message: %s",
               rc_errmsg());
    if (rc != RC_OK) {
        FUZZ_CHECK(rc_errmsg()[0] != '\0', "refused without a message");
        FUZZ_CHECK(same_target(s, &before), "a refused URL changed the settings");
    }
    rc_settings_clear(&before);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader r = {data, size};
    char *a = fuzz_field(&r), *b = fuzz_field(&r);
    if (strstr(a, PW) || strstr(b, PW)) { /* PW elsewhere may be printed */
        free(a);
        free(b);
        return 0;
    }
    size_t n = strlen(a) + strlen(b) + sizeof PW + 2;
    char *url = malloc(n);
    FUZZ_CHECK(url != NULL, "out of memory");
    rc_settings s;

    snprintf(url, n, "%s:%s@%s", a, PW, b);
    int rc = check_url(url, NULL, &s);
    if (rc == RC_OK && strncasecmp(url, "redis://", 8) == 0)
        FUZZ_CHECK(s.redis_password && strstr(s.redis_password, PW) &&
                       !(s.redis_host && strstr(s.redis_host, PW)) &&
                       !(s.redis_user && strstr(s.redis_user, PW)),
                   "the password was not read as one: %s", url);
    rc_settings_clear(&s);

    snprintf(url, n, "%s%s", a, b);
    if (!strstr(url, PW)) { /* the halves may join into PW: then it is no secret */
        rc = check_url(url, PW, &s);
        if (rc == RC_OK && strncasecmp(url, "redis://", 8) == 0 && !strchr(url, '@'))
            FUZZ_CHECK(s.redis_password && strcmp(s.redis_password, PW) == 0,
                       "a URL without a password dropped REDIS_PASSWORD: %s", url);
        rc_settings_clear(&s);
    }
    free(url);
    free(a);
    free(b);
    return 0;
}
