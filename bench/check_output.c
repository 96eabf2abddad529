/* SPDX-License-Identifier: MIT */
/* check-output: compares the last count per word on an output topic (read_committed) with a truth file
 * (WORD<TAB>COUNT lines, as tally-gen --truth writes). Three ways to find the moment to compare:
 *   once (default)        read the topic to its current end, compare
 *   --wait S              keep reading; the mismatch count is kept up to date record by record, and the
 *                         moment it reaches 0 is the time the output became exactly right
 *   --wait S --stable MS  poll the end offsets; once still for MS, read everything and compare
 *   --done-group G --input T   wait until group G committed every partition of T to its end (tally
 *                         commits its input offsets in the same transaction as its output), then read
 *                         the topic once and compare
 * Single-threaded; every object is owned by main. */
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "kclient.h"

#define CO_BATCH 4096
#define CO_IDLE_END_S 3.0 /* see read_all */
#define CO_NONE INT64_MIN /* no count seen / not in the truth */

static void usage(FILE *out) {
    fputs(
        "Usage: check-output --bootstrap HOST:PORT --topic OUTPUT --truth FILE [options]\n"
        "\n"
        "Reads the output topic as a read_committed consumer, keeps the last count per word (the record\n"
        "key is the word; a record without key has its word taken from the JSON value), and compares it\n"
        "with the truth file (WORD<TAB>COUNT lines). OK when every truth word's last count equals its\n"
        "true count and no other word appears.\n"
        "  --wait SECONDS     keep reading until OK or SECONDS passed; reports when it became OK\n"
        "  --settle SECONDS   with --wait: after OK, read SECONDS more and check again (overshoot)\n"
        "  --stable MS        with --wait: do not read while the engine writes; poll the output's end\n"
        "                     offsets every 100 ms and, once they have not moved for MS, read the topic\n"
        "                     from the beginning and compare; OK is dated when those end offsets were\n"
        "                     first seen (so reading does not compete with the engine for CPU)\n"
        "  --done-group G     first wait (up to --wait SECONDS, default 600) until group G committed\n"
        "  --input TOPIC      every partition of TOPIC to its end; that moment is when it became\n"
        "                     done; then read OUTPUT once and compare\n"
        "  --t0 EPOCH_S       start time (Unix seconds, fractional) to report seconds=ok_at-t0\n"
        "  --show N           print up to N mismatching words on stderr (default 5)\n"
        "  --quiet            no progress on stderr\n"
        "\n"
        "One line on stdout:\n"
        "  check-output check=OK|WRONG mismatches=M missing=A wrong=B extra=C decreases=D malformed=F\n"
        "               records=R truth_words=W counted_words=K truth_total=T ok_at=EPOCH seconds=S at=EPOCH\n"
        "mismatches = missing (truth words never seen) + wrong (last count differs) + extra (words not in\n"
        "the truth); decreases counts records whose count went below the word's previous one;\n"
        "counted_words = sum of min(last, true count) over the truth words: how much of the input the\n"
        "output covers (of truth_total), also when it is not done; at = when this line was printed.\n"
        "ok_at and seconds are 0 when not OK. Exit status: 0 OK, 1 WRONG or timeout, 2 usage/Kafka error.\n",
        out);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------------------------------------- */
/* Word table: open addressing over entry indexes; word bytes in one arena.                        */

typedef struct {
    uint64_t hash;
    uint64_t off; /* into arena */
    uint32_t len;
    int64_t truth; /* CO_NONE: an extra word */
    int64_t last;  /* CO_NONE: not seen */
} co_entry_t;

typedef struct {
    uint32_t *slots; /* entry index + 1; 0 empty */
    size_t mask;
    co_entry_t *e;
    size_t n, cap;
    uint8_t *arena;
    size_t alen, acap;
} co_tab_t;

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "check-output: out of memory\n");
        exit(2);
    }
    return q;
}

static void tab_grow(co_tab_t *t) {
    size_t ns = t->mask ? (t->mask + 1) * 2 : 1u << 16;
    uint32_t *s = calloc(ns, sizeof(*s));
    if (!s) {
        fprintf(stderr, "check-output: out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < t->n; i++) {
        size_t j = t->e[i].hash & (ns - 1);
        while (s[j]) j = (j + 1) & (ns - 1);
        s[j] = (uint32_t)(i + 1);
    }
    free(t->slots);
    t->slots = s;
    t->mask = ns - 1;
}

static co_entry_t *tab_get(co_tab_t *t, const uint8_t *w, uint32_t len, bool add) {
    if ((t->n + 1) * 2 > t->mask + 1) tab_grow(t);
    uint64_t h = XXH3_64bits(w, len);
    size_t j = h & t->mask;
    for (;;) {
        uint32_t at = t->slots[j];
        if (!at) break;
        co_entry_t *e = &t->e[at - 1];
        if (e->hash == h && e->len == len && memcmp(t->arena + e->off, w, len) == 0) return e;
        j = (j + 1) & t->mask;
    }
    if (!add) return NULL;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1u << 15;
        t->e = xrealloc(t->e, t->cap * sizeof(*t->e));
    }
    if (t->alen + len > t->acap) {
        while (t->alen + len > t->acap) t->acap = t->acap ? t->acap * 2 : 1u << 20;
        t->arena = xrealloc(t->arena, t->acap);
    }
    memcpy(t->arena + t->alen, w, len);
    co_entry_t *e = &t->e[t->n];
    *e = (co_entry_t){.hash = h, .off = t->alen, .len = len, .truth = CO_NONE, .last = CO_NONE};
    t->alen += len;
    t->slots[j] = (uint32_t)(++t->n);
    return e;
}

/* ---------------------------------------------------------------------------------------------- */
/* State of the comparison, kept up to date per record.                                            */

typedef struct {
    co_tab_t tab;
    size_t truth_words;
    size_t missing, wrong, extra; /* mismatches = their sum */
    uint64_t records, decreases, malformed;
} co_state_t;

static size_t mismatches(const co_state_t *s) { return s->missing + s->wrong + s->extra; }

static void load_truth(co_state_t *s, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n') line[--n] = 0;
        char *tab = memrchr(line, '\t', (size_t)n);
        if (!tab) {
            fprintf(stderr, "check-output: %s: line without a tab: %s\n", path, line);
            exit(2);
        }
        co_entry_t *e = tab_get(&s->tab, (const uint8_t *)line, (uint32_t)(tab - line), true);
        if (e->truth != CO_NONE) {
            fprintf(stderr, "check-output: %s: word twice: %.*s\n", path, (int)(tab - line), line);
            exit(2);
        }
        e->truth = strtoll(tab + 1, NULL, 10);
        s->truth_words++;
    }
    free(line);
    fclose(f);
    s->missing = s->truth_words;
}

/* The JSON string at p (just after its opening quote) decoded into out; returns its length or -1. */
static long json_string(const char *p, const char *end, uint8_t *out, size_t cap) {
    size_t o = 0;
    while (p < end && *p != '"') {
        unsigned c = (unsigned char)*p++;
        if (c == '\\') {
            if (p >= end) return -1;
            char x = *p++;
            switch (x) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                if (end - p < 4) return -1;
                char hex[5] = {p[0], p[1], p[2], p[3], 0};
                p += 4;
                unsigned cp = (unsigned)strtoul(hex, NULL, 16);
                if (cp >= 0xd800 && cp < 0xdc00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                    char lo[5] = {p[2], p[3], p[4], p[5], 0};
                    unsigned l = (unsigned)strtoul(lo, NULL, 16);
                    p += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (l - 0xdc00);
                }
                uint8_t u[4];
                size_t k;
                if (cp < 0x80) { u[0] = (uint8_t)cp; k = 1; }
                else if (cp < 0x800) { u[0] = (uint8_t)(0xc0 | cp >> 6); u[1] = (uint8_t)(0x80 | (cp & 63)); k = 2; }
                else if (cp < 0x10000) {
                    u[0] = (uint8_t)(0xe0 | cp >> 12); u[1] = (uint8_t)(0x80 | ((cp >> 6) & 63));
                    u[2] = (uint8_t)(0x80 | (cp & 63)); k = 3;
                } else {
                    u[0] = (uint8_t)(0xf0 | cp >> 18); u[1] = (uint8_t)(0x80 | ((cp >> 12) & 63));
                    u[2] = (uint8_t)(0x80 | ((cp >> 6) & 63)); u[3] = (uint8_t)(0x80 | (cp & 63)); k = 4;
                }
                if (o + k > cap) return -1;
                memcpy(out + o, u, k);
                o += k;
                continue;
            }
            default: c = (unsigned char)x; /* \" \\ \/ */
            }
        }
        if (o >= cap) return -1;
        out[o++] = (uint8_t)c;
    }
    return p < end ? (long)o : -1;
}

static void apply(co_state_t *s, const rd_kafka_message_t *m) {
    static uint8_t wbuf[1 << 20];
    const char *v = m->payload, *end = v ? v + m->len : NULL;
    s->records++;
    const char *cnt = v ? memmem(v, m->len, "\"count\":", 8) : NULL;
    if (!cnt) {
        s->malformed++;
        return;
    }
    int64_t count = strtoll(cnt + 8, NULL, 10);
    const uint8_t *w;
    uint32_t len;
    if (m->key) {
        w = m->key;
        len = (uint32_t)m->key_len;
    } else {
        const char *q = memmem(v, m->len, "{\"word\":\"", 9);
        long l = q ? json_string(q + 9, end, wbuf, sizeof(wbuf)) : -1;
        if (l < 0) {
            s->malformed++;
            return;
        }
        w = wbuf;
        len = (uint32_t)l;
    }
    co_entry_t *e = tab_get(&s->tab, w, len, true);
    if (e->truth == CO_NONE) {
        if (e->last == CO_NONE) s->extra++;
        e->last = count;
        return;
    }
    if (e->last == CO_NONE) s->missing--;
    else {
        if (count < e->last) s->decreases++;
        if (e->last != e->truth) s->wrong--;
    }
    e->last = count;
    if (count != e->truth) s->wrong++;
}

/* Words counted so far by the engine: the sum over truth words of min(last count, true count). With
 * cumulative counts this is how much of the input the output covers, even when it is not done. */
static uint64_t counted(const co_state_t *s) {
    uint64_t c = 0;
    for (size_t i = 0; i < s->tab.n; i++) {
        const co_entry_t *e = &s->tab.e[i];
        if (e->truth == CO_NONE || e->last == CO_NONE || e->last <= 0) continue;
        c += (uint64_t)(e->last < e->truth ? e->last : e->truth);
    }
    return c;
}

static uint64_t truth_total(const co_state_t *s) {
    uint64_t c = 0;
    for (size_t i = 0; i < s->tab.n; i++)
        if (s->tab.e[i].truth != CO_NONE) c += (uint64_t)s->tab.e[i].truth;
    return c;
}

static void show(const co_state_t *s, int n) {
    for (size_t i = 0; i < s->tab.n && n > 0; i++) {
        const co_entry_t *e = &s->tab.e[i];
        if (e->last == e->truth) continue;
        n--;
        fprintf(stderr, "check-output: %.*s: ", (int)e->len, (const char *)s->tab.arena + e->off);
        if (e->truth == CO_NONE) fprintf(stderr, "extra word, last count %" PRId64 "\n", e->last);
        else if (e->last == CO_NONE) fprintf(stderr, "missing, true count %" PRId64 "\n", e->truth);
        else fprintf(stderr, "last count %" PRId64 ", true count %" PRId64 "\n", e->last, e->truth);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Kafka                                                                                            */

static rd_kafka_t *consumer(const char *bootstrap, const char *group) {
    char err[512];
    tally_kclient_opts_t o = {.bootstrap = bootstrap, .group = group, .name = "check-output", .partition_eof = true,
                              .fetch_wait_max_ms = 50};
    rd_kafka_t *rk;
    if (tally_kclient_consumer_new(&rk, &o, err, sizeof(err))) {
        fprintf(stderr, "check-output: %s\n", err);
        exit(2);
    }
    return rk;
}

static int partitions(rd_kafka_t *rk, const char *topic) {
    char err[512];
    int n = tally_kclient_partitions(rk, topic, err, sizeof(err));
    if (n < 0) {
        fprintf(stderr, "check-output: %s\n", err);
        exit(2);
    }
    if (n < 1 || n > 100000) {
        fprintf(stderr, "check-output: topic %s has %d partitions\n", topic, n);
        exit(2);
    }
    return n;
}

/* A reader of every partition of topic from its beginning; *n gets the partition count. */
static rd_kafka_t *reader_from_start(const char *bootstrap, const char *topic, int *n) {
    rd_kafka_t *rk = consumer(bootstrap, NULL);
    *n = partitions(rk, topic);
    tally_kclient_assign_all(rk, topic, *n);
    return rk;
}

/* Waits until group committed every partition of topic to its end; returns the time or 0 on timeout. */
static double wait_group(const char *bootstrap, const char *group, const char *topic, double deadline) {
    rd_kafka_t *rk = consumer(bootstrap, group);
    int n = partitions(rk, topic);
    /* The end is the one at start: input written later is not this run's. */
    int64_t *hi = calloc((size_t)n, sizeof(*hi));
    if (tally_kclient_watermarks(rk, topic, n, NULL, hi, 10000)) {
        fprintf(stderr, "check-output: cannot read the end offsets of %s\n", topic);
        exit(2);
    }
    double at = 0;
    while (now_s() < deadline) {
        if (tally_kclient_group_reached(rk, topic, n, hi, true)) {
            at = now_s();
            break;
        }
        usleep(20000);
    }
    free(hi);
    rd_kafka_destroy(rk);
    return at;
}

static void report(const co_state_t *s, bool ok, double ok_at, double t0) {
    printf("check-output check=%s mismatches=%zu missing=%zu wrong=%zu extra=%zu decreases=%" PRIu64
           " malformed=%" PRIu64 " records=%" PRIu64 " truth_words=%zu counted_words=%" PRIu64
           " truth_total=%" PRIu64 " ok_at=%.3f seconds=%.3f at=%.3f\n",
           ok ? "OK" : "WRONG", mismatches(s), s->missing, s->wrong, s->extra, s->decreases, s->malformed,
           s->records, s->truth_words, counted(s), truth_total(s), ok_at, ok && t0 > 0 ? ok_at - t0 : 0.0, now_s());
}

/* Forgets every last count (the truth stays): before reading the topic again from its beginning. */
static void reset_counts(co_state_t *s) {
    for (size_t i = 0; i < s->tab.n; i++) s->tab.e[i].last = CO_NONE;
    s->missing = s->truth_words;
    s->wrong = s->extra = 0;
    s->records = s->decreases = s->malformed = 0;
}

/* Reads the whole topic from its beginning to the end it has when each partition is reached. */
static void read_all(const char *bootstrap, const char *topic, co_state_t *s) {
    int n;
    rd_kafka_t *rk = reader_from_start(bootstrap, topic, &n);
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    char *eof = calloc(n > 0 ? (size_t)n : 1, 1);
    int eofs = 0;
    rd_kafka_message_t *msgs[CO_BATCH];
    /* librdkafka signals a partition's end only at its high watermark; while the engine keeps a
     * transaction open there, a read_committed reader stops short of it (at the last stable offset) and
     * never sees that end: so 3 s without any record also ends the read. */
    double last = now_s();
    while (eofs < n && now_s() - last < CO_IDLE_END_S) {
        ssize_t got = rd_kafka_consume_batch_queue(q, 100, msgs, CO_BATCH);
        if (got > 0) last = now_s();
        for (ssize_t i = 0; i < got; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (!m->err) apply(s, m);
            else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (!eof[m->partition]) { eof[m->partition] = 1; eofs++; }
            } else fprintf(stderr, "check-output: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
        }
    }
    free(eof);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

/* --stable: returns when the output became right (0: not within the deadline). */
static double wait_stable(const char *bootstrap, const char *topic, co_state_t *s, double stable, double deadline,
                          int quiet) {
    rd_kafka_t *rk = consumer(bootstrap, NULL);
    int n = partitions(rk, topic);
    int64_t *cur = calloc((size_t)n, sizeof(*cur)), *seen = calloc((size_t)n, sizeof(*seen)),
            *checked = calloc((size_t)n, sizeof(*checked));
    double seen_at = 0, ok_at = 0;
    bool any_checked = false;
    while (now_s() < deadline) {
        if (tally_kclient_watermarks(rk, topic, n, NULL, cur, 5000)) {
            usleep(100000);
            continue;
        }
        double now = now_s();
        if (!seen_at || memcmp(cur, seen, (size_t)n * sizeof(*cur)) != 0) {
            memcpy(seen, cur, (size_t)n * sizeof(*cur));
            seen_at = now;
        } else if (now - seen_at >= stable &&
                   (!any_checked || memcmp(seen, checked, (size_t)n * sizeof(*cur)) != 0)) {
            int64_t total = 0;
            for (int i = 0; i < n; i++) total += seen[i];
            if (total > 0) {
                memcpy(checked, seen, (size_t)n * sizeof(*cur));
                any_checked = true;
                reset_counts(s);
                read_all(bootstrap, topic, s);
                if (!quiet)
                    fprintf(stderr, "check-output: output still for %.1f s at %lld records: %zu mismatches\n",
                            now - seen_at, (long long)total, mismatches(s));
                if (mismatches(s) == 0 && s->malformed == 0) {
                    ok_at = seen_at;
                    break;
                }
            }
        }
        usleep(100000);
    }
    free(cur);
    free(seen);
    free(checked);
    rd_kafka_destroy(rk);
    return ok_at;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"bootstrap", required_argument, NULL, 'b'}, {"topic", required_argument, NULL, 't'},
        {"truth", required_argument, NULL, 'r'},     {"wait", required_argument, NULL, 'w'},
        {"settle", required_argument, NULL, 's'},    {"done-group", required_argument, NULL, 'g'},
        {"input", required_argument, NULL, 'i'},     {"t0", required_argument, NULL, '0'},
        {"show", required_argument, NULL, 'S'},      {"quiet", no_argument, NULL, 'q'},
        {"stable", required_argument, NULL, 'Z'},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0},
    };
    const char *bootstrap = NULL, *topic = NULL, *truth = NULL, *group = NULL, *input = NULL;
    double wait = -1, settle = 0, t0 = 0, stable = 0;
    int nshow = 5, quiet = 0, opt;
    while ((opt = getopt_long(argc, argv, "b:t:r:w:s:g:i:0:S:Z:qh", opts, NULL)) != -1) {
        switch (opt) {
        case 'b': bootstrap = optarg; break;
        case 't': topic = optarg; break;
        case 'r': truth = optarg; break;
        case 'w': wait = atof(optarg); break;
        case 's': settle = atof(optarg); break;
        case 'g': group = optarg; break;
        case 'i': input = optarg; break;
        case '0': t0 = atof(optarg); break;
        case 'S': nshow = atoi(optarg); break;
        case 'q': quiet = 1; break;
        case 'Z': stable = atof(optarg) / 1000.0; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!bootstrap || !topic || !truth || (!group != !input)) {
        fprintf(stderr, "check-output: --bootstrap, --topic and --truth are required; --done-group goes with --input\n");
        usage(stderr);
        return 2;
    }
    double start = now_s();
    co_state_t s = {0};
    load_truth(&s, truth);

    double done_at = 0;
    if (group) {
        done_at = wait_group(bootstrap, group, input, start + (wait >= 0 ? wait : 600));
        if (!done_at) fprintf(stderr, "check-output: group %s did not commit all of %s in time\n", group, input);
        wait = -1; /* then read the output once */
    }

    if (stable > 0 && wait >= 0) {
        double ok_at = wait_stable(bootstrap, topic, &s, stable, start + wait, quiet);
        if (!ok_at) { /* timed out: one last read; right by then means right no later than then */
            reset_counts(&s);
            read_all(bootstrap, topic, &s);
            ok_at = now_s();
        }
        bool ok = ok_at && mismatches(&s) == 0 && s.malformed == 0;
        if (!ok && nshow > 0) show(&s, nshow);
        report(&s, ok, ok ? ok_at : 0.0, t0);
        return ok ? 0 : 1;
    }

    int n;
    rd_kafka_t *rk = reader_from_start(bootstrap, topic, &n);
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);

    char *eof = calloc(n > 0 ? (size_t)n : 1, 1);
    int eofs = 0;
    double ok_at = 0, deadline = wait >= 0 ? start + wait : 0, next_note = start + 5, last_rec = now_s();
    rd_kafka_message_t *msgs[CO_BATCH];
    for (;;) {
        ssize_t got = rd_kafka_consume_batch_queue(q, 100, msgs, CO_BATCH);
        if (got < 0) {
            fprintf(stderr, "check-output: consume failed: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
            return 2;
        }
        for (ssize_t i = 0; i < got; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (!m->err) {
                apply(&s, m);
                if (eof[m->partition]) { eof[m->partition] = 0; eofs--; }
            } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (!eof[m->partition]) { eof[m->partition] = 1; eofs++; }
            } else {
                fprintf(stderr, "check-output: %s\n", rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
        }
        double now = now_s();
        if (got > 0) last_rec = now;
        if (wait < 0) {
            if (eofs == n || now - last_rec >= CO_IDLE_END_S) break; /* see read_all */
            continue;
        }
        /* --wait: the first moment with no mismatch is when the output became right */
        if (!ok_at && mismatches(&s) == 0) {
            ok_at = now;
            if (settle <= 0) break;
            deadline = now + settle;
        }
        if (ok_at && mismatches(&s) != 0) ok_at = 0; /* overshoot: it was not right after all */
        if (now >= deadline) break;
        if (!quiet && now >= next_note) {
            fprintf(stderr, "check-output: %.0f s: %" PRIu64 " records, %zu mismatches\n", now - start, s.records,
                    mismatches(&s));
            next_note = now + 5;
        }
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    free(eof);

    bool ok = mismatches(&s) == 0 && s.malformed == 0;
    if (group) ok_at = ok && done_at ? done_at : 0;
    else if (wait < 0) ok_at = ok ? now_s() : 0;
    if (!ok) ok_at = 0;
    if (!ok && nshow > 0) show(&s, nshow);
    report(&s, ok, ok_at, t0);
    return ok ? 0 : 1;
}
