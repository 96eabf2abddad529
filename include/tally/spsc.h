/* SPDX-License-Identifier: MIT */
/* A bounded lock-free ring for one pushing and one popping thread, carrying pointers. Pushing an
 * object hands it over to the popping thread. Capacity is a power of two; push fails when full. */
#ifndef TALLY_SPSC_H
#define TALLY_SPSC_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct tally_spsc_s {
    alignas(64) _Atomic size_t head;   /* next slot to pop; written by the popper */
    alignas(64) _Atomic size_t tail;   /* next slot to push; written by the pusher */
    alignas(64) size_t mask;
    void **slots;
} tally_spsc_t;

/* capacity: a power of two >= 2. Returns 0 or TALLY_ENOMEM / TALLY_EINVAL. */
int tally_spsc_init(tally_spsc_t *r, size_t capacity);
void tally_spsc_term(tally_spsc_t *r);

/* @locality pusher thread */
static inline bool tally_spsc_push(tally_spsc_t *r, void *item) {
    size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    size_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    if (t - h > r->mask) return false;
    r->slots[t & r->mask] = item;
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return true;
}

/* @locality popper thread. NULL when empty. */
static inline void *tally_spsc_pop(tally_spsc_t *r) {
    size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (h == t) return NULL;
    void *item = r->slots[h & r->mask];
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return item;
}

/* Items in the ring now; exact only from the pusher or popper, an estimate elsewhere. */
static inline size_t tally_spsc_size(tally_spsc_t *r) {
    return atomic_load_explicit(&r->tail, memory_order_acquire) -
           atomic_load_explicit(&r->head, memory_order_acquire);
}

#endif
