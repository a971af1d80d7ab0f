/*
 * fuzz_list.c - the decoder of cached lists (rc_envelope_list_decode: a JSON
 * array of envelopes) on any bytes. Input: one byte choosing hero, child or
 * story, then the text. Oracle: the decode answers as jansson's alone does;
 * a list that decodes re-encodes
 * (rc_envelope_list_encode) to one that decodes to as many equal entities,
 * in order; a failed decode leaves no list.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const fuzz_kind *k = fuzz_kind_of(data[0]);
    rc_list *l = NULL, *again = NULL;
    char *out = NULL;
    size_t len = 0;
    int rc = rc_envelope_list_decode(k->codec, k->ops, (const char *)data + 1,
                                     size - 1, &l);
    /* the fast path and jansson agree on every text */
    rc_list *slow = NULL;
    int rs = rc_envelope_list_decode(k->jansson, k->ops, (const char *)data + 1,
                                     size - 1, &slow);
    FUZZ_CHECK(rs == rc, "%s: fast path says %s, jansson %s", k->name,
               rc_status_name(rc), rc_status_name(rs));
    FUZZ_CHECK(rc != RC_OK || slow->len == l->len, "%s: %zu items, jansson %zu",
               k->name, l->len, slow->len);
    for (size_t i = 0; rc == RC_OK && i < l->len; i++)
        fuzz_same_entity(k, l->items[i], slow->items[i]);
    rc_list_free(slow);
    if (rc != RC_OK) {
        FUZZ_CHECK(l == NULL, "%s: failed decode left a list", k->name);
        return 0;
    }
    rc = rc_envelope_list_encode(k->codec, l, 60, &out, &len);
    FUZZ_CHECK(rc == RC_OK, "%s: decoded list does not encode: %s", k->name,
               rc_errmsg());
    rc = rc_envelope_list_decode(k->codec, k->ops, out, len, &again);
    FUZZ_CHECK(rc == RC_OK, "%s: own list does not decode: %s\n%s", k->name,
               rc_errmsg(), out);
    FUZZ_CHECK(again->len == l->len, "%s: %zu items became %zu", k->name, l->len,
               again->len);
    for (size_t i = 0; i < l->len; i++)
        fuzz_same_entity(k, l->items[i], again->items[i]);
    free(out);
    rc_list_free(l);
    rc_list_free(again);
    return 0;
}
