#!/usr/bin/env bash
# Run one libFuzzer target under AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   scripts/fuzz.sh [options] TARGET SECONDS [LIBFUZZER-ARGS...]
#   scripts/fuzz.sh --build
#
# TARGET is query, reply, config, blocklist, frontend, dot, report, http
# or control (tests/fuzz/fuzz_TARGET.c).
# The run works on a copy of tests/fuzz/corpus/TARGET in a temporary
# directory; the committed corpus changes only with --merge. Exits 0 when
# the run found nothing, 1 on any finding (crash, leak, sanitizer report,
# failed invariant, timeout, out of memory; the input is kept and its path
# printed), 2 on a usage or build error.
#
# Options:
#   --build     only build the targets (in $FUZZ_BUILD_DIR, default build-fuzz)
#   --no-build  do not (re)build first
#   --merge     afterwards, add the inputs that found new coverage to the
#               committed corpus (minimised with -merge=1)
#   --strict    accepted for old scripts; every run is strict now, since
#               every finding in docs/fuzzing.md is fixed
#   --keep      keep the working directory even when nothing was found
#
# With FUZZ_SEED set, libFuzzer starts from that seed (-seed=N): the same
# binary and corpus then make the same inputs in the same order, so a run
# that passed once passes again for as long. scripts/test.sh sets it, so
# that CI repeats a run already made; unset, each run explores anew.
set -uo pipefail
cd "$(dirname "$0")/.."
# No finding is tolerated: the ones the targets once knew are fixed and
# their reproducers are in the corpus.
export FUZZ_STRICT=1

TARGETS="query reply config blocklist frontend dot report http control"
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
build=1 build_only=0 merge=0 keep=0

usage() {
	sed -n '3,27s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--build) build_only=1 ;;
	--no-build) build=0 ;;
	--merge) merge=1 ;;
	--strict) ;;	# the default now: every finding is fixed
	--keep) keep=1 ;;
	-h|--help) usage ;;
	--) shift; break ;;
	-*) echo "fuzz.sh: unknown option $1" >&2; usage ;;
	*) break ;;
	esac
	shift
done

fuzz_build() {
	. scripts/deps.sh
	deps_install $DEPS_BUILD clang libclang-rt-14-dev || return 1
	# fuzzer-no-link instruments the libraries under test for coverage;
	# the targets themselves link with -fsanitize=fuzzer.
	local opts=(-Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
	    -Dbuildtype=debugoptimized
	    "-Dc_args=-fsanitize=fuzzer-no-link -fno-sanitize-recover=all")
	if [ -f "$BUILD_DIR/build.ninja" ]; then
		meson configure "$BUILD_DIR" "${opts[@]}" >/dev/null
	else
		rm -rf "$BUILD_DIR"
		CC=clang meson setup "$BUILD_DIR" "${opts[@]}" >/dev/null
	fi || return 1
	local t targets=()
	for t in $TARGETS; do targets+=("tests/fuzz/fuzz_$t"); done
	ninja -C "$BUILD_DIR" "${targets[@]}" >/dev/null ||
	    ninja -C "$BUILD_DIR" "${targets[@]}" 2>&1 | tail -40
	for t in $TARGETS; do
		[ -x "$BUILD_DIR/tests/fuzz/fuzz_$t" ] || return 1
	done
}

if [ "$build_only" -eq 1 ]; then
	fuzz_build || { echo "fuzz.sh: build failed" >&2; exit 2; }
	exit 0
fi

[ $# -ge 2 ] || usage
target=$1 seconds=$2
shift 2
case " $TARGETS " in *" $target "*) ;; *) echo "fuzz.sh: no target $target" >&2; usage ;; esac
case "$seconds" in ''|*[!0-9]*) usage ;; esac

if [ "$build" -eq 1 ]; then
	fuzz_build || { echo "fuzz.sh: build failed" >&2; exit 2; }
fi
bin=$PWD/$BUILD_DIR/tests/fuzz/fuzz_$target
seeds=$PWD/tests/fuzz/corpus/$target
[ -x "$bin" ] || { echo "fuzz.sh: $bin not built" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/dnswarden-fuzz-$target.XXXXXX")
mkdir "$work/corpus" "$work/artifacts"
cp "$seeds"/* "$work/corpus/"
dict=()
[ -f "tests/fuzz/$target.dict" ] && dict=("-dict=$PWD/tests/fuzz/$target.dict")
[ -n "${FUZZ_SEED:-}" ] && dict+=("-seed=$FUZZ_SEED")

export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# Run from the working directory: libFuzzer writes fuzz-*.log and such there.
(cd "$work" && "$bin" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "${dict[@]}" "$@" corpus)
rc=$?

found=$(find "$work/artifacts" -type f | sort)
if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
	echo "fuzz.sh: $target: FINDING (exit $rc)" >&2
	for f in $found; do
		echo "fuzz.sh: input saved in $f" >&2
		echo "fuzz.sh: reproduce: $bin $f" >&2
	done
	[ -z "$found" ] && echo "fuzz.sh: no input saved; log above" >&2
	exit 1
fi

if [ "$merge" -eq 1 ]; then
	before=$(ls "$seeds" | wc -l)
	(cd "$work" && "$bin" -merge=1 -max_len=8192 "$seeds" corpus \
	    >merge.log 2>&1) || { tail -20 "$work/merge.log" >&2; exit 1; }
	echo "fuzz.sh: $target: corpus $before -> $(ls "$seeds" | wc -l) files," \
	    "$(cat "$seeds"/* | wc -c) bytes (keep tests/fuzz/corpus under 200 KB)" >&2
fi
if [ "$keep" -eq 1 ]; then
	echo "fuzz.sh: working directory $work" >&2
else
	rm -rf "$work"
fi
echo "fuzz.sh: $target: nothing found in $seconds s" >&2
exit 0
