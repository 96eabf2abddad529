/* SPDX-License-Identifier: MIT */
/* The live page's view of the output topic (Confluent Control Center's "Messages" tab): the last N
 * records as a read_committed reader sees them, newest first, with partition, offset, timestamp,
 * key and value. Its own thread reads the topic's tail once a second with its own consumer (no
 * group), so neither the control thread nor the pipeline waits on it. */
#ifndef TALLY_TAIL_H
#define TALLY_TAIL_H

#include "tally/config.h"
#include "tally/snapshot.h"

typedef struct tally_tail_s tally_tail_t;

/* Starts reading `topic` (connection settings from conf); keeps the newest `n` records. */
int tally_tail_new(tally_tail_t **out, const tally_config_t *conf, const char *topic, int n);
/* The newest records as a JSON array (a new reference; NULL before the first read). Any thread. */
tally_blob_t *tally_tail_get(tally_tail_t *t);
/* Stops and joins the thread. */
void tally_tail_destroy(tally_tail_t *t);

#endif
