#!/usr/bin/env bash
# Build dnswarden and run it in the foreground with config/dnswarden.yaml:
# 127.0.0.1:5353 and [::1]:5353, forwarding to the nameservers in
# /etc/resolv.conf, blocking the sample sites. Stop it with Ctrl-C.
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
exec ./build/resolver/dnswarden serve -c config/dnswarden.yaml "$@"
