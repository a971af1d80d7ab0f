#!/usr/bin/env bash
# fuzz.sh - the fuzzing pass of CI: builds the libFuzzer targets of
# tests/fuzz (clang -fsanitize=fuzzer,address,undefined, -DREPOCACHE_FUZZ=ON)
# in build-fuzz/ and runs each for FUZZ_SECONDS (20) from its seed corpus,
# FUZZ_JOBS (2) at a time, printing the executions of each. A crash, a leak
# or a failed oracle fails the pass; the input that did it is kept under
# build-fuzz/fuzz-artifacts/ (add it to tests/fuzz/corpus/<target>/ once
# fixed, so the replay test keeps it fixed).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
rc_install_deps

BUILD_DIR=${BUILD_DIR:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
FUZZ_JOBS=${FUZZ_JOBS:-2}
mapfile -t TARGETS < <(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')

CC=clang cmake -S . -B "$BUILD_DIR" -DREPOCACHE_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target "${TARGETS[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
out="$BUILD_DIR/fuzz-runs"
rm -rf "$out"
mkdir -p "$out" "$BUILD_DIR/fuzz-artifacts"

# Runs target $1 (new inputs go to a scratch corpus, the seeds are only
# read); its exit status goes to $out/<name>.rc.
run_target() {
    local t=$1 name=${1#fuzz_} status=0
    mkdir -p "$out/$name"
    "$BUILD_DIR/tests/fuzz/$t" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -artifact_prefix="$BUILD_DIR/fuzz-artifacts/$name-" \
        "$out/$name" "tests/fuzz/corpus/$name" >"$out/$name.log" 2>&1 || status=$?
    echo "$status" >"$out/$name.rc"
}

for t in "${TARGETS[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$FUZZ_JOBS" ]; do
        wait -n || true
    done
    run_target "$t" &
done
wait

failed=0
for t in "${TARGETS[@]}"; do
    name=${t#fuzz_}
    status=$(cat "$out/$name.rc" 2>/dev/null || echo "no status")
    execs=$(grep -a 'stat::number_of_executed_units' "$out/$name.log" | awk '{print $2}')
    cov=$(grep -a -o 'cov: [0-9]*' "$out/$name.log" | tail -1)
    if [ "$status" = 0 ]; then
        echo "fuzz: $name: ${execs:-?} executions in ${FUZZ_SECONDS} s, ${cov:-cov: ?}, no failure"
    else
        echo "fuzz: $name: FAILED (exit $status) after ${execs:-?} executions"
        grep -a -E 'fuzz oracle failed|ERROR:|SUMMARY:|Test unit written' "$out/$name.log" | head -20
        failed=1
    fi
done
exit $failed
