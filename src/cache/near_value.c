/* near_value.c - the values of the near cache: freeing and copying out (near.h). */
#include "cache/near.h"

#include "core/pack.h"

#include <stdlib.h>
#include <string.h>

void rc_near_value_clear(rc_near_value *v)
{
    if (!v)
        return;
    switch (v->kind) {
    case RC_NEAR_BYTES:
        free(v->ptr);
        break;
    case RC_NEAR_ENTITY:
        if (v->ops)
            v->ops->free(v->ptr);
        break;
    case RC_NEAR_LIST:
        rc_list_free(v->ptr);
        break;
    case RC_NEAR_NEGATIVE:
        break;
    }
    memset(v, 0, sizeof *v);
}

/* *out = a copy of v: its entities packed when packed (they are packed in
 * the store), else ordinary. RC_OK or RC_ENOMEM (out empty). */
int rc_near_value_copy(const rc_near_value *v, bool packed, rc_near_value *out)
{
    *out = *v;
    switch (v->kind) {
    case RC_NEAR_BYTES:
        out->ptr = malloc(v->len + 1);
        if (out->ptr)
            memcpy(out->ptr, v->ptr, v->len + 1);
        break;
    case RC_NEAR_ENTITY:
        out->ptr = rc_entity_copy(v->ops, v->ptr, packed);
        break;
    case RC_NEAR_LIST:
        out->ptr = rc_list_copy(v->ptr, packed);
        break;
    case RC_NEAR_NEGATIVE:
        return RC_OK;
    }
    if (out->ptr)
        return RC_OK;
    memset(out, 0, sizeof *out);
    return RC_ENOMEM;
}
