#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Windows across instances (issue 12 with windows): two topology=distributed instances count 2 s
# tumbling windows with a 25 s watermark delay in append mode while timestamped lines flow; one is
# SIGKILLed and restarted with an EMPTY state.dir (its partitions' windows and watermarks come back
# from the changelog). The read_committed output must equal tally-gen's per-window truth for every
# window the final watermark closed, each (window, word) written once (no duplicate, no second
# count), and no window the watermark did not close.
#   env: TALLY_BIN, TALLY_BUILD (tally-gen, tally-read), TALLY_BOOTSTRAP, TALLY_SOURCE_DIR
set -euo pipefail
if [ -z "${TALLY_BOOTSTRAP:-}" ]; then
    [ "${TALLY_REQUIRE_BROKER:-}" != 1 ] || { echo "FAIL: TALLY_REQUIRE_BROKER=1 but TALLY_BOOTSTRAP is not set" >&2; exit 1; }
    echo "SKIP: no broker (set TALLY_BOOTSTRAP)" >&2; exit 77
fi
: "${TALLY_BIN:?}" "${TALLY_BUILD:?}" "${TALLY_SOURCE_DIR:?}"
B=$TALLY_BOOTSTRAP
export KAFKA_LOCAL_PORT=${KAFKA_LOCAL_PORT:-${TALLY_BOOTSTRAP##*:}}
kl=$TALLY_SOURCE_DIR/scripts/kafka-local
gen=$TALLY_BUILD/bench/tally-gen
app=dwin-$$-$(date +%s)
dir=$(mktemp -d /tmp/tally-dwin.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$dir"/*.log; do echo "== $f" >&2; grep -E "ERROR|WARN|restored|exit status" "$f" | tail -5 >&2 || true; done; exit 1; }

"$kl" topic "$app-in" 4 >/dev/null || fail "could not create $app-in"
"$kl" topic "$app-out" 4 >/dev/null || fail "could not create $app-out"
cat > "$dir/job.properties" <<EOF
bootstrap.servers=$B
application.id=$app
input.topic=$app-in
output.topic=$app-out
topology=distributed
repartition.partitions=6
trigger.interval.ms=500
transaction.timeout.ms=10000
kafka.session.timeout.ms=10000
window.size.ms=2000
watermark.delay.ms=25000
output.mode=append
EOF
start() {  # id
    "$TALLY_BIN" --config "$dir/job.properties" --set instance.id="$1" --set state.dir="$dir/state-$1" >>"$dir/$1.log" 2>&1 &
    pids+=($!)
    eval "pid_$1=$!"
}
start a
start b
sleep 8 # both in the group before the input starts
# Event time runs with the wall clock (10 lines per ms at 10k lines/s), 45 s of it. The delay (25 s)
# exceeds how far one input partition can fall behind another (a killed instance's partitions wait
# out the 10 s session before they move), so no line is late and the truth is exact (the max
# watermark's caveat, docs/windows.md). Event time starts 10 minutes ago, on a window boundary:
# records stamped older than the topic's retention.ms (7 days) would be deleted by the broker under
# the test (seen: "records [11353, 30000) are gone").
t0=$(( ($(date +%s) - 600) / 2 * 2000 ))
"$gen" --bootstrap "$B" --topic "$app-in" --lines 450000 --vocab 100 --rate 10000 \
    --event-time-start "$t0" --event-time-step 0.1 --window-size 2000 --watermark-delay 25000 \
    --window-truth "$dir/truth.tsv" --window-late "$dir/late.tsv" >"$dir/gen.out" 2>"$dir/gen.log" &
genpid=$!
sleep 5
kill -9 "$pid_a"
rm -rf "$dir/state-a"
sleep 2
start a
wait "$genpid" || fail "tally-gen failed"
wf=$(grep -o 'watermark_final=[0-9]*' "$dir/gen.out" | cut -d= -f2)
[ -n "$wf" ] || fail "no watermark_final from tally-gen"
grep -q "restored $app-changelog" "$dir/a.log" || fail "the restarted instance restored nothing"
# The exact expectation: every (window, word) of each window the final watermark closed, with its
# full count (no line is late here), as Spark's JSON; compared as a second engine's output would be.
python3 - "$dir/truth.tsv" "$wf" >"$dir/expected.json" <<'PY'
import sys, datetime
def iso(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (ms % 1000)
wf = int(sys.argv[2])
for line in open(sys.argv[1]):
    start, end, word, count = line.rstrip('\n').split('\t')
    if int(end) <= wf:
        print('{"window":{"start":"%s","end":"%s"},"word":"%s","count":%s}' % (iso(int(start)), iso(int(end)), word, count))
PY
pairs=$(wc -l <"$dir/expected.json")
[ "$pairs" -gt 100 ] || fail "only $pairs expected (window, word) pairs"
# Wait until every window the final watermark closes has been written.
for i in $(seq 1 60); do
    if TALLY_READ=$TALLY_BUILD/bench/tally-read python3 "$TALLY_SOURCE_DIR/bench/peers/compare-windows" --bootstrap "$B" \
        --append "topic:$app-out" "json:$dir/expected.json" >"$dir/compare.txt" 2>&1; then
        break
    fi
    sleep 2
done
cat "$dir/compare.txt"
grep -q '^EQUAL' "$dir/compare.txt" || fail "output differs from the truth"
if grep -q 'duplicates' "$dir/compare.txt"; then fail "a (window, word) was written more than once"; fi
windows=$(grep -o '^topic:[^:]*: [0-9]* records, [0-9]* (window, word), [0-9]* windows' "$dir/compare.txt")
echo "distributed windows: $windows (expected $pairs pairs) through a SIGKILL and a restart with an empty state.dir"
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
rm -rf "$dir"
