#!/bin/bash
# dot_ab.sh: the cache-miss CPU per answer of dnswarden over DNS over TLS
# beside the same over UDP (issue 16: within 1.5x once connections are
# warm), for one build or an A/B of two, in both orders in one run. It is
# the DoT part of compare.sh without the blocklist, the peers and the
# other workloads, so that a change can be measured several times in the
# minutes compare.sh takes once.
#
# NSD on loopback serves a wildcard zone over UDP and, on a port of its
# own, over TLS (a certificate from a CA made for the run); it shares
# CPU 1 with dnsperf, and dnswarden has CPU 0. Per round and per binary:
# a UDP miss run (a dnswarden forwarding over UDP), then a DoT miss run (a
# dnswarden forwarding over TLS, after a one-second pass that opens its
# connections). Rounds alternate the order of the binaries (A B, B A, ...).
# CPU per answer is the server's run time, all threads, from
# /proc/PID/task/*/schedstat (nanoseconds), over the answers dnsperf got;
# "others" is the CPU 0 time that other processes took meanwhile, in % of
# that CPU, to judge how loaded the machine was.
#
# usage: bench/dot_ab.sh [--rounds N] [--dur S] [--perf DIR] BIN_A [BIN_B]
#   --rounds N  rounds (default 2: with two binaries, both orders)
#   --dur S     seconds per dnsperf run (default 5)
#   --perf DIR  also profile the UDP and the DoT miss of each binary once,
#               in a run of their own: perf stat (system calls) and perf
#               record (call graphs) into DIR
# Needs nsd, dnsperf, openssl, python3; dnswarden runs with user: root.
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$BENCH/lib.sh"
ROUNDS=2
DUR=5
PERFDIR=""
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=$2; shift ;;
	--dur) DUR=$2; shift ;;
	--perf) PERFDIR=$(realpath -m "$2"); shift ;;
	-h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) echo "dot_ab.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
	shift
done
[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '20,25s/^# \{0,1\}//p' "$0" >&2; exit 2; }
BINS=()
for b in "$@"; do
	[ -x "$b" ] || { echo "dot_ab.sh: $b: not executable" >&2; exit 2; }
	BINS+=("$(realpath "$b")")
done
for tool in nsd dnsperf openssl python3 taskset; do
	command -v "$tool" >/dev/null ||
	    { echo "dot_ab.sh: needs $tool" >&2; exit 2; }
done
[ -n "$PERFDIR" ] && mkdir -p "$PERFDIR"

bench_tmp dot_ab		# T, PIDS, removed at exit

say() { printf '== %s\n' "$*" >&2; }

python3 "$BENCH/compare_gen.py" "$T" --count 1000 --hits 10 --blocked 10 \
    >/dev/null
PROBE_BLOCKED=$(sed -n 1p "$T/probe-names.txt")
PROBE_HIT=$(sed -n 2p "$T/probe-names.txt")

make_test_ca "$T/tls"

NSD_PORT=$(free_port)
NSD_TLS_PORT=$(free_port)
nsd_conf "$T" bench.test "$NSD_PORT" "$NSD_TLS_PORT"

# start LOG PORT QNAME RCODE CMD...: CMD on CPU 0 until it answers; SPID.
start() {
	local cpus=0
	[ "$5" = nsd ] && cpus=1
	probe_start "$1" "$2" "$3" "$4" "$cpus" "${@:5}" ||
	    die "${*:5} did not start"
}

start "$T/nsd.out" "$NSD_PORT" "$PROBE_HIT" NOERROR nsd -d -c "$T/nsd.conf"
NSD_PID=$SPID

# Run time of all of PID's threads, in ns.
run_ns() {
	cat /proc/"$1"/task/*/schedstat 2>/dev/null |
	    awk '{ t += $1 } END { printf "%d\n", t }'
}
# Busy time of CPU 0 in clock ticks.
cpu0_ticks() { awk '$1 == "cpu0" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
HZ=$(getconf CLK_TCK)

SEQ=0
# measure PID PORT: one dnsperf run of never-asked names; prints
# "us_per_answer answers others_pct".
measure() {
	local pid=$1 port=$2 n0 n1 b0 b1 m0 m1 done
	SEQ=$((SEQ + 1))
	awk -v t="m$SEQ" -v n=$((120000 * DUR)) 'BEGIN {
		for (i = 0; i < n; i++) printf "%s-%d.bench.test A\n", t, i
	}' >"$T/q.txt"
	n0=$(run_ns "$pid") b0=$(cpu0_ticks) m0=$(date +%s%3N)
	taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$T/q.txt" -n 1 \
	    -c 8 -l "$DUR" >"$T/dnsperf.txt" 2>&1 || true
	sleep 0.3
	n1=$(run_ns "$pid") b1=$(cpu0_ticks) m1=$(date +%s%3N)
	done=$(awk '/Queries completed:/ { print $3 }' "$T/dnsperf.txt")
	awk -v ns=$((n1 - n0)) -v d="${done:-0}" -v b=$((b1 - b0)) \
	    -v ms=$((m1 - m0)) -v hz="$HZ" 'BEGIN {
		o = (b / hz * 1e9 - ns) / (ms * 1e6) * 100; if (o < 0) o = 0
		printf "%.2f %d %.0f\n", d ? ns / d / 1000 : 0, d, o }'
}

conf() {	# FILE PORT UPSTREAMS
	cat >"$1" <<EOF
server:
  listen: ["127.0.0.1:$2"]
  control_socket: off
  allow_clients: ["127.0.0.0/8"]
  user: root
  threads: 1
  rate_limit: { qps: 0, burst: 2000 }
upstreams: [$3]
tls_ca_file: "$T/tls/ca.pem"
cache:
  max_entries: 100000
blocklist:
  files: [blocklist.yaml]
log:
  database: "$T/attempts.db"
EOF
}

# profile PID PORT TAG: during one dnsperf miss run, perf stat (system
# calls per answer) for 4 s, then perf record (call graphs) for 3 s.
profile() {
	local pid=$1 port=$2 tag=$3
	awk 'BEGIN { for (i = 0; i < 1200000; i++) printf "p%d.bench.test A\n", i }' \
	    >"$T/p.txt"
	taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$T/p.txt" -n 1 \
	    -c 8 -l 9 >"$PERFDIR/dnsperf-$tag.txt" 2>&1 &
	sleep 1
	perf stat -p "$pid" -o "$PERFDIR/stat-$tag.txt" \
	    -e task-clock,context-switches,raw_syscalls:sys_enter \
	    -e 'syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendmsg,syscalls:sys_enter_sendto,syscalls:sys_enter_recvmmsg,syscalls:sys_enter_sendmmsg,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_epoll_wait' \
	    -- sleep 4 >/dev/null 2>&1 || true
	perf record -q -F 2999 -g -p "$pid" -o "$PERFDIR/perf-$tag.data" \
	    -- sleep 3 >/dev/null 2>&1 || true
	wait
	grep -E 'completed|Queries per second' "$PERFDIR/dnsperf-$tag.txt" \
	    >>"$PERFDIR/stat-$tag.txt" || true
}

declare -A UDP DOT
PERFED=" "
run_bin() {	# INDEX
	local i=$1 bin=${BINS[$1]} port r
	port=$(free_port)
	rm -f "$T"/attempts.db*	# the builds' log schemas may differ
	conf "$T/udp.yaml" "$port" "\"127.0.0.1:$NSD_PORT\""
	start "$T/dw-udp.log" "$port" "$PROBE_BLOCKED" NXDOMAIN \
	    "$bin" serve -c "$T/udp.yaml"
	r=$(measure "$SPID" "$port")
	[ -n "$PERFDIR" ] && [[ "$PERFED" != *" $i "* ]] &&
	    profile "$SPID" "$port" "udp-$i"
	stop_pid "$SPID"
	UDP[$i]+="${r%% *} "
	say "$(basename "$(dirname "$(dirname "$bin")")")[$i] UDP miss: $r (us/answer answers others%)"
	port=$(free_port)
	conf "$T/dot.yaml" "$port" \
	    "{ address: \"127.0.0.1:$NSD_TLS_PORT\", tls_name: \"dot.bench.test\" }"
	rm -f "$T/dw-dot.log" "$T"/attempts.db*
	start "$T/dw-dot.log" "$port" "$PROBE_BLOCKED" NXDOMAIN \
	    "$bin" serve -c "$T/dot.yaml"
	awk 'BEGIN { for (i = 0; i < 5000; i++) printf "w%d.bench.test A\n", i }' \
	    >"$T/warm.txt"
	taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$T/warm.txt" -n 1 \
	    -Q 2000 -l 1 -c 8 >/dev/null 2>&1 || true
	if [ -n "$PERFDIR" ] && [[ "$PERFED" != *" $i "* ]]; then
		PERFED+="$i "
		profile "$SPID" "$port" "dot-$i"
	fi
	r=$(measure "$SPID" "$port")
	kill -USR1 "$SPID"
	sleep 0.3
	stop_pid "$SPID"
	DOT[$i]+="${r%% *} "
	say "$(basename "$(dirname "$(dirname "$bin")")")[$i] DoT miss: $r; $(
	    awk '/Response codes:/ { sub(/.*codes: */, ""); printf "%s; ", $0 }' \
	    "$T/dnsperf.txt")$(awk '/stats: upstream .* tls_/ {
	    printf "%s=%s ", $5, $6 }' "$T/dw-dot.log")"
}

for r in $(seq "$ROUNDS"); do
	if [ ${#BINS[@]} = 2 ] && [ $((r % 2)) = 0 ]; then
		run_bin 1; run_bin 0
	else
		run_bin 0
		[ ${#BINS[@]} = 2 ] && run_bin 1
	fi
done
stop_pid "$NSD_PID"

echo "date $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
for i in "${!BINS[@]}"; do
	echo "${BINS[$i]}: UDP ${UDP[$i]}| DoT ${DOT[$i]}" | awk '{
		u = 0; d = 0; nu = 0; nd = 0; side = 0
		for (k = 2; k <= NF; k++) {
			if ($k == "|") { side = 1; continue }
			if ($k == "UDP" || $k == "DoT") continue
			if (side) { d += $k; nd++ } else { u += $k; nu++ }
		}
		printf "%s\n  mean UDP miss %.2f us, DoT miss %.2f us, ratio %.2fx\n",
		    $0, u / nu, d / nd, (d / nd) / (u / nu) }'
done
