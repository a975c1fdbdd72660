#!/bin/sh
# A larger multi-layer test image, the same every time: a Debian minbase
# tree from debootstrap, split into three layer directories
# (usr; etc and var; the rest). Made once into DIR/layer{1,2,3}.
set -eu
dest=${1:?usage: debian-layers.sh DIR}
[ -d "$dest/layer3" ] && exit 0
command -v debootstrap >/dev/null || { echo "debian-layers: apt-get install debootstrap" >&2; exit 1; }
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
tmp="$dest.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
debootstrap --variant=minbase bookworm "$tmp/tree" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
    tail -20 "$tmp/debootstrap.log" >&2; rm -rf "$tmp"; exit 1; }
mkdir -p "$tmp/layer1" "$tmp/layer2" "$tmp/layer3"
mv "$tmp/tree/usr" "$tmp/layer1/usr"
mv "$tmp/tree/etc" "$tmp/tree/var" "$tmp/layer2/"
# The rest (bin, lib symlinks, root, tmp...) is the top layer.
for f in "$tmp/tree"/* "$tmp/tree"/.[!.]*; do [ -e "$f" ] || [ -L "$f" ] && mv "$f" "$tmp/layer3/" || true; done
rm -rf "$tmp/tree" "$tmp/debootstrap.log"
rm -rf "$dest"
mv "$tmp" "$dest"
