#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks a tally file sink directory with readers tally did not write (Python's csv and json).

    check_files.py DIR FORMAT TRUTH [PARQUET_TO_JSONL]
    check_files.py --last TRUTH < ROWS      (ROWS: one JSON line per word, its last count, as
                                             bench/peers/read-output spark --mode last prints them)
    check_files.py --windows DIR FORMAT TRUTH [PARQUET_TO_JSONL]
                                            (append with windows: every (window, word) once, its
                                             window 'end - start' long, and each word's counts over
                                             its windows adding up to TRUTH: tumbling windows)

Reads the committed part files as Spark does, through DIR/_spark_metadata (the last "<id>.compact"
and the batches after it); fails when a part file in DIR is not committed, when a word appears twice
in one epoch, when a word's counts do not strictly increase from epoch to epoch, and when the last
count of a word differs from TRUTH (lines "<word as hex>\\t<count>"; words decoded as UTF-8 with
U+FFFD for invalid bytes, as tally writes them) or a word is missing or extra. Parquet part files are
turned into JSON lines by the PARQUET_TO_JSONL command (given the file as its argument).
"""
import csv
import json
import os
import re
import subprocess
import sys


def committed_files(d):
    log = os.path.join(d, "_spark_metadata")
    ids = {}
    for name in os.listdir(log):
        m = re.fullmatch(r"(\d+)(\.compact)?", name)
        if m:
            ids[int(m.group(1))] = name
    if not ids:
        return [], -1
    last = max(ids)
    compacts = [i for i, n in ids.items() if n.endswith(".compact")]
    start = max(compacts) if compacts else 0
    files = []
    for i in range(start, last + 1):
        if i not in ids:
            sys.exit(f"check_files: batch {i} missing from {log}")
        with open(os.path.join(log, ids[i]), encoding="utf-8") as f:
            lines = f.read().split("\n")
        if lines[0] != "v1":
            sys.exit(f"check_files: {ids[i]}: first line {lines[0]!r}, not v1")
        for line in lines[1:]:
            if line.strip():
                e = json.loads(line)
                if e["action"] == "add":
                    files.append(e["path"].removeprefix("file://"))
    return files, last


def rows_of(path, fmt, to_jsonl):
    if fmt == "csv":
        with open(path, newline="", encoding="utf-8") as f:
            r = csv.reader(f)
            header = next(r)
            if header != ["word", "count", "epoch"]:
                sys.exit(f"check_files: {path}: header {header}")
            for row in r:
                yield row[0], int(row[1]), int(row[2])
        return
    if fmt == "parquet":
        text = subprocess.run(to_jsonl + [path], check=True, capture_output=True, text=True).stdout
        lines = text.splitlines()
    else:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    for line in lines:
        o = json.loads(line)
        yield o["word"], int(o["count"]), int(o["epoch"])


def windowed_rows_of(path, fmt, to_jsonl):
    """(window start, window end, word, count) of each row; CSV and JSON times as text, Parquet's as ms."""
    if fmt == "csv":
        with open(path, newline="", encoding="utf-8") as f:
            r = csv.reader(f)
            header = next(r)
            if header != ["window_start", "window_end", "word", "count"]:
                sys.exit(f"check_files: {path}: header {header}")
            for row in r:
                yield row[0], row[1], row[2], int(row[3])
        return
    if fmt == "parquet":
        text = subprocess.run(to_jsonl + [path], check=True, capture_output=True, text=True).stdout
        for line in text.splitlines():
            o = json.loads(line)
            yield o["window_start"], o["window_end"], o["word"], int(o["count"])
        return
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            o = json.loads(line)
            if list(o) != ["window", "word", "count"] or list(o["window"]) != ["start", "end"]:
                sys.exit(f"check_files: {path}: fields {list(o)}")
            yield o["window"]["start"], o["window"]["end"], o["word"], int(o["count"])


def check_windows(d, fmt, truth_path, to_jsonl):
    truth = load_truth(truth_path)
    files, last = committed_files(d)
    seen, sums, nrows = set(), {}, 0
    for p in files:
        for start, end, w, c in windowed_rows_of(p, fmt, to_jsonl):
            nrows += 1
            if (start, w) in seen:
                sys.exit(f"check_files: ({start}, {w!r}) emitted twice")
            seen.add((start, w))
            sums[w] = sums.get(w, 0) + c
    wrong = [w for w in truth if sums.get(w) != truth[w]] + [w for w in sums if w not in truth]
    for w in wrong[:5]:
        print(f"check_files: {w!r}: {sums.get(w)} over its windows, truth {truth.get(w)}", file=sys.stderr)
    print(f"check_files: {len(files)} committed files in {last + 1} batches, {nrows} (window, word) rows, "
          f"{len(sums)} words, {len(wrong)} wrong", file=sys.stderr)
    sys.exit(1 if wrong or not sums else 0)


def load_truth(path):
    truth = {}
    with open(path) as f:
        for line in f:
            h, c = line.split("\t")
            w = bytes.fromhex(h).decode("utf-8", "replace")
            truth[w] = truth.get(w, 0) + int(c)
    return truth


def check_last(truth_path):
    """Another reader's last count per word (stdin) against the truth."""
    truth = load_truth(truth_path)
    got = {}
    for line in sys.stdin:
        if line.strip():
            o = json.loads(line)
            if o["word"] in got:
                sys.exit(f"check_files: {o['word']!r} twice in the reader's rows")
            got[o["word"]] = int(o["count"])
    wrong = [w for w in truth if got.get(w) != truth[w]] + [w for w in got if w not in truth]
    for w in wrong[:5]:
        print(f"check_files: {w!r}: reader {got.get(w)}, truth {truth.get(w)}", file=sys.stderr)
    print(f"check_files: the reader's last counts: {len(got)} words, {len(wrong)} wrong", file=sys.stderr)
    sys.exit(1 if wrong or not got else 0)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--last":
        check_last(sys.argv[2])
    if len(sys.argv) >= 5 and sys.argv[1] == "--windows":
        check_windows(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split() if len(sys.argv) > 5 else None)
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    d, fmt, truth_path = sys.argv[1:4]
    to_jsonl = sys.argv[4].split() if len(sys.argv) > 4 else None
    truth = load_truth(truth_path)
    files, last = committed_files(d)
    stray = [n for n in os.listdir(d) if n.startswith("part-") and os.path.join(d, n) not in files]
    if stray:
        sys.exit(f"check_files: part files no commit names: {stray[:5]}")
    seen = {}  # word -> {epoch: count}
    nrows = 0
    for p in files:
        for w, c, e in rows_of(p, fmt, to_jsonl):
            nrows += 1
            per = seen.setdefault(w, {})
            if e in per:
                sys.exit(f"check_files: {w!r} twice in epoch {e}")
            per[e] = c
    bad = 0
    for w, per in seen.items():
        counts = [per[e] for e in sorted(per)]
        if any(b <= a for a, b in zip(counts, counts[1:])):
            bad += 1
            if bad < 5:
                print(f"check_files: {w!r} counts not strictly increasing: {counts}", file=sys.stderr)
        if truth.get(w) != counts[-1]:
            bad += 1
            if bad < 5:
                print(f"check_files: {w!r} last count {counts[-1]}, truth {truth.get(w)}", file=sys.stderr)
    missing = [w for w in truth if w not in seen]
    if missing:
        print(f"check_files: {len(missing)} words missing, e.g. {missing[:5]}", file=sys.stderr)
    print(f"check_files: {len(files)} committed files in {last + 1} batches, {nrows} rows, {len(seen)} words, "
          f"{bad} wrong, {len(missing)} missing", file=sys.stderr)
    sys.exit(1 if bad or missing else 0)


main()
