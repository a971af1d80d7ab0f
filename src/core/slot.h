/*
 * slot.h - Redis Cluster's key slots, so that the keys one script touches
 * (a data key, its lease, its negative entry) always share one: a data key
 * cannot change (other services read it) and user values put any '{' and
 * '}' into query keys, so an auxiliary key names its data key's slot
 * outright, with a hash tag that hashes there: "{" + rc_slot_tag(slot) + "}".
 */
#ifndef RC_CORE_SLOT_H
#define RC_CORE_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define RC_SLOTS 16384

/* The slot of key[0..len) as Redis Cluster computes it: CRC16 (XMODEM)
 * modulo 16384 of the hash tag (what is between the first '{' and the first
 * '}' after it, when not empty), else of the whole key. */
unsigned rc_slot(const char *key, size_t len);
/* The shortest string of [0-9A-Za-z] (1 to 3 characters) whose slot is slot
 * (< RC_SLOTS): "{" + it + "}" in a key puts the key in that slot. The table
 * is built once, on first use (a few milliseconds). */
const char *rc_slot_tag(unsigned slot);

#endif
