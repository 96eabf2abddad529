/* SPDX-License-Identifier: MIT */
/* Fuzz target: the tokenizer. Invariants: words come in order, each non-empty and free of ASCII
 * whitespace; everything between, before and after them is whitespace (at least one byte between
 * two words); word bytes plus whitespace bytes are all the input. */
#include "fuzz.h"

#include "tally/tokenize.h"

#include <stdbool.h>

static bool is_space(uint8_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tally_tokenizer_t t;
    const uint8_t *w;
    size_t len, pos = 0, word_bytes = 0, space_bytes = 0, words = 0;
    tally_tokenizer_init(&t, data, size);
    while (tally_tokenizer_next(&t, &w, &len)) {
        FUZZ_CHECK(len > 0);
        FUZZ_CHECK(w >= data + pos && w + len <= data + size);
        size_t off = (size_t)(w - data);
        FUZZ_CHECK(words == 0 || off > pos); /* maximal: two words never touch */
        for (size_t i = pos; i < off; i++) FUZZ_CHECK(is_space(data[i]));
        for (size_t i = 0; i < len; i++) FUZZ_CHECK(!is_space(w[i]));
        space_bytes += off - pos;
        word_bytes += len;
        pos = off + len;
        words++;
    }
    for (size_t i = pos; i < size; i++) FUZZ_CHECK(is_space(data[i]));
    space_bytes += size - pos;
    FUZZ_CHECK(word_bytes + space_bytes == size);
    FUZZ_CHECK(!tally_tokenizer_next(&t, &w, &len));
    /* The count agrees with counting word starts directly. */
    size_t starts = 0;
    for (size_t i = 0; i < size; i++)
        if (!is_space(data[i]) && (i == 0 || is_space(data[i - 1]))) starts++;
    FUZZ_CHECK(starts == words);
    return 0;
}
