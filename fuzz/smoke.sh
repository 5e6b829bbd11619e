#!/bin/sh
# Short libFuzzer run of the WebSocket parser, for the test runner: builds build-fuzz/ws_fuzz
# (make rule of `make fuzz`), fuzzes FUZZ_SECONDS (10) on a scratch copy of fuzz/corpus and
# ends with "1 passed, 0 failed" or "0 passed, 1 failed" ("0 passed, 0 failed, 1 skipped" when clang
# is missing). Crash inputs are kept in build-fuzz/; nothing is written into the repository.
cd "$(dirname "$0")/.." || exit 1
secs=${FUZZ_SECONDS:-10}
if ! command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1; then
    echo "fuzz smoke: ${FUZZ_CC:-clang} not found, skipped"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
if ! make --no-print-directory -s build-fuzz/ws_fuzz >"$tmp/build.log" 2>&1; then
    tail -n 20 "$tmp/build.log"
    echo "fuzz smoke: build failed"
    echo "0 passed, 1 failed"
    exit 1
fi
mkdir "$tmp/corpus" && cp fuzz/corpus/* "$tmp/corpus/"
if build-fuzz/ws_fuzz -max_total_time="$secs" -print_final_stats=1 -artifact_prefix=build-fuzz/ \
       "$tmp/corpus" >"$tmp/run.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/run.log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$tmp/run.log")
    echo "fuzz smoke: ws_fuzz ${runs:-?} inputs in ${secs} s (${rate:-?}/s), no finding"
    echo "1 passed, 0 failed"
else
    grep -E "ERROR|invariant|SUMMARY|Test unit written" "$tmp/run.log" | head -n 20
    echo "fuzz smoke: ws_fuzz found a failure (reproducer in build-fuzz/)"
    echo "0 passed, 1 failed"
    exit 1
fi
