"""End to end through the real transgate binary over real TLS, against the
recording stub vendor: what the terminal gets back and exactly what would
have left the building."""

import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

VENDOR_KEY = "stub-vendor-key-0123456789"
W = None
CERTS = None
STUB = None
GW = None


def setUpModule():
    global W, CERTS, STUB, GW
    W = harness.Workdir()
    CERTS = harness.Certs(W.path)
    STUB = harness.StubVendor(W.path, CERTS, api_key=VENDOR_KEY)
    key_file = os.path.join(W.path, "vendor.apikey")
    with open(key_file, "w") as f:
        f.write(VENDOR_KEY + "\n")
    os.chmod(key_file, 0o600)
    stub_url = "https://localhost:%d" % STUB.port
    GW = harness.Gateway(W.path, CERTS, upstreams=[
        {"name": "stub", "adapter": "deepl", "url": stub_url, "api_key_file": key_file,
         "ca_file": CERTS.ca, "max_retries": 2, "retry_backoff_ms": 50, "clearance": 2},
        {"name": "slow", "adapter": "deepl", "url": stub_url, "api_key_file": key_file,
         "ca_file": CERTS.ca, "connect_timeout_ms": 500, "timeout_ms": 700,
         "max_retries": 0, "clearance": 2},
        {"name": "dead", "adapter": "deepl",
         "url": "https://127.0.0.1:%d" % harness.free_port(),
         "ca_file": CERTS.ca, "connect_timeout_ms": 500, "max_retries": 1,
         "retry_backoff_ms": 20, "clearance": 2},
    ], clients=[
        {"name": "terminal-a", "upstream": "stub"},
        {"name": "terminal-slow", "upstream": "slow"},
        {"name": "terminal-dead", "upstream": "dead"},
        {"name": "terminal-off", "upstream": "stub", "disabled": True},
    ]).start()


def tearDownModule():
    try:
        if GW is not None:
            rc = GW.stop()
            assert rc == 0, "gateway exit status %r" % rc
    finally:
        if STUB is not None:
            STUB.stop()
        W.cleanup()


def form(**fields):
    items = []
    for k, v in fields.items():
        for x in (v if isinstance(v, list) else [v]):
            items.append((k, x))
    return urllib.parse.urlencode(items)


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}


def read_response(s, buf=b""):
    """Read one response from socket s (buf: bytes already read).  Returns
    (status, head lower-cased, body, rest) or (None, b"", b"", buf) when the
    connection closes first."""
    while b"\r\n\r\n" not in buf:
        try:
            d = s.recv(65536)
        except (OSError, ssl.SSLError):
            d = b""
        if not d:
            return None, b"", b"", buf
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if status == 100:
        return read_response(s, rest)
    length = 0
    for line in head.lower().split(b"\r\n")[1:]:
        if line.startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(rest) < length:
        try:
            d = s.recv(65536)
        except (OSError, ssl.SSLError):
            d = b""
        if not d:
            break
        rest += d
    return status, head.lower(), rest[:length], rest[length:]


def raw_exchange(payload, timeout=5):
    """Send payload over TLS as is and read one response; returns the raw
    response bytes (b"" when the gateway closed without answering)."""
    with GW.tls_socket(timeout) as s:
        s.sendall(payload)
        st, head, body, _ = read_response(s)
    if st is None:
        return b""
    return head + b"\r\n\r\n" + body


def wait_for_diagnostic(test, gw, text, timeout=5):
    """Wait until gw's diagnostics contain text; fail test otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in gw.diagnostics():
            return
        time.sleep(0.05)
    test.fail("diagnostics never said: " + text)


class Dropper(harness.RawVendor):
    """A vendor that reads the TLS ClientHello and drops the connection:
    with a reset ("reset") or a plain close ("close")."""

    def __init__(self, mode):
        self.mode = mode
        super().__init__(self.drop)

    def drop(self, conn):
        harness.read_tls_record(conn)
        if self.mode == "reset":
            # SO_LINGER on, 0 s: close() sends a reset.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class Base(unittest.TestCase):
    def stub_mark(self):
        return len(STUB.requests())

    def stub_since(self, mark):
        return STUB.requests()[mark:]

    def assertError(self, status, body, want_status, want_code):
        self.assertEqual(status, want_status, body)
        doc = json.loads(body)
        self.assertIsInstance(doc["message"], str)
        self.assertEqual(doc.get("code"), want_code)
        return doc


class TranslateTest(Base):
    def test_form_body_with_several_texts_is_translated_in_order(self):
        mark = self.stub_mark()
        st, hdrs, body = GW.request("POST", "/v2/translate",
                                    form(text=["hello world", "second text"],
                                         target_lang="de", source_lang="en"),
                                    FORM, client="terminal-a")
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body), {"translations": [
            {"detected_source_language": "EN", "text": "[DE] HELLO WORLD"},
            {"detected_source_language": "EN", "text": "[DE] SECOND TEXT"}]})
        self.assertRegex(hdrs["x-request-id"], r"^[0-9a-f]{32}$")
        sent = self.stub_since(mark)
        self.assertEqual(len(sent), 1)
        self.assertEqual(sent[0]["path"], "/v2/translate")
        out = json.loads(sent[0]["body"])
        self.assertEqual(out["text"], ["hello world", "second text"])
        self.assertEqual(out["target_lang"], "DE")
        self.assertEqual(out["source_lang"], "EN")
        self.assertEqual(sent[0]["headers"]["authorization"], "DeepL-Auth-Key " + VENDOR_KEY)

    def test_json_body_with_options_is_forwarded_with_the_same_options(self):
        mark = self.stub_mark()
        req = {"text": ["Good morning"], "target_lang": "JA", "formality": "more",
               "context": "a greeting", "split_sentences": "nonewlines",
               "preserve_formatting": True}
        st, _, body = GW.request("POST", "/v2/translate", json.dumps(req), JSON,
                                 client="terminal-a")
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["translations"][0]["text"], "[JA] GOOD MORNING")
        out = json.loads(self.stub_since(mark)[0]["body"])
        self.assertEqual(out["text"], ["Good morning"])
        self.assertEqual(out["formality"], "more")
        self.assertEqual(out["context"], "a greeting")
        self.assertEqual(out["split_sentences"], "nonewlines")

    def test_terminal_identity_headers_never_reach_the_vendor(self):
        mark = self.stub_mark()
        st, _, body = GW.request("POST", "/v2/translate", form(text="x", target_lang="DE"),
                                 dict(FORM, **{"X-Forwarded-For": "10.1.2.3",
                                               "Cookie": "session=secret-cookie",
                                               "User-Agent": "terminal-agent/1.0",
                                               "X-User": "yamada"}),
                                 client="terminal-a")
        self.assertEqual(st, 200, body)
        hdrs = self.stub_since(mark)[0]["headers"]
        for h in ("x-forwarded-for", "cookie", "x-user", "forwarded", "via"):
            self.assertNotIn(h, hdrs)
        self.assertNotEqual(hdrs.get("user-agent"), "terminal-agent/1.0")
        self.assertNotIn(GW.keys["terminal-a"], json.dumps(hdrs))

    def test_keep_alive_connection_serves_several_requests(self):
        conn = GW.connection()
        try:
            for i in range(3):
                st, _, body = GW.request("POST", "/v2/translate",
                                         form(text="n%d" % i, target_lang="DE"), FORM,
                                         client="terminal-a", conn=conn)
                self.assertEqual(st, 200)
                self.assertEqual(json.loads(body)["translations"][0]["text"], "[DE] N%d" % i)
        finally:
            conn.close()

    def test_vendor_503_once_is_retried_and_succeeds(self):
        mark = self.stub_mark()
        st, _, body = GW.request("POST", "/v2/translate",
                                 form(text="@@status-once=503@@@@id=r1@@ retry me",
                                      target_lang="DE"), FORM, client="terminal-a")
        self.assertEqual(st, 200, body)
        self.assertEqual(len(self.stub_since(mark)), 2)

    def test_vendor_persistent_429_gives_429_after_bounded_retries(self):
        mark = self.stub_mark()
        st, _, body = GW.request("POST", "/v2/translate",
                                 form(text="@@status=429@@", target_lang="DE"), FORM,
                                 client="terminal-a")
        self.assertError(st, body, 429, "vendor_rate_limited")
        self.assertEqual(len(self.stub_since(mark)), 3)   # 1 + max_retries

    def test_vendor_400_is_not_retried_and_gives_502(self):
        mark = self.stub_mark()
        st, _, body = GW.request("POST", "/v2/translate",
                                 form(text="@@status=400@@", target_lang="DE"), FORM,
                                 client="terminal-a")
        self.assertError(st, body, 502, "vendor_error")
        self.assertEqual(len(self.stub_since(mark)), 1)

    def test_vendor_quota_456_is_passed_on(self):
        st, _, body = GW.request("POST", "/v2/translate",
                                 form(text="@@status=456@@", target_lang="DE"), FORM,
                                 client="terminal-a")
        self.assertError(st, body, 456, "vendor_quota")

    def test_vendor_garbage_reply_gives_502(self):
        st, _, body = GW.request("POST", "/v2/translate",
                                 form(text="@@garbage@@", target_lang="DE"), FORM,
                                 client="terminal-a")
        self.assertError(st, body, 502, "vendor_bad_reply")

    def test_vendor_returning_wrong_number_of_texts_gives_502(self):
        st, _, body = GW.request("POST", "/v2/translate",
                                 form(text=["@@count=1@@", "b"], target_lang="DE"), FORM,
                                 client="terminal-a")
        self.assertError(st, body, 502, "vendor_bad_reply")

    def test_vendor_down_gives_502_unreachable(self):
        st, hdrs, body = GW.request("POST", "/v2/translate", form(text="x", target_lang="DE"),
                                    FORM, client="terminal-dead")
        self.assertError(st, body, 502, "vendor_unreachable")
        self.assertIn("x-request-id", hdrs)

    def test_vendor_too_slow_gives_504(self):
        t0 = time.monotonic()
        st, _, body = GW.request("POST", "/v2/translate",
                                 form(text="@@delay=10000@@", target_lang="DE"), FORM,
                                 client="terminal-slow")
        self.assertError(st, body, 504, "vendor_timeout")
        # Answered at the upstream's timeout (0.7 s), not when the vendor
        # would have answered (10 s): a wide margin for a loaded machine.
        self.assertLess(time.monotonic() - t0, 8)

    def test_languages_and_usage(self):
        st, _, body = GW.request("GET", "/v2/languages?type=target", client="terminal-a")
        self.assertEqual(st, 200, body)
        langs = json.loads(body)
        self.assertIn("DE", [x["language"] for x in langs])
        self.assertTrue(all(isinstance(x["supports_formality"], bool) for x in langs))
        st, _, body = GW.request("POST", "/v2/languages", "type=source", FORM,
                                 client="terminal-a")
        self.assertEqual(st, 200, body)
        self.assertIn("EN", [x["language"] for x in json.loads(body)])
        st, _, body = GW.request("GET", "/v2/usage", client="terminal-a")
        self.assertEqual(st, 200, body)
        usage = json.loads(body)
        self.assertEqual(sorted(usage), ["character_count", "character_limit"])
        before = usage["character_count"]
        GW.request("POST", "/v2/translate", form(text="12345", target_lang="DE"), FORM,
                   client="terminal-a")
        _, _, body = GW.request("GET", "/v2/usage", client="terminal-a")
        self.assertEqual(json.loads(body)["character_count"], before + 5)


class RejectTest(Base):
    def test_missing_wrong_and_disabled_keys_are_403_and_nothing_is_sent(self):
        mark = self.stub_mark()
        body = form(text="secret", target_lang="DE")
        cases = [
            {},
            {"Authorization": "DeepL-Auth-Key tg_wrongwrongwrongwrongwrongwrongwrongwrongwro"},
            {"Authorization": "Bearer " + GW.keys["terminal-a"]},
            {"Authorization": "DeepL-Auth-Key " + GW.keys["terminal-off"]},
        ]
        for hdrs in cases:
            st, h, data = GW.request("POST", "/v2/translate", body, dict(FORM, **hdrs))
            self.assertError(st, data, 403, "auth_failed")
            self.assertIn("x-request-id", h)
        self.assertEqual(self.stub_since(mark), [])

    def test_oversized_body_is_413_with_content_length(self):
        mark = self.stub_mark()
        big = form(text="a" * (128 * 1024), target_lang="DE")
        st, _, body = GW.request("POST", "/v2/translate", big, FORM, client="terminal-a")
        self.assertError(st, body, 413, "body_too_large")
        self.assertEqual(self.stub_since(mark), [])

    def test_oversized_chunked_body_is_413(self):
        with GW.tls_socket() as s:
            s.sendall(("POST /v2/translate HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: DeepL-Auth-Key %s\r\n"
                       "Content-Type: application/x-www-form-urlencoded\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n" % GW.keys["terminal-a"]).encode())
            chunk = b"a" * 16384
            try:
                for _ in range(10):
                    s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                s.sendall(b"0\r\n\r\n")
            except OSError:
                pass
            data = b""
            while True:
                try:
                    d = s.recv(65536)
                except OSError:
                    break
                if not d:
                    break
                data += d
                if b"\r\n\r\n" in data and data.rstrip().endswith(b"}"):
                    break
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:100])

    def test_malformed_bodies_are_400_naming_the_problem(self):
        mark = self.stub_mark()
        cases = [
            (JSON, "{not json", None),
            (JSON, json.dumps({"text": ["a"], "target_lang": "DE", "colour": "red"}), "colour"),
            (JSON, json.dumps({"text": "a"}), "target_lang"),
            (JSON, json.dumps({"text": [1], "target_lang": "DE"}), "text"),
            (FORM, "text=%ZZ&target_lang=DE", None),
            (FORM, "text=%FF%FE&target_lang=DE", "text"),
            (FORM, "target_lang=DE", "text"),
            (FORM, "text=a&target_lang=DE&formality=rude", "formality"),
        ]
        for hdrs, body, field in cases:
            st, _, data = GW.request("POST", "/v2/translate", body, hdrs, client="terminal-a")
            doc = self.assertError(st, data, 400, "malformed_request")
            if field:
                self.assertIn(field, doc["message"])
        self.assertEqual(self.stub_since(mark), [])

    def test_unknown_path_and_method(self):
        st, h, body = GW.request("GET", "/admin", client="terminal-a")
        self.assertError(st, body, 404, "not_found")
        self.assertIn("x-request-id", h)
        st, _, body = GW.request("GET", "/v2/translate", client="terminal-a")
        self.assertError(st, body, 405, "method_not_allowed")
        st, _, body = GW.request("DELETE", "/v2/usage", client="terminal-a")
        self.assertError(st, body, 405, "method_not_allowed")

    def test_malformed_http_gets_an_error_and_the_gateway_keeps_serving(self):
        key = GW.keys["terminal-a"]
        cases = (
            (b"GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n", b"404", "not_found"),
            (b"POST /v2/translate HTTP/9.9\r\nHost: x\r\n\r\n", b"505",
             "http_version_not_supported"),
            (b"POST /v2/translate HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", b"400",
             "malformed_http"),
            (b"POST /v2/translate HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n",
             b"400", "malformed_http"),
            # Not HTTP at all.
            (b"\x00\x01\x02\xff\r\n\r\n", b"400", "malformed_http"),
            # Framings two parsers could disagree on (request smuggling).
            (b"POST /v2/translate HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"400", "malformed_http"),
            (b"POST /v2/translate HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
             b"Content-Length: 6\r\n\r\nabcdef", b"400", "malformed_http"),
            (b"POST /v2/translate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked"
             b"\r\n\r\n", b"501", "not_implemented"),
            (b"POST /v2/translate HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
             b"400", "malformed_http"),
            (b"POST /v2/translate HTTP/1.1\r\nHost : x\r\n\r\n", b"400", "malformed_http"),
            (b"POST /v2/translate HTTP/1.1\nHost: x\n\n\r\n\r\n", b"400", "malformed_http"),
            # Bare LF only: refused at once, not waited on.
            (b"POST /v2/translate HTTP/1.1\nHost: x\n\n", b"400", "malformed_http"),
            (b"POST /v2/translate HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"400",
             "malformed_http"),
            (b"POST /v2/translate HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 +
             b"\r\n\r\n", b"431", "header_too_large"),
            (b"POST /v2/translate HTTP/1.1\r\nHost: x\r\n" + b"X-A: 1\r\n" * 70 +
             b"\r\n", b"431", "header_too_large"),
            # A broken chunk, after a valid head from an authenticated terminal.
            (("POST /v2/translate HTTP/1.1\r\nHost: x\r\nAuthorization: DeepL-Auth-Key %s"
              "\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              "Transfer-Encoding: chunked\r\n\r\nzz\r\n" % key).encode(), b"400",
             "malformed_http"),
        )
        mark = self.stub_mark()
        for junk, status, code in cases:
            data = raw_exchange(junk)
            self.assertTrue(data.startswith(b"http/1.1 " + status), junk[:60] + b" -> " + data[:60])
            head, _, body = data.partition(b"\r\n\r\n")
            self.assertIn(b"\r\nx-request-id: ", head.lower())
            if status != b"404":
                # The connection ends after a framing error: what follows
                # cannot be trusted to start a request.
                self.assertIn(b"\r\nconnection: close", head.lower(), junk[:60])
            self.assertEqual(json.loads(body)["code"], code, junk[:60])
        self.assertEqual(self.stub_since(mark), [])
        st, _, _ = GW.request("POST", "/v2/translate", form(text="ok", target_lang="DE"),
                              FORM, client="terminal-a")
        self.assertEqual(st, 200)

    def test_no_version_banner(self):
        st, hdrs, _ = GW.request("GET", "/v2/usage", client="terminal-a")
        self.assertEqual(st, 200)
        self.assertNotIn("server", hdrs)
        self.assertNotIn("x-powered-by", hdrs)


class Http11Test(Base):
    """The gateway's own HTTP/1.1 layer: what DeepL clients and proxies
    send besides the plain request."""

    def head(self, body, extra=""):
        return ("POST /v2/translate HTTP/1.1\r\nHost: x\r\n"
                "Authorization: DeepL-Auth-Key %s\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n%s"
                "Content-Length: %d\r\n\r\n" % (GW.keys["terminal-a"], extra, len(body)))

    def test_pipelined_requests_are_answered_in_order(self):
        bodies = [form(text="p%d" % i, target_lang="DE") for i in range(3)]
        payload = "".join(self.head(b) + b for b in bodies).encode()
        with GW.tls_socket() as s:
            s.sendall(payload)
            rest = b""
            for i in range(3):
                st, head, body, rest = read_response(s, rest)
                self.assertEqual(st, 200)
                self.assertNotIn(b"connection: close", head)
                self.assertEqual(json.loads(body)["translations"][0]["text"], "[DE] P%d" % i)

    def test_expect_100_continue_gets_the_go_ahead_before_the_body(self):
        body = form(text="continued", target_lang="DE")
        with GW.tls_socket() as s:
            s.sendall(self.head(body, "Expect: 100-continue\r\n").encode())
            got = s.recv(4096)
            self.assertEqual(got, b"HTTP/1.1 100 Continue\r\n\r\n")
            s.sendall(body.encode())
            st, _, data, _ = read_response(s)
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(data)["translations"][0]["text"], "[DE] CONTINUED")

    def test_expect_100_continue_refused_at_the_head_gets_no_go_ahead(self):
        body = form(text="x", target_lang="DE")
        payload = self.head(body, "Expect: 100-continue\r\n").replace(
            GW.keys["terminal-a"], "tg_wrong")
        data = raw_exchange(payload.encode())
        self.assertTrue(data.startswith(b"http/1.1 403"), data[:40])
        # Answered at once, and the connection closes: the body never comes.
        self.assertIn(b"connection: close", data.partition(b"\r\n\r\n")[0])

    def test_chunked_body_is_decoded(self):
        mark = self.stub_mark()
        body = form(text="chunky", target_lang="DE").encode()
        chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(body[i:i + 5]), body[i:i + 5])
                          for i in range(0, len(body), 5))
        payload = ("POST /v2/translate HTTP/1.1\r\nHost: x\r\n"
                   "Authorization: DeepL-Auth-Key %s\r\n"
                   "Content-Type: application/x-www-form-urlencoded\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n" % GW.keys["terminal-a"]).encode()
        data = raw_exchange(payload + chunks + b"0\r\nX-Trailer: t\r\n\r\n")
        self.assertTrue(data.startswith(b"http/1.1 200"), data[:60])
        self.assertEqual(json.loads(data.partition(b"\r\n\r\n")[2])["translations"][0]["text"],
                         "[DE] CHUNKY")
        self.assertEqual(json.loads(self.stub_since(mark)[0]["body"])["text"], ["chunky"])

    def test_http10_and_connection_close_end_the_connection(self):
        body = form(text="old", target_lang="DE")
        for first, extra in (("POST /v2/translate HTTP/1.0", ""),
                             ("POST /v2/translate HTTP/1.1", "Connection: close\r\n")):
            payload = (self.head(body, extra).replace("POST /v2/translate HTTP/1.1", first)
                       + body).encode()
            with GW.tls_socket() as s:
                s.sendall(payload)
                st, head, data, rest = read_response(s)
                self.assertEqual(st, 200)
                self.assertIn(b"connection: close", head)
                try:
                    tail = s.recv(100)
                except (OSError, ssl.SSLError):
                    tail = b""
                self.assertEqual(rest + tail, b"")

    def test_head_answers_carry_no_body(self):
        key = GW.keys["terminal-a"]
        payload = ("HEAD /v2/usage HTTP/1.1\r\nHost: x\r\n\r\n"
                   "GET /v2/usage HTTP/1.1\r\nHost: x\r\n"
                   "Authorization: DeepL-Auth-Key %s\r\n\r\n" % key).encode()
        with GW.tls_socket() as s:
            s.sendall(payload)
            buf = b""
            while buf.count(b"\r\n\r\n") < 2:
                buf += s.recv(65536)
            first, _, rest = buf.partition(b"\r\n\r\n")
            self.assertTrue(first.startswith(b"HTTP/1.1 405"), first[:40])
            self.assertIn(b"Content-Length: ", first)
            # The next response follows the head directly: no body.
            self.assertTrue(rest.startswith(b"HTTP/1.1 200"), rest[:40])

    def test_refused_upload_is_answered_and_closed_without_a_reset(self):
        # 5 MB declared: answered 413 at once; what the terminal keeps
        # sending is read and dropped, so it sees the answer and then a
        # clean end of stream, not a connection reset.
        body_head = self.head("x" * 5000000).encode()
        with GW.tls_socket() as s:
            s.sendall(body_head + b"t" * 65536)
            st, head, body, _ = read_response(s)
            self.assertEqual(st, 413)
            self.assertIn(b"connection: close", head)
            self.assertEqual(json.loads(body)["code"], "body_too_large")
            for _ in range(16):
                try:
                    s.sendall(b"t" * 32768)
                except (OSError, ssl.SSLError):
                    break
            try:
                tail = s.recv(100)
            except ssl.SSLZeroReturnError:
                tail = b""
            self.assertEqual(tail, b"")

    def test_languages_type_from_the_query(self):
        st, _, body = GW.request("GET", "/v2/languages?type=target", client="terminal-a")
        self.assertEqual(st, 200, body)
        st, _, body = GW.request("GET", "/v2/languages?type=%ZZ", client="terminal-a")
        self.assertError(st, body, 400, "malformed_request")

    def test_refused_exchanges_are_in_the_audit_trail(self):
        before = len([r for r in GW.audit_records() if r.get("reason") == "malformed_http"])
        raw_exchange(b"POST /v2/translate HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        deadline = time.time() + 5
        while time.time() < deadline:
            recs = [r for r in GW.audit_records() if r.get("reason") == "malformed_http"]
            if len(recs) > before:
                break
            time.sleep(0.05)
        self.assertEqual(len(recs), before + 1)
        self.assertEqual(recs[-1]["decision"], "refused")
        self.assertEqual(recs[-1]["status"], 400)
        self.assertEqual(recs[-1]["endpoint"], "other")


class DisconnectTest(Base):
    def test_terminal_leaving_mid_request_cancels_the_vendor_call(self):
        ctx = GW.ssl_context()
        body = form(text="@@delay=4000@@ leaving", target_lang="DE").encode()
        raw = socket.create_connection(("127.0.0.1", GW.port))
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(("POST /v2/translate HTTP/1.1\r\nHost: x\r\n"
                   "Authorization: DeepL-Auth-Key %s\r\n"
                   "Content-Type: application/x-www-form-urlencoded\r\n"
                   "Content-Length: %d\r\n\r\n" % (GW.keys["terminal-a"], len(body))).encode()
                  + body)
        time.sleep(0.5)
        s.close()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if "terminal disconnected; vendor request cancelled" in GW.diagnostics():
                break
            time.sleep(0.05)
        self.assertIn("terminal disconnected; vendor request cancelled", GW.diagnostics())
        st, _, _ = GW.request("POST", "/v2/translate", form(text="still here", target_lang="DE"),
                              FORM, client="terminal-a")
        self.assertEqual(st, 200)


def s_client(port, *args):
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                        "-servername", "localhost", "-brief", *args],
                       input=b"", capture_output=True, timeout=20)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


class TlsTest(Base):
    def test_tls13_aes_gcm_is_accepted(self):
        rc, out = s_client(GW.port, "-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384")
        self.assertEqual(rc, 0, out)
        self.assertIn("TLS_AES_256_GCM_SHA384", out)

    def test_tls12_ecdhe_aes_gcm_is_accepted(self):
        rc, out = s_client(GW.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
        self.assertEqual(rc, 0, out)
        self.assertIn("ECDHE-ECDSA-AES128-GCM-SHA256", out)

    def test_old_protocols_are_refused(self):
        for flag in ("-tls1", "-tls1_1"):
            rc, out = s_client(GW.port, flag, "-cipher", "ALL:@SECLEVEL=0")
            self.assertNotEqual(rc, 0, flag + ": " + out)

    def test_non_cryptrec_suites_are_refused(self):
        cases = [("-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"),
                 ("-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"),
                 ("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"),
                 ("-tls1_2", "-cipher", "AES128-GCM-SHA256")]
        for args in cases:
            rc, out = s_client(GW.port, *args)
            self.assertNotEqual(rc, 0, " ".join(args) + ": " + out)

    def test_non_listed_group_is_refused(self):
        rc, out = s_client(GW.port, "-tls1_3", "-groups", "X25519")
        self.assertNotEqual(rc, 0, out)


class VendorClientTest(Base):
    """The gateway's own HTTP/1.1 client on the vendor leg: reply framings,
    malformed replies, connection reuse and its limits, seen from both ends
    (what the terminal gets, and on which connection the stub got what)."""

    @classmethod
    def setUpClass(cls):
        cls.w = harness.Workdir()
        key_file = os.path.join(W.path, "vendor.apikey")
        # Vendors that drop every connection in the middle of the TLS
        # handshake, after reading the ClientHello: one with a reset, one
        # with a plain close.
        cls.droppers = {mode: Dropper(mode) for mode in ("reset", "close")}
        up = {"adapter": "deepl", "url": "https://localhost:%d" % STUB.port,
              "api_key_file": key_file, "ca_file": CERTS.ca, "clearance": 2,
              "max_retries": 0}
        cls.gw = harness.Gateway(cls.w.path, CERTS, upstreams=[
            dict(up, name="noretry"),
            dict(up, name="single", max_connections=1),
            dict(up, name="based", url="https://localhost:%d/deepl/" % STUB.port),
        ] + [dict(up, name="drop-" + mode, url="https://localhost:%d" % d.port,
                  max_retries=2, retry_backoff_ms=10)
             for mode, d in cls.droppers.items()],
            clients=[{"name": "t", "upstream": "noretry"},
                     {"name": "t1", "upstream": "single"},
                     {"name": "tb", "upstream": "based"}] +
            [{"name": "t-" + mode, "upstream": "drop-" + mode} for mode in cls.droppers],
            workers=1).start()

    @classmethod
    def tearDownClass(cls):
        try:
            assert cls.gw.stop() == 0
        finally:
            for d in cls.droppers.values():
                d.close()
            cls.w.cleanup()

    def test_a_connection_dropped_during_the_handshake_is_unreachable_and_retried(self):
        for mode, d in sorted(self.droppers.items()):
            with self.subTest(mode=mode):
                before = d.accepted
                st, doc = self.translate("x", client="t-" + mode)
                self.assertEqual((st, doc.get("code")), (502, "vendor_unreachable"))
                # max_retries 2: three attempts, each on a new connection.
                self.assertEqual(d.accepted - before, 3)
        st, doc = self.translate("still serving")
        self.assertEqual((st, doc["translations"][0]["text"]), (200, "[DE] STILL SERVING"))

    def translate(self, text, client="t"):
        st, _, body = self.gw.request("POST", "/v2/translate",
                                      form(text=text, target_lang="DE"), FORM, client=client)
        return st, json.loads(body)

    def test_reply_framings_are_decoded_and_reuse_follows_them(self):
        reusable = {"chunked": True, "interim": True, "lf": True,
                    "eof": False, "extra": False, "splitextra": False}
        for framing, reuse in sorted(reusable.items()):
            with self.subTest(framing=framing):
                mark = self.stub_mark()
                st, doc = self.translate("@@framing=%s@@ hello" % framing)
                self.assertEqual(st, 200, doc)
                self.assertEqual(doc["translations"][0]["text"],
                                 "[DE] @@FRAMING=%s@@ HELLO" % framing.upper())
                st, doc = self.translate("after")
                self.assertEqual((st, doc["translations"][0]["text"]), (200, "[DE] AFTER"))
                recs = self.stub_since(mark)
                self.assertEqual(len(recs), 2)
                self.assertEqual(recs[1]["conn"] == recs[0]["conn"], reuse,
                                 "connection reused after a %s reply" % framing)

    def test_malformed_replies_are_bad_replies_and_the_gateway_keeps_serving(self):
        for framing in ("badstatus", "badchunk", "hugehead"):
            with self.subTest(framing=framing):
                mark = self.stub_mark()
                st, doc = self.translate("@@framing=%s@@ x" % framing)
                self.assertEqual((st, doc.get("code")), (502, "vendor_bad_reply"))
                self.assertEqual(len(self.stub_since(mark)), 1)   # never retried
                st, doc = self.translate("next")
                self.assertEqual((st, doc["translations"][0]["text"]), (200, "[DE] NEXT"))
                recs = self.stub_since(mark)
                self.assertNotEqual(recs[1]["conn"], recs[0]["conn"])

    def test_the_base_path_prefixes_the_api_path_once(self):
        mark = self.stub_mark()
        st, doc = self.translate("x", client="tb")
        # The stub serves /v2/translate only: its 404 is a vendor error.
        self.assertEqual((st, doc.get("code")), (502, "vendor_error"))
        self.assertEqual([r["path"] for r in self.stub_since(mark)], ["/deepl/v2/translate"])

    def test_a_stale_kept_alive_connection_is_replaced_without_using_a_retry(self):
        mark = self.stub_mark()
        st, doc = self.translate("@@drop-next@@ first")
        self.assertEqual(st, 200, doc)
        # max_retries is 0: the request still succeeds, because a kept-alive
        # connection that closes before answering is not an attempt.
        st, doc = self.translate("second")
        self.assertEqual((st, doc["translations"][0]["text"]), (200, "[DE] SECOND"))
        recs = self.stub_since(mark)
        self.assertEqual(len(recs), 3)
        self.assertEqual(recs[1]["conn"], recs[0]["conn"])      # the stale one
        self.assertNotEqual(recs[2]["conn"], recs[0]["conn"])   # a fresh one
        self.assertEqual(recs[1]["body"], recs[2]["body"])

    def test_max_connections_queues_exchanges_on_one_connection(self):
        mark = self.stub_mark()
        results = [None] * 4

        def one(i):
            results[i] = self.translate("@@delay=150@@ q%d" % i, client="t1")

        threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        for i, (st, doc) in enumerate(results):
            self.assertEqual(st, 200, doc)
            self.assertEqual(doc["translations"][0]["text"], "[DE] @@DELAY=150@@ Q%d" % i)
        recs = self.stub_since(mark)
        self.assertEqual(len(recs), 4)
        self.assertEqual({r["conn"] for r in recs}, {recs[0]["conn"]})

    def test_a_reload_never_hands_a_connection_to_the_new_configuration(self):
        mark = self.stub_mark()
        self.assertEqual(self.translate("r1", client="t1")[0], 200)
        self.assertEqual(self.translate("r2", client="t1")[0], 200)
        self.gw.proc.send_signal(signal.SIGHUP)
        wait_for_diagnostic(self, self.gw, "configuration reloaded from")
        time.sleep(0.2)
        self.assertEqual(self.translate("r3", client="t1")[0], 200)
        self.assertEqual(self.translate("r4", client="t1")[0], 200)
        c = [r["conn"] for r in self.stub_since(mark)]
        self.assertEqual(len(c), 4)
        self.assertEqual(c[0], c[1])
        self.assertNotEqual(c[2], c[1])
        self.assertEqual(c[2], c[3])


class CheckCommandTest(unittest.TestCase):
    def test_check_prints_effective_tls_settings(self):
        p = subprocess.run([harness.TRANSGATE, "check", "-c", GW.config_path],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("suites: TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 TLS_AES_128_CCM_SHA256", p.stdout)
        self.assertIn("groups: P-256:P-384:P-521", p.stdout)
        self.assertIn("configuration OK", p.stdout)
        self.assertNotIn(VENDOR_KEY, p.stdout + p.stderr)

    def test_check_refuses_a_world_readable_key(self):
        bad = os.path.join(W.path, "bad.key")
        with open(CERTS.server_key, "rb") as src, open(bad, "wb") as dst:
            dst.write(src.read())
        os.chmod(bad, 0o644)
        cfg = json.loads(json.dumps(GW.config))
        cfg["listeners"][0]["private_key"] = bad
        path = os.path.join(W.path, "bad-key.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        p = subprocess.run([harness.TRANSGATE, "check", "-c", path], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn(bad, p.stderr)
        self.assertIn("group or others", p.stderr)


class ZzDiagnosticsTest(unittest.TestCase):
    """Runs last in this module: nothing sent by the tests above may appear
    in the gateway's diagnostics."""

    def test_diagnostics_hold_no_request_text_or_keys(self):
        diag = GW.diagnostics()
        for needle in ("hello world", "second text", "Good morning", "a greeting",
                       "secret-cookie", "yamada", "still here", "leaving", VENDOR_KEY,
                       GW.keys["terminal-a"], GW.keys["terminal-off"]):
            self.assertNotIn(needle, diag)


class IdleTimeoutTest(unittest.TestCase):
    def test_idle_and_stalled_connections_are_closed_after_idle_timeout(self):
        w = harness.Workdir()
        try:
            up = {"name": "stub", "adapter": "deepl", "url": "https://localhost:%d" % STUB.port,
                  "api_key_file": os.path.join(W.path, "vendor.apikey"), "ca_file": CERTS.ca,
                  "clearance": 2}
            gw = harness.Gateway(w.path, CERTS, upstreams=[up],
                                 clients=[{"name": "a", "upstream": "stub"}],
                                 limits={"idle_timeout_ms": 1000}, workers=1).start()
            ctx = gw.ssl_context()
            # A head trickling in a byte at a time is cut off too: the
            # whole request must arrive within the timeout of its start.
            with socket.create_connection(("127.0.0.1", gw.port)) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    s.settimeout(10)
                    t0 = time.monotonic()
                    closed = False
                    for b in b"POST /v2/translate HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 60:
                        try:
                            s.sendall(bytes([b]))
                        except (OSError, ssl.SSLError):
                            closed = True
                            break
                        time.sleep(0.25)
                        if time.monotonic() - t0 > 6:
                            break
                    if not closed:
                        try:
                            closed = s.recv(100) == b""
                        except (OSError, ssl.SSLError):
                            closed = True
                    self.assertTrue(closed)
                    self.assertLess(time.monotonic() - t0, 5)
            # Idle after a request, and stalled in the middle of a head.
            for first in (None, b"POST /v2/translate HTTP/1.1\r\nHost: x\r\n"):
                with socket.create_connection(("127.0.0.1", gw.port)) as raw:
                    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                        s.settimeout(10)
                        if first is None:
                            body = form(text="idle", target_lang="DE")
                            s.sendall(("POST /v2/translate HTTP/1.1\r\nHost: x\r\n"
                                       "Authorization: DeepL-Auth-Key %s\r\n"
                                       "Content-Type: application/x-www-form-urlencoded\r\n"
                                       "Content-Length: %d\r\n\r\n%s"
                                       % (gw.keys["a"], len(body), body)).encode())
                            st, _, _, _ = read_response(s)
                            self.assertEqual(st, 200)
                        else:
                            s.sendall(first)
                        t0 = time.monotonic()
                        try:
                            tail = s.recv(100)
                        except (OSError, ssl.SSLError):
                            tail = b""
                        waited = time.monotonic() - t0
                        self.assertEqual(tail, b"")
                        # Closed by the timeout, not at once and not by the
                        # test's own 10 s limit.
                        self.assertGreater(waited, 0.5)
                        self.assertLess(waited, 8)
            self.assertEqual(gw.stop(), 0)
        finally:
            w.cleanup()


class SecondInstanceTest(unittest.TestCase):
    def test_a_second_instance_on_the_same_address_refuses_to_start(self):
        # SO_REUSEPORT would let it listen beside the first and take some of
        # its connections; it must stop before touching the audit trail.
        before = os.path.getsize(GW.audit_path)
        p = subprocess.run([harness.TRANSGATE, "serve", "-c", GW.config_path],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("listener 127.0.0.1:%d: address already in use" % GW.port, p.stderr)
        time.sleep(0.2)
        self.assertEqual(os.path.getsize(GW.audit_path), before)
        st, _, _ = GW.request("POST", "/v2/translate", form(text="still one", target_lang="DE"),
                              FORM, client="terminal-a")
        self.assertEqual(st, 200)


class ReloadTest(unittest.TestCase):
    def test_sighup_disables_one_client_and_keeps_the_rest(self):
        w = harness.Workdir()
        try:
            up = {"name": "stub", "adapter": "deepl", "url": "https://localhost:%d" % STUB.port,
                  "api_key_file": os.path.join(W.path, "vendor.apikey"), "ca_file": CERTS.ca,
                  "clearance": 2}
            gw = harness.Gateway(w.path, CERTS, upstreams=[up], clients=[
                {"name": "a", "upstream": "stub"}, {"name": "b", "upstream": "stub"}],
                workers=2).start()
            body = form(text="reload", target_lang="DE")
            self.assertEqual(gw.request("POST", "/v2/translate", body, FORM, client="a")[0], 200)
            # A request in flight while the configuration changes finishes.
            result = {}
            th = threading.Thread(target=lambda: result.setdefault("r", gw.request(
                "POST", "/v2/translate", form(text="@@delay=800@@ x", target_lang="DE"),
                FORM, client="a")))
            th.start()
            time.sleep(0.2)
            gw.config["clients"][0]["disabled"] = True
            with open(gw.config_path, "w") as f:
                json.dump(gw.config, f)
            gw.proc.send_signal(signal.SIGHUP)
            wait_for_diagnostic(self, gw, "configuration reloaded from")
            th.join(5)
            self.assertEqual(result["r"][0], 200)
            st, _, data = gw.request("POST", "/v2/translate", body, FORM, client="a")
            self.assertEqual(st, 403, data)
            self.assertEqual(gw.request("POST", "/v2/translate", body, FORM, client="b")[0], 200)
            # A broken file is refused whole; the running configuration stays.
            with open(gw.config_path, "w") as f:
                f.write('{"workers": "two"')
            gw.proc.send_signal(signal.SIGHUP)
            wait_for_diagnostic(self, gw, "reload refused, configuration unchanged")
            self.assertEqual(gw.request("POST", "/v2/translate", body, FORM, client="b")[0], 200)
            self.assertEqual(gw.request("POST", "/v2/translate", body, FORM, client="a")[0], 403)
            self.assertEqual(gw.stop(), 0)
        finally:
            w.cleanup()


class PrivilegeTest(unittest.TestCase):
    def test_started_as_root_it_serves_as_the_configured_user(self):
        import pwd
        if os.geteuid() != 0:
            self.skipTest("needs root")
        nobody = pwd.getpwnam("nobody")
        w = harness.Workdir()
        try:
            gw = harness.Gateway(w.path, CERTS, upstreams=[
                {"name": "stub", "adapter": "deepl", "url": "https://localhost:%d" % STUB.port,
                 "api_key_file": os.path.join(W.path, "vendor.apikey"), "ca_file": CERTS.ca,
                 "clearance": 2}], clients=[{"name": "t", "upstream": "stub"}], workers=1)
            gw.config["user"] = "nobody"
            with open(gw.config_path, "w") as f:
                json.dump(gw.config, f)
            gw.start()
            # Answering proves the workers run, which happens after the switch.
            st, _, _ = gw.request("POST", "/v2/translate", form(text="x", target_lang="DE"),
                                  FORM, client="t")
            self.assertEqual(st, 200)
            with open("/proc/%d/status" % gw.proc.pid) as f:
                uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
            self.assertEqual(uids, [str(nobody.pw_uid)] * 4)
            self.assertEqual(gw.stop(), 0)
        finally:
            w.cleanup()


class DrainTest(unittest.TestCase):
    def test_sigterm_lets_in_flight_requests_finish_then_exits_0(self):
        w = harness.Workdir()
        try:
            gw = harness.Gateway(w.path, CERTS, upstreams=[
                {"name": "stub", "adapter": "deepl", "url": "https://localhost:%d" % STUB.port,
                 "api_key_file": os.path.join(W.path, "vendor.apikey"), "ca_file": CERTS.ca,
                 "clearance": 2}],
                clients=[{"name": "t", "upstream": "stub"}], workers=1).start()
            result = {}

            def slow():
                result["r"] = gw.request("POST", "/v2/translate",
                                         form(text="@@delay=1500@@ drain", target_lang="DE"),
                                         FORM, client="t")
            th = threading.Thread(target=slow)
            th.start()
            time.sleep(0.5)
            gw.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", gw.port), timeout=1).close()
            th.join(10)
            st, _, body = result["r"]
            self.assertEqual(st, 200, body)
            self.assertEqual(json.loads(body)["translations"][0]["text"],
                             "[DE] @@DELAY=1500@@ DRAIN")
            self.assertEqual(gw.proc.wait(10), 0)
            gw.stop()
        finally:
            w.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
