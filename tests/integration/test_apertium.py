"""A real translation: terminal -> transgate -> Apertium APY (English to
Spanish), TLS on both legs, all on loopback."""

import json
import os
import shutil
import ssl
import subprocess
import sys
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

W = CERTS = APY = GW = None


def setUpModule():
    global W, CERTS, APY, GW
    if shutil.which("apertium-apy") is None:
        raise unittest.SkipTest("apertium-apy is not installed")
    W = harness.Workdir()
    CERTS = harness.Certs(W.path)
    APY = harness.Apertium(W.path, CERTS)
    GW = harness.Gateway(W.path, CERTS, upstreams=[
        {"name": "apertium", "adapter": "apertium",
         "url": "https://localhost:%d" % APY.port, "ca_file": CERTS.ca,
         "default_source_lang": "EN", "clearance": 2}],
        clients=[{"name": "terminal-1", "upstream": "apertium"}]).start()


def tearDownModule():
    try:
        if GW is not None:
            assert GW.stop() == 0
    finally:
        if APY is not None:
            APY.stop()
        if W is not None:
            W.cleanup()


def apy_direct(text):
    ctx = ssl.create_default_context(cafile=CERTS.ca)
    data = urllib.parse.urlencode({"q": text, "langpair": "eng|spa",
                                   "markUnknown": "no"}).encode()
    with urllib.request.urlopen("https://localhost:%d/translate" % APY.port, data,
                                context=ctx, timeout=30) as r:
        return json.loads(r.read())["responseData"]["translatedText"]


class ApertiumTest(unittest.TestCase):
    def test_english_to_spanish_through_the_gateway_matches_the_engine(self):
        texts = ["Hello world.", "The meeting is tomorrow morning."]
        body = urllib.parse.urlencode([("text", t) for t in texts] +
                                      [("source_lang", "EN"), ("target_lang", "ES")])
        st, hdrs, data = GW.request("POST", "/v2/translate", body,
                                    {"Content-Type": "application/x-www-form-urlencoded"},
                                    client="terminal-1")
        self.assertEqual(st, 200, data)
        got = json.loads(data)["translations"]
        self.assertEqual([t["text"] for t in got], [apy_direct(t) for t in texts])
        self.assertEqual(got[0]["text"], "Hola Mundo.")
        self.assertEqual([t["detected_source_language"] for t in got], ["EN", "EN"])

    def test_json_request_without_source_uses_the_configured_default(self):
        st, _, data = GW.request("POST", "/v2/translate",
                                 json.dumps({"text": ["Good morning"], "target_lang": "ES"}),
                                 {"Content-Type": "application/json"}, client="terminal-1")
        self.assertEqual(st, 200, data)
        self.assertEqual(json.loads(data)["translations"][0]["text"], apy_direct("Good morning"))

    def test_unsupported_pair_is_a_clear_error(self):
        st, _, data = GW.request("POST", "/v2/translate",
                                 json.dumps({"text": ["x"], "target_lang": "ZH"}),
                                 {"Content-Type": "application/json"}, client="terminal-1")
        self.assertEqual(st, 400, data)
        self.assertEqual(json.loads(data)["code"], "unsupported_language")

    def test_languages_come_from_the_engine(self):
        st, _, data = GW.request("GET", "/v2/languages?type=target", client="terminal-1")
        self.assertEqual(st, 200, data)
        self.assertIn("ES", [x["language"] for x in json.loads(data)])

    def test_personal_data_survives_real_translation_through_placeholders(self):
        text = "Please write to taro.yamada@example.jp or call 03-1234-5678 tomorrow."
        st, _, data = GW.request("POST", "/v2/translate",
                                 json.dumps({"text": [text], "source_lang": "EN",
                                             "target_lang": "ES"}),
                                 {"Content-Type": "application/json"}, client="terminal-1")
        self.assertEqual(st, 200, data)
        out = json.loads(data)["translations"][0]["text"]
        self.assertIn("taro.yamada@example.jp", out)
        self.assertIn("03-1234-5678", out)
        self.assertIn("mañana", out)   # really translated, not echoed
        self.assertNotIn("\u27e6", out)
        self.assertNotIn("⟦", out)

    def test_the_token_placeholder_passes_through_the_engine_unchanged(self):
        out = apy_direct("Please write to ⟦1⟧ or call ⟦12⟧ tomorrow.")
        self.assertIn("⟦1⟧", out)
        self.assertIn("⟦12⟧", out)

    def test_deepl_node_client_library_gets_real_translations(self):
        node_dir = os.path.join(harness.SOURCE_DIR, "tests", "integration", "deepl_client")
        if not os.path.isdir(os.path.join(node_dir, "node_modules", "deepl-node")):
            self.skipTest("deepl-node is not installed (tests/integration/deepl_client)")
        env = dict(os.environ, NODE_EXTRA_CA_CERTS=CERTS.ca,
                   TG_URL="https://localhost:%d" % GW.port,
                   TG_KEY=GW.keys["terminal-1"])
        p = subprocess.run(["node", os.path.join(node_dir, "translate.js"), "Hello world."],
                           capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), apy_direct("Hello world."))


if __name__ == "__main__":
    unittest.main(verbosity=2)
