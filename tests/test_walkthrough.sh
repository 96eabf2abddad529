#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The seed's walkthrough as a person does it (README, "Walkthrough"): tally runs on a topic, lines are
# typed into `scripts/kafka-local produce` on stdin, and `scripts/kafka-local consume --from-beginning`
# shows the counts: the seed's lines give cat 4, dog 4. Needs the broker of $TALLY_BOOTSTRAP, which
# scripts/kafka-local can reach (KAFKA_LOCAL_PORT; default: the bootstrap's port).
set -uo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
if [ -z "${TALLY_BOOTSTRAP:-}" ]; then
    [ "${TALLY_REQUIRE_BROKER:-}" != 1 ] || fail "TALLY_REQUIRE_BROKER=1 but TALLY_BOOTSTRAP is not set"
    echo "SKIP: no broker (set TALLY_BOOTSTRAP, e.g. with scripts/kafka-local start)" >&2; exit 77
fi
: "${TALLY_BIN:?meson sets TALLY_BIN}" "${TALLY_SOURCE_DIR:?meson sets TALLY_SOURCE_DIR}"
export KAFKA_LOCAL_PORT=${KAFKA_LOCAL_PORT:-${TALLY_BOOTSTRAP##*:}}
kl=$TALLY_SOURCE_DIR/scripts/kafka-local

work=$(mktemp -d /tmp/tally-walkthrough-XXXXXX)
id=walk-$$-$(date +%s)
in=$id-in out=$id-out
pid=
cleanup() { [ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$kl" topic "$in" 2 || fail "could not create $in"
"$kl" topic "$out" 2 || fail "could not create $out"

# 1. tally on the seed's job, with this test's topics and names.
"$TALLY_BIN" --config "$TALLY_SOURCE_DIR/conf/wordcount.properties" --set "bootstrap.servers=$TALLY_BOOTSTRAP" \
    --set "application.id=$id" --set "input.topic=$in" --set "output.topic=$out" \
    --set "state.dir=$work/state" --set trigger.interval.ms=500 2>"$work/tally.log" &
pid=$!

# 2. The seed's lines, typed one at a time into the console producer.
lines=(Hello World! cat dog cat dog wizeline streaming hello cat wizeline work java java cat dog dog)
for l in "${lines[@]}"; do echo "$l"; sleep 0.1; done | "$kl" produce "$in" || fail "kafka-local produce failed"
echo "typed ${#lines[@]} lines into $in" >&2

# 3. The counts, as the console consumer shows them, until the last count of every word is right.
want='Hello 1
World! 1
cat 4
dog 4
hello 1
java 2
streaming 1
wizeline 2
work 1'
last() {   # the last count per word of the consumer's output, "word count" sorted by word
    sed -n 's/^{"word":"\(.*\)","count":\([0-9]*\)}$/\1 \2/p' "$work/out.txt" \
        | awk '{ c[$1] = $2 } END { for (w in c) print w, c[w] }' | LC_ALL=C sort
}
t0=$(date +%s)
while :; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/tally.log" >&2; fail "tally exited"; }
    "$kl" consume "$out" --from-beginning --timeout-ms 5000 >"$work/out.txt" 2>"$work/consume.log"
    [ "$(last)" = "$want" ] && break
    [ $(( $(date +%s) - t0 )) -lt 120 ] || { cat "$work/out.txt" "$work/consume.log" "$work/tally.log" >&2
        echo "last counts: $(last | tr '\n' ',')" >&2; fail "counts not right within 120 s"; }
done
echo "consumer shows (last count per word):" >&2; last | sed 's/^/  /' >&2

# Each word's counts as printed only rise: none repeated, none going back.
sed -n 's/^{"word":"\(.*\)","count":\([0-9]*\)}$/\1 \2/p' "$work/out.txt" \
    | awk '$2 <= p[$1] { print "FAIL: " $1 " count " $2 " after " p[$1]; bad = 1 } { p[$1] = $2 } END { exit bad }' >&2 \
    || fail "counts not increasing"
[ "$(grep -vc '^{"word":' "$work/out.txt")" = 0 ] || { cat "$work/out.txt" >&2; fail "the consumer printed lines that are not counts"; }

# 4. SIGTERM commits the work in hand and exits 0.
kill -TERM "$pid"; wait "$pid"; st=$?; pid=
[ "$st" = 0 ] || { cat "$work/tally.log" >&2; fail "tally exited $st on SIGTERM"; }
echo "OK: the walkthrough counts cat 4, dog 4" >&2
