/*
 * adapter_apertium: Apertium APY, the open-source rule-based MT server.
 *
 * APY translates one text per POST /translate (form: langpair, q,
 * markUnknown) and cannot detect the source language, so the request or the
 * upstream's default_source_lang must name it.  It speaks ISO 639-3 codes;
 * the table below maps DeepL codes to them and back.
 */
#include "adapter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define APY_MAX_PAIRS 10000

typedef struct apy_lang {
    const char *deepl;      /* DeepL-style primary code, upper case */
    const char *iso3;       /* what APY calls it */
    const char *name;       /* English name for /v2/languages */
} apy_lang;

/* Sorted by DeepL code: /v2/languages lists in this order. */
static const apy_lang apy_langs[] = {
    { "AF",  "afr", "Afrikaans" },
    { "AN",  "arg", "Aragonese" },
    { "AR",  "ara", "Arabic" },
    { "AST", "ast", "Asturian" },
    { "BE",  "bel", "Belarusian" },
    { "BG",  "bul", "Bulgarian" },
    { "BR",  "bre", "Breton" },
    { "CA",  "cat", "Catalan" },
    { "CS",  "ces", "Czech" },
    { "CY",  "cym", "Welsh" },
    { "DA",  "dan", "Danish" },
    { "DE",  "deu", "German" },
    { "EL",  "ell", "Greek" },
    { "EN",  "eng", "English" },
    { "EO",  "epo", "Esperanto" },
    { "ES",  "spa", "Spanish" },
    { "ET",  "est", "Estonian" },
    { "EU",  "eus", "Basque" },
    { "FI",  "fin", "Finnish" },
    { "FR",  "fra", "French" },
    { "GA",  "gle", "Irish" },
    { "GL",  "glg", "Galician" },
    { "HE",  "heb", "Hebrew" },
    { "HI",  "hin", "Hindi" },
    { "HU",  "hun", "Hungarian" },
    { "ID",  "ind", "Indonesian" },
    { "IS",  "isl", "Icelandic" },
    { "IT",  "ita", "Italian" },
    { "JA",  "jpn", "Japanese" },
    { "KK",  "kaz", "Kazakh" },
    { "KO",  "kor", "Korean" },
    { "LT",  "lit", "Lithuanian" },
    { "LV",  "lav", "Latvian" },
    { "MK",  "mkd", "Macedonian" },
    { "MT",  "mlt", "Maltese" },
    { "NB",  "nob", "Norwegian (Bokmål)" },
    { "NL",  "nld", "Dutch" },
    { "NN",  "nno", "Norwegian (Nynorsk)" },
    { "OC",  "oci", "Occitan" },
    { "PL",  "pol", "Polish" },
    { "PT",  "por", "Portuguese" },
    { "RO",  "ron", "Romanian" },
    { "RU",  "rus", "Russian" },
    { "SC",  "srd", "Sardinian" },
    { "SE",  "sme", "Northern Sami" },
    { "SK",  "slk", "Slovak" },
    { "SL",  "slv", "Slovenian" },
    { "SQ",  "sqi", "Albanian" },
    { "SV",  "swe", "Swedish" },
    { "TR",  "tur", "Turkish" },
    { "TT",  "tat", "Tatar" },
    { "UK",  "ukr", "Ukrainian" },
    { "UR",  "urd", "Urdu" },
    { "ZH",  "zho", "Chinese" },
};

#define N_APY_LANGS (sizeof(apy_langs) / sizeof(apy_langs[0]))

static int lookup_deepl(const char *code)
{
    char prim[8];
    size_t i;

    if (adapter_primary_lang(code, prim, sizeof(prim)) != 0)
        return -1;
    for (i = 0; i < N_APY_LANGS; i++)
        if (strcmp(apy_langs[i].deepl, prim) == 0)
            return (int)i;
    return -1;
}

const char *adapter_apertium_lang(const char *deepl_code)
{
    int i = lookup_deepl(deepl_code);

    return i < 0 ? NULL : apy_langs[i].iso3;
}

const char *adapter_lang_name(const char *deepl_code)
{
    int i = lookup_deepl(deepl_code);

    return i < 0 ? NULL : apy_langs[i].name;
}

/* APY codes: "eng", variants "eng_US", and with include_deprecated_codes
 * also two-letter "en" / "en_US".  The variant does not change the DeepL
 * code we report. */
static int lookup_apy(const char *code, size_t len)
{
    size_t n = 0, i, k;

    while (n < len && code[n] != '_')
        n++;
    if (n < 2 || n > 3)
        return -1;
    for (i = 0; i < N_APY_LANGS; i++) {
        const char *cand = n == 3 ? apy_langs[i].iso3 : apy_langs[i].deepl;
        if (strlen(cand) != n)
            continue;
        for (k = 0; k < n; k++) {
            char c = code[k];
            char d = cand[k];
            if (d >= 'A' && d <= 'Z')
                d = (char)(d - 'A' + 'a');
            if (c != d)
                break;
        }
        if (k == n)
            return (int)i;
    }
    return -1;
}

const char *adapter_apertium_to_deepl(const char *apertium_code)
{
    int i;

    if (apertium_code == NULL)
        return NULL;
    i = lookup_apy(apertium_code, strlen(apertium_code));
    return i < 0 ? NULL : apy_langs[i].deepl;
}

static const char *source_of(const tg_upstream_conf *up,
                             const tg_translate_req *req)
{
    if (req->source_lang != NULL)
        return req->source_lang;
    return up->default_source_lang;
}

adapter_err adapter_apertium_build_translate(const tg_upstream_conf *up,
                                             const tg_translate_req *req,
                                             adapter_http **out, size_t *n)
{
    const char *src = source_of(up, req), *a_src, *a_tgt;
    adapter_http *h = NULL;
    char pair[16];
    size_t i, built = 0;
    int pl;

    if (src == NULL)
        return ADAPTER_ERR_NEED_SOURCE_LANG;
    a_src = adapter_apertium_lang(src);
    a_tgt = adapter_apertium_lang(req->target_lang);
    if (a_src == NULL || a_tgt == NULL)
        return ADAPTER_ERR_UNSUPPORTED_LANG;
    pl = snprintf(pair, sizeof(pair), "%s|%s", a_src, a_tgt);
    if (pl < 0 || (size_t)pl >= sizeof(pair))
        return ADAPTER_ERR_UNSUPPORTED_LANG;

    h = calloc(req->n_texts, sizeof(*h));
    if (h == NULL)
        return ADAPTER_ERR_NOMEM;
    for (i = 0; i < req->n_texts; i++) {
        adapter_http *x = &h[i];

        built = i + 1;
        if (adapter_http_init(x, up, "/translate", ADAPTER_MAX_REQUEST_BODY) != 0)
            goto fail;
        x->content_type = "application/x-www-form-urlencoded";
        if (adapter_form_add(&x->body, "langpair", pair, (size_t)pl) != 0 ||
            adapter_form_add(&x->body, "q", req->texts[i],
                             req->text_lens[i]) != 0 ||
            adapter_form_add(&x->body, "markUnknown", "no", 2) != 0)
            goto fail;
    }
    *out = h;
    *n = req->n_texts;
    return ADAPTER_OK;
fail:
    adapter_http_array_free(h, built);
    return ADAPTER_ERR_NOMEM;
}

static json_t *load_reply(const adapter_reply *r)
{
    if (r->body == NULL || r->len == 0)
        return NULL;
    return json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, NULL);
}

/* APY answers 400 {"status":"error",...,"explanation":"That pair is not
 * installed"} for a pair it lacks; that is the terminal's choice of
 * languages, not a vendor failure.  The text is matched, never forwarded. */
static adapter_err error_reply(const adapter_reply *r)
{
    json_t *root, *expl;
    adapter_err rc = ADAPTER_ERR_VENDOR_STATUS;

    if (r->status != 400)
        return rc;
    root = load_reply(r);
    expl = json_object_get(root, "explanation");
    if (json_is_string(expl) &&
        strcmp(json_string_value(expl), "That pair is not installed") == 0)
        rc = ADAPTER_ERR_UNSUPPORTED_LANG;
    json_decref(root);
    return rc;
}

/* responseStatus must be the integer 200. */
static adapter_err check_status_field(json_t *root)
{
    json_t *st = json_object_get(root, "responseStatus");

    if (!json_is_integer(st))
        return ADAPTER_ERR_BAD_REPLY;
    if (json_integer_value(st) != 200)
        return ADAPTER_ERR_VENDOR_STATUS;
    return ADAPTER_OK;
}

adapter_err adapter_apertium_parse_translate(const tg_upstream_conf *up,
                                             const tg_translate_req *req,
                                             const adapter_reply *replies,
                                             size_t n, tg_translation **out)
{
    tg_translation *t = NULL;
    json_t *root = NULL;
    char detected[16];
    adapter_err rc;
    size_t i;

    if (n != req->n_texts)
        return ADAPTER_ERR_COUNT_MISMATCH;
    if (adapter_primary_lang(source_of(up, req), detected,
                             sizeof(detected)) != 0)
        return ADAPTER_ERR_NEED_SOURCE_LANG;
    /* Statuses first: a refusal anywhere decides the outcome, whatever the
     * order the exchanges completed in. */
    for (i = 0; i < n; i++)
        if (replies[i].status < 200 || replies[i].status > 299)
            return error_reply(&replies[i]);
    t = calloc(n, sizeof(*t));
    if (t == NULL)
        return ADAPTER_ERR_NOMEM;
    for (i = 0; i < n; i++) {
        json_t *data, *text;
        size_t len;

        rc = ADAPTER_ERR_BAD_REPLY;
        root = load_reply(&replies[i]);
        if (!json_is_object(root))
            goto fail;
        rc = check_status_field(root);
        if (rc != ADAPTER_OK)
            goto fail;
        rc = ADAPTER_ERR_BAD_REPLY;
        data = json_object_get(root, "responseData");
        text = json_object_get(data, "translatedText");
        if (!json_is_object(data) || !json_is_string(text))
            goto fail;
        len = json_string_length(text);
        if (api_utf8_len(json_string_value(text), len) == (size_t)-1)
            goto fail;
        t[i].text = malloc(len + 1);
        if (t[i].text == NULL) {
            rc = ADAPTER_ERR_NOMEM;
            goto fail;
        }
        memcpy(t[i].text, json_string_value(text), len + 1);
        t[i].len = len;
        memcpy(t[i].detected_source_language, detected, sizeof(detected));
        json_decref(root);
        root = NULL;
    }
    *out = t;
    return ADAPTER_OK;
fail:
    json_decref(root);
    adapter_translations_free(t, n);
    return rc;
}

adapter_err adapter_apertium_build_languages(const tg_upstream_conf *up,
                                             adapter_http *out)
{
    if (adapter_http_init(out, up, "/listPairs", 0) != 0) {
        adapter_http_free(out);
        return ADAPTER_ERR_NOMEM;
    }
    return ADAPTER_OK;
}

adapter_err adapter_apertium_parse_languages(int type,
                                             const adapter_reply *reply,
                                             tg_buf *out)
{
    json_t *root = NULL, *pairs, *e, *res = NULL;
    unsigned char seen[N_APY_LANGS];
    adapter_err rc;
    size_t i;

    if (reply->status < 200 || reply->status > 299)
        return ADAPTER_ERR_VENDOR_STATUS;
    memset(seen, 0, sizeof(seen));
    rc = ADAPTER_ERR_BAD_REPLY;
    root = load_reply(reply);
    if (!json_is_object(root))
        goto fail;
    rc = check_status_field(root);
    if (rc != ADAPTER_OK)
        goto fail;
    rc = ADAPTER_ERR_BAD_REPLY;
    pairs = json_object_get(root, "responseData");
    if (!json_is_array(pairs) || json_array_size(pairs) > APY_MAX_PAIRS)
        goto fail;
    json_array_foreach(pairs, i, e) {
        json_t *s = json_object_get(e, "sourceLanguage");
        json_t *t = json_object_get(e, "targetLanguage");
        json_t *mine = type == 1 ? t : s;
        int k;

        if (!json_is_object(e) || !json_is_string(s) || !json_is_string(t))
            goto fail;
        /* Codes outside the table are engines we cannot name: skipped. */
        k = lookup_apy(json_string_value(mine), json_string_length(mine));
        if (k >= 0)
            seen[k] = 1;
    }
    rc = ADAPTER_ERR_NOMEM;
    res = json_array();
    if (res == NULL)
        goto fail;
    for (i = 0; i < N_APY_LANGS; i++) {
        json_t *o;

        if (!seen[i])
            continue;
        o = json_object();
        if (o == NULL || json_array_append_new(res, o) != 0 ||
            json_object_set_new(o, "language",
                                json_string(apy_langs[i].deepl)) != 0 ||
            json_object_set_new(o, "name", json_string(apy_langs[i].name)) != 0 ||
            (type == 1 && json_object_set_new(o, "supports_formality",
                                              json_false()) != 0))
            goto fail;
    }
    if (api_json_to_buf(res, out) != 0)
        goto fail;
    rc = ADAPTER_OK;
fail:
    json_decref(res);
    json_decref(root);
    return rc;
}
