/*
 * fuzz.h - what the libFuzzer targets of tests/fuzz share: the oracle
 * assertion, the entity kinds, a reader that cuts an input into fields, and
 * the round-trip check of a decoded entity.
 *
 * Every target defines LLVMFuzzerTestOneInput. Built with REPOCACHE_FUZZ
 * (clang -fsanitize=fuzzer,address,undefined) libFuzzer drives it; in every
 * other build replay.c's main runs it over the seed corpus, as a CTest test.
 */
#ifndef RC_FUZZ_H
#define RC_FUZZ_H

#include "repocache/codec.h"
#include "repocache/entity.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The target's entry point, called once per input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fails the input (abort, which libFuzzer and the replay both report) when
 * cond does not hold, with a printf-style explanation. */
#define FUZZ_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz oracle failed: %s: ", #cond);                \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* One entity kind: its codec and operations. */
typedef struct fuzz_kind {
    const char *name;          /* "hero", "child", "story" */
    const rc_codec *codec;     /* its JSON codec */
    const rc_entity_ops *ops;  /* free, clone... */
    const rc_codec *jansson;   /* the same codec, decoding with jansson only
                                  (never the plain-text fast path) */
} fuzz_kind;

/* The kind numbered i (any value; taken modulo the three kinds). */
const fuzz_kind *fuzz_kind_of(unsigned i);

/* Asserts that entities a and b of kind k are equal: both encode, and to
 * the same text (the encoding writes every field, in a fixed order). */
void fuzz_same_entity(const fuzz_kind *k, const void *a, const void *b);

/* The end of a round trip: rc is the status of decoding out, the encoding
 * of e, into again. Asserts RC_OK and that again equals e; frees all three. */
void fuzz_round_trip_end(const fuzz_kind *k, void *e, char *out, int rc,
                         void *again);

/* Cuts an input into fields. */
typedef struct fuzz_reader {
    const uint8_t *p; /* what is left */
    size_t n;         /* its length */
} fuzz_reader;

/* The next byte, or 0 at the end. */
unsigned fuzz_byte(fuzz_reader *r);
/* The next field: a malloc'd copy of the bytes up to the next NUL (taken)
 * or the end; "" at the end. Never NULL (aborts when out of memory). */
char *fuzz_field(fuzz_reader *r);

#endif
