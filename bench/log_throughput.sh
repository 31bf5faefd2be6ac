#!/bin/bash
# log_throughput.sh: the attempt log's sustained write rate (issue 4).
#
# Pushes blocked attempts through attemptlog_append() at a fixed rate from
# two producer threads (standing in for event loops) into a fresh SQLite
# database in a temporary directory, waits for attemptlog_close() to put
# every row on disk, checks the row count, and prints rows/s, drops, bytes
# per row, and the CPU per row of all threads, split into the producers'
# (the appends) and the writer thread's. Then, for the headroom, short
# runs at 150,000, 200,000 and 300,000 rows/s: drops there show where this
# machine's writer stops keeping up. Last, the queue's memory: a full
# default queue (65,536 rows, the database locked meanwhile), resident
# bytes per queued row, and what stays resident once the writer has
# drained it. Not a timed test: run it by hand on a quiet machine; it
# builds its build directory (release) first. Exit status 1 if the paced
# run lost a row.
#
# usage: bench/log_throughput.sh [--rows N] [--rate R] [--quick] [--build DIR]
#                                [--domains N] [--clients N]
#   --rows N     rows per run (default 1000000)
#   --rate R     paced run's target rows/s (default 100000)
#   --domains N, --clients N  distinct blocked names and clients (default
#                500 and 2000); --domains 100000 --clients 1 is a scanner
#                probing a long list, nearly every row a summary key of its
#                own
#   --quick      200000 rows
#   --build DIR  build directory (default build-bench-log; set up as a
#                release build if missing)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"
BUILD="$ROOT/build-bench-log"
ROWS=1000000
RATE=100000
SPREAD=()

while [ $# -gt 0 ]; do
	case "$1" in
	--rows) ROWS=$2; shift 2 ;;
	--rate) RATE=$2; shift 2 ;;
	--quick) ROWS=200000; shift ;;
	--build) BUILD=$(realpath -m "$2"); shift 2 ;;
	--domains|--clients) SPREAD+=("$1" "$2"); shift 2 ;;
	*) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done

build_target "$BUILD" attemptlog/log_throughput_test --buildtype=release
BIN=$BUILT

TMP=$(mktemp -d /tmp/log_throughput.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

echo "== paced: $ROWS rows at $RATE/s, 2 producers, queue 65536 ${SPREAD[*]}"
"$BIN" --rows "$ROWS" --rate "$RATE" --threads 2 --dir "$TMP" "${SPREAD[@]}" \
    | tee "$TMP/paced.txt"
echo
# Headroom: higher paced rates, 3 s each, same queue. The first rate with
# drops is past what this machine's writer sustains.
for r in 150000 200000 300000; do
	echo "== headroom: $((r * 3)) rows at $r/s"
	"$BIN" --rows $((r * 3)) --rate "$r" --threads 2 --dir "$TMP" \
	    "${SPREAD[@]}" \
	    2>/dev/null > "$TMP/head-$r.txt" || true
	grep -E '^(sustained_rows_per_s|rows_dropped|cpu_us_per_row) ' \
	    "$TMP/head-$r.txt"
done
echo
echo "== queue memory: 65536 rows waiting on a locked database, then drained"
"$BIN" --fill --queue 65536 --dir "$TMP" 2>/dev/null | tee "$TMP/fill.txt"

get() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
echo
printf '%-36s %s\n' "sustained rows/s (paced)" \
    "$(get sustained_rows_per_s "$TMP/paced.txt")"
printf '%-36s %s\n' "rows dropped (paced, must be 0)" \
    "$(get rows_dropped "$TMP/paced.txt")"
printf '%-36s %s\n' "bytes per row on disk" \
    "$(get bytes_per_row "$TMP/paced.txt")"
printf '%-36s %s\n' "CPU us per row (paced, all threads)" \
    "$(get cpu_us_per_row "$TMP/paced.txt")"
printf '%-36s %s\n' "  of which producers (appends)" \
    "$(get producer_cpu_us_per_row "$TMP/paced.txt")"
printf '%-36s %s\n' "  of which the writer thread" \
    "$(get writer_cpu_us_per_row "$TMP/paced.txt")"
printf '%-36s %s kB, %s bytes a row\n' "full queue (65536 rows), resident" \
    "$(get queue_full_kb "$TMP/fill.txt")" \
    "$(get queue_bytes_per_row "$TMP/fill.txt")"
printf '%-36s %s kB\n' "  still resident after the drain" \
    "$(get after_drain_kb "$TMP/fill.txt")"
for r in 150000 200000 300000; do
	printf '%-36s %s rows/s, %s dropped\n' "at $r/s" \
	    "$(get sustained_rows_per_s "$TMP/head-$r.txt")" \
	    "$(get rows_dropped "$TMP/head-$r.txt")"
done
printf '%-36s %s\n' "load average at the end" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
[ "$(get rows_dropped "$TMP/paced.txt")" = 0 ]
