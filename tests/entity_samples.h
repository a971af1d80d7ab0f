/*
 * entity_samples.h - sample entities shared by check_entity and check_codec
 * (header-only: static functions, each test includes it once).
 *
 * sample_*_full(): every field set, with quotes, newlines and non-ASCII.
 * sample_*_min(): only the required fields; every optional field null/empty.
 * All samples are valid (rc_*_validate(e, true) == RC_OK).
 */
#ifndef RC_TEST_ENTITY_SAMPLES_H
#define RC_TEST_ENTITY_SAMPLES_H

#include "repocache/entity.h"

#include <stdlib.h>
#include <string.h>

static char *sx_(const char *s)
{
    char *p = strdup(s);
    if (p == NULL)
        abort();
    return p;
}

static void push_(rc_strlist *l, const char *s)
{
    if (rc_strlist_push(l, s) != 0)
        abort();
}

static rc_hero *sample_hero_min(void)
{
    rc_hero *h = rc_hero_new();
    h->id = sx_("hero-1");
    h->name = sx_("Captain Wonder");
    h->age = 25;
    h->gender = sx_("male");
    h->appearance = sx_("");
    h->language = sx_("en");
    return h;
}

static rc_hero *sample_hero_full(void)
{
    rc_hero *h = sample_hero_min();
    free(h->name);
    h->name = sx_("Капитан \"Чудо\"; 100%\nnew line");
    free(h->appearance);
    h->appearance = sx_("Tall, with a red cape \xF0\x9F\xA6\xB8");
    push_(&h->personality_traits, "brave");
    push_(&h->personality_traits, "kind; 'quoted'");
    push_(&h->interests, "flying");
    push_(&h->strengths, "strength");
    push_(&h->strengths, "");
    free(h->language);
    h->language = sx_("ru");
    h->created_at = sx_("2024-01-15T10:30:00");
    h->updated_at = sx_("2024-01-15T10:30:00.123456");
    return h;
}

static rc_child *sample_child_min(void)
{
    rc_child *c = rc_child_new();
    c->id = sx_("child_1");
    c->name = sx_("Emma");
    c->age_category = sx_("5-7");
    c->age = 6;
    c->gender = sx_("female");
    return c;
}

static rc_child *sample_child_full(void)
{
    rc_child *c = sample_child_min();
    free(c->name);
    c->name = sx_("Эмма: O'Brien");
    push_(&c->interests, "dinosaurs");
    push_(&c->interests, "space \xE2\x98\x85");
    c->created_at = sx_("2024-01-15T10:30:00.000001");
    c->updated_at = sx_("2024-02-01T08:00:00");
    return c;
}

static rc_story *sample_story_min(void)
{
    rc_story *s = rc_story_new();
    s->id = sx_("story.1");
    s->title = sx_("The Brave Little Fox");
    s->content = sx_("Once upon a time...");
    s->moral = sx_("Be brave.");
    s->language = sx_("en");
    return s;
}

static rc_story *sample_story_full(void)
{
    rc_story *s = sample_story_min();
    free(s->content);
    s->content = sx_("Жила-была лиса.\n\"Hello\", she said; 50% sure.\t\\end");
    s->child_id = sx_("child_1");
    s->child_name = sx_("Emma");
    s->age_category = sx_("5-7");
    s->child_gender = sx_("other");
    push_(&s->child_interests, "foxes");
    push_(&s->child_interests, "forests");
    s->story_length = (rc_opt_int){.set = true, .value = 5};
    s->rating = (rc_opt_int){.set = true, .value = 9};
    s->audio_file = calloc(1, sizeof *s->audio_file);
    if (s->audio_file == NULL)
        abort();
    s->audio_file->url = sx_("https://cdn.example.com/a.mp3?sig=a%2Fb");
    s->audio_file->provider = sx_("elevenlabs");
    s->audio_file->metadata = sx_("{\"voice\":\"Rachel\",\"duration\":12.5,"
                                  "\"tags\":[\"a\",null,true]}");
    s->model_used = sx_("openai/gpt-4o-mini");
    s->full_response = sx_("{\"choices\":[{\"message\":{\"content\":\"x\"}}],"
                           "\"usage\":{\"total_tokens\":123}}");
    s->generation_info = sx_("[1,\"two\",{\"three\":3}]");
    s->created_at = sx_("2024-01-15T10:30:00.123456");
    s->updated_at = sx_("2024-01-15T10:31:00");
    return s;
}

#endif
