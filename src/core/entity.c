/*
 * entity.c - string lists, the hero/child/story entities (new, free, clone,
 * validate) and their descriptors (result lists: list.c).
 *
 * Every per-entity operation is one loop over the entity's field table
 * (entity_fields.h); the public typed functions are thin wrappers generated
 * by RC_DEFINE_ENTITY_ below.
 */
#include "core/entity_fields.h"
#include "core/entity_queries.h"

#include "repocache/status.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ---- */


bool rc_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        uint64_t w;
        /* eight ASCII bytes at a time: no high bit, no zero byte */
        if (len - i >= 8 && (memcpy(&w, p + i, 8), (w & 0x8080808080808080ULL) == 0) &&
            ((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL) == 0) {
            i += 8;
            continue;
        }
        unsigned c = p[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            if (c == 0)
                return false; /* NUL inside the declared length */
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

/* ---- string lists ---- */

int rc_strlist_push(rc_strlist *l, const char *s)
{
    char *copy = rc_strdup(s);
    if (copy == NULL)
        return rc_seterr(RC_ENOMEM, "out of memory");
    char **items = realloc(l->items, (l->len + 1) * sizeof *items);
    if (items == NULL) {
        free(copy);
        return rc_seterr(RC_ENOMEM, "out of memory");
    }
    items[l->len++] = copy;
    l->items = items;
    return RC_OK;
}

void rc_strlist_clear(rc_strlist *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->len; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->len = 0;
}

int rc_strlist_copy(rc_strlist *dst, const rc_strlist *src)
{
    dst->items = NULL;
    dst->len = 0;
    if (src->len == 0)
        return RC_OK;
    dst->items = calloc(src->len, sizeof *dst->items);
    if (dst->items == NULL)
        return rc_seterr(RC_ENOMEM, "out of memory");
    for (size_t i = 0; i < src->len; i++) {
        dst->items[i] = rc_strdup(src->items[i]);
        dst->len = i + 1;
        if (dst->items[i] == NULL) {
            rc_strlist_clear(dst);
            return rc_seterr(RC_ENOMEM, "out of memory");
        }
    }
    return RC_OK;
}

/* ---- field tables ---- */

/* Field initialisers, one per kind of rule. */
#define F_STR_(T, m, req, minl, maxl, chk)                                     \
    { .name = #m, .kind = RC_FK_STR, .offset = offsetof(T, m),                 \
      .required = req, .min_len = minl, .max_len = maxl, .check = chk }
#define F_JSON_(T, m)                                                          \
    { .name = #m, .kind = RC_FK_JSON, .offset = offsetof(T, m),                \
      .max_len = RC_LONG_TEXT_MAX }
#define F_INT_(T, m, lo, hi)                                                   \
    { .name = #m, .kind = RC_FK_INT, .offset = offsetof(T, m),                 \
      .required = true, .min = lo, .max = hi }
#define F_OPTINT_(T, m, lo, hi)                                                \
    { .name = #m, .kind = RC_FK_OPTINT, .offset = offsetof(T, m),              \
      .min = lo, .max = hi }
#define F_LIST_(T, m)                                                          \
    { .name = #m, .kind = RC_FK_STRLIST, .offset = offsetof(T, m),             \
      .max_len = RC_SHORT_TEXT_MAX }
#define F_ID_(T) F_STR_(T, id, false, 1, RC_ID_MAX, RC_FC_ID)
#define F_TIME_(T, m) F_STR_(T, m, false, 0, RC_TIME_MAX, RC_FC_NONE)

static const rc_field hero_fields_[] = {
    F_ID_(rc_hero),
    F_STR_(rc_hero, name, true, 1, RC_NAME_MAX, RC_FC_NONE),
    F_INT_(rc_hero, age, 1, 150),
    F_STR_(rc_hero, gender, true, 0, RC_SHORT_TEXT_MAX, RC_FC_GENDER),
    F_STR_(rc_hero, appearance, true, 0, RC_SHORT_TEXT_MAX, RC_FC_NONE),
    F_LIST_(rc_hero, personality_traits),
    F_LIST_(rc_hero, interests),
    F_LIST_(rc_hero, strengths),
    F_STR_(rc_hero, language, true, 0, RC_SHORT_TEXT_MAX, RC_FC_LANGUAGE),
    F_TIME_(rc_hero, created_at),
    F_TIME_(rc_hero, updated_at),
};

static const rc_field child_fields_[] = {
    F_ID_(rc_child),
    F_STR_(rc_child, name, true, 1, RC_NAME_MAX, RC_FC_NONE),
    F_STR_(rc_child, age_category, true, 0, RC_SHORT_TEXT_MAX, RC_FC_NONE),
    F_INT_(rc_child, age, 0, 18),
    F_STR_(rc_child, gender, true, 0, RC_SHORT_TEXT_MAX, RC_FC_GENDER),
    F_LIST_(rc_child, interests),
    F_TIME_(rc_child, created_at),
    F_TIME_(rc_child, updated_at),
};

static const rc_field audio_fields_[] = {
    F_STR_(rc_audio_file, url, true, 0, RC_URL_MAX, RC_FC_NONE),
    F_STR_(rc_audio_file, provider, false, 0, RC_SHORT_TEXT_MAX, RC_FC_NONE),
    F_JSON_(rc_audio_file, metadata),
};

const rc_fields rc_audio_file_fields = {
    .name = "audio_file",
    .items = audio_fields_,
    .count = sizeof audio_fields_ / sizeof audio_fields_[0],
    .size = sizeof(rc_audio_file),
};

static const rc_field story_fields_[] = {
    F_ID_(rc_story),
    F_STR_(rc_story, title, true, 1, RC_NAME_MAX, RC_FC_NONE),
    F_STR_(rc_story, content, true, 0, RC_LONG_TEXT_MAX, RC_FC_NONE),
    F_STR_(rc_story, moral, true, 0, RC_LONG_TEXT_MAX, RC_FC_NONE),
    F_STR_(rc_story, language, true, 0, RC_SHORT_TEXT_MAX, RC_FC_LANGUAGE),
    F_STR_(rc_story, child_id, false, 1, RC_ID_MAX, RC_FC_ID),
    F_STR_(rc_story, child_name, false, 0, RC_NAME_MAX, RC_FC_NONE),
    F_STR_(rc_story, age_category, false, 0, RC_SHORT_TEXT_MAX, RC_FC_NONE),
    F_STR_(rc_story, child_gender, false, 0, RC_SHORT_TEXT_MAX, RC_FC_GENDER),
    F_LIST_(rc_story, child_interests),
    F_OPTINT_(rc_story, story_length, 1, 1440),
    F_OPTINT_(rc_story, rating, 1, 10),
    { .name = "audio_file", .kind = RC_FK_OBJ,
      .offset = offsetof(rc_story, audio_file), .sub = &rc_audio_file_fields },
    F_STR_(rc_story, model_used, false, 0, RC_SHORT_TEXT_MAX, RC_FC_NONE),
    F_JSON_(rc_story, full_response),
    F_JSON_(rc_story, generation_info),
    F_TIME_(rc_story, created_at),
    F_TIME_(rc_story, updated_at),
};

#define TABLE_(ename, arr, T, q)                                               \
    { .name = ename, .items = arr, .count = sizeof arr / sizeof arr[0],        \
      .size = sizeof(T), .packed_offset = offsetof(T, packed_bytes_), .queries = q }
const rc_fields rc_hero_fields =
    TABLE_("hero", hero_fields_, rc_hero, &rc_hero_queries);
const rc_fields rc_child_fields =
    TABLE_("child", child_fields_, rc_child, &rc_child_queries);
const rc_fields rc_story_fields =
    TABLE_("story", story_fields_, rc_story, &rc_story_queries);

/* ---- generic free / clone ---- */

size_t rc_fields_packed_bytes(const rc_fields *t, const void *e)
{
    return t->packed_offset ? *(const size_t *)((const char *)e + t->packed_offset) : 0;
}

/* Whether p points into the n bytes at lo (never, when n is 0). */
static bool inside_(const void *p, const void *lo, size_t n)
{
    return (uintptr_t)p - (uintptr_t)lo < n;
}

/* Frees e's members that are not in the n bytes at lo: all of them for an
 * ordinary entity (n = 0); for a packed one, those the caller assigned. */
static void free_members_(const rc_fields *t, void *e, const void *lo, size_t n)
{
    for (size_t i = 0; i < t->count; i++) {
        const rc_field *f = &t->items[i];
        void *m = RC_FIELD_PTR(e, f);
        switch (f->kind) {
        case RC_FK_STR:
        case RC_FK_JSON:
            if (!inside_(*(char **)m, lo, n))
                free(*(char **)m);
            break;
        case RC_FK_STRLIST: {
            rc_strlist *l = m;
            for (size_t j = 0; j < l->len; j++)
                if (!inside_(l->items[j], lo, n))
                    free(l->items[j]);
            if (!inside_(l->items, lo, n))
                free(l->items);
            *l = (rc_strlist){NULL, 0};
            break;
        }
        case RC_FK_OBJ:
            if (inside_(*(void **)m, lo, n))
                free_members_(f->sub, *(void **)m, lo, n);
            else
                rc_fields_free(f->sub, *(void **)m);
            break;
        case RC_FK_INT:
        case RC_FK_OPTINT:
            break;
        }
    }
}

void rc_fields_free(const rc_fields *t, void *e)
{
    if (e == NULL)
        return;
    free_members_(t, e, e, rc_fields_packed_bytes(t, e));
    free(e);
}

void *rc_fields_clone(const rc_fields *t, const void *e)
{
    if (e == NULL)
        return NULL;
    /* Start from a byte copy (ints), then replace every pointer member with
     * its own copy; on failure the not yet copied pointers are cleared first
     * so rc_fields_free frees only what this copy owns. */
    void *c = malloc(t->size);
    if (c == NULL)
        goto oom;
    memcpy(c, e, t->size);
    if (t->packed_offset) /* the copy is an ordinary entity */
        *(size_t *)((char *)c + t->packed_offset) = 0;
    for (size_t i = 0; i < t->count; i++) {
        const rc_field *f = &t->items[i];
        void *m = RC_FIELD_PTR(c, f);
        if (f->kind == RC_FK_STR || f->kind == RC_FK_JSON || f->kind == RC_FK_OBJ)
            *(void **)m = NULL;
        else if (f->kind == RC_FK_STRLIST)
            *(rc_strlist *)m = (rc_strlist){NULL, 0};
    }
    for (size_t i = 0; i < t->count; i++) {
        const rc_field *f = &t->items[i];
        void *m = RC_FIELD_PTR(c, f);
        const void *src = RC_FIELD_CPTR(e, f);
        bool ok = true;
        switch (f->kind) {
        case RC_FK_STR:
        case RC_FK_JSON:
            if (*(char *const *)src != NULL) {
                *(char **)m = rc_strdup(*(char *const *)src);
                ok = *(char **)m != NULL;
            }
            break;
        case RC_FK_STRLIST:
            ok = rc_strlist_copy(m, src) == RC_OK;
            break;
        case RC_FK_OBJ:
            if (*(void *const *)src != NULL) {
                *(void **)m = rc_fields_clone(f->sub, *(void *const *)src);
                ok = *(void **)m != NULL;
            }
            break;
        case RC_FK_INT:
        case RC_FK_OPTINT:
            break;
        }
        if (!ok) {
            rc_fields_free(t, c);
            goto oom;
        }
    }
    return c;
oom:
    rc_seterr(RC_ENOMEM, "out of memory");
    return NULL;
}

/* ---- validation ---- */

/* The bytes an id may hold: [A-Za-z0-9._-]. */
static const bool id_chars[256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,
    ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
    ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
    ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
    ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
    ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

int rc_id_validate(const char *id)
{
    if (id == NULL || id[0] == '\0')
        return rc_seterr(RC_EINVAL, "id: must not be empty");
    size_t n = strlen(id);
    if (n > RC_ID_MAX)
        return rc_seterr(RC_EINVAL, "id: at most %d bytes, got %zu",
                         RC_ID_MAX, n);
    size_t bad = 0; /* every read checks one: no branch per byte */
    for (size_t i = 0; i < n; i++)
        bad |= (size_t)!id_chars[(unsigned char)id[i]];
    for (size_t i = 0; bad && i < n; i++)
        if (!id_chars[(unsigned char)id[i]])
            return rc_seterr(RC_EINVAL,
                             "id: only letters, digits, '.', '_' and '-' "
                             "allowed (byte %zu)", i);
    if (strcmp(id, "all") == 0)
        return rc_seterr(RC_EINVAL, "id: \"all\" is reserved");
    return RC_OK;
}

static bool one_of_(const char *s, const char *const *choices)
{
    for (; *choices != NULL; choices++)
        if (strcmp(s, *choices) == 0)
            return true;
    return false;
}

/* Size and UTF-8 limits of one string (what decoding must refuse too). */
static int check_text_(int status, const char *pfx, const char *name,
                       const char *item, const char *s, size_t min_len,
                       size_t max_len)
{
    size_t n = strlen(s);
    if (n > max_len)
        return rc_seterr(status, "%s%s%s: at most %zu bytes, got %zu", pfx,
                         name, item, max_len, n);
    if (n < min_len)
        return rc_seterr(status, "%s%s%s: must not be empty", pfx, name, item);
    if (!rc_utf8_valid(s, n))
        return rc_seterr(status, "%s%s%s: not valid UTF-8", pfx, name, item);
    return RC_OK;
}

/* How check_fields_ runs: full (semantic: required fields, ranges, enums,
 * ids, JSON text; RC_EINVAL) or sizes only (the limits decoding must
 * enforce so a huge cached value is refused; RC_EDECODE). pfx prefixes field
 * names in messages ("audio_file."). */
typedef struct check_mode_ {
    bool semantic;   /* full check, else sizes only */
    bool require_id; /* a NULL id is refused (top level only) */
    const char *pfx; /* "" or "<object>." */
    int status;      /* RC_EINVAL (semantic) or RC_EDECODE */
} check_mode_;

/* The value rule of string field f (f->check, JSON text) for s. */
static int check_str_rule_(const rc_field *f, const char *s,
                           const check_mode_ *m)
{
    static const char *const genders[] = {"male", "female", "other", NULL};
    static const char *const languages[] = {"en", "ru", NULL};
    if (f->check == RC_FC_ID && rc_id_validate(s) != RC_OK)
        /* rc_id_validate names "id"; name the actual field */
        return rc_seterr(m->status, "%s%s: invalid id (1-%d bytes of "
                         "[A-Za-z0-9._-], not \"all\")", m->pfx, f->name,
                         RC_ID_MAX);
    if (f->check == RC_FC_GENDER && !one_of_(s, genders))
        return rc_seterr(m->status, "%s%s: must be male, female or other, "
                         "got \"%.32s\"", m->pfx, f->name, s);
    if (f->check == RC_FC_LANGUAGE && !one_of_(s, languages))
        return rc_seterr(m->status, "%s%s: must be en or ru, got \"%.32s\"",
                         m->pfx, f->name, s);
    if (f->kind == RC_FK_JSON) {
        json_t *j = json_loads(s, JSON_DECODE_ANY, NULL);
        if (j == NULL)
            return rc_seterr(m->status, "%s%s: not valid JSON text", m->pfx,
                             f->name);
        json_decref(j);
    }
    return RC_OK;
}

/* A string or JSON-text field: presence, size, UTF-8, then its rule. */
static int check_str_(const rc_field *f, const char *s, const check_mode_ *m)
{
    bool is_id = strcmp(f->name, "id") == 0 && m->pfx[0] == '\0';
    if (s == NULL) {
        if (m->semantic && (f->required || (m->require_id && is_id)))
            return rc_seterr(m->status, "%s%s: required", m->pfx, f->name);
        return RC_OK;
    }
    int rc = check_text_(m->status, m->pfx, f->name, "", s, f->min_len,
                         f->max_len);
    if (rc != RC_OK || !m->semantic)
        return rc;
    return check_str_rule_(f, s, m);
}

/* An integer or optional integer field member mem: its range. */
static int check_int_(const rc_field *f, const void *mem, const check_mode_ *m)
{
    int v;
    if (f->kind == RC_FK_INT) {
        v = *(const int *)mem;
    } else {
        const rc_opt_int *o = mem;
        if (!o->set)
            return RC_OK;
        v = o->value;
    }
    if (m->semantic && (v < f->min || v > f->max))
        return rc_seterr(m->status, "%s%s: must be %d-%d, got %d", m->pfx,
                         f->name, f->min, f->max, v);
    return RC_OK;
}

/* A string list field: its length and each item's size and UTF-8. */
static int check_list_(const rc_field *f, const rc_strlist *l,
                       const check_mode_ *m)
{
    int rc = RC_OK;
    if (l->len > RC_LIST_MAX)
        return rc_seterr(m->status, "%s%s: at most %d items, got %zu", m->pfx,
                         f->name, RC_LIST_MAX, l->len);
    for (size_t k = 0; k < l->len && rc == RC_OK; k++) {
        if (l->items[k] == NULL)
            return rc_seterr(m->status, "%s%s[%zu]: must not be null", m->pfx,
                             f->name, k);
        char item[32];
        snprintf(item, sizeof item, "[%zu]", k);
        rc = check_text_(m->status, m->pfx, f->name, item, l->items[k], 0,
                         f->max_len);
    }
    return rc;
}

static int check_fields_(const rc_fields *t, const void *e,
                         const check_mode_ *m);

/* A nested object field: presence, then its own fields under "<name>.". */
static int check_obj_(const rc_field *f, const void *sub, const check_mode_ *m)
{
    if (sub == NULL) {
        if (m->semantic && f->required)
            return rc_seterr(m->status, "%s%s: required", m->pfx, f->name);
        return RC_OK;
    }
    char subpfx[64];
    snprintf(subpfx, sizeof subpfx, "%s%s.", m->pfx, f->name);
    check_mode_ sm = *m;
    sm.require_id = false;
    sm.pfx = subpfx;
    return check_fields_(f->sub, sub, &sm);
}

/* One loop for both modes (check_mode_): every field of t in e, the first
 * failure returned. */
static int check_fields_(const rc_fields *t, const void *e,
                         const check_mode_ *m)
{
    for (size_t i = 0; i < t->count; i++) {
        const rc_field *f = &t->items[i];
        const void *mem = RC_FIELD_CPTR(e, f);
        int rc = RC_OK;
        switch (f->kind) {
        case RC_FK_STR:
        case RC_FK_JSON:
            rc = check_str_(f, *(const char *const *)mem, m);
            break;
        case RC_FK_INT:
        case RC_FK_OPTINT:
            rc = check_int_(f, mem, m);
            break;
        case RC_FK_STRLIST:
            rc = check_list_(f, mem, m);
            break;
        case RC_FK_OBJ:
            rc = check_obj_(f, *(const void *const *)mem, m);
            break;
        }
        if (rc != RC_OK)
            return rc;
    }
    return RC_OK;
}

int rc_fields_validate(const rc_fields *t, const void *e, bool require_id)
{
    const check_mode_ m = {true, require_id, "", RC_EINVAL};
    if (e == NULL)
        return rc_seterr(RC_EINVAL, "%s: entity is NULL", t->name);
    return check_fields_(t, e, &m);
}

int rc_fields_check_sizes(const rc_fields *t, const void *e)
{
    const check_mode_ m = {false, false, "", RC_EDECODE};
    return check_fields_(t, e, &m);
}

/* ---- the three entities: typed wrappers and descriptors ---- */

/* Defines rc_<n>_new/free/clone/validate and the descriptor rc_<n>_entity
 * for struct T described by rc_<n>_fields. */
#define RC_DEFINE_ENTITY_(T, n)                                                \
    T *rc_##n##_new(void) { return calloc(1, sizeof(T)); }                     \
    void rc_##n##_free(T *e) { rc_fields_free(&rc_##n##_fields, e); }          \
    T *rc_##n##_clone(const T *e) { return rc_fields_clone(&rc_##n##_fields, e); } \
    int rc_##n##_validate(const T *e, bool require_id)                         \
    {                                                                          \
        return rc_fields_validate(&rc_##n##_fields, e, require_id);            \
    }                                                                          \
    static void n##_free_(void *e) { rc_##n##_free(e); }                       \
    static void *n##_clone_(const void *e) { return rc_##n##_clone(e); }       \
    static const char *n##_get_id_(const void *e)                              \
    {                                                                          \
        return e != NULL ? ((const T *)e)->id : NULL;                          \
    }                                                                          \
    static int n##_validate_(const void *e, bool require_id)                   \
    {                                                                          \
        return rc_##n##_validate(e, require_id);                               \
    }                                                                          \
    const rc_entity_ops rc_##n##_entity = {                                    \
        .name = #n,                                                            \
        .free = n##_free_,                                                     \
        .clone = n##_clone_,                                                   \
        .get_id = n##_get_id_,                                                 \
        .validate = n##_validate_,                                             \
    };

RC_DEFINE_ENTITY_(rc_hero, hero)
RC_DEFINE_ENTITY_(rc_child, child)
RC_DEFINE_ENTITY_(rc_story, story)
