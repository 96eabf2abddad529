/* SPDX-License-Identifier: MIT */
/* Log lines: "2026-11-28T22:40:01.123Z INFO  [ctl] message". One write(2) per line so threads never interleave. */
#include "tally/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int tally_log_level_cur = TALLY_LOG_INFO;
static _Thread_local char thread_tag[16] = "main";

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

int tally_log_level_parse(const char *s) {
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0) return i;
    return -1;
}

void tally_log_set_level(tally_log_level_t level) { tally_log_level_cur = (int)level; }

void tally_log_set_thread(const char *tag) {
    snprintf(thread_tag, sizeof(thread_tag), "%s", tag);
}

const char *tally_log_thread(void) { return thread_tag; }

void tally_log_write(tally_log_level_t level, const char *fmt, ...) {
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], thread_tag);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2) len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
