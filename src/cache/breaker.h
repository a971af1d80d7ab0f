/*
 * breaker.h - the circuit breaker of the cache service.
 *
 *   closed    --threshold consecutive failures-->  open
 *   open      --open period elapsed, next call-->  half_open (that call is
 *                                                  the one probe)
 *   half_open --probe succeeds-->                  closed (period reset)
 *   half_open --probe fails-->                     open, period doubled, up
 *                                                  to RC_BREAKER_MAX_FACTOR
 *                                                  times the base period
 *
 * While open, and while the probe is in flight, every other call is denied at
 * once. Thread-safe (one mutex). The clock is injectable.
 */
#ifndef RC_CACHE_BREAKER_H
#define RC_CACHE_BREAKER_H

#include "repocache/cache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* The open period grows 2x per failed probe up to this factor of the base
 * (CIRCUIT_BREAKER_TIMEOUT): 30 s by default, capped at 8 x 30 s = 240 s. */
#define RC_BREAKER_MAX_FACTOR 8.0

/* What a caller may do now. */
typedef enum rc_breaker_ticket {
    RC_BREAKER_DENY = 0,  /* do not touch Redis */
    RC_BREAKER_PASS = 1,  /* closed: go ahead */
    RC_BREAKER_PROBE = 2  /* half-open: this call is the single probe */
} rc_breaker_ticket;

typedef struct rc_breaker {
    pthread_mutex_t mu;
    rc_circuit_state state; /* as of the last transition */
    int threshold;          /* consecutive failures that open it */
    double base_period;     /* first open period, seconds */
    double period;          /* current open period, seconds */
    double open_until;      /* clock time when the open period ends */
    double opened_at;       /* clock time of the last closed->open */
    int failures;           /* consecutive failures while closed */
    uint64_t opens;         /* transitions to open (statistics) */
    rc_clock_fn clock;      /* time source */
    void *clock_ud;         /* its argument */
} rc_breaker;

/* Initialises b closed. RC_OK or RC_ENOMEM. */
int rc_breaker_init(rc_breaker *b, int threshold, double period);
/* Releases b's mutex. */
void rc_breaker_destroy(rc_breaker *b);
/* Sets the clock (NULL = CLOCK_MONOTONIC). */
void rc_breaker_set_clock(rc_breaker *b, rc_clock_fn fn, void *ud);
/* The current time on b's clock. */
double rc_breaker_now(rc_breaker *b);
/* Asks to use Redis now; every PASS or PROBE must be answered by exactly one
 * rc_breaker_report with the same ticket. */
rc_breaker_ticket rc_breaker_acquire(rc_breaker *b);
/* Reports the outcome of a call made under ticket t; true when this report
 * opened the breaker. */
bool rc_breaker_report(rc_breaker *b, rc_breaker_ticket t, bool ok);
/* The state; an open breaker whose period has elapsed reads as half_open
 * (the next call will probe). */
rc_circuit_state rc_breaker_state(rc_breaker *b);
/* Ends an open period now, so the next acquire is the probe (the service's
 * background probes, watch.c); a no-op unless open. */
void rc_breaker_expire(rc_breaker *b);
/* Whether acquire would not deny now. */
bool rc_breaker_usable(rc_breaker *b);

#endif
