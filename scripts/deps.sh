#!/bin/sh
# Installs the Debian packages polysim builds and tests with, when any is missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -eu
PKGS="build-essential pkg-config lua5.4 liblua5.4-dev lua-busted lua-check luarocks libcurl4-openssl-dev libmicrohttpd-dev openssl socat"
# With clang on the machine, `make test` adds a short libFuzzer run: it needs clang's runtime.
if command -v clang >/dev/null 2>&1; then
    v=$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n 1)
    [ -n "$v" ] && PKGS="$PKGS libclang-rt-$v-dev"
fi
# Test extras: the page specs' headless browser, lua-cjson for the interop spec, LDoc and its
# Markdown formatter for `make doc` (spec/doc_spec.lua). As root they are installed too (a
# failure only leaves those specs skipped); otherwise they are named.
OPTIONAL="chromium lua-cjson lua-ldoc lua-discount"
opt_missing=""
for p in $OPTIONAL; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || opt_missing="$opt_missing $p"
done
if [ -n "$opt_missing" ]; then
    if [ "$(id -u)" = 0 ] && [ "${POLYSIM_NO_EXTRAS:-}" != 1 ]; then
        echo "deps: installing test extras$opt_missing (POLYSIM_NO_EXTRAS=1 skips)" >&2
        export DEBIAN_FRONTEND=noninteractive
        # shellcheck disable=SC2086
        { apt-get install -y -q --no-install-recommends $opt_missing >&2 ||
          { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends $opt_missing >&2; } ||
          echo "deps: could not install$opt_missing: the specs that need them are skipped" >&2; }
    else
        echo "deps: optional, for more specs: sudo apt-get install -y$opt_missing" >&2
    fi
fi
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "deps: installing$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing >&2
else
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: run: sudo apt-get install -y$missing" >&2
    exit 1
fi
