/*
 * check_entity.c - string lists, entity new/free/clone, validation limits,
 * packed entities, entity descriptors and result lists.
 *
 * The validation limits below are written out independently of the
 * implementation's field tables (from the contract in repocache/entity.h),
 * so a changed limit in the library fails here.
 */
#include "core/pack.h"
#include "repocache/codec.h"
#include "repocache/entity.h"
#include "repocache/status.h"

#include "entity_samples.h"
#include "harness.h"

#include <check.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Compact JSON text of e (caller frees): used to compare whole entities. */
static char *text_of(const rc_codec *codec, const void *e)
{
    char *t = NULL;
    ck_assert_int_eq(rc_entity_encode_text(codec, e, &t), RC_OK);
    return t;
}

/* ---- string lists ---- */

START_TEST(strlist_push_copy_clear)
{
    rc_strlist l = {0};
    for (int i = 0; i < 100; i++) {
        char buf[16];
        snprintf(buf, sizeof buf, "item%d", i);
        ck_assert_int_eq(rc_strlist_push(&l, buf), RC_OK);
    }
    ck_assert_uint_eq(l.len, 100);
    ck_assert_str_eq(l.items[0], "item0");
    ck_assert_str_eq(l.items[99], "item99");

    rc_strlist c = {0};
    ck_assert_int_eq(rc_strlist_copy(&c, &l), RC_OK);
    ck_assert_uint_eq(c.len, 100);
    for (size_t i = 0; i < l.len; i++) {
        ck_assert_str_eq(c.items[i], l.items[i]);
        ck_assert_ptr_ne(c.items[i], l.items[i]);
    }
    c.items[5][0] = 'X';
    ck_assert_str_eq(l.items[5], "item5");

    rc_strlist_clear(&l);
    ck_assert_uint_eq(l.len, 0);
    ck_assert_ptr_null(l.items);
    rc_strlist_clear(&l); /* clearing twice is harmless */
    rc_strlist_clear(NULL);

    rc_strlist e = {0};
    ck_assert_int_eq(rc_strlist_copy(&e, &l), RC_OK); /* empty copy */
    ck_assert_uint_eq(e.len, 0);
    rc_strlist_clear(&c);
}
END_TEST

/* ---- lifecycle ---- */

START_TEST(new_is_zeroed_and_free_accepts_null)
{
    rc_hero *h = rc_hero_new();
    rc_child *c = rc_child_new();
    rc_story *s = rc_story_new();
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_null(h->id);
    ck_assert_ptr_null(h->name);
    ck_assert_int_eq(h->age, 0);
    ck_assert_uint_eq(h->interests.len, 0);
    ck_assert_ptr_null(c->name);
    ck_assert_ptr_null(s->audio_file);
    ck_assert(!s->rating.set);
    ck_assert(!s->story_length.set);
    rc_hero_free(h);
    rc_child_free(c);
    rc_story_free(s);
    rc_hero_free(NULL);
    rc_child_free(NULL);
    rc_story_free(NULL);
    rc_hero_entity.free(NULL);
    rc_child_entity.free(NULL);
    rc_story_entity.free(NULL);
    rc_list_free(NULL);
    /* an empty entity (all NULL) is freed without touching NULL members */
    rc_story_free(rc_story_new());
}
END_TEST

/* Clone of each sample equals it (same JSON) and shares no memory. */
START_TEST(clone_equals_and_is_independent)
{
    rc_hero *h = sample_hero_full();
    rc_hero *hc = rc_hero_clone(h);
    ck_assert_ptr_nonnull(hc);
    char *a = text_of(&rc_hero_codec, h), *b = text_of(&rc_hero_codec, hc);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    ck_assert_ptr_ne(hc->name, h->name);
    ck_assert_ptr_ne(hc->personality_traits.items, h->personality_traits.items);
    ck_assert_ptr_ne(hc->personality_traits.items[0],
                     h->personality_traits.items[0]);
    hc->name[0] = 'X';
    hc->personality_traits.items[0][0] = 'X';
    rc_strlist_clear(&hc->strengths);
    ck_assert_str_eq(h->personality_traits.items[0], "brave");
    ck_assert_uint_eq(h->strengths.len, 2);
    ck_assert(h->name[0] != 'X');
    rc_hero_free(hc);
    /* the original survives its clone's free */
    ck_assert_str_eq(h->interests.items[0], "flying");
    rc_hero_free(h);

    rc_child *c = sample_child_full();
    rc_child *cc = rc_child_clone(c);
    ck_assert_ptr_nonnull(cc);
    a = text_of(&rc_child_codec, c);
    b = text_of(&rc_child_codec, cc);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    ck_assert_ptr_ne(cc->interests.items[1], c->interests.items[1]);
    ck_assert_ptr_ne(cc->created_at, c->created_at);
    rc_child_free(c);
    rc_child_free(cc);

    rc_story *s = sample_story_full();
    rc_story *sc = rc_story_clone(s);
    ck_assert_ptr_nonnull(sc);
    a = text_of(&rc_story_codec, s);
    b = text_of(&rc_story_codec, sc);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    ck_assert_ptr_ne(sc->audio_file, s->audio_file);
    ck_assert_ptr_ne(sc->audio_file->metadata, s->audio_file->metadata);
    ck_assert_ptr_ne(sc->full_response, s->full_response);
    ck_assert(sc->rating.set);
    ck_assert_int_eq(sc->rating.value, 9);
    ck_assert_int_eq(sc->story_length.value, 5);
    sc->audio_file->url[0] = 'X';
    ck_assert_str_eq(s->audio_file->url,
                     "https://cdn.example.com/a.mp3?sig=a%2Fb");
    rc_story_free(sc);
    rc_story_free(s);

    /* minimal entities: NULL members stay NULL in the clone */
    rc_story *m = sample_story_min();
    rc_story *mc = rc_story_clone(m);
    ck_assert_ptr_null(mc->audio_file);
    ck_assert_ptr_null(mc->full_response);
    ck_assert_ptr_null(mc->child_interests.items);
    ck_assert(!mc->rating.set);
    rc_story_free(m);
    rc_story_free(mc);
}
END_TEST

/* ---- packed entities ---- */

/* Whether p points into e's packed block. */
static bool in_block(const void *e, size_t n, const void *p)
{
    return (const char *)p >= (const char *)e && (const char *)p < (const char *)e + n;
}

START_TEST(packed_equals_and_frees_assigned_members)
{
    rc_story *s = sample_story_full();
    rc_story *p = rc_entity_pack(&rc_story_entity, s);
    ck_assert_ptr_nonnull(p);
    size_t n = p->packed_bytes_;
    ck_assert_uint_gt(n, sizeof *p);
    ck_assert_uint_eq(s->packed_bytes_, 0);
    ck_assert(in_block(p, n, p->title) && in_block(p, n, p->audio_file));
    ck_assert(in_block(p, n, p->audio_file->metadata));
    ck_assert(in_block(p, n, p->child_interests.items));
    ck_assert(in_block(p, n, p->child_interests.items[1]));
    char *a = text_of(&rc_story_codec, s), *b = text_of(&rc_story_codec, p);
    ck_assert_str_eq(a, b);
    free(b);

    /* a packed copy of a packed entity: its own block, the same content */
    rc_story *q = rc_entity_copy(&rc_story_entity, p, true);
    ck_assert_ptr_nonnull(q);
    ck_assert_uint_eq(q->packed_bytes_, n);
    ck_assert(in_block(q, n, q->audio_file->url) && !in_block(p, n, q->audio_file->url));
    b = text_of(&rc_story_codec, q);
    ck_assert_str_eq(a, b);
    free(b);

    /* members assigned by the caller are freed with the block (ASan and
     * valgrind see a leak or a bad free otherwise) */
    q->title = strdup("Assigned");
    q->audio_file = calloc(1, sizeof *q->audio_file);
    q->audio_file->url = strdup("https://example.com/b.mp3");
    q->child_interests.items[0] = strdup("assigned item");
    rc_story_free(q);

    /* an ordinary copy of a packed entity: each member its own allocation */
    rc_story *c = rc_entity_copy(&rc_story_entity, p, false);
    ck_assert_uint_eq(c->packed_bytes_, 0);
    free(c->title);
    c->title = strdup("Mine");
    rc_story_free(c);
    c = rc_story_clone(p);
    ck_assert_uint_eq(c->packed_bytes_, 0);
    b = text_of(&rc_story_codec, c);
    ck_assert_str_eq(a, b);
    free(b);
    rc_story_free(c);

    /* a list of packed heroes, copied packed and not */
    rc_list *l = rc_list_new(&rc_hero_entity);
    rc_list_push(l, sample_hero_full());
    rc_list_push(l, sample_hero_full());
    rc_list *lp = rc_list_pack(l), *lc = rc_list_copy(lp, true), *lo = rc_list_copy(lp, false);
    ck_assert_uint_eq(lc->len, 2);
    ck_assert_uint_gt(((rc_hero *)lc->items[1])->packed_bytes_, 0);
    ck_assert_uint_eq(((rc_hero *)lo->items[1])->packed_bytes_, 0);
    free(((rc_hero *)lo->items[0])->name);
    ((rc_hero *)lo->items[0])->name = strdup("x");
    rc_list_free(l);
    rc_list_free(lp);
    rc_list_free(lc);
    rc_list_free(lo);
    free(a);
    rc_story_free(p);
    rc_story_free(s);
}
END_TEST

/* ---- validation ---- */

START_TEST(samples_are_valid)
{
    rc_hero *h = sample_hero_full();
    rc_child *c = sample_child_full();
    rc_story *s = sample_story_full();
    ck_assert_int_eq(rc_hero_validate(h, true), RC_OK);
    ck_assert_int_eq(rc_child_validate(c, true), RC_OK);
    ck_assert_int_eq(rc_story_validate(s, true), RC_OK);
    rc_hero_free(h);
    rc_child_free(c);
    rc_story_free(s);
    h = sample_hero_min();
    c = sample_child_min();
    s = sample_story_min();
    ck_assert_int_eq(rc_hero_validate(h, true), RC_OK);
    ck_assert_int_eq(rc_child_validate(c, true), RC_OK);
    ck_assert_int_eq(rc_story_validate(s, true), RC_OK);
    rc_hero_free(h);
    rc_child_free(c);
    rc_story_free(s);
}
END_TEST

START_TEST(require_id)
{
    rc_hero *h = sample_hero_min();
    free(h->id);
    h->id = NULL;
    ck_assert_int_eq(rc_hero_validate(h, false), RC_OK);
    ck_assert_int_eq(rc_hero_validate(h, true), RC_EINVAL);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "id"));
    ck_assert_int_eq(rc_hero_entity.validate(h, true), RC_EINVAL);
    rc_hero_free(h);
    rc_story *s = sample_story_min();
    free(s->id);
    s->id = NULL;
    ck_assert_int_eq(rc_story_validate(s, false), RC_OK);
    ck_assert_int_eq(rc_story_validate(s, true), RC_EINVAL);
    rc_story_free(s);
    rc_child *c = sample_child_min();
    free(c->id);
    c->id = NULL;
    ck_assert_int_eq(rc_child_validate(c, true), RC_EINVAL);
    rc_child_free(c);
}
END_TEST

START_TEST(id_rules)
{
    char id[RC_ID_MAX + 2];
    memset(id, 'a', sizeof id);
    id[RC_ID_MAX] = '\0';
    ck_assert_int_eq(rc_id_validate(id), RC_OK);
    id[RC_ID_MAX] = 'a';
    id[RC_ID_MAX + 1] = '\0';
    ck_assert_int_eq(rc_id_validate(id), RC_EINVAL);
    ck_assert_int_eq(rc_id_validate("AZaz09._-"), RC_OK);
    ck_assert_int_eq(rc_id_validate("a"), RC_OK);
    ck_assert_int_eq(rc_id_validate("alll"), RC_OK);
    ck_assert_int_eq(rc_id_validate("ALL"), RC_OK);
    ck_assert_int_eq(rc_id_validate("all"), RC_EINVAL);
    ck_assert_int_eq(rc_id_validate(""), RC_EINVAL);
    ck_assert_int_eq(rc_id_validate(NULL), RC_EINVAL);
    const char *bad[] = {"a b", "a:b", "a*", "a?", "a[1]", "a\\b", "a/b",
                         "\xC3\xA9", "a\n", "{x}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(rc_id_validate(bad[i]) == RC_EINVAL, "accepted %s",
                      bad[i]);
        ck_assert_ptr_nonnull(strstr(rc_errmsg(), "id"));
    }
}
END_TEST

/*
 * One row per rule: a valid sample gets field `field` set to the value at
 * the limit (must be RC_OK) and just past it (must be RC_EINVAL with a
 * message naming the field).
 */
enum ent { HERO, CHILD, STORY, AUDIO };
enum kind {
    K_LEN,     /* string of n bytes of 'a' (n = ok / bad) */
    K_JSONLEN, /* JSON string text of exactly n bytes */
    K_STR,     /* string value okv / badv (badv NULL: set NULL) */
    K_INT,     /* int member */
    K_OPTINT,  /* rc_opt_int member */
    K_LISTN,   /* list of n one-byte items */
    K_ITEMLEN, /* list with one item of n bytes */
};

typedef struct vcase {
    enum ent ent;
    const char *field; /* name the message must contain */
    enum kind kind;
    size_t off;        /* offsetof the member */
    long ok, bad;      /* K_LEN, K_JSONLEN, K_INT, K_OPTINT, K_LISTN, K_ITEMLEN */
    const char *okv, *badv; /* K_STR */
} vcase;

#define LEN_(E, T, m, ok, bad) {E, #m, K_LEN, offsetof(T, m), ok, bad, 0, 0}
#define STR_(E, T, m, okv, badv) {E, #m, K_STR, offsetof(T, m), 0, 0, okv, badv}
#define INT_(E, T, m, ok, bad) {E, #m, K_INT, offsetof(T, m), ok, bad, 0, 0}
#define OPT_(E, T, m, ok, bad) {E, #m, K_OPTINT, offsetof(T, m), ok, bad, 0, 0}
#define LISTN_(E, T, m) {E, #m, K_LISTN, offsetof(T, m), 256, 257, 0, 0}
#define ITEM_(E, T, m) {E, #m, K_ITEMLEN, offsetof(T, m), 1024, 1025, 0, 0}
#define JLEN_(E, T, m) {E, #m, K_JSONLEN, offsetof(T, m), 1048576, 1048577, 0, 0}

#define MIB 1048576L
static const vcase vcases[] = {
    /* hero */
    LEN_(HERO, rc_hero, id, 128, 129),
    STR_(HERO, rc_hero, id, "a-b_c.9", "a b"),
    STR_(HERO, rc_hero, id, "all1", "all"),
    STR_(HERO, rc_hero, id, "x", ""),
    LEN_(HERO, rc_hero, name, 256, 257),
    LEN_(HERO, rc_hero, name, 1, 0),
    STR_(HERO, rc_hero, name, "\xC3\xA9t\xC3\xA9", NULL),
    STR_(HERO, rc_hero, name, "\xF0\x9F\x98\x80", "\xC3"),          /* truncated */
    STR_(HERO, rc_hero, name, "\xE2\x82\xAC", "\xC0\xAF"),          /* overlong */
    STR_(HERO, rc_hero, name, "\xED\x9F\xBF", "\xED\xA0\x80"),      /* surrogate */
    STR_(HERO, rc_hero, name, "\xF4\x8F\xBF\xBF", "\xF4\x90\x80\x80"), /* > U+10FFFF */
    STR_(HERO, rc_hero, name, "abc", "\xFF"),
    INT_(HERO, rc_hero, age, 1, 0),
    INT_(HERO, rc_hero, age, 150, 151),
    INT_(HERO, rc_hero, age, 150, -1),
    STR_(HERO, rc_hero, gender, "male", NULL),
    STR_(HERO, rc_hero, gender, "female", "Male"),
    STR_(HERO, rc_hero, gender, "other", ""),
    STR_(HERO, rc_hero, appearance, "", NULL),
    LEN_(HERO, rc_hero, appearance, 1024, 1025),
    LISTN_(HERO, rc_hero, personality_traits),
    ITEM_(HERO, rc_hero, personality_traits),
    LISTN_(HERO, rc_hero, interests),
    ITEM_(HERO, rc_hero, interests),
    LISTN_(HERO, rc_hero, strengths),
    ITEM_(HERO, rc_hero, strengths),
    STR_(HERO, rc_hero, language, "ru", "de"),
    STR_(HERO, rc_hero, language, "en", NULL),
    STR_(HERO, rc_hero, language, "en", "EN"),
    LEN_(HERO, rc_hero, created_at, 64, 65),
    LEN_(HERO, rc_hero, updated_at, 64, 65),
    /* child */
    LEN_(CHILD, rc_child, id, 128, 129),
    LEN_(CHILD, rc_child, name, 256, 257),
    LEN_(CHILD, rc_child, name, 1, 0),
    STR_(CHILD, rc_child, age_category, "5-7", NULL),
    LEN_(CHILD, rc_child, age_category, 1024, 1025),
    INT_(CHILD, rc_child, age, 0, -1),
    INT_(CHILD, rc_child, age, 18, 19),
    STR_(CHILD, rc_child, gender, "other", "girl"),
    STR_(CHILD, rc_child, gender, "male", NULL),
    LISTN_(CHILD, rc_child, interests),
    ITEM_(CHILD, rc_child, interests),
    LEN_(CHILD, rc_child, created_at, 64, 65),
    /* story */
    STR_(STORY, rc_story, id, "story-2", "story 2"),
    LEN_(STORY, rc_story, title, 256, 257),
    LEN_(STORY, rc_story, title, 1, 0),
    STR_(STORY, rc_story, title, "t", NULL),
    LEN_(STORY, rc_story, content, MIB, MIB + 1),
    STR_(STORY, rc_story, content, "", NULL),
    LEN_(STORY, rc_story, moral, MIB, MIB + 1),
    STR_(STORY, rc_story, moral, "", NULL),
    STR_(STORY, rc_story, language, "ru", "fr"),
    STR_(STORY, rc_story, language, "en", NULL),
    STR_(STORY, rc_story, child_id, "child-9", "child:9"),
    LEN_(STORY, rc_story, child_id, 128, 129),
    LEN_(STORY, rc_story, child_name, 256, 257),
    LEN_(STORY, rc_story, age_category, 1024, 1025),
    STR_(STORY, rc_story, child_gender, "female", "boy"),
    LISTN_(STORY, rc_story, child_interests),
    ITEM_(STORY, rc_story, child_interests),
    OPT_(STORY, rc_story, story_length, 1, 0),
    OPT_(STORY, rc_story, story_length, 1440, 1441),
    OPT_(STORY, rc_story, rating, 1, 0),
    OPT_(STORY, rc_story, rating, 10, 11),
    LEN_(STORY, rc_story, model_used, 1024, 1025),
    STR_(STORY, rc_story, full_response, "{\"a\":[1,{}]}", "{\"a\":"),
    STR_(STORY, rc_story, full_response, "42", "not json"),
    JLEN_(STORY, rc_story, full_response),
    STR_(STORY, rc_story, generation_info, "null", "[1,]"),
    JLEN_(STORY, rc_story, generation_info),
    LEN_(STORY, rc_story, updated_at, 64, 65),
    /* story.audio_file */
    STR_(AUDIO, rc_audio_file, url, "", NULL),
    LEN_(AUDIO, rc_audio_file, url, 8192, 8193),
    LEN_(AUDIO, rc_audio_file, provider, 1024, 1025),
    STR_(AUDIO, rc_audio_file, metadata, "\"s\"", "{"),
    JLEN_(AUDIO, rc_audio_file, metadata),
};

/* A string of n bytes: 'a's, or a JSON string text "aaa" when json. */
static char *filled(long n, bool json)
{
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, 'a', (size_t)n);
    if (json && n >= 2)
        s[0] = s[n - 1] = '"';
    s[n] = '\0';
    return s;
}

/* Applies the ok (bad == false) or bad value of c to member m. */
static void apply(const vcase *c, void *m, bool bad)
{
    long n = bad ? c->bad : c->ok;
    switch (c->kind) {
    case K_LEN:
    case K_JSONLEN:
        free(*(char **)m);
        *(char **)m = filled(n, c->kind == K_JSONLEN);
        break;
    case K_STR: {
        const char *v = bad ? c->badv : c->okv;
        free(*(char **)m);
        *(char **)m = v != NULL ? strdup(v) : NULL;
        break;
    }
    case K_INT:
        *(int *)m = (int)n;
        break;
    case K_OPTINT:
        *(rc_opt_int *)m = (rc_opt_int){.set = true, .value = (int)n};
        break;
    case K_LISTN:
        rc_strlist_clear(m);
        for (long i = 0; i < n; i++)
            ck_assert_int_eq(rc_strlist_push(m, "x"), RC_OK);
        break;
    case K_ITEMLEN: {
        rc_strlist_clear(m);
        char *s = filled(n, false);
        ck_assert_int_eq(rc_strlist_push(m, s), RC_OK);
        free(s);
        break;
    }
    }
}

static int validate_case(const vcase *c, bool bad)
{
    void *e;
    const rc_entity_ops *ops;
    void *target;
    switch (c->ent) {
    case HERO:
        e = sample_hero_full();
        ops = &rc_hero_entity;
        target = e;
        break;
    case CHILD:
        e = sample_child_full();
        ops = &rc_child_entity;
        target = e;
        break;
    default:
        e = sample_story_full();
        ops = &rc_story_entity;
        target = c->ent == AUDIO ? (void *)((rc_story *)e)->audio_file : e;
        break;
    }
    apply(c, (char *)target + c->off, bad);
    rc_clearerr();
    int rc = ops->validate(e, true);
    ops->free(e);
    return rc;
}

START_TEST(limits)
{
    const vcase *c = &vcases[_i];
    int rc = validate_case(c, false);
    ck_assert_msg(rc == RC_OK, "case %d (%s): at the limit refused: %s", _i,
                  c->field, rc_errmsg());
    rc = validate_case(c, true);
    ck_assert_msg(rc == RC_EINVAL, "case %d (%s): past the limit gave %d", _i,
                  c->field, rc);
    char want[64];
    snprintf(want, sizeof want, "%s%s", c->ent == AUDIO ? "audio_file." : "",
             c->field);
    ck_assert_msg(strstr(rc_errmsg(), want) != NULL,
                  "case %d: message \"%s\" does not name %s", _i, rc_errmsg(),
                  want);
}
END_TEST

START_TEST(validate_null_entity)
{
    ck_assert_int_eq(rc_hero_validate(NULL, false), RC_EINVAL);
    ck_assert_int_eq(rc_child_validate(NULL, false), RC_EINVAL);
    ck_assert_int_eq(rc_story_validate(NULL, false), RC_EINVAL);
}
END_TEST

START_TEST(list_item_null_refused)
{
    rc_hero *h = sample_hero_full();
    free(h->interests.items[0]);
    h->interests.items[0] = NULL;
    ck_assert_int_eq(rc_hero_validate(h, false), RC_EINVAL);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "interests[0]"));
    rc_hero_free(h); /* frees a list holding NULL */
}
END_TEST

/* ---- descriptors ---- */

START_TEST(descriptors)
{
    const rc_entity_ops *ops[] = {&rc_hero_entity, &rc_child_entity,
                                  &rc_story_entity};
    const char *names[] = {"hero", "child", "story"};
    void *samples[] = {sample_hero_full(), sample_child_full(),
                       sample_story_full()};
    const char *ids[] = {"hero-1", "child_1", "story.1"};
    for (int i = 0; i < 3; i++) {
        ck_assert_str_eq(ops[i]->name, names[i]);
        ck_assert_str_eq(ops[i]->get_id(samples[i]), ids[i]);
        ck_assert_int_eq(ops[i]->validate(samples[i], true), RC_OK);
        void *c = ops[i]->clone(samples[i]);
        ck_assert_ptr_nonnull(c);
        ck_assert_ptr_ne(ops[i]->get_id(c), ops[i]->get_id(samples[i]));
        ck_assert_str_eq(ops[i]->get_id(c), ids[i]);
        ops[i]->free(c);
        ops[i]->free(samples[i]);
    }
    rc_hero *h = rc_hero_new();
    ck_assert_ptr_null(rc_hero_entity.get_id(h));
    rc_hero_free(h);
}
END_TEST

/* ---- result lists ---- */

START_TEST(list_push_clone_free)
{
    rc_list *l = rc_list_new(&rc_child_entity);
    ck_assert_ptr_nonnull(l);
    ck_assert_uint_eq(l->len, 0);
    ck_assert_ptr_eq(l->ops, &rc_child_entity);
    for (int i = 0; i < 1000; i++) {
        rc_child *c = sample_child_full();
        c->age = i % 19;
        ck_assert_int_eq(rc_list_push(l, c), RC_OK);
    }
    ck_assert_uint_eq(l->len, 1000);
    ck_assert(l->cap >= l->len);
    rc_list *c = rc_list_clone(l);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(c->len, 1000);
    for (size_t i = 0; i < c->len; i++) {
        ck_assert_ptr_ne(c->items[i], l->items[i]);
        ck_assert_int_eq(((rc_child *)c->items[i])->age, (int)(i % 19));
    }
    rc_list_free(l);
    /* the clone is independent of the freed original */
    ck_assert_str_eq(((rc_child *)c->items[999])->name, "Эмма: O'Brien");
    rc_list_free(c);

    rc_list *e = rc_list_new(&rc_hero_entity);
    rc_list *ec = rc_list_clone(e);
    ck_assert_ptr_nonnull(ec);
    ck_assert_uint_eq(ec->len, 0);
    rc_list_free(e);
    rc_list_free(ec);
}
END_TEST

static Suite *entity_suite(void)
{
    Suite *s = suite_create("entity");
    const th_case cases[] = {
        {"strlist", strlist_push_copy_clear},
        {"lifecycle", new_is_zeroed_and_free_accepts_null},
        {"clone", clone_equals_and_is_independent},
        {"packed", packed_equals_and_frees_assigned_members},
        {"samples_valid", samples_are_valid},
        {"require_id", require_id},
        {"id_rules", id_rules},
        {"validate_null", validate_null_entity},
        {"list_item_null", list_item_null_refused},
        {"descriptors", descriptors},
        {"result_list", list_push_clone_free},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], NULL, NULL, 0);
    TCase *tc = tcase_create("limits");
    tcase_add_loop_test(tc, limits, 0, (int)(sizeof vcases / sizeof vcases[0]));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run_suite(entity_suite());
}
