"""The policy engine in the real gateway: every document of the labelled
corpus goes through transgate to the recording stub vendor.  Asserts what
left the building (no labelled value, nor its digits-only form) and what
came back (every value restored exactly), and that marked 機密性3 documents
never reach the vendor."""

import json
import os
import sys
import unicodedata
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

CORPUS = os.path.join(harness.SOURCE_DIR, "tests", "data", "policy", "corpus.jsonl")
W = CERTS = STUB = GW = None


def setUpModule():
    global W, CERTS, STUB, GW
    W = harness.Workdir()
    CERTS = harness.Certs(W.path)
    STUB = harness.StubVendor(W.path, CERTS)
    key_file = os.path.join(W.path, "vendor.apikey")
    with open(key_file, "w") as f:
        f.write("policy-test-vendor-key\n")
    os.chmod(key_file, 0o600)
    url = "https://localhost:%d" % STUB.port
    GW = harness.Gateway(W.path, CERTS, upstreams=[
        {"name": "contracted", "adapter": "deepl", "url": url, "api_key_file": key_file,
         "ca_file": CERTS.ca, "clearance": 2},
        {"name": "standard-terms", "adapter": "deepl", "url": url,
         "api_key_file": key_file, "ca_file": CERTS.ca},
    ], clients=[
        {"name": "office", "upstream": "contracted"},
        {"name": "office-std", "upstream": "standard-terms"},
        {"name": "public", "upstream": "standard-terms", "default_level": 1,
         "clearance": 1},
    ], log_level="info").start()


def tearDownModule():
    try:
        if GW is not None:
            assert GW.stop() == 0
    finally:
        if STUB is not None:
            STUB.stop()
        if W is not None:
            W.cleanup()


def corpus():
    with open(CORPUS, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def values(doc):
    raw = doc["text"].encode("utf-8")
    return [(e["type"], raw[e["start"]:e["end"]].decode("utf-8")) for e in doc["entities"]]


def digits_only(v):
    return "".join(ch for ch in unicodedata.normalize("NFKC", v) if ch.isdigit())


JSON = {"Content-Type": "application/json"}


class CorpusThroughGatewayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = corpus()
        cls.results = []
        conn = GW.connection()
        try:
            for doc in cls.docs:
                mark = len(STUB.requests())
                st, _, body = GW.request("POST", "/v2/translate",
                                         json.dumps({"text": [doc["text"]], "target_lang": "EN",
                                                     "context": "re: " + doc["text"][:40]}),
                                         JSON, client="office", conn=conn)
                sent = STUB.requests()[mark:]
                cls.results.append((doc, st, json.loads(body), sent))
        finally:
            conn.close()

    def test_corpus_is_large_enough(self):
        self.assertGreaterEqual(len(self.docs), 300)

    def test_marked_kimitsusei_3_documents_are_refused_and_never_sent(self):
        refused = [(d, st, b, s) for d, st, b, s in self.results if d["level"] == 3]
        self.assertGreater(len(refused), 0)
        for doc, st, body, sent in refused:
            self.assertEqual(st, 403, doc["id"])
            self.assertEqual(body["code"], "policy_refused")
            self.assertIsInstance(body["rule"], str)
            self.assertEqual(sent, [], doc["id"])

    def test_other_documents_are_translated_and_restored_exactly(self):
        for doc, st, body, sent in self.results:
            if doc["level"] == 3:
                continue
            self.assertEqual(st, 200, "%s: %s" % (doc["id"], body))
            self.assertEqual(len(sent), 1, doc["id"])
            text = body["translations"][0]["text"]
            self.assertTrue(text.startswith("[EN] "), doc["id"])
            for typ, v in values(doc):
                self.assertIn(v, text, "%s: %s not restored" % (doc["id"], typ))

    def test_no_labelled_value_reaches_the_vendor(self):
        leaks = {}
        total = {}
        for doc, st, body, sent in self.results:
            if doc["level"] == 3:
                continue
            out = "".join(r["body"] for r in sent)
            out_json = json.loads(sent[0]["body"])
            vendor_text = out_json["text"][0] + "\n" + out_json.get("context", "")
            for typ, v in values(doc):
                total[typ] = total.get(typ, 0) + 1
                d = digits_only(v)
                leaked = v in vendor_text or (len(d) >= 7 and d in digits_only(vendor_text))
                if leaked:
                    leaks.setdefault(typ, []).append(doc["id"])
            self.assertNotIn("policy-test-vendor-key", out.replace(
                sent[0]["headers"].get("authorization", ""), ""))
        print("\nvalues reaching the vendor, by type (of %d documents):" % len(self.results))
        for typ in sorted(total):
            print("  %-18s %3d of %4d" % (typ, len(leaks.get(typ, [])), total[typ]))
        # Every labelled value of every type is masked: no known misses.
        self.assertEqual(leaks, {}, "values reached the vendor: %s" % leaks)

    def test_placeholders_are_xml_tags_the_vendor_is_told_to_ignore(self):
        for doc, st, body, sent in self.results:
            if doc["level"] == 3 or not doc["entities"]:
                continue
            out = json.loads(sent[0]["body"])
            self.assertEqual(out["tag_handling"], "xml")
            self.assertIn("tgph", out["ignore_tags"])
            self.assertIn("<tgph", out["text"][0])
            return
        self.fail("no document with entities")


class ClearanceTest(unittest.TestCase):
    def post(self, client, text):
        mark = len(STUB.requests())
        st, _, body = GW.request("POST", "/v2/translate",
                                 json.dumps({"text": [text], "target_lang": "EN"}), JSON,
                                 client=client)
        return st, json.loads(body), STUB.requests()[mark:]

    def test_unlabelled_text_is_refused_by_a_standard_terms_service(self):
        # Unlabelled text takes the client's default level (2), above the
        # standard-terms service's clearance (1).
        st, body, sent = self.post("office-std", "今日は晴れです。")
        self.assertEqual(st, 403)
        self.assertEqual(body["code"], "policy_refused")
        self.assertEqual(body["rule"], "client-default-level")
        self.assertEqual(sent, [])

    def test_level_1_client_may_use_a_standard_terms_service(self):
        st, body, sent = self.post("public", "今日は晴れです。")
        self.assertEqual(st, 200, body)
        self.assertEqual(len(sent), 1)

    def test_marked_level_2_is_refused_for_a_standard_terms_service(self):
        st, body, sent = self.post("public", "【機密性２情報】 今日は晴れです。")
        self.assertEqual(st, 403)
        self.assertEqual(body["code"], "policy_refused")
        self.assertEqual(sent, [])

    def test_every_form_of_the_kimitsusei_3_marking_is_refused(self):
        for marking in ("機密性3", "機密性３", "機3", "【機密性３情報】", "［機密性３］",
                        "機密性 ３", "【 機密性3 】"):
            st, body, sent = self.post("office", marking + " 会議資料")
            self.assertEqual(st, 403, marking)
            self.assertEqual(body["code"], "policy_refused", marking)
            self.assertEqual(sent, [], marking)

    def test_text_without_personal_data_is_sent_unchanged(self):
        st, body, sent = self.post("office", "Fish & chips <b>now</b>")
        self.assertEqual(st, 200, body)
        out = json.loads(sent[0]["body"])
        self.assertEqual(out["text"], ["Fish & chips <b>now</b>"])
        self.assertNotIn("tag_handling", out)
        self.assertEqual(body["translations"][0]["text"], "[EN] FISH & CHIPS <b>NOW</b>")

    def test_escaping_round_trips_around_a_placeholder(self):
        st, body, sent = self.post("office", "Mail a&b <x> to taro@example.jp now")
        self.assertEqual(st, 200, body)
        out = json.loads(sent[0]["body"])["text"][0]
        self.assertNotIn("taro@example.jp", out)
        self.assertIn("&amp;", out)
        self.assertEqual(body["translations"][0]["text"],
                         "[EN] MAIL A&B <X> TO taro@example.jp NOW")

    def test_a_lost_placeholder_fails_closed(self):
        st, body, sent = self.post("office", "@@droptags@@ write to taro@example.jp")
        self.assertEqual(st, 502)
        self.assertEqual(body["code"], "placeholder_lost")
        self.assertEqual(len(sent), 1)
        self.assertNotIn("taro@example.jp", json.dumps(body))

    def test_a_duplicated_placeholder_fails_closed(self):
        st, body, sent = self.post("office", "@@duptags@@ write to taro@example.jp")
        self.assertEqual(st, 502)
        self.assertEqual(body["code"], "placeholder_lost")

    def test_same_value_in_text_and_context_gets_one_placeholder(self):
        mark = len(STUB.requests())
        st, _, body = GW.request("POST", "/v2/translate", json.dumps(
            {"text": ["Ask hanako@example.jp", "or hanako@example.jp"],
             "context": "hanako@example.jp wrote", "target_lang": "EN"}), JSON,
            client="office")
        self.assertEqual(st, 200, body)
        out = json.loads(STUB.requests()[mark]["body"])
        tags = set()
        for field in out["text"] + [out["context"]]:
            self.assertNotIn("hanako@example.jp", field)
            start = field.index("<tgph")
            tags.add(field[start:field.index(">", start) + 1])
        self.assertEqual(len(tags), 1)
        got = json.loads(body)["translations"]
        self.assertEqual([t["text"] for t in got],
                         ["[EN] ASK hanako@example.jp", "[EN] OR hanako@example.jp"])

    def test_diagnostics_hold_no_corpus_value(self):
        diag = GW.diagnostics()
        for doc in corpus()[:120]:
            for typ, v in values(doc):
                self.assertNotIn(v, diag, typ)


if __name__ == "__main__":
    unittest.main(verbosity=2)
