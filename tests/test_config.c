/* SPDX-License-Identifier: MIT */
/* Unit tests of src/config.c: the properties format, every key, every error message, --set,
 * validation, printing and the print -> parse round trip. No broker. */
#include "harness.h"

#include "tally/batch.h"
#include "tally/budget.h"
#include "tally/config.h"
#include "tally/err.h"
#include "tally/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#define ORIGIN "conf/x.properties"

/* Every key of the table, to check that print, help and markdown cover them all. */
static const char *const all_keys[] = {
    "bootstrap.servers", "application.id", "input.topic", "output.topic", "sink", "state.dir",
    "workers", "trigger.interval.ms", "processing.guarantee", "output.mode", "starting.offsets",
    "fail.on.data.loss", "max.word.bytes", "state.rebuild", "log.level", "transaction.timeout.ms",
    "metadata.refresh.interval.ms", "http.listen", "progress.topic", "output.path", "output.format",
    "output.parquet.compression", "input.path", "files.max.per.trigger", "files.max.bytes.per.trigger",
    "files.clean", "files.archive.dir", "files.readers", "files.split.bytes", "trigger.available.now",
    "window.size.ms", "window.slide.ms", "event.time", "watermark.delay.ms",
    "watermark.policy", "watermark.idle.ms", "window.close.idle.ms",
};
#define ALL_KEYS_CNT (sizeof(all_keys) / sizeof(all_keys[0]))

#define REQUIRED_TEXT "bootstrap.servers=b:9092\napplication.id=app\ninput.topic=in\noutput.topic=out\n"

#define ASSERT_CONTAINS(hay, needle)                                                               \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!strstr(h_, n_)) TH_FAIL("\"%s\" does not contain \"%s\"", h_, n_);                    \
    } while (0)
#define ASSERT_NOT_CONTAINS(hay, needle)                                                           \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (strstr(h_, n_)) TH_FAIL("\"%s\" contains \"%s\"", h_, n_);                             \
    } while (0)

/* Loads text into a fresh config, which must succeed. */
static void load_ok(tally_config_t *conf, const char *text) {
    char err[512] = "";
    tally_config_init(conf);
    int rc = tally_config_load_string(conf, text, ORIGIN, err, sizeof(err));
    if (rc != 0) TH_FAIL("load of \"%s\" failed: %d %s", text, rc, err);
}

/* Loads text into a fresh config, which must fail with TALLY_ECONFIG; returns the message
 * (static buffer) after checking that it contains each of the NULL-terminated needles. */
static const char *load_err(const char *text, ...) {
    static char err[512];
    tally_config_t conf;
    tally_config_init(&conf);
    err[0] = '\0';
    int rc = tally_config_load_string(&conf, text, ORIGIN, err, sizeof(err));
    tally_config_term(&conf);
    if (rc != TALLY_ECONFIG) TH_FAIL("load of \"%s\": expected TALLY_ECONFIG, got %d (%s)", text, rc, err);
    ASSERT_NOT_CONTAINS(err, "\n");
    va_list ap;
    va_start(ap, text);
    for (const char *n; (n = va_arg(ap, const char *));) ASSERT_CONTAINS(err, n);
    va_end(ap);
    return err;
}

static const char *set_err(tally_config_t *conf, const char *kv) {
    static char err[512];
    err[0] = '\0';
    int rc = tally_config_set(conf, kv, err, sizeof(err));
    if (rc != TALLY_ECONFIG) TH_FAIL("--set %s: expected TALLY_ECONFIG, got %d", kv, rc);
    return err;
}

static const char *validate_err(const tally_config_t *conf) {
    static char err[512];
    err[0] = '\0';
    int rc = tally_config_validate(conf, err, sizeof(err));
    if (rc != TALLY_ECONFIG) TH_FAIL("validate: expected TALLY_ECONFIG, got %d", rc);
    return err;
}

static void validate_ok(const tally_config_t *conf) {
    char err[512] = "";
    int rc = tally_config_validate(conf, err, sizeof(err));
    if (rc != 0) TH_FAIL("validate failed: %d %s", rc, err);
}

/* print() into a heap string; caller frees. */
static char *print_str(const tally_config_t *conf) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ASSERT(f != NULL);
    tally_config_print(conf, f);
    fclose(f);
    return buf;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT_EQ(fwrite(text, 1, strlen(text), f), strlen(text));
    ASSERT_EQ(fclose(f), 0);
}

static bool str_eq(const char *a, const char *b) {
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static void assert_conf_eq(const tally_config_t *a, const tally_config_t *b) {
#define S(f) if (!str_eq(a->f, b->f)) TH_FAIL(#f ": \"%s\" vs \"%s\"", a->f ? a->f : "(null)", b->f ? b->f : "(null)")
    S(bootstrap_servers);
    S(application_id);
    S(output_topic);
    S(state_dir);
    S(http_listen);
    S(progress_topic);
#undef S
    ASSERT_EQ(a->input_topic_cnt, b->input_topic_cnt);
    for (int i = 0; i < a->input_topic_cnt; i++) ASSERT_STR_EQ(a->input_topics[i], b->input_topics[i]);
    ASSERT_EQ(a->sink, b->sink);
    ASSERT_EQ(a->workers, b->workers);
    ASSERT_EQ(a->trigger_interval_ms, b->trigger_interval_ms);
    ASSERT_EQ(a->guarantee, b->guarantee);
    ASSERT_EQ(a->output_mode, b->output_mode);
    ASSERT_EQ(a->starting_offsets, b->starting_offsets);
    ASSERT_EQ(a->fail_on_data_loss, b->fail_on_data_loss);
    ASSERT_EQ(a->max_word_bytes, b->max_word_bytes);
    ASSERT_EQ(a->state_rebuild, b->state_rebuild);
    ASSERT_EQ(a->log_level, b->log_level);
    ASSERT_EQ(a->transaction_timeout_ms, b->transaction_timeout_ms);
    ASSERT_EQ(a->metadata_refresh_ms, b->metadata_refresh_ms);
    ASSERT_EQ(a->window_size_ms, b->window_size_ms);
    ASSERT_EQ(a->window_slide_ms, b->window_slide_ms);
    ASSERT_EQ(a->event_time, b->event_time);
    ASSERT_EQ(a->watermark_delay_ms, b->watermark_delay_ms);
    ASSERT_EQ(a->watermark_policy, b->watermark_policy);
    ASSERT_EQ(a->watermark_idle_ms, b->watermark_idle_ms);
    ASSERT_EQ(a->window_close_idle_ms, b->window_close_idle_ms);
    ASSERT_EQ(a->kafka_cnt, b->kafka_cnt);
    for (int i = 0; i < a->kafka_cnt; i++) {
        ASSERT_STR_EQ(a->kafka[i].key, b->kafka[i].key);
        ASSERT_STR_EQ(a->kafka[i].value, b->kafka[i].value);
    }
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_defaults(void) {
    tally_config_t c;
    tally_config_init(&c);
    ASSERT(c.bootstrap_servers == NULL);
    ASSERT(c.application_id == NULL);
    ASSERT(c.input_topics == NULL);
    ASSERT_EQ(c.input_topic_cnt, 0);
    ASSERT(c.output_topic == NULL);
    ASSERT_EQ(c.sink, TALLY_SINK_KAFKA);
    ASSERT(c.state_dir == NULL); /* engine default: ./state/<application.id> */
    ASSERT_EQ(c.workers, 0);
    ASSERT_EQ(c.trigger_interval_ms, 1000);
    ASSERT_EQ(c.guarantee, TALLY_EXACTLY_ONCE);
    ASSERT_EQ(c.output_mode, TALLY_OUTPUT_UPDATE);
    ASSERT_EQ(c.starting_offsets, TALLY_START_EARLIEST);
    ASSERT_EQ(c.fail_on_data_loss, true);
    ASSERT_EQ(c.max_word_bytes, 1024);
    ASSERT_EQ(c.state_rebuild, false);
    ASSERT_EQ(c.log_level, TALLY_LOG_INFO);
    ASSERT_EQ(c.transaction_timeout_ms, 60000);
    ASSERT_EQ(c.metadata_refresh_ms, 10000);
    ASSERT_EQ(c.window_size_ms, 0); /* no windows */
    ASSERT_EQ(c.window_slide_ms, 0);
    ASSERT_EQ(c.event_time, TALLY_EVENT_TIME_RECORD);
    ASSERT_EQ(c.watermark_delay_ms, -1); /* unset: no watermark */
    ASSERT_EQ(c.watermark_policy, TALLY_WATERMARK_MAX);
    ASSERT_EQ(c.watermark_idle_ms, -1);
    ASSERT_EQ(c.window_close_idle_ms, -1);
    ASSERT(c.http_listen == NULL);
    ASSERT(c.progress_topic == NULL);
    ASSERT(c.kafka == NULL);
    ASSERT_EQ(c.kafka_cnt, 0);
    tally_config_term(&c);

    /* Only the required keys: validates, state.dir stays NULL. */
    load_ok(&c, REQUIRED_TEXT);
    validate_ok(&c);
    ASSERT(c.state_dir == NULL);
    tally_config_term(&c);
    /* term leaves a zeroed struct: a second term is harmless. */
    tally_config_term(&c);
}

static void test_every_key(void) {
    tally_config_t c;
    load_ok(&c, "bootstrap.servers=k1:9092,k2:9092\n"
                "application.id=my-app_1.0\n"
                "input.topic=a, b ,c\n"
                "output.topic=counts\n"
                "sink=console\n"
                "state.dir=/var/lib/tally\n"
                "workers=8\n"
                "trigger.interval.ms=250\n"
                "processing.guarantee=at_least_once\n"
                "output.mode=complete\n"
                "starting.offsets=latest\n"
                "fail.on.data.loss=FALSE\n"
                "max.word.bytes=64\n"
                "state.rebuild=True\n"
                "log.level=debug\n"
                "transaction.timeout.ms=30000\n"
                "metadata.refresh.interval.ms=500\n"
                "http.listen=127.0.0.1:8080\n"
                "progress.topic=progress\n");
    ASSERT_STR_EQ(c.bootstrap_servers, "k1:9092,k2:9092");
    ASSERT_STR_EQ(c.application_id, "my-app_1.0");
    ASSERT_EQ(c.input_topic_cnt, 3);
    ASSERT_STR_EQ(c.input_topics[0], "a");
    ASSERT_STR_EQ(c.input_topics[1], "b");
    ASSERT_STR_EQ(c.input_topics[2], "c");
    ASSERT_STR_EQ(c.output_topic, "counts");
    ASSERT_EQ(c.sink, TALLY_SINK_CONSOLE);
    ASSERT_STR_EQ(c.state_dir, "/var/lib/tally");
    ASSERT_EQ(c.workers, 8);
    ASSERT_EQ(c.trigger_interval_ms, 250);
    ASSERT_EQ(c.guarantee, TALLY_AT_LEAST_ONCE);
    ASSERT_EQ(c.output_mode, TALLY_OUTPUT_COMPLETE);
    ASSERT_EQ(c.starting_offsets, TALLY_START_LATEST);
    ASSERT_EQ(c.fail_on_data_loss, false);
    ASSERT_EQ(c.max_word_bytes, 64);
    ASSERT_EQ(c.state_rebuild, true);
    ASSERT_EQ(c.log_level, TALLY_LOG_DEBUG);
    ASSERT_EQ(c.transaction_timeout_ms, 30000);
    ASSERT_EQ(c.metadata_refresh_ms, 500);
    ASSERT_STR_EQ(c.http_listen, "127.0.0.1:8080");
    ASSERT_STR_EQ(c.progress_topic, "progress");
    validate_ok(&c);
    tally_config_term(&c);

    /* Each log level maps to tally_log_level_t; enums are case-insensitive. */
    const char *levels[] = {"error", "WARN", "Info", "debug"};
    for (int i = 0; i < 4; i++) {
        char text[64];
        snprintf(text, sizeof(text), "log.level=%s\n", levels[i]);
        load_ok(&c, text);
        ASSERT_EQ(c.log_level, i);
        tally_config_term(&c);
    }
    load_ok(&c, "sink=CONSOLE\nprocessing.guarantee=Exactly_Once\n");
    ASSERT_EQ(c.sink, TALLY_SINK_CONSOLE);
    ASSERT_EQ(c.guarantee, TALLY_EXACTLY_ONCE);
    tally_config_term(&c);

    /* Range edges. */
    load_ok(&c, "workers=256\ntrigger.interval.ms=10\nmax.word.bytes=1048576\n"
                "transaction.timeout.ms=900000\nmetadata.refresh.interval.ms=100\nhttp.listen=[::1]:65535\n");
    ASSERT_EQ(c.workers, 256);
    ASSERT_EQ(c.trigger_interval_ms, 10);
    ASSERT_EQ(c.max_word_bytes, 1048576);
    ASSERT_EQ(c.transaction_timeout_ms, 900000);
    ASSERT_EQ(c.metadata_refresh_ms, 100);
    ASSERT_STR_EQ(c.http_listen, "[::1]:65535");
    tally_config_term(&c);

    /* A topic name of exactly 249 characters. */
    char text[320];
    memset(text, 0, sizeof(text));
    strcpy(text, "output.topic=");
    memset(text + strlen(text), 'x', 249);
    load_ok(&c, text);
    ASSERT_EQ(strlen(c.output_topic), 249);
    tally_config_term(&c);
}

static void test_formats(void) {
    tally_config_t c;
    /* The four separators, spaces around them, tabs, indentation, comments and blank lines. */
    load_ok(&c, "# a comment\n"
                "! also a comment\n"
                "   # an indented comment\n"
                "\n"
                "   \t\n"
                "bootstrap.servers=b:9092\n"
                "application.id = app\n"
                "input.topic: in\n"
                "output.topic out\n"
                "  workers\t=\t4   \n"
                "\tlog.level :debug\n"
                "sink\t\tconsole\n");
    ASSERT_STR_EQ(c.bootstrap_servers, "b:9092");
    ASSERT_STR_EQ(c.application_id, "app");
    ASSERT_STR_EQ(c.input_topics[0], "in");
    ASSERT_STR_EQ(c.output_topic, "out");
    ASSERT_EQ(c.workers, 4);
    ASSERT_EQ(c.log_level, TALLY_LOG_DEBUG);
    ASSERT_EQ(c.sink, TALLY_SINK_CONSOLE);
    tally_config_term(&c);

    /* Only the first separator splits: the value keeps later '=', ':' and spaces. */
    load_ok(&c, "bootstrap.servers = a:1, b:2\nkafka.sasl.jaas.config=x required user=\"u\" pw=\"p\";\n");
    ASSERT_STR_EQ(c.bootstrap_servers, "a:1, b:2");
    ASSERT_STR_EQ(c.kafka[0].value, "x required user=\"u\" pw=\"p\";");
    tally_config_term(&c);

    /* Continuation: the backslash goes, the next line's leading whitespace goes. */
    load_ok(&c, "input.topic = a,\\\n"
                "              b,\\\n"
                "\t\tc\n"
                "workers=\\\n"
                "  12\n");
    ASSERT_EQ(c.input_topic_cnt, 3);
    ASSERT_STR_EQ(c.input_topics[2], "c");
    ASSERT_EQ(c.workers, 12);
    tally_config_term(&c);

    /* An even number of backslashes is an escaped backslash, not a continuation. */
    load_ok(&c, "state.dir=C:\\\\tmp\\\\\nworkers=3\n");
    ASSERT_STR_EQ(c.state_dir, "C:\\tmp\\");
    ASSERT_EQ(c.workers, 3);
    tally_config_term(&c);

    /* A comment line ending in a backslash does not continue. */
    load_ok(&c, "# comment \\\nworkers=5\n");
    ASSERT_EQ(c.workers, 5);
    tally_config_term(&c);

    /* CRLF and lone CR line endings; a continuation across CRLF; no newline at the end. */
    load_ok(&c, "workers=7\r\nlog.level=warn\r\n\r\ninput.topic=a,\\\r\n  b\r\nsink=console\rstate.dir=/s");
    ASSERT_EQ(c.workers, 7);
    ASSERT_EQ(c.log_level, TALLY_LOG_WARN);
    ASSERT_EQ(c.input_topic_cnt, 2);
    ASSERT_STR_EQ(c.input_topics[1], "b");
    ASSERT_EQ(c.sink, TALLY_SINK_CONSOLE);
    ASSERT_STR_EQ(c.state_dir, "/s");
    tally_config_term(&c);

    /* Escapes in keys and values; trailing whitespace trimmed unless escaped; a UTF-8 BOM. */
    load_ok(&c, "\xef\xbb\xbf"
                "kafka.a\\=b\\:c\\ d=x\\ty\\nz\\\\w\\=\\:\n"
                "state.dir=\\ lead and trail\\ \t \n"
                "kafka.u=caf\\u00e9\n");
    ASSERT_EQ(c.kafka_cnt, 2);
    ASSERT_STR_EQ(c.kafka[0].key, "a=b:c d");
    ASSERT_STR_EQ(c.kafka[0].value, "x\ty\nz\\w=:");
    ASSERT_STR_EQ(c.state_dir, " lead and trail ");
    ASSERT_STR_EQ(c.kafka[1].value, "caf\xc3\xa9");
    tally_config_term(&c);

    /* An empty value unsets an optional string (its default); a key alone has an empty value. */
    load_ok(&c, "http.listen=0.0.0.0:80\nhttp.listen=\nprogress.topic=p\nprogress.topic\n");
    ASSERT(c.http_listen == NULL);
    ASSERT(c.progress_topic == NULL);
    tally_config_term(&c);

    /* Empty text and only comments. */
    load_ok(&c, "");
    tally_config_term(&c);
    load_ok(&c, "#\n!\n\n");
    tally_config_term(&c);
}

static void test_errors(void) {
    const char *e;
    /* Unknown key, on the right line after comments and blanks. */
    e = load_err("# c\n\nworkers=1\n\n\ntrigger.intervall.ms=5\n", ORIGIN ":6: ", "unknown key \"trigger.intervall.ms\"",
                 "(did you mean \"trigger.interval.ms\"?)", NULL);
    ASSERT_STR_EQ(e, ORIGIN ":6: unknown key \"trigger.intervall.ms\" (did you mean \"trigger.interval.ms\"?)");

    /* Enum. */
    e = load_err("a=1\n", NULL); /* unknown, no suggestion */
    ASSERT_CONTAINS(e, "unknown key \"a\"");
    e = load_err("\n\nprocessing.guarantee=fast\n", NULL);
    ASSERT_STR_EQ(e, ORIGIN ":3: bad value \"fast\" for processing.guarantee: allowed exactly_once, at_least_once");
    load_err("sink=file\n", ":1:", "\"file\"", "sink", "allowed kafka, console", NULL);
    load_err("output.mode=appendix\n", "\"appendix\"", "output.mode", "allowed update, complete, append", NULL);
    load_err("starting.offsets=\n", "\"\"", "starting.offsets", "allowed earliest, latest", NULL);
    load_err("log.level=trace\n", "\"trace\"", "log.level", "allowed error, warn, info, debug", NULL);

    /* Integers: range, junk, overflow, hex, empty. */
    e = load_err("#\n#\n#\n#\nworkers=-3\n", NULL);
    ASSERT_STR_EQ(e, ORIGIN ":5: bad value \"-3\" for workers: an integer from 0 to 256");
    load_err("workers=257\n", "\"257\"", "an integer from 0 to 256", NULL);
    load_err("workers=12abc\n", "\"12abc\"", "workers", NULL);
    load_err("workers=0x10\n", "\"0x10\"", NULL);
    load_err("workers=\n", "bad value \"\" for workers", NULL);
    load_err("workers=1.5\n", "\"1.5\"", NULL);
    load_err("trigger.interval.ms=99999999999999999999\n", "trigger.interval.ms: an integer from 10 to 3600000", NULL);
    load_err("trigger.interval.ms=9\n", "an integer from 10 to 3600000", NULL);
    load_err("max.word.bytes=0\n", "max.word.bytes: an integer from 1 to 1048576", NULL);
    load_err("transaction.timeout.ms=999\n", "transaction.timeout.ms: an integer from 1000 to 900000", NULL);
    load_err("metadata.refresh.interval.ms=3600001\n", "an integer from 100 to 3600000", NULL);

    /* Booleans: only true/false. */
    e = load_err("fail.on.data.loss=yes\n", NULL);
    ASSERT_STR_EQ(e, ORIGIN ":1: bad value \"yes\" for fail.on.data.loss: true or false");
    load_err("state.rebuild=1\n", "\"1\"", "state.rebuild: true or false", NULL);

    /* Topic lists. */
    load_err("input.topic=a,,b\n", ":1:", "\"a,,b\"", "input.topic", "comma-separated list", "item 2", "empty", NULL);
    load_err("input.topic=a,\n", "item 2", NULL);
    load_err("input.topic=\n", "bad value \"\" for input.topic", NULL);
    load_err("input.topic=good,bad topic\n", "\"good,bad topic\"", "item 2", "a space", NULL);
    load_err("input.topic=a/b\n", "character '/'", NULL);
    load_err("input.topic=a, b, a\n", "\"a\" is listed twice", NULL);
    load_err("input.topic=..\n", "\"..\"", NULL);
    char long_topic[300] = "input.topic=";
    memset(long_topic + strlen(long_topic), 'y', 250);
    load_err(long_topic, "250 characters", "1 to 249 characters", "...", NULL);
    load_err("output.topic=out put\n", "output.topic", "a topic name", NULL);
    load_err("progress.topic=p*\n", "progress.topic", "character '*'", NULL);

    /* Strings with a form. */
    load_err("application.id=my app\n", "\"my app\"", "application.id", "letters, digits, '.', '_' and '-'", NULL);
    load_err("application.id=..\n", "application.id", NULL);
    load_err("application.id=\n", "bad value \"\" for application.id", NULL);
    /* bootstrap.servers is optional (files in and out need no broker): empty unsets it. */
    {
        tally_config_t c;
        load_ok(&c, "bootstrap.servers=\n");
        ASSERT(c.bootstrap_servers == NULL);
        tally_config_term(&c);
    }
    const char *bad_listen[] = {"8080", ":8080", "h:0", "h:65536", "h:abc", "h:", "::1:80", "[::1:80",
                                "h:99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad_listen) / sizeof(bad_listen[0]); i++) {
        char text[80], val[40];
        snprintf(text, sizeof(text), "http.listen=%s\n", bad_listen[i]);
        snprintf(val, sizeof(val), "\"%s\"", bad_listen[i]);
        load_err(text, val, "http.listen", "host:port with a port from 1 to 65535", NULL);
    }

    /* Keys. */
    load_err("kafka.=x\n", ":1:", "\"kafka.\"", NULL);
    load_err("=x\n", "empty key", "\"x\"", NULL);

    /* Line numbers count the physical lines of a continuation, CRLF lines too. */
    load_err("input.topic=a,\\\n b\r\n\r\nworkers=x\n", ORIGIN ":4: ", NULL);
    /* A continued line reports its first line. */
    load_err("workers=1\nworkers=\\\n  x\n", ORIGIN ":2: ", "\"x\"", NULL);

    /* A long value is cut in the message, which stays one line and names the key. */
    char long_val[400] = "workers=";
    memset(long_val + strlen(long_val), '9', 300);
    e = load_err(long_val, "...\" for workers", NULL);
    ASSERT_LT(strlen(e), 250);

    /* A failing line leaves earlier lines applied and the failing key unchanged. */
    tally_config_t c;
    char err[256];
    tally_config_init(&c);
    ASSERT_EQ(tally_config_load_string(&c, "workers=2\nworkers=x\n", ORIGIN, err, sizeof(err)), TALLY_ECONFIG);
    ASSERT_EQ(c.workers, 2);
    tally_config_term(&c);

    /* A NULL errstr is allowed. */
    tally_config_init(&c);
    ASSERT_EQ(tally_config_load_string(&c, "nope=1\n", ORIGIN, NULL, 0), TALLY_ECONFIG);
    ASSERT_EQ(tally_config_set(&c, "nope=1", NULL, 0), TALLY_ECONFIG);
    ASSERT_EQ(tally_config_validate(&c, NULL, 0), TALLY_ECONFIG);
    /* A small errstr is cut, still terminated. */
    char tiny[8];
    ASSERT_EQ(tally_config_load_string(&c, "nope=1\n", ORIGIN, tiny, sizeof(tiny)), TALLY_ECONFIG);
    ASSERT_EQ(strlen(tiny), 7);
    tally_config_term(&c);
}

static void test_did_you_mean(void) {
    load_err("worker=1\n", "did you mean \"workers\"", NULL);
    load_err("bootstrap.server=x\n", "did you mean \"bootstrap.servers\"", NULL);
    load_err("bootstrap_servers=x\n", "did you mean \"bootstrap.servers\"", NULL);
    load_err("applicationid=x\n", "did you mean \"application.id\"", NULL);
    load_err("input.topics=x\n", "did you mean \"input.topic\"", NULL);
    load_err("processing.guarantees=x\n", "did you mean \"processing.guarantee\"", NULL);
    load_err("loglevel=x\n", "did you mean \"log.level\"", NULL);
    /* Prefix and suffix matches beyond distance 3. */
    load_err("metadata.refresh=5\n", "did you mean \"metadata.refresh.interval.ms\"", NULL);
    load_err("refresh.interval.ms=5\n", "did you mean \"metadata.refresh.interval.ms\"", NULL);
    load_err("tally.max.word.bytes=5\n", "did you mean \"max.word.bytes\"", NULL);
    /* A librdkafka property without the prefix. */
    load_err("security.protocol=SSL\n", "unknown key \"security.protocol\"", "did you mean \"kafka.security.protocol\"", NULL);
    load_err("acks=all\n", "did you mean \"kafka.acks\"", NULL);
    /* Settings tally derives from application.id. */
    load_err("group.id=g\n", "unknown key \"group.id\"", "application.id", NULL);
    /* Nothing close: no suggestion. */
    const char *e = load_err("zzzzzzzzzzzz=1\n", "unknown key \"zzzzzzzzzzzz\"", NULL);
    ASSERT_NOT_CONTAINS(e, "did you mean");
    /* Keys are case-sensitive, but the suggestion finds them. */
    load_err("Workers=1\n", "did you mean \"workers\"", NULL);
}

static void test_duplicates(void) {
    tally_config_t c;
    /* Later wins; strings and lists replaced without leaking (checked under valgrind/ASan). */
    load_ok(&c, "workers=2\nworkers=3\n"
                "application.id=a\napplication.id=b\n"
                "input.topic=x,y,z\ninput.topic=w\n"
                "state.dir=/1\nstate.dir=/2\n"
                "http.listen=h:1\nhttp.listen=h:2\n");
    ASSERT_EQ(c.workers, 3);
    ASSERT_STR_EQ(c.application_id, "b");
    ASSERT_EQ(c.input_topic_cnt, 1);
    ASSERT_STR_EQ(c.input_topics[0], "w");
    ASSERT_STR_EQ(c.state_dir, "/2");
    ASSERT_STR_EQ(c.http_listen, "h:2");
    /* Loading a second text on top overrides, as a later file would. */
    char err[256];
    ASSERT_EQ(tally_config_load_string(&c, "application.id=c\ninput.topic=v,u\n", "second", err, sizeof(err)), 0);
    ASSERT_STR_EQ(c.application_id, "c");
    ASSERT_EQ(c.input_topic_cnt, 2);
    tally_config_term(&c);
}

static void test_kafka_passthrough(void) {
    tally_config_t c;
    load_ok(&c, "kafka.security.protocol=SASL_SSL\n"
                "kafka.client.id=first\n"
                "workers=1\n"
                "kafka.linger.ms = 5\n"
                "kafka.client.id=second\n"
                "kafka.anything.librdkafka.checks.later=whatever\n"
                "kafka.empty=\n");
    ASSERT_EQ(c.kafka_cnt, 5);
    ASSERT_STR_EQ(c.kafka[0].key, "security.protocol");
    ASSERT_STR_EQ(c.kafka[0].value, "SASL_SSL");
    /* The override keeps the first position. */
    ASSERT_STR_EQ(c.kafka[1].key, "client.id");
    ASSERT_STR_EQ(c.kafka[1].value, "second");
    ASSERT_STR_EQ(c.kafka[2].key, "linger.ms");
    ASSERT_STR_EQ(c.kafka[2].value, "5");
    ASSERT_STR_EQ(c.kafka[3].key, "anything.librdkafka.checks.later");
    ASSERT_STR_EQ(c.kafka[4].key, "empty");
    ASSERT_STR_EQ(c.kafka[4].value, "");
    /* --set overrides a file's kafka.* key and appends new ones. */
    char err[256];
    ASSERT_EQ(tally_config_set(&c, "kafka.linger.ms=50", err, sizeof(err)), 0);
    ASSERT_EQ(tally_config_set(&c, "kafka.acks=all", err, sizeof(err)), 0);
    ASSERT_EQ(c.kafka_cnt, 6);
    ASSERT_STR_EQ(c.kafka[2].value, "50");
    ASSERT_STR_EQ(c.kafka[5].key, "acks");
    tally_config_term(&c);
}

static void test_set(void) {
    tally_config_t c;
    char err[256];
    tally_config_init(&c);
    ASSERT_EQ(tally_config_set(&c, "workers=9", err, sizeof(err)), 0);
    ASSERT_EQ(c.workers, 9);
    ASSERT_EQ(tally_config_set(&c, "  sink = console ", err, sizeof(err)), 0);
    ASSERT_EQ(c.sink, TALLY_SINK_CONSOLE);
    ASSERT_EQ(tally_config_set(&c, "input.topic=a,b", err, sizeof(err)), 0);
    ASSERT_EQ(c.input_topic_cnt, 2);
    /* No escapes on the command line: backslashes and '=' in the value arrive intact. */
    ASSERT_EQ(tally_config_set(&c, "state.dir=C:\\state\\", err, sizeof(err)), 0);
    ASSERT_STR_EQ(c.state_dir, "C:\\state\\");
    ASSERT_EQ(tally_config_set(&c, "kafka.sasl.jaas.config=a b=c", err, sizeof(err)), 0);
    ASSERT_STR_EQ(c.kafka[0].value, "a b=c");
    ASSERT_EQ(tally_config_set(&c, "http.listen=", err, sizeof(err)), 0);
    ASSERT(c.http_listen == NULL);

    const char *e = set_err(&c, "trigger.intervall.ms=5");
    ASSERT_STR_EQ(e, "--set: unknown key \"trigger.intervall.ms\" (did you mean \"trigger.interval.ms\"?)");
    e = set_err(&c, "processing.guarantee=fast");
    ASSERT_STR_EQ(e, "--set: bad value \"fast\" for processing.guarantee: allowed exactly_once, at_least_once");
    e = set_err(&c, "workers=-3");
    ASSERT_STR_EQ(e, "--set: bad value \"-3\" for workers: an integer from 0 to 256");
    e = set_err(&c, "workers");
    ASSERT_CONTAINS(e, "--set: ");
    ASSERT_CONTAINS(e, "key=value");
    ASSERT_CONTAINS(e, "\"workers\"");
    e = set_err(&c, "=5");
    ASSERT_CONTAINS(e, "--set: empty key");
    e = set_err(&c, "kafka.=5");
    ASSERT_CONTAINS(e, "--set: ");
    ASSERT_EQ(c.workers, 9); /* unchanged by the failures */
    tally_config_term(&c);
}

static void test_validate(void) {
    tally_config_t c;
    const char *e;

    tally_config_init(&c);
    e = validate_err(&c);
    ASSERT_STR_EQ(e, "missing required key \"application.id\"");
    tally_config_term(&c);

    load_ok(&c, "application.id=a\ninput.topic=in\noutput.topic=out\n");
    ASSERT_STR_EQ(validate_err(&c), "missing required key \"bootstrap.servers\" (required when input.topic is read)");
    tally_config_term(&c);

    /* input.path: instead of input.topic; no broker for files -> files or console. */
    load_ok(&c, "application.id=a\ninput.path=/tmp/in\nsink=files\noutput.path=/tmp/out\n");
    validate_ok(&c);
    ASSERT_EQ(c.files_clean, TALLY_CLEAN_OFF);
    ASSERT_EQ(c.files_split_bytes, 33554432);
    ASSERT(!c.trigger_available_now);
    ASSERT_EQ(tally_config_set(&c, "input.topic=in", NULL, 0), 0);
    ASSERT_STR_EQ(validate_err(&c), "input.topic and input.path are both set: tally reads one of them");
    tally_config_term(&c);
    load_ok(&c, "application.id=a\ninput.path=/tmp/in\noutput.topic=out\n");
    ASSERT_STR_EQ(validate_err(&c), "missing required key \"bootstrap.servers\" (required when sink=kafka)");
    tally_config_term(&c);
    load_ok(&c, "application.id=a\ninput.path=/tmp/in\nsink=console\nfiles.clean=archive\n");
    ASSERT_STR_EQ(validate_err(&c), "missing required key \"files.archive.dir\" (required when files.clean=archive)");
    ASSERT_EQ(tally_config_set(&c, "files.archive.dir=/tmp/done", NULL, 0), 0);
    validate_ok(&c);
    tally_config_term(&c);
    load_ok(&c, REQUIRED_TEXT "trigger.available.now=true\n");
    ASSERT_CONTAINS(validate_err(&c), "trigger.available.now=true needs input.path");
    tally_config_term(&c);

    load_ok(&c, "bootstrap.servers=b\ninput.topic=in\noutput.topic=out\n");
    e = validate_err(&c);
    ASSERT_STR_EQ(e, "missing required key \"application.id\"");
    tally_config_term(&c);

    load_ok(&c, "bootstrap.servers=b\napplication.id=a\noutput.topic=out\n");
    ASSERT_STR_EQ(validate_err(&c), "missing required key \"input.topic\" (or input.path, to count files)");
    tally_config_term(&c);

    /* output.topic: required with the kafka sink, not with console. */
    load_ok(&c, "bootstrap.servers=b\napplication.id=a\ninput.topic=in\n");
    e = validate_err(&c);
    ASSERT_CONTAINS(e, "missing required key \"output.topic\"");
    ASSERT_CONTAINS(e, "sink=kafka");
    ASSERT_EQ(tally_config_set(&c, "sink=console", NULL, 0), 0);
    validate_ok(&c);
    tally_config_term(&c);

    /* sink=files: output.path required, output.topic refused; output.path only with files. */
    load_ok(&c, "bootstrap.servers=b\napplication.id=a\ninput.topic=in\nsink=files\n");
    ASSERT_STR_EQ(validate_err(&c), "missing required key \"output.path\" (required when sink=files)");
    ASSERT_EQ(tally_config_set(&c, "output.path=/tmp/out", NULL, 0), 0);
    validate_ok(&c);
    ASSERT_EQ(c.output_format, TALLY_FORMAT_JSONL);
    ASSERT_EQ(c.parquet_codec, TALLY_PARQUET_SNAPPY);
    ASSERT_EQ(tally_config_set(&c, "output.topic=out", NULL, 0), 0);
    ASSERT_CONTAINS(validate_err(&c), "output.topic is set but sink=files");
    tally_config_term(&c);
    load_ok(&c, REQUIRED_TEXT "output.path=/tmp/out\n");
    ASSERT_CONTAINS(validate_err(&c), "output.path is set but sink=kafka");
    tally_config_term(&c);
    tally_config_init(&c);
    char err[512];
    ASSERT(tally_config_set(&c, "output.format=orc", err, sizeof(err)) != 0);
    ASSERT_CONTAINS(err, "jsonl, csv, parquet");
    ASSERT(tally_config_set(&c, "output.path=/tmp/a\x01" "b", err, sizeof(err)) != 0);
    ASSERT_CONTAINS(err, "byte 0x01 in a path");
    ASSERT(tally_config_set(&c, "output.parquet.compression=lz4", err, sizeof(err)) != 0);
    ASSERT_CONTAINS(err, "snappy, zstd, none");
    ASSERT_EQ(tally_config_set(&c, "output.parquet.compression=zstd", NULL, 0), 0);
    ASSERT_EQ(c.parquet_codec, TALLY_PARQUET_ZSTD);
    tally_config_term(&c);

    /* Cross-key checks. */
    load_ok(&c, REQUIRED_TEXT "input.topic=in,out\n");
    ASSERT_CONTAINS(validate_err(&c), "output.topic \"out\" is also an input.topic");
    ASSERT_EQ(tally_config_set(&c, "sink=console", NULL, 0), 0);
    validate_ok(&c); /* console writes no topic */
    tally_config_term(&c);

    load_ok(&c, REQUIRED_TEXT "progress.topic=in\n");
    ASSERT_CONTAINS(validate_err(&c), "progress.topic \"in\" is also an input.topic");
    tally_config_term(&c);

    load_ok(&c, REQUIRED_TEXT "progress.topic=out\n");
    ASSERT_CONTAINS(validate_err(&c), "progress.topic and output.topic are both \"out\"");
    tally_config_term(&c);

    load_ok(&c, REQUIRED_TEXT "trigger.interval.ms=60000\n");
    e = validate_err(&c);
    ASSERT_CONTAINS(e, "transaction.timeout.ms (60000) must be greater than trigger.interval.ms (60000)");
    ASSERT_EQ(tally_config_set(&c, "processing.guarantee=at_least_once", NULL, 0), 0);
    validate_ok(&c);
    tally_config_term(&c);

    /* Fields set in code get the table's range checks. */
    load_ok(&c, REQUIRED_TEXT);
    c.workers = 999;
    ASSERT_STR_EQ(validate_err(&c), "bad value 999 for workers: an integer from 0 to 256");
    c.workers = 0;
    c.sink = (tally_sink_t)7;
    ASSERT_CONTAINS(validate_err(&c), "bad value 7 for sink: allowed kafka, console");
    c.sink = TALLY_SINK_KAFKA;
    validate_ok(&c);
    tally_config_term(&c);
}

static void test_secrets(void) {
    ASSERT(tally_config_is_secret("sasl.password"));
    ASSERT(tally_config_is_secret("kafka.ssl.key.password"));
    ASSERT(tally_config_is_secret("SASL.PASSWORD"));
    ASSERT(tally_config_is_secret("sasl.oauthbearer.client.secret"));
    ASSERT(tally_config_is_secret("sasl.jaas.config"));
    ASSERT(tally_config_is_secret("ssl.key.pem"));
    ASSERT(tally_config_is_secret("ssl.private.key"));
    ASSERT(tally_config_is_secret("sasl.oauthbearer.token.endpoint.url"));
    ASSERT(!tally_config_is_secret("sasl.username"));
    ASSERT(!tally_config_is_secret("security.protocol"));
    ASSERT(!tally_config_is_secret("bootstrap.servers"));

    tally_config_t c;
    load_ok(&c, REQUIRED_TEXT
                "kafka.sasl.username=alice\n"
                "kafka.sasl.password=hunter2\n"
                "kafka.ssl.key.pem=-----BEGIN PRIVATE KEY-----\n"
                "kafka.sasl.jaas.config=org.Login required password=\"jaaspw\";\n"
                "kafka.sasl.oauthbearer.client.secret=s3cr3t\n"
                "kafka.Some.TOKEN=tok123\n");
    char *out = print_str(&c);
    ASSERT_CONTAINS(out, "kafka.sasl.username=alice\n");
    ASSERT_CONTAINS(out, "kafka.sasl.password=********\n");
    ASSERT_CONTAINS(out, "kafka.ssl.key.pem=********\n");
    ASSERT_CONTAINS(out, "kafka.sasl.jaas.config=********\n");
    ASSERT_CONTAINS(out, "kafka.sasl.oauthbearer.client.secret=********\n");
    ASSERT_CONTAINS(out, "kafka.Some.TOKEN=********\n");
    ASSERT_NOT_CONTAINS(out, "hunter2");
    ASSERT_NOT_CONTAINS(out, "BEGIN");
    ASSERT_NOT_CONTAINS(out, "jaaspw");
    ASSERT_NOT_CONTAINS(out, "s3cr3t");
    ASSERT_NOT_CONTAINS(out, "tok123");
    free(out);
    tally_config_term(&c);
}

static void test_print_round_trip(void) {
    tally_config_t a, b;
    char err[512];

    /* Defaults plus required keys: every table key is printed, unset ones as comments. */
    load_ok(&a, REQUIRED_TEXT);
    char *out = print_str(&a);
    for (size_t i = 0; i < ALL_KEYS_CNT; i++) ASSERT_CONTAINS(out, all_keys[i]);
    ASSERT_CONTAINS(out, "\nworkers=0\n");
    ASSERT_CONTAINS(out, "\nprocessing.guarantee=exactly_once\n");
    ASSERT_CONTAINS(out, "\nfail.on.data.loss=true\n");
    ASSERT_CONTAINS(out, "\nlog.level=info\n");
    ASSERT_CONTAINS(out, "\n# state.dir (unset");
    ASSERT_CONTAINS(out, "\n# http.listen (unset");
    tally_config_init(&b);
    ASSERT_EQ(tally_config_load_string(&b, out, "print", err, sizeof(err)), 0);
    assert_conf_eq(&a, &b);
    free(out);
    tally_config_term(&a);
    tally_config_term(&b);

    /* Every key changed, values needing escapes, kafka.* keys after the table keys. */
    load_ok(&a, "bootstrap.servers=k1:9092, k2:9092\n"
                "application.id=round.trip\n"
                "input.topic=a,b,c\n"
                "output.topic=o\n"
                "sink=console\n"
                "state.dir=\\ /tmp/dir with spaces\\\\and\\tback\\\\ \\ \n"
                "workers=3\n"
                "trigger.interval.ms=20\n"
                "processing.guarantee=at_least_once\n"
                "output.mode=complete\n"
                "starting.offsets=latest\n"
                "fail.on.data.loss=false\n"
                "max.word.bytes=7\n"
                "state.rebuild=true\n"
                "log.level=error\n"
                "transaction.timeout.ms=1000\n"
                "metadata.refresh.interval.ms=100\n"
                "http.listen=[::]:9\n"
                "progress.topic=p\n"
                "kafka.client.id=#not a comment\n"
                "kafka.odd\\ key\\=x=line1\\nline2\n"
                "kafka.ends.with.backslash=a\\\\\n"
                "kafka.empty=\n");
    ASSERT_STR_EQ(a.state_dir, " /tmp/dir with spaces\\and\tback\\  ");
    out = print_str(&a);
    /* kafka.* after every table key */
    ASSERT_GT(strstr(out, "kafka.client.id") - out, strstr(out, "progress.topic") - out);
    tally_config_init(&b);
    int rc = tally_config_load_string(&b, out, "print", err, sizeof(err));
    if (rc != 0) TH_FAIL("re-parse of\n%s\nfailed: %s", out, err);
    assert_conf_eq(&a, &b);
    validate_ok(&b);
    free(out);
    tally_config_term(&a);
    tally_config_term(&b);
}

static char *capture(void (*fn)(FILE *)) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ASSERT(f != NULL);
    fn(f);
    fclose(f);
    return buf;
}

static void test_help_and_markdown(void) {
    char *help = capture(tally_config_print_help);
    char *md = capture(tally_config_print_markdown);
    for (size_t i = 0; i < ALL_KEYS_CNT; i++) {
        ASSERT_CONTAINS(help, all_keys[i]);
        char cell[80];
        snprintf(cell, sizeof(cell), "| `%s` |", all_keys[i]);
        ASSERT_CONTAINS(md, cell);
    }
    ASSERT_CONTAINS(help, "kafka.");
    ASSERT_CONTAINS(help, "exactly_once, at_least_once");
    ASSERT_CONTAINS(help, "an integer from 0 to 256");
    ASSERT_CONTAINS(help, "Required.");
    ASSERT_CONTAINS(md, "| `kafka.*` |");
    ASSERT_CONTAINS(md, "`60000`");
    ASSERT_CONTAINS(md, "./state/&lt;application.id&gt;"); /* no raw HTML tag in Markdown */
    free(help);
    free(md);
}

static void test_files(void) {
    char dir[] = "/tmp/tally-test-config-XXXXXX";
    ASSERT(mkdtemp(dir) != NULL);
    char path[256], err[512];
    snprintf(path, sizeof(path), "%s/x.properties", dir);

    tally_config_t c;
    tally_config_init(&c);
    write_file(path, "# comment\r\nbootstrap.servers=b:1\r\napplication.id=a\r\ninput.topic=i\r\noutput.topic=o\r\n");
    ASSERT_EQ(tally_config_load_file(&c, path, err, sizeof(err)), 0);
    ASSERT_STR_EQ(c.bootstrap_servers, "b:1");
    validate_ok(&c);
    tally_config_term(&c);

    /* Errors name the file and line. */
    tally_config_init(&c);
    write_file(path, "workers=1\n\nprocessing.guarantee=fast\n");
    ASSERT_EQ(tally_config_load_file(&c, path, err, sizeof(err)), TALLY_ECONFIG);
    char want[400];
    snprintf(want, sizeof(want), "%s:3: bad value \"fast\" for processing.guarantee: allowed exactly_once, at_least_once", path);
    ASSERT_STR_EQ(err, want);
    tally_config_term(&c);

    /* A file with a NUL byte is not a properties file. */
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT_EQ(fwrite("workers=1\0\n", 1, 11, f), 11);
    fclose(f);
    tally_config_init(&c);
    ASSERT_EQ(tally_config_load_file(&c, path, err, sizeof(err)), TALLY_ECONFIG);
    ASSERT_CONTAINS(err, path);
    ASSERT_CONTAINS(err, "NUL");
    tally_config_term(&c);

    /* Unreadable: missing file, a directory. */
    ASSERT_EQ(unlink(path), 0);
    tally_config_init(&c);
    ASSERT_EQ(tally_config_load_file(&c, path, err, sizeof(err)), TALLY_EIO);
    snprintf(want, sizeof(want), "cannot read %s: No such file or directory", path);
    ASSERT_STR_EQ(err, want);
    ASSERT_EQ(tally_config_load_file(&c, dir, err, sizeof(err)), TALLY_EIO);
    ASSERT_CONTAINS(err, "cannot read ");
    ASSERT_CONTAINS(err, dir);
    tally_config_term(&c);

    /* A file bigger than one read. */
    size_t big = 100000;
    char *text = malloc(big + 64);
    ASSERT(text != NULL);
    size_t n = 0;
    while (n + 20 < big) n += (size_t)sprintf(text + n, "# padding comment\n");
    strcpy(text + n, "workers=17\n");
    write_file(path, text);
    free(text);
    tally_config_init(&c);
    ASSERT_EQ(tally_config_load_file(&c, path, err, sizeof(err)), 0);
    ASSERT_EQ(c.workers, 17);
    tally_config_term(&c);

    ASSERT_EQ(unlink(path), 0);
    ASSERT_EQ(rmdir(dir), 0);
}

/* The shipped conf files load and validate. */
static void test_shipped_conf(void) {
    const char *root = getenv("TALLY_SOURCE_DIR");
    if (!root) root = ".";
    const char *names[] = {"wordcount.properties", "console.properties", "example-full.properties",
                           "parquet.properties", "files.properties", "windows.properties",
                           "distributed.properties"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[1024], err[512];
        snprintf(path, sizeof(path), "%s/conf/%s", root, names[i]);
        tally_config_t c;
        tally_config_init(&c);
        int rc = tally_config_load_file(&c, path, err, sizeof(err));
        if (rc != 0) TH_FAIL("%s: %s", path, err);
        rc = tally_config_validate(&c, err, sizeof(err));
        if (rc != 0) TH_FAIL("%s: %s", path, err);
        if (i == 4) { /* files in, files out: no broker */
            ASSERT(c.bootstrap_servers == NULL);
            ASSERT_STR_EQ(c.input_path, "/tmp/wordcount-in");
            ASSERT_EQ(c.sink, TALLY_SINK_FILES);
            ASSERT(c.trigger_available_now);
            tally_config_term(&c);
            continue;
        }
        ASSERT_STR_EQ(c.bootstrap_servers, "localhost:9092");
        ASSERT_EQ(c.input_topic_cnt, 1);
        ASSERT_STR_EQ(c.input_topics[0], "test");
        if (i == 0) { /* the seed job */
            ASSERT_STR_EQ(c.application_id, "wordcount");
            ASSERT_STR_EQ(c.output_topic, "testConsumer");
            ASSERT_EQ(c.sink, TALLY_SINK_KAFKA);
            ASSERT_EQ(c.guarantee, TALLY_EXACTLY_ONCE);
        }
        if (i == 1) ASSERT_EQ(c.sink, TALLY_SINK_CONSOLE);
        if (i == 2) ASSERT_EQ(c.kafka_cnt, 0); /* the kafka.* examples are commented out */
        if (i == 3) {
            ASSERT_EQ(c.sink, TALLY_SINK_FILES);
            ASSERT_EQ(c.output_format, TALLY_FORMAT_PARQUET);
        }
        tally_config_term(&c);
    }
}

/* The window keys: parsing (int64 milliseconds, unset by an empty value), every cross-key rule with
 * its message, the Spark-like refusal of append without windows and a watermark, print round trip. */
/* topology=distributed: its keys, and what it cannot be combined with (yet). */
/* memory.max.bytes: a size with k/m/g, its range, and the split budget.h derives from it. */
static void test_memory(void) {
    tally_config_t c;
    tally_config_init(&c);
    ASSERT_EQ(c.memory_max_bytes, INT64_C(256) << 20);
    ASSERT_EQ(c.cache_max_words, -1); /* derived from the budget */
    tally_config_term(&c);
    load_ok(&c, REQUIRED_TEXT "memory.max.bytes=1g\n");
    ASSERT_EQ(c.memory_max_bytes, INT64_C(1) << 30);
    tally_config_term(&c);
    load_ok(&c, REQUIRED_TEXT "memory.max.bytes=104857600\n");
    ASSERT_EQ(c.memory_max_bytes, INT64_C(104857600));
    tally_config_term(&c);
    load_ok(&c, REQUIRED_TEXT "memory.max.bytes=65536K\n");
    ASSERT_EQ(c.memory_max_bytes, INT64_C(64) << 20);
    tally_config_term(&c);
    load_err("memory.max.bytes=63m\n", "\"63m\"", "memory.max.bytes", "from 67108864", NULL);
    load_err("memory.max.bytes=2t\n", "\"2t\"", "memory.max.bytes", NULL);
    load_err("memory.max.bytes=-1\n", "\"-1\"", "memory.max.bytes", NULL);
    load_err("memory.max.bytes=\n", "memory.max.bytes", NULL);
    load_err("memory.max.bytes=9999999999999g\n", "memory.max.bytes", NULL);
    load_err("state.cache.max.words=-2\n", "state.cache.max.words", NULL);

    /* The split: every share within the budget, together under it; bounds grow with it. */
    tally_budget_t b, big;
    tally_config_init(&c);
    tally_budget_split(&c, &b);
    ASSERT_EQ(b.total, INT64_C(256) << 20);
    ASSERT_LE(b.fixed + b.consumer + b.producer + b.rings + b.sums + b.cache + b.epoch + b.rocksdb, b.total);
    ASSERT_GT(tally_budget_cache_words(&b), 1000000); /* 10^6 words fit the default */
    ASSERT_GT(tally_budget_epoch_keys(&b), 200000);   /* so does an epoch of 10^5 words (x2: see worker.c) */
    ASSERT_LE((int64_t)tally_budget_epoch_keys(&b) * 80, b.epoch);
    ASSERT_LE(tally_budget_producer_kb(&b) * 1024, b.producer);
    ASSERT_LE(tally_budget_producer_messages(&b) * 216, b.producer);
    ASSERT_LE((int64_t)(2 * tally_budget_rocksdb_write_buffer(&b) + tally_budget_rocksdb_block_cache(&b)), b.rocksdb);
    ASSERT_LE(tally_budget_consumer_queue_kb(&b) * 1024 * TALLY_BUDGET_PARTITIONS, b.consumer);
    unsigned ring = tally_budget_ring_batches(&b, 4, 2);
    ASSERT(ring >= 2 && ring <= 64 && (ring & (ring - 1)) == 0);
    ASSERT_LE((int64_t)ring * 4 * 2 * TALLY_BATCH_BYTES, b.rings);
    ASSERT_EQ(tally_budget_ring_batches(&b, 1000, 8), 2); /* never below 2, whatever the count */
    c.memory_max_bytes = INT64_C(4) << 30;
    tally_budget_split(&c, &big);
    ASSERT_GT(tally_budget_cache_words(&big), tally_budget_cache_words(&b));
    ASSERT_GT(tally_budget_epoch_keys(&big), tally_budget_epoch_keys(&b));
    ASSERT_EQ(tally_budget_ring_batches(&big, 4, 2), 64);
    tally_config_term(&c);
}

static void test_topology(void) {
    tally_config_t c;
    load_ok(&c, REQUIRED_TEXT "topology=distributed\ninstance.id=node-7\nrepartition.partitions=12\n"
                "internal.replication.factor=3\n");
    ASSERT_EQ(c.topology, TALLY_TOPOLOGY_DISTRIBUTED);
    ASSERT_STR_EQ(c.instance_id, "node-7");
    ASSERT_EQ(c.repartition_partitions, 12);
    ASSERT_EQ(c.internal_replication, 3);
    validate_ok(&c);
    tally_config_term(&c);
    load_ok(&c, REQUIRED_TEXT "topology=distributed\nwindow.size.ms=60000\nwindow.slide.ms=20000\n");
    validate_ok(&c); /* windows in update mode, no watermark */
    tally_config_term(&c);
    load_ok(&c, REQUIRED_TEXT "topology=distributed\nwindow.size.ms=60000\nwatermark.delay.ms=5000\noutput.mode=append\n");
    validate_ok(&c);
    tally_config_term(&c);
    load_ok(&c, REQUIRED_TEXT);
    ASSERT_EQ(c.topology, TALLY_TOPOLOGY_SINGLE);
    ASSERT(c.instance_id == NULL);
    ASSERT_EQ(c.repartition_partitions, 32);
    ASSERT_EQ(c.internal_replication, -1);
    tally_config_term(&c);
    load_err("topology=cluster\n", "\"cluster\"", "topology: allowed single, distributed", NULL);
    load_err("repartition.partitions=0\n", "repartition.partitions", NULL);
    load_err("instance.id=a/b\n", "instance.id", NULL);
    static const struct { const char *text, *why; } bad[] = {
        {"processing.guarantee=at_least_once\n", "topology=distributed needs processing.guarantee=exactly_once"},
        {"output.mode=complete\n", "topology=distributed needs output.mode=update or append"},
        {"window.size.ms=60000\nwatermark.delay.ms=1000\nwatermark.policy=min\n", "topology=distributed needs watermark.policy=max"},
        {"window.size.ms=60000\nwatermark.delay.ms=1000\nwindow.close.idle.ms=5000\n",
         "topology=distributed needs no window.close.idle.ms"},
        {"sink=console\noutput.topic=\n", "topology=distributed needs sink=kafka"},
        {"state.rebuild=true\n", "topology=distributed needs no state.rebuild"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text), REQUIRED_TEXT "topology=distributed\n%s", bad[i].text);
        load_ok(&c, text);
        ASSERT_CONTAINS(validate_err(&c), bad[i].why);
        tally_config_term(&c);
    }
}

static void test_windows(void) {
    tally_config_t c;
    const char *e;
    /* Values: int64 past int's range, 0 .. 10 years, no sign, no junk. */
    load_ok(&c, "window.size.ms=31536000000\nwindow.slide.ms=3600000\nwatermark.delay.ms=0\n"
                "event.time=Processing\nwatermark.policy=MIN\nwatermark.idle.ms=5000\nwindow.close.idle.ms=60000\n");
    ASSERT_EQ(c.window_size_ms, INT64_C(31536000000));
    ASSERT_EQ(c.window_slide_ms, 3600000);
    ASSERT_EQ(c.watermark_delay_ms, 0);
    ASSERT_EQ(c.event_time, TALLY_EVENT_TIME_PROCESSING);
    ASSERT_EQ(c.watermark_policy, TALLY_WATERMARK_MIN);
    ASSERT_EQ(c.watermark_idle_ms, 5000);
    ASSERT_EQ(c.window_close_idle_ms, 60000);
    /* An empty value unsets an optional one again; not the ones with a default. */
    ASSERT_EQ(tally_config_set(&c, "watermark.delay.ms=", NULL, 0), 0);
    ASSERT_EQ(c.watermark_delay_ms, -1);
    char err[512];
    ASSERT_EQ(tally_config_set(&c, "window.size.ms=", err, sizeof(err)), TALLY_ECONFIG);
    ASSERT_STR_EQ(err, "--set: bad value \"\" for window.size.ms: milliseconds, an integer from 0 to 315360000000");
    ASSERT_EQ(c.window_size_ms, INT64_C(31536000000)); /* unchanged */
    tally_config_term(&c);
    e = load_err("\nwindow.size.ms=-1\n", NULL);
    ASSERT_STR_EQ(e, ORIGIN ":2: bad value \"-1\" for window.size.ms: milliseconds, an integer from 0 to 315360000000");
    load_err("window.slide.ms=-5\n", "\"-5\"", "window.slide.ms", NULL);
    e = load_err("watermark.delay.ms=-1\n", NULL);
    ASSERT_STR_EQ(e, ORIGIN ":1: bad value \"-1\" for watermark.delay.ms: milliseconds, an integer from 0 to "
                     "315360000000 (empty: unset)");
    load_err("watermark.idle.ms=-1\n", "watermark.idle.ms", NULL);
    load_err("window.close.idle.ms=-100\n", "window.close.idle.ms", NULL);
    load_err("window.size.ms=+5\n", "\"+5\"", NULL);
    load_err("window.size.ms=315360000001\n", "\"315360000001\"", NULL);
    load_err("window.size.ms=99999999999999999999\n", "window.size.ms", NULL); /* past int64 */
    load_err("window.size.ms=10s\n", "\"10s\"", NULL);
    load_err("window.size.ms=0x10\n", "\"0x10\"", NULL);
    load_err("event.time=ingest\n", "\"ingest\"", "event.time: allowed record, processing", NULL);
    load_err("watermark.policy=median\n", "\"median\"", "watermark.policy: allowed max, min", NULL);
    load_ok(&c, "window.size.ms=315360000000\n");
    ASSERT_EQ(c.window_size_ms, INT64_C(315360000000));
    tally_config_term(&c);

    /* Valid combinations. */
    static const char *const ok[] = {
        "",
        "window.size.ms=0\n",
        "window.size.ms=600000\n",                                               /* update, no watermark */
        "window.size.ms=600000\nwindow.slide.ms=600000\n",
        "window.size.ms=600000\nwindow.slide.ms=300000\nwatermark.delay.ms=60000\n",
        "window.size.ms=720000\nwindow.slide.ms=300000\nwatermark.delay.ms=0\noutput.mode=append\n",
        "window.size.ms=600000\nwatermark.delay.ms=60000\nwatermark.policy=min\nwatermark.idle.ms=30000\n",
        "window.size.ms=600000\nwatermark.delay.ms=60000\nwindow.close.idle.ms=120000\noutput.mode=append\n",
        "window.size.ms=600000\nevent.time=processing\n",
        "window.size.ms=600000\noutput.mode=complete\n",                        /* Spark allows it */
        "window.size.ms=1000\nwindow.slide.ms=1\n",                              /* 1000 windows a record */
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text), REQUIRED_TEXT "%s", ok[i]);
        load_ok(&c, text);
        validate_ok(&c);
        /* print -> parse gives the same configuration, the unset keys as comments. */
        char *printed = print_str(&c);
        tally_config_t back;
        load_ok(&back, printed);
        assert_conf_eq(&c, &back);
        if (c.watermark_delay_ms < 0) ASSERT_CONTAINS(printed, "# watermark.delay.ms (unset: no watermark)");
        else ASSERT_CONTAINS(printed, "\nwatermark.delay.ms=");
        free(printed);
        tally_config_term(&back);
        tally_config_term(&c);
    }

    /* Refused, with the message. */
    static const struct { const char *text, *msg; } bad[] = {
        /* Spark: "Append output mode not supported when there are streaming aggregations on streaming
         * DataFrames/DataSets without watermark". */
        {"output.mode=append\n",
         "output.mode=append is not supported for word counts without windows and a watermark: a window's "
         "counts are final only once the watermark closes it (Spark: \"Append output mode not supported when "
         "there are streaming aggregations on streaming DataFrames/DataSets without watermark\"); set "
         "window.size.ms and watermark.delay.ms, or use output.mode=update"},
        {"output.mode=append\nwatermark.delay.ms=1000\n", "without windows and a watermark"},
        {"output.mode=append\nwindow.size.ms=60000\n",
         "output.mode=append is not supported for word counts without a watermark: "},
        {"output.mode=append\nwindow.size.ms=60000\n", "set watermark.delay.ms, or use output.mode=update"},
        {"window.size.ms=10\nwindow.slide.ms=11\n",
         "window.size.ms=10 with window.slide.ms=11: the slide duration (11 ms) must be less than or equal "
         "to the window duration (10 ms)"},
        {"window.size.ms=1001\nwindow.slide.ms=1\n", "a record would count in 1001 windows"},
        {"window.slide.ms=5\n",
         "window.slide.ms is set but window.size.ms=0 (no windows), where it has no effect: set "
         "window.size.ms, or remove window.slide.ms"},
        {"watermark.delay.ms=5\n", "watermark.delay.ms is set but window.size.ms=0"},
        {"watermark.idle.ms=5\n", "watermark.idle.ms is set but window.size.ms=0"},
        {"window.close.idle.ms=5\n", "window.close.idle.ms is set but window.size.ms=0"},
        {"event.time=processing\n", "event.time is set but window.size.ms=0"},
        {"watermark.policy=min\n", "watermark.policy is set but window.size.ms=0"},
        {"window.size.ms=60000\nwatermark.policy=min\n",
         "watermark.policy=min is set without a watermark: set watermark.delay.ms"},
        {"window.size.ms=60000\nwatermark.idle.ms=1\n", "watermark.idle.ms is set without a watermark"},
        {"window.size.ms=60000\nwindow.close.idle.ms=1\n", "window.close.idle.ms is set without a watermark"},
        {"window.size.ms=60000\nwatermark.delay.ms=0\nwatermark.idle.ms=1\n",
         "watermark.idle.ms is set but watermark.policy=max, where no partition holds the watermark back: "
         "set watermark.policy=min, or remove watermark.idle.ms"},
        {"window.size.ms=60000\nwatermark.delay.ms=0\noutput.mode=complete\n",
         "watermark.delay.ms is set but output.mode=complete keeps and emits every window"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text), REQUIRED_TEXT "%s", bad[i].text);
        load_ok(&c, text);
        e = validate_err(&c);
        ASSERT_CONTAINS(e, bad[i].msg);
        ASSERT_NOT_CONTAINS(e, "\n");
        tally_config_term(&c);
    }

    /* Fields set in code get the same checks. */
    load_ok(&c, REQUIRED_TEXT);
    c.window_size_ms = -7;
    ASSERT_STR_EQ(validate_err(&c), "bad value -7 for window.size.ms: milliseconds, an integer from 0 to 315360000000");
    c.window_size_ms = 0;
    c.watermark_delay_ms = -2;
    ASSERT_CONTAINS(validate_err(&c), "bad value -2 for watermark.delay.ms");
    c.watermark_delay_ms = -1;
    c.window_close_idle_ms = INT64_C(315360000001);
    ASSERT_CONTAINS(validate_err(&c), "bad value 315360000001 for window.close.idle.ms");
    c.window_close_idle_ms = -1;
    c.output_mode = (tally_output_mode_t)3;
    ASSERT_CONTAINS(validate_err(&c), "bad value 3 for output.mode: allowed update, complete, append");
    c.output_mode = TALLY_OUTPUT_UPDATE;
    c.watermark_policy = (tally_watermark_policy_t)2;
    ASSERT_CONTAINS(validate_err(&c), "bad value 2 for watermark.policy: allowed max, min");
    c.watermark_policy = TALLY_WATERMARK_MAX;
    validate_ok(&c);
    /* A copy keeps them. */
    c.window_size_ms = 600000;
    c.watermark_delay_ms = 5;
    tally_config_t copy;
    ASSERT_EQ(tally_config_copy(&copy, &c), 0);
    assert_conf_eq(&c, &copy);
    tally_config_term(&copy);
    tally_config_term(&c);
}

int main(void) {
    test_defaults();
    test_every_key();
    test_formats();
    test_errors();
    test_did_you_mean();
    test_duplicates();
    test_kafka_passthrough();
    test_set();
    test_validate();
    test_windows();
    test_memory();
    test_topology();
    test_secrets();
    test_print_round_trip();
    test_help_and_markdown();
    test_files();
    test_shipped_conf();
    puts("config: all tests passed");
    return 0;
}
