#!/bin/bash
# soak_faults.sh: how dnswarden behaves when its upstream or its database
# fails (issue 5), measured on loopback; the figures for
# docs/reliability.md. About a minute; ends by itself.
#
# Upstream: first a single upstream on a loopback port nobody listens on
# (the kernel answers ICMP port unreachable). Then two upstreams in order,
# a "black hole" (a UDP socket that never reads, like a host that drops
# packets) and NSD. Timed: a new name with NSD up, the same after NSD is
# stopped, cache hits and blocked names meanwhile, and a new name once
# NSD is back.
#
# Database: log.database points into a directory that cannot be created
# (its parent path is a regular file), with log.queue_size 64. Blocked
# queries are answered all the same and their rows wait; more than the
# queue holds are dropped and counted; once the directory exists the
# waiting rows are written and the loss is recorded in table log_gaps.
# Finally, rows that still wait at SIGTERM: how long the exit takes.
#
# usage: bench/soak_faults.sh [--keep] [--dnswarden BIN]
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
PY=/usr/bin/python3
KEEP=0
DWBIN=""
while [ $# -gt 0 ]; do
	case "$1" in
	--keep) KEEP=1 ;;
	--dnswarden) DWBIN=$2; shift ;;
	-h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "soak_faults.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done

# shellcheck source=lib.sh
. "$BENCH/lib.sh"

# shellcheck source-path=SCRIPTDIR source=../scripts/deps.sh
. "$ROOT/scripts/deps.sh"
# shellcheck disable=SC2086
deps_install $DEPS_BUILD nsd python3 python3-yaml sqlite3
[ -n "$DWBIN" ] ||
    build_dnswarden build-soak --buildtype=release -Ddebug=true

bench_tmp dnswarden-faults	# T, PIDS, removed at exit

client() { $PY "$BENCH/soak_client.py" "$@"; }
$PY "$BENCH/soak_gen.py" "$T" --count 1000 --queries 10 \
    --sample "$ROOT/blocklist/sample-sites.yaml"
BLOCKED=$($PY -c 'import json, sys
print(json.load(open(sys.argv[1]))["blocked"][0])' "$T/names.json")

# ---- upstreams ----

NSD_PORT=$(free_port)
nsd_conf "$T" soak.test "$NSD_PORT"
nsd_stop() {
	kill "$NSD_PID"
	wait "$NSD_PID" 2>/dev/null || true
	forget "$NSD_PID"
	# NSD's server child may answer a moment longer.
	while client query --port "$NSD_PORT" --timeout 0.2 h0.soak.test |
	    grep -q NOERROR; do
		sleep 0.1
	done
}
nsd_start "$T" "$NSD_PORT" h0.soak.test

HOLE_PORT=$(free_port)
$PY -c 'import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
time.sleep(600)' "$HOLE_PORT" &
HOLE_PID=$!
PIDS+=("$HOLE_PID")

# ---- dnswarden ----

PORT=$(free_port)
touch "$T/notadir"		# log.database's directory cannot be made
cat >"$T/dnswarden.yaml" <<EOF
server:
  listen: ["127.0.0.1:$PORT"]
  control_socket: off
upstreams: ["127.0.0.1:$HOLE_PORT", "127.0.0.1:$NSD_PORT"]
upstream_timeout_ms: 1500
blocklist:
  files: ["soak-list.yaml"]
log:
  database: "$T/notadir/db/attempts.db"
  queue_size: 64
  # Serve while the database cannot be made (log.required: true refuses).
  required: false
EOF
daemon_start() {	# daemon_start STDERR-FILE [CONFIG]
	ERR=$1
	"$DWBIN" serve -c "${2:-$T/dnswarden.yaml}" >"$ERR" 2>&1 &
	DPID=$!
	PIDS+=("$DPID")
	client wait --port "$PORT" --name "$BLOCKED" --rcode NXDOMAIN \
	    --timeout 60 || { cat "$ERR" >&2; die "dnswarden did not start"; }
}
daemon_stop() {	# SIGTERM; shows the exit status and how long it took
	local t0 rc=0
	t0=$(date +%s%3N)
	kill -TERM "$DPID"
	wait "$DPID" || rc=$?
	forget "$DPID"
	show "SIGTERM: exit status, time to exit" \
	    "$rc, $(($(date +%s%3N) - t0)) ms"
}

stat_of() {	# stat_of NAME: one counter, from a fresh SIGUSR1
	dw_stats "$ERR" "$DPID" | awk -v n="$1" '$3 == n { print $4 }'
}
show() { printf '%-58s %s\n' "$1" "$2"; }
times_of() {	# rcode and seconds of each answer, from query's JSON
	$PY -c 'import json, sys
print(", ".join("%s %.2f s" % (x["rcode"], x["seconds"])
      for x in json.load(sys.stdin)))'
}

CLOSED_PORT=$(free_port)
sed "s/^upstreams: .*/upstreams: [\"127.0.0.1:$CLOSED_PORT\"]/" \
    "$T/dnswarden.yaml" >"$T/closed.yaml"
echo
echo "upstream: one loopback port nobody listens on (the kernel answers" \
    "ICMP port unreachable); upstream_timeout_ms 1500"
daemon_start "$T/daemon0.stderr" "$T/closed.yaml"
show "new name" "$(client query --port "$PORT" z1.soak.test | times_of)"
show "counters upstream_timeouts / upstream_errors / servfail" \
    "$(stat_of upstream_timeouts) / $(stat_of upstream_errors) / $(stat_of servfail)"
daemon_stop

daemon_start "$T/daemon.stderr"
echo
echo "upstreams: a black hole, then NSD; upstream_timeout_ms 1500"
show "new names, NSD up (3, one after the other)" \
    "$(client query --port "$PORT" a1.soak.test a2.soak.test a3.soak.test |
    times_of)"
show "cache hit (a1), blocked name" \
    "$(client query --port "$PORT" a1.soak.test "$BLOCKED" | times_of)"
nsd_stop
show "new names, NSD stopped (ICMP port unreachable)" \
    "$(client query --port "$PORT" b1.soak.test b2.soak.test | times_of)"
show "cache hit (a1), blocked name, NSD stopped" \
    "$(client query --port "$PORT" a1.soak.test "$BLOCKED" | times_of)"
show "the same new name again at once (SERVFAIL is not cached)" \
    "$(client query --port "$PORT" b1.soak.test | times_of)"
nsd_start "$T" "$NSD_PORT" h0.soak.test
show "new name, NSD back" \
    "$(client query --port "$PORT" c1.soak.test | times_of)"
show "counters upstream_timeouts / upstream_errors / servfail" \
    "$(stat_of upstream_timeouts) / $(stat_of upstream_errors) / $(stat_of servfail)"

echo
echo "attempt log: log.database in a directory that cannot be created," \
    "queue_size 64"
blocked_names() {	# blocked_names N: N blocked names from the list
	sed -n "2,$(($1 + 1))p" "$T/domains.txt"
}
# shellcheck disable=SC2046
show "40 blocked queries: answers" "$(client query --port "$PORT" \
    $(blocked_names 40) | $PY -c 'import json, sys
from collections import Counter
r = json.load(sys.stdin)
print(dict(Counter(x["rcode"] for x in r)), "slowest %.3f s" %
      max(x["seconds"] for x in r))')"
show "rows pending / written / dropped / write errors" \
    "$(stat_of log_rows_pending) / $(stat_of log_rows_written) / $(stat_of log_rows_dropped) / $(stat_of log_write_errors)"
# shellcheck disable=SC2046
show "60 more blocked queries: answers" "$(client query --port "$PORT" \
    $(blocked_names 100 | tail -60) | $PY -c 'import json, sys
from collections import Counter
print(dict(Counter(x["rcode"] for x in json.load(sys.stdin))))')"
show "rows pending / written / dropped" \
    "$(stat_of log_rows_pending) / $(stat_of log_rows_written) / $(stat_of log_rows_dropped)"
rm "$T/notadir"
mkdir -m 777 "$T/notadir"
t0=$(date +%s%3N)
while [ "$(stat_of log_rows_pending)" != 0 ] && [ $(($(date +%s%3N) - t0)) -lt 10000 ]; do
	sleep 0.2
done
show "directory made: pending rows written after" \
    "$(($(date +%s%3N) - t0)) ms (1 s retry period)"
show "rows pending / written / dropped" \
    "$(stat_of log_rows_pending) / $(stat_of log_rows_written) / $(stat_of log_rows_dropped)"
show "rows in the database; table log_gaps" \
    "$(sqlite3 "$T/notadir/db/attempts.db" 'SELECT count(*) FROM attempts') rows; $(sqlite3 "$T/notadir/db/attempts.db" 'SELECT rows_dropped, table_name FROM log_gaps' | tr '\n' ' ')"
echo "daemon messages about the log:"
grep 'attempt log' "$ERR" | sed 's/^/  /'

daemon_stop

echo
echo "SIGTERM while rows wait: a new daemon, the directory cannot be made"
rm -rf "$T/notadir"
touch "$T/notadir"
daemon_start "$T/daemon2.stderr"
# shellcheck disable=SC2046
client query --port "$PORT" $(blocked_names 120 | tail -20) >/dev/null
show "rows pending" "$(stat_of log_rows_pending)"
daemon_stop
grep -E 'stopping|lost' "$ERR" | sed 's/^/  /' || true
kill "$HOLE_PID" 2>/dev/null || true
wait "$HOLE_PID" 2>/dev/null || true
forget "$HOLE_PID"
nsd_stop
