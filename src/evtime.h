/* SPDX-License-Identifier: MIT */
/* Time for windows, on the control thread: the watermark each epoch applies, the processing time
 * each epoch's records take, and what of both goes into the state write (see docs/windows.md).
 *
 * Epoch e applies watermark W(e) and processing time P(e). W(e+1) is computed when e's barriers are
 * all in, from the event times read up to e's cut (Spark moves its watermark between batches), and
 * published to the workers, which wait for it before they apply e+1's records: so which records are
 * late depends on cuts, never on thread timing. P(e+1) is fixed when e is requested: partition
 * threads give it to the records after e's barrier, file readers to e+1's files. e's state write
 * stores W(e+1) and P(e+1), so a replay of e+1 after a crash places and drops exactly the records
 * the committed run did. Epochs that commit nothing store them alone. */
#ifndef TALLY_EVTIME_H
#define TALLY_EVTIME_H

#include <stdbool.h>
#include <stdint.h>

#include "pipeline.h"
#include "tally/config.h"
#include "tally/state.h"
#include "tally/window.h"

typedef struct {
    const tally_config_t *conf;
    bool on;                 /* window.size.ms > 0 */
    bool wm_on;              /* with a watermark (watermark.delay.ms set) */
    tally_watermark_t tracker;
    int64_t wm, wm_next;     /* W(e) of the epoch in flight (or the next one), W(e+1) */
    int64_t ptime, ptime_next; /* P(e), P(e+1) */
    /* topology=distributed with a watermark: W per repartition partition r (wm and wm_next are then
     * their greatest, for reports), the last W_r sent to the changelog (its next owner starts from
     * it), and the W_r at which r's closed windows were last removed. [repartition.partitions] */
    int nr;
    int64_t *wm_r, *wm_next_r, *sent_r, *closed_r;
} tally_evtime_t;

/* The committed watermark and processing time from the state (none stored: Spark's first
 * watermark, now). Also what replay uses. */
int tally_evtime_init(tally_evtime_t *ev, const tally_config_t *conf, tally_state_t *state);
void tally_evtime_term(tally_evtime_t *ev);
/* The pipeline is about to start at the committed epoch: W and P of the next epoch go to the
 * threads; per-partition event times start over (the watermark never goes back). P is now, stored
 * at once: the records read from here on were not read before (a replay of the last committed
 * epoch, if any, ran already with the P stored for it). */
int tally_evtime_start(tally_evtime_t *ev, tally_pipeline_t *pipe, tally_state_t *state, uint64_t committed,
                       char *errstr, size_t errstr_size);
/* Before epoch e is requested: P(e) to the file readers, P(e+1) to the partition threads. */
void tally_evtime_request(tally_evtime_t *ev, tally_pipeline_t *pipe);
/* Every barrier of epoch e is in: W(e+1) from the cuts, published; the workers go on. */
void tally_evtime_barrier(tally_evtime_t *ev, tally_pipeline_t *pipe, uint64_t epoch);
/* The state keys [begin, end) of the windows W(e) closed, when the state may hold any (first =
 * the state's smallest count key). False: nothing to close. */
bool tally_evtime_closed_range(const tally_evtime_t *ev, tally_state_t *state, uint8_t begin[TALLY_WINDOW_KEY_PREFIX],
                               uint8_t end[TALLY_WINDOW_KEY_PREFIX]);
/* With no input: whether an epoch should run anyway, because windows in the state are closed by
 * W(e), or would be by the watermark the wall clock gives now (window.close.idle.ms, idleness). */
bool tally_evtime_wants_epoch(const tally_evtime_t *ev, const tally_pipeline_t *pipe, tally_state_t *state);
/* distributed: a repartition partition counting here has windows to close or a watermark to send. */
bool tally_evtime_partitions_due(const tally_evtime_t *ev, const tally_pipeline_t *pipe);
/* W(e+1) and P(e+1) into e's state write. */
void tally_evtime_store(const tally_evtime_t *ev, tally_state_batch_t *b);
/* e is stored: W(e+1), P(e+1) become the committed ones. */
void tally_evtime_committed(tally_evtime_t *ev);
/* An epoch that commits nothing: W(e+1) and P(e+1) are stored alone when they changed. */
int tally_evtime_store_alone(tally_evtime_t *ev, tally_state_t *state, char *errstr, size_t errstr_size);

/* distributed: W_r of the partitions of `parts` from the state (restored), published. */
void tally_evtime_load_partitions(tally_evtime_t *ev, tally_pipeline_t *pipe, tally_state_t *state,
                                  const rd_kafka_topic_partition_list_t *parts);
/* distributed: whether repartition partition r (owned, counting) has windows W_r(e) may close
 * that were not removed yet. */
static inline bool tally_evtime_closes(const tally_evtime_t *ev, int32_t r) {
    return ev->nr && ev->wm_r[r] != TALLY_WATERMARK_NONE && ev->wm_r[r] != ev->closed_r[r];
}
/* distributed: the "W" changelog record of r: due when W_r(e+1) moved past what was sent. */
static inline bool tally_evtime_send_due(const tally_evtime_t *ev, int32_t r) {
    return ev->nr && ev->wm_next_r[r] != TALLY_WATERMARK_NONE && ev->wm_next_r[r] != ev->sent_r[r];
}
/* "watermark.<r>": distributed, W_r(e+1) stored with e. */
void tally_evtime_meta_name(int32_t r, char *buf, size_t size);

#define TALLY_META_WATERMARK "watermark"
#define TALLY_META_PTIME "ptime"

#endif
