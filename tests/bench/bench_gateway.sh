#!/usr/bin/env bash
# Gateway benchmark (issue 2, point 11). Run by hand; never in CI.
#
#   tests/bench/bench_gateway.sh            # builds into build-bench/
#   BUILD_DIR=build-bench DURATION=10 ROUNDS=3 tests/bench/bench_gateway.sh
#
# Part 1, 0 ms upstream: the same request sent (a) straight to the stub
# vendor over TLS, (b) through nginx as a TLS reverse proxy, (c) through
# transgate, closed loop (CONNS connections) and open loop (RATE req/s),
# interleaved per round. Prints the table and the ratios against targets.
# Part 2, 1 s upstream: SLOW_CONNS connections, closed loop, through a fresh
# gateway (and a fresh nginx for comparison): throughput against the
# SLOW_CONNS req/s that the delay allows, and peak RSS (VmHWM).
#
# All traffic stays on 127.0.0.1. Every process started here is stopped on
# exit; each load run is bounded by its duration plus its timeout.
#
# Environment (defaults in brackets):
#   BUILD_DIR       use this build directory as is [build and use build-bench]
#   ROUNDS [1]      rounds of part 1; the report takes the median per cell
#   CONNS [64]  DURATION [10]  WARMUP [2]  RATE [500]
#   SLOW_CONNS [2000]  SLOW_DURATION [15]  SLOW_WARMUP [8]  SLOW_DELAY_MS [1000]
#   SLOW_RAMP [2]   seconds over which part 2 opens its connections, so that
#                   their 1 s cycles are spread out rather than in lock-step
#   WORKERS [2]     gateway workers and nginx worker processes
#   SKIP_GATEWAY=1  benchmark only direct and nginx (harness check)
#   SKIP_FAST=1     skip part 1;  SKIP_SLOW=1  skip part 2;  SKIP_SLOW_NGINX=1  skip nginx in part 2
#   GW_EXEC_PREFIX  words put before the gateway command, e.g. 'taskset -c 1'
#                   or 'env LD_PRELOAD=...'; it must exec the gateway (same PID)
#   KEEP_TMP=1      keep the temporary directory (configs, logs, raw lines)
#   RESULTS=FILE    also write the raw key=value lines to FILE
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ROUNDS=${ROUNDS:-1}
CONNS=${CONNS:-64}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
RATE=${RATE:-500}
SLOW_CONNS=${SLOW_CONNS:-2000}
SLOW_DURATION=${SLOW_DURATION:-15}
SLOW_WARMUP=${SLOW_WARMUP:-8}
SLOW_RAMP=${SLOW_RAMP:-2}
SLOW_DELAY_MS=${SLOW_DELAY_MS:-1000}
WORKERS=${WORKERS:-2}
SKIP_GATEWAY=${SKIP_GATEWAY:-0}
SKIP_FAST=${SKIP_FAST:-0}
SKIP_SLOW=${SKIP_SLOW:-0}
SKIP_SLOW_NGINX=${SKIP_SLOW_NGINX:-0}
VENDOR_KEY=bench-vendor-key
BODY='text=The%20quick%20brown%20fox%20jumps%20over%20the%20lazy%20dog.&target_lang=DE'

log() { printf 'bench: %s\n' "$*" >&2; }
fail() { log "error: $*"; exit 1; }

# ---- build ---------------------------------------------------------------
if [[ -n ${BUILD_DIR:-} ]]; then
    BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
else
    BUILD_DIR=$SRC/build-bench
    targets=(stub_vendor tg_load)
    [[ $SKIP_GATEWAY == 1 ]] || targets+=(transgate)
    log "building ${targets[*]} in $BUILD_DIR"
    cmake -S "$SRC" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$BUILD_DIR" -j"$(nproc)" --target "${targets[@]}" >/dev/null
fi
STUB=$BUILD_DIR/tests/stub_vendor
LOAD=$BUILD_DIR/tests/tg_load
GW=$BUILD_DIR/gateway/transgate
for b in "$STUB" "$LOAD"; do [[ -x $b ]] || fail "$b not built"; done
[[ $SKIP_GATEWAY == 1 || -x $GW ]] || fail "$GW not built (SKIP_GATEWAY=1 to bench without it)"
command -v nginx >/dev/null || fail "nginx not installed"

# Each terminal costs the gateway its own descriptor plus the vendor leg.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
(( NOFILE >= SLOW_CONNS * 3 + 100 )) || log "warning: RLIMIT_NOFILE $NOFILE may be short for $SLOW_CONNS connections"

# ---- scratch and cleanup -------------------------------------------------
TMP=$(mktemp -d /tmp/tg-bench.XXXXXX)
chmod 0711 "$TMP"   # nginx workers (nobody when run as root) traverse it
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        # give each process up to 5 s, then insist
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_pid() {   # stop_pid PID: stop one process started here
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {   # wait_port PORT PID NAME LOG
    local i
    for i in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        kill -0 "$2" 2>/dev/null || fail "$3 exited during start-up; $4 ends with: $(tail -n 5 "$4")"
        sleep 0.1
    done
    fail "$3 not listening on port $1 after 10 s; see $4"
}

"$SRC/certs/tg-certs" dev "$TMP/pki" >/dev/null 2>&1 || fail "tg-certs dev failed"
PKI=$TMP/pki
RAW=$TMP/results.txt
: >"$RAW"

# ---- processes -----------------------------------------------------------
start_stub() {   # start_stub NAME DELAY_MS -> sets STUB_PORT, STUB_PID
    local name=$1 delay=$2 i
    "$STUB" --listen 127.0.0.1:0 --cert "$PKI/vendor.pem" --key "$PKI/vendor.key" \
        --port-file "$TMP/$name.port" --delay-ms "$delay" --api-key "$VENDOR_KEY" \
        2>"$TMP/$name.log" &
    STUB_PID=$!
    PIDS+=("$STUB_PID")
    for i in $(seq 100); do [[ -s $TMP/$name.port ]] && break; sleep 0.1; done
    [[ -s $TMP/$name.port ]] || fail "stub $name did not start: $(cat "$TMP/$name.log")"
    STUB_PORT=$(cat "$TMP/$name.port")
}

start_gateway() {   # start_gateway NAME UPSTREAM_PORT -> GW_PORT, GW_PID, GW_KEY
    local name=$1 up=$2 dir=$TMP/$1
    mkdir -m 0700 "$dir"
    GW_PORT=$(free_port)
    cp "$PKI/server.pem" "$PKI/server.key" "$PKI/ca.pem" "$dir/"
    printf '%s\n' "$VENDOR_KEY" >"$dir/vendor.apikey"
    : >"$dir/bench.hashes"
    chmod 0600 "$dir/server.key" "$dir/vendor.apikey" "$dir/bench.hashes"
    # The configuration schema grows with the gateway: try the richest
    # variant this binary accepts (audit trail and an upstream cleared for
    # level 2, so unlabelled text may leave), falling back to older schemas.
    local variants=() v audit='' clearance=', "clearance": 2' top upx
    if "$GW" audit keygen "$dir/audit.key" >/dev/null 2>&1; then
        chmod 0600 "$dir/audit.key"
        audit=', "audit": {"path": "audit.jsonl", "key_file": "audit.key"}'
        variants+=(audit+clearance)
    fi
    variants+=(clearance minimal)
    GW_VARIANT=
    for v in "${variants[@]}"; do
        top='' upx=''
        case $v in
            audit+clearance) top=$audit; upx=$clearance ;;
            clearance) upx=$clearance ;;
        esac
        cat >"$dir/transgate.json" <<EOF
{
  "workers": $WORKERS,
  "log": {"level": "warning"},
  "limits": {"max_connections": 4096, "max_inflight": 4096},
  "listeners": [{"address": "127.0.0.1:$GW_PORT", "certificate": "server.pem",
                 "private_key": "server.key", "tls_profile": "cryptrec-strict"}],
  "upstreams": [{"name": "stub", "adapter": "deepl", "url": "https://127.0.0.1:$up",
                 "api_key_file": "vendor.apikey", "ca_file": "ca.pem",
                 "max_connections": 2048$upx}],
  "clients": [{"name": "bench", "api_key_hashes": "bench.hashes", "upstream": "stub"}]$top
}
EOF
        if "$GW" check -c "$dir/transgate.json" >"$dir/check.log" 2>&1; then
            GW_VARIANT=$v
            break
        fi
    done
    [[ -n $GW_VARIANT ]] || fail "no gateway configuration accepted: $(cat "$dir/check.log")"
    log "gateway configuration: $GW_VARIANT"
    printf 'part=gwconfig name=%s variant=%s\n' "$name" "$GW_VARIANT" >>"$RAW"
    GW_KEY=$("$GW" key new bench -c "$dir/transgate.json" 2>"$dir/key.log") ||
        fail "transgate key new failed: $(cat "$dir/key.log")"
    GW_KEY=$(printf '%s\n' "$GW_KEY" | tail -n 1)
    # shellcheck disable=SC2086 # the prefix is meant to split into words
    ${GW_EXEC_PREFIX:-} "$GW" serve -c "$dir/transgate.json" 2>"$dir/gateway.log" &
    GW_PID=$!
    PIDS+=("$GW_PID")
    wait_port "$GW_PORT" "$GW_PID" gateway "$dir/gateway.log"
}

start_nginx() {   # start_nginx NAME UPSTREAM_PORT -> NG_PORT, NG_PID
    local name=$1 up=$2 dir=$TMP/$1
    mkdir -p "$dir/logs" "$dir/tmp"
    chmod 0755 "$dir" "$dir/tmp"
    NG_PORT=$(free_port)
    cat >"$dir/nginx.conf" <<EOF
worker_processes $WORKERS;
worker_rlimit_nofile $NOFILE;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events {
    worker_connections $(( NOFILE / 2 ));
}
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;

    upstream stub {
        server 127.0.0.1:$up;
        keepalive 1024;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NG_PORT ssl;
        ssl_certificate $PKI/server.pem;
        ssl_certificate_key $PKI/server.key;
        # the same suites and groups as the gateway's cryptrec-strict profile
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-CCM:ECDHE-ECDSA-AES256-CCM:ECDHE-ECDSA-CAMELLIA128-SHA256:ECDHE-RSA-CAMELLIA128-SHA256:ECDHE-ECDSA-CAMELLIA256-SHA384:ECDHE-RSA-CAMELLIA256-SHA384;
        ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_AES_128_CCM_SHA256;
        ssl_ecdh_curve P-256:P-384:P-521;
        ssl_prefer_server_ciphers on;

        location / {
            proxy_pass https://stub;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host 127.0.0.1:$up;
            # the gateway also swaps the terminal's key for the vendor key
            proxy_set_header Authorization "DeepL-Auth-Key $VENDOR_KEY";
            proxy_ssl_protocols TLSv1.2 TLSv1.3;
            proxy_ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384;
            proxy_ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_AES_128_CCM_SHA256;
            proxy_ssl_server_name on;
            proxy_ssl_name localhost;
            proxy_ssl_verify on;
            proxy_ssl_verify_depth 2;
            proxy_ssl_trusted_certificate $PKI/ca.pem;
            proxy_ssl_session_reuse on;
            proxy_read_timeout 30s;
        }
    }
}
EOF
    nginx -t -q -e "$dir/logs/error.log" -c "$dir/nginx.conf" -p "$dir" 2>"$dir/logs/start.log" ||
        fail "nginx config rejected: $(cat "$dir/logs/start.log")"
    nginx -e "$dir/logs/error.log" -c "$dir/nginx.conf" -p "$dir" -g 'daemon off;' \
        2>>"$dir/logs/start.log" &
    NG_PID=$!
    PIDS+=("$NG_PID")
    wait_port "$NG_PORT" "$NG_PID" nginx "$dir/logs/error.log"
}

vmhwm_kb() {   # vmhwm_kb PID...: sum of peak RSS in KiB
    local pid sum=0 v
    for pid in "$@"; do
        v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        sum=$(( sum + ${v:-0} ))
    done
    echo "$sum"
}

nginx_pids() {   # master and its workers
    echo "$1" $(pgrep -P "$1" || true)
}

# ---- load ----------------------------------------------------------------

cpu_ticks() {   # cpu_ticks PID...: user+system clock ticks, all threads
    local pid sum=0 f
    for pid in "$@"; do
        # fields after the ")" that ends the command name: utime is 12th, stime 13th
        f=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}' || true)
        sum=$(( sum + ${f:-0} ))
    done
    echo "$sum"
}
CLK_TCK=$(getconf CLK_TCK)

# run_load LABEL URL KEY PIDS tg_load-args...: PIDS (comma-separated) are the
# processes whose CPU time the run is charged with (the proxy, or the stub).
run_load() {
    local label=$1 url=$2 key=$3 pids=$4 out c0 c1
    shift 4
    log "run $label"
    c0=$(cpu_ticks ${pids//,/ })
    out=$("$LOAD" --url "$url" --ca "$PKI/ca.pem" --servername localhost -q \
        -H "Authorization: DeepL-Auth-Key $key" \
        -H 'Content-Type: application/x-www-form-urlencoded' \
        --body "$BODY" "$@") || true
    c1=$(cpu_ticks ${pids//,/ })
    [[ -n $out ]] || fail "tg_load produced no result for $label"
    out="$out server_cpu_s=$(awk -v t=$(( c1 - c0 )) -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", t / hz}')"
    printf '%s %s\n' "$label" "$out" >>"$RAW"
    printf '  %s\n' "$out" >&2
}

smoke() {   # smoke NAME URL KEY: one short run must succeed before measuring
    local out
    out=$("$LOAD" --url "$2" --ca "$PKI/ca.pem" --servername localhost -q \
        -H "Authorization: DeepL-Auth-Key $3" \
        -H 'Content-Type: application/x-www-form-urlencoded' \
        --body "$BODY" -c 2 -w 0 -d 0.5 -t 5) ||
        fail "smoke test through $1 failed: $out"
}

log "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
if [[ $SKIP_FAST != 1 ]]; then
    start_stub stub0 0
    STUB0_PORT=$STUB_PORT
    start_nginx nginx0 "$STUB0_PORT"
    NG0_PORT=$NG_PORT
    NG0_PID=$NG_PID
    STUB0_PID=$STUB_PID
    ng_pids=$(nginx_pids "$NG0_PID")
    # name url key pids-charged-with-CPU
    targets=("direct https://127.0.0.1:$STUB0_PORT/v2/translate $VENDOR_KEY $STUB0_PID"
             "nginx https://127.0.0.1:$NG0_PORT/v2/translate bench-terminal ${ng_pids// /,}")
    if [[ $SKIP_GATEWAY != 1 ]]; then
        start_gateway gw0 "$STUB0_PORT"
        GW0_PID=$GW_PID
        targets+=("gateway https://127.0.0.1:$GW_PORT/v2/translate $GW_KEY $GW_PID")
    fi
    for t in "${targets[@]}"; do
        read -r name url key _ <<<"$t"
        smoke "$name" "$url" "$key"
    done

    for round in $(seq "$ROUNDS"); do
        for t in "${targets[@]}"; do
            read -r name url key pids <<<"$t"
            run_load "part=fast round=$round target=$name load=closed" "$url" "$key" "$pids" \
                -c "$CONNS" -d "$DURATION" -w "$WARMUP" -t 10
        done
        for t in "${targets[@]}"; do
            read -r name url key pids <<<"$t"
            run_load "part=fast round=$round target=$name load=open" "$url" "$key" "$pids" \
                -c "$CONNS" -r "$RATE" -d "$DURATION" -w "$WARMUP" -t 10
        done
    done
    NG0_RSS=$(vmhwm_kb $(nginx_pids "$NG0_PID"))
    GW0_RSS=0
    [[ $SKIP_GATEWAY == 1 ]] || GW0_RSS=$(vmhwm_kb "$GW0_PID")
    printf 'part=fast-rss nginx_vmhwm_kb=%s gateway_vmhwm_kb=%s\n' "$NG0_RSS" "$GW0_RSS" >>"$RAW"
    [[ $SKIP_GATEWAY == 1 ]] || stop_pid "$GW0_PID"
    stop_pid "$NG0_PID"
fi

if [[ $SKIP_SLOW != 1 ]]; then
    start_stub stub1 "$SLOW_DELAY_MS"
    STUB1_PORT=$STUB_PORT
    slow_timeout=$(( SLOW_DELAY_MS / 1000 + 10 ))
    if [[ $SKIP_GATEWAY != 1 ]]; then
        start_gateway gw1 "$STUB1_PORT"
        run_load "part=slow target=gateway load=closed" \
            "https://127.0.0.1:$GW_PORT/v2/translate" "$GW_KEY" "$GW_PID" \
            -c "$SLOW_CONNS" -d "$SLOW_DURATION" -w "$SLOW_WARMUP" --ramp "$SLOW_RAMP" \
            -t "$slow_timeout"
        printf 'part=slow-rss target=gateway vmhwm_kb=%s\n' "$(vmhwm_kb "$GW_PID")" >>"$RAW"
        stop_pid "$GW_PID"
    fi
    if [[ $SKIP_SLOW_NGINX != 1 ]]; then
        start_nginx nginx1 "$STUB1_PORT"
        ng_pids=$(nginx_pids "$NG_PID")
        run_load "part=slow target=nginx load=closed" \
            "https://127.0.0.1:$NG_PORT/v2/translate" bench-terminal "${ng_pids// /,}" \
            -c "$SLOW_CONNS" -d "$SLOW_DURATION" -w "$SLOW_WARMUP" --ramp "$SLOW_RAMP" \
            -t "$slow_timeout"
        printf 'part=slow-rss target=nginx vmhwm_kb=%s\n' "$(vmhwm_kb $(nginx_pids "$NG_PID"))" >>"$RAW"
        stop_pid "$NG_PID"
    fi
fi

[[ -z ${RESULTS:-} ]] || cp "$RAW" "$RESULTS"

# ---- report --------------------------------------------------------------
python3 - "$RAW" "$RATE" "$SLOW_CONNS" "$SLOW_DELAY_MS" <<'PYEOF'
import statistics, sys
raw, rate, slow_conns, delay_ms = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rows = [dict(f.split("=", 1) for f in line.split() if "=" in f) for line in open(raw)]
fast = [r for r in rows if r.get("part") == "fast"]

def num(r, k):
    return float(r.get(k, "nan"))

def cpu_us(r):
    ok, cpu = num(r, "all_ok"), num(r, "server_cpu_s")
    # a server that died during the run has no CPU figure
    return cpu / ok * 1e6 if ok > 0 and cpu > 0 else float("nan")

def pick(target, load):
    return [r for r in fast if r["target"] == target and r["load"] == load]

def med(target, load, f):
    vals = [f(r) for r in pick(target, load)]
    return statistics.median(vals) if vals else float("nan")

def per_round(f):
    """f(round's rows by (target, load)) for every round, as a list"""
    out = []
    for rnd in sorted({r["round"] for r in fast}, key=int):
        by = {(r["target"], r["load"]): r for r in fast if r["round"] == rnd}
        try:
            out.append(f(by))
        except KeyError:
            pass
    return out

def summary(vals, fmt):
    if not vals:
        return "n/a"
    m = statistics.median(vals)
    if len(vals) == 1:
        return format(m, fmt)
    return f"{format(m, fmt)} (rounds: {', '.join(format(v, fmt) for v in vals)})"

def verdict(ok):
    return "MET" if ok else "MISSED"

targets = [t for t in ("direct", "nginx", "gateway") if any(r["target"] == t for r in fast)]
rounds = len({r["round"] for r in fast})
variants = sorted({r["variant"] for r in rows if r.get("part") == "gwconfig"})
print()
if variants:
    print(f"gateway configuration variant: {', '.join(variants)}")
if targets:
    print(f"0 ms upstream, median of {rounds} round(s); CPU = server process CPU per answered request")
    print(f"{'target':8} {'load':18} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6} {'CPU us/req':>10}")
    for load, desc in (("closed", "closed loop"), ("open", f"open {rate:.0f}/s")):
        for t in targets:
            errors = sum(int(r["errors"]) for r in pick(t, load))
            print(f"{t:8} {desc:18} {med(t, load, lambda r: num(r, 'throughput')):8.0f}"
                  f" {med(t, load, lambda r: num(r, 'p50_ms')):8.3f}"
                  f" {med(t, load, lambda r: num(r, 'p90_ms')):8.3f}"
                  f" {med(t, load, lambda r: num(r, 'p99_ms')):8.3f}"
                  f" {med(t, load, lambda r: num(r, 'max_ms')):8.3f}"
                  f" {errors:6d} {med(t, load, cpu_us):10.1f}")
    print()
    tp = lambda a, b: lambda by: num(by[(a, "closed")], "throughput") / num(by[(b, "closed")], "throughput")
    p99 = lambda a: lambda by: num(by[(a, "open")], "p99_ms") - num(by[("direct", "open")], "p99_ms")
    cpu = lambda a, b: lambda by: cpu_us(by[(a, "closed")]) / cpu_us(by[(b, "closed")])
    if "nginx" in targets and "direct" in targets:
        print(f"nginx/direct throughput, closed loop:    {summary(per_round(tp('nginx', 'direct')), '.2f')}")
        print(f"nginx added p99 at {rate:.0f}/s (ms):         {summary(per_round(p99('nginx')), '+.3f')}")
    if "gateway" in targets and "nginx" in targets:
        r = per_round(tp("gateway", "nginx"))
        print(f"gateway/nginx throughput, closed loop:   {summary(r, '.2f')}")
        print(f"    target >= 0.80: {verdict(bool(r) and statistics.median(r) >= 0.8)}")
        print(f"gateway/nginx CPU per request:           {summary(per_round(cpu('gateway', 'nginx')), '.2f')}")
    if "gateway" in targets and "direct" in targets:
        r = per_round(p99("gateway"))
        print(f"gateway added p99 at {rate:.0f}/s (ms):       {summary(r, '+.3f')}")
        print(f"    target <= 2 ms: {verdict(bool(r) and statistics.median(r) <= 2.0)}")
    for r in rows:
        if r.get("part") == "fast-rss":
            print(f"peak RSS after part 1: nginx {int(r['nginx_vmhwm_kb'])/1024:.1f} MiB (master and workers),"
                  f" gateway {int(r['gateway_vmhwm_kb'])/1024:.1f} MiB")

slow = [r for r in rows if r.get("part") == "slow"]
if slow:
    bound = slow_conns / (delay_ms / 1000.0)
    rss = {r["target"]: int(r["vmhwm_kb"]) for r in rows if r.get("part") == "slow-rss"}
    print()
    print(f"{delay_ms} ms upstream, {slow_conns} connections, closed loop (bound {bound:.0f} req/s)")
    print(f"{'target':8} {'req/s':>8} {'of bound':>8} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'errors':>6} {'CPU us/req':>10} {'peak RSS':>10}")
    for r in slow:
        t = r["target"]
        tput = num(r, "throughput")
        print(f"{t:8} {tput:8.0f} {tput / bound * 100:7.1f}% {num(r, 'p50_ms'):9.1f} {num(r, 'p99_ms'):9.1f}"
              f" {num(r, 'max_ms'):9.1f} {int(r['errors']):6d} {cpu_us(r):10.1f} {rss.get(t, 0) / 1024:6.1f} MiB")
        if int(r.get("conn_fail", 0)) or int(r["ok"]) == 0:
            print(f"    {t}: {r.get('conn_fail')} failed connection attempt(s), {r['ok']} answer(s) with 200")
        if t == "gateway":
            print(f"    gateway throughput >= 90% of bound: {verdict(tput >= 0.9 * bound)};"
                  f" peak RSS < 200 MB: {verdict(0 < rss.get(t, 0) * 1024 < 200e6)}")
PYEOF
