/* SPDX-License-Identifier: MIT */
/* The split of memory.max.bytes (budget.h). The fractions are of what is left after a fixed part;
 * the bytes an entry costs were measured with heaptrack on bench/run --memory (10^6 distinct words:
 * bench/RESULTS.md, Performance round two). */
#include "tally/budget.h"

#include "tally/batch.h"

#define MIB (INT64_C(1) << 20)
#define FIXED (48 * MIB)            /* code, threads, the libraries: 45 MiB peak RSS with 10^4 words; with fragmentation */
/* A changed key of an epoch: its change list record (~29 B), its dirty pointer (8 B, in an array
 * that doubles) and its record in the state write batch (~25 B). */
#define EPOCH_KEY_BYTES 80
/* An output record waiting in librdkafka's producer queue: the message, its key and JSON value. */
#define PRODUCER_MSG_BYTES 216
#define SUM_WORD_BYTES 56           /* an entry of stage 1's sums: header and word (32), slots at 3/8-3/4 load */
#define CACHE_WORD_BYTES 72         /* a worker's table entry (~40 B with the word) and its slots (<= 32 B) */

static int64_t clamp(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

void tally_budget_split(const tally_config_t *c, tally_budget_t *b) {
    int64_t m = c->memory_max_bytes, rest = m - FIXED;
    if (rest < 0) rest = 0;
    *b = (tally_budget_t){
        .total = m,
        .fixed = m - rest,
        /* 30/32 of the rest; the other 2/32 are headroom for the allocator's fragmentation, which
         * grows with the threads (glibc keeps an arena per thread). */
        .consumer = rest / 16,
        .producer = rest * 7 / 32,
        .rings = rest / 32,
        .sums = rest / 32,
        .cache = rest * 11 / 32,
        .epoch = rest / 8,
        .rocksdb = rest / 8,
    };
}

int64_t tally_budget_consumer_queue_kb(const tally_budget_t *b) {
    /* At least 1 MiB: below it a partition refetches too often to keep a core busy. */
    return clamp(b->consumer / TALLY_BUDGET_PARTITIONS / 1024, 1024, 65536);
}

/* A full queue makes the workers wait for acknowledgements, which the transactional producer gave
 * slowly (a 60k-record queue at 300k lines/s: 3.2 s produce phases against 0.08 s with 200k), so an
 * epoch's keys are bounded by it too (tally_budget_epoch_keys). */
int64_t tally_budget_producer_messages(const tally_budget_t *b) {
    return clamp(b->producer / PRODUCER_MSG_BYTES, 10000, 10000000);
}

int64_t tally_budget_producer_kb(const tally_budget_t *b) { return clamp(b->producer / 1024, 1024, 2097151); }

unsigned tally_budget_ring_batches(const tally_budget_t *b, int nparts, int nworkers) {
    int64_t rings = (int64_t)(nparts > 0 ? nparts : 1) * (nworkers > 0 ? nworkers : 1);
    int64_t per = b->rings / rings / (int64_t)TALLY_BATCH_BYTES;
    unsigned cap = 2;
    while (cap < 64 && (int64_t)cap * 2 <= per) cap *= 2;
    return cap;
}

size_t tally_budget_sum_words(const tally_budget_t *b, int nparts) {
    return (size_t)clamp(b->sums / (nparts > 0 ? nparts : 1) / SUM_WORD_BYTES, 1024, INT64_C(1) << 24);
}

int64_t tally_budget_cache_words(const tally_budget_t *b) {
    return clamp(b->cache / CACHE_WORD_BYTES, 10000, 1000000000);
}

size_t tally_budget_epoch_keys(const tally_budget_t *b) {
    int64_t keys = b->epoch / EPOCH_KEY_BYTES, out = tally_budget_producer_messages(b);
    return (size_t)clamp(keys < out ? keys : out, 1000, INT64_C(1) << 32);
}

size_t tally_budget_rocksdb_write_buffer(const tally_budget_t *b) { return (size_t)clamp(b->rocksdb / 4, 2 * MIB, INT64_C(1) << 30); }

size_t tally_budget_rocksdb_block_cache(const tally_budget_t *b) { return (size_t)clamp(b->rocksdb / 2, 4 * MIB, INT64_C(1) << 34); }
