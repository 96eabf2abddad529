/* SPDX-License-Identifier: MIT */
/* The stream engine: consumer, partition threads, workers, trigger and exactly-once commits. */
#ifndef TALLY_ENGINE_H
#define TALLY_ENGINE_H

#include <stddef.h>

#include "tally/config.h"

typedef struct tally_engine_s tally_engine_t;

/* Exit statuses of the tally command, by why the engine stopped. */
enum {
    TALLY_EXIT_OK = 0,        /* SIGTERM/SIGINT: last epoch committed, closed cleanly */
    TALLY_EXIT_ERROR = 1,     /* Kafka, state or internal error */
    TALLY_EXIT_USAGE = 2,     /* bad command line or configuration */
    TALLY_EXIT_FENCED = 3,    /* a newer instance with the same application.id took over */
    TALLY_EXIT_DATALOSS = 4,  /* input was deleted before it was read (fail.on.data.loss=true) */
};

/* Builds the engine from a validated configuration (copied). Touches nothing outside the process. */
int tally_engine_new(tally_engine_t **out, const tally_config_t *conf, char *errstr, size_t errstr_size);
/* Connects, recovers and runs until tally_engine_stop() or SIGTERM/SIGINT or a fatal error.
 * Returns a TALLY_EXIT_* status; the reason of a failure is logged. */
int tally_engine_run(tally_engine_t *eng);
/* Asks a running engine to commit its work in hand and stop. Thread- and signal-context safe. */
void tally_engine_stop(tally_engine_t *eng);
void tally_engine_destroy(tally_engine_t *eng);

#endif
