/* SPDX-License-Identifier: MIT */
/* The engine: the control thread's libuv loop (trigger timer, consumer polling, signals, wake-ups
 * from other threads), the rebalance callback, and start-up and shutdown in their written order.
 * The work itself is below it: epoch.c (the epoch state machine), txn.c (Kafka transactions),
 * pipeline.c (threads and rings), recover.c (start positions and replay), ops/ (observability). */
#include "tally/engine.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include <xxhash.h>

#include "epoch.h"
#include "ops/observe.h"
#include "pipeline.h"
#include "recover.h"
#include "scaleout.h"
#include "tally/crashpoint.h"
#include "tally/err.h"
#include "tally/fault.h"
#include "tally/filesink.h"
#include "tally/filesource.h"
#include "tally/kafka.h"
#include "tally/log.h"
#include "tally/sourcelog.h"
#include "tally/txn.h"

typedef enum { ENG_STARTING = 0, ENG_RUNNING, ENG_STOPPING, ENG_STOPPED } eng_state_t;

struct tally_engine_s {
    tally_config_t conf;
    char txn_id[300];
    tally_fault_t fault;          /* errors of other threads; read by the loop */
    tally_kafka_hooks_t hooks;
    rd_kafka_t *consumer;
    tally_txn_t *txn;
    tally_state_t *state;
    tally_filesink_t *files;      /* sink=files, else NULL */
    tally_filesource_t *source;   /* input.path, else NULL (and no consumer) */
    tally_trim_t *trim;           /* topology=distributed: trims the repartition topic */
    tally_restore_t *restore;     /* distributed: the restore of the held partitions in progress, or NULL */
    uint64_t restored;            /* changelog records read by restores that ended */
    tally_pipeline_t pipe;
    tally_epoch_t ep;
    tally_obs_t *obs;
    eng_state_t st;
    int exit_status;
    _Atomic bool stop_requested;
    bool rejoin;                  /* an assignment missed partitions of the input topics */
    uint64_t rejoined_at;         /* uv_now() of the last rejoin: at most one per 10 s */
    uv_loop_t loop;
    uv_timer_t trigger_timer, poll_timer;
    bool trigger_missed;          /* the timer fired while an epoch was in flight */
    uv_signal_t sigint, sigterm;
    uv_async_t wake;              /* workers' "epoch done", faults, stop requests */
};

/* Any thread: a worker finished, a fault was raised. Also wakes a control thread waiting for workers. */
static void wake(void *opaque) {
    tally_engine_t *eng = opaque;
    pthread_mutex_lock(&eng->pipe.ep_mu);
    pthread_cond_broadcast(&eng->pipe.ep_cv);
    pthread_mutex_unlock(&eng->pipe.ep_mu);
    uv_async_send(&eng->wake);
}

static void view(void *opaque, tally_obs_view_t *v) {
    tally_engine_t *eng = opaque;
    static const tally_snap_state_t map[] = {TALLY_SNAP_STARTING, TALLY_SNAP_RUNNING, TALLY_SNAP_STOPPING,
                                             TALLY_SNAP_STOPPED};
    v->state = map[eng->st];
    v->exit_status = eng->exit_status;
    v->fenced = tally_fault_get(&eng->fault, NULL, 0) == TALLY_EXIT_FENCED || eng->exit_status == TALLY_EXIT_FENCED;
    v->epoch_pending = tally_epoch_in_flight(&eng->ep);
    v->committed_epoch = eng->ep.committed;
    v->commits = eng->ep.commits;
    v->aborts = eng->ep.aborts;
    tally_pipeline_view(&eng->pipe, v);
    v->restoring = eng->pipe.held ? eng->pipe.held->cnt : 0;
    v->restored = eng->restored + (eng->restore ? tally_restore_records(eng->restore) : 0);
    if (eng->source) {
        v->files_input = true;
        tally_filesource_stats(eng->source, &v->files);
    }
}

/* distributed: stops a restore in progress; its partitions stay held, and the next restore goes on
 * from the positions it stored. */
static void restore_stop(tally_engine_t *eng) {
    if (!eng->restore) return;
    char why[1024];
    int r = tally_restore_end(eng->restore, true, &eng->restored, why, sizeof(why));
    eng->restore = NULL;
    if (r && r != TALLY_ESTOPPED) tally_warn("%s (the next restore tries again)", why);
}

/* distributed: restores the held partitions in the background; the pipeline runs the others. */
static int restore_begin(tally_engine_t *eng) {
    if (eng->restore || !eng->pipe.held || eng->pipe.held->cnt == 0) return 0;
    return tally_restore_start(&eng->restore, &eng->conf, eng->state, eng->pipe.held, wake, eng);
}

/* The restore ended: its partitions (the held ones: a rebalance stops a restore before it changes
 * them) read from now on. */
static void restore_ended(tally_engine_t *eng) {
    if (!eng->restore || !tally_restore_finished(eng->restore)) return;
    char why[1024];
    int r = tally_restore_end(eng->restore, false, &eng->restored, why, sizeof(why));
    eng->restore = NULL;
    if (r) {
        tally_epoch_fail(&eng->ep, TALLY_EXIT_ERROR, "%s", why);
        return;
    }
    rd_kafka_topic_partition_list_t *done = rd_kafka_topic_partition_list_copy(eng->pipe.held);
    tally_kafka_log_partitions("restored, counting", done);
    tally_evtime_load_partitions(&eng->ep.time, &eng->pipe, eng->state, done);
    tally_pipeline_release(&eng->pipe, done);
    rd_kafka_topic_partition_list_destroy(done);
}

static void set_state(tally_engine_t *eng, eng_state_t s) {
    static const char *const names[] = {"starting", "running", "stopping", "stopped"};
    if (eng->st == s) return;
    tally_debug("engine %s -> %s", names[eng->st], names[s]);
    eng->st = s;
    if (eng->obs) tally_obs_state(eng->obs);
}

/* A fault raised by another thread fails the epoch machine; a failed machine stops the loop.
 * Returns true when the engine stopped. */
static bool stopped_by_failure(tally_engine_t *eng) {
    char msg[512];
    int status = tally_fault_get(&eng->fault, msg, sizeof(msg));
    if (status && !tally_epoch_failed(&eng->ep)) tally_epoch_fail(&eng->ep, status, "%s", msg);
    if (!tally_epoch_failed(&eng->ep)) return false;
    if (!eng->exit_status) eng->exit_status = eng->ep.status ? eng->ep.status : TALLY_EXIT_ERROR;
    set_state(eng, ENG_STOPPED);
    uv_stop(&eng->loop);
    return true;
}

/* The group consumer failed for good: the engine stops with the cause. Returns false when it has not. */
static bool consumer_failed(tally_engine_t *eng) {
    char why[512];
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(eng->consumer, why, sizeof(why));
    if (!orig) return false;
    if (tally_epoch_failed(&eng->ep)) return true;
    if (orig == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID && atomic_load(&eng->hooks.session_expired))
        /* Not a newer instance: restartable (status 1), so a supervisor restarts it. */
        tally_epoch_fail(&eng->ep, TALLY_EXIT_ERROR, TALLY_KAFKA_SELF_FENCED ": %s", why);
    else /* kafka.c's error callback classifies the same way when the error reaches it instead */
        tally_epoch_fail(&eng->ep, tally_txn_code_is_fenced(orig) ? TALLY_EXIT_FENCED : TALLY_EXIT_ERROR,
                         "the group consumer failed for good (restart to go on from the last commit): %s", why);
    return true;
}

/* Assignment changes are applied between epochs: the pipeline commits the epoch in hand and stops
 * (after a loss it drops what is uncommitted instead), the partition set changes, and it starts
 * again. Partitions that stay are sought back to their committed offsets. */
static void on_rebalance(void *opaque, rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts) {
    tally_engine_t *eng = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    bool assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    bool lost = !assign && rd_kafka_assignment_lost(rk);
    tally_kafka_log_partitions(assign ? "assigned" : lost ? "lost" : "revoked", parts);
    restore_stop(eng);

    /* A consumer that failed for good (fenced) loses its partitions first: nothing can commit any
     * more, so stop now rather than drain or abort (an abort waits out every queued output record:
     * 45 s to minutes, seen with the broker stalled). The broker aborts the open transaction. */
    if (consumer_failed(eng)) stopped_by_failure(eng);
    if (eng->pipe.up && !tally_epoch_failed(&eng->ep)) {
        if (lost) tally_epoch_drop(&eng->ep);
        else tally_epoch_drain(&eng->ep);
    }
    bool going_on = eng->st < ENG_STOPPING && !stopped_by_failure(eng);
    if (eng->pipe.up) tally_pipeline_kill(&eng->pipe);
    if (!going_on && eng->st == ENG_STOPPED) {
        if (cooperative) {
            rd_kafka_error_t *e = assign ? NULL : rd_kafka_incremental_unassign(rk, parts);
            if (e) rd_kafka_error_destroy(e);
        } else rd_kafka_assign(rk, NULL);
        return;
    }
    /* distributed: the tables may hold counts of repartition partitions that left, which their next
     * owner moves on: drop them (the state store is read again on a miss). */
    if (going_on && !assign && eng->conf.topology == TALLY_TOPOLOGY_DISTRIBUTED && tally_pipeline_reload(&eng->pipe, eng->state)) {
        tally_epoch_fail(&eng->ep, TALLY_EXIT_ERROR, "cannot reload the state after a revocation");
        stopped_by_failure(eng);
        going_on = false;
    }
    /* Partitions that stay, at their committed offsets, and (on assign) the new ones after them. */
    rd_kafka_topic_partition_list_t *keep = tally_pipeline_offsets(&eng->pipe, false, assign ? NULL : parts);
    rd_kafka_topic_partition_list_t *all = rd_kafka_topic_partition_list_copy(keep);
    int r = 0, status = TALLY_EXIT_ERROR;
    char why[1024] = "";
    if (assign && going_on) {
        bool stored = false;
        r = tally_recover_assignment(&eng->conf, eng->consumer, eng->state, eng->ep.committed, eng->files, parts, &stored, &status,
                                     why, sizeof(why));
        if (!r && stored && tally_pipeline_reload(&eng->pipe, eng->state)) {
            snprintf(why, sizeof(why), "cannot reload the state after recovery");
            r = TALLY_ESTATE;
        }
        for (int i = 0; !r && i < parts->cnt; i++)
            rd_kafka_topic_partition_list_add(all, parts->elems[i].topic, parts->elems[i].partition)->offset =
                parts->elems[i].offset;
    }
    if (!r && eng->conf.topology == TALLY_TOPOLOGY_DISTRIBUTED) {
        /* Repartition partitions new to this instance are held until their state is restored;
         * those that leave are no longer restored. */
        if (!eng->pipe.held) eng->pipe.held = rd_kafka_topic_partition_list_new(8);
        for (int i = 0; i < parts->cnt; i++) {
            if (!assign) rd_kafka_topic_partition_list_del(eng->pipe.held, parts->elems[i].topic, parts->elems[i].partition);
            else if (tally_scaleout_is_repartition(&eng->conf, parts->elems[i].topic))
                rd_kafka_topic_partition_list_add(eng->pipe.held, parts->elems[i].topic, parts->elems[i].partition);
        }
    }
    tally_pipeline_free_parts(&eng->pipe);
    if (!r && going_on) r = tally_pipeline_prepare(&eng->pipe, eng->consumer, all, eng->ep.epoch);
    if (!r) {
        rd_kafka_error_t *e = NULL;
        rd_kafka_resp_err_t ee = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (cooperative) e = assign ? rd_kafka_incremental_assign(rk, parts) : rd_kafka_incremental_unassign(rk, parts);
        else ee = rd_kafka_assign(rk, assign ? all : NULL);
        if (e || ee) {
            snprintf(why, sizeof(why), "%s failed: %s", assign ? "assign" : "unassign",
                     e ? rd_kafka_error_string(e) : rd_kafka_err2str(ee));
            if (e) rd_kafka_error_destroy(e);
            r = TALLY_EKAFKA;
        }
    }
    /* librdkafka pauses and resumes partitions that stay around a rebalance and may resume fetching
     * past records that were queued but never read (seen in tests/test_scale.c with 2.0.2). */
    if (!r && cooperative && going_on) r = tally_pipeline_seek(&eng->pipe, keep);
    if (!r && going_on && eng->pipe.nparts > 0)
        r = tally_epoch_start_pipeline(&eng->ep);
    if (!r && going_on) r = restore_begin(eng);
    rd_kafka_topic_partition_list_destroy(keep);
    rd_kafka_topic_partition_list_destroy(all);
    if (r) {
        tally_epoch_fail(&eng->ep, status, "%s", *why ? why : tally_err_str(r));
        stopped_by_failure(eng);
        if (!cooperative) rd_kafka_assign(rk, NULL);
        return;
    }
    if (!going_on) return;
    tally_epoch_resume(&eng->ep);
    /* A static member that rejoins gets its old assignment back without a rebalance, so partitions
     * added while this instance was down would never be assigned: rejoin, but not in a storm while a
     * predecessor being fenced still holds some. */
    int missing = assign && eng->conf.topology == TALLY_TOPOLOGY_SINGLE
                      ? tally_kafka_unassigned(rk, eng->conf.input_topics, eng->conf.input_topic_cnt) : 0;
    if (missing > 0 && !eng->rejoin && (!eng->rejoined_at || uv_now(&eng->loop) - eng->rejoined_at > 10000)) {
        tally_warn("%d partition(s) of the input topics are not assigned to this instance (added while it was "
                   "down?): rejoining the group", missing);
        eng->rejoin = true;
    }
}

/* ---- the loop ---- */

/* The input topics and, distributed, the repartition topic: one group reads both stages. */
static int subscribe_topics(tally_engine_t *eng) {
    const tally_config_t *c = &eng->conf;
    if (c->topology == TALLY_TOPOLOGY_SINGLE) return tally_kafka_subscribe(eng->consumer, c->input_topics, c->input_topic_cnt);
    char repartition[300];
    tally_scaleout_topic(c, false, repartition, sizeof(repartition));
    char **topics = calloc((size_t)c->input_topic_cnt + 1, sizeof(char *));
    if (!topics) return TALLY_ENOMEM;
    memcpy(topics, c->input_topics, (size_t)c->input_topic_cnt * sizeof(char *));
    topics[c->input_topic_cnt] = repartition;
    int r = tally_kafka_subscribe(eng->consumer, topics, c->input_topic_cnt + 1);
    free(topics);
    return r;
}

/* The written order: the last epoch committed and the threads joined, the group left, nothing open. */
static void shutdown_engine(tally_engine_t *eng) {
    if (eng->st >= ENG_STOPPING) return;
    set_state(eng, ENG_STOPPING);
    restore_stop(eng);
    tally_info("stopping: committing the work in hand");
    tally_epoch_drain(&eng->ep);
    if (stopped_by_failure(eng)) return;
    uv_timer_stop(&eng->trigger_timer);
    if (eng->consumer) rd_kafka_consumer_close(eng->consumer);
    tally_txn_failure_t f;
    if (tally_txn_abort(eng->txn, &f) != TALLY_TXN_OK) tally_warn("%s", f.why);
    set_state(eng, ENG_STOPPED);
    uv_stop(&eng->loop);
}

static void on_trigger(uv_timer_t *t) {
    tally_engine_t *eng = t->data;
    if (eng->st != ENG_RUNNING) return;
    /* An epoch longer than the interval: the next starts as soon as it ends (Spark's rule for a
     * processing-time trigger), not at the tick after, which would add up to an interval to the
     * latency of a loaded engine. */
    eng->trigger_missed = tally_epoch_in_flight(&eng->ep);
    tally_epoch_trigger(&eng->ep);
    if (stopped_by_failure(eng)) return;
    if (eng->source && tally_filesource_done(eng->source) && !tally_epoch_in_flight(&eng->ep)) {
        tally_info("trigger.available.now: every file present at start is counted");
        shutdown_engine(eng);
    }
}

static void on_wake(uv_async_t *h) {
    tally_engine_t *eng = h->data;
    if (eng->st == ENG_STOPPED || stopped_by_failure(eng)) return;
    restore_ended(eng);
    if (stopped_by_failure(eng)) return;
    tally_epoch_poll(&eng->ep);
    if (stopped_by_failure(eng)) return;
    if (atomic_load(&eng->stop_requested) && eng->st == ENG_RUNNING) shutdown_engine(eng);
    else if (!tally_epoch_in_flight(&eng->ep) && (atomic_exchange(&eng->pipe.epoch_wanted, false) || eng->trigger_missed))
        on_trigger(&eng->trigger_timer);
    else if (!tally_epoch_in_flight(&eng->ep) && eng->source && eng->conf.trigger_available_now)
        on_trigger(&eng->trigger_timer); /* no need to wait for the timer: the next files are there */
}

static void on_poll(uv_timer_t *t) {
    tally_engine_t *eng = t->data;
    if (eng->rejoin && eng->st == ENG_RUNNING) {
        eng->rejoin = false;
        eng->rejoined_at = uv_now(&eng->loop);
        rd_kafka_unsubscribe(eng->consumer);
        if (subscribe_topics(eng))
            tally_epoch_fail(&eng->ep, TALLY_EXIT_ERROR, "cannot subscribe again");
        stopped_by_failure(eng);
    }
    /* The consumer queue carries only group events and errors: records go to partition queues. */
    rd_kafka_message_t *m;
    while (eng->consumer && eng->st != ENG_STOPPED && (m = rd_kafka_consumer_poll(eng->consumer, 0))) {
        if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
            tally_epoch_fail(&eng->ep, TALLY_EXIT_ERROR, "input topic %s does not exist on %s",
                             m->rkt ? rd_kafka_topic_name(m->rkt) : "?", eng->conf.bootstrap_servers);
        else if (m->err == RD_KAFKA_RESP_ERR__FATAL) consumer_failed(eng);
        else if (m->err) tally_warn("consumer: %s", rd_kafka_message_errstr(m));
        else
            tally_epoch_fail(&eng->ep, TALLY_EXIT_ERROR, "internal error: a record of %s[%d] reached the consumer queue",
                             rd_kafka_topic_name(m->rkt), (int)m->partition);
        rd_kafka_message_destroy(m);
        stopped_by_failure(eng);
    }
    if (eng->st != ENG_STOPPED && tally_txn_producer(eng->txn)) rd_kafka_poll(tally_txn_producer(eng->txn), 0);
    if (eng->trim) tally_trim_poll(eng->trim);
}

static void on_signal(uv_signal_t *s, int signum) {
    tally_engine_t *eng = s->data;
    tally_info("received %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
    if (eng->st == ENG_STOPPING) {
        tally_warn("second signal: exiting without committing the work in hand");
        _exit(TALLY_EXIT_ERROR);
    }
    tally_engine_stop(eng);
}

void tally_engine_stop(tally_engine_t *eng) {
    atomic_store(&eng->stop_requested, true);
    uv_async_send(&eng->wake);
}

/* ---- set-up ---- */

static int recover_files(tally_engine_t *eng);

static int open_state(tally_engine_t *eng) {
    const char *dir = eng->conf.state_dir;
    char err[1024];
    /* A fenced predecessor holds the lock until its next commit fails and it exits. */
    if (tally_state_open_wait(&eng->state, dir, tally_budget_rocksdb_write_buffer(&eng->pipe.budget),
                              tally_budget_rocksdb_block_cache(&eng->pipe.budget), 120, &eng->stop_requested, err,
                              sizeof(err))) {
        tally_err("%s", err);
        return TALLY_ESTATE;
    }
    /* Half the epoch share bounds the committed epochs waiting for the writer, beside the one the
     * workers fill. */
    tally_state_set_writer(eng->state, eng->conf.state_write_interval_ms, (size_t)eng->pipe.budget.epoch / 2);
    uint64_t epoch = tally_state_epoch(eng->state);
    tally_info("state %s: %s, last committed epoch %" PRIu64, dir, tally_state_is_fresh(eng->state) ? "new" : "recovered",
               epoch);
    int r = tally_scaleout_check_state(&eng->conf, eng->state, err, sizeof(err));
    if (r) {
        tally_err("%s", err);
        tally_fault_raise(&eng->fault, TALLY_EXIT_USAGE, "%s", err);
        return r;
    }
    if (eng->conf.sink == TALLY_SINK_FILES) {
        if (tally_filesink_open(&eng->conf, &eng->files, err, sizeof(err))) {
            tally_err("%s", err);
            return TALLY_EIO;
        }
        /* Died between the sink's commit and the state write: recovery replays that epoch's input
         * into the state; its number is taken. */
        if (tally_filesink_epoch(eng->files) > epoch) epoch = tally_filesink_epoch(eng->files);
    }
    if (eng->conf.input_path) {
        r = recover_files(eng); /* logs its reason */
        if (r) return r;
        if ((r = tally_filesource_open(&eng->conf, eng->state, &eng->source, err, sizeof(err)))) {
            tally_err("%s", r == TALLY_ENOMEM ? "out of memory" : err);
            if (r == TALLY_ECONFIG) tally_fault_raise(&eng->fault, TALLY_EXIT_USAGE, "%s", err);
            return r;
        }
        epoch = tally_state_epoch(eng->state);
    }
    tally_epoch_init(&eng->ep, &eng->conf, &eng->pipe, eng->txn, eng->state, epoch);
    eng->ep.obs = eng->obs;
    eng->ep.files = eng->files;
    eng->ep.source = eng->source;
    return tally_pipeline_reload(&eng->pipe, eng->state);
}

/* input.path: what the sink committed (its log of files read) against the state; the gap, at most
 * one epoch, is replayed. The console sink and at_least_once keep no such log: the state is all. */
static int recover_files(tally_engine_t *eng) {
    const tally_config_t *c = &eng->conf;
    char err[1024] = "";
    uint64_t sink_epoch = 0;
    rd_kafka_topic_partition_list_t *files = rd_kafka_topic_partition_list_new(8);
    const char *sink = "output.path";
    int r = 0;
    if (eng->files) {
        sink_epoch = tally_filesink_epoch(eng->files);
        for (int i = 0; i < tally_filesink_noffsets(eng->files); i++) {
            tally_filesink_offset_t o = tally_filesink_offset_at(eng->files, i);
            if (o.partition == TALLY_FILESINK_FILE)
                rd_kafka_topic_partition_list_add(files, o.topic, TALLY_FILESINK_FILE)->offset = o.offset;
        }
    } else if (c->sink == TALLY_SINK_KAFKA && c->guarantee == TALLY_EXACTLY_ONCE) {
        rd_kafka_topic_partition_list_destroy(files);
        sink = "Kafka";
        r = tally_sourcelog_read_last(c, &sink_epoch, &files, err, sizeof(err));
    }
    if (!r) r = tally_recover_files(c, eng->state, sink_epoch, sink, files, err, sizeof(err));
    if (r) tally_err("%s", err);
    rd_kafka_topic_partition_list_destroy(files);
    return r;
}

/* input.path: the file readers, up at once (no group to wait for). */
static int start_readers(tally_engine_t *eng) {
    int n = eng->conf.files_readers;
    if (n <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
    int r = tally_pipeline_prepare_readers(&eng->pipe, n, eng->ep.epoch);
    if (!r) r = tally_epoch_start_pipeline(&eng->ep);
    if (!r) tally_info("reading input.path %s with %d reader thread(s)", eng->conf.input_path, n);
    return r;
}

static int subscribe(tally_engine_t *eng) {
    const tally_config_t *c = &eng->conf;
    if (c->input_path) return start_readers(eng);
    eng->consumer = tally_kafka_consumer_new(&eng->hooks, eng->txn_id);
    if (!eng->consumer) return TALLY_EKAFKA;
    eng->ep.consumer = eng->consumer;
    /* Before the main queue is forwarded, tally_kafka_wait_topic's rd_kafka_poll() serves the error callback. */
    for (int i = 0; i < c->input_topic_cnt; i++) {
        int r = tally_kafka_wait_topic(eng->consumer, &eng->hooks, c->input_topics[i], "input.topic");
        if (r) return r;
    }
    rd_kafka_poll_set_consumer(eng->consumer);
    if (c->topology == TALLY_TOPOLOGY_DISTRIBUTED) {
        if (!(eng->trim = tally_trim_new(eng->consumer, c))) return TALLY_ENOMEM;
        eng->ep.trim = eng->trim;
    }
    return subscribe_topics(eng);
}

int tally_engine_new(tally_engine_t **out, const tally_config_t *conf, char *errstr, size_t errstr_size) {
    tally_engine_t *eng = calloc(1, sizeof(*eng));
    if (!eng) return TALLY_ENOMEM;
    /* A private deep copy: the caller's configuration may go away. */
    int r = tally_config_copy(&eng->conf, conf);
    tally_config_t *c = &eng->conf;
    if (!r && !c->state_dir && (c->state_dir = malloc(strlen(c->application_id) + 16)))
        sprintf(c->state_dir, "./state/%s", c->application_id);
    tally_fault_init(&eng->fault, wake, eng);
    uv_loop_init(&eng->loop);
    if (!r && !c->state_dir) r = TALLY_ENOMEM;
    if (!r) r = tally_pipeline_init(&eng->pipe, c, &eng->fault, wake, eng);
    if (r) {
        snprintf(errstr, errstr_size, "out of memory");
        tally_engine_destroy(eng);
        return TALLY_ENOMEM;
    }
    if (c->topology == TALLY_TOPOLOGY_SINGLE && c->instance_id) {
        tally_warn("instance.id=%s has no effect with topology=single", c->instance_id);
        free(c->instance_id);
        c->instance_id = NULL;
    }
    if (c->topology == TALLY_TOPOLOGY_DISTRIBUTED && !c->instance_id && (c->instance_id = malloc(300))) {
        /* The host and where its state lives: distinct per instance, the same across restarts. */
        char host[256] = "host", *abs = realpath(c->state_dir, NULL);
        gethostname(host, sizeof(host) - 1);
        for (char *h = host; *h; h++)
            if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') || *h == '-' || *h == '.'))
                *h = '_';
        const char *dir = abs ? abs : c->state_dir;
        snprintf(c->instance_id, 300, "%.200s-%08x", host, (unsigned)XXH3_64bits(dir, strlen(dir)));
        free(abs);
    }
    if (c->topology == TALLY_TOPOLOGY_DISTRIBUTED && !c->instance_id) {
        snprintf(errstr, errstr_size, "out of memory");
        tally_engine_destroy(eng);
        return TALLY_ENOMEM;
    }
    /* Distributed: one transactional producer and one static group member per instance. */
    if (c->instance_id) snprintf(eng->txn_id, sizeof(eng->txn_id), "%s-tally-%s", c->application_id, c->instance_id);
    else snprintf(eng->txn_id, sizeof(eng->txn_id), "%s-tally", c->application_id);
    eng->hooks = (tally_kafka_hooks_t){.conf = c, .fault = &eng->fault, .rebalance = on_rebalance,
                                       .rebalance_opaque = eng};
    tally_epoch_init(&eng->ep, c, &eng->pipe, NULL, NULL, 0);
    tally_crashpoint_init();
    *out = eng;
    return 0;
}

static void close_cb(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

int tally_engine_run(tally_engine_t *eng) {
    tally_log_set_thread("ctl");
    const tally_config_t *c = &eng->conf;
    if (c->instance_id)
        tally_info("topology=distributed instance.id=%s repartition.partitions=%d", c->instance_id, c->repartition_partitions);
    tally_info("starting: application.id=%s input=%s%s output=%s sink=%s guarantee=%s workers=%d trigger=%d ms",
               c->application_id, c->input_path ? c->input_path : c->input_topics[0], c->input_topic_cnt > 1 ? ",..." : "",
               c->output_topic ? c->output_topic : c->output_path ? c->output_path : "-", tally_config_sink_name(c->sink),
               c->guarantee == TALLY_EXACTLY_ONCE ? "exactly_once" : "at_least_once", eng->pipe.nworkers,
               c->trigger_interval_ms);
    const tally_budget_t *b = &eng->pipe.budget;
    tally_info("memory.max.bytes=%" PRId64 " MiB: fetched input %" PRId64 " KiB a partition, output queue %" PRId64
               " KiB, an epoch %zu changed keys, %zu words cached, RocksDB %zu MiB memtables + %zu MiB block cache "
               "(docs/operations.md, Memory)", b->total >> 20, tally_budget_consumer_queue_kb(b),
               tally_budget_producer_kb(b), tally_budget_epoch_keys(b),
               eng->pipe.workers[0].cache_max * (size_t)eng->pipe.nworkers, 2 * tally_budget_rocksdb_write_buffer(b) >> 20,
               tally_budget_rocksdb_block_cache(b) >> 20);
    if (c->sink == TALLY_SINK_CONSOLE && c->guarantee == TALLY_EXACTLY_ONCE)
        tally_warn("sink=console is at-least-once: stdout cannot join a Kafka transaction, so a crash between "
                   "printing an epoch and committing its offsets prints that epoch again");

    uv_async_init(&eng->loop, &eng->wake, on_wake);
    eng->wake.data = eng;
    uv_timer_init(&eng->loop, &eng->trigger_timer);
    uv_timer_init(&eng->loop, &eng->poll_timer);
    eng->trigger_timer.data = eng->poll_timer.data = eng;
    uv_signal_init(&eng->loop, &eng->sigint);
    uv_signal_init(&eng->loop, &eng->sigterm);
    eng->sigint.data = eng->sigterm.data = eng;
    uv_signal_start(&eng->sigint, on_signal, SIGINT);
    uv_signal_start(&eng->sigterm, on_signal, SIGTERM);
    /* main() blocks them until here; a request that came early is delivered now. Threads started
     * from here on inherit the unblocked mask, which is harmless: the handler only wakes the loop. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &stop_signals, NULL);

    /* The order matters: init_transactions (in tally_txn_new) fences an older instance before the
     * state is opened and before the group's offsets are read (DESIGN: start-up order). */
    int r = tally_obs_new(&eng->obs, c, &eng->loop, NULL, view, eng);
    if (!r && c->http_listen) {
        eng->hooks.stats = tally_obs_stats;
        eng->hooks.stats_opaque = eng->obs;
    }
    if (!r) r = tally_txn_new(&eng->txn, &eng->hooks, eng->txn_id);
    if (!r) r = open_state(eng);
    if (!r) tally_obs_set_state(eng->obs, eng->state);
    if (!r) r = subscribe(eng);
    if (r || atomic_load(&eng->stop_requested)) {
        int pending = tally_fault_get(&eng->fault, NULL, 0);
        eng->exit_status = r ? (pending ? pending : TALLY_EXIT_ERROR) : TALLY_EXIT_OK;
        set_state(eng, ENG_STOPPED);
    } else {
        set_state(eng, ENG_RUNNING);
        /* Files wait for nobody: the first epoch starts at once. */
        uv_timer_start(&eng->trigger_timer, on_trigger, c->input_path ? 0 : (uint64_t)c->trigger_interval_ms,
                       (uint64_t)c->trigger_interval_ms);
        uv_timer_start(&eng->poll_timer, on_poll, 0, 20);
        uv_run(&eng->loop, UV_RUN_DEFAULT);
    }
    if (eng->pipe.up) tally_pipeline_kill(&eng->pipe);
    tally_obs_stop(eng->obs);
    uv_walk(&eng->loop, close_cb, NULL);
    uv_run(&eng->loop, UV_RUN_DEFAULT);
    if (eng->exit_status == TALLY_EXIT_OK) tally_info("stopped cleanly after %" PRIu64 " commits", eng->ep.commits);
    return eng->exit_status;
}

void tally_engine_destroy(tally_engine_t *eng) {
    if (!eng) return;
    restore_stop(eng);
    tally_pipeline_term(&eng->pipe);
    tally_epoch_term(&eng->ep);
    if (eng->consumer) {
        if (eng->st != ENG_STOPPED || eng->exit_status) rd_kafka_consumer_close(eng->consumer);
        rd_kafka_destroy(eng->consumer);
    }
    tally_txn_destroy(eng->txn, eng->exit_status != 0);
    /* RocksDB 7.8 aborts the process when closing on a full disk; its WAL holds every write we made,
     * so a store that is short of room is left for the process exit to release. */
    if (eng->state && tally_state_free_bytes(eng->state) >= (16 << 20)) tally_state_close(eng->state);
    else if (eng->state) tally_warn("state.dir is short of room: leaving the store to the process exit");
    tally_filesink_close(eng->files);
    tally_filesource_close(eng->source);
    tally_trim_destroy(eng->trim);
    tally_obs_destroy(eng->obs);
    uv_loop_close(&eng->loop);
    tally_fault_term(&eng->fault);
    tally_config_term(&eng->conf);
    free(eng);
}
