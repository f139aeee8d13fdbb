#!/bin/sh
# Install what transgate needs on Debian 12, from Debian packages only.
#   deps.sh build    compiler, CMake and the libraries
#   deps.sh run      + Apertium APY and the English-Spanish pair
#   deps.sh test     + cmocka, libcurl (one test's client), clang (sanitizers, libFuzzer), nginx, wrk,
#                      Node.js (for the DeepL client library test)
set -eu
what=${1:-build}
pkgs="build-essential cmake pkg-config ca-certificates openssl curl python3
      libssl-dev libmicrohttpd-dev libpcre2-dev libjansson-dev"
case "$what" in
build) ;;
run)  pkgs="$pkgs apertium-apy apertium-eng-spa" ;;
test) pkgs="$pkgs apertium-apy apertium-eng-spa libcmocka-dev libcurl4-openssl-dev clang libclang-rt-14-dev
            llvm nginx-light wrk" ;;
*) echo "usage: $0 build|run|test" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps.sh: missing packages:$missing (run as root to install them)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
fi
if [ "$what" = test ] && ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps.sh: npm is missing (run as root to install it)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends nodejs npm
fi
