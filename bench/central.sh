#!/bin/bash
# central.sh: the central log's figures (issue 14), against a real
# PostgreSQL 15 that the script starts itself (initdb and pg_ctl in a
# temporary folder, as nobody when run as root, on 127.0.0.1 and a free
# port; pinned to CPU 1) and a release build of dnswarden (pinned to CPU 0):
#
#  ship     rows shipped a second, sustained: a local file of --rows rows
#           (the last hour's, made by attemptlog/report_scale_gen) that the
#           daemon ships from start; the rate over the whole drain and the
#           slowest 5 s of it, CPU a row of the shipper thread and of
#           PostgreSQL.
#  ab       DNS blocked-and-logged CPU per answer with log.central off and
#           on, A/B in both orders in one run (off, on, on, off; --pairs 2
#           repeats it): dnsperf at --rate blocked queries a second for
#           --duration s, CPU of the daemon's threads from
#           /proc/PID/task/*/schedstat (the DNS thread apart from the log
#           writer and the shipper) over the answers.
#  latency  query to central row, measured in the "on" runs of ab: every
#           100 ms, the age of the newest row of the instance in
#           PostgreSQL (clock_timestamp() - ts, one clock); the largest age
#           seen bounds the time a row took (plus the 100 ms step).
#  outage   a one-hour outage at 1,000 rows a second: --backlog rows
#           (3,600,000) waiting in the local file, PostgreSQL stopped long
#           enough for the shipper's backoff to reach its 10 s ceiling,
#           dnsperf adding 1,000 blocked queries a second meanwhile; then
#           PostgreSQL starts, and the time until every row that waited
#           when it came back is central (reconnect wait included).
#
# Loopback only, everything in one temporary folder removed at exit, every
# dnsperf run bounded by -l and every wait by a timeout: about 5 minutes
# (2 with --quick). Not a timed test: run it by hand, and note the load of
# the machine (printed at the end) beside the figures.
#
# usage: bench/central.sh [--quick] [--rows N] [--backlog N] [--rate QPS]
#                         [--duration S] [--pairs N] [--phases LIST]
#                         [--build DIR] [--keep]
#   --quick         --rows 500000 --backlog 600000 --duration 6
#   --rows N        rows of the ship phase (default 2000000)
#   --backlog N     rows waiting in the outage phase (default 3600000)
#   --rate QPS      blocked queries a second in ab (default 10000)
#   --duration S    seconds of each ab run (default 15)
#   --pairs N       off/on/on/off rounds in ab (default 1)
#   --phases LIST   which to run, of "ship ab outage" (default all three)
#   --build DIR     release build directory (default build-bench-central)
#   --keep          keep the temporary folder
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
BUILD=$ROOT/build-bench-central
ROWS=2000000
BACKLOG=3600000
RATE=10000
DUR=15
PAIRS=1
PHASES="ship ab outage"
KEEP=0

while [ $# -gt 0 ]; do
	case "$1" in
	--quick) ROWS=500000 BACKLOG=600000 DUR=6 ;;
	--rows) ROWS=$2; shift ;;
	--backlog) BACKLOG=$2; shift ;;
	--rate) RATE=$2; shift ;;
	--duration) DUR=$2; shift ;;
	--pairs) PAIRS=$2; shift ;;
	--phases) PHASES=$2; shift ;;
	--build) BUILD=$(realpath -m "$2"); shift ;;
	--keep) KEEP=1 ;;
	-h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "central.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done

# shellcheck source=lib.sh
. "$BENCH/lib.sh"

# shellcheck source=../scripts/deps.sh
. "$ROOT/scripts/deps.sh"
# shellcheck disable=SC2086
deps_install $DEPS_BUILD dnsperf postgresql-15 python3 sqlite3 procps \
    iproute2 util-linux
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (daemon on CPU 0, the rest on CPU 1)"
PGBIN=/usr/lib/postgresql/15/bin
[ -x "$PGBIN/initdb" ] || die "$PGBIN/initdb missing (postgresql-15)"

say "release build in $BUILD"
[ -d "$BUILD" ] || meson setup "$BUILD" "$ROOT" --buildtype=release >/dev/null
ninja -C "$BUILD" resolver/dnswarden attemptlog/report_scale_gen >/dev/null ||
    die "build failed (see ninja -C $BUILD)"
DWBIN=$BUILD/resolver/dnswarden
GEN=$BUILD/attemptlog/report_scale_gen

T=$(mktemp -d /tmp/dnswarden-central-bench.XXXXXX)
chmod 755 "$T"
PGUSER_OS=""
[ "$(id -u)" = 0 ] && PGUSER_OS=nobody	# PostgreSQL refuses root
DPID="" LOADPID=""
asuser() { if [ -n "$PGUSER_OS" ]; then runuser -u "$PGUSER_OS" -- "$@"; else "$@"; fi; }
cleanup() {
	# Every step, whatever the one before did (set -e would end it at a
	# kill of a process already gone, leaving the daemon and PostgreSQL).
	set +e
	[ -n "$LOADPID" ] && kill "$LOADPID" 2>/dev/null
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	[ -d "$T/pg/data" ] && asuser "$PGBIN/pg_ctl" -D "$T/pg/data" -m immediate \
	    -w stop >/dev/null 2>&1
	if [ "$KEEP" = 1 ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- PostgreSQL ----

PGPORT=$(free_port)
mkdir "$T/pg"
[ -n "$PGUSER_OS" ] && chown "$PGUSER_OS" "$T/pg"
say "PostgreSQL 15: initdb in $T/pg, port $PGPORT"
asuser "$PGBIN/initdb" -D "$T/pg/data" -U postgres --auth=trust -E UTF8 \
    >"$T/pg/initdb.txt" 2>&1 || die "initdb failed: $(tail -5 "$T/pg/initdb.txt")"
# Durable commits as shipped (fsync, synchronous_commit on); room for the
# WAL of a catch-up without forced checkpoints.
cat >>"$T/pg/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$T/pg'
shared_buffers = 256MB
max_wal_size = 4GB
EOF
pg_start() {
	taskset -c 1 runuser -u "${PGUSER_OS:-$(id -un)}" -- "$PGBIN/pg_ctl" \
	    -D "$T/pg/data" -l "$T/pg/log.txt" -w -t 60 start >/dev/null ||
	    die "pg_ctl start failed: $(tail -5 "$T/pg/log.txt")"
}
pg_stop() { asuser "$PGBIN/pg_ctl" -D "$T/pg/data" -m fast -w stop >/dev/null; }
psqlc() {	# psqlc DB SQL
	asuser psql -h "$T/pg" -p "$PGPORT" -U postgres -d "$1" -At -v ON_ERROR_STOP=1 -c "$2"
}
pg_start
psqlc postgres "CREATE ROLE dw LOGIN" >/dev/null
NDB=0
# newdb: a fresh database for a run, its name in $DB (no subshell: NDB counts).
newdb() { NDB=$((NDB + 1)); DB=bench$NDB; psqlc postgres "CREATE DATABASE $DB OWNER dw" >/dev/null; }
conninfo() { echo "host=127.0.0.1 port=$PGPORT dbname=$1 user=dw connect_timeout=3"; }
# CPU seconds of every PostgreSQL process (the postmaster's children).
pg_cpu() {
	local pm
	pm=$(head -1 "$T/pg/data/postmaster.pid")
	for p in $pm $(ps -o pid= --ppid "$pm"); do
		cat "/proc/$p/schedstat" 2>/dev/null || true
	done | awk '{ s += $1 } END { printf "%.3f\n", s / 1e9 }'
}

# ---- the blocklist, the queries, the daemon ----

python3 - "$T" <<'EOF'
import random, sys
out = sys.argv[1]
rng = random.Random(14)
alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
names = sorted({"".join(rng.choice(alnum) for _ in range(rng.randint(5, 14))) + ".com"
                for _ in range(10000)})
with open(f"{out}/blocklist.yaml", "w") as f:
    f.write("categories:\n  - name: commercial-sex\n    sites:\n")
    for s in range(len(names) // 10):
        f.write(f'      - name: "Site {s}"\n        domains: [{", ".join(names[s*10:s*10+10])}]\n')
with open(f"{out}/queries.txt", "w") as f:
    for _ in range(200000):
        n = rng.choice(names)
        f.write(f"{'www.' + n if rng.random() < 0.5 else n} {rng.choice(['A', 'AAAA', 'HTTPS'])}\n")
EOF
chmod 644 "$T/blocklist.yaml" "$T/queries.txt"

# start_daemon DIR CENTRAL-DB|"": a daemon on CPU 0 with its own file in
# DIR/db, log.central on when a database is named.
start_daemon() {
	local d=$1 db=$2 port dead
	port=$(free_port) dead=$(free_port)
	mkdir -p "$d/db"
	{
		cat <<EOF
server:
  listen: ["127.0.0.1:$port"]
  control_socket: off
  allow_clients: ["127.0.0.0/8"]
  rate_limit: { qps: 0 }
upstreams: ["127.0.0.1:$dead"]
blocklist:
  files: ["$T/blocklist.yaml"]
log:
  database: "$d/db/attempts.db"
EOF
		[ -n "$db" ] && printf '  central:\n    postgresql: "%s"\n    instance: "bench"\n' \
		    "$(conninfo "$db")"
		echo 'clients:'
		echo '  - { network: "127.0.0.0/8", name: "loopback" }'
	} >"$d/dnswarden.yaml"
	echo "$port" >"$d/port"
	chmod 755 "$d" && chmod 644 "$d/dnswarden.yaml" && chmod 777 "$d/db"
	chmod 666 "$d"/db/* 2>/dev/null || true
	taskset -c 0 "$DWBIN" serve -c "$d/dnswarden.yaml" 2>"$d/stderr" &
	DPID=$!
	for _ in $(seq 300); do
		grep -q "serving" "$d/stderr" 2>/dev/null && return 0
		kill -0 "$DPID" 2>/dev/null || die "dnswarden exited: $(cat "$d/stderr")"
		sleep 0.1
	done
	die "dnswarden did not start: $(cat "$d/stderr")"
}
stop_daemon() {
	kill -TERM "$DPID"
	wait "$DPID" || die "dnswarden exited with status $?: $(tail -3 "$1/stderr")"
	DPID=""
}
# CPU seconds of the daemon's threads: "dns writer shipper" (the DNS
# thread(s) are every thread but the log writer, the shipper and the
# console's and its audit writer's).
dw_cpu() {
	local f comm
	for f in /proc/"$DPID"/task/*; do
		comm=$(cat "$f/comm" 2>/dev/null) || continue
		printf '%s %s\n' "$comm" "$(cut -d' ' -f1 "$f/schedstat")"
	done | awk '{ if ($1 == "dw-logwriter") w += $2; else if ($1 == "dw-central") s += $2
	    else if ($1 != "dw-console" && $1 != "dw-audit") d += $2 }
	    END { printf "%.4f %.4f %.4f\n", d / 1e9, w / 1e9, s / 1e9 }'
}
# The central high-water mark of instance "bench" (0: none yet).
central_mark() { psqlc "$1" "SELECT coalesce(max(shipped_id), 0) FROM dnswarden_instances" 2>/dev/null || echo 0; }
now_s() { date +%s.%N; }
perf_of() { awk -F': *' -v k="$1" '$1 ~ k { split($2, a, " "); print a[1]; exit }' "$2"; }

# drain DB TARGET TIMEOUT OUT: sample the central mark every 0.5 s until it
# reaches TARGET; "seconds mark" lines in OUT. Fails on timeout.
drain() {
	local db=$1 target=$2 timeout=$3 out=$4 t0 m=0
	t0=$(now_s)
	: >"$out"
	while :; do
		m=$(central_mark "$db")
		printf '%s %s\n' "$(awk -v a="$(now_s)" -v b="$t0" 'BEGIN { printf "%.3f", a - b }')" \
		    "$m" >>"$out"
		[ "$m" -ge "$target" ] && return 0
		awk -v a="$(now_s)" -v b="$t0" -v t="$timeout" 'BEGIN { exit !(a - b > t) }' &&
		    return 1
		sleep 0.5
	done
}

RESULTS=$T/results.txt
: >"$RESULTS"
res() { echo "$*" | tee -a "$RESULTS" >&2; }

# ---- ship: the sustained rate ----

phase_ship() {
	local d=$T/ship db c0 c1 p0 p1 t
	mkdir -p "$d/db"
	say "ship: $ROWS rows of the last hour in a local file"
	"$GEN" "$d/db/attempts.db" "$ROWS" 5000 200 0.041667 now >"$d/gen.txt"
	newdb; db=$DB
	start_daemon "$d" "$db"
	c0=$(dw_cpu) p0=$(pg_cpu)
	drain "$db" "$ROWS" 600 "$d/marks" || die "ship: not drained in 600 s"
	c1=$(dw_cpu) p1=$(pg_cpu)
	stop_daemon "$d"
	# The rate from the first batch seen to the last; the slowest 5 s
	# window between them.
	awk -v n="$ROWS" -v c0="$c0" -v c1="$c1" -v p0="$p0" -v p1="$p1" '
	    { t[NR] = $1; m[NR] = $2 }
	    END {
		for (f = 1; f <= NR && m[f] == 0; f++) ;
		rate = (m[NR] - m[f]) / (t[NR] - t[f])
		min = -1
		for (i = f; i <= NR; i++)
			for (j = i + 1; j <= NR; j++)
				if (t[j] - t[i] >= 5) {
					r = (m[j] - m[i]) / (t[j] - t[i])
					if (min < 0 || r < min) min = r
					break
				}
		split(c0, a); split(c1, b)
		printf "ship_rows %d\nship_seconds %.1f\nship_rows_per_s %.0f\n", n, t[NR] - t[f], rate
		printf "ship_slowest_5s_rows_per_s %.0f\n", min
		printf "ship_shipper_cpu_us_per_row %.2f\n", (b[3] - a[3]) * 1e6 / n
		printf "ship_daemon_cpu_us_per_row %.2f\n", (b[1] + b[2] + b[3] - a[1] - a[2] - a[3]) * 1e6 / n
		printf "ship_postgresql_cpu_us_per_row %.2f\n", (p1 - p0) * 1e6 / n
	    }' "$d/marks" | while read -r k v; do res "$k $v"; done
	res "ship_central_rows $(psqlc "$db" "SELECT count(*) FROM dnswarden_attempts")"
}

# ---- ab and latency ----

# The latency poller: the age of the newest central row every 100 ms,
# from one psql session; ages (ms) to $2 until $3 exists.
latency_poll() {
	python3 - "$1" "$2" "$3" "$T/pg" "$PGPORT" "$PGUSER_OS" <<'EOF'
import os, subprocess, sys, time
db, out, stopfile, sock, port, user = sys.argv[1:7]
cmd = ["psql", "-h", sock, "-p", port, "-U", "postgres", "-d", db, "-At", "-q"]
if user:
    cmd = ["runuser", "-u", user, "--"] + cmd
p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
q = ("SELECT coalesce((SELECT (extract(epoch FROM clock_timestamp() - ts) * 1000)::bigint"
     " FROM dnswarden_attempts WHERE instance = 'bench' ORDER BY id DESC LIMIT 1), -1);\n")
with open(out, "w") as f:
    while not os.path.exists(stopfile):
        t = time.monotonic()
        p.stdin.write(q)
        v = p.stdout.readline().strip()
        if v and v != "-1":
            f.write(v + "\n")
        time.sleep(max(0.0, 0.1 - (time.monotonic() - t)))
p.stdin.close()
p.wait()
EOF
}

# ab_run NAME on|off: one dnsperf run; "key value" lines in DIR/result.
ab_run() {
	local d=$T/ab-$1 mode=$2 db="" c0 c1 p0 p1 lp=""
	mkdir -p "$d"
	[ "$mode" = on ] && { newdb; db=$DB; }
	start_daemon "$d" "$db"
	if [ "$mode" = on ]; then
		# The tables exist once the shipper has connected.
		for _ in $(seq 100); do
			grep -q "central: shipping to" "$d/stderr" && break
			sleep 0.1
		done
		latency_poll "$db" "$d/ages" "$d/stop" &
		lp=$!
	fi
	c0=$(dw_cpu) p0=$(pg_cpu)
	taskset -c 1 dnsperf -s 127.0.0.1 -p "$(cat "$d/port")" -d "$T/queries.txt" \
	    -c 8 -q 128 -Q "$RATE" -l "$DUR" -t 2 >"$d/dnsperf.txt" 2>&1 || true
	c1=$(dw_cpu) p1=$(pg_cpu)
	if [ -n "$lp" ]; then
		# The last rows too: until the mark holds every local row.
		local n
		n=$(sqlite3 "$d/db/attempts.db" "SELECT max(id) FROM attempts")
		drain "$db" "$n" 30 "$d/marks" || true
		touch "$d/stop"
		wait "$lp"
	fi
	stop_daemon "$d"
	local done
	done=$(perf_of "Queries completed" "$d/dnsperf.txt")
	{
		echo "mode $mode"
		echo "answered $done"
		echo "qps $(perf_of "Queries per second" "$d/dnsperf.txt")"
		echo "rows $(sqlite3 "$d/db/attempts.db" "SELECT count(*) FROM attempts")"
		[ -n "$db" ] && echo "central_rows $(psqlc "$db" "SELECT count(*) FROM dnswarden_attempts")"
		awk -v c0="$c0" -v c1="$c1" -v p0="$p0" -v p1="$p1" -v n="$done" 'BEGIN {
		    split(c0, a); split(c1, b)
		    printf "dns_us %.2f\nwriter_us %.2f\nshipper_us %.2f\n",
			(b[1] - a[1]) * 1e6 / n, (b[2] - a[2]) * 1e6 / n, (b[3] - a[3]) * 1e6 / n
		    printf "daemon_us %.2f\n", (b[1] + b[2] + b[3] - a[1] - a[2] - a[3]) * 1e6 / n
		    printf "postgresql_us %.2f\n", (p1 - p0) * 1e6 / n }'
		if [ -s "$d/ages" 2>/dev/null ]; then
			sort -n "$d/ages" | awk '{ v[NR] = $1 } END {
			    i = int(NR * 0.99) + 1; if (i > NR) i = NR
			    printf "latency_samples %d\nlatency_p50_ms %d\n", NR, v[int(NR * 0.5) + 1]
			    printf "latency_p99_ms %d\nlatency_max_ms %d\n", v[i], v[NR] }'
		fi
	} >"$d/result"
}

phase_ab() {
	local i order=""
	for i in $(seq "$PAIRS"); do order+="off$i:off on$i:on on${i}b:on off${i}b:off "; done
	for r in $order; do
		say "ab: ${r%%:*} (log.central ${r##*:}), $RATE blocked q/s for $DUR s"
		ab_run "${r%%:*}" "${r##*:}"
		sed 's/^/    /' "$T/ab-${r%%:*}/result" >&2
	done
	local get='$1 == k { print $2 }'
	for r in $order; do
		local f=$T/ab-${r%%:*}/result
		res "ab ${r%%:*} $(awk '{ printf "%s=%s ", $1, $2 }' "$f")"
	done
	for m in off on; do
		res "ab_mean_$m $(cat "$T"/ab-*/result | awk -v m="$m" '
		    $1 == "mode" { on = ($2 == m) } on && $1 ~ /_us$/ { s[$1] += $2; n[$1]++ }
		    END { for (k in s) printf "%s=%.2f ", k, s[k] / n[k] }')"
	done
	res "latency_max_ms_all_on_runs $(cat "$T"/ab-*/ages 2>/dev/null | sort -n | tail -1)"
}

# ---- outage: a one-hour backlog catches up ----

phase_outage() {
	local d=$T/outage db t0 target n0 lines
	mkdir -p "$d/db"
	say "outage: $BACKLOG rows of the last hour waiting in the local file"
	"$GEN" "$d/db/attempts.db" "$BACKLOG" 5000 200 0.041667 now >"$d/gen.txt"
	newdb; db=$DB
	pg_stop
	start_daemon "$d" "$db"
	taskset -c 1 dnsperf -s 127.0.0.1 -p "$(cat "$d/port")" -d "$T/queries.txt" \
	    -c 2 -q 16 -Q 1000 -l 1200 -t 2 >"$d/dnsperf.txt" 2>&1 &
	LOADPID=$!
	# The shipper's backoff reaches its ceiling (10 s) after about 23 s
	# of refused attempts: PostgreSQL returns to a shipper that waits.
	say "outage: PostgreSQL stopped for 25 s under 1,000 blocked q/s"
	sleep 25
	target=$(sqlite3 "$d/db/attempts.db" "SELECT max(id) FROM attempts")
	n0=$(wc -l <"$d/stderr")
	pg_start
	t0=$(now_s)
	say "outage: PostgreSQL back; $target rows to ship"
	drain "$db" "$target" 900 "$d/marks" || die "outage: not caught up in 900 s"
	local t1 back
	t1=$(now_s)
	lines=$(tail -n +"$((n0 + 1))" "$d/stderr")
	# When the shipper connected again: the first sample with a mark.
	back=$(awk '$2 > 0 { print $1; exit }' "$d/marks")
	# SIGINT: dnsperf stops and prints its statistics.
	kill -INT "$LOADPID" 2>/dev/null || true	# gone when -l ran out
	wait "$LOADPID" 2>/dev/null || true
	LOADPID=""
	stop_daemon "$d"
	res "outage_backlog_rows $target"
	res "outage_catchup_s $(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')"
	res "outage_first_batch_after_s $back"
	res "outage_rows_per_s_after_reconnect $(awk -v a="$t1" -v b="$t0" -v k="$back" -v n="$target" 'BEGIN { printf "%.0f", n / (a - b - k) }')"
	res "outage_daemon_lines $(echo "$lines" | grep -c 'central:' || true)"
	res "outage_central_rows $(psqlc "$db" "SELECT count(*) FROM dnswarden_attempts")"
	res "outage_dnsperf_answered $(perf_of "Queries completed" "$d/dnsperf.txt") of $(perf_of "Queries sent" "$d/dnsperf.txt")"
}

for p in $PHASES; do
	case "$p" in
	ship) phase_ship ;;
	ab) phase_ab ;;
	outage) phase_outage ;;
	*) die "unknown phase $p" ;;
	esac
done

echo
echo "dnswarden $("$DWBIN" --version | awk '{ print $2 }'), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -sr), PostgreSQL $("$PGBIN/postgres" --version | awk '{ print $3 }'), SQLite $(sqlite3 --version | cut -d' ' -f1)"
cat "$RESULTS"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
