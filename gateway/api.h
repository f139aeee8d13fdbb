/*
 * api: the DeepL API v2 request and response codec spoken to terminals.
 *
 * Pure functions over memory: no I/O, no global state.  Parsers take the raw
 * body exactly as received and produce a tg_translate_req; errors are a fixed
 * message that may name a field but never quotes request content.
 */
#ifndef TG_API_H
#define TG_API_H

#include <stdbool.h>
#include <stddef.h>

#include "tg_buf.h"

#define API_MAX_TEXTS 50          /* DeepL's own limit per request */

typedef enum api_err {
    API_OK = 0,
    API_ERR_NOMEM,
    API_ERR_BAD_ENCODING,        /* bad percent-encoding in a form body */
    API_ERR_BAD_UTF8,            /* a field is not valid UTF-8 (or holds NUL) */
    API_ERR_BAD_JSON,            /* JSON body does not parse */
    API_ERR_NOT_OBJECT,          /* JSON body is not an object */
    API_ERR_UNKNOWN_FIELD,       /* field not part of the API */
    API_ERR_DUPLICATE_FIELD,     /* single-valued field given twice */
    API_ERR_BAD_TYPE,            /* field has the wrong JSON type */
    API_ERR_BAD_VALUE,           /* field has a value outside its domain */
    API_ERR_MISSING_TEXT,        /* no text parameter */
    API_ERR_TOO_MANY_TEXTS,      /* more than API_MAX_TEXTS */
    API_ERR_MISSING_TARGET,      /* no target_lang */
    API_ERR_CONTENT_TYPE         /* neither form-encoded nor JSON */
} api_err;

/* Fixed English description of an error code.  Never NULL. */
const char *api_strerror(api_err e);

typedef enum api_body_kind {
    API_BODY_FORM = 0,   /* application/x-www-form-urlencoded (or absent) */
    API_BODY_JSON = 1    /* application/json */
} api_body_kind;

/* Decide the body kind from a Content-Type header value (may be NULL).
 * Returns 0, or -1 for an unsupported type. */
int api_body_kind_from_content_type(const char *ct, api_body_kind *out);

/* A translation request, validated.  Strings are NUL-terminated UTF-8 owned
 * by the struct; optional ones are NULL when absent.  Language codes are
 * upper-cased (DeepL accepts either case). */
typedef struct tg_translate_req {
    size_t n_texts;
    char **texts;
    size_t *text_lens;
    char *source_lang;
    char *target_lang;
    char *context;
    char *split_sentences;     /* "0", "1", "nonewlines" */
    int   preserve_formatting; /* -1 absent, 0, 1 */
    char *formality;           /* default, more, less, prefer_more, prefer_less */
    char *glossary_id;
    char *tag_handling;        /* "xml" or "html" */
    int   outline_detection;   /* -1 absent, 0, 1 */
    char *non_splitting_tags;  /* comma-separated list (JSON arrays are joined) */
    char *splitting_tags;
    char *ignore_tags;
    char *model_type;
    int   show_billed_characters; /* -1 absent, 0, 1 */
} tg_translate_req;

/* Parse a /v2/translate body.  On success returns API_OK and fills *out
 * (caller frees with api_translate_req_free).  On failure returns the code
 * and, when the error concerns one field, points *field at a static copy of
 * its name (else NULL); *out is left empty.
 * For API_ERR_UNKNOWN_FIELD the name is the terminal's: *field then points at
 * a per-thread buffer valid until the next call on the same thread, and is
 * only set when the name is at most 32 characters of [A-Za-z0-9_.[]-]
 * (otherwise NULL), so it is safe to put in an error message. */
api_err api_parse_translate(api_body_kind kind, const char *body, size_t len,
                            tg_translate_req *out, const char **field);

/* Wipe and free everything a request owns; the struct is left zeroed.
 * NULL-safe.  Cannot fail. */
void api_translate_req_free(tg_translate_req *r);

/* Total characters (Unicode code points) in all texts: what DeepL bills. */
size_t api_count_chars(const tg_translate_req *r);

/* One translated text as returned to the terminal. */
typedef struct tg_translation {
    char *text;                        /* owned */
    size_t len;
    char detected_source_language[16]; /* e.g. "EN" */
} tg_translation;

/* Encode {"translations":[{"detected_source_language":..,"text":..}, ...]}
 * into out.  billed adds "billed_characters" per text.  Returns 0 or -1 on
 * memory/cap failure. */
int api_encode_translations(const tg_translation *t, size_t n, bool billed,
                            tg_buf *out);

/* Encode a DeepL-shaped error body {"message": msg} plus, when code is not
 * NULL, "code": code (and "rule" when rule is not NULL).  msg must not carry
 * request content.  Returns 0 or -1. */
int api_encode_error(const char *msg, const char *code, const char *rule,
                     tg_buf *out);

/* Parse the "type" parameter of /v2/languages from a form body or query
 * value: NULL or "source" gives 0, "target" gives 1, anything else -1. */
int api_languages_type(const char *value);

/* Count code points in valid UTF-8; returns (size_t)-1 when invalid or when
 * it contains NUL. */
size_t api_utf8_len(const char *s, size_t len);

/* Added by the API codec owner. */

/* True when s[0..len) is a language code of the form
 * [A-Za-z]{2,3}(-[A-Za-z0-9]{2,4})?.  Cannot fail. */
bool api_lang_code_valid(const char *s, size_t len);

/* Append s[0..len) to out as a JSON string: quoted, with exactly Jansson's
 * compact escaping (\" \\ \b \f \n \r \t, other controls as \u00XX in
 * upper case, everything else, '/' and non-ASCII included, as is), so that
 * bodies built with it are byte for byte those json_dump gave.  Returns 0,
 * or -1 when s is not valid UTF-8 (as json_stringn refuses it) or out's cap
 * or memory runs out; out is then freed and empty (tg_buf's contract). */
int api_json_put_str(tg_buf *out, const char *s, size_t len);

/* Make Jansson wipe every block it frees (it holds copies of request and
 * reply text).  Process-wide: call once at start-up, before any other
 * Jansson use and before threads start.  Cannot fail. */
void api_json_wipe_on_free(void);

struct json_t;

/* Serialise j compactly (UTF-8, not ASCII-escaped) and append it to out.
 * j is borrowed.  Returns 0, or -1 on memory/cap failure (out is then
 * freed, as after any failed tg_buf append). */
int api_json_to_buf(const struct json_t *j, tg_buf *out);

#endif
