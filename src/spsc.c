/* SPDX-License-Identifier: MIT */
/* Set-up of the single-producer single-consumer ring. */
#include "tally/spsc.h"

#include <stdlib.h>

#include "tally/err.h"

int tally_spsc_init(tally_spsc_t *r, size_t capacity) {
    if (capacity < 2 || (capacity & (capacity - 1))) return TALLY_EINVAL;
    r->slots = calloc(capacity, sizeof(void *));
    if (!r->slots) return TALLY_ENOMEM;
    r->mask = capacity - 1;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    return 0;
}

void tally_spsc_term(tally_spsc_t *r) {
    free(r->slots);
    r->slots = NULL;
}
