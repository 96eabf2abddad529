/* SPDX-License-Identifier: MIT */
/* Progress records: after every committed epoch one JSON object in the spirit of Spark's
 * StreamingQueryProgress (what was read, how fast, how long each phase took, where every input
 * partition stands), and the history of the last records that /progress serves. Owned by control. */
#ifndef TALLY_PROGRESS_H
#define TALLY_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/buf.h"
#include "tally/snapshot.h"

typedef struct {
    const char *topic;
    int32_t partition;
    int64_t start_offset;    /* committed before the epoch */
    int64_t end_offset;      /* committed by the epoch */
    int64_t high_watermark;  /* librdkafka's cached high watermark; < 0 unknown */
} tally_progress_source_t;

typedef struct {
    const char *id;              /* application.id */
    uint64_t epoch;
    double timestamp;            /* wall clock, seconds since 1970 */
    uint64_t lines, words, dropped;
    double input_rate;           /* lines / s since the previous commit; < 0 unknown */
    double processed_rate;       /* lines / s of the epoch's own duration; < 0 unknown */
    uint64_t keys_updated;       /* output records of the epoch */
    bool windowed;               /* then numRowsDroppedByWatermark and eventTime.watermark */
    uint64_t late;
    int64_t watermark;           /* ms since 1970, INT64_MIN none */
    uint64_t keys_in_memory;     /* words in the workers' tables (a cache of the state) */
    double process_ms, commit_ms, state_ms;
    uint64_t commits, aborts;    /* transactions (or at_least_once commits) so far */
    const char *sink;            /* "kafka:<topic>" or "console" */
    const tally_progress_source_t *sources;
    int nsources;
} tally_progress_t;

/* Appends the record as one line of JSON (no newline); without sources when `sources` is false. */
void tally_progress_json(const tally_progress_t *p, bool sources, tally_buf_t *out);

/* The last `cap` records as JSON texts, oldest first. */
typedef struct tally_progress_hist_s tally_progress_hist_t;

tally_progress_hist_t *tally_progress_hist_new(size_t cap);
void tally_progress_hist_destroy(tally_progress_hist_t *h);
/* Copies the record; drops the oldest when full. 0 or TALLY_ENOMEM. */
int tally_progress_hist_add(tally_progress_hist_t *h, const char *json, size_t len);
size_t tally_progress_hist_size(const tally_progress_hist_t *h);
/* The history as a JSON array, oldest first. NULL when out of memory. */
tally_blob_t *tally_progress_hist_blob(const tally_progress_hist_t *h);

#endif
