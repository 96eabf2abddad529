/* SPDX-License-Identifier: MIT */
/* Operability, on the control thread's side: progress records, the snapshot the HTTP thread serves
 * (built after each epoch and on a 1 s timer), health tracking, librdkafka statistics, the config
 * summary and lifecycle log lines. Engine-internal: engine.c calls these hooks. @locality control,
 * except the statistics callbacks (locked). */
#ifndef TALLY_OPS_OBSERVE_H
#define TALLY_OPS_OBSERVE_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "tally/engine.h"

/* What epoch_finish measured about the epoch it just committed. */
typedef struct {
    uint64_t lines, words, dropped;  /* read since the previous commit */
    uint64_t keys;                   /* output records (changed keys) */
    double process_s, commit_s, state_s;
} tally_obs_epoch_t;

/* Logs the configuration (secrets masked), starts the HTTP server (http.listen), the progress
 * producer (progress.topic) and the 1 s snapshot timer on the engine's loop. Before any other hook. */
int tally_obs_start(tally_engine_t *eng);
/* Statistics for the metrics (only with http.listen): statistics.interval.ms and the callback. */
void tally_obs_kafka_conf(tally_engine_t *eng, rd_kafka_conf_t *c);
/* After the state write of a committed epoch, before the parts' `committed` moves to `cut` and the
 * workers' out lists are emptied: logs "epoch N committed: ..." with the progress record and updates
 * the top words. tally_obs_publish() follows once the offsets moved. */
void tally_obs_epoch(tally_engine_t *eng, const tally_obs_epoch_t *ep);
/* A new snapshot for the HTTP thread now (after an epoch's offsets moved). */
void tally_obs_publish(tally_engine_t *eng);
/* The engine state changed: republish (health) and log lifecycle events. */
void tally_obs_state(tally_engine_t *eng);
/* After the loop: last snapshot, HTTP server stopped, progress records flushed. */
void tally_obs_stop(tally_engine_t *eng);
void tally_obs_destroy(tally_engine_t *eng);

#endif
