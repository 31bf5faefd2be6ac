#!/bin/sh
# Install the default configuration without overwriting an existing one:
# an admin's edited dnswarden.yaml survives a reinstall, and the new
# default is put beside it as dnswarden.yaml.new when the two differ.
# Called by "meson install" (dist/meson.build) as: install-config.sh SRC DIR
set -eu

src=$1
dir=${DESTDIR:-}$2
dest=$dir/dnswarden.yaml

mkdir -p "$dir"
if [ ! -e "$dest" ]; then
	cp "$src" "$dest"
	chmod 0644 "$dest"
	echo "Installing $dest" >&2
elif cmp -s "$src" "$dest"; then
	echo "Up-to-date: $dest" >&2
else
	cp "$src" "$dest.new"
	chmod 0644 "$dest.new"
	echo "Keeping $dest; the new default is $dest.new" >&2
fi
