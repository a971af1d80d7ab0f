/* check_settings.c - defaults, every variable, REDIS_URL forms, refusals with
 * messages naming the variable and the value (never a password), and the
 * .env file (missing is fine, malformed lines name file and line, the
 * environment wins). */
#include "harness.h"

#include "repocache/settings.h"
#include "repocache/status.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const all_vars[] = {
    "REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_DB", "REDIS_PASSWORD", "REDIS_ENABLED",
    "REDIS_MAX_CONNECTIONS", "REDIS_SOCKET_TIMEOUT", "CACHE_DEFAULT_TTL", "CACHE_HERO_TTL",
    "CACHE_CHILD_TTL", "CACHE_STORY_TTL", "CACHE_NEGATIVE_TTL", "CACHE_KEY_PREFIX",
    "CACHE_FALLBACK_ENABLED", "CACHE_FALLBACK_MAX_ENTRIES", "CIRCUIT_BREAKER_THRESHOLD",
    "CIRCUIT_BREAKER_TIMEOUT", "DATABASE_PATH", "LOG_LEVEL", "CACHE_L1_ENABLED",
    "CACHE_L1_MAX_ENTRIES", "CACHE_L1_MAX_BYTES", "CACHE_L1_MAX_TTL", "CACHE_SINGLE_FLIGHT", "CACHE_L1_STRICT",
    "CACHE_MAX_VALUE_BYTES", "CACHE_METRICS_ENABLED", "CACHE_STATS_FLUSH_INTERVAL",
    "CACHE_FALLBACK_MAX_STALENESS_MS", "CACHE_OUTBOX_POLL_MS",
};

static rc_settings s;

static void setup(void)
{
    for (size_t i = 0; i < sizeof all_vars / sizeof all_vars[0]; i++)
        unsetenv(all_vars[i]);
    ck_assert_int_eq(rc_settings_defaults(&s), RC_OK);
}

static void teardown(void) { rc_settings_clear(&s); }

/* Writes text to a fresh file; returns its path (caller frees). */
static char *write_env(const char *text)
{
    char *path = th_tmpfile(".env");
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Asserts that setting name=value fails with a message naming both. */
static void refused(const char *name, const char *value)
{
    ck_assert_msg(rc_settings_set(&s, name, value) == RC_ECONFIG, "%s=%s accepted", name, value);
    ck_assert_msg(strstr(rc_errmsg(), name) != NULL, "message lacks %s: %s", name, rc_errmsg());
    ck_assert_msg(strstr(rc_errmsg(), value) != NULL, "message lacks '%s': %s", value,
                  rc_errmsg());
}

START_TEST(test_defaults)
{
    ck_assert(s.redis_enabled);
    ck_assert_str_eq(s.redis_host, "localhost");
    ck_assert_int_eq(s.redis_port, 6379);
    ck_assert_ptr_null(s.redis_unix_path);
    ck_assert_int_eq(s.redis_db, 0);
    ck_assert_ptr_null(s.redis_user);
    ck_assert_ptr_null(s.redis_password);
    ck_assert_int_eq(s.redis_max_connections, 8);
    ck_assert_double_eq(s.redis_socket_timeout, 1.0);
    ck_assert_int_eq(s.cache_default_ttl, 3600);
    ck_assert_int_eq(s.cache_hero_ttl, 3600);
    ck_assert_int_eq(s.cache_child_ttl, 1800);
    ck_assert_int_eq(s.cache_story_ttl, 600);
    ck_assert_int_eq(s.cache_negative_ttl, 60);
    ck_assert_str_eq(s.cache_key_prefix, "");
    ck_assert(s.cache_fallback_enabled);
    ck_assert_int_eq(s.cache_fallback_max_entries, 1000);
    ck_assert_int_eq(s.cache_max_value_bytes, 1048576);
    ck_assert_int_eq(s.cache_fallback_max_staleness_ms, 1000);
    ck_assert_int_eq(s.cache_outbox_poll_ms, 100);
    ck_assert_int_eq(s.circuit_breaker_threshold, 5);
    ck_assert_double_eq(s.circuit_breaker_timeout, 30.0);
    ck_assert_str_eq(s.database_path, "tale.db");
    ck_assert_str_eq(s.log_level, "info");
    /* Loading with nothing set gives the defaults too. */
    rc_settings l;
    ck_assert_int_eq(rc_settings_load(&l, NULL), RC_OK);
    ck_assert_int_eq(l.redis_port, 6379);
    ck_assert_str_eq(l.database_path, "tale.db");
    rc_settings_clear(&l);
    rc_settings_clear(&l); /* twice is safe */
}
END_TEST

START_TEST(test_every_variable)
{
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_ENABLED", "false"), RC_OK);
    ck_assert(!s.redis_enabled);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_ENABLED", "YES"), RC_OK);
    ck_assert(s.redis_enabled);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_HOST", "cache.local"), RC_OK);
    ck_assert_str_eq(s.redis_host, "cache.local");
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_PORT", "6380"), RC_OK);
    ck_assert_int_eq(s.redis_port, 6380);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_DB", "3"), RC_OK);
    ck_assert_int_eq(s.redis_db, 3);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_PASSWORD", "pw"), RC_OK);
    ck_assert_str_eq(s.redis_password, "pw");
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_PASSWORD", ""), RC_OK);
    ck_assert_ptr_null(s.redis_password);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_MAX_CONNECTIONS", "2"), RC_OK);
    ck_assert_int_eq(s.redis_max_connections, 2);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_SOCKET_TIMEOUT", "0.25"), RC_OK);
    ck_assert_double_eq(s.redis_socket_timeout, 0.25);
    ck_assert_int_eq(rc_settings_set(&s, "CACHE_DEFAULT_TTL", "10"), RC_OK);
    ck_assert_int_eq(s.cache_default_ttl, 10);
    ck_assert_int_eq(rc_settings_set(&s, "CACHE_HERO_TTL", "11"), RC_OK);
    ck_assert_int_eq(s.cache_hero_ttl, 11);
    ck_assert_int_eq(rc_settings_set(&s, "CACHE_CHILD_TTL", "12"), RC_OK);
    ck_assert_int_eq(s.cache_child_ttl, 12);
    ck_assert_int_eq(rc_settings_set(&s, "CACHE_STORY_TTL", "13"), RC_OK);
    ck_assert_int_eq(s.cache_story_ttl, 13);
    ck_assert_int_eq(rc_settings_set(&s, "CACHE_NEGATIVE_TTL", "0"), RC_OK);
    ck_assert_int_eq(s.cache_negative_ttl, 0);
    ck_assert_int_eq(rc_settings_set(&s, "CACHE_KEY_PREFIX", "app:"), RC_OK);
    ck_assert_str_eq(s.cache_key_prefix, "app:");
    ck_assert_int_eq(rc_settings_set(&s, "CACHE_MAX_VALUE_BYTES", "4096"), RC_OK);
    ck_assert_int_eq(s.cache_max_value_bytes, 4096);
    ck_assert_int_eq(rc_settings_set(&s, "CACHE_MAX_VALUE_BYTES", "536870912"), RC_OK);
    refused("CACHE_MAX_VALUE_BYTES", "0");
    refused("CACHE_MAX_VALUE_BYTES", "536870913");
    refused("CACHE_MAX_VALUE_BYTES", "1MB");
    ck_assert_int_eq(rc_settings_set(&s, "CACHE_FALLBACK_ENABLED", "off"), RC_OK);
    ck_assert(!s.cache_fallback_enabled);
    ck_assert_int_eq(rc_settings_set(&s, "CACHE_FALLBACK_MAX_ENTRIES", "50"), RC_OK);
    ck_assert_int_eq(s.cache_fallback_max_entries, 50);
    ck_assert_int_eq(rc_settings_set(&s, "CIRCUIT_BREAKER_THRESHOLD", "3"), RC_OK);
    ck_assert_int_eq(s.circuit_breaker_threshold, 3);
    ck_assert_int_eq(rc_settings_set(&s, "CIRCUIT_BREAKER_TIMEOUT", "0.5"), RC_OK);
    ck_assert_double_eq(s.circuit_breaker_timeout, 0.5);
    ck_assert_int_eq(rc_settings_set(&s, "DATABASE_PATH", "/tmp/x.db"), RC_OK);
    ck_assert_str_eq(s.database_path, "/tmp/x.db");
    ck_assert_int_eq(rc_settings_set(&s, "LOG_LEVEL", "WARNING"), RC_OK);
    ck_assert_str_eq(s.log_level, "warning");
}
END_TEST

START_TEST(test_bad_values_refused)
{
    refused("REDIS_ENABLED", "maybe");
    refused("REDIS_PORT", "0");
    refused("REDIS_PORT", "65536");
    refused("REDIS_PORT", "80x");
    refused("REDIS_PORT", " 80");
    refused("REDIS_DB", "-1");
    refused("REDIS_MAX_CONNECTIONS", "0");
    refused("REDIS_SOCKET_TIMEOUT", "0");
    refused("REDIS_SOCKET_TIMEOUT", "-1");
    refused("REDIS_SOCKET_TIMEOUT", "fast");
    refused("REDIS_SOCKET_TIMEOUT", "nan");
    refused("CACHE_DEFAULT_TTL", "0");
    refused("CACHE_HERO_TTL", "-3");
    refused("CACHE_CHILD_TTL", "1.5");
    refused("CACHE_STORY_TTL", "");
    refused("CACHE_NEGATIVE_TTL", "-1");
    refused("CACHE_FALLBACK_ENABLED", "2");
    refused("CACHE_FALLBACK_MAX_ENTRIES", "0");
    refused("CACHE_FALLBACK_MAX_STALENESS_MS", "0");
    refused("CACHE_OUTBOX_POLL_MS", "0");
    refused("CACHE_OUTBOX_POLL_MS", "60001");
    refused("CACHE_L1_MAX_ENTRIES", "0");
    refused("CACHE_L1_MAX_BYTES", "-1");
    refused("CACHE_L1_MAX_TTL", "0");
    refused("CACHE_L1_ENABLED", "maybe");
    refused("CACHE_SINGLE_FLIGHT", "2");
    refused("CACHE_METRICS_ENABLED", "maybe");
    refused("CACHE_STATS_FLUSH_INTERVAL", "-1");
    refused("CACHE_STATS_FLUSH_INTERVAL", "5s");
    refused("CIRCUIT_BREAKER_THRESHOLD", "0");
    refused("CIRCUIT_BREAKER_TIMEOUT", "0");
    refused("CIRCUIT_BREAKER_TIMEOUT", "99999999");
    refused("LOG_LEVEL", "loud");
    refused("REDIS_HOST", "");
    refused("DATABASE_PATH", "");
    refused("REDIS_URL", "http://localhost");
    ck_assert_int_eq(rc_settings_set(&s, "NO_SUCH_SETTING", "1"), RC_ECONFIG);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "NO_SUCH_SETTING"));
    /* s is unchanged by a refusal. */
    ck_assert_int_eq(s.redis_port, 6379);
    ck_assert_double_eq(s.redis_socket_timeout, 1.0);
    ck_assert_str_eq(s.redis_host, "localhost");
    ck_assert_str_eq(s.log_level, "info");
}
END_TEST

START_TEST(test_url_forms)
{
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", "redis://example.org"), RC_OK);
    ck_assert_str_eq(s.redis_host, "example.org");
    ck_assert_int_eq(s.redis_port, 6379);
    ck_assert_int_eq(s.redis_db, 0);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", "redis://10.0.0.1:7000/5"), RC_OK);
    ck_assert_str_eq(s.redis_host, "10.0.0.1");
    ck_assert_int_eq(s.redis_port, 7000);
    ck_assert_int_eq(s.redis_db, 5);
    ck_assert_ptr_null(s.redis_user);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", "redis://alice:s%40cret:x@h:6390/2"),
                     RC_OK);
    ck_assert_str_eq(s.redis_user, "alice");
    ck_assert_str_eq(s.redis_password, "s@cret:x");
    ck_assert_str_eq(s.redis_host, "h");
    ck_assert_int_eq(s.redis_port, 6390);
    ck_assert_int_eq(s.redis_db, 2);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", "redis://:onlypass@h2/"), RC_OK);
    ck_assert_ptr_null(s.redis_user);
    ck_assert_str_eq(s.redis_password, "onlypass");
    ck_assert_int_eq(s.redis_db, 0);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", "redis://[::1]:6381/1"), RC_OK);
    ck_assert_str_eq(s.redis_host, "::1");
    ck_assert_int_eq(s.redis_port, 6381);
    /* A URL without a password keeps REDIS_PASSWORD. */
    ck_assert_str_eq(s.redis_password, "onlypass");
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", "unix:///run/redis/r.sock?db=3"), RC_OK);
    ck_assert_ptr_null(s.redis_host);
    ck_assert_str_eq(s.redis_unix_path, "/run/redis/r.sock");
    ck_assert_int_eq(s.redis_db, 3);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", "unix:///tmp/r.sock"), RC_OK);
    ck_assert_str_eq(s.redis_unix_path, "/tmp/r.sock");
    ck_assert_int_eq(s.redis_db, 0);
    /* An empty REDIS_URL counts as unset. */
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", ""), RC_OK);
    ck_assert_str_eq(s.redis_unix_path, "/tmp/r.sock");
    /* REDIS_HOST switches back to TCP. */
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_HOST", "h3"), RC_OK);
    ck_assert_ptr_null(s.redis_unix_path);
}
END_TEST

START_TEST(test_bad_urls)
{
    const char *bad[] = {"redis://", "redis://h:0", "redis://h:99999", "redis://h:abc",
                         "redis://h/x", "redis://h/-1", "unix://relative.sock",
                         "unix:///p.sock?foo=1", "unix:///p.sock?db=x", "ftp://h",
                         "redis://[::1", "redis://u:%zz@h", "redis://u:p%00w@h",
                         "redis://u%00:pw@h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(rc_settings_set(&s, "REDIS_URL", bad[i]) == RC_ECONFIG, "%s accepted",
                      bad[i]);
        ck_assert_ptr_nonnull(strstr(rc_errmsg(), "REDIS_URL"));
    }
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", "redis://h:abc"), RC_ECONFIG);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "redis://h:abc"));
    /* A bad URL with a password is quoted without it. */
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", "redis://bob:Hunter2Secret@h:bad/1"),
                     RC_ECONFIG);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "bob:***@h:bad"));
    ck_assert_ptr_null(strstr(rc_errmsg(), "Hunter2Secret"));
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", "redis://:Hunter2Secret@/1"), RC_ECONFIG);
    ck_assert_ptr_null(strstr(rc_errmsg(), "Hunter2Secret"));
    /* Unchanged. */
    ck_assert_str_eq(s.redis_host, "localhost");
    ck_assert_ptr_null(s.redis_password);
}
END_TEST

START_TEST(test_tls_and_sentinel_settings)
{
    rc_settings s;
    ck_assert_int_eq(rc_settings_defaults(&s), RC_OK);
    ck_assert(!s.redis_tls);
    ck_assert(s.redis_tls_verify);
    /* rediss:// is TLS, with the same syntax. */
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", "rediss://u:pw@h:6380/2"), RC_OK);
    ck_assert(s.redis_tls);
    ck_assert_str_eq(s.redis_host, "h");
    ck_assert_int_eq(s.redis_port, 6380);
    ck_assert_int_eq(s.redis_db, 2);
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", "rediss://h:x"), RC_ECONFIG);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "REDIS_URL"));
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_URL", "redis://h"), RC_OK);
    ck_assert(!s.redis_tls);
    /* Sentinel lists and a cluster's seeds are checked entry by entry. */
    const char *lists[] = {"REDIS_SENTINELS", "REDIS_CLUSTER_NODES"};
    char **fields[] = {&s.redis_sentinels, &s.redis_cluster_nodes};
    for (size_t k = 0; k < 2; k++) {
        ck_assert_int_eq(rc_settings_set(&s, lists[k], "a:26379, [::1]:26380,b:1"), RC_OK);
        ck_assert_str_eq(*fields[k], "a:26379, [::1]:26380,b:1");
        const char *bad_lists[] = {"a", "a:", "a:0", "a:70000", "a:26379,", ":1", "::1:5", "a:1x"};
        for (size_t i = 0; i < sizeof bad_lists / sizeof bad_lists[0]; i++) {
            ck_assert_msg(rc_settings_set(&s, lists[k], bad_lists[i]) == RC_ECONFIG,
                          "%s: %s accepted", lists[k], bad_lists[i]);
            ck_assert_ptr_nonnull(strstr(rc_errmsg(), lists[k]));
        }
        ck_assert_str_eq(*fields[k], "a:26379, [::1]:26380,b:1"); /* unchanged */
        ck_assert_int_eq(rc_settings_set(&s, lists[k], ""), RC_OK);
        ck_assert_ptr_null(*fields[k]);
    }
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_TLS_VERIFY", "maybe"), RC_ECONFIG);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "REDIS_TLS_VERIFY"));
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_TLS_CA_FILE", "/x/ca.pem"), RC_OK);
    ck_assert_str_eq(s.redis_tls_ca_file, "/x/ca.pem");
    ck_assert_int_eq(rc_settings_set(&s, "REDIS_TLS_CA_FILE", ""), RC_OK);
    ck_assert_ptr_null(s.redis_tls_ca_file);
    rc_settings_clear(&s);
}
END_TEST

START_TEST(test_env_file)
{
    char *path = write_env("# comment\n\n"
                           "REDIS_URL=redis://filehost:7001/4\n"
                           "export CACHE_KEY_PREFIX=\"app: x\"\n"
                           "  CACHE_HERO_TTL = 42  \n"
                           "LOG_LEVEL='debug'\n"
                           "SOMETHING_ELSE=ignored\n"
                           "REDIS_PASSWORD=filepass\n");
    rc_settings l;
    ck_assert_int_eq(rc_settings_load(&l, path), RC_OK);
    ck_assert_str_eq(l.redis_host, "filehost");
    ck_assert_int_eq(l.redis_port, 7001);
    ck_assert_int_eq(l.redis_db, 4);
    ck_assert_str_eq(l.cache_key_prefix, "app: x");
    ck_assert_int_eq(l.cache_hero_ttl, 42);
    ck_assert_str_eq(l.log_level, "debug");
    ck_assert_str_eq(l.redis_password, "filepass");
    rc_settings_clear(&l);
    free(path);
}
END_TEST

START_TEST(test_env_missing_file_ok)
{
    rc_settings l;
    ck_assert_int_eq(rc_settings_load(&l, "/nonexistent/dir/.env"), RC_OK);
    ck_assert_int_eq(l.redis_port, 6379);
    rc_settings_clear(&l);
}
END_TEST

START_TEST(test_env_malformed_line)
{
    char *path = write_env("CACHE_HERO_TTL=5\nREDIS_PASSWORD=topsecretpw\nthis line is wrong\n");
    rc_settings l;
    ck_assert_int_eq(rc_settings_load(&l, path), RC_ECONFIG);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), path));
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), ":3:"));
    ck_assert_ptr_null(strstr(rc_errmsg(), "topsecretpw"));
    ck_assert_ptr_null(l.redis_host); /* cleared on failure */
    free(path);
    path = write_env("OK=1\nBAD-NAME=2\n");
    ck_assert_int_eq(rc_settings_load(&l, path), RC_ECONFIG);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), ":2:"));
    free(path);
    path = write_env("A=\"unterminated\n");
    ck_assert_int_eq(rc_settings_load(&l, path), RC_ECONFIG);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), ":1:"));
    free(path);
    /* A bad value in the file names the variable and the value. */
    path = write_env("REDIS_PORT=seventy\n");
    ck_assert_int_eq(rc_settings_load(&l, path), RC_ECONFIG);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "REDIS_PORT"));
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "seventy"));
    free(path);
}
END_TEST

START_TEST(test_environment_wins)
{
    char *path = write_env("CACHE_HERO_TTL=42\nREDIS_URL=redis://filehost:7001/4\n"
                           "CACHE_STORY_TTL=7\n");
    setenv("CACHE_HERO_TTL", "99", 1);
    setenv("REDIS_HOST", "envhost", 1);
    setenv("CIRCUIT_BREAKER_TIMEOUT", "2.5", 1);
    rc_settings l;
    ck_assert_int_eq(rc_settings_load(&l, path), RC_OK);
    ck_assert_int_eq(l.cache_hero_ttl, 99);
    ck_assert_int_eq(l.cache_story_ttl, 7);
    ck_assert_str_eq(l.redis_host, "envhost");
    ck_assert_int_eq(l.redis_port, 7001);
    ck_assert_double_eq(l.circuit_breaker_timeout, 2.5);
    rc_settings_clear(&l);
    /* A bad environment value is refused like any other. */
    setenv("REDIS_MAX_CONNECTIONS", "lots", 1);
    ck_assert_int_eq(rc_settings_load(&l, path), RC_ECONFIG);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "REDIS_MAX_CONNECTIONS"));
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "lots"));
    unsetenv("REDIS_MAX_CONNECTIONS");
    /* REDIS_URL from the environment, password never in the message. */
    setenv("REDIS_URL", "rediss://u:EnvSecretPw@h:bad", 1);
    ck_assert_int_eq(rc_settings_load(&l, NULL), RC_ECONFIG);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "REDIS_URL"));
    ck_assert_ptr_null(strstr(rc_errmsg(), "EnvSecretPw"));
    unsetenv("REDIS_URL");
    free(path);
}
END_TEST

START_TEST(test_env_example_lists_defaults)
{
    /* .env.example at the top of the tree: every variable is listed, and
     * loading it gives exactly the defaults. */
    char path[4096];
    snprintf(path, sizeof path, "%s", __FILE__);
    char *slash = strrchr(path, '/');
    ck_assert_ptr_nonnull(slash);
    snprintf(slash, sizeof path - (size_t)(slash - path), "/../.env.example");
    char *text = th_read_file(path, NULL);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    for (size_t i = 0; i < sizeof all_vars / sizeof all_vars[0]; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "\n%s=", all_vars[i]);
        char commented[64];
        snprintf(commented, sizeof commented, "\n#%s=", all_vars[i]);
        ck_assert_msg(strstr(text, needle) || strstr(text, commented), "%s not listed",
                      all_vars[i]);
    }
    free(text);
    rc_settings l;
    ck_assert_int_eq(rc_settings_load(&l, path), RC_OK);
    ck_assert_int_eq(l.redis_enabled, s.redis_enabled);
    ck_assert_str_eq(l.redis_host, s.redis_host);
    ck_assert_int_eq(l.redis_port, s.redis_port);
    ck_assert_int_eq(l.redis_db, s.redis_db);
    ck_assert_ptr_null(l.redis_password);
    ck_assert_int_eq(l.redis_max_connections, s.redis_max_connections);
    ck_assert_double_eq(l.redis_socket_timeout, s.redis_socket_timeout);
    ck_assert_int_eq(l.cache_default_ttl, s.cache_default_ttl);
    ck_assert_int_eq(l.cache_hero_ttl, s.cache_hero_ttl);
    ck_assert_int_eq(l.cache_child_ttl, s.cache_child_ttl);
    ck_assert_int_eq(l.cache_story_ttl, s.cache_story_ttl);
    ck_assert_int_eq(l.cache_negative_ttl, s.cache_negative_ttl);
    ck_assert_str_eq(l.cache_key_prefix, s.cache_key_prefix);
    ck_assert_int_eq(l.cache_fallback_enabled, s.cache_fallback_enabled);
    ck_assert_int_eq(l.cache_fallback_max_entries, s.cache_fallback_max_entries);
    ck_assert_int_eq(l.circuit_breaker_threshold, s.circuit_breaker_threshold);
    ck_assert_double_eq(l.circuit_breaker_timeout, s.circuit_breaker_timeout);
    ck_assert_str_eq(l.database_path, s.database_path);
    ck_assert_str_eq(l.log_level, s.log_level);
    ck_assert(l.cache_metrics_enabled && s.cache_metrics_enabled);
    ck_assert_int_eq(l.cache_stats_flush_interval, 5);
    ck_assert_int_eq(s.cache_stats_flush_interval, 5);
    rc_settings_clear(&l);
}
END_TEST

/* A bad URL of any shape is quoted without its password: whatever stands
 * before the last '@' and could be one is "***". */
START_TEST(test_bad_url_any_shape_redacted)
{
    static const struct {
        const char *url, *shown; /* shown: must appear in the message */
    } cases[] = {
        {"redis:/u:SuperSecret@127.0.0.1:6379", "redis:/***@127.0.0.1:6379"},
        {"redis//:SuperSecret@h", "***@h"},
        {"redis:u:SuperSecret@h", "redis:***@h"},
        {"redis:///u:SuperSecret@h:bad", "redis:///u:***@h:bad"},
        {"http://u:SuperSecret@h", "http://u:***@h"},
        {"redis://SuperSecret@h:bad", "redis://***@h:bad"},
        {"unix://u:SuperSecret@h/x.sock", "unix://u:***@h/x.sock"},
        {"redis://u:SuperSecret@h:1/x", "redis://u:***@h:1/x"},
        {"redis://u:Super@Secret@h:0", "redis://u:***@h:0"},
        {" redis://u:SuperSecret@h", "***@h"},
        {"@:SuperSecret@h", "***@h"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_msg(rc_settings_set(&s, "REDIS_URL", cases[i].url) == RC_ECONFIG,
                      "%s accepted", cases[i].url);
        ck_assert_msg(strstr(rc_errmsg(), "Secret") == NULL, "%s: %s", cases[i].url,
                      rc_errmsg());
        ck_assert_msg(strstr(rc_errmsg(), cases[i].shown) != NULL, "%s: %s",
                      cases[i].url, rc_errmsg());
    }
    ck_assert_ptr_null(s.redis_password);
}
END_TEST

/* A NUL byte in a .env line is refused, naming the file and the line:
 * values are never cut short at it. */
START_TEST(test_env_nul_refused)
{
    static const char text[] = "CACHE_HERO_TTL=5\nREDIS_PASSWORD=ab\0cd\n";
    char *path = th_tmpfile(".env");
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, sizeof text - 1, f), sizeof text - 1);
    fclose(f);
    rc_settings l;
    ck_assert_int_eq(rc_settings_load(&l, path), RC_ECONFIG);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), path));
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), ":2:"));
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "NUL"));
    ck_assert_ptr_null(l.redis_host); /* cleared on failure */
    free(path);
}
END_TEST

static Suite *settings_suite(void)
{
    Suite *s = suite_create("settings");
    const th_case cases[] = {
        {"defaults", test_defaults},
        {"every_variable", test_every_variable},
        {"bad_values", test_bad_values_refused},
        {"url_forms", test_url_forms},
        {"bad_urls", test_bad_urls},
        {"tls_and_sentinel_settings", test_tls_and_sentinel_settings},
        {"env_file", test_env_file},
        {"env_missing", test_env_missing_file_ok},
        {"env_malformed", test_env_malformed_line},
        {"environment_wins", test_environment_wins},
        {"env_example", test_env_example_lists_defaults},
        {"bad_url_any_shape_redacted", test_bad_url_any_shape_redacted},
        {"env_nul_refused", test_env_nul_refused},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], setup, teardown, 0);
    return s;
}

int main(void)
{
    return th_run_suite(settings_suite());
}
