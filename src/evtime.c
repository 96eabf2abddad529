/* SPDX-License-Identifier: MIT */
/* Time for windows (see evtime.h). @locality control thread. */
#include "evtime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally/clock.h"
#include "tally/err.h"
#include "tally/log.h"

/* The committed W and P: the state's, or the first ones. */
static int load(tally_evtime_t *ev, tally_state_t *state) {
    ev->wm = ev->wm_on ? TALLY_WATERMARK_SPARK_INITIAL : TALLY_WATERMARK_NONE;
    ev->ptime = tally_wall_ms();
    if (!ev->on || !state) return 0;
    int64_t v;
    int r = tally_state_get_meta(state, TALLY_META_WATERMARK, &v);
    if (r < 0) return r;
    if (r == 1 && ev->wm_on) ev->wm = v;
    if ((r = tally_state_get_meta(state, TALLY_META_PTIME, &v)) < 0) return r;
    if (r == 1) ev->ptime = v;
    return 0;
}

void tally_evtime_meta_name(int32_t r, char *buf, size_t size) { snprintf(buf, size, "watermark.%d", (int)r); }

/* distributed: W_r of one partition from the state (restored from its changelog, or stored here). */
static int load_partition(tally_evtime_t *ev, tally_state_t *state, int32_t r) {
    char name[32];
    int64_t v;
    tally_evtime_meta_name(r, name, sizeof(name));
    int have = tally_state_get_meta(state, name, &v);
    if (have < 0) return have;
    int64_t w = have ? v : TALLY_WATERMARK_SPARK_INITIAL;
    ev->wm_r[r] = ev->wm_next_r[r] = ev->sent_r[r] = w;
    ev->closed_r[r] = TALLY_WATERMARK_NONE; /* a first close pass finds what is closed already */
    return 0;
}

int tally_evtime_init(tally_evtime_t *ev, const tally_config_t *conf, tally_state_t *state) {
    memset(ev, 0, sizeof(*ev));
    ev->conf = conf;
    ev->on = conf->window_size_ms > 0;
    ev->wm_on = ev->on && conf->watermark_delay_ms >= 0;
    if (ev->wm_on && conf->topology == TALLY_TOPOLOGY_DISTRIBUTED) {
        ev->nr = conf->repartition_partitions;
        size_t n = (size_t)ev->nr;
        ev->wm_r = calloc(n, sizeof(int64_t));
        ev->wm_next_r = calloc(n, sizeof(int64_t));
        ev->sent_r = calloc(n, sizeof(int64_t));
        ev->closed_r = calloc(n, sizeof(int64_t));
        if (!ev->wm_r || !ev->wm_next_r || !ev->sent_r || !ev->closed_r) return TALLY_ENOMEM;
        for (int r = 0; r < ev->nr; r++)
            ev->wm_r[r] = ev->wm_next_r[r] = ev->sent_r[r] = ev->closed_r[r] = TALLY_WATERMARK_NONE;
    }
    int r = load(ev, state);
    if (r) return r;
    ev->wm_next = ev->wm;
    ev->ptime_next = ev->ptime;
    tally_watermark_init(&ev->tracker, conf->watermark_policy, conf->watermark_delay_ms, conf->watermark_idle_ms,
                         conf->window_close_idle_ms, ev->wm);
    return 0;
}

void tally_evtime_term(tally_evtime_t *ev) {
    tally_watermark_term(&ev->tracker);
    free(ev->wm_r);
    free(ev->wm_next_r);
    free(ev->sent_r);
    free(ev->closed_r);
    ev->wm_r = ev->wm_next_r = ev->sent_r = ev->closed_r = NULL;
    ev->nr = 0;
}

/* distributed: the greatest W_r of the partitions that count here (or none), for reports. */
static int64_t greatest(const tally_evtime_t *ev, const tally_pipeline_t *pipe, const int64_t *w) {
    int64_t g = TALLY_WATERMARK_NONE;
    for (int i = 0; i < pipe->nparts; i++) {
        const tally_part_t *pt = &pipe->parts[i];
        if (pt->stage2 && !atomic_load(&pt->held) && w[pt->partition] > g) g = w[pt->partition];
    }
    return g;
}

/* distributed: W_r to the workers. */
static void publish_partitions(tally_evtime_t *ev, tally_pipeline_t *pipe, const int64_t *w) {
    bool changed = false;
    for (int r = 0; r < ev->nr; r++)
        if (atomic_exchange_explicit(&pipe->wm_r[r], w[r], memory_order_relaxed) != w[r]) changed = true;
    atomic_store_explicit(&pipe->wm, greatest(ev, pipe, w), memory_order_relaxed);
    if (changed) atomic_fetch_add_explicit(&pipe->wm_gen, 1, memory_order_relaxed);
}

void tally_evtime_load_partitions(tally_evtime_t *ev, tally_pipeline_t *pipe, tally_state_t *state,
                                  const rd_kafka_topic_partition_list_t *parts) {
    if (!ev->nr) return;
    for (int i = 0; i < parts->cnt; i++) {
        int32_t r = parts->elems[i].partition;
        if (r >= ev->nr) continue;
        if (load_partition(ev, state, r))
            tally_warn("cannot read the watermark of partition %d from the state", (int)r);
        /* Only these: the others' may be the next epoch's already. */
        atomic_store_explicit(&pipe->wm_r[r], ev->wm_r[r], memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&pipe->wm_gen, 1, memory_order_relaxed);
}

int tally_evtime_start(tally_evtime_t *ev, tally_pipeline_t *pipe, tally_state_t *state, uint64_t committed,
                       char *errstr, size_t errstr_size) {
    /* The state is the truth here: recovery may have stored a later watermark. */
    int r = load(ev, state);
    if (r) {
        snprintf(errstr, errstr_size, "cannot read the watermark from the state: %s", tally_err_str(r));
        return r;
    }
    ev->wm_next = ev->wm;
    ev->ptime_next = ev->ptime;
    if (ev->on) {
        int64_t now = tally_wall_ms();
        if (now > ev->ptime) ev->ptime_next = now;
        if ((r = tally_evtime_store_alone(ev, state, errstr, errstr_size))) return r;
    }
    for (int p = 0; p < ev->nr; p++)
        if ((r = load_partition(ev, state, p))) {
            snprintf(errstr, errstr_size, "cannot read the watermark of partition %d from the state", p);
            return r;
        }
    tally_watermark_term(&ev->tracker);
    tally_watermark_init(&ev->tracker, ev->conf->watermark_policy, ev->conf->watermark_delay_ms,
                         ev->conf->watermark_idle_ms, ev->conf->window_close_idle_ms, ev->wm);
    if (tally_watermark_partitions(&ev->tracker, pipe->nparts, tally_wall_ms()))
        tally_warn("out of memory for the watermark's partitions: the watermark stays at %" PRId64, ev->wm);
    atomic_store(&pipe->wm, ev->wm);
    if (ev->nr) publish_partitions(ev, pipe, ev->wm_r);
    atomic_fetch_add(&pipe->wm_gen, 1);
    atomic_store(&pipe->wm_epoch, committed + 1);
    atomic_store(&pipe->ptime_cur, ev->ptime);
    atomic_store(&pipe->ptime_next, ev->ptime);
    return 0;
}

void tally_evtime_request(tally_evtime_t *ev, tally_pipeline_t *pipe) {
    if (!ev->on) return;
    int64_t now = tally_wall_ms();
    ev->ptime_next = now > ev->ptime ? now : ev->ptime; /* processing time never goes back either */
    atomic_store(&pipe->ptime_cur, ev->ptime);
    atomic_store(&pipe->ptime_next, ev->ptime_next);
}

void tally_evtime_barrier(tally_evtime_t *ev, tally_pipeline_t *pipe, uint64_t epoch) {
    if (!ev->wm_on) return;
    if (ev->nr) {
        /* Each repartition partition's greatest event time: the time records of every stage 1 that
         * reached it (partition.c). */
        for (int i = 0; i < pipe->nparts; i++) {
            tally_part_t *pt = &pipe->parts[i];
            int64_t ts = atomic_load_explicit(&pt->cut_max_ts, memory_order_relaxed);
            if (!pt->stage2 || atomic_load(&pt->held) || ts == TALLY_WATERMARK_NONE) continue;
            int64_t w = ts - ev->conf->watermark_delay_ms;
            if (w > ev->wm_next_r[pt->partition]) ev->wm_next_r[pt->partition] = w;
        }
        ev->wm_next = greatest(ev, pipe, ev->wm_next_r);
        publish_partitions(ev, pipe, ev->wm_next_r);
        atomic_store_explicit(&pipe->wm_epoch, epoch + 1, memory_order_release);
        for (int w = 0; w < pipe->nworkers; w++) tally_worker_wake(&pipe->workers[w]);
        return;
    }
    int64_t before = atomic_load_explicit(&pipe->wm, memory_order_relaxed);
    for (int i = 0; i < pipe->nparts && i < ev->tracker.nparts; i++) {
        int64_t ts = atomic_load_explicit(&pipe->parts[i].cut_max_ts, memory_order_relaxed);
        if (ts != TALLY_WATERMARK_NONE)
            tally_watermark_observe(&ev->tracker, i, ts,
                                    atomic_load_explicit(&pipe->parts[i].cut_last_input, memory_order_relaxed));
    }
    ev->wm_next = tally_watermark_advance(&ev->tracker, tally_wall_ms());
    atomic_store_explicit(&pipe->wm, ev->wm_next, memory_order_relaxed);
    if (ev->wm_next != before) atomic_fetch_add_explicit(&pipe->wm_gen, 1, memory_order_relaxed);
    atomic_store_explicit(&pipe->wm_epoch, epoch + 1, memory_order_release);
    for (int w = 0; w < pipe->nworkers; w++) tally_worker_wake(&pipe->workers[w]);
}

/* The start of the state's first window (keys sort by window start), or false when it holds none. */
static bool first_start(tally_state_t *state, int64_t *start) {
    uint8_t key[TALLY_WINDOW_KEY_PREFIX];
    size_t len = 0;
    const uint8_t *word;
    size_t wl;
    if (tally_state_first_count_key(state, key, sizeof(key), &len) != 1) return false;
    return tally_window_key_decode(key, len, start, &word, &wl) == 0;
}

bool tally_evtime_closed_range(const tally_evtime_t *ev, tally_state_t *state, uint8_t begin[TALLY_WINDOW_KEY_PREFIX],
                               uint8_t end[TALLY_WINDOW_KEY_PREFIX]) {
    int64_t start;
    if (!ev->wm_on || ev->wm == TALLY_WATERMARK_NONE || !first_start(state, &start) ||
        !tally_window_closed(start, ev->conf->window_size_ms, ev->wm))
        return false;
    return tally_window_key_closed_range(ev->conf->window_size_ms, ev->wm, begin, end);
}

bool tally_evtime_partitions_due(const tally_evtime_t *ev, const tally_pipeline_t *pipe) {
    for (int i = 0; ev->nr && i < pipe->nparts; i++) {
        const tally_part_t *pt = &pipe->parts[i];
        if (pt->stage2 && !atomic_load(&pt->held) &&
            (tally_evtime_closes(ev, pt->partition) || tally_evtime_send_due(ev, pt->partition)))
            return true;
    }
    return false;
}

bool tally_evtime_wants_epoch(const tally_evtime_t *ev, const tally_pipeline_t *pipe, tally_state_t *state) {
    int64_t start;
    if (ev->nr) return tally_evtime_partitions_due(ev, pipe);
    if (!ev->wm_on || !first_start(state, &start)) return false;
    if (ev->wm != TALLY_WATERMARK_NONE && tally_window_closed(start, ev->conf->window_size_ms, ev->wm)) return true;
    tally_watermark_t probe = ev->tracker; /* advance() changes only the copy's scalars */
    int64_t wm = tally_watermark_advance(&probe, tally_wall_ms());
    return wm > ev->wm && tally_window_closed(start, ev->conf->window_size_ms, wm);
}

void tally_evtime_store(const tally_evtime_t *ev, tally_state_batch_t *b) {
    if (!ev->on) return;
    char name[32];
    for (int r = 0; r < ev->nr; r++) {
        if (ev->wm_next_r[r] == TALLY_WATERMARK_NONE) continue;
        tally_evtime_meta_name(r, name, sizeof(name));
        tally_state_batch_put_meta(b, name, ev->wm_next_r[r]);
    }
    if (ev->wm_on) tally_state_batch_put_meta(b, TALLY_META_WATERMARK, ev->wm_next);
    tally_state_batch_put_meta(b, TALLY_META_PTIME, ev->ptime_next);
}

void tally_evtime_committed(tally_evtime_t *ev) {
    if (ev->nr) memcpy(ev->wm_r, ev->wm_next_r, (size_t)ev->nr * sizeof(int64_t));
    ev->wm = ev->wm_next;
    ev->ptime = ev->ptime_next;
}

int tally_evtime_store_alone(tally_evtime_t *ev, tally_state_t *state, char *errstr, size_t errstr_size) {
    bool moved = ev->nr && memcmp(ev->wm_r, ev->wm_next_r, (size_t)ev->nr * sizeof(int64_t)) != 0;
    if (!ev->on || (!moved && ev->wm_next == ev->wm && ev->ptime_next == ev->ptime)) return 0;
    tally_state_batch_t *b = tally_state_batch_new();
    if (!b) return TALLY_ENOMEM;
    tally_evtime_store(ev, b);
    int r = tally_state_batch_write(state, b, errstr, errstr_size);
    tally_state_batch_destroy(b);
    if (!r) tally_evtime_committed(ev);
    return r;
}
