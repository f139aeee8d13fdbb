/*
 * libFuzzer harness for the API codec and the vendor reply parsers.
 *
 * The first input byte picks the target, the rest is the input:
 *   0 form body, 1 JSON body (request parsing, then round-tripping what was
 *   accepted through both adapters' request builders), 2 DeepL translate
 *   reply, 3 Apertium translate replies (two, NUL-separated), 4 DeepL languages reply, 5 Apertium
 *   listPairs reply, 6 Content-Type header value.
 * Properties checked beyond "no crash": an accepted request satisfies the
 * documented invariants and the DeepL vendor body built from it is JSON
 * holding exactly its texts; a parsed reply has exactly n_texts valid UTF-8
 * translations that encode back to JSON holding exactly those texts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "adapter.h"
#include "api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(const tg_translate_req *r)
{
    size_t i;

    if (r->n_texts == 0 || r->n_texts > API_MAX_TEXTS || r->target_lang == NULL)
        abort();
    for (i = 0; i < r->n_texts; i++)
        if (api_utf8_len(r->texts[i], r->text_lens[i]) == (size_t)-1 ||
            r->texts[i][r->text_lens[i]] != '\0')
            abort();
    if (!api_lang_code_valid(r->target_lang, strlen(r->target_lang)))
        abort();
}

static void build_both(const tg_translate_req *r)
{
    static const tg_upstream_conf base;
    tg_upstream_conf up = base;
    adapter_http *h = NULL;
    size_t n = 0;

    up.base_path = (char *)(uintptr_t)"/p";
    up.default_source_lang = (char *)(uintptr_t)"EN";
    up.adapter = TG_ADAPTER_DEEPL;
    if (adapter_build_translate(&up, "key:fx", r, &h, &n) == ADAPTER_OK) {
        /* The body is written without Jansson: it must still be JSON that
         * carries exactly the request's texts. */
        json_t *b = json_loadb(h[0].body.data, h[0].body.len, 0, NULL);
        json_t *texts = json_object_get(b, "text");

        if (n != 1 || json_array_size(texts) != r->n_texts)
            abort();
        for (size_t i = 0; i < r->n_texts; i++) {
            json_t *t = json_array_get(texts, i);

            if (json_string_length(t) != r->text_lens[i] ||
                (r->text_lens[i] > 0 &&
                 memcmp(json_string_value(t), r->texts[i], r->text_lens[i]) != 0))
                abort();
        }
        json_decref(b);
        adapter_http_array_free(h, n);
    }
    up.adapter = TG_ADAPTER_APERTIUM;
    if (adapter_build_translate(&up, NULL, r, &h, &n) == ADAPTER_OK) {
        if (n != r->n_texts)
            abort();
        adapter_http_array_free(h, n);
    }
}

static void fuzz_request(api_body_kind kind, const char *p, size_t n)
{
    tg_translate_req r;
    const char *field;

    if (api_parse_translate(kind, p, n, &r, &field) != API_OK)
        return;
    check_request(&r);
    (void)api_count_chars(&r);
    build_both(&r);
    api_translate_req_free(&r);
}

static void fuzz_reply(tg_adapter_kind kind, const char *p, size_t n)
{
    static const tg_upstream_conf base;
    static const char form[] = "text=a&text=b&source_lang=EN&target_lang=ES";
    tg_upstream_conf up = base;
    tg_translate_req req;
    tg_translation *t = NULL;
    adapter_reply rep[2];
    tg_buf out;
    const char *nul = memchr(p, '\0', n);
    size_t i, cut = nul != NULL ? (size_t)(nul - p) : n / 2;

    if (api_parse_translate(API_BODY_FORM, form, sizeof(form) - 1, &req, NULL) != API_OK)
        abort();
    up.adapter = kind;
    rep[0].status = 200;
    rep[0].body = p;
    rep[0].len = n;
    if (kind == TG_ADAPTER_APERTIUM) {
        /* Two exchanges: the input holds both replies, split at the first
         * NUL (JSON cannot contain one) or else in the middle. */
        rep[0].len = cut;
        rep[1].status = 200;
        rep[1].body = p + cut + (nul != NULL);
        rep[1].len = n - cut - (nul != NULL);
    }
    if (adapter_parse_translate(&up, &req, rep, kind == TG_ADAPTER_APERTIUM ? 2 : 1,
                                &t) == ADAPTER_OK) {
        for (i = 0; i < req.n_texts; i++)
            if (api_utf8_len(t[i].text, t[i].len) == (size_t)-1)
                abort();
        tg_buf_init(&out, 1u << 22);
        if (api_encode_translations(t, req.n_texts, true, &out) != 0)
            abort();
        {
            json_t *b = json_loadb(out.data, out.len, 0, NULL);
            json_t *arr = json_object_get(b, "translations");

            if (json_array_size(arr) != req.n_texts)
                abort();
            for (i = 0; i < req.n_texts; i++) {
                json_t *x = json_object_get(json_array_get(arr, i), "text");

                if (!json_is_string(x) || json_string_length(x) != t[i].len ||
                    (t[i].len > 0 &&
                     memcmp(json_string_value(x), t[i].text, t[i].len) != 0))
                    abort();
            }
            json_decref(b);
        }
        tg_buf_free(&out);
        adapter_translations_free(t, req.n_texts);
    }
    api_translate_req_free(&req);
}

static void fuzz_languages(tg_adapter_kind kind, const char *p, size_t n)
{
    static const tg_upstream_conf base;
    tg_upstream_conf up = base;
    adapter_reply rep;
    tg_buf out;
    int type;

    up.adapter = kind;
    rep.status = 200;
    rep.body = p;
    rep.len = n;
    for (type = 0; type < 2; type++) {
        tg_buf_init(&out, ADAPTER_MAX_LANGUAGES_BODY);
        (void)adapter_parse_languages(&up, type, &rep, &out);
        tg_buf_free(&out);
    }
}

static void fuzz_content_type(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    api_body_kind k;

    if (s == NULL)
        return;
    memcpy(s, p, n);
    s[n] = '\0';
    (void)api_body_kind_from_content_type(s, &k);
    (void)api_languages_type(s);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p;
    size_t n;

    if (size < 1)
        return 0;
    p = (const char *)data + 1;
    n = size - 1;
    switch (data[0] % 7) {
    case 0: fuzz_request(API_BODY_FORM, p, n); break;
    case 1: fuzz_request(API_BODY_JSON, p, n); break;
    case 2: fuzz_reply(TG_ADAPTER_DEEPL, p, n); break;
    case 3: fuzz_reply(TG_ADAPTER_APERTIUM, p, n); break;
    case 4: fuzz_languages(TG_ADAPTER_DEEPL, p, n); break;
    case 5: fuzz_languages(TG_ADAPTER_APERTIUM, p, n); break;
    default: fuzz_content_type(p, n); break;
    }
    return 0;
}
