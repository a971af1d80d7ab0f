/*
 * repocache/export.h - RC_API marks every declaration of the public API.
 *
 * The library is compiled with -fvisibility=hidden: its shared object
 * exports exactly the functions and data the headers of include/repocache/
 * declare with RC_API, and nothing else (scripts/check_symbols.sh checks
 * the two lists are equal). Internal calls bind inside the library, so a
 * program's own function of the same name as an internal one (rc_strdup,
 * rc_log, ...) never replaces it.
 *
 * Growing structs. The public structs that will gain members (rc_settings,
 * rc_cache_stats, rc_cached_repo_stats, rc_cached_repo_options,
 * rc_strategy) end with reserved space (reserved_), as libuv's do: a member
 * added later takes its room from reserved_, so the size and every offset
 * stay those of this release (src/repository/layout.c asserts the sizes) and
 * a program built against older headers runs unchanged against a newer
 * library. The rules that make this safe:
 * - a struct the library fills (settings, stats) is always filled whole;
 * - a struct the caller fills (options, strategy) must be initialised whole
 *   (designated initializers or = {0}), and a member added later means "as
 *   before" when zero;
 * - a vtable (rc_repo_methods) grows at its end instead and carries a
 *   version (RC_REPO_VERSION), never reserved space;
 * - the entities (rc_hero, rc_child, rc_story) and rc_list grow at their
 *   end: they are made by the library only (rc_*_new, the repositories),
 *   never allocated, copied or embedded by value by callers;
 * - rc_audio_file (which callers allocate) and the descriptors
 *   rc_entity_ops, rc_codec and rc_query_def (often written with
 *   positional initializers, rc_query_def in arrays) do not grow: a change
 *   to one is a new ABI.
 * When a reserve runs out, the next struct version starts a new ABI (the
 * soname changes).
 */
#ifndef REPOCACHE_EXPORT_H
#define REPOCACHE_EXPORT_H

#ifndef RC_API
#if defined(RC_BUILDING_LIBRARY) && defined(__GNUC__)
#define RC_API __attribute__((visibility("default")))
#else
#define RC_API
#endif
#endif

#endif
