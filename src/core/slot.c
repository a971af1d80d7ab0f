/* slot.c - key slots and the tags that name them (slot.h). */
#include "core/slot.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

static uint16_t crc_table[256];
static char tags[RC_SLOTS][4]; /* NUL-terminated, 1 to 3 characters */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static uint16_t crc16(const char *p, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++)
        crc = (uint16_t)((crc << 8) ^ crc_table[((crc >> 8) ^ (unsigned char)p[i]) & 0xff]);
    return crc;
}

static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* Fills the CRC table (polynomial 0x1021, as Redis's crc16.c) and then the
 * tags, shortest first: 62 + 62^2 + 62^3 candidates cover every slot. */
static void build(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint16_t c = (uint16_t)(i << 8);
        for (int b = 0; b < 8; b++)
            c = (uint16_t)(c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1);
        crc_table[i] = c;
    }
    size_t filled = 0, n = sizeof alphabet - 1;
    char s[4] = {0};
    for (size_t len = 1; len <= 3 && filled < RC_SLOTS; len++) {
        size_t total = 1;
        for (size_t i = 0; i < len; i++)
            total *= n;
        for (size_t k = 0; k < total && filled < RC_SLOTS; k++) {
            size_t v = k;
            for (size_t i = 0; i < len; i++, v /= n)
                s[len - 1 - i] = alphabet[v % n];
            s[len] = '\0';
            unsigned slot = crc16(s, len) & (RC_SLOTS - 1);
            if (!tags[slot][0]) {
                memcpy(tags[slot], s, len + 1);
                filled++;
            }
        }
    }
}

unsigned rc_slot(const char *key, size_t len)
{
    pthread_once(&once, build);
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t after = (size_t)(open - key) + 1;
        const char *close = memchr(open + 1, '}', len - after);
        if (close && close > open + 1) {
            key = open + 1;
            len = (size_t)(close - key);
        }
    }
    return crc16(key, len) & (RC_SLOTS - 1);
}

const char *rc_slot_tag(unsigned slot)
{
    pthread_once(&once, build);
    return tags[slot & (RC_SLOTS - 1)];
}
