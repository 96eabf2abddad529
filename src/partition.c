/* SPDX-License-Identifier: MIT */
/* A partition thread: drains its partition's fetch queue, splits lines into words, hashes each word
 * (XXH3) to the worker that owns it, and answers epoch requests with a cut and barriers. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "pipeline.h"
#include "scaleout.h"
#include "tally/clock.h"
#include "tally/engine.h"
#include "tally/log.h"
#include "tally/tokenize.h"

#define CONSUME_BATCH 512

static void nap_us(long us) {
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/* Hands a batch to worker w; waits while the ring is full (backpressure, nothing dropped).
 * Returns false when the engine stops hard (the batch is destroyed). */
bool tally_part_push(tally_part_t *p, int w, tally_batch_t *b) {
    tally_pipeline_t *pipe = p->pipe;
    long wait = 20;
    while (!tally_spsc_push(&p->rings[w], b)) {
        if (atomic_load(&pipe->stop_hard)) {
            tally_batch_destroy(b);
            return false;
        }
        tally_worker_wake(&pipe->workers[w]);
        nap_us(wait);
        if (wait < 1000) wait *= 2;
    }
    tally_worker_wake(&pipe->workers[w]);
    return true;
}

bool tally_part_flush(tally_part_t *p) {
    for (int w = 0; w < p->pipe->nworkers; w++) {
        tally_batch_t *b = tally_batch_builder_take(&p->builders[w]);
        if (b && !tally_part_push(p, w, b)) return false;
    }
    return true;
}

bool tally_part_add_n(tally_part_t *p, const uint8_t *word, size_t len, uint32_t n) {
    tally_pipeline_t *pipe = p->pipe;
    uint64_t h = XXH3_64bits(word, len);
    int w = tally_route(h, pipe->nworkers);
    while (!tally_batch_builder_add_n(&p->builders[w], h, word, (uint32_t)len, n)) {
        tally_batch_t *b = tally_batch_builder_take(&p->builders[w]);
        if (!b) {
            tally_fault_raise(pipe->fault, TALLY_EXIT_ERROR, "out of memory in input thread %s[%d]", p->topic,
                               (int)p->partition);
            return false;
        }
        if (!tally_part_push(p, w, b)) return false;
    }
    return true;
}

static bool stage1_add(tally_part_t *p, const uint8_t *word, size_t len);

bool tally_part_add_at(tally_part_t *p, const uint8_t *word, size_t len, int64_t ts) {
    const tally_config_t *c = p->pipe->conf;
    if (c->window_size_ms <= 0) return p->agg ? stage1_add(p, word, len) : tally_part_add(p, word, len);
    /* Every window, closed ones too: the workers drop those with the epoch's watermark, which is
     * known only once the previous epoch's barriers are all in. */
    int64_t size = c->window_size_ms, slide = tally_config_window_slide(c);
    size_t n = tally_window_assign(ts, size, slide, p->wstarts, tally_window_per_record(size, slide));
    for (size_t i = 0; i < n; i++) {
        size_t kl = tally_window_key(p->wkey, p->wstarts[i], word, len);
        if (!(p->agg ? stage1_add(p, p->wkey, kl) : tally_part_add(p, p->wkey, kl))) return false;
    }
    return true;
}

/* Stage 1, a word of the input: summed until the barrier. (Summing per partition thread in single
 * topology as well, Flink's local-global aggregation, was measured and cost more CPU than the
 * batch builder's pre-combining it replaced: bench/RESULTS.md, Performance round two.) */
static bool stage1_add(tally_part_t *p, const uint8_t *word, size_t len) {
    uint64_t h = XXH3_64bits(word, len);
    tally_word_t *e = tally_wordtab_find(p->agg, h, word, (uint32_t)len);
    if (!e && !(e = tally_wordtab_insert(p->agg, h, word, (uint32_t)len, 0))) {
        tally_fault_raise(p->pipe->fault, TALLY_EXIT_ERROR, "out of memory in input thread %s[%d]", p->topic,
                          (int)p->partition);
        return false;
    }
    e->count++;
    return true;
}

typedef struct {
    tally_part_t *p;
    bool ok;
} stage1_ctx_t;

static void stage1_send(tally_word_t *e, void *opaque) {
    stage1_ctx_t *c = opaque;
    if (!c->ok) return;
    tally_pipeline_t *pipe = c->p->pipe;
    char v[24];
    int vl = snprintf(v, sizeof(v), "%" PRId64, e->count);
    c->ok = tally_pipeline_produce(pipe, pipe->repartition, tally_scaleout_partition(e->hash, pipe->conf->repartition_partitions),
                                   e->bytes, e->len, v, (size_t)vl);
}

/* Stage 1 at the barrier: the epoch's (word, delta) sums into the open transaction, each to the
 * repartition partition that owns the word; with a watermark, then the greatest event time read so
 * far to every repartition partition (a time record, key "T"), after the sums: so each partition
 * learns how far every input has come, and its watermark follows the greatest (scaleout.h). */
static bool stage1_flush(tally_part_t *p) {
    stage1_ctx_t c = {.p = p, .ok = true};
    tally_wordtab_foreach(p->agg, stage1_send, &c);
    tally_wordtab_clear(p->agg);
    tally_pipeline_t *pipe = p->pipe;
    if (!c.ok || !pipe->wm_r || p->max_ts == TALLY_WATERMARK_NONE || p->max_ts == p->sent_max_ts) return c.ok;
    char v[24];
    int vl = snprintf(v, sizeof(v), "%" PRId64, p->max_ts);
    for (int32_t r = 0; c.ok && r < pipe->conf->repartition_partitions; r++)
        c.ok = tally_pipeline_produce(pipe, pipe->repartition, r, TALLY_SCALEOUT_TIME_KEY, 1, v, (size_t)vl);
    p->sent_max_ts = p->max_ts;
    return c.ok;
}

/* Stage 2, a repartition record: key = word, value = its delta in decimal; or a time record. */
static bool stage2_add(tally_part_t *p, const rd_kafka_message_t *m) {
    int64_t d = 0;
    bool num = tally_scaleout_number(m, &d);
    if (p->pipe->wm_r && m->key_len == 1 && !memcmp(m->key, TALLY_SCALEOUT_TIME_KEY, 1) && num) {
        if (d > p->max_ts) p->max_ts = d;
        return true;
    }
    if (!m->key || !m->key_len || !num || d <= 0) {
        tally_fault_raise(p->pipe->fault, TALLY_EXIT_ERROR, "%s[%d] offset %lld is not a (word, count) record of tally's "
                          "stage 1: was the topic written by something else?", p->topic, (int)p->partition,
                          (long long)m->offset);
        return false;
    }
    for (; d > 0; d -= UINT32_MAX)
        if (!tally_part_add_n(p, m->key, m->key_len, d > UINT32_MAX ? UINT32_MAX : (uint32_t)d)) return false;
    return true;
}

bool tally_part_barrier(tally_part_t *p, uint64_t epoch, bool final) {
    tally_pipeline_t *pipe = p->pipe;
    if (p->agg && !stage1_flush(p)) return false;
    if (!tally_part_flush(p)) return false;
    atomic_store_explicit(&p->cut_max_ts, p->max_ts, memory_order_relaxed);
    atomic_store_explicit(&p->cut_last_input, p->last_input, memory_order_relaxed);
    atomic_store_explicit(&p->cut, p->next_offset, memory_order_relaxed);
    for (int w = 0; w < pipe->nworkers; w++) {
        tally_batch_t *b = tally_batch_barrier_new(epoch, final);
        if (!b) {
            tally_fault_raise(pipe->fault, TALLY_EXIT_ERROR, "out of memory for a barrier");
            return false;
        }
        if (!tally_part_push(p, w, b)) return false;
    }
    p->epoch = epoch;
    /* Records after this barrier belong to the next epoch: its processing time (evtime.h). */
    p->ptime = atomic_load_explicit(&pipe->ptime_next, memory_order_relaxed);
    return true;
}

/* Returns false when the engine stops hard or memory ran out. */
/* The time that places a record in windows (event.time): its Kafka timestamp, or the epoch's
 * processing time, also for a record without a timestamp (counted). */
static int64_t record_time(tally_part_t *p, const rd_kafka_message_t *m) {
    if (p->pipe->conf->event_time != TALLY_EVENT_TIME_RECORD) return p->ptime;
    int64_t ts = rd_kafka_message_timestamp(m, NULL);
    if (ts >= 0) return ts;
    if (p->no_timestamp++ == 0)
        tally_warn("%s[%d] offset %lld has no timestamp: placed in windows by processing time, as every "
                   "such record of this partition is",
                   p->topic, (int)p->partition, (long long)m->offset);
    return p->ptime;
}

static bool count_line(tally_part_t *p, const rd_kafka_message_t *m, uint64_t *words, uint64_t *dropped) {
    const size_t max = (size_t)p->pipe->conf->max_word_bytes;
    tally_tokenizer_t t;
    const uint8_t *word;
    size_t len;
    int64_t ts = 0;
    if (p->wkey) {
        ts = record_time(p, m);
        if (ts > p->max_ts) p->max_ts = ts;
        p->last_input = tally_wall_ms();
    }
    tally_tokenizer_init(&t, m->payload, m->payload ? m->len : 0);
    while (tally_tokenizer_next_counted(&t, max, &word, &len, dropped)) {
        if (!(p->wkey ? tally_part_add_at(p, word, len, ts) : p->agg ? stage1_add(p, word, len) : tally_part_add(p, word, len)))
            return false;
        (*words)++;
    }
    return true;
}

/* A consume error on the partition: offsets out of range mean data loss (fail.on.data.loss decides
 * at assignment; here the position moved under us while running). */
static void consume_error(tally_part_t *p, const rd_kafka_message_t *m) {
    tally_pipeline_t *pipe = p->pipe;
    switch (m->err) {
    case RD_KAFKA_RESP_ERR__PARTITION_EOF:
        return;
    case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
        if (p->stage2) {
            /* Repartition records are deleted only below offsets committed for the group: another
             * instance owns this partition now and went on (this one is a zombie: it stopped past
             * its session). Not data loss: read nothing more; its commit is refused, and the
             * group's next assignment replaces this one. */
            tally_warn("%s[%d]: offset %lld was deleted after another instance committed past it: this "
                       "instance lost the partition; it reads nothing more of it", p->topic, (int)p->partition,
                       (long long)p->next_offset);
            atomic_store(&p->held, true);
            return;
        }
        tally_fault_raise(pipe->fault, TALLY_EXIT_DATALOSS,
                           "input %s[%d]: offset %lld is out of range (records deleted by retention or the "
                           "topic was recreated): %s",
                           p->topic, (int)p->partition, (long long)p->next_offset, rd_kafka_message_errstr(m));
        return;
    default:
        tally_warn("%s[%d]: consume error: %s", p->topic, (int)p->partition, rd_kafka_message_errstr(m));
    }
}

void *tally_part_main(void *arg) {
    tally_part_t *p = arg;
    tally_pipeline_t *pipe = p->pipe;
    char tag[16];
    snprintf(tag, sizeof(tag), "p%d", p->idx);
    tally_log_set_thread(tag);
    tally_debug("reading %s[%d] from offset %lld", p->topic, (int)p->partition, (long long)p->next_offset);

    rd_kafka_message_t *msgs[CONSUME_BATCH];
    int consume_ms = pipe->conf->trigger_interval_ms / 10;
    if (consume_ms < 1) consume_ms = 1;
    if (consume_ms > 200) consume_ms = 200;
    for (;;) {
        uint64_t e = atomic_load_explicit(&pipe->req_epoch, memory_order_acquire);
        if (e > p->epoch) {
            bool final = atomic_load_explicit(&pipe->req_final, memory_order_acquire);
            if (!tally_part_barrier(p, e, final) || final) break;
        }
        if (atomic_load(&pipe->stop_hard)) break;
        /* Held (its state is being restored): what is fetched waits in the queue. */
        if (atomic_load_explicit(&p->held, memory_order_acquire)) {
            nap_us(10000);
            continue;
        }

        /* librdkafka fills the batch until it is full or the timeout passes: a record of a slow
         * partition waits out the whole timeout before it is counted, so it is a tenth of the trigger
         * interval (at 5k lines/s and a 100 ms trigger, 200 ms made p50 166 ms and 64 epochs in 22 s). */
        ssize_t n = rd_kafka_consume_batch_queue(p->queue, consume_ms, msgs, CONSUME_BATCH);
        if (n < 0) {
            tally_fault_raise(pipe->fault, TALLY_EXIT_ERROR, "%s[%d]: consume failed: %s", p->topic, (int)p->partition,
                               rd_kafka_err2str(rd_kafka_last_error()));
            break;
        }
        uint64_t lines = 0, words = 0, dropped = 0;
        bool ok = true;
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (m->err) consume_error(p, m);
            else if (ok && m->offset >= p->next_offset) {
                if (p->stage2) ok = stage2_add(p, m);
                else {
                    ok = count_line(p, m, &words, &dropped);
                    lines++;
                }
                p->next_offset = m->offset + 1;
            }
            rd_kafka_message_destroy(m);
        }
        if (!ok) break;
        /* Stage 1 holds its sums until the barrier: a large table asks for an early trigger. */
        if (p->agg && tally_wordtab_size(p->agg) > pipe->stage1_max && !atomic_load(&pipe->epoch_wanted)) {
            atomic_store(&pipe->epoch_wanted, true);
            pipe->wake(pipe->wake_opaque);
        }
        if (n > 0) {
            if (!tally_part_flush(p)) break;
            atomic_store_explicit(&p->seen, p->next_offset, memory_order_release);
            atomic_fetch_add_explicit(&p->lines, lines, memory_order_relaxed);
            atomic_fetch_add_explicit(&p->words, words, memory_order_relaxed);
            if (dropped) {
                atomic_fetch_add_explicit(&p->dropped, dropped, memory_order_relaxed);
                atomic_fetch_add_explicit(&pipe->dropped_total, dropped, memory_order_relaxed);
            }
        }
    }
    for (int w = 0; w < pipe->nworkers; w++) tally_batch_builder_term(&p->builders[w]);
    tally_debug("%s[%d] thread exits at offset %lld", p->topic, (int)p->partition, (long long)p->next_offset);
    return NULL;
}
