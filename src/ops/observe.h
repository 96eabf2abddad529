/* SPDX-License-Identifier: MIT */
/* Operability, on the control thread's side: progress records, the snapshot the HTTP thread serves
 * (built after each epoch and on a 1 s timer), health tracking, librdkafka statistics, the config
 * summary and lifecycle log lines. It reads the engine only through a view that the engine fills on
 * request (tally_obs_view_t), never the threads' own structures. @locality control, except
 * tally_obs_stats (librdkafka's threads; locked). */
#ifndef TALLY_OPS_OBSERVE_H
#define TALLY_OPS_OBSERVE_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "tally/config.h"
#include "tally/filesource.h"
#include "tally/snapshot.h"
#include "tally/state.h"

typedef struct tally_obs_s tally_obs_t;

/* One assigned partition as the engine sees it. */
typedef struct {
    const char *topic;        /* valid until the view is terminated */
    int32_t partition;
    int64_t committed, cut, read;
    int64_t high_watermark;   /* -1 when unknown */
    int64_t fetch_queue;      /* records fetched, waiting for the partition thread */
    size_t *rings;            /* [nworkers] batches waiting in each ring, or NULL */
} tally_obs_part_t;

/* The engine's numbers at one moment, filled by the engine's view callback. */
typedef struct {
    tally_snap_state_t state;
    int exit_status;
    bool fenced;
    bool pipeline_up;
    bool epoch_pending;       /* an epoch is in flight */
    uint64_t committed_epoch, commits, aborts, keys_in_memory;
    int nworkers, nparts;
    tally_obs_part_t *parts;  /* [nparts], freed by tally_obs_view_term */
    bool files_input;         /* input.path: `files` is set */
    tally_filesource_stats_t files;
    int restoring;            /* topology=distributed: repartition partitions held while restored */
    uint64_t restored;        /* changelog records read by restores since start */
} tally_obs_view_t;

void tally_obs_view_term(tally_obs_view_t *v);

typedef void (*tally_obs_word_fn)(const uint8_t *word, size_t len, int64_t count, void *opaque);

/* What the epoch module measured about the epoch it just committed. */
typedef struct {
    uint64_t epoch;
    uint64_t lines, words, dropped;  /* read since the previous commit */
    uint64_t keys;                   /* output records (changed keys) */
    bool windowed;                   /* window.size.ms > 0: then late and watermark mean something */
    uint64_t late;                   /* (word, window) pairs dropped by the watermark */
    int64_t watermark;               /* the watermark the epoch applied (ms; INT64_MIN none) */
    double process_s, commit_s, state_s;
    double barrier_s, produce_s;  /* process_s in two: request to every barrier in, then the workers' output */
    /* Calls fn for each (word, count) the epoch committed. */
    void (*each_change)(void *opaque, tally_obs_word_fn fn, void *fn_opaque);
    void *each_opaque;
} tally_obs_epoch_t;

/* Logs the configuration (secrets masked), starts the HTTP server (http.listen), the progress
 * producer (progress.topic) and the 1 s snapshot timer on `loop`. `view` fills the engine's
 * numbers whenever they are needed; `state` seeds the top words. */
int tally_obs_new(tally_obs_t **out, const tally_config_t *conf, uv_loop_t *loop, tally_state_t *state,
                  void (*view)(void *opaque, tally_obs_view_t *v), void *view_opaque);
/* The state store, once open: the top words are seeded from it at the first commit. */
void tally_obs_set_state(tally_obs_t *obs, tally_state_t *state);
/* librdkafka's statistics callback (tally_kafka_hooks_t.stats), with opaque = the obs. */
void tally_obs_stats(void *obs, rd_kafka_t *rk, const char *json, size_t len);
/* After the state write of a committed epoch, before the offsets move to the cut: logs "epoch N
 * committed: ..." with the progress record and updates the top words. tally_obs_publish() follows. */
void tally_obs_epoch(tally_obs_t *obs, const tally_obs_epoch_t *ep);
/* A new snapshot for the HTTP thread now. */
void tally_obs_publish(tally_obs_t *obs);
/* The engine state changed: log lifecycle events and republish (health). */
void tally_obs_state(tally_obs_t *obs);
/* After the loop: last snapshot, HTTP server stopped, progress records flushed. */
void tally_obs_stop(tally_obs_t *obs);
void tally_obs_destroy(tally_obs_t *obs);

#endif
