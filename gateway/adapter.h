/*
 * adapter: one small codec per vendor API.  Builds the HTTP request(s) that
 * carry an (already masked) translation request upstream and parses the
 * vendor's reply back into translations.  Pure functions: no I/O.
 *
 * A request may need several HTTP exchanges (Apertium APY translates one text
 * per call); the upstream module runs them concurrently and hands all replies
 * to adapter_parse_translate in order.
 */
#ifndef TG_ADAPTER_H
#define TG_ADAPTER_H

#include <stddef.h>

#include "api.h"
#include "config.h"
#include "tg_buf.h"

#define ADAPTER_MAX_HEADERS 4

typedef enum adapter_err {
    ADAPTER_OK = 0,
    ADAPTER_ERR_NOMEM,
    ADAPTER_ERR_UNSUPPORTED_LANG,   /* language (pair) the engine cannot do */
    ADAPTER_ERR_NEED_SOURCE_LANG,   /* engine cannot detect the source */
    ADAPTER_ERR_BAD_REPLY,          /* vendor reply does not parse / wrong shape */
    ADAPTER_ERR_COUNT_MISMATCH,     /* vendor returned a different number of texts */
    ADAPTER_ERR_VENDOR_STATUS,      /* vendor answered with an error status */
    ADAPTER_ERR_VENDOR_QUOTA,       /* vendor says quota exceeded (456) */
    ADAPTER_ERR_BAD_KEY             /* vendor key unusable in a header (added) */
} adapter_err;

/* Fixed English description.  Never NULL, never vendor-supplied text. */
const char *adapter_strerror(adapter_err e);

/* One outbound HTTP exchange. */
typedef struct adapter_http {
    char *path;        /* path and query appended to the upstream base URL */
    const char *content_type;   /* static string, NULL for GET */
    tg_buf body;       /* request body (POST); empty for GET */
    char *headers[ADAPTER_MAX_HEADERS]; /* "Name: value", owned; may hold the vendor key */
    size_t n_headers;
} adapter_http;

/* Wipe and free one exchange's contents.  Cannot fail. */
void adapter_http_free(adapter_http *h);

/* Build the exchanges for a translation.  vendor_key may be NULL.  On success
 * returns ADAPTER_OK and sets *out to a new array of *n exchanges (free each
 * with adapter_http_free, then free the array). */
adapter_err adapter_build_translate(const tg_upstream_conf *up,
                                    const char *vendor_key,
                                    const tg_translate_req *req,
                                    adapter_http **out, size_t *n);

/* One vendor reply. */
typedef struct adapter_reply {
    long status;          /* HTTP status */
    const char *body;     /* borrowed */
    size_t len;
} adapter_reply;

/* Parse the replies (one per exchange, same order) into req->n_texts
 * translations.  On success sets *out to a new array (free each text, then
 * the array; texts may hold restored personal data: wipe them).  A reply
 * with a non-2xx status gives ADAPTER_ERR_VENDOR_STATUS (or _QUOTA). */
adapter_err adapter_parse_translate(const tg_upstream_conf *up,
                                    const tg_translate_req *req,
                                    const adapter_reply *replies, size_t n,
                                    tg_translation **out);

/* Build the single exchange for /v2/languages (type: 0 source, 1 target). */
adapter_err adapter_build_languages(const tg_upstream_conf *up,
                                    const char *vendor_key, int type,
                                    adapter_http *out);

/* Parse a languages reply into DeepL's JSON array shape in out. */
adapter_err adapter_parse_languages(const tg_upstream_conf *up, int type,
                                    const adapter_reply *reply, tg_buf *out);

/* Map a DeepL language code ("EN", "EN-GB", "PT-BR", "ES") to an Apertium
 * ISO 639-3 code ("eng", "spa").  Returns a static string or NULL. */
const char *adapter_apertium_lang(const char *deepl_code);

/* ---- Added by the adapter owner. ---- */

/* Caps on what the adapters build: an outbound body (the inbound body is at
 * most a few hundred KiB; JSON escaping can grow it up to 6x) and a
 * re-encoded languages list. */
#define ADAPTER_MAX_REQUEST_BODY   (4u * 1024u * 1024u)
#define ADAPTER_MAX_LANGUAGES_BODY (256u * 1024u)

/* Free an array from adapter_build_translate: each exchange, then the array.
 * NULL is accepted.  Cannot fail. */
void adapter_http_array_free(adapter_http *h, size_t n);

/* Wipe and free an array from adapter_parse_translate: each text, then the
 * array.  NULL is accepted.  Cannot fail. */
void adapter_translations_free(tg_translation *t, size_t n);

/* English name of a DeepL language code in the built-in table ("EN" ->
 * "English"; the primary subtag decides).  Returns a static string or NULL. */
const char *adapter_lang_name(const char *deepl_code);

/* Map an Apertium code ("eng", "eng_US", "en") back to a DeepL code ("EN").
 * Returns a static string or NULL when the table has no entry. */
const char *adapter_apertium_to_deepl(const char *apertium_code);

/* -- Internal to adapter*.c (declared here because they cross files). -- */

/* Start an exchange: zero it, set path = base_path + suffix.  Returns 0/-1. */
int adapter_http_init(adapter_http *h, const tg_upstream_conf *up,
                      const char *suffix, size_t body_cap);
/* Append a header line "name: value".  Returns 0, -1 when full or OOM. */
int adapter_http_add_header(adapter_http *h, const char *name,
                            const char *value);
/* Append "&name=value" (no '&' when b is empty), percent-encoding the value's
 * bytes (everything but ALPHA / DIGIT / "-._~").  Returns 0/-1. */
int adapter_form_add(tg_buf *b, const char *name, const char *value,
                     size_t len);
/* Copy the primary subtag of a language code, upper-cased, into out
 * ("en-gb" -> "EN").  Returns 0, or -1 when it does not fit or is invalid. */
int adapter_primary_lang(const char *code, char *out, size_t outsz);

adapter_err adapter_deepl_build_translate(const tg_upstream_conf *up,
                                          const char *vendor_key,
                                          const tg_translate_req *req,
                                          adapter_http **out, size_t *n);
adapter_err adapter_deepl_parse_translate(const tg_translate_req *req,
                                          const adapter_reply *replies,
                                          size_t n, tg_translation **out);
adapter_err adapter_deepl_build_languages(const tg_upstream_conf *up,
                                          const char *vendor_key, int type,
                                          adapter_http *out);
adapter_err adapter_deepl_parse_languages(int type, const adapter_reply *reply,
                                          tg_buf *out);
adapter_err adapter_apertium_build_translate(const tg_upstream_conf *up,
                                             const tg_translate_req *req,
                                             adapter_http **out, size_t *n);
adapter_err adapter_apertium_parse_translate(const tg_upstream_conf *up,
                                             const tg_translate_req *req,
                                             const adapter_reply *replies,
                                             size_t n, tg_translation **out);
adapter_err adapter_apertium_build_languages(const tg_upstream_conf *up,
                                             adapter_http *out);
adapter_err adapter_apertium_parse_languages(int type,
                                             const adapter_reply *reply,
                                             tg_buf *out);

#endif
