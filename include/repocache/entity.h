/*
 * repocache/entity.h - the hero, child and story entities, string lists,
 * result lists, and the entity descriptor that lets generic code (the
 * repository vtable, the cached decorator) handle any entity.
 *
 * Ownership: every entity owns all of its strings; *_new returns a zeroed
 * entity the caller frees with *_free; *_free and rc_list_free accept NULL;
 * *_clone returns a deep copy the caller frees (NULL when out of memory).
 *
 * Packed entities. A cached repository opened with the option
 * packed_results (repocache/cached_repository.h) may return packed
 * entities: the struct and the bytes of every member in one allocation, so
 * that a near-cache hit is one malloc and one copy instead of one per string
 * (for a hero, 1 instead of 14; a hit then costs about a third). A packed
 * entity is read like any other and freed with its *_free (rc_list_free for
 * a list of them); *_clone of one gives an ordinary entity. Its members are
 * not allocations of their own: never free(), realloc or rc_strlist_* a
 * member of a packed entity. To change one, assign a new allocation to it
 * (h->name = strdup("Ann")): the old bytes stay in the block, and *_free
 * frees every member that points outside the block as well as the block.
 * packed_bytes_ (the block's size, 0 for an ordinary entity) is the
 * library's: never set it.
 *
 * Optional fields: a NULL string is "absent/null"; an rc_opt_int with
 * set == false is null. Timestamps are ISO 8601 strings without a zone
 * ("2024-01-15T10:30:00" or "2024-01-15T10:30:00.123456").
 *
 * Validation limits (rc_*_validate, the one place they live):
 *  - id: 1..128 bytes of [A-Za-z0-9._-], never "all" (so a by-id key can
 *    never meet the "all" key or a query key; docs/wire-format.md).
 *  - gender: "male" | "female" | "other"; language: "en" | "ru".
 *  - hero age 1..150; child age 0..18 (a child); story rating 1..10,
 *    story_length 1..1440 minutes.
 *  - name, title: non-empty, at most 256 bytes; short texts (appearance,
 *    age_category, model_used, list items) at most 1024 bytes; long texts
 *    (content, moral, full_response, generation_info, audio metadata) at most
 *    1 MiB; lists at most 256 items. Strings must be valid UTF-8 without NUL.
 *  - required strings: hero name, gender, appearance, language; child name,
 *    age_category, gender; story title, content, moral, language;
 *    audio_file.url (at most 8 KiB: signed URLs are long). story child_id,
 *    when set, follows the id rule; child_gender, when set, the gender rule.
 *  - timestamps at most 64 bytes (their format is not checked: they are
 *    kept byte for byte, as docs/wire-format.md says); full_response,
 *    generation_info and audio metadata, when set, must parse as JSON.
 *    The limits keep one cached value well under Redis's 512 MiB and keep keys
 *    (which embed names) short.
 */
#ifndef REPOCACHE_ENTITY_H
#define REPOCACHE_ENTITY_H

#include "repocache/export.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RC_ID_MAX 128            /* bytes in an id */
#define RC_NAME_MAX 256          /* bytes in a name or title */
#define RC_SHORT_TEXT_MAX 1024   /* bytes in a short text or list item */
#define RC_LONG_TEXT_MAX 1048576 /* bytes in a long text */
#define RC_LIST_MAX 256          /* items in a string list */
#define RC_TIME_MAX 64           /* bytes in a created_at / updated_at */
#define RC_URL_MAX 8192          /* bytes in an audio_file url (signed URLs) */

/* A list of owned, NUL-terminated strings. */
typedef struct rc_strlist {
    char **items; /* len owned strings (NULL when len == 0) */
    size_t len;   /* number of items */
} rc_strlist;

/* An optional integer (JSON number or null). */
typedef struct rc_opt_int {
    bool set;  /* false: null / absent */
    int value; /* meaningful only when set */
} rc_opt_int;

typedef struct rc_hero {
    char *id;                       /* NULL before the first save */
    char *name;                     /* required */
    int age;                        /* required */
    char *gender;                   /* required: male | female | other */
    char *appearance;               /* required, may be "" */
    rc_strlist personality_traits;  /* may be empty */
    rc_strlist interests;           /* may be empty */
    rc_strlist strengths;           /* may be empty */
    char *language;                 /* required: en | ru */
    char *created_at;               /* optional, set by save when NULL */
    char *updated_at;               /* optional, set by save/update */
    size_t packed_bytes_;           /* the library's (packed entities, above) */
} rc_hero;

typedef struct rc_child {
    char *id;           /* NULL before the first save */
    char *name;         /* required */
    char *age_category; /* required, e.g. "5-7" */
    int age;            /* required */
    char *gender;       /* required */
    rc_strlist interests;
    char *created_at;
    char *updated_at;
    size_t packed_bytes_;           /* the library's (packed entities, above) */
} rc_child;

/* A story's audio file: {url, provider, metadata}. */
typedef struct rc_audio_file {
    char *url;      /* required */
    char *provider; /* optional (NULL = null) */
    char *metadata; /* optional JSON text of any JSON value (NULL = null) */
} rc_audio_file;

typedef struct rc_story {
    char *id;
    char *title;                /* required */
    char *content;              /* required */
    char *moral;                /* required */
    char *language;             /* required */
    char *child_id;             /* optional */
    char *child_name;           /* optional */
    char *age_category;         /* optional */
    char *child_gender;         /* optional */
    rc_strlist child_interests; /* may be empty */
    rc_opt_int story_length;    /* minutes or null */
    rc_opt_int rating;          /* 1..10 or null */
    rc_audio_file *audio_file;  /* NULL = null */
    char *model_used;           /* optional */
    char *full_response;        /* optional JSON text of any value */
    char *generation_info;      /* optional JSON text of any value */
    char *created_at;
    char *updated_at;
    size_t packed_bytes_;           /* the library's (packed entities, above) */
} rc_story;

/* ---- string lists ---- */

/* Appends a copy of s. Returns RC_OK or RC_ENOMEM (list unchanged). */
RC_API int rc_strlist_push(rc_strlist *l, const char *s);
/* Frees the items and empties the list; the struct itself is the caller's. */
RC_API void rc_strlist_clear(rc_strlist *l);
/* Deep-copies src into *dst (which must be empty). RC_OK or RC_ENOMEM. */
RC_API int rc_strlist_copy(rc_strlist *dst, const rc_strlist *src);

/* ---- entity lifecycle ---- */

RC_API rc_hero *rc_hero_new(void);                /* caller frees with rc_hero_free */
RC_API void rc_hero_free(rc_hero *h);             /* accepts NULL */
RC_API rc_hero *rc_hero_clone(const rc_hero *h);  /* caller frees; NULL on ENOMEM */
RC_API rc_child *rc_child_new(void);
RC_API void rc_child_free(rc_child *c);
RC_API rc_child *rc_child_clone(const rc_child *c);
RC_API rc_story *rc_story_new(void);
RC_API void rc_story_free(rc_story *s);
RC_API rc_story *rc_story_clone(const rc_story *s);

/* ---- validation (the only place the rules live) ---- */

/* RC_OK, or RC_EINVAL with a message in rc_errmsg() naming the field. A NULL
 * id is accepted (save generates one) unless require_id is true. */
RC_API int rc_hero_validate(const rc_hero *h, bool require_id);
RC_API int rc_child_validate(const rc_child *c, bool require_id);
RC_API int rc_story_validate(const rc_story *s, bool require_id);
/* RC_OK when id is a valid id (see limits above), else RC_EINVAL. */
RC_API int rc_id_validate(const char *id);

/* ---- the entity descriptor ---- */

/*
 * Everything generic code needs to handle one entity type. One static const
 * instance per entity (rc_hero_entity, ...); users may define their own.
 */
typedef struct rc_entity_ops {
    /* Data */
    const char *name; /* "hero", "child", "story" */
    /* Callbacks */
    void (*free)(void *e);                 /* accepts NULL */
    void *(*clone)(const void *e);         /* deep copy; NULL on ENOMEM */
    const char *(*get_id)(const void *e);  /* borrowed; NULL when unset */
    int (*validate)(const void *e, bool require_id); /* RC_OK / RC_EINVAL */
} rc_entity_ops;

RC_API extern const rc_entity_ops rc_hero_entity;
RC_API extern const rc_entity_ops rc_child_entity;
RC_API extern const rc_entity_ops rc_story_entity;

/* ---- named queries ----
 * The names of the built-in entities' queries (as in the Python version),
 * given to find_by_query (repocache/repository.h). Each selects the entities
 * whose fields equal its arguments; the typed functions of
 * repocache/repository.h name the fields. */
#define RC_Q_BY_LANGUAGE "by_language"
#define RC_Q_BY_NAME "by_name"
#define RC_Q_EXACT_MATCH "exact_match"
#define RC_Q_BY_CHILD_ID "by_child_id"
#define RC_Q_BY_CHILD_NAME "by_child_name"
/* Bytes in one query argument, at most: no field a query compares is longer
 * (RC_SHORT_TEXT_MAX), so a longer argument could match nothing; it is
 * refused (RC_EINVAL) rather than turned into a long cache key. An argument
 * that equals an integer field (the age of exact_match) must be written the
 * one canonical way ("3", never "03" or "+3"): one answer, one cache key. */
#define RC_QUERY_ARG_MAX RC_SHORT_TEXT_MAX

/* ---- result lists ---- */

/* An owned list of entities of one type, as returned by list and queries. */
typedef struct rc_list {
    void **items;               /* len owned entities */
    size_t len;                 /* number of items */
    size_t cap;                 /* allocated slots */
    const rc_entity_ops *ops;   /* how to free / clone the items */
} rc_list;

/* A new empty list for entities of type ops; caller frees with rc_list_free. */
RC_API rc_list *rc_list_new(const rc_entity_ops *ops);
/* Appends e, taking ownership of it even on failure (freed then).
 * RC_OK or RC_ENOMEM. */
RC_API int rc_list_push(rc_list *l, void *e);
/* Frees the list and every item; accepts NULL. */
RC_API void rc_list_free(rc_list *l);
/* Deep copy; caller frees; NULL on ENOMEM. */
RC_API rc_list *rc_list_clone(const rc_list *l);

#ifdef __cplusplus
}
#endif
#endif
