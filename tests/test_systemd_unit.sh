#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The built tally@.service: `systemd-analyze verify` accepts it without a word (its ExecStart pointed
# at the built binary, its man page found), its exposure stays at or below 2.0 on `systemd-analyze
# security`, it does not restart after exits 2, 3 and 4, and its stop timeout covers a final commit.
#   test_systemd_unit.sh UNIT TALLY_BIN SOURCE_DIR
set -uo pipefail
unit=$1 bin=$(realpath "$2") src=$3
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found (scripts/deps installs systemd)"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
no() { echo "FAIL $*"; fail=1; }

mkdir -p "$tmp/man/man1" && cp "$src/docs/tally.1" "$tmp/man/man1/"
sed "s|^ExecStart=[^ ]*|ExecStart=$bin|" "$unit" > "$tmp/tally@test.service"
out=$(MANPATH=$tmp/man systemd-analyze verify "$tmp/tally@test.service" 2>&1)
[ $? -eq 0 ] && [ -z "$out" ] && echo "ok   systemd-analyze verify" || no "systemd-analyze verify: $out"

out=$(systemd-analyze security --offline=yes --threshold=20 "$tmp/tally@test.service" 2>&1)
rc=$?; score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[ $rc -eq 0 ] && [ -n "$score" ] && echo "ok   systemd-analyze security: exposure $score" ||
    no "systemd-analyze security: exposure ${score:-?} (at most 2.0), exit $rc"

grep -qx 'Restart=on-failure' "$unit" && echo "ok   Restart=on-failure" || no "Restart=on-failure missing"
grep -qx 'RestartPreventExitStatus=2 3 4' "$unit" && echo "ok   no restart after 2, 3, 4" || no "RestartPreventExitStatus=2 3 4 missing"
grep -qx 'KillSignal=SIGTERM' "$unit" && echo "ok   KillSignal=SIGTERM" || no "KillSignal=SIGTERM missing"

# The stop timeout must outlast the default transaction.timeout.ms (the final commit's bound).
stop_s=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$unit")
txn_ms=$("$bin" --help-config | sed -n '/^  transaction.timeout.ms /,/^$/s/.*Default: \([0-9]*\)\..*/\1/p')
if [ -n "$stop_s" ] && [ -n "$txn_ms" ] && [ $((stop_s * 1000)) -gt "$txn_ms" ]; then
    echo "ok   TimeoutStopSec=${stop_s}s > transaction.timeout.ms=$txn_ms"
else no "TimeoutStopSec=${stop_s:-?}s does not exceed transaction.timeout.ms=${txn_ms:-?}"; fi
exit $fail
