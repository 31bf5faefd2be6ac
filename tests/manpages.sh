#!/bin/sh
# manpages.sh PAGE...: each man page renders without a warning from groff
# (-ww, every warning) or from mandoc's linter at level "warning" (the
# STYLE notes, such as lines over 80 bytes, are not failures), and its .Dd
# is current: not older than the last commit that changed the page (its
# author date, which a rebase keeps), nor than today when the page has
# changes not committed yet, and not in the future. Run by meson test;
# scripts/test.sh installs groff-base and mandoc. Exits 77 (meson's SKIP)
# with the reason when a tool is missing.
for tool in groff mandoc git; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "SKIP: $tool is not installed (apt-get install groff-base mandoc git)"
		exit 77
	}
done
today=$(date -u +%Y-%m-%d)
tomorrow=$(date -u -d tomorrow +%Y-%m-%d)
rc=0
fail() { echo "FAIL $page: $*"; rc=1; bad=1; }
for page in "$@"; do
	dir=$(dirname "$page") base=$(basename "$page") bad=0
	out=$(groff -ww -z -mandoc -Tutf8 "$page" 2>&1)
	[ -z "$out" ] || fail "groff -ww: $out"
	out=$(mandoc -Tlint -Wwarning "$page" 2>&1) || fail "mandoc -Tlint: $out"
	dd=$(sed -n 's/^\.Dd //p' "$page")
	date=$(date -u -d "$dd" +%Y-%m-%d 2>/dev/null) ||
	    { fail ".Dd '$dd' is not a date"; continue; }
	if ! git -C "$dir" rev-parse --git-dir >/dev/null 2>&1; then
		echo "SKIP: $page is not in a git work tree: no date to compare .Dd with"
		exit 77
	fi
	if git -C "$dir" diff --quiet HEAD -- "$base" 2>/dev/null; then
		changed=$(git -C "$dir" log -1 --format=%as -- "$base")
		what="the last commit that changed it"
	else
		changed=$today
		what="its uncommitted changes (today)"
	fi
	# ISO dates compare as strings.
	if [ "$date" \< "$changed" ]; then
		fail ".Dd $dd ($date) is older than $what, $changed"
	elif [ "$date" \> "$tomorrow" ]; then
		fail ".Dd $dd ($date) is in the future"
	elif [ $bad = 0 ]; then
		echo "ok $page: .Dd $date, changed $changed, no warnings"
	fi
done
exit $rc
