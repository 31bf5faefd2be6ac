#!/usr/bin/env bash
# Build dnswarden and run every test: the C unit tests (plain and under
# AddressSanitizer + UndefinedBehaviorSanitizer), the end-to-end tests
# against the sanitizer build of the real binary, and a short run of each
# fuzz target. The last line is "N passed, N failed, N skipped": a test
# that could not run here is listed as SKIP with its reason and counted
# apart, never as a pass.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
deps_install $DEPS_BUILD $DEPS_TEST || exit 1

passed=0
failed=0
skipped=0
logdir=$(mktemp -d /tmp/dnswarden-test.XXXXXX)

count() {	# count NAME STATUS
	if [ "$2" -eq 0 ]; then
		passed=$((passed + 1)); echo "PASS $1"
	else
		failed=$((failed + 1)); echo "FAIL $1"
	fi
}

# meson test results, one per unit test binary.
meson_tests() {	# meson_tests BUILDDIR LABEL
	meson test -C "$1" --print-errorlogs --num-processes 2 \
	    >"$logdir/$2.log" 2>&1
	local rc=$?
	/usr/bin/python3 - "$1/meson-logs/testlog.json" "$2" <<'PY' || rc=1
import json, re, sys
ok = bad = skip = 0
for line in open(sys.argv[1]):
    t = json.loads(line)
    name = sys.argv[2] + "/" + t["name"]
    if t["result"] == "SKIP":
        # unit.h's SKIP(why) lines say which test and why.
        why = re.findall(r"SKIP: (.*)", t.get("stderr") or t.get("stdout") or "")
        print("SKIP " + name + (": " + "; ".join(why) if why else ""))
        skip += 1
        continue
    good = t["result"] in ("OK", "EXPECTEDFAIL")
    print(("PASS " if good else "FAIL ") + name)
    ok += good; bad += not good
open("/tmp/.dw-meson-count", "w").write(f"{ok} {bad} {skip}\n")
PY
	read -r ok bad skip </tmp/.dw-meson-count
	passed=$((passed + ok)); failed=$((failed + bad))
	skipped=$((skipped + skip))
	[ "$rc" -ne 0 ] && sed -n '/^=\+ [0-9]*\/[0-9]* =\+/,$p' \
	    "$logdir/$2.log" | tail -60
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

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Where tests leave what a reviewer looks at (the console's screenshots).
export DNSWARDEN_TEST_OUTPUT=$logdir

# 1. The plain build, warnings as errors.
# A custom --sysconfdir, so that the default_config_path test checks that
# the binary follows it rather than a path that happens to be the default.
if setup build-test -Dwerror=true --sysconfdir=/opt/dnswarden-test/etc; then
	count build 0
	meson_tests build-test unit
else
	count build 1
fi

# 2. The sanitizer build: unit tests and the end-to-end suite.
if setup build-test-asan -Dwerror=true -Db_sanitize=address,undefined \
    -Db_lundef=false -Dbuildtype=debug; then
	count build-asan 0
	meson_tests build-test-asan asan
	# ISC's compliance tester, built from the source CI keeps beside the
	# clone (tests/e2e/test_genreport.py is skipped without it).
	GENREPORT=$(scripts/genreport.sh 2>"$logdir/genreport.log") ||
	    GENREPORT=
	GENREPORT=$GENREPORT DNSWARDEN_BIN=$PWD/build-test-asan/resolver/dnswarden \
	    /usr/bin/python3 -m pytest -q -p no:cacheprovider -rs tests/e2e \
	    --junitxml="$logdir/e2e.xml" >"$logdir/e2e.log" 2>&1
	rc=$?
	tail -30 "$logdir/e2e.log"
	read -r ok bad skip < <(/usr/bin/python3 - "$logdir/e2e.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    r = ET.parse(sys.argv[1]).getroot()
    s = r if r.tag == "testsuite" else r.find("testsuite")
    t, f, e, sk = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    for case in s.iter("testcase"):
        for why in case.iter("skipped"):
            print("SKIP e2e/" + case.get("name") + ": " + why.get("message", ""),
                  file=sys.stderr)
    # A skipped test is not a pass: counted apart.
    print(t - f - e - sk, f + e, sk)
except Exception:
    print(0, 1, 0)
PY
)
	passed=$((passed + ok)); failed=$((failed + bad))
	skipped=$((skipped + skip))
	[ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && failed=$((failed + 1))
else
	count build-asan 1
fi

# 2b. The unit under a real systemd booted in a container (about 30 s):
# start refused on a taken port, the start limit, start, READY, reload, a
# failed reload, stop, the security exposure. Needs root.
if [ "$(id -u)" = 0 ] && [ -x build-test/resolver/dnswarden ]; then
	tests/systemd_boot.sh build-test >"$logdir/systemd-boot.log" 2>&1
	rc=$?
	count systemd-boot "$rc"
	[ "$rc" -ne 0 ] && tail -30 "$logdir/systemd-boot.log"
else
	skipped=$((skipped + 1))
	echo "SKIP systemd-boot: needs root and the plain build"
fi

# 3. Fuzzing: each target for a short while under the sanitizers, from a
# fixed seed (FUZZ_SEED, default 1): the test run repeats inputs already
# tried rather than exploring, so that it fails for a change in the code,
# not by chance. Exploring is scripts/fuzz.sh's job (docs/fuzzing.md);
# FUZZ_SEED= (empty) explores here too.
if [ -x tests/fuzz/run-all.sh ]; then
	FUZZ_SEED=${FUZZ_SEED-1} tests/fuzz/run-all.sh "${FUZZ_SECONDS:-20}" \
	    >"$logdir/fuzz.log" 2>&1
	while read -r line; do
		case "$line" in
		"PASS "*) passed=$((passed + 1)); echo "$line" ;;
		"FAIL "*) failed=$((failed + 1)); echo "$line" ;;
		esac
	done <"$logdir/fuzz.log"
fi

echo "logs: $logdir"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
