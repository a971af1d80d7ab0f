/*
 * version.c - the version of the library as built (repocache/version.h).
 */
#include "repocache/version.h"

const char *rc_version(void)
{
    return REPOCACHE_VERSION;
}

int rc_version_number(void)
{
    return REPOCACHE_VERSION_NUMBER;
}
