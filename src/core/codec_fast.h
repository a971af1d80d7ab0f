/*
 * codec_fast.h - the built-in codecs' envelopes decoded straight from the
 * text into the entity, without building jansson values (jansson spends
 * about 180 instructions a byte on a cached hero; this a few).
 *
 * It takes only the plain shape our own encoder writes: objects holding
 * nothing but the table's fields (each at most once), strings without
 * escapes and of well-formed UTF-8, integers, arrays of strings, null, and
 * no JSON-text field. On anything else it declines, and codec.c decodes the
 * text with jansson as before: the two agree on every text this one takes
 * (the fuzz target fuzz_envelope checks it), so what it declines, including
 * every error, is answered exactly as before.
 */
#ifndef RC_CORE_CODEC_FAST_H
#define RC_CORE_CODEC_FAST_H

#include "core/entity_fields.h"

#include <stdbool.h>
#include <stddef.h>

/* *out = the entity of table t in envelope text[0..len); false (nothing
 * allocated, *out NULL) when the text is not of the plain shape, or on
 * ENOMEM. */
bool rc_fast_envelope_decode(const rc_fields *t, const char *text, size_t len,
                             void **out);
/* The same for an array of envelopes: *out a new list of ops's entities. */
bool rc_fast_envelope_list_decode(const rc_fields *t, const rc_entity_ops *ops,
                                  const char *text, size_t len, rc_list **out);

#endif
