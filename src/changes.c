/* SPDX-License-Identifier: MIT */
#include "tally/changes.h"

#include <stdlib.h>

bool tally_changes_add(tally_changes_t *c, const uint8_t *key, uint32_t len, int64_t count) {
    size_t need = 12 + (size_t)len;
    if (c->len + need > c->cap) {
        size_t cap = c->cap ? c->cap : 65536;
        while (cap < c->len + need) cap *= 2;
        uint8_t *b = realloc(c->buf, cap);
        if (!b) return false;
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, &len, 4);
    memcpy(c->buf + c->len + 4, &count, 8);
    memcpy(c->buf + c->len + 12, key, len);
    c->len += need;
    c->n++;
    return true;
}

void tally_changes_free(tally_changes_t *c) {
    free(c->buf);
    *c = (tally_changes_t){0};
}
