/* SPDX-License-Identifier: MIT */
/* Recovery of an assigned partition set: where each partition starts, and the replay of input that
 * Kafka committed but the state store did not hold yet (shared/DESIGN.md). Runs on the control
 * thread inside the rebalance callback; it uses the group consumer only to read offsets. */
#ifndef TALLY_RECOVER_H
#define TALLY_RECOVER_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/config.h"
#include "tally/filesink.h"
#include "tally/state.h"

/* `files`: the file sink, whose log (not the group's offsets) says what was committed; NULL for the
 * Kafka and console sinks.
 * Sets each element's offset of `parts` to its start position, storing what it decided (and what
 * it replayed) in the state. *stored says the state's counts changed (cached tables are stale).
 * On error: a TALLY_E* code, *status the exit status it calls for, errstr the reason naming the
 * partition and range. */
int tally_recover_assignment(const tally_config_t *conf, rd_kafka_t *consumer, tally_state_t *state, uint64_t epoch,
                             const tally_filesink_t *files, rd_kafka_topic_partition_list_t *parts, bool *stored, int *status, char *errstr,
                             size_t errstr_size);

/* input.path: the sink (sink_name says which, for messages) committed epoch sink_epoch reading
 * `files` (path, TALLY_FILESINK_FILE, size). When the state is one epoch behind (died between the
 * two), replays those files into it without output, with their records and the epoch. A gap of more
 * than one epoch is refused. 0, or a TALLY_E* code with errstr. */
int tally_recover_files(const tally_config_t *conf, tally_state_t *state, uint64_t sink_epoch, const char *sink_name,
                        const rd_kafka_topic_partition_list_t *files, char *errstr, size_t errstr_size);

#endif
