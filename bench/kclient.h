/* SPDX-License-Identifier: MIT */
/* kclient: the librdkafka reader set-up shared by the bench tools (ceiling, check-output,
 * latency-probe, tally-read) and the test harness: a consumer that assigns partitions itself (it never
 * joins its group and never commits), a topic's partition count and end offsets, and whether a group's
 * committed offsets reached a topic's end. It keeps no state: every client it makes is the caller's to
 * destroy, and errors come back as text for the caller to print under its own name. */
#ifndef TALLY_KCLIENT_H
#define TALLY_KCLIENT_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What tally_kclient_consumer_new() returns besides 0. */
enum {
    TALLY_KCLIENT_ESETTING = -1, /* librdkafka refused a setting (errstr: KEY=VALUE: why) */
    TALLY_KCLIENT_ECLIENT = -2,  /* librdkafka could not make the client */
};

/* A consumer's settings; a zero field is the default. */
typedef struct {
    const char *bootstrap; /* bootstrap.servers, required */
    /* group.id: a group whose committed offsets the caller reads. NULL: "<name>-<pid>", for a reader
     * that only assigns (never joined, nothing committed). */
    const char *group;
    const char *name;
    bool read_uncommitted;  /* isolation.level; the default read_committed hides aborted transactions */
    bool partition_eof;     /* enable.partition.eof: an event at each partition's end */
    int fetch_wait_max_ms;  /* fetch.wait.max.ms; 0 keeps librdkafka's */
    const char *const *kafka; /* nkafka "KEY=VALUE" librdkafka properties, applied last */
    int nkafka;
} tally_kclient_opts_t;

/* rd_kafka_conf_set() whose error names the setting: "KEY=VALUE: why". 0 or TALLY_KCLIENT_ESETTING. */
int tally_kclient_conf_set(rd_kafka_conf_t *c, const char *key, const char *value, char *errstr,
                           size_t errstr_size);

/* A consumer with enable.auto.commit=false and the settings of o, in *rk. 0 or a TALLY_KCLIENT_E* code
 * (errstr says why). */
int tally_kclient_consumer_new(rd_kafka_t **rk, const tally_kclient_opts_t *o, char *errstr, size_t errstr_size);

/* The partition count of topic (any client will do), or -1 (errstr: "topic T: why"). */
int tally_kclient_partitions(rd_kafka_t *rk, const char *topic, char *errstr, size_t errstr_size);

/* Assigns partitions 0..n-1 of topic from their beginning. */
rd_kafka_resp_err_t tally_kclient_assign_all(rd_kafka_t *rk, const char *topic, int n);

/* The low (lo may be NULL) and high watermarks of partitions 0..n-1 of topic, asked of the broker. */
rd_kafka_resp_err_t tally_kclient_watermarks(rd_kafka_t *rk, const char *topic, int n, int64_t *lo, int64_t *hi,
                                             int timeout_ms);

/* True when the group of rk (its group.id) has committed every partition 0..n-1 of topic up to
 * ends[] (NULL: the high watermarks now). A partition whose end is 0 counts as reached only with
 * empty_reached (nothing to commit there). False too when the broker does not answer in time. */
bool tally_kclient_group_reached(rd_kafka_t *rk, const char *topic, int n, const int64_t *ends, bool empty_reached);

#endif
