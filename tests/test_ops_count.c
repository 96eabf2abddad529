/* SPDX-License-Identifier: MIT */
/* GET /count?word=W (interactive query): for every word of the input, the committed count it returns
 * equals the last count on the output topic (read_committed) and the true count; words that need
 * percent-encoding (UTF-8, '&', '%', '+', '#', '/', '?', '=') round-trip; a word never seen is 404;
 * a missing, empty, repeated or whitespace-holding word is 400 with a reason. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static const char *const special[] = {"caf\xc3\xa9", "a&b", "100%", "x+y", "#tag", "a/b", "why?", "k=v", "\xe2\x82\xac"};

static void last_count(const rd_kafka_message_t *m, void *opaque) {
    th_counts_t *last = opaque;
    if (!m->payload || !m->key) return;
    const char *c = memmem(m->payload, m->len, "\"count\":", 8);
    if (!c) return;
    long long count = atoll(c + 8);
    th_counts_add(last, m->key, m->key_len, count - th_counts_get(last, m->key, m->key_len));
}

static void encode(const void *word, size_t len, char *out) {
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *w = word;
    for (size_t i = 0; i < len; i++) {
        *out++ = '%';
        *out++ = hex[w[i] >> 4];
        *out++ = hex[w[i] & 15];
    }
    *out = '\0';
}

typedef struct {
    int port;
    th_counts_t *last;
    long checked;
} check_ctx_t;

static void check_word(const void *word, size_t len, long long count, void *opaque) {
    check_ctx_t *c = opaque;
    char path[4096] = "/count?word=";
    if (len * 3 + 16 > sizeof(path)) return;
    encode(word, len, path + strlen(path));
    int status = 0;
    char *body = th_http("GET", c->port, path, &status, NULL);
    if (!body || status != 200) TH_FAIL("%s: status %d, body %s", path, status, body ? body : "(none)");
    const char *k = strstr(body, "\"count\":");
    ASSERT(k);
    ASSERT_EQ(atoll(k + 8), count);
    ASSERT_EQ(atoll(k + 8), th_counts_get(c->last, word, len));
    ASSERT(strstr(body, "\"epoch\":"));
    free(body);
    c->checked++;
}

static void expect(int port, const char *path, int want) {
    int status = 0;
    char *body = th_http("GET", port, path, &status, NULL);
    if (status != want) TH_FAIL("%s: status %d, want %d (%s)", path, status, want, body ? body : "");
    if (want != 200) ASSERT(body && strstr(body, "\"error\":"));
    free(body);
}

int main(void) {
    th_bootstrap();
    const char *in = th_unique("count-in"), *out = th_unique("count-out"), *app = th_unique("count");
    th_create_topic(in, 2);
    th_create_topic(out, 2);
    th_counts_t *truth = th_counts_new();
    rd_kafka_t *p = th_producer();
    for (int rep = 0; rep < 3; rep++)
        for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
            char line[64];
            snprintf(line, sizeof(line), "%s plain %s", special[i], special[(i + 1) % 9]);
            th_produce(p, in, -1, NULL, 0, line, strlen(line));
            th_counts_add_line(truth, line, strlen(line));
        }
    th_flush_destroy(p);
    th_produce_words(in, 3000, 11, 400, truth);

    int port = th_free_port();
    char extra[64];
    snprintf(extra, sizeof(extra), "http.listen=127.0.0.1:%d\n", port);
    th_engine_t e;
    th_engine_init(&e, app, in, out, extra);
    th_engine_start(&e);
    th_wait_committed(app, in, 120, &e);

    th_counts_t *last = th_counts_new();
    th_consume_all(out, 1, last_count, last);
    check_ctx_t c = {.port = port, .last = last};
    th_counts_foreach(truth, check_word, &c);
    ASSERT_EQ(c.checked, (long)th_counts_size(truth));
    fprintf(stderr, "/count agreed with the output topic for %ld words\n", c.checked);

    expect(port, "/count?word=never-seen-word", 404);
    expect(port, "/count", 400);
    expect(port, "/count?word=", 400);
    expect(port, "/count?word=a%20b", 400);
    expect(port, "/count?word=plain&word=plain", 400);

    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    th_counts_destroy(last);
    th_counts_destroy(truth);
    return 0;
}
