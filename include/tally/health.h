/* SPDX-License-Identifier: MIT */
/* The /healthz rules: healthy while the engine runs and its commits keep up with its input. Pure
 * functions of a published snapshot and the time, so the HTTP thread decides without engine state. */
#ifndef TALLY_HEALTH_H
#define TALLY_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "tally/buf.h"
#include "tally/snapshot.h"

/* Trigger intervals without a commit (while input waits) before /healthz says 503. */
#define TALLY_HEALTH_STALL_INTERVALS 10
/* ... but never less than this: short triggers must not flap on one slow broker round trip. */
#define TALLY_HEALTH_STALL_MIN_S 5.0

typedef struct {
    int code;            /* 200 or 503 */
    const char *status;  /* ok, starting, stopping, stopped, fenced, unresponsive, stalled, stuck */
    char reason[640];    /* "" when ok */
} tally_health_t;

/* The stall limit in seconds for a trigger interval. */
double tally_health_stall_limit(int trigger_interval_ms);

/* A partition thread is stuck when its read offset did not move for the stall limit while records
 * were waiting for it: lag > 0 and records in its fetch queue (a trailing transaction marker leaves a
 * lag of 1 with nothing to read, which is not stuck). */
bool tally_health_part_stuck(double unchanged_s, int64_t lag, int64_t queued, double limit_s);

/* s NULL: nothing published yet (starting). now: tally_snap_now(). */
void tally_health_eval(const tally_snap_t *s, double now, tally_health_t *out);

/* The /healthz body: {"status":...,"state":...,"epoch":...,...,"reason":...}. */
void tally_health_json(const tally_snap_t *s, const tally_health_t *h, double now, tally_buf_t *out);

#endif
