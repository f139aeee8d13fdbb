#!/bin/sh
# Policy-engine masking throughput on one core, side by side with the
# redact-pii npm package on the English subset of the same corpus.
#   tests/bench/policy/run.sh [BUILD_DIR]     (default: build-policy)
# Installs redact-pii under tests/bench/policy/node_modules (git-ignored)
# with the ordinary npm client when it is missing.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=${1:-$root/build-policy}
corpus=$root/tests/data/policy/corpus.jsonl
rules=$root/policy/rules/default.json
secs=${BENCH_SECONDS:-3}
cpu=${BENCH_CPU:-0}

cmake --build "$build" --target bench_pol >/dev/null
if [ ! -d "$here/node_modules/redact-pii" ]; then
    (cd "$here" && npm install --no-save --no-audit --no-fund --loglevel=error redact-pii@3.4.0 >/dev/null)
fi
echo "== full corpus (Japanese + English), default pack"
taskset -c "$cpu" "$build/tests/bench_pol" "$rules" "$corpus" --seconds "$secs"
echo "== English subset, default pack"
taskset -c "$cpu" "$build/tests/bench_pol" "$rules" "$corpus" --lang en --seconds "$secs"
echo "== English subset, redact-pii $(node -p "require('$here/node_modules/redact-pii/package.json').version")"
taskset -c "$cpu" node "$here/redact_bench.js" "$corpus" "$secs"
