/* slotmap.c - see slotmap.h. */
#include "cache/slotmap.h"

#include "cache/wire.h"
#include "core/hostports.h"
#include "core/str.h"
#include "repocache/status.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAD(...) rc_seterr(RC_EINVAL, "CLUSTER SLOTS reply: " __VA_ARGS__)

static const char *type_name(int type)
{
    switch (type) {
    case REDIS_REPLY_STRING:
        return "a string";
    case REDIS_REPLY_ARRAY:
        return "an array";
    case REDIS_REPLY_INTEGER:
        return "an integer";
    case REDIS_REPLY_NIL:
        return "nil";
    case REDIS_REPLY_STATUS:
        return "a status";
    case REDIS_REPLY_ERROR:
        return "an error";
    default:
        return "another type";
    }
}

static rc_slotmap *map_new(uint64_t generation)
{
    rc_slotmap *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    for (unsigned s = 0; s < RC_SLOTS; s++)
        m->master[s] = RC_SLOTMAP_NONE;
    m->generation = generation;
    m->refs = 1;
    return m;
}

static void map_free(rc_slotmap *m)
{
    for (size_t i = 0; m && i < m->n; i++)
        free(m->nodes[i].host);
    if (m)
        free(m->nodes);
    free(m);
}

rc_slotmap *rc_slotmap_hold(rc_slotmap *m)
{
    __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
    return m;
}

void rc_slotmap_release(rc_slotmap *m)
{
    if (m && __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0)
        map_free(m);
}

int rc_slotmap_find(const rc_slotmap *m, const char *host, int port)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->nodes[i].port == port && strcmp(m->nodes[i].host, host) == 0)
            return (int)i;
    return -1;
}

const rc_slotnode *rc_slotmap_master(const rc_slotmap *m, unsigned slot)
{
    if (slot >= RC_SLOTS || m->master[slot] == RC_SLOTMAP_NONE)
        return NULL;
    return &m->nodes[m->master[slot]];
}

/* The index of host:port in m, added (with id) when new; -1 for memory. */
static int add_node(rc_slotmap *m, const char *host, int port, const char *id)
{
    int i = rc_slotmap_find(m, host, port);
    rc_slotnode *grown;
    if (i >= 0) {
        if (id && !m->nodes[i].id[0])
            snprintf(m->nodes[i].id, sizeof m->nodes[i].id, "%s", id);
        return i;
    }
    grown = realloc(m->nodes, (m->n + 1) * sizeof *grown);
    if (!grown)
        return -1;
    m->nodes = grown;
    memset(&m->nodes[m->n], 0, sizeof m->nodes[m->n]);
    if (!(m->nodes[m->n].host = rc_strdup(host)))
        return -1;
    m->nodes[m->n].port = port;
    if (id)
        snprintf(m->nodes[m->n].id, sizeof m->nodes[m->n].id, "%s", id);
    return (int)m->n++;
}

static bool is_node_id(const redisReply *r)
{
    if (r->type != REDIS_REPLY_STRING || r->len != 40)
        return false;
    for (size_t i = 0; i < 40; i++)
        if (!isxdigit((unsigned char)r->str[i]))
            return false;
    return true;
}

/* Checks node k of range ri ([host, port, id?, ...]) and adds it to m:
 * its index (>= 0), or the status (RC_EINVAL, RC_ENOMEM; negative). */
static int take_node(rc_slotmap *m, const redisReply *r, size_t ri, size_t k,
                     const char *asked_host)
{
    const char *host;
    const char *id = NULL;
    if (r->type != REDIS_REPLY_ARRAY)
        return BAD("range %zu: node %zu is %s, not an array", ri, k,
                   type_name(r->type));
    if (r->elements < 2)
        return BAD("range %zu: node %zu has no port", ri, k);
    const redisReply *h = r->element[0], *p = r->element[1];
    if (h->type == REDIS_REPLY_NIL ||
        (h->type == REDIS_REPLY_STRING &&
         (h->len == 0 || strcmp(h->str, "?") == 0))) {
        if (!asked_host)
            return BAD("range %zu: node %zu has no endpoint", ri, k);
        host = asked_host;
    } else if (h->type != REDIS_REPLY_STRING) {
        return BAD("range %zu: node %zu: host is %s, not a string", ri, k,
                   type_name(h->type));
    } else if (h->len >= sizeof((rc_redirect *)0)->host ||
               strlen(h->str) != h->len) {
        return BAD("range %zu: node %zu: host is not a host name", ri, k);
    } else {
        host = h->str;
    }
    if (p->type != REDIS_REPLY_INTEGER)
        return BAD("range %zu: node %zu: port is %s, not an integer", ri, k,
                   type_name(p->type));
    if (p->integer < 1 || p->integer > 65535)
        return BAD("range %zu: node %zu: port %lld outside 1-65535", ri, k,
                   p->integer);
    if (r->elements >= 3) {
        if (!is_node_id(r->element[2]))
            return BAD("range %zu: node %zu: the node id is not 40 hex digits",
                       ri, k);
        id = r->element[2]->str;
    }
    int i = add_node(m, host, (int)p->integer, id);
    if (i < 0)
        return rc_seterr(RC_ENOMEM, "slot map: out of memory");
    if (m->n > RC_SLOTMAP_MAX_NODES)
        return BAD("more than %d nodes", RC_SLOTMAP_MAX_NODES);
    return i;
}

/* Checks range ri ([start, end, master, replicas...]) and maps it. */
static int take_range(rc_slotmap *m, const redisReply *r, size_t ri,
                      const char *asked_host)
{
    if (r->type != REDIS_REPLY_ARRAY)
        return BAD("range %zu is %s, not an array", ri, type_name(r->type));
    if (r->elements < 3)
        return BAD(
            "range %zu has %zu elements, not at least 3 (start, end, master)",
            ri, r->elements);
    const redisReply *a = r->element[0], *b = r->element[1];
    if (a->type != REDIS_REPLY_INTEGER || b->type != REDIS_REPLY_INTEGER)
        return BAD("range %zu: start and end must be integers (%s, %s)", ri,
                   type_name(a->type), type_name(b->type));
    if (a->integer < 0 || a->integer >= RC_SLOTS)
        return BAD("range %zu: slot %lld outside 0-16383", ri, a->integer);
    if (b->integer < 0 || b->integer >= RC_SLOTS)
        return BAD("range %zu: slot %lld outside 0-16383", ri, b->integer);
    if (a->integer > b->integer)
        return BAD("range %zu: start %lld after end %lld", ri, a->integer,
                   b->integer);
    int master = -1;
    for (size_t k = 2; k < r->elements; k++) {
        int i = take_node(m, r->element[k], ri, k - 2, asked_host);
        if (i < 0)
            return i;
        if (k == 2)
            master = i;
    }
    m->nodes[master].master = true;
    for (long long s = a->integer; s <= b->integer; s++) {
        if (m->master[s] != RC_SLOTMAP_NONE)
            return BAD("range %zu: slot %lld is in an earlier range too", ri,
                       s);
        m->master[s] = (uint16_t)master;
    }
    return RC_OK;
}

int rc_slotmap_build(const redisReply *reply, const char *asked_host,
                     uint64_t generation, rc_slotmap **out)
{
    rc_slotmap *m;
    *out = NULL;
    if (!reply)
        return BAD("none");
    if (reply->type == REDIS_REPLY_ERROR)
        return BAD("the server answered %s", reply->str);
    if (reply->type != REDIS_REPLY_ARRAY)
        return BAD("%s, not an array", type_name(reply->type));
    if (reply->elements == 0)
        return BAD("no slot range (no slot is assigned)");
    if (!(m = map_new(generation)))
        return rc_seterr(RC_ENOMEM, "slot map: out of memory");
    for (size_t ri = 0; ri < reply->elements; ri++) {
        int st = take_range(m, reply->element[ri], ri, asked_host);
        if (st != RC_OK) {
            map_free(m);
            return st;
        }
    }
    *out = m;
    return RC_OK;
}

int rc_redirect_parse(const char *err, rc_redirect *out)
{
    const char *p, *colon, *end;
    unsigned long slot;
    char *stop;
    memset(out, 0, sizeof *out);
    if (!err)
        return rc_seterr(RC_EINVAL, "redirect: no error text");
    if (strncmp(err, "MOVED ", 6) == 0) {
        p = err + 6;
    } else if (strncmp(err, "ASK ", 4) == 0) {
        p = err + 4;
        out->ask = true;
    } else {
        return rc_seterr(RC_EINVAL, "redirect: not MOVED or ASK: %.60s", err);
    }
    if (!isdigit((unsigned char)*p))
        return rc_seterr(RC_EINVAL, "redirect: no slot in: %.60s", err);
    slot = strtoul(p, &stop, 10);
    if (slot >= RC_SLOTS || stop - p > 5 || *stop != ' ')
        return rc_seterr(RC_EINVAL, "redirect: bad slot in: %.60s", err);
    p = stop + 1;
    end = p + strlen(p);
    colon = strrchr(p, ':');
    if (!colon || colon[1] == '\0' || strchr(p, ' '))
        return rc_seterr(RC_EINVAL, "redirect: no host:port in: %.60s", err);
    if ((size_t)(colon - p) >= sizeof out->host)
        return rc_seterr(RC_EINVAL, "redirect: host too long in: %.60s", err);
    int port;
    if (!rc_int_canonical(colon + 1, &port) || port < 1 || port > 65535 ||
        end - colon > 6)
        return rc_seterr(RC_EINVAL, "redirect: bad port in: %.60s", err);
    memcpy(out->host, p, (size_t)(colon - p));
    out->host[colon - p] = '\0';
    out->slot = (unsigned)slot;
    out->port = port;
    return RC_OK;
}

int rc_slotmap_moved(const rc_slotmap *m, const rc_redirect *r,
                     const char *asked_host, rc_slotmap **out)
{
    const char *host = r->host[0] ? r->host : asked_host;
    rc_slotmap *n;
    int i;
    *out = NULL;
    if (r->ask)
        return rc_seterr(RC_EINVAL, "redirect: an ASK does not move the slot");
    if (!host)
        return rc_seterr(RC_EINVAL, "redirect: MOVED names no host");
    if (!(n = map_new(m->generation + 1)))
        return rc_seterr(RC_ENOMEM, "slot map: out of memory");
    memcpy(n->master, m->master, sizeof n->master);
    for (size_t k = 0; k < m->n; k++) {
        if (add_node(n, m->nodes[k].host, m->nodes[k].port,
                     m->nodes[k].id[0] ? m->nodes[k].id : NULL) < 0) {
            map_free(n);
            return rc_seterr(RC_ENOMEM, "slot map: out of memory");
        }
        n->nodes[k].master = m->nodes[k].master;
    }
    if ((i = add_node(n, host, r->port, NULL)) < 0) {
        map_free(n);
        return rc_seterr(RC_ENOMEM, "slot map: out of memory");
    }
    n->nodes[i].master = true;
    n->master[r->slot] = (uint16_t)i;
    *out = n;
    return RC_OK;
}

/* CLUSTER SLOTS from one seed, built into *out. */
static int ask_seed(const rc_link_config *cfg, const rc_hostport *hp,
                    const char *password, uint64_t generation, rc_slotmap **out)
{
    rc_link *l = NULL;
    redisReply *rep;
    int st = rc_link_open(cfg, hp->host, hp->port, NULL, &l);
    if (st != RC_OK)
        return st;
    if (password) {
        const char *auth[] = {"AUTH", password};
        rep = rc_wire_command(l, 2, auth);
        if (!rep || rep->type != REDIS_REPLY_STATUS) {
            st = rc_seterr(RC_EAUTH, "AUTH refused: %s",
                           rep && rep->type == REDIS_REPLY_ERROR ? rep->str
                                                                 : l->errstr);
            freeReplyObject(rep);
            rc_link_close(l);
            return st;
        }
        freeReplyObject(rep);
    }
    const char *slots[] = {"CLUSTER", "SLOTS"};
    rep = rc_wire_command(l, 2, slots);
    if (!rep)
        st = rc_seterr(RC_EUNAVAILABLE, "CLUSTER SLOTS: %s", l->errstr);
    else
        st = rc_slotmap_build(rep, hp->host, generation, out);
    freeReplyObject(rep);
    rc_link_close(l);
    return st;
}

int rc_slotmap_discover(const rc_link_config *cfg, const char *seeds,
                        const char *password, uint64_t generation,
                        rc_slotmap **out)
{
    rc_hostports list;
    char why[480] = "";
    size_t used = 0;
    int st;
    *out = NULL;
    if ((st = rc_hostports_parse("REDIS_CLUSTER_NODES", seeds, &list)) != RC_OK)
        return st;
    for (size_t i = 0; i < list.n; i++) {
        rc_clearerr();
        st = ask_seed(cfg, &list.items[i], password, generation, out);
        if (st == RC_OK || st == RC_ENOMEM)
            break;
        if (used < sizeof why) {
            int w = snprintf(why + used, sizeof why - used, "%s%s:%d: %s",
                             used ? "; " : "", list.items[i].host,
                             list.items[i].port, rc_errmsg());
            used += w > 0 ? (size_t)w : 0;
        }
    }
    rc_hostports_clear(&list);
    if (st == RC_OK || st == RC_ENOMEM)
        return st;
    return rc_seterr(RC_EUNAVAILABLE,
                     "cluster: no seed answered CLUSTER SLOTS: %s", why);
}

void rc_slotmap_cell_init(rc_slotmap_cell *c)
{
    pthread_mutex_init(&c->mu, NULL);
    c->map = NULL;
}

void rc_slotmap_cell_destroy(rc_slotmap_cell *c)
{
    rc_slotmap_release(c->map);
    c->map = NULL;
    pthread_mutex_destroy(&c->mu);
}

rc_slotmap *rc_slotmap_cell_get(rc_slotmap_cell *c)
{
    rc_slotmap *m;
    pthread_mutex_lock(&c->mu);
    m = c->map ? rc_slotmap_hold(c->map) : NULL;
    pthread_mutex_unlock(&c->mu);
    return m;
}

bool rc_slotmap_cell_swap(rc_slotmap_cell *c, rc_slotmap *m)
{
    rc_slotmap *old = NULL;
    bool taken = false;
    pthread_mutex_lock(&c->mu);
    if (!c->map || m->generation > c->map->generation) {
        old = c->map;
        c->map = m;
        taken = true;
    }
    pthread_mutex_unlock(&c->mu);
    rc_slotmap_release(taken ? old : m);
    return taken;
}
