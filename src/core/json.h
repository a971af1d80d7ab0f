/* json.h - JSON text in a buffer the caller frees with free(): jansson's
 * json_dumps would hand back memory of jansson's allocator, which a caller
 * cannot free with free() once json_set_alloc_funcs replaced it. */
#ifndef RC_CORE_JSON_H
#define RC_CORE_JSON_H

#include <jansson.h>
#include <stddef.h>

/* *out (malloc'd, NUL-terminated past *len; len may be NULL) = j dumped
 * compactly with flags. RC_OK or RC_ENOMEM. */
int rc_json_dump(const json_t *j, size_t flags, char **out, size_t *len);

#endif
