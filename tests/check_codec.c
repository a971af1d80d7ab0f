/*
 * check_codec.c - JSON codecs: round trips, the wire format of
 * docs/wire-format.md (fixtures written by Python's json.dumps), strict
 * types, missing fields, malformed input (truncated, invalid UTF-8, deep
 * nesting, huge strings), envelopes and lists, and out-of-memory at every
 * jansson allocation.
 *
 * The field names, kinds and required flags below are written out from
 * docs/wire-format.md, independently of the library's own field tables.
 */
#include "repocache/codec.h"
#include "repocache/entity.h"
#include "repocache/status.h"

#include "entity_samples.h"
#include "harness.h"

#include <check.h>
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the wire format as the test knows it ---- */

enum fk { S, I, L, J, O }; /* string, integer, list of strings, any JSON, audio object */
typedef struct wfield {
    const char *name;
    enum fk kind;
    bool required;
} wfield;

static const wfield hero_wire[] = {
    {"id", S, false},          {"name", S, true},
    {"age", I, true},          {"gender", S, true},
    {"appearance", S, true},   {"personality_traits", L, false},
    {"interests", L, false},   {"strengths", L, false},
    {"language", S, true},     {"created_at", S, false},
    {"updated_at", S, false},  {NULL, 0, 0},
};
static const wfield child_wire[] = {
    {"id", S, false},         {"name", S, true},       {"age_category", S, true},
    {"age", I, true},         {"gender", S, true},     {"interests", L, false},
    {"created_at", S, false}, {"updated_at", S, false}, {NULL, 0, 0},
};
static const wfield story_wire[] = {
    {"id", S, false},           {"title", S, true},
    {"content", S, true},       {"moral", S, true},
    {"language", S, true},      {"child_id", S, false},
    {"child_name", S, false},   {"age_category", S, false},
    {"child_gender", S, false}, {"child_interests", L, false},
    {"story_length", I, false}, {"rating", I, false},
    {"audio_file", O, false},   {"model_used", S, false},
    {"full_response", J, false}, {"generation_info", J, false},
    {"created_at", S, false},   {"updated_at", S, false},
    {NULL, 0, 0},
};
static const wfield audio_wire[] = {
    {"url", S, true}, {"provider", S, false}, {"metadata", J, false},
    {NULL, 0, 0},
};

/* One entity type under test (index 0..2 in loop tests). */
typedef struct etype {
    const char *name;
    const rc_codec *codec;
    const rc_entity_ops *ops;
    const wfield *wire;
    void *(*full)(void);
    void *(*min)(void);
} etype;

static void *hero_full_(void) { return sample_hero_full(); }
static void *hero_min_(void) { return sample_hero_min(); }
static void *child_full_(void) { return sample_child_full(); }
static void *child_min_(void) { return sample_child_min(); }
static void *story_full_(void) { return sample_story_full(); }
static void *story_min_(void) { return sample_story_min(); }

static const etype types[] = {
    {"hero", &rc_hero_codec, &rc_hero_entity, hero_wire, hero_full_, hero_min_},
    {"child", &rc_child_codec, &rc_child_entity, child_wire, child_full_,
     child_min_},
    {"story", &rc_story_codec, &rc_story_entity, story_wire, story_full_,
     story_min_},
};
#define NTYPES 3

/* ---- helpers ---- */

static char *text_of(const rc_codec *codec, const void *e)
{
    char *t = NULL;
    ck_assert_int_eq(rc_entity_encode_text(codec, e, &t), RC_OK);
    ck_assert_ptr_nonnull(t);
    return t;
}

static json_t *json_of(const rc_codec *codec, const void *e)
{
    json_t *j = codec->encode(e);
    ck_assert_ptr_nonnull(j);
    return j;
}

static char *dumps(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* Decodes entity JSON j through the text path; frees the result. */
static int decode_json(const etype *t, const json_t *j)
{
    char *text = dumps(j);
    void *e = NULL;
    int rc = rc_entity_decode_text(t->codec, text, strlen(text), &e);
    if (rc != RC_OK)
        ck_assert_ptr_null(e);
    else
        ck_assert_ptr_nonnull(e);
    t->ops->free(e);
    free(text);
    return rc;
}

static char *fixture(const char *name, size_t *len)
{
    char *path = th_fixture_path(name);
    ck_assert_ptr_nonnull(path);
    char *text = th_read_file(path, len);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    free(path);
    return text;
}

static void assert_list(const rc_strlist *l, size_t n, const char *const *want)
{
    ck_assert_uint_eq(l->len, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(l->items[i], want[i]);
}

/* ---- round trips ---- */

/* encode -> decode -> encode gives the same text, as bare entity and in an
 * envelope, for the fully set samples and the all-null samples. */
static void roundtrip(const etype *t, void *e)
{
    char *a = text_of(t->codec, e);
    void *d = NULL;
    ck_assert_int_eq(rc_entity_decode_text(t->codec, a, strlen(a), &d), RC_OK);
    char *b = text_of(t->codec, d);
    ck_assert_str_eq(a, b);
    ck_assert_int_eq(t->ops->validate(d, true), RC_OK);
    t->ops->free(d);
    free(b);

    char *env = NULL;
    size_t len = 0;
    ck_assert_int_eq(rc_envelope_encode(t->codec, e, 123, &env, &len), RC_OK);
    ck_assert_uint_eq(len, strlen(env));
    ck_assert_int_eq(rc_envelope_decode(t->codec, env, len, &d), RC_OK);
    b = text_of(t->codec, d);
    ck_assert_str_eq(a, b);
    t->ops->free(d);
    free(b);
    free(env);
    free(a);
}

START_TEST(roundtrip_full)
{
    const etype *t = &types[_i];
    void *e = t->full();
    roundtrip(t, e);
    t->ops->free(e);
}
END_TEST

START_TEST(roundtrip_min_nulls)
{
    const etype *t = &types[_i];
    void *e = t->min();
    roundtrip(t, e);
    /* every optional scalar is a JSON null, every list an empty array */
    json_t *j = json_of(t->codec, e);
    for (const wfield *f = t->wire; f->name != NULL; f++) {
        json_t *v = json_object_get(j, f->name);
        ck_assert_msg(v != NULL, "%s.%s missing", t->name, f->name);
        if (f->kind == L)
            ck_assert_msg(json_is_array(v) && json_array_size(v) == 0,
                          "%s.%s not []", t->name, f->name);
        else if (!f->required && strcmp(f->name, "id") != 0)
            ck_assert_msg(json_is_null(v), "%s.%s not null", t->name,
                          f->name);
    }
    json_decref(j);
    t->ops->free(e);
}
END_TEST

/* The encoded object has exactly the field names of docs/wire-format.md,
 * in its order (that of the Python models). */
START_TEST(wire_field_names)
{
    const etype *t = &types[_i];
    void *e = t->full();
    json_t *j = json_of(t->codec, e);
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        ck_assert_ptr_nonnull(t->wire[n].name);
        ck_assert_str_eq(key, t->wire[n].name);
        n++;
    }
    ck_assert_ptr_null(t->wire[n].name);
    if (t->codec == &rc_story_codec) {
        json_t *a = json_object_get(j, "audio_file");
        size_t k = 0;
        json_object_foreach(a, key, v)
        {
            ck_assert_str_eq(key, audio_wire[k].name);
            k++;
        }
        ck_assert_uint_eq(k, 3);
        /* JSON-text fields are embedded as JSON values, not strings */
        ck_assert(json_is_object(json_object_get(a, "metadata")));
        ck_assert(json_is_object(json_object_get(j, "full_response")));
        ck_assert(json_is_array(json_object_get(j, "generation_info")));
        ck_assert(json_is_integer(json_object_get(j, "rating")));
    }
    json_decref(j);
    t->ops->free(e);
}
END_TEST

START_TEST(story_fields_explicit)
{
    rc_story *s = sample_story_full();
    char *text = text_of(&rc_story_codec, s);
    rc_story_free(s);
    void *out = NULL;
    ck_assert_int_eq(
        rc_entity_decode_text(&rc_story_codec, text, strlen(text), &out),
        RC_OK);
    free(text);
    rc_story *d = out;
    ck_assert_str_eq(d->content,
                     "Жила-была лиса.\n\"Hello\", she said; 50% sure.\t\\end");
    ck_assert_str_eq(d->child_gender, "other");
    ck_assert(d->story_length.set);
    ck_assert_int_eq(d->story_length.value, 5);
    ck_assert_int_eq(d->rating.value, 9);
    ck_assert_str_eq(d->audio_file->metadata,
                     "{\"voice\":\"Rachel\",\"duration\":12.5,"
                     "\"tags\":[\"a\",null,true]}");
    ck_assert_str_eq(d->audio_file->provider, "elevenlabs");
    ck_assert_str_eq(d->generation_info, "[1,\"two\",{\"three\":3}]");
    ck_assert_str_eq(d->created_at, "2024-01-15T10:30:00.123456");
    ck_assert_str_eq(d->updated_at, "2024-01-15T10:31:00");
    rc_story_free(d);
}
END_TEST

/* full_response accepts any JSON value and gives it back compactly. */
START_TEST(json_text_any_value)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"\"text\"", "\"text\""}, {"0", "0"},       {"-17", "-17"},
        {"1.5", "1.5"},           {"true", "true"}, {"false", "false"},
        {"[]", "[]"},             {"{}", "{}"},
        {"[1, {\"a\": null}]", "[1,{\"a\":null}]"},
        {"{\"k\": \"\\u0416\"}", "{\"k\":\"Ж\"}"},
        {"null", NULL}, /* JSON null is the absent value */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rc_story *s = sample_story_min();
        s->full_response = strdup(cases[i].in);
        char *text = text_of(&rc_story_codec, s);
        rc_story_free(s);
        void *out = NULL;
        ck_assert_int_eq(
            rc_entity_decode_text(&rc_story_codec, text, strlen(text), &out),
            RC_OK);
        rc_story *d = out;
        if (cases[i].out == NULL)
            ck_assert_ptr_null(d->full_response);
        else
            ck_assert_str_eq(d->full_response, cases[i].out);
        rc_story_free(d);
        free(text);
    }
}
END_TEST

/* ---- fixtures written by Python's json.dumps ---- */

START_TEST(fixture_hero)
{
    size_t len;
    char *text = fixture("hero_envelope.json", &len);
    void *out = NULL;
    ck_assert_int_eq(rc_envelope_decode(&rc_hero_codec, text, len, &out), RC_OK);
    free(text);
    rc_hero *h = out;
    ck_assert_str_eq(h->id, "7f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b");
    ck_assert_str_eq(h->name, "Алиса"); /* written as \u escapes */
    ck_assert_int_eq(h->age, 8);
    ck_assert_str_eq(h->gender, "female");
    ck_assert_str_eq(h->appearance, "Red hair, \"green\" eyes");
    assert_list(&h->personality_traits, 2,
                (const char *const[]){"curious", "kind"});
    assert_list(&h->interests, 2, (const char *const[]){"books", "cats"});
    assert_list(&h->strengths, 1, (const char *const[]){"reading"});
    ck_assert_str_eq(h->language, "ru");
    ck_assert_str_eq(h->created_at, "2024-01-15T10:30:00.123456");
    ck_assert_str_eq(h->updated_at, "2024-01-15T10:30:00");
    ck_assert_int_eq(rc_hero_validate(h, true), RC_OK);
    rc_hero_free(h);
}
END_TEST

START_TEST(fixture_child_nulls)
{
    size_t len;
    char *text = fixture("child_envelope.json", &len);
    void *out = NULL;
    ck_assert_int_eq(rc_envelope_decode(&rc_child_codec, text, len, &out),
                     RC_OK);
    free(text);
    rc_child *c = out;
    ck_assert_ptr_null(c->id);         /* null */
    ck_assert_ptr_null(c->created_at); /* null */
    ck_assert_ptr_null(c->updated_at); /* absent */
    ck_assert_str_eq(c->name, "Emma");
    ck_assert_str_eq(c->age_category, "5-7");
    ck_assert_int_eq(c->age, 6);
    ck_assert_str_eq(c->gender, "female");
    ck_assert_uint_eq(c->interests.len, 0);
    rc_child_free(c);
}
END_TEST

START_TEST(fixture_story)
{
    size_t len;
    char *text = fixture("story_envelope.json", &len);
    void *out = NULL;
    ck_assert_int_eq(rc_envelope_decode(&rc_story_codec, text, len, &out),
                     RC_OK);
    free(text);
    rc_story *s = out;
    ck_assert_str_eq(s->id, "story-42");
    ck_assert_str_eq(s->title, "The Brave Little Fox");
    ck_assert_str_eq(s->content, "Once upon a time\xE2\x80\xA6\nThe end.");
    ck_assert_str_eq(s->moral, "Courage grows when shared.");
    ck_assert_str_eq(s->language, "en");
    ck_assert_str_eq(s->child_id, "child-7");
    ck_assert_str_eq(s->child_name, "Emma");
    ck_assert_str_eq(s->age_category, "5-7");
    ck_assert_str_eq(s->child_gender, "female");
    assert_list(&s->child_interests, 2,
                (const char *const[]){"foxes", "forests"});
    ck_assert(!s->story_length.set);
    ck_assert(s->rating.set);
    ck_assert_int_eq(s->rating.value, 8);
    ck_assert_ptr_nonnull(s->audio_file);
    ck_assert_str_eq(s->audio_file->url,
                     "https://cdn.example.com/audio/story-42.mp3");
    ck_assert_str_eq(s->audio_file->provider, "elevenlabs");
    ck_assert_str_eq(s->audio_file->metadata,
                     "{\"voice\":\"Rachel\",\"duration\":12.5,"
                     "\"chunks\":[1,2,3],\"cached\":true}");
    ck_assert_str_eq(s->model_used, "openai/gpt-4o-mini");
    ck_assert_str_eq(s->full_response,
                     "{\"id\":\"gen-1\",\"choices\":[{\"message\":{\"role\":"
                     "\"assistant\",\"content\":\"Once\xE2\x80\xA6\"}}],"
                     "\"usage\":{\"total_tokens\":512}}");
    ck_assert_str_eq(s->generation_info,
                     "{\"attempts\":1,\"temperature\":0.5,\"retried\":false,"
                     "\"notes\":null}");
    ck_assert_str_eq(s->created_at, "2024-01-15T10:30:00.000001");
    ck_assert_str_eq(s->updated_at, "2024-01-15T10:31:00.999999");
    ck_assert_int_eq(rc_story_validate(s, true), RC_OK);
    rc_story_free(s);
}
END_TEST

START_TEST(fixture_story_nulls)
{
    size_t len;
    char *text = fixture("story_nulls_envelope.json", &len);
    void *out = NULL;
    ck_assert_int_eq(rc_envelope_decode(&rc_story_codec, text, len, &out),
                     RC_OK);
    free(text);
    rc_story *s = out;
    ck_assert_str_eq(s->id, "story-43");
    ck_assert_str_eq(s->language, "ru");
    ck_assert_ptr_null(s->child_id);
    ck_assert_ptr_null(s->child_name);
    ck_assert_ptr_null(s->age_category);
    ck_assert_ptr_null(s->child_gender);
    ck_assert_uint_eq(s->child_interests.len, 0);
    ck_assert(!s->story_length.set);
    ck_assert(!s->rating.set);
    ck_assert_ptr_null(s->audio_file);
    ck_assert_ptr_null(s->model_used);
    ck_assert_ptr_null(s->full_response);
    ck_assert_ptr_null(s->generation_info);
    ck_assert_str_eq(s->created_at, "2024-01-15T10:30:00");
    ck_assert_ptr_null(s->updated_at);
    rc_story_free(s);
}
END_TEST

START_TEST(fixture_hero_list)
{
    size_t len;
    char *text = fixture("hero_list.json", &len);
    rc_list *l = NULL;
    ck_assert_int_eq(rc_envelope_list_decode(&rc_hero_codec, &rc_hero_entity,
                                             text, len, &l),
                     RC_OK);
    free(text);
    ck_assert_uint_eq(l->len, 3);
    ck_assert_ptr_eq(l->ops, &rc_hero_entity);
    rc_hero *a = l->items[0], *b = l->items[1], *c = l->items[2];
    ck_assert_str_eq(a->name, "Алиса");
    ck_assert_str_eq(b->id, "h2");
    ck_assert_int_eq(b->age, 30);
    ck_assert_str_eq(b->appearance, "");
    assert_list(&b->interests, 1, (const char *const[]){"chess"});
    ck_assert_str_eq(b->created_at, "2024-01-16T00:00:00.000000");
    ck_assert_str_eq(c->gender, "other");
    ck_assert_int_eq(c->age, 150);
    ck_assert_ptr_null(c->created_at);
    rc_list_free(l);
}
END_TEST

/* ---- strict types, missing fields ---- */

/* Is JSON value v (as text) of the right type for kind k? */
static bool type_ok(enum fk k, const json_t *v)
{
    switch (k) {
    case S:
        return json_is_string(v);
    case I:
        return json_is_integer(v);
    case L: {
        if (!json_is_array(v))
            return false;
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!json_is_string(json_array_get(v, i)))
                return false;
        return true;
    }
    case J:
        return true;
    case O:
        return false; /* none of the probes below is a valid audio object */
    }
    return false;
}

static const char *const probes[] = {
    "1",       "1.5",   "-3",  "\"s\"", "true",  "false",  "[]",
    "[\"a\"]", "[1]",   "{}",  "[\"a\", 2]", "{\"url\": 5}",
    "7.0",     "2147483648", "[null]",
};

/* Every field of every entity (and of audio_file) set to each probe value:
 * RC_OK when the type fits, RC_EDECODE otherwise. */
START_TEST(wrong_types)
{
    const etype *t = &types[_i];
    void *e = t->full();
    json_t *base = json_of(t->codec, e);
    t->ops->free(e);
    for (int nested = 0; nested < 2; nested++) {
        const wfield *wire = nested ? audio_wire : t->wire;
        if (nested && t->codec != &rc_story_codec)
            break;
        for (const wfield *f = wire; f->name != NULL; f++) {
            for (size_t p = 0; p < sizeof probes / sizeof probes[0]; p++) {
                json_t *j = json_deep_copy(base);
                json_t *target = nested ? json_object_get(j, "audio_file") : j;
                json_t *v = json_loads(probes[p], JSON_DECODE_ANY, NULL);
                ck_assert_ptr_nonnull(v);
                bool ok = type_ok(f->kind, v);
                /* 2147483648 is an integer but not an int */
                if (strcmp(probes[p], "2147483648") == 0 && f->kind == I)
                    ok = false;
                ck_assert_int_eq(json_object_set_new(target, f->name, v), 0);
                int rc = decode_json(t, j);
                ck_assert_msg(rc == (ok ? RC_OK : RC_EDECODE),
                              "%s.%s%s = %s gave %s (%s)", t->name,
                              nested ? "audio_file." : "", f->name, probes[p],
                              rc_status_name(rc), rc_errmsg());
                json_decref(j);
            }
        }
    }
    json_decref(base);
}
END_TEST

/* Removing or nulling a required field is RC_EDECODE; an optional one is
 * fine; unknown fields are ignored. */
START_TEST(missing_fields)
{
    const etype *t = &types[_i];
    void *e = t->full();
    json_t *base = json_of(t->codec, e);
    t->ops->free(e);
    for (int nested = 0; nested < 2; nested++) {
        const wfield *wire = nested ? audio_wire : t->wire;
        if (nested && t->codec != &rc_story_codec)
            break;
        for (const wfield *f = wire; f->name != NULL; f++) {
            for (int how = 0; how < 2; how++) {
                json_t *j = json_deep_copy(base);
                json_t *target = nested ? json_object_get(j, "audio_file") : j;
                if (how == 0)
                    json_object_del(target, f->name);
                else
                    json_object_set_new(target, f->name, json_null());
                json_object_set_new(j, "unknown_extra", json_pack("{s:[i]}", "x", 1));
                int rc = decode_json(t, j);
                ck_assert_msg(rc == (f->required ? RC_EDECODE : RC_OK),
                              "%s: %s %s gave %s", t->name, f->name,
                              how ? "null" : "removed", rc_status_name(rc));
                if (rc != RC_OK)
                    ck_assert_ptr_nonnull(strstr(rc_errmsg(), f->name));
                json_decref(j);
            }
        }
    }
    /* not an object at all */
    json_t *arr = json_array();
    void *out = (void *)1;
    ck_assert_int_eq(t->codec->decode(arr, &out), RC_EDECODE);
    ck_assert_ptr_null(out);
    json_decref(arr);
    json_decref(base);
}
END_TEST

/* ---- malformed input ---- */

/* Every proper prefix of a valid envelope (and list) text is refused. */
START_TEST(truncated)
{
    rc_story *s = sample_story_full();
    char *env;
    size_t len;
    ck_assert_int_eq(rc_envelope_encode(&rc_story_codec, s, 60, &env, &len),
                     RC_OK);
    for (size_t n = 0; n < len; n++) {
        void *out = (void *)1;
        int rc = rc_envelope_decode(&rc_story_codec, env, n, &out);
        ck_assert_msg(rc == RC_EDECODE, "prefix %zu gave %d", n, rc);
        ck_assert_ptr_null(out);
    }
    free(env);

    rc_list *l = rc_list_new(&rc_story_entity);
    ck_assert_int_eq(rc_list_push(l, s), RC_OK);
    ck_assert_int_eq(rc_list_push(l, sample_story_min()), RC_OK);
    ck_assert_int_eq(rc_envelope_list_encode(&rc_story_codec, l, 60, &env, &len),
                     RC_OK);
    rc_list_free(l);
    for (size_t n = 0; n < len; n++) {
        rc_list *out = (void *)1;
        int rc = rc_envelope_list_decode(&rc_story_codec, &rc_story_entity, env,
                                         n, &out);
        ck_assert_msg(rc == RC_EDECODE, "list prefix %zu gave %d", n, rc);
        ck_assert_ptr_null(out);
    }
    free(env);
}
END_TEST

static int decode_hero_text(const char *text)
{
    void *out = NULL;
    int rc = rc_envelope_decode(&rc_hero_codec, text, strlen(text), &out);
    rc_hero_free(out);
    return rc;
}

#define HERO_ENV_(name)                                                        \
    "{\"entity\":{\"name\":\"" name "\",\"age\":5,\"gender\":\"male\","        \
    "\"appearance\":\"\",\"language\":\"en\"},\"cached_at\":\"x\",\"ttl\":1}"

START_TEST(invalid_utf8)
{
    ck_assert_int_eq(decode_hero_text(HERO_ENV_("ok \xC3\xA9")), RC_OK);
    const char *bad[] = {
        HERO_ENV_("\xFF"),         HERO_ENV_("\xC3"),
        HERO_ENV_("\xC0\xAF"),     HERO_ENV_("\xED\xA0\x80"),
        HERO_ENV_("\xF4\x90\x80\x80"), HERO_ENV_("\\ud800"),
        HERO_ENV_("a\\u0000b"),    HERO_ENV_("\x80"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(decode_hero_text(bad[i]) == RC_EDECODE, "case %zu", i);
    /* an embedded NUL byte inside the given length */
    const char nul[] = "{\"entity\":{\"name\":\"a\0b\"}}";
    void *out = NULL;
    ck_assert_int_eq(
        rc_envelope_decode(&rc_hero_codec, nul, sizeof nul - 1, &out),
        RC_EDECODE);
    ck_assert_ptr_null(out);
}
END_TEST

/* A key given twice in one object, at any level, is RC_EDECODE with a
 * message saying so; never "the last one wins" (not even for "id"). */
START_TEST(duplicate_keys)
{
    static const struct {
        int type;         /* index in types */
        const char *text; /* an entity, envelope or list text */
        int kind;         /* 0 entity, 1 envelope, 2 list */
    } cases[] = {
        {0, "{\"id\":\"h1\",\"name\":\"a\",\"age\":5,\"gender\":\"male\","
            "\"appearance\":\"\",\"language\":\"en\",\"id\":\"h2\"}", 0},
        {0, "{\"name\":\"a\",\"age\":5,\"age\":6,\"gender\":\"male\","
            "\"appearance\":\"\",\"language\":\"en\"}", 0},
        {0, "{\"name\":\"a\",\"age\":5,\"gender\":\"male\",\"appearance\":\"\","
            "\"language\":\"en\",\"extra\":1,\"extra\":2}", 0},
        {2, "{\"title\":\"t\",\"content\":\"c\",\"moral\":\"m\",\"language\":"
            "\"en\",\"audio_file\":{\"url\":\"u1\",\"url\":\"u2\"}}", 0},
        {2, "{\"title\":\"t\",\"content\":\"c\",\"moral\":\"m\",\"language\":"
            "\"en\",\"generation_info\":{\"a\":1,\"a\":2}}", 0},
        {0, "{\"entity\":{\"name\":\"a\",\"age\":5,\"gender\":\"male\","
            "\"appearance\":\"\",\"language\":\"en\",\"id\":\"x\",\"id\":\"y\"},"
            "\"ttl\":1}", 1},
        {0, "{\"entity\":{\"name\":\"a\",\"age\":5,\"gender\":\"male\","
            "\"appearance\":\"\",\"language\":\"en\"},\"ttl\":1,\"ttl\":2}", 1},
        {0, "[" HERO_ENV_("a") ",{\"entity\":{\"name\":\"b\",\"name\":\"c\"}}]", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const etype *t = &types[cases[i].type];
        const char *text = cases[i].text;
        void *e = (void *)1;
        rc_list *l = (rc_list *)1;
        int rc;
        if (cases[i].kind == 0)
            rc = rc_entity_decode_text(t->codec, text, strlen(text), &e);
        else if (cases[i].kind == 1)
            rc = rc_envelope_decode(t->codec, text, strlen(text), &e);
        else
            rc = rc_envelope_list_decode(t->codec, t->ops, text, strlen(text), &l);
        ck_assert_msg(rc == RC_EDECODE, "case %zu gave %s", i, rc_status_name(rc));
        ck_assert_msg(strstr(rc_errmsg(), "twice") != NULL, "case %zu: %s", i,
                      rc_errmsg());
        ck_assert_ptr_null(cases[i].kind == 2 ? (void *)l : e);
    }
}
END_TEST

/* "[[[...1...]]]" with depth levels, as a malloc'd string. */
static char *nested(size_t depth)
{
    char *s = malloc(2 * depth + 2);
    ck_assert_ptr_nonnull(s);
    memset(s, '[', depth);
    s[depth] = '1';
    memset(s + depth + 1, ']', depth);
    s[2 * depth + 1] = '\0';
    return s;
}

static int decode_story_with_full_response(const char *value)
{
    size_t n = strlen(value) + 256;
    char *text = malloc(n);
    ck_assert_ptr_nonnull(text);
    snprintf(text, n,
             "{\"entity\":{\"title\":\"t\",\"content\":\"c\",\"moral\":\"m\","
             "\"language\":\"en\",\"full_response\":%s}}",
             value);
    void *out = NULL;
    int rc = rc_envelope_decode(&rc_story_codec, text, strlen(text), &out);
    if (rc == RC_OK) {
        ck_assert_str_eq(((rc_story *)out)->full_response, value);
    }
    rc_story_free(out);
    free(text);
    return rc;
}

START_TEST(deep_nesting)
{
    char *ok = nested(500);
    ck_assert_int_eq(decode_story_with_full_response(ok), RC_OK);
    free(ok);
    char *deep = nested(200000);
    ck_assert_int_eq(decode_story_with_full_response(deep), RC_EDECODE);
    /* deep nesting as the whole text */
    void *out = NULL;
    ck_assert_int_eq(
        rc_envelope_decode(&rc_story_codec, deep, strlen(deep), &out),
        RC_EDECODE);
    rc_list *l = NULL;
    ck_assert_int_eq(rc_envelope_list_decode(&rc_story_codec, &rc_story_entity,
                                             deep, strlen(deep), &l),
                     RC_EDECODE);
    ck_assert_ptr_null(l);
    free(deep);
    /* an entity whose JSON-text field is too deep cannot be encoded */
    rc_story *s = sample_story_min();
    s->full_response = nested(200000);
    char *text = NULL;
    ck_assert_int_eq(rc_entity_encode_text(&rc_story_codec, s, &text),
                     RC_EINVAL);
    ck_assert_ptr_null(text);
    rc_story_free(s);
}
END_TEST

/* A JSON string value of n bytes of 'a' (with quotes), malloc'd. */
static char *json_str(size_t n)
{
    char *s = malloc(n + 3);
    ck_assert_ptr_nonnull(s);
    s[0] = '"';
    memset(s + 1, 'a', n);
    s[n + 1] = '"';
    s[n + 2] = '\0';
    return s;
}

static int decode_story_with(const char *key, const char *value)
{
    json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "title", "t", "content", "c",
                          "moral", "m", "language", "en");
    json_t *v = json_loads(value, JSON_DECODE_ANY, NULL);
    ck_assert_ptr_nonnull(v);
    json_object_set_new(j, key, v);
    int rc = decode_json(&types[2], j);
    json_decref(j);
    return rc;
}

START_TEST(huge_strings)
{
    const size_t mib = 1048576;
    char *s = json_str(mib);
    ck_assert_int_eq(decode_story_with("content", s), RC_OK);
    free(s);
    s = json_str(mib + 1);
    ck_assert_int_eq(decode_story_with("content", s), RC_EDECODE);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "content"));
    free(s);
    s = json_str(16 * mib);
    ck_assert_int_eq(decode_story_with("moral", s), RC_EDECODE);
    free(s);
    s = json_str(256);
    ck_assert_int_eq(decode_story_with("title", s), RC_OK);
    free(s);
    s = json_str(257);
    ck_assert_int_eq(decode_story_with("title", s), RC_EDECODE);
    free(s);
    s = json_str(1025);
    ck_assert_int_eq(decode_story_with("model_used", s), RC_EDECODE);
    free(s);
    /* a JSON-text field over 1 MiB once dumped */
    s = json_str(mib);
    ck_assert_int_eq(decode_story_with("full_response", s), RC_EDECODE);
    free(s);

    /* lists: 256 items fine, 257 refused; an item over 1024 bytes refused */
    char *list = malloc(257 * 4 + 3);
    ck_assert_ptr_nonnull(list);
    for (int n = 256; n <= 257; n++) {
        char *p = list;
        *p++ = '[';
        for (int i = 0; i < n; i++)
            p += sprintf(p, "%s\"x\"", i ? "," : "");
        strcpy(p, "]");
        ck_assert_int_eq(decode_story_with("child_interests", list),
                         n == 256 ? RC_OK : RC_EDECODE);
    }
    free(list);
    s = json_str(1025);
    char item[1100];
    snprintf(item, sizeof item, "[%s]", s);
    ck_assert_int_eq(decode_story_with("child_interests", item), RC_EDECODE);
    free(s);
}
END_TEST

/* ---- envelopes ---- */

static bool iso_micro(const char *s)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddddd";
    if (strlen(s) != sizeof pat - 1)
        return false;
    for (size_t i = 0; pat[i]; i++)
        if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i])
            return false;
    return true;
}

START_TEST(iso_now)
{
    char *now = NULL;
    ck_assert_int_eq(rc_iso_now(&now), RC_OK);
    ck_assert_msg(iso_micro(now), "bad timestamp %s", now);
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    char day[16];
    strftime(day, sizeof day, "%Y-%m-%d", &tm);
    /* same UTC day (allowing the test to straddle midnight is not worth it) */
    if (tm.tm_hour != 23 || tm.tm_min != 59)
        ck_assert_int_eq(strncmp(now, day, 10), 0);
    free(now);
}
END_TEST

START_TEST(envelope_format)
{
    rc_hero *h = sample_hero_full();
    char *env;
    size_t len;
    ck_assert_int_eq(rc_envelope_encode(&rc_hero_codec, h, 3600, &env, &len),
                     RC_OK);
    json_t *j = json_loadb(env, len, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_uint_eq(json_object_size(j), 3);
    ck_assert(json_is_object(json_object_get(j, "entity")));
    ck_assert(iso_micro(json_string_value(json_object_get(j, "cached_at"))));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "ttl")), 3600);
    /* first key is "entity" (docs/wire-format.md), as Python writes it */
    ck_assert_int_eq(strncmp(env, "{\"entity\":{", 11), 0);
    json_decref(j);
    free(env);
    rc_hero_free(h);

    static const struct {
        const char *text;
        int rc;
    } cases[] = {
        {"{\"entity\":{\"name\":\"n\",\"age\":1,\"gender\":\"male\","
         "\"appearance\":\"\",\"language\":\"en\"}}", RC_OK},
        {"{\"entity\":{\"name\":\"n\",\"age\":1,\"gender\":\"male\","
         "\"appearance\":\"\",\"language\":\"en\"},\"cached_at\":null,"
         "\"ttl\":null,\"more\":[]}", RC_OK},
        {"{\"entity\":{\"name\":\"n\",\"age\":1,\"gender\":\"male\","
         "\"appearance\":\"\",\"language\":\"en\"},\"cached_at\":5}", RC_EDECODE},
        {"{\"entity\":{\"name\":\"n\",\"age\":1,\"gender\":\"male\","
         "\"appearance\":\"\",\"language\":\"en\"},\"ttl\":\"60\"}", RC_EDECODE},
        {"{\"name\":\"n\",\"age\":1,\"gender\":\"male\",\"appearance\":\"\","
         "\"language\":\"en\"}", RC_EDECODE}, /* bare entity, no envelope */
        {"{\"entity\":{\"name\":\"n\",\"age\":1,\"gender\":\"male\","
         "\"appearance\":\"\",\"language\":\"en\"},\"ttl\":60.0}", RC_OK},
        {"{\"entity\":null}", RC_EDECODE},
        {"{\"entity\":[]}", RC_EDECODE},
        {"{\"entity\":\"{}\"}", RC_EDECODE},
        {"[]", RC_EDECODE},
        {"", RC_EDECODE},
        {"null", RC_EDECODE},
        {"{\"entity\":{}} trailing", RC_EDECODE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        void *out = (void *)1;
        int rc = rc_envelope_decode(&rc_hero_codec, cases[i].text,
                                    strlen(cases[i].text), &out);
        ck_assert_msg(rc == cases[i].rc, "case %zu gave %s (%s)", i,
                      rc_status_name(rc), rc_errmsg());
        if (rc != RC_OK)
            ck_assert_ptr_null(out);
        rc_hero_free(rc == RC_OK ? out : NULL);
    }
}
END_TEST

START_TEST(envelope_list)
{
    rc_list *l = rc_list_new(&rc_story_entity);
    for (int i = 0; i < 50; i++) {
        rc_story *s = i % 2 ? sample_story_full() : sample_story_min();
        s->rating = (rc_opt_int){.set = true, .value = 1 + i % 10};
        ck_assert_int_eq(rc_list_push(l, s), RC_OK);
    }
    char *text;
    size_t len;
    ck_assert_int_eq(rc_envelope_list_encode(&rc_story_codec, l, 600, &text, &len),
                     RC_OK);
    json_t *j = json_loadb(text, len, 0, NULL);
    ck_assert(json_is_array(j));
    ck_assert_uint_eq(json_array_size(j), 50);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_array_get(j, 7), "ttl")), 600);
    json_decref(j);
    rc_list *d = NULL;
    ck_assert_int_eq(rc_envelope_list_decode(&rc_story_codec, &rc_story_entity,
                                             text, len, &d),
                     RC_OK);
    free(text);
    ck_assert_uint_eq(d->len, 50);
    for (size_t i = 0; i < 50; i++) {
        char *a = text_of(&rc_story_codec, l->items[i]);
        char *b = text_of(&rc_story_codec, d->items[i]);
        ck_assert_str_eq(a, b);
        free(a);
        free(b);
    }
    rc_list_free(d);
    rc_list_free(l);

    /* empty list */
    l = rc_list_new(&rc_hero_entity);
    ck_assert_int_eq(rc_envelope_list_encode(&rc_hero_codec, l, 1, &text, &len),
                     RC_OK);
    ck_assert_str_eq(text, "[]");
    ck_assert_int_eq(rc_envelope_list_decode(&rc_hero_codec, &rc_hero_entity,
                                             text, len, &d),
                     RC_OK);
    ck_assert_uint_eq(d->len, 0);
    rc_list_free(d);
    rc_list_free(l);
    free(text);

    /* one bad element spoils the list, and the decoded ones are freed */
    const char *bad = "[" HERO_ENV_("a") "," HERO_ENV_("b") ",{\"entity\":{}}]";
    d = (void *)1;
    ck_assert_int_eq(rc_envelope_list_decode(&rc_hero_codec, &rc_hero_entity,
                                             bad, strlen(bad), &d),
                     RC_EDECODE);
    ck_assert_ptr_null(d);
    const char *notarr = HERO_ENV_("a");
    ck_assert_int_eq(rc_envelope_list_decode(&rc_hero_codec, &rc_hero_entity,
                                             notarr, strlen(notarr), &d),
                     RC_EDECODE);
}
END_TEST

/* ---- encode failures ---- */

START_TEST(encode_errors)
{
    char *text = (char *)1;
    rc_hero *h = sample_hero_min();
    free(h->name);
    h->name = strdup("bad \xFF utf8");
    ck_assert_int_eq(rc_entity_encode_text(&rc_hero_codec, h, &text), RC_EINVAL);
    ck_assert_ptr_null(text);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "name"));
    size_t len;
    ck_assert_int_eq(rc_envelope_encode(&rc_hero_codec, h, 5, &text, &len),
                     RC_EINVAL);
    ck_assert_ptr_null(text);
    rc_hero_free(h);

    rc_story *s = sample_story_min();
    s->generation_info = strdup("{not json");
    ck_assert_int_eq(rc_entity_encode_text(&rc_story_codec, s, &text), RC_EINVAL);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "generation_info"));
    rc_list *l = rc_list_new(&rc_story_entity);
    ck_assert_int_eq(rc_list_push(l, sample_story_min()), RC_OK);
    ck_assert_int_eq(rc_list_push(l, s), RC_OK);
    ck_assert_int_eq(rc_envelope_list_encode(&rc_story_codec, l, 5, &text, &len),
                     RC_EINVAL);
    ck_assert_ptr_null(text);
    rc_list_free(l);

    ck_assert_int_eq(rc_entity_encode_text(&rc_story_codec, NULL, &text),
                     RC_EINVAL);
}
END_TEST

/* A user codec whose encode fails is reported as out of memory. */
static json_t *failing_encode(const void *e)
{
    (void)e;
    return NULL;
}

START_TEST(user_codec_failure)
{
    const rc_codec failing = {.encode = failing_encode,
                              .decode = rc_hero_codec.decode};
    rc_hero *h = sample_hero_min();
    char *text = (char *)1;
    size_t len;
    ck_assert_int_eq(rc_entity_encode_text(&failing, h, &text), RC_ENOMEM);
    ck_assert_ptr_null(text);
    ck_assert_int_eq(rc_envelope_encode(&failing, h, 1, &text, &len), RC_ENOMEM);
    rc_hero_free(h);
}
END_TEST

/* ---- out of memory at every jansson allocation ---- */

static long chaos_fail_at; /* fail the Nth allocation (1-based); 0 = never */
static long chaos_count;   /* allocations so far */
static long chaos_live;    /* allocations not yet freed */

static void *chaos_malloc(size_t n)
{
    if (chaos_fail_at != 0 && ++chaos_count == chaos_fail_at)
        return NULL;
    void *p = malloc(n);
    if (p != NULL)
        chaos_live++;
    return p;
}

static void chaos_free(void *p)
{
    if (p != NULL)
        chaos_live--;
    free(p);
}

/* Runs op with allocation N failing, for N = 1, 2, ... until op succeeds;
 * every failure must be RC_ENOMEM and leave no jansson allocation behind.
 * parse_rc: jansson's lexer reports some failed allocations as syntax
 * errors ("string or '}' expected"), so whatever op parses may also fail
 * with the code of a parse error: RC_EDECODE for decoding (for a cache: a
 * miss), RC_EINVAL for the JSON-text fields an encoder parses. Never
 * anything else, never a leak. */
static void chaos(const char *what, int (*op)(void *), void *arg, int parse_rc)
{
    json_set_alloc_funcs(chaos_malloc, chaos_free);
    long n;
    int rc = RC_ENOMEM;
    for (n = 1; n < 100000; n++) {
        chaos_fail_at = n;
        chaos_count = 0;
        chaos_live = 0;
        rc = op(arg);
        ck_assert_msg(chaos_live == 0, "%s: %ld jansson blocks leaked at N=%ld",
                      what, chaos_live, n);
        if (rc == RC_OK)
            break;
        ck_assert_msg(rc == RC_ENOMEM || rc == parse_rc,
                      "%s: N=%ld gave %s (%s)", what, n,
                      rc_status_name(rc), rc_errmsg());
    }
    chaos_fail_at = 0;
    json_set_alloc_funcs(malloc, free);
    ck_assert_int_eq(rc, RC_OK);
    ck_assert_msg(n > 5, "%s: too few allocations to test (%ld)", what, n);
}

static int op_decode_story(void *arg)
{
    const char *text = arg;
    void *out = NULL;
    int rc = rc_envelope_decode(&rc_story_codec, text, strlen(text), &out);
    if (rc != RC_OK)
        ck_assert_ptr_null(out);
    rc_story_free(out);
    return rc;
}

static int op_encode_story(void *arg)
{
    char *text = NULL;
    size_t len;
    int rc = rc_envelope_encode(&rc_story_codec, arg, 600, &text, &len);
    if (rc != RC_OK)
        ck_assert_ptr_null(text);
    free(text);
    return rc;
}

static int op_decode_list(void *arg)
{
    const char *text = arg;
    rc_list *l = NULL;
    int rc = rc_envelope_list_decode(&rc_hero_codec, &rc_hero_entity, text,
                                     strlen(text), &l);
    rc_list_free(l);
    return rc;
}

static int op_encode_list(void *arg)
{
    char *text = NULL;
    size_t len;
    int rc = rc_envelope_list_encode(&rc_hero_codec, arg, 60, &text, &len);
    free(text);
    return rc;
}

START_TEST(chaos_oom)
{
    char *story = fixture("story_envelope.json", NULL);
    chaos("decode story", op_decode_story, story, RC_EDECODE);
    free(story);
    rc_story *s = sample_story_full();
    chaos("encode story", op_encode_story, s, RC_EINVAL);
    rc_story_free(s);
    char *list = fixture("hero_list.json", NULL);
    chaos("decode list", op_decode_list, list, RC_EDECODE);
    free(list);
    rc_list *l = rc_list_new(&rc_hero_entity);
    ck_assert_int_eq(rc_list_push(l, sample_hero_full()), RC_OK);
    ck_assert_int_eq(rc_list_push(l, sample_hero_min()), RC_OK);
    chaos("encode list", op_encode_list, l, RC_ENOMEM);
    rc_list_free(l);
}
END_TEST

static Suite *codec_suite(void)
{
    Suite *s = suite_create("codec");
    struct {
        const char *name;
        const TTest *test;
        int loops; /* 0: plain test; n: loop test over 0..n-1 */
    } cases[] = {
        {"roundtrip_full", roundtrip_full, NTYPES},
        {"roundtrip_min_nulls", roundtrip_min_nulls, NTYPES},
        {"wire_field_names", wire_field_names, NTYPES},
        {"story_fields", story_fields_explicit, 0},
        {"json_text_any_value", json_text_any_value, 0},
        {"fixture_hero", fixture_hero, 0},
        {"fixture_child_nulls", fixture_child_nulls, 0},
        {"fixture_story", fixture_story, 0},
        {"fixture_story_nulls", fixture_story_nulls, 0},
        {"fixture_hero_list", fixture_hero_list, 0},
        {"wrong_types", wrong_types, NTYPES},
        {"missing_fields", missing_fields, NTYPES},
        {"truncated", truncated, 0},
        {"invalid_utf8", invalid_utf8, 0},
        {"duplicate_keys", duplicate_keys, 0},
        {"deep_nesting", deep_nesting, 0},
        {"huge_strings", huge_strings, 0},
        {"iso_now", iso_now, 0},
        {"envelope_format", envelope_format, 0},
        {"envelope_list", envelope_list, 0},
        {"encode_errors", encode_errors, 0},
        {"user_codec_failure", user_codec_failure, 0},
        {"chaos_oom", chaos_oom, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        if (cases[i].loops > 0)
            tcase_add_loop_test(tc, cases[i].test, 0, cases[i].loops);
        else
            tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    return th_run_suite(codec_suite());
}
