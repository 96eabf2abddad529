/* SPDX-License-Identifier: MIT */
/* librdkafka's statistics (statistics.interval.ms, the stats callback's JSON): a small strict JSON
 * walker that reports every number with its key path, and the extraction of the few numbers the
 * metrics use. Pure functions; any thread. */
#ifndef TALLY_KSTATS_H
#define TALLY_KSTATS_H

#include <stddef.h>
#include <stdint.h>

#define TALLY_KSTATS_MAX_DEPTH 16
#define TALLY_KSTATS_MAX_KEY 256   /* longer keys are cut (and so match nothing we look for) */

/* path[0..depth-1]: the object keys leading to the number (array elements add "#"). */
typedef void (*tally_kstats_num_cb)(const char *const *path, int depth, double value, void *opaque);

/* Calls fn for every number of the JSON text. Returns 0, or -1 for malformed or too deeply nested
 * JSON (fn may have been called for what came before the error). */
int tally_kstats_walk(const char *json, size_t len, tally_kstats_num_cb fn, void *opaque);

typedef struct {
    char topic[TALLY_KSTATS_MAX_KEY];
    int32_t partition;
    /* -1 when absent; librdkafka itself reports -1 (or -1001) when it does not know. */
    int64_t consumer_lag, hi_offset, fetchq_cnt, app_offset;
} tally_kstats_part_t;

typedef struct {
    int64_t msg_cnt;   /* producer: messages waiting in its queues (-1 absent) */
    int64_t txmsgs;    /* messages sent to brokers, total */
    int64_t rxmsgs;    /* messages received from brokers, total */
    tally_kstats_part_t *parts;  /* per topic partition (not the internal partition -1) */
    int nparts, capparts;
} tally_kstats_t;

void tally_kstats_init(tally_kstats_t *s);
void tally_kstats_term(tally_kstats_t *s);
/* Parses one statistics JSON into s (re-initialised first). 0, -1 malformed, or TALLY_ENOMEM. */
int tally_kstats_parse(tally_kstats_t *s, const char *json, size_t len);

#endif
