#!/usr/bin/env bash
# Build the fuzz targets once, then run each for SECONDS (default 20) on a
# copy of its seed corpus, FUZZ_JOBS of them at a time (default: one per
# CPU). A libFuzzer run is one process on one core, so on 2 cores two
# targets side by side each still get their SECONDS of a whole core: the
# runs are as long as one after another (FUZZ_JOBS=1), in half the time.
# Prints exactly one line per target, in the order below, "PASS fuzz/NAME"
# or "FAIL fuzz/NAME", with the end of the run's output after a FAIL;
# scripts/test.sh counts those lines. Exits non-zero if any target failed.
# Extra arguments go to scripts/fuzz.sh (--strict).
set -uo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-20}
shift || true
targets="query reply config blocklist frontend dot report http control"
logdir=$(mktemp -d "${TMPDIR:-/tmp}/dnswarden-fuzz-all.XXXXXX")
failed=0

# What explains a failure: the sanitizer or invariant report, the input.
context() {	# context LOG
	grep -E -A14 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|fuzz invariant failed' \
	    "$1" | grep -vE '^fuzz\.sh:|^stat::|^ +#[0-9]+ 0x[0-9a-f]+ (in (fuzzer::|main|__libc|_start|__sanitizer|abort|raise|__pthread)| +\()' |
	    head -24
	grep -E '^fuzz\.sh:' "$1"
}

if ! scripts/fuzz.sh --build >"$logdir/build.log" 2>&1; then
	for t in $targets; do
		echo "FAIL fuzz/$t"
	done
	tail -30 "$logdir/build.log"
	exit 1
fi
jobs=${FUZZ_JOBS:-$(nproc)}
running=0
for t in $targets; do
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
	( scripts/fuzz.sh --no-build "$@" "$t" "$seconds" >"$logdir/$t.log" 2>&1
	  echo $? >"$logdir/$t.rc" ) &
	running=$((running + 1))
done
wait
for t in $targets; do
	if [ "$(cat "$logdir/$t.rc" 2>/dev/null)" = 0 ]; then
		echo "PASS fuzz/$t"
	else
		echo "FAIL fuzz/$t"
		context "$logdir/$t.log" | sed 's/^/    /'
		failed=1
	fi
done
grep -h 'open finding' "$logdir"/*.log | sed 's/^.*open finding /open finding: /' |
    sort -u
echo "fuzz logs: $logdir"
exit "$failed"
