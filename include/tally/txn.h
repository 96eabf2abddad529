/* SPDX-License-Identifier: MIT */
/* The one place that classifies librdkafka's transactional errors into what tally does about them. */
#ifndef TALLY_TXN_H
#define TALLY_TXN_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>

typedef enum {
    TALLY_TXN_OK = 0,
    TALLY_TXN_RETRIABLE, /* call again: nothing is lost (timeouts, coordinator moving) */
    TALLY_TXN_ABORTABLE, /* abort, roll back to the last commit, go on */
    TALLY_TXN_FATAL,     /* stop: the producer can never commit again (fenced, unauthorized, bugs) */
} tally_txn_class_t;

tally_txn_class_t tally_txn_classify(const rd_kafka_error_t *error);
const char *tally_txn_class_name(tally_txn_class_t c);
/* True when the fatal error says a newer instance with our transactional.id took over. */
bool tally_txn_is_fenced(const rd_kafka_error_t *error);

#endif
