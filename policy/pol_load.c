/*
 * pol_load: read, check, merge and compile rule packs into an engine.
 *
 * Every problem is reported (one line each, "FILE:LINE:COL: $.path:
 * message") before the load fails, so an operator fixes a pack in one pass.
 * Patterns are compiled once here, with PCRE2 JIT where available; the
 * engine is immutable afterwards.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pol_internal.h"

#define POL_MAX_PACK_BYTES  ((size_t)4 * 1024 * 1024)
#define POL_MAX_PATTERN     ((size_t)64 * 1024)
#define POL_MAX_ENTRIES     4096
#define POL_MAX_MACROS      256
#define POL_MACRO_DEPTH     8
#define POL_MAX_WINDOW      400

/* Where an entry came from, for messages. */
typedef struct pol_src {
    size_t pack;
    const char *section;     /* "detectors", "markings", "allow" */
    size_t index;
} pol_src;

typedef struct pol_det_spec {
    char *id, *type, *pattern;
    pol_validator validator;
    pol_words ctx, not_ctx, anchor;
    unsigned before, after, anchor_before, anchor_after;
    int required;
    pol_action action;
    int priority;
    pol_prefilter pf;
    pol_src src;
} pol_det_spec;

typedef struct pol_mark_spec {
    char *id, *pattern;
    int level;
    pol_prefilter pf;
    pol_src src;
} pol_mark_spec;

typedef struct pol_allow_spec {
    char *id, *pattern;
    char **types;
    size_t ntypes;
    pol_src src;
} pol_allow_spec;

typedef struct pol_macro {
    char *name, *value;
    size_t pack;
} pol_macro;

typedef struct pol_loader {
    FILE *errs;
    int nerr;
    const char *const *names;
    const char *const *data;
    const size_t *lens;
    pol_det_spec *det;
    size_t ndet;
    pol_mark_spec *mark;
    size_t nmark;
    pol_allow_spec *allow;
    size_t nallow;
    pol_macro *mac;
    size_t nmac;
} pol_loader;

/* Report a problem at path (components key or index) in pack. */
static void pol_report(pol_loader *ld, size_t pack, const pol_jpath *path,
                       size_t depth, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void pol_report(pol_loader *ld, size_t pack, const pol_jpath *path,
                       size_t depth, const char *fmt, ...)
{
    int line = 1, col = 1;
    size_t d;
    va_list ap;

    ld->nerr++;
    if (ld->errs == NULL)
        return;
    if (ld->data[pack] != NULL)
        (void)pol_json_locate(ld->data[pack], ld->lens[pack], path, depth, &line, &col);
    fprintf(ld->errs, "%s:%d:%d: $", ld->names[pack], line, col);
    for (d = 0; d < depth; d++) {
        if (path[d].key != NULL)
            fprintf(ld->errs, ".%s", path[d].key);
        else
            fprintf(ld->errs, "[%zu]", path[d].index);
    }
    fputs(": ", ld->errs);
    va_start(ap, fmt);
    vfprintf(ld->errs, fmt, ap);
    va_end(ap);
    fputc('\n', ld->errs);
}

/* Report at $.section[index] or $.section[index].key. */
static void pol_report_entry(pol_loader *ld, const pol_src *src, const char *key,
                             const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void pol_report_entry(pol_loader *ld, const pol_src *src, const char *key,
                             const char *fmt, ...)
{
    pol_jpath p[3];
    char msg[512];
    va_list ap;

    p[0].key = src->section;
    p[0].index = 0;
    p[1].key = NULL;
    p[1].index = src->index;
    p[2].key = key;
    p[2].index = 0;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pol_report(ld, src->pack, p, key != NULL ? 3 : 2, "%s", msg);
}

/* Report at $.section[index].key, or .key.sub when sub is not NULL. */
static void pol_report_key(pol_loader *ld, const pol_src *src, const char *key,
                           const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void pol_report_key(pol_loader *ld, const pol_src *src, const char *key,
                           const char *sub, const char *fmt, ...)
{
    pol_jpath p[4] = {{src->section, 0}, {NULL, src->index}, {key, 0}, {sub, 0}};
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pol_report(ld, src->pack, p, sub != NULL ? 4 : 3, "%s", msg);
}

static char *pol_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);

    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

static void pol_words_free(pol_words *w)
{
    size_t i;

    for (i = 0; i < w->n; i++)
        free(w->w[i]);
    free(w->w);
    free(w->len);
    w->w = NULL;
    w->len = NULL;
    w->n = 0;
}

static void pol_prefilter_free(pol_prefilter *pf)
{
    pol_words_free(&pf->words);
    free(pf->sep);
    free(pf->between_src);
    free(pf->between);
    pf->sep = NULL;
    pf->between_src = NULL;
    pf->between = NULL;
}

static void pol_det_spec_free(pol_det_spec *d)
{
    free(d->id);
    free(d->type);
    free(d->pattern);
    pol_words_free(&d->ctx);
    pol_words_free(&d->not_ctx);
    pol_words_free(&d->anchor);
    pol_prefilter_free(&d->pf);
    memset(d, 0, sizeof *d);
}

static void pol_mark_spec_free(pol_mark_spec *m)
{
    free(m->id);
    free(m->pattern);
    pol_prefilter_free(&m->pf);
    memset(m, 0, sizeof *m);
}

static void pol_allow_spec_free(pol_allow_spec *a)
{
    size_t i;

    free(a->id);
    free(a->pattern);
    for (i = 0; i < a->ntypes; i++)
        free(a->types[i]);
    free(a->types);
    memset(a, 0, sizeof *a);
}

static void pol_loader_free(pol_loader *ld)
{
    size_t i;

    for (i = 0; i < ld->ndet; i++)
        pol_det_spec_free(&ld->det[i]);
    free(ld->det);
    for (i = 0; i < ld->nmark; i++)
        pol_mark_spec_free(&ld->mark[i]);
    free(ld->mark);
    for (i = 0; i < ld->nallow; i++)
        pol_allow_spec_free(&ld->allow[i]);
    free(ld->allow);
    for (i = 0; i < ld->nmac; i++) {
        free(ld->mac[i].name);
        free(ld->mac[i].value);
    }
    free(ld->mac);
}

static int pol_id_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 64)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || (i > 0 && (c == '-' || c == '_' || c == '.'))))
            return 0;
    }
    return 1;
}

static int pol_type_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 32 || !(s[0] >= 'a' && s[0] <= 'z'))
        return 0;
    for (i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

static int pol_macro_name_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 32)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

/* Check that every key of obj is in allowed (NULL-terminated). */
static void pol_check_keys(pol_loader *ld, const pol_src *src, json_t *obj,
                           const char *const *allowed)
{
    const char *key;
    json_t *v;
    size_t i;

    json_object_foreach(obj, key, v) {
        int ok = 0;
        for (i = 0; allowed[i] != NULL; i++)
            if (strcmp(key, allowed[i]) == 0)
                ok = 1;
        if (!ok)
            pol_report_entry(ld, src, key, "unknown key");
    }
}

/* A string member.  Returns a new copy, or NULL (reported when required
 * or of the wrong type). */
static char *pol_get_str(pol_loader *ld, const pol_src *src, json_t *obj,
                         const char *key, int required)
{
    json_t *v = json_object_get(obj, key);
    char *s;

    if (v == NULL) {
        if (required)
            pol_report_entry(ld, src, NULL, "missing required key \"%s\"", key);
        return NULL;
    }
    if (!json_is_string(v)) {
        pol_report_entry(ld, src, key, "must be a string");
        return NULL;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        pol_report_entry(ld, src, key, "must not contain NUL");
        return NULL;
    }
    s = pol_strdup(json_string_value(v));
    if (s == NULL)
        pol_report_entry(ld, src, key, "out of memory");
    return s;
}

/* An entry's "id": required, 1-64 of [A-Za-z0-9._-] starting alphanumeric.
 * Returns the new string (NULL when absent); a bad one is reported. */
static char *pol_get_id(pol_loader *ld, const pol_src *src, json_t *o)
{
    char *id = pol_get_str(ld, src, o, "id", 1);

    if (id != NULL && !pol_id_ok(id))
        pol_report_entry(ld, src, "id", "must be 1-64 of [A-Za-z0-9._-], starting alphanumeric");
    return id;
}

/* Optional integer member in [lo, hi]; returns def when absent. */
static long pol_get_int(pol_loader *ld, const pol_src *src, json_t *obj,
                        const char *key, long lo, long hi, long def)
{
    json_t *v = json_object_get(obj, key);
    json_int_t x;

    if (v == NULL)
        return def;
    if (!json_is_integer(v)) {
        pol_report_entry(ld, src, key, "must be an integer");
        return def;
    }
    x = json_integer_value(v);
    if (x < lo || x > hi) {
        pol_report_entry(ld, src, key, "must be between %ld and %ld", lo, hi);
        return def;
    }
    return (long)x;
}

static int pol_get_bool(pol_loader *ld, const pol_src *src, json_t *obj,
                        const char *key, int def)
{
    json_t *v = json_object_get(obj, key);

    if (v == NULL)
        return def;
    if (!json_is_boolean(v)) {
        pol_report_entry(ld, src, key, "must be true or false");
        return def;
    }
    return json_is_true(v);
}

/* Array of non-empty strings at obj[key] (obj is $.section[i].parent) into w. */
static void pol_get_words_at(pol_loader *ld, const pol_src *src, json_t *ctx,
                             const char *parent, const char *key, pol_words *w)
{
    json_t *arr = json_object_get(ctx, key), *v;
    size_t i, n;
    pol_jpath p[5];

    if (arr == NULL)
        return;
    p[0].key = src->section;
    p[1].key = NULL;
    p[1].index = src->index;
    p[2].key = parent;
    p[3].key = key;
    p[4].key = NULL;
    if (!json_is_array(arr) || json_array_size(arr) > POL_MAX_CONTEXT_WORDS) {
        pol_report(ld, src->pack, p, 4, "must be an array of at most %d strings",
                   POL_MAX_CONTEXT_WORDS);
        return;
    }
    n = json_array_size(arr);
    w->w = calloc(n ? n : 1, sizeof *w->w);
    w->len = calloc(n ? n : 1, sizeof *w->len);
    if (w->w == NULL || w->len == NULL) {
        pol_report(ld, src->pack, p, 4, "out of memory");
        return;
    }
    json_array_foreach(arr, i, v) {
        p[4].index = i;
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) > 64 ||
            strlen(json_string_value(v)) != json_string_length(v)) {
            pol_report(ld, src->pack, p, 5, "must be a non-empty string of at most 64 bytes");
            continue;
        }
        w->w[w->n] = pol_strdup(json_string_value(v));
        if (w->w[w->n] == NULL) {
            pol_report(ld, src->pack, p, 5, "out of memory");
            continue;
        }
        w->len[w->n] = json_string_length(v);
        w->n++;
    }
}

static void pol_get_words(pol_loader *ld, const pol_src *src, json_t *ctx,
                          const char *key, pol_words *w)
{
    pol_get_words_at(ld, src, ctx, "context", key, w);
}

/* "prefilter": a necessary condition for a match (docs/rules.md).  Checked
 * strictly, since a wrong one silently loses detections: words and a
 * window, or digits (optionally with words that every match contains). */
static void pol_get_prefilter(pol_loader *ld, const pol_src *src, json_t *o,
                              pol_prefilter *pf)
{
    static const char *const keys[] = {"words", "before", "after", "digits", "gap",
        "lead", "groups", "max_digits", "whole", "separators", "between", NULL};
    static const struct {
        const char *key;
        long lo, hi;
    } nums[7] = {{"before", 0, POL_MAX_WINDOW}, {"after", 0, POL_MAX_WINDOW},
                 {"digits", 1, 64}, {"gap", 0, 16}, {"lead", 0, 16}, {"groups", 1, 64},
                 {"max_digits", 1, 1024}};
    pol_jpath p[4] = {{src->section, 0}, {NULL, src->index}, {"prefilter", 0}, {NULL, 0}};
    json_t *pfo = json_object_get(o, "prefilter"), *v;
    unsigned val[7] = {0, 0, 0, 0, 0, 0, 0};
    int has[7] = {0, 0, 0, 0, 0, 0, 0};
    const char *key;
    size_t i;

    if (pfo == NULL)
        return;
    if (!json_is_object(pfo)) {
        pol_report_entry(ld, src, "prefilter", "must be an object");
        return;
    }
    json_object_foreach(pfo, key, v) {
        int ok = 0;
        for (i = 0; keys[i] != NULL; i++)
            if (strcmp(key, keys[i]) == 0)
                ok = 1;
        p[3].key = key;
        if (!ok)
            pol_report(ld, src->pack, p, 4, "unknown key");
    }
    pol_get_words_at(ld, src, pfo, "prefilter", "words", &pf->words);
    for (i = 0; i < 7; i++) {
        v = json_object_get(pfo, nums[i].key);
        p[3].key = nums[i].key;
        if (v == NULL)
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < nums[i].lo ||
            json_integer_value(v) > nums[i].hi) {
            pol_report(ld, src->pack, p, 4, "must be an integer between %ld and %ld",
                       nums[i].lo, nums[i].hi);
            continue;
        }
        has[i] = 1;
        val[i] = (unsigned)json_integer_value(v);
    }
    if (json_object_get(pfo, "words") != NULL && pf->words.n == 0) {
        p[3].key = "words";
        pol_report(ld, src->pack, p, 4, "needs at least one word");
    }
    if (pf->words.n == 0 && !has[2])
        pol_report(ld, src->pack, p, 3, "needs \"words\" or \"digits\"");
    if ((has[0] || has[1]) && (has[2] || pf->words.n == 0)) {
        p[3].key = has[0] ? "before" : "after";
        pol_report(ld, src->pack, p, 4, "a window needs \"words\" and no \"digits\"");
    }
    v = json_object_get(pfo, "whole");
    if (v != NULL && !json_is_boolean(v)) {
        p[3].key = "whole";
        pol_report(ld, src->pack, p, 4, "must be true or false");
    }
    pf->whole = v != NULL && json_is_true(v);
    if ((has[3] || has[4] || has[5] || has[6] || pf->whole) && !has[2]) {
        p[3].key = has[3] ? "gap" : has[4] ? "lead" : has[5] ? "groups" :
                   has[6] ? "max_digits" : "whole";
        pol_report(ld, src->pack, p, 4, "needs \"digits\"");
    }
    if (has[2] && has[6] && val[6] < val[2]) {
        p[3].key = "max_digits";
        pol_report(ld, src->pack, p, 4, "must not be less than \"digits\"");
    }
    v = json_object_get(pfo, "separators");
    if (v != NULL) {
        const unsigned char *q;
        size_t n, k;
        p[3].key = "separators";
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 256 ||
            strlen(json_string_value(v)) != json_string_length(v)) {
            pol_report(ld, src->pack, p, 4, "must be a non-empty string of at most 256 bytes");
        } else if (!has[2]) {
            pol_report(ld, src->pack, p, 4, "needs \"digits\"");
        } else if ((pf->sep = calloc(json_string_length(v), sizeof *pf->sep)) == NULL) {
            pol_report(ld, src->pack, p, 4, "out of memory");
        } else {
            /* Jansson strings are valid UTF-8: decode each code point. */
            q = (const unsigned char *)json_string_value(v);
            n = json_string_length(v);
            for (k = 0; k < n; k += pol_utf8_len(q[k])) {
                size_t l = pol_utf8_len(q[k]), b;
                uint32_t c = l == 1 ? q[k] : (uint32_t)(q[k] & (0xff >> (l + 1)));
                for (b = 1; b < l; b++)
                    c = (c << 6) | (q[k + b] & 0x3fu);
                if ((c >= '0' && c <= '9') || (c >= 0xff10 && c <= 0xff19))
                    break;
                pf->sep[pf->nsep++] = c;
                if (c < 0x80)
                    pf->sepa[c >> 6] |= (uint64_t)1 << (c & 63);
                else
                    pf->sepm |= (uint64_t)1 << (c & 63);
            }
            if (k < n)
                pol_report(ld, src->pack, p, 4, "must not contain digits");
        }
    }
    v = json_object_get(pfo, "between");
    if (v != NULL) {
        p[3].key = "between";
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) > POL_MAX_PATTERN ||
            strlen(json_string_value(v)) != json_string_length(v))
            pol_report(ld, src->pack, p, 4, "must be a non-empty pattern string");
        else if (pf->words.n == 0 || has[2])
            pol_report(ld, src->pack, p, 4, "needs \"words\" and no \"digits\"");
        else if ((pf->between_src = pol_strdup(json_string_value(v))) == NULL)
            pol_report(ld, src->pack, p, 4, "out of memory");
    }
    pf->window = has[0] || has[1] || pf->between_src != NULL;
    pf->before = val[0];
    pf->after = val[1];
    pf->digits = val[2];
    pf->gap = val[3];
    pf->lead = val[4];
    pf->groups = val[5];
    pf->max_digits = val[6];
}

static const struct {
    const char *name;
    pol_validator v;
} pol_validators[] = {
    {"none", POL_V_NONE},       {"mynumber", POL_V_MYNUMBER},
    {"corporate_number", POL_V_CORPORATE}, {"luhn", POL_V_LUHN},
    {"jp_phone", POL_V_JP_PHONE}, {"ipv4", POL_V_IPV4},
    {"ipv6", POL_V_IPV6},       {"date", POL_V_DATE},
};

static void pol_parse_detector(pol_loader *ld, const pol_src *src, json_t *o,
                               pol_det_spec *d, int *enabled)
{
    static const char *const keys[] = {"id", "type", "pattern", "validator",
        "context", "anchor", "prefilter", "action", "priority", "enabled", "description",
        NULL};
    static const char *const akeys[] = {"words", "before", "after", NULL};
    static const char *const ckeys[] = {"words", "window", "before", "after",
        "required", "exclude", NULL};
    char *s;
    json_t *ctx;
    size_t i;

    memset(d, 0, sizeof *d);
    d->src = *src;
    pol_check_keys(ld, src, o, keys);
    d->id = pol_get_id(ld, src, o);
    *enabled = pol_get_bool(ld, src, o, "enabled", 1);
    if (!*enabled)
        return;
    d->type = pol_get_str(ld, src, o, "type", 1);
    if (d->type != NULL && !pol_type_ok(d->type))
        pol_report_entry(ld, src, "type", "must be 1-32 of [a-z0-9_], starting with a letter");
    d->pattern = pol_get_str(ld, src, o, "pattern", 1);
    s = pol_get_str(ld, src, o, "validator", 0);
    if (s != NULL) {
        int found = 0;
        for (i = 0; i < sizeof pol_validators / sizeof pol_validators[0]; i++)
            if (strcmp(s, pol_validators[i].name) == 0) {
                d->validator = pol_validators[i].v;
                found = 1;
            }
        if (!found)
            pol_report_entry(ld, src, "validator",
                             "unknown validator (none, mynumber, corporate_number, luhn, jp_phone, ipv4, ipv6, date)");
        free(s);
    }
    s = pol_get_str(ld, src, o, "action", 0);
    d->action = POL_ACT_MASK;
    if (s != NULL) {
        if (strcmp(s, "refuse") == 0)
            d->action = POL_ACT_REFUSE;
        else if (strcmp(s, "mask") != 0)
            pol_report_entry(ld, src, "action", "must be \"mask\" or \"refuse\"");
        free(s);
    }
    d->priority = (int)pol_get_int(ld, src, o, "priority", -1000, 1000, 0);
    ctx = json_object_get(o, "anchor");
    if (ctx != NULL) {
        pol_jpath p[4] = {{src->section, 0}, {NULL, src->index}, {"anchor", 0}, {NULL, 0}};
        const char *key;
        json_t *v;
        if (!json_is_object(ctx)) {
            pol_report_entry(ld, src, "anchor", "must be an object");
        } else {
            json_object_foreach(ctx, key, v) {
                int ok = 0;
                for (i = 0; akeys[i] != NULL; i++)
                    if (strcmp(key, akeys[i]) == 0)
                        ok = 1;
                p[3].key = key;
                if (!ok)
                    pol_report(ld, src->pack, p, 4, "unknown key");
            }
            pol_get_words_at(ld, src, ctx, "anchor", "words", &d->anchor);
            if (d->anchor.n == 0) {
                p[3].key = "words";
                pol_report(ld, src->pack, p, 3, "an anchor needs \"words\"");
            }
            for (i = 0; i < 2; i++) {
                const char *k = i == 0 ? "before" : "after";
                json_t *w = json_object_get(ctx, k);
                p[3].key = k;
                if (w == NULL)
                    continue;
                if (!json_is_integer(w) || json_integer_value(w) < 0 ||
                    json_integer_value(w) > POL_MAX_WINDOW) {
                    pol_report(ld, src->pack, p, 4, "must be an integer between 0 and %d",
                               POL_MAX_WINDOW);
                    continue;
                }
                if (i == 0)
                    d->anchor_before = (unsigned)json_integer_value(w);
                else
                    d->anchor_after = (unsigned)json_integer_value(w);
            }
        }
    }
    pol_get_prefilter(ld, src, o, &d->pf);
    ctx = json_object_get(o, "context");
    if (ctx != NULL) {
        pol_src csrc = *src;
        if (!json_is_object(ctx)) {
            pol_report_entry(ld, src, "context", "must be an object");
            return;
        }
        {
            const char *key;
            json_t *v;
            json_object_foreach(ctx, key, v) {
                int ok = 0;
                for (i = 0; ckeys[i] != NULL; i++)
                    if (strcmp(key, ckeys[i]) == 0)
                        ok = 1;
                if (!ok) {
                    pol_jpath p[4] = {{src->section, 0}, {NULL, src->index},
                                      {"context", 0}, {key, 0}};
                    pol_report(ld, src->pack, p, 4, "unknown key");
                }
            }
        }
        pol_get_words(ld, &csrc, ctx, "words", &d->ctx);
        pol_get_words(ld, &csrc, ctx, "exclude", &d->not_ctx);
        {
            static const char *const wk[3] = {"window", "before", "after"};
            size_t k;
            d->before = d->after = 20;
            for (k = 0; k < 3; k++) {
                json_t *w = json_object_get(ctx, wk[k]);
                pol_jpath p[4] = {{src->section, 0}, {NULL, src->index},
                                  {"context", 0}, {wk[k], 0}};
                unsigned v;
                if (w == NULL)
                    continue;
                if (!json_is_integer(w) || json_integer_value(w) < 0 ||
                    json_integer_value(w) > POL_MAX_WINDOW) {
                    pol_report(ld, src->pack, p, 4, "must be an integer between 0 and %d",
                               POL_MAX_WINDOW);
                    continue;
                }
                v = (unsigned)json_integer_value(w);
                if (k == 0)
                    d->before = d->after = v;
                else if (k == 1)
                    d->before = v;
                else
                    d->after = v;
            }
        }
        {
            json_t *r = json_object_get(ctx, "required");
            pol_jpath p[4] = {{src->section, 0}, {NULL, src->index},
                              {"context", 0}, {"required", 0}};
            if (r != NULL && !json_is_boolean(r))
                pol_report(ld, src->pack, p, 4, "must be true or false");
            d->required = r != NULL && json_is_true(r);
            if (d->required && d->ctx.n == 0)
                pol_report(ld, src->pack, p, 4, "required context needs \"words\"");
        }
    }
}

static void pol_parse_marking(pol_loader *ld, const pol_src *src, json_t *o,
                              pol_mark_spec *m, int *enabled)
{
    static const char *const keys[] = {"id", "level", "pattern", "prefilter", "enabled",
        "description", NULL};

    memset(m, 0, sizeof *m);
    m->src = *src;
    pol_check_keys(ld, src, o, keys);
    m->id = pol_get_id(ld, src, o);
    *enabled = pol_get_bool(ld, src, o, "enabled", 1);
    if (!*enabled)
        return;
    if (json_object_get(o, "level") == NULL)
        pol_report_entry(ld, src, NULL, "missing required key \"level\"");
    m->level = (int)pol_get_int(ld, src, o, "level", POL_LEVEL_MIN, POL_LEVEL_MAX, 0);
    m->pattern = pol_get_str(ld, src, o, "pattern", 1);
    pol_get_prefilter(ld, src, o, &m->pf);
}

static void pol_parse_allow(pol_loader *ld, const pol_src *src, json_t *o,
                            pol_allow_spec *a, int *enabled)
{
    static const char *const keys[] = {"id", "pattern", "types", "enabled",
        "description", NULL};
    json_t *t, *v;
    size_t i;

    memset(a, 0, sizeof *a);
    a->src = *src;
    pol_check_keys(ld, src, o, keys);
    a->id = pol_get_id(ld, src, o);
    *enabled = pol_get_bool(ld, src, o, "enabled", 1);
    if (!*enabled)
        return;
    a->pattern = pol_get_str(ld, src, o, "pattern", 1);
    t = json_object_get(o, "types");
    if (t == NULL)
        return;
    if (!json_is_array(t) || json_array_size(t) > POL_MAX_TYPES) {
        pol_report_entry(ld, src, "types", "must be an array of entity type names");
        return;
    }
    a->types = calloc(json_array_size(t) + 1, sizeof *a->types);
    if (a->types == NULL) {
        pol_report_entry(ld, src, "types", "out of memory");
        return;
    }
    json_array_foreach(t, i, v) {
        pol_jpath p[4] = {{src->section, 0}, {NULL, src->index}, {"types", 0}, {NULL, i}};
        if (!json_is_string(v) || !pol_type_ok(json_string_value(v))) {
            pol_report(ld, src->pack, p, 4, "must be an entity type name");
            continue;
        }
        a->types[a->ntypes] = pol_strdup(json_string_value(v));
        if (a->types[a->ntypes] != NULL)
            a->ntypes++;
    }
}

/* Generic merge: find index of an entry with this id, or -1. */
#define POL_FIND(arr, n, idv, out) do {                          \
        size_t i_;                                               \
        (out) = -1;                                              \
        for (i_ = 0; i_ < (n); i_++)                             \
            if ((arr)[i_].id != NULL && strcmp((arr)[i_].id, (idv)) == 0) \
                (out) = (long)i_;                                \
    } while (0)

static void pol_load_pack(pol_loader *ld, size_t pk)
{
    static const char *const top[] = {"format", "name", "description",
        "macros", "detectors", "markings", "allow", NULL};
    json_error_t jerr;
    json_t *root, *arr, *v;
    const char *key;
    size_t i;
    pol_jpath p[2];

    memset(p, 0, sizeof p);

    root = json_loadb(ld->data[pk], ld->lens[pk], JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        ld->nerr++;
        if (ld->errs != NULL)
            fprintf(ld->errs, "%s:%d:%d: $: JSON syntax error: %s\n", ld->names[pk],
                    jerr.line, jerr.column, jerr.text);
        return;
    }
    if (!json_is_object(root)) {
        pol_report(ld, pk, p, 0, "a rule pack must be a JSON object");
        goto done;
    }
    json_object_foreach(root, key, v) {
        int ok = 0;
        for (i = 0; top[i] != NULL; i++)
            if (strcmp(key, top[i]) == 0)
                ok = 1;
        p[0].key = key;
        if (!ok)
            pol_report(ld, pk, p, 1, "unknown key");
    }
    v = json_object_get(root, "format");
    p[0].key = "format";
    if (v == NULL)
        pol_report(ld, pk, p, 0, "missing required key \"format\" (1)");
    else if (!json_is_integer(v) || json_integer_value(v) != 1)
        pol_report(ld, pk, p, 1, "unsupported format (this engine reads format 1)");
    v = json_object_get(root, "name");
    p[0].key = "name";
    if (v != NULL && !json_is_string(v))
        pol_report(ld, pk, p, 1, "must be a string");
    v = json_object_get(root, "description");
    p[0].key = "description";
    if (v != NULL && !json_is_string(v))
        pol_report(ld, pk, p, 1, "must be a string");

    arr = json_object_get(root, "macros");
    if (arr != NULL) {
        p[0].key = "macros";
        if (!json_is_object(arr)) {
            pol_report(ld, pk, p, 1, "must be an object of NAME: pattern text");
        } else {
            json_object_foreach(arr, key, v) {
                long at = -1;
                p[1].key = key;
                if (!pol_macro_name_ok(key)) {
                    pol_report(ld, pk, p, 2, "macro names are 1-32 of [A-Z0-9_]");
                    continue;
                }
                if (!json_is_string(v) || json_string_length(v) > POL_MAX_PATTERN) {
                    pol_report(ld, pk, p, 2, "must be a string of pattern text");
                    continue;
                }
                for (i = 0; i < ld->nmac; i++)
                    if (strcmp(ld->mac[i].name, key) == 0)
                        at = (long)i;
                if (at < 0) {
                    pol_macro *nm;
                    if (ld->nmac >= POL_MAX_MACROS) {
                        pol_report(ld, pk, p, 2, "too many macros (max %d)", POL_MAX_MACROS);
                        continue;
                    }
                    nm = realloc(ld->mac, (ld->nmac + 1) * sizeof *nm);
                    if (nm == NULL) {
                        pol_report(ld, pk, p, 2, "out of memory");
                        continue;
                    }
                    ld->mac = nm;
                    at = (long)ld->nmac++;
                    ld->mac[at].name = pol_strdup(key);
                    ld->mac[at].value = NULL;
                }
                free(ld->mac[at].value);
                ld->mac[at].value = pol_strdup(json_string_value(v));
                ld->mac[at].pack = pk;
                if (ld->mac[at].name == NULL || ld->mac[at].value == NULL)
                    pol_report(ld, pk, p, 2, "out of memory");
            }
        }
    }

#define POL_SECTION(NAME, SPEC_T, ARR, N, PARSE, FREE)                        \
    arr = json_object_get(root, NAME);                                         \
    if (arr != NULL) {                                                         \
        p[0].key = NAME;                                                       \
        if (!json_is_array(arr) || json_array_size(arr) > POL_MAX_ENTRIES) {   \
            pol_report(ld, pk, p, 1, "must be an array of at most %d objects", \
                       POL_MAX_ENTRIES);                                       \
        } else {                                                               \
            json_array_foreach(arr, i, v) {                                    \
                pol_src src = {pk, NAME, i};                                   \
                SPEC_T spec;                                                   \
                int en = 1;                                                    \
                long at;                                                       \
                if (!json_is_object(v)) {                                      \
                    pol_report_entry(ld, &src, NULL, "must be an object");     \
                    continue;                                                  \
                }                                                              \
                PARSE(ld, &src, v, &spec, &en);                                \
                if (spec.id == NULL) {                                         \
                    FREE(&spec);                                               \
                    continue;                                                  \
                }                                                              \
                POL_FIND(ld->ARR, ld->N, spec.id, at);                         \
                if (at >= 0 && !en) {                                          \
                    FREE(&ld->ARR[at]);                                        \
                    FREE(&spec);                                               \
                } else if (at >= 0) {                                          \
                    FREE(&ld->ARR[at]);                                        \
                    ld->ARR[at] = spec;                                        \
                } else if (en) {                                               \
                    SPEC_T *na = realloc(ld->ARR, (ld->N + 1) * sizeof *na);   \
                    if (na == NULL) {                                          \
                        pol_report_entry(ld, &src, NULL, "out of memory");     \
                        FREE(&spec);                                           \
                        continue;                                              \
                    }                                                          \
                    ld->ARR = na;                                              \
                    ld->ARR[ld->N++] = spec;                                   \
                } else {                                                       \
                    FREE(&spec);                                               \
                }                                                              \
            }                                                                  \
        }                                                                      \
    }

    POL_SECTION("detectors", pol_det_spec, det, ndet, pol_parse_detector, pol_det_spec_free)
    POL_SECTION("markings", pol_mark_spec, mark, nmark, pol_parse_marking, pol_mark_spec_free)
    POL_SECTION("allow", pol_allow_spec, allow, nallow, pol_parse_allow, pol_allow_spec_free)
#undef POL_SECTION
done:
    json_decref(root);
}

/* Expand {{NAME}} macros into a new string; NULL with *why set on error. */
static char *pol_expand(const pol_loader *ld, const char *pat, int depth,
                        const char **why, const char **which)
{
    size_t cap = strlen(pat) + 1, n = 0;
    char *out = malloc(cap);
    const char *s = pat;

    if (out == NULL) {
        *why = "out of memory";
        return NULL;
    }
    while (*s != '\0') {
        const char *end;
        if (s[0] == '{' && s[1] == '{' && (end = strstr(s + 2, "}}")) != NULL &&
            (size_t)(end - s - 2) <= 32) {
            size_t nl = (size_t)(end - s - 2), i;
            const char *val = NULL;
            char *sub;
            for (i = 0; i < ld->nmac; i++)
                if (strlen(ld->mac[i].name) == nl && memcmp(ld->mac[i].name, s + 2, nl) == 0)
                    val = ld->mac[i].value;
            if (val == NULL) {
                *why = "unknown macro";
                *which = s;
                free(out);
                return NULL;
            }
            if (depth >= POL_MACRO_DEPTH) {
                *why = "macros nested too deeply (or recursive)";
                free(out);
                return NULL;
            }
            sub = pol_expand(ld, val, depth + 1, why, which);
            if (sub == NULL) {
                free(out);
                return NULL;
            }
            {
                size_t sl = strlen(sub);
                if (n + sl + 1 > POL_MAX_PATTERN) {
                    *why = "pattern too long after macro expansion";
                    free(sub);
                    free(out);
                    return NULL;
                }
                if (n + sl + 1 > cap) {
                    char *no;
                    cap = (n + sl + 1) * 2;
                    no = realloc(out, cap);
                    if (no == NULL) {
                        *why = "out of memory";
                        free(sub);
                        free(out);
                        return NULL;
                    }
                    out = no;
                }
                memcpy(out + n, sub, sl);
                n += sl;
            }
            free(sub);
            s = end + 2;
            continue;
        }
        if (n + 2 > cap) {
            char *no;
            cap = cap * 2 + 2;
            no = realloc(out, cap);
            if (no == NULL) {
                *why = "out of memory";
                free(out);
                return NULL;
            }
            out = no;
        }
        out[n++] = *s++;
    }
    out[n] = '\0';
    return out;
}

/* Options for a pattern searched in windows (anchor or prefilter).  The
 * offset limit bounds where a match may start.  PCRE2_NO_START_OPTIMIZE
 * is applied only to patterns with a required code unit (pol_compile):
 * the JIT looks for that unit from a candidate start to the end of the
 * text on every call, so many small windows over a long text were
 * quadratic (機 repeated, for the markings); its first-unit and start-set
 * searches stop at the offset limit and are kept.  Neither option changes
 * what a match attempt at a given start finds. */
#define POL_WINDOWED (PCRE2_USE_OFFSET_LIMIT | PCRE2_NO_START_OPTIMIZE)

/* 1 when PCRE2 found a code unit every match must contain (it then
 * searches for it before matching). */
static int pol_has_required_unit(const pcre2_code *re)
{
    uint32_t req = 0;

    return pcre2_pattern_info(re, PCRE2_INFO_LASTCODETYPE, &req) != 0 || req != 0;
}

/* Compile a pattern of an entry, found at its key (and sub key, or NULL);
 * reports there and returns NULL on error. */
static pcre2_code *pol_compile(pol_loader *ld, const pol_src *src, const char *key,
                               const char *sub, const char *pattern, uint32_t extra)
{
    const char *why = NULL, *which = NULL;
    char *full = pol_expand(ld, pattern, 0, &why, &which);
    pcre2_code *re;
    int ec;
    PCRE2_SIZE off;
    size_t minlen = 0;

    if (full == NULL) {
        if (which != NULL) {
            const char *e = strstr(which, "}}");
            int l = e != NULL ? (int)(e - which) + 2 : 4;
            pol_report_key(ld, src, key, sub, "%s %.*s", why, l > 40 ? 40 : l, which);
        } else {
            pol_report_key(ld, src, key, sub, "%s", why);
        }
        return NULL;
    }
    re = pcre2_compile((PCRE2_SPTR)full, PCRE2_ZERO_TERMINATED,
                       PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C | (extra & ~PCRE2_NO_START_OPTIMIZE),
                       &ec, &off, NULL);
    if (re == NULL) {
        PCRE2_UCHAR buf[256];
        if (pcre2_get_error_message(ec, buf, sizeof buf) < 0)
            snprintf((char *)buf, sizeof buf, "error %d", ec);
        pol_report_key(ld, src, key, sub, "PCRE2 error %d at offset %zu%s: %s", ec,
                         (size_t)off, strcmp(full, pattern) != 0 ? " (after macro expansion)" : "",
                         (const char *)buf);
        free(full);
        return NULL;
    }
    /* The minimum length is a start optimisation: PCRE2 computes it only
     * without PCRE2_NO_START_OPTIMIZE, so check it first and recompile. */
    if (pcre2_pattern_info(re, PCRE2_INFO_MINLENGTH, &minlen) == 0 && minlen == 0) {
        pol_report_key(ld, src, key, sub, "pattern can match the empty string");
        pcre2_code_free(re);
        free(full);
        return NULL;
    }
    if ((extra & PCRE2_NO_START_OPTIMIZE) && pol_has_required_unit(re)) {
        pcre2_code_free(re);
        re = pcre2_compile((PCRE2_SPTR)full, PCRE2_ZERO_TERMINATED,
                           PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C | extra, &ec, &off, NULL);
        if (re == NULL) {
            pol_report_key(ld, src, key, sub, "out of memory");
            free(full);
            return NULL;
        }
    }
    free(full);
    /* JIT is an optimisation: when it is unavailable the interpreter runs
     * the same pattern under the same limits. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

/* 1 when re has JIT code (pcre2_jit_match may be called on it). */
static int pol_jitted(const pcre2_code *re)
{
    size_t sz = 0;

    return re != NULL && pcre2_pattern_info(re, PCRE2_INFO_JITSIZE, &sz) == 0 && sz > 0;
}

/* UTF-8 form of code point c (not a surrogate) into u; returns its length. */
static size_t pol_utf8_put(uint32_t c, unsigned char u[4])
{
    if (c < 0x80) {
        u[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        u[0] = (unsigned char)(0xc0 | (c >> 6));
        u[1] = (unsigned char)(0x80 | (c & 0x3f));
        return 2;
    }
    u[0] = (unsigned char)(0xe0 | (c >> 12));
    u[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
    u[2] = (unsigned char)(0x80 | (c & 0x3f));
    return 3;
}

/* A prefilter's "between": the class of the characters its pattern
 * matches alone, kept as a bit map over the code points below U+10000 so
 * that the scan tests a character with one bit.  The code points above
 * are all counted in (a larger class only widens windows, never loses a
 * match), as is any character on which the pattern fails with an error.
 * Computed once here, about 63,000 small matches.  0, or -1 when reported
 * (the pattern does not compile, or out of memory). */
static int pol_compile_class(pol_loader *ld, const pol_src *src, pol_prefilter *pf)
{
    pcre2_code *re;
    pcre2_match_data *md;
    pcre2_match_context *mc;
    uint32_t c;
    int ret = -1, jit;

    if (pf->between_src == NULL)
        return 0;
    re = pol_compile(ld, src, "prefilter", "between", pf->between_src,
                     PCRE2_ANCHORED | PCRE2_ENDANCHORED);
    free(pf->between_src);
    pf->between_src = NULL;
    if (re == NULL)
        return -1;
    pf->between = calloc(POL_CLASS_BYTES, 1);
    md = pcre2_match_data_create_from_pattern(re, NULL);
    mc = pcre2_match_context_create(NULL);
    if (pf->between == NULL || md == NULL || mc == NULL) {
        pol_report_key(ld, src, "prefilter", "between", "out of memory");
        goto done;
    }
    /* A character is one match attempt: a small limit bounds the load
     * time of a pattern that backtracks badly; hitting it counts the
     * character in. */
    pcre2_set_match_limit(mc, 10000);
    pcre2_set_depth_limit(mc, 1000);
    jit = pol_jitted(re);
    for (c = 0; c < 0x10000; c++) {
        unsigned char u[4];
        size_t n;
        int rc;
        if (c >= 0xd800 && c <= 0xdfff)
            continue;   /* surrogates never occur in valid UTF-8 */
        n = pol_utf8_put(c, u);
        rc = jit ? pcre2_jit_match(re, u, n, 0, PCRE2_NO_UTF_CHECK, md, mc)
                 : pcre2_match(re, u, n, 0, PCRE2_NO_UTF_CHECK, md, mc);
        if (rc != PCRE2_ERROR_NOMATCH)
            pf->between[c >> 3] |= (uint8_t)(1u << (c & 7));
    }
    ret = 0;
done:
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return ret;
}

/* 1 when no occurrence of a word in w can start inside an occurrence of
 * another or the same word, nor at the same place: then the alternation
 * of the words (an anchor) finds every occurrence of every word. */
static int pol_words_apart(const pol_words *w)
{
    size_t a, b, k;

    for (a = 0; a < w->n; a++)
        for (b = 0; b < w->n; b++)
            for (k = 0; k < w->len[a]; k++) {
                size_t rest = w->len[a] - k, n = rest < w->len[b] ? rest : w->len[b];
                if (k == 0 && a == b)
                    continue;
                if (memcmp(w->w[a] + k, w->w[b], n) == 0)
                    return 0;
            }
    return 1;
}

/* 1 when the prefilter's windows of an anchored detector all lie in its
 * anchor windows: the same words, found apart, bounded no wider. */
static int pol_pf_in_anchor(const pol_detector *d)
{
    size_t i;

    if (d->anchor == NULL || d->pf.words.n == 0 || d->pf.digits > 0 || !d->pf.window ||
        d->pf.words.n != d->anchor_words.n || d->pf.before > d->anchor_before ||
        d->pf.after > d->anchor_after)
        return 0;
    for (i = 0; i < d->pf.words.n; i++)
        if (d->pf.words.len[i] != d->anchor_words.len[i] ||
            memcmp(d->pf.words.w[i], d->anchor_words.w[i], d->pf.words.len[i]) != 0)
            return 0;
    return pol_words_apart(&d->anchor_words);
}

/* A literal alternation of words, every character escaped, JIT-compiled.
 * Returns NULL when out of memory. */
static pcre2_code *pol_compile_words(const pol_words *w)
{
    size_t cap = 16, n = 0, i, k;
    char *pat;
    pcre2_code *re;
    int ec;
    PCRE2_SIZE off;

    for (i = 0; i < w->n; i++)
        cap += 2 * w->len[i] + 1;
    pat = malloc(cap);
    if (pat == NULL)
        return NULL;
    for (i = 0; i < w->n; i++) {
        if (i > 0)
            pat[n++] = '|';
        for (k = 0; k < w->len[i]; k++) {
            unsigned char c = (unsigned char)w->w[i][k];
            if (c < 0x80 && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9')))
                pat[n++] = '\\';
            pat[n++] = (char)c;
        }
    }
    pat[n] = '\0';
    re = pcre2_compile((PCRE2_SPTR)pat, n, PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C, &ec, &off, NULL);
    free(pat);
    if (re != NULL)
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

static void pol_engine_free_parts(pol_engine *e)
{
    size_t i;

    for (i = 0; i < e->ndet; i++) {
        free(e->det[i].id);
        pcre2_code_free(e->det[i].re);
        pol_words_free(&e->det[i].ctx);
        pol_words_free(&e->det[i].not_ctx);
        pcre2_code_free(e->det[i].anchor);
        pol_words_free(&e->det[i].anchor_words);
        pol_prefilter_free(&e->det[i].pf);
    }
    free(e->det);
    for (i = 0; i < e->nmark; i++) {
        free(e->mark[i].id);
        pcre2_code_free(e->mark[i].re);
        pol_prefilter_free(&e->mark[i].pf);
    }
    pol_dict_free(&e->dict);
    free(e->mark);
    for (i = 0; i < e->nallow; i++) {
        free(e->allow[i].id);
        pcre2_code_free(e->allow[i].re);
    }
    free(e->allow);
    for (i = 0; i < e->ntypes; i++)
        free(e->types[i]);
    pcre2_code_free(e->lit_token);
    pcre2_code_free(e->lit_xml);
}

void pol_engine_free(pol_engine *e)
{
    if (e == NULL)
        return;
    pol_engine_free_parts(e);
    free(e);
}

static long pol_type_index(pol_engine *e, const char *t, int add)
{
    size_t i;

    for (i = 0; i < e->ntypes; i++)
        if (strcmp(e->types[i], t) == 0)
            return (long)i;
    if (!add || e->ntypes >= POL_MAX_TYPES - 1)
        return -1;
    e->types[e->ntypes] = pol_strdup(t);
    if (e->types[e->ntypes] == NULL)
        return -1;
    return (long)e->ntypes++;
}

static void pol_track_ovec(pol_engine *e, const pcre2_code *re)
{
    uint32_t cc = 0;

    if (re != NULL && pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &cc) == 0 &&
        cc + 1 > e->max_ovec)
        e->max_ovec = cc + 1;
}

/* Number the digit prefilters by gap and separators: equal ones share
 * their clusters within a field. */
static void pol_digit_classes(pol_engine *e)
{
    pol_prefilter **all;
    size_t n = 0, i, k, np = e->ndet + e->nmark;
    unsigned next = 0;

    all = malloc((np + 1) * sizeof *all);
    for (i = 0; i < np; i++) {
        pol_prefilter *pf = i < e->ndet ? &e->det[i].pf : &e->mark[i - e->ndet].pf;
        pf->dclass = next++;        /* unique unless an equal one is found */
        /* Without the list every prefilter keeps its own class. */
        pf->class_digits = pf->digits;
        pf->class_groups = pf->groups;
        if (pf->digits == 0 || all == NULL)
            continue;
        for (k = 0; k < n; k++)
            if (all[k]->gap == pf->gap && all[k]->nsep == pf->nsep &&
                (pf->nsep == 0 || memcmp(all[k]->sep, pf->sep, pf->nsep * sizeof *pf->sep) == 0)) {
                pf->dclass = all[k]->dclass;
                break;
            }
        all[n++] = pf;
    }
    /* A class keeps only clusters that some prefilter of it could use. */
    for (i = 0; i < n; i++)
        for (k = 0; k < n; k++)
            if (all[k]->dclass == all[i]->dclass) {
                if (all[k]->digits < all[i]->class_digits)
                    all[i]->class_digits = all[k]->digits;
                if (all[k]->groups < all[i]->class_groups)
                    all[i]->class_groups = all[k]->groups;
            }
    free(all);
}

static int pol_build(pol_loader *ld, pol_engine *e)
{
    size_t i, j;
    int ec;
    PCRE2_SIZE off;

    e->det = calloc(ld->ndet ? ld->ndet : 1, sizeof *e->det);
    e->mark = calloc(ld->nmark ? ld->nmark : 1, sizeof *e->mark);
    e->allow = calloc(ld->nallow ? ld->nallow : 1, sizeof *e->allow);
    if (e->det == NULL || e->mark == NULL || e->allow == NULL)
        return -1;
    e->max_ovec = 1;
    for (i = 0; i < ld->ndet; i++) {
        pol_det_spec *s = &ld->det[i];
        pol_detector *d = &e->det[e->ndet];
        long t;
        if (s->id == NULL || s->type == NULL || s->pattern == NULL)
            continue;   /* already reported */
        t = pol_type_index(e, s->type, 1);
        if (t < 0) {
            pol_report_entry(ld, &s->src, "type", "too many entity types (max %d)",
                             POL_MAX_TYPES - 1);
            continue;
        }
        d->re = pol_compile(ld, &s->src, "pattern", NULL, s->pattern,
                            s->anchor.n > 0 || POL_PF_ACTIVE(&s->pf) ? POL_WINDOWED : 0);
        if (d->re == NULL)
            continue;
        if (s->anchor.n > 0) {
            d->anchor = pol_compile_words(&s->anchor);
            if (d->anchor == NULL) {
                pol_report_entry(ld, &s->src, "anchor", "cannot compile anchor words");
                pcre2_code_free(d->re);
                d->re = NULL;
                continue;
            }
            d->anchor_before = s->anchor_before;
            d->anchor_after = s->anchor_after;
            d->anchor_words = s->anchor;
            memset(&s->anchor, 0, sizeof s->anchor);
        }
        d->pf = s->pf;
        memset(&s->pf, 0, sizeof s->pf);
        (void)pol_compile_class(ld, &s->src, &d->pf);
        d->id = s->id;
        s->id = NULL;
        d->type = (size_t)t;
        d->validator = s->validator;
        d->pf_in_anchor = pol_pf_in_anchor(d);
        d->ctx = s->ctx;
        d->not_ctx = s->not_ctx;
        memset(&s->ctx, 0, sizeof s->ctx);
        memset(&s->not_ctx, 0, sizeof s->not_ctx);
        d->before = s->before;
        d->after = s->after;
        d->ctx_required = s->required;
        d->action = s->action;
        d->priority = s->priority;
        pol_track_ovec(e, d->re);
        e->ndet++;
    }
    for (i = 0; i < ld->nmark; i++) {
        pol_mark_spec *s = &ld->mark[i];
        pol_marking *m = &e->mark[e->nmark];
        if (s->id == NULL || s->pattern == NULL || s->level == 0)
            continue;
        m->re = pol_compile(ld, &s->src, "pattern", NULL, s->pattern,
                            POL_PF_ACTIVE(&s->pf) ? POL_WINDOWED : 0);
        if (m->re == NULL)
            continue;
        m->id = s->id;
        s->id = NULL;
        m->level = s->level;
        m->pf = s->pf;
        memset(&s->pf, 0, sizeof s->pf);
        (void)pol_compile_class(ld, &s->src, &m->pf);
        pol_track_ovec(e, m->re);
        e->nmark++;
    }
    for (i = 0; i < ld->nallow; i++) {
        pol_allow_spec *s = &ld->allow[i];
        pol_allow *a = &e->allow[e->nallow];
        if (s->id == NULL || s->pattern == NULL)
            continue;
        a->types = s->ntypes == 0 ? ~(uint64_t)0 : 0;
        for (j = 0; j < s->ntypes; j++) {
            /* A type no detector has (e.g. after a later pack disabled
             * them) leaves the rule inert for that type. */
            long t = pol_type_index(e, s->types[j], 0);
            if (t >= 0)
                a->types |= (uint64_t)1 << t;
        }
        a->re = pol_compile(ld, &s->src, "pattern", NULL, s->pattern,
                            PCRE2_ANCHORED | PCRE2_ENDANCHORED);
        if (a->re == NULL)
            continue;
        a->id = s->id;
        s->id = NULL;
        pol_track_ovec(e, a->re);
        e->nallow++;
    }
    /* Literal placeholder syntax in the input is masked like a value, so a
     * terminal cannot forge a placeholder and have another value restored
     * into its text. */
    {
        long t = pol_type_index(e, "placeholder_literal", 1);
        if (t < 0)
            return -1;
        e->placeholder_type = (size_t)t;
    }
    e->lit_token = pcre2_compile((PCRE2_SPTR) "[\\x{27E6}\\x{27E7}]", PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF, &ec, &off, NULL);
    e->lit_xml = pcre2_compile((PCRE2_SPTR) "<(?:\\s|\\x{A0}|\\x{3000})*/?(?:\\s|\\x{A0}|\\x{3000})*" POL_XML_TAG, PCRE2_ZERO_TERMINATED,
                               PCRE2_UTF | PCRE2_CASELESS, &ec, &off, NULL);
    if (e->lit_token == NULL || e->lit_xml == NULL)
        return -1;
    (void)pcre2_jit_compile(e->lit_token, PCRE2_JIT_COMPLETE);
    (void)pcre2_jit_compile(e->lit_xml, PCRE2_JIT_COMPLETE);
    pol_digit_classes(e);
    e->jit_all = pol_jitted(e->lit_token) && pol_jitted(e->lit_xml);
    for (i = 0; i < e->ndet; i++)
        e->jit_all = e->jit_all && pol_jitted(e->det[i].re) &&
                     (e->det[i].anchor == NULL || pol_jitted(e->det[i].anchor));
    for (i = 0; i < e->nmark; i++)
        e->jit_all = e->jit_all && pol_jitted(e->mark[i].re);
    for (i = 0; i < e->nallow; i++)
        e->jit_all = e->jit_all && pol_jitted(e->allow[i].re);
    return pol_dict_build(&e->dict, e);
}

void pol_engine_set_reference(pol_engine *e, int on)
{
    if (e != NULL)
        e->reference = on != 0;
}

pol_engine *pol_engine_load_mem(const char *const *names,
                                const char *const *data, const size_t *lens,
                                size_t n, FILE *errs)
{
    pol_loader ld;
    pol_engine *e = NULL;
    pol_sha256 sha;
    unsigned char dg[32];
    size_t i;

    memset(&ld, 0, sizeof ld);
    ld.errs = errs;
    ld.names = names;
    ld.data = data;
    ld.lens = lens;
    if (names == NULL || data == NULL || lens == NULL || n == 0) {
        if (errs != NULL)
            fprintf(errs, "policy: no rule pack given\n");
        return NULL;
    }
    pol_sha256_init(&sha);
    for (i = 0; i < n; i++) {
        unsigned char be[8];
        size_t k;
        for (k = 0; k < 8; k++)
            be[k] = (unsigned char)((uint64_t)lens[i] >> (56 - 8 * k));
        pol_sha256_update(&sha, be, sizeof be);
        pol_sha256_update(&sha, data[i], lens[i]);
        if (lens[i] > POL_MAX_PACK_BYTES) {
            ld.nerr++;
            if (errs != NULL)
                fprintf(errs, "%s:1:1: $: rule pack larger than %zu bytes\n", names[i],
                        POL_MAX_PACK_BYTES);
            continue;
        }
        pol_load_pack(&ld, i);
    }
    pol_sha256_final(&sha, dg);
    /* Compile even after structural errors, so bad patterns are reported
     * in the same pass; the engine is discarded if anything failed. */
    e = calloc(1, sizeof *e);
    if (e == NULL)
        goto fail;
    for (i = 0; i < 32; i++) {
        static const char hx[] = "0123456789abcdef";
        e->digest[2 * i] = hx[dg[i] >> 4];
        e->digest[2 * i + 1] = hx[dg[i] & 15];
    }
    e->digest[64] = '\0';
    if (pol_build(&ld, e) != 0) {
        if (errs != NULL)
            fprintf(errs, "policy: out of memory while compiling rule packs\n");
        goto fail;
    }
    if (ld.nerr > 0)
        goto fail;
    pol_loader_free(&ld);
    return e;
fail:
    pol_engine_free(e);
    pol_loader_free(&ld);
    return NULL;
}

/* Read a whole file, capped.  Returns 0 or -1 (reported). */
static int pol_read_file(const char *path, char **out, size_t *len, FILE *errs)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;

    if (f == NULL) {
        if (errs != NULL)
            fprintf(errs, "%s:0:0: $: cannot open rule pack: %s\n", path, strerror(errno));
        return -1;
    }
    for (;;) {
        size_t got;
        if (n == cap) {
            char *nb;
            if (cap > POL_MAX_PACK_BYTES) {
                if (errs != NULL)
                    fprintf(errs, "%s:1:1: $: rule pack larger than %zu bytes\n", path,
                            POL_MAX_PACK_BYTES);
                goto fail;
            }
            cap = cap ? cap * 2 : 65536;
            nb = realloc(buf, cap + 1);
            if (nb == NULL)
                goto fail;
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                if (errs != NULL)
                    fprintf(errs, "%s:0:0: $: read error\n", path);
                goto fail;
            }
            break;
        }
    }
    fclose(f);
    if (buf == NULL) {
        buf = malloc(1);
        if (buf == NULL)
            return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
fail:
    fclose(f);
    free(buf);
    return -1;
}

pol_engine *pol_engine_load(const char *const *files, size_t n, FILE *errs)
{
    char **data = NULL;
    size_t *lens = NULL, i;
    pol_engine *e = NULL;
    int bad = 0;

    if (files == NULL || n == 0) {
        if (errs != NULL)
            fprintf(errs, "policy: no rule pack given\n");
        return NULL;
    }
    data = calloc(n, sizeof *data);
    lens = calloc(n, sizeof *lens);
    if (data == NULL || lens == NULL)
        goto fail;
    for (i = 0; i < n; i++)
        if (pol_read_file(files[i], &data[i], &lens[i], errs) != 0)
            bad = 1;
    if (!bad)
        e = pol_engine_load_mem(files, (const char *const *)data, lens, n, errs);
fail:
    if (data != NULL)
        for (i = 0; i < n; i++)
            free(data[i]);
    free(data);
    free(lens);
    return e;
}

const char *pol_engine_digest(const pol_engine *e)
{
    return e->digest;
}

size_t pol_engine_ntypes(const pol_engine *e)
{
    return e->ntypes;
}

const char *pol_engine_type_name(const pol_engine *e, size_t i)
{
    return i < e->ntypes ? e->types[i] : NULL;
}

size_t pol_engine_ndetectors(const pol_engine *e)
{
    return e->ndet;
}

size_t pol_engine_nmarkings(const pol_engine *e)
{
    return e->nmark;
}

size_t pol_engine_nallow(const pol_engine *e)
{
    return e->nallow;
}
