/*
 * tale.h - internals of the `tale` program (demo and operator CLI): the
 * application (settings, SQLite database, cache service and the three cached
 * repositories), sample data, output helpers and the demo.
 */
#ifndef TALE_H
#define TALE_H

#include "repocache/cache.h"
#include "repocache/cached_repository.h"
#include "repocache/codec.h"
#include "repocache/entity.h"
#include "repocache/repository.h"
#include "repocache/settings.h"
#include "repocache/sqlite_repository.h"
#include "repocache/status.h"
#include "repocache/strategy.h"

#include <stdbool.h>
#include <stdio.h>

/* Exit codes of every tale command (tale_exit_code maps a status to one):
 * 0 success; 3 the entity asked for does not exist (RC_ENOTFOUND); 2 bad
 * usage, bad input or bad settings (RC_EINVAL, RC_EDECODE, RC_ECONFIG),
 * and nothing was written; 1 any other failure. */
enum {
    TALE_EXIT_OK = 0,
    TALE_EXIT_FAIL = 1,     /* any other failure */
    TALE_EXIT_USAGE = 2,    /* bad usage or bad input; nothing written */
    TALE_EXIT_NOTFOUND = 3  /* the entity is absent */
};

/* Status of a failed write to stdout (errno's text in rc_errmsg()): tale's
 * own, not a library status. tale_fail names it; it exits 1. */
#define TALE_EWRITE (-100)

/* The entity kinds: the built-in strategies, in their order
 * (rc_strategy_builtin_name). */
enum { TALE_HERO = 0, TALE_CHILD = 1, TALE_STORY = 2, TALE_NKINDS = 3 };

/* The built-in strategy of kind k (0 <= k < TALE_NKINDS) with the default
 * TTLs, static: its ns names the kind, its entity and codec handle the
 * kind's entities. */
const rc_strategy *tale_kind(int k);
/* Index of the kind called name, or -1. */
int tale_kind_index(const char *name);

/* Everything a subcommand works with. */
typedef struct tale_app {
    const rc_settings *settings;     /* settings (borrowed) */
    rc_sqlite_db *db;                /* the SQLite file (owned) */
    rc_cache *cache;                 /* the cache service (owned) */
    rc_strategy strategy[TALE_NKINDS]; /* built-in strategies from settings */
    rc_repo *sqlite[TALE_NKINDS];    /* SQLite repositories (owned) */
    rc_repo *cached[TALE_NKINDS];    /* cached decorators over them (owned) */
} tale_app;

/* Opens the database named by s->database_path, the cache service and the
 * repositories. s is borrowed and must outlive *a. RC_OK or a status with a message printed to
 * stderr; on failure *a is closed. */
int tale_app_open(tale_app *a, const rc_settings *s);
/* Wraps the app's SQLite repositories in cached repositories over cache
 * (borrowed): out[i] owned by the caller (rc_repo_free). For the demo's
 * second service. */
int tale_wrap(tale_app *a, rc_cache *cache, rc_repo *out[TALE_NKINDS]);
/* Releases everything; safe on a zeroed or partly opened app. */
void tale_app_close(tale_app *a);

/* Maps a library status to an exit code (ENOTFOUND 3, EINVAL/EDECODE/
 * ECONFIG 2, others 1). */
int tale_exit_code(int status);
/* Prints "tale: what: <status message>[: detail]" to stderr; returns the
 * exit code for status. */
int tale_fail(const char *what, int status);

/* Prints e (of kind k) as indented JSON in the wire layout, with a newline,
 * and flushes f. RC_OK, RC_ENOMEM, or TALE_EWRITE when f refused the text. */
int tale_print_entity(FILE *f, const rc_strategy *k, const void *e);
/* Prints the entities of l as an indented JSON array, with a newline (as
 * tale_print_entity). */
int tale_print_list(FILE *f, const rc_strategy *k, const rc_list *l);

/* ---- sample data (tale_seed.c); every result owned by the caller ---- */

/* Hero number i; language NULL alternates en / ru. NULL on ENOMEM. */
rc_hero *tale_sample_hero(unsigned i, const char *language);
/* Child number i. NULL on ENOMEM. */
rc_child *tale_sample_child(unsigned i);
/* Story number i, about child (may be NULL). NULL on ENOMEM. */
rc_story *tale_sample_story(unsigned i, const rc_child *child);
/* Saves n sample heroes, children and stories (stories about the children
 * made, round robin). made_children (may be NULL) receives the saved
 * children. RC_OK or the first failing status. */
int tale_seed(rc_repo *heroes, rc_repo *children, rc_repo *stories,
              unsigned nheroes, unsigned nchildren, unsigned nstories,
              rc_list *made_children);

/* Saves counts[k] sample entities of each kind k straight into a's SQLite
 * repositories, in transactions of TALE_SEED_BATCH (rc_sqlite_batch), then
 * invalidates each namespace written once (the cache is never filled by a
 * bulk load). progress: a line on stderr per batch. RC_OK or the first
 * failing status; an invalidation that could not reach Redis is not one
 * (it is a pending delete: see rc_cache_stats). */
int tale_seed_batched(tale_app *a, const unsigned counts[TALE_NKINDS],
                      bool progress);
#define TALE_SEED_BATCH 1000u

/* ---- help (tale_help.c) ---- */

/* Whether name is a tale command. */
bool tale_is_command(const char *name);
/* The usage: every command's synopsis and the options. */
void tale_print_usage(FILE *f);
/* The help of one command; 0, or -1 when there is no such command. */
int tale_print_help(FILE *f, const char *command);

/* ---- stats (tale_stats.c) ---- */

/* Prints the stats table of kind only (-1: every kind): this process's
 * figures, the fleet totals, the cache service. RC_OK or a status. */
int tale_stats_table(tale_app *a, int only);
/* Prints the Prometheus text of the service and of the fleet. */
int tale_stats_prometheus(tale_app *a);
/* The fleet totals of kind k as a JSON object (null when none were sent or
 * Redis could not be asked; NULL when out of memory). */
struct json_t *tale_fleet_json(tale_app *a, int k);

/* ---- the demo (tale_demo.c) ---- */

/* Runs the four scenes against a's database, printing to stdout. Returns an
 * exit code. */
int tale_demo(tale_app *a);

/* Monotonic seconds. */
double tale_now(void);

#endif
