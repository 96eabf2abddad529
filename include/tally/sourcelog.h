/* SPDX-License-Identifier: MIT */
/* The input file log in Kafka. With input.path and sink=kafka under exactly_once there is no group
 * whose offsets could join the transaction, so each epoch's transaction carries one record to the
 * compacted topic <application.id>-files naming the files the epoch read ("file <size> <path>"
 * lines). Recovery reads the last committed record: it says what Kafka holds, as a group's committed
 * offsets do for a topic input. */
#ifndef TALLY_SOURCELOG_H
#define TALLY_SOURCELOG_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/config.h"

/* "<application.id>-files". */
void tally_sourcelog_topic(const tally_config_t *conf, char *buf, size_t size);
/* Creates the topic (one partition, compacted) unless it exists; checks that an existing one is
 * compacted. 0, or a TALLY_E* code with errstr. */
int tally_sourcelog_ensure(rd_kafka_t *rk, const tally_config_t *conf, char *errstr, size_t errstr_size);
/* The record of an epoch: positions with partition TALLY_FILESINK_FILE (path, size). malloc'ed. */
char *tally_sourcelog_encode(uint64_t epoch, const rd_kafka_topic_partition_list_t *files, size_t *len);
/* The last committed record: *epoch 0 and an empty list when there is none. */
int tally_sourcelog_read_last(const tally_config_t *conf, uint64_t *epoch, rd_kafka_topic_partition_list_t **files,
                              char *errstr, size_t errstr_size);

#endif
