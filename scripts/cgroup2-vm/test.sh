#!/bin/bash
# `make test-cgroup2`: the cgroup-dependent tests on a pure cgroup v2 kernel,
# in the VM of run.sh, with the test executables `make test` already built
# (nextest's reuse-build: no compiling inside the VM).
#
# Which tests (nextest filter expression, CGROUP2_FILTER overrides it):
# - binary(runtime): the whole runtime suite: limits (memory, OOM -> 137,
#   pids, cpu), every cgroup file berth writes, confinement, devices, cleanup;
# - binary(tasks): task cgroups, OOM as ECS reports it, reservations,
#   cleanup after stop and after a killed CLI;
# - binary(services) & test(/kill|dies/): a service's kill -9 recovery;
# - test(/security|confine|device|escape|cgroup|oom/) in any binary: the
#   security and confinement tests, so new ones are picked up by their name.
# Needs BERTH_BIN and BERTH_TEST_ROOTFS, as `make test`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
default_filter='binary(runtime) | binary(tasks) | (binary(services) & test(/kill|dies/)) | test(/security|confine|device|escape|cgroup|oom/)'
filter=${CGROUP2_FILTER:-$default_filter}

if [ "${1:-}" = --inside ]; then
    meta=$2 filter=$3
    fs=$(stat -fc %T /sys/fs/cgroup)
    if [ "$fs" != cgroup2fs ]; then
        echo "cgroup2-vm: /sys/fs/cgroup is $fs, not cgroup2fs" >&2
        exit 1
    fi
    echo "cgroup2-vm: /sys/fs/cgroup is $fs"
    cd "$repo"
    exec cargo-nextest nextest run \
        --binaries-metadata "$meta/binaries.json" \
        --cargo-metadata "$meta/cargo.json" \
        --no-fail-fast --test-threads 2 --show-progress counter --color never \
        --no-input-handler -E "$filter"
fi

: "${BERTH_BIN:?set BERTH_BIN}" "${BERTH_TEST_ROOTFS:?set BERTH_TEST_ROOTFS}"
meta=${CGROUP2_VM_CACHE:-$repo/.build/cgroup2-vm}/meta
mkdir -p "$meta"
cd "$repo"
# Builds the test executables if `make test` has not.
cargo nextest list --workspace --list-type binaries-only --message-format json >"$meta/binaries.json"
cargo metadata --format-version 1 --no-deps >"$meta/cargo.json"
start=$(date +%s)
CGROUP2_VM_ENV="BERTH_BIN BERTH_TEST_ROOTFS CARGO_TARGET_DIR RUST_BACKTRACE" \
    "$here/run.sh" "$(printf '%q --inside %q %q' "$here/test.sh" "$meta" "$filter")"
echo "cgroup2-vm: $(($(date +%s) - start)) s"
