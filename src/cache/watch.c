/*
 * watch.c - the cache service's own thread (one per service with Redis
 * enabled). While Redis is not trusted (the breaker open, or a recovery not
 * yet done) it probes in the background, so that no caller pays for it and
 * recovery does not wait for one: a PING through the breaker (which first
 * verifies Redis's identity and applies the outbox, identity.c), the first
 * RC_PROBE_MIN seconds after the breaker opened, then doubling per failed
 * probe up to RC_PROBE_MAX (0.5 s): the cache is trusted again at most
 * RC_PROBE_MAX + the recovery's round trips after Redis answers again. In
 * the meantime it removes the outbox's new rows from the fallback every
 * CACHE_OUTBOX_POLL_MS. While Redis is trusted it applies the outbox to
 * Redis every CACHE_OUTBOX_POLL_MS (reading the stores only: Redis is
 * called only when a row is pending).
 */
#include "cache/service.h"

#include <errno.h>
#include <time.h>

#define RC_PROBE_MIN 0.05 /* first background probe after the breaker opened, s */
#define RC_PROBE_MAX 0.5  /* the bound of the probes' backoff, s */

/* rc_redis_fn of the poll: applies the outbox on the context. */
static int poll_fn(rc_cache *c, rc_link *ctx, void *ud)
{
    (void)ud;
    return rc_outbox_apply(c, ctx);
}

/* Waits until seconds have passed or the thread must stop; true to go on. */
static bool nap(rc_cache *c, double seconds)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    double ns = until.tv_nsec + seconds * 1e9;
    until.tv_sec += (time_t)(ns / 1e9);
    until.tv_nsec = (long)(ns - (double)(time_t)(ns / 1e9) * 1e9);
    pthread_mutex_lock(&c->wake_mu);
    while (!c->watch_stop &&
           pthread_cond_timedwait(&c->wake_cv, &c->wake_mu, &until) != ETIMEDOUT)
        ;
    bool go_on = !c->watch_stop;
    pthread_mutex_unlock(&c->wake_mu);
    return go_on;
}

static void *watch_main(void *p)
{
    rc_cache *c = p;
    double poll = c->outbox_poll_ms / 1000.0, backoff = RC_PROBE_MIN, next_probe = 0;
    double wait = poll;
    while (nap(c, wait)) {
        double now = rc_breaker_now(&c->breaker);
        wait = poll;
        if (rc_breaker_state(&c->breaker) == RC_CIRCUIT_CLOSED &&
            rc_identity_trusted(c)) {
            backoff = RC_PROBE_MIN;
            next_probe = 0;
            rc_outbox_flush(c); /* marks first: a row applied is not pending */
            if (rc_outbox_pending(c))
                rc_call_with(c, poll_fn, NULL);
            continue;
        }
        rc_outbox_to_fallback(c);
        if (next_probe == 0)
            next_probe = now + backoff;
        if (now >= next_probe) {
            rc_breaker_expire(&c->breaker); /* this probe is ours to send */
            if (rc_cache_health_check(c) == RC_OK)
                backoff = RC_PROBE_MIN;
            else
                backoff = backoff * 2 < RC_PROBE_MAX ? backoff * 2 : RC_PROBE_MAX;
            next_probe = rc_breaker_now(&c->breaker) + backoff;
        }
        double left = next_probe - rc_breaker_now(&c->breaker);
        wait = left < poll ? (left > 0.001 ? left : 0.001) : poll;
    }
    return NULL;
}

int rc_watch_start(rc_cache *c)
{
    if (pthread_mutex_init(&c->wake_mu, NULL) != 0)
        return RC_ENOMEM;
    if (pthread_cond_init(&c->wake_cv, NULL) != 0) {
        pthread_mutex_destroy(&c->wake_mu);
        return RC_ENOMEM;
    }
    c->watch_stop = false;
    if (pthread_create(&c->watch_thread, NULL, watch_main, c) != 0) {
        pthread_cond_destroy(&c->wake_cv);
        pthread_mutex_destroy(&c->wake_mu);
        return RC_ENOMEM;
    }
    c->watch_running = true;
    return RC_OK;
}

void rc_watch_stop(rc_cache *c)
{
    if (!c->watch_running)
        return;
    pthread_mutex_lock(&c->wake_mu);
    c->watch_stop = true;
    pthread_cond_signal(&c->wake_cv);
    pthread_mutex_unlock(&c->wake_mu);
    pthread_join(c->watch_thread, NULL);
    pthread_cond_destroy(&c->wake_cv);
    pthread_mutex_destroy(&c->wake_mu);
    c->watch_running = false;
}
