/* SPDX-License-Identifier: MIT */
/* Fuzz target: the JSON record encoder. The output stays within TALLY_JSON_MAX, is valid UTF-8 and
 * a well-formed record whose escapes decode to the input with maximal subparts of invalid UTF-8
 * replaced by U+FFFD (the reference in tests/json_check.h), and carries the count. */
#include "fuzz.h"
#include "../json_check.h"

#include "tally/json.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* The first 8 bytes (when there are more) pick the count; the rest is the word. */
    int64_t count = 1;
    if (size > 8) {
        memcpy(&count, data, 8);
        data += 8;
        size -= 8;
    }
    /* Exactly TALLY_JSON_MAX bytes, so AddressSanitizer sees any write past the bound. */
    char *out = malloc(TALLY_JSON_MAX(size));
    uint8_t *dec = malloc(TALLY_JSON_MAX(size));
    uint8_t *want = malloc(3 * size + 1);
    char *body = malloc(6 * size + 1);
    FUZZ_CHECK(out && dec && want && body);
    size_t n = tally_json_word_count(out, data, size, count);
    FUZZ_CHECK(n <= TALLY_JSON_MAX(size));
    FUZZ_CHECK(jc_utf8_valid((const uint8_t *)out, n));
    size_t dl, wl, repl;
    int64_t c;
    FUZZ_CHECK(jc_record((const uint8_t *)out, n, dec, &dl, &c));
    FUZZ_CHECK(c == count);
    wl = jc_utf8_sanitize(want, data, size, &repl);
    FUZZ_CHECK(dl == wl && memcmp(dec, want, wl) == 0);
    FUZZ_CHECK((repl == 0) == jc_utf8_valid(data, size));
    if (repl == 0) FUZZ_CHECK(dl == size && memcmp(dec, data, size) == 0);
    /* The body alone is the same bytes as inside the record. */
    static const char head[] = "{\"word\":\"";
    size_t el = tally_json_escape(body, data, size);
    FUZZ_CHECK(el <= 6 * size);
    FUZZ_CHECK(n >= sizeof(head) - 1 + el && memcmp(out + sizeof(head) - 1, body, el) == 0);
    FUZZ_CHECK(out[sizeof(head) - 1 + el] == '"');
    free(body);
    free(out);
    free(dec);
    free(want);
    return 0;
}
