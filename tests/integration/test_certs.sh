#!/usr/bin/env bash
#
# test_certs.sh TG_CERTS: proves that `tg-certs` mints exactly the PKI the
# gateway and the integration tests rely on: P-256 keys, ecdsa-with-SHA256
# signatures, the right SANs, key usages and EKUs, private file modes, a chain
# that verifies, revocation that shows in the CRL and an --expired server
# certificate that fails verification as expired.
#
# Prints one line per check and closes with "N passed, N failed".

set -u

TG_CERTS=${1:?usage: test_certs.sh PATH/TO/tg-certs}
PASS=0
FAIL=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tg-certs-test.XXXXXX") || exit 1
trap 'rm -rf -- "$TMP"' EXIT
D="$TMP/pki"

ok() {
    PASS=$((PASS + 1))
    printf 'ok   %s\n' "$1"
}

bad() {
    FAIL=$((FAIL + 1))
    printf 'FAIL %s\n' "$1"
    [ $# -lt 2 ] || printf '     %s\n' "$2"
}

# expect_eq NAME EXPECTED ACTUAL
expect_eq() {
    if [ "$2" = "$3" ]; then
        ok "$1"
    else
        bad "$1" "expected [$2], got [$3]"
    fi
}

# expect_line NAME FILE-OF-TEXT LINE: LINE (leading blanks stripped) is present.
expect_line() {
    if sed 's/^[[:space:]]*//; s/[[:space:]]*$//' "$2" | grep -qxF -- "$3"; then
        ok "$1"
    else
        bad "$1" "no line [$3] in $(basename "$2")"
    fi
}

# no_line NAME FILE LINE: LINE is absent.
no_line() {
    if sed 's/^[[:space:]]*//; s/[[:space:]]*$//' "$2" | grep -qxF -- "$3"; then
        bad "$1" "unexpected line [$3] in $(basename "$2")"
    else
        ok "$1"
    fi
}

# text NAME: x509 -text of $D/NAME.pem into $TMP/NAME.txt
text() {
    openssl x509 -in "$D/$1.pem" -noout -text >"$TMP/$1.txt" 2>&1 || bad "$1 parses" "$(cat "$TMP/$1.txt")"
}

# line_after FILE HEADER: the line that follows HEADER (trimmed).
line_after() {
    sed 's/^[[:space:]]*//; s/[[:space:]]*$//' "$1" | grep -A1 -xF -- "$2" | sed -n 2p
}

mode() {
    stat -c %a -- "$1"
}

# ---------------------------------------------------------------- dev

if "$TG_CERTS" dev "$D" >"$TMP/dev.log" 2>&1; then
    ok "tg-certs dev exits 0"
else
    bad "tg-certs dev exits 0" "$(cat "$TMP/dev.log")"
fi

for f in ca.pem ca.key server.pem server.key vendor.pem vendor.key \
    client-terminal-1.pem client-terminal-1.key crl.pem; do
    if [ -s "$D/$f" ]; then ok "dev writes $f"; else bad "dev writes $f"; fi
done

expect_eq "pki dir mode is 700" 700 "$(mode "$D")"
for k in ca server vendor client-terminal-1; do
    expect_eq "$k.key mode is 600" 600 "$(mode "$D/$k.key")"
    key_text=$(openssl pkey -in "$D/$k.key" -noout -text 2>&1)
    if printf '%s\n' "$key_text" | grep -qx 'ASN1 OID: prime256v1'; then
        ok "$k.key is on prime256v1"
    else
        bad "$k.key is on prime256v1" "$(printf '%s\n' "$key_text" | tail -3)"
    fi
    text "$k"
    expect_line "$k.pem public key is prime256v1" "$TMP/$k.txt" "ASN1 OID: prime256v1"
    expect_line "$k.pem is signed ecdsa-with-SHA256" "$TMP/$k.txt" "Signature Algorithm: ecdsa-with-SHA256"
    # The key file matches the certificate.
    if [ "$(openssl x509 -in "$D/$k.pem" -noout -pubkey 2>/dev/null)" = \
        "$(openssl pkey -in "$D/$k.key" -pubout 2>/dev/null)" ]; then
        ok "$k.key matches $k.pem"
    else
        bad "$k.key matches $k.pem"
    fi
done

# CA
expect_line "ca subject" "$TMP/ca.txt" "Subject: CN = transgate development CA"
expect_line "ca basicConstraints is critical" "$TMP/ca.txt" "X509v3 Basic Constraints: critical"
expect_eq "ca basicConstraints CA:TRUE" "CA:TRUE, pathlen:0" "$(line_after "$TMP/ca.txt" "X509v3 Basic Constraints: critical")"
expect_line "ca keyUsage is critical" "$TMP/ca.txt" "X509v3 Key Usage: critical"
expect_eq "ca keyUsage keyCertSign,cRLSign" "Certificate Sign, CRL Sign" "$(line_after "$TMP/ca.txt" "X509v3 Key Usage: critical")"
no_line "ca has no EKU" "$TMP/ca.txt" "X509v3 Extended Key Usage:"

# Server and vendor: SANs detected as DNS/IP, serverAuth only.
for s in server vendor; do
    expect_line "$s subject CN is the first name" "$TMP/$s.txt" "Subject: CN = localhost"
    expect_eq "$s SANs" "DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1" \
        "$(line_after "$TMP/$s.txt" "X509v3 Subject Alternative Name:")"
    expect_eq "$s EKU is serverAuth" "TLS Web Server Authentication" \
        "$(line_after "$TMP/$s.txt" "X509v3 Extended Key Usage:")"
    expect_eq "$s keyUsage digitalSignature" "Digital Signature" \
        "$(line_after "$TMP/$s.txt" "X509v3 Key Usage: critical")"
    expect_eq "$s is not a CA" "CA:FALSE" \
        "$(line_after "$TMP/$s.txt" "X509v3 Basic Constraints: critical")"
    expect_eq "$s.pem holds the leaf only" 1 "$(grep -c 'BEGIN CERTIFICATE' "$D/$s.pem")"
done

# Client
expect_line "client subject is CN=terminal-1" "$TMP/client-terminal-1.txt" "Subject: CN = terminal-1"
expect_eq "client EKU is clientAuth" "TLS Web Client Authentication" \
    "$(line_after "$TMP/client-terminal-1.txt" "X509v3 Extended Key Usage:")"
no_line "client has no SAN" "$TMP/client-terminal-1.txt" "X509v3 Subject Alternative Name:"

# Chain and purposes.
for s in server vendor; do
    out=$(openssl verify -CAfile "$D/ca.pem" -purpose sslserver "$D/$s.pem" 2>&1)
    expect_eq "$s verifies as sslserver against ca.pem" "$D/$s.pem: OK" "$out"
    if openssl verify -CAfile "$D/ca.pem" -purpose sslclient "$D/$s.pem" >/dev/null 2>&1; then
        bad "$s is refused as sslclient"
    else
        ok "$s is refused as sslclient"
    fi
done
out=$(openssl verify -CAfile "$D/ca.pem" -purpose sslclient "$D/client-terminal-1.pem" 2>&1)
expect_eq "client verifies as sslclient" "$D/client-terminal-1.pem: OK" "$out"
if openssl verify -CAfile "$D/ca.pem" -purpose sslserver "$D/client-terminal-1.pem" >/dev/null 2>&1; then
    bad "client is refused as sslserver"
else
    ok "client is refused as sslserver"
fi

# The initial CRL is valid, signed by the CA and empty.
openssl crl -in "$D/crl.pem" -noout -text >"$TMP/crl0.txt" 2>&1
expect_line "initial crl is signed ecdsa-with-SHA256" "$TMP/crl0.txt" "Signature Algorithm: ecdsa-with-SHA256"
expect_line "initial crl lists nothing" "$TMP/crl0.txt" "No Revoked Certificates."
out=$(openssl verify -crl_check -CRLfile "$D/crl.pem" -CAfile "$D/ca.pem" "$D/client-terminal-1.pem" 2>&1)
expect_eq "client passes crl_check before revocation" "$D/client-terminal-1.pem: OK" "$out"

# ---------------------------------------------------------------- idempotence

sum_before=$(cd "$D" && sha256sum ca.pem ca.key server.pem vendor.pem client-terminal-1.pem crl.pem)
"$TG_CERTS" dev "$D" >/dev/null 2>&1
sum_after=$(cd "$D" && sha256sum ca.pem ca.key server.pem vendor.pem client-terminal-1.pem crl.pem)
expect_eq "dev twice keeps every file" "$sum_before" "$sum_after"
if "$TG_CERTS" server "$D" localhost >/dev/null 2>&1; then
    bad "server refuses to overwrite without --force"
else
    ok "server refuses to overwrite without --force"
fi

# ---------------------------------------------------------------- more certs

"$TG_CERTS" server "$D" gw.example.test 10.1.2.3 fe80::1 --out multi --days 30 >/dev/null 2>&1
text multi
expect_eq "--out multi SANs" "DNS:gw.example.test, IP Address:10.1.2.3, IP Address:FE80:0:0:0:0:0:0:1" \
    "$(line_after "$TMP/multi.txt" "X509v3 Subject Alternative Name:")"
expect_eq "multi.key mode is 600" 600 "$(mode "$D/multi.key")"
out=$(openssl verify -CAfile "$D/ca.pem" "$D/multi.pem" 2>&1)
expect_eq "multi verifies" "$D/multi.pem: OK" "$out"

"$TG_CERTS" client "$D" terminal-2 >/dev/null 2>&1
expect_eq "client-terminal-2.key mode is 600" 600 "$(mode "$D/client-terminal-2.key")"

# ---------------------------------------------------------------- revocation

serial=$(openssl x509 -in "$D/client-terminal-2.pem" -noout -serial)
serial=${serial#serial=}
if "$TG_CERTS" revoke "$D" terminal-2 >"$TMP/revoke.log" 2>&1; then
    ok "revoke exits 0"
else
    bad "revoke exits 0" "$(cat "$TMP/revoke.log")"
fi
openssl crl -in "$D/crl.pem" -noout -text >"$TMP/crl1.txt" 2>&1
expect_line "crl lists the revoked client's serial" "$TMP/crl1.txt" "Serial Number: $serial"
expect_eq "crl lists exactly one certificate" 1 "$(grep -c 'Serial Number:' "$TMP/crl1.txt")"
out=$(openssl crl -in "$D/crl.pem" -CAfile "$D/ca.pem" -noout 2>&1)
expect_eq "crl signature verifies" "verify OK" "$out"
out=$(openssl verify -crl_check -CRLfile "$D/crl.pem" -CAfile "$D/ca.pem" "$D/client-terminal-2.pem" 2>&1)
case $out in
*"certificate revoked"*) ok "revoked client fails crl_check with 'certificate revoked'" ;;
*) bad "revoked client fails crl_check with 'certificate revoked'" "$out" ;;
esac
out=$(openssl verify -crl_check -CRLfile "$D/crl.pem" -CAfile "$D/ca.pem" "$D/client-terminal-1.pem" 2>&1)
expect_eq "other client still passes crl_check" "$D/client-terminal-1.pem: OK" "$out"
"$TG_CERTS" revoke "$D" terminal-2 >/dev/null 2>&1
openssl crl -in "$D/crl.pem" -noout -text >"$TMP/crl2.txt" 2>&1
expect_eq "revoking twice keeps one entry" 1 "$(grep -c 'Serial Number:' "$TMP/crl2.txt")"
"$TG_CERTS" crl "$D" >/dev/null 2>&1
openssl crl -in "$D/crl.pem" -noout -text >"$TMP/crl3.txt" 2>&1
expect_line "crl command keeps the revoked serial" "$TMP/crl3.txt" "Serial Number: $serial"

# ---------------------------------------------------------------- expiry

"$TG_CERTS" server "$D" localhost 127.0.0.1 --expired --out expired >"$TMP/exp.log" 2>&1 ||
    bad "server --expired exits 0" "$(cat "$TMP/exp.log")"
out=$(openssl verify -CAfile "$D/ca.pem" "$D/expired.pem" 2>&1)
case $out in
*"certificate has expired"*) ok "expired server cert fails with 'certificate has expired'" ;;
*) bad "expired server cert fails with 'certificate has expired'" "$out" ;;
esac
if openssl x509 -in "$D/expired.pem" -noout -checkend 0 >/dev/null 2>&1; then
    bad "expired cert's notAfter is in the past"
else
    ok "expired cert's notAfter is in the past"
fi
# The signature itself is fine: only the time check fails.
out=$(openssl verify -no_check_time -CAfile "$D/ca.pem" "$D/expired.pem" 2>&1)
expect_eq "expired cert verifies when time is ignored" "$D/expired.pem: OK" "$out"

# ---------------------------------------------------------------- errors

"$TG_CERTS" server "$D" 'not a name' --out x >/dev/null 2>&1
expect_eq "invalid server name is refused (exit 1)" 1 $?
"$TG_CERTS" client "$D" '../escape' >/dev/null 2>&1
expect_eq "client name with / is refused (exit 1)" 1 $?
[ ! -e "$TMP/escape.pem" ] && [ ! -e "$D/client-../escape.pem" ] && ok "no file written outside DIR" || bad "no file written outside DIR"
"$TG_CERTS" server "$TMP/nowhere" localhost >/dev/null 2>&1
expect_eq "server without a CA is refused (exit 1)" 1 $?
for c in "" ca server client dev revoke crl; do
    if out=$("$TG_CERTS" $c --help 2>&1) && [ "${out#usage: }" != "$out" ]; then
        ok "--help for '${c:-tg-certs}'"
    else
        bad "--help for '${c:-tg-certs}'" "$out"
    fi
done
leftover=$(find "$D" -maxdepth 1 -name '.tg-certs.*' | wc -l)
expect_eq "no temporary directories left behind" 0 "$leftover"

# --force on dev replaces the CA and everything it signed.
old_ca=$(sha256sum <"$D/ca.pem")
"$TG_CERTS" dev "$D" --force >/dev/null 2>&1
if [ "$old_ca" != "$(sha256sum <"$D/ca.pem")" ]; then ok "dev --force makes a new CA"; else bad "dev --force makes a new CA"; fi
out=$(openssl verify -CAfile "$D/ca.pem" "$D/server.pem" 2>&1)
expect_eq "dev --force reissues server under the new CA" "$D/server.pem: OK" "$out"
openssl crl -in "$D/crl.pem" -noout -text >"$TMP/crl4.txt" 2>&1
expect_line "dev --force starts an empty CRL" "$TMP/crl4.txt" "No Revoked Certificates."

printf '%d passed, %d failed\n' "$PASS" "$FAIL"
[ "$FAIL" -eq 0 ]
