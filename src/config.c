/* SPDX-License-Identifier: MIT */
/* The configuration table and everything driven by it: parsing Java-properties text and --set,
 * validation, --help-config, the effective-config dump and the Markdown reference.
 *
 * Ownership: every char * in tally_config_t is heap-allocated and owned by the config; NULL means
 * unset. tally_config_term() frees it all. A key set twice frees the earlier value. */
#include "tally/config.h"

#include "tally/buf.h"
#include "tally/err.h"
#include "tally/log.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KAFKA_PREFIX     "kafka."
#define KAFKA_PREFIX_LEN (sizeof(KAFKA_PREFIX) - 1)
#define TOPIC_MAX_LEN    249 /* Kafka's limit on topic names */
#define MSG_VALUE_MAX    80  /* longer values are cut in messages */

/* P_MS: milliseconds in an int64_t, for durations past int's 24.8 days; -1 when unset. */
/* P_BYTES: a size in an int64_t, digits with an optional k, m or g (KiB, MiB, GiB). */
typedef enum { P_STRING, P_INT, P_BOOL, P_ENUM, P_TOPICS, P_MS, P_BYTES } ptype_t;

/* P_OPTIONAL: a P_MS key with no default; an empty value unsets it again. */
enum { P_REQUIRED = 1 << 0, P_OPTIONAL = 1 << 1 };

/* Extra check of a string value: 0 when fine; otherwise writes what is wrong into `why`. */
typedef int (*pcheck_t)(const char *v, char *why, size_t why_size);

typedef struct {
    const char *name;
    ptype_t type;
    unsigned flags;
    const char *def;              /* default, parsed like user input; NULL = unset */
    int min, max;                 /* P_INT */
    int64_t ms_max;               /* P_MS: from 0 to this; P_BYTES: from bytes_min to this */
    int64_t bytes_min;
    const char *const *values;    /* P_ENUM: NULL-terminated; the stored int is the index */
    int (*parse)(const char *);   /* P_ENUM: if set, used instead of looking up `values` */
    pcheck_t check;               /* P_STRING: extra check */
    const char *allowed;          /* P_STRING/P_TOPICS: what is allowed, for messages and docs */
    const char *unset;            /* what an unset optional key means, for docs and print */
    size_t off;                   /* offsetof the field in tally_config_t */
    size_t off_cnt;               /* P_TOPICS: offsetof the int count */
    const char *desc;
} prop_t;

/* Enum fields are written through int *. */
_Static_assert(sizeof(tally_sink_t) == sizeof(int), "enum size");
_Static_assert(sizeof(tally_guarantee_t) == sizeof(int), "enum size");
_Static_assert(sizeof(tally_output_mode_t) == sizeof(int), "enum size");
_Static_assert(sizeof(tally_start_t) == sizeof(int), "enum size");
_Static_assert(sizeof(tally_output_format_t) == sizeof(int), "enum size");
_Static_assert(sizeof(tally_parquet_codec_t) == sizeof(int), "enum size");
_Static_assert(sizeof(tally_event_time_t) == sizeof(int), "enum size");
_Static_assert(sizeof(tally_watermark_policy_t) == sizeof(int), "enum size");
_Static_assert(sizeof(tally_topology_t) == sizeof(int), "enum size");

static const char *const sink_values[] = {"kafka", "console", "files", NULL};
static const char *const format_values[] = {"jsonl", "csv", "parquet", NULL};
static const char *const codec_values[] = {"snappy", "zstd", "none", NULL};
static const char *const guarantee_values[] = {"exactly_once", "at_least_once", NULL};
static const char *const output_mode_values[] = {"update", "complete", "append", NULL};
static const char *const event_time_values[] = {"record", "processing", NULL};
/* In tally_watermark_policy_t order. */
static const char *const watermark_policy_values[] = {"max", "min", NULL};
static const char *const start_values[] = {"earliest", "latest", NULL};
static const char *const clean_values[] = {"off", "delete", "archive", NULL};
static const char *const topology_values[] = {"single", "distributed", NULL};
/* In tally_log_level_t order; parsed by tally_log_level_parse(). */
static const char *const log_level_values[] = {"error", "warn", "info", "debug", NULL};

static int check_app_id(const char *v, char *why, size_t why_size);
static int check_topic(const char *v, char *why, size_t why_size);
static int check_hostport(const char *v, char *why, size_t why_size);
static int check_path(const char *v, char *why, size_t why_size);

#define TOPIC_ALLOWED "a topic name of letters, digits, '.', '_' and '-', 1 to 249 characters"
#define TOPICS_ALLOWED                                                                             \
    "a comma-separated list of topic names of letters, digits, '.', '_' and '-', 1 to 249 "       \
    "characters each"

#define OFF(field) offsetof(tally_config_t, field)
#define STR(n, fl, d, chk, allw, uns, field, ds)                                                   \
    {.name = n, .type = P_STRING, .flags = fl, .def = d, .check = chk, .allowed = allw,          \
     .unset = uns, .off = OFF(field), .desc = ds}
#define INT(n, d, lo, hi, field, ds)                                                               \
    {.name = n, .type = P_INT, .def = d, .min = lo, .max = hi, .off = OFF(field), .desc = ds}
/* Durations: 10 years at most, far past any window or delay that makes sense. */
#define MS_MAX INT64_C(315360000000)
#define MS(n, d, uns, field, ds)                                                                   \
    {.name = n, .type = P_MS, .flags = (d) ? 0 : P_OPTIONAL, .def = d, .ms_max = MS_MAX,         \
     .unset = uns, .off = OFF(field), .desc = ds}
#define BYTES(n, d, lo, hi, field, ds)                                                             \
    {.name = n, .type = P_BYTES, .def = d, .bytes_min = lo, .ms_max = hi, .off = OFF(field), .desc = ds}
#define BOOL(n, d, field, ds) {.name = n, .type = P_BOOL, .def = d, .off = OFF(field), .desc = ds}
#define ENUM(n, d, vals, prs, field, ds)                                                           \
    {.name = n, .type = P_ENUM, .def = d, .values = vals, .parse = prs, .off = OFF(field),       \
     .desc = ds}

static const prop_t props[] = {
    STR("bootstrap.servers", 0, NULL, NULL, NULL, "required when Kafka is read or written", bootstrap_servers,
        "Kafka brokers to connect to first, a comma-separated host:port list. Required unless both "
        "the input (input.path) and the sink (files or console) are outside Kafka."),
    STR("application.id", P_REQUIRED, NULL, check_app_id,
        "letters, digits, '.', '_' and '-' (not \".\" or \"..\")", NULL, application_id,
        "Names the job: the consumer group, the prefix of the transactional ids and the default "
        "state directory. One instance runs per application.id: a second one started with the same id "
        "fences the first (which exits with status 3) and takes over its work."),
    {.name = "input.topic", .type = P_TOPICS, .allowed = TOPICS_ALLOWED,
     .off = OFF(input_topics), .off_cnt = OFF(input_topic_cnt),
     .desc = "Topics whose record values are counted, a comma-separated list. Set this or input.path."},
    STR("input.path", 0, NULL, check_path, "a directory path or a glob pattern without control characters",
        "no file input", input_path,
        "A directory (or a glob pattern such as /data/in/*.txt) whose files are counted instead of "
        "input.topic: each line of each file is a record; .gz files are read through zlib. New files "
        "are picked up at each trigger, oldest modification time first; place them atomically (write "
        "elsewhere on the same file system, then rename them in). Each file is read once: what was "
        "read is stored with the counts, so a restart neither skips nor repeats a line."),
    INT("files.max.per.trigger", "0", 0, 100000000, files_max_per_trigger,
        "With input.path: at most this many new files per trigger (0 = no bound)."),
    INT("files.max.bytes.per.trigger", "0", 0, 2147483647, files_max_bytes_per_trigger,
        "With input.path: at most about this many bytes of new files per trigger (0 = no bound); "
        "a trigger takes at least one file, however large."),
    ENUM("files.clean", "off", clean_values, NULL, files_clean,
         "With input.path: what happens to a file once the epoch that read it committed: off keeps it, "
         "delete removes it, archive moves it into files.archive.dir (as Spark's cleanSource)."),
    STR("files.archive.dir", 0, NULL, check_path, "a directory path without control characters",
        "required when files.clean=archive", files_archive_dir,
        "Where files.clean=archive moves read files, keeping their names; outside input.path."),
    INT("files.readers", "0", 0, 256, files_readers,
        "With input.path: threads reading files (a large file is split between them at word "
        "boundaries); 0 means one per online CPU core."),
    INT("files.split.bytes", "33554432", 4096, 2147483647, files_split_bytes,
        "With input.path: uncompressed files larger than this are read as several pieces in parallel."),
    BOOL("trigger.available.now", "false", trigger_available_now,
         "With input.path: count every file present at start (in as many triggers as the "
         "files.max.* bounds make), then stop with status 0, as Spark's Trigger.AvailableNow."),
    STR("output.topic", 0, NULL, check_topic, TOPIC_ALLOWED, "required when sink=kafka",
        output_topic, "Topic the counts are written to (key: word, value: count). Required when "
        "sink=kafka."),
    ENUM("sink", "kafka", sink_values, NULL, sink,
         "Where counts go: kafka writes output.topic; files writes part files into output.path; console "
         "prints them to stdout. The console sink is "
         "at-least-once whatever processing.guarantee says: stdout cannot join a Kafka transaction, so "
         "a crash between printing and the offset commit prints that epoch's counts again."),
    STR("output.path", 0, NULL, check_path, "a directory path without control characters",
        "required when sink=files", output_path,
        "Directory the counts are written to with sink=files: one part file per trigger, then a commit "
        "entry in Spark's file sink log (output.path/_spark_metadata), so Spark and tally's readers see "
        "only committed files. Created when missing."),
    ENUM("output.format", "jsonl", format_values, NULL, output_format,
         "Format of the part files with sink=files: jsonl ({\"word\",\"count\",\"epoch\"} per line), "
         "csv (RFC 4180 with a header row word,count,epoch) or parquet (columns word STRING, count "
         "INT64, epoch INT64). With windows, window_start and window_end come first (jsonl: Spark's "
         "{\"window\":{\"start\",\"end\"},...}; Parquet: TIMESTAMP(MILLIS, UTC)); append mode has no "
         "epoch column."),
    ENUM("output.parquet.compression", "snappy", codec_values, NULL, parquet_codec,
         "Compression of Parquet pages: snappy (Spark's default), zstd or none."),
    STR("state.dir", 0, "", NULL, "a directory path", "./state/<application.id>", state_dir,
        "Directory of the local state store (RocksDB)."),
    INT("workers", "0", 0, 256, workers,
        "Counting threads; 0 means one per online CPU core."),
    INT("trigger.interval.ms", "1000", 10, 3600000, trigger_interval_ms,
        "How often counts are emitted and, with exactly_once, a transaction is committed."),
    ENUM("processing.guarantee", "exactly_once", guarantee_values, NULL, guarantee,
         "exactly_once: output and input offsets commit in one Kafka transaction; at_least_once: "
         "offsets commit after the output is acknowledged, so a crash may repeat counts."),
    ENUM("output.mode", "update", output_mode_values, NULL, output_mode,
         "update: emit only the words whose count changed since the last trigger; complete: emit "
         "every word each trigger; append: emit each window's counts once, when the watermark closes "
         "the window (needs window.size.ms and watermark.delay.ms, as Spark's append needs a watermark)."),
    MS("window.size.ms", "0", NULL, window_size_ms,
       "Length of the event-time windows words are counted in; 0 counts over all time, without windows. "
       "Windows are [start, start + size) with start a multiple of window.slide.ms since the epoch, as "
       "Spark's window(); each output record names its window: the value is Spark's "
       "to_json(struct(window, word, count)), the Kafka key \"<window start ms> <word>\", partitioned "
       "by the word. See docs/windows.md."),
    MS("window.slide.ms", "0", NULL, window_slide_ms,
       "How far apart windows start; 0 means window.size.ms (tumbling windows). Smaller gives hopping "
       "windows: a record counts in every window that holds it. Need not divide window.size.ms (then, "
       "as in Spark, a record is in floor or ceil of size/slide windows). At most 1000 windows hold a "
       "record."),
    ENUM("event.time", "record", event_time_values, NULL, event_time,
         "The time that places a record in windows: record is its Kafka timestamp (CreateTime or "
         "LogAppendTime, as the topic says; a record without one takes processing time); processing "
         "is when the epoch that reads it began (as Spark's current_timestamp(), one time per "
         "epoch, so a replay places records where the first run did). input.path needs processing."),
    MS("watermark.delay.ms", NULL, "no watermark", watermark_delay_ms,
       "How late a record may arrive: the watermark is the event time seen minus this delay, and a "
       "window whose end is at or before the watermark is closed: its records arriving later are "
       "dropped and counted in a metric, and its state is deleted. As Spark's withWatermark; not with "
       "output.mode=complete, which keeps every window."),
    ENUM("watermark.policy", "max", watermark_policy_values, NULL, watermark_policy,
         "max: the greatest event time seen across all partitions, minus the delay, moved at the end "
         "of each trigger (Spark); min: the least over partitions of each partition's greatest event "
         "time, minus the delay, so that a partition that lags behind holds windows open (Flink)."),
    MS("watermark.idle.ms", NULL, "a partition is never idle", watermark_idle_ms,
       "With watermark.policy=min: a partition that has received nothing for this long stops holding "
       "the watermark back until its next record (Flink's withIdleness)."),
    MS("window.close.idle.ms", NULL, "off", window_close_idle_ms,
       "When no partition has received anything for this long, the watermark moves on with the wall "
       "clock (as if event time had kept pace since the last record), so the last windows close and "
       "are emitted even when input stops."),
    ENUM("starting.offsets", "earliest", start_values, NULL, starting_offsets,
         "Where to start reading a partition that has no committed offset."),
    BOOL("fail.on.data.loss", "true", fail_on_data_loss,
         "Stop when input records were deleted (retention) before they were read; false logs a "
         "warning and continues."),
    INT("max.word.bytes", "1024", 1, 1048576, max_word_bytes,
        "Longest word counted, in bytes; longer words are not counted, but counted in a metric and "
        "logged once per trigger."),
    BYTES("memory.max.bytes", "256m", INT64_C(64) << 20, INT64_C(1) << 40, memory_max_bytes,
          "One memory budget for the whole process, from which tally sizes everything that grows "
          "with the input: fetched input, the output producer's queue, the rings, the input "
          "threads' sums, the words kept in memory, an epoch's changed keys and RocksDB's memtables "
          "and block cache (docs/operations.md, Memory, gives the split). When a part is full tally "
          "slows down (backpressure, earlier triggers); it drops nothing. kafka.* settings of the "
          "same librdkafka properties override their share."),
    INT("state.cache.max.words", "-1", -1, 1000000000, cache_max_words,
        "Words kept in memory in front of RocksDB (all workers together; 0 = no bound; -1 = "
        "derived from memory.max.bytes). Past it a "
        "trigger starts early and the words already stored are dropped from memory. Ignored with "
        "output.mode=complete, which keeps every word in memory."),
    INT("state.write.interval.ms", "1000", 0, 3600000, state_write_interval_ms,
        "How often at most the committed epochs are written to RocksDB (by a thread of their own, "
        "behind Kafka): the epochs committed in between go into one write, a word changed in several "
        "of them once, which saves CPU at short triggers. A crash replays up to this much committed "
        "input into the state at the next start (without output). 0: write each epoch as soon as "
        "the write before it ends. input.path and windows write every epoch before the next commits."),
    BOOL("state.rebuild", "false", state_rebuild,
         "Start from an empty state.dir and replay the input from the beginning."),
    INT("recovery.stall.timeout.ms", "60000", 1000, 3600000, recovery_stall_ms,
        "Recovery replays input that Kafka committed but the state did not store yet; when no "
        "record of that range arrives for this long (broker unreachable, records unreadable) tally "
        "stops with an error naming the partition and the range, instead of waiting forever."),
    ENUM("log.level", "info", log_level_values, tally_log_level_parse, log_level,
         "Least severe log level written to stderr."),
    INT("transaction.timeout.ms", "60000", 1000, 900000, transaction_timeout_ms,
        "Kafka transaction timeout; must exceed trigger.interval.ms with exactly_once."),
    INT("metadata.refresh.interval.ms", "10000", 100, 3600000, metadata_refresh_ms,
        "How soon new input partitions are seen."),
    STR("http.listen", 0, NULL, check_hostport, "host:port with a port from 1 to 65535",
        "no HTTP endpoint", http_listen, "Address of the HTTP endpoint for metrics and health."),
    STR("progress.topic", 0, NULL, check_topic, TOPIC_ALLOWED, "no progress records",
        progress_topic, "Topic that receives a progress record after each trigger."),
    ENUM("topology", "single", topology_values, NULL, topology,
         "single: one instance counts the whole input (a second one with the same application.id "
         "fences the first); distributed: any number of instances with the same application.id, each "
         "with its own instance.id and state.dir, share the work through Kafka: words go through the "
         "internal topic <application.id>-repartition to the instance that counts them, whose state is "
         "kept in the compacted <application.id>-changelog (docs/scaling.md). Needs sink=kafka, "
         "exactly_once and output.mode update or append; windows with watermark.policy=max."),
    STR("instance.id", 0, NULL, check_app_id, "letters, digits, '.', '_' and '-' (not \".\" or \"..\")",
        "the host name and a hash of state.dir", instance_id,
        "With topology=distributed: this instance's name, distinct per instance (it names the "
        "transactional producer and the static group member, so a second instance with the same "
        "instance.id fences the first)."),
    INT("repartition.partitions", "32", 1, 10000, repartition_partitions,
        "With topology=distributed: partitions of the internal topics, fixed when tally first creates "
        "them; no more instances than this count words at once."),
    INT("internal.replication.factor", "-1", -1, 32767, internal_replication,
        "With topology=distributed: replication factor of the internal topics when tally creates "
        "them; -1 takes the broker's default.replication.factor."),
};
#define PROPS_CNT (sizeof(props) / sizeof(props[0]))

#define KAFKA_DESC                                                                                 \
    "Passed to librdkafka without the \"kafka.\" prefix (e.g. kafka.security.protocol=SASL_SSL); " \
    "checked by librdkafka at start-up."

/* Where a key=value came from, for messages: "origin:line: " or "origin: " when line is 0. */
typedef struct {
    const char *origin;
    int line;
    char *errstr;
    size_t errstr_size;
} ctx_t;

static void seterr(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *errstr, size_t errstr_size, const char *fmt, ...) {
    if (!errstr || errstr_size == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

static int ctx_err(const ctx_t *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int ctx_err(const ctx_t *c, int err, const char *fmt, ...) {
    if (!c->errstr || c->errstr_size == 0) return err;
    int n = c->line > 0 ? snprintf(c->errstr, c->errstr_size, "%s:%d: ", c->origin, c->line)
                        : snprintf(c->errstr, c->errstr_size, "%s: ", c->origin);
    if (n < 0 || (size_t)n >= c->errstr_size) return err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errstr + n, c->errstr_size - (size_t)n, fmt, ap);
    va_end(ap);
    return err;
}

/* A value for a message: its first MSG_VALUE_MAX bytes, and "..." when cut. */
#define VALUE_FMT "\"%.*s%s\""
#define VALUE_ARG(v) (int)MSG_VALUE_MAX, (v), strlen(v) > MSG_VALUE_MAX ? "..." : ""

static const prop_t *prop_find(const char *name) {
    for (size_t i = 0; i < PROPS_CNT; i++)
        if (strcmp(props[i].name, name) == 0) return &props[i];
    return NULL;
}

static void *field(const tally_config_t *conf, size_t off) { return (char *)conf + off; }

/* ---- value checks ------------------------------------------------------------------------- */

static bool name_char_ok(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

/* "character ' '" or "byte 0x01" */
static void bad_char(char *why, size_t why_size, char ch, const char *where) {
    if (ch > ' ' && ch < 0x7f) seterr(why, why_size, "character '%c'%s", ch, where);
    else if (ch == ' ') seterr(why, why_size, "a space%s", where);
    else seterr(why, why_size, "byte 0x%02x%s", (unsigned char)ch, where);
}

static int check_app_id(const char *v, char *why, size_t why_size) {
    for (const char *p = v; *p; p++)
        if (!name_char_ok(*p)) {
            bad_char(why, why_size, *p, " is not allowed");
            return -1;
        }
    if (strcmp(v, ".") == 0 || strcmp(v, "..") == 0) {
        seterr(why, why_size, "it would name a parent or the current directory");
        return -1;
    }
    return 0;
}

static int check_topic(const char *v, char *why, size_t why_size) {
    size_t len = strlen(v);
    if (len == 0) {
        seterr(why, why_size, "empty topic name");
        return -1;
    }
    if (len > TOPIC_MAX_LEN) {
        seterr(why, why_size, "topic name of %zu characters", len);
        return -1;
    }
    if (strcmp(v, ".") == 0 || strcmp(v, "..") == 0) {
        seterr(why, why_size, "Kafka does not allow the topic name \"%s\"", v);
        return -1;
    }
    for (const char *p = v; *p; p++)
        if (!name_char_ok(*p)) {
            bad_char(why, why_size, *p, " in a topic name");
            return -1;
        }
    return 0;
}

/* The path goes into Spark's log as a file: URI inside JSON: no control characters. */
static int check_path(const char *v, char *why, size_t why_size) {
    if (!*v) {
        seterr(why, why_size, "empty path");
        return -1;
    }
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            bad_char(why, why_size, *p, " in a path");
            return -1;
        }
    return 0;
}

static int check_hostport(const char *v, char *why, size_t why_size) {
    const char *colon = strrchr(v, ':');
    if (!colon) {
        seterr(why, why_size, "no ':' before the port");
        return -1;
    }
    size_t hostlen = (size_t)(colon - v);
    if (hostlen == 0) {
        seterr(why, why_size, "empty host (use 0.0.0.0 for every interface)");
        return -1;
    }
    if (v[0] == '[' && v[hostlen - 1] != ']') {
        seterr(why, why_size, "unclosed '[' in the host");
        return -1;
    }
    if (v[0] != '[' && memchr(v, ':', hostlen)) {
        seterr(why, why_size, "an IPv6 host must be in brackets, e.g. [::1]:8080");
        return -1;
    }
    const char *port = colon + 1;
    long n = 0;
    if (*port == '\0') {
        seterr(why, why_size, "empty port");
        return -1;
    }
    for (const char *p = port; *p; p++) {
        if (*p < '0' || *p > '9' || n > 65535) {
            seterr(why, why_size, "port \"%s\" is not a number from 1 to 65535", port);
            return -1;
        }
        n = n * 10 + (*p - '0');
    }
    if (n < 1 || n > 65535) {
        seterr(why, why_size, "port %ld is out of range", n);
        return -1;
    }
    return 0;
}

/* ---- setting one value -------------------------------------------------------------------- */

static void topics_free(char **topics, int cnt) {
    for (int i = 0; i < cnt; i++) free(topics[i]);
    free(topics);
}

/* Splits "a, b,c" into trimmed, checked, distinct names. */
static int parse_topics(const char *v, char ***out, int *out_cnt, char *why, size_t why_size) {
    char **topics = NULL;
    int cnt = 0;
    const char *p = v;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *s = p, *e = end;
        while (s < e && (*s == ' ' || *s == '\t')) s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        char *t = strndup(s, (size_t)(e - s));
        char **grown = t ? realloc(topics, (size_t)(cnt + 1) * sizeof(*topics)) : NULL;
        if (!grown) {
            free(t);
            topics_free(topics, cnt);
            return TALLY_ENOMEM;
        }
        topics = grown;
        topics[cnt++] = t;
        char reason[160];
        if (check_topic(t, reason, sizeof(reason)) != 0) {
            seterr(why, why_size, "item %d: %s", cnt, reason);
            topics_free(topics, cnt);
            return TALLY_ECONFIG;
        }
        for (int i = 0; i < cnt - 1; i++)
            if (strcmp(topics[i], t) == 0) {
                seterr(why, why_size, "topic \"%s\" is listed twice", t);
                topics_free(topics, cnt);
                return TALLY_ECONFIG;
            }
        if (*end == '\0') break;
        p = end + 1;
    }
    *out = topics;
    *out_cnt = cnt;
    return 0;
}

static int parse_int(const char *v, int min, int max, int *out) {
    if (*v == '\0' || !(*v == '-' || *v == '+' || (*v >= '0' && *v <= '9'))) return -1;
    errno = 0;
    char *end;
    long n = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < min || n > max) return -1;
    *out = (int)n;
    return 0;
}

static int parse_ms(const char *v, int64_t max, int64_t *out) {
    if (*v < '0' || *v > '9') return -1; /* no sign: durations are never negative */
    errno = 0;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0' || n > max) return -1;
    *out = (int64_t)n;
    return 0;
}

static int parse_bytes(const char *v, int64_t lo, int64_t hi, int64_t *out) {
    if (*v < '0' || *v > '9') return -1;
    errno = 0;
    char *end;
    long long n = strtoll(v, &end, 10);
    int shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    }
    if (errno != 0 || *end != '\0' || n > (hi >> shift)) return -1;
    n <<= shift;
    if (n < lo) return -1;
    *out = (int64_t)n;
    return 0;
}

static int parse_bool(const char *v, bool *out) {
    if (strcasecmp(v, "true") == 0) *out = true;
    else if (strcasecmp(v, "false") == 0) *out = false;
    else return -1;
    return 0;
}

static int parse_enum(const prop_t *p, const char *v) {
    if (p->parse) return p->parse(v);
    for (int i = 0; p->values[i]; i++)
        if (strcasecmp(v, p->values[i]) == 0) return i;
    return -1;
}

/* "exactly_once, at_least_once" */
static void enum_list(const prop_t *p, char *buf, size_t size, const char *sep) {
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; p->values[i] && n < size; i++) {
        int w = snprintf(buf + n, size - n, "%s%s", i ? sep : "", p->values[i]);
        if (w < 0) break;
        n += (size_t)w;
    }
}

/* What a key accepts, in words: the tail of every "bad value" message. */
static void allowed_text(const prop_t *p, char *buf, size_t size) {
    char list[128];
    switch (p->type) {
    case P_INT: snprintf(buf, size, "an integer from %d to %d", p->min, p->max); break;
    case P_BOOL: snprintf(buf, size, "true or false"); break;
    case P_ENUM:
        enum_list(p, list, sizeof(list), ", ");
        snprintf(buf, size, "allowed %s", list);
        break;
    case P_STRING:
        if (p->allowed) snprintf(buf, size, "%s", p->allowed);
        else snprintf(buf, size, "a non-empty string");
        break;
    case P_TOPICS: snprintf(buf, size, "%s", p->allowed); break;
    case P_MS:
        snprintf(buf, size, "milliseconds, an integer from 0 to %" PRId64 "%s", p->ms_max,
                 (p->flags & P_OPTIONAL) ? " (empty: unset)" : "");
        break;
    case P_BYTES:
        snprintf(buf, size, "bytes from %" PRId64 " to %" PRId64 ", or with k, m or g (KiB, MiB, GiB), e.g. 512m",
                 p->bytes_min, p->ms_max);
        break;
    }
}

/* For --help-config and the reference: an enum's values without the "allowed" of messages. */
static void allowed_doc(const prop_t *p, char *buf, size_t size) {
    if (p->type == P_ENUM) enum_list(p, buf, size, ", ");
    else allowed_text(p, buf, size);
}

static int bad_value(const ctx_t *c, const prop_t *p, const char *v, const char *why) {
    char allowed[256];
    allowed_text(p, allowed, sizeof(allowed));
    if (why && *why)
        return ctx_err(c, TALLY_ECONFIG, "bad value " VALUE_FMT " for %s: %s (%s)", VALUE_ARG(v),
                       p->name, allowed, why);
    return ctx_err(c, TALLY_ECONFIG, "bad value " VALUE_FMT " for %s: %s", VALUE_ARG(v), p->name,
                   allowed);
}

/* Parses `v` for `p` and stores it; on error the field keeps its old value. */
static int prop_set(tally_config_t *conf, const prop_t *p, const char *v, const ctx_t *c) {
    char why[192] = "";
    switch (p->type) {
    case P_STRING: {
        char **dst = field(conf, p->off);
        if (*v == '\0') {
            /* An empty value unsets an optional key (its default); a required key needs a value. */
            if (p->flags & P_REQUIRED) return bad_value(c, p, v, p->allowed ? "empty" : NULL);
            free(*dst);
            *dst = NULL;
            return 0;
        }
        if (p->check && p->check(v, why, sizeof(why)) != 0) return bad_value(c, p, v, why);
        char *copy = strdup(v);
        if (!copy) return ctx_err(c, TALLY_ENOMEM, "out of memory");
        free(*dst);
        *dst = copy;
        return 0;
    }
    case P_INT: {
        int n;
        if (parse_int(v, p->min, p->max, &n) != 0) return bad_value(c, p, v, NULL);
        *(int *)field(conf, p->off) = n;
        return 0;
    }
    case P_MS: {
        int64_t n;
        if (*v == '\0' && (p->flags & P_OPTIONAL)) n = -1;
        else if (parse_ms(v, p->ms_max, &n) != 0) return bad_value(c, p, v, NULL);
        *(int64_t *)field(conf, p->off) = n;
        return 0;
    }
    case P_BYTES: {
        int64_t n;
        if (parse_bytes(v, p->bytes_min, p->ms_max, &n) != 0) return bad_value(c, p, v, NULL);
        *(int64_t *)field(conf, p->off) = n;
        return 0;
    }
    case P_BOOL: {
        bool b;
        if (parse_bool(v, &b) != 0) return bad_value(c, p, v, NULL);
        *(bool *)field(conf, p->off) = b;
        return 0;
    }
    case P_ENUM: {
        int n = parse_enum(p, v);
        if (n < 0) return bad_value(c, p, v, NULL);
        *(int *)field(conf, p->off) = n;
        return 0;
    }
    case P_TOPICS: {
        char **topics = NULL;
        int cnt = 0;
        int rc = parse_topics(v, &topics, &cnt, why, sizeof(why));
        if (rc == TALLY_ENOMEM) return ctx_err(c, rc, "out of memory");
        if (rc != 0) return bad_value(c, p, v, why);
        char ***dst = field(conf, p->off);
        int *dst_cnt = field(conf, p->off_cnt);
        topics_free(*dst, *dst_cnt);
        *dst = topics;
        *dst_cnt = cnt;
        return 0;
    }
    }
    assert(!"unknown property type");
    return TALLY_EINVAL;
}

/* A later kafka.* duplicate replaces the value and keeps the first position. */
static int kafka_put(tally_config_t *conf, const char *key, const char *value) {
    char *v = strdup(value);
    if (!v) return TALLY_ENOMEM;
    for (int i = 0; i < conf->kafka_cnt; i++)
        if (strcmp(conf->kafka[i].key, key) == 0) {
            free(conf->kafka[i].value);
            conf->kafka[i].value = v;
            return 0;
        }
    char *k = strdup(key);
    tally_kv_t *grown = k ? realloc(conf->kafka, (size_t)(conf->kafka_cnt + 1) * sizeof(*grown)) : NULL;
    if (!grown) {
        free(k);
        free(v);
        return TALLY_ENOMEM;
    }
    conf->kafka = grown;
    conf->kafka[conf->kafka_cnt].key = k;
    conf->kafka[conf->kafka_cnt].value = v;
    conf->kafka_cnt++;
    return 0;
}

/* ---- did you mean ------------------------------------------------------------------------- */

/* Levenshtein distance; keys longer than 127 bytes get no suggestion. */
static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 127 || lb > 127) return INT_MAX;
    int row[128];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static bool affix_match(const char *typed, const char *name) {
    size_t lt = strlen(typed), ln = strlen(name);
    const char *shorter = lt < ln ? typed : name, *longer = lt < ln ? name : typed;
    size_t ls = lt < ln ? lt : ln, ll = lt < ln ? ln : lt;
    if (ls < 4) return false;
    return strncmp(longer, shorter, ls) == 0 || strcmp(longer + ll - ls, shorter) == 0;
}

/* Librdkafka settings written without the prefix: hint at "kafka.<key>". Only reads a fresh conf
 * (rd_kafka_conf_set could run side effects such as loading plugins). */
static bool librdkafka_knows(const char *key) {
    char buf[8];
    size_t size = sizeof(buf);
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    if (!kc) return false;
    bool known = rd_kafka_conf_get(kc, key, buf, &size) != RD_KAFKA_CONF_UNKNOWN;
    rd_kafka_conf_destroy(kc);
    if (known) return true;
    rd_kafka_topic_conf_t *tc = rd_kafka_topic_conf_new();
    if (!tc) return false;
    size = sizeof(buf);
    known = rd_kafka_topic_conf_get(tc, key, buf, &size) != RD_KAFKA_CONF_UNKNOWN;
    rd_kafka_topic_conf_destroy(tc);
    return known;
}

static int unknown_key(const ctx_t *c, const char *key) {
    /* Settings tally derives itself, which users bring from Kafka Streams or librdkafka. */
    static const struct { const char *key, *hint; } derived[] = {
        {"group.id", "the consumer group is application.id"},
        {"transactional.id", "transactional ids derive from application.id"},
    };
    const char *best = NULL;
    int best_d = INT_MAX;
    for (size_t i = 0; i < PROPS_CNT; i++) {
        int d = edit_distance(key, props[i].name);
        if (d <= 3 && d < best_d) {
            best = props[i].name;
            best_d = d;
        }
    }
    for (size_t i = 0; !best && i < PROPS_CNT; i++)
        if (affix_match(key, props[i].name)) best = props[i].name;
    if (best) return ctx_err(c, TALLY_ECONFIG, "unknown key \"%s\" (did you mean \"%s\"?)", key, best);
    for (size_t i = 0; i < sizeof(derived) / sizeof(derived[0]); i++)
        if (strcmp(key, derived[i].key) == 0)
            return ctx_err(c, TALLY_ECONFIG, "unknown key \"%s\" (%s)", key, derived[i].hint);
    if (librdkafka_knows(key))
        return ctx_err(c, TALLY_ECONFIG,
                       "unknown key \"%s\" (did you mean \"" KAFKA_PREFIX "%s\"? librdkafka "
                       "settings take the \"" KAFKA_PREFIX "\" prefix)", key, key);
    return ctx_err(c, TALLY_ECONFIG, "unknown key \"%s\" (see --help-config)", key);
}

/* librdkafka settings that carry tally's guarantees: set by the engine, never passed through. */
static const struct {
    const char *key, *why;
} kafka_owned[] = {
    {"bootstrap.servers", "use bootstrap.servers"},
    {"group.id", "the consumer group is application.id"},
    {"group.instance.id", "derived from application.id"},
    {"transactional.id", "derived from application.id"},
    {"enable.auto.commit", "offsets are committed with each epoch"},
    {"enable.auto.offset.store", "offsets are committed with each epoch"},
    {"isolation.level", "tally reads read_committed"},
    {"auto.offset.reset", "use starting.offsets and fail.on.data.loss"},
    {"enable.idempotence", "always on"},
    {"transaction.timeout.ms", "use transaction.timeout.ms"},
};

static int apply(tally_config_t *conf, const char *key, const char *value, const ctx_t *c) {
    if (*key == '\0') return ctx_err(c, TALLY_ECONFIG, "empty key before value " VALUE_FMT, VALUE_ARG(value));
    if (strncmp(key, KAFKA_PREFIX, KAFKA_PREFIX_LEN) == 0) {
        if (key[KAFKA_PREFIX_LEN] == '\0')
            return ctx_err(c, TALLY_ECONFIG,
                           "empty key \"%s\": a librdkafka property name must follow \"" KAFKA_PREFIX
                           "\"", key);
        for (size_t i = 0; i < sizeof(kafka_owned) / sizeof(kafka_owned[0]); i++)
            if (strcmp(key + KAFKA_PREFIX_LEN, kafka_owned[i].key) == 0)
                return ctx_err(c, TALLY_ECONFIG, "key \"%s\" is not allowed: tally sets %s itself (%s)", key,
                               kafka_owned[i].key, kafka_owned[i].why);
        if (kafka_put(conf, key + KAFKA_PREFIX_LEN, value) != 0)
            return ctx_err(c, TALLY_ENOMEM, "out of memory");
        return 0;
    }
    const prop_t *p = prop_find(key);
    if (!p) return unknown_key(c, key);
    return prop_set(conf, p, value, c);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

void tally_config_init(tally_config_t *conf) {
    memset(conf, 0, sizeof(*conf));
    for (size_t i = 0; i < PROPS_CNT; i++) {
        if (props[i].type == P_MS) *(int64_t *)field(conf, props[i].off) = -1; /* unset */
        if (!props[i].def) continue;
        ctx_t c = {.origin = "default"};
        int rc = prop_set(conf, &props[i], props[i].def, &c);
        assert(rc == 0 && "a default in props[] does not parse");
        (void)rc;
    }
}

void tally_config_term(tally_config_t *conf) {
    for (size_t i = 0; i < PROPS_CNT; i++) {
        const prop_t *p = &props[i];
        if (p->type == P_STRING) {
            char **s = field(conf, p->off);
            free(*s);
        } else if (p->type == P_TOPICS) {
            topics_free(*(char ***)field(conf, p->off), *(int *)field(conf, p->off_cnt));
        }
    }
    for (int i = 0; i < conf->kafka_cnt; i++) {
        free(conf->kafka[i].key);
        free(conf->kafka[i].value);
    }
    free(conf->kafka);
    memset(conf, 0, sizeof(*conf));
}

int tally_config_copy(tally_config_t *dst, const tally_config_t *src) {
    *dst = *src;
    int r = 0;
    for (size_t i = 0; i < PROPS_CNT; i++) {
        const prop_t *p = &props[i];
        if (p->type == P_STRING) {
            char **d = field(dst, p->off);
            if (*d && !(*d = strdup(*d))) r = TALLY_ENOMEM;
        } else if (p->type == P_TOPICS) {
            char ***d = field(dst, p->off);
            int n = *(int *)field(dst, p->off_cnt);
            char **t = calloc((size_t)n + 1, sizeof(char *));
            for (int k = 0; t && k < n; k++)
                if (!(t[k] = strdup((*d)[k]))) r = TALLY_ENOMEM;
            if (!t) {
                *(int *)field(dst, p->off_cnt) = 0;
                r = TALLY_ENOMEM;
            }
            *d = t;
        }
    }
    dst->kafka = calloc((size_t)src->kafka_cnt + 1, sizeof(tally_kv_t));
    if (!dst->kafka) dst->kafka_cnt = 0;
    for (int i = 0; dst->kafka && i < src->kafka_cnt; i++) {
        dst->kafka[i].key = strdup(src->kafka[i].key);
        dst->kafka[i].value = strdup(src->kafka[i].value);
        if (!dst->kafka[i].key || !dst->kafka[i].value) r = TALLY_ENOMEM;
    }
    if (!dst->kafka) r = TALLY_ENOMEM;
    return r;
}

/* ---- the properties format ---------------------------------------------------------------- */

static bool is_ws(char ch) { return ch == ' ' || ch == '\t' || ch == '\f'; }

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Resolves escapes (\t \n \r \f \uXXXX, and \x = x for anything else) into a new string. When
 * `trim` is set, trailing whitespace is dropped unless it was escaped. Caller frees. */
static char *unescape(const char *s, size_t len, bool trim) {
    char *out = malloc(len + 1);
    if (!out) return NULL;
    size_t n = 0, keep = 0; /* keep: bytes that trimming must not remove */
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch != '\\') {
            out[n++] = ch;
            continue;
        }
        if (++i >= len) break; /* a lone backslash at the very end */
        ch = s[i];
        switch (ch) {
        case 't': out[n++] = '\t'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 'f': out[n++] = '\f'; break;
        case 'u': {
            unsigned cp = 0;
            int ok = i + 4 < len;
            for (size_t k = 1; ok && k <= 4; k++) {
                int h = hexval(s[i + k]);
                if (h < 0) ok = 0;
                else cp = cp * 16 + (unsigned)h;
            }
            if (!ok || cp == 0) { /* malformed or NUL: keep the 'u' */
                out[n++] = 'u';
                break;
            }
            i += 4;
            if (cp < 0x80) {
                out[n++] = (char)cp;
            } else if (cp < 0x800) {
                out[n++] = (char)(0xc0 | (cp >> 6));
                out[n++] = (char)(0x80 | (cp & 0x3f));
            } else {
                out[n++] = (char)(0xe0 | (cp >> 12));
                out[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                out[n++] = (char)(0x80 | (cp & 0x3f));
            }
            break;
        }
        default: out[n++] = ch; break;
        }
        keep = n;
    }
    if (trim)
        while (n > keep && (is_ws(out[n - 1]) || out[n - 1] == '\r' || out[n - 1] == '\n')) n--;
    out[n] = '\0';
    return out;
}

/* One logical line, continuations joined and leading whitespace gone: split it into key and value
 * (the key ends at the first unescaped '=', ':' or whitespace) and apply it. */
static int parse_line(tally_config_t *conf, const char *line, size_t len, const ctx_t *c) {
    size_t i = 0;
    while (i < len && line[i] != '=' && line[i] != ':' && !is_ws(line[i])) i += line[i] == '\\' ? 2 : 1;
    if (i > len) i = len;
    size_t key_len = i;
    while (i < len && is_ws(line[i])) i++;
    if (i < len && (line[i] == '=' || line[i] == ':')) i++;
    while (i < len && is_ws(line[i])) i++;
    char *key = unescape(line, key_len, false);
    char *value = unescape(line + i, len - i, true);
    int rc = key && value ? apply(conf, key, value, c) : ctx_err(c, TALLY_ENOMEM, "out of memory");
    free(key);
    free(value);
    return rc;
}

/* A natural line ends at \n, \r\n or \r; returns its end and sets *next past the terminator. */
static const char *line_end(const char *p, const char **next) {
    const char *e = p + strcspn(p, "\r\n");
    *next = e;
    if (*e == '\r' && e[1] == '\n') *next = e + 2;
    else if (*e) *next = e + 1;
    return e;
}

/* An odd number of trailing backslashes continues the line. */
static bool continues(const char *s, const char *e) {
    size_t n = 0;
    while (e > s && e[-1] == '\\') {
        e--;
        n++;
    }
    return n % 2 == 1;
}

int tally_config_load_string(tally_config_t *conf, const char *text, const char *origin,
                             char *errstr, size_t errstr_size) {
    ctx_t c = {.origin = origin ? origin : "(string)", .errstr = errstr, .errstr_size = errstr_size};
    const char *p = text;
    if (strncmp(p, "\xef\xbb\xbf", 3) == 0) p += 3; /* UTF-8 byte order mark */
    char *buf = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (*p && rc == 0) {
        const char *next, *e;
        lineno++;
        while (is_ws(*p)) p++;
        e = line_end(p, &next);
        if (p == e || *p == '#' || *p == '!') { /* blank or comment: never continued */
            p = next;
            continue;
        }
        c.line = lineno;
        size_t len = 0;
        for (;;) {
            bool more = continues(p, e);
            size_t add = (size_t)(e - p) - (more ? 1 : 0);
            if (len + add + 1 > cap) {
                size_t ncap = cap ? cap : 256;
                while (ncap < len + add + 1) ncap *= 2;
                char *grown = realloc(buf, ncap);
                if (!grown) {
                    free(buf);
                    return ctx_err(&c, TALLY_ENOMEM, "out of memory");
                }
                buf = grown;
                cap = ncap;
            }
            memcpy(buf + len, p, add);
            len += add;
            p = next;
            if (!more || *p == '\0') break;
            lineno++;
            while (is_ws(*p)) p++;
            e = line_end(p, &next);
        }
        rc = parse_line(conf, buf, len, &c);
    }
    free(buf);
    return rc;
}

int tally_config_load_file(tally_config_t *conf, const char *path, char *errstr, size_t errstr_size) {
    tally_buf_t b;
    tally_buf_init(&b);
    int err = tally_buf_read_file(&b, path), rc = 0;
    if (err) {
        seterr(errstr, errstr_size, "cannot read %s: %s", path, err == ENOMEM ? "out of memory" : strerror(err));
        rc = err == ENOMEM ? TALLY_ENOMEM : TALLY_EIO;
    } else if (memchr(b.data, '\0', b.len)) {
        seterr(errstr, errstr_size, "%s: not a text file (contains a NUL byte)", path);
        rc = TALLY_ECONFIG;
    } else {
        rc = tally_config_load_string(conf, b.data, path, errstr, errstr_size);
    }
    tally_buf_term(&b);
    return rc;
}

/* --set takes "key=value" as the shell passed it: split at the first '=', whitespace around key and
 * value trimmed, no escapes (a Windows path or a JAAS line arrives intact). */
int tally_config_set(tally_config_t *conf, const char *key_eq_value, char *errstr, size_t errstr_size) {
    ctx_t c = {.origin = "--set", .errstr = errstr, .errstr_size = errstr_size};
    const char *eq = strchr(key_eq_value, '=');
    if (!eq) return ctx_err(&c, TALLY_ECONFIG, "expected key=value, got " VALUE_FMT, VALUE_ARG(key_eq_value));
    const char *ks = key_eq_value, *ke = eq, *vs = eq + 1, *ve = eq + strlen(eq);
    while (ks < ke && is_ws(*ks)) ks++;
    while (ke > ks && is_ws(ke[-1])) ke--;
    while (vs < ve && is_ws(*vs)) vs++;
    while (ve > vs && is_ws(ve[-1])) ve--;
    char *key = strndup(ks, (size_t)(ke - ks));
    char *value = strndup(vs, (size_t)(ve - vs));
    int rc = key && value ? apply(conf, key, value, &c) : ctx_err(&c, TALLY_ENOMEM, "out of memory");
    free(key);
    free(value);
    return rc;
}

/* ---- validation --------------------------------------------------------------------------- */

static bool is_set(const tally_config_t *conf, const prop_t *p) {
    if (p->type == P_STRING) return *(char **)field(conf, p->off) != NULL;
    if (p->type == P_TOPICS) return *(int *)field(conf, p->off_cnt) > 0;
    if (p->type == P_MS) return *(int64_t *)field(conf, p->off) >= 0;
    return true;
}

/* The window keys together. Nothing is silently ignored: a key that has no effect in the
 * configuration given is an error naming what it needs. */
static int validate_windows(const tally_config_t *conf, char *errstr, size_t errstr_size) {
    bool windows = conf->window_size_ms > 0, watermark = conf->watermark_delay_ms >= 0;
    /* First, so the message names both keys whatever else is missing. Spark's words: "Append output
     * mode not supported when there are streaming aggregations on streaming DataFrames/DataSets
     * without watermark" (UnsupportedOperationChecker). */
    if (conf->output_mode == TALLY_OUTPUT_APPEND && (!windows || !watermark)) {
        seterr(errstr, errstr_size,
               "output.mode=append is not supported for word counts without %s: a window's counts are "
               "final only once the watermark closes it (Spark: \"Append output mode not supported when "
               "there are streaming aggregations on streaming DataFrames/DataSets without watermark\"); "
               "set %s, or use output.mode=update",
               windows ? "a watermark" : "windows and a watermark",
               windows ? "watermark.delay.ms" : "window.size.ms and watermark.delay.ms");
        return TALLY_ECONFIG;
    }
    if (!windows) {
        const char *key = conf->window_slide_ms > 0            ? "window.slide.ms"
                          : watermark                          ? "watermark.delay.ms"
                          : conf->watermark_idle_ms >= 0       ? "watermark.idle.ms"
                          : conf->window_close_idle_ms >= 0    ? "window.close.idle.ms"
                          : conf->event_time != TALLY_EVENT_TIME_RECORD ? "event.time"
                          : conf->watermark_policy != TALLY_WATERMARK_MAX ? "watermark.policy"
                                                                        : NULL;
        if (key) {
            seterr(errstr, errstr_size, "%s is set but window.size.ms=0 (no windows), where it has no "
                   "effect: set window.size.ms, or remove %s", key, key);
            return TALLY_ECONFIG;
        }
        return 0;
    }
    char why[192];
    int64_t slide = conf->window_slide_ms ? conf->window_slide_ms : conf->window_size_ms;
    if (tally_window_check(conf->window_size_ms, slide, why, sizeof(why)) != 0) {
        seterr(errstr, errstr_size, "window.size.ms=%" PRId64 " with window.slide.ms=%" PRId64 ": %s",
               conf->window_size_ms, conf->window_slide_ms, why);
        return TALLY_ECONFIG;
    }
    const char *needs = !watermark && conf->watermark_policy != TALLY_WATERMARK_MAX ? "watermark.policy=min"
                        : !watermark && conf->watermark_idle_ms >= 0          ? "watermark.idle.ms"
                        : !watermark && conf->window_close_idle_ms >= 0       ? "window.close.idle.ms"
                                                                               : NULL;
    if (needs) {
        seterr(errstr, errstr_size, "%s is set without a watermark: set watermark.delay.ms", needs);
        return TALLY_ECONFIG;
    }
    /* Spark: complete mode keeps every window, so a watermark there drops and closes nothing. */
    if (watermark && conf->output_mode == TALLY_OUTPUT_COMPLETE) {
        seterr(errstr, errstr_size,
               "watermark.delay.ms is set but output.mode=complete keeps and emits every window, so the "
               "watermark would close nothing (as in Spark): use output.mode=update or append, or "
               "remove watermark.delay.ms");
        return TALLY_ECONFIG;
    }
    if (conf->watermark_idle_ms >= 0 && conf->watermark_policy != TALLY_WATERMARK_MIN) {
        seterr(errstr, errstr_size,
               "watermark.idle.ms is set but watermark.policy=max, where no partition holds the "
               "watermark back: set watermark.policy=min, or remove watermark.idle.ms");
        return TALLY_ECONFIG;
    }
    if (conf->input_path && conf->event_time == TALLY_EVENT_TIME_RECORD) {
        seterr(errstr, errstr_size,
               "event.time=record with input.path: the lines of a file carry no timestamp; set "
               "event.time=processing (each epoch's lines take the time the epoch began)");
        return TALLY_ECONFIG;
    }
    if (conf->state_rebuild) {
        seterr(errstr, errstr_size,
               "state.rebuild=true with windows: a rebuild replays the whole input under one watermark, "
               "which would count records an uninterrupted run dropped as late; remove state.rebuild");
        return TALLY_ECONFIG;
    }
    return 0;
}

/* state.dir NULL is valid: the engine then uses ./state/<application.id>. */
int tally_config_validate(const tally_config_t *conf, char *errstr, size_t errstr_size) {
    for (size_t i = 0; i < PROPS_CNT; i++) {
        const prop_t *p = &props[i];
        char allowed[256];
        if ((p->flags & P_REQUIRED) && !is_set(conf, p)) {
            seterr(errstr, errstr_size, "missing required key \"%s\"", p->name);
            return TALLY_ECONFIG;
        }
        /* The struct is public: fields set in code get the same range checks as parsed ones. */
        int n = p->type == P_INT || p->type == P_ENUM ? *(int *)field(conf, p->off) : 0;
        bool bad = false;
        if (p->type == P_INT) bad = n < p->min || n > p->max;
        if (p->type == P_ENUM) {
            int cnt = 0;
            while (p->values[cnt]) cnt++;
            bad = n < 0 || n >= cnt;
        }
        if (bad) {
            allowed_text(p, allowed, sizeof(allowed));
            seterr(errstr, errstr_size, "bad value %d for %s: %s", n, p->name, allowed);
            return TALLY_ECONFIG;
        }
        int64_t ms = p->type == P_MS ? *(int64_t *)field(conf, p->off) : 0;
        if (ms > p->ms_max || ms < ((p->flags & P_OPTIONAL) ? -1 : 0)) {
            allowed_text(p, allowed, sizeof(allowed));
            seterr(errstr, errstr_size, "bad value %" PRId64 " for %s: %s", ms, p->name, allowed);
            return TALLY_ECONFIG;
        }
    }
    if (!conf->input_topic_cnt == !conf->input_path) {
        seterr(errstr, errstr_size, conf->input_path ? "input.topic and input.path are both set: tally reads one of them"
                                                     : "missing required key \"input.topic\" (or input.path, to count files)");
        return TALLY_ECONFIG;
    }
    if (!conf->bootstrap_servers && (conf->input_topic_cnt || conf->sink == TALLY_SINK_KAFKA || conf->progress_topic)) {
        seterr(errstr, errstr_size, "missing required key \"bootstrap.servers\" (required when %s)",
               conf->input_topic_cnt ? "input.topic is read" : conf->progress_topic ? "progress.topic is set" : "sink=kafka");
        return TALLY_ECONFIG;
    }
    if (conf->files_clean == TALLY_CLEAN_ARCHIVE && !conf->files_archive_dir) {
        seterr(errstr, errstr_size, "missing required key \"files.archive.dir\" (required when files.clean=archive)");
        return TALLY_ECONFIG;
    }
    if (conf->trigger_available_now && !conf->input_path) {
        seterr(errstr, errstr_size, "trigger.available.now=true needs input.path: a topic has no end to stop at");
        return TALLY_ECONFIG;
    }
    int r = validate_windows(conf, errstr, errstr_size);
    if (r) return r;
    if (conf->sink == TALLY_SINK_KAFKA && !conf->output_topic) {
        seterr(errstr, errstr_size, "missing required key \"output.topic\" (required when sink=kafka)");
        return TALLY_ECONFIG;
    }
    if (conf->sink == TALLY_SINK_FILES && !conf->output_path) {
        seterr(errstr, errstr_size, "missing required key \"output.path\" (required when sink=files)");
        return TALLY_ECONFIG;
    }
    if (conf->sink != TALLY_SINK_FILES && conf->output_path) {
        seterr(errstr, errstr_size, "output.path is set but sink=%s: set sink=files to write files",
               sink_values[conf->sink]);
        return TALLY_ECONFIG;
    }
    if (conf->sink == TALLY_SINK_FILES && conf->output_topic) {
        seterr(errstr, errstr_size, "output.topic is set but sink=files writes output.path: remove one");
        return TALLY_ECONFIG;
    }
    for (int i = 0; i < conf->input_topic_cnt; i++) {
        const char *t = conf->input_topics[i];
        /* Counting our own output would feed every count back in as words. */
        if (conf->sink == TALLY_SINK_KAFKA && conf->output_topic && strcmp(t, conf->output_topic) == 0) {
            seterr(errstr, errstr_size, "output.topic \"%s\" is also an input.topic", t);
            return TALLY_ECONFIG;
        }
        if (conf->progress_topic && strcmp(t, conf->progress_topic) == 0) {
            seterr(errstr, errstr_size, "progress.topic \"%s\" is also an input.topic", t);
            return TALLY_ECONFIG;
        }
    }
    if (conf->progress_topic && conf->output_topic && conf->sink == TALLY_SINK_KAFKA &&
        strcmp(conf->progress_topic, conf->output_topic) == 0) {
        seterr(errstr, errstr_size, "progress.topic and output.topic are both \"%s\"", conf->output_topic);
        return TALLY_ECONFIG;
    }
    if (conf->topology == TALLY_TOPOLOGY_DISTRIBUTED) {
        const char *why = conf->input_path                       ? "input.path (files are read by one instance)"
                          : conf->sink != TALLY_SINK_KAFKA        ? "sink=kafka (the internal topics join the output's transaction)"
                          : conf->guarantee != TALLY_EXACTLY_ONCE ? "processing.guarantee=exactly_once"
                          : conf->output_mode == TALLY_OUTPUT_COMPLETE ? "output.mode=update or append"
                          : conf->watermark_policy != TALLY_WATERMARK_MAX
                              ? "watermark.policy=max (each repartition partition keeps its own watermark, from the "
                                "greatest event time of every input)"
                          : conf->watermark_idle_ms >= 0 ? "no watermark.idle.ms (it belongs to watermark.policy=min)"
                          : conf->window_close_idle_ms >= 0
                              ? "no window.close.idle.ms (the wall clock cannot close windows across instances yet)"
                          : conf->state_rebuild                    ? "no state.rebuild (an instance restores its state from the changelog)"
                                                                   : NULL;
        if (why) {
            seterr(errstr, errstr_size, "topology=distributed needs %s", why);
            return TALLY_ECONFIG;
        }
    }
    if (conf->guarantee == TALLY_EXACTLY_ONCE && conf->transaction_timeout_ms <= conf->trigger_interval_ms) {
        seterr(errstr, errstr_size,
               "transaction.timeout.ms (%d) must be greater than trigger.interval.ms (%d) with "
               "processing.guarantee=exactly_once",
               conf->transaction_timeout_ms, conf->trigger_interval_ms);
        return TALLY_ECONFIG;
    }
    return 0;
}

/* ---- printing ----------------------------------------------------------------------------- */

const char *tally_config_sink_name(tally_sink_t s) {
    return s >= 0 && s < (int)(sizeof(sink_values) / sizeof(sink_values[0])) - 1 ? sink_values[s] : "?";
}

bool tally_config_is_secret(const char *key) {
    static const char *const words[] = {"password", "secret", "sasl.jaas", "key.pem", "private", "token"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasestr(key, words[i])) return true;
    return false;
}

/* Writes s escaped so that the parser reads it back unchanged. */
static void put_escaped(FILE *out, const char *s, bool is_key) {
    size_t len = strlen(s);
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        switch (ch) {
        case '\\': fputs("\\\\", out); continue;
        case '\n': fputs("\\n", out); continue;
        case '\r': fputs("\\r", out); continue;
        case '\t': fputs("\\t", out); continue;
        case '\f': fputs("\\f", out); continue;
        default: break;
        }
        bool esc = false;
        if (is_key) esc = ch == '=' || ch == ':' || ch == ' ' || ((ch == '#' || ch == '!') && i == 0);
        else esc = ch == ' ' && (i == 0 || i == len - 1); /* leading is skipped, trailing trimmed */
        if (esc) fputc('\\', out);
        fputc(ch, out);
    }
}

static void put_value(FILE *out, const tally_config_t *conf, const prop_t *p) {
    switch (p->type) {
    case P_STRING: put_escaped(out, *(char **)field(conf, p->off), false); break;
    case P_INT: fprintf(out, "%d", *(int *)field(conf, p->off)); break;
    case P_MS:
    case P_BYTES: fprintf(out, "%" PRId64, *(int64_t *)field(conf, p->off)); break;
    case P_BOOL: fputs(*(bool *)field(conf, p->off) ? "true" : "false", out); break;
    case P_ENUM: {
        int n = *(int *)field(conf, p->off), cnt = 0;
        while (p->values[cnt]) cnt++;
        if (n >= 0 && n < cnt) fputs(p->values[n], out);
        else fprintf(out, "%d", n);
        break;
    }
    case P_TOPICS: {
        char **t = *(char ***)field(conf, p->off);
        int cnt = *(int *)field(conf, p->off_cnt);
        for (int i = 0; i < cnt; i++) {
            if (i) fputc(',', out);
            put_escaped(out, t[i], false);
        }
        break;
    }
    }
}

void tally_config_print(const tally_config_t *conf, FILE *out) {
    fputs("# tally effective configuration\n", out);
    for (size_t i = 0; i < PROPS_CNT; i++) {
        const prop_t *p = &props[i];
        if (!is_set(conf, p)) {
            fprintf(out, "# %s (unset%s%s)\n", p->name, p->unset ? ": " : "", p->unset ? p->unset : "");
            continue;
        }
        fprintf(out, "%s=", p->name);
        if (tally_config_is_secret(p->name)) fputs("********", out);
        else put_value(out, conf, p);
        fputc('\n', out);
    }
    for (int i = 0; i < conf->kafka_cnt; i++) {
        fputs(KAFKA_PREFIX, out);
        put_escaped(out, conf->kafka[i].key, true);
        fputc('=', out);
        if (tally_config_is_secret(conf->kafka[i].key)) fputs("********", out);
        else put_escaped(out, conf->kafka[i].value, false);
        fputc('\n', out);
    }
}

static const char *type_name(const prop_t *p) {
    switch (p->type) {
    case P_STRING: return "string";
    case P_INT: return "integer";
    case P_BOOL: return "boolean";
    case P_ENUM: return "enum";
    case P_TOPICS: return "topic list";
    case P_MS: return "integer";
    case P_BYTES: return "size";
    }
    return "?";
}

/* The default as a person reads it: the table's string, or what unset means. */
static const char *default_text(const prop_t *p) {
    if (p->flags & P_REQUIRED) return "(required)";
    if (p->def && *p->def) return p->def;
    return p->unset ? p->unset : "(unset)";
}

/* Writes text as lines of at most `width` columns, each indented by `indent` spaces. */
static void put_wrapped(FILE *out, const char *text, int indent, int width) {
    const char *p = text;
    while (*p) {
        int room = width - indent;
        int len = (int)strlen(p), cut = len;
        if (len > room) {
            cut = room;
            while (cut > 0 && p[cut] != ' ') cut--;
            if (cut == 0) cut = room; /* one word longer than the line */
        }
        fprintf(out, "%*s%.*s\n", indent, "", cut, p);
        p += cut;
        while (*p == ' ') p++;
    }
}

void tally_config_print_help(FILE *out) {
    fputs("Configuration keys (a properties file, or --set key=value):\n\n", out);
    for (size_t i = 0; i < PROPS_CNT; i++) {
        const prop_t *p = &props[i];
        char allowed[256], line[512];
        allowed_doc(p, allowed, sizeof(allowed));
        fprintf(out, "  %s (%s)\n", p->name, type_name(p));
        put_wrapped(out, p->desc, 6, 100);
        if (p->flags & P_REQUIRED) snprintf(line, sizeof(line), "Allowed: %s. Required.", allowed);
        else snprintf(line, sizeof(line), "Allowed: %s. Default: %s.", allowed, default_text(p));
        put_wrapped(out, line, 6, 100);
        fputc('\n', out);
    }
    fputs("  " KAFKA_PREFIX "<property> (string)\n", out);
    put_wrapped(out, KAFKA_DESC, 6, 100);
}

/* Table cell text: '|' would end the cell, '<' would start an HTML tag. */
static void md_put(FILE *out, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", out);
        else if (*s == '<') fputs("&lt;", out);
        else if (*s == '>') fputs("&gt;", out);
        else fputc(*s, out);
    }
}

void tally_config_print_markdown(FILE *out) {
    fputs("# Configuration reference\n\n"
          "<!-- Generated from the table in src/config.c (tally_config_print_markdown); do not edit. -->\n\n"
          "A properties file (`key=value`, `key: value` or `key value`; `#` and `!` start comments; "
          "a trailing `\\` continues a line), and `--set key=value` on the command line.\n\n"
          "| Key | Type | Default | Allowed | Description |\n"
          "|-----|------|---------|---------|-------------|\n",
          out);
    for (size_t i = 0; i < PROPS_CNT; i++) {
        const prop_t *p = &props[i];
        char allowed[256];
        allowed_doc(p, allowed, sizeof(allowed));
        bool literal = p->def && *p->def;
        fprintf(out, "| `%s` | %s | ", p->name, type_name(p));
        if (literal) fprintf(out, "`%s`", p->def);
        else md_put(out, default_text(p));
        fputs(" | ", out);
        md_put(out, allowed);
        fputs(" | ", out);
        md_put(out, p->desc);
        fputs(" |\n", out);
    }
    fprintf(out, "| `" KAFKA_PREFIX "*` | string | | any librdkafka property | %s |\n", KAFKA_DESC);
}
