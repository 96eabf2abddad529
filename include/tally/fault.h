/* SPDX-License-Identifier: MIT */
/* A fault slot: the first error raised by any thread (partition threads, workers, librdkafka's
 * callbacks) with the exit status it calls for. Raising wakes the owner through a callback, so that
 * a module below the engine reports an error without knowing who reacts to it. */
#ifndef TALLY_FAULT_H
#define TALLY_FAULT_H

#include <pthread.h>
#include <stddef.h>

typedef struct tally_fault_s {
    pthread_mutex_t mu;
    int status;                      /* TALLY_EXIT_*; 0 while nothing was raised */
    char msg[512];
    void (*wake)(void *opaque);      /* called after every raise, from the raising thread */
    void *wake_opaque;
} tally_fault_t;

void tally_fault_init(tally_fault_t *f, void (*wake)(void *opaque), void *wake_opaque);
void tally_fault_term(tally_fault_t *f);
/* Records status and message unless an earlier fault is recorded; wakes the owner. Any thread. */
void tally_fault_raise(tally_fault_t *f, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The recorded status (0 when none); copies its message into msg when msg is not NULL. */
int tally_fault_get(tally_fault_t *f, char *msg, size_t size);

#endif
