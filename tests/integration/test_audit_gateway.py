"""The audit trail of the real gateway (issue 4): every exchange and
lifecycle event recorded with typed fields, nothing sensitive in it, a chain
that `transgate audit verify` accepts and that breaks visibly when touched,
refusal rather than loss when records cannot be written, and rotation."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unicodedata
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

CORPUS = os.path.join(harness.SOURCE_DIR, "tests", "data", "policy", "corpus.jsonl")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}
VENDOR_KEY = "audit-test-vendor-key"
W = CERTS = STUB = None


def setUpModule():
    global W, CERTS, STUB
    W = harness.Workdir()
    CERTS = harness.Certs(W.path)
    with open(os.path.join(W.path, "vendor.apikey"), "w") as f:
        f.write(VENDOR_KEY + "\n")
    os.chmod(os.path.join(W.path, "vendor.apikey"), 0o600)
    STUB = harness.StubVendor(W.path, CERTS, api_key=VENDOR_KEY)


def tearDownModule():
    for gw in STARTED:
        gw.stop()
    if STUB is not None:
        STUB.stop()
    if W is not None:
        W.cleanup()


STARTED = []     # every gateway made here, stopped at the end whatever failed


def gateway(workdir, **kw):
    gw = harness.Gateway(workdir, CERTS, upstreams=[
        {"name": "stub", "adapter": "deepl", "url": "https://localhost:%d" % STUB.port,
         "api_key_file": os.path.join(W.path, "vendor.apikey"), "ca_file": CERTS.ca,
         "clearance": 2}],
        clients=[{"name": "office", "upstream": "stub"}], **kw)
    STARTED.append(gw)
    return gw


def verify(gw, *files):
    p = subprocess.run([harness.TRANSGATE, "audit", "verify", "--key", gw.audit_key, *files],
                       capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def wait_records(gw, pred, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        recs = gw.audit_records()
        if pred(recs):
            return recs
        time.sleep(0.05)
    return gw.audit_records()


class RecordTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = harness.Workdir()
        cls.gw = gateway(cls.w.path).start()
        cls.ids = {}
        st, h, _ = cls.gw.request("POST", "/v2/translate", json.dumps(
            {"text": ["Call 03-1234-5678 today", "second"], "target_lang": "DE",
             "source_lang": "EN"}), JSON, client="office")
        assert st == 200
        cls.ids["ok"] = h["x-request-id"]
        st, h, _ = cls.gw.request("POST", "/v2/translate", "text=x&target_lang=DE", FORM)
        cls.ids["auth"] = h["x-request-id"]
        st, h, _ = cls.gw.request("POST", "/v2/translate", json.dumps(
            {"text": ["機密性３ 会議資料"], "target_lang": "EN"}), JSON, client="office")
        cls.ids["policy"] = h["x-request-id"]
        st, h, _ = cls.gw.request("POST", "/v2/translate", "text=@@status=500@@&target_lang=DE",
                                  FORM, client="office")
        cls.ids["vendor"] = h["x-request-id"]
        cls.rc = cls.gw.stop()
        cls.recs = cls.gw.audit_records()
        cls.by_id = {r["request_id"]: r for r in cls.recs
                     if "request_id" in r and "event" not in r}

    @classmethod
    def tearDownClass(cls):
        cls.w.cleanup()

    def test_gateway_stops_cleanly(self):
        self.assertEqual(self.rc, 0)

    def test_trail_starts_and_stops_with_lifecycle_events(self):
        first, last = self.recs[0], self.recs[-1]
        self.assertEqual(first["event"], "start")
        self.assertRegex(first["config_digest"], r"^[0-9a-f]{64}$")
        self.assertRegex(first["rules_digest"], r"^[0-9a-f]{64}$")
        self.assertIn(first["clock_synced"], (True, False, None))
        self.assertEqual(last["event"], "stop")
        self.assertEqual([r["seq"] for r in self.recs], list(range(1, len(self.recs) + 1)))

    def test_forwarded_exchange_has_every_field_typed(self):
        r = self.by_id[self.ids["ok"]]
        types = {"ts": str, "seq": int, "request_id": str, "client": str, "source": str,
                 "endpoint": str, "source_lang": str, "target_lang": str, "texts": int,
                 "chars_in": int, "chars_out": int, "detections": dict, "level": int,
                 "rule": str, "decision": str, "reason": str, "upstream": str,
                 "vendor_addr": str, "vendor_status": int, "latency_ms": int,
                 "upstream_ms": int, "text_macs": list, "mac": str, "status": int}
        for k, t in types.items():
            self.assertIsInstance(r[k], t, k)
        self.assertIsNone(r["cert_fp"])
        self.assertRegex(r["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual((r["client"], r["source"], r["endpoint"]),
                         ("office", "127.0.0.1", "/v2/translate"))
        self.assertEqual((r["source_lang"], r["target_lang"], r["texts"]), ("EN", "DE", 2))
        self.assertEqual(r["chars_in"], len("Call 03-1234-5678 today") + len("second"))
        self.assertEqual(r["chars_out"], len("[DE] CALL 03-1234-5678 TODAY") + len("[DE] SECOND"))
        self.assertEqual(r["detections"], {"phone": 1})
        self.assertEqual((r["level"], r["rule"]), (2, "client-default-level"))
        self.assertEqual((r["decision"], r["reason"], r["status"]), ("forwarded", "ok", 200))
        self.assertEqual((r["upstream"], r["vendor_addr"], r["vendor_status"]),
                         ("stub", "127.0.0.1", 200))
        self.assertEqual(len(r["text_macs"]), 2)
        self.assertGreaterEqual(r["latency_ms"], r["upstream_ms"])

    def test_text_mac_lets_an_investigator_recognise_a_sent_text(self):
        r = self.by_id[self.ids["ok"]]
        p = subprocess.run([harness.TRANSGATE, "audit", "mac", "--key", self.gw.audit_key, "-"],
                           input=b"Call 03-1234-5678 today", capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode().split()[0], r["text_macs"][0])

    def test_refusals_and_failures_are_recorded_with_their_reason(self):
        auth = self.by_id[self.ids["auth"]]
        self.assertEqual((auth["decision"], auth["reason"], auth["client"]),
                         ("refused", "auth_failed", None))
        pol = self.by_id[self.ids["policy"]]
        self.assertEqual((pol["decision"], pol["reason"], pol["level"]),
                         ("refused", "policy_refused", 3))
        self.assertIsNone(pol["vendor_status"])
        ven = self.by_id[self.ids["vendor"]]
        self.assertEqual((ven["decision"], ven["reason"], ven["vendor_status"]),
                         ("failed", "vendor_error", 500))

    def test_security_events_are_recorded(self):
        events = [r for r in self.recs if r.get("event") in ("auth_failure", "policy_refused")]
        self.assertEqual([(e["event"], e["request_id"]) for e in events],
                         [("auth_failure", self.ids["auth"]),
                          ("policy_refused", self.ids["policy"])])
        self.assertEqual(events[0]["reason"], "no_credentials")

    def test_verify_accepts_the_trail(self):
        rc, out = verify(self.gw, self.gw.audit_path)
        self.assertEqual(rc, 0, out)

    def test_verify_detects_edited_deleted_reordered_and_truncated_records(self):
        with open(self.gw.audit_path, "rb") as f:
            lines = f.read().splitlines(keepends=True)
        i = next(n for n, line in enumerate(lines) if b'"client":"office"' in line)
        cases = {
            "edited": lines[:i] + [lines[i].replace(b'"office"', b'"offica"')] + lines[i + 1:],
            "deleted": lines[:2] + lines[3:],
            "reordered": lines[:2] + [lines[3], lines[2]] + lines[4:],
            "truncated": lines[:-1] + [lines[-1][:-20]],
        }
        for name, content in cases.items():
            path = os.path.join(self.w.path, "tampered-%s.jsonl" % name)
            with open(path, "wb") as f:
                f.write(b"".join(content))
            rc, out = verify(self.gw, path)
            self.assertEqual(rc, 1, name + ": " + out)
            self.assertIn(path + ":", out, name)


class ContentFreeTest(unittest.TestCase):
    """The labelled corpus goes through the gateway; no value, nor its
    digits-only form, is anywhere in the trail or the diagnostics."""

    def test_no_corpus_value_in_the_trail_or_diagnostics(self):
        w = harness.Workdir()
        try:
            gw = gateway(w.path, log_level="debug").start()
            docs = [json.loads(line) for line in open(CORPUS, encoding="utf-8")]
            conn = gw.connection()
            for d in docs:
                gw.request("POST", "/v2/translate", json.dumps(
                    {"text": [d["text"]], "target_lang": "EN"}), JSON, client="office",
                    conn=conn)
            conn.close()
            self.assertEqual(gw.stop(), 0)
            with open(gw.audit_path, encoding="ascii") as f:
                raw = f.read()
            diag = gw.diagnostics()
            # Digest fields are hex; leave them out of the digit search so a
            # MAC cannot match a number by chance.
            stripped = []
            for line in raw.splitlines():
                rec = json.loads(line)
                for k in ("mac", "text_macs", "request_id", "config_digest", "rules_digest",
                          "prev_mac"):
                    rec.pop(k, None)
                stripped.append(json.dumps(rec, ensure_ascii=False))
            text = "\n".join(stripped)
            text_digits = "".join(ch if ch.isdigit() else " " for ch in text)
            # Request ids in the diagnostics are random hex: leave them out
            # too, or a digit run inside one could match by chance.
            diag_ids_out = re.sub(r"[0-9a-f]{32}", " ", diag)
            diag_digits = "".join(ch if ch.isdigit() else " " for ch in diag_ids_out)
            checked = 0
            for d in docs:
                raw_text = d["text"].encode("utf-8")
                for e in d["entities"]:
                    v = raw_text[e["start"]:e["end"]].decode("utf-8")
                    self.assertNotIn(v, text, e["type"])
                    self.assertNotIn(v, diag, e["type"])
                    digits = "".join(c for c in unicodedata.normalize("NFKC", v) if c.isdigit())
                    if len(digits) >= 6:
                        self.assertNotIn(" %s " % digits, " %s " % text_digits, e["type"])
                        self.assertNotIn(" %s " % digits, " %s " % diag_digits, e["type"])
                    checked += 1
            self.assertGreater(checked, 1500)
            self.assertEqual(sum(1 for r in gw.audit_records() if "event" not in r), len(docs))
        finally:
            w.cleanup()


class AdminPlaneTest(unittest.TestCase):
    def test_health_readiness_and_metrics_on_the_admin_socket(self):
        w = harness.Workdir()
        try:
            gw = gateway(w.path, workers=2)
            admin = os.path.join(w.path, "admin.sock")
            gw.config["admin"] = {"socket": admin}
            with open(gw.config_path, "w") as f:
                json.dump(gw.config, f)
            gw.start()
            self.assertEqual(os.stat(admin).st_mode & 0o777, 0o600)
            self.assertEqual(harness.admin_get(admin, "/healthz"), (200, '{"status":"ok"}\n'))
            self.assertEqual(harness.admin_get(admin, "/readyz"), (200, '{"ready":true}\n'))
            for _ in range(3):
                gw.request("POST", "/v2/translate", "text=x&target_lang=DE", FORM,
                           client="office")
            gw.request("GET", "/nowhere", client="office")
            st, m = harness.admin_get(admin, "/metrics")
            self.assertEqual(st, 200)
            self.assertIn("transgate_requests_total 4\n", m)
            self.assertIn('transgate_responses_total{class="2xx"} 3\n', m)
            self.assertIn('transgate_responses_total{class="4xx"} 1\n', m)
            self.assertIn("transgate_audit_healthy 1\n", m)
            self.assertEqual(harness.admin_get(admin, "/v2/translate")[0], 404)
            self.assertEqual(gw.stop(), 0)
            self.assertFalse(os.path.exists(admin))
        finally:
            w.cleanup()


class FailureAndRotationTest(unittest.TestCase):
    def test_full_disk_refuses_requests_and_loses_nothing(self):
        """The trail on a small tmpfs that is then filled up: requests are
        refused with 503 while records cannot be written, a diagnostic says
        why, and once space is freed every record is there and verifies."""
        w = harness.Workdir()
        disk = os.path.join(w.path, "disk")
        os.mkdir(disk)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", disk],
                          capture_output=True).returncode != 0:
            w.cleanup()
            self.skipTest("cannot mount a tmpfs here")
        try:
            gw = gateway(w.path, workers=1)
            gw.audit_path = os.path.join(disk, "audit.jsonl")
            gw.config["audit"]["path"] = gw.audit_path
            admin = os.path.join(w.path, "admin.sock")
            gw.config["admin"] = {"socket": admin}
            with open(gw.config_path, "w") as f:
                json.dump(gw.config, f)
            gw.start()
            ok = lambda: gw.request("POST", "/v2/translate", "text=x&target_lang=DE", FORM,
                                    client="office")
            self.assertEqual(ok()[0], 200)
            wait_records(gw, lambda r: sum(1 for x in r if "event" not in x) == 1)
            filler = os.path.join(disk, "filler")
            harness.fill_disk(filler)
            # Records still fit in the file's last page for a while; then
            # the writer fails and the trail refuses.
            statuses = []
            for _ in range(40):
                statuses.append(ok()[0])
                if statuses[-1] == 503:
                    break
                time.sleep(0.05)
            self.assertEqual(statuses[-1], 503, statuses)
            refused = [ok() for _ in range(3)]
            self.assertEqual([r[0] for r in refused], [503, 503, 503], statuses)
            self.assertEqual(json.loads(refused[0][2])["code"], "audit_unavailable")
            self.assertIn("audit: cannot write", gw.diagnostics())
            # Readiness says so, for the load balancer in front.
            self.assertEqual(harness.admin_get(admin, "/readyz"),
                             (503, '{"ready":false,"reason":"audit_unavailable"}\n'))
            st, metrics = harness.admin_get(admin, "/metrics")
            self.assertIn("transgate_audit_healthy 0\n", metrics)
            os.unlink(filler)
            deadline = time.monotonic() + 5
            while ok()[0] != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertIn("the trail is healthy", gw.diagnostics())
            self.assertEqual(harness.admin_get(admin, "/readyz"), (200, '{"ready":true}\n'))
            self.assertEqual(gw.stop(), 0)
            recs = gw.audit_records()
            self.assertEqual([r["seq"] for r in recs], list(range(1, len(recs) + 1)))
            # Every exchange that was answered has its record, including
            # those accepted as the disk filled up.
            answered = 2 + statuses.count(200)
            self.assertEqual(sum(1 for r in recs if r.get("reason") == "ok"), answered)
            self.assertEqual(sum(1 for r in recs if r.get("reason") == "audit_unavailable"), 0)
            self.assertEqual(verify(gw, gw.audit_path)[0], 0)
        finally:
            subprocess.run(["umount", disk], capture_output=True)
            w.cleanup()

    def test_rotation_on_sigusr1_keeps_the_chain(self):
        w = harness.Workdir()
        try:
            gw = gateway(w.path, workers=1).start()
            for _ in range(3):
                gw.request("POST", "/v2/translate", "text=x&target_lang=DE", FORM,
                           client="office")
            wait_records(gw, lambda r: sum(1 for x in r if "event" not in x) == 3)
            rotated = gw.audit_path + ".1"
            shutil.move(gw.audit_path, rotated)
            gw.proc.send_signal(signal.SIGUSR1)
            wait_records(gw, lambda r: any(x.get("event") == "reopen" for x in r))
            for _ in range(2):
                gw.request("POST", "/v2/translate", "text=y&target_lang=DE", FORM,
                           client="office")
            self.assertEqual(gw.stop(), 0)
            first = gw.audit_records()[0]
            self.assertEqual(first["event"], "reopen")
            rc, out = verify(gw, rotated, gw.audit_path)
            self.assertEqual(rc, 0, out)
            rc, out = verify(gw, gw.audit_path, rotated)
            self.assertEqual(rc, 1, out)
        finally:
            w.cleanup()

    def test_reload_says_a_changed_audit_section_waits_for_a_restart(self):
        w = harness.Workdir()
        gw = None
        try:
            gw = gateway(w.path, workers=1).start()
            warning = 'the "audit" section changed; the trail keeps its settings ' \
                      'until the gateway is restarted'

            def reload(n):
                gw.proc.send_signal(signal.SIGHUP)
                wait_records(gw, lambda r: sum(1 for x in r if x.get("event") == "reload") == n)
                deadline = time.monotonic() + 5
                while gw.diagnostics().count("configuration reloaded") < n and \
                        time.monotonic() < deadline:
                    time.sleep(0.05)
                self.assertEqual(gw.diagnostics().count("configuration reloaded"), n)

            reload(1)                       # unchanged: no warning
            self.assertNotIn(warning, gw.diagnostics())
            moved = os.path.join(w.path, "elsewhere.jsonl")
            gw.config["audit"]["path"] = moved
            gw.config["audit"]["batch_ms"] = 0
            with open(gw.config_path, "w") as f:
                json.dump(gw.config, f)
            reload(2)
            self.assertEqual(gw.diagnostics().count(warning), 1)
            # Compared with what the trail was opened with, not with the
            # previous reload: the same file again still differs ...
            reload(3)
            self.assertEqual(gw.diagnostics().count(warning), 2)
            # ... and the original settings again do not.
            gw.config["audit"]["path"] = gw.audit_path
            del gw.config["audit"]["batch_ms"]
            with open(gw.config_path, "w") as f:
                json.dump(gw.config, f)
            reload(4)
            self.assertEqual(gw.diagnostics().count(warning), 2)
            # The trail stays where it was, and the gateway serves on.
            st, _, _ = gw.request("POST", "/v2/translate", "text=x&target_lang=DE", FORM,
                                  client="office")
            self.assertEqual(st, 200)
            self.assertEqual(gw.stop(), 0)
            self.assertFalse(os.path.exists(moved))
            recs = gw.audit_records()
            self.assertEqual([r.get("event") for r in recs if "event" in r],
                             ["start", "reload", "reload", "reload", "reload", "stop"])
            self.assertEqual(sum(1 for r in recs if "event" not in r), 1)
            self.assertEqual(verify(gw, gw.audit_path)[0], 0)
        finally:
            if gw is not None:
                gw.stop()
            w.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
