/* SPDX-License-Identifier: MIT */
/* The command line without a broker: help texts, --check-config on every shipped file, and bad
 * configuration stopping before any connection with exit 2 and a message naming file, line, key,
 * value and what is allowed. */
#include <dirent.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static char dir[64];

/* Writes the body to a config file, runs tally on it, returns the exit status; stderr in dir/err. */
static int run_conf(const char *body, const char *args) {
    char path[128];
    snprintf(path, sizeof(path), "%s/job.properties", dir);
    FILE *f = fopen(path, "w");
    ASSERT(f);
    fputs(body, f);
    fclose(f);
    return th_system("cd %s && timeout 10 %s --config job.properties %s >out 2>err", dir, th_tally_bin(), args ? args : "");
}

static void expect_err(const char *needle) {
    if (th_system("grep -qF -- '%s' %s/err", needle, dir) != 0) {
        th_system("cat %s/err >&2", dir);
        TH_FAIL("stderr lacks: %s", needle);
    }
}

#define BASE "bootstrap.servers=127.0.0.1:1\napplication.id=cli\ninput.topic=in\noutput.topic=out\n"

int main(void) {
    snprintf(dir, sizeof(dir), "/tmp/tally-cli-XXXXXX");
    ASSERT(mkdtemp(dir));
    const char *bin = th_tally_bin();

    ASSERT_EQ(th_system("%s --help | grep -q -- '--config FILE'", bin), 0);
    ASSERT_EQ(th_system("%s --version | grep -q '^tally '", bin), 0);
    /* The allocator the build chose is the one malloc() runs on (not glibc's first in link order). */
    const char *alloc = getenv("TALLY_ALLOCATOR");
    ASSERT(alloc);
    if (strcmp(alloc, "mimalloc") == 0)
        ASSERT_EQ(th_system("%s --version | grep -E -q ', mimalloc [0-9.]+\\)$'", bin), 0);
    else
        ASSERT_EQ(th_system("%s --version | grep -q ', glibc malloc)$'", bin), 0);
    const char *keys[] = {"bootstrap.servers", "application.id", "input.topic", "output.topic", "sink", "state.dir",
                          "workers", "trigger.interval.ms", "processing.guarantee", "output.mode",
                          "starting.offsets", "fail.on.data.loss", "max.word.bytes", "state.rebuild"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        ASSERT_EQ(th_system("%s --help-config | grep -q '%s'", bin, keys[i]), 0);
    ASSERT_EQ(th_system("%s >/dev/null 2>&1", bin), 2);             /* no --config */
    ASSERT_EQ(th_system("%s --bogus >/dev/null 2>&1", bin), 2);

    /* Every shipped configuration validates. */
    const char *src = getenv("TALLY_SOURCE_DIR");
    ASSERT(src);
    char confdir[512];
    snprintf(confdir, sizeof(confdir), "%s/conf", src);
    DIR *d = opendir(confdir);
    ASSERT(d);
    int checked = 0;
    for (struct dirent *de; (de = readdir(d));) {
        size_t l = strlen(de->d_name);
        if (l < 12 || strcmp(de->d_name + l - 11, ".properties") != 0) continue;
        int st = th_system("%s --config %s/%s --check-config >/dev/null 2>&1", bin, confdir, de->d_name);
        if (st) TH_FAIL("--check-config %s exited %d", de->d_name, st);
        checked++;
    }
    closedir(d);
    ASSERT_GE(checked, 1);

    ASSERT_EQ(run_conf(BASE, "--check-config"), 0);
    expect_err("configuration OK");
    ASSERT_EQ(th_system("grep -q '^processing.guarantee=exactly_once' %s/out", dir), 0);

    ASSERT_EQ(run_conf(BASE "trigger.intervall.ms=100\n", NULL), 2);
    expect_err("job.properties:5: unknown key \"trigger.intervall.ms\" (did you mean \"trigger.interval.ms\"?)");

    ASSERT_EQ(run_conf(BASE "processing.guarantee=fast\n", NULL), 2);
    expect_err("job.properties:5: bad value \"fast\" for processing.guarantee");
    expect_err("exactly_once, at_least_once");

    ASSERT_EQ(run_conf(BASE "workers=-3\n", NULL), 2);
    expect_err("\"-3\" for workers");

    ASSERT_EQ(run_conf(BASE "fail.on.data.loss=maybe\n", NULL), 2);
    expect_err("fail.on.data.loss");

    ASSERT_EQ(run_conf("bootstrap.servers=x:1\ninput.topic=in\noutput.topic=out\n", NULL), 2);
    expect_err("missing required key \"application.id\"");

    ASSERT_EQ(run_conf("bootstrap.servers=x:1\napplication.id=a\ninput.topic=in\n", NULL), 2);
    expect_err("output.topic");
    ASSERT_EQ(run_conf("bootstrap.servers=x:1\napplication.id=a\ninput.topic=in\nsink=console\n", "--check-config"), 0);

    ASSERT_EQ(run_conf(BASE "kafka.group.id=other\n", NULL), 2);
    expect_err("job.properties:5: key \"kafka.group.id\" is not allowed");

    ASSERT_EQ(run_conf(BASE, "--set trigger.interval.ms=fast"), 2);
    expect_err("--set");
    expect_err("trigger.interval.ms");

    /* Secrets never reach --check-config's output. */
    ASSERT_EQ(run_conf(BASE "kafka.sasl.password=hunter2\n", "--check-config"), 0);
    ASSERT_NE(th_system("grep -q hunter2 %s/out %s/err", dir, dir), 0);

    ASSERT_EQ(run_conf(BASE "input.topic=\n", NULL), 2);

    /* Windows: valid keys pass --check-config; append without a watermark is refused with Spark's
     * reason first. */
    ASSERT_EQ(run_conf(BASE "window.size.ms=600000\nwatermark.delay.ms=60000\noutput.mode=append\n", "--check-config"), 0);
    ASSERT_EQ(run_conf("application.id=cli\ninput.path=/tmp\nsink=console\nwindow.size.ms=600000\n", "--check-config"), 2);
    expect_err("event.time=record with input.path");
    ASSERT_EQ(run_conf(BASE "output.mode=append\n", NULL), 2);
    expect_err("output.mode=append is not supported for word counts without windows and a watermark");
    expect_err("Append output mode not supported when there are streaming aggregations");
    expect_err("set window.size.ms and watermark.delay.ms");
    ASSERT_EQ(run_conf(BASE "window.size.ms=600000\noutput.mode=append\n", NULL), 2);
    expect_err("set watermark.delay.ms, or use output.mode=update");
    ASSERT_EQ(run_conf(BASE "window.size.ms=10\nwindow.slide.ms=11\n", NULL), 2);
    expect_err("the slide duration (11 ms) must be less than or equal to the window duration (10 ms)");
    ASSERT_EQ(run_conf(BASE "window.size.ms=-1\n", NULL), 2);
    expect_err("job.properties:5: bad value \"-1\" for window.size.ms");
    ASSERT_EQ(run_conf(BASE "window.size.ms=0\n", "--check-config"), 0); /* no windows: runs as before */
    ASSERT_EQ(th_system("rm -rf %s", dir), 0);
    return 0;
}
