/*
 * fuzz_env.c - the .env reader (rc_settings_load) on any file, with a known
 * password in it where it is one.
 *
 * Input: two length bytes, then bytes cut into parts P1, P2, P3 (NULs and
 * all). The file is
 *     P1 "\nREDIS_PASSWORD=" PW "\n" P2 "\nREDIS_URL=redis://u:" PW "@" P3
 * Oracles: rc_errmsg() never contains PW; a file with a NUL byte is refused
 * naming the file (and line); a failed load leaves the settings cleared.
 */
#include "fuzz.h"

#include "repocache/settings.h"

#include <string.h>
#include <unistd.h>

#define PW "Zq7uFuzzPassw0rdK"

static const char *const vars[] = {
    "REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_DB", "REDIS_PASSWORD",
    "REDIS_ENABLED", "REDIS_MAX_CONNECTIONS", "REDIS_SOCKET_TIMEOUT",
    "CACHE_DEFAULT_TTL", "CACHE_HERO_TTL", "CACHE_CHILD_TTL", "CACHE_STORY_TTL",
    "CACHE_NEGATIVE_TTL", "CACHE_KEY_PREFIX", "CACHE_FALLBACK_ENABLED",
    "CACHE_FALLBACK_MAX_ENTRIES", "CIRCUIT_BREAKER_THRESHOLD",
    "CIRCUIT_BREAKER_TIMEOUT", "DATABASE_PATH", "LOG_LEVEL",
};

/* The file every input is written to, in memory when /dev/shm is there
 * (made once; the environment's own settings variables unset then, so that
 * the file alone counts). */
static char path[64];

static void remove_env_file(void) { unlink(path); }

static const char *env_path(void)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "%s/repocache-fuzz-env-XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        int fd = mkstemp(path);
        FUZZ_CHECK(fd >= 0, "mkstemp");
        close(fd);
        atexit(remove_env_file);
        for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
            unsetenv(vars[i]);
    }
    return path;
}

/* Whether the n bytes at p hold PW (NULs and all). */
static int has_pw(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + sizeof PW - 1 <= n; i++)
        if (memcmp(p + i, PW, sizeof PW - 1) == 0)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || has_pw(data, size))
        return 0;
    size_t rest = size - 2;
    size_t l1 = data[0] % (rest + 1);
    size_t l2 = data[1] % (rest - l1 + 1);
    const uint8_t *p1 = data + 2, *p2 = p1 + l1, *p3 = p2 + l2;
    size_t l3 = rest - l1 - l2;
    const char *path = env_path();
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL, "cannot write %s", path);
    fwrite(p1, 1, l1, f);
    fputs("\nREDIS_PASSWORD=" PW "\n", f);
    fwrite(p2, 1, l2, f);
    fputs("\nREDIS_URL=redis://u:" PW "@", f);
    fwrite(p3, 1, l3, f);
    fclose(f);

    rc_settings s;
    rc_clearerr();
    int rc = rc_settings_load(&s, path);
    FUZZ_CHECK(strstr(rc_errmsg(), PW) == NULL, "password in the message: %s",
               rc_errmsg());
    if (memchr(data + 2, 0, rest)) {
        FUZZ_CHECK(rc == RC_ECONFIG, "a NUL byte was accepted: %s", rc_status_name(rc));
        /* refused by the line reader: this line, or a malformed one before */
        FUZZ_CHECK(strstr(rc_errmsg(), path) != NULL,
                   "the refusal names no file: %s", rc_errmsg());
    }
    if (rc != RC_OK)
        FUZZ_CHECK(s.redis_host == NULL && s.redis_password == NULL,
                   "a failed load left settings");
    rc_settings_clear(&s);
    return 0;
}
