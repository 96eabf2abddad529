/* SPDX-License-Identifier: MIT */
/* The pipeline: partition threads (partition.c), worker threads (worker.c) and the SPSC rings
 * between them, brought up for an assignment and down again by the control thread, and the epoch
 * request that aligns them (a barrier through every ring). It knows nothing of transactions: the
 * epoch module asks for an epoch and reads what the workers produced. Each field says which thread
 * owns it. */
#ifndef TALLY_PIPELINE_H
#define TALLY_PIPELINE_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ops/observe.h"
#include "tally/batch.h"
#include "tally/budget.h"
#include "tally/changes.h"
#include "tally/config.h"
#include "tally/fault.h"
#include "tally/filesource.h"
#include "tally/spsc.h"
#include "tally/state.h"
#include "tally/wordtab.h"

typedef struct tally_pipeline_s tally_pipeline_t;

/* The output record of a (key, count): its value (the plain or, with windows, the windowed JSON) at
 * the start of *buf, grown as needed, and its Kafka key (*okey: the word itself, or "<window start>
 * <word>" written after the value). Returns the value's length; 0 when out of memory or key is no
 * window key. */
size_t tally_output_record(const tally_config_t *c, const uint8_t *key, uint32_t len, int64_t count, char **buf,
                           size_t *cap, const void **okey, size_t *oklen);

/* One assigned input partition and its thread, or (input.path) one file reader thread, whose
 * "offsets" count the bytes it read. Created and joined by the control thread. */
typedef struct tally_part_s {
    tally_pipeline_t *pipe;
    int idx;
    char *topic;
    int32_t partition;
    rd_kafka_queue_t *queue;      /* its own fetch queue, not forwarded to the consumer queue; NULL: a file reader */
    pthread_t thread;
    bool started;
    tally_spsc_t *rings;          /* [workers]: pushed here, popped by worker w */
    tally_batch_builder_t *builders; /* [workers] @locality partition thread */
    int64_t next_offset;          /* @locality partition thread: offset after the last record read */
    _Atomic int64_t cut;          /* written before the barrier push; control reads it after the epoch
                                   * (ordered by the barrier) and the metrics tick at any time */
    uint64_t epoch;               /* @locality partition thread: last barrier pushed */
    int64_t committed;            /* @locality control: offset committed with the last epoch */
    _Atomic int64_t seen;         /* next_offset, published for progress and lag */
    _Atomic uint64_t lines, words, dropped;
    /* Windows (window.size.ms > 0): each word goes to the workers once per window that holds the
     * record's time, as a tally_window_key. @locality partition thread, except the cut_* atomics. */
    uint8_t *wkey;                /* 8 + max.word.bytes */
    int64_t *wstarts;             /* tally_window_per_record() */
    int64_t ptime;                /* processing time of the records it reads now (evtime.h) */
    int64_t max_ts, last_input;   /* greatest event time read, wall clock of the last record (ms) */
    _Atomic int64_t cut_max_ts, cut_last_input; /* both at the cut, published like `cut` */
    uint64_t no_timestamp;        /* records without a timestamp (placed at processing time) */
    /* topology=distributed (scaleout.h). An input partition is stage 1: its words are summed per
     * epoch in `agg` (@locality partition thread) and go to the repartition topic at the barrier,
     * not to the workers. A repartition partition is stage 2: its records are (word, delta). */
    tally_wordtab_t *agg;
    int64_t sent_max_ts;          /* stage 1: the greatest event time sent in a time record */
    bool stage2;
    _Atomic bool held;            /* stage 2 whose state is being restored: answers barriers, reads nothing */
} tally_part_t;

/* One worker thread: a shard of the word space (a range of XXH3 hashes). The table persists across
 * pipeline restarts; the thread lives from pipeline start to stop. */
typedef struct tally_worker_s {
    tally_pipeline_t *pipe;
    int idx;
    pthread_t thread;
    bool started;
    tally_wordtab_t *tab;         /* @locality worker thread (control while the pipeline is down) */
    _Atomic uint64_t keys;        /* the table's size, published for metrics (the table is not shared) */
    tally_word_t **dirty;
    size_t ndirty, capdirty;
    /* The epoch's changed (word, count) records. Written by the worker until it reports the epoch
     * done, then read by control and handed to the state writer before the next epoch. */
    tally_changes_t out;
    uint8_t *blocked;             /* [parts] @locality worker: barrier seen on that ring */
    size_t cache_max;             /* words this worker keeps in memory (0 = no bound) */
    size_t epoch_max;             /* changed words it may hold: at half it asks for an early trigger, at all it waits */
    /* @locality worker (control while the pipeline is down): the table holds every count the state
     * has (a new state, nothing evicted, single topology), so a word it lacks is new: no RocksDB read. */
    bool complete;
    uint64_t done_epoch;          /* @locality worker: last epoch it finished */
    double aligned_s;             /* tally_mono_s() when every barrier of it was in; written before the
                                   * worker reports the epoch done (ep_mu), read by control after */
    uint64_t evicted;             /* @locality worker: words dropped from memory so far */
    int64_t wm;                   /* @locality worker: the watermark of the epoch it applies */
    uint64_t wm_gen;              /* @locality worker: the pipe's wm_gen it purged at */
    _Atomic int sleeping;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} tally_worker_t;

struct tally_pipeline_s {
    const tally_config_t *conf;
    tally_fault_t *fault;         /* errors of partition threads and workers */
    tally_state_t *state;         /* workers look up words missing from their tables */
    void (*wake)(void *opaque);   /* tells control: an epoch is done, or an early one is wanted */
    void *wake_opaque;

    int nworkers;
    tally_worker_t *workers;
    tally_budget_t budget;        /* memory.max.bytes split (budget.h) */
    /* Set by prepare for the assignment: */
    unsigned ring_cap;            /* batches a ring holds */
    size_t stage1_max;            /* distributed: distinct words a stage-1 part sums before it asks for a trigger */
    /* @locality control: the running assignment; the output producer while the pipeline is up. */
    rd_kafka_t *consumer;         /* NULL: the parts are file readers */
    tally_part_t *parts;
    int nparts;
    bool up;
    rd_kafka_t *producer;         /* NULL: console sink, workers only list their changes */
    rd_kafka_topic_t *topic;
    /* topology=distributed: stage 1 produces to `repartition`, workers add each changed count to
     * `changelog`, both at partition tally_scaleout_partition(hash); else NULL. */
    rd_kafka_topic_t *repartition, *changelog;
    /* @locality control: repartition partitions whose state is being restored; their parts are
     * prepared held (tally_pipeline_release lets them read). */
    rd_kafka_topic_partition_list_t *held;

    /* input.path: the files of the requested epoch, set before the request (file readers read
     * it after they saw req_epoch); NULL or another epoch's: nothing to read. */
    const tally_file_plan_t *plan;

    /* The epoch request: written by control, read by partition threads. */
    _Atomic uint64_t req_epoch;
    _Atomic bool req_final;
    _Atomic bool stop_hard;       /* discard in-flight work and exit now */
    _Atomic bool epoch_wanted;    /* a worker's dirty set is large: trigger before the timer */
    _Atomic bool produce_failed;  /* a record of the epoch was refused by a failed transaction: roll back */
    pthread_mutex_t ep_mu;
    pthread_cond_t ep_cv;
    int ep_done;                  /* workers done with the requested epoch, under ep_mu */
    _Atomic uint64_t dropped_total;

    /* Windows (evtime.h): control publishes, with release, the watermark that epoch wm_epoch
     * applies (workers drop a word's closed windows with it and wait for it after each barrier), and
     * the processing times of the epoch requested (ptime_cur) and of the one after (ptime_next). */
    _Atomic int64_t wm;
    _Atomic uint64_t wm_epoch;
    _Atomic uint64_t wm_gen;      /* bumped with every change of wm or wm_r: workers purge closed windows */
    /* topology=distributed with a watermark: each repartition partition r has its own, wm_r[r]
     * (Kafka Streams' stream time per task); wm is then their greatest. NULL otherwise. */
    _Atomic int64_t *wm_r;
    _Atomic int64_t ptime_cur, ptime_next;
    _Atomic uint64_t late_total;  /* (word, window) pairs dropped as late, since start */
};


/* The watermark that applies to a key of this hash: the one of the epoch, or (distributed) its
 * repartition partition's. Workers, between the waits for a new watermark. */
static inline int64_t tally_pipeline_wm(tally_pipeline_t *p, uint64_t hash, int64_t epoch_wm) {
    if (!p->wm_r) return epoch_wm;
    return atomic_load_explicit(&p->wm_r[hash % (uint64_t)p->conf->repartition_partitions], memory_order_relaxed);
}

static inline int tally_route(uint64_t hash, int nworkers) {
    return (int)(((hash >> 32) * (uint64_t)nworkers) >> 32);
}

/* Workers and their tables (no thread yet). */
int tally_pipeline_init(tally_pipeline_t *p, const tally_config_t *conf, tally_fault_t *fault,
                        void (*wake)(void *opaque), void *wake_opaque);
void tally_pipeline_term(tally_pipeline_t *p);

/* The parts of an assignment (list offsets = start positions), their fetch queues taken out of the
 * consumer queue's forwarding so that each partition thread alone drains its partition. Down only. */
int tally_pipeline_prepare(tally_pipeline_t *p, rd_kafka_t *consumer, const rd_kafka_topic_partition_list_t *l,
                           uint64_t epoch);
void tally_pipeline_free_parts(tally_pipeline_t *p);
/* input.path: n file reader parts ("files"[0..n-1], at byte 0) instead of partitions. Down only. */
int tally_pipeline_prepare_readers(tally_pipeline_t *p, int n, uint64_t epoch);
/* Starts the threads (none without parts); workers produce through `producer` (NULL: console). */
int tally_pipeline_start(tally_pipeline_t *p, tally_state_t *state, rd_kafka_t *producer, rd_kafka_topic_t *topic,
                         rd_kafka_topic_t *repartition, rd_kafka_topic_t *changelog, uint64_t epoch);
/* Joins the threads; partition threads exit only after a final barrier or stop_hard. */
void tally_pipeline_join(tally_pipeline_t *p);
/* Stops every thread now, discarding what is in flight (it was never committed). The tables may
 * then hold uncommitted counts: callers that go on must reload them. */
void tally_pipeline_kill(tally_pipeline_t *p);

/* The parts of `restored` read from now on, and leave the held list. */
void tally_pipeline_release(tally_pipeline_t *p, const rd_kafka_topic_partition_list_t *restored);
/* The parts that read (not held), at their cut. */
rd_kafka_topic_partition_list_t *tally_pipeline_reading(const tally_pipeline_t *p);

/* Asks every partition thread for a cut and a barrier of `epoch` (final: then they exit). */
void tally_pipeline_request(tally_pipeline_t *p, uint64_t epoch, bool final);
bool tally_pipeline_all_done(tally_pipeline_t *p);
/* Blocks until every worker finished the requested epoch (true) or a fault was raised (false). */
bool tally_pipeline_wait(tally_pipeline_t *p);
/* Waits (at most timeout_s, or until a fault) until every part has read up to its offset in
 * `targets`; true when all did. A retried final epoch uses it to cover what the failed one did. */
bool tally_pipeline_wait_read(tally_pipeline_t *p, const rd_kafka_topic_partition_list_t *targets, double timeout_s);
/* True when some partition read past its committed offset. */
bool tally_pipeline_has_input(tally_pipeline_t *p);

/* The parts at their cut (the epoch's offsets) or at their committed offsets, less `minus`. */
rd_kafka_topic_partition_list_t *tally_pipeline_offsets(const tally_pipeline_t *p, bool cut,
                                                        const rd_kafka_topic_partition_list_t *minus);
/* The epoch is committed and handed to the state writer: committed offsets move to the cut, the
 * workers' lists are forgotten (the writer owns their buffers). */
void tally_pipeline_committed(tally_pipeline_t *p);
/* Moves the consumer's fetch positions to the list's offsets (records fetched beyond them are
 * dropped by librdkafka's version barrier). */
int tally_pipeline_seek(tally_pipeline_t *p, rd_kafka_topic_partition_list_t *list);
/* Empties the tables and, in complete mode, loads the whole state into them. Down only. */
int tally_pipeline_reload(tally_pipeline_t *p, tally_state_t *state);

/* Changed keys, their bytes in the lists, and words in memory (a gauge any thread may read). */
size_t tally_pipeline_out_keys(const tally_pipeline_t *p);
size_t tally_pipeline_out_bytes(const tally_pipeline_t *p);
uint64_t tally_pipeline_keys_in_memory(tally_pipeline_t *p);
/* The parts for observability (control thread). */
void tally_pipeline_view(tally_pipeline_t *p, tally_obs_view_t *v);

/* partition.c, filereader.c and worker.c: the threads' bodies. */
void *tally_part_main(void *arg);
void *tally_filereader_main(void *arg);
/* For the input threads (partition.c): a word to its worker's batch; the batches in hand to the
 * workers; the epoch's cut (cut = next_offset) and barriers. False when the engine stops hard or
 * memory ran out (a fault is raised). */
bool tally_part_add_n(tally_part_t *p, const uint8_t *word, size_t len, uint32_t n);
static inline bool tally_part_add(tally_part_t *p, const uint8_t *word, size_t len) { return tally_part_add_n(p, word, len, 1); }
/* tally_part_add with the record's time: once per window holding ts when windows are on. */
bool tally_part_add_at(tally_part_t *p, const uint8_t *word, size_t len, int64_t ts);
bool tally_part_push(tally_part_t *p, int w, tally_batch_t *b);
bool tally_part_flush(tally_part_t *p);
bool tally_part_barrier(tally_part_t *p, uint64_t epoch, bool final);
void *tally_worker_main(void *arg);
/* Produces one record (copied) into the open transaction, at `partition` (RD_KAFKA_PARTITION_UA: the
 * topic's partitioner); waits while librdkafka's queue is full. False when the engine stops hard or
 * the produce failed (a fault is raised). Partition threads and workers. */
bool tally_pipeline_produce(tally_pipeline_t *p, rd_kafka_topic_t *rkt, int32_t partition, const void *key, size_t klen,
                            const void *value, size_t vlen);
void tally_worker_wake(tally_worker_t *w);

#endif
