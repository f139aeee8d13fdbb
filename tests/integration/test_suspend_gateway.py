"""The suspend switch (OPS-1, LOG-2) on the real gateway: `transgate admin`
and the admin socket suspend one upstream or all forwarding at once; a
refused request gets 503 upstream_suspended and its vendor receives nothing
(each upstream is its own recording stub, so "nothing" is exact); requests
already sent finish; the state survives SIGHUP; every change is an audit
event naming who made it, and the chain verifies."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
VENDOR_KEY = "suspend-test-vendor-key"
W = CERTS = ALPHA = BETA = None


def setUpModule():
    global W, CERTS, ALPHA, BETA
    W = harness.Workdir()
    CERTS = harness.Certs(W.path)
    with open(os.path.join(W.path, "vendor.apikey"), "w") as f:
        f.write(VENDOR_KEY + "\n")
    os.chmod(os.path.join(W.path, "vendor.apikey"), 0o600)
    ALPHA = harness.StubVendor(W.path, CERTS, api_key=VENDOR_KEY, name="alpha")
    BETA = harness.StubVendor(W.path, CERTS, api_key=VENDOR_KEY, name="beta")


def tearDownModule():
    for s in (ALPHA, BETA):
        if s is not None:
            s.stop()
    if W is not None:
        W.cleanup()


def upstream(name, stub, **extra):
    u = {"name": name, "adapter": "deepl", "url": "https://localhost:%d" % stub.port,
         "api_key_file": os.path.join(W.path, "vendor.apikey"), "ca_file": CERTS.ca,
         "clearance": 2}
    u.update(extra)
    return u


def gateway(workdir, alpha_extra=None, audit=None):
    gw = harness.Gateway(workdir, CERTS,
                         upstreams=[upstream("alpha", ALPHA, **(alpha_extra or {})),
                                    upstream("beta", BETA)],
                         clients=[{"name": "office-a", "upstream": "alpha"},
                                  {"name": "office-b", "upstream": "beta"}])
    gw.admin = os.path.join(workdir, "admin.sock")
    gw.config["admin"] = {"socket": gw.admin}
    if audit:
        gw.config["audit"].update(audit)
        gw.audit_path = gw.config["audit"]["path"]
    write_config(gw)
    return gw


def write_config(gw):
    with open(gw.config_path, "w") as f:
        json.dump(gw.config, f, indent=2)


def admin(gw, *args, socket_arg=False):
    """`transgate admin ARGS -c CONFIG`; (exit status, stdout, stderr, pid)."""
    where = ["--socket", gw.admin] if socket_arg else ["-c", gw.config_path]
    p = subprocess.Popen([harness.TRANSGATE, "admin", *args, *where],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=30)
    return p.returncode, out, err, p.pid


def translate(gw, client, text="hello"):
    st, h, body = gw.request("POST", "/v2/translate", "text=%s&target_lang=DE" % text,
                             FORM, client=client)
    return st, h, json.loads(body)


def verify(gw):
    p = subprocess.run([harness.TRANSGATE, "audit", "verify", "--key", gw.audit_key,
                        gw.audit_path], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def reload(gw):
    before = gw.diagnostics().count("configuration reloaded")
    write_config(gw)
    gw.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while gw.diagnostics().count("configuration reloaded") == before:
        if time.monotonic() > deadline:
            raise AssertionError("no reload: " + gw.diagnostics()[-2000:])
        time.sleep(0.05)


def started(test, **kw):
    """A gateway in a fresh work directory, stopped and removed when the
    test ends, whatever happens."""
    w = harness.Workdir()
    test.addCleanup(w.cleanup)
    gw = gateway(w.path, **kw)
    test.addCleanup(gw.stop)
    return gw.start()


def metric(gw, line):
    return line in harness.admin_get(gw.admin, "/metrics")[1].splitlines()


class SuspendUpstreamTest(unittest.TestCase):
    """One upstream suspended and resumed with the CLI, every effect asserted."""

    @classmethod
    def setUpClass(cls):
        cls.w = harness.Workdir()
        gw = cls.gw = gateway(cls.w.path).start()
        try:
            cls.exercise(gw)
        except BaseException:
            gw.stop()
            cls.w.cleanup()
            raise

    @classmethod
    def exercise(cls, gw):
        cls.a0, cls.b0 = len(ALPHA.requests()), len(BETA.requests())
        cls.before = translate(gw, "office-a")
        cls.cli_suspend = admin(gw, "suspend", "alpha")
        cls.refused = translate(gw, "office-a")
        cls.refused_lang = gw.request("GET", "/v2/languages?type=target", client="office-a")
        cls.a1 = len(ALPHA.requests())
        cls.other = translate(gw, "office-b")
        cls.usage = gw.request("GET", "/v2/usage", client="office-a")
        cls.cli_status = admin(gw, "status")
        cls.cli_status_json = admin(gw, "status", "alpha", "--json", socket_arg=True)
        cls.readyz = harness.admin_get(gw.admin, "/readyz")
        cls.metrics = harness.admin_get(gw.admin, "/metrics")[1].splitlines()
        cls.cli_again = admin(gw, "suspend", "alpha")
        cls.cli_resume = admin(gw, "resume", "alpha")
        cls.after = translate(gw, "office-a")
        cls.a2 = len(ALPHA.requests())
        cls.readyz_after = harness.admin_get(gw.admin, "/readyz")
        cls.rc = gw.stop()
        cls.recs = gw.audit_records()

    @classmethod
    def tearDownClass(cls):
        cls.w.cleanup()

    def test_suspended_upstream_gets_503_upstream_suspended_and_its_vendor_receives_nothing(self):
        self.assertEqual(self.before[0], 200)
        st, h, body = self.refused
        self.assertEqual(st, 503)
        self.assertEqual(body["code"], "upstream_suspended")
        self.assertEqual(set(body), {"message", "code"})
        self.assertRegex(h["x-request-id"], r"^[0-9a-f]{32}$")
        self.assertEqual(self.refused_lang[0], 503)
        self.assertEqual(json.loads(self.refused_lang[2])["code"], "upstream_suspended")
        self.assertEqual(self.a1, self.a0 + 1)      # the request before, nothing since

    def test_other_upstream_and_local_answers_still_work(self):
        self.assertEqual(self.other[0], 200)
        self.assertEqual(len(BETA.requests()), self.b0 + 1)
        self.assertEqual(self.usage[0], 200)

    def test_resume_forwards_again(self):
        self.assertEqual(self.after[0], 200)
        self.assertEqual(self.a2, self.a1 + 1)

    def test_cli_output_and_exit_statuses(self):
        rc, out, err, _ = self.cli_suspend
        self.assertEqual((rc, out), (0, "upstream alpha suspended\n"), err)
        self.assertIn('"suspended": true', err)     # the note on persistence
        rc, out, err, pid = self.cli_status
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[0], "forwarding: active")
        self.assertRegex(lines[1], r"^upstream alpha: suspended \(at run time by uid %d, "
                         r"pid \d+, since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\)$"
                         % os.getuid())
        self.assertEqual(lines[2], "upstream beta: active")
        rc, out, err, _ = self.cli_status_json
        self.assertEqual(rc, 0, err)
        st = json.loads(out)
        self.assertEqual((st["name"], st["state"], st["runtime"], st["configuration"]),
                         ("alpha", "suspended", True, False))
        self.assertEqual(st["peer_pid"], self.cli_suspend[3])
        self.assertEqual(self.cli_again[:2], (0, "upstream alpha was already suspended\n"))
        rc, out, err, _ = self.cli_resume
        self.assertEqual((rc, out, err), (0, "upstream alpha resumed\n", ""))

    def test_readiness_stays_ready_and_names_the_suspension(self):
        self.assertEqual(self.readyz,
                         (200, '{"ready":true,"suspended_upstreams":["alpha"]}\n'))
        self.assertEqual(self.readyz_after, (200, '{"ready":true}\n'))

    def test_metrics_show_the_suspension_and_the_refusals(self):
        self.assertIn("transgate_forwarding_suspended 0", self.metrics)
        self.assertIn('transgate_upstream_suspended{upstream="alpha"} 1', self.metrics)
        self.assertIn('transgate_upstream_suspended{upstream="beta"} 0', self.metrics)
        self.assertIn("transgate_requests_refused_suspended_total 2", self.metrics)

    def test_audit_events_name_who_and_refused_records_say_why(self):
        self.assertEqual(self.rc, 0)
        ev = [r for r in self.recs if r.get("event") in ("upstream_suspended",
                                                          "upstream_resumed")]
        self.assertEqual([(e["event"], e["upstream"], e["all"], e["via"], e["changed"],
                           e["state"]) for e in ev],
                         [("upstream_suspended", "alpha", False, "admin", True, "suspended"),
                          ("upstream_suspended", "alpha", False, "admin", False, "suspended"),
                          ("upstream_resumed", "alpha", False, "admin", True, "active")])
        self.assertEqual([(e["peer_uid"], e["peer_gid"], e["peer_pid"]) for e in ev],
                         [(os.getuid(), os.getgid(), self.cli_suspend[3]),
                          (os.getuid(), os.getgid(), self.cli_again[3]),
                          (os.getuid(), os.getgid(), self.cli_resume[3])])
        by_id = {r["request_id"]: r for r in self.recs if "event" not in r}
        rec = by_id[self.refused[1]["x-request-id"]]
        self.assertEqual((rec["decision"], rec["reason"], rec["status"], rec["upstream"],
                          rec["vendor_addr"], rec["vendor_status"]),
                         ("refused", "upstream_suspended", 503, "alpha", None, None))
        self.assertEqual(len(rec["text_macs"]), 1)
        rec = by_id[self.refused_lang[1]["x-request-id"]]
        self.assertEqual((rec["decision"], rec["reason"], rec["endpoint"]),
                         ("refused", "upstream_suspended", "/v2/languages"))
        # Order in the trail: suspend event, then the refusals, then resume.
        seqs = {r.get("event", r.get("request_id")): r["seq"] for r in self.recs}
        self.assertLess(ev[0]["seq"], seqs[self.refused[1]["x-request-id"]])
        self.assertLess(seqs[self.refused[1]["x-request-id"]], ev[2]["seq"])
        self.assertEqual(verify(self.gw)[0], 0, verify(self.gw)[1])


class SuspendAllTest(unittest.TestCase):
    def test_suspending_all_forwarding_refuses_every_upstream_and_resume_all_keeps_single_suspensions(self):
        gw = started(self)
        a0, b0 = len(ALPHA.requests()), len(BETA.requests())
        rc, out, err, pid = admin(gw, "suspend", "--all")
        self.assertEqual((rc, out), (0, "all forwarding suspended\n"), err)
        for client in ("office-a", "office-b"):
            st, _, body = translate(gw, client)
            self.assertEqual((st, body["code"]), (503, "upstream_suspended"))
        self.assertEqual((len(ALPHA.requests()), len(BETA.requests())), (a0, b0))
        self.assertTrue(metric(gw, "transgate_forwarding_suspended 1"))
        self.assertEqual(harness.admin_get(gw.admin, "/readyz"),
                         (200, '{"ready":true,"forwarding":"suspended"}\n'))
        st, body = harness.admin_get(gw.admin, "/forwarding")
        fw = json.loads(body)
        self.assertEqual((st, fw["state"], fw["peer_pid"]), (200, "suspended", pid))
        # alpha on its own as well; lifting --all leaves it suspended.
        self.assertEqual(admin(gw, "suspend", "alpha")[0], 0)
        rc, out, err, _ = admin(gw, "resume", "--all")
        self.assertEqual((rc, out), (0, "all forwarding resumed\n"), err)
        self.assertEqual(translate(gw, "office-a")[0], 503)
        self.assertEqual(translate(gw, "office-b")[0], 200)
        self.assertEqual((len(ALPHA.requests()), len(BETA.requests())), (a0, b0 + 1))
        self.assertEqual(admin(gw, "resume", "alpha")[0], 0)
        self.assertEqual(translate(gw, "office-a")[0], 200)
        self.assertEqual(gw.stop(), 0)
        ev = [r for r in gw.audit_records() if r.get("event", "").startswith("upstream_")]
        self.assertEqual([(e["event"], e["upstream"], e["all"]) for e in ev],
                         [("upstream_suspended", None, True),
                          ("upstream_suspended", "alpha", False),
                          ("upstream_resumed", None, True),
                          ("upstream_resumed", "alpha", False)])
        self.assertEqual(ev[0]["peer_pid"], pid)
        self.assertEqual(verify(gw)[0], 0)


class InFlightTest(unittest.TestCase):
    def test_a_request_already_sent_finishes_and_the_next_is_refused(self):
        gw = started(self)
        a0 = len(ALPHA.requests())
        result = {}

        def slow():
            result["r"] = translate(gw, "office-a", "@@delay=1500@@%20slow")

        t = threading.Thread(target=slow)
        t.start()
        deadline = time.monotonic() + 10
        while len(ALPHA.requests()) == a0 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(len(ALPHA.requests()), a0 + 1)   # at the vendor now
        self.assertEqual(admin(gw, "suspend", "alpha")[0], 0)
        self.assertTrue(t.is_alive())                      # still waiting on it
        self.assertEqual(translate(gw, "office-a")[0], 503)
        t.join(10)
        self.assertEqual(result["r"][0], 200)
        self.assertEqual(result["r"][2]["translations"][0]["text"],
                         "[DE] @@DELAY=1500@@ SLOW")
        self.assertEqual(len(ALPHA.requests()), a0 + 1)
        self.assertEqual(gw.stop(), 0)
        recs = [r for r in gw.audit_records() if "event" not in r]
        self.assertEqual([(r["decision"], r["reason"]) for r in recs],
                         [("refused", "upstream_suspended"), ("forwarded", "ok")])


class ReloadAndConfigurationTest(unittest.TestCase):
    def test_run_time_suspension_survives_sighup_and_a_removed_upstream_drops_out(self):
        gw = started(self)
        self.assertEqual(admin(gw, "suspend", "alpha")[0], 0)
        gw.config["limits"] = {"max_body_bytes": 65536}   # any change
        reload(gw)
        self.assertEqual(translate(gw, "office-a")[0], 503)
        self.assertIn("upstream alpha: suspended", admin(gw, "status")[1])
        # Remove alpha (office-a moves to beta): its suspension ends.
        alpha = gw.config["upstreams"].pop(0)
        gw.config["clients"][0]["upstream"] = "beta"
        reload(gw)
        self.assertEqual(translate(gw, "office-a")[0], 200)
        rc, out, err, _ = admin(gw, "status")
        self.assertNotIn("alpha", out)
        rc, _, err, _ = admin(gw, "resume", "alpha")
        self.assertEqual(rc, 1)
        self.assertIn("No upstream named alpha in the running configuration", err)
        # Back again: it starts active.
        gw.config["upstreams"].insert(0, alpha)
        gw.config["clients"][0]["upstream"] = "alpha"
        reload(gw)
        a0 = len(ALPHA.requests())
        self.assertEqual(translate(gw, "office-a")[0], 200)
        self.assertEqual(len(ALPHA.requests()), a0 + 1)
        self.assertEqual(gw.stop(), 0)
        ev = [r for r in gw.audit_records()
              if r.get("event", "").startswith("upstream_") or r.get("event") == "reload"]
        self.assertEqual([(e["event"], e.get("upstream"), e.get("via"), e.get("removed"))
                          for e in ev],
                         [("upstream_suspended", "alpha", "admin", None),
                          ("reload", None, None, None),
                          ("reload", None, None, None),
                          ("upstream_resumed", "alpha", "configuration", True),
                          ("reload", None, None, None)])
        self.assertEqual(verify(gw)[0], 0)

    def test_configuration_key_suspends_from_start_and_only_a_reload_lifts_it(self):
        gw = started(self, alpha_extra={"suspended": True})
        a0 = len(ALPHA.requests())
        self.assertEqual(translate(gw, "office-a")[0], 503)
        rc, out, err, _ = admin(gw, "status", "alpha")
        self.assertRegex(out, r"^upstream alpha: suspended \(by the configuration, since ")
        rc, out, err, _ = admin(gw, "resume", "alpha")
        self.assertEqual(rc, 1)
        self.assertIn("the configuration suspends this upstream", err)
        self.assertEqual(translate(gw, "office-a")[0], 503)
        del gw.config["upstreams"][0]["suspended"]
        reload(gw)
        self.assertEqual(translate(gw, "office-a")[0], 200)
        self.assertEqual(len(ALPHA.requests()), a0 + 1)
        self.assertEqual(gw.stop(), 0)
        ev = [r for r in gw.audit_records() if r.get("event", "").startswith("upstream_")]
        self.assertEqual([(e["event"], e["via"], e.get("state")) for e in ev],
                         [("upstream_suspended", "configuration", None),
                          ("upstream_resumed", "admin", "suspended"),
                          ("upstream_resumed", "configuration", None)])
        self.assertFalse(ev[1]["changed"])
        self.assertIn("upstream alpha: suspended by the configuration", gw.diagnostics())

    def test_a_restart_clears_run_time_suspension(self):
        gw = started(self)
        self.assertEqual(admin(gw, "suspend", "alpha")[0], 0)
        self.assertEqual(gw.stop(), 0)
        gw.start()
        self.assertEqual(translate(gw, "office-a")[0], 200)
        self.assertEqual(gw.stop(), 0)


class CliErrorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = harness.Workdir()
        cls.gw = gateway(cls.w.path).start()

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.w.cleanup()

    def run_cli(self, *args):
        p = subprocess.run([harness.TRANSGATE, "admin", *args], capture_output=True,
                           text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    def test_unknown_upstream_is_refused_with_status_1(self):
        rc, out, err, _ = admin(self.gw, "suspend", "nosuch")
        self.assertEqual((rc, out), (1, ""))
        self.assertEqual(err, "transgate admin: upstream nosuch: No upstream named nosuch "
                              "in the running configuration\n")

    def test_missing_socket_says_so_with_status_1(self):
        missing = os.path.join(self.w.path, "nothere.sock")
        rc, out, err = self.run_cli("suspend", "alpha", "--socket", missing)
        self.assertEqual(rc, 1)
        self.assertIn("cannot connect to the admin socket %s: No such file or directory "
                      "(is the gateway running" % missing, err)

    def test_usage_errors_have_status_2_and_help_status_0(self):
        for args in ([], ["suspend"], ["suspend", "alpha", "--all"], ["resume"],
                     ["frobnicate", "alpha"], ["suspend", "al/pha"], ["status", "--all"],
                     ["suspend", "alpha", "-c", "x", "--socket", "y"]):
            rc, out, err = self.run_cli(*args)
            self.assertEqual(rc, 2, args)
            self.assertEqual(out, "", args)
        rc, out, err = self.run_cli("--help")
        self.assertEqual((rc, err), (0, ""))
        self.assertIn("usage: transgate admin suspend|resume UPSTREAM|--all", out)
        self.assertIn("Exit status: 0 done", out)
        p = subprocess.run([harness.TRANSGATE, "--help"], capture_output=True, text=True)
        self.assertIn("admin suspend|resume|status", p.stdout)

    def test_configuration_without_admin_socket_is_a_usage_error(self):
        path = os.path.join(self.w.path, "noadmin.json")
        cfg = dict(self.gw.config)
        del cfg["admin"]
        with open(path, "w") as f:
            json.dump(cfg, f)
        rc, out, err = self.run_cli("status", "-c", path)
        self.assertEqual(rc, 2)
        self.assertIn('no "admin": {"socket": PATH}', err)

    def test_admin_plane_rejects_wrong_methods_and_bad_names(self):
        self.assertEqual(harness.admin_get(self.gw.admin, "/upstreams/alpha/suspend")[0], 405)
        self.assertEqual(harness.admin_get(self.gw.admin, "/upstreams/a%20b")[0], 400)
        self.assertEqual(harness.admin_get(self.gw.admin, "/upstreams/alpha/frob")[0], 404)
        st, body = harness.admin_get(self.gw.admin, "/upstreams")
        self.assertEqual(st, 200)
        self.assertEqual([u["name"] for u in json.loads(body)["upstreams"]], ["alpha", "beta"])
        self.assertEqual(translate(self.gw, "office-a")[0], 200)   # nothing changed


class UnrecordedTest(unittest.TestCase):
    """The trail on a small tmpfs that is then filled: a suspension still
    takes effect (and says it is not yet recorded); a resume the trail
    cannot record is refused; once space is back every event is written
    and the chain verifies."""

    @contextlib.contextmanager
    def full_disk(self, on_failure, **audit):
        w = harness.Workdir()
        disk = os.path.join(w.path, "disk")
        os.mkdir(disk)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs",
                           disk], capture_output=True).returncode != 0:
            w.cleanup()
            self.skipTest("cannot mount a tmpfs here")
        filler = os.path.join(disk, "filler")
        gw = None
        try:
            audit.update({"path": os.path.join(disk, "audit.jsonl"), "on_failure": on_failure})
            gw = gateway(w.path, audit=audit).start()
            self.assertEqual(translate(gw, "office-a")[0], 200)
            harness.fill_disk(filler)
            # Records still fit in the file's last page for a while.
            deadline = time.monotonic() + 10
            while harness.admin_get(gw.admin, "/readyz")[0] == 200:
                self.assertLess(time.monotonic(), deadline)
                translate(gw, "office-b")
                time.sleep(0.05)
            yield gw
            os.unlink(filler)
            deadline = time.monotonic() + 10
            while harness.admin_get(gw.admin, "/readyz")[0] != 200:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.1)
            self.assertEqual(gw.stop(), 0)
            self.assertEqual(verify(gw)[0], 0, verify(gw)[1])
            self.recs = gw.audit_records()
        finally:
            if gw is not None:
                gw.stop()
            subprocess.run(["umount", disk], capture_output=True)
            w.cleanup()

    def test_a_suspension_the_trail_cannot_write_takes_effect_and_says_so(self):
        a0 = None
        with self.full_disk("continue") as gw:
            a0 = len(ALPHA.requests())
            rc, out, err, pid = admin(gw, "suspend", "alpha")
            self.assertEqual((rc, out), (3, "upstream alpha suspended\n"))
            self.assertIn("the audit trail has not written this yet", err)
            st, _, body = translate(gw, "office-a")
            self.assertEqual((st, body["code"]), (503, "upstream_suspended"))
            self.assertEqual(len(ALPHA.requests()), a0)
        ev = [r for r in self.recs if r.get("event") == "upstream_suspended"]
        self.assertEqual([(e["upstream"], e["peer_pid"]) for e in ev], [("alpha", pid)])

    def test_a_resume_the_trail_cannot_record_is_refused_and_changes_nothing(self):
        with self.full_disk("refuse") as gw:
            rc, out, err, _ = admin(gw, "suspend", "alpha")
            self.assertEqual(rc, 3, err)
            rc, out, err, _ = admin(gw, "resume", "alpha")
            self.assertEqual((rc, out), (1, ""))
            self.assertIn("cannot record a resume at the moment; nothing was changed", err)
            self.assertIn("upstream alpha: suspended", admin(gw, "status")[1])
        ev = [r["event"] for r in self.recs if r.get("event", "").startswith("upstream_")]
        self.assertEqual(ev, ["upstream_suspended"])

    def test_a_suspension_with_no_room_left_in_the_trail_takes_effect_and_is_counted_lost(self):
        with self.full_disk("continue", queue_size=16) as gw:
            # Fill the queue and everything behind it (the writer's batch
            # and its buffer of chained records, about 2,000 records in
            # all): refused for longer than the writer's longest retry
            # interval (2 s) means no room will come back.
            conn, full_since = gw.connection(), None
            deadline = time.monotonic() + 120
            while full_since is None or time.monotonic() - full_since < 2.5:
                self.assertLess(time.monotonic(), deadline)
                try:
                    st, _, body = gw.request("POST", "/v2/translate", "text=x&target_lang=DE",
                                             FORM, client="office-b", conn=conn)
                except ConnectionError:     # a refusal closes the connection
                    conn.close()
                    conn = gw.connection()
                    continue
                if st != 503:
                    full_since = None
                elif full_since is None:
                    full_since = time.monotonic()
            conn.close()
            self.assertEqual(json.loads(body)["code"], "audit_unavailable")
            rc, out, err, _ = admin(gw, "suspend", "alpha")
            self.assertEqual((rc, out), (3, "upstream alpha suspended\n"))
            self.assertIn("NOT recorded in the audit trail", err)
            self.assertIn("upstream alpha: suspended", admin(gw, "status")[1])
        self.assertFalse([r for r in self.recs if r.get("event") == "upstream_suspended"])
        self.assertGreaterEqual(sum(r["count"] for r in self.recs
                                    if r.get("event") == "records_lost"), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
