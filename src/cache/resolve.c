/* resolve.c - getaddrinfo with a deadline (resolve.h). */
#include "cache/resolve.h"

#include "repocache/status.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* One lookup, shared by the waiting caller and the resolving thread; the
 * last of the two to let go frees it. */
typedef struct job {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC */
    int refs;          /* 2 while both hold it */
    bool done;
    int gai;           /* getaddrinfo's result */
    int err;           /* its errno, for EAI_SYSTEM */
    struct addrinfo *res;
    char host[256], port[8];
} job;

static void job_release(job *j)
{
    pthread_mutex_lock(&j->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last)
        return;
    if (j->res)
        freeaddrinfo(j->res);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

static const struct addrinfo hints_tcp = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};

static void *resolver(void *arg)
{
    job *j = arg;
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(j->host, j->port, &hints_tcp, &res);
    int err = errno;
    pthread_mutex_lock(&j->mu);
    j->err = err;
    j->gai = gai;
    j->res = res;
    j->done = true;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    job_release(j);
    return NULL;
}

static int fail(int gai, int err, char *why, size_t why_size)
{
    snprintf(why, why_size, "%s", gai == EAI_SYSTEM ? strerror(err) : gai_strerror(gai));
    return gai == EAI_MEMORY ? RC_ENOMEM : RC_EUNAVAILABLE;
}

/* A job for host:port, or NULL (out of memory). */
static job *job_new(const char *host, const char *port)
{
    job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    pthread_condattr_t ca;
    bool ok = pthread_condattr_init(&ca) == 0;
    ok = ok && pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0;
    ok = ok && pthread_cond_init(&j->cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!ok || pthread_mutex_init(&j->mu, NULL) != 0) {
        if (ok)
            pthread_cond_destroy(&j->cv);
        free(j);
        return NULL;
    }
    j->refs = 2;
    snprintf(j->host, sizeof j->host, "%s", host);
    snprintf(j->port, sizeof j->port, "%s", port);
    return j;
}

int rc_resolve(const char *host, int port, int64_t deadline_ns, struct addrinfo **out,
               char *why, size_t why_size)
{
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    *out = NULL;
    /* A numeric address needs no resolver and cannot wait. */
    struct addrinfo numeric = hints_tcp;
    numeric.ai_flags = AI_NUMERICHOST;
    int gai = getaddrinfo(host, service, &numeric, out);
    if (gai == 0)
        return RC_OK;
    if (gai != EAI_NONAME)
        return fail(gai, errno, why, why_size);
    if (strlen(host) >= sizeof ((job *)0)->host) {
        snprintf(why, why_size, "host name too long");
        return RC_EUNAVAILABLE;
    }
    job *j = job_new(host, service);
    if (!j)
        return rc_seterr(RC_ENOMEM, "out of memory");
    pthread_attr_t attr;
    pthread_t tid;
    bool started = pthread_attr_init(&attr) == 0;
    started = started && pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
              pthread_create(&tid, &attr, resolver, j) == 0;
    pthread_attr_destroy(&attr);
    if (!started) {
        j->refs = 1;
        job_release(j);
        snprintf(why, why_size, "cannot start the resolver thread");
        return RC_EUNAVAILABLE;
    }
    struct timespec until = {(time_t)(deadline_ns / 1000000000),
                             (long)(deadline_ns % 1000000000)};
    pthread_mutex_lock(&j->mu);
    int wait = 0;
    while (!j->done && wait != ETIMEDOUT)
        wait = pthread_cond_timedwait(&j->cv, &j->mu, &until);
    int st = RC_OK;
    if (!j->done) {
        snprintf(why, why_size, "timed out");
        st = RC_EUNAVAILABLE;
    } else if (j->gai != 0) {
        st = fail(j->gai, j->err, why, why_size);
    } else {
        *out = j->res; /* ours now */
        j->res = NULL;
    }
    pthread_mutex_unlock(&j->mu);
    job_release(j);
    return st;
}
