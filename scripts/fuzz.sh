#!/bin/bash
# Runs berth's cargo-fuzz targets (fuzz/fuzz_targets), each for SECONDS, one
# job each (2-core hosts). Usage: scripts/fuzz.sh SECONDS TARGET...
#
# Corpora grow in $FUZZ_DIR/corpus/TARGET (outside the clone), seeded from
# the committed fuzz/seeds/TARGET; crashes, hangs (over 10 s per input) and
# out-of-memory inputs land in $FUZZ_DIR/artifacts/TARGET. Prints each
# target's executions per second; fails if any target found a problem.
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=$1
shift
FUZZ_DIR=${FUZZ_DIR:-/var/tmp/berth-fuzz}
FUZZ_BUILD_DIR=${FUZZ_BUILD_DIR:-/var/tmp/berth-fuzz-target}
host=$(rustc -vV | sed -n 's/^host: //p')
failed=()
for target in "$@"; do
    corpus=$FUZZ_DIR/corpus/$target
    artifacts=$FUZZ_DIR/artifacts/$target
    scratch=$FUZZ_DIR/tmp/$target
    log=$FUZZ_DIR/logs/$target.log
    mkdir -p "$corpus" "$artifacts" "$scratch" "$(dirname "$log")"
    dict=()
    [ -f "dicts/$target.dict" ] && dict=(-dict="dicts/$target.dict")
    # Scratch files (unpacked layers) go under the fuzz dir, not /tmp.
    TMPDIR=$scratch "$FUZZ_BUILD_DIR/$host/release/$target" "$corpus" "seeds/$target" \
        "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    if [ "$rc" -eq 0 ]; then
        echo "fuzz $target: ok, ${execs:-?} executions in ${seconds}s (${rate:-?}/s), corpus $(ls "$corpus" | wc -l)"
    else
        echo "fuzz $target: FAILED (exit $rc) after ${execs:-?} executions; log $log"
        grep -m1 -A2 -E "panicked at|ERROR: libFuzzer" "$log" | sed 's/^/    /'
        grep -m1 "Test unit written to" "$log" | sed 's/^/    /'
        failed+=("$target")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: problems found by: ${failed[*]} (reproduce: the target binary with the artifact as argument)"
    exit 1
fi
