/* SPDX-License-Identifier: MIT */
/* Test-only crash points for the fault suite: with TALLY_CRASH_AT=<name>[:<epoch>] in the environment
 * the process SIGKILLs itself at that point of that epoch (default epoch 3). Unset, they cost one
 * branch. Names: after_produce, after_send_offsets, during_commit, after_commit, mid_state_write. */
#ifndef TALLY_CRASHPOINT_H
#define TALLY_CRASHPOINT_H

#include <stdint.h>

/* Reads the environment once; call before any thread starts. */
void tally_crashpoint_init(void);
/* Dies here when armed for this name and epoch. */
void tally_crashpoint(const char *name, uint64_t epoch);
/* Dies `delay_us` from now, from another thread, while the caller goes on into a blocking call. */
void tally_crashpoint_soon(const char *name, uint64_t epoch, unsigned delay_us);

#endif
