/* SPDX-License-Identifier: MIT */
/* Unit tests of the single-producer single-consumer ring (include/tally/spsc.h, src/spsc.c):
 * capacity checks, full and empty, FIFO order, wrap-around, and two threads passing 10 million
 * sequence numbers through a ring of 64 (the case for ThreadSanitizer). */
#include "harness.h"
#include "unit.h"

#include "tally/err.h"
#include "tally/spsc.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>

/* Items are pointers and NULL means empty: sequence number n travels as n + 1. */
#define ITEM(n) ((void *)(uintptr_t)((n) + 1))
#define SEQ(p)  ((uint64_t)(uintptr_t)(p) - 1)

static void test_capacity(void) {
    static const size_t bad[] = {0, 1, 3, 5, 6, 7, 12, 63, 65, 100, 1000, ((size_t)1 << 20) + 1, SIZE_MAX};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tally_spsc_t r;
        ASSERT_EQ(tally_spsc_init(&r, bad[i]), TALLY_EINVAL);
    }
    for (size_t cap = 2; cap <= ((size_t)1 << 16); cap *= 2) {
        tally_spsc_t r;
        ASSERT_EQ(tally_spsc_init(&r, cap), 0);
        ASSERT_EQ(tally_spsc_size(&r), 0);
        ASSERT(tally_spsc_pop(&r) == NULL);
        tally_spsc_term(&r);
        tally_spsc_term(&r); /* a second term is harmless */
    }
}

static void test_full_and_fifo(void) {
    for (size_t cap = 2; cap <= 256; cap *= 2) {
        tally_spsc_t r;
        ASSERT_EQ(tally_spsc_init(&r, cap), 0);
        for (size_t i = 0; i < cap; i++) {
            ASSERT(tally_spsc_push(&r, ITEM(i)));
            ASSERT_EQ(tally_spsc_size(&r), i + 1);
        }
        /* Full: push fails and changes nothing. */
        ASSERT(!tally_spsc_push(&r, ITEM(999)));
        ASSERT(!tally_spsc_push(&r, ITEM(999)));
        ASSERT_EQ(tally_spsc_size(&r), cap);
        /* One pop makes room for exactly one push. */
        ASSERT_EQ(SEQ(tally_spsc_pop(&r)), 0);
        ASSERT(tally_spsc_push(&r, ITEM(cap)));
        ASSERT(!tally_spsc_push(&r, ITEM(999)));
        for (size_t i = 1; i <= cap; i++) ASSERT_EQ(SEQ(tally_spsc_pop(&r)), i);
        ASSERT(tally_spsc_pop(&r) == NULL);
        ASSERT(tally_spsc_pop(&r) == NULL);
        ASSERT_EQ(tally_spsc_size(&r), 0);
        tally_spsc_term(&r);
    }
}

static void test_wrap_around(void) {
    tally_spsc_t r;
    ASSERT_EQ(tally_spsc_init(&r, 8), 0);
    uint64_t pushed = 0, popped = 0;
    /* Fill levels cycle through 0..8 so head and tail wrap the 8 slots many times at every offset. */
    for (int round = 0; round < 20000; round++) {
        size_t want = (size_t)(round * 7 % 9);
        while (tally_spsc_size(&r) < want) ASSERT(tally_spsc_push(&r, ITEM(pushed++)));
        if (want == 8) ASSERT(!tally_spsc_push(&r, ITEM(999)));
        size_t take = (size_t)(round * 5 % 9);
        for (size_t i = 0; i < take && tally_spsc_size(&r) > 0; i++) ASSERT_EQ(SEQ(tally_spsc_pop(&r)), popped++);
        ASSERT_EQ(tally_spsc_size(&r), pushed - popped);
    }
    while (tally_spsc_size(&r) > 0) ASSERT_EQ(SEQ(tally_spsc_pop(&r)), popped++);
    ASSERT(tally_spsc_pop(&r) == NULL);
    ASSERT_EQ(pushed, popped);
    ASSERT_GT(pushed, 8 * 1000); /* wrapped at least a thousand times */
    tally_spsc_term(&r);
}

/* Ownership hand-over: what the pusher wrote into an object before pushing it is what the popper
 * reads (the release/acquire pair orders the plain writes). */
typedef struct {
    uint64_t seq;
    uint64_t check;
} msg_t;

#define TWO_THREAD_ITEMS 10000000ull
#define RING_CAP 64

typedef struct {
    tally_spsc_t ring;
    msg_t *msgs;    /* every 1000th item is a pointer into this array instead of a number */
    uint64_t full_spins, empty_spins;
} shared_t;

static bool is_msg(uint64_t n) { return n % 1000 == 999; }

static void *pusher(void *arg) {
    shared_t *s = arg;
    for (uint64_t n = 0; n < TWO_THREAD_ITEMS; n++) {
        void *item = ITEM(n);
        if (is_msg(n)) {
            msg_t *m = &s->msgs[n / 1000];
            m->seq = n;
            m->check = n * 0x9e3779b97f4a7c15ull;
            item = m;
        }
        while (!tally_spsc_push(&s->ring, item)) {
            s->full_spins++;
            sched_yield();
        }
    }
    return NULL;
}

static void *popper(void *arg) {
    shared_t *s = arg;
    uint64_t next = 0;
    while (next < TWO_THREAD_ITEMS) {
        void *item = tally_spsc_pop(&s->ring);
        if (!item) {
            s->empty_spins++;
            sched_yield();
            continue;
        }
        if (is_msg(next)) {
            msg_t *m = item;
            if (m != &s->msgs[next / 1000]) TH_FAIL("item %" PRIu64 ": wrong message pointer", next);
            if (m->seq != next || m->check != next * 0x9e3779b97f4a7c15ull)
                TH_FAIL("item %" PRIu64 ": message holds %" PRIu64, next, m->seq);
        } else if (SEQ(item) != next) {
            TH_FAIL("item %" PRIu64 ": popped %" PRIu64 " (out of order or lost)", next, SEQ(item));
        }
        next++;
    }
    return NULL;
}

static void test_two_threads(void) {
    shared_t s = {0};
    ASSERT_EQ(tally_spsc_init(&s.ring, RING_CAP), 0);
    s.msgs = calloc(TWO_THREAD_ITEMS / 1000, sizeof(*s.msgs));
    ASSERT(s.msgs);
    pthread_t tp, tc;
    double t0 = th_now();
    ASSERT_EQ(pthread_create(&tc, NULL, popper, &s), 0);
    ASSERT_EQ(pthread_create(&tp, NULL, pusher, &s), 0);
    ASSERT_EQ(pthread_join(tp, NULL), 0);
    ASSERT_EQ(pthread_join(tc, NULL), 0);
    double dt = th_now() - t0;
    /* Everything pushed was popped, nothing more. */
    ASSERT(tally_spsc_pop(&s.ring) == NULL);
    ASSERT_EQ(tally_spsc_size(&s.ring), 0);
    printf("spsc: %llu items through a ring of %d in %.2f s (pusher waited %" PRIu64 "x, popper %" PRIu64 "x)\n",
           TWO_THREAD_ITEMS, RING_CAP, dt, s.full_spins, s.empty_spins);
    free(s.msgs);
    tally_spsc_term(&s.ring);
}

int main(void) {
    RUN(test_capacity);
    RUN(test_full_and_fifo);
    RUN(test_wrap_around);
    RUN(test_two_threads);
    RUN_SUMMARY("spsc");
    return 0;
}
