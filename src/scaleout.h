/* SPDX-License-Identifier: MIT */
/* topology=distributed (docs/scaling.md): what an instance needs of Kafka beyond single mode. Kafka
 * is the distributed engine; no instance ever talks to another:
 *   - the internal topics <application.id>-repartition (stage 1 -> stage 2, (word, delta) records)
 *     and <application.id>-changelog (compacted, word -> count), created or checked at start;
 *   - the state of a repartition partition brought up to its changelog's end when it is assigned;
 *   - the changelog position each state write stores, so a restart reads only what it lacks;
 *   - the trimming of the repartition topic up to the committed offsets (DeleteRecords).
 * Partition r of both topics holds the words with tally_scaleout_partition(XXH3(word)) = r.
 * @locality control thread. */
#ifndef TALLY_SCALEOUT_H
#define TALLY_SCALEOUT_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/config.h"
#include "tally/state.h"

#define TALLY_META_TOPOLOGY "topology" /* 1: the state of a distributed instance (absent: single) */
/* Keys no window key can have (those are 9 bytes or more): in the repartition topic a stage 1's
 * greatest event time, in the changelog its partition's watermark W_r (values in decimal). A
 * changelog record without a value deletes its key (a closed window). */
#define TALLY_SCALEOUT_TIME_KEY "T"
#define TALLY_SCALEOUT_WATERMARK_KEY "W"

/* The record's value as the decimal number the internal topics carry (a delta, a count, a time);
 * false when it is not one. */
bool tally_scaleout_number(const rd_kafka_message_t *m, int64_t *v);

/* "<application.id>-repartition" or "<application.id>-changelog". */
void tally_scaleout_topic(const tally_config_t *c, bool changelog, char *buf, size_t size);
bool tally_scaleout_is_repartition(const tally_config_t *c, const char *topic);
static inline int32_t tally_scaleout_partition(uint64_t hash, int partitions) {
    return (int32_t)(hash % (uint64_t)partitions);
}

/* Creates the internal topics unless they exist, and checks existing ones (partition count,
 * the changelog compacted): 0, TALLY_ECONFIG (a mismatch: exit 2) or another TALLY_E*, with errstr. */
int tally_scaleout_ensure(rd_kafka_t *rk, const tally_config_t *c, char *errstr, size_t errstr_size);

/* A state.dir written under the other topology is refused (TALLY_ECONFIG with errstr). */
int tally_scaleout_check_state(const tally_config_t *c, tally_state_t *st, char *errstr, size_t errstr_size);

/* A restore: a thread that brings the counts of repartition partitions in the state up to the
 * changelog's committed end, each from the position the state stored (or the beginning), writing
 * the positions it reached with the counts, while the engine goes on with its other partitions
 * (Kafka Streams' restoration phase). It calls wake(opaque) when it ends. */
typedef struct tally_restore_s tally_restore_t;
int tally_restore_start(tally_restore_t **out, const tally_config_t *c, tally_state_t *st,
                        const rd_kafka_topic_partition_list_t *parts, void (*wake)(void *opaque), void *opaque);
bool tally_restore_finished(tally_restore_t *rs);
/* Changelog records read so far (any thread). */
uint64_t tally_restore_records(tally_restore_t *rs);
/* Joins the thread (cancel: stops it first; what it wrote stays, with its positions) and frees it;
 * adds its records to *records. 0 when every partition reached the end, TALLY_ESTOPPED when
 * cancelled, else the error with errstr. */
int tally_restore_end(tally_restore_t *rs, bool cancel, uint64_t *records, char *errstr, size_t errstr_size);

/* After a commit, into the epoch's state write: the changelog's committed end for each repartition
 * partition of `parts` (others ignored), the position a restore starts from, and the topology mark. */
int tally_scaleout_store_positions(rd_kafka_t *rk, const tally_config_t *c, const rd_kafka_topic_partition_list_t *parts,
                                   tally_state_batch_t *b, char *errstr, size_t errstr_size);

/* Trimming of the repartition topic: one DeleteRecords in flight at a time, its result polled. */
typedef struct tally_trim_s tally_trim_t;
tally_trim_t *tally_trim_new(rd_kafka_t *rk, const tally_config_t *c);
void tally_trim_destroy(tally_trim_t *t);
/* Deletes the records of the repartition partitions of `committed` below their offsets (skipped
 * while the previous request is in flight: the next commit covers it). */
void tally_trim_request(tally_trim_t *t, const rd_kafka_topic_partition_list_t *committed);
/* Serves a finished request (failures are logged: the next one retries). */
void tally_trim_poll(tally_trim_t *t);

#endif
