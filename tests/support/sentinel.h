/*
 * sentinel.h - test support for the Sentinel suites: a master, its replica
 * and three sentinels (redis-server --sentinel, each with its own
 * configuration file in a temporary directory) on free loopback ports,
 * started by the test, failed over (SENTINEL FAILOVER, or the master killed
 * with SIGKILL) and stopped. Every process is a child of the test with
 * PR_SET_PDEATHSIG set, so it dies with the test even when the test fails.
 */
#ifndef RC_TEST_SENTINEL_H
#define RC_TEST_SENTINEL_H

#include "harness.h"

#define TS_SENTINELS 3

typedef struct ts_cluster {
    th_redis servers[2];        /* [0] started as the master, [1] its replica */
    pid_t pid[TS_SENTINELS];    /* the sentinels (0: not running) */
    int port[TS_SENTINELS];
    char conf[TS_SENTINELS][300]; /* their configuration files */
    char name[32];              /* the master's name, "mymaster" */
    char list[128];             /* "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3"
                                   for REDIS_SENTINELS */
    char password[32];          /* the sentinels' (requirepass, and
                                   sentinel-pass between them): "s3ntinel" */
} ts_cluster;

/* Starts everything and waits until every sentinel answers PING, names
 * the master and knows its replica and the other sentinels, and the
 * replica's link to the master is up. Returns 0 or -1 (message on stderr;
 * what was started is stopped). */
int ts_start(ts_cluster *t);
/* Stops every process still running (SIGKILL and wait). */
void ts_stop(ts_cluster *t);

/* The master's port as sentinel i names it, or -1 (no answer). */
int ts_named_port(const ts_cluster *t, int i);
/* The server of ours on port, or NULL. */
th_redis *ts_server(ts_cluster *t, int port);
/* "master", "slave" or "" (no answer): ROLE of the server on port. */
const char *ts_role(int port, char buf[16]);

/* SENTINEL FAILOVER <name>, asked of the sentinels in turn until one
 * accepts (retrying while they say it is not possible yet) within
 * seconds. Returns 0 or -1. */
int ts_failover(ts_cluster *t, double seconds);
/* SIGKILL of the server on port. */
void ts_kill(ts_cluster *t, int port);
/* Waits until every running sentinel names a master other than old_port
 * and that server says role master. Returns its port, or -1 after
 * seconds. */
int ts_wait_new_master(const ts_cluster *t, int old_port, double seconds);
/* Waits until the master on port has a replica whose link is up (INFO
 * replication master_link_status:up on our other server). 0 or -1. */
int ts_wait_replica_synced(ts_cluster *t, int master_port, double seconds);
/* SIGKILL of sentinel i. */
void ts_kill_sentinel(ts_cluster *t, int i);

#endif
