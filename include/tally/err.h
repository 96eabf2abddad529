/* SPDX-License-Identifier: MIT */
/* tally's error codes: one table gives each code its name and message (as libuv's UV_ERRNO_MAP). */
#ifndef TALLY_ERR_H
#define TALLY_ERR_H

#define TALLY_ERR_MAP(X)                                                        \
    X(INVAL,    "invalid argument or value")                                    \
    X(NOMEM,    "out of memory")                                                \
    X(IO,       "input/output error")                                           \
    X(CONFIG,   "bad configuration")                                            \
    X(KAFKA,    "Kafka client error")                                           \
    X(STATE,    "state store error")                                            \
    X(FENCED,   "fenced by a newer instance with the same application.id")      \
    X(ABORT,    "transaction aborted; rolled back to the last commit")          \
    X(DATALOSS, "input records were lost before they were read")                \
    X(STOPPED,  "stopped")

typedef enum {
    TALLY_OK = 0,
#define TALLY_ERR_ENUM(name, msg) TALLY_E##name,
    TALLY_ERR_FIRST_ = -100,
    TALLY_ERR_MAP(TALLY_ERR_ENUM)
#undef TALLY_ERR_ENUM
} tally_err_t;

/* Static string for an error code; never NULL. */
const char *tally_err_name(int err);
const char *tally_err_str(int err);

#endif
