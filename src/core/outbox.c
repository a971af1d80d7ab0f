/* outbox.c - releasing outbox rows (repocache/outbox.h). */
#include "repocache/outbox.h"

#include <stdlib.h>

void rc_outbox_rows_free(rc_outbox_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        free(rows[i].pattern);
        free(rows[i].keys);
    }
    free(rows);
}
