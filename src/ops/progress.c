/* SPDX-License-Identifier: MIT */
/* Progress records and their bounded history. */
#include "tally/progress.h"
#include "tally/json.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tally/err.h"

static void put_str(tally_buf_t *b, const char *s) { tally_buf_json_str(b, s, strlen(s)); }

static void put_rate(tally_buf_t *b, double v) {
    if (v < 0) tally_buf_puts(b, "null");
    else tally_buf_json_num(b, v);
}

void tally_progress_json(const tally_progress_t *p, bool sources, tally_buf_t *b) {
    time_t secs = (time_t)p->timestamp;
    struct tm tm;
    gmtime_r(&secs, &tm);
    int ms = (int)((p->timestamp - (double)secs) * 1000.0);
    if (ms < 0) ms = 0;
    if (ms > 999) ms = 999;
    tally_buf_puts(b, "{\"id\":");
    put_str(b, p->id ? p->id : "");
    tally_buf_printf(b, ",\"epoch\":%llu,\"timestamp\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"",
                     (unsigned long long)p->epoch, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ms);
    tally_buf_printf(b, ",\"numInputLines\":%llu,\"numInputWords\":%llu,\"numWordsDropped\":%llu",
                     (unsigned long long)p->lines, (unsigned long long)p->words, (unsigned long long)p->dropped);
    tally_buf_puts(b, ",\"inputLinesPerSecond\":");
    put_rate(b, p->input_rate);
    tally_buf_puts(b, ",\"processedLinesPerSecond\":");
    put_rate(b, p->processed_rate);
    tally_buf_printf(b, ",\"keysUpdated\":%llu,\"keysInMemory\":%llu", (unsigned long long)p->keys_updated,
                     (unsigned long long)p->keys_in_memory);
    if (p->windowed) {
        /* Spark's names: numRowsDroppedByWatermark (its stateful operator's), eventTime.watermark. */
        tally_buf_printf(b, ",\"numRowsDroppedByWatermark\":%llu,\"eventTime\":{", (unsigned long long)p->late);
        if (p->watermark != INT64_MIN) {
            char ts[TALLY_JSON_TIME_MAX];
            size_t n = tally_json_timestamp(ts, p->watermark);
            tally_buf_printf(b, "\"watermark\":\"%.*s\"", (int)n, ts);
        }
        tally_buf_puts(b, "}");
    }
    tally_buf_puts(b, ",\"durationMs\":{\"process\":");
    tally_buf_json_num(b, p->process_ms);
    tally_buf_puts(b, ",\"commit\":");
    tally_buf_json_num(b, p->commit_ms);
    tally_buf_puts(b, ",\"stateWrite\":");
    tally_buf_json_num(b, p->state_ms);
    tally_buf_puts(b, ",\"total\":");
    tally_buf_json_num(b, p->process_ms + p->commit_ms + p->state_ms);
    tally_buf_puts(b, "}");
    int64_t lag_total = 0;
    bool lag_known = p->nsources > 0;
    for (int i = 0; i < p->nsources; i++) {
        const tally_progress_source_t *s = &p->sources[i];
        if (s->high_watermark < 0) lag_known = false;
        else if (s->high_watermark > s->end_offset) lag_total += s->high_watermark - s->end_offset;
    }
    tally_buf_puts(b, ",\"lag\":");
    if (lag_known) tally_buf_printf(b, "%lld", (long long)lag_total);
    else tally_buf_puts(b, "null");
    if (sources) {
        tally_buf_puts(b, ",\"sources\":[");
        for (int i = 0; i < p->nsources; i++) {
            const tally_progress_source_t *s = &p->sources[i];
            tally_buf_puts(b, i ? ",{\"topic\":" : "{\"topic\":");
            put_str(b, s->topic);
            tally_buf_printf(b, ",\"partition\":%d,\"startOffset\":%lld,\"endOffset\":%lld", (int)s->partition,
                             (long long)s->start_offset, (long long)s->end_offset);
            if (s->high_watermark >= 0)
                tally_buf_printf(b, ",\"latestOffset\":%lld,\"lag\":%lld}", (long long)s->high_watermark,
                                 (long long)(s->high_watermark > s->end_offset ? s->high_watermark - s->end_offset : 0));
            else
                tally_buf_puts(b, ",\"latestOffset\":null,\"lag\":null}");
        }
        tally_buf_puts(b, "]");
    } else {
        tally_buf_printf(b, ",\"numSources\":%d", p->nsources);
    }
    tally_buf_puts(b, ",\"sink\":{\"description\":");
    put_str(b, p->sink ? p->sink : "");
    tally_buf_printf(b, ",\"numOutputRows\":%llu}", (unsigned long long)p->keys_updated);
    tally_buf_printf(b, ",\"transactions\":{\"committed\":%llu,\"aborted\":%llu}}", (unsigned long long)p->commits,
                     (unsigned long long)p->aborts);
}

struct tally_progress_hist_s {
    size_t cap, n, head;   /* records [head, head + n) modulo cap, oldest at head */
    char **rec;
    size_t *len;
};

tally_progress_hist_t *tally_progress_hist_new(size_t cap) {
    if (cap == 0) return NULL;
    tally_progress_hist_t *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    h->cap = cap;
    h->rec = calloc(cap, sizeof(*h->rec));
    h->len = calloc(cap, sizeof(*h->len));
    if (!h->rec || !h->len) {
        tally_progress_hist_destroy(h);
        return NULL;
    }
    return h;
}

void tally_progress_hist_destroy(tally_progress_hist_t *h) {
    if (!h) return;
    for (size_t i = 0; h->rec && i < h->cap; i++) free(h->rec[i]);
    free(h->rec);
    free(h->len);
    free(h);
}

int tally_progress_hist_add(tally_progress_hist_t *h, const char *json, size_t len) {
    char *copy = malloc(len + 1);
    if (!copy) return TALLY_ENOMEM;
    memcpy(copy, json, len);
    copy[len] = '\0';
    size_t slot;
    if (h->n < h->cap) {
        slot = (h->head + h->n) % h->cap;
        h->n++;
    } else {
        slot = h->head;
        h->head = (h->head + 1) % h->cap;
        free(h->rec[slot]);
    }
    h->rec[slot] = copy;
    h->len[slot] = len;
    return 0;
}

size_t tally_progress_hist_size(const tally_progress_hist_t *h) { return h->n; }

tally_blob_t *tally_progress_hist_blob(const tally_progress_hist_t *h) {
    tally_buf_t b;
    tally_buf_init(&b);
    tally_buf_puts(&b, "[");
    for (size_t i = 0; i < h->n; i++) {
        size_t slot = (h->head + i) % h->cap;
        if (i) tally_buf_puts(&b, ",");
        tally_buf_append(&b, h->rec[slot], h->len[slot]);
    }
    tally_buf_puts(&b, "]");
    tally_blob_t *bl = tally_blob_new(&b, NULL, 0);
    tally_buf_term(&b);
    return bl;
}
