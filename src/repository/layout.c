/*
 * layout.c - the sizes of the public structs that grow by reserved space
 * ("Growing structs" in repocache/export.h), fixed for this ABI (the
 * soname's version). A member added to one of them takes its room from its
 * reserved_ array, so these stay true; a failure here means a change would
 * break programs built against the released headers. Checked on LP64
 * targets (x86_64, aarch64), where the figures below were measured.
 * Until 0.2.0 is released they may still follow the headers (a member added
 * before the release is part of its layout); from then on, never.
 */
#include "repocache/cached_repository.h"

#if defined(__LP64__)
_Static_assert(sizeof(rc_settings) == 312,
               "rc_settings changed size: take new members from reserved_");
_Static_assert(sizeof(rc_cache_stats) == 376,
               "rc_cache_stats changed size: take new members from reserved_");
_Static_assert(sizeof(rc_cached_repo_stats) == 552,
               "rc_cached_repo_stats changed size: take new members from reserved_");
_Static_assert(sizeof(rc_cached_repo_options) == 56,
               "rc_cached_repo_options changed size: take new members from reserved_");
_Static_assert(sizeof(rc_strategy) == 96,
               "rc_strategy changed size: take new members from reserved_");
_Static_assert(sizeof(rc_cache_connection) == 1088,
               "rc_cache_connection changed size: take new members from reserved_");
#endif
