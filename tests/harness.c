/* SPDX-License-Identifier: MIT */
/* Broker helpers for the kafka and fault suites. */
#include "harness.h"
#include "kclient.h"
#include "tally/clock.h"

#include <stdarg.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double th_now(void) { return tally_mono_s(); }

const char *th_bootstrap(void) {
    const char *b = getenv("TALLY_BOOTSTRAP");
    if (b && *b) return b;
    const char *req = getenv("TALLY_REQUIRE_BROKER");
    if (req && strcmp(req, "1") == 0) {
        fprintf(stderr, "FAIL: TALLY_REQUIRE_BROKER=1 but TALLY_BOOTSTRAP is not set\n");
        exit(1);
    }
    fprintf(stderr, "SKIP: no broker (set TALLY_BOOTSTRAP, e.g. with scripts/kafka-local start)\n");
    exit(TH_SKIP);
}

/* Names live until exit; a test makes at most a few hundred. */
static char unique_names[512][96];

const char *th_unique(const char *prefix) {
    static int n;
    if (n >= (int)(sizeof(unique_names) / sizeof(unique_names[0]))) TH_FAIL("too many unique names");
    char *s = unique_names[n];
    snprintf(s, sizeof(unique_names[0]), "%s-%d-%ld-%d", prefix, (int)getpid(), (long)time(NULL), n);
    n++;
    return s;
}

static rd_kafka_conf_t *base_conf(void) {
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", th_bootstrap(), err, sizeof(err)) != RD_KAFKA_CONF_OK)
        TH_FAIL("conf: %s", err);
    return c;
}

static void conf_set(rd_kafka_conf_t *c, const char *k, const char *v) {
    char err[512];
    if (rd_kafka_conf_set(c, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) TH_FAIL("conf %s=%s: %s", k, v, err);
}

static rd_kafka_t *reader(const tally_kclient_opts_t *o) {
    char err[512];
    rd_kafka_t *rk;
    if (tally_kclient_consumer_new(&rk, o, err, sizeof(err))) TH_FAIL("consumer: %s", err);
    return rk;
}

/* A consumer in the group, to read its committed offsets (it never joins). */
static rd_kafka_t *group_reader(const char *group) {
    tally_kclient_opts_t o = {.bootstrap = th_bootstrap(), .group = group};
    return reader(&o);
}

static int partition_count(rd_kafka_t *rk, const char *topic) {
    char err[512];
    int n = tally_kclient_partitions(rk, topic, err, sizeof(err));
    if (n < 0) TH_FAIL("%s", err);
    return n;
}

static void admin_wait(rd_kafka_t *rk, rd_kafka_queue_t *q, rd_kafka_event_type_t type) {
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    if (!ev) TH_FAIL("admin request timed out");
    if (rd_kafka_event_type(ev) != type) TH_FAIL("admin: unexpected event %s", rd_kafka_event_name(ev));
    if (rd_kafka_event_error(ev)) TH_FAIL("admin: %s", rd_kafka_event_error_string(ev));
    const rd_kafka_topic_result_t **res = NULL;
    size_t n = 0;
    if (type == RD_KAFKA_EVENT_CREATETOPICS_RESULT)
        res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    else
        res = rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &n);
    for (size_t i = 0; i < n; i++)
        if (rd_kafka_topic_result_error(res[i]) && rd_kafka_topic_result_error(res[i]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            TH_FAIL("admin on %s: %s", rd_kafka_topic_result_name(res[i]), rd_kafka_topic_result_error_string(res[i]));
    rd_kafka_event_destroy(ev);
    (void)rk;
}

static void wait_partitions(rd_kafka_t *rk, const char *topic, int partitions) {
    for (int tries = 0; tries < 300; tries++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
        int ok = 0;
        if (rd_kafka_metadata(rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt == partitions) {
                ok = 1;
                for (int i = 0; i < partitions; i++)
                    if (md->topics[0].partitions[i].leader < 0) ok = 0;
            }
            rd_kafka_metadata_destroy(md);
        }
        rd_kafka_topic_destroy(t);
        if (ok) return;
        usleep(100000);
    }
    TH_FAIL("topic %s did not get %d partitions with leaders", topic, partitions);
}

void th_create_topic(const char *topic, int partitions) { th_create_topic_config(topic, partitions, NULL); }

void th_create_topic_config(const char *topic, int partitions, const char *const *configs) {
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, base_conf(), err, sizeof(err));
    if (!rk) TH_FAIL("rd_kafka_new: %s", err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, err, sizeof(err));
    if (!nt) TH_FAIL("NewTopic: %s", err);
    for (int i = 0; configs && configs[i]; i++) {
        char key[256];
        const char *eq = strchr(configs[i], '=');
        if (!eq || (size_t)(eq - configs[i]) >= sizeof(key)) TH_FAIL("topic config %s: not key=value", configs[i]);
        snprintf(key, sizeof(key), "%.*s", (int)(eq - configs[i]), configs[i]);
        if (rd_kafka_NewTopic_set_config(nt, key, eq + 1)) TH_FAIL("topic config %s refused", configs[i]);
    }
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    admin_wait(rk, q, RD_KAFKA_EVENT_CREATETOPICS_RESULT);
    rd_kafka_NewTopic_destroy(nt);
    wait_partitions(rk, topic, partitions);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

void th_add_partitions(const char *topic, int total) {
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, base_conf(), err, sizeof(err));
    if (!rk) TH_FAIL("rd_kafka_new: %s", err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_NewPartitions_t *np = rd_kafka_NewPartitions_new(topic, (size_t)total, err, sizeof(err));
    if (!np) TH_FAIL("NewPartitions: %s", err);
    rd_kafka_CreatePartitions(rk, &np, 1, NULL, q);
    admin_wait(rk, q, RD_KAFKA_EVENT_CREATEPARTITIONS_RESULT);
    rd_kafka_NewPartitions_destroy(np);
    wait_partitions(rk, topic, total);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

rd_kafka_t *th_producer(void) {
    char err[512];
    rd_kafka_conf_t *c = base_conf();
    conf_set(c, "enable.idempotence", "true");
    conf_set(c, "linger.ms", "5");
    conf_set(c, "queue.buffering.max.messages", "1000000");
    conf_set(c, "topic.metadata.refresh.interval.ms", "500"); /* sees added partitions soon */
    conf_set(c, "message.max.bytes", "10000000");             /* bad-input records near the broker limit */
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    if (!p) TH_FAIL("producer: %s", err);
    return p;
}

void th_produce(rd_kafka_t *p, const char *topic, int32_t partition, const void *key, size_t klen,
                const void *val, size_t vlen) {
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
            RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) TH_FAIL("produce to %s: %s", topic, rd_kafka_err2str(e));
        rd_kafka_poll(p, 10);
    }
}

void th_produce_at(rd_kafka_t *p, const char *topic, int32_t partition, const void *val, size_t vlen, int64_t ts) {
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
            RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) TH_FAIL("produce to %s: %s", topic, rd_kafka_err2str(e));
        rd_kafka_poll(p, 10);
    }
}

void th_flush_destroy(rd_kafka_t *p) {
    rd_kafka_resp_err_t e = rd_kafka_flush(p, 60000);
    if (e) TH_FAIL("flush: %s", rd_kafka_err2str(e));
    rd_kafka_destroy(p);
}

long th_consume_all(const char *topic, int read_committed, th_record_cb cb, void *opaque) {
    tally_kclient_opts_t o = {.bootstrap = th_bootstrap(), .group = th_unique("th-reader"),
                              .read_uncommitted = !read_committed, .partition_eof = true};
    rd_kafka_t *rk = reader(&o);
    rd_kafka_poll_set_consumer(rk);
    int parts = partition_count(rk, topic);
    if (tally_kclient_assign_all(rk, topic, parts)) TH_FAIL("assign %s", topic);

    long n = 0;
    int eofs = 0;
    char *at_eof = calloc((size_t)parts, 1);
    ASSERT(at_eof);
    /* A large topic takes as long as it takes; only a reader that stops getting anything fails. */
    double idle_since = th_now();
    while (eofs < parts) {
        if (th_now() - idle_since > 120) TH_FAIL("reading %s: nothing for 120 s before its end", topic);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m) continue;
        idle_since = th_now();
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (!at_eof[m->partition]) { at_eof[m->partition] = 1; eofs++; }
        }
        else if (m->err) TH_FAIL("consume %s: %s", topic, rd_kafka_message_errstr(m));
        else { n++; if (cb) cb(m, opaque); }
        rd_kafka_message_destroy(m);
    }
    free(at_eof);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

int th_system(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    if (st == -1) return -1;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

/* ---- counts ---- */

typedef struct {
    char *word;
    size_t len;
    long long count;
    unsigned long long hash;
} th_entry_t;

struct th_counts_s {
    th_entry_t *slots;
    size_t cap, n;
};

static unsigned long long fnv(const void *p, size_t n) {
    const unsigned char *s = p;
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

th_counts_t *th_counts_new(void) {
    th_counts_t *c = calloc(1, sizeof(*c));
    ASSERT(c);
    c->cap = 1024;
    c->slots = calloc(c->cap, sizeof(th_entry_t));
    ASSERT(c->slots);
    return c;
}

void th_counts_destroy(th_counts_t *c) {
    for (size_t i = 0; i < c->cap; i++) free(c->slots[i].word);
    free(c->slots);
    free(c);
}

static th_entry_t *counts_slot(th_counts_t *c, const void *w, size_t len, unsigned long long h) {
    size_t i = (size_t)h & (c->cap - 1);
    while (c->slots[i].word && !(c->slots[i].hash == h && c->slots[i].len == len && memcmp(c->slots[i].word, w, len) == 0))
        i = (i + 1) & (c->cap - 1);
    return &c->slots[i];
}

long long th_counts_add(th_counts_t *c, const void *word, size_t len, long long delta) {
    if ((c->n + 1) * 2 > c->cap) {
        th_entry_t *old = c->slots;
        size_t oc = c->cap;
        c->cap *= 2;
        c->slots = calloc(c->cap, sizeof(th_entry_t));
        ASSERT(c->slots);
        for (size_t i = 0; i < oc; i++)
            if (old[i].word) *counts_slot(c, old[i].word, old[i].len, old[i].hash) = old[i];
        free(old);
    }
    unsigned long long h = fnv(word, len);
    th_entry_t *e = counts_slot(c, word, len, h);
    if (!e->word) {
        e->word = malloc(len ? len : 1);
        ASSERT(e->word);
        memcpy(e->word, word, len);
        e->len = len;
        e->hash = h;
        c->n++;
    }
    e->count += delta;
    return e->count;
}

long long th_counts_get(th_counts_t *c, const void *word, size_t len) {
    th_entry_t *e = counts_slot(c, word, len, fnv(word, len));
    return e->word ? e->count : 0;
}

size_t th_counts_size(th_counts_t *c) { return c->n; }

void th_counts_foreach(th_counts_t *c, th_counts_cb cb, void *opaque) {
    for (size_t i = 0; i < c->cap; i++)
        if (c->slots[i].word) cb(c->slots[i].word, c->slots[i].len, c->slots[i].count, opaque);
}

static void dump_word(const void *word, size_t len, long long count, void *opaque) {
    FILE *f = opaque;
    for (size_t i = 0; i < len; i++) fprintf(f, "%02x", ((const unsigned char *)word)[i]);
    fprintf(f, "\t%lld\n", count);
}

void th_counts_dump(th_counts_t *c, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) TH_FAIL("cannot write %s", path);
    th_counts_foreach(c, dump_word, f);
    fclose(f);
}

void th_check_files(const char *dir, const char *format, th_counts_t *truth) {
    char truth_path[600];
    snprintf(truth_path, sizeof(truth_path), "%s.truth.tsv", dir);
    th_counts_dump(truth, truth_path);
    const char *src = getenv("TALLY_SOURCE_DIR"), *pq = getenv("TALLY_PQ_DUMP");
    if (!src) TH_FAIL("TALLY_SOURCE_DIR is not set (meson sets it)");
    if (strcmp(format, "parquet") == 0 && !pq) TH_FAIL("TALLY_PQ_DUMP is not set (meson sets it)");
    ASSERT_EQ(th_system("python3 %s/tests/check_files.py %s %s %s%s%s%s", src, dir, format, truth_path,
                        pq ? " '" : "", pq ? pq : "", pq ? "'" : ""), 0);
    /* DuckDB (npm, installed into tests/readers by scripts/test) reads the same files. */
    if (th_system("test -d %s/tests/readers/node_modules/@duckdb/node-api", src) != 0) {
        const char *req = getenv("TALLY_REQUIRE_BROKER");
        if (req && strcmp(req, "1") == 0)
            TH_FAIL("DuckDB is not installed in tests/readers (scripts/test runs npm ci there)");
        fprintf(stderr, "DuckDB check skipped: run `npm ci` in tests/readers to have it\n");
        return;
    }
    ASSERT_EQ(th_system("node %s/tests/readers/check-duckdb.mjs %s %s %s", src, dir, format, truth_path), 0);
    /* Spark (the peer's build; scripts/test sets TALLY_SPARK_READ) reads the directory through its log. */
    const char *spark = getenv("TALLY_SPARK_READ");
    if (!spark || !*spark) {
        fprintf(stderr, "Spark check skipped: TALLY_SPARK_READ names bench/peers/read-output\n");
        return;
    }
    ASSERT_EQ(th_system("%s spark %s %s --mode last > %s.spark.jsonl", spark, strcmp(format, "jsonl") == 0 ? "json" : format,
                        dir, dir), 0);
    ASSERT_EQ(th_system("python3 %s/tests/check_files.py --last %s < %s.spark.jsonl", src, truth_path, dir), 0);
}

static int is_space(unsigned char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

void th_counts_add_line(th_counts_t *c, const void *line, size_t len) {
    const unsigned char *s = line;
    size_t i = 0;
    while (i < len) {
        while (i < len && is_space(s[i])) i++;
        size_t start = i;
        while (i < len && !is_space(s[i])) i++;
        if (i > start) th_counts_add(c, s + start, i - start, 1);
    }
}

/* ---- output checking ---- */

/* Length of a valid UTF-8 sequence at s, 0 if invalid (independent of src/json.c). */
static size_t utf8_valid_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (!need || need > n || c > 0xF4 || c == 0xC0 || c == 0xC1) return 0;
    unsigned long cp = c & (0xFFu >> (need + 1));
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const unsigned long minv[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < minv[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return need;
}

static int utf8_valid(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t l = utf8_valid_len(s + i, n - i);
        if (!l) return 0;
        i += l;
    }
    return 1;
}

/* Parses a JSON string at *p (after the opening quote) into out; returns its length or -1. */
static long json_string(const char **p, const char *end, char *out) {
    const char *s = *p;
    long n = 0;
    while (s < end && *s != '"') {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20) return -1;
        if (ch != '\\') { out[n++] = (char)ch; s++; continue; }
        if (++s >= end) return -1;
        switch (*s) {
        case '"': out[n++] = '"'; break;
        case '\\': out[n++] = '\\'; break;
        case '/': out[n++] = '/'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            if (end - s < 5) return -1;
            unsigned v = 0;
            for (int k = 1; k <= 4; k++) {
                char h = s[k];
                v = v * 16 + (unsigned)(h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                        : h >= 'A' && h <= 'F' ? h - 'A' + 10 : 99);
                if (v > 0xFFFF) return -1;
            }
            if (v >= 0x80) return -1; /* the engine escapes only control bytes */
            out[n++] = (char)v;
            s += 4;
            break;
        }
        default: return -1;
        }
        s++;
    }
    if (s >= end) return -1;
    *p = s + 1;
    return n;
}

typedef struct {
    th_counts_t *last;
    th_counts_t *truth;
    int strict;
    th_output_stats_t st;
    const char *topic;
    int markers;
} out_ctx_t;

/* A key no word can be (it has spaces): written after the engine stopped, it becomes readable to a
 * read_committed reader only if no transaction before it was left open. */
static const char marker_key[] = "tally test marker";

static void check_record(const rd_kafka_message_t *m, void *opaque) {
    out_ctx_t *c = opaque;
    if (m->key && m->key_len == sizeof(marker_key) - 1 && memcmp(m->key, marker_key, m->key_len) == 0) {
        c->markers++;
        return;
    }
    c->st.records++;
    const char *v = m->payload, *end = v + m->len;
    if (!m->key || !m->payload) TH_FAIL("output record at %s[%d]@%lld has no key or value", c->topic, (int)m->partition, (long long)m->offset);
    if (!utf8_valid((const unsigned char *)v, m->len))
        TH_FAIL("output value at offset %lld is not valid UTF-8", (long long)m->offset);
    static const char head[] = "{\"word\":\"";
    if (m->len < sizeof(head) || memcmp(v, head, sizeof(head) - 1) != 0)
        TH_FAIL("output value is not {\"word\":...: %.*s", (int)m->len, v);
    const char *p = v + sizeof(head) - 1;
    char *word = malloc(m->len + 1);
    ASSERT(word);
    long wl = json_string(&p, end, word);
    if (wl < 0) TH_FAIL("bad JSON string in %.*s", (int)m->len, v);
    static const char mid[] = ",\"count\":";
    if ((size_t)(end - p) < sizeof(mid) || memcmp(p, mid, sizeof(mid) - 1) != 0) TH_FAIL("bad JSON: %.*s", (int)m->len, v);
    p += sizeof(mid) - 1;
    char *num_end = NULL;
    long long count = strtoll(p, &num_end, 10);
    if (num_end == p || num_end + 1 != end || *num_end != '}') TH_FAIL("bad JSON count: %.*s", (int)m->len, v);
    /* The value's word is the key's bytes where those are valid UTF-8. */
    if (utf8_valid(m->key, m->key_len) && ((size_t)wl != m->key_len || memcmp(word, m->key, m->key_len) != 0))
        TH_FAIL("value word \"%.*s\" differs from key \"%.*s\"", (int)wl, word, (int)m->key_len, (const char *)m->key);
    free(word);
    if (count <= 0) TH_FAIL("count %lld <= 0 for \"%.*s\"", count, (int)m->key_len, (const char *)m->key);
    long long prev = th_counts_get(c->last, m->key, m->key_len);
    long long truth = th_counts_get(c->truth, m->key, m->key_len);
    if (count > truth)
        TH_FAIL("count of \"%.*s\" is %lld, more than its true count %lld (offset %lld)", (int)m->key_len,
                (const char *)m->key, count, truth, (long long)m->offset);
    if (count < prev) {
        /* at_least_once: output delivered before a crash may be ahead of the first epoch after the restart,
         * whose cut can fall before the lost epoch's; never ahead of the truth (checked above). */
        if (c->strict)
            TH_FAIL("count of \"%.*s\" went down: %lld after %lld (offset %lld)", (int)m->key_len,
                    (const char *)m->key, count, prev, (long long)m->offset);
        c->st.regressions++;
    }
    if (count == prev) {
        c->st.duplicates++;
        if (c->strict)
            TH_FAIL("count of \"%.*s\" repeated: %lld twice (offset %lld)", (int)m->key_len, (const char *)m->key,
                    count, (long long)m->offset);
    }
    th_counts_add(c->last, m->key, m->key_len, count - prev);
}

static void check_final(const void *word, size_t len, long long count, void *opaque) {
    out_ctx_t *c = opaque;
    long long got = th_counts_get(c->last, word, len);
    if (got != count) TH_FAIL("final count of \"%.*s\": output says %lld, truth is %lld", (int)len, (const char *)word, got, count);
    c->st.words++;
}

static void check_extra(const void *word, size_t len, long long count, void *opaque) {
    out_ctx_t *c = opaque;
    if (th_counts_get(c->truth, word, len) == 0)
        TH_FAIL("output has \"%.*s\" (count %lld), which is not in the input", (int)len, (const char *)word, count);
}

th_output_stats_t th_check_output(const char *topic, th_counts_t *truth, int strict) {
    out_ctx_t c = {.last = th_counts_new(), .truth = truth, .strict = strict, .topic = topic};
    rd_kafka_t *p = th_producer();
    int parts = partition_count(p, topic);
    for (int i = 0; i < parts; i++) th_produce(p, topic, i, marker_key, sizeof(marker_key) - 1, "marker", 6);
    th_flush_destroy(p);
    th_consume_all(topic, 1, check_record, &c);
    if (c.markers != parts)
        TH_FAIL("%s: %d of %d marker records readable: a transaction was left open", topic, c.markers, parts);
    th_counts_foreach(truth, check_final, &c);
    th_counts_foreach(c.last, check_extra, &c);
    th_counts_destroy(c.last);
    fprintf(stderr, "output %s: %ld records, %ld words exact, %ld repeated counts, %ld counts below an earlier one\n",
            topic, c.st.records, c.st.words, c.st.duplicates, c.st.regressions);
    return c.st;
}

typedef struct {
    th_counts_t *last, *truth;
    size_t at_truth; /* words of truth whose last output count is the true one */
} settle_ctx_t;

static void settle_record(const rd_kafka_message_t *m, void *opaque) {
    settle_ctx_t *c = opaque;
    if (!m->key || !m->payload) return;
    const char *v = memmem(m->payload, m->len, "\"count\":", 8);
    if (!v) return;
    long long count = strtoll(v + 8, NULL, 10), truth = th_counts_get(c->truth, m->key, m->key_len);
    long long prev = th_counts_get(c->last, m->key, m->key_len);
    if (truth && prev == truth) c->at_truth--;
    if (truth && count == truth) c->at_truth++;
    th_counts_add(c->last, m->key, m->key_len, count - prev);
}

void th_wait_output(const char *topic, th_counts_t *truth, double timeout_s, th_engine_t *const *engines, int n) {
    settle_ctx_t c = {.last = th_counts_new(), .truth = truth};
    tally_kclient_opts_t o = {.bootstrap = th_bootstrap(), .group = th_unique("th-settle")};
    rd_kafka_t *rk = reader(&o);
    rd_kafka_poll_set_consumer(rk);
    if (tally_kclient_assign_all(rk, topic, partition_count(rk, topic))) TH_FAIL("assign %s", topic);
    double t0 = th_now(), checked = 0;
    size_t want = th_counts_size(truth);
    while (c.at_truth < want) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m && m->err) TH_FAIL("consume %s: %s", topic, rd_kafka_message_errstr(m));
        if (m) {
            settle_record(m, &c);
            rd_kafka_message_destroy(m);
            continue;
        }
        if (th_now() - checked < 1) continue;
        checked = th_now();
        for (int i = 0; i < n; i++)
            if (!th_engine_alive(engines[i])) {
                th_engine_dump_log(engines[i], 40);
                TH_FAIL("%s exited (status %d) before the output settled: %zu of %zu words at their true count",
                        engines[i]->log, engines[i]->status, c.at_truth, want);
            }
        if (th_now() - t0 > timeout_s)
            TH_FAIL("%s did not settle within %.0f s: %zu of %zu words at their true count", topic, timeout_s, c.at_truth,
                    want);
    }
    fprintf(stderr, "output %s settled: %zu words at their true count after %.1f s\n", topic, want, th_now() - t0);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    th_counts_destroy(c.last);
}

/* ---- the engine as a subprocess ---- */

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

const char *th_tally_bin(void) {
    const char *b = getenv("TALLY_BIN");
    if (!b || !*b) TH_FAIL("TALLY_BIN is not set (meson sets it)");
    return b;
}

void th_engine_init(th_engine_t *e, const char *app_id, const char *input, const char *output, const char *extra) {
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/tally-test-XXXXXX");
    if (!mkdtemp(e->dir)) TH_FAIL("mkdtemp");
    snprintf(e->conf, sizeof(e->conf), "%s/job.properties", e->dir);
    snprintf(e->log, sizeof(e->log), "%s/engine.log", e->dir);
    snprintf(e->out, sizeof(e->out), "%s/engine.out", e->dir);
    FILE *f = fopen(e->conf, "w");
    ASSERT(f);
    fprintf(f, "bootstrap.servers=%s\napplication.id=%s\ninput.topic=%s\n%s%s%sstate.dir=%s/state\n"
               "trigger.interval.ms=200\n%s\n",
            th_bootstrap(), app_id, input, output ? "output.topic=" : "", output ? output : "", output ? "\n" : "",
            e->dir, extra ? extra : "");
    fclose(f);
    e->pid = -1;
}

void th_engine_init_files(th_engine_t *e, const char *app_id, const char *input_path, const char *extra) {
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/tally-test-XXXXXX");
    if (!mkdtemp(e->dir)) TH_FAIL("mkdtemp");
    snprintf(e->conf, sizeof(e->conf), "%s/job.properties", e->dir);
    snprintf(e->log, sizeof(e->log), "%s/engine.log", e->dir);
    snprintf(e->out, sizeof(e->out), "%s/engine.out", e->dir);
    FILE *f = fopen(e->conf, "w");
    ASSERT(f);
    fprintf(f, "application.id=%s\ninput.path=%s\nstate.dir=%s/state\ntrigger.interval.ms=200\n%s\n", app_id,
            input_path, e->dir, extra ? extra : "");
    fclose(f);
    e->pid = -1;
}

void th_write_file(const char *dir, const char *name, const void *data, size_t len) {
    char tmp[700], path[700];
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(tmp, "wb");
    if (!f) TH_FAIL("cannot write %s", tmp);
    if (len && fwrite(data, 1, len, f) != len) TH_FAIL("cannot write %s", tmp);
    if (fclose(f) != 0 || rename(tmp, path) != 0) TH_FAIL("cannot place %s", path);
}

void th_engine_append_conf(th_engine_t *e, const char *lines) {
    FILE *f = fopen(e->conf, "a");
    if (!f) TH_FAIL("cannot append to %s", e->conf);
    fputs(lines, f);
    fclose(f);
}

/* Engines still running when a test fails are killed at exit, so no orphan outlives the test. */
static pid_t started[64];
static int nstarted;

static void kill_started(void) {
    for (int i = 0; i < nstarted; i++)
        if (started[i] > 0 && kill(started[i], 0) == 0) kill(started[i], SIGKILL);
}

void th_engine_start(th_engine_t *e) {
    if (nstarted == 0) atexit(kill_started);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        int fd = open(e->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int fo = open(e->out, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0 || fo < 0) _exit(126);
        dup2(fd, 2);
        dup2(fo, 1);
        /* As nobody, for a test of files root could read anyway. */
        if (getenv("TH_ENGINE_SETPRIV"))
            execlp("setpriv", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", th_tally_bin(), "--config",
                   e->conf, (char *)NULL);
        execl(th_tally_bin(), "tally", "--config", e->conf, (char *)NULL);
        _exit(127);
    }
    e->pid = pid;
    e->starts++;
    if (nstarted < (int)(sizeof(started) / sizeof(started[0]))) started[nstarted++] = pid;
}

void th_engine_wait_started(th_engine_t *e, double timeout_s) {
    double deadline = th_now() + timeout_s;
    /* Every start logs one "starting:" line, after stop signals are held for the engine. */
    while (th_system("c=$(grep -c '\\[ctl\\] starting:' %s 2>/dev/null); test \"${c:-0}\" -ge %d", e->log, e->starts) != 0) {
        if (th_now() > deadline) TH_FAIL("engine did not start within %.0f s", timeout_s);
        if (!th_engine_alive(e)) {
            th_engine_dump_log(e, 30);
            TH_FAIL("engine exited during start-up");
        }
        usleep(20000);
    }
}

/* The log of the last started instance: the text after its "starting:" line, or NULL before it has
 * one. *buf gets the whole log (caller frees). */
static const char *current_log(th_engine_t *e, char **buf) {
    *buf = th_read_file(e->log, NULL);
    const char *p = *buf;
    for (int n = 0; p && n < e->starts; n++) {
        p = strstr(p, "[ctl] starting:");
        if (p) p++;
    }
    return p;
}

void th_engine_wait_positioned(th_engine_t *e, const char *topic, int partitions, double timeout_s) {
    double deadline = th_now() + timeout_s;
    for (int p = 0; p < partitions;) {
        char *buf, want[300];
        snprintf(want, sizeof(want), " %s[%d] starts at offset ", topic, p);
        const char *log = current_log(e, &buf);
        int found = log && strstr(log, want);
        free(buf);
        if (found) { p++; continue; }
        th_engine_require_alive(e, "before it started reading its input");
        if (th_now() > deadline) {
            th_engine_dump_log(e, 30);
            TH_FAIL("engine did not log where it starts in %s[%d] within %.0f s", topic, p, timeout_s);
        }
        usleep(50000);
    }
}

char *th_engine_current_log(th_engine_t *e) {
    char *buf;
    const char *log = current_log(e, &buf);
    char *copy = strdup(log ? log : "");
    ASSERT(copy);
    free(buf);
    return copy;
}

int th_engine_log_count(th_engine_t *e, const char *needle) {
    char *log = th_engine_current_log(e);
    int n = 0;
    for (const char *p = log; (p = strstr(p, needle)); p += strlen(needle)) n++;
    free(log);
    return n;
}

void th_engine_wait_log(th_engine_t *e, const char *needle, int n, double timeout_s) {
    double deadline = th_now() + timeout_s;
    while (th_engine_log_count(e, needle) < n) {
        char during[300];
        snprintf(during, sizeof(during), "before its log said \"%s\" %d time(s) (%s)", needle, n, e->log);
        th_engine_require_alive(e, during);
        if (th_now() > deadline) {
            th_engine_dump_log(e, 30);
            TH_FAIL("%s: \"%s\" %d of %d time(s) within %.0f s", e->log, needle, th_engine_log_count(e, needle), n,
                    timeout_s);
        }
        usleep(100000);
    }
}

static int decode_status(int st) {
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

int th_engine_wait(th_engine_t *e, double timeout_s) {
    if (e->pid <= 0) return e->status; /* reaped already (th_engine_alive) */
    double deadline = th_now() + timeout_s;
    while (th_now() < deadline) {
        int st;
        pid_t r = waitpid(e->pid, &st, WNOHANG);
        if (r == e->pid) {
            e->pid = -1;
            e->status = decode_status(st);
            return e->status;
        }
        usleep(20000);
    }
    return -1;
}

int th_engine_alive(th_engine_t *e) {
    if (e->pid <= 0) return 0;
    int st;
    pid_t r = waitpid(e->pid, &st, WNOHANG);
    if (r == e->pid) {
        e->pid = -1;
        e->status = decode_status(st);
        return 0;
    }
    return 1;
}

void th_engine_require_alive(th_engine_t *e, const char *during) {
    if (th_engine_alive(e)) return;
    th_engine_dump_log(e, 40);
    TH_FAIL("the engine died %s (status %d)", during, e->status);
}

int th_engine_signal_wait(th_engine_t *e, int sig, double timeout_s) {
    if (e->pid <= 0) TH_FAIL("engine is not running");
    if (sig != SIGKILL) th_engine_wait_started(e, 60);
    kill(e->pid, sig);
    int st = th_engine_wait(e, timeout_s);
    if (st < 0) {
        th_engine_dump_log(e, 40);
        kill(e->pid, SIGKILL);
        th_engine_wait(e, 10);
        TH_FAIL("engine did not exit within %.0f s of signal %d", timeout_s, sig);
    }
    return st;
}

void th_engine_dump_log(th_engine_t *e, int lines) {
    th_system("tail -n %d %s >&2", lines, e->log);
}

int th_is_committed(const char *group, const char *topic) {
    char err[512];
    rd_kafka_t *rk = group_reader(group);
    /* No answer yet counts as not committed: the caller asks again. An empty partition counts as
     * reached only once the group committed it. */
    int parts = tally_kclient_partitions(rk, topic, err, sizeof(err));
    int done = parts > 0 && tally_kclient_group_reached(rk, topic, parts, NULL, false);
    rd_kafka_destroy(rk);
    return done;
}

void th_wait_committed(const char *group, const char *topic, double timeout_s, th_engine_t *e) {
    double deadline = th_now() + timeout_s;
    while (!th_is_committed(group, topic)) {
        if (e && e->pid > 0 && !th_engine_alive(e)) {
            th_engine_dump_log(e, 40);
            TH_FAIL("engine exited before committing all of %s", topic);
        }
        if (th_now() > deadline) {
            if (e) th_engine_dump_log(e, 40);
            TH_FAIL("group %s did not commit all of %s within %.0f s", group, topic, timeout_s);
        }
        usleep(100000);
    }
}

void th_produce_words(const char *topic, long n, unsigned long long seed, int vocab, th_counts_t *truth) {
    rd_kafka_t *p = th_producer();
    unsigned long long r = seed | 1;
    char line[256];
    for (long i = 0; i < n; i++) {
        size_t len = 0;
        int words = 1 + (int)(r % 8);
        for (int w = 0; w < words; w++) {
            th_xorshift(&r);
            len += (size_t)snprintf(line + len, sizeof(line) - len, "%sw%llu", w ? " " : "", (r >> 16) % (unsigned)vocab);
        }
        if (truth) th_counts_add_line(truth, line, len);
        th_produce(p, topic, -1, NULL, 0, line, len);
    }
    th_flush_destroy(p);
}

char *th_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    ASSERT(buf);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            ASSERT(buf);
        }
    }
    fclose(f);
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

/* ---- HTTP client side ---- */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <strings.h>

int th_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    ASSERT_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

char *th_http(const char *method, int port, const char *path, int *status, char **content_type) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(fd >= 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return NULL;
    }
    char req[1024];
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", method,
                     path, port);
    ASSERT_EQ(write(fd, req, (size_t)n), n);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    ASSERT(buf);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            ASSERT(buf);
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) TH_FAIL("reading the answer to %s %s: %s", method, path, strerror(errno));
        if (r == 0) break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    int code = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1) TH_FAIL("%s %s: not an HTTP answer: %.80s", method, path, buf);
    *status = code;
    char *body = strstr(buf, "\r\n\r\n");
    if (!body) TH_FAIL("%s %s: no end of headers", method, path);
    *body = '\0';
    body += 4;
    if (content_type) {
        *content_type = NULL;
        for (char *h = strstr(buf, "\r\n"); h; h = strstr(h + 2, "\r\n"))
            if (strncasecmp(h + 2, "Content-Type:", 13) == 0) {
                char *v = h + 15, *e;
                while (*v == ' ' || *v == '\t') v++;
                e = strstr(v, "\r\n");
                *content_type = strndup(v, e ? (size_t)(e - v) : strlen(v));
                break;
            }
    }
    char *out = strdup(body);
    ASSERT(out);
    free(buf);
    return out;
}

void th_watermarks(const char *topic, int32_t partition, int64_t *lo, int64_t *hi) {
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, base_conf(), err, sizeof(err));
    if (!rk) TH_FAIL("rd_kafka_new: %s", err);
    *lo = *hi = -1;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, partition, lo, hi, 10000);
    if (e) TH_FAIL("watermarks of %s[%d]: %s", topic, (int)partition, rd_kafka_err2str(e));
    rd_kafka_destroy(rk);
}

int64_t th_high_watermark(const char *topic, int32_t partition) {
    int64_t lo, hi;
    th_watermarks(topic, partition, &lo, &hi);
    return hi;
}

/* ---- faults ---- */

static rd_kafka_t *admin_client(void) {
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, base_conf(), err, sizeof(err));
    if (!rk) TH_FAIL("rd_kafka_new: %s", err);
    return rk;
}

static rd_kafka_event_t *admin_result(rd_kafka_queue_t *q, const char *what) {
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    if (!ev) TH_FAIL("%s timed out", what);
    if (rd_kafka_event_error(ev)) TH_FAIL("%s: %s", what, rd_kafka_event_error_string(ev));
    return ev;
}

void th_delete_records(const char *topic, int32_t partition, int64_t before) {
    rd_kafka_t *rk = admin_client();
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = before;
    rd_kafka_DeleteRecords_t *d = rd_kafka_DeleteRecords_new(l);
    rd_kafka_DeleteRecords(rk, &d, 1, NULL, q);
    rd_kafka_event_t *ev = admin_result(q, "DeleteRecords");
    const rd_kafka_topic_partition_list_t *res =
        rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
    if (res->elems[0].err) TH_FAIL("DeleteRecords %s[%d]: %s", topic, (int)partition, rd_kafka_err2str(res->elems[0].err));
    rd_kafka_event_destroy(ev);
    rd_kafka_DeleteRecords_destroy(d);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

void th_delete_topic(const char *topic) {
    rd_kafka_t *rk = admin_client();
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteTopic_t *d = rd_kafka_DeleteTopic_new(topic);
    rd_kafka_DeleteTopics(rk, &d, 1, NULL, q);
    rd_kafka_event_t *ev = admin_result(q, "DeleteTopics");
    size_t n;
    const rd_kafka_topic_result_t **res = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
    if (n != 1 || rd_kafka_topic_result_error(res[0])) TH_FAIL("DeleteTopics %s failed", topic);
    rd_kafka_event_destroy(ev);
    rd_kafka_DeleteTopic_destroy(d);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    /* Deletion is asynchronous on the broker: wait until the metadata no longer has it. */
    for (int i = 0; i < 100; i++) {
        rd_kafka_t *c = admin_client();
        const struct rd_kafka_metadata *md;
        rd_kafka_topic_t *t = rd_kafka_topic_new(c, topic, NULL);
        int gone = 0;
        if (rd_kafka_metadata(c, 0, t, &md, 5000) == 0) {
            gone = md->topics[0].err != 0;
            rd_kafka_metadata_destroy(md);
        }
        rd_kafka_topic_destroy(t);
        rd_kafka_destroy(c);
        if (gone) return;
        usleep(200000);
    }
    TH_FAIL("topic %s still exists after delete", topic);
}

void th_delete_group_offsets(const char *group, const char *topic, int partitions) {
    rd_kafka_t *rk = admin_client();
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    /* A static member stays in the group for its session timeout (45 s) after it stopped; until then
     * the broker refuses (GROUP_SUBSCRIBED_TO_TOPIC), so retry for a while. */
    for (int attempt = 0;; attempt++) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
        for (int i = 0; i < partitions; i++) rd_kafka_topic_partition_list_add(l, topic, i);
        rd_kafka_DeleteConsumerGroupOffsets_t *d = rd_kafka_DeleteConsumerGroupOffsets_new(group, l);
        rd_kafka_DeleteConsumerGroupOffsets(rk, &d, 1, NULL, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
        if (!ev) TH_FAIL("DeleteConsumerGroupOffsets timed out");
        rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
        if (!err) {
            size_t n;
            const rd_kafka_group_result_t **res = rd_kafka_DeleteConsumerGroupOffsets_result_groups(
                rd_kafka_event_DeleteConsumerGroupOffsets_result(ev), &n);
            const rd_kafka_error_t *ge = n ? rd_kafka_group_result_error(res[0]) : NULL;
            if (ge) err = rd_kafka_error_code(ge);
            const rd_kafka_topic_partition_list_t *pl = n ? rd_kafka_group_result_partitions(res[0]) : NULL;
            for (int i = 0; !err && pl && i < pl->cnt; i++) err = pl->elems[i].err;
        }
        rd_kafka_event_destroy(ev);
        rd_kafka_DeleteConsumerGroupOffsets_destroy(d);
        rd_kafka_topic_partition_list_destroy(l);
        if (!err) break;
        if (attempt >= 150) TH_FAIL("DeleteConsumerGroupOffsets %s: %s", group, rd_kafka_err2str(err));
        usleep(500000);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

static char tmpfs_dir[64];

void th_tmpfs_unmount(void) {
    if (tmpfs_dir[0]) umount2(tmpfs_dir, MNT_DETACH);
    tmpfs_dir[0] = '\0';
}

const char *th_tmpfs(const char *size) {
    snprintf(tmpfs_dir, sizeof(tmpfs_dir), "/tmp/tally-tmpfs-XXXXXX");
    if (!mkdtemp(tmpfs_dir)) TH_FAIL("mkdtemp");
    char opts[64];
    snprintf(opts, sizeof(opts), "size=%s", size);
    if (mount("tmpfs", tmpfs_dir, "tmpfs", 0, opts) != 0) {
        perror("mount tmpfs");
        tmpfs_dir[0] = '\0';
        const char *req = getenv("TALLY_REQUIRE_BROKER");
        if (req && strcmp(req, "1") == 0) TH_FAIL("cannot mount a tmpfs (run as root)");
        return NULL;
    }
    atexit(th_tmpfs_unmount); /* also when an assertion fails */
    return tmpfs_dir;
}

int th_kafka_local(const char *args) {
    const char *src = getenv("TALLY_SOURCE_DIR");
    if (!src) TH_FAIL("TALLY_SOURCE_DIR is not set (meson sets it)");
    return th_system("%s/scripts/kafka-local %s >&2", src, args);
}


/* ---- feeder ---- */

#include <pthread.h>

static void *feeder_main(void *arg) {
    th_feeder_t *f = arg;
    rd_kafka_t *p = th_producer();
    unsigned long long r = 0x9E3779B97F4A7C15ULL;
    char line[512];
    while (!f->stop) {
        for (int i = 0; i < f->burst && !f->stop; i++) {
            size_t n = 0;
            th_xorshift(&r);
            int words = 1 + (int)(r % (unsigned)f->max_words);
            for (int w = 0; w < words && n + 40 < sizeof(line); w++) {
                th_xorshift(&r);
                n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s%llu", w ? " " : "", f->prefix,
                                      (r >> 20) % (unsigned)f->vocab);
            }
            th_counts_add_line(f->truth, line, n);
            const char *topic = f->topics[1] && f->lines % 3 == 2 ? f->topics[1] : f->topics[0];
            th_produce(p, topic, -1, NULL, 0, line, n);
            f->lines++;
        }
        usleep((useconds_t)f->pause_us);
    }
    th_flush_destroy(p);
    return NULL;
}

void th_feeder_start(th_feeder_t *f) {
    if (!f->truth) f->truth = th_counts_new();
    if (!f->prefix) f->prefix = "f";
    if (f->vocab <= 0) f->vocab = 1000;
    if (f->max_words <= 0) f->max_words = 8;
    if (f->burst <= 0) f->burst = 500;
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, feeder_main, f), 0);
    f->thread = (unsigned long)t;
}

void th_feeder_stop(th_feeder_t *f) {
    f->stop = 1;
    pthread_join((pthread_t)f->thread, NULL);
}

/* ---- the state against the group ---- */

#include "tally/state.h"

void th_check_state_offsets(th_engine_t *e, const char *group, const char *topic) {
    char dir[400], err[512];
    snprintf(dir, sizeof(dir), "%s/state", e->dir);
    tally_state_t *st = NULL;
    bool locked = false;
    if (tally_state_open(&st, dir, &locked, err, sizeof(err))) TH_FAIL("%s", err);
    rd_kafka_t *rk = group_reader(group);
    int parts = partition_count(rk, topic);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    for (int i = 0; i < parts; i++) rd_kafka_topic_partition_list_add(l, topic, i);
    if (rd_kafka_committed(rk, l, 10000)) TH_FAIL("committed offsets of %s", group);
    for (int i = 0; i < parts; i++) {
        int64_t d = -1;
        ASSERT_EQ(tally_state_get_offset(st, topic, i, &d), 1);
        if (d != l->elems[i].offset)
            TH_FAIL("%s[%d]: state holds offset %lld, the group committed %lld", topic, i, (long long)d,
                    (long long)l->elems[i].offset);
    }
    fprintf(stderr, "state offsets of %s equal the group's committed offsets on %d partitions\n", topic, parts);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    tally_state_close(st);
}
