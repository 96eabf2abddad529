/* SPDX-License-Identifier: MIT */
/* The control thread's operability work: after each committed epoch a progress record (log line,
 * history, progress.topic) and the top words; every second the health tracking; after both a new
 * snapshot for the HTTP thread, which reads nothing else. The engine's numbers come from its view
 * callback. Every function here runs on the control thread, except tally_obs_stats (librdkafka's
 * statistics, under stats_mu). */
#include "observe.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tally/buf.h"
#include "tally/engine.h"
#include "tally/err.h"
#include "tally/health.h"
#include "tally/http.h"
#include "tally/json.h"
#include "tally/kafka.h"
#include "tally/kstats.h"
#include "tally/log.h"
#include "tally/progress.h"
#include "tally/prom.h"
#include "tally/snapshot.h"
#include "tally/tail.h"
#include "tally/topk.h"
#include "tally/window.h"

#define HISTORY 100          /* progress records kept for /progress */
#define MESSAGES 50          /* output records kept for /messages and the page */
#define TOP_CAP 1000         /* words kept for /top: exact for n <= TOP_CAP */
#define LOG_JSON_MAX 1700    /* a log line holds 2 KiB: longer records are logged without sources */

typedef struct {
    char *topic;
    int32_t partition;
    int64_t seen;
    double since;            /* when `seen` last moved */
} track_t;

struct tally_obs_s {
    const tally_config_t *conf;
    uv_loop_t *loop;
    _Atomic(tally_state_t *) state; /* set once open; read by the HTTP thread for /count */
    void (*view)(void *opaque, tally_obs_view_t *v);
    void *view_opaque;
    uv_timer_t timer;
    bool timer_on;

    tally_snapbox_t *box;    /* NULL without http.listen */
    tally_http_t *http;
    bool http_retry;         /* http.listen was in use at start: tried again every second */
    tally_progress_hist_t *hist;
    tally_topk_t *top;       /* NULL without http.listen */
    bool top_seeded;
    tally_blob_t *progress_blob, *top_blob;   /* our references; snapshots take their own */

    rd_kafka_t *progress_rk; /* progress.topic: a plain (non-transactional) producer */
    tally_tail_t *tail;      /* the output topic's newest records (http.listen with sink=kafka) */

    uint64_t lines_total, words_total, dropped_total, output_total, late_total;
    int64_t watermark;
    int64_t top_window;     /* windows: the window start the top words belong to */
    tally_obs_epoch_t last;
    tally_prom_hist_t phase_hist[4]; /* barrier, produce, commit, state: every committed epoch */
    double start_mono, last_commit_mono, last_commit_wall, commit_ok, stall_limit;

    track_t *track;
    int ntrack;
    char problem[512], problem_kind[16];

    pthread_mutex_t stats_mu;
    tally_kstats_t cstats, pstats;   /* consumer's and output producer's, under stats_mu */

    tally_buf_t buf;         /* scratch */
};

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- librdkafka statistics ---- */

void tally_obs_view_term(tally_obs_view_t *v) {
    for (int i = 0; v->parts && i < v->nparts; i++) free(v->parts[i].rings);
    free(v->parts);
    v->parts = NULL;
    v->nparts = 0;
}

void tally_obs_stats(void *opaque, rd_kafka_t *rk, const char *json, size_t json_len) {
    tally_obs_t *obs = opaque;
    tally_kstats_t s;
    tally_kstats_init(&s);
    if (tally_kstats_parse(&s, json, json_len) != 0) {
        tally_debug("librdkafka statistics not understood (%zu bytes); skipped", json_len);
        tally_kstats_term(&s);
        return;
    }
    bool consumer = rd_kafka_type(rk) == RD_KAFKA_CONSUMER;
    pthread_mutex_lock(&obs->stats_mu);
    tally_kstats_t *dst = consumer ? &obs->cstats : &obs->pstats;
    tally_kstats_term(dst);
    *dst = s; /* takes over s.parts */
    pthread_mutex_unlock(&obs->stats_mu);
}

/* ---- numbers gathered from the engine ---- */

static int64_t resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long long size = 0, rss = -1;
    if (fscanf(f, "%lld %lld", &size, &rss) != 2) rss = -1;
    fclose(f);
    return rss < 0 ? -1 : rss * (int64_t)sysconf(_SC_PAGESIZE);
}


/* ---- /metrics ---- */

static void metrics_partitions(const tally_obs_view_t *v, tally_buf_t *b) {
    char pbuf[16], wbuf[16];
    static const struct {
        const char *name, *help;
    } fam[] = {
        {"tally_partition_committed_offset", "Offset below which the partition's input is committed (output and state)."},
        {"tally_partition_read_offset", "Offset after the last record the partition thread has read."},
        {"tally_partition_high_watermark", "The partition's high watermark as librdkafka last fetched it."},
        {"tally_partition_lag", "Records not yet committed: high watermark - committed offset."},
        {"tally_partition_fetch_queue_records", "Records fetched by librdkafka, waiting for the partition thread."},
    };
    for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
        tally_prom_family(b, fam[f].name, "gauge", fam[f].help);
        for (int i = 0; i < v->nparts; i++) {
            const tally_obs_part_t *p = &v->parts[i];
            snprintf(pbuf, sizeof(pbuf), "%d", (int)p->partition);
            const char *labels[] = {"topic", p->topic, "partition", pbuf, NULL};
            int64_t hi = p->high_watermark, x = 0;
            switch (f) {
            case 0: x = p->committed; break;
            case 1: x = p->read; break;
            case 2: x = hi; break;
            case 3: x = hi < 0 ? -1 : hi > p->committed ? hi - p->committed : 0; break;
            case 4: x = p->fetch_queue; break;
            }
            if (x >= 0) tally_prom_int(b, fam[f].name, labels, x);
        }
    }
    tally_prom_family(b, "tally_ring_occupancy", "gauge",
                      "Word batches waiting in the ring from a partition thread to a worker (capacity 64).");
    for (int i = 0; i < v->nparts; i++) {
        const tally_obs_part_t *p = &v->parts[i];
        if (!p->rings) continue;
        snprintf(pbuf, sizeof(pbuf), "%d", (int)p->partition);
        for (int w = 0; w < v->nworkers; w++) {
            snprintf(wbuf, sizeof(wbuf), "%d", w);
            const char *labels[] = {"topic", p->topic, "partition", pbuf, "worker", wbuf, NULL};
            tally_prom_uint(b, "tally_ring_occupancy", labels, p->rings[w]);
        }
    }
}

static void metrics_kafka(tally_obs_t *obs, tally_buf_t *b) {
    char pbuf[16];
    pthread_mutex_lock(&obs->stats_mu);
    const tally_kstats_t *c = &obs->cstats, *p = &obs->pstats;
    tally_prom_family(b, "tally_kafka_consumer_lag", "gauge",
                      "librdkafka statistics: consumer_lag per assigned partition; absent while librdkafka "
                      "reports -1, which is always with exactly_once (offsets commit through the producer).");
    for (int i = 0; i < c->nparts; i++) {
        if (c->parts[i].consumer_lag < 0) continue;
        snprintf(pbuf, sizeof(pbuf), "%d", (int)c->parts[i].partition);
        const char *labels[] = {"topic", c->parts[i].topic, "partition", pbuf, NULL};
        tally_prom_int(b, "tally_kafka_consumer_lag", labels, c->parts[i].consumer_lag);
    }
    if (c->rxmsgs >= 0) {
        tally_prom_family(b, "tally_kafka_consumer_messages_received_total", "counter",
                          "librdkafka statistics: rxmsgs, messages the consumer received from brokers.");
        tally_prom_int(b, "tally_kafka_consumer_messages_received_total", NULL, c->rxmsgs);
    }
    if (p->msg_cnt >= 0) {
        tally_prom_family(b, "tally_kafka_producer_queue_messages", "gauge",
                          "librdkafka statistics: msg_cnt, messages waiting in the output producer's queues.");
        tally_prom_int(b, "tally_kafka_producer_queue_messages", NULL, p->msg_cnt);
    }
    if (p->txmsgs >= 0) {
        tally_prom_family(b, "tally_kafka_producer_messages_sent_total", "counter",
                          "librdkafka statistics: txmsgs, messages the output producer sent to brokers.");
        tally_prom_int(b, "tally_kafka_producer_messages_sent_total", NULL, p->txmsgs);
    }
    pthread_mutex_unlock(&obs->stats_mu);
}

static tally_blob_t *build_metrics(tally_obs_t *obs, const tally_obs_view_t *v) {
    const tally_config_t *c = obs->conf;
    tally_buf_t *b = &obs->buf;
    tally_buf_reset(b);
    tally_prom_family(b, "tally_up", "gauge", "1 while the engine runs (commits or waits for input), else 0.");
    tally_prom_int(b, "tally_up", NULL, v->state == TALLY_SNAP_RUNNING);
    {
        const char *labels[] = {"application_id", c->application_id,
                                "sink", tally_config_sink_name(c->sink),
                                "guarantee", c->guarantee == TALLY_EXACTLY_ONCE ? "exactly_once" : "at_least_once",
                                NULL};
        tally_prom_family(b, "tally_info", "gauge", "Constant 1; the labels describe the job.");
        tally_prom_int(b, "tally_info", labels, 1);
    }
    struct {
        const char *name, *help;
        uint64_t v;
    } counters[] = {
        {"tally_input_lines_total", "Input lines (records) in committed epochs.", obs->lines_total},
        {"tally_input_words_total", "Words counted in committed epochs.", obs->words_total},
        {"tally_words_dropped_total", "Words not counted because they are longer than max.word.bytes.", obs->dropped_total},
        {"tally_output_records_total", "Output records (changed keys) in committed epochs.", obs->output_total},
        {"tally_late_rows_dropped_total", "(word, window) pairs not counted because the watermark had closed the "
         "window (Spark's numRowsDroppedByWatermark).", obs->late_total},
        {"tally_epochs_committed_total", "Epochs committed (Kafka transactions with exactly_once).", v->commits},
        {"tally_transactions_aborted_total", "Epochs rolled back (transactions aborted, or failed at_least_once commits).",
         v->aborts},
    };
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
        tally_prom_family(b, counters[i].name, "counter", counters[i].help);
        tally_prom_uint(b, counters[i].name, NULL, counters[i].v);
    }
    if (c->window_size_ms > 0 && obs->watermark != INT64_MIN) {
        tally_prom_family(b, "tally_watermark_seconds", "gauge",
                          "The watermark of the last committed epoch (event time, Unix seconds).");
        tally_prom_float(b, "tally_watermark_seconds", NULL, (double)obs->watermark / 1e3);
    }
    tally_prom_family(b, "tally_epoch", "gauge", "The last committed epoch.");
    tally_prom_uint(b, "tally_epoch", NULL, v->committed_epoch);
    tally_prom_family(b, "tally_last_commit_timestamp_seconds", "gauge",
                      "Unix time of the last commit (0 before the first).");
    tally_prom_float(b, "tally_last_commit_timestamp_seconds", NULL, obs->last_commit_wall);
    tally_prom_family(b, "tally_last_epoch_duration_seconds", "gauge",
                      "Phases of the last committed epoch: barrier (request to every worker aligned), produce (the "
                      "workers' output records), commit (Kafka), state (handing the epoch to the state writer thread; "
                      "long only when the writer is behind).");
    const char *lb[] = {"phase", "barrier", NULL}, *lo[] = {"phase", "produce", NULL}, *lc[] = {"phase", "commit", NULL},
               *ls[] = {"phase", "state", NULL};
    const char *const *lph[4] = {lb, lo, lc, ls};
    double last[4] = {obs->last.barrier_s, obs->last.produce_s, obs->last.commit_s, obs->last.state_s};
    for (int i = 0; i < 4; i++) tally_prom_float(b, "tally_last_epoch_duration_seconds", lph[i], last[i]);
    tally_prom_family(b, "tally_epoch_phase_seconds", "histogram",
                      "Phases of every committed epoch since start, as tally_last_epoch_duration_seconds.");
    for (int i = 0; i < 4; i++) tally_prom_hist(b, "tally_epoch_phase_seconds", lph[i], &obs->phase_hist[i]);
    tally_state_t *st = atomic_load(&obs->state);
    if (st) {
        tally_state_write_stats_t ws;
        tally_state_write_stats(st, &ws);
        tally_prom_family(b, "tally_state_writes_total", "counter",
                          "RocksDB writes by the state writer thread; each holds every epoch committed since the one before.");
        tally_prom_uint(b, "tally_state_writes_total", NULL, ws.writes);
        tally_prom_family(b, "tally_state_written_epochs_total", "counter", "Committed epochs written to the state.");
        tally_prom_uint(b, "tally_state_written_epochs_total", NULL, ws.epochs);
        tally_prom_family(b, "tally_state_written_keys_total", "counter",
                          "Counts written to the state (a word changed in several epochs of one write counts once).");
        tally_prom_uint(b, "tally_state_written_keys_total", NULL, ws.keys);
        tally_prom_family(b, "tally_state_write_seconds_total", "counter", "Time the state writer spent in RocksDB writes.");
        tally_prom_float(b, "tally_state_write_seconds_total", NULL, ws.seconds);
        tally_prom_family(b, "tally_state_epoch", "gauge",
                          "The last epoch written to the state (tally_epoch minus it: how far the state is behind Kafka).");
        tally_prom_uint(b, "tally_state_epoch", NULL, ws.last_epoch);
    }
    tally_prom_family(b, "tally_keys_in_memory", "gauge", "Words in the workers' tables (the in-memory cache of the state).");
    tally_prom_uint(b, "tally_keys_in_memory", NULL, v->keys_in_memory);
    tally_prom_family(b, "tally_assigned_partitions", "gauge", "Input partitions assigned to this instance.");
    tally_prom_int(b, "tally_assigned_partitions", NULL, v->nparts);
    if (c->topology == TALLY_TOPOLOGY_DISTRIBUTED) {
        tally_prom_family(b, "tally_restoring_partitions", "gauge",
                          "topology=distributed: repartition partitions assigned here whose state is being restored "
                          "from the changelog (not counted until it is).");
        tally_prom_int(b, "tally_restoring_partitions", NULL, v->restoring);
        tally_prom_family(b, "tally_restored_records_total", "counter",
                          "topology=distributed: changelog records read by restores since start.");
        tally_prom_uint(b, "tally_restored_records_total", NULL, v->restored);
    }
    metrics_partitions(v, b);
    if (v->files_input) {
        tally_prom_family(b, "tally_input_files_total", "counter",
                          "Input files committed, by what became of them: read, binary (skipped), vanished, "
                          "unreadable, truncated (what was there is counted).");
        const struct { const char *status; uint64_t n; } fst[] = {
            {"read", v->files.files_read - v->files.truncated}, {"binary", v->files.skipped_binary},
            {"vanished", v->files.vanished}, {"unreadable", v->files.unreadable}, {"truncated", v->files.truncated}};
        for (size_t i = 0; i < sizeof(fst) / sizeof(fst[0]); i++) {
            const char *l[] = {"status", fst[i].status, NULL};
            tally_prom_uint(b, "tally_input_files_total", l, fst[i].n);
        }
        tally_prom_family(b, "tally_input_file_bytes_total", "counter", "Bytes of the input files read and committed.");
        tally_prom_uint(b, "tally_input_file_bytes_total", NULL, v->files.bytes_read);
        tally_prom_family(b, "tally_input_files_changed_after_read_total", "counter",
                          "Input files found changed after they were read (not read again).");
        tally_prom_uint(b, "tally_input_files_changed_after_read_total", NULL, v->files.changed_after_read);
    }
    int64_t rss = resident_bytes();
    if (rss >= 0) {
        tally_prom_family(b, "tally_process_resident_bytes", "gauge", "Resident memory of the process (/proc/self/statm).");
        tally_prom_int(b, "tally_process_resident_bytes", NULL, rss);
    }
    metrics_kafka(obs, b);
    return tally_blob_new(b, NULL, 0);
}

/* ---- snapshot ---- */

static void publish_view(tally_obs_t *obs, const tally_obs_view_t *v) {
    if (!obs->box) return;
    tally_snap_t *s = tally_snap_new();
    if (!s) return;
    s->state = v->state;
    s->fenced = v->fenced;
    snprintf(s->problem, sizeof(s->problem), "%s", obs->problem);
    snprintf(s->problem_kind, sizeof(s->problem_kind), "%s", obs->problem_kind);
    s->published = tally_snap_now();
    s->commit_ok = obs->commit_ok;
    s->stall_limit_s = obs->stall_limit;
    s->last_commit_wall = obs->last_commit_wall;
    s->epoch = v->committed_epoch;
    s->commits = v->commits;
    s->aborts = v->aborts;
    s->metrics = build_metrics(obs, v);
    s->progress = tally_blob_ref(obs->progress_blob);
    s->top = tally_blob_ref(obs->top_blob);
    s->messages = obs->tail ? tally_tail_get(obs->tail) : NULL;
    tally_snapbox_publish(obs->box, s);
}

static void publish(tally_obs_t *obs) {
    if (!obs->box) return;
    tally_obs_view_t v = {0};
    obs->view(obs->view_opaque, &v);
    publish_view(obs, &v);
    tally_obs_view_term(&v);
}

/* ---- health tracking (every second) ---- */

static void track_health(tally_obs_t *obs, const tally_obs_view_t *v) {
    double now = tally_snap_now();
    bool pending = v->epoch_pending;
    for (int i = 0; i < v->nparts && !pending; i++) pending = v->parts[i].read != v->parts[i].committed;
    /* Nothing to commit is as good as a commit: an idle input is healthy. */
    if (!pending) obs->commit_ok = now;

    if (v->nparts != obs->ntrack) {
        for (int i = v->nparts; i < obs->ntrack; i++) free(obs->track[i].topic);
        if (v->nparts < obs->ntrack) obs->ntrack = v->nparts; /* before a realloc that may fail */
        track_t *t = realloc(obs->track, (size_t)(v->nparts ? v->nparts : 1) * sizeof(*t));
        if (!t) return;
        for (int i = obs->ntrack; i < v->nparts; i++) t[i] = (track_t){0};
        obs->track = t;
        obs->ntrack = v->nparts;
    }
    obs->problem[0] = obs->problem_kind[0] = '\0';
    for (int i = 0; i < v->nparts; i++) {
        const tally_obs_part_t *p = &v->parts[i];
        track_t *t = &obs->track[i];
        int64_t seen = p->read;
        if (!t->topic || strcmp(t->topic, p->topic) != 0 || t->partition != p->partition) {
            free(t->topic);
            t->topic = strdup(p->topic);
            t->partition = p->partition;
            t->seen = seen;
            t->since = now;
        }
        if (seen != t->seen) {
            t->seen = seen;
            t->since = now;
        }
        int64_t hi = p->high_watermark;
        int64_t lag = hi < 0 ? 0 : hi - seen;
        int64_t queued = p->fetch_queue;
        if (!obs->problem[0] && v->pipeline_up &&
            tally_health_part_stuck(now - t->since, lag, queued, obs->stall_limit)) {
            snprintf(obs->problem_kind, sizeof(obs->problem_kind), "stuck");
            snprintf(obs->problem, sizeof(obs->problem),
                     "the partition thread of %s[%d] has read nothing for %.0f s while %" PRId64
                     " records wait in its fetch queue (lag %" PRId64 ")",
                     p->topic, (int)p->partition, now - t->since, queued, lag);
        }
    }
}

/* Starts the HTTP server. An address in use is not fatal: a predecessor with the same configuration
 * holds it until this instance fences it and it exits, so the timer tries again every second. */
static int count_word(void *opaque, const uint8_t *word, size_t len, int64_t *count, uint64_t *epoch);

static int http_start(tally_obs_t *obs) {
    const char *addr = obs->conf->http_listen;
    char errstr[512];
    int r = tally_http_new(&obs->http, addr, obs->box, count_word, obs, errstr, sizeof(errstr));
    if (r == TALLY_EIO) {
        if (!obs->http_retry) tally_warn("%s; trying again every second", errstr);
        obs->http_retry = true;
        return 0;
    }
    if (r) {
        tally_err("%s", errstr);
        return r;
    }
    obs->http_retry = false;
    tally_info("http: serving /metrics /healthz /progress /top /count /messages and the live page on http://%s/", addr);
    return 0;
}

static void on_tick(uv_timer_t *timer) {
    tally_obs_t *obs = timer->data;
    if (obs->http_retry) http_start(obs);
    tally_obs_view_t v = {0};
    obs->view(obs->view_opaque, &v);
    track_health(obs, &v);
    if (obs->progress_rk) rd_kafka_poll(obs->progress_rk, 0);
    publish_view(obs, &v);
    tally_obs_view_term(&v);
}

/* ---- progress ---- */

static void progress_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    tally_obs_t *obs = opaque;
    if (m->err) tally_warn("progress record to %s not delivered: %s", obs->conf->progress_topic, rd_kafka_err2str(m->err));
}

static void seed_one(const uint8_t *word, size_t len, int64_t count, void *opaque) {
    tally_obs_t *obs = opaque;
    if (obs->conf->window_size_ms > 0) {
        /* With windows, the top words are the latest window's: update mode's newest open window,
         * append mode's last closed one. A newer window starts the map over. */
        int64_t start;
        const uint8_t *w;
        size_t wl;
        if (tally_window_key_decode(word, len, &start, &w, &wl) || start < obs->top_window) return;
        if (start > obs->top_window) {
            tally_topk_clear(obs->top);
            obs->top_window = start;
        }
    }
    if (tally_topk_offer(obs->top, word, len, count)) obs->top_seeded = false;
}

typedef struct {
    tally_buf_t *b;
    size_t *ends;   /* [n]: offset after each item */
    size_t k;
    int64_t window_size; /* > 0: the keys are (window, word) pairs */
} top_ctx_t;

static void top_item(const uint8_t *word, size_t len, int64_t count, void *opaque) {
    top_ctx_t *c = opaque;
    char small[512];
    size_t need = c->window_size > 0 ? TALLY_JSON_WINDOW_MAX(len) : TALLY_JSON_MAX(len);
    char *j = need <= sizeof(small) ? small : malloc(need);
    if (!j) {
        c->b->oom = true;
        return;
    }
    if (c->k) tally_buf_puts(c->b, ",");
    tally_buf_append(c->b, j, c->window_size > 0 ? tally_json_window_entry(j, word, len, c->window_size, count)
                                                 : tally_json_word_count(j, word, len, count));
    if (j != small) free(j);
    c->ends[c->k++] = c->b->len;
}

static void top_update(tally_obs_t *obs, const tally_obs_epoch_t *ep) {
    if (!obs->top_seeded) {
        /* Once, at the first commit (after recovery): the words counted before this run. Later
         * epochs bring every changed count, which keeps the map exact (tally/topk.h). */
        tally_topk_clear(obs->top);
        obs->top_window = INT64_MIN;
        double t0 = tally_snap_now();
        obs->top_seeded = true;
        if (tally_state_foreach_count(atomic_load(&obs->state), seed_one, obs) != 0) {
            tally_warn("/top: cannot read the state; trying again at the next epoch");
            obs->top_seeded = false;
        }
        tally_debug("/top: seeded from the state in %.0f ms", (tally_snap_now() - t0) * 1e3);
    } else {
        /* Out of memory: the map may have missed a word, so it is rebuilt at the next epoch. */
        ep->each_change(ep->each_opaque, seed_one, obs);
    }
    /* The JSON array and where each item ends, so that /top?n=k is a prefix of it. */
    size_t n = tally_topk_size(obs->top);
    top_ctx_t c = {.b = &obs->buf, .ends = calloc(n ? n : 1, sizeof(size_t)), .window_size = obs->conf->window_size_ms};
    if (!c.ends) return;
    tally_buf_reset(c.b);
    tally_buf_puts(c.b, "[");
    int r = tally_topk_best(obs->top, n, top_item, &c);
    tally_buf_puts(c.b, "]");
    tally_blob_t *bl = !r && c.k == n ? tally_blob_new(c.b, c.ends, n) : NULL;
    free(c.ends);
    if (!bl) return;
    tally_blob_unref(obs->top_blob);
    obs->top_blob = bl;
}

void tally_obs_epoch(tally_obs_t *obs, const tally_obs_epoch_t *ep) {
    double total_s = ep->process_s + ep->commit_s + ep->state_s;
    const tally_config_t *c = obs->conf;
    tally_obs_view_t v = {0};
    obs->view(obs->view_opaque, &v);
    double now = tally_snap_now(), wall = wall_now();
    obs->lines_total += ep->lines;
    obs->words_total += ep->words;
    obs->dropped_total += ep->dropped;
    obs->output_total += ep->keys;
    obs->late_total += ep->late;
    if (ep->windowed) obs->watermark = ep->watermark;
    obs->last = *ep;
    tally_prom_hist_observe(&obs->phase_hist[0], ep->barrier_s);
    tally_prom_hist_observe(&obs->phase_hist[1], ep->produce_s);
    tally_prom_hist_observe(&obs->phase_hist[2], ep->commit_s);
    tally_prom_hist_observe(&obs->phase_hist[3], ep->state_s);

    tally_progress_source_t *src = calloc((size_t)(v.nparts ? v.nparts : 1), sizeof(*src));
    for (int i = 0; src && i < v.nparts; i++) {
        const tally_obs_part_t *p = &v.parts[i];
        src[i] = (tally_progress_source_t){.topic = p->topic, .partition = p->partition, .start_offset = p->committed,
                                           .end_offset = p->cut, .high_watermark = p->high_watermark};
    }
    char sink[300];
    if (c->sink == TALLY_SINK_KAFKA) snprintf(sink, sizeof(sink), "kafka:%s", c->output_topic);
    else if (c->sink == TALLY_SINK_FILES) snprintf(sink, sizeof(sink), "files:%s", c->output_path);
    else snprintf(sink, sizeof(sink), "console");
    double since = now - (obs->last_commit_mono > 0 ? obs->last_commit_mono : obs->start_mono);
    tally_progress_t pr = {
        .id = c->application_id,
        .epoch = ep->epoch,
        .timestamp = wall,
        .lines = ep->lines,
        .words = ep->words,
        .dropped = ep->dropped,
        .input_rate = since > 0 ? (double)ep->lines / since : -1,
        .processed_rate = total_s > 0 ? (double)ep->lines / total_s : -1,
        .keys_updated = ep->keys,
        .windowed = ep->windowed,
        .late = ep->late,
        .watermark = ep->watermark,
        .keys_in_memory = v.keys_in_memory,
        .process_ms = ep->process_s * 1e3,
        .commit_ms = ep->commit_s * 1e3,
        .state_ms = ep->state_s * 1e3,
        .commits = v.commits,
        .aborts = v.aborts,
        .sink = sink,
        .sources = src,
        .nsources = src ? v.nparts : 0,
    };
    tally_buf_t *b = &obs->buf;
    tally_buf_reset(b);
    tally_progress_json(&pr, true, b);
    if (tally_buf_ok(b)) {
        tally_progress_hist_add(obs->hist, b->data, b->len);
        if (obs->progress_rk) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                obs->progress_rk, RD_KAFKA_V_TOPIC(c->progress_topic),
                RD_KAFKA_V_KEY(c->application_id, strlen(c->application_id)),
                RD_KAFKA_V_VALUE(b->data, b->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (e) tally_warn("progress record to %s dropped: %s", c->progress_topic, rd_kafka_err2str(e));
            rd_kafka_poll(obs->progress_rk, 0);
        }
        if (b->len > LOG_JSON_MAX) {
            tally_buf_reset(b);
            tally_progress_json(&pr, false, b);
        }
    }
    tally_info("epoch %" PRIu64 " committed: %" PRIu64 " lines, %" PRIu64 " keys updated; process %.0f ms (barrier %.0f, "
               "produce %.0f), commit %.0f ms, state %.0f ms; progress %s", ep->epoch, ep->lines, ep->keys,
               ep->process_s * 1e3, ep->barrier_s * 1e3, ep->produce_s * 1e3, ep->commit_s * 1e3, ep->state_s * 1e3,
               tally_buf_ok(b) ? b->data : "{}");
    free(src);
    tally_obs_view_term(&v);

    obs->last_commit_mono = obs->commit_ok = now;
    obs->last_commit_wall = wall;
    if (obs->box) {
        tally_blob_t *pb = tally_progress_hist_blob(obs->hist);
        if (pb) {
            tally_blob_unref(obs->progress_blob);
            obs->progress_blob = pb;
        }
        if (obs->top) top_update(obs, ep);
    }
}

void tally_obs_publish(tally_obs_t *obs) { publish(obs); }

void tally_obs_set_state(tally_obs_t *obs, tally_state_t *state) { atomic_store(&obs->state, state); }

/* /count, on the HTTP thread: RocksDB holds the committed counts (the tables hold uncommitted ones). */
static int count_word(void *opaque, const uint8_t *word, size_t len, int64_t *count, uint64_t *epoch) {
    tally_obs_t *obs = opaque;
    tally_state_t *st = atomic_load(&obs->state);
    return st ? tally_state_lookup(st, word, len, count, epoch) : TALLY_ESTOPPED;
}

/* ---- lifecycle ---- */

static void log_config(const tally_config_t *c) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return;
    tally_config_print(c, f); /* secrets masked there */
    fclose(f);
    tally_buf_t line;
    tally_buf_init(&line);
    for (char *s = text, *nl; s && *s; s = nl ? nl + 1 : NULL) {
        nl = strchr(s, '\n');
        if (nl) *nl = '\0';
        if (*s == '#' || !*s) continue;
        if (line.len > 1500) {
            tally_info("config: %s", line.data);
            tally_buf_reset(&line);
        }
        if (line.len) tally_buf_puts(&line, " ");
        tally_buf_puts(&line, s);
    }
    if (line.len && tally_buf_ok(&line)) tally_info("config: %s", line.data);
    tally_buf_term(&line);
    free(text);
}

static int start_progress_producer(tally_obs_t *obs) {
    const tally_config_t *conf = obs->conf;
    char errstr[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (tally_kafka_conf_common(conf, c, errstr, sizeof(errstr))) {
        rd_kafka_conf_destroy(c);
        tally_err("progress.topic producer: %s", errstr);
        return TALLY_ECONFIG;
    }
    rd_kafka_conf_set_dr_msg_cb(c, progress_dr);
    rd_kafka_conf_set_opaque(c, obs);
    obs->progress_rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sizeof(errstr));
    if (!obs->progress_rk) {
        tally_err("cannot create the progress.topic producer: %s", errstr);
        return TALLY_EKAFKA;
    }
    rd_kafka_topic_t *t = rd_kafka_topic_new(obs->progress_rk, conf->progress_topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(obs->progress_rk, 0, t, &md, 30000);
    rd_kafka_topic_destroy(t);
    if (!e) {
        e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        rd_kafka_metadata_destroy(md);
    }
    if (e) {
        tally_err("progress.topic=%s: %s on %s (create it first)", conf->progress_topic, rd_kafka_err2str(e),
                  conf->bootstrap_servers);
        return TALLY_EKAFKA;
    }
    return 0;
}

int tally_obs_new(tally_obs_t **out, const tally_config_t *conf, uv_loop_t *loop, tally_state_t *state,
                  void (*view)(void *opaque, tally_obs_view_t *v), void *view_opaque) {
    log_config(conf);
    tally_obs_t *obs = calloc(1, sizeof(*obs));
    *out = obs;
    if (!obs) return TALLY_ENOMEM;
    obs->conf = conf;
    obs->loop = loop;
    obs->watermark = INT64_MIN;
    obs->top_window = INT64_MIN;
    atomic_init(&obs->state, state);
    obs->view = view;
    obs->view_opaque = view_opaque;
    pthread_mutex_init(&obs->stats_mu, NULL);
    tally_kstats_init(&obs->cstats);
    tally_kstats_init(&obs->pstats);
    tally_buf_init(&obs->buf);
    obs->start_mono = obs->commit_ok = tally_snap_now();
    obs->stall_limit = tally_health_stall_limit(conf->trigger_interval_ms);
    obs->hist = tally_progress_hist_new(HISTORY);
    if (!obs->hist) return TALLY_ENOMEM;

    uv_timer_init(loop, &obs->timer);
    obs->timer.data = obs;
    uv_timer_start(&obs->timer, on_tick, 1000, 1000);
    obs->timer_on = true;

    if (conf->http_listen) {
        obs->box = tally_snapbox_new();
        obs->top = tally_topk_new(TOP_CAP);
        if (!obs->box || !obs->top) return TALLY_ENOMEM;
        publish(obs);
        int r = http_start(obs);
        if (r) return r;
        if (conf->sink == TALLY_SINK_KAFKA && (r = tally_tail_new(&obs->tail, conf, conf->output_topic, MESSAGES)))
            return r;
    }
    if (conf->progress_topic) {
        int r = start_progress_producer(obs);
        if (r) return r;
        tally_info("progress records go to %s (not transactional)", conf->progress_topic);
    }
    return 0;
}

void tally_obs_state(tally_obs_t *obs) {
    tally_obs_view_t v = {0};
    obs->view(obs->view_opaque, &v);
    const tally_config_t *c = obs->conf;
    if (v.state == TALLY_SNAP_RUNNING && c->input_path)
        tally_info("running: counting the files of %s", c->input_path);
    else if (v.state == TALLY_SNAP_RUNNING)
        tally_info("running: consuming %s%s as group %s", c->input_topics[0], c->input_topic_cnt > 1 ? ",..." : "",
                   c->application_id);
    else if (v.state == TALLY_SNAP_STOPPED && v.exit_status)
        tally_info("stopped with exit status %d%s", v.exit_status,
                   v.exit_status == TALLY_EXIT_FENCED ? " (fenced by a newer instance)" : "");
    publish_view(obs, &v);
    tally_obs_view_term(&v);
}

void tally_obs_stop(tally_obs_t *obs) {
    if (!obs) return;
    if (obs->timer_on) {
        uv_timer_stop(&obs->timer);
        obs->timer_on = false;
    }
    publish(obs);
    tally_http_destroy(obs->http);
    obs->http = NULL;
    tally_tail_destroy(obs->tail);
    obs->tail = NULL;
    obs->http_retry = false;
    if (obs->progress_rk) {
        rd_kafka_resp_err_t e = rd_kafka_flush(obs->progress_rk, 5000);
        if (e) tally_warn("progress records not flushed to %s: %s", obs->conf->progress_topic, rd_kafka_err2str(e));
        rd_kafka_destroy(obs->progress_rk);
        obs->progress_rk = NULL;
    }
}

void tally_obs_destroy(tally_obs_t *obs) {
    if (!obs) return;
    tally_http_destroy(obs->http);
    tally_tail_destroy(obs->tail);
    if (obs->progress_rk) rd_kafka_destroy(obs->progress_rk);
    tally_snapbox_destroy(obs->box);
    tally_progress_hist_destroy(obs->hist);
    tally_topk_destroy(obs->top);
    tally_blob_unref(obs->progress_blob);
    tally_blob_unref(obs->top_blob);
    for (int i = 0; i < obs->ntrack; i++) free(obs->track[i].topic);
    free(obs->track);
    tally_kstats_term(&obs->cstats);
    tally_kstats_term(&obs->pstats);
    pthread_mutex_destroy(&obs->stats_mu);
    tally_buf_term(&obs->buf);
    free(obs);
}
