#!/bin/sh
# Make a minimal root filesystem from Debian's busybox-static: the test
# image until berth's image tooling (issue 3) packs it as an OCI image.
set -eu
dest=${1:?usage: busybox-rootfs.sh DIR}
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "busybox-rootfs: $busybox missing: apt-get install busybox-static" >&2; exit 1; }
tmp="$dest.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/bin" "$tmp/etc" "$tmp/tmp" "$tmp/root" "$tmp/home/app" "$tmp/proc" "$tmp/sys" "$tmp/dev" "$tmp/var/www"
chmod 1777 "$tmp/tmp"
cp "$busybox" "$tmp/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$tmp/bin/$applet"
done
cat > "$tmp/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
www-data:x:33:33:www-data:/var/www:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$tmp/etc/group" <<'G'
root:x:0:
www-data:x:33:
app:x:1000:
staff:x:50:app
nogroup:x:65534:
G
chown 1000:1000 "$tmp/home/app"
rm -rf "$dest"
mv "$tmp" "$dest"
