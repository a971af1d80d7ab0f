/*
 * pack.h - packed entities: an entity and the bytes of all its members in
 * one allocation (repocache/entity.h, "Packed entities").
 *
 * The near cache keeps its entities packed and, for a cached repository
 * opened with packed_results, hands out packed copies: the copy of a packed
 * entity is one malloc, one memcpy of the block and a walk that moves each
 * member pointer by the distance between the two blocks, where a deep copy
 * is one malloc (and one free later) per string. Its layout: the struct,
 * then the string-list arrays and nested structs (each aligned), then the
 * strings.
 *
 * Only the three built-in entities can be packed; for any other descriptor
 * these functions fall back on its clone.
 */
#ifndef RC_CORE_PACK_H
#define RC_CORE_PACK_H

#include "repocache/entity.h"

#include <stdbool.h>

/* A packed copy of e (any entity of type ops, packed or not), or
 * ops->clone(e) when ops is not a built-in entity; NULL on ENOMEM. */
void *rc_entity_pack(const rc_entity_ops *ops, const void *e);
/* A copy of e the caller frees with ops->free: packed when want_packed and
 * e is packed (every member of e inside its block, as rc_entity_pack makes
 * it), else ops->clone(e). NULL on ENOMEM. */
void *rc_entity_copy(const rc_entity_ops *ops, const void *e, bool want_packed);
/* A copy of l whose items are rc_entity_pack (pack) or rc_entity_copy
 * (want_packed) of l's; NULL on ENOMEM. */
rc_list *rc_list_pack(const rc_list *l);
rc_list *rc_list_copy(const rc_list *l, bool want_packed);

#endif
