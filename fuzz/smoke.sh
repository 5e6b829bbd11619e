#!/bin/sh
# Short libFuzzer runs for the test runner: builds build-fuzz/<target> (make rules of
# `make fuzz`) for the WebSocket parser (ws_fuzz, FUZZ_SECONDS, 10) and core.json_decode /
# core.decode_error (json_fuzz, error_fuzz, FUZZ_SECONDS_LUA, 5 each), fuzzes each on a
# scratch copy of its corpus and ends with one count line: "3 passed, 0 failed" ("0 passed,
# 0 failed, 3 skipped" when clang is missing). Crash inputs are kept in build-fuzz/; nothing
# is written into the repository.
cd "$(dirname "$0")/.." || exit 1
targets="ws_fuzz json_fuzz error_fuzz"
if ! command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1; then
    echo "fuzz smoke: ${FUZZ_CC:-clang} not found, skipped"
    echo "0 passed, 0 failed, 3 skipped"
    exit 0
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
for t in $targets; do
    case $t in
        ws_fuzz) secs=${FUZZ_SECONDS:-10} corpus=fuzz/corpus leaks=1 ;;
        # A Lua state frees garbage later than the input that made it: libFuzzer's per-input
        # leak check would scan the heap after nearly every input (40x slower), for nothing.
        *) secs=${FUZZ_SECONDS_LUA:-5} corpus=fuzz/corpus_${t%_fuzz} leaks=0 ;;
    esac
    if ! make --no-print-directory -s "build-fuzz/$t" >"$tmp/build.log" 2>&1; then
        tail -n 20 "$tmp/build.log"
        echo "fuzz smoke: $t build failed"
        failed=$((failed + 1))
        continue
    fi
    rm -rf "$tmp/corpus" && mkdir "$tmp/corpus" && cp "$corpus"/* "$tmp/corpus/"
    if "build-fuzz/$t" -max_total_time="$secs" -print_final_stats=1 -detect_leaks=$leaks \
           -artifact_prefix="build-fuzz/$t-" \
           "$tmp/corpus" >"$tmp/run.log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/run.log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$tmp/run.log")
        echo "fuzz smoke: $t ${runs:-?} inputs in ${secs} s (${rate:-?}/s), no finding"
        passed=$((passed + 1))
    else
        grep -E "ERROR|invariant|SUMMARY|Test unit written|_fuzz:|runtime error" "$tmp/run.log" | head -n 20
        echo "fuzz smoke: $t found a failure (reproducer in build-fuzz/)"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
