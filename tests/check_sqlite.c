/* check_sqlite.c - the SQLite repositories on real database files: CRUD and
 * every named query per entity, persistence, error paths, awkward strings,
 * schema versioning, and concurrent use from two threads. */
#include "harness.h"

#include "repocache/codec.h"
#include "repocache/sqlite_repository.h"

#include <check.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fixture: a fresh database file and one repository per entity ---- */

static char *db_path;
static rc_sqlite_db *db;
static rc_repo *heroes, *children, *stories;

static void open_repos(void)
{
    ck_assert_int_eq(rc_sqlite_open(db_path, &db), RC_OK);
    ck_assert_int_eq(rc_sqlite_repo_new(db, &rc_hero_entity, &heroes), RC_OK);
    ck_assert_int_eq(rc_sqlite_repo_new(db, &rc_child_entity, &children),
                     RC_OK);
    ck_assert_int_eq(rc_sqlite_repo_new(db, &rc_story_entity, &stories),
                     RC_OK);
}

static void close_repos(void)
{
    rc_repo_free(heroes);
    rc_repo_free(children);
    rc_repo_free(stories);
    rc_sqlite_free(db);
    heroes = children = stories = NULL;
    db = NULL;
}

static void setup(void)
{
    db_path = th_tmpfile("repocache.db");
    ck_assert_ptr_nonnull(db_path);
    open_repos();
}

static void teardown(void)
{
    close_repos();
    free(db_path);
    db_path = NULL;
}

/* ---- entity builders and comparison ---- */

static char *dup(const char *s) { return s ? strdup(s) : NULL; }

static rc_hero *mk_hero(const char *id, const char *name, const char *lang,
                        int age)
{
    rc_hero *h = rc_hero_new();
    ck_assert_ptr_nonnull(h);
    h->id = dup(id);
    h->name = dup(name);
    h->age = age;
    h->gender = dup("female");
    h->appearance = dup("tall, with a green cloak");
    h->language = dup(lang);
    rc_strlist_push(&h->personality_traits, "brave");
    rc_strlist_push(&h->personality_traits, "kind");
    rc_strlist_push(&h->interests, "maps");
    return h;
}

static rc_child *mk_child(const char *id, const char *name, int age,
                          const char *gender)
{
    rc_child *c = rc_child_new();
    ck_assert_ptr_nonnull(c);
    c->id = dup(id);
    c->name = dup(name);
    c->age = age;
    c->age_category = dup("5-7");
    c->gender = dup(gender);
    rc_strlist_push(&c->interests, "dinosaurs");
    rc_strlist_push(&c->interests, "space");
    return c;
}

/* A story with every optional field set when full is true, none otherwise. */
static rc_story *mk_story(const char *id, const char *child_id,
                          const char *child_name, const char *lang, bool full)
{
    rc_story *s = rc_story_new();
    ck_assert_ptr_nonnull(s);
    s->id = dup(id);
    s->title = dup("The Brave Little Fox");
    s->content = dup("Once upon a time...\nThe end.");
    s->moral = dup("Be kind.");
    s->language = dup(lang);
    s->child_id = dup(child_id);
    s->child_name = dup(child_name);
    if (!full)
        return s;
    s->age_category = dup("5-7");
    s->child_gender = dup("male");
    rc_strlist_push(&s->child_interests, "foxes");
    s->story_length = (rc_opt_int){true, 5};
    s->rating = (rc_opt_int){true, 9};
    s->audio_file = calloc(1, sizeof *s->audio_file);
    s->audio_file->url = dup("https://example.com/a.mp3?sig=x&y=1");
    s->audio_file->provider = dup("elevenlabs");
    s->audio_file->metadata = dup("{\"voice\":\"Ann\",\"sec\":[1,2.5,null]}");
    s->model_used = dup("gpt-4o");
    s->full_response = dup("{\"choices\":[{\"text\":\"hi\"}]}");
    s->generation_info = dup("[1,\"two\",{\"three\":3}]");
    return s;
}

/* The JSON encoding of e: equal encodings mean equal entities, field by
 * field (null and "" differ, list order counts). Caller frees. */
static char *enc(const rc_repo *r, const void *e)
{
    const rc_codec *c = r->entity == &rc_hero_entity    ? &rc_hero_codec
                        : r->entity == &rc_child_entity ? &rc_child_codec
                                                        : &rc_story_codec;
    char *out = NULL;
    ck_assert_int_eq(rc_entity_encode_text(c, e, &out), RC_OK);
    return out;
}

static void assert_same(const rc_repo *r, const void *a, const void *b)
{
    char *ja = enc(r, a), *jb = enc(r, b);
    ck_assert_str_eq(ja, jb);
    free(ja);
    free(jb);
}

/* Saves e (an entity of r's type), frees it, returns the stored copy. */
static void *save(rc_repo *r, void *e)
{
    void *saved = NULL;
    int rc = rc_repo_save(r, e, &saved);
    ck_assert_msg(rc == RC_OK, "save: %s (%s)", rc_strerror(rc), rc_errmsg());
    r->entity->free(e);
    return saved;
}

static size_t count_all(rc_repo *r)
{
    rc_list *l = NULL;
    size_t n;
    ck_assert_int_eq(rc_repo_list_all(r, &l), RC_OK);
    n = l->len;
    rc_list_free(l);
    return n;
}

/* Asserts that list l holds exactly the entities with the ids given, in this
 * order (NULL-terminated), then frees it. */
static void assert_ids(rc_list *l, ...)
{
    va_list ap;
    const char *id;
    size_t i = 0;
    ck_assert_ptr_nonnull(l);
    va_start(ap, l);
    while ((id = va_arg(ap, const char *)) != NULL) {
        ck_assert_msg(i < l->len, "missing %s at %zu", id, i);
        ck_assert_str_eq(l->ops->get_id(l->items[i]), id);
        i++;
    }
    va_end(ap);
    ck_assert_uint_eq(l->len, i);
    rc_list_free(l);
}

static bool is_hex_id(const char *id)
{
    size_t i;
    if (!id || strlen(id) != 32)
        return false;
    for (i = 0; i < 32; i++)
        if (!strchr("0123456789abcdef", id[i]))
            return false;
    return true;
}

/* ---- schema ---- */

/* Reads one integer/text pragma through a separate raw connection. */
static char *raw_pragma(const char *path, const char *sql)
{
    sqlite3 *c;
    sqlite3_stmt *st;
    char *out = NULL;
    ck_assert_int_eq(sqlite3_open(path, &c), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(c, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(c);
    ck_assert_ptr_nonnull(out);
    return out;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *c;
    ck_assert_int_eq(sqlite3_open(path, &c), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(c, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(c);
}

START_TEST(test_schema_version_and_wal)
{
    char *v = raw_pragma(db_path, "PRAGMA user_version");
    char *mode = raw_pragma(db_path, "PRAGMA journal_mode");
    char *tables = raw_pragma(
        db_path, "SELECT group_concat(name, ',') FROM (SELECT name FROM "
                 "sqlite_master WHERE type = 'table' ORDER BY name)");
    ck_assert_str_eq(v, "1");
    ck_assert_str_eq(mode, "wal");
    ck_assert_str_eq(tables, "children,heroes,stories");
    free(v);
    free(mode);
    free(tables);
    /* reopening an up-to-date file migrates nothing and keeps the data */
    rc_hero_free(save(heroes, mk_hero("h1", "Ann", "en", 30)));
    close_repos();
    open_repos();
    ck_assert_uint_eq(count_all(heroes), 1);
    v = raw_pragma(db_path, "PRAGMA user_version");
    ck_assert_str_eq(v, "1");
    free(v);
}
END_TEST

START_TEST(test_newer_schema_refused)
{
    rc_sqlite_db *other = (rc_sqlite_db *)&other; /* must be reset to NULL */
    close_repos();
    raw_exec(db_path, "PRAGMA user_version = 99");
    ck_assert_int_eq(rc_sqlite_open(db_path, &other), RC_EBACKEND);
    ck_assert_ptr_null(other);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "newer"));
    raw_exec(db_path, "PRAGMA user_version = 1");
    open_repos();
}
END_TEST

START_TEST(test_open_errors)
{
    rc_sqlite_db *bad = NULL;
    rc_repo *r = NULL;
    static const rc_entity_ops other = {.name = "other"};
    ck_assert_int_eq(rc_sqlite_open("/nonexistent-dir/x/y.db", &bad),
                     RC_EBACKEND);
    ck_assert_ptr_null(bad);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "sqlite"));
    ck_assert_int_eq(rc_sqlite_open(NULL, &bad), RC_EINVAL);
    ck_assert_int_eq(rc_sqlite_repo_new(db, &other, &r), RC_EINVAL);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(rc_sqlite_repo_new(NULL, &rc_hero_entity, &r), RC_EINVAL);
    rc_sqlite_free(NULL); /* accepts NULL */
}
END_TEST

/* A failure inside SQLite is RC_EBACKEND with SQLite's own message. */
START_TEST(test_backend_error)
{
    rc_list *l = (rc_list *)&l;
    void *out = (void *)&out;
    rc_story *s = mk_story("s1", NULL, NULL, "en", false);
    raw_exec(db_path, "DROP TABLE stories");
    ck_assert_int_eq(rc_repo_list_all(stories, &l), RC_EBACKEND);
    ck_assert_ptr_null(l);
    ck_assert_msg(strstr(rc_errmsg(), "no such table"), "%s", rc_errmsg());
    ck_assert_int_eq(rc_repo_save(stories, s, &out), RC_EBACKEND);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(rc_repo_remove(stories, "s1", &out), RC_EBACKEND);
    ck_assert_int_eq(rc_repo_update(stories, s, NULL, &out), RC_EBACKEND);
    /* the connection is still usable for the other tables */
    rc_hero_free(save(heroes, mk_hero("h1", "Ann", "en", 30)));
    ck_assert_uint_eq(count_all(heroes), 1);
    rc_story_free(s);
}
END_TEST

START_TEST(test_memory_database)
{
    rc_sqlite_db *mem = NULL;
    rc_repo *r = NULL;
    rc_hero *h = NULL;
    ck_assert_int_eq(rc_sqlite_open(":memory:", &mem), RC_OK);
    ck_assert_int_eq(rc_sqlite_repo_new(mem, &rc_hero_entity, &r), RC_OK);
    rc_hero_free(save(r, mk_hero("m1", "Ann", "en", 30)));
    ck_assert_int_eq(rc_repo_find_by_id(r, "m1", (void **)&h), RC_OK);
    ck_assert_str_eq(h->name, "Ann");
    ck_assert_uint_eq(count_all(heroes), 0); /* not the file's database */
    rc_hero_free(h);
    rc_repo_free(r);
    rc_sqlite_free(mem);
}
END_TEST

/* ---- CRUD, one test per entity through one generic routine ---- */

/* Saves e0 (no id), finds, lists, updates with e1 (its id set here),
 * removes; checks every result. Takes e0 and e1. */
static void crud(rc_repo *r, void *e0, void *e1, size_t off_id)
{
    void *saved, *found = NULL, *stored = NULL, *prev = NULL;
    const rc_entity_ops *ops = r->entity;
    rc_list *l = NULL;
    char **id1 = (char **)((char *)e1 + off_id);
    const char *id;

    saved = save(r, e0);
    id = ops->get_id(saved);
    ck_assert_msg(is_hex_id(id), "generated id %s", id);
    ck_assert_int_eq(rc_repo_find_by_id(r, id, &found), RC_OK);
    assert_same(r, saved, found);
    ck_assert_int_eq(rc_repo_list_all(r, &l), RC_OK);
    ck_assert_uint_eq(l->len, 1);
    assert_same(r, saved, l->items[0]);
    rc_list_free(l);

    free(*id1);
    *id1 = strdup(id);
    ck_assert_int_eq(rc_repo_update(r, e1, &stored, &prev), RC_OK);
    assert_same(r, prev, found); /* previous = the row before the update */
    ops->free(found);
    ck_assert_int_eq(rc_repo_find_by_id(r, id, &found), RC_OK);
    assert_same(r, stored, found); /* stored = what is now in the file */
    ops->free(found);
    ops->free(prev);

    ck_assert_int_eq(rc_repo_remove(r, id, &prev), RC_OK);
    assert_same(r, prev, stored);
    ck_assert_int_eq(rc_repo_find_by_id(r, id, &found), RC_ENOTFOUND);
    ck_assert_ptr_null(found);
    ck_assert_uint_eq(count_all(r), 0);
    ops->free(prev);
    ops->free(stored);
    ops->free(saved);
    ops->free(e1);
}

START_TEST(test_hero_crud)
{
    rc_hero *h1 = mk_hero(NULL, "Ann", "ru", 31);
    rc_strlist_push(&h1->strengths, "archery");
    crud(heroes, mk_hero(NULL, "Ann", "en", 30), h1, offsetof(rc_hero, id));
}
END_TEST

START_TEST(test_child_crud)
{
    crud(children, mk_child(NULL, "Max", 6, "male"),
         mk_child(NULL, "Max", 7, "other"), offsetof(rc_child, id));
}
END_TEST

START_TEST(test_story_crud)
{
    /* minimal -> full (nulls become values) ... */
    crud(stories, mk_story(NULL, NULL, NULL, "en", false),
         mk_story(NULL, "c1", "Max", "ru", true), offsetof(rc_story, id));
    /* ... and full -> minimal (values become nulls again) */
    crud(stories, mk_story(NULL, "c1", "Max", "ru", true),
         mk_story(NULL, NULL, NULL, "en", false), offsetof(rc_story, id));
}
END_TEST

START_TEST(test_story_nulls_round_trip)
{
    rc_story *s = save(stories, mk_story("s1", NULL, NULL, "en", false));
    rc_story *f = NULL;
    ck_assert_int_eq(rc_repo_find_by_id(stories, "s1", (void **)&f), RC_OK);
    ck_assert_ptr_null(f->child_id);
    ck_assert_ptr_null(f->audio_file);
    ck_assert_ptr_null(f->full_response);
    ck_assert(!f->rating.set);
    ck_assert(!f->story_length.set);
    ck_assert_uint_eq(f->child_interests.len, 0);
    assert_same(stories, s, f);
    rc_story_free(f);
    rc_story_free(s);
    /* an audio file with only its url keeps its null provider/metadata */
    s = mk_story("s2", NULL, NULL, "en", false);
    s->audio_file = calloc(1, sizeof *s->audio_file);
    s->audio_file->url = strdup("");
    s = save(stories, s);
    ck_assert_int_eq(rc_repo_find_by_id(stories, "s2", (void **)&f), RC_OK);
    ck_assert_ptr_nonnull(f->audio_file);
    ck_assert_str_eq(f->audio_file->url, "");
    ck_assert_ptr_null(f->audio_file->provider);
    assert_same(stories, s, f);
    rc_story_free(f);
    rc_story_free(s);
}
END_TEST

/* ---- timestamps and ids ---- */

START_TEST(test_timestamps)
{
    rc_hero *h = mk_hero("h1", "Ann", "en", 30), *s, *u = NULL;
    h->created_at = strdup("2024-01-15T10:30:00");
    s = save(heroes, h);
    /* given created_at kept, absent updated_at set to now */
    ck_assert_str_eq(s->created_at, "2024-01-15T10:30:00");
    ck_assert_ptr_nonnull(s->updated_at);
    ck_assert_uint_eq(strlen(s->updated_at), 26);
    ck_assert_int_eq(s->updated_at[10], 'T');
    ck_assert_str_gt(s->updated_at, "2024-01-15T10:30:00");
    /* update keeps the stored created_at, whatever the entity says, and
     * moves updated_at forward */
    h = rc_hero_clone(s);
    free(h->created_at);
    h->created_at = strdup("1999-01-01T00:00:00");
    free(h->updated_at);
    h->updated_at = strdup("1999-01-01T00:00:00");
    ck_assert_int_eq(rc_repo_update(heroes, h, (void **)&u, NULL), RC_OK);
    ck_assert_str_eq(u->created_at, "2024-01-15T10:30:00");
    ck_assert_str_ge(u->updated_at, s->updated_at);
    rc_hero_free(u);
    ck_assert_int_eq(rc_repo_find_by_id(heroes, "h1", (void **)&u), RC_OK);
    ck_assert_str_eq(u->created_at, "2024-01-15T10:30:00");
    ck_assert_str_ge(u->updated_at, s->updated_at);
    rc_hero_free(u);
    rc_hero_free(h);
    rc_hero_free(s);
}
END_TEST

START_TEST(test_generated_ids_unique)
{
    enum { N = 300 };
    rc_list *l = NULL;
    size_t i, j;
    for (i = 0; i < N; i++)
        rc_child_free(save(children, mk_child(NULL, "Kid", 5, "female")));
    ck_assert_int_eq(rc_repo_list_all(children, &l), RC_OK);
    ck_assert_uint_eq(l->len, N);
    for (i = 0; i < N; i++) {
        const char *a = ((rc_child *)l->items[i])->id;
        ck_assert(is_hex_id(a));
        for (j = i + 1; j < N; j++)
            ck_assert_str_ne(a, ((rc_child *)l->items[j])->id);
    }
    rc_list_free(l);
}
END_TEST

/* ---- named queries ---- */

/* Saves a hero/child/story with an explicit created_at so the order is
 * known; the ids are chosen so that id order differs from created_at order. */
static void put_hero(const char *id, const char *name, const char *lang,
                     const char *created)
{
    rc_hero *h = mk_hero(id, name, lang, 20);
    h->created_at = strdup(created);
    rc_hero_free(save(heroes, h));
}

START_TEST(test_hero_queries)
{
    rc_list *l = NULL;
    put_hero("a", "Ann", "en", "2024-01-03T00:00:00");
    put_hero("b", "Bob", "ru", "2024-01-01T00:00:00");
    put_hero("c", "Ann", "ru", "2024-01-02T00:00:00");
    put_hero("d", "Ann", "en", "2024-01-03T00:00:00"); /* tie: id orders */
    put_hero("e", "ann", "en", "2023-12-31T00:00:00"); /* case matters */
    ck_assert_int_eq(rc_hero_find_by_language(heroes, "en", &l), RC_OK);
    assert_ids(l, "e", "a", "d", NULL);
    ck_assert_int_eq(rc_hero_find_by_language(heroes, "ru", &l), RC_OK);
    assert_ids(l, "b", "c", NULL);
    ck_assert_int_eq(rc_hero_find_by_name(heroes, "Ann", &l), RC_OK);
    assert_ids(l, "c", "a", "d", NULL);
    ck_assert_int_eq(rc_hero_find_by_name(heroes, "Nobody", &l), RC_OK);
    assert_ids(l, NULL);
    ck_assert_int_eq(rc_repo_list_all(heroes, &l), RC_OK);
    assert_ids(l, "e", "b", "c", "a", "d", NULL);
}
END_TEST

START_TEST(test_child_queries)
{
    rc_list *l = NULL;
    const char *args[3] = {"Max", "6", "male"};
    rc_child *c;
    const char *ids[] = {"k1", "k2", "k3", "k4"};
    const int ages[] = {6, 6, 7, 6};
    const char *genders[] = {"male", "male", "male", "female"};
    int i;
    for (i = 0; i < 4; i++) {
        c = mk_child(ids[i], "Max", ages[i], genders[i]);
        rc_child_free(save(children, c));
    }
    rc_child_free(save(children, mk_child("k5", "Mia", 6, "male")));
    ck_assert_int_eq(rc_child_find_by_name(children, "Max", &l), RC_OK);
    ck_assert_uint_eq(l->len, 4);
    rc_list_free(l);
    ck_assert_int_eq(rc_child_find_by_name(children, "Mia", &l), RC_OK);
    assert_ids(l, "k5", NULL);
    ck_assert_int_eq(rc_child_find_exact_match(children, "Max", 6, "male", &l),
                     RC_OK);
    ck_assert_uint_eq(l->len, 2);
    ck_assert_str_eq(((rc_child *)l->items[0])->id, "k1");
    ck_assert_str_eq(((rc_child *)l->items[1])->id, "k2");
    rc_list_free(l);
    ck_assert_int_eq(rc_repo_find_by_query(children, RC_Q_EXACT_MATCH, args, 3,
                                           &l),
                     RC_OK);
    ck_assert_uint_eq(l->len, 2);
    rc_list_free(l);
    ck_assert_int_eq(rc_child_find_exact_match(children, "Max", 7, "male", &l),
                     RC_OK);
    assert_ids(l, "k3", NULL);
    ck_assert_int_eq(
        rc_child_find_exact_match(children, "Max", 6, "female", &l), RC_OK);
    assert_ids(l, "k4", NULL);
    ck_assert_int_eq(rc_child_find_exact_match(children, "Max", 8, "male", &l),
                     RC_OK);
    assert_ids(l, NULL);
}
END_TEST

START_TEST(test_story_queries)
{
    rc_list *l = NULL;
    rc_story *s;
    s = mk_story("s1", "c1", "Max", "en", true);
    s->created_at = strdup("2024-02-02T00:00:00");
    rc_story_free(save(stories, s));
    s = mk_story("s2", "c1", "Max", "ru", false);
    s->created_at = strdup("2024-02-01T00:00:00");
    rc_story_free(save(stories, s));
    s = mk_story("s3", "c2", "Mia", "en", false);
    s->created_at = strdup("2024-02-03T00:00:00");
    rc_story_free(save(stories, s));
    rc_story_free(save(stories, mk_story("s4", NULL, NULL, "en", false)));
    ck_assert_int_eq(rc_story_find_by_child_id(stories, "c1", &l), RC_OK);
    assert_ids(l, "s2", "s1", NULL);
    ck_assert_int_eq(rc_story_find_by_child_id(stories, "c2", &l), RC_OK);
    assert_ids(l, "s3", NULL);
    ck_assert_int_eq(rc_story_find_by_child_name(stories, "Max", &l), RC_OK);
    assert_ids(l, "s2", "s1", NULL);
    ck_assert_int_eq(rc_story_find_by_child_name(stories, "Nobody", &l),
                     RC_OK);
    assert_ids(l, NULL);
    ck_assert_int_eq(rc_story_find_by_language(stories, "en", &l), RC_OK);
    assert_ids(l, "s1", "s3", "s4", NULL);
    ck_assert_int_eq(rc_story_find_by_language(stories, "ru", &l), RC_OK);
    assert_ids(l, "s2", NULL);
}
END_TEST

/* Wrong argument counts, NULL arguments, unknown names, bad integers. */
START_TEST(test_query_argument_errors)
{
    rc_list *l = (rc_list *)&l; /* must be reset to NULL */
    const char *two[2] = {"en", "ru"};
    const char *nul[1] = {NULL};
    const char *exact_bad[3] = {"Max", "six", "male"};
    const char *exact_space[3] = {"Max", " 6", "male"};
    struct {
        rc_repo **r;
        const char *q;
        const char *const *args;
        size_t n;
        const char *msg; /* expected in rc_errmsg() */
    } cases[] = {
        {&heroes, RC_Q_BY_LANGUAGE, two, 2, "by_language"},
        {&heroes, RC_Q_BY_LANGUAGE, NULL, 0, "by_language"},
        {&heroes, RC_Q_BY_NAME, two, 2, "by_name"},
        {&heroes, RC_Q_BY_NAME, nul, 1, "by_name"},
        {&heroes, RC_Q_BY_CHILD_ID, two, 1, "by_child_id"}, /* not a hero q */
        {&children, RC_Q_BY_NAME, two, 2, "by_name"},
        {&children, RC_Q_EXACT_MATCH, two, 2, "exact_match"},
        {&children, RC_Q_EXACT_MATCH, exact_bad, 3, "exact_match"},
        {&children, RC_Q_EXACT_MATCH, exact_space, 3, "exact_match"},
        {&children, RC_Q_BY_LANGUAGE, two, 1, "by_language"},
        {&stories, RC_Q_BY_CHILD_ID, two, 2, "by_child_id"},
        {&stories, RC_Q_BY_CHILD_NAME, NULL, 0, "by_child_name"},
        {&stories, RC_Q_BY_LANGUAGE, two, 2, "by_language"},
        {&stories, "by_title", two, 1, "by_title"},
        {&stories, NULL, two, 1, "(null)"},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        l = (rc_list *)&l;
        ck_assert_int_eq(rc_repo_find_by_query(*cases[i].r, cases[i].q,
                                               cases[i].args, cases[i].n, &l),
                         RC_EINVAL);
        ck_assert_ptr_null(l);
        ck_assert_msg(strstr(rc_errmsg(), cases[i].msg),
                      "case %zu: message '%s' lacks '%s'", i, rc_errmsg(),
                      cases[i].msg);
    }
    /* the statements are left clean: a good query still works */
    ck_assert_int_eq(rc_hero_find_by_language(heroes, "en", &l), RC_OK);
    assert_ids(l, NULL);
}
END_TEST

/* ---- error paths ---- */

START_TEST(test_conflict)
{
    rc_hero *h = mk_hero("h1", "Ann", "en", 30), *other, *found = NULL;
    void *saved = (void *)&saved;
    rc_hero_free(save(heroes, h));
    other = mk_hero("h1", "Impostor", "ru", 99);
    ck_assert_int_eq(rc_repo_save(heroes, other, &saved), RC_ECONFLICT);
    ck_assert_ptr_null(saved);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "h1"));
    ck_assert_int_eq(rc_repo_find_by_id(heroes, "h1", (void **)&found), RC_OK);
    ck_assert_str_eq(found->name, "Ann");
    ck_assert_int_eq(found->age, 30);
    ck_assert_uint_eq(count_all(heroes), 1);
    rc_hero_free(found);
    rc_hero_free(other);
}
END_TEST

START_TEST(test_not_found)
{
    rc_hero *h = mk_hero("ghost", "Ann", "en", 30);
    void *a = (void *)&a, *b = (void *)&b;
    ck_assert_int_eq(rc_repo_find_by_id(heroes, "ghost", &a), RC_ENOTFOUND);
    ck_assert_ptr_null(a);
    a = (void *)&a;
    ck_assert_int_eq(rc_repo_update(heroes, h, &a, &b), RC_ENOTFOUND);
    ck_assert_ptr_null(a);
    ck_assert_ptr_null(b);
    ck_assert_uint_eq(count_all(heroes), 0); /* update did not insert */
    b = (void *)&b;
    ck_assert_int_eq(rc_repo_remove(heroes, "ghost", &b), RC_ENOTFOUND);
    ck_assert_ptr_null(b);
    ck_assert_int_eq(rc_repo_remove(children, "ghost", NULL), RC_ENOTFOUND);
    rc_hero_free(h);
}
END_TEST

START_TEST(test_invalid_writes_nothing)
{
    rc_hero *h = mk_hero(NULL, "Ann", "en", 30), *kept, *found = NULL;
    rc_child *c = mk_child(NULL, "Max", 30, "male"); /* not a child's age */
    rc_story *s = mk_story(NULL, NULL, NULL, "fr", false);
    void *out = (void *)&out;

    free(h->gender);
    h->gender = strdup("dragon");
    ck_assert_int_eq(rc_repo_save(heroes, h, &out), RC_EINVAL);
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "gender"));
    ck_assert_int_eq(rc_repo_save(children, c, NULL), RC_EINVAL);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "age"));
    ck_assert_int_eq(rc_repo_save(stories, s, NULL), RC_EINVAL);
    ck_assert_ptr_nonnull(strstr(rc_errmsg(), "language"));
    ck_assert_int_eq(rc_repo_save(heroes, NULL, NULL), RC_EINVAL);
    ck_assert_uint_eq(count_all(heroes), 0);
    ck_assert_uint_eq(count_all(children), 0);
    ck_assert_uint_eq(count_all(stories), 0);

    /* an invalid update leaves the stored row as it was */
    kept = save(heroes, mk_hero("h1", "Ann", "en", 30));
    free(h->id);
    h->id = strdup("h1");
    ck_assert_int_eq(rc_repo_update(heroes, h, NULL, NULL), RC_EINVAL);
    rc_hero_free(h);
    h = mk_hero(NULL, "Ann", "ru", 31); /* update needs an id */
    ck_assert_int_eq(rc_repo_update(heroes, h, NULL, NULL), RC_EINVAL);
    ck_assert_int_eq(rc_repo_find_by_id(heroes, "h1", (void **)&found), RC_OK);
    assert_same(heroes, kept, found);
    rc_hero_free(found);

    /* ids that cannot exist are refused, not looked up */
    ck_assert_int_eq(rc_repo_find_by_id(heroes, "a b", &out), RC_EINVAL);
    ck_assert_int_eq(rc_repo_find_by_id(heroes, NULL, &out), RC_EINVAL);
    ck_assert_int_eq(rc_repo_remove(heroes, "all", NULL), RC_EINVAL);
    ck_assert_uint_eq(count_all(heroes), 1);
    rc_hero_free(kept);
    rc_hero_free(h);
    rc_child_free(c);
    rc_story_free(s);
}
END_TEST

/* ---- persistence ---- */

START_TEST(test_persistence)
{
    rc_hero *h = save(heroes, mk_hero(NULL, "Ann", "en", 30)), *hf = NULL;
    rc_child *c = save(children, mk_child("c1", "Max", 6, "male")), *cf = NULL;
    rc_story *s = save(stories, mk_story("s1", "c1", "Max", "ru", true));
    rc_story *sf = NULL;
    rc_list *l = NULL;
    close_repos();
    open_repos();
    ck_assert_int_eq(rc_repo_find_by_id(heroes, h->id, (void **)&hf), RC_OK);
    assert_same(heroes, h, hf);
    ck_assert_int_eq(rc_repo_find_by_id(children, "c1", (void **)&cf), RC_OK);
    assert_same(children, c, cf);
    ck_assert_int_eq(rc_repo_find_by_id(stories, "s1", (void **)&sf), RC_OK);
    assert_same(stories, s, sf);
    ck_assert_int_eq(rc_story_find_by_child_id(stories, "c1", &l), RC_OK);
    assert_ids(l, "s1", NULL);
    /* a removal persists too */
    ck_assert_int_eq(rc_repo_remove(children, "c1", NULL), RC_OK);
    close_repos();
    open_repos();
    ck_assert_uint_eq(count_all(children), 0);
    ck_assert_uint_eq(count_all(heroes), 1);
    rc_hero_free(h);
    rc_hero_free(hf);
    rc_child_free(c);
    rc_child_free(cf);
    rc_story_free(s);
    rc_story_free(sf);
}
END_TEST

/* ---- awkward strings ---- */

static const char *const awkward[] = {
    "O'Brien \"the\" bold",
    "a;b; DROP TABLE heroes;--",
    "'); DELETE FROM heroes; --",
    "100% %s %d %n \\ \\\\",
    "line1\nline2\r\n\ttabbed",
    "Ёжик в тумане",
    "日本語のテキスト 🦔🚀",
    "",
};
#define N_AWKWARD (sizeof awkward / sizeof awkward[0])

START_TEST(test_awkward_strings)
{
    size_t i, k;
    for (i = 0; i < N_AWKWARD; i++) {
        char id[16];
        const char *name = awkward[i][0] ? awkward[i] : "empty-name";
        rc_hero *h, *f = NULL;
        rc_list *l = NULL;
        snprintf(id, sizeof id, "w%zu", i);
        h = mk_hero(id, name, "ru", 40);
        free(h->appearance);
        h->appearance = strdup(awkward[i]);
        for (k = 0; k < N_AWKWARD; k++)
            rc_strlist_push(&h->strengths, awkward[(i + k) % N_AWKWARD]);
        rc_hero_free(save(heroes, h));
        ck_assert_int_eq(rc_repo_find_by_id(heroes, id, (void **)&f), RC_OK);
        ck_assert_uint_eq(strlen(f->name), strlen(name));
        ck_assert(memcmp(f->name, name, strlen(name)) == 0);
        ck_assert(strcmp(f->appearance, awkward[i]) == 0);
        ck_assert_uint_eq(f->strengths.len, N_AWKWARD);
        for (k = 0; k < N_AWKWARD; k++)
            ck_assert(strcmp(f->strengths.items[k],
                             awkward[(i + k) % N_AWKWARD]) == 0);
        rc_hero_free(f);
        /* the value also works as a query argument, exactly */
        ck_assert_int_eq(rc_hero_find_by_name(heroes, name, &l), RC_OK);
        assert_ids(l, id, NULL);
    }
    ck_assert_uint_eq(count_all(heroes), N_AWKWARD);
    /* a story's JSON text fields and the child's name keep every byte too */
    {
        rc_story *s = mk_story("sw", "c1", awkward[5], "en", true), *f = NULL;
        rc_list *l = NULL;
        free(s->full_response);
        s->full_response = strdup("{\"q\":\"it's; 100%\\n\",\"ü\":\"日本\"}");
        rc_story_free(save(stories, s));
        ck_assert_int_eq(rc_repo_find_by_id(stories, "sw", (void **)&f),
                         RC_OK);
        ck_assert_str_eq(f->full_response,
                         "{\"q\":\"it's; 100%\\n\",\"ü\":\"日本\"}");
        rc_story_free(f);
        ck_assert_int_eq(rc_story_find_by_child_name(stories, awkward[5], &l),
                         RC_OK);
        assert_ids(l, "sw", NULL);
    }
}
END_TEST

/* ---- two threads ---- */

enum { N_IDS = 40, N_OPS = 3000 };

typedef struct worker {
    rc_repo *heroes;    /* the repository this thread uses */
    int k;              /* thread number: ids are "t<k>-<i>" */
    int ages[N_IDS];    /* the thread's model: 0 = absent */
    int ops;            /* operations done */
    char error[256];    /* first failure, "" when none */
} worker;

static unsigned next_rand(unsigned *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

#define FAIL_(w, ...)                                                          \
    do {                                                                       \
        snprintf((w)->error, sizeof (w)->error, __VA_ARGS__);                  \
        return NULL;                                                           \
    } while (0)

static void *worker_main(void *arg)
{
    worker *w = arg;
    unsigned seed = 0x9e3779b9u * (unsigned)(w->k + 1);
    for (w->ops = 0; w->ops < N_OPS; w->ops++) {
        int i = (int)(next_rand(&seed) % N_IDS);
        int op = (int)(next_rand(&seed) % 5);
        int age = 1 + (int)(next_rand(&seed) % 150);
        char id[32], name[48];
        rc_hero *h = NULL, *prev = NULL;
        rc_list *l = NULL;
        int rc, want;
        snprintf(id, sizeof id, "t%d-%d", w->k, i);
        snprintf(name, sizeof name, "name-%s", id);
        switch (op) {
        case 0: /* save */
        case 1: /* update */
            h = mk_hero(id, name, w->k ? "ru" : "en", age);
            rc = op == 0 ? rc_repo_save(w->heroes, h, NULL)
                         : rc_repo_update(w->heroes, h, NULL, (void **)&prev);
            rc_hero_free(h);
            want = op == 0 ? (w->ages[i] ? RC_ECONFLICT : RC_OK)
                           : (w->ages[i] ? RC_OK : RC_ENOTFOUND);
            if (rc != want)
                FAIL_(w, "op %d on %s: %s, want %s (%s)", op, id,
                      rc_status_name(rc), rc_status_name(want), rc_errmsg());
            if (op == 1 && prev && prev->age != w->ages[i])
                FAIL_(w, "update %s: previous age %d, want %d", id, prev->age,
                      w->ages[i]);
            rc_hero_free(prev);
            if (rc == RC_OK)
                w->ages[i] = age;
            break;
        case 2: /* find */
            rc = rc_repo_find_by_id(w->heroes, id, (void **)&h);
            if (rc != (w->ages[i] ? RC_OK : RC_ENOTFOUND) ||
                (h && h->age != w->ages[i]))
                FAIL_(w, "find %s: %s", id, rc_status_name(rc));
            rc_hero_free(h);
            break;
        case 3: /* query */
            rc = rc_hero_find_by_name(w->heroes, name, &l);
            if (rc != RC_OK || l->len != (w->ages[i] ? 1u : 0u) ||
                (l->len && ((rc_hero *)l->items[0])->age != w->ages[i]))
                FAIL_(w, "query %s: %s", name, rc_status_name(rc));
            rc_list_free(l);
            break;
        default: /* remove */
            rc = rc_repo_remove(w->heroes, id, (void **)&prev);
            if (rc != (w->ages[i] ? RC_OK : RC_ENOTFOUND) ||
                (prev && prev->age != w->ages[i]))
                FAIL_(w, "remove %s: %s", id, rc_status_name(rc));
            rc_hero_free(prev);
            w->ages[i] = 0;
            break;
        }
    }
    return NULL;
}

/* Runs two workers on r0 and r1 and checks the final table against their
 * models, read through check (a repository on the same file). */
static void run_two_threads(rc_repo *r0, rc_repo *r1, rc_repo *check)
{
    static worker w[2];
    pthread_t t[2];
    rc_list *l = NULL;
    size_t expected = 0, i;
    int k;
    memset(w, 0, sizeof w);
    w[0].heroes = r0;
    w[1].heroes = r1;
    for (k = 0; k < 2; k++) {
        w[k].k = k;
        ck_assert_int_eq(pthread_create(&t[k], NULL, worker_main, &w[k]), 0);
    }
    for (k = 0; k < 2; k++)
        pthread_join(t[k], NULL);
    for (k = 0; k < 2; k++) {
        ck_assert_msg(w[k].error[0] == '\0', "thread %d after %d ops: %s", k,
                      w[k].ops, w[k].error);
        ck_assert_int_eq(w[k].ops, N_OPS);
        for (i = 0; i < N_IDS; i++)
            expected += w[k].ages[i] != 0;
    }
    ck_assert_int_eq(rc_repo_list_all(check, &l), RC_OK);
    ck_assert_uint_eq(l->len, expected);
    for (i = 0; i < l->len; i++) {
        rc_hero *h = l->items[i];
        int kk, ii;
        ck_assert_int_eq(sscanf(h->id, "t%d-%d", &kk, &ii), 2);
        ck_assert_int_eq(h->age, w[kk].ages[ii]);
        ck_assert_str_eq(h->language, kk ? "ru" : "en");
    }
    rc_list_free(l);
    ck_assert_int_eq(rc_hero_find_by_language(check, "ru", &l), RC_OK);
    for (i = 0, k = 0; i < N_IDS; i++)
        k += w[1].ages[i] != 0;
    ck_assert_uint_eq(l->len, (size_t)k);
    rc_list_free(l);
}

START_TEST(test_two_threads_one_db)
{
    run_two_threads(heroes, heroes, heroes);
}
END_TEST

/* Two connections on one file: SQLite's own locking (WAL, busy timeout,
 * BEGIN IMMEDIATE) instead of the mutex, as between two processes. */
START_TEST(test_two_threads_two_connections)
{
    rc_sqlite_db *db2 = NULL;
    rc_repo *heroes2 = NULL;
    ck_assert_int_eq(rc_sqlite_open(db_path, &db2), RC_OK);
    ck_assert_int_eq(rc_sqlite_repo_new(db2, &rc_hero_entity, &heroes2),
                     RC_OK);
    run_two_threads(heroes, heroes2, heroes2);
    rc_repo_free(heroes2);
    rc_sqlite_free(db2);
}
END_TEST

/* update reads *previous atomically with the write, also across
 * connections: two threads on two connections rename one hero over and over;
 * every name written must come back as some update's *previous exactly once
 * (or be the final name). A lost update would show a name twice and another
 * never. */
enum { N_RENAMES = 1000 };

typedef struct renamer {
    rc_repo *heroes;               /* this thread's repository */
    int k;                         /* thread number */
    char prev[N_RENAMES][16];      /* the *previous names seen */
    char error[256];               /* first failure, "" when none */
} renamer;

static void *renamer_main(void *arg)
{
    renamer *w = arg;
    int i;
    for (i = 0; i < N_RENAMES; i++) {
        char name[16];
        rc_hero *h, *prev = NULL;
        int rc;
        snprintf(name, sizeof name, "n%d-%d", w->k, i);
        h = mk_hero("shared", name, "en", 10);
        rc = rc_repo_update(w->heroes, h, NULL, (void **)&prev);
        rc_hero_free(h);
        if (rc != RC_OK || !prev) {
            snprintf(w->error, sizeof w->error, "update %d: %s (%s)", i,
                     rc_status_name(rc), rc_errmsg());
            return NULL;
        }
        snprintf(w->prev[i], sizeof w->prev[i], "%s", prev->name);
        rc_hero_free(prev);
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

START_TEST(test_update_previous_atomic)
{
    static renamer w[2];
    static char seen[2 * N_RENAMES + 1][16], written[2 * N_RENAMES + 1][16];
    rc_sqlite_db *db2 = NULL;
    rc_repo *heroes2 = NULL;
    rc_hero *final = NULL;
    pthread_t t[2];
    size_t n = 0, i;
    int k;
    rc_hero_free(save(heroes, mk_hero("shared", "start", "en", 10)));
    ck_assert_int_eq(rc_sqlite_open(db_path, &db2), RC_OK);
    ck_assert_int_eq(rc_sqlite_repo_new(db2, &rc_hero_entity, &heroes2),
                     RC_OK);
    memset(w, 0, sizeof w);
    w[0].heroes = heroes;
    w[1].heroes = heroes2;
    for (k = 0; k < 2; k++) {
        w[k].k = k;
        ck_assert_int_eq(pthread_create(&t[k], NULL, renamer_main, &w[k]), 0);
    }
    for (k = 0; k < 2; k++)
        pthread_join(t[k], NULL);
    for (k = 0; k < 2; k++)
        ck_assert_msg(w[k].error[0] == '\0', "thread %d: %s", k, w[k].error);
    ck_assert_int_eq(rc_repo_find_by_id(heroes, "shared", (void **)&final),
                     RC_OK);
    /* seen = every previous + the final name; written = start + every name */
    for (k = 0; k < 2; k++)
        for (i = 0; i < N_RENAMES; i++) {
            memcpy(seen[n], w[k].prev[i], 16);
            snprintf(written[n], sizeof written[n], "n%d-%zu", k, i);
            n++;
        }
    snprintf(seen[n], sizeof seen[n], "%s", final->name);
    snprintf(written[n], sizeof written[n], "start");
    n++;
    qsort(seen, n, sizeof seen[0], cmp_str);
    qsort(written, n, sizeof written[0], cmp_str);
    for (i = 0; i < n; i++)
        ck_assert_str_eq(seen[i], written[i]);
    rc_hero_free(final);
    rc_repo_free(heroes2);
    rc_sqlite_free(db2);
}
END_TEST

/* ---- rc_sqlite_batch ---- */

typedef struct batch_work {
    int status;        /* what the batch returns */
    rc_repo *observer; /* a repository on a second connection to the file */
    size_t seen;       /* heroes it saw from inside the batch */
    int nested;        /* status of a batch started inside this one */
} batch_work;

/* Inside a batch: saves b1 and b2, updates h0, removes h1; looks at the
 * file through the second connection; tries to nest. */
static int batch_body(void *ud)
{
    batch_work *w = ud;
    rc_hero *h = mk_hero("h0", "Changed", "ru", 9);
    rc_hero_free(save(heroes, mk_hero("b1", "Bo", "en", 7)));
    rc_hero_free(save(heroes, mk_hero("b2", "Cy", "en", 8)));
    ck_assert_int_eq(rc_repo_update(heroes, h, NULL, NULL), RC_OK);
    ck_assert_int_eq(rc_repo_remove(heroes, "h1", NULL), RC_OK);
    rc_hero_free(h);
    w->seen = count_all(w->observer);
    w->nested = rc_sqlite_batch(db, batch_body, w);
    return w->status;
}

/* One transaction: all of the batch's writes or none of them, invisible to
 * another connection until the commit. */
START_TEST(test_batch)
{
    rc_sqlite_db *db2 = NULL;
    rc_repo *other = NULL;
    void *e = NULL;
    ck_assert_int_eq(rc_sqlite_open(db_path, &db2), RC_OK);
    ck_assert_int_eq(rc_sqlite_repo_new(db2, &rc_hero_entity, &other), RC_OK);
    for (int pass = 0; pass < 2; pass++) {
        rc_hero_free(save(heroes, mk_hero("h0", "Ann", "en", 7)));
        rc_hero_free(save(heroes, mk_hero("h1", "Ben", "en", 8)));
        batch_work w = {.status = pass == 0 ? RC_ECONFLICT : RC_OK, .observer = other};
        ck_assert_int_eq(rc_sqlite_batch(db, batch_body, &w), w.status);
        ck_assert_uint_eq(w.seen, 2); /* the batch's writes were not visible */
        ck_assert_int_eq(w.nested, RC_EINVAL);
        ck_assert_int_eq(rc_repo_find_by_id(other, "h0", &e), RC_OK);
        ck_assert_str_eq(((rc_hero *)e)->name, pass == 0 ? "Ann" : "Changed");
        rc_hero_free(e);
        ck_assert_int_eq(rc_repo_find_by_id(other, "h1", &e),
                         pass == 0 ? RC_OK : RC_ENOTFOUND);
        rc_hero_free(e);
        e = NULL;
        ck_assert_uint_eq(count_all(other), pass == 0 ? 2 : 3);
        ck_assert_int_eq(rc_repo_remove(heroes, "h0", NULL), RC_OK);
        rc_repo_remove(heroes, "h1", NULL);
        rc_repo_remove(heroes, "b1", NULL);
        rc_repo_remove(heroes, "b2", NULL);
    }
    /* after a batch, calls commit on their own again */
    rc_hero_free(save(heroes, mk_hero("h9", "Dee", "en", 7)));
    ck_assert_uint_eq(count_all(other), 1);
    ck_assert_int_eq(rc_sqlite_batch(NULL, batch_body, NULL), RC_EINVAL);
    ck_assert_int_eq(rc_sqlite_batch(db, NULL, NULL), RC_EINVAL);
    rc_repo_free(other);
    rc_sqlite_free(db2);
}
END_TEST

static Suite *sqlite_suite(void)
{
    Suite *s = suite_create("sqlite");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"schema", test_schema_version_and_wal},
        {"newer_schema", test_newer_schema_refused},
        {"open_errors", test_open_errors},
        {"memory_database", test_memory_database},
        {"backend_error", test_backend_error},
        {"hero_crud", test_hero_crud},
        {"child_crud", test_child_crud},
        {"story_crud", test_story_crud},
        {"story_nulls", test_story_nulls_round_trip},
        {"timestamps", test_timestamps},
        {"generated_ids", test_generated_ids_unique},
        {"hero_queries", test_hero_queries},
        {"child_queries", test_child_queries},
        {"story_queries", test_story_queries},
        {"query_errors", test_query_argument_errors},
        {"conflict", test_conflict},
        {"not_found", test_not_found},
        {"invalid", test_invalid_writes_nothing},
        {"persistence", test_persistence},
        {"awkward_strings", test_awkward_strings},
        {"threads_one_db", test_two_threads_one_db},
        {"threads_two_connections", test_two_threads_two_connections},
        {"update_previous_atomic", test_update_previous_atomic},
        {"batch", test_batch},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, cases[i].test);
        tcase_set_timeout(tc, 120);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    return th_run_suite(sqlite_suite());
}
