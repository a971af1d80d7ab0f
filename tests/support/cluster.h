/*
 * cluster.h - a real Redis Cluster on 127.0.0.1 for the tests: six
 * redis-server processes (harness.h), made three masters with one replica
 * each by `redis-cli --cluster create ... --cluster-replicas 1`. Each node
 * has a cluster bus port of its own (--cluster-port: a free client port
 * above 55535 leaves no room for port + 10000), its nodes.conf in its own
 * directory, a node timeout of one second, and no persistence.
 *
 * The servers die with the test process (PR_SET_PDEATHSIG in harness.c), so
 * a failed or crashed test leaves none behind; th_cluster_stop ends them
 * at once.
 *
 * Nodes are named by their index in node[]; which of them are masters is
 * what redis-cli chose, and changes with a failover (th_cluster_roles).
 */
#ifndef RC_TEST_CLUSTER_H
#define RC_TEST_CLUSTER_H

#include "harness.h"

#include <check.h>

#include <stdbool.h>

#define TH_CLUSTER_NODES 6

typedef struct th_cluster {
    th_redis node[TH_CLUSTER_NODES];
    char id[TH_CLUSTER_NODES][41];   /* CLUSTER MYID of each node */
    int master_of[TH_CLUSTER_NODES]; /* a replica's master (index), or -1
                                        for a master or a dead node */
    double started_in;               /* seconds th_cluster_start took */
} th_cluster;

/* Starts the six servers, creates the cluster and waits until it is
 * whole: every node answers CLUSTER INFO with cluster_state:ok and
 * cluster_slots_ok:16384, knows the other five in their roles (CLUSTER
 * NODES) and lists all six in CLUSTER SLOTS (Redis 7.0 leaves out a replica
 * whose offset is still 0, so one key is written and deleted on each
 * master once its replica has synced), and every replica's
 * master_link_status is up. Returns 0, or -1 with a message on stderr
 * (whatever was started is stopped). */
int th_cluster_start(th_cluster *c);
/* Kills every node still running and waits for each (safe to call twice). */
void th_cluster_stop(th_cluster *c);
/* SIGKILL node i and wait for it. */
void th_cluster_kill(th_cluster *c, int i);
/* Whether node i runs. */
bool th_cluster_alive(const th_cluster *c, int i);
/* Reads each live node's role (ROLE) into c->master_of. Returns 0 or -1. */
int th_cluster_roles(th_cluster *c);
/* The node owning slot, as CLUSTER SLOTS of live node asked says; -1 when
 * none does (or the reply names a port that is not ours). */
int th_cluster_owner(th_cluster *c, int asked, unsigned slot);
/* A migration of slot from master `from` to master `to`, in its steps:
 * begin (SETSLOT IMPORTING on to, MIGRATING on from), move one key
 * (MIGRATE), finish (MIGRATE of every key left, then SETSLOT NODE on to,
 * from and every other master). Each returns 0, or -1 with a message. */
int th_cluster_migration_begin(th_cluster *c, unsigned slot, int from, int to);
int th_cluster_migrate_key(th_cluster *c, int from, int to, const char *key);
int th_cluster_migration_finish(th_cluster *c, unsigned slot, int from, int to);
/* The three steps at once (begin, finish). */
int th_cluster_migrate_slot(th_cluster *c, unsigned slot, int from, int to);
/* Waits up to seconds for a replica of killed master `killed` (by
 * c->master_of before the kill) to take over: ROLE says master and its
 * CLUSTER INFO says cluster_state:ok. Returns its index (c->master_of
 * refreshed), or -1 on time-out. */
int th_cluster_await_failover(th_cluster *c, int killed, double seconds);

/* Starts c, runs suite s (th_run_suite) and stops c: a suite's exit
 * status (EXIT_FAILURE when the cluster does not start). */
int th_cluster_run(th_cluster *c, Suite *s);
/* One command on node i over a fresh connection (Check-asserted: the node
 * answers); the caller frees the reply. */
redisReply *th_cluster_cmd(th_cluster *c, int i, const char *fmt, ...);
/* The URL services of the tests reach c by (service.h: REDIS_CLUSTER_NODES
 * = its first two nodes as seeds), in a static buffer. */
const char *th_cluster_url(const th_cluster *c);
/* A master of c now (roles read again) other than `not` (-1: any);
 * Check-aborts when there is none. */
int th_cluster_other_master(th_cluster *c, int not );

#endif
