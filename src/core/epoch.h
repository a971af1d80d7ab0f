/*
 * epoch.h - epoch-based reclamation: readers that take no lock walk memory
 * that writers unlink, and what a writer unlinks is freed only once no
 * reader can still hold it.
 *
 * A reader brackets its walk with rc_epoch_enter / rc_epoch_leave: it
 * publishes the global epoch in its thread's slot (a line no other thread
 * writes), then a full fence. A writer unlinks an object (so that a walk
 * beginning now cannot reach it), then retires it: the object is stamped
 * with the epoch, which moves on, and a full fence follows. It is freed when
 * every reader in a walk published a later epoch, so began after the unlink.
 * The two fences make the case of a reader that published its slot while
 * the writer read it safe: either the writer sees the slot, or the reader's
 * walk sees the unlink (the store-buffering pattern). Walks are short (a
 * hash lookup and a copy), so retired objects wait little.
 *
 * Slots: RC_EPOCH_SLOTS threads at once hold one (taken on a thread's first
 * walk, given back when it exits); a thread that finds none gets false from
 * rc_epoch_enter and takes its locked path instead.
 */
#ifndef RC_CORE_EPOCH_H
#define RC_CORE_EPOCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RC_EPOCH_SLOTS 256

/* An object waiting to be freed; embed it, and give its free function. */
typedef struct rc_retired {
    struct rc_retired *next;
    uint64_t stamp;                       /* the epoch it was retired in */
    void (*free_fn)(struct rc_retired *); /* frees the object holding it */
} rc_retired;

/* The objects one structure retired, not yet freed. */
typedef struct rc_retire_list {
    pthread_mutex_t mu; /* guards head */
    rc_retired *head;   /* newest first */
} rc_retire_list;

/* Starts a lock-free walk; false when this thread has no slot (walk under
 * the lock instead). */
bool rc_epoch_enter(void);
/* Ends the walk rc_epoch_enter started (only after it returned true). */
void rc_epoch_leave(void);

/* RC_OK or an errno value (pthread_mutex_init). */
int rc_retire_list_init(rc_retire_list *l);
/* Retires o (already unlinked from every path a new walk can take) with
 * free_fn, then frees what no walk can hold any more. */
void rc_retire(rc_retire_list *l, rc_retired *o, void (*free_fn)(rc_retired *));
/* Frees everything retired (no walk of the structure may be in progress)
 * and destroys l. */
void rc_retire_list_destroy(rc_retire_list *l);

#endif
