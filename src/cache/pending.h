/*
 * pending.h - remembered deletes: distinct keys (a set, so a key deleted
 * many times during an outage counts once) and patterns, to be replayed when
 * Redis is reachable again. Not thread-safe: the cache holds a mutex.
 */
#ifndef RC_CACHE_PENDING_H
#define RC_CACHE_PENDING_H

#include "core/strset.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

typedef struct rc_pending {
    rc_strset keys;  /* distinct keys, in insertion order */
    rc_strset globs; /* distinct patterns (already prefixed and escaped) */
} rc_pending;

/* An empty set (all zero). */
void rc_pending_init(rc_pending *p);
/* Frees everything and leaves p empty. */
void rc_pending_clear(rc_pending *p);
/* Keys plus patterns held. */
size_t rc_pending_count(const rc_pending *p);
/* Adds a copy of key unless present. RC_OK or RC_ENOMEM (p unchanged). */
int rc_pending_add_key(rc_pending *p, const char *key);
/* Adds a copy of pattern unless present. RC_OK or RC_ENOMEM. */
int rc_pending_add_glob(rc_pending *p, const char *pattern);
/* Forgets every key (patterns stay). */
void rc_pending_forget_keys(rc_pending *p);
/* Moves src's content into dst (which must be empty); src becomes empty. */
void rc_pending_move(rc_pending *dst, rc_pending *src);
/* Adds src's keys and patterns into dst, then clears src. RC_OK, or
 * RC_ENOMEM when some could not be added (they are lost). */
int rc_pending_merge(rc_pending *dst, rc_pending *src);

/* The remembered deletes of one server and the state of their replay
 * (replay.c): the service's own, or with Redis Cluster one per master. */
typedef struct rc_deletes {
    pthread_mutex_t mu;        /* guards pend and inflight */
    rc_pending pend;           /* remembered deletes not yet taken */
    size_t inflight;           /* taken by the replay in progress */
    atomic_size_t count;       /* count(pend) + inflight, read without lock */
    pthread_mutex_t replay_mu; /* one replay at a time; others wait */
    atomic_uint failures;      /* failed replays so far */
} rc_deletes;

/* An empty d. RC_OK or RC_ENOMEM (nothing to destroy then). */
int rc_deletes_init(rc_deletes *d);
/* Frees what d holds. */
void rc_deletes_destroy(rc_deletes *d);

#endif
