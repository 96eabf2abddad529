/* SPDX-License-Identifier: MIT */
/* Building librdkafka clients from tally's configuration: the settings every client shares
 * (bootstrap.servers, kafka.*, logging), the group consumer, the output producer, and the librdkafka
 * callbacks, which reach their owners through a hooks struct (the client's opaque) instead of
 * knowing them: errors go to a fault slot, statistics, rebalances and deliveries to whoever set them. */
#ifndef TALLY_KAFKA_H
#define TALLY_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "tally/config.h"
#include "tally/fault.h"

/* Must outlive the client it was given to. Unset callbacks are not installed. */
typedef struct tally_kafka_hooks_s {
    const tally_config_t *conf;
    tally_fault_t *fault;        /* connection refusals and fatal errors are raised here */
    void (*stats)(void *opaque, rd_kafka_t *rk, const char *json, size_t len);
    void *stats_opaque;
    void (*rebalance)(void *opaque, rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts);
    void *rebalance_opaque;
    void (*delivery)(void *opaque, const rd_kafka_message_t *m);
    void *delivery_opaque;
    /* Set by the group consumer when librdkafka reports that its session expired: a fence of the
     * static member that follows is its own rejoin's doing (librdkafka issue #3437), not a newer
     * instance's. */
    _Atomic bool session_expired;
} tally_kafka_hooks_t;

/* Why the engine stops when the consumer was fenced after its own session expired (status 1). */
#define TALLY_KAFKA_SELF_FENCED                                                                    \
    "the group consumer fenced itself: its session expired while the broker did not answer, and "  \
    "librdkafka's rejoin under the same group.instance.id fenced its old member (librdkafka issue " \
    "#3437); a restart goes on from the last commit"

/* One setting; errstr names key, value and librdkafka's reason. */
int tally_kafka_conf_set(rd_kafka_conf_t *c, const char *key, const char *value, char *errstr, size_t errstr_size);
/* bootstrap.servers, every kafka.* setting (they win over tally's defaults set before) and the log
 * callback: what every client tally makes shares. */
int tally_kafka_conf_common(const tally_config_t *conf, rd_kafka_conf_t *c, char *errstr, size_t errstr_size);
/* kafka.max.poll.interval.ms, or librdkafka's default (300 s): how long the control thread may go
 * without polling the group consumer before the group drops it. */
int tally_kafka_max_poll_ms(const tally_config_t *conf);

/* The group consumer: group.id = application.id, static membership as instance_id, read_committed,
 * no automatic commits or offset resets, cooperative-sticky. Logs the reason and returns NULL on error. */
rd_kafka_t *tally_kafka_consumer_new(tally_kafka_hooks_t *hooks, const char *instance_id);
/* The output producer, idempotent, transactional when txn_id is not NULL. NULL on error (logged). */
rd_kafka_t *tally_kafka_producer_new(tally_kafka_hooks_t *hooks, const char *txn_id);
/* Waits up to 30 s for the topic's metadata, serving the error callback meanwhile so that a refused
 * login ends the wait at once. `key` is the configuration key that named it (for the message). */
int tally_kafka_wait_topic(rd_kafka_t *rk, tally_kafka_hooks_t *hooks, const char *topic, const char *key);
/* Subscribes the group consumer to the topics (the error is logged). */
int tally_kafka_subscribe(rd_kafka_t *consumer, char *const *topics, int ntopics);
/* Partitions of the topics (per the broker's metadata now) that the consumer's assignment lacks. */
int tally_kafka_unassigned(rd_kafka_t *consumer, char *const *topics, int ntopics);
/* One info line: "<what> N partition(s): t[0] t[1] ...". */
void tally_kafka_log_partitions(const char *what, const rd_kafka_topic_partition_list_t *l);

/* A consumer outside any group (assign only: `group` only satisfies the consumer API and is never
 * joined), read_committed, reporting each partition's end (enable.partition.eof), no offset reset.
 * NULL with errstr on error. */
rd_kafka_t *tally_kafka_reader_new(const tally_config_t *conf, const char *group, char *errstr, size_t errstr_size);
/* Admin calls, each waiting up to 60 s: creates a topic with (key, value) configs unless it exists
 * (*existed is then set, nothing checked); the broker's value of one configuration entry of a topic
 * ("?" when it has none); a topic's partition count. 0, or a TALLY_E* code with errstr. */
int tally_kafka_create_topic(rd_kafka_t *rk, const char *topic, int partitions, int replication,
                             const char *const (*configs)[2], int nconfigs, bool *existed, char *errstr, size_t errstr_size);
int tally_kafka_topic_config(rd_kafka_t *rk, const char *topic, const char *name, char *out, size_t outsz, char *errstr,
                             size_t errstr_size);
int tally_kafka_partition_count(rd_kafka_t *rk, const char *topic, int *cnt, char *errstr, size_t errstr_size);
#endif
