/* SPDX-License-Identifier: MIT */
/* Names and messages of tally's error codes, from TALLY_ERR_MAP. */
#include "tally/err.h"

const char *tally_err_name(int err) {
    switch (err) {
    case TALLY_OK: return "OK";
#define X(name, msg) case TALLY_E##name: return #name;
    TALLY_ERR_MAP(X)
#undef X
    default: return "UNKNOWN";
    }
}

const char *tally_err_str(int err) {
    switch (err) {
    case TALLY_OK: return "success";
#define X(name, msg) case TALLY_E##name: return msg;
    TALLY_ERR_MAP(X)
#undef X
    default: return "unknown error";
    }
}
