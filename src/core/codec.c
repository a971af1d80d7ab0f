/*
 * codec.c - JSON codecs for hero, child and story in the wire format of
 * docs/wire-format.md, the cache envelope and arrays of envelopes.
 *
 * Design: no per-entity encode/decode code. Each entity is described once by
 * a field descriptor table (name, kind, offset, limits; see
 * core/entity_fields.h, shared with free/clone/validate), and one
 * encode loop and one decode loop below walk that table. The three rc_codec
 * instances only bind a table to those loops. The nested audio_file object
 * is a field of kind RC_FK_OBJ whose sub-table the same loops recurse into.
 *
 * Wire choices: fields in the order of docs/wire-format.md (that of the
 * Python models); optional values as JSON null; lists always as arrays;
 * JSON-text fields (full_response, generation_info, audio_file.metadata)
 * embedded as JSON values and read back as compact JSON text; output is
 * compact UTF-8 (Python's json module reads it, and we read Python's
 * ", "/": " and \\u escapes alike).
 */
#include "repocache/codec.h"

#include "core/codec_fast.h"
#include "core/entity_fields.h"
#include "core/json.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Status of the last failed built-in encode on this thread. rc_codec.encode
 * can only return NULL, which is out of memory for a user codec; the built-in
 * encoders also fail on data that cannot be written (a string that is not
 * UTF-8, a JSON-text field that does not parse: RC_EINVAL), and record it
 * here so the *_text and envelope functions return the right code.
 */
static _Thread_local int encode_status_;

/* ---- small helpers ---- */

/* A growing malloc'd buffer that jansson's dump writes into. */
typedef struct dump_buf {
    char *buf;
    size_t len, cap;
    bool failed; /* sticky: jansson ignores the callback's failure in places
                    (an object's key), so one failed append fails the dump */
} dump_buf;

static int dump_append_(const char *text, size_t n, void *ud)
{
    dump_buf *d = ud;
    if (d->failed)
        return -1;
    if (d->len + n + 1 > d->cap) {
        size_t cap = d->cap ? d->cap : 512;
        while (cap < d->len + n + 1)
            cap *= 2;
        char *grown = realloc(d->buf, cap);
        if (grown == NULL) {
            d->failed = true;
            return -1;
        }
        d->buf = grown;
        d->cap = cap;
    }
    memcpy(d->buf + d->len, text, n);
    d->len += n;
    return 0;
}

/* *out, *len = j dumped compactly into a malloc'd buffer (not jansson's
 * allocator, so callers free it with free()), in one pass. */
static int dump_(const json_t *j, size_t flags, char **out, size_t *len)
{
    dump_buf d = {0};
    if (json_dump_callback(j, dump_append_, &d, flags | JSON_COMPACT) != 0 ||
        dump_append_("", 0, &d) != 0) {
        free(d.buf);
        return rc_seterr(RC_ENOMEM, "JSON dump failed (out of memory)");
    }
    d.buf[d.len] = '\0';
    *out = d.buf;
    if (len != NULL)
        *len = d.len;
    return RC_OK;
}

int rc_json_dump(const json_t *j, size_t flags, char **out, size_t *len)
{
    return dump_(j, flags, out, len);
}

/* Parses text into *out: an entity, envelope or list text (an object or an
 * array, each key at most once), or with any a JSON-text field of an entity
 * being encoded (any value). */
static int load_(const char *text, size_t len, bool any, json_t **out,
                 const char *what)
{
    json_error_t err;
    /* jansson leaves err partly unset when its lexer cannot even start (no
     * memory): zeroed, that reads as an empty text and error code 0 */
    memset(&err, 0, sizeof err);
    *out = json_loadb(text, len, any ? JSON_DECODE_ANY : JSON_REJECT_DUPLICATES,
                      &err);
    if (*out != NULL)
        return RC_OK;
    /* a failed allocation: out_of_memory, or no error text at all */
    if (err.text[0] == '\0' || json_error_code(&err) == json_error_out_of_memory)
        return rc_seterr(RC_ENOMEM, "%s: out of memory", what);
    if (json_error_code(&err) == json_error_duplicate_key)
        return rc_seterr(RC_EDECODE,
                         "%s: a key appears twice in one object (%s, position "
                         "%d); each field may be given once",
                         what, err.text, err.position);
    return rc_seterr(any ? RC_EINVAL : RC_EDECODE, "%s: %s (position %d)",
                     what, err.text, err.position);
}

/* ---- the one encode loop ---- */

static int encode_fields_(const rc_fields *t, const void *e, json_t **out);

/* *out = v, or RC_ENOMEM when the jansson constructor returned NULL. */
static int made_(json_t *v, json_t **out)
{
    if (v == NULL)
        return rc_seterr(RC_ENOMEM, "out of memory");
    *out = v;
    return RC_OK;
}

/* *out = the JSON array of the strings of list field f (new reference). */
static int encode_list_(const rc_field *f, const rc_strlist *l, json_t **out)
{
    json_t *v = json_array();
    if (v == NULL)
        return rc_seterr(RC_ENOMEM, "out of memory");
    for (size_t i = 0; i < l->len; i++) {
        const char *s = l->items[i];
        if (s == NULL || !rc_utf8_valid(s, strlen(s))) {
            json_decref(v);
            return rc_seterr(RC_EINVAL, "%s[%zu]: not a valid UTF-8 string",
                             f->name, i);
        }
        if (json_array_append_new(v, json_string(s)) != 0) {
            json_decref(v);
            return rc_seterr(RC_ENOMEM, "out of memory");
        }
    }
    *out = v;
    return RC_OK;
}

/* *out = the JSON value of field f of e (new reference); JSON null for an
 * absent value. */
static int encode_field_(const rc_field *f, const void *e, json_t **out)
{
    const void *m = RC_FIELD_CPTR(e, f);
    const char *s = NULL;
    *out = json_null(); /* a static singleton: never fails */
    switch (f->kind) {
    case RC_FK_STR:
        if ((s = *(const char *const *)m) == NULL)
            return RC_OK;
        if (!rc_utf8_valid(s, strlen(s)))
            return rc_seterr(RC_EINVAL, "%s: not valid UTF-8", f->name);
        return made_(json_string(s), out);
    case RC_FK_JSON:
        if ((s = *(const char *const *)m) == NULL)
            return RC_OK;
        return load_(s, strlen(s), true, out, f->name);
    case RC_FK_INT:
        return made_(json_integer(*(const int *)m), out);
    case RC_FK_OPTINT: {
        const rc_opt_int *o = m;
        return o->set ? made_(json_integer(o->value), out) : RC_OK;
    }
    case RC_FK_STRLIST:
        return encode_list_(f, m, out);
    case RC_FK_OBJ: {
        const void *sub = *(const void *const *)m;
        return sub != NULL ? encode_fields_(f->sub, sub, out) : RC_OK;
    }
    }
    return RC_OK;
}

static int encode_fields_(const rc_fields *t, const void *e, json_t **out)
{
    json_t *obj = json_object();
    if (obj == NULL)
        return rc_seterr(RC_ENOMEM, "out of memory");
    for (size_t i = 0; i < t->count; i++) {
        json_t *v = NULL;
        int rc = encode_field_(&t->items[i], e, &v);
        if (rc == RC_OK && json_object_set_new(obj, t->items[i].name, v) != 0)
            rc = rc_seterr(RC_ENOMEM, "out of memory"); /* v was released */
        if (rc != RC_OK) {
            json_decref(obj);
            return rc;
        }
    }
    *out = obj;
    return RC_OK;
}

/* ---- the one decode loop ---- */

static int decode_fields_(const rc_fields *t, const json_t *j, void **out);

/* Decodes j[f->name] into the member of e. */
static int decode_field_(const rc_field *f, const json_t *obj, void *e)
{
    void *m = RC_FIELD_PTR(e, f);
    const json_t *v = json_object_get(obj, f->name);
    if (v == NULL || json_is_null(v)) {
        /* absent and null are the same; the list stays empty */
        if (f->required)
            return rc_seterr(RC_EDECODE, "%s: required field missing or null",
                             f->name);
        return RC_OK;
    }
    switch (f->kind) {
    case RC_FK_STR:
        if (!json_is_string(v))
            return rc_seterr(RC_EDECODE, "%s: expected a string", f->name);
        *(char **)m = rc_strdup(json_string_value(v));
        if (*(char **)m == NULL)
            return rc_seterr(RC_ENOMEM, "out of memory");
        return RC_OK;
    case RC_FK_JSON: {
        char *text;
        int rc = dump_(v, JSON_ENCODE_ANY, &text, NULL);
        if (rc == RC_OK)
            *(char **)m = text;
        return rc;
    }
    case RC_FK_INT:
    case RC_FK_OPTINT: {
        if (!json_is_integer(v))
            return rc_seterr(RC_EDECODE, "%s: expected an integer", f->name);
        json_int_t x = json_integer_value(v);
        if (x < INT_MIN || x > INT_MAX)
            return rc_seterr(RC_EDECODE, "%s: integer out of range", f->name);
        if (f->kind == RC_FK_INT)
            *(int *)m = (int)x;
        else
            *(rc_opt_int *)m = (rc_opt_int){.set = true, .value = (int)x};
        return RC_OK;
    }
    case RC_FK_STRLIST: {
        if (!json_is_array(v))
            return rc_seterr(RC_EDECODE, "%s: expected an array of strings",
                             f->name);
        if (json_array_size(v) > RC_LIST_MAX)
            return rc_seterr(RC_EDECODE, "%s: at most %d items, got %zu",
                             f->name, RC_LIST_MAX, json_array_size(v));
        for (size_t i = 0; i < json_array_size(v); i++) {
            const json_t *item = json_array_get(v, i);
            if (!json_is_string(item))
                return rc_seterr(RC_EDECODE, "%s[%zu]: expected a string",
                                 f->name, i);
            if (rc_strlist_push(m, json_string_value(item)) != RC_OK)
                return RC_ENOMEM;
        }
        return RC_OK;
    }
    case RC_FK_OBJ:
        return decode_fields_(f->sub, v, (void **)m);
    }
    return RC_OK;
}

static int decode_fields_(const rc_fields *t, const json_t *j, void **out)
{
    *out = NULL;
    if (!json_is_object(j))
        return rc_seterr(RC_EDECODE, "%s: expected a JSON object", t->name);
    void *e = calloc(1, t->size);
    if (e == NULL)
        return rc_seterr(RC_ENOMEM, "out of memory");
    int rc = RC_OK;
    for (size_t i = 0; i < t->count && rc == RC_OK; i++)
        rc = decode_field_(&t->items[i], j, e);
    if (rc == RC_OK)
        rc = rc_fields_check_sizes(t, e);
    if (rc != RC_OK) {
        rc_fields_free(t, e);
        return rc;
    }
    *out = e;
    return RC_OK;
}

/* ---- the three codecs ---- */

#define RC_DEFINE_CODEC_(n)                                                    \
    static json_t *n##_encode_(const void *e)                                  \
    {                                                                          \
        json_t *j = NULL;                                                      \
        encode_status_ = encode_fields_(&rc_##n##_fields, e, &j);              \
        return j;                                                              \
    }                                                                          \
    static int n##_decode_(const json_t *j, void **out)                        \
    {                                                                          \
        return decode_fields_(&rc_##n##_fields, j, out);                       \
    }                                                                          \
    const rc_codec rc_##n##_codec = {.encode = n##_encode_,                    \
                                     .decode = n##_decode_};

RC_DEFINE_CODEC_(hero)
RC_DEFINE_CODEC_(child)
RC_DEFINE_CODEC_(story)

/* codec->encode(e), with the failure's status (RC_ENOMEM for user codecs). */
static int encode_(const rc_codec *codec, const void *e, json_t **out)
{
    if (e == NULL)
        return rc_seterr(RC_EINVAL, "encode: entity is NULL");
    encode_status_ = RC_ENOMEM;
    *out = codec->encode(e);
    if (*out != NULL)
        return RC_OK;
    if (encode_status_ == RC_ENOMEM)
        rc_seterr(RC_ENOMEM, "encode: out of memory");
    return encode_status_ != RC_OK ? encode_status_ : RC_ENOMEM;
}

/* ---- entity text ---- */

int rc_entity_encode_text(const rc_codec *codec, const void *e, char **out)
{
    *out = NULL;
    json_t *j;
    int rc = encode_(codec, e, &j);
    if (rc != RC_OK)
        return rc;
    rc = dump_(j, 0, out, NULL);
    json_decref(j);
    return rc;
}

int rc_entity_decode_text(const rc_codec *codec, const char *text, size_t len,
                          void **out)
{
    *out = NULL;
    json_t *j;
    int rc = load_(text, len, false, &j, "entity");
    if (rc != RC_OK)
        return rc;
    rc = codec->decode(j, out);
    json_decref(j);
    return rc;
}

/* ---- envelopes ---- */

int rc_iso_now(char **out)
{
    struct timespec ts;
    struct tm tm;
    *out = NULL;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gmtime_r(&ts.tv_sec, &tm) == NULL)
        return rc_seterr(RC_EINVAL, "clock unavailable");
    char buf[32];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%06ld", (long)(ts.tv_nsec / 1000));
    char *s = rc_strdup(buf);
    if (s == NULL)
        return rc_seterr(RC_ENOMEM, "out of memory");
    *out = s;
    return RC_OK;
}

/* *out = {"entity": ..., "cached_at": now, "ttl": ttl} (new reference). */
static int envelope_new_(const rc_codec *codec, const void *e, int ttl,
                         const char *now, json_t **out)
{
    json_t *entity = NULL;
    int rc = encode_(codec, e, &entity);
    if (rc != RC_OK)
        return rc;
    json_t *env = json_object();
    if (env == NULL || json_object_set_new(env, "entity", entity) != 0 ||
        json_object_set_new(env, "cached_at", json_string(now)) != 0 ||
        json_object_set_new(env, "ttl", json_integer(ttl)) != 0) {
        if (env == NULL)
            json_decref(entity);
        json_decref(env);
        return rc_seterr(RC_ENOMEM, "out of memory");
    }
    *out = env;
    return RC_OK;
}

/* The entity inside envelope j. cached_at (string) and ttl (number) are
 * checked only for type, and only when present and not null: they are
 * informative, Redis holds the real TTL. */
static int envelope_entity_(const rc_codec *codec, const json_t *j, void **out)
{
    *out = NULL;
    if (!json_is_object(j))
        return rc_seterr(RC_EDECODE, "envelope: expected a JSON object");
    const json_t *entity = json_object_get(j, "entity");
    const json_t *at = json_object_get(j, "cached_at");
    const json_t *ttl = json_object_get(j, "ttl");
    if (!json_is_object(entity))
        return rc_seterr(RC_EDECODE, "envelope: \"entity\" object missing");
    if (at != NULL && !json_is_string(at) && !json_is_null(at))
        return rc_seterr(RC_EDECODE, "envelope: cached_at: expected a string");
    if (ttl != NULL && !json_is_number(ttl) && !json_is_null(ttl))
        return rc_seterr(RC_EDECODE, "envelope: ttl: expected a number");
    return codec->decode(entity, out);
}

int rc_envelope_encode(const rc_codec *codec, const void *e, int ttl,
                       char **out, size_t *len)
{
    *out = NULL;
    char *now;
    int rc = rc_iso_now(&now);
    if (rc != RC_OK)
        return rc;
    json_t *env = NULL;
    rc = envelope_new_(codec, e, ttl, now, &env);
    free(now);
    if (rc != RC_OK)
        return rc;
    rc = dump_(env, 0, out, len);
    json_decref(env);
    return rc;
}

/* The field table of a built-in codec (they decode plain texts without
 * jansson, codec_fast.h); NULL for a codec of the caller's. */
static const rc_fields *builtin_fields_(const rc_codec *codec)
{
    return codec == &rc_hero_codec    ? &rc_hero_fields
           : codec == &rc_child_codec ? &rc_child_fields
           : codec == &rc_story_codec ? &rc_story_fields
                                      : NULL;
}

int rc_envelope_decode(const rc_codec *codec, const char *text, size_t len,
                       void **out)
{
    *out = NULL;
    const rc_fields *t = builtin_fields_(codec);
    if (t && rc_fast_envelope_decode(t, text, len, out))
        return RC_OK;
    json_t *j;
    int rc = load_(text, len, false, &j, "envelope");
    if (rc != RC_OK)
        return rc;
    rc = envelope_entity_(codec, j, out);
    json_decref(j);
    return rc;
}

int rc_envelope_list_encode(const rc_codec *codec, const rc_list *l, int ttl,
                            char **out, size_t *len)
{
    *out = NULL;
    char *now;
    int rc = rc_iso_now(&now);
    if (rc != RC_OK)
        return rc;
    json_t *arr = json_array();
    if (arr == NULL)
        rc = rc_seterr(RC_ENOMEM, "out of memory");
    for (size_t i = 0; rc == RC_OK && i < l->len; i++) {
        json_t *env = NULL;
        rc = envelope_new_(codec, l->items[i], ttl, now, &env);
        if (rc == RC_OK && json_array_append_new(arr, env) != 0)
            rc = rc_seterr(RC_ENOMEM, "out of memory");
    }
    free(now);
    if (rc == RC_OK)
        rc = dump_(arr, 0, out, len);
    json_decref(arr);
    return rc;
}

int rc_envelope_list_decode(const rc_codec *codec, const rc_entity_ops *ops,
                            const char *text, size_t len, rc_list **out)
{
    *out = NULL;
    const rc_fields *t = builtin_fields_(codec);
    if (t && rc_fast_envelope_list_decode(t, ops, text, len, out))
        return RC_OK;
    json_t *j;
    int rc = load_(text, len, false, &j, "envelope list");
    if (rc != RC_OK)
        return rc;
    rc_list *l = NULL;
    if (!json_is_array(j))
        rc = rc_seterr(RC_EDECODE, "envelope list: expected a JSON array");
    else if ((l = rc_list_new(ops)) == NULL)
        rc = RC_ENOMEM;
    for (size_t i = 0; rc == RC_OK && i < json_array_size(j); i++) {
        void *e;
        rc = envelope_entity_(codec, json_array_get(j, i), &e);
        if (rc == RC_OK)
            rc = rc_list_push(l, e);
    }
    json_decref(j);
    if (rc != RC_OK) {
        rc_list_free(l);
        return rc;
    }
    *out = l;
    return RC_OK;
}
