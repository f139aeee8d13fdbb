/*
 * api: DeepL API v2 request/response codec (see api.h).
 *
 * Both body kinds are reduced to the same stream of (field, value) pairs and
 * fed to one setter, so the value domains are checked in exactly one place
 * whichever encoding a terminal chose.
 */
#include "api.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "h1.h"

/* Longest field name we ever echo back for an unknown field. */
#define API_NAME_ECHO_MAX 32
/* Caps on the short single-valued fields; texts and context are bounded by
 * the body cap the HTTP layer enforces. */
#define API_TAG_MAX       64
#define API_TAGLIST_MAX   (16u * 1024u)
#define API_GLOSSARY_MAX  128

typedef enum api_kind {
    K_TEXT,        /* repeated, any UTF-8 */
    K_LANG,        /* language code, upper-cased */
    K_FREE,        /* any UTF-8 (context) */
    K_SPLIT,       /* split_sentences */
    K_BOOL,        /* int field: 0/1 */
    K_FORMALITY,
    K_TAG_HANDLING,
    K_TAGS,        /* comma-joined tag list, may repeat in forms */
    K_MODEL,
    K_GLOSSARY
} api_kind;

typedef struct api_field {
    const char *name;
    api_kind kind;
    size_t off;          /* offset of the char * or int member */
} api_field;

#define OFF(m) offsetof(tg_translate_req, m)

static const api_field api_fields[] = {
    { "text",                   K_TEXT,         0 },
    { "source_lang",            K_LANG,         OFF(source_lang) },
    { "target_lang",            K_LANG,         OFF(target_lang) },
    { "context",                K_FREE,         OFF(context) },
    { "split_sentences",        K_SPLIT,        OFF(split_sentences) },
    { "preserve_formatting",    K_BOOL,         OFF(preserve_formatting) },
    { "formality",              K_FORMALITY,    OFF(formality) },
    { "glossary_id",            K_GLOSSARY,     OFF(glossary_id) },
    { "tag_handling",           K_TAG_HANDLING, OFF(tag_handling) },
    { "outline_detection",      K_BOOL,         OFF(outline_detection) },
    { "non_splitting_tags",     K_TAGS,         OFF(non_splitting_tags) },
    { "splitting_tags",         K_TAGS,         OFF(splitting_tags) },
    { "ignore_tags",            K_TAGS,         OFF(ignore_tags) },
    { "model_type",             K_MODEL,        OFF(model_type) },
    { "show_billed_characters", K_BOOL,         OFF(show_billed_characters) },
};

#define N_FIELDS (sizeof(api_fields) / sizeof(api_fields[0]))

static const char *const split_values[] = { "0", "1", "nonewlines", NULL };
static const char *const formality_values[] = {
    "default", "more", "less", "prefer_more", "prefer_less", NULL
};
static const char *const tag_handling_values[] = { "xml", "html", NULL };
static const char *const model_values[] = {
    "quality_optimized", "prefer_quality_optimized", "latency_optimized", NULL
};

/* Per-thread copy of an unknown field's name (see api_parse_translate). */
static _Thread_local char api_unknown_name[API_NAME_ECHO_MAX + 1];

const char *api_strerror(api_err e)
{
    switch (e) {
    case API_OK:                  return "success";
    case API_ERR_NOMEM:           return "out of memory";
    case API_ERR_BAD_ENCODING:    return "malformed percent-encoding in form body";
    case API_ERR_BAD_UTF8:        return "value is not valid UTF-8 or contains NUL";
    case API_ERR_BAD_JSON:        return "request body is not valid JSON";
    case API_ERR_NOT_OBJECT:      return "JSON request body must be an object";
    case API_ERR_UNKNOWN_FIELD:   return "unknown parameter";
    case API_ERR_DUPLICATE_FIELD: return "parameter given more than once";
    case API_ERR_BAD_TYPE:        return "parameter has the wrong type";
    case API_ERR_BAD_VALUE:       return "parameter has an invalid value";
    case API_ERR_MISSING_TEXT:    return "parameter 'text' not specified";
    case API_ERR_TOO_MANY_TEXTS:  return "too many texts (at most 50 per request)";
    case API_ERR_MISSING_TARGET:  return "parameter 'target_lang' not specified";
    case API_ERR_CONTENT_TYPE:    return "unsupported Content-Type";
    }
    return "unknown error";
}

/* ---------------------------------------------------------------- UTF-8 */

size_t api_utf8_len(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, n = 0;

    if (s == NULL)
        return len == 0 ? 0 : (size_t)-1;
    while (i < len) {
        unsigned c = p[i];
        unsigned lo = 0x80, hi = 0xBF;
        size_t k, need;

        if (c == 0)
            return (size_t)-1;
        if (c < 0x80) {
            i++;
            n++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0;          /* overlong */
            else if (c == 0xED)
                hi = 0x9F;          /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;          /* overlong */
            else if (c == 0xF4)
                hi = 0x8F;          /* above U+10FFFF */
        } else {
            return (size_t)-1;      /* C0, C1, F5..FF, stray continuation */
        }
        if (len - i - 1 < need)
            return (size_t)-1;
        if (p[i + 1] < lo || p[i + 1] > hi)
            return (size_t)-1;
        for (k = 2; k <= need; k++)
            if (p[i + k] < 0x80 || p[i + k] > 0xBF)
                return (size_t)-1;
        i += need + 1;
        n++;
    }
    return n;
}

size_t api_count_chars(const tg_translate_req *r)
{
    size_t i, total = 0;

    if (r == NULL)
        return 0;
    for (i = 0; i < r->n_texts; i++) {
        size_t n = api_utf8_len(r->texts[i], r->text_lens[i]);
        if (n != (size_t)-1)
            total += n;
    }
    return total;
}

/* ------------------------------------------------------------- helpers */

static int ascii_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static int ascii_alpha(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int ascii_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int ascii_ieq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b), i;

    if (alen != blen)
        return 0;
    for (i = 0; i < alen; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

static int in_set(const char *v, size_t len, const char *const *set)
{
    size_t i;

    for (i = 0; set[i] != NULL; i++)
        if (strlen(set[i]) == len && memcmp(set[i], v, len) == 0)
            return 1;
    return 0;
}

static char *dup_mem(const char *p, size_t len)
{
    char *s = malloc(len + 1);

    if (s == NULL)
        return NULL;
    if (len > 0)
        memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

bool api_lang_code_valid(const char *s, size_t len)
{
    size_t i = 0, n;

    if (s == NULL)
        return false;
    while (i < len && ascii_alpha((unsigned char)s[i]))
        i++;
    if (i < 2 || i > 3)
        return false;
    if (i == len)
        return true;
    if (s[i] != '-')
        return false;
    i++;
    n = 0;
    while (i < len && (ascii_alpha((unsigned char)s[i]) ||
                       ascii_digit((unsigned char)s[i]))) {
        i++;
        n++;
    }
    return i == len && n >= 2 && n <= 4;
}

/* ------------------------------------------------------------ request */

void api_translate_req_free(tg_translate_req *r)
{
    size_t i;

    if (r == NULL)
        return;
    if (r->texts != NULL) {
        for (i = 0; i < r->n_texts; i++) {
            if (r->texts[i] != NULL) {
                tg_wipe(r->texts[i], r->text_lens[i]);
                free(r->texts[i]);
            }
        }
        free(r->texts);
    }
    free(r->text_lens);
    tg_free_secret(r->source_lang);
    tg_free_secret(r->target_lang);
    tg_free_secret(r->context);
    tg_free_secret(r->split_sentences);
    tg_free_secret(r->formality);
    tg_free_secret(r->glossary_id);
    tg_free_secret(r->tag_handling);
    tg_free_secret(r->non_splitting_tags);
    tg_free_secret(r->splitting_tags);
    tg_free_secret(r->ignore_tags);
    tg_free_secret(r->model_type);
    memset(r, 0, sizeof(*r));
}

static void req_init(tg_translate_req *r)
{
    memset(r, 0, sizeof(*r));
    r->preserve_formatting = -1;
    r->outline_detection = -1;
    r->show_billed_characters = -1;
}

static char **str_member(tg_translate_req *r, const api_field *f)
{
    return (char **)(void *)((char *)r + f->off);
}

static int *int_member(tg_translate_req *r, const api_field *f)
{
    return (int *)(void *)((char *)r + f->off);
}

static const api_field *field_lookup(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < N_FIELDS; i++)
        if (strlen(api_fields[i].name) == len &&
            memcmp(api_fields[i].name, name, len) == 0)
            return &api_fields[i];
    return NULL;
}

/* Remember an unknown name for the caller, but only when it is short and
 * made of harmless characters: it ends up in an error message. */
static const char *unknown_name(const char *name, size_t len)
{
    size_t i;

    if (len == 0 || len > API_NAME_ECHO_MAX)
        return NULL;
    for (i = 0; i < len; i++) {
        int c = (unsigned char)name[i];
        if (!(ascii_alpha(c) || ascii_digit(c) || c == '_' || c == '-' ||
              c == '.' || c == '[' || c == ']'))
            return NULL;
    }
    memcpy(api_unknown_name, name, len);
    api_unknown_name[len] = '\0';
    return api_unknown_name;
}

static int tag_byte_ok(int c)
{
    return ascii_alpha(c) || ascii_digit(c) || c == '_' || c == '-' ||
           c == '.' || c == ':' || c >= 0x80;
}

/* Append the tags of one comma-separated value to list (normalised: no
 * spaces, single commas).  Returns API_OK or BAD_VALUE / NOMEM. */
static api_err tags_append(tg_buf *list, const char *v, size_t len)
{
    size_t i = 0;
    int all_blank = 1;

    for (i = 0; i < len; i++)
        if (v[i] != ' ' && v[i] != '\t')
            all_blank = 0;
    if (all_blank)
        return API_OK;          /* "" is an empty list */
    i = 0;
    while (i <= len) {
        size_t start, end, k;

        while (i < len && (v[i] == ' ' || v[i] == '\t'))
            i++;
        start = i;
        while (i < len && v[i] != ',')
            i++;
        end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end == start || end - start > API_TAG_MAX)
            return API_ERR_BAD_VALUE;
        for (k = start; k < end; k++)
            if (!tag_byte_ok((unsigned char)v[k]))
                return API_ERR_BAD_VALUE;
        if (list->len > 0 && tg_buf_add(list, ",", 1) != 0)
            return API_ERR_BAD_VALUE;   /* only the cap can fail here */
        if (tg_buf_add(list, v + start, end - start) != 0)
            return API_ERR_BAD_VALUE;
        i++;                    /* skip the comma (or step past the end) */
    }
    return API_OK;
}

static api_err set_tags(char **slot, const char *v, size_t len, int repeat)
{
    tg_buf list;
    api_err rc;
    char *s;

    if (*slot != NULL && !repeat)
        return API_ERR_DUPLICATE_FIELD;
    tg_buf_init(&list, API_TAGLIST_MAX);
    if (*slot != NULL && tg_buf_adds(&list, *slot) != 0)
        return API_ERR_NOMEM;
    rc = tags_append(&list, v, len);
    if (rc != API_OK)
        goto fail;
    s = list.data != NULL ? tg_buf_steal(&list, NULL) : dup_mem("", 0);
    if (s == NULL) {
        rc = API_ERR_NOMEM;
        goto fail;
    }
    free(*slot);
    *slot = s;
    return API_OK;
fail:
    tg_buf_free(&list);
    return rc;
}

static api_err parse_bool_string(const char *v, size_t len, int *out)
{
    if ((len == 1 && v[0] == '1') || (len == 4 && memcmp(v, "true", 4) == 0))
        *out = 1;
    else if ((len == 1 && v[0] == '0') ||
             (len == 5 && memcmp(v, "false", 5) == 0))
        *out = 0;
    else
        return API_ERR_BAD_VALUE;
    return API_OK;
}

static int glossary_ok(const char *v, size_t len)
{
    size_t i;

    if (len == 0 || len > API_GLOSSARY_MAX)
        return 0;
    for (i = 0; i < len; i++) {
        int c = (unsigned char)v[i];
        if (!(ascii_alpha(c) || ascii_digit(c) || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* Store one value.  repeat: the body kind allows a repeated tag list (forms).
 * The value is copied; the caller keeps v. */
static api_err set_field(tg_translate_req *r, const api_field *f,
                         const char *v, size_t len, int repeat)
{
    char **slot;
    char *s;
    size_t i;

    if (api_utf8_len(v, len) == (size_t)-1)
        return API_ERR_BAD_UTF8;

    if (f->kind == K_TEXT) {
        if (r->n_texts >= API_MAX_TEXTS)
            return API_ERR_TOO_MANY_TEXTS;
        if (r->texts == NULL) {
            r->texts = calloc(API_MAX_TEXTS, sizeof(*r->texts));
            r->text_lens = calloc(API_MAX_TEXTS, sizeof(*r->text_lens));
            if (r->texts == NULL || r->text_lens == NULL)
                return API_ERR_NOMEM;
        }
        s = dup_mem(v, len);
        if (s == NULL)
            return API_ERR_NOMEM;
        r->texts[r->n_texts] = s;
        r->text_lens[r->n_texts] = len;
        r->n_texts++;
        return API_OK;
    }
    if (f->kind == K_BOOL) {
        int *ip = int_member(r, f);
        if (*ip != -1)
            return API_ERR_DUPLICATE_FIELD;
        return parse_bool_string(v, len, ip);
    }

    slot = str_member(r, f);
    if (f->kind == K_TAGS)
        return set_tags(slot, v, len, repeat);
    if (*slot != NULL)
        return API_ERR_DUPLICATE_FIELD;

    switch (f->kind) {
    case K_LANG:
        if (!api_lang_code_valid(v, len))
            return API_ERR_BAD_VALUE;
        break;
    case K_SPLIT:
        if (!in_set(v, len, split_values))
            return API_ERR_BAD_VALUE;
        break;
    case K_FORMALITY:
        if (!in_set(v, len, formality_values))
            return API_ERR_BAD_VALUE;
        break;
    case K_TAG_HANDLING:
        if (!in_set(v, len, tag_handling_values))
            return API_ERR_BAD_VALUE;
        break;
    case K_MODEL:
        if (!in_set(v, len, model_values))
            return API_ERR_BAD_VALUE;
        break;
    case K_GLOSSARY:
        if (!glossary_ok(v, len))
            return API_ERR_BAD_VALUE;
        break;
    case K_FREE:
    case K_TEXT:
    case K_BOOL:
    case K_TAGS:
        break;
    }
    s = dup_mem(v, len);
    if (s == NULL)
        return API_ERR_NOMEM;
    if (f->kind == K_LANG)
        for (i = 0; i < len; i++)
            if (s[i] >= 'a' && s[i] <= 'z')
                s[i] = (char)(s[i] - 'a' + 'A');
    *slot = s;
    return API_OK;
}

static api_err check_required(const tg_translate_req *r, const char **field)
{
    if (r->n_texts == 0) {
        *field = "text";
        return API_ERR_MISSING_TEXT;
    }
    if (r->target_lang == NULL) {
        *field = "target_lang";
        return API_ERR_MISSING_TARGET;
    }
    return API_OK;
}

/* --------------------------------------------------------------- form */

/* Decode application/x-www-form-urlencoded bytes into out (which has room
 * for len bytes plus NUL).  Returns the decoded length or (size_t)-1. */
static size_t form_decode(const char *in, size_t len, char *out)
{
    long n = h1_form_decode(in, len, out, len + 1);

    return n < 0 ? (size_t)-1 : (size_t)n;
}

static api_err parse_form(const char *body, size_t len, tg_translate_req *r,
                          const char **field)
{
    size_t pos = 0;
    char *val = NULL;
    size_t val_alloc = 0;
    api_err rc = API_OK;

    while (pos < len) {
        const char *seg = body + pos, *amp, *eq;
        size_t seglen, klen, vlen, dk, dv;
        char key[API_NAME_ECHO_MAX + 32];
        const api_field *f;

        amp = memchr(seg, '&', len - pos);
        seglen = amp != NULL ? (size_t)(amp - seg) : len - pos;
        pos += seglen + 1;
        if (seglen == 0)
            continue;           /* "a=1&&b=2" and a trailing '&' */
        eq = memchr(seg, '=', seglen);
        klen = eq != NULL ? (size_t)(eq - seg) : seglen;
        vlen = eq != NULL ? seglen - klen - 1 : 0;

        if (klen >= sizeof(key)) {
            /* Longer than any field we know, so unknown; still check its
             * encoding so the error is the most specific one. */
            char *tmp = malloc(klen + 1);
            if (tmp == NULL) {
                rc = API_ERR_NOMEM;
                goto fail;
            }
            dk = form_decode(seg, klen, tmp);
            free(tmp);
            rc = dk == (size_t)-1 ? API_ERR_BAD_ENCODING : API_ERR_UNKNOWN_FIELD;
            goto fail;
        }
        dk = form_decode(seg, klen, key);
        if (dk == (size_t)-1) {
            rc = API_ERR_BAD_ENCODING;
            goto fail;
        }
        if (api_utf8_len(key, dk) == (size_t)-1) {
            rc = API_ERR_BAD_UTF8;
            goto fail;
        }
        f = field_lookup(key, dk);
        if (f == NULL) {
            *field = unknown_name(key, dk);
            rc = API_ERR_UNKNOWN_FIELD;
            goto fail;
        }
        *field = f->name;
        if (vlen + 1 > val_alloc) {
            if (val != NULL) {
                tg_wipe(val, val_alloc);
                free(val);
            }
            val = malloc(vlen + 1);
            val_alloc = val != NULL ? vlen + 1 : 0;
            if (val == NULL) {
                rc = API_ERR_NOMEM;
                goto fail;
            }
        }
        dv = form_decode(eq != NULL ? eq + 1 : seg + seglen, vlen, val);
        if (dv == (size_t)-1) {
            rc = API_ERR_BAD_ENCODING;
            goto fail;
        }
        rc = set_field(r, f, val, dv, 1);
        if (rc != API_OK)
            goto fail;
        *field = NULL;
    }
    rc = check_required(r, field);
fail:
    if (val != NULL) {
        tg_wipe(val, val_alloc);
        free(val);
    }
    return rc;
}

/* --------------------------------------------------------------- JSON */

static api_err json_set_string(tg_translate_req *r, const api_field *f,
                               json_t *v)
{
    return set_field(r, f, json_string_value(v), json_string_length(v), 0);
}

static api_err json_field(tg_translate_req *r, const api_field *f, json_t *v)
{
    size_t i;
    json_t *e;
    api_err rc;

    switch (f->kind) {
    case K_TEXT:
        if (json_is_string(v))
            return json_set_string(r, f, v);
        if (!json_is_array(v))
            return API_ERR_BAD_TYPE;
        if (json_array_size(v) > API_MAX_TEXTS)
            return API_ERR_TOO_MANY_TEXTS;
        json_array_foreach(v, i, e) {
            if (!json_is_string(e))
                return API_ERR_BAD_TYPE;
            rc = json_set_string(r, f, e);
            if (rc != API_OK)
                return rc;
        }
        return API_OK;
    case K_BOOL:
        if (json_is_boolean(v)) {
            *int_member(r, f) = json_is_true(v) ? 1 : 0;
            return API_OK;
        }
        if (json_is_string(v))
            return json_set_string(r, f, v);
        return API_ERR_BAD_TYPE;
    case K_TAGS:
        if (json_is_string(v))
            return json_set_string(r, f, v);
        if (!json_is_array(v))
            return API_ERR_BAD_TYPE;
        /* An empty array is an empty list, as the empty string is. */
        rc = set_field(r, f, "", 0, 0);
        if (rc != API_OK)
            return rc;
        json_array_foreach(v, i, e) {
            const char *s;
            size_t n;

            if (!json_is_string(e))
                return API_ERR_BAD_TYPE;
            s = json_string_value(e);
            n = json_string_length(e);
            if (api_utf8_len(s, n) == (size_t)-1)
                return API_ERR_BAD_UTF8;
            /* Each element is one tag: a comma inside it is not a list. */
            if (n == 0 || memchr(s, ',', n) != NULL)
                return API_ERR_BAD_VALUE;
            rc = set_tags(str_member(r, f), s, n, 1);
            if (rc != API_OK)
                return rc;
        }
        return API_OK;
    case K_LANG:
    case K_FREE:
    case K_SPLIT:
    case K_FORMALITY:
    case K_TAG_HANDLING:
    case K_MODEL:
    case K_GLOSSARY:
        if (!json_is_string(v))
            return API_ERR_BAD_TYPE;
        return json_set_string(r, f, v);
    }
    return API_ERR_BAD_TYPE;
}

static api_err parse_json(const char *body, size_t len, tg_translate_req *r,
                          const char **field)
{
    json_error_t jerr;
    json_t *root, *v;
    const char *key;
    api_err rc = API_OK;

    root = json_loadb(body != NULL ? body : "", len,
                      JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                      &jerr);
    if (root == NULL) {
        switch (json_error_code(&jerr)) {
        case json_error_invalid_utf8:
        case json_error_null_character:
            return API_ERR_BAD_UTF8;
        case json_error_out_of_memory:
            return API_ERR_NOMEM;
        case json_error_duplicate_key:
            return API_ERR_DUPLICATE_FIELD;
        default:
            return API_ERR_BAD_JSON;
        }
    }
    if (!json_is_object(root)) {
        rc = API_ERR_NOT_OBJECT;
        goto fail;
    }
    json_object_foreach(root, key, v) {
        size_t klen = strlen(key);
        const api_field *f = field_lookup(key, klen);

        if (f == NULL) {
            *field = unknown_name(key, klen);
            rc = API_ERR_UNKNOWN_FIELD;
            goto fail;
        }
        *field = f->name;
        rc = json_field(r, f, v);
        if (rc != API_OK)
            goto fail;
        *field = NULL;
    }
    rc = check_required(r, field);
fail:
    json_decref(root);
    return rc;
}

api_err api_parse_translate(api_body_kind kind, const char *body, size_t len,
                            tg_translate_req *out, const char **field)
{
    const char *dummy = NULL;
    api_err rc;

    if (field == NULL)
        field = &dummy;
    *field = NULL;
    req_init(out);
    if (body == NULL && len != 0)
        return API_ERR_BAD_ENCODING;
    if (kind == API_BODY_JSON)
        rc = parse_json(body, len, out, field);
    else
        rc = parse_form(body, len, out, field);
    if (rc != API_OK) {
        api_translate_req_free(out);
        req_init(out);
    }
    return rc;
}

/* ------------------------------------------------------- Content-Type */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static const char *trim_end(const char *start, const char *end)
{
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return end;
}

int api_body_kind_from_content_type(const char *ct, api_body_kind *out)
{
    const char *p, *end, *semi, *tend;
    api_body_kind kind;

    if (ct == NULL) {
        *out = API_BODY_FORM;
        return 0;
    }
    end = ct + strlen(ct);
    p = skip_ws(ct, end);
    if (p == end) {
        *out = API_BODY_FORM;   /* an empty header is as good as none */
        return 0;
    }
    semi = strchr(p, ';');
    tend = trim_end(p, semi != NULL ? semi : end);
    if (ascii_ieq(p, (size_t)(tend - p), "application/x-www-form-urlencoded"))
        kind = API_BODY_FORM;
    else if (ascii_ieq(p, (size_t)(tend - p), "application/json"))
        kind = API_BODY_JSON;
    else
        return -1;

    while (semi != NULL) {
        const char *name, *nend, *val, *vend, *eq;

        p = skip_ws(semi + 1, end);
        semi = strchr(p, ';');
        vend = trim_end(p, semi != NULL ? semi : end);
        if (vend == p)
            continue;           /* "type;" or "; ;" */
        for (eq = p; eq < vend && *eq != '='; eq++)
            ;
        if (eq == vend)
            return -1;
        name = p;
        nend = trim_end(name, eq);
        val = skip_ws(eq + 1, vend);
        if (vend - val >= 2 && *val == '"' && vend[-1] == '"') {
            val++;
            vend--;
        }
        if (nend == name)
            return -1;
        if (ascii_ieq(name, (size_t)(nend - name), "charset") &&
            !ascii_ieq(val, (size_t)(vend - val), "utf-8"))
            return -1;
    }
    *out = kind;
    return 0;
}

int api_languages_type(const char *value)
{
    if (value == NULL || strcmp(value, "source") == 0)
        return 0;
    if (strcmp(value, "target") == 0)
        return 1;
    return -1;
}

/* ------------------------------------------------------ Jansson memory */

/* Jansson copies every string it parses or builds, and request text passes
 * through it on both legs; its default free() would leave that text in the
 * heap.  A size header lets free wipe what it releases. */
typedef union api_jhdr {
    size_t size;
    max_align_t align;
} api_jhdr;

static void *api_json_malloc(size_t n)
{
    api_jhdr *h;

    if (n > SIZE_MAX - sizeof(*h))
        return NULL;
    h = malloc(sizeof(*h) + n);
    if (h == NULL)
        return NULL;
    h->size = n;
    return h + 1;
}

static void api_json_free(void *p)
{
    api_jhdr *h;

    if (p == NULL)
        return;
    h = (api_jhdr *)p - 1;
    tg_wipe(p, h->size);
    free(h);
}

void api_json_wipe_on_free(void)
{
    json_set_alloc_funcs(api_json_malloc, api_json_free);
}

/* ------------------------------------------------------------ encoding */

static int dump_cb(const char *buffer, size_t size, void *data)
{
    return tg_buf_add((tg_buf *)data, buffer, size) == 0 ? 0 : -1;
}

int api_json_to_buf(const json_t *j, tg_buf *out)
{
    if (json_dump_callback(j, dump_cb, out, JSON_COMPACT) != 0) {
        tg_buf_free(out);
        return -1;
    }
    return 0;
}

/* Length of the valid UTF-8 sequence starting at p[0] (>= 0x80), or 0. */
static size_t api_utf8_seq(const unsigned char *p, size_t avail)
{
    unsigned c = p[0], lo = 0x80, hi = 0xBF;
    size_t need, k;

    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (avail - 1 < need || p[1] < lo || p[1] > hi)
        return 0;
    for (k = 2; k <= need; k++)
        if (p[k] < 0x80 || p[k] > 0xBF)
            return 0;
    return need + 1;
}

int api_json_put_str(tg_buf *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;

    if (len > 0 && s == NULL) {
        tg_buf_free(out);
        return -1;
    }
    if (tg_buf_add(out, "\"", 1) != 0)
        return -1;
    while (i < len) {
        unsigned c = p[i];
        char esc[8];
        const char *e;
        size_t el = 2, n;

        if (c >= 0x80) {
            n = api_utf8_seq(p + i, len - i);
            if (n == 0) {
                tg_buf_free(out);
                return -1;
            }
            i += n;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        switch (c) {
        case '"':  e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04X", c);
            e = esc;
            el = 6;
            break;
        }
        if ((i > run && tg_buf_add(out, s + run, i - run) != 0) ||
            tg_buf_add(out, e, el) != 0)
            return -1;
        run = ++i;
    }
    if ((i > run && tg_buf_add(out, s + run, i - run) != 0) ||
        tg_buf_add(out, "\"", 1) != 0)
        return -1;
    return 0;
}

int api_encode_translations(const tg_translation *t, size_t n, bool billed,
                            tg_buf *out)
{
    size_t i;

    if (t == NULL && n > 0)
        return -1;
    /* Written directly (the bytes Jansson's compact dump gave: the unit
     * tests compare): no object tree per answer. */
    if (tg_buf_adds(out, "{\"translations\":[") != 0)
        return -1;
    for (i = 0; i < n; i++) {
        size_t dlen = strnlen(t[i].detected_source_language,
                              sizeof(t[i].detected_source_language));
        size_t chars = api_utf8_len(t[i].text, t[i].len);

        if (dlen == sizeof(t[i].detected_source_language) ||
            chars == (size_t)-1)
            goto fail;
        if (tg_buf_adds(out, i == 0 ? "{\"detected_source_language\":"
                                    : ",{\"detected_source_language\":") != 0 ||
            api_json_put_str(out, t[i].detected_source_language, dlen) != 0 ||
            tg_buf_adds(out, ",\"text\":") != 0 ||
            api_json_put_str(out, t[i].text != NULL ? t[i].text : "", t[i].len) != 0)
            goto fail;
        if (billed && tg_buf_printf(out, ",\"billed_characters\":%zu", chars) != 0)
            goto fail;
        if (tg_buf_add(out, "}", 1) != 0)
            goto fail;
    }
    if (tg_buf_add(out, "]}", 2) != 0)
        goto fail;
    return 0;
fail:
    tg_buf_free(out);
    return -1;
}

int api_encode_error(const char *msg, const char *code, const char *rule,
                     tg_buf *out)
{
    json_t *root;
    int rc = -1;

    root = json_object();
    if (root == NULL)
        return -1;
    if (json_object_set_new(root, "message",
                            json_string(msg != NULL ? msg : "error")) != 0)
        goto fail;
    if (code != NULL && json_object_set_new(root, "code", json_string(code)) != 0)
        goto fail;
    if (code != NULL && rule != NULL &&
        json_object_set_new(root, "rule", json_string(rule)) != 0)
        goto fail;
    rc = api_json_to_buf(root, out);
fail:
    json_decref(root);
    return rc;
}
