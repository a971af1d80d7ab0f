/*
 * tale_help.c - what `tale --help`, `tale help [COMMAND]` and
 * `tale COMMAND --help` print: the synopsis of every command and one page of
 * help for each. docs/man/tale.1 says the same at length (tests/tale checks
 * that both name every command).
 */
#include "tale.h"

#include <string.h>

typedef struct help_page {
    const char *name;     /* the command */
    const char *synopsis; /* its arguments, one line */
    const char *text;     /* what it does, its options, its exit codes */
} help_page;

static const help_page pages[] = {
    {"seed", "[--heroes N] [--children N] [--stories N]",
     "Adds sample entities (default 10 heroes, 5 children, 10 stories) to the\n"
     "database and prints the counts. Rows are written straight to SQLite in\n"
     "transactions of 1000, never through the cache, so a bulk load sends\n"
     "Redis nothing but, at the end, one invalidation of each namespace it\n"
     "wrote (`invalidate KIND all`): no reader keeps an answer from before\n"
     "the load. Progress goes to stderr when it is a terminal.\n"},
    {"get", "hero|child|story ID",
     "Prints the entity as JSON in the wire layout; exit 3 when absent.\n"},
    {"find", "hero|child|story all|QUERY [ARG...]",
     "Prints the answer of a query as a JSON array. Queries: hero by_language\n"
     "LANG, by_name NAME; child by_name NAME, exact_match NAME AGE GENDER;\n"
     "story by_child_id ID, by_child_name NAME, by_language LANG.\n"},
    {"put", "hero|child|story < entity.json",
     "Reads one entity as JSON on stdin: creates it (no id, or an id not\n"
     "stored) or replaces the stored one; prints the stored entity.\n"},
    {"delete", "hero|child|story ID", "Deletes the entity; exit 3 when absent.\n"},
    {"invalidate", "hero|child|story all|by_id ID|QUERY [ARG...]",
     "Removes cache keys: every key of the entity (all), one id and its\n"
     "negative entry (by_id), or the key of one query; prints how many.\n"},
    {"stats", "[--json|--prometheus] [hero|child|story]",
     "Cache statistics of each entity: this process's counters, the keys of\n"
     "its namespace, and the fleet totals every process sharing the Redis has\n"
     "sent (with their age); then the cache service. --json prints one JSON\n"
     "object, --prometheus the Prometheus text (format 0.0.4).\n"},
    {"health", "[--json]",
     "Whether Redis answers, the circuit state and the fallback; exit 1 when\n"
     "Redis is enabled but unreachable. --json prints one JSON object.\n"},
    {"demo", "",
     "Four scenes against the database (it adds 200 heroes, 20 children and\n"
     "60 stories): SQLite alone, through the cache cold and warm, an update\n"
     "and the keys it invalidated, and Redis unavailable.\n"},
    {"help", "[COMMAND]", "Prints the usage, or the help of one command.\n"},
};

#define NPAGES (sizeof pages / sizeof pages[0])

static const char options_text[] =
    "\n"
    "options (anywhere on the line; -- ends them):\n"
    "  --db=PATH, --db PATH  the SQLite file (default: DATABASE_PATH, tale.db)\n"
    "  -h, --help            this help, or COMMAND --help for one command\n"
    "  --version             the versions of tale and of the library\n"
    "settings: the environment and ./.env (see .env.example); the environment\n"
    "wins. Exit codes: 0 ok, 1 failure, 2 bad usage or input, 3 not found.\n"
    "See tale(1) and repocache(3).\n";

bool tale_is_command(const char *name)
{
    for (size_t i = 0; i < NPAGES; i++)
        if (strcmp(pages[i].name, name) == 0)
            return true;
    return false;
}

void tale_print_usage(FILE *f)
{
    fputs("usage: tale [--db=PATH] COMMAND [ARGS]\n"
          "       tale help [COMMAND] | --help | --version\n\n",
          f);
    for (size_t i = 0; i < NPAGES; i++)
        fprintf(f, "  %-10s %s\n", pages[i].name, pages[i].synopsis);
    fputs(options_text, f);
}

int tale_print_help(FILE *f, const char *command)
{
    for (size_t i = 0; i < NPAGES; i++) {
        if (strcmp(pages[i].name, command) != 0)
            continue;
        fprintf(f, "usage: tale [--db=PATH] %s %s\n\n%s", pages[i].name,
                pages[i].synopsis, pages[i].text);
        return 0;
    }
    return -1;
}
