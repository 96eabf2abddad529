/* SPDX-License-Identifier: MIT */
/* Writer of the Prometheus text format. */
#include "tally/prom.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

void tally_prom_family(tally_buf_t *b, const char *name, const char *type, const char *help) {
    tally_buf_printf(b, "# HELP %s ", name);
    for (const char *p = help; *p; p++) {
        if (*p == '\\') tally_buf_puts(b, "\\\\");
        else if (*p == '\n') tally_buf_puts(b, "\\n");
        else tally_buf_append(b, p, 1);
    }
    tally_buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

static void head(tally_buf_t *b, const char *name, const char *const *labels) {
    tally_buf_puts(b, name);
    if (!labels || !labels[0]) return;
    tally_buf_puts(b, "{");
    for (int i = 0; labels[i] && labels[i + 1]; i += 2) {
        tally_buf_printf(b, "%s%s=\"", i ? "," : "", labels[i]);
        for (const char *p = labels[i + 1]; *p; p++) {
            if (*p == '\\') tally_buf_puts(b, "\\\\");
            else if (*p == '"') tally_buf_puts(b, "\\\"");
            else if (*p == '\n') tally_buf_puts(b, "\\n");
            else tally_buf_append(b, p, 1);
        }
        tally_buf_puts(b, "\"");
    }
    tally_buf_puts(b, "}");
}

void tally_prom_int(tally_buf_t *b, const char *name, const char *const *labels, int64_t v) {
    head(b, name, labels);
    tally_buf_printf(b, " %" PRId64 "\n", v);
}

void tally_prom_uint(tally_buf_t *b, const char *name, const char *const *labels, uint64_t v) {
    head(b, name, labels);
    tally_buf_printf(b, " %" PRIu64 "\n", v);
}

void tally_prom_float(tally_buf_t *b, const char *name, const char *const *labels, double v) {
    head(b, name, labels);
    if (isnan(v)) tally_buf_puts(b, " NaN\n");
    else if (isinf(v)) tally_buf_puts(b, v > 0 ? " +Inf\n" : " -Inf\n");
    else tally_buf_printf(b, " %.15g\n", v);
}

static const double hist_bounds[TALLY_PROM_HIST_BOUNDS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                          0.25,  0.5,    1,     2.5,  5,     10};

void tally_prom_hist_observe(tally_prom_hist_t *h, double v) {
    int i = 0;
    while (i < TALLY_PROM_HIST_BOUNDS && v > hist_bounds[i]) i++;
    h->in[i]++;
    h->count++;
    h->sum += v;
}

void tally_prom_hist(tally_buf_t *b, const char *name, const char *const *labels, const tally_prom_hist_t *h) {
    const char *l[12];
    int n = 0;
    for (; labels && labels[n] && labels[n + 1] && n < 8; n += 2) {
        l[n] = labels[n];
        l[n + 1] = labels[n + 1];
    }
    char le[32], bucket[128], other[128];
    l[n] = "le";
    l[n + 1] = le;
    l[n + 2] = NULL;
    snprintf(bucket, sizeof(bucket), "%s_bucket", name);
    uint64_t cum = 0;
    for (int i = 0; i <= TALLY_PROM_HIST_BOUNDS; i++) {
        cum += h->in[i];
        if (i < TALLY_PROM_HIST_BOUNDS) snprintf(le, sizeof(le), "%g", hist_bounds[i]);
        else snprintf(le, sizeof(le), "+Inf");
        tally_prom_uint(b, bucket, l, cum);
    }
    l[n] = NULL;
    snprintf(other, sizeof(other), "%s_sum", name);
    tally_prom_float(b, other, l, h->sum);
    snprintf(other, sizeof(other), "%s_count", name);
    tally_prom_uint(b, other, l, h->count);
}
