/* SPDX-License-Identifier: MIT */
/* Bad input: null values, empty values, tombstones, a record of several MB, a word of 1 MB and words
 * at and past max.word.bytes; then a flood of distinct words larger than state.cache.max.words
 * arriving at once. No stall, valid output, exact counts for what is countable, the rest counted
 * as dropped; the words in memory and the peak RSS stay within a bound derived from the cache. */
#include <signal.h>

#include "harness.h"

/* Reads the engine's "N words longer than max.word.bytes=1024 were not counted (M since start)" lines:
 * *sum gets the sum of the N (one line per epoch that dropped any), *last the M of the last line. */
static void dropped_words(const char *log, long long *sum, long long *last) {
    char *text = th_read_file(log, NULL);
    ASSERT(text);
    static const char what[] = " words longer than max.word.bytes=1024 were not counted (";
    for (const char *p = strstr(text, what); p; p = strstr(p + 1, what)) {
        const char *num = p;
        while (num > text && num[-1] >= '0' && num[-1] <= '9') num--;
        ASSERT(num < p); /* a count stands before the text */
        *sum += strtoll(num, NULL, 10);
        *last = strtoll(p + sizeof(what) - 1, NULL, 10);
    }
    free(text);
}

static void odd_records(void) {
    const char *in = th_unique("bad-in"), *out = th_unique("bad-out"), *app = th_unique("bad");
    th_create_topic(in, 2);
    th_create_topic(out, 2);
    th_counts_t *truth = th_counts_new();
    rd_kafka_t *p = th_producer();
    th_produce(p, in, 0, NULL, 0, NULL, 0);        /* null value */
    th_produce(p, in, 1, "key", 3, NULL, 0);       /* tombstone */
    th_produce(p, in, 0, NULL, 0, "", 0);          /* empty value */
    th_produce(p, in, 1, NULL, 0, "\r\n\t ", 4);   /* whitespace only */
    /* A record of ~6 MB made of many short words. */
    size_t big_len = 6 * 1024 * 1024;
    char *big = malloc(big_len);
    ASSERT(big);
    size_t n = 0;
    for (int i = 0; n + 16 < big_len; i++) n += (size_t)snprintf(big + n, big_len - n, "big%d ", i % 1000);
    th_counts_add_line(truth, big, n);
    th_produce(p, in, 0, NULL, 0, big, n);
    /* One word of 1 MB, one of max.word.bytes + 1 (both dropped), one of exactly max.word.bytes. */
    memset(big, 'x', 1024 * 1024);
    th_produce(p, in, 1, NULL, 0, big, 1024 * 1024);
    th_produce(p, in, 1, NULL, 0, big, 1025);
    memset(big, 'y', 1024);
    th_counts_add_line(truth, big, 1024);
    th_produce(p, in, 1, NULL, 0, big, 1024);
    free(big);
    const char *after = "still counted after the odd ones";
    th_counts_add_line(truth, after, strlen(after));
    th_produce(p, in, 0, NULL, 0, after, strlen(after));
    th_flush_destroy(p);

    th_engine_t e;
    th_engine_init(&e, app, in, out, NULL);
    th_engine_start(&e);
    th_wait_committed(app, in, 120, &e);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    /* The two over-long words may fall in one epoch or in two: add up every epoch's line. */
    long long dropped = 0, since_start = -1;
    dropped_words(e.log, &dropped, &since_start);
    ASSERT_EQ(dropped, 2);
    ASSERT_EQ(since_start, 2);
    th_output_stats_t s = th_check_output(out, truth, 1);
    ASSERT_EQ(s.words, (long)th_counts_size(truth));
    th_counts_destroy(truth);
}

static long peak_rss_kb(int pid) {
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

/* The largest "keysInMemory" of the progress records the engine logged at each commit. */
static long long max_keys_in_memory(const char *log) {
    char *text = th_read_file(log, NULL);
    ASSERT(text);
    static const char what[] = "\"keysInMemory\":";
    long long max = -1;
    for (const char *p = strstr(text, what); p; p = strstr(p + 1, what)) {
        long long k = strtoll(p + sizeof(what) - 1, NULL, 10);
        if (k > max) max = k;
    }
    free(text);
    return max;
}

/* The memory bound of the flood, derived from the cache (state.cache.max.words = FLOOD_CACHE):
 * - Words in memory: a worker keeps at most its share of the cache of committed words (it shrinks
 *   its table after a commit) plus at most as many changed words (then it waits for the trigger it
 *   asked for), so 2 x cache, plus what the rings to the workers still hold: 4 partitions x 2 workers
 *   x 64 batches x up to 1024 new words = 0.52M. FLOOD_SLACK_WORDS doubles that; runs with caches
 *   of 100k to 1M (workers=2) showed 0.54M to 0.71M above 2 x cache. Without the bound all 5M words
 *   stay in memory.
 * - Peak RSS: FLOOD_BASE_MIB for what does not grow with the words: librdkafka's prefetch budget
 *   (queued.max.messages.kbytes = 64 MiB x 4 partitions), its producer queue (64 MiB) and RocksDB's
 *   write buffers and block cache (3 x 32 MiB), rounded up; plus FLOOD_WORD_BYTES per word in memory:
 *   its table entry with the word (~48 B), its share of the slots (<= 16 B), its place in the dirty
 *   list and its packed output record (~30 B), doubled for malloc. With cache 500000 that allows
 *   420 + 2.0M x 200 B = 801 MiB; runs showed 444 to 619 MiB for caches of 100k to 1M (CI: 579-584 at
 *   500k), and 944 MiB before the engine bounded the cache. */
enum { FLOOD_CACHE = 500000, FLOOD_SLACK_WORDS = 1000000, FLOOD_BASE_MIB = 420, FLOOD_WORD_BYTES = 200 };

static void distinct_flood(void) {
    const char *in = th_unique("flood-in"), *out = th_unique("flood-out"), *app = th_unique("flood");
    th_create_topic(in, 4);
    th_create_topic(out, 4);
    enum { WORDS = 5000000, PER_LINE = 20 };
    th_counts_t *truth = th_counts_new();
    rd_kafka_t *p = th_producer();
    char line[PER_LINE * 16];
    for (int i = 0; i < WORDS / PER_LINE; i++) {
        size_t n = 0;
        for (int w = 0; w < PER_LINE; w++)
            n += (size_t)snprintf(line + n, sizeof(line) - n, "%sd%d", w ? " " : "", i * PER_LINE + w);
        th_counts_add_line(truth, line, n);
        th_produce(p, in, -1, NULL, 0, line, n);
    }
    th_flush_destroy(p);
    fprintf(stderr, "produced %d distinct words\n", WORDS);

    /* workers=2: the slack above is per worker, so the machine's core count must not change it. */
    th_engine_t e;
    char conf[200];
    snprintf(conf, sizeof(conf), "state.cache.max.words=%d\ntrigger.interval.ms=30000\nworkers=2\n", FLOOD_CACHE);
    th_engine_init(&e, app, in, out, conf);
    th_engine_start(&e);
    th_wait_committed(app, in, 300, &e);
    long rss_kb = peak_rss_kb(e.pid);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    th_system("grep -c 'epoch .* committed' %s | sed 's/^/transactions for the flood (trigger interval 30 s): /' >&2", e.log);
    long long keys = max_keys_in_memory(e.log), max_words = 2LL * FLOOD_CACHE + FLOOD_SLACK_WORDS;
    long long rss_mib = rss_kb / 1024, max_mib = FLOOD_BASE_MIB + max_words * FLOOD_WORD_BYTES / (1024 * 1024);
    fprintf(stderr, "flood of %d distinct words, state.cache.max.words=%d: at most %lld words in memory (bound %lld), "
            "peak RSS %lld MiB (bound %lld MiB)\n", WORDS, FLOOD_CACHE, keys, max_words, rss_mib, max_mib);
    /* The cache bound split the flood into several transactions although the timer never fired. */
    ASSERT_EQ(th_system("test $(grep -c 'epoch .* committed' %s) -ge 5", e.log), 0);
    ASSERT_GT(keys, 0);
    ASSERT_LE(keys, max_words);
    ASSERT_GT(rss_kb, 0);
    ASSERT_LE(rss_mib, max_mib);
    th_output_stats_t s = th_check_output(out, truth, 1);
    ASSERT_EQ(s.words, WORDS);
    th_counts_destroy(truth);
}

int main(void) {
    th_bootstrap();
    odd_records();
    distinct_flood();
    return 0;
}
