/* SPDX-License-Identifier: MIT */
/* memory.max.bytes: one budget for the whole process, split into the bounds of everything that
 * grows with the input (docs/operations.md, "Memory"). Each share is a bound, not a reservation:
 * what a part does not use is simply not allocated. When a bound is reached, tally slows down
 * (a full ring or producer queue blocks its writer, a full epoch triggers early, librdkafka stops
 * fetching a full partition queue); nothing is dropped. */
#ifndef TALLY_BUDGET_H
#define TALLY_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#include "tally/config.h"

typedef struct {
    int64_t total;             /* memory.max.bytes */
    int64_t fixed;             /* code, thread stacks, librdkafka's and RocksDB's own structures */
    int64_t consumer;          /* fetched input waiting in librdkafka's partition queues */
    int64_t producer;          /* output records in librdkafka's producer queue, not yet acknowledged */
    int64_t rings;             /* word batches in the rings between input threads and workers */
    int64_t sums;              /* topology=distributed: stage 1's per-epoch sums of its input partitions */
    int64_t cache;             /* the workers' word tables (counts held in front of RocksDB) */
    int64_t epoch;             /* an epoch's changed keys: dirty lists, change lists, the state write batch */
    int64_t rocksdb;           /* RocksDB memtables and block cache */
} tally_budget_t;

/* The split of c->memory_max_bytes (see budget.c for the fractions and why). */
void tally_budget_split(const tally_config_t *c, tally_budget_t *b);

/* The bounds derived from it. Sizes per entry are measured averages for short words; long words
 * make an entry larger, so a bound in words stays close to, not exactly at, its bytes. */
/* librdkafka queued.max.messages.kbytes: per partition (librdkafka bounds each partition's queue,
 * not their sum), the consumer share over TALLY_BUDGET_PARTITIONS busy partitions. */
#define TALLY_BUDGET_PARTITIONS 8
int64_t tally_budget_consumer_queue_kb(const tally_budget_t *b);
/* librdkafka queue.buffering.max.kbytes and .messages. */
int64_t tally_budget_producer_kb(const tally_budget_t *b);
int64_t tally_budget_producer_messages(const tally_budget_t *b);
/* Batches each ring holds, with nparts input threads and nworkers workers: a power of two, 2..64. */
unsigned tally_budget_ring_batches(const tally_budget_t *b, int nparts, int nworkers);
/* topology=distributed: distinct words a stage-1 partition sums before it asks for an early trigger. */
size_t tally_budget_sum_words(const tally_budget_t *b, int nparts);
/* Words the workers keep in memory together (state.cache.max.words when it is not set). */
int64_t tally_budget_cache_words(const tally_budget_t *b);
/* Changed keys an epoch holds: past it the epoch triggers early, and the workers wait for it. */
size_t tally_budget_epoch_keys(const tally_budget_t *b);
/* RocksDB: one memtable's size (two at most: one filling, one flushing) and the block cache. */
size_t tally_budget_rocksdb_write_buffer(const tally_budget_t *b);
size_t tally_budget_rocksdb_block_cache(const tally_budget_t *b);

#endif
