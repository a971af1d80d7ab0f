/* tracking.c - server-assisted invalidation for the near cache (see
 * tracking.h). */
#include "cache/tracking.h"
#include "cache/wire.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/strset.h"
#include "repocache/status.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ST_COHERENT 1u        /* tracking armed, both connections sound */
#define ST_PENDING 2u         /* the subscriber has unread bytes */
#define CHANNEL "__redis__:invalidate"
#define BACKOFF_MIN 0.05      /* seconds between failed arms, doubling */
#define BACKOFF_MAX 1.0       /* ... up to this */

struct rc_tracking {
    rc_pool *pool;            /* connection settings (borrowed) */
    char where[300];          /* for messages */
    int log_level;            /* LOG_LEVEL */
    double ping_s;            /* period of the liveness check */
    double timeout_s;         /* a PING unanswered this long loses coherence */
    rc_tracking_hooks hooks;  /* what to do to the near cache */
    pthread_mutex_t mu;       /* guards prefixes, rearm, stop, started */
    rc_strset prefixes;       /* tracked key prefixes */
    bool rearm;               /* prefixes changed or a loss was asked for */
    bool stop;                /* the thread must end */
    bool started;             /* the thread runs */
    pthread_t thread;         /* the background thread */
    int wake[2];              /* pipe that wakes the thread */
    pthread_mutex_t sub_mu;   /* guards sub and sub_broken */
    rc_link *sub;        /* the subscriber, or NULL */
    atomic_int quiet_fd;      /* sub's socket when a poll of it tells whether
                                 anything is unread (not TLS: a session may
                                 hold bytes the socket no longer has), else -1 */
    atomic_uint draining;     /* drains under way (each holds sub_mu) */
    bool sub_broken;          /* EOF or an error was read on sub */
    rc_link *ctl;        /* the control connection (thread only) */
    double ctl_pong_due;      /* the pending TRACKINGINFO is due by then (0: none; thread only) */
    unsigned moves;           /* the pool's moves when last armed (thread only) */
    atomic_uint state;        /* ST_* */
    _Atomic double drained;   /* when the last finished drain began */
    atomic_uint_fast64_t drains; /* drains begun (changed under sub_mu) */
    atomic_uint_fast64_t invalidations, losses, arms; /* statistics */
};

/* ---- coherence ---- */

static void wake_thread(rc_tracking *t)
{
    char b = 1;
    ssize_t w = write(t->wake[1], &b, 1);
    (void)w; /* a full pipe already wakes it */
}

/* Stops serving and empties the near cache; counts and logs the loss (a
 * warning, or debug when routine: a namespace added). */
static void lose_as(rc_tracking *t, const char *why, int level)
{
    unsigned was = atomic_exchange(&t->state, 0);
    t->hooks.flush(t->hooks.ud);
    if (was & ST_COHERENT) {
        atomic_fetch_add(&t->losses, 1);
        rc_log(t->log_level, level, "near_coherence_lost",
               "redis at %s: near cache coherence lost (%s); emptied, not serving "
               "until tracking is re-armed", t->where, why);
    }
}

static void lose(rc_tracking *t, const char *why)
{
    lose_as(t, why, RC_LOG_WARNING);
}

void rc_tracking_lose(rc_tracking *t, const char *why)
{
    if (!t)
        return;
    lose(t, why);
    pthread_mutex_lock(&t->mu);
    t->rearm = true;
    pthread_mutex_unlock(&t->mu);
    wake_thread(t);
}

/* Applies one pub/sub reply of the subscriber; sub_mu held. */
static void handle(rc_tracking *t, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = r->element[0]->str;
    if (strcmp(kind, "message") != 0 || r->elements != 3)
        return;
    const redisReply *payload = r->element[2];
    if (payload->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < payload->elements; i++)
            if (payload->element[i]->type == REDIS_REPLY_STRING)
                t->hooks.invalidate(t->hooks.ud, payload->element[i]->str);
        atomic_fetch_add(&t->invalidations, payload->elements);
    } else { /* NIL: FLUSHALL / FLUSHDB */
        t->hooks.flush(t->hooks.ud);
        atomic_fetch_add(&t->invalidations, 1);
    }
}

void rc_tracking_sync(rc_tracking *t)
{
    uint_fast64_t seen = atomic_load(&t->drains);
    pthread_mutex_lock(&t->sub_mu);
    if (atomic_load(&t->drains) != seen) {
        /* a drain began after we were called and is over (we hold the
         * mutex): what had reached the socket by then is applied */
        pthread_mutex_unlock(&t->sub_mu);
        return;
    }
    atomic_fetch_add(&t->drains, 1);
    atomic_fetch_add(&t->draining, 1); /* before a byte is read: see quiet() */
    double began = rc_clock_monotonic(NULL);
    atomic_fetch_and(&t->state, ~ST_PENDING);
    int got = t->sub && !t->sub_broken ? 1 : 0;
    while (got > 0) {
        got = rc_wire_feed(t->sub, false);
        void *r = NULL;
        while (got >= 0 && redisReaderGetReply(t->sub->reader, &r) == REDIS_OK && r) {
            handle(t, r);
            freeReplyObject(r);
            r = NULL;
        }
        if (got < 0 || t->sub->reader->err) {
            t->sub_broken = true;
            got = -1;
        }
    }
    bool broken = t->sub && t->sub_broken;
    /* published once what it read is applied: a hit that sees it knows
     * everything that reached the socket before `began` is */
    atomic_store_explicit(&t->drained, began, memory_order_release);
    atomic_fetch_sub(&t->draining, 1);
    pthread_mutex_unlock(&t->sub_mu);
    if (broken) {
        lose(t, "subscriber connection closed");
        wake_thread(t);
    }
}

bool rc_tracking_ready(rc_tracking *t, bool strict)
{
    return rc_tracking_ready_at(t, strict, rc_clock_monotonic(NULL));
}

/* Whether everything that has reached the subscriber is applied, without
 * a lock: a poll of its socket finds nothing to read, no drain is under way
 * (one may have read bytes it has not applied yet: its count went up before
 * its first read), and the socket polled is still the subscriber's. One
 * system call, which threads make at once (a drain serializes them). */
static bool quiet(rc_tracking *t)
{
    int fd = atomic_load(&t->quiet_fd);
    if (fd < 0)
        return false;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 0) != 0)
        return false; /* bytes to read (or an error): a drain will tell */
    return atomic_load(&t->draining) == 0 && atomic_load(&t->quiet_fd) == fd;
}

bool rc_tracking_ready_all(rc_tracking *const *t, size_t n, double now)
{
    struct pollfd p[16];
    int fds[16];
    bool all = n <= 16;
    for (size_t i = 0; all && i < n; i++) {
        fds[i] = atomic_load(&t[i]->quiet_fd);
        p[i] = (struct pollfd){fds[i], POLLIN, 0};
        all = fds[i] >= 0 &&
              atomic_load_explicit(&t[i]->state, memory_order_acquire) == ST_COHERENT;
    }
    all = all && poll(p, (nfds_t)n, 0) == 0;
    for (size_t i = 0; all && i < n; i++) /* as quiet() for each */
        all = atomic_load(&t[i]->draining) == 0 && atomic_load(&t[i]->quiet_fd) == fds[i];
    for (size_t i = 0; !all && i < n; i++)
        if (!rc_tracking_ready_at(t[i], true, now))
            return false;
    return true;
}

bool rc_tracking_ready_at(rc_tracking *t, bool strict, double now)
{
    unsigned s = atomic_load_explicit(&t->state, memory_order_acquire);
    if (s == ST_COHERENT && !strict &&
        now - atomic_load_explicit(&t->drained, memory_order_acquire) <= RC_TRACKING_MAX_LAG)
        return true;
    if (s == ST_COHERENT && strict && quiet(t))
        return true;
    if (!(s & ST_COHERENT))
        return false;
    rc_tracking_sync(t);
    return atomic_load(&t->state) & ST_COHERENT;
}

/* ---- arming ---- */

/* Closes both connections (thread only). */
static void disconnect(rc_tracking *t)
{
    atomic_store(&t->state, 0);
    pthread_mutex_lock(&t->sub_mu);
    atomic_store(&t->quiet_fd, -1); /* before the socket's number can be reused */
    rc_link_close(t->sub);
    t->sub = NULL;
    t->sub_broken = false;
    pthread_mutex_unlock(&t->sub_mu);
    rc_link_close(t->ctl);
    t->ctl = NULL;
    t->ctl_pong_due = 0;
}

/* The subscriber: its client id, then SUBSCRIBE. */
static rc_link *open_subscriber(rc_tracking *t, long long *id)
{
    rc_link *c = NULL;
    if (rc_pool_connect(t->pool, &c) != RC_OK)
        return NULL;
    const char *cid[2] = {"CLIENT", "ID"}, *sub[2] = {"SUBSCRIBE", CHANNEL};
    redisReply *r = rc_wire_command(c, 2, cid);
    bool ok = r && r->type == REDIS_REPLY_INTEGER;
    *id = ok ? r->integer : 0;
    freeReplyObject(r);
    r = ok ? rc_wire_command(c, 2, sub) : NULL;
    ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 3;
    freeReplyObject(r);
    if (!ok) {
        rc_link_close(c);
        return NULL;
    }
    return c;
}

/* The control connection with tracking on for every prefix. */
static rc_link *open_control(rc_tracking *t, long long sub_id, const rc_strset *prefixes)
{
    rc_link *c = NULL;
    if (rc_pool_connect(t->pool, &c) != RC_OK)
        return NULL;
    size_t argc = 6 + 2 * prefixes->n;
    const char **argv = malloc(argc * sizeof *argv);
    char id[32];
    snprintf(id, sizeof id, "%lld", sub_id);
    redisReply *r = NULL;
    if (argv) {
        const char *head[6] = {"CLIENT", "TRACKING", "on", "REDIRECT", id, "BCAST"};
        memcpy(argv, head, sizeof head);
        for (size_t i = 0; i < prefixes->n; i++) {
            argv[6 + 2 * i] = "PREFIX";
            argv[7 + 2 * i] = prefixes->items[i];
        }
        r = rc_wire_command(c, (int)argc, argv);
    }
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r && !ok && r->type == REDIS_REPLY_ERROR)
        rc_log(t->log_level, RC_LOG_WARNING, "near_tracking_refused", "redis at %s: CLIENT TRACKING refused: %.*s",
               t->where, (int)(r->len > 200 ? 200 : r->len), r->str);
    freeReplyObject(r);
    free(argv);
    if (!ok) {
        rc_link_close(c);
        return NULL;
    }
    return c;
}

/* Connects both sides and arms tracking; true when coherent. */
static bool arm(rc_tracking *t)
{
    rc_strset prefixes = {0};
    bool ok = true;
    pthread_mutex_lock(&t->mu);
    t->rearm = false;
    for (size_t i = 0; ok && i < t->prefixes.n; i++)
        ok = rc_strset_add(&prefixes, t->prefixes.items[i]) == RC_OK;
    pthread_mutex_unlock(&t->mu);
    long long id = 0;
    t->moves = atomic_load(&t->pool->moves);
    rc_link *sub = ok ? open_subscriber(t, &id) : NULL;
    rc_link *ctl = sub ? open_control(t, id, &prefixes) : NULL;
    rc_strset_clear(&prefixes);
    rc_clearerr();
    if (!ctl) {
        rc_link_close(sub);
        return false;
    }
    pthread_mutex_lock(&t->sub_mu);
    t->sub = sub;
    atomic_store(&t->quiet_fd, sub->ssl ? -1 : sub->fd);
    pthread_mutex_unlock(&t->sub_mu);
    t->ctl = ctl;
    /* Placeholders set while tracking was off die here; anything filled from
     * now on was read from Redis after tracking was on. */
    t->hooks.flush(t->hooks.ud);
    atomic_store(&t->state, ST_COHERENT);
    atomic_fetch_add(&t->arms, 1);
    rc_log(t->log_level, RC_LOG_DEBUG, "near_tracking_armed", "redis at %s: near cache tracking armed", t->where);
    return true;
}

/* ---- the thread ---- */

/* Sends the periodic CLIENT TRACKINGINFO on the control connection (the
 * liveness check of both sides: see the top of the file); false when the
 * last one is overdue. */
static bool check_control(rc_tracking *t, double now)
{
    const char *info[2] = {"CLIENT", "TRACKINGINFO"};
    if (t->ctl_pong_due)
        return now <= t->ctl_pong_due;
    rc_cmd cmd = {2, info, NULL};
    if (rc_wire_send(t->ctl, &cmd, 1))
        t->ctl_pong_due = now + t->timeout_s;
    return true;
}

/* Whether a CLIENT TRACKINGINFO reply says tracking is on and its redirect
 * (the subscriber) alive. */
static bool tracking_sound(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "flags") != 0 ||
        r->element[1]->type != REDIS_REPLY_ARRAY)
        return false;
    bool on = false;
    for (size_t i = 0; i < r->element[1]->elements; i++) {
        const redisReply *f = r->element[1]->element[i];
        if (f->type != REDIS_REPLY_STRING || strcmp(f->str, "broken_redirect") == 0)
            return false;
        on = on || strcmp(f->str, "on") == 0;
    }
    return on;
}

/* Reads the control connection's replies; false on EOF, an error, or a
 * TRACKINGINFO that says tracking is off or its subscriber gone. */
static bool read_control(rc_tracking *t)
{
    int got = 1;
    while (got > 0) { /* until the link has nothing (TLS may hold records) */
        got = rc_wire_feed(t->ctl, false);
        void *r = NULL;
        while (got >= 0 && redisReaderGetReply(t->ctl->reader, &r) == REDIS_OK && r) {
            if (tracking_sound(r))
                t->ctl_pong_due = 0;
            else
                got = -1;
            freeReplyObject(r);
            r = NULL;
        }
        if (t->ctl->reader->err) /* a reader that failed is dead */
            got = -1;
    }
    return got >= 0;
}

/* Whether the thread must stop, or re-arm. */
static bool must_stop(rc_tracking *t, bool *rearm)
{
    char buf[64];
    while (read(t->wake[0], buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&t->mu);
    bool stop = t->stop;
    *rearm = t->rearm;
    pthread_mutex_unlock(&t->mu);
    return stop;
}

/* Watches both connections until coherence is lost or the thread must stop;
 * returns why (NULL when the subscriber's reader already handled it, or the
 * thread must stop). */
static const char *watch_until_lost(rc_tracking *t)
{
    double next_ping = rc_clock_monotonic(NULL) + t->ping_s;
    for (;;) {
        double now = rc_clock_monotonic(NULL);
        int ms = (int)((next_ping - now) * 1000) + 1;
        struct pollfd fds[3] = {{t->sub->fd, POLLIN, 0}, {t->ctl->fd, POLLIN, 0},
                                {t->wake[0], POLLIN, 0}};
        int n = poll(fds, 3, ms < 1 ? 1 : ms);
        bool rearm = false;
        if (n < 0 && errno != EINTR)
            return "poll failed";
        if (fds[2].revents && must_stop(t, &rearm))
            return NULL; /* closing: nothing to report */
        if (rearm) {
            lose_as(t, "a namespace was added: tracking is re-armed", RC_LOG_DEBUG);
            return NULL;
        }
        if (fds[0].revents) {
            atomic_fetch_or(&t->state, ST_PENDING);
            rc_tracking_sync(t);
            if (!(atomic_load(&t->state) & ST_COHERENT))
                return NULL; /* sync saw the subscriber close */
        }
        if (fds[1].revents && !read_control(t))
            return "control connection closed or tracking off";
        now = rc_clock_monotonic(NULL);
        if (now >= next_ping) {
            if (!check_control(t, now))
                return "redis stopped answering";
            if (atomic_load(&t->pool->moves) != t->moves) /* Sentinel */
                return "the pool moved to another master";
            next_ping = now + t->ping_s;
        }
    }
}

/* Sleeps up to s seconds, or until woken. */
static void nap(rc_tracking *t, double s)
{
    struct pollfd fd = {t->wake[0], POLLIN, 0};
    poll(&fd, 1, (int)(s * 1000));
}

static void *run(void *arg)
{
    rc_tracking *t = arg;
    double backoff = BACKOFF_MIN;
    bool rearm = false;
    while (!must_stop(t, &rearm)) {
        if (!arm(t)) {
            nap(t, backoff);
            backoff = backoff * 2 < BACKOFF_MAX ? backoff * 2 : BACKOFF_MAX;
            continue;
        }
        backoff = BACKOFF_MIN;
        const char *why = watch_until_lost(t);
        if (why)
            lose(t, why);
        disconnect(t);
    }
    disconnect(t);
    return NULL;
}

/* ---- lifecycle ---- */

int rc_tracking_new(rc_pool *pool, const char *where, int log_level, double ping_s,
                    rc_tracking_hooks hooks, rc_tracking **out)
{
    rc_tracking *t = calloc(1, sizeof *t);
    *out = NULL;
    if (!t)
        return rc_seterr(RC_ENOMEM, "out of memory");
    if (pipe(t->wake) != 0) {
        free(t);
        return rc_seterr(RC_ENOMEM, "tracking: cannot make a pipe");
    }
    fcntl(t->wake[0], F_SETFL, O_NONBLOCK);
    fcntl(t->wake[1], F_SETFL, O_NONBLOCK);
    pthread_mutex_init(&t->mu, NULL);
    pthread_mutex_init(&t->sub_mu, NULL);
    atomic_init(&t->quiet_fd, -1);
    t->pool = pool;
    snprintf(t->where, sizeof t->where, "%s", where);
    t->log_level = log_level;
    t->ping_s = ping_s;
    t->timeout_s = pool->link.timeout;
    t->hooks = hooks;
    *out = t;
    return RC_OK;
}

void rc_tracking_free(rc_tracking *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    bool started = t->started;
    pthread_mutex_unlock(&t->mu);
    if (started) {
        wake_thread(t);
        pthread_join(t->thread, NULL);
    }
    rc_strset_clear(&t->prefixes);
    pthread_mutex_destroy(&t->mu);
    pthread_mutex_destroy(&t->sub_mu);
    close(t->wake[0]);
    close(t->wake[1]);
    free(t);
}

int rc_tracking_add_prefix(rc_tracking *t, const char *prefix)
{
    int st = RC_OK;
    pthread_mutex_lock(&t->mu);
    if (!rc_strset_has(&t->prefixes, prefix)) {
        st = rc_strset_add(&t->prefixes, prefix);
        t->rearm = st == RC_OK;
    }
    if (st == RC_OK && !t->started)
        t->started = pthread_create(&t->thread, NULL, run, t) == 0;
    if (st == RC_OK && !t->started)
        st = RC_ENOMEM;
    pthread_mutex_unlock(&t->mu);
    if (st == RC_OK)
        wake_thread(t);
    return st ? rc_seterr(st, "tracking: out of memory") : RC_OK;
}

void rc_tracking_get_stats(rc_tracking *t, rc_tracking_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!t)
        return;
    st->invalidations = atomic_load(&t->invalidations);
    st->losses = atomic_load(&t->losses);
    st->arms = atomic_load(&t->arms);
    st->coherent = atomic_load(&t->state) & ST_COHERENT;
}
