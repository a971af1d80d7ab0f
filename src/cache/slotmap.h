/*
 * slotmap.h - Redis Cluster's slot map as the service will see it: for each
 * of the 16384 slots the node serving it as master, the nodes themselves
 * (host, port, master or replica, node id when the server gave one) and a
 * generation that grows with every new map. Built from a CLUSTER SLOTS reply
 * (RESP2 arrays, as Redis 7.0 answers); patched by a MOVED redirect;
 * discovered from seed nodes (REDIS_CLUSTER_NODES, "host:port,...") over our
 * own links, so TLS and the timeouts of rc_link_config apply.
 *
 * Every field of a reply is checked: a malformed one (wrong types, a slot
 * range outside 0-16383 or reversed, overlapping ranges, a missing or bad
 * port, a bad node id) is refused with a message in rc_errmsg(), never read
 * past. Slots no range names have no master (RC_SLOTMAP_NONE): a cluster
 * partly down still maps the rest.
 *
 * Thread safety: a map is immutable once built, and reference counted
 * (atomically): rc_slotmap_moved makes a new map (copy and patch, one
 * generation up) rather than changing the one readers hold. rc_slotmap_cell
 * is the one current map of a service: readers take a reference under its
 * mutex (rc_slotmap_cell_get), a new map replaces it (rc_slotmap_cell_swap)
 * and the old one is freed when its last reader releases it.
 */
#ifndef RC_CACHE_SLOTMAP_H
#define RC_CACHE_SLOTMAP_H

#include "cache/link.h"
#include "core/slot.h"

#include <hiredis/hiredis.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RC_SLOTMAP_NONE 0xFFFFu   /* a slot no node serves */
#define RC_SLOTMAP_MAX_NODES 1000 /* Redis's own advice: at most ~1000 */

typedef struct rc_slotnode {
    char *host;  /* as the server named it (an IP address, or a name) */
    int port;    /* its client port (TLS port when the cluster uses TLS) */
    bool master; /* serves at least one slot range as master */
    char id[41]; /* node id, or "" when the reply gave none */
} rc_slotnode;

typedef struct rc_slotmap {
    uint16_t master[RC_SLOTS]; /* index into nodes, or RC_SLOTMAP_NONE */
    rc_slotnode *nodes;
    size_t n;
    uint64_t generation;
    int refs; /* atomic; the map is freed at 0 */
} rc_slotmap;

/* Builds a map (one reference, generation as given) from a CLUSTER SLOTS
 * reply. asked_host names the node that answered: an empty or NULL or "?"
 * endpoint in the reply means that host (NULL: such an endpoint is
 * refused). RC_OK; RC_EINVAL naming what is malformed ("CLUSTER SLOTS
 * reply: range 2: slot 16384 outside 0-16383"); RC_ENOMEM. *out is NULL on
 * failure. */
int rc_slotmap_build(const redisReply *reply, const char *asked_host,
                     uint64_t generation, rc_slotmap **out);
/* Another reference to m (returned). */
rc_slotmap *rc_slotmap_hold(rc_slotmap *m);
/* Drops a reference; the last frees m (NULL is fine). */
void rc_slotmap_release(rc_slotmap *m);
/* The master of slot (< RC_SLOTS), or NULL when none serves it. */
const rc_slotnode *rc_slotmap_master(const rc_slotmap *m, unsigned slot);
/* The index of host:port among m's nodes, or -1. */
int rc_slotmap_find(const rc_slotmap *m, const char *host, int port);

/* A MOVED or ASK error, parsed. */
typedef struct rc_redirect {
    bool ask; /* ASK (one command, after ASKING) rather than MOVED */
    unsigned slot;
    char host[256]; /* "" when the server named none (":port": the host
                       the command went to) */
    int port;
} rc_redirect;

/* Parses an error reply's text: "MOVED <slot> <host>:<port>" or
 * "ASK <slot> <host>:<port>" (the host may be an IPv6 address: the last ':'
 * splits). RC_OK; RC_EINVAL with a message for any other text. */
int rc_redirect_parse(const char *err, rc_redirect *out);
/* A new map (one reference, generation m's + 1): m with r's slot served by
 * r's node as master, the node added when m has none at that address
 * (asked_host stands for an empty host, as in rc_slotmap_build). m is not
 * changed. RC_OK; RC_EINVAL (an ASK, or no host to name); RC_ENOMEM. */
int rc_slotmap_moved(const rc_slotmap *m, const rc_redirect *r,
                     const char *asked_host, rc_slotmap **out);

/* Asks each seed of the list ("host:port,...", parsed as REDIS_CLUSTER_NODES
 * with core/hostports.h) in order, over a link opened with cfg (AUTH with
 * password first when non-NULL), until one answers CLUSTER SLOTS with a
 * map that builds. RC_OK; RC_ECONFIG for a bad list; RC_EUNAVAILABLE when
 * no seed did, naming each seed and why ("127.0.0.1:7000: connect failed:
 * Connection refused; ..."); RC_ENOMEM. */
int rc_slotmap_discover(const rc_link_config *cfg, const char *seeds,
                        const char *password, uint64_t generation,
                        rc_slotmap **out);

/* The current map of a service. */
typedef struct rc_slotmap_cell {
    pthread_mutex_t mu;
    rc_slotmap *map; /* NULL until the first swap */
} rc_slotmap_cell;

void rc_slotmap_cell_init(rc_slotmap_cell *c);
/* Releases the current map. */
void rc_slotmap_cell_destroy(rc_slotmap_cell *c);
/* A reference to the current map (the caller releases it), or NULL. */
rc_slotmap *rc_slotmap_cell_get(rc_slotmap_cell *c);
/* Makes m the current map, taking over the caller's reference to it, when
 * its generation is above the current one's (else m is released: a late
 * map never replaces a newer one). Returns whether m became current. */
bool rc_slotmap_cell_swap(rc_slotmap_cell *c, rc_slotmap *m);

#endif
