#!/bin/sh
# Build transgate twice and run the whole suite on each build:
#   1. gcc, hardened release flags, warnings as errors;
#   2. clang with AddressSanitizer + UndefinedBehaviorSanitizer and the
#      libFuzzer harnesses (each fuzzer gets a short run).
# Installs what it needs first (Debian 12, as root).  Usage: tests/run.sh
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)

packaging/deps.sh test
if [ ! -d tests/integration/deepl_client/node_modules/deepl-node ]; then
    (cd tests/integration/deepl_client && npm install --no-audit --no-fund --no-package-lock --loglevel=error)
fi

echo "== build 1: gcc, -Werror, hardened"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTG_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== build 2: clang, ASan + UBSan, fuzzers"
CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTG_WERROR=ON \
    -DTG_SANITIZE=ON -DTG_FUZZ=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs"
