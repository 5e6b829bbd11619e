#!/bin/sh
# make bench: starts a local exchange in its own process (rate limits off), then runs each
# benchmark against it. Every benchmark prints its figures and a ratio against a reference
# measured in the same run.
set -eu
cd "$(dirname "$0")/.."
EXE=${POLYSIM_EXE:-build/bin/polysim}
mkdir -p build/bench
ver=$(sed -n 's/^#define POLYSIM_VERSION "\(.*\)"/\1/p' src/internal.h)
cc -O2 -DPOLYSIM_VERSION="\"$ver\"" -o build/bench/curl_raw bench/curl_raw.c -lcurl
cc -O2 -o build/bench/ref_server bench/ref_server.c
out=build/bench/serve.out
rm -f "$out"   # else the wait below can see the last run's line before the shell truncates it
"$EXE" serve --port 0 --tick 0 --unlimited > "$out" 2> build/bench/serve.log &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT INT TERM
i=0
while [ ! -s "$out" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
[ -s "$out" ] || { echo "bench: the exchange did not start:"; cat build/bench/serve.log; exit 1; }
line=$(head -n 1 "$out")
export POLYSIM_BENCH_SERVER="$line"
for b in bench/client.lua bench/exchange.lua bench/exchange_memory.lua bench/stream.lua bench/reload.lua bench/events.lua bench/dashboard.lua bench/sweep.lua bench/backtest.lua; do
    [ -f "$b" ] || continue
    echo "== $b"
    lua5.4 "$b"
done
