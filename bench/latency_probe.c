/* SPDX-License-Identifier: MIT */
/* latency-probe: end-to-end latency of a word-count engine. A producer thread writes, every interval, a
 * line holding one unique word (PREFIX + number, which occurs once in the whole input) and records when;
 * the main thread reads the output topic (read_committed) and records when {"word":W,"count":1} becomes
 * visible. Latency = visible - produced, both on this process's monotonic clock.
 * Threads: the producer thread owns the producer and writes sent_ns[i] before producing probe i; main owns
 * the consumer and everything else. */
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kclient.h"

#define LP_BATCH 4096
#define LP_WARM_BASE 90000000L /* warm-up probes are numbered from here, measured ones from 0 */

static void usage(FILE *out) {
    fputs(
        "Usage: latency-probe --bootstrap HOST:PORT --input TOPIC --output TOPIC [options]\n"
        "\n"
        "Phase 1 (warm-up): produces a probe line every 200 ms until one shows on the output, i.e. the\n"
        "engine is up (at most --warm-timeout seconds). Then creates --ready-file (so a load generator\n"
        "can start), waits --delay seconds, and produces a probe every --interval-ms for --duration\n"
        "seconds; then waits up to --drain seconds for the last ones. Each probe is one line holding one\n"
        "word PREFIX<number> that appears nowhere else; it is visible when a read_committed consumer of\n"
        "the output sees that word with count 1.\n"
        "  --interval-ms N     between probes (default 10)\n"
        "  --duration S        measuring time (default 20)\n"
        "  --delay S           after the ready file, before measuring (default 2)\n"
        "  --drain S           wait for the last probes (default 30)\n"
        "  --warm-timeout S    default 180\n"
        "  --ready-file PATH   created when the engine answered the warm-up\n"
        "  --prefix WORD       probe word prefix (default probe)\n"
        "  --name NAME         echoed in the result line\n"
        "\n"
        "One line on stdout:\n"
        "  latency name=NAME probes=N seen=M p50_ms=A p90_ms=B p99_ms=C max_ms=D mean_ms=E warm_s=W\n"
        "Unseen probes are left out of the percentiles (and make seen < probes).\n",
        out);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void set(rd_kafka_conf_t *c, const char *k, const char *v) {
    char err[512];
    if (tally_kclient_conf_set(c, k, v, err, sizeof(err))) {
        fprintf(stderr, "latency-probe: %s\n", err);
        exit(2);
    }
}

typedef struct {
    rd_kafka_t *producer;
    rd_kafka_topic_t *topic;
    const char *prefix;
    long nprobes;
    int64_t interval_ns;
    _Atomic int64_t *sent_ns; /* per measured probe; 0 = not produced */
    _Atomic int64_t *seen_ns;
    _Atomic int phase;        /* 0 warm-up, 1 measuring, 2 done */
    _Atomic bool warm_seen;
    _Atomic int64_t measure_start_ns; /* set by main: when the producer may begin the measured probes */
} lp_t;

static void produce_probe(lp_t *lp, long number) {
    char line[96];
    int n = snprintf(line, sizeof(line), "%s%08ld", lp->prefix, number);
    for (;;) {
        if (rd_kafka_produce(lp->topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, line, (size_t)n, NULL, 0,
                             NULL) == 0)
            break;
        rd_kafka_poll(lp->producer, 1);
    }
    rd_kafka_poll(lp->producer, 0);
}

static void sleep_until(int64_t t) {
    struct timespec ts = {(time_t)(t / 1000000000), (long)(t % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {}
}

static void *producer_main(void *arg) {
    lp_t *lp = arg;
    long warm = 0;
    while (!atomic_load(&lp->warm_seen) && atomic_load(&lp->phase) == 0) {
        produce_probe(lp, LP_WARM_BASE + warm++);
        int64_t until = now_ns() + 200000000;
        while (now_ns() < until && !atomic_load(&lp->warm_seen)) {
            rd_kafka_poll(lp->producer, 10);
        }
    }
    int64_t t;
    while ((t = atomic_load(&lp->measure_start_ns)) == 0) {
        if (atomic_load(&lp->phase) == 2) return NULL;
        rd_kafka_poll(lp->producer, 10);
    }
    sleep_until(t);
    for (long i = 0; i < lp->nprobes && atomic_load(&lp->phase) != 2; i++) {
        sleep_until(t + i * lp->interval_ns);
        atomic_store_explicit(&lp->sent_ns[i], now_ns(), memory_order_release);
        produce_probe(lp, i);
    }
    rd_kafka_flush(lp->producer, 10000);
    return NULL;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct(const int64_t *v, long n, double p) {
    if (n == 0) return 0;
    long k = (long)ceil(p * (double)n) - 1;
    if (k < 0) k = 0;
    if (k >= n) k = n - 1;
    return (double)v[k] / 1e6;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"bootstrap", required_argument, NULL, 'b'}, {"input", required_argument, NULL, 'i'},
        {"output", required_argument, NULL, 'o'},    {"interval-ms", required_argument, NULL, 'I'},
        {"duration", required_argument, NULL, 'd'},  {"delay", required_argument, NULL, 'D'},
        {"drain", required_argument, NULL, 'r'},     {"warm-timeout", required_argument, NULL, 'w'},
        {"ready-file", required_argument, NULL, 'f'}, {"prefix", required_argument, NULL, 'p'},
        {"name", required_argument, NULL, 'n'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *bootstrap = NULL, *input = NULL, *output = NULL, *ready = NULL, *prefix = "probe", *name = "-";
    double interval_ms = 10, duration = 20, delay = 2, drain = 30, warm_timeout = 180;
    int opt;
    while ((opt = getopt_long(argc, argv, "b:i:o:I:d:D:r:w:f:p:n:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'b': bootstrap = optarg; break;
        case 'i': input = optarg; break;
        case 'o': output = optarg; break;
        case 'I': interval_ms = atof(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'D': delay = atof(optarg); break;
        case 'r': drain = atof(optarg); break;
        case 'w': warm_timeout = atof(optarg); break;
        case 'f': ready = optarg; break;
        case 'p': prefix = optarg; break;
        case 'n': name = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!bootstrap || !input || !output || interval_ms <= 0 || duration <= 0) {
        fprintf(stderr, "latency-probe: --bootstrap, --input and --output are required\n");
        usage(stderr);
        return 2;
    }
    size_t plen = strlen(prefix);

    char err[512];
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    set(pc, "bootstrap.servers", bootstrap);
    set(pc, "linger.ms", "0");
    set(pc, "acks", "all");
    set(pc, "client.id", "latency-probe");
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    if (!prod) {
        fprintf(stderr, "latency-probe: %s\n", err);
        return 2;
    }

    tally_kclient_opts_t co = {.bootstrap = bootstrap, .name = "latency-probe", .fetch_wait_max_ms = 10};
    rd_kafka_t *cons;
    int nparts;
    if (tally_kclient_consumer_new(&cons, &co, err, sizeof(err)) ||
        (nparts = tally_kclient_partitions(cons, output, err, sizeof(err))) < 0) {
        fprintf(stderr, "latency-probe: %s\n", err);
        return 2;
    }
    tally_kclient_assign_all(cons, output, nparts);
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(cons);

    lp_t lp = {.producer = prod, .prefix = prefix};
    lp.topic = rd_kafka_topic_new(prod, input, NULL);
    lp.interval_ns = (int64_t)(interval_ms * 1e6);
    lp.nprobes = (long)(duration * 1000 / interval_ms);
    lp.sent_ns = calloc((size_t)lp.nprobes, sizeof(*lp.sent_ns));
    lp.seen_ns = calloc((size_t)lp.nprobes, sizeof(*lp.seen_ns));
    pthread_t th;
    pthread_create(&th, NULL, producer_main, &lp);

    int64_t t0 = now_ns(), deadline = t0 + (int64_t)(warm_timeout * 1e9), warm_at = 0;
    long seen = 0;
    rd_kafka_message_t *msgs[LP_BATCH];
    for (;;) {
        ssize_t got = rd_kafka_consume_batch_queue(q, 5, msgs, LP_BATCH);
        int64_t now = now_ns();
        for (ssize_t i = 0; i < got; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (!m->err && m->key && m->key_len == plen + 8 && memcmp(m->key, prefix, plen) == 0) {
                char num[9];
                memcpy(num, (const char *)m->key + plen, 8);
                num[8] = 0;
                long k = atol(num);
                bool one = m->payload && memmem(m->payload, m->len, "\"count\":1}", 10);
                if (k >= LP_WARM_BASE) {
                    if (!warm_at) {
                        warm_at = now;
                        atomic_store(&lp.warm_seen, true);
                    }
                } else if (k < lp.nprobes && one && !atomic_load(&lp.seen_ns[k])) {
                    atomic_store(&lp.seen_ns[k], now);
                    seen++;
                }
            }
            rd_kafka_message_destroy(m);
        }
        if (!warm_at && now > deadline) {
            fprintf(stderr, "latency-probe: %s: no warm-up probe came back within %.0f s\n", name, warm_timeout);
            atomic_store(&lp.phase, 2);
            break;
        }
        if (warm_at && atomic_load(&lp.measure_start_ns) == 0) {
            if (ready) {
                FILE *f = fopen(ready, "w");
                if (f) fclose(f);
            }
            int64_t ms = now + (int64_t)(delay * 1e9);
            atomic_store(&lp.measure_start_ns, ms);
            deadline = ms + (int64_t)(duration * 1e9) + (int64_t)(drain * 1e9);
            atomic_store(&lp.phase, 1);
        }
        if (warm_at && (seen == lp.nprobes || now > deadline)) break;
    }
    atomic_store(&lp.phase, 2);
    pthread_join(th, NULL);

    int64_t *lat = malloc(sizeof(*lat) * (size_t)(lp.nprobes + 1));
    long n = 0, sent = 0;
    double sum = 0;
    for (long i = 0; i < lp.nprobes; i++) {
        int64_t s = atomic_load(&lp.sent_ns[i]), v = atomic_load(&lp.seen_ns[i]);
        if (s) sent++;
        if (s && v) {
            lat[n++] = v - s;
            sum += (double)(v - s);
        }
    }
    qsort(lat, (size_t)n, sizeof(*lat), cmp_i64);
    printf("latency name=%s probes=%ld seen=%ld interval_ms=%.0f duration_s=%.0f p50_ms=%.1f p90_ms=%.1f "
           "p99_ms=%.1f max_ms=%.1f mean_ms=%.1f warm_s=%.1f\n",
           name, sent, n, interval_ms, duration, pct(lat, n, 0.50), pct(lat, n, 0.90), pct(lat, n, 0.99),
           n ? (double)lat[n - 1] / 1e6 : 0.0, n ? sum / (double)n / 1e6 : 0.0,
           warm_at ? (double)(warm_at - t0) / 1e9 : -1.0);
    fflush(stdout);
    free(lat);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(cons);
    rd_kafka_topic_destroy(lp.topic);
    rd_kafka_destroy(prod);
    return warm_at ? 0 : 1;
}
