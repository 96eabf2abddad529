/* SPDX-License-Identifier: MIT */
/* Publication of snapshots from the control thread to the HTTP thread: a pointer swap under a mutex,
 * reference counts for lifetime. */
#include "tally/snapshot.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tally/clock.h"

double tally_snap_now(void) { return tally_mono_s(); }

tally_blob_t *tally_blob_new(const tally_buf_t *b, const size_t *item_end, size_t nitems) {
    if (!tally_buf_ok(b)) return NULL;
    tally_blob_t *bl = malloc(sizeof(*bl) + b->len + 1);
    if (!bl) return NULL;
    atomic_init(&bl->refs, 1);
    bl->len = b->len;
    bl->nitems = nitems;
    bl->item_end = NULL;
    if (b->len) memcpy(bl->data, b->data, b->len);
    bl->data[b->len] = '\0';
    if (item_end && nitems) {
        bl->item_end = malloc(nitems * sizeof(*item_end));
        if (!bl->item_end) {
            free(bl);
            return NULL;
        }
        memcpy(bl->item_end, item_end, nitems * sizeof(*item_end));
    }
    return bl;
}

tally_blob_t *tally_blob_ref(tally_blob_t *bl) {
    if (bl) atomic_fetch_add_explicit(&bl->refs, 1, memory_order_relaxed);
    return bl;
}

void tally_blob_unref(tally_blob_t *bl) {
    if (!bl || atomic_fetch_sub_explicit(&bl->refs, 1, memory_order_acq_rel) != 1) return;
    free(bl->item_end);
    free(bl);
}

tally_snap_t *tally_snap_new(void) {
    tally_snap_t *s = calloc(1, sizeof(*s));
    if (s) atomic_init(&s->refs, 1);
    return s;
}

void tally_snap_release(tally_snap_t *s) {
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1) return;
    tally_blob_unref(s->metrics);
    tally_blob_unref(s->progress);
    tally_blob_unref(s->top);
    tally_blob_unref(s->messages);
    free(s);
}

struct tally_snapbox_s {
    pthread_mutex_t mu;
    tally_snap_t *cur;   /* under mu */
};

tally_snapbox_t *tally_snapbox_new(void) {
    tally_snapbox_t *box = calloc(1, sizeof(*box));
    if (box) pthread_mutex_init(&box->mu, NULL);
    return box;
}

void tally_snapbox_destroy(tally_snapbox_t *box) {
    if (!box) return;
    tally_snap_release(box->cur);
    pthread_mutex_destroy(&box->mu);
    free(box);
}

void tally_snapbox_publish(tally_snapbox_t *box, tally_snap_t *s) {
    pthread_mutex_lock(&box->mu);
    tally_snap_t *old = box->cur;
    box->cur = s;
    pthread_mutex_unlock(&box->mu);
    tally_snap_release(old); /* outside the lock: freeing may take a moment */
}

tally_snap_t *tally_snapbox_acquire(tally_snapbox_t *box) {
    pthread_mutex_lock(&box->mu);
    tally_snap_t *s = box->cur;
    if (s) atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&box->mu);
    return s;
}
