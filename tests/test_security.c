/* SPDX-License-Identifier: MIT */
/* Kafka over SASL_SSL (SCRAM-SHA-512) and over mutual TLS, configured with kafka.* keys only, against
 * a broker of this test's own with those listeners (scripts/kafka-local in secure mode, port
 * $TALLY_SECURE_PORT, default 59092; stopped at exit, also on failure). Exact counts end to end; a
 * wrong password, an untrusted client certificate or an untrusted broker CA stop the engine with a
 * clear message within 20 s; no secret in the engine's log or in --check-config. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define REFUSE_WITHIN_S 20.0
/* Distinctive, so that finding one in a log cannot be a coincidence. */
#define SCRAM_USER "tally"
#define SCRAM_PASSWORD "Scr4m-Pa55-9f2c"
#define WRONG_PASSWORD "Wr0ng-Pa55-71ad"
#define KEY_PASSWORD "K3y-Pa55-c0de"

static char broker_dir[256], certs[300], kafka_local[512];
static int port;
static pid_t owner;                 /* the process that started the broker stops it */
static th_engine_t *live;           /* an engine to kill if the test dies */
static char *stop_argv[3];

/* Stops the broker with fork+exec only, so that the signal handler may call it too. */
static void broker_stop(void) {
    if (owner != getpid()) return;
    owner = 0;
    if (live && live->pid > 0) kill(live->pid, SIGKILL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(2, 1);
        execv(stop_argv[0], stop_argv); /* KAFKA_LOCAL_PORT and _DIR are in the environment */
        _exit(127);
    }
    int st = -1;
    if (pid > 0) waitpid(pid, &st, 0);
    if (st != 0) {
        static const char msg[] = "test_security: kafka-local stop failed; stop the broker by hand\n";
        (void)!write(2, msg, sizeof(msg) - 1);
    }
}

static void on_fatal_signal(int sig) {
    broker_stop();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void broker_start(void) {
    const char *src = getenv("TALLY_SOURCE_DIR");
    if (!src || !*src) TH_FAIL("TALLY_SOURCE_DIR is not set (meson sets it)");
    const char *p = getenv("TALLY_SECURE_PORT");
    port = p && *p ? atoi(p) : 59092;
    ASSERT(port > 0 && port < 65532);
    snprintf(broker_dir, sizeof(broker_dir), "/tmp/tally-secure-kafka-%d", port);
    snprintf(certs, sizeof(certs), "%s/certs", broker_dir);
    snprintf(kafka_local, sizeof(kafka_local), "%s/scripts/kafka-local", src);
    stop_argv[0] = kafka_local;
    stop_argv[1] = "stop";
    char port_s[16];
    snprintf(port_s, sizeof(port_s), "%d", port);
    setenv("KAFKA_LOCAL_PORT", port_s, 1);
    setenv("KAFKA_LOCAL_DIR", broker_dir, 1);

    owner = getpid();
    atexit(broker_stop);
    signal(SIGTERM, on_fatal_signal); /* meson's timeout */
    signal(SIGINT, on_fatal_signal);
    signal(SIGHUP, on_fatal_signal);
    double t0 = th_now();
    int st = th_system("KAFKA_LOCAL_SECURE=1 KAFKA_LOCAL_SCRAM_USER=%s KAFKA_LOCAL_SCRAM_PASSWORD=%s "
                       "KAFKA_CERTS_KEY_PASSWORD=%s %s start >&2",
                       SCRAM_USER, SCRAM_PASSWORD, KEY_PASSWORD, kafka_local);
    if (st != 0) TH_FAIL("secure broker did not start on port %d (status %d; log in %s)", port, st, broker_dir);
    fprintf(stderr, "secure broker up in %.1f s: PLAINTEXT %d, SASL_SSL %d, SSL %d\n", th_now() - t0, port,
            port + 2, port + 3);
    /* The harness (topics, producers, readers) speaks PLAINTEXT to the same broker. */
    char b[64];
    snprintf(b, sizeof(b), "127.0.0.1:%d", port);
    setenv("TALLY_BOOTSTRAP", b, 1);
}

/* th_engine_init with bootstrap.servers pointing at one of the secure listeners. */
static void engine_init_at(th_engine_t *e, int listener_port, const char *app, const char *in, const char *out,
                           const char *extra) {
    char saved[64], b[64];
    snprintf(saved, sizeof(saved), "%s", getenv("TALLY_BOOTSTRAP"));
    snprintf(b, sizeof(b), "127.0.0.1:%d", listener_port);
    setenv("TALLY_BOOTSTRAP", b, 1);
    th_engine_init(e, app, in, out, extra);
    setenv("TALLY_BOOTSTRAP", saved, 1);
}

static const char *sasl_props(const char *password, const char *ca) {
    static char buf[1024];
    snprintf(buf, sizeof(buf),
             "kafka.security.protocol=SASL_SSL\nkafka.sasl.mechanisms=SCRAM-SHA-512\nkafka.sasl.username=%s\n"
             "kafka.sasl.password=%s\nkafka.ssl.ca.location=%s/%s.pem\n",
             SCRAM_USER, password, certs, ca);
    return buf;
}

static const char *mtls_props(const char *ca, const char *client) {
    static char buf[1024];
    int n = snprintf(buf, sizeof(buf),
                     "kafka.security.protocol=SSL\nkafka.ssl.ca.location=%s/%s.pem\n"
                     "kafka.ssl.certificate.location=%s/%s.pem\nkafka.ssl.key.location=%s/%s.key\n",
                     certs, ca, certs, client, certs, client);
    if (strcmp(client, "client") == 0) /* the trusted client key is encrypted */
        snprintf(buf + n, sizeof(buf) - (size_t)n, "kafka.ssl.key.password=%s\n", KEY_PASSWORD);
    return buf;
}

/* (e) No secret in the engine's log or in --check-config, which prints masked_key (when not NULL)
 * as ********. */
static void check_no_secrets(th_engine_t *e, const char *masked_key) {
    static const char *const secrets[] = {SCRAM_PASSWORD, WRONG_PASSWORD, KEY_PASSWORD};
    char out[320];
    snprintf(out, sizeof(out), "%s/check-config.out", e->dir);
    ASSERT_EQ(th_system("%s --config %s --check-config >%s 2>&1", th_tally_bin(), e->conf, out), 0);
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        if (th_system("grep -qF -- '%s' %s", secrets[i], e->log) == 0) TH_FAIL("secret %s is in %s", secrets[i], e->log);
        if (th_system("grep -qF -- '%s' %s", secrets[i], out) == 0) TH_FAIL("secret %s is in --check-config output", secrets[i]);
    }
    if (masked_key && th_system("grep -qxF 'kafka.%s=********' %s", masked_key, out) != 0) {
        th_system("cat %s >&2", out);
        TH_FAIL("--check-config does not print kafka.%s masked", masked_key);
    }
}

/* (a), (b): the engine counts over the secure listener exactly. */
static void count_exactly(const char *name, int listener_port, const char *props, const char *masked_key) {
    const char *in = th_unique("sec-in"), *out = th_unique("sec-out"), *app = th_unique("sec");
    th_create_topic(in, 2);
    th_create_topic(out, 2);
    th_counts_t *truth = th_counts_new();
    rd_kafka_t *p = th_producer();
    const char *lines[] = {"Hello World!", "cat dog cat", "dog cat dog", "wizeline java"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        th_counts_add_line(truth, lines[i], strlen(lines[i]));
        th_produce(p, in, -1, NULL, 0, lines[i], strlen(lines[i]));
    }
    th_flush_destroy(p);
    th_produce_words(in, 500, 11, 40, truth);

    th_engine_t e;
    engine_init_at(&e, listener_port, app, in, out, props);
    double t0 = th_now();
    th_engine_start(&e);
    live = &e;
    th_wait_committed(app, in, 90, &e);
    double t_commit = th_now() - t0;
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    live = NULL;
    th_output_stats_t st = th_check_output(out, truth, 1);
    ASSERT_EQ(st.words, (long)th_counts_size(truth));
    check_no_secrets(&e, masked_key);
    fprintf(stderr, "%s: %ld words exact over 127.0.0.1:%d, input committed %.1f s after start\n", name, st.words,
            listener_port, t_commit);
    th_counts_destroy(truth);
}

/* (c), (d): the engine refuses to go on, within REFUSE_WITHIN_S, naming why. */
static void refused(const char *name, int listener_port, const char *props, const char *must_say,
                    const char *masked_key) {
    const char *in = th_unique("sec-in"), *out = th_unique("sec-out"), *app = th_unique("sec");
    th_create_topic(in, 1);
    th_create_topic(out, 1);
    th_engine_t e;
    engine_init_at(&e, listener_port, app, in, out, props);
    double t0 = th_now();
    th_engine_start(&e);
    live = &e;
    int st = th_engine_wait(&e, REFUSE_WITHIN_S);
    double took = th_now() - t0;
    if (st < 0) {
        th_engine_dump_log(&e, 30);
        TH_FAIL("%s: the engine still runs %.0f s after start (it should stop at once)", name, REFUSE_WITHIN_S);
    }
    live = NULL;
    fprintf(stderr, "%s: exit status %d after %.2f s\n", name, st, took);
    th_system("grep -m1 'ERROR \\[ctl\\]' %s | cut -c1-400 >&2", e.log);
    ASSERT_EQ(st, 1);
    if (th_system("grep 'ERROR \\[ctl\\]' %s | grep -q 'cannot connect to Kafka'", e.log) != 0 ||
        th_system("grep 'ERROR \\[ctl\\]' %s | grep -qiE '%s'", e.log, must_say) != 0) {
        th_engine_dump_log(&e, 30);
        TH_FAIL("%s: the log does not say 'cannot connect to Kafka' and /%s/", name, must_say);
    }
    check_no_secrets(&e, masked_key);
}

int main(void) {
    th_bootstrap(); /* the kafka suite's rule: no broker configured, skip */
    broker_start();
    const int sasl_port = port + 2, ssl_port = port + 3;

    count_exactly("(a) SASL_SSL SCRAM-SHA-512", sasl_port, sasl_props(SCRAM_PASSWORD, "ca"), "sasl.password");
    count_exactly("(b) mTLS", ssl_port, mtls_props("ca", "client"), "ssl.key.password");

    /* librdkafka's own configuration dump (debug=conf) must redact too. */
    char props[2048];
    snprintf(props, sizeof(props), "%slog.level=debug\nkafka.debug=conf,security\n", sasl_props(WRONG_PASSWORD, "ca"));
    refused("(c) wrong password", sasl_port, props, "authentication", "sasl.password");
    refused("(d) untrusted client certificate", ssl_port, mtls_props("ca", "untrusted"), "certificate", NULL);
    refused("(d) untrusted broker CA", ssl_port, mtls_props("other-ca", "client"), "certificate verify failed",
            "ssl.key.password");
    return 0;
}
