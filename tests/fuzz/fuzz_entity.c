/*
 * fuzz_entity.c - the entity decoder (rc_entity_decode_text) on any bytes.
 * Input: one byte choosing hero, child or story, then the JSON text.
 * Oracle: a text that decodes encodes, and its encoding decodes to an equal
 * entity (decode -> encode -> decode); a text that does not decode leaves
 * no entity and a message. The sanitizers catch the rest.
 */
#include "fuzz.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const fuzz_kind *k = fuzz_kind_of(data[0]);
    const char *text = (const char *)data + 1;
    void *e = NULL, *again = NULL;
    char *out = NULL;
    int rc = rc_entity_decode_text(k->codec, text, size - 1, &e);
    if (rc != RC_OK) {
        FUZZ_CHECK(e == NULL, "%s: failed decode left an entity", k->name);
        FUZZ_CHECK(rc_errmsg()[0] != '\0', "%s: %s without a message", k->name,
                   rc_status_name(rc));
        return 0;
    }
    rc = rc_entity_encode_text(k->codec, e, &out);
    FUZZ_CHECK(rc == RC_OK, "%s: decoded entity does not encode: %s", k->name,
               rc_errmsg());
    rc = rc_entity_decode_text(k->codec, out, strlen(out), &again);
    fuzz_round_trip_end(k, e, out, rc, again);
    return 0;
}
