#!/bin/bash
# report_scale.sh: reports and log pages at a million and ten million rows
# (issue 12).
#
# For each size, builds an attempt log in DIR through the writer's own
# SQLite sink (attemptlog/report_scale_gen: a year of attempts from 5,000
# clients for 200 sites, summaries and all), then times
#   report --by day|month|client|site|category (and day in two more zones)
#   log --limit 50, with --client (one that has rows, one that has none),
#   with --site, and a page --before an id
# RUNS times each, two ways:
#   cli: the command as a user runs it, a new process each time (process
#        start included: `dnswarden --version` is timed as its baseline);
#   lib: the same options through the report library inside one process
#        (report/report_time), as the console's API pays them.
# Median and maximum of wall and CPU time (user + system), in ms. Then the
# disk: the file as written, and both files VACUUMed, with the summaries
# and with tables attempt_sums and attempt_sums_rules emptied, and the
# growth the summaries cost.
# The figures for docs/performance.md ("Reports") come from here. Not a
# timed test: the machine's load is printed with the figures.
#
# usage: bench/report_scale.sh [--sizes "1000000 10000000"] [--runs N]
#                              [--reuse] [--no-disk] [--log-only]
#                              [--dir DIR] [--build DIR]
#   --sizes   row counts (default 1000000 10000000)
#   --runs N  runs of each command (default 7)
#   --log-only  time the log pages only (no report, no disk)
#   --dir DIR the databases' directory (default /tmp)
#   --reuse   keep an existing DIR/report_scale.ROWS.db instead of
#             generating it again
#   --no-disk skip the size comparison (it copies and VACUUMs the file)
#   --build   build directory (default build-bench-report, set up as a
#             release build if missing)
# The databases stay in DIR/report_scale.ROWS.db (1.3 GB at ten million
# rows) for a later --reuse; remove them when done.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD="$ROOT/build-bench-report"
SIZES="1000000 10000000"
RUNS=7
REUSE=0
DISK=1
REPORTS=1
DIR=/tmp
PYTHON=${PYTHON:-/usr/bin/python3}

while [ $# -gt 0 ]; do
	case "$1" in
	--sizes) SIZES=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--reuse) REUSE=1; shift ;;
	--no-disk) DISK=0; shift ;;
	--log-only) REPORTS=0; DISK=0; shift ;;
	--dir) DIR=$(realpath -m "$2"); shift 2 ;;
	--build) BUILD=$(realpath -m "$2"); shift 2 ;;
	*) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done

if [ ! -d "$BUILD" ]; then
	meson setup "$BUILD" "$ROOT" --buildtype=release >/dev/null
fi
ninja -C "$BUILD" resolver/dnswarden attemptlog/report_scale_gen \
    report/report_time >/dev/null
BIN="$BUILD/resolver/dnswarden"
GEN="$BUILD/attemptlog/report_scale_gen"
LIB="$BUILD/report/report_time"
RUN="$PYTHON $ROOT/bench/report_scale_run.py"
CLIENT=10.0.0.1		# one of the generator's clients
SITE="Site 5"		# one of its 180 named sites
NAME=dept3		# the name of 125 of its clients

# The value of key in a "key value key value" line.
get() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }'; }

# sql DB QUERY: one value, read-only.
sql() {
	"$PYTHON" -c 'import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(c.execute(sys.argv[2]).fetchone()[0])' "$1" "$2"
}

# timed NAME KIND ARGS...: one line of the table, cli then lib.
timed() {
	local name=$1 kind=$2 c l
	shift 2
	c=$($RUN "$RUNS" "$BIN" "$kind" --database "$DB" "${CLI_ARGS[@]}")
	l=$("$LIB" "$DB" "$RUNS" "$kind" "${LIB_ARGS[@]}" | tail -1)
	printf '%-9s %-34s %7s %7s %7s %7s | %7s %7s %7s %7s\n' "$ROWS" "$name" \
	    "$(get median_wall_ms <<<"$c")" "$(get max_wall_ms <<<"$c")" \
	    "$(get median_cpu_ms <<<"$c")" "$(get max_cpu_ms <<<"$c")" \
	    "$(get median_wall_ms <<<"$l")" "$(get max_wall_ms <<<"$l")" \
	    "$(get median_cpu_ms <<<"$l")" "$(get max_cpu_ms <<<"$l")"
}

# report NAME OPTION VALUE...: the same options to both (--opt v, opt v).
case_() {
	local name=$1 kind=$2
	shift 2
	CLI_ARGS=()
	LIB_ARGS=()
	while [ $# -gt 1 ]; do
		CLI_ARGS+=("--$1" "$2")
		LIB_ARGS+=("$1" "$2")
		shift 2
	done
	timed "$name" "$kind"
}

bytes() { stat -c %s "$1"; }

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo |
    cut -d: -f2 | sed 's/^ //'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "process start (dnswarden --version): $($RUN "$RUNS" "$BIN" --version)"
echo

for ROWS in $SIZES; do
	DB=$DIR/report_scale.$ROWS.db
	if [ "$REUSE" = 0 ] || [ ! -f "$DB" ]; then
		rm -f "$DB" "$DB-wal" "$DB-shm"
		echo "== generating $ROWS rows into $DB"
		/usr/bin/time -f "generator wall %e s" "$GEN" "$DB" "$ROWS"
	fi
	MID=$(sql "$DB" "SELECT max(id) / 2 FROM attempts")
	# The last row of the client's first page (or its oldest row).
	PAGE2=$(sql "$DB" "SELECT id FROM attempts WHERE client = '$CLIENT'
	    ORDER BY ts DESC, id DESC LIMIT 1 OFFSET (SELECT min(49,
	    count(*) - 1) FROM attempts WHERE client = '$CLIENT')")
	echo "== $ROWS rows: $(sql "$DB" "SELECT count(*) FROM attempts") in" \
	    "the file, $(sql "$DB" "SELECT count(*) FROM attempts WHERE
	    client = '$CLIENT'") of client $CLIENT"
	printf '%-9s %-34s %7s %7s %7s %7s | %7s %7s %7s %7s\n' rows command \
	    "cli" "" "" "" "lib" "" "" ""
	printf '%-9s %-34s %7s %7s %7s %7s | %7s %7s %7s %7s\n' "" "" \
	    wall_md wall_mx cpu_md cpu_mx wall_md wall_mx cpu_md cpu_mx
	if [ "$REPORTS" = 1 ]; then
		for by in day month client site category; do
			case_ "report --by $by" report by "$by" tz UTC
		done
		case_ "report --by day --tz Europe/Berlin" report by day \
		    tz Europe/Berlin
		case_ "report --by day --tz +05:30" report by day tz +05:30
		case_ "report --by client, one month" report by client \
		    since 2025-06-01 until 2025-06-30 tz UTC
	fi
	case_ "log --limit 50" log limit 50 tz UTC
	case_ "log --client $CLIENT --limit 50" log client "$CLIENT" \
	    limit 50 tz UTC
	case_ "log --client ... --before (page 2)" log client "$CLIENT" \
	    before "$PAGE2" limit 50 tz UTC
	case_ "log --client $NAME (a name) --limit 50" log client "$NAME" \
	    limit 50 tz UTC
	case_ "log --client ... --since (a month)" log client "$CLIENT" \
	    since 2025-06-01 until 2025-06-30 limit 50 tz UTC
	case_ "log --since (a month) --limit 50" log since 2025-06-01 \
	    until 2025-06-30 limit 50 tz UTC
	case_ "log --category drugs --limit 50" log category drugs \
	    limit 50 tz UTC
	case_ "log --client (no such) --limit 50" log client 10.255.0.9 \
	    limit 50 tz UTC
	case_ "log --site '$SITE' --limit 50" log site "$SITE" limit 50 tz UTC
	case_ "log --before (mid-year) --limit 50" log before "$MID" \
	    limit 50 tz UTC
	echo
done
echo "load average at the end of the timings: $(cut -d' ' -f1-3 /proc/loadavg)"

[ "$DISK" = 1 ] || exit 0
echo
echo "== disk: with the summaries against their tables emptied, both VACUUMed"
for ROWS in $SIZES; do
	DB=$DIR/report_scale.$ROWS.db
	W=$(bytes "$DB")
	"$PYTHON" - "$DB" <<'EOF'
import shutil, sqlite3, sys
db = sys.argv[1]
for suffix, empty in ((".with", False), (".without", True)):
    shutil.copyfile(db, db + suffix)
    c = sqlite3.connect(db + suffix, isolation_level=None)
    if empty:
        c.execute("DELETE FROM attempt_sums")
        c.execute("DELETE FROM attempt_sums_rules")
    c.execute("VACUUM")
    c.close()
EOF
	A=$(bytes "$DB.with")
	B=$(bytes "$DB.without")
	S=$(sql "$DB" "SELECT (SELECT count(*) FROM attempt_sums) + (SELECT
	    count(*) FROM attempt_sums_rules)")
	printf '%-9s as written %s B (%s B a row); VACUUMed: with summaries' \
	    "$ROWS" "$W" $((W / ROWS))
	printf ' %s B, without %s B: +%s %% for %s summary rows\n' "$A" "$B" \
	    "$("$PYTHON" -c "print('%.1f' % (($A - $B) * 100 / $B))")" "$S"
	rm -f "$DB.with" "$DB.without"
done
