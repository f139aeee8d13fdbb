/*
 * Unit tests of the policy engine: rule-pack loading and its diagnostics,
 * detectors (data-driven cases in tests/data/policy/detectors/), check
 * digits, overlap resolution, masking and restoration round trips,
 * placeholder failure modes, classification and decision, threading and
 * linear-time scanning.
 */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "pol.h"
#include "pol_internal.h"

static pol_engine *deflt;   /* default pack, shared by the tests */

static char *tpath(const char *env, const char *def, const char *rel)
{
    const char *base = getenv(env);
    size_t n;
    char *p;

    if (base == NULL)
        base = def;
    n = strlen(base) + strlen(rel) + 2;
    p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", base, rel);
    return p;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

/* Load one in-memory pack; errors go to *errs_out (caller frees). */
static pol_engine *load_str(const char *json, char **errs_out)
{
    const char *names[1] = {"pack.json"};
    const char *data[1] = {json};
    size_t lens[1] = {strlen(json)};
    char *buf = NULL;
    size_t blen = 0;
    FILE *m = open_memstream(&buf, &blen);
    pol_engine *e;

    assert_non_null(m);
    e = pol_engine_load_mem(names, data, lens, 1, m);
    fclose(m);
    if (errs_out != NULL)
        *errs_out = buf;
    else
        free(buf);
    return e;
}

static int setup(void **state)
{
    char *rules = tpath("TG_SOURCE_DIR", ".", "policy/rules/default.json");
    const char *files[1] = {rules};

    (void)state;
    deflt = pol_engine_load(files, 1, stderr);
    free(rules);
    return deflt == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    pol_engine_free(deflt);
    return 0;
}

/* ------------------------------------------------------------------ */

static void test_sha256_matches_fips_vectors(void **state)
{
    static const char *in[3] = {"", "abc",
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"};
    static const char *want[3] = {
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"};
    size_t i, k;

    (void)state;
    for (i = 0; i < 3; i++) {
        pol_sha256 c;
        unsigned char d[32];
        char hex[65];
        pol_sha256_init(&c);
        /* feed byte by byte to cross block boundaries */
        for (k = 0; in[i][k] != '\0'; k++)
            pol_sha256_update(&c, in[i] + k, 1);
        pol_sha256_final(&c, d);
        for (k = 0; k < 32; k++)
            snprintf(hex + 2 * k, 3, "%02x", d[k]);
        assert_string_equal(hex, want[i]);
    }
}

static void test_digest_covers_every_pack_in_order(void **state)
{
    const char *a = "{\"format\": 1}", *b = "{\"format\": 1, \"name\": \"b\"}";
    const char *names[2] = {"a", "b"}, *d1[2] = {a, b}, *d2[2] = {b, a};
    size_t l1[2] = {strlen(a), strlen(b)}, l2[2] = {strlen(b), strlen(a)};
    pol_engine *e1 = pol_engine_load_mem(names, d1, l1, 2, NULL);
    pol_engine *e2 = pol_engine_load_mem(names, d2, l2, 2, NULL);
    pol_engine *e3 = pol_engine_load_mem(names, d1, l1, 2, NULL);

    (void)state;
    assert_non_null(e1);
    assert_non_null(e2);
    assert_non_null(e3);
    assert_int_equal(strlen(pol_engine_digest(e1)), 64);
    assert_string_not_equal(pol_engine_digest(e1), pol_engine_digest(e2));
    assert_string_equal(pol_engine_digest(e1), pol_engine_digest(e3));
    pol_engine_free(e1);
    pol_engine_free(e2);
    pol_engine_free(e3);
}

/* Vectors computed by tests/data/policy/gen_corpus.py, an independent
 * implementation of the statutory formulas. */
static void test_check_digits_match_independent_vectors(void **state)
{
    static const char *my_ok[] = {"526018159084", "390996030825", "518190937860", "875749118624"};
    static const char *my_bad[] = {"301661318602", "462819482193", "579754323195", "527601895558"};
    static const char *co_ok[] = {"1971147104974", "5366712768426", "2792440268599"};
    static const char *co_bad[] = {"5650752917034", "0846563212233", "0528907866661"};
    static const char *card_ok[] = {"3531313721590106", "3535177774121549", "4485253888539336",
                                    "378282246310005"};
    static const char *card_bad[] = {"5515901396245950", "3581280385280840", "3575338750047430"};
    size_t i;

    (void)state;
    for (i = 0; i < 4; i++) {
        assert_int_equal(pol_validate(POL_V_MYNUMBER, my_ok[i], 12), 1);
        assert_int_equal(pol_validate(POL_V_MYNUMBER, my_bad[i], 12), 0);
    }
    for (i = 0; i < 3; i++) {
        assert_int_equal(pol_validate(POL_V_CORPORATE, co_ok[i], 13), 1);
        assert_int_equal(pol_validate(POL_V_CORPORATE, co_bad[i], 13), 0);
        assert_int_equal(pol_validate(POL_V_LUHN, card_bad[i], 16), 0);
    }
    for (i = 0; i < 4; i++)
        assert_int_equal(pol_validate(POL_V_LUHN, card_ok[i], strlen(card_ok[i])), 1);
    /* full-width digits and separators are read as digits */
    assert_int_equal(pol_validate(POL_V_MYNUMBER, "５２６０‐１８１５‐９０８４",
                                  strlen("５２６０‐１８１５‐９０８４")), 1);
    /* wrong digit counts */
    assert_int_equal(pol_validate(POL_V_MYNUMBER, "52601815908", 11), 0);
    assert_int_equal(pol_validate(POL_V_CORPORATE, "197114710497", 12), 0);
}

static void test_utf8_validator_rejects_malformed_sequences(void **state)
{
    (void)state;
    assert_int_equal(pol_utf8_valid("abc\xe6\xa9\x9f", 6), 1);
    assert_int_equal(pol_utf8_valid("\xc0\xaf", 2), 0);          /* overlong */
    assert_int_equal(pol_utf8_valid("\xed\xa0\x80", 3), 0);      /* surrogate */
    assert_int_equal(pol_utf8_valid("\xf4\x90\x80\x80", 4), 0);  /* > U+10FFFF */
    assert_int_equal(pol_utf8_valid("\xe6\xa9", 2), 0);          /* truncated */
    assert_int_equal(pol_utf8_valid("\x80", 1), 0);
}

/* ------------------------------------------------------------------ */

/* Strip [[ ]] from a case text; the marked span's byte offsets. */
static char *unmark(const char *in, size_t *st, size_t *en)
{
    char *out = malloc(strlen(in) + 1);
    const char *p = in;
    size_t n = 0;

    assert_non_null(out);
    *st = *en = (size_t)-1;
    while (*p != '\0') {
        if (p[0] == '[' && p[1] == '[') {
            *st = n;
            p += 2;
        } else if (p[0] == ']' && p[1] == ']') {
            *en = n;
            p += 2;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    return out;
}

static void test_detectors_data_driven_cases(void **state)
{
    char *dir = tpath("TG_DATA_DIR", "tests/data", "policy/detectors");
    DIR *dp = opendir(dir);
    struct dirent *de;
    unsigned files = 0, failures = 0, ncases = 0;

    (void)state;
    assert_non_null(dp);
    while ((de = readdir(dp)) != NULL) {
        size_t nl = strlen(de->d_name), i, k;
        char rule[128], *path;
        json_t *root, *v;
        json_error_t jerr;
        if (nl < 6 || strcmp(de->d_name + nl - 5, ".json") != 0)
            continue;
        snprintf(rule, sizeof rule, "%.*s", (int)(nl - 5), de->d_name);
        path = malloc(strlen(dir) + nl + 2);
        assert_non_null(path);
        snprintf(path, strlen(dir) + nl + 2, "%s/%s", dir, de->d_name);
        root = json_load_file(path, 0, &jerr);
        assert_non_null(root);
        files++;
        json_array_foreach(json_object_get(root, "positive"), i, v) {
            size_t st, en, nd;
            char *text = unmark(json_string_value(v), &st, &en), *masked = NULL;
            pol_session *s = pol_session_new(deflt, POL_PH_TOKEN);
            const pol_detection *d;
            int hit = 0;
            assert_non_null(s);
            assert_int_equal(pol_session_process(s, text, strlen(text), &masked, NULL), POL_OK);
            d = pol_session_detections(s, &nd);
            for (k = 0; k < nd; k++)
                if (strcmp(d[k].rule_id, rule) == 0 && d[k].start == st && d[k].end == en)
                    hit = 1;
            if (!hit) {
                printf("  %s: positive case not detected exactly: %s\n", rule, json_string_value(v));
                for (k = 0; k < nd; k++)
                    printf("    got %s %zu-%zu (want %zu-%zu)\n", d[k].rule_id, d[k].start,
                           d[k].end, st, en);
                failures++;
            }
            ncases++;
            free(masked);
            free(text);
            pol_session_free(s);
        }
        json_array_foreach(json_object_get(root, "negative"), i, v) {
            size_t nd;
            const char *text = json_string_value(v);
            char *masked = NULL;
            pol_session *s = pol_session_new(deflt, POL_PH_TOKEN);
            const pol_detection *d;
            assert_non_null(s);
            assert_int_equal(pol_session_process(s, text, strlen(text), &masked, NULL), POL_OK);
            d = pol_session_detections(s, &nd);
            for (k = 0; k < nd; k++)
                if (strcmp(d[k].rule_id, rule) == 0) {
                    printf("  %s: negative case detected: %s (%zu-%zu)\n", rule, text,
                           d[k].start, d[k].end);
                    failures++;
                }
            ncases++;
            free(masked);
            pol_session_free(s);
        }
        json_decref(root);
        free(path);
    }
    closedir(dp);
    free(dir);
    printf("  %u detector case files, %u cases\n", files, ncases);
    assert_true(files >= 18);
    assert_int_equal(failures, 0);
}

/* Every detector in the default pack has a case file. */
static void test_every_default_detector_has_cases(void **state)
{
    char *rules = tpath("TG_SOURCE_DIR", ".", "policy/rules/default.json");
    json_error_t jerr;
    json_t *root = json_load_file(rules, 0, &jerr), *v;
    size_t i;

    (void)state;
    assert_non_null(root);
    json_array_foreach(json_object_get(root, "detectors"), i, v) {
        char rel[256], *p;
        FILE *f;
        snprintf(rel, sizeof rel, "policy/detectors/%s.json",
                 json_string_value(json_object_get(v, "id")));
        p = tpath("TG_DATA_DIR", "tests/data", rel);
        f = fopen(p, "r");
        if (f == NULL)
            printf("  missing %s\n", rel);
        assert_non_null(f);
        fclose(f);
        free(p);
    }
    json_decref(root);
    free(rules);
}

/* Each tests/data/policy/invalid/<case>/pack.json is refused with exactly
 * the diagnostics in expected.txt. */
static void test_invalid_packs_refused_with_positions(void **state)
{
    char *dir = tpath("TG_DATA_DIR", "tests/data", "policy/invalid");
    DIR *dp = opendir(dir);
    struct dirent *de;
    unsigned n = 0;

    (void)state;
    assert_non_null(dp);
    while ((de = readdir(dp)) != NULL) {
        char p1[1024], p2[1024], *pack, *want, *got = NULL;
        pol_engine *e;
        if (de->d_name[0] == '.')
            continue;
        snprintf(p1, sizeof p1, "%s/%s/pack.json", dir, de->d_name);
        snprintf(p2, sizeof p2, "%s/%s/expected.txt", dir, de->d_name);
        pack = slurp(p1, NULL);
        want = slurp(p2, NULL);
        assert_non_null(pack);
        e = load_str(pack, &got);
        assert_null(e);
        if (want == NULL || strcmp(want, got) != 0)
            printf("  case %s:\n--- want\n%s--- got\n%s", de->d_name, want ? want : "(none)\n", got);
        assert_non_null(want);
        assert_string_equal(got, want);
        free(pack);
        free(want);
        free(got);
        n++;
    }
    closedir(dp);
    free(dir);
    assert_true(n >= 10);
}

static void test_later_pack_overrides_and_disables_by_id(void **state)
{
    const char *a = "{\"format\": 1, \"macros\": {\"X\": \"alpha\"},"
                    " \"detectors\": ["
                    "  {\"id\": \"d1\", \"type\": \"t1\", \"pattern\": \"{{X}}\"},"
                    "  {\"id\": \"d2\", \"type\": \"t2\", \"pattern\": \"beta\"}],"
                    " \"markings\": [{\"id\": \"m\", \"level\": 3, \"pattern\": \"SECRET\"}]}";
    const char *b = "{\"format\": 1, \"macros\": {\"X\": \"gamma\"},"
                    " \"detectors\": ["
                    "  {\"id\": \"d2\", \"enabled\": false},"
                    "  {\"id\": \"d3\", \"type\": \"t3\", \"pattern\": \"delta\", \"action\": \"refuse\"}],"
                    " \"markings\": [{\"id\": \"m\", \"level\": 2, \"pattern\": \"SECRET\"}]}";
    const char *names[2] = {"a.json", "b.json"}, *data[2] = {a, b};
    size_t lens[2] = {strlen(a), strlen(b)}, nd;
    pol_engine *e = pol_engine_load_mem(names, data, lens, 2, stderr);
    pol_session *s;
    char *m = NULL;
    const char *rule = NULL;
    const char *text = "alpha beta gamma delta SECRET";
    const pol_detection *d;
    pol_decision dec;

    (void)state;
    assert_non_null(e);
    assert_int_equal(pol_engine_ndetectors(e), 2);
    s = pol_session_new(e, POL_PH_TOKEN);
    assert_non_null(s);
    assert_int_equal(pol_session_process(s, text, strlen(text), &m, NULL), POL_OK);
    /* the macro override applies to d1 from the earlier pack; d2 is gone */
    assert_string_equal(m, "alpha beta \xe2\x9f\xa6" "1\xe2\x9f\xa7 \xe2\x9f\xa6" "2\xe2\x9f\xa7 SECRET");
    d = pol_session_detections(s, &nd);
    assert_int_equal(nd, 2);
    assert_string_equal(d[0].rule_id, "d1");
    assert_string_equal(d[1].rule_id, "d3");
    assert_int_equal(d[1].action, POL_ACT_REFUSE);
    assert_int_equal(pol_session_level(s, &rule), 2);
    assert_string_equal(rule, "m");
    assert_string_equal(pol_session_refusing_rule(s), "d3");
    assert_int_equal(pol_decide(s, 1, 3, 3, &dec), POL_OK);
    assert_int_equal(dec.refuse, 1);
    assert_string_equal(dec.rule_id, "d3");
    free(m);
    pol_session_free(s);
    pol_engine_free(e);
}

/* ------------------------------------------------------------------ */

static const char *overlap_pack =
    "{\"format\": 1, \"detectors\": ["
    " {\"id\": \"short-hi\", \"type\": \"a\", \"pattern\": \"12345\", \"priority\": 100},"
    " {\"id\": \"long-lo\", \"type\": \"b\", \"pattern\": \"1234567\", \"priority\": 1},"
    " {\"id\": \"same-lo\", \"type\": \"c\", \"pattern\": \"ABCD\", \"priority\": 1},"
    " {\"id\": \"same-hi\", \"type\": \"d\", \"pattern\": \"ABCD\", \"priority\": 2},"
    " {\"id\": \"mask-long\", \"type\": \"e\", \"pattern\": \"xyz-secret-xyz\"},"
    " {\"id\": \"refuse-short\", \"type\": \"f\", \"pattern\": \"secret\", \"action\": \"refuse\"}"
    "]}";

static void test_overlaps_resolve_refuse_then_longer_then_priority(void **state)
{
    pol_engine *e = load_str(overlap_pack, NULL);
    pol_session *s;
    const char *text = "1234567 ABCD xyz-secret-xyz";
    char *m = NULL;
    const pol_detection *d;
    size_t nd;

    (void)state;
    assert_non_null(e);
    s = pol_session_new(e, POL_PH_TOKEN);
    assert_non_null(s);
    assert_int_equal(pol_session_process(s, text, strlen(text), &m, NULL), POL_OK);
    d = pol_session_detections(s, &nd);
    assert_int_equal(nd, 3);
    assert_string_equal(d[0].rule_id, "long-lo");      /* longer beats priority */
    assert_int_equal(d[0].start, 0);
    assert_int_equal(d[0].end, 7);
    assert_string_equal(d[1].rule_id, "same-hi");      /* same span: priority */
    assert_string_equal(d[2].rule_id, "refuse-short"); /* refuse beats longer */
    assert_int_equal(d[2].start, 17);
    assert_int_equal(d[2].end, 23);
    assert_string_equal(m, "\xe2\x9f\xa6" "1\xe2\x9f\xa7 \xe2\x9f\xa6" "2\xe2\x9f\xa7 xyz-"
                           "\xe2\x9f\xa6" "3\xe2\x9f\xa7-xyz");
    free(m);
    pol_session_free(s);
    pol_engine_free(e);
}

/* ------------------------------------------------------------------ */

static const char *rt_text =
    "申請者：山田太郎様（電話 03-1234-5678）。山田太郎様の連絡先は taro@example-corp.co.jp、"
    "個人番号 526018159084。a < b & c > d";

static void test_roundtrip_token_restores_exact_text(void **state)
{
    pol_session *s = pol_session_new(deflt, POL_PH_TOKEN);
    char *m = NULL, *out = NULL;
    size_t mlen, olen;

    (void)state;
    assert_non_null(s);
    assert_int_equal(pol_session_process(s, rt_text, strlen(rt_text), &m, &mlen), POL_OK);
    assert_null(strstr(m, "山田"));
    assert_null(strstr(m, "5678"));
    assert_null(strstr(m, "taro@"));
    assert_null(strstr(m, "526018159084"));
    /* the same name twice gets the same placeholder */
    assert_non_null(strstr(m, "\xe2\x9f\xa6" "1\xe2\x9f\xa7様（"));
    assert_non_null(strstr(m, "。\xe2\x9f\xa6" "1\xe2\x9f\xa7様の"));
    assert_non_null(strstr(m, "a < b & c > d"));
    assert_int_equal(pol_session_restore(s, m, mlen, 0, &out, &olen), POL_OK);
    assert_int_equal(olen, strlen(rt_text));
    assert_string_equal(out, rt_text);
    free(m);
    free(out);
    pol_session_free(s);
}

static void test_roundtrip_xml_escapes_and_restores(void **state)
{
    pol_session *s = pol_session_new(deflt, POL_PH_XML);
    char *m = NULL, *out = NULL;
    size_t mlen, olen;

    (void)state;
    assert_non_null(s);
    assert_int_equal(pol_session_process(s, rt_text, strlen(rt_text), &m, &mlen), POL_OK);
    assert_non_null(strstr(m, "<tgph id=\"1\"/>様（"));
    assert_non_null(strstr(m, "a &lt; b &amp; c &gt; d"));
    assert_int_equal(pol_session_restore(s, m, mlen, 0, &out, &olen), POL_OK);
    assert_string_equal(out, rt_text);
    free(m);
    free(out);
    pol_session_free(s);
}

/* Placeholder 1 must not be confused with 10..19, and the same value in
 * two fields gets the same number. */
static void test_placeholders_unique_no_prefix_collision_across_fields(void **state)
{
    pol_session *s = pol_session_new(deflt, POL_PH_TOKEN);
    char text[2048], *m = NULL, *m2 = NULL, *out = NULL;
    size_t n = 0, i, mlen, m2len, olen;

    (void)state;
    assert_non_null(s);
    for (i = 0; i < 12; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "u%zu@example-corp.co.jp ", i);
    assert_int_equal(pol_session_process(s, text, n, &m, &mlen), POL_OK);
    assert_non_null(strstr(m, "\xe2\x9f\xa6" "1\xe2\x9f\xa7"));
    assert_non_null(strstr(m, "\xe2\x9f\xa6" "12\xe2\x9f\xa7"));
    /* Dropping the scan scratch and compacting the session (as the
     * gateway does while the vendor works) changes nothing for later
     * fields or for restoration. */
    s = pol_session_compact(s);
    assert_non_null(s);
    assert_int_equal(pol_session_process(s, "cc u10@example-corp.co.jp", 25, &m2, &m2len), POL_OK);
    assert_string_equal(m2, "cc \xe2\x9f\xa6" "11\xe2\x9f\xa7");
    s = pol_session_compact(s);
    assert_int_equal(pol_session_total(s), 13);
    assert_int_equal(pol_session_restore(s, m, mlen, 0, &out, &olen), POL_OK);
    assert_string_equal(out, text);
    free(out);
    assert_int_equal(pol_session_restore(s, m2, m2len, 0, &out, &olen), POL_OK);
    assert_string_equal(out, "cc u10@example-corp.co.jp");
    free(out);
    assert_int_equal(pol_session_restore(s, "x", 1, 0, &out, &olen), POL_ERR_NO_FIELD);
    assert_null(out);
    free(m);
    free(m2);
    pol_session_free(s);
}

static void test_restore_tolerates_spacing_width_case_and_moves(void **state)
{
    pol_session *sx = pol_session_new(deflt, POL_PH_XML);
    pol_session *st = pol_session_new(deflt, POL_PH_TOKEN);
    const char *in = "Mr. John Smith wrote to Dr. Jane Doe.";
    char *m = NULL, *out = NULL;

    (void)state;
    assert_non_null(sx);
    assert_non_null(st);
    assert_int_equal(pol_session_process(sx, in, strlen(in), &m, NULL), POL_OK);
    assert_string_equal(m, "Mr. <tgph id=\"1\"/> wrote to Dr. <tgph id=\"2\"/>.");
    free(m);
    {
        const char *tr = "Dr. < TGPH  ID = '２' / > recibió de Sr. <tgph id=\"1\"></tgph>.";
        assert_int_equal(pol_session_restore_field(sx, 0, tr, strlen(tr), 0, &out, NULL), POL_OK);
        assert_string_equal(out, "Dr. Jane Doe recibió de Sr. John Smith.");
        free(out);
    }
    assert_int_equal(pol_session_process(st, in, strlen(in), &m, NULL), POL_OK);
    free(m);
    {
        const char *tr = "Dr. \xe2\x9f\xa6 ２ \xe2\x9f\xa7 recibió de Sr. \xe2\x9f\xa6" "1\xe2\x9f\xa7.";
        assert_int_equal(pol_session_restore_field(st, 0, tr, strlen(tr), 0, &out, NULL), POL_OK);
        assert_string_equal(out, "Dr. Jane Doe recibió de Sr. John Smith.");
        free(out);
    }
    pol_session_free(sx);
    pol_session_free(st);
}

static void test_restore_fails_closed_on_lost_duplicated_unknown(void **state)
{
    pol_session *s = pol_session_new(deflt, POL_PH_TOKEN);
    const char *in = "Mr. John Smith and Dr. Jane Doe";
    char *m = NULL, *out = NULL;
    const char *lost = "Sr. \xe2\x9f\xa6" "1\xe2\x9f\xa7 y";
    const char *dup = "\xe2\x9f\xa6" "1\xe2\x9f\xa7 \xe2\x9f\xa6" "1\xe2\x9f\xa7 \xe2\x9f\xa6" "2\xe2\x9f\xa7";
    const char *unk = "\xe2\x9f\xa6" "1\xe2\x9f\xa7 \xe2\x9f\xa6" "2\xe2\x9f\xa7 \xe2\x9f\xa6" "3\xe2\x9f\xa7";
    size_t olen;

    (void)state;
    assert_non_null(s);
    assert_int_equal(pol_session_process(s, in, strlen(in), &m, NULL), POL_OK);
    free(m);
    assert_int_equal(pol_session_restore_field(s, 0, lost, strlen(lost), 0, &out, &olen),
                     POL_ERR_PH_LOST);
    assert_null(out);
    assert_int_equal(pol_session_restore_field(s, 0, dup, strlen(dup), 0, &out, &olen),
                     POL_ERR_PH_DUPLICATED);
    assert_null(out);
    assert_int_equal(pol_session_restore_field(s, 0, unk, strlen(unk), 0, &out, &olen),
                     POL_ERR_PH_UNKNOWN);
    assert_null(out);
    /* best effort: known ones restored, the unknown one left as it was */
    assert_int_equal(pol_session_restore_field(s, 0, unk, strlen(unk), 1, &out, &olen), POL_OK);
    assert_string_equal(out, "John Smith Jane Doe \xe2\x9f\xa6" "3\xe2\x9f\xa7");
    free(out);
    assert_int_equal(pol_session_restore_field(s, 0, lost, strlen(lost), 1, &out, &olen), POL_OK);
    assert_string_equal(out, "Sr. John Smith y");
    free(out);
    /* error strings name no content */
    assert_string_equal(pol_strerror(POL_ERR_PH_LOST), "a placeholder was lost in translation");
    pol_session_free(s);
}

/* A terminal cannot forge a placeholder: literal ⟦N⟧ and <tgph> in its text
 * are themselves masked or escaped, and come back verbatim. */
static void test_forged_placeholders_in_input_come_back_verbatim(void **state)
{
    pol_session *s = pol_session_new(deflt, POL_PH_TOKEN);
    pol_session *x = pol_session_new(deflt, POL_PH_XML);
    pol_session *mk = pol_session_new(deflt, POL_PH_XML_MARKUP);
    const char *in = "see \xe2\x9f\xa6" "1\xe2\x9f\xa7 and <tgph id=\"1\"/> for Mr. John Smith";
    char *m = NULL, *out = NULL;
    size_t mlen;

    (void)state;
    assert_non_null(s);
    assert_non_null(x);
    assert_non_null(mk);
    assert_int_equal(pol_session_process(s, in, strlen(in), &m, &mlen), POL_OK);
    assert_int_equal(pol_session_restore(s, m, mlen, 0, &out, NULL), POL_OK);
    assert_string_equal(out, in);
    free(m);
    free(out);
    assert_int_equal(pol_session_process(x, in, strlen(in), &m, &mlen), POL_OK);
    assert_non_null(strstr(m, "&lt;tgph id=\"1\"/&gt;"));
    assert_int_equal(pol_session_restore(x, m, mlen, 0, &out, NULL), POL_OK);
    assert_string_equal(out, in);
    free(m);
    free(out);
    assert_int_equal(pol_session_process(mk, in, strlen(in), &m, &mlen), POL_OK);
    assert_int_equal(pol_session_restore(mk, m, mlen, 0, &out, NULL), POL_OK);
    assert_string_equal(out, in);
    free(m);
    free(out);
    pol_session_free(s);
    pol_session_free(x);
    pol_session_free(mk);
}

static void test_invalid_utf8_is_distinct_error_before_scan(void **state)
{
    pol_session *s = pol_session_new(deflt, POL_PH_TOKEN);
    char *m = (char *)1;
    size_t nd;

    (void)state;
    assert_non_null(s);
    assert_int_equal(pol_session_process(s, "Mr. John Smith \xff", 16, &m, NULL), POL_ERR_UTF8);
    assert_null(m);
    (void)pol_session_detections(s, &nd);
    assert_int_equal(nd, 0);
    assert_int_equal(pol_session_total(s), 0);
    pol_session_free(s);
}

/* ------------------------------------------------------------------ */

static int level_of(const char *text, const char **rule)
{
    pol_session *s = pol_session_new(deflt, POL_PH_TOKEN);
    char *m = NULL;
    int lv;

    assert_non_null(s);
    assert_int_equal(pol_session_process(s, text, strlen(text), &m, NULL), POL_OK);
    lv = pol_session_level(s, rule);
    free(m);
    pol_session_free(s);
    return lv;
}

static void test_markings_all_usual_forms(void **state)
{
    static const char *l3[] = {"機密性３", "機密性3", "機3", "【機密性３情報】", "［機密性３］",
        "機密性 3", "機 密 性 ３", "（機3）", "機密性：３", "本文【機3情報】です", "機密性三"};
    static const char *l2[] = {"機密性２", "機2", "【機密性２情報】", "［機密性 2］"};
    static const char *l1[] = {"機密性１", "機密性1", "【機密性１情報】"};
    static const char *none[] = {"発電機3台", "機密性の高い情報", "有機3層", "機密性30",
                                 "航空機3機", "機3台"};
    size_t i;
    const char *rule = NULL;

    (void)state;
    for (i = 0; i < sizeof l3 / sizeof l3[0]; i++) {
        if (level_of(l3[i], &rule) != 3)
            printf("  not level 3: %s\n", l3[i]);
        assert_int_equal(level_of(l3[i], &rule), 3);
        assert_non_null(rule);
    }
    for (i = 0; i < sizeof l2 / sizeof l2[0]; i++)
        assert_int_equal(level_of(l2[i], NULL), 2);
    for (i = 0; i < sizeof l1 / sizeof l1[0]; i++)
        assert_int_equal(level_of(l1[i], NULL), 1);
    for (i = 0; i < sizeof none / sizeof none[0]; i++) {
        if (level_of(none[i], &rule) != 0)
            printf("  marked: %s\n", none[i]);
        assert_int_equal(level_of(none[i], &rule), 0);
        assert_null(rule);
    }
    /* the highest marking in a request decides */
    assert_int_equal(level_of("機密性2 ... 機密性３ ... 機密性1", &rule), 3);
    assert_string_equal(rule, "cls3-kimitsusei");
}

static void test_decision_uses_lower_clearance_and_default_level(void **state)
{
    pol_session *s = pol_session_new(deflt, POL_PH_TOKEN);
    pol_session *u = pol_session_new(deflt, POL_PH_TOKEN);
    char *m = NULL;
    pol_decision d;

    (void)state;
    assert_non_null(s);
    assert_non_null(u);
    assert_int_equal(pol_session_process(s, "【機密性２情報】本文", strlen("【機密性２情報】本文"),
                                         &m, NULL), POL_OK);
    free(m);
    assert_int_equal(pol_session_process(u, "plain text", 10, &m, NULL), POL_OK);
    free(m);
    /* level 2 vs clearances */
    assert_int_equal(pol_decide(s, 1, 2, 2, &d), POL_OK);
    assert_int_equal(d.refuse, 0);
    assert_int_equal(d.level, 2);
    assert_string_equal(d.rule_id, "cls2-kimitsusei");
    assert_int_equal(pol_decide(s, 1, 3, 1, &d), POL_OK);   /* standard-terms upstream */
    assert_int_equal(d.refuse, 1);
    assert_string_equal(d.rule_id, "cls2-kimitsusei");
    assert_int_equal(pol_decide(s, 1, 1, 3, &d), POL_OK);   /* client cleared for 1 */
    assert_int_equal(d.refuse, 1);
    /* unlabelled text takes the client's default level */
    assert_int_equal(pol_decide(u, 2, 3, 1, &d), POL_OK);
    assert_int_equal(d.refuse, 1);
    assert_int_equal(d.level, 2);
    assert_string_equal(d.rule_id, POL_RULE_DEFAULT_LEVEL);
    assert_int_equal(pol_decide(u, 1, 3, 1, &d), POL_OK);
    assert_int_equal(d.refuse, 0);
    /* bad levels fail closed */
    assert_int_equal(pol_decide(u, 0, 3, 3, &d), POL_ERR_ARG);
    assert_int_equal(d.refuse, 1);
    assert_int_equal(pol_decide(u, 1, 4, 3, &d), POL_ERR_ARG);
    assert_int_equal(d.refuse, 1);
    pol_session_free(s);
    pol_session_free(u);
}

static void test_counts_per_type_for_audit(void **state)
{
    pol_session *s = pol_session_new(deflt, POL_PH_TOKEN);
    const char *t = "a@example-corp.co.jp b@example-corp.co.jp a@example-corp.co.jp 090-1234-5678";
    char *m = NULL;
    size_t i, email = (size_t)-1, phone = (size_t)-1;

    (void)state;
    assert_non_null(s);
    assert_int_equal(pol_session_process(s, t, strlen(t), &m, NULL), POL_OK);
    for (i = 0; i < pol_engine_ntypes(deflt); i++) {
        if (strcmp(pol_engine_type_name(deflt, i), "email") == 0)
            email = i;
        if (strcmp(pol_engine_type_name(deflt, i), "phone") == 0)
            phone = i;
    }
    assert_int_equal(pol_session_count(s, email), 3);
    assert_int_equal(pol_session_count(s, phone), 1);
    assert_int_equal(pol_session_total(s), 4);
    assert_int_equal(pol_session_count(s, 9999), 0);
    assert_null(pol_engine_type_name(deflt, 9999));
    free(m);
    pol_session_free(s);
}

/* ------------------------------------------------------------------ */

static const char *thread_text =
    "申請者：山田太郎様 電話 03-1234-5678 メール taro@example-corp.co.jp 個人番号 526018159084";

static void *thread_main(void *arg)
{
    int i;
    long bad = 0;

    (void)arg;
    for (i = 0; i < 200; i++) {
        pol_session *s = pol_session_new(deflt, POL_PH_TOKEN);
        char *m = NULL, *out = NULL;
        size_t mlen;
        if (s == NULL || pol_session_process(s, thread_text, strlen(thread_text), &m, &mlen) != POL_OK ||
            pol_session_total(s) != 4 ||
            pol_session_restore(s, m, mlen, 0, &out, NULL) != POL_OK ||
            strcmp(out, thread_text) != 0)
            bad++;
        free(m);
        free(out);
        pol_session_free(s);
    }
    return (void *)bad;
}

static void test_shared_engine_across_threads(void **state)
{
    pthread_t th[4];
    size_t i;

    (void)state;
    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, NULL), 0);
    for (i = 0; i < 4; i++) {
        void *r;
        assert_int_equal(pthread_join(th[i], &r), 0);
        assert_null(r);
    }
}

/* Adversarial input (long runs of digits, letters, '@', kanji) completes
 * within the match limits, whatever its size.  How the time grows with the
 * size is measured by tests/bench/policy (a timed assertion here would
 * fail on a loaded machine). */
static void test_scan_completes_within_limits_on_adversarial_input(void **state)
{
    static const char *unit[] = {"0", "a", "@", "\xe5\xb1\xb1", "1-", "a.", "\xe6\xa9\x9f"};
    size_t k, sizes[2] = {64 * 1024, 512 * 1024};

    (void)state;
    for (k = 0; k < sizeof unit / sizeof unit[0]; k++) {
        size_t r;
        for (r = 0; r < 2; r++) {
            size_t ul = strlen(unit[k]), n = 0;
            char *buf = malloc(sizes[r] + 8), *m = NULL;
            pol_session *s = pol_session_new(deflt, POL_PH_TOKEN);
            assert_non_null(buf);
            assert_non_null(s);
            while (n + ul <= sizes[r]) {
                memcpy(buf + n, unit[k], ul);
                n += ul;
            }
            assert_int_equal(pol_session_process(s, buf, n, &m, NULL), POL_OK);
            assert_non_null(m);
            free(m);
            free(buf);
            pol_session_free(s);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_matches_fips_vectors),
        cmocka_unit_test(test_digest_covers_every_pack_in_order),
        cmocka_unit_test(test_check_digits_match_independent_vectors),
        cmocka_unit_test(test_utf8_validator_rejects_malformed_sequences),
        cmocka_unit_test(test_detectors_data_driven_cases),
        cmocka_unit_test(test_every_default_detector_has_cases),
        cmocka_unit_test(test_invalid_packs_refused_with_positions),
        cmocka_unit_test(test_later_pack_overrides_and_disables_by_id),
        cmocka_unit_test(test_overlaps_resolve_refuse_then_longer_then_priority),
        cmocka_unit_test(test_roundtrip_token_restores_exact_text),
        cmocka_unit_test(test_roundtrip_xml_escapes_and_restores),
        cmocka_unit_test(test_placeholders_unique_no_prefix_collision_across_fields),
        cmocka_unit_test(test_restore_tolerates_spacing_width_case_and_moves),
        cmocka_unit_test(test_restore_fails_closed_on_lost_duplicated_unknown),
        cmocka_unit_test(test_forged_placeholders_in_input_come_back_verbatim),
        cmocka_unit_test(test_invalid_utf8_is_distinct_error_before_scan),
        cmocka_unit_test(test_markings_all_usual_forms),
        cmocka_unit_test(test_decision_uses_lower_clearance_and_default_level),
        cmocka_unit_test(test_counts_per_type_for_audit),
        cmocka_unit_test(test_shared_engine_across_threads),
        cmocka_unit_test(test_scan_completes_within_limits_on_adversarial_input),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
