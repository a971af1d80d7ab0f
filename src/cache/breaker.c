/* breaker.c - the circuit breaker (see breaker.h). */
#include "cache/breaker.h"

#include "core/clock.h"

int rc_breaker_init(rc_breaker *b, int threshold, double period)
{
    if (pthread_mutex_init(&b->mu, NULL) != 0)
        return RC_ENOMEM;
    b->state = RC_CIRCUIT_CLOSED;
    b->threshold = threshold > 0 ? threshold : 1;
    b->base_period = b->period = period > 0 ? period : 1.0;
    b->open_until = b->opened_at = 0;
    b->failures = 0;
    b->opens = 0;
    b->clock = rc_clock_monotonic;
    b->clock_ud = NULL;
    return RC_OK;
}

void rc_breaker_destroy(rc_breaker *b) { pthread_mutex_destroy(&b->mu); }

void rc_breaker_set_clock(rc_breaker *b, rc_clock_fn fn, void *ud)
{
    pthread_mutex_lock(&b->mu);
    b->clock = fn ? fn : rc_clock_monotonic;
    b->clock_ud = fn ? ud : NULL;
    pthread_mutex_unlock(&b->mu);
}

double rc_breaker_now(rc_breaker *b)
{
    pthread_mutex_lock(&b->mu);
    double t = b->clock(b->clock_ud);
    pthread_mutex_unlock(&b->mu);
    return t;
}

static void open_locked(rc_breaker *b, double now)
{
    b->state = RC_CIRCUIT_OPEN;
    b->open_until = now + b->period;
    b->opened_at = now;
    b->opens++;
}

rc_breaker_ticket rc_breaker_acquire(rc_breaker *b)
{
    rc_breaker_ticket t = RC_BREAKER_DENY;
    pthread_mutex_lock(&b->mu);
    switch (b->state) {
    case RC_CIRCUIT_CLOSED:
        t = RC_BREAKER_PASS;
        break;
    case RC_CIRCUIT_OPEN:
        if (b->clock(b->clock_ud) >= b->open_until) {
            b->state = RC_CIRCUIT_HALF_OPEN;
            t = RC_BREAKER_PROBE;
        }
        break;
    case RC_CIRCUIT_HALF_OPEN: /* the probe is in flight */
        break;
    }
    pthread_mutex_unlock(&b->mu);
    return t;
}

bool rc_breaker_report(rc_breaker *b, rc_breaker_ticket t, bool ok)
{
    if (t == RC_BREAKER_DENY)
        return false;
    pthread_mutex_lock(&b->mu);
    uint64_t opens = b->opens;
    double now = b->clock(b->clock_ud);
    if (t == RC_BREAKER_PROBE) {
        if (ok) {
            b->state = RC_CIRCUIT_CLOSED;
            b->failures = 0;
            b->period = b->base_period;
        } else {
            double cap = b->base_period * RC_BREAKER_MAX_FACTOR;
            b->period = b->period * 2 < cap ? b->period * 2 : cap;
            open_locked(b, now);
        }
    } else if (b->state == RC_CIRCUIT_CLOSED) {
        /* Late outcomes of calls that passed before the breaker opened are
         * ignored once it is no longer closed: only the probe decides then. */
        if (ok)
            b->failures = 0;
        else if (++b->failures >= b->threshold)
            open_locked(b, now);
    }
    bool opened = b->opens != opens;
    pthread_mutex_unlock(&b->mu);
    return opened;
}

rc_circuit_state rc_breaker_state(rc_breaker *b)
{
    pthread_mutex_lock(&b->mu);
    rc_circuit_state s = b->state;
    if (s == RC_CIRCUIT_OPEN && b->clock(b->clock_ud) >= b->open_until)
        s = RC_CIRCUIT_HALF_OPEN;
    pthread_mutex_unlock(&b->mu);
    return s;
}

bool rc_breaker_usable(rc_breaker *b)
{
    pthread_mutex_lock(&b->mu);
    bool u = b->state == RC_CIRCUIT_CLOSED ||
             (b->state == RC_CIRCUIT_OPEN && b->clock(b->clock_ud) >= b->open_until);
    pthread_mutex_unlock(&b->mu);
    return u;
}

void rc_breaker_expire(rc_breaker *b)
{
    pthread_mutex_lock(&b->mu);
    if (b->state == RC_CIRCUIT_OPEN)
        b->open_until = b->clock(b->clock_ud);
    pthread_mutex_unlock(&b->mu);
}
