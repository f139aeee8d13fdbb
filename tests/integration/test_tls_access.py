"""CRYPTREC TLS profiles on both legs, terminal identity and access control
(issue 5), through the real binary on loopback.

- Every suite and protocol OpenSSL knows is tried against the listener
  (openssl s_client), for each profile; the accepted set must equal the
  profile exactly.
- The vendor leg's ClientHello is captured and decoded: offered versions,
  suites and groups must equal the profile exactly.
- Mutual TLS, certificate-to-client mapping, key+certificate clients,
  source networks, per-client limits, vendor certificate and pin checks.
"""

import concurrent.futures
import json
import os
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

W = CERTS = STUB = None
VENDOR_KEY = "tls-test-vendor-key"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}

TLS13_ALL = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
             "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_CCM_SHA256",
             "TLS_AES_128_CCM_8_SHA256"]
ECDHE_AEAD = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
              "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
              "ECDHE-ECDSA-AES128-CCM", "ECDHE-ECDSA-AES256-CCM"]
CAMELLIA = ["ECDHE-ECDSA-CAMELLIA128-SHA256", "ECDHE-RSA-CAMELLIA128-SHA256",
            "ECDHE-ECDSA-CAMELLIA256-SHA384", "ECDHE-RSA-CAMELLIA256-SHA384"]
DHE_AEAD = ["DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384",
            "DHE-RSA-AES128-CCM", "DHE-RSA-AES256-CCM"]
CHACHA12 = ["ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
            "DHE-RSA-CHACHA20-POLY1305"]
CBC_SHA2 = ["ECDHE-ECDSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA256",
            "ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA384",
            "DHE-RSA-AES128-SHA256", "DHE-RSA-AES256-SHA256"]
DHE_CAMELLIA = ["DHE-RSA-CAMELLIA128-SHA256", "DHE-RSA-CAMELLIA256-SHA256"]
AEAD13 = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_AES_128_CCM_SHA256"]

# The specification each profile is tested against.
PROFILES = {
    "cryptrec-strict": {
        "tls13": set(AEAD13),
        "tls12": set(ECDHE_AEAD + CAMELLIA),
        "groups": {"secp256r1", "secp384r1", "secp521r1"},
    },
    "cryptrec-recommended": {
        "tls13": set(AEAD13 + ["TLS_CHACHA20_POLY1305_SHA256"]),
        "tls12": set(ECDHE_AEAD + DHE_AEAD + CHACHA12 + CBC_SHA2 + CAMELLIA + DHE_CAMELLIA),
        "groups": {"secp256r1", "secp384r1", "secp521r1", "ffdhe2048", "ffdhe3072",
                   "ffdhe4096"},
    },
    "cryptrec-high": {
        "tls13": set(AEAD13 + ["TLS_CHACHA20_POLY1305_SHA256"]),
        "tls12": set(ECDHE_AEAD + DHE_AEAD + CHACHA12),
        "groups": {"secp256r1", "secp384r1", "secp521r1", "ffdhe2048", "ffdhe3072",
                   "ffdhe4096"},
    },
}

# TLS group ids (RFC 8446, 7919) for decoding the vendor-leg ClientHello.
GROUP_NAMES = {0x0017: "secp256r1", 0x0018: "secp384r1", 0x0019: "secp521r1",
               0x001d: "x25519", 0x001e: "x448", 0x0100: "ffdhe2048",
               0x0101: "ffdhe3072", 0x0102: "ffdhe4096", 0x0103: "ffdhe6144",
               0x0104: "ffdhe8192"}


def openssl_suites():
    """All TLS 1.2 cipher names OpenSSL knows, and IANA id -> name."""
    out = subprocess.run(["openssl", "ciphers", "-V", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
                         capture_output=True, text=True, check=True).stdout
    names, ids = [], {}
    for line in out.splitlines():
        parts = line.split()
        code, name, proto = parts[0], parts[2], parts[3]
        hi, lo = code.split(",")
        ids[(int(hi, 16) << 8) | int(lo, 16)] = name
        if proto != "TLSv1.3":
            names.append(name)
    for n, code in (("TLS_AES_128_GCM_SHA256", 0x1301), ("TLS_AES_256_GCM_SHA384", 0x1302),
                    ("TLS_CHACHA20_POLY1305_SHA256", 0x1303),
                    ("TLS_AES_128_CCM_SHA256", 0x1304), ("TLS_AES_128_CCM_8_SHA256", 0x1305)):
        ids[code] = n
    return names, ids


def handshake_ok(port, *args):
    try:
        p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                            "-servername", "localhost", *args],
                           input=b"", capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        return False
    return p.returncode == 0 and b"Cipher is (NONE)" not in p.stdout


def setUpModule():
    global W, CERTS, STUB
    W = harness.Workdir()
    CERTS = harness.Certs(W.path)
    d = CERTS.dir
    # An RSA listener certificate, so RSA-authenticated suites can be seen.
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj",
                    "/CN=localhost", "-keyout", os.path.join(d, "rsa.key"),
                    "-out", os.path.join(d, "rsa.csr")], check=True, capture_output=True)
    ext = os.path.join(d, "rsa.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    subprocess.run(["openssl", "x509", "-req", "-in", os.path.join(d, "rsa.csr"),
                    "-CA", CERTS.ca, "-CAkey", os.path.join(d, "ca.key"), "-CAcreateserial",
                    "-days", "2", "-sha256", "-extfile", ext,
                    "-out", os.path.join(d, "rsa.pem")], check=True, capture_output=True)
    os.chmod(os.path.join(d, "rsa.key"), 0o600)
    tool = ["bash", harness.CERTS_TOOL]
    for args in (["client", d, "revoked-1"], ["revoke", d, "revoked-1"],
                 ["server", d, "other.example", "--out", "wrongname"],
                 ["server", d, "localhost", "127.0.0.1", "--out", "expired", "--expired"]):
        subprocess.run(tool + args, check=True, capture_output=True)
    other = os.path.join(W.path, "other-ca")
    subprocess.run(tool + ["ca", other], check=True, capture_output=True)
    subprocess.run(tool + ["client", other, "terminal-1"], check=True, capture_output=True)
    with open(os.path.join(W.path, "vendor.apikey"), "w") as f:
        f.write(VENDOR_KEY + "\n")
    os.chmod(os.path.join(W.path, "vendor.apikey"), 0o600)
    STUB = harness.StubVendor(W.path, CERTS, api_key=VENDOR_KEY)


def tearDownModule():
    if STUB is not None:
        STUB.stop()
    if W is not None:
        W.cleanup()


def stub_upstream(name="stub", **extra):
    u = {"name": name, "adapter": "deepl", "url": "https://localhost:%d" % STUB.port,
         "ca_file": CERTS.ca, "clearance": 2, "max_retries": 0,
         "api_key_file": os.path.join(W.path, "vendor.apikey")}
    u.update(extra)
    return u


class ListenerProfileScanTest(unittest.TestCase):
    """For each profile: the set of suites the listener accepts is exactly
    the profile's, for TLS 1.2 and 1.3; older protocols are refused."""

    @classmethod
    def setUpClass(cls):
        cls.tls12_names, _ = openssl_suites()

    def scan(self, profile):
        w = harness.Workdir()
        try:
            ecdsa_port, rsa_port = harness.free_port(), harness.free_port()
            gw = harness.Gateway(w.path, CERTS, upstreams=[stub_upstream()],
                                 clients=[{"name": "t", "upstream": "stub"}], workers=1,
                                 listeners=[
                                     {"address": "127.0.0.1:%d" % ecdsa_port,
                                      "certificate": CERTS.server_cert,
                                      "private_key": CERTS.server_key, "tls_profile": profile},
                                     {"address": "127.0.0.1:%d" % rsa_port,
                                      "certificate": os.path.join(CERTS.dir, "rsa.pem"),
                                      "private_key": os.path.join(CERTS.dir, "rsa.key"),
                                      "tls_profile": profile}])
            gw.port = ecdsa_port
            gw.start()
            harness.wait_port(rsa_port, gw.proc)
            jobs = []
            with concurrent.futures.ThreadPoolExecutor(12) as ex:
                for name in self.tls12_names:
                    for port in (ecdsa_port, rsa_port):
                        jobs.append((("1.2", name), ex.submit(
                            handshake_ok, port, "-tls1_2", "-cipher", name + "@SECLEVEL=0")))
                for name in TLS13_ALL:
                    jobs.append((("1.3", name), ex.submit(
                        handshake_ok, ecdsa_port, "-tls1_3", "-ciphersuites", name)))
                old = [(flag, ex.submit(handshake_ok, port, flag, "-cipher",
                                        "ALL:@SECLEVEL=0"))
                       for flag in ("-tls1", "-tls1_1") for port in (ecdsa_port, rsa_port)]
            accepted = {"1.2": set(), "1.3": set()}
            for (ver, name), fut in jobs:
                if fut.result():
                    accepted[ver].add(name)
            self.assertEqual([f for f, fut in old if fut.result()], [])
            self.assertEqual(gw.stop(), 0)
            return accepted
        finally:
            w.cleanup()

    def check(self, profile):
        accepted = self.scan(profile)
        self.assertEqual(accepted["1.3"], PROFILES[profile]["tls13"])
        self.assertEqual(accepted["1.2"], PROFILES[profile]["tls12"])

    def test_cryptrec_strict_accepts_exactly_its_suites(self):
        self.check("cryptrec-strict")

    def test_cryptrec_recommended_accepts_exactly_its_suites(self):
        self.check("cryptrec-recommended")

    def test_cryptrec_high_accepts_exactly_its_suites(self):
        self.check("cryptrec-high")


class HelloCatcher(harness.RawVendor):
    """Records the ClientHello of each connection and closes it: a scanner
    for what the gateway offers vendors."""

    def __init__(self):
        self.hellos = []
        super().__init__(self.catch)

    def catch(self, conn):
        data = harness.read_tls_record(conn)
        if len(data) > 5:
            self.hellos.append(data)


def parse_client_hello(rec, ids):
    body = rec[5:]
    assert body[0] == 1, "not a ClientHello"
    p = 4 + 2 + 32
    p += 1 + body[p]                                      # session id
    n = struct.unpack(">H", body[p:p + 2])[0]
    suites = [struct.unpack(">H", body[p + 2 + i:p + 4 + i])[0] for i in range(0, n, 2)]
    p += 2 + n
    p += 1 + body[p]                                      # compression
    ext_end = p + 2 + struct.unpack(">H", body[p:p + 2])[0]
    p += 2
    groups, versions = [], []
    while p < ext_end:
        typ, ln = struct.unpack(">HH", body[p:p + 4])
        data = body[p + 4:p + 4 + ln]
        if typ == 0x000a:
            groups = [struct.unpack(">H", data[2 + i:4 + i])[0] for i in range(0, len(data) - 2, 2)]
        elif typ == 0x002b:
            versions = [struct.unpack(">H", data[1 + i:3 + i])[0] for i in range(0, data[0], 2)]
        p += 4 + ln
    names = {ids.get(s, "0x%04x" % s) for s in suites if s not in (0x00ff,)}
    return names, {GROUP_NAMES.get(g, "0x%04x" % g) for g in groups}, set(versions)


class VendorLegScanTest(unittest.TestCase):
    def test_vendor_leg_offers_exactly_each_profile(self):
        _, ids = openssl_suites()
        catcher = HelloCatcher()
        w = harness.Workdir()
        try:
            profiles = sorted(PROFILES)
            gw = harness.Gateway(w.path, CERTS, upstreams=[
                {"name": p, "adapter": "deepl", "url": "https://localhost:%d" % catcher.port,
                 "ca_file": CERTS.ca, "clearance": 2, "max_retries": 0, "tls_profile": p}
                for p in profiles],
                clients=[{"name": "c-" + p, "upstream": p} for p in profiles],
                workers=1).start()
            for p in profiles:
                before = len(catcher.hellos)
                st, _, body = gw.request("POST", "/v2/translate", "text=x&target_lang=DE",
                                         FORM, client="c-" + p)
                self.assertEqual(st, 502, body)
                self.assertEqual(len(catcher.hellos), before + 1)
                suites, groups, versions = parse_client_hello(catcher.hellos[-1], ids)
                want = PROFILES[p]["tls13"] | PROFILES[p]["tls12"]
                self.assertEqual(suites, want, p)
                self.assertEqual(groups, PROFILES[p]["groups"], p)
                self.assertEqual(versions, {0x0304, 0x0303}, p)
            self.assertEqual(gw.stop(), 0)
        finally:
            catcher.close()
            w.cleanup()


class MutualTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = harness.Workdir()
        cls.port = harness.free_port()
        listener = {"certificate": CERTS.server_cert, "private_key": CERTS.server_key,
                    "client_auth": "required", "client_ca_file": CERTS.ca,
                    "crl_file": os.path.join(CERTS.dir, "crl.pem")}
        cls.gw = harness.Gateway(cls.w.path, CERTS, upstreams=[stub_upstream()], clients=[
            {"name": "kiosk", "cert_cn": ["terminal-1"], "upstream": "stub"},
            {"name": "both", "cert_cn": ["terminal-1"], "upstream": "stub",
             "api_key_hashes": os.path.join(cls.w.path, "both.hashes")},
        ], listeners=[dict(listener, address="127.0.0.1:%d" % cls.port)], workers=1)
        cls.gw.port = cls.port
        cls.gw.start()

    @classmethod
    def tearDownClass(cls):
        assert cls.gw.stop() == 0
        cls.w.cleanup()

    def ctx(self, cert=None, key=None):
        c = ssl.create_default_context(cafile=CERTS.ca)
        if cert:
            c.load_cert_chain(cert, key)
        return c

    def post(self, ctx, key=None):
        import http.client
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=10)
        hdrs = dict(FORM)
        if key:
            hdrs["Authorization"] = "DeepL-Auth-Key " + key
        try:
            conn.request("POST", "/v2/translate", "text=hello&target_lang=DE", hdrs)
            r = conn.getresponse()
            return r.status, json.loads(r.read())
        finally:
            conn.close()

    def client_cert(self, d, name):
        return os.path.join(d, "client-%s.pem" % name), os.path.join(d, "client-%s.key" % name)

    def test_certificate_alone_identifies_a_certificate_only_client(self):
        # "kiosk" matches CN terminal-1 first; it has no key file.
        st, body = self.post(self.ctx(*self.client_cert(CERTS.dir, "terminal-1")))
        self.assertEqual(st, 200, body)
        self.assertEqual(body["translations"][0]["text"], "[DE] HELLO")

    def test_no_certificate_is_refused_in_the_handshake(self):
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            self.post(self.ctx())

    def test_certificate_from_another_ca_is_refused(self):
        d = os.path.join(W.path, "other-ca")
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            self.post(self.ctx(*self.client_cert(d, "terminal-1")))

    def test_revoked_certificate_is_refused(self):
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            self.post(self.ctx(*self.client_cert(CERTS.dir, "revoked-1")))

    def test_client_with_key_and_certificate_needs_both(self):
        cert = self.client_cert(CERTS.dir, "terminal-1")
        st, body = self.post(self.ctx(*cert), key=self.gw.keys["both"])
        self.assertEqual(st, 200, body)
        st, body = self.post(self.ctx(*cert), key="tg_" + "A" * 43)
        self.assertEqual(st, 403)
        self.assertEqual(body["code"], "auth_failed")


class NetworkAndLimitTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = harness.Workdir()
        cls.port6 = harness.free_port()
        cls.gw = harness.Gateway(cls.w.path, CERTS, upstreams=[stub_upstream()], clients=[
            {"name": "lan", "upstream": "stub", "source_networks": ["127.0.0.0/8", "::1/128"]},
            {"name": "elsewhere", "upstream": "stub",
             "source_networks": ["10.0.0.0/8", "2001:db8::/32"]},
            {"name": "one-at-a-time", "upstream": "stub", "limits": {"max_concurrent": 1}},
            {"name": "slowpoke", "upstream": "stub", "limits": {"requests_per_second": 2}},
            {"name": "thrifty", "upstream": "stub", "limits": {"chars_per_day": 10}},
            {"name": "off", "upstream": "stub", "disabled": True},
        ], workers=2)
        cls.gw.config["listeners"].append({
            "address": "[::1]:%d" % cls.port6, "certificate": CERTS.server_cert,
            "private_key": CERTS.server_key})
        with open(cls.gw.config_path, "w") as f:
            json.dump(cls.gw.config, f)
        cls.gw.start()
        harness.wait_port(cls.port6, cls.gw.proc, host="::1")

    @classmethod
    def tearDownClass(cls):
        assert cls.gw.stop() == 0
        cls.w.cleanup()

    def post(self, client, text="hello", host=None):
        if host is None:
            return self.gw.request("POST", "/v2/translate",
                                   urllib.parse.urlencode({"text": text, "target_lang": "DE"}),
                                   FORM, client=client)
        import http.client
        conn = http.client.HTTPSConnection(host, self.port6, timeout=10,
                                           context=self.gw.ssl_context())
        try:
            conn.request("POST", "/v2/translate", "text=%s&target_lang=DE" % text,
                         dict(FORM, Authorization="DeepL-Auth-Key " + self.gw.keys[client]))
            r = conn.getresponse()
            return r.status, {}, r.read()
        finally:
            conn.close()

    def test_allowed_networks_ipv4_and_ipv6(self):
        self.assertEqual(self.post("lan")[0], 200)
        self.assertEqual(self.post("lan", host="::1")[0], 200)

    def test_source_outside_the_clients_networks_is_refused(self):
        for host in (None, "::1"):
            st, _, body = self.post("elsewhere", host=host)
            self.assertEqual(st, 403, body)
            self.assertEqual(json.loads(body)["code"], "auth_failed")
        self.assertIn("source address not allowed for this client (elsewhere)",
                      self.gw.diagnostics())

    def test_unknown_and_disabled_keys_are_refused(self):
        st, _, body = self.gw.request("POST", "/v2/translate", "text=x&target_lang=DE",
                                      dict(FORM, Authorization="DeepL-Auth-Key tg_" + "B" * 43))
        self.assertEqual(st, 403)
        st, _, body = self.post("off")
        self.assertEqual(st, 403)
        self.assertEqual(json.loads(body)["code"], "auth_failed")

    def test_concurrency_limit_gives_429(self):
        results = []

        def slow():
            results.append(self.post("one-at-a-time", text="@@delay=800@@ a"))
        th = threading.Thread(target=slow)
        th.start()
        time.sleep(0.3)
        st, _, body = self.post("one-at-a-time")
        th.join()
        self.assertEqual(st, 429, body)
        self.assertEqual(json.loads(body)["code"], "too_many_concurrent_requests")
        self.assertEqual(results[0][0], 200)
        self.assertEqual(self.post("one-at-a-time")[0], 200)

    def test_rate_limit_gives_429(self):
        statuses = [self.post("slowpoke")[0] for _ in range(4)]
        self.assertEqual(statuses[:2], [200, 200])
        self.assertIn(429, statuses[2:])
        time.sleep(1.1)
        self.assertEqual(self.post("slowpoke")[0], 200)

    def test_daily_character_limit_gives_429(self):
        self.assertEqual(self.post("thrifty", text="12345678")[0], 200)
        st, _, body = self.post("thrifty", text="12345")
        self.assertEqual(st, 429, body)
        self.assertEqual(json.loads(body)["code"], "daily_character_limit")
        st, _, body = self.gw.request("GET", "/v2/usage", client="thrifty")
        self.assertEqual(json.loads(body), {"character_count": 8, "character_limit": 10})


class ConnectProxy:
    """A minimal HTTP CONNECT proxy on loopback that records what it was
    asked for and relays bytes it cannot read (TLS end to end)."""

    def __init__(self, refuse=False):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.refuse = refuse
        self.requests = []
        self.relayed = b""
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def pipe(self, src, dst, keep):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                if keep:
                    self.relayed += d
                dst.sendall(d)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve(self, c):
        head = b""
        while b"\r\n\r\n" not in head:
            d = c.recv(4096)
            if not d:
                c.close()
                return
            head += d
        line = head.split(b"\r\n")[0].decode()
        self.requests.append(line)
        method, target, _ = line.split(" ", 2)
        host, port = target.rsplit(":", 1)
        if self.refuse:
            c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            c.close()
            return
        # Every name is the stub on loopback: this proxy is the only one
        # that resolves (the gateway must not need to).
        up = socket.create_connection(("127.0.0.1", int(port)))
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=self.pipe, args=(up, c, False), daemon=True).start()
        self.pipe(c, up, True)

    def close(self):
        self.sock.close()


class ProxyTest(unittest.TestCase):
    def test_vendor_leg_through_an_egress_proxy_stays_tls_end_to_end(self):
        proxy = ConnectProxy()
        w = harness.Workdir()
        try:
            gw = harness.Gateway(w.path, CERTS, upstreams=[
                stub_upstream(proxy="http://127.0.0.1:%d" % proxy.port)],
                clients=[{"name": "t", "upstream": "stub"}], workers=1).start()
            st, _, body = gw.request("POST", "/v2/translate",
                                     "text=through%20the%20proxy&target_lang=DE", FORM,
                                     client="t")
            self.assertEqual(st, 200, body)
            self.assertEqual(json.loads(body)["translations"][0]["text"],
                             "[DE] THROUGH THE PROXY")
            self.assertEqual(proxy.requests, ["CONNECT localhost:%d HTTP/1.1" % STUB.port])
            # The proxy relayed a TLS session: neither the text nor the
            # vendor key crossed it in clear.
            self.assertGreater(len(proxy.relayed), 0)
            self.assertEqual(proxy.relayed[0], 0x16)     # TLS handshake record
            self.assertNotIn(b"through the proxy", proxy.relayed)
            self.assertNotIn(VENDOR_KEY.encode(), proxy.relayed)
            self.assertEqual(gw.stop(), 0)
        finally:
            proxy.close()
            w.cleanup()

    def test_the_vendor_name_is_resolved_by_the_proxy_and_verified_end_to_end(self):
        # vendor.invalid cannot resolve here; the gateway starts anyway and
        # asks the proxy for it.  The stub's certificate is for localhost:
        # the name check, done by the gateway through the tunnel, refuses it.
        proxy = ConnectProxy()
        w = harness.Workdir()
        try:
            gw = harness.Gateway(w.path, CERTS, upstreams=[
                stub_upstream(url="https://vendor.invalid:%d" % STUB.port,
                              proxy="http://127.0.0.1:%d" % proxy.port)],
                clients=[{"name": "t", "upstream": "stub"}], workers=1).start()
            st, _, body = gw.request("POST", "/v2/translate", "text=x&target_lang=DE", FORM,
                                     client="t")
            self.assertEqual((st, json.loads(body).get("code")),
                             (502, "vendor_cert_name_mismatch"))
            self.assertEqual(proxy.requests, ["CONNECT vendor.invalid:%d HTTP/1.1" % STUB.port])
            self.assertEqual(gw.stop(), 0)
        finally:
            proxy.close()
            w.cleanup()

    def test_a_proxy_refusing_the_tunnel_gives_502_unreachable(self):
        proxy = ConnectProxy(refuse=True)
        w = harness.Workdir()
        try:
            gw = harness.Gateway(w.path, CERTS, upstreams=[
                stub_upstream(proxy="http://127.0.0.1:%d" % proxy.port)],
                clients=[{"name": "t", "upstream": "stub"}], workers=1).start()
            st, _, body = gw.request("POST", "/v2/translate", "text=x&target_lang=DE", FORM,
                                     client="t")
            self.assertEqual((st, json.loads(body).get("code")), (502, "vendor_unreachable"))
            self.assertEqual(len(proxy.requests), 1)     # 403 is final: no retry
            self.assertIn("proxy refused the tunnel with status 403", gw.diagnostics())
            self.assertEqual(gw.stop(), 0)
        finally:
            proxy.close()
            w.cleanup()


class VendorCertificateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = harness.Workdir()
        d = CERTS.dir

        class C:
            pass
        wrong, expired = C(), C()
        wrong.vendor_cert, wrong.vendor_key = (os.path.join(d, "wrongname.pem"),
                                               os.path.join(d, "wrongname.key"))
        expired.vendor_cert, expired.vendor_key = (os.path.join(d, "expired.pem"),
                                                   os.path.join(d, "expired.key"))
        cls.stub_wrong = harness.StubVendor(cls.w.path, wrong, api_key=VENDOR_KEY, name="wrong")
        cls.stub_expired = harness.StubVendor(cls.w.path, expired, api_key=VENDOR_KEY,
                                              name="expired")
        pub = subprocess.run(
            "openssl x509 -in %s -pubkey -noout | openssl pkey -pubin -outform DER | "
            "openssl dgst -sha256 -binary | openssl base64" % CERTS.vendor_cert,
            shell=True, capture_output=True, text=True, check=True).stdout.strip()
        cls.gw = harness.Gateway(cls.w.path, CERTS, upstreams=[
            stub_upstream("wrongname", url="https://localhost:%d" % cls.stub_wrong.port),
            stub_upstream("expired", url="https://localhost:%d" % cls.stub_expired.port),
            stub_upstream("badpin", pins=["sha256//" + "A" * 43 + "="]),
            stub_upstream("goodpin", pins=["sha256//" + pub]),
            stub_upstream("otherca", ca_file=os.path.join(W.path, "other-ca", "ca.pem")),
        ], clients=[{"name": n, "upstream": n}
                    for n in ("wrongname", "expired", "badpin", "goodpin", "otherca")],
            workers=1).start()

    @classmethod
    def tearDownClass(cls):
        assert cls.gw.stop() == 0
        cls.stub_wrong.stop()
        cls.stub_expired.stop()
        cls.w.cleanup()

    def code(self, client):
        st, _, body = self.gw.request("POST", "/v2/translate", "text=x&target_lang=DE", FORM,
                                      client=client)
        return st, json.loads(body).get("code")

    def test_wrong_hostname_is_refused(self):
        self.assertEqual(self.code("wrongname"), (502, "vendor_cert_name_mismatch"))

    def test_expired_certificate_is_refused(self):
        self.assertEqual(self.code("expired"), (502, "vendor_cert_expired"))

    def test_only_the_configured_ca_is_trusted(self):
        # Another upstream to the same host has a verified connection open;
        # it must not be reused for one that trusts a different CA.
        self.assertEqual(self.code("goodpin"), (200, None))
        self.assertEqual(self.code("otherca"), (502, "vendor_cert_untrusted"))

    def test_wrong_pin_is_refused_and_right_pin_accepted(self):
        # Right pin first: its kept-alive connection must not serve the
        # upstream whose pin does not match.
        self.assertEqual(self.code("goodpin"), (200, None))
        self.assertEqual(self.code("badpin"), (502, "vendor_pin_mismatch"))
        self.assertEqual(self.code("goodpin"), (200, None))


if __name__ == "__main__":
    unittest.main(verbosity=2)
