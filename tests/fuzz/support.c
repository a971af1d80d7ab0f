/* support.c - what the fuzz targets share (see fuzz.h). */
#include "fuzz.h"

#include <string.h>

/* Copies of the built-in codecs at other addresses: the library does not
 * know them as its own, so it decodes through them with jansson only. */
static rc_codec hero_j, child_j, story_j;

static const fuzz_kind kinds[] = {
    {"hero", &rc_hero_codec, &rc_hero_entity, &hero_j},
    {"child", &rc_child_codec, &rc_child_entity, &child_j},
    {"story", &rc_story_codec, &rc_story_entity, &story_j},
};

const fuzz_kind *fuzz_kind_of(unsigned i)
{
    hero_j = rc_hero_codec;
    child_j = rc_child_codec;
    story_j = rc_story_codec;
    return &kinds[i % (sizeof kinds / sizeof kinds[0])];
}

void fuzz_same_entity(const fuzz_kind *k, const void *a, const void *b)
{
    char *ta = NULL, *tb = NULL;
    int ra = rc_entity_encode_text(k->codec, a, &ta);
    FUZZ_CHECK(ra == RC_OK, "%s: a decoded entity does not encode: %s (%s)",
               k->name, rc_status_name(ra), rc_errmsg());
    int rb = rc_entity_encode_text(k->codec, b, &tb);
    FUZZ_CHECK(rb == RC_OK, "%s: a decoded entity does not encode: %s (%s)",
               k->name, rc_status_name(rb), rc_errmsg());
    FUZZ_CHECK(strcmp(ta, tb) == 0, "%s: round trip changed the entity:\n%s\n%s",
               k->name, ta, tb);
    free(ta);
    free(tb);
}

void fuzz_round_trip_end(const fuzz_kind *k, void *e, char *out, int rc,
                         void *again)
{
    FUZZ_CHECK(rc == RC_OK, "%s: own encoding does not decode: %s\n%s", k->name,
               rc_errmsg(), out);
    fuzz_same_entity(k, e, again);
    free(out);
    k->ops->free(e);
    k->ops->free(again);
}

unsigned fuzz_byte(fuzz_reader *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

char *fuzz_field(fuzz_reader *r)
{
    const uint8_t *nul = memchr(r->p, 0, r->n);
    size_t len = nul ? (size_t)(nul - r->p) : r->n;
    char *s = malloc(len + 1);
    FUZZ_CHECK(s != NULL, "out of memory");
    if (len)
        memcpy(s, r->p, len);
    s[len] = '\0';
    r->p += len;
    r->n -= len;
    if (nul) {
        r->p++;
        r->n--;
    }
    return s;
}
