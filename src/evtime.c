/* SPDX-License-Identifier: MIT */
/* Time for windows (see evtime.h). @locality control thread. */
#include "evtime.h"

#include <inttypes.h>
#include <stdio.h>
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

int tally_evtime_init(tally_evtime_t *ev, const tally_config_t *conf, tally_state_t *state) {
    memset(ev, 0, sizeof(*ev));
    ev->conf = conf;
    ev->on = conf->window_size_ms > 0;
    ev->wm_on = ev->on && conf->watermark_delay_ms >= 0;
    int r = load(ev, state);
    if (r) return r;
    ev->wm_next = ev->wm;
    ev->ptime_next = ev->ptime;
    tally_watermark_init(&ev->tracker, conf->watermark_policy, conf->watermark_delay_ms, conf->watermark_idle_ms,
                         conf->window_close_idle_ms, ev->wm);
    return 0;
}

void tally_evtime_term(tally_evtime_t *ev) { tally_watermark_term(&ev->tracker); }

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
    tally_watermark_term(&ev->tracker);
    tally_watermark_init(&ev->tracker, ev->conf->watermark_policy, ev->conf->watermark_delay_ms,
                         ev->conf->watermark_idle_ms, ev->conf->window_close_idle_ms, ev->wm);
    if (tally_watermark_partitions(&ev->tracker, pipe->nparts, tally_wall_ms()))
        tally_warn("out of memory for the watermark's partitions: the watermark stays at %" PRId64, ev->wm);
    atomic_store(&pipe->wm, ev->wm);
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
    for (int i = 0; i < pipe->nparts && i < ev->tracker.nparts; i++) {
        int64_t ts = atomic_load_explicit(&pipe->parts[i].cut_max_ts, memory_order_relaxed);
        if (ts != TALLY_WATERMARK_NONE)
            tally_watermark_observe(&ev->tracker, i, ts,
                                    atomic_load_explicit(&pipe->parts[i].cut_last_input, memory_order_relaxed));
    }
    ev->wm_next = tally_watermark_advance(&ev->tracker, tally_wall_ms());
    atomic_store_explicit(&pipe->wm, ev->wm_next, memory_order_relaxed);
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

bool tally_evtime_wants_epoch(const tally_evtime_t *ev, tally_state_t *state) {
    int64_t start;
    if (!ev->wm_on || !first_start(state, &start)) return false;
    if (ev->wm != TALLY_WATERMARK_NONE && tally_window_closed(start, ev->conf->window_size_ms, ev->wm)) return true;
    tally_watermark_t probe = ev->tracker; /* advance() changes only the copy's scalars */
    int64_t wm = tally_watermark_advance(&probe, tally_wall_ms());
    return wm > ev->wm && tally_window_closed(start, ev->conf->window_size_ms, wm);
}

void tally_evtime_store(const tally_evtime_t *ev, tally_state_batch_t *b) {
    if (!ev->on) return;
    if (ev->wm_on) tally_state_batch_put_meta(b, TALLY_META_WATERMARK, ev->wm_next);
    tally_state_batch_put_meta(b, TALLY_META_PTIME, ev->ptime_next);
}

void tally_evtime_committed(tally_evtime_t *ev) {
    ev->wm = ev->wm_next;
    ev->ptime = ev->ptime_next;
}

int tally_evtime_store_alone(tally_evtime_t *ev, tally_state_t *state, char *errstr, size_t errstr_size) {
    if (!ev->on || (ev->wm_next == ev->wm && ev->ptime_next == ev->ptime)) return 0;
    tally_state_batch_t *b = tally_state_batch_new();
    if (!b) return TALLY_ENOMEM;
    tally_evtime_store(ev, b);
    int r = tally_state_batch_write(state, b, errstr, errstr_size);
    tally_state_batch_destroy(b);
    if (!r) tally_evtime_committed(ev);
    return r;
}
