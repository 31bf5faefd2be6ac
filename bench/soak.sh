#!/bin/bash
# soak.sh: a bounded soak test of dnswarden (issue 5). One daemon, with a
# blocklist of 100,000 generated names plus the sample list and a cache
# small enough to churn, answers a mix of cache hits, misses, blocked
# names and AAAA/MX/TXT/SRV/HTTPS queries from dnsperf at a fixed rate
# over UDP and, more slowly, over TCP, while a second client sends bad
# packets (truncated, garbage, QR set, compression loops, bad EDNS, bit
# flips, ...) from many loopback addresses and opens misbehaving TCP
# connections (huge length prefixes, half messages that stall, resets,
# half-closes) and short well-behaved ones. Upstream is NSD on loopback.
#
# Checks (the script exits 1 if any fails; see docs/reliability.md):
#   - the resident size stays flat after warm-up (first 25 % of the run):
#     its maximum after warm-up exceeds the value at the end of warm-up by
#     at most max(RSS_SLACK_MB, RSS_SLACK_PCT %), for the whole process,
#     attempt log queue included (release build only)
#   - no query went unanswered: dnsperf lost none over UDP or TCP, every
#     well-behaved TCP query and every query refused by allow_clients
#     was answered, and the rate limit (on, above the load) dropped none;
#     and every datagram the kernel did not drop on the daemon's socket
#     was read by it (counter queries_udp), which tells a loss in the
#     kernel (a busy machine) from one in the daemon
#   - stalled TCP connections were closed by the idle timeout
#   - the cache churned: the first new names of the run, asked again at
#     the end, go upstream; and the cache_evictions counter is above 0
#   - no file descriptor leaked: as many open after the load as before
#   - the daemon still answers at the end (UDP and TCP), exits 0 on
#     SIGTERM, and its attempt log holds one row per blocked answer
#     (SQLite count = the "blocked" counter, no row dropped)
#   - --asan: no AddressSanitizer, UndefinedBehaviorSanitizer or
#     LeakSanitizer report; --valgrind: memcheck finds no error or leak
#
# Everything runs on 127.0.0.1 on free ports, in a temporary directory
# (the generated lists are never written into the repository), and every
# client is bounded by the run time: the run ends by itself.
#
# usage: bench/soak.sh [--seconds N] [--asan | --valgrind] [--rate QPS]
#                      [--keep] [--dnswarden BIN]
#   --seconds N    load duration (default 180; 120 with --asan, 60 with
#                  --valgrind)
#   --asan         the AddressSanitizer + UBSan build (build-soak-asan),
#                  at 5,000 queries a second (bad packets and TCP clients
#                  as in the release run)
#   --valgrind     the release build under valgrind memcheck, at 300
#                  queries a second
#   --rate QPS     dnsperf's UDP rate (default 20000; bad packets and TCP
#                  scale with it)
#   --keep         keep the temporary directory (configs, logs, outputs)
#   --dnswarden B  use this binary instead of building one
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
PY=/usr/bin/python3
MODE=plain
SECS=""
RATE=""
KEEP=0
DWBIN=""
WARM_PCT=25
RSS_SLACK_MB=5
RSS_SLACK_PCT=10
IDLE_MS=3000

while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) SECS=$2; shift ;;
	--asan) MODE=asan ;;
	--valgrind) MODE=valgrind ;;
	--rate) RATE=$2; shift ;;
	--keep) KEEP=1 ;;
	--dnswarden) DWBIN=$2; shift ;;
	-h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "soak.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
# The cache holds far fewer answers than the distinct names asked in the
# run (30 % of the queries are new names), so it evicts all along.
case "$MODE" in
plain) : "${SECS:=180}" "${RATE:=20000}"; CACHE_MAX=20000 ;;
asan) : "${SECS:=120}" "${RATE:=5000}"; CACHE_MAX=20000 ;;
valgrind) : "${SECS:=60}" "${RATE:=300}"; CACHE_MAX=1000 ;;
esac
# Bad UDP packets at a twentieth of the rate (1,000 a second at the
# default), misbehaving and well-behaved TCP connections at 1/1000 each;
# under ASan as many as in the release build, since they are what it
# should see most of.
BAD_RATE=$((RATE / 20 < 50 ? 50 : RATE / 20))
TCP_RATE=$(awk -v r="$RATE" 'BEGIN { x = r / 1000; print x < 2 ? 2 : x }')
[ "$MODE" = asan ] && BAD_RATE=1000 TCP_RATE=20
TCPQ_RATE=$((RATE / 40 < 20 ? 20 : RATE / 40))	# dnsperf over TCP

# shellcheck source=lib.sh
. "$BENCH/lib.sh"

# ---- packages and the daemon ----

# shellcheck source-path=SCRIPTDIR source=../scripts/deps.sh
. "$ROOT/scripts/deps.sh"
EXTRA=""
[ "$MODE" = valgrind ] && EXTRA=valgrind
# shellcheck disable=SC2086
deps_install $DEPS_BUILD nsd dnsperf python3 python3-yaml sqlite3 procps \
    $EXTRA

if [ -z "$DWBIN" ]; then
	if [ "$MODE" = asan ]; then
		say "building the sanitizer build in build-soak-asan"
		build_dnswarden build-soak-asan --buildtype=debugoptimized \
		    -Db_sanitize=address,undefined -Db_lundef=false
	else
		# Release code generation; -g only gives valgrind its stacks.
		say "building a release build in build-soak"
		build_dnswarden build-soak --buildtype=release -Ddebug=true
	fi
fi
[ -x "$DWBIN" ] || die "$DWBIN: not executable"

# ---- the temporary directory and what runs in it ----

bench_tmp dnswarden-soak		# T, PIDS, removed at exit
mkdir -m 777 "$T/db"		# the daemon runs as nobody when started as root

say "generating a 100,000-name blocklist and the query files in $T"
$PY "$BENCH/soak_gen.py" "$T" --count 100000 \
    --queries $((RATE * SECS < 1000000 ? RATE * SECS + 1000 : 1000000)) \
    --sample "$ROOT/blocklist/sample-sites.yaml"
HIT=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["hit"])' \
    "$T/names.json")
BLOCKED=$($PY -c 'import json, sys
print(json.load(open(sys.argv[1]))["blocked"][0])' "$T/names.json")

# ---- the upstream ----

NSD_PORT=$(free_port)
nsd_conf "$T" soak.test "$NSD_PORT" "" "tcp-count: 512" \
    "rrl-whitelist-ratelimit: 0" "ipv4-edns-size: 1232"
nsd_start "$T" "$NSD_PORT" "$HIT"

# ---- dnswarden ----

PORT=$(free_port)
cat >"$T/dnswarden.yaml" <<EOF
server:
  listen: ["127.0.0.1:$PORT"]
  control_socket: off
  # 127.128.0.0/9 is outside: the abuse client's queries from there are
  # REFUSED.
  allow_clients: ["127.0.0.0/9"]
  threads: 1
  # On, so that its code runs, but far above what one client sends here:
  # no query may be dropped by it.
  rate_limit: { qps: 1000000, burst: 1000000 }
  tcp_max_connections: 256
  # Every load client is on 127.0.0.1: the table is its to fill.
  tcp_max_connections_per_client: 256
  tcp_idle_timeout_ms: $IDLE_MS
upstreams: ["127.0.0.1:$NSD_PORT"]
upstream_timeout_ms: 1500
cache:
  # Far fewer than the distinct names asked: entries are evicted all along.
  max_entries: $CACHE_MAX
blocklist:
  files: ["soak-list.yaml", "$ROOT/blocklist/sample-sites.yaml"]
log:
  database: "$T/db/attempts.db"
EOF
ERR=$T/daemon.stderr
case "$MODE" in
plain) RUN=("$DWBIN") ;;
asan)
	export ASAN_OPTIONS=detect_leaks=1:halt_on_error=0:abort_on_error=0
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=0
	RUN=("$DWBIN") ;;
valgrind)
	# shellcheck disable=SC2054
	RUN=(valgrind --error-exitcode=99 --leak-check=full
	    --errors-for-leak-kinds=definite,possible --track-fds=no --vgdb=no
	    --log-file="$T/valgrind.log" "$DWBIN") ;;
esac
CMD="${RUN[*]} serve -c dnswarden.yaml"
say "starting: $CMD"
(cd "$T" && exec "${RUN[@]}" serve -c "$T/dnswarden.yaml") >"$ERR" 2>&1 &
DPID=$!
PIDS+=("$DPID")
START_TIMEOUT=60
[ "$MODE" = plain ] || START_TIMEOUT=600
T_START=$SECONDS
$PY "$BENCH/soak_client.py" wait --port "$PORT" --name "$BLOCKED" \
    --rcode NXDOMAIN --timeout "$START_TIMEOUT" ||
    { tail -30 "$ERR" >&2; die "dnswarden did not start"; }
STARTUP_S=$((SECONDS - T_START))
say "dnswarden answers on port $PORT after ${STARTUP_S} s (pid $DPID)"

# ---- sampling ----

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
nfds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
nthreads() { find "/proc/$1/task" -mindepth 1 -maxdepth 1 | wc -l; }
ms() { date +%s%3N; }

# cpu_ticks, port_drops (datagrams the kernel dropped on the daemon's
# listening socket), udp_errors (on the whole UDP stack): bench/lib.sh.

# stats FILE: SIGUSR1, then the counters it printed, into FILE.
stats() {
	dw_stats "$ERR" "$DPID" | grep 'dnswarden: stats: ' >"$1" || true
}

# Let the start-up settle (the import's pages, the writer thread).
sleep 2
FDS_START=$(nfds "$DPID")
stats "$T/stats-start.txt"

WARM_S=$((SECS * WARM_PCT / 100))
say "load: ${SECS} s (warm-up ${WARM_S} s): dnsperf UDP at $RATE/s, TCP" \
    "at $TCPQ_RATE/s, bad UDP packets at $BAD_RATE/s, bad TCP" \
    "connections at $TCP_RATE/s"
DROPS0=$(port_drops "$PORT")
read -r RCVERR0 SNDERR0 < <(udp_errors RcvbufErrors SndbufErrors)
LOAD0=$(ms)
# The attempt log's queue used to be one calloc() of log.queue_size
# slots, sampled on its own (column ring_kb) so that the flatness check
# could leave it out. It is now a chain of 64 kB chunks mapped as the
# backlog grows and unmapped when it drains (attemptlog/attemptlog.c), so
# there is no one mapping to find and the check covers the whole process;
# ring_kb stays in rss.tsv as 0.
RING_SIZE=0
ring_kb() { echo 0; }
wal_kb() {
	local f=$T/db/attempts.db-wal
	[ -e "$f" ] && echo $(($(stat -c %s "$f") / 1024)) || echo 0
}
printf 't_ms\trss_kb\tfds\tthreads\tcpu_ticks\tring_kb\twal_kb\n' \
    >"$T/rss.tsv"
sample() {
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' $(($(ms) - LOAD0)) \
	    "$(rss_kb "$DPID")" "$(nfds "$DPID")" \
	    "$(nthreads "$DPID")" "$(cpu_ticks "$DPID")" \
	    "$(ring_kb "$DPID")" "$(wal_kb)" >>"$T/rss.tsv"
}
sample
(
	while kill -0 "$DPID" 2>/dev/null && [ ! -e "$T/load-done" ]; do
		sleep 2
		sample 2>/dev/null || true
	done
) &
SAMPLER=$!
PIDS+=("$SAMPLER")

DNSPERF_UDP=(dnsperf -s 127.0.0.1 -p "$PORT" -d "$T/q-udp.txt" -l "$SECS"
    -c 4 -q 100 -Q "$RATE" -S 10)
DNSPERF_TCP=(dnsperf -m tcp -e -D -s 127.0.0.1 -p "$PORT"
    -d "$T/q-tcp.txt" -l "$SECS" -c 4 -q 20 -Q "$TCPQ_RATE")
ABUSE=("$PY" "$BENCH/soak_client.py" abuse --port "$PORT"
    --names "$T/names.json" --seconds "$SECS" --udp-rate "$BAD_RATE"
    --tcp-rate "$TCP_RATE" --good-rate "$TCP_RATE"
    --idle-timeout-ms "$IDLE_MS")
"${DNSPERF_UDP[@]}" >"$T/dnsperf-udp.txt" 2>&1 &
P1=$!
"${DNSPERF_TCP[@]}" >"$T/dnsperf-tcp.txt" 2>&1 &
P2=$!
"${ABUSE[@]}" >"$T/abuse.json" 2>"$T/abuse.stderr" &
P3=$!
PIDS+=("$P1" "$P2" "$P3")

sleep "$WARM_S"
stats "$T/stats-warm.txt"
for p in "$P1" "$P2" "$P3"; do
	wait "$p" || true
	forget "$p"
done
sample
LOAD_MS=$(($(ms) - LOAD0))
touch "$T/load-done"
wait "$SAMPLER" 2>/dev/null || true
forget "$SAMPLER"
DROPS=$(($(port_drops "$PORT") - DROPS0))
read -r RCVERR SNDERR < <(udp_errors RcvbufErrors SndbufErrors)
RCVERR=$((RCVERR - RCVERR0))
SNDERR=$((SNDERR - SNDERR0))

# Idle connections are closed by now; the daemon must answer as before
# and hold no more descriptors than before the load.
sleep $((IDLE_MS / 1000 + 1))
say "load over; checking that dnswarden still answers"
# The first new names of the run were pushed out of the cache long ago:
# asked again, each must go upstream (cache_misses + 1, no hit).
stats "$T/stats-evict0.txt"
$PY "$BENCH/soak_client.py" ask --port "$PORT" --count 20 \
    --file "$T/q-udp.txt" >"$T/evict.json" || true
stats "$T/stats-evict1.txt"
$PY "$BENCH/soak_client.py" check --port "$PORT" --names "$T/names.json" \
    >"$T/check.json" || true
FDS_END=$(nfds "$DPID")
RSS_IDLE=$(rss_kb "$DPID")
stats "$T/stats-end.txt"

say "SIGTERM"
kill -TERM "$DPID"
# It must exit by itself (a zombie, not yet waited for); after 30 s
# (300 under the sanitizers) it is killed.
STOP_WAIT=300
[ "$MODE" = plain ] || STOP_WAIT=3000
exited() {
	local st
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -z "$st" ] || [ "$st" = Z ]
}
for _ in $(seq "$STOP_WAIT"); do
	exited "$DPID" && break
	sleep 0.1
done
KILLED=0
exited "$DPID" || { kill -KILL "$DPID"; KILLED=1; }
RC=0
wait "$DPID" || RC=$?
forget "$DPID"
[ "$KILLED" = 1 ] && RC=timeout
ROWS=$(sqlite3 "$T/db/attempts.db" "SELECT count(*) FROM attempts" \
    2>"$T/sqlite.err" || echo "?")
kill "$NSD_PID" 2>/dev/null || true
wait "$NSD_PID" 2>/dev/null || true
forget "$NSD_PID"

cat >"$T/params.json" <<EOF
{
 "mode": "$MODE", "seconds": $SECS, "rate": $RATE,
 "bad_udp_rate": $BAD_RATE, "bad_tcp_rate": $TCP_RATE,
 "tcp_query_rate": $TCPQ_RATE, "warm_pct": $WARM_PCT,
 "rss_slack_mb": $RSS_SLACK_MB, "rss_slack_pct": $RSS_SLACK_PCT,
 "load_ms": $LOAD_MS, "startup_s": $STARTUP_S,
 "ring_size_kb": $RING_SIZE, "fds_start": $FDS_START, "fds_end": $FDS_END, "rss_idle_kb": $RSS_IDLE,
 "listen_drops": $DROPS, "udp_rcvbuf_errors": $RCVERR,
 "udp_sndbuf_errors": $SNDERR, "cache_max": $CACHE_MAX,
 "exit": "$RC", "db_rows": "$ROWS",
 "hz": $(getconf CLK_TCK),
 "date": "$(date -u '+%Y-%m-%d %H:%M UTC')", "nproc": $(nproc),
 "cpu": "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)",
 "kernel": "$(uname -r)",
 "loadavg": "$(cut -d' ' -f1-3 /proc/loadavg)",
 "commit": "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')",
 "daemon": "$CMD",
 "dnsperf_udp": "${DNSPERF_UDP[*]}",
 "dnsperf_tcp": "${DNSPERF_TCP[*]}",
 "abuse": "soak_client.py abuse --udp-rate $BAD_RATE --tcp-rate $TCP_RATE --good-rate $TCP_RATE"
}
EOF
$PY "$BENCH/soak_report.py" "$T"
