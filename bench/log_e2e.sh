#!/bin/bash
# log_e2e.sh: the attempt log end to end (issue 4). A release build of
# `dnswarden serve` with a blocklist of 10,000 generated domains and the
# rate limit off, pinned to CPU 0 (its event loop and the log's writer
# thread share it), gets blocked queries from dnsperf, pinned to CPU 1, at
# a fixed rate (default 100,000 per second for 15 s). Then SIGUSR1 (the
# daemon's counters), SIGTERM, and the rows in the database are counted:
# every blocked query the daemon answered must have its row (rows ==
# the "blocked" counter, log_rows_dropped == 0). Prints the achieved rate,
# the rows, the bytes per row on disk (database plus WAL, after the clean
# stop's checkpoint, over the rows) and the daemon's CPU time per query.
#
# Blocked queries never go upstream, so the upstream is a dead port. The
# daemon binds 127.0.0.1 only; everything lives in a temporary directory
# removed at exit. Not a timed test: run it by hand on a quiet machine.
# Exit status 1 if the run at the target rate lost a row.
#
# usage: bench/log_e2e.sh [--rate QPS] [--duration S] [--count N]
#                         [--clients N] [--outstanding N] [--threads N] [--search]
#                         [--nice N] [--profile DIR] [--dnswarden BIN]
#                         [--keep]
#   --rate QPS      dnsperf -Q, queries per second (default 100000)
#   --duration S    dnsperf -l, seconds (default 15)
#   --count N       blocklist size (default 10000)
#   --clients N     dnsperf -c, UDP sockets (default 8)
#   --outstanding N dnsperf -q, queries in flight at most (default 128: the
#                   daemon keeps the kernel's default UDP receive buffer,
#                   212,992 bytes, which holds 256 small datagrams;
#                   more in flight lets a stall of a few ms of the daemon,
#                   which shares CPU 0 with its writer thread, overflow it)
#   --threads N     the daemon's server.threads (default 1)
#   --search        when the target rate is not met without loss, rerun at
#                   lower rates and report the highest one that is
#   --nice N        run the daemon and dnsperf at this nice level (e.g.
#                   -10 on a machine shared with other work: the figures
#                   then say what the daemon does with its CPU, not what is
#                   left of it; default 0)
#   --profile DIR   perf record (cpu-clock, call graphs) of the daemon for
#                   5 s in the middle of the first run; report in DIR
#   --dnswarden BIN use this binary instead of building
#                   build-bench-log-e2e (release)
#   --keep          keep the temporary directory
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
RATE=100000
DUR=15
COUNT=10000
CLIENTS=8
OUTSTANDING=128
THREADS=1
SEARCH=0
PROFILE=""
NICE=0
DWBIN=""
KEEP=0

while [ $# -gt 0 ]; do
	case "$1" in
	--rate) RATE=$2; shift ;;
	--duration) DUR=$2; shift ;;
	--count) COUNT=$2; shift ;;
	--clients) CLIENTS=$2; shift ;;
	--outstanding) OUTSTANDING=$2; shift ;;
	--threads) THREADS=$2; shift ;;
	--search) SEARCH=1 ;;
	--nice) NICE=$2; shift ;;
	--profile) PROFILE=$2; shift ;;
	--dnswarden) DWBIN=$2; shift ;;
	--keep) KEEP=1 ;;
	-h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "log_e2e.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
[ -n "$PROFILE" ] && PROFILE=$(realpath -m "$PROFILE")

# shellcheck source=lib.sh
. "$BENCH/lib.sh"

# shellcheck source=../scripts/deps.sh
. "$ROOT/scripts/deps.sh"
# shellcheck disable=SC2086
deps_install $DEPS_BUILD dnsperf python3 sqlite3 procps iproute2 util-linux \
    $([ -n "$PROFILE" ] && echo linux-perf)
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (daemon on CPU 0, dnsperf on CPU 1)"

if [ -z "$DWBIN" ]; then
	say "release build in build-bench-log-e2e"
	build_dnswarden build-bench-log-e2e --buildtype=release
fi
[ -x "$DWBIN" ] || die "$DWBIN: not executable"

bench_tmp log_e2e		# T, PIDS, removed at exit

# ---- the blocklist and the queries ----

say "generating $COUNT blocked domains and the queries"
python3 - "$T" "$COUNT" <<'EOF'
import random, sys
out, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(4)
alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
tlds = ["com"] * 10 + ["net"] * 3 + ["org"] * 2 + ["info", "xyz", "top", "co.uk"]
names = set()
while len(names) < count:
    names.add("".join(rng.choice(alnum) for _ in range(rng.randint(5, 14)))
              + "." + rng.choice(tlds))
names = sorted(names)
rng.shuffle(names)
# A tenth in sites of 10 names each (rows carry a site name), the rest
# imported (rows without a site), as in a typical deployment.
nsites = len(names) // 100
with open(f"{out}/blocklist.yaml", "w") as f:
    f.write("categories:\n  - name: commercial-sex\n    sites:\n")
    for s in range(nsites):
        dom = ", ".join(names[s * 10:(s + 1) * 10])
        f.write(f'      - name: "Site {s}"\n        domains: [{dom}]\n')
    f.write("  - name: imported-list\n    import:\n"
            "      - { file: imported.txt, format: domains }\n")
with open(f"{out}/imported.txt", "w") as f:
    f.write("\n".join(names[nsites * 10:]) + "\n")
# dnsperf goes round this file: names at and below the listed ones, the
# types a browser asks for.
with open(f"{out}/queries.txt", "w") as f:
    for _ in range(200000):
        n = rng.choice(names)
        r = rng.random()
        n = n if r < 0.4 else ("www." + n if r < 0.8 else
                               rng.choice(["m.", "api.", "cdn."]) + n)
        f.write(f"{n} {rng.choice(['A', 'A', 'AAAA', 'AAAA', 'HTTPS'])}\n")
EOF
chmod 644 "$T"/blocklist.yaml "$T"/imported.txt

HZ=$(getconf CLK_TCK)
# cpu_ticks, thread_ticks, times_ticks (CPU of this shell's reaped
# children, from the output of "times"), udp_errors: bench/lib.sh.
# "busy total" ticks of one CPU ("cpu0") from /proc/stat; busy is all but
# idle and iowait. Shares are taken of the CPU's total, not of the wall
# time, which a VM's tick accounting does not match exactly.
cpu_ticks_of() {
	awk -v c="$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i
	    print $2 + $3 + $4 + $7 + $8 + $9, t }' /proc/stat
}
stat_of() { awk -v k="$1" '$3 == k { v = $4 } END { print v + 0 }' "$2"; }
perf_of() { awk -F': *' -v k="$1" '$1 ~ k { split($2, a, " "); print a[1]; exit }' "$2"; }

# run_once RATE DIR: one daemon, one dnsperf run, the checks; figures in
# DIR/result ("key value" lines). Returns 1 if a row was lost.
run_once() {
	local rate=$1 d=$2 port dead c0 c1 t0 t1 r0 r1 m0 m1 pp=""
	mkdir -p "$d/db"
	port=$(free_port) dead=$(free_port)
	cat >"$d/dnswarden.yaml" <<EOF
server:
  listen: ["127.0.0.1:$port"]
  control_socket: off
  allow_clients: ["127.0.0.0/8"]
  threads: $THREADS
  rate_limit: { qps: 0 }
upstreams: ["127.0.0.1:$dead"]
blocklist:
  files: ["$T/blocklist.yaml"]
log:
  database: "$d/db/attempts.db"
clients:
  - { network: "127.0.0.0/8", name: "loopback" }
EOF
	chmod 755 "$d" && chmod 644 "$d/dnswarden.yaml" && chmod 777 "$d/db"
	nice -n "$NICE" taskset -c 0 "$DWBIN" serve -c "$d/dnswarden.yaml" 2>"$d/stderr" &
	DPID=$!
	PIDS+=("$DPID")
	for _ in $(seq 100); do
		grep -q "serving" "$d/stderr" 2>/dev/null && break
		kill -0 "$DPID" 2>/dev/null || die "dnswarden exited: $(cat "$d/stderr")"
		sleep 0.1
	done
	grep -q "serving" "$d/stderr" || die "dnswarden did not start: $(cat "$d/stderr")"
	local b0 b1 e0 e1
	times >"$d/times0"
	b0=$(cpu_ticks_of cpu0) e0=$(cpu_ticks_of cpu1)
	c0=$(cpu_ticks "$DPID") t0=$(thread_ticks "$DPID") r0=$(udp_errors RcvbufErrors)
	m0=$(date +%s%3N)
	if [ -n "$PROFILE" ] && [ ! -e "$PROFILE/perf.data" ]; then
		mkdir -p "$PROFILE"
		( sleep $((DUR / 2 - 2 > 0 ? DUR / 2 - 2 : 1))
		  perf record -e cpu-clock -F 2000 -g -p "$DPID" \
		      -o "$PROFILE/perf.data" -- sleep 5 \
		      >"$PROFILE/record.txt" 2>&1 ) &
		pp=$!
	fi
	nice -n "$NICE" taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$T/queries.txt" \
	    -c "$CLIENTS" -q "$OUTSTANDING" -Q "$rate" -l "$DUR" -t 2 >"$d/dnsperf.txt" 2>&1 ||
	    true
	[ -n "$pp" ] && wait "$pp"
	m1=$(date +%s%3N) c1=$(cpu_ticks "$DPID") t1=$(thread_ticks "$DPID")
	r1=$(udp_errors RcvbufErrors) b1=$(cpu_ticks_of cpu0) e1=$(cpu_ticks_of cpu1)
	times >"$d/times1"
	# Counters: the writer may still be busy with the last rows.
	sleep 0.3
	dw_stats "$d/stderr" "$DPID" >"$d/stats.txt"
	local ts0 ts1
	ts0=$(date +%s%3N)
	kill -TERM "$DPID"
	local rc=0
	wait "$DPID" || rc=$?
	ts1=$(date +%s%3N)
	forget "$DPID"
	[ "$rc" = 0 ] || die "dnswarden exited with status $rc: $(tail "$d/stderr")"

	local rows bytes sent done lost qps blocked dropped pending written
	rows=$(sqlite3 "$d/db/attempts.db" "SELECT count(*) FROM attempts")
	# The clean stop checkpoints the WAL; count whatever is left of it.
	bytes=$(cat "$d/db/attempts.db" "$d/db/attempts.db-wal" 2>/dev/null | wc -c)
	sent=$(perf_of "Queries sent" "$d/dnsperf.txt")
	done=$(perf_of "Queries completed" "$d/dnsperf.txt")
	lost=$(perf_of "Queries lost" "$d/dnsperf.txt")
	qps=$(perf_of "Queries per second" "$d/dnsperf.txt")
	blocked=$(stat_of blocked "$d/stats.txt")
	dropped=$(stat_of log_rows_dropped "$d/stats.txt")
	pending=$(stat_of log_rows_pending "$d/stats.txt")
	written=$(stat_of log_rows_written "$d/stats.txt")
	{
		echo "target_qps $rate"
		echo "duration_s $DUR"
		echo "queries_sent $sent"
		echo "queries_answered $done"
		echo "queries_lost $lost"
		echo "achieved_qps ${qps%.*}"
		echo "kernel_rcvbuf_drops $((r1 - r0))"
		echo "daemon_blocked $blocked"
		echo "rows_in_database $rows"
		echo "rows_written_before_sigterm $written"
		echo "rows_pending_before_sigterm $pending"
		echo "log_rows_dropped $dropped"
		echo "sigterm_to_exit_ms $((ts1 - ts0))"
		echo "database_bytes $bytes"
		awk -v b="$bytes" -v r="$rows" 'BEGIN {
		    printf "bytes_per_row %.1f\n", r ? b / r : 0 }'
		awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$done" \
		    'BEGIN { printf "cpu_us_per_query %.2f\n", n ? c / hz * 1e6 / n : 0
		             }'
		# What else ran: CPU 0 should be the daemon's, CPU 1 dnsperf's.
		awk -v b0="$b0" -v b1="$b1" -v e0="$e0" -v e1="$e1" -v c=$((c1 - c0)) \
		    -v k=$(( $(times_ticks "$d/times1") - $(times_ticks "$d/times0") )) \
		    'BEGIN { split(b0, x); split(b1, y); split(e0, u); split(e1, v)
		    t0 = y[2] - x[2]; t1 = v[2] - u[2]
		    printf "cpu0_busy_pct %.0f\n", 100 * (y[1] - x[1]) / t0
		    printf "cpu0_daemon_pct %.0f\n", 100 * c / t0
		    printf "cpu0_others_pct %.0f\n", 100 * (y[1] - x[1] - c) / t0
		    printf "cpu1_busy_pct %.0f\n", 100 * (v[1] - u[1]) / t1
		    printf "cpu1_dnsperf_pct %.0f\n", 100 * k / t1 }'
		echo "threads_cpu_ticks_before $t0"
		echo "threads_cpu_ticks_after $t1"
		echo "load_average $(cut -d' ' -f1-3 /proc/loadavg | tr ' ' /)"
	} >"$d/result"
	[ "$rows" = "$blocked" ] && [ "$dropped" = 0 ]
}

# ok RESULT: no row lost, and the target rate reached (99 %, answered).
met() {
	awk '{ v[$1] = $2 } END {
	    exit !(v["rows_in_database"] == v["daemon_blocked"] &&
	           v["log_rows_dropped"] == 0 &&
	           v["queries_answered"] >= 0.99 * v["target_qps"] * v["duration_s"]) }' "$1"
}

show() { sed 's/^/    /' "$1" | grep -v threads_cpu_ticks >&2; }

say "run at $RATE queries/s for $DUR s ($CLIENTS dnsperf clients, $OUTSTANDING in flight, $THREADS daemon thread(s), nice $NICE)"
STATUS=0
run_once "$RATE" "$T/run-$RATE" || STATUS=1
show "$T/run-$RATE/result"
FINAL=$T/run-$RATE/result
if [ "$SEARCH" = 1 ] && ! met "$FINAL"; then
	# Lower rates until one is met: rows intact and 99 % answered.
	for r in 80000 60000 50000 40000 30000 20000; do
		[ "$r" -lt "$RATE" ] || continue
		say "search: $r queries/s"
		run_once "$r" "$T/run-$r" || true
		show "$T/run-$r/result"
		if met "$T/run-$r/result"; then
			FINAL=$T/run-$r/result
			break
		fi
	done
fi

if [ -n "$PROFILE" ] && [ -e "$PROFILE/perf.data" ]; then
	perf report -i "$PROFILE/perf.data" --stdio --no-children \
	    --sort comm,dso,symbol 2>/dev/null | grep -v '^$' | head -120 \
	    >"$PROFILE/report.txt" || true
	perf report -i "$PROFILE/perf.data" --stdio --no-children -g none \
	    --sort symbol --percent-limit 0.7 2>/dev/null | grep '%' | head -40 \
	    >"$PROFILE/top.txt" || true
	say "profile: $PROFILE/top.txt"
	cat "$PROFILE/top.txt" >&2
fi

get() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
echo
echo "dnswarden $("$DWBIN" --version | awk '{ print $2 }'), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -sr), SQLite $(sqlite3 --version | cut -d' ' -f1), dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ { print $2 }')"
for f in $(ls -d "$T"/run-* | sort -t- -k2 -n -r); do
	f=$f/result
	printf '%-8s target %6s/s: answered %6s/s (%s of %s sent, %s lost), rows %s = blocked %s, dropped %s, %s B/row, %s us CPU/query (%s%% of CPU 0)\n' \
	    "$(basename "$(dirname "$f")")" "$(get target_qps "$f")" \
	    "$(get achieved_qps "$f")" "$(get queries_answered "$f")" \
	    "$(get queries_sent "$f")" "$(get queries_lost "$f")" \
	    "$(get rows_in_database "$f")" "$(get daemon_blocked "$f")" \
	    "$(get log_rows_dropped "$f")" "$(get bytes_per_row "$f")" \
	    "$(get cpu_us_per_query "$f")" "$(get cpu0_daemon_pct "$f")"
done
if met "$FINAL"; then
	echo "highest rate met with no row lost: $(get target_qps "$FINAL")/s"
else
	echo "no rate tried was met (99 % answered and no row lost)"
fi
exit "$STATUS"
