/* SPDX-License-Identifier: MIT */
/* The whitespace table behind the tokenizer. */
#include "tally/tokenize.h"

const uint8_t tally_tokenize_space[256] = {
    [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1,
};
