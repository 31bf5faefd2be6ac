#!/bin/bash
# compare.sh: dnswarden beside dnsmasq and Unbound, on one machine, in one
# run (issue 6). Each server is a single-threaded caching forwarder to the
# same NSD on loopback with the same 1,000,000-domain blocklist; each is
# pinned to CPU 0 and dnsperf to CPU 1, and measured on cache hits, blocked
# queries, cache misses and a burst of 1,000 outstanding queries. The
# figure to compare is the server's CPU time per answered query (user +
# system of all its threads, from /proc/PID/stat): queries per second are
# capped by dnsperf itself on a small machine. A bare UDP echo loop gives
# the floor, and dnswarden runs once more with server.threads: 2.
#
# The machine may be shared: each run notes how much CPU other processes
# took meanwhile, and a run where they took more than 10 % of a CPU is
# repeated once (within a time budget), keeping the quieter one.
#
# Everything runs on 127.0.0.1 on free ports, in a temporary directory
# (the generated lists are never written into the repository), and every
# dnsperf run is bounded by -l; the whole run ends by itself in 4 to 8
# minutes, about 2 with --quick (more when unrelated work slows the
# start-up of the servers).
#
# usage: bench/compare.sh [--quick] [--out FILE] [--doc] [--profile DIR]
#                         [--no-threads] [--dnswarden BIN] [--count N]
#                         [--keep] [--peers LIST] [--baseline BIN]
#                         [--set 'KEY: VALUE'] [--baseline-set 'KEY: VALUE']
#                         [--no-dot]
#   --quick         3 s per workload instead of 6, no second attempts
#   --out FILE      also write the markdown table to FILE
#   --doc           replace the "Comparison" section of docs/performance.md
#   --profile DIR   afterwards, perf stat and perf record dnswarden during
#                   the hit, blocked and miss workloads; reports go to DIR
#   --no-threads    skip the dnswarden "server.threads: 2" run
#   --dnswarden BIN use this binary instead of building build-bench
#   --count N       blocklist size (default 1000000)
#   --keep          keep the temporary directory (configs, logs, outputs)
#   --peers LIST    the peers to run: "dnsmasq unbound" (the default), one
#                   of them, or "none"
#   --baseline BIN  also run this dnswarden binary (say, one built from the
#                   commit before a change) just before dnswarden, and show
#                   it as a column of its own: an A/B in one run
#   --set 'KEY: VALUE'  add this top-level line to dnswarden's configuration
#                   (not the baseline's, which may not know the key); may
#                   be given more than once
#   --baseline-set 'KEY: VALUE'  the same for the baseline: with the same
#                   binary as --baseline, an A/B of a setting in the other
#                   order (the setting on the run that goes first)
#   --no-dot        skip the DNS-over-TLS runs (dnswarden and Unbound
#                   forwarding over TLS to the same NSD, cache misses)
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
DUR=6
COUNT=1000000
OUT=""
DOC=0
PROFILE=""
THREADS2=1
DWBIN=""
KEEP=0
PEERS="dnsmasq unbound"
BASELINE=""
EXTRA_CONF=""
BASE_CONF=""
DOT=1
CLIENTS=8
ATTEMPTS=2		# per workload, while the machine is busy
MAX_NOISE=10		# % of a CPU used by others that triggers a retry
BUDGET=300		# s after which nothing is retried

while [ $# -gt 0 ]; do
	case "$1" in
	--quick) DUR=3 ATTEMPTS=1 BUDGET=90 ;;
	--out) OUT=$2; shift ;;
	--doc) DOC=1 ;;
	--profile) PROFILE=$2; shift ;;
	--no-threads) THREADS2=0 ;;
	--dnswarden) DWBIN=$2; shift ;;
	--count) COUNT=$2; shift ;;
	--keep) KEEP=1 ;;
	--peers) PEERS=$2; shift ;;
	--baseline) BASELINE=$(realpath "$2"); shift ;;
	--set) EXTRA_CONF+="$2"$'\n'; shift ;;
	--baseline-set) BASE_CONF+="$2"$'\n'; shift ;;
	--no-dot) DOT=0 ;;
	-h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
[ -n "$OUT" ] && OUT=$(realpath -m "$OUT")
[ -n "$PROFILE" ] && PROFILE=$(realpath -m "$PROFILE")

# shellcheck source=lib.sh
. "$BENCH/lib.sh"

# ---- packages and the daemon ----

# shellcheck source=../scripts/deps.sh
. "$ROOT/scripts/deps.sh"
# shellcheck disable=SC2086
deps_install $DEPS_BUILD nsd dnsperf dnsmasq-base unbound python3 sqlite3 \
    procps iproute2 util-linux $([ -n "$PROFILE" ] && echo linux-perf)

if [ -z "$DWBIN" ]; then
	say "building a release build in build-bench"
	build_dnswarden build-bench --buildtype=release
fi
[ -x "$DWBIN" ] || die "$DWBIN: not executable"

# ---- the temporary directory and what runs in it ----

bench_tmp dnswarden-compare	# T, PIDS, removed at exit
mkdir "$T/out" "$T/logs"

# free_port, cpu_ticks, thread_ticks, udp_errors, port_drops, stop_pid:
# bench/lib.sh.

rss_mb() {
	awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# Wait until the process has used no CPU for 0.3 s (a writer thread or
# a queue still draining), at most 5 s, so its work is counted.
settle() {
	local a b i
	a=$(cpu_ticks "$1")
	for i in $(seq 16); do
		sleep 0.3
		b=$(cpu_ticks "$1")
		[ "$a" = "$b" ] && return
		a=$b
	done
}

RESULTS=$T/results.tsv
: >"$RESULTS"
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
put() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }
put _ max_noise "$MAX_NOISE"

# start NAME PORT QNAME RCODE CPUS CMD...: run CMD pinned to CPUS, time it
# until it answers QNAME with RCODE; sets SPID, records the start-up time.
start() {
	local name=$1 qname=$3 rcode=$4
	shift
	probe_start "$T/logs/$name.log" "$@" ||
	    die "$name did not answer $qname with $rcode"
	put "$name" pid "$SPID"
	put "$name" startup_s "$STARTUP_S"
	# The CPU it took, all threads: unlike the wall time, this holds when
	# other processes share the machine.
	put "$name" startup_cpu_s "$(awk -v t="$(cpu_ticks "$SPID")" \
	    -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }')"
}

# ---- inputs ----

say "generating a $COUNT-domain blocklist and query files in $T"
python3 "$BENCH/compare_gen.py" "$T" --count "$COUNT"
PROBE_BLOCKED=$(sed -n 1p "$T/probe-names.txt")
PROBE_HIT=$(sed -n 2p "$T/probe-names.txt")

# Unique names under the wildcard zone, never asked before, for one miss
# or burst run: enough for 120,000 queries a second. Sets FRESH to the
# file (a global, since a $( ) subshell would not count SEQ up).
SEQ=0
fresh_names() {
	SEQ=$((SEQ + 1))
	FRESH=$T/q-fresh-$SEQ.txt
	awk -v t="u$SEQ" -v n=$((120000 * DUR)) 'BEGIN {
		for (i = 0; i < n; i++)
			printf "%s-%d.bench.test A\n", t, i
	}' >"$FRESH"
}

# ---- measuring ----

HZ=$(getconf CLK_TCK)

# Busy ticks of one CPU ("cpu0") or of all ("cpu"), from /proc/stat:
# user, nice, system, irq, softirq, steal.
cpu_busy() {
	awk -v c="$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9; exit }' \
	    /proc/stat
}

# CPU ticks of the NSD processes: the one we started and its descendants
# (the one that answers is a grandchild), listed once in NSD_PIDS.
nsd_ticks() {
	local p t=0
	for p in $NSD_PIDS; do
		t=$((t + $(cpu_ticks "$p" 2>/dev/null || echo 0)))
	done
	echo "$t"
}

# CPU ticks of this shell's finished children (dnsperf). "times" has to
# run in this shell, not in a $( ) subshell, which has its own children.
children_ticks() {
	times >"$T/times"
	times_ticks "$T/times"
}

now_ms() { date +%s%3N; }

# busy_pct TICKS MS: one CPU's busy ticks over MS milliseconds, in %
# (ticks and milliseconds do not line up exactly: capped at 100).
busy_pct() {
	local v=$(( $1 * 100000 / ($2 * HZ) ))
	echo $((v > 100 ? 100 : v))
}

# measure_once NAME PID PORT WORKLOAD QFILE OUTFILE DNSPERF_ARGS...: one
# bounded dnsperf run with per-query output (-v) for the 99th percentile.
# Writes its figures to OUTFILE and sets NOISE to the CPU that processes
# other than ours used meanwhile, in % of one CPU: on CPU 0 when the
# server has it alone, on all CPUs otherwise.
measure_once() {
	local name=$1 pid=$2 port=$3 w=$4 qfile=$5 res=$6 raw sum n
	local c0 c1 t0 t1 d0 l0 b0 b1 a0 a1 k0 k1 s0 s1 m0 m1 e0 e1
	shift 6
	raw=$T/out/$name-$w.raw
	sum=$T/out/$name-$w.txt
	: >"$res"
	c0=$(cpu_ticks "$pid") t0=$(thread_ticks "$pid")
	d0=$(udp_errors RcvbufErrors) l0=$(port_drops "$port")
	b0=$(cpu_busy cpu0) e0=$(cpu_busy cpu1) a0=$(cpu_busy cpu)
	s0=$(nsd_ticks)
	children_ticks >/dev/null
	k0=$(children_ticks) m0=$(now_ms)
	taskset -c "$PERF_CPUS" dnsperf -s 127.0.0.1 -p "$port" -d "$qfile" \
	    -c "$CLIENTS" -T "$PERF_THREADS" -l "$DUR" -v "$@" >"$raw" 2>&1 ||
	    true
	settle "$pid"
	c1=$(cpu_ticks "$pid") t1=$(thread_ticks "$pid")
	b1=$(cpu_busy cpu0) e1=$(cpu_busy cpu1) a1=$(cpu_busy cpu)
	s1=$(nsd_ticks)
	k1=$(children_ticks) m1=$(now_ms)
	if [ "$SRV_CPUS" = 0 ]; then
		NOISE=$(( (b1 - b0 - (c1 - c0)) * 100000 / ((m1 - m0) * HZ) ))
	else
		NOISE=$(( (a1 - a0 - (c1 - c0) - (s1 - s0) - (k1 - k0)) *
		    100000 / ((m1 - m0) * HZ) ))
	fi
	[ "$NOISE" -lt 0 ] && NOISE=0
	{
		printf '%s\t%s.others_pct\t%s\n' "$name" "$w" "$NOISE"
		# How busy each CPU was, everything included: a CPU 1 near
		# 100 % means dnsperf and NSD, not the server, set the pace.
		printf '%s\t%s.cpu0_pct\t%s\n' "$name" "$w" \
		    "$(busy_pct $((b1 - b0)) $((m1 - m0)))"
		printf '%s\t%s.cpu1_pct\t%s\n' "$name" "$w" \
		    "$(busy_pct $((e1 - e0)) $((m1 - m0)))"
		printf '%s\t%s.nsd_pct\t%s\n' "$name" "$w" \
		    $(( (s1 - s0) * 100000 / ((m1 - m0) * HZ) ))
		printf '%s\t%s.rcvbuf_drops\t%s\n' "$name" "$w" \
		    $(($(udp_errors RcvbufErrors) - d0))
		printf '%s\t%s.listen_drops\t%s\n' "$name" "$w" \
		    $(($(port_drops "$port") - l0))
	} >>"$res"
	grep -v '^>' "$raw" >"$sum" || true
	awk '/^> / && $NF ~ /^[0-9.]+$/ { print $NF }' "$raw" | sort -g \
	    >"$raw.lat"
	n=$(wc -l <"$raw.lat")
	printf '%s\t%s.p99_us\t%s\n' "$name" "$w" "$(awk -v n="$n" '
	    NR == int(n * 0.99 + 0.999) { printf "%.0f", $1 * 1e6 }' \
	    "$raw.lat")" >>"$res"
	rm -f "$raw" "$raw.lat"
	awk -v name="$name" -v w="$w" -v cpu=$((c1 - c0)) -v hz="$HZ" '
	function put(k, v) { printf "%s\t%s.%s\t%s\n", name, w, k, v }
	/Queries sent:/ { put("sent", $3) }
	/Queries completed:/ { done = $3; put("completed", $3) }
	/Queries lost:/ { put("lost", $3) }
	/Queries per second:/ { put("qps", sprintf("%.0f", $4)) }
	/Average Latency/ { put("avg_us", sprintf("%.0f", $4 * 1e6)) }
	/Response codes:/ { sub(/.*Response codes: */, ""); put("rcodes", $0) }
	END {
		put("cpu_s", cpu / hz)
		if (done > 0)
			put("cpu_us", sprintf("%.2f", cpu / hz / done * 1e6))
	}' "$sum" >>"$res"
	printf '%s\t%s.threads\t%s\n' "$name" "$w" "$(awk -v a="$t0" \
	    -v b="$t1" 'BEGIN {
		n = split(a, x, " "); for (i = 1; i <= n; i++) {
			split(x[i], p, ":"); before[p[1]] += p[2] }
		n = split(b, y, " "); for (i = 1; i <= n; i++) {
			split(y[i], p, ":"); after[p[1]] += p[2] }
		for (k in after) if (after[k] - before[k] > 0)
			printf "%s%s:%d", sep, k, after[k] - before[k], sep = " "
	}')" >>"$res"
}

# measure NAME PID PORT WORKLOAD QFILE|fresh DNSPERF_ARGS...: measure_once,
# again while other processes used more than MAX_NOISE % of a CPU (the
# machine is shared), up to ATTEMPTS times and within the time budget;
# keeps the quietest attempt. "fresh" makes new never-asked names for
# each attempt.
measure() {
	local name=$1 pid=$2 port=$3 w=$4 qspec=$5 a best=0 bestnoise=0 q
	shift 5
	for a in $(seq "$ATTEMPTS"); do
		q=$qspec
		if [ "$q" = fresh ]; then
			fresh_names
			q=$FRESH
		fi
		measure_once "$name" "$pid" "$port" "$w" "$q" \
		    "$T/out/$name-$w.$a.tsv" "$@"
		[ "$q" != "$qspec" ] && rm -f "$q"
		if [ "$best" = 0 ] || [ "$NOISE" -lt "$bestnoise" ]; then
			best=$a bestnoise=$NOISE
		fi
		[ "$NOISE" -le "$MAX_NOISE" ] && break
		[ "$SECONDS" -lt "$BUDGET" ] && [ "$a" -lt "$ATTEMPTS" ] || break
		say "$name $w: others used $NOISE % of a CPU meanwhile; again"
	done
	cat "$T/out/$name-$w.$best.tsv" >>"$RESULTS"
	put "$name" "$w.attempts" "$a"
	put "$name" "$w.rss_mb" "$(rss_mb "$pid")"
	say "$name $w: $(awk -F'\t' '$2 !~ /rcodes|threads|sent|cpu_s/ {
		sub(/^[a-z]*\./, "", $2); printf "%s=%s ", $2, $3 }' \
	    "$T/out/$name-$w.$best.tsv")"
}

# workloads NAME PID PORT: warm the cache gently, then the four runs.
workloads() {
	local name=$1 pid=$2 port=$3
	put "$name" rss_load_mb "$(rss_mb "$pid")"
	# dnsmasq drops queries when a burst hits a cold cache: fill it at
	# 5,000 queries a second first.
	taskset -c "$PERF_CPUS" dnsperf -s 127.0.0.1 -p "$port" \
	    -d "$T/q-hit.txt" -n 1 -Q 5000 -q 50 -c "$CLIENTS" \
	    >"$T/out/$name-warm.txt" 2>&1 || true
	measure "$name" "$pid" "$port" hit "$T/q-hit.txt"
	measure "$name" "$pid" "$port" blocked "$T/q-blocked.txt"
	measure "$name" "$pid" "$port" miss fresh -n 1
	measure "$name" "$pid" "$port" burst fresh -n 1 -q 1000
	put "$name" rss_end_mb "$(rss_mb "$pid")"
	put "$name" nthreads "$(ls "/proc/$pid/task" | wc -l)"
}

# ---- the upstream ----

# NSD serves DNS over TLS too, on a port of its own, with a certificate
# for dot.bench.test from a CA made here (tls_ca_file for both clients).
make_test_ca "$T/tls"

NSD_PORT=$(free_port)
NSD_TLS_PORT=$(free_port)
nsd_conf "$T" bench.test "$NSD_PORT" "$NSD_TLS_PORT"
# NSD shares CPU 1 with dnsperf, so that CPU 0 is the server's alone.
start nsd "$NSD_PORT" "$PROBE_HIT" NOERROR 1 nsd -d -c "$T/nsd.conf"
NSD_PID=$SPID
NSD_PIDS=$NSD_PID
new=$NSD_PID
while [ -n "$new" ]; do
	new=$(for p in $new; do pgrep -P "$p" || true; done)
	NSD_PIDS="$NSD_PIDS $new"
done

PERF_CPUS=1
PERF_THREADS=1
SRV_CPUS=0

# ---- the floor: a UDP echo loop ----

say "UDP echo floor"
cc -O2 -o "$T/udp_echo" "$BENCH/udp_echo.c"
port=$(free_port)
start echo "$port" "$PROBE_HIT" NOERROR 0 "$T/udp_echo" "$port" 600
measure echo "$SPID" "$port" hit "$T/q-hit.txt"
stop_pid "$SPID"

# ---- dnswarden ----

# dnswarden_conf FILE PORT THREADS LOGDIR [EXTRA]
dnswarden_conf() {
	cat >"$1" <<EOF
server:
  listen: ["127.0.0.1:$2"]
  control_socket: off
  allow_clients: ["127.0.0.0/8", "::1/128"]
  threads: $3
  rate_limit: { qps: 0, burst: 2000 }
upstreams: ["127.0.0.1:$NSD_PORT"]
cache:
  max_entries: 100000
  max_bytes: 67108864
blocklist:
  files: [blocklist.yaml]
log:
  database: "$4/attempts.db"
${5:-}
EOF
}

# run_dnswarden NAME THREADS CPUS [BIN]
run_dnswarden() {
	local name=$1 port bin=${4:-$DWBIN}
	port=$(free_port)
	SRV_CPUS=$3
	local extra=$EXTRA_CONF
	[ "$name" = baseline ] && extra=$BASE_CONF
	dnswarden_conf "$T/$name.yaml" "$port" "$2" "$T/$name-log" "$extra"
	say "$name (server.threads: $2, CPUs $3)"
	start "$name" "$port" "$PROBE_BLOCKED" NXDOMAIN "$3" \
	    "$bin" serve -c "$T/$name.yaml"
	workloads "$name" "$SPID" "$port"
	kill -USR1 "$SPID"
	sleep 0.3
	stop_pid "$SPID"
	# Every blocked answer should be a row in the attempt log.
	put "$name" log_rows "$(sqlite3 "$T/$name-log/attempts.db" \
	    "SELECT count(*) FROM attempts" 2>/dev/null || echo "?")"
	put "$name" counters "$(awk '/stats: / && $3 ~ /^(queries|blocked|cache_hits|cache_misses|merged|servfail|overload_dropped|upstream_timeouts|upstream_queries|upstream_sockets|log_rows_written|log_rows_dropped)$/ {
	    printf "%s=%s ", $3, $4 }' "$T/logs/$name.log")"
}

[ -n "$BASELINE" ] && run_dnswarden baseline 1 0 "$BASELINE"
run_dnswarden dnswarden 1 0

# dot_workloads NAME PID PORT: cache misses forwarded over TLS, once a
# short pass has opened the connections (the figure is for warm ones).
dot_workloads() {
	local name=$1 pid=$2 port=$3
	fresh_names
	taskset -c "$PERF_CPUS" dnsperf -s 127.0.0.1 -p "$port" -d "$FRESH" \
	    -n 1 -Q 2000 -l 1 -c "$CLIENTS" >"$T/out/$name-dotwarm.txt" 2>&1 ||
	    true
	rm -f "$FRESH"
	measure "$name" "$pid" "$port" dotmiss fresh -n 1
	measure "$name" "$pid" "$port" dotburst fresh -n 1 -q 1000
}

if [ "$DOT" = 1 ]; then
	port=$(free_port)
	dnswarden_conf "$T/dnswarden-dot.yaml" "$port" 1 "$T/dnswarden-dot-log" \
	    "$EXTRA_CONF"$'\n'"tls_ca_file: \"$T/tls/ca.pem\""
	sed -i "s|^upstreams: .*|upstreams: [{ address: \"127.0.0.1:$NSD_TLS_PORT\", tls_name: \"dot.bench.test\" }]|" \
	    "$T/dnswarden-dot.yaml"
	say "dnswarden over TLS to NSD"
	SRV_CPUS=0
	start dnswarden-dot "$port" "$PROBE_BLOCKED" NXDOMAIN 0 \
	    "$DWBIN" serve -c "$T/dnswarden-dot.yaml"
	dot_workloads dnswarden "$SPID" "$port"
	kill -USR1 "$SPID"
	sleep 0.3
	stop_pid "$SPID"
	put dnswarden dot_counters "$(awk '/stats: upstream .* tls_/ {
	    printf "%s=%s ", $5, $6 }' "$T/logs/dnswarden-dot.log")"
fi

# ---- dnsmasq ----

if [[ " $PEERS " == *" dnsmasq "* ]]; then
say "dnsmasq"
port=$(free_port)
start dnsmasq "$port" "$PROBE_BLOCKED" NXDOMAIN 0 \
    dnsmasq -k --no-resolv --no-hosts --server="127.0.0.1#$NSD_PORT" \
    --port="$port" --listen-address=127.0.0.1 --bind-interfaces \
    --cache-size=100000 --pid-file --log-facility=- \
    --conf-file="$T/dnsmasq-block.conf"
workloads dnsmasq "$SPID" "$port"
stop_pid "$SPID"
fi

# ---- Unbound ----

if [[ " $PEERS " == *" unbound "* ]]; then
say "Unbound"
port=$(free_port)
cat >"$T/unbound.conf" <<EOF
server:
  interface: 127.0.0.1@$port
  port: $port
  do-ip6: no
  num-threads: 1
  so-reuseport: no
  access-control: 127.0.0.0/8 allow
  chroot: ""
  username: ""
  directory: "$T"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  do-not-query-localhost: no
  module-config: "iterator"
  # 64 MiB in all, like dnswarden's cache.max_bytes.
  msg-cache-size: 32m
  rrset-cache-size: 32m
  # .test is a default local zone (RFC 6761); bench.test is forwarded.
  local-zone: "test." nodefault
  include: "$T/unbound-block.conf"
remote-control:
  control-enable: no
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$NSD_PORT
EOF
start unbound "$port" "$PROBE_BLOCKED" NXDOMAIN 0 \
    unbound -d -c "$T/unbound.conf"
workloads unbound "$SPID" "$port"
stop_pid "$SPID"
if [ "$DOT" = 1 ]; then
	# The same Unbound forwarding over TLS to NSD's TLS port.
	say "Unbound over TLS to NSD"
	port=$(free_port)
	sed -e "s|^  interface: .*|  interface: 127.0.0.1@$port|" \
	    -e "s|^  port: .*|  port: $port\n  tls-cert-bundle: \"$T/tls/ca.pem\"|" \
	    -e "s|^  forward-addr: .*|  forward-tls-upstream: yes\n  forward-addr: 127.0.0.1@$NSD_TLS_PORT#dot.bench.test|" \
	    "$T/unbound.conf" >"$T/unbound-dot.conf"
	start unbound-dot "$port" "$PROBE_BLOCKED" NXDOMAIN 0 \
	    unbound -d -c "$T/unbound-dot.conf"
	dot_workloads unbound "$SPID" "$port"
	stop_pid "$SPID"
fi
fi

# ---- dnswarden with two event loops ----

if [ "$THREADS2" = 1 ]; then
	# Two loops need both cores, so dnsperf shares them.
	PERF_CPUS=0,1
	PERF_THREADS=2
	run_dnswarden dnswarden-2t 2 0,1
	PERF_CPUS=1
	PERF_THREADS=1
	SRV_CPUS=0
fi

# ---- profile ----

# The server's "queries" counter, from the stats that SIGUSR1 prints to
# its log: wait for the new printout (a busy loop may take a while).
dw_queries() {
	local n i
	n=$(grep -c 'stats: queries ' "$2" || true)
	kill -USR1 "$1"
	for i in $(seq 50); do
		[ "$(grep -c 'stats: queries ' "$2" || true)" -gt "$n" ] && break
		sleep 0.05
	done
	awk '/stats: queries / { q = $4 } END { print q + 0 }' "$2"
}

# profile W QFILE DNSPERF_ARGS...: during one 10 s dnsperf run, count
# syscalls and CPU per query with perf stat for 3 s, then sample stacks
# with perf record for 5 s (apart, since sampling costs CPU itself).
profile() {
	local w=$1 qfile=$2 dp q0 q1 m0 m1 c0 c1
	local log=$T/logs/dnswarden-profile.log
	shift 2
	taskset -c 1 dnsperf -s 127.0.0.1 -p "$PPORT" -d "$qfile" \
	    -c "$CLIENTS" -l 10 "$@" >"$PROFILE/dnsperf-$w.txt" 2>&1 &
	dp=$!
	sleep 1
	m0=$(now_ms)
	c0=$(cpu_ticks "$PPID_DW")
	q0=$(dw_queries "$PPID_DW" "$log")
	perf stat -x, -p "$PPID_DW" -o "$T/stat-$w.csv" \
	    -e task-clock,context-switches,raw_syscalls:sys_enter \
	    -e "$PERF_SYSCALLS" -- sleep 3 >/dev/null 2>&1 || true
	c1=$(cpu_ticks "$PPID_DW")
	m1=$(now_ms)
	q1=$(dw_queries "$PPID_DW" "$log")
	perf record -q -F 4999 --call-graph dwarf,8192 -p "$PPID_DW" \
	    -o "$T/perf-$w.data" -- sleep 5 >/dev/null 2>&1 || true
	wait "$dp" || true
	# The counter brackets perf stat's 3 s with a little to spare. CPU
	# comes from /proc/PID/stat as in the table (perf's task-clock read
	# low here while tracepoints were on).
	awk -F, -v q=$(( (q1 - q0) * 3000 / (m1 - m0) )) -v w="$w" \
	    -v cpu=$(( (c1 - c0) * 1000 / HZ )) -v qq=$((q1 - q0)) '
	$3 == "context-switches" { cs = $1 }
	$3 == "raw_syscalls:sys_enter" { sc = $1 }
	$3 ~ /^syscalls:sys_enter_/ && $1 > 0 {
		sub(/^syscalls:sys_enter_/, "", $3)
		per = per sprintf(" %s %.2f", $3, q ? $1 / q : 0)
	}
	END {
		if (q == 0) q = 1
		printf "%s: %d queries in 3 s; per query: %.2f us CPU, " \
		    "%.2f syscalls (%s ), %.3f context switches\n", w, q,
		    qq ? cpu * 1000 / qq : 0, sc / q, per, cs / q
	}' "$T/stat-$w.csv" | tee "$PROFILE/stat-$w.txt" >&2
	perf report -i "$T/perf-$w.data" --no-children --sort pid -g none \
	    --stdio 2>/dev/null | grep '%' >"$PROFILE/threads-$w.txt" || true
	perf report -i "$T/perf-$w.data" --no-children --percent-limit 0.5 \
	    --stdio -g none --sort dso,symbol >"$PROFILE/self-$w.txt" \
	    2>/dev/null || true
	perf report -i "$T/perf-$w.data" --children --percent-limit 2 \
	    --stdio -g caller,0.5,callee,function,percent --sort symbol \
	    >"$PROFILE/callers-$w.txt" 2>/dev/null || true
	say "profile $w: $PROFILE/self-$w.txt, callers-$w.txt"
}

# The syscalls counted one by one; the tracepoints need tracefs.
PERF_SYSCALLS=""
for sc in socket bind connect close epoll_ctl epoll_wait sendto sendmsg \
    sendmmsg recvfrom recvmsg recvmmsg pwrite64 fdatasync futex; do
	PERF_SYSCALLS="$PERF_SYSCALLS${PERF_SYSCALLS:+,}syscalls:sys_enter_$sc"
done

if [ -n "$PROFILE" ]; then
	mkdir -p "$PROFILE"
	perf stat -e "$PERF_SYSCALLS" -- true >/dev/null 2>&1 ||
	    PERF_SYSCALLS=raw_syscalls:sys_exit
	PPORT=$(free_port)
	dnswarden_conf "$T/profile.yaml" "$PPORT" 1 "$T/profile-log"
	say "profiling dnswarden"
	start dnswarden-profile "$PPORT" "$PROBE_BLOCKED" NXDOMAIN 0 \
	    "$DWBIN" serve -c "$T/profile.yaml"
	PPID_DW=$SPID
	taskset -c 1 dnsperf -s 127.0.0.1 -p "$PPORT" -d "$T/q-hit.txt" \
	    -n 1 -Q 5000 -q 50 -c "$CLIENTS" >/dev/null 2>&1 || true
	profile hit "$T/q-hit.txt"
	profile blocked "$T/q-blocked.txt"
	fresh_names
	profile miss "$FRESH" -n 1
	stop_pid "$PPID_DW"
fi

stop_pid "$NSD_PID"

# ---- the table ----

{
	echo "date	$(date -u +%Y-%m-%d)"
	echo "nproc	$(nproc)"
	echo "cpu	$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "kernel	$(uname -sr)"
	echo "dnswarden	$("$DWBIN" --version 2>&1 | head -1) ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'))"
	[ -n "$BASELINE" ] && echo "baseline	$BASELINE"
	echo "dnsmasq	$(dnsmasq --version | head -1 | awk '{ print $3 }')"
	echo "unbound	$(unbound -V | awk '/^Version/ { print $2 }')"
	echo "nsd	$(nsd -v 2>&1 | awk '/^NSD version/ { print $3 }')"
	echo "dnsperf	$(dnsperf -h 2>&1 | awk '/^Version/ { print $2 }')"
	echo "loadavg	$LOADAVG_START / $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "count	$COUNT"
	echo "duration	$DUR"
	echo "clients	$CLIENTS"
} >"$T/meta.tsv"

args=("$T/results.tsv" "$T/meta.tsv")
[ -n "$OUT" ] && args+=(--out "$OUT")
[ "$DOC" = 1 ] && args+=(--doc "$ROOT/docs/performance.md")
python3 "$BENCH/compare_table.py" "${args[@]}"
