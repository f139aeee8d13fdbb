/*
 * adapter: dispatch on the upstream's adapter kind, plus the helpers the
 * vendor codecs share (see adapter.h).
 */
#include "adapter.h"

#include <stdlib.h>
#include <string.h>

const char *adapter_strerror(adapter_err e)
{
    switch (e) {
    case ADAPTER_OK:                   return "success";
    case ADAPTER_ERR_NOMEM:            return "out of memory";
    case ADAPTER_ERR_UNSUPPORTED_LANG: return "language or language pair not supported by the translation engine";
    case ADAPTER_ERR_NEED_SOURCE_LANG: return "source_lang is required by the translation engine";
    case ADAPTER_ERR_BAD_REPLY:        return "translation engine sent a malformed reply";
    case ADAPTER_ERR_COUNT_MISMATCH:   return "translation engine returned a different number of texts";
    case ADAPTER_ERR_VENDOR_STATUS:    return "translation engine reported an error";
    case ADAPTER_ERR_VENDOR_QUOTA:     return "translation engine quota exceeded";
    case ADAPTER_ERR_BAD_KEY:          return "vendor key cannot be sent in a header";
    }
    return "unknown error";
}

void adapter_http_free(adapter_http *h)
{
    size_t i;

    if (h == NULL)
        return;
    free(h->path);
    h->path = NULL;
    h->content_type = NULL;
    tg_buf_free(&h->body);
    for (i = 0; i < ADAPTER_MAX_HEADERS; i++) {
        tg_free_secret(h->headers[i]);
        h->headers[i] = NULL;
    }
    h->n_headers = 0;
}

void adapter_http_array_free(adapter_http *h, size_t n)
{
    size_t i;

    if (h == NULL)
        return;
    for (i = 0; i < n; i++)
        adapter_http_free(&h[i]);
    free(h);
}

void adapter_translations_free(tg_translation *t, size_t n)
{
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < n; i++) {
        if (t[i].text != NULL) {
            tg_wipe(t[i].text, t[i].len);
            free(t[i].text);
        }
    }
    tg_wipe(t, n * sizeof(*t));
    free(t);
}

int adapter_http_init(adapter_http *h, const tg_upstream_conf *up,
                      const char *suffix, size_t body_cap)
{
    const char *base = up->base_path != NULL ? up->base_path : "";
    size_t bl = strlen(base), sl = strlen(suffix);

    memset(h, 0, sizeof(*h));
    tg_buf_init(&h->body, body_cap);
    h->path = malloc(bl + sl + 1);
    if (h->path == NULL)
        return -1;
    memcpy(h->path, base, bl);
    memcpy(h->path + bl, suffix, sl + 1);
    return 0;
}

int adapter_http_add_header(adapter_http *h, const char *name,
                            const char *value)
{
    tg_buf line;

    if (h->n_headers >= ADAPTER_MAX_HEADERS)
        return -1;
    tg_buf_init(&line, 64u * 1024u);
    if (tg_buf_adds(&line, name) != 0 || tg_buf_add(&line, ": ", 2) != 0 ||
        tg_buf_adds(&line, value) != 0)
        return -1;
    h->headers[h->n_headers++] = tg_buf_steal(&line, NULL);
    return 0;
}

int adapter_form_add(tg_buf *b, const char *name, const char *value,
                     size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    if (b->len > 0 && tg_buf_add(b, "&", 1) != 0)
        return -1;
    if (tg_buf_adds(b, name) != 0 || tg_buf_add(b, "=", 1) != 0)
        return -1;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        char enc[3];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~') {
            if (tg_buf_add(b, &c, 1) != 0)
                return -1;
            continue;
        }
        enc[0] = '%';
        enc[1] = hex[c >> 4];
        enc[2] = hex[c & 15];
        if (tg_buf_add(b, enc, 3) != 0)
            return -1;
    }
    return 0;
}

int adapter_primary_lang(const char *code, char *out, size_t outsz)
{
    size_t i, n;

    if (code == NULL || !api_lang_code_valid(code, strlen(code)))
        return -1;
    n = strcspn(code, "-");
    if (n + 1 > outsz)
        return -1;
    for (i = 0; i < n; i++)
        out[i] = (code[i] >= 'a' && code[i] <= 'z') ?
                 (char)(code[i] - 'a' + 'A') : code[i];
    out[n] = '\0';
    return 0;
}

adapter_err adapter_build_translate(const tg_upstream_conf *up,
                                    const char *vendor_key,
                                    const tg_translate_req *req,
                                    adapter_http **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (req->n_texts == 0 || req->target_lang == NULL)
        return ADAPTER_ERR_BAD_REPLY;   /* not a validated request: a bug */
    switch (up->adapter) {
    case TG_ADAPTER_DEEPL:
        return adapter_deepl_build_translate(up, vendor_key, req, out, n);
    case TG_ADAPTER_APERTIUM:
        return adapter_apertium_build_translate(up, req, out, n);
    }
    return ADAPTER_ERR_UNSUPPORTED_LANG;
}

adapter_err adapter_parse_translate(const tg_upstream_conf *up,
                                    const tg_translate_req *req,
                                    const adapter_reply *replies, size_t n,
                                    tg_translation **out)
{
    *out = NULL;
    if (replies == NULL && n > 0)
        return ADAPTER_ERR_BAD_REPLY;
    switch (up->adapter) {
    case TG_ADAPTER_DEEPL:
        return adapter_deepl_parse_translate(req, replies, n, out);
    case TG_ADAPTER_APERTIUM:
        return adapter_apertium_parse_translate(up, req, replies, n, out);
    }
    return ADAPTER_ERR_BAD_REPLY;
}

adapter_err adapter_build_languages(const tg_upstream_conf *up,
                                    const char *vendor_key, int type,
                                    adapter_http *out)
{
    memset(out, 0, sizeof(*out));
    if (type != 0 && type != 1)
        return ADAPTER_ERR_UNSUPPORTED_LANG;
    switch (up->adapter) {
    case TG_ADAPTER_DEEPL:
        return adapter_deepl_build_languages(up, vendor_key, type, out);
    case TG_ADAPTER_APERTIUM:
        return adapter_apertium_build_languages(up, out);
    }
    return ADAPTER_ERR_UNSUPPORTED_LANG;
}

adapter_err adapter_parse_languages(const tg_upstream_conf *up, int type,
                                    const adapter_reply *reply, tg_buf *out)
{
    if (reply == NULL || (type != 0 && type != 1))
        return ADAPTER_ERR_BAD_REPLY;
    switch (up->adapter) {
    case TG_ADAPTER_DEEPL:
        return adapter_deepl_parse_languages(type, reply, out);
    case TG_ADAPTER_APERTIUM:
        return adapter_apertium_parse_languages(type, reply, out);
    }
    return ADAPTER_ERR_BAD_REPLY;
}
