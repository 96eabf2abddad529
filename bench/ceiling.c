/* SPDX-License-Identifier: MIT */
/* ceiling: the consume ceiling of the benchmark. A bare librdkafka consumer that assigns every partition
 * of a topic from the beginning (read_committed) and reads to the end, doing nothing with the records:
 * the most lines/s any engine on this broker and machine could read. Single-threaded; librdkafka's own
 * broker threads do the fetching. */
#include <getopt.h>
#include <sys/resource.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kclient.h"

#define CEIL_BATCH 4096

static void usage(FILE *out) {
    fputs("Usage: ceiling --bootstrap HOST:PORT --topic TOPIC [--kafka KEY=VALUE]... [--timeout SECONDS]\n"
          "\n"
          "Reads every partition of TOPIC from the beginning to the end it has at start-up, as a bare\n"
          "read_committed consumer (assign, consume in batches, nothing else), then prints one line:\n"
          "  ceiling lines=N seconds=S lines_per_s=X mb_per_s=Y partitions=P bytes=B cpu_s=C peak_rss_mb=R\n"
          "seconds run from process start (before the client is created) to the last partition's end;\n"
          "bytes counts record values; MB = 10^6 bytes; cpu_s and peak_rss_mb from getrusage (MiB).\n"
          "  --kafka KEY=VALUE  librdkafka consumer property (repeatable), applied last\n"
          "  --timeout S        give up after S seconds (default 600; exit 1)\n",
          out);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    double t0 = now_s();
    static const struct option opts[] = {
        {"bootstrap", required_argument, NULL, 'b'}, {"topic", required_argument, NULL, 't'},
        {"kafka", required_argument, NULL, 'k'},     {"timeout", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0},
    };
    const char *bootstrap = NULL, *topic = NULL;
    const char *kv[64]; /* --kafka KEY=VALUE, applied last */
    int nkv = 0, opt;
    double timeout = 600;
    while ((opt = getopt_long(argc, argv, "b:t:k:T:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'b': bootstrap = optarg; break;
        case 't': topic = optarg; break;
        case 'k':
            if (nkv == 64 || !strchr(optarg, '=')) {
                fprintf(stderr, "ceiling: --kafka wants KEY=VALUE (at most 64)\n");
                return 2;
            }
            kv[nkv++] = optarg;
            break;
        case 'T': timeout = atof(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!bootstrap || !topic) {
        fprintf(stderr, "ceiling: --bootstrap and --topic are required\n");
        usage(stderr);
        return 2;
    }

    char err[512];
    /* A bad --kafka setting is a usage error (2); a client that cannot start is a run error (1). */
    tally_kclient_opts_t o = {.bootstrap = bootstrap, .name = "ceiling", .partition_eof = true, .kafka = kv,
                              .nkafka = nkv};
    rd_kafka_t *rk;
    int r = tally_kclient_consumer_new(&rk, &o, err, sizeof(err));
    if (r) {
        fprintf(stderr, "ceiling: %s\n", err);
        return r == TALLY_KCLIENT_ESETTING ? 2 : 1;
    }
    int n = tally_kclient_partitions(rk, topic, err, sizeof(err));
    if (n < 0) {
        fprintf(stderr, "ceiling: %s\n", err);
        return 1;
    }

    /* The end is fixed at start-up: the topic is not being written during a ceiling run. */
    int64_t *lo = calloc((size_t)n, sizeof(*lo)), *end = calloc((size_t)n, sizeof(*end));
    char *done = calloc((size_t)n, 1);
    int ndone = 0;
    if (tally_kclient_watermarks(rk, topic, n, lo, end, 10000)) {
        fprintf(stderr, "ceiling: cannot read the end offsets of %s\n", topic);
        return 1;
    }
    for (int i = 0; i < n; i++)
        if (end[i] <= lo[i]) { done[i] = 1; ndone++; }
    tally_kclient_assign_all(rk, topic, n);

    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    rd_kafka_message_t *msgs[CEIL_BATCH];
    uint64_t lines = 0, bytes = 0;
    double deadline = t0 + timeout;
    while (ndone < n) {
        ssize_t got = rd_kafka_consume_batch_queue(q, 500, msgs, CEIL_BATCH);
        for (ssize_t i = 0; i < got; i++) {
            rd_kafka_message_t *m = msgs[i];
            int p = m->partition;
            if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                lines++;
                bytes += m->len;
                if (m->offset + 1 >= end[p] && !done[p]) { done[p] = 1; ndone++; }
            } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                /* read_committed may end below the high watermark (a last control record): EOF says so */
                if (!done[p]) { done[p] = 1; ndone++; }
            } else {
                fprintf(stderr, "ceiling: %s\n", rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
        }
        if (now_s() > deadline) {
            fprintf(stderr, "ceiling: did not reach the end within %.0f s\n", timeout);
            return 1;
        }
    }
    double secs = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                 (double)ru.ru_stime.tv_usec / 1e6;
    printf("ceiling lines=%llu seconds=%.3f lines_per_s=%.0f mb_per_s=%.2f partitions=%d bytes=%llu cpu_s=%.2f "
           "peak_rss_mb=%.1f\n",
           (unsigned long long)lines, secs, (double)lines / secs, (double)bytes / 1e6 / secs, n,
           (unsigned long long)bytes, cpu, (double)ru.ru_maxrss / 1024.0);
    fflush(stdout);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk); /* no consumer_close: never joined a group */
    free(lo);
    free(end);
    free(done);
    return 0;
}
