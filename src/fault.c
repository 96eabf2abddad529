/* SPDX-License-Identifier: MIT */
/* The fault slot (see the header): first raise wins. */
#include "tally/fault.h"

#include <stdarg.h>
#include <stdio.h>

void tally_fault_init(tally_fault_t *f, void (*wake)(void *opaque), void *wake_opaque) {
    pthread_mutex_init(&f->mu, NULL);
    f->status = 0;
    f->msg[0] = '\0';
    f->wake = wake;
    f->wake_opaque = wake_opaque;
}

void tally_fault_term(tally_fault_t *f) { pthread_mutex_destroy(&f->mu); }

void tally_fault_raise(tally_fault_t *f, int status, const char *fmt, ...) {
    pthread_mutex_lock(&f->mu);
    if (!f->status) {
        f->status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&f->mu);
    if (f->wake) f->wake(f->wake_opaque);
}

int tally_fault_get(tally_fault_t *f, char *msg, size_t size) {
    pthread_mutex_lock(&f->mu);
    int status = f->status;
    if (msg && size) snprintf(msg, size, "%s", f->msg);
    pthread_mutex_unlock(&f->mu);
    return status;
}
