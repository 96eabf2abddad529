/* SPDX-License-Identifier: MIT */
/* tally-read: prints a topic's records from the beginning to its current end (read_committed), or
 * waits until a consumer group has committed a topic up to its end. For the demo, benches and people.
 *   tally-read --bootstrap B --topic T [--keys] [--count]
 *   tally-read --bootstrap B --topic T --wait-group G [--timeout S]   */
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kclient.h"

static void usage(FILE *out) {
    fputs("Usage: tally-read --bootstrap HOST:PORT --topic TOPIC [--keys] [--count] [--uncommitted]\n"
          "       tally-read --bootstrap HOST:PORT --topic TOPIC --wait-group GROUP [--timeout SECONDS]\n"
          "\n"
          "Prints every record value of TOPIC, one per line, from the beginning to the end it has now,\n"
          "as a read_committed consumer sees them (aborted transactions hidden), then exits.\n"
          "  --keys           print KEY<TAB>VALUE\n"
          "  --count          print only the number of records\n"
          "  --uncommitted    read_uncommitted (shows aborted records too)\n"
          "  --wait-group G   instead wait until group G committed every partition of TOPIC up to\n"
          "                   its end (exit 0), or --timeout seconds passed (exit 1; default 300)\n",
          out);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static rd_kafka_t *consumer(const char *bootstrap, const char *group, int committed) {
    char err[512];
    tally_kclient_opts_t o = {.bootstrap = bootstrap, .group = group, .name = "tally-read",
                              .read_uncommitted = !committed, .partition_eof = true};
    rd_kafka_t *rk;
    if (tally_kclient_consumer_new(&rk, &o, err, sizeof(err))) {
        fprintf(stderr, "tally-read: %s\n", err);
        exit(1);
    }
    return rk;
}

static int partitions(rd_kafka_t *rk, const char *topic) {
    char err[512];
    int n = tally_kclient_partitions(rk, topic, err, sizeof(err));
    if (n < 0) {
        fprintf(stderr, "tally-read: %s\n", err);
        exit(1);
    }
    return n;
}

static int wait_group(const char *bootstrap, const char *topic, const char *group, double timeout) {
    rd_kafka_t *rk = consumer(bootstrap, group, 1);
    int n = partitions(rk, topic);
    double deadline = now_s() + timeout;
    /* An empty partition has nothing to commit: it counts as caught up. */
    while (!tally_kclient_group_reached(rk, topic, n, NULL, true)) {
        if (now_s() > deadline) {
            fprintf(stderr, "tally-read: group %s did not commit all of %s within %.0f s\n", group, topic, timeout);
            rd_kafka_destroy(rk);
            return 1;
        }
        usleep(100000);
    }
    rd_kafka_destroy(rk);
    return 0;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"bootstrap", required_argument, NULL, 'b'}, {"topic", required_argument, NULL, 't'},
        {"keys", no_argument, NULL, 'k'},            {"count", no_argument, NULL, 'c'},
        {"uncommitted", no_argument, NULL, 'u'},     {"wait-group", required_argument, NULL, 'g'},
        {"timeout", required_argument, NULL, 'T'},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *bootstrap = NULL, *topic = NULL, *group = NULL;
    int keys = 0, count_only = 0, committed = 1, opt;
    double timeout = 300;
    while ((opt = getopt_long(argc, argv, "b:t:kcug:T:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'b': bootstrap = optarg; break;
        case 't': topic = optarg; break;
        case 'k': keys = 1; break;
        case 'c': count_only = 1; break;
        case 'u': committed = 0; break;
        case 'g': group = optarg; break;
        case 'T': timeout = atof(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!bootstrap || !topic) {
        fprintf(stderr, "tally-read: --bootstrap and --topic are required\n");
        usage(stderr);
        return 2;
    }
    if (group) return wait_group(bootstrap, topic, group, timeout);

    rd_kafka_t *rk = consumer(bootstrap, NULL, committed);
    int n = partitions(rk, topic);
    tally_kclient_assign_all(rk, topic, n);
    char *eof = calloc((size_t)n, 1);
    int eofs = 0;
    long records = 0;
    while (eofs < n) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (!eof[m->partition]) { eof[m->partition] = 1; eofs++; }
        } else if (m->err) {
            fprintf(stderr, "tally-read: %s\n", rd_kafka_message_errstr(m));
        } else {
            records++;
            if (!count_only) {
                if (keys) printf("%.*s\t", (int)m->key_len, (const char *)m->key);
                printf("%.*s\n", (int)m->len, (const char *)m->payload);
            }
        }
        rd_kafka_message_destroy(m);
    }
    if (count_only) printf("%ld\n", records);
    free(eof);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}
