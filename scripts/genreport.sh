#!/bin/sh
# Prints the path of ISC's DNS compliance tester, genreport (from
# DNS-Compliance-Testing, MPL 2.0), for tests/e2e/test_genreport.py:
# $GENREPORT when set, else one built into build-genreport/ from the source
# that CI keeps beside the clone (../shared/tools/build-genreport.sh and its
# tarball; the source is not part of this repository). Exits 1, printing
# nothing, when neither is there.
#
#   GENREPORT=$(scripts/genreport.sh) pytest tests/e2e/test_genreport.py
set -eu
cd "$(dirname "$0")/.."
if [ -n "${GENREPORT:-}" ]; then
	[ -x "$GENREPORT" ] && { echo "$GENREPORT"; exit 0; }
	echo "GENREPORT=$GENREPORT is not an executable" >&2
	exit 1
fi
tool=../shared/tools/build-genreport.sh
if [ ! -f "$tool" ]; then
	echo "no $tool beside this clone: genreport cannot be built" >&2
	exit 1
fi
# It needs autoconf, automake, libtool and libssl-dev (scripts/deps.sh).
sh "$tool" "$PWD/build-genreport" | tail -1
