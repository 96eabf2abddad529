/* SPDX-License-Identifier: MIT */
/* Test-only crash points (see the header). */
#include "tally/crashpoint.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tally/log.h"

static char armed[64];
static uint64_t armed_epoch = 3;

void tally_crashpoint_init(void) {
    const char *v = getenv("TALLY_CRASH_AT");
    if (!v || !*v) return;
    snprintf(armed, sizeof(armed), "%s", v);
    char *colon = strchr(armed, ':');
    if (colon) {
        *colon = '\0';
        armed_epoch = strtoull(colon + 1, NULL, 10);
    }
    tally_warn("test crash point armed: %s at epoch %llu", armed, (unsigned long long)armed_epoch);
}

static int is_armed(const char *name, uint64_t epoch) {
    return armed[0] && epoch >= armed_epoch && strcmp(name, armed) == 0;
}

void tally_crashpoint(const char *name, uint64_t epoch) {
    if (!is_armed(name, epoch)) return;
    tally_warn("crash point %s at epoch %llu: SIGKILL", name, (unsigned long long)epoch);
    raise(SIGKILL);
}

static void *kill_later(void *arg) {
    usleep((useconds_t)(uintptr_t)arg);
    raise(SIGKILL);
    return NULL;
}

void tally_crashpoint_soon(const char *name, uint64_t epoch, unsigned delay_us) {
    if (!is_armed(name, epoch)) return;
    tally_warn("crash point %s at epoch %llu: SIGKILL in %u us", name, (unsigned long long)epoch, delay_us);
    pthread_t t;
    if (pthread_create(&t, NULL, kill_later, (void *)(uintptr_t)delay_us) == 0) pthread_detach(t);
    else raise(SIGKILL);
}

bool tally_crashpoint_fail(const char *name, uint64_t epoch) {
    char full[64];
    snprintf(full, sizeof(full), "fail_%s", name);
    if (!is_armed(full, epoch)) return false;
    tally_warn("fail point %s at epoch %llu", full, (unsigned long long)epoch);
    armed[0] = '\0'; /* once: the retry goes through */
    return true;
}

void tally_crashpoint_hold(const char *name) {
    char full[64];
    snprintf(full, sizeof(full), "hold_%s", name);
    if (!armed[0] || strcmp(full, armed) != 0) return;
    armed[0] = '\0';
    tally_warn("hold point %s: pausing 5 s", full);
    sleep(5);
}
