/* SPDX-License-Identifier: MIT */
/* Prometheus text exposition format 0.0.4: metric families (# HELP, # TYPE) and their samples. */
#ifndef TALLY_PROM_H
#define TALLY_PROM_H

#include <stdint.h>

#include "tally/buf.h"

#define TALLY_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Starts a family: type is "counter", "gauge" or "histogram". Its samples must follow before the next family. */
void tally_prom_family(tally_buf_t *b, const char *name, const char *type, const char *help);
/* One sample. labels: name, value pairs ending with NULL (values escaped), or NULL for none. */
void tally_prom_int(tally_buf_t *b, const char *name, const char *const *labels, int64_t v);
void tally_prom_uint(tally_buf_t *b, const char *name, const char *const *labels, uint64_t v);
void tally_prom_float(tally_buf_t *b, const char *name, const char *const *labels, double v);

/* A histogram of durations in seconds, with fixed bounds from 1 ms to 10 s (+Inf implied). */
#define TALLY_PROM_HIST_BOUNDS 13
typedef struct {
    uint64_t in[TALLY_PROM_HIST_BOUNDS + 1]; /* per bucket, not cumulative; the last is above 10 s */
    uint64_t count;
    double sum;
} tally_prom_hist_t;
void tally_prom_hist_observe(tally_prom_hist_t *h, double seconds);
/* name_bucket{labels..., le="..."} (cumulative), name_sum and name_count; the family's type is
 * "histogram". labels as above, at most 4 pairs. */
void tally_prom_hist(tally_buf_t *b, const char *name, const char *const *labels, const tally_prom_hist_t *h);

#endif
