/* SPDX-License-Identifier: MIT */
/* topology=distributed on the real broker (issue 12): instances of one job share the count through
 * the internal topics <app>-repartition and <app>-changelog.
 *   instances  3 instances (6 input partitions, 12 repartition partitions), input flowing throughout:
 *              SIGKILL one, restart it with an empty state.dir (it restores from the changelog),
 *              start a fourth, SIGTERM one, SIGKILL two at once, restart them; the whole
 *              read_committed output exact and strictly increasing per word, nothing extra, no
 *              transaction left open, the repartition topic trimmed
 *   zombie     2 instances; one SIGSTOPped until the group gave its partitions to the other, then
 *              SIGCONT: its stale epoch never commits (the broker refuses its offsets under the group's
 *              new generation, KIP-447, or its consumer first learns that the session expired and the
 *              epoch is dropped), it exits fenced (3) or rejoins; the output stays exact and strictly
 *              increasing
 *   bad        wrong partition count of either internal topic, a changelog not compacted, a
 *              state.dir of the other topology (exit 2, the log says which key), two instances with
 *              the same instance.id (the first exits 3, fenced; the output stays exact) */
#include <signal.h>
#include <unistd.h>

#include "harness.h"

enum { REPARTITION = 12, INPUT_PARTS = 6 };

/* The settings every instance of a test shares, and its own instance.id and trigger. The session is
 * short so that the group notices a killed instance soon (the broker's minimum is 6 s). */
static void instance_init(th_engine_t *e, const char *app, const char *in, const char *out, const char *id,
                          int trigger_ms, const char *extra) {
    char conf[1024];
    snprintf(conf, sizeof(conf),
             "topology=distributed\ninstance.id=%s\nrepartition.partitions=%d\nkafka.session.timeout.ms=10000\n"
             "trigger.interval.ms=%d\n%s",
             id, REPARTITION, trigger_ms, extra ? extra : "");
    th_engine_init(e, app, in, out, conf);
    fprintf(stderr, "instance %s: log %s\n", id, e->log);
}

/* Waits until an instance that should be running has committed `more` epochs after now. */
static void wait_commits(th_engine_t *e, int more) {
    th_engine_wait_log(e, "committed: ", th_engine_log_count(e, "committed: ") + more, 180);
}

/* True when one ERROR line of text holds every string of says (the INFO lines at start name the
 * same keys, so only the error counts). */
static int error_says(const char *text, const char *const *says) {
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *end = strchr(l, '\n');
        size_t len = end ? (size_t)(end - l) : strlen(l);
        if (!memmem(l, len, " ERROR ", 7)) continue;
        int all = 1;
        for (int i = 0; all && says[i]; i++) all = memmem(l, len, says[i], strlen(says[i])) != NULL;
        if (all) return 1;
    }
    return 0;
}

/* The log written since byte `from`. */
static char *log_since(th_engine_t *e, size_t from) {
    size_t len = 0;
    char *log = th_read_file(e->log, &len);
    ASSERT(log);
    if (from > len) from = len;
    memmove(log, log + from, len - from + 1);
    return log;
}

static size_t log_size(th_engine_t *e) {
    size_t len = 0;
    free(th_read_file(e->log, &len));
    return len;
}

static void changelog_name(const char *app, char *buf, size_t n) { snprintf(buf, n, "%s-changelog", app); }
static void repartition_name(const char *app, char *buf, size_t n) { snprintf(buf, n, "%s-repartition", app); }

/* The "assigned N partition(s)" lines of the instances' current runs, summed: grows when the group
 * hands out partitions again. */
static int assignments(th_engine_t *const *e, int n) {
    int sum = 0;
    for (int i = 0; i < n; i++) sum += th_engine_log_count(e[i], "] assigned ");
    return sum;
}

static void wait_reassigned(th_engine_t *const *e, int n, int before, const char *after) {
    double deadline = th_now() + 120;
    while (assignments(e, n) <= before) {
        for (int i = 0; i < n; i++) th_engine_require_alive(e[i], after);
        if (th_now() > deadline) TH_FAIL("the group did not hand out partitions again within 120 s %s", after);
        usleep(200000);
    }
}

/* The counts the restores of the current run read, summed over its "restored <changelog>: N counts"
 * lines; -1 without such a line. */
static long restored_counts(th_engine_t *e, const char *changelog) {
    char needle[300];
    snprintf(needle, sizeof(needle), "restored %s: ", changelog);
    char *log = th_engine_current_log(e);
    long n = -1;
    for (const char *q = log; (q = strstr(q, needle)); q += strlen(needle))
        n = (n < 0 ? 0 : n) + strtol(q + strlen(needle), NULL, 10);
    free(log);
    return n;
}

/* Every partition of the repartition topic that received records has had the consumed ones deleted. */
static void check_trimmed(const char *app) {
    char topic[300];
    repartition_name(app, topic, sizeof(topic));
    int used = 0;
    int64_t kept = 0, total = 0;
    for (int p = 0; p < REPARTITION; p++) {
        int64_t lo, hi;
        th_watermarks(topic, p, &lo, &hi);
        if (hi == 0) continue;
        used++;
        kept += hi - lo;
        total += hi;
        if (lo == 0) TH_FAIL("%s[%d] holds all its %lld records: the consumed ones were never deleted", topic, p, (long long)hi);
    }
    ASSERT_GT(used, 0);
    fprintf(stderr, "%s trimmed: %d partitions used, %lld of %lld records left\n", topic, used, (long long)kept,
            (long long)total);
}

static void run_instances(void) {
    const char *in = th_unique("dist-in"), *out = th_unique("dist-out"), *app = th_unique("dist");
    char changelog[300];
    changelog_name(app, changelog, sizeof(changelog));
    th_create_topic(in, INPUT_PARTS);
    th_create_topic(out, 4);
    double t0 = th_now();

    /* A killed instance's open transaction holds back every read_committed reader of the partitions
     * it wrote (stage 2 of all the others) until the broker aborts it: 10 s here, 60 s by default. */
    const char *extra = "transaction.timeout.ms=10000\n";
    th_engine_t a, b, c, d;
    instance_init(&a, app, in, out, "a", 500, extra);
    instance_init(&b, app, in, out, "b", 750, extra);
    instance_init(&c, app, in, out, "c", 1000, extra);
    instance_init(&d, app, in, out, "d", 600, extra);
    th_feeder_t f = {.topics = {in}, .prefix = "d", .vocab = 3000, .max_words = 4, .burst = 50, .pause_us = 50000};
    th_feeder_start(&f);
    th_engine_start(&a);
    th_engine_start(&b);
    th_engine_start(&c);
    wait_commits(&a, 2);
    wait_commits(&b, 2);
    wait_commits(&c, 2);
    int kills = 0;

    /* 1. SIGKILL b; a and c take its partitions once its session expired. */
    th_engine_t *ac[] = {&a, &c};
    int before = assignments(ac, 2);
    ASSERT_EQ(th_engine_signal_wait(&b, SIGKILL, 30), 128 + SIGKILL);
    kills++;
    fprintf(stderr, "%.0f s: SIGKILLed b\n", th_now() - t0);
    wait_reassigned(ac, 2, before, "after b was killed");
    wait_commits(&a, 2);
    wait_commits(&c, 2);

    /* 2. b again, from an empty state.dir: it restores its repartition partitions from the changelog. */
    ASSERT_EQ(th_system("rm -rf %s/state", b.dir), 0);
    th_engine_start(&b);
    fprintf(stderr, "%.0f s: restarted b with an empty state.dir\n", th_now() - t0);
    wait_commits(&b, 2);

    /* 3. A fourth instance takes a share. */
    th_engine_start(&d);
    wait_commits(&d, 2);
    fprintf(stderr, "%.0f s: d counts\n", th_now() - t0);
    /* b has restored counts by now: it holds repartition partitions after one of the two rebalances
     * (the group may first give it input partitions only). */
    char needle[300];
    snprintf(needle, sizeof(needle), "restored %s: ", changelog);
    th_engine_wait_log(&b, needle, 1, 120);
    long restored = restored_counts(&b, changelog);
    if (restored <= 0) {
        th_engine_dump_log(&b, 30);
        TH_FAIL("b restored %ld counts from %s into its empty state.dir", restored, changelog);
    }
    fprintf(stderr, "%.0f s: b restored %ld counts into its empty state.dir\n", th_now() - t0, restored);

    /* 4. SIGTERM c: it commits the work in hand and leaves the group. */
    int st = th_engine_signal_wait(&c, SIGTERM, 60);
    if (st != 0) th_engine_dump_log(&c, 30);
    ASSERT_EQ(st, 0);
    kills++;
    fprintf(stderr, "%.0f s: SIGTERMed c (exit 0)\n", th_now() - t0);
    wait_commits(&a, 2);

    /* 5. SIGKILL a and b at once: d goes on alone. */
    th_engine_t *dd[] = {&d};
    before = assignments(dd, 1);
    kill(a.pid, SIGKILL);
    kill(b.pid, SIGKILL);
    ASSERT_EQ(th_engine_wait(&a, 30), 128 + SIGKILL);
    ASSERT_EQ(th_engine_wait(&b, 30), 128 + SIGKILL);
    kills += 2;
    fprintf(stderr, "%.0f s: SIGKILLed a and b\n", th_now() - t0);
    wait_reassigned(dd, 1, before, "after a and b were killed");
    wait_commits(&d, 3);

    /* 6. a and b back with their (now stale) state: they go on from their changelog positions. */
    th_engine_start(&a);
    th_engine_start(&b);
    wait_commits(&a, 2);
    wait_commits(&b, 2);
    wait_commits(&d, 1);
    th_feeder_stop(&f);
    fprintf(stderr, "%.0f s: input stopped after %ld lines\n", th_now() - t0, f.lines);

    th_engine_t *alive[] = {&a, &b, &d};
    th_wait_output(out, f.truth, 240, alive, 3);
    for (int i = 0; i < 3; i++) {
        st = th_engine_signal_wait(alive[i], SIGTERM, 60);
        if (st != 0) th_engine_dump_log(alive[i], 30);
        ASSERT_EQ(st, 0);
    }
    double secs = th_now() - t0;

    th_output_stats_t s = th_check_output(out, f.truth, 1);
    ASSERT_EQ(s.words, (long)th_counts_size(f.truth));
    ASSERT_EQ(s.duplicates, 0);
    check_trimmed(app);
    fprintf(stderr, "distributed instances: %ld lines in, %ld output records, %ld words exact; survived %d kills "
            "(3 SIGKILL, 1 SIGTERM) and an empty-state restore of %ld counts, 4 instances, in %.0f s\n",
            f.lines, s.records, s.words, kills, restored, secs);
    th_counts_destroy(f.truth);
}

static void run_zombie(void) {
    const char *in = th_unique("distz-in"), *out = th_unique("distz-out"), *app = th_unique("distz");
    th_create_topic(in, 4);
    th_create_topic(out, 2);
    /* The stopped instance's transaction must still be open when it wakes (transaction.timeout.ms, 60 s,
     * longer than the stop): what stops its commit is then the group's new generation (KIP-447) or
     * its own consumer's session timeout, whichever it meets first, not the broker's abort. */
    th_engine_t a, b;
    instance_init(&a, app, in, out, "za", 500, NULL);
    instance_init(&b, app, in, out, "zb", 700, NULL);
    th_feeder_t f = {.topics = {in}, .prefix = "z", .vocab = 1000, .max_words = 4, .burst = 50, .pause_us = 50000};
    th_feeder_start(&f);
    th_engine_start(&a);
    th_engine_start(&b);
    wait_commits(&a, 3);
    wait_commits(&b, 3);

    th_engine_t *bb[] = {&b};
    int before = assignments(bb, 1);
    int commits_a = th_engine_log_count(&a, "committed: ");
    kill(a.pid, SIGSTOP);
    double stopped = th_now();
    fprintf(stderr, "SIGSTOPped a after %d commits\n", commits_a);
    wait_reassigned(bb, 1, before, "while a was stopped");
    wait_commits(&b, 2);
    /* At least the session, plus time for b to count on with a's partitions. */
    while (th_now() - stopped < 15) usleep(200000);
    size_t at_cont = log_size(&a);
    kill(a.pid, SIGCONT);
    fprintf(stderr, "SIGCONTed a after %.0f s\n", th_now() - stopped);

    /* a either exits fenced or rejoins the group (a new assignment); either way its stale epoch
     * never commits, which the output check below decides. */
    double deadline = th_now() + 120;
    int st = -1, rejoined = 0;
    while (st < 0 && !rejoined) {
        if (th_now() > deadline) {
            th_engine_dump_log(&a, 40);
            TH_FAIL("a neither exited nor rejoined within 120 s of SIGCONT");
        }
        st = th_engine_wait(&a, 0.5);
        char *log = log_since(&a, at_cont);
        rejoined = st < 0 && strstr(log, "] assigned ") != NULL;
        free(log);
    }
    char *after = log_since(&a, at_cont);
    const char *const says_fenced[] = {"fenced", NULL};
    if (st >= 0) {
        if (st != 3 || !error_says(after, says_fenced)) th_engine_dump_log(&a, 40);
        if (st != 3) TH_FAIL("a exited with status %d after SIGCONT (%s), not 3 (fenced) and did not rejoin", st, a.log);
        ASSERT(error_says(after, says_fenced));
        ASSERT_EQ(th_engine_log_count(&a, "committed: "), commits_a);
        fprintf(stderr, "a exited fenced (3) without another commit\n");
    } else {
        /* It learnt that its partitions had moved (lost) or that its commit was refused, before it joined again. */
        const char *why = strstr(after, "] lost ") ? "lost its partitions"
                        : strstr(after, "fenced") ? "fenced"
                        : strstr(after, "send_offsets_to_transaction failed") ? "offsets refused" : NULL;
        if (!why) {
            th_engine_dump_log(&a, 40);
            TH_FAIL("a rejoined without logging that its partitions were lost or its commit refused");
        }
        /* Its epoch in hand when it was stopped belongs to a generation the group has left: no commit
         * may succeed before it learnt so. */
        const char *first_commit = strstr(after, "committed: "), *noticed = strstr(after, "] assigned ");
        if (first_commit && first_commit < noticed) {
            th_engine_dump_log(&a, 40);
            TH_FAIL("a committed an epoch after SIGCONT before it rejoined: its stale epoch got through");
        }
        fprintf(stderr, "a rejoined the group (%s)\n", why);
    }
    free(after);
    sleep(3);
    th_feeder_stop(&f);

    th_engine_t *alive[] = {&b, &a};
    int n = st < 0 ? 2 : 1;
    th_wait_output(out, f.truth, 240, alive, n);
    for (int i = 0; i < n; i++) {
        int s2 = th_engine_signal_wait(alive[i], SIGTERM, 60);
        if (s2 != 0) th_engine_dump_log(alive[i], 30);
        ASSERT_EQ(s2, 0);
    }
    th_output_stats_t s = th_check_output(out, f.truth, 1);
    ASSERT_EQ(s.words, (long)th_counts_size(f.truth));
    fprintf(stderr, "zombie: %ld lines in, %ld output records, %ld words exact, a %s\n", f.lines, s.records, s.words,
            st < 0 ? "rejoined" : "exited fenced");
    th_counts_destroy(f.truth);
}

/* An instance that must stop by itself at start with `status`, an error line of this run naming
 * every string of says. */
static void expect_refusal(th_engine_t *e, int status, const char *const *says) {
    size_t from = log_size(e);
    th_engine_start(e);
    int st = th_engine_wait(e, 90);
    if (st < 0) {
        th_engine_dump_log(e, 30);
        TH_FAIL("%s: still running 90 s after start, expected exit %d", e->log, status);
    }
    char *log = log_since(e, from);
    int said = error_says(log, says);
    free(log);
    if (st != status || !said) {
        th_engine_dump_log(e, 20);
        for (int i = 0; says[i]; i++) fprintf(stderr, "expected an ERROR line with \"%s\"\n", says[i]);
    }
    ASSERT_EQ(st, status);
    ASSERT(said);
}

static void run_bad(void) {
    char topic[300];
    /* Input and output topics for the instances refused at start. */
    const char *bin = th_unique("distb-in"), *bout = th_unique("distb-out");
    th_create_topic(bin, 2);
    th_create_topic(bout, 2);
    /* An internal topic with the wrong partition count: the repartition topic, then the changelog. */
    for (int changelog = 0; changelog < 2; changelog++) {
        const char *app = th_unique("distb-parts");
        if (changelog) {
            repartition_name(app, topic, sizeof(topic));
            th_create_topic(topic, REPARTITION);
            changelog_name(app, topic, sizeof(topic));
            const char *const compact[] = {"cleanup.policy=compact", NULL};
            th_create_topic_config(topic, 3, compact);
        } else {
            repartition_name(app, topic, sizeof(topic));
            th_create_topic(topic, 3);
        }
        th_engine_t e;
        instance_init(&e, app, bin, bout, "x", 500, NULL);
        const char *const says[] = {"repartition.partitions", topic, NULL};
        expect_refusal(&e, 2, says);
        fprintf(stderr, "%s with 3 partitions, repartition.partitions=%d: exit 2\n", topic, REPARTITION);
    }

    /* A changelog under delete retention, with the right partition count. */
    {
        const char *app = th_unique("distb-compact");
        changelog_name(app, topic, sizeof(topic));
        const char *const del[] = {"cleanup.policy=delete", NULL};
        th_create_topic_config(topic, REPARTITION, del);
        th_engine_t e;
        instance_init(&e, app, bin, bout, "x", 500, NULL);
        const char *const says[] = {"cleanup.policy", "compact", topic, NULL};
        expect_refusal(&e, 2, says);
        fprintf(stderr, "%s with cleanup.policy=delete: exit 2\n", topic);
    }

    /* Two instances with the same instance.id: the second fences the first, which exits 3; the
     * second counts on and nothing of the first after the fence reaches the output. */
    const char *in = th_unique("distb-in"), *out = th_unique("distb-out"), *app = th_unique("distb-same");
    th_create_topic(in, 2);
    th_create_topic(out, 2);
    th_feeder_t f = {.topics = {in}, .prefix = "s", .vocab = 300, .max_words = 3, .burst = 20, .pause_us = 50000};
    th_feeder_start(&f);
    th_engine_t first, second;
    instance_init(&first, app, in, out, "same", 500, NULL);
    instance_init(&second, app, in, out, "same", 500, NULL);
    th_engine_start(&first);
    wait_commits(&first, 2);
    th_engine_start(&second);
    int st = th_engine_wait(&first, 120);
    if (st != 3) {
        th_engine_dump_log(&first, 30);
        th_engine_dump_log(&second, 30);
    }
    ASSERT_EQ(st, 3);
    char *first_log = log_since(&first, 0);
    const char *const says_fenced[] = {"fenced", NULL};
    ASSERT(error_says(first_log, says_fenced));
    free(first_log);
    fprintf(stderr, "two instances with instance.id=same: the first exited 3, fenced\n");
    wait_commits(&second, 2);
    th_feeder_stop(&f);
    th_engine_t *alive[] = {&second};
    th_wait_output(out, f.truth, 180, alive, 1);
    ASSERT_EQ(th_engine_signal_wait(&second, SIGTERM, 60), 0);
    th_output_stats_t s = th_check_output(out, f.truth, 1);
    ASSERT_EQ(s.words, (long)th_counts_size(f.truth));

    /* The distributed instance's state.dir under topology=single: refused. */
    th_engine_append_conf(&second, "topology=single\n");
    const char *const says_topology[] = {"topology", NULL};
    expect_refusal(&second, 2, says_topology);
    fprintf(stderr, "a distributed state.dir with topology=single: exit 2\n");

    /* A single-topology state.dir under topology=distributed: refused. */
    {
        const char *sin = th_unique("distb-in"), *sout = th_unique("distb-out"), *sapp = th_unique("distb-single");
        th_create_topic(sin, 2);
        th_create_topic(sout, 2);
        th_counts_t *truth = th_counts_new();
        th_produce_words(sin, 2000, 3, 100, truth);
        th_engine_t e;
        th_engine_init(&e, sapp, sin, sout, NULL);
        th_engine_start(&e);
        th_wait_committed(sapp, sin, 120, &e);
        ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
        th_engine_append_conf(&e, "topology=distributed\ninstance.id=y\n");
        expect_refusal(&e, 2, says_topology);
        fprintf(stderr, "a single state.dir with topology=distributed: exit 2\n");
        th_counts_destroy(truth);
    }
    th_counts_destroy(f.truth);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    th_bootstrap();
    if (strcmp(mode, "instances") == 0) run_instances();
    else if (strcmp(mode, "zombie") == 0) run_zombie();
    else if (strcmp(mode, "bad") == 0) run_bad();
    else TH_FAIL("usage: test_distributed instances|zombie|bad (got \"%s\")", mode);
    return 0;
}
