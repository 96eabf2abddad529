/* SPDX-License-Identifier: MIT */
/* The shared test harness: assertions that print both operands, and helpers for the real broker. */
#ifndef TALLY_TEST_HARNESS_H
#define TALLY_TEST_HARNESS_H

#include <inttypes.h>
#include <stdatomic.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TH_SKIP 77

#define TH_FAIL(...)                                                             \
    do {                                                                         \
        fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);                    \
        fprintf(stderr, __VA_ARGS__);                                            \
        fputc('\n', stderr);                                                     \
        exit(1);                                                                 \
    } while (0)

#define ASSERT(c)                                                                \
    do { if (!(c)) TH_FAIL("assertion failed: %s", #c); } while (0)

#define ASSERT_INT_OP(a, op, b)                                                  \
    do {                                                                         \
        long long a_ = (long long)(a), b_ = (long long)(b);                      \
        if (!(a_ op b_)) TH_FAIL("%s %s %s: %lld vs %lld", #a, #op, #b, a_, b_); \
    } while (0)
#define ASSERT_EQ(a, b) ASSERT_INT_OP(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_INT_OP(a, !=, b)
#define ASSERT_GT(a, b) ASSERT_INT_OP(a, >, b)
#define ASSERT_GE(a, b) ASSERT_INT_OP(a, >=, b)
#define ASSERT_LT(a, b) ASSERT_INT_OP(a, <, b)
#define ASSERT_LE(a, b) ASSERT_INT_OP(a, <=, b)

#define ASSERT_STR_EQ(a, b)                                                      \
    do {                                                                         \
        const char *a_ = (a), *b_ = (b);                                         \
        if (strcmp(a_, b_) != 0) TH_FAIL("%s == %s: \"%s\" vs \"%s\"", #a, #b, a_, b_); \
    } while (0)

#define ASSERT_MEM_EQ(a, alen, b, blen)                                          \
    do {                                                                         \
        size_t al_ = (alen), bl_ = (blen);                                       \
        if (al_ != bl_ || memcmp((a), (b), al_) != 0)                            \
            TH_FAIL("%s == %s: \"%.*s\" (%zu) vs \"%.*s\" (%zu)", #a, #b, (int)al_, \
                    (const char *)(a), al_, (int)bl_, (const char *)(b), bl_);   \
    } while (0)

/* The broker from $TALLY_BOOTSTRAP. Without one the test exits 77 (skip), unless
 * $TALLY_REQUIRE_BROKER=1 (scripts/test, CI), where a missing broker is a failure. */
const char *th_bootstrap(void);

/* A name unique to this run: "<prefix>-<pid>-<time>-<n>". Returns a static-lifetime string. */
const char *th_unique(const char *prefix);

/* Creates a topic and waits until its partitions have leaders. */
void th_create_topic(const char *topic, int partitions);
/* The same with topic configs: a NULL-terminated list of "key=value" (e.g. "cleanup.policy=delete"). */
void th_create_topic_config(const char *topic, int partitions, const char *const *configs);
/* Grows a topic to `total` partitions. */
void th_add_partitions(const char *topic, int total);

/* A plain idempotent producer; th_produce() copies the payload; partition -1 = by key/random. */
rd_kafka_t *th_producer(void);
void th_produce(rd_kafka_t *p, const char *topic, int32_t partition, const void *key, size_t klen,
                const void *val, size_t vlen);
/* The tests' pseudo-random numbers (xorshift64): the next value of *state (never 0). */
static inline unsigned long long th_xorshift(unsigned long long *state) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* th_produce with the record's timestamp (CreateTime, ms since the epoch). */
void th_produce_at(rd_kafka_t *p, const char *topic, int32_t partition, const void *val, size_t vlen, int64_t ts);
void th_flush_destroy(rd_kafka_t *p);

/* Reads every record of a topic from the beginning up to its high watermark, calling cb per record.
 * read_committed: 1 or 0. Returns the number of records read. */
typedef void (*th_record_cb)(const rd_kafka_message_t *m, void *opaque);
long th_consume_all(const char *topic, int read_committed, th_record_cb cb, void *opaque);

/* Runs a command (sh -c), returns its exit status (or 128+signal). */
int th_system(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

double th_now(void);

#endif

/* ---- word counts: the truth a test computes itself, and what the output says ---- */

typedef struct th_counts_s th_counts_t;
th_counts_t *th_counts_new(void);
void th_counts_destroy(th_counts_t *c);
/* Adds delta to the word; returns the new count. */
long long th_counts_add(th_counts_t *c, const void *word, size_t len, long long delta);
long long th_counts_get(th_counts_t *c, const void *word, size_t len);
size_t th_counts_size(th_counts_t *c);
/* Splits a line the way the engine must (independently written): runs of non-whitespace bytes. */
void th_counts_add_line(th_counts_t *c, const void *line, size_t len);
/* Writes "<word as hex>\t<count>" lines (tests/check_files.py reads them). */
void th_counts_dump(th_counts_t *c, const char *path);
/* The file sink's committed output in dir (format jsonl, csv or parquet) against the truth, read by
 * tests/check_files.py (Python's csv and json; Parquet through $TALLY_PQ_DUMP). */
void th_check_files(const char *dir, const char *format, th_counts_t *truth);
typedef void (*th_counts_cb)(const void *word, size_t len, long long count, void *opaque);
void th_counts_foreach(th_counts_t *c, th_counts_cb cb, void *opaque);

/* Reads the whole output topic (read_committed) and checks it against the truth:
 * every value is valid JSON {"word":...,"count":N} in valid UTF-8 whose word matches the key; no count
 * exceeds the word's true count; the last count equals the truth and no word outside the truth
 * appears. strict (exactly_once): per word counts strictly increase. Not strict (at_least_once):
 * counts may repeat, and may fall back after a crash (the first epoch after a restart can cut before
 * the lost epoch whose output was delivered); both are counted. */
typedef struct {
    long records, duplicates, regressions, words;
} th_output_stats_t;
th_output_stats_t th_check_output(const char *topic, th_counts_t *truth, int strict);

/* ---- the engine as a subprocess ---- */

typedef struct {
    int pid;
    char dir[256];        /* a fresh temporary directory: config, state, log */
    char conf[300];
    char log[300];
    char out[300];        /* the engine's stdout (console sink) */
    int starts;           /* th_engine_start calls so far */
    int status;           /* exit status of the last instance, once reaped */
} th_engine_t;

/* Writes a config for the job into a new temporary directory; `extra` is appended verbatim. */
void th_engine_init(th_engine_t *e, const char *app_id, const char *input, const char *output, const char *extra);
/* The same for input.path (a directory of files): no broker, no topics unless `extra` names them. */
void th_engine_init_files(th_engine_t *e, const char *app_id, const char *input_path, const char *extra);
/* Places a file in dir atomically, as input.path expects: written under a hidden name, then renamed. */
void th_write_file(const char *dir, const char *name, const void *data, size_t len);
void th_engine_start(th_engine_t *e);
/* Appends lines ("key=value\n"...) to the engine's config; a later key overrides an earlier one from
 * the next start on. */
void th_engine_append_conf(th_engine_t *e, const char *lines);
/* Sends sig and waits up to timeout_s for the exit; returns the exit status (128+n for a signal). */
int th_engine_signal_wait(th_engine_t *e, int sig, double timeout_s);
/* Waits for the engine to exit by itself; returns its status, or -1 after timeout_s. */
int th_engine_wait(th_engine_t *e, double timeout_s);
/* Waits until the last started instance has logged that it runs (its stop signals are then
 * handled, not fatal). */
void th_engine_wait_started(th_engine_t *e, double timeout_s);
/* Waits until the last started instance has logged where it starts reading each partition 0..n-1 of
 * topic (the engine's "<topic>[<p>] starts at offset N (partition holds [lo, hi))" line, written once
 * the position is resolved): input produced after that is counted, also under starting.offsets=latest. */
void th_engine_wait_positioned(th_engine_t *e, const char *topic, int partitions, double timeout_s);
/* Fails the test, with the log's tail, when the engine is no longer running; `during` names the step. */
void th_engine_require_alive(th_engine_t *e, const char *during);
/* True while the engine process runs. */
int th_engine_alive(th_engine_t *e);
/* Prints the tail of the engine's log to stderr (on failure). */
void th_engine_dump_log(th_engine_t *e, int lines);
/* The log of the last started instance: the text from its "starting:" line on, "" before it has one
 * (caller frees). */
char *th_engine_current_log(th_engine_t *e);
/* Occurrences of needle (a fixed string) in the log of the last started instance. */
int th_engine_log_count(th_engine_t *e, const char *needle);
/* Waits until the last started instance's log holds needle at least n times; fails, with the log's
 * tail, when the engine exits first or after timeout_s. */
void th_engine_wait_log(th_engine_t *e, const char *needle, int n, double timeout_s);

/* After a clean stop: the offsets in the engine's state.dir equal the group's committed offsets. */
void th_check_state_offsets(th_engine_t *e, const char *group, const char *topic);
/* True when the group's committed offsets on every partition of topic reach the high watermark. */
int th_is_committed(const char *group, const char *topic);
/* Waits until the group's committed offsets on every partition of topic reach the high watermark. */
void th_wait_committed(const char *group, const char *topic, double timeout_s, th_engine_t *e);

/* Waits until the read_committed output (key = word, value {"word":...,"count":N}) says every word of
 * truth at its true count: the output has settled once the input stopped. Reads on from where it got
 * (one reader for the whole wait). Fails after timeout_s, saying how many words are not there yet, or
 * as soon as one of the n engines (may be 0) exits. The whole output is checked by th_check_output. */
void th_wait_output(const char *topic, th_counts_t *truth, double timeout_s, th_engine_t *const *engines, int n);

/* The tally binary under test ($TALLY_BIN). */
const char *th_tally_bin(void);

/* Produces n generated lines "<prefix><k> ..." (deterministic from seed) and adds them to truth. */
void th_produce_words(const char *topic, long n, unsigned long long seed, int vocab, th_counts_t *truth);
/* Reads a whole file; *len gets its size. NULL when it cannot be read. */
char *th_read_file(const char *path, size_t *len);

/* ---- HTTP client side, for the engine's http.listen endpoint (tests/test_ops_http.c) ---- */

/* A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released). */
int th_free_port(void);
/* One HTTP/1.0 request to 127.0.0.1:port; returns the body (NUL-terminated, caller frees) and sets
 * *status (and *content_type, caller frees, when not NULL). NULL when the connection fails. */
char *th_http(const char *method, int port, const char *path, int *status, char **content_type);
/* The high watermark of a partition (a query to the broker). */
int64_t th_high_watermark(const char *topic, int32_t partition);
/* Both watermarks: lo is the log start offset (it moves on with retention and DeleteRecords). */
void th_watermarks(const char *topic, int32_t partition, int64_t *lo, int64_t *hi);

/* ---- faults ---- */

/* Deletes the records of topic[partition] below `before` (DeleteRecords). */
void th_delete_records(const char *topic, int32_t partition, int64_t before);
void th_delete_topic(const char *topic);
/* Deletes the group's committed offsets for partitions 0..partitions-1 of topic. */
void th_delete_group_offsets(const char *group, const char *topic, int partitions);
/* Runs scripts/kafka-local with the given arguments against the test broker; returns its status. */
int th_kafka_local(const char *args);
/* A tmpfs of `size` (e.g. "64m") on a new directory, unmounted at exit: for a disk that fills up.
 * NULL when it cannot be mounted (not root) and no broker is required, so the test skips; with
 * TALLY_REQUIRE_BROKER=1 a failure. */
const char *th_tmpfs(const char *size);
void th_tmpfs_unmount(void);

/* ---- input that keeps flowing during a test ---- */

/* Produces lines of words "<prefix><n>" (n < vocab, 1..max_words per line) in a thread until
 * th_feeder_stop, in bursts of `burst` lines with `pause_us` between them, adding each line to
 * truth. With two topics, every third line goes to the second. */
typedef struct th_feeder_s {
    const char *topics[2];
    th_counts_t *truth;
    const char *prefix;
    int vocab, max_words, burst, pause_us;
    _Atomic int stop;             /* set by th_feeder_stop, read by the feeder thread */
    long lines;
    unsigned long thread;
} th_feeder_t;
void th_feeder_start(th_feeder_t *f);
void th_feeder_stop(th_feeder_t *f);
