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
