#!/bin/bash
# Run a command as root on a pure cgroup v2 kernel, in a throwaway VM.
#
#   scripts/cgroup2-vm/run.sh 'shell command'       (its exit status is ours)
#
# This machine is cgroup v1 (hybrid) and cannot switch, so `make test-cgroup2`
# proves the cgroup-dependent code on v2 here:
# - the kernel is Debian's linux-image-<abi>-amd64 (the one linux-image-amd64
#   depends on), fetched with `apt-get download` and unpacked with
#   `dpkg-deb -x` into the cache: nothing is installed into /boot;
# - the initramfs is busybox (busybox-static) plus this directory's `init`
#   and the modules needed to reach the root: virtio, 9p, overlay;
# - the host's `/` is the VM's root, read-only over 9p under a tmpfs overlay,
#   so the VM runs the host's binaries (cargo's test executables, berth,
#   nft, busybox) at their own paths and writes nowhere on the host;
# - init switch_roots into it (see init for why not a chroot); cgroup2 alone
#   is mounted at /sys/fs/cgroup (and the kernel is booted with
#   cgroup_no_v1=all); the unpacked modules are bound at /lib/modules, so the
#   kernel's module autoload (veth, bridge, nf_tables, ...) runs the host's
#   kmod on them;
# - the command's output goes to the console (our stdout) and its exit status
#   comes back through a second, writable 9p share holding only that file.
# QEMU runs with TCG (-accel tcg): KVM hangs on this machine.
#
# Environment: CGROUP2_VM_CACHE (kernel and initramfs, default
# .build/cgroup2-vm), CGROUP2_VM_MEM (MiB, default 3072), CGROUP2_VM_CPUS
# (default 2), CGROUP2_VM_TIMEOUT (seconds, default 1200), CGROUP2_VM_ENV
# (names of variables to pass into the VM; PATH and HOME always are).
set -euo pipefail

# depmod is in /sbin.
export PATH="$PATH:/usr/sbin:/sbin"
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${CGROUP2_VM_CACHE:-$repo/.build/cgroup2-vm}
mem=${CGROUP2_VM_MEM:-3072}
cpus=${CGROUP2_VM_CPUS:-2}
limit=${CGROUP2_VM_TIMEOUT:-1200}

[ $# -eq 1 ] || { echo "usage: $0 'command'" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: run as root" >&2; exit 2; }

# The modules the initramfs loads itself (busybox modprobe adds what they
# depend on); everything else the kernel autoloads from the root.
BOOT_MODULES="virtio_pci 9pnet_virtio 9p overlay"

kernel_abi() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: linux-image-\(.*-amd64\)$/\1/p' | head -n1
}

prepare_kernel() {
    local abi=$1 dir=$cache/kernel-$1
    [ -f "$dir/ready" ] && return
    # A new kernel replaces the cached ones (about 400 MB each).
    rm -rf "$cache"/kernel-* "$cache"/initramfs-*
    mkdir -p "$dir"
    (cd "$dir" && apt-get download -q "linux-image-$abi" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    dpkg-deb -x "$dir"/linux-image-"$abi"_*.deb "$dir/root"
    rm -f "$dir"/linux-image-"$abi"_*.deb
    depmod -b "$dir/root" "$abi"
    touch "$dir/ready"
}

# The modules.dep lines of `name` and of every module it depends on.
module_closure() {
    local modules=$1 name=$2 line
    line=$(grep -E "(^|/)${name//_/[_-]}\.ko:" "$modules/modules.dep" | head -n1)
    [ -n "$line" ] || return 0 # built into the kernel
    echo "$line"
    local dep
    for dep in ${line#*:}; do
        grep -E "^$dep:" "$modules/modules.dep"
    done
}

prepare_initramfs() {
    local abi=$1 out=$cache/initramfs-$1.cpio.gz
    local stamp
    stamp=$(cat "$here/init" "$0" | sha256sum | cut -c1-16)
    if [ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
        return
    fi
    local tmp
    tmp=$(mktemp -d)
    mkdir -p "$tmp"/{bin,sbin,dev,proc,sys,lower,upper,newroot,out}
    cp /bin/busybox "$tmp/bin/busybox"
    ln -s busybox "$tmp/bin/sh"
    install -m 0755 "$here/init" "$tmp/init"
    local modules=$cache/kernel-$abi/root/lib/modules/$abi
    local inside=$tmp/lib/modules/$abi name rel
    mkdir -p "$inside"
    for name in $BOOT_MODULES; do
        module_closure "$modules" "$name"
    done | sort -u >"$inside/modules.dep"
    for rel in $(cut -d: -f1 "$inside/modules.dep"); do
        mkdir -p "$inside/$(dirname "$rel")"
        cp "$modules/$rel" "$inside/$rel"
    done
    echo "$BOOT_MODULES" >"$tmp/boot-modules"
    (cd "$tmp" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$out.tmp")
    mv "$out.tmp" "$out"
    echo "$stamp" >"$out.stamp"
    rm -rf "$tmp"
}

mkdir -p "$cache"
abi=$(kernel_abi)
[ -n "$abi" ] || { echo "$0: no linux-image-*-amd64 in apt (run apt-get update)" >&2; exit 2; }
prepare_kernel "$abi"
prepare_initramfs "$abi"

# The writable share: the command, its environment, and the status file.
out=$(mktemp -d /var/tmp/cgroup2-vm-out.XXXXXX)
trap 'rm -rf "$out"' EXIT
{
    printf 'export PATH=%q HOME=%q\n' "$PATH" "${HOME:-/root}"
    for v in ${CGROUP2_VM_ENV:-}; do
        [ -n "${!v+x}" ] && printf 'export %s=%q\n' "$v" "${!v}"
    done
    printf 'cd %q\n' "$PWD"
    printf '%s\n' "$1"
} >"$out/cmd.sh"
printf '%s\n' "$PWD" >"$out/pwd"

echo "cgroup2-vm: kernel $abi, ${mem} MiB, $cpus vCPUs (TCG)"
status=0
timeout --foreground -k 10 "$limit" qemu-system-x86_64 \
    -accel tcg -cpu max -smp "$cpus" -m "$mem" \
    -nographic -no-reboot -nodefaults -serial stdio \
    -kernel "$cache/kernel-$abi/root/boot/vmlinuz-$abi" \
    -initrd "$cache/initramfs-$abi.cpio.gz" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 cgroup_no_v1=all modules_dir=/lib/modules/$abi modules_root=$cache/kernel-$abi/root" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap \
    -virtfs local,path="$out",mount_tag=out,security_model=passthrough,multidevs=remap \
    </dev/null || status=$?
if [ "$status" -ne 0 ]; then
    echo "cgroup2-vm: qemu exited with $status (124: timed out after ${limit}s)" >&2
    exit 1
fi
if [ ! -s "$out/status" ]; then
    echo "cgroup2-vm: the VM stopped without an exit status" >&2
    exit 1
fi
exit "$(cat "$out/status")"
