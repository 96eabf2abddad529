/* SPDX-License-Identifier: MIT */
/* A strict recursive-descent JSON walker (RFC 8259 grammar; strings are decoded only far enough to
 * compare keys) and the extraction of librdkafka statistics. */
#include "tally/kstats.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally/err.h"

typedef struct {
    const char *p, *end;
    int depth;
    char keys[TALLY_KSTATS_MAX_DEPTH][TALLY_KSTATS_MAX_KEY];
    const char *path[TALLY_KSTATS_MAX_DEPTH];
    tally_kstats_num_cb fn;
    void *opaque;
} walker_t;

static void skip_ws(walker_t *w) {
    while (w->p < w->end && (*w->p == ' ' || *w->p == '\t' || *w->p == '\n' || *w->p == '\r')) w->p++;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Parses a string at w->p (on the opening quote). With out: its text, cut to out_size - 1 bytes;
 * a \u escape outside ASCII becomes '?'. */
static int parse_string(walker_t *w, char *out, size_t out_size) {
    size_t n = 0;
    w->p++;
    while (w->p < w->end) {
        unsigned char c = (unsigned char)*w->p++;
        if (c == '"') {
            if (out) out[n] = '\0';
            return 0;
        }
        if (c < 0x20) return -1;
        if (c == '\\') {
            if (w->p >= w->end) return -1;
            switch (*w->p++) {
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            case '/': c = '/'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u': {
                if (w->end - w->p < 4) return -1;
                int v = 0;
                for (int i = 0; i < 4; i++) {
                    int h = hexval(w->p[i]);
                    if (h < 0) return -1;
                    v = v * 16 + h;
                }
                w->p += 4;
                c = (unsigned char)(v < 0x80 ? v : '?');
                break;
            }
            default: return -1;
            }
        }
        if (out && n + 1 < out_size) out[n++] = (char)c;
    }
    return -1;
}

static int parse_number(walker_t *w) {
    const char *s = w->p;
    if (w->p < w->end && *w->p == '-') w->p++;
    if (w->p >= w->end) return -1;
    if (*w->p == '0') w->p++;
    else if (*w->p >= '1' && *w->p <= '9')
        while (w->p < w->end && *w->p >= '0' && *w->p <= '9') w->p++;
    else return -1;
    if (w->p < w->end && *w->p == '.') {
        w->p++;
        if (w->p >= w->end || *w->p < '0' || *w->p > '9') return -1;
        while (w->p < w->end && *w->p >= '0' && *w->p <= '9') w->p++;
    }
    if (w->p < w->end && (*w->p == 'e' || *w->p == 'E')) {
        w->p++;
        if (w->p < w->end && (*w->p == '+' || *w->p == '-')) w->p++;
        if (w->p >= w->end || *w->p < '0' || *w->p > '9') return -1;
        while (w->p < w->end && *w->p >= '0' && *w->p <= '9') w->p++;
    }
    char tmp[64];
    size_t n = (size_t)(w->p - s);
    if (n >= sizeof(tmp)) return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (w->fn) w->fn(w->path, w->depth, strtod(tmp, NULL), w->opaque);
    return 0;
}

static int literal(walker_t *w, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(w->end - w->p) < n || memcmp(w->p, lit, n) != 0) return -1;
    w->p += n;
    return 0;
}

static int parse_value(walker_t *w);

static int parse_container(walker_t *w, bool object) {
    char close = object ? '}' : ']';
    if (w->depth >= TALLY_KSTATS_MAX_DEPTH) return -1;
    w->p++;
    skip_ws(w);
    if (w->p < w->end && *w->p == close) {
        w->p++;
        return 0;
    }
    for (;;) {
        skip_ws(w);
        if (object) {
            if (w->p >= w->end || *w->p != '"') return -1;
            if (parse_string(w, w->keys[w->depth], sizeof(w->keys[0]))) return -1;
            skip_ws(w);
            if (w->p >= w->end || *w->p != ':') return -1;
            w->p++;
        } else {
            strcpy(w->keys[w->depth], "#");
        }
        w->path[w->depth] = w->keys[w->depth];
        w->depth++;
        int r = parse_value(w);
        w->depth--;
        if (r) return r;
        skip_ws(w);
        if (w->p >= w->end) return -1;
        if (*w->p == ',') {
            w->p++;
            continue;
        }
        if (*w->p == close) {
            w->p++;
            return 0;
        }
        return -1;
    }
}

static int parse_value(walker_t *w) {
    skip_ws(w);
    if (w->p >= w->end) return -1;
    switch (*w->p) {
    case '{': return parse_container(w, true);
    case '[': return parse_container(w, false);
    case '"': return parse_string(w, NULL, 0);
    case 't': return literal(w, "true");
    case 'f': return literal(w, "false");
    case 'n': return literal(w, "null");
    default: return parse_number(w);
    }
}

int tally_kstats_walk(const char *json, size_t len, tally_kstats_num_cb fn, void *opaque) {
    walker_t *w = calloc(1, sizeof(*w)); /* 4 KiB of key buffers: off the caller's stack */
    if (!w) return -1;
    w->p = json;
    w->end = json + len;
    w->fn = fn;
    w->opaque = opaque;
    int r = parse_value(w);
    if (!r) {
        skip_ws(w);
        /* librdkafka's text may carry its terminating NUL in json_len */
        while (w->p < w->end && *w->p == '\0') w->p++;
        if (w->p != w->end) r = -1;
    }
    free(w);
    return r;
}

void tally_kstats_init(tally_kstats_t *s) {
    memset(s, 0, sizeof(*s));
    s->msg_cnt = s->txmsgs = s->rxmsgs = -1;
}

void tally_kstats_term(tally_kstats_t *s) {
    free(s->parts);
    tally_kstats_init(s);
}

typedef struct {
    tally_kstats_t *s;
    int err;
} extract_t;

static bool parse_partition(const char *s, int32_t *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < 0 || v > INT32_MAX) return false;
    *out = (int32_t)v;
    return true;
}

static tally_kstats_part_t *part_get(extract_t *x, const char *topic, int32_t partition) {
    tally_kstats_t *s = x->s;
    for (int i = s->nparts - 1; i >= 0; i--)
        if (s->parts[i].partition == partition && strcmp(s->parts[i].topic, topic) == 0) return &s->parts[i];
    if (s->nparts == s->capparts) {
        int cap = s->capparts ? s->capparts * 2 : 16;
        tally_kstats_part_t *p = realloc(s->parts, (size_t)cap * sizeof(*p));
        if (!p) {
            x->err = TALLY_ENOMEM;
            return NULL;
        }
        s->parts = p;
        s->capparts = cap;
    }
    tally_kstats_part_t *p = &s->parts[s->nparts++];
    snprintf(p->topic, sizeof(p->topic), "%s", topic);
    p->partition = partition;
    p->consumer_lag = p->hi_offset = p->fetchq_cnt = p->app_offset = -1;
    return p;
}

static void extract(const char *const *path, int depth, double v, void *opaque) {
    extract_t *x = opaque;
    int64_t n = (int64_t)v;
    if (depth == 1) {
        if (strcmp(path[0], "msg_cnt") == 0) x->s->msg_cnt = n;
        else if (strcmp(path[0], "txmsgs") == 0) x->s->txmsgs = n;
        else if (strcmp(path[0], "rxmsgs") == 0) x->s->rxmsgs = n;
        return;
    }
    int32_t partition;
    if (depth != 5 || strcmp(path[0], "topics") != 0 || strcmp(path[2], "partitions") != 0 ||
        !parse_partition(path[3], &partition))
        return;
    enum { F_LAG, F_HI, F_FETCHQ, F_APP } f;
    if (strcmp(path[4], "consumer_lag") == 0) f = F_LAG;
    else if (strcmp(path[4], "hi_offset") == 0) f = F_HI;
    else if (strcmp(path[4], "fetchq_cnt") == 0) f = F_FETCHQ;
    else if (strcmp(path[4], "app_offset") == 0) f = F_APP;
    else return;
    tally_kstats_part_t *p = part_get(x, path[1], partition);
    if (!p) return;
    switch (f) {
    case F_LAG: p->consumer_lag = n; break;
    case F_HI: p->hi_offset = n; break;
    case F_FETCHQ: p->fetchq_cnt = n; break;
    case F_APP: p->app_offset = n; break;
    }
}

int tally_kstats_parse(tally_kstats_t *s, const char *json, size_t len) {
    s->nparts = 0;
    s->msg_cnt = s->txmsgs = s->rxmsgs = -1;
    extract_t x = {.s = s};
    int r = tally_kstats_walk(json, len, extract, &x);
    return x.err ? x.err : r;
}
