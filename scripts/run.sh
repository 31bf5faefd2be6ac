#!/usr/bin/env bash
# Build dnswarden and run it in the foreground with config/dnswarden.yaml:
# 127.0.0.1:5353 and [::1]:5353, forwarding to the nameservers in
# /etc/resolv.conf, blocking the sample sites, with the web console on
# http://127.0.0.1:8053/ (user admin; the password is made and printed on
# the first start, and only its hash is kept). Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
deps_install $DEPS_BUILD

if [ ! -d build ]; then
	meson setup build --buildtype=release >/dev/null
fi
ninja -C build resolver/dnswarden
# The user dnswarden runs as once it has bound its ports (server.user).
[ "$(id -u)" -eq 0 ] && dist/create-user.sh dist/dnswarden.sysusers
# The console's admin password: made once, shown once, kept as a hash.
hash_file=build/console-admin.hash
if [ ! -s "$hash_file" ]; then
	password=$(head -c 15 /dev/urandom | base64 | tr '+/' '-_')
	# 0644: a reload reads it as the service user; the password is 120
	# random bits, which no one recovers from a yescrypt hash.
	(umask 022 && printf '%s\n' "$password" |
	    ./build/resolver/dnswarden passwd >"$hash_file.new") &&
	    mv "$hash_file.new" "$hash_file"
	cat <<MSG
================================================================
 dnswarden console: http://127.0.0.1:8053/
 user: admin   password: $password
 (shown this once; only its hash is kept, in $hash_file:
  delete that file to get a new password)
================================================================
MSG
fi
exec ./build/resolver/dnswarden serve -c config/dnswarden.yaml "$@"
