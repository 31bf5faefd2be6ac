#!/bin/sh
# blocklist_scale.sh: how the blocklist scales to a million entries.
#
# Generates (in a temporary directory, removed at exit) a list of COUNT
# random domain names in domains, hosts and adblock format, and sets of
# query names, then runs blocklist/blocklist_bench on them RUNS times and
# prints the median of each figure with the machine it ran on:
#   - import time (wall and CPU), its page faults, and the resident memory
#     added by the list (after the import and at its peak),
#   - CPU time per lookup at COUNT entries and at 16 entries, for names not
#     listed (misses), listed names (hits) and a half-and-half mix,
#   - a reload: the list loaded again beside the first copy, which is then
#     freed: its CPU time, the peak, and what stays resident after.
# The figures for docs/performance.md ("Blocklist scale") come from here.
#
# usage: bench/blocklist_scale.sh
# environment: BUILD_DIR (default build-bench, set up if missing), COUNT
# (1000000), QUERIES (1000000), RUNS (3), ROUNDS (3 passes per lookup
# figure, best kept), PYTHON (/usr/bin/python3), FORMATS ("domains hosts
# adblock").
set -eu

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-bench}
COUNT=${COUNT:-1000000}
QUERIES=${QUERIES:-1000000}
RUNS=${RUNS:-3}
ROUNDS=${ROUNDS:-3}
PYTHON=${PYTHON:-/usr/bin/python3}

[ -d "$BUILD_DIR" ] || meson setup "$BUILD_DIR" >/dev/null
ninja -C "$BUILD_DIR" blocklist/blocklist_bench >/dev/null
bench=$BUILD_DIR/blocklist/blocklist_bench

tmp=$(mktemp -d "${TMPDIR:-/tmp}/blocklist_scale.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' \
    /proc/cpuinfo | head -n 1), $(uname -sr)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "generating $COUNT names and $QUERIES queries per set..."
"$PYTHON" bench/gen_blocklist.py --count "$COUNT" --queries "$QUERIES" "$tmp"

# The median of each key=value figure over the runs in file $1.
median() {
	awk -F= '{ v[$1] = v[$1] " " $2; if (!($1 in seen)) { seen[$1] = 1;
	    order[n++] = $1 } }
	    END { for (i = 0; i < n; i++) { k = order[i];
	    m = split(substr(v[k], 2), a, " ");
	    for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++)
	    if (a[y] + 0 < a[x] + 0) { t = a[x]; a[x] = a[y]; a[y] = t }
	    printf "  %-22s %s\n", k, a[int((m + 1) / 2)] } }' "$1"
}

for fmt in ${FORMATS:-domains hosts adblock}; do
	: >"$tmp/runs-$fmt"
	i=0
	while [ "$i" -lt "$RUNS" ]; do
		"$bench" "$tmp/big-$fmt.yaml" "$tmp/small.yaml" "$tmp" \
		    "$ROUNDS" >>"$tmp/runs-$fmt"
		i=$((i + 1))
	done
	echo "$fmt format, median of $RUNS runs:"
	median "$tmp/runs-$fmt"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
