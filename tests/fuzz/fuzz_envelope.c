/*
 * fuzz_envelope.c - the cache envelope decoder (rc_envelope_decode) on any
 * bytes. Input: one byte choosing hero, child or story, then the envelope
 * text. Oracle: the decode answers as jansson's alone does (the built-in
 * codecs' fast path, codec_fast.h, changes nothing but speed); an envelope
 * that decodes re-encodes (rc_envelope_encode) to one that decodes to an
 * equal entity; a failed decode leaves no entity.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const fuzz_kind *k = fuzz_kind_of(data[0]);
    void *e = NULL, *again = NULL;
    char *out = NULL;
    size_t len = 0;
    int rc = rc_envelope_decode(k->codec, (const char *)data + 1, size - 1, &e);
    /* the fast path and jansson agree on every text */
    void *slow = NULL;
    int rs = rc_envelope_decode(k->jansson, (const char *)data + 1, size - 1, &slow);
    FUZZ_CHECK(rs == rc, "%s: fast path says %s, jansson %s", k->name,
               rc_status_name(rc), rc_status_name(rs));
    if (rc == RC_OK)
        fuzz_same_entity(k, e, slow);
    k->ops->free(slow);
    if (rc != RC_OK) {
        FUZZ_CHECK(e == NULL, "%s: failed decode left an entity", k->name);
        return 0;
    }
    rc = rc_envelope_encode(k->codec, e, 60, &out, &len);
    FUZZ_CHECK(rc == RC_OK, "%s: decoded entity does not encode: %s", k->name,
               rc_errmsg());
    rc = rc_envelope_decode(k->codec, out, len, &again);
    fuzz_round_trip_end(k, e, out, rc, again);
    return 0;
}
