/* SPDX-License-Identifier: MIT */
/* The HTTP server: libmicrohttpd in its own polling thread, a few GET routes, each answered from the
 * current snapshot (reference taken, read, released). Nothing here touches the engine. */
#include "tally/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tally/buf.h"
#include "tally/err.h"
#include "tally/health.h"
#include "tally/log.h"
#include "tally/tokenize.h"
#include "tally/json.h"
#include "tally/prom.h"

#define TOP_DEFAULT 20

struct tally_http_s {
    struct MHD_Daemon *daemon;
    tally_snapbox_t *box;
    tally_http_count_fn count;
    void *count_opaque;
};

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    /* Runs on the server thread, or on control while the daemon starts: the caller's tag stays. */
    tally_warn("http: %s", msg);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *type, const void *body, size_t len,
                             enum MHD_ResponseMemoryMode mode) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_buf(struct MHD_Connection *c, unsigned code, const char *type, tally_buf_t *b) {
    enum MHD_Result ret = tally_buf_ok(b) ? reply(c, code, type, b->data ? b->data : "", b->len, MHD_RESPMEM_MUST_COPY)
                                          : MHD_NO;
    tally_buf_term(b);
    return ret;
}

#define JSON_TYPE "application/json"

static enum MHD_Result error_json(struct MHD_Connection *c, unsigned code, const char *msg) {
    tally_buf_t b;
    tally_buf_init(&b);
    tally_buf_puts(&b, "{\"error\":");
    tally_buf_json_str(&b, msg, strlen(msg));
    tally_buf_puts(&b, ",\"endpoints\":[\"/\",\"/metrics\",\"/healthz\",\"/progress\",\"/top?n=20\",\"/count?word=cat\",\"/messages\"]}");
    return reply_buf(c, code, JSON_TYPE, &b);
}

static enum MHD_Result get_metrics(struct MHD_Connection *c, const tally_snap_t *s) {
    if (s && s->metrics) return reply(c, 200, TALLY_PROM_CONTENT_TYPE, s->metrics->data, s->metrics->len, MHD_RESPMEM_MUST_COPY);
    tally_buf_t b;
    tally_buf_init(&b);
    tally_prom_family(&b, "tally_up", "gauge", "1 while the engine runs (commits or waits for input), else 0.");
    tally_prom_int(&b, "tally_up", NULL, 0);
    return reply_buf(c, 200, TALLY_PROM_CONTENT_TYPE, &b);
}

static enum MHD_Result get_healthz(struct MHD_Connection *c, const tally_snap_t *s) {
    tally_health_t h;
    double now = tally_snap_now();
    tally_health_eval(s, now, &h);
    tally_buf_t b;
    tally_buf_init(&b);
    tally_health_json(s, &h, now, &b);
    return reply_buf(c, (unsigned)h.code, JSON_TYPE, &b);
}

static enum MHD_Result get_top(struct MHD_Connection *c, const tally_snap_t *s) {
    const char *arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "n");
    long n = TOP_DEFAULT;
    if (arg) {
        char *end;
        errno = 0;
        n = strtol(arg, &end, 10);
        if (!*arg || *end || errno || n < 1 || n > 1000000)
            return error_json(c, 400, "n must be a whole number from 1 to the number of words kept");
    }
    const tally_blob_t *top = s ? s->top : NULL;
    if (!top || top->nitems == 0 || !top->item_end) return reply(c, 200, JSON_TYPE, "[]", 2, MHD_RESPMEM_PERSISTENT);
    if ((size_t)n >= top->nitems) return reply(c, 200, JSON_TYPE, top->data, top->len, MHD_RESPMEM_MUST_COPY);
    tally_buf_t b;
    tally_buf_init(&b);
    tally_buf_append(&b, top->data, top->item_end[n - 1]);
    tally_buf_puts(&b, "]");
    return reply_buf(c, 200, JSON_TYPE, &b);
}

/* The "word" argument, percent-decoded by libmicrohttpd, with its length (a word may hold NUL). */
typedef struct {
    const char *value;
    size_t len;
    int n;
} word_arg_t;

static enum MHD_Result find_word(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                 const char *value, size_t value_size) {
    (void)kind;
    word_arg_t *w = cls;
    if (key_size == 4 && memcmp(key, "word", 4) == 0) {
        w->value = value;
        w->len = value ? value_size : 0;
        w->n++;
    }
    return MHD_YES;
}

/* GET /count?word=W: the committed count of W from the state store, with the epoch it belongs to. */
static enum MHD_Result get_count(tally_http_t *h, struct MHD_Connection *c) {
    word_arg_t w = {0};
    MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, find_word, &w);
    if (w.n != 1 || !w.value || w.len == 0)
        return error_json(c, 400, "give one non-empty word: /count?word=cat (percent-encode other bytes)");
    for (size_t i = 0; i < w.len; i++)
        if (tally_tokenize_space[(uint8_t)w.value[i]])
            return error_json(c, 400, "a word never holds whitespace: the input is split at spaces, tabs and newlines");
    int64_t count = 0;
    uint64_t epoch = 0;
    int r = h->count ? h->count(h->count_opaque, (const uint8_t *)w.value, w.len, &count, &epoch) : TALLY_ESTOPPED;
    if (r == TALLY_ESTOPPED) return error_json(c, 503, "the state is not open yet");
    if (r < 0) return error_json(c, 500, "the state could not be read");
    if (r == 0) return error_json(c, 404, "this word was never counted (in a committed epoch)");
    char *json = malloc(TALLY_JSON_MAX(w.len) + 32);
    if (!json) return error_json(c, 500, "out of memory");
    size_t jl = tally_json_word_count(json, (const uint8_t *)w.value, w.len, count);
    jl += (size_t)sprintf(json + jl - 1, ",\"epoch\":%llu}", (unsigned long long)epoch) - 1;
    enum MHD_Result ret = reply(c, 200, JSON_TYPE, json, jl, MHD_RESPMEM_MUST_COPY);
    free(json);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls) {
    (void)version;
    (void)upload_data;
    (void)con_cls;
    tally_http_t *h = cls;
    tally_log_set_thread("http");
    *upload_data_size = 0; /* a body is never read: every route is a GET */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return error_json(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD are served");
    if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
        return reply(c, 200, "text/html; charset=utf-8", tally_ops_page, tally_ops_page_len, MHD_RESPMEM_PERSISTENT);

    tally_snap_t *s = tally_snapbox_acquire(h->box);
    enum MHD_Result r;
    if (strcmp(url, "/metrics") == 0) r = get_metrics(c, s);
    else if (strcmp(url, "/healthz") == 0) r = get_healthz(c, s);
    else if (strcmp(url, "/progress") == 0) {
        if (s && s->progress) r = reply(c, 200, JSON_TYPE, s->progress->data, s->progress->len, MHD_RESPMEM_MUST_COPY);
        else r = reply(c, 200, JSON_TYPE, "[]", 2, MHD_RESPMEM_PERSISTENT);
    } else if (strcmp(url, "/top") == 0) r = get_top(c, s);
    else if (strcmp(url, "/count") == 0) r = get_count(h, c);
    else if (strcmp(url, "/messages") == 0) {
        if (s && s->messages) r = reply(c, 200, JSON_TYPE, s->messages->data, s->messages->len, MHD_RESPMEM_MUST_COPY);
        else r = reply(c, 200, JSON_TYPE, "[]", 2, MHD_RESPMEM_PERSISTENT);
    }
    else r = error_json(c, 404, "not found");
    tally_snap_release(s);
    return r;
}

/* "host:port" or "[v6]:port" into a bound, listening socket. */
static int listen_on(const char *orig, int *fd_out, char *errstr, size_t errstr_size) {
    const char *addr = orig;
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr) {
        snprintf(errstr, errstr_size, "http.listen=%s: expected host:port", addr);
        return TALLY_ECONFIG;
    }
    char host[256];
    size_t hl = (size_t)(colon - addr);
    if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') {
        addr++;
        hl -= 2;
    }
    if (hl >= sizeof(host)) {
        snprintf(errstr, errstr_size, "http.listen: host name too long");
        return TALLY_ECONFIG;
    }
    memcpy(host, addr, hl);
    host[hl] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res = NULL;
    int gai = getaddrinfo(host, colon + 1, &hints, &res);
    if (gai) {
        snprintf(errstr, errstr_size, "http.listen=%s: cannot resolve \"%s\": %s", orig, host, gai_strerror(gai));
        return TALLY_ECONFIG;
    }
    int err = 0, fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0) break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(errstr, errstr_size, "cannot listen on http.listen=%s: %s", orig, strerror(err));
        return err == EADDRINUSE ? TALLY_EIO : TALLY_ECONFIG;
    }
    *fd_out = fd;
    return 0;
}

int tally_http_new(tally_http_t **out, const char *listen_addr, tally_snapbox_t *box, tally_http_count_fn count,
                   void *count_opaque, char *errstr, size_t errstr_size) {
    tally_http_t *h = calloc(1, sizeof(*h));
    if (!h) return TALLY_ENOMEM;
    h->box = box;
    h->count = count;
    h->count_opaque = count_opaque;
    int fd = -1;
    int r = listen_on(listen_addr, &fd, errstr, errstr_size);
    if (r) {
        free(h);
        return r;
    }
    h->daemon = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, h,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, /* first, to catch every message */
                                 MHD_OPTION_LISTEN_SOCKET, fd,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                                 MHD_OPTION_END);
    if (!h->daemon) {
        close(fd);
        free(h);
        snprintf(errstr, errstr_size, "cannot start the HTTP server on http.listen=%s", listen_addr);
        return TALLY_ECONFIG;
    }
    *out = h;
    return 0;
}

void tally_http_destroy(tally_http_t *h) {
    if (!h) return;
    if (h->daemon) MHD_stop_daemon(h->daemon); /* joins its thread and closes the listening socket */
    free(h);
}
