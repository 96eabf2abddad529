/* SPDX-License-Identifier: MIT */
/* Prometheus text exposition format 0.0.4: metric families (# HELP, # TYPE) and their samples. */
#ifndef TALLY_PROM_H
#define TALLY_PROM_H

#include <stdint.h>

#include "tally/buf.h"

#define TALLY_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Starts a family: type is "counter" or "gauge". Its samples must follow before the next family. */
void tally_prom_family(tally_buf_t *b, const char *name, const char *type, const char *help);
/* One sample. labels: name, value pairs ending with NULL (values escaped), or NULL for none. */
void tally_prom_int(tally_buf_t *b, const char *name, const char *const *labels, int64_t v);
void tally_prom_uint(tally_buf_t *b, const char *name, const char *const *labels, uint64_t v);
void tally_prom_float(tally_buf_t *b, const char *name, const char *const *labels, double v);

#endif
