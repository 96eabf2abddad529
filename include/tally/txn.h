/* SPDX-License-Identifier: MIT */
/* The transaction manager: the output producer and everything that commits an epoch to Kafka, for
 * each guarantee (exactly_once: a transaction carrying the output and the input offsets;
 * at_least_once: flush, then commit the offsets; console: commit the offsets). It is the one place
 * that classifies librdkafka's errors (retriable, abortable, fatal; which codes mean fenced, which
 * fatal states a new producer may clear), retries within a bound, and replaces the producer.
 * @locality control thread, except tally_txn_producer()/tally_txn_topic(), which workers use while
 * the control thread keeps the producer in place (it replaces it only with the pipeline down). */
#ifndef TALLY_TXN_H
#define TALLY_TXN_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

#include "tally/kafka.h"

typedef enum {
    TALLY_TXN_OK = 0,
    TALLY_TXN_RETRIABLE, /* call again: nothing is lost (timeouts, coordinator moving) */
    TALLY_TXN_ABORTABLE, /* the epoch is lost: roll back to the last commit and go on */
    TALLY_TXN_FATAL,     /* stop: the producer can never commit again (fenced, unauthorized, bugs) */
} tally_txn_class_t;

tally_txn_class_t tally_txn_classify(const rd_kafka_error_t *error);
const char *tally_txn_class_name(tally_txn_class_t c);
/* The one list of codes that mean "a newer instance with our transactional.id or group member id
 * took over" (or the coordinator bumped our epoch). */
bool tally_txn_code_is_fenced(rd_kafka_resp_err_t code);

typedef struct tally_txn_s tally_txn_t;

/* Why an operation did not succeed: the exit status it calls for (TALLY_EXIT_*) and the reason. */
typedef struct {
    int status;
    char why[1024];
} tally_txn_failure_t;

/* With sink=kafka: creates the producer, waits for output.topic and (exactly_once) initialises
 * transactions, which fences an older instance and settles its open transaction. With the console
 * sink there is no producer. `hooks` (fault slot, statistics) must outlive the manager. */
int tally_txn_new(tally_txn_t **out, tally_kafka_hooks_t *hooks, const char *txn_id);
/* failed: purge what is queued instead of flushing it. */
void tally_txn_destroy(tally_txn_t *t, bool failed);

/* NULL with the console sink. Valid until the next rollback (the producer may be replaced there). */
rd_kafka_t *tally_txn_producer(const tally_txn_t *t);
rd_kafka_topic_t *tally_txn_topic(const tally_txn_t *t);
/* topology=distributed: the internal topics (NULL otherwise, or for a NULL manager). */
rd_kafka_topic_t *tally_txn_repartition(const tally_txn_t *t);
rd_kafka_topic_t *tally_txn_changelog(const tally_txn_t *t);
bool tally_txn_is_open(const tally_txn_t *t);

/* Opens the epoch's transaction (exactly_once; otherwise nothing to do). */
tally_txn_class_t tally_txn_begin(tally_txn_t *t, tally_txn_failure_t *f);
/* Commits epoch `epoch`: the offsets (list of input partitions at their cut) with the consumer's
 * group metadata, and the output produced since begin. ABORTABLE means the epoch did not commit and
 * the transaction is closed (aborted, or the producer replaced): the caller rolls back to the last
 * commit. FATAL: *f says why and with what exit status to stop. Retries are bounded in time so that
 * the control thread polls its consumer within max.poll.interval.ms. */
tally_txn_class_t tally_txn_commit(tally_txn_t *t, rd_kafka_topic_partition_list_t *offsets, rd_kafka_t *consumer,
                                   uint64_t epoch, tally_txn_failure_t *f);
/* Aborts the open transaction, if any, replacing the producer when only a new one can go on.
 * OK or FATAL. */
tally_txn_class_t tally_txn_abort(tally_txn_t *t, tally_txn_failure_t *f);

#endif
