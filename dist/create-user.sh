#!/bin/sh
# Create the system user dnswarden runs as (server.user) unless it exists:
# with systemd-sysusers and the sysusers.d file where systemd-sysusers is
# there, with adduser --system elsewhere. Called by "meson install"
# (dist/meson.build) and scripts/run.sh as: create-user.sh [SYSUSERS_FILE]
set -eu

user=dnswarden
if getent passwd "$user" >/dev/null; then
	exit 0
fi
if [ -n "${DESTDIR:-}" ]; then
	echo "DESTDIR is set: not creating user $user here; create it where" \
	    "dnswarden is installed" >&2
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "not root: create the system user $user as root (see" \
	    "dist/create-user.sh); until then dnswarden runs as nobody" >&2
	exit 0
fi
file=${1:-}
case "$file" in
/* | "") ;;
*) file=$PWD/$file ;;	# systemd-sysusers ignores a relative path
esac
if command -v systemd-sysusers >/dev/null 2>&1 && [ -n "$file" ] &&
    [ -r "$file" ] && systemd-sysusers "$file" &&
    getent passwd "$user" >/dev/null; then
	:
elif command -v adduser >/dev/null 2>&1; then
	adduser --system --group --quiet --no-create-home \
	    --home /nonexistent --shell /usr/sbin/nologin \
	    --gecos "dnswarden DNS-blocking resolver" "$user"
else
	useradd --system --user-group --no-create-home \
	    --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
fi
echo "Created system user $user" >&2
