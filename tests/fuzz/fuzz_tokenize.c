/* SPDX-License-Identifier: MIT */
/* Fuzz target: the tokenizer. Invariants: words come in order, each non-empty and free of ASCII
 * whitespace; everything between, before and after them is whitespace (at least one byte between
 * two words); word bytes plus whitespace bytes are all the input. Where the build has the SSE2 scan,
 * it and the scalar loop give the same words, and the same words and drops under max.word.bytes. */
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
#ifdef TALLY_TOKENIZE_SSE2
    /* Limits around the 16-byte steps, and one from the input. */
    const size_t maxes[] = {SIZE_MAX, 0, 1, 15, 16, 17, size ? data[0] : 5};
    for (size_t k = 0; k < sizeof(maxes) / sizeof(maxes[0]); k++) {
        tally_tokenizer_t ta, tb;
        tally_tokenizer_init(&ta, data, size);
        tally_tokenizer_init(&tb, data, size);
        uint64_t da = 0, db = 0;
        size_t n = 0;
        for (;;) {
            const uint8_t *wa = NULL, *wb = NULL;
            size_t la = 0, lb = 0;
            bool ga = tally_tokenizer_next_counted_with(&ta, tally_tokenizer_next_scalar, maxes[k], &wa, &la, &da);
            bool gb = tally_tokenizer_next_counted_with(&tb, tally_tokenizer_next_sse2, maxes[k], &wb, &lb, &db);
            FUZZ_CHECK(ga == gb && da == db);
            if (!ga) break;
            FUZZ_CHECK(wa == wb && la == lb);
            n++;
        }
        FUZZ_CHECK(n + da == words);
    }
#endif
    return 0;
}
