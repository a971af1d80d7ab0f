/* epoch.c - epoch-based reclamation (see epoch.h). */
#include "core/epoch.h"

#include <stdatomic.h>
#include <stdlib.h>

typedef struct slot {
    _Alignas(64) atomic_uint_fast64_t epoch; /* 0: not in a walk */
    atomic_bool taken;                        /* held by a live thread */
} slot;

static slot slots[RC_EPOCH_SLOTS];
static atomic_size_t slots_used;           /* slots ever taken (a high mark) */
static atomic_uint_fast64_t global_epoch = 1;

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t key;                  /* its destructor gives the slot back */
static _Thread_local slot *mine;
static _Thread_local bool none_left;       /* looked once and found none */

static void give_back(void *p)
{
    slot *s = p;
    atomic_store(&s->epoch, 0);
    atomic_store(&s->taken, false);
}

/* In a child of fork only the forking thread lives: the others' slots go. */
static void after_fork(void)
{
    for (size_t i = 0; i < RC_EPOCH_SLOTS; i++)
        if (&slots[i] != mine)
            give_back(&slots[i]);
}

static void make_key(void)
{
    (void)pthread_key_create(&key, give_back);
    (void)pthread_atfork(NULL, NULL, after_fork);
}

/* This thread's slot, taken on first use; NULL when none is free. */
static slot *my_slot(void)
{
    if (mine || none_left)
        return mine;
    pthread_once(&key_once, make_key);
    for (size_t i = 0; i < RC_EPOCH_SLOTS; i++) {
        bool no = false;
        if (atomic_compare_exchange_strong(&slots[i].taken, &no, true)) {
            if (pthread_setspecific(key, &slots[i]) != 0) {
                atomic_store(&slots[i].taken, false);
                break;
            }
            size_t used = atomic_load(&slots_used);
            while (used < i + 1 && !atomic_compare_exchange_weak(&slots_used, &used, i + 1))
                ;
            return mine = &slots[i];
        }
    }
    none_left = true;
    return NULL;
}

bool rc_epoch_enter(void)
{
    slot *s = my_slot();
    if (!s)
        return false;
    /* relaxed: the fence orders it before the walk's loads */
    atomic_store_explicit(&s->epoch, atomic_load(&global_epoch), memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    return true;
}

void rc_epoch_leave(void)
{
    atomic_store_explicit(&mine->epoch, 0, memory_order_release);
}

/* The oldest epoch a walk in progress published (UINT64_MAX: none). */
static uint64_t oldest_walk(void)
{
    uint64_t oldest = UINT64_MAX;
    size_t used = atomic_load(&slots_used);
    for (size_t i = 0; i < used; i++) {
        uint64_t e = atomic_load(&slots[i].epoch);
        if (e && e < oldest)
            oldest = e;
    }
    return oldest;
}

int rc_retire_list_init(rc_retire_list *l)
{
    l->head = NULL;
    return pthread_mutex_init(&l->mu, NULL);
}

void rc_retire(rc_retire_list *l, rc_retired *o, void (*free_fn)(rc_retired *))
{
    o->free_fn = free_fn;
    o->stamp = atomic_fetch_add(&global_epoch, 1);
    atomic_thread_fence(memory_order_seq_cst);
    uint64_t oldest = oldest_walk();
    rc_retired *done = NULL;
    pthread_mutex_lock(&l->mu);
    o->next = l->head;
    l->head = o;
    /* A walk that published an epoch after an object's stamp began after
     * its unlink: objects stamped before the oldest walk's epoch are free. */
    for (rc_retired **p = &l->head; *p;) {
        rc_retired *r = *p;
        if (r->stamp < oldest) {
            *p = r->next;
            r->next = done;
            done = r;
        } else
            p = &r->next;
    }
    pthread_mutex_unlock(&l->mu);
    while (done) {
        rc_retired *next = done->next;
        done->free_fn(done);
        done = next;
    }
}

void rc_retire_list_destroy(rc_retire_list *l)
{
    for (rc_retired *r = l->head, *next; r; r = next) {
        next = r->next;
        r->free_fn(r);
    }
    l->head = NULL;
    pthread_mutex_destroy(&l->mu);
}
