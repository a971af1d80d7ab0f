/*
 * entity_fields.h - internal: one field descriptor table per entity.
 *
 * Each entity struct is described once, field by field (JSON name, kind,
 * offset, limits). Free, clone and validate (entity.c) and JSON encode and
 * decode (codec.c) are each a single loop over such a table, so
 * the three entities share one implementation of every operation and their
 * rules cannot drift apart. The tables are the one place the limits of
 * repocache/entity.h are written down as data. An entity's table also points
 * at its named queries (entity_queries.h).
 */
#ifndef RC_ENTITY_FIELDS_H
#define RC_ENTITY_FIELDS_H

#include "core/str.h"
#include "repocache/entity.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum rc_field_kind {
    RC_FK_STR,     /* char *: a string, NULL = null */
    RC_FK_JSON,    /* char *: JSON text of any value, NULL = null */
    RC_FK_INT,     /* int: always present */
    RC_FK_OPTINT,  /* rc_opt_int: integer or null */
    RC_FK_STRLIST, /* rc_strlist: array of strings (may be empty) */
    RC_FK_OBJ,     /* pointer to a struct described by sub; NULL = null */
} rc_field_kind;

typedef enum rc_field_check {
    RC_FC_NONE,     /* only the limits below */
    RC_FC_ID,       /* rc_id_validate */
    RC_FC_GENDER,   /* male | female | other */
    RC_FC_LANGUAGE, /* en | ru */
} rc_field_check;

struct rc_fields;
struct rc_queries;

typedef struct rc_field {
    const char *name;           /* JSON field name (docs/wire-format.md) */
    rc_field_kind kind;         /* how the member is stored */
    size_t offset;              /* offsetof the member */
    bool required;              /* must be non-NULL / present and non-null */
    size_t min_len;             /* STR: minimum bytes (1 = non-empty) */
    size_t max_len;             /* STR/JSON: max bytes; STRLIST: per item */
    int min, max;               /* INT/OPTINT: inclusive range */
    rc_field_check check;       /* extra rule for STR */
    const struct rc_fields *sub; /* OBJ: the nested struct's table */
} rc_field;

typedef struct rc_fields {
    const char *name;     /* entity name: "hero", "child", "story" */
    const rc_field *items; /* the fields, in wire order */
    size_t count;         /* number of fields */
    size_t size;          /* sizeof the struct */
    size_t packed_offset; /* offsetof its packed_bytes_ (core/pack.h); 0: it
                             has none (a nested struct) */
    const struct rc_queries *queries; /* its named queries (entity_queries.h);
                                         NULL: none */
} rc_fields;

/* The member field f of struct base (char * arithmetic on the offset). */
#define RC_FIELD_PTR(base, f) ((void *)((char *)(base) + (f)->offset))
#define RC_FIELD_CPTR(base, f) ((const void *)((const char *)(base) + (f)->offset))

extern const rc_fields rc_hero_fields;
extern const rc_fields rc_child_fields;
extern const rc_fields rc_story_fields;
extern const rc_fields rc_audio_file_fields;

/* Frees every member of e and e itself; accepts NULL. For a packed e
 * (core/pack.h): the block, and every member pointing outside it. */
void rc_fields_free(const rc_fields *t, void *e);
/* A deep copy of e (caller frees with rc_fields_free), ordinary even when e
 * is packed; NULL on ENOMEM. Returns NULL for a NULL e too. */
void *rc_fields_clone(const rc_fields *t, const void *e);
/* The size of e's block when e is packed (core/pack.h), else 0. */
size_t rc_fields_packed_bytes(const rc_fields *t, const void *e);
/* RC_OK or RC_EINVAL with a message naming the field (prefix + name). */
int rc_fields_validate(const rc_fields *t, const void *e, bool require_id);
/* Checks only what decoding must refuse: string sizes, list lengths and
 * UTF-8 (not value rules such as gender). RC_OK or RC_EDECODE with a message. */
int rc_fields_check_sizes(const rc_fields *t, const void *e);
/* true when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
bool rc_utf8_valid(const char *s, size_t len);

#endif
