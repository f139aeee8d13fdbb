/*
 * adapter_deepl: DeepL API v2 (and vendors that copy it).
 *
 * One JSON POST carries every text; the reply must carry exactly as many
 * translations back.  Vendor bytes are never passed to the terminal as they
 * came: replies are parsed, checked and re-encoded.
 */
#include "adapter.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define DEEPL_NAME_MAX 256      /* a language name longer than this is junk */
#define DEEPL_MAX_LANGUAGES 1000

static int key_ok(const char *key)
{
    const unsigned char *p = (const unsigned char *)key;

    if (*p == '\0')
        return 0;
    for (; *p != '\0'; p++)
        if (*p < 0x21 || *p > 0x7E)
            return 0;           /* no spaces, controls (header injection) */
    return 1;
}

static adapter_err add_auth(adapter_http *h, const char *vendor_key)
{
    tg_buf v;
    adapter_err rc = ADAPTER_OK;

    if (vendor_key == NULL)
        return ADAPTER_OK;
    if (!key_ok(vendor_key))
        return ADAPTER_ERR_BAD_KEY;
    tg_buf_init(&v, 64u * 1024u);
    if (tg_buf_adds(&v, "DeepL-Auth-Key ") != 0 ||
        tg_buf_adds(&v, vendor_key) != 0)
        return ADAPTER_ERR_NOMEM;
    if (adapter_http_add_header(h, "Authorization", v.data) != 0)
        rc = ADAPTER_ERR_NOMEM;
    tg_buf_free(&v);
    return rc;
}

/* The vendor body is written directly, key by key in the order and with
 * the bytes Jansson's compact dump of the same object gave (the unit tests
 * compare): no object tree per request.  Each returns 0 or -1 (memory, the
 * body's cap, or a string that is not UTF-8); out is then empty. */
static int put_key(tg_buf *out, const char *key)
{
    return tg_buf_add(out, ",\"", 2) == 0 && tg_buf_adds(out, key) == 0 &&
           tg_buf_add(out, "\":", 2) == 0 ? 0 : -1;
}

static int put_str(tg_buf *out, const char *key, const char *v)
{
    if (v == NULL)
        return 0;
    return put_key(out, key) == 0 && api_json_put_str(out, v, strlen(v)) == 0 ? 0 : -1;
}

static int put_bool(tg_buf *out, const char *key, int v)
{
    if (v < 0)
        return 0;
    return put_key(out, key) == 0 && tg_buf_adds(out, v ? "true" : "false") == 0 ? 0 : -1;
}

/* A stored tag list is comma-joined and already validated; DeepL's JSON API
 * wants an array. */
static int put_tags(tg_buf *out, const char *key, const char *list)
{
    const char *p = list;

    if (list == NULL)
        return 0;
    if (put_key(out, key) != 0 || tg_buf_add(out, "[", 1) != 0)
        return -1;
    while (*p != '\0') {
        size_t n = strcspn(p, ",");

        if ((p != list && tg_buf_add(out, ",", 1) != 0) ||
            api_json_put_str(out, p, n) != 0)
            return -1;
        p += n;
        if (*p == ',')
            p++;
    }
    return tg_buf_add(out, "]", 1);
}

adapter_err adapter_deepl_build_translate(const tg_upstream_conf *up,
                                          const char *vendor_key,
                                          const tg_translate_req *req,
                                          adapter_http **out, size_t *n)
{
    adapter_http *h;
    adapter_err rc = ADAPTER_ERR_NOMEM;
    tg_buf *b;
    size_t i;

    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return ADAPTER_ERR_NOMEM;
    if (adapter_http_init(h, up, "/v2/translate", ADAPTER_MAX_REQUEST_BODY) != 0)
        goto fail;
    h->content_type = "application/json";
    rc = add_auth(h, vendor_key);
    if (rc != ADAPTER_OK)
        goto fail;
    rc = ADAPTER_ERR_NOMEM;

    b = &h->body;
    if (tg_buf_adds(b, "{\"text\":[") != 0)
        goto fail;
    for (i = 0; i < req->n_texts; i++)
        if ((i > 0 && tg_buf_add(b, ",", 1) != 0) ||
            api_json_put_str(b, req->texts[i], req->text_lens[i]) != 0)
            goto fail;
    if (tg_buf_add(b, "]", 1) != 0 ||
        put_str(b, "target_lang", req->target_lang) != 0 ||
        put_str(b, "source_lang", req->source_lang) != 0 ||
        put_str(b, "context", req->context) != 0 ||
        put_str(b, "split_sentences", req->split_sentences) != 0 ||
        put_bool(b, "preserve_formatting", req->preserve_formatting) != 0 ||
        put_str(b, "formality", req->formality) != 0 ||
        put_str(b, "glossary_id", req->glossary_id) != 0 ||
        put_str(b, "tag_handling", req->tag_handling) != 0 ||
        put_bool(b, "outline_detection", req->outline_detection) != 0 ||
        put_tags(b, "non_splitting_tags", req->non_splitting_tags) != 0 ||
        put_tags(b, "splitting_tags", req->splitting_tags) != 0 ||
        put_tags(b, "ignore_tags", req->ignore_tags) != 0 ||
        put_str(b, "model_type", req->model_type) != 0 ||
        put_bool(b, "show_billed_characters", req->show_billed_characters) != 0 ||
        tg_buf_add(b, "}", 1) != 0)
        goto fail;
    *out = h;
    *n = 1;
    return ADAPTER_OK;
fail:
    adapter_http_array_free(h, 1);
    return rc;
}

/* Map a vendor's HTTP status; ADAPTER_OK for 2xx. */
static adapter_err deepl_status(long status)
{
    if (status == 456)
        return ADAPTER_ERR_VENDOR_QUOTA;
    if (status < 200 || status > 299)
        return ADAPTER_ERR_VENDOR_STATUS;
    return ADAPTER_OK;
}

static json_t *load_reply(const adapter_reply *r)
{
    if (r->body == NULL || r->len == 0)
        return NULL;
    return json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, NULL);
}

/* Copy a vendor language code into a fixed field, upper-cased, after checking
 * it looks like one. */
static int copy_lang(char *dst, size_t dstsz, const char *src, size_t len)
{
    size_t i;

    if (len >= dstsz || !api_lang_code_valid(src, len))
        return -1;
    for (i = 0; i < len; i++)
        dst[i] = (src[i] >= 'a' && src[i] <= 'z') ?
                 (char)(src[i] - 'a' + 'A') : src[i];
    dst[len] = '\0';
    return 0;
}

adapter_err adapter_deepl_parse_translate(const tg_translate_req *req,
                                          const adapter_reply *replies,
                                          size_t n, tg_translation **out)
{
    json_t *root = NULL, *arr, *e;
    tg_translation *t = NULL;
    adapter_err rc;
    size_t i;

    if (n != 1)
        return ADAPTER_ERR_BAD_REPLY;
    rc = deepl_status(replies[0].status);
    if (rc != ADAPTER_OK)
        return rc;
    rc = ADAPTER_ERR_BAD_REPLY;
    root = load_reply(&replies[0]);
    if (!json_is_object(root))
        goto fail;
    arr = json_object_get(root, "translations");
    if (!json_is_array(arr))
        goto fail;
    if (json_array_size(arr) != req->n_texts) {
        rc = ADAPTER_ERR_COUNT_MISMATCH;
        goto fail;
    }
    t = calloc(req->n_texts, sizeof(*t));
    if (t == NULL) {
        rc = ADAPTER_ERR_NOMEM;
        goto fail;
    }
    json_array_foreach(arr, i, e) {
        json_t *text = json_object_get(e, "text");
        json_t *lang = json_object_get(e, "detected_source_language");
        size_t len;

        if (!json_is_object(e) || !json_is_string(text))
            goto fail;
        len = json_string_length(text);
        if (api_utf8_len(json_string_value(text), len) == (size_t)-1)
            goto fail;
        if (lang != NULL) {
            if (!json_is_string(lang) ||
                copy_lang(t[i].detected_source_language,
                          sizeof(t[i].detected_source_language),
                          json_string_value(lang),
                          json_string_length(lang)) != 0)
                goto fail;
        } else if (req->source_lang != NULL) {
            /* Some DeepL look-alikes omit it; the terminal said what it sent. */
            if (adapter_primary_lang(req->source_lang,
                                     t[i].detected_source_language,
                                     sizeof(t[i].detected_source_language)) != 0)
                goto fail;
        }
        t[i].text = malloc(len + 1);
        if (t[i].text == NULL) {
            rc = ADAPTER_ERR_NOMEM;
            goto fail;
        }
        memcpy(t[i].text, json_string_value(text), len + 1);
        t[i].len = len;
    }
    json_decref(root);
    *out = t;
    return ADAPTER_OK;
fail:
    adapter_translations_free(t, t != NULL ? req->n_texts : 0);
    json_decref(root);
    return rc;
}

adapter_err adapter_deepl_build_languages(const tg_upstream_conf *up,
                                          const char *vendor_key, int type,
                                          adapter_http *out)
{
    adapter_err rc;

    if (adapter_http_init(out, up, type == 1 ? "/v2/languages?type=target"
                                             : "/v2/languages?type=source",
                          0) != 0) {
        adapter_http_free(out);
        return ADAPTER_ERR_NOMEM;
    }
    rc = add_auth(out, vendor_key);
    if (rc != ADAPTER_OK)
        adapter_http_free(out);
    return rc;
}

adapter_err adapter_deepl_parse_languages(int type, const adapter_reply *reply,
                                          tg_buf *out)
{
    json_t *root = NULL, *res = NULL, *e;
    adapter_err rc;
    size_t i;

    rc = deepl_status(reply->status);
    if (rc != ADAPTER_OK)
        return rc;
    rc = ADAPTER_ERR_BAD_REPLY;
    root = load_reply(reply);
    if (!json_is_array(root) || json_array_size(root) > DEEPL_MAX_LANGUAGES)
        goto fail;
    res = json_array();
    if (res == NULL) {
        rc = ADAPTER_ERR_NOMEM;
        goto fail;
    }
    json_array_foreach(root, i, e) {
        json_t *lang = json_object_get(e, "language");
        json_t *name = json_object_get(e, "name");
        json_t *fml = json_object_get(e, "supports_formality");
        json_t *o;
        char code[16];

        if (!json_is_object(e) || !json_is_string(lang) || !json_is_string(name))
            goto fail;
        if (copy_lang(code, sizeof(code), json_string_value(lang),
                      json_string_length(lang)) != 0)
            goto fail;
        if (json_string_length(name) == 0 ||
            json_string_length(name) > DEEPL_NAME_MAX)
            goto fail;
        if (type == 1 && !json_is_boolean(fml))
            goto fail;
        o = json_object();
        if (o == NULL || json_array_append_new(res, o) != 0 ||
            json_object_set_new(o, "language", json_string(code)) != 0 ||
            json_object_set_new(o, "name",
                json_stringn(json_string_value(name),
                             json_string_length(name))) != 0 ||
            (type == 1 && json_object_set_new(o, "supports_formality",
                              json_boolean(json_is_true(fml))) != 0)) {
            rc = ADAPTER_ERR_NOMEM;
            goto fail;
        }
    }
    if (api_json_to_buf(res, out) != 0) {
        rc = ADAPTER_ERR_NOMEM;
        goto fail;
    }
    rc = ADAPTER_OK;
fail:
    json_decref(res);
    json_decref(root);
    return rc;
}
