/*
 * fuzz_keys.c - the key builders (rc_strategy_key_id / key_all /
 * key_query, repocache/strategy.h): no two different requests share a key.
 *
 * Input: a key prefix, then up to four requests, each one byte (which
 * strategy: hero, child, story or a user strategy whose queries escape
 * their arguments; which key: by id, all, or one of its queries) and its
 * arguments, every string cut at a NUL. Oracle: two requests that build the
 * same key are the same request (strategy, key kind, query, arguments).
 *
 * The built-in queries do not escape (their keys are the Python ones): per
 * strategy.h their arguments after the first are constrained ones (an age,
 * a gender), so a request giving one of those a ':' is outside the
 * contract and is skipped. The user strategy's arguments are unrestricted.
 */
#include "fuzz.h"
#include "core/str.h"

#include "repocache/strategy.h"

#include <stdbool.h>
#include <string.h>

#define NREQ 4

/* One request: strategy, key kind and arguments, and the key built. */
typedef struct request {
    int st;                               /* index in the strategies */
    int kind;                             /* -2 by id, -1 all, else a query */
    char *args[RC_STRATEGY_MAX_ARGS];     /* the id or the query arguments */
    size_t nargs;                         /* how many */
    char *key;                            /* built key; NULL: none */
} request;

static const rc_query_def user_queries[] = {
    {.name = "pair", .segment = "pair", .nargs = 2, .escape_args = true},
    {.name = "one", .segment = "one", .nargs = 1, .escape_args = true},
    {.name = "three", .segment = "tri", .nargs = 3, .escape_args = true},
};

/* hero, child, story and the user strategy "item". */
static const rc_strategy *strategies(void)
{
    static rc_strategy st[4];
    static bool made;
    if (!made) {
        FUZZ_CHECK(rc_strategy_hero(NULL, &st[0]) == RC_OK, "hero");
        FUZZ_CHECK(rc_strategy_child(NULL, &st[1]) == RC_OK, "child");
        FUZZ_CHECK(rc_strategy_story(NULL, &st[2]) == RC_OK, "story");
        st[3] = st[0];
        st[3].ns = "item";
        st[3].queries = user_queries;
        st[3].nqueries = sizeof user_queries / sizeof user_queries[0];
        FUZZ_CHECK(rc_strategy_check(&st[3]) == RC_OK, "%s", rc_errmsg());
        made = true;
    }
    return st;
}

/* Reads one request from r and builds its key (left NULL when the builder
 * refuses it or it is outside the contract). */
static void read_request(fuzz_reader *r, const char *prefix, request *q)
{
    unsigned b = fuzz_byte(r);
    const rc_strategy *st = &strategies()[b % 4];
    q->st = (int)(b % 4);
    q->kind = (int)((b / 4) % (st->nqueries + 2)) - 2;
    q->nargs = q->kind == -2 ? 1 : q->kind == -1 ? 0 : st->queries[q->kind].nargs;
    for (size_t i = 0; i < q->nargs; i++)
        q->args[i] = fuzz_field(r);
    int rc;
    if (q->kind == -2)
        rc = rc_strategy_key_id(st, prefix, q->args[0], &q->key);
    else if (q->kind == -1)
        rc = rc_strategy_key_all(st, prefix, &q->key);
    else {
        const rc_query_def *d = &st->queries[q->kind];
        /* the contract (strategy.h, RC_QUERY_ARG_MAX): such a request must be
         * refused, with no key */
        bool outside = false;
        for (size_t i = 0; i < q->nargs; i++)
            outside = outside || strlen(q->args[i]) > RC_QUERY_ARG_MAX ||
                      (((d->int_args >> i) & 1) && !rc_int_canonical(q->args[i], NULL)) ||
                      (!d->escape_args && i > 0 && strchr(q->args[i], ':'));
        rc = rc_strategy_key_query(st, prefix, d->name,
                                   (const char *const *)q->args, q->nargs, &q->key);
        if (outside) {
            FUZZ_CHECK(rc == RC_EINVAL && !q->key, "an argument outside the contract "
                       "was given a key: %s", q->key ? q->key : "");
            return;
        }
    }
    FUZZ_CHECK(rc == RC_OK || (rc == RC_EINVAL && q->kind == -2),
               "%s for a valid request: %s", rc_status_name(rc), rc_errmsg());
}

/* Whether a and b are the same request. */
static bool same_request(const request *a, const request *b)
{
    if (a->st != b->st || a->kind != b->kind || a->nargs != b->nargs)
        return false;
    for (size_t i = 0; i < a->nargs; i++)
        if (strcmp(a->args[i], b->args[i]) != 0)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader r = {data, size};
    char *prefix = fuzz_field(&r);
    request q[NREQ];
    memset(q, 0, sizeof q);
    for (int i = 0; i < NREQ && r.n > 0; i++)
        read_request(&r, prefix, &q[i]);
    for (int i = 0; i < NREQ; i++)
        for (int j = i + 1; q[i].key && j < NREQ; j++)
            FUZZ_CHECK(!q[j].key || strcmp(q[i].key, q[j].key) != 0 ||
                           same_request(&q[i], &q[j]),
                       "two requests share the key '%s'", q[i].key);
    for (int i = 0; i < NREQ; i++) {
        for (size_t k = 0; k < q[i].nargs; k++)
            free(q[i].args[k]);
        free(q[i].key);
    }
    free(prefix);
    return 0;
}
