#!/bin/bash
# console_load.sh: the console under load beside the DNS path (issue 13).
# 50 API clients read reports (kept-alive connections, an hr token) while
# dnsperf sends blocked queries at a fixed rate; four phases in one run,
# A B B A (A: DNS alone, B: DNS and the clients), so that each order is
# measured. The figures to compare are the DNS path's CPU time per answer
# (every thread but the console's, from /proc/PID/task/*/schedstat) and
# dnsperf's per-answer latency; the machine may be shared, and the
# clients themselves take CPU, so wall-clock figures are noisier. The
# API's latency (p50, p99, max), errors and the console thread's CPU per
# request are printed for the B phases. Everything runs on 127.0.0.1 in a
# temporary directory; a run takes about a minute.
#
# usage: bench/console_load.sh [--dnswarden BIN] [console_load.py options]
#   --dnswarden BIN  use this binary instead of building build-bench
#   --clients N      API clients (50)       --dur S     s per phase (10)
#   --rate QPS       DNS queries/s (2000)   --history N attempts already
#                    in the log (20000)     --count N   blocklist names
#   --out FILE       also write the table   --perf DIR  perf record the
#                    console thread under load afterwards
#   --client-nice N  the clients' threads at nice N (they stand for other
#                    machines; on a small one their CPU queues the DNS thread)
#   (neither --pin nor --pin-shared)  nothing pinned: the layout without
#                    server.cpus or http.cpus, the daemon, dnsperf and the
#                    clients wherever the kernel puts them
#   --pin            server.cpus: [0], http.cpus: [1] (the console's threads
#                    off the DNS thread's CPU); dnsperf and the clients
#                    (SCHED_IDLE) on CPU 1: the figures to compare on a
#                    2-core machine
#   --pin-shared     as before those keys: the whole daemon on CPU 0 with
#                    taskset, dnsperf and the clients as with --pin
#   --console-nice N http.nice: N (default 10; 0 is the console as before)
#   --dnsperf-cpu N  dnsperf on CPU N (0: beside the DNS loop, not the console)
#   --dnsperf-rt     dnsperf at SCHED_FIFO 1, so that its own wait for the
#                    CPU it shares with the console is not in its latency
#   --console-sched P  the console's threads under policy P (other, batch,
#                    idle, nice0, nice10), set from outside
#   --sched-ab P,Q   B phases under both, in both orders, one daemon
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
DWBIN=""
ARGS=()
while [ $# -gt 0 ]; do
	case "$1" in
	--dnswarden) DWBIN=$2; shift ;;
	*) ARGS+=("$1") ;;
	esac
	shift
done
for tool in dnsperf python3; do
	command -v "$tool" >/dev/null || { echo "$tool is missing (scripts/deps.sh)" >&2; exit 1; }
done
if [ -z "$DWBIN" ]; then
	[ -d "$ROOT/build-bench" ] || meson setup "$ROOT/build-bench" \
	    -Dbuildtype=release >/dev/null
	ninja -C "$ROOT/build-bench" resolver/dnswarden >/dev/null
	DWBIN="$ROOT/build-bench/resolver/dnswarden"
fi
exec /usr/bin/python3 "$BENCH/console_load.py" --bin "$DWBIN" "${ARGS[@]}"
