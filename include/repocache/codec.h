/*
 * repocache/codec.h - JSON codecs for the entities, in the wire format of
 * docs/wire-format.md (shared with a Python service), and the cache envelope:
 *     {"entity": {...}, "cached_at": "2024-01-15T10:30:00.123456", "ttl": 3600}
 * A cached list is a JSON array of envelopes.
 *
 * Decoding is strict about types (a string field holding a number is
 * RC_EDECODE) and tolerant of unknown fields and of missing optional ones.
 * A key given twice in one object of a text (entity, envelope or list, at
 * any depth) is RC_EDECODE, never "the last one wins".
 * Every decode failure frees what it built: nothing leaks. Decoding also
 * enforces the size limits of entity.h (string bytes, list items) so a huge
 * cached value is RC_EDECODE; value rules (gender, age range...) are left to
 * rc_*_validate. Absent and null are the same for optional fields; a null or
 * absent list decodes as empty. Output texts are compact UTF-8 JSON.
 *
 * Out of memory: jansson's parser reports some failed allocations as syntax
 * errors, so under memory pressure a decode may give RC_EDECODE, and an
 * encode that parses a JSON-text field RC_EINVAL, instead of RC_ENOMEM.
 */
#ifndef REPOCACHE_CODEC_H
#define REPOCACHE_CODEC_H

#include "repocache/export.h"
#include "repocache/entity.h"
#include "repocache/status.h"

#include <jansson.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The codec of one entity type. */
typedef struct rc_codec {
    /* Callbacks */
    /* New JSON object for e (new reference); NULL on ENOMEM. The built-in
     * codecs also return NULL (the *_text/envelope functions then return
     * RC_EINVAL) when e holds a string that is not UTF-8 or a JSON-text
     * field that does not parse; rc_errmsg() names the field. */
    json_t *(*encode)(const void *e);
    /* *out = a new entity from j (caller frees with the entity's free).
     * RC_OK, RC_EDECODE (wrong type, missing required field) or RC_ENOMEM. */
    int (*decode)(const json_t *j, void **out);
} rc_codec;

RC_API extern const rc_codec rc_hero_codec;
RC_API extern const rc_codec rc_child_codec;
RC_API extern const rc_codec rc_story_codec;

/* *out = e as compact JSON object text (malloc'd, caller frees). */
RC_API int rc_entity_encode_text(const rc_codec *codec, const void *e, char **out);
/* *out = entity decoded from JSON object text of len bytes. */
RC_API int rc_entity_decode_text(const rc_codec *codec, const char *text, size_t len,
                                 void **out);

/* *out, *len = envelope text for e with this ttl and cached_at = now
 * (malloc'd, caller frees). */
RC_API int rc_envelope_encode(const rc_codec *codec, const void *e, int ttl,
                              char **out, size_t *len);
/* *out = the entity inside an envelope text. RC_EDECODE when it is not one. */
RC_API int rc_envelope_decode(const rc_codec *codec, const char *text, size_t len,
                              void **out);
/* *out, *len = JSON array of envelopes, one per item of l. */
RC_API int rc_envelope_list_encode(const rc_codec *codec, const rc_list *l, int ttl,
                                   char **out, size_t *len);
/* *out = a list (items of type ops) decoded from an array of envelopes. */
RC_API int rc_envelope_list_decode(const rc_codec *codec, const rc_entity_ops *ops,
                                   const char *text, size_t len, rc_list **out);

/* *out = now as "YYYY-MM-DDTHH:MM:SS.ffffff" (UTC, no zone), caller frees. */
RC_API int rc_iso_now(char **out);

#ifdef __cplusplus
}
#endif
#endif
