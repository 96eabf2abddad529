/* SPDX-License-Identifier: MIT */
/* The engine's configuration: one table (src/config.c) that parses Java-properties files and
 * `--set key=value` overrides, validates, prints --help-config and the effective configuration. */
#ifndef TALLY_CONFIG_H
#define TALLY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tally/window.h"

typedef enum { TALLY_SINK_KAFKA = 0, TALLY_SINK_CONSOLE, TALLY_SINK_FILES } tally_sink_t;
typedef enum { TALLY_FORMAT_JSONL = 0, TALLY_FORMAT_CSV, TALLY_FORMAT_PARQUET } tally_output_format_t;
typedef enum { TALLY_PARQUET_SNAPPY = 0, TALLY_PARQUET_ZSTD, TALLY_PARQUET_NONE } tally_parquet_codec_t;
typedef enum { TALLY_EXACTLY_ONCE = 0, TALLY_AT_LEAST_ONCE } tally_guarantee_t;
/* append: each window's final counts once, when the watermark closes it (Spark's append). */
typedef enum { TALLY_OUTPUT_UPDATE = 0, TALLY_OUTPUT_COMPLETE, TALLY_OUTPUT_APPEND } tally_output_mode_t;
/* Which time places a record in windows: its Kafka timestamp, or when tally read it. */
typedef enum { TALLY_EVENT_TIME_RECORD = 0, TALLY_EVENT_TIME_PROCESSING } tally_event_time_t;
typedef enum { TALLY_START_EARLIEST = 0, TALLY_START_LATEST } tally_start_t;
/* single: one instance per application.id; distributed: many share it through Kafka (docs/scaling.md). */
typedef enum { TALLY_TOPOLOGY_SINGLE = 0, TALLY_TOPOLOGY_DISTRIBUTED } tally_topology_t;
typedef enum { TALLY_CLEAN_OFF = 0, TALLY_CLEAN_DELETE, TALLY_CLEAN_ARCHIVE } tally_files_clean_t;

typedef struct tally_kv_s {
    char *key;   /* without the "kafka." prefix, e.g. "security.protocol" */
    char *value;
} tally_kv_t;

typedef struct tally_config_s {
    char *bootstrap_servers;      /* required when Kafka is read or written */
    char *application_id;         /* required: consumer group; transactional.id derives from it */
    char **input_topics;          /* "input.topic", a comma list; or input_path */
    int input_topic_cnt;
    char *input_path;             /* "input.path": a directory or glob of text files (filesource.c) */
    int files_max_per_trigger;    /* 0 = no bound */
    int files_max_bytes_per_trigger;
    tally_files_clean_t files_clean;
    char *files_archive_dir;
    int files_readers;            /* 0 = online cores */
    int files_split_bytes;
    bool trigger_available_now;
    char *output_topic;           /* required when sink=kafka */
    tally_sink_t sink;
    char *output_path;            /* sink=files: the output directory (required there) */
    tally_output_format_t output_format;
    tally_parquet_codec_t parquet_codec; /* "output.parquet.compression" */
    char *state_dir;              /* default "./state/<application.id>" */
    int workers;                  /* default: online cores */
    int trigger_interval_ms;
    tally_guarantee_t guarantee;  /* "processing.guarantee" */
    tally_output_mode_t output_mode;
    /* Event-time windows (window.h). The *_ms fields that may be unset hold -1 then. */
    int64_t window_size_ms;       /* 0 = no windows */
    int64_t window_slide_ms;      /* 0 = window_size_ms (tumbling) */
    tally_event_time_t event_time;
    int64_t watermark_delay_ms;   /* -1 = no watermark */
    tally_watermark_policy_t watermark_policy;
    int64_t watermark_idle_ms;    /* -1 = a partition is never idle */
    int64_t window_close_idle_ms; /* -1 = off */
    tally_start_t starting_offsets;
    bool fail_on_data_loss;
    int max_word_bytes;
    int cache_max_words;          /* "state.cache.max.words": bound on words held in memory, 0 = none,
                                   * -1 = from memory_max_bytes (budget.h) */
    int64_t memory_max_bytes;     /* "memory.max.bytes": the process's memory budget (budget.h) */
    bool state_rebuild;           /* "state.rebuild": replay input from the beginning into an empty state.dir */
    int state_write_interval_ms;  /* "state.write.interval.ms": the state writer writes at most this often */
    int recovery_stall_ms;        /* "recovery.stall.timeout.ms": a replay that receives nothing this long stops */
    int log_level;                /* tally_log_level_t */
    int transaction_timeout_ms;
    int metadata_refresh_ms;      /* "metadata.refresh.interval.ms": how soon new input partitions are seen */
    char *http_listen;            /* "http.listen" host:port, NULL = off */
    char *progress_topic;         /* NULL = off */
    tally_topology_t topology;
    char *instance_id;            /* topology=distributed: this instance's name; NULL = derived (engine) */
    int repartition_partitions;   /* partitions of the internal topics (fixed when they are created) */
    int internal_replication;     /* "internal.replication.factor"; -1 = the broker's default */
    tally_kv_t *kafka;            /* "kafka.*" pass-through, in file order */
    int kafka_cnt;
} tally_config_t;

/* "kafka", "console", "files". */
const char *tally_config_sink_name(tally_sink_t s);

/* Sets every key to its default (parsed from the table's default string). */
void tally_config_init(tally_config_t *conf);
void tally_config_term(tally_config_t *conf);
/* A deep copy (dst owns its strings; tally_config_term frees them). On failure dst is still safe to term. */
int tally_config_copy(tally_config_t *dst, const tally_config_t *src);

/* Reads a properties file. On error returns a negative tally_err_t and writes into errstr a message
 * naming the file, the line, the key, the value and what is allowed (with a "did you mean" for typos). */
int tally_config_load_file(tally_config_t *conf, const char *path, char *errstr, size_t errstr_size);
/* Parses a properties text (the file's content); `origin` names it in messages. */
int tally_config_load_string(tally_config_t *conf, const char *text, const char *origin,
                             char *errstr, size_t errstr_size);
/* One "key=value" from the command line (--set); same checks and messages as a file line. */
int tally_config_set(tally_config_t *conf, const char *key_eq_value, char *errstr, size_t errstr_size);
/* Checks what spans keys: required keys present, output.topic for the kafka sink, ... */
int tally_config_validate(const tally_config_t *conf, char *errstr, size_t errstr_size);

/* Every key with type, default, allowed values and description (--help-config). */
void tally_config_print_help(FILE *out);
/* The effective configuration as a properties file; secrets (password, secret, key material) masked. */
void tally_config_print(const tally_config_t *conf, FILE *out);
/* The configuration reference in Markdown, generated from the same table (docs/configuration.md). */
void tally_config_print_markdown(FILE *out);

/* True for keys whose value must never be printed or logged. */
bool tally_config_is_secret(const char *key);

/* window.slide.ms, defaulted to window.size.ms (tumbling windows). */
static inline int64_t tally_config_window_slide(const tally_config_t *c) {
    return c->window_slide_ms > 0 ? c->window_slide_ms : c->window_size_ms;
}

#endif
