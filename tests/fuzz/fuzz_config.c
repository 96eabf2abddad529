/* SPDX-License-Identifier: MIT */
/* Fuzz target: the properties parser (tally_config_load_string) and --set on arbitrary bytes; then
 * validation, printing (to /dev/null) and term, so every field the parser stored is used and freed. */
#include "fuzz.h"

#include "tally/config.h"
#include "tally/err.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static FILE *null_out;
    if (!null_out) null_out = fopen("/dev/null", "w");
    FUZZ_CHECK(null_out);

    /* The parser takes a C string: the input up to its first NUL. */
    char *text = malloc(size + 1);
    FUZZ_CHECK(text);
    memcpy(text, data, size);
    text[size] = '\0';

    char err[512];
    tally_config_t conf;
    tally_config_init(&conf);
    err[0] = '\0';
    int rc = tally_config_load_string(&conf, text, "fuzz.properties", err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == TALLY_ECONFIG || rc == TALLY_ENOMEM);
    FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
    if (rc != 0) FUZZ_CHECK(err[0] != '\0'); /* every failure says why */
    (void)tally_config_validate(&conf, err, sizeof(err));
    tally_config_print(&conf, null_out);
    tally_config_term(&conf);

    /* A small errstr cuts the message but stays a string. */
    char tiny[8] = "";
    tally_config_init(&conf);
    (void)tally_config_load_string(&conf, text, NULL, tiny, sizeof(tiny));
    FUZZ_CHECK(memchr(tiny, '\0', sizeof(tiny)) != NULL);
    tally_config_term(&conf);

    /* The same bytes as one --set key=value. */
    tally_config_init(&conf);
    rc = tally_config_set(&conf, text, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == TALLY_ECONFIG || rc == TALLY_ENOMEM);
    tally_config_print(&conf, null_out);
    tally_config_term(&conf);

    free(text);
    return 0;
}
