#!/usr/bin/env bash
# Build dnswarden and run every test: the C unit tests (plain and under
# AddressSanitizer + UndefinedBehaviorSanitizer), the end-to-end tests
# against the sanitizer build of the real binary, the unit under a booted
# systemd, and a short run of each fuzz target. The last line is
# "N passed, N failed, N skipped": a test that could not run here is listed
# as SKIP with its reason and counted apart, never as a pass.
#
# The steps that wait more than they compute run side by side
# (docs/testing.md has the times before and after):
#
#   genreport build ─┐ (background, from the start)
#   plain build ─ ASan build ─┬─ e2e, 2 pytest workers ──────────┬─ fuzz runs,
#                             ├─ unit tests (plain, ASan), then   │  2 at a time
#                             │  the fuzz build at idle priority ─┤
#                             └─ systemd boot ───────────────────┘
#
# The fuzz build takes only CPU the end-to-end tests leave idle (chrt
# --idle), so that it never slows a daemon under test. Each step's output
# is kept apart and printed once it has finished; the line before the
# last says how long each step took.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
deps_install $DEPS_BUILD $DEPS_TEST || exit 1

logdir=$(mktemp -d /tmp/dnswarden-test.XXXXXX)
start=$SECONDS

# A step writes its lines to $logdir/STEP.out: "PASS name", "FAIL name"
# and "SKIP name: why" are counted, "COUNT passed failed skipped" adds
# counts without a line each (the end-to-end tests), "TIME what seconds"
# goes to the summary of times; other lines are printed as they are.
timed() {	# timed WHAT COMMAND...: run it, then a TIME line
	local what=$1 t=$SECONDS rc
	shift
	"$@"
	rc=$?
	echo "TIME $what $((SECONDS - t))"
	return $rc
}

# meson test results, one per unit test binary.
meson_tests() {	# meson_tests BUILDDIR LABEL
	meson test -C "$1" --print-errorlogs --num-processes 2 \
	    >"$logdir/$2.log" 2>&1
	local rc=$?
	/usr/bin/python3 - "$1/meson-logs/testlog.json" "$2" <<'PY' || echo "FAIL $2"
import json, re, sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    name = sys.argv[2] + "/" + t["name"]
    if t["result"] == "SKIP":
        # unit.h's SKIP(why) lines say which test and why.
        why = re.findall(r"SKIP: (.*)", t.get("stderr") or t.get("stdout") or "")
        print("SKIP " + name + (": " + "; ".join(why) if why else ""))
        continue
    good = t["result"] in ("OK", "EXPECTEDFAIL")
    print(("PASS " if good else "FAIL ") + name)
PY
	[ "$rc" -ne 0 ] && sed -n '/^=\+ [0-9]*\/[0-9]* =\+/,$p' \
	    "$logdir/$2.log" | tail -60
	return 0
}

setup() {	# setup BUILDDIR MESON-ARGS...
	local dir=$1; shift
	if [ -d "$dir" ]; then
		meson configure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi || return 1
	ninja -C "$dir" >"$logdir/build-$dir.log" 2>&1 ||
	    { tail -40 "$logdir/build-$dir.log"; return 1; }
}

build() {	# build NAME BUILDDIR MESON-ARGS...: a PASS or FAIL line
	local name=$1; shift
	if setup "$@"; then
		echo "PASS $name"
	else
		echo "FAIL $name"
		return 1
	fi
}

e2e() {
	local genreport
	genreport=$(cat "$logdir/genreport.path" 2>/dev/null)
	# Two workers (pytest-xdist): most of a test is waiting for a daemon,
	# a timeout or a reply, so that one worker leaves a core idle. A
	# module's tests stay in one worker (--dist loadfile), where its
	# module-wide fixtures (PostgreSQL, the browser) are started once.
	GENREPORT=$genreport DNSWARDEN_BIN=$PWD/build-test-asan/resolver/dnswarden \
	    /usr/bin/python3 -m pytest -q -p no:cacheprovider -rs \
	    -n "${E2E_WORKERS:-2}" --dist loadfile --durations=25 tests/e2e \
	    --junitxml="$logdir/e2e.xml" >"$logdir/e2e.log" 2>&1
	local rc=$?
	# The end of the log without the durations (they stay in the log).
	tail -80 "$logdir/e2e.log" | grep -vE '^[0-9.]+s (setup|call|teardown) ' |
	    tail -30
	/usr/bin/python3 - "$logdir/e2e.xml" "$rc" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    r = ET.parse(sys.argv[1]).getroot()
    s = r if r.tag == "testsuite" else r.find("testsuite")
    t, f, e, sk = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    for case in s.iter("testcase"):
        for why in case.iter("skipped"):
            print("SKIP e2e/" + case.get("name") + ": " + why.get("message", ""))
        for bad in list(case.iter("failure")) + list(case.iter("error")):
            print("FAIL e2e/" + case.get("name"))
    # A skipped test is not a pass: counted apart; the lines above are
    # counted, the passes here.
    print("COUNT", t - f - e - sk, 0, 0)
    if int(sys.argv[2]) != 0 and f + e == 0:
        print(f"FAIL e2e (pytest exited {sys.argv[2]})")
except Exception as ex:
    print(f"FAIL e2e (no results: {ex})")
PY
}

systemd_boot() {
	# The unit under a real systemd booted in a container (about 15 s,
	# most of it waiting for restarts): start refused on a taken port, the
	# start limit, start, READY, reload, a failed reload, stop, the
	# security exposure. Needs root.
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP systemd-boot: needs root"
		return
	fi
	tests/systemd_boot.sh build-test >"$logdir/systemd-boot.log" 2>&1
	local rc=$?
	if [ "$rc" -eq 0 ]; then
		echo "PASS systemd-boot"
	else
		echo "FAIL systemd-boot"
		tail -30 "$logdir/systemd-boot.log"
	fi
}

idle() {	# idle COMMAND...: run it on CPU nothing else wants
	if chrt --idle 0 true 2>/dev/null; then
		chrt --idle 0 "$@"
	else
		"$@"
	fi
}

fuzz_build() {	# at idle priority; tests/fuzz/run-all.sh says if it failed
	idle scripts/fuzz.sh --build >"$logdir/fuzz-build.log" 2>&1
	return 0
}

# Fuzzing: each target for a short while under the sanitizers, from a
# fixed seed (FUZZ_SEED, default 1): the test run repeats inputs already
# tried rather than exploring, so that it fails for a change in the code,
# not by chance. Exploring is scripts/fuzz.sh's job (docs/fuzzing.md);
# FUZZ_SEED= (empty) explores here too. Each target runs its full
# FUZZ_SECONDS (20) on a core of its own, two at a time on 2 cores
# (tests/fuzz/run-all.sh), after the end-to-end tests have finished.
fuzz() {
	FUZZ_SEED=${FUZZ_SEED-1} tests/fuzz/run-all.sh "${FUZZ_SECONDS:-20}" \
	    >"$logdir/fuzz.log" 2>&1
	grep -E '^(PASS|FAIL) ' "$logdir/fuzz.log"
	grep -q '^FAIL ' "$logdir/fuzz.log" && sed -n '/^    /p' "$logdir/fuzz.log"
	return 0
}

report() {	# report STEP...: print the steps' lines, add up their counts
	local step line p f s
	for step in "$@"; do
		[ -f "$logdir/$step.out" ] || continue
		while IFS= read -r line; do
			case "$line" in
			"PASS "*) passed=$((passed + 1)); echo "$line" ;;
			"FAIL "*) failed=$((failed + 1)); echo "$line" ;;
			"SKIP "*) skipped=$((skipped + 1)); echo "$line" ;;
			"COUNT "*)
				read -r _ p f s <<<"$line"
				passed=$((passed + p)); failed=$((failed + f))
				skipped=$((skipped + s)) ;;
			"TIME "*) times+="${line#TIME }; " ;;
			*) echo "$line" ;;
			esac
		done <"$logdir/$step.out"
	done
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Where tests leave what a reviewer looks at (the console's screenshots).
export DNSWARDEN_TEST_OUTPUT=$logdir

# ISC's compliance tester, built from the source CI keeps beside the
# clone (tests/e2e/test_genreport.py is skipped without it).
scripts/genreport.sh >"$logdir/genreport.path" 2>"$logdir/genreport.log" &
genreport_pid=$!

# 1. The builds, one after the other (each takes every core), warnings as
# errors. The plain build has a custom --sysconfdir, so that the
# default_config_path test checks that the binary follows it rather than
# a path that happens to be the default.
{
	timed build build build build-test -Dwerror=true \
	    --sysconfdir=/opt/dnswarden-test/etc
	plain=$?
	timed build-asan build build-asan build-test-asan -Dwerror=true \
	    -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
	asan=$?
} >"$logdir/builds.out"

# 2. Side by side: the end-to-end tests; the unit tests of both builds,
# then the fuzz build; the systemd boot.
wait "$genreport_pid"
passed=0 failed=0 skipped=0 times=""
report builds
if [ "$asan" -eq 0 ]; then
	timed e2e e2e >"$logdir/e2e.out" &
	e2e_pid=$!
fi
{
	[ "$plain" -eq 0 ] && timed unit meson_tests build-test unit
	[ "$asan" -eq 0 ] && timed unit-asan meson_tests build-test-asan asan
	if [ -x tests/fuzz/run-all.sh ]; then
		timed fuzz-build fuzz_build
	fi
} >"$logdir/units.out" &
units_pid=$!
if [ "$plain" -eq 0 ]; then
	timed systemd-boot systemd_boot >"$logdir/systemd-boot.out" &
	boot_pid=$!
else
	echo "SKIP systemd-boot: needs the plain build" >"$logdir/systemd-boot.out"
fi
# Each step's lines once it has finished, the quickest first.
wait "$units_pid"
report units
[ -n "${boot_pid:-}" ] && wait "$boot_pid"
report systemd-boot
[ -n "${e2e_pid:-}" ] && wait "$e2e_pid"
report e2e

# 3. The fuzz runs, once nothing else runs.
if [ -x tests/fuzz/run-all.sh ]; then
	timed fuzz fuzz >"$logdir/fuzz.out"
	report fuzz
fi

echo "times (s): ${times}total $((SECONDS - start))"
echo "logs: $logdir"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
