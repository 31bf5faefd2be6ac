#!/bin/sh
# default_config_path.sh DNSWARDEN EXPECTED: "dnswarden check" without -c
# reads the configuration under meson's sysconfdir (EXPECTED, computed by
# meson from --prefix and --sysconfdir), and "dnswarden help" names it.
# scripts/test.sh configures its plain build with a custom --sysconfdir so
# that this runs against a path other than /etc and /usr/local/etc.
bin=$1 want=$2
out=$("$bin" check 2>&1)
first=$(printf '%s\n' "$out" | head -n 1)
case "$first" in
"$want: "*) ;;
*)	echo "FAIL: dnswarden check without -c: '$first', want '$want: ...'"
	exit 1 ;;
esac
"$bin" help 2>&1 | grep -qF "Default FILE: $want" || {
	echo "FAIL: dnswarden help does not name $want"; exit 1; }
echo "ok: $want"
