/* SPDX-License-Identifier: MIT */
/* What the HTTP thread serves: an immutable, reference-counted snapshot that the control thread builds
 * and publishes (after each epoch and every second). Readers take a reference under a short lock and
 * never see engine internals; a snapshot is freed by whoever drops its last reference. */
#ifndef TALLY_SNAPSHOT_H
#define TALLY_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/buf.h"

/* Immutable bytes shared by several snapshots (the progress history and the top words change only at
 * an epoch, the metrics every second). For a JSON array, item_end[i] is the offset just after item i,
 * so that a prefix of n items is data[0, item_end[n-1]) plus "]". */
typedef struct tally_blob_s {
    _Atomic long refs;
    size_t len;
    size_t nitems;
    size_t *item_end;  /* NULL unless built with items */
    char data[];       /* NUL-terminated */
} tally_blob_t;

/* Copies the buffer's text (and item ends, if any). NULL when out of memory. */
tally_blob_t *tally_blob_new(const tally_buf_t *b, const size_t *item_end, size_t nitems);
tally_blob_t *tally_blob_ref(tally_blob_t *bl);
void tally_blob_unref(tally_blob_t *bl);

typedef enum {
    TALLY_SNAP_STARTING = 0,
    TALLY_SNAP_RUNNING,
    TALLY_SNAP_STOPPING,
    TALLY_SNAP_STOPPED,
} tally_snap_state_t;

/* Times are CLOCK_MONOTONIC seconds (tally_snap_now()) unless named _wall. */
typedef struct tally_snap_s {
    _Atomic long refs;
    tally_snap_state_t state;
    bool fenced;
    char problem[512];        /* the control thread's verdict; "" = none (e.g. a stuck partition) */
    char problem_kind[16];    /* "stuck", ... */
    double published;         /* when built */
    double commit_ok;         /* last time the commits were up to date: a commit, or nothing to commit */
    double stall_limit_s;     /* unhealthy when now - commit_ok exceeds it */
    double last_commit_wall;  /* 0 = never */
    uint64_t epoch, commits, aborts;
    tally_blob_t *metrics;    /* Prometheus text */
    tally_blob_t *progress;   /* JSON array of the last progress records */
    tally_blob_t *top;        /* JSON array of the best words, best first, with item ends */
    tally_blob_t *messages;   /* JSON array of the output topic's newest records, newest first */
} tally_snap_t;

double tally_snap_now(void);

/* A zeroed snapshot with one reference. */
tally_snap_t *tally_snap_new(void);
void tally_snap_release(tally_snap_t *s);

typedef struct tally_snapbox_s tally_snapbox_t;

tally_snapbox_t *tally_snapbox_new(void);
void tally_snapbox_destroy(tally_snapbox_t *box);
/* Replaces the current snapshot; takes over the caller's reference. Any thread. */
void tally_snapbox_publish(tally_snapbox_t *box, tally_snap_t *s);
/* The current snapshot with a reference for the caller (release it), or NULL before the first. */
tally_snap_t *tally_snapbox_acquire(tally_snapbox_t *box);

#endif
