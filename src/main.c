/* SPDX-License-Identifier: MIT */
/* The tally command: reads the configuration, then runs the engine until SIGTERM/SIGINT. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally/alloc.h"
#include "tally/config.h"
#include "tally/engine.h"
#include "tally/log.h"
#include <librdkafka/rdkafka.h>

#ifndef TALLY_VERSION
#define TALLY_VERSION "unknown"
#endif

static void usage(FILE *out) {
    fputs("Usage: tally --config FILE [--set key=value]... [--check-config]\n"
          "       tally --help | --help-config | --version\n"
          "\n"
          "Counts the words of the text lines on a Kafka topic (or in the files of a directory,\n"
          "input.path) and writes every changed count as {\"word\":\"<word>\",\"count\":<n>} to\n"
          "another topic, to files (CSV, JSON lines, Parquet) or to stdout, exactly once;\n"
          "with window.size.ms, per event-time window with a watermark (docs/windows.md);\n"
          "with topology=distributed, on many instances sharing the work through Kafka\n"
          "(docs/scaling.md).\n"
          "Runs until SIGTERM or SIGINT, which commit the work in hand and exit 0\n"
          "(with trigger.available.now=true, until the files present at start are counted).\n"
          "\n"
          "Options:\n"
          "  -c, --config FILE     Java-properties configuration file (see conf/, --help-config)\n"
          "  -s, --set KEY=VALUE   override one key of the file (repeatable; applied in order)\n"
          "      --check-config    validate, print the effective configuration, exit 0 or 2; no Kafka\n"
          "      --help-config     every configuration key with type, default, allowed values\n"
          "      --config-markdown the configuration reference in Markdown\n"
          "  -h, --help            this text\n"
          "  -V, --version         the version\n"
          "\n"
          "Exit status: 0 stopped by a signal after a clean commit; 1 Kafka, state or internal error;\n"
          "2 bad command line or configuration; 3 fenced by a newer instance with the same\n"
          "application.id; 4 input lost before it was read (fail.on.data.loss=true).\n",
          out);
}

int main(int argc, char **argv) {
    char alloc[96];
    /* SIGTERM/SIGINT wait (blocked) until the engine's handlers are in place, so a stop request
     * that arrives during start-up is answered with a clean stop instead of the default death. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    enum { OPT_CHECK = 256, OPT_HELP_CONFIG, OPT_MARKDOWN };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},      {"set", required_argument, NULL, 's'},
        {"check-config", no_argument, NULL, OPT_CHECK}, {"help-config", no_argument, NULL, OPT_HELP_CONFIG},
        {"config-markdown", no_argument, NULL, OPT_MARKDOWN},
        {"help", no_argument, NULL, 'h'},              {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL;
    char **sets = calloc((size_t)argc, sizeof(char *));
    int nsets = 0, check = 0, opt;
    if (!sets) return TALLY_EXIT_ERROR;
    while ((opt = getopt_long(argc, argv, "c:s:hV", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': file = optarg; break;
        case 's': sets[nsets++] = optarg; break;
        case OPT_CHECK: check = 1; break;
        case OPT_HELP_CONFIG: tally_config_print_help(stdout); free(sets); return 0;
        case OPT_MARKDOWN: tally_config_print_markdown(stdout); free(sets); return 0;
        case 'h': usage(stdout); free(sets); return 0;
        case 'V':
            printf("tally %s (librdkafka %s, %s)\n", TALLY_VERSION, rd_kafka_version_str(),
                   tally_alloc_describe(alloc, sizeof(alloc)));
            free(sets);
            return 0;
        default: usage(stderr); free(sets); return TALLY_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tally: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        free(sets);
        return TALLY_EXIT_USAGE;
    }
    if (!file) {
        fprintf(stderr, "tally: --config FILE is required (try conf/wordcount.properties)\n");
        free(sets);
        return TALLY_EXIT_USAGE;
    }

    tally_config_t conf;
    char err[1024];
    tally_config_init(&conf);
    int r = tally_config_load_file(&conf, file, err, sizeof(err));
    for (int i = 0; !r && i < nsets; i++) r = tally_config_set(&conf, sets[i], err, sizeof(err));
    if (!r && (r = tally_config_validate(&conf, err, sizeof(err)))) {
        char tmp[1024];
        snprintf(tmp, sizeof(tmp), "%s: %s", file, err);
        snprintf(err, sizeof(err), "%s", tmp);
    }
    free(sets);
    if (r) {
        fprintf(stderr, "tally: %s\n", err);
        tally_config_term(&conf);
        return TALLY_EXIT_USAGE;
    }
    if (check) {
        tally_config_print(&conf, stdout);
        fprintf(stderr, "tally: %s: configuration OK\n", file);
        tally_config_term(&conf);
        return 0;
    }
    tally_log_set_level((tally_log_level_t)conf.log_level);
    tally_info("allocator: %s", tally_alloc_describe(alloc, sizeof(alloc)));

    tally_engine_t *eng = NULL;
    r = tally_engine_new(&eng, &conf, err, sizeof(err));
    tally_config_term(&conf);
    if (r) {
        fprintf(stderr, "tally: %s\n", err);
        return TALLY_EXIT_ERROR;
    }
    int status = tally_engine_run(eng);
    tally_engine_destroy(eng);
    return status;
}
