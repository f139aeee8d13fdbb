/*
 * Unit tests for gateway/api.c: the DeepL v2 request/response codec.
 *
 * Request parsing is data-driven: every directory under
 * $TG_DATA_DIR/api/valid holds body, content_type (optional: absent means no
 * header) and expected.json (the parsed request); every directory under
 * $TG_DATA_DIR/api/invalid holds body, content_type and expected.txt
 * ("API_ERR_NAME field", field "-" when none).
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "api.h"

/* ------------------------------------------------------------ helpers */

static char *read_file(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    FILE *f;
    char *buf = NULL;
    long n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0)
        goto out;
    buf = malloc((size_t)n + 1);
    if (buf == NULL)
        goto out;
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[n] = '\0';
    if (len != NULL)
        *len = (size_t)n;
out:
    fclose(f);
    return buf;
}

static void chomp(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

static const char *err_name(api_err e)
{
    switch (e) {
    case API_OK:                  return "API_OK";
    case API_ERR_NOMEM:           return "API_ERR_NOMEM";
    case API_ERR_BAD_ENCODING:    return "API_ERR_BAD_ENCODING";
    case API_ERR_BAD_UTF8:        return "API_ERR_BAD_UTF8";
    case API_ERR_BAD_JSON:        return "API_ERR_BAD_JSON";
    case API_ERR_NOT_OBJECT:      return "API_ERR_NOT_OBJECT";
    case API_ERR_UNKNOWN_FIELD:   return "API_ERR_UNKNOWN_FIELD";
    case API_ERR_DUPLICATE_FIELD: return "API_ERR_DUPLICATE_FIELD";
    case API_ERR_BAD_TYPE:        return "API_ERR_BAD_TYPE";
    case API_ERR_BAD_VALUE:       return "API_ERR_BAD_VALUE";
    case API_ERR_MISSING_TEXT:    return "API_ERR_MISSING_TEXT";
    case API_ERR_TOO_MANY_TEXTS:  return "API_ERR_TOO_MANY_TEXTS";
    case API_ERR_MISSING_TARGET:  return "API_ERR_MISSING_TARGET";
    case API_ERR_CONTENT_TYPE:    return "API_ERR_CONTENT_TYPE";
    }
    return "?";
}

static void put_str(json_t *o, const char *k, const char *v)
{
    if (v != NULL)
        json_object_set_new(o, k, json_string(v));
}

static void put_bool(json_t *o, const char *k, int v)
{
    if (v >= 0)
        json_object_set_new(o, k, json_boolean(v));
}

/* The parsed request as JSON, the shape of expected.json. */
static json_t *req_to_json(const tg_translate_req *r)
{
    json_t *o = json_object(), *texts = json_array();
    size_t i;

    for (i = 0; i < r->n_texts; i++) {
        assert_int_equal(strlen(r->texts[i]), r->text_lens[i]);
        json_array_append_new(texts, json_stringn(r->texts[i], r->text_lens[i]));
    }
    json_object_set_new(o, "texts", texts);
    put_str(o, "source_lang", r->source_lang);
    put_str(o, "target_lang", r->target_lang);
    put_str(o, "context", r->context);
    put_str(o, "split_sentences", r->split_sentences);
    put_bool(o, "preserve_formatting", r->preserve_formatting);
    put_str(o, "formality", r->formality);
    put_str(o, "glossary_id", r->glossary_id);
    put_str(o, "tag_handling", r->tag_handling);
    put_bool(o, "outline_detection", r->outline_detection);
    put_str(o, "non_splitting_tags", r->non_splitting_tags);
    put_str(o, "splitting_tags", r->splitting_tags);
    put_str(o, "ignore_tags", r->ignore_tags);
    put_str(o, "model_type", r->model_type);
    put_bool(o, "show_billed_characters", r->show_billed_characters);
    return o;
}

static api_err parse_case(const char *dir, tg_translate_req *req,
                          const char **field)
{
    char *body, *ct;
    size_t len = 0;
    api_body_kind kind;
    api_err rc;

    body = read_file(dir, "body", &len);
    assert_non_null(body);
    ct = read_file(dir, "content_type", NULL);
    if (ct != NULL)
        chomp(ct);
    *field = NULL;
    memset(req, 0, sizeof(*req));
    if (api_body_kind_from_content_type(ct, &kind) != 0)
        rc = API_ERR_CONTENT_TYPE;
    else
        rc = api_parse_translate(kind, body, len, req, field);
    free(body);
    free(ct);
    return rc;
}

static int case_filter(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

typedef int (*case_fn)(const char *dir, const char *name);

static void run_cases(const char *sub, case_fn fn, int min_cases)
{
    const char *data = getenv("TG_DATA_DIR");
    struct dirent **list;
    char root[2048], dir[4096];
    int n, i, failed = 0;

    assert_non_null(data);
    snprintf(root, sizeof(root), "%s/api/%s", data, sub);
    n = scandir(root, &list, case_filter, alphasort);
    assert_true(n >= 0);
    for (i = 0; i < n; i++) {
        if (snprintf(dir, sizeof(dir), "%s/%s", root, list[i]->d_name) >=
            (int)sizeof(dir))
            fail_msg("path too long");
        if (fn(dir, list[i]->d_name) != 0)
            failed++;
        free(list[i]);
    }
    free(list);
    print_message("%s: %d cases, %d failed\n", sub, n, failed);
    assert_int_equal(failed, 0);
    assert_true(n >= min_cases);
}

static int valid_case(const char *dir, const char *name)
{
    tg_translate_req req;
    const char *field;
    api_err rc;
    json_t *want, *got;
    json_error_t jerr;
    char path[4096];
    int bad = 0;

    rc = parse_case(dir, &req, &field);
    if (rc != API_OK) {
        print_error("valid/%s: got %s (field %s)\n", name, err_name(rc),
                    field != NULL ? field : "-");
        return -1;
    }
    snprintf(path, sizeof(path), "%s/expected.json", dir);
    want = json_load_file(path, 0, &jerr);
    if (want == NULL) {
        print_error("valid/%s: expected.json: %s\n", name, jerr.text);
        api_translate_req_free(&req);
        return -1;
    }
    got = req_to_json(&req);
    if (!json_equal(want, got)) {
        tg_buf g, w;

        /* Not json_dumps: its memory belongs to the wiping allocator. */
        tg_buf_init(&g, 1 << 20);
        tg_buf_init(&w, 1 << 20);
        api_json_to_buf(got, &g);
        api_json_to_buf(want, &w);
        print_error("valid/%s:\n  want %s\n  got  %s\n", name,
                    w.data != NULL ? w.data : "?", g.data != NULL ? g.data : "?");
        tg_buf_free(&g);
        tg_buf_free(&w);
        bad = -1;
    }
    json_decref(want);
    json_decref(got);
    api_translate_req_free(&req);
    return bad;
}

static int invalid_case(const char *dir, const char *name)
{
    tg_translate_req req;
    const char *field;
    char *exp, *sp;
    const char *want_field = NULL;
    api_err rc;
    int bad = 0;

    exp = read_file(dir, "expected.txt", NULL);
    if (exp == NULL) {
        print_error("invalid/%s: no expected.txt\n", name);
        return -1;
    }
    chomp(exp);
    sp = strchr(exp, ' ');
    if (sp != NULL) {
        *sp = '\0';
        want_field = strcmp(sp + 1, "-") == 0 ? NULL : sp + 1;
    }
    rc = parse_case(dir, &req, &field);
    if (strcmp(err_name(rc), exp) != 0 ||
        (want_field == NULL) != (field == NULL) ||
        (want_field != NULL && strcmp(want_field, field) != 0)) {
        print_error("invalid/%s: want %s %s, got %s %s\n", name, exp,
                    want_field != NULL ? want_field : "-", err_name(rc),
                    field != NULL ? field : "-");
        bad = -1;
    }
    /* A failed parse leaves the request empty. */
    if (rc != API_OK && (req.n_texts != 0 || req.texts != NULL ||
                         req.target_lang != NULL))
        bad = -1;
    api_translate_req_free(&req);
    free(exp);
    return bad;
}

/* -------------------------------------------------------------- tests */

static void test_valid_requests_parse_to_expected(void **state)
{
    (void)state;
    run_cases("valid", valid_case, 20);
}

static void test_invalid_requests_fail_with_expected_code_and_field(void **state)
{
    (void)state;
    run_cases("invalid", invalid_case, 30);
}

static void test_utf8_len_counts_code_points(void **state)
{
    (void)state;
    assert_int_equal(api_utf8_len("", 0), 0);
    assert_int_equal(api_utf8_len("abc", 3), 3);
    assert_int_equal(api_utf8_len("\xc3\xa9", 2), 1);             /* é */
    assert_int_equal(api_utf8_len("\xe6\x97\xa5\xe6\x9c\xac", 6), 2); /* 日本 */
    assert_int_equal(api_utf8_len("\xf0\x9f\x98\x80", 4), 1);     /* U+1F600 */
    assert_int_equal(api_utf8_len("\xf4\x8f\xbf\xbf", 4), 1);     /* U+10FFFF */
    assert_int_equal(api_utf8_len("\xed\x9f\xbf", 3), 1);         /* U+D7FF */
    assert_int_equal(api_utf8_len("\xee\x80\x80", 3), 1);         /* U+E000 */
}

static void test_utf8_len_rejects_invalid_sequences(void **state)
{
    static const char *const bad[] = {
        "\xc0\xaf",             /* overlong '/' */
        "\xc1\xbf",             /* overlong */
        "\xe0\x80\xaf",         /* overlong 3-byte */
        "\xe0\x9f\xbf",         /* overlong 3-byte, top */
        "\xf0\x80\x80\xaf",     /* overlong 4-byte */
        "\xf0\x8f\xbf\xbf",     /* overlong 4-byte, top */
        "\xed\xa0\x80",         /* U+D800 surrogate */
        "\xed\xbf\xbf",         /* U+DFFF surrogate */
        "\xf4\x90\x80\x80",     /* U+110000 */
        "\xf5\x80\x80\x80",     /* beyond */
        "\xff",
        "\x80",                 /* stray continuation */
        "\xc3",                 /* truncated */
        "\xe6\x97",             /* truncated */
        "\xc3\x28",             /* bad continuation */
        "\xe6\x28\xa5",
        NULL
    };
    size_t i;

    (void)state;
    for (i = 0; bad[i] != NULL; i++)
        assert_int_equal(api_utf8_len(bad[i], strlen(bad[i])), (size_t)-1);
    assert_int_equal(api_utf8_len("a\0b", 3), (size_t)-1);
    assert_int_equal(api_utf8_len(NULL, 1), (size_t)-1);
    assert_int_equal(api_utf8_len(NULL, 0), 0);
}

static void test_content_type_kinds(void **state)
{
    static const struct { const char *ct; int rc; api_body_kind kind; } c[] = {
        { NULL, 0, API_BODY_FORM },
        { "", 0, API_BODY_FORM },
        { "application/x-www-form-urlencoded", 0, API_BODY_FORM },
        { "Application/X-WWW-Form-URLEncoded", 0, API_BODY_FORM },
        { "application/x-www-form-urlencoded; charset=utf-8", 0, API_BODY_FORM },
        { "application/json", 0, API_BODY_JSON },
        { "APPLICATION/JSON", 0, API_BODY_JSON },
        { "application/json;charset=UTF-8", 0, API_BODY_JSON },
        { "application/json ; charset=\"utf-8\"", 0, API_BODY_JSON },
        { "  application/json  ", 0, API_BODY_JSON },
        { "application/json; foo=bar", 0, API_BODY_JSON },
        { "application/json; charset=iso-8859-1", -1, API_BODY_FORM },
        { "application/json; charset=utf8", -1, API_BODY_FORM },
        { "application/json; charset", -1, API_BODY_FORM },
        { "application/json; =x", -1, API_BODY_FORM },
        { "text/plain", -1, API_BODY_FORM },
        { "multipart/form-data; boundary=x", -1, API_BODY_FORM },
        { "application/jsonx", -1, API_BODY_FORM },
        { "application/json-seq", -1, API_BODY_FORM },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        api_body_kind k = (api_body_kind)99;
        int rc = api_body_kind_from_content_type(c[i].ct, &k);
        if (rc != c[i].rc)
            print_error("content type case %zu\n", i);
        assert_int_equal(rc, c[i].rc);
        if (rc == 0)
            assert_int_equal(k, c[i].kind);
    }
}

static void test_languages_type_values(void **state)
{
    (void)state;
    assert_int_equal(api_languages_type(NULL), 0);
    assert_int_equal(api_languages_type("source"), 0);
    assert_int_equal(api_languages_type("target"), 1);
    assert_int_equal(api_languages_type(""), -1);
    assert_int_equal(api_languages_type("Target"), -1);
    assert_int_equal(api_languages_type("targets"), -1);
}

static void test_encode_translations_exact(void **state)
{
    tg_translation t[2];
    tg_buf b;

    (void)state;
    memset(t, 0, sizeof(t));
    t[0].text = (char *)(uintptr_t)"Hallo \"Welt\"\n\\ </script> \x01";
    t[0].len = strlen(t[0].text);
    memcpy(t[0].detected_source_language, "EN", 3);
    t[1].text = (char *)(uintptr_t)"\xe6\x97\xa5\xe6\x9c\xac";
    t[1].len = 6;
    memcpy(t[1].detected_source_language, "JA", 3);
    tg_buf_init(&b, 4096);
    assert_int_equal(api_encode_translations(t, 2, false, &b), 0);
    assert_string_equal(b.data,
        "{\"translations\":[{\"detected_source_language\":\"EN\","
        "\"text\":\"Hallo \\\"Welt\\\"\\n\\\\ </script> \\u0001\"},"
        "{\"detected_source_language\":\"JA\",\"text\":\"\xe6\x97\xa5\xe6\x9c\xac\"}]}");
    tg_buf_free(&b);
    assert_int_equal(api_encode_translations(t + 1, 1, true, &b), 0);
    assert_string_equal(b.data,
        "{\"translations\":[{\"detected_source_language\":\"JA\","
        "\"text\":\"\xe6\x97\xa5\xe6\x9c\xac\",\"billed_characters\":2}]}");
    tg_buf_free(&b);
    assert_int_equal(api_encode_translations(NULL, 0, false, &b), 0);
    assert_string_equal(b.data, "{\"translations\":[]}");
    tg_buf_free(&b);
}

/* api_json_put_str writes what Jansson's compact dump of json_stringn
 * gives, and refuses what json_stringn refuses: on fixed cases that cover
 * each escape and each kind of bad UTF-8, and on pseudo-random strings from
 * an alphabet weighted towards them. */
static int put_str_matches_jansson(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    char *want = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_malloc_t jm;
    json_free_t jf;
    tg_buf b;
    int rc, ok;

    json_get_alloc_funcs(&jm, &jf);     /* the wiping allocator, see main */

    tg_buf_init(&b, 1u << 20);
    rc = api_json_put_str(&b, s, n);
    if (want == NULL)
        ok = rc == -1 && b.data == NULL;
    else
        ok = rc == 0 && b.data != NULL && strcmp(b.data, want) == 0;
    jf(want);
    json_decref(j);
    tg_buf_free(&b);
    return ok;
}

static void test_json_put_str_matches_jansson(void **state)
{
    static const char *const fixed[] = {
        "", "plain", "\"", "\\", "/", "</script>", "\x7f", "\b\f\n\r\t",
        "\x01\x1f\x0b", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x98\x80",
        "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf",
        "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "\xf5\x80\x80\x80", "\x80", "\xe6\x97", "a\xff", "\xc2",
    };
    static const unsigned char alpha[] = {
        'a', 'Z', ' ', '"', '\\', '/', 0x00, 0x01, 0x08, 0x09, 0x0a, 0x0c, 0x0d,
        0x1f, 0x7f, 0x80, 0xbf, 0xc2, 0xdf, 0xe0, 0xe6, 0xed, 0xef, 0xf0, 0xf4,
        0xf5, 0xff, 0xa0, 0x9f, 0x90, 0x8f,
    };
    unsigned long x = 12345;
    char buf[24];
    size_t i, k, n;

    (void)state;
    for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (!put_str_matches_jansson(fixed[i], strlen(fixed[i])))
            fail_msg("fixed case %zu differs from Jansson", i);
    assert_true(put_str_matches_jansson("a\0b", 3));       /* NUL: \u0000 */
    for (i = 0; i < 200000; i++) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        n = (size_t)(x >> 59) % sizeof(buf);
        for (k = 0; k < n; k++) {
            x = x * 6364136223846793005UL + 1442695040888963407UL;
            buf[k] = (char)alpha[(x >> 33) % sizeof(alpha)];
        }
        if (!put_str_matches_jansson(buf, n))
            fail_msg("random case %zu (length %zu) differs from Jansson", i, n);
    }
}

static void test_encode_translations_refuses_bad_text_and_cap(void **state)
{
    tg_translation t;
    tg_buf b;

    (void)state;
    memset(&t, 0, sizeof(t));
    t.text = (char *)(uintptr_t)"\xc0\xaf";
    t.len = 2;
    tg_buf_init(&b, 4096);
    assert_int_equal(api_encode_translations(&t, 1, false, &b), -1);
    t.text = (char *)(uintptr_t)"a\0b";
    t.len = 3;
    assert_int_equal(api_encode_translations(&t, 1, false, &b), -1);
    t.text = (char *)(uintptr_t)"hello";
    t.len = 5;
    tg_buf_init(&b, 10);
    assert_int_equal(api_encode_translations(&t, 1, false, &b), -1);
    assert_null(b.data);
    tg_buf_free(&b);
}

static void test_encode_error_shapes(void **state)
{
    tg_buf b;

    (void)state;
    tg_buf_init(&b, 4096);
    assert_int_equal(api_encode_error("Bad request. Reason: \"x\"", NULL, NULL, &b), 0);
    assert_string_equal(b.data, "{\"message\":\"Bad request. Reason: \\\"x\\\"\"}");
    tg_buf_free(&b);
    assert_int_equal(api_encode_error("Refused", "policy_refused", "mynumber", &b), 0);
    assert_string_equal(b.data,
        "{\"message\":\"Refused\",\"code\":\"policy_refused\",\"rule\":\"mynumber\"}");
    tg_buf_free(&b);
    assert_int_equal(api_encode_error("x", NULL, "ignored-without-code", &b), 0);
    assert_string_equal(b.data, "{\"message\":\"x\"}");
    tg_buf_free(&b);
    assert_int_equal(api_encode_error("\xff", NULL, NULL, &b), -1);
    tg_buf_free(&b);
}

static void test_strerror_is_total_and_fixed(void **state)
{
    int e;

    (void)state;
    for (e = API_OK; e <= API_ERR_CONTENT_TYPE; e++) {
        const char *s = api_strerror((api_err)e);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
    }
}

static void test_count_chars_sums_code_points(void **state)
{
    tg_translate_req r;
    static const char body[] = "text=%E6%97%A5%E6%9C%AC&text=abc&text=&target_lang=de";

    (void)state;
    assert_int_equal(api_parse_translate(API_BODY_FORM, body, strlen(body), &r, NULL), API_OK);
    assert_int_equal(r.n_texts, 3);
    assert_int_equal(api_count_chars(&r), 5);
    api_translate_req_free(&r);
    assert_null(r.texts);
    assert_int_equal(api_count_chars(NULL), 0);
}

static void test_fifty_texts_ok_fifty_one_not(void **state)
{
    tg_translate_req r;
    tg_buf b;
    const char *field;
    int i;

    (void)state;
    tg_buf_init(&b, 1 << 16);
    assert_int_equal(tg_buf_adds(&b, "target_lang=DE"), 0);
    for (i = 0; i < 50; i++)
        assert_int_equal(tg_buf_adds(&b, "&text=x"), 0);
    assert_int_equal(api_parse_translate(API_BODY_FORM, b.data, b.len, &r, &field), API_OK);
    assert_int_equal(r.n_texts, 50);
    api_translate_req_free(&r);
    assert_int_equal(tg_buf_adds(&b, "&text=y"), 0);
    assert_int_equal(api_parse_translate(API_BODY_FORM, b.data, b.len, &r, &field),
                     API_ERR_TOO_MANY_TEXTS);
    assert_string_equal(field, "text");
    tg_buf_free(&b);
}

static void test_unknown_field_name_is_sanitised(void **state)
{
    tg_translate_req r;
    const char *field;
    static const char long_name[] = "text=a&target_lang=DE&"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1";
    static const char odd_name[] = "text=a&%3Cscript%3E=1";
    static const char json_odd[] = "{\"text\":\"a\",\"a b\":1}";

    (void)state;
    assert_int_equal(api_parse_translate(API_BODY_FORM, long_name, strlen(long_name), &r, &field),
                     API_ERR_UNKNOWN_FIELD);
    assert_null(field);
    assert_int_equal(api_parse_translate(API_BODY_FORM, odd_name, strlen(odd_name), &r, &field),
                     API_ERR_UNKNOWN_FIELD);
    assert_null(field);
    assert_int_equal(api_parse_translate(API_BODY_JSON, json_odd, strlen(json_odd), &r, &field),
                     API_ERR_UNKNOWN_FIELD);
    assert_null(field);
}

static void test_body_is_not_read_past_len(void **state)
{
    tg_translate_req r;
    const char *field;
    /* Only "text=a&target_lang=DE" is the body; the rest is other memory. */
    static const char mem[] = "text=a&target_lang=DE&bogus=%zz";

    (void)state;
    assert_int_equal(api_parse_translate(API_BODY_FORM, mem, 21, &r, &field), API_OK);
    assert_string_equal(r.target_lang, "DE");
    api_translate_req_free(&r);
    assert_int_equal(api_parse_translate(API_BODY_FORM, mem, 5, &r, &field),
                     API_ERR_MISSING_TARGET);
    assert_int_equal(api_parse_translate(API_BODY_FORM, NULL, 0, &r, &field),
                     API_ERR_MISSING_TEXT);
    assert_int_equal(api_parse_translate(API_BODY_JSON, NULL, 0, &r, &field),
                     API_ERR_BAD_JSON);
}

static void test_lang_code_valid(void **state)
{
    (void)state;
    assert_true(api_lang_code_valid("EN", 2));
    assert_true(api_lang_code_valid("ast", 3));
    assert_true(api_lang_code_valid("zh-Hans", 7));
    assert_true(api_lang_code_valid("es-419", 6));
    assert_false(api_lang_code_valid("E", 1));
    assert_false(api_lang_code_valid("ENGL", 4));
    assert_false(api_lang_code_valid("EN-", 3));
    assert_false(api_lang_code_valid("EN-G", 4));
    assert_false(api_lang_code_valid("EN-GBXYZ", 8));
    assert_false(api_lang_code_valid("EN_GB", 5));
    assert_false(api_lang_code_valid("EN-GB-X", 7));
    assert_false(api_lang_code_valid("", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_requests_parse_to_expected),
        cmocka_unit_test(test_invalid_requests_fail_with_expected_code_and_field),
        cmocka_unit_test(test_utf8_len_counts_code_points),
        cmocka_unit_test(test_utf8_len_rejects_invalid_sequences),
        cmocka_unit_test(test_content_type_kinds),
        cmocka_unit_test(test_languages_type_values),
        cmocka_unit_test(test_encode_translations_exact),
        cmocka_unit_test(test_json_put_str_matches_jansson),
        cmocka_unit_test(test_encode_translations_refuses_bad_text_and_cap),
        cmocka_unit_test(test_encode_error_shapes),
        cmocka_unit_test(test_strerror_is_total_and_fixed),
        cmocka_unit_test(test_count_chars_sums_code_points),
        cmocka_unit_test(test_fifty_texts_ok_fifty_one_not),
        cmocka_unit_test(test_unknown_field_name_is_sanitised),
        cmocka_unit_test(test_body_is_not_read_past_len),
        cmocka_unit_test(test_lang_code_valid),
    };
    /* As the daemon does: every test runs with the wiping allocator. */
    api_json_wipe_on_free();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
