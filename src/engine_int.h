/* SPDX-License-Identifier: MIT */
/* Engine internals shared by the control thread (engine.c), partition threads (partition.c), workers
 * (worker.c) and recovery (recover.c). Each field says which thread owns it. */
#ifndef TALLY_ENGINE_INT_H
#define TALLY_ENGINE_INT_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "tally/batch.h"
#include "tally/config.h"
#include "tally/engine.h"
#include "tally/spsc.h"
#include "tally/state.h"
#include "tally/wordtab.h"

#define TALLY_RING_CAP 64u /* batches per ring: 64 x 64 KiB bounds what a ring holds */

typedef struct tally_part_s tally_part_t;
typedef struct tally_worker_s tally_worker_t;
typedef struct tally_obs_s tally_obs_t;  /* src/ops/observe.c */

/* One assigned input partition and its thread. Created and joined by the control thread. */
struct tally_part_s {
    tally_engine_t *eng;
    int idx;
    char *topic;
    int32_t partition;
    rd_kafka_queue_t *queue;      /* its own fetch queue, not forwarded to the consumer queue */
    pthread_t thread;
    bool started;
    tally_spsc_t *rings;          /* [workers]: pushed here, popped by worker w */
    tally_batch_builder_t *builders; /* [workers] @locality partition thread */
    int64_t next_offset;          /* @locality partition thread: offset after the last record read */
    int64_t cut;                  /* written before the barrier push, read by control after the epoch */
    uint64_t epoch;               /* @locality partition thread: last barrier pushed */
    int64_t committed;            /* @locality control: offset committed with the last epoch */
    _Atomic int64_t seen;         /* next_offset, published for progress and lag */
    _Atomic uint64_t lines, words, dropped;
};

/* One worker thread: a shard of the word space (a range of XXH3 hashes). The table persists across
 * pipeline restarts; the thread lives from pipeline start to stop. */
struct tally_worker_s {
    tally_engine_t *eng;
    int idx;
    pthread_t thread;
    bool started;
    tally_wordtab_t *tab;         /* @locality worker thread (control while the pipeline is stopped) */
    tally_word_t **dirty;
    size_t ndirty, capdirty;
    rd_kafka_topic_t *out_topic;  /* kafka sink */
    /* The epoch's changed (word, count) records: [u32 len][i64 count][bytes]. Written by the worker
     * until it reports the epoch done, then read and emptied by control before the next epoch. */
    uint8_t *out;
    size_t out_len, out_cap, out_n;
    uint8_t *blocked;             /* [parts] @locality worker: barrier seen on that ring */
    size_t cache_max;             /* words this worker keeps in memory (0 = no bound) */
    uint64_t done_epoch;          /* @locality worker: last epoch it finished */
    uint64_t evicted;             /* @locality worker: words dropped from memory so far */
    _Atomic int sleeping;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

typedef enum { ENG_STARTING = 0, ENG_RUNNING, ENG_STOPPING, ENG_STOPPED } tally_eng_state_t;

struct tally_engine_s {
    tally_config_t conf;
    char txn_id[300];
    int nworkers;
    tally_worker_t *workers;

    rd_kafka_t *consumer;
    rd_kafka_t *producer;         /* NULL for the console sink */
    rd_kafka_consumer_group_metadata_t *cgmd;
    tally_state_t *state;

    /* The running pipeline: parts and worker threads. @locality control */
    tally_part_t *parts;
    int nparts;
    bool pipeline_up;
    bool txn_open;

    /* Epoch protocol. req_epoch/req_final: written by control, read by partition threads. */
    _Atomic uint64_t req_epoch;
    _Atomic bool req_final;
    _Atomic bool stop_hard;       /* discard in-flight work and exit now */
    _Atomic bool epoch_wanted;    /* a worker's dirty set is large: trigger before the timer */
    uint64_t epoch;               /* @locality control: last epoch started */
    uint64_t committed_epoch;
    bool epoch_in_flight;
    pthread_mutex_t ep_mu;
    pthread_cond_t ep_cv;
    int ep_done;                  /* workers done with epoch `epoch`, under ep_mu */
    double epoch_t0;

    /* Errors raised off the control thread (data loss, produce failures): first one wins. */
    pthread_mutex_t err_mu;
    int async_err;                /* TALLY_EXIT_* */
    char async_errstr[512];

    _Atomic int64_t dr_errors;    /* at_least_once: failed deliveries */
    _Atomic bool stop_requested;
    tally_eng_state_t state_;
    int exit_status;

    uv_loop_t loop;
    uv_timer_t trigger_timer, poll_timer;
    uv_signal_t sigint, sigterm;
    uv_async_t wake;              /* workers' "epoch done", errors, stop requests */

    /* Totals for logs and metrics. */
    uint64_t commits, aborts;
    int producer_resets;          /* @locality control: replacements within the last minute */
    rd_kafka_resp_err_t txn_err_code; /* @locality control: code of the last failed transactional call */
    double producer_reset_at;
    _Atomic uint64_t dropped_total;

    tally_obs_t *obs;             /* @locality control: progress, metrics snapshot, HTTP (src/ops) */
};

/* Walks a worker's epoch list (control thread, after the worker reported the epoch done):
 *   for (size_t off = 0; tally_out_next(w, &off, &word, &len, &count);) ... */
static inline bool tally_out_next(const tally_worker_t *w, size_t *off, const uint8_t **word, uint32_t *len,
                                  int64_t *count) {
    if (*off >= w->out_len) return false;
    memcpy(len, w->out + *off, 4);
    memcpy(count, w->out + *off + 4, 8);
    *word = w->out + *off + 12;
    *off += 12 + (size_t)*len;
    return true;
}

/* partition.c */
void *tally_part_main(void *arg);
/* worker.c */
void *tally_worker_main(void *arg);
void tally_worker_wake(tally_worker_t *w);
static inline int tally_route(uint64_t hash, int nworkers) {
    return (int)(((hash >> 32) * (uint64_t)nworkers) >> 32);
}
/* engine.c, callable from any thread: records a fatal error and wakes control. */
void tally_engine_raise(tally_engine_t *eng, int exit_status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* recover.c: called by control on assignment; fills start offsets (list's offset fields). */
int tally_recover_assignment(tally_engine_t *eng, rd_kafka_topic_partition_list_t *parts);
/* Empties the workers' tables (and refills them from the state in complete mode). Control, pipeline down. */
int tally_engine_reload_tables(tally_engine_t *eng);
/* Sets the shared kafka.* and security settings on a client configuration. */
int tally_engine_kafka_conf(tally_engine_t *eng, rd_kafka_conf_t *c, char *errstr, size_t errstr_size);
void tally_engine_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

#endif
