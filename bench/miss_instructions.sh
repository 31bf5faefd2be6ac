#!/bin/bash
# miss_instructions.sh: the instructions a cache miss costs dnswarden, for
# an A/B of two builds that a shared machine's noise would hide from
# compare.sh. Each binary serves under callgrind, forwarding to NSD on
# loopback, twice: N1 and then N2 names never asked before (dnsperf, 20
# outstanding). (Ir(N2) - Ir(N1)) / (N2 - N1) is the cost of one miss,
# start-up and shut-down cancelled out. Instruction counts do not depend
# on what else the machine runs; they miss what an instruction costs
# (cache misses, system calls' time in the kernel), which compare.sh's CPU
# time shows.
#
# usage: bench/miss_instructions.sh BIN_A BIN_B [N1 N2]
#   as root (dnswarden runs with server.user: root); about 5 minutes.
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$BENCH/lib.sh"
[ $# -ge 2 ] || { sed -n '2,14s/^# \{0,1\}//p' "$0" >&2; exit 2; }
A=$1 B=$2 N1=${3:-500} N2=${4:-2500}
for tool in nsd dnsperf valgrind python3; do
	command -v "$tool" >/dev/null ||
	    { echo "miss_instructions.sh: needs $tool" >&2; exit 2; }
done
bench_tmp miss_instructions	# T, PIDS, removed at exit

NSD_PORT=$(free_port)
cat >"$T/bench.test.zone" <<EOF
\$ORIGIN bench.test.
\$TTL 86400
@ IN SOA ns.bench.test. hostmaster.bench.test. 1 3600 600 86400 300
@ IN NS ns.bench.test.
ns IN A 127.0.0.1
* IN A 192.0.2.1
EOF
nsd_conf "$T" bench.test "$NSD_PORT"
nsd_start "$T" "$NSD_PORT" ns.bench.test

# Ir of one run of bin answering n fresh names.
run() {
	local bin=$1 n=$2 port vg
	port=$(free_port)
	mkdir -p "$T/log-$n"
	python3 -c "import random
for i in range($n): print('m%d-%d.bench.test A' % (i, random.randrange(10**9)))" \
	    >"$T/q.txt"
	cat >"$T/dw.yaml" <<EOF
server:
  listen: ["127.0.0.1:$port"]
  allow_clients: ["127.0.0.0/8"]
  threads: 1
  rate_limit: { qps: 0, burst: 2000 }
  user: root
upstreams: ["127.0.0.1:$NSD_PORT"]
upstream_timeout_ms: 60000
log:
  database: "$T/log-$n/attempts.db"
EOF
	valgrind --tool=callgrind --callgrind-out-file="$T/cg.out" \
	    "$bin" serve -c "$T/dw.yaml" 2>"$T/dw.log" &
	vg=$!
	for _ in $(seq 1 240); do
		grep -q " serving, " "$T/dw.log" && break
		sleep 0.5
	done
	dnsperf -s 127.0.0.1 -p "$port" -d "$T/q.txt" -n 1 -q 20 -c 1 -t 30 \
	    >"$T/dnsperf.txt" 2>&1
	kill -TERM "$vg"
	wait "$vg" || true
	grep -q "Queries lost: *0 " "$T/dnsperf.txt" ||
	    echo "miss_instructions.sh: $bin lost queries at $n" >&2
	awk '/^(summary|totals):/ { print $2; exit }' "$T/cg.out"
	rm -rf "$T/log-$n" "$T/cg.out"
}

for bin in "$A" "$B"; do
	ir1=$(run "$bin" "$N1")
	ir2=$(run "$bin" "$N2")
	echo "$bin: $(( (ir2 - ir1) / (N2 - N1) )) instructions a miss" \
	    "(Ir $ir1 at $N1 names, $ir2 at $N2)"
done
