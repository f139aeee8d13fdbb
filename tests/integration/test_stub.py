#!/usr/bin/env python3
"""Smoke test of tests/stub/stub_vendor: proves, over real TLS with
certificates from `tg-certs dev`, that the stub answers and records exactly
what the integration tests will rely on.

Environment: TG_STUB_VENDOR (path of the binary; default
$TG_BUILD_DIR/tests/stub_vendor) and TG_SOURCE_DIR (for certs/tg-certs).
Prints one line per check and closes with "N passed, N failed".
"""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("TG_SOURCE_DIR", os.path.join(HERE, "..", ".."))
BUILD_DIR = os.environ.get("TG_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
STUB = os.environ.get("TG_STUB_VENDOR", os.path.join(BUILD_DIR, "tests", "stub_vendor"))
TG_CERTS = os.path.join(SOURCE_DIR, "certs", "tg-certs")
API_KEY = "stub-test-key"

passed = 0
failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   " + name)
    else:
        failed += 1
        print("FAIL " + name + ("\n     " + detail if detail else ""))


def check_eq(name, expected, actual):
    check(name, expected == actual, "expected %r\n     got      %r" % (expected, actual))


class Stub:
    """A running stub_vendor with its record file."""

    def __init__(self, tmp, pki, name, extra=()):
        self.record = os.path.join(tmp, name + ".jsonl")
        port_file = os.path.join(tmp, name + ".port")
        self.log = open(os.path.join(tmp, name + ".log"), "wb")
        self.proc = subprocess.Popen(
            [STUB, "--listen", "127.0.0.1:0",
             "--cert", os.path.join(pki, "vendor.pem"),
             "--key", os.path.join(pki, "vendor.key"),
             "--record", self.record, "--port-file", port_file,
             "--api-key", API_KEY] + list(extra),
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("stub_vendor did not start (see %s.log)" % name)
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read().strip())

    def records(self):
        with open(self.record, encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    def raw_records(self):
        with open(self.record, "rb") as f:
            return f.read().splitlines()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc


def tls_context(pki, maximum=None):
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


def post(conn, path, body, ctype="application/x-www-form-urlencoded", key=API_KEY,
         extra=None):
    headers = {"Content-Type": ctype}
    if key is not None:
        headers["Authorization"] = "DeepL-Auth-Key " + key
    if extra:
        headers.update(extra)
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.getheader("Content-Type"), resp.read()


def translation_of(texts, lang):
    return {"translations": [{"detected_source_language": "EN", "text": "[%s] %s" % (lang, t)}
                             for t in texts]}


def run(tmp):
    pki = os.path.join(tmp, "pki")
    subprocess.run(["bash", TG_CERTS, "dev", pki], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stub = Stub(tmp, pki, "stub")
    ctx = tls_context(pki)
    try:
        conn = http.client.HTTPSConnection("localhost", stub.port, context=ctx, timeout=10)

        # 1. Form body, the example of the brief.
        form = "text=hello+%3Cx+id%3D%221%22%2F%3E+world&target_lang=DE"
        st, ct, body = post(conn, "/v2/translate", form)
        check_eq("form request answers 200", 200, st)
        check_eq("form request content type", "application/json", ct)
        check_eq("form translation is exact (tags byte-identical)",
                 b'{"translations":[{"detected_source_language":"EN",'
                 b'"text":"[DE] HELLO <x id=\\"1\\"/> WORLD"}]}', body)
        first_sock = conn.sock

        # 2. JSON body with two texts and non-ASCII, same connection.
        jbody = json.dumps({"text": ["héllo <b>wörld</b> &amp; x", "個人 two"],
                            "target_lang": "ja", "tag_handling": "xml",
                            "nested": {"a": [1, 2.5e3, None, True]}},
                           ensure_ascii=False).encode("utf-8")
        st, ct, body = post(conn, "/v2/translate", jbody, ctype="application/json")
        check_eq("json request answers 200", 200, st)
        check_eq("json translation is exact (entities kept, target upper-cased)",
                 translation_of(["HéLLO <b>WöRLD</b> &amp; X", "個人 TWO"], "JA"),
                 json.loads(body))
        check("keep-alive: both requests used one connection",
              first_sock is not None and conn.sock is first_sock)

        # 3. Chunked request body.
        def chunks():
            yield b"text=chun"
            yield b"ked&target_lang=DE"
        conn.request("POST", "/v2/translate", body=chunks(), encode_chunked=True,
                     headers={"Authorization": "DeepL-Auth-Key " + API_KEY,
                              "Content-Type": "application/x-www-form-urlencoded",
                              "Transfer-Encoding": "chunked"})
        resp = conn.getresponse()
        check_eq("chunked request is de-chunked and translated",
                 (200, translation_of(["CHUNKED"], "DE")),
                 (resp.status, json.loads(resp.read())))

        # 4. Record file: exact lines for the first three requests.
        recs = stub.records()
        check_eq("one record line per request so far", 3, len(recs))
        r1 = recs[0]
        check_eq("record 1 seq/method/path", (1, "POST", "/v2/translate"),
                 (r1.get("seq"), r1.get("method"), r1.get("path")))
        check_eq("record 1 body is the exact form body", form, r1.get("body"))
        h1 = r1.get("headers", {})
        check_eq("record 1 authorization header", "DeepL-Auth-Key " + API_KEY,
                 h1.get("authorization"))
        check_eq("record 1 content-length header", str(len(form)), h1.get("content-length"))
        check_eq("record 1 host header", "localhost:%d" % stub.port, h1.get("host"))
        check("record header names are lower-case",
              all(k == k.lower() for r in recs for k in r["headers"]))
        check_eq("record 2 body is the exact JSON body", jbody.decode("utf-8"),
                 recs[1].get("body"))
        check_eq("record 2 seq", 2, recs[1].get("seq"))
        check_eq("record 3 body is the de-chunked body",
                 "text=chunked&target_lang=DE", recs[2].get("body"))
        check_eq("record 3 transfer-encoding header", "chunked",
                 recs[2]["headers"].get("transfer-encoding"))
        check_eq("record keys", ["seq", "conn", "method", "path", "headers", "body"], list(r1))
        check_eq("records 1-3 name their one connection", [1, 1, 1],
                 [r.get("conn") for r in recs])

        # 5. Markers.
        st, _, body = post(conn, "/v2/translate", "text=x+%40%40status%3D503%40%40&target_lang=DE")
        check_eq("@@status=503@@ answers 503 stub error",
                 (503, {"message": "stub error"}), (st, json.loads(body)))

        t0 = time.monotonic()
        st, _, body = post(conn, "/v2/translate", "text=slow+@@delay=300@@&target_lang=DE")
        elapsed = time.monotonic() - t0
        check_eq("@@delay=300@@ still translates",
                 (200, translation_of(["SLOW @@DELAY=300@@"], "DE")), (st, json.loads(body)))
        check("@@delay=300@@ takes >= 0.3 s", elapsed >= 0.3, "took %.3f s" % elapsed)

        for attempt, want in ((1, 503), (2, 200), (3, 200)):
            st, _, _ = post(conn, "/v2/translate",
                            "text=@@status-once=503@@@@id=retry-1@@&target_lang=DE")
            check_eq("@@status-once=503@@ attempt %d answers %d" % (attempt, want), want, st)
        st, _, _ = post(conn, "/v2/translate",
                        "text=@@status-once=503@@@@id=retry-2@@&target_lang=DE")
        check_eq("@@status-once@@ with another id fails once again", 503, st)

        st, _, body = post(conn, "/v2/translate", "text=a@@count=3@@&text=b&target_lang=DE")
        check_eq("@@count=3@@ returns three translations",
                 translation_of(["A@@COUNT=3@@", "B", "B"], "DE"), json.loads(body))
        st, _, body = post(conn, "/v2/translate", "text=a@@count=0@@&target_lang=DE")
        check_eq("@@count=0@@ returns none", {"translations": []}, json.loads(body))

        st, _, body = post(conn, "/v2/translate", "text=@@garbage@@&target_lang=DE")
        try:
            json.loads(body)
            garbage_is_json = True
        except ValueError:
            garbage_is_json = False
        check("@@garbage@@ answers 200 with a non-JSON body", st == 200 and not garbage_is_json,
              "status %d body %r" % (st, body))

        seq_before_close = len(stub.records())
        try:
            post(conn, "/v2/translate", "text=@@close@@&target_lang=DE")
            closed = False
        except (http.client.RemoteDisconnected, ConnectionResetError, ssl.SSLError,
                BrokenPipeError):
            closed = True
        check("@@close@@ closes without an answer", closed)
        check_eq("@@close@@ request is still recorded", seq_before_close + 1,
                 len(stub.records()))
        conn.close()

        # 6. Authorization, routing, languages.
        conn = http.client.HTTPSConnection("127.0.0.1", stub.port, context=ctx, timeout=10)
        st, _, body = post(conn, "/v2/translate", "text=x&target_lang=DE", key="wrong")
        check_eq("wrong API key answers 403",
                 (403, {"message": "Authorization failed"}), (st, json.loads(body)))
        st, _, body = post(conn, "/v2/translate", "text=x&target_lang=DE", key=None)
        check_eq("missing Authorization answers 403", 403, st)
        conn.request("GET", "/v2/languages?type=target",
                     headers={"Authorization": "DeepL-Auth-Key " + API_KEY})
        resp = conn.getresponse()
        langs = json.loads(resp.read())
        check_eq("target languages", ["DE", "EN-GB", "EN-US", "ES", "JA"],
                 [l["language"] for l in langs])
        check("target languages carry supports_formality",
              all(isinstance(l.get("supports_formality"), bool) for l in langs))
        conn.request("GET", "/v2/languages?type=source",
                     headers={"Authorization": "DeepL-Auth-Key " + API_KEY})
        langs = json.loads(conn.getresponse().read())
        check_eq("source languages", ["DE", "EN", "ES", "JA"], [l["language"] for l in langs])
        conn.request("GET", "/v2/usage", headers={"Authorization": "DeepL-Auth-Key " + API_KEY})
        resp = conn.getresponse()
        check_eq("unknown endpoint answers 404",
                 (404, {"message": "Not found"}), (resp.status, json.loads(resp.read())))
        st, _, body = post(conn, "/v2/translate", b'{"text": [1]}', ctype="application/json")
        check_eq("malformed JSON body answers 400", 400, st)

        # 7. Invalid UTF-8 in a body is recorded as \u00XX escapes.
        st, _, _ = post(conn, "/v2/translate", b"text=caf\xe9\x01\"&target_lang=DE")
        raw = stub.raw_records()[-1]
        check("invalid byte and control char are escaped as \\u00XX in the record",
              b'"body":"text=caf\\u00e9\\u0001\\"&target_lang=DE"}' in raw, repr(raw))
        conn.close()

        # 8. Many delayed requests are answered concurrently, not one by one.
        n = 100
        results = []
        lock = threading.Lock()

        def one(i):
            c = http.client.HTTPSConnection("localhost", stub.port, context=ctx, timeout=30)
            try:
                s, _, b = post(c, "/v2/translate", "text=n%d@@delay=500@@&target_lang=DE" % i)
                ok = s == 200 and json.loads(b) == translation_of(["N%d@@DELAY=500@@" % i], "DE")
            except Exception:  # noqa: BLE001 - any failure counts as a failure
                ok = False
            finally:
                c.close()
            with lock:
                results.append(ok)
        t0 = time.monotonic()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        check_eq("%d concurrent delayed requests all answered exactly" % n, [True] * n, results)
        check("%d x 500 ms delays overlap (took %.2f s, serial would be %d s)" % (n, elapsed, n // 2),
              elapsed < 10, "took %.2f s" % elapsed)

        # 9. Every request so far got its record line, numbered 1..N in order.
        recs = stub.records()
        check_eq("record seq numbers are 1..N", list(range(1, len(recs) + 1)),
                 [r["seq"] for r in recs])
    finally:
        rc = stub.stop()
    check_eq("SIGTERM exits 0", 0, rc)

    # 10. --tls13-only refuses TLS 1.2 and accepts TLS 1.3.
    stub13 = Stub(tmp, pki, "stub13", ["--tls13-only"])
    try:
        try:
            with socket.create_connection(("127.0.0.1", stub13.port), timeout=10) as s:
                with tls_context(pki, ssl.TLSVersion.TLSv1_2).wrap_socket(
                        s, server_hostname="localhost"):
                    pass
            refused = False
        except (ssl.SSLError, ConnectionResetError):
            refused = True
        check("--tls13-only refuses a TLS 1.2 client", refused)
        with socket.create_connection(("127.0.0.1", stub13.port), timeout=10) as s:
            with tls_context(pki).wrap_socket(s, server_hostname="localhost") as t:
                version = t.version()
        check_eq("--tls13-only speaks TLS 1.3", "TLSv1.3", version)
    finally:
        check_eq("--tls13-only stub exits 0 on SIGTERM", 0, stub13.stop())


def main():
    if not os.access(STUB, os.X_OK):
        print("FAIL stub_vendor binary not found at %s" % STUB)
        print("0 passed, 1 failed")
        return 1
    tmp = tempfile.mkdtemp(prefix="tg-stub-test.")
    try:
        run(tmp)
    except Exception as e:  # noqa: BLE001 - report and count as a failure
        check("test ran to the end", False, "%s: %s" % (type(e).__name__, e))
        for name in sorted(os.listdir(tmp)):
            if name.endswith(".log"):
                with open(os.path.join(tmp, name), errors="replace") as f:
                    print("---- %s\n%s" % (name, f.read()[-2000:]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
