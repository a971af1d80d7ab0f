/*
 * repocache/export.h - RC_API marks every declaration of the public API.
 *
 * The library is compiled with -fvisibility=hidden: its shared object
 * exports exactly the functions and data the headers of include/repocache/
 * declare with RC_API, and nothing else (scripts/check_symbols.sh checks
 * the two lists are equal). Internal calls bind inside the library, so a
 * program's own function of the same name as an internal one (rc_strdup,
 * rc_log, ...) never replaces it.
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
