/* SPDX-License-Identifier: MIT */
/* Writer of the Prometheus text format. */
#include "tally/prom.h"

#include <inttypes.h>
#include <math.h>

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
