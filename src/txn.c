/* SPDX-License-Identifier: MIT */
/* Transactional error classification (librdkafka's rd_kafka_error_t flags, as examples/transactions.c). */
#include "tally/txn.h"

tally_txn_class_t tally_txn_classify(const rd_kafka_error_t *error) {
    if (!error) return TALLY_TXN_OK;
    if (rd_kafka_error_is_fatal(error)) return TALLY_TXN_FATAL;
    if (rd_kafka_error_txn_requires_abort(error)) return TALLY_TXN_ABORTABLE;
    if (rd_kafka_error_is_retriable(error)) return TALLY_TXN_RETRIABLE;
    /* Neither flag: a state or configuration error, our bug or the user's; never silently go on. */
    return TALLY_TXN_FATAL;
}

const char *tally_txn_class_name(tally_txn_class_t c) {
    switch (c) {
    case TALLY_TXN_OK: return "ok";
    case TALLY_TXN_RETRIABLE: return "retriable";
    case TALLY_TXN_ABORTABLE: return "abortable";
    case TALLY_TXN_FATAL: return "fatal";
    }
    return "?";
}

bool tally_txn_is_fenced(const rd_kafka_error_t *error) {
    if (!error) return false;
    switch (rd_kafka_error_code(error)) {
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
        return true;
    default:
        return false;
    }
}
