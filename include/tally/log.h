/* SPDX-License-Identifier: MIT */
/* Logging to stderr: level, the calling thread's tag ([ctl], [p3], [w1]) and a message per line. */
#ifndef TALLY_LOG_H
#define TALLY_LOG_H

#include <stdarg.h>

typedef enum { TALLY_LOG_ERROR = 0, TALLY_LOG_WARN, TALLY_LOG_INFO, TALLY_LOG_DEBUG } tally_log_level_t;

extern int tally_log_level_cur;

/* Parses "error", "warn", "info", "debug"; returns -1 when unknown. */
int tally_log_level_parse(const char *s);
void tally_log_set_level(tally_log_level_t level);
/* Sets the calling thread's tag (copied, at most 15 bytes). */
void tally_log_set_thread(const char *tag);
const char *tally_log_thread(void);

void tally_log_write(tally_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The level is checked before the arguments are formatted. */
#define tally_log(level, ...)                                                   \
    do {                                                                        \
        if ((int)(level) <= tally_log_level_cur) tally_log_write(level, __VA_ARGS__); \
    } while (0)
#define tally_err(...)   tally_log(TALLY_LOG_ERROR, __VA_ARGS__)
#define tally_warn(...)  tally_log(TALLY_LOG_WARN, __VA_ARGS__)
#define tally_info(...)  tally_log(TALLY_LOG_INFO, __VA_ARGS__)
#define tally_debug(...) tally_log(TALLY_LOG_DEBUG, __VA_ARGS__)

#endif
