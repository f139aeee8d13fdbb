#!/bin/bash
# Development quick start on Debian 12 (as root): install what is needed,
# build, create development certificates, start Apertium APY over TLS on
# loopback and transgate in front of it, issue a key for one terminal and
# send a first translation.
#
#   packaging/dev-start.sh          start (or restart) everything
#   packaging/dev-start.sh stop     stop both
#
# State lives in build/dev/: pki/ (development CA and certificates),
# transgate.json, terminal-1.key (the terminal's API key, mode 0600),
# audit.jsonl and audit.key (the audit trail and its key), *.log and *.pid.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
dev=build/dev
gw_port=${TG_PORT:-8443}
apy_port=${TG_APY_PORT:-2737}

stop() {
    for name in transgate apertium; do
        if [ -f "$dev/$name.pid" ]; then
            pid=$(cat "$dev/$name.pid")
            if kill "$pid" 2>/dev/null; then
                i=0
                while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
            fi
            rm -f "$dev/$name.pid"
        fi
    done
}

wait_port() {
    i=0
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 600 ]; then echo "nothing listening on port $1; see $2" >&2; exit 1; fi
        sleep 0.1
    done
}

if [ "${1:-}" = stop ]; then
    stop
    echo "stopped"
    exit 0
fi

packaging/deps.sh run
# Its own build directory: tests/run.sh owns build/ with the test suite on.
cmake -S . -B build-run -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTG_TESTS=OFF >/dev/null
cmake --build build-run -j"$(nproc)" --target transgate >/dev/null
tg=build-run/gateway/transgate
stop
mkdir -p "$dev" && chmod 700 "$dev"
certs/tg-certs dev "$dev/pki" >/dev/null

# Apertium APY speaks TLS with the development "vendor" certificate: even
# an on-premise engine gets no plaintext.
LC_ALL=C.UTF-8 nohup apertium-apy -p "$apy_port" -c "$dev/pki/vendor.pem" \
    -k "$dev/pki/vendor.key" /usr/share/apertium/modes >"$dev/apertium.log" 2>&1 &
echo $! >"$dev/apertium.pid"

[ -f "$dev/audit.key" ] || "$tg" audit keygen "$dev/audit.key" >/dev/null
cat >"$dev/transgate.json" <<JSON
{
  "log": { "level": "info" },
  "audit": { "path": "audit.jsonl", "key_file": "audit.key" },
  "listeners": [
    { "address": "127.0.0.1:$gw_port", "certificate": "pki/server.pem",
      "private_key": "pki/server.key", "tls_profile": "cryptrec-strict" }
  ],
  "upstreams": [
    { "name": "apertium", "adapter": "apertium", "url": "https://localhost:$apy_port",
      "ca_file": "pki/ca.pem", "default_source_lang": "EN", "clearance": 2 }
  ],
  "clients": [
    { "name": "terminal-1", "api_key_hashes": "terminal-1.hashes", "upstream": "apertium" }
  ]
}
JSON
rm -f "$dev/terminal-1.hashes"
umask 077
"$tg" key new terminal-1 -c "$dev/transgate.json" >"$dev/terminal-1.key" 2>/dev/null
"$tg" check -c "$dev/transgate.json" >/dev/null
nohup "$tg" serve -c "$dev/transgate.json" >"$dev/transgate.log" 2>&1 &
echo $! >"$dev/transgate.pid"
wait_port "$apy_port" "$dev/apertium.log"
wait_port "$gw_port" "$dev/transgate.log"

echo "transgate is listening on https://localhost:$gw_port (Apertium APY behind it on port $apy_port)"
echo "first request:"
echo "  curl --cacert $dev/pki/ca.pem -H \"Authorization: DeepL-Auth-Key \$(cat $dev/terminal-1.key)\" \\"
echo "       -d text='Hello world' -d source_lang=EN -d target_lang=ES https://localhost:$gw_port/v2/translate"
i=0
until out=$(curl -sS --cacert "$dev/pki/ca.pem" -H "Authorization: DeepL-Auth-Key $(cat "$dev/terminal-1.key")" \
        -d text='Hello world' -d source_lang=EN -d target_lang=ES "https://localhost:$gw_port/v2/translate") &&
      echo "$out" | grep -q '"translations"'; do
    i=$((i + 1))
    if [ $i -gt 30 ]; then echo "no translation yet: $out (see $dev/*.log)" >&2; exit 1; fi
    sleep 1
done
echo "  -> $out"
echo "stop with: packaging/dev-start.sh stop"
