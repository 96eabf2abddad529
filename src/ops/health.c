/* SPDX-License-Identifier: MIT */
/* /healthz decisions from a snapshot. */
#include "tally/health.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

double tally_health_stall_limit(int trigger_interval_ms) {
    double s = TALLY_HEALTH_STALL_INTERVALS * (double)trigger_interval_ms / 1000.0;
    return s < TALLY_HEALTH_STALL_MIN_S ? TALLY_HEALTH_STALL_MIN_S : s;
}

bool tally_health_part_stuck(double unchanged_s, int64_t lag, int64_t queued, double limit_s) {
    return unchanged_s >= limit_s && lag > 0 && queued > 0;
}

static void set(tally_health_t *h, int code, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set(tally_health_t *h, int code, const char *status, const char *fmt, ...) {
    h->code = code;
    h->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->reason, sizeof(h->reason), fmt, ap);
    va_end(ap);
}

void tally_health_eval(const tally_snap_t *s, double now, tally_health_t *h) {
    h->reason[0] = '\0';
    if (!s) {
        set(h, 503, "starting", "the engine is starting");
        return;
    }
    if (s->fenced) {
        set(h, 503, "fenced", "fenced: a newer instance with the same application.id took over");
        return;
    }
    switch (s->state) {
    case TALLY_SNAP_STARTING: set(h, 503, "starting", "the engine is starting (connecting, opening the state)"); return;
    case TALLY_SNAP_STOPPING: set(h, 503, "stopping", "the engine is stopping"); return;
    case TALLY_SNAP_STOPPED: set(h, 503, "stopped", "the engine has stopped"); return;
    case TALLY_SNAP_RUNNING: break;
    }
    double age = now - s->published;
    if (age > s->stall_limit_s) {
        set(h, 503, "unresponsive", "the control thread has published nothing for %.1f s (limit %.1f s)", age,
            s->stall_limit_s);
        return;
    }
    double stall = now - s->commit_ok;
    if (stall > s->stall_limit_s) {
        set(h, 503, "stalled", "no commit for %.1f s while input was waiting (limit %.1f s)", stall, s->stall_limit_s);
        return;
    }
    if (s->problem[0]) {
        set(h, 503, s->problem_kind[0] ? s->problem_kind : "unhealthy", "%s", s->problem);
        return;
    }
    h->code = 200;
    h->status = "ok";
}

static const char *state_name(tally_snap_state_t st) {
    switch (st) {
    case TALLY_SNAP_STARTING: return "starting";
    case TALLY_SNAP_RUNNING: return "running";
    case TALLY_SNAP_STOPPING: return "stopping";
    case TALLY_SNAP_STOPPED: return "stopped";
    }
    return "?";
}

void tally_health_json(const tally_snap_t *s, const tally_health_t *h, double now, tally_buf_t *out) {
    tally_buf_puts(out, "{\"status\":");
    tally_buf_json_str(out, h->status, strlen(h->status));
    if (s) {
        tally_buf_printf(out, ",\"state\":\"%s\",\"epoch\":%llu,\"commits\":%llu,\"aborts\":%llu", state_name(s->state),
                         (unsigned long long)s->epoch, (unsigned long long)s->commits,
                         (unsigned long long)s->aborts);
        tally_buf_puts(out, ",\"secondsSinceCommitUpToDate\":");
        tally_buf_json_num(out, now - s->commit_ok);
        tally_buf_puts(out, ",\"stallLimitSeconds\":");
        tally_buf_json_num(out, s->stall_limit_s);
        tally_buf_puts(out, ",\"lastCommitTimestamp\":");
        if (s->last_commit_wall > 0) tally_buf_json_num(out, s->last_commit_wall);
        else tally_buf_puts(out, "null");
    }
    if (h->reason[0]) {
        tally_buf_puts(out, ",\"reason\":");
        tally_buf_json_str(out, h->reason, strlen(h->reason));
    }
    tally_buf_puts(out, "}");
}
