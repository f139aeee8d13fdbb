/*
 * Unit tests for the vendor adapters (gateway/adapter*.c): the exact HTTP
 * exchanges they build and how they judge what vendors send back.  Reply
 * shapes for Apertium were taken from a real APY 2737 instance.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adapter.h"
#include "api.h"

/* ------------------------------------------------------------ helpers */

static tg_upstream_conf deepl_up(const char *base_path)
{
    tg_upstream_conf up;

    memset(&up, 0, sizeof(up));
    up.name = (char *)(uintptr_t)"deepl";
    up.adapter = TG_ADAPTER_DEEPL;
    up.base_path = (char *)(uintptr_t)base_path;
    return up;
}

static tg_upstream_conf apy_up(const char *base_path, const char *default_src)
{
    tg_upstream_conf up;

    memset(&up, 0, sizeof(up));
    up.name = (char *)(uintptr_t)"apertium";
    up.adapter = TG_ADAPTER_APERTIUM;
    up.base_path = (char *)(uintptr_t)base_path;
    up.default_source_lang = (char *)(uintptr_t)default_src;
    return up;
}

/* A validated request from a form body (the codec is tested elsewhere). */
static void make_req(tg_translate_req *r, const char *form)
{
    assert_int_equal(api_parse_translate(API_BODY_FORM, form, strlen(form), r, NULL),
                     API_OK);
}

static adapter_reply reply(long status, const char *body)
{
    adapter_reply r;

    r.status = status;
    r.body = body;
    r.len = body != NULL ? strlen(body) : 0;
    return r;
}

static adapter_err parse1(const tg_upstream_conf *up, const tg_translate_req *req,
                          long status, const char *body, tg_translation **out)
{
    adapter_reply r = reply(status, body);

    return adapter_parse_translate(up, req, &r, 1, out);
}

/* -------------------------------------------------------------- DeepL */

static void test_deepl_builds_one_json_post_with_texts_and_auth(void **state)
{
    tg_upstream_conf up = deepl_up("");
    tg_translate_req req;
    adapter_http *h;
    size_t n;

    (void)state;
    make_req(&req, "text=Hello&text=%E6%97%A5%22%0A&target_lang=de");
    assert_int_equal(adapter_build_translate(&up, "k3y:fx", &req, &h, &n), ADAPTER_OK);
    assert_int_equal(n, 1);
    assert_string_equal(h[0].path, "/v2/translate");
    assert_string_equal(h[0].content_type, "application/json");
    assert_int_equal(h[0].n_headers, 1);
    assert_string_equal(h[0].headers[0], "Authorization: DeepL-Auth-Key k3y:fx");
    assert_string_equal(h[0].body.data,
        "{\"text\":[\"Hello\",\"\xe6\x97\xa5\\\"\\n\"],\"target_lang\":\"DE\"}");
    adapter_http_array_free(h, n);
    api_translate_req_free(&req);
}

static void test_deepl_forwards_every_option_with_json_types(void **state)
{
    tg_upstream_conf up = deepl_up("/proxy/deepl");
    tg_translate_req req;
    adapter_http *h;
    size_t n;

    (void)state;
    make_req(&req, "text=%3Cp%3EHi%3C%2Fp%3E&source_lang=en&target_lang=en-gb"
             "&context=ctx&split_sentences=nonewlines&preserve_formatting=1"
             "&formality=prefer_less&glossary_id=g-1&tag_handling=xml"
             "&outline_detection=0&non_splitting_tags=b,i&splitting_tags=p"
             "&ignore_tags=&model_type=prefer_quality_optimized"
             "&show_billed_characters=true");
    assert_int_equal(adapter_build_translate(&up, NULL, &req, &h, &n), ADAPTER_OK);
    assert_int_equal(n, 1);
    assert_string_equal(h[0].path, "/proxy/deepl/v2/translate");
    assert_int_equal(h[0].n_headers, 0);
    assert_string_equal(h[0].body.data,
        "{\"text\":[\"<p>Hi</p>\"],\"target_lang\":\"EN-GB\",\"source_lang\":\"EN\","
        "\"context\":\"ctx\",\"split_sentences\":\"nonewlines\","
        "\"preserve_formatting\":true,\"formality\":\"prefer_less\","
        "\"glossary_id\":\"g-1\",\"tag_handling\":\"xml\",\"outline_detection\":false,"
        "\"non_splitting_tags\":[\"b\",\"i\"],\"splitting_tags\":[\"p\"],"
        "\"ignore_tags\":[],\"model_type\":\"prefer_quality_optimized\","
        "\"show_billed_characters\":true}");
    adapter_http_array_free(h, n);
    api_translate_req_free(&req);
}

static void test_deepl_refuses_key_that_could_inject_headers(void **state)
{
    tg_upstream_conf up = deepl_up("");
    tg_translate_req req;
    adapter_http *h = (adapter_http *)(uintptr_t)1, lang;
    size_t n = 7;

    (void)state;
    make_req(&req, "text=a&target_lang=DE");
    assert_int_equal(adapter_build_translate(&up, "abc\r\nX-Evil: 1", &req, &h, &n),
                     ADAPTER_ERR_BAD_KEY);
    assert_null(h);
    assert_int_equal(n, 0);
    assert_int_equal(adapter_build_translate(&up, "a b", &req, &h, &n), ADAPTER_ERR_BAD_KEY);
    assert_int_equal(adapter_build_translate(&up, "", &req, &h, &n), ADAPTER_ERR_BAD_KEY);
    assert_int_equal(adapter_build_languages(&up, "\x7f", 0, &lang), ADAPTER_ERR_BAD_KEY);
    api_translate_req_free(&req);
}

static void test_deepl_parses_reply_in_order(void **state)
{
    tg_upstream_conf up = deepl_up("");
    tg_translate_req req;
    tg_translation *t;

    (void)state;
    make_req(&req, "text=a&text=b&target_lang=DE");
    assert_int_equal(parse1(&up, &req, 200,
        "{\"translations\":[{\"detected_source_language\":\"en\",\"text\":\"Hallo \\u00fc\"},"
        "{\"detected_source_language\":\"JA\",\"text\":\"\",\"billed_characters\":3}],"
        "\"extra\":1}", &t), ADAPTER_OK);
    assert_string_equal(t[0].text, "Hallo \xc3\xbc");
    assert_int_equal(t[0].len, 8);
    assert_string_equal(t[0].detected_source_language, "EN");
    assert_string_equal(t[1].text, "");
    assert_int_equal(t[1].len, 0);
    assert_string_equal(t[1].detected_source_language, "JA");
    adapter_translations_free(t, 2);
    api_translate_req_free(&req);
}

static void test_deepl_missing_detected_language_uses_request_source(void **state)
{
    tg_upstream_conf up = deepl_up("");
    tg_translate_req req;
    tg_translation *t;

    (void)state;
    make_req(&req, "text=a&target_lang=DE&source_lang=en");
    assert_int_equal(parse1(&up, &req, 200, "{\"translations\":[{\"text\":\"x\"}]}", &t),
                     ADAPTER_OK);
    assert_string_equal(t[0].detected_source_language, "EN");
    adapter_translations_free(t, 1);
    api_translate_req_free(&req);
    make_req(&req, "text=a&target_lang=DE");
    assert_int_equal(parse1(&up, &req, 200, "{\"translations\":[{\"text\":\"x\"}]}", &t),
                     ADAPTER_OK);
    assert_string_equal(t[0].detected_source_language, "");
    adapter_translations_free(t, 1);
    api_translate_req_free(&req);
}

static void test_deepl_count_mismatch(void **state)
{
    tg_upstream_conf up = deepl_up("");
    tg_translate_req req;
    tg_translation *t = (tg_translation *)(uintptr_t)1;

    (void)state;
    make_req(&req, "text=a&text=b&target_lang=DE");
    assert_int_equal(parse1(&up, &req, 200,
        "{\"translations\":[{\"detected_source_language\":\"EN\",\"text\":\"x\"}]}", &t),
        ADAPTER_ERR_COUNT_MISMATCH);
    assert_null(t);
    assert_int_equal(parse1(&up, &req, 200,
        "{\"translations\":[{\"text\":\"x\"},{\"text\":\"y\"},{\"text\":\"z\"}]}", &t),
        ADAPTER_ERR_COUNT_MISMATCH);
    assert_int_equal(parse1(&up, &req, 200, "{\"translations\":[]}", &t),
                     ADAPTER_ERR_COUNT_MISMATCH);
    api_translate_req_free(&req);
}

static void test_deepl_rejects_malformed_replies(void **state)
{
    static const char *const bad[] = {
        "",
        "garbage",
        "<html>502 Bad Gateway</html>",
        "null",
        "[]",
        "{}",
        "{\"translations\":{}}",
        "{\"translations\":\"x\"}",
        "{\"translations\":[1,2]}",
        "{\"translations\":[{\"text\":1},{\"text\":\"y\"}]}",
        "{\"translations\":[{\"text\":null},{\"text\":\"y\"}]}",
        "{\"translations\":[{\"detected_source_language\":\"EN\"},{\"text\":\"y\"}]}",
        "{\"translations\":[{\"text\":\"x\",\"detected_source_language\":5},{\"text\":\"y\"}]}",
        "{\"translations\":[{\"text\":\"x\",\"detected_source_language\":\"ENGLISH-LANGUAGE\"},{\"text\":\"y\"}]}",
        "{\"translations\":[{\"text\":\"x\",\"detected_source_language\":\"E\\n\"},{\"text\":\"y\"}]}",
        "{\"translations\":[{\"text\":\"x\\u0000\"},{\"text\":\"y\"}]}",
        "{\"translations\":[{\"text\":\"\\ud800\"},{\"text\":\"y\"}]}",
        "{\"translations\":[{\"text\":\"x\"},{\"text\":\"y\"}],\"translations\":[]}",
        "{\"translations\":[{\"text\":\"x\"},{\"text\":\"y\"}]} trailing",
        "{\"translations\":[{\"text\":\"\xff\"},{\"text\":\"y\"}]}",
        NULL
    };
    tg_upstream_conf up = deepl_up("");
    tg_translate_req req;
    tg_translation *t;
    size_t i;

    (void)state;
    make_req(&req, "text=a&text=b&target_lang=DE");
    for (i = 0; bad[i] != NULL; i++) {
        adapter_err rc = parse1(&up, &req, 200, bad[i], &t);
        if (rc != ADAPTER_ERR_BAD_REPLY)
            print_error("bad reply case %zu gave %d\n", i, (int)rc);
        assert_int_equal(rc, ADAPTER_ERR_BAD_REPLY);
        assert_null(t);
    }
    api_translate_req_free(&req);
}

static void test_deepl_status_codes(void **state)
{
    static const char ok[] = "{\"translations\":[{\"text\":\"x\"}]}";
    tg_upstream_conf up = deepl_up("");
    tg_translate_req req;
    tg_translation *t;
    adapter_reply two[2];

    (void)state;
    make_req(&req, "text=a&target_lang=DE");
    assert_int_equal(parse1(&up, &req, 456, "{\"message\":\"Quota exceeded\"}", &t),
                     ADAPTER_ERR_VENDOR_QUOTA);
    assert_int_equal(parse1(&up, &req, 500, ok, &t), ADAPTER_ERR_VENDOR_STATUS);
    assert_int_equal(parse1(&up, &req, 503, "", &t), ADAPTER_ERR_VENDOR_STATUS);
    assert_int_equal(parse1(&up, &req, 429, ok, &t), ADAPTER_ERR_VENDOR_STATUS);
    assert_int_equal(parse1(&up, &req, 403, ok, &t), ADAPTER_ERR_VENDOR_STATUS);
    assert_int_equal(parse1(&up, &req, 302, ok, &t), ADAPTER_ERR_VENDOR_STATUS);
    assert_int_equal(parse1(&up, &req, 0, ok, &t), ADAPTER_ERR_VENDOR_STATUS);
    assert_int_equal(parse1(&up, &req, 201, ok, &t), ADAPTER_OK);
    adapter_translations_free(t, 1);
    /* DeepL is one exchange: two replies is a caller error, not a success. */
    two[0] = reply(200, ok);
    two[1] = reply(200, ok);
    assert_int_equal(adapter_parse_translate(&up, &req, two, 2, &t), ADAPTER_ERR_BAD_REPLY);
    api_translate_req_free(&req);
}

static void test_deepl_huge_text_round_trips(void **state)
{
    tg_upstream_conf up = deepl_up("");
    tg_translate_req req;
    tg_translation *t;
    tg_buf body;
    size_t i, big = 1024 * 1024;

    (void)state;
    make_req(&req, "text=a&target_lang=DE");
    tg_buf_init(&body, 2 * big);
    assert_int_equal(tg_buf_adds(&body, "{\"translations\":[{\"text\":\""), 0);
    for (i = 0; i < big / 8; i++)
        assert_int_equal(tg_buf_adds(&body, "\\u65e5ab"), 0);
    assert_int_equal(tg_buf_adds(&body, "\"}]}"), 0);
    assert_int_equal(parse1(&up, &req, 200, body.data, &t), ADAPTER_OK);
    assert_int_equal(t[0].len, (big / 8) * 5);
    adapter_translations_free(t, 1);
    tg_buf_free(&body);
    api_translate_req_free(&req);
}

static void test_deepl_languages_request(void **state)
{
    tg_upstream_conf up = deepl_up("/v");
    adapter_http h;

    (void)state;
    assert_int_equal(adapter_build_languages(&up, "key", 0, &h), ADAPTER_OK);
    assert_string_equal(h.path, "/v/v2/languages?type=source");
    assert_null(h.content_type);
    assert_int_equal(h.body.len, 0);
    assert_int_equal(h.n_headers, 1);
    assert_string_equal(h.headers[0], "Authorization: DeepL-Auth-Key key");
    adapter_http_free(&h);
    assert_int_equal(adapter_build_languages(&up, NULL, 1, &h), ADAPTER_OK);
    assert_string_equal(h.path, "/v/v2/languages?type=target");
    assert_int_equal(h.n_headers, 0);
    adapter_http_free(&h);
    assert_int_equal(adapter_build_languages(&up, NULL, 2, &h), ADAPTER_ERR_UNSUPPORTED_LANG);
}

static void test_deepl_languages_reply_is_validated_and_reencoded(void **state)
{
    tg_upstream_conf up = deepl_up("");
    adapter_reply r;
    tg_buf out;

    (void)state;
    tg_buf_init(&out, ADAPTER_MAX_LANGUAGES_BODY);
    r = reply(200, "[{\"language\":\"de\",\"name\":\"German\",\"extra\":\"<script>\"},"
                   "{\"language\":\"JA\",\"name\":\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\","
                   "\"supports_formality\":true}]");
    assert_int_equal(adapter_parse_languages(&up, 0, &r, &out), ADAPTER_OK);
    assert_string_equal(out.data,
        "[{\"language\":\"DE\",\"name\":\"German\"},"
        "{\"language\":\"JA\",\"name\":\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"}]");
    tg_buf_free(&out);

    r = reply(200, "[{\"language\":\"EN-GB\",\"name\":\"English (British)\",\"supports_formality\":false},"
                   "{\"language\":\"DE\",\"name\":\"German\",\"supports_formality\":true}]");
    assert_int_equal(adapter_parse_languages(&up, 1, &r, &out), ADAPTER_OK);
    assert_string_equal(out.data,
        "[{\"language\":\"EN-GB\",\"name\":\"English (British)\",\"supports_formality\":false},"
        "{\"language\":\"DE\",\"name\":\"German\",\"supports_formality\":true}]");
    tg_buf_free(&out);

    r = reply(200, "[]");
    assert_int_equal(adapter_parse_languages(&up, 1, &r, &out), ADAPTER_OK);
    assert_string_equal(out.data, "[]");
    tg_buf_free(&out);
}

static void test_deepl_languages_reply_shape_errors(void **state)
{
    static const struct { int type; const char *body; } bad[] = {
        { 0, "" }, { 0, "{}" }, { 0, "[1]" }, { 0, "[{\"name\":\"German\"}]" },
        { 0, "[{\"language\":\"DE\"}]" },
        { 0, "[{\"language\":7,\"name\":\"German\"}]" },
        { 0, "[{\"language\":\"DE\",\"name\":\"\"}]" },
        { 0, "[{\"language\":\"D E\",\"name\":\"German\"}]" },
        { 0, "[{\"language\":\"DEUTSCH\",\"name\":\"German\"}]" },
        { 1, "[{\"language\":\"DE\",\"name\":\"German\"}]" },
        { 1, "[{\"language\":\"DE\",\"name\":\"German\",\"supports_formality\":\"yes\"}]" },
        { 0, "[{\"language\":\"DE\",\"name\":\"German\"}] x" },
    };
    tg_upstream_conf up = deepl_up("");
    adapter_reply r;
    tg_buf out;
    size_t i;

    (void)state;
    tg_buf_init(&out, ADAPTER_MAX_LANGUAGES_BODY);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = reply(200, bad[i].body);
        if (adapter_parse_languages(&up, bad[i].type, &r, &out) != ADAPTER_ERR_BAD_REPLY)
            fail_msg("languages shape case %zu accepted", i);
        assert_null(out.data);
    }
    r = reply(456, "[]");
    assert_int_equal(adapter_parse_languages(&up, 0, &r, &out), ADAPTER_ERR_VENDOR_QUOTA);
    r = reply(500, "[]");
    assert_int_equal(adapter_parse_languages(&up, 0, &r, &out), ADAPTER_ERR_VENDOR_STATUS);
    /* A reply that does not fit the caller's cap is refused, not truncated. */
    tg_buf_init(&out, 8);
    r = reply(200, "[{\"language\":\"DE\",\"name\":\"German\"}]");
    assert_int_equal(adapter_parse_languages(&up, 0, &r, &out), ADAPTER_ERR_NOMEM);
    assert_null(out.data);
}

/* ----------------------------------------------------------- Apertium */

static void test_apertium_language_table(void **state)
{
    (void)state;
    assert_string_equal(adapter_apertium_lang("EN"), "eng");
    assert_string_equal(adapter_apertium_lang("EN-GB"), "eng");
    assert_string_equal(adapter_apertium_lang("en-us"), "eng");
    assert_string_equal(adapter_apertium_lang("ES"), "spa");
    assert_string_equal(adapter_apertium_lang("FR"), "fra");
    assert_string_equal(adapter_apertium_lang("DE"), "deu");
    assert_string_equal(adapter_apertium_lang("IT"), "ita");
    assert_string_equal(adapter_apertium_lang("PT"), "por");
    assert_string_equal(adapter_apertium_lang("PT-PT"), "por");
    assert_string_equal(adapter_apertium_lang("PT-BR"), "por");
    assert_string_equal(adapter_apertium_lang("CA"), "cat");
    assert_string_equal(adapter_apertium_lang("JA"), "jpn");
    assert_string_equal(adapter_apertium_lang("NL"), "nld");
    assert_string_equal(adapter_apertium_lang("RO"), "ron");
    assert_string_equal(adapter_apertium_lang("GL"), "glg");
    assert_string_equal(adapter_apertium_lang("EU"), "eus");
    assert_string_equal(adapter_apertium_lang("AST"), "ast");
    assert_null(adapter_apertium_lang("QQ"));
    assert_null(adapter_apertium_lang("ENG"));
    assert_null(adapter_apertium_lang("E"));
    assert_null(adapter_apertium_lang(""));
    assert_null(adapter_apertium_lang(NULL));
    assert_string_equal(adapter_apertium_to_deepl("eng"), "EN");
    assert_string_equal(adapter_apertium_to_deepl("eng_US"), "EN");
    assert_string_equal(adapter_apertium_to_deepl("es"), "ES");
    assert_string_equal(adapter_apertium_to_deepl("srd"), "SC");
    assert_null(adapter_apertium_to_deepl("xyz"));
    assert_null(adapter_apertium_to_deepl("ENG"));
    assert_null(adapter_apertium_to_deepl("_US"));
    assert_string_equal(adapter_lang_name("EN-GB"), "English");
    assert_string_equal(adapter_lang_name("es"), "Spanish");
    assert_null(adapter_lang_name("QQ"));
}

static void test_apertium_builds_one_form_post_per_text(void **state)
{
    tg_upstream_conf up = apy_up("", NULL);
    tg_translate_req req;
    adapter_http *h;
    size_t n;

    (void)state;
    make_req(&req, "text=Hello+world&text=%E6%97%A5+%26+a%2Bb%3Dc%7Cd~_.-%0A&text="
             "&source_lang=en-GB&target_lang=ES&formality=more");
    assert_int_equal(adapter_build_translate(&up, "ignored-key", &req, &h, &n), ADAPTER_OK);
    assert_int_equal(n, 3);
    assert_string_equal(h[0].path, "/translate");
    assert_string_equal(h[0].content_type, "application/x-www-form-urlencoded");
    assert_int_equal(h[0].n_headers, 0);
    assert_string_equal(h[0].body.data, "langpair=eng%7Cspa&q=Hello%20world&markUnknown=no");
    assert_string_equal(h[1].body.data,
        "langpair=eng%7Cspa&q=%E6%97%A5%20%26%20a%2Bb%3Dc%7Cd~_.-%0A&markUnknown=no");
    assert_string_equal(h[2].body.data, "langpair=eng%7Cspa&q=&markUnknown=no");
    adapter_http_array_free(h, n);
    api_translate_req_free(&req);
}

static void test_apertium_source_language_rules(void **state)
{
    tg_upstream_conf up = apy_up("/apy", "es");
    tg_upstream_conf nodef = apy_up("", NULL);
    tg_translate_req req;
    adapter_http *h = NULL;
    size_t n;

    (void)state;
    make_req(&req, "text=Hola&target_lang=EN-US");
    assert_int_equal(adapter_build_translate(&up, NULL, &req, &h, &n), ADAPTER_OK);
    assert_string_equal(h[0].path, "/apy/translate");
    assert_string_equal(h[0].body.data, "langpair=spa%7Ceng&q=Hola&markUnknown=no");
    adapter_http_array_free(h, n);
    assert_int_equal(adapter_build_translate(&nodef, NULL, &req, &h, &n),
                     ADAPTER_ERR_NEED_SOURCE_LANG);
    assert_null(h);
    api_translate_req_free(&req);

    make_req(&req, "text=Hola&target_lang=QQ&source_lang=ES");
    assert_int_equal(adapter_build_translate(&nodef, NULL, &req, &h, &n),
                     ADAPTER_ERR_UNSUPPORTED_LANG);
    api_translate_req_free(&req);
    make_req(&req, "text=Hola&target_lang=EN&source_lang=ZZZ");
    assert_int_equal(adapter_build_translate(&nodef, NULL, &req, &h, &n),
                     ADAPTER_ERR_UNSUPPORTED_LANG);
    api_translate_req_free(&req);
}

static void test_apertium_parses_real_reply_shape(void **state)
{
    tg_upstream_conf up = apy_up("", NULL);
    tg_translate_req req;
    tg_translation *t;
    adapter_reply r[2];

    (void)state;
    make_req(&req, "text=Hola+mundo&text=x&source_lang=es&target_lang=EN-GB");
    r[0] = reply(200, "{\"responseData\": {\"translatedText\": \"Hello <b>World<\\/b> & \\\"x\\\"\\n\xe6\x97\xa5\"},"
                      " \"responseDetails\": null, \"responseStatus\": 200}");
    r[1] = reply(200, "{\"responseData\": {\"translatedText\": \"\"}, \"responseDetails\": null, \"responseStatus\": 200}");
    assert_int_equal(adapter_parse_translate(&up, &req, r, 2, &t), ADAPTER_OK);
    assert_string_equal(t[0].text, "Hello <b>World</b> & \"x\"\n\xe6\x97\xa5");
    assert_string_equal(t[0].detected_source_language, "ES");
    assert_string_equal(t[1].text, "");
    assert_string_equal(t[1].detected_source_language, "ES");
    adapter_translations_free(t, 2);
    api_translate_req_free(&req);
}

static void test_apertium_detected_language_is_primary_subtag_of_default(void **state)
{
    tg_upstream_conf up = apy_up("", "en-us");
    tg_translate_req req;
    tg_translation *t;

    (void)state;
    make_req(&req, "text=Hello&target_lang=ES");
    assert_int_equal(parse1(&up, &req, 200,
        "{\"responseData\":{\"translatedText\":\"Hola\"},\"responseDetails\":null,\"responseStatus\":200}",
        &t), ADAPTER_OK);
    assert_string_equal(t[0].detected_source_language, "EN");
    adapter_translations_free(t, 1);
    api_translate_req_free(&req);
}

static void test_apertium_errors(void **state)
{
    tg_upstream_conf up = apy_up("", NULL);
    tg_translate_req req;
    tg_translation *t = (tg_translation *)(uintptr_t)1;
    adapter_reply r[2];
    static const char ok[] =
        "{\"responseData\":{\"translatedText\":\"Hi\"},\"responseDetails\":null,\"responseStatus\":200}";

    (void)state;
    make_req(&req, "text=a&text=b&source_lang=en&target_lang=ja");
    /* Real APY answer for a pair it does not have. */
    r[0] = reply(200, ok);
    r[1] = reply(400, "{\"status\": \"error\", \"code\": 400, \"message\": \"Bad Request\", "
                      "\"explanation\": \"That pair is not installed\"}");
    assert_int_equal(adapter_parse_translate(&up, &req, r, 2, &t), ADAPTER_ERR_UNSUPPORTED_LANG);
    assert_null(t);
    r[1] = reply(400, "{\"status\": \"error\", \"code\": 400, \"message\": \"Bad Request\", "
                      "\"explanation\": \"Missing argument q\"}");
    assert_int_equal(adapter_parse_translate(&up, &req, r, 2, &t), ADAPTER_ERR_VENDOR_STATUS);
    r[1] = reply(500, "<html>oops</html>");
    assert_int_equal(adapter_parse_translate(&up, &req, r, 2, &t), ADAPTER_ERR_VENDOR_STATUS);
    r[1] = reply(456, ok);
    assert_int_equal(adapter_parse_translate(&up, &req, r, 2, &t), ADAPTER_ERR_VENDOR_STATUS);
    r[1] = reply(200, "{\"responseData\":{\"translatedText\":\"x\"},\"responseStatus\":503}");
    assert_int_equal(adapter_parse_translate(&up, &req, r, 2, &t), ADAPTER_ERR_VENDOR_STATUS);
    assert_null(t);
    /* One exchange per text: fewer replies is a count mismatch. */
    assert_int_equal(adapter_parse_translate(&up, &req, r, 1, &t), ADAPTER_ERR_COUNT_MISMATCH);
    api_translate_req_free(&req);
}

static void test_apertium_rejects_malformed_replies(void **state)
{
    static const char *const bad[] = {
        "",
        "garbage",
        "[]",
        "{}",
        "{\"responseData\":{\"translatedText\":\"x\"}}",
        "{\"responseData\":{\"translatedText\":\"x\"},\"responseStatus\":\"200\"}",
        "{\"responseData\":{\"translatedText\":\"x\"},\"responseStatus\":200.0}",
        "{\"responseData\":{\"translatedText\":5},\"responseStatus\":200}",
        "{\"responseData\":[\"x\"],\"responseStatus\":200}",
        "{\"responseData\":null,\"responseStatus\":200}",
        "{\"responseData\":{},\"responseStatus\":200}",
        "{\"responseData\":{\"translatedText\":\"a\\u0000b\"},\"responseStatus\":200}",
        "{\"responseData\":{\"translatedText\":\"x\"},\"responseStatus\":200,\"responseStatus\":200}",
        NULL
    };
    tg_upstream_conf up = apy_up("", "en");
    tg_translate_req req;
    tg_translation *t;
    size_t i;

    (void)state;
    make_req(&req, "text=a&target_lang=es");
    for (i = 0; bad[i] != NULL; i++) {
        adapter_err rc = parse1(&up, &req, 200, bad[i], &t);
        if (rc != ADAPTER_ERR_BAD_REPLY)
            print_error("apertium bad reply %zu gave %d\n", i, (int)rc);
        assert_int_equal(rc, ADAPTER_ERR_BAD_REPLY);
        assert_null(t);
    }
    api_translate_req_free(&req);
}

static void test_apertium_languages(void **state)
{
    tg_upstream_conf up = apy_up("/apy", NULL);
    adapter_http h;
    adapter_reply r;
    tg_buf out;
    /* Real listPairs reply, plus a pair we cannot name and a 2-letter code. */
    static const char pairs[] =
        "{\"responseData\": [{\"sourceLanguage\": \"spa\", \"targetLanguage\": \"eng\"}, "
        "{\"sourceLanguage\": \"spa\", \"targetLanguage\": \"eng_US\"}, "
        "{\"sourceLanguage\": \"eng\", \"targetLanguage\": \"spa\"}, "
        "{\"sourceLanguage\": \"xyz\", \"targetLanguage\": \"cat\"}, "
        "{\"sourceLanguage\": \"fr\", \"targetLanguage\": \"qqq\"}], "
        "\"responseDetails\": null, \"responseStatus\": 200}";

    (void)state;
    assert_int_equal(adapter_build_languages(&up, "key", 1, &h), ADAPTER_OK);
    assert_string_equal(h.path, "/apy/listPairs");
    assert_null(h.content_type);
    assert_int_equal(h.n_headers, 0);
    adapter_http_free(&h);

    tg_buf_init(&out, ADAPTER_MAX_LANGUAGES_BODY);
    r = reply(200, pairs);
    assert_int_equal(adapter_parse_languages(&up, 0, &r, &out), ADAPTER_OK);
    assert_string_equal(out.data,
        "[{\"language\":\"EN\",\"name\":\"English\"},{\"language\":\"ES\",\"name\":\"Spanish\"},"
        "{\"language\":\"FR\",\"name\":\"French\"}]");
    tg_buf_free(&out);
    assert_int_equal(adapter_parse_languages(&up, 1, &r, &out), ADAPTER_OK);
    assert_string_equal(out.data,
        "[{\"language\":\"CA\",\"name\":\"Catalan\",\"supports_formality\":false},"
        "{\"language\":\"EN\",\"name\":\"English\",\"supports_formality\":false},"
        "{\"language\":\"ES\",\"name\":\"Spanish\",\"supports_formality\":false}]");
    tg_buf_free(&out);

    r = reply(200, "{\"responseData\":[],\"responseStatus\":200}");
    assert_int_equal(adapter_parse_languages(&up, 0, &r, &out), ADAPTER_OK);
    assert_string_equal(out.data, "[]");
    tg_buf_free(&out);

    r = reply(200, "{\"responseData\":[{\"sourceLanguage\":\"eng\"}],\"responseStatus\":200}");
    assert_int_equal(adapter_parse_languages(&up, 0, &r, &out), ADAPTER_ERR_BAD_REPLY);
    r = reply(200, "{\"responseData\":{},\"responseStatus\":200}");
    assert_int_equal(adapter_parse_languages(&up, 0, &r, &out), ADAPTER_ERR_BAD_REPLY);
    r = reply(200, "[]");
    assert_int_equal(adapter_parse_languages(&up, 0, &r, &out), ADAPTER_ERR_BAD_REPLY);
    r = reply(200, "{\"responseData\":[],\"responseStatus\":500}");
    assert_int_equal(adapter_parse_languages(&up, 0, &r, &out), ADAPTER_ERR_VENDOR_STATUS);
    r = reply(502, pairs);
    assert_int_equal(adapter_parse_languages(&up, 0, &r, &out), ADAPTER_ERR_VENDOR_STATUS);
    assert_null(out.data);
}

/* -------------------------------------------------------------- misc */

static void test_strerror_is_total(void **state)
{
    int e;

    (void)state;
    for (e = ADAPTER_OK; e <= ADAPTER_ERR_BAD_KEY; e++) {
        const char *s = adapter_strerror((adapter_err)e);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
    }
}

static void test_form_encoding_is_exact(void **state)
{
    tg_buf b;
    char all[256];
    int i;

    (void)state;
    tg_buf_init(&b, 4096);
    for (i = 0; i < 256; i++)
        all[i] = (char)i;
    assert_int_equal(adapter_form_add(&b, "q", all + 32, 16), 0);
    assert_string_equal(b.data, "q=%20%21%22%23%24%25%26%27%28%29%2A%2B%2C-.%2F");
    assert_int_equal(adapter_form_add(&b, "r", "\xff\x00", 2), 0);
    assert_string_equal(b.data,
        "q=%20%21%22%23%24%25%26%27%28%29%2A%2B%2C-.%2F&r=%FF%00");
    tg_buf_free(&b);
    tg_buf_init(&b, 8);
    assert_int_equal(adapter_form_add(&b, "q", "abcdefgh", 8), -1);
    assert_null(b.data);
}

static void test_headers_are_capped(void **state)
{
    tg_upstream_conf up = deepl_up("");
    adapter_http h;
    int i;

    (void)state;
    assert_int_equal(adapter_http_init(&h, &up, "/x", 16), 0);
    for (i = 0; i < ADAPTER_MAX_HEADERS; i++)
        assert_int_equal(adapter_http_add_header(&h, "A", "b"), 0);
    assert_int_equal(adapter_http_add_header(&h, "A", "b"), -1);
    assert_string_equal(h.headers[0], "A: b");
    adapter_http_free(&h);
    assert_null(h.path);
    assert_int_equal(h.n_headers, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deepl_builds_one_json_post_with_texts_and_auth),
        cmocka_unit_test(test_deepl_forwards_every_option_with_json_types),
        cmocka_unit_test(test_deepl_refuses_key_that_could_inject_headers),
        cmocka_unit_test(test_deepl_parses_reply_in_order),
        cmocka_unit_test(test_deepl_missing_detected_language_uses_request_source),
        cmocka_unit_test(test_deepl_count_mismatch),
        cmocka_unit_test(test_deepl_rejects_malformed_replies),
        cmocka_unit_test(test_deepl_status_codes),
        cmocka_unit_test(test_deepl_huge_text_round_trips),
        cmocka_unit_test(test_deepl_languages_request),
        cmocka_unit_test(test_deepl_languages_reply_is_validated_and_reencoded),
        cmocka_unit_test(test_deepl_languages_reply_shape_errors),
        cmocka_unit_test(test_apertium_language_table),
        cmocka_unit_test(test_apertium_builds_one_form_post_per_text),
        cmocka_unit_test(test_apertium_source_language_rules),
        cmocka_unit_test(test_apertium_parses_real_reply_shape),
        cmocka_unit_test(test_apertium_detected_language_is_primary_subtag_of_default),
        cmocka_unit_test(test_apertium_errors),
        cmocka_unit_test(test_apertium_rejects_malformed_replies),
        cmocka_unit_test(test_apertium_languages),
        cmocka_unit_test(test_strerror_is_total),
        cmocka_unit_test(test_form_encoding_is_exact),
        cmocka_unit_test(test_headers_are_capped),
    };
    api_json_wipe_on_free();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
