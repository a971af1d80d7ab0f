/* codec_fast.c - plain envelopes decoded without jansson (codec_fast.h). */
#include "core/codec_fast.h"

#include "repocache/status.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* A cursor over the text; every step fails (false) on what it does not take. */
typedef struct cur {
    const char *p, *end;
} cur;

static void skip_ws(cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\t' || *c->p == '\r'))
        c->p++;
}

/* Takes ch (after whitespace). */
static bool eat(cur *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

static bool eat_null(cur *c)
{
    skip_ws(c);
    if (c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) {
        c->p += 4;
        return true;
    }
    return false;
}

/* A string without escapes: *s, *n point into the text (well-formed UTF-8,
 * no control byte). */
static bool string_span(cur *c, const char **s, size_t *n)
{
    if (!eat(c, '"'))
        return false;
    const char *start = c->p;
    unsigned char high = 0;
    while (c->p < c->end && *c->p != '"') {
        unsigned char b = (unsigned char)*c->p;
        if (b < 0x20 || b == '\\')
            return false;
        high |= b;
        c->p++;
    }
    if (c->p == c->end)
        return false;
    *s = start;
    *n = (size_t)(c->p - start);
    c->p++;
    return high < 0x80 || rc_utf8_valid(start, *n); /* ASCII is UTF-8 */
}

static bool string_dup(cur *c, char **out)
{
    const char *s;
    size_t n;
    return string_span(c, &s, &n) && (*out = rc_strndup(s, n)) != NULL;
}

/* An integer as JSON writes it (no fraction, exponent or leading zero). */
static bool integer(cur *c, long long *v)
{
    skip_ws(c);
    bool neg = c->p < c->end && *c->p == '-';
    const char *d = c->p + neg, *q = d;
    long long x = 0;
    while (q < c->end && *q >= '0' && *q <= '9' && q - d < 11)
        x = x * 10 + (*q++ - '0');
    if (q == d || (*d == '0' && q - d > 1) || q - d >= 11 ||
        (q < c->end && (*q == '.' || *q == 'e' || *q == 'E' || (*q >= '0' && *q <= '9'))))
        return false;
    c->p = q;
    *v = neg ? -x : x;
    return true;
}

static bool fields(cur *c, const rc_fields *t, void **out);

/* An array of strings into l. */
static bool strlist(cur *c, rc_strlist *l)
{
    if (!eat(c, '['))
        return false;
    if (eat(c, ']'))
        return true;
    do {
        const char *s;
        size_t n;
        if (!string_span(c, &s, &n) || l->len >= RC_LIST_MAX)
            return false;
        char **items = realloc(l->items, (l->len + 1) * sizeof *items);
        if (!items)
            return false;
        l->items = items;
        if (!(items[l->len] = rc_strndup(s, n)))
            return false;
        l->len++;
    } while (eat(c, ','));
    return eat(c, ']');
}

/* The value of field f into its member of e; null leaves it empty (a
 * required field left empty declines later, in fields). */
static bool field(cur *c, const rc_field *f, void *e)
{
    void *m = RC_FIELD_PTR(e, f);
    if (eat_null(c))
        return !f->required;
    long long v;
    switch (f->kind) {
    case RC_FK_STR:
        return string_dup(c, (char **)m);
    case RC_FK_INT:
    case RC_FK_OPTINT:
        if (!integer(c, &v) || v < INT_MIN || v > INT_MAX)
            return false;
        if (f->kind == RC_FK_INT)
            *(int *)m = (int)v;
        else
            *(rc_opt_int *)m = (rc_opt_int){.set = true, .value = (int)v};
        return true;
    case RC_FK_STRLIST:
        return strlist(c, m);
    case RC_FK_OBJ:
        return fields(c, f->sub, (void **)m);
    case RC_FK_JSON:
        return false;
    }
    return false;
}

/* The index of the field named s[0..n) in t, or -1; the field after
 * prev (our encoder's order) is tried first. */
static int field_index(const rc_fields *t, const char *s, size_t n, int prev)
{
    size_t next = (size_t)(prev + 1);
    if (next < t->count && strncmp(t->items[next].name, s, n) == 0 &&
        t->items[next].name[n] == '\0')
        return (int)next;
    for (size_t i = 0; i < t->count; i++)
        if (strncmp(t->items[i].name, s, n) == 0 && t->items[i].name[n] == '\0')
            return (int)i;
    return -1;
}

/* An object of t's fields, each at most once, every required one given. */
static bool fields(cur *c, const rc_fields *t, void **out)
{
    unsigned long long seen = 0, required = 0;
    if (t->count > 64 || !eat(c, '{'))
        return false;
    void *e = calloc(1, t->size);
    bool ok = e != NULL;
    int i = -1;
    if (ok && !eat(c, '}')) {
        do {
            const char *k;
            size_t n;
            i = ok && string_span(c, &k, &n) ? field_index(t, k, n, i) : -1;
            ok = i >= 0 && !(seen >> i & 1) && eat(c, ':');
            if (ok) {
                seen |= 1ull << i;
                ok = field(c, &t->items[i], e);
            }
        } while (ok && eat(c, ','));
        ok = ok && eat(c, '}');
    }
    for (size_t i = 0; i < t->count; i++)
        if (t->items[i].required)
            required |= 1ull << i;
    ok = ok && (seen & required) == required && rc_fields_check_sizes(t, e) == RC_OK;
    if (!ok) {
        rc_fields_free(t, e);
        return false;
    }
    *out = e;
    return true;
}

/* {"entity": {...}, "cached_at": string|null, "ttl": integer|null}, each
 * at most once, entity required. */
static bool envelope(cur *c, const rc_fields *t, void **out)
{
    static const char *const names[3] = {"entity", "cached_at", "ttl"};
    unsigned seen = 0;
    *out = NULL;
    bool ok = eat(c, '{');
    while (ok) {
        const char *k;
        size_t n;
        int i = -1;
        ok = string_span(c, &k, &n) && eat(c, ':');
        for (int j = 0; ok && j < 3; j++)
            if (strncmp(names[j], k, n) == 0 && names[j][n] == '\0')
                i = j;
        ok = ok && i >= 0 && !(seen >> i & 1);
        if (ok)
            seen |= 1u << i;
        long long v;
        if (ok && i == 0)
            ok = !*out && fields(c, t, out);
        else if (ok && i == 1)
            ok = eat_null(c) || string_span(c, &k, &n);
        else if (ok)
            ok = eat_null(c) || integer(c, &v);
        if (!ok || !eat(c, ','))
            break;
    }
    ok = ok && eat(c, '}') && *out;
    if (!ok) {
        rc_fields_free(t, *out);
        *out = NULL;
    }
    return ok;
}

/* Only whitespace left. */
static bool at_end(cur *c)
{
    skip_ws(c);
    return c->p == c->end;
}

bool rc_fast_envelope_decode(const rc_fields *t, const char *text, size_t len,
                             void **out)
{
    cur c = {text, text + len};
    if (envelope(&c, t, out) && at_end(&c))
        return true;
    rc_fields_free(t, *out);
    *out = NULL;
    return false;
}

bool rc_fast_envelope_list_decode(const rc_fields *t, const rc_entity_ops *ops,
                                  const char *text, size_t len, rc_list **out)
{
    cur c = {text, text + len};
    rc_list *l = rc_list_new(ops);
    bool ok = l && eat(&c, '[');
    if (ok && !eat(&c, ']')) {
        do {
            void *e = NULL;
            ok = envelope(&c, t, &e);
            if (ok && rc_list_push(l, e) != RC_OK) {
                rc_fields_free(t, e);
                ok = false;
            }
        } while (ok && eat(&c, ','));
        ok = ok && eat(&c, ']');
    }
    if (!ok || !at_end(&c)) {
        rc_list_free(l);
        return false;
    }
    *out = l;
    return true;
}
