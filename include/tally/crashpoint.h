/* SPDX-License-Identifier: MIT */
/* Test-only crash points for the fault suite: with TALLY_CRASH_AT=<name>[:<epoch>] in the environment
 * the process SIGKILLs itself at that point of that epoch (default epoch 3). Unset, they cost one
 * branch. Names: after_produce, after_send_offsets, during_commit, after_commit, mid_state_write.
 * Fail points (TALLY_CRASH_AT=fail_<name>[:<epoch>]) make a step fail once instead: fail_final_commit
 * turns the commit of a final epoch (stop, revoke) into an abortable error. Hold points
 * (TALLY_CRASH_AT=hold_<name>) pause there for 5 s, once, so a test can act at that moment (e.g.
 * freeze the broker before recovery replays). */
#ifndef TALLY_CRASHPOINT_H
#define TALLY_CRASHPOINT_H

#include <stdbool.h>
#include <stdint.h>

/* Reads the environment once; call before any thread starts. */
void tally_crashpoint_init(void);
/* Dies here when armed for this name and epoch. */
void tally_crashpoint(const char *name, uint64_t epoch);
/* Dies `delay_us` from now, from another thread, while the caller goes on into a blocking call. */
void tally_crashpoint_soon(const char *name, uint64_t epoch, unsigned delay_us);
/* True once, the first time fail point `name` (without "fail_") is reached at or after its epoch. */
bool tally_crashpoint_fail(const char *name, uint64_t epoch);
/* Pauses 5 s, once, at hold point `name` (without "hold_"). */
void tally_crashpoint_hold(const char *name);

#endif
