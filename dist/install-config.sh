#!/bin/sh
# Install the default configuration without overwriting an existing one:
# an admin's edited dnswarden.yaml survives a reinstall, and the new
# default is put beside it as dnswarden.yaml.new when the two differ.
# Called by "meson install" (dist/meson.build) as: install-config.sh SRC DIR
set -eu

# Meson before 1.1 pipes an install script's output and shows it only when
# the script fails: say it on meson's own stderr, which is the terminal's.
say() {
	if [ -w "/proc/$PPID/fd/2" ]; then
		echo "$*" >"/proc/$PPID/fd/2"
	else
		echo "$*" >&2
	fi
}

src=$1
dir=${DESTDIR:-}$2
dest=$dir/dnswarden.yaml

mkdir -p "$dir"
# The configuration may hold log.pseudonym_key: root's, readable by the
# service user's group only (the user is created before this runs).
mode=0644
group=
if getent group dnswarden >/dev/null && [ "$(id -u)" -eq 0 ]; then
	mode=0640
	group=dnswarden
fi
if [ ! -e "$dest" ]; then
	cp "$src" "$dest"
	[ -n "$group" ] && chgrp "$group" "$dest"
	chmod "$mode" "$dest"
	say "Installing $dest"
elif cmp -s "$src" "$dest"; then
	say "Up-to-date: $dest"
else
	cp "$src" "$dest.new"
	[ -n "$group" ] && chgrp "$group" "$dest.new"
	chmod "$mode" "$dest.new"
	say "Keeping $dest; the new default is $dest.new"
fi
