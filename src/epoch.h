/* SPDX-License-Identifier: MIT */
/* The epoch state machine: every trigger, final epoch (stop, revoke), rollback and failure goes
 * through one enum with one transition check (shaped like librdkafka's rdkafka_txnmgr.c):
 *
 *   IDLE -> BARRIER -> COMMITTING -> STORING -> IDLE          a trigger's epoch
 *   IDLE -> DRAINING -> COMMITTING -> STORING -> DRAINED      a final epoch; the threads then exit
 *   COMMITTING -> IDLE | DRAINED                              nothing was read: nothing to commit
 *   COMMITTING -> ABORTING -> IDLE                            rollback to the last commit, go on
 *   COMMITTING -> ABORTING -> DRAINING                        ... or, while draining, retry the final epoch
 *   IDLE | BARRIER | DRAINING -> ABORTING -> DRAINED          a lost assignment: drop what is uncommitted
 *   DRAINED -> IDLE                                           the pipeline runs again (new assignment)
 *   any -> FAILED                                             stop: nothing more is committed
 *
 * It drives the pipeline (barriers), the transaction manager (Kafka) and the state store, in the
 * order that keeps RocksDB from ever running ahead of Kafka. @locality control thread. */
#ifndef TALLY_EPOCH_H
#define TALLY_EPOCH_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

#include "ops/observe.h"
#include "evtime.h"
#include "pipeline.h"
#include "scaleout.h"
#include "tally/config.h"
#include "tally/filesink.h"
#include "tally/filesource.h"
#include "tally/state.h"
#include "tally/txn.h"

typedef enum {
    TALLY_EPOCH_IDLE = 0,     /* no epoch in flight */
    TALLY_EPOCH_BARRIER,      /* epoch requested: partition threads cut, workers align and produce */
    TALLY_EPOCH_DRAINING,     /* a final epoch requested: as BARRIER, then the threads exit */
    TALLY_EPOCH_COMMITTING,   /* every worker done: output and offsets commit in Kafka */
    TALLY_EPOCH_STORING,      /* Kafka holds the epoch: one atomic state write follows */
    TALLY_EPOCH_ABORTING,     /* rolling back to the last commit */
    TALLY_EPOCH_DRAINED,      /* the pipeline is down with nothing uncommitted */
    TALLY_EPOCH_FAILED,       /* stopped with an error */
} tally_epoch_state_t;

typedef struct tally_epoch_s {
    tally_epoch_state_t st;
    const tally_config_t *conf;
    tally_pipeline_t *pipe;
    tally_txn_t *txn;
    tally_state_t *state;
    rd_kafka_t *consumer;
    tally_filesink_t *files;      /* sink=files: the sink's commit replaces the transaction's */
    tally_filesource_t *source;   /* input.path: epochs read planned files (consumer is NULL) */
    tally_file_plan_t plan;       /* input.path: the files of the epoch in flight */
    tally_obs_t *obs;             /* NULL: only the log line */
    tally_trim_t *trim;           /* topology=distributed: the repartition topic's trimming, else NULL */
    uint64_t epoch;               /* last epoch started */
    uint64_t committed;           /* last epoch committed (and stored) */
    uint64_t commits, aborts;
    double t0;                    /* when the epoch in flight was requested */
    uint64_t dropped_logged;
    rd_kafka_topic_partition_list_t *final_cut; /* the cut of a final epoch that rolled back */
    tally_evtime_t time;          /* windows: watermark and processing time per epoch */
    bool closing;                 /* the epoch in flight deletes the windows W(e) closed: */
    uint8_t close_begin[TALLY_WINDOW_KEY_PREFIX], close_end[TALLY_WINDOW_KEY_PREFIX];
    /* output.mode=append: the closed windows' final counts, the epoch's output (the workers' lists
     * are then only its state changes). */
    tally_changes_t closed;
    bool closed_oom;
    uint8_t *closing_r;           /* distributed: [repartition.partitions] r has windows closing this epoch */
    uint64_t late_logged, late_committed;
    int status;                   /* TALLY_EXIT_* once FAILED */
} tally_epoch_t;

const char *tally_epoch_state_name(tally_epoch_state_t s);
/* True when `to` may follow `from` (the graph above). */
bool tally_epoch_transition_is_valid(tally_epoch_state_t from, tally_epoch_state_t to);

void tally_epoch_init(tally_epoch_t *ep, const tally_config_t *conf, tally_pipeline_t *pipe, tally_txn_t *txn,
                      tally_state_t *state, uint64_t committed);
void tally_epoch_term(tally_epoch_t *ep);

/* Starts the pipeline's threads at the last committed epoch (after a rebalance, a rollback, or
 * for the file readers), with the epoch's watermark and processing time. */
int tally_epoch_start_pipeline(tally_epoch_t *ep);

/* The trigger: starts an epoch when idle, running and some input was read (input.path: some new
 * file was planned). */
void tally_epoch_trigger(tally_epoch_t *ep);
/* A worker reported: commits the epoch in flight once every worker is done. */
void tally_epoch_poll(tally_epoch_t *ep);
/* Commits the epoch in flight and a final one, retrying the final epoch after a rollback (a bounded
 * number of times), and joins the threads: DRAINED, or FAILED. */
void tally_epoch_drain(tally_epoch_t *ep);
/* A lost assignment: drops the pipeline and everything uncommitted: DRAINED (or FAILED). */
void tally_epoch_drop(tally_epoch_t *ep);
/* The pipeline was brought up again after DRAINED. */
void tally_epoch_resume(tally_epoch_t *ep);
/* Stops: logs the reason, kills the threads; the first failure's status wins. */
void tally_epoch_fail(tally_epoch_t *ep, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static inline bool tally_epoch_failed(const tally_epoch_t *ep) { return ep->st == TALLY_EPOCH_FAILED; }
static inline bool tally_epoch_in_flight(const tally_epoch_t *ep) {
    return ep->st == TALLY_EPOCH_BARRIER || ep->st == TALLY_EPOCH_DRAINING || ep->st == TALLY_EPOCH_COMMITTING ||
           ep->st == TALLY_EPOCH_STORING;
}

#endif
