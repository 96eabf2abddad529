/* SPDX-License-Identifier: MIT */
/* The state store's writer thread (tally_state_write_epoch): epochs handed over are written in
 * order, several at once merged (the latest count of a word wins), with the rest of each epoch's
 * batch (offsets, epoch, range deletions); reads wait for the writer; the hand-off is bounded. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "tally/state.h"
#include "unit.h"

static char dir[256];

static tally_state_t *open_fresh(void) {
    snprintf(dir, sizeof(dir), "/tmp/tally-test-state-%d", (int)getpid());
    th_system("rm -rf %s", dir);
    tally_state_t *st = NULL;
    bool locked = false;
    char err[512];
    ASSERT_EQ(tally_state_open(&st, dir, &locked, err, sizeof(err)), 0);
    return st;
}

static void close_rm(tally_state_t *st) {
    tally_state_close(st);
    th_system("rm -rf %s", dir);
}

static void add(tally_changes_t *l, const char *word, int64_t count) {
    ASSERT(tally_changes_add(l, (const uint8_t *)word, (uint32_t)strlen(word), count));
}

static int64_t count_of(tally_state_t *st, const char *word) {
    int64_t c = -1;
    ASSERT_EQ(tally_state_get_count(st, (const uint8_t *)word, strlen(word), &c), 0);
    return c;
}

/* One epoch: two workers' lists, the offset of partition 0 and the epoch number in the rest. */
static void hand_over(tally_state_t *st, uint64_t epoch, tally_changes_t l[2], bool sorted, tally_state_batch_t *rest) {
    if (!rest) rest = tally_state_batch_new();
    tally_state_batch_put_offset(rest, "in", 0, (int64_t)epoch * 10);
    tally_state_batch_put_epoch(rest, epoch);
    char err[512];
    ASSERT_EQ(tally_state_write_epoch(st, epoch, l, 2, sorted, rest, err, sizeof(err)), 0);
    /* The store owns the buffers now: the caller forgets them. */
    l[0] = l[1] = (tally_changes_t){0};
}

static void test_epochs_in_order(void) {
    tally_state_t *st = open_fresh();
    tally_changes_t l[2] = {{0}};
    add(&l[0], "apple", 1), add(&l[0], "cat", 1), add(&l[1], "bee", 1);
    hand_over(st, 1, l, true, NULL);
    add(&l[0], "apple", 2), add(&l[1], "bee", 5), add(&l[1], "dog", 1);
    hand_over(st, 2, l, true, NULL);
    /* Epoch 3 deletes the range [apple, b) (a closed window, say) and puts a later cat. */
    tally_state_batch_t *rest = tally_state_batch_new();
    tally_state_batch_delete_counts(rest, (const uint8_t *)"apple", 5, (const uint8_t *)"b", 1);
    add(&l[0], "cat", 7);
    hand_over(st, 3, l, true, rest);
    char err[512];
    ASSERT_EQ(tally_state_sync(st, err, sizeof(err)), 0);
    ASSERT_EQ(tally_state_epoch(st), 3); /* what follows a range deletion in its batch is written too */
    int64_t off = -1;
    ASSERT_EQ(tally_state_get_offset(st, "in", 0, &off), 1);
    ASSERT_EQ(off, 30);
    ASSERT_EQ(count_of(st, "apple"), 0);
    ASSERT_EQ(count_of(st, "cat"), 7);
    /* Out of key order (complete mode): a later count still wins. */
    add(&l[0], "zebra", 1), add(&l[0], "eel", 1);
    hand_over(st, 4, l, false, NULL);
    add(&l[1], "eel", 2);
    hand_over(st, 5, l, false, NULL);

    ASSERT_EQ(tally_state_sync(st, err, sizeof(err)), 0);
    ASSERT_EQ(tally_state_epoch(st), 5);
    ASSERT_EQ(tally_state_get_offset(st, "in", 0, &off), 1);
    ASSERT_EQ(off, 50);
    ASSERT_EQ(count_of(st, "apple"), 0);
    ASSERT_EQ(count_of(st, "bee"), 5);
    ASSERT_EQ(count_of(st, "cat"), 7);
    ASSERT_EQ(count_of(st, "dog"), 1);
    ASSERT_EQ(count_of(st, "eel"), 2);
    ASSERT_EQ(count_of(st, "zebra"), 1);
    tally_state_write_stats_t ws;
    tally_state_write_stats(st, &ws);
    ASSERT_EQ(ws.epochs, 5);
    ASSERT_EQ(ws.last_epoch, 5);
    ASSERT(ws.writes >= 1 && ws.writes <= 5);
    close_rm(st);
}

static int word_cmp(const void *a, const void *b) {
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    return tally_state_key_cmp(x, strlen(x), y, strlen(y));
}

/* Many epochs handed over as fast as possible (the writer merges whatever piled up), alternately
 * with a tiny hand-off bound and with a 20 ms write interval: every count ends as the model's, and
 * reads in between see every epoch handed over. */
static void test_many_epochs_match_a_model(void) {
    enum { VOCAB = 300, EPOCHS = 400 };
    tally_state_t *st = open_fresh();
    char *words[VOCAB];
    for (int i = 0; i < VOCAB; i++) {
        words[i] = malloc(16);
        snprintf(words[i], 16, "w%03d", (i * 7919) % 1000);
    }
    qsort(words, VOCAB, sizeof(words[0]), word_cmp);
    int64_t model[VOCAB] = {0};
    uint64_t rnd = 42;
    for (uint64_t e = 1; e <= EPOCHS; e++) {
        tally_changes_t l[2] = {{0}};
        for (int i = 0; i < VOCAB; i++) {
            if (unit_splitmix64(&rnd) % 4) continue;
            model[i] += 1 + (int64_t)(unit_splitmix64(&rnd) % 3);
            add(&l[i % 2], words[i], model[i]);   /* two workers, each its own words, in key order */
        }
        if (e % 100 == 1) tally_state_set_writer(st, e % 200 == 1 ? 0 : 20, e % 200 == 1 ? 1 : (size_t)1 << 30);
        hand_over(st, e, l, true, NULL);
        if (e % 50 == 0) {
            int64_t off = -1;
            ASSERT_EQ(tally_state_get_offset(st, "in", 0, &off), 1);
            ASSERT_EQ(off, (int64_t)e * 10); /* reads wait for every epoch handed over */
        }
    }
    char err[512];
    ASSERT_EQ(tally_state_sync(st, err, sizeof(err)), 0);
    for (int i = 0; i < VOCAB; i++) ASSERT_EQ(count_of(st, words[i]), model[i]);
    tally_state_write_stats_t ws;
    tally_state_write_stats(st, &ws);
    ASSERT_EQ(ws.epochs, EPOCHS);
    ASSERT_LT(ws.writes, EPOCHS - 50); /* the 20 ms interval merged epochs */
    printf("# %d epochs in %" PRIu64 " writes, %" PRIu64 " counts written\n", EPOCHS, ws.writes, ws.keys);
    for (int i = 0; i < VOCAB; i++) free(words[i]);
    close_rm(st);
}

/* Closing writes what was handed over: a reopened state holds it. */
static void test_close_writes_everything(void) {
    tally_state_t *st = open_fresh();
    tally_changes_t l[2] = {{0}};
    for (uint64_t e = 1; e <= 20; e++) {
        add(&l[0], "a", (int64_t)e);
        add(&l[1], "b", 2 * (int64_t)e);
        hand_over(st, e, l, true, NULL);
    }
    tally_state_close(st);
    bool locked = false;
    char err[512];
    ASSERT_EQ(tally_state_open(&st, dir, &locked, err, sizeof(err)), 0);
    ASSERT_EQ(tally_state_epoch(st), 20);
    ASSERT_EQ(count_of(st, "a"), 20);
    ASSERT_EQ(count_of(st, "b"), 40);
    close_rm(st);
}

int main(void) {
    RUN(test_epochs_in_order);
    RUN(test_many_epochs_match_a_model);
    RUN(test_close_writes_everything);
    RUN_SUMMARY("state");
    return 0;
}
